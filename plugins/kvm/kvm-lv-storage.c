/* vmshift KVM plugin, libvirt transport: storage migration on the VM's
 * host (block copy with pivot). */
#include "config.h"

#include <errno.h>
#include <string.h>

#include <glib/gstdio.h>

#include "kvm-lv.h"

/* After a pivot, a persistent domain's definition names the new file
 * (libvirt updates only the live definition of a transient block job). */
static gboolean
lv_rewrite_config(virDomainPtr d, GPtrArray *copies, GError **error)
{
    if (virDomainIsPersistent(d) != 1)
        return TRUE;
    g_autoptr(xmlDoc) doc = lv_xml(d, VIR_DOMAIN_XML_INACTIVE | VIR_DOMAIN_XML_SECURE, error);
    if (!doc)
        return FALSE;
    g_autoptr(xmlXPathContext) ctx = vmshift_xpath_new(doc, NULL);
    gboolean changed = FALSE;
    for (guint i = 0; i < copies->len; i++) {
        LvMove *c = copies->pdata[i];
        changed |= lv_xml_set_source(lv_xml_disk(ctx, c->dev), c->dst_path);
    }
    if (!changed)
        return TRUE;
    g_autofree char *xml = lv_xml_dump(doc);
    g_autoptr(virDomain) nd = virDomainDefineXML(virDomainGetConnect(d), xml);
    if (!nd) {
        lv_error(error, VMSHIFT_ERROR_FAILED,
                 "VM %s: saving its definition with the new "
                 "disk paths",
                 virDomainGetName(d));
        return FALSE;
    }
    return TRUE;
}

/* the disks that move (file disks whose directory changes), checked */
static gboolean
lv_plan_copies(virDomainPtr d, const VmshiftMigrationSpec *spec, LvHost *h, GPtrArray *copies,
               GError **error)
{
    g_autoptr(xmlDoc) doc = lv_xml(d, 0, error);
    if (!doc)
        return FALSE;
    lv_collect_moves(doc, spec, FALSE, copies);
    for (guint i = copies->len; i-- > 0;) {
        LvMove *c = copies->pdata[i];
        if (!strcmp(c->dst_path, c->src_path))
            g_ptr_array_remove_index(copies, i);
    }
    for (guint i = 0; i < spec->disk_paths->len; i++) {
        VmshiftMapping *mp = spec->disk_paths->pdata[i];
        g_autofree char *src = NULL;
        if (!lv_moves_have(copies, mp->key) && !(src = lv_disk_source(d, mp->key, FALSE)))
            return lv_no_file_disk(spec, mp, error);
    }
    if (copies->len == 0) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_INVALID_ARGUMENT,
                    "VM %s: no disk moves (its files already are in the destination)", spec->vm);
        return FALSE;
    }
    for (guint i = 0; i < copies->len; i++) {
        LvMove *c = copies->pdata[i];
        if (g_file_test(c->dst_path, G_FILE_TEST_EXISTS)) {
            g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_CONFLICT,
                        "%s already exists on host %s: not overwritten", c->dst_path, h->name);
            return FALSE;
        }
    }
    return TRUE;
}

/* the journal of a storage migration, up to the transfer phase */
static gboolean
lv_storage_journal(VmshiftJob *job, virDomainPtr d, LvHost *h, GPtrArray *copies, GError **error)
{
    g_autoptr(GString) nf = g_string_new(NULL);
    g_autoptr(GString) of = g_string_new(NULL);
    for (guint i = 0; i < copies->len; i++) {
        LvMove *c = copies->pdata[i];
        g_string_append_printf(nf, "%s%s=%s", nf->len ? ";" : "", c->dev, c->dst_path);
        g_string_append_printf(of, "%s%s=%s", of->len ? ";" : "", c->dev, c->src_path);
    }
    return vmshift_job_save(job, "vm", virDomainGetName(d), error)
           && vmshift_job_save(job, "src-host", h->name, error)
           && vmshift_job_save(job, "kind", "storage", error)
           && vmshift_job_save(job, "transport", "libvirt", error)
           && vmshift_job_save(job, "new-files", nf->str, error)
           && vmshift_job_save(job, "old-files", of->str, error)
           && vmshift_job_set_phase(job, VMSHIFT_PHASE_PREPARE, error)
           && vmshift_job_set_phase(job, VMSHIFT_PHASE_TRANSFER, error)
           && vmshift_job_save(job, "stage", "copy", error);
}

static gboolean
lv_copies_start(const VmshiftMigrationSpec *spec, VmshiftJob *job, virDomainPtr d,
                GPtrArray *copies, GError **error)
{
    for (guint i = 0; i < copies->len; i++) {
        LvMove *c = copies->pdata[i];
        g_autofree char *ep = vmshift_xml_escape(c->dst_path);
        g_autofree char *ef = vmshift_xml_escape(c->format ? c->format : "raw");
        g_autofree char *dx = g_strdup_printf("<disk type='file'><source file='%s'/>"
                                              "<driver type='%s'/></disk>",
                                              ep, ef);
        if (virDomainBlockCopy(d, c->dev, dx, NULL, 0, VIR_DOMAIN_BLOCK_COPY_TRANSIENT_JOB) < 0) {
            lv_error(error, VMSHIFT_ERROR_FAILED, "VM %s: block copy of disk %s to %s", spec->vm,
                     c->dev, c->dst_path);
            return FALSE;
        }
        c->started = TRUE;
        vmshift_job_log(job, VMSHIFT_LOG_INFO, "block copy of disk %s: %s -> %s", c->dev,
                        c->src_path, c->dst_path);
    }
    return TRUE;
}

/* waits until every copy is ready (cur == end: libvirt reports them equal
 * only once QEMU's mirror is ready) */
static gboolean
lv_copies_wait(const VmshiftMigrationSpec *spec, VmshiftJob *job, virDomainPtr d, GPtrArray *copies,
               GError **error)
{
    GCancellable *cancel = vmshift_job_get_cancellable(job);
    for (;;) {
        if (g_cancellable_set_error_if_cancelled(cancel, error))
            return FALSE;
        guint ready = 0;
        unsigned long long cur = 0, end = 0;
        for (guint i = 0; i < copies->len; i++) {
            LvMove *c = copies->pdata[i];
            virDomainBlockJobInfo ji;
            int r = virDomainGetBlockJobInfo(d, c->dev, &ji, 0);
            if (r < 0) {
                lv_error(error, VMSHIFT_ERROR_FAILED, "VM %s: block copy of disk %s", spec->vm,
                         c->dev);
                return FALSE;
            }
            if (r == 0) {
                g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_FAILED,
                            "VM %s: the block copy of disk %s to %s ended before the pivot",
                            spec->vm, c->dev, c->dst_path);
                return FALSE;
            }
            cur += ji.cur;
            end += ji.end;
            if (ji.end > 0 && ji.cur == ji.end)
                ready++;
        }
        if (end) {
            vmshift_job_set_bytes(job, cur, end);
            vmshift_job_set_progress(job, 100.0 * (double)cur / (double)end);
        }
        if (ready == copies->len)
            return TRUE;
        g_usleep(100000);
    }
}

/* pivots each disk and confirms in the live definition that it runs on
 * the new file before the old one may go */
static gboolean
lv_copies_pivot(const VmshiftMigrationSpec *spec, VmshiftJob *job, virDomainPtr d,
                GPtrArray *copies, GError **error)
{
    for (guint i = 0; i < copies->len; i++) {
        LvMove *c = copies->pdata[i];
        if (virDomainBlockJobAbort(d, c->dev, VIR_DOMAIN_BLOCK_JOB_ABORT_PIVOT) < 0) {
            lv_error(error, VMSHIFT_ERROR_FAILED, "VM %s: pivot of disk %s to %s", spec->vm, c->dev,
                     c->dst_path);
            return FALSE;
        }
        g_autofree char *now = lv_disk_source(d, c->dev, FALSE);
        if (g_strcmp0(now, c->dst_path) != 0) {
            g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_FAILED,
                        "VM %s: disk %s runs on %s after the pivot to %s", spec->vm, c->dev,
                        now ? now : "?", c->dst_path);
            return FALSE;
        }
        c->pivoted = TRUE;
        vmshift_job_log(job, VMSHIFT_LOG_INFO, "disk %s pivoted to %s", c->dev, c->dst_path);
    }
    return TRUE;
}

/* before the pivot: abort the copies (no pivot), remove the new files;
 * the VM keeps running on its old files */
static void
lv_copies_abort(VmshiftJob *job, virDomainPtr d, LvHost *h, GPtrArray *copies)
{
    gboolean unknown = FALSE;
    for (guint i = 0; i < copies->len; i++) {
        LvMove *c = copies->pdata[i];
        if (!c->started || c->pivoted)
            continue;
        virDomainBlockJobAbort(d, c->dev, 0);
        for (int k = 0; k < 50; k++) {
            virDomainBlockJobInfo ji;
            if (virDomainGetBlockJobInfo(d, c->dev, &ji, 0) != 1)
                break;
            g_usleep(100000);
        }
        /* a pivot whose reply was lost may have happened: the new file
         * goes only when libvirt shows the disk on another one */
        g_autofree char *now = lv_disk_source(d, c->dev, FALSE);
        if (now == NULL || !g_strcmp0(now, c->dst_path)) {
            vmshift_job_log(job, VMSHIFT_LOG_WARNING,
                            "disk %s may run on %s (libvirt did not say): kept; "
                            "'vmshift job repair' decides",
                            c->dev, c->dst_path);
            unknown = TRUE;
            continue;
        }
        g_unlink(c->dst_path);
    }
    if (unknown) {
        vmshift_job_set_location(job, h->name, "unknown: the disks' files were not confirmed");
        return;
    }
    vmshift_job_set_location(job, h->name, "running (storage unchanged)");
    lv_save_rolled_back(job);
}

/* after the pivots: the old top files go (backing files may be shared) */
static void
lv_copies_cleanup(VmshiftJob *job, GPtrArray *copies)
{
    g_autoptr(GString) moved = g_string_new(NULL);
    for (guint i = 0; i < copies->len; i++) {
        LvMove *c = copies->pdata[i];
        if (g_unlink(c->src_path) != 0)
            vmshift_job_log(job, VMSHIFT_LOG_WARNING, "removing %s: %s", c->src_path,
                            g_strerror(errno));
        else
            vmshift_job_log(job, VMSHIFT_LOG_INFO, "removed %s", c->src_path);
        g_string_append_printf(moved, "%s%s=%s", moved->len ? "," : "", c->dev, c->dst_path);
    }
    vmshift_job_set_result(job, "disks", moved->str);
}

/* the entries of a saved "DEV=PATH;DEV=PATH" list, as {dev, path} pairs
 * (g_strfreev'd) */
static GPtrArray *
lv_dev_paths(const char *list)
{
    GPtrArray *out = g_ptr_array_new_with_free_func((GDestroyNotify)g_strfreev);
    g_auto(GStrv) items = g_strsplit(list ? list : "", ";", -1);
    for (guint i = 0; items[i]; i++) {
        char *eq = strchr(items[i], '=');
        if (eq && eq > items[i])
            g_ptr_array_add(out, g_strsplit(items[i], "=", 2));
    }
    return out;
}

GPtrArray *
lv_saved_copies(VmshiftJob *job)
{
    g_autofree char *nf = vmshift_job_get_saved(job, "new-files");
    g_autofree char *of = vmshift_job_get_saved(job, "old-files");
    g_autoptr(GPtrArray) news = lv_dev_paths(nf);
    g_autoptr(GPtrArray) olds = lv_dev_paths(of);
    GPtrArray *copies = g_ptr_array_new_with_free_func((GDestroyNotify)lv_move_free);
    for (guint i = 0; i < news->len; i++) {
        char **n = news->pdata[i];
        LvMove *c = g_new0(LvMove, 1);
        c->dev = g_strdup(n[0]);
        c->dst_path = g_strdup(n[1]);
        for (guint k = 0; k < olds->len && !c->src_path; k++) {
            char **o = olds->pdata[k];
            if (!strcmp(o[0], c->dev))
                c->src_path = g_strdup(o[1]);
        }
        g_ptr_array_add(copies, c);
    }
    return copies;
}

/*
 * The end of a storage move whose every disk was found running on its new
 * file by a repair (vmshift died after the pivot): the saved definition is
 * made to name the new files (the move may have died before it did), then
 * the old top files the journal saved go, each only while neither the live
 * nor the saved definition names it.
 */
gboolean
lv_storage_finish(VmshiftJob *job, virDomainPtr d, GPtrArray *copies, GError **error)
{
    if (!lv_rewrite_config(d, copies, error))
        return FALSE;
    for (guint i = 0; i < copies->len; i++) {
        LvMove *c = copies->pdata[i];
        if (!c->src_path || !strcmp(c->src_path, c->dst_path)
            || !g_file_test(c->src_path, G_FILE_TEST_EXISTS))
            continue;
        g_autofree char *live = lv_disk_source(d, c->dev, FALSE);
        g_autofree char *saved = virDomainIsPersistent(d) == 1 ? lv_disk_source(d, c->dev, TRUE)
                                                               : NULL;
        if (!g_strcmp0(live, c->src_path) || !g_strcmp0(saved, c->src_path)) {
            vmshift_job_log(job, VMSHIFT_LOG_WARNING, "%s: still named by VM %s's disk %s: kept",
                            c->src_path, virDomainGetName(d), c->dev);
            continue;
        }
        if (g_unlink(c->src_path) == 0)
            vmshift_job_log(job, VMSHIFT_LOG_INFO, "removed the old file %s", c->src_path);
        else
            vmshift_job_log(job, VMSHIFT_LOG_WARNING, "removing %s: %s", c->src_path,
                            g_strerror(errno));
    }
    return TRUE;
}

/*
 * Storage migration on the VM's host, live: for each moving disk
 * virDomainBlockCopy (a full copy into DIR/basename, a transient job as
 * libvirt requires for persistent domains), wait until every copy is ready,
 * pivot with virDomainBlockJobAbort(PIVOT), confirm in the live XML that
 * the disk runs on the new file, and only then remove the old file.
 * Cancel (or a failed journal write) before the pivot aborts the copies
 * and removes the new files.
 */
gboolean
lv_storage_migrate(const VmshiftMigrationSpec *spec, VmshiftJob *job, virDomainPtr d, LvHost *h,
                   GError **error)
{
    g_autoptr(GPtrArray) copies = g_ptr_array_new_with_free_func((GDestroyNotify)lv_move_free);
    int state = 0;
    virDomainGetState(d, &state, NULL, 0);
    if (state != VIR_DOMAIN_RUNNING && state != VIR_DOMAIN_PAUSED) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_NOT_SUPPORTED,
                    "VM %s is not running: the libvirt transport moves storage of running "
                    "VMs only (block copy)",
                    spec->vm);
        return FALSE;
    }
    if (!lv_plan_copies(d, spec, h, copies, error) || !lv_storage_journal(job, d, h, copies, error))
        return FALSE;
    vmshift_job_set_location(job, h->name, "running, copying storage");
    if (!lv_copies_start(spec, job, d, copies, error)
        || !lv_copies_wait(spec, job, d, copies, error)
        || !vmshift_job_set_phase(job, VMSHIFT_PHASE_SWITCHOVER, error)
        || !lv_copies_pivot(spec, job, d, copies, error)) {
        lv_copies_abort(job, d, h, copies);
        return FALSE;
    }
    /* the disks run on the new files: from here on forward only */
    if (!vmshift_job_save(job, "stage", "pivoted", error) || !lv_rewrite_config(d, copies, error))
        return FALSE;
    vmshift_job_set_location(job, h->name, "running");
    if (!vmshift_job_set_phase(job, VMSHIFT_PHASE_CLEANUP, error))
        return FALSE;
    lv_copies_cleanup(job, copies);
    return vmshift_job_save(job, "stage", "done", error)
           && lv_verify_move(NULL, spec, job, virDomainGetName(d), h, TRUE, error);
}
