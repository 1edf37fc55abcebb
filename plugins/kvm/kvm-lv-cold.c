/* vmshift KVM plugin, libvirt transport: cold migration of a shut-off
 * domain to another host, its images streamed through the storage API. */
#include "config.h"

#include <string.h>

#include "kvm-lv.h"

/* one cold migration */
typedef struct {
    const VmshiftMigrationSpec *spec;
    VmshiftJob *job;
    virDomainPtr d;
    const char *name;
    LvHost *src, *dst;
    GPtrArray *moves; /* LvMove */
    GPtrArray *pools; /* LvPool */
    guint64 total, done;
} LvCold;

static gboolean
lv_cold_cancelled(LvCold *c, GError **error)
{
    if (!g_cancellable_is_cancelled(vmshift_job_get_cancellable(c->job)))
        return FALSE;
    g_set_error(error, G_IO_ERROR, G_IO_ERROR_CANCELLED, "cold migration of VM %s cancelled",
                c->spec->vm);
    return TRUE;
}

/* no domain of that name or UUID on the destination */
static gboolean
lv_cold_dest_free(LvCold *c, GError **error)
{
    g_autoptr(virDomain) other = virDomainLookupByName(c->dst->conn, c->name);
    if (!other) {
        unsigned char uuid[VIR_UUID_BUFLEN];
        if (virDomainGetUUID(c->d, uuid) == 0)
            other = virDomainLookupByUUID(c->dst->conn, uuid);
    }
    if (other) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_CONFLICT,
                    "host %s already has a VM called %s (or with its UUID)", c->dst->name,
                    virDomainGetName(other));
        return FALSE;
    }
    return TRUE;
}

/* the destination host, and the domain shut off, without a saved state */
static gboolean
lv_cold_check(KvmBackend *b, LvCold *c, GError **error)
{
    const char *name = c->name, *srcn = c->src->name;
    if (!c->spec->dest_host) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_INVALID_ARGUMENT,
                    "cold migration of VM %s: no destination host", c->spec->vm);
        return FALSE;
    }
    if (!(c->dst = lv_find_host(b, c->spec->dest_host, error)))
        return FALSE;
    if (c->dst == c->src) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_INVALID_ARGUMENT,
                    "VM %s already is on host %s", c->spec->vm, srcn);
        return FALSE;
    }
    int state = 0;
    if (virDomainGetState(c->d, &state, NULL, 0) < 0) {
        lv_error(error, VMSHIFT_ERROR_FAILED, "VM %s: reading its state on host %s", name, srcn);
        return FALSE;
    }
    if (state != VIR_DOMAIN_SHUTOFF) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_CONFLICT,
                    "VM %s is not shut off on host %s: cold migration needs it stopped "
                    "(or use --live)",
                    name, srcn);
        return FALSE;
    }
    if (virDomainHasManagedSaveImage(c->d, 0) == 1) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_CONFLICT,
                    "VM %s has a saved state on host %s (managed save): start it or remove "
                    "the state before a cold migration",
                    name, srcn);
        return FALSE;
    }
    return lv_cold_dest_free(c, error);
}

/* the destination's definition (networks mapped, new disk paths), and the
 * disks that move: all of them, to the same path by default; none with
 * --transfer san without --path (both hosts reach the files) */
static char *
lv_cold_xml(LvCold *c, GError **error)
{
    g_autoptr(xmlDoc) doc = lv_xml(
        c->d, VIR_DOMAIN_XML_INACTIVE | VIR_DOMAIN_XML_SECURE | VIR_DOMAIN_XML_MIGRATABLE, error);
    if (!doc)
        return NULL;
    gboolean shared = c->spec->transfer == VMSHIFT_TRANSFER_SAN
                      && !vmshift_migration_spec_moves_storage(c->spec);
    if (!lv_plan_moves(doc, c->spec, !shared, c->moves, error)
        || !lv_map_networks(doc, c->spec, error))
        return NULL;
    lv_rewrite_disks(doc, c->moves);
    return lv_xml_dump(doc);
}

static gboolean
lv_cold_journal(LvCold *c, GError **error)
{
    VmshiftJob *job = c->job;
    if (!vmshift_job_save(job, "vm", c->name, error)
        || !vmshift_job_save(job, "src-host", c->src->name, error)
        || !vmshift_job_save(job, "dst-host", c->dst->name, error)
        || !vmshift_job_save(job, "transport", "libvirt", error)
        || !vmshift_job_save(job, "kind", "cold", error)
        || !vmshift_job_set_phase(job, VMSHIFT_PHASE_PREPARE, error)
        || !vmshift_job_save(job, "stage", "prepare", error))
        return FALSE;
    for (guint i = 0; i < c->spec->networks->len; i++) {
        VmshiftMapping *mp = c->spec->networks->pdata[i];
        vmshift_job_log(job, VMSHIFT_LOG_INFO, "NIC %s -> network %s on %s", mp->key, mp->value,
                        c->dst->name);
    }
    return TRUE;
}

/* the source's volume of @m (@where: "is not on", "is gone from") */
static virStorageVolPtr
lv_cold_source_vol(LvCold *c, LvMove *m, const char *where, GError **error)
{
    g_autoptr(GError) e = NULL;
    virStorageVolPtr sv = lv_vol(c->pools, c->src, m->src_path, FALSE, &e);
    if (sv)
        return sv;
    if (!e)
        g_set_error(&e, VMSHIFT_ERROR, VMSHIFT_ERROR_NOT_FOUND, "VM %s: disk %s (%s) %s host %s",
                    c->name, m->dev, m->src_path, where, c->src->name);
    g_propagate_error(error, g_steal_pointer(&e));
    return NULL;
}

/* @m's image: a whole one (no backing file), its sizes; no file at its
 * new path on the destination */
static gboolean
lv_cold_size(LvCold *c, LvMove *m, GError **error)
{
    g_autoptr(virStorageVol) sv = lv_cold_source_vol(c, m, "is not on", error);
    if (!sv)
        return FALSE;
    g_autofree char *backing = lv_vol_backing(sv);
    if (backing) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_NOT_SUPPORTED,
                    "VM %s: disk %s (%s) has the backing file %s: the libvirt transport "
                    "moves whole images only (merge the chain first, e.g. virsh "
                    "blockpull while it runs)",
                    c->name, m->dev, m->src_path, backing);
        return FALSE;
    }
    virStorageVolInfo info;
    if (virStorageVolGetInfoFlags(sv, &info, VIR_STORAGE_VOL_GET_PHYSICAL) < 0) {
        lv_error(error, VMSHIFT_ERROR_FAILED, "host %s: reading the size of %s", c->src->name,
                 m->src_path);
        return FALSE;
    }
    m->physical = info.allocation;
    m->capacity = info.capacity;
    c->total += m->physical;
    return lv_vol_absent(c->pools, c->dst, m->dst_path,
                         " (if both hosts share that storage, --transfer san moves the "
                         "definition only)",
                         error);
}

/* raw: the volume is a plain file of the image's size that the upload
 * fills with the image's bytes, format header included */
static gboolean
lv_cold_copy_one(LvCold *c, LvMove *m, GError **error)
{
    g_autofree char *dir = g_path_get_dirname(m->dst_path);
    virStoragePoolPtr dp = lv_pool(c->pools, c->dst, dir, TRUE, error);
    if (!dp)
        return FALSE;
    g_autoptr(virStorageVol) sv = lv_cold_source_vol(c, m, "is gone from", error);
    if (!sv)
        return FALSE;
    g_autofree char *perm = lv_vol_permissions(sv);
    g_autoptr(virStorageVol) dv = lv_vol_create(dp, m->dst_path, m->physical, "raw", perm);
    if (!dv) {
        lv_error(error, VMSHIFT_ERROR_FAILED, "host %s: creating %s", c->dst->name, m->dst_path);
        return FALSE;
    }
    m->created = TRUE;
    vmshift_job_log(c->job, VMSHIFT_LOG_INFO, "copying disk %s: %s:%s -> %s:%s", m->dev,
                    c->src->name, m->src_path, c->dst->name, m->dst_path);
    g_autofree char *what = g_strdup_printf("VM %s: copying disk %s to %s:%s", c->name, m->dev,
                                            c->dst->name, m->dst_path);
    return lv_vol_stream(sv, c->src, dv, c->dst, what, c->job, &c->done, c->total, error);
}

/* the transfer phase: every image copied */
static gboolean
lv_cold_copy(LvCold *c, GError **error)
{
    if (!lv_save_moves(c->job, c->moves, error)
        || !vmshift_job_set_phase(c->job, VMSHIFT_PHASE_TRANSFER, error)
        || !vmshift_job_save(c->job, "stage", "copy", error))
        return FALSE;
    vmshift_job_set_location(c->job, c->src->name, "shut off, its disks being copied");
    for (guint i = 0; i < c->moves->len; i++)
        if (lv_cold_cancelled(c, error) || !lv_cold_copy_one(c, c->moves->pdata[i], error))
            return FALSE;
    vmshift_job_set_bytes(c->job, c->done, c->done);
    vmshift_job_set_progress(c->job, 100.0);
    return TRUE;
}

/* the switchover: defined on the destination (@dd), then undefined on the
 * source */
static gboolean
lv_cold_switch(LvCold *c, const char *xml, virDomainPtr *dd, GError **error)
{
    if (!vmshift_job_set_phase(c->job, VMSHIFT_PHASE_SWITCHOVER, error)
        || lv_cold_cancelled(c, error) || !vmshift_job_save(c->job, "stage", "define", error))
        return FALSE;
    *dd = virDomainDefineXML(c->dst->conn, xml);
    if (!*dd) {
        lv_error(error, VMSHIFT_ERROR_FAILED, "VM %s: defining it on host %s", c->name,
                 c->dst->name);
        return FALSE;
    }
    if (virDomainUndefineFlags(c->d, LV_UNDEFINE_FLAGS) < 0) {
        lv_error(error, VMSHIFT_ERROR_FAILED,
                 "VM %s: undefining it on host %s after it was "
                 "defined on %s",
                 c->name, c->src->name, c->dst->name);
        return FALSE;
    }
    return TRUE;
}

/* before the switch: the source keeps the VM, the destination keeps nothing */
static void
lv_cold_rollback(LvCold *c, virDomainPtr dd)
{
    if (dd && virDomainUndefineFlags(dd, LV_UNDEFINE_FLAGS) < 0)
        vmshift_job_log(c->job, VMSHIFT_LOG_WARNING, "VM %s: undefining it on host %s: %s", c->name,
                        c->dst->name, virGetLastErrorMessage());
    lv_delete_moves(c->job, c->pools, c->dst, c->moves, TRUE, TRUE);
    lv_pools_unbuild(c->pools, c->dst);
    lv_save_rolled_back(c->job);
    vmshift_job_set_location(c->job, c->src->name, "shut off");
}

/* after the point of no return (the destination has the only
 * definition): the source's images go; --start starts it. A journal
 * write that fails stops here (repair goes forward from stage define). */
static gboolean
lv_cold_finish(LvCold *c, virDomainPtr dd, GError **error)
{
    VmshiftJob *job = c->job;
    vmshift_job_set_location(job, c->dst->name, "shut off");
    if (!vmshift_job_save(job, "stage", "moved", error)
        || !vmshift_job_set_phase(job, VMSHIFT_PHASE_CLEANUP, error))
        return FALSE;
    lv_delete_moves(job, c->pools, c->src, c->moves, FALSE, FALSE);
    if (c->moves->len) {
        g_autofree char *res = lv_moved_disks(c->moves, c->dst);
        vmshift_job_set_result(job, "disks", res);
    }
    if (c->spec->start) {
        if (!vmshift_job_save(job, "stage", "start", error))
            return FALSE;
        if (virDomainCreate(dd) < 0) {
            lv_error(error, VMSHIFT_ERROR_FAILED, "VM %s moved to host %s but did not start",
                     c->name, c->dst->name);
            return FALSE;
        }
        vmshift_job_set_location(job, c->dst->name, "running");
    }
    return vmshift_job_save(job, "stage", "done", error);
}

/*
 * Cold migration of a shut-off domain between two libvirt hosts:
 *   prepare   check the destination (no domain of that name, no file at a
 *             new path), pools on both sides; journal the files to make
 *   transfer  per disk: a raw volume of the image's file size on the
 *             destination, then the image's bytes streamed into it
 *             (lv_vol_stream): the copy is the same file, format and all
 *   switchover define the domain on the destination (networks mapped, new
 *             disk paths), then undefine it on the source: the point of no
 *             return, journaled as stage=moved
 *   cleanup   remove the source images; --start starts it on the destination
 * Up to the switchover a failure, a cancel or a failed journal write
 * removes the destination's volumes (and definition) again and leaves the
 * domain on the source. --transfer san without --path moves the
 * definition only (both hosts reach the files). Images with a backing file
 * are refused: the stream copies one file, and its backing reference could
 * not follow it.
 */
gboolean
lv_cold_migrate(KvmBackend *b, const VmshiftMigrationSpec *spec, VmshiftJob *job, virDomainPtr d,
                LvHost *src, GError **error)
{
    g_autoptr(GPtrArray) moves = g_ptr_array_new_with_free_func((GDestroyNotify)lv_move_free);
    g_autoptr(GPtrArray) pools = g_ptr_array_new_with_free_func((GDestroyNotify)lv_pool_free);
    LvCold c = { .spec = spec,
                 .job = job,
                 .d = d,
                 .name = virDomainGetName(d),
                 .src = src,
                 .moves = moves,
                 .pools = pools };
    vmshift_job_set_location(job, src->name, "shut off");
    if (!lv_cold_check(b, &c, error)) {
        if (c.dst)
            lv_cold_rollback(&c, NULL);
        return FALSE;
    }
    g_autofree char *xml = NULL;
    g_autoptr(virDomain) dd = NULL;
    gboolean ok = (xml = lv_cold_xml(&c, error)) && lv_cold_journal(&c, error);
    for (guint i = 0; ok && i < moves->len; i++)
        ok = lv_cold_size(&c, moves->pdata[i], error);
    if (!ok || !lv_cold_copy(&c, error) || !lv_cold_switch(&c, xml, &dd, error)) {
        lv_cold_rollback(&c, dd);
        return FALSE;
    }
    return lv_cold_finish(&c, dd, error)
           && lv_verify_move(b, spec, job, c.name, c.dst, spec->start != 0, error);
}
