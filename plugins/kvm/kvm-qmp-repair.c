/* vmshift KVM plugin, qmp transport: repair of an interrupted migration.
 * The VM must end up running in exactly one place: before the hand-over
 * the move is rolled back (the destination stopped and removed, what QEMU
 * still runs cancelled); after it, the move is finished. */
#include "config.h"

#include <string.h>

#include "kvm-qmp.h"

/* The journal of the job, and what the hosts say now. */
typedef struct {
    VmshiftJob *job;
    char *vm, *srcn, *dstn, *stage, *files;
    KvmHost *src, *dst;
    VmshiftQmp *sq;
    char *src_status; /* the source QEMU's run state, "postcopy", or NULL */
    char *src_mig;    /* the source QEMU's migration status (query-migrate), or NULL */
    gboolean src_up, dst_up;
    GPtrArray *moves; /* GStrv {ID, OLD, NEW}: disks given a new file */
} Repair;

static void
repair_clear(Repair *r)
{
    g_clear_pointer(&r->sq, vmshift_qmp_free);
    g_free(r->src_status);
    g_free(r->src_mig);
    g_free(r->vm);
    g_free(r->srcn);
    g_free(r->dstn);
    g_free(r->stage);
    g_free(r->files);
    g_clear_pointer(&r->moves, g_ptr_array_unref);
}

/* the journal's "moves" (ID|OLD|NEW;…), those whose file changes */
static GPtrArray *
saved_moves(VmshiftJob *job)
{
    g_autofree char *s = vmshift_job_get_saved(job, "moves");
    GPtrArray *out = g_ptr_array_new_with_free_func((GDestroyNotify)g_strfreev);
    g_auto(GStrv) items = g_strsplit(s ? s : "", ";", -1);
    for (char **it = items; *it; it++) {
        char **f = g_strsplit(*it, "|", 3);
        if (g_strv_length(f) == 3 && strcmp(f[1], f[2]))
            g_ptr_array_add(out, f);
        else
            g_strfreev(f);
    }
    return out;
}

/* the new file of a move that @h lacks, or NULL: then no old file may go */
static const char *
missing_new_file(Repair *r, KvmHost *h)
{
    for (guint i = 0; r->moves && i < r->moves->len; i++) {
        const char *f = ((char **)r->moves->pdata[i])[2];
        if (!kvm_host_exists(h, f))
            return f;
    }
    return NULL;
}

/* the old (@which 1) or new (2) files of the job's moves that exist on
 * @h go; how many did. Old files go only while every new one is there. */
static guint
remove_move_files(Repair *r, KvmHost *h, int which)
{
    guint n = 0;
    const char *gone = which == 1 ? missing_new_file(r, r->dst ? r->dst : h) : NULL;
    if (gone) {
        vmshift_job_log(r->job, VMSHIFT_LOG_WARNING,
                        "%s is missing: the old files of VM %s are kept", gone, r->vm);
        return 0;
    }
    for (guint i = 0; r->moves && i < r->moves->len; i++) {
        const char *f = ((char **)r->moves->pdata[i])[which];
        if (!kvm_host_exists(h, f))
            continue;
        const char *argv[] = { "rm", "-f", "--", f, NULL };
        if (kvm_host_run(h, argv, NULL, NULL, 30, NULL)) {
            vmshift_job_log(r->job, VMSHIFT_LOG_INFO, "removed the %s file %s:%s",
                            which == 1 ? "old" : "new", h->name, f);
            n++;
        }
    }
    return n;
}

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(Repair, repair_clear)

/* An interrupted migration may still run inside the source QEMU: cancel
 * it and wait until it settles (completed: the source is "postmigrate"). */
static void
settle_migration(Repair *r)
{
    vmshift_qmp_execute_simple(r->sq, "migrate_cancel", NULL, QMP_CMD_TIMEOUT, NULL);
    vmshift_job_log(r->job, VMSHIFT_LOG_INFO,
                    "cancelled the migration still running "
                    "in the source QEMU");
    for (int i = 0; i < 100; i++) {
        g_autofree char *s = kvm_qmp_status(r->sq, "query-migrate");
        gboolean settled = !s || !strcmp(s, "cancelled") || !strcmp(s, "failed")
                           || !strcmp(s, "completed");
        if (settled) {
            g_free(r->src_mig);
            r->src_mig = g_strdup(s);
        }
        if (settled && s && !strcmp(s, "completed")) {
            g_free(r->src_status);
            r->src_status = g_strdup("postmigrate");
        }
        if (settled)
            break;
        g_usleep(100000);
    }
    if (g_strcmp0(r->src_status, "postmigrate")) {
        g_free(r->src_status);
        r->src_status = kvm_qmp_status(r->sq, "query-status");
    }
}

/* block mirrors of an interrupted storage move */
static void
cancel_mirrors(Repair *r)
{
    json_object *jobs = vmshift_qmp_execute(r->sq, "query-block-jobs", NULL, QMP_CMD_TIMEOUT, NULL);
    gsize nj = jobs ? json_object_array_length(jobs) : 0;
    for (gsize i = 0; i < nj; i++) {
        const char *dev = vmshift_json_get_string(json_object_array_get_idx(jobs, i), "device");
        if (dev && g_str_has_prefix(dev, "vmshift-mirror-")) {
            json_object *a = json_object_new_object();
            json_object_object_add(a, "device", json_object_new_string(dev));
            json_object_object_add(a, "force", json_object_new_boolean(1));
            vmshift_qmp_execute_simple(r->sq, "block-job-cancel", a, QMP_CMD_TIMEOUT, NULL);
            vmshift_job_log(r->job, VMSHIFT_LOG_INFO, "cancelled block job %s", dev);
        }
    }
    if (jobs)
        json_object_put(jobs);
}

/* A paused post-copy (its connection broke) goes on over a new one: the
 * destination listens again (migrate-recover), the source resumes into it
 * (migrate resume). TRUE when both accepted. */
static gboolean
recover_postcopy(Repair *r)
{
    g_autoptr(VmshiftQmp) dq = r->dst ? kvm_vm_qmp(r->dst, r->vm, 5000, NULL, NULL) : NULL;
    if (!dq)
        return FALSE;
    g_autofree char *uri = g_strdup_printf("tcp:%s:%d", r->dst->migration_address,
                                           kvm_host_pick_port(r->dst));
    json_object *a = json_object_new_object();
    json_object_object_add(a, "uri", json_object_new_string(uri));
    g_autoptr(GError) e = NULL;
    if (!vmshift_qmp_execute_simple(dq, "migrate-recover", a, QMP_CMD_TIMEOUT, &e)) {
        vmshift_job_log(r->job, VMSHIFT_LOG_WARNING, "post-copy not recovered: %s: %s", r->dstn,
                        e->message);
        return FALSE;
    }
    a = json_object_new_object();
    json_object_object_add(a, "uri", json_object_new_string(uri));
    json_object_object_add(a, "resume", json_object_new_boolean(1));
    if (!vmshift_qmp_execute_simple(r->sq, "migrate", a, QMP_CMD_TIMEOUT, &e)) {
        vmshift_job_log(r->job, VMSHIFT_LOG_WARNING, "post-copy not recovered: %s: %s", r->srcn,
                        e->message);
        return FALSE;
    }
    vmshift_job_log(r->job, VMSHIFT_LOG_INFO,
                    "post-copy had paused (its connection broke): resumed over %s", uri);
    return TRUE;
}

/*
 * Post-copy under way: the destination runs the VM on pages the source
 * still holds, so the source must not stop before the last one is over.
 * Waits for that (up to a minute; a paused post-copy is recovered once).
 * Completed, the source is "postmigrate"; else it stays "postcopy", which
 * no repair touches.
 */
static void
finish_postcopy(Repair *r)
{
    gboolean recovered = FALSE;
    vmshift_job_log(r->job, VMSHIFT_LOG_INFO,
                    "VM %s is in post-copy: waiting for the destination to have every page", r->vm);
    for (int i = 0; i < 600 && r->src_mig && g_str_has_prefix(r->src_mig, "postcopy-"); i++) {
        if (!strcmp(r->src_mig, "postcopy-paused") && !recovered) {
            recovered = TRUE;
            recover_postcopy(r);
        }
        g_usleep(100000);
        g_free(r->src_mig);
        r->src_mig = kvm_qmp_status(r->sq, "query-migrate");
    }
    /* no answer any more counts as still in post-copy: nothing is touched */
    g_free(r->src_status);
    r->src_status = !g_strcmp0(r->src_mig, "completed") ? g_strdup("postmigrate")
                    : !r->src_mig || g_str_has_prefix(r->src_mig, "postcopy-")
                        ? g_strdup("postcopy")
                        : kvm_qmp_status(r->sq, "query-status");
}

/* The source QEMU, when it runs: its state, with whatever it still
 * migrates or mirrors settled. */
static void
inspect_source(Repair *r)
{
    r->src_up = kvm_vm_is_running(r->src, r->vm);
    if (!r->src_up || !(r->sq = kvm_vm_qmp(r->src, r->vm, 5000, NULL, NULL)))
        return;
    r->src_status = kvm_qmp_status(r->sq, "query-status");
    r->src_mig = kvm_qmp_status(r->sq, "query-migrate");
    const char *ms = r->src_mig;
    if (ms && (!strcmp(ms, "active") || !strcmp(ms, "setup") || !strcmp(ms, "pre-switchover")))
        settle_migration(r);
    else if (ms && g_str_has_prefix(ms, "postcopy-"))
        finish_postcopy(r);
    cancel_mirrors(r);
}

/* finish: the destination runs the VM */
static void
finish_move(Repair *r)
{
    if (r->dst_up) {
        g_autoptr(VmshiftQmp) dq = kvm_vm_qmp(r->dst, r->vm, 5000, NULL, NULL);
        if (dq) {
            g_autofree char *s = kvm_qmp_status(dq, "query-status");
            if (s && !strcmp(s, "paused"))
                vmshift_qmp_execute_simple(dq, "cont", NULL, QMP_CMD_TIMEOUT, NULL);
        }
    }
    g_clear_pointer(&r->sq, vmshift_qmp_free);
    kvm_vm_stop(r->src, r->vm, 10, NULL);
    g_autofree char *sdir = kvm_host_vm_dir(r->src, r->vm);
    kvm_host_remove_tree(r->src, sdir, NULL);
    /* the disks the move copied: the VM runs on the copies */
    remove_move_files(r, r->src, 1);
    vmshift_job_set_location(r->job, r->dst->name, r->dst_up ? "running" : "stopped");
    vmshift_job_set_result(r->job, "repair", "resumed");
    vmshift_job_log(r->job, VMSHIFT_LOG_INFO,
                    "the VM had been handed over to %s: finished "
                    "the move (source stopped and removed)",
                    r->dst->name);
}

/* The destination's QEMU and definition go; TRUE when there was one. */
static gboolean
remove_destination(Repair *r)
{
    gboolean did = FALSE;
    if (r->dst_up) {
        kvm_vm_stop(r->dst, r->vm, 5, NULL);
        did = TRUE;
    }
    g_autofree char *ddir = kvm_host_vm_dir(r->dst, r->vm);
    g_autofree char *dconf = g_build_filename(ddir, "vm.conf", NULL);
    if (kvm_host_exists(r->dst, dconf) && r->src_up) {
        kvm_host_remove_tree(r->dst, ddir, NULL);
        did = TRUE;
    } else if (kvm_host_exists(r->dst, dconf) && !r->src_up && g_strcmp0(r->stage, "completed")) {
        /* cold move interrupted before the switch: the source's
         * definition is authoritative */
        g_autofree char *sdir = kvm_host_vm_dir(r->src, r->vm);
        g_autofree char *sconf = g_build_filename(sdir, "vm.conf", NULL);
        if (kvm_host_exists(r->src, sconf)) {
            kvm_host_remove_tree(r->dst, ddir, NULL);
            did = TRUE;
        }
    }
    return did;
}

/* roll back: the source keeps (or gets back) the VM */
static gboolean
roll_back(Repair *r, GError **error)
{
    gboolean did = r->dst && remove_destination(r);
    gboolean journaled = TRUE; /* on FALSE, @error is set: the source still resumes */
    if (r->files && *r->files) {
        g_auto(GStrv) fv = g_strsplit(r->files, ";", -1);
        KvmHost *h = r->dst ? r->dst : r->src;
        for (char **f = fv; *f; f++) {
            if (!**f)
                continue;
            const char *argv[] = { "rm", "-f", "--", *f, NULL };
            kvm_host_run(h, argv, NULL, NULL, 30, NULL);
            vmshift_job_log(r->job, VMSHIFT_LOG_INFO, "removed %s:%s", h->name, *f);
            did = TRUE;
        }
        journaled = vmshift_job_save(r->job, "new-files", "", error);
    }
    /* a source the job paused for the transfer (TCG) runs again */
    g_autofree char *paused_by_job = vmshift_job_get_saved(r->job, "source-paused");
    if (r->sq && r->src_status && strcmp(r->src_status, "running")
        && (strcmp(r->src_status, "paused") || !g_strcmp0(paused_by_job, "1"))) {
        vmshift_qmp_execute_simple(r->sq, "cont", NULL, QMP_CMD_TIMEOUT, NULL);
        did = TRUE;
    }
    vmshift_job_set_location(r->job, r->src->name, r->src_up ? "running" : "stopped");
    vmshift_job_set_result(r->job, "repair", did ? "rolled-back" : "nothing-to-do");
    return journaled && vmshift_job_save(r->job, "stage", "rolled-back", error);
}

/* the file disk @id uses now: QEMU's (@blocks, a running VM) or the
 * definition's */
static char *
disk_file_now(json_object *blocks, const KvmVmDef *def, const char *id)
{
    if (blocks)
        return kvm_qemu_disk_file(blocks, id);
    for (guint i = 0; def && i < def->disks->len; i++) {
        KvmDiskDef *dk = def->disks->pdata[i];
        if (!strcmp(dk->id, id))
            return g_strdup(dk->path);
    }
    return NULL;
}

/* forward: the definition names the new files, the old ones go */
static gboolean
storage_forward(Repair *r, KvmVmDef *def, GError **error)
{
    const char *gone = missing_new_file(r, r->src);
    if (gone) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_CONFLICT,
                    "VM %s runs on %s, which is no longer on host %s: nothing changed; copy "
                    "its data out of the running VM (its QEMU still has the file open)",
                    r->vm, gone, r->srcn);
        return FALSE;
    }
    gboolean changed = FALSE;
    for (guint i = 0; i < r->moves->len; i++) {
        char **mv = r->moves->pdata[i];
        for (guint k = 0; k < def->disks->len; k++) {
            KvmDiskDef *dk = def->disks->pdata[k];
            if (!strcmp(dk->id, mv[0]) && strcmp(dk->path, mv[2])) {
                g_free(dk->path);
                dk->path = g_strdup(mv[2]);
                changed = TRUE;
            }
        }
    }
    if (changed && !kvm_vm_def_save(r->src, def, error))
        return FALSE;
    if (changed)
        vmshift_job_log(r->job, VMSHIFT_LOG_INFO,
                        "the definition of VM %s now names the disks' new files", r->vm);
    remove_move_files(r, r->src, 1);
    vmshift_job_set_location(r->job, r->src->name, r->src_up ? "running" : "stopped");
    vmshift_job_set_result(r->job, "repair", "resumed");
    return vmshift_job_save(r->job, "new-files", "", error)
           && vmshift_job_save(r->job, "stage", "done", error);
}

/*
 * repair of a storage move on one host: each moving disk's file now, as
 * the running QEMU has it (its mirrors were cancelled: none pivots any
 * more) or, stopped, as its definition names it. Every disk on its new
 * file (or a stopped VM whose move had pivoted): the definition is made
 * to name them and the old files go (resumed). Every disk on its old
 * file: the new files go (rolled back). A mix is left alone.
 */
static gboolean
repair_storage(Repair *r, GError **error)
{
    g_autoptr(KvmVmDef) def = kvm_vm_def_load(r->src, r->vm, error);
    if (!def)
        return FALSE;
    json_object *blocks = r->sq ? vmshift_qmp_execute(r->sq, "query-block", NULL, QMP_CMD_TIMEOUT,
                                                      NULL)
                                : NULL;
    if (r->src_up && !blocks) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_CONNECTION,
                    "VM %s runs on %s but its QEMU did not list its disks: nothing changed, "
                    "repair again",
                    r->vm, r->srcn);
        return FALSE;
    }
    guint on_new = 0, on_old = 0;
    for (guint i = 0; i < r->moves->len; i++) {
        char **mv = r->moves->pdata[i];
        g_autofree char *now = disk_file_now(blocks, def, mv[0]);
        on_new += !g_strcmp0(now, mv[2]);
        on_old += !g_strcmp0(now, mv[1]);
    }
    if (blocks)
        json_object_put(blocks);
    /* stopped after its pivot (QEMU gone too): the new files have the
     * guest's last writes */
    if (!r->src_up && !g_strcmp0(r->stage, "pivoted"))
        on_new = r->moves->len;
    if (on_new == r->moves->len)
        return storage_forward(r, def, error);
    if (on_old != r->moves->len) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_CONFLICT,
                    "VM %s: %u of %u disks run on their new files: nothing changed, check its "
                    "disks by hand",
                    r->vm, on_new, r->moves->len);
        return FALSE;
    }
    /* the move did not take effect: rolled back, also when the job's own
     * undo had left nothing to remove ("nothing-to-do" would let the host
     * judge by the phase the job reached, and a pivot that failed in the
     * switchover would count as moved) */
    guint n = remove_move_files(r, r->src, 2);
    vmshift_job_set_location(r->job, r->src->name,
                             r->src_up ? "running (storage unchanged)" : "stopped");
    vmshift_job_log(r->job, VMSHIFT_LOG_INFO,
                    "VM %s runs on its old files: the storage move is undone (%u new file(s) "
                    "removed)",
                    r->vm, n);
    vmshift_job_set_result(r->job, "repair", "rolled-back");
    return vmshift_job_save(r->job, "new-files", "", error)
           && vmshift_job_save(r->job, "stage", "rolled-back", error);
}

gboolean
kvm_qmp_repair(KvmBackend *b, VmshiftJob *job, GError **error)
{
    g_auto(Repair) r = { .job = job };
    r.vm = vmshift_job_get_saved(job, "vm");
    r.srcn = vmshift_job_get_saved(job, "src-host");
    r.dstn = vmshift_job_get_saved(job, "dst-host");
    r.stage = vmshift_job_get_saved(job, "stage");
    r.files = vmshift_job_get_saved(job, "new-files");
    r.moves = saved_moves(job);
    if (!r.vm || !r.srcn) {
        vmshift_job_set_result(job, "repair", "nothing-to-do");
        return TRUE;
    }
    r.src = kvm_backend_find_host(b, r.srcn, error);
    if (!r.src)
        return FALSE;
    if (r.dstn && !(r.dst = kvm_backend_find_host(b, r.dstn, error)))
        return FALSE;
    vmshift_job_log(job, VMSHIFT_LOG_INFO, "repair of VM %s (%s -> %s), stage %s", r.vm, r.srcn,
                    r.dstn ? r.dstn : r.srcn, r.stage ? r.stage : "(none)");
    inspect_source(&r);
    r.dst_up = r.dst && kvm_vm_is_running(r.dst, r.vm);
    if (!g_strcmp0(r.src_status, "postcopy")) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_CONFLICT,
                    "VM %s is in post-copy between %s and %s: let it finish, then repair "
                    "again",
                    r.vm, r.srcn, r.dstn);
        return FALSE;
    }
    if (!r.dst && r.moves->len)
        return repair_storage(&r, error);
    /* registered at the destination (completed) and maybe cleaned up
     * (cleanup, done): a stopped VM's move had taken effect */
    gboolean late = !g_strcmp0(r.stage, "completed") || !g_strcmp0(r.stage, "cleanup")
                    || !g_strcmp0(r.stage, "done");
    g_autofree char *ddir = r.dst ? kvm_host_vm_dir(r.dst, r.vm) : NULL;
    g_autofree char *dconf = ddir ? g_build_filename(ddir, "vm.conf", NULL) : NULL;
    gboolean dst_defined = dconf && kvm_host_exists(r.dst, dconf);
    gboolean handed_over = (r.dst_up && (!r.src_up || !g_strcmp0(r.src_status, "postmigrate")))
                           || (r.dst && !r.src_up && late && dst_defined);
    /* a source stopped for a migration that did not complete (a post-copy
     * switch that failed at once): the destination says whether it got
     * the VM, and without its word nothing is touched */
    if (handed_over && r.src_up && g_strcmp0(r.src_mig, "completed")) {
        g_autoptr(VmshiftQmp) dq = kvm_vm_qmp(r.dst, r.vm, 5000, NULL, NULL);
        g_autofree char *why = NULL;
        KvmDestState ds = kvm_dest_state(dq, &why);
        if (ds == KVM_DEST_UNKNOWN) {
            g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_CONFLICT,
                        "VM %s: its migration to %s %s and %s: nothing changed, repair again", r.vm,
                        r.dstn, r.src_mig ? r.src_mig : "ended", why);
            return FALSE;
        }
        if (ds == KVM_DEST_NOT_YET) {
            vmshift_job_log(job, VMSHIFT_LOG_INFO,
                            "the migration %s before the hand-over (%s): the source has the VM",
                            r.src_mig ? r.src_mig : "ended", why);
            handed_over = FALSE;
        }
    }
    if (r.dst && !r.src_up && !r.dst_up && late && !dst_defined) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_CONFLICT,
                    "VM %s: the move to %s had taken effect but %s has no definition of it: "
                    "nothing removed, look at both hosts by hand",
                    r.vm, r.dstn, r.dstn);
        return FALSE;
    }
    if (r.dst && handed_over) {
        finish_move(&r);
        return TRUE;
    }
    return roll_back(&r, error);
}

/* One leftover of the job on @h: the VM's directory there (definition,
 * QEMU's sockets), removed when @h does not run the VM. */
static gboolean
remove_leftover_dir(Repair *r, KvmHost *h)
{
    g_autofree char *dir = kvm_host_vm_dir(h, r->vm);
    if (kvm_vm_is_running(h, r->vm) || !kvm_host_exists(h, dir))
        return FALSE;
    kvm_host_remove_tree(h, dir, NULL);
    vmshift_job_log(r->job, VMSHIFT_LOG_INFO, "removed %s:%s", h->name, dir);
    return TRUE;
}

/* Force cleanup: what the job left on either side goes; the VM where it
 * runs (or, stopped, the side whose definition is authoritative) is not
 * touched: no QEMU of it is stopped, resumed or asked to cancel anything. */
gboolean
kvm_qmp_cleanup(KvmBackend *b, VmshiftJob *job, GError **error)
{
    g_auto(Repair) r = { .job = job };
    guint removed = 0;
    r.vm = vmshift_job_get_saved(job, "vm");
    r.srcn = vmshift_job_get_saved(job, "src-host");
    r.dstn = vmshift_job_get_saved(job, "dst-host");
    r.stage = vmshift_job_get_saved(job, "stage");
    r.files = vmshift_job_get_saved(job, "new-files");
    if (!r.vm || !r.srcn || !r.dstn || !g_strcmp0(r.srcn, r.dstn)) {
        vmshift_job_set_result(job, "cleanup", "nothing left");
        return TRUE;
    }
    if (!(r.src = kvm_backend_find_host(b, r.srcn, error))
        || !(r.dst = kvm_backend_find_host(b, r.dstn, error)))
        return FALSE;
    r.src_up = kvm_vm_is_running(r.src, r.vm);
    r.dst_up = kvm_vm_is_running(r.dst, r.vm);
    if (r.src_up && r.dst_up) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_CONFLICT,
                    "VM %s has a QEMU on both %s and %s: repair the job (vmshift job repair) "
                    "before a cleanup",
                    r.vm, r.srcn, r.dstn);
        return FALSE;
    }
    /* the side that keeps the VM: where it runs, else where the move left
     * its authoritative definition */
    gboolean at_dst = r.dst_up || (!r.src_up && !g_strcmp0(r.stage, "completed"))
                      || (!r.src_up && !g_strcmp0(r.stage, "done"));
    KvmHost *other = at_dst ? r.src : r.dst;
    if (remove_leftover_dir(&r, other))
        removed++;
    if (!at_dst && r.files && *r.files) {
        g_auto(GStrv) fv = g_strsplit(r.files, ";", -1);
        for (char **f = fv; *f; f++) {
            if (!**f)
                continue;
            const char *argv[] = { "rm", "-f", "--", *f, NULL };
            if (kvm_host_run(r.dst, argv, NULL, NULL, 30, NULL)) {
                vmshift_job_log(job, VMSHIFT_LOG_INFO, "removed %s:%s", r.dst->name, *f);
                removed++;
            }
        }
        if (!vmshift_job_save(job, "new-files", "", error))
            return FALSE;
    }
    g_autofree char *res = removed ? g_strdup_printf("%u item(s) removed", removed)
                                   : g_strdup("nothing left");
    vmshift_job_log(job, VMSHIFT_LOG_INFO, "cleanup of VM %s: %s; the VM stays on %s", r.vm, res,
                    at_dst ? r.dstn : r.srcn);
    vmshift_job_set_result(job, "cleanup", res);
    return TRUE;
}
