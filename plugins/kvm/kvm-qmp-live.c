/* vmshift KVM plugin, qmp transport: live host migration (RAM over QEMU's
 * migration stream, disks mirrored over NBD when they move), tuned by
 * kvm-tuning.c. */
#include "config.h"

#include <string.h>

#include "kvm-qmp.h"

static json_object *
jobj(const char *json)
{
    return json_tokener_parse(json);
}

/* Unique MiB the guest dirties per second (QEMU's page-sampling estimate). */
static gint64
measure_dirty_rate(KvmMig *m, GError **error)
{
    if (!vmshift_qmp_execute_simple(m->sq, "calc-dirty-rate", jobj("{\"calc-time\": 1}"),
                                    QMP_CMD_TIMEOUT, error))
        return -1;
    gint64 until = g_get_monotonic_time() + 10 * G_USEC_PER_SEC;
    g_usleep(1000000);
    while (g_get_monotonic_time() < until) {
        json_object *r = vmshift_qmp_execute(m->sq, "query-dirty-rate", NULL, QMP_CMD_TIMEOUT,
                                             error);
        if (!r)
            return -1;
        gboolean measured = g_strcmp0(vmshift_json_get_string(r, "status"), "measured") == 0;
        gint64 rate = vmshift_json_get_int(r, "dirty-rate", -1);
        json_object_put(r);
        if (measured)
            return rate;
        if (g_cancellable_set_error_if_cancelled(m->cancel, error))
            return -1;
        g_usleep(100000);
    }
    g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_TIMEOUT,
                "VM %s: dirty-rate measurement did not finish", m->sdef->name);
    return -1;
}

/* TCG (query-kvm: not enabled) and the major version of the QEMU that
 * runs the source VM; FALSE when QEMU does not say. */
static gboolean
source_qemu(KvmMig *m, gboolean *tcg, int *major)
{
    json_object *k = vmshift_qmp_execute(m->sq, "query-kvm", NULL, QMP_CMD_TIMEOUT, NULL);
    json_object *v = vmshift_qmp_execute(m->sq, "query-version", NULL, QMP_CMD_TIMEOUT, NULL);
    json_object *q = NULL, *mj = NULL, *en = NULL;
    gboolean ok = k && v && json_object_object_get_ex(k, "enabled", &en)
                  && json_object_object_get_ex(v, "qemu", &q)
                  && json_object_object_get_ex(q, "major", &mj);
    if (ok) {
        *tcg = !json_object_get_boolean(en);
        *major = json_object_get_int(mj);
    }
    if (k)
        json_object_put(k);
    if (v)
        json_object_put(v);
    return ok;
}

static gboolean
set_caps_ex(VmshiftQmp *q, const KvmTuning *t, gboolean dest, gboolean late_activate,
            GError **error)
{
    json_object *caps = json_object_new_array();
#define CAP(n, v)                                                                 \
    do {                                                                          \
        json_object *c = json_object_new_object();                                \
        json_object_object_add(c, "capability", json_object_new_string(n));       \
        json_object_object_add(c, "state", json_object_new_boolean((v) ? 1 : 0)); \
        json_object_array_add(caps, c);                                           \
    } while (0)
    CAP("events", TRUE);
    CAP("multifd", t->multifd);
    CAP("postcopy-ram", t->postcopy);
    CAP("auto-converge", t->autoconverge && !dest);
    /* disks arriving over NBD: the destination must not take its images
     * over before `cont` (the mirrors are still finishing), as libvirt does */
    if (dest)
        CAP("late-block-activate", late_activate);
#undef CAP
    json_object *args = json_object_new_object();
    json_object_object_add(args, "capabilities", caps);
    if (!vmshift_qmp_execute_simple(q, "migrate-set-capabilities", args, QMP_CMD_TIMEOUT, error))
        return FALSE;
    json_object *p = json_object_new_object();
    if (t->multifd)
        json_object_object_add(p, "multifd-channels", json_object_new_int64(t->channels));
    if (!dest) {
        json_object_object_add(p, "max-bandwidth", json_object_new_int64((gint64)t->max_bandwidth));
        json_object_object_add(p, "downtime-limit",
                               json_object_new_int64((gint64)t->downtime_limit_ms));
        /* a cap holds for the post-copy phase too (QEMU's own default
         * there is unlimited) */
        if (t->postcopy && t->max_bandwidth < KVM_TUNING_LIFTED_BANDWIDTH)
            json_object_object_add(p, "max-postcopy-bandwidth",
                                   json_object_new_int64((gint64)t->max_bandwidth));
    }
    return vmshift_qmp_execute_simple(q, "migrate-set-parameters", p, QMP_CMD_TIMEOUT, error);
}

static gboolean
set_caps(VmshiftQmp *q, const KvmTuning *t, gboolean dest, GError **error)
{
    return set_caps_ex(q, t, dest, FALSE, error);
}

/* ---- live migration ---------------------------------------------------- */

/* A migration from a paused source leaves the destination paused too (it
 * takes the source's run state): resume it. @running (may be NULL) tells
 * whether it already ran when asked. */
static gboolean
resume_destination(KvmMig *m, gboolean *running, GError **error)
{
    json_object *r = vmshift_qmp_execute(m->dq, "query-status", NULL, QMP_CMD_TIMEOUT, error);
    if (!r) {
        g_prefix_error(error, "destination QEMU on host %s: ", m->dst->name);
        return FALSE;
    }
    const char *st = vmshift_json_get_string(r, "status");
    gboolean paused = !g_strcmp0(st, "paused");
    if (running)
        *running = !g_strcmp0(st, "running");
    json_object_put(r);
    if (paused && !vmshift_qmp_execute_simple(m->dq, "cont", NULL, QMP_CMD_TIMEOUT, error)) {
        g_prefix_error(error, "destination QEMU on host %s: ", m->dst->name);
        return FALSE;
    }
    return TRUE;
}

static gboolean
wait_dest_running(KvmMig *m, GError **error)
{
    gint64 until = g_get_monotonic_time() + 30 * G_USEC_PER_SEC;
    for (;;) {
        json_object *r = vmshift_qmp_execute(m->dq, "query-status", NULL, QMP_CMD_TIMEOUT, error);
        if (!r) {
            g_prefix_error(error, "destination QEMU on host %s: ", m->dst->name);
            return FALSE;
        }
        g_autofree char *st = g_strdup(vmshift_json_get_string(r, "status"));
        json_object_put(r);
        if (g_strcmp0(st, "running") == 0)
            return TRUE;
        if (g_get_monotonic_time() > until) {
            g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_FAILED,
                        "VM %s on host %s is '%s', not running, after the migration", m->ddef->name,
                        m->dst->name, st);
            return FALSE;
        }
        g_usleep(m->src_paused ? 5000 : 50000);
    }
}

/*
 * The source's final query-migrate. QEMU 7.2 sets "completed" before its
 * migration thread has computed the totals (migration_calculate_complete
 * runs once the thread re-takes the big lock), so the first answers may
 * carry zero times: ask until total-time is set, for up to 2 s, instead of
 * sleeping a fixed time.
 */
static json_object *
final_stats(VmshiftQmp *q)
{
    gint64 until = g_get_monotonic_time() + 2 * G_USEC_PER_SEC;
    for (;;) {
        json_object *r = vmshift_qmp_execute(q, "query-migrate", NULL, QMP_CMD_TIMEOUT, NULL);
        if (!r || vmshift_json_get_int(r, "total-time", 0) > 0 || g_get_monotonic_time() > until)
            return r;
        json_object_put(r);
        g_usleep(20000);
    }
}

static void
report_stats(KvmMig *m, json_object *r, gint64 wall_ms)
{
    char *v;
#define RES(key, fmt, val)                  \
    v = g_strdup_printf(fmt, val);          \
    vmshift_job_set_result(m->job, key, v); \
    g_free(v)
    RES("total-time-ms", "%" G_GINT64_FORMAT, vmshift_json_get_int(r, "total-time", -1));
    RES("downtime-ms", "%" G_GINT64_FORMAT, vmshift_json_get_int(r, "downtime", -1));
    RES("setup-time-ms", "%" G_GINT64_FORMAT, vmshift_json_get_int(r, "setup-time", -1));
    RES("transferred-bytes", "%" G_GINT64_FORMAT, vmshift_json_get_int(r, "ram/transferred", -1));
    RES("dirty-sync-count", "%" G_GINT64_FORMAT,
        vmshift_json_get_int(r, "ram/dirty-sync-count", -1));
    RES("wall-time-ms", "%" G_GINT64_FORMAT, wall_ms);
#undef RES
}

/* Logs the progress of query-migrate answer @r, sets the job's bytes. */
static void
follow_progress(KvmMig *m, json_object *r, const char *status, gint64 now, gint64 *last_log)
{
    guint64 sent = (guint64)vmshift_json_get_int(r, "ram/transferred", 0);
    guint64 remaining = (guint64)vmshift_json_get_int(r, "ram/remaining", 0);
    guint64 total = (guint64)vmshift_json_get_int(r, "ram/total", 0);
    gint64 syncs = vmshift_json_get_int(r, "ram/dirty-sync-count", 0);
    if (total) {
        vmshift_job_set_bytes(m->job, sent, sent + remaining);
        vmshift_job_set_progress(m->job,
                                 100.0 * (double)(total - MIN(remaining, total)) / (double)total);
    }
    if (now - *last_log > G_USEC_PER_SEC) {
        *last_log = now;
        vmshift_job_log(m->job, VMSHIFT_LOG_DEBUG,
                        "migration %s: %" G_GUINT64_FORMAT " MiB sent, %" G_GUINT64_FORMAT
                        " MiB remaining, dirty %" G_GINT64_FORMAT " pages/s, expected "
                        "downtime %" G_GINT64_FORMAT " ms, pass %" G_GINT64_FORMAT,
                        status, sent >> 20, remaining >> 20,
                        vmshift_json_get_int(r, "ram/dirty-pages-rate", 0),
                        vmshift_json_get_int(r, "expected-downtime", -1), syncs);
    }
}

/* Switches a migration that runs to post-copy (@why: the rule that chose
 * the moment, may be NULL). From here the destination runs and pulls the
 * pages it touches. */
static gboolean
start_postcopy(KvmMig *m, gint64 after_us, const char *why, GError **error)
{
    if (!vmshift_qmp_execute_simple(m->sq, "migrate-start-postcopy", NULL, QMP_CMD_TIMEOUT, error))
        return FALSE;
    kvm_mig_save_late(m, "stage", "postcopy");
    g_autofree char *when = g_strdup_printf("after %" G_GINT64_FORMAT " ms", after_us / 1000);
    vmshift_job_set_result(m->job, "postcopy", when);
    if (why)
        vmshift_job_set_result(m->job, "postcopy-reason", why);
    vmshift_job_log(m->job, VMSHIFT_LOG_INFO, "switched to post-copy %s%s%s", when, why ? ": " : "",
                    why ? why : "");
    vmshift_job_set_location(m->job, m->dst->name,
                             "running (post-copy, pages "
                             "still arriving from the source)");
    return TRUE;
}

/* The statistics kvm_tuning_switch_now() reads, from query-migrate @r. */
static KvmLiveStats
live_stats(json_object *r, gint64 elapsed_us)
{
    return (KvmLiveStats){
        .elapsed_ms = elapsed_us / 1000,
        .passes = vmshift_json_get_int(r, "ram/dirty-sync-count", 0),
        .remaining = (guint64)MAX(vmshift_json_get_int(r, "ram/remaining", 0), 0),
        .transferred = (guint64)MAX(vmshift_json_get_int(r, "ram/transferred", 0), 0),
        .total = (guint64)MAX(vmshift_json_get_int(r, "ram/total", 0), 0),
    };
}

/* TRUE when the migration (status @status, statistics @r) should switch to
 * post-copy now; *@why says why (to be freed). */
static gboolean
postcopy_due(KvmMig *m, json_object *r, const char *status, gint64 elapsed_us, char **why)
{
    *why = NULL;
    /* a paused source switches at once (live_transfer already asked):
     * nothing runs on it that a head start could catch up with */
    if (m->t.paused)
        return !g_strcmp0(status, "setup") || !g_strcmp0(status, "active");
    if (g_strcmp0(status, "active"))
        return FALSE;
    if (m->t.postcopy_live) {
        KvmLiveStats st = live_stats(r, elapsed_us);
        return kvm_tuning_switch_now(&m->t, &st, why);
    }
    /* requested or measured: a short head start moves zero pages cheaply */
    return elapsed_us >= 200000;
}

static gboolean
follow_loop(KvmMig *m, gint64 t_start, gboolean postcopy_started, GError **error)
{
    gboolean cancel_requested = FALSE;
    gint64 last_query = 0, last_log = 0;
    g_autofree char *status = NULL;
    for (;;) {
        if (!cancel_requested && g_cancellable_is_cancelled(m->cancel)) {
            cancel_requested = TRUE;
            if (postcopy_started || g_strcmp0(status, "device") == 0
                || g_strcmp0(status, "completed") == 0) {
                vmshift_job_log(m->job, VMSHIFT_LOG_WARNING,
                                "cancellation came too late: the migration is past the "
                                "point of no return (%s); finishing it",
                                postcopy_started ? "post-copy" : status);
            } else if (!vmshift_qmp_execute_simple(m->sq, "migrate_cancel", NULL, QMP_CMD_TIMEOUT,
                                                   error)) {
                return FALSE;
            } else {
                vmshift_job_log(m->job, VMSHIFT_LOG_INFO, "migrate_cancel sent");
            }
        }
        /* a paused source in post-copy: the guest runs again as soon as
         * the destination does, which is the end of its downtime */
        gboolean running = FALSE;
        if (postcopy_started && m->src_paused && !m->t_resumed
            && resume_destination(m, &running, NULL) && running)
            m->t_resumed = g_get_monotonic_time();
        GError *local = NULL;
        gboolean fast = (m->t.postcopy && !postcopy_started)
                        || (postcopy_started && m->src_paused && !m->t_resumed);
        VmshiftQmpEvent *ev = vmshift_qmp_next_event(m->sq, fast ? (m->src_paused ? 5 : 20) : 100,
                                                     &local);
        if (local) {
            g_propagate_prefixed_error(error, local, "source QEMU on host %s: ", m->src->name);
            return FALSE;
        }
        /* a status change, or the end of a pass (the statistics a live
         * post-copy switch reads are fresh right then) */
        gboolean query = ev
                         && (!strcmp(ev->name, "MIGRATION") || !strcmp(ev->name, "MIGRATION_PASS"));
        vmshift_qmp_event_free(ev);
        gint64 now = g_get_monotonic_time();
        /* poll fast while a post-copy switch is due, gently otherwise */
        gint64 period = fast ? (m->src_paused ? 5000 : 40000) : 250000;
        if (!query && now - last_query < period)
            continue;
        last_query = now;
        json_object *r = vmshift_qmp_execute(m->sq, "query-migrate", NULL, QMP_CMD_TIMEOUT, error);
        if (!r)
            return FALSE;
        g_free(status);
        status = g_strdup(vmshift_json_get_string(r, "status"));
        follow_progress(m, r, status, now, &last_log);
        if (!g_strcmp0(status, "completed")) {
            json_object_put(r);
            return TRUE;
        }
        if (!g_strcmp0(status, "failed") || !g_strcmp0(status, "cancelled")) {
            const char *desc = vmshift_json_get_string(r, "error-desc");
            if (!g_strcmp0(status, "cancelled") && cancel_requested)
                g_set_error(error, G_IO_ERROR, G_IO_ERROR_CANCELLED, "migration of VM %s cancelled",
                            m->sdef->name);
            else
                g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_FAILED,
                            "migration of VM %s from host %s to %s %s: %s", m->sdef->name,
                            m->src->name, m->dst->name, status,
                            desc ? desc : "no reason given (destination gone?)");
            json_object_put(r);
            return FALSE;
        }
        g_autofree char *why = NULL;
        if (m->t.postcopy && !postcopy_started && !cancel_requested
            && postcopy_due(m, r, status, now - t_start, &why)) {
            if (!start_postcopy(m, now - t_start, why, error)) {
                json_object_put(r);
                return FALSE;
            }
            postcopy_started = TRUE;
        }
        json_object_put(r);
    }
}

/* Follows the source's migration to an end state. */
static gboolean
follow_migration(KvmMig *m, gint64 t_start, gboolean switched, GError **error)
{
    vmshift_qmp_set_cancellable(m->sq, NULL); /* we poll the cancellable */
    gboolean ok = follow_loop(m, t_start, switched, error);
    vmshift_qmp_set_cancellable(m->sq, m->cancel);
    return ok;
}

static gboolean
prepare_destination(KvmMig *m, KvmStartFlags flags, GError **error)
{
    if (!kvm_mig_save(m, "stage", "prepare", error))
        return FALSE;
    if (kvm_vm_is_running(m->dst, m->ddef->name)) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_CONFLICT, "VM %s already runs on host %s",
                    m->ddef->name, m->dst->name);
        return FALSE;
    }
    if (!kvm_mig_check_no_dst_vm(m, error))
        return FALSE;
    m->dst_def_written = TRUE;
    if (!kvm_vm_def_save(m->dst, m->ddef, error))
        return FALSE;
    if (!kvm_vm_start(m->dst, m->ddef, flags, &m->dst_pid, error))
        return FALSE;
    g_autofree char *pid = g_strdup_printf("%" G_GINT64_FORMAT, m->dst_pid);
    if (!kvm_mig_save(m, "dst-pid", pid, error) || !kvm_mig_save(m, "stage", "dst-started", error))
        return FALSE;
    m->dq = kvm_vm_qmp(m->dst, m->ddef->name, m->b->qmp_timeout_ms, m->cancel, error);
    return m->dq != NULL;
}

/* The facts kvm-tuning decides from (the dirty rate measured only when a
 * rule needs it); the decision goes into m->t and the job's results. */
static gboolean
choose_tuning(KvmMig *m, const KvmTuningOptions *o, GError **error)
{
    KvmTuningFacts f = {
        .src_allows_postcopy = m->src->allow_postcopy,
        .dst_allows_postcopy = m->dst->allow_postcopy,
        .src_name = m->src->name,
        .dst_name = m->dst->name,
        .link_mib_s = m->b->link_mib_s,
        .src_max_bw_mib = m->src->max_bw_mib,
        .paused_postcopy = TRUE, /* QMP can switch a paused source to post-copy */
        .dirty_mib_s = -1,
    };
    if (!source_qemu(m, &f.tcg, &f.qemu_major))
        vmshift_job_log(m->job, VMSHIFT_LOG_WARNING,
                        "the source QEMU did not tell its version "
                        "and accelerator (query-version, query-kvm)");
    if (kvm_tuning_needs_dirty_rate(&f, o)) {
        GError *local = NULL;
        f.dirty_mib_s = measure_dirty_rate(m, &local);
        if (f.dirty_mib_s < 0) {
            if (g_error_matches(local, G_IO_ERROR, G_IO_ERROR_CANCELLED)) {
                g_propagate_error(error, local);
                return FALSE;
            }
            vmshift_job_log(m->job, VMSHIFT_LOG_WARNING,
                            "dirty rate not measured (%s); assuming a quiet guest", local->message);
            g_clear_error(&local);
        }
    }
    if (!kvm_tuning_decide(&f, o, &m->t, error))
        return FALSE;
    if (m->t.warn_tcg_live)
        kvm_tuning_warn_tcg_live(m->job, f.qemu_major);
    g_autofree char *sum = kvm_tuning_summary(&m->t);
    kvm_tuning_report(m->job, &m->t, sum);
    return TRUE;
}

/* The source can migrate: it runs (or is paused) and has no migration, or
 * the remains of one, in its QEMU. */
static gboolean
check_source(KvmMig *m, GError **error)
{
    json_object *st = vmshift_qmp_execute(m->sq, "query-status", NULL, QMP_CMD_TIMEOUT, error);
    if (!st)
        return FALSE;
    const char *status = vmshift_json_get_string(st, "status");
    if (g_strcmp0(status, "running") && g_strcmp0(status, "paused")) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_CONFLICT,
                    "VM %s on host %s is '%s': live migration needs it running or paused",
                    m->sdef->name, m->src->name, status);
        json_object_put(st);
        return FALSE;
    }
    json_object_put(st);
    /* QEMU 7.2 leaves the migration's yank instance registered after some
     * failed or cancelled multifd migrations; every later 'migrate' then
     * fails with "duplicate yank instance". Tell it before changing anything. */
    json_object *mq = vmshift_qmp_execute(m->sq, "query-migrate", NULL, QMP_CMD_TIMEOUT, NULL);
    g_autofree char *mst = g_strdup(vmshift_json_get_string(mq, "status"));
    gboolean migrating = mst
                         && (!strcmp(mst, "active") || !strcmp(mst, "setup")
                             || !strcmp(mst, "postcopy-active") || !strcmp(mst, "device"));
    json_object *yank = vmshift_qmp_execute(m->sq, "query-yank", NULL, QMP_CMD_TIMEOUT, NULL);
    gboolean stale = FALSE;
    for (gsize i = 0; yank && i < json_object_array_length(yank); i++)
        if (!g_strcmp0(vmshift_json_get_string(json_object_array_get_idx(yank, i), "type"),
                       "migration"))
            stale = TRUE;
    if (yank)
        json_object_put(yank);
    if (mq)
        json_object_put(mq);
    if (migrating) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_CONFLICT,
                    "VM %s on host %s is already migrating (%s)", m->sdef->name, m->src->name, mst);
        return FALSE;
    }
    if (stale) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_CONFLICT,
                    "VM %s on host %s cannot be migrated again: its QEMU kept the state of an "
                    "earlier failed migration (QEMU 7.2 'duplicate yank instance'); restart "
                    "the VM first",
                    m->sdef->name, m->src->name);
        return FALSE;
    }
    return TRUE;
}

/* The destination's definition: networks mapped, and each disk either at
 * its new path (--path) or reachable where it is. */
static gboolean
plan_destination(KvmMig *m, gboolean moves_storage, GError **error)
{
    m->ddef = kvm_vm_def_copy(m->sdef);
    if (!kvm_mig_map_networks(m, error))
        return FALSE;
    for (guint i = 0; i < m->ddef->disks->len; i++) {
        KvmDiskDef *dk = m->ddef->disks->pdata[i];
        if (moves_storage) {
            const char *dir = vmshift_migration_spec_disk_dir(m->spec, dk->id);
            if (!dir)
                continue;
            char *np = kvm_mig_target_path(dir, dk->path, dk->id, m->ddef->name);
            g_free(dk->path);
            dk->path = np;
        } else if (!kvm_host_exists(m->dst, dk->path)) {
            g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_NOT_FOUND,
                        "host %s does not reach disk %s (%s) of VM %s: give --path to "
                        "move the storage too",
                        m->dst->name, dk->id, dk->path, m->sdef->name);
            return FALSE;
        }
    }
    return TRUE;
}

/* The new images at the destination. */
static gboolean
create_images(KvmMig *m, GError **error)
{
    for (guint i = 0; i < m->ddef->disks->len; i++) {
        KvmDiskDef *dk = m->ddef->disks->pdata[i];
        KvmDiskDef *sk = m->sdef->disks->pdata[i];
        if (strcmp(dk->path, sk->path) && !kvm_mig_new_image(m, m->dst, sk, dk, error))
            return FALSE;
    }
    return TRUE;
}

static json_object *
inet_address(const char *host, int port)
{
    json_object *data = json_object_new_object();
    json_object_object_add(data, "host", json_object_new_string(host));
    g_autofree char *ps = g_strdup_printf("%d", port);
    json_object_object_add(data, "port", json_object_new_string(ps));
    return data;
}

/* Exports disk @dk of the destination over NBD and mirrors source disk
 * @sk into it; the mirror joins @mirrors. */
static gboolean
mirror_disk_nbd(KvmMig *m, int nport, const KvmDiskDef *sk, const KvmDiskDef *dk,
                GPtrArray *mirrors, GError **error)
{
    json_object *e = json_object_new_object();
    json_object_object_add(e, "type", json_object_new_string("nbd"));
    json_object_object_add(e, "id", json_object_new_string(dk->id));
    json_object_object_add(e, "node-name", json_object_new_string(dk->id));
    json_object_object_add(e, "writable", json_object_new_boolean(1));
    if (!vmshift_qmp_execute_simple(m->dq, "block-export-add", e, QMP_CMD_TIMEOUT, error))
        return FALSE;
    /* the NBD node is the raw target: mirror straight into it */
    KvmMirror *x = kvm_mirror_new(m->sq, sk, dk->path, mirrors, error);
    if (!x)
        return FALSE;
    json_object *srv = inet_address(m->dst->migration_address, nport);
    json_object_object_add(srv, "type", json_object_new_string("inet"));
    json_object *f = json_object_new_object();
    json_object_object_add(f, "driver", json_object_new_string("nbd"));
    json_object_object_add(f, "server", srv);
    json_object_object_add(f, "export", json_object_new_string(dk->id));
    x->new_node = g_strdup_printf("%s-nbd", sk->id);
    json_object_object_add(f, "node-name", json_object_new_string(x->new_node));
    if (!vmshift_qmp_execute_simple(m->sq, "blockdev-add", f, QMP_CMD_TIMEOUT, error)) {
        g_clear_pointer(&x->new_node, g_free);
        return FALSE;
    }
    if (!kvm_mirror_run(m->sq, x, error))
        return FALSE;
    vmshift_job_log(m->job, VMSHIFT_LOG_INFO, "mirroring disk %s to %s:%s over NBD", sk->id,
                    m->dst->name, dk->path);
    return TRUE;
}

/* An NBD server in the destination QEMU, and a mirror into it of every
 * disk that moves. */
static gboolean
start_nbd_mirrors(KvmMig *m, GPtrArray *mirrors, GError **error)
{
    int nport = kvm_host_pick_port(m->dst);
    json_object *addr = json_object_new_object();
    json_object_object_add(addr, "type", json_object_new_string("inet"));
    json_object_object_add(addr, "data", inet_address(m->dst->migration_address, nport));
    json_object *a = json_object_new_object();
    json_object_object_add(a, "addr", addr);
    if (!vmshift_qmp_execute_simple(m->dq, "nbd-server-start", a, QMP_CMD_TIMEOUT, error))
        return FALSE;
    for (guint i = 0; i < m->ddef->disks->len; i++) {
        KvmDiskDef *dk = m->ddef->disks->pdata[i];
        KvmDiskDef *sk = m->sdef->disks->pdata[i];
        if (strcmp(dk->path, sk->path) && !mirror_disk_nbd(m, nport, sk, dk, mirrors, error))
            return FALSE;
    }
    return TRUE;
}

/* The destination listens (migrate-incoming) on a free port: @port. */
static gboolean
listen_incoming(KvmMig *m, int *port, GError **error)
{
    GError *local = NULL;
    for (int attempt = 0; attempt < 5; attempt++) {
        *port = kvm_host_pick_port(m->dst);
        g_autofree char *uri = g_strdup_printf("tcp:%s:%d", m->dst->migration_address, *port);
        json_object *a = json_object_new_object();
        json_object_object_add(a, "uri", json_object_new_string(uri));
        g_clear_error(&local);
        if (vmshift_qmp_execute_simple(m->dq, "migrate-incoming", a, QMP_CMD_TIMEOUT, &local))
            return TRUE;
        if (!strstr(local->message, "in use"))
            break;
    }
    g_propagate_error(error, local);
    return FALSE;
}

/* Validate and prepare: the destination QEMU waits for the stream. */
static gboolean
live_prepare(KvmMig *m, gboolean moves_storage, GPtrArray *mirrors, int *port, GError **error)
{
    KvmTuningOptions opts;
    if (!kvm_tuning_read_options(m->spec->options, &opts, error))
        return FALSE;
    m->sq = kvm_vm_qmp(m->src, m->sdef->name, m->b->qmp_timeout_ms, m->cancel, error);
    if (!m->sq || !check_source(m, error) || !plan_destination(m, moves_storage, error)
        || !choose_tuning(m, &opts, error) || kvm_mig_check_cancel(m, error))
        return FALSE;
    if (!kvm_mig_phase(m, VMSHIFT_PHASE_PREPARE, error))
        return FALSE;
    if (moves_storage && !create_images(m, error))
        return FALSE;
    /* with disks to mirror the destination stays paused until they are in */
    if (!prepare_destination(m, KVM_START_INCOMING | (moves_storage ? KVM_START_PAUSED : 0), error))
        return FALSE;
    if (!set_caps(m->sq, &m->t, FALSE, error)
        || !set_caps_ex(m->dq, &m->t, TRUE, moves_storage, error))
        return FALSE;
    if (moves_storage && !start_nbd_mirrors(m, mirrors, error))
        return FALSE;
    return listen_incoming(m, port, error);
}

/* `migrate` is never sent twice: when its reply did not come in time (a
 * timeout, not an error reply), QEMU may have started the migration, so
 * query-migrate tells before anything is said. TRUE (with *@error cleared)
 * when it runs; FALSE with *@error saying what is known otherwise. */
static gboolean
migrate_started_anyway(KvmMig *m, GError **error)
{
    if (!g_error_matches(*error, VMSHIFT_ERROR, VMSHIFT_ERROR_TIMEOUT))
        return FALSE; /* an error reply: QEMU refused it, nothing started */
    g_autoptr(GError) qerr = NULL;
    json_object *r = vmshift_qmp_execute(m->sq, "query-migrate", NULL, QMP_CMD_TIMEOUT, &qerr);
    const char *st = r ? vmshift_json_get_string(r, "status") : NULL;
    gboolean started = st && strcmp(st, "none") != 0 && strcmp(st, "cancelled") != 0;
    if (started)
        vmshift_job_log(m->job, VMSHIFT_LOG_WARNING,
                        "the reply to 'migrate' was lost (%s); query-migrate shows the "
                        "migration %s: followed instead of sending it again",
                        (*error)->message, st);
    else if (r)
        g_prefix_error(error, "query-migrate shows no migration (%s), so it did not start: ",
                       st ? st : "no status");
    else
        g_prefix_error(error, "whether QEMU started the migration is unknown (query-migrate: %s): ",
                       qerr->message);
    if (r)
        json_object_put(r);
    if (started)
        g_clear_error(error);
    return started;
}

/*
 * The source stands still: each mirror writes its last blocks and ends
 * (completed, no pivot: the source keeps its own images) before any RAM
 * moves, and the destination's NBD server goes. Then no block job is in
 * the source's graph when QEMU inactivates its images for the post-copy
 * switch: with one there, QEMU 7.2's postcopy_start failed in about 1 of
 * 15 host+storage moves (status failed, nothing sent), and the images could
 * not be activated again ("Permission conflict on node"), so the source
 * could not run on. The destination activates its images at the switch
 * with no export holding them.
 */
static gboolean
finish_mirrors_early(KvmMig *m, GPtrArray *mirrors, GError **error)
{
    if (!kvm_mirrors_abort_ex(m, m->sq, mirrors, TRUE)) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_FAILED,
                    "the disks of VM %s did not finish copying to host %s (a mirror did not "
                    "complete): nothing moved",
                    m->sdef->name, m->dst->name);
        return FALSE;
    }
    vmshift_qmp_execute_simple(m->dq, "nbd-server-stop", NULL, QMP_CMD_TIMEOUT, NULL);
    vmshift_job_log(m->job, VMSHIFT_LOG_INFO, "disks copied to host %s (%u mirror(s) completed)",
                    m->dst->name, mirrors->len);
    return TRUE;
}

/* Transfer: the mirrors catch up, then RAM moves (from a paused source
 * under the TCG rule) until the source has handed over. */
static gboolean
live_transfer(KvmMig *m, GPtrArray *mirrors, int port, GError **error)
{
    if (!kvm_mig_phase(m, VMSHIFT_PHASE_TRANSFER, error))
        return FALSE;
    if (mirrors->len && !kvm_mirrors_wait_ready(m, m->sq, mirrors, error))
        return FALSE;
    if (!kvm_mig_save(m, "stage", "transfer", error))
        return FALSE;
    if (m->t.paused) {
        /* journaled before the stop: repair resumes a source left paused */
        if (!kvm_mig_save(m, "source-paused", "1", error))
            return FALSE;
        m->t_paused = g_get_monotonic_time();
        if (!vmshift_qmp_execute_simple(m->sq, "stop", NULL, QMP_CMD_TIMEOUT, error))
            return FALSE;
        m->src_paused = TRUE;
        vmshift_job_log(m->job, VMSHIFT_LOG_INFO, "source paused for the transfer (TCG)");
        vmshift_job_set_location(m->job, m->src->name, "paused, migrating");
        if (mirrors->len && !finish_mirrors_early(m, mirrors, error))
            return FALSE;
    } else {
        vmshift_job_set_location(m->job, m->src->name, "running, migrating");
    }
    g_autofree char *uri = g_strdup_printf("tcp:%s:%d", m->dst->migration_address, port);
    json_object *a = json_object_new_object();
    json_object_object_add(a, "uri", json_object_new_string(uri));
    gint64 t_mig = g_get_monotonic_time();
    if (!vmshift_qmp_execute_simple(m->sq, "migrate", a, QMP_CMD_TIMEOUT, error)) {
        if (migrate_started_anyway(m, error))
            return follow_migration(m, t_mig, FALSE, error);
        if (strstr((*error)->message, "duplicate yank instance"))
            g_prefix_error(error, "QEMU 7.2 cannot migrate this VM again after an earlier "
                                  "migration failed with multifd (restart the VM first): ");
        return FALSE;
    }
    /* a paused source switches to post-copy at once, in the same breath
     * as the migrate: every millisecond until then is downtime. QEMU reads
     * the request before each iteration of its migration thread; when it
     * lands in "setup" (the usual case: setup takes 1-9 ms here) the first
     * iteration is the switch, and the hand-over is ~10-20 ms from STOP to
     * the destination's RESUME. When the thread's first iteration began
     * first, that iteration runs its course (QEMU 7.2: up to 50 ms of pages
     * from the paused source) before the switch: 60-110 ms measured
     * (switchover-steps tells which happened). */
    gboolean switched = m->t.paused && m->t.postcopy
                        && start_postcopy(m, g_get_monotonic_time() - t_mig, "the source is paused",
                                          NULL);
    return follow_migration(m, t_mig, switched, error);
}

/*
 * When each step of the hand-over happened, from the QMP events' own
 * timestamps (µs since the epoch, taken by each QEMU as it emits them; 0:
 * not seen): the source's STOP and MIGRATION status changes, the
 * destination's RESUME. For a paused source the guest stands still from
 * STOP to RESUME, which is its real downtime (QEMU's own "downtime" of a
 * post-copy switch ends when the source has sent the device state, before
 * the destination has loaded it and run).
 */
typedef struct {
    gint64 stop, setup, active, postcopy, device, completed; /* source */
    gint64 resume;                                           /* destination */
    gint64 dst_postcopy; /* destination: postcopy-active (the device state is in) */
} LiveClock;

static void
clock_event(VmshiftQmp *q, const VmshiftQmpEvent *ev, gpointer user_data)
{
    (void)q;
    LiveClock *c = user_data;
    if (!strcmp(ev->name, "STOP") && !c->stop)
        c->stop = ev->timestamp_us;
    else if (!strcmp(ev->name, "MIGRATION")) {
        const char *st = vmshift_qmp_event_get_string(ev, "status");
        gint64 *slot = !g_strcmp0(st, "setup")             ? &c->setup
                       : !g_strcmp0(st, "active")          ? &c->active
                       : !g_strcmp0(st, "postcopy-active") ? &c->postcopy
                       : !g_strcmp0(st, "device")          ? &c->device
                       : !g_strcmp0(st, "completed")       ? &c->completed
                                                           : NULL;
        if (slot && !*slot)
            *slot = ev->timestamp_us;
    }
}

static void
clock_dst_event(VmshiftQmp *q, const VmshiftQmpEvent *ev, gpointer user_data)
{
    (void)q;
    LiveClock *c = user_data;
    if (!strcmp(ev->name, "RESUME") && !c->resume)
        c->resume = ev->timestamp_us;
    else if (!strcmp(ev->name, "MIGRATION") && !c->dst_postcopy
             && !g_strcmp0(vmshift_qmp_event_get_string(ev, "status"), "postcopy-active"))
        c->dst_postcopy = ev->timestamp_us;
}

/* "stop→setup 3 ms, →active 1 ms, →postcopy 12 ms, →destination runs 20 ms"
 * of a paused source's hand-over, and the downtime it adds up to (-1 when
 * an event is missing) */
static char *
clock_summary(const LiveClock *c, gint64 *downtime_ms)
{
    *downtime_ms = -1;
    if (!c->stop || !c->resume || c->resume < c->stop)
        return NULL;
    *downtime_ms = (c->resume - c->stop + 500) / 1000;
    g_autoptr(GString) s = g_string_new(NULL);
    gint64 last = c->stop;
    const struct {
        const char *name;
        gint64 t;
    } steps[] = { { "migration setup", c->setup },
                  { "active", c->active },
                  { "post-copy switch (device state sent)", c->postcopy },
                  { "destination loaded it", c->dst_postcopy },
                  { "destination runs", c->resume } };
    g_string_append(s, "source stopped");
    for (gsize i = 0; i < G_N_ELEMENTS(steps); i++) {
        if (!steps[i].t || steps[i].t < last)
            continue;
        g_string_append_printf(s, ", +%.1f ms %s", (double)(steps[i].t - last) / 1000.0,
                               steps[i].name);
        last = steps[i].t;
    }
    return g_string_free(g_steal_pointer(&s), FALSE);
}

/* Switchover: the source has stopped and handed over; the destination
 * runs. */
static gboolean
live_switchover(KvmMig *m, gboolean moves_storage, GPtrArray *mirrors, const LiveClock *clk,
                gint64 t0, GError **error)
{
    kvm_mig_save_late(m, "stage", "completed");
    /* past the point of no return: keep going */
    kvm_mig_phase_late(m, VMSHIFT_PHASE_SWITCHOVER);
    if (moves_storage) {
        /* the source is stopped: let each mirror write its last dirty
         * blocks and complete without pivot (the destination owns the new
         * images from now on). The destination was started paused for
         * them: resume it, also when no disk had to move. */
        if (mirrors->len)
            kvm_mirrors_abort_ex(m, m->sq, mirrors, TRUE);
        vmshift_qmp_execute_simple(m->dq, "nbd-server-stop", NULL, QMP_CMD_TIMEOUT, NULL);
        if (!vmshift_qmp_execute_simple(m->dq, "cont", NULL, QMP_CMD_TIMEOUT, error))
            return FALSE;
    } else if (m->src_paused && !resume_destination(m, NULL, error)) {
        return FALSE;
    }
    if (!wait_dest_running(m, error))
        return FALSE;
    /* the guest stood still from the pause on, whatever QEMU counts */
    gint64 paused_ms = -1, gap_ms = -1;
    g_autofree char *steps = clock_summary(clk, &gap_ms);
    if (steps) {
        /* STOP to RESUME by QEMU's own clocks: how long the guest stood */
        g_autofree char *g = g_strdup_printf("%" G_GINT64_FORMAT, gap_ms);
        vmshift_job_set_result(m->job, "stop-to-run-ms", g);
        vmshift_job_set_result(m->job, "switchover-steps", steps);
        vmshift_job_log(m->job, VMSHIFT_LOG_INFO, "hand-over: %s", steps);
    }
    if (m->src_paused)
        paused_ms = gap_ms >= 0
                        ? gap_ms
                        : ((m->t_resumed ? m->t_resumed : g_get_monotonic_time()) - m->t_paused)
                              / 1000;
    vmshift_job_set_location(m->job, m->dst->name, "running");
    json_object *r = final_stats(m->sq);
    if (r) {
        /* a paused source: the guest stood still from STOP to RESUME. QEMU's
         * own figure counts from its internal stop at the switch, and after
         * a post-copy switch QEMU 7.2 sometimes reports garbage there
         * (seen: 1061824 ms for a 457 ms migration) */
        if (paused_ms >= 0 && (gap_ms >= 0 || vmshift_json_get_int(r, "downtime", 0) < paused_ms))
            json_object_object_add(r, "downtime", json_object_new_int64(paused_ms));
        report_stats(m, r, (g_get_monotonic_time() - t0) / 1000);
        vmshift_job_log(m->job, VMSHIFT_LOG_INFO,
                        "migrated: total %" G_GINT64_FORMAT " ms, downtime %" G_GINT64_FORMAT
                        " ms, %" G_GINT64_FORMAT " MiB",
                        vmshift_json_get_int(r, "total-time", -1),
                        vmshift_json_get_int(r, "downtime", -1),
                        vmshift_json_get_int(r, "ram/transferred", 0) >> 20);
        json_object_put(r);
    }
    return TRUE;
}

/* Cleanup: the source QEMU, its definition and the moved images go. */
static void
live_cleanup(KvmMig *m, GPtrArray *mirrors)
{
    kvm_mig_save_late(m, "stage", "cleanup");
    kvm_mig_phase_late(m, VMSHIFT_PHASE_CLEANUP);
    g_clear_pointer(&m->sq, vmshift_qmp_free);
    GError *local = NULL;
    if (!kvm_vm_stop(m->src, m->sdef->name, 10, &local)) {
        vmshift_job_log(m->job, VMSHIFT_LOG_WARNING, "source: %s", local->message);
        g_clear_error(&local);
    }
    g_autofree char *sdir = kvm_host_vm_dir(m->src, m->sdef->name);
    kvm_host_remove_tree(m->src, sdir, NULL);
    for (guint i = 0; i < mirrors->len; i++) {
        KvmMirror *x = mirrors->pdata[i];
        const char *argv[] = { "rm", "-f", "--", x->old_path, NULL };
        if (kvm_host_run(m->src, argv, NULL, NULL, 30, &local))
            vmshift_job_log(m->job, VMSHIFT_LOG_INFO, "removed %s:%s", m->src->name, x->old_path);
        g_clear_error(&local);
    }
    kvm_mig_save_late(m, "stage", "done");
}

/* TRUE when the source's migration ended without completing (failed or
 * cancelled): nothing more reaches the destination */
static gboolean
source_migration_over(KvmMig *m)
{
    if (!m->sq || vmshift_qmp_is_broken(m->sq))
        return FALSE;
    vmshift_qmp_set_cancellable(m->sq, NULL);
    g_autofree char *st = kvm_qmp_status(m->sq, "query-migrate");
    return st && (!strcmp(st, "failed") || !strcmp(st, "cancelled"));
}

/* A failed live migration: before the hand-over the destination goes and
 * the source runs on; after it, repair finishes the move. */
static void
live_undo(KvmMig *m, GPtrArray *mirrors)
{
    g_autofree char *stage = vmshift_job_get_saved(m->job, "stage");
    gboolean handed_over = g_strcmp0(stage, "completed") == 0 || g_strcmp0(stage, "cleanup") == 0
                           || g_strcmp0(stage, "postcopy") == 0;
    /* post-copy was asked for; whether the destination got the VM, it says
     * once the source's migration has ended (a switch that failed at once
     * sent nothing: the source has it all) */
    g_autofree char *why = NULL;
    if (m->dq)
        vmshift_qmp_set_cancellable(m->dq, NULL);
    if (!g_strcmp0(stage, "postcopy") && source_migration_over(m)
        && kvm_dest_state(m->dq, &why) == KVM_DEST_NOT_YET) {
        vmshift_job_log(m->job, VMSHIFT_LOG_WARNING,
                        "the switch to post-copy failed before the hand-over (%s): rolled back",
                        why);
        handed_over = FALSE;
    }
    if (handed_over) {
        vmshift_job_set_location(m->job, m->dst->name,
                                 "handed over; check it (vmshift job repair)");
        return;
    }
    if (mirrors->len && m->sq)
        kvm_mirrors_abort(m, m->sq, mirrors);
    kvm_mig_rollback_destination(m);
    /* make sure the source runs */
    if (m->sq && !vmshift_qmp_is_broken(m->sq)) {
        vmshift_qmp_set_cancellable(m->sq, NULL);
        json_object *s = vmshift_qmp_execute(m->sq, "query-status", NULL, QMP_CMD_TIMEOUT, NULL);
        const char *sst = vmshift_json_get_string(s, "status");
        if (sst && strcmp(sst, "running") && (strcmp(sst, "paused") || m->src_paused))
            vmshift_qmp_execute_simple(m->sq, "cont", NULL, QMP_CMD_TIMEOUT, NULL);
        if (s)
            json_object_put(s);
    }
    vmshift_job_set_location(m->job, m->src->name, "running (migration rolled back)");
}

/*
 * Live host migration. Storage stays where it is (the destination must
 * reach the same paths) unless the spec moves it: then each disk is
 * mirrored over NBD into a new image at the destination while RAM moves.
 */
gboolean
kvm_mig_live(KvmMig *m, GError **error)
{
    gint64 t0 = g_get_monotonic_time();
    g_autoptr(GPtrArray) mirrors = g_ptr_array_new_with_free_func((GDestroyNotify)kvm_mirror_free);
    gboolean moves_storage = vmshift_migration_spec_moves_storage(m->spec);
    int port = 0;
    LiveClock clk = { 0 };
    gboolean ok = live_prepare(m, moves_storage, mirrors, &port, error);
    if (ok) {
        vmshift_qmp_set_event_func(m->sq, clock_event, &clk);
        vmshift_qmp_set_event_func(m->dq, clock_dst_event, &clk);
        ok = live_transfer(m, mirrors, port, error)
             && live_switchover(m, moves_storage, mirrors, &clk, t0, error);
    }
    if (m->sq)
        vmshift_qmp_set_event_func(m->sq, NULL, NULL);
    if (m->dq)
        vmshift_qmp_set_event_func(m->dq, NULL, NULL);
    if (!ok) {
        live_undo(m, mirrors);
        return FALSE;
    }
    live_cleanup(m, mirrors);
    return TRUE;
}
