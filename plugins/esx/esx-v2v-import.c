/*
 * ESX plugin: the destination of a move between backends (ABI 1.4).
 *
 * check_import: the host, the datastore (dest_path, else the host's first
 * accessible one) and its free space, the name (no VM, no folder of that
 * name), the NICs' networks, and a warning for each change ESX forces.
 *
 * import_vm: MakeDirectory "[DS] NAME", PUT each disk as NAME[_N]-flat.vmdk
 * (the guest-visible bytes, streamed from the source) and its descriptor
 * NAME[_N].vmdk (createType "vmfs", the flat type ESXi writes itself),
 * then CreateVM_Task in the host's root resource pool and its datacenter's
 * VM folder with the disks attached to those files (no fileOperation),
 * controllers for their buses, NICs with their MAC kept (addressType
 * manual) where vSphere takes it as static, on the mapped networks, the firmware, and the boot
 * order set by ReconfigVM_Task once the disks have their keys. The folder and the VM are saved in
 * the job before they are created; a failure removes them.
 */
#include "config.h"

#include <string.h>

#include "esx-impl.h"
#include "esx-ops.h"

typedef struct {
    const VmshiftVm *src;
    EsxInventory inv;
    EsxObject *host;
    EsxObject *ds;
    char *ds_name;
    EsxResult *dcs;
    EsxObject *dc;
    char *dc_name;
    char *pool;
    GPtrArray *nets;     /* EsxObject * (borrowed, NULL when missing) per NIC */
    GPtrArray *findings; /* VmshiftFinding */
    gboolean blocked;    /* an error finding */
} Imp;

static void
imp_clear(Imp *m)
{
    esx_inventory_clear(&m->inv);
    g_free(m->ds_name);
    esx_result_free(m->dcs);
    g_free(m->dc_name);
    g_free(m->pool);
    if (m->nets != NULL)
        g_ptr_array_unref(m->nets);
    if (m->findings != NULL)
        g_ptr_array_unref(m->findings);
}
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(Imp, imp_clear)

static void add(Imp *m, VmshiftSeverity sev, const char *code, const char *subject, const char *fmt,
                ...) G_GNUC_PRINTF(5, 6);

static void
add(Imp *m, VmshiftSeverity sev, const char *code, const char *subject, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    g_autofree char *msg = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    if (sev == VMSHIFT_SEVERITY_ERROR)
        m->blocked = TRUE;
    g_ptr_array_add(m->findings, vmshift_finding_new(sev, code, subject, "%s", msg));
}

/* The bus ESX gives a disk of bus @bus, and the controller type. */
static const char *
esx_bus(const char *bus, gboolean windows, const char **ctl)
{
    if (g_strcmp0(bus, "ide") == 0) {
        *ctl = "VirtualIDEController";
        return "ide";
    }
    if (g_strcmp0(bus, "sata") == 0) {
        *ctl = "VirtualAHCIController";
        return "sata";
    }
    if (g_strcmp0(bus, "nvme") == 0) {
        *ctl = "VirtualNVMEController";
        return "nvme";
    }
    /* scsi, virtio and unknown: Windows has an LSI Logic SAS driver inbox,
     * Linux has pvscsi in the kernel */
    *ctl = windows ? "VirtualLsiLogicSASController" : "ParaVirtualSCSIController";
    return "scsi";
}

/* The vSphere NIC device type for a source model; *changed when it is
 * not the same device. */
static const char *
esx_nic_type(const char *model, gboolean *changed)
{
    static const struct {
        const char *in, *out;
    } map[] = {
        { "VirtualVmxnet3", "VirtualVmxnet3" }, { "vmxnet3", "VirtualVmxnet3" },
        { "VirtualE1000", "VirtualE1000" },     { "e1000", "VirtualE1000" },
        { "VirtualE1000e", "VirtualE1000e" },   { "e1000e", "VirtualE1000e" },
    };
    *changed = FALSE;
    for (guint i = 0; model != NULL && i < G_N_ELEMENTS(map); i++)
        if (g_ascii_strcasecmp(model, map[i].in) == 0)
            return map[i].out;
    *changed = model != NULL;
    return "VirtualVmxnet3";
}

/* Whether vSphere takes @mac as a static (addressType manual) address:
 * six octets, unicast, not all zero, and inside VMware's OUI 00:50:56 only
 * in the static range 00:50:56:00:00:00-00:50:56:3F:FF:FF (the rest of
 * that OUI is vCenter's for generated addresses and is refused). */
static gboolean
esx_mac_keepable(const char *mac)
{
    guint o[6];
    char end;
    if (mac == NULL
        || sscanf(mac, "%2x:%2x:%2x:%2x:%2x:%2x%c", &o[0], &o[1], &o[2], &o[3], &o[4], &o[5], &end)
               != 6
        || strlen(mac) != 17)
        return FALSE;
    if ((o[0] & 1) != 0 || (o[0] | o[1] | o[2] | o[3] | o[4] | o[5]) == 0)
        return FALSE;
    return !(o[0] == 0x00 && o[1] == 0x50 && o[2] == 0x56 && o[3] > 0x3f);
}

static gboolean
on_list(const EsxObject *o, const char *path, const char *moref)
{
    g_autoptr(GPtrArray) l = esx_prop_morefs(o, path);
    for (guint i = 0; i < l->len; i++)
        if (g_strcmp0(l->pdata[i], moref) == 0)
            return TRUE;
    return FALSE;
}

static void
plan_host(VmshiftBackend *be, const VmshiftMigrationSpec *spec, Imp *m)
{
    m->host = spec->dest_host != NULL ? esx_lookup(m->inv.hosts, "HostSystem", spec->dest_host)
                                      : NULL;
    if (m->host == NULL) {
        add(m, VMSHIFT_SEVERITY_ERROR, VMSHIFT_FINDING_HOST_NOT_FOUND, spec->dest_host,
            "host '%s' is not known to %s", spec->dest_host ? spec->dest_host : "(none)", be->url);
        return;
    }
    g_autofree char *cs = esx_prop_text(m->host, "runtime.connectionState");
    if (cs != NULL && g_strcmp0(cs, "connected") != 0)
        add(m, VMSHIFT_SEVERITY_ERROR, VMSHIFT_FINDING_HOST_UNREACHABLE, spec->dest_host,
            "host %s is %s", spec->dest_host, cs);
    if (esx_prop_bool(m->host, "runtime.inMaintenanceMode"))
        add(m, VMSHIFT_SEVERITY_ERROR, VMSHIFT_FINDING_HOST_MAINTENANCE, spec->dest_host,
            "host %s is in maintenance mode", spec->dest_host);
}

static void
plan_datastore(VmshiftBackend *be, const VmshiftMigrationSpec *spec, Imp *m)
{
    if (spec->dest_path != NULL && *spec->dest_path != '\0') {
        g_autofree char *n = esx_ds_name_of_path(spec->dest_path);
        m->ds = esx_lookup(m->inv.datastores, "Datastore", n != NULL ? n : spec->dest_path);
        if (m->ds == NULL) {
            add(m, VMSHIFT_SEVERITY_ERROR, VMSHIFT_FINDING_PATH_NOT_FOUND, spec->dest_path,
                "datastore '%s' not found at %s", spec->dest_path, be->url);
            return;
        }
    } else if (m->host != NULL) {
        g_autoptr(GPtrArray) l = esx_prop_morefs(m->host, "datastore");
        for (guint i = 0; i < l->len && m->ds == NULL; i++) {
            EsxObject *d = esx_result_find(m->inv.datastores, l->pdata[i]);
            g_autofree char *acc = esx_prop_text(d, "summary.accessible");
            if (d != NULL && g_strcmp0(acc, "false") != 0)
                m->ds = d;
        }
        if (m->ds == NULL) {
            add(m, VMSHIFT_SEVERITY_ERROR, VMSHIFT_FINDING_PATH_NOT_FOUND, spec->dest_host,
                "host %s has no accessible datastore", spec->dest_host);
            return;
        }
    } else {
        return;
    }
    m->ds_name = esx_prop_text(m->ds, "name");
    if (m->host != NULL && !esx_ds_on_host(m->ds, m->host))
        add(m, VMSHIFT_SEVERITY_ERROR, VMSHIFT_FINDING_VOLUME_NOT_ON_HOST, m->ds_name,
            "datastore %s is not mounted on host %s", m->ds_name, spec->dest_host);
    g_autofree char *acc = esx_prop_text(m->ds, "summary.accessible");
    g_autofree char *mm = esx_prop_text(m->ds, "summary.maintenanceMode");
    if (g_strcmp0(acc, "false") == 0 || (mm != NULL && g_strcmp0(mm, "normal") != 0))
        add(m, VMSHIFT_SEVERITY_ERROR, VMSHIFT_FINDING_VOLUME_UNAVAILABLE, m->ds_name,
            "datastore %s is %s", m->ds_name,
            g_strcmp0(acc, "false") == 0 ? "inaccessible" : "in maintenance");
    guint64 need = 0;
    for (guint i = 0; i < m->src->disks->len; i++)
        need += ((VmshiftDisk *)m->src->disks->pdata[i])->capacity;
    if (esx_prop(m->ds, "summary.freeSpace") == NULL) {
        add(m, VMSHIFT_SEVERITY_WARNING, VMSHIFT_FINDING_SPACE_UNKNOWN, m->ds_name,
            "the free space of datastore %s is not known", m->ds_name);
        return;
    }
    guint64 free_b = (guint64)esx_prop_int(m->ds, "summary.freeSpace");
    guint64 cap = (guint64)esx_prop_int(m->ds, "summary.capacity");
    if (free_b < need)
        add(m, VMSHIFT_SEVERITY_ERROR, VMSHIFT_FINDING_NO_SPACE, m->ds_name,
            "datastore %s has %" G_GUINT64_FORMAT " bytes free, the disks need %" G_GUINT64_FORMAT,
            m->ds_name, free_b, need);
    else if (free_b - need < cap / 20)
        add(m, VMSHIFT_SEVERITY_WARNING, VMSHIFT_FINDING_LOW_SPACE, m->ds_name,
            "datastore %s would keep less than 5%% free", m->ds_name);
}

/* No VM and no folder named like the VM on the datastore. */
static gboolean
plan_name(VmshiftBackend *be, Imp *m, GError **error)
{
    const char *name = m->src->name;
    g_auto(EsxInventory) tmp = { 0 };
    g_autoptr(GError) err = NULL;
    if (esx_find_vm(be, &tmp, name, &err) != NULL) {
        add(m, VMSHIFT_SEVERITY_ERROR, VMSHIFT_FINDING_NAME_TAKEN, name,
            "a VM named %s exists at %s", name, be->url);
        return TRUE;
    }
    if (!g_error_matches(err, VMSHIFT_ERROR, VMSHIFT_ERROR_NOT_FOUND)) {
        g_propagate_error(error, g_steal_pointer(&err));
        return FALSE;
    }
    if (m->dc_name == NULL)
        return TRUE;
    guint status = 0;
    g_autofree char *dir = g_strdup_printf("%s/", name);
    g_autofree char *body = esx_folder_get_small(be, m->dc_name, m->ds_name, dir, NULL, &status,
                                                 error);
    if (body == NULL && status == 0)
        return FALSE;
    if (status != 404)
        add(m, VMSHIFT_SEVERITY_ERROR, VMSHIFT_FINDING_NAME_TAKEN, name,
            "datastore %s already has a folder %s (HTTP %u)", m->ds_name, name, status);
    return TRUE;
}

static void
plan_devices(Imp *m)
{
    const VmshiftVm *src = m->src;
    gboolean windows = g_strcmp0(src->guest_os, "windows") == 0;
    gboolean foreign = FALSE;
    guint ide = 0;
    for (guint i = 0; i < src->disks->len; i++) {
        const VmshiftDisk *d = src->disks->pdata[i];
        const char *ctl = NULL;
        const char *bus = esx_bus(d->bus, windows, &ctl);
        ide += g_strcmp0(bus, "ide") == 0;
        if (d->bus != NULL && g_strcmp0(d->bus, bus) != 0) {
            add(m, VMSHIFT_SEVERITY_WARNING, VMSHIFT_FINDING_BUS_REMAPPED, d->id,
                "disk %s: ESX has no %s bus; it is attached to a %s controller", d->id, d->bus,
                ctl);
            foreign = TRUE;
        }
        if (!(d->size_known & VMSHIFT_DISK_CAPACITY_KNOWN) && d->capacity == 0)
            add(m, VMSHIFT_SEVERITY_WARNING, VMSHIFT_FINDING_DISK_SIZE_UNKNOWN, d->id,
                "the size of disk %s is not known", d->id);
        if (d->capacity % 512 != 0)
            add(m, VMSHIFT_SEVERITY_ERROR, VMSHIFT_FINDING_VM_STATE, d->id,
                "disk %s has %" G_GUINT64_FORMAT " bytes, not a whole number of 512-byte sectors "
                "(a VMDK cannot hold it)",
                d->id, d->capacity);
    }
    if (ide > 4)
        add(m, VMSHIFT_SEVERITY_ERROR, VMSHIFT_FINDING_VM_STATE, NULL,
            "%u IDE disks; an ESX VM has 2 IDE controllers of 2 devices", ide);
    for (guint i = 0; i < src->nics->len; i++) {
        const VmshiftNic *n = src->nics->pdata[i];
        gboolean changed = FALSE;
        const char *t = esx_nic_type(n->model, &changed);
        if (!esx_mac_keepable(n->mac))
            add(m, VMSHIFT_SEVERITY_WARNING, VMSHIFT_FINDING_MAC_NOT_KEPT, n->id,
                "NIC %s: vSphere does not take %s as a static MAC; it gets a generated one", n->id,
                n->mac != NULL ? n->mac : "(none)");
        if (changed) {
            add(m, VMSHIFT_SEVERITY_WARNING, VMSHIFT_FINDING_NIC_MODEL_CHANGED, n->id,
                "NIC %s: ESX has no %s adapter; it becomes a %s", n->id, n->model, t);
            foreign = TRUE;
        }
    }
    if (foreign)
        add(m, VMSHIFT_SEVERITY_WARNING, VMSHIFT_FINDING_GUEST_DRIVERS, NULL,
            "the guest needs drivers for its new devices (%s, vmxnet3) and VMware Tools, "
            "which vmshift does not install",
            windows ? "LSI Logic SAS" : "pvscsi");
    if (src->firmware == VMSHIFT_FIRMWARE_UNKNOWN)
        add(m, VMSHIFT_SEVERITY_WARNING, VMSHIFT_FINDING_FIRMWARE_UNKNOWN, NULL,
            "the source does not say the VM's firmware; it gets BIOS");
}

static void
plan_networks(VmshiftBackend *be, const VmshiftMigrationSpec *spec, Imp *m)
{
    (void)be;
    m->nets = g_ptr_array_new();
    for (guint i = 0; i < m->src->nics->len; i++) {
        const VmshiftNic *n = m->src->nics->pdata[i];
        EsxObject *net = NULL;
        for (guint k = 0; n->network != NULL && k < m->inv.networks->objects->len; k++) {
            EsxObject *o = m->inv.networks->objects->pdata[k];
            g_autofree char *nn = esx_prop_text(o, "name");
            if ((g_strcmp0(nn, n->network) == 0 || g_strcmp0(o->value, n->network) == 0)
                && (m->host == NULL || on_list(m->host, "network", o->value))) {
                net = o;
                break;
            }
        }
        if (net == NULL)
            add(m, VMSHIFT_SEVERITY_ERROR, VMSHIFT_FINDING_NETWORK_MISSING, n->id,
                "NIC %s: network '%s' does not exist on host %s (map it with --network %s=NET)",
                n->id, n->network != NULL ? n->network : "(none)",
                spec->dest_host ? spec->dest_host : "?", n->id);
        g_ptr_array_add(m->nets, net);
    }
}

/* Everything check_import and import_vm decide; FALSE only when the
 * server could not be asked. */
static gboolean
imp_plan(VmshiftBackend *be, const VmshiftMigrationSpec *spec, Imp *m, GError **error)
{
    if (!VMSHIFT_HAS_FIELD(spec, source_vm) || spec->source_vm == NULL) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_INVALID_ARGUMENT,
                    "backend %s: an import needs the source VM's description", be->name);
        return FALSE;
    }
    m->src = spec->source_vm;
    m->findings = vmshift_list_new((GDestroyNotify)vmshift_finding_free);
    if (!esx_inventory_load(be, &m->inv, TRUE, FALSE, TRUE, TRUE, NULL, error))
        return FALSE;
    plan_host(be, spec, m);
    plan_datastore(be, spec, m);
    if (m->ds != NULL) {
        m->dcs = esx_v2v_datacenters(be, error);
        if (m->dcs == NULL)
            return FALSE;
        m->dc = esx_v2v_dc_of_ds(be, m->dcs, m->ds->value, error);
        if (m->dc == NULL)
            return FALSE;
        m->dc_name = esx_prop_text(m->dc, "name");
    }
    if (!plan_name(be, m, error))
        return FALSE;
    plan_devices(m);
    plan_networks(be, spec, m);
    return TRUE;
}

GPtrArray *
esx_check_import(VmshiftBackend *be, const VmshiftMigrationSpec *spec, guint32 flags,
                 GError **error)
{
    if (!vmshift_check_flags(flags, 0, "check_import", error))
        return NULL;
    g_auto(Imp) m = { 0 };
    if (!imp_plan(be, spec, &m, error))
        return NULL;
    return g_steal_pointer(&m.findings);
}

/* ---- the import itself ------------------------------------------------ */

static char *
disk_base(const char *name, guint i)
{
    return i == 0 ? g_strdup(name) : g_strdup_printf("%s_%u", name, i);
}

/* The descriptor ESXi writes for a flat disk on a datastore. */
static char *
vmdk_descriptor(const char *flat, guint64 sectors, const char *bus, const char *ctl)
{
    guint heads = g_strcmp0(bus, "ide") == 0 ? 16 : 255;
    guint64 cyl = sectors / (heads * 63);
    if (g_strcmp0(bus, "ide") == 0 && cyl > 16383)
        cyl = 16383;
    const char *adapter = g_strcmp0(bus, "ide") == 0                         ? "ide"
                          : g_strcmp0(ctl, "ParaVirtualSCSIController") == 0 ? "pvscsi"
                                                                             : "lsilogic";
    return g_strdup_printf("# Disk DescriptorFile\nversion=1\nencoding=\"UTF-8\"\n"
                           "CID=fffffffe\nparentCID=ffffffff\ncreateType=\"vmfs\"\n\n"
                           "# Extent description\nRW %" G_GUINT64_FORMAT " VMFS \"%s\"\n\n"
                           "# The Disk Data Base\n#DDB\n\n"
                           "ddb.adapterType = \"%s\"\n"
                           "ddb.geometry.cylinders = \"%" G_GUINT64_FORMAT "\"\n"
                           "ddb.geometry.heads = \"%u\"\nddb.geometry.sectors = \"63\"\n"
                           "ddb.virtualHWVersion = \"13\"\n",
                           sectors, flat, adapter, cyl, heads);
}

static gboolean
upload_disks(VmshiftBackend *be, Imp *m, VmshiftJob *job, GError **error)
{
    const VmshiftVm *src = m->src;
    gboolean windows = g_strcmp0(src->guest_os, "windows") == 0;
    guint64 total = 0, done = 0;
    for (guint i = 0; i < src->disks->len; i++)
        total += ((VmshiftDisk *)src->disks->pdata[i])->capacity;
    for (guint i = 0; i < src->disks->len; i++) {
        const VmshiftDisk *d = src->disks->pdata[i];
        guint64 cap = 0;
        g_autoptr(GInputStream) in = vmshift_job_open_source_disk(job, d->id, &cap, error);
        if (in == NULL)
            return FALSE;
        if (cap % 512 != 0) {
            g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_NOT_SUPPORTED,
                        "disk %s has %" G_GUINT64_FORMAT " bytes, not whole 512-byte sectors",
                        d->id, cap);
            return FALSE;
        }
        g_autofree char *base = disk_base(src->name, i);
        g_autofree char *flat = g_strdup_printf("%s-flat.vmdk", base);
        g_autofree char *fpath = g_strdup_printf("%s/%s", src->name, flat);
        vmshift_job_log(job, VMSHIFT_LOG_INFO,
                        "disk %s: uploading %" G_GUINT64_FORMAT " bytes to [%s] %s", d->id, cap,
                        m->ds_name, fpath);
        if (!esx_folder_upload(be, m->dc_name, m->ds_name, fpath, in, cap, job, done, total, error))
            return FALSE;
        /* the host checks that the stream ends where it said */
        char extra;
        gssize more = g_input_stream_read(in, &extra, 1, NULL, error);
        if (more != 0) {
            if (more > 0)
                g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_PROTOCOL,
                            "disk %s: the source gave more than %" G_GUINT64_FORMAT " bytes", d->id,
                            cap);
            return FALSE;
        }
        done += cap;
        const char *ctl = NULL;
        const char *bus = esx_bus(d->bus, windows, &ctl);
        g_autofree char *desc = vmdk_descriptor(flat, cap / 512, bus, ctl);
        g_autofree char *dpath = g_strdup_printf("%s/%s.vmdk", src->name, base);
        if (!esx_folder_put_small(be, m->dc_name, m->ds_name, dpath, desc, strlen(desc), error))
            return FALSE;
    }
    vmshift_job_set_bytes(job, done, total);
    return TRUE;
}

static const char *
guest_id(const VmshiftVm *src)
{
    if (g_strcmp0(src->guest_os, "windows") == 0)
        return "windows9_64Guest";
    if (g_strcmp0(src->guest_os, "linux") == 0)
        return "otherLinux64Guest";
    return "otherGuest64";
}

/* The deviceChange entries of controllers (keys -100 - n) and disks. */
static void
spec_disks(GString *s, Imp *m)
{
    const VmshiftVm *src = m->src;
    gboolean windows = g_strcmp0(src->guest_os, "windows") == 0;
    static const char *const kinds[] = { "ParaVirtualSCSIController",
                                         "VirtualLsiLogicSASController", "VirtualAHCIController",
                                         "VirtualNVMEController" };
    int keys[G_N_ELEMENTS(kinds)] = { 0 };
    int units[G_N_ELEMENTS(kinds)] = { 0 };
    int ide_units = 0;
    for (guint i = 0; i < src->disks->len; i++) {
        const VmshiftDisk *d = src->disks->pdata[i];
        const char *ctl = NULL;
        esx_bus(d->bus, windows, &ctl);
        int ckey = 0, unit = 0;
        if (g_strcmp0(ctl, "VirtualIDEController") == 0) {
            ckey = 200 + ide_units / 2;
            unit = ide_units++ % 2;
        } else {
            guint k = 0;
            while (g_strcmp0(kinds[k], ctl) != 0)
                k++;
            if (keys[k] == 0) {
                keys[k] = -101 - (int)k;
                g_string_append_printf(
                    s,
                    "<deviceChange><operation>add</operation><device xsi:type=\"%s\">"
                    "<key>%d</key><busNumber>0</busNumber>%s</device></deviceChange>",
                    ctl, keys[k],
                    g_str_has_suffix(ctl, "SCSIController") || strstr(ctl, "LsiLogic") != NULL
                        ? "<sharedBus>noSharing</sharedBus>"
                        : "");
            }
            ckey = keys[k];
            unit = units[k]++;
            if (strstr(ctl, "SCSI") != NULL || strstr(ctl, "LsiLogic") != NULL) {
                if (unit >= 7)
                    unit = ++units[k] - 1; /* 7 is the controller's own */
            }
        }
        g_autofree char *base = disk_base(src->name, i);
        g_autofree char *file = g_strdup_printf("[%s] %s/%s.vmdk", m->ds_name, src->name, base);
        g_autofree char *ef = vmshift_xml_escape(file);
        g_string_append_printf(
            s,
            "<deviceChange><operation>add</operation><device xsi:type=\"VirtualDisk\">"
            "<key>%d</key><backing xsi:type=\"VirtualDiskFlatVer2BackingInfo\">"
            "<fileName>%s</fileName><diskMode>persistent</diskMode>"
            "<thinProvisioned>false</thinProvisioned></backing>"
            "<controllerKey>%d</controllerKey><unitNumber>%d</unitNumber>"
            "<capacityInKB>%" G_GUINT64_FORMAT "</capacityInKB>"
            "<capacityInBytes>%" G_GUINT64_FORMAT "</capacityInBytes></device></deviceChange>",
            -200 - (int)i, ef, ckey, unit, d->capacity / 1024, d->capacity);
    }
}

static gboolean
spec_nics(VmshiftBackend *be, GString *s, Imp *m, GError **error)
{
    for (guint i = 0; i < m->src->nics->len; i++) {
        const VmshiftNic *n = m->src->nics->pdata[i];
        gboolean changed;
        const char *t = esx_nic_type(n->model, &changed);
        g_autofree char *backing = esx_plan_nic_backing(be, m->nets->pdata[i], error);
        if (backing == NULL)
            return FALSE;
        g_autofree char *mac = NULL;
        if (esx_mac_keepable(n->mac)) {
            g_autofree char *em = vmshift_xml_escape(n->mac);
            mac = g_strdup_printf("<addressType>manual</addressType><macAddress>%s</macAddress>",
                                  em);
        } else {
            mac = g_strdup("<addressType>generated</addressType>");
        }
        g_string_append_printf(
            s,
            "<deviceChange><operation>add</operation><device xsi:type=\"%s\">"
            "<key>%d</key>%s<connectable><startConnected>true</startConnected>"
            "<allowGuestControl>true</allowGuestControl><connected>false</connected>"
            "</connectable>%s</device></deviceChange>",
            t, -300 - (int)i, backing, mac);
    }
    return TRUE;
}

static char *
create_body(VmshiftBackend *be, Imp *m, const char *folder, GError **error)
{
    const VmshiftVm *src = m->src;
    g_autofree char *en = vmshift_xml_escape(src->name);
    g_autofree char *eds = vmshift_xml_escape(m->ds_name);
    g_autoptr(GString) s = g_string_new(NULL);
    g_autofree char *this = esx_moref_xml("_this", "Folder", folder);
    g_string_append_printf(s, "<CreateVM_Task xmlns=\"urn:vim25\">%s<config>", this);
    g_string_append_printf(s, "<name>%s</name><guestId>%s</guestId>", en, guest_id(src));
    g_string_append_printf(s, "<files><vmPathName>[%s] %s/%s.vmx</vmPathName></files>", eds, en,
                           en);
    g_string_append_printf(s, "<numCPUs>%u</numCPUs><memoryMB>%" G_GUINT64_FORMAT "</memoryMB>",
                           src->vcpus > 0 ? src->vcpus : 1,
                           MAX(src->memory / (1024 * 1024), (guint64)4));
    spec_disks(s, m);
    if (!spec_nics(be, s, m, error))
        return NULL;
    g_string_append_printf(s, "<firmware>%s</firmware>",
                           src->firmware == VMSHIFT_FIRMWARE_UEFI ? "efi" : "bios");
    g_autofree char *pool = esx_moref_xml("pool", "ResourcePool", m->pool);
    g_autofree char *host = esx_moref_xml("host", "HostSystem", m->host->value);
    g_string_append_printf(s, "</config>%s%s</CreateVM_Task>", pool, host);
    return g_string_free(g_steal_pointer(&s), FALSE);
}

/* The host's compute resource's root resource pool. */
static gboolean
find_pool(VmshiftBackend *be, Imp *m, GError **error)
{
    g_autofree char *cr = esx_prop_text(m->host, "parent");
    g_autofree char *crt = esx_node_moref_type(esx_prop(m->host, "parent"));
    static const char *const paths[] = { "resourcePool", NULL };
    g_autoptr(EsxResult) keep = NULL;
    EsxObject *o = cr != NULL ? esx_retrieve_one(be, crt != NULL ? crt : "ComputeResource", cr,
                                                 paths, &keep, NULL, error)
                              : NULL;
    m->pool = esx_prop_text(o, "resourcePool");
    if (m->pool == NULL && error != NULL && *error == NULL)
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_PROTOCOL,
                    "%s: host %s has no resource pool", be->url, m->host->value);
    return m->pool != NULL;
}

/* bootOptions.bootOrder from the disks' boot_order, with their keys now. */
static gboolean
set_boot_order(VmshiftBackend *be, Imp *m, const char *moref, GError **error)
{
    g_autoptr(GString) order = g_string_new(NULL);
    g_autoptr(EsxResult) keep = NULL;
    EsxObject *o = NULL;
    for (guint32 rank = 1; rank <= m->src->disks->len; rank++) {
        for (guint i = 0; i < m->src->disks->len; i++) {
            const VmshiftDisk *d = m->src->disks->pdata[i];
            if (d->boot_order != rank)
                continue;
            if (o == NULL) {
                static const char *const paths[] = { "config.hardware.device", NULL };
                o = esx_retrieve_one(be, "VirtualMachine", moref, paths, &keep, NULL, error);
                if (o == NULL)
                    return FALSE;
            }
            g_autofree char *base = disk_base(m->src->name, i);
            g_autofree char *file = g_strdup_printf("[%s] %s/%s.vmdk", m->ds_name, m->src->name,
                                                    base);
            const xmlNode *dev = esx_find_device(o, file, FALSE);
            g_autofree char *key = dev != NULL
                                       ? vmshift_xml_child_text(dev, VMSHIFT_NS_VIM25, "key")
                                       : NULL;
            if (key != NULL)
                g_string_append_printf(order,
                                       "<bootOrder xsi:type=\"VirtualMachineBootOptionsBootable"
                                       "DiskDevice\"><deviceKey>%s</deviceKey></bootOrder>",
                                       key);
        }
    }
    if (order->len == 0)
        return TRUE;
    g_autofree char *this = esx_moref_xml("_this", "VirtualMachine", moref);
    g_autofree char *body = g_strdup_printf("<ReconfigVM_Task xmlns=\"urn:vim25\">%s<spec>"
                                            "<bootOptions>%s</bootOptions></spec>"
                                            "</ReconfigVM_Task>",
                                            this, order->str);
    g_autofree char *task = esx_start_task(be, "ReconfigVM_Task", body, error);
    return task != NULL && esx_wait_task(be, task, "ReconfigVM_Task (boot order)", error);
}

static gboolean
make_directory(VmshiftBackend *be, Imp *m, const char *dir, GError **error)
{
    g_autofree char *fm = esx_v2v_file_manager(be, error);
    if (fm == NULL)
        return FALSE;
    g_autofree char *this = esx_moref_xml("_this", "FileManager", fm);
    g_autofree char *dc = esx_moref_xml("datacenter", "Datacenter", m->dc->value);
    g_autofree char *ed = vmshift_xml_escape(dir);
    g_autofree char *body = g_strdup_printf(
        "<MakeDirectory xmlns=\"urn:vim25\">%s<name>%s</name>%s"
        "<createParentDirectories>false</createParentDirectories></MakeDirectory>",
        this, ed, dc);
    g_autoptr(xmlDoc) doc = esx_call_once(be, "MakeDirectory", body, NULL, NULL, error);
    return doc != NULL;
}

static gboolean
import_steps(VmshiftBackend *be, Imp *m, VmshiftJob *job, char **vm_moref, GError **error)
{
    const char *name = m->src->name;
    g_autofree char *dir = g_strdup_printf("[%s] %s", m->ds_name, name);
    g_autofree char *saved = g_strdup_printf("%s\t%s\t%s", be->url, m->dc->value, dir);
    if (!vmshift_job_save(job, ESX_V2V_SAVED_DIR, saved, error)
        || !make_directory(be, m, dir, error))
        return FALSE;
    vmshift_job_log(job, VMSHIFT_LOG_INFO, "created the folder %s", dir);
    if (!upload_disks(be, m, job, error))
        return FALSE;
    g_autofree char *folder = esx_prop_text(m->dc, "vmFolder");
    g_autofree char *body = create_body(be, m, folder, error);
    if (body == NULL || !vmshift_job_save(job, ESX_V2V_SAVED_VM, name, error))
        return FALSE;
    g_autofree char *task = esx_start_task(be, "CreateVM_Task", body, error);
    if (task == NULL)
        return FALSE;
    g_auto(EsxTaskInfo) ti = { 0 };
    guint poll = 0;
    for (;;) {
        if (!esx_task_poll(be, task, &ti, error))
            return FALSE;
        if (g_strcmp0(ti.state, "success") == 0)
            break;
        if (g_strcmp0(ti.state, "error") == 0) {
            g_set_error(error, VMSHIFT_ERROR, esx_task_fault_code(ti.fault_type),
                        "%s CreateVM_Task of %s failed: %s: %s", be->url, name,
                        ti.fault_type != NULL ? ti.fault_type : "error",
                        ti.message != NULL ? ti.message : "(no message)");
            return FALSE;
        }
        g_usleep(esx_next_poll(&poll) * 1000);
    }
    *vm_moref = g_strdup(ti.result);
    g_autofree char *hname = esx_prop_text(m->host, "name");
    vmshift_job_log(job, VMSHIFT_LOG_INFO, "VM %s defined (%s) on host %s", name,
                    ti.result != NULL ? ti.result : "?", hname);
    return *vm_moref != NULL && set_boot_order(be, m, *vm_moref, error);
}

gboolean
esx_import_vm(VmshiftBackend *be, const VmshiftMigrationSpec *spec, VmshiftJob *job, guint32 flags,
              GError **error)
{
    if (!vmshift_check_flags(flags, 0, "import_vm", error))
        return FALSE;
    g_auto(Imp) m = { 0 };
    if (!imp_plan(be, spec, &m, error))
        return FALSE;
    if (m.blocked) {
        for (guint i = 0; i < m.findings->len; i++) {
            VmshiftFinding *f = m.findings->pdata[i];
            if (f->severity == VMSHIFT_SEVERITY_ERROR) {
                g_set_error(error, VMSHIFT_ERROR,
                            g_strcmp0(f->code, VMSHIFT_FINDING_NO_SPACE) == 0
                                ? VMSHIFT_ERROR_NO_SPACE
                            : g_strcmp0(f->code, VMSHIFT_FINDING_NAME_TAKEN) == 0
                                ? VMSHIFT_ERROR_CONFLICT
                                : VMSHIFT_ERROR_INVALID_ARGUMENT,
                            "backend %s: cannot import %s: %s", be->name, m.src->name, f->message);
                return FALSE;
            }
        }
    }
    if (!find_pool(be, &m, error))
        return FALSE;
    g_autofree char *moref = NULL;
    g_autoptr(GError) err = NULL;
    if (import_steps(be, &m, job, &moref, &err)) {
        esx_cache_invalidate(be, 1u << ESX_CACHE_DATASTORES);
        return TRUE;
    }
    /* remove what this import created (remove_vm does the same from the
     * job's saved data after a crash) */
    g_autoptr(GError) cerr = NULL;
    if (!esx_remove_vm(be, m.src->name, job, 0, &cerr))
        vmshift_job_log(job, VMSHIFT_LOG_WARNING, "removing the partial import of %s: %s",
                        m.src->name, cerr->message);
    esx_cache_invalidate(be, 1u << ESX_CACHE_DATASTORES);
    g_propagate_error(error, g_steal_pointer(&err));
    return FALSE;
}
