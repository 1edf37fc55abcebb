/*
 * vmshift host: the job engine.
 *
 * Each migrate / migrate-storage / acl / repair runs on a worker thread of
 * its own with a VmshiftJob whose hooks write to the journal (phase
 * transitions and saved data are committed before the hook returns) and
 * queue log lines for the main thread. The main thread runs a GMainLoop that
 * draws progress, polls the journal for a cancel request from another
 * process every 200 ms, and cancels on SIGINT/SIGTERM.
 */
#include "config.h"

#include <glib-unix.h>
#include <signal.h>
#include <string.h>

#include "host/host.h"
#include "host/crossmove.h"

struct HostJobRun {
    HostJobContext *ctx;
    HostJobKind kind;
    HostBackend *b;
    VmshiftVm *vm;
    VmshiftMigrationSpec *spec;
    gint64 id;
    VmshiftJob *job;
    VmshiftJobHooks hooks;
    GThread *thread;
    gint done;
    GError *error;
    char *state;
    char *label;
    GMutex qlock;
    GPtrArray *queue; /* lines for the main thread */
    gint64 last_journal;
    gint64 last_cancel_poll;
    gboolean cancel_seen;
    gint late_cancel;    /* a cancel came after a move's switchover: not passed on (atomic) */
    gint journal_warned; /* a failed journal write was reported (atomic) */
    GMutex loclock;      /* the job's location and the journal's copy of it */
    gboolean finishing;  /* the worker writes the job's end: no more ticks (loclock) */
    gboolean switched;   /* the switchover began: the location was unknown */
    HostRepairMode repair_mode;
    char *reason;          /* --dismiss --reason */
    VmshiftPhase reached;  /* repair: the phase the repaired job had reached */
    char *source_host;     /* repair: where the repaired job's VM came from */
    gint64 acl_from;       /* acl: the move whose saved data is re-applied */
    gint64 switchover_at;  /* a scheduled switchover (0: none), the host's record */
    gboolean plugin_holds; /* the plugin copies ahead and holds (else the host waits) */
    gboolean hold_seen;    /* the wait was recorded (schedule state waiting) */
    gboolean released;     /* the time came: the switchover went ahead */
    HostCross *cross;      /* a move between backends (crossmove.c), else NULL */
    char *reached_name;    /* repair: the journal's name of the phase reached */
};

static const char *const kind_names[] = {
    [HOST_JOB_MIGRATE] = "migrate",
    [HOST_JOB_STORAGE] = "migrate-storage",
    [HOST_JOB_ACL] = "acl",
    [HOST_JOB_REPAIR] = "repair",
};

const char *
host_job_kind_name(HostJobKind k)
{
    return k < G_N_ELEMENTS(kind_names) ? kind_names[k] : "unknown";
}

/* ---- hooks (worker thread) ---------------------------------------------------------- */

static void
queue_line(HostJobRun *r, char *line)
{
    g_mutex_lock(&r->qlock);
    g_ptr_array_add(r->queue, line);
    g_mutex_unlock(&r->qlock);
    g_main_context_wakeup(NULL);
}

/* A journal write that does not decide the job's outcome (a log line,
 * progress, a cancel note) failed: the job goes on, and the first such
 * failure of a run is shown. Phase and save writes fail the job instead. */
static void
journal_write_failed(HostJobRun *r, const GError *e)
{
    if (!g_atomic_int_compare_and_exchange(&r->journal_warned, 0, 1))
        return;
    queue_line(r, g_strdup_printf("%s: warning: journal write failed: %s", r->label,
                                  e ? e->message : "unknown error"));
}

/* Each phase transition writes, in one transaction with the phase, where
 * the plugin last reported the VM. Entering the switchover makes it
 * unknown, in the journal before the plugin acts: from then on only the
 * plugin's next report (or a backend asked afterwards) says where the VM
 * is, never the report from before. */
static gboolean
hook_phase(VmshiftJob *job, VmshiftPhase phase, gpointer user_data, GError **error)
{
    HostJobRun *r = user_data;
    VmshiftJobProgress pr = { .struct_size = sizeof pr };
    gboolean unknown = phase == VMSHIFT_PHASE_SWITCHOVER, ok;

    if (r->cross) {
        const char *entered = NULL;
        if (!host_cross_hook_phase(r->cross, job, phase, &entered, error))
            return FALSE;
        if (entered)
            queue_line(r, g_strdup_printf("%s: phase %s", r->label, entered));
        return TRUE;
    }

    /* The host enters validate before calling the plugin, and plugins
     * announce it again: a phase already entered is not a transition. */
    if (phase == vmshift_job_get_phase(job))
        return TRUE;
    g_mutex_lock(&r->loclock);
    if (unknown) {
        vmshift_job_set_location(job, NULL, NULL);
        r->switched = TRUE;
    }
    vmshift_job_get_progress(job, &pr);
    ok = host_journal_set_phase_at(r->ctx->journal, r->id, vmshift_phase_name(phase),
                                   pr.location_host, pr.location_detail, unknown, error);
    g_mutex_unlock(&r->loclock);
    vmshift_job_progress_clear(&pr);
    if (!ok)
        return FALSE;
    host_test_kill_at(phase);
    queue_line(r, g_strdup_printf("%s: phase %s", r->label, vmshift_phase_name(phase)));
    return TRUE;
}

static const char *const level_names[] = { "debug", "info", "warning", "error" };

static void
hook_log(VmshiftJob *job, VmshiftLogLevel level, const char *line, gpointer user_data)
{
    HostJobRun *r = user_data;
    const char *lv = level_names[MIN((guint)level, 3u)];
    g_autoptr(GError) err = NULL;

    /* a failed journal write of a log line is not worth failing the job */
    if (!host_journal_add_event(r->ctx->journal, r->id, "log", lv, NULL, line, &err))
        journal_write_failed(r, err);
    if (level == VMSHIFT_LOG_DEBUG && !r->ctx->verbose)
        return;
    queue_line(r, level >= VMSHIFT_LOG_WARNING ? g_strdup_printf("%s: %s: %s", r->label, lv, line)
                                               : g_strdup_printf("%s: %s", r->label, line));
}

static GInputStream *
hook_open_source(VmshiftJob *job, const char *disk_id, guint64 *capacity, gpointer user_data,
                 GError **error)
{
    HostJobRun *r = user_data;

    if (!r->cross) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_NOT_SUPPORTED,
                    "job %" G_GINT64_FORMAT " is not a move between backends: no source disks",
                    r->id);
        return NULL;
    }
    return host_cross_open_source(r->cross, job, disk_id, capacity, error);
}

static gboolean
hook_save(VmshiftJob *job, const char *key, const char *value, gpointer user_data, GError **error)
{
    HostJobRun *r = user_data;
    return host_journal_add_event(r->ctx->journal, r->id, "save", NULL, key, value, error);
}

/* The job waits for its switchover time: "waiting for switchover at ..." in
 * the journal (its schedule) and in the VM's location, once. */
static gboolean
hold_begins(HostJobRun *r, const char *when, GError **error)
{
    VmshiftJobProgress pr = { .struct_size = sizeof pr };
    g_autofree char *detail = NULL;
    g_autofree char *ev = g_strdup_printf("waiting for switchover at %s (%s)", when,
                                          r->plugin_holds ? "the copy is kept synchronised"
                                                          : "the move starts then");

    if (!host_journal_schedule_set_state(r->ctx->journal, r->id, "waiting", ev, error))
        return FALSE;
    vmshift_job_get_progress(r->job, &pr);
    detail = g_strdup_printf("%s%swaiting for switchover at %s",
                             pr.location_detail ? pr.location_detail : "",
                             pr.location_detail ? ", " : "", when);
    if (pr.location_host)
        vmshift_job_set_location(r->job, pr.location_host, detail);
    vmshift_job_progress_clear(&pr);
    queue_line(r, g_strdup_printf("%s: %s", r->label, ev));
    return TRUE;
}

/* The SDK's hold hook (vmshift_job_hold_switchover(): the plugin's hold
 * before its switchover, or the host's before it starts the move): the
 * journal's schedule is the time; the wait and its end are recorded. */
static gint64
hook_hold(VmshiftJob *job, gint64 until, gpointer user_data, GError **error)
{
    HostJobRun *r = user_data;
    gint64 now = g_get_real_time() / G_USEC_PER_SEC;
    g_autofree char *when = NULL;

    (void)job;
    if (!r->switchover_at)
        return until; /* nothing scheduled here: the spec's time, if any */
    when = host_format_switchover(r->switchover_at);
    if (!r->hold_seen && now < r->switchover_at) {
        r->hold_seen = TRUE;
        if (!hold_begins(r, when, error))
            return -1;
    }
    if (now >= r->switchover_at && !r->released) {
        g_autofree char *ev = g_strdup_printf("switchover time %s reached: going ahead", when);
        r->released = TRUE;
        if (!host_journal_schedule_set_state(r->ctx->journal, r->id, "released", ev, error))
            return -1;
        queue_line(r, g_strdup_printf("%s: %s", r->label, ev));
    }
    return r->switchover_at;
}

/* ---- the worker ------------------------------------------------------------------------ */

static gboolean
run_validate(HostJobRun *r, GError **error)
{
    g_autoptr(GPtrArray) f = NULL;
    guint errors = 0, warnings = 0;
    const VmshiftFinding *first = NULL;

    if (!vmshift_job_set_phase(r->job, VMSHIFT_PHASE_VALIDATE, error))
        return FALSE;
    f = host_validate(r->b, r->spec, r->vm, error);
    if (!f)
        return FALSE;
    for (guint i = 0; i < f->len; i++) {
        const VmshiftFinding *x = g_ptr_array_index(f, i);
        VmshiftLogLevel lv = x->severity == VMSHIFT_SEVERITY_ERROR     ? VMSHIFT_LOG_ERROR
                             : x->severity == VMSHIFT_SEVERITY_WARNING ? VMSHIFT_LOG_WARNING
                                                                       : VMSHIFT_LOG_INFO;
        vmshift_job_log(r->job, lv, "check %s: %s", x->code, x->message);
        if (x->severity == VMSHIFT_SEVERITY_ERROR && !first)
            first = x;
    }
    host_findings_count(f, &errors, &warnings);
    if (errors) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_CONFLICT,
                    "validation failed with %u error%s (first: %s)", errors, errors == 1 ? "" : "s",
                    first->message);
        return FALSE;
    }
    if (warnings && !r->spec->force) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_CONFLICT,
                    "validation found %u warning%s; rerun with --force to accept %s", warnings,
                    warnings == 1 ? "" : "s", warnings == 1 ? "it" : "them");
        return FALSE;
    }
    return !g_cancellable_set_error_if_cancelled(vmshift_job_get_cancellable(r->job), error);
}

/* The acl phase after a move: the access rules the VM needs where it now
 * is, from the data the move saved (ESX permissions and tags, ...). */
static gboolean
run_acl_phase(HostJobRun *r, const char *vm, GError **error)
{
    g_autoptr(GError) acl = NULL;

    if (!host_backend_has_op(r->b, "recreate_acl"))
        return TRUE;
    if (r->switched && (r->kind == HOST_JOB_MIGRATE || r->kind == HOST_JOB_STORAGE)
        && g_cancellable_is_cancelled(vmshift_job_get_cancellable(r->job))) {
        /* the move is done: a cancel can no longer stop it, and must not
         * leave the moved VM without its ACLs (note_late_cancel says so) */
        g_atomic_int_set(&r->late_cancel, TRUE);
        g_cancellable_reset(vmshift_job_get_cancellable(r->job));
    }
    if (!vmshift_job_set_phase(r->job, VMSHIFT_PHASE_ACL, error))
        return FALSE;
    if (host_backend_recreate_acl(r->b, vm, r->job, &acl))
        return TRUE;
    /* the backend cannot do it for this VM or host (say, a remote libvirt
     * host): the move itself succeeded */
    if (g_error_matches(acl, VMSHIFT_ERROR, VMSHIFT_ERROR_NOT_SUPPORTED)) {
        vmshift_job_log(r->job, VMSHIFT_LOG_WARNING, "access rules not recreated: %s",
                        acl->message);
        return TRUE;
    }
    g_set_error(error, acl->domain, acl->code,
                "the VM moved, but recreating its access rules failed: %s "
                "(retry with 'vmshift acl recreate %s:%s')",
                acl->message, host_backend_name(r->b), vm);
    return FALSE;
}

/* --ip (the spec's HOST_SPEC_IP_KEY): the plugin's guest customization,
 * after the switchover and the acl phase (in that phase), once per job (a
 * repair runs it when the interrupted run had not done it). The plugin got
 * the move without --start; it starts the VM after customizing it. */
static gboolean
run_guest_phase(HostJobRun *r, GError **error)
{
    g_autoptr(GPtrArray) guest = NULL;
    g_autofree char *done = vmshift_job_get_saved(r->job, "host.guest");

    if (!host_spec_guest(r->spec, &guest, error) || !guest || done)
        return !error || !*error;
    if (!vmshift_job_set_phase(r->job, VMSHIFT_PHASE_ACL, error))
        return FALSE;
    for (guint i = 0; i < guest->len; i++) {
        const VmshiftGuestNic *g = guest->pdata[i];
        vmshift_job_log(r->job, VMSHIFT_LOG_INFO, "guest customization: NIC %s -> %s/%u%s%s",
                        g->nic, g->address, g->prefix_len, g->gateway ? " gateway " : "",
                        g->gateway ? g->gateway : "");
    }
    if (host_backend_customize_guest(r->b, r->spec->vm, guest, r->job, error))
        return vmshift_job_save(r->job, "host.guest", "customized", error);
    g_prefix_error(error, "the VM moved, but its guest customization (--ip) failed: ");
    return FALSE;
}

/* validate, the move, the acl phase, --ip's customization; a plugin without
 * VMSHIFT_PLUGIN_SWITCHOVER_AT: the host waits for the time, validates again. */
static gboolean
run_move(HostJobRun *r, GError **error)
{
    g_autoptr(VmshiftMigrationSpec) s = host_spec_for_plugin(r->spec);

    if (!run_validate(r, error))
        return FALSE;
    if (r->switchover_at && !r->plugin_holds) {
        vmshift_job_log(r->job, VMSHIFT_LOG_INFO,
                        "backend '%s' does not copy ahead: the move starts at the switchover time",
                        host_backend_name(r->b));
        if (!vmshift_job_hold_switchover(r->job, NULL, NULL, error) || !run_validate(r, error))
            return FALSE;
    }
    return host_backend_migrate(r->b, s, r->job, error) && run_acl_phase(r, r->spec->vm, error)
           && run_guest_phase(r, error);
}

/* Whether the repaired job's move took effect, from what the plugin's
 * repair found: its verdict, else where the hypervisor shows the VM. */
static gboolean
repair_moved(HostJobRun *r)
{
    g_autoptr(GHashTable) res = vmshift_job_get_results(r->job);
    const char *how = g_hash_table_lookup(res, "repair");
    VmshiftJobProgress pr = { .struct_size = sizeof pr };
    gboolean moved;

    if (!g_strcmp0(how, "rolled-back"))
        return FALSE;
    if (!g_strcmp0(how, "resumed"))
        return TRUE;
    vmshift_job_get_progress(r->job, &pr);
    if (r->spec->type != VMSHIFT_MIGRATION_STORAGE && r->spec->dest_host
        && g_strcmp0(r->spec->dest_host, r->source_host) != 0)
        moved = pr.location_host && !strcmp(pr.location_host, r->spec->dest_host);
    else
        moved = r->reached >= VMSHIFT_PHASE_SWITCHOVER;
    vmshift_job_progress_clear(&pr);
    return moved;
}

/* Forgets what the plugin saved in the failed attempt, so that the retry
 * (and a repair of the retry) sees only its own data. */
static gboolean
forget_saved(HostJobRun *r, GError **error)
{
    g_autoptr(GHashTable) saved = host_journal_saved(r->ctx->journal, r->id, error);
    GHashTableIter it;
    gpointer k;

    if (!saved)
        return FALSE;
    g_hash_table_iter_init(&it, saved);
    while (g_hash_table_iter_next(&it, &k, NULL)) {
        if (g_str_has_prefix(k, "vmshift."))
            continue; /* the host's record of the source */
        if (!vmshift_job_save(r->job, k, NULL, error))
            return FALSE;
    }
    return TRUE;
}

/* A job interrupted while it waited for its switchover (the plugin's repair
 * has just rolled it back: the VM runs at the source on its old disks).
 * Before the time, the move runs again and waits (the copy starts afresh:
 * a mirror no process watched is not trusted); once the time has passed,
 * the VM stays where it is: no switchover later than scheduled, which may
 * be outside the window the time stood for. */
static gboolean
resume_schedule(HostJobRun *r, gboolean *moved, GError **error)
{
    g_autofree char *when = host_format_switchover(r->switchover_at);
    g_autofree char *ev = NULL;

    if (g_get_real_time() / G_USEC_PER_SEC >= r->switchover_at) {
        ev = g_strdup_printf("the switchover time %s passed while no vmshift ran the job: "
                             "not switched over late; schedule the move again",
                             when);
        vmshift_job_log(r->job, VMSHIFT_LOG_WARNING, "%s", ev);
        return host_journal_schedule_set_state(r->ctx->journal, r->id, "missed", ev, error);
    }
    vmshift_job_log(r->job, VMSHIFT_LOG_INFO,
                    "resuming the scheduled switchover at %s: the move starts again and waits",
                    when);
    if (!r->vm && !(r->vm = host_backend_get_vm(r->b, r->spec->vm, error)))
        return FALSE;
    if (!forget_saved(r, error) || !run_move(r, error))
        return FALSE;
    vmshift_job_set_result(r->job, "repair", "retried");
    *moved = TRUE;
    return TRUE;
}

static gboolean
run_repair(HostJobRun *r, GError **error)
{
    gboolean moved;

    if (r->repair_mode == HOST_REPAIR_DISMISS) {
        vmshift_job_log(r->job, VMSHIFT_LOG_WARNING, "dismissed: %s", r->reason);
        vmshift_job_set_result(r->job, "repair", "dismissed");
        vmshift_job_set_result(r->job, "reason", r->reason);
        return TRUE;
    }
    if (r->cross) /* a move between backends: crossmove.c, every mode */
        return host_cross_repair(r->cross, r->job, r->reached_name, r->repair_mode, error);
    if (r->repair_mode == HOST_REPAIR_CLEANUP) {
        if (!host_backend_has_op(r->b, "cleanup"))
            return host_backend_unsupported(r->b, "cleanup", error);
        if (!vmshift_job_set_phase(r->job, VMSHIFT_PHASE_CLEANUP, error))
            return FALSE;
        return host_backend_cleanup(r->b, r->job, error);
    }
    if (!r->spec) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_NOT_SUPPORTED,
                    "job %" G_GINT64_FORMAT " is not a migration; nothing to repair", r->id);
        return FALSE;
    }
    if (!host_backend_repair(r->b, r->job, error))
        return FALSE;
    moved = repair_moved(r);
    if (moved) {
        /* every phase the job had not finished: acl, --ip's customization */
        if (r->reached != VMSHIFT_PHASE_DONE
            && (!run_acl_phase(r, r->spec->vm, error) || !run_guest_phase(r, error)))
            return FALSE;
        if (r->repair_mode == HOST_REPAIR_RETRY)
            vmshift_job_set_result(r->job, "repair", "retried");
    } else if (r->repair_mode == HOST_REPAIR_AUTO && r->switchover_at) {
        if (!resume_schedule(r, &moved, error))
            return FALSE;
    } else if (r->repair_mode == HOST_REPAIR_RETRY) {
        vmshift_job_log(r->job, VMSHIFT_LOG_INFO, "retrying the move from the %s phase",
                        vmshift_phase_name(r->reached));
        if (!r->vm && !(r->vm = host_backend_get_vm(r->b, r->spec->vm, error)))
            return FALSE;
        if (!forget_saved(r, error) || !run_move(r, error))
            return FALSE;
        vmshift_job_set_result(r->job, "repair", "retried");
        moved = TRUE;
    } else if (r->repair_mode == HOST_REPAIR_UNDO && host_backend_has_op(r->b, "cleanup")) {
        /* the VM is back at the source: the destination's leftovers go */
        if (!vmshift_job_set_phase(r->job, VMSHIFT_PHASE_CLEANUP, error)
            || !host_backend_cleanup(r->b, r->job, error))
            return FALSE;
    }
    vmshift_job_set_result(r->job, "moved", moved ? "true" : "false");
    return TRUE;
}

static gboolean
run_body(HostJobRun *r, GError **error)
{
    switch (r->kind) {
    case HOST_JOB_MIGRATE:
    case HOST_JOB_STORAGE:
        if (r->cross)
            return host_cross_run(r->cross, r->job, r->vm, error);
        return run_move(r, error);
    case HOST_JOB_ACL:
        if (!host_backend_has_op(r->b, "recreate_acl"))
            return host_backend_unsupported(r->b, "recreate_acl", error);
        if (r->acl_from)
            vmshift_job_log(r->job, VMSHIFT_LOG_INFO,
                            "re-applying the access data saved by job %" G_GINT64_FORMAT
                            ", the last move of '%s'",
                            r->acl_from, r->vm->name);
        else
            vmshift_job_log(r->job, VMSHIFT_LOG_INFO,
                            "the journal has no move of '%s'; its rules are re-applied as the "
                            "hypervisor shows them now",
                            r->vm->name);
        if (!vmshift_job_set_phase(r->job, VMSHIFT_PHASE_ACL, error))
            return FALSE;
        return host_backend_recreate_acl(r->b, r->vm->name, r->job, error);
    case HOST_JOB_REPAIR: return run_repair(r, error);
    }
    return FALSE;
}

static char *
results_json(VmshiftJob *job)
{
    g_autoptr(GHashTable) res = vmshift_job_get_results(job);
    json_object *o = json_object_new_object();
    GHashTableIter it;
    gpointer k, v;
    char *out;

    g_hash_table_iter_init(&it, res);
    while (g_hash_table_iter_next(&it, &k, &v))
        json_object_object_add(o, k, host_json_string(v));
    out = g_strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
    json_object_put(o);
    return out;
}

/* An error that leaves the outcome open: the request or its reply was lost
 * on the way (a cut connection, a timeout, an unreadable reply). */
static gboolean
lost_reply(const GError *failure)
{
    return failure && failure->domain == VMSHIFT_ERROR
           && (failure->code == VMSHIFT_ERROR_CONNECTION || failure->code == VMSHIFT_ERROR_TIMEOUT
               || failure->code == VMSHIFT_ERROR_PROTOCOL);
}

/* After a switchover the plugin did not report the VM's location from, or
 * after a failure whose reply was lost: the backend is asked now, before the
 * job's end is written. When it cannot say, the location becomes unknown
 * (the journal's "unknown — verifying"), never the last one reported. */
static void
verify_after_run(HostJobRun *r, const GError *failure)
{
    g_autofree char *host = NULL;
    g_autoptr(VmshiftVm) vm = NULL;
    g_autoptr(GError) err = NULL;
    const char *name = r->spec && r->spec->vm ? r->spec->vm : r->vm ? r->vm->name : NULL;
    VmshiftJobProgress pr = { .struct_size = sizeof pr };
    gboolean lost = !r->cross && r->kind != HOST_JOB_ACL && lost_reply(failure);

    vmshift_job_get_progress(r->job, &pr);
    host = g_strdup(pr.location_host);
    vmshift_job_progress_clear(&pr);
    if (!name || !((r->switched && !host) || lost))
        return;
    if (!(vm = host_backend_get_vm(r->b, name, &err)) || !vm->host) {
        vmshift_job_log(r->job, VMSHIFT_LOG_WARNING, "where VM '%s' is %s is unknown: %s", name,
                        lost ? "after the lost reply" : "after the switchover",
                        err ? err->message : "the backend names no host");
        if (lost && host) {
            g_autoptr(GError) jerr = NULL;
            g_mutex_lock(&r->loclock);
            vmshift_job_set_location(r->job, NULL, NULL);
            if (!host_journal_set_phase_at(r->ctx->journal, r->id,
                                           vmshift_phase_name(vmshift_job_get_phase(r->job)), NULL,
                                           NULL, TRUE, &jerr))
                journal_write_failed(r, jerr);
            g_mutex_unlock(&r->loclock);
        }
        return;
    }
    vmshift_job_set_location(r->job, vm->host, vmshift_power_state_name(vm->power_state));
    vmshift_job_log(r->job, VMSHIFT_LOG_INFO, "asked the backend %s: VM '%s' is on '%s' (%s)",
                    lost ? "after the lost reply" : "after the switchover", name, vm->host,
                    vmshift_power_state_name(vm->power_state));
}

/* A cancel that came after the switchover could not stop the move: the job
 * succeeded, and the journal says so next to it. */
static void
note_late_cancel(HostJobRun *r)
{
    VmshiftJobProgress pr = { .struct_size = sizeof pr };
    g_autofree char *note = NULL;
    g_autoptr(GError) err = NULL;

    if (!r->switched
        || (!g_atomic_int_get(&r->late_cancel)
            && !g_cancellable_is_cancelled(vmshift_job_get_cancellable(r->job))
            && !host_journal_cancel_requested(r->ctx->journal, r->id)))
        return;
    vmshift_job_get_progress(r->job, &pr);
    note = g_strdup_printf("cancel arrived after the switchover; the VM is on %s",
                           pr.location_host ? pr.location_host : "an unknown host");
    vmshift_job_progress_clear(&pr);
    queue_line(r, g_strdup_printf("%s: %s", r->label, note));
    if (!host_journal_set_note(r->ctx->journal, r->id, note, &err))
        journal_write_failed(r, err);
}

/* A schedule whose wait did not end in its switchover: cancelled or failed
 * (a repair that found its time passed said "missed" already). */
static void
end_schedule(HostJobRun *r, gboolean ok, const GError *failure)
{
    g_autoptr(HostSchedule) s = NULL;
    g_autoptr(GError) err = NULL;
    const char *state;

    if (!r->switchover_at || r->released)
        return;
    s = host_journal_schedule_get(r->ctx->journal, r->id, &err);
    if (!s || !strcmp(s->state, "missed") || !strcmp(s->state, "released"))
        return;
    state = ok                                                           ? "ended"
            : g_error_matches(failure, G_IO_ERROR, G_IO_ERROR_CANCELLED) ? "cancelled"
                                                                         : "failed";
    if (!host_journal_schedule_set_state(r->ctx->journal, r->id, state, NULL, &err))
        journal_write_failed(r, err);
}

static gpointer
worker(gpointer data)
{
    HostJobRun *r = data;
    GError *err = NULL;
    gboolean ok = run_body(r, &err);
    VmshiftJobProgress pr = { .struct_size = sizeof pr };
    g_autofree char *results = NULL;
    g_autoptr(GError) jerr = NULL;

    verify_after_run(r, err);
    if (ok && r->kind != HOST_JOB_REPAIR)
        note_late_cancel(r);
    end_schedule(r, ok, err);

    if (ok) {
        g_autoptr(GError) perr = NULL;
        if (!vmshift_job_set_phase(r->job, VMSHIFT_PHASE_DONE, &perr))
            vmshift_job_log(r->job, VMSHIFT_LOG_WARNING, "could not record phase done: %s",
                            perr->message);
        r->state = g_strdup(r->kind == HOST_JOB_REPAIR ? "repaired" : "succeeded");
    } else {
        if (!err)
            g_set_error(&err, VMSHIFT_ERROR, VMSHIFT_ERROR_FAILED, "failed without a reason");
        r->state = g_strdup(g_error_matches(err, G_IO_ERROR, G_IO_ERROR_CANCELLED) ? "cancelled"
                                                                                   : "failed");
        r->error = err;
    }
    /* from here the end's results and location are the journal's: a tick
     * that read them before must not write them after (it holds loclock) */
    g_mutex_lock(&r->loclock);
    r->finishing = TRUE;
    g_mutex_unlock(&r->loclock);
    if (ok)
        vmshift_job_set_progress(r->job, 100);
    vmshift_job_get_progress(r->job, &pr);
    if (!host_journal_update_progress(r->ctx->journal, r->id, pr.percent, pr.bytes_done,
                                      pr.bytes_total, NULL, NULL, NULL, &jerr)) {
        journal_write_failed(r, jerr);
        g_clear_error(&jerr);
    }
    results = results_json(r->job);
    if (!host_journal_finish(r->ctx->journal, r->id, r->state, r->error, pr.location_host,
                             pr.location_detail, results, &jerr))
        queue_line(r, g_strdup_printf("%s: warning: %s", r->label, jerr->message));
    vmshift_job_progress_clear(&pr);
    g_atomic_int_set(&r->done, 1);
    g_main_context_wakeup(NULL);
    return NULL;
}

/* ---- main-thread API ------------------------------------------------------------------- */

/* An interrupted job that was never repaired holds its VM: what the VM's
 * state is hangs on that job, and only its repair may change it. */
static gboolean
vm_not_held(HostJournal *j, HostBackend *b, const char *vm, GError **error)
{
    gint64 held = host_interrupted_job(j, host_backend_name(b), vm, error);

    if (held < 0)
        return FALSE;
    if (held == 0)
        return TRUE;
    g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_CONFLICT,
                "VM '%s' (backend '%s') is held by interrupted job %" G_GINT64_FORMAT
                "; repair it first: vmshift job repair %" G_GINT64_FORMAT,
                vm, host_backend_name(b), held, held);
    return FALSE;
}

/* acl recreate: the data the VM's last move saved (ESX permissions and
 * tags, ...) is what recreate_acl re-applies. */
static gboolean
restore_last_move(HostJobRun *r, const char *vm, GError **error)
{
    g_autoptr(HostJobRecord)
        last = host_last_move(r->ctx->journal, host_backend_name(r->b), vm, error);
    g_autoptr(GHashTable) saved = NULL;

    if (!last)
        return !error || !*error;
    saved = host_journal_saved(r->ctx->journal, last->id, error);
    if (!saved)
        return FALSE;
    vmshift_job_restore(r->job, VMSHIFT_PHASE_NONE, saved);
    r->acl_from = last->id;
    return TRUE;
}

/* A repair: the repaired job's schedule, while its wait has not ended. */
static gboolean
load_schedule(HostJobRun *r, GError **error)
{
    g_autoptr(HostSchedule) s = host_journal_schedule_get(r->ctx->journal, r->id, error);

    if (!s && error && *error)
        return FALSE;
    r->switchover_at = 0;
    if (s && (!strcmp(s->state, "scheduled") || !strcmp(s->state, "waiting"))) {
        r->switchover_at = s->switchover_at;
        r->plugin_holds = host_backend_holds_switchover(r->b);
    }
    if (r->spec)
        r->spec->switchover_at = r->plugin_holds ? r->switchover_at : 0;
    return TRUE;
}

HostJobRun *
host_job_run_new(HostJobContext *ctx, HostJobKind kind, HostBackend *b, const VmshiftVm *vm,
                 const VmshiftMigrationSpec *spec, gint64 repair_id, GError **error)
{
    g_autoptr(HostJobRun) r = g_new0(HostJobRun, 1);
    g_autofree char *spec_json = NULL;
    g_autofree char *id_str = NULL;
    g_autofree char *source_path = NULL;
    const char *vm_name = vm ? vm->name : spec ? spec->vm : NULL;

    r->ctx = ctx;
    r->kind = kind;
    r->b = b;
    g_mutex_init(&r->qlock);
    g_mutex_init(&r->loclock);
    r->queue = g_ptr_array_new_with_free_func(g_free);
    r->hooks = (VmshiftJobHooks){
        .struct_size = sizeof(VmshiftJobHooks),
        .phase = hook_phase,
        .log = hook_log,
        .save = hook_save,
        .hold = hook_hold,
        .open_source = hook_open_source,
    };
    if (vm) {
        /* keep what validation needs: the caller has just fetched the VM
         * (migrate, bulk planning), so asking the plugin again would only
         * repeat that; the plugin's check_migration and migrate read the
         * live state themselves */
        r->vm = vmshift_vm_copy(vm);
    }
    r->spec = vmshift_migration_spec_copy(spec);
    if (r->spec && r->spec->switchover_at) {
        r->switchover_at = r->spec->switchover_at;
        r->plugin_holds = host_backend_holds_switchover(b);
        if (!r->plugin_holds)
            r->spec->switchover_at = 0; /* the host waits; the plugin never sees it */
    }

    if (kind == HOST_JOB_REPAIR) {
        g_autoptr(HostJobRecord) rec = host_journal_get(ctx->journal, repair_id, error);
        g_autoptr(GHashTable) saved = NULL;
        if (!rec || !host_journal_take_job(ctx->journal, repair_id, error))
            return NULL;
        saved = host_journal_saved(ctx->journal, repair_id, error);
        if (!saved)
            return NULL;
        r->id = repair_id;
        if (!r->spec && rec->spec)
            r->spec = host_spec_from_json(rec->spec, NULL);
        if (!load_schedule(r, error))
            return NULL;
        r->reached = vmshift_phase_from_name(rec->phase);
        r->reached_name = g_strdup(rec->phase);
        r->source_host = g_strdup(rec->source_host);
        if (host_spec_is_cross(r->spec))
            r->cross = host_cross_new(b, ctx->journal, r->id);
        id_str = g_strdup_printf("%" G_GINT64_FORMAT, r->id);
        r->job = vmshift_job_new(id_str, r->spec, &r->hooks, r);
        vmshift_job_restore(r->job, r->reached, saved);
        /* only a location a backend reported; an unknown one stays
         * unknown until the repair asks */
        if (rec->location_verified)
            vmshift_job_set_location(r->job, rec->location_host, rec->location_detail);
        r->label = g_strdup_printf("job %" G_GINT64_FORMAT " (repair %s)", r->id, rec->vm);
        return g_steal_pointer(&r);
    }

    if (r->vm && r->vm->config_path)
        source_path = g_strdup(r->vm->config_path);
    if (!vm_not_held(ctx->journal, b, vm_name, error))
        return NULL;
    spec_json = host_spec_to_json(spec, kind);
    r->id = host_journal_begin_job(ctx->journal, host_job_kind_name(kind), host_backend_name(b),
                                   vm_name, spec_json, r->vm ? r->vm->host : NULL, source_path,
                                   error);
    if (!r->id)
        return NULL;
    if (kind != HOST_JOB_ACL && !host_record_source(ctx->journal, r->id, r->vm, error))
        return NULL;
    if (r->switchover_at
        && !host_journal_schedule_add(ctx->journal, r->id, r->switchover_at,
                                      r->plugin_holds ? "copy-ahead" : "start-at", error))
        return NULL;
    id_str = g_strdup_printf("%" G_GINT64_FORMAT, r->id);
    if (host_spec_is_cross(r->spec))
        r->cross = host_cross_new(b, ctx->journal, r->id);
    r->job = vmshift_job_new(id_str, r->spec, &r->hooks, r);
    if (kind == HOST_JOB_ACL && !restore_last_move(r, vm_name, error))
        return NULL;
    r->label = g_strdup_printf("job %" G_GINT64_FORMAT " (%s)", r->id, vm_name);
    if (r->vm)
        vmshift_job_set_location(r->job, r->vm->host, vmshift_power_state_name(r->vm->power_state));
    return g_steal_pointer(&r);
}

void
host_job_run_set_repair(HostJobRun *r, HostRepairMode mode, const char *reason)
{
    r->repair_mode = mode;
    g_free(r->reason);
    r->reason = g_strdup(reason);
}

void
host_job_run_start(HostJobRun *r)
{
    g_autofree char *name = g_strdup_printf("job-%" G_GINT64_FORMAT, r->id);
    r->thread = g_thread_new(name, worker, r);
}

gboolean
host_job_run_is_done(HostJobRun *r)
{
    return g_atomic_int_get(&r->done) != 0;
}

gint64
host_job_run_id(HostJobRun *r)
{
    return r->id;
}

const char *
host_job_run_state(HostJobRun *r)
{
    return r->state;
}

const GError *
host_job_run_error(HostJobRun *r)
{
    return r->error;
}

const char *
host_job_run_backend(HostJobRun *r)
{
    return host_backend_name(r->b);
}

const char *
host_job_run_dest_host(HostJobRun *r)
{
    return r->spec ? r->spec->dest_host : NULL;
}

/* Whether a cancel can still stop the job: not once a move's switchover
 * is done and its acl phase (or later) runs. Cancelling then would leave
 * the moved VM without its ACLs; the job finishes and notes the late cancel. */
static gboolean
cancel_can_stop(HostJobRun *r)
{
    VmshiftPhase p = vmshift_job_get_phase(r->job);
    gboolean late;

    g_mutex_lock(&r->loclock); /* switched is the worker thread's */
    late = (r->kind == HOST_JOB_MIGRATE || r->kind == HOST_JOB_STORAGE) && r->switched
           && (p == VMSHIFT_PHASE_ACL || p == VMSHIFT_PHASE_DONE);
    g_mutex_unlock(&r->loclock);
    if (r->cross && host_cross_verified(r->cross))
        late = TRUE; /* a move between backends past its verify */
    if (late)
        g_atomic_int_set(&r->late_cancel, TRUE);
    return !late;
}

void
host_job_run_cancel(HostJobRun *r)
{
    if (r->job && !host_job_run_is_done(r) && cancel_can_stop(r))
        vmshift_job_cancel(r->job);
}

static void
drain(HostJobRun *r)
{
    g_autoptr(GPtrArray) lines = NULL;

    g_mutex_lock(&r->qlock);
    lines = r->queue;
    r->queue = g_ptr_array_new_with_free_func(g_free);
    g_mutex_unlock(&r->qlock);
    for (guint i = 0; i < lines->len; i++) {
        if (r->ctx->progress)
            host_progress_line(r->ctx->progress, "%s", (char *)g_ptr_array_index(lines, i));
        else
            fprintf(stderr, "%s\n", (char *)g_ptr_array_index(lines, i));
    }
}

void
host_job_run_tick(HostJobRun *r)
{
    gint64 now = g_get_monotonic_time();

    if (host_job_run_is_done(r)) {
        if (r->thread) {
            /* the worker has ended or is ending: its stack goes back now,
             * not when the last job of the run (a bulk wave) ends */
            g_thread_join(r->thread);
            r->thread = NULL;
        }
        if (r->ctx->progress)
            host_progress_remove(r->ctx->progress, r->label);
        drain(r);
        return;
    }
    drain(r);
    if (now - r->last_cancel_poll >= 200 * 1000) {
        r->last_cancel_poll = now;
        if (!r->cancel_seen && host_journal_cancel_requested(r->ctx->journal, r->id)) {
            r->cancel_seen = TRUE;
            if (!cancel_can_stop(r)) {
                queue_line(r, g_strdup_printf("%s: cancel requested after the switchover: "
                                              "the move is done, finishing its ACLs",
                                              r->label));
            } else {
                if (r->ctx->progress)
                    host_progress_line(r->ctx->progress, "%s: cancel requested, cancelling",
                                       r->label);
                vmshift_job_cancel(r->job);
            }
        }
    }
    if (r->ctx->progress)
        host_progress_update(r->ctx->progress, r->label, r->job);
    if (now - r->last_journal >= G_USEC_PER_SEC) {
        VmshiftJobProgress pr = { .struct_size = sizeof pr };
        g_autofree char *results = NULL;
        g_autoptr(GError) err = NULL;
        gboolean ok;
        r->last_journal = now;
        /* under loclock: a report read before the switchover began is not
         * written after the journal made the location unknown, nor results
         * read before the worker's end over the end's */
        g_mutex_lock(&r->loclock);
        if (r->finishing) {
            g_mutex_unlock(&r->loclock);
            return;
        }
        /* results a plugin sets while running survive a killed process */
        results = results_json(r->job);
        vmshift_job_get_progress(r->job, &pr);
        ok = host_journal_update_progress(r->ctx->journal, r->id, pr.percent, pr.bytes_done,
                                          pr.bytes_total, pr.location_host, pr.location_detail,
                                          results, &err);
        g_mutex_unlock(&r->loclock);
        if (!ok)
            journal_write_failed(r, err);
        vmshift_job_progress_clear(&pr);
    }
}

void
host_job_run_free(HostJobRun *r)
{
    if (!r)
        return;
    if (r->thread)
        g_thread_join(r->thread);
    if (r->job)
        vmshift_job_unref(r->job);
    vmshift_vm_free(r->vm);
    vmshift_migration_spec_free(r->spec);
    g_clear_error(&r->error);
    g_free(r->state);
    g_free(r->label);
    g_free(r->reason);
    g_free(r->source_host);
    g_free(r->reached_name);
    host_cross_free(r->cross);
    g_ptr_array_unref(r->queue);
    g_mutex_clear(&r->qlock);
    g_mutex_clear(&r->loclock);
    g_free(r);
}

typedef struct {
    HostJobContext *ctx;
    GPtrArray *runs;
    GMainLoop *loop;
    HostJobsMore more;
    gpointer more_data;
    gboolean more_pending;
} WaitState;

static gboolean
all_done(WaitState *w)
{
    for (guint i = 0; i < w->runs->len; i++)
        if (!host_job_run_is_done(g_ptr_array_index(w->runs, i)))
            return FALSE;
    return !w->more_pending;
}

static gboolean
on_tick(gpointer data)
{
    WaitState *w = data;

    if (w->more && w->more_pending)
        w->more_pending = w->more(w->more_data, w->runs);
    for (guint i = 0; i < w->runs->len; i++)
        host_job_run_tick(g_ptr_array_index(w->runs, i));
    if (all_done(w))
        g_main_loop_quit(w->loop);
    return G_SOURCE_CONTINUE;
}

static gboolean
on_signal(gpointer data)
{
    WaitState *w = data;

    w->ctx->stopping = TRUE;
    for (guint i = 0; i < w->runs->len; i++) {
        HostJobRun *r = g_ptr_array_index(w->runs, i);
        g_autoptr(GError) err = NULL;
        if (host_job_run_is_done(r))
            continue;
        if (w->ctx->progress)
            host_progress_line(w->ctx->progress, "%s: interrupted, cancelling", r->label);
        if (!host_journal_add_event(w->ctx->journal, r->id, "cancel", "warning", "cancel",
                                    "cancelled by a signal", &err))
            journal_write_failed(r, err);
        host_job_run_cancel(r);
    }
    return G_SOURCE_CONTINUE;
}

/* SIGHUP: the terminal (an ssh session) is gone. The jobs go on; what they
 * do goes to the journal as always, and lines for the terminal may now fail
 * to write (EIO, EPIPE: SIGPIPE is ignored, see main.c). */
static gboolean
on_hangup(gpointer data)
{
    WaitState *w = data;

    for (guint i = 0; i < w->runs->len; i++) {
        HostJobRun *r = g_ptr_array_index(w->runs, i);
        g_autoptr(GError) err = NULL;
        if (host_job_run_is_done(r))
            continue;
        if (!host_journal_add_event(w->ctx->journal, r->id, "log", "warning", NULL,
                                    "the terminal hung up (SIGHUP); the job goes on, "
                                    "'vmshift jobs' shows it",
                                    &err))
            journal_write_failed(r, err);
    }
    return G_SOURCE_CONTINUE;
}

void
host_jobs_wait_full(HostJobContext *ctx, GPtrArray *runs, HostJobsMore more, gpointer more_data)
{
    WaitState w = {
        .ctx = ctx, .runs = runs, .more = more, .more_data = more_data, .more_pending = more != NULL
    };
    guint tick, sint, sterm, shup;

    w.loop = g_main_loop_new(NULL, FALSE);
    tick = g_timeout_add(100, on_tick, &w);
    sint = g_unix_signal_add(SIGINT, on_signal, &w);
    sterm = g_unix_signal_add(SIGTERM, on_signal, &w);
    shup = g_unix_signal_add(SIGHUP, on_hangup, &w);
    on_tick(&w);
    if (!all_done(&w))
        g_main_loop_run(w.loop);
    g_source_remove(tick);
    g_source_remove(sint);
    g_source_remove(sterm);
    g_source_remove(shup);
    /* GLib puts the default action back: a hangup from now on is ignored,
     * as before the jobs ran (main.c) */
    signal(SIGHUP, SIG_IGN);
    if (ctx->progress)
        host_progress_finish(ctx->progress);
    for (guint i = 0; i < runs->len; i++) {
        HostJobRun *r = g_ptr_array_index(runs, i);
        if (r->thread) {
            g_thread_join(r->thread);
            r->thread = NULL;
        }
        drain(r);
    }
    g_main_loop_unref(w.loop);
}

void
host_jobs_wait(HostJobContext *ctx, GPtrArray *runs)
{
    host_jobs_wait_full(ctx, runs, NULL, NULL);
}

/* ---- where VMs are: asking the backends ------------------------------------------------ */

static gboolean
record_live(const HostJobRecord *r)
{
    return (!strcmp(r->state, "running") || !strcmp(r->state, "queued"))
           && host_process_alive(r->pid, r->pid_start);
}

/* Asks @r's backend where its VM is; the answer (host, power state) or
 * why not. */
static gboolean
ask_backend(HostRegistry *reg, HostJournal *j, const HostJobRecord *r, char **host, char **detail,
            GError **error)
{
    HostBackend *b;
    g_autoptr(VmshiftVm) vm = NULL;

    /* a move between backends: "BACKEND:HOST", of the side that has it */
    if (host_cross_ask_location(reg, j, r, host, detail, error))
        return *host != NULL;
    b = host_registry_get_open(reg, r->backend, error);
    if (!b || !(vm = host_backend_get_vm(b, r->vm, error)))
        return FALSE;
    *host = g_strdup(vm->host);
    *detail = g_strdup(vmshift_power_state_name(vm->power_state));
    return TRUE;
}

guint
host_jobs_verify_locations(HostRegistry *reg, HostJournal *j, GPtrArray *list)
{
    g_autoptr(GPtrArray) own = NULL;
    g_autoptr(GHashTable) asked = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    guint n = 0;

    if (!list && !(list = own = host_journal_list(j, NULL)))
        return 0;
    for (guint i = 0; i < list->len; i++) {
        HostJobRecord *r = g_ptr_array_index(list, i);
        g_autofree char *key = NULL, *host = NULL, *detail = NULL, *event = NULL;
        g_autoptr(GError) err = NULL;
        const char *seen;

        if (r->location_verified || record_live(r))
            continue;
        key = g_strdup_printf("%s:%s", r->backend, r->vm);
        if ((seen = g_hash_table_lookup(asked, key)) && !*seen)
            continue; /* that backend could not tell, a moment ago */
        if (!ask_backend(reg, j, r, &host, &detail, &err)) {
            g_free(r->location_detail);
            r->location_detail = g_strdup_printf("backend not asked: %s", err->message);
            g_hash_table_replace(asked, g_steal_pointer(&key), g_strdup(""));
            continue;
        }
        event = g_strdup_printf("location verified with backend '%s': VM '%s' is on '%s' (%s); "
                                "the journal had %s",
                                r->backend, r->vm, host, detail,
                                r->location_host ? r->location_host : "no location");
        if (!host_journal_read_only(j)) {
            if (!host_journal_set_location(j, r->id, host, detail, event, &err))
                host_warn("%s", err->message);
        }
        g_free(r->location_host);
        g_free(r->location_detail);
        r->location_host = g_steal_pointer(&host);
        r->location_detail = g_steal_pointer(&detail);
        r->location_verified = TRUE;
        g_hash_table_replace(asked, g_steal_pointer(&key), g_strdup("y"));
        n++;
    }
    return n;
}
