/*
 * vmshift host: the one rule engine (rules.c) and placement (place.c).
 *
 * Facts come from the plugins (hosts, volumes, networks, checkpoint state,
 * disk sizes), loaded once per backend; rules turn the facts about one VM
 * and one destination into findings with the canonical codes of
 * <vmshift/findings.h>. check, migrate (its validate phase), --dry-run,
 * rate, --to-group and bulk placement all decide from these findings, and
 * nothing decides from a message's text.
 */
#ifndef VMSHIFT_HOST_RULES_H
#define VMSHIFT_HOST_RULES_H

#include "host/host.h"

G_BEGIN_DECLS

/* One backend's facts: read once, used for every VM and host. */
typedef struct {
    HostBackend *b;
    GPtrArray *hosts;         /* VmshiftHost */
    GHashTable *host_by_name; /* name and id -> VmshiftHost (borrowed) */
    GPtrArray *volumes;       /* VmshiftVolume of every host, or NULL */
    GError *volumes_error;    /* why volumes is NULL */
    GHashTable *host_volumes; /* host name -> GPtrArray of borrowed VmshiftVolume */
    GPtrArray *networks;      /* VmshiftNetwork, or NULL */
    GError *networks_error;   /* why networks is NULL */
    GHashTable *net_anywhere; /* network names and ids present on every host */
    GHashTable *net_on_host;  /* host name -> set of network names and ids there */
    GHashTable *vm_cp;        /* VM name -> its checkpoint state, asked once */
    GHashTable *members;      /* group ("" every host) -> GPtrArray of VmshiftHost or NULL */
} HostFacts;

HostFacts *host_facts_load(HostBackend *b, GError **error);
void host_facts_free(HostFacts *f);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(HostFacts, host_facts_free)
VmshiftHost *host_facts_host(const HostFacts *f, const char *name);
/* Volumes host @host reaches (its own and the shared ones); never NULL. */
GPtrArray *host_facts_volumes(const HostFacts *f, const char *host);
/* TRUE when network @net (name or id) can be used on @h; *known FALSE when
 * the backend reported no networks at all. */
gboolean host_facts_has_network(const HostFacts *f, const VmshiftHost *h, const char *net,
                                gboolean *known);

/* What one VM brings: its record, merge state, where each disk lives. */
typedef struct {
    const VmshiftVm *vm;
    VmshiftCheckpointState *cp;
    GError *cp_error;
    const VmshiftHost *src;  /* in the facts, or NULL */
    GPtrArray *disk_volumes; /* per disk of vm: its VmshiftVolume (borrowed) or NULL */
    guint64 disk_bytes;      /* bytes of the disks whose size is known */
    guint unknown_disks;     /* disks whose size is not known */
} HostVmFacts;

/* The VM's checkpoint state is asked of the backend once per @f. */
HostVmFacts *host_vm_facts_new(HostFacts *f, const VmshiftVm *vm);
void host_vm_facts_free(HostVmFacts *v);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(HostVmFacts, host_vm_facts_free)
/* Bytes disk @d occupies; FALSE when the backend did not say. */
gboolean host_disk_bytes(const VmshiftDisk *d, guint64 *bytes);
/* Whether every disk of the VM lies on storage @h reaches too (so a host
 * move need not copy them); *known FALSE when a disk's volume is unknown. */
gboolean host_vm_storage_shared(const HostFacts *f, const HostVmFacts *v, const VmshiftHost *h,
                                gboolean *known);

/* What a run (a bulk plan, one --to-group) has already placed per host. */
typedef struct {
    guint64 memory; /* bytes of memory placed */
    guint count;    /* VMs placed */
} HostTally;

typedef struct HostPlaceRun_ {
    GHashTable *tally;  /* host name -> HostTally* */
    char memo_name[64]; /* the last host looked up (a rating asks 3 times) */
    HostTally *memo;    /* its tally, or NULL */
    GHashTable *bytes;  /* VmshiftVolume* (or its "host\x1fpath") -> guint64* bytes */
    GHashTable *facts;  /* HostBackend* -> HostFacts*, loaded once per run */
    char *last_reason;  /* why the last placement chose its host */
    /* host_rate_quick()'s last answer: reused for a VM of the same profile
     * (what a rating reads of the VM), only the hosts placed on since then
     * rated again. */
    char *quick_key;   /* backend, group and the VM's profile */
    HostRating *quick; /* quick_n ratings */
    guint quick_n;
    GHashTable *dirty; /* host names placed on since quick was computed */
    /* what the run cost (logged with g_debug when it is freed) */
    guint place_calls, place_hosts;
    gint64 place_us;  /* in host_place(), plugin calls included */
    gint64 plugin_us; /* the plugin calls of host_place() */
} HostPlaceRun;

HostPlaceRun *host_place_run_new(void);
void host_place_run_free(HostPlaceRun *run);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(HostPlaceRun, host_place_run_free)
/* Microseconds spent in plugin calls by the rule engine so far (facts,
 * checkpoint state, the backend's check while rating). */
gint64 host_rules_plugin_us(void);
void host_rules_plugin_time(gint64 since); /* adds the time since @since */
/* The facts of @b, loaded at the first call of the run. */
HostFacts *host_place_run_facts(HostPlaceRun *run, HostBackend *b, GError **error);
guint64 host_place_run_memory(const HostPlaceRun *run, const char *host);
guint host_place_run_count(const HostPlaceRun *run, const char *host);
guint64 host_place_run_bytes(const HostPlaceRun *run, const char *host, const char *path);
void host_place_run_add(HostPlaceRun *run, const char *host, guint64 memory, const char *path,
                        guint64 bytes);

/* Where findings go: counted always, formatted only when @findings is set. */
typedef struct {
    GPtrArray *findings; /* VmshiftFinding, or NULL to count only */
    guint errors, warnings;
    double penalty;          /* stars the warnings take off (rate_effect) */
    const char *first_error; /* code */
} HostRuleSink;

/* Adds a finding of canonical @code (severity from the table). */
void host_rule_add(HostRuleSink *s, const char *code, const char *subject, const char *format, ...)
    G_GNUC_PRINTF(4, 5);

/* The host's rules for moving @v as @spec says (destination: spec->dest_host,
 * or the VM's host for a storage move), given what @run already placed. */
void host_rules_check(const HostFacts *f, const HostVmFacts *v, const VmshiftMigrationSpec *spec,
                      const HostPlaceRun *run, HostRuleSink *s);
/* The same, the destination host of a host move given as @d (one of @f's
 * hosts; ignored for a storage move): no lookup of spec->dest_host. */
void host_rules_check_to(const HostFacts *f, const HostVmFacts *v, const VmshiftMigrationSpec *spec,
                         const VmshiftHost *d, const HostPlaceRun *run, HostRuleSink *s);
/* --disk-path / --network keys name real disks and NICs (after the plugin's
 * findings in @s, which may have resolved other names). */
void host_rules_mappings(const VmshiftMigrationSpec *spec, const VmshiftVm *vm, HostRuleSink *s);
/* Merges the plugin's findings @pf into @s: the table's severity, once per
 * condition, an unknown code flagged. Takes @pf's elements. */
void host_rules_merge_backend(HostRuleSink *s, GPtrArray *pf, const char *backend);

/* The volume of host @h with the most free space after @run's placements,
 * or NULL. */
VmshiftVolume *host_place_best_volume(const HostFacts *f, const VmshiftHost *h,
                                      const HostPlaceRun *run, guint64 *free_after);

/* validate.c: host_validate() on facts already loaded. */
GPtrArray *host_validate_with(HostFacts *facts, const VmshiftMigrationSpec *spec,
                              const VmshiftVm *vm, const HostPlaceRun *run);

/* rate.c: rates the hosts of @group (NULL: every host of @b) for @vm, with
 * what @run placed; @explain: factors with their text and the plugin's own
 * check of each eligible host. HostRating sorted best first. */
GPtrArray *host_rate_members(HostRegistry *reg, HostBackend *b, const VmshiftVm *vm,
                             const char *const *members, HostPlaceRun *run, gboolean explain,
                             GError **error);
/* Quick ratings (stars and eligibility, no text) of the members of @group
 * (NULL: every host) for @vm, in the group's order: an array of *@n owned
 * by @run, valid until its next call (its strings are borrowed). A member
 * that is not a host of @b has a NULL host. No allocation per host; for a
 * VM of the same profile as the last one, only the hosts placed on since
 * are rated again. */
const HostRating *host_rate_quick(HostRegistry *reg, HostBackend *b, const VmshiftVm *vm,
                                  const char *group, HostPlaceRun *run, guint *n, GError **error);
/* <0 when @x is the better placement (eligible, stars, fewer VMs placed in
 * the run, memory left, space, name). */
gint host_rating_compare(const HostRating *x, const HostRating *y);
/* The members of group @group, or NULL with @error. */
const char *const *host_group_members(HostRegistry *reg, const char *group, GError **error);
GPtrArray *host_rate_run(HostRegistry *reg, HostBackend *b, const VmshiftVm *vm, const char *group,
                         HostPlaceRun *run, gboolean explain, GError **error);

/* place.c: the host (and volume, when storage must move) of @group for
 * @vm, recorded in @run; run->last_reason says why. NULL with @error when
 * no host can take it. */
HostRating *host_place(HostRegistry *reg, HostBackend *b, const VmshiftVm *vm, const char *group,
                       HostPlaceRun *run, GError **error);

G_END_DECLS

#endif /* VMSHIFT_HOST_RULES_H */
