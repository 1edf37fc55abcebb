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

typedef struct {
    char *backend;
    char *group;
    char *host;
    HostMigrateOpts m;
    gboolean reverse;
} CmdOpts;

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

/* ---- session ----------------------------------------------------------------------- */

gboolean
host_session_open(HostSession *s, HostGlobals *g, GError **error)
{
    const char *path = g->config_path;
    gboolean explicit_path = path != NULL;

    memset(s, 0, sizeof *s);
    s->g = g;
    if (!path && g_getenv("VMSHIFT_CONFIG") && *g_getenv("VMSHIFT_CONFIG")) {
        path = g_getenv("VMSHIFT_CONFIG");
        explicit_path = TRUE;
    }
    s->config = host_config_load(path, explicit_path, g->state_dir, error);
    if (!s->config)
        return FALSE;
    s->loader = host_loader_new((const char *const *)g->plugin_dirs, !g->no_default_plugin_dir);
    s->reg = host_registry_new(s->config, s->loader, g->verbose);
    for (guint i = 0; i < s->config->warnings->len; i++)
        host_warn("%s", (char *)g_ptr_array_index(s->config->warnings, i));
    return TRUE;
}

void
host_session_close(HostSession *s)
{
    host_registry_free(s->reg);
    host_loader_free(s->loader);
    host_config_free(s->config);
    memset(s, 0, sizeof *s);
}

HostJournal *
host_session_journal(HostSession *s, GError **error)
{
    return host_journal_open(s->config->state_dir, error);
}

static int
fail(const GError *e)
{
    host_err("%s", e->message);
    return HOST_EXIT_FAILED;
}

static gboolean
listable(HostBackend *b)
{
    return b->status != HOST_BACKEND_DISABLED;
}

/* ---- backends ---------------------------------------------------------------------- */

static char *
capabilities(const VmshiftPluginDescriptor *d)
{
    g_autoptr(GString) s = g_string_new(NULL);
    if (d->flags & VMSHIFT_PLUGIN_LIVE)
        g_string_append(s, "live,");
    if (d->flags & VMSHIFT_PLUGIN_COLD)
        g_string_append(s, "cold,");
    if (d->flags & VMSHIFT_PLUGIN_STORAGE)
        g_string_append(s, "storage,");
    if (d->flags & VMSHIFT_PLUGIN_HOST_AND_STORAGE)
        g_string_append(s, "host+storage,");
    if (s->len)
        g_string_truncate(s, s->len - 1);
    return g_string_free(g_steal_pointer(&s), FALSE);
}

static int
cmd_backends(HostSession *s, CmdOpts *o, char **args)
{
    g_autoptr(HostTable) t = host_table_new("BACKEND", "PLUGIN", "VERSION", "ENABLED", "STATUS",
                                            "CAPABILITIES", "DETAIL", NULL);
    json_object *arr = json_object_new_array();
    g_autoptr(GPtrArray) installed = host_loader_scan(s->loader);
    g_autoptr(GHashTable) used = g_hash_table_new(g_str_hash, g_str_equal);
    json_object *unused = json_object_new_array();
    g_autoptr(GString) unused_s = g_string_new(NULL);

    for (guint i = 0; i < s->reg->backends->len; i++) {
        HostBackend *b = g_ptr_array_index(s->reg->backends, i);
        const VmshiftPluginDescriptor *d = b->plugin ? b->plugin->desc : NULL;
        g_autofree char *caps = d ? capabilities(d) : NULL;
        json_object *j = json_object_new_object();

        if (b->status == HOST_BACKEND_LOADED)
            host_backend_ensure_open(b, NULL);
        if (b->conf->plugin)
            g_hash_table_add(used, b->conf->plugin);
        host_table_add(t, b->conf->name, b->conf->plugin, d ? d->version : NULL,
                       b->conf->enabled ? "yes" : "no", host_backend_status_name(b->status),
                       caps && *caps ? caps : NULL,
                       b->error ? b->error->message : d ? d->description : NULL);
        json_object_object_add(j, "name", host_json_string(b->conf->name));
        json_object_object_add(j, "plugin", host_json_string(b->conf->plugin));
        json_object_object_add(j, "plugin_version", host_json_string(d ? d->version : NULL));
        json_object_object_add(j, "plugin_path",
                               host_json_string(b->plugin ? b->plugin->path : NULL));
        json_object_object_add(j, "description", host_json_string(d ? d->description : NULL));
        json_object_object_add(j, "license", host_json_string(d ? d->license : NULL));
        json_object_object_add(j, "enabled", json_object_new_boolean(b->conf->enabled));
        json_object_object_add(j, "status", json_object_new_string(
                                                host_backend_status_name(b->status)));
        json_object_object_add(j, "reachable",
                               json_object_new_boolean(b->status == HOST_BACKEND_READY));
        json_object_object_add(j, "capabilities", host_json_string(caps));
        json_object_object_add(j, "source", host_json_string(b->conf->source));
        json_object_object_add(j, "error", b->error ? host_json_error(b->error) : NULL);
        json_object_array_add(arr, j);
    }
    for (guint i = 0; i < installed->len; i++) {
        const char *n = g_ptr_array_index(installed, i);
        if (g_hash_table_contains(used, n))
            continue;
        json_object_array_add(unused, json_object_new_string(n));
        g_string_append_printf(unused_s, "%s%s", unused_s->len ? ", " : "", n);
    }
    if (s->g->json) {
        json_object *root = json_object_new_object();
        json_object_object_add(root, "backends", arr);
        json_object_object_add(root, "unused_plugins", unused);
        json_object *abi = json_object_new_object();
        json_object_object_add(abi, "major", json_object_new_int(VMSHIFT_ABI_MAJOR));
        json_object_object_add(abi, "minor", json_object_new_int(VMSHIFT_ABI_MINOR));
        json_object_object_add(root, "abi", abi);
        host_json_print(root);
    } else {
        json_object_put(arr);
        json_object_put(unused);
        if (s->reg->backends->len == 0)
            printf("no backends configured in %s\n", s->config->path);
        else
            host_table_print(t, stdout);
        if (unused_s->len)
            printf("\ninstalled but not configured: %s\n", unused_s->str);
    }
    return HOST_EXIT_OK;
}

/* ---- hosts ---------------------------------------------------------------------------- */

static void
add_host_row(HostTable *t, const char *backend, const VmshiftHost *h)
{
    g_autofree char *fr = host_format_bytes(h->memory_free);
    g_autofree char *tot = host_format_bytes(h->memory_total);
    g_autofree char *mem = g_strdup_printf("%s / %s", fr, tot);
    g_autofree char *cpus = g_strdup_printf("%u", h->cpu_count);
    g_autofree char *use = h->cpu_usage_percent >= 0
                               ? g_strdup_printf("%d%%", h->cpu_usage_percent) : NULL;
    host_table_add(t, backend, h->name, vmshift_host_status_name(h->status), h->hypervisor,
                   cpus, use, mem, h->status_detail);
}

static int
cmd_hosts(HostSession *s, CmdOpts *o, char **args)
{
    g_autoptr(HostTable) t = host_table_new("BACKEND", "HOST", "STATUS", "HYPERVISOR", "CPUS",
                                            "CPU", "MEMORY FREE / TOTAL", "DETAIL", NULL);
    json_object *arr = json_object_new_array();
    json_object *errs = json_object_new_array();
    int rc = HOST_EXIT_OK;

    if (o->group) {
        char **members = g_hash_table_lookup(s->config->groups, o->group);
        if (!members) {
            json_object_put(arr);
            json_object_put(errs);
            host_err("no group '%s' in %s or its backends.d/", o->group, s->config->path);
            return HOST_EXIT_FAILED;
        }
        for (guint i = 0; members[i]; i++) {
            HostBackend *b = NULL;
            g_autoptr(GError) err = NULL;
            g_autoptr(VmshiftHost) h = NULL;
            HostBackend *only = o->backend ? host_registry_find(s->reg, o->backend) : NULL;
            h = host_find_host(s->reg, members[i], only, &b, &err);
            if (!h) {
                host_err("group '%s': %s", o->group, err->message);
                json_object_array_add(errs, host_json_error(err));
                rc = HOST_EXIT_FAILED;
                continue;
            }
            if (o->backend && b != only)
                continue;
            add_host_row(t, host_backend_name(b), h);
            json_object_array_add(arr, host_json_host(h, host_backend_name(b)));
        }
    } else {
        if (o->backend && !host_registry_find(s->reg, o->backend)) {
            json_object_put(arr);
            json_object_put(errs);
            host_err("no backend '%s' in %s or its backends.d/", o->backend, s->config->path);
            return HOST_EXIT_FAILED;
        }
        for (guint i = 0; i < s->reg->backends->len; i++) {
            HostBackend *b = g_ptr_array_index(s->reg->backends, i);
            g_autoptr(GError) err = NULL;
            g_autoptr(GPtrArray) hosts = NULL;
            if (o->backend ? strcmp(o->backend, host_backend_name(b)) != 0 : !listable(b))
                continue;
            hosts = host_backend_list_hosts(b, &err);
            if (!hosts) {
                host_err("%s", err->message);
                json_object_array_add(errs, host_json_error(err));
                rc = HOST_EXIT_FAILED;
                continue;
            }
            for (guint k = 0; k < hosts->len; k++) {
                VmshiftHost *h = g_ptr_array_index(hosts, k);
                add_host_row(t, host_backend_name(b), h);
                json_object_array_add(arr, host_json_host(h, host_backend_name(b)));
            }
        }
    }
    if (s->g->json) {
        json_object *root = json_object_new_object();
        json_object_object_add(root, "hosts", arr);
        json_object_object_add(root, "errors", errs);
        host_json_print(root);
    } else {
        json_object_put(arr);
        json_object_put(errs);
        host_table_print(t, stdout);
    }
    return rc;
}

/* ---- vms ------------------------------------------------------------------------------ */

static void
add_vm_row(HostTable *t, const char *backend, const VmshiftVm *vm)
{
    g_autofree char *mem = host_format_bytes(vm->memory);
    g_autofree char *cpus = g_strdup_printf("%u", vm->vcpus);
    g_autofree char *disks = g_strdup_printf("%u", vm->disks->len);
    g_autofree char *nics = g_strdup_printf("%u", vm->nics->len);
    host_table_add(t, backend, vm->name, vm->host, vmshift_power_state_name(vm->power_state),
                   cpus, mem, disks, nics, vm->status_detail);
}

static int
cmd_vms(HostSession *s, CmdOpts *o, char **args)
{
    g_autoptr(HostTable) t = host_table_new("BACKEND", "VM", "HOST", "STATE", "CPUS", "MEMORY",
                                            "DISKS", "NICS", "DETAIL", NULL);
    json_object *arr = json_object_new_array();
    json_object *errs = json_object_new_array();
    g_autofree char *hb = NULL, *hname = NULL;
    int rc = HOST_EXIT_OK;

    if (o->host)
        host_split_name(s->reg, o->host, &hb, &hname);
    if (o->backend && hb && strcmp(o->backend, hb) != 0) {
        json_object_put(arr);
        json_object_put(errs);
        host_err("--backend %s and --host %s name different backends", o->backend, o->host);
        return HOST_EXIT_USAGE;
    }
    if (!hb && o->backend)
        hb = g_strdup(o->backend);
    if (hb && !host_registry_find(s->reg, hb)) {
        json_object_put(arr);
        json_object_put(errs);
        host_err("no backend '%s' in %s or its backends.d/", hb, s->config->path);
        return HOST_EXIT_FAILED;
    }
    for (guint i = 0; i < s->reg->backends->len; i++) {
        HostBackend *b = g_ptr_array_index(s->reg->backends, i);
        g_autoptr(GError) err = NULL;
        g_autoptr(GPtrArray) vms = NULL;
        if (hb ? strcmp(hb, host_backend_name(b)) != 0 : !listable(b))
            continue;
        vms = host_backend_list_vms(b, hname, &err);
        if (!vms) {
            /* a host filter that this backend does not know is not an error
             * when the user did not name the backend */
            if (!hb && hname && g_error_matches(err, VMSHIFT_ERROR, VMSHIFT_ERROR_NOT_FOUND))
                continue;
            host_err("%s", err->message);
            json_object_array_add(errs, host_json_error(err));
            rc = HOST_EXIT_FAILED;
            continue;
        }
        for (guint k = 0; k < vms->len; k++) {
            VmshiftVm *vm = g_ptr_array_index(vms, k);
            add_vm_row(t, host_backend_name(b), vm);
            json_object_array_add(arr, host_json_vm(vm, host_backend_name(b)));
        }
    }
    if (s->g->json) {
        json_object *root = json_object_new_object();
        json_object_object_add(root, "vms", arr);
        json_object_object_add(root, "errors", errs);
        host_json_print(root);
    } else {
        json_object_put(arr);
        json_object_put(errs);
        host_table_print(t, stdout);
    }
    return rc;
}

/* ---- rate ----------------------------------------------------------------------------- */

static int
cmd_rate(HostSession *s, CmdOpts *o, char **args)
{
    g_autoptr(GError) err = NULL;
    HostBackend *b = NULL;
    g_autoptr(VmshiftVm) vm = host_find_vm(s->reg, args[0], &b, &err);
    g_autoptr(GPtrArray) ratings = NULL;

    if (!vm)
        return fail(err);
    ratings = host_rate(s->reg, b, vm, o->group, &err);
    if (!ratings)
        return fail(err);
    if (s->g->json) {
        json_object *root = json_object_new_object();
        json_object *arr = json_object_new_array();
        json_object_object_add(root, "vm", host_json_string(vm->name));
        json_object_object_add(root, "backend", host_json_string(host_backend_name(b)));
        json_object_object_add(root, "group", host_json_string(o->group));
        for (guint i = 0; i < ratings->len; i++) {
            HostRating *r = g_ptr_array_index(ratings, i);
            json_object *j = json_object_new_object();
            json_object *fs = json_object_new_array();
            json_object_object_add(j, "host", host_json_string(r->host->name));
            json_object_object_add(j, "backend", host_json_string(host_backend_name(r->backend)));
            json_object_object_add(j, "stars", json_object_new_int((int)(r->score + 0.5)));
            json_object_object_add(j, "score", json_object_new_double(r->score));
            json_object_object_add(j, "eligible", json_object_new_boolean(r->eligible));
            json_object_object_add(j, "best_volume", host_json_string(r->best_volume));
            for (guint k = 0; k < r->factors->len; k++) {
                HostFactor *f = g_ptr_array_index(r->factors, k);
                json_object *fj = json_object_new_object();
                json_object_object_add(fj, "factor", host_json_string(f->name));
                json_object_object_add(fj, "result", host_json_string(f->result));
                json_object_object_add(fj, "effect",
                                       f->effect > -1e9 ? json_object_new_double(f->effect)
                                                        : NULL);
                json_object_object_add(fj, "detail", host_json_string(f->detail));
                json_object_array_add(fs, fj);
            }
            json_object_object_add(j, "factors", fs);
            json_object_array_add(arr, j);
        }
        json_object_object_add(root, "ratings", arr);
        host_json_print(root);
        return HOST_EXIT_OK;
    }
    {
        g_autoptr(HostTable) t = host_table_new("RATING", "SCORE", "HOST", "BACKEND",
                                                "BEST VOLUME", NULL);
        for (guint i = 0; i < ratings->len; i++) {
            HostRating *r = g_ptr_array_index(ratings, i);
            g_autofree char *stars = host_stars(r->score);
            g_autofree char *score = r->eligible ? g_strdup_printf("%.1f", r->score)
                                                 : g_strdup("ruled out");
            host_table_add(t, stars, score, r->host->name, host_backend_name(r->backend),
                           r->best_volume);
        }
        printf("Placement of VM '%s' (backend %s, now on %s):\n\n", vm->name,
               host_backend_name(b), vm->host ? vm->host : "-");
        host_table_print(t, stdout);
        printf("\nRating explanation:\n");
        for (guint i = 0; i < ratings->len; i++) {
            HostRating *r = g_ptr_array_index(ratings, i);
            g_autofree char *stars = host_stars(r->score);
            printf("\n%s %s\n", r->host->name, stars);
            for (guint k = 0; k < r->factors->len; k++) {
                HostFactor *f = g_ptr_array_index(r->factors, k);
                g_autofree char *eff = f->effect > -1e9 && f->effect != 0
                                           ? g_strdup_printf(" (%+.2g)", f->effect)
                                           : g_strdup(f->effect > -1e9 ? "" : " (rules it out)");
                printf("  %-8s %-5s %s%s\n", f->name, f->result, f->detail, eff);
            }
        }
    }
    return HOST_EXIT_OK;
}

/* ---- spec building (check, migrate, migrate-storage, bulk) ------------------------------- */

static gboolean
add_mappings(GPtrArray *out, char **items, const char *opt, GError **error)
{
    for (guint i = 0; items && items[i]; i++) {
        const char *eq = strchr(items[i], '=');
        if (!eq || eq == items[i] || !eq[1]) {
            g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_INVALID_ARGUMENT,
                        "%s %s: expected KEY=VALUE", opt, items[i]);
            return FALSE;
        }
        g_autofree char *k = g_strndup(items[i], eq - items[i]);
        g_ptr_array_add(out, vmshift_mapping_new(k, eq + 1));
    }
    return TRUE;
}

static gboolean
parse_transfer(const char *s, guint32 *out)
{
    if (!s || !strcmp(s, "auto"))
        *out = VMSHIFT_TRANSFER_AUTO;
    else if (!strcmp(s, "san"))
        *out = VMSHIFT_TRANSFER_SAN;
    else if (!strcmp(s, "network"))
        *out = VMSHIFT_TRANSFER_NETWORK;
    else
        return FALSE;
    return TRUE;
}

VmshiftMigrationSpec *
host_build_spec(HostSession *s, const char *vm_spec, HostMigrateOpts *o, gboolean storage_only,
                HostBackend **backend_out, VmshiftVm **vm_out, GError **error)
{
    g_autoptr(VmshiftMigrationSpec) spec = vmshift_migration_spec_new();
    g_autoptr(VmshiftVm) vm = NULL;
    HostBackend *b = NULL;

    if (!add_mappings(spec->disk_paths, o->disk_paths, "--disk-path", error)
        || !add_mappings(spec->networks, o->networks, "--network", error))
        return NULL;
    if (!parse_transfer(o->transfer, &spec->transfer)) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_INVALID_ARGUMENT,
                    "--transfer must be auto, san or network, not '%s'", o->transfer);
        return NULL;
    }
    vm = host_find_vm(s->reg, vm_spec, &b, error);
    if (!vm)
        return NULL;
    spec->vm = g_strdup(vm->name);
    spec->dest_path = g_strdup(o->path);
    spec->start = o->start;
    spec->force = o->force;

    if (storage_only) {
        spec->type = VMSHIFT_MIGRATION_STORAGE;
    } else {
        HostBackend *hb = NULL;
        if (o->to_group) {
            g_autoptr(GPtrArray) ratings = host_rate(s->reg, b, vm, o->to_group, error);
            HostRating *best;
            if (!ratings)
                return NULL;
            best = ratings->len ? g_ptr_array_index(ratings, 0) : NULL;
            if (!best || !best->eligible) {
                g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_NOT_FOUND,
                            "no host of group '%s' can take VM '%s' (see 'vmshift rate %s:%s "
                            "--group %s')", o->to_group, vm->name, host_backend_name(b),
                            vm->name, o->to_group);
                return NULL;
            }
            spec->dest_host = g_strdup(best->host->name);
            hb = best->backend;
            /* storage follows to the roomiest volume unless the SAN is shared */
            if (!spec->dest_path && spec->transfer != VMSHIFT_TRANSFER_SAN && best->best_volume) {
                gboolean shared = FALSE;
                for (guint k = 0; k < best->factors->len; k++) {
                    HostFactor *f = g_ptr_array_index(best->factors, k);
                    if (!strcmp(f->name, "san") && strstr(f->detail, "shares"))
                        shared = TRUE;
                }
                if (!shared)
                    spec->dest_path = g_strdup(best->best_volume);
            }
        } else {
            g_autoptr(VmshiftHost) h = host_find_host(s->reg, o->to, b, &hb, error);
            if (!h)
                return NULL;
            spec->dest_host = g_strdup(h->name);
        }
        if (hb != b) {
            g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_NOT_SUPPORTED,
                        "host '%s' belongs to backend '%s' and VM '%s' to '%s': moving "
                        "between backends is not supported", spec->dest_host,
                        host_backend_name(hb), vm->name, host_backend_name(b));
            return NULL;
        }
        if (o->live)
            spec->type = VMSHIFT_MIGRATION_LIVE;
        else if (o->cold)
            spec->type = VMSHIFT_MIGRATION_COLD;
        else
            spec->type = vm->power_state == VMSHIFT_POWER_RUNNING ? VMSHIFT_MIGRATION_LIVE
                                                                  : VMSHIFT_MIGRATION_COLD;
    }
    if (backend_out)
        *backend_out = b;
    if (vm_out)
        *vm_out = g_steal_pointer(&vm);
    return g_steal_pointer(&spec);
}

static void
append_arg(GString *s, const char *a)
{
    g_autofree char *q = NULL;
    gboolean plain = *a != 0;
    for (const char *p = a; *p; p++)
        if (!g_ascii_isalnum(*p) && !strchr("-_.,/:=@+%", *p))
            plain = FALSE;
    q = plain ? g_strdup(a) : g_shell_quote(a);
    g_string_append_c(s, ' ');
    g_string_append(s, q);
}

char *
host_spec_command_line(const char *backend, const VmshiftMigrationSpec *spec)
{
    GString *s = g_string_new("vmshift");
    g_autofree char *vm = g_strdup_printf("%s:%s", backend, spec->vm);
    static const char *const transfer[] = { "auto", "san", "network" };

    if (spec->type == VMSHIFT_MIGRATION_STORAGE) {
        g_string_append(s, " migrate-storage");
        append_arg(s, vm);
    } else {
        g_autofree char *to = g_strdup_printf("%s:%s", backend, spec->dest_host);
        g_string_append(s, " migrate");
        append_arg(s, vm);
        g_string_append(s, " --to");
        append_arg(s, to);
        g_string_append(s, spec->type == VMSHIFT_MIGRATION_LIVE ? " --live" : " --cold");
    }
    if (spec->dest_path) {
        g_string_append(s, " --path");
        append_arg(s, spec->dest_path);
    }
    for (guint i = 0; i < spec->disk_paths->len; i++) {
        VmshiftMapping *m = g_ptr_array_index(spec->disk_paths, i);
        g_autofree char *kv = g_strdup_printf("%s=%s", m->key, m->value);
        g_string_append(s, " --disk-path");
        append_arg(s, kv);
    }
    for (guint i = 0; i < spec->networks->len; i++) {
        VmshiftMapping *m = g_ptr_array_index(spec->networks, i);
        g_autofree char *kv = g_strdup_printf("%s=%s", m->key, m->value);
        g_string_append(s, " --network");
        append_arg(s, kv);
    }
    if (spec->transfer != VMSHIFT_TRANSFER_AUTO)
        g_string_append_printf(s, " --transfer %s", transfer[spec->transfer % 3]);
    if (spec->start)
        g_string_append(s, " --start");
    if (spec->force)
        g_string_append(s, " --force");
    return g_string_free(s, FALSE);
}

static json_object *
spec_json_obj(const VmshiftMigrationSpec *spec, HostJobKind kind)
{
    g_autofree char *txt = host_spec_to_json(spec, kind);
    return json_tokener_parse(txt);
}

/* check: findings and a verdict; exit 0 when migrate would proceed */
static int
cmd_check(HostSession *s, CmdOpts *o, char **args)
{
    g_autoptr(GError) err = NULL;
    HostBackend *b = NULL;
    g_autoptr(VmshiftVm) vm = NULL;
    g_autoptr(VmshiftMigrationSpec) spec = host_build_spec(s, args[0], &o->m, FALSE, &b, &vm,
                                                           &err);
    g_autoptr(GPtrArray) f = NULL;
    guint errors, warnings;
    gboolean ok;

    if (!spec)
        return fail(err);
    f = host_validate(b, spec, vm, &err);
    if (!f)
        return fail(err);
    host_findings_count(f, &errors, &warnings);
    ok = errors == 0 && (warnings == 0 || spec->force);
    if (s->g->json) {
        json_object *root = json_object_new_object();
        json_object *arr = json_object_new_array();
        for (guint i = 0; i < f->len; i++)
            json_object_array_add(arr, host_json_finding(g_ptr_array_index(f, i)));
        json_object_object_add(root, "backend", host_json_string(host_backend_name(b)));
        json_object_object_add(root, "spec", spec_json_obj(spec, HOST_JOB_MIGRATE));
        json_object_object_add(root, "findings", arr);
        json_object_object_add(root, "errors", json_object_new_int((int)errors));
        json_object_object_add(root, "warnings", json_object_new_int((int)warnings));
        json_object_object_add(root, "ok", json_object_new_boolean(ok));
        host_json_print(root);
    } else {
        g_autofree char *cmd = host_spec_command_line(host_backend_name(b), spec);
        printf("Checking: %s\n\n", cmd);
        host_findings_print(f, stdout);
        printf("\n%s: %u error%s, %u warning%s%s\n", ok ? "OK" : "NOT OK", errors,
               errors == 1 ? "" : "s", warnings, warnings == 1 ? "" : "s",
               !errors && warnings && !spec->force ? " (--force accepts warnings)" : "");
    }
    return ok ? HOST_EXIT_OK : HOST_EXIT_FAILED;
}

/* ---- running jobs from the command line ------------------------------------------------- */

static int
report_job(HostSession *s, HostJournal *j, HostJobRun *run)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(HostJobRecord) rec = host_journal_get(j, host_job_run_id(run), &err);
    const GError *jerr = host_job_run_error(run);
    gboolean ok = !jerr;

    if (s->g->json && rec) {
        host_json_print(host_json_job(rec));
    } else if (rec && ok) {
        printf("job %" G_GINT64_FORMAT " %s: %s '%s' is on %s (%s)\n", rec->id, rec->state,
               rec->kind, rec->vm, rec->location_host ? rec->location_host : "-",
               rec->location_detail ? rec->location_detail : "-");
    }
    if (!ok) {
        if (rec && rec->location_host)
            host_err("job %" G_GINT64_FORMAT " %s: %s; VM '%s' is on %s (%s)", rec->id,
                     rec->state, jerr->message, rec->vm, rec->location_host,
                     rec->location_detail ? rec->location_detail : "-");
        else
            host_err("job %" G_GINT64_FORMAT " %s: %s", host_job_run_id(run),
                     host_job_run_state(run), jerr->message);
    }
    return ok ? HOST_EXIT_OK : HOST_EXIT_FAILED;
}

static int
run_single_job(HostSession *s, HostJobKind kind, HostBackend *b, const VmshiftVm *vm,
               const VmshiftMigrationSpec *spec, gint64 repair_id)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(HostJournal) j = host_session_journal(s, &err);
    HostJobContext ctx = { 0 };
    HostJobRun *run;
    g_autoptr(GPtrArray) runs = g_ptr_array_new();
    int rc;

    if (!j)
        return fail(err);
    if (!host_backend_ensure_open(b, &err))
        return fail(err);
    ctx.reg = s->reg;
    ctx.journal = j;
    ctx.json = s->g->json;
    ctx.verbose = s->g->verbose;
    ctx.progress = host_progress_new(isatty(STDERR_FILENO), s->g->json);
    run = host_job_run_new(&ctx, kind, b, vm, spec, repair_id, &err);
    if (!run) {
        host_progress_free(ctx.progress);
        return fail(err);
    }
    if (!s->g->json)
        host_progress_line(ctx.progress, "job %" G_GINT64_FORMAT ": %s %s", host_job_run_id(run),
                           host_job_kind_name(kind), vm ? vm->name : spec ? spec->vm : "");
    host_job_run_start(run);
    g_ptr_array_add(runs, run);
    host_jobs_wait(&ctx, runs);
    rc = report_job(s, j, run);
    host_job_run_free(run);
    host_progress_free(ctx.progress);
    return rc;
}

static int
print_dry_run(HostSession *s, HostBackend *b, const VmshiftVm *vm,
              const VmshiftMigrationSpec *spec)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(GPtrArray) f = host_validate(b, spec, vm, &err);
    g_autofree char *cmd = host_spec_command_line(host_backend_name(b), spec);
    guint errors = 0, warnings = 0;

    if (!f)
        return fail(err);
    host_findings_count(f, &errors, &warnings);
    if (s->g->json) {
        json_object *root = json_object_new_object();
        json_object *arr = json_object_new_array();
        json_object *cmds = json_object_new_array();
        for (guint i = 0; i < f->len; i++)
            json_object_array_add(arr, host_json_finding(g_ptr_array_index(f, i)));
        json_object_array_add(cmds, json_object_new_string(cmd));
        json_object_object_add(root, "dry_run", json_object_new_boolean(TRUE));
        json_object_object_add(root, "backend", host_json_string(host_backend_name(b)));
        json_object_object_add(root, "source_host", host_json_string(vm->host));
        json_object_object_add(root, "spec", spec_json_obj(spec, HOST_JOB_MIGRATE));
        json_object_object_add(root, "findings", arr);
        json_object_object_add(root, "commands", cmds);
        json_object_object_add(root, "would_run",
                               json_object_new_boolean(!errors && (!warnings || spec->force)));
        host_json_print(root);
    } else {
        printf("Plan (dry run, nothing changes):\n");
        printf("  VM:        %s:%s (%s on %s)\n", host_backend_name(b), vm->name,
               vmshift_power_state_name(vm->power_state), vm->host ? vm->host : "-");
        printf("  type:      %s\n", vmshift_migration_type_name(spec->type));
        if (spec->dest_host)
            printf("  to host:   %s\n", spec->dest_host);
        printf("  storage:   %s\n", spec->dest_path ? spec->dest_path
                                    : spec->disk_paths->len ? "per disk (see --disk-path)"
                                                            : "stays where it is");
        printf("  phases:    validate, prepare, transfer, switchover%s, cleanup\n",
               vmshift_migration_spec_moves_storage(spec) && host_backend_has_op(b, "recreate_acl")
                   ? ", acl" : "");
        printf("\nChecks:\n");
        host_findings_print(f, stdout);
        printf("\nEquivalent command:\n  %s\n", cmd);
        if (errors || (warnings && !spec->force))
            printf("\nThis migration would not run: %u error(s), %u warning(s)%s\n", errors,
                   warnings, warnings && !spec->force ? " (--force accepts warnings)" : "");
    }
    return HOST_EXIT_OK;
}

static int
cmd_migrate_common(HostSession *s, CmdOpts *o, char **args, gboolean storage)
{
    g_autoptr(GError) err = NULL;
    HostBackend *b = NULL;
    g_autoptr(VmshiftVm) vm = NULL;
    g_autoptr(VmshiftMigrationSpec) spec = host_build_spec(s, args[0], &o->m, storage, &b, &vm,
                                                           &err);
    if (!spec)
        return fail(err);
    if (o->m.dry_run)
        return print_dry_run(s, b, vm, spec);
    if (!host_backend_has_op(b, "migrate")) {
        host_backend_unsupported(b, "migrate", &err);
        return fail(err);
    }
    return run_single_job(s, storage ? HOST_JOB_STORAGE : HOST_JOB_MIGRATE, b, vm, spec, 0);
}

static int
cmd_migrate(HostSession *s, CmdOpts *o, char **args)
{
    return cmd_migrate_common(s, o, args, FALSE);
}

static int
cmd_migrate_storage(HostSession *s, CmdOpts *o, char **args)
{
    return cmd_migrate_common(s, o, args, TRUE);
}

/* ---- merge-status, acl ------------------------------------------------------------------- */

static int
cmd_merge_status(HostSession *s, CmdOpts *o, char **args)
{
    g_autoptr(GError) err = NULL;
    HostBackend *b = NULL;
    g_autoptr(VmshiftVm) vm = host_find_vm(s->reg, args[0], &b, &err);
    g_autoptr(VmshiftCheckpointState) cp = NULL;

    if (!vm)
        return fail(err);
    cp = host_backend_checkpoint_state(b, vm->name, &err);
    if (!cp)
        return fail(err);
    if (s->g->json) {
        json_object *root = json_object_new_object();
        json_object_object_add(root, "backend", host_json_string(host_backend_name(b)));
        json_object_object_add(root, "vm", host_json_string(vm->name));
        json_object_object_add(root, "merging", json_object_new_boolean(cp->merging));
        json_object_object_add(root, "needs_consolidation",
                               json_object_new_boolean(cp->needs_consolidation));
        json_object_object_add(root, "detail", host_json_string(cp->detail));
        json_object_object_add(root, "percent", cp->percent >= 0
                                                    ? json_object_new_int(cp->percent) : NULL);
        json_object_object_add(root, "started",
                               cp->started ? json_object_new_int64(cp->started) : NULL);
        host_json_print(root);
    } else if (cp->merging) {
        g_autofree char *t = host_format_time(cp->started);
        printf("%s:%s: merge in progress", host_backend_name(b), vm->name);
        if (cp->percent >= 0)
            printf(", %d%%", cp->percent);
        if (cp->started)
            printf(", started %s", t);
        printf("%s%s\n", cp->detail ? ": " : "", cp->detail ? cp->detail : "");
    } else {
        printf("%s:%s: no merge in progress%s\n", host_backend_name(b), vm->name,
               cp->needs_consolidation ? " (but the disks need consolidation)" : "");
    }
    return HOST_EXIT_OK;
}

static int
cmd_acl_recreate(HostSession *s, CmdOpts *o, char **args)
{
    g_autoptr(GError) err = NULL;
    HostBackend *b = NULL;
    g_autoptr(VmshiftVm) vm = host_find_vm(s->reg, args[0], &b, &err);

    if (!vm)
        return fail(err);
    if (!host_backend_has_op(b, "recreate_acl")) {
        host_backend_unsupported(b, "recreate_acl", &err);
        return fail(err);
    }
    return run_single_job(s, HOST_JOB_ACL, b, vm, NULL, 0);
}

/* ---- jobs ----------------------------------------------------------------------------------- */

static gboolean
parse_job_id(const char *s, gint64 *id)
{
    return g_ascii_string_to_signed(s, 10, 1, G_MAXINT64, id, NULL);
}

static int
cmd_jobs(HostSession *s, CmdOpts *o, char **args)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(HostJournal) j = host_session_journal(s, &err);
    g_autoptr(GPtrArray) list = NULL;

    if (!j || !(list = host_journal_list(j, &err)))
        return fail(err);
    if (s->g->json) {
        json_object *root = json_object_new_object();
        json_object *arr = json_object_new_array();
        for (guint i = 0; i < list->len; i++)
            json_object_array_add(arr, host_json_job(g_ptr_array_index(list, i)));
        json_object_object_add(root, "jobs", arr);
        host_json_print(root);
        return HOST_EXIT_OK;
    }
    if (!list->len) {
        printf("no jobs in %s\n", s->config->state_dir);
        return HOST_EXIT_OK;
    }
    {
        g_autoptr(HostTable) t = host_table_new("ID", "KIND", "BACKEND", "VM", "STATE", "PHASE",
                                                "PROGRESS", "STARTED", "VM IS ON", NULL);
        for (guint i = 0; i < list->len; i++) {
            HostJobRecord *r = g_ptr_array_index(list, i);
            g_autofree char *id = g_strdup_printf("%" G_GINT64_FORMAT, r->id);
            g_autofree char *pct = r->percent >= 0 ? g_strdup_printf("%.0f%%", r->percent)
                                                   : NULL;
            g_autofree char *started = host_format_time(r->started);
            host_table_add(t, id, r->kind, r->backend, r->vm, r->state, r->phase, pct, started,
                           r->location_host);
        }
        host_table_print(t, stdout);
    }
    return HOST_EXIT_OK;
}

static int
cmd_job_show(HostSession *s, CmdOpts *o, char **args)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(HostJournal) j = NULL;
    g_autoptr(HostJobRecord) r = NULL;
    g_autoptr(GPtrArray) ev = NULL;
    gint64 id;

    if (!parse_job_id(args[0], &id)) {
        host_err("job show: '%s' is not a job id", args[0]);
        return HOST_EXIT_USAGE;
    }
    j = host_session_journal(s, &err);
    if (!j || !(r = host_journal_get(j, id, &err)) || !(ev = host_journal_events(j, id, &err)))
        return fail(err);
    if (s->g->json) {
        json_object *root = host_json_job(r);
        json_object *arr = json_object_new_array();
        for (guint i = 0; i < ev->len; i++) {
            HostEventRecord *e = g_ptr_array_index(ev, i);
            json_object *ej = json_object_new_object();
            json_object_object_add(ej, "time", json_object_new_int64(e->time));
            json_object_object_add(ej, "kind", host_json_string(e->kind));
            json_object_object_add(ej, "level", host_json_string(e->level));
            json_object_object_add(ej, "key", host_json_string(e->key));
            /* saved plugin data may be sensitive to the plugin; it is kept in
             * the journal but only its keys are shown */
            json_object_object_add(ej, "value", host_json_string(strcmp(e->kind, "save") == 0
                                                                     ? NULL : e->value));
            json_object_array_add(arr, ej);
        }
        json_object_object_add(root, "events", arr);
        host_json_print(root);
        return HOST_EXIT_OK;
    }
    {
        g_autofree char *st = host_format_time(r->started);
        g_autofree char *en = host_format_time(r->ended);
        printf("job %" G_GINT64_FORMAT ": %s of %s:%s\n", r->id, r->kind, r->backend, r->vm);
        printf("  state:     %s (phase %s)\n", r->state, r->phase);
        if (r->error_message)
            printf("  error:     %s: %s\n", r->error_code, r->error_message);
        printf("  VM is on:  %s%s%s%s\n", r->location_host ? r->location_host : "unknown",
               r->location_detail ? " (" : "", r->location_detail ? r->location_detail : "",
               r->location_detail ? ")" : "");
        if (r->source_host)
            printf("  came from: %s%s%s\n", r->source_host, r->source_path ? ", files in " : "",
                   r->source_path ? r->source_path : "");
        printf("  started:   %s\n  ended:     %s\n", st, en);
        printf("  process:   pid %" G_GINT64_FORMAT "\n", r->pid);
        if (r->percent >= 0 || r->bytes_total) {
            g_autofree char *d = host_format_bytes((guint64)r->bytes_done);
            g_autofree char *t = host_format_bytes((guint64)r->bytes_total);
            printf("  progress:  %.0f%%, %s of %s\n", r->percent < 0 ? 0 : r->percent, d, t);
        }
        if (r->spec)
            printf("  spec:      %s\n", r->spec);
        if (r->results && strcmp(r->results, "{}") != 0)
            printf("  results:   %s\n", r->results);
        printf("\nlog:\n");
        for (guint i = 0; i < ev->len; i++) {
            HostEventRecord *e = g_ptr_array_index(ev, i);
            g_autofree char *t = host_format_time(e->time);
            if (!strcmp(e->kind, "phase"))
                printf("  %s  phase %s\n", t, e->value);
            else if (!strcmp(e->kind, "save"))
                printf("  %s  saved %s\n", t, e->key);
            else if (!strcmp(e->kind, "state"))
                printf("  %s  %s%s%s\n", t, e->key, e->value ? ": " : "", e->value ? e->value : "");
            else
                printf("  %s  %s: %s\n", t, e->level ? e->level : e->kind, e->value ? e->value : "");
        }
    }
    return HOST_EXIT_OK;
}

static int
cmd_job_cancel(HostSession *s, CmdOpts *o, char **args)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(HostJournal) j = NULL;
    gint64 id;

    if (!parse_job_id(args[0], &id)) {
        host_err("job cancel: '%s' is not a job id", args[0]);
        return HOST_EXIT_USAGE;
    }
    j = host_session_journal(s, &err);
    if (!j || !host_journal_request_cancel(j, id, &err))
        return fail(err);
    if (s->g->json) {
        json_object *root = json_object_new_object();
        json_object_object_add(root, "id", json_object_new_int64(id));
        json_object_object_add(root, "cancel_requested", json_object_new_boolean(TRUE));
        host_json_print(root);
    } else {
        printf("cancellation of job %" G_GINT64_FORMAT " requested; the process running it "
               "stops it at its next safe point\n", id);
    }
    return HOST_EXIT_OK;
}

static int
cmd_job_repair(HostSession *s, CmdOpts *o, char **args)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(HostJournal) j = NULL;
    g_autoptr(HostJobRecord) r = NULL;
    g_autoptr(VmshiftMigrationSpec) spec = NULL;
    HostBackend *b;
    gint64 id;

    if (!parse_job_id(args[0], &id)) {
        host_err("job repair: '%s' is not a job id", args[0]);
        return HOST_EXIT_USAGE;
    }
    j = host_session_journal(s, &err);
    if (!j || !(r = host_journal_get(j, id, &err)))
        return fail(err);
    if (!strcmp(r->state, "succeeded") || !strcmp(r->state, "repaired")) {
        host_err("job %" G_GINT64_FORMAT " is %s; there is nothing to repair", id, r->state);
        return HOST_EXIT_FAILED;
    }
    b = host_registry_get_open(s->reg, r->backend, &err);
    if (!b)
        return fail(err);
    if (!host_backend_has_op(b, "repair")) {
        host_backend_unsupported(b, "repair", &err);
        g_prefix_error(&err, "job %" G_GINT64_FORMAT " needs manual attention: ", id);
        return fail(err);
    }
    spec = r->spec ? host_spec_from_json(r->spec, NULL) : NULL;
    host_journal_close(g_steal_pointer(&j));
    return run_single_job(s, HOST_JOB_REPAIR, b, NULL, spec, id);
}

/* ---- the command table ---------------------------------------------------------------- */

static int cmd_bulk(HostSession *s, CmdOpts *o, char **args);

static const Command commands[] = {
    { "backends", "", 0, "list configured backends, their plugins and status", cmd_backends, 0 },
    { "hosts", "", 0, "list hosts", cmd_hosts, OPT_BACKEND | OPT_GROUP },
    { "vms", "", 0, "list VMs", cmd_vms, OPT_HOST | OPT_BACKEND },
    { "rate", "VM", 1, "rate the hosts of a group for VM (0-5 stars, with reasons)", cmd_rate,
      OPT_GROUP },
    { "check", "VM", 1, "validate a migration without running it", cmd_check,
      OPT_MIGRATE | OPT_PATHS | OPT_FORCE },
    { "migrate", "VM", 1, "move VM to another host (live or cold, with or without storage)",
      cmd_migrate, OPT_MIGRATE | OPT_PATHS | OPT_FORCE | OPT_DRY_RUN },
    { "migrate-storage", "VM", 1, "move VM's storage on its current host", cmd_migrate_storage,
      OPT_PATHS | OPT_FORCE | OPT_DRY_RUN },
    { "merge-status", "VM", 1, "show whether a checkpoint/snapshot merge runs on VM",
      cmd_merge_status, 0 },
    { "acl recreate", "VM", 1, "re-apply the access rules VM's files need", cmd_acl_recreate, 0 },
    { "jobs", "", 0, "list jobs from the journal", cmd_jobs, 0 },
    { "job show", "ID", 1, "show a job, its log and where the VM is", cmd_job_show, 0 },
    { "job cancel", "ID", 1, "cancel a running job (from any process)", cmd_job_cancel, 0 },
    { "job repair", "ID", 1, "bring a failed or interrupted job's VM to a consistent state",
      cmd_job_repair, 0 },
    { "bulk", "PLAN", 1, "run a plan file of migrations in waves", cmd_bulk,
      OPT_REVERSE | OPT_DRY_RUN | OPT_FORCE },
};

static int
cmd_bulk(HostSession *s, CmdOpts *o, char **args)
{
    g_autoptr(GPtrArray) argv = g_ptr_array_new();
    g_ptr_array_add(argv, (char *)"bulk");
    g_ptr_array_add(argv, args[0]);
    if (o->reverse)
        g_ptr_array_add(argv, (char *)"--reverse");
    if (o->m.dry_run)
        g_ptr_array_add(argv, (char *)"--dry-run");
    if (o->m.force)
        g_ptr_array_add(argv, (char *)"--force");
    g_ptr_array_add(argv, NULL);
    return host_cmd_bulk(s, (int)argv->len - 1, (char **)argv->pdata);
}

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
    fprintf(out, "\nGlobal options:\n"
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
        add_entry(a, "start", G_OPTION_ARG_NONE, &o->m.start,
                  "start the VM after a cold migration", NULL);
    }
    if (c->opts & OPT_PATHS) {
        add_entry(a, "path", G_OPTION_ARG_STRING, &o->m.path,
                  "move the VM's files and disks to DIR", "DIR");
        add_entry(a, "disk-path", G_OPTION_ARG_STRING_ARRAY, &o->m.disk_paths,
                  "move one disk to DIR (repeatable)", "DISK=DIR");
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
    static const char *const with_value[] = { "--config", "--plugin-dir", "--state-dir",
                                              "--backend", "--group", "--host", "--to",
                                              "--to-group", "--network", "--transfer", "--path",
                                              "--disk-path" };
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
    GPtrArray *tmp;

    if (n != c->nargs) {
        if (n < c->nargs)
            g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_INVALID_ARGUMENT,
                        "%s: missing %s", c->name, c->args);
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
    if (!add_mappings(tmp, o->m.disk_paths, "--disk-path", error)
        || !add_mappings(tmp, o->m.networks, "--network", error)) {
        g_ptr_array_unref(tmp);
        g_prefix_error(error, "%s: ", c->name);
        return FALSE;
    }
    g_ptr_array_unref(tmp);
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
    g_free(o->m.transfer);
    g_free(g->config_path);
    g_strfreev(g->plugin_dirs);
    g_free(g->state_dir);
}

int
host_main(int argc, char **argv)
{
    const Command *cmd = NULL;
    int word[2] = { -1, -1 };
    int nwords = 0;
    g_autofree char *name = NULL;
    CmdOpts o = { 0 };
    HostGlobals g = { 0 };
    GOptionContext *ctx;
    g_autoptr(GArray) entries = NULL;
    g_autoptr(GPtrArray) rest = NULL;
    g_autoptr(GError) err = NULL;
    char **args = NULL;
    int rc;
    gboolean help_only = FALSE;

    /* find the command word(s): the first two non-option words */
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
            return HOST_EXIT_OK;
        }
        host_err("no command given; see 'vmshift --help'");
        return HOST_EXIT_USAGE;
    }
    for (guint i = 0; i < G_N_ELEMENTS(commands); i++) {
        const char *cn = commands[i].name;
        const char *sp = strchr(cn, ' ');
        if (sp) {
            if (nwords == 2 && !strncmp(cn, argv[word[0]], sp - cn)
                && strlen(argv[word[0]]) == (size_t)(sp - cn) && !strcmp(sp + 1, argv[word[1]])) {
                cmd = &commands[i];
                break;
            }
        } else if (!strcmp(cn, argv[word[0]])) {
            cmd = &commands[i];
            word[1] = -1;
            break;
        }
    }
    if (!cmd) {
        const char *w = argv[word[0]];
        if (!strcmp(w, "acl") || !strcmp(w, "job")) {
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
                host_err("unknown command '%s %s'; see 'vmshift --help'", w, argv[word[1]]);
        } else {
            host_err("unknown command '%s'; see 'vmshift --help'", w);
        }
        return HOST_EXIT_USAGE;
    }

    rest = g_ptr_array_new();
    for (int i = 0; i < argc; i++)
        if (i != word[0] && i != word[1])
            g_ptr_array_add(rest, argv[i]);
    g_ptr_array_add(rest, NULL);

    name = g_strdup_printf("%s%s%s", cmd->name, *cmd->args ? " " : "", cmd->args);
    ctx = g_option_context_new(name);
    g_option_context_set_help_enabled(ctx, FALSE);
    g_option_context_set_summary(ctx, cmd->summary);
    entries = build_entries(cmd, &o, &g);
    g_option_context_add_main_entries(ctx, (GOptionEntry *)entries->data, NULL);
    {
        int rargc = (int)rest->len - 1;
        char **rargv = (char **)rest->pdata;
        if (!g_option_context_parse(ctx, &rargc, &rargv, &err)) {
            host_err("%s: %s; see 'vmshift %s --help'", cmd->name, err->message, cmd->name);
            g_option_context_free(ctx);
            opts_clear(&o, &g);
            return HOST_EXIT_USAGE;
        }
        if (g.help) {
            g_autofree char *help = g_option_context_get_help(ctx, TRUE, NULL);
            fputs(help, stdout);
            g_option_context_free(ctx);
            opts_clear(&o, &g);
            return HOST_EXIT_OK;
        }
        for (int i = 1; i < rargc; i++) {
            if (rargv[i][0] == '-' && rargv[i][1]) {
                host_err("%s: unknown option '%s'; see 'vmshift %s --help'", cmd->name,
                         rargv[i], cmd->name);
                g_option_context_free(ctx);
                opts_clear(&o, &g);
                return HOST_EXIT_USAGE;
            }
        }
        args = g_new0(char *, rargc > 0 ? rargc : 1);
        for (int i = 1; i < rargc; i++)
            args[i - 1] = rargv[i];
    }
    g_option_context_free(ctx);

    if (!check_args(cmd, &o, args, &err)) {
        host_err("%s; see 'vmshift %s --help'", err->message, cmd->name);
        g_free(args);
        opts_clear(&o, &g);
        return HOST_EXIT_USAGE;
    }
    {
        HostSession s;
        if (!host_session_open(&s, &g, &err)) {
            host_err("%s", err->message);
            rc = HOST_EXIT_FAILED;
        } else {
            rc = cmd->run(&s, &o, args);
            host_session_close(&s);
        }
    }
    g_free(args);
    opts_clear(&o, &g);
    return rc;
}
