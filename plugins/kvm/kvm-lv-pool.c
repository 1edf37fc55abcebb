/* vmshift KVM plugin, libvirt transport: files on other hosts (cold and
 * VM + storage migration), through libvirt's storage pools and volumes.
 *
 * The hosts are separate libvirtds, possibly on other machines: the client
 * reaches their files only through libvirt's storage API, and that API
 * (virStorageVolCreateXML, virStorageVolDownload/Upload, virStorageVolDelete)
 * works on volumes of a storage pool only. So every directory a disk moves
 * from or to needs a pool on its host: an existing pool whose target is the
 * directory is refreshed (libvirt learns of files made outside it only on a
 * refresh); a directory nobody made a pool for gets a transient directory
 * pool, destroyed again when the migration ends (a destroyed transient pool
 * is forgotten; its directory and files stay). A directory that does not
 * exist yet is made by a pool defined for the job (virStoragePoolBuild;
 * building an existing directory would change its mode), so that a
 * rollback can remove it again (virStoragePoolDelete) before the pool is
 * undefined.
 */
#include "config.h"

#include <string.h>

#include "kvm-lv.h"

static void
lv_pool_release(LvPool *p, gboolean rmdir)
{
    if (!p->pool)
        return;
    if (p->created)
        virStoragePoolDestroy(p->pool);
    if (p->built) {
        /* only an empty directory goes */
        if (rmdir)
            virStoragePoolDelete(p->pool, 0);
        virStoragePoolUndefine(p->pool);
    }
    g_clear_pointer(&p->pool, virStoragePoolFree);
}

void
lv_pool_free(LvPool *p)
{
    lv_pool_release(p, FALSE);
    g_free(p->dir);
    g_free(p);
}

void
lv_pools_unbuild(GPtrArray *pools, LvHost *h)
{
    for (guint i = 0; i < pools->len; i++) {
        LvPool *p = pools->pdata[i];
        if (p->host == h && p->built)
            lv_pool_release(p, TRUE);
    }
}

/* an existing pool of @dir, started and refreshed */
static gboolean
lv_pool_refresh(virStoragePoolPtr pool, LvHost *h, const char *dir, GError **error)
{
    if ((virStoragePoolIsActive(pool) != 1 && virStoragePoolCreate(pool, 0) < 0)
        || virStoragePoolRefresh(pool, 0) < 0) {
        lv_error(error, VMSHIFT_ERROR_FAILED, "host %s: refreshing the storage pool %s of %s",
                 h->name, virStoragePoolGetName(pool), dir);
        return FALSE;
    }
    return TRUE;
}

/* a pool made for the job: transient on an existing directory; with
 * @build defined and built (the directory made) when there is none */
static virStoragePoolPtr
lv_pool_make(LvHost *h, const char *dir, gboolean build, gboolean *built, GError **error)
{
    g_autofree char *sum = g_compute_checksum_for_string(G_CHECKSUM_SHA256, dir, -1);
    g_autofree char *ed = vmshift_xml_escape(dir);
    g_autofree char *xml = g_strdup_printf("<pool type='dir'><name>vmshift-%.12s</name>"
                                           "<target><path>%s</path></target></pool>",
                                           sum, ed);
    g_autoptr(virStoragePool) pool = virStoragePoolCreateXML(h->conn, xml, 0);
    if (!pool && build) {
        pool = virStoragePoolDefineXML(h->conn, xml, 0);
        if (pool && (virStoragePoolBuild(pool, 0) < 0 || virStoragePoolCreate(pool, 0) < 0)) {
            lv_error(error, VMSHIFT_ERROR_FAILED, "host %s: making the directory %s", h->name, dir);
            virStoragePoolUndefine(pool);
            return NULL;
        }
        *built = pool != NULL;
    }
    if (!pool)
        lv_error(error, VMSHIFT_ERROR_FAILED, "host %s: making a storage pool for %s", h->name,
                 dir);
    return g_steal_pointer(&pool);
}

virStoragePoolPtr
lv_pool(GPtrArray *pools, LvHost *h, const char *dir, gboolean build, GError **error)
{
    for (guint i = 0; i < pools->len; i++) {
        LvPool *p = pools->pdata[i];
        if (p->host == h && !strcmp(p->dir, dir) && p->pool)
            return p->pool;
    }
    g_autoptr(virStoragePool) pool = virStoragePoolLookupByTargetPath(h->conn, dir);
    gboolean created = FALSE, built = FALSE;
    if (pool) {
        if (!lv_pool_refresh(pool, h, dir, error))
            return NULL;
    } else {
        pool = lv_pool_make(h, dir, build, &built, error);
        if (!pool)
            return NULL;
        created = TRUE;
    }
    LvPool *p = g_new0(LvPool, 1);
    p->host = h;
    p->dir = g_strdup(dir);
    p->pool = g_steal_pointer(&pool);
    p->created = created;
    p->built = built;
    g_ptr_array_add(pools, p);
    return p->pool;
}

virStorageVolPtr
lv_vol(GPtrArray *pools, LvHost *h, const char *path, gboolean build, GError **error)
{
    g_autofree char *dir = g_path_get_dirname(path);
    virStoragePoolPtr pool = lv_pool(pools, h, dir, build, error);
    if (!pool)
        return NULL;
    g_autofree char *base = g_path_get_basename(path);
    return virStorageVolLookupByName(pool, base);
}

gboolean
lv_vol_absent(GPtrArray *pools, LvHost *h, const char *path, const char *hint, GError **error)
{
    g_autoptr(GError) e = NULL;
    g_autoptr(virStorageVol) v = lv_vol(pools, h, path, TRUE, &e);
    if (v) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_CONFLICT,
                    "%s already exists on host %s: not overwritten%s", path, h->name, hint);
        return FALSE;
    }
    if (e) {
        g_propagate_error(error, g_steal_pointer(&e));
        return FALSE;
    }
    return TRUE;
}

gboolean
lv_vol_delete(GPtrArray *pools, LvHost *h, const char *path, GError **error)
{
    g_autoptr(GError) e = NULL;
    g_autoptr(virStorageVol) v = lv_vol(pools, h, path, FALSE, &e);
    if (!v) {
        /* no pool: the directory is gone, and the file with it */
        if (e && g_error_matches(e, VMSHIFT_ERROR, VMSHIFT_ERROR_CONNECTION)) {
            g_propagate_error(error, g_steal_pointer(&e));
            return FALSE;
        }
        return TRUE;
    }
    if (virStorageVolDelete(v, 0) != 0) {
        lv_error(error, VMSHIFT_ERROR_FAILED, "host %s: removing %s", h->name, path);
        return FALSE;
    }
    return TRUE;
}

/* removes @path on @h, logging what happened */
static void
lv_delete_logged(VmshiftJob *job, GPtrArray *pools, LvHost *h, const char *path, const char *suffix)
{
    g_autoptr(GError) e = NULL;
    if (lv_vol_delete(pools, h, path, &e))
        vmshift_job_log(job, VMSHIFT_LOG_INFO, "removed %s:%s%s", h->name, path, suffix);
    else
        vmshift_job_log(job, VMSHIFT_LOG_WARNING, "%s", e->message);
}

void
lv_delete_moves(VmshiftJob *job, GPtrArray *pools, LvHost *h, GPtrArray *moves, gboolean dst,
                gboolean only_created)
{
    for (guint i = 0; i < moves->len; i++) {
        LvMove *m = moves->pdata[i];
        if (!only_created || m->created)
            lv_delete_logged(job, pools, h, dst ? m->dst_path : m->src_path, "");
    }
}

char *
lv_moved_disks(GPtrArray *moves, LvHost *dst)
{
    GString *res = g_string_new(NULL);
    for (guint i = 0; i < moves->len; i++) {
        LvMove *m = moves->pdata[i];
        g_string_append_printf(res, "%s%s=%s:%s", res->len ? "," : "", m->dev, dst->name,
                               m->dst_path);
    }
    return g_string_free(res, FALSE);
}

void
lv_delete_saved(VmshiftJob *job, GPtrArray *pools, LvHost *h, const char *key)
{
    g_autofree char *list = vmshift_job_get_saved(job, key);
    g_auto(GStrv) v = g_strsplit(list ? list : "", ";", -1);
    for (char **p = v; *p; p++)
        if (**p)
            lv_delete_logged(job, pools, h, *p, " (if it was there)");
    /* the pools the interrupted job made for itself go with @pools (and
     * with lv_pools_unbuild() the directories it made) */
    for (guint i = 0; i < pools->len; i++) {
        LvPool *pl = pools->pdata[i];
        if (pl->host == h && pl->pool
            && g_str_has_prefix(virStoragePoolGetName(pl->pool), "vmshift-")) {
            pl->created = TRUE;
            pl->built = virStoragePoolIsPersistent(pl->pool) == 1;
        }
    }
}

void
lv_drop_job_pools(VmshiftJob *job, LvHost *h, const char *key)
{
    g_autofree char *list = vmshift_job_get_saved(job, key);
    g_auto(GStrv) v = g_strsplit(list ? list : "", ";", -1);
    for (char **p = v; *p; p++) {
        if (!**p)
            continue;
        g_autofree char *dir = g_path_get_dirname(*p);
        g_autoptr(virStoragePool) pool = virStoragePoolLookupByTargetPath(h->conn, dir);
        if (!pool || !g_str_has_prefix(virStoragePoolGetName(pool), "vmshift-"))
            continue;
        if (virStoragePoolIsActive(pool) == 1)
            virStoragePoolDestroy(pool);
        if (virStoragePoolIsPersistent(pool) == 1)
            virStoragePoolUndefine(pool);
    }
}

/*
 * Streams volume @from (one host) into volume @to (another): libvirt's
 * sparse download on the one connection feeds its sparse upload on the
 * other, chunk by chunk, holes as holes (as virsh vol-download and
 * vol-upload --sparse do, but from stream to stream). @done counts bytes
 * (holes included) for the progress of @total.
 */
#define LV_CHUNK (256 * 1024)

typedef struct {
    virStreamPtr in, out;
    LvHost *fh, *th;
    const char *what;
    VmshiftJob *job;
    guint64 *done, total;
} LvPump;

static gboolean
lv_pump_failed(const LvPump *p, gboolean upload, GError **error)
{
    lv_error(error, VMSHIFT_ERROR_FAILED, "%s: %s host %s", p->what,
             upload ? "upload to" : "download from", upload ? p->th->name : p->fh->name);
    return FALSE;
}

static gboolean
lv_pump_hole(const LvPump *p, GError **error)
{
    long long hole = 0;
    if (virStreamRecvHole(p->in, &hole, 0) < 0)
        return lv_pump_failed(p, FALSE, error);
    if (virStreamSendHole(p->out, hole, 0) < 0)
        return lv_pump_failed(p, TRUE, error);
    *p->done += (guint64)hole;
    return TRUE;
}

static gboolean
lv_pump_send(const LvPump *p, const char *buf, int n, GError **error)
{
    for (int off = 0; off < n;) {
        int w = virStreamSend(p->out, buf + off, (size_t)(n - off));
        if (w < 0)
            return lv_pump_failed(p, TRUE, error);
        off += w;
    }
    *p->done += (guint64)n;
    return TRUE;
}

/* the bytes from the download to the upload until the download ends */
static gboolean
lv_pump(const LvPump *p, GError **error)
{
    GCancellable *cancel = vmshift_job_get_cancellable(p->job);
    g_autofree char *buf = g_malloc(LV_CHUNK);
    gint64 shown = 0;
    for (;;) {
        if (g_cancellable_is_cancelled(cancel)) {
            g_set_error(error, G_IO_ERROR, G_IO_ERROR_CANCELLED, "%s: cancelled", p->what);
            return FALSE;
        }
        int n = virStreamRecvFlags(p->in, buf, LV_CHUNK, VIR_STREAM_RECV_STOP_AT_HOLE);
        if (n == -3) {
            if (!lv_pump_hole(p, error))
                return FALSE;
            continue;
        }
        if (n < 0)
            return lv_pump_failed(p, FALSE, error);
        if (n == 0)
            return TRUE;
        if (!lv_pump_send(p, buf, n, error))
            return FALSE;
        if (g_get_monotonic_time() - shown > 200000) {
            guint64 d = MIN(*p->done, p->total);
            shown = g_get_monotonic_time();
            vmshift_job_set_bytes(p->job, d, p->total);
            if (p->total)
                vmshift_job_set_progress(p->job, 100.0 * (double)d / (double)p->total);
        }
    }
}

gboolean
lv_vol_stream(virStorageVolPtr from, LvHost *fh, virStorageVolPtr to, LvHost *th, const char *what,
              VmshiftJob *job, guint64 *done, guint64 total, GError **error)
{
    g_autoptr(virStream) in = virStreamNew(fh->conn, 0);
    g_autoptr(virStream) out = virStreamNew(th->conn, 0);
    LvPump p = { in, out, fh, th, what, job, done, total };
    if (!in || !out) {
        lv_error(error, VMSHIFT_ERROR_FAILED, "%s: making the streams", what);
        return FALSE;
    }
    if (virStorageVolDownload(from, in, 0, 0, VIR_STORAGE_VOL_DOWNLOAD_SPARSE_STREAM) < 0)
        return lv_pump_failed(&p, FALSE, error);
    if (virStorageVolUpload(to, out, 0, 0, VIR_STORAGE_VOL_UPLOAD_SPARSE_STREAM) < 0) {
        lv_pump_failed(&p, TRUE, error);
        virStreamAbort(in);
        return FALSE;
    }
    if (!lv_pump(&p, error)) {
        virStreamAbort(in);
        virStreamAbort(out);
        return FALSE;
    }
    if (virStreamFinish(in) < 0) {
        lv_pump_failed(&p, FALSE, error);
        virStreamAbort(out);
        return FALSE;
    }
    /* the destination reports a failed write (full, read-only) at the latest here */
    if (virStreamFinish(out) < 0)
        return lv_pump_failed(&p, TRUE, error);
    return TRUE;
}

/* a volume's XML as a document and its XPath context, or FALSE */
static gboolean
lv_vol_xml(virStorageVolPtr v, xmlDoc **doc, xmlXPathContext **ctx)
{
    g_autofree char *x = virStorageVolGetXMLDesc(v, 0);
    *doc = x ? vmshift_xml_parse(x, strlen(x), "libvirt volume XML", NULL) : NULL;
    *ctx = *doc ? vmshift_xpath_new(*doc, NULL) : NULL;
    return *doc != NULL;
}

char *
lv_vol_permissions(virStorageVolPtr v)
{
    g_autoptr(xmlDoc) doc = NULL;
    g_autoptr(xmlXPathContext) ctx = NULL;
    if (!lv_vol_xml(v, &doc, &ctx))
        return g_strdup("");
    GString *s = g_string_new(NULL);
    static const char *const keys[] = { "mode", "owner", "group" };
    for (guint i = 0; i < G_N_ELEMENTS(keys); i++) {
        g_autofree char *expr = g_strdup_printf("/volume/target/permissions/%s", keys[i]);
        g_autofree char *val = vmshift_xpath_string(ctx, NULL, expr);
        if (val && *val && strspn(val, "0123456789") == strlen(val))
            g_string_append_printf(s, "<%s>%s</%s>", keys[i], val, keys[i]);
    }
    if (s->len) {
        g_string_prepend(s, "<permissions>");
        g_string_append(s, "</permissions>");
    }
    return g_string_free(s, FALSE);
}

char *
lv_vol_backing(virStorageVolPtr v)
{
    g_autoptr(xmlDoc) doc = NULL;
    g_autoptr(xmlXPathContext) ctx = NULL;
    if (!lv_vol_xml(v, &doc, &ctx))
        return NULL;
    char *r = vmshift_xpath_string(ctx, NULL, "/volume/backingStore/path");
    if (r && !*r)
        g_clear_pointer(&r, g_free);
    return r;
}

virStorageVolPtr
lv_vol_create(virStoragePoolPtr pool, const char *path, guint64 capacity, const char *fmt,
              const char *extra)
{
    g_autofree char *base = g_path_get_basename(path);
    g_autofree char *eb = vmshift_xml_escape(base);
    g_autofree char *vx = g_strdup_printf(
        "<volume><name>%s</name><capacity unit='bytes'>%" G_GUINT64_FORMAT
        "</capacity><allocation>0"
        "</allocation><target><format type='%s'/>%s"
        "</target></volume>",
        eb, capacity, fmt, extra);
    return virStorageVolCreateXML(pool, vx, 0);
}
