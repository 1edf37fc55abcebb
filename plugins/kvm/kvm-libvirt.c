/* vmshift KVM plugin: the libvirt transport (transport=libvirt).
 *
 * Configuration:
 *   hosts = A=qemu+ssh://root@a/system, B=qemu+tcp://b/system   (one URI per host)
 *   uri   = qemu:///system                      (a single host, named by its hostname)
 *   migration-uris = B=qemu+tcp://10.0.0.2/system   (how the SOURCE libvirtd reaches a
 *                    destination for peer-to-peer migration; default: the host's URI)
 *
 * Inventory and lifecycle go through libvirt's API; live migration is
 * libvirt's peer-to-peer migration (virDomainMigrateToURI3) with the
 * plugin's tuning (parallel connections for quiet guests, post-copy for busy
 * ones, decided from libvirt's dirty-rate measurement); progress from
 * virDomainGetJobStats; cancellation with virDomainAbortJob; block jobs
 * through virDomainGetBlockJobInfo; --network NIC=NET through the
 * destination XML (VIR_MIGRATE_PARAM_DEST_XML/PERSIST_XML); storage
 * migration on the same host through virDomainBlockCopy + pivot;
 * recreate_acl with the qmp transport's libacl model, kept in the domain's
 * metadata.
 *
 * Between hosts the files move through libvirt's storage API only (the
 * hosts are separate libvirtds, maybe on other machines), in directory
 * pools (an existing one is refreshed, a missing one is made transient for
 * the job): cold migration of a shut-off domain streams each image from
 * virStorageVolDownload on the source into virStorageVolUpload on the
 * destination (sparse, holes as holes; same path by default, --path and
 * --disk-path choose directories), defines the domain there, undefines it
 * on the source, removes the source's images, and with --start starts it.
 * VM + storage (live with --path/--disk-path) is the live path above with
 * VIR_MIGRATE_NON_SHARED_DISK and VIR_MIGRATE_PARAM_MIGRATE_DISKS: libvirt
 * mirrors the disks over NBD into images made beforehand in the
 * destination's pools, named in the destination XML; the source's images go
 * only after success. Each step is journaled (vmshift_job_save: kind, stage,
 * new-vols, old-vols) for kvm_libvirt_repair, which finishes a move the
 * destination already owns and otherwise rolls it back.
 */
#include "config.h"

#include <errno.h>
#include <pwd.h>
#include <string.h>

#include <glib/gstdio.h>
#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>
#include <vmshift/xml.h>

#include "kvm.h"
#include "kvm-libvirt.h"

typedef struct {
    char *name;
    char *uri;
    char *migration_uri;
    virConnectPtr conn;
} LvHost;

struct KvmLibvirt {
    GPtrArray *hosts;   /* LvHost */
};

static void
lv_host_free(LvHost *h)
{
    if (h->conn)
        virConnectClose(h->conn);
    g_free(h->name);
    g_free(h->uri);
    g_free(h->migration_uri);
    g_free(h);
}

static void
silent(void *data, virErrorPtr err)
{
    (void) data;
    (void) err;
}

/* "what: libvirt's last error" as one line */
static void
lv_error(GError **error, int code, const char *fmt, ...) G_GNUC_PRINTF(3, 4);
static void
lv_error(GError **error, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *what = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    const char *msg = virGetLastErrorMessage();
    virErrorPtr e = virGetLastError();
    if (e && code == VMSHIFT_ERROR_FAILED) {
        if (e->code == VIR_ERR_NO_DOMAIN)
            code = VMSHIFT_ERROR_NOT_FOUND;
        else if (e->code == VIR_ERR_NO_SUPPORT)
            code = VMSHIFT_ERROR_NOT_SUPPORTED;
        else if (e->code == VIR_ERR_OPERATION_ABORTED)
            code = VMSHIFT_ERROR_FAILED;
        else if (e->code == VIR_ERR_SYSTEM_ERROR && (e->int1 == ENOSPC || e->int1 == EDQUOT))
            code = VMSHIFT_ERROR_NO_SPACE;
        else if (e->code == VIR_ERR_SYSTEM_ERROR &&
                 (e->int1 == EACCES || e->int1 == EPERM || e->int1 == EROFS))
            code = VMSHIFT_ERROR_PERMISSION;
        else if (e->code == VIR_ERR_SYSTEM_ERROR || e->code == VIR_ERR_RPC)
            code = VMSHIFT_ERROR_CONNECTION;
    }
    char *one = g_strdup(msg ? msg : "unknown libvirt error");
    for (char *p = one; *p; p++)
        if (*p == '\n')
            *p = ' ';
    g_set_error(error, VMSHIFT_ERROR, code, "%s: %s", what, one);
    g_free(one);
    g_free(what);
}

void
kvm_libvirt_free(struct KvmLibvirt *lv)
{
    if (!lv)
        return;
    g_ptr_array_unref(lv->hosts);
    g_free(lv);
}

static char *
map_lookup(char **list, const char *name)
{
    for (char **p = list; p && *p; p++) {
        const char *eq = strchr(*p, '=');
        if (eq && (gsize) (eq - *p) == strlen(name) && !strncmp(*p, name, (gsize) (eq - *p)))
            return g_strstrip(g_strdup(eq + 1));
    }
    return NULL;
}

struct KvmLibvirt *
kvm_libvirt_open(KvmBackend *b, const VmshiftConfig *config, GError **error)
{
    struct KvmLibvirt *lv = g_new0(struct KvmLibvirt, 1);
    lv->hosts = g_ptr_array_new_with_free_func((GDestroyNotify) lv_host_free);
    char **hosts = vmshift_config_get_string_list(config, "hosts");
    char **mig = vmshift_config_get_string_list(config, "migration-uris");
    char *single = vmshift_config_get_string(config, "uri", NULL);
    const char *src = vmshift_config_get_source(config);
    if (single) {
        LvHost *h = g_new0(LvHost, 1);
        h->uri = single;
        g_ptr_array_add(lv->hosts, h);
    }
    for (char **p = hosts; p && *p; p++) {
        const char *eq = strchr(*p, '=');
        if (!eq || eq == *p) {
            g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_CONFIG,
                        "%s: backend '%s': hosts entry '%s' is not NAME=LIBVIRT-URI", src,
                        b->name, *p);
            goto fail;
        }
        LvHost *h = g_new0(LvHost, 1);
        h->name = g_strstrip(g_strndup(*p, (gsize) (eq - *p)));
        h->uri = g_strstrip(g_strdup(eq + 1));
        g_ptr_array_add(lv->hosts, h);
    }
    if (lv->hosts->len == 0) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_CONFIG,
                    "%s: backend '%s': the libvirt transport needs uri= or hosts=NAME=URI,...",
                    src, b->name);
        goto fail;
    }
    for (guint i = 0; i < lv->hosts->len; i++) {
        LvHost *h = lv->hosts->pdata[i];
        h->conn = virConnectOpen(h->uri);
        if (!h->conn) {
            lv_error(error, VMSHIFT_ERROR_CONNECTION, "%s: backend '%s': cannot connect to %s",
                     src, b->name, h->uri);
            goto fail;
        }
        virConnSetErrorFunc(h->conn, NULL, silent);
        if (!h->name) {
            char *hn = virConnectGetHostname(h->conn);
            h->name = g_strdup(hn ? hn : h->uri);
            free(hn);
        }
        h->migration_uri = map_lookup(mig, h->name);
        if (!h->migration_uri)
            h->migration_uri = g_strdup(h->uri);
    }
    g_strfreev(hosts);
    g_strfreev(mig);
    return lv;
fail:
    g_strfreev(hosts);
    g_strfreev(mig);
    kvm_libvirt_free(lv);
    return NULL;
}

static LvHost *
lv_find_host(KvmBackend *b, const char *name, GError **error)
{
    for (guint i = 0; i < b->lv->hosts->len; i++) {
        LvHost *h = b->lv->hosts->pdata[i];
        if (!strcmp(h->name, name))
            return h;
    }
    g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_NOT_FOUND, "kvm[%s]: no host '%s'", b->name,
                name);
    return NULL;
}

/* Finds a domain (name or UUID, "host:name" picks the host). */
static virDomainPtr
lv_locate(KvmBackend *b, const char *vm, LvHost **host, GError **error)
{
    const char *colon = strchr(vm, ':');
    for (guint i = 0; i < b->lv->hosts->len; i++) {
        LvHost *h = b->lv->hosts->pdata[i];
        const char *name = vm;
        if (colon) {
            if (strncmp(h->name, vm, (gsize) (colon - vm)) || h->name[colon - vm])
                continue;
            name = colon + 1;
        }
        virDomainPtr d = virDomainLookupByName(h->conn, name);
        if (!d)
            d = virDomainLookupByUUIDString(h->conn, name);
        if (d) {
            /* a transient domain being migrated in is not this host's yet */
            int state = 0, reason = 0;
            if (virDomainGetState(d, &state, &reason, 0) == 0 && state == VIR_DOMAIN_PAUSED &&
                reason == VIR_DOMAIN_PAUSED_MIGRATION && !virDomainIsPersistent(d)) {
                virDomainFree(d);
                continue;
            }
            if (host)
                *host = h;
            return d;
        }
    }
    g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_NOT_FOUND, "kvm[%s]: no VM '%s' on any host",
                b->name, vm);
    return NULL;
}

static VmshiftVm *
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
        vm->memory = (guint64) info.maxMem * 1024;
        switch (info.state) {
        case VIR_DOMAIN_RUNNING:
        case VIR_DOMAIN_BLOCKED:
            vm->power_state = VMSHIFT_POWER_RUNNING;
            break;
        case VIR_DOMAIN_PAUSED:
            vm->power_state = VMSHIFT_POWER_PAUSED;
            break;
        case VIR_DOMAIN_SHUTOFF:
        case VIR_DOMAIN_SHUTDOWN:
        case VIR_DOMAIN_CRASHED:
            vm->power_state = VMSHIFT_POWER_STOPPED;
            break;
        case VIR_DOMAIN_PMSUSPENDED:
            vm->power_state = VMSHIFT_POWER_SUSPENDED;
            break;
        default:
            vm->power_state = VMSHIFT_POWER_UNKNOWN;
        }
    }
    if (virDomainHasManagedSaveImage(d, 0) == 1 && vm->power_state == VMSHIFT_POWER_STOPPED)
        vm->power_state = VMSHIFT_POWER_SUSPENDED;
    vm->snapshot_count = (guint32) MAX(virDomainSnapshotNum(d, 0), 0);
    char *xml = virDomainGetXMLDesc(d, 0);
    if (xml) {
        GError *e = NULL;
        xmlDoc *doc = vmshift_xml_parse(xml, strlen(xml), "libvirt domain XML", &e);
        if (doc) {
            xmlXPathContext *ctx = vmshift_xpath_new(doc, NULL);
            GPtrArray *disks = vmshift_xpath_nodes(ctx, NULL, "/domain/devices/disk[@device='disk']");
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
                GPtrArray *chain = vmshift_xpath_nodes(ctx, n, ".//backingStore/source/@file");
                for (guint k = 0; k < chain->len; k++) {
                    char *t = vmshift_xml_text(chain->pdata[k]);
                    if (t)
                        g_ptr_array_add(dk->backing_chain, t);
                }
                g_ptr_array_unref(chain);
                if (dk->path)
                    dk->volume = g_path_get_dirname(dk->path);
                virDomainBlockInfo bi;
                if (dk->id && virDomainGetBlockInfo(d, dk->id, &bi, 0) == 0) {
                    dk->capacity = bi.capacity;
                    dk->allocation = bi.allocation;
                }
                g_ptr_array_add(vm->disks, dk);
            }
            g_ptr_array_unref(disks);
            GPtrArray *nics = vmshift_xpath_nodes(ctx, NULL, "/domain/devices/interface");
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
            g_ptr_array_unref(nics);
            xmlXPathFreeContext(ctx);
            xmlFreeDoc(doc);
        } else {
            g_clear_error(&e);
        }
        free(xml);
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
    virNodeCPUStatsPtr st = g_new0(virNodeCPUStats, n);
    gboolean ok = virNodeGetCPUStats(c, VIR_NODE_CPU_STATS_ALL_CPUS, st, &n, 0) == 0;
    *busy = *total = 0;
    for (int i = 0; ok && i < n; i++) {
        if (!strcmp(st[i].field, VIR_NODE_CPU_STATS_UTILIZATION))
            continue;
        *total += st[i].value;
        if (!strcmp(st[i].field, VIR_NODE_CPU_STATS_KERNEL) ||
            !strcmp(st[i].field, VIR_NODE_CPU_STATS_USER))
            *busy += st[i].value;
    }
    if (!ok)
        virResetLastError();
    g_free(st);
    return ok && *total > 0;
}

/*
 * CPU use of each connected host of @l (VmshiftHost, in the order of
 * @hosts) over one 100 ms window shared by all of them (libvirt gives
 * cumulative times, no load average); -1 stays where a node does not say.
 */
static void
lv_cpu_usage(GPtrArray *hosts, GPtrArray *l)
{
    guint64 *b0 = g_new0(guint64, hosts->len), *t0 = g_new0(guint64, hosts->len);
    gboolean *have = g_new0(gboolean, hosts->len), any = FALSE;
    for (guint i = 0; i < hosts->len; i++) {
        VmshiftHost *vh = l->pdata[i];
        if (vh->status == VMSHIFT_HOST_OK)
            any |= have[i] = lv_cpu_times(((LvHost *) hosts->pdata[i])->conn, &b0[i], &t0[i]);
    }
    if (any)
        g_usleep(100000);
    for (guint i = 0; i < hosts->len; i++) {
        guint64 b1, t1;
        if (have[i] && lv_cpu_times(((LvHost *) hosts->pdata[i])->conn, &b1, &t1) &&
            t1 > t0[i] && b1 >= b0[i])
            ((VmshiftHost *) l->pdata[i])->cpu_usage_percent =
                (gint32) MIN(100, (100 * (b1 - b0[i]) + (t1 - t0[i]) / 2) / (t1 - t0[i]));
    }
    g_free(b0);
    g_free(t0);
    g_free(have);
}

GPtrArray *
kvm_libvirt_list_hosts(KvmBackend *b, GError **error)
{
    (void) error;
    GPtrArray *l = vmshift_list_new((GDestroyNotify) vmshift_host_free);
    for (guint i = 0; i < b->lv->hosts->len; i++) {
        LvHost *h = b->lv->hosts->pdata[i];
        VmshiftHost *vh = vmshift_host_new();
        vh->id = g_strdup(h->uri);
        vh->name = g_strdup(h->name);
        vh->cpu_usage_percent = -1;
        if (virConnectIsAlive(h->conn) != 1) {
            vh->status = VMSHIFT_HOST_DISCONNECTED;
            vh->status_detail = g_strdup_printf("the connection to %s is down", h->uri);
            g_ptr_array_add(l, vh);
            continue;
        }
        vh->status = VMSHIFT_HOST_OK;
        unsigned long hv = 0, lib = 0;
        virConnectGetVersion(h->conn, &hv);
        virConnectGetLibVersion(h->conn, &lib);
        vh->hypervisor = g_strdup_printf("QEMU %lu.%lu.%lu (libvirt %lu.%lu.%lu)",
                                         hv / 1000000, hv / 1000 % 1000, hv % 1000,
                                         lib / 1000000, lib / 1000 % 1000, lib % 1000);
        virNodeInfo ni;
        if (virNodeGetInfo(h->conn, &ni) == 0) {
            vh->cpu_count = ni.cpus;
            vh->cpu_model = g_strdup(ni.model);
            vh->memory_total = (guint64) ni.memory * 1024;
        }
        vh->memory_free = virNodeGetFreeMemory(h->conn);
        vh->migration_address = g_strdup(h->migration_uri);
        g_ptr_array_add(l, vh);
    }
    lv_cpu_usage(b->lv->hosts, l);
    return l;
}

/* libvirt's virtual networks of each host (virConnectListAllNetworks) */
GPtrArray *
kvm_libvirt_list_networks(KvmBackend *b, const char *host, GError **error)
{
    if (host && !lv_find_host(b, host, error))
        return NULL;
    GPtrArray *l = vmshift_list_new((GDestroyNotify) vmshift_network_free);
    for (guint i = 0; i < b->lv->hosts->len; i++) {
        LvHost *h = b->lv->hosts->pdata[i];
        if (host && strcmp(h->name, host))
            continue;
        virNetworkPtr *nets = NULL;
        int n = virConnectListAllNetworks(h->conn, &nets, 0);
        if (n < 0) {
            lv_error(error, VMSHIFT_ERROR_FAILED, "host %s: listing networks", h->name);
            g_ptr_array_unref(l);
            return NULL;
        }
        for (int k = 0; k < n; k++) {
            const char *nm = virNetworkGetName(nets[k]);
            VmshiftNetwork *net = NULL;
            for (guint j = 0; j < l->len && !net; j++)
                if (!g_strcmp0(((VmshiftNetwork *) l->pdata[j])->name, nm))
                    net = l->pdata[j];
            if (!net) {
                net = vmshift_network_new();
                net->id = g_strdup(nm);
                net->name = g_strdup(nm);
                net->kind = g_strdup("network");
                net->hosts = vmshift_string_list_new();
                g_ptr_array_add(l, net);
            }
            g_ptr_array_add(net->hosts, g_strdup(h->name));
            virNetworkFree(nets[k]);
        }
        free(nets);
    }
    return l;
}

GPtrArray *
kvm_libvirt_list_vms(KvmBackend *b, const char *host, GError **error)
{
    if (host && !lv_find_host(b, host, error))
        return NULL;
    GPtrArray *l = vmshift_list_new((GDestroyNotify) vmshift_vm_free);
    for (guint i = 0; i < b->lv->hosts->len; i++) {
        LvHost *h = b->lv->hosts->pdata[i];
        if (host && strcmp(h->name, host))
            continue;
        virDomainPtr *doms = NULL;
        int n = virConnectListAllDomains(h->conn, &doms, 0);
        if (n < 0) {
            lv_error(error, VMSHIFT_ERROR_FAILED, "host %s: listing domains", h->name);
            g_ptr_array_unref(l);
            return NULL;
        }
        for (int k = 0; k < n; k++) {
            g_ptr_array_add(l, lv_describe(h, doms[k]));
            virDomainFree(doms[k]);
        }
        free(doms);
    }
    return l;
}

VmshiftVm *
kvm_libvirt_get_vm(KvmBackend *b, const char *vm, GError **error)
{
    LvHost *h = NULL;
    virDomainPtr d = lv_locate(b, vm, &h, error);
    if (!d)
        return NULL;
    VmshiftVm *r = lv_describe(h, d);
    virDomainFree(d);
    return r;
}

VmshiftCheckpointState *
kvm_libvirt_checkpoint_state(KvmBackend *b, const char *vm, GError **error)
{
    LvHost *h = NULL;
    virDomainPtr d = lv_locate(b, vm, &h, error);
    if (!d)
        return NULL;
    VmshiftVm *info = lv_describe(h, d);
    VmshiftCheckpointState *cs = vmshift_checkpoint_state_new();
    cs->percent = -1;
    GString *detail = g_string_new(NULL);
    guint64 cur = 0, end = 0;
    for (guint i = 0; i < info->disks->len; i++) {
        VmshiftDisk *dk = info->disks->pdata[i];
        virDomainBlockJobInfo ji;
        if (virDomainGetBlockJobInfo(d, dk->id, &ji, 0) != 1)
            continue;
        const char *type = NULL;
        if (ji.type == VIR_DOMAIN_BLOCK_JOB_TYPE_COMMIT)
            type = "block-commit";
        else if (ji.type == VIR_DOMAIN_BLOCK_JOB_TYPE_ACTIVE_COMMIT)
            type = "active block-commit";
        else if (ji.type == VIR_DOMAIN_BLOCK_JOB_TYPE_PULL)
            type = "block-stream";
        if (!type)
            continue;
        cur += ji.cur;
        end += ji.end;
        if (detail->len)
            g_string_append(detail, "; ");
        g_string_append_printf(detail, "%s job on disk %s at %d%% (%llu/%llu bytes)", type,
                               dk->id, ji.end ? (int) (100 * ji.cur / ji.end) : 0, ji.cur,
                               ji.end);
    }
    if (detail->len) {
        cs->merging = 1;
        cs->percent = end ? (gint32) (100 * cur / end) : -1;
        cs->detail = g_string_free(detail, FALSE);
    } else {
        g_string_free(detail, TRUE);
    }
    vmshift_vm_free(info);
    virDomainFree(d);
    return cs;
}

GPtrArray *
kvm_libvirt_check_migration(KvmBackend *b, const VmshiftMigrationSpec *spec, GError **error)
{
    LvHost *src = NULL;
    virDomainPtr d = lv_locate(b, spec->vm, &src, error);
    if (!d)
        return NULL;
    GPtrArray *l = vmshift_list_new((GDestroyNotify) vmshift_finding_free);
    int state = 0;
    virDomainGetState(d, &state, NULL, 0);
    if (spec->type == VMSHIFT_MIGRATION_COLD && state != VIR_DOMAIN_SHUTOFF)
        g_ptr_array_add(l, vmshift_finding_new(VMSHIFT_SEVERITY_ERROR, "power-state", spec->vm,
                                               "the VM is not shut off: cold migration needs "
                                               "it stopped"));
    else if (spec->type != VMSHIFT_MIGRATION_COLD && state != VIR_DOMAIN_RUNNING &&
             state != VIR_DOMAIN_PAUSED)
        g_ptr_array_add(l, vmshift_finding_new(VMSHIFT_SEVERITY_ERROR, "power-state", spec->vm,
                                               "the VM is not running: %s migration needs "
                                               "it running",
                                               vmshift_migration_type_name(spec->type)));
    GError *e = NULL;
    LvHost *dst = spec->dest_host ? lv_find_host(b, spec->dest_host, &e) : NULL;
    if (spec->type != VMSHIFT_MIGRATION_STORAGE && !dst) {
        g_ptr_array_add(l, vmshift_finding_new(VMSHIFT_SEVERITY_ERROR, "host-unknown",
                                               spec->dest_host, "%s",
                                               e ? e->message : "no destination host"));
        g_clear_error(&e);
    } else if (dst) {
        if (dst == src)
            g_ptr_array_add(l, vmshift_finding_new(VMSHIFT_SEVERITY_ERROR, "same-host", dst->name,
                                                   "the VM already is on this host"));
        virDomainInfo info;
        if ((spec->type == VMSHIFT_MIGRATION_LIVE || spec->start) &&
            virDomainGetInfo(d, &info) == 0 &&
            virNodeGetFreeMemory(dst->conn) < (unsigned long long) info.maxMem * 1024)
            g_ptr_array_add(l, vmshift_finding_new(VMSHIFT_SEVERITY_ERROR, "no-memory", dst->name,
                                                   "host %s has less free memory than the VM's "
                                                   "%lu MiB", dst->name, info.maxMem / 1024));
        if (virConnectIsAlive(dst->conn) != 1)
            g_ptr_array_add(l, vmshift_finding_new(VMSHIFT_SEVERITY_ERROR, "host-unreachable",
                                                   dst->name, "the connection to %s is down",
                                                   dst->uri));
    }
    virDomainFree(d);
    VmshiftCheckpointState *cs = kvm_libvirt_checkpoint_state(b, spec->vm, NULL);
    if (cs && cs->merging)
        g_ptr_array_add(l, vmshift_finding_new(VMSHIFT_SEVERITY_ERROR, "merge-in-progress",
                                               spec->vm, "%s", cs->detail));
    vmshift_checkpoint_state_free(cs);
    return l;
}

/* ---- domain XML helpers ------------------------------------------------ */

static xmlDoc *
lv_xml(virDomainPtr d, unsigned int flags, GError **error)
{
    char *xml = virDomainGetXMLDesc(d, flags);
    if (!xml) {
        lv_error(error, VMSHIFT_ERROR_FAILED, "VM %s: reading its XML", virDomainGetName(d));
        return NULL;
    }
    xmlDoc *doc = vmshift_xml_parse(xml, strlen(xml), "libvirt domain XML", error);
    free(xml);
    return doc;
}

static char *
lv_xml_dump(xmlDoc *doc)
{
    xmlChar *buf = NULL;
    int len = 0;
    xmlDocDumpMemory(doc, &buf, &len);
    char *r = g_strndup((const char *) buf, (gsize) MAX(len, 0));
    xmlFree(buf);
    return r;
}

/*
 * Rewires the <interface> elements of @doc for --network NIC=NET (NIC: the
 * alias, "netN" by position, or the MAC): an interface of type network gets
 * source/@network=NET, of type bridge source/@bridge=NET.
 */
static gboolean
lv_map_networks(xmlDoc *doc, const VmshiftMigrationSpec *spec, GError **error)
{
    xmlXPathContext *ctx = vmshift_xpath_new(doc, NULL);
    GPtrArray *nics = vmshift_xpath_nodes(ctx, NULL, "/domain/devices/interface");
    gboolean ok = TRUE;
    for (guint k = 0; k < spec->networks->len && ok; k++) {
        VmshiftMapping *mp = spec->networks->pdata[k];
        gboolean found = FALSE;
        for (guint i = 0; i < nics->len; i++) {
            xmlNode *n = nics->pdata[i];
            char *alias = vmshift_xpath_string(ctx, n, "alias/@name");
            char *mac = vmshift_xpath_string(ctx, n, "mac/@address");
            char *pos = g_strdup_printf("net%u", i);
            gboolean hit = !g_strcmp0(alias, mp->key) || !g_strcmp0(pos, mp->key) ||
                           (mac && !g_ascii_strcasecmp(mac, mp->key));
            g_free(alias);
            g_free(mac);
            g_free(pos);
            if (!hit)
                continue;
            found = TRUE;
            char *type = vmshift_xml_get_attr(n, NULL, "type");
            xmlNode *src = vmshift_xml_child(n, NULL, "source");
            if (!src)
                src = xmlNewChild(n, NULL, BAD_CAST "source", NULL);
            if (!g_strcmp0(type, "bridge")) {
                xmlSetProp(src, BAD_CAST "bridge", BAD_CAST mp->value);
            } else if (!g_strcmp0(type, "network")) {
                xmlSetProp(src, BAD_CAST "network", BAD_CAST mp->value);
                /* the source host's bridge and port are not the destination's */
                xmlUnsetProp(src, BAD_CAST "bridge");
                xmlUnsetProp(src, BAD_CAST "portid");
            } else {
                g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_NOT_SUPPORTED,
                            "NIC %s is of type '%s': --network maps network and bridge "
                            "interfaces only", mp->key, type ? type : "?");
                ok = FALSE;
            }
            g_free(type);
        }
        if (ok && !found) {
            g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_NOT_FOUND,
                        "VM %s has no NIC '%s' (--network %s=%s)", spec->vm, mp->key, mp->key,
                        mp->value);
            ok = FALSE;
        }
    }
    g_ptr_array_unref(nics);
    xmlXPathFreeContext(ctx);
    return ok;
}

/* ---- storage migration on the same host (block copy with pivot) ------- */

typedef struct {
    char *dev, *old_path, *new_path, *format;
    gboolean started, pivoted;
} LvCopy;

static void
lv_copy_free(LvCopy *c)
{
    g_free(c->dev);
    g_free(c->old_path);
    g_free(c->new_path);
    g_free(c->format);
    g_free(c);
}

static const char *
lv_disk_dir(const VmshiftMigrationSpec *spec, const char *dev)
{
    for (guint i = 0; i < spec->disk_paths->len; i++) {
        VmshiftMapping *mp = spec->disk_paths->pdata[i];
        if (!strcmp(mp->key, dev))
            return mp->value;
    }
    return spec->dest_path;
}

/* the disk @dev's source file in @d's live (or, with @inactive, persistent) XML */
static char *
lv_disk_source(virDomainPtr d, const char *dev, gboolean inactive)
{
    xmlDoc *doc = lv_xml(d, inactive ? VIR_DOMAIN_XML_INACTIVE : 0, NULL);
    if (!doc)
        return NULL;
    xmlXPathContext *ctx = vmshift_xpath_new(doc, NULL);
    char *expr = g_strdup_printf("/domain/devices/disk[target/@dev='%s']/source/@file", dev);
    char *r = vmshift_xpath_string(ctx, NULL, expr);
    g_free(expr);
    xmlXPathFreeContext(ctx);
    xmlFreeDoc(doc);
    return r;
}

/* After a pivot, a persistent domain's definition names the new file
 * (libvirt updates only the live definition of a transient block job). */
static gboolean
lv_rewrite_config(virDomainPtr d, GPtrArray *copies, GError **error)
{
    if (virDomainIsPersistent(d) != 1)
        return TRUE;
    xmlDoc *doc = lv_xml(d, VIR_DOMAIN_XML_INACTIVE | VIR_DOMAIN_XML_SECURE, error);
    if (!doc)
        return FALSE;
    xmlXPathContext *ctx = vmshift_xpath_new(doc, NULL);
    gboolean changed = FALSE;
    for (guint i = 0; i < copies->len; i++) {
        LvCopy *c = copies->pdata[i];
        char *expr = g_strdup_printf("/domain/devices/disk[target/@dev='%s']", c->dev);
        xmlNode *disk = vmshift_xpath_node(ctx, NULL, expr);
        g_free(expr);
        xmlNode *src = disk ? vmshift_xml_child(disk, NULL, "source") : NULL;
        char *cur = src ? vmshift_xml_get_attr(src, NULL, "file") : NULL;
        if (src && g_strcmp0(cur, c->new_path) != 0) {
            xmlSetProp(src, BAD_CAST "file", BAD_CAST c->new_path);
            /* the copy is a whole image: no backing chain */
            xmlNode *bs;
            while ((bs = vmshift_xml_child(disk, NULL, "backingStore"))) {
                xmlUnlinkNode(bs);
                xmlFreeNode(bs);
            }
            changed = TRUE;
        }
        g_free(cur);
    }
    gboolean ok = TRUE;
    if (changed) {
        char *xml = lv_xml_dump(doc);
        virDomainPtr nd = virDomainDefineXML(virDomainGetConnect(d), xml);
        if (!nd) {
            lv_error(error, VMSHIFT_ERROR_FAILED, "VM %s: saving its definition with the new "
                     "disk paths", virDomainGetName(d));
            ok = FALSE;
        } else {
            virDomainFree(nd);
        }
        g_free(xml);
    }
    xmlXPathFreeContext(ctx);
    xmlFreeDoc(doc);
    return ok;
}

/*
 * Storage migration on the VM's host, live: for each moving disk
 * virDomainBlockCopy (a full copy into DIR/basename, a transient job as
 * libvirt requires for persistent domains), wait until every copy is ready
 * (cur == end: libvirt reports them equal only once QEMU's mirror is
 * ready), pivot with virDomainBlockJobAbort(PIVOT), confirm in the live XML
 * that the disk runs on the new file, and only then remove the old file.
 * Cancel before the pivot aborts the copies and removes the new files.
 */
static gboolean
lv_storage_migrate(KvmBackend *b, const VmshiftMigrationSpec *spec, VmshiftJob *job,
                   virDomainPtr d, LvHost *h, GError **error)
{
    (void) b;
    GCancellable *cancel = vmshift_job_get_cancellable(job);
    GPtrArray *copies = g_ptr_array_new_with_free_func((GDestroyNotify) lv_copy_free);
    gboolean ok = FALSE;
    int state = 0;
    virDomainGetState(d, &state, NULL, 0);
    if (state != VIR_DOMAIN_RUNNING && state != VIR_DOMAIN_PAUSED) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_NOT_SUPPORTED,
                    "VM %s is not running: the libvirt transport moves storage of running "
                    "VMs only (block copy)", spec->vm);
        goto out;
    }
    xmlDoc *doc = lv_xml(d, 0, error);
    if (!doc)
        goto out;
    xmlXPathContext *ctx = vmshift_xpath_new(doc, NULL);
    GPtrArray *disks = vmshift_xpath_nodes(ctx, NULL,
                                           "/domain/devices/disk[@device='disk' and @type='file']");
    for (guint i = 0; i < disks->len; i++) {
        xmlNode *n = disks->pdata[i];
        char *dev = vmshift_xpath_string(ctx, n, "target/@dev");
        char *path = vmshift_xpath_string(ctx, n, "source/@file");
        const char *dir = dev ? lv_disk_dir(spec, dev) : NULL;
        if (!dev || !path || !dir) {
            g_free(dev);
            g_free(path);
            continue;
        }
        char *base = g_path_get_basename(path);
        char *np = g_build_filename(dir, base, NULL);
        g_free(base);
        if (!strcmp(np, path)) {
            g_free(np);
            g_free(dev);
            g_free(path);
            continue;
        }
        LvCopy *c = g_new0(LvCopy, 1);
        c->dev = dev;
        c->old_path = path;
        c->new_path = np;
        c->format = vmshift_xpath_string(ctx, n, "driver/@type");
        g_ptr_array_add(copies, c);
    }
    g_ptr_array_unref(disks);
    xmlXPathFreeContext(ctx);
    xmlFreeDoc(doc);
    for (guint i = 0; i < spec->disk_paths->len; i++) {
        VmshiftMapping *mp = spec->disk_paths->pdata[i];
        gboolean known = FALSE;
        for (guint k = 0; k < copies->len; k++)
            known |= !strcmp(((LvCopy *) copies->pdata[k])->dev, mp->key);
        if (!known && !lv_disk_source(d, mp->key, FALSE)) {
            g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_NOT_FOUND,
                        "VM %s has no file disk '%s' (--disk-path %s=%s)", spec->vm, mp->key,
                        mp->key, mp->value);
            goto out;
        }
    }
    if (copies->len == 0) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_INVALID_ARGUMENT,
                    "VM %s: no disk moves (its files already are in the destination)", spec->vm);
        goto out;
    }
    GString *nf = g_string_new(NULL);
    for (guint i = 0; i < copies->len; i++) {
        LvCopy *c = copies->pdata[i];
        if (g_file_test(c->new_path, G_FILE_TEST_EXISTS)) {
            g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_CONFLICT,
                        "%s already exists on host %s: not overwritten", c->new_path, h->name);
            g_string_free(nf, TRUE);
            goto out;
        }
        g_string_append_printf(nf, "%s%s=%s", nf->len ? ";" : "", c->dev, c->new_path);
    }
    gboolean saved = vmshift_job_save(job, "vm", virDomainGetName(d), error) &&
                     vmshift_job_save(job, "src-host", h->name, error) &&
                     vmshift_job_save(job, "kind", "storage", error) &&
                     vmshift_job_save(job, "transport", "libvirt", error) &&
                     vmshift_job_save(job, "new-files", nf->str, error);
    g_string_free(nf, TRUE);
    if (!saved || !vmshift_job_set_phase(job, VMSHIFT_PHASE_PREPARE, error) ||
        !vmshift_job_set_phase(job, VMSHIFT_PHASE_TRANSFER, error) ||
        !vmshift_job_save(job, "stage", "copy", error))
        goto out;
    vmshift_job_set_location(job, h->name, "running, copying storage");
    for (guint i = 0; i < copies->len; i++) {
        LvCopy *c = copies->pdata[i];
        char *ep = vmshift_xml_escape(c->new_path);
        char *ef = vmshift_xml_escape(c->format ? c->format : "raw");
        char *dx = g_strdup_printf("<disk type='file'><source file='%s'/><driver type='%s'/>"
                                   "</disk>", ep, ef);
        g_free(ep);
        g_free(ef);
        int rc = virDomainBlockCopy(d, c->dev, dx, NULL, 0,
                                    VIR_DOMAIN_BLOCK_COPY_TRANSIENT_JOB);
        g_free(dx);
        if (rc < 0) {
            lv_error(error, VMSHIFT_ERROR_FAILED, "VM %s: block copy of disk %s to %s",
                     spec->vm, c->dev, c->new_path);
            goto abort;
        }
        c->started = TRUE;
        vmshift_job_log(job, VMSHIFT_LOG_INFO, "block copy of disk %s: %s -> %s", c->dev,
                        c->old_path, c->new_path);
    }
    /* wait until every copy is ready */
    for (;;) {
        if (g_cancellable_set_error_if_cancelled(cancel, error))
            goto abort;
        guint ready = 0;
        unsigned long long cur = 0, end = 0;
        for (guint i = 0; i < copies->len; i++) {
            LvCopy *c = copies->pdata[i];
            virDomainBlockJobInfo ji;
            int r = virDomainGetBlockJobInfo(d, c->dev, &ji, 0);
            if (r < 0) {
                lv_error(error, VMSHIFT_ERROR_FAILED, "VM %s: block copy of disk %s",
                         spec->vm, c->dev);
                goto abort;
            }
            if (r == 0) {
                g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_FAILED,
                            "VM %s: the block copy of disk %s to %s ended before the pivot",
                            spec->vm, c->dev, c->new_path);
                goto abort;
            }
            cur += ji.cur;
            end += ji.end;
            if (ji.end > 0 && ji.cur == ji.end)
                ready++;
        }
        if (end)
            vmshift_job_set_bytes(job, cur, end);
        if (end)
            vmshift_job_set_progress(job, 100.0 * (double) cur / (double) end);
        if (ready == copies->len)
            break;
        g_usleep(100000);
    }
    if (!vmshift_job_set_phase(job, VMSHIFT_PHASE_SWITCHOVER, error))
        goto abort;
    for (guint i = 0; i < copies->len; i++) {
        LvCopy *c = copies->pdata[i];
        if (virDomainBlockJobAbort(d, c->dev, VIR_DOMAIN_BLOCK_JOB_ABORT_PIVOT) < 0) {
            lv_error(error, VMSHIFT_ERROR_FAILED, "VM %s: pivot of disk %s to %s", spec->vm,
                     c->dev, c->new_path);
            goto abort;
        }
        /* confirm in the live definition before the old file may go */
        char *now = lv_disk_source(d, c->dev, FALSE);
        if (g_strcmp0(now, c->new_path) != 0) {
            g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_FAILED,
                        "VM %s: disk %s runs on %s after the pivot to %s", spec->vm, c->dev,
                        now ? now : "?", c->new_path);
            g_free(now);
            goto abort;
        }
        g_free(now);
        c->pivoted = TRUE;
        vmshift_job_log(job, VMSHIFT_LOG_INFO, "disk %s pivoted to %s", c->dev, c->new_path);
    }
    vmshift_job_save(job, "stage", "pivoted", NULL);
    if (!lv_rewrite_config(d, copies, error))
        goto out;
    vmshift_job_set_location(job, h->name, "running");
    vmshift_job_set_phase(job, VMSHIFT_PHASE_CLEANUP, NULL);
    GString *moved = g_string_new(NULL);
    for (guint i = 0; i < copies->len; i++) {
        LvCopy *c = copies->pdata[i];
        /* the old top file only: backing files may be shared with others */
        if (g_unlink(c->old_path) != 0)
            vmshift_job_log(job, VMSHIFT_LOG_WARNING, "removing %s: %s", c->old_path,
                            g_strerror(errno));
        else
            vmshift_job_log(job, VMSHIFT_LOG_INFO, "removed %s", c->old_path);
        g_string_append_printf(moved, "%s%s=%s", moved->len ? "," : "", c->dev, c->new_path);
    }
    vmshift_job_set_result(job, "disks", moved->str);
    g_string_free(moved, TRUE);
    vmshift_job_save(job, "stage", "done", NULL);
    ok = TRUE;
    goto out;
abort:
    /* before the pivot: abort the copies (no pivot), remove the new files;
     * the VM keeps running on its old files */
    for (guint i = 0; i < copies->len; i++) {
        LvCopy *c = copies->pdata[i];
        if (!c->started || c->pivoted)
            continue;
        virDomainBlockJobAbort(d, c->dev, 0);
        for (int k = 0; k < 50; k++) {
            virDomainBlockJobInfo ji;
            if (virDomainGetBlockJobInfo(d, c->dev, &ji, 0) != 1)
                break;
            g_usleep(100000);
        }
        g_unlink(c->new_path);
    }
    vmshift_job_set_location(job, h->name, "running (storage unchanged)");
    vmshift_job_save(job, "stage", "rolled-back", NULL);
out:
    g_ptr_array_unref(copies);
    return ok;
}

/* ---- recreate_acl ------------------------------------------------------ */

#define LV_META_URI "https://vmshift.example/kvm/acl/1"

/* the model recorded for @path in the domain's metadata (or FALSE) */
static gboolean
lv_acl_model(xmlXPathContext *mctx, const char *path, KvmDiskDef *dk)
{
    if (!mctx)
        return FALSE;
    GPtrArray *files = vmshift_xpath_nodes(mctx, NULL, "//*[local-name()='file']");
    gboolean found = FALSE;
    for (guint i = 0; i < files->len && !found; i++) {
        xmlNode *n = files->pdata[i];
        char *p = vmshift_xml_get_attr(n, NULL, "path");
        if (!g_strcmp0(p, path)) {
            char *uid = vmshift_xml_get_attr(n, NULL, "uid");
            char *gid = vmshift_xml_get_attr(n, NULL, "gid");
            char *mode = vmshift_xml_get_attr(n, NULL, "mode");
            dk->acl_uid = uid ? g_ascii_strtoll(uid, NULL, 10) : -1;
            dk->acl_gid = gid ? g_ascii_strtoll(gid, NULL, 10) : -1;
            dk->acl_mode = mode ? (guint) g_ascii_strtoull(mode, NULL, 8) : 0;
            dk->acl_text = vmshift_xml_get_attr(n, NULL, "acl");
            dk->acl_label = vmshift_xml_get_attr(n, NULL, "label");
            found = dk->acl_text != NULL;
            g_free(uid);
            g_free(gid);
            g_free(mode);
        }
        g_free(p);
    }
    g_ptr_array_unref(files);
    return found;
}

/*
 * recreate_acl for the libvirt transport: the same libacl model as the qmp
 * transport, on the files of the domain's disks (top images rw, backing
 * files r for the QEMU user). The model of each top image (owner, group,
 * mode, ACL, SELinux label) is recorded the first time in the domain's own
 * metadata (virDomainSetMetadata, namespace LV_META_URI), so it travels with
 * the domain when it migrates; later calls replace changes made outside
 * vmshift. The QEMU user is the domain's DAC label (<seclabel model='dac'>);
 * root needs no grant.
 */
gboolean
kvm_libvirt_recreate_acl(KvmBackend *b, const char *vm, VmshiftJob *job, GError **error)
{
    LvHost *h = NULL;
    virDomainPtr d = lv_locate(b, vm, &h, error);
    if (!d)
        return FALSE;
    /* the image files are changed with libacl on this machine: only a
     * libvirtd here (a URI without a host part) has them at their paths */
    GUri *u = g_uri_parse(h->uri, G_URI_FLAGS_NONE, NULL);
    gboolean here = u && (!g_uri_get_host(u) || !*g_uri_get_host(u) ||
                          !g_strcmp0(g_uri_get_host(u), "localhost"));
    if (u)
        g_uri_unref(u);
    if (!here) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_NOT_SUPPORTED,
                    "recreate_acl of VM %s: libvirt host %s (%s) is remote and its image files "
                    "are not reachable from here; run vmshift on that host, or let libvirt's "
                    "DAC/SELinux drivers label them (dynamic_ownership)", vm, h->name, h->uri);
        virDomainFree(d);
        return FALSE;
    }
    gboolean ok = FALSE;
    xmlDoc *doc = NULL, *mdoc = NULL;
    xmlXPathContext *ctx = NULL, *mctx = NULL;
    GPtrArray *changes = g_ptr_array_new_with_free_func(g_free);
    GString *meta = g_string_new("<acl>");
    guint files = 0;
    gboolean captured = FALSE;
    char *user = NULL;
    if (job)
        vmshift_job_set_phase(job, VMSHIFT_PHASE_ACL, NULL);
    if (!(doc = lv_xml(d, 0, error)))
        goto out;
    ctx = vmshift_xpath_new(doc, NULL);
    /* the user QEMU runs as: "+uid:+gid" or "user:group" */
    char *label = vmshift_xpath_string(ctx, NULL, "/domain/seclabel[@model='dac']/label");
    if (label) {
        char *colon = strchr(label, ':');
        if (colon)
            *colon = '\0';
        if (label[0] == '+') {
            struct passwd *pw = getpwuid((uid_t) g_ascii_strtoull(label + 1, NULL, 10));
            if (pw && pw->pw_uid != 0)
                user = g_strdup(pw->pw_name);
        } else if (strcmp(label, "root") != 0) {
            user = g_strdup(label);
        }
        g_free(label);
    }
    char *mx = virDomainGetMetadata(d, VIR_DOMAIN_METADATA_ELEMENT, LV_META_URI, 0);
    if (mx) {
        mdoc = vmshift_xml_parse(mx, strlen(mx), "vmshift ACL metadata", NULL);
        free(mx);
        if (mdoc)
            mctx = vmshift_xpath_new(mdoc, NULL);
    }
    GPtrArray *disks = vmshift_xpath_nodes(ctx, NULL,
                                           "/domain/devices/disk[@device='disk' and @type='file']");
    for (guint i = 0; i < disks->len && !ok; i++) {
        xmlNode *n = disks->pdata[i];
        char *path = vmshift_xpath_string(ctx, n, "source/@file");
        if (!path)
            continue;
        KvmDiskDef dk = { .acl_uid = -1, .acl_gid = -1 };
        gboolean good = TRUE;
        if (!lv_acl_model(mctx, path, &dk)) {
            /* first time: the file as it is now is the model */
            good = kvm_acl_capture(path, &dk, error);
            captured = TRUE;
        }
        if (good) {
            char *ep = vmshift_xml_escape(path);
            char *ea = vmshift_xml_escape(dk.acl_text);
            char *el = dk.acl_label ? vmshift_xml_escape(dk.acl_label) : NULL;
            g_string_append_printf(meta, "<file path='%s' uid='%" G_GINT64_FORMAT "' gid='%"
                                   G_GINT64_FORMAT "' mode='%04o' acl='%s'%s%s%s/>", ep,
                                   dk.acl_uid, dk.acl_gid, dk.acl_mode, ea,
                                   el ? " label='" : "", el ? el : "", el ? "'" : "");
            g_free(ep);
            g_free(ea);
            g_free(el);
            good = kvm_acl_apply_def(path, &dk, user, TRUE, changes, error);
            files++;
        }
        g_free(dk.acl_text);
        g_free(dk.acl_label);
        /* backing files: the QEMU user reads them */
        GPtrArray *chain = good ? vmshift_xpath_nodes(ctx, n, ".//backingStore/source/@file")
                                : NULL;
        for (guint k = 0; chain && k < chain->len && good; k++) {
            char *bp = vmshift_xml_text(chain->pdata[k]);
            KvmDiskDef bk = { .acl_uid = -1, .acl_gid = -1 };
            if (bp)
                good = kvm_acl_apply_def(bp, &bk, user, FALSE, changes, error);
            files++;
            g_free(bp);
        }
        if (chain)
            g_ptr_array_unref(chain);
        g_free(path);
        if (!good) {
            g_ptr_array_unref(disks);
            goto out;
        }
    }
    g_ptr_array_unref(disks);
    g_string_append(meta, "</acl>");
    if (captured) {
        unsigned int aff = VIR_DOMAIN_AFFECT_LIVE;
        if (virDomainIsPersistent(d) == 1)
            aff |= VIR_DOMAIN_AFFECT_CONFIG;
        int st = 0;
        virDomainGetState(d, &st, NULL, 0);
        if (st == VIR_DOMAIN_SHUTOFF)
            aff = VIR_DOMAIN_AFFECT_CONFIG;
        if (virDomainSetMetadata(d, VIR_DOMAIN_METADATA_ELEMENT, meta->str, "vmshift",
                                 LV_META_URI, aff) < 0) {
            lv_error(error, VMSHIFT_ERROR_FAILED, "VM %s: recording the access model in its "
                     "metadata", vm);
            goto out;
        }
    }
    if (job) {
        for (guint i = 0; i < changes->len; i++)
            vmshift_job_log(job, VMSHIFT_LOG_INFO, "acl: %s", (char *) changes->pdata[i]);
        char *sum = g_strdup_printf("%u file(s) checked, %u change(s)%s", files, changes->len,
                                    captured ? " (access model recorded in the domain's "
                                               "metadata)" : "");
        vmshift_job_set_result(job, "acl", sum);
        g_free(sum);
    }
    ok = TRUE;
out:
    g_free(user);
    g_string_free(meta, TRUE);
    g_ptr_array_unref(changes);
    if (mctx)
        xmlXPathFreeContext(mctx);
    if (mdoc)
        xmlFreeDoc(mdoc);
    if (ctx)
        xmlXPathFreeContext(ctx);
    if (doc)
        xmlFreeDoc(doc);
    virDomainFree(d);
    return ok;
}

/* ---- volumes on other hosts (cold and VM + storage migration) -------- */

/*
 * The hosts are separate libvirtds, possibly on other machines: the client
 * reaches their files only through libvirt's storage API, and that API
 * (virStorageVolCreateXML, virStorageVolDownload/Upload, virStorageVolDelete)
 * works on volumes of a storage pool only. So every directory a disk moves
 * from or to needs a pool on its host: an existing pool whose target is the
 * directory is refreshed (libvirt learns of files made outside it only on a
 * refresh); a directory nobody made a pool for gets a transient directory
 * pool, destroyed again when the migration ends (a destroyed transient pool
 * is forgotten; its directory and files stay). A directory that does not
 * exist yet is made by a pool defined for the job (virStoragePoolBuild;
 * building an existing directory would change its mode), so that a
 * rollback can remove it again (virStoragePoolDelete) before the pool is
 * undefined.
 */
typedef struct {
    LvHost *host;
    char *dir;
    virStoragePoolPtr pool;
    gboolean created;   /* made for the job: destroyed at the end */
    gboolean built;     /* defined and built for the job: also undefined */
} LvPool;

static void
lv_pool_release(LvPool *p, gboolean rmdir)
{
    if (!p->pool)
        return;
    if (p->created)
        virStoragePoolDestroy(p->pool);
    if (p->built) {
        /* only an empty directory goes */
        if (rmdir)
            virStoragePoolDelete(p->pool, 0);
        virStoragePoolUndefine(p->pool);
    }
    virStoragePoolFree(p->pool);
    p->pool = NULL;
}

static void
lv_pool_free(LvPool *p)
{
    lv_pool_release(p, FALSE);
    g_free(p->dir);
    g_free(p);
}

/* on a rollback: the directories made on @h for the job go again */
static void
lv_pools_unbuild(GPtrArray *pools, LvHost *h)
{
    for (guint i = 0; i < pools->len; i++) {
        LvPool *p = pools->pdata[i];
        if (p->host == h && p->built)
            lv_pool_release(p, TRUE);
    }
}

/* the pool of directory @dir on @h (borrowed from @pools, which frees it) */
static virStoragePoolPtr
lv_pool(GPtrArray *pools, LvHost *h, const char *dir, gboolean build, GError **error)
{
    for (guint i = 0; i < pools->len; i++) {
        LvPool *p = pools->pdata[i];
        if (p->host == h && !strcmp(p->dir, dir) && p->pool)
            return p->pool;
    }
    virStoragePoolPtr pool = virStoragePoolLookupByTargetPath(h->conn, dir);
    gboolean created = FALSE, built = FALSE;
    if (pool) {
        if ((virStoragePoolIsActive(pool) != 1 && virStoragePoolCreate(pool, 0) < 0) ||
            virStoragePoolRefresh(pool, 0) < 0) {
            lv_error(error, VMSHIFT_ERROR_FAILED, "host %s: refreshing the storage pool %s "
                     "of %s", h->name, virStoragePoolGetName(pool), dir);
            virStoragePoolFree(pool);
            return NULL;
        }
    } else {
        char *sum = g_compute_checksum_for_string(G_CHECKSUM_SHA256, dir, -1);
        char *ed = vmshift_xml_escape(dir);
        char *xml = g_strdup_printf("<pool type='dir'><name>vmshift-%.12s</name>"
                                    "<target><path>%s</path></target></pool>", sum, ed);
        pool = virStoragePoolCreateXML(h->conn, xml, 0);
        if (!pool && build) {
            pool = virStoragePoolDefineXML(h->conn, xml, 0);
            if (pool && (virStoragePoolBuild(pool, 0) < 0 || virStoragePoolCreate(pool, 0) < 0)) {
                lv_error(error, VMSHIFT_ERROR_FAILED, "host %s: making the directory %s",
                         h->name, dir);
                virStoragePoolUndefine(pool);
                virStoragePoolFree(pool);
                g_free(xml);
                g_free(ed);
                g_free(sum);
                return NULL;
            }
            built = pool != NULL;
        }
        g_free(xml);
        g_free(ed);
        g_free(sum);
        if (!pool) {
            lv_error(error, VMSHIFT_ERROR_FAILED, "host %s: making a storage pool for %s",
                     h->name, dir);
            return NULL;
        }
        created = TRUE;
    }
    LvPool *p = g_new0(LvPool, 1);
    p->host = h;
    p->dir = g_strdup(dir);
    p->pool = pool;
    p->created = created;
    p->built = built;
    g_ptr_array_add(pools, p);
    return pool;
}

/* the volume of file @path on @h, or NULL (with @error set only when the
 * pool could not be had) */
static virStorageVolPtr
lv_vol(GPtrArray *pools, LvHost *h, const char *path, gboolean build, GError **error)
{
    char *dir = g_path_get_dirname(path);
    virStoragePoolPtr pool = lv_pool(pools, h, dir, build, error);
    g_free(dir);
    if (!pool)
        return NULL;
    char *base = g_path_get_basename(path);
    virStorageVolPtr v = virStorageVolLookupByName(pool, base);
    g_free(base);
    return v;
}

/* removes file @path on @h through its pool; an absent file is fine */
static gboolean
lv_vol_delete(GPtrArray *pools, LvHost *h, const char *path, GError **error)
{
    GError *e = NULL;
    virStorageVolPtr v = lv_vol(pools, h, path, FALSE, &e);
    if (!v) {
        /* no pool: the directory is gone, and the file with it */
        gboolean gone = e == NULL || !g_error_matches(e, VMSHIFT_ERROR, VMSHIFT_ERROR_CONNECTION);
        if (!gone)
            g_propagate_error(error, e);
        else
            g_clear_error(&e);
        return gone;
    }
    gboolean ok = virStorageVolDelete(v, 0) == 0;
    if (!ok)
        lv_error(error, VMSHIFT_ERROR_FAILED, "host %s: removing %s", h->name, path);
    virStorageVolFree(v);
    return ok;
}

/* a disk that moves to another file (and maybe another host) */
typedef struct {
    char *dev, *src_path, *dst_path, *format;
    guint64 capacity, physical;
    gboolean created;   /* the destination file is ours: a rollback removes it */
} LvMove;

static void
lv_move_free(LvMove *m)
{
    g_free(m->dev);
    g_free(m->src_path);
    g_free(m->dst_path);
    g_free(m->format);
    g_free(m);
}

/*
 * The file disks of @doc that move: to DIR/basename for --disk-path/--path,
 * or (@same_path: a cold move to another host) to the same path there.
 */
static gboolean
lv_plan_moves(xmlDoc *doc, const VmshiftMigrationSpec *spec, gboolean same_path,
              GPtrArray *moves, GError **error)
{
    xmlXPathContext *ctx = vmshift_xpath_new(doc, NULL);
    GPtrArray *disks = vmshift_xpath_nodes(ctx, NULL,
                                           "/domain/devices/disk[@device='disk' and @type='file']");
    for (guint i = 0; i < disks->len; i++) {
        xmlNode *n = disks->pdata[i];
        char *dev = vmshift_xpath_string(ctx, n, "target/@dev");
        char *path = vmshift_xpath_string(ctx, n, "source/@file");
        const char *dir = dev ? lv_disk_dir(spec, dev) : NULL;
        if (!dev || !path || (!dir && !same_path)) {
            g_free(dev);
            g_free(path);
            continue;
        }
        LvMove *m = g_new0(LvMove, 1);
        m->dev = dev;
        m->src_path = path;
        if (dir) {
            char *base = g_path_get_basename(path);
            m->dst_path = g_build_filename(dir, base, NULL);
            g_free(base);
        } else {
            m->dst_path = g_strdup(path);
        }
        m->format = vmshift_xpath_string(ctx, n, "driver/@type");
        g_ptr_array_add(moves, m);
    }
    g_ptr_array_unref(disks);
    xmlXPathFreeContext(ctx);
    for (guint i = 0; i < spec->disk_paths->len; i++) {
        VmshiftMapping *mp = spec->disk_paths->pdata[i];
        gboolean known = FALSE;
        for (guint k = 0; k < moves->len; k++)
            known |= !strcmp(((LvMove *) moves->pdata[k])->dev, mp->key);
        if (!known) {
            g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_NOT_FOUND,
                        "VM %s has no file disk '%s' (--disk-path %s=%s)", spec->vm, mp->key,
                        mp->key, mp->value);
            return FALSE;
        }
    }
    return TRUE;
}

/* the disks of @doc name their new files; a moved image is a whole one */
static void
lv_rewrite_disks(xmlDoc *doc, GPtrArray *moves)
{
    xmlXPathContext *ctx = vmshift_xpath_new(doc, NULL);
    for (guint i = 0; i < moves->len; i++) {
        LvMove *m = moves->pdata[i];
        char *expr = g_strdup_printf("/domain/devices/disk[target/@dev='%s']", m->dev);
        xmlNode *disk = vmshift_xpath_node(ctx, NULL, expr);
        g_free(expr);
        xmlNode *src = disk ? vmshift_xml_child(disk, NULL, "source") : NULL;
        if (!src)
            continue;
        xmlSetProp(src, BAD_CAST "file", BAD_CAST m->dst_path);
        xmlNode *bs;
        while ((bs = vmshift_xml_child(disk, NULL, "backingStore"))) {
            xmlUnlinkNode(bs);
            xmlFreeNode(bs);
        }
    }
    xmlXPathFreeContext(ctx);
}

static char *
lv_paths(GPtrArray *moves, gboolean dst)
{
    GString *s = g_string_new(NULL);
    for (guint i = 0; i < moves->len; i++) {
        LvMove *m = moves->pdata[i];
        g_string_append_printf(s, "%s%s", s->len ? ";" : "", dst ? m->dst_path : m->src_path);
    }
    return g_string_free(s, FALSE);
}

/* removes the files of the saved list @key (paths joined by ';') on @h */
static void
lv_delete_saved(VmshiftJob *job, GPtrArray *pools, LvHost *h, const char *key)
{
    char *list = vmshift_job_get_saved(job, key);
    char **v = g_strsplit(list ? list : "", ";", -1);
    for (char **p = v; *p; p++) {
        GError *e = NULL;
        if (!**p)
            continue;
        if (lv_vol_delete(pools, h, *p, &e)) {
            vmshift_job_log(job, VMSHIFT_LOG_INFO, "removed %s:%s (if it was there)", h->name,
                            *p);
        } else {
            vmshift_job_log(job, VMSHIFT_LOG_WARNING, "%s", e->message);
            g_clear_error(&e);
        }
    }
    g_strfreev(v);
    g_free(list);
    /* the pools the interrupted job made for itself go with @pools (and
     * with lv_pools_unbuild() the directories it made) */
    for (guint i = 0; i < pools->len; i++) {
        LvPool *pl = pools->pdata[i];
        if (pl->host == h && pl->pool &&
            g_str_has_prefix(virStoragePoolGetName(pl->pool), "vmshift-")) {
            pl->created = TRUE;
            pl->built = virStoragePoolIsPersistent(pl->pool) == 1;
        }
    }
}

/* the pools an interrupted job made on @h for the directories of the saved
 * list @key (its files stay) */
static void
lv_drop_job_pools(VmshiftJob *job, LvHost *h, const char *key)
{
    char *list = vmshift_job_get_saved(job, key);
    char **v = g_strsplit(list ? list : "", ";", -1);
    for (char **p = v; *p; p++) {
        if (!**p)
            continue;
        char *dir = g_path_get_dirname(*p);
        virStoragePoolPtr pool = virStoragePoolLookupByTargetPath(h->conn, dir);
        g_free(dir);
        if (!pool)
            continue;
        if (g_str_has_prefix(virStoragePoolGetName(pool), "vmshift-")) {
            if (virStoragePoolIsActive(pool) == 1)
                virStoragePoolDestroy(pool);
            if (virStoragePoolIsPersistent(pool) == 1)
                virStoragePoolUndefine(pool);
        }
        virStoragePoolFree(pool);
    }
    g_strfreev(v);
    g_free(list);
}

/*
 * Streams volume @from (one host) into volume @to (another): libvirt's
 * sparse download on the one connection feeds its sparse upload on the
 * other, chunk by chunk, holes as holes (as virsh vol-download and
 * vol-upload --sparse do, but from stream to stream). @done counts bytes
 * (holes included) for the progress of @total.
 */
#define LV_CHUNK (256 * 1024)

static gboolean
lv_vol_stream(virStorageVolPtr from, LvHost *fh, virStorageVolPtr to, LvHost *th,
              const char *what, VmshiftJob *job, guint64 *done, guint64 total, GError **error)
{
    GCancellable *cancel = vmshift_job_get_cancellable(job);
    virStreamPtr in = virStreamNew(fh->conn, 0);
    virStreamPtr out = virStreamNew(th->conn, 0);
    gboolean in_open = FALSE, out_open = FALSE, ok = FALSE;
    char *buf = g_malloc(LV_CHUNK);
    if (!in || !out) {
        lv_error(error, VMSHIFT_ERROR_FAILED, "%s: making the streams", what);
        goto out;
    }
    if (virStorageVolDownload(from, in, 0, 0, VIR_STORAGE_VOL_DOWNLOAD_SPARSE_STREAM) < 0) {
        lv_error(error, VMSHIFT_ERROR_FAILED, "%s: download from host %s", what, fh->name);
        goto out;
    }
    in_open = TRUE;
    if (virStorageVolUpload(to, out, 0, 0, VIR_STORAGE_VOL_UPLOAD_SPARSE_STREAM) < 0) {
        lv_error(error, VMSHIFT_ERROR_FAILED, "%s: upload to host %s", what, th->name);
        goto out;
    }
    out_open = TRUE;
    gint64 shown = 0;
    for (;;) {
        if (g_cancellable_is_cancelled(cancel)) {
            g_set_error(error, G_IO_ERROR, G_IO_ERROR_CANCELLED, "%s: cancelled", what);
            goto out;
        }
        int n = virStreamRecvFlags(in, buf, LV_CHUNK, VIR_STREAM_RECV_STOP_AT_HOLE);
        if (n == -3) {
            long long hole = 0;
            if (virStreamRecvHole(in, &hole, 0) < 0) {
                lv_error(error, VMSHIFT_ERROR_FAILED, "%s: download from host %s", what,
                         fh->name);
                goto out;
            }
            if (virStreamSendHole(out, hole, 0) < 0) {
                lv_error(error, VMSHIFT_ERROR_FAILED, "%s: upload to host %s", what, th->name);
                goto out;
            }
            *done += (guint64) hole;
            continue;
        }
        if (n < 0) {
            lv_error(error, VMSHIFT_ERROR_FAILED, "%s: download from host %s", what, fh->name);
            goto out;
        }
        if (n == 0)
            break;
        for (int off = 0; off < n;) {
            int w = virStreamSend(out, buf + off, (size_t) (n - off));
            if (w < 0) {
                lv_error(error, VMSHIFT_ERROR_FAILED, "%s: upload to host %s", what,
                         th->name);
                goto out;
            }
            off += w;
        }
        *done += (guint64) n;
        if (g_get_monotonic_time() - shown > 200000) {
            shown = g_get_monotonic_time();
            vmshift_job_set_bytes(job, MIN(*done, total), total);
            if (total)
                vmshift_job_set_progress(job, 100.0 * (double) MIN(*done, total) /
                                                  (double) total);
        }
    }
    in_open = FALSE;
    if (virStreamFinish(in) < 0) {
        lv_error(error, VMSHIFT_ERROR_FAILED, "%s: download from host %s", what, fh->name);
        goto out;
    }
    /* the destination reports a failed write (full, read-only) at the latest here */
    out_open = FALSE;
    if (virStreamFinish(out) < 0) {
        lv_error(error, VMSHIFT_ERROR_FAILED, "%s: upload to host %s", what, th->name);
        goto out;
    }
    ok = TRUE;
out:
    if (in_open)
        virStreamAbort(in);
    if (out_open)
        virStreamAbort(out);
    if (in)
        virStreamFree(in);
    if (out)
        virStreamFree(out);
    g_free(buf);
    return ok;
}

/* the <permissions> of a volume's XML, to give its copy the same */
static char *
lv_vol_permissions(virStorageVolPtr v)
{
    char *x = virStorageVolGetXMLDesc(v, 0);
    if (!x)
        return g_strdup("");
    GString *s = g_string_new(NULL);
    xmlDoc *doc = vmshift_xml_parse(x, strlen(x), "libvirt volume XML", NULL);
    free(x);
    if (doc) {
        xmlXPathContext *ctx = vmshift_xpath_new(doc, NULL);
        static const char *const keys[] = { "mode", "owner", "group" };
        for (guint i = 0; i < G_N_ELEMENTS(keys); i++) {
            char *expr = g_strdup_printf("/volume/target/permissions/%s", keys[i]);
            char *val = vmshift_xpath_string(ctx, NULL, expr);
            g_free(expr);
            if (val && *val && strspn(val, "0123456789") == strlen(val))
                g_string_append_printf(s, "<%s>%s</%s>", keys[i], val, keys[i]);
            g_free(val);
        }
        xmlXPathFreeContext(ctx);
        xmlFreeDoc(doc);
    }
    if (s->len) {
        g_string_prepend(s, "<permissions>");
        g_string_append(s, "</permissions>");
    }
    return g_string_free(s, FALSE);
}

/* the backing file a volume's image names, or NULL */
static char *
lv_vol_backing(virStorageVolPtr v)
{
    char *x = virStorageVolGetXMLDesc(v, 0);
    if (!x)
        return NULL;
    char *r = NULL;
    xmlDoc *doc = vmshift_xml_parse(x, strlen(x), "libvirt volume XML", NULL);
    free(x);
    if (doc) {
        xmlXPathContext *ctx = vmshift_xpath_new(doc, NULL);
        r = vmshift_xpath_string(ctx, NULL, "/volume/backingStore/path");
        xmlXPathFreeContext(ctx);
        xmlFreeDoc(doc);
    }
    if (r && !*r)
        g_clear_pointer(&r, g_free);
    return r;
}

/* ---- cold migration to another host ------------------------------------ */

static gboolean
lv_cold_cancelled(VmshiftJob *job, const char *vm, GError **error)
{
    if (!g_cancellable_is_cancelled(vmshift_job_get_cancellable(job)))
        return FALSE;
    g_set_error(error, G_IO_ERROR, G_IO_ERROR_CANCELLED, "cold migration of VM %s cancelled",
                vm);
    return TRUE;
}

#define LV_UNDEFINE_FLAGS (VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA | \
                           VIR_DOMAIN_UNDEFINE_CHECKPOINTS_METADATA | \
                           VIR_DOMAIN_UNDEFINE_KEEP_NVRAM)

/*
 * Cold migration of a shut-off domain between two libvirt hosts:
 *   prepare   check the destination (no domain of that name, no file at a
 *             new path), pools on both sides; journal the files to make
 *   transfer  per disk: a raw volume of the image's file size on the
 *             destination, then the image's bytes streamed into it
 *             (lv_vol_stream): the copy is the same file, format and all
 *   switchover define the domain on the destination (networks mapped, new
 *             disk paths), then undefine it on the source: the point of no
 *             return, journaled as stage=moved
 *   cleanup   remove the source images; --start starts it on the destination
 * Up to the switchover a failure or cancel removes the destination's
 * volumes (and definition) again and leaves the domain on the source.
 * --transfer san without --path moves the definition only (both hosts reach
 * the files). Images with a backing file are refused: the stream copies one
 * file, and its backing reference could not follow it.
 */
static gboolean
lv_cold_migrate(KvmBackend *b, const VmshiftMigrationSpec *spec, VmshiftJob *job,
                virDomainPtr d, LvHost *src, GError **error)
{
    GPtrArray *moves = g_ptr_array_new_with_free_func((GDestroyNotify) lv_move_free);
    GPtrArray *pools = g_ptr_array_new_with_free_func((GDestroyNotify) lv_pool_free);
    const char *name = virDomainGetName(d);
    LvHost *dst = NULL;
    xmlDoc *doc = NULL;
    char *xml = NULL;
    virDomainPtr dd = NULL;
    gboolean ok = FALSE, moved = FALSE;
    int state = 0;
    vmshift_job_set_location(job, src->name, "shut off");
    if (!spec->dest_host) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_INVALID_ARGUMENT,
                    "cold migration of VM %s: no destination host", spec->vm);
        goto out;
    }
    if (!(dst = lv_find_host(b, spec->dest_host, error)))
        goto out;
    if (dst == src) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_INVALID_ARGUMENT,
                    "VM %s already is on host %s", spec->vm, src->name);
        goto out;
    }
    if (virDomainGetState(d, &state, NULL, 0) < 0) {
        lv_error(error, VMSHIFT_ERROR_FAILED, "VM %s: reading its state on host %s", name,
                 src->name);
        goto out;
    }
    if (state != VIR_DOMAIN_SHUTOFF) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_CONFLICT,
                    "VM %s is not shut off on host %s: cold migration needs it stopped "
                    "(or use --live)", name, src->name);
        goto out;
    }
    if (virDomainHasManagedSaveImage(d, 0) == 1) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_CONFLICT,
                    "VM %s has a saved state on host %s (managed save): start it or remove "
                    "the state before a cold migration", name, src->name);
        goto out;
    }
    virDomainPtr other = virDomainLookupByName(dst->conn, name);
    if (!other) {
        unsigned char uuid[VIR_UUID_BUFLEN];
        if (virDomainGetUUID(d, uuid) == 0)
            other = virDomainLookupByUUID(dst->conn, uuid);
    }
    if (other) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_CONFLICT,
                    "host %s already has a VM called %s (or with its UUID)", dst->name,
                    virDomainGetName(other));
        virDomainFree(other);
        goto out;
    }
    if (!(doc = lv_xml(d, VIR_DOMAIN_XML_INACTIVE | VIR_DOMAIN_XML_SECURE |
                              VIR_DOMAIN_XML_MIGRATABLE, error)))
        goto out;
    gboolean shared = spec->transfer == VMSHIFT_TRANSFER_SAN &&
                      !vmshift_migration_spec_moves_storage(spec);
    if (!lv_plan_moves(doc, spec, !shared, moves, error) || !lv_map_networks(doc, spec, error))
        goto out;
    lv_rewrite_disks(doc, moves);
    xml = lv_xml_dump(doc);
    if (!vmshift_job_save(job, "vm", name, error) ||
        !vmshift_job_save(job, "src-host", src->name, error) ||
        !vmshift_job_save(job, "dst-host", dst->name, error) ||
        !vmshift_job_save(job, "transport", "libvirt", error) ||
        !vmshift_job_save(job, "kind", "cold", error) ||
        !vmshift_job_set_phase(job, VMSHIFT_PHASE_PREPARE, error) ||
        !vmshift_job_save(job, "stage", "prepare", error))
        goto out;
    for (guint i = 0; i < spec->networks->len; i++) {
        VmshiftMapping *mp = spec->networks->pdata[i];
        vmshift_job_log(job, VMSHIFT_LOG_INFO, "NIC %s -> network %s on %s", mp->key,
                        mp->value, dst->name);
    }
    guint64 total = 0;
    for (guint i = 0; i < moves->len; i++) {
        LvMove *m = moves->pdata[i];
        GError *e = NULL;
        virStorageVolPtr sv = lv_vol(pools, src, m->src_path, FALSE, &e);
        if (!sv) {
            if (!e)
                g_set_error(&e, VMSHIFT_ERROR, VMSHIFT_ERROR_NOT_FOUND,
                            "VM %s: disk %s (%s) is not on host %s", name, m->dev,
                            m->src_path, src->name);
            g_propagate_error(error, e);
            goto out;
        }
        char *backing = lv_vol_backing(sv);
        virStorageVolInfo info;
        int irc = virStorageVolGetInfoFlags(sv, &info, VIR_STORAGE_VOL_GET_PHYSICAL);
        virStorageVolFree(sv);
        if (backing) {
            g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_NOT_SUPPORTED,
                        "VM %s: disk %s (%s) has the backing file %s: the libvirt transport "
                        "moves whole images only (merge the chain first, e.g. virsh "
                        "blockpull while it runs)", name, m->dev, m->src_path, backing);
            g_free(backing);
            goto out;
        }
        if (irc < 0) {
            lv_error(error, VMSHIFT_ERROR_FAILED, "host %s: reading the size of %s", src->name,
                     m->src_path);
            goto out;
        }
        m->physical = info.allocation;
        m->capacity = info.capacity;
        total += m->physical;
        virStorageVolPtr dv = lv_vol(pools, dst, m->dst_path, TRUE, &e);
        if (dv) {
            virStorageVolFree(dv);
            g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_CONFLICT,
                        "%s already exists on host %s: not overwritten (if both hosts share "
                        "that storage, --transfer san moves the definition only)",
                        m->dst_path, dst->name);
            goto out;
        }
        if (e) {
            g_propagate_error(error, e);
            goto out;
        }
    }
    char *np = lv_paths(moves, TRUE), *op = lv_paths(moves, FALSE);
    gboolean saved = vmshift_job_save(job, "new-vols", np, error) &&
                     vmshift_job_save(job, "old-vols", op, error);
    g_free(np);
    g_free(op);
    if (!saved || !vmshift_job_set_phase(job, VMSHIFT_PHASE_TRANSFER, error) ||
        !vmshift_job_save(job, "stage", "copy", error))
        goto out;
    vmshift_job_set_location(job, src->name, "shut off, its disks being copied");
    guint64 done = 0;
    for (guint i = 0; i < moves->len; i++) {
        LvMove *m = moves->pdata[i];
        if (lv_cold_cancelled(job, name, error))
            goto out;
        char *dir = g_path_get_dirname(m->dst_path);
        virStoragePoolPtr dp = lv_pool(pools, dst, dir, TRUE, error);
        g_free(dir);
        if (!dp)
            goto out;
        GError *e = NULL;
        virStorageVolPtr sv = lv_vol(pools, src, m->src_path, FALSE, &e);
        if (!sv) {
            if (!e)
                g_set_error(&e, VMSHIFT_ERROR, VMSHIFT_ERROR_NOT_FOUND,
                            "VM %s: disk %s (%s) is gone from host %s", name, m->dev,
                            m->src_path, src->name);
            g_propagate_error(error, e);
            goto out;
        }
        /* raw: the volume is a plain file of the image's size that the
         * upload fills with the image's bytes, format header included */
        char *base = g_path_get_basename(m->dst_path);
        char *eb = vmshift_xml_escape(base);
        char *perm = lv_vol_permissions(sv);
        char *vx = g_strdup_printf("<volume><name>%s</name><capacity unit='bytes'>%"
                                   G_GUINT64_FORMAT "</capacity><allocation>0</allocation><target>"
                                   "<format type='raw'/>%s</target></volume>", eb,
                                   m->physical, perm);
        virStorageVolPtr dv = virStorageVolCreateXML(dp, vx, 0);
        g_free(vx);
        g_free(perm);
        g_free(eb);
        g_free(base);
        if (!dv) {
            lv_error(error, VMSHIFT_ERROR_FAILED, "host %s: creating %s", dst->name,
                     m->dst_path);
            virStorageVolFree(sv);
            goto out;
        }
        m->created = TRUE;
        vmshift_job_log(job, VMSHIFT_LOG_INFO, "copying disk %s: %s:%s -> %s:%s", m->dev,
                        src->name, m->src_path, dst->name, m->dst_path);
        char *what = g_strdup_printf("VM %s: copying disk %s to %s:%s", name, m->dev,
                                     dst->name, m->dst_path);
        gboolean copied = lv_vol_stream(sv, src, dv, dst, what, job, &done, total, error);
        g_free(what);
        virStorageVolFree(sv);
        virStorageVolFree(dv);
        if (!copied)
            goto out;
    }
    vmshift_job_set_bytes(job, done, done);
    vmshift_job_set_progress(job, 100.0);
    if (!vmshift_job_set_phase(job, VMSHIFT_PHASE_SWITCHOVER, error) ||
        lv_cold_cancelled(job, name, error) ||
        !vmshift_job_save(job, "stage", "define", error))
        goto out;
    dd = virDomainDefineXML(dst->conn, xml);
    if (!dd) {
        lv_error(error, VMSHIFT_ERROR_FAILED, "VM %s: defining it on host %s", name, dst->name);
        goto out;
    }
    if (virDomainUndefineFlags(d, LV_UNDEFINE_FLAGS) < 0) {
        lv_error(error, VMSHIFT_ERROR_FAILED, "VM %s: undefining it on host %s after it was "
                 "defined on %s", name, src->name, dst->name);
        goto out;
    }
    /* the point of no return: the destination has the only definition */
    moved = TRUE;
    vmshift_job_save(job, "stage", "moved", NULL);
    vmshift_job_set_location(job, dst->name, "shut off");
    vmshift_job_set_phase(job, VMSHIFT_PHASE_CLEANUP, NULL);
    GString *res = g_string_new(NULL);
    for (guint i = 0; i < moves->len; i++) {
        LvMove *m = moves->pdata[i];
        GError *e = NULL;
        if (lv_vol_delete(pools, src, m->src_path, &e)) {
            vmshift_job_log(job, VMSHIFT_LOG_INFO, "removed %s:%s", src->name, m->src_path);
        } else {
            vmshift_job_log(job, VMSHIFT_LOG_WARNING, "%s", e->message);
            g_clear_error(&e);
        }
        g_string_append_printf(res, "%s%s=%s:%s", res->len ? "," : "", m->dev, dst->name,
                               m->dst_path);
    }
    if (res->len)
        vmshift_job_set_result(job, "disks", res->str);
    g_string_free(res, TRUE);
    if (spec->start) {
        vmshift_job_save(job, "stage", "start", NULL);
        if (virDomainCreate(dd) < 0) {
            lv_error(error, VMSHIFT_ERROR_FAILED, "VM %s moved to host %s but did not start",
                     name, dst->name);
            goto out;
        }
        vmshift_job_set_location(job, dst->name, "running");
    }
    vmshift_job_save(job, "stage", "done", NULL);
    ok = TRUE;
out:
    if (!ok && !moved) {
        /* before the switch: the source keeps the VM, the destination keeps nothing */
        if (dd && virDomainUndefineFlags(dd, LV_UNDEFINE_FLAGS) < 0)
            vmshift_job_log(job, VMSHIFT_LOG_WARNING, "VM %s: undefining it on host %s: %s",
                            name, dst->name, virGetLastErrorMessage());
        for (guint i = 0; i < moves->len; i++) {
            LvMove *m = moves->pdata[i];
            GError *e = NULL;
            if (!m->created)
                continue;
            if (lv_vol_delete(pools, dst, m->dst_path, &e)) {
                vmshift_job_log(job, VMSHIFT_LOG_INFO, "removed %s:%s", dst->name,
                                m->dst_path);
            } else {
                vmshift_job_log(job, VMSHIFT_LOG_WARNING, "%s", e->message);
                g_clear_error(&e);
            }
        }
        if (dst) {
            lv_pools_unbuild(pools, dst);
            vmshift_job_save(job, "stage", "rolled-back", NULL);
        }
        vmshift_job_set_location(job, src->name, "shut off");
    }
    if (dd)
        virDomainFree(dd);
    g_free(xml);
    if (doc)
        xmlFreeDoc(doc);
    g_ptr_array_unref(pools);
    g_ptr_array_unref(moves);
    return ok;
}

/* ---- VM + storage: the disks of a live migration ----------------------- */

/* the disks that move with the VM (--path/--disk-path), their sizes, and
 * a check that the destination has no file at their new paths */
static gboolean
lv_plan_live_moves(virDomainPtr d, const VmshiftMigrationSpec *spec, LvHost *src, LvHost *dst,
                   GPtrArray *moves, GPtrArray *pools, GError **error)
{
    xmlDoc *doc = lv_xml(d, 0, error);
    if (!doc)
        return FALSE;
    gboolean ok = lv_plan_moves(doc, spec, FALSE, moves, error);
    xmlFreeDoc(doc);
    if (!ok)
        return FALSE;
    if (moves->len == 0) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_INVALID_ARGUMENT,
                    "VM %s on host %s has no file disk to move", spec->vm, src->name);
        return FALSE;
    }
    for (guint i = 0; i < moves->len; i++) {
        LvMove *m = moves->pdata[i];
        virDomainBlockInfo bi;
        if (virDomainGetBlockInfo(d, m->dev, &bi, 0) < 0) {
            lv_error(error, VMSHIFT_ERROR_FAILED, "VM %s: reading the size of disk %s",
                     spec->vm, m->dev);
            return FALSE;
        }
        m->capacity = bi.capacity;
        GError *e = NULL;
        virStorageVolPtr dv = lv_vol(pools, dst, m->dst_path, TRUE, &e);
        if (dv) {
            virStorageVolFree(dv);
            g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_CONFLICT,
                        "%s already exists on host %s: not overwritten", m->dst_path,
                        dst->name);
            return FALSE;
        }
        if (e) {
            g_propagate_error(error, e);
            return FALSE;
        }
    }
    return TRUE;
}

/*
 * The destination's images for an NBD storage migration, made in their
 * directory's pool before the migration starts. libvirt would precreate a
 * missing image itself, but only in a pool of the destination whose target
 * is the image's directory, and it leaves the image behind when the
 * migration fails; made here, each is journaled first (new-vols) and
 * removed on failure, cancel or repair.
 */
static gboolean
lv_precreate(VmshiftJob *job, GPtrArray *moves, GPtrArray *pools, LvHost *dst, GError **error)
{
    char *np = lv_paths(moves, TRUE), *op = lv_paths(moves, FALSE);
    gboolean saved = vmshift_job_save(job, "kind", "live-storage", error) &&
                     vmshift_job_save(job, "new-vols", np, error) &&
                     vmshift_job_save(job, "old-vols", op, error) &&
                     vmshift_job_save(job, "stage", "precreate", error);
    g_free(np);
    g_free(op);
    if (!saved)
        return FALSE;
    for (guint i = 0; i < moves->len; i++) {
        LvMove *m = moves->pdata[i];
        char *dir = g_path_get_dirname(m->dst_path);
        virStoragePoolPtr dp = lv_pool(pools, dst, dir, TRUE, error);
        g_free(dir);
        if (!dp)
            return FALSE;
        const char *fmt = m->format && !strcmp(m->format, "qcow2") ? "qcow2" : "raw";
        char *base = g_path_get_basename(m->dst_path);
        char *eb = vmshift_xml_escape(base);
        char *vx = g_strdup_printf("<volume><name>%s</name><capacity unit='bytes'>%"
                                   G_GUINT64_FORMAT "</capacity><allocation>0</allocation>"
                                   "<target><format type='%s'/></target></volume>", eb,
                                   m->capacity, fmt);
        virStorageVolPtr dv = virStorageVolCreateXML(dp, vx, 0);
        g_free(vx);
        g_free(eb);
        g_free(base);
        if (!dv) {
            lv_error(error, VMSHIFT_ERROR_FAILED, "host %s: creating %s for disk %s",
                     dst->name, m->dst_path, m->dev);
            return FALSE;
        }
        virStorageVolFree(dv);
        m->created = TRUE;
        vmshift_job_log(job, VMSHIFT_LOG_INFO, "disk %s: %s -> %s:%s (%s, %" G_GUINT64_FORMAT
                        " bytes)", m->dev, m->src_path, dst->name, m->dst_path, fmt,
                        m->capacity);
    }
    return TRUE;
}

/* ---- live migration ---------------------------------------------------- */

typedef struct {
    virDomainPtr dom;
    char *desturi;
    virTypedParameterPtr params;
    int nparams;
    unsigned int flags;
    int rc;
    char *errmsg;
    int errcode;
    gboolean done;
    GMutex lock;
} MigThread;

static gpointer
mig_thread(gpointer data)
{
    MigThread *t = data;
    int rc = virDomainMigrateToURI3(t->dom, t->desturi, t->params, (unsigned) t->nparams,
                                    t->flags);
    g_mutex_lock(&t->lock);
    t->rc = rc;
    if (rc < 0) {
        virErrorPtr e = virGetLastError();
        t->errmsg = g_strdup(e && e->message ? e->message : "unknown libvirt error");
        t->errcode = e ? e->code : 0;
    }
    t->done = TRUE;
    g_mutex_unlock(&t->lock);
    return NULL;
}

static gint64
lv_dirty_rate(virDomainPtr d)
{
    /* libvirt's own dirty-rate API (virDomainStartDirtyRateCalc, 7.2+) */
    if (virDomainStartDirtyRateCalc(d, 1, 0) < 0)
        return -1;
    for (int i = 0; i < 40; i++) {
        g_usleep(i == 0 ? 1050000 : 100000);
        virDomainStatsRecordPtr *recs = NULL;
        virDomainPtr doms[] = { d, NULL };
        if (virDomainListGetStats(doms, VIR_DOMAIN_STATS_DIRTYRATE, &recs, 0) < 0)
            return -1;
        gint64 rate = -1;
        int status = -1;
        for (int k = 0; recs && recs[0] && k < recs[0]->nparams; k++) {
            virTypedParameterPtr p = &recs[0]->params[k];
            if (!strcmp(p->field, "dirtyrate.calc_status"))
                status = p->value.i;
            else if (!strcmp(p->field, "dirtyrate.megabytes_per_second"))
                rate = p->value.l;
        }
        virDomainStatsRecordListFree(recs);
        if (status == VIR_DOMAIN_DIRTYRATE_MEASURED)
            return rate;
    }
    return -1;
}

gboolean
kvm_libvirt_migrate(KvmBackend *b, const VmshiftMigrationSpec *spec, VmshiftJob *job,
                    GError **error)
{
    LvHost *src = NULL, *dst = NULL;
    GCancellable *cancel = vmshift_job_get_cancellable(job);
    if (!vmshift_job_set_phase(job, VMSHIFT_PHASE_VALIDATE, error))
        return FALSE;
    if (spec->type == VMSHIFT_MIGRATION_STORAGE) {
        virDomainPtr sd = lv_locate(b, spec->vm, &src, error);
        if (!sd)
            return FALSE;
        gboolean r = lv_storage_migrate(b, spec, job, sd, src, error);
        virDomainFree(sd);
        return r;
    }
    if (spec->type == VMSHIFT_MIGRATION_COLD) {
        virDomainPtr cd = lv_locate(b, spec->vm, &src, error);
        if (!cd)
            return FALSE;
        gboolean r = lv_cold_migrate(b, spec, job, cd, src, error);
        virDomainFree(cd);
        return r;
    }
    if (spec->type != VMSHIFT_MIGRATION_LIVE) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_NOT_SUPPORTED,
                    "the libvirt transport of the kvm plugin does not know migration type %u",
                    spec->type);
        return FALSE;
    }
    virDomainPtr d = lv_locate(b, spec->vm, &src, error);
    if (!d)
        return FALSE;
    char *dest_xml = NULL, *persist_xml = NULL;
    gboolean ok = FALSE, migrated = FALSE, switched = FALSE;
    /* VM + storage: the disks that move, and the pools of their directories */
    gboolean storage = vmshift_migration_spec_moves_storage(spec);
    GPtrArray *moves = g_ptr_array_new_with_free_func((GDestroyNotify) lv_move_free);
    GPtrArray *pools = g_ptr_array_new_with_free_func((GDestroyNotify) lv_pool_free);
    MigThread t = { 0 };
    virTypedParameterPtr params = NULL;
    int nparams = 0, maxparams = 0;
    g_mutex_init(&t.lock);
    vmshift_job_set_location(job, src->name, "running");
    if (!spec->dest_host) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_INVALID_ARGUMENT,
                    "live migration of VM %s: no destination host", spec->vm);
        goto out;
    }
    if (!(dst = lv_find_host(b, spec->dest_host, error)))
        goto out;
    if (dst == src) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_INVALID_ARGUMENT,
                    "VM %s already is on host %s", spec->vm, src->name);
        goto out;
    }
    if (!vmshift_job_save(job, "vm", virDomainGetName(d), error) ||
        !vmshift_job_save(job, "src-host", src->name, error) ||
        !vmshift_job_save(job, "dst-host", dst->name, error) ||
        !vmshift_job_save(job, "transport", "libvirt", error))
        goto out;

    /* tuning, the same rule as the qmp transport */
    guint64 bw_bytes = 0;
    int force_pc = -1, tcg_safe = -1;
    if (spec->options) {
        GVariantIter it;
        const char *key;
        GVariant *val;
        g_variant_iter_init(&it, spec->options);
        while (g_variant_iter_next(&it, "{&sv}", &key, &val)) {
            if (!strcmp(key, "max-bandwidth") && g_variant_is_of_type(val, G_VARIANT_TYPE_UINT64))
                bw_bytes = g_variant_get_uint64(val);
            else if (!strcmp(key, "postcopy") && g_variant_is_of_type(val, G_VARIANT_TYPE_BOOLEAN))
                force_pc = g_variant_get_boolean(val);
            else if (!strcmp(key, "tcg-safe") && g_variant_is_of_type(val, G_VARIANT_TYPE_BOOLEAN))
                tcg_safe = g_variant_get_boolean(val);
            else if (strcmp(key, "measure-dirty-rate")) {
                g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_INVALID_ARGUMENT,
                            "kvm (libvirt): unknown or ill-typed migration option '%s'", key);
                g_variant_unref(val);
                goto out;
            }
            g_variant_unref(val);
        }
    }
    if (storage && !lv_plan_live_moves(d, spec, src, dst, moves, pools, error))
        goto out;
    guint64 link = bw_bytes ? MIN(b->link_mib_s, bw_bytes >> 20) : b->link_mib_s;
    /* a domain of type 'qemu' runs under TCG: on QEMU before 9.0 a live
     * migration can lose its writes (kvm_tuning_tcg_loses_writes), so
     * libvirt pauses it for the transfer (no VIR_MIGRATE_LIVE; libvirt
     * resumes it on the destination). libvirt refuses post-copy without
     * LIVE, so the downtime is the whole transfer here, unlike the qmp
     * transport's paused post-copy. */
    gboolean tcg = FALSE;
    xmlDoc *tdoc = lv_xml(d, 0, NULL);
    if (tdoc) {
        xmlXPathContext *tctx = vmshift_xpath_new(tdoc, NULL);
        char *type = vmshift_xpath_string(tctx, NULL, "/domain/@type");
        tcg = !g_strcmp0(type, "qemu");
        g_free(type);
        xmlXPathFreeContext(tctx);
        xmlFreeDoc(tdoc);
    }
    unsigned long qv = 0;
    virConnectGetVersion(src->conn, &qv);
    int major = (int) (qv / 1000000);
    gboolean paused = FALSE;
    if (kvm_tuning_tcg_loses_writes(tcg, major)) {
        if (tcg_safe != 0 && force_pc == 1) {
            g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_INVALID_ARGUMENT,
                        "post-copy was requested, but VM %s runs under TCG on QEMU %d, whose "
                        "live migration can lose guest writes: libvirt must pause it for the "
                        "transfer, and libvirt has no post-copy then (tcg-safe=false to force)",
                        spec->vm, major);
            goto out;
        }
        if (tcg_safe != 0)
            paused = TRUE;
        else
            kvm_tuning_warn_tcg_live(job, major);
    }
    gint64 dirty = force_pc < 0 && !paused ? lv_dirty_rate(d) : -1;
    gboolean postcopy = !paused && (force_pc == 1 ||
                                    (force_pc < 0 && kvm_tuning_prefers_postcopy(dirty, link,
                                                                                 300)));
    unsigned int flags = VIR_MIGRATE_PEER2PEER | VIR_MIGRATE_PERSIST_DEST |
                         VIR_MIGRATE_UNDEFINE_SOURCE | (paused ? 0 : VIR_MIGRATE_LIVE);
    /* --force: the person accepted libvirt's "unsafe migration" warning
     * (disks on storage libvirt does not know to be shared, cache mode not
     * none) */
    if (spec->force)
        flags |= VIR_MIGRATE_UNSAFE;
    if (postcopy) {
        flags |= VIR_MIGRATE_POSTCOPY;
    } else {
        flags |= VIR_MIGRATE_PARALLEL;
        virTypedParamsAddInt(&params, &nparams, &maxparams,
                             VIR_MIGRATE_PARAM_PARALLEL_CONNECTIONS, 4);
    }
    if (bw_bytes)
        virTypedParamsAddULLong(&params, &nparams, &maxparams, VIR_MIGRATE_PARAM_BANDWIDTH,
                                MAX(bw_bytes >> 20, 1));
    /* VM + storage: libvirt mirrors the moving disks over NBD into the
     * volumes made on the destination beforehand (full copies: the chain
     * is flattened), before and alongside the memory */
    if (moves->len) {
        const char **devs = g_new0(const char *, moves->len + 1);
        for (guint i = 0; i < moves->len; i++)
            devs[i] = ((LvMove *) moves->pdata[i])->dev;
        flags |= VIR_MIGRATE_NON_SHARED_DISK;
        virTypedParamsAddStringList(&params, &nparams, &maxparams,
                                    VIR_MIGRATE_PARAM_MIGRATE_DISKS, devs);
        g_free(devs);
    }
    /* --network NIC=NET and new disk paths: the destination's live and
     * persistent definitions with the NICs rewired and the disks moved */
    if (spec->networks->len || moves->len) {
        for (int pass = 0; pass < 2; pass++) {
            unsigned int xf = VIR_DOMAIN_XML_SECURE | VIR_DOMAIN_XML_MIGRATABLE;
            if (pass == 1 && virDomainIsPersistent(d) != 1)
                break;
            if (pass == 1)
                xf |= VIR_DOMAIN_XML_INACTIVE;
            xmlDoc *doc = lv_xml(d, xf, error);
            if (!doc)
                goto out;
            if (!lv_map_networks(doc, spec, error)) {
                xmlFreeDoc(doc);
                goto out;
            }
            lv_rewrite_disks(doc, moves);
            char *x = lv_xml_dump(doc);
            xmlFreeDoc(doc);
            virTypedParamsAddString(&params, &nparams, &maxparams,
                                    pass ? VIR_MIGRATE_PARAM_PERSIST_XML
                                         : VIR_MIGRATE_PARAM_DEST_XML, x);
            if (pass)
                persist_xml = x;
            else
                dest_xml = x;
        }
        for (guint i = 0; i < spec->networks->len; i++) {
            VmshiftMapping *mp = spec->networks->pdata[i];
            vmshift_job_log(job, VMSHIFT_LOG_INFO, "NIC %s -> network %s on %s", mp->key,
                            mp->value, dst->name);
        }
    }
    char *rate = paused ? g_strdup_printf("TCG on QEMU %d loses guest writes during live "
                                          "migration (fixed in QEMU 9.0): paused for the "
                                          "transfer; tcg-safe=false to migrate live", major)
                        : g_strdup_printf("dirty rate %" G_GINT64_FORMAT " MiB/s", dirty);
    char *tuning = g_strdup_printf("libvirt peer-to-peer, bandwidth %s, %s (%s)%s",
                                   bw_bytes ? "capped" : "unlimited (libvirt's default)",
                                   postcopy ? "post-copy"
                                            : "4 parallel connections", rate,
                                   moves->len ? ", disks mirrored over NBD" : "");
    g_free(rate);
    vmshift_job_set_result(job, "tuning", tuning);
    vmshift_job_log(job, VMSHIFT_LOG_INFO, "tuning: %s", tuning);
    g_free(tuning);
    if (g_cancellable_set_error_if_cancelled(cancel, error))
        goto out;

    if (!vmshift_job_set_phase(job, VMSHIFT_PHASE_PREPARE, error))
        goto out;
    if (moves->len && !lv_precreate(job, moves, pools, dst, error))
        goto out;
    if (g_cancellable_set_error_if_cancelled(cancel, error) ||
        !vmshift_job_set_phase(job, VMSHIFT_PHASE_TRANSFER, error) ||
        !vmshift_job_save(job, "stage", "transfer", error))
        goto out;
    vmshift_job_set_location(job, src->name, paused ? "paused by libvirt for the transfer"
                                                    : "running, migrating");
    t.dom = d;
    t.desturi = dst->migration_uri;
    t.params = params;
    t.nparams = nparams;
    t.flags = flags;
    gint64 t0 = g_get_monotonic_time();
    GThread *th = g_thread_new("kvm-lv-migrate", mig_thread, &t);
    gboolean aborted = FALSE;
    unsigned long long disk_seen = 0;
    for (;;) {
        g_mutex_lock(&t.lock);
        gboolean done = t.done;
        g_mutex_unlock(&t.lock);
        if (done)
            break;
        if (!aborted && !switched && g_cancellable_is_cancelled(cancel)) {
            aborted = TRUE;
            if (virDomainAbortJob(d) < 0)
                vmshift_job_log(job, VMSHIFT_LOG_WARNING, "virDomainAbortJob: %s",
                                virGetLastErrorMessage());
        }
        int type = 0, np = 0;
        virTypedParameterPtr jp = NULL;
        if (virDomainGetJobStats(d, &type, &jp, &np, 0) == 0) {
            unsigned long long proc = 0, total = 0, rem = 0, iter = 0, mem_total = 0;
            virTypedParamsGetULLong(jp, np, VIR_DOMAIN_JOB_DATA_PROCESSED, &proc);
            virTypedParamsGetULLong(jp, np, VIR_DOMAIN_JOB_DATA_TOTAL, &total);
            virTypedParamsGetULLong(jp, np, VIR_DOMAIN_JOB_DATA_REMAINING, &rem);
            virTypedParamsGetULLong(jp, np, VIR_DOMAIN_JOB_MEMORY_ITERATION, &iter);
            virTypedParamsGetULLong(jp, np, VIR_DOMAIN_JOB_DISK_PROCESSED, &disk_seen);
            virTypedParamsGetULLong(jp, np, VIR_DOMAIN_JOB_MEMORY_TOTAL, &mem_total);
            if (total) {
                vmshift_job_set_bytes(job, proc, proc + rem);
                vmshift_job_set_progress(job, 100.0 * (double) (total - MIN(rem, total)) /
                                                  (double) total);
            }
            /* as the qmp transport: switch as soon as the memory stream
             * runs. Not before: while libvirt still mirrors the disks
             * (VM + storage; memory total 0) QEMU refuses the switch or
             * libvirt holds the call until the migration has ended, and
             * this loop with it (no progress, no cancel) */
            if (postcopy && !switched && !aborted && mem_total > 0 &&
                g_get_monotonic_time() - t0 >= 200000) {
                if (virDomainMigrateStartPostCopy(d, 0) == 0) {
                    switched = TRUE;
                    vmshift_job_save(job, "stage", "postcopy", NULL);
                    char *when = g_strdup_printf("after %" G_GINT64_FORMAT " ms",
                                                 (g_get_monotonic_time() - t0) / 1000);
                    vmshift_job_set_result(job, "postcopy", when);
                    vmshift_job_log(job, VMSHIFT_LOG_INFO, "switched to post-copy %s", when);
                    g_free(when);
                } else {
                    vmshift_job_log(job, VMSHIFT_LOG_DEBUG, "virDomainMigrateStartPostCopy: %s",
                                    virGetLastErrorMessage());
                }
            }
            virTypedParamsFree(jp, np);
        }
        g_usleep(200000);
    }
    g_thread_join(th);
    if (t.rc < 0) {
        if (aborted)
            g_set_error(error, G_IO_ERROR, G_IO_ERROR_CANCELLED, "migration of VM %s cancelled",
                        spec->vm);
        else
            g_set_error(error, VMSHIFT_ERROR,
                        t.errcode == VIR_ERR_SYSTEM_ERROR ? VMSHIFT_ERROR_CONNECTION
                        : t.errcode == VIR_ERR_MIGRATE_UNSAFE ? VMSHIFT_ERROR_CONFLICT
                                                              : VMSHIFT_ERROR_FAILED,
                        "libvirt migration of VM %s from %s to %s failed: %s%s", spec->vm,
                        src->name, dst->name, t.errmsg,
                        t.errcode == VIR_ERR_MIGRATE_UNSAFE
                            ? " (give the disks cache mode 'none' on shared storage, or "
                              "accept the risk with --force)" : "");
        /* libvirt rolls a failed peer-to-peer migration back: say where it is */
        int st = 0;
        if (virDomainGetState(d, &st, NULL, 0) == 0 && st == VIR_DOMAIN_RUNNING)
            vmshift_job_set_location(job, src->name, "running (migration rolled back)");
        vmshift_job_save(job, "stage", "rolled-back", NULL);
        goto out;
    }
    migrated = TRUE;
    vmshift_job_save(job, "stage", "completed", NULL);
    vmshift_job_set_phase(job, VMSHIFT_PHASE_SWITCHOVER, NULL);
    virDomainPtr dd = virDomainLookupByName(dst->conn, spec->vm);
    int st = 0;
    if (!dd || virDomainGetState(dd, &st, NULL, 0) < 0 || st != VIR_DOMAIN_RUNNING) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_FAILED,
                    "VM %s is not running on host %s after the migration", spec->vm, dst->name);
        if (dd)
            virDomainFree(dd);
        goto out;
    }
    vmshift_job_set_location(job, dst->name, "running");
    int type = 0, np = 0;
    virTypedParameterPtr jp = NULL;
    if (virDomainGetJobStats(dd, &type, &jp, &np, VIR_DOMAIN_JOB_STATS_COMPLETED) == 0) {
        unsigned long long v = 0;
        char *s;
        if (virTypedParamsGetULLong(jp, np, VIR_DOMAIN_JOB_TIME_ELAPSED, &v) == 1) {
            s = g_strdup_printf("%llu", v);
            vmshift_job_set_result(job, "total-time-ms", s);
            g_free(s);
        }
        if (virTypedParamsGetULLong(jp, np, VIR_DOMAIN_JOB_DOWNTIME, &v) == 1) {
            s = g_strdup_printf("%llu", v);
            vmshift_job_set_result(job, "downtime-ms", s);
            g_free(s);
        }
        if (virTypedParamsGetULLong(jp, np, VIR_DOMAIN_JOB_DATA_PROCESSED, &v) == 1) {
            s = g_strdup_printf("%llu", v);
            vmshift_job_set_result(job, "transferred-bytes", s);
            g_free(s);
        }
        if (moves->len &&
            virTypedParamsGetULLong(jp, np, VIR_DOMAIN_JOB_DISK_PROCESSED, &v) == 1)
            disk_seen = MAX(disk_seen, v);
        virTypedParamsFree(jp, np);
    }
    if (disk_seen) {
        char *s = g_strdup_printf("%llu", disk_seen);
        vmshift_job_set_result(job, "disk-bytes", s);
        g_free(s);
    }
    char *wall = g_strdup_printf("%" G_GINT64_FORMAT, (g_get_monotonic_time() - t0) / 1000);
    vmshift_job_set_result(job, "wall-time-ms", wall);
    g_free(wall);
    virDomainFree(dd);
    vmshift_job_set_phase(job, VMSHIFT_PHASE_CLEANUP, NULL);
    /* the source's images only now: the VM runs on the copies */
    if (moves->len) {
        GString *res = g_string_new(NULL);
        for (guint i = 0; i < moves->len; i++) {
            LvMove *m = moves->pdata[i];
            GError *e = NULL;
            if (lv_vol_delete(pools, src, m->src_path, &e)) {
                vmshift_job_log(job, VMSHIFT_LOG_INFO, "removed %s:%s", src->name,
                                m->src_path);
            } else {
                vmshift_job_log(job, VMSHIFT_LOG_WARNING, "%s", e->message);
                g_clear_error(&e);
            }
            g_string_append_printf(res, "%s%s=%s:%s", res->len ? "," : "", m->dev, dst->name,
                                   m->dst_path);
        }
        vmshift_job_set_result(job, "disks", res->str);
        g_string_free(res, TRUE);
    }
    vmshift_job_save(job, "stage", "done", NULL);
    ok = TRUE;
out:
    if (!ok && !migrated && !switched) {
        /* libvirt rolled the migration back (and killed the destination's
         * QEMU): the volumes made for it go */
        for (guint i = 0; i < moves->len; i++) {
            LvMove *m = moves->pdata[i];
            GError *e = NULL;
            if (!m->created)
                continue;
            if (lv_vol_delete(pools, dst, m->dst_path, &e)) {
                vmshift_job_log(job, VMSHIFT_LOG_INFO, "removed %s:%s", dst->name,
                                m->dst_path);
            } else {
                vmshift_job_log(job, VMSHIFT_LOG_WARNING, "%s", e->message);
                g_clear_error(&e);
            }
        }
        if (dst)
            lv_pools_unbuild(pools, dst);
    }
    g_ptr_array_unref(pools);
    g_ptr_array_unref(moves);
    g_free(dest_xml);
    g_free(persist_xml);
    g_free(t.errmsg);
    g_mutex_clear(&t.lock);
    virTypedParamsFree(params, nparams);
    virDomainFree(d);
    return ok;
}

/*
 * repair of an interrupted cold move (kind=cold): forward when the
 * destination has the definition and the journal says the move got to
 * defining it (stage define or later): the source's definition and images
 * go; back otherwise: the destination's files of this job go, the source
 * keeps the VM. Files are only removed while the other side still has the
 * definition.
 */
static gboolean
lv_repair_cold(VmshiftJob *job, const char *vm, LvHost *src, LvHost *dst, GError **error)
{
    char *stage = vmshift_job_get_saved(job, "stage");
    GPtrArray *pools = g_ptr_array_new_with_free_func((GDestroyNotify) lv_pool_free);
    virDomainPtr sd = virDomainLookupByName(src->conn, vm);
    virDomainPtr dd = virDomainLookupByName(dst->conn, vm);
    gboolean late = stage && (!strcmp(stage, "define") || !strcmp(stage, "moved") ||
                              !strcmp(stage, "start") || !strcmp(stage, "done"));
    gboolean ok = TRUE;
    if (late && dd && virDomainIsPersistent(dd) == 1) {
        int ss = -1, ds = -1;
        if (sd)
            virDomainGetState(sd, &ss, NULL, 0);
        if (sd && ss != VIR_DOMAIN_SHUTOFF) {
            g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_CONFLICT,
                        "VM %s is defined on %s and %s and runs on %s: not touched", vm,
                        src->name, dst->name, src->name);
            ok = FALSE;
            goto out;
        }
        if (sd && virDomainUndefineFlags(sd, LV_UNDEFINE_FLAGS) < 0) {
            lv_error(error, VMSHIFT_ERROR_FAILED, "VM %s: undefining it on host %s", vm,
                     src->name);
            ok = FALSE;
            goto out;
        }
        vmshift_job_save(job, "stage", "moved", NULL);
        lv_delete_saved(job, pools, src, "old-vols");
        lv_drop_job_pools(job, dst, "new-vols");
        virDomainGetState(dd, &ds, NULL, 0);
        vmshift_job_set_location(job, dst->name, ds == VIR_DOMAIN_RUNNING ? "running"
                                                                          : "shut off");
        vmshift_job_set_result(job, "repair", "resumed");
        vmshift_job_save(job, "stage", "done", NULL);
    } else if (late) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_CONFLICT,
                    "VM %s was being defined on %s but is not there: nothing removed, look "
                    "at both hosts by hand", vm, dst->name);
        ok = FALSE;
    } else if (sd) {
        /* the destination never got the definition: its volumes go */
        lv_delete_saved(job, pools, dst, "new-vols");
        lv_pools_unbuild(pools, dst);
        lv_drop_job_pools(job, src, "old-vols");
        vmshift_job_save(job, "stage", "rolled-back", NULL);
        vmshift_job_set_location(job, src->name, "shut off");
        vmshift_job_set_result(job, "repair", "rolled-back");
    } else {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_CONFLICT,
                    "VM %s is defined neither on %s nor on %s: nothing removed", vm, src->name,
                    dst->name);
        ok = FALSE;
    }
out:
    if (sd)
        virDomainFree(sd);
    if (dd)
        virDomainFree(dd);
    g_ptr_array_unref(pools);
    g_free(stage);
    return ok;
}

/* whether @d (NULL: gone) has a job running, a migration above all */
static gboolean
lv_job_active(virDomainPtr d)
{
    virDomainJobInfo ji;
    return d && virDomainGetJobInfo(d, &ji) == 0 && ji.type != VIR_DOMAIN_JOB_NONE;
}

/* @d's state, -1 when there is no such domain */
static int
lv_state(virDomainPtr d)
{
    int st = -1;
    if (d && virDomainGetState(d, &st, NULL, 0) < 0)
        st = -1;
    return st;
}

/*
 * repair of an interrupted live move (kind unset: VM only; live-storage:
 * VM + storage). A peer-to-peer migration is run by the source's libvirtd,
 * which goes on with it when the client dies: it is aborted while it can
 * be (before the switchover; in post-copy it cannot) and awaited either
 * way, and only the states seen after it ended decide. The VM running on
 * the source (the destination has no running copy): the images made on
 * the destination and the job's pools there go (rolled back). Running on
 * the destination (the source's definition gone or shut off): the source's
 * images go (resumed). Nothing is removed when both or neither run it.
 */
#define LV_REPAIR_WAIT_S 120

static gboolean
lv_repair_live(VmshiftJob *job, const char *vm, LvHost *src, LvHost *dst, gboolean storage,
               GError **error)
{
    GPtrArray *pools = g_ptr_array_new_with_free_func((GDestroyNotify) lv_pool_free);
    gboolean ok = FALSE;
    virDomainPtr sd = virDomainLookupByName(src->conn, vm);
    if (lv_job_active(sd)) {
        if (virDomainAbortJob(sd) == 0)
            vmshift_job_log(job, VMSHIFT_LOG_INFO, "aborted the job of VM %s still running on "
                            "host %s", vm, src->name);
        else
            vmshift_job_log(job, VMSHIFT_LOG_INFO, "the job of VM %s on host %s cannot be "
                            "aborted (%s): waiting for it to end", vm, src->name,
                            virGetLastErrorMessage());
        int i;
        for (i = 0; i < LV_REPAIR_WAIT_S * 10 && lv_job_active(sd); i++)
            g_usleep(100000);
        if (i == LV_REPAIR_WAIT_S * 10) {
            g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_CONFLICT,
                        "a job of VM %s still runs on host %s after %d s: nothing changed, "
                        "repair again when it has ended", vm, src->name, LV_REPAIR_WAIT_S);
            goto out;
        }
    }
    /* what the ended migration left: look again (undefined on the source
     * after a success, gone from the destination after a rollback) */
    if (sd)
        virDomainFree(sd);
    sd = virDomainLookupByName(src->conn, vm);
    virDomainPtr dd = virDomainLookupByName(dst->conn, vm);
    int ss = lv_state(sd), ds = lv_state(dd);
    if (ss == VIR_DOMAIN_RUNNING && ds == VIR_DOMAIN_RUNNING) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_CONFLICT,
                    "VM %s runs on both %s and %s: nothing removed, stop one by hand", vm,
                    src->name, dst->name);
    } else if (ss == VIR_DOMAIN_RUNNING) {
        /* a destination half made (not running) goes, then its images */
        if (dd && virDomainIsActive(dd) == 1 && virDomainDestroy(dd) < 0)
            vmshift_job_log(job, VMSHIFT_LOG_WARNING, "VM %s: stopping it on host %s: %s", vm,
                            dst->name, virGetLastErrorMessage());
        if (dd && virDomainIsPersistent(dd) == 1 &&
            virDomainUndefineFlags(dd, LV_UNDEFINE_FLAGS) < 0)
            vmshift_job_log(job, VMSHIFT_LOG_WARNING, "VM %s: undefining it on host %s: %s",
                            vm, dst->name, virGetLastErrorMessage());
        if (storage) {
            lv_delete_saved(job, pools, dst, "new-vols");
            lv_pools_unbuild(pools, dst);
            lv_drop_job_pools(job, src, "old-vols");
        }
        vmshift_job_save(job, "stage", "rolled-back", NULL);
        vmshift_job_set_location(job, src->name, "running");
        vmshift_job_set_result(job, "repair", dd || storage ? "rolled-back" : "nothing-to-do");
        ok = TRUE;
    } else if (ds == VIR_DOMAIN_RUNNING && (ss == -1 || ss == VIR_DOMAIN_SHUTOFF)) {
        if (sd && virDomainUndefineFlags(sd, LV_UNDEFINE_FLAGS) < 0) {
            lv_error(error, VMSHIFT_ERROR_FAILED, "VM %s: undefining it on host %s", vm,
                     src->name);
        } else {
            /* the VM runs on the copies: the source's images go */
            if (storage) {
                lv_delete_saved(job, pools, src, "old-vols");
                lv_drop_job_pools(job, dst, "new-vols");
            }
            vmshift_job_save(job, "stage", "done", NULL);
            vmshift_job_set_location(job, dst->name, "running");
            vmshift_job_set_result(job, "repair", "resumed");
            ok = TRUE;
        }
    } else {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_CONFLICT,
                    "VM %s runs neither on %s nor on %s: nothing removed, "
                    "start it by hand where its disks are", vm, src->name, dst->name);
    }
    if (dd)
        virDomainFree(dd);
out:
    if (sd)
        virDomainFree(sd);
    g_ptr_array_unref(pools);
    return ok;
}

gboolean
kvm_libvirt_repair(KvmBackend *b, VmshiftJob *job, GError **error)
{
    char *vm = vmshift_job_get_saved(job, "vm");
    char *srcn = vmshift_job_get_saved(job, "src-host");
    char *dstn = vmshift_job_get_saved(job, "dst-host");
    char *kind = vmshift_job_get_saved(job, "kind");
    gboolean ok = FALSE;
    if (!vm || !srcn || !dstn) {
        vmshift_job_set_result(job, "repair", "nothing-to-do");
        ok = TRUE;
        goto out;
    }
    LvHost *src = lv_find_host(b, srcn, error), *dst = src ? lv_find_host(b, dstn, error) : NULL;
    if (!src || !dst)
        goto out;
    if (!g_strcmp0(kind, "cold")) {
        ok = lv_repair_cold(job, vm, src, dst, error);
        goto out;
    }
    ok = lv_repair_live(job, vm, src, dst, !g_strcmp0(kind, "live-storage"), error);
out:
    g_free(kind);
    g_free(vm);
    g_free(srcn);
    g_free(dstn);
    return ok;
}
