/*
 * Small plugins for the host's loader tests. One source, built several
 * times with -DTP_VARIANT_* to produce each kind of plugin the loader must
 * accept or refuse (see host/local.mk):
 *
 *   good       a working plugin: hosts h1/h2, VMs from `vms=NAME@HOST`,
 *              migrate (sleeps transfer-ms, honours cancel), no recreate_acl
 *   abimajor   built for the next ABI major
 *   abiminor   built for a newer ABI minor than the host provides
 *   nosym      exports no vmshift_plugin_entry
 *   short      a descriptor whose struct_size is too small
 *   shortops   an operations table that ends after close()
 *   badname    a descriptor whose name is not its file name
 *   noopen     an operations table without open()
 */
#include <string.h>
#include <vmshift/vmshift.h>

#ifndef TP_NAME
#error "TP_NAME must be defined"
#endif

typedef struct {
    char *name;
    char **vms; /* NAME@HOST */
    gint64 transfer_ms;
} Tp;

static G_GNUC_UNUSED VmshiftBackend *
tp_open(const VmshiftConfig *config, guint32 flags, GError **error)
{
    Tp *t;
    gint64 ms;

    if (!vmshift_check_flags(flags, 0, "open", error))
        return NULL;
    if (!vmshift_config_get_int(config, "transfer-ms", 0, 0, 600000, &ms, error))
        return NULL;
    if (vmshift_config_has_key(config, "decline")) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_NOT_APPLICABLE, "declined on this machine");
        return NULL;
    }
    t = g_new0(Tp, 1);
    t->name = g_strdup(vmshift_config_get_backend(config));
    t->vms = vmshift_config_get_string_list(config, "vms");
    t->transfer_ms = ms;
    return (VmshiftBackend *)t;
}

static void
tp_close(VmshiftBackend *b)
{
    Tp *t = (Tp *)b;
    g_free(t->name);
    g_strfreev(t->vms);
    g_free(t);
}

static G_GNUC_UNUSED GPtrArray *
tp_list_hosts(VmshiftBackend *b, guint32 flags, GError **error)
{
    GPtrArray *l = vmshift_list_new((GDestroyNotify)vmshift_host_free);
    for (int i = 1; i <= 2; i++) {
        VmshiftHost *h = vmshift_host_new();
        h->name = g_strdup_printf("h%d", i);
        h->id = g_strdup_printf("id-h%d", i);
        h->status = VMSHIFT_HOST_OK;
        h->cpu_count = 4;
        h->cpu_usage_percent = 20 * i;
        h->memory_total = 16ull << 30;
        h->memory_free = 8ull << 30;
        g_ptr_array_add(l, h);
    }
    return l;
}

static G_GNUC_UNUSED VmshiftVm *
make_vm(const char *spec)
{
    VmshiftVm *vm = vmshift_vm_new();
    const char *at = strchr(spec, '@');
    vm->name = at ? g_strndup(spec, at - spec) : g_strdup(spec);
    vm->id = g_strdup_printf("uuid-%s", vm->name);
    vm->host = g_strdup(at ? at + 1 : "h1");
    vm->power_state = VMSHIFT_POWER_RUNNING;
    vm->vcpus = 1;
    vm->memory = 1ull << 30;
    return vm;
}

static G_GNUC_UNUSED GPtrArray *
tp_list_vms(VmshiftBackend *b, const char *host, guint32 flags, GError **error)
{
    Tp *t = (Tp *)b;
    GPtrArray *l = vmshift_list_new((GDestroyNotify)vmshift_vm_free);
    for (guint i = 0; t->vms && t->vms[i]; i++) {
        VmshiftVm *vm = make_vm(t->vms[i]);
        if (host && g_strcmp0(host, vm->host)) {
            vmshift_vm_free(vm);
            continue;
        }
        g_ptr_array_add(l, vm);
    }
    return l;
}

static G_GNUC_UNUSED VmshiftVm *
tp_get_vm(VmshiftBackend *b, const char *name, guint32 flags, GError **error)
{
    Tp *t = (Tp *)b;
    for (guint i = 0; t->vms && t->vms[i]; i++) {
        VmshiftVm *vm = make_vm(t->vms[i]);
        if (!g_strcmp0(vm->name, name) || !g_strcmp0(vm->id, name))
            return vm;
        vmshift_vm_free(vm);
    }
    g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_NOT_FOUND, "%s: no VM '%s'", t->name, name);
    return NULL;
}

static G_GNUC_UNUSED GPtrArray *
tp_list_networks(VmshiftBackend *b, const char *host, guint32 flags, GError **error)
{
    return vmshift_list_new((GDestroyNotify)vmshift_network_free);
}

static G_GNUC_UNUSED gboolean
tp_migrate(VmshiftBackend *b, const VmshiftMigrationSpec *spec, VmshiftJob *job, guint32 flags,
           GError **error)
{
    Tp *t = (Tp *)b;
    GCancellable *c = vmshift_job_get_cancellable(job);

    if (!vmshift_job_set_phase(job, VMSHIFT_PHASE_PREPARE, error)
        || !vmshift_job_save(job, "tmp", "/nowhere/tmp", error)
        || !vmshift_job_set_phase(job, VMSHIFT_PHASE_TRANSFER, error))
        return FALSE;
    for (gint64 ms = 0; ms < t->transfer_ms; ms += 50) {
        if (g_cancellable_set_error_if_cancelled(c, error))
            return FALSE;
        vmshift_job_set_bytes(job, (guint64)ms, (guint64)t->transfer_ms);
        g_usleep(50 * 1000);
    }
    if (!vmshift_job_set_phase(job, VMSHIFT_PHASE_SWITCHOVER, error))
        return FALSE;
    vmshift_job_set_location(job, spec->dest_host, "running");
    vmshift_job_log(job, VMSHIFT_LOG_INFO, "moved %s to %s", spec->vm, spec->dest_host);
    return TRUE;
}

#if defined(TP_VARIANT_SHORTOPS)
/* Compiled by a plugin that knew only open and close. */
static const VmshiftBackendOps tp_ops = {
    .struct_size = G_STRUCT_OFFSET(VmshiftBackendOps, close) + sizeof(void *),
    .open = tp_open,
    .close = tp_close,
    .list_hosts = tp_list_hosts, /* beyond struct_size: must never be called */
};
#else
static const VmshiftBackendOps tp_ops = {
    VMSHIFT_OPS_INIT,
#if !defined(TP_VARIANT_NOOPEN)
    .open = tp_open,
#endif
    .close = tp_close,   .list_hosts = tp_list_hosts,       .list_vms = tp_list_vms,
    .get_vm = tp_get_vm, .list_networks = tp_list_networks, .migrate = tp_migrate,
};
#endif

static const char *const tp_keys[] = { "vms", "transfer-ms", "decline", NULL };

#if defined(TP_VARIANT_NOSYM)
/* A shared object that is not a vmshift plugin. */
int tp_not_a_plugin(void);
__attribute__((visibility("default"))) int
tp_not_a_plugin(void)
{
    return (int)tp_ops.struct_size + (tp_keys[0] != NULL);
}
#else
static const VmshiftPluginDescriptor tp_desc = {
#if defined(TP_VARIANT_ABIMAJOR)
    .abi_major = VMSHIFT_ABI_MAJOR + 1,
#else
    .abi_major = VMSHIFT_ABI_MAJOR,
#endif
#if defined(TP_VARIANT_ABIMINOR)
    .abi_minor = VMSHIFT_ABI_MINOR + 1,
#else
    .abi_minor = VMSHIFT_ABI_MINOR,
#endif
#if defined(TP_VARIANT_SHORT)
    .struct_size = 16,
#else
    .struct_size = sizeof(VmshiftPluginDescriptor),
#endif
    .flags = VMSHIFT_PLUGIN_LIVE,
#if defined(TP_VARIANT_BADNAME)
    .name = "somethingelse",
#else
    .name = TP_NAME,
#endif
    .version = "1.0",
    .license = "MIT",
    .description = "loader test plugin " TP_NAME,
    .ops = &tp_ops,
    .config_keys = tp_keys,
};

VMSHIFT_PLUGIN_EXPORT const VmshiftPluginDescriptor *vmshift_plugin_entry(void);
VMSHIFT_PLUGIN_EXPORT const VmshiftPluginDescriptor *
vmshift_plugin_entry(void)
{
    return &tp_desc;
}
#endif
