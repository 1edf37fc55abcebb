/* vmshift KVM plugin: the one table of live-migration tuning rules (see
 * kvm-tuning.h). Pure: no I/O, no job, no QEMU. */
#include "config.h"

#include <string.h>

#include <vmshift/vmshift.h>

#include "kvm-tuning.h"

const char *const kvm_tuning_option_keys[] = { "max-bandwidth",    "postcopy",
                                               "multifd-channels", "downtime-limit",
                                               "auto-converge",    "measure-dirty-rate",
                                               "tcg-safe",         NULL };

static gboolean
bad_value(const char *key, const char *want, GError **error)
{
    g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_INVALID_ARGUMENT,
                "kvm: migration option '%s' takes %s", key, want);
    return FALSE;
}

static gboolean
read_u64(const char *key, GVariant *v, guint64 *out, GError **error)
{
    if (g_variant_is_of_type(v, G_VARIANT_TYPE_UINT64))
        *out = g_variant_get_uint64(v);
    else if (g_variant_is_of_type(v, G_VARIANT_TYPE_INT64) && g_variant_get_int64(v) >= 0)
        *out = (guint64)g_variant_get_int64(v);
    else if (g_variant_is_of_type(v, G_VARIANT_TYPE_UINT32))
        *out = g_variant_get_uint32(v);
    else if (g_variant_is_of_type(v, G_VARIANT_TYPE_INT32) && g_variant_get_int32(v) >= 0)
        *out = (guint64)g_variant_get_int32(v);
    else if (g_variant_is_of_type(v, G_VARIANT_TYPE_STRING)) {
        const char *s = g_variant_get_string(v, NULL);
        if (!g_ascii_string_to_unsigned(s, 10, 0, G_MAXUINT64, out, NULL))
            return bad_value(key, "a whole number", error);
    } else
        return bad_value(key, "a whole number", error);
    return TRUE;
}

static gboolean
read_bool(const char *key, GVariant *v, int *out, GError **error)
{
    if (g_variant_is_of_type(v, G_VARIANT_TYPE_BOOLEAN)) {
        *out = g_variant_get_boolean(v) ? 1 : 0;
        return TRUE;
    }
    if (g_variant_is_of_type(v, G_VARIANT_TYPE_STRING)) {
        const char *s = g_variant_get_string(v, NULL);
        if (!g_ascii_strcasecmp(s, "true") || !strcmp(s, "1") || !g_ascii_strcasecmp(s, "yes")) {
            *out = 1;
            return TRUE;
        }
        if (!g_ascii_strcasecmp(s, "false") || !strcmp(s, "0") || !g_ascii_strcasecmp(s, "no")) {
            *out = 0;
            return TRUE;
        }
    }
    return bad_value(key, "true or false", error);
}

static gboolean
read_one(const char *key, GVariant *v, KvmTuningOptions *o, GError **error)
{
    guint64 n = 0;
    if (!strcmp(key, "max-bandwidth"))
        return read_u64(key, v, &o->max_bandwidth, error);
    if (!strcmp(key, "downtime-limit"))
        return read_u64(key, v, &o->downtime_limit_ms, error);
    if (!strcmp(key, "multifd-channels")) {
        if (!read_u64(key, v, &n, error))
            return FALSE;
        if (n < 1 || n > 255)
            return bad_value(key, "a number of channels from 1 to 255", error);
        o->multifd_channels = (gint64)n;
        return TRUE;
    }
    if (!strcmp(key, "postcopy"))
        return read_bool(key, v, &o->postcopy, error);
    if (!strcmp(key, "auto-converge"))
        return read_bool(key, v, &o->auto_converge, error);
    if (!strcmp(key, "measure-dirty-rate"))
        return read_bool(key, v, &o->measure_dirty_rate, error);
    if (!strcmp(key, "tcg-safe"))
        return read_bool(key, v, &o->tcg_safe, error);
    g_autofree char *known = g_strjoinv(", ", (char **)kvm_tuning_option_keys);
    g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_INVALID_ARGUMENT,
                "kvm: unknown migration option '%s' (known: %s)", key, known);
    return FALSE;
}

gboolean
kvm_tuning_read_options(GVariant *options, KvmTuningOptions *out, GError **error)
{
    *out = (KvmTuningOptions){
        .postcopy = -1, .auto_converge = -1, .measure_dirty_rate = -1, .tcg_safe = -1
    };
    if (!options)
        return TRUE;
    GVariantIter it;
    const char *key;
    GVariant *val;
    g_variant_iter_init(&it, options);
    while (g_variant_iter_next(&it, "{&sv}", &key, &val)) {
        g_autoptr(GVariant) v = val;
        if (!read_one(key, v, out, error))
            return FALSE;
    }
    return TRUE;
}

void
kvm_tuning_clear(KvmTuning *t)
{
    g_clear_pointer(&t->why, g_free);
}

gboolean
kvm_tuning_prefers_postcopy(gint64 dirty_mib_s, guint64 link_mib_s, guint64 downtime_ms)
{
    if (dirty_mib_s <= 0 || link_mib_s == 0)
        return FALSE;
    double expected_ms = (double)dirty_mib_s * 1000.0 / (double)link_mib_s;
    return expected_ms > (double)downtime_ms / 4;
}

gboolean
kvm_tuning_tcg_loses_writes(gboolean tcg, int qemu_major)
{
    return tcg && qemu_major > 0 && qemu_major < KVM_TCG_COHERENT_QEMU_MAJOR;
}

static gboolean
tcg_paused(const KvmTuningFacts *f, const KvmTuningOptions *o)
{
    return kvm_tuning_tcg_loses_writes(f->tcg, f->qemu_major) && o->tcg_safe != 0;
}

gboolean
kvm_tuning_needs_dirty_rate(const KvmTuningFacts *f, const KvmTuningOptions *o)
{
    return o->measure_dirty_rate == 1 && o->postcopy < 0 && !tcg_paused(f, o);
}

/*
 * Under TCG, QEMU before 9.0 loses guest writes during a live migration:
 * its 64-page fast path that clears the migration bitmap does not reset the
 * TCG TLB, so a store through a TLB entry made before the clear does not
 * dirty the page again, and the destination keeps an older copy (QEMU
 * commit 03bfc2188f; measured with the test guest's memory check,
 * docs/design/kvm.md §2.4). Nothing a client can send makes QEMU reset the
 * TLB, so the only safe way is that the guest does not run on the source
 * while its memory is tracked: the source is paused before the migration
 * starts and the destination takes over at once in post-copy (pages follow
 * on demand), or, where post-copy is forbidden or impossible, after a
 * paused pre-copy. tcg-safe=false skips this, for a QEMU that has the fix
 * backported.
 */
static gboolean
decide_paused(const KvmTuningFacts *f, const KvmTuningOptions *o, gboolean may_postcopy,
              KvmTuning *t, GError **error)
{
    if (!f->paused_postcopy && o->postcopy == 1) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_INVALID_ARGUMENT,
                    "post-copy was requested, but the VM runs under TCG on QEMU %d, whose "
                    "live migration can lose guest writes: libvirt must pause it for the "
                    "transfer, and libvirt has no post-copy then (tcg-safe=false to force)",
                    f->qemu_major);
        return FALSE;
    }
    t->paused = TRUE;
    t->postcopy = f->paused_postcopy && may_postcopy && o->postcopy != 0;
    t->multifd = !t->postcopy && t->channels > 1;
    t->autoconverge = FALSE;
    t->why = g_strdup_printf("TCG on QEMU %d loses guest writes during live migration "
                             "(fixed in QEMU 9.0): the source is paused for the transfer, "
                             "%s (tcg-safe=false to migrate live anyway)",
                             f->qemu_major,
                             t->postcopy           ? "and the destination runs at once in post-copy"
                             : !f->paused_postcopy ? "pre-copy (libvirt has no post-copy "
                                                     "from a paused source)"
                             : !may_postcopy       ? "pre-copy (a host forbids post-copy: "
                                                     "allow-postcopy=false)"
                                                   : "pre-copy (postcopy=false requested)");
    return TRUE;
}

/*
 * Pre-copy converges when what the guest dirties during one round fits into
 * the downtime budget: with D MiB/s of unique pages dirtied and a link of L
 * MiB/s, the last round carries about D·1 s (a second is the order of one
 * round here), i.e. D/L seconds of downtime. Within a quarter of the budget
 * (the link estimate is optimistic when vCPUs, migration threads and the
 * destination share the cores): pre-copy; beyond it: post-copy.
 *
 * D is not measured before the start (a probe costs more than the
 * migration of a small guest: calc-dirty-rate needs a second, and the
 * answer is stale by the time the stream runs), unless
 * measure-dirty-rate=true asks for it. Instead, where post-copy may run,
 * the migration starts as pre-copy with post-copy armed (QEMU 7.2 does not
 * combine post-copy with multifd, so one channel, bandwidth lifted), and
 * kvm_tuning_switch_now() decides from QEMU's own statistics of the first
 * pass whether to switch. Where post-copy may not run: pre-copy with
 * multifd, the fastest measured configuration for quiet guests.
 */
static void
decide_live(const KvmTuningFacts *f, const KvmTuningOptions *o, gboolean may_postcopy, KvmTuning *t)
{
    guint64 link = MIN(f->link_mib_s, t->max_bandwidth / (1024 * 1024));
    if (link == 0)
        link = 1;
    double expected_ms = t->dirty_mib_s > 0 ? (double)t->dirty_mib_s * 1000.0 / (double)link : 0.0;
    gboolean prefers = kvm_tuning_prefers_postcopy(t->dirty_mib_s, link, t->downtime_limit_ms);
    if (o->postcopy == 1 || (o->postcopy < 0 && may_postcopy && prefers)) {
        t->postcopy = TRUE;
        t->multifd = FALSE;
        if (o->postcopy == 1)
            t->why = g_strdup("post-copy requested");
        else
            t->why = g_strdup_printf("dirty rate %" G_GINT64_FORMAT
                                     " MiB/s over a %" G_GUINT64_FORMAT
                                     " MiB/s link: a pre-copy round would "
                                     "leave ~%.0f ms of dirty pages, more than a quarter of "
                                     "the %" G_GUINT64_FORMAT " ms downtime limit: post-copy",
                                     t->dirty_mib_s, link, expected_ms, t->downtime_limit_ms);
        return;
    }
    if (o->postcopy < 0 && may_postcopy && t->dirty_mib_s < 0) {
        t->postcopy = TRUE;
        t->postcopy_live = TRUE;
        t->multifd = FALSE;
        t->why = g_strdup_printf("pre-copy with post-copy armed: switched to post-copy once "
                                 "QEMU's statistics show that the last round would take more "
                                 "than a quarter of the %" G_GUINT64_FORMAT " ms downtime limit",
                                 t->downtime_limit_ms);
        return;
    }
    t->multifd = t->channels > 1;
    g_autofree char *rate = t->dirty_mib_s >= 0
                                ? g_strdup_printf("%" G_GINT64_FORMAT, t->dirty_mib_s)
                                : g_strdup("unmeasured");
    if (!may_postcopy && prefers)
        t->why = g_strdup_printf("dirty rate %s MiB/s over a %" G_GUINT64_FORMAT " MiB/s "
                                 "link calls for post-copy, but a host forbids it "
                                 "(allow-postcopy=false): pre-copy%s, which may not "
                                 "converge",
                                 rate, link, t->multifd ? " with multifd" : "");
    else if (t->dirty_mib_s < 0)
        t->why = g_strdup_printf("pre-copy%s (%s)", t->multifd ? " with multifd" : "",
                                 o->postcopy == 0
                                     ? "postcopy=false requested"
                                     : "a host forbids post-copy: allow-postcopy=false");
    else
        t->why = g_strdup_printf("dirty rate %s MiB/s, link %" G_GUINT64_FORMAT " MiB/s: "
                                 "last round ~%.0f ms, within a quarter of the %" G_GUINT64_FORMAT
                                 " ms downtime limit: pre-copy%s",
                                 rate, link, expected_ms, t->downtime_limit_ms,
                                 t->multifd ? " with multifd" : "");
}

/*
 * The live switch (KvmTuning.postcopy_live). During the first pass QEMU
 * sends every page once and knows nothing of the guest's writes; at its
 * end (the second dirty-bitmap sync) `remaining` is what the guest dirtied
 * meanwhile, and the throughput of the pass says how long that round would
 * take. Over a quarter of the downtime limit (the rule of decide_live()):
 * pre-copy would need more rounds, each as long, so post-copy now. Within
 * it: QEMU finishes the pre-copy by itself. A third sync means the rounds
 * do not shrink: post-copy as well.
 *
 * A long first pass is not waited for: after a head start (the zero pages
 * of an idle guest go first and cheaply), its progress projects its end;
 * beyond KVM_TUNING_FIRST_PASS_MS the guest would run (and re-dirty what
 * was sent) on the source for all that time, and on a host where vCPUs and
 * the stream share cores the pass itself is slowed by a busy guest
 * (measured under TCG: 2.7 s for a 1 GiB guest dirtying 256 MiB, against
 * 0.2-0.3 s idle). Post-copy then stops the guest on the source at once,
 * and the rest of the pass is the background stream.
 */
gboolean
kvm_tuning_switch_now(const KvmTuning *t, const KvmLiveStats *s, char **why)
{
    if (why)
        *why = NULL;
    if (!t->postcopy || !t->postcopy_live || s->elapsed_ms <= 0)
        return FALSE;
    guint64 rate = s->bytes_per_s;
    if (!rate && s->transferred)
        rate = s->transferred * 1000 / (guint64)s->elapsed_ms;
    if (!rate)
        return FALSE;
    double round_ms = (double)s->remaining * 1000.0 / (double)rate;
    double budget = (double)t->downtime_limit_ms / 4;
    if (s->passes == 1 && s->total && s->elapsed_ms >= KVM_TUNING_HEAD_START_MS) {
        guint64 done = s->total - MIN(s->remaining, s->total);
        double pass_ms = done ? (double)s->elapsed_ms * (double)s->total / (double)done : 1e12;
        if (pass_ms > KVM_TUNING_FIRST_PASS_MS) {
            if (why)
                *why = g_strdup_printf("the first pass would take ~%.0f ms (%" G_GUINT64_FORMAT
                                       "%% done after %" G_GINT64_FORMAT
                                       " ms), more than %d ms of the guest re-dirtying what "
                                       "was sent",
                                       MIN(pass_ms, 1e9), done * 100 / s->total, s->elapsed_ms,
                                       KVM_TUNING_FIRST_PASS_MS);
            return TRUE;
        }
        return FALSE;
    }
    if (s->passes >= 3) {
        if (why)
            *why = g_strdup_printf("pass %" G_GINT64_FORMAT
                                   " of pre-copy still has %" G_GUINT64_FORMAT
                                   " MiB to send: it does not converge",
                                   s->passes, s->remaining >> 20);
        return TRUE;
    }
    if (s->passes == 2 && round_ms > budget) {
        if (why)
            *why = g_strdup_printf("after the first pass the guest had dirtied %" G_GUINT64_FORMAT
                                   " MiB: ~%.0f ms at %" G_GUINT64_FORMAT
                                   " MiB/s, more than a quarter of the %" G_GUINT64_FORMAT
                                   " ms downtime limit",
                                   s->remaining >> 20, round_ms, rate >> 20, t->downtime_limit_ms);
        return TRUE;
    }
    return FALSE;
}

gboolean
kvm_tuning_decide(const KvmTuningFacts *f, const KvmTuningOptions *o, KvmTuning *t, GError **error)
{
    kvm_tuning_clear(t);
    *t = (KvmTuning){ 0 };
    if (o->max_bandwidth) {
        t->max_bandwidth = o->max_bandwidth;
        t->bandwidth_given = TRUE;
    } else if (f->src_max_bw_mib) {
        t->max_bandwidth = f->src_max_bw_mib * 1024 * 1024;
        t->bandwidth_given = TRUE;
    } else
        t->max_bandwidth = KVM_TUNING_LIFTED_BANDWIDTH;
    t->downtime_limit_ms = o->downtime_limit_ms ? o->downtime_limit_ms
                                                : KVM_TUNING_DEFAULT_DOWNTIME_MS;
    t->channels = o->multifd_channels ? o->multifd_channels : KVM_TUNING_DEFAULT_CHANNELS;
    t->dirty_mib_s = kvm_tuning_needs_dirty_rate(f, o) ? f->dirty_mib_s : -1;

    if (o->postcopy == 1 && (!f->src_allows_postcopy || !f->dst_allows_postcopy)) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_INVALID_ARGUMENT,
                    "post-copy was requested but host %s forbids it (allow-postcopy=false)",
                    f->src_allows_postcopy ? f->dst_name : f->src_name);
        return FALSE;
    }
    gboolean may_postcopy = f->src_allows_postcopy && f->dst_allows_postcopy;
    if (tcg_paused(f, o))
        return decide_paused(f, o, may_postcopy, t, error);
    t->warn_tcg_live = kvm_tuning_tcg_loses_writes(f->tcg, f->qemu_major);
    decide_live(f, o, may_postcopy, t);
    t->autoconverge = o->auto_converge == 1;
    return TRUE;
}

char *
kvm_tuning_summary(const KvmTuning *t)
{
    g_autofree char *mf = t->multifd ? g_strdup_printf("%" G_GINT64_FORMAT " channels", t->channels)
                                     : g_strdup("off");
    return g_strdup_printf(
        "max-bandwidth=%" G_GUINT64_FORMAT " MiB/s, downtime-limit=%" G_GUINT64_FORMAT
        " ms, multifd=%s, postcopy=%s, auto-converge=%s%s",
        t->max_bandwidth / (1024 * 1024), t->downtime_limit_ms, mf,
        t->postcopy_live ? "armed"
        : t->postcopy    ? "on"
                         : "off",
        t->autoconverge ? "on" : "off", t->paused ? ", source paused for the transfer" : "");
}
