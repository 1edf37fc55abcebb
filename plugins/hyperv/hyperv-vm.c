/*
 * vmshift Hyper-V plugin: one VM as the plugin sees it (HvVm): found,
 * loaded from its settings and devices, turned into a VmshiftVm.
 * Facts and sources: docs/design/hyperv.md.
 */
#include "config.h"

#include <string.h>

#include <vmshift/vmshift.h>
#include <vmshift/xml.h>

#include "hyperv.h"

GPtrArray *
hv_host_volumes(HvHost *h, GError **error)
{
    return hv_wql(
        h, HV_NS_CIMV2,
        "SELECT * FROM Win32_Volume WHERE DriveType = " G_STRINGIFY(HV_DRIVE_TYPE_LOCAL_DISK), NULL,
        error);
}

HvInstance *
hv_volume_of(GPtrArray *vols, const char *path)
{
    HvInstance *best = NULL;
    gsize best_len = 0;

    for (guint i = 0; vols != NULL && i < vols->len; i++) {
        const char *n = hv_inst_get(vols->pdata[i], "Name");
        if (n != NULL && hv_path_under(path, n) && strlen(n) > best_len) {
            best = vols->pdata[i];
            best_len = strlen(n);
        }
    }
    return best;
}

gboolean
hv_volume_is_shared(const HvInstance *v)
{
    return g_strcmp0(hv_inst_get(v, "FileSystem"), "CSVFS") == 0;
}

gint64
hv_opstatus2(const HvInstance *cs)
{
    const GPtrArray *a = hv_inst_get_all(cs, "OperationalStatus");
    gint64 v;

    if (a->len < 2 || !g_ascii_string_to_signed(a->pdata[1], 10, 0, G_MAXINT64, &v, NULL))
        return 0;
    return v;
}

static char *
vssd_query(const char *guid)
{
    return g_strdup_printf("ASSOCIATORS OF {Msvm_ComputerSystem.CreationClassName="
                           "'Msvm_ComputerSystem',Name='%s'} WHERE AssocClass = "
                           "Msvm_SettingsDefineState ResultClass = "
                           "Msvm_VirtualSystemSettingData",
                           guid);
}

void
hv_vm_free(HvVm *v)
{
    if (v == NULL)
        return;
    hv_instance_free(v->cs);
    hv_instance_free(v->vssd);
    if (v->sasds)
        g_ptr_array_unref(v->sasds);
    if (v->ports)
        g_ptr_array_unref(v->ports);
    if (v->epasds)
        g_ptr_array_unref(v->epasds);
    if (v->switches)
        g_ptr_array_unref(v->switches);
    if (v->sizes)
        g_ptr_array_unref(v->sizes);
    if (v->vsizes)
        g_ptr_array_unref(v->vsizes);
    if (v->snaps)
        g_ptr_array_unref(v->snaps);
    if (v->volumes)
        g_ptr_array_unref(v->volumes);
    g_free(v);
}

static GPtrArray *
new_inst_list(void)
{
    return g_ptr_array_new_with_free_func((GDestroyNotify)hv_instance_free);
}

/* Msvm_MemorySettingData.VirtualQuantity in its AllocationUnits
 * ("byte * 2^20" on every Hyper-V; MSDOC msvm-memorysettingdata). */
static guint64
memory_bytes(const HvInstance *m)
{
    const char *u = hv_inst_get(m, "AllocationUnits");
    gint64 q = hv_inst_get_int(m, "VirtualQuantity", 0);
    guint shift = HV_MEMORY_UNIT_SHIFT_DEFAULT;

    if (q <= 0)
        return 0;
    if (u != NULL) {
        const char *p = strstr(u, "2^");
        shift = p != NULL                            ? (guint)g_ascii_strtoull(p + 2, NULL, 10)
                : g_ascii_strcasecmp(u, "byte") == 0 ? 0
                                                     : HV_MEMORY_UNIT_SHIFT_DEFAULT;
        if (shift > HV_MEMORY_UNIT_SHIFT_MAX)
            shift = HV_MEMORY_UNIT_SHIFT_DEFAULT;
    }
    return (guint64)q << shift;
}

/* One property of a VHD's Msvm_ImageManagementService.
 * GetVirtualHardDiskSettingData(Path) -> embedded Msvm_VirtualHardDiskSettingData
 * (CIM-XML, docs/design/hyperv.md §1.8, §2.2); NULL when unknown or NULL. */
static char *
vhd_property(HvHost *h, const char *path, const char *prop)
{
    const char *sel[] = { "CreationClassName", "Msvm_ImageManagementService", NULL };
    g_autofree char *e = hv_xml_escape(path);
    g_autofree char *p = g_strdup_printf("<p:Path>%s</p:Path>", e);
    g_autoptr(HvInstance) out = hv_invoke(h, HV_V2 "Msvm_ImageManagementService",
                                          "GetVirtualHardDiskSettingData", sel, p, NULL, NULL);
    const char *sd;
    g_autoptr(xmlDoc) doc = NULL;
    xmlNode *inst;
    char *val = NULL;

    if (out == NULL || hv_inst_get_int(out, "ReturnValue", -1) != HV_RV_OK
        || (sd = hv_inst_get(out, "SettingData")) == NULL)
        return NULL;
    doc = vmshift_xml_parse(sd, strlen(sd), "Msvm_VirtualHardDiskSettingData", NULL);
    if (doc == NULL)
        return NULL;
    inst = vmshift_xml_root(doc);
    if (inst != NULL && vmshift_xml_node_is(inst, NULL, "INSTANCE")) {
        for (xmlNode *c = vmshift_xml_first_element(inst); c != NULL && val == NULL;
             c = vmshift_xml_next_element(c)) {
            g_autofree char *name = vmshift_xml_get_attr(c, NULL, "NAME");
            if (vmshift_xml_node_is(c, NULL, "PROPERTY") && g_strcmp0(name, prop) == 0)
                val = vmshift_xml_child_text(c, NULL, "VALUE");
        }
    }
    if (val != NULL && *val == '\0')
        g_clear_pointer(&val, g_free);
    return val;
}

/* Virtual size of a VHD (MaxInternalSize); 0 when unknown. */
static guint64
vhd_virtual_size(HvHost *h, const char *path)
{
    g_autofree char *v = vhd_property(h, path, "MaxInternalSize");
    return v != NULL ? g_ascii_strtoull(v, NULL, 10) : 0;
}

char *
hv_vhd_parent(HvHost *h, const char *path)
{
    return vhd_property(h, path, "ParentPath");
}

HvVm *
hv_load_vm(HvHost *h, HvInstance *cs, gboolean sizes, GError **error)
{
    g_autoptr(HvVm) v = g_new0(HvVm, 1);
    g_autofree char *q = vssd_query(hv_inst_get(cs, "Name"));
    g_autofree char *q2 = NULL;
    g_autoptr(GPtrArray) parts = NULL;

    v->host = h;
    v->cs = cs;
    v->vssd = hv_first_of(h, HV_NS_V2, q, NULL, error);
    if (v->vssd == NULL)
        return NULL;
    q2 = g_strdup_printf("ASSOCIATORS OF {Msvm_VirtualSystemSettingData.InstanceID='%s'} "
                         "WHERE AssocClass = Msvm_VirtualSystemSettingDataComponent",
                         hv_inst_get(v->vssd, "InstanceID"));
    parts = hv_wql(h, HV_NS_V2, q2, NULL, error);
    if (parts == NULL)
        return NULL;
    v->sasds = new_inst_list();
    v->ports = new_inst_list();
    v->epasds = new_inst_list();
    v->sizes = g_ptr_array_new_with_free_func(g_free);
    v->vsizes = g_ptr_array_new_with_free_func(g_free);
    while (parts->len > 0) {
        HvInstance *p = g_ptr_array_steal_index(parts, 0);
        if (g_strcmp0(p->cls, "Msvm_StorageAllocationSettingData") == 0
            && hv_inst_get_int(p, "ResourceType", 0) == HV_RESOURCE_TYPE_LOGICAL_DISK)
            g_ptr_array_add(v->sasds, p);
        else if (g_strcmp0(p->cls, "Msvm_SyntheticEthernetPortSettingData") == 0)
            g_ptr_array_add(v->ports, p);
        else if (g_strcmp0(p->cls, "Msvm_EthernetPortAllocationSettingData") == 0)
            g_ptr_array_add(v->epasds, p);
        else {
            if (g_strcmp0(p->cls, "Msvm_MemorySettingData") == 0)
                v->memory = memory_bytes(p);
            else if (g_strcmp0(p->cls, "Msvm_ProcessorSettingData") == 0)
                v->vcpus = (guint32)CLAMP(hv_inst_get_int(p, "VirtualQuantity", 0), 0, G_MAXUINT32);
            hv_instance_free(p);
        }
    }
    {
        /* Checkpoints: Msvm_SnapshotOfVirtualSystem (docs/design/hyperv.md §2.2); every
         * VirtualSystemType "Microsoft:Hyper-V:Snapshot:…" counts. */
        g_autofree char *q3 = g_strdup_printf(
            "ASSOCIATORS OF {Msvm_ComputerSystem.CreationClassName='Msvm_ComputerSystem',"
            "Name='%s'} WHERE AssocClass = Msvm_SnapshotOfVirtualSystem ResultClass = "
            "Msvm_VirtualSystemSettingData",
            hv_inst_get(cs, "Name"));
        g_autoptr(GError) e = NULL;
        g_autoptr(GPtrArray) ss = hv_wql(h, HV_NS_V2, q3, NULL, &e);
        if (ss == NULL) {
            /* An optional fact: the VM is usable without it. */
            if (!hv_degrade_class(h, "Msvm_SnapshotOfVirtualSystem", "checkpoint counts", &e)) {
                g_propagate_error(error, g_steal_pointer(&e));
                return NULL;
            }
            ss = g_ptr_array_new();
        } else {
            v->snaps = new_inst_list();
        }
        while (ss->len > 0) {
            HvInstance *p = g_ptr_array_steal_index(ss, 0);
            if (strstr(hv_inst_get(p, "VirtualSystemType") ? hv_inst_get(p, "VirtualSystemType")
                                                           : "",
                       ":Snapshot:")
                != NULL)
                g_ptr_array_add(v->snaps, p);
            else
                hv_instance_free(p);
        }
    }
    v->switches = hv_wql(h, HV_NS_V2, "SELECT * FROM Msvm_VirtualEthernetSwitch", NULL, error);
    if (v->switches == NULL)
        return NULL;
    {
        /* Only for each disk's volume: the VM is usable without it. */
        g_autoptr(GError) e = NULL;
        v->volumes = hv_host_volumes(h, &e);
        if (v->volumes == NULL)
            g_debug("Hyper-V host %s: volumes unknown: %s", hv_host_label(h), e->message);
    }
    for (guint i = 0; i < v->sasds->len; i++) {
        guint64 *sz = g_new0(guint64, 1);
        const char *path = hv_inst_get(v->sasds->pdata[i], "HostResource");
        if (sizes && path != NULL) {
            const char *sel[] = { "Name", path, NULL };
            g_autoptr(GError) e = NULL;
            g_autoptr(HvInstance)
                f = hv_get(h, HV_CIMV2 "CIM_DataFile", sel, "Get CIM_DataFile", NULL, &e);
            if (f != NULL)
                *sz = (guint64)hv_inst_get_int(f, "FileSize", 0);
        }
        g_ptr_array_add(v->sizes, sz);
        sz = g_new0(guint64, 1);
        if (sizes && path != NULL)
            *sz = vhd_virtual_size(h, path);
        g_ptr_array_add(v->vsizes, sz);
    }
    return g_steal_pointer(&v);
}

const HvInstance *
hv_port_epasd(const HvVm *v, const char *port_iid)
{
    for (guint i = 0; port_iid != NULL && i < v->epasds->len; i++) {
        HvInstance *e = v->epasds->pdata[i];
        g_autofree char *parent = hv_path_key(hv_inst_get(e, "Parent"), "InstanceID");
        if (g_strcmp0(parent, port_iid) == 0)
            return e;
    }
    return NULL;
}

static char *
switch_name(const HvVm *v, const char *port_iid)
{
    const HvInstance *e = hv_port_epasd(v, port_iid);
    g_autofree char *sw = e != NULL ? hv_path_key(hv_inst_get(e, "HostResource"), "Name") : NULL;

    for (guint j = 0; sw != NULL && j < v->switches->len; j++)
        if (g_ascii_strcasecmp(hv_inst_get(v->switches->pdata[j], "Name"), sw) == 0)
            return g_strdup(hv_inst_get(v->switches->pdata[j], "ElementName"));
    return NULL;
}

const char *
hv_disk_id(const HvInstance *sasd)
{
    const char *p = hv_inst_get(sasd, "HostResource");
    return p != NULL ? hv_basename_win(p) : hv_inst_get(sasd, "InstanceID");
}

/* The volume that holds a VHD: the id of the Win32_Volume (as in
 * list_volumes), or the \\server\share of a VHD on an SMB share. */
static char *
disk_volume(const HvVm *v, const char *path)
{
    HvInstance *vol;

    if (path == NULL)
        return NULL;
    if (g_str_has_prefix(path, "\\\\")) {
        const char *srv_end = strchr(path + 2, '\\');
        const char *share_end = srv_end != NULL ? strchr(srv_end + 1, '\\') : NULL;
        if (srv_end == NULL || srv_end[1] == '\0' || srv_end[1] == '\\')
            return NULL;
        return share_end != NULL ? g_strndup(path, (gsize)(share_end - path)) : g_strdup(path);
    }
    vol = hv_volume_of(v->volumes, path);
    return vol != NULL ? g_strdup(hv_inst_get(vol, "DeviceID")) : NULL;
}

VmshiftVm *
hv_to_vm(const HvVm *v)
{
    VmshiftVm *vm = vmshift_vm_new();
    gint64 os2 = hv_opstatus2(v->cs);

    vm->id = g_strdup(hv_inst_get(v->cs, "Name"));
    vm->name = g_strdup(hv_inst_get(v->cs, "ElementName"));
    vm->host = g_strdup(v->host->name);
    vm->power_state = hv_power_state(hv_inst_get_int(v->cs, "EnabledState", 0));
    vm->config_path = g_strdup(hv_inst_get(v->vssd, "ConfigurationDataRoot"));
    vm->memory = v->memory;
    vm->vcpus = v->vcpus;
    vm->snapshot_count = v->snaps != NULL ? v->snaps->len : 0;
    if (hv_opstatus_text(os2) != NULL)
        vm->status_detail = g_strdup(hv_opstatus_text(os2));
    for (guint i = 0; i < v->sasds->len; i++) {
        HvInstance *s = v->sasds->pdata[i];
        VmshiftDisk *d = vmshift_disk_new();
        const char *path = hv_inst_get(s, "HostResource");
        d->id = g_strdup(hv_disk_id(s));
        d->path = g_strdup(path);
        if (path != NULL) {
            const char *dot = strrchr(hv_basename_win(path), '.');
            d->format = dot != NULL ? g_ascii_strdown(dot + 1, -1) : NULL;
            if (d->format != NULL && strcmp(d->format, "avhdx") == 0) {
                g_free(d->format);
                d->format = g_strdup("vhdx");
            }
        }
        d->allocation = *(guint64 *)v->sizes->pdata[i];
        d->capacity = *(guint64 *)v->vsizes->pdata[i];
        d->volume = disk_volume(v, path);
        g_ptr_array_add(vm->disks, d);
    }
    for (guint i = 0; i < v->ports->len; i++) {
        HvInstance *p = v->ports->pdata[i];
        VmshiftNic *n = vmshift_nic_new();
        const char *iid = hv_inst_get(p, "InstanceID");
        n->id = g_strdup(iid != NULL && strrchr(iid, '\\') ? strrchr(iid, '\\') + 1 : iid);
        n->mac = hv_nic_mac(hv_inst_get(p, "Address"));
        n->network = switch_name(v, iid);
        n->model = g_strdup("synthetic");
        g_ptr_array_add(vm->nics, n);
    }
    return vm;
}

GPtrArray *
hv_host_vm_cs(HvHost *h, const char *where, GError **error)
{
    g_autofree char *q = g_strdup_printf("SELECT * FROM Msvm_ComputerSystem WHERE "
                                         "Description = 'Microsoft Virtual Machine'%s%s",
                                         where ? " AND " : "", where ? where : "");
    return hv_wql(h, HV_NS_V2, q, NULL, error);
}

/* Finds a VM by name or GUID on every host. */
HvVm *
hv_find_vm(VmshiftBackend *b, const char *vm, gboolean sizes, GError **error)
{
    g_autofree char *where = NULL;
    g_autoptr(HvVm) found = NULL;

    if (!hv_wql_safe(vm)) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_INVALID_ARGUMENT, "invalid VM name \"%s\"",
                    vm);
        return NULL;
    }
    where = g_strdup_printf(g_uuid_string_is_valid(vm) ? "Name = '%s'" : "ElementName = '%s'", vm);
    for (guint i = 0; i < b->hosts->len; i++) {
        HvHost *h = b->hosts->pdata[i];
        g_autoptr(GPtrArray) css = NULL;
        if (!hv_host_usable(h))
            continue;
        css = hv_host_vm_cs(h, where, error);
        if (css == NULL)
            return NULL;
        if (css->len > 1 || (css->len == 1 && found != NULL)) {
            g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_CONFLICT,
                        "backend %s: more than one VM is named %s; use its id", b->backend, vm);
            return NULL;
        }
        if (css->len == 1) {
            found = hv_load_vm(h, g_ptr_array_steal_index(css, 0), sizes, error);
            if (found == NULL)
                return NULL;
        }
    }
    if (found == NULL)
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_NOT_FOUND,
                    "backend %s: no VM %s on any Hyper-V host", b->backend, vm);
    return g_steal_pointer(&found);
}

VmshiftVm *
hyperv_get_vm(VmshiftBackend *b, const char *vm, guint32 flags, GError **error)
{
    g_autoptr(HvVm) v = NULL;

    if (!vmshift_check_flags(flags, 0, "get_vm", error))
        return NULL;
    v = hv_find_vm(b, vm, TRUE, error);
    return v != NULL ? hv_to_vm(v) : NULL;
}
