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
 * through virDomainGetBlockJobInfo. Cold and storage migration and
 * recreate_acl are not implemented for this transport yet (NOT_SUPPORTED).
 */
#include "config.h"

#include <string.h>

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
    if (spec->type != VMSHIFT_MIGRATION_LIVE)
        g_ptr_array_add(l, vmshift_finding_new(VMSHIFT_SEVERITY_ERROR, "not-supported", spec->vm,
                                               "the libvirt transport does %s migration not "
                                               "yet", vmshift_migration_type_name(spec->type)));
    else if (state != VIR_DOMAIN_RUNNING && state != VIR_DOMAIN_PAUSED)
        g_ptr_array_add(l, vmshift_finding_new(VMSHIFT_SEVERITY_ERROR, "power-state", spec->vm,
                                               "the VM is not running: live migration needs "
                                               "it running"));
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
        if (virDomainGetInfo(d, &info) == 0 &&
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
    if (spec->type != VMSHIFT_MIGRATION_LIVE || vmshift_migration_spec_moves_storage(spec) ||
        spec->networks->len) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_NOT_SUPPORTED,
                    "the libvirt transport of the kvm plugin does live host migration only "
                    "(no cold, storage or --network yet); use transport=qmp for those");
        return FALSE;
    }
    virDomainPtr d = lv_locate(b, spec->vm, &src, error);
    if (!d)
        return FALSE;
    gboolean ok = FALSE;
    MigThread t = { 0 };
    virTypedParameterPtr params = NULL;
    int nparams = 0, maxparams = 0;
    g_mutex_init(&t.lock);
    vmshift_job_set_location(job, src->name, "running");
    if (!spec->dest_host || !(dst = lv_find_host(b, spec->dest_host, error)))
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
    int force_pc = -1;
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
            else if (strcmp(key, "measure-dirty-rate")) {
                g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_INVALID_ARGUMENT,
                            "kvm (libvirt): unknown or ill-typed migration option '%s'", key);
                g_variant_unref(val);
                goto out;
            }
            g_variant_unref(val);
        }
    }
    gint64 dirty = force_pc < 0 ? lv_dirty_rate(d) : -1;
    guint64 link = bw_bytes ? MIN(b->link_mib_s, bw_bytes >> 20) : b->link_mib_s;
    gboolean postcopy = force_pc == 1 ||
                        (force_pc < 0 && kvm_tuning_prefers_postcopy(dirty, link, 300));
    unsigned int flags = VIR_MIGRATE_LIVE | VIR_MIGRATE_PEER2PEER | VIR_MIGRATE_PERSIST_DEST |
                         VIR_MIGRATE_UNDEFINE_SOURCE;
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
    char *tuning = g_strdup_printf("libvirt peer-to-peer, bandwidth %s, %s (dirty rate %"
                                   G_GINT64_FORMAT " MiB/s)",
                                   bw_bytes ? "capped" : "unlimited (libvirt's default)",
                                   postcopy ? "post-copy"
                                            : "4 parallel connections", dirty);
    vmshift_job_set_result(job, "tuning", tuning);
    vmshift_job_log(job, VMSHIFT_LOG_INFO, "tuning: %s", tuning);
    g_free(tuning);
    if (g_cancellable_set_error_if_cancelled(cancel, error))
        goto out;

    if (!vmshift_job_set_phase(job, VMSHIFT_PHASE_PREPARE, error) ||
        !vmshift_job_set_phase(job, VMSHIFT_PHASE_TRANSFER, error) ||
        !vmshift_job_save(job, "stage", "transfer", error))
        goto out;
    vmshift_job_set_location(job, src->name, "running, migrating");
    t.dom = d;
    t.desturi = dst->migration_uri;
    t.params = params;
    t.nparams = nparams;
    t.flags = flags;
    gint64 t0 = g_get_monotonic_time();
    GThread *th = g_thread_new("kvm-lv-migrate", mig_thread, &t);
    gboolean aborted = FALSE, switched = FALSE;
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
            unsigned long long proc = 0, total = 0, rem = 0, iter = 0;
            virTypedParamsGetULLong(jp, np, VIR_DOMAIN_JOB_DATA_PROCESSED, &proc);
            virTypedParamsGetULLong(jp, np, VIR_DOMAIN_JOB_DATA_TOTAL, &total);
            virTypedParamsGetULLong(jp, np, VIR_DOMAIN_JOB_DATA_REMAINING, &rem);
            virTypedParamsGetULLong(jp, np, VIR_DOMAIN_JOB_MEMORY_ITERATION, &iter);
            if (total) {
                vmshift_job_set_bytes(job, proc, proc + rem);
                vmshift_job_set_progress(job, 100.0 * (double) (total - MIN(rem, total)) /
                                                  (double) total);
            }
            /* as the qmp transport: switch as soon as the stream runs */
            if (postcopy && !switched && !aborted && total > 0 &&
                g_get_monotonic_time() - t0 >= 200000) {
                if (virDomainMigrateStartPostCopy(d, 0) == 0) {
                    switched = TRUE;
                    vmshift_job_save(job, "stage", "postcopy", NULL);
                    char *when = g_strdup_printf("after %" G_GINT64_FORMAT " ms",
                                                 (g_get_monotonic_time() - t0) / 1000);
                    vmshift_job_set_result(job, "postcopy", when);
                    vmshift_job_log(job, VMSHIFT_LOG_INFO, "switched to post-copy %s", when);
                    g_free(when);
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
        virTypedParamsFree(jp, np);
    }
    char *wall = g_strdup_printf("%" G_GINT64_FORMAT, (g_get_monotonic_time() - t0) / 1000);
    vmshift_job_set_result(job, "wall-time-ms", wall);
    g_free(wall);
    virDomainFree(dd);
    vmshift_job_set_phase(job, VMSHIFT_PHASE_CLEANUP, NULL);
    vmshift_job_save(job, "stage", "done", NULL);
    ok = TRUE;
out:
    g_free(t.errmsg);
    g_mutex_clear(&t.lock);
    virTypedParamsFree(params, nparams);
    virDomainFree(d);
    return ok;
}

gboolean
kvm_libvirt_repair(KvmBackend *b, VmshiftJob *job, GError **error)
{
    char *vm = vmshift_job_get_saved(job, "vm");
    char *srcn = vmshift_job_get_saved(job, "src-host");
    char *dstn = vmshift_job_get_saved(job, "dst-host");
    gboolean ok = FALSE;
    if (!vm || !srcn || !dstn) {
        vmshift_job_set_result(job, "repair", "nothing-to-do");
        ok = TRUE;
        goto out;
    }
    LvHost *src = lv_find_host(b, srcn, error), *dst = src ? lv_find_host(b, dstn, error) : NULL;
    if (!src || !dst)
        goto out;
    gboolean failed = FALSE;
    virDomainPtr sd = virDomainLookupByName(src->conn, vm);
    virDomainPtr dd = virDomainLookupByName(dst->conn, vm);
    int ss = -1, ds = -1;
    if (sd)
        virDomainGetState(sd, &ss, NULL, 0);
    if (dd)
        virDomainGetState(dd, &ds, NULL, 0);
    if (sd && ss == VIR_DOMAIN_RUNNING) {
        /* the source runs it: abort whatever still runs and drop a
         * half-made destination */
        virDomainAbortJob(sd);
        if (dd && !virDomainIsPersistent(dd))
            virDomainDestroy(dd);
        vmshift_job_set_location(job, src->name, "running");
        vmshift_job_set_result(job, "repair", dd ? "rolled-back" : "nothing-to-do");
    } else if (dd && ds == VIR_DOMAIN_RUNNING) {
        if (sd && virDomainIsPersistent(sd) == 1 && ss != VIR_DOMAIN_RUNNING)
            virDomainUndefine(sd);
        vmshift_job_set_location(job, dst->name, "running");
        vmshift_job_set_result(job, "repair", "resumed");
    } else {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_CONFLICT,
                    "VM %s runs neither on %s nor on %s: start it by hand where its disks are",
                    vm, srcn, dstn);
        failed = TRUE;
    }
    if (sd)
        virDomainFree(sd);
    if (dd)
        virDomainFree(dd);
    ok = !failed;
out:
    g_free(vm);
    g_free(srcn);
    g_free(dstn);
    return ok;
}
