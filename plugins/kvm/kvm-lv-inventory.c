/* vmshift KVM plugin, libvirt transport: the inventory (hosts, VMs,
 * networks, storage pools) and the checkpoint state of a VM. */
#include "config.h"

#include <string.h>

#include "kvm-lv.h"

static VmshiftPowerState
lv_power_state(int state)
{
    switch (state) {
    case VIR_DOMAIN_RUNNING:
    case VIR_DOMAIN_BLOCKED: return VMSHIFT_POWER_RUNNING;
    case VIR_DOMAIN_PAUSED: return VMSHIFT_POWER_PAUSED;
    case VIR_DOMAIN_SHUTOFF:
    case VIR_DOMAIN_SHUTDOWN:
    case VIR_DOMAIN_CRASHED: return VMSHIFT_POWER_STOPPED;
    case VIR_DOMAIN_PMSUSPENDED: return VMSHIFT_POWER_SUSPENDED;
    default: return VMSHIFT_POWER_UNKNOWN;
    }
}

/* the <disk device='disk'> elements of the domain XML in @ctx */
static void
lv_describe_disks(virDomainPtr d, xmlXPathContext *ctx, VmshiftVm *vm)
{
    g_autoptr(GPtrArray)
        disks = vmshift_xpath_nodes(ctx, NULL, "/domain/devices/disk[@device='disk']");
    for (guint i = 0; i < disks->len; i++) {
        xmlNode *n = disks->pdata[i];
        VmshiftDisk *dk = vmshift_disk_new();
        dk->id = vmshift_xpath_string(ctx, n, "target/@dev");
        dk->path = vmshift_xpath_string(ctx, n, "source/@file");
        if (!dk->path)
            dk->path = vmshift_xpath_string(ctx, n, "source/@dev");
        dk->format = vmshift_xpath_string(ctx, n, "driver/@type");
        if (!dk->backing_chain)
            dk->backing_chain = vmshift_string_list_new();
        g_autoptr(GPtrArray) chain = vmshift_xpath_nodes(ctx, n, ".//backingStore/source/@file");
        for (guint k = 0; k < chain->len; k++) {
            char *t = vmshift_xml_text(chain->pdata[k]);
            if (t)
                g_ptr_array_add(dk->backing_chain, t);
        }
        if (dk->path)
            dk->volume = g_path_get_dirname(dk->path);
        virDomainBlockInfo bi;
        if (dk->id && virDomainGetBlockInfo(d, dk->id, &bi, 0) == 0) {
            dk->capacity = bi.capacity;
            dk->allocation = bi.allocation;
            dk->size_known = VMSHIFT_DISK_CAPACITY_KNOWN | VMSHIFT_DISK_ALLOCATION_KNOWN;
        } else {
            virResetLastError(); /* sizes unknown (size_known 0), not 0 */
        }
        g_ptr_array_add(vm->disks, dk);
    }
}

/* the NICs of a domain XML, with the ids --network takes */
void
lv_describe_nics(xmlXPathContext *ctx, VmshiftVm *vm)
{
    g_autoptr(GPtrArray) nics = vmshift_xpath_nodes(ctx, NULL, "/domain/devices/interface");
    for (guint i = 0; i < nics->len; i++) {
        xmlNode *n = nics->pdata[i];
        VmshiftNic *nic = vmshift_nic_new();
        nic->mac = vmshift_xpath_string(ctx, n, "mac/@address");
        nic->id = vmshift_xpath_string(ctx, n, "alias/@name");
        if (!nic->id)
            nic->id = g_strdup_printf("net%u", i);
        nic->network = vmshift_xpath_string(ctx, n, "source/@network");
        if (!nic->network)
            nic->network = vmshift_xpath_string(ctx, n, "source/@bridge");
        nic->model = vmshift_xpath_string(ctx, n, "model/@type");
        g_ptr_array_add(vm->nics, nic);
    }
}

VmshiftVm *
lv_describe(LvHost *h, virDomainPtr d)
{
    VmshiftVm *vm = vmshift_vm_new();
    char uuid[VIR_UUID_STRING_BUFLEN];
    vm->name = g_strdup(virDomainGetName(d));
    if (virDomainGetUUIDString(d, uuid) == 0)
        vm->id = g_strdup(uuid);
    vm->host = g_strdup(h->name);
    virDomainInfo info;
    if (virDomainGetInfo(d, &info) == 0) {
        vm->vcpus = info.nrVirtCpu;
        vm->memory = (guint64)info.maxMem * 1024;
        vm->power_state = lv_power_state(info.state);
    }
    if (virDomainHasManagedSaveImage(d, 0) == 1 && vm->power_state == VMSHIFT_POWER_STOPPED)
        vm->power_state = VMSHIFT_POWER_SUSPENDED;
    vm->snapshot_count = (guint32)MAX(virDomainSnapshotNum(d, 0), 0);
    g_autoptr(xmlDoc) doc = lv_xml(d, 0, NULL);
    if (doc) {
        g_autoptr(xmlXPathContext) ctx = vmshift_xpath_new(doc, NULL);
        lv_describe_disks(d, ctx, vm);
        lv_describe_nics(ctx, vm);
    }
    return vm;
}

/* Busy and total CPU time of the whole node so far (ns), from
 * virNodeGetCPUStats (Linux: kernel, user, idle, iowait). */
static gboolean
lv_cpu_times(virConnectPtr c, guint64 *busy, guint64 *total)
{
    int n = 0;
    if (virNodeGetCPUStats(c, VIR_NODE_CPU_STATS_ALL_CPUS, NULL, &n, 0) != 0 || n <= 0) {
        virResetLastError();
        return FALSE;
    }
    g_autofree virNodeCPUStatsPtr st = g_new0(virNodeCPUStats, n);
    if (virNodeGetCPUStats(c, VIR_NODE_CPU_STATS_ALL_CPUS, st, &n, 0) != 0) {
        virResetLastError();
        return FALSE;
    }
    *busy = *total = 0;
    for (int i = 0; i < n; i++) {
        if (!strcmp(st[i].field, VIR_NODE_CPU_STATS_UTILIZATION))
            continue;
        *total += st[i].value;
        if (!strcmp(st[i].field, VIR_NODE_CPU_STATS_KERNEL)
            || !strcmp(st[i].field, VIR_NODE_CPU_STATS_USER))
            *busy += st[i].value;
    }
    return *total > 0;
}

/*
 * CPU use of each connected host of @l (VmshiftHost, in the order of
 * @hosts) over one 100 ms window shared by all of them (libvirt gives
 * cumulative times, no load average); -1 stays where a node does not say.
 */
static void
lv_cpu_usage(GPtrArray *hosts, GPtrArray *l)
{
    g_autofree guint64 *b0 = g_new0(guint64, hosts->len);
    g_autofree guint64 *t0 = g_new0(guint64, hosts->len);
    g_autofree gboolean *have = g_new0(gboolean, hosts->len);
    gboolean any = FALSE;
    for (guint i = 0; i < hosts->len; i++) {
        VmshiftHost *vh = l->pdata[i];
        if (vh->status == VMSHIFT_HOST_OK)
            any |= have[i] = lv_cpu_times(((LvHost *)hosts->pdata[i])->conn, &b0[i], &t0[i]);
    }
    if (any)
        g_usleep(100000);
    for (guint i = 0; i < hosts->len; i++) {
        guint64 b1, t1;
        if (have[i] && lv_cpu_times(((LvHost *)hosts->pdata[i])->conn, &b1, &t1) && t1 > t0[i]
            && b1 >= b0[i])
            ((VmshiftHost *)l->pdata[i])->cpu_usage_percent = (gint32)MIN(
                100, (100 * (b1 - b0[i]) + (t1 - t0[i]) / 2) / (t1 - t0[i]));
    }
}

static VmshiftHost *
lv_describe_host(LvHost *h)
{
    VmshiftHost *vh = vmshift_host_new();
    vh->id = g_strdup(h->uri);
    vh->name = g_strdup(h->name);
    vh->cpu_usage_percent = -1;
    if (virConnectIsAlive(h->conn) != 1) {
        vh->status = VMSHIFT_HOST_DISCONNECTED;
        vh->status_detail = g_strdup_printf("the connection to %s is down", h->uri);
        return vh;
    }
    vh->status = VMSHIFT_HOST_OK;
    unsigned long hv = 0, lib = 0;
    virConnectGetVersion(h->conn, &hv);
    virConnectGetLibVersion(h->conn, &lib);
    vh->hypervisor = g_strdup_printf("QEMU %lu.%lu.%lu (libvirt %lu.%lu.%lu)", hv / 1000000,
                                     hv / 1000 % 1000, hv % 1000, lib / 1000000, lib / 1000 % 1000,
                                     lib % 1000);
    virNodeInfo ni;
    if (virNodeGetInfo(h->conn, &ni) == 0) {
        vh->cpu_count = ni.cpus;
        vh->cpu_model = g_strdup(ni.model);
        vh->memory_total = (guint64)ni.memory * 1024;
    }
    vh->memory_free = virNodeGetFreeMemory(h->conn);
    vh->migration_address = g_strdup(h->migration_uri);
    return vh;
}

GPtrArray *
kvm_libvirt_list_hosts(KvmBackend *b, GError **error)
{
    (void)error;
    GPtrArray *l = vmshift_list_new((GDestroyNotify)vmshift_host_free);
    for (guint i = 0; i < b->lv->hosts->len; i++)
        g_ptr_array_add(l, lv_describe_host(b->lv->hosts->pdata[i]));
    lv_cpu_usage(b->lv->hosts, l);
    return l;
}

/* adds host @h's name to the network @name of @l (made when new) */
static void
lv_network_add(GPtrArray *l, const char *name, LvHost *h)
{
    VmshiftNetwork *net = NULL;
    for (guint j = 0; j < l->len && !net; j++)
        if (!g_strcmp0(((VmshiftNetwork *)l->pdata[j])->name, name))
            net = l->pdata[j];
    if (!net) {
        net = vmshift_network_new();
        net->id = g_strdup(name);
        net->name = g_strdup(name);
        net->kind = g_strdup("network");
        net->hosts = vmshift_string_list_new();
        g_ptr_array_add(l, net);
    }
    g_ptr_array_add(net->hosts, g_strdup(h->name));
}

/* what one host adds to a list of kvm_libvirt_list_* */
typedef gboolean (*LvLister)(LvHost *h, GPtrArray *l, GError **error);

/* @fn over every host (or only @host), into a list freeing with @free_fn */
static GPtrArray *
lv_list(KvmBackend *b, const char *host, GDestroyNotify free_fn, LvLister fn, GError **error)
{
    if (host && !lv_find_host(b, host, error))
        return NULL;
    g_autoptr(GPtrArray) l = vmshift_list_new(free_fn);
    for (guint i = 0; i < b->lv->hosts->len; i++) {
        LvHost *h = b->lv->hosts->pdata[i];
        if ((!host || !strcmp(h->name, host)) && !fn(h, l, error))
            return NULL;
    }
    return g_steal_pointer(&l);
}

/* libvirt's virtual networks of @h (virConnectListAllNetworks) */
static gboolean
lv_host_networks(LvHost *h, GPtrArray *l, GError **error)
{
    virNetworkPtr *nets = NULL;
    int n = virConnectListAllNetworks(h->conn, &nets, 0);
    if (n < 0) {
        lv_error(error, VMSHIFT_ERROR_FAILED, "host %s: listing networks", h->name);
        return FALSE;
    }
    for (int k = 0; k < n; k++) {
        g_autoptr(virNetwork) net = nets[k];
        lv_network_add(l, virNetworkGetName(net), h);
    }
    free(nets);
    return TRUE;
}

GPtrArray *
kvm_libvirt_list_networks(KvmBackend *b, const char *host, GError **error)
{
    return lv_list(b, host, (GDestroyNotify)vmshift_network_free, lv_host_networks, error);
}

static gboolean
lv_host_vms(LvHost *h, GPtrArray *l, GError **error)
{
    virDomainPtr *doms = NULL;
    int n = virConnectListAllDomains(h->conn, &doms, 0);
    if (n < 0) {
        lv_error(error, VMSHIFT_ERROR_FAILED, "host %s: listing domains", h->name);
        return FALSE;
    }
    for (int k = 0; k < n; k++) {
        g_autoptr(virDomain) d = doms[k];
        g_ptr_array_add(l, lv_describe(h, d));
    }
    free(doms);
    return TRUE;
}

GPtrArray *
kvm_libvirt_list_vms(KvmBackend *b, const char *host, GError **error)
{
    return lv_list(b, host, (GDestroyNotify)vmshift_vm_free, lv_host_vms, error);
}

/* the volume of one storage pool of @h; the pool of @default_dir (where
 * libvirt puts images: /var/lib/libvirt/images) is the host's default */
static VmshiftVolume *
lv_describe_pool(LvHost *h, virStoragePoolPtr pool, const char *default_dir)
{
    VmshiftVolume *v = vmshift_volume_new();
    const char *name = virStoragePoolGetName(pool);
    v->id = g_strdup_printf("%s:%s", h->name, name);
    v->name = g_strdup(name);
    v->host = g_strdup(h->name);
    v->kind = g_strdup("pool");
    g_autofree char *x = virStoragePoolGetXMLDesc(pool, 0);
    g_autoptr(xmlDoc) doc = x ? vmshift_xml_parse(x, strlen(x), "libvirt pool XML", NULL) : NULL;
    if (doc) {
        g_autoptr(xmlXPathContext) ctx = vmshift_xpath_new(doc, NULL);
        v->path = vmshift_xpath_string(ctx, NULL, "/pool/target/path");
    }
    virStoragePoolInfo info;
    if (virStoragePoolIsActive(pool) == 1 && virStoragePoolGetInfo(pool, &info) == 0) {
        v->capacity = info.capacity;
        v->free = info.available;
    } else {
        virResetLastError();
        v->free_unknown = 1; /* an inactive pool tells no free space */
    }
    v->is_default = !g_strcmp0(name, "default") || !g_strcmp0(v->path, default_dir);
    return v;
}

/* libvirt's storage pools of @h (virConnectListAllStoragePools): where VM
 * files can live, and their free space */
static gboolean
lv_host_volumes(LvHost *h, GPtrArray *l, GError **error)
{
    virStoragePoolPtr *pools = NULL;
    int n = virConnectListAllStoragePools(h->conn, &pools, 0);
    if (n < 0) {
        lv_error(error, VMSHIFT_ERROR_FAILED, "host %s: listing storage pools", h->name);
        return FALSE;
    }
    gboolean have_default = FALSE;
    for (int k = 0; k < n; k++) {
        g_autoptr(virStoragePool) pool = pools[k];
        VmshiftVolume *v = lv_describe_pool(h, pool, "/var/lib/libvirt/images");
        /* one default per host: the first */
        if (have_default)
            v->is_default = 0;
        have_default |= v->is_default != 0;
        g_ptr_array_add(l, v);
    }
    free(pools);
    /* a libvirtd on this machine (a URI without a host): its filesystems
     * too, so a --path outside every pool has its free space known */
    const char *auth = strstr(h->uri, "://");
    if (auth && auth[3] == '/') {
        g_autoptr(GPtrArray) fs = kvm_local_filesystems(h->name, NULL);
        while (fs && fs->len)
            g_ptr_array_add(l, g_ptr_array_steal_index(fs, 0));
    }
    return TRUE;
}

GPtrArray *
kvm_libvirt_list_volumes(KvmBackend *b, const char *host, GError **error)
{
    return lv_list(b, host, (GDestroyNotify)vmshift_volume_free, lv_host_volumes, error);
}

VmshiftVm *
kvm_libvirt_get_vm(KvmBackend *b, const char *vm, GError **error)
{
    LvHost *h = NULL;
    g_autoptr(virDomain) d = lv_locate(b, vm, &h, error);
    if (!d)
        return NULL;
    return lv_describe(h, d);
}

/* "block-commit", "active block-commit", "block-stream", or NULL */
static const char *
lv_merge_job(int type)
{
    if (type == VIR_DOMAIN_BLOCK_JOB_TYPE_COMMIT)
        return "block-commit";
    if (type == VIR_DOMAIN_BLOCK_JOB_TYPE_ACTIVE_COMMIT)
        return "active block-commit";
    if (type == VIR_DOMAIN_BLOCK_JOB_TYPE_PULL)
        return "block-stream";
    return NULL;
}

VmshiftCheckpointState *
kvm_libvirt_checkpoint_state(KvmBackend *b, const char *vm, GError **error)
{
    LvHost *h = NULL;
    g_autoptr(virDomain) d = lv_locate(b, vm, &h, error);
    if (!d)
        return NULL;
    g_autoptr(VmshiftVm) info = lv_describe(h, d);
    VmshiftCheckpointState *cs = vmshift_checkpoint_state_new();
    cs->percent = -1;
    g_autoptr(GString) detail = g_string_new(NULL);
    guint64 cur = 0, end = 0;
    for (guint i = 0; i < info->disks->len; i++) {
        VmshiftDisk *dk = info->disks->pdata[i];
        virDomainBlockJobInfo ji;
        if (virDomainGetBlockJobInfo(d, dk->id, &ji, 0) != 1)
            continue;
        const char *type = lv_merge_job(ji.type);
        if (!type)
            continue;
        cur += ji.cur;
        end += ji.end;
        if (detail->len)
            g_string_append(detail, "; ");
        g_string_append_printf(detail, "%s job on disk %s at %d%% (%llu/%llu bytes)", type, dk->id,
                               ji.end ? (int)(100 * ji.cur / ji.end) : 0, ji.cur, ji.end);
    }
    if (detail->len) {
        cs->merging = 1;
        cs->percent = end ? (gint32)(100 * cur / end) : -1;
        cs->detail = g_string_free(g_steal_pointer(&detail), FALSE);
    }
    return cs;
}
