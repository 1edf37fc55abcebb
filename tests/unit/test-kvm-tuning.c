/* Unit tests of the KVM plugin's tuning table (plugins/kvm/kvm-tuning.c):
 * every rule, without a QEMU. */
#include "config.h"

#include <string.h>

#include <vmshift/vmshift.h>

#include "plugins/kvm/kvm-tuning.h"

#define MIB (1024ULL * 1024)

/* ---- options ------------------------------------------------------------ */

static GVariant *
opts(const char *key, GVariant *value)
{
    GVariantBuilder b;
    g_variant_builder_init(&b, G_VARIANT_TYPE_VARDICT);
    if (key)
        g_variant_builder_add(&b, "{sv}", key, value);
    return g_variant_ref_sink(g_variant_builder_end(&b));
}

static gboolean
read1(const char *key, GVariant *value, KvmTuningOptions *o, GError **error)
{
    g_autoptr(GVariant) v = opts(key, value);
    return kvm_tuning_read_options(v, o, error);
}

static void
test_options_defaults(void)
{
    KvmTuningOptions o;
    g_assert_true(kvm_tuning_read_options(NULL, &o, NULL));
    g_assert_cmpuint(o.max_bandwidth, ==, 0);
    g_assert_cmpint(o.postcopy, ==, -1);
    g_assert_cmpint(o.multifd_channels, ==, 0);
    g_assert_cmpuint(o.downtime_limit_ms, ==, 0);
    g_assert_cmpint(o.auto_converge, ==, -1);
    g_assert_cmpint(o.measure_dirty_rate, ==, -1);
    g_assert_cmpint(o.tcg_safe, ==, -1);
    g_autoptr(GVariant) empty = opts(NULL, NULL);
    g_assert_true(kvm_tuning_read_options(empty, &o, NULL));
    g_assert_cmpint(o.postcopy, ==, -1);
}

static void
test_options_values(void)
{
    KvmTuningOptions o;
    g_assert_true(read1("max-bandwidth", g_variant_new_uint64(100 * MIB), &o, NULL));
    g_assert_cmpuint(o.max_bandwidth, ==, 100 * MIB);
    g_assert_true(read1("max-bandwidth", g_variant_new_string("1048576"), &o, NULL));
    g_assert_cmpuint(o.max_bandwidth, ==, MIB);
    g_assert_true(read1("downtime-limit", g_variant_new_int32(50), &o, NULL));
    g_assert_cmpuint(o.downtime_limit_ms, ==, 50);
    g_assert_true(read1("downtime-limit", g_variant_new_int64(70), &o, NULL));
    g_assert_cmpuint(o.downtime_limit_ms, ==, 70);
    g_assert_true(read1("multifd-channels", g_variant_new_uint32(8), &o, NULL));
    g_assert_cmpint(o.multifd_channels, ==, 8);
    g_assert_true(read1("postcopy", g_variant_new_boolean(TRUE), &o, NULL));
    g_assert_cmpint(o.postcopy, ==, 1);
    g_assert_true(read1("postcopy", g_variant_new_string("no"), &o, NULL));
    g_assert_cmpint(o.postcopy, ==, 0);
    g_assert_true(read1("auto-converge", g_variant_new_string("YES"), &o, NULL));
    g_assert_cmpint(o.auto_converge, ==, 1);
    g_assert_true(read1("measure-dirty-rate", g_variant_new_string("0"), &o, NULL));
    g_assert_cmpint(o.measure_dirty_rate, ==, 0);
    g_assert_true(read1("tcg-safe", g_variant_new_string("false"), &o, NULL));
    g_assert_cmpint(o.tcg_safe, ==, 0);
    g_assert_true(read1("tcg-safe", g_variant_new_string("1"), &o, NULL));
    g_assert_cmpint(o.tcg_safe, ==, 1);
    /* every key of the table is read */
    for (const char *const *k = kvm_tuning_option_keys; *k; k++) {
        GVariant *v = strcmp(*k, "max-bandwidth") && strcmp(*k, "multifd-channels")
                              && strcmp(*k, "downtime-limit")
                          ? g_variant_new_string("true")
                          : g_variant_new_string("2");
        g_assert_true(read1(*k, v, &o, NULL));
    }
}

static void
test_options_unknown(void)
{
    KvmTuningOptions o;
    g_autoptr(GError) e = NULL;
    g_assert_false(read1("bandwidth", g_variant_new_string("1"), &o, &e));
    g_assert_error(e, VMSHIFT_ERROR, VMSHIFT_ERROR_INVALID_ARGUMENT);
    g_assert_nonnull(strstr(e->message, "unknown migration option 'bandwidth'"));
    g_assert_nonnull(strstr(e->message, "known: max-bandwidth, postcopy, multifd-channels, "
                                        "downtime-limit, auto-converge, measure-dirty-rate, "
                                        "tcg-safe"));
}

static void
bad(const char *key, GVariant *value, const char *want)
{
    KvmTuningOptions o;
    g_autoptr(GError) e = NULL;
    g_assert_false(read1(key, value, &o, &e));
    g_assert_error(e, VMSHIFT_ERROR, VMSHIFT_ERROR_INVALID_ARGUMENT);
    g_autofree char *msg = g_strdup_printf("kvm: migration option '%s' takes %s", key, want);
    g_assert_cmpstr(e->message, ==, msg);
}

static void
test_options_bad_values(void)
{
    bad("max-bandwidth", g_variant_new_string("fast"), "a whole number");
    bad("max-bandwidth", g_variant_new_string("-1"), "a whole number");
    bad("max-bandwidth", g_variant_new_int64(-5), "a whole number");
    bad("downtime-limit", g_variant_new_int32(-1), "a whole number");
    bad("downtime-limit", g_variant_new_boolean(TRUE), "a whole number");
    bad("multifd-channels", g_variant_new_string("0"), "a number of channels from 1 to 255");
    bad("multifd-channels", g_variant_new_uint64(256), "a number of channels from 1 to 255");
    bad("postcopy", g_variant_new_string("maybe"), "true or false");
    bad("postcopy", g_variant_new_int32(1), "true or false");
    bad("tcg-safe", g_variant_new_string(""), "true or false");
}

/* ---- decisions ---------------------------------------------------------- */

static KvmTuningFacts
facts(void)
{
    return (KvmTuningFacts){ .tcg = FALSE,
                             .qemu_major = 7,
                             .src_allows_postcopy = TRUE,
                             .dst_allows_postcopy = TRUE,
                             .src_name = "A",
                             .dst_name = "B",
                             .link_mib_s = 1000,
                             .src_max_bw_mib = 0,
                             .paused_postcopy = TRUE,
                             .dirty_mib_s = -1 };
}

static KvmTuningOptions
no_options(void)
{
    KvmTuningOptions o;
    g_assert_true(kvm_tuning_read_options(NULL, &o, NULL));
    return o;
}

static void
test_tcg_paused_postcopy(void)
{
    KvmTuningFacts f = facts();
    f.tcg = TRUE;
    KvmTuningOptions o = no_options();
    KvmTuning t = { 0 };
    g_assert_true(kvm_tuning_tcg_loses_writes(TRUE, 7));
    g_assert_false(kvm_tuning_needs_dirty_rate(&f, &o));
    g_assert_true(kvm_tuning_decide(&f, &o, &t, NULL));
    g_assert_true(t.paused);
    g_assert_true(t.postcopy);
    g_assert_false(t.multifd);
    g_assert_false(t.autoconverge);
    g_assert_false(t.warn_tcg_live);
    g_assert_cmpstr(t.why, ==,
                    "TCG on QEMU 7 loses guest writes during live migration "
                    "(fixed in QEMU 9.0): the source is paused for the transfer, "
                    "and the destination runs at once in post-copy "
                    "(tcg-safe=false to migrate live anyway)");
    g_autofree char *sum = kvm_tuning_summary(&t);
    g_assert_cmpstr(sum, ==,
                    "max-bandwidth=10240 MiB/s, downtime-limit=300 ms, multifd=off, "
                    "postcopy=on, auto-converge=off, source paused for the transfer");
    kvm_tuning_clear(&t);
}

static void
test_tcg_paused_precopy(void)
{
    KvmTuningFacts f = facts();
    f.tcg = TRUE;
    KvmTuningOptions o = no_options();
    o.postcopy = 0;
    o.auto_converge = 1;
    KvmTuning t = { 0 };
    g_assert_true(kvm_tuning_decide(&f, &o, &t, NULL));
    g_assert_true(t.paused);
    g_assert_false(t.postcopy);
    g_assert_true(t.multifd);
    g_assert_false(t.autoconverge);
    g_assert_nonnull(strstr(t.why, "pre-copy (postcopy=false requested)"));
    /* a host forbids post-copy */
    o.postcopy = -1;
    f.dst_allows_postcopy = FALSE;
    g_assert_true(kvm_tuning_decide(&f, &o, &t, NULL));
    g_assert_true(t.paused);
    g_assert_false(t.postcopy);
    g_assert_nonnull(strstr(t.why, "pre-copy (a host forbids post-copy: allow-postcopy=false)"));
    kvm_tuning_clear(&t);
}

static void
test_tcg_paused_no_paused_postcopy(void)
{
    KvmTuningFacts f = facts();
    f.tcg = TRUE;
    f.paused_postcopy = FALSE;
    KvmTuningOptions o = no_options();
    KvmTuning t = { 0 };
    g_assert_true(kvm_tuning_decide(&f, &o, &t, NULL));
    g_assert_true(t.paused);
    g_assert_false(t.postcopy);
    g_assert_true(t.multifd);
    g_assert_nonnull(strstr(t.why, "pre-copy (libvirt has no post-copy from a paused source)"));
    /* asked for post-copy: refused, with the reason */
    o.postcopy = 1;
    g_autoptr(GError) e = NULL;
    g_assert_false(kvm_tuning_decide(&f, &o, &t, &e));
    g_assert_error(e, VMSHIFT_ERROR, VMSHIFT_ERROR_INVALID_ARGUMENT);
    g_assert_nonnull(strstr(e->message, "TCG on QEMU 7"));
    g_assert_nonnull(strstr(e->message, "tcg-safe=false to force"));
    kvm_tuning_clear(&t);
}

static void
test_tcg_safe_false_and_fixed_qemu(void)
{
    KvmTuningFacts f = facts();
    f.tcg = TRUE;
    KvmTuningOptions o = no_options();
    o.tcg_safe = 0;
    KvmTuning t = { 0 };
    /* no probe before the start: post-copy armed, switched live */
    g_assert_false(kvm_tuning_needs_dirty_rate(&f, &o));
    g_assert_true(kvm_tuning_decide(&f, &o, &t, NULL));
    g_assert_false(t.paused);
    g_assert_true(t.warn_tcg_live);
    g_assert_true(t.postcopy);
    g_assert_true(t.postcopy_live);
    g_assert_false(t.multifd);
    /* QEMU 9 keeps TCG coherent; KVM never loses writes; unknown version */
    g_assert_false(kvm_tuning_tcg_loses_writes(TRUE, KVM_TCG_COHERENT_QEMU_MAJOR));
    g_assert_false(kvm_tuning_tcg_loses_writes(FALSE, 7));
    g_assert_false(kvm_tuning_tcg_loses_writes(TRUE, 0));
    o.tcg_safe = -1;
    f.qemu_major = 9;
    g_assert_true(kvm_tuning_decide(&f, &o, &t, NULL));
    g_assert_false(t.paused);
    g_assert_false(t.warn_tcg_live);
    kvm_tuning_clear(&t);
}

static void
test_forbidden_postcopy(void)
{
    KvmTuningFacts f = facts();
    KvmTuningOptions o = no_options();
    o.postcopy = 1;
    KvmTuning t = { 0 };
    g_assert_true(kvm_tuning_decide(&f, &o, &t, NULL));
    g_assert_true(t.postcopy);
    g_assert_false(t.multifd);
    g_assert_cmpstr(t.why, ==, "post-copy requested");
    g_assert_false(kvm_tuning_needs_dirty_rate(&f, &o));
    f.src_allows_postcopy = FALSE;
    g_autoptr(GError) e = NULL;
    g_assert_false(kvm_tuning_decide(&f, &o, &t, &e));
    g_assert_error(e, VMSHIFT_ERROR, VMSHIFT_ERROR_INVALID_ARGUMENT);
    g_assert_cmpstr(e->message, ==,
                    "post-copy was requested but host A forbids it "
                    "(allow-postcopy=false)");
    g_clear_error(&e);
    f.src_allows_postcopy = TRUE;
    f.dst_allows_postcopy = FALSE;
    g_assert_false(kvm_tuning_decide(&f, &o, &t, &e));
    g_assert_cmpstr(e->message, ==,
                    "post-copy was requested but host B forbids it "
                    "(allow-postcopy=false)");
    kvm_tuning_clear(&t);
}

static void
test_dirty_rate(void)
{
    KvmTuningFacts f = facts();
    KvmTuningOptions o = no_options();
    KvmTuning t = { 0 };
    /* the probe runs only when asked for */
    g_assert_false(kvm_tuning_needs_dirty_rate(&f, &o));
    o.measure_dirty_rate = 0;
    g_assert_false(kvm_tuning_needs_dirty_rate(&f, &o));
    o.measure_dirty_rate = 1;
    g_assert_true(kvm_tuning_needs_dirty_rate(&f, &o));
    /* a busy guest: 500 MiB/s over 1000 MiB/s is ~500 ms > 300/4 */
    g_assert_true(kvm_tuning_prefers_postcopy(500, 1000, 300));
    g_assert_false(kvm_tuning_prefers_postcopy(75, 1000, 300));
    g_assert_true(kvm_tuning_prefers_postcopy(76, 1000, 300));
    g_assert_false(kvm_tuning_prefers_postcopy(-1, 1000, 300));
    f.dirty_mib_s = 500;
    g_assert_true(kvm_tuning_decide(&f, &o, &t, NULL));
    g_assert_true(t.postcopy);
    g_assert_false(t.multifd);
    g_assert_cmpint(t.dirty_mib_s, ==, 500);
    g_assert_cmpstr(t.why, ==,
                    "dirty rate 500 MiB/s over a 1000 MiB/s link: a pre-copy round "
                    "would leave ~500 ms of dirty pages, more than a quarter of the "
                    "300 ms downtime limit: post-copy");
    /* a quiet guest */
    f.dirty_mib_s = 10;
    g_assert_true(kvm_tuning_decide(&f, &o, &t, NULL));
    g_assert_false(t.postcopy);
    g_assert_true(t.multifd);
    g_assert_cmpstr(t.why, ==,
                    "dirty rate 10 MiB/s, link 1000 MiB/s: last round ~10 ms, "
                    "within a quarter of the 300 ms downtime limit: pre-copy with "
                    "multifd");
    /* asked for, but the measurement failed: decided live */
    f.dirty_mib_s = -1;
    o.multifd_channels = 1;
    g_assert_true(kvm_tuning_decide(&f, &o, &t, NULL));
    g_assert_false(t.multifd);
    g_assert_true(t.postcopy_live);
    /* not measured and post-copy not allowed: pre-copy */
    f.dst_allows_postcopy = FALSE;
    g_assert_true(kvm_tuning_decide(&f, &o, &t, NULL));
    g_assert_false(t.postcopy);
    g_assert_false(t.multifd);
    g_assert_cmpstr(t.why, ==, "pre-copy (a host forbids post-copy: allow-postcopy=false)");
    f.dst_allows_postcopy = TRUE;
    o.postcopy = 0;
    o.multifd_channels = 0;
    g_assert_true(kvm_tuning_decide(&f, &o, &t, NULL));
    g_assert_true(t.multifd);
    g_assert_cmpstr(t.why, ==, "pre-copy with multifd (postcopy=false requested)");
    o.postcopy = -1;
    /* busy, but a host forbids post-copy */
    o.multifd_channels = 0;
    f.dirty_mib_s = 500;
    f.src_allows_postcopy = FALSE;
    g_assert_true(kvm_tuning_decide(&f, &o, &t, NULL));
    g_assert_false(t.postcopy);
    g_assert_cmpstr(t.why, ==,
                    "dirty rate 500 MiB/s over a 1000 MiB/s link calls for "
                    "post-copy, but a host forbids it (allow-postcopy=false): "
                    "pre-copy with multifd, which may not converge");
    /* a rate given where none was asked for is not used: decided live */
    f.src_allows_postcopy = TRUE;
    o.measure_dirty_rate = -1;
    g_assert_true(kvm_tuning_decide(&f, &o, &t, NULL));
    g_assert_cmpint(t.dirty_mib_s, ==, -1);
    g_assert_true(t.postcopy);
    g_assert_true(t.postcopy_live);
    g_assert_cmpstr(t.why, ==,
                    "pre-copy with post-copy armed: switched to post-copy once QEMU's "
                    "statistics show that the last round would take more than a quarter "
                    "of the 300 ms downtime limit");
    g_autofree char *sum = kvm_tuning_summary(&t);
    g_assert_cmpstr(sum, ==,
                    "max-bandwidth=10240 MiB/s, downtime-limit=300 ms, multifd=off, "
                    "postcopy=armed, auto-converge=off");
    kvm_tuning_clear(&t);
}

static void
test_bandwidth(void)
{
    KvmTuningFacts f = facts();
    KvmTuningOptions o = no_options();
    KvmTuning t = { 0 };
    /* lifted */
    g_assert_true(kvm_tuning_decide(&f, &o, &t, NULL));
    g_assert_cmpuint(t.max_bandwidth, ==, KVM_TUNING_LIFTED_BANDWIDTH);
    g_assert_false(t.bandwidth_given);
    g_assert_cmpuint(t.downtime_limit_ms, ==, KVM_TUNING_DEFAULT_DOWNTIME_MS);
    g_assert_cmpint(t.channels, ==, KVM_TUNING_DEFAULT_CHANNELS);
    /* the source host's cap, which also narrows the link */
    o.measure_dirty_rate = 1;
    f.src_max_bw_mib = 50;
    f.dirty_mib_s = 20;
    g_assert_true(kvm_tuning_decide(&f, &o, &t, NULL));
    g_assert_cmpuint(t.max_bandwidth, ==, 50 * MIB);
    g_assert_true(t.bandwidth_given);
    g_assert_true(t.postcopy);
    g_assert_nonnull(strstr(t.why, "over a 50 MiB/s link"));
    /* the option wins over the cap */
    o.max_bandwidth = 200 * MIB;
    o.downtime_limit_ms = 1000;
    f.dirty_mib_s = -1;
    g_assert_true(kvm_tuning_decide(&f, &o, &t, NULL));
    g_assert_cmpuint(t.max_bandwidth, ==, 200 * MIB);
    g_assert_true(t.bandwidth_given);
    g_assert_cmpuint(t.downtime_limit_ms, ==, 1000);
    kvm_tuning_clear(&t);
}

static void
test_live_switch(void)
{
    KvmTuningFacts f = facts();
    KvmTuningOptions o = no_options();
    KvmTuning t = { 0 };
    g_assert_true(kvm_tuning_decide(&f, &o, &t, NULL));
    g_assert_true(t.postcopy_live);
    char *why = NULL;
    /* the first pass, within the head start: wait */
    KvmLiveStats s = { .elapsed_ms = 150,
                       .passes = 1,
                       .remaining = 1000 * MIB,
                       .transferred = 10 * MIB,
                       .total = 1024 * MIB };
    g_assert_false(kvm_tuning_switch_now(&t, &s, &why));
    g_assert_null(why);
    /* past it: 624 of 1024 MiB in 300 ms ends at ~492 ms, within 500 */
    s.elapsed_ms = 300;
    s.remaining = 400 * MIB;
    g_assert_false(kvm_tuning_switch_now(&t, &s, &why));
    g_assert_null(why);
    /* 324 MiB in 300 ms ends at ~948 ms: post-copy now */
    s.remaining = 700 * MIB;
    g_assert_true(kvm_tuning_switch_now(&t, &s, &why));
    g_assert_cmpstr(why, ==,
                    "the first pass would take ~948 ms (31% done after 300 ms), more than "
                    "500 ms of the guest re-dirtying what was sent");
    g_clear_pointer(&why, g_free);
    /* nothing done yet */
    s.remaining = s.total;
    g_assert_true(kvm_tuning_switch_now(&t, &s, NULL));
    /* end of the first pass, a quiet guest: 10 MiB at 1000 MiB/s is 10 ms
     * < 75: QEMU finishes the pre-copy */
    s = (KvmLiveStats){
        .elapsed_ms = 400, .passes = 2, .remaining = 10 * MIB, .transferred = 400 * MIB
    };
    g_assert_false(kvm_tuning_switch_now(&t, &s, &why));
    /* a busy one: 256 MiB at 1000 MiB/s is 256 ms > 75 */
    s.remaining = 256 * MIB;
    g_assert_true(kvm_tuning_switch_now(&t, &s, &why));
    g_assert_cmpstr(why, ==,
                    "after the first pass the guest had dirtied 256 MiB: ~256 ms at "
                    "1000 MiB/s, more than a quarter of the 300 ms downtime limit");
    g_clear_pointer(&why, g_free);
    /* the measured throughput wins over the average */
    s.remaining = 50 * MIB;
    g_assert_false(kvm_tuning_switch_now(&t, &s, NULL));
    s.bytes_per_s = 100 * MIB;
    g_assert_true(kvm_tuning_switch_now(&t, &s, NULL));
    /* a third pass: the rounds do not shrink */
    s = (KvmLiveStats){
        .elapsed_ms = 900, .passes = 3, .remaining = MIB, .transferred = 900 * MIB
    };
    g_assert_true(kvm_tuning_switch_now(&t, &s, &why));
    g_assert_cmpstr(why, ==, "pass 3 of pre-copy still has 1 MiB to send: it does not converge");
    g_clear_pointer(&why, g_free);
    /* nothing sent yet; or post-copy not armed (requested: the transport
     * switches after a head start; pre-copy only) */
    s = (KvmLiveStats){ .elapsed_ms = 10, .passes = 3 };
    g_assert_false(kvm_tuning_switch_now(&t, &s, NULL));
    s.transferred = MIB;
    o.postcopy = 1;
    g_assert_true(kvm_tuning_decide(&f, &o, &t, NULL));
    g_assert_false(kvm_tuning_switch_now(&t, &s, NULL));
    o.postcopy = 0;
    g_assert_true(kvm_tuning_decide(&f, &o, &t, NULL));
    g_assert_false(kvm_tuning_switch_now(&t, &s, NULL));
    /* a paused TCG source is not switched by this rule */
    o.postcopy = -1;
    f.tcg = TRUE;
    g_assert_true(kvm_tuning_decide(&f, &o, &t, NULL));
    g_assert_true(t.paused && t.postcopy && !t.postcopy_live);
    g_assert_false(kvm_tuning_switch_now(&t, &s, NULL));
    kvm_tuning_clear(&t);
}

static void
test_summary(void)
{
    KvmTuningFacts f = facts();
    KvmTuningOptions o = no_options();
    o.auto_converge = 1;
    o.multifd_channels = 2;
    o.max_bandwidth = 100 * MIB;
    o.postcopy = 0;
    KvmTuning t = { 0 };
    g_assert_true(kvm_tuning_decide(&f, &o, &t, NULL));
    g_assert_true(t.autoconverge);
    g_autofree char *sum = kvm_tuning_summary(&t);
    g_assert_cmpstr(sum, ==,
                    "max-bandwidth=100 MiB/s, downtime-limit=300 ms, "
                    "multifd=2 channels, postcopy=off, auto-converge=on");
    kvm_tuning_clear(&t);
    g_assert_null(t.why);
}

int
main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/kvm-tuning/options/defaults", test_options_defaults);
    g_test_add_func("/kvm-tuning/options/values", test_options_values);
    g_test_add_func("/kvm-tuning/options/unknown", test_options_unknown);
    g_test_add_func("/kvm-tuning/options/bad-values", test_options_bad_values);
    g_test_add_func("/kvm-tuning/tcg/paused-postcopy", test_tcg_paused_postcopy);
    g_test_add_func("/kvm-tuning/tcg/paused-precopy", test_tcg_paused_precopy);
    g_test_add_func("/kvm-tuning/tcg/no-paused-postcopy", test_tcg_paused_no_paused_postcopy);
    g_test_add_func("/kvm-tuning/tcg/safe-false-and-fixed", test_tcg_safe_false_and_fixed_qemu);
    g_test_add_func("/kvm-tuning/postcopy/forbidden", test_forbidden_postcopy);
    g_test_add_func("/kvm-tuning/dirty-rate", test_dirty_rate);
    g_test_add_func("/kvm-tuning/bandwidth", test_bandwidth);
    g_test_add_func("/kvm-tuning/summary", test_summary);
    g_test_add_func("/kvm-tuning/live-switch", test_live_switch);
    return g_test_run();
}
