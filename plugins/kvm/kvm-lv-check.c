/* vmshift KVM plugin, libvirt transport: check_migration — what only
 * libvirt can tell (the destination connection), with the canonical codes
 * of <vmshift/findings.h>; power state, same host, free memory
 * (virNodeGetFreeMemory in list_hosts) and merges (checkpoint_state) the
 * host judges from the facts; a running block job is reported here too, so
 * the plugin's own check says so (the host shows it once). */
#include "config.h"

#include "kvm-lv.h"

static void
lv_check_dest(LvHost *src, LvHost *dst, GPtrArray *l)
{
    if (dst == src)
        return; /* same-host: the host says so */
    if (virConnectIsAlive(dst->conn) != 1)
        g_ptr_array_add(l, vmshift_finding_new(VMSHIFT_SEVERITY_ERROR,
                                               VMSHIFT_FINDING_HOST_UNREACHABLE, dst->name,
                                               "the connection to %s is down", dst->uri));
}

GPtrArray *
kvm_libvirt_check_migration(KvmBackend *b, const VmshiftMigrationSpec *spec, GError **error)
{
    LvHost *src = NULL;
    KvmTuningOptions opts;
    /* an unknown --option key is refused by name here, as migrate does */
    if (!kvm_tuning_read_options(spec->options, &opts, error))
        return NULL;
    g_autoptr(virDomain) d = lv_locate(b, spec->vm, &src, error);
    if (!d)
        return NULL;
    GPtrArray *l = vmshift_list_new((GDestroyNotify)vmshift_finding_free);
    g_autoptr(GError) e = NULL;
    LvHost *dst = spec->dest_host ? lv_find_host(b, spec->dest_host, &e) : NULL;
    if (spec->type != VMSHIFT_MIGRATION_STORAGE && !dst)
        g_ptr_array_add(l, vmshift_finding_new(VMSHIFT_SEVERITY_ERROR,
                                               VMSHIFT_FINDING_HOST_NOT_FOUND, spec->dest_host,
                                               "%s", e ? e->message : "no destination host"));
    else if (dst)
        lv_check_dest(src, dst, l);
    /* a block job libvirt sees directly (the fact the host reads from
     * checkpoint_state too); the host shows it once */
    g_autoptr(VmshiftCheckpointState) cs = kvm_libvirt_checkpoint_state(b, spec->vm, NULL);
    if (cs && cs->merging)
        g_ptr_array_add(l, vmshift_finding_new(VMSHIFT_SEVERITY_ERROR,
                                               VMSHIFT_FINDING_MERGE_IN_PROGRESS, spec->vm, "%s",
                                               cs->detail));
    return l;
}
