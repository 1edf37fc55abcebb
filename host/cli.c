/*
 * vmshift host: the command line.
 *
 * `vmshift [GLOBAL OPTIONS] COMMAND [ARGS] [OPTIONS]`; global options may
 * appear anywhere. Usage errors are one line on stderr and exit 2;
 * operation failures exit 1. Tables go to stdout, or one JSON document with
 * --json; progress, warnings and errors go to stderr.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "host/host.h"
#include "host/cmd.h"

typedef struct Command Command;
typedef int (*CommandFunc)(HostSession *s, CmdOpts *o, char **args);

struct Command {
    const char *name;    /* "acl recreate" */
    const char *args;    /* positional arguments, for usage */
    guint nargs;         /* exactly this many */
    const char *summary; /* NULL: hidden (not in --help) */
    CommandFunc run;
    unsigned opts;        /* OPT_* */
    const char *examples; /* the EXAMPLES block of --help, one per line */
};

enum {
    OPT_BACKEND = 1 << 0,
    OPT_GROUP = 1 << 1,
    OPT_HOST = 1 << 2,
    OPT_MIGRATE = 1 << 3, /* --to --to-group --live --cold --start --network --transfer */
    OPT_PATHS = 1 << 4,   /* --path --disk-path */
    OPT_FORCE = 1 << 5,
    OPT_DRY_RUN = 1 << 6,
    OPT_REVERSE = 1 << 7,
    OPT_JOBFILTER = 1 << 8, /* --state --vm --since */
    OPT_BEFORE = 1 << 9,
    OPT_REPAIR = 1 << 10, /* --retry --undo --dismiss --reason --force-cleanup */
    OPT_DAEMON = 1 << 11, /* --detach --cancel-on-interrupt */
    OPT_CHECK = 1 << 12,  /* backends --check */
};

/* ---- the command table ---------------------------------------------------------------- */

static const Command commands[] = {
    { "backends", "", 0, "list configured backends, their plugins and status", host_cmd_backends,
      OPT_CHECK, "vmshift backends\nvmshift backends --check\nvmshift --json backends" },
    { "hosts", "", 0, "list hosts", host_cmd_hosts, OPT_BACKEND | OPT_GROUP,
      "vmshift hosts\nvmshift hosts --backend kvm\nvmshift hosts --group prod" },
    { "vms", "", 0, "list VMs", host_cmd_vms, OPT_HOST | OPT_BACKEND,
      "vmshift vms\nvmshift vms --host kvm:node1" },
    { "vm show", "VM", 1, "show a VM: disks, NICs, snapshots, where it is, its jobs",
      host_cmd_vm_show, 0, "vmshift vm show web1\nvmshift --json vm show kvm:web1" },
    { "networks", "", 0, "list the networks NICs can be connected to", host_cmd_networks,
      OPT_HOST | OPT_BACKEND, "vmshift networks\nvmshift networks --host kvm:node2" },
    { "volumes", "", 0, "list the volumes VM files can live on, with free space", host_cmd_volumes,
      OPT_HOST | OPT_BACKEND, "vmshift volumes --backend esx\nvmshift volumes --host kvm:node2" },
    { "rate", "VM", 1, "rate the hosts of a group for VM (0-5 stars, with reasons)", host_cmd_rate,
      OPT_GROUP, "vmshift rate web1 --group prod" },
    { "check", "VM", 1, "validate a migration without running it", host_cmd_check,
      OPT_MIGRATE | OPT_PATHS | OPT_FORCE,
      "vmshift check web1 --to node2\nvmshift check web1 --to-group prod --network net0=lan" },
    { "migrate", "VM", 1, "move VM to another host (live or cold, with or without storage)",
      host_cmd_migrate, OPT_MIGRATE | OPT_PATHS | OPT_FORCE | OPT_DRY_RUN | OPT_DAEMON,
      "vmshift migrate web1 --to node2 --live\n"
      "vmshift migrate web1 --to-group prod --path /srv/vms --dry-run" },
    { "migrate-storage", "VM", 1, "move VM's storage on its current host", host_cmd_migrate_storage,
      OPT_PATHS | OPT_FORCE | OPT_DRY_RUN | OPT_DAEMON,
      "vmshift migrate-storage web1 --path /srv/fast\n"
      "vmshift migrate-storage web1 --disk-path disk0=/srv/fast" },
    { "merge-status", "VM", 1, "show whether a checkpoint/snapshot merge runs on VM",
      host_cmd_merge_status, 0, "vmshift merge-status web1" },
    { "acl recreate", "VM", 1, "re-apply the access rules VM's files need", host_cmd_acl_recreate,
      0, "vmshift acl recreate web1" },
    { "jobs", "", 0, "list jobs from the journal", host_cmd_jobs, OPT_BACKEND | OPT_JOBFILTER,
      "vmshift jobs\nvmshift jobs --state failed --since 7d\nvmshift jobs --vm web1 --backend kvm" },
    { "job show", "ID", 1, "show a job, its log and where the VM is", host_cmd_job_show, 0,
      "vmshift job show 12" },
    { "job cancel", "ID", 1, "cancel a running job (from any process)", host_cmd_job_cancel, 0,
      "vmshift job cancel 12" },
    { "job repair", "ID", 1, "bring a failed or interrupted job's VM to a consistent state",
      host_cmd_job_repair, OPT_REPAIR,
      "vmshift job repair 12\nvmshift job repair 12 --retry\nvmshift job repair 12 --undo\n"
      "vmshift job repair 12 --dismiss --reason 'moved back by hand'\n"
      "vmshift job repair 12 --force-cleanup" },
    { "journal check", "", 0, "check the journal's file: schema version, integrity, jobs",
      host_cmd_journal_check, 0, "vmshift journal check\nvmshift --json journal check" },
    { "journal export", "", 0, "print the whole journal (jobs and their events) as JSON",
      host_cmd_journal_export, 0, "vmshift journal export > journal.json" },
    { "journal prune", "", 0, "delete finished jobs older than --before from the journal",
      host_cmd_journal_prune, OPT_BEFORE,
      "vmshift journal prune --before 30d\nvmshift journal prune --before 2026-01-01" },
    { "bulk", "PLAN", 1, "run a plan file of migrations in waves", host_cmd_bulk,
      OPT_REVERSE | OPT_DRY_RUN | OPT_FORCE,
      "vmshift bulk plan.ini --dry-run\nvmshift bulk plan.ini\nvmshift bulk plan.ini --reverse" },
    { "__complete", "WHAT [COMMAND]", 0, NULL, host_cmd_complete, 0, NULL },
};

/* "Examples:\n  LINE\n  LINE\n" of @examples (one command per line). */
static char *
examples_block(const char *examples)
{
    g_autoptr(GString) out = g_string_new("Examples:\n");
    g_auto(GStrv) lines = g_strsplit(examples, "\n", -1);

    for (guint i = 0; lines[i]; i++)
        g_string_append_printf(out, "  %s\n", lines[i]);
    return g_string_free(g_steal_pointer(&out), FALSE);
}

static void
print_usage(FILE *out)
{
    g_autofree char *ex = examples_block("vmshift vms\nvmshift vm show web1\n"
                                         "vmshift migrate web1 --to node2 --live\n"
                                         "vmshift help migrate");

    fprintf(out, "Usage: vmshift [GLOBAL OPTIONS] COMMAND [ARGS] [OPTIONS]\n\n"
                 "Moves virtual machines between the hosts and storage of one hypervisor\n"
                 "family (KVM, Hyper-V, ESX) through its plugin.\n\n"
                 "Commands:\n");
    for (guint i = 0; i < G_N_ELEMENTS(commands); i++) {
        g_autofree char *n = g_strdup_printf("%s %s", commands[i].name, commands[i].args);
        if (commands[i].summary)
            fprintf(out, "  %-22s %s\n", n, commands[i].summary);
    }
    fprintf(out,
            "\nGlobal options:\n"
            "  --config FILE          configuration file (default %s;\n"
            "                         also VMSHIFT_CONFIG)\n"
            "  --plugin-dir DIR       look for plugins in DIR first (repeatable)\n"
            "  --state-dir DIR        journal and plugin state (default %s)\n"
            "  --json                 machine-readable output on stdout\n"
            "  -o, --output COLUMNS   the columns of a listing's table, in this order\n"
            "                         (comma-separated, case-insensitive; +COLUMNS adds to\n"
            "                         the defaults; an unknown column lists the valid ones)\n"
            "  -n, --noheadings       tables without their header line\n"
            "  -r, --raw              tables for scripts: columns separated by one space,\n"
            "                         blanks and special characters as \\xNN\n"
            "  --verbose              more detail, debug lines of jobs\n"
            "  --version              versions of vmshift, its SDK and the plugin ABI\n"
            "  --help                 this help; 'vmshift help COMMAND' for a command\n\n"
            "VM and HOST may be written BACKEND:NAME.\n\n%s",
            host_default_config_path(), host_default_state_dir(), ex);
}

static void
print_version(void)
{
    printf("vmshift %s\nSDK %s\nplugin ABI %d.%d\n", PACKAGE_VERSION, VMSHIFT_SDK_VERSION,
           VMSHIFT_ABI_MAJOR, VMSHIFT_ABI_MINOR);
}

static void
add_entry(GArray *a, const char *long_name, GOptionArg arg, gpointer data, const char *desc,
          const char *arg_desc)
{
    GOptionEntry e = { long_name, 0, 0, arg, data, desc, arg_desc };
    g_array_append_val(a, e);
}

/* Whether -o makes sense for @c: its output is one table (with notes),
 * known before anything changes. */
static gboolean
selects_columns(const Command *c)
{
    static const char *const names[] = { "backends", "hosts", "vms",  "networks",
                                         "volumes",  "rate",  "jobs", "check" };
    for (guint i = 0; i < G_N_ELEMENTS(names); i++)
        if (!strcmp(c->name, names[i]))
            return TRUE;
    return FALSE;
}

/* The global options of tables: -o (where it applies), -n, -r (util-linux's
 * names). */
static void
add_table_entries(GArray *a, const Command *c, HostGlobals *g)
{
    if (selects_columns(c)) {
        add_entry(a, "output", G_OPTION_ARG_STRING, &g->columns,
                  "the columns of the table, comma-separated (+COLUMNS: the defaults and these)",
                  "COLUMNS");
        g_array_index(a, GOptionEntry, a->len - 1).short_name = 'o';
    }
    add_entry(a, "noheadings", G_OPTION_ARG_NONE, &g->noheadings, "no header line", NULL);
    g_array_index(a, GOptionEntry, a->len - 1).short_name = 'n';
    add_entry(a, "raw", G_OPTION_ARG_NONE, &g->raw, "columns separated by one space, escaped",
              NULL);
    g_array_index(a, GOptionEntry, a->len - 1).short_name = 'r';
}

/* The table options of @g for @c: FALSE with one line why they do not go
 * together; else handed to output.c. (-o is an option of the commands that
 * selects_columns() only.) */
static gboolean
set_table_options(const Command *c, const HostGlobals *g)
{
    if (g->json && (g->columns || g->noheadings || g->raw)) {
        host_err("%s: --json prints every field; -o, --noheadings and --raw are for tables",
                 c->name);
        return FALSE;
    }
    host_table_set_options(g->columns, g->noheadings, g->raw);
    return TRUE;
}

static GArray *
build_entries(const Command *c, CmdOpts *o, HostGlobals *g)
{
    GArray *a = g_array_new(TRUE, TRUE, sizeof(GOptionEntry));

    if (c->opts & OPT_CHECK)
        add_entry(a, "check", G_OPTION_ARG_NONE, &o->check,
                  "contact every backend's hosts (all at once, each within its plugin's "
                  "timeouts) and show whether they answer; without it no host is contacted",
                  NULL);
    if (c->opts & OPT_BACKEND)
        add_entry(a, "backend", G_OPTION_ARG_STRING, &o->backend, "only this backend", "B");
    if (c->opts & OPT_GROUP)
        add_entry(a, "group", G_OPTION_ARG_STRING, &o->group, "hosts of this group", "G");
    if (c->opts & OPT_HOST)
        add_entry(a, "host", G_OPTION_ARG_STRING, &o->host, "only this host's", "HOST");
    if (c->opts & OPT_MIGRATE) {
        add_entry(a, "to", G_OPTION_ARG_STRING, &o->m.to, "destination host", "HOST");
        add_entry(a, "to-group", G_OPTION_ARG_STRING, &o->m.to_group,
                  "the best-rated host of this group", "G");
        add_entry(a, "live", G_OPTION_ARG_NONE, &o->m.live, "live migration (VM running)", NULL);
        add_entry(a, "cold", G_OPTION_ARG_NONE, &o->m.cold, "cold migration (VM stopped)", NULL);
        add_entry(a, "network", G_OPTION_ARG_STRING_ARRAY, &o->m.networks,
                  "connect NIC to network NET at the destination (repeatable)", "NIC=NET");
        add_entry(a, "transfer", G_OPTION_ARG_STRING, &o->m.transfer,
                  "how disks travel: auto, san or network", "HOW");
        add_entry(a, "start", G_OPTION_ARG_NONE, &o->m.start, "start the VM after a cold migration",
                  NULL);
        add_entry(a, "ip", G_OPTION_ARG_STRING_ARRAY, &o->m.ips,
                  "after a cold move, give the guest's NIC a new address (the plugin's guest "
                  "customization; repeatable)",
                  "NIC=ADDR/PREFIX[,GATEWAY]");
        add_entry(a, "delete-source", G_OPTION_ARG_NONE, &o->m.delete_source,
                  "--to BACKEND:HOST: remove the source VM once its copy is verified", NULL);
        add_entry(a, "convert-guest", G_OPTION_ARG_NONE, &o->m.convert_guest,
                  "--to BACKEND:HOST: convert the guest for the destination with virt-v2v "
                  "(KVM destinations)",
                  NULL);
    }
    if (c->opts & OPT_PATHS) {
        add_entry(a, "path", G_OPTION_ARG_STRING, &o->m.path,
                  "move the VM's files and disks to DIR", "DIR");
        add_entry(a, "disk-path", G_OPTION_ARG_STRING_ARRAY, &o->m.disk_paths,
                  "move one disk to DIR (repeatable)", "DISK=DIR");
        add_entry(a, "option", G_OPTION_ARG_STRING_ARRAY, &o->m.options,
                  "backend option, e.g. kvm's tcg-safe=false (repeatable; the plugin's "
                  "documentation lists its keys)",
                  "KEY=VALUE");
    }
    if (c->opts & OPT_DAEMON) /* migrate, migrate-storage */
        add_entry(a, "switchover-at", G_OPTION_ARG_STRING, &o->m.switchover_at,
                  "switch over at TIME (2026-01-31T22:00, local or with Z/+01:00): a KVM "
                  "storage or host+storage move copies now and waits; others start then",
                  "TIME");
    if (c->opts & OPT_FORCE)
        add_entry(a, "force", G_OPTION_ARG_NONE, &o->m.force, "accept validation warnings", NULL);
    if (c->opts & OPT_DRY_RUN)
        add_entry(a, "dry-run", G_OPTION_ARG_NONE, &o->m.dry_run,
                  "print the plan and the equivalent commands; change nothing", NULL);
    if (c->opts & OPT_DAEMON) {
        add_entry(a, "detach", G_OPTION_ARG_NONE, &o->detach,
                  "with vmshiftd: print the job id and return at once", NULL);
        add_entry(a, "cancel-on-interrupt", G_OPTION_ARG_NONE, &o->cancel_on_interrupt,
                  "with vmshiftd: Ctrl-C cancels the job (default: detaches)", NULL);
    }
    if (c->opts & OPT_REVERSE)
        add_entry(a, "reverse", G_OPTION_ARG_NONE, &o->reverse,
                  "move every VM of the plan back to where it came from", NULL);
    if (c->opts & OPT_JOBFILTER) {
        add_entry(a, "state", G_OPTION_ARG_STRING, &o->state,
                  "only jobs in this state (running, succeeded, failed, ...)", "S");
        add_entry(a, "vm", G_OPTION_ARG_STRING, &o->vm, "only jobs of this VM", "VM");
        add_entry(a, "since", G_OPTION_ARG_STRING, &o->since,
                  "only jobs created since T (2026-01-31, 2026-01-31T08:00, 7d, 12h)", "T");
    }
    if (c->opts & OPT_REPAIR) {
        add_entry(a, "retry", G_OPTION_ARG_NONE, &o->retry,
                  "run the failed phase and the rest of the job again", NULL);
        add_entry(a, "undo", G_OPTION_ARG_NONE, &o->undo,
                  "move the VM back and clean up the destination", NULL);
        add_entry(a, "dismiss", G_OPTION_ARG_NONE, &o->dismiss,
                  "mark the job handled (fixed by hand); needs --reason", NULL);
        add_entry(a, "reason", G_OPTION_ARG_STRING, &o->reason,
                  "why the job is dismissed (kept in the journal)", "TEXT");
        add_entry(a, "force-cleanup", G_OPTION_ARG_NONE, &o->force_cleanup,
                  "remove the job's leftovers on both sides; the VM stays as it is", NULL);
    }
    if (c->opts & OPT_BEFORE)
        add_entry(a, "before", G_OPTION_ARG_STRING, &o->before,
                  "jobs that ended before T (2026-01-31, 2026-01-31T08:00, 30d, 12h)", "T");
    add_entry(a, "config", G_OPTION_ARG_FILENAME, &g->config_path, "configuration file", "FILE");
    add_entry(a, "plugin-dir", G_OPTION_ARG_FILENAME_ARRAY, &g->plugin_dirs,
              "look for plugins in DIR first (repeatable)", "DIR");
    add_entry(a, "state-dir", G_OPTION_ARG_FILENAME, &g->state_dir,
              "journal and plugin state directory", "DIR");
    add_entry(a, "daemon", G_OPTION_ARG_STRING, &g->daemon,
              "vmshiftd's socket, auto (when it exists) or no", "WHERE");
    add_entry(a, "json", G_OPTION_ARG_NONE, &g->json, "machine-readable output", NULL);
    add_table_entries(a, c, g);
    add_entry(a, "verbose", G_OPTION_ARG_NONE, &g->verbose, "more detail", NULL);
    add_entry(a, "help", G_OPTION_ARG_NONE, &g->help, "show this help", NULL);
    return a;
}

static gboolean
takes_value(const char *arg)
{
    static const char *const with_value[] = {
        "--config", "--plugin-dir", "--state-dir", "--backend",       "--group",  "--host",
        "--to",     "--to-group",   "--network",   "--transfer",      "--path",   "--disk-path",
        "--state",  "--vm",         "--since",     "--before",        "--option", "--output",
        "-o",       "--reason",     "--daemon",    "--switchover-at", "--ip"
    };
    for (guint i = 0; i < G_N_ELEMENTS(with_value); i++)
        if (!strcmp(arg, with_value[i]))
            return TRUE;
    return FALSE;
}

/* Checks what can be checked without the configuration, so that bad
 * arguments fail before anything is loaded. */
static gboolean
check_args(const Command *c, CmdOpts *o, char **args, GError **error)
{
    guint n = args ? g_strv_length(args) : 0;
    g_autoptr(GPtrArray) tmp = NULL;

    if (!c->summary)
        return TRUE; /* __complete: checks its own */
    if (n != c->nargs) {
        if (n < c->nargs)
            g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_INVALID_ARGUMENT, "%s: missing %s",
                        c->name, c->args);
        else
            g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_INVALID_ARGUMENT,
                        "%s: unexpected argument '%s'", c->name, args[c->nargs]);
        return FALSE;
    }
    if (c->opts & OPT_MIGRATE) {
        if (!!o->m.to + !!o->m.to_group != 1) {
            g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_INVALID_ARGUMENT,
                        "%s: give exactly one of --to HOST and --to-group G", c->name);
            return FALSE;
        }
        if (o->m.live && o->m.cold) {
            g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_INVALID_ARGUMENT,
                        "%s: --live and --cold exclude each other", c->name);
            return FALSE;
        }
        if (o->m.transfer && strcmp(o->m.transfer, "auto") && strcmp(o->m.transfer, "san")
            && strcmp(o->m.transfer, "network")) {
            g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_INVALID_ARGUMENT,
                        "%s: --transfer must be auto, san or network, not '%s'", c->name,
                        o->m.transfer);
            return FALSE;
        }
    }
    if (!strcmp(c->name, "migrate-storage") && !o->m.path && !o->m.disk_paths) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_INVALID_ARGUMENT,
                    "migrate-storage: give --path DIR or --disk-path DISK=DIR");
        return FALSE;
    }
    if ((c->opts & OPT_BEFORE) && !o->before) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_INVALID_ARGUMENT,
                    "%s: give --before T (a date, a date and time, or an age like 30d)", c->name);
        return FALSE;
    }
    if (o->m.switchover_at
        && !host_parse_switchover_future(o->m.switchover_at, g_get_real_time() / G_USEC_PER_SEC,
                                         &(gint64){ 0 }, error)) {
        g_prefix_error(error, "%s: --switchover-at: ", c->name);
        return FALSE;
    }
    tmp = vmshift_list_new((GDestroyNotify)vmshift_mapping_free);
    if (!host_spec_add_mappings(tmp, o->m.disk_paths, "--disk-path", error)
        || !host_spec_add_mappings(tmp, o->m.networks, "--network", error)
        || !host_spec_parse_options(o->m.options, NULL, error)
        || !host_spec_parse_ips(o->m.ips, NULL, error)) {
        g_prefix_error(error, "%s: ", c->name);
        return FALSE;
    }
    return TRUE;
}

static void
opts_clear(CmdOpts *o, HostGlobals *g)
{
    g_free(o->backend);
    g_free(o->group);
    g_free(o->host);
    g_free(o->state);
    g_free(o->vm);
    g_free(o->since);
    g_free(o->before);
    g_free(o->reason);
    host_migrate_opts_clear(&o->m);
    g_free(g->config_path);
    g_strfreev(g->plugin_dirs);
    g_free(g->state_dir);
    g_free(g->columns);
    g_free(g->daemon);
}

/* What the command line says besides the command: options and arguments. */
typedef struct {
    CmdOpts o;
    HostGlobals g;
    char **args; /* the positional arguments (argv's strings), NULL-terminated */
} CmdLine;

static void
cmd_line_clear(CmdLine *l)
{
    opts_clear(&l->o, &l->g);
    g_free(l->args);
}
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(CmdLine, cmd_line_clear)

/* Whether @w is the first word of a two-word command ("job", "acl"). */
static gboolean
is_group(const char *w)
{
    size_t n = strlen(w);
    for (guint i = 0; i < G_N_ELEMENTS(commands); i++)
        if (!strncmp(commands[i].name, w, n) && commands[i].name[n] == ' ')
            return TRUE;
    return FALSE;
}

/* `vmshift job` (or acl, vm, journal) without (or with an unknown)
 * subcommand. */
static int
group_usage(const char *w, int nwords, const char *second, gboolean help_only)
{
    size_t n = strlen(w);
    g_autoptr(GString) subs = g_string_new(NULL);
    g_autoptr(GString) ex = g_string_new(NULL);

    if (nwords < 2 && help_only)
        printf("Usage:\n");
    for (guint i = 0; i < G_N_ELEMENTS(commands); i++) {
        const Command *c = &commands[i];
        g_autofree char *u = NULL;
        if (strncmp(c->name, w, n) || c->name[n] != ' ')
            continue;
        u = g_strdup_printf("vmshift %s %s", c->name, c->args);
        g_string_append_printf(subs, "%s%s", subs->len ? ", " : "", c->name + n + 1);
        g_string_append_printf(ex, "%s%.*s", ex->len ? "\n" : "", (int)strcspn(c->examples, "\n"),
                               c->examples);
        if (nwords < 2 && help_only)
            printf("  %-28s %s\n", u, c->summary);
    }
    if (nwords < 2 && help_only) {
        g_autofree char *block = examples_block(ex->str);
        printf("\nSee 'vmshift %s SUBCOMMAND --help'.\n\n%s", w, block);
        return HOST_EXIT_OK;
    }
    if (nwords < 2)
        host_err("'%s' needs a subcommand (%s); see 'vmshift --help'", w, subs->str);
    else
        host_err("unknown command '%s %s'; see 'vmshift --help'", w, second);
    return HOST_EXIT_USAGE;
}

/* The command named by the first one or two non-option words, whose
 * positions it puts in @word (word[1] = -1 for a one-word command). NULL
 * when there is none, with the exit code in @rc (usage printed for --help). */
static const Command *
find_command(int argc, char **argv, int word[2], int *rc)
{
    int nwords = 0;
    gboolean help_only = FALSE;
    const char *w;

    for (int i = 1; i < argc && nwords < 2; i++) {
        if (!strcmp(argv[i], "--"))
            break;
        if (argv[i][0] == '-') {
            if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h"))
                help_only = TRUE;
            if (takes_value(argv[i]))
                i++;
            continue;
        }
        word[nwords++] = i;
    }
    if (nwords == 0) {
        if (help_only) {
            print_usage(stdout);
            *rc = HOST_EXIT_OK;
            return NULL;
        }
        host_err("no command given; see 'vmshift --help'");
        *rc = HOST_EXIT_USAGE;
        return NULL;
    }
    for (guint i = 0; i < G_N_ELEMENTS(commands); i++) {
        const char *cn = commands[i].name;
        const char *sp = strchr(cn, ' ');
        if (sp) {
            if (nwords == 2 && !strncmp(cn, argv[word[0]], sp - cn)
                && strlen(argv[word[0]]) == (size_t)(sp - cn) && !strcmp(sp + 1, argv[word[1]]))
                return &commands[i];
        } else if (!strcmp(cn, argv[word[0]])) {
            word[1] = -1;
            return &commands[i];
        }
    }
    w = argv[word[0]];
    if (is_group(w)) {
        *rc = group_usage(w, nwords, nwords == 2 ? argv[word[1]] : NULL, help_only);
    } else {
        host_err("unknown command '%s'; see 'vmshift --help'", w);
        *rc = HOST_EXIT_USAGE;
    }
    return NULL;
}

/* Parses the options of @cmd (every word of @argv but the command's) into
 * @l. Returns -1 to go on, or the exit code (after --help or an error). */
static int
parse_options(const Command *cmd, int argc, char **argv, const int word[2], CmdLine *l)
{
    g_autofree char *name = g_strdup_printf("%s%s%s", cmd->name, *cmd->args ? " " : "", cmd->args);
    g_autoptr(GOptionContext) ctx = g_option_context_new(name);
    g_autoptr(GArray) entries = build_entries(cmd, &l->o, &l->g);
    g_autoptr(GPtrArray) rest = g_ptr_array_new();
    g_autoptr(GError) err = NULL;
    int rargc;
    char **rargv;

    for (int i = 0; i < argc; i++)
        if (i != word[0] && i != word[1])
            g_ptr_array_add(rest, argv[i]);
    g_ptr_array_add(rest, NULL);
    g_option_context_set_help_enabled(ctx, FALSE);
    g_option_context_set_summary(ctx, cmd->summary);
    if (cmd->examples) {
        g_autofree char *ex = examples_block(cmd->examples);
        g_option_context_set_description(ctx, ex);
    }
    g_option_context_add_main_entries(ctx, (GOptionEntry *)entries->data, NULL);
    rargc = (int)rest->len - 1;
    rargv = (char **)rest->pdata;
    if (!g_option_context_parse(ctx, &rargc, &rargv, &err)) {
        host_err("%s: %s; see 'vmshift %s --help'", cmd->name, err->message, cmd->name);
        return HOST_EXIT_USAGE;
    }
    if (l->g.help) {
        g_autofree char *help = g_option_context_get_help(ctx, TRUE, NULL);
        g_auto(GStrv) lines = g_strsplit(help, "\n", -1);
        for (guint i = 0; lines[i]; i++) {
            g_autofree char *shown = host_display(lines[i]); /* ASCII under LC_ALL=C */
            printf("%s%s", shown, lines[i + 1] ? "\n" : "");
        }
        return HOST_EXIT_OK;
    }
    for (int i = 1; i < rargc; i++) {
        if (rargv[i][0] == '-' && rargv[i][1]) {
            host_err("%s: unknown option '%s'; see 'vmshift %s --help'", cmd->name, rargv[i],
                     cmd->name);
            return HOST_EXIT_USAGE;
        }
    }
    l->args = g_new0(char *, rargc > 0 ? rargc : 1);
    for (int i = 1; i < rargc; i++)
        l->args[i - 1] = rargv[i];
    return -1;
}

/* ---- __complete: what the bash completion asks (no network call) -------------------- */

static void
complete_words(guint which, const char *group)
{
    g_autoptr(GHashTable) seen = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);

    for (guint i = 0; i < G_N_ELEMENTS(commands); i++) {
        const char *cn = commands[i].name;
        const char *sp = strchr(cn, ' ');
        g_autofree char *w = NULL;
        if (!commands[i].summary)
            continue;
        if (which == 0)
            w = sp ? g_strndup(cn, sp - cn) : g_strdup(cn);
        else if (sp && !strncmp(cn, group, sp - cn) && strlen(group) == (size_t)(sp - cn))
            w = g_strdup(sp + 1);
        if (w && g_hash_table_add(seen, g_strdup(w)))
            printf("%s\n", w);
    }
    if (which == 0)
        printf("help\n");
}

static void
complete_options(char **words)
{
    g_autofree char *name = g_strjoinv(" ", words);
    CmdOpts o = { 0 };
    HostGlobals g = { 0 };

    for (guint i = 0; i < G_N_ELEMENTS(commands); i++) {
        g_autoptr(GArray) a = NULL;
        if (strcmp(commands[i].name, name) != 0)
            continue;
        a = build_entries(&commands[i], &o, &g);
        for (guint k = 0; k < a->len; k++)
            printf("--%s\n", g_array_index(a, GOptionEntry, k).long_name);
    }
    printf("--version\n");
}

/* Names the journal has seen: VMs, or hosts (where jobs left VMs or took
 * them from), plus group members from the configuration. */
static void
complete_names(HostSession *s, gboolean hosts)
{
    g_autoptr(GHashTable) seen = g_hash_table_new(g_str_hash, g_str_equal);
    g_autoptr(HostJournal) j = host_session_journal(s, NULL);
    g_autoptr(GPtrArray) list = j ? host_journal_list(j, NULL) : NULL;
    GHashTableIter it;
    gpointer v;

    for (guint i = 0; list && i < list->len; i++) {
        HostJobRecord *r = g_ptr_array_index(list, i);
        const char *names[] = { hosts ? r->location_host : r->vm, hosts ? r->source_host : NULL };
        for (guint k = 0; k < G_N_ELEMENTS(names); k++)
            if (names[k] && g_hash_table_add(seen, (gpointer)names[k]))
                printf("%s\n", names[k]);
    }
    if (!hosts)
        return;
    g_hash_table_iter_init(&it, s->config->groups);
    while (g_hash_table_iter_next(&it, NULL, &v))
        for (char **m = v; *m; m++)
            if (g_hash_table_add(seen, *m))
                printf("%s\n", *m);
}

int
host_cmd_complete(HostSession *s, CmdOpts *o, char **args)
{
    const char *what = args && args[0] ? args[0] : "";

    if (!strcmp(what, "commands"))
        complete_words(0, NULL);
    else if (!strcmp(what, "subcommands") && args[1])
        complete_words(1, args[1]);
    else if (!strcmp(what, "options") && args[1])
        complete_options(args + 1);
    else if (!strcmp(what, "backends"))
        for (guint i = 0; i < s->reg->backends->len; i++)
            printf("%s\n", host_backend_name(g_ptr_array_index(s->reg->backends, i)));
    else if (!strcmp(what, "vms") || !strcmp(what, "hosts"))
        complete_names(s, !strcmp(what, "hosts"));
    else if (!strcmp(what, "groups")) {
        g_autofree gpointer *keys = g_hash_table_get_keys_as_array(s->config->groups, NULL);
        for (guint i = 0; keys[i]; i++)
            printf("%s\n", (char *)keys[i]);
    } else {
        host_err("__complete: WHAT is commands, subcommands W, options COMMAND, backends, "
                 "vms, hosts or groups");
        return HOST_EXIT_USAGE;
    }
    return HOST_EXIT_OK;
}

/* The index of the first non-option word of @argv, or -1. */
static int
first_word(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--"))
            return -1;
        if (argv[i][0] != '-')
            return i;
        if (takes_value(argv[i]))
            i++;
    }
    return -1;
}

/* Parses the command line as far as running the command: @l gets the
 * options, @cmd the command. Returns -1 to run it, or the exit code (after
 * --version, --help or a usage error). @av keeps `help CMD`'s argv. */
static int
parse_command_line(int argc, char **argv, GPtrArray **av, CmdLine *l, const Command **cmd)
{
    int word[2] = { -1, -1 };
    g_autoptr(GError) err = NULL;
    int h = first_word(argc, argv);
    int rc;

    for (int i = 1; i < argc && strcmp(argv[i], "--"); i++) {
        if (!strcmp(argv[i], "--version")) {
            print_version();
            return HOST_EXIT_OK;
        }
    }
    if (h > 0 && !strcmp(argv[h], "help")) {
        /* `vmshift help CMD` is `vmshift CMD --help` */
        *av = g_ptr_array_new();
        for (int i = 0; i < argc; i++)
            if (i != h)
                g_ptr_array_add(*av, argv[i]);
        g_ptr_array_add(*av, (gpointer) "--help");
        g_ptr_array_add(*av, NULL);
        argc = (int)(*av)->len - 1;
        argv = (char **)(*av)->pdata;
    }
    *cmd = find_command(argc, argv, word, &rc);
    if (!*cmd)
        return rc;
    rc = parse_options(*cmd, argc, argv, word, l);
    if (rc >= 0)
        return rc;
    if (!check_args(*cmd, &l->o, l->args, &err)) {
        host_err("%s; see 'vmshift %s --help'", err->message, (*cmd)->name);
        return HOST_EXIT_USAGE;
    }
    if ((*cmd)->summary && !set_table_options(*cmd, &l->g))
        return HOST_EXIT_USAGE;
    return -1;
}

int
host_cli_parse(int argc, char **argv)
{
    g_auto(CmdLine) l = { 0 };
    g_autoptr(GPtrArray) av = NULL;
    const Command *cmd = NULL;

    return parse_command_line(argc, argv, &av, &l, &cmd);
}

int
host_main(int argc, char **argv)
{
    g_auto(CmdLine) l = { 0 };
    g_autoptr(GError) err = NULL;
    g_autoptr(GPtrArray) av = NULL;
    HostSession s;
    const Command *cmd = NULL;
    int rc = parse_command_line(argc, argv, &av, &l, &cmd);

    if (rc >= 0)
        return rc;
    if (!host_session_open(&s, &l.g, &err)) {
        host_err("%s", err->message);
        return HOST_EXIT_FAILED;
    }
    rc = cmd->run(&s, &l.o, l.args);
    host_session_close(&s);
    return host_table_refused() ? HOST_EXIT_USAGE : rc;
}
