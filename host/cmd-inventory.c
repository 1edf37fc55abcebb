/*
 * vmshift host: the inventory commands (backends, hosts, vms, rate,
 * merge-status): what there is and where, read-only.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "host/host.h"
#include "host/cmd.h"

/* Listed unless disabled (by the user's choice, not by a failure). */
static gboolean
listable(HostBackend *b)
{
    return b->status != HOST_BACKEND_DISABLED;
}

/* One backend's (or group member's) listing failed: said on stderr, kept
 * for --json; the exit code of the listing. */
static int
listing_failed(json_object *errs, const GError *err)
{
    host_err("%s", err->message);
    json_object_array_add(errs, host_json_error(err));
    return HOST_EXIT_FAILED;
}

/* The end of a listing: the table, or { KEY: [...], "errors": [...] }. */
static void
print_listing(HostSession *s, HostTable *t, const char *key, json_object *arr, json_object *errs)
{
    if (s->g->json) {
        json_object *root = json_object_new_object();
        json_object_object_add(root, key, arr);
        json_object_object_add(root, "errors", errs);
        host_json_print(root);
    } else {
        json_object_put(arr);
        json_object_put(errs);
        host_table_print(t, stdout);
    }
}

/* ---- backends ---------------------------------------------------------------------- */

/*
 * `backends` opens each backend (its configuration read, its plugin's
 * open: no plugin contacts its hosts there) and contacts no host: it
 * answers at once, whatever the network (issue 15). --check asks every
 * opened backend for its hosts, all backends at once, each bounded by its
 * plugin's own timeouts (timeout=, connect-timeout=, ssh's).
 */
typedef struct {
    HostBackend *b;
    GError *error;   /* the listing failed */
    char *detail;    /* what the hosts said */
    gboolean answer; /* at least one host answered */
} Probe;

static gpointer
probe_backend(gpointer data)
{
    Probe *p = data;
    g_autoptr(GPtrArray) hosts = host_backend_list_hosts(p->b, &p->error);
    g_autoptr(GString) silent = g_string_new(NULL);
    guint answered = 0;

    if (!hosts)
        return NULL;
    for (guint k = 0; k < hosts->len; k++) {
        VmshiftHost *h = g_ptr_array_index(hosts, k);
        if (h->status != VMSHIFT_HOST_DISCONNECTED && h->status != VMSHIFT_HOST_UNKNOWN)
            answered++;
        else
            g_string_append_printf(silent, "; %s: %s%s%s", h->name ? h->name : "-",
                                   vmshift_host_status_name(h->status),
                                   h->status_detail ? ": " : "",
                                   h->status_detail ? h->status_detail : "");
    }
    p->answer = answered > 0;
    p->detail = g_strdup_printf("%u of %u host%s answered%s", answered, hosts->len,
                                hosts->len == 1 ? "" : "s", silent->str);
    return NULL;
}

/* --check: probes the opened backends in parallel; an array of Probe, one
 * per backend (b NULL: not probed). */
static Probe *
probe_backends(HostSession *s)
{
    guint n = s->reg->backends->len;
    Probe *probes = g_new0(Probe, n + 1);
    g_autoptr(GPtrArray) threads = g_ptr_array_new();

    for (guint i = 0; i < n; i++) {
        HostBackend *b = g_ptr_array_index(s->reg->backends, i);
        if (b->status != HOST_BACKEND_READY)
            continue;
        probes[i].b = b;
        g_ptr_array_add(threads, g_thread_new("probe", probe_backend, &probes[i]));
    }
    for (guint i = 0; i < threads->len; i++)
        g_thread_join(threads->pdata[i]);
    return probes;
}

static void
probes_free(Probe *probes, guint n)
{
    for (guint i = 0; probes && i < n; i++) {
        g_clear_error(&probes[i].error);
        g_free(probes[i].detail);
    }
    g_free(probes);
}

int
host_cmd_backends(HostSession *s, CmdOpts *o, char **args)
{
    g_autoptr(HostTable) t = host_table_new("BACKEND", "PLUGIN", "VERSION", "ENABLED", "STATUS",
                                            "CAPABILITIES", "DETAIL", NULL);
    json_object *arr = json_object_new_array();
    g_autoptr(GPtrArray) installed = host_loader_scan(s->loader);
    g_autoptr(GHashTable) used = g_hash_table_new(g_str_hash, g_str_equal);
    json_object *unused = json_object_new_array();
    g_autoptr(GString) unused_s = g_string_new(NULL);
    Probe *probes = NULL;
    int rc = HOST_EXIT_OK;

    for (guint i = 0; i < s->reg->backends->len; i++) {
        HostBackend *b = g_ptr_array_index(s->reg->backends, i);
        if (b->status == HOST_BACKEND_LOADED)
            host_backend_ensure_open(b, NULL);
    }
    if (o->check)
        probes = probe_backends(s);
    for (guint i = 0; i < s->reg->backends->len; i++) {
        HostBackend *b = g_ptr_array_index(s->reg->backends, i);
        const VmshiftPluginDescriptor *d = b->plugin ? b->plugin->desc : NULL;
        g_autofree char *caps = d ? host_plugin_capabilities(d) : NULL;
        const char *status = host_backend_status_name(b->status);
        const char *detail = b->error ? b->error->message : d ? d->description : NULL;
        json_object *j = host_json_backend(b);
        Probe *p = probes && probes[i].b ? &probes[i] : NULL;

        if (p) {
            gboolean up = p->error == NULL && p->answer;
            detail = p->error ? p->error->message : p->detail;
            if (!up) {
                status = host_backend_status_name(HOST_BACKEND_FAILED);
                rc = HOST_EXIT_FAILED;
            }
            json_object_object_add(j, "status", json_object_new_string(status));
            json_object_object_add(j, "reachable", json_object_new_boolean(up));
            json_object_object_add(j, "detail", json_object_new_string(detail));
            if (p->error)
                json_object_object_add(j, "error", host_json_error(p->error));
        }
        if (b->conf->plugin)
            g_hash_table_add(used, b->conf->plugin);
        host_table_add(t, b->conf->name, b->conf->plugin, d ? d->version : NULL,
                       b->conf->enabled ? "yes" : "no", status, caps && *caps ? caps : NULL,
                       detail);
        json_object_array_add(arr, j);
    }
    probes_free(probes, s->reg->backends->len);
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
    return rc;
}

/* ---- hosts ---------------------------------------------------------------------------- */

static void
add_host_row(HostTable *t, const char *backend, const VmshiftHost *h)
{
    g_autofree char *fr = host_format_bytes(h->memory_free);
    g_autofree char *tot = host_format_bytes(h->memory_total);
    g_autofree char *mem = g_strdup_printf("%s / %s", fr, tot);
    g_autofree char *cpus = g_strdup_printf("%u", h->cpu_count);
    g_autofree char *use = h->cpu_usage_percent >= 0 ? g_strdup_printf("%d%%", h->cpu_usage_percent)
                                                     : NULL;
    host_table_add(t, backend, h->name, vmshift_host_status_name(h->status), h->hypervisor, cpus,
                   use, mem, h->status_detail);
}

int
host_cmd_hosts(HostSession *s, CmdOpts *o, char **args)
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
                rc = listing_failed(errs, err);
                continue;
            }
            for (guint k = 0; k < hosts->len; k++) {
                VmshiftHost *h = g_ptr_array_index(hosts, k);
                add_host_row(t, host_backend_name(b), h);
                json_object_array_add(arr, host_json_host(h, host_backend_name(b)));
            }
        }
    }
    print_listing(s, t, "hosts", arr, errs);
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
    host_table_add(t, backend, vm->name, vm->host, vmshift_power_state_name(vm->power_state), cpus,
                   mem, disks, nics, vm->status_detail);
}

/* What one backend lists for a listing command (vms, networks, volumes). */
typedef GPtrArray *(*ListFunc)(HostBackend *b, const char *host, GError **error);
/* Adds element @item of backend @backend to the table and the JSON array. */
typedef void (*AddFunc)(HostTable *t, json_object *arr, const char *backend, gpointer item);

/* Whether a backend in scope (@hb, or every listable one) has host @name;
 * FALSE with the reason in @why, naming the backends that did not answer. */
static gboolean
host_exists(HostSession *s, const char *hb, const char *name, GString *why)
{
    g_autoptr(GString) silent = g_string_new(NULL);

    for (guint i = 0; i < s->reg->backends->len; i++) {
        HostBackend *b = g_ptr_array_index(s->reg->backends, i);
        g_autoptr(GError) err = NULL;
        g_autoptr(GPtrArray) hosts = NULL;
        if (hb ? strcmp(hb, host_backend_name(b)) != 0 : !listable(b))
            continue;
        hosts = host_backend_list_hosts(b, &err);
        if (!hosts) {
            g_string_append_printf(silent, "; backend '%s' did not answer: %s",
                                   host_backend_name(b), err->message);
            continue;
        }
        for (guint k = 0; k < hosts->len; k++) {
            VmshiftHost *h = g_ptr_array_index(hosts, k);
            if (!g_strcmp0(h->name, name) || !g_strcmp0(h->id, name))
                return TRUE;
        }
    }
    g_string_printf(why, "host '%s' not found in %s%s%s", name, hb ? "backend '" : "any backend",
                    hb ? hb : "", hb ? "'" : "");
    g_string_append(why, silent->str);
    return FALSE;
}

/* Lists with @list on every listable backend, or on the one --backend or
 * --host BACKEND:HOST names, restricted to --host; prints the listing. */
static int
list_backends(HostSession *s, CmdOpts *o, const char *key, HostTable *t, ListFunc list, AddFunc add)
{
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
    if (hname) {
        g_autoptr(GString) why = g_string_new(NULL);
        if (!host_exists(s, hb, hname, why)) {
            json_object_put(arr);
            json_object_put(errs);
            host_err("%s", why->str);
            return HOST_EXIT_FAILED;
        }
    }
    for (guint i = 0; i < s->reg->backends->len; i++) {
        HostBackend *b = g_ptr_array_index(s->reg->backends, i);
        g_autoptr(GError) err = NULL;
        g_autoptr(GPtrArray) items = NULL;
        if (hb ? strcmp(hb, host_backend_name(b)) != 0 : !listable(b))
            continue;
        items = list(b, hname, &err);
        if (!items) {
            /* a host filter that this backend does not know is not an error
             * when the user did not name the backend */
            if (!hb && hname && g_error_matches(err, VMSHIFT_ERROR, VMSHIFT_ERROR_NOT_FOUND))
                continue;
            rc = listing_failed(errs, err);
            continue;
        }
        for (guint k = 0; k < items->len; k++)
            add(t, arr, host_backend_name(b), g_ptr_array_index(items, k));
    }
    print_listing(s, t, key, arr, errs);
    return rc;
}

static void
add_vm(HostTable *t, json_object *arr, const char *backend, gpointer item)
{
    add_vm_row(t, backend, item);
    json_object_array_add(arr, host_json_vm(item, backend));
}

int
host_cmd_vms(HostSession *s, CmdOpts *o, char **args)
{
    g_autoptr(HostTable) t = host_table_new("BACKEND", "VM", "HOST", "STATE", "CPUS", "MEMORY",
                                            "DISKS", "NICS", "DETAIL", NULL);
    return list_backends(s, o, "vms", t, host_backend_list_vms, add_vm);
}

/* ---- networks, volumes ------------------------------------------------------------------ */

static char *
join_names(GPtrArray *a)
{
    g_autoptr(GString) s = g_string_new(NULL);
    for (guint i = 0; a && i < a->len; i++)
        g_string_append_printf(s, "%s%s", s->len ? "," : "", (char *)g_ptr_array_index(a, i));
    return s->len ? g_string_free(g_steal_pointer(&s), FALSE) : NULL;
}

static void
add_network(HostTable *t, json_object *arr, const char *backend, gpointer item)
{
    const VmshiftNetwork *n = item;
    g_autofree char *hosts = join_names(n->hosts);
    json_object *j = json_object_new_object();

    host_table_add(t, backend, n->name, n->kind, hosts ? hosts : "all", n->id);
    json_object_object_add(j, "backend", host_json_string(backend));
    json_object_object_add(j, "name", host_json_string(n->name));
    json_object_object_add(j, "id", host_json_string(n->id));
    json_object_object_add(j, "kind", host_json_string(n->kind));
    json_object_object_add(j, "hosts", host_json_strings(n->hosts));
    json_object_array_add(arr, j);
}

int
host_cmd_networks(HostSession *s, CmdOpts *o, char **args)
{
    g_autoptr(HostTable) t = host_table_new("BACKEND", "NETWORK", "KIND", "HOSTS", "ID", NULL);
    return list_backends(s, o, "networks", t, host_backend_list_networks, add_network);
}

static void
add_volume(HostTable *t, json_object *arr, const char *backend, gpointer item)
{
    const VmshiftVolume *v = item;
    g_autofree char *fr = host_format_bytes(v->free);
    g_autofree char *cap = host_format_bytes(v->capacity);
    g_autofree char *hosts = join_names(v->hosts);
    json_object *j = json_object_new_object();

    host_table_add(t, backend, v->host ? v->host : hosts, v->name, v->kind, v->path, fr, cap,
                   v->shared ? "yes" : "no", v->is_default ? "yes" : "no", v->id);
    json_object_object_add(j, "backend", host_json_string(backend));
    json_object_object_add(j, "name", host_json_string(v->name));
    json_object_object_add(j, "id", host_json_string(v->id));
    json_object_object_add(j, "path", host_json_string(v->path));
    json_object_object_add(j, "host", host_json_string(v->host));
    json_object_object_add(j, "kind", host_json_string(v->kind));
    json_object_object_add(j, "capacity", json_object_new_int64((gint64)v->capacity));
    json_object_object_add(j, "free", json_object_new_int64((gint64)v->free));
    json_object_object_add(j, "shared", json_object_new_boolean(v->shared));
    json_object_object_add(j, "is_default", json_object_new_boolean(v->is_default));
    json_object_object_add(j, "hosts", host_json_strings(v->hosts));
    json_object_array_add(arr, j);
}

int
host_cmd_volumes(HostSession *s, CmdOpts *o, char **args)
{
    g_autoptr(HostTable) t = host_table_new("BACKEND", "HOST", "VOLUME", "KIND", "PATH", "FREE",
                                            "CAPACITY", "SHARED", "DEFAULT", "ID", NULL);
    return list_backends(s, o, "volumes", t, host_backend_list_volumes, add_volume);
}

/* ---- rate ----------------------------------------------------------------------------- */

int
host_cmd_rate(HostSession *s, CmdOpts *o, char **args)
{
    g_autoptr(GError) err = NULL;
    HostBackend *b = NULL;
    g_autoptr(VmshiftVm) vm = host_find_vm(s->reg, args[0], &b, &err);
    g_autoptr(GPtrArray) ratings = NULL;

    if (!vm)
        return host_cmd_fail(err);
    ratings = host_rate(s->reg, b, vm, o->group, &err);
    if (!ratings)
        return host_cmd_fail(err);
    if (s->g->json) {
        host_json_print(host_json_ratings(vm, host_backend_name(b), o->group, ratings));
        return HOST_EXIT_OK;
    }
    {
        g_autoptr(HostTable)
            t = host_table_new("RATING", "SCORE", "HOST", "BACKEND", "STORAGE", "REASON", NULL);
        for (guint i = 0; i < ratings->len; i++) {
            HostRating *r = g_ptr_array_index(ratings, i);
            g_autofree char *stars = host_stars(r->score);
            g_autofree char *score = r->eligible ? g_strdup_printf("%.1f", r->score)
                                                 : g_strdup("ruled out");
            g_autofree char *storage = r->storage_shared ? g_strdup("stays (shared)")
                                       : r->dest_path    ? g_strdup_printf("to %s", r->dest_path)
                                                         : g_strdup("stays");
            host_table_add(t, stars, score, r->host->name, host_backend_name(r->backend), storage,
                           r->reason_code);
        }
        printf("Placement of VM '%s' (backend %s, now on %s):\n\n", vm->name, host_backend_name(b),
               vm->host ? vm->host : "-");
        host_table_print(t, stdout);
        printf("\nRating explanation:\n");
        for (guint i = 0; i < ratings->len; i++) {
            HostRating *r = g_ptr_array_index(ratings, i);
            g_autofree char *stars = host_stars(r->score);
            g_autofree char *line = g_strdup_printf("%s %s", r->host->name, stars);
            g_autofree char *shown = host_display(line);
            printf("\n%s\n", shown);
            for (guint k = 0; k < r->factors->len; k++) {
                HostFactor *f = g_ptr_array_index(r->factors, k);
                g_autofree char *eff = f->effect > -1e9 && f->effect != 0
                                           ? g_strdup_printf(" (%+.2g)", f->effect)
                                           : g_strdup(f->effect > -1e9 ? "" : " (rules it out)");
                g_autofree char *detail = host_display(f->detail);
                g_autofree char *code = f->code ? g_strdup_printf(" [%s]", f->code) : g_strdup("");
                printf("  %-8s %-5s %s%s%s\n", f->name, f->result, detail, eff, code);
            }
        }
    }
    return HOST_EXIT_OK;
}

/* ---- merge-status, acl ------------------------------------------------------------------- */

int
host_cmd_merge_status(HostSession *s, CmdOpts *o, char **args)
{
    g_autoptr(GError) err = NULL;
    HostBackend *b = NULL;
    g_autoptr(VmshiftVm) vm = host_find_vm(s->reg, args[0], &b, &err);
    g_autoptr(VmshiftCheckpointState) cp = NULL;

    if (!vm)
        return host_cmd_fail(err);
    cp = host_backend_checkpoint_state(b, vm->name, &err);
    if (!cp)
        return host_cmd_fail(err);
    if (s->g->json) {
        json_object *root = json_object_new_object();
        json_object_object_add(root, "backend", host_json_string(host_backend_name(b)));
        json_object_object_add(root, "vm", host_json_string(vm->name));
        json_object_object_add(root, "merging", json_object_new_boolean(cp->merging));
        json_object_object_add(root, "needs_consolidation",
                               json_object_new_boolean(cp->needs_consolidation));
        json_object_object_add(root, "detail", host_json_string(cp->detail));
        json_object_object_add(root, "percent",
                               cp->percent >= 0 ? json_object_new_int(cp->percent) : NULL);
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

/* ---- vm show --------------------------------------------------------------------------- */

/* "  LABEL  VALUE\n", the value escaped for the terminal. */
static void
field(const char *label, const char *value)
{
    g_autofree char *v = host_display(value ? value : "-");
    printf("  %-12s %s\n", label, v);
}

static void
print_vm_disks_nics(const VmshiftVm *vm)
{
    g_autoptr(HostTable) d = host_table_new("DISK", "PATH", "FORMAT", "SIZE", "ALLOCATED", "VOLUME",
                                            "BACKING", NULL);
    g_autoptr(HostTable) n = host_table_new("NIC", "MAC", "NETWORK", "MODEL", NULL);

    for (guint i = 0; i < vm->disks->len; i++) {
        const VmshiftDisk *k = g_ptr_array_index(vm->disks, i);
        g_autofree char *cap = host_format_bytes(k->capacity);
        g_autofree char *al = k->allocation ? host_format_bytes(k->allocation) : NULL;
        g_autofree char *chain = join_names(k->backing_chain);
        host_table_add(d, k->id, k->path, k->format, cap, al, k->volume, chain);
    }
    for (guint i = 0; i < vm->nics->len; i++) {
        const VmshiftNic *k = g_ptr_array_index(vm->nics, i);
        host_table_add(n, k->id, k->mac, k->network ? k->network : "(disconnected)", k->model);
    }
    printf("\nDisks:\n");
    host_table_print(d, stdout);
    printf("\nNICs:\n");
    host_table_print(n, stdout);
}

static json_object *
snapshots_json(GPtrArray *snaps)
{
    json_object *arr = json_object_new_array();
    for (guint i = 0; i < snaps->len; i++) {
        const VmshiftSnapshot *p = g_ptr_array_index(snaps, i);
        json_object *j = json_object_new_object();
        json_object_object_add(j, "id", host_json_string(p->id));
        json_object_object_add(j, "name", host_json_string(p->name));
        json_object_object_add(j, "parent", host_json_string(p->parent));
        json_object_object_add(j, "created", p->created ? json_object_new_int64(p->created) : NULL);
        json_object_object_add(j, "current", json_object_new_boolean(p->current));
        json_object_array_add(arr, j);
    }
    return arr;
}

static void
print_snapshots(GPtrArray *snaps)
{
    g_autoptr(HostTable)
        t = host_table_new("SNAPSHOT", "NAME", "PARENT", "CREATED", "CURRENT", NULL);
    for (guint i = 0; i < snaps->len; i++) {
        const VmshiftSnapshot *p = g_ptr_array_index(snaps, i);
        g_autofree char *c = host_format_time(p->created);
        host_table_add(t, p->id, p->name, p->parent, c, p->current ? "yes" : "no");
    }
    printf("\nSnapshots:\n");
    host_table_print(t, stdout);
}

int
host_cmd_vm_show(HostSession *s, CmdOpts *o, char **args)
{
    g_autoptr(GError) err = NULL;
    HostBackend *b = NULL;
    g_autoptr(VmshiftVm) vm = host_find_vm(s->reg, args[0], &b, &err);
    g_autoptr(GPtrArray) snaps = NULL;
    g_autoptr(HostJournal) j = NULL;
    g_autoptr(GPtrArray) jobs = NULL;
    HostJobFilter f = { 0 };

    if (!vm)
        return host_cmd_fail(err);
    /* snapshots where the plugin lists them; their count otherwise */
    if (host_backend_has_op(b, "list_snapshots")
        && !(snaps = host_backend_list_snapshots(b, vm->name, &err))) {
        host_warn("%s", err->message);
        g_clear_error(&err);
    }
    f.backend = host_backend_name(b);
    f.vm = vm->name;
    j = host_session_journal(s, &err);
    if (!j || !(jobs = host_journal_list_filtered(j, &f, &err))) {
        host_warn("%s", err->message);
        g_clear_error(&err);
    } else {
        host_jobs_verify_locations(s->reg, j, jobs); /* unknown locations asked first */
    }
    if (s->g->json) {
        json_object *root = host_json_vm(vm, host_backend_name(b));
        json_object *ja = json_object_new_array();
        json_object_object_add(root, "snapshots", snaps ? snapshots_json(snaps) : NULL);
        for (guint i = 0; jobs && i < jobs->len; i++)
            json_object_array_add(ja, host_json_job(g_ptr_array_index(jobs, i)));
        json_object_object_add(root, "jobs", ja);
        host_json_print(root);
        return HOST_EXIT_OK;
    }
    {
        g_autofree char *title = g_strdup_printf("VM %s:%s", host_backend_name(b), vm->name);
        g_autofree char *shown = host_display(title);
        g_autofree char *cpus = g_strdup_printf("%u", vm->vcpus);
        g_autofree char *mem = host_format_bytes(vm->memory);
        g_autofree char *nsnap = g_strdup_printf("%u", vm->snapshot_count);
        printf("%s\n", shown);
        field("id:", vm->id);
        field("host:", vm->host);
        field("state:", vmshift_power_state_name(vm->power_state));
        field("cpus:", cpus);
        field("memory:", mem);
        field("files in:", vm->config_path);
        field("snapshots:", nsnap);
        if (vm->status_detail)
            field("detail:", vm->status_detail);
    }
    print_vm_disks_nics(vm);
    if (snaps)
        print_snapshots(snaps);
    printf("\nJobs:\n");
    if (jobs && jobs->len)
        host_jobs_table_print(jobs);
    else
        printf("  none in the journal\n");
    return HOST_EXIT_OK;
}
