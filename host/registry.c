/*
 * vmshift host: the backend registry and operation dispatch.
 *
 * Each configured backend is kept, usable or not: a backend whose plugin is
 * missing, refused, disabled or badly configured stays as a placeholder that
 * fails closed with its reason (PAM's faulty module). Every operation goes
 * through one wrapper that checks VMSHIFT_OPS_HAS first, so a NULL or
 * too-new slot is reported as "not supported" and never called.
 */
#include "config.h"

#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#include "host/host.h"

static const char *const status_names[] = {
    [HOST_BACKEND_LOADED] = "loaded",
    [HOST_BACKEND_READY] = "ready",
    [HOST_BACKEND_DISABLED] = "disabled",
    [HOST_BACKEND_MISSING] = "missing",
    [HOST_BACKEND_REFUSED] = "refused",
    [HOST_BACKEND_BAD_CONFIG] = "bad-config",
    [HOST_BACKEND_NOT_APPLICABLE] = "not-applicable",
    [HOST_BACKEND_FAILED] = "unreachable",
};

const char *
host_backend_status_name(HostBackendStatus s)
{
    return s < G_N_ELEMENTS(status_names) ? status_names[s] : "unknown";
}

const char *
host_backend_name(const HostBackend *b)
{
    return b->conf->name;
}

static void
backend_free(HostBackend *b)
{
    if (b->handle && b->plugin && b->plugin->desc)
        b->plugin->desc->ops->close(b->handle);
    vmshift_config_free(b->vconf);
    g_clear_error(&b->error);
    g_mutex_clear(&b->lock);
    g_free(b->state_dir);
    g_free(b);
}

static gboolean
key_known(const char *key, const char *const *known)
{
    if (!strcmp(key, "plugin") || !strcmp(key, "enabled"))
        return TRUE;
    for (guint i = 0; known && known[i]; i++)
        if (strcmp(known[i], key) == 0)
            return TRUE;
    return FALSE;
}

HostRegistry *
host_registry_new(HostConfig *config, HostLoader *loader, gboolean verbose)
{
    HostRegistry *reg = g_new0(HostRegistry, 1);

    reg->config = config;
    reg->loader = loader;
    reg->verbose = verbose;
    reg->backends = g_ptr_array_new_with_free_func((GDestroyNotify)backend_free);
    for (guint i = 0; i < config->backends->len; i++) {
        HostBackendConf *c = g_ptr_array_index(config->backends, i);
        HostBackend *b = g_new0(HostBackend, 1);
        b->conf = c;
        b->reg = reg;
        g_mutex_init(&b->lock);
        g_ptr_array_add(reg->backends, b);
        if (c->error) {
            b->status = HOST_BACKEND_BAD_CONFIG;
            g_set_error_literal(&b->error, VMSHIFT_ERROR, VMSHIFT_ERROR_CONFIG, c->error);
            continue;
        }
        if (!c->enabled) {
            b->status = HOST_BACKEND_DISABLED;
            g_set_error(&b->error, VMSHIFT_ERROR, VMSHIFT_ERROR_NOT_APPLICABLE,
                        "%s: backend '%s' is disabled (enabled=false)", c->source, c->name);
            continue;
        }
        b->plugin = host_loader_load(loader, c->plugin);
        if (b->plugin->status != HOST_LOAD_OK) {
            b->status = b->plugin->status == HOST_LOAD_MISSING ? HOST_BACKEND_MISSING
                                                               : HOST_BACKEND_REFUSED;
            g_set_error(&b->error, VMSHIFT_ERROR, b->plugin->error->code, "%s: backend '%s': %s",
                        c->source, c->name, b->plugin->error->message);
            continue;
        }
        b->status = HOST_BACKEND_LOADED;
        {
            g_auto(GStrv) keys = g_key_file_get_keys(c->keyfile, c->group, NULL, NULL);
            const char *const *known = host_plugin_config_keys(b->plugin->desc);
            for (guint k = 0; keys && keys[k]; k++)
                if (!key_known(keys[k], known) && strcmp(keys[k], "credentials") != 0)
                    g_ptr_array_add(config->warnings,
                                    g_strdup_printf("%s: [%s]: unknown key '%s' (plugin %s "
                                                    "does not use it)",
                                                    c->source, c->group, keys[k], c->plugin));
        }
    }
    return reg;
}

void
host_registry_free(HostRegistry *reg)
{
    if (!reg)
        return;
    g_ptr_array_unref(reg->backends);
    g_free(reg);
}

HostBackend *
host_registry_find(HostRegistry *reg, const char *name)
{
    for (guint i = 0; i < reg->backends->len; i++) {
        HostBackend *b = g_ptr_array_index(reg->backends, i);
        if (g_strcmp0(b->conf->name, name) == 0)
            return b;
    }
    return NULL;
}

/* <state-dir>/backends/NAME, mode 0700, private to the backend's plugin. */
static gboolean
make_state_dir(HostRegistry *reg, HostBackend *b, GError **error)
{
    if (b->state_dir)
        return TRUE;
    b->state_dir = g_build_filename(reg->config->state_dir, "backends", b->conf->name, NULL);
    if (g_mkdir_with_parents(b->state_dir, 0700) != 0) {
        int e = errno;
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_PERMISSION,
                    "cannot create state directory %s: %s", b->state_dir, g_strerror(e));
        g_clear_pointer(&b->state_dir, g_free);
        return FALSE;
    }
    return TRUE;
}

gboolean
host_backend_ensure_open(HostBackend *b, GError **error)
{
    HostRegistry *reg = b->reg;
    g_autoptr(GError) err = NULL;
    VmshiftBackend *h;

    if (b->status == HOST_BACKEND_READY)
        return TRUE;
    if (b->status != HOST_BACKEND_LOADED) {
        g_propagate_error(error, g_error_copy(b->error));
        return FALSE;
    }
    if (!make_state_dir(reg, b, error))
        return FALSE;
    if (!b->vconf) {
        b->vconf = vmshift_config_new(b->conf->name, b->conf->keyfile, b->conf->group,
                                      b->conf->source, b->state_dir);
    }
    h = b->plugin->desc->ops->open(b->vconf, 0, &err);
    if (!h) {
        if (!err)
            g_set_error(&err, VMSHIFT_ERROR, VMSHIFT_ERROR_FAILED, "open failed without a reason");
        if (g_error_matches(err, VMSHIFT_ERROR, VMSHIFT_ERROR_NOT_APPLICABLE))
            b->status = HOST_BACKEND_NOT_APPLICABLE;
        else
            b->status = HOST_BACKEND_FAILED;
        g_set_error(&b->error, err->domain, err->code, "backend '%s' (plugin %s %s): %s",
                    b->conf->name, b->plugin->desc->name, b->plugin->desc->version, err->message);
        g_propagate_error(error, g_error_copy(b->error));
        return FALSE;
    }
    b->handle = h;
    b->status = HOST_BACKEND_READY;
    return TRUE;
}

HostBackend *
host_registry_get_open(HostRegistry *reg, const char *name, GError **error)
{
    HostBackend *b = host_registry_find(reg, name);

    if (!b) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_NOT_FOUND,
                    "no backend '%s' in %s or its backends.d/", name, reg->config->path);
        return NULL;
    }
    return host_backend_ensure_open(b, error) ? b : NULL;
}

gboolean
host_backend_unsupported(HostBackend *b, const char *op, GError **error)
{
    g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_NOT_SUPPORTED,
                "backend '%s' (plugin %s %s) does not support '%s'", b->conf->name,
                b->plugin->desc->name, b->plugin->desc->version, op);
    return FALSE;
}

gboolean
host_backend_has_op(HostBackend *b, const char *op)
{
    const VmshiftBackendOps *o;

    if (!b->plugin || !b->plugin->desc)
        return FALSE;
    o = b->plugin->desc->ops;
#define HAS(m)           \
    if (!strcmp(op, #m)) \
        return VMSHIFT_OPS_HAS(o, m);
    HAS(list_hosts)
    HAS(list_vms)
    HAS(get_vm)
    HAS(list_networks)
    HAS(list_volumes)
    HAS(checkpoint_state)
    HAS(check_migration)
    HAS(migrate)
    HAS(recreate_acl)
    HAS(list_snapshots)
    HAS(watch_changes)
    HAS(customize_guest)
    HAS(repair)
    HAS(cleanup)
    HAS(export_vm)
    HAS(open_disk)
    HAS(check_import)
    HAS(import_vm)
    HAS(remove_vm)
    HAS(start_vm)
#undef HAS
    return FALSE;
}

static void
lock(HostBackend *b)
{
    if (b->plugin->desc->flags & VMSHIFT_PLUGIN_SERIALIZE)
        g_mutex_lock(&b->lock);
}

static void
unlock(HostBackend *b)
{
    if (b->plugin->desc->flags & VMSHIFT_PLUGIN_SERIALIZE)
        g_mutex_unlock(&b->lock);
}

/* A plugin that fails without setting @error breaks the contract; make the
 * failure visible rather than crash on a NULL GError. */
static void
ensure_error(HostBackend *b, const char *op, GError **error, GError *local)
{
    if (local) {
        g_propagate_error(error, local);
        return;
    }
    g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_FAILED,
                "backend '%s' (plugin %s): '%s' failed without saying why", b->conf->name,
                b->plugin->desc->name, op);
}

#define DISPATCH(type, fail, op, call)               \
    do {                                             \
        const VmshiftBackendOps *ops;                \
        GError *local = NULL;                        \
        type r;                                      \
        if (!host_backend_ensure_open(b, error))     \
            return fail;                             \
        ops = b->plugin->desc->ops;                  \
        if (!VMSHIFT_OPS_HAS(ops, op)) {             \
            host_backend_unsupported(b, #op, error); \
            return fail;                             \
        }                                            \
        lock(b);                                     \
        r = ops->op call;                            \
        unlock(b);                                   \
        if (r == fail)                               \
            ensure_error(b, #op, error, local);      \
        else if (local)                              \
            g_error_free(local);                     \
        return r;                                    \
    } while (0)

GPtrArray *
host_backend_list_hosts(HostBackend *b, GError **error)
{
    DISPATCH(GPtrArray *, NULL, list_hosts, (b->handle, 0, &local));
}

GPtrArray *
host_backend_list_vms(HostBackend *b, const char *host, GError **error)
{
    DISPATCH(GPtrArray *, NULL, list_vms, (b->handle, host, 0, &local));
}

static VmshiftVm *
backend_get_vm_op(HostBackend *b, const char *vm, GError **error)
{
    DISPATCH(VmshiftVm *, NULL, get_vm, (b->handle, vm, 0, &local));
}

/* get_vm is optional when list_vms exists: a plugin that only lists (an ABI
 * 1.0 plugin with a small table, say) still gets its VMs found by name or
 * id. */
VmshiftVm *
host_backend_get_vm(HostBackend *b, const char *vm, GError **error)
{
    g_autoptr(GPtrArray) vms = NULL;
    const VmshiftBackendOps *ops;

    if (!host_backend_ensure_open(b, error))
        return NULL;
    ops = b->plugin->desc->ops;
    if (VMSHIFT_OPS_HAS(ops, get_vm) || !VMSHIFT_OPS_HAS(ops, list_vms))
        return backend_get_vm_op(b, vm, error);
    if (!(vms = host_backend_list_vms(b, NULL, error)))
        return NULL;
    for (guint i = 0; i < vms->len; i++) {
        VmshiftVm *v = g_ptr_array_index(vms, i);
        if (g_strcmp0(v->name, vm) == 0 || g_strcmp0(v->id, vm) == 0)
            return g_ptr_array_steal_index(vms, i);
    }
    g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_NOT_FOUND, "backend '%s': no VM named '%s'",
                b->conf->name, vm);
    return NULL;
}

GPtrArray *
host_backend_list_networks(HostBackend *b, const char *host, GError **error)
{
    DISPATCH(GPtrArray *, NULL, list_networks, (b->handle, host, 0, &local));
}

GPtrArray *
host_backend_list_volumes(HostBackend *b, const char *host, GError **error)
{
    DISPATCH(GPtrArray *, NULL, list_volumes, (b->handle, host, 0, &local));
}

GPtrArray *
host_backend_list_snapshots(HostBackend *b, const char *vm, GError **error)
{
    DISPATCH(GPtrArray *, NULL, list_snapshots, (b->handle, vm, 0, &local));
}

VmshiftCheckpointState *
host_backend_checkpoint_state(HostBackend *b, const char *vm, GError **error)
{
    DISPATCH(VmshiftCheckpointState *, NULL, checkpoint_state, (b->handle, vm, 0, &local));
}

GPtrArray *
host_backend_check_migration(HostBackend *b, const VmshiftMigrationSpec *spec, GError **error)
{
    DISPATCH(GPtrArray *, NULL, check_migration, (b->handle, spec, 0, &local));
}

gboolean
host_backend_migrate(HostBackend *b, const VmshiftMigrationSpec *spec, VmshiftJob *job,
                     GError **error)
{
    DISPATCH(gboolean, FALSE, migrate, (b->handle, spec, job, 0, &local));
}

gboolean
host_backend_recreate_acl(HostBackend *b, const char *vm, VmshiftJob *job, GError **error)
{
    DISPATCH(gboolean, FALSE, recreate_acl, (b->handle, vm, job, 0, &local));
}

gboolean
host_backend_customize_guest(HostBackend *b, const char *vm, GPtrArray *nics, VmshiftJob *job,
                             GError **error)
{
    DISPATCH(gboolean, FALSE, customize_guest, (b->handle, vm, nics, job, 0, &local));
}

gboolean
host_backend_repair(HostBackend *b, VmshiftJob *job, GError **error)
{
    DISPATCH(gboolean, FALSE, repair, (b->handle, job, 0, &local));
}

gboolean
host_backend_cleanup(HostBackend *b, VmshiftJob *job, GError **error)
{
    DISPATCH(gboolean, FALSE, cleanup, (b->handle, job, 0, &local));
}

/* ---- names ---------------------------------------------------------------- */

void
host_split_name(HostRegistry *reg, const char *spec, char **backend, char **name)
{
    const char *colon = strchr(spec, ':');

    if (colon && colon != spec) {
        g_autofree char *prefix = g_strndup(spec, colon - spec);
        if (host_registry_find(reg, prefix)) {
            *backend = g_steal_pointer(&prefix);
            *name = g_strdup(colon + 1);
            return;
        }
    }
    *backend = NULL;
    *name = g_strdup(spec);
}

static gboolean
usable_for_search(HostBackend *b)
{
    return b->status == HOST_BACKEND_LOADED || b->status == HOST_BACKEND_READY;
}

/* A backend answered "no such VM": names its hosts that did not answer
 * (the VM may be on one of them). */
static void
note_silent_hosts(HostBackend *b, GString *problems)
{
    g_autoptr(GPtrArray) hosts = host_backend_list_hosts(b, NULL);

    for (guint i = 0; hosts && i < hosts->len; i++) {
        VmshiftHost *h = g_ptr_array_index(hosts, i);
        if (h->status != VMSHIFT_HOST_DISCONNECTED && h->status != VMSHIFT_HOST_UNKNOWN)
            continue;
        g_string_append_printf(problems, "; host '%s' of backend '%s' did not answer (%s%s%s)",
                               h->name ? h->name : "-", b->conf->name,
                               vmshift_host_status_name(h->status), h->status_detail ? ": " : "",
                               h->status_detail ? h->status_detail : "");
    }
}

/* A backend that could not be searched, and why. */
static void
note_unusable(HostBackend *b, GString *problems)
{
    if (b->status == HOST_BACKEND_DISABLED || b->status == HOST_BACKEND_NOT_APPLICABLE)
        return;
    g_string_append_printf(problems, "; backend '%s' was not searched: %s", b->conf->name,
                           b->error ? b->error->message : "unusable");
}

VmshiftVm *
host_find_vm(HostRegistry *reg, const char *spec, HostBackend **backend_out, GError **error)
{
    g_autofree char *bname = NULL;
    g_autofree char *name = NULL;
    VmshiftVm *found = NULL;
    HostBackend *found_b = NULL;
    g_autoptr(GString) problems = g_string_new(NULL);
    guint searched = 0;

    host_split_name(reg, spec, &bname, &name);
    if (bname) {
        HostBackend *b = host_registry_get_open(reg, bname, error);
        VmshiftVm *vm;
        if (!b)
            return NULL;
        vm = host_backend_get_vm(b, name, error);
        if (vm && backend_out)
            *backend_out = b;
        return vm;
    }
    for (guint i = 0; i < reg->backends->len; i++) {
        HostBackend *b = g_ptr_array_index(reg->backends, i);
        g_autoptr(GError) err = NULL;
        VmshiftVm *vm;
        if (!usable_for_search(b)) {
            note_unusable(b, problems);
            continue;
        }
        searched++;
        vm = host_backend_get_vm(b, name, &err);
        if (!vm) {
            if (g_error_matches(err, VMSHIFT_ERROR, VMSHIFT_ERROR_NOT_FOUND))
                note_silent_hosts(b, problems);
            else
                g_string_append_printf(problems, "; backend '%s' did not answer: %s", b->conf->name,
                                       err->message);
            continue;
        }
        if (found) {
            g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_INVALID_ARGUMENT,
                        "VM '%s' exists in backends '%s' and '%s'; write BACKEND:%s", name,
                        found_b->conf->name, b->conf->name, name);
            vmshift_vm_free(vm);
            vmshift_vm_free(found);
            return NULL;
        }
        found = vm;
        found_b = b;
    }
    if (!found) {
        if (searched == 0)
            g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_NOT_FOUND,
                        "VM '%s' not found: no usable backend is configured (see 'vmshift "
                        "backends')%s",
                        name, problems->str);
        else
            g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_NOT_FOUND,
                        "VM '%s' not found in any backend%s", name, problems->str);
        return NULL;
    }
    if (backend_out)
        *backend_out = found_b;
    return found;
}

static VmshiftHost *
find_host_in(HostBackend *b, const char *name, GError **error)
{
    g_autoptr(GPtrArray) hosts = host_backend_list_hosts(b, error);

    if (!hosts)
        return NULL;
    for (guint i = 0; i < hosts->len; i++) {
        VmshiftHost *h = g_ptr_array_index(hosts, i);
        if (g_strcmp0(h->name, name) == 0 || g_strcmp0(h->id, name) == 0)
            return g_ptr_array_steal_index(hosts, i);
    }
    g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_NOT_FOUND,
                "host '%s' not found in backend '%s'", name, b->conf->name);
    return NULL;
}

VmshiftHost *
host_find_host(HostRegistry *reg, const char *spec, HostBackend *prefer, HostBackend **backend_out,
               GError **error)
{
    g_autofree char *bname = NULL;
    g_autofree char *name = NULL;
    VmshiftHost *h;

    host_split_name(reg, spec, &bname, &name);
    if (bname) {
        HostBackend *b = host_registry_get_open(reg, bname, error);
        if (!b)
            return NULL;
        h = find_host_in(b, name, error);
        if (h && backend_out)
            *backend_out = b;
        return h;
    }
    if (prefer) {
        g_autoptr(GError) err = NULL;
        h = find_host_in(prefer, name, &err);
        if (h) {
            if (backend_out)
                *backend_out = prefer;
            return h;
        }
        if (!g_error_matches(err, VMSHIFT_ERROR, VMSHIFT_ERROR_NOT_FOUND)) {
            g_propagate_error(error, g_steal_pointer(&err));
            return NULL;
        }
    }
    for (guint i = 0; i < reg->backends->len; i++) {
        HostBackend *b = g_ptr_array_index(reg->backends, i);
        g_autoptr(GError) err = NULL;
        if (b == prefer || !usable_for_search(b))
            continue;
        h = find_host_in(b, name, &err);
        if (h) {
            if (backend_out)
                *backend_out = b;
            return h;
        }
    }
    g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_NOT_FOUND, "host '%s' not found in any backend",
                name);
    return NULL;
}

/* ---- ABI 1.4: moves between backends ---------------------------------------- */

VmshiftVm *
host_backend_export_vm(HostBackend *b, const char *vm, GError **error)
{
    DISPATCH(VmshiftVm *, NULL, export_vm, (b->handle, vm, 0, &local));
}

GInputStream *
host_backend_open_disk(HostBackend *b, const char *vm, const char *disk_id,
                       GCancellable *cancellable, GError **error)
{
    DISPATCH(GInputStream *, NULL, open_disk, (b->handle, vm, disk_id, cancellable, 0, &local));
}

GPtrArray *
host_backend_check_import(HostBackend *b, const VmshiftMigrationSpec *spec, GError **error)
{
    DISPATCH(GPtrArray *, NULL, check_import, (b->handle, spec, 0, &local));
}

gboolean
host_backend_import_vm(HostBackend *b, const VmshiftMigrationSpec *spec, VmshiftJob *job,
                       GError **error)
{
    DISPATCH(gboolean, FALSE, import_vm, (b->handle, spec, job, 0, &local));
}

gboolean
host_backend_remove_vm(HostBackend *b, const char *vm, VmshiftJob *job, GError **error)
{
    DISPATCH(gboolean, FALSE, remove_vm, (b->handle, vm, job, 0, &local));
}

gboolean
host_backend_start_vm(HostBackend *b, const char *vm, VmshiftJob *job, GError **error)
{
    DISPATCH(gboolean, FALSE, start_vm, (b->handle, vm, job, 0, &local));
}
