/*
 * A plugin built against the frozen ABI 1.0 headers (tests/abi/include-1.0),
 * never against the current ones. Today's host must load and call it.
 */
#include <vmshift/vmshift.h>

#if VMSHIFT_ABI_MAJOR != 1 || VMSHIFT_ABI_MINOR != 0
#error "oldabi.c must be compiled against the frozen ABI 1.0 headers"
#endif

struct _VmshiftBackend {
    int unused;
};

static VmshiftBackend *
oldabi_open(const VmshiftConfig *config, guint32 flags, GError **error)
{
    if (!vmshift_check_flags(flags, 0, "open", error))
        return NULL;
    return g_new0(VmshiftBackend, 1);
}

static void
oldabi_close(VmshiftBackend *b)
{
    g_free(b);
}

static GPtrArray *
oldabi_list_hosts(VmshiftBackend *b, guint32 flags, GError **error)
{
    GPtrArray *hosts = vmshift_list_new((GDestroyNotify)vmshift_host_free);
    VmshiftHost *h = vmshift_host_new();

    h->id = g_strdup("old-host-id");
    h->name = g_strdup("oldhost");
    h->status = VMSHIFT_HOST_OK;
    h->memory_total = G_GUINT64_CONSTANT(8) << 30;
    h->memory_free = G_GUINT64_CONSTANT(4) << 30;
    g_ptr_array_add(hosts, h);
    return hosts;
}

static GPtrArray *
oldabi_list_vms(VmshiftBackend *b, const char *host, guint32 flags, GError **error)
{
    GPtrArray *vms = vmshift_list_new((GDestroyNotify)vmshift_vm_free);
    VmshiftVm *vm = vmshift_vm_new();

    vm->id = g_strdup("old-vm-id");
    vm->name = g_strdup("oldvm");
    vm->host = g_strdup("oldhost");
    vm->power_state = VMSHIFT_POWER_RUNNING;
    g_ptr_array_add(vms, vm);
    return vms;
}

static const VmshiftBackendOps oldabi_ops = {
    VMSHIFT_OPS_INIT,
    .open = oldabi_open,
    .close = oldabi_close,
    .list_hosts = oldabi_list_hosts,
    .list_vms = oldabi_list_vms,
};

VMSHIFT_PLUGIN_DEFINE("oldabi", "1.0.0", "MIT", "built against the frozen ABI 1.0 headers", 0,
                      oldabi_ops, NULL)
