/* vmshift KVM plugin: the one table of live-migration tuning rules.
 *
 * Both transports (qmp and libvirt) read the same --option keys with
 * kvm_tuning_read_options() and decide with kvm_tuning_decide() from the
 * same facts; each then applies the decision with its own calls (QMP
 * migrate-set-parameters/capabilities, or libvirt's flags and typed
 * parameters). Nothing here does I/O, so tests/unit/test-kvm-tuning.c
 * checks every rule without a QEMU.
 */
#ifndef VMSHIFT_KVM_TUNING_H
#define VMSHIFT_KVM_TUNING_H

#include <glib.h>

G_BEGIN_DECLS

/* QEMU's migration bandwidth lifted from its 128 MiB/s default */
#define KVM_TUNING_LIFTED_BANDWIDTH (10ULL * 1024 * 1024 * 1024) /* bytes/s */
#define KVM_TUNING_DEFAULT_DOWNTIME_MS 300
#define KVM_TUNING_DEFAULT_CHANNELS 4
/* post-copy armed (kvm_tuning_switch_now): the first pass runs at least
 * the head start, and is waited for when its projected end is within
 * KVM_TUNING_FIRST_PASS_MS */
#define KVM_TUNING_HEAD_START_MS 200
#define KVM_TUNING_FIRST_PASS_MS 500
/* the first QEMU whose TCG keeps its dirty tracking coherent with the
 * migration bitmap (QEMU commit 03bfc2188f, "physmem: Fix migration dirty
 * bitmap coherency with TCG memory access", in 9.0; docs/design/kvm.md §2.4) */
#define KVM_TCG_COHERENT_QEMU_MAJOR 9

/* The backend options of `vmshift migrate --option KEY=VALUE`, the same
 * keys on both transports. Booleans are -1 when not given. */
typedef struct {
    guint64 max_bandwidth;     /* bytes/s; 0: not given */
    int postcopy;              /* -1 | 0 | 1 */
    gint64 multifd_channels;   /* 0: not given */
    guint64 downtime_limit_ms; /* 0: not given */
    int auto_converge;         /* -1 | 0 | 1 */
    int measure_dirty_rate;    /* -1 | 0 | 1: probe before the start (only
                                * when 1; the default decides live) */
    int tcg_safe;              /* -1 | 0 | 1 */
} KvmTuningOptions;

/* The option keys, NULL-terminated, for messages and documentation. */
extern const char *const kvm_tuning_option_keys[];

/* Reads @options (a{sv}, nullable; values typed or strings) into @out.
 * An unknown key or a value of the wrong type is an error naming it. */
gboolean kvm_tuning_read_options(GVariant *options, KvmTuningOptions *out, GError **error);

/* What the transport knows before it decides. */
typedef struct {
    gboolean tcg;   /* the source runs the guest under TCG */
    int qemu_major; /* the source QEMU's major version; 0: unknown */
    gboolean src_allows_postcopy;
    gboolean dst_allows_postcopy;
    const char *src_name; /* host names, for messages */
    const char *dst_name;
    guint64 link_mib_s;       /* the backend's assumed link speed */
    guint64 src_max_bw_mib;   /* the source host's cap; 0: none */
    gboolean paused_postcopy; /* the transport can run post-copy from a paused
                               * source (qmp: yes; libvirt: no, it refuses
                               * post-copy without VIR_MIGRATE_LIVE) */
    gint64 dirty_mib_s;       /* measured dirty rate; -1: not measured */
} KvmTuningFacts;

/* The decision. */
typedef struct {
    guint64 max_bandwidth;    /* bytes/s */
    gboolean bandwidth_given; /* max-bandwidth came from an option or a host cap */
    guint64 downtime_limit_ms;
    gint64 channels;
    gboolean multifd;
    gboolean postcopy;
    gboolean autoconverge;
    gboolean paused;        /* the source is paused for the transfer */
    gboolean warn_tcg_live; /* tcg-safe=false overrode the TCG rule: log
                             * kvm_tuning_warn_tcg_live() */
    gint64 dirty_mib_s;     /* as used; -1: not measured */
    gboolean postcopy_live; /* post-copy armed (postcopy): the switch is
                             * decided from live statistics during the
                             * pre-copy (kvm_tuning_switch_now()) */
    char *why;              /* the rule that chose, for tuning-reason */
} KvmTuning;

/* What a transport reads from the running migration (QMP query-migrate;
 * libvirt's job statistics). */
typedef struct {
    gint64 elapsed_ms;   /* since the migration started */
    gint64 passes;       /* dirty-bitmap syncs (1 during the first pass);
                          * 0: not known */
    guint64 remaining;   /* bytes still to send */
    guint64 transferred; /* bytes sent so far */
    guint64 total;       /* the guest's RAM, bytes */
    guint64 dirty_rate;  /* bytes/s dirtied, from the last sync; 0: none */
    guint64 bytes_per_s; /* the measured throughput; 0: not known */
} KvmLiveStats;

void kvm_tuning_clear(KvmTuning *t);

/* TRUE when a guest dirtying @dirty_mib_s (-1: unknown) over a
 * @link_mib_s link should use post-copy rather than pre-copy under a
 * @downtime_ms limit. */
gboolean kvm_tuning_prefers_postcopy(gint64 dirty_mib_s, guint64 link_mib_s, guint64 downtime_ms);
/* TRUE when a live migration of a guest under TCG (@tcg) by QEMU
 * @qemu_major can lose guest writes (QEMU before 9.0): the source must not
 * run while its memory is tracked. */
gboolean kvm_tuning_tcg_loses_writes(gboolean tcg, int qemu_major);

/* TRUE when a migration that runs with post-copy armed
 * (KvmTuning.postcopy_live) should switch now; *@why (may be NULL) says
 * why, to be freed. */
gboolean kvm_tuning_switch_now(const KvmTuning *t, const KvmLiveStats *s, char **why);

/* TRUE when the decision needs the dirty rate: set facts->dirty_mib_s
 * (measured by the transport) before kvm_tuning_decide(). */
gboolean kvm_tuning_needs_dirty_rate(const KvmTuningFacts *f, const KvmTuningOptions *o);

/* Decides @t (cleared first) from @f and @o. Fails only for a request that
 * cannot be honoured (post-copy forbidden by a host, or impossible from a
 * paused source), with a message that says why. */
gboolean kvm_tuning_decide(const KvmTuningFacts *f, const KvmTuningOptions *o, KvmTuning *t,
                           GError **error);

/* "max-bandwidth=… MiB/s, downtime-limit=… ms, multifd=…, postcopy=…,
 * auto-converge=…[, source paused for the transfer]"; postcopy=armed when
 * the switch is decided live */
char *kvm_tuning_summary(const KvmTuning *t);

G_END_DECLS

#endif
