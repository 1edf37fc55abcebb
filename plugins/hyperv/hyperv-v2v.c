/*
 * vmshift Hyper-V plugin: moves between backends (SDK 1.4): export_vm,
 * open_disk, check_import, import_vm, remove_vm, start_vm.
 *
 * The VM's description comes from WMI (docs/design/hyperv.md §2.2): the
 * VSSD's VirtualSystemSubType (generation 1 = BIOS, 2 = UEFI), memory and
 * processor settings, each VHD SASD with its drive and controller (IDE or
 * SCSI), each synthetic adapter with its MAC and switch. Disk bytes go
 * through the host's SMB share (hyperv-smb.c): a disk is staged in the
 * backend's staging-dir (a free-space check first) and read or written as
 * VHDX there with the SDK's qemu-nbd streams. A VM is created with
 * Msvm_VirtualSystemManagementService.DefineSystem, ModifyResourceSettings
 * (memory, processors) and AddResourceSettings (SCSI controller, drives,
 * disks, adapters, switch ports), and removed with DestroySystem.
 */
#include "config.h"

#include <string.h>
#include <glib/gstdio.h>

#include <vmshift/vmshift.h>

#include "hyperv.h"

void
hv_jlog(VmshiftJob *job, VmshiftLogLevel level, const char *fmt, ...)
{
    va_list ap;
    g_autofree char *s = NULL;

    va_start(ap, fmt);
    s = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    if (job != NULL)
        vmshift_job_log(job, level, "%s", s);
    else if (level >= VMSHIFT_LOG_WARNING)
        g_warning("%s", s);
    else
        g_debug("%s", s);
}

/* ---- following VSMS calls ------------------------------------------------- */

/* Waits for the job of a method that returned 4096 (Get on the job's
 * ResourceURI, docs/design/hyperv.md §2.6). */
static gboolean
wait_job(HvHost *h, const HvEpr *epr, const char *what, GError **error)
{
    const char *iid = epr != NULL ? hv_epr_selector(epr, "InstanceID") : NULL;
    const char *sel[] = { "InstanceID", iid, NULL };
    gint64 until = g_get_monotonic_time() + (gint64)HV_JOB_WAIT_S * G_USEC_PER_SEC;

    if (iid == NULL || epr->uri == NULL) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_PROTOCOL,
                    "Hyper-V host %s: %s: job reference without InstanceID", hv_host_label(h),
                    what);
        return FALSE;
    }
    while (g_get_monotonic_time() < until) {
        g_autoptr(HvInstance) j = hv_get(h, epr->uri, sel, "Get job", NULL, error);
        gint64 st;
        if (j == NULL)
            return FALSE;
        st = hv_inst_get_int(j, "JobState", 0);
        if (hv_job_state_completed(st))
            return TRUE;
        if (hv_job_state_failed(st)) {
            const char *d = hv_inst_get(j, "ErrorDescription");
            g_autofree char *msg = hv_flatten(d != NULL && d[0] ? d : "no error description");
            g_set_error(error, VMSHIFT_ERROR, hv_job_error_code(msg),
                        "Hyper-V host %s: %s failed (ErrorCode %" G_GINT64_FORMAT "): %s",
                        hv_host_label(h), what, hv_inst_get_int(j, "ErrorCode", 0), msg);
            return FALSE;
        }
        g_usleep(100 * 1000);
    }
    g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_TIMEOUT, "Hyper-V host %s: %s: no end in %d s",
                hv_host_label(h), what, HV_JOB_WAIT_S);
    return FALSE;
}

/* Invokes a VSMS method and waits for it; the _OUTPUT instance. */
HvInstance *
hv_vsms_call(HvHost *h, const char *method, const char *params, const char *what, GError **error)
{
    const char *sel[] = { "CreationClassName", "Msvm_VirtualSystemManagementService", NULL };
    g_autoptr(HvInstance) out = hv_invoke(h, HV_VSMS, method, sel, params, NULL, error);
    gint64 rv;

    if (out == NULL)
        return NULL;
    rv = hv_inst_get_int(out, "ReturnValue", -1);
    if (rv == HV_RV_JOB_STARTED) {
        if (!wait_job(h, hv_inst_get_epr(out, "Job"), what, error))
            return NULL;
    } else if (rv != HV_RV_OK) {
        g_set_error(error, VMSHIFT_ERROR, hv_return_value_code(rv),
                    "Hyper-V host %s: %s: %s returned %" G_GINT64_FORMAT " (%s)", hv_host_label(h),
                    what, method, rv, hv_return_value_text(rv));
        return NULL;
    }
    return g_steal_pointer(&out);
}

char *
hv_cdata(const char *name, const char *instance)
{
    g_autofree char *e = hv_xml_escape(instance);
    return g_strdup_printf("<p:%s>%s</p:%s>", name, e, name);
}

/* The WMI object path of a settings instance, as Parent and HostResource
 * take them (§1.8): \\HOST\root\virtualization\v2:CLASS.InstanceID="…". */
char *
hv_settings_path(HvHost *h, const char *cls, const char *iid)
{
    GString *s = g_string_new(NULL);

    g_string_printf(s, "\\\\%s\\root\\virtualization\\v2:%s.InstanceID=\"", h->name, cls);
    for (const char *p = iid; *p; p++) {
        if (*p == '\\' || *p == '"')
            g_string_append_c(s, '\\');
        g_string_append_c(s, *p);
    }
    g_string_append_c(s, '"');
    return g_string_free(s, FALSE);
}

/* ---- the VM's devices ---------------------------------------------------- */

GPtrArray *
hv_vm_settings(HvHost *h, const char *vssd_iid, const char *cls, GError **error)
{
    g_autofree char *q = g_strdup_printf("ASSOCIATORS OF {Msvm_VirtualSystemSettingData."
                                         "InstanceID='%s'} WHERE AssocClass = "
                                         "Msvm_VirtualSystemSettingDataComponent ResultClass = %s",
                                         vssd_iid, cls);
    return hv_wql(h, HV_NS_V2, q, NULL, error);
}

static const HvInstance *
by_iid(GPtrArray *a, const char *iid)
{
    for (guint i = 0; iid != NULL && a != NULL && i < a->len; i++)
        if (g_strcmp0(hv_inst_get(a->pdata[i], "InstanceID"), iid) == 0)
            return a->pdata[i];
    return NULL;
}

static guint32
firmware_of(const HvInstance *vssd)
{
    const char *st = hv_inst_get(vssd, "VirtualSystemSubType");

    return g_strcmp0(st, HV_SUBTYPE_GEN1) == 0   ? VMSHIFT_FIRMWARE_BIOS
           : g_strcmp0(st, HV_SUBTYPE_GEN2) == 0 ? VMSHIFT_FIRMWARE_UEFI
                                                 : VMSHIFT_FIRMWARE_UNKNOWN;
}

/* The bus and a sort key (bus, controller, slot) of one VHD SASD, from its
 * drive (Parent) and the drive's controller. */
static const char *
disk_bus(GPtrArray *rasds, const HvInstance *sasd, guint32 fw, guint64 *key)
{
    g_autofree char *drive_iid = hv_path_key(hv_inst_get(sasd, "Parent"), "InstanceID");
    const HvInstance *drive = by_iid(rasds, drive_iid);
    g_autofree char *ctl_iid = drive ? hv_path_key(hv_inst_get(drive, "Parent"), "InstanceID")
                                     : NULL;
    const HvInstance *ctl = by_iid(rasds, ctl_iid);
    gint64 rt = ctl != NULL ? hv_inst_get_int(ctl, "ResourceType", 0) : 0;
    guint64 idx = ctl != NULL ? (guint64)CLAMP(hv_inst_get_int(ctl, "Address", 0), 0, 999) : 999;
    guint64 slot = drive ? (guint64)CLAMP(hv_inst_get_int(drive, "AddressOnParent", 0), 0, 999)
                         : 999;
    const char *bus = rt == HV_RT_IDE_CONTROLLER    ? "ide"
                      : rt == HV_RT_SCSI_CONTROLLER ? "scsi"
                      : fw == VMSHIFT_FIRMWARE_BIOS ? "ide"
                                                    : "scsi";

    *key = ((strcmp(bus, "ide") == 0 ? 0 : 1) * 1000 + idx) * 1000 + slot;
    return bus;
}

typedef struct {
    VmshiftDisk *d;
    guint64 key;
    guint pos;
} DiskOrder;

static gint
disk_order_cmp(gconstpointer a, gconstpointer b)
{
    const DiskOrder *x = a, *y = b;

    if (x->key != y->key)
        return x->key < y->key ? -1 : 1;
    return (gint)x->pos - (gint)y->pos;
}

gboolean
hv_require_off(const HvVm *v, const char *what, GError **error)
{
    gint64 es = hv_inst_get_int(v->cs, "EnabledState", 0);

    if (es != HV_ENABLED_DISABLED) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_CONFLICT,
                    "%s: VM %s on %s is %s (EnabledState %" G_GINT64_FORMAT "); it must be off",
                    what, hv_inst_get(v->cs, "ElementName"), v->host->name,
                    hv_power_location(hv_power_state(es)), es);
        return FALSE;
    }
    return TRUE;
}

VmshiftVm *
hyperv_export_vm(VmshiftBackend *b, const char *vm, guint32 flags, GError **error)
{
    g_autoptr(HvVm) v = NULL;
    g_autoptr(GPtrArray) rasds = NULL;
    g_autoptr(GArray) order = NULL;
    VmshiftVm *out;
    guint32 fw;

    if (!vmshift_check_flags(flags, 0, "export_vm", error))
        return NULL;
    v = hv_find_vm(b, vm, TRUE, error);
    if (v == NULL || !hv_require_off(v, "export", error))
        return NULL;
    if (v->snaps != NULL && v->snaps->len > 0) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_CONFLICT,
                    "export: VM %s has %u checkpoint(s); delete them (the disks merge) first", vm,
                    v->snaps->len);
        return NULL;
    }
    rasds = hv_vm_settings(v->host, hv_inst_get(v->vssd, "InstanceID"),
                           "Msvm_ResourceAllocationSettingData", error);
    if (rasds == NULL)
        return NULL;
    fw = firmware_of(v->vssd);
    out = hv_to_vm(v);
    out->firmware = fw;
    order = g_array_new(FALSE, FALSE, sizeof(DiskOrder));
    for (guint i = 0; i < out->disks->len; i++) {
        VmshiftDisk *d = out->disks->pdata[i];
        DiskOrder o = { d, 0, i };
        const char *path = hv_inst_get(v->sasds->pdata[i], "HostResource");
        if (path != NULL && g_str_has_suffix(path, ".avhdx")) {
            g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_CONFLICT,
                        "export: disk %s of VM %s is a differencing disk (%s); merge it first",
                        d->id, vm, path);
            vmshift_vm_free(out);
            return NULL;
        }
        d->bus = g_strdup(disk_bus(rasds, v->sasds->pdata[i], fw, &o.key));
        d->size_known = (d->capacity > 0 ? VMSHIFT_DISK_CAPACITY_KNOWN : 0)
                        | (d->allocation > 0 ? VMSHIFT_DISK_ALLOCATION_KNOWN : 0);
        g_array_append_val(order, o);
    }
    g_array_sort(order, disk_order_cmp);
    g_ptr_array_set_free_func(out->disks, NULL);
    g_ptr_array_set_size(out->disks, 0);
    g_ptr_array_set_free_func(out->disks, (GDestroyNotify)vmshift_disk_free);
    for (guint i = 0; i < order->len; i++) {
        DiskOrder *o = &g_array_index(order, DiskOrder, i);
        o->d->boot_order = i + 1;
        g_ptr_array_add(out->disks, o->d);
    }
    return out;
}

/* ---- reading a disk -------------------------------------------------------- */

/* A stream over a staged copy that removes the copy when it is finalized. */
typedef struct {
    GInputStream parent;
    GInputStream *base;
    char *file;
    char *dir;
} HvStaged;
typedef GInputStreamClass HvStagedClass;
static GType hv_staged_get_type(void);
G_DEFINE_TYPE(HvStaged, hv_staged, G_TYPE_INPUT_STREAM)

static gssize
hv_staged_read(GInputStream *s, void *buf, gsize n, GCancellable *c, GError **error)
{
    return g_input_stream_read(((HvStaged *)s)->base, buf, n, c, error);
}

static gboolean
hv_staged_close(GInputStream *s, GCancellable *c, GError **error)
{
    return g_input_stream_close(((HvStaged *)s)->base, c, error);
}

static void
hv_staged_finalize(GObject *o)
{
    HvStaged *s = (HvStaged *)o;

    g_clear_object(&s->base);
    if (s->file != NULL)
        g_unlink(s->file);
    if (s->dir != NULL)
        g_rmdir(s->dir);
    g_free(s->file);
    g_free(s->dir);
    G_OBJECT_CLASS(hv_staged_parent_class)->finalize(o);
}

static void
hv_staged_class_init(HvStagedClass *k)
{
    G_OBJECT_CLASS(k)->finalize = hv_staged_finalize;
    k->read_fn = hv_staged_read;
    k->close_fn = hv_staged_close;
}

static void
hv_staged_init(HvStaged *s)
{
    (void)s;
}

/* A private directory in staging-dir; NULL with @error. */
char *
hv_stage_dir(VmshiftBackend *b, GError **error)
{
    g_autofree char *t = g_build_filename(b->staging_dir, "vmshift-hv-XXXXXX", NULL);

    if (g_mkdtemp_full(t, 0700) == NULL) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_CONFIG, "staging-dir %s: %s",
                    b->staging_dir, g_strerror(errno));
        return NULL;
    }
    return g_steal_pointer(&t);
}

static const char *
image_format(const char *path)
{
    return g_str_has_suffix(path, ".vhd") || g_str_has_suffix(path, ".VHD") ? "vpc" : "vhdx";
}

GInputStream *
hyperv_open_disk(VmshiftBackend *b, const char *vm, const char *disk_id, GCancellable *c,
                 guint32 flags, GError **error)
{
    g_autoptr(HvVm) v = NULL;
    g_autoptr(HvSmb) smb = NULL;
    g_autofree char *dir = NULL;
    g_autofree char *file = NULL;
    g_autofree char *what = NULL;
    const char *path = NULL;
    GInputStream *raw;
    HvStaged *s;
    gboolean exists = FALSE;
    guint64 size = 0;

    if (!vmshift_check_flags(flags, 0, "open_disk", error))
        return NULL;
    v = hv_find_vm(b, vm, FALSE, error);
    if (v == NULL || !hv_require_off(v, "open_disk", error))
        return NULL;
    for (guint i = 0; i < v->sasds->len && path == NULL; i++)
        if (g_strcmp0(hv_disk_id(v->sasds->pdata[i]), disk_id) == 0)
            path = hv_inst_get(v->sasds->pdata[i], "HostResource");
    if (path == NULL) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_NOT_FOUND, "VM %s has no disk %s", vm,
                    disk_id);
        return NULL;
    }
    smb = hv_smb_new(b, v->host, error);
    if (smb == NULL || !hv_smb_stat(smb, path, &exists, &size, error))
        return NULL;
    if (!exists) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_NOT_FOUND,
                    "Hyper-V host %s: disk %s of VM %s: %s is not on the SMB share", v->host->name,
                    disk_id, vm, path);
        return NULL;
    }
    what = g_strdup_printf("staging %s of VM %s", path, vm);
    if (!hv_staging_room(b->staging_dir, size + HV_STAGE_SLACK, what, error)
        || (dir = hv_stage_dir(b, error)) == NULL)
        return NULL;
    file = g_build_filename(dir, hv_basename_win(path), NULL);
    if (!hv_smb_download(smb, path, file, c, error)) {
        g_rmdir(dir);
        return NULL;
    }
    raw = vmshift_disk_read_raw(file, image_format(path), NULL, c, error);
    if (raw == NULL) {
        g_unlink(file);
        g_rmdir(dir);
        return NULL;
    }
    s = g_object_new(hv_staged_get_type(), NULL);
    s->base = raw;
    s->file = g_steal_pointer(&file);
    s->dir = g_steal_pointer(&dir);
    return G_INPUT_STREAM(s);
}

/* ---- what a destination host must do to the VM ---------------------------- */

/* The generation a firmware asks for: 2 for UEFI, else 1. */
static guint
generation_for(guint32 fw)
{
    return fw == VMSHIFT_FIRMWARE_UEFI ? 2 : 1;
}

/* The bus disk @i of @n gets on a VM of generation @gen: generation 1 puts
 * the first four on IDE (it boots from IDE only), the rest on SCSI;
 * generation 2 has SCSI only (docs/design/hyperv.md §2.2). */
const char *
hv_bus_for(guint gen, guint i)
{
    return gen == 1 && i < HV_IDE_DISKS ? "ide" : "scsi";
}

/* "00155D0A0B0C" from "00:15:5d:0a:0b:0c"; NULL when not a unicast MAC. */
char *
hv_wmi_mac(const char *mac)
{
    GString *s;

    if (mac == NULL)
        return NULL;
    s = g_string_new(NULL);
    for (const char *p = mac; *p; p++) {
        if (g_ascii_isxdigit(*p))
            g_string_append_c(s, g_ascii_toupper(*p));
        else if (*p != ':' && *p != '-')
            break;
    }
    if (s->len != 12 || (g_ascii_xdigit_value(s->str[1]) & 1) != 0
        || strcmp(s->str, "000000000000") == 0) {
        g_string_free(s, TRUE);
        return NULL;
    }
    return g_string_free(s, FALSE);
}

void
hv_dest_clear(HvDest *d)
{
    g_free(d->root);
    g_free(d->vmdir);
}

gboolean
hv_dest_open(VmshiftBackend *b, const VmshiftMigrationSpec *spec, HvDest *d, GError **error)
{
    memset(d, 0, sizeof *d);
    d->b = b;
    d->spec = spec;
    d->src = VMSHIFT_HAS_FIELD(spec, source_vm) ? spec->source_vm : NULL;
    if (d->src == NULL || d->src->name == NULL) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_INVALID_ARGUMENT,
                    "import: the spec carries no source VM description");
        return FALSE;
    }
    if (!hv_wql_safe(d->src->name) || strpbrk(d->src->name, "\\/:*?\"<>|") != NULL) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_INVALID_ARGUMENT,
                    "import: VM name \"%s\" cannot be a Hyper-V VM and folder name", d->src->name);
        return FALSE;
    }
    if (spec->dest_host == NULL) {
        if (b->hosts->len != 1) {
            g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_INVALID_ARGUMENT,
                        "import: name the Hyper-V host (--to %s:HOST)", b->backend);
            return FALSE;
        }
        d->h = b->hosts->pdata[0];
    } else if (!hv_check_host_arg(b, spec->dest_host, error)) {
        return FALSE;
    } else {
        d->h = hv_find_host(b, spec->dest_host);
    }
    if (spec->dest_path != NULL) {
        d->root = g_strdup(spec->dest_path);
    } else {
        g_autoptr(HvInstance) sd = hv_first_of(
            d->h, HV_NS_V2, "SELECT * FROM Msvm_VirtualSystemManagementServiceSettingData", NULL,
            error);
        if (sd == NULL || hv_inst_get(sd, "DefaultExternalDataRoot") == NULL) {
            if (sd != NULL)
                g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_PROTOCOL,
                            "Hyper-V host %s has no DefaultExternalDataRoot; give --path",
                            d->h->name);
            return FALSE;
        }
        d->root = g_strdup(hv_inst_get(sd, "DefaultExternalDataRoot"));
    }
    d->vmdir = hv_join_win(d->root, d->src->name);
    d->gen = generation_for(d->src->firmware);
    return TRUE;
}

/* The disk file of disk @i under the VM's folder. */
char *
hv_disk_file(const HvDest *d, guint i)
{
    g_autofree char *vhd = hv_join_win(d->vmdir, "Virtual Hard Disks");
    g_autofree char *name = i == 0 ? g_strdup_printf("%s.vhdx", d->src->name)
                                   : g_strdup_printf("%s_%u.vhdx", d->src->name, i);
    return hv_join_win(vhd, name);
}

const HvInstance *
hv_switch_named(GPtrArray *sws, const char *name)
{
    for (guint j = 0; name != NULL && j < sws->len; j++)
        if (g_strcmp0(hv_inst_get(sws->pdata[j], "ElementName"), name) == 0)
            return sws->pdata[j];
    return NULL;
}

static void
check_devices(const HvDest *d, GPtrArray *out)
{
    const VmshiftVm *src = d->src;

    if (src->firmware == VMSHIFT_FIRMWARE_UNKNOWN)
        g_ptr_array_add(out,
                        vmshift_finding_new(VMSHIFT_SEVERITY_WARNING,
                                            VMSHIFT_FINDING_FIRMWARE_UNKNOWN, src->name,
                                            "the source does not say BIOS or UEFI; %s becomes a "
                                            "generation 1 (BIOS) VM on %s",
                                            src->name, d->h->name));
    for (guint i = 0; i < src->disks->len; i++) {
        const VmshiftDisk *k = src->disks->pdata[i];
        const char *bus = hv_bus_for(d->gen, i);
        if (g_strcmp0(k->bus, bus) != 0)
            g_ptr_array_add(out, vmshift_finding_new(
                                     VMSHIFT_SEVERITY_WARNING, VMSHIFT_FINDING_BUS_REMAPPED, k->id,
                                     "disk %s: %s on the source, %s on a generation %u "
                                     "Hyper-V VM",
                                     k->id, k->bus ? k->bus : "bus unknown", bus, d->gen));
    }
    for (guint i = 0; i < src->nics->len; i++) {
        const VmshiftNic *n = src->nics->pdata[i];
        g_autofree char *mac = hv_wmi_mac(n->mac);
        if (mac == NULL)
            g_ptr_array_add(out, vmshift_finding_new(
                                     VMSHIFT_SEVERITY_WARNING, VMSHIFT_FINDING_MAC_NOT_KEPT, n->id,
                                     "NIC %s: MAC %s cannot be a static Hyper-V MAC; "
                                     "Hyper-V assigns one",
                                     n->id, n->mac ? n->mac : "(none)"));
        if (n->model != NULL && strcmp(n->model, "synthetic") != 0)
            g_ptr_array_add(out, vmshift_finding_new(VMSHIFT_SEVERITY_WARNING,
                                                     VMSHIFT_FINDING_NIC_MODEL_CHANGED, n->id,
                                                     "NIC %s: %s on the source, a synthetic "
                                                     "adapter on Hyper-V",
                                                     n->id, n->model));
    }
    if (g_strcmp0(src->guest_os, "windows") == 0)
        g_ptr_array_add(out, vmshift_finding_new(
                                 VMSHIFT_SEVERITY_WARNING, VMSHIFT_FINDING_GUEST_DRIVERS, src->name,
                                 "a Windows guest needs Hyper-V integration services "
                                 "(built in since Windows Server 2016) for its synthetic "
                                 "disks and network"));
    else if (src->guest_os == NULL)
        g_ptr_array_add(out, vmshift_finding_new(
                                 VMSHIFT_SEVERITY_WARNING, VMSHIFT_FINDING_GUEST_DRIVERS, src->name,
                                 "the guest OS is unknown: it needs Hyper-V's drivers "
                                 "(Linux has hv_storvsc/hv_netvsc built in; Windows "
                                 "before 2016 needs integration services)"));
}

/* The space the VHDX files need on the volume of the VM's folder. */
static void
check_space(const HvDest *d, GPtrArray *out)
{
    g_autoptr(GError) e = NULL;
    g_autoptr(GPtrArray) vols = hv_host_volumes(d->h, &e);
    HvInstance *vol = vols != NULL ? hv_volume_of(vols, d->vmdir) : NULL;
    guint64 need = 0;
    gint64 free_b;

    for (guint i = 0; i < d->src->disks->len; i++)
        need += ((VmshiftDisk *)d->src->disks->pdata[i])->capacity;
    if (vol == NULL) {
        g_ptr_array_add(out, vmshift_finding_new(VMSHIFT_SEVERITY_WARNING,
                                                 VMSHIFT_FINDING_SPACE_UNKNOWN, d->h->name,
                                                 "free space of the volume of %s unknown%s%s",
                                                 d->vmdir, e ? ": " : "", e ? e->message : ""));
        return;
    }
    free_b = hv_inst_get_int(vol, "FreeSpace", -1);
    if (free_b >= 0 && (guint64)free_b < need)
        g_ptr_array_add(out, vmshift_finding_new(
                                 VMSHIFT_SEVERITY_ERROR, VMSHIFT_FINDING_NO_SPACE,
                                 hv_inst_get(vol, "Name"),
                                 "volume %s of %s has %" G_GINT64_FORMAT
                                 " MiB free; the disks can grow to %" G_GUINT64_FORMAT " MiB",
                                 hv_inst_get(vol, "Name"), d->h->name, free_b >> 20, need >> 20));
}

gboolean
hv_dest_root_exists(HvSmb *smb, const HvDest *d, GError **error)
{
    gboolean exists = FALSE;

    if (!hv_smb_stat(smb, d->root, &exists, NULL, error))
        return FALSE;
    if (!exists) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_NOT_FOUND,
                    "Hyper-V host %s has no folder %s (give an existing --path)", d->h->name,
                    d->root);
        return FALSE;
    }
    return TRUE;
}

/* The folder the VM goes in must exist, reached through SMB. */
static void
check_root(const HvDest *d, GPtrArray *out)
{
    g_autoptr(GError) e = NULL;
    g_autoptr(HvSmb) smb = hv_smb_new(d->b, d->h, &e);

    if (smb != NULL && hv_dest_root_exists(smb, d, &e))
        return;
    g_ptr_array_add(out, vmshift_finding_new(VMSHIFT_SEVERITY_ERROR,
                                             e->code == VMSHIFT_ERROR_NOT_FOUND
                                                 ? VMSHIFT_FINDING_PATH_NOT_FOUND
                                                 : VMSHIFT_FINDING_HOST_UNREACHABLE,
                                             d->root, "%s", e->message));
}

GPtrArray *
hyperv_check_import(VmshiftBackend *b, const VmshiftMigrationSpec *spec, guint32 flags,
                    GError **error)
{
    g_auto(HvDest) d = { 0 };
    g_autoptr(GPtrArray) out = g_ptr_array_new_with_free_func((GDestroyNotify)vmshift_finding_free);
    g_autoptr(GPtrArray) same = NULL;
    g_autoptr(GPtrArray) sws = NULL;
    g_autofree char *where = NULL;

    if (!vmshift_check_flags(flags, 0, "check_import", error) || !hv_dest_open(b, spec, &d, error))
        return NULL;
    where = g_strdup_printf("ElementName = '%s'", d.src->name);
    same = hv_host_vm_cs(d.h, where, error);
    sws = same ? hv_wql(d.h, HV_NS_V2, "SELECT * FROM Msvm_VirtualEthernetSwitch", NULL, error)
               : NULL;
    if (sws == NULL)
        return NULL;
    if (same->len > 0)
        g_ptr_array_add(out, vmshift_finding_new(VMSHIFT_SEVERITY_ERROR, VMSHIFT_FINDING_NAME_TAKEN,
                                                 d.src->name,
                                                 "Hyper-V host %s already has a VM named %s",
                                                 d.h->name, d.src->name));
    for (guint i = 0; i < d.src->nics->len; i++) {
        const VmshiftNic *n = d.src->nics->pdata[i];
        if (n->network != NULL && hv_switch_named(sws, n->network) == NULL)
            g_ptr_array_add(out, vmshift_finding_new(VMSHIFT_SEVERITY_ERROR,
                                                     VMSHIFT_FINDING_NETWORK_MISSING, n->id,
                                                     "NIC %s: Hyper-V host %s has no switch \"%s\"",
                                                     n->id, d.h->name, n->network));
    }
    check_root(&d, out);
    check_devices(&d, out);
    check_space(&d, out);
    return g_steal_pointer(&out);
}
