/*
 * vmshiftd: the inventory documents of the API (backends, hosts, VMs, a
 * VM's rating, checks). Each has the keys of the matching `vmshift --json`
 * command (host/cmd-inventory.c, host/cmd-migrate.c), built with the same
 * host_json_*() builders; tests/daemon/api.sh compares the two.
 *
 * Called from API threads with d->api_lock held.
 */
#include "config.h"

#include <string.h>

#include "daemon/daemon.h"

json_object *
daemon_backends_json(Daemon *d)
{
    HostRegistry *reg = d->session.reg;
    json_object *root = json_object_new_object();
    json_object *arr = json_object_new_array();
    json_object *unused = json_object_new_array();
    json_object *abi = json_object_new_object();
    g_autoptr(GPtrArray) installed = host_loader_scan(d->session.loader);
    g_autoptr(GHashTable) used = g_hash_table_new(g_str_hash, g_str_equal);

    for (guint i = 0; i < reg->backends->len; i++) {
        HostBackend *b = g_ptr_array_index(reg->backends, i);
        if (b->status == HOST_BACKEND_LOADED)
            host_backend_ensure_open(b, NULL);
        if (b->conf->plugin)
            g_hash_table_add(used, b->conf->plugin);
        json_object_array_add(arr, host_json_backend(b));
    }
    for (guint i = 0; i < installed->len; i++)
        if (!g_hash_table_contains(used, g_ptr_array_index(installed, i)))
            json_object_array_add(unused, json_object_new_string(g_ptr_array_index(installed, i)));
    json_object_object_add(root, "backends", arr);
    json_object_object_add(root, "unused_plugins", unused);
    json_object_object_add(abi, "major", json_object_new_int(VMSHIFT_ABI_MAJOR));
    json_object_object_add(abi, "minor", json_object_new_int(VMSHIFT_ABI_MINOR));
    json_object_object_add(root, "abi", abi);
    return root;
}

static json_object *
listing(const char *key, json_object *arr, json_object *errs)
{
    json_object *root = json_object_new_object();
    json_object_object_add(root, key, arr);
    json_object_object_add(root, "errors", errs);
    return root;
}

static gboolean
no_backend(Daemon *d, const char *name, GError **error)
{
    g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_NOT_FOUND,
                "no backend '%s' in %s or its backends.d/", name, d->session.config->path);
    return FALSE;
}

static void
hosts_of_group(Daemon *d, const char *backend, char **members, const char *group, json_object *arr,
               json_object *errs)
{
    HostBackend *only = backend ? host_registry_find(d->session.reg, backend) : NULL;

    for (guint i = 0; members[i]; i++) {
        HostBackend *b = NULL;
        g_autoptr(GError) err = NULL;
        g_autoptr(VmshiftHost) h = host_find_host(d->session.reg, members[i], only, &b, &err);
        if (!h) {
            g_prefix_error(&err, "group '%s': ", group);
            json_object_array_add(errs, host_json_error(err));
            continue;
        }
        if (backend && b != only)
            continue;
        json_object_array_add(arr, host_json_host(h, host_backend_name(b)));
    }
}

json_object *
daemon_hosts_json(Daemon *d, const char *backend, const char *group, GError **error)
{
    HostRegistry *reg = d->session.reg;
    json_object *arr, *errs;

    if (group && !g_hash_table_lookup(d->session.config->groups, group)) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_NOT_FOUND,
                    "no group '%s' in %s or its backends.d/", group, d->session.config->path);
        return NULL;
    }
    if (backend && !host_registry_find(reg, backend) && !no_backend(d, backend, error))
        return NULL;
    arr = json_object_new_array();
    errs = json_object_new_array();
    if (group) {
        hosts_of_group(d, backend, g_hash_table_lookup(d->session.config->groups, group), group,
                       arr, errs);
        return listing("hosts", arr, errs);
    }
    for (guint i = 0; i < reg->backends->len; i++) {
        HostBackend *b = g_ptr_array_index(reg->backends, i);
        g_autoptr(GError) err = NULL;
        g_autoptr(GPtrArray) hosts = NULL;
        if (backend ? strcmp(backend, host_backend_name(b)) != 0
                    : b->status == HOST_BACKEND_DISABLED)
            continue;
        hosts = host_backend_list_hosts(b, &err);
        if (!hosts) {
            json_object_array_add(errs, host_json_error(err));
            continue;
        }
        for (guint k = 0; k < hosts->len; k++)
            json_object_array_add(
                arr, host_json_host(g_ptr_array_index(hosts, k), host_backend_name(b)));
    }
    return listing("hosts", arr, errs);
}

json_object *
daemon_vms_json(Daemon *d, const char *backend, const char *host, GError **error)
{
    HostRegistry *reg = d->session.reg;
    g_autofree char *hb = NULL, *hname = NULL;
    json_object *arr, *errs;

    if (host)
        host_split_name(reg, host, &hb, &hname);
    if (backend && hb && strcmp(backend, hb) != 0) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_INVALID_ARGUMENT,
                    "backend %s and host %s name different backends", backend, host);
        return NULL;
    }
    if (!hb && backend)
        hb = g_strdup(backend);
    if (hb && !host_registry_find(reg, hb) && !no_backend(d, hb, error))
        return NULL;
    arr = json_object_new_array();
    errs = json_object_new_array();
    for (guint i = 0; i < reg->backends->len; i++) {
        HostBackend *b = g_ptr_array_index(reg->backends, i);
        g_autoptr(GError) err = NULL;
        g_autoptr(GPtrArray) vms = NULL;
        if (hb ? strcmp(hb, host_backend_name(b)) != 0 : b->status == HOST_BACKEND_DISABLED)
            continue;
        vms = host_backend_list_vms(b, hname, &err);
        if (!vms) {
            if (!hb && hname && g_error_matches(err, VMSHIFT_ERROR, VMSHIFT_ERROR_NOT_FOUND))
                continue;
            json_object_array_add(errs, host_json_error(err));
            continue;
        }
        for (guint k = 0; k < vms->len; k++)
            json_object_array_add(arr,
                                  host_json_vm(g_ptr_array_index(vms, k), host_backend_name(b)));
    }
    return listing("vms", arr, errs);
}

json_object *
daemon_rating_json(Daemon *d, const char *vmspec, const char *group, GError **error)
{
    HostBackend *b = NULL;
    g_autoptr(VmshiftVm) vm = host_find_vm(d->session.reg, vmspec, &b, error);
    g_autoptr(GPtrArray) ratings = NULL;

    if (!vm)
        return NULL;
    ratings = host_rate(d->session.reg, b, vm, group, error);
    if (!ratings)
        return NULL;
    return host_json_ratings(vm, host_backend_name(b), group, ratings);
}

/* ---- request bodies: what `migrate`/`check` options say, as JSON ----------------------- */

static gboolean
bad(GError **error, const char *key, const char *what)
{
    g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_INVALID_ARGUMENT, "request body: '%s' %s", key,
                what);
    return FALSE;
}

/* An object of strings {"K": "V"} as "K=V" strings. */
static gboolean
pairs(json_object *v, const char *key, char ***out, GError **error)
{
    g_autoptr(GPtrArray) a = g_ptr_array_new_with_free_func(g_free);

    if (!json_object_is_type(v, json_type_object))
        return bad(error, key, "must be an object of strings");
    json_object_object_foreach(v, k, val) {
        if (!json_object_is_type(val, json_type_string) || !*k || strchr(k, '='))
            return bad(error, key, "must be an object of strings with non-empty keys");
        g_ptr_array_add(a, g_strdup_printf("%s=%s", k, json_object_get_string(val)));
    }
    g_ptr_array_add(a, NULL);
    *out = (char **)g_ptr_array_free(g_steal_pointer(&a), FALSE);
    return TRUE;
}

static gboolean
opt_string(json_object *v, const char *key, char **out, GError **error)
{
    if (!json_object_is_type(v, json_type_string) || !*json_object_get_string(v))
        return bad(error, key, "must be a non-empty string");
    g_free(*out);
    *out = g_strdup(json_object_get_string(v));
    return TRUE;
}

static gboolean
opt_bool(json_object *v, const char *key, gboolean *out, GError **error)
{
    if (!json_object_is_type(v, json_type_boolean))
        return bad(error, key, "must be true or false");
    *out = json_object_get_boolean(v);
    return TRUE;
}

gboolean
daemon_opts_from_json(json_object *body, HostMigrateOpts *o, GError **error)
{
    memset(o, 0, sizeof *o);
    json_object_object_foreach(body, k, v) {
        gboolean ok;
        if (!strcmp(k, "vm") || !strcmp(k, "kind"))
            ok = TRUE; /* read by the caller */
        else if (!strcmp(k, "to"))
            ok = opt_string(v, k, &o->to, error);
        else if (!strcmp(k, "to_group"))
            ok = opt_string(v, k, &o->to_group, error);
        else if (!strcmp(k, "path"))
            ok = opt_string(v, k, &o->path, error);
        else if (!strcmp(k, "transfer"))
            ok = opt_string(v, k, &o->transfer, error);
        else if (!strcmp(k, "live"))
            ok = opt_bool(v, k, &o->live, error);
        else if (!strcmp(k, "cold"))
            ok = opt_bool(v, k, &o->cold, error);
        else if (!strcmp(k, "start"))
            ok = opt_bool(v, k, &o->start, error);
        else if (!strcmp(k, "force"))
            ok = opt_bool(v, k, &o->force, error);
        else if (!strcmp(k, "delete_source"))
            ok = opt_bool(v, k, &o->delete_source, error);
        else if (!strcmp(k, "convert_guest"))
            ok = opt_bool(v, k, &o->convert_guest, error);
        else if (!strcmp(k, "disk_paths"))
            ok = pairs(v, k, &o->disk_paths, error);
        else if (!strcmp(k, "networks"))
            ok = pairs(v, k, &o->networks, error);
        else if (!strcmp(k, "options"))
            ok = pairs(v, k, &o->options, error);
        else if (!strcmp(k, "ips"))
            ok = pairs(v, k, &o->ips, error);
        else if (!strcmp(k, "switchover_at"))
            ok = opt_string(v, k, &o->switchover_at, error);
        else
            ok = bad(error, k, "is not a known key");
        if (!ok)
            return FALSE;
    }
    if (o->live && o->cold)
        return bad(error, "live", "and 'cold' exclude each other");
    if (o->transfer && !host_spec_parse_transfer(o->transfer, &(guint32){ 0 }))
        return bad(error, "transfer", "must be auto, san or network");
    return TRUE;
}

json_object *
daemon_check_json(Daemon *d, json_object *body, GError **error)
{
    g_auto(HostMigrateOpts) o = { 0 };
    json_object *vmj = NULL;
    HostBackend *b = NULL;
    g_autoptr(VmshiftVm) vm = NULL;
    g_autoptr(VmshiftMigrationSpec) spec = NULL;
    g_autoptr(GPtrArray) f = NULL;
    g_autofree char *spec_txt = NULL;
    guint errors, warnings;
    json_object *root, *arr;

    if (!json_object_object_get_ex(body, "vm", &vmj) || !json_object_is_type(vmj, json_type_string))
        return bad(error, "vm", "is missing"), NULL;
    if (!daemon_opts_from_json(body, &o, error))
        return NULL;
    if (!!o.to + !!o.to_group != 1)
        return bad(error, "to", "or 'to_group': give exactly one"), NULL;
    spec = host_build_spec(d->session.reg, json_object_get_string(vmj), &o, FALSE, &b, &vm, error);
    if (!spec || !(f = host_validate(b, spec, vm, error)))
        return NULL;
    host_findings_count(f, &errors, &warnings);
    root = json_object_new_object();
    arr = json_object_new_array();
    for (guint i = 0; i < f->len; i++)
        json_object_array_add(arr, host_json_finding(g_ptr_array_index(f, i)));
    spec_txt = host_spec_to_json(spec, HOST_JOB_MIGRATE);
    json_object_object_add(root, "backend", host_json_string(host_backend_name(b)));
    json_object_object_add(root, "spec", json_tokener_parse(spec_txt));
    json_object_object_add(root, "findings", arr);
    json_object_object_add(root, "errors", json_object_new_int((int)errors));
    json_object_object_add(root, "warnings", json_object_new_int((int)warnings));
    json_object_object_add(root, "ok",
                           json_object_new_boolean(errors == 0 && (warnings == 0 || spec->force)));
    return root;
}
