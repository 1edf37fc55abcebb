/* vmshift KVM plugin: TEMPORARY kvm_transport_libvirt over today's
 * kvm_libvirt_* functions (kvm-libvirt.h), so that the dispatch through
 * KvmTransport builds and runs with libvirt before the libvirt transport
 * defines its own vtable. Deleted when that lands. Built with libvirt only. */
#include "config.h"

#include "kvm.h"
#include "kvm-libvirt.h"

static gboolean
shim_open(KvmBackend *b, const VmshiftConfig *config, GError **error)
{
    b->lv = kvm_libvirt_open(b, config, error);
    return b->lv != NULL;
}

static void
shim_close(KvmBackend *b)
{
    kvm_libvirt_free(b->lv);
    b->lv = NULL;
}

/* as before the dispatch: a libvirt backend has no run-directory hosts,
 * hence no volumes to list */
static GPtrArray *
shim_list_volumes(KvmBackend *b, const char *host, GError **error)
{
    (void) b;
    (void) host;
    (void) error;
    return vmshift_list_new((GDestroyNotify) vmshift_volume_free);
}

const KvmTransport kvm_transport_libvirt = {
    .name = "libvirt",
    .open = shim_open,
    .close = shim_close,
    .list_hosts = kvm_libvirt_list_hosts,
    .list_vms = kvm_libvirt_list_vms,
    .get_vm = kvm_libvirt_get_vm,
    .list_networks = kvm_libvirt_list_networks,
    .list_volumes = shim_list_volumes,
    .checkpoint_state = kvm_libvirt_checkpoint_state,
    .check_migration = kvm_libvirt_check_migration,
    .migrate = kvm_libvirt_migrate,
    .recreate_acl = kvm_libvirt_recreate_acl,
    .repair = kvm_libvirt_repair,
};
