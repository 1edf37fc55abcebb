/*
 * ESX plugin: repair of a migration job whose host process died while its
 * RelocateVM_Task ran.
 */
#include "config.h"

#include "esx-impl.h"
#include "esx-ops.h"

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
    esx_report_location(be, &inv, job, vm->value, NULL);
    vmshift_job_set_result(job, "repair", outcome);
    return TRUE;
}
