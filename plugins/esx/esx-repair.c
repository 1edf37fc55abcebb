/*
 * ESX plugin: repair of a migration job whose host process died while its
 * RelocateVM_Task ran.
 */
#include "config.h"

#include "esx-impl.h"
#include "esx-ops.h"

/* A cold move with --start whose VM vSphere did move (its task completed,
 * or the VM is found at the destination) but that was interrupted before
 * its power-on: the repair powers it on, as the move was asked to. */
static gboolean
repair_power_on(VmshiftBackend *be, EsxInventory *inv, const VmshiftMigrationSpec *spec,
                const char *moref, VmshiftJob *job, const char **outcome, GError **error)
{
    g_auto(EsxVmState) st = { 0 };
    g_autofree char *power = NULL, *host = NULL;
    g_autoptr(GError) serr = NULL;

    /* with --ip the guest customization (redone by the host's repair after
     * this) powers the VM on itself, once its settings are in */
    g_autoptr(GVariant)
        ips = spec->options != NULL
                  ? g_variant_lookup_value(spec->options, "vmshift.ip", G_VARIANT_TYPE_STRING_ARRAY)
                  : NULL;
    if (spec->type != VMSHIFT_MIGRATION_COLD || !spec->start || spec->dest_host == NULL
        || ips != NULL || g_strcmp0(*outcome, "rolled-back") == 0)
        return TRUE;
    if (!esx_vm_state(be, moref, &st, &power, &serr)) {
        vmshift_job_log(job, VMSHIFT_LOG_WARNING, "could not read VM %s's power state: %s",
                        spec->vm, serr->message);
        return TRUE;
    }
    host = esx_name_of(inv->hosts, st.host);
    if (g_strcmp0(host, spec->dest_host) != 0 || g_strcmp0(power, "poweredOff") != 0)
        return TRUE;
    g_autofree char *this = esx_moref_xml("_this", "VirtualMachine", moref);
    g_autofree char *body = g_strdup_printf(
        "<PowerOnVM_Task xmlns=\"urn:vim25\">%s</PowerOnVM_Task>", this);
    g_autofree char *task = esx_start_task(be, "PowerOnVM_Task", body, error);
    if (task == NULL || !esx_wait_task(be, task, "PowerOnVM_Task", error)) {
        g_prefix_error(error, "VM %s was moved to %s but did not power on: ", spec->vm, host);
        return FALSE;
    }
    vmshift_job_log(job, VMSHIFT_LOG_INFO, "VM %s powered on at %s, as --start asked", spec->vm,
                    host);
    *outcome = "resumed";
    return TRUE;
}

/* A job interrupted (host process killed) while its RelocateVM_Task ran:
 * vSphere finishes or rolls back the task on its own; a task still running
 * is cancelled (it then rolls back), and the job learns where the VM is. */
gboolean
esx_repair(VmshiftBackend *be, VmshiftJob *job, guint32 flags, GError **error)
{
    if (!vmshift_check_flags(flags, 0, "repair", error))
        return FALSE;
    const VmshiftMigrationSpec *spec = vmshift_job_get_spec(job);
    if (spec == NULL || spec->vm == NULL) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_NOT_SUPPORTED,
                    "backend %s: only migration jobs can be repaired", be->name);
        return FALSE;
    }
    g_auto(EsxInventory) inv = { 0 };
    if (!esx_inventory_load(be, &inv, TRUE, FALSE, FALSE, FALSE, NULL, error))
        return FALSE;
    EsxObject *vm = esx_find_vm(be, &inv, spec->vm, error);
    if (vm == NULL)
        return FALSE;
    g_autofree char *task = vmshift_job_get_saved(job, "task");
    const char *outcome = "nothing-to-do";
    if (task != NULL) {
        g_auto(EsxTaskInfo) ti = { 0 };
        guint poll = 0;
        gboolean cancel_sent = FALSE;
        for (int i = 0;; i++) {
            g_autoptr(GError) err = NULL;
            if (!esx_task_poll(be, task, &ti, &err)) {
                /* vCenter forgets old tasks: then only the VM tells. */
                vmshift_job_log(job, VMSHIFT_LOG_INFO, "vSphere task %s is gone (%s)", task,
                                err->message);
                break;
            }
            if (g_strcmp0(ti.state, "success") == 0) {
                outcome = "resumed";
                vmshift_job_log(job, VMSHIFT_LOG_INFO, "vSphere task %s had completed the move",
                                task);
                break;
            }
            if (g_strcmp0(ti.state, "error") == 0) {
                outcome = "rolled-back";
                vmshift_job_log(job, VMSHIFT_LOG_INFO,
                                "vSphere task %s ended in %s: %s; vSphere rolled it back", task,
                                ti.fault_type != NULL ? ti.fault_type : "error",
                                ti.message != NULL ? ti.message : "");
                break;
            }
            if (!cancel_sent) {
                g_autoptr(GError) cerr = NULL;
                vmshift_job_log(job, VMSHIFT_LOG_INFO, "vSphere task %s still %s: cancelling it",
                                task, ti.state);
                if (!esx_cancel_task(be, task, &cerr))
                    vmshift_job_log(job, VMSHIFT_LOG_WARNING,
                                    "CancelTask %s: %s; waiting for it to end", task,
                                    cerr->message);
                cancel_sent = TRUE;
            }
            g_usleep(esx_next_poll(&poll) * 1000);
        }
    }
    if (!repair_power_on(be, &inv, spec, vm->value, job, &outcome, error))
        return FALSE;
    esx_report_location(be, &inv, job, vm->value, NULL);
    vmshift_job_set_result(job, "repair", outcome);
    return TRUE;
}
