/*
 * ESX plugin: moves between backends (ABI 1.4), the source side and what
 * both sides share: export_vm (a stopped VM described from its config),
 * open_disk (a flat disk's bytes through the datastore HTTP file access),
 * remove_vm (Destroy_Task, and the files a partial import left) and
 * start_vm (PowerOnVM_Task). The destination side (check_import,
 * import_vm) is esx-v2v-import.c.
 */
#include "config.h"

#include <string.h>

#include "esx-impl.h"
#include "esx-ops.h"

static const char *const v2v_vm_paths[] = {
    "name",
    "runtime.powerState",
    "runtime.host",
    "config.hardware.numCPU",
    "config.hardware.memoryMB",
    "config.hardware.device",
    "config.firmware",
    "config.guestId",
    "config.bootOptions.bootOrder",
    "config.files.vmPathName",
    NULL,
};

EsxObject *
esx_v2v_read_vm(VmshiftBackend *be, const char *name, EsxResult **keep, GError **error)
{
    g_auto(EsxInventory) inv = { 0 };
    EsxObject *o = esx_find_vm(be, &inv, name, error);
    if (o == NULL)
        return NULL;
    return esx_retrieve_one(be, "VirtualMachine", o->value, v2v_vm_paths, keep, NULL, error);
}

/* The datacenters (name, vmFolder, datastore) under the root folder, or
 * the datacenter= one. */
EsxResult *
esx_v2v_datacenters(VmshiftBackend *be, GError **error)
{
    if (!esx_connect(be, error))
        return NULL;
    static const char *const paths[] = { "name", "vmFolder", "datastore", NULL };
    g_autofree char *root = esx_moref_xml("obj", "Folder", be->root_folder);
    g_autofree char *ps = esx_propset_xml("Datacenter", paths);
    g_autofree char *spec = g_strdup_printf(
        "<specSet>%s<objectSet>%s<skip>true</skip>"
        "<selectSet xsi:type=\"TraversalSpec\"><name>folderTraversal</name><type>Folder</type>"
        "<path>childEntity</path><skip>false</skip>"
        "<selectSet><name>folderTraversal</name></selectSet></selectSet>"
        "</objectSet></specSet>",
        ps, root);
    return esx_retrieve_spec(be, spec, NULL, error);
}

/* The datacenter holding datastore @ds (moref), respecting datacenter=. */
EsxObject *
esx_v2v_dc_of_ds(VmshiftBackend *be, EsxResult *dcs, const char *ds, GError **error)
{
    for (guint i = 0; dcs != NULL && i < dcs->objects->len; i++) {
        EsxObject *dc = dcs->objects->pdata[i];
        if (g_strcmp0(dc->type, "Datacenter") != 0)
            continue;
        g_autofree char *name = esx_prop_text(dc, "name");
        if (be->datacenter != NULL && g_strcmp0(name, be->datacenter) != 0)
            continue;
        g_autoptr(GPtrArray) l = esx_prop_morefs(dc, "datastore");
        for (guint k = 0; k < l->len; k++)
            if (g_strcmp0(l->pdata[k], ds) == 0)
                return dc;
    }
    g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_NOT_FOUND,
                "%s: no datacenter holds datastore %s", be->url, ds);
    return NULL;
}

/* "linux", "windows", "other" from a vSphere guestId. */
static char *
guest_family(const char *id)
{
    if (id == NULL || *id == '\0')
        return NULL;
    g_autofree char *l = g_ascii_strdown(id, -1);
    if (g_str_has_prefix(l, "win"))
        return g_strdup("windows");
    static const char *const linux_ids[] = { "linux",    "rhel",       "centos",  "debian",
                                             "ubuntu",   "sles",       "suse",    "fedora",
                                             "coreos",   "photon",     "asianux", "amazonlinux",
                                             "mandriva", "turbolinux", "redhat",  "oracle",
                                             "rocky",    "alma",       NULL };
    for (guint i = 0; linux_ids[i] != NULL; i++)
        if (strstr(l, linux_ids[i]) != NULL)
            return g_strdup("linux");
    return g_strdup("other");
}

/* "ide", "sata", "scsi", "nvme" of a controller device type. */
static const char *
controller_bus(const char *type)
{
    if (type == NULL)
        return NULL;
    if (g_strcmp0(type, "VirtualIDEController") == 0)
        return "ide";
    if (g_strcmp0(type, "VirtualAHCIController") == 0)
        return "sata";
    if (g_strcmp0(type, "VirtualNVMEController") == 0)
        return "nvme";
    if (g_strcmp0(type, "ParaVirtualSCSIController") == 0
        || g_strcmp0(type, "VirtualLsiLogicController") == 0
        || g_strcmp0(type, "VirtualLsiLogicSASController") == 0
        || g_strcmp0(type, "VirtualBusLogicController") == 0)
        return "scsi";
    return NULL;
}

static const xmlNode *
device_by_key(const EsxObject *vm, const char *key)
{
    for (xmlNode *d = vmshift_xml_first_element(esx_prop(vm, "config.hardware.device")); d != NULL;
         d = vmshift_xml_next_element(d)) {
        g_autofree char *k = vmshift_xml_child_text(d, VMSHIFT_NS_VIM25, "key");
        if (g_strcmp0(k, key) == 0)
            return d;
    }
    return NULL;
}

/* 1-based position of disk @key among the disks of bootOptions.bootOrder;
 * 0 when absent. */
static guint32
boot_rank(const EsxObject *vm, const char *key)
{
    guint32 rank = 0;
    for (xmlNode *b = vmshift_xml_first_element(esx_prop(vm, "config.bootOptions.bootOrder"));
         b != NULL; b = vmshift_xml_next_element(b)) {
        g_autofree char *t = vmshift_xml_xsi_type(b);
        if (g_strcmp0(t, "VirtualMachineBootOptionsBootableDiskDevice") != 0)
            continue;
        rank++;
        g_autofree char *k = vmshift_xml_child_text(b, VMSHIFT_NS_VIM25, "deviceKey");
        if (g_strcmp0(k, key) == 0)
            return rank;
    }
    return 0;
}

static guint64
disk_capacity(const xmlNode *d)
{
    g_autofree char *bytes = vmshift_xml_child_text(d, VMSHIFT_NS_VIM25, "capacityInBytes");
    g_autofree char *kb = vmshift_xml_child_text(d, VMSHIFT_NS_VIM25, "capacityInKB");
    return bytes != NULL ? g_ascii_strtoull(bytes, NULL, 10)
                         : (kb != NULL ? g_ascii_strtoull(kb, NULL, 10) * 1024 : 0);
}

static VmshiftDisk *
export_disk(const EsxObject *o, const xmlNode *d)
{
    VmshiftDisk *disk = vmshift_disk_new();
    xmlNode *b = vmshift_xml_child(d, VMSHIFT_NS_VIM25, "backing");
    disk->id = vmshift_xml_child_text(d, VMSHIFT_NS_VIM25, "key");
    disk->path = vmshift_xml_child_text(b, VMSHIFT_NS_VIM25, "fileName");
    disk->format = g_strdup("vmdk");
    disk->capacity = disk_capacity(d);
    disk->size_known = VMSHIFT_DISK_CAPACITY_KNOWN;
    disk->volume = esx_ds_name_of_path(disk->path);
    g_autofree char *ck = vmshift_xml_child_text(d, VMSHIFT_NS_VIM25, "controllerKey");
    const xmlNode *ctl = ck != NULL ? device_by_key(o, ck) : NULL;
    g_autofree char *ct = ctl != NULL ? vmshift_xml_xsi_type(ctl) : NULL;
    disk->bus = g_strdup(controller_bus(ct));
    disk->boot_order = boot_rank(o, disk->id);
    return disk;
}

/* The VM is off (VMSHIFT_ERROR_CONFLICT otherwise). */
static gboolean
require_off(VmshiftBackend *be, const EsxObject *o, const char *name, const char *what,
            GError **error)
{
    g_autofree char *ps = esx_prop_text(o, "runtime.powerState");
    if (g_strcmp0(ps, "poweredOff") == 0)
        return TRUE;
    g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_CONFLICT,
                "backend %s: VM %s is %s; %s needs it powered off", be->name, name,
                ps != NULL ? ps : "in an unknown power state", what);
    return FALSE;
}

VmshiftVm *
esx_export_vm(VmshiftBackend *be, const char *name, guint32 flags, GError **error)
{
    if (!vmshift_check_flags(flags, 0, "export_vm", error))
        return NULL;
    g_autoptr(EsxResult) keep = NULL;
    EsxObject *o = esx_v2v_read_vm(be, name, &keep, error);
    if (o == NULL || !require_off(be, o, name, "a move to another backend", error))
        return NULL;
    g_autoptr(EsxResult) nets = esx_cached_all(be, ESX_CACHE_NETWORKS, NULL, error);
    if (nets == NULL)
        return NULL;
    VmshiftVm *vm = vmshift_vm_new();
    vm->id = g_strdup(o->value);
    vm->name = esx_prop_text(o, "name");
    vm->power_state = VMSHIFT_POWER_STOPPED;
    vm->vcpus = (guint32)esx_prop_int(o, "config.hardware.numCPU");
    vm->memory = (guint64)esx_prop_int(o, "config.hardware.memoryMB") * 1024 * 1024;
    g_autofree char *fw = esx_prop_text(o, "config.firmware");
    /* vSphere's default when unset is BIOS */
    vm->firmware = g_strcmp0(fw, "efi") == 0 ? VMSHIFT_FIRMWARE_UEFI : VMSHIFT_FIRMWARE_BIOS;
    g_autofree char *gid = esx_prop_text(o, "config.guestId");
    vm->guest_os = guest_family(gid);
    g_autofree char *vmx = esx_prop_text(o, "config.files.vmPathName");
    if (vmx != NULL) {
        const char *slash = strrchr(vmx, '/');
        vm->config_path = slash != NULL ? g_strndup(vmx, slash - vmx) : g_strdup(vmx);
    }
    for (xmlNode *d = vmshift_xml_first_element(esx_prop(o, "config.hardware.device")); d != NULL;
         d = vmshift_xml_next_element(d)) {
        g_autofree char *t = vmshift_xml_xsi_type(d);
        if (g_strcmp0(t, "VirtualDisk") == 0) {
            g_ptr_array_add(vm->disks, export_disk(o, d));
        } else if (esx_is_nic_type(t)) {
            VmshiftNic *nic = vmshift_nic_new();
            nic->id = vmshift_xml_child_text(d, VMSHIFT_NS_VIM25, "key");
            nic->mac = vmshift_xml_child_text(d, VMSHIFT_NS_VIM25, "macAddress");
            nic->model = g_strdup(t);
            g_autofree char *moref = NULL;
            esx_nic_network(d, nets, &moref, &nic->network);
            if (nic->network == NULL)
                nic->network = g_strdup(moref);
            g_ptr_array_add(vm->nics, nic);
        }
    }
    return vm;
}

/* ---- VMDK descriptors ------------------------------------------------- */

/* The one flat extent of a descriptor: "RW SECTORS VMFS|FLAT \"FILE\" [0]"
 * in a createType "vmfs" or "monolithicFlat" descriptor without a parent. */
gboolean
esx_vmdk_flat_extent(const char *text, gsize len, char **file, guint64 *sectors, GError **error)
{
    if (len >= 4 && memcmp(text, "KDMV", 4) == 0) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_NOT_SUPPORTED,
                    "a sparse (monolithicSparse/streamOptimized) VMDK, not a flat one");
        return FALSE;
    }
    g_auto(GStrv) lines = g_strsplit(text, "\n", -1);
    g_autofree char *type = NULL;
    guint extents = 0;
    for (guint i = 0; lines[i] != NULL; i++) {
        char *l = g_strstrip(lines[i]);
        if (g_str_has_prefix(l, "createType=")) {
            type = g_strdup(l + 11);
            g_strdelimit(type, "\"", ' ');
            g_strstrip(type);
        } else if (g_str_has_prefix(l, "parentFileNameHint=")) {
            g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_NOT_SUPPORTED,
                        "a delta disk (snapshot) with a parent; remove the snapshots first");
            return FALSE;
        } else if (g_str_has_prefix(l, "RW ") || g_str_has_prefix(l, "RDONLY ")) {
            char kind[16] = "";
            char name[1024] = "";
            unsigned long long n = 0;
            extents++;
            if (sscanf(l, "%*s %llu %15s \"%1023[^\"]\"", &n, kind, name) != 3
                || (strcmp(kind, "VMFS") != 0 && strcmp(kind, "FLAT") != 0)) {
                g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_NOT_SUPPORTED,
                            "extent '%s' is not a flat extent", l);
                return FALSE;
            }
            g_free(*file);
            *file = g_strdup(name);
            *sectors = n;
        }
    }
    if (g_strcmp0(type, "vmfs") != 0 && g_strcmp0(type, "monolithicFlat") != 0) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_NOT_SUPPORTED,
                    "a VMDK of createType '%s' (only flat disks, vmfs or monolithicFlat, are read)",
                    type != NULL ? type : "(none)");
        return FALSE;
    }
    if (extents != 1 || *file == NULL || strchr(*file, '/') != NULL) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_NOT_SUPPORTED,
                    "a VMDK descriptor with %u extents (one flat extent next to it expected)",
                    extents);
        return FALSE;
    }
    return TRUE;
}

/* "[DS] dir/x.vmdk" → DS, "dir/x.vmdk" */
gboolean
esx_split_ds_path(const char *p, char **ds, char **rel)
{
    *ds = esx_ds_name_of_path(p);
    const char *end = p != NULL ? strchr(p, ']') : NULL;
    if (*ds == NULL || end == NULL)
        return FALSE;
    end++;
    while (*end == ' ')
        end++;
    *rel = g_strdup(end);
    return TRUE;
}

GInputStream *
esx_open_disk(VmshiftBackend *be, const char *name, const char *disk_id, GCancellable *cancellable,
              guint32 flags, GError **error)
{
    (void)cancellable;
    if (!vmshift_check_flags(flags, 0, "open_disk", error))
        return NULL;
    g_autoptr(EsxResult) keep = NULL;
    EsxObject *o = esx_v2v_read_vm(be, name, &keep, error);
    if (o == NULL || !require_off(be, o, name, "reading its disks", error))
        return NULL;
    const xmlNode *d = esx_find_device(o, disk_id, FALSE);
    if (d == NULL) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_NOT_FOUND, "VM %s has no disk %s", name,
                    disk_id);
        return NULL;
    }
    guint64 capacity = disk_capacity(d);
    xmlNode *b = vmshift_xml_child(d, VMSHIFT_NS_VIM25, "backing");
    g_autofree char *bt = vmshift_xml_xsi_type(b);
    g_autofree char *file = vmshift_xml_child_text(b, VMSHIFT_NS_VIM25, "fileName");
    if (g_strcmp0(bt, "VirtualDiskFlatVer2BackingInfo") != 0
        || vmshift_xml_child(b, VMSHIFT_NS_VIM25, "parent") != NULL) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_NOT_SUPPORTED,
                    "VM %s disk %s (%s) is a %s%s; only flat disks without snapshots can be "
                    "read over the datastore file access",
                    name, disk_id, file != NULL ? file : "?", bt != NULL ? bt : "backing",
                    vmshift_xml_child(b, VMSHIFT_NS_VIM25, "parent") != NULL ? " with a parent"
                                                                             : "");
        return NULL;
    }
    g_autofree char *ds = NULL, *rel = NULL;
    if (!esx_split_ds_path(file, &ds, &rel)) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_PROTOCOL,
                    "VM %s disk %s: backing file '%s' is not a datastore path", name, disk_id,
                    file != NULL ? file : "");
        return NULL;
    }
    g_autoptr(EsxResult) dss = esx_cached_all(be, ESX_CACHE_DATASTORES, NULL, error);
    EsxObject *dso = dss != NULL ? esx_lookup(dss, "Datastore", ds) : NULL;
    g_autoptr(EsxResult) dcs = dso != NULL ? esx_v2v_datacenters(be, error) : NULL;
    EsxObject *dc = dcs != NULL ? esx_v2v_dc_of_ds(be, dcs, dso->value, error) : NULL;
    if (dc == NULL) {
        if (dss != NULL && dso == NULL)
            g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_NOT_FOUND,
                        "VM %s disk %s: datastore %s not found", name, disk_id, ds);
        return NULL;
    }
    g_autofree char *dcname = esx_prop_text(dc, "name");
    gsize dlen = 0;
    guint status = 0;
    g_autofree char *desc = esx_folder_get_small(be, dcname, ds, rel, &dlen, &status, error);
    if (desc == NULL) {
        if (error != NULL && *error == NULL)
            g_set_error(error, VMSHIFT_ERROR,
                        status == 404 ? VMSHIFT_ERROR_NOT_FOUND : VMSHIFT_ERROR_FAILED,
                        "VM %s disk %s: GET of its descriptor %s answered HTTP %u", name, disk_id,
                        file, status);
        return NULL;
    }
    g_autofree char *extent = NULL;
    guint64 sectors = 0;
    if (!esx_vmdk_flat_extent(desc, dlen, &extent, &sectors, error)) {
        g_prefix_error(error, "VM %s disk %s (%s): ", name, disk_id, file);
        return NULL;
    }
    if (sectors * 512 != capacity) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_PROTOCOL,
                    "VM %s disk %s: its descriptor gives %" G_GUINT64_FORMAT
                    " bytes, the VM's config %" G_GUINT64_FORMAT,
                    name, disk_id, sectors * 512, capacity);
        return NULL;
    }
    g_autofree char *dir = g_path_get_dirname(rel);
    g_autofree char *flat = g_strcmp0(dir, ".") == 0 ? g_strdup(extent)
                                                     : g_strdup_printf("%s/%s", dir, extent);
    return esx_folder_open(be, dcname, ds, flat, capacity, error);
}

/* ---- remove and start ------------------------------------------------- */

static gboolean
vm_task(VmshiftBackend *be, const char *method, const char *moref, const char *name, GError **error)
{
    g_autofree char *this = esx_moref_xml("_this", "VirtualMachine", moref);
    g_autofree char *body = g_strdup_printf("<%s xmlns=\"urn:vim25\">%s</%s>", method, this,
                                            method);
    g_autofree char *task = esx_start_task(be, method, body, error);
    if (task == NULL || !esx_wait_task(be, task, method, error)) {
        g_prefix_error(error, "VM %s: ", name);
        return FALSE;
    }
    return TRUE;
}

/* ServiceContent.fileManager */
char *
esx_v2v_file_manager(VmshiftBackend *be, GError **error)
{
    g_autoptr(xmlDoc) doc = esx_call(
        be, "RetrieveServiceContent",
        "<RetrieveServiceContent xmlns=\"urn:vim25\"><_this type=\"ServiceInstance\">"
        "ServiceInstance</_this></RetrieveServiceContent>",
        NULL, NULL, error);
    if (doc == NULL)
        return NULL;
    g_autoptr(xmlXPathContext) ctx = vmshift_xpath_new(doc, NULL);
    char *fm = vmshift_xpath_string(ctx, NULL, "//vim:returnval/vim:fileManager");
    if (fm == NULL || *fm == '\0') {
        g_free(fm);
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_NOT_SUPPORTED,
                    "%s: the server has no FileManager", be->url);
        return NULL;
    }
    return fm;
}

gboolean
esx_v2v_delete_file(VmshiftBackend *be, const char *dc_moref, const char *ds_path, GError **error)
{
    g_autofree char *fm = esx_v2v_file_manager(be, error);
    if (fm == NULL)
        return FALSE;
    g_autofree char *this = esx_moref_xml("_this", "FileManager", fm);
    g_autofree char *dc = esx_moref_xml("datacenter", "Datacenter", dc_moref);
    g_autofree char *en = vmshift_xml_escape(ds_path);
    g_autofree char *body = g_strdup_printf(
        "<DeleteDatastoreFile_Task xmlns=\"urn:vim25\">%s<name>%s</name>%s"
        "</DeleteDatastoreFile_Task>",
        this, en, dc);
    g_autofree char *task = esx_start_task(be, "DeleteDatastoreFile_Task", body, error);
    return task != NULL && esx_wait_task(be, task, "DeleteDatastoreFile_Task", error);
}

/* What import_vm saved: "URL\tDC-MOREF\t[DS] DIR" (esx-v2v-import.c). */
static gboolean
remove_saved_dir(VmshiftBackend *be, VmshiftJob *job, GError **error)
{
    g_autofree char *saved = vmshift_job_get_saved(job, ESX_V2V_SAVED_DIR);
    if (saved == NULL || *saved == '\0')
        return TRUE;
    g_auto(GStrv) f = g_strsplit(saved, "\t", 3);
    if (g_strv_length(f) != 3 || g_strcmp0(f[0], be->url) != 0)
        return TRUE; /* another server's import */
    g_autoptr(GError) err = NULL;
    if (esx_v2v_delete_file(be, f[1], f[2], &err))
        return TRUE;
    if (g_strrstr(err->message, "FileNotFound") != NULL
        || g_strrstr(err->message, "CannotDeleteFile") != NULL) {
        /* already gone (Destroy_Task deleted the folder) */
        g_debug("%s: %s", f[2], err->message);
        return TRUE;
    }
    g_propagate_error(error, g_steal_pointer(&err));
    return FALSE;
}

gboolean
esx_remove_vm(VmshiftBackend *be, const char *name, VmshiftJob *job, guint32 flags, GError **error)
{
    if (!vmshift_check_flags(flags, 0, "remove_vm", error))
        return FALSE;
    g_autoptr(EsxResult) keep = NULL;
    g_autoptr(GError) err = NULL;
    EsxObject *o = esx_v2v_read_vm(be, name, &keep, &err);
    if (o == NULL && !g_error_matches(err, VMSHIFT_ERROR, VMSHIFT_ERROR_NOT_FOUND)) {
        g_propagate_error(error, g_steal_pointer(&err));
        return FALSE;
    }
    if (o != NULL) {
        if (!require_off(be, o, name, "removing it", error))
            return FALSE;
        /* Destroy_Task unregisters the VM and deletes its files */
        if (!vm_task(be, "Destroy_Task", o->value, name, error))
            return FALSE;
        g_mutex_lock(&be->lock);
        if (be->vm_ids != NULL)
            g_hash_table_remove(be->vm_ids, name);
        g_mutex_unlock(&be->lock);
        if (job != NULL)
            vmshift_job_log(job, VMSHIFT_LOG_INFO, "VM %s destroyed at %s", name, be->url);
    } else if (job == NULL) {
        g_propagate_error(error, g_steal_pointer(&err));
        return FALSE;
    }
    return job == NULL || remove_saved_dir(be, job, error);
}

gboolean
esx_start_vm(VmshiftBackend *be, const char *name, VmshiftJob *job, guint32 flags, GError **error)
{
    if (!vmshift_check_flags(flags, 0, "start_vm", error))
        return FALSE;
    g_autoptr(EsxResult) keep = NULL;
    EsxObject *o = esx_v2v_read_vm(be, name, &keep, error);
    if (o == NULL || !vm_task(be, "PowerOnVM_Task", o->value, name, error))
        return FALSE;
    if (job != NULL)
        vmshift_job_log(job, VMSHIFT_LOG_INFO, "VM %s powered on", name);
    return TRUE;
}
