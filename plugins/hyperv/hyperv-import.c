/*
 * vmshift Hyper-V plugin: moves between backends, the destination side:
 * import_vm (disks as VHDX through the host's SMB share, then
 * Msvm_VirtualSystemManagementService.DefineSystem, ModifyResourceSettings
 * and AddResourceSettings), remove_vm (DestroySystem and the files) and
 * start_vm. Facts and sources: docs/design/hyperv.md §1.8, §2.2, §2.9.
 */
#include "config.h"

#include <string.h>
#include <glib/gstdio.h>

#include <vmshift/vmshift.h>

#include "hyperv.h"

/* ---- import ------------------------------------------------------------------ */

typedef struct {
    HvDest d;
    VmshiftJob *job;
    HvSmb *smb;
    char *guid;     /* the VM, once defined */
    char *vssd_iid; /* its settings */
    char *stage;    /* a private staging directory */
} Import;

static void
import_clear(Import *im)
{
    hv_dest_clear(&im->d);
    hv_smb_free(im->smb);
    if (im->stage != NULL)
        g_rmdir(im->stage);
    g_free(im->stage);
    g_free(im->guid);
    g_free(im->vssd_iid);
}
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(Import, import_clear)

static gboolean
save(Import *im, const char *key, const char *value, GError **error)
{
    return vmshift_job_save(im->job, key, value, error);
}

/* One disk: the source's bytes written as VHDX in staging-dir, then put on
 * the share as @path (a new file: an existing one is never overwritten). */
static gboolean
import_disk(Import *im, guint i, const char *path, guint64 *done, guint64 total, GError **error)
{
    const VmshiftDisk *k = im->d.src->disks->pdata[i];
    GCancellable *c = vmshift_job_get_cancellable(im->job);
    g_autoptr(GInputStream) in = NULL;
    g_autofree char *local = NULL;
    g_autofree char *what = g_strdup_printf("disk %s", k->id);
    guint64 cap = 0;
    gboolean ok;

    if (!hv_staging_room(im->d.b->staging_dir, k->capacity + HV_STAGE_SLACK, what, error))
        return FALSE;
    in = vmshift_job_open_source_disk(im->job, k->id, &cap, error);
    if (in == NULL)
        return FALSE;
    local = g_build_filename(im->stage, "disk.vhdx", NULL);
    hv_jlog(im->job, VMSHIFT_LOG_INFO, "disk %s: %" G_GUINT64_FORMAT " bytes to VHDX, then to %s",
            k->id, cap, path);
    if (!vmshift_disk_write_raw(in, cap, local, "vhdx", im->job, c, error))
        return FALSE;
    ok = hv_smb_upload(im->smb, local, path, c, error);
    g_unlink(local);
    if (ok) {
        *done += cap;
        vmshift_job_set_bytes(im->job, *done, total);
    }
    return ok;
}

static char *
vssd_epr_param(const Import *im)
{
    const char *sel[] = { "InstanceID", im->vssd_iid, NULL };
    g_autofree char *epr = hv_epr_xml(HV_V2 "Msvm_VirtualSystemSettingData", sel);
    return g_strdup_printf("<p:AffectedConfiguration>%s</p:AffectedConfiguration>", epr);
}

/* DefineSystem: the VM's settings (name, generation, folder) (§2.9). */
static gboolean
define_vm(Import *im, GError **error)
{
    HvCimXml *x = hv_cimxml_new("Msvm_VirtualSystemSettingData");
    g_autofree char *inst = NULL;
    g_autofree char *p = NULL;
    g_autofree char *q = NULL;
    g_autoptr(HvInstance) out = NULL;
    g_autoptr(HvInstance) vssd = NULL;
    const HvEpr *epr;

    hv_cimxml_prop(x, "ElementName", "string", im->d.src->name);
    hv_cimxml_prop(x, "VirtualSystemSubType", "string",
                   im->d.gen == 2 ? HV_SUBTYPE_GEN2 : HV_SUBTYPE_GEN1);
    hv_cimxml_prop(x, "ConfigurationDataRoot", "string", im->d.vmdir);
    hv_cimxml_prop(x, "SnapshotDataRoot", "string", im->d.vmdir);
    hv_cimxml_prop(x, "SwapFileDataRoot", "string", im->d.vmdir);
    inst = hv_cimxml_finish(x);
    p = hv_cdata("SystemSettings", inst);
    out = hv_vsms_call(im->d.h, "DefineSystem", p, "defining the VM", error);
    if (out == NULL)
        return FALSE;
    epr = hv_inst_get_epr(out, "ResultingSystem");
    if (epr != NULL && hv_epr_selector(epr, "Name") != NULL) {
        im->guid = g_strdup(hv_epr_selector(epr, "Name"));
    } else {
        /* A job that carried it out leaves the out REF empty (§1.8): find it. */
        g_autofree char *w = g_strdup_printf("ElementName = '%s'", im->d.src->name);
        g_autoptr(GPtrArray) css = hv_host_vm_cs(im->d.h, w, error);
        if (css == NULL)
            return FALSE;
        if (css->len != 1) {
            g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_PROTOCOL,
                        "Hyper-V host %s: DefineSystem gave no VM, and %u are named %s",
                        im->d.h->name, css->len, im->d.src->name);
            return FALSE;
        }
        im->guid = g_strdup(hv_inst_get(css->pdata[0], "Name"));
    }
    if (!hv_wql_safe(im->guid) || !save(im, "hv-vm-id", im->guid, error))
        return FALSE;
    q = g_strdup_printf("ASSOCIATORS OF {Msvm_ComputerSystem.CreationClassName="
                        "'Msvm_ComputerSystem',Name='%s'} WHERE AssocClass = "
                        "Msvm_SettingsDefineState ResultClass = Msvm_VirtualSystemSettingData",
                        im->guid);
    vssd = hv_first_of(im->d.h, HV_NS_V2, q, NULL, error);
    if (vssd == NULL)
        return FALSE;
    im->vssd_iid = g_strdup(hv_inst_get(vssd, "InstanceID"));
    return im->vssd_iid != NULL && hv_wql_safe(im->vssd_iid);
}

/* ModifyResourceSettings of the VM's one instance of @cls (memory or
 * processor) with VirtualQuantity (and Reservation/Limit for memory). */
static gboolean
modify_quantity(Import *im, const char *cls, guint64 qty, gboolean mem, GError **error)
{
    g_autoptr(GPtrArray) a = hv_vm_settings(im->d.h, im->vssd_iid, cls, error);
    g_autofree char *v = g_strdup_printf("%" G_GUINT64_FORMAT, qty);
    g_autofree char *inst = NULL;
    g_autofree char *p = NULL;
    g_autofree char *what = g_strdup_printf("setting %s", cls);
    g_autoptr(HvInstance) out = NULL;
    HvCimXml *x;

    if (a == NULL)
        return FALSE;
    if (a->len == 0) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_PROTOCOL,
                    "Hyper-V host %s: the new VM has no %s", im->d.h->name, cls);
        return FALSE;
    }
    x = hv_cimxml_new(cls);
    hv_cimxml_prop(x, "InstanceID", "string", hv_inst_get(a->pdata[0], "InstanceID"));
    hv_cimxml_prop(x, "VirtualQuantity", "uint64", v);
    if (mem) {
        hv_cimxml_prop(x, "Reservation", "uint64", v);
        hv_cimxml_prop(x, "Limit", "uint64", v);
    }
    inst = hv_cimxml_finish(x);
    p = hv_cdata("ResourceSettings", inst);
    out = hv_vsms_call(im->d.h, "ModifyResourceSettings", p, what, error);
    return out != NULL;
}

static GHashTable *
iid_set(GPtrArray *a, const char *cls)
{
    GHashTable *s = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);

    for (guint i = 0; a != NULL && i < a->len; i++) {
        HvInstance *x = a->pdata[i];
        if (g_strcmp0(x->cls, cls) == 0 && hv_inst_get(x, "InstanceID") != NULL)
            g_hash_table_add(s, g_strdup(hv_inst_get(x, "InstanceID")));
    }
    return s;
}

/* AddResourceSettings of one instance; the InstanceID of what Hyper-V
 * created (from ResultingResourceSettings, or the VM's new instance of
 * @cls when the job left the out REF empty). */
static char *
add_resource(Import *im, const char *cls, const char *inst, const char *what, GError **error)
{
    g_autoptr(GPtrArray) before = hv_vm_settings(im->d.h, im->vssd_iid, cls, error);
    g_autoptr(GHashTable) known = NULL;
    g_autoptr(GPtrArray) after = NULL;
    g_autofree char *aff = NULL;
    g_autofree char *rs = NULL;
    g_autofree char *p = NULL;
    g_autoptr(HvInstance) out = NULL;
    const HvEpr *epr;

    if (before == NULL)
        return NULL;
    known = iid_set(before, cls);
    aff = vssd_epr_param(im);
    rs = hv_cdata("ResourceSettings", inst);
    p = g_strconcat(aff, rs, NULL);
    out = hv_vsms_call(im->d.h, "AddResourceSettings", p, what, error);
    if (out == NULL)
        return NULL;
    epr = hv_inst_get_epr(out, "ResultingResourceSettings");
    if (epr != NULL && hv_epr_selector(epr, "InstanceID") != NULL)
        return g_strdup(hv_epr_selector(epr, "InstanceID"));
    after = hv_vm_settings(im->d.h, im->vssd_iid, cls, error);
    for (guint i = 0; after != NULL && i < after->len; i++) {
        HvInstance *x = after->pdata[i];
        const char *iid = hv_inst_get(x, "InstanceID");
        if (g_strcmp0(x->cls, cls) == 0 && iid != NULL && !g_hash_table_contains(known, iid))
            return g_strdup(iid);
    }
    if (after != NULL)
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_PROTOCOL,
                    "Hyper-V host %s: %s: AddResourceSettings added no %s", im->d.h->name, what,
                    cls);
    return NULL;
}

static char *
rasd_xml(const char *cls, gint rt, const char *subtype, const char *parent, const char *addr,
         const char *host_resource)
{
    HvCimXml *x = hv_cimxml_new(cls);
    g_autofree char *t = g_strdup_printf("%d", rt);

    hv_cimxml_prop(x, "ResourceType", "uint16", t);
    hv_cimxml_prop(x, "ResourceSubType", "string", subtype);
    if (parent != NULL)
        hv_cimxml_prop(x, "Parent", "string", parent);
    if (addr != NULL)
        hv_cimxml_prop(x, "AddressOnParent", "string", addr);
    if (host_resource != NULL)
        hv_cimxml_prop_array(x, "HostResource", "string", &host_resource, 1);
    return hv_cimxml_finish(x);
}

/* The controllers disks go on: generation 1's two IDE controllers (Hyper-V
 * makes them with the VM) and, when a disk needs one, a new SCSI controller. */
static gboolean
controllers(Import *im, char **ide, char **scsi, GError **error)
{
    g_autoptr(GPtrArray)
        a = hv_vm_settings(im->d.h, im->vssd_iid, "Msvm_ResourceAllocationSettingData", error);
    gboolean need_scsi = FALSE;

    if (a == NULL)
        return FALSE;
    for (guint i = 0; i < a->len; i++) {
        HvInstance *x = a->pdata[i];
        gint64 n = hv_inst_get_int(x, "Address", -1);
        if (hv_inst_get_int(x, "ResourceType", 0) == HV_RT_IDE_CONTROLLER && n >= 0 && n < 2)
            ide[n] = g_strdup(hv_inst_get(x, "InstanceID"));
    }
    for (guint i = 0; i < im->d.src->disks->len; i++) {
        const char *bus = hv_bus_for(im->d.gen, i);
        if (strcmp(bus, "scsi") == 0)
            need_scsi = TRUE;
        else if (ide[i / 2] == NULL) {
            g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_PROTOCOL,
                        "Hyper-V host %s: the generation 1 VM has no IDE controller %u",
                        im->d.h->name, i / 2);
            return FALSE;
        }
    }
    if (need_scsi) {
        g_autofree char *inst = rasd_xml(
            "Msvm_ResourceAllocationSettingData", HV_RT_SCSI_CONTROLLER,
            "Microsoft:Hyper-V:Synthetic SCSI Controller", NULL, NULL, NULL);
        *scsi = add_resource(im, "Msvm_ResourceAllocationSettingData", inst,
                             "adding a SCSI controller", error);
        if (*scsi == NULL)
            return FALSE;
    }
    return TRUE;
}

/* Each disk: a drive on its controller, the VHDX in the drive. */
static gboolean
attach_disks(Import *im, GError **error)
{
    char *ide[2] = { NULL, NULL };
    g_autofree char *scsi = NULL;
    gboolean ok = controllers(im, ide, &scsi, error);
    guint scsi_slot = 0;

    for (guint i = 0; ok && i < im->d.src->disks->len; i++) {
        const VmshiftDisk *k = im->d.src->disks->pdata[i];
        gboolean on_ide = strcmp(hv_bus_for(im->d.gen, i), "ide") == 0;
        g_autofree char *ctl = hv_settings_path(im->d.h, "Msvm_ResourceAllocationSettingData",
                                                on_ide ? ide[i / 2] : scsi);
        g_autofree char *slot = g_strdup_printf("%u", on_ide ? i % 2 : scsi_slot++);
        g_autofree char *what = g_strdup_printf("attaching disk %s", k->id);
        g_autofree char *drive = rasd_xml("Msvm_ResourceAllocationSettingData", HV_RT_DISK_DRIVE,
                                          "Microsoft:Hyper-V:Synthetic Disk Drive", ctl, slot,
                                          NULL);
        g_autofree char *drive_iid = add_resource(im, "Msvm_ResourceAllocationSettingData", drive,
                                                  what, error);
        g_autofree char *dpath = NULL;
        g_autofree char *file = hv_disk_file(&im->d, i);
        g_autofree char *sasd = NULL;
        g_autofree char *sasd_iid = NULL;

        if (drive_iid == NULL) {
            ok = FALSE;
            break;
        }
        dpath = hv_settings_path(im->d.h, "Msvm_ResourceAllocationSettingData", drive_iid);
        sasd = rasd_xml("Msvm_StorageAllocationSettingData", HV_RESOURCE_TYPE_LOGICAL_DISK,
                        "Microsoft:Hyper-V:Virtual Hard Disk", dpath, NULL, file);
        sasd_iid = add_resource(im, "Msvm_StorageAllocationSettingData", sasd, what, error);
        ok = sasd_iid != NULL;
    }
    g_free(ide[0]);
    g_free(ide[1]);
    return ok;
}

/* Each NIC: a synthetic adapter (static MAC where it can keep it) and its
 * connection to the switch of its network. */
static gboolean
attach_nics(Import *im, GError **error)
{
    g_autoptr(GPtrArray)
        sws = hv_wql(im->d.h, HV_NS_V2, "SELECT * FROM Msvm_VirtualEthernetSwitch", NULL, error);

    for (guint i = 0; sws != NULL && i < im->d.src->nics->len; i++) {
        const VmshiftNic *n = im->d.src->nics->pdata[i];
        g_autofree char *mac = hv_wmi_mac(n->mac);
        g_autofree char *uuid = g_uuid_string_random();
        g_autofree char *vsi = g_strdup_printf("{%s}", uuid);
        g_autofree char *what = g_strdup_printf("adding NIC %s", n->id);
        const HvInstance *sw = hv_switch_named(sws, n->network);
        HvCimXml *x = hv_cimxml_new("Msvm_SyntheticEthernetPortSettingData");
        g_autofree char *port = NULL;
        g_autofree char *port_iid = NULL;
        g_autofree char *ppath = NULL;
        g_autofree char *swpath = NULL;
        g_autofree char *conn = NULL;
        g_autofree char *conn_iid = NULL;
        const char *vsis[] = { vsi };

        hv_cimxml_prop(x, "ElementName", "string", n->id);
        hv_cimxml_prop(x, "ResourceType", "uint16", G_STRINGIFY(HV_RT_ETHERNET_PORT));
        hv_cimxml_prop(x, "ResourceSubType", "string", "Microsoft:Hyper-V:Synthetic Ethernet Port");
        hv_cimxml_prop_array(x, "VirtualSystemIdentifiers", "string", vsis, 1);
        hv_cimxml_prop(x, "StaticMacAddress", "boolean", mac != NULL ? "TRUE" : "FALSE");
        if (mac != NULL)
            hv_cimxml_prop(x, "Address", "string", mac);
        port = hv_cimxml_finish(x);
        port_iid = add_resource(im, "Msvm_SyntheticEthernetPortSettingData", port, what, error);
        if (port_iid == NULL)
            return FALSE;
        if (n->network == NULL)
            continue;
        if (sw == NULL) {
            g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_NOT_FOUND,
                        "NIC %s: Hyper-V host %s has no switch \"%s\"", n->id, im->d.h->name,
                        n->network);
            return FALSE;
        }
        ppath = hv_settings_path(im->d.h, "Msvm_SyntheticEthernetPortSettingData", port_iid);
        swpath = g_strdup_printf("\\\\%s\\root\\virtualization\\v2:Msvm_VirtualEthernetSwitch."
                                 "CreationClassName=\"Msvm_VirtualEthernetSwitch\",Name=\"%s\"",
                                 im->d.h->name, hv_inst_get(sw, "Name"));
        conn = rasd_xml("Msvm_EthernetPortAllocationSettingData", HV_RT_ETHERNET_CONN,
                        "Microsoft:Hyper-V:Ethernet Connection", ppath, NULL, swpath);
        conn_iid = add_resource(im, "Msvm_EthernetPortAllocationSettingData", conn, what, error);
        if (conn_iid == NULL)
            return FALSE;
    }
    return sws != NULL;
}

/* DestroySystem of the VM @guid on @h (its configuration goes; its VHDs stay). */
static gboolean
destroy_vm(HvHost *h, const char *guid, GError **error)
{
    const char *sel[] = { "CreationClassName", "Msvm_ComputerSystem", "Name", guid, NULL };
    g_autofree char *epr = hv_epr_xml(HV_V2 "Msvm_ComputerSystem", sel);
    g_autofree char *p = g_strdup_printf("<p:AffectedSystem>%s</p:AffectedSystem>", epr);
    g_autoptr(HvInstance) out = hv_vsms_call(h, "DestroySystem", p, "removing the VM", error);

    return out != NULL;
}

/* The VM named @name whose configuration is in @dir (an import that
 * stopped before it saved the VM's id), or NULL (with @error on failure). */
static char *
defined_in(HvHost *h, const char *name, const char *dir, GError **error)
{
    g_autofree char *w = g_strdup_printf("ElementName = '%s'", name);
    g_autoptr(GPtrArray) css = hv_wql_safe(name) ? hv_host_vm_cs(h, w, error) : NULL;

    for (guint i = 0; css != NULL && i < css->len; i++) {
        const char *guid = hv_inst_get(css->pdata[i], "Name");
        g_autofree char *q = NULL;
        g_autoptr(HvInstance) vssd = NULL;
        if (guid == NULL || !hv_wql_safe(guid))
            continue;
        q = g_strdup_printf("ASSOCIATORS OF {Msvm_ComputerSystem.CreationClassName="
                            "'Msvm_ComputerSystem',Name='%s'} WHERE AssocClass = "
                            "Msvm_SettingsDefineState ResultClass = "
                            "Msvm_VirtualSystemSettingData",
                            guid);
        vssd = hv_first_of(h, HV_NS_V2, q, NULL, error);
        if (vssd == NULL)
            return NULL;
        if (g_strcmp0(hv_inst_get(vssd, "ConfigurationDataRoot"), dir) == 0)
            return g_strdup(guid);
    }
    return NULL;
}

/* Removes what an import saved in @job on its host: the VM, the disk
 * files, the folders (when empty). Failures are logged; FALSE if any. */
static gboolean
undo_import(VmshiftBackend *b, VmshiftJob *job, GError **error)
{
    g_autofree char *host = vmshift_job_get_saved(job, "hv-host");
    g_autofree char *dir = vmshift_job_get_saved(job, "hv-dir");
    g_autofree char *guid = vmshift_job_get_saved(job, "hv-vm-id");
    g_autofree char *name = vmshift_job_get_saved(job, "hv-vm-name");
    g_autofree char *ndisks = vmshift_job_get_saved(job, "hv-disks");
    g_autofree char *vhddir = dir != NULL ? hv_join_win(dir, "Virtual Hard Disks") : NULL;
    g_autoptr(HvSmb) smb = NULL;
    HvHost *h = host != NULL ? hv_find_host(b, host) : NULL;
    guint n = ndisks != NULL ? (guint)g_ascii_strtoull(ndisks, NULL, 10) : 0;
    gboolean ok = TRUE;

    if (host == NULL)
        return TRUE; /* the import saved nothing: it created nothing */
    if (h == NULL || !hv_host_usable(h)) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_CONNECTION,
                    "removing the partial import: Hyper-V host %s is not connected", host);
        return FALSE;
    }
    if (guid == NULL && name != NULL && dir != NULL) {
        g_autoptr(GError) e = NULL;
        guid = defined_in(h, name, dir, &e);
        if (guid == NULL && e != NULL) {
            g_propagate_error(error, g_steal_pointer(&e));
            return FALSE;
        }
    }
    if (guid != NULL) {
        g_autofree char *w = g_strdup_printf("Name = '%s'", guid);
        g_autoptr(GPtrArray) css = hv_wql_safe(guid) ? hv_host_vm_cs(h, w, error) : NULL;
        if (css == NULL)
            return FALSE;
        if (css->len > 0) {
            if (!destroy_vm(h, guid, error))
                return FALSE;
            hv_jlog(job, VMSHIFT_LOG_INFO, "removed VM %s from %s", guid, h->name);
        }
    }
    smb = hv_smb_new(b, h, error);
    if (smb == NULL)
        return FALSE;
    for (guint i = 0; i < n; i++) {
        g_autofree char *k = g_strdup_printf("hv-disk-%u", i);
        g_autofree char *path = vmshift_job_get_saved(job, k);
        g_autoptr(GError) e = NULL;
        if (path != NULL && !hv_smb_unlink(smb, path, &e)) {
            hv_jlog(job, VMSHIFT_LOG_ERROR, "%s", e->message);
            if (ok)
                g_propagate_error(error, g_steal_pointer(&e));
            ok = FALSE;
        }
    }
    if (dir != NULL) {
        /* rmdir removes only empty folders: never what others put there */
        g_autoptr(GError) e1 = NULL;
        g_autoptr(GError) e2 = NULL;
        if (!hv_smb_rmdir(smb, vhddir, &e1))
            hv_jlog(job, VMSHIFT_LOG_WARNING, "%s", e1->message);
        if (!hv_smb_rmdir(smb, dir, &e2))
            hv_jlog(job, VMSHIFT_LOG_WARNING, "%s", e2->message);
    }
    return ok;
}

static gboolean
import_steps(Import *im, GError **error)
{
    const VmshiftVm *src = im->d.src;
    g_autofree char *vhddir = hv_join_win(im->d.vmdir, "Virtual Hard Disks");
    g_autofree char *n = g_strdup_printf("%u", src->disks->len);
    guint64 total = 0, done = 0;
    gboolean made;

    for (guint i = 0; i < src->disks->len; i++)
        total += ((VmshiftDisk *)src->disks->pdata[i])->capacity;
    if (!hv_dest_root_exists(im->smb, &im->d, error))
        return FALSE;
    if (!save(im, "hv-backend", im->d.b->backend, error)
        || !save(im, "hv-host", im->d.h->name, error) || !save(im, "hv-dir", im->d.vmdir, error)
        || !save(im, "hv-disks", n, error) || !hv_smb_mkdir(im->smb, im->d.vmdir, &made, error)
        || !hv_smb_mkdir(im->smb, vhddir, &made, error))
        return FALSE;
    for (guint i = 0; i < src->disks->len; i++) {
        g_autofree char *k = g_strdup_printf("hv-disk-%u", i);
        g_autofree char *path = hv_disk_file(&im->d, i);
        gboolean exists = FALSE;
        /* never journal (and so never roll back) a file that is not ours */
        if (!hv_smb_stat(im->smb, path, &exists, NULL, error))
            return FALSE;
        if (exists) {
            g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_CONFLICT,
                        "Hyper-V host %s already has %s", im->d.h->name, path);
            return FALSE;
        }
        if (!save(im, k, path, error) || !import_disk(im, i, path, &done, total, error))
            return FALSE;
    }
    /* before DefineSystem: a crash before its reply still finds the VM */
    if (!save(im, "hv-vm-name", src->name, error) || !define_vm(im, error))
        return FALSE;
    hv_jlog(im->job, VMSHIFT_LOG_INFO, "defined %s (generation %u) on %s as %s", src->name,
            im->d.gen, im->d.h->name, im->guid);
    if (src->memory > 0
        && !modify_quantity(im, "Msvm_MemorySettingData",
                            ((src->memory + HV_MEMORY_ALIGN - 1) / HV_MEMORY_ALIGN) * 2, TRUE,
                            error))
        return FALSE;
    if (src->vcpus > 0
        && !modify_quantity(im, "Msvm_ProcessorSettingData", src->vcpus, FALSE, error))
        return FALSE;
    return attach_disks(im, error) && attach_nics(im, error);
}

gboolean
hyperv_import_vm(VmshiftBackend *b, const VmshiftMigrationSpec *spec, VmshiftJob *job,
                 guint32 flags, GError **error)
{
    g_auto(Import) im = { 0 };
    g_autoptr(GPtrArray) same = NULL;
    g_autofree char *where = NULL;
    g_autoptr(GError) e = NULL;

    if (!vmshift_check_flags(flags, 0, "import_vm", error) || !hv_dest_open(b, spec, &im.d, error))
        return FALSE;
    im.job = job;
    where = g_strdup_printf("ElementName = '%s'", im.d.src->name);
    same = hv_host_vm_cs(im.d.h, where, error);
    if (same == NULL)
        return FALSE;
    if (same->len > 0) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_CONFLICT,
                    "Hyper-V host %s already has a VM named %s", im.d.h->name, im.d.src->name);
        return FALSE;
    }
    im.smb = hv_smb_new(b, im.d.h, error);
    if (im.smb == NULL || (im.stage = hv_stage_dir(b, error)) == NULL)
        return FALSE;
    if (import_steps(&im, &e))
        return TRUE;
    hv_jlog(job, VMSHIFT_LOG_WARNING, "import of %s failed; removing what it made on %s",
            im.d.src->name, im.d.h->name);
    {
        g_autoptr(GError) u = NULL;
        if (!undo_import(b, job, &u))
            hv_jlog(job, VMSHIFT_LOG_ERROR, "removing the partial import: %s", u->message);
    }
    g_propagate_error(error, g_steal_pointer(&e));
    return FALSE;
}

/* ---- remove, start ------------------------------------------------------------- */

gboolean
hyperv_remove_vm(VmshiftBackend *b, const char *vm, VmshiftJob *job, guint32 flags, GError **error)
{
    g_autoptr(HvVm) v = NULL;
    g_autoptr(GError) nf = NULL;
    g_autoptr(HvSmb) smb = NULL;
    g_autofree char *saved_id = job != NULL ? vmshift_job_get_saved(job, "hv-vm-id") : NULL;
    g_autofree char *saved_host = job != NULL ? vmshift_job_get_saved(job, "hv-host") : NULL;
    g_autofree char *root = NULL;

    if (!vmshift_check_flags(flags, 0, "remove_vm", error))
        return FALSE;
    if (job != NULL) {
        /* A rollback: only what this backend's import recorded goes (none
         * recorded: it made nothing, and a VM of that name is not ours). */
        g_autofree char *saved_be = vmshift_job_get_saved(job, "hv-backend");
        if (saved_host == NULL || g_strcmp0(saved_be, b->backend) != 0) {
            hv_jlog(job, VMSHIFT_LOG_INFO, "backend %s: the job's import made nothing here",
                    b->backend);
            return TRUE;
        }
        if (saved_id != NULL) {
            v = hv_find_vm(b, saved_id, FALSE, &nf);
            if (v != NULL && !hv_require_off(v, "remove", error))
                return FALSE;
        }
        return undo_import(b, job, error);
    }
    v = hv_find_vm(b, vm, FALSE, error);
    if (v == NULL || !hv_require_off(v, "remove", error))
        return FALSE;
    if (v->snaps != NULL && v->snaps->len > 0) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_CONFLICT,
                    "remove: VM %s has checkpoints; delete them first", vm);
        return FALSE;
    }
    root = g_strdup(hv_inst_get(v->vssd, "ConfigurationDataRoot"));
    smb = hv_smb_new(b, v->host, error);
    if (smb == NULL || !destroy_vm(v->host, hv_inst_get(v->cs, "Name"), error))
        return FALSE;
    for (guint i = 0; i < v->sasds->len; i++) {
        const char *path = hv_inst_get(v->sasds->pdata[i], "HostResource");
        if (path != NULL && !hv_smb_unlink(smb, path, error))
            return FALSE;
    }
    /* the folders, when that left them empty (rmdir never removes more) */
    for (guint i = 0; i < v->sasds->len; i++) {
        const char *path = hv_inst_get(v->sasds->pdata[i], "HostResource");
        const char *base = path != NULL ? hv_basename_win(path) : NULL;
        g_autofree char *dir = base != NULL && base > path + 3
                                   ? g_strndup(path, (gsize)(base - path - 1))
                                   : NULL;
        g_autoptr(GError) e = NULL;
        if (dir != NULL && !hv_smb_rmdir(smb, dir, &e))
            g_debug("%s", e->message);
    }
    if (root != NULL) {
        g_autoptr(GError) e = NULL;
        if (!hv_smb_rmdir(smb, root, &e))
            g_debug("%s", e->message);
    }
    return TRUE;
}

gboolean
hyperv_start_vm(VmshiftBackend *b, const char *vm, VmshiftJob *job, guint32 flags, GError **error)
{
    g_autoptr(HvVm) v = NULL;

    if (!vmshift_check_flags(flags, 0, "start_vm", error))
        return FALSE;
    if (job == NULL) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_INVALID_ARGUMENT, "start_vm needs a job");
        return FALSE;
    }
    v = hv_find_vm(b, vm, FALSE, error);
    return v != NULL && hv_vm_start(v->host, v, job, "move", vm, error);
}
