/*
 * ESX plugin: the backend operations on the vSphere Web Services API.
 *
 * Every move is a RelocateVM_Task (vMotion, cold, storage vMotion with
 * per-disk locators, host + storage, NIC backings through deviceChange),
 * followed through its TaskInfo and cancelled with CancelTask. The plugin
 * checks the destination itself (connection state, maintenance mode,
 * datastores, space, networks) before sending anything.
 */
#include "config.h"

#include <string.h>

#include <json-c/json.h>

#include "esx.h"
#include "esx-ops.h"

/* Task polling: quick first looks (short tasks), then back off to 1 s. */
#define POLL_FIRST_MS 40
#define POLL_MAX_MS 1000

static guint
next_poll(guint *ms)
{
    guint cur = *ms == 0 ? POLL_FIRST_MS : *ms;
    *ms = MIN(cur * 2, POLL_MAX_MS);
    return cur;
}

static const char *const host_paths[] = {
    "name", "runtime.connectionState", "runtime.inMaintenanceMode",
    "summary.hardware.cpuModel", "summary.hardware.numCpuThreads",
    "summary.hardware.cpuMhz", "summary.hardware.numCpuCores",
    "summary.hardware.memorySize", "summary.quickStats.overallCpuUsage",
    "summary.quickStats.overallMemoryUsage", "summary.config.product.fullName",
    "parent", "datastore", "network", NULL,
};

static const char *const vm_paths[] = {
    "name", "runtime.host", "runtime.powerState", "config.hardware.numCPU",
    "config.hardware.memoryMB", "config.hardware.device", "config.files.vmPathName",
    "datastore", "snapshot", "runtime.consolidationNeeded", "resourcePool",
    "summary.storage.committed", NULL,
};

static const char *const ds_paths[] = {
    "name", "summary.capacity", "summary.freeSpace", "summary.accessible",
    "summary.type", "summary.maintenanceMode", "host", NULL,
};

static const char *const net_paths[] = { "name", "host", NULL };

const char *const *const esx_cache_paths[3] = { host_paths, ds_paths, net_paths };

/* TaskInfo properties used to recognise merges (checkpoint_state). */
static const char *const merge_task_paths[] = { "info.entity", "info.descriptionId", "info.state",
                                                "info.progress", "info.startTime", "info.queueTime",
                                                NULL };

/* ---- open / close ----------------------------------------------------- */

VmshiftBackend *
esx_open(const VmshiftConfig *config, guint32 flags, GError **error)
{
    if (!vmshift_check_flags(flags, 0, "open", error))
        return NULL;
    g_autoptr(VmshiftHttpOptions) opts =
        vmshift_http_options_new_from_config(config, VMSHIFT_HTTP_AUTH_NONE, error);
    if (opts == NULL)
        return NULL;
    const char *backend = vmshift_config_get_backend(config);
    if (opts->url == NULL) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_CONFIG,
                    "backend %s (%s): url= is required (https://vcenter/sdk)", backend,
                    vmshift_config_get_source(config));
        return NULL;
    }
    if (opts->credentials == NULL) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_CONFIG,
                    "backend %s (%s): credentials= is required (a root-only file with user= and password=)",
                    backend, vmshift_config_get_source(config));
        return NULL;
    }
    /* https://vc → https://vc/sdk */
    g_autofree char *url = NULL;
    {
        const char *p = strstr(opts->url, "://");
        const char *slash = p != NULL ? strchr(p + 3, '/') : NULL;
        if (slash == NULL || g_strcmp0(slash, "/") == 0)
            url = g_strdup_printf("%.*s/sdk", (int)(slash != NULL ? slash - opts->url : (int)strlen(opts->url)),
                                  opts->url);
        else
            url = g_strdup(opts->url);
        opts->url = url;
    }
    VmshiftHttp *http = vmshift_http_new(opts, error);
    if (http == NULL)
        return NULL;
    VmshiftBackend *be = g_new0(VmshiftBackend, 1);
    g_mutex_init(&be->lock);
    g_mutex_init(&be->rest_lock);
    be->name = g_strdup(backend);
    be->url = g_strdup(vmshift_http_get_url(http));
    be->http = http;
    be->datacenter = vmshift_config_get_string(config, "datacenter", NULL);
    if (!esx_connect(be, error)) {
        esx_close(be);
        return NULL;
    }
    return be;
}

void
esx_close(VmshiftBackend *be)
{
    if (be == NULL)
        return;
    if (be->logged_in) {
        g_autofree char *sm = esx_moref_xml("_this", "SessionManager", be->session_manager);
        g_autofree char *body = g_strdup_printf("<Logout xmlns=\"urn:vim25\">%s</Logout>", sm);
        g_autofree char *env = vmshift_soap_envelope(VMSHIFT_SOAP_1_1, NULL, NULL, body);
        g_autoptr(GError) err = NULL;
        g_autoptr(xmlDoc) doc = vmshift_soap_call(be->http, NULL, VMSHIFT_SOAP_1_1, "urn:vim25/6.5",
                                                  env, "Logout", NULL, NULL, &err);
        if (doc == NULL)
            g_debug("backend %s: Logout: %s", be->name, err->message);
    }
    g_debug("backend %s: %u SOAP calls", be->name, g_atomic_int_get(&be->soap_calls));
    if (be->rest_session != NULL) {
        g_autofree char *h = g_strdup_printf("vmware-api-session-id: %s", be->rest_session);
        const char *hdrs[] = { h, NULL };
        g_autoptr(GError) err = NULL;
        g_autoptr(VmshiftHttpResponse) r = vmshift_http_request(be->rest, "DELETE",
                                                                "/rest/com/vmware/cis/session", hdrs,
                                                                NULL, 0, NULL, &err);
        if (r == NULL)
            g_debug("backend %s: REST logout: %s", be->name, err->message);
        explicit_bzero(h, strlen(h));
        explicit_bzero(be->rest_session, strlen(be->rest_session));
        g_free(be->rest_session);
    }
    vmshift_http_free(be->rest);
    g_mutex_clear(&be->rest_lock);
    vmshift_http_free(be->http);
    for (guint k = 0; k < G_N_ELEMENTS(be->cache); k++)
        esx_result_free(be->cache[k]);
    esx_result_free(be->roles);
    if (be->pools != NULL)
        g_hash_table_unref(be->pools);
    if (be->pg_backings != NULL)
        g_hash_table_unref(be->pg_backings);
    g_mutex_clear(&be->lock);
    g_free(be->name);
    g_free(be->url);
    g_free(be->datacenter);
    g_free(be->root_folder);
    g_free(be->property_collector);
    g_free(be->view_manager);
    g_free(be->session_manager);
    g_free(be->auth_manager);
    g_free(be->task_manager);
    g_free(be->api_version);
    if (be->vm_ids != NULL)
        g_hash_table_unref(be->vm_ids);
    if (be->views != NULL)
        g_hash_table_unref(be->views);
    g_free(be->dc_moref);
    g_free(be);
}

/* ---- inventory -------------------------------------------------------- */

typedef struct {
    EsxResult *hosts;
    EsxResult *vms;
    EsxResult *datastores;
    EsxResult *networks;
    gboolean want_tasks;    /* find_vm: fetch the running merge tasks along */
    gboolean have_tasks;    /* vms holds the TaskManager's recent tasks */
} Inventory;

static void
inventory_clear(Inventory *inv)
{
    g_clear_pointer(&inv->hosts, esx_result_free);
    g_clear_pointer(&inv->vms, esx_result_free);
    g_clear_pointer(&inv->datastores, esx_result_free);
    g_clear_pointer(&inv->networks, esx_result_free);
}

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(Inventory, inventory_clear)

static gboolean
load(VmshiftBackend *be, Inventory *inv, gboolean hosts, gboolean vms, gboolean ds,
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

static char *
name_of(EsxResult *r, const char *moref)
{
    EsxObject *o = esx_result_find(r, moref);
    return o != NULL ? esx_prop_text(o, "name") : g_strdup(moref);
}

/* An object by name or moref. */
static EsxObject *
lookup(EsxResult *r, const char *type, const char *key)
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

static VmshiftHost *
make_host(const EsxObject *h)
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
    gint64 mhz = esx_prop_int(h, "summary.hardware.cpuMhz") * esx_prop_int(h, "summary.hardware.numCpuCores");
    gint64 used = esx_prop_int(h, "summary.quickStats.overallCpuUsage");
    host->cpu_usage_percent = mhz > 0 ? (gint32)CLAMP(used * 100 / mhz, 0, 100) : -1;
    host->memory_total = (guint64)esx_prop_int(h, "summary.hardware.memorySize");
    guint64 mem_used = (guint64)esx_prop_int(h, "summary.quickStats.overallMemoryUsage") * 1024 * 1024;
    host->memory_free = host->memory_total > mem_used ? host->memory_total - mem_used : 0;
    return host;
}

GPtrArray *
esx_list_hosts(VmshiftBackend *be, guint32 flags, GError **error)
{
    if (!vmshift_check_flags(flags, 0, "list_hosts", error))
        return NULL;
    g_auto(Inventory) inv = { 0 };
    if (!load(be, &inv, TRUE, FALSE, FALSE, FALSE, NULL, error))
        return NULL;
    GPtrArray *out = vmshift_list_new((GDestroyNotify)vmshift_host_free);
    for (guint i = 0; i < inv.hosts->objects->len; i++)
        g_ptr_array_add(out, make_host(inv.hosts->objects->pdata[i]));
    return out;
}

static gboolean
is_nic_type(const char *t)
{
    static const char *const nics[] = {
        "VirtualE1000", "VirtualE1000e", "VirtualPCNet32", "VirtualVmxnet",
        "VirtualVmxnet2", "VirtualVmxnet3", "VirtualVmxnet3Vrdma", "VirtualSriovEthernetCard", NULL,
    };
    return t != NULL && g_strv_contains(nics, t);
}

/* The network a NIC backing is on: (moref, name). */
static void
nic_network(const xmlNode *dev, EsxResult *nets, char **moref, char **name)
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

static char *
ds_name_of_path(const char *path)
{
    if (path == NULL || path[0] != '[')
        return NULL;
    const char *end = strchr(path, ']');
    return end != NULL ? g_strndup(path + 1, end - path - 1) : NULL;
}

static void
count_snapshots(const xmlNode *list_parent, guint *n)
{
    for (xmlNode *c = vmshift_xml_first_element(list_parent); c != NULL; c = vmshift_xml_next_element(c)) {
        if (!vmshift_xml_node_is(c, VMSHIFT_NS_VIM25, "rootSnapshotList")
            && !vmshift_xml_node_is(c, VMSHIFT_NS_VIM25, "childSnapshotList"))
            continue;
        (*n)++;
        count_snapshots(c, n);
    }
}

static VmshiftVm *
make_vm(const EsxObject *o, Inventory *inv)
{
    VmshiftVm *vm = vmshift_vm_new();
    vm->id = g_strdup(o->value);
    vm->name = esx_prop_text(o, "name");
    g_autofree char *host = esx_prop_text(o, "runtime.host");
    vm->host = host != NULL ? name_of(inv->hosts, host) : NULL;
    g_autofree char *ps = esx_prop_text(o, "runtime.powerState");
    vm->power_state = g_strcmp0(ps, "poweredOn") == 0 ? VMSHIFT_POWER_RUNNING
                      : g_strcmp0(ps, "poweredOff") == 0 ? VMSHIFT_POWER_STOPPED
                      : g_strcmp0(ps, "suspended") == 0 ? VMSHIFT_POWER_SUSPENDED
                      : VMSHIFT_POWER_UNKNOWN;
    vm->vcpus = (guint32)esx_prop_int(o, "config.hardware.numCPU");
    vm->memory = (guint64)esx_prop_int(o, "config.hardware.memoryMB") * 1024 * 1024;
    g_autofree char *vmx = esx_prop_text(o, "config.files.vmPathName");
    if (vmx != NULL) {
        const char *slash = strrchr(vmx, '/');
        vm->config_path = slash != NULL ? g_strndup(vmx, slash - vmx) : g_strdup(vmx);
    }
    guint snaps = 0;
    count_snapshots(esx_prop(o, "snapshot"), &snaps);
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
            disk->capacity = bytes != NULL ? g_ascii_strtoull(bytes, NULL, 10)
                                           : (kb != NULL ? g_ascii_strtoull(kb, NULL, 10) * 1024 : 0);
            disk->volume = ds_name_of_path(disk->path);
            g_ptr_array_add(vm->disks, disk);
        } else if (is_nic_type(t)) {
            VmshiftNic *nic = vmshift_nic_new();
            nic->id = g_strdup(key);
            nic->mac = vmshift_xml_child_text(d, VMSHIFT_NS_VIM25, "macAddress");
            nic->model = g_strdup(t);
            g_autofree char *moref = NULL;
            nic_network(d, inv->networks, &moref, &nic->network);
            if (nic->network == NULL)
                nic->network = g_strdup(moref);
            g_ptr_array_add(vm->nics, nic);
        }
    }
    return vm;
}

/* Resolves the optional @host argument of the list operations: *@out is
 * NULL when no filter was asked for, else the host's object; an unknown
 * host is NOT_FOUND. */
static gboolean
host_filter(VmshiftBackend *be, EsxResult *hosts, const char *host, EsxObject **out,
            GError **error)
{
    *out = NULL;
    if (host == NULL)
        return TRUE;
    if ((*out = lookup(hosts, "HostSystem", host)) != NULL)
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
    g_auto(Inventory) inv = { 0 };
    if (!load(be, &inv, TRUE, TRUE, FALSE, TRUE, NULL, error))
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
 * TaskManager's recent tasks (merge_task_paths) in the same call. */
static EsxResult *
retrieve_vm(VmshiftBackend *be, const char *id, gboolean tasks, GError **error)
{
    tasks = tasks && be->task_manager != NULL;
    g_autofree char *vps = esx_propset_xml("VirtualMachine", vm_paths);
    g_autofree char *vo = esx_moref_xml("obj", "VirtualMachine", id);
    GString *spec = g_string_new("<specSet>");
    g_string_append(spec, vps);
    if (tasks) {
        g_autofree char *tps = esx_propset_xml("Task", merge_task_paths);
        g_string_append(spec, tps);
    }
    g_string_append_printf(spec, "<objectSet>%s</objectSet>", vo);
    if (tasks) {
        g_autofree char *tm = esx_moref_xml("obj", "TaskManager", be->task_manager);
        g_string_append_printf(spec, "<objectSet>%s<skip>true</skip>"
                               "<selectSet xsi:type=\"TraversalSpec\"><type>TaskManager</type>"
                               "<path>recentTask</path><skip>false</skip></selectSet></objectSet>",
                               tm);
    }
    g_string_append(spec, "</specSet>");
    g_autofree char *sp = g_string_free(spec, FALSE);
    return esx_retrieve_spec(be, sp, NULL, error);
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
static EsxObject *
find_vm(VmshiftBackend *be, Inventory *inv, const char *name, GError **error)
{
    if (inv->vms != NULL) {
        EsxObject *o = lookup(inv->vms, "VirtualMachine", name);
        if (o == NULL)
            g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_NOT_FOUND,
                        "backend %s: VM '%s' not found at %s", be->name, name, be->url);
        return o;
    }
    for (int attempt = 0; attempt < 2; attempt++) {
        g_autofree char *id = cached_vm_id(be, name);
        if (id != NULL) {
            g_autoptr(GError) err = NULL;
            EsxResult *r = retrieve_vm(be, id, inv->want_tasks, &err);
            EsxObject *o = esx_result_find(r, id);
            if (o != NULL && g_strcmp0(o->type, "VirtualMachine") != 0)
                o = NULL;
            g_autofree char *n = esx_prop_text(o, "name");
            if (o != NULL && (g_strcmp0(n, name) == 0 || g_strcmp0(id, name) == 0)) {
                inv->vms = r;
                inv->have_tasks = inv->want_tasks && be->task_manager != NULL;
                return o;
            }
            esx_result_free(r);
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
    g_auto(Inventory) inv = { 0 };
    if (!load(be, &inv, TRUE, FALSE, FALSE, TRUE, NULL, error))
        return NULL;
    EsxObject *o = find_vm(be, &inv, name, error);
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
static gboolean
ds_on_host_obj(const EsxObject *ds, const EsxObject *host)
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
    g_auto(Inventory) inv = { 0 };
    if (!load(be, &inv, TRUE, FALSE, TRUE, FALSE, NULL, error))
        return NULL;
    EsxObject *h = NULL;
    if (!host_filter(be, inv.hosts, host, &h, error))
        return NULL;
    GPtrArray *out = vmshift_list_new((GDestroyNotify)vmshift_volume_free);
    for (guint i = 0; i < inv.datastores->objects->len; i++) {
        EsxObject *d = inv.datastores->objects->pdata[i];
        if (h != NULL && !ds_on_host_obj(d, h))
            continue;
        VmshiftVolume *v = vmshift_volume_new();
        v->id = g_strdup(d->value);
        v->name = esx_prop_text(d, "name");
        v->path = g_strdup_printf("[%s]", v->name);
        v->kind = esx_prop_text(d, "summary.type");
        v->capacity = (guint64)esx_prop_int(d, "summary.capacity");
        v->free = (guint64)esx_prop_int(d, "summary.freeSpace");
        if (h != NULL)
            v->host = esx_prop_text(h, "name");
        if (v->hosts == NULL)
            v->hosts = vmshift_string_list_new();
        guint nh = 0;
        for (xmlNode *m = vmshift_xml_first_element(esx_prop(d, "host")); m != NULL;
             m = vmshift_xml_next_element(m), nh++) {
            g_autofree char *k = vmshift_xml_child_text(m, VMSHIFT_NS_VIM25, "key");
            if (v->hosts != NULL)
                g_ptr_array_add(v->hosts, name_of(inv.hosts, k));
        }
        v->shared = nh > 1;
        g_ptr_array_add(out, v);
    }
    return out;
}

GPtrArray *
esx_list_networks(VmshiftBackend *be, const char *host, guint32 flags, GError **error)
{
    if (!vmshift_check_flags(flags, 0, "list_networks", error))
        return NULL;
    g_auto(Inventory) inv = { 0 };
    if (!load(be, &inv, TRUE, FALSE, FALSE, TRUE, NULL, error))
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
                                 : g_strcmp0(n->type, "OpaqueNetwork") == 0 ? "opaque" : "standard");
        if (net->hosts == NULL)
            net->hosts = vmshift_string_list_new();
        for (guint j = 0; j < hosts->len; j++)
            g_ptr_array_add(net->hosts, name_of(inv.hosts, hosts->pdata[j]));
        g_ptr_array_add(out, net);
    }
    return out;
}

/* ---- snapshots -------------------------------------------------------- */

static void
collect_snapshots(const xmlNode *parent, const char *parent_name, const char *current,
                  GPtrArray *out)
{
    for (xmlNode *c = vmshift_xml_first_element(parent); c != NULL; c = vmshift_xml_next_element(c)) {
        if (!vmshift_xml_node_is(c, VMSHIFT_NS_VIM25, "rootSnapshotList")
            && !vmshift_xml_node_is(c, VMSHIFT_NS_VIM25, "childSnapshotList"))
            continue;
        VmshiftSnapshot *s = vmshift_snapshot_new();
        s->id = vmshift_xml_child_text(c, VMSHIFT_NS_VIM25, "snapshot");
        s->name = vmshift_xml_child_text(c, VMSHIFT_NS_VIM25, "name");
        s->parent = g_strdup(parent_name);
        s->current = g_strcmp0(s->id, current) == 0;
        g_autofree char *ct = vmshift_xml_child_text(c, VMSHIFT_NS_VIM25, "createTime");
        g_autoptr(GDateTime) dt = ct != NULL ? g_date_time_new_from_iso8601(ct, NULL) : NULL;
        s->created = dt != NULL ? g_date_time_to_unix(dt) : 0;
        g_ptr_array_add(out, s);
        collect_snapshots(c, s->name, current, out);
    }
}

static GPtrArray *
snapshots_of(const EsxObject *vm)
{
    GPtrArray *out = vmshift_list_new((GDestroyNotify)vmshift_snapshot_free);
    xmlNode *info = esx_prop(vm, "snapshot");
    g_autofree char *cur = vmshift_xml_child_text(info, VMSHIFT_NS_VIM25, "currentSnapshot");
    collect_snapshots(info, NULL, cur, out);
    return out;
}

GPtrArray *
esx_list_snapshots(VmshiftBackend *be, const char *name, guint32 flags, GError **error)
{
    if (!vmshift_check_flags(flags, 0, "list_snapshots", error))
        return NULL;
    g_auto(Inventory) inv = { 0 };
    EsxObject *o = find_vm(be, &inv, name, error);
    return o != NULL ? snapshots_of(o) : NULL;
}

/* ---- checkpoint state (merges) --------------------------------------- */

typedef struct {
    char *task;
    char *description_id;
    char *state;
    gint32 progress;
    gint64 started;
} MergeTask;

static gboolean
is_merge_description(const char *id)
{
    return id != NULL
           && (g_ascii_strcasecmp(id, "VirtualMachine.consolidateDisks") == 0
               || g_ascii_strcasecmp(id, "VirtualMachine.removeAllSnapshots") == 0
               || g_ascii_strncasecmp(id, "VirtualMachineSnapshot.remove", 29) == 0);
}

/* Running snapshot-removal / consolidation tasks on the VM (or one of its
 * snapshots), from TaskManager.recentTask. */
static gboolean
merge_tasks(VmshiftBackend *be, const EsxObject *vm, const Inventory *inv, GArray *out,
            GError **error)
{
    if (be->task_manager == NULL)
        return TRUE;
    g_autoptr(EsxResult) fetched = NULL;
    EsxResult *tasks = inv != NULL && inv->have_tasks ? inv->vms : NULL;
    if (tasks == NULL) {
        /* TaskManager.recentTask → the tasks, in one call. */
        g_autofree char *tps = esx_propset_xml("Task", merge_task_paths);
        g_autofree char *tm = esx_moref_xml("obj", "TaskManager", be->task_manager);
        g_autofree char *spec = g_strdup_printf(
            "<specSet>%s<objectSet>%s<skip>true</skip><selectSet xsi:type=\"TraversalSpec\">"
            "<type>TaskManager</type><path>recentTask</path><skip>false</skip></selectSet>"
            "</objectSet></specSet>", tps, tm);
        fetched = esx_retrieve_spec(be, spec, NULL, error);
        if (fetched == NULL)
            return FALSE;
        tasks = fetched;
    }
    g_autoptr(GPtrArray) snaps = snapshots_of(vm);
    for (guint i = 0; i < tasks->objects->len; i++) {
        EsxObject *t = tasks->objects->pdata[i];
        if (g_strcmp0(t->type, "Task") != 0)
            continue;
        g_autofree char *entity = esx_prop_text(t, "info.entity");
        g_autofree char *state = esx_prop_text(t, "info.state");
        g_autofree char *desc = esx_prop_text(t, "info.descriptionId");
        if (g_strcmp0(state, "running") != 0 && g_strcmp0(state, "queued") != 0)
            continue;
        if (!is_merge_description(desc))
            continue;
        gboolean ours = g_strcmp0(entity, vm->value) == 0;
        for (guint j = 0; !ours && j < snaps->len; j++)
            ours = g_strcmp0(((VmshiftSnapshot *)snaps->pdata[j])->id, entity) == 0;
        if (!ours)
            continue;
        MergeTask m = { 0 };
        m.task = g_strdup(t->value);
        m.description_id = g_steal_pointer(&desc);
        m.state = g_steal_pointer(&state);
        m.progress = esx_prop(t, "info.progress") != NULL ? (gint32)esx_prop_int(t, "info.progress") : -1;
        g_autofree char *st = esx_prop_text(t, "info.startTime");
        if (st == NULL)
            st = esx_prop_text(t, "info.queueTime");
        g_autoptr(GDateTime) dt = st != NULL ? g_date_time_new_from_iso8601(st, NULL) : NULL;
        m.started = dt != NULL ? g_date_time_to_unix(dt) : 0;
        g_array_append_val(out, m);
    }
    return TRUE;
}

static void
merge_task_clear(gpointer p)
{
    MergeTask *m = p;
    g_free(m->task);
    g_free(m->description_id);
    g_free(m->state);
}

static char *
merge_detail(const EsxObject *vm, const MergeTask *m)
{
    g_autofree char *vmname = esx_prop_text(vm, "name");
    g_autoptr(GDateTime) dt = m->started ? g_date_time_new_from_unix_local(m->started) : NULL;
    g_autofree char *when = dt != NULL ? g_date_time_format(dt, "%H:%M") : g_strdup("?");
    g_autofree char *pct = m->progress >= 0 ? g_strdup_printf(", %d%%", m->progress) : g_strdup("");
    if (g_ascii_strcasecmp(m->description_id, "VirtualMachine.consolidateDisks") == 0)
        return g_strdup_printf("disks of VM '%s' are being consolidated (%s%s), started %s",
                               vmname, m->task, pct, when);
    if (g_ascii_strcasecmp(m->description_id, "VirtualMachine.removeAllSnapshots") == 0)
        return g_strdup_printf("all snapshots of VM '%s' are being removed (%s%s), started %s",
                               vmname, m->task, pct, when);
    /* TaskInfo does not say which snapshot; name it when there is only one
     * candidate. */
    g_autoptr(GPtrArray) snaps = snapshots_of(vm);
    if (snaps->len == 1)
        return g_strdup_printf("snapshot '%s' of VM '%s' is being removed (%s%s), started %s",
                               ((VmshiftSnapshot *)snaps->pdata[0])->name, vmname, m->task, pct, when);
    return g_strdup_printf("a snapshot of VM '%s' is being removed (%s%s), started %s",
                           vmname, m->task, pct, when);
}

static VmshiftCheckpointState *
checkpoint_state_of(VmshiftBackend *be, const EsxObject *vm, const Inventory *inv, GError **error)
{
    g_autoptr(GArray) tasks = g_array_new(FALSE, TRUE, sizeof(MergeTask));
    g_array_set_clear_func(tasks, merge_task_clear);
    if (!merge_tasks(be, vm, inv, tasks, error))
        return NULL;
    VmshiftCheckpointState *st = vmshift_checkpoint_state_new();
    st->needs_consolidation = esx_prop_bool(vm, "runtime.consolidationNeeded");
    st->percent = -1;
    if (tasks->len > 0) {
        MergeTask *m = &g_array_index(tasks, MergeTask, 0);
        st->merging = 1;
        st->detail = merge_detail(vm, m);
        st->percent = m->progress;
        st->started = m->started;
    } else if (st->needs_consolidation) {
        g_autofree char *n = esx_prop_text(vm, "name");
        st->detail = g_strdup_printf("VM '%s' needs disk consolidation (runtime.consolidationNeeded); "
                                     "run Consolidate before moving it", n);
    }
    return st;
}

VmshiftCheckpointState *
esx_checkpoint_state(VmshiftBackend *be, const char *name, guint32 flags, GError **error)
{
    if (!vmshift_check_flags(flags, 0, "checkpoint_state", error))
        return NULL;
    g_auto(Inventory) inv = { .want_tasks = TRUE };
    EsxObject *vm = find_vm(be, &inv, name, error);
    return vm != NULL ? checkpoint_state_of(be, vm, &inv, error) : NULL;
}

/* ---- planning a move -------------------------------------------------- */

typedef struct {
    char *key;          /* device key */
    char *ds;           /* target datastore moref */
    char *ds_name;
} DiskTarget;

typedef struct {
    char *key;
    char *backing;      /* the new <backing> fragment */
    char *net_name;
    const xmlNode *device;
} NicTarget;

typedef struct {
    EsxObject *vm;
    char *vm_name;
    char *src_host, *src_host_name;
    char *power;
    EsxObject *dest_host;   /* NULL: stays */
    char *dest_host_name;
    char *pool;             /* destination resource pool when the compute resource changes */
    EsxObject *dest_ds;     /* NULL: storage stays */
    GArray *disks;          /* DiskTarget */
    GArray *nics;           /* NicTarget */
    GPtrArray *findings;    /* VmshiftFinding */
    guint64 needed;         /* bytes the move needs on the target datastore(s) */
} Plan;

static void
disk_target_clear(gpointer p)
{
    DiskTarget *d = p;
    g_free(d->key);
    g_free(d->ds);
    g_free(d->ds_name);
}

static void
nic_target_clear(gpointer p)
{
    NicTarget *n = p;
    g_free(n->key);
    g_free(n->backing);
    g_free(n->net_name);
}

static void
plan_clear(Plan *p)
{
    g_free(p->vm_name);
    g_free(p->src_host);
    g_free(p->src_host_name);
    g_free(p->power);
    g_free(p->dest_host_name);
    g_free(p->pool);
    g_clear_pointer(&p->disks, g_array_unref);
    g_clear_pointer(&p->nics, g_array_unref);
    g_clear_pointer(&p->findings, g_ptr_array_unref);
}

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(Plan, plan_clear)

static void
finding(Plan *p, VmshiftSeverity sev, const char *code, const char *subject, const char *fmt, ...)
    G_GNUC_PRINTF(5, 6);

static void
finding(Plan *p, VmshiftSeverity sev, const char *code, const char *subject, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    g_autofree char *msg = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    g_ptr_array_add(p->findings, vmshift_finding_new(sev, code, subject, "%s", msg));
}

/* "LocalDS_1", "[LocalDS_1]", "[LocalDS_1] dir/x" or a moref. */
static EsxObject *
find_datastore(Inventory *inv, const char *spec)
{
    g_autofree char *name = ds_name_of_path(spec);
    return lookup(inv->datastores, "Datastore", name != NULL ? name : spec);
}

static const xmlNode *
find_device(const EsxObject *vm, const char *id, gboolean nic)
{
    for (xmlNode *d = vmshift_xml_first_element(esx_prop(vm, "config.hardware.device")); d != NULL;
         d = vmshift_xml_next_element(d)) {
        g_autofree char *t = vmshift_xml_xsi_type(d);
        if (nic ? !is_nic_type(t) : g_strcmp0(t, "VirtualDisk") != 0)
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

/* The backing fragment for a NIC on network @net. */
static char *
nic_backing(VmshiftBackend *be, EsxObject *net, GError **error)
{
    g_autofree char *name = esx_prop_text(net, "name");
    g_autofree char *en = vmshift_xml_escape(name);
    if (g_strcmp0(net->type, "DistributedVirtualPortgroup") == 0) {
        /* A port group's key and its switch's uuid never change: cached. */
        g_mutex_lock(&be->lock);
        const char *cached = be->pg_backings != NULL ? g_hash_table_lookup(be->pg_backings, net->value)
                                                     : NULL;
        char *hit = g_strdup(cached);
        g_mutex_unlock(&be->lock);
        if (hit != NULL)
            return hit;
        static const char *const pg_paths[] = { "key", "config.distributedVirtualSwitch", NULL };
        g_autoptr(EsxResult) k1 = NULL;
        EsxObject *pg = esx_retrieve_one(be, "DistributedVirtualPortgroup", net->value, pg_paths,
                                         &k1, NULL, error);
        if (pg == NULL)
            return NULL;
        g_autofree char *key = esx_prop_text(pg, "key");
        g_autofree char *dvs = esx_prop_text(pg, "config.distributedVirtualSwitch");
        g_autofree char *dvs_type = esx_node_moref_type(esx_prop(pg, "config.distributedVirtualSwitch"));
        static const char *const dvs_paths[] = { "uuid", NULL };
        g_autoptr(EsxResult) k2 = NULL;
        EsxObject *sw = dvs != NULL ? esx_retrieve_one(be, dvs_type != NULL ? dvs_type : "DistributedVirtualSwitch",
                                                       dvs, dvs_paths, &k2, NULL, error)
                                    : NULL;
        if (sw == NULL) {
            if (error != NULL && *error == NULL)
                g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_PROTOCOL,
                            "%s: port group '%s' has no distributed switch", be->url, name);
            return NULL;
        }
        g_autofree char *uuid = esx_prop_text(sw, "uuid");
        g_autofree char *eu = vmshift_xml_escape(uuid);
        g_autofree char *ek = vmshift_xml_escape(key != NULL ? key : net->value);
        char *backing = g_strdup_printf(
            "<backing xsi:type=\"VirtualEthernetCardDistributedVirtualPortBackingInfo\">"
            "<port><switchUuid>%s</switchUuid><portgroupKey>%s</portgroupKey></port>"
            "</backing>", eu, ek);
        g_mutex_lock(&be->lock);
        if (be->pg_backings == NULL)
            be->pg_backings = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
        g_hash_table_replace(be->pg_backings, g_strdup(net->value), g_strdup(backing));
        g_mutex_unlock(&be->lock);
        return backing;
    }
    if (g_strcmp0(net->type, "Network") != 0) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_NOT_SUPPORTED,
                    "network '%s' is a %s; only standard networks and distributed port groups can be mapped",
                    name, net->type);
        return NULL;
    }
    g_autofree char *ref = esx_moref_xml("network", "Network", net->value);
    return g_strdup_printf("<backing xsi:type=\"VirtualEthernetCardNetworkBackingInfo\">"
                           "<deviceName>%s</deviceName>%s</backing>", en, ref);
}

static gboolean
host_has(const EsxObject *h, const char *path, const char *moref)
{
    g_autoptr(GPtrArray) l = esx_prop_morefs(h, path);
    for (guint i = 0; i < l->len; i++)
        if (g_strcmp0(l->pdata[i], moref) == 0)
            return TRUE;
    return FALSE;
}

/* Build the plan and the findings; returns FALSE only when planning itself
 * could not run (VM unknown, server unreachable). */
static gboolean
plan_build(VmshiftBackend *be, const VmshiftMigrationSpec *spec, Inventory *inv, Plan *p,
           GCancellable *c, GError **error)
{
    p->findings = vmshift_list_new((GDestroyNotify)vmshift_finding_free);
    p->disks = g_array_new(FALSE, TRUE, sizeof(DiskTarget));
    g_array_set_clear_func(p->disks, disk_target_clear);
    p->nics = g_array_new(FALSE, TRUE, sizeof(NicTarget));
    g_array_set_clear_func(p->nics, nic_target_clear);
    if (spec->vm == NULL) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_INVALID_ARGUMENT, "no VM given");
        return FALSE;
    }
    if (spec->options != NULL && g_variant_n_children(spec->options) > 0) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_INVALID_ARGUMENT,
                    "backend %s: the ESX plugin takes no migration options", be->name);
        return FALSE;
    }
    if (!load(be, inv, TRUE, FALSE, TRUE, TRUE, c, error))
        return FALSE;
    inv->want_tasks = TRUE;
    p->vm = find_vm(be, inv, spec->vm, error);
    if (p->vm == NULL)
        return FALSE;
    p->vm_name = esx_prop_text(p->vm, "name");
    p->src_host = esx_prop_text(p->vm, "runtime.host");
    p->src_host_name = name_of(inv->hosts, p->src_host);
    p->power = esx_prop_text(p->vm, "runtime.powerState");
    gboolean on = g_strcmp0(p->power, "poweredOn") == 0;

    switch (spec->type) {
    case VMSHIFT_MIGRATION_LIVE:
        if (!on)
            finding(p, VMSHIFT_SEVERITY_ERROR, "vm-not-running", p->vm_name,
                    "VM '%s' is %s: a live migration (vMotion) needs it powered on; use --cold",
                    p->vm_name, p->power);
        break;
    case VMSHIFT_MIGRATION_COLD:
        if (on || g_strcmp0(p->power, "suspended") == 0)
            finding(p, VMSHIFT_SEVERITY_ERROR, "vm-running", p->vm_name,
                    "VM '%s' is %s: a cold migration needs it powered off (shut it down or use --live)",
                    p->vm_name, p->power);
        break;
    case VMSHIFT_MIGRATION_STORAGE:
        if (spec->dest_path == NULL && spec->disk_paths->len == 0)
            finding(p, VMSHIFT_SEVERITY_ERROR, "no-destination", p->vm_name,
                    "a storage migration needs --path DATASTORE or --disk-path");
        break;
    default:
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_INVALID_ARGUMENT,
                    "unknown migration type %u", spec->type);
        return FALSE;
    }

    /* Destination host. */
    EsxObject *dest = NULL;
    if (spec->type != VMSHIFT_MIGRATION_STORAGE && spec->dest_host != NULL) {
        dest = lookup(inv->hosts, "HostSystem", spec->dest_host);
        if (dest == NULL) {
            finding(p, VMSHIFT_SEVERITY_ERROR, "host-not-found", spec->dest_host,
                    "destination host '%s' not found at %s", spec->dest_host, be->url);
        } else {
            g_autofree char *hname = esx_prop_text(dest, "name");
            g_autofree char *cs = esx_prop_text(dest, "runtime.connectionState");
            if (g_strcmp0(cs, "connected") != 0)
                finding(p, VMSHIFT_SEVERITY_ERROR, "host-not-connected", hname,
                        "destination host '%s' is %s", hname, cs != NULL ? cs : "in an unknown state");
            if (esx_prop_bool(dest, "runtime.inMaintenanceMode"))
                finding(p, VMSHIFT_SEVERITY_ERROR, "host-maintenance", hname,
                        "destination host '%s' is in maintenance mode", hname);
            if (g_strcmp0(dest->value, p->src_host) != 0) {
                p->dest_host = dest;
                p->dest_host_name = g_steal_pointer(&hname);
            }
        }
    } else if (spec->type != VMSHIFT_MIGRATION_STORAGE) {
        finding(p, VMSHIFT_SEVERITY_ERROR, "no-destination", p->vm_name, "no destination host given");
    }
    EsxObject *target_host = p->dest_host != NULL ? p->dest_host : esx_result_find(inv->hosts, p->src_host);

    /* Resource pool: the destination compute resource's root pool when the
     * compute resource changes (vCenter requires spec.pool then). */
    if (p->dest_host != NULL) {
        EsxObject *src = esx_result_find(inv->hosts, p->src_host);
        g_autofree char *sp = esx_prop_text(src, "parent");
        g_autofree char *dp = esx_prop_text(p->dest_host, "parent");
        g_autofree char *dpt = esx_node_moref_type(esx_prop(p->dest_host, "parent"));
        if (dp != NULL && g_strcmp0(sp, dp) != 0) {
            /* A compute resource's root pool never changes: cached. */
            g_mutex_lock(&be->lock);
            p->pool = be->pools != NULL ? g_strdup(g_hash_table_lookup(be->pools, dp)) : NULL;
            g_mutex_unlock(&be->lock);
            if (p->pool == NULL) {
                static const char *const cr_paths[] = { "resourcePool", NULL };
                g_autoptr(EsxResult) keep = NULL;
                EsxObject *cr = esx_retrieve_one(be, dpt != NULL ? dpt : "ComputeResource", dp,
                                                 cr_paths, &keep, c, error);
                if (cr == NULL)
                    return FALSE;
                p->pool = esx_prop_text(cr, "resourcePool");
                if (p->pool != NULL) {
                    g_mutex_lock(&be->lock);
                    if (be->pools == NULL)
                        be->pools = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
                    g_hash_table_replace(be->pools, g_strdup(dp), g_strdup(p->pool));
                    g_mutex_unlock(&be->lock);
                }
            }
        }
    }

    /* Storage. */
    guint64 committed = (guint64)esx_prop_int(p->vm, "summary.storage.committed");
    guint64 disks_total = 0;
    for (xmlNode *d = vmshift_xml_first_element(esx_prop(p->vm, "config.hardware.device")); d != NULL;
         d = vmshift_xml_next_element(d)) {
        g_autofree char *t = vmshift_xml_xsi_type(d);
        if (g_strcmp0(t, "VirtualDisk") == 0) {
            g_autofree char *kb = vmshift_xml_child_text(d, VMSHIFT_NS_VIM25, "capacityInKB");
            disks_total += kb != NULL ? g_ascii_strtoull(kb, NULL, 10) * 1024 : 0;
        }
    }
    p->needed = committed > 0 ? committed : disks_total;
    GHashTable *need_per_ds = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    if (spec->dest_path != NULL) {
        p->dest_ds = find_datastore(inv, spec->dest_path);
        if (p->dest_ds == NULL)
            finding(p, VMSHIFT_SEVERITY_ERROR, "datastore-not-found", spec->dest_path,
                    "datastore '%s' not found at %s", spec->dest_path, be->url);
    }
    for (guint i = 0; i < spec->disk_paths->len; i++) {
        VmshiftMapping *m = spec->disk_paths->pdata[i];
        const xmlNode *dev = find_device(p->vm, m->key, FALSE);
        EsxObject *ds = find_datastore(inv, m->value);
        if (dev == NULL) {
            finding(p, VMSHIFT_SEVERITY_ERROR, "disk-not-found", m->key,
                    "VM '%s' has no disk '%s' (use its key, label or file name)", p->vm_name, m->key);
            continue;
        }
        if (ds == NULL) {
            finding(p, VMSHIFT_SEVERITY_ERROR, "datastore-not-found", m->value,
                    "datastore '%s' not found at %s", m->value, be->url);
            continue;
        }
        DiskTarget t = { 0 };
        t.key = vmshift_xml_child_text(dev, VMSHIFT_NS_VIM25, "key");
        t.ds = g_strdup(ds->value);
        t.ds_name = esx_prop_text(ds, "name");
        g_autofree char *kb = vmshift_xml_child_text(dev, VMSHIFT_NS_VIM25, "capacityInKB");
        guint64 sz = kb != NULL ? g_ascii_strtoull(kb, NULL, 10) * 1024 : 0;
        g_hash_table_insert(need_per_ds, g_strdup(ds->value),
                            GSIZE_TO_POINTER(GPOINTER_TO_SIZE(g_hash_table_lookup(need_per_ds, ds->value)) + sz));
        g_array_append_val(p->disks, t);
    }
    if (p->dest_ds != NULL) {
        guint64 rest = p->needed;
        GHashTableIter it;
        gpointer k, v;
        g_hash_table_iter_init(&it, need_per_ds);
        while (g_hash_table_iter_next(&it, &k, &v))
            rest = rest > GPOINTER_TO_SIZE(v) ? rest - GPOINTER_TO_SIZE(v) : 0;
        g_hash_table_insert(need_per_ds, g_strdup(p->dest_ds->value),
                            GSIZE_TO_POINTER(GPOINTER_TO_SIZE(g_hash_table_lookup(need_per_ds, p->dest_ds->value)) + rest));
    }
    {
        GHashTableIter it;
        gpointer k, v;
        g_hash_table_iter_init(&it, need_per_ds);
        g_autoptr(GPtrArray) cur = esx_prop_morefs(p->vm, "datastore");
        while (g_hash_table_iter_next(&it, &k, &v)) {
            EsxObject *ds = esx_result_find(inv->datastores, k);
            g_autofree char *dn = esx_prop_text(ds, "name");
            gboolean already = FALSE;
            for (guint i = 0; i < cur->len; i++)
                already |= g_strcmp0(cur->pdata[i], k) == 0;
            g_autofree char *mm = esx_prop_text(ds, "summary.maintenanceMode");
            if (esx_prop(ds, "summary.accessible") != NULL && !esx_prop_bool(ds, "summary.accessible"))
                finding(p, VMSHIFT_SEVERITY_ERROR, "datastore-inaccessible", dn,
                        "datastore '%s' is not accessible", dn);
            if (mm != NULL && g_strcmp0(mm, "normal") != 0)
                finding(p, VMSHIFT_SEVERITY_ERROR, "datastore-maintenance", dn,
                        "datastore '%s' is in maintenance mode (%s)", dn, mm);
            if (target_host != NULL && ds != NULL && !ds_on_host_obj(ds, target_host)) {
                g_autofree char *hn = esx_prop_text(target_host, "name");
                finding(p, VMSHIFT_SEVERITY_ERROR, "datastore-not-on-host", dn,
                        "datastore '%s' is not mounted on host '%s'", dn, hn);
            }
            guint64 free_b = (guint64)esx_prop_int(ds, "summary.freeSpace");
            guint64 need = GPOINTER_TO_SIZE(v);
            if (!already && need > free_b)
                finding(p, VMSHIFT_SEVERITY_ERROR, "datastore-too-small", dn,
                        "datastore '%s' has %" G_GUINT64_FORMAT " MiB free, the VM needs %"
                        G_GUINT64_FORMAT " MiB", dn, free_b >> 20, need >> 20);
        }
    }
    g_hash_table_unref(need_per_ds);
    gboolean moves_storage = p->dest_ds != NULL || p->disks->len > 0;
    if (!moves_storage && p->dest_host != NULL) {
        /* A compute-only move needs the VM's datastores on the new host. */
        g_autoptr(GPtrArray) cur = esx_prop_morefs(p->vm, "datastore");
        for (guint i = 0; i < cur->len; i++) {
            EsxObject *ds = esx_result_find(inv->datastores, cur->pdata[i]);
            if (ds != NULL && !ds_on_host_obj(ds, p->dest_host)) {
                g_autofree char *dn = esx_prop_text(ds, "name");
                finding(p, VMSHIFT_SEVERITY_ERROR, "datastore-not-on-host", dn,
                        "VM '%s' is on datastore '%s', which host '%s' does not mount; "
                        "add --path to move its storage too", p->vm_name, dn, p->dest_host_name);
            }
        }
    }
    if (moves_storage) {
        g_autoptr(GPtrArray) snaps = snapshots_of(p->vm);
        if (snaps->len > 0)
            finding(p, VMSHIFT_SEVERITY_WARNING, "snapshots-present", p->vm_name,
                    "VM '%s' has %u snapshot(s) (e.g. '%s'); they move with the storage and make it slower",
                    p->vm_name, snaps->len, ((VmshiftSnapshot *)snaps->pdata[0])->name);
    }

    /* Merges. */
    g_autoptr(VmshiftCheckpointState) cs = checkpoint_state_of(be, p->vm, inv, error);
    if (cs == NULL)
        return FALSE;
    if (cs->merging)
        finding(p, VMSHIFT_SEVERITY_ERROR, "merge-in-progress", p->vm_name, "%s", cs->detail);
    else if (cs->needs_consolidation)
        finding(p, VMSHIFT_SEVERITY_ERROR, "consolidation-needed", p->vm_name, "%s", cs->detail);

    /* Networks. */
    for (guint i = 0; i < spec->networks->len; i++) {
        VmshiftMapping *m = spec->networks->pdata[i];
        const xmlNode *dev = find_device(p->vm, m->key, TRUE);
        EsxObject *net = lookup(inv->networks, NULL, m->value);
        if (dev == NULL) {
            finding(p, VMSHIFT_SEVERITY_ERROR, "nic-not-found", m->key,
                    "VM '%s' has no network adapter '%s' (use its key, label or MAC)", p->vm_name, m->key);
            continue;
        }
        if (net == NULL) {
            finding(p, VMSHIFT_SEVERITY_ERROR, "network-not-found", m->value,
                    "network '%s' not found at %s", m->value, be->url);
            continue;
        }
        if (target_host != NULL && !host_has(target_host, "network", net->value)) {
            g_autofree char *hn = esx_prop_text(target_host, "name");
            finding(p, VMSHIFT_SEVERITY_ERROR, "network-not-on-host", m->value,
                    "network '%s' is not available on host '%s'", m->value, hn);
        }
        g_autoptr(GError) err = NULL;
        NicTarget t = { 0 };
        t.backing = nic_backing(be, net, &err);
        if (t.backing == NULL) {
            finding(p, VMSHIFT_SEVERITY_ERROR, "network-unusable", m->value, "%s", err->message);
            continue;
        }
        t.key = vmshift_xml_child_text(dev, VMSHIFT_NS_VIM25, "key");
        t.net_name = esx_prop_text(net, "name");
        t.device = dev;
        g_array_append_val(p->nics, t);
    }
    for (xmlNode *d = vmshift_xml_first_element(esx_prop(p->vm, "config.hardware.device")); d != NULL;
         d = vmshift_xml_next_element(d)) {
        g_autofree char *t = vmshift_xml_xsi_type(d);
        if (!is_nic_type(t))
            continue;
        g_autofree char *key = vmshift_xml_child_text(d, VMSHIFT_NS_VIM25, "key");
        gboolean mapped = FALSE;
        for (guint i = 0; i < p->nics->len; i++)
            mapped |= g_strcmp0(g_array_index(p->nics, NicTarget, i).key, key) == 0;
        if (mapped)
            continue;
        g_autofree char *moref = NULL, *nname = NULL;
        nic_network(d, inv->networks, &moref, &nname);
        if (p->dest_host != NULL && moref != NULL && !host_has(p->dest_host, "network", moref))
            finding(p, VMSHIFT_SEVERITY_WARNING, "nic-unmapped", key,
                    "network adapter %s is on '%s', which host '%s' does not have; map it with --network %s=NET",
                    key, nname != NULL ? nname : moref, p->dest_host_name, key);
        else if (spec->networks->len > 0)
            finding(p, VMSHIFT_SEVERITY_WARNING, "nic-unmapped", key,
                    "network adapter %s is not mapped and stays on '%s'", key,
                    nname != NULL ? nname : moref);
    }
    if (p->dest_host == NULL && !moves_storage && p->nics->len == 0
        && spec->type != VMSHIFT_MIGRATION_STORAGE && dest != NULL)
        finding(p, VMSHIFT_SEVERITY_INFO, "nothing-to-do", p->vm_name,
                "VM '%s' is already on host '%s'", p->vm_name, p->src_host_name);
    return TRUE;
}

GPtrArray *
esx_check_migration(VmshiftBackend *be, const VmshiftMigrationSpec *spec, guint32 flags,
                    GError **error)
{
    if (!vmshift_check_flags(flags, 0, "check_migration", error))
        return NULL;
    g_auto(Inventory) inv = { 0 };
    g_auto(Plan) p = { 0 };
    if (!plan_build(be, spec, &inv, &p, NULL, error))
        return NULL;
    return g_ptr_array_ref(p.findings);
}

/* ---- tasks ------------------------------------------------------------ */

typedef struct {
    char *state;
    gint32 progress;
    char *fault_type;
    char *message;
    char *result;
} TaskInfo;

static void
task_info_clear(TaskInfo *t)
{
    g_free(t->state);
    g_free(t->fault_type);
    g_free(t->message);
    g_free(t->result);
}

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(TaskInfo, task_info_clear)

static const char *const task_paths[] = { "info.state", "info.progress", "info.error",
                                          "info.result", NULL };

static gboolean task_parse(VmshiftBackend *be, const char *task, const EsxObject *t, TaskInfo *ti,
                           GError **error);

static gboolean
task_poll(VmshiftBackend *be, const char *task, TaskInfo *ti, GError **error)
{
    g_autoptr(EsxResult) keep = NULL;
    EsxObject *t = esx_retrieve_one(be, "Task", task, task_paths, &keep, NULL, error);
    if (t == NULL)
        return FALSE;
    return task_parse(be, task, t, ti, error);
}

static gboolean
task_parse(VmshiftBackend *be, const char *task, const EsxObject *t, TaskInfo *ti, GError **error)
{
    task_info_clear(ti);
    memset(ti, 0, sizeof *ti);
    ti->state = esx_prop_text(t, "info.state");
    ti->progress = esx_prop(t, "info.progress") != NULL ? (gint32)esx_prop_int(t, "info.progress") : -1;
    xmlNode *err = esx_prop(t, "info.error");
    if (err != NULL) {
        xmlNode *f = vmshift_xml_child(err, VMSHIFT_NS_VIM25, "fault");
        ti->fault_type = vmshift_xml_xsi_type(f);
        ti->message = vmshift_xml_child_text(err, VMSHIFT_NS_VIM25, "localizedMessage");
        if (ti->message != NULL)
            g_strstrip(ti->message);
    }
    ti->result = esx_prop_text(t, "info.result");
    if (ti->state == NULL) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_PROTOCOL, "%s: task %s has no info.state",
                    be->url, task);
        return FALSE;
    }
    /* A finished task changed placement, free space or usage: the cached
     * hosts and datastores are stale now. */
    if (g_strcmp0(ti->state, "success") == 0 || g_strcmp0(ti->state, "error") == 0)
        esx_cache_invalidate(be, (1u << ESX_CACHE_HOSTS) | (1u << ESX_CACHE_DATASTORES));
    return TRUE;
}

static int
task_fault_code(const char *type)
{
    static const struct { const char *t; int code; } map[] = {
        { "InvalidState", VMSHIFT_ERROR_CONFLICT }, { "InvalidPowerState", VMSHIFT_ERROR_CONFLICT },
        { "HostNotConnected", VMSHIFT_ERROR_CONNECTION }, { "NotAuthenticated", VMSHIFT_ERROR_AUTH_FAILED },
        { "NoPermission", VMSHIFT_ERROR_PERMISSION }, { "InsufficientResourcesFault", VMSHIFT_ERROR_NO_SPACE },
        { "OutOfDiskSpace", VMSHIFT_ERROR_NO_SPACE }, { "ManagedObjectNotFound", VMSHIFT_ERROR_NOT_FOUND },
        { "TaskInProgress", VMSHIFT_ERROR_BUSY }, { "Timedout", VMSHIFT_ERROR_TIMEOUT },
        { "InvalidArgument", VMSHIFT_ERROR_INVALID_ARGUMENT },
    };
    for (guint i = 0; type != NULL && i < G_N_ELEMENTS(map); i++)
        if (g_strcmp0(map[i].t, type) == 0)
            return map[i].code;
    return VMSHIFT_ERROR_FAILED;
}

static char *
start_task(VmshiftBackend *be, const char *what, const char *body, GError **error)
{
    g_autoptr(xmlDoc) doc = esx_call(be, what, body, NULL, NULL, error);
    if (doc == NULL)
        return NULL;
    char *task = vmshift_xml_child_text(vmshift_soap_body(doc), VMSHIFT_NS_VIM25, "returnval");
    if (task == NULL || task[0] == '\0') {
        g_free(task);
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_PROTOCOL, "%s %s: no task in the reply",
                    be->url, what);
        return NULL;
    }
    return task;
}

static gboolean
cancel_task(VmshiftBackend *be, const char *task, GError **error)
{
    g_autofree char *t = esx_moref_xml("_this", "Task", task);
    g_autofree char *body = g_strdup_printf("<CancelTask xmlns=\"urn:vim25\">%s</CancelTask>", t);
    g_autoptr(xmlDoc) doc = esx_call(be, "CancelTask", body, NULL, NULL, error);
    return doc != NULL;
}

/* Wait for a task that needs no progress reporting. */
static gboolean
wait_task(VmshiftBackend *be, const char *task, const char *what, GError **error)
{
    g_auto(TaskInfo) ti = { 0 };
    guint poll = 0;
    for (;;) {
        if (!task_poll(be, task, &ti, error))
            return FALSE;
        if (g_strcmp0(ti.state, "success") == 0)
            return TRUE;
        if (g_strcmp0(ti.state, "error") == 0) {
            g_set_error(error, VMSHIFT_ERROR, task_fault_code(ti.fault_type), "%s %s failed: %s: %s",
                        be->url, what, ti.fault_type != NULL ? ti.fault_type : "error",
                        ti.message != NULL ? ti.message : "(no message)");
            return FALSE;
        }
        g_usleep(next_poll(&poll) * 1000);
    }
}

/* ---- migrate ---------------------------------------------------------- */

typedef struct {
    GHashTable *disks;      /* device keys of VirtualDisks */
    guint snapshots;
    char *host;
} VmState;

static void
vm_state_clear(VmState *s)
{
    g_clear_pointer(&s->disks, g_hash_table_unref);
    g_clear_pointer(&s->host, g_free);
}

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(VmState, vm_state_clear)

static const char *const vm_state_paths[] = { "config.hardware.device", "snapshot", "runtime.host",
                                              "runtime.powerState", NULL };

static void vm_state_parse(const EsxObject *o, VmState *out, char **power);

static gboolean
vm_state(VmshiftBackend *be, const char *vm, VmState *out, char **power, GError **error)
{
    g_autoptr(EsxResult) keep = NULL;
    EsxObject *o = esx_retrieve_one(be, "VirtualMachine", vm, vm_state_paths, &keep, NULL, error);
    if (o == NULL)
        return FALSE;
    vm_state_parse(o, out, power);
    return TRUE;
}

/* The task's info and the VM's state in one RetrievePropertiesEx. */
static gboolean
task_poll_vm(VmshiftBackend *be, const char *task, const char *vm, TaskInfo *ti, VmState *now,
             GError **error)
{
    g_autofree char *tps = esx_propset_xml("Task", task_paths);
    g_autofree char *vps = esx_propset_xml("VirtualMachine", vm_state_paths);
    g_autofree char *to = esx_moref_xml("obj", "Task", task);
    g_autofree char *vo = esx_moref_xml("obj", "VirtualMachine", vm);
    g_autofree char *spec = g_strdup_printf("<specSet>%s%s<objectSet>%s</objectSet>"
                                            "<objectSet>%s</objectSet></specSet>", tps, vps, to, vo);
    g_autoptr(EsxResult) r = esx_retrieve_spec(be, spec, NULL, error);
    if (r == NULL)
        return FALSE;
    EsxObject *t = esx_result_find(r, task);
    EsxObject *o = esx_result_find(r, vm);
    if (t == NULL || o == NULL) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_NOT_FOUND, "%s: %s %s not found", be->url,
                    t == NULL ? "Task" : "VirtualMachine", t == NULL ? task : vm);
        return FALSE;
    }
    if (!task_parse(be, task, t, ti, error))
        return FALSE;
    vm_state_parse(o, now, NULL);
    return TRUE;
}

static void
vm_state_parse(const EsxObject *o, VmState *out, char **power)
{
    vm_state_clear(out);
    out->disks = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    for (xmlNode *d = vmshift_xml_first_element(esx_prop(o, "config.hardware.device")); d != NULL;
         d = vmshift_xml_next_element(d)) {
        g_autofree char *t = vmshift_xml_xsi_type(d);
        if (g_strcmp0(t, "VirtualDisk") != 0)
            continue;
        xmlNode *b = vmshift_xml_child(d, VMSHIFT_NS_VIM25, "backing");
        g_hash_table_insert(out->disks, vmshift_xml_child_text(d, VMSHIFT_NS_VIM25, "key"),
                            vmshift_xml_child_text(b, VMSHIFT_NS_VIM25, "fileName"));
    }
    out->snapshots = 0;
    count_snapshots(esx_prop(o, "snapshot"), &out->snapshots);
    out->host = esx_prop_text(o, "runtime.host");
    if (power != NULL)
        *power = esx_prop_text(o, "runtime.powerState");
}

/* Disks in @now not in @before (added) or the reverse (removed). */
static char *
disk_diff(const VmState *before, const VmState *now, gboolean *added_out)
{
    GHashTableIter it;
    gpointer k, v;
    g_hash_table_iter_init(&it, now->disks);
    while (g_hash_table_iter_next(&it, &k, &v))
        if (!g_hash_table_contains(before->disks, k)) {
            *added_out = TRUE;
            return g_strdup_printf("disk %s (%s) was added", (char *)k, v != NULL ? (char *)v : "?");
        }
    g_hash_table_iter_init(&it, before->disks);
    while (g_hash_table_iter_next(&it, &k, &v))
        if (!g_hash_table_contains(now->disks, k)) {
            *added_out = FALSE;
            return g_strdup_printf("disk %s (%s) was removed", (char *)k, v != NULL ? (char *)v : "?");
        }
    return NULL;
}

static char *
relocate_body(const Plan *p, const char *only_disk_key, const char *only_disk_ds)
{
    GString *s = g_string_new("<RelocateVM_Task xmlns=\"urn:vim25\">");
    g_autofree char *vm = esx_moref_xml("_this", "VirtualMachine", p->vm->value);
    g_string_append(s, vm);
    g_string_append(s, "<spec>");
    if (only_disk_key != NULL) {
        g_autofree char *ds = esx_moref_xml("datastore", "Datastore", only_disk_ds);
        g_autofree char *k = vmshift_xml_escape(only_disk_key);
        g_string_append_printf(s, "<disk><diskId>%s</diskId>%s</disk>", k, ds);
    } else {
        if (p->dest_ds != NULL) {
            g_autofree char *ds = esx_moref_xml("datastore", "Datastore", p->dest_ds->value);
            g_string_append(s, ds);
        }
        if (p->pool != NULL) {
            g_autofree char *pool = esx_moref_xml("pool", "ResourcePool", p->pool);
            g_string_append(s, pool);
        }
        if (p->dest_host != NULL) {
            g_autofree char *h = esx_moref_xml("host", "HostSystem", p->dest_host->value);
            g_string_append(s, h);
        }
        for (guint i = 0; i < p->disks->len; i++) {
            DiskTarget *d = &g_array_index(p->disks, DiskTarget, i);
            g_autofree char *ds = esx_moref_xml("datastore", "Datastore", d->ds);
            g_autofree char *k = vmshift_xml_escape(d->key);
            g_string_append_printf(s, "<disk><diskId>%s</diskId>%s</disk>", k, ds);
        }
        for (guint i = 0; i < p->nics->len; i++) {
            NicTarget *n = &g_array_index(p->nics, NicTarget, i);
            g_string_append(s, "<deviceChange><operation>edit</operation>");
            esx_xml_reserialize(s, n->device, "device", "backing", n->backing);
            g_string_append(s, "</deviceChange>");
        }
    }
    g_string_append(s, "</spec><priority>defaultPriority</priority></RelocateVM_Task>");
    return g_string_free(s, FALSE);
}

/* Where the VM is now, for the job (by asking the server). */
static void
report_location(VmshiftBackend *be, Inventory *inv, VmshiftJob *job, const char *vm, const char *fallback)
{
    g_auto(VmState) st = { 0 };
    g_autofree char *power = NULL;
    g_autoptr(GError) err = NULL;
    if (vm_state(be, vm, &st, &power, &err)) {
        g_autofree char *h = name_of(inv->hosts, st.host);
        vmshift_job_set_location(job, h, power);
    } else {
        vmshift_job_set_location(job, fallback, "unknown: could not ask the server");
        vmshift_job_log(job, VMSHIFT_LOG_WARNING, "could not read where VM %s is: %s", vm, err->message);
    }
}

/* Follow the relocation task: progress, cancellation, snapshots and disk
 * changes during the move. */
static gboolean
follow_relocate(VmshiftBackend *be, Plan *p, const char *task, VmshiftJob *job,
                const VmState *before, GPtrArray *added_disks, GError **error)
{
    g_auto(TaskInfo) ti = { 0 };
    gboolean cancel_sent = FALSE;
    g_autofree char *abort_reason = NULL;
    int abort_code = 0;
    gint32 last = -2;
    guint poll = 0;
    for (;;) {
        /* While nothing is being aborted, the VM is watched in the same
         * call that polls the task. */
        g_auto(VmState) now = { 0 };
        g_autoptr(GError) werr = NULL;
        gboolean have_now = FALSE;
        if (abort_reason == NULL && !vmshift_job_is_cancelled(job))
            have_now = task_poll_vm(be, task, p->vm->value, &ti, &now, &werr);
        if (!have_now && !task_poll(be, task, &ti, error))
            return FALSE;
        if (ti.progress != last && ti.progress >= 0) {
            vmshift_job_set_progress(job, ti.progress);
            if (p->needed > 0)
                vmshift_job_set_bytes(job, p->needed / 100 * (guint64)ti.progress, p->needed);
            last = ti.progress;
        }
        if (g_strcmp0(ti.state, "success") == 0) {
            if (abort_reason != NULL) {
                /* Too late to stop: the move is done. */
                vmshift_job_log(job, VMSHIFT_LOG_WARNING,
                                "%s, but the relocation had already finished", abort_reason);
                if (abort_code != G_IO_ERROR_CANCELLED) {
                    g_set_error(error, VMSHIFT_ERROR, abort_code, "%s (after the switchover)", abort_reason);
                    return FALSE;
                }
            }
            return TRUE;
        }
        if (g_strcmp0(ti.state, "error") == 0) {
            if (abort_reason != NULL && abort_code == G_IO_ERROR_CANCELLED) {
                g_set_error(error, G_IO_ERROR, G_IO_ERROR_CANCELLED,
                            "migration of VM %s cancelled (vSphere task %s cancelled)", p->vm_name, task);
            } else if (abort_reason != NULL) {
                g_set_error(error, VMSHIFT_ERROR, abort_code, "%s; the relocation was cancelled", abort_reason);
            } else {
                g_set_error(error, VMSHIFT_ERROR, task_fault_code(ti.fault_type),
                            "%s RelocateVM_Task for VM %s failed: %s: %s", be->url, p->vm_name,
                            ti.fault_type != NULL ? ti.fault_type : "error",
                            ti.message != NULL ? ti.message : "(no message)");
            }
            return FALSE;
        }
        if (abort_reason == NULL) {
            if (vmshift_job_is_cancelled(job)) {
                abort_reason = g_strdup("cancellation requested");
                abort_code = G_IO_ERROR_CANCELLED;
            } else {
                if (!have_now) {
                    vmshift_job_log(job, VMSHIFT_LOG_WARNING, "could not watch VM %s: %s", p->vm_name,
                                    werr != NULL ? werr->message : "no state");
                } else {
                    gboolean added = FALSE;
                    g_autofree char *diff = disk_diff(before, &now, &added);
                    if (now.snapshots > before->snapshots) {
                        abort_reason = g_strdup_printf(
                            "a snapshot of VM %s was taken during the migration", p->vm_name);
                        abort_code = VMSHIFT_ERROR_CONFLICT;
                    } else if (diff != NULL && added) {
                        /* Before switchover: honoured, moved after the task. */
                        GHashTableIter it;
                        gpointer k, v;
                        g_hash_table_iter_init(&it, now.disks);
                        while (g_hash_table_iter_next(&it, &k, &v))
                            if (!g_hash_table_contains(before->disks, k)) {
                                gboolean known = FALSE;
                                for (guint i = 0; i < added_disks->len; i++)
                                    known |= g_strcmp0(added_disks->pdata[i], k) == 0;
                                if (!known) {
                                    g_ptr_array_add(added_disks, g_strdup(k));
                                    vmshift_job_log(job, VMSHIFT_LOG_INFO,
                                                    "%s during the transfer; it will be moved too", diff);
                                }
                            }
                    } else if (diff != NULL) {
                        vmshift_job_log(job, VMSHIFT_LOG_INFO, "%s during the transfer", diff);
                    }
                }
            }
            if (abort_reason != NULL && !cancel_sent) {
                g_autoptr(GError) cerr = NULL;
                vmshift_job_log(job, VMSHIFT_LOG_INFO, "%s: cancelling vSphere task %s", abort_reason, task);
                if (!cancel_task(be, task, &cerr))
                    vmshift_job_log(job, VMSHIFT_LOG_WARNING, "CancelTask %s: %s", task, cerr->message);
                cancel_sent = TRUE;
                poll = 0;
            }
        }
        /* Progress moves: keep looking at least every 500 ms. */
        g_usleep(MIN(next_poll(&poll), 500) * 1000);
    }
}


/* ---- vSphere Automation REST (tags) ----------------------------------- */

/* The REST API lives at /rest on the SDK's host (vCenter only: an ESXi
 * host, or a vCenter without it, answers 404 to the session endpoint; the
 * backend is then SOAP-only for the rest of its life, said once at debug
 * level). One session per backend, made on first use; a 401 later means
 * the session expired: log in again once. */
#define REST_SESSION_PATH "/rest/com/vmware/cis/session"

static gboolean
rest_login_locked(VmshiftBackend *be, GError **error)
{
    if (be->rest == NULL)
        be->rest = vmshift_http_new_sharing(be->http);
    const VmshiftCredentials *c = vmshift_http_get_credentials(be->http);
    g_autofree char *up = g_strdup_printf("%s%s%s:%s", c->domain != NULL ? c->domain : "",
                                          c->domain != NULL ? "\\" : "", c->user, c->password);
    g_autofree char *b64 = g_base64_encode((const guchar *)up, strlen(up));
    g_autofree char *auth = g_strdup_printf("Authorization: Basic %s", b64);
    const char *hdrs[] = { auth, "Accept: application/json", NULL };
    g_autoptr(VmshiftHttpResponse) r = vmshift_http_request(be->rest, "POST", REST_SESSION_PATH, hdrs,
                                                            NULL, 0, NULL, error);
    explicit_bzero(up, strlen(up));
    explicit_bzero(b64, strlen(b64));
    explicit_bzero(auth, strlen(auth));
    if (r == NULL)
        return FALSE;
    if (r->status == 404) {
        g_debug("backend %s: no vSphere Automation REST API at %s (404 from %s); "
                "tags are not carried over", be->name, be->url, REST_SESSION_PATH);
        be->rest_unavailable = TRUE;
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_NOT_SUPPORTED,
                    "no vSphere Automation REST API at %s", be->url);
        return FALSE;
    }
    if (!vmshift_http_response_check(r, error))
        return FALSE;
    const char *body = vmshift_http_response_get_body(r, NULL);
    json_object *doc = json_tokener_parse(body);
    json_object *v = NULL;
    if (doc == NULL || !json_object_object_get_ex(doc, "value", &v) ||
        !json_object_is_type(v, json_type_string)) {
        if (doc != NULL)
            json_object_put(doc);
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_PROTOCOL,
                    "POST %s: no session id in the reply", r->url);
        return FALSE;
    }
    if (be->rest_session != NULL)
        explicit_bzero(be->rest_session, strlen(be->rest_session));
    g_free(be->rest_session);
    be->rest_session = g_strdup(json_object_get_string(v));
    json_object_put(doc);
    g_debug("backend %s: REST session opened (%s next to %s)", be->name, REST_SESSION_PATH, be->url);
    return TRUE;
}

/* One REST call with a JSON body; *value gets the reply's "value" (or NULL
 * when it has none). FALSE with VMSHIFT_ERROR_NOT_SUPPORTED when the server
 * has no REST API (see rest_unavailable()). */
static gboolean
rest_call(VmshiftBackend *be, const char *method, const char *path, json_object *body,
          json_object **value, GError **error)
{
    if (value != NULL)
        *value = NULL;
    g_mutex_lock(&be->rest_lock);
    gboolean ok = FALSE;
    if (be->rest_unavailable) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_NOT_SUPPORTED,
                    "no vSphere Automation REST API at %s", be->url);
        goto out;
    }
    if (be->rest_session == NULL && !rest_login_locked(be, error))
        goto out;
    const char *data = body != NULL ? json_object_to_json_string_ext(body, JSON_C_TO_STRING_PLAIN) : NULL;
    for (int attempt = 0;; attempt++) {
        g_autofree char *sid = g_strdup_printf("vmware-api-session-id: %s", be->rest_session);
        const char *hdrs[] = { sid, "Accept: application/json",
                               data != NULL ? "Content-Type: application/json" : NULL, NULL };
        g_autoptr(VmshiftHttpResponse) r =
            vmshift_http_request(be->rest, method, path, hdrs, data, data != NULL ? strlen(data) : 0,
                                 NULL, error);
        explicit_bzero(sid, strlen(sid));
        if (r == NULL)
            goto out;
        if (r->status == 401 && attempt == 0) {
            /* One new session, then the call once more; a second 401 is
             * an error (below). Neither the id nor the reply is logged. */
            g_debug("backend %s: REST session expired; logging in again", be->name);
            explicit_bzero(be->rest_session, strlen(be->rest_session));
            g_clear_pointer(&be->rest_session, g_free);
            if (!rest_login_locked(be, error))
                goto out;
            continue;
        }
        if (!vmshift_http_response_check(r, error))
            goto out;
        gsize len = 0;
        const char *text = vmshift_http_response_get_body(r, &len);
        if (len > 0 && value != NULL) {
            json_object *doc = json_tokener_parse(text);
            if (doc == NULL) {
                g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_PROTOCOL, "%s %s: reply is not JSON",
                            r->method, r->url);
                goto out;
            }
            json_object *v = NULL;
            if (json_object_object_get_ex(doc, "value", &v))
                *value = json_object_get(v);
            json_object_put(doc);
        }
        ok = TRUE;
        break;
    }
out:
    g_mutex_unlock(&be->rest_lock);
    return ok;
}

static gboolean
rest_unavailable(const GError *error)
{
    return g_error_matches(error, VMSHIFT_ERROR, VMSHIFT_ERROR_NOT_SUPPORTED);
}

static json_object *
vm_object_id(const char *vm)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, "id", json_object_new_string(vm));
    json_object_object_add(o, "type", json_object_new_string("VirtualMachine"));
    json_object *spec = json_object_new_object();
    json_object_object_add(spec, "object_id", o);
    return spec;
}

/* The ids of the tags attached to VM @vm. */
static GPtrArray *
read_tags(VmshiftBackend *be, const char *vm, GError **error)
{
    json_object *spec = vm_object_id(vm);
    json_object *value = NULL;
    gboolean ok = rest_call(be, "POST",
                            "/rest/com/vmware/cis/tagging/tag-association?~action=list-attached-tags",
                            spec, &value, error);
    json_object_put(spec);
    if (!ok)
        return NULL;
    GPtrArray *ids = g_ptr_array_new_with_free_func(g_free);
    if (value != NULL && json_object_is_type(value, json_type_array)) {
        for (size_t i = 0; i < json_object_array_length(value); i++) {
            json_object *e = json_object_array_get_idx(value, i);
            if (json_object_is_type(e, json_type_string))
                g_ptr_array_add(ids, g_strdup(json_object_get_string(e)));
        }
    }
    if (value != NULL)
        json_object_put(value);
    return ids;
}

static gboolean
attach_tag(VmshiftBackend *be, const char *tag, const char *vm, GError **error)
{
    g_autofree char *esc = g_uri_escape_string(tag, ":", FALSE);
    g_autofree char *path =
        g_strdup_printf("/rest/com/vmware/cis/tagging/tag-association/id:%s?~action=attach", esc);
    json_object *spec = vm_object_id(vm);
    gboolean ok = rest_call(be, "POST", path, spec, NULL, error);
    json_object_put(spec);
    return ok;
}

/* The name of tag @id ("id\tname" lines saved by migrate as "tag-names"),
 * for messages; the id itself when it was not recorded. */
static char *
tag_label(const char *names, const char *id)
{
    g_auto(GStrv) lines = g_strsplit(names != NULL ? names : "", "\n", -1);
    for (guint i = 0; lines[i] != NULL; i++) {
        const char *tab = strchr(lines[i], '\t');
        if (tab != NULL && strncmp(lines[i], id, tab - lines[i]) == 0 && id[tab - lines[i]] == '\0')
            return g_strdup_printf("%s (%s)", tab + 1, id);
    }
    return g_strdup(id);
}

/* "id\tname" lines for the tags @ids (the names are only for messages: a
 * tag whose name cannot be read is left out). */
static char *
read_tag_names(VmshiftBackend *be, GPtrArray *ids)
{
    GString *s = g_string_new(NULL);
    for (guint i = 0; i < ids->len; i++) {
        const char *id = ids->pdata[i];
        g_autofree char *esc = g_uri_escape_string(id, ":", FALSE);
        g_autofree char *path = g_strdup_printf("/rest/com/vmware/cis/tagging/tag/id:%s", esc);
        g_autoptr(GError) err = NULL;
        json_object *value = NULL;
        json_object *name = NULL;
        if (!rest_call(be, "GET", path, NULL, &value, &err))
            g_debug("backend %s: name of tag %s: %s", be->name, id, err->message);
        else if (value != NULL && json_object_object_get_ex(value, "name", &name) &&
                 json_object_is_type(name, json_type_string) &&
                 strpbrk(json_object_get_string(name), "\t\n") == NULL &&
                 strpbrk(id, "\t\n") == NULL)
            g_string_append_printf(s, "%s\t%s\n", id, json_object_get_string(name));
        if (value != NULL)
            json_object_put(value);
    }
    return g_string_free(s, FALSE);
}

/* Re-attach the tags saved before the move that VM @vm lost. Tags come
 * second to the permissions: a tag that cannot be re-attached (deleted in
 * the meantime, REST session refused, …) is a warning in the job log and
 * a "NAME (ID): reason" entry in *failed ("; "-separated, NULL when none),
 * never an error. *summary gets "N tag(s) re-attached[; M tag(s) not
 * re-attached]", or "" when there is nothing to say (no tags recorded, or
 * no REST API). */
static void
recreate_tags(VmshiftBackend *be, VmshiftJob *job, const char *vm, const char *vmname,
              char **summary, char **failed)
{
    *summary = NULL;
    *failed = NULL;
    g_autofree char *saved = vmshift_job_get_saved(job, "tags");
    g_autofree char *names = vmshift_job_get_saved(job, "tag-names");
    if (saved == NULL || saved[0] == '\0') {
        *summary = g_strdup("");
        return;
    }
    g_auto(GStrv) want = g_strsplit(saved, ",", -1);
    g_autoptr(GError) err = NULL;
    g_autoptr(GPtrArray) now = read_tags(be, vm, &err);
    if (now == NULL && rest_unavailable(err)) {
        *summary = g_strdup("");
        return;
    }
    GString *bad = g_string_new(NULL);
    guint n = 0, n_bad = 0;
    for (guint i = 0; want[i] != NULL; i++) {
        if (want[i][0] == '\0')
            continue;
        gboolean have = FALSE;
        for (guint j = 0; now != NULL && j < now->len && !have; j++)
            have = g_strcmp0(now->pdata[j], want[i]) == 0;
        if (have)
            continue;
        g_autofree char *label = tag_label(names, want[i]);
        g_autoptr(GError) aerr = NULL;
        if (now == NULL) {
            /* Which ones are missing is unknown: none is attached blindly. */
            aerr = g_error_new(VMSHIFT_ERROR, VMSHIFT_ERROR_FAILED, "cannot read the VM's tags: %s",
                               err->message);
        } else if (attach_tag(be, want[i], vm, &aerr)) {
            vmshift_job_log(job, VMSHIFT_LOG_INFO, "VM %s: tag %s re-attached", vmname, label);
            n++;
            continue;
        }
        vmshift_job_log(job, VMSHIFT_LOG_WARNING, "VM %s: tag %s not re-attached: %s", vmname, label,
                        aerr->message);
        g_string_append_printf(bad, "%s%s: %s", n_bad ? "; " : "", label, aerr->message);
        n_bad++;
    }
    *summary = n_bad == 0 ? g_strdup_printf("%u tag(s) re-attached", n)
                          : g_strdup_printf("%u tag(s) re-attached; %u tag(s) not re-attached", n, n_bad);
    *failed = g_string_free(bad, n_bad == 0);
}

static gboolean
read_acl(VmshiftBackend *be, const char *vm, char **out, guint *count, GError **error);

gboolean
esx_migrate(VmshiftBackend *be, const VmshiftMigrationSpec *spec, VmshiftJob *job, guint32 flags,
            GError **error)
{
    if (!vmshift_check_flags(flags, 0, "migrate", error))
        return FALSE;
    if (!vmshift_job_set_phase(job, VMSHIFT_PHASE_VALIDATE, error))
        return FALSE;
    g_auto(Inventory) inv = { 0 };
    g_auto(Plan) p = { 0 };
    if (!plan_build(be, spec, &inv, &p, NULL, error))
        return FALSE;
    vmshift_job_set_location(job, p.src_host_name, p.power);
    for (guint i = 0; i < p.findings->len; i++) {
        VmshiftFinding *f = p.findings->pdata[i];
        if (f->severity == VMSHIFT_SEVERITY_ERROR) {
            g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_INVALID_ARGUMENT,
                        "cannot migrate VM %s: %s", p.vm_name, f->message);
            return FALSE;
        }
    }
    if (vmshift_job_is_cancelled(job)) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_CANCELLED, "migration of VM %s cancelled", p.vm_name);
        return FALSE;
    }

    if (!vmshift_job_set_phase(job, VMSHIFT_PHASE_PREPARE, error))
        return FALSE;
    /* Remember the entity permissions for recreate_acl(). */
    {
        g_autofree char *acl = NULL;
        guint n = 0;
        g_autoptr(GError) aerr = NULL;
        if (read_acl(be, p.vm->value, &acl, &n, &aerr)) {
            if (!vmshift_job_save(job, "acl", acl, error))
                return FALSE;
        } else {
            vmshift_job_log(job, VMSHIFT_LOG_WARNING, "could not read the permissions of VM %s: %s",
                            p.vm_name, aerr->message);
        }
    }
    /* And its tags (REST; nothing to do on a server without it). */
    {
        g_autoptr(GError) terr = NULL;
        g_autoptr(GPtrArray) tags = read_tags(be, p.vm->value, &terr);
        if (tags != NULL) {
            g_ptr_array_add(tags, NULL);
            g_autofree char *joined = g_strjoinv(",", (char **)tags->pdata);
            g_ptr_array_remove_index(tags, tags->len - 1);
            g_autofree char *names = read_tag_names(be, tags);
            if (!vmshift_job_save(job, "tags", joined, error) ||
                !vmshift_job_save(job, "tag-names", names, error))
                return FALSE;
        } else if (!rest_unavailable(terr)) {
            vmshift_job_log(job, VMSHIFT_LOG_WARNING, "could not read the tags of VM %s: %s",
                            p.vm_name, terr->message);
        }
    }
    /* The plan's VM properties are the state before the move (read
     * moments ago, in the same call as the merge check). */
    g_auto(VmState) before = { 0 };
    vm_state_parse(p.vm, &before, NULL);

    if (!vmshift_job_set_phase(job, VMSHIFT_PHASE_TRANSFER, error))
        return FALSE;
    g_autofree char *body = relocate_body(&p, NULL, NULL);
    g_autofree char *task = start_task(be, "RelocateVM_Task", body, error);
    if (task == NULL) {
        report_location(be, &inv, job, p.vm->value, p.src_host_name);
        return FALSE;
    }
    if (!vmshift_job_save(job, "task", task, error)) {
        g_autoptr(GError) cerr = NULL;
        cancel_task(be, task, &cerr);
        report_location(be, &inv, job, p.vm->value, p.src_host_name);
        return FALSE;
    }
    g_autofree char *dsn = p.dest_ds != NULL ? esx_prop_text(p.dest_ds, "name") : NULL;
    vmshift_job_log(job, VMSHIFT_LOG_INFO, "vSphere task %s: relocating VM %s%s%s%s%s", task, p.vm_name,
                    p.dest_host != NULL ? " to host " : "", p.dest_host != NULL ? p.dest_host_name : "",
                    dsn != NULL ? " to datastore " : "", dsn != NULL ? dsn : "");
    g_autoptr(GPtrArray) added = g_ptr_array_new_with_free_func(g_free);
    gboolean ok = follow_relocate(be, &p, task, job, &before, added, error);
    if (!ok) {
        report_location(be, &inv, job, p.vm->value, p.src_host_name);
        return FALSE;
    }

    if (!vmshift_job_set_phase(job, VMSHIFT_PHASE_SWITCHOVER, error))
        return FALSE;
    /* Disks added during the transfer go where the others went. */
    for (guint i = 0; i < added->len && p.dest_ds != NULL; i++) {
        g_autofree char *b2 = relocate_body(&p, added->pdata[i], p.dest_ds->value);
        g_autofree char *t2 = start_task(be, "RelocateVM_Task", b2, error);
        if (t2 == NULL || !wait_task(be, t2, "RelocateVM_Task (added disk)", error)) {
            report_location(be, &inv, job, p.vm->value, p.dest_host_name);
            return FALSE;
        }
        vmshift_job_log(job, VMSHIFT_LOG_INFO, "disk %s added during the move was moved as well",
                        (char *)added->pdata[i]);
    }
    if (spec->start && spec->type == VMSHIFT_MIGRATION_COLD) {
        g_autofree char *vm = esx_moref_xml("_this", "VirtualMachine", p.vm->value);
        g_autofree char *pb = g_strdup_printf("<PowerOnVM_Task xmlns=\"urn:vim25\">%s</PowerOnVM_Task>", vm);
        g_autofree char *t3 = start_task(be, "PowerOnVM_Task", pb, error);
        if (t3 == NULL || !wait_task(be, t3, "PowerOnVM_Task", error)) {
            report_location(be, &inv, job, p.vm->value, p.dest_host_name);
            return FALSE;
        }
        vmshift_job_log(job, VMSHIFT_LOG_INFO, "VM %s powered on", p.vm_name);
    }
    /* A disk change after the switchover cannot be honoured. */
    g_auto(VmState) after = { 0 };
    g_autofree char *apower = NULL;
    g_autoptr(GError) aerr = NULL;
    if (!vm_state(be, p.vm->value, &after, &apower, &aerr)) {
        vmshift_job_set_location(job, p.dest_host_name, "unknown: could not ask the server");
        vmshift_job_log(job, VMSHIFT_LOG_WARNING, "could not read where VM %s is: %s", p.vm_name,
                        aerr->message);
    } else {
        /* Where it is now, from the same read. */
        g_autofree char *h = name_of(inv.hosts, after.host);
        vmshift_job_set_location(job, h, apower);
        gboolean add = FALSE;
        GHashTableIter it;
        gpointer k, v;
        g_hash_table_iter_init(&it, after.disks);
        g_autofree char *diff = NULL;
        while (diff == NULL && g_hash_table_iter_next(&it, &k, &v)) {
            gboolean known = g_hash_table_contains(before.disks, k);
            for (guint i = 0; !known && i < added->len; i++)
                known = g_strcmp0(added->pdata[i], k) == 0;
            if (!known)
                diff = g_strdup_printf("disk %s (%s) was added", (char *)k, (char *)v);
        }
        (void)add;
        if (diff != NULL) {
            g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_CONFLICT,
                        "%s to VM %s after the switchover; check its placement", diff, p.vm_name);
            return FALSE;
        }
    }
    vmshift_job_set_progress(job, 100);
    vmshift_job_set_result(job, "vsphere-task", task);
    return TRUE;
}

/* ---- permissions ------------------------------------------------------ */

static EsxResult *
role_list(VmshiftBackend *be, GError **error)
{
    static const char *const paths[] = { "roleList", NULL };
    EsxResult *keep = NULL;
    if (be->auth_manager == NULL) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_NOT_SUPPORTED, "%s has no authorization manager",
                    be->url);
        return NULL;
    }
    gint64 now = g_get_monotonic_time();
    g_mutex_lock(&be->lock);
    if (be->roles != NULL && now - be->roles_at < ESX_ROLES_TTL_US)
        keep = esx_result_ref(be->roles);
    g_mutex_unlock(&be->lock);
    if (keep != NULL)
        return keep;
    if (esx_retrieve_one(be, "AuthorizationManager", be->auth_manager, paths, &keep, NULL, error) == NULL)
        return NULL;
    g_mutex_lock(&be->lock);
    esx_result_free(be->roles);
    be->roles = esx_result_ref(keep);
    be->roles_at = now;
    g_mutex_unlock(&be->lock);
    return keep;
}

static char *
role_name(EsxResult *roles, const char *id)
{
    EsxObject *am = roles->objects->len > 0 ? roles->objects->pdata[0] : NULL;
    for (xmlNode *r = vmshift_xml_first_element(esx_prop(am, "roleList")); r != NULL;
         r = vmshift_xml_next_element(r)) {
        g_autofree char *rid = vmshift_xml_child_text(r, VMSHIFT_NS_VIM25, "roleId");
        if (g_strcmp0(rid, id) == 0)
            return vmshift_xml_child_text(r, VMSHIFT_NS_VIM25, "name");
    }
    return NULL;
}

static char *
role_id(EsxResult *roles, const char *name)
{
    EsxObject *am = roles->objects->len > 0 ? roles->objects->pdata[0] : NULL;
    for (xmlNode *r = vmshift_xml_first_element(esx_prop(am, "roleList")); r != NULL;
         r = vmshift_xml_next_element(r)) {
        g_autofree char *n = vmshift_xml_child_text(r, VMSHIFT_NS_VIM25, "name");
        if (g_strcmp0(n, name) == 0)
            return vmshift_xml_child_text(r, VMSHIFT_NS_VIM25, "roleId");
    }
    return NULL;
}

/* The VM's own permissions as "principal\tgroup\trole-name\tpropagate" lines. */
static gboolean
read_acl(VmshiftBackend *be, const char *vm, char **out, guint *count, GError **error)
{
    g_autoptr(EsxResult) roles = role_list(be, error);
    if (roles == NULL)
        return FALSE;
    g_autofree char *am = esx_moref_xml("_this", "AuthorizationManager", be->auth_manager);
    g_autofree char *ent = esx_moref_xml("entity", "VirtualMachine", vm);
    g_autofree char *body = g_strdup_printf(
        "<RetrieveEntityPermissions xmlns=\"urn:vim25\">%s%s<inherited>false</inherited>"
        "</RetrieveEntityPermissions>", am, ent);
    g_autoptr(xmlDoc) doc = esx_call(be, "RetrieveEntityPermissions", body, NULL, NULL, error);
    if (doc == NULL)
        return FALSE;
    GString *s = g_string_new(NULL);
    *count = 0;
    for (xmlNode *rv = vmshift_xml_first_element(vmshift_soap_body(doc)); rv != NULL;
         rv = vmshift_xml_next_element(rv)) {
        if (!vmshift_xml_node_is(rv, VMSHIFT_NS_VIM25, "returnval"))
            continue;
        g_autofree char *principal = vmshift_xml_child_text(rv, VMSHIFT_NS_VIM25, "principal");
        g_autofree char *group = vmshift_xml_child_text(rv, VMSHIFT_NS_VIM25, "group");
        g_autofree char *rid = vmshift_xml_child_text(rv, VMSHIFT_NS_VIM25, "roleId");
        g_autofree char *prop = vmshift_xml_child_text(rv, VMSHIFT_NS_VIM25, "propagate");
        g_autofree char *entity = vmshift_xml_child_text(rv, VMSHIFT_NS_VIM25, "entity");
        if (principal == NULL || rid == NULL)
            continue;
        if (entity != NULL && g_strcmp0(entity, vm) != 0)
            continue;   /* inherited */
        g_autofree char *rn = role_name(roles, rid);
        if (rn == NULL)
            rn = g_strdup_printf("#%s", rid);
        if (strpbrk(principal, "\t\n") != NULL || strpbrk(rn, "\t\n") != NULL)
            continue;
        g_string_append_printf(s, "%s\t%s\t%s\t%s\n", principal,
                               g_strcmp0(group, "true") == 0 ? "group" : "user", rn,
                               g_strcmp0(prop, "true") == 0 ? "propagate" : "no-propagate");
        (*count)++;
    }
    *out = g_string_free(s, FALSE);
    return TRUE;
}

gboolean
esx_recreate_acl(VmshiftBackend *be, const char *name, VmshiftJob *job, guint32 flags, GError **error)
{
    if (!vmshift_check_flags(flags, 0, "recreate_acl", error))
        return FALSE;
    g_auto(Inventory) inv = { 0 };
    EsxObject *vm = find_vm(be, &inv, name, error);
    if (vm == NULL)
        return FALSE;
    g_autofree char *vmname = esx_prop_text(vm, "name");
    g_autofree char *saved = vmshift_job_get_saved(job, "acl");
    g_autofree char *current = NULL;
    guint n_current = 0;
    if (!read_acl(be, vm->value, &current, &n_current, error))
        return FALSE;
    const char *want = saved != NULL ? saved : current;
    if (saved == NULL)
        vmshift_job_log(job, VMSHIFT_LOG_INFO,
                        "no permissions recorded before a move; re-applying VM %s's current ones", vmname);
    g_autoptr(EsxResult) roles = role_list(be, error);
    if (roles == NULL)
        return FALSE;
    g_auto(GStrv) lines = g_strsplit(want, "\n", -1);
    GString *perms = g_string_new(NULL);
    GString *summary = g_string_new(NULL);
    guint n = 0;
    for (guint i = 0; lines[i] != NULL; i++) {
        if (lines[i][0] == '\0')
            continue;
        g_auto(GStrv) f = g_strsplit(lines[i], "\t", 4);
        if (g_strv_length(f) != 4)
            continue;
        g_autofree char *rid = role_id(roles, f[2]);
        if (rid == NULL) {
            g_string_free(perms, TRUE);
            g_string_free(summary, TRUE);
            g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_NOT_FOUND,
                        "cannot re-apply permission of %s on VM %s: role '%s' does not exist at %s",
                        f[0], vmname, f[2], be->url);
            return FALSE;
        }
        g_autofree char *ent = esx_moref_xml("entity", "VirtualMachine", vm->value);
        g_autofree char *ep = vmshift_xml_escape(f[0]);
        g_string_append_printf(perms, "<permission>%s<principal>%s</principal><group>%s</group>"
                               "<roleId>%s</roleId><propagate>%s</propagate></permission>",
                               ent, ep, g_strcmp0(f[1], "group") == 0 ? "true" : "false", rid,
                               g_strcmp0(f[3], "propagate") == 0 ? "true" : "false");
        vmshift_job_log(job, VMSHIFT_LOG_INFO, "VM %s: %s %s → role %s (%s)", vmname, f[1], f[0], f[2], f[3]);
        g_string_append_printf(summary, "%s%s=%s%s", n ? ", " : "", f[0], f[2],
                               g_strcmp0(f[3], "propagate") == 0 ? " (propagate)" : "");
        n++;
    }
    if (n > 0) {
        /* The complete list in one call: vCenter upserts per principal, the
         * simulator replaces the list; both end in the same state. */
        g_autofree char *am = esx_moref_xml("_this", "AuthorizationManager", be->auth_manager);
        g_autofree char *ent = esx_moref_xml("entity", "VirtualMachine", vm->value);
        g_autofree char *body = g_strdup_printf("<SetEntityPermissions xmlns=\"urn:vim25\">%s%s%s"
                                                "</SetEntityPermissions>", am, ent, perms->str);
        g_autoptr(xmlDoc) doc = esx_call(be, "SetEntityPermissions", body, NULL, NULL, error);
        if (doc == NULL) {
            g_string_free(perms, TRUE);
            g_string_free(summary, TRUE);
            return FALSE;
        }
    }
    g_string_free(perms, TRUE);
    g_autofree char *sum = g_string_free(summary, FALSE);
    /* The permissions are in place: from here on nothing fails the call. */
    g_autofree char *tags = NULL;
    g_autofree char *tags_failed = NULL;
    recreate_tags(be, job, vm->value, vmname, &tags, &tags_failed);
    g_autofree char *res = n > 0 ? g_strdup_printf("%u permission(s) re-applied: %s", n, sum)
                                 : g_strdup("no permissions set on the VM itself");
    if (tags[0] != '\0') {
        g_autofree char *both = g_strdup_printf("%s; %s", res, tags);
        g_free(res);
        res = g_steal_pointer(&both);
    }
    vmshift_job_set_result(job, "acl", res);
    if (tags_failed != NULL)
        vmshift_job_set_result(job, "acl-tags", tags_failed);
    return TRUE;
}

/* ---- watch_changes ---------------------------------------------------- */

gboolean
esx_watch_changes(VmshiftBackend *be, const char *name, VmshiftChangeFunc func, gpointer user_data,
                  GCancellable *cancellable, guint32 flags, GError **error)
{
    if (!vmshift_check_flags(flags, 0, "watch_changes", error))
        return FALSE;
    g_auto(Inventory) inv = { 0 };
    if (!load(be, &inv, TRUE, FALSE, FALSE, FALSE, cancellable, error))
        return FALSE;
    EsxObject *vm = find_vm(be, &inv, name, error);
    if (vm == NULL)
        return FALSE;
    g_autofree char *vmname = esx_prop_text(vm, "name");
    g_autofree char *vmref = g_strdup(vm->value);
    g_autoptr(VmshiftHttp) http = vmshift_http_new_sharing(be->http);
    vmshift_http_set_timeout(http, 30 * 1000);

    /* A collector of our own, so that other users of the session's
     * collector never see our updates. */
    g_autofree char *pcthis = esx_moref_xml("_this", "PropertyCollector", be->property_collector);
    g_autofree char *cb = g_strdup_printf("<CreatePropertyCollector xmlns=\"urn:vim25\">%s"
                                          "</CreatePropertyCollector>", pcthis);
    g_autoptr(xmlDoc) cdoc = esx_call_on(be, http, "CreatePropertyCollector", cb, cancellable, NULL, error);
    if (cdoc == NULL)
        return FALSE;
    g_autofree char *pc = vmshift_xml_child_text(vmshift_soap_body(cdoc), VMSHIFT_NS_VIM25, "returnval");
    g_autofree char *mypc = esx_moref_xml("_this", "PropertyCollector", pc);
    g_autofree char *obj = esx_moref_xml("obj", "VirtualMachine", vmref);
    g_autofree char *fb = g_strdup_printf(
        "<CreateFilter xmlns=\"urn:vim25\">%s<spec><propSet><type>VirtualMachine</type>"
        "<pathSet>config.hardware.device</pathSet><pathSet>snapshot</pathSet>"
        "<pathSet>runtime.powerState</pathSet><pathSet>runtime.host</pathSet></propSet>"
        "<objectSet>%s</objectSet></spec><partialUpdates>false</partialUpdates></CreateFilter>", mypc, obj);
    g_autoptr(xmlDoc) fdoc = esx_call_on(be, http, "CreateFilter", fb, cancellable, NULL, error);
    gboolean ok = FALSE;
    g_auto(VmState) prev = { 0 };
    g_autofree char *prev_power = NULL;
    g_autofree char *version = g_strdup("");
    if (fdoc == NULL)
        goto out;
    if (!vm_state(be, vmref, &prev, &prev_power, error))
        goto out;
    for (;;) {
        if (g_cancellable_set_error_if_cancelled(cancellable, error))
            goto out;
        g_autofree char *ev = vmshift_xml_escape(version);
        g_autofree char *wb = g_strdup_printf(
            "<WaitForUpdatesEx xmlns=\"urn:vim25\">%s<version>%s</version>"
            "<options><maxWaitSeconds>1</maxWaitSeconds></options></WaitForUpdatesEx>", mypc, ev);
        g_autoptr(GError) werr = NULL;
        g_autoptr(xmlDoc) wdoc = esx_call_on(be, http, "WaitForUpdatesEx", wb, cancellable, NULL, &werr);
        if (wdoc == NULL) {
            g_propagate_error(error, g_steal_pointer(&werr));
            goto out;
        }
        g_autoptr(xmlXPathContext) ctx = vmshift_xpath_new(wdoc, NULL);
        g_autofree char *nv = vmshift_xpath_string(ctx, NULL, "//vim:returnval/vim:version");
        if (nv == NULL)
            continue;   /* timed out without changes */
        g_free(version);
        version = g_steal_pointer(&nv);
        /* Something changed: compare states (simple and exact). */
        g_auto(VmState) now = { 0 };
        g_autofree char *power = NULL;
        if (!vm_state(be, vmref, &now, &power, error))
            goto out;
        gboolean added = FALSE;
        GHashTableIter it;
        gpointer k, v;
        g_hash_table_iter_init(&it, now.disks);
        while (g_hash_table_iter_next(&it, &k, &v))
            if (!g_hash_table_contains(prev.disks, k)) {
                g_autoptr(VmshiftChange) ch = vmshift_change_new(VMSHIFT_CHANGE_DISK_ADDED, vmname, k, v);
                func(ch, user_data);
            }
        g_hash_table_iter_init(&it, prev.disks);
        while (g_hash_table_iter_next(&it, &k, &v))
            if (!g_hash_table_contains(now.disks, k)) {
                g_autoptr(VmshiftChange) ch = vmshift_change_new(VMSHIFT_CHANGE_DISK_REMOVED, vmname, k, v);
                func(ch, user_data);
            }
        (void)added;
        if (now.snapshots != prev.snapshots) {
            g_autofree char *d = g_strdup_printf("%u snapshot(s), was %u", now.snapshots, prev.snapshots);
            g_autoptr(VmshiftChange) ch = vmshift_change_new(now.snapshots > prev.snapshots
                                                                 ? VMSHIFT_CHANGE_SNAPSHOT_TAKEN
                                                                 : VMSHIFT_CHANGE_SNAPSHOT_REMOVED,
                                                             vmname, NULL, d);
            func(ch, user_data);
        }
        if (g_strcmp0(power, prev_power) != 0) {
            g_autoptr(VmshiftChange) ch = vmshift_change_new(VMSHIFT_CHANGE_POWER, vmname, NULL, power);
            func(ch, user_data);
        }
        if (g_strcmp0(now.host, prev.host) != 0) {
            g_autofree char *h = name_of(inv.hosts, now.host);
            g_autoptr(VmshiftChange) ch = vmshift_change_new(VMSHIFT_CHANGE_HOST, vmname, NULL, h);
            func(ch, user_data);
        }
        vm_state_clear(&prev);
        prev = now;
        memset(&now, 0, sizeof now);
        g_free(prev_power);
        prev_power = g_steal_pointer(&power);
    }
out:
    {
        g_autofree char *db = g_strdup_printf("<DestroyPropertyCollector xmlns=\"urn:vim25\">%s"
                                              "</DestroyPropertyCollector>", mypc);
        g_autoptr(GError) derr = NULL;
        g_autoptr(xmlDoc) ddoc = esx_call_on(be, http, "DestroyPropertyCollector", db, NULL, NULL, &derr);
        if (ddoc == NULL)
            g_debug("DestroyPropertyCollector: %s", derr->message);
    }
    return ok;
}

/* ---- repair ------------------------------------------------------------ */

/* A job interrupted (host process killed) while its RelocateVM_Task ran:
 * vSphere finishes or rolls back the task on its own; a task still running
 * is cancelled (it then rolls back), and the job learns where the VM is. */
gboolean
esx_repair(VmshiftBackend *be, VmshiftJob *job, guint32 flags, GError **error)
{
    if (!vmshift_check_flags(flags, 0, "repair", error))
        return FALSE;
    const VmshiftMigrationSpec *spec = vmshift_job_get_spec(job);
    if (spec == NULL || spec->vm == NULL) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_NOT_SUPPORTED,
                    "backend %s: only migration jobs can be repaired", be->name);
        return FALSE;
    }
    g_auto(Inventory) inv = { 0 };
    if (!load(be, &inv, TRUE, FALSE, FALSE, FALSE, NULL, error))
        return FALSE;
    EsxObject *vm = find_vm(be, &inv, spec->vm, error);
    if (vm == NULL)
        return FALSE;
    g_autofree char *task = vmshift_job_get_saved(job, "task");
    const char *outcome = "nothing-to-do";
    if (task != NULL) {
        g_auto(TaskInfo) ti = { 0 };
        guint poll = 0;
        gboolean cancel_sent = FALSE;
        for (int i = 0;; i++) {
            g_autoptr(GError) err = NULL;
            if (!task_poll(be, task, &ti, &err)) {
                /* vCenter forgets old tasks: then only the VM tells. */
                vmshift_job_log(job, VMSHIFT_LOG_INFO, "vSphere task %s is gone (%s)", task, err->message);
                break;
            }
            if (g_strcmp0(ti.state, "success") == 0) {
                outcome = "resumed";
                vmshift_job_log(job, VMSHIFT_LOG_INFO, "vSphere task %s had completed the move", task);
                break;
            }
            if (g_strcmp0(ti.state, "error") == 0) {
                outcome = "rolled-back";
                vmshift_job_log(job, VMSHIFT_LOG_INFO, "vSphere task %s ended in %s: %s; vSphere rolled it back",
                                task, ti.fault_type != NULL ? ti.fault_type : "error",
                                ti.message != NULL ? ti.message : "");
                break;
            }
            if (!cancel_sent) {
                g_autoptr(GError) cerr = NULL;
                vmshift_job_log(job, VMSHIFT_LOG_INFO, "vSphere task %s still %s: cancelling it", task, ti.state);
                if (!cancel_task(be, task, &cerr))
                    vmshift_job_log(job, VMSHIFT_LOG_WARNING, "CancelTask %s: %s; waiting for it to end",
                                    task, cerr->message);
                cancel_sent = TRUE;
            }
            g_usleep(next_poll(&poll) * 1000);
        }
    }
    report_location(be, &inv, job, vm->value, NULL);
    vmshift_job_set_result(job, "repair", outcome);
    return TRUE;
}

/* ---- customize_guest ---------------------------------------------------- */

static char *
prefix_to_mask(guint32 prefix)
{
    guint32 m = prefix == 0 ? 0 : (prefix >= 32 ? 0xffffffffu : ~((1u << (32 - prefix)) - 1));
    return g_strdup_printf("%u.%u.%u.%u", m >> 24, (m >> 16) & 255, (m >> 8) & 255, m & 255);
}

/* Guest customization (CustomizeVM_Task, LinuxPrep): vSphere rewrites the
 * settings of every NIC, so every NIC needs an entry; they apply at the
 * next power-on. */
gboolean
esx_customize_guest(VmshiftBackend *be, const char *name, GPtrArray *nics, VmshiftJob *job,
                    guint32 flags, GError **error)
{
    if (!vmshift_check_flags(flags, 0, "customize_guest", error))
        return FALSE;
    g_auto(Inventory) inv = { 0 };
    EsxObject *vm = find_vm(be, &inv, name, error);
    if (vm == NULL)
        return FALSE;
    g_autofree char *vmname = esx_prop_text(vm, "name");
    g_autofree char *power = esx_prop_text(vm, "runtime.powerState");
    if (g_strcmp0(power, "poweredOff") != 0) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_CONFLICT,
                    "cannot customize VM %s: it is %s; guest customization needs it powered off",
                    vmname, power);
        return FALSE;
    }
    GString *map = g_string_new(NULL);
    GString *dns = g_string_new(NULL);
    guint count = 0;
    for (xmlNode *d = vmshift_xml_first_element(esx_prop(vm, "config.hardware.device")); d != NULL;
         d = vmshift_xml_next_element(d)) {
        g_autofree char *t = vmshift_xml_xsi_type(d);
        if (!is_nic_type(t))
            continue;
        g_autofree char *key = vmshift_xml_child_text(d, VMSHIFT_NS_VIM25, "key");
        g_autofree char *mac = vmshift_xml_child_text(d, VMSHIFT_NS_VIM25, "macAddress");
        VmshiftGuestNic *g = NULL;
        for (guint i = 0; nics != NULL && i < nics->len && g == NULL; i++) {
            VmshiftGuestNic *x = nics->pdata[i];
            if (find_device(vm, x->nic, TRUE) == d)
                g = x;
        }
        if (g == NULL) {
            g_string_free(map, TRUE);
            g_string_free(dns, TRUE);
            g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_INVALID_ARGUMENT,
                        "cannot customize VM %s: no settings for network adapter %s "
                        "(vSphere rewrites every adapter's settings)", vmname, key);
            return FALSE;
        }
        g_autofree char *emac = vmshift_xml_escape(mac);
        g_string_append(map, "<nicSettingMap>");
        if (mac != NULL)
            g_string_append_printf(map, "<macAddress>%s</macAddress>", emac);
        g_string_append(map, "<adapter>");
        if (g->address != NULL) {
            g_autofree char *ea = vmshift_xml_escape(g->address);
            g_autofree char *mask = prefix_to_mask(g->prefix_len);
            g_string_append_printf(map, "<ip xsi:type=\"CustomizationFixedIp\"><ipAddress>%s</ipAddress></ip>"
                                   "<subnetMask>%s</subnetMask>", ea, mask);
        } else {
            g_string_append(map, "<ip xsi:type=\"CustomizationDhcpIpGenerator\"></ip>");
        }
        if (g->gateway != NULL) {
            g_autofree char *eg = vmshift_xml_escape(g->gateway);
            g_string_append_printf(map, "<gateway>%s</gateway>", eg);
        }
        g_string_append(map, "</adapter></nicSettingMap>");
        for (guint i = 0; g->dns != NULL && i < g->dns->len; i++) {
            g_autofree char *e = vmshift_xml_escape(g->dns->pdata[i]);
            g_string_append_printf(dns, "<dnsServerList>%s</dnsServerList>", e);
        }
        vmshift_job_log(job, VMSHIFT_LOG_INFO, "VM %s adapter %s: %s/%u gateway %s", vmname, key,
                        g->address != NULL ? g->address : "DHCP", g->prefix_len,
                        g->gateway != NULL ? g->gateway : "-");
        count++;
    }
    g_autofree char *ename = vmshift_xml_escape(vmname);
    g_autofree char *this = esx_moref_xml("_this", "VirtualMachine", vm->value);
    g_autofree char *body = g_strdup_printf(
        "<CustomizeVM_Task xmlns=\"urn:vim25\">%s<spec>"
        "<identity xsi:type=\"CustomizationLinuxPrep\"><hostName xsi:type=\"CustomizationFixedName\">"
        "<name>%s</name></hostName><domain>localdomain</domain></identity>"
        "<globalIPSettings>%s</globalIPSettings>%s</spec></CustomizeVM_Task>",
        this, ename, dns->str, map->str);
    g_string_free(map, TRUE);
    g_string_free(dns, TRUE);
    g_autofree char *task = start_task(be, "CustomizeVM_Task", body, error);
    if (task == NULL || !wait_task(be, task, "CustomizeVM_Task", error))
        return FALSE;
    g_autofree char *res = g_strdup_printf("%u adapter(s) customized; applied at the next power-on", count);
    vmshift_job_set_result(job, "customize", res);
    return TRUE;
}
