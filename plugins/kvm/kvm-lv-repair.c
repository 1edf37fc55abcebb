/* vmshift KVM plugin, libvirt transport: repair of an interrupted cold,
 * live or VM + storage migration, from its journal. A journal write that
 * fails stops the repair (it can run again). */
#include "config.h"

#include <string.h>

#include <glib/gstdio.h>

#include "kvm-lv.h"

/* rolled back: the job's files on @dst go (and the directories it made
 * there), and its pools on @src */
static void
lv_repair_drop_new(VmshiftJob *job, LvHost *src, LvHost *dst)
{
    g_autoptr(GPtrArray) pools = g_ptr_array_new_with_free_func((GDestroyNotify)lv_pool_free);
    lv_delete_saved(job, pools, dst, "new-vols");
    lv_pools_unbuild(pools, dst);
    lv_drop_job_pools(job, src, "old-vols");
}

/* gone forward: the job's old files on @src go, and its pools on @dst */
static void
lv_repair_drop_old(VmshiftJob *job, LvHost *src, LvHost *dst)
{
    g_autoptr(GPtrArray) pools = g_ptr_array_new_with_free_func((GDestroyNotify)lv_pool_free);
    lv_delete_saved(job, pools, src, "old-vols");
    lv_drop_job_pools(job, dst, "new-vols");
}

/* the move reached the destination: the source's definition and images go */
static gboolean
lv_repair_cold_forward(VmshiftJob *job, const char *vm, LvHost *src, LvHost *dst, virDomainPtr sd,
                       virDomainPtr dd, GError **error)
{
    int ss = -1, ds = -1;
    if (sd)
        virDomainGetState(sd, &ss, NULL, 0);
    if (sd && ss != VIR_DOMAIN_SHUTOFF) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_CONFLICT,
                    "VM %s is defined on %s and %s and runs on %s: not touched", vm, src->name,
                    dst->name, src->name);
        return FALSE;
    }
    if (sd && virDomainUndefineFlags(sd, LV_UNDEFINE_FLAGS) < 0) {
        lv_error(error, VMSHIFT_ERROR_FAILED, "VM %s: undefining it on host %s", vm, src->name);
        return FALSE;
    }
    if (!vmshift_job_save(job, "stage", "moved", error))
        return FALSE;
    lv_repair_drop_old(job, src, dst);
    /* a move asked to start the VM (--start) that was cut before it did */
    const VmshiftMigrationSpec *spec = vmshift_job_get_spec(job);
    virDomainGetState(dd, &ds, NULL, 0);
    if (spec && spec->start && ds != VIR_DOMAIN_RUNNING) {
        if (virDomainCreate(dd) == 0)
            vmshift_job_log(job, VMSHIFT_LOG_INFO, "VM %s started on %s, as --start asked", vm,
                            dst->name);
        else
            vmshift_job_log(job, VMSHIFT_LOG_WARNING, "VM %s: starting it on %s: %s", vm, dst->name,
                            virGetLastErrorMessage());
        virDomainGetState(dd, &ds, NULL, 0);
    }
    vmshift_job_set_location(job, dst->name, ds == VIR_DOMAIN_RUNNING ? "running" : "shut off");
    vmshift_job_set_result(job, "repair", "resumed");
    return vmshift_job_save(job, "stage", "done", error);
}

/* the destination never got the definition: its volumes go */
static gboolean
lv_repair_cold_back(VmshiftJob *job, LvHost *src, LvHost *dst, GError **error)
{
    lv_repair_drop_new(job, src, dst);
    if (!vmshift_job_save(job, "stage", "rolled-back", error))
        return FALSE;
    vmshift_job_set_location(job, src->name, "shut off");
    vmshift_job_set_result(job, "repair", "rolled-back");
    return TRUE;
}

/*
 * repair of an interrupted cold move (kind=cold): forward when the
 * destination has the definition and the journal says the move got to
 * defining it (stage define or later): the source's definition and images
 * go; back otherwise: the destination's files of this job go, the source
 * keeps the VM. Files are only removed while the other side still has the
 * definition.
 */
static gboolean
lv_repair_cold(VmshiftJob *job, const char *vm, LvHost *src, LvHost *dst, GError **error)
{
    g_autofree char *stage = vmshift_job_get_saved(job, "stage");
    g_autoptr(virDomain) sd = virDomainLookupByName(src->conn, vm);
    g_autoptr(virDomain) dd = virDomainLookupByName(dst->conn, vm);
    gboolean late = stage
                    && (!strcmp(stage, "define") || !strcmp(stage, "moved")
                        || !strcmp(stage, "start") || !strcmp(stage, "done"));
    if (late && dd && virDomainIsPersistent(dd) == 1)
        return lv_repair_cold_forward(job, vm, src, dst, sd, dd, error);
    if (late) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_CONFLICT,
                    "VM %s was being defined on %s but is not there: nothing removed, look "
                    "at both hosts by hand",
                    vm, dst->name);
        return FALSE;
    }
    if (sd)
        return lv_repair_cold_back(job, src, dst, error);
    g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_CONFLICT,
                "VM %s is defined neither on %s nor on %s: nothing removed", vm, src->name,
                dst->name);
    return FALSE;
}

/* whether @d (NULL: gone) has a job running, a migration above all */
static gboolean
lv_job_active(virDomainPtr d)
{
    virDomainJobInfo ji;
    return d && virDomainGetJobInfo(d, &ji) == 0 && ji.type != VIR_DOMAIN_JOB_NONE;
}

/* @d's state, -1 when there is no such domain */
static int
lv_state(virDomainPtr d)
{
    int st = -1;
    if (d && virDomainGetState(d, &st, NULL, 0) < 0)
        st = -1;
    return st;
}

#define LV_REPAIR_WAIT_S 120

/* a migration job the source's libvirtd still runs: aborted while it can
 * be (before the switchover; in post-copy it cannot), awaited either way */
static gboolean
lv_repair_await(VmshiftJob *job, const char *vm, LvHost *src, GError **error)
{
    g_autoptr(virDomain) sd = virDomainLookupByName(src->conn, vm);
    if (!lv_job_active(sd))
        return TRUE;
    if (virDomainAbortJob(sd) == 0)
        vmshift_job_log(job, VMSHIFT_LOG_INFO,
                        "aborted the job of VM %s still running on "
                        "host %s",
                        vm, src->name);
    else
        vmshift_job_log(job, VMSHIFT_LOG_INFO,
                        "the job of VM %s on host %s cannot be "
                        "aborted (%s): waiting for it to end",
                        vm, src->name, virGetLastErrorMessage());
    for (int i = 0; i < LV_REPAIR_WAIT_S * 10; i++) {
        if (!lv_job_active(sd))
            return TRUE;
        g_usleep(100000);
    }
    g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_CONFLICT,
                "a job of VM %s still runs on host %s after %d s: nothing changed, "
                "repair again when it has ended",
                vm, src->name, LV_REPAIR_WAIT_S);
    return FALSE;
}

/* the VM runs on the source: a destination half made (not running) goes,
 * then its images */
static gboolean
lv_repair_live_back(VmshiftJob *job, const char *vm, LvHost *src, LvHost *dst, virDomainPtr dd,
                    gboolean storage, GError **error)
{
    if (dd && virDomainIsActive(dd) == 1 && virDomainDestroy(dd) < 0)
        vmshift_job_log(job, VMSHIFT_LOG_WARNING, "VM %s: stopping it on host %s: %s", vm,
                        dst->name, virGetLastErrorMessage());
    if (dd && virDomainIsPersistent(dd) == 1 && virDomainUndefineFlags(dd, LV_UNDEFINE_FLAGS) < 0)
        vmshift_job_log(job, VMSHIFT_LOG_WARNING, "VM %s: undefining it on host %s: %s", vm,
                        dst->name, virGetLastErrorMessage());
    if (storage)
        lv_repair_drop_new(job, src, dst);
    if (!vmshift_job_save(job, "stage", "rolled-back", error))
        return FALSE;
    vmshift_job_set_location(job, src->name, "running");
    vmshift_job_set_result(job, "repair", dd || storage ? "rolled-back" : "nothing-to-do");
    return TRUE;
}

/* the VM runs on the destination: the source's definition and (it runs
 * on the copies) images go */
static gboolean
lv_repair_live_forward(VmshiftJob *job, const char *vm, LvHost *src, LvHost *dst, virDomainPtr sd,
                       gboolean storage, GError **error)
{
    if (sd && virDomainUndefineFlags(sd, LV_UNDEFINE_FLAGS) < 0) {
        lv_error(error, VMSHIFT_ERROR_FAILED, "VM %s: undefining it on host %s", vm, src->name);
        return FALSE;
    }
    if (storage)
        lv_repair_drop_old(job, src, dst);
    if (!vmshift_job_save(job, "stage", "done", error))
        return FALSE;
    vmshift_job_set_location(job, dst->name, "running");
    vmshift_job_set_result(job, "repair", "resumed");
    return TRUE;
}

/*
 * repair of an interrupted live move (kind unset: VM only; live-storage:
 * VM + storage). A peer-to-peer migration is run by the source's libvirtd,
 * which goes on with it when the client dies: it is aborted while it can
 * be (before the switchover; in post-copy it cannot) and awaited either
 * way, and only the states seen after it ended decide. The VM running on
 * the source (the destination has no running copy): the images made on
 * the destination and the job's pools there go (rolled back). Running on
 * the destination (the source's definition gone or shut off): the source's
 * images go (resumed). Nothing is removed when both or neither run it.
 */
static gboolean
lv_repair_live(VmshiftJob *job, const char *vm, LvHost *src, LvHost *dst, gboolean storage,
               GError **error)
{
    if (!lv_repair_await(job, vm, src, error))
        return FALSE;
    /* what the ended migration left: look again (undefined on the source
     * after a success, gone from the destination after a rollback) */
    g_autoptr(virDomain) sd = virDomainLookupByName(src->conn, vm);
    g_autoptr(virDomain) dd = virDomainLookupByName(dst->conn, vm);
    int ss = lv_state(sd), ds = lv_state(dd);
    if (ss == VIR_DOMAIN_RUNNING && ds == VIR_DOMAIN_RUNNING) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_CONFLICT,
                    "VM %s runs on both %s and %s: nothing removed, stop one by hand", vm,
                    src->name, dst->name);
        return FALSE;
    }
    if (ss == VIR_DOMAIN_RUNNING)
        return lv_repair_live_back(job, vm, src, dst, dd, storage, error);
    if (ds == VIR_DOMAIN_RUNNING && (ss == -1 || ss == VIR_DOMAIN_SHUTOFF))
        return lv_repair_live_forward(job, vm, src, dst, sd, storage, error);
    g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_CONFLICT,
                "VM %s runs neither on %s nor on %s: nothing removed, "
                "start it by hand where its disks are",
                vm, src->name, dst->name);
    return FALSE;
}

/*
 * repair of an interrupted storage move on one host (kind storage): the
 * block copies are transient jobs of the VM's libvirtd. Disks still on
 * their old files: their copies are aborted without a pivot and the new
 * files removed (rolled back). Every disk on its new file: the pivot
 * happened (resumed). A mix is left alone.
 */
static gboolean
lv_repair_storage(VmshiftJob *job, const char *vm, LvHost *h, GError **error)
{
    g_autoptr(virDomain) d = virDomainLookupByName(h->conn, vm);
    if (!d) {
        lv_error(error, VMSHIFT_ERROR_NOT_FOUND, "VM %s: looking it up on host %s", vm, h->name);
        return FALSE;
    }
    g_autoptr(GPtrArray) copies = lv_saved_copies(job);
    guint n = copies->len, on_new = 0;
    for (guint i = 0; i < n; i++) {
        LvMove *c = copies->pdata[i];
        g_autofree char *now = lv_disk_source(d, c->dev, FALSE);
        on_new += !g_strcmp0(now, c->dst_path);
    }
    if (on_new && on_new < n) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_CONFLICT,
                    "VM %s: %u of %u disks run on their new files: nothing changed, "
                    "check its disks by hand",
                    vm, on_new, n);
        return FALSE;
    }
    if (n && on_new == n) {
        vmshift_job_set_location(job, h->name, "running");
        if (!lv_storage_finish(job, d, copies, error))
            return FALSE;
        vmshift_job_set_result(job, "repair", "resumed");
        return vmshift_job_save(job, "stage", "done", error);
    }
    for (guint i = 0; i < n; i++) {
        LvMove *c = copies->pdata[i];
        virDomainBlockJobInfo ji;
        virDomainBlockJobAbort(d, c->dev, 0);
        for (int k = 0; k < 100 && virDomainGetBlockJobInfo(d, c->dev, &ji, 0) == 1; k++)
            g_usleep(100000);
        if (g_unlink(c->dst_path) == 0)
            vmshift_job_log(job, VMSHIFT_LOG_INFO, "removed the partial copy %s", c->dst_path);
    }
    vmshift_job_set_location(job, h->name, "running (storage unchanged)");
    vmshift_job_set_result(job, "repair", n ? "rolled-back" : "nothing-to-do");
    return vmshift_job_save(job, "stage", "rolled-back", error);
}

gboolean
kvm_libvirt_repair(KvmBackend *b, VmshiftJob *job, GError **error)
{
    g_autofree char *vm = vmshift_job_get_saved(job, "vm");
    g_autofree char *srcn = vmshift_job_get_saved(job, "src-host");
    g_autofree char *dstn = vmshift_job_get_saved(job, "dst-host");
    g_autofree char *kind = vmshift_job_get_saved(job, "kind");
    if (vm && srcn && !g_strcmp0(kind, "storage")) {
        LvHost *h = lv_find_host(b, srcn, error);
        return h && lv_repair_storage(job, vm, h, error);
    }
    if (!vm || !srcn || !dstn) {
        vmshift_job_set_result(job, "repair", "nothing-to-do");
        return TRUE;
    }
    LvHost *src = lv_find_host(b, srcn, error), *dst = src ? lv_find_host(b, dstn, error) : NULL;
    if (!src || !dst)
        return FALSE;
    if (!g_strcmp0(kind, "cold"))
        return lv_repair_cold(job, vm, src, dst, error);
    return lv_repair_live(job, vm, src, dst, !g_strcmp0(kind, "live-storage"), error);
}
