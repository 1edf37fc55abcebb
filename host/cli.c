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
    const char *name; /* "acl recreate" */
    const char *args; /* positional arguments, for usage */
    guint nargs;      /* exactly this many */
    const char *summary;
    CommandFunc run;
    unsigned opts; /* OPT_* */
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
};

/* ---- the command table ---------------------------------------------------------------- */

static const Command commands[] = {
    { "backends", "", 0, "list configured backends, their plugins and status", host_cmd_backends,
      0 },
    { "hosts", "", 0, "list hosts", host_cmd_hosts, OPT_BACKEND | OPT_GROUP },
    { "vms", "", 0, "list VMs", host_cmd_vms, OPT_HOST | OPT_BACKEND },
    { "rate", "VM", 1, "rate the hosts of a group for VM (0-5 stars, with reasons)", host_cmd_rate,
      OPT_GROUP },
    { "check", "VM", 1, "validate a migration without running it", host_cmd_check,
      OPT_MIGRATE | OPT_PATHS | OPT_FORCE },
    { "migrate", "VM", 1, "move VM to another host (live or cold, with or without storage)",
      host_cmd_migrate, OPT_MIGRATE | OPT_PATHS | OPT_FORCE | OPT_DRY_RUN },
    { "migrate-storage", "VM", 1, "move VM's storage on its current host", host_cmd_migrate_storage,
      OPT_PATHS | OPT_FORCE | OPT_DRY_RUN },
    { "merge-status", "VM", 1, "show whether a checkpoint/snapshot merge runs on VM",
      host_cmd_merge_status, 0 },
    { "acl recreate", "VM", 1, "re-apply the access rules VM's files need", host_cmd_acl_recreate,
      0 },
    { "jobs", "", 0, "list jobs from the journal", host_cmd_jobs, 0 },
    { "job show", "ID", 1, "show a job, its log and where the VM is", host_cmd_job_show, 0 },
    { "job cancel", "ID", 1, "cancel a running job (from any process)", host_cmd_job_cancel, 0 },
    { "job repair", "ID", 1, "bring a failed or interrupted job's VM to a consistent state",
      host_cmd_job_repair, 0 },
    { "bulk", "PLAN", 1, "run a plan file of migrations in waves", host_cmd_bulk,
      OPT_REVERSE | OPT_DRY_RUN | OPT_FORCE },
};

static void
print_usage(FILE *out)
{
    fprintf(out, "Usage: vmshift [GLOBAL OPTIONS] COMMAND [ARGS] [OPTIONS]\n\n"
                 "Moves virtual machines between hosts, storage and hypervisors.\n\n"
                 "Commands:\n");
    for (guint i = 0; i < G_N_ELEMENTS(commands); i++) {
        g_autofree char *n = g_strdup_printf("%s %s", commands[i].name, commands[i].args);
        fprintf(out, "  %-22s %s\n", n, commands[i].summary);
    }
    fprintf(out,
            "\nGlobal options:\n"
            "  --config FILE          configuration file (default %s;\n"
            "                         also VMSHIFT_CONFIG)\n"
            "  --plugin-dir DIR       look for plugins in DIR first (repeatable)\n"
            "  --state-dir DIR        journal and plugin state (default %s)\n"
            "  --json                 machine-readable output on stdout\n"
            "  --verbose              more detail, debug lines of jobs\n"
            "  --help                 this help; 'vmshift COMMAND --help' for a command\n\n"
            "VM and HOST may be written BACKEND:NAME.\n",
            host_default_config_path(), host_default_state_dir());
}

static void
add_entry(GArray *a, const char *long_name, GOptionArg arg, gpointer data, const char *desc,
          const char *arg_desc)
{
    GOptionEntry e = { long_name, 0, 0, arg, data, desc, arg_desc };
    g_array_append_val(a, e);
}

static GArray *
build_entries(const Command *c, CmdOpts *o, HostGlobals *g)
{
    GArray *a = g_array_new(TRUE, TRUE, sizeof(GOptionEntry));

    if (c->opts & OPT_BACKEND)
        add_entry(a, "backend", G_OPTION_ARG_STRING, &o->backend, "only this backend", "B");
    if (c->opts & OPT_GROUP)
        add_entry(a, "group", G_OPTION_ARG_STRING, &o->group, "hosts of this group", "G");
    if (c->opts & OPT_HOST)
        add_entry(a, "host", G_OPTION_ARG_STRING, &o->host, "only VMs on this host", "HOST");
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
    if (c->opts & OPT_FORCE)
        add_entry(a, "force", G_OPTION_ARG_NONE, &o->m.force, "accept validation warnings", NULL);
    if (c->opts & OPT_DRY_RUN)
        add_entry(a, "dry-run", G_OPTION_ARG_NONE, &o->m.dry_run,
                  "print the plan and the equivalent commands; change nothing", NULL);
    if (c->opts & OPT_REVERSE)
        add_entry(a, "reverse", G_OPTION_ARG_NONE, &o->reverse,
                  "move every VM of the plan back to where it came from", NULL);
    add_entry(a, "config", G_OPTION_ARG_FILENAME, &g->config_path, "configuration file", "FILE");
    add_entry(a, "plugin-dir", G_OPTION_ARG_FILENAME_ARRAY, &g->plugin_dirs,
              "look for plugins in DIR first (repeatable)", "DIR");
    add_entry(a, "state-dir", G_OPTION_ARG_FILENAME, &g->state_dir,
              "journal and plugin state directory", "DIR");
    add_entry(a, "json", G_OPTION_ARG_NONE, &g->json, "machine-readable output", NULL);
    add_entry(a, "verbose", G_OPTION_ARG_NONE, &g->verbose, "more detail", NULL);
    add_entry(a, "help", G_OPTION_ARG_NONE, &g->help, "show this help", NULL);
    return a;
}

static gboolean
takes_value(const char *arg)
{
    static const char *const with_value[] = {
        "--config",   "--plugin-dir", "--state-dir", "--backend", "--group",     "--host",  "--to",
        "--to-group", "--network",    "--transfer",  "--path",    "--disk-path", "--option"
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
    tmp = vmshift_list_new((GDestroyNotify)vmshift_mapping_free);
    if (!host_spec_add_mappings(tmp, o->m.disk_paths, "--disk-path", error)
        || !host_spec_add_mappings(tmp, o->m.networks, "--network", error)
        || !host_spec_parse_options(o->m.options, NULL, error)) {
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
    g_free(o->m.to);
    g_free(o->m.to_group);
    g_free(o->m.path);
    g_strfreev(o->m.disk_paths);
    g_strfreev(o->m.networks);
    g_strfreev(o->m.options);
    g_free(o->m.transfer);
    g_free(g->config_path);
    g_strfreev(g->plugin_dirs);
    g_free(g->state_dir);
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

/* `vmshift acl` or `vmshift job` without (or with an unknown) subcommand. */
static int
group_usage(const char *w, int nwords, const char *second, gboolean help_only)
{
    if (nwords < 2 && help_only) {
        if (!strcmp(w, "acl"))
            printf("Usage:\n  vmshift acl recreate VM\n\n"
                   "Re-apply the access rules VM's files and objects need at their\n"
                   "current place. See 'vmshift acl recreate --help'.\n");
        else
            printf("Usage:\n"
                   "  vmshift job show ID      show a job, its log and where the VM is\n"
                   "  vmshift job cancel ID    cancel a running job (from any process)\n"
                   "  vmshift job repair ID    bring a failed or interrupted job's VM to a\n"
                   "                           consistent state\n\n"
                   "See 'vmshift job SUBCOMMAND --help'; 'vmshift jobs' lists jobs.\n");
        return HOST_EXIT_OK;
    }
    if (nwords < 2)
        host_err("'%s' needs a subcommand (%s); see 'vmshift --help'", w,
                 !strcmp(w, "acl") ? "recreate" : "show, cancel or repair");
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
    if (!strcmp(w, "acl") || !strcmp(w, "job")) {
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
    g_option_context_add_main_entries(ctx, (GOptionEntry *)entries->data, NULL);
    rargc = (int)rest->len - 1;
    rargv = (char **)rest->pdata;
    if (!g_option_context_parse(ctx, &rargc, &rargv, &err)) {
        host_err("%s: %s; see 'vmshift %s --help'", cmd->name, err->message, cmd->name);
        return HOST_EXIT_USAGE;
    }
    if (l->g.help) {
        g_autofree char *help = g_option_context_get_help(ctx, TRUE, NULL);
        fputs(help, stdout);
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

int
host_main(int argc, char **argv)
{
    int word[2] = { -1, -1 };
    g_auto(CmdLine) l = { 0 };
    g_autoptr(GError) err = NULL;
    HostSession s;
    const Command *cmd;
    int rc;

    cmd = find_command(argc, argv, word, &rc);
    if (!cmd)
        return rc;
    rc = parse_options(cmd, argc, argv, word, &l);
    if (rc >= 0)
        return rc;
    if (!check_args(cmd, &l.o, l.args, &err)) {
        host_err("%s; see 'vmshift %s --help'", err->message, cmd->name);
        return HOST_EXIT_USAGE;
    }
    if (!host_session_open(&s, &l.g, &err)) {
        host_err("%s", err->message);
        return HOST_EXIT_FAILED;
    }
    rc = cmd->run(&s, &l.o, l.args);
    host_session_close(&s);
    return rc;
}
