/* vmshift KVM plugin: live, cold and storage migration over QMP, repair.
 *
 * Journal (vmshift_job_save) keys, written before the step they describe:
 *   vm, src-host, dst-host     what moves where
 *   stage                      prepare | dst-started | transfer | completed |
 *                              cleanup | mirror | pivoted | copied
 *   dst-pid                    the destination QEMU
 *   new-files                  ';'-separated files created at the destination
 * repair() reads them to roll back (VM still runs at the source) or to
 * finish (the source QEMU already handed over).
 */
#include "config.h"

#include <signal.h>
#include <string.h>

#include "kvm.h"

#define QMP_CMD_TIMEOUT 10000
#define LIFTED_BANDWIDTH KVM_TUNING_LIFTED_BANDWIDTH

typedef struct {
    gboolean multifd;
    gint64 channels;
    gboolean postcopy;
    gboolean autoconverge;
    guint64 max_bandwidth;
    guint64 downtime_limit_ms;
    gint64 dirty_mib_s;        /* -1: not measured */
    gboolean paused;           /* the source is paused for the transfer */
    char *why;
} Tuning;

typedef struct {
    KvmBackend *b;
    VmshiftJob *job;
    const VmshiftMigrationSpec *spec;
    GCancellable *cancel;
    KvmHost *src, *dst;
    KvmVmDef *sdef, *ddef;
    VmshiftQmp *sq, *dq;
    gint64 dst_pid;
    gboolean dst_def_written;
    GPtrArray *new_files;      /* created at the destination */
    Tuning t;
    gboolean src_paused;       /* this job paused the source (Tuning.paused) */
    gint64 t_paused;           /* when (monotonic µs) */
    gint64 t_resumed;          /* when the destination ran (0: not yet) */
} Mig;

static void
mig_clear(Mig *m)
{
    if (m->sq)
        vmshift_qmp_free(m->sq);
    if (m->dq)
        vmshift_qmp_free(m->dq);
    kvm_vm_def_free(m->sdef);
    kvm_vm_def_free(m->ddef);
    if (m->new_files)
        g_ptr_array_unref(m->new_files);
    g_free(m->t.why);
}

static gboolean
save(Mig *m, const char *key, const char *value, GError **error)
{
    return vmshift_job_save(m->job, key, value, error);
}

static gboolean
save_new_files(Mig *m, GError **error)
{
    GString *s = g_string_new(NULL);
    for (guint i = 0; i < m->new_files->len; i++) {
        if (i)
            g_string_append_c(s, ';');
        g_string_append(s, m->new_files->pdata[i]);
    }
    gboolean ok = save(m, "new-files", s->str, error);
    g_string_free(s, TRUE);
    return ok;
}

static gboolean
phase(Mig *m, VmshiftPhase p, GError **error)
{
    return vmshift_job_set_phase(m->job, p, error);
}

static json_object *
jobj(const char *json)
{
    return json_tokener_parse(json);
}

/* ---- options and tuning ------------------------------------------------ */

static gboolean
read_options(Mig *m, GVariantDict **out, GError **error)
{
    static const char *const known[] = { "max-bandwidth", "postcopy", "multifd-channels",
                                         "downtime-limit", "auto-converge",
                                         "measure-dirty-rate", "tcg-safe", NULL };
    *out = g_variant_dict_new(m->spec->options);
    if (!m->spec->options)
        return TRUE;
    GVariantIter it;
    const char *key;
    GVariant *val;
    g_variant_iter_init(&it, m->spec->options);
    while (g_variant_iter_next(&it, "{&sv}", &key, &val)) {
        g_variant_unref(val);
        if (!g_strv_contains(known, key)) {
            g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_INVALID_ARGUMENT,
                        "kvm: unknown migration option '%s' (known: max-bandwidth, postcopy, "
                        "multifd-channels, downtime-limit, auto-converge, measure-dirty-rate, "
                        "tcg-safe)",
                        key);
            g_variant_dict_unref(*out);
            *out = NULL;
            return FALSE;
        }
    }
    return TRUE;
}

static guint64
opt_u64(GVariantDict *d, const char *key, guint64 dflt)
{
    GVariant *v = g_variant_dict_lookup_value(d, key, NULL);
    if (!v)
        return dflt;
    guint64 r = dflt;
    if (g_variant_is_of_type(v, G_VARIANT_TYPE_UINT64))
        r = g_variant_get_uint64(v);
    else if (g_variant_is_of_type(v, G_VARIANT_TYPE_INT64))
        r = (guint64) MAX(g_variant_get_int64(v), 0);
    else if (g_variant_is_of_type(v, G_VARIANT_TYPE_UINT32))
        r = g_variant_get_uint32(v);
    else if (g_variant_is_of_type(v, G_VARIANT_TYPE_INT32))
        r = (guint64) MAX(g_variant_get_int32(v), 0);
    else if (g_variant_is_of_type(v, G_VARIANT_TYPE_STRING))
        r = g_ascii_strtoull(g_variant_get_string(v, NULL), NULL, 10);
    g_variant_unref(v);
    return r;
}

/* -1 unset, 0 false, 1 true */
static int
opt_bool(GVariantDict *d, const char *key)
{
    GVariant *v = g_variant_dict_lookup_value(d, key, NULL);
    if (!v)
        return -1;
    int r = -1;
    if (g_variant_is_of_type(v, G_VARIANT_TYPE_BOOLEAN))
        r = g_variant_get_boolean(v) ? 1 : 0;
    else if (g_variant_is_of_type(v, G_VARIANT_TYPE_STRING)) {
        const char *s = g_variant_get_string(v, NULL);
        r = (!g_ascii_strcasecmp(s, "true") || !strcmp(s, "1") || !g_ascii_strcasecmp(s, "yes"));
    }
    g_variant_unref(v);
    return r;
}

/* Unique MiB the guest dirties per second (QEMU's page-sampling estimate). */
static gint64
measure_dirty_rate(Mig *m, GError **error)
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


void
kvm_tuning_warn_tcg_live(VmshiftJob *job, int qemu_major)
{
    vmshift_job_log(job, VMSHIFT_LOG_WARNING, "tcg-safe=false: migrating a TCG guest live on "
                    "QEMU %d, which can lose guest writes (fixed in QEMU 9.0)", qemu_major);
}

/* TCG (query-kvm: not enabled) and the major version of the QEMU that
 * runs the source VM; FALSE when QEMU does not say. */
static gboolean
source_qemu(Mig *m, gboolean *tcg, int *major)
{
    json_object *k = vmshift_qmp_execute(m->sq, "query-kvm", NULL, QMP_CMD_TIMEOUT, NULL);
    json_object *v = vmshift_qmp_execute(m->sq, "query-version", NULL, QMP_CMD_TIMEOUT, NULL);
    json_object *q = NULL, *mj = NULL, *en = NULL;
    gboolean ok = k && v && json_object_object_get_ex(k, "enabled", &en) &&
                  json_object_object_get_ex(v, "qemu", &q) &&
                  json_object_object_get_ex(q, "major", &mj);
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


/*
 * The plugin's own tuning. Pre-copy converges when what the guest dirties
 * during one round fits into the downtime budget: with D MiB/s of unique
 * pages dirtied and a link of L MiB/s, the last round carries about D·1 s
 * (a second is the order of one round here), i.e. D/L seconds of downtime.
 * Within a quarter of the budget (the link estimate is optimistic on shared
 * cores): pre-copy, bandwidth lifted, multifd (4 channels) — the fastest
 * measured configuration for quiet guests. Beyond it: post-copy (multifd and
 * post-copy do not combine in QEMU 7.2), switched on after the first pass,
 * which measured fastest with the smallest downtime for busy guests
 * (bench/kvm-live).
 */
static gboolean
choose_tuning(Mig *m, GVariantDict *opts, GError **error)
{
    Tuning *t = &m->t;
    /* lifted from QEMU's 128 MiB/s default unless the source host caps it */
    t->max_bandwidth = opt_u64(opts, "max-bandwidth",
                               m->src->max_bw_mib ? m->src->max_bw_mib * 1024 * 1024
                                                  : LIFTED_BANDWIDTH);
    t->downtime_limit_ms = opt_u64(opts, "downtime-limit", 300);
    t->channels = (gint64) opt_u64(opts, "multifd-channels", 4);
    t->dirty_mib_s = -1;
    int force_pc = opt_bool(opts, "postcopy");
    int ac = opt_bool(opts, "auto-converge");
    int measure = opt_bool(opts, "measure-dirty-rate");
    int tcg_safe = opt_bool(opts, "tcg-safe");
    gboolean tcg = FALSE;
    int major = 0;
    if (!source_qemu(m, &tcg, &major))
        vmshift_job_log(m->job, VMSHIFT_LOG_WARNING, "the source QEMU did not tell its version "
                        "and accelerator (query-version, query-kvm)");
    gboolean lossy = kvm_tuning_tcg_loses_writes(tcg, major);

    if (force_pc == 1 && (!m->src->allow_postcopy || !m->dst->allow_postcopy)) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_INVALID_ARGUMENT,
                    "post-copy was requested but host %s forbids it (allow-postcopy=false)",
                    m->src->allow_postcopy ? m->dst->name : m->src->name);
        return FALSE;
    }
    gboolean may_postcopy = m->src->allow_postcopy && m->dst->allow_postcopy;
    /*
     * Under TCG, QEMU before 9.0 loses guest writes during a live
     * migration: its 64-page fast path that clears the migration bitmap
     * does not reset the TCG TLB, so a store through a TLB entry made
     * before the clear does not dirty the page again, and the destination
     * keeps an older copy (QEMU commit 03bfc2188f). Measured here with the
     * test guest's memory check (tests/guest/dirty.c): pre-copy and
     * post-copy alike left stale pages, with raw QMP and no vmshift code
     * involved (kvm.md 2.4). Nothing a client can send makes QEMU reset the
     * TLB, so the only safe way is that the guest does not run on the
     * source while its memory is tracked: the source is paused before the
     * migration starts and the destination takes over at once in post-copy
     * (pages follow on demand; downtime is the setup plus the device
     * state), or, where post-copy is forbidden, after a paused pre-copy.
     * tcg-safe=false skips this, for a QEMU that has the fix backported.
     */
    if (lossy && tcg_safe != 0) {
        t->paused = TRUE;
        t->postcopy = may_postcopy && force_pc != 0;
        t->multifd = !t->postcopy && t->channels > 1;
        t->autoconverge = FALSE;
        t->why = g_strdup_printf("TCG on QEMU %d loses guest writes during live migration "
                                 "(fixed in QEMU 9.0): the source is paused for the transfer, "
                                 "%s (tcg-safe=false to migrate live anyway)", major,
                                 t->postcopy ? "and the destination runs at once in post-copy"
                                 : !may_postcopy ? "pre-copy (a host forbids post-copy: "
                                                   "allow-postcopy=false)"
                                                 : "pre-copy (postcopy=false requested)");
        return TRUE;
    }
    if (lossy)
        kvm_tuning_warn_tcg_live(m->job, major);

    if (measure != 0 && force_pc < 0) {
        GError *local = NULL;
        t->dirty_mib_s = measure_dirty_rate(m, &local);
        if (t->dirty_mib_s < 0) {
            if (g_error_matches(local, G_IO_ERROR, G_IO_ERROR_CANCELLED)) {
                g_propagate_error(error, local);
                return FALSE;
            }
            vmshift_job_log(m->job, VMSHIFT_LOG_WARNING,
                            "dirty rate not measured (%s); assuming a quiet guest",
                            local->message);
            g_clear_error(&local);
        }
    }
    guint64 link = MIN(m->b->link_mib_s, t->max_bandwidth / (1024 * 1024));
    if (link == 0)
        link = 1;
    double expected_ms = t->dirty_mib_s > 0 ? (double) t->dirty_mib_s * 1000.0 / (double) link
                                            : 0.0;
    /* a quarter of the budget: the link estimate is optimistic when vCPUs,
     * migration threads and the destination share the cores (TCG) */
    if (force_pc == 1 ||
        (force_pc < 0 && may_postcopy &&
         kvm_tuning_prefers_postcopy(t->dirty_mib_s, link, t->downtime_limit_ms))) {
        t->postcopy = TRUE;
        t->multifd = FALSE;
        if (force_pc == 1)
            t->why = g_strdup("post-copy requested");
        else
            t->why = g_strdup_printf("dirty rate %" G_GINT64_FORMAT " MiB/s over a %"
                                     G_GUINT64_FORMAT " MiB/s link: a pre-copy round would "
                                     "leave ~%.0f ms of dirty pages, more than a quarter of "
                                     "the %" G_GUINT64_FORMAT " ms downtime limit: post-copy",
                                     t->dirty_mib_s, link, expected_ms, t->downtime_limit_ms);
    } else {
        t->multifd = t->channels > 1;
        char *rate = t->dirty_mib_s >= 0 ? g_strdup_printf("%" G_GINT64_FORMAT, t->dirty_mib_s)
                                         : g_strdup("unmeasured");
        if (!may_postcopy && kvm_tuning_prefers_postcopy(t->dirty_mib_s, link,
                                                                t->downtime_limit_ms))
            t->why = g_strdup_printf("dirty rate %s MiB/s over a %" G_GUINT64_FORMAT " MiB/s "
                                     "link calls for post-copy, but a host forbids it "
                                     "(allow-postcopy=false): pre-copy%s, which may not "
                                     "converge", rate, link, t->multifd ? " with multifd" : "");
        else
            t->why = g_strdup_printf("dirty rate %s MiB/s, link %" G_GUINT64_FORMAT " MiB/s: "
                                     "last round ~%.0f ms, within a quarter of the %"
                                     G_GUINT64_FORMAT " ms downtime limit: pre-copy%s",
                                     rate, link, expected_ms, t->downtime_limit_ms,
                                     t->multifd ? " with multifd" : "");
        g_free(rate);
    }
    t->autoconverge = ac == 1;
    (void) error;
    return TRUE;
}

static char *
tuning_summary(const Tuning *t)
{
    char *mf = t->multifd ? g_strdup_printf("%" G_GINT64_FORMAT " channels", t->channels)
                          : g_strdup("off");
    char *s = g_strdup_printf("max-bandwidth=%" G_GUINT64_FORMAT " MiB/s, downtime-limit=%"
                              G_GUINT64_FORMAT " ms, multifd=%s, postcopy=%s, auto-converge=%s%s",
                              t->max_bandwidth / (1024 * 1024), t->downtime_limit_ms, mf,
                              t->postcopy ? "on" : "off", t->autoconverge ? "on" : "off",
                              t->paused ? ", source paused for the transfer" : "");
    g_free(mf);
    return s;
}

static gboolean
set_caps_ex(VmshiftQmp *q, const Tuning *t, gboolean dest, gboolean late_activate,
            GError **error)
{
    json_object *caps = json_object_new_array();
#define CAP(n, v)                                                                  \
    do {                                                                           \
        json_object *c = json_object_new_object();                                 \
        json_object_object_add(c, "capability", json_object_new_string(n));        \
        json_object_object_add(c, "state", json_object_new_boolean((v) ? 1 : 0)); \
        json_object_array_add(caps, c);                                            \
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
        json_object_object_add(p, "max-bandwidth", json_object_new_int64((gint64) t->max_bandwidth));
        json_object_object_add(p, "downtime-limit",
                               json_object_new_int64((gint64) t->downtime_limit_ms));
        /* a cap holds for the post-copy phase too (QEMU's own default
         * there is unlimited) */
        if (t->postcopy && t->max_bandwidth < LIFTED_BANDWIDTH)
            json_object_object_add(p, "max-postcopy-bandwidth",
                                   json_object_new_int64((gint64) t->max_bandwidth));
    }
    return vmshift_qmp_execute_simple(q, "migrate-set-parameters", p, QMP_CMD_TIMEOUT, error);
}

static gboolean
set_caps(VmshiftQmp *q, const Tuning *t, gboolean dest, GError **error)
{
    return set_caps_ex(q, t, dest, FALSE, error);
}

/* ---- helpers ----------------------------------------------------------- */

static gboolean
check_cancel(Mig *m, GError **error)
{
    return g_cancellable_set_error_if_cancelled(m->cancel, error);
}

/* Removes everything made at the destination; the VM runs at the source. */
static void
rollback_destination(Mig *m)
{
    if (g_getenv("VMSHIFT_KVM_DEBUG_KEEP_DEST"))
        return;     /* debugging: leave the destination for inspection */
    if (m->dq) {
        vmshift_qmp_free(m->dq);
        m->dq = NULL;
    }
    if (m->dst && m->ddef) {
        if (m->dst_pid > 0) {
            GError *e = NULL;
            if (!kvm_vm_stop(m->dst, m->ddef->name, 5, &e)) {
                vmshift_job_log(m->job, VMSHIFT_LOG_WARNING, "%s", e->message);
                g_clear_error(&e);
            }
        }
        if (m->dst_def_written) {
            char *dir = kvm_host_vm_dir(m->dst, m->ddef->name);
            kvm_host_remove_tree(m->dst, dir, NULL);
            g_free(dir);
        }
    }
    if (m->new_files) {
        for (guint i = 0; i < m->new_files->len; i++) {
            KvmHost *h = m->dst ? m->dst : m->src;
            const char *argv[] = { "rm", "-f", "--", m->new_files->pdata[i], NULL };
            kvm_host_run(h, argv, NULL, NULL, 30, NULL);
        }
        g_ptr_array_set_size(m->new_files, 0);
    }
    vmshift_job_save(m->job, "stage", "rolled-back", NULL);
}

/* The node currently attached to disk @id (it changes after a pivot). */
static char *
disk_node(VmshiftQmp *q, const char *id, GError **error)
{
    json_object *r = vmshift_qmp_execute(q, "query-block", NULL, QMP_CMD_TIMEOUT, error);
    if (!r)
        return NULL;
    char *want = g_strdup_printf("/machine/peripheral/%s-dev/", id);
    char *node = NULL;
    gsize n = json_object_is_type(r, json_type_array) ? json_object_array_length(r) : 0;
    for (gsize i = 0; i < n && !node; i++) {
        json_object *e = json_object_array_get_idx(r, i);
        const char *qdev = vmshift_json_get_string(e, "qdev");
        if (qdev && (g_str_has_prefix(qdev, want) ||
                     g_strcmp0(qdev, want) == 0)) {
            const char *nn = vmshift_json_get_string(e, "inserted/node-name");
            if (nn)
                node = g_strdup(nn);
        }
    }
    if (!node)
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_NOT_FOUND,
                    "QEMU has no block device for disk %s", id);
    g_free(want);
    json_object_put(r);
    return node;
}

static char *
target_path(const char *dir, const char *old_path, const char *vm, const char *disk)
{
    char *base = g_path_get_basename(old_path);
    char *p = g_build_filename(dir, base, NULL);
    g_free(base);
    if (strcmp(p, old_path) == 0) {
        g_free(p);
        char *n = g_strdup_printf("%s-%s.img", vm, disk);
        p = g_build_filename(dir, n, NULL);
        g_free(n);
    }
    return p;
}

static gboolean
disk_virtual_size(KvmHost *h, const char *path, guint64 *size, GError **error)
{
    const char *argv[] = { "qemu-img", "info", "-U", "--output=json", path, NULL };
    char *out = NULL;
    if (!kvm_host_run(h, argv, NULL, &out, 30, error))
        return FALSE;
    json_object *o = json_tokener_parse(out);
    g_free(out);
    *size = (guint64) vmshift_json_get_int(o, "virtual-size", 0);
    if (o)
        json_object_put(o);
    if (*size == 0) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_PROTOCOL,
                    "host %s: cannot read the size of %s", h->name, path);
        return FALSE;
    }
    return TRUE;
}

static gboolean
create_image(KvmHost *h, const char *path, const char *format, guint64 size, GError **error)
{
    char *dir = g_path_get_dirname(path);
    gboolean ok = kvm_host_mkdir(h, dir, error);
    g_free(dir);
    if (!ok)
        return FALSE;
    if (kvm_host_exists(h, path)) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_CONFLICT,
                    "host %s: %s already exists", h->name, path);
        return FALSE;
    }
    char *sz = g_strdup_printf("%" G_GUINT64_FORMAT, size);
    const char *argv[] = { "qemu-img", "create", "-q", "-f", format, path, sz, NULL };
    ok = kvm_host_run(h, argv, NULL, NULL, 60, error);
    g_free(sz);
    return ok;
}

/* ---- block mirrors (storage moves of a running VM) --------------------- */

typedef struct {
    char *disk;
    char *old_node;
    char *job;
    char *new_node;
    char *new_path;
    char *old_path;
    gboolean ready, done;
} Mirror;

static void
mirror_free(Mirror *x)
{
    g_free(x->disk);
    g_free(x->old_node);
    g_free(x->job);
    g_free(x->new_node);
    g_free(x->new_path);
    g_free(x->old_path);
    g_free(x);
}

static void
job_progress_from_block_jobs(Mig *m, VmshiftQmp *q)
{
    json_object *r = vmshift_qmp_execute(q, "query-block-jobs", NULL, QMP_CMD_TIMEOUT, NULL);
    if (!r)
        return;
    guint64 done = 0, total = 0;
    gsize n = json_object_array_length(r);
    for (gsize i = 0; i < n; i++) {
        json_object *e = json_object_array_get_idx(r, i);
        done += (guint64) vmshift_json_get_int(e, "offset", 0);
        total += (guint64) vmshift_json_get_int(e, "len", 0);
    }
    json_object_put(r);
    if (total)
        vmshift_job_set_bytes(m->job, done, total);
}

static gboolean
match_job(const VmshiftQmpEvent *ev, gpointer data)
{
    return g_strcmp0(vmshift_qmp_event_get_string(ev, "device"), data) == 0;
}

/*
 * Waits until every mirror is ready (BLOCK_JOB_READY), reporting progress;
 * honours cancellation.
 */
static gboolean
wait_mirrors_ready(Mig *m, VmshiftQmp *q, GPtrArray *mirrors, GError **error)
{
    gint64 last = 0;
    for (;;) {
        gboolean all = TRUE;
        for (guint i = 0; i < mirrors->len; i++)
            all &= ((Mirror *) mirrors->pdata[i])->ready;
        if (all)
            return TRUE;
        if (check_cancel(m, error))
            return FALSE;
        GError *local = NULL;
        VmshiftQmpEvent *ev = vmshift_qmp_next_event(q, 200, &local);
        if (local) {
            g_propagate_error(error, local);
            return FALSE;
        }
        if (ev) {
            const char *dev = vmshift_qmp_event_get_string(ev, "device");
            for (guint i = 0; i < mirrors->len; i++) {
                Mirror *x = mirrors->pdata[i];
                if (g_strcmp0(dev, x->job) != 0)
                    continue;
                if (!strcmp(ev->name, "BLOCK_JOB_READY"))
                    x->ready = TRUE;
                else if (!strcmp(ev->name, "BLOCK_JOB_ERROR") ||
                         !strcmp(ev->name, "BLOCK_JOB_CANCELLED") ||
                         (!strcmp(ev->name, "BLOCK_JOB_COMPLETED") && !x->ready)) {
                    const char *e = vmshift_qmp_event_get_string(ev, "error");
                    g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_FAILED,
                                "mirror of disk %s to %s failed: %s", x->disk, x->new_path,
                                e ? e : ev->name);
                    vmshift_qmp_event_free(ev);
                    return FALSE;
                }
            }
            vmshift_qmp_event_free(ev);
        }
        gint64 now = g_get_monotonic_time();
        if (now - last > 250000) {
            job_progress_from_block_jobs(m, q);
            last = now;
        }
    }
}

/*
 * Cancels mirrors (no pivot) and deletes their target nodes. @graceful: the
 * source is stopped and the targets must get every last write (a READY
 * mirror then finishes its final synchronisation and completes); otherwise
 * the copies are being thrown away and are abandoned at once.
 */
static void
abort_mirrors_ex(Mig *m, VmshiftQmp *q, GPtrArray *mirrors, gboolean graceful)
{
    GCancellable *saved = m->cancel;
    vmshift_qmp_set_cancellable(q, NULL);
    for (guint i = 0; i < mirrors->len; i++) {
        Mirror *x = mirrors->pdata[i];
        if (!x->job || x->done)
            continue;
        json_object *a = json_object_new_object();
        json_object_object_add(a, "device", json_object_new_string(x->job));
        json_object_object_add(a, "force", json_object_new_boolean(graceful ? 0 : 1));
        if (vmshift_qmp_execute_simple(q, "block-job-cancel", a, QMP_CMD_TIMEOUT, NULL)) {
            /* BLOCK_JOB_CANCELLED, or COMPLETED when it was ready (a
             * graceful cancel of a READY mirror completes without pivot
             * after the final synchronisation) */
            VmshiftQmpEvent *ev = NULL;
            for (int k = 0; k < 600 && !ev; k++) {
                ev = vmshift_qmp_wait_event(q, "BLOCK_JOB_COMPLETED", match_job, x->job, 50,
                                            NULL);
                if (!ev)
                    ev = vmshift_qmp_wait_event(q, "BLOCK_JOB_CANCELLED", match_job, x->job,
                                                50, NULL);
                if (!graceful && k > 40)
                    break;
            }
            if (ev && graceful && strcmp(ev->name, "BLOCK_JOB_COMPLETED"))
                vmshift_job_log(m->job, VMSHIFT_LOG_WARNING, "mirror of disk %s ended with %s",
                                x->disk, ev->name);
            vmshift_qmp_event_free(ev);
        }
        x->done = TRUE;
    }
    for (guint i = 0; i < mirrors->len; i++) {
        Mirror *x = mirrors->pdata[i];
        if (!x->new_node)
            continue;
        char *fnode = g_strdup_printf("%s-file", x->new_node);
        json_object *a = json_object_new_object();
        json_object_object_add(a, "node-name", json_object_new_string(x->new_node));
        vmshift_qmp_execute_simple(q, "blockdev-del", a, QMP_CMD_TIMEOUT, NULL);
        a = json_object_new_object();
        json_object_object_add(a, "node-name", json_object_new_string(fnode));
        vmshift_qmp_execute_simple(q, "blockdev-del", a, QMP_CMD_TIMEOUT, NULL);
        g_free(fnode);
    }
    vmshift_qmp_set_cancellable(q, saved);
    vmshift_qmp_clear_events(q);
}

static void
abort_mirrors(Mig *m, VmshiftQmp *q, GPtrArray *mirrors)
{
    abort_mirrors_ex(m, q, mirrors, FALSE);
}

/*
 * Starts a blockdev-mirror of disk @dk to @target (a node this function
 * adds over @file_json). The mirror is added to @mirrors.
 */
static gboolean
start_mirror(Mig *m, VmshiftQmp *q, const KvmDiskDef *dk, json_object *target_file,
             const char *target_path_, GPtrArray *mirrors, GError **error)
{
    Mirror *x = g_new0(Mirror, 1);
    x->disk = g_strdup(dk->id);
    x->old_path = g_strdup(dk->path);
    x->new_path = g_strdup(target_path_);
    g_ptr_array_add(mirrors, x);
    x->old_node = disk_node(q, dk->id, error);
    if (!x->old_node) {
        json_object_put(target_file);
        return FALSE;
    }
    char *suffix = g_strdup_printf("%" G_GINT64_FORMAT, g_get_real_time() % 1000000);
    x->new_node = g_strdup_printf("%s-m%s", dk->id, suffix);
    char *fnode = g_strdup_printf("%s-file", x->new_node);
    g_free(suffix);
    json_object_object_add(target_file, "node-name", json_object_new_string(fnode));
    if (!vmshift_qmp_execute_simple(q, "blockdev-add", target_file, QMP_CMD_TIMEOUT, error)) {
        g_free(x->new_node);
        x->new_node = NULL;
        g_free(fnode);
        return FALSE;
    }
    json_object *fmt = json_object_new_object();
    json_object_object_add(fmt, "driver", json_object_new_string(dk->format));
    json_object_object_add(fmt, "node-name", json_object_new_string(x->new_node));
    json_object_object_add(fmt, "file", json_object_new_string(fnode));
    if (!strcmp(dk->format, "qcow2"))
        json_object_object_add(fmt, "backing", NULL);
    if (!vmshift_qmp_execute_simple(q, "blockdev-add", fmt, QMP_CMD_TIMEOUT, error)) {
        json_object *a = json_object_new_object();
        json_object_object_add(a, "node-name", json_object_new_string(fnode));
        vmshift_qmp_execute_simple(q, "blockdev-del", a, QMP_CMD_TIMEOUT, NULL);
        g_free(x->new_node);
        x->new_node = NULL;
        g_free(fnode);
        return FALSE;
    }
    g_free(fnode);
    x->job = g_strdup_printf("vmshift-mirror-%s", dk->id);
    json_object *a = json_object_new_object();
    json_object_object_add(a, "job-id", json_object_new_string(x->job));
    json_object_object_add(a, "device", json_object_new_string(x->old_node));
    json_object_object_add(a, "target", json_object_new_string(x->new_node));
    json_object_object_add(a, "sync", json_object_new_string("full"));
    if (!vmshift_qmp_execute_simple(q, "blockdev-mirror", a, QMP_CMD_TIMEOUT, error)) {
        g_free(x->job);
        x->job = NULL;
        return FALSE;
    }
    vmshift_job_log(m->job, VMSHIFT_LOG_INFO, "mirroring disk %s to %s", dk->id, target_path_);
    return TRUE;
}

/* Pivots every ready mirror onto its target; drops the old nodes. */
static gboolean
pivot_mirrors(Mig *m, VmshiftQmp *q, GPtrArray *mirrors, GError **error)
{
    (void) m;
    for (guint i = 0; i < mirrors->len; i++) {
        Mirror *x = mirrors->pdata[i];
        json_object *a = json_object_new_object();
        json_object_object_add(a, "device", json_object_new_string(x->job));
        if (!vmshift_qmp_execute_simple(q, "block-job-complete", a, QMP_CMD_TIMEOUT, error))
            return FALSE;
    }
    for (guint i = 0; i < mirrors->len; i++) {
        Mirror *x = mirrors->pdata[i];
        VmshiftQmpEvent *ev = vmshift_qmp_wait_event(q, "BLOCK_JOB_COMPLETED", match_job,
                                                     x->job, 60000, error);
        if (!ev)
            return FALSE;
        const char *e = vmshift_qmp_event_get_string(ev, "error");
        if (e) {
            g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_FAILED,
                        "pivot of disk %s to %s failed: %s", x->disk, x->new_path, e);
            vmshift_qmp_event_free(ev);
            return FALSE;
        }
        vmshift_qmp_event_free(ev);
        x->done = TRUE;
        /* confirm: the device now runs on the new node */
        char *now = disk_node(q, x->disk, error);
        if (!now)
            return FALSE;
        if (strcmp(now, x->new_node) != 0) {
            g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_FAILED,
                        "disk %s still runs on node %s after the pivot to %s", x->disk, now,
                        x->new_node);
            g_free(now);
            return FALSE;
        }
        g_free(now);
        /* the old nodes were added with -blockdev: delete them so they let go
         * of the old file (and of any backing file) */
        char *ofile = g_strdup_printf("%s-file", x->old_node);
        json_object *a = json_object_new_object();
        json_object_object_add(a, "node-name", json_object_new_string(x->old_node));
        vmshift_qmp_execute_simple(q, "blockdev-del", a, QMP_CMD_TIMEOUT, NULL);
        a = json_object_new_object();
        json_object_object_add(a, "node-name", json_object_new_string(ofile));
        vmshift_qmp_execute_simple(q, "blockdev-del", a, QMP_CMD_TIMEOUT, NULL);
        g_free(ofile);
    }
    return TRUE;
}

/* ---- live migration ---------------------------------------------------- */

/* A migration from a paused source leaves the destination paused too (it
 * takes the source's run state): resume it. @running (may be NULL) tells
 * whether it already ran when asked. */
static gboolean
resume_destination(Mig *m, gboolean *running, GError **error)
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
wait_dest_running(Mig *m, GError **error)
{
    gint64 until = g_get_monotonic_time() + 30 * G_USEC_PER_SEC;
    for (;;) {
        json_object *r = vmshift_qmp_execute(m->dq, "query-status", NULL, QMP_CMD_TIMEOUT, error);
        if (!r) {
            g_prefix_error(error, "destination QEMU on host %s: ", m->dst->name);
            return FALSE;
        }
        char *st = g_strdup(vmshift_json_get_string(r, "status"));
        json_object_put(r);
        if (g_strcmp0(st, "running") == 0) {
            g_free(st);
            return TRUE;
        }
        if (g_get_monotonic_time() > until) {
            g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_FAILED,
                        "VM %s on host %s is '%s', not running, after the migration",
                        m->ddef->name, m->dst->name, st);
            g_free(st);
            return FALSE;
        }
        g_free(st);
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
        if (!r || vmshift_json_get_int(r, "total-time", 0) > 0 ||
            g_get_monotonic_time() > until)
            return r;
        json_object_put(r);
        g_usleep(20000);
    }
}

static void
report_stats(Mig *m, json_object *r, gint64 wall_ms)
{
    char *v;
#define RES(key, fmt, val)                          \
    v = g_strdup_printf(fmt, val);                  \
    vmshift_job_set_result(m->job, key, v);         \
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

/* Follows the source's migration to an end state. */
static gboolean
follow_migration(Mig *m, gint64 t_start, GError **error)
{
    gboolean postcopy_started = FALSE, cancel_requested = FALSE;
    gint64 last_query = 0, last_log = 0;
    char *status = NULL;
    gboolean ok = FALSE;
    vmshift_qmp_set_cancellable(m->sq, NULL);   /* we poll the cancellable */
    for (;;) {
        if (!cancel_requested && g_cancellable_is_cancelled(m->cancel)) {
            cancel_requested = TRUE;
            if (postcopy_started || g_strcmp0(status, "device") == 0 ||
                g_strcmp0(status, "completed") == 0) {
                vmshift_job_log(m->job, VMSHIFT_LOG_WARNING,
                                "cancellation came too late: the migration is past the "
                                "point of no return (%s); finishing it",
                                postcopy_started ? "post-copy" : status);
            } else if (!vmshift_qmp_execute_simple(m->sq, "migrate_cancel", NULL, QMP_CMD_TIMEOUT,
                                                   error)) {
                goto out;
            } else {
                vmshift_job_log(m->job, VMSHIFT_LOG_INFO, "migrate_cancel sent");
            }
        }
        /* a paused source in post-copy: the guest runs again as soon as
         * the destination does, which is the end of its downtime */
        gboolean running = FALSE;
        if (postcopy_started && m->src_paused && !m->t_resumed &&
            resume_destination(m, &running, NULL) && running)
            m->t_resumed = g_get_monotonic_time();
        GError *local = NULL;
        gboolean fast = (m->t.postcopy && !postcopy_started) ||
                        (postcopy_started && m->src_paused && !m->t_resumed);
        VmshiftQmpEvent *ev = vmshift_qmp_next_event(m->sq, fast ? (m->src_paused ? 5 : 20) : 100,
                                                     &local);
        if (local) {
            g_propagate_prefixed_error(error, local, "source QEMU on host %s: ", m->src->name);
            goto out;
        }
        gboolean query = ev && !strcmp(ev->name, "MIGRATION");
        vmshift_qmp_event_free(ev);
        gint64 now = g_get_monotonic_time();
        /* poll fast while a post-copy switch is due, gently otherwise */
        gint64 period = fast ? (m->src_paused ? 5000 : 40000) : 250000;
        if (!query && now - last_query < period)
            continue;
        last_query = now;
        json_object *r = vmshift_qmp_execute(m->sq, "query-migrate", NULL, QMP_CMD_TIMEOUT,
                                             error);
        if (!r)
            goto out;
        g_free(status);
        status = g_strdup(vmshift_json_get_string(r, "status"));
        guint64 sent = (guint64) vmshift_json_get_int(r, "ram/transferred", 0);
        guint64 remaining = (guint64) vmshift_json_get_int(r, "ram/remaining", 0);
        guint64 total = (guint64) vmshift_json_get_int(r, "ram/total", 0);
        gint64 syncs = vmshift_json_get_int(r, "ram/dirty-sync-count", 0);
        if (total) {
            vmshift_job_set_bytes(m->job, sent, sent + remaining);
            vmshift_job_set_progress(m->job, 100.0 * (double) (total - MIN(remaining, total)) /
                                             (double) total);
        }
        if (now - last_log > G_USEC_PER_SEC) {
            last_log = now;
            vmshift_job_log(m->job, VMSHIFT_LOG_DEBUG,
                            "migration %s: %" G_GUINT64_FORMAT " MiB sent, %" G_GUINT64_FORMAT
                            " MiB remaining, dirty %" G_GINT64_FORMAT " pages/s, expected "
                            "downtime %" G_GINT64_FORMAT " ms, pass %" G_GINT64_FORMAT,
                            status, sent >> 20, remaining >> 20,
                            vmshift_json_get_int(r, "ram/dirty-pages-rate", 0),
                            vmshift_json_get_int(r, "expected-downtime", -1), syncs);
        }
        if (!g_strcmp0(status, "completed")) {
            json_object_put(r);
            ok = TRUE;
            goto out;
        }
        if (!g_strcmp0(status, "failed") || !g_strcmp0(status, "cancelled")) {
            const char *desc = vmshift_json_get_string(r, "error-desc");
            if (!g_strcmp0(status, "cancelled") && cancel_requested)
                g_set_error(error, G_IO_ERROR, G_IO_ERROR_CANCELLED,
                            "migration of VM %s cancelled", m->sdef->name);
            else
                g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_FAILED,
                            "migration of VM %s from host %s to %s %s: %s", m->sdef->name,
                            m->src->name, m->dst->name, status,
                            desc ? desc : "no reason given (destination gone?)");
            json_object_put(r);
            goto out;
        }
        /* a paused source (Tuning.paused) switches at once: nothing runs
         * on it that a head start could catch up with */
        if (m->t.postcopy && !postcopy_started && !cancel_requested &&
            (m->t.paused ? !g_strcmp0(status, "setup") || !g_strcmp0(status, "active")
                         : !g_strcmp0(status, "active") && now - t_start >= 200000)) {
            /* pre-copy cannot converge for this guest, so there is nothing
             * to wait for: switch as soon as the stream runs (a short head
             * start moves zero pages cheaply). Measured here, switching at
             * +0.25 s gave the shortest total time and a downtime of a few
             * ms; after a full first pass it took 2-4 times longer
             * (bench/kvm-live, kvm.md 2.2). From here the destination
             * pulls the pages it touches. */
            if (!vmshift_qmp_execute_simple(m->sq, "migrate-start-postcopy", NULL,
                                            QMP_CMD_TIMEOUT, error)) {
                json_object_put(r);
                goto out;
            }
            postcopy_started = TRUE;
            save(m, "stage", "postcopy", NULL);
            char *when = g_strdup_printf("after %" G_GINT64_FORMAT " ms",
                                         (now - t_start) / 1000);
            vmshift_job_set_result(m->job, "postcopy", when);
            vmshift_job_log(m->job, VMSHIFT_LOG_INFO, "switched to post-copy %s", when);
            vmshift_job_set_location(m->job, m->dst->name, "running (post-copy, pages "
                                     "still arriving from the source)");
            g_free(when);
        }
        json_object_put(r);
    }
out:
    g_free(status);
    vmshift_qmp_set_cancellable(m->sq, m->cancel);
    return ok;
}

static gboolean
prepare_destination(Mig *m, KvmStartFlags flags, GError **error)
{
    if (!save(m, "stage", "prepare", error))
        return FALSE;
    if (kvm_vm_is_running(m->dst, m->ddef->name)) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_CONFLICT,
                    "VM %s already runs on host %s", m->ddef->name, m->dst->name);
        return FALSE;
    }
    char *ddir = kvm_host_vm_dir(m->dst, m->ddef->name);
    char *dconf = g_build_filename(ddir, "vm.conf", NULL);
    gboolean exists = kvm_host_exists(m->dst, dconf);
    g_free(dconf);
    g_free(ddir);
    if (exists) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_CONFLICT,
                    "host %s already has a VM called %s", m->dst->name, m->ddef->name);
        return FALSE;
    }
    m->dst_def_written = TRUE;
    if (!kvm_vm_def_save(m->dst, m->ddef, error))
        return FALSE;
    if (!kvm_vm_start(m->dst, m->ddef, flags, &m->dst_pid, error))
        return FALSE;
    char *pid = g_strdup_printf("%" G_GINT64_FORMAT, m->dst_pid);
    gboolean ok = save(m, "dst-pid", pid, error) && save(m, "stage", "dst-started", error);
    g_free(pid);
    if (!ok)
        return FALSE;
    m->dq = kvm_vm_qmp(m->dst, m->ddef->name, m->b->qmp_timeout_ms, m->cancel, error);
    return m->dq != NULL;
}

/* Applies --network NIC=NET; checks every NIC's network on the destination. */
static gboolean
map_networks(Mig *m, GError **error)
{
    for (guint i = 0; i < m->spec->networks->len; i++) {
        VmshiftMapping *mp = m->spec->networks->pdata[i];
        gboolean found = FALSE;
        for (guint j = 0; j < m->ddef->nics->len; j++) {
            KvmNicDef *n = m->ddef->nics->pdata[j];
            if (!strcmp(n->id, mp->key) || !g_ascii_strcasecmp(n->mac, mp->key)) {
                g_free(n->network);
                n->network = g_strdup(mp->value);
                found = TRUE;
            }
        }
        if (!found) {
            g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_NOT_FOUND,
                        "VM %s has no NIC '%s' (--network %s=%s)", m->sdef->name, mp->key,
                        mp->key, mp->value);
            return FALSE;
        }
    }
    KvmHost *h = m->dst ? m->dst : m->src;
    for (guint j = 0; j < m->ddef->nics->len; j++) {
        KvmNicDef *n = m->ddef->nics->pdata[j];
        char *nd = kvm_host_netdev(h, n->network);
        if (!nd) {
            g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_NOT_FOUND,
                        "host %s has no network '%s' for NIC %s of VM %s (use --network "
                        "%s=NET)", h->name, n->network, n->id, m->sdef->name, n->id);
            return FALSE;
        }
        g_free(nd);
        KvmNicDef *sn = m->sdef->nics->pdata[j];
        if (g_strcmp0(sn->network, n->network))
            vmshift_job_log(m->job, VMSHIFT_LOG_INFO, "NIC %s: network %s -> %s", n->id,
                            sn->network, n->network);
    }
    return TRUE;
}

/*
 * Live host migration. Storage stays where it is (the destination must
 * reach the same paths) unless the spec moves it: then each disk is
 * mirrored over NBD into a new image at the destination while RAM moves.
 */
static gboolean
migrate_live(Mig *m, GError **error)
{
    gint64 t0 = g_get_monotonic_time();
    GVariantDict *opts = NULL;
    GPtrArray *mirrors = g_ptr_array_new_with_free_func((GDestroyNotify) mirror_free);
    gboolean moves_storage = vmshift_migration_spec_moves_storage(m->spec);
    gboolean ok = FALSE;
    GError *local = NULL;

    /* validate */
    if (!read_options(m, &opts, error))
        goto out;
    m->sq = kvm_vm_qmp(m->src, m->sdef->name, m->b->qmp_timeout_ms, m->cancel, error);
    if (!m->sq)
        goto out;
    json_object *st = vmshift_qmp_execute(m->sq, "query-status", NULL, QMP_CMD_TIMEOUT, error);
    if (!st)
        goto out;
    const char *status = vmshift_json_get_string(st, "status");
    if (g_strcmp0(status, "running") && g_strcmp0(status, "paused")) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_CONFLICT,
                    "VM %s on host %s is '%s': live migration needs it running or paused",
                    m->sdef->name, m->src->name, status);
        json_object_put(st);
        goto out;
    }
    json_object_put(st);
    /* QEMU 7.2 leaves the migration's yank instance registered after some
     * failed or cancelled multifd migrations; every later 'migrate' then
     * fails with "duplicate yank instance". Tell it before changing anything. */
    json_object *mq = vmshift_qmp_execute(m->sq, "query-migrate", NULL, QMP_CMD_TIMEOUT, NULL);
    char *mst = g_strdup(vmshift_json_get_string(mq, "status"));
    gboolean migrating = mst && (!strcmp(mst, "active") || !strcmp(mst, "setup") ||
                                 !strcmp(mst, "postcopy-active") || !strcmp(mst, "device"));
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
                    "VM %s on host %s is already migrating (%s)", m->sdef->name, m->src->name,
                    mst);
        g_free(mst);
        goto out;
    }
    g_free(mst);
    if (stale) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_CONFLICT,
                    "VM %s on host %s cannot be migrated again: its QEMU kept the state of an "
                    "earlier failed migration (QEMU 7.2 'duplicate yank instance'); restart "
                    "the VM first", m->sdef->name, m->src->name);
        goto out;
    }
    m->ddef = kvm_vm_def_copy(m->sdef);
    if (!map_networks(m, error))
        goto out;
    if (moves_storage) {
        for (guint i = 0; i < m->ddef->disks->len; i++) {
            KvmDiskDef *dk = m->ddef->disks->pdata[i];
            const char *dir = vmshift_migration_spec_disk_dir(m->spec, dk->id);
            if (!dir)
                continue;
            char *np = target_path(dir, dk->path, dk->id, m->ddef->name);
            g_free(dk->path);
            dk->path = np;
        }
    } else {
        for (guint i = 0; i < m->ddef->disks->len; i++) {
            KvmDiskDef *dk = m->ddef->disks->pdata[i];
            if (!kvm_host_exists(m->dst, dk->path)) {
                g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_NOT_FOUND,
                            "host %s does not reach disk %s (%s) of VM %s: give --path to "
                            "move the storage too", m->dst->name, dk->id, dk->path,
                            m->sdef->name);
                goto out;
            }
        }
    }
    if (!choose_tuning(m, opts, error))
        goto out;
    char *sum = tuning_summary(&m->t);
    vmshift_job_set_result(m->job, "tuning", sum);
    vmshift_job_set_result(m->job, "tuning-reason", m->t.why);
    if (m->t.dirty_mib_s >= 0) {
        char *d = g_strdup_printf("%" G_GINT64_FORMAT, m->t.dirty_mib_s);
        vmshift_job_set_result(m->job, "dirty-rate-mib-s", d);
        g_free(d);
    }
    vmshift_job_log(m->job, VMSHIFT_LOG_INFO, "tuning: %s (%s)", sum, m->t.why);
    g_free(sum);
    if (check_cancel(m, error))
        goto out;

    /* prepare */
    if (!phase(m, VMSHIFT_PHASE_PREPARE, error))
        goto out;
    if (moves_storage) {
        for (guint i = 0; i < m->ddef->disks->len; i++) {
            KvmDiskDef *dk = m->ddef->disks->pdata[i];
            KvmDiskDef *sk = m->sdef->disks->pdata[i];
            if (!strcmp(dk->path, sk->path))
                continue;
            guint64 size = 0;
            if (!disk_virtual_size(m->src, sk->path, &size, error))
                goto out;
            g_ptr_array_add(m->new_files, g_strdup(dk->path));
            if (!save_new_files(m, error) || !create_image(m->dst, dk->path, dk->format, size,
                                                          error))
                goto out;
        }
    }
    /* with disks to mirror the destination stays paused until they are in */
    if (!prepare_destination(m, KVM_START_INCOMING | (moves_storage ? KVM_START_PAUSED : 0),
                             error))
        goto out;
    if (!set_caps(m->sq, &m->t, FALSE, error) ||
        !set_caps_ex(m->dq, &m->t, TRUE, moves_storage, error))
        goto out;
    if (moves_storage) {
        int nport = kvm_host_pick_port(m->dst);
        json_object *a = json_object_new_object();
        json_object *addr = json_object_new_object();
        json_object *data = json_object_new_object();
        json_object_object_add(data, "host", json_object_new_string(m->dst->migration_address));
        char *nps = g_strdup_printf("%d", nport);
        json_object_object_add(data, "port", json_object_new_string(nps));
        g_free(nps);
        json_object_object_add(addr, "type", json_object_new_string("inet"));
        json_object_object_add(addr, "data", data);
        json_object_object_add(a, "addr", addr);
        if (!vmshift_qmp_execute_simple(m->dq, "nbd-server-start", a, QMP_CMD_TIMEOUT, error))
            goto out;
        for (guint i = 0; i < m->ddef->disks->len; i++) {
            KvmDiskDef *dk = m->ddef->disks->pdata[i];
            KvmDiskDef *sk = m->sdef->disks->pdata[i];
            if (!strcmp(dk->path, sk->path))
                continue;
            json_object *e = json_object_new_object();
            json_object_object_add(e, "type", json_object_new_string("nbd"));
            json_object_object_add(e, "id", json_object_new_string(dk->id));
            json_object_object_add(e, "node-name", json_object_new_string(dk->id));
            json_object_object_add(e, "writable", json_object_new_boolean(1));
            if (!vmshift_qmp_execute_simple(m->dq, "block-export-add", e, QMP_CMD_TIMEOUT, error))
                goto out;
            json_object *f = json_object_new_object();
            json_object *srv = json_object_new_object();
            json_object_object_add(srv, "type", json_object_new_string("inet"));
            json_object_object_add(srv, "host", json_object_new_string(m->dst->migration_address));
            char *ps = g_strdup_printf("%d", nport);
            json_object_object_add(srv, "port", json_object_new_string(ps));
            g_free(ps);
            json_object_object_add(f, "driver", json_object_new_string("nbd"));
            json_object_object_add(f, "server", srv);
            json_object_object_add(f, "export", json_object_new_string(dk->id));
            /* the NBD node is the raw target: mirror straight into it */
            Mirror *x = g_new0(Mirror, 1);
            x->disk = g_strdup(sk->id);
            x->old_path = g_strdup(sk->path);
            x->new_path = g_strdup(dk->path);
            g_ptr_array_add(mirrors, x);
            x->old_node = disk_node(m->sq, sk->id, error);
            if (!x->old_node) {
                json_object_put(f);
                goto out;
            }
            x->new_node = g_strdup_printf("%s-nbd", sk->id);
            json_object_object_add(f, "node-name", json_object_new_string(x->new_node));
            if (!vmshift_qmp_execute_simple(m->sq, "blockdev-add", f, QMP_CMD_TIMEOUT, error)) {
                g_free(x->new_node);
                x->new_node = NULL;
                goto out;
            }
            x->job = g_strdup_printf("vmshift-mirror-%s", sk->id);
            json_object *mj = json_object_new_object();
            json_object_object_add(mj, "job-id", json_object_new_string(x->job));
            json_object_object_add(mj, "device", json_object_new_string(x->old_node));
            json_object_object_add(mj, "target", json_object_new_string(x->new_node));
            json_object_object_add(mj, "sync", json_object_new_string("full"));
            if (!vmshift_qmp_execute_simple(m->sq, "blockdev-mirror", mj, QMP_CMD_TIMEOUT,
                                            error)) {
                g_free(x->job);
                x->job = NULL;
                goto out;
            }
            vmshift_job_log(m->job, VMSHIFT_LOG_INFO, "mirroring disk %s to %s:%s over NBD",
                            sk->id, m->dst->name, dk->path);
        }
    }
    int port = 0;
    for (int attempt = 0; attempt < 5; attempt++) {
        port = kvm_host_pick_port(m->dst);
        char *uri = g_strdup_printf("tcp:%s:%d", m->dst->migration_address, port);
        json_object *a = json_object_new_object();
        json_object_object_add(a, "uri", json_object_new_string(uri));
        g_free(uri);
        g_clear_error(&local);
        if (vmshift_qmp_execute_simple(m->dq, "migrate-incoming", a, QMP_CMD_TIMEOUT, &local))
            break;
        if (!strstr(local->message, "in use")) {
            g_propagate_error(error, local);
            local = NULL;
            goto out;
        }
    }
    if (local) {
        g_propagate_error(error, local);
        local = NULL;
        goto out;
    }

    /* transfer */
    if (!phase(m, VMSHIFT_PHASE_TRANSFER, error))
        goto out;
    if (mirrors->len && !wait_mirrors_ready(m, m->sq, mirrors, error))
        goto out;
    if (!save(m, "stage", "transfer", error))
        goto out;
    if (m->t.paused) {
        /* journaled before the stop: repair resumes a source left paused */
        if (!save(m, "source-paused", "1", error))
            goto out;
        m->t_paused = g_get_monotonic_time();
        if (!vmshift_qmp_execute_simple(m->sq, "stop", NULL, QMP_CMD_TIMEOUT, error))
            goto out;
        m->src_paused = TRUE;
        vmshift_job_log(m->job, VMSHIFT_LOG_INFO, "source paused for the transfer (TCG)");
        vmshift_job_set_location(m->job, m->src->name, "paused, migrating");
    } else {
        vmshift_job_set_location(m->job, m->src->name, "running, migrating");
    }
    char *uri = g_strdup_printf("tcp:%s:%d", m->dst->migration_address, port);
    json_object *a = json_object_new_object();
    json_object_object_add(a, "uri", json_object_new_string(uri));
    g_free(uri);
    gint64 t_mig = g_get_monotonic_time();
    if (!vmshift_qmp_execute_simple(m->sq, "migrate", a, QMP_CMD_TIMEOUT, error)) {
        if (strstr((*error)->message, "duplicate yank instance"))
            g_prefix_error(error, "QEMU 7.2 cannot migrate this VM again after an earlier "
                           "migration failed with multifd (restart the VM first): ");
        goto out;
    }
    if (!follow_migration(m, t_mig, error))
        goto out;

    /* switchover: the source has stopped and handed over */
    save(m, "stage", "completed", NULL);
    if (!phase(m, VMSHIFT_PHASE_SWITCHOVER, error)) {
        /* past the point of no return: keep going */
        vmshift_job_log(m->job, VMSHIFT_LOG_WARNING, "%s", (*error)->message);
        g_clear_error(error);
    }
    if (moves_storage) {
        /* the source is stopped: let each mirror write its last dirty
         * blocks and complete without pivot (the destination owns the new
         * images from now on). The destination was started paused for
         * them: resume it, also when no disk had to move. */
        if (mirrors->len)
            abort_mirrors_ex(m, m->sq, mirrors, TRUE);
        vmshift_qmp_execute_simple(m->dq, "nbd-server-stop", NULL, QMP_CMD_TIMEOUT, NULL);
        if (!vmshift_qmp_execute_simple(m->dq, "cont", NULL, QMP_CMD_TIMEOUT, error))
            goto out;
    } else if (m->src_paused && !resume_destination(m, NULL, error)) {
        goto out;
    }
    if (!wait_dest_running(m, error))
        goto out;
    /* the guest stood still from the pause on, whatever QEMU counts */
    gint64 paused_ms = -1;
    if (m->src_paused)
        paused_ms = ((m->t_resumed ? m->t_resumed : g_get_monotonic_time()) - m->t_paused) / 1000;
    vmshift_job_set_location(m->job, m->dst->name, "running");
    json_object *r = final_stats(m->sq);
    if (r) {
        if (paused_ms >= 0 && vmshift_json_get_int(r, "downtime", 0) < paused_ms)
            json_object_object_add(r, "downtime", json_object_new_int64(paused_ms));
        report_stats(m, r, (g_get_monotonic_time() - t0) / 1000);
        vmshift_job_log(m->job, VMSHIFT_LOG_INFO,
                        "migrated: total %" G_GINT64_FORMAT " ms, downtime %" G_GINT64_FORMAT
                        " ms, %" G_GINT64_FORMAT " MiB", vmshift_json_get_int(r, "total-time", -1),
                        vmshift_json_get_int(r, "downtime", -1),
                        vmshift_json_get_int(r, "ram/transferred", 0) >> 20);
        json_object_put(r);
    }

    /* cleanup: the source QEMU and its definition go */
    save(m, "stage", "cleanup", NULL);
    if (!phase(m, VMSHIFT_PHASE_CLEANUP, &local)) {
        vmshift_job_log(m->job, VMSHIFT_LOG_WARNING, "%s", local->message);
        g_clear_error(&local);
    }
    vmshift_qmp_free(m->sq);
    m->sq = NULL;
    if (!kvm_vm_stop(m->src, m->sdef->name, 10, &local)) {
        vmshift_job_log(m->job, VMSHIFT_LOG_WARNING, "source: %s", local->message);
        g_clear_error(&local);
    }
    char *sdir = kvm_host_vm_dir(m->src, m->sdef->name);
    kvm_host_remove_tree(m->src, sdir, NULL);
    g_free(sdir);
    if (mirrors->len) {
        for (guint i = 0; i < mirrors->len; i++) {
            Mirror *x = mirrors->pdata[i];
            const char *argv[] = { "rm", "-f", "--", x->old_path, NULL };
            if (kvm_host_run(m->src, argv, NULL, NULL, 30, &local))
                vmshift_job_log(m->job, VMSHIFT_LOG_INFO, "removed %s:%s", m->src->name,
                                x->old_path);
            g_clear_error(&local);
        }
    }
    save(m, "stage", "done", NULL);
    ok = TRUE;
out:
    if (!ok) {
        gboolean handed_over = FALSE;
        char *stage = vmshift_job_get_saved(m->job, "stage");
        handed_over = g_strcmp0(stage, "completed") == 0 || g_strcmp0(stage, "cleanup") == 0 ||
                      g_strcmp0(stage, "postcopy") == 0;
        g_free(stage);
        if (!handed_over) {
            if (mirrors->len && m->sq)
                abort_mirrors(m, m->sq, mirrors);
            rollback_destination(m);
            /* make sure the source runs */
            if (m->sq && !vmshift_qmp_is_broken(m->sq)) {
                vmshift_qmp_set_cancellable(m->sq, NULL);
                json_object *s = vmshift_qmp_execute(m->sq, "query-status", NULL,
                                                     QMP_CMD_TIMEOUT, NULL);
                const char *sst = vmshift_json_get_string(s, "status");
                if (sst && strcmp(sst, "running") && (strcmp(sst, "paused") || m->src_paused))
                    vmshift_qmp_execute_simple(m->sq, "cont", NULL, QMP_CMD_TIMEOUT, NULL);
                if (s)
                    json_object_put(s);
            }
            vmshift_job_set_location(m->job, m->src->name, "running (migration rolled back)");
        } else {
            vmshift_job_set_location(m->job, m->dst->name,
                                     "handed over; check it (vmshift job repair)");
        }
    }
    if (opts)
        g_variant_dict_unref(opts);
    g_ptr_array_unref(mirrors);
    return ok;
}

/* ---- storage migration on the same host -------------------------------- */

/*
 * A stopped VM's image between two machines: the source serves it
 * read-only with qemu-nbd on its migration address (one client, gone when
 * that client disconnects), and the destination pulls it with qemu-img
 * convert, which keeps it sparse and flattens any backing chain, as the
 * local copy does. Like QEMU's own migration and NBD streams, the transfer
 * is plain TCP on the migration network.
 */
static gboolean
copy_image_nbd(Mig *m, const char *from, const char *to, const char *format, GError **error)
{
    KvmHost *s = m->src;
    int port = kvm_host_pick_port(s);
    char *ps = g_strdup_printf("%d", port);
    char *pidf = g_strdup_printf("%s/vmshift-nbd-%d.pid", s->run_dir, port);
    char *fmt = g_strdup_printf("--format=%s", format);
    const char *serve[] = { "qemu-nbd", "--read-only", "--fork", "--shared=1", fmt,
                            "--bind", s->migration_address, "--port", ps,
                            "--export-name", "vmshift", "--pid-file", pidf, from, NULL };
    gboolean ok = FALSE;
    vmshift_job_log(m->job, VMSHIFT_LOG_INFO, "copying %s:%s to %s:%s over NBD", s->name, from,
                    m->dst->name, to);
    if (kvm_host_run(s, serve, NULL, NULL, 60, error)) {
        gboolean v6 = strchr(s->migration_address, ':') != NULL;
        char *uri = g_strdup_printf("nbd://%s%s%s:%d/vmshift", v6 ? "[" : "",
                                    s->migration_address, v6 ? "]" : "", port);
        const char *pull[] = { "qemu-img", "convert", "-f", "raw", "-O", format, uri, to, NULL };
        ok = kvm_host_run(m->dst, pull, NULL, NULL, 3600, error);
        g_free(uri);
        /* normally gone with its client; not when the pull never connected */
        char *pid = NULL;
        if (kvm_host_read_file(s, pidf, &pid, NULL)) {
            gint64 p = g_ascii_strtoll(pid, NULL, 10);
            if (kvm_host_pid_alive(s, p))
                kvm_host_kill(s, p, SIGTERM);
            g_free(pid);
        }
        const char *rm[] = { "rm", "-f", "--", pidf, NULL };
        kvm_host_run(s, rm, NULL, NULL, 30, NULL);
    }
    g_free(ps);
    g_free(pidf);
    g_free(fmt);
    return ok;
}

static gboolean
copy_image(Mig *m, KvmHost *h, const char *from, const char *to, const char *format,
           GError **error)
{
    char *dir = g_path_get_dirname(to);
    gboolean ok = kvm_host_mkdir(h, dir, error);
    g_free(dir);
    if (!ok)
        return FALSE;
    if (kvm_host_exists(h, to)) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_CONFLICT, "host %s: %s already exists",
                    h->name, to);
        return FALSE;
    }
    g_ptr_array_add(m->new_files, g_strdup(to));
    if (!save_new_files(m, error))
        return FALSE;
    if (h == m->dst && m->src != m->dst &&
        !(kvm_host_is_local(m->src) && kvm_host_is_local(m->dst)))
        return copy_image_nbd(m, from, to, format, error);
    /* convert flattens any backing chain into one image */
    const char *argv[] = { "qemu-img", "convert", "-O", format, from, to, NULL };
    vmshift_job_log(m->job, VMSHIFT_LOG_INFO, "copying %s to %s", from, to);
    return kvm_host_run(h, argv, NULL, NULL, 3600, error);
}

static gboolean
migrate_storage(Mig *m, GError **error)
{
    GPtrArray *mirrors = g_ptr_array_new_with_free_func((GDestroyNotify) mirror_free);
    gboolean ok = FALSE, running = kvm_vm_is_running(m->src, m->sdef->name);
    m->ddef = kvm_vm_def_copy(m->sdef);
    GPtrArray *moving = g_ptr_array_new();      /* indexes as pointers */
    for (guint i = 0; i < m->ddef->disks->len; i++) {
        KvmDiskDef *dk = m->ddef->disks->pdata[i];
        const char *dir = vmshift_migration_spec_disk_dir(m->spec, dk->id);
        if (!dir)
            continue;
        char *np = target_path(dir, dk->path, dk->id, m->ddef->name);
        if (strcmp(np, dk->path)) {
            g_free(dk->path);
            dk->path = np;
            g_ptr_array_add(moving, GUINT_TO_POINTER(i));
        } else {
            g_free(np);
        }
    }
    if (moving->len == 0) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_INVALID_ARGUMENT,
                    "storage migration of VM %s: no disk moves (give --path or --disk-path)",
                    m->sdef->name);
        goto out;
    }
    if (!phase(m, VMSHIFT_PHASE_PREPARE, error))
        goto out;
    if (running) {
        m->sq = kvm_vm_qmp(m->src, m->sdef->name, m->b->qmp_timeout_ms, m->cancel, error);
        if (!m->sq)
            goto out;
        for (guint k = 0; k < moving->len; k++) {
            guint i = GPOINTER_TO_UINT(moving->pdata[k]);
            KvmDiskDef *sk = m->sdef->disks->pdata[i];
            KvmDiskDef *dk = m->ddef->disks->pdata[i];
            guint64 size = 0;
            if (!disk_virtual_size(m->src, sk->path, &size, error))
                goto out;
            g_ptr_array_add(m->new_files, g_strdup(dk->path));
            if (!save_new_files(m, error) ||
                !create_image(m->src, dk->path, dk->format, size, error))
                goto out;
        }
        if (!phase(m, VMSHIFT_PHASE_TRANSFER, error) || !save(m, "stage", "mirror", error))
            goto out;
        for (guint k = 0; k < moving->len; k++) {
            guint i = GPOINTER_TO_UINT(moving->pdata[k]);
            KvmDiskDef *dk = m->ddef->disks->pdata[i];
            KvmDiskDef *sk = m->sdef->disks->pdata[i];
            json_object *f = json_object_new_object();
            json_object_object_add(f, "driver", json_object_new_string("file"));
            json_object_object_add(f, "filename", json_object_new_string(dk->path));
            if (!start_mirror(m, m->sq, sk, f, dk->path, mirrors, error))
                goto out;
        }
        if (!wait_mirrors_ready(m, m->sq, mirrors, error))
            goto out;
        if (!phase(m, VMSHIFT_PHASE_SWITCHOVER, error))
            goto out;
        if (!pivot_mirrors(m, m->sq, mirrors, error))
            goto out;
        /* past the pivot: the new files are the VM's */
        save(m, "stage", "pivoted", NULL);
        g_ptr_array_set_size(m->new_files, 0);
        save_new_files(m, NULL);
    } else {
        if (!phase(m, VMSHIFT_PHASE_TRANSFER, error))
            goto out;
        for (guint k = 0; k < moving->len; k++) {
            guint i = GPOINTER_TO_UINT(moving->pdata[k]);
            KvmDiskDef *dk = m->ddef->disks->pdata[i];
            KvmDiskDef *sk = m->sdef->disks->pdata[i];
            if (check_cancel(m, error) ||
                !copy_image(m, m->src, sk->path, dk->path, dk->format, error))
                goto out;
            vmshift_job_set_progress(m->job, 100.0 * (k + 1) / moving->len);
        }
        if (!phase(m, VMSHIFT_PHASE_SWITCHOVER, error))
            goto out;
        save(m, "stage", "copied", NULL);
        g_ptr_array_set_size(m->new_files, 0);
        save_new_files(m, NULL);
    }
    /* the definition follows the disks */
    if (!kvm_vm_def_save(m->src, m->ddef, error))
        goto out;
    vmshift_job_set_location(m->job, m->src->name, running ? "running" : "stopped");
    GError *local = NULL;
    if (!phase(m, VMSHIFT_PHASE_CLEANUP, &local)) {
        vmshift_job_log(m->job, VMSHIFT_LOG_WARNING, "%s", local->message);
        g_clear_error(&local);
    }
    for (guint k = 0; k < moving->len; k++) {
        guint i = GPOINTER_TO_UINT(moving->pdata[k]);
        KvmDiskDef *sk = m->sdef->disks->pdata[i];
        const char *argv[] = { "rm", "-f", "--", sk->path, NULL };
        if (kvm_host_run(m->src, argv, NULL, NULL, 30, &local))
            vmshift_job_log(m->job, VMSHIFT_LOG_INFO, "removed the old image %s", sk->path);
        else {
            vmshift_job_log(m->job, VMSHIFT_LOG_WARNING, "%s", local->message);
            g_clear_error(&local);
        }
    }
    save(m, "stage", "done", NULL);
    ok = TRUE;
out:
    if (!ok) {
        if (m->sq && mirrors->len)
            abort_mirrors(m, m->sq, mirrors);
        KvmHost *keep = m->dst;
        m->dst = NULL;
        KvmVmDef *kd = m->ddef;
        m->ddef = NULL;        /* the definition was not moved */
        rollback_destination(m);
        m->ddef = kd;
        m->dst = keep;
        vmshift_job_set_location(m->job, m->src->name,
                                 running ? "running on its old disks" : "stopped, old disks");
    }
    g_ptr_array_unref(moving);
    g_ptr_array_unref(mirrors);
    return ok;
}

/* ---- cold migration ----------------------------------------------------- */

static gboolean
migrate_cold(Mig *m, GError **error)
{
    gboolean ok = FALSE;
    if (kvm_vm_is_running(m->src, m->sdef->name)) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_CONFLICT,
                    "VM %s runs on host %s: cold migration needs it stopped (or use --live)",
                    m->sdef->name, m->src->name);
        return FALSE;
    }
    m->ddef = kvm_vm_def_copy(m->sdef);
    if (!map_networks(m, error))
        return FALSE;
    if (!phase(m, VMSHIFT_PHASE_PREPARE, error) || !save(m, "stage", "prepare", error))
        return FALSE;
    char *ddir = kvm_host_vm_dir(m->dst, m->ddef->name);
    char *dconf = g_build_filename(ddir, "vm.conf", NULL);
    gboolean exists = kvm_host_exists(m->dst, dconf);
    g_free(dconf);
    g_free(ddir);
    if (exists) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_CONFLICT,
                    "host %s already has a VM called %s", m->dst->name, m->ddef->name);
        return FALSE;
    }
    if (!phase(m, VMSHIFT_PHASE_TRANSFER, error))
        goto out;
    for (guint i = 0; i < m->ddef->disks->len; i++) {
        KvmDiskDef *dk = m->ddef->disks->pdata[i];
        const char *dir = vmshift_migration_spec_disk_dir(m->spec, dk->id);
        if (!dir) {
            if (!kvm_host_exists(m->dst, dk->path)) {
                g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_NOT_FOUND,
                            "host %s does not reach disk %s (%s): give --path", m->dst->name,
                            dk->id, dk->path);
                goto out;
            }
            continue;
        }
        char *np = target_path(dir, dk->path, dk->id, m->ddef->name);
        if (check_cancel(m, error) || !copy_image(m, m->dst, dk->path, np, dk->format, error)) {
            g_free(np);
            goto out;
        }
        g_free(dk->path);
        dk->path = np;
        vmshift_job_set_progress(m->job, 100.0 * (i + 1) / m->ddef->disks->len);
    }
    if (!phase(m, VMSHIFT_PHASE_SWITCHOVER, error))
        goto out;
    m->dst_def_written = TRUE;
    if (!kvm_vm_def_save(m->dst, m->ddef, error))
        goto out;
    save(m, "stage", "completed", NULL);
    /* the VM is registered at the destination now */
    char *sdir = kvm_host_vm_dir(m->src, m->sdef->name);
    kvm_host_remove_tree(m->src, sdir, NULL);
    g_free(sdir);
    vmshift_job_set_location(m->job, m->dst->name, "stopped");
    if (m->spec->start) {
        GError *local = NULL;
        if (!kvm_vm_start(m->dst, m->ddef, KVM_START_NORMAL, NULL, &local)) {
            vmshift_job_log(m->job, VMSHIFT_LOG_ERROR, "%s", local->message);
            g_propagate_prefixed_error(error, local,
                                       "VM %s moved to host %s but did not start: ",
                                       m->ddef->name, m->dst->name);
            return FALSE;
        }
        vmshift_job_set_location(m->job, m->dst->name, "running");
    }
    if (!phase(m, VMSHIFT_PHASE_CLEANUP, error))
        g_clear_error(error);
    for (guint i = 0; i < m->sdef->disks->len; i++) {
        KvmDiskDef *sk = m->sdef->disks->pdata[i];
        KvmDiskDef *dk = m->ddef->disks->pdata[i];
        if (strcmp(sk->path, dk->path)) {
            const char *argv[] = { "rm", "-f", "--", sk->path, NULL };
            kvm_host_run(m->src, argv, NULL, NULL, 30, NULL);
        }
    }
    save(m, "stage", "done", NULL);
    ok = TRUE;
out:
    if (!ok) {
        char *stage = vmshift_job_get_saved(m->job, "stage");
        gboolean moved = g_strcmp0(stage, "completed") == 0;
        g_free(stage);
        if (!moved) {
            rollback_destination(m);
            vmshift_job_set_location(m->job, m->src->name, "stopped");
        }
    }
    return ok;
}

/* ---- entry points ------------------------------------------------------- */

gboolean
kvm_migrate(KvmBackend *b, const VmshiftMigrationSpec *spec, VmshiftJob *job, GError **error)
{
    Mig m = { .b = b, .job = job, .spec = spec };
    m.cancel = vmshift_job_get_cancellable(job);
    m.new_files = g_ptr_array_new_with_free_func(g_free);
    gboolean ok = FALSE;

    if (!vmshift_job_set_phase(job, VMSHIFT_PHASE_VALIDATE, error))
        goto out;
    m.src = kvm_backend_locate_vm(b, spec->vm, &m.sdef, error);
    if (!m.src)
        goto out;
    vmshift_job_set_location(job, m.src->name, NULL);
    /* the files' access rules as they are now are the model for
     * recreate_acl at the new place */
    kvm_acl_capture_def(m.src, m.sdef);
    if (!save(&m, "vm", m.sdef->name, error) || !save(&m, "src-host", m.src->name, error))
        goto out;
    if (spec->type == VMSHIFT_MIGRATION_STORAGE) {
        m.dst = NULL;
        ok = migrate_storage(&m, error);
        goto out;
    }
    if (!spec->dest_host) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_INVALID_ARGUMENT,
                    "migration of VM %s: no destination host", spec->vm);
        goto out;
    }
    m.dst = kvm_backend_find_host(b, spec->dest_host, error);
    if (!m.dst)
        goto out;
    if (m.dst == m.src) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_INVALID_ARGUMENT,
                    "VM %s already is on host %s (use migrate-storage to move its disks)",
                    spec->vm, m.src->name);
        goto out;
    }
    if (kvm_host_is_local(m.src) && kvm_host_is_local(m.dst) &&
        !strcmp(m.src->run_dir, m.dst->run_dir)) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_CONFIG,
                    "hosts %s and %s share the run directory %s", m.src->name, m.dst->name,
                    m.src->run_dir);
        goto out;
    }
    if (!save(&m, "dst-host", m.dst->name, error))
        goto out;
    if (spec->type == VMSHIFT_MIGRATION_COLD)
        ok = migrate_cold(&m, error);
    else
        ok = migrate_live(&m, error);
out:
    mig_clear(&m);
    return ok;
}

/*
 * Repair after the host process died (or a failed job): the VM must end up
 * running in exactly one place. Before hand-over: roll back (stop and remove
 * the destination, cancel what QEMU still runs). After: finish the move.
 */
gboolean
kvm_repair(KvmBackend *b, VmshiftJob *job, GError **error)
{
    char *vm = vmshift_job_get_saved(job, "vm");
    char *srcn = vmshift_job_get_saved(job, "src-host");
    char *dstn = vmshift_job_get_saved(job, "dst-host");
    char *stage = vmshift_job_get_saved(job, "stage");
    char *files = vmshift_job_get_saved(job, "new-files");
    gboolean ok = FALSE;
    KvmHost *src = NULL, *dst = NULL;
    VmshiftQmp *sq = NULL;
    char *src_status = NULL;

    if (!vm || !srcn) {
        vmshift_job_set_result(job, "repair", "nothing-to-do");
        ok = TRUE;
        goto out;
    }
    src = kvm_backend_find_host(b, srcn, error);
    if (!src)
        goto out;
    if (dstn && !(dst = kvm_backend_find_host(b, dstn, error)))
        goto out;
    vmshift_job_log(job, VMSHIFT_LOG_INFO, "repair of VM %s (%s -> %s), stage %s", vm, srcn,
                    dstn ? dstn : srcn, stage ? stage : "(none)");

    gboolean src_up = kvm_vm_is_running(src, vm);
    if (src_up && (sq = kvm_vm_qmp(src, vm, 5000, NULL, NULL))) {
        json_object *r = vmshift_qmp_execute(sq, "query-status", NULL, QMP_CMD_TIMEOUT, NULL);
        src_status = g_strdup(vmshift_json_get_string(r, "status"));
        if (r)
            json_object_put(r);
        /* an interrupted migration may still run inside QEMU: settle it */
        r = vmshift_qmp_execute(sq, "query-migrate", NULL, QMP_CMD_TIMEOUT, NULL);
        const char *ms = vmshift_json_get_string(r, "status");
        if (ms && (!strcmp(ms, "active") || !strcmp(ms, "setup") ||
                   !strcmp(ms, "pre-switchover"))) {
            vmshift_qmp_execute_simple(sq, "migrate_cancel", NULL, QMP_CMD_TIMEOUT, NULL);
            vmshift_job_log(job, VMSHIFT_LOG_INFO, "cancelled the migration still running "
                            "in the source QEMU");
            for (int i = 0; i < 100; i++) {
                json_object *q = vmshift_qmp_execute(sq, "query-migrate", NULL,
                                                     QMP_CMD_TIMEOUT, NULL);
                const char *s = vmshift_json_get_string(q, "status");
                gboolean settled = !s || !strcmp(s, "cancelled") || !strcmp(s, "failed") ||
                                   !strcmp(s, "completed");
                if (settled && s && !strcmp(s, "completed")) {
                    g_free(src_status);
                    src_status = g_strdup("postmigrate");
                }
                if (q)
                    json_object_put(q);
                if (settled)
                    break;
                g_usleep(100000);
            }
            if (g_strcmp0(src_status, "postmigrate")) {
                g_free(src_status);
                json_object *s2 = vmshift_qmp_execute(sq, "query-status", NULL,
                                                      QMP_CMD_TIMEOUT, NULL);
                src_status = g_strdup(vmshift_json_get_string(s2, "status"));
                if (s2)
                    json_object_put(s2);
            }
        } else if (ms && !strcmp(ms, "postcopy-active")) {
            g_free(src_status);
            src_status = g_strdup("postcopy");
        }
        if (r)
            json_object_put(r);
        /* block mirrors of an interrupted storage move */
        json_object *jobs = vmshift_qmp_execute(sq, "query-block-jobs", NULL, QMP_CMD_TIMEOUT,
                                                NULL);
        gsize nj = jobs ? json_object_array_length(jobs) : 0;
        for (gsize i = 0; i < nj; i++) {
            const char *dev = vmshift_json_get_string(json_object_array_get_idx(jobs, i),
                                                      "device");
            if (dev && g_str_has_prefix(dev, "vmshift-mirror-")) {
                json_object *a = json_object_new_object();
                json_object_object_add(a, "device", json_object_new_string(dev));
                json_object_object_add(a, "force", json_object_new_boolean(1));
                vmshift_qmp_execute_simple(sq, "block-job-cancel", a, QMP_CMD_TIMEOUT, NULL);
                vmshift_job_log(job, VMSHIFT_LOG_INFO, "cancelled block job %s", dev);
            }
        }
        if (jobs)
            json_object_put(jobs);
    }
    gboolean dst_up = dst && kvm_vm_is_running(dst, vm);
    gboolean handed_over = (dst_up && (!src_up || !g_strcmp0(src_status, "postmigrate"))) ||
                           (dst && !src_up && g_strcmp0(stage, "completed") == 0) ||
                           !g_strcmp0(src_status, "postcopy");
    if (!g_strcmp0(src_status, "postcopy")) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_CONFLICT,
                    "VM %s is in post-copy between %s and %s: let it finish, then repair "
                    "again", vm, srcn, dstn);
        goto out;
    }
    if (dst && handed_over) {
        /* finish: the destination runs the VM */
        if (dst_up) {
            VmshiftQmp *dq = kvm_vm_qmp(dst, vm, 5000, NULL, NULL);
            if (dq) {
                json_object *r = vmshift_qmp_execute(dq, "query-status", NULL, QMP_CMD_TIMEOUT,
                                                     NULL);
                const char *s = vmshift_json_get_string(r, "status");
                if (s && !strcmp(s, "paused"))
                    vmshift_qmp_execute_simple(dq, "cont", NULL, QMP_CMD_TIMEOUT, NULL);
                if (r)
                    json_object_put(r);
                vmshift_qmp_free(dq);
            }
        }
        if (sq) {
            vmshift_qmp_free(sq);
            sq = NULL;
        }
        kvm_vm_stop(src, vm, 10, NULL);
        char *sdir = kvm_host_vm_dir(src, vm);
        kvm_host_remove_tree(src, sdir, NULL);
        g_free(sdir);
        vmshift_job_set_location(job, dst->name, dst_up ? "running" : "stopped");
        vmshift_job_set_result(job, "repair", "resumed");
        vmshift_job_log(job, VMSHIFT_LOG_INFO, "the VM had been handed over to %s: finished "
                        "the move (source stopped and removed)", dst->name);
        ok = TRUE;
        goto out;
    }
    /* roll back: the source keeps (or gets back) the VM */
    gboolean did = FALSE;
    if (dst) {
        if (dst_up) {
            kvm_vm_stop(dst, vm, 5, NULL);
            did = TRUE;
        }
        char *ddir = kvm_host_vm_dir(dst, vm);
        char *dconf = g_build_filename(ddir, "vm.conf", NULL);
        if (kvm_host_exists(dst, dconf) && src_up) {
            kvm_host_remove_tree(dst, ddir, NULL);
            did = TRUE;
        } else if (kvm_host_exists(dst, dconf) && !src_up && g_strcmp0(stage, "completed")) {
            /* cold move interrupted before the switch: the source's
             * definition is authoritative */
            char *sdir = kvm_host_vm_dir(src, vm);
            char *sconf = g_build_filename(sdir, "vm.conf", NULL);
            if (kvm_host_exists(src, sconf)) {
                kvm_host_remove_tree(dst, ddir, NULL);
                did = TRUE;
            }
            g_free(sconf);
            g_free(sdir);
        }
        g_free(dconf);
        g_free(ddir);
    }
    if (files && *files) {
        char **fv = g_strsplit(files, ";", -1);
        for (char **f = fv; *f; f++) {
            if (!**f)
                continue;
            KvmHost *h = dst ? dst : src;
            const char *argv[] = { "rm", "-f", "--", *f, NULL };
            kvm_host_run(h, argv, NULL, NULL, 30, NULL);
            vmshift_job_log(job, VMSHIFT_LOG_INFO, "removed %s:%s", h->name, *f);
            did = TRUE;
        }
        g_strfreev(fv);
        vmshift_job_save(job, "new-files", "", NULL);
    }
    /* a source the job paused for the transfer (TCG) runs again */
    char *paused_by_job = vmshift_job_get_saved(job, "source-paused");
    if (sq && src_status && strcmp(src_status, "running") &&
        (strcmp(src_status, "paused") || !g_strcmp0(paused_by_job, "1"))) {
        vmshift_qmp_execute_simple(sq, "cont", NULL, QMP_CMD_TIMEOUT, NULL);
        did = TRUE;
    }
    g_free(paused_by_job);
    vmshift_job_set_location(job, src->name, src_up ? "running" : "stopped");
    vmshift_job_set_result(job, "repair", did ? "rolled-back" : "nothing-to-do");
    vmshift_job_save(job, "stage", "rolled-back", NULL);
    ok = TRUE;
out:
    if (sq)
        vmshift_qmp_free(sq);
    g_free(src_status);
    g_free(vm);
    g_free(srcn);
    g_free(dstn);
    g_free(stage);
    g_free(files);
    return ok;
}
