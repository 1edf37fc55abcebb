/* vmshift KVM plugin, qmp transport: cold migration of a stopped VM (its
 * definition moves; disks are copied where --path sends them, else the
 * destination must reach them). */
#include "config.h"

#include <string.h>

#include "kvm-qmp.h"

/* Copies the disks that move and registers the VM at the destination
 * (stage completed). */
static gboolean
cold_transfer(KvmMig *m, GError **error)
{
    if (!kvm_mig_phase(m, VMSHIFT_PHASE_TRANSFER, error))
        return FALSE;
    for (guint i = 0; i < m->ddef->disks->len; i++) {
        KvmDiskDef *dk = m->ddef->disks->pdata[i];
        const char *dir = vmshift_migration_spec_disk_dir(m->spec, dk->id);
        if (!dir) {
            if (!kvm_host_exists(m->dst, dk->path)) {
                g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_NOT_FOUND,
                            "host %s does not reach disk %s (%s): give --path", m->dst->name,
                            dk->id, dk->path);
                return FALSE;
            }
            continue;
        }
        g_autofree char *np = kvm_mig_target_path(dir, dk->path, dk->id, m->ddef->name);
        if (kvm_mig_check_cancel(m, error)
            || !kvm_mig_copy_image(m, m->dst, dk->id, dk->path, np, dk->format, error))
            return FALSE;
        g_free(dk->path);
        dk->path = g_steal_pointer(&np);
        vmshift_job_set_progress(m->job, 100.0 * (i + 1) / m->ddef->disks->len);
    }
    if (!kvm_mig_phase(m, VMSHIFT_PHASE_SWITCHOVER, error))
        return FALSE;
    m->dst_def_written = TRUE;
    return kvm_vm_def_save(m->dst, m->ddef, error) && kvm_mig_save(m, "stage", "completed", error);
}

/* The VM is registered at the destination: the source's definition and
 * old disks go; the VM starts there when asked. */
static gboolean
cold_finish(KvmMig *m, GError **error)
{
    g_autofree char *sdir = kvm_host_vm_dir(m->src, m->sdef->name);
    kvm_host_remove_tree(m->src, sdir, NULL);
    vmshift_job_set_location(m->job, m->dst->name, "stopped");
    if (m->spec->start) {
        GError *local = NULL;
        if (!kvm_vm_start(m->dst, m->ddef, KVM_START_NORMAL, NULL, &local)) {
            vmshift_job_log(m->job, VMSHIFT_LOG_ERROR, "%s", local->message);
            g_propagate_prefixed_error(error, local,
                                       "VM %s moved to host %s but did not start: ", m->ddef->name,
                                       m->dst->name);
            return FALSE;
        }
        vmshift_job_set_location(m->job, m->dst->name, "running");
    }
    kvm_mig_phase_late(m, VMSHIFT_PHASE_CLEANUP);
    for (guint i = 0; i < m->sdef->disks->len; i++) {
        KvmDiskDef *sk = m->sdef->disks->pdata[i];
        KvmDiskDef *dk = m->ddef->disks->pdata[i];
        if (strcmp(sk->path, dk->path)) {
            const char *argv[] = { "rm", "-f", "--", sk->path, NULL };
            kvm_host_run(m->src, argv, NULL, NULL, 30, NULL);
        }
    }
    kvm_mig_save_late(m, "stage", "done");
    return TRUE;
}

gboolean
kvm_mig_cold(KvmMig *m, GError **error)
{
    if (kvm_vm_is_running(m->src, m->sdef->name)) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_CONFLICT,
                    "VM %s runs on host %s: cold migration needs it stopped (or use --live)",
                    m->sdef->name, m->src->name);
        return FALSE;
    }
    m->ddef = kvm_vm_def_copy(m->sdef);
    if (!kvm_mig_map_networks(m, error))
        return FALSE;
    if (!kvm_mig_phase(m, VMSHIFT_PHASE_PREPARE, error)
        || !kvm_mig_save(m, "stage", "prepare", error) || !kvm_mig_check_no_dst_vm(m, error))
        return FALSE;
    if (!cold_transfer(m, error)) {
        g_autofree char *stage = vmshift_job_get_saved(m->job, "stage");
        if (g_strcmp0(stage, "completed") != 0) {
            kvm_mig_rollback_destination(m);
            vmshift_job_set_location(m->job, m->src->name, "stopped");
        }
        return FALSE;
    }
    return cold_finish(m, error);
}
