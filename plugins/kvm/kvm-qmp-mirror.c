/* vmshift KVM plugin, qmp transport: block mirrors (disks of a running VM
 * copied by QEMU while it runs: storage moves, and live moves with --path). */
#include "config.h"

#include <string.h>

#include "kvm-qmp.h"

/* Deletes block node @node (errors ignored: best effort). */
static void
blockdev_del(VmshiftQmp *q, const char *node)
{
    json_object *a = json_object_new_object();
    json_object_object_add(a, "node-name", json_object_new_string(node));
    vmshift_qmp_execute_simple(q, "blockdev-del", a, QMP_CMD_TIMEOUT, NULL);
}

/* Deletes a format node @node and its protocol node @node-file. */
static void
blockdev_del_with_file(VmshiftQmp *q, const char *node)
{
    g_autofree char *fnode = g_strdup_printf("%s-file", node);
    blockdev_del(q, node);
    blockdev_del(q, fnode);
}

/* The node currently attached to disk @id (it changes after a pivot). */
char *
kvm_mig_disk_node(VmshiftQmp *q, const char *id, GError **error)
{
    json_object *r = vmshift_qmp_execute(q, "query-block", NULL, QMP_CMD_TIMEOUT, error);
    if (!r)
        return NULL;
    g_autofree char *want = g_strdup_printf("/machine/peripheral/%s-dev/", id);
    char *node = NULL;
    gsize n = json_object_is_type(r, json_type_array) ? json_object_array_length(r) : 0;
    for (gsize i = 0; i < n && !node; i++) {
        json_object *e = json_object_array_get_idx(r, i);
        const char *qdev = vmshift_json_get_string(e, "qdev");
        if (qdev && (g_str_has_prefix(qdev, want) || g_strcmp0(qdev, want) == 0)) {
            const char *nn = vmshift_json_get_string(e, "inserted/node-name");
            if (nn)
                node = g_strdup(nn);
        }
    }
    if (!node)
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_NOT_FOUND,
                    "QEMU has no block device for disk %s", id);
    json_object_put(r);
    return node;
}

void
kvm_mirror_free(KvmMirror *x)
{
    g_free(x->disk);
    g_free(x->old_node);
    g_free(x->job);
    g_free(x->new_node);
    g_free(x->new_path);
    g_free(x->old_path);
    g_free(x);
}

static void
job_progress_from_block_jobs(KvmMig *m, VmshiftQmp *q)
{
    json_object *r = vmshift_qmp_execute(q, "query-block-jobs", NULL, QMP_CMD_TIMEOUT, NULL);
    if (!r)
        return;
    guint64 done = 0, total = 0;
    gsize n = json_object_array_length(r);
    for (gsize i = 0; i < n; i++) {
        json_object *e = json_object_array_get_idx(r, i);
        done += (guint64)vmshift_json_get_int(e, "offset", 0);
        total += (guint64)vmshift_json_get_int(e, "len", 0);
    }
    json_object_put(r);
    if (total)
        vmshift_job_set_bytes(m->job, done, total);
}

static gboolean
match_job(const VmshiftQmpEvent *ev, gpointer data)
{
    return g_strcmp0(vmshift_qmp_event_get_string(ev, "device"), data) == 0;
}

/* ---- a scheduled switchover: the mirrors kept in sync until the time ----
 *
 * QEMU keeps a READY mirror synchronised by itself (every guest write goes
 * to both images), so the job needs no connection while it waits, and it
 * lets go of the VM's one QMP monitor (a socket chardev serves one client at
 * a time): the admin's tools can ask the VM what it does during a wait of
 * hours. Every few seconds a short connection checks that each mirror is
 * still there and ready; at the time (or on cancel, to abort the mirrors)
 * the job connects again. */

#define HOLD_CHECK_US (3 * G_USEC_PER_SEC)
#define HOLD_UNREACHABLE_US (120 * G_USEC_PER_SEC)

typedef struct {
    KvmMig *m;
    GPtrArray *mirrors;
    gint64 last;    /* last check (monotonic µs) */
    gint64 reached; /* last successful check */
} HoldPoll;

/* Whether query-block-jobs @r shows every mirror of @h ready; else the
 * error naming the first that is not. */
static gboolean
mirrors_ready_in(HoldPoll *h, json_object *r, GError **error)
{
    gsize n = json_object_is_type(r, json_type_array) ? json_object_array_length(r) : 0;
    guint64 done = 0, total = 0;

    for (guint i = 0; i < h->mirrors->len; i++) {
        KvmMirror *x = h->mirrors->pdata[i];
        json_object *e = NULL;
        for (gsize k = 0; k < n && !e; k++) {
            json_object *c = json_object_array_get_idx(r, k);
            if (!g_strcmp0(vmshift_json_get_string(c, "device"), x->job))
                e = c;
        }
        if (!e || !vmshift_json_get_bool(e, "ready", FALSE)) {
            const char *st = e ? vmshift_json_get_string(e, "status") : NULL;
            g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_FAILED,
                        "mirror of disk %s to %s stopped while waiting for the switchover (%s)",
                        x->disk, x->new_path, st ? st : "the block job is gone");
            x->done = e == NULL;
            return FALSE;
        }
        done += (guint64)vmshift_json_get_int(e, "offset", 0);
        total += (guint64)vmshift_json_get_int(e, "len", 0);
    }
    if (total)
        vmshift_job_set_bytes(h->m->job, done, total);
    return TRUE;
}

/* A short connection every few seconds: the mirrors still ready. A monitor
 * busy with someone else's connection for a while is not a failure; two
 * minutes without an answer are. */
static gboolean
hold_poll(VmshiftJob *job, gpointer data, GError **error)
{
    HoldPoll *h = data;
    KvmMig *m = h->m;
    g_autoptr(GError) local = NULL;
    g_autoptr(VmshiftQmp) q = NULL;
    json_object *r = NULL;
    gboolean ok;
    gint64 now = g_get_monotonic_time();

    (void)job;
    if (now - h->last < HOLD_CHECK_US)
        return TRUE;
    h->last = now;
    q = kvm_vm_qmp(m->src, m->sdef->name, 2000, m->cancel, &local);
    if (q)
        r = vmshift_qmp_execute(q, "query-block-jobs", NULL, QMP_CMD_TIMEOUT, &local);
    if (!r) {
        if (g_error_matches(local, G_IO_ERROR, G_IO_ERROR_CANCELLED))
            return TRUE; /* the hold sees the cancel */
        if (!kvm_vm_is_running(m->src, m->sdef->name)) {
            g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_FAILED,
                        "VM %s stopped while waiting for the switchover", m->sdef->name);
            return FALSE;
        }
        if (now - h->reached < HOLD_UNREACHABLE_US)
            return TRUE;
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_CONNECTION,
                    "VM %s: no answer from QEMU for two minutes while waiting for the "
                    "switchover: %s",
                    m->sdef->name, local->message);
        return FALSE;
    }
    ok = mirrors_ready_in(h, r, error);
    json_object_put(r);
    h->reached = now;
    return ok;
}

/* The job's QMP connection again, after the wait: tried for two minutes
 * (someone else may hold the monitor for a moment). */
static gboolean
hold_reconnect(KvmMig *m, GError **error)
{
    gint64 until = g_get_monotonic_time() + HOLD_UNREACHABLE_US;
    GError *local = NULL;

    while (!(m->sq = kvm_vm_qmp(m->src, m->sdef->name, m->b->qmp_timeout_ms, NULL, &local))) {
        if (g_get_monotonic_time() > until || !kvm_vm_is_running(m->src, m->sdef->name)) {
            g_propagate_prefixed_error(error, local, "after waiting for the switchover: ");
            return FALSE;
        }
        g_clear_error(&local);
        g_usleep(G_USEC_PER_SEC / 2);
    }
    vmshift_qmp_set_cancellable(m->sq, m->cancel);
    return TRUE;
}

/* Every mirror is ready: when the host scheduled the switchover
 * (VmshiftMigrationSpec.switchover_at, VMSHIFT_PLUGIN_SWITCHOVER_AT), the
 * job holds here, before the pivot or the RAM migration, with the mirrors
 * synchronised; a cancel then aborts them and the VM stays on its source.
 * @q is m->sq, which this may replace. */
static gboolean
hold_synchronised(KvmMig *m, VmshiftQmp *q, GPtrArray *mirrors, GError **error)
{
    HoldPoll h = { .m = m, .mirrors = mirrors };
    gint64 at = VMSHIFT_HAS_FIELD(m->spec, switchover_at) ? m->spec->switchover_at : 0;
    GError *reconnect = NULL;
    gboolean ok;

    if (at <= g_get_real_time() / G_USEC_PER_SEC || q != m->sq)
        return vmshift_job_hold_switchover(m->job, NULL, NULL, error);
    vmshift_job_log(m->job, VMSHIFT_LOG_INFO,
                    "%u disk(s) in sync; QEMU keeps the mirror synchronised until the switchover "
                    "(the QMP monitor is free meanwhile)",
                    mirrors->len);
    vmshift_job_set_location(m->job, m->src->name, "running, disks mirrored");
    vmshift_qmp_clear_events(q);
    g_clear_pointer(&m->sq, vmshift_qmp_free);
    h.reached = h.last = g_get_monotonic_time();
    ok = vmshift_job_hold_switchover(m->job, hold_poll, &h, error);
    /* also after a cancel: the rollback aborts the mirrors through it */
    if (!hold_reconnect(m, &reconnect)) {
        if (ok)
            g_propagate_error(error, reconnect);
        else
            g_clear_error(&reconnect);
        return FALSE;
    }
    return ok;
}

/*
 * Waits until every mirror is ready (BLOCK_JOB_READY), reporting progress,
 * then holds for a scheduled switchover; honours cancellation.
 */
gboolean
kvm_mirrors_wait_ready(KvmMig *m, VmshiftQmp *q, GPtrArray *mirrors, GError **error)
{
    gint64 last = 0;
    for (;;) {
        gboolean all = TRUE;
        for (guint i = 0; i < mirrors->len; i++)
            all &= ((KvmMirror *)mirrors->pdata[i])->ready;
        if (all)
            return hold_synchronised(m, q, mirrors, error);
        if (kvm_mig_check_cancel(m, error))
            return FALSE;
        GError *local = NULL;
        VmshiftQmpEvent *ev = vmshift_qmp_next_event(q, 200, &local);
        if (local) {
            g_propagate_error(error, local);
            return FALSE;
        }
        if (ev) {
            const char *dev = vmshift_qmp_event_get_string(ev, "device");
            for (guint i = 0; i < mirrors->len; i++) {
                KvmMirror *x = mirrors->pdata[i];
                if (g_strcmp0(dev, x->job) != 0)
                    continue;
                if (!strcmp(ev->name, "BLOCK_JOB_READY"))
                    x->ready = TRUE;
                else if (!strcmp(ev->name, "BLOCK_JOB_ERROR")
                         || !strcmp(ev->name, "BLOCK_JOB_CANCELLED")
                         || (!strcmp(ev->name, "BLOCK_JOB_COMPLETED") && !x->ready)) {
                    const char *e = vmshift_qmp_event_get_string(ev, "error");
                    g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_FAILED,
                                "mirror of disk %s to %s failed: %s", x->disk, x->new_path,
                                e ? e : ev->name);
                    vmshift_qmp_event_free(ev);
                    return FALSE;
                }
            }
            vmshift_qmp_event_free(ev);
        }
        gint64 now = g_get_monotonic_time();
        if (now - last > 250000) {
            job_progress_from_block_jobs(m, q);
            last = now;
        }
    }
}

/*
 * Cancels mirrors (no pivot) and deletes their target nodes. @graceful: the
 * source is stopped and the targets must get every last write (a READY
 * mirror then finishes its final synchronisation and completes); otherwise
 * the copies are being thrown away and are abandoned at once. TRUE when
 * every mirror ended by completing (what @graceful asks for).
 */
gboolean
kvm_mirrors_abort_ex(KvmMig *m, VmshiftQmp *q, GPtrArray *mirrors, gboolean graceful)
{
    gboolean completed = TRUE;
    GCancellable *saved = m->cancel;
    vmshift_qmp_set_cancellable(q, NULL);
    for (guint i = 0; i < mirrors->len; i++) {
        KvmMirror *x = mirrors->pdata[i];
        if (!x->job || x->done)
            continue;
        json_object *a = json_object_new_object();
        json_object_object_add(a, "device", json_object_new_string(x->job));
        json_object_object_add(a, "force", json_object_new_boolean(graceful ? 0 : 1));
        if (vmshift_qmp_execute_simple(q, "block-job-cancel", a, QMP_CMD_TIMEOUT, NULL)) {
            /* BLOCK_JOB_CANCELLED, or COMPLETED when it was ready (a
             * graceful cancel of a READY mirror completes without pivot
             * after the final synchronisation) */
            VmshiftQmpEvent *ev = NULL;
            for (int k = 0; k < 600 && !ev; k++) {
                ev = vmshift_qmp_wait_event(q, "BLOCK_JOB_COMPLETED", match_job, x->job, 50, NULL);
                if (!ev)
                    ev = vmshift_qmp_wait_event(q, "BLOCK_JOB_CANCELLED", match_job, x->job, 50,
                                                NULL);
                if (!graceful && k > 40)
                    break;
            }
            if (ev && graceful && strcmp(ev->name, "BLOCK_JOB_COMPLETED"))
                vmshift_job_log(m->job, VMSHIFT_LOG_WARNING, "mirror of disk %s ended with %s",
                                x->disk, ev->name);
            x->completed = ev && !strcmp(ev->name, "BLOCK_JOB_COMPLETED")
                           && !vmshift_qmp_event_get_string(ev, "error");
            vmshift_qmp_event_free(ev);
        }
        x->done = TRUE;
    }
    for (guint i = 0; i < mirrors->len; i++) {
        KvmMirror *x = mirrors->pdata[i];
        if (x->new_node)
            blockdev_del_with_file(q, x->new_node);
        g_clear_pointer(&x->new_node, g_free);
        completed = completed && x->completed;
    }
    vmshift_qmp_set_cancellable(q, saved);
    vmshift_qmp_clear_events(q);
    return completed;
}

void
kvm_mirrors_abort(KvmMig *m, VmshiftQmp *q, GPtrArray *mirrors)
{
    kvm_mirrors_abort_ex(m, q, mirrors, FALSE);
}

/*
 * Starts a blockdev-mirror of disk @dk to @target (a node this function
 * adds over @file_json). The mirror is added to @mirrors.
 */
KvmMirror *
kvm_mirror_new(VmshiftQmp *q, const KvmDiskDef *dk, const char *new_path, GPtrArray *mirrors,
               GError **error)
{
    KvmMirror *x = g_new0(KvmMirror, 1);
    x->disk = g_strdup(dk->id);
    x->old_path = g_strdup(dk->path);
    x->new_path = g_strdup(new_path);
    g_ptr_array_add(mirrors, x);
    x->old_node = kvm_mig_disk_node(q, dk->id, error);
    return x->old_node ? x : NULL;
}

gboolean
kvm_mirror_run(VmshiftQmp *q, KvmMirror *x, GError **error)
{
    x->job = g_strdup_printf("vmshift-mirror-%s", x->disk);
    json_object *a = json_object_new_object();
    json_object_object_add(a, "job-id", json_object_new_string(x->job));
    json_object_object_add(a, "device", json_object_new_string(x->old_node));
    json_object_object_add(a, "target", json_object_new_string(x->new_node));
    json_object_object_add(a, "sync", json_object_new_string("full"));
    if (!vmshift_qmp_execute_simple(q, "blockdev-mirror", a, QMP_CMD_TIMEOUT, error)) {
        g_clear_pointer(&x->job, g_free);
        return FALSE;
    }
    return TRUE;
}

gboolean
kvm_mirror_start(KvmMig *m, VmshiftQmp *q, const KvmDiskDef *dk, json_object *target_file,
                 const char *target_path_, GPtrArray *mirrors, GError **error)
{
    KvmMirror *x = kvm_mirror_new(q, dk, target_path_, mirrors, error);
    if (!x) {
        json_object_put(target_file);
        return FALSE;
    }
    x->new_node = g_strdup_printf("%s-m%" G_GINT64_FORMAT, dk->id, g_get_real_time() % 1000000);
    g_autofree char *fnode = g_strdup_printf("%s-file", x->new_node);
    json_object_object_add(target_file, "node-name", json_object_new_string(fnode));
    if (!vmshift_qmp_execute_simple(q, "blockdev-add", target_file, QMP_CMD_TIMEOUT, error)) {
        g_clear_pointer(&x->new_node, g_free);
        return FALSE;
    }
    json_object *fmt = json_object_new_object();
    json_object_object_add(fmt, "driver", json_object_new_string(dk->format));
    json_object_object_add(fmt, "node-name", json_object_new_string(x->new_node));
    json_object_object_add(fmt, "file", json_object_new_string(fnode));
    if (!strcmp(dk->format, "qcow2"))
        json_object_object_add(fmt, "backing", NULL);
    if (!vmshift_qmp_execute_simple(q, "blockdev-add", fmt, QMP_CMD_TIMEOUT, error)) {
        blockdev_del(q, fnode);
        g_clear_pointer(&x->new_node, g_free);
        return FALSE;
    }
    if (!kvm_mirror_run(q, x, error))
        return FALSE;
    vmshift_job_log(m->job, VMSHIFT_LOG_INFO, "mirroring disk %s to %s", dk->id, target_path_);
    return TRUE;
}

/* Pivots every ready mirror onto its target; drops the old nodes. */
gboolean
kvm_mirrors_pivot(KvmMig *m, VmshiftQmp *q, GPtrArray *mirrors, GError **error)
{
    (void)m;
    for (guint i = 0; i < mirrors->len; i++) {
        KvmMirror *x = mirrors->pdata[i];
        json_object *a = json_object_new_object();
        json_object_object_add(a, "device", json_object_new_string(x->job));
        if (!vmshift_qmp_execute_simple(q, "block-job-complete", a, QMP_CMD_TIMEOUT, error))
            return FALSE;
    }
    for (guint i = 0; i < mirrors->len; i++) {
        KvmMirror *x = mirrors->pdata[i];
        g_autoptr(VmshiftQmpEvent)
            ev = vmshift_qmp_wait_event(q, "BLOCK_JOB_COMPLETED", match_job, x->job, 60000, error);
        if (!ev)
            return FALSE;
        const char *e = vmshift_qmp_event_get_string(ev, "error");
        if (e) {
            g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_FAILED,
                        "pivot of disk %s to %s failed: %s", x->disk, x->new_path, e);
            return FALSE;
        }
        x->done = TRUE;
        /* confirm: the device now runs on the new node */
        g_autofree char *now = kvm_mig_disk_node(q, x->disk, error);
        if (!now)
            return FALSE;
        if (strcmp(now, x->new_node) != 0) {
            g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_FAILED,
                        "disk %s still runs on node %s after the pivot to %s", x->disk, now,
                        x->new_node);
            return FALSE;
        }
        /* the old nodes were added with -blockdev: delete them so they let go
         * of the old file (and of any backing file) */
        blockdev_del_with_file(q, x->old_node);
    }
    return TRUE;
}
