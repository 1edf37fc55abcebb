/* vmshift KVM plugin, libvirt transport: a VM from another backend
 * (check_import, import_vm) and the ends of a move between backends
 * (remove_vm, start_vm). See kvm-lv-v2v.c for how the bytes travel.
 */
#include "config.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "kvm-lv.h"

/* ---- the destination: where the disks go, how the devices map --------------- */

/* the destination host: --to BACKEND:HOST, or the backend's only host */
static LvHost *
lv_dest_host(KvmBackend *b, const VmshiftMigrationSpec *spec, GError **error)
{
    if (spec->dest_host)
        return lv_find_host(b, spec->dest_host, error);
    if (b->lv->hosts->len == 1)
        return b->lv->hosts->pdata[0];
    g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_INVALID_ARGUMENT,
                "kvm[%s] has several hosts: name one with --to %s:HOST", b->name, b->name);
    return NULL;
}

/* The directory disk @id goes to on @h: its --disk-path or --path, a
 * directory or the name of a directory pool; by default the pool "default",
 * else /var/lib/libvirt/images. NULL with @error and the finding @code. */
static char *
lv_dest_dir(LvHost *h, const VmshiftMigrationSpec *spec, const char *id, const char **code,
            GError **error)
{
    const char *v = vmshift_migration_spec_disk_dir(spec, id);
    if (v && v[0] == '/')
        return g_strdup(v);
    g_autoptr(virStoragePool) pool = virStoragePoolLookupByName(h->conn, v ? v : "default");
    if (!pool) {
        virResetLastError();
        if (!v)
            return g_strdup("/var/lib/libvirt/images");
        *code = VMSHIFT_FINDING_PATH_NOT_FOUND;
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_NOT_FOUND,
                    "host %s has no storage pool or directory '%s' (a directory is an absolute "
                    "path)",
                    h->name, v);
        return NULL;
    }
    g_autofree char *x = virStoragePoolGetXMLDesc(pool, 0);
    g_autoptr(xmlDoc) doc = x ? vmshift_xml_parse(x, strlen(x), "libvirt pool XML", NULL) : NULL;
    g_autoptr(xmlXPathContext) ctx = doc ? vmshift_xpath_new(doc, NULL) : NULL;
    g_autofree char *type = ctx ? vmshift_xpath_string(ctx, NULL, "/pool/@type") : NULL;
    g_autofree char *dir = ctx ? vmshift_xpath_string(ctx, NULL, "/pool/target/path") : NULL;
    if (!dir || !type || (strcmp(type, "dir") && strcmp(type, "fs") && strcmp(type, "netfs"))) {
        *code = VMSHIFT_FINDING_VOLUME_UNAVAILABLE;
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_NOT_SUPPORTED,
                    "host %s: storage pool '%s' is not a directory pool (dir, fs, netfs)", h->name,
                    virStoragePoolGetName(pool));
        return NULL;
    }
    if (virStoragePoolIsActive(pool) != 1) {
        *code = VMSHIFT_FINDING_VOLUME_UNAVAILABLE;
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_CONFLICT,
                    "host %s: storage pool '%s' is not active", h->name,
                    virStoragePoolGetName(pool));
        return NULL;
    }
    return g_steal_pointer(&dir);
}

/* the libvirt bus for neutral @bus (IDE needs i440fx: UEFI gets q35) */
static const char *
lv_map_bus(const char *bus, gboolean uefi)
{
    if (!bus)
        return "virtio";
    if (!strcmp(bus, "virtio") || !strcmp(bus, "sata") || !strcmp(bus, "scsi"))
        return bus;
    if (!strcmp(bus, "ide") && !uefi)
        return "ide";
    return "sata"; /* nvme (no NVMe disks in this libvirt), ide on q35 */
}

static const char *
lv_map_model(const char *model, const char *guest_os)
{
    static const char *const kept[] = { "virtio",  "e1000",    "e1000e", "rtl8139",
                                        "vmxnet3", "ne2k_pci", "pcnet" };
    if (!model || g_str_has_prefix(model, "virtio"))
        return "virtio";
    for (guint i = 0; i < G_N_ELEMENTS(kept); i++)
        if (!strcmp(model, kept[i]))
            return kept[i];
    /* a device QEMU lacks (Hyper-V synthetic, ...): one the guest likely drives */
    return !g_strcmp0(guest_os, "linux") ? "virtio" : "e1000";
}

/* a unicast MAC libvirt accepts */
static gboolean
lv_mac_ok(const char *mac)
{
    if (!mac || strlen(mac) != 17)
        return FALSE;
    for (int i = 0; i < 17; i++)
        if (i % 3 == 2 ? mac[i] != ':' : !g_ascii_isxdigit(mac[i]))
            return FALSE;
    return (g_ascii_xdigit_value(mac[1]) & 1) == 0 && strcmp(mac, "00:00:00:00:00:00");
}

/* whether the guest already uses virtio devices (a KVM guest) */
static gboolean
lv_src_has_virtio(const VmshiftVm *sv)
{
    for (guint i = 0; i < sv->disks->len; i++)
        if (!g_strcmp0(((VmshiftDisk *)sv->disks->pdata[i])->bus, "virtio"))
            return TRUE;
    for (guint i = 0; i < sv->nics->len; i++) {
        const char *m = ((VmshiftNic *)sv->nics->pdata[i])->model;
        if (m && g_str_has_prefix(m, "virtio"))
            return TRUE;
    }
    return FALSE;
}

/* the destination's view of the firmware: FALSE when UEFI is wanted but
 * the host's libvirt offers no EFI firmware */
static gboolean
lv_host_has_efi(LvHost *h)
{
    g_autofree char *caps = virConnectGetDomainCapabilities(h->conn, NULL, "x86_64", NULL, NULL, 0);
    if (!caps) {
        virResetLastError();
        return FALSE;
    }
    return strstr(caps, "<value>efi</value>") != NULL;
}

/* "a".."z", "aa".. */
static char *
lv_dev_name(const char *prefix, guint n)
{
    if (n < 26)
        return g_strdup_printf("%s%c", prefix, 'a' + n);
    return g_strdup_printf("%s%c%c", prefix, 'a' + (n / 26) - 1, 'a' + n % 26);
}

/* one disk being imported */
typedef struct {
    const VmshiftDisk *src;
    char *dir, *path, *stage; /* the qcow2 image; the raw staging volume (remote) */
    char *dev;
    const char *bus;
    guint boot; /* its <boot order>, or 0 */
    gboolean created;
} LvImp;

static void
lv_imp_free(LvImp *m)
{
    g_free(m->dir);
    g_free(m->path);
    g_free(m->stage);
    g_free(m->dev);
    g_free(m);
}

/* file names: NAME-ID.qcow2 with the id made safe for a file name */
static char *
lv_safe(const char *s)
{
    char *r = g_strdup(s ? s : "disk");
    for (char *p = r; *p; p++)
        if (!g_ascii_isalnum(*p) && *p != '-' && *p != '_' && *p != '.')
            *p = '_';
    return r;
}

/* the plan: each disk of @sv, its file and device, in the source's order */
static GPtrArray *
lv_import_plan(LvHost *h, const VmshiftMigrationSpec *spec, const VmshiftVm *sv, const char **code,
               GError **error)
{
    g_autoptr(GPtrArray) plan = g_ptr_array_new_with_free_func((GDestroyNotify)lv_imp_free);
    gboolean uefi = sv->firmware == VMSHIFT_FIRMWARE_UEFI;
    guint nvd = 0, nsd = 0, nhd = 0, rank = 0;
    g_autofree char *name = lv_safe(sv->name);
    for (guint i = 0; i < sv->disks->len; i++) {
        LvImp *m = g_new0(LvImp, 1);
        g_ptr_array_add(plan, m);
        m->src = sv->disks->pdata[i];
        m->dir = lv_dest_dir(h, spec, m->src->id, code, error);
        if (!m->dir)
            return NULL;
        g_autofree char *id = lv_safe(m->src->id);
        g_autofree char *base = g_strdup_printf("%s-%s.qcow2", name, id);
        m->path = g_build_filename(m->dir, base, NULL);
        m->stage = g_strdup_printf("%s.vmshift-raw", m->path);
        m->bus = lv_map_bus(m->src->bus, uefi);
        if (!strcmp(m->bus, "virtio"))
            m->dev = lv_dev_name("vd", nvd++);
        else if (!strcmp(m->bus, "ide"))
            m->dev = lv_dev_name("hd", nhd++);
        else
            m->dev = lv_dev_name("sd", nsd++);
    }
    /* boot orders made unique, in the source's order of preference */
    for (guint o = 1; o <= 64; o++)
        for (guint i = 0; i < plan->len; i++) {
            LvImp *m = plan->pdata[i];
            if (m->src->boot_order == o)
                m->boot = ++rank;
        }
    return g_steal_pointer(&plan);
}

/* ---- check_import ------------------------------------------------------------ */

static void
lv_find(GPtrArray *f, VmshiftSeverity sev, const char *code, const char *subject, const char *msg)
{
    g_ptr_array_add(f, vmshift_finding_new(sev, code, subject, "%s", msg));
}

/* the VM's name on every host of the backend (names find VMs here) */
static void
lv_check_name(KvmBackend *b, const VmshiftVm *sv, GPtrArray *f)
{
    for (guint i = 0; i < b->lv->hosts->len; i++) {
        LvHost *o = b->lv->hosts->pdata[i];
        g_autoptr(virDomain) d = virDomainLookupByName(o->conn, sv->name);
        virResetLastError();
        if (d) {
            g_autofree char *m = g_strdup_printf("host %s already has a VM named %s", o->name,
                                                 sv->name);
            lv_find(f, VMSHIFT_SEVERITY_ERROR, VMSHIFT_FINDING_NAME_TAKEN, sv->name, m);
        }
    }
}

/* free space of directory @dir's pool on @h for @need bytes (a directory
 * without a pool is measured through a transient one, gone again at once) */
static void
lv_check_space(LvHost *h, const char *dir, guint64 need, GPtrArray *f)
{
    g_autoptr(GPtrArray) pools = g_ptr_array_new_with_free_func((GDestroyNotify)lv_pool_free);
    g_autoptr(GError) e = NULL;
    virStoragePoolPtr pool = lv_pool(pools, h, dir, FALSE, &e);
    /* a directory the import will make: its nearest existing ancestor */
    g_autofree char *up = g_path_get_dirname(dir);
    while (!pool && strcmp(up, "/") && strcmp(up, ".")) {
        virResetLastError();
        pool = lv_pool(pools, h, up, FALSE, NULL);
        char *next = g_path_get_dirname(up);
        g_free(up);
        up = next;
    }
    virStoragePoolInfo pi;
    if (!pool || virStoragePoolGetInfo(pool, &pi) != 0) {
        virResetLastError();
        g_autofree char *m = g_strdup_printf("host %s: the free space of %s is not known (%s)",
                                             h->name, dir,
                                             e ? e->message : "no answer from libvirt");
        lv_find(f, VMSHIFT_SEVERITY_WARNING, VMSHIFT_FINDING_SPACE_UNKNOWN, dir, m);
        return;
    }
    if (pi.available < need) {
        g_autofree char *m = g_strdup_printf(
            "host %s: pool %s (%s) has %llu bytes free, the disks need %" G_GUINT64_FORMAT, h->name,
            virStoragePoolGetName(pool), dir, pi.available, need);
        lv_find(f, VMSHIFT_SEVERITY_ERROR, VMSHIFT_FINDING_NO_SPACE, dir, m);
    }
}

static void
lv_check_disks(LvHost *h, GPtrArray *plan, const VmshiftVm *sv, GPtrArray *f)
{
    g_autoptr(GHashTable) need = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, g_free);
    for (guint i = 0; i < plan->len; i++) {
        LvImp *m = plan->pdata[i];
        const char *id = m->src->id;
        gboolean known = m->src->size_known ? (m->src->size_known & VMSHIFT_DISK_CAPACITY_KNOWN)
                                            : m->src->capacity > 0;
        if (!known) {
            g_autofree char *t = g_strdup_printf("disk %s of %s: its size is not known", id,
                                                 sv->name);
            lv_find(f, VMSHIFT_SEVERITY_WARNING, VMSHIFT_FINDING_DISK_SIZE_UNKNOWN, id, t);
        }
        guint64 *n = g_hash_table_lookup(need, m->dir);
        if (!n) {
            n = g_new0(guint64, 1);
            g_hash_table_insert(need, m->dir, n);
        }
        /* the image holds the data the source stores (holes stay holes),
         * at most the capacity, plus qcow2's metadata */
        gboolean alloc = (m->src->size_known & VMSHIFT_DISK_ALLOCATION_KNOWN)
                         && m->src->allocation > 0;
        guint64 data = alloc ? MIN(m->src->allocation, m->src->capacity) : m->src->capacity;
        *n += data + m->src->capacity / 512 + 1024 * 1024;
        if (g_strcmp0(m->src->bus, m->bus)) {
            g_autofree char *t = g_strdup_printf("disk %s: bus %s becomes %s on KVM (%s)", id,
                                                 m->src->bus ? m->src->bus : "(unknown)", m->bus,
                                                 m->dev);
            lv_find(f, VMSHIFT_SEVERITY_WARNING, VMSHIFT_FINDING_BUS_REMAPPED, id, t);
        }
        g_autoptr(virStorageVol) v = virStorageVolLookupByPath(h->conn, m->path);
        virResetLastError();
        if (v) {
            g_autofree char *t = g_strdup_printf("host %s already has %s: not overwritten", h->name,
                                                 m->path);
            lv_find(f, VMSHIFT_SEVERITY_ERROR, VMSHIFT_FINDING_NAME_TAKEN, id, t);
        }
    }
    GHashTableIter it;
    gpointer k, v;
    g_hash_table_iter_init(&it, need);
    while (g_hash_table_iter_next(&it, &k, &v))
        lv_check_space(h, k, *(guint64 *)v, f);
}

static void
lv_check_nics(LvHost *h, const VmshiftVm *sv, GPtrArray *f)
{
    for (guint i = 0; i < sv->nics->len; i++) {
        const VmshiftNic *n = sv->nics->pdata[i];
        g_autofree char *t = NULL;
        if (!n->network) {
            t = g_strdup_printf("NIC %s is not connected: map it with --network %s=NET", n->id,
                                n->id);
            lv_find(f, VMSHIFT_SEVERITY_ERROR, VMSHIFT_FINDING_NETWORK_MISSING, n->id, t);
            continue;
        }
        g_autoptr(virNetwork) net = virNetworkLookupByName(h->conn, n->network);
        virResetLastError();
        if (!net) {
            t = g_strdup_printf("NIC %s: host %s has no libvirt network '%s' (map it with "
                                "--network %s=NET)",
                                n->id, h->name, n->network, n->id);
            lv_find(f, VMSHIFT_SEVERITY_ERROR, VMSHIFT_FINDING_NETWORK_MISSING, n->id, t);
            continue;
        }
        if (virNetworkIsActive(net) != 1) {
            t = g_strdup_printf("NIC %s: network %s is not active on host %s", n->id, n->network,
                                h->name);
            lv_find(f, VMSHIFT_SEVERITY_ERROR, VMSHIFT_FINDING_NETWORK_UNUSABLE, n->id, t);
        }
        g_clear_pointer(&t, g_free);
        if (!lv_mac_ok(n->mac)) {
            t = g_strdup_printf("NIC %s: MAC %s cannot be kept on KVM: libvirt makes a new one",
                                n->id, n->mac ? n->mac : "(none)");
            lv_find(f, VMSHIFT_SEVERITY_WARNING, VMSHIFT_FINDING_MAC_NOT_KEPT, n->id, t);
        }
        g_clear_pointer(&t, g_free);
        const char *model = lv_map_model(n->model, sv->guest_os);
        if (n->model && strcmp(n->model, model) && !g_str_has_prefix(n->model, "virtio")) {
            t = g_strdup_printf("NIC %s: model %s becomes %s on KVM", n->id, n->model, model);
            lv_find(f, VMSHIFT_SEVERITY_WARNING, VMSHIFT_FINDING_NIC_MODEL_CHANGED, n->id, t);
        }
    }
}

/* whether the imported VM will have a virtio device */
static gboolean
lv_plan_has_virtio(GPtrArray *plan, const VmshiftVm *sv)
{
    for (guint i = 0; i < plan->len; i++) {
        const char *bus = ((LvImp *)plan->pdata[i])->bus;
        if (!strcmp(bus, "virtio") || !strcmp(bus, "scsi")) /* virtio-scsi */
            return TRUE;
    }
    for (guint i = 0; i < sv->nics->len; i++) {
        const VmshiftNic *n = sv->nics->pdata[i];
        if (!strcmp(lv_map_model(n->model, sv->guest_os), "virtio"))
            return TRUE;
    }
    return FALSE;
}

static void
lv_check_firmware(LvHost *h, const VmshiftVm *sv, GPtrArray *f)
{
    g_autofree char *t = NULL;
    if (sv->firmware == VMSHIFT_FIRMWARE_UEFI && !lv_host_has_efi(h)) {
        t = g_strdup_printf("%s boots with UEFI and host %s offers no EFI firmware (install "
                            "ovmf)",
                            sv->name, h->name);
        lv_find(f, VMSHIFT_SEVERITY_ERROR, VMSHIFT_FINDING_FIRMWARE_UNSUPPORTED, sv->name, t);
    } else if (sv->firmware == VMSHIFT_FIRMWARE_UNKNOWN) {
        t = g_strdup_printf("the source does not say how %s boots: it gets BIOS on KVM", sv->name);
        lv_find(f, VMSHIFT_SEVERITY_WARNING, VMSHIFT_FINDING_FIRMWARE_UNKNOWN, sv->name, t);
    }
}

GPtrArray *
lv_check_import(KvmBackend *b, const VmshiftMigrationSpec *spec, GError **error)
{
    const VmshiftVm *sv = VMSHIFT_HAS_FIELD(spec, source_vm) ? spec->source_vm : NULL;
    if (!sv || !sv->name) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_INVALID_ARGUMENT,
                    "kvm[%s]: check_import without the source VM's description", b->name);
        return NULL;
    }
    g_autoptr(GPtrArray) f = vmshift_list_new((GDestroyNotify)vmshift_finding_free);
    g_autoptr(GError) e = NULL;
    LvHost *h = lv_dest_host(b, spec, &e);
    if (!h) {
        lv_find(f, VMSHIFT_SEVERITY_ERROR, VMSHIFT_FINDING_HOST_NOT_FOUND, spec->dest_host,
                e->message);
        return g_steal_pointer(&f);
    }
    lv_check_name(b, sv, f);
    lv_check_firmware(h, sv, f);
    const char *code = NULL;
    g_autoptr(GPtrArray) plan = lv_import_plan(h, spec, sv, &code, &e);
    if (!plan)
        lv_find(f, VMSHIFT_SEVERITY_ERROR, code ? code : VMSHIFT_FINDING_PATH_NOT_FOUND,
                spec->dest_path, e->message);
    else
        lv_check_disks(h, plan, sv, f);
    lv_check_nics(h, sv, f);
    if (plan && lv_plan_has_virtio(plan, sv) && !lv_src_has_virtio(sv)) {
        g_autofree char *t = g_strdup_printf(
            "%s gets virtio devices on KVM: the guest needs virtio drivers (%s--convert-guest "
            "installs them)",
            sv->name, !g_strcmp0(sv->guest_os, "linux") ? "most Linux kernels have them; " : "");
        lv_find(f, VMSHIFT_SEVERITY_WARNING, VMSHIFT_FINDING_GUEST_DRIVERS, sv->name, t);
    }
    return g_steal_pointer(&f);
}

/* ---- import_vm ----------------------------------------------------------------- */

/* the domain XML of @sv on @h with the disks of @plan */
static char *
lv_import_xml(LvHost *h, const VmshiftVm *sv, GPtrArray *plan, const char *uuid)
{
    g_autofree char *caps = virConnectGetCapabilities(h->conn);
    gboolean kvm = caps && strstr(caps, "<domain type='kvm'");
    gboolean uefi = sv->firmware == VMSHIFT_FIRMWARE_UEFI,
             win = !g_strcmp0(sv->guest_os, "windows");
    gboolean scsi = FALSE, perdev = FALSE;
    g_autofree char *en = vmshift_xml_escape(sv->name);
    GString *x = g_string_new(NULL);
    for (guint i = 0; i < plan->len; i++) {
        LvImp *m = plan->pdata[i];
        scsi |= !strcmp(m->bus, "scsi");
        perdev |= m->boot > 0;
    }
    g_string_append_printf(x, "<domain type='%s'>\n  <name>%s</name>\n  <uuid>%s</uuid>\n",
                           kvm ? "kvm" : "qemu", en, uuid);
    g_string_append_printf(x, "  <memory unit='KiB'>%" G_GUINT64_FORMAT "</memory>\n",
                           MAX(sv->memory / 1024, 1024));
    g_string_append_printf(x, "  <vcpu>%u</vcpu>\n", MAX(sv->vcpus, 1));
    g_string_append_printf(x, "  <os%s><type arch='x86_64'%s>hvm</type>%s</os>\n",
                           uefi ? " firmware='efi'" : "", uefi ? " machine='q35'" : "",
                           perdev ? "" : "<boot dev='hd'/>");
    g_string_append_printf(x,
                           "  <features><acpi/><apic/></features>\n  <clock offset='%s'/>\n"
                           "  <devices>\n",
                           win ? "localtime" : "utc");
    for (guint i = 0; i < plan->len; i++) {
        LvImp *m = plan->pdata[i];
        g_autofree char *ep = vmshift_xml_escape(m->path);
        g_autofree char *boot = m->boot ? g_strdup_printf("<boot order='%u'/>", m->boot)
                                        : g_strdup("");
        g_string_append_printf(x,
                               "    <disk type='file' device='disk'><driver name='qemu' "
                               "type='qcow2'/><source file='%s'/><target dev='%s' bus='%s'/>"
                               "%s</disk>\n",
                               ep, m->dev, m->bus, boot);
    }
    if (scsi)
        g_string_append(x, "    <controller type='scsi' model='virtio-scsi'/>\n");
    for (guint i = 0; i < sv->nics->len; i++) {
        const VmshiftNic *n = sv->nics->pdata[i];
        g_autofree char *net = vmshift_xml_escape(n->network ? n->network : "default");
        g_autofree char *mac = lv_mac_ok(n->mac) ? g_strdup_printf("<mac address='%s'/>", n->mac)
                                                 : g_strdup("");
        g_string_append_printf(x,
                               "    <interface type='network'>%s<source network='%s'/>"
                               "<model type='%s'/></interface>\n",
                               mac, net, lv_map_model(n->model, sv->guest_os));
    }
    g_string_append(x, "    <serial type='pty'/><console type='pty'/>\n  </devices>\n"
                       "</domain>\n");
    return g_string_free(x, FALSE);
}

/* the raw stream @in (exactly @cap bytes) into volume @v: sparse upload */
static gboolean
lv_upload(LvHost *h, virStorageVolPtr v, GInputStream *in, guint64 cap, const char *what,
          VmshiftJob *job, guint64 *done, guint64 total, GError **error)
{
    GCancellable *c = vmshift_job_get_cancellable(job);
    g_autoptr(virStream) st = virStreamNew(h->conn, 0);
    if (!st || virStorageVolUpload(v, st, 0, 0, VIR_STORAGE_VOL_UPLOAD_SPARSE_STREAM) != 0) {
        lv_error(error, VMSHIFT_ERROR_FAILED, "%s: upload to host %s", what, h->name);
        return FALSE;
    }
    g_autofree char *buf = g_malloc(1024 * 1024);
    guint64 got = 0;
    for (;;) {
        gsize n = 0;
        if (!g_input_stream_read_all(in, buf, 1024 * 1024, &n, c, error))
            goto fail;
        if (n == 0)
            break;
        got += n;
        if (got > cap)
            break;
        gboolean zero = buf[0] == 0 && memcmp(buf, buf + 1, n - 1) == 0;
        int r = zero ? virStreamSendHole(st, (long long)n, 0) : 0;
        for (gsize off = 0; !zero && off < n && r >= 0; off += (gsize)r)
            r = virStreamSend(st, buf + off, n - off);
        if (r < 0) {
            lv_error(error, VMSHIFT_ERROR_FAILED, "%s: upload to host %s", what, h->name);
            goto fail;
        }
        *done += n;
        vmshift_job_set_bytes(job, *done, total);
    }
    if (got != cap) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_PROTOCOL,
                    "%s: the source gave %s%" G_GUINT64_FORMAT
                    " bytes, the disk has %" G_GUINT64_FORMAT,
                    what, got > cap ? "more than " : "", got, cap);
        goto fail;
    }
    if (virStreamFinish(st) != 0) {
        lv_error(error, VMSHIFT_ERROR_FAILED, "%s: upload to host %s", what, h->name);
        return FALSE;
    }
    return TRUE;
fail:
    virStreamAbort(st);
    return FALSE;
}

/* a remote pool: the raw bytes into a staging volume, which the host's
 * libvirt converts into the qcow2 volume (qemu-img convert there) */
static gboolean
lv_import_remote(LvHost *h, virStoragePoolPtr pool, LvImp *m, GInputStream *in, guint64 cap,
                 VmshiftJob *job, guint64 *done, guint64 total, GError **error)
{
    virStoragePoolInfo pi;
    guint64 need = (m->src->allocation ? m->src->allocation : cap) * 2 + 1024 * 1024;
    if (virStoragePoolRefresh(pool, 0) == 0 && virStoragePoolGetInfo(pool, &pi) == 0
        && pi.available < need) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_NO_SPACE,
                    "host %s: pool %s has %llu bytes free; disk %s needs %" G_GUINT64_FORMAT
                    " (a raw staging copy and its qcow2 conversion)",
                    h->name, virStoragePoolGetName(pool), pi.available, m->src->id, need);
        return FALSE;
    }
    g_autoptr(virStorageVol) raw = lv_vol_create(pool, m->stage, cap, "raw", "");
    if (!raw) {
        lv_error(error, VMSHIFT_ERROR_FAILED, "host %s: creating %s", h->name, m->stage);
        return FALSE;
    }
    if (!lv_upload(h, raw, in, cap, m->stage, job, done, total, error))
        return FALSE;
    g_autofree char *base = g_path_get_basename(m->path);
    g_autofree char *eb = vmshift_xml_escape(base);
    g_autofree char *vx = g_strdup_printf(
        "<volume><name>%s</name><capacity unit='bytes'>%" G_GUINT64_FORMAT
        "</capacity><target><format "
        "type='qcow2'/></target></volume>",
        eb, cap);
    vmshift_job_log(job, VMSHIFT_LOG_INFO, "host %s: converting %s to qcow2", h->name, m->stage);
    g_autoptr(virStorageVol) q = virStorageVolCreateXMLFrom(pool, vx, raw, 0);
    if (!q) {
        lv_error(error, VMSHIFT_ERROR_FAILED, "host %s: converting %s into %s", h->name, m->stage,
                 m->path);
        return FALSE;
    }
    if (virStorageVolDelete(raw, 0) != 0)
        vmshift_job_log(job, VMSHIFT_LOG_WARNING, "host %s: %s stays: %s", h->name, m->stage,
                        virGetLastErrorMessage());
    return TRUE;
}

/* disk @m from the source into its qcow2 volume on @h */
static gboolean
lv_import_disk(LvHost *h, GPtrArray *pools, LvImp *m, VmshiftJob *job, guint64 *done, guint64 total,
               GError **error)
{
    guint64 cap = 0;
    g_autoptr(GInputStream) in = vmshift_job_open_source_disk(job, m->src->id, &cap, error);
    if (!in)
        return FALSE;
    virStoragePoolPtr pool = lv_pool(pools, h, m->dir, TRUE, error);
    if (!pool)
        return FALSE;
    m->created = TRUE;
    g_autoptr(virStorageVol) v = lv_vol_create(pool, m->path, cap, "qcow2", "");
    if (!v) {
        lv_error(error, VMSHIFT_ERROR_FAILED, "host %s: creating %s", h->name, m->path);
        return FALSE;
    }
    if (!lv_vol_is_local(v, m->path)) {
        if (virStorageVolDelete(v, 0) != 0) {
            lv_error(error, VMSHIFT_ERROR_FAILED, "host %s: %s", h->name, m->path);
            return FALSE;
        }
        return lv_import_remote(h, pool, m, in, cap, job, done, total, error);
    }
    /* the same file here: written through qemu-nbd, libvirt told afterwards */
    if (unlink(m->path) != 0) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_FAILED, "%s: %s", m->path,
                    g_strerror(errno));
        return FALSE;
    }
    gboolean ok = vmshift_disk_write_raw(in, cap, m->path, "qcow2", job,
                                         vmshift_job_get_cancellable(job), error);
    virStoragePoolRefresh(pool, 0);
    *done += cap;
    return ok;
}

/* journals what the import will make, before it makes it */
static gboolean
lv_import_save(KvmBackend *b, LvHost *h, const VmshiftVm *sv, GPtrArray *plan, const char *uuid,
               VmshiftJob *job, GError **error)
{
    GString *vols = g_string_new(NULL);
    for (guint i = 0; i < plan->len; i++) {
        LvImp *m = plan->pdata[i];
        g_string_append_printf(vols, "%s%s;%s", i ? ";" : "", m->path, m->stage);
    }
    g_autofree char *v = g_string_free(vols, FALSE);
    return vmshift_job_save(job, "v2v-backend", b->name, error)
           && vmshift_job_save(job, "v2v-host", h->name, error)
           && vmshift_job_save(job, "v2v-name", sv->name, error)
           && vmshift_job_save(job, "v2v-uuid", uuid, error)
           && vmshift_job_save(job, "v2v-vols", v, error);
}

static void
lv_import_rollback(VmshiftJob *job, LvHost *h, GPtrArray *pools, GPtrArray *plan)
{
    for (guint i = 0; plan && i < plan->len; i++) {
        LvImp *m = plan->pdata[i];
        g_autoptr(GError) e = NULL;
        if (!m->created)
            continue;
        if (!lv_vol_delete(pools, h, m->stage, &e) || !lv_vol_delete(pools, h, m->path, &e))
            vmshift_job_log(job, VMSHIFT_LOG_WARNING, "%s", e->message);
        else
            vmshift_job_log(job, VMSHIFT_LOG_INFO, "removed %s:%s", h->name, m->path);
    }
    lv_pools_unbuild(pools, h);
    lv_save_rolled_back(job);
}

/* FALSE with a conflict error when @h has a file @path (no directory made) */
static gboolean
lv_file_absent(GPtrArray *pools, LvHost *h, const char *path, GError **error)
{
    g_autoptr(GError) e = NULL;
    g_autoptr(virStorageVol) v = virStorageVolLookupByPath(h->conn, path);
    virResetLastError();
    if (!v)
        v = lv_vol(pools, h, path, FALSE, &e);
    if (!v)
        return TRUE;
    g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_CONFLICT,
                "%s already exists on host %s: not overwritten", path, h->name);
    return FALSE;
}

static gboolean
lv_import_check(KvmBackend *b, const VmshiftVm *sv, GError **error)
{
    if (!sv || !sv->name || !*sv->name) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_INVALID_ARGUMENT,
                    "kvm[%s]: import without the source VM's description", b->name);
        return FALSE;
    }
    for (guint i = 0; i < b->lv->hosts->len; i++) {
        LvHost *o = b->lv->hosts->pdata[i];
        g_autoptr(virDomain) d = virDomainLookupByName(o->conn, sv->name);
        virResetLastError();
        if (d) {
            g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_CONFLICT,
                        "host %s already has a VM named %s: not imported", o->name, sv->name);
            return FALSE;
        }
    }
    return TRUE;
}

gboolean
lv_import_vm(KvmBackend *b, const VmshiftMigrationSpec *spec, VmshiftJob *job, GError **error)
{
    const VmshiftVm *sv = VMSHIFT_HAS_FIELD(spec, source_vm) ? spec->source_vm : NULL;
    const char *code = NULL;
    LvHost *h = NULL;
    g_autoptr(GPtrArray) plan = NULL;
    if (!lv_import_check(b, sv, error) || !(h = lv_dest_host(b, spec, error))
        || !(plan = lv_import_plan(h, spec, sv, &code, error)))
        return FALSE;
    g_autofree char *uuid = g_uuid_string_random();
    g_autoptr(GPtrArray) pools = g_ptr_array_new_with_free_func((GDestroyNotify)lv_pool_free);
    guint64 total = 0, done = 0;
    for (guint i = 0; i < plan->len; i++) {
        LvImp *m = plan->pdata[i];
        total += m->src->capacity;
        /* an existing file is never overwritten (nor journaled, nor removed) */
        if (!lv_file_absent(pools, h, m->path, error) || !lv_file_absent(pools, h, m->stage, error))
            return FALSE;
    }
    if (!lv_import_save(b, h, sv, plan, uuid, job, error))
        return FALSE;
    for (guint i = 0; i < plan->len; i++) {
        LvImp *m = plan->pdata[i];
        vmshift_job_log(job, VMSHIFT_LOG_INFO, "disk %s -> %s:%s (%s)", m->src->id, h->name,
                        m->path, m->dev);
        if (!lv_import_disk(h, pools, m, job, &done, total, error)) {
            lv_import_rollback(job, h, pools, plan);
            return FALSE;
        }
    }
    g_autofree char *xml = lv_import_xml(h, sv, plan, uuid);
    g_autoptr(virDomain) d = virDomainDefineXML(h->conn, xml);
    if (!d) {
        lv_error(error, VMSHIFT_ERROR_FAILED, "host %s: defining %s", h->name, sv->name);
        lv_import_rollback(job, h, pools, plan);
        return FALSE;
    }
    vmshift_job_set_bytes(job, total, total);
    vmshift_job_set_location(job, h->name, "defined, shut off");
    vmshift_job_log(job, VMSHIFT_LOG_INFO, "defined %s on host %s (uuid %s)", sv->name, h->name,
                    uuid);
    return TRUE;
}

/* ---- remove_vm, start_vm ---------------------------------------------------- */

/* undefines @d (NVRAM, managed save and metadata too) and removes its file
 * disks (not their backing files, which others may share) */
static gboolean
lv_remove_domain(LvHost *h, virDomainPtr d, GPtrArray *pools, VmshiftJob *job, GError **error)
{
    const char *name = virDomainGetName(d);
    if (!lv_require_off(d, "a running VM is not removed", error))
        return FALSE;
    g_autoptr(xmlDoc) doc = lv_xml(d, VIR_DOMAIN_XML_INACTIVE, error);
    if (!doc)
        return FALSE;
    g_autoptr(xmlXPathContext) ctx = vmshift_xpath_new(doc, NULL);
    g_autoptr(GPtrArray) disks = vmshift_xpath_nodes(
        ctx, NULL, "/domain/devices/disk[@device='disk'][@type='file' or @type='volume']");
    g_autoptr(GPtrArray) paths = g_ptr_array_new_with_free_func(g_free);
    for (guint i = 0; i < disks->len; i++) {
        char *p = lv_disk_path(h, ctx, disks->pdata[i]);
        if (p)
            g_ptr_array_add(paths, p);
    }
    if (virDomainUndefineFlags(d, VIR_DOMAIN_UNDEFINE_NVRAM | VIR_DOMAIN_UNDEFINE_MANAGED_SAVE
                                      | VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA
                                      | VIR_DOMAIN_UNDEFINE_CHECKPOINTS_METADATA)
        != 0) {
        lv_error(error, VMSHIFT_ERROR_FAILED, "host %s: undefining %s", h->name, name);
        return FALSE;
    }
    if (job)
        vmshift_job_log(job, VMSHIFT_LOG_INFO, "undefined %s on host %s", name, h->name);
    gboolean ok = TRUE;
    for (guint i = 0; i < paths->len; i++) {
        const char *p = paths->pdata[i];
        g_autoptr(virStorageVol) v = virStorageVolLookupByPath(h->conn, p);
        virResetLastError();
        if (v ? virStorageVolDelete(v, 0) != 0 : !lv_vol_delete(pools, h, p, error)) {
            if (v)
                lv_error(error, VMSHIFT_ERROR_FAILED, "host %s: removing %s", h->name, p);
            ok = FALSE;
            break;
        }
        if (job)
            vmshift_job_log(job, VMSHIFT_LOG_INFO, "removed %s:%s", h->name, p);
    }
    return ok;
}

/* a job whose import on this backend saved what it made: that, and only
 * that (the domain only when its UUID is the one the import gave it) */
static gboolean
lv_remove_imported(KvmBackend *b, VmshiftJob *job, GError **error)
{
    g_autofree char *host = vmshift_job_get_saved(job, "v2v-host");
    g_autofree char *uuid = vmshift_job_get_saved(job, "v2v-uuid");
    LvHost *h = host ? lv_find_host(b, host, error) : NULL;
    if (!h)
        return host == NULL;
    g_autoptr(GPtrArray) pools = g_ptr_array_new_with_free_func((GDestroyNotify)lv_pool_free);
    g_autoptr(virDomain) d = uuid ? virDomainLookupByUUIDString(h->conn, uuid) : NULL;
    virResetLastError();
    if (d && !lv_remove_domain(h, d, pools, job, error))
        return FALSE;
    lv_delete_saved(job, pools, h, "v2v-vols");
    lv_pools_unbuild(pools, h);
    return TRUE;
}

gboolean
lv_remove_vm(KvmBackend *b, const char *vm, VmshiftJob *job, GError **error)
{
    g_autofree char *saved = job ? vmshift_job_get_saved(job, "v2v-backend") : NULL;
    if (saved && !strcmp(saved, b->name))
        return lv_remove_imported(b, job, error);
    /* the source of a move (--delete-source), or a plain removal */
    LvHost *h = NULL;
    g_autoptr(virDomain) d = lv_locate(b, vm, &h, error);
    if (!d)
        return FALSE;
    g_autoptr(GPtrArray) pools = g_ptr_array_new_with_free_func((GDestroyNotify)lv_pool_free);
    return lv_remove_domain(h, d, pools, job, error);
}

gboolean
lv_start_vm(KvmBackend *b, const char *vm, VmshiftJob *job, GError **error)
{
    LvHost *h = NULL;
    g_autoptr(virDomain) d = lv_locate(b, vm, &h, error);
    if (!d)
        return FALSE;
    if (virDomainCreate(d) != 0) {
        lv_error(error, VMSHIFT_ERROR_FAILED, "host %s: starting %s", h->name, vm);
        return FALSE;
    }
    if (job)
        vmshift_job_log(job, VMSHIFT_LOG_INFO, "started %s on host %s", vm, h->name);
    return TRUE;
}
