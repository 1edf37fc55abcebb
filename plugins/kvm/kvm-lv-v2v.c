/* vmshift KVM plugin, libvirt transport: moves between backends (SDK 1.4:
 * export_vm, open_disk, check_import, import_vm, remove_vm, start_vm).
 *
 * Export reads the persistent domain XML of a shut-off domain: firmware
 * (<os firmware='efi'> or a pflash <loader>), vcpus, memory, the
 * <disk device='disk'> elements in document order (capacity and allocation
 * from the storage volume, else virDomainGetBlockInfo; format from
 * <driver type>, bus from <target bus>, <boot order>), the interfaces (MAC,
 * network or bridge, model) and the guest's OS family from the libosinfo
 * metadata.
 *
 * Disk bytes leave and arrive through libvirt's storage API, as for the
 * transport's own moves (kvm-lv-pool.c), because the libvirtd may be on
 * another machine or in another mount namespace: a path being the same
 * string here proves nothing. A volume is taken as the file this process
 * sees at the same path only when size, mtime and ctime (to the
 * nanosecond) libvirt reports for it equal what stat() says here; then
 *   open_disk  reads it with vmshift_disk_read_raw (any format, backing
 *              chain included, through qemu-nbd), and
 *   import_vm  writes the qcow2 image with vmshift_disk_write_raw.
 * Otherwise (a remote libvirtd):
 *   open_disk  streams a raw volume with virStorageVolDownload (sparse:
 *              holes come back as zeros); any other format is downloaded
 *              to a staged file in $TMPDIR first (refused unless the
 *              volume's allocation fits in its free space with 64 MiB to
 *              spare; removed when the stream is closed) and read through
 *              qemu-nbd; a volume with a backing file is refused (the
 *              download gives its top layer only);
 *   import_vm  uploads the raw bytes into a raw staging volume
 *              (virStorageVolUpload, sparse) and lets the destination's
 *              libvirt convert it into the qcow2 volume
 *              (virStorageVolCreateXMLFrom, qemu-img convert on that host),
 *              then deletes the staging volume; the pool must hold both
 *              (checked before the upload).
 *
 * import_vm journals what it will create before it creates it (v2v-backend,
 * v2v-host, v2v-name, v2v-uuid: the domain's UUID, chosen here; v2v-vols:
 * every volume path, staging ones included), so remove_vm with the job
 * removes exactly those: the domain only when its UUID is the journaled one
 * (a domain of the same name made by anyone else is never touched).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "kvm-lv.h"

#define LV_V2V_CHUNK (1024 * 1024)
#define LV_STAGE_SPARE (64ull * 1024 * 1024)

/* ---- small helpers ---------------------------------------------------------- */

gboolean
lv_is_off(virDomainPtr d)
{
    int state = 0, reason = 0;
    return virDomainGetState(d, &state, &reason, 0) == 0 && state == VIR_DOMAIN_SHUTOFF;
}

gboolean
lv_require_off(virDomainPtr d, const char *what, GError **error)
{
    if (lv_is_off(d))
        return TRUE;
    g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_CONFLICT, "VM %s is not shut off: %s",
                virDomainGetName(d), what);
    return FALSE;
}

/* libvirt's "SECONDS.NANOSECONDS" timestamp as nanoseconds */
static gint64
lv_ts(const char *s)
{
    if (!s || !*s)
        return -1;
    char *end = NULL;
    gint64 sec = g_ascii_strtoll(s, &end, 10), ns = 0;
    if (end && *end == '.') {
        char digits[10] = "000000000";
        const char *p = end + 1;
        for (int i = 0; i < 9 && g_ascii_isdigit(p[i]); i++)
            digits[i] = p[i];
        ns = g_ascii_strtoll(digits, NULL, 10);
    }
    return sec * 1000000000 + ns;
}

/* TRUE when @vol (of path @path) is the file this process sees at @path:
 * same size, mtime and ctime to the nanosecond */
gboolean
lv_vol_is_local(virStorageVolPtr vol, const char *path)
{
    struct stat st;
    if (!vol || !path || stat(path, &st) != 0 || !S_ISREG(st.st_mode))
        return FALSE;
    g_autofree char *x = virStorageVolGetXMLDesc(vol, 0);
    g_autoptr(xmlDoc) doc = x ? vmshift_xml_parse(x, strlen(x), "libvirt volume XML", NULL) : NULL;
    if (!doc)
        return FALSE;
    g_autoptr(xmlXPathContext) ctx = vmshift_xpath_new(doc, NULL);
    g_autofree char *mt = vmshift_xpath_string(ctx, NULL, "/volume/target/timestamps/mtime");
    g_autofree char *ct = vmshift_xpath_string(ctx, NULL, "/volume/target/timestamps/ctime");
    guint64 phys = 0;
    virStorageVolInfo vi;
    if (virStorageVolGetInfoFlags(vol, &vi, VIR_STORAGE_VOL_GET_PHYSICAL) == 0)
        phys = vi.allocation;
    else
        virResetLastError();
    gint64 lm = (gint64)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
    gint64 lc = (gint64)st.st_ctim.tv_sec * 1000000000 + st.st_ctim.tv_nsec;
    return lv_ts(mt) == lm && lv_ts(ct) == lc && phys == (guint64)st.st_size;
}

/* the volume of @path on @h: a pool's (libvirt's lookup), else through the
 * pool of its directory (made transient in @pools when there is none) */
static virStorageVolPtr
lv_v2v_vol(GPtrArray *pools, LvHost *h, const char *path, GError **error)
{
    virStorageVolPtr v = virStorageVolLookupByPath(h->conn, path);
    if (v)
        return v;
    virResetLastError();
    g_autoptr(GError) e = NULL;
    /* a device node is read only as a volume of a pool that has it (a
     * directory pool over /dev would be wrong) */
    if (!g_str_has_prefix(path, "/dev/"))
        v = lv_vol(pools, h, path, FALSE, &e);
    if (!v)
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_NOT_FOUND,
                    "host %s: %s is not a storage volume libvirt can reach%s%s", h->name, path,
                    e ? ": " : "", e ? e->message : "");
    return v;
}

/* the source path of disk element @n (file, block or pool volume) */
char *
lv_disk_path(LvHost *h, xmlXPathContext *ctx, xmlNode *n)
{
    char *p = vmshift_xpath_string(ctx, n, "source/@file");
    if (!p)
        p = vmshift_xpath_string(ctx, n, "source/@dev");
    if (p)
        return p;
    g_autofree char *pool = vmshift_xpath_string(ctx, n, "source/@pool");
    g_autofree char *vol = vmshift_xpath_string(ctx, n, "source/@volume");
    if (!pool || !vol)
        return NULL;
    g_autoptr(virStoragePool) pl = virStoragePoolLookupByName(h->conn, pool);
    g_autoptr(virStorageVol) v = pl ? virStorageVolLookupByName(pl, vol) : NULL;
    if (!v) {
        virResetLastError();
        return NULL;
    }
    char *vp = virStorageVolGetPath(v);
    p = g_strdup(vp);
    free(vp);
    return p;
}

/* ---- export_vm -------------------------------------------------------------- */

static guint32
lv_firmware(xmlXPathContext *ctx)
{
    g_autofree char *fw = vmshift_xpath_string(ctx, NULL, "/domain/os/@firmware");
    g_autofree char *lt = vmshift_xpath_string(ctx, NULL, "/domain/os/loader/@type");
    g_autofree char *loader = vmshift_xpath_string(ctx, NULL, "/domain/os/loader");
    if ((fw && !strcmp(fw, "efi")) || (lt && !strcmp(lt, "pflash"))
        || (loader && (strstr(loader, "OVMF") || strstr(loader, "edk2") || strstr(loader, "efi"))))
        return VMSHIFT_FIRMWARE_UEFI;
    return VMSHIFT_FIRMWARE_BIOS;
}

/* the OS family of the libosinfo id in the domain's metadata, or NULL */
static char *
lv_guest_os(xmlXPathContext *ctx)
{
    g_autofree char *id = vmshift_xpath_string(
        ctx, NULL, "/domain/metadata/*[local-name()='libosinfo']/*[local-name()='os']/@id");
    static const char *const linux_ids[] = { "linux",     "ubuntu",    "debian", "fedora",
                                             "redhat",    "centos",    "suse",   "alpinelinux",
                                             "rocky",     "almalinux", "gentoo", "archlinux",
                                             "oracle.com" };
    if (!id)
        return NULL;
    if (strstr(id, "microsoft.com/win"))
        return g_strdup("windows");
    for (guint i = 0; i < G_N_ELEMENTS(linux_ids); i++)
        if (strstr(id, linux_ids[i]))
            return g_strdup("linux");
    return g_strdup("other");
}

static char *
lv_neutral_bus(const char *bus)
{
    static const char *const known[] = { "virtio", "sata", "scsi", "ide", "nvme" };
    for (guint i = 0; bus && i < G_N_ELEMENTS(known); i++)
        if (!strcmp(bus, known[i]))
            return g_strdup(bus);
    return NULL;
}

/* capacity and allocation of @dk: its volume's, else libvirt's block info */
static void
lv_export_size(LvHost *h, virDomainPtr d, VmshiftDisk *dk)
{
    g_autoptr(virStorageVol) v = dk->path ? virStorageVolLookupByPath(h->conn, dk->path) : NULL;
    virStorageVolInfo vi;
    virDomainBlockInfo bi;
    if (v && virStorageVolGetInfo(v, &vi) == 0) {
        dk->capacity = vi.capacity;
        dk->allocation = vi.allocation;
    } else if (virDomainGetBlockInfo(d, dk->id, &bi, 0) == 0) {
        dk->capacity = bi.capacity;
        dk->allocation = bi.allocation;
    } else {
        virResetLastError();
        return;
    }
    dk->size_known = VMSHIFT_DISK_CAPACITY_KNOWN | VMSHIFT_DISK_ALLOCATION_KNOWN;
}

static gboolean
lv_export_disks(LvHost *h, virDomainPtr d, xmlXPathContext *ctx, VmshiftVm *vm, GError **error)
{
    g_autoptr(GPtrArray)
        disks = vmshift_xpath_nodes(ctx, NULL, "/domain/devices/disk[@device='disk']");
    g_autoptr(GPtrArray) osboot = vmshift_xpath_nodes(ctx, NULL, "/domain/os/boot[@dev='hd']");
    g_autoptr(GPtrArray) perdev = vmshift_xpath_nodes(ctx, NULL, "/domain/devices/*/boot/@order");
    for (guint i = 0; i < disks->len; i++) {
        xmlNode *n = disks->pdata[i];
        g_autofree char *type = vmshift_xpath_string(ctx, n, "@type");
        VmshiftDisk *dk = vmshift_disk_new();
        g_ptr_array_add(vm->disks, dk);
        dk->id = vmshift_xpath_string(ctx, n, "target/@dev");
        dk->path = lv_disk_path(h, ctx, n);
        if (!dk->id || !dk->path || (type && !strcmp(type, "network"))) {
            g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_NOT_SUPPORTED,
                        "VM %s: disk %s is not a file, block device or pool volume: it cannot "
                        "leave libvirt",
                        vm->name, dk->id ? dk->id : "(no target)");
            return FALSE;
        }
        dk->format = vmshift_xpath_string(ctx, n, "driver/@type");
        if (!dk->format)
            dk->format = g_strdup("raw");
        g_autofree char *bus = vmshift_xpath_string(ctx, n, "target/@bus");
        dk->bus = lv_neutral_bus(bus);
        guint64 order = 0;
        if (vmshift_xpath_uint64(ctx, n, "boot/@order", &order, NULL))
            dk->boot_order = (guint32)order;
        else if (i == 0 && perdev->len == 0 && osboot->len > 0)
            dk->boot_order = 1;
        dk->volume = g_path_get_dirname(dk->path);
        dk->backing_chain = vmshift_string_list_new();
        g_autoptr(GPtrArray) chain = vmshift_xpath_nodes(ctx, n, ".//backingStore/source/@file");
        for (guint k = 0; k < chain->len; k++) {
            char *t = vmshift_xml_text(chain->pdata[k]);
            if (t)
                g_ptr_array_add(dk->backing_chain, t);
        }
        lv_export_size(h, d, dk);
    }
    return TRUE;
}

VmshiftVm *
lv_export_vm(KvmBackend *b, const char *vm, GError **error)
{
    LvHost *h = NULL;
    g_autoptr(virDomain) d = lv_locate(b, vm, &h, error);
    if (!d || !lv_require_off(d, "a move to another backend needs it off", error))
        return NULL;
    g_autoptr(xmlDoc) doc = lv_xml(d, VIR_DOMAIN_XML_INACTIVE, error);
    if (!doc)
        return NULL;
    g_autoptr(xmlXPathContext) ctx = vmshift_xpath_new(doc, NULL);
    g_autoptr(VmshiftVm) v = vmshift_vm_new();
    char uuid[VIR_UUID_STRING_BUFLEN];
    v->name = g_strdup(virDomainGetName(d));
    if (virDomainGetUUIDString(d, uuid) == 0)
        v->id = g_strdup(uuid);
    v->host = g_strdup(h->name);
    v->power_state = VMSHIFT_POWER_STOPPED;
    guint64 vcpus = 0, kib = 0;
    if (vmshift_xpath_uint64(ctx, NULL, "/domain/vcpu", &vcpus, NULL))
        v->vcpus = (guint32)vcpus;
    virDomainInfo info;
    if (virDomainGetInfo(d, &info) == 0) {
        kib = info.maxMem;
        if (!v->vcpus)
            v->vcpus = info.nrVirtCpu;
    }
    v->memory = kib * 1024;
    v->snapshot_count = (guint32)MAX(virDomainSnapshotNum(d, 0), 0);
    v->firmware = lv_firmware(ctx);
    v->guest_os = lv_guest_os(ctx);
    if (!lv_export_disks(h, d, ctx, v, error))
        return NULL;
    /* the ids get_vm gives, which --network names */
    lv_describe_nics(ctx, v);
    return g_steal_pointer(&v);
}

/* ---- open_disk: a volume's guest-visible bytes as a GInputStream ------------- */

typedef struct {
    GInputStream parent;
    virStreamPtr st; /* a raw volume's download, or NULL */
    guint64 hole;    /* zeros still to give */
    gboolean eof;
    GInputStream *inner; /* vmshift_disk_read_raw's stream, or NULL */
    char *staged;        /* a staged download removed at close, or NULL */
    GPtrArray *pools;    /* the pools the volume was found through */
    virStorageVolPtr vol;
    char *what;
} LvDiskStream;

typedef struct {
    GInputStreamClass parent_class;
} LvDiskStreamClass;

static GType lv_disk_stream_get_type(void);
G_DEFINE_TYPE(LvDiskStream, lv_disk_stream, G_TYPE_INPUT_STREAM)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(LvDiskStream, g_object_unref)

static gssize
lv_ds_failed(LvDiskStream *s, GError **error)
{
    lv_error(error, VMSHIFT_ERROR_FAILED, "%s: download", s->what);
    if (s->st)
        virStreamAbort(s->st);
    g_clear_pointer(&s->st, virStreamFree);
    s->eof = TRUE;
    return -1;
}

static gssize
lv_ds_read(GInputStream *stream, void *buf, gsize count, GCancellable *c, GError **error)
{
    LvDiskStream *s = (LvDiskStream *)stream;
    if (s->inner)
        return g_input_stream_read(s->inner, buf, count, c, error);
    count = MIN(count, LV_V2V_CHUNK);
    for (;;) {
        if (g_cancellable_set_error_if_cancelled(c, error))
            return -1;
        if (s->hole) {
            gsize n = (gsize)MIN((guint64)count, s->hole);
            memset(buf, 0, n);
            s->hole -= n;
            return (gssize)n;
        }
        if (s->eof || !s->st)
            return 0;
        int n = virStreamRecvFlags(s->st, buf, count, VIR_STREAM_RECV_STOP_AT_HOLE);
        if (n == -3) {
            long long len = 0;
            if (virStreamRecvHole(s->st, &len, 0) < 0)
                return lv_ds_failed(s, error);
            s->hole = (guint64)MAX(len, 0);
            continue;
        }
        if (n < 0)
            return lv_ds_failed(s, error);
        if (n == 0) {
            s->eof = TRUE;
            if (virStreamFinish(s->st) < 0)
                return lv_ds_failed(s, error);
            return 0;
        }
        return n;
    }
}

static void
lv_ds_release(LvDiskStream *s)
{
    if (s->st && !s->eof)
        virStreamAbort(s->st);
    s->eof = TRUE;
    g_clear_pointer(&s->st, virStreamFree);
    if (s->inner) {
        g_input_stream_close(s->inner, NULL, NULL);
        g_clear_object(&s->inner);
    }
    if (s->staged) {
        unlink(s->staged);
        g_clear_pointer(&s->staged, g_free);
    }
}

static gboolean
lv_ds_close(GInputStream *stream, GCancellable *c, GError **error)
{
    (void)c;
    (void)error;
    lv_ds_release((LvDiskStream *)stream);
    return TRUE;
}

static void
lv_ds_finalize(GObject *o)
{
    LvDiskStream *s = (LvDiskStream *)o;
    lv_ds_release(s);
    g_clear_pointer(&s->vol, virStorageVolFree);
    g_clear_pointer(&s->pools, g_ptr_array_unref);
    g_free(s->what);
    G_OBJECT_CLASS(lv_disk_stream_parent_class)->finalize(o);
}

static void
lv_disk_stream_class_init(LvDiskStreamClass *k)
{
    G_OBJECT_CLASS(k)->finalize = lv_ds_finalize;
    G_INPUT_STREAM_CLASS(k)->read_fn = lv_ds_read;
    G_INPUT_STREAM_CLASS(k)->close_fn = lv_ds_close;
}

static void
lv_disk_stream_init(LvDiskStream *s)
{
    (void)s;
}

/* downloads @vol into the new file @path (holes kept); FALSE removes it */
static gboolean
lv_download_file(LvHost *h, virStorageVolPtr vol, const char *path, GCancellable *c, GError **error)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_FAILED, "%s: %s", path, g_strerror(errno));
        return FALSE;
    }
    g_autoptr(virStream) st = virStreamNew(h->conn, 0);
    g_autofree char *buf = g_malloc(LV_V2V_CHUNK);
    off_t off = 0;
    gboolean ok = st
                  && virStorageVolDownload(vol, st, 0, 0, VIR_STORAGE_VOL_DOWNLOAD_SPARSE_STREAM)
                         == 0;
    while (ok) {
        if (g_cancellable_set_error_if_cancelled(c, error)) {
            virStreamAbort(st);
            goto fail;
        }
        int n = virStreamRecvFlags(st, buf, LV_V2V_CHUNK, VIR_STREAM_RECV_STOP_AT_HOLE);
        long long hole = 0;
        if (n == -3) {
            ok = virStreamRecvHole(st, &hole, 0) == 0;
            off += hole;
            continue;
        }
        if (n <= 0) {
            ok = n == 0 && virStreamFinish(st) == 0;
            break;
        }
        if (pwrite(fd, buf, (size_t)n, off) != n) {
            g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_FAILED, "%s: %s", path,
                        g_strerror(errno));
            virStreamAbort(st);
            goto fail;
        }
        off += n;
    }
    if (!ok) {
        lv_error(error, VMSHIFT_ERROR_FAILED, "host %s: downloading %s", h->name,
                 virStorageVolGetName(vol));
        if (st)
            virStreamAbort(st);
        goto fail;
    }
    if (ftruncate(fd, off) != 0 || close(fd) != 0) {
        fd = -1;
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_FAILED, "%s: %s", path, g_strerror(errno));
        goto fail;
    }
    return TRUE;
fail:
    if (fd >= 0)
        close(fd);
    unlink(path);
    return FALSE;
}

/* a non-raw remote volume: staged in $TMPDIR (space checked), read via qemu-nbd */
static gboolean
lv_open_staged(LvDiskStream *s, LvHost *h, const char *fmt, guint64 capacity, GCancellable *c,
               GError **error)
{
    g_autofree char *backing = lv_vol_backing(s->vol);
    if (backing) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_NOT_SUPPORTED,
                    "%s has a backing file on host %s: libvirt's download gives its top layer "
                    "only (flatten it first, e.g. virsh blockpull)",
                    s->what, h->name);
        return FALSE;
    }
    virStorageVolInfo vi;
    struct statvfs fs;
    const char *tmp = g_get_tmp_dir();
    if (virStorageVolGetInfoFlags(s->vol, &vi, VIR_STORAGE_VOL_GET_PHYSICAL) != 0) {
        lv_error(error, VMSHIFT_ERROR_FAILED, "%s: its size", s->what);
        return FALSE;
    }
    if (statvfs(tmp, &fs) != 0
        || (guint64)fs.f_bavail * fs.f_frsize < vi.allocation + LV_STAGE_SPARE) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_NO_SPACE,
                    "%s (%s) must be staged in %s to be read as raw: it needs %" G_GUINT64_FORMAT
                    " bytes and 64 MiB to spare, there are %" G_GUINT64_FORMAT,
                    s->what, fmt, tmp, (guint64)vi.allocation, (guint64)fs.f_bavail * fs.f_frsize);
        return FALSE;
    }
    s->staged = g_build_filename(tmp, "vmshift-stage-XXXXXX", NULL);
    int fd = g_mkstemp(s->staged);
    if (fd < 0 || close(fd) != 0 || unlink(s->staged) != 0) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_FAILED, "%s: %s", s->staged,
                    g_strerror(errno));
        return FALSE;
    }
    if (!lv_download_file(h, s->vol, s->staged, c, error)) {
        g_clear_pointer(&s->staged, g_free);
        return FALSE;
    }
    guint64 got = 0;
    s->inner = vmshift_disk_read_raw(s->staged, fmt, &got, c, error);
    if (s->inner && got != capacity) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_PROTOCOL,
                    "%s: the staged image has %" G_GUINT64_FORMAT
                    " bytes, libvirt said %" G_GUINT64_FORMAT,
                    s->what, got, capacity);
        return FALSE;
    }
    return s->inner != NULL;
}

static gboolean
lv_open_download(LvDiskStream *s, LvHost *h, GError **error)
{
    s->st = virStreamNew(h->conn, 0);
    if (!s->st
        || virStorageVolDownload(s->vol, s->st, 0, 0, VIR_STORAGE_VOL_DOWNLOAD_SPARSE_STREAM)
               != 0) {
        lv_error(error, VMSHIFT_ERROR_FAILED, "host %s: downloading %s", h->name, s->what);
        return FALSE;
    }
    return TRUE;
}

/* the disk @dev of @d: its path and format in the persistent XML */
static gboolean
lv_disk_of(LvHost *h, virDomainPtr d, const char *dev, char **path, char **fmt, GError **error)
{
    g_autoptr(xmlDoc) doc = lv_xml(d, VIR_DOMAIN_XML_INACTIVE, error);
    if (!doc)
        return FALSE;
    g_autoptr(xmlXPathContext) ctx = vmshift_xpath_new(doc, NULL);
    xmlNode *n = lv_xml_disk(ctx, dev);
    g_autofree char *device = n ? vmshift_xpath_string(ctx, n, "@device") : NULL;
    if (!n || g_strcmp0(device, "disk")) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_NOT_FOUND, "VM %s has no disk '%s'",
                    virDomainGetName(d), dev);
        return FALSE;
    }
    *path = lv_disk_path(h, ctx, n);
    *fmt = vmshift_xpath_string(ctx, n, "driver/@type");
    if (!*fmt)
        *fmt = g_strdup("raw");
    if (!*path) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_NOT_SUPPORTED,
                    "VM %s: disk %s has no file libvirt can reach", virDomainGetName(d), dev);
        return FALSE;
    }
    return TRUE;
}

GInputStream *
lv_open_disk(KvmBackend *b, const char *vm, const char *disk_id, GCancellable *cancellable,
             GError **error)
{
    LvHost *h = NULL;
    g_autoptr(virDomain) d = lv_locate(b, vm, &h, error);
    g_autofree char *path = NULL, *fmt = NULL;
    if (!d || !lv_require_off(d, "its disks are read only while it is off", error)
        || !lv_disk_of(h, d, disk_id, &path, &fmt, error))
        return NULL;
    g_autoptr(LvDiskStream) s = g_object_new(lv_disk_stream_get_type(), NULL);
    s->pools = g_ptr_array_new_with_free_func((GDestroyNotify)lv_pool_free);
    s->what = g_strdup_printf("VM %s disk %s (%s:%s)", virDomainGetName(d), disk_id, h->name, path);
    s->vol = lv_v2v_vol(s->pools, h, path, error);
    virStorageVolInfo vi;
    if (!s->vol)
        return NULL;
    if (virStorageVolGetInfo(s->vol, &vi) != 0) {
        lv_error(error, VMSHIFT_ERROR_FAILED, "%s: its size", s->what);
        return NULL;
    }
    if (lv_vol_is_local(s->vol, path)) {
        s->inner = vmshift_disk_read_raw(path, fmt, NULL, cancellable, error);
        if (!s->inner)
            return NULL;
    } else if (!strcmp(fmt, "raw")) {
        if (!lv_open_download(s, h, error))
            return NULL;
    } else if (!lv_open_staged(s, h, fmt, vi.capacity, cancellable, error)) {
        return NULL;
    }
    return G_INPUT_STREAM(g_steal_pointer(&s));
}
