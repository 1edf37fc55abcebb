/*
 * ESX plugin: migrate. Every move is one RelocateVM_Task built from the
 * plan (esx-plan.c), followed through its TaskInfo with the VM watched in
 * the same call, and cancelled with CancelTask when the job is cancelled or
 * the VM changes in a way the move cannot carry (a snapshot). Disks added
 * during the transfer are moved after it.
 */
#include "config.h"

#include "esx-impl.h"
#include "esx-ops.h"

/* What changed on the VM while it moves. A snapshot aborts the move:
 * returns the reason, *@code the error. A disk added before the switchover
 * is honoured: remembered in @added_disks, moved after the task. */
static char *
vm_changed_during_move(const EsxPlan *p, VmshiftJob *job, const EsxVmState *before,
                       const EsxVmState *now, GPtrArray *added_disks, int *code)
{
    gboolean added = FALSE;
    g_autofree char *diff = esx_disk_diff(before, now, &added);
    if (now->snapshots > before->snapshots) {
        *code = VMSHIFT_ERROR_CONFLICT;
        return g_strdup_printf("a snapshot of VM %s was taken during the migration", p->vm_name);
    }
    if (diff != NULL && !added) {
        vmshift_job_log(job, VMSHIFT_LOG_INFO, "%s during the transfer", diff);
        return NULL;
    }
    if (diff == NULL)
        return NULL;
    GHashTableIter it;
    gpointer k, v;
    g_hash_table_iter_init(&it, now->disks);
    while (g_hash_table_iter_next(&it, &k, &v)) {
        if (g_hash_table_contains(before->disks, k))
            continue;
        gboolean known = FALSE;
        for (guint i = 0; i < added_disks->len; i++)
            known |= g_strcmp0(added_disks->pdata[i], k) == 0;
        if (!known) {
            g_ptr_array_add(added_disks, g_strdup(k));
            vmshift_job_log(job, VMSHIFT_LOG_INFO, "%s during the transfer; it will be moved too",
                            diff);
        }
    }
    return NULL;
}

/* The relocation task ended in error: the error the job gets. */
static void
set_relocate_error(VmshiftBackend *be, const EsxPlan *p, const char *task, const EsxTaskInfo *ti,
                   const char *abort_reason, int abort_code, GError **error)
{
    if (abort_reason != NULL && abort_code == G_IO_ERROR_CANCELLED)
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_CANCELLED,
                    "migration of VM %s cancelled (vSphere task %s cancelled)", p->vm_name, task);
    else if (abort_reason != NULL)
        g_set_error(error, VMSHIFT_ERROR, abort_code, "%s; the relocation was cancelled",
                    abort_reason);
    else
        g_set_error(error, VMSHIFT_ERROR, esx_task_fault_code(ti->fault_type),
                    "%s RelocateVM_Task for VM %s failed: %s: %s", be->url, p->vm_name,
                    ti->fault_type != NULL ? ti->fault_type : "error",
                    ti->message != NULL ? ti->message : "(no message)");
}

/* Follow the relocation task: progress, cancellation, snapshots and disk
 * changes during the move. */
static gboolean
follow_relocate(VmshiftBackend *be, EsxPlan *p, const char *task, VmshiftJob *job,
                const EsxVmState *before, GPtrArray *added_disks, GError **error)
{
    g_auto(EsxTaskInfo) ti = { 0 };
    gboolean cancel_sent = FALSE;
    g_autofree char *abort_reason = NULL;
    int abort_code = 0;
    gint32 last = -2;
    guint poll = 0;
    for (;;) {
        /* While nothing is being aborted, the VM is watched in the same
         * call that polls the task. */
        g_auto(EsxVmState) now = { 0 };
        g_autoptr(GError) werr = NULL;
        gboolean have_now = FALSE;
        if (abort_reason == NULL && !vmshift_job_is_cancelled(job))
            have_now = esx_task_poll_vm(be, task, p->vm->value, &ti, &now, &werr);
        if (!have_now && !esx_task_poll(be, task, &ti, error))
            return FALSE;
        if (ti.progress != last && ti.progress >= 0) {
            vmshift_job_set_progress(job, ti.progress);
            if (p->needed > 0)
                vmshift_job_set_bytes(job, p->needed / 100 * (guint64)ti.progress, p->needed);
            last = ti.progress;
        }
        if (g_strcmp0(ti.state, "success") == 0) {
            if (abort_reason != NULL) {
                /* Too late to stop: the move is done. */
                vmshift_job_log(job, VMSHIFT_LOG_WARNING,
                                "%s, but the relocation had already finished", abort_reason);
                if (abort_code != G_IO_ERROR_CANCELLED) {
                    g_set_error(error, VMSHIFT_ERROR, abort_code, "%s (after the switchover)",
                                abort_reason);
                    return FALSE;
                }
            }
            return TRUE;
        }
        if (g_strcmp0(ti.state, "error") == 0) {
            set_relocate_error(be, p, task, &ti, abort_reason, abort_code, error);
            return FALSE;
        }
        if (abort_reason == NULL) {
            if (vmshift_job_is_cancelled(job)) {
                abort_reason = g_strdup("cancellation requested");
                abort_code = G_IO_ERROR_CANCELLED;
            } else if (!have_now) {
                vmshift_job_log(job, VMSHIFT_LOG_WARNING, "could not watch VM %s: %s", p->vm_name,
                                werr != NULL ? werr->message : "no state");
            } else {
                abort_reason = vm_changed_during_move(p, job, before, &now, added_disks,
                                                      &abort_code);
            }
            if (abort_reason != NULL && !cancel_sent) {
                g_autoptr(GError) cerr = NULL;
                vmshift_job_log(job, VMSHIFT_LOG_INFO, "%s: cancelling vSphere task %s",
                                abort_reason, task);
                if (!esx_cancel_task(be, task, &cerr))
                    vmshift_job_log(job, VMSHIFT_LOG_WARNING, "CancelTask %s: %s", task,
                                    cerr->message);
                cancel_sent = TRUE;
                poll = 0;
            }
        }
        /* Progress moves: keep looking at least every 500 ms. */
        g_usleep(MIN(esx_next_poll(&poll), 500) * 1000);
    }
}

/* The validate phase: the plan, and no finding that stops the move. */
static gboolean
migrate_validate(VmshiftBackend *be, const VmshiftMigrationSpec *spec, VmshiftJob *job,
                 EsxInventory *inv, EsxPlan *p, GError **error)
{
    if (!esx_plan_build(be, spec, inv, p, NULL, error))
        return FALSE;
    vmshift_job_set_location(job, p->src_host_name, p->power);
    for (guint i = 0; i < p->findings->len; i++) {
        VmshiftFinding *f = p->findings->pdata[i];
        if (f->severity == VMSHIFT_SEVERITY_ERROR) {
            g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_INVALID_ARGUMENT,
                        "cannot migrate VM %s: %s", p->vm_name, f->message);
            return FALSE;
        }
    }
    if (vmshift_job_is_cancelled(job)) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_CANCELLED, "migration of VM %s cancelled",
                    p->vm_name);
        return FALSE;
    }
    return TRUE;
}

/* The transfer phase: the RelocateVM_Task (its id saved in the job for
 * repair), followed to its end; *@task_out gets its id. */
static gboolean
migrate_transfer(VmshiftBackend *be, EsxInventory *inv, EsxPlan *p, VmshiftJob *job,
                 const EsxVmState *before, GPtrArray *added, char **task_out, GError **error)
{
    g_autofree char *body = esx_relocate_body(p, NULL, NULL);
    /* The plan read the VM's recent tasks along with it (inv->have_tasks):
     * what a lost reply is compared with. */
    g_autofree char *task = esx_start_vm_task_known(be, "RelocateVM_Task", body, p->vm->value,
                                                    inv->have_tasks ? inv->vms : NULL, job, error);
    if (task == NULL) {
        esx_report_location(be, inv, job, p->vm->value, p->src_host_name);
        return FALSE;
    }
    if (!vmshift_job_save(job, "task", task, error)) {
        g_autoptr(GError) cerr = NULL;
        esx_cancel_task(be, task, &cerr);
        esx_report_location(be, inv, job, p->vm->value, p->src_host_name);
        return FALSE;
    }
    g_autofree char *dsn = p->dest_ds != NULL ? esx_prop_text(p->dest_ds, "name") : NULL;
    vmshift_job_log(job, VMSHIFT_LOG_INFO, "vSphere task %s: relocating VM %s%s%s%s%s", task,
                    p->vm_name, p->dest_host != NULL ? " to host " : "",
                    p->dest_host != NULL ? p->dest_host_name : "",
                    dsn != NULL ? " to datastore " : "", dsn != NULL ? dsn : "");
    if (!follow_relocate(be, p, task, job, before, added, error)) {
        esx_report_location(be, inv, job, p->vm->value, p->src_host_name);
        return FALSE;
    }
    *task_out = g_steal_pointer(&task);
    return TRUE;
}

/* The switchover phase: disks added during the transfer go where the
 * others went, and a cold move powers the VM on when asked to. */
static gboolean
migrate_switchover(VmshiftBackend *be, const VmshiftMigrationSpec *spec, EsxInventory *inv,
                   EsxPlan *p, VmshiftJob *job, GPtrArray *added, GError **error)
{
    for (guint i = 0; i < added->len && p->dest_ds != NULL; i++) {
        g_autofree char *b2 = esx_relocate_body(p, added->pdata[i], p->dest_ds->value);
        g_autofree char *t2 = esx_start_vm_task(be, "RelocateVM_Task", b2, p->vm->value, job,
                                                error);
        if (t2 == NULL || !esx_wait_task(be, t2, "RelocateVM_Task (added disk)", error)) {
            esx_report_location(be, inv, job, p->vm->value, p->dest_host_name);
            return FALSE;
        }
        vmshift_job_log(job, VMSHIFT_LOG_INFO, "disk %s added during the move was moved as well",
                        (char *)added->pdata[i]);
    }
    if (spec->start && spec->type == VMSHIFT_MIGRATION_COLD) {
        g_autofree char *vm = esx_moref_xml("_this", "VirtualMachine", p->vm->value);
        g_autofree char *pb = g_strdup_printf(
            "<PowerOnVM_Task xmlns=\"urn:vim25\">%s</PowerOnVM_Task>", vm);
        g_autofree char *t3 = esx_start_vm_task(be, "PowerOnVM_Task", pb, p->vm->value, job, error);
        if (t3 == NULL || !esx_wait_task(be, t3, "PowerOnVM_Task", error)) {
            esx_report_location(be, inv, job, p->vm->value, p->dest_host_name);
            return FALSE;
        }
        vmshift_job_log(job, VMSHIFT_LOG_INFO, "VM %s powered on", p->vm_name);
    }
    return TRUE;
}

/* After the switchover: where the VM is, and no disk added that the move
 * did not carry (a disk change after the switchover cannot be honoured). */
static gboolean
migrate_check_after(VmshiftBackend *be, EsxInventory *inv, EsxPlan *p, VmshiftJob *job,
                    const EsxVmState *before, GPtrArray *added, EsxResult **keep, EsxObject **read,
                    GError **error)
{
    g_auto(EsxVmState) after = { 0 };
    g_autofree char *apower = NULL;
    g_autoptr(GError) aerr = NULL;
    /* one read for this check and the verification that follows */
    *read = esx_read_after_move(be, p->vm->value, keep, &aerr);
    if (*read != NULL)
        esx_vm_state_parse(*read, &after, &apower);
    if (*read == NULL) {
        vmshift_job_set_location(job, p->dest_host_name, "unknown: could not ask the server");
        vmshift_job_log(job, VMSHIFT_LOG_WARNING, "could not read where VM %s is: %s", p->vm_name,
                        aerr->message);
        return TRUE;
    }
    /* Where it is now, from the same read. */
    g_autofree char *h = esx_name_of(inv->hosts, after.host);
    vmshift_job_set_location(job, h, apower);
    GHashTableIter it;
    gpointer k, v;
    g_hash_table_iter_init(&it, after.disks);
    g_autofree char *diff = NULL;
    while (diff == NULL && g_hash_table_iter_next(&it, &k, &v)) {
        gboolean known = g_hash_table_contains(before->disks, k);
        for (guint i = 0; !known && i < added->len; i++)
            known = g_strcmp0(added->pdata[i], k) == 0;
        if (!known)
            diff = g_strdup_printf("disk %s (%s) was added", (char *)k, (char *)v);
    }
    if (diff != NULL) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_CONFLICT,
                    "%s to VM %s after the switchover; check its placement", diff, p->vm_name);
        return FALSE;
    }
    return TRUE;
}

gboolean
esx_migrate(VmshiftBackend *be, const VmshiftMigrationSpec *spec, VmshiftJob *job, guint32 flags,
            GError **error)
{
    if (!vmshift_check_flags(flags, 0, "migrate", error))
        return FALSE;
    if (!vmshift_job_set_phase(job, VMSHIFT_PHASE_VALIDATE, error))
        return FALSE;
    g_auto(EsxInventory) inv = { 0 };
    g_auto(EsxPlan) p = { 0 };
    if (!migrate_validate(be, spec, job, &inv, &p, error))
        return FALSE;

    if (!vmshift_job_set_phase(job, VMSHIFT_PHASE_PREPARE, error))
        return FALSE;
    if (!esx_acl_record(be, job, p.vm->value, p.vm_name, error))
        return FALSE;
    /* The plan's VM properties are the state before the move (read
     * moments ago, in the same call as the merge check). */
    g_auto(EsxVmState) before = { 0 };
    esx_vm_state_parse(p.vm, &before, NULL);

    if (!vmshift_job_set_phase(job, VMSHIFT_PHASE_TRANSFER, error))
        return FALSE;
    g_autoptr(GPtrArray) added = g_ptr_array_new_with_free_func(g_free);
    g_autofree char *task = NULL;
    if (!migrate_transfer(be, &inv, &p, job, &before, added, &task, error))
        return FALSE;

    if (!vmshift_job_set_phase(job, VMSHIFT_PHASE_SWITCHOVER, error))
        return FALSE;
    g_autoptr(EsxResult) keep = NULL;
    EsxObject *read = NULL;
    if (!migrate_switchover(be, spec, &inv, &p, job, added, error)
        || !migrate_check_after(be, &inv, &p, job, &before, added, &keep, &read, error)
        || !esx_verify_move_read(be, spec, &inv, &p, job, read, error))
        return FALSE;
    vmshift_job_set_progress(job, 100);
    vmshift_job_set_result(job, "vsphere-task", task);
    return TRUE;
}
