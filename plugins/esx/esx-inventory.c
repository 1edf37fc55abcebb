/*
 * ESX plugin: the inventory (hosts, VMs, datastores, networks) an
 * operation reads, and the list and get operations on it.
 */
#include "config.h"

#include <string.h>

#include "esx-impl.h"
#include "esx-ops.h"

static const char *const vm_paths[] = {
    "name",
    "runtime.host",
    "runtime.powerState",
    "config.hardware.numCPU",
    "config.hardware.memoryMB",
    "config.hardware.device",
    "config.files.vmPathName",
    "datastore",
    "snapshot",
    "runtime.consolidationNeeded",
    "resourcePool",
    "summary.storage.committed",
    NULL,
};

/* TaskInfo properties used to recognise merges (esx-checkpoint.c), fetched
 * along with a VM when asked for (retrieve_vm). */
const char *const esx_merge_task_paths[] = {
    "info.entity",    "info.descriptionId", "info.state", "info.progress",
    "info.startTime", "info.queueTime",     NULL
};

void
esx_inventory_clear(EsxInventory *inv)
{
    g_clear_pointer(&inv->hosts, esx_result_free);
    g_clear_pointer(&inv->vms, esx_result_free);
    g_clear_pointer(&inv->datastores, esx_result_free);
    g_clear_pointer(&inv->networks, esx_result_free);
}

gboolean
esx_inventory_load(VmshiftBackend *be, EsxInventory *inv, gboolean hosts, gboolean vms, gboolean ds,
                   gboolean nets, GCancellable *c, GError **error)
{
    if (hosts && inv->hosts == NULL
        && (inv->hosts = esx_cached_all(be, ESX_CACHE_HOSTS, c, error)) == NULL)
        return FALSE;
    if (vms && inv->vms == NULL
        && (inv->vms = esx_retrieve_all(be, "VirtualMachine", vm_paths, c, error)) == NULL)
        return FALSE;
    if (ds && inv->datastores == NULL
        && (inv->datastores = esx_cached_all(be, ESX_CACHE_DATASTORES, c, error)) == NULL)
        return FALSE;
    if (nets && inv->networks == NULL
        && (inv->networks = esx_cached_all(be, ESX_CACHE_NETWORKS, c, error)) == NULL)
        return FALSE;
    return TRUE;
}

char *
esx_name_of(EsxResult *r, const char *moref)
{
    EsxObject *o = esx_result_find(r, moref);
    return o != NULL ? esx_prop_text(o, "name") : g_strdup(moref);
}

/* An object by name or moref. */
EsxObject *
esx_lookup(EsxResult *r, const char *type, const char *key)
{
    EsxObject *o = esx_result_find_name(r, type, key);
    if (o == NULL) {
        o = esx_result_find(r, key);
        if (o != NULL && type != NULL && g_strcmp0(o->type, type) != 0)
            o = NULL;
    }
    return o;
}

static VmshiftHostStatus
host_status(const EsxObject *h, char **detail)
{
    g_autofree char *cs = esx_prop_text(h, "runtime.connectionState");
    if (cs != NULL && g_strcmp0(cs, "connected") != 0) {
        *detail = g_strdup_printf("host is %s", cs);
        return VMSHIFT_HOST_DISCONNECTED;
    }
    if (esx_prop_bool(h, "runtime.inMaintenanceMode")) {
        *detail = g_strdup("host is in maintenance mode");
        return VMSHIFT_HOST_MAINTENANCE;
    }
    *detail = g_strdup("connected");
    return VMSHIFT_HOST_OK;
}

/* The networks a NIC can use on @h: HostSystem.network (the host's own
 * list; a network's host list is empty on some vCenters), by name. */
static GPtrArray *
host_networks(const EsxObject *h, EsxResult *nets)
{
    g_autoptr(GPtrArray) morefs = esx_prop_morefs(h, "network");
    GPtrArray *names = vmshift_string_list_new();

    for (guint i = 0; morefs && i < morefs->len; i++) {
        char *n = nets ? esx_name_of(nets, morefs->pdata[i]) : NULL;
        g_ptr_array_add(names, n ? n : g_strdup(morefs->pdata[i]));
    }
    return names;
}

static VmshiftHost *
make_host(const EsxObject *h, EsxResult *nets)
{
    VmshiftHost *host = vmshift_host_new();
    host->id = g_strdup(h->value);
    host->name = esx_prop_text(h, "name");
    host->status = host_status(h, &host->status_detail);
    host->hypervisor = esx_prop_text(h, "summary.config.product.fullName");
    if (host->hypervisor == NULL)
        host->hypervisor = g_strdup("VMware ESXi");
    host->cpu_model = esx_prop_text(h, "summary.hardware.cpuModel");
    host->cpu_count = (guint32)esx_prop_int(h, "summary.hardware.numCpuThreads");
    gint64 mhz = esx_prop_int(h, "summary.hardware.cpuMhz")
                 * esx_prop_int(h, "summary.hardware.numCpuCores");
    gint64 used = esx_prop_int(h, "summary.quickStats.overallCpuUsage");
    host->cpu_usage_percent = mhz > 0 ? (gint32)CLAMP(used * 100 / mhz, 0, 100) : -1;
    host->memory_total = (guint64)esx_prop_int(h, "summary.hardware.memorySize");
    guint64 mem_used = (guint64)esx_prop_int(h, "summary.quickStats.overallMemoryUsage") * 1024
                       * 1024;
    host->memory_free = host->memory_total > mem_used ? host->memory_total - mem_used : 0;
    if (nets)
        host->networks = host_networks(h, nets);
    return host;
}

GPtrArray *
esx_list_hosts(VmshiftBackend *be, guint32 flags, GError **error)
{
    if (!vmshift_check_flags(flags, 0, "list_hosts", error))
        return NULL;
    g_auto(EsxInventory) inv = { 0 };
    if (!esx_inventory_load(be, &inv, TRUE, FALSE, FALSE, FALSE, NULL, error))
        return NULL;
    /* the networks name each host's list; without them it is not said */
    if (!esx_inventory_load(be, &inv, FALSE, FALSE, FALSE, TRUE, NULL, NULL))
        inv.networks = NULL;
    GPtrArray *out = vmshift_list_new((GDestroyNotify)vmshift_host_free);
    for (guint i = 0; i < inv.hosts->objects->len; i++)
        g_ptr_array_add(out, make_host(inv.hosts->objects->pdata[i], inv.networks));
    return out;
}

gboolean
esx_is_nic_type(const char *t)
{
    static const char *const nics[] = {
        "VirtualE1000",
        "VirtualE1000e",
        "VirtualPCNet32",
        "VirtualVmxnet",
        "VirtualVmxnet2",
        "VirtualVmxnet3",
        "VirtualVmxnet3Vrdma",
        "VirtualSriovEthernetCard",
        NULL,
    };
    return t != NULL && g_strv_contains(nics, t);
}

/* The network a NIC backing is on: (moref, name). */
void
esx_nic_network(const xmlNode *dev, EsxResult *nets, char **moref, char **name)
{
    xmlNode *b = vmshift_xml_child(dev, VMSHIFT_NS_VIM25, "backing");
    g_autofree char *bt = vmshift_xml_xsi_type(b);
    *moref = NULL;
    *name = NULL;
    if (g_strcmp0(bt, "VirtualEthernetCardDistributedVirtualPortBackingInfo") == 0) {
        xmlNode *port = vmshift_xml_child(b, VMSHIFT_NS_VIM25, "port");
        *moref = vmshift_xml_child_text(port, VMSHIFT_NS_VIM25, "portgroupKey");
    } else if (g_strcmp0(bt, "VirtualEthernetCardNetworkBackingInfo") == 0) {
        *moref = vmshift_xml_child_text(b, VMSHIFT_NS_VIM25, "network");
        *name = vmshift_xml_child_text(b, VMSHIFT_NS_VIM25, "deviceName");
    } else if (g_strcmp0(bt, "VirtualEthernetCardOpaqueNetworkBackingInfo") == 0) {
        *name = vmshift_xml_child_text(b, VMSHIFT_NS_VIM25, "opaqueNetworkId");
    }
    if (*moref != NULL && nets != NULL) {
        /* portgroupKey is the portgroup's key, which vCenter also uses as
         * its moref value. */
        EsxObject *n = esx_result_find(nets, *moref);
        if (n != NULL) {
            g_free(*name);
            *name = esx_prop_text(n, "name");
        }
    }
}

char *
esx_ds_name_of_path(const char *path)
{
    if (path == NULL || path[0] != '[')
        return NULL;
    const char *end = strchr(path, ']');
    return end != NULL ? g_strndup(path + 1, end - path - 1) : NULL;
}

void
esx_count_snapshots(const xmlNode *list_parent, guint *n)
{
    for (xmlNode *c = vmshift_xml_first_element(list_parent); c != NULL;
         c = vmshift_xml_next_element(c)) {
        if (!vmshift_xml_node_is(c, VMSHIFT_NS_VIM25, "rootSnapshotList")
            && !vmshift_xml_node_is(c, VMSHIFT_NS_VIM25, "childSnapshotList"))
            continue;
        (*n)++;
        esx_count_snapshots(c, n);
    }
}

static VmshiftVm *
make_vm(const EsxObject *o, EsxInventory *inv)
{
    VmshiftVm *vm = vmshift_vm_new();
    vm->id = g_strdup(o->value);
    vm->name = esx_prop_text(o, "name");
    g_autofree char *host = esx_prop_text(o, "runtime.host");
    vm->host = host != NULL ? esx_name_of(inv->hosts, host) : NULL;
    g_autofree char *ps = esx_prop_text(o, "runtime.powerState");
    vm->power_state = g_strcmp0(ps, "poweredOn") == 0    ? VMSHIFT_POWER_RUNNING
                      : g_strcmp0(ps, "poweredOff") == 0 ? VMSHIFT_POWER_STOPPED
                      : g_strcmp0(ps, "suspended") == 0  ? VMSHIFT_POWER_SUSPENDED
                                                         : VMSHIFT_POWER_UNKNOWN;
    vm->vcpus = (guint32)esx_prop_int(o, "config.hardware.numCPU");
    vm->memory = (guint64)esx_prop_int(o, "config.hardware.memoryMB") * 1024 * 1024;
    g_autofree char *vmx = esx_prop_text(o, "config.files.vmPathName");
    if (vmx != NULL) {
        const char *slash = strrchr(vmx, '/');
        vm->config_path = slash != NULL ? g_strndup(vmx, slash - vmx) : g_strdup(vmx);
    }
    guint snaps = 0;
    esx_count_snapshots(esx_prop(o, "snapshot"), &snaps);
    vm->snapshot_count = snaps;
    if (esx_prop_bool(o, "runtime.consolidationNeeded"))
        vm->status_detail = g_strdup("disk consolidation needed");
    else
        vm->status_detail = g_strdup(ps);
    for (xmlNode *d = vmshift_xml_first_element(esx_prop(o, "config.hardware.device")); d != NULL;
         d = vmshift_xml_next_element(d)) {
        g_autofree char *t = vmshift_xml_xsi_type(d);
        g_autofree char *key = vmshift_xml_child_text(d, VMSHIFT_NS_VIM25, "key");
        if (g_strcmp0(t, "VirtualDisk") == 0) {
            VmshiftDisk *disk = vmshift_disk_new();
            xmlNode *b = vmshift_xml_child(d, VMSHIFT_NS_VIM25, "backing");
            disk->id = g_strdup(key);
            disk->path = vmshift_xml_child_text(b, VMSHIFT_NS_VIM25, "fileName");
            disk->format = g_strdup("vmdk");
            g_autofree char *bytes = vmshift_xml_child_text(d, VMSHIFT_NS_VIM25, "capacityInBytes");
            g_autofree char *kb = vmshift_xml_child_text(d, VMSHIFT_NS_VIM25, "capacityInKB");
            disk->capacity = bytes != NULL
                                 ? g_ascii_strtoull(bytes, NULL, 10)
                                 : (kb != NULL ? g_ascii_strtoull(kb, NULL, 10) * 1024 : 0);
            /* the allocation is not read here: the capacity bounds it */
            disk->size_known = bytes != NULL || kb != NULL ? VMSHIFT_DISK_CAPACITY_KNOWN : 0;
            disk->volume = esx_ds_name_of_path(disk->path);
            g_ptr_array_add(vm->disks, disk);
        } else if (esx_is_nic_type(t)) {
            VmshiftNic *nic = vmshift_nic_new();
            nic->id = g_strdup(key);
            nic->mac = vmshift_xml_child_text(d, VMSHIFT_NS_VIM25, "macAddress");
            nic->model = g_strdup(t);
            g_autofree char *moref = NULL;
            esx_nic_network(d, inv->networks, &moref, &nic->network);
            if (nic->network == NULL)
                nic->network = g_strdup(moref);
            g_ptr_array_add(vm->nics, nic);
        }
    }
    return vm;
}

const xmlNode *
esx_find_device(const EsxObject *vm, const char *id, gboolean nic)
{
    for (xmlNode *d = vmshift_xml_first_element(esx_prop(vm, "config.hardware.device")); d != NULL;
         d = vmshift_xml_next_element(d)) {
        g_autofree char *t = vmshift_xml_xsi_type(d);
        if (nic ? !esx_is_nic_type(t) : g_strcmp0(t, "VirtualDisk") != 0)
            continue;
        g_autofree char *key = vmshift_xml_child_text(d, VMSHIFT_NS_VIM25, "key");
        g_autofree char *label = NULL;
        xmlNode *di = vmshift_xml_child(d, VMSHIFT_NS_VIM25, "deviceInfo");
        label = vmshift_xml_child_text(di, VMSHIFT_NS_VIM25, "label");
        g_autofree char *mac = vmshift_xml_child_text(d, VMSHIFT_NS_VIM25, "macAddress");
        xmlNode *b = vmshift_xml_child(d, VMSHIFT_NS_VIM25, "backing");
        g_autofree char *file = vmshift_xml_child_text(b, VMSHIFT_NS_VIM25, "fileName");
        if (g_strcmp0(key, id) == 0 || g_strcmp0(label, id) == 0
            || (mac != NULL && g_ascii_strcasecmp(mac, id) == 0) || g_strcmp0(file, id) == 0)
            return d;
    }
    return NULL;
}

/* Resolves the optional @host argument of the list operations: *@out is
 * NULL when no filter was asked for, else the host's object; an unknown
 * host is NOT_FOUND. */
static gboolean
host_filter(VmshiftBackend *be, EsxResult *hosts, const char *host, EsxObject **out, GError **error)
{
    *out = NULL;
    if (host == NULL)
        return TRUE;
    if ((*out = esx_lookup(hosts, "HostSystem", host)) != NULL)
        return TRUE;
    g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_NOT_FOUND,
                "backend %s: host '%s' not found at %s", be->name, host, be->url);
    return FALSE;
}

GPtrArray *
esx_list_vms(VmshiftBackend *be, const char *host, guint32 flags, GError **error)
{
    if (!vmshift_check_flags(flags, 0, "list_vms", error))
        return NULL;
    g_auto(EsxInventory) inv = { 0 };
    if (!esx_inventory_load(be, &inv, TRUE, TRUE, FALSE, TRUE, NULL, error))
        return NULL;
    EsxObject *h = NULL;
    if (!host_filter(be, inv.hosts, host, &h, error))
        return NULL;
    GPtrArray *out = vmshift_list_new((GDestroyNotify)vmshift_vm_free);
    for (guint i = 0; i < inv.vms->objects->len; i++) {
        EsxObject *o = inv.vms->objects->pdata[i];
        if (h != NULL) {
            g_autofree char *rh = esx_prop_text(o, "runtime.host");
            if (g_strcmp0(rh, h->value) != 0)
                continue;
        }
        g_ptr_array_add(out, make_vm(o, &inv));
    }
    return out;
}

/* The VM @id's properties in one RetrievePropertiesEx; with @tasks, the
 * TaskManager's recent tasks (esx_merge_task_paths) in the same call. */
static EsxResult *
retrieve_vm(VmshiftBackend *be, const char *id, gboolean tasks, GError **error)
{
    tasks = tasks && esx_connect(be, NULL) && be->task_manager != NULL;
    g_autofree char *vps = esx_propset_xml("VirtualMachine", vm_paths);
    g_autofree char *vo = esx_moref_xml("obj", "VirtualMachine", id);
    GString *spec = g_string_new("<specSet>");
    g_string_append(spec, vps);
    if (tasks) {
        g_autofree char *tps = esx_propset_xml("Task", esx_task_entity_paths);
        g_string_append(spec, tps);
    }
    g_string_append_printf(spec, "<objectSet>%s</objectSet>", vo);
    if (tasks) {
        g_autofree char *tm = esx_moref_xml("obj", "TaskManager", be->task_manager);
        g_string_append_printf(spec,
                               "<objectSet>%s<skip>true</skip>"
                               "<selectSet xsi:type=\"TraversalSpec\"><type>TaskManager</type>"
                               "<path>recentTask</path><skip>false</skip></selectSet></objectSet>",
                               tm);
    }
    g_string_append(spec, "</specSet>");
    g_autofree char *sp = g_string_free(spec, FALSE);
    return esx_retrieve_spec(be, sp, NULL, error);
}

/* Drops from @r, read by retrieve_vm() with the recent tasks, the tasks
 * that are not on @vm or one of its snapshots, with their part of the reply:
 * only those are ever looked at (esx_start_vm_task_known(), merge_tasks()),
 * and the reply is kept for the whole job (issue 15: with 300 jobs at once,
 * the 200 recent tasks of each job's read were most of the plugin's
 * memory). */
static void
keep_own_tasks(EsxResult *r, const EsxObject *vm)
{
    g_autoptr(GPtrArray) snaps = esx_snapshots_of(vm);
    for (guint i = r->objects->len; i-- > 0;) {
        EsxObject *t = r->objects->pdata[i];
        if (g_strcmp0(t->type, "Task") != 0)
            continue;
        g_autofree char *entity = esx_prop_text(t, "info.entity");
        gboolean ours = entity != NULL && g_strcmp0(entity, vm->value) == 0;
        for (guint j = 0; entity != NULL && !ours && j < snaps->len; j++)
            ours = g_strcmp0(((VmshiftSnapshot *)snaps->pdata[j])->id, entity) == 0;
        if (ours)
            continue;
        /* <objects><obj/><propSet><name/><val/></propSet></objects>: the
         * object's element, from any of its values */
        GHashTableIter it;
        gpointer val = NULL;
        g_hash_table_iter_init(&it, t->props);
        xmlNode *objects = g_hash_table_iter_next(&it, NULL, &val) && val != NULL
                                   && ((xmlNode *)val)->parent != NULL
                               ? ((xmlNode *)val)->parent->parent
                               : NULL;
        g_ptr_array_remove_index(r->objects, i);
        if (objects != NULL && objects->type == XML_ELEMENT_NODE
            && vmshift_xml_node_is(objects, VMSHIFT_NS_VIM25, "objects")) {
            xmlUnlinkNode(objects);
            xmlFreeNode(objects);
        }
    }
}

static char *
cached_vm_id(VmshiftBackend *be, const char *name)
{
    g_mutex_lock(&be->lock);
    char *id = be->vm_ids != NULL ? g_strdup(g_hash_table_lookup(be->vm_ids, name)) : NULL;
    g_mutex_unlock(&be->lock);
    return id;
}

/* The VM @name (name or moref) with all its properties. With inv->vms
 * already loaded, look there; otherwise fetch only that VM: by the cached
 * moref when its name still matches, else after listing the names of all
 * VMs (one property each), which refreshes the cache. */
EsxObject *
esx_find_vm(VmshiftBackend *be, EsxInventory *inv, const char *name, GError **error)
{
    if (inv->vms != NULL) {
        EsxObject *o = esx_lookup(inv->vms, "VirtualMachine", name);
        if (o == NULL)
            g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_NOT_FOUND,
                        "backend %s: VM '%s' not found at %s", be->name, name, be->url);
        return o;
    }
    for (int attempt = 0; attempt < 2; attempt++) {
        g_autofree char *id = cached_vm_id(be, name);
        if (id != NULL) {
            g_autoptr(GError) err = NULL;
            g_autoptr(EsxResult) r = retrieve_vm(be, id, inv->want_tasks, &err);
            EsxObject *o = esx_result_find(r, id);
            if (o != NULL && g_strcmp0(o->type, "VirtualMachine") != 0)
                o = NULL;
            g_autofree char *n = esx_prop_text(o, "name");
            if (o != NULL && (g_strcmp0(n, name) == 0 || g_strcmp0(id, name) == 0)) {
                inv->have_tasks = inv->want_tasks && be->task_manager != NULL;
                if (inv->have_tasks)
                    keep_own_tasks(r, o);
                inv->vms = g_steal_pointer(&r);
                return o;
            }
            if (err != NULL && !g_error_matches(err, VMSHIFT_ERROR, VMSHIFT_ERROR_NOT_FOUND)) {
                g_propagate_error(error, g_steal_pointer(&err));
                return NULL;
            }
        }
        if (attempt == 1)
            break;
        static const char *const name_only[] = { "name", NULL };
        g_autoptr(EsxResult) all = esx_retrieve_all(be, "VirtualMachine", name_only, NULL, error);
        if (all == NULL)
            return NULL;
        GHashTable *ids = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
        for (guint i = 0; i < all->objects->len; i++) {
            EsxObject *o = all->objects->pdata[i];
            g_hash_table_replace(ids, g_strdup(o->value), g_strdup(o->value));
            char *n = esx_prop_text(o, "name");
            if (n != NULL)
                g_hash_table_replace(ids, n, g_strdup(o->value));
        }
        g_mutex_lock(&be->lock);
        if (be->vm_ids != NULL)
            g_hash_table_unref(be->vm_ids);
        be->vm_ids = ids;
        g_mutex_unlock(&be->lock);
    }
    g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_NOT_FOUND,
                "backend %s: VM '%s' not found at %s", be->name, name, be->url);
    return NULL;
}

VmshiftVm *
esx_get_vm(VmshiftBackend *be, const char *name, guint32 flags, GError **error)
{
    if (!vmshift_check_flags(flags, 0, "get_vm", error))
        return NULL;
    g_auto(EsxInventory) inv = { 0 };
    if (!esx_inventory_load(be, &inv, TRUE, FALSE, FALSE, TRUE, NULL, error))
        return NULL;
    EsxObject *o = esx_find_vm(be, &inv, name, error);
    return o != NULL ? make_vm(o, &inv) : NULL;
}

static gboolean
ds_mounted(const EsxObject *ds, const char *host_moref)
{
    for (xmlNode *m = vmshift_xml_first_element(esx_prop(ds, "host")); m != NULL;
         m = vmshift_xml_next_element(m)) {
        g_autofree char *k = vmshift_xml_child_text(m, VMSHIFT_NS_VIM25, "key");
        if (g_strcmp0(k, host_moref) == 0)
            return TRUE;
    }
    return FALSE;
}

/* Mounted on the host: Datastore.host lists the mounts, HostSystem.datastore
 * the host's datastores; either says so. */
gboolean
esx_ds_on_host(const EsxObject *ds, const EsxObject *host)
{
    if (ds_mounted(ds, host->value))
        return TRUE;
    xmlNode *l = esx_prop(host, "datastore");
    for (xmlNode *c = vmshift_xml_first_element(l); c != NULL; c = vmshift_xml_next_element(c)) {
        g_autofree char *v = vmshift_xml_text(c);
        if (g_strcmp0(v, ds->value) == 0)
            return TRUE;
    }
    return FALSE;
}

GPtrArray *
esx_list_volumes(VmshiftBackend *be, const char *host, guint32 flags, GError **error)
{
    if (!vmshift_check_flags(flags, 0, "list_volumes", error))
        return NULL;
    g_auto(EsxInventory) inv = { 0 };
    if (!esx_inventory_load(be, &inv, TRUE, FALSE, TRUE, FALSE, NULL, error))
        return NULL;
    EsxObject *h = NULL;
    if (!host_filter(be, inv.hosts, host, &h, error))
        return NULL;
    GPtrArray *out = vmshift_list_new((GDestroyNotify)vmshift_volume_free);
    for (guint i = 0; i < inv.datastores->objects->len; i++) {
        EsxObject *d = inv.datastores->objects->pdata[i];
        if (h != NULL && !esx_ds_on_host(d, h))
            continue;
        VmshiftVolume *v = vmshift_volume_new();
        v->id = g_strdup(d->value);
        v->name = esx_prop_text(d, "name");
        v->path = g_strdup_printf("[%s]", v->name);
        v->kind = esx_prop_text(d, "summary.type");
        v->capacity = (guint64)esx_prop_int(d, "summary.capacity");
        v->free = (guint64)esx_prop_int(d, "summary.freeSpace");
        /* an inaccessible datastore's free space is stale or absent */
        g_autofree char *acc = esx_prop_text(d, "summary.accessible");
        v->free_unknown = esx_prop(d, "summary.freeSpace") == NULL || !g_strcmp0(acc, "false");
        if (h != NULL)
            v->host = esx_prop_text(h, "name");
        if (v->hosts == NULL)
            v->hosts = vmshift_string_list_new();
        /* the hosts that mount it, by Datastore.host or HostSystem.datastore
         * (either may be the one a vCenter fills) */
        for (guint k = 0; k < inv.hosts->objects->len; k++) {
            EsxObject *x = inv.hosts->objects->pdata[k];
            if (esx_ds_on_host(d, x))
                g_ptr_array_add(v->hosts, esx_prop_text(x, "name"));
        }
        v->shared = v->hosts->len > 1;
        g_ptr_array_add(out, v);
    }
    return out;
}

GPtrArray *
esx_list_networks(VmshiftBackend *be, const char *host, guint32 flags, GError **error)
{
    if (!vmshift_check_flags(flags, 0, "list_networks", error))
        return NULL;
    g_auto(EsxInventory) inv = { 0 };
    if (!esx_inventory_load(be, &inv, TRUE, FALSE, FALSE, TRUE, NULL, error))
        return NULL;
    EsxObject *h = NULL;
    if (!host_filter(be, inv.hosts, host, &h, error))
        return NULL;
    GPtrArray *out = vmshift_list_new((GDestroyNotify)vmshift_network_free);
    for (guint i = 0; i < inv.networks->objects->len; i++) {
        EsxObject *n = inv.networks->objects->pdata[i];
        g_autoptr(GPtrArray) hosts = esx_prop_morefs(n, "host");
        if (h != NULL) {
            gboolean found = FALSE;
            for (guint j = 0; j < hosts->len && !found; j++)
                found = g_strcmp0(hosts->pdata[j], h->value) == 0;
            if (!found)
                continue;
        }
        VmshiftNetwork *net = vmshift_network_new();
        net->id = g_strdup(n->value);
        net->name = esx_prop_text(n, "name");
        net->kind = g_strdup(g_strcmp0(n->type, "DistributedVirtualPortgroup") == 0
                                 ? "distributed-portgroup"
                             : g_strcmp0(n->type, "OpaqueNetwork") == 0 ? "opaque"
                                                                        : "standard");
        if (net->hosts == NULL)
            net->hosts = vmshift_string_list_new();
        for (guint j = 0; j < hosts->len; j++)
            g_ptr_array_add(net->hosts, esx_name_of(inv.hosts, hosts->pdata[j]));
        g_ptr_array_add(out, net);
    }
    return out;
}
