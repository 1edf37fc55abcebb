/* vmshift KVM plugin, qmp transport: storage migration (the disks move, the
 * VM stays on its host) and checkpoint_state. */
#include "config.h"

#include <string.h>

#include "kvm-qmp.h"

/* The new paths of the disks that move (--path, --disk-path): their
 * indexes, as pointers, into @moving. */
static gboolean
plan_moves(KvmMig *m, GPtrArray *moving, GError **error)
{
    m->ddef = kvm_vm_def_copy(m->sdef);
    for (guint i = 0; i < m->ddef->disks->len; i++) {
        KvmDiskDef *dk = m->ddef->disks->pdata[i];
        const char *dir = vmshift_migration_spec_disk_dir(m->spec, dk->id);
        if (!dir)
            continue;
        g_autofree char *np = kvm_mig_target_path(dir, dk->path, dk->id, m->ddef->name);
        if (strcmp(np, dk->path)) {
            g_free(dk->path);
            dk->path = g_steal_pointer(&np);
            g_ptr_array_add(moving, GUINT_TO_POINTER(i));
        }
    }
    if (moving->len == 0) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_INVALID_ARGUMENT,
                    "storage migration of VM %s: no disk moves (give --path or --disk-path)",
                    m->sdef->name);
        return FALSE;
    }
    return TRUE;
}

/*
 * After a pivot that failed (its reply lost, the connection cut): what the
 * running QEMU says over a new QMP connection, which replaces the old one.
 * Every disk on its new file: the pivot was carried out, the move goes on
 * (TRUE, @error cleared). Every disk on its old file: FALSE, the move is
 * undone. Anything else (a mix, no answer): FALSE with pivot_unknown set,
 * and nothing of the move is removed; a repair decides.
 */
/* TRUE while QEMU still lists one of @mirrors' block jobs */
static gboolean
mirror_jobs_listed(VmshiftQmp *q, GPtrArray *mirrors)
{
    json_object *jobs = vmshift_qmp_execute(q, "query-block-jobs", NULL, QMP_CMD_TIMEOUT, NULL);
    gboolean any = FALSE;
    for (gsize i = 0; jobs && i < json_object_array_length(jobs); i++) {
        const char *dev = vmshift_json_get_string(json_object_array_get_idx(jobs, i), "device");
        for (guint k = 0; dev && k < mirrors->len; k++)
            any = any || !g_strcmp0(((KvmMirror *)mirrors->pdata[k])->job, dev);
    }
    if (jobs)
        json_object_put(jobs);
    return any;
}

static gboolean
pivot_took_effect(KvmMig *m, GPtrArray *mirrors, GError **error)
{
    VmshiftQmp *q = kvm_vm_qmp(m->src, m->sdef->name, m->b->qmp_timeout_ms, NULL, NULL);
    /* a block-job-complete that reached QEMU goes on without us: the
     * files are read once the jobs have ended (up to 5 s; a job still
     * listed then was never told to complete, and is cancelled) */
    for (int i = 0; q && i < 50 && mirror_jobs_listed(q, mirrors); i++)
        g_usleep(100000);
    json_object *blocks = q ? vmshift_qmp_execute(q, "query-block", NULL, QMP_CMD_TIMEOUT, NULL)
                            : NULL;
    guint on_new = 0, on_old = 0;
    for (guint i = 0; blocks && i < mirrors->len; i++) {
        KvmMirror *x = mirrors->pdata[i];
        g_autofree char *now = kvm_qemu_disk_file(blocks, x->disk);
        on_new += !g_strcmp0(now, x->new_path);
        on_old += !g_strcmp0(now, x->old_path);
    }
    if (blocks)
        json_object_put(blocks);
    if (q) {
        g_clear_pointer(&m->sq, vmshift_qmp_free);
        m->sq = q;
    }
    if (blocks && on_new == mirrors->len) {
        vmshift_job_log(m->job, VMSHIFT_LOG_WARNING,
                        "the pivot reported an error (%s), but QEMU runs every disk on its new "
                        "file: the move goes on",
                        (*error)->message);
        g_clear_error(error);
        for (guint i = 0; i < mirrors->len; i++)
            ((KvmMirror *)mirrors->pdata[i])->done = TRUE;
        return TRUE;
    }
    if (!blocks || on_old != mirrors->len)
        m->pivot_unknown = TRUE;
    return FALSE;
}

/* A running VM: each moving disk is mirrored into a new image and the VM
 * pivots onto them. */
static gboolean
move_mirrored(KvmMig *m, GPtrArray *moving, GPtrArray *mirrors, GError **error)
{
    m->sq = kvm_vm_qmp(m->src, m->sdef->name, m->b->qmp_timeout_ms, m->cancel, error);
    if (!m->sq)
        return FALSE;
    for (guint k = 0; k < moving->len; k++) {
        guint i = GPOINTER_TO_UINT(moving->pdata[k]);
        if (!kvm_mig_new_image(m, m->src, m->sdef->disks->pdata[i], m->ddef->disks->pdata[i],
                               error))
            return FALSE;
    }
    if (!kvm_mig_phase(m, VMSHIFT_PHASE_TRANSFER, error)
        || !kvm_mig_save(m, "stage", "mirror", error))
        return FALSE;
    for (guint k = 0; k < moving->len; k++) {
        guint i = GPOINTER_TO_UINT(moving->pdata[k]);
        KvmDiskDef *dk = m->ddef->disks->pdata[i];
        KvmDiskDef *sk = m->sdef->disks->pdata[i];
        json_object *f = json_object_new_object();
        json_object_object_add(f, "driver", json_object_new_string("file"));
        json_object_object_add(f, "filename", json_object_new_string(dk->path));
        if (!kvm_mirror_start(m, m->sq, sk, f, dk->path, mirrors, error))
            return FALSE;
    }
    if (!kvm_mirrors_wait_ready(m, m->sq, mirrors, error)
        || !kvm_mig_phase(m, VMSHIFT_PHASE_SWITCHOVER, error))
        return FALSE;
    if (!kvm_mirrors_pivot(m, m->sq, mirrors, error) && !pivot_took_effect(m, mirrors, error))
        return FALSE;
    /* past the pivot: the new files are the VM's */
    kvm_mig_save_late(m, "stage", "pivoted");
    g_ptr_array_set_size(m->new_files, 0);
    GError *local = NULL;
    if (!kvm_mig_save_new_files(m, &local)) {
        vmshift_job_log(m->job, VMSHIFT_LOG_WARNING, "journal (new-files): %s", local->message);
        g_clear_error(&local);
    }
    return TRUE;
}

/* A stopped VM: each moving disk is copied. */
static gboolean
move_copied(KvmMig *m, GPtrArray *moving, GError **error)
{
    if (!kvm_mig_phase(m, VMSHIFT_PHASE_TRANSFER, error))
        return FALSE;
    for (guint k = 0; k < moving->len; k++) {
        guint i = GPOINTER_TO_UINT(moving->pdata[k]);
        KvmDiskDef *dk = m->ddef->disks->pdata[i];
        KvmDiskDef *sk = m->sdef->disks->pdata[i];
        if (kvm_mig_check_cancel(m, error)
            || !kvm_mig_copy_image(m, m->src, dk->id, sk->path, dk->path, dk->format, error))
            return FALSE;
        vmshift_job_set_progress(m->job, 100.0 * (k + 1) / moving->len);
    }
    if (!kvm_mig_phase(m, VMSHIFT_PHASE_SWITCHOVER, error)
        || !kvm_mig_save(m, "stage", "copied", error))
        return FALSE;
    g_ptr_array_set_size(m->new_files, 0);
    return kvm_mig_save_new_files(m, error);
}

/* The VM's disks are the new ones: the old images go. */
static void
storage_cleanup(KvmMig *m, GPtrArray *moving)
{
    kvm_mig_phase_late(m, VMSHIFT_PHASE_CLEANUP);
    for (guint k = 0; k < moving->len; k++) {
        guint i = GPOINTER_TO_UINT(moving->pdata[k]);
        KvmDiskDef *sk = m->sdef->disks->pdata[i];
        const char *argv[] = { "rm", "-f", "--", sk->path, NULL };
        GError *local = NULL;
        if (kvm_host_run(m->src, argv, NULL, NULL, 30, &local))
            vmshift_job_log(m->job, VMSHIFT_LOG_INFO, "removed the old image %s", sk->path);
        else {
            vmshift_job_log(m->job, VMSHIFT_LOG_WARNING, "%s", local->message);
            g_clear_error(&local);
        }
    }
    kvm_mig_save_late(m, "stage", "done");
}

/* A failed move: the VM keeps its old disks, the new images go. */
static void
storage_undo(KvmMig *m, GPtrArray *mirrors, gboolean running)
{
    if (m->pivot_unknown) {
        vmshift_job_log(m->job, VMSHIFT_LOG_WARNING,
                        "QEMU did not show the disks on their old files after the pivot failed: "
                        "nothing removed; 'vmshift job repair' decides");
        vmshift_job_set_location(m->job, m->src->name,
                                 "unknown: the disks' files were not confirmed");
        return;
    }
    if (m->sq && mirrors->len)
        kvm_mirrors_abort(m, m->sq, mirrors);
    KvmHost *keep = m->dst;
    m->dst = NULL;
    KvmVmDef *kd = m->ddef;
    m->ddef = NULL; /* the definition was not moved */
    kvm_mig_rollback_destination(m);
    m->ddef = kd;
    m->dst = keep;
    vmshift_job_set_location(m->job, m->src->name,
                             running ? "running on its old disks" : "stopped, old disks");
}

gboolean
kvm_mig_storage(KvmMig *m, GError **error)
{
    g_autoptr(GPtrArray) mirrors = g_ptr_array_new_with_free_func((GDestroyNotify)kvm_mirror_free);
    g_autoptr(GPtrArray) moving = g_ptr_array_new(); /* indexes as pointers */
    gboolean running = kvm_vm_is_running(m->src, m->sdef->name);
    m->src_running = running;
    /* a stopped VM's disks are copied, not mirrored: nothing to keep in
     * sync, so a scheduled switchover waits before anything is done */
    if (!running && !vmshift_job_hold_switchover(m->job, NULL, NULL, error))
        return FALSE;
    if (!plan_moves(m, moving, error) || !kvm_mig_phase(m, VMSHIFT_PHASE_PREPARE, error)
        || !(running ? move_mirrored(m, moving, mirrors, error) : move_copied(m, moving, error)) ||
        /* the definition follows the disks */
        !kvm_vm_def_save(m->src, m->ddef, error)) {
        storage_undo(m, mirrors, running);
        return FALSE;
    }
    vmshift_job_set_location(m->job, m->src->name, running ? "running" : "stopped");
    storage_cleanup(m, moving);
    return TRUE;
}

/* ---- checkpoint_state --------------------------------------------------- */

/* A running VM: its commit/stream block jobs. */
static gboolean
block_job_merges(KvmBackend *b, KvmHost *h, const KvmVmDef *def, VmshiftCheckpointState *cs,
                 GError **error)
{
    g_autoptr(VmshiftQmp) q = kvm_vm_qmp(h, def->name, b->qmp_timeout_ms, NULL, error);
    if (!q)
        return FALSE;
    json_object *jobs = vmshift_qmp_execute(q, "query-block-jobs", NULL, QMP_CMD_TIMEOUT, error);
    if (!jobs)
        return FALSE;
    g_autoptr(GString) detail = g_string_new(NULL);
    gsize n = json_object_array_length(jobs);
    guint64 off = 0, len = 0;
    for (gsize i = 0; i < n; i++) {
        json_object *j = json_object_array_get_idx(jobs, i);
        const char *type = vmshift_json_get_string(j, "type");
        if (g_strcmp0(type, "commit") && g_strcmp0(type, "stream"))
            continue;
        const char *dev = vmshift_json_get_string(j, "device");
        guint64 o = (guint64)vmshift_json_get_int(j, "offset", 0);
        guint64 l = (guint64)vmshift_json_get_int(j, "len", 0);
        off += o;
        len += l;
        /* name the disk when the job id carries it */
        const char *disk = NULL;
        for (guint k = 0; k < def->disks->len && !disk; k++) {
            KvmDiskDef *dk = def->disks->pdata[k];
            if (dev && strstr(dev, dk->id))
                disk = dk->id;
        }
        if (!disk && def->disks->len == 1)
            disk = ((KvmDiskDef *)def->disks->pdata[0])->id;
        if (detail->len)
            g_string_append(detail, "; ");
        g_string_append_printf(detail,
                               "block-%s job '%s' on %s%s at %d%% (%s, %" G_GUINT64_FORMAT
                               "/%" G_GUINT64_FORMAT " bytes)",
                               type, dev ? dev : "?", disk ? "disk " : "VM ",
                               disk ? disk : def->name, l ? (int)(100 * o / l) : 0,
                               vmshift_json_get_string(j, "status") ?: "?", o, l);
    }
    json_object_put(jobs);
    if (detail->len) {
        cs->merging = 1;
        cs->percent = len ? (gint32)(100 * off / len) : -1;
        cs->detail = g_string_free(g_steal_pointer(&detail), FALSE);
    }
    return TRUE;
}

/* A stopped VM: an image locked by someone else is being merged
 * (qemu-img commit / rebase hold the write lock). */
static void
locked_image_merges(KvmHost *h, const KvmVmDef *def, VmshiftCheckpointState *cs)
{
    for (guint k = 0; k < def->disks->len; k++) {
        KvmDiskDef *dk = def->disks->pdata[k];
        const char *argv[] = { "qemu-img", "info", "--output=json", dk->path, NULL };
        GError *local = NULL;
        if (!kvm_host_run(h, argv, NULL, NULL, 30, &local)) {
            if (strstr(local->message, "lock")) {
                cs->merging = 1;
                g_free(cs->detail);
                cs->detail = g_strdup_printf("disk %s (%s) of stopped VM %s is locked by "
                                             "another process (qemu-img commit or rebase "
                                             "running)",
                                             dk->id, dk->path, def->name);
            }
            g_clear_error(&local);
        }
    }
}

VmshiftCheckpointState *
kvm_qmp_checkpoint_state(KvmBackend *b, const char *vmname, GError **error)
{
    g_autoptr(KvmVmDef) def = NULL;
    KvmHost *h = kvm_backend_locate_vm(b, vmname, &def, error);
    if (!h)
        return NULL;
    g_autoptr(VmshiftCheckpointState) cs = vmshift_checkpoint_state_new();
    cs->percent = -1;
    if (!kvm_vm_is_running(h, def->name))
        locked_image_merges(h, def, cs);
    else if (!block_job_merges(b, h, def, cs, error))
        return NULL;
    return g_steal_pointer(&cs);
}
