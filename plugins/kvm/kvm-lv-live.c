/* vmshift KVM plugin, libvirt transport: live migration (peer-to-peer,
 * virDomainMigrateToURI3), VM + storage (the disks mirrored over NBD), the
 * tuning (kvm-tuning.c) applied with libvirt's flags and parameters, and
 * kvm_libvirt_migrate, which picks the kind of migration. */
#include "config.h"

#include <string.h>

#include "kvm-lv.h"

/* one live migration */
typedef struct {
    KvmBackend *b;
    const VmshiftMigrationSpec *spec;
    VmshiftJob *job;
    virDomainPtr d;
    LvHost *src, *dst;
    GPtrArray *moves; /* LvMove: VM + storage */
    GPtrArray *pools; /* LvPool */
    KvmTuningOptions opts;
    KvmTuning t;
    int qemu_major;
    unsigned int flags;
    LvParams *params; /* what goes to virDomainMigrateToURI3 */
    gint64 t0;
    gboolean switched; /* post-copy began: no way back */
    gboolean downtime_set;
    unsigned long long disk_seen;
    gboolean lost; /* the migration call lost its connection: outcome unknown */
} LvLive;

/* ---- VM + storage: the disks of a live migration ------------------------- */

/* the disks that move with the VM (--path/--disk-path), their sizes, and
 * a check that the destination has no file at their new paths */
static gboolean
lv_plan_live_moves(LvLive *l, GError **error)
{
    g_autoptr(xmlDoc) doc = lv_xml(l->d, 0, error);
    if (!doc || !lv_plan_moves(doc, l->spec, FALSE, l->moves, error))
        return FALSE;
    if (l->moves->len == 0) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_INVALID_ARGUMENT,
                    "VM %s on host %s has no file disk to move", l->spec->vm, l->src->name);
        return FALSE;
    }
    for (guint i = 0; i < l->moves->len; i++) {
        LvMove *m = l->moves->pdata[i];
        virDomainBlockInfo bi;
        if (virDomainGetBlockInfo(l->d, m->dev, &bi, 0) < 0) {
            lv_error(error, VMSHIFT_ERROR_FAILED, "VM %s: reading the size of disk %s", l->spec->vm,
                     m->dev);
            return FALSE;
        }
        m->capacity = bi.capacity;
        if (!lv_vol_absent(l->pools, l->dst, m->dst_path, "", error))
            return FALSE;
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
lv_precreate(LvLive *l, GError **error)
{
    if (!vmshift_job_save(l->job, "kind", "live-storage", error)
        || !lv_save_moves(l->job, l->moves, error)
        || !vmshift_job_save(l->job, "stage", "precreate", error))
        return FALSE;
    for (guint i = 0; i < l->moves->len; i++) {
        LvMove *m = l->moves->pdata[i];
        g_autofree char *dir = g_path_get_dirname(m->dst_path);
        virStoragePoolPtr dp = lv_pool(l->pools, l->dst, dir, TRUE, error);
        if (!dp)
            return FALSE;
        const char *fmt = m->format && !strcmp(m->format, "qcow2") ? "qcow2" : "raw";
        g_autoptr(virStorageVol) dv = lv_vol_create(dp, m->dst_path, m->capacity, fmt, "");
        if (!dv) {
            lv_error(error, VMSHIFT_ERROR_FAILED, "host %s: creating %s for disk %s", l->dst->name,
                     m->dst_path, m->dev);
            return FALSE;
        }
        m->created = TRUE;
        vmshift_job_log(l->job, VMSHIFT_LOG_INFO,
                        "disk %s: %s -> %s:%s (%s, %" G_GUINT64_FORMAT " bytes)", m->dev,
                        m->src_path, l->dst->name, m->dst_path, fmt, m->capacity);
    }
    return TRUE;
}

/* ---- tuning -------------------------------------------------------------- */

/* libvirt's own dirty-rate measurement (virDomainStartDirtyRateCalc, 7.2+),
 * MiB/s, or -1 */
static gint64
lv_dirty_rate(virDomainPtr d)
{
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

/* a domain of type 'qemu' runs under TCG */
static gboolean
lv_is_tcg(virDomainPtr d)
{
    g_autoptr(xmlDoc) doc = lv_xml(d, 0, NULL);
    if (!doc)
        return FALSE;
    g_autoptr(xmlXPathContext) ctx = vmshift_xpath_new(doc, NULL);
    g_autofree char *type = vmshift_xpath_string(ctx, NULL, "/domain/@type");
    return !g_strcmp0(type, "qemu");
}

/*
 * The tuning of kvm-tuning.c from libvirt's facts. Under TCG on QEMU
 * before 9.0 a live migration can lose guest writes
 * (kvm_tuning_tcg_loses_writes), so libvirt pauses the domain for the
 * transfer (no VIR_MIGRATE_LIVE; libvirt resumes it on the destination).
 * libvirt refuses post-copy without LIVE (paused_postcopy = FALSE), so the
 * downtime is the whole transfer here, unlike the qmp transport's paused
 * post-copy. The hosts of libvirt carry no allow-postcopy setting.
 */
static gboolean
lv_decide(LvLive *l, GError **error)
{
    if (!kvm_tuning_read_options(l->spec->options, &l->opts, error))
        return FALSE;
    unsigned long qv = 0;
    virConnectGetVersion(l->src->conn, &qv);
    l->qemu_major = (int)(qv / 1000000);
    KvmTuningFacts f = {
        .tcg = lv_is_tcg(l->d),
        .qemu_major = l->qemu_major,
        .src_allows_postcopy = TRUE,
        .dst_allows_postcopy = TRUE,
        .src_name = l->src->name,
        .dst_name = l->dst->name,
        .link_mib_s = l->b->link_mib_s,
        .src_max_bw_mib = 0,
        .paused_postcopy = FALSE,
        .dirty_mib_s = -1,
    };
    if (kvm_tuning_needs_dirty_rate(&f, &l->opts))
        f.dirty_mib_s = lv_dirty_rate(l->d);
    if (!kvm_tuning_decide(&f, &l->opts, &l->t, error))
        return FALSE;
    if (l->t.warn_tcg_live)
        kvm_tuning_warn_tcg_live(l->job, l->qemu_major);
    return TRUE;
}

/* the decision as libvirt's flags and typed parameters */
static void
lv_apply_tuning(LvLive *l)
{
    const KvmTuning *t = &l->t;
    LvParams *p = l->params;
    l->flags = VIR_MIGRATE_PEER2PEER | VIR_MIGRATE_PERSIST_DEST | VIR_MIGRATE_UNDEFINE_SOURCE
               | (t->paused ? 0 : VIR_MIGRATE_LIVE);
    /* --force: the person accepted libvirt's "unsafe migration" warning
     * (disks on storage libvirt does not know to be shared, cache mode not
     * none) */
    if (l->spec->force)
        l->flags |= VIR_MIGRATE_UNSAFE;
    if (t->postcopy)
        l->flags |= VIR_MIGRATE_POSTCOPY;
    if (t->multifd) {
        l->flags |= VIR_MIGRATE_PARALLEL;
        virTypedParamsAddInt(&p->p, &p->n, &p->max, VIR_MIGRATE_PARAM_PARALLEL_CONNECTIONS,
                             (int)t->channels);
    }
    if (t->autoconverge)
        l->flags |= VIR_MIGRATE_AUTO_CONVERGE;
    if (t->bandwidth_given)
        virTypedParamsAddULLong(&p->p, &p->n, &p->max, VIR_MIGRATE_PARAM_BANDWIDTH,
                                MAX(t->max_bandwidth >> 20, 1));
}

static void
lv_report_tuning(LvLive *l)
{
    g_autofree char *sum = kvm_tuning_summary(&l->t);
    g_autofree char *tuning = g_strdup_printf("libvirt peer-to-peer, %s%s", sum,
                                              l->moves->len ? ", disks mirrored over NBD" : "");
    kvm_tuning_report(l->job, &l->t, tuning);
}

/* ---- the destination's definitions ---------------------------------------- */

/*
 * VM + storage: libvirt mirrors the moving disks over NBD into the volumes
 * made on the destination beforehand (full copies: the chain is
 * flattened), before and alongside the memory. --network NIC=NET and new
 * disk paths: the destination's live and persistent definitions with the
 * NICs rewired and the disks moved.
 */
static gboolean
lv_dest_params(LvLive *l, GError **error)
{
    LvParams *p = l->params;
    if (l->moves->len) {
        g_autofree const char **devs = g_new0(const char *, l->moves->len + 1);
        for (guint i = 0; i < l->moves->len; i++)
            devs[i] = ((LvMove *)l->moves->pdata[i])->dev;
        l->flags |= VIR_MIGRATE_NON_SHARED_DISK;
        virTypedParamsAddStringList(&p->p, &p->n, &p->max, VIR_MIGRATE_PARAM_MIGRATE_DISKS, devs);
    }
    if (!l->spec->networks->len && !l->moves->len)
        return TRUE;
    for (int pass = 0; pass < 2; pass++) {
        unsigned int xf = VIR_DOMAIN_XML_SECURE | VIR_DOMAIN_XML_MIGRATABLE;
        if (pass == 1 && virDomainIsPersistent(l->d) != 1)
            break;
        if (pass == 1)
            xf |= VIR_DOMAIN_XML_INACTIVE;
        g_autoptr(xmlDoc) doc = lv_xml(l->d, xf, error);
        if (!doc || !lv_map_networks(doc, l->spec, error))
            return FALSE;
        lv_rewrite_disks(doc, l->moves);
        g_autofree char *x = lv_xml_dump(doc);
        virTypedParamsAddString(&p->p, &p->n, &p->max,
                                pass ? VIR_MIGRATE_PARAM_PERSIST_XML : VIR_MIGRATE_PARAM_DEST_XML,
                                x);
    }
    for (guint i = 0; i < l->spec->networks->len; i++) {
        VmshiftMapping *mp = l->spec->networks->pdata[i];
        vmshift_job_log(l->job, VMSHIFT_LOG_INFO, "NIC %s -> network %s on %s", mp->key, mp->value,
                        l->dst->name);
    }
    return TRUE;
}

/* ---- the migration ---------------------------------------------------------- */

typedef struct {
    virDomainPtr dom;
    const char *desturi;
    virTypedParameterPtr params;
    int nparams;
    unsigned int flags;
    int rc;
    char *errmsg;
    int errcode, errdomain;
    gboolean done;
    GMutex lock;
} MigThread;

static gpointer
mig_thread(gpointer data)
{
    MigThread *t = data;
    int rc = virDomainMigrateToURI3(t->dom, t->desturi, t->params, (unsigned)t->nparams, t->flags);
    g_mutex_lock(&t->lock);
    t->rc = rc;
    if (rc < 0) {
        virErrorPtr e = virGetLastError();
        t->errmsg = g_strdup(e && e->message ? e->message : "unknown libvirt error");
        t->errcode = e ? e->code : 0;
        t->errdomain = e ? e->domain : 0;
    }
    t->done = TRUE;
    g_mutex_unlock(&t->lock);
    return NULL;
}

static gboolean
mig_thread_done(MigThread *t)
{
    g_mutex_lock(&t->lock);
    gboolean done = t->done;
    g_mutex_unlock(&t->lock);
    return done;
}

/* as the qmp transport: switch as soon as the memory stream runs. Not
 * before: while libvirt still mirrors the disks (VM + storage; memory
 * total 0) QEMU refuses the switch or libvirt holds the call until the
 * migration has ended, and the progress loop with it (no progress, no
 * cancel). The journal write that follows is checked: when it fails, the
 * failure is returned once the migration (which cannot go back) ends. */
static void
lv_maybe_postcopy(LvLive *l, const KvmLiveStats *st, unsigned long long mem_total, GError **journal)
{
    if (!l->t.postcopy || l->switched || mem_total == 0)
        return;
    g_autofree char *why = NULL;
    /* armed: the same live rule as the qmp transport; requested or
     * measured: after a short head start */
    if (l->t.postcopy_live ? !kvm_tuning_switch_now(&l->t, st, &why)
                           : g_get_monotonic_time() - l->t0 < 200000)
        return;
    if (virDomainMigrateStartPostCopy(l->d, 0) != 0) {
        vmshift_job_log(l->job, VMSHIFT_LOG_DEBUG, "virDomainMigrateStartPostCopy: %s",
                        virGetLastErrorMessage());
        return;
    }
    l->switched = TRUE;
    if (!*journal)
        vmshift_job_save(l->job, "stage", "postcopy", journal);
    g_autofree char *when = g_strdup_printf("after %" G_GINT64_FORMAT " ms",
                                            (g_get_monotonic_time() - l->t0) / 1000);
    vmshift_job_set_result(l->job, "postcopy", when);
    if (why)
        vmshift_job_set_result(l->job, "postcopy-reason", why);
    vmshift_job_log(l->job, VMSHIFT_LOG_INFO, "switched to post-copy %s%s%s", when, why ? ": " : "",
                    why ? why : "");
}

/* downtime-limit: libvirt has no migration parameter for it; it is set on
 * the running migration job (virDomainMigrateSetMaxDowntime), once */
static void
lv_maybe_downtime(LvLive *l, int type)
{
    if (!l->opts.downtime_limit_ms || l->downtime_set || type != VIR_DOMAIN_JOB_UNBOUNDED)
        return;
    if (virDomainMigrateSetMaxDowntime(l->d, l->t.downtime_limit_ms, 0) == 0) {
        l->downtime_set = TRUE;
        vmshift_job_log(l->job, VMSHIFT_LOG_INFO, "downtime limit %" G_GUINT64_FORMAT " ms",
                        l->t.downtime_limit_ms);
    } else {
        vmshift_job_log(l->job, VMSHIFT_LOG_DEBUG, "virDomainMigrateSetMaxDowntime: %s",
                        virGetLastErrorMessage());
    }
}

/* one look at the running migration: progress, downtime, post-copy */
static void
lv_poll(LvLive *l, gboolean aborted, GError **journal)
{
    int type = 0, np = 0;
    virTypedParameterPtr jp = NULL;
    if (virDomainGetJobStats(l->d, &type, &jp, &np, 0) != 0)
        return;
    unsigned long long proc = 0, total = 0, rem = 0, mem_total = 0, iter = 0, mem_rem = 0,
                       mem_proc = 0, elapsed = 0, bps = 0;
    virTypedParamsGetULLong(jp, np, VIR_DOMAIN_JOB_DATA_PROCESSED, &proc);
    virTypedParamsGetULLong(jp, np, VIR_DOMAIN_JOB_DATA_TOTAL, &total);
    virTypedParamsGetULLong(jp, np, VIR_DOMAIN_JOB_DATA_REMAINING, &rem);
    virTypedParamsGetULLong(jp, np, VIR_DOMAIN_JOB_DISK_PROCESSED, &l->disk_seen);
    virTypedParamsGetULLong(jp, np, VIR_DOMAIN_JOB_MEMORY_TOTAL, &mem_total);
    virTypedParamsGetULLong(jp, np, VIR_DOMAIN_JOB_MEMORY_ITERATION, &iter);
    virTypedParamsGetULLong(jp, np, VIR_DOMAIN_JOB_MEMORY_REMAINING, &mem_rem);
    virTypedParamsGetULLong(jp, np, VIR_DOMAIN_JOB_MEMORY_PROCESSED, &mem_proc);
    virTypedParamsGetULLong(jp, np, VIR_DOMAIN_JOB_TIME_ELAPSED, &elapsed);
    virTypedParamsGetULLong(jp, np, VIR_DOMAIN_JOB_MEMORY_BPS, &bps);
    virTypedParamsFree(jp, np);
    /* libvirt's "iteration" is QEMU's dirty-sync-count */
    KvmLiveStats st = { .elapsed_ms = (gint64)elapsed,
                        .passes = (gint64)iter,
                        .remaining = mem_rem,
                        .transferred = mem_proc,
                        .total = mem_total,
                        .bytes_per_s = bps };
    if (total) {
        vmshift_job_set_bytes(l->job, proc, proc + rem);
        vmshift_job_set_progress(l->job, 100.0 * (double)(total - MIN(rem, total)) / (double)total);
    }
    if (aborted)
        return;
    lv_maybe_downtime(l, type);
    lv_maybe_postcopy(l, &st, mem_total, journal);
}

/* the error of a failed migration; libvirt rolls a failed peer-to-peer
 * migration back: say where the VM is */
static gboolean
lv_mig_failed(LvLive *l, MigThread *t, gboolean aborted, GError **error)
{
    const VmshiftMigrationSpec *spec = l->spec;
    if (aborted)
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_CANCELLED, "migration of VM %s cancelled",
                    spec->vm);
    else
        /* the connection lost (an RPC error: closed, keepalive timeout):
         * what libvirtd did is unknown; the host asks the backend again */
        g_set_error(error, VMSHIFT_ERROR,
                    t->errcode == VIR_ERR_SYSTEM_ERROR || t->errdomain == VIR_FROM_RPC
                        ? VMSHIFT_ERROR_CONNECTION
                    : t->errcode == VIR_ERR_MIGRATE_UNSAFE ? VMSHIFT_ERROR_CONFLICT
                                                           : VMSHIFT_ERROR_FAILED,
                    "libvirt migration of VM %s from %s to %s failed: %s%s", spec->vm, l->src->name,
                    l->dst->name, t->errmsg,
                    t->errcode == VIR_ERR_MIGRATE_UNSAFE
                        ? " (give the disks cache mode 'none' on shared storage, or "
                          "accept the risk with --force)"
                        : "");
    /* the call's connection was lost: libvirtd may still run the
     * migration, or have finished it; nothing is rolled back (the new
     * volumes may be the VM's by now) and the host asks where it is */
    l->lost = !aborted && (t->errcode == VIR_ERR_SYSTEM_ERROR || t->errdomain == VIR_FROM_RPC);
    if (l->lost) {
        vmshift_job_log(l->job, VMSHIFT_LOG_WARNING,
                        "lost the connection to host %s during the migration: nothing rolled "
                        "back; 'vmshift job repair' finds where the VM is",
                        l->src->name);
        return FALSE;
    }
    int st = 0;
    if (virDomainGetState(l->d, &st, NULL, 0) == 0 && st == VIR_DOMAIN_RUNNING)
        vmshift_job_set_location(l->job, l->src->name, "running (migration rolled back)");
    lv_save_rolled_back(l->job);
    return FALSE;
}

/* runs the migration on a thread of its own and watches it: progress,
 * cancel (virDomainAbortJob, before a post-copy switch), post-copy */
static gboolean
lv_mig_run(LvLive *l, GError **error)
{
    GCancellable *cancel = vmshift_job_get_cancellable(l->job);
    /* the call runs on a connection of its own (lv_conn_open_extra) */
    virConnectPtr mc = lv_conn_open_extra(l->b, l->src, error);
    if (!mc)
        return FALSE;
    unsigned char uuid[VIR_UUID_BUFLEN];
    virDomainPtr md = virDomainGetUUID(l->d, uuid) == 0 ? virDomainLookupByUUID(mc, uuid) : NULL;
    if (!md) {
        lv_error(error, VMSHIFT_ERROR_NOT_FOUND, "VM %s on host %s", virDomainGetName(l->d),
                 l->src->name);
        virConnectClose(mc);
        return FALSE;
    }
    MigThread t = { .dom = md,
                    .desturi = l->dst->migration_uri,
                    .params = l->params->p,
                    .nparams = l->params->n,
                    .flags = l->flags };
    g_mutex_init(&t.lock);
    l->t0 = g_get_monotonic_time();
    GThread *th = g_thread_new("kvm-lv-migrate", mig_thread, &t);
    gboolean aborted = FALSE;
    g_autoptr(GError) journal = NULL;
    while (!mig_thread_done(&t)) {
        if (!aborted && !l->switched && g_cancellable_is_cancelled(cancel)) {
            aborted = TRUE;
            if (virDomainAbortJob(l->d) < 0)
                vmshift_job_log(l->job, VMSHIFT_LOG_WARNING, "virDomainAbortJob: %s",
                                virGetLastErrorMessage());
        }
        lv_poll(l, aborted, &journal);
        /* a live post-copy switch reads the first pass's end: look often */
        g_usleep(l->t.postcopy && !l->switched ? 40000 : 200000);
    }
    g_thread_join(th);
    virDomainFree(md);
    virConnectClose(mc);
    gboolean ok = t.rc >= 0 || lv_mig_failed(l, &t, aborted, error);
    g_free(t.errmsg);
    g_mutex_clear(&t.lock);
    if (ok && journal) {
        g_propagate_error(error, g_steal_pointer(&journal));
        return FALSE;
    }
    return ok;
}

static void
lv_result_ull(VmshiftJob *job, const char *key, unsigned long long v)
{
    g_autofree char *s = g_strdup_printf("%llu", v);
    vmshift_job_set_result(job, key, s);
}

/* the figures of the completed job on the destination */
static void
lv_report_stats(LvLive *l, virDomainPtr dd)
{
    int type = 0, np = 0;
    virTypedParameterPtr jp = NULL;
    if (virDomainGetJobStats(dd, &type, &jp, &np, VIR_DOMAIN_JOB_STATS_COMPLETED) == 0) {
        unsigned long long v = 0;
        if (virTypedParamsGetULLong(jp, np, VIR_DOMAIN_JOB_TIME_ELAPSED, &v) == 1)
            lv_result_ull(l->job, "total-time-ms", v);
        if (virTypedParamsGetULLong(jp, np, VIR_DOMAIN_JOB_DOWNTIME, &v) == 1)
            lv_result_ull(l->job, "downtime-ms", v);
        if (virTypedParamsGetULLong(jp, np, VIR_DOMAIN_JOB_DATA_PROCESSED, &v) == 1)
            lv_result_ull(l->job, "transferred-bytes", v);
        if (l->moves->len
            && virTypedParamsGetULLong(jp, np, VIR_DOMAIN_JOB_DISK_PROCESSED, &v) == 1)
            l->disk_seen = MAX(l->disk_seen, v);
        virTypedParamsFree(jp, np);
    }
    if (l->disk_seen)
        lv_result_ull(l->job, "disk-bytes", l->disk_seen);
    lv_result_ull(l->job, "wall-time-ms",
                  (unsigned long long)((g_get_monotonic_time() - l->t0) / 1000));
}

/* after libvirt's success: the VM runs on the destination; the source's
 * images go only now (the VM runs on the copies) */
static gboolean
lv_mig_done(LvLive *l, GError **error)
{
    if (!vmshift_job_save(l->job, "stage", "completed", error)
        || !vmshift_job_set_phase(l->job, VMSHIFT_PHASE_SWITCHOVER, error))
        return FALSE;
    g_autoptr(virDomain) dd = virDomainLookupByName(l->dst->conn, l->spec->vm);
    int st = 0;
    if (!dd || virDomainGetState(dd, &st, NULL, 0) < 0 || st != VIR_DOMAIN_RUNNING) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_FAILED,
                    "VM %s is not running on host %s after the migration", l->spec->vm,
                    l->dst->name);
        return FALSE;
    }
    vmshift_job_set_location(l->job, l->dst->name, "running");
    lv_report_stats(l, dd);
    if (!vmshift_job_set_phase(l->job, VMSHIFT_PHASE_CLEANUP, error))
        return FALSE;
    if (l->moves->len) {
        lv_delete_moves(l->job, l->pools, l->src, l->moves, FALSE, FALSE);
        g_autofree char *res = lv_moved_disks(l->moves, l->dst);
        vmshift_job_set_result(l->job, "disks", res);
    }
    return vmshift_job_save(l->job, "stage", "done", error);
}

/* the destination host, the journal, the tuning, the definitions */
static gboolean
lv_live_prepare(LvLive *l, GError **error)
{
    const VmshiftMigrationSpec *spec = l->spec;
    if (!spec->dest_host) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_INVALID_ARGUMENT,
                    "live migration of VM %s: no destination host", spec->vm);
        return FALSE;
    }
    if (!(l->dst = lv_find_host(l->b, spec->dest_host, error)))
        return FALSE;
    if (l->dst == l->src) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_INVALID_ARGUMENT,
                    "VM %s already is on host %s", spec->vm, l->src->name);
        return FALSE;
    }
    if (!vmshift_job_save(l->job, "vm", virDomainGetName(l->d), error)
        || !vmshift_job_save(l->job, "src-host", l->src->name, error)
        || !vmshift_job_save(l->job, "dst-host", l->dst->name, error)
        || !vmshift_job_save(l->job, "transport", "libvirt", error))
        return FALSE;
    if (vmshift_migration_spec_moves_storage(spec) && !lv_plan_live_moves(l, error))
        return FALSE;
    if (!lv_decide(l, error))
        return FALSE;
    lv_apply_tuning(l);
    if (!lv_dest_params(l, error))
        return FALSE;
    lv_report_tuning(l);
    return TRUE;
}

/* libvirt rolled the migration back (and killed the destination's
 * QEMU): the volumes made for it go */
static void
lv_live_rollback(LvLive *l)
{
    if (!l->dst)
        return;
    lv_delete_moves(l->job, l->pools, l->dst, l->moves, TRUE, TRUE);
    lv_pools_unbuild(l->pools, l->dst);
}

gboolean
lv_live_migrate(KvmBackend *b, const VmshiftMigrationSpec *spec, VmshiftJob *job, virDomainPtr d,
                LvHost *src, GError **error)
{
    GCancellable *cancel = vmshift_job_get_cancellable(job);
    g_autoptr(GPtrArray) moves = g_ptr_array_new_with_free_func((GDestroyNotify)lv_move_free);
    g_autoptr(GPtrArray) pools = g_ptr_array_new_with_free_func((GDestroyNotify)lv_pool_free);
    g_auto(LvParams) params = { 0 };
    LvLive l = { .b = b,
                 .spec = spec,
                 .job = job,
                 .d = d,
                 .src = src,
                 .moves = moves,
                 .pools = pools,
                 .params = &params };
    vmshift_job_set_location(job, src->name, "running");
    gboolean ok = lv_live_prepare(&l, error) && !g_cancellable_set_error_if_cancelled(cancel, error)
                  && vmshift_job_set_phase(job, VMSHIFT_PHASE_PREPARE, error)
                  && (!moves->len || lv_precreate(&l, error))
                  && !g_cancellable_set_error_if_cancelled(cancel, error)
                  && vmshift_job_set_phase(job, VMSHIFT_PHASE_TRANSFER, error)
                  && vmshift_job_save(job, "stage", "transfer", error);
    if (ok) {
        vmshift_job_set_location(job, src->name,
                                 l.t.paused ? "paused by libvirt for the "
                                              "transfer"
                                            : "running, migrating");
        ok = lv_mig_run(&l, error);
    }
    kvm_tuning_clear(&l.t);
    if (!ok && !l.switched) {
        if (!l.lost)
            lv_live_rollback(&l);
        return FALSE;
    }
    /* migrated (or in post-copy, which cannot go back) */
    return ok && lv_mig_done(&l, error)
           && lv_verify_move(b, spec, job, virDomainGetName(d), l.dst, TRUE, error);
}

gboolean
kvm_libvirt_migrate(KvmBackend *b, const VmshiftMigrationSpec *spec, VmshiftJob *job,
                    GError **error)
{
    if (!vmshift_job_set_phase(job, VMSHIFT_PHASE_VALIDATE, error))
        return FALSE;
    if (spec->type != VMSHIFT_MIGRATION_STORAGE && spec->type != VMSHIFT_MIGRATION_COLD
        && spec->type != VMSHIFT_MIGRATION_LIVE) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_NOT_SUPPORTED,
                    "the libvirt transport of the kvm plugin does not know migration type %u",
                    spec->type);
        return FALSE;
    }
    LvHost *src = NULL;
    g_autoptr(virDomain) d = lv_locate(b, spec->vm, &src, error);
    if (!d)
        return FALSE;
    if (spec->type == VMSHIFT_MIGRATION_STORAGE)
        return lv_storage_migrate(spec, job, d, src, error);
    if (spec->type == VMSHIFT_MIGRATION_COLD)
        return lv_cold_migrate(b, spec, job, d, src, error);
    return lv_live_migrate(b, spec, job, d, src, error);
}
