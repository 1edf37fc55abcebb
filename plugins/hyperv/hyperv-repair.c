/*
 * vmshift Hyper-V plugin: repair of a migration whose vmshift process died.
 * Facts and sources: docs/design/hyperv.md.
 */
#include "config.h"

#include <string.h>

#include <vmshift/vmshift.h>

#include "hyperv.h"

/* The interrupted job's Hyper-V job on @h: by its saved InstanceID, else the
 * running migration job of the VM.  NULL without @error: there is none. */
static HvInstance *
repair_find_job(HvHost *h, const char *uri, const char *jid, const char *guid, GError **error)
{
    if (jid != NULL) {
        const char *sel[] = { "InstanceID", jid, NULL };
        g_autoptr(GError) e = NULL;
        HvInstance *j = hv_get(h, uri, sel, "Get job", NULL, &e);
        if (j != NULL)
            return j;
        if (!g_error_matches(e, VMSHIFT_ERROR, VMSHIFT_ERROR_NOT_FOUND)) {
            g_propagate_error(error, g_steal_pointer(&e));
            return NULL;
        }
        return NULL; /* ended more than TimeBeforeRemoval ago */
    }
    if (guid != NULL && hv_wql_safe(guid)) {
        g_autofree char *q = g_strdup_printf("SELECT * FROM Msvm_MigrationJob WHERE "
                                             "VirtualSystemName = '%s'",
                                             guid);
        g_autoptr(GPtrArray) js = hv_wql(h, HV_NS_V2, q, NULL, error);
        if (js == NULL)
            return NULL;
        for (guint i = 0; i < js->len; i++)
            if (hv_job_state_running(hv_inst_get_int(js->pdata[i], "JobState", 0)))
                return g_ptr_array_steal_index(js, i);
    }
    return NULL;
}

/* Whether @v sits where @spec wanted it. */
static gboolean
repair_vm_at_target(VmshiftBackend *b, HvVm *v, const VmshiftMigrationSpec *spec)
{
    if (spec->type != VMSHIFT_MIGRATION_STORAGE) {
        HvHost *d = spec->dest_host ? hv_find_host(b, spec->dest_host) : NULL;
        if (d == NULL || d != v->host)
            return FALSE;
    }
    if (spec->dest_path != NULL) {
        const char *root = hv_inst_get(v->vssd, "ConfigurationDataRoot");
        g_autofree char *want = hv_join_win(spec->dest_path, "x");
        g_autofree char *have = root ? hv_join_win(root, "x") : NULL;
        return have != NULL && g_ascii_strcasecmp(want, have) == 0;
    }
    if (spec->disk_paths != NULL && spec->disk_paths->len > 0) {
        g_autoptr(GPtrArray) t = hv_disk_targets(v, spec);
        for (guint i = 0; i < t->len; i++)
            if (t->pdata[i] != NULL
                && g_ascii_strcasecmp(t->pdata[i], hv_inst_get(v->sasds->pdata[i], "HostResource"))
                       != 0)
                return FALSE;
    }
    return TRUE;
}

/* One repair and what the interrupted job journaled. */
typedef struct {
    VmshiftBackend *b;
    VmshiftJob *job;
    const VmshiftMigrationSpec *spec;
    char *jid;  /* the Hyper-V job's InstanceID, once known */
    char *juri; /* its resource URI */
    char *src;  /* the source host */
    char *guid; /* the VM's id */
    const char *vmkey;
    HvHost *sh; /* the source host, connected */
    gint64 st;  /* the Hyper-V job's JobState, or -1 */
    char *outcome_detail;
} Repair;

static void
repair_clear(Repair *r)
{
    g_free(r->jid);
    g_free(r->juri);
    g_free(r->src);
    g_free(r->guid);
    g_free(r->outcome_detail);
}
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(Repair, repair_clear)

/* The source host: as journaled, or where the VM is when the job died
 * before anything was sent to Hyper-V. */
static gboolean
repair_source_host(Repair *r, GError **error)
{
    if (r->src == NULL) {
        g_autoptr(HvVm) w = hv_find_vm(r->b, r->vmkey, FALSE, error);
        if (w == NULL)
            return FALSE;
        r->sh = w->host;
    } else {
        r->sh = hv_find_host(r->b, r->src);
    }
    if (r->sh == NULL || !hv_host_usable(r->sh)) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_CONNECTION,
                    "repair of %s: source Hyper-V host %s is not reachable; the Hyper-V job "
                    "%s may still be running there, try again",
                    r->spec->vm, r->src ? r->src : "(unknown)",
                    r->jid ? r->jid : "(none recorded)");
        return FALSE;
    }
    return TRUE;
}

/* Logs what was found of the Hyper-V job @hj (may be NULL). */
static void
repair_log_job(Repair *r, const HvInstance *hj)
{
    if (hj != NULL) {
        const char *iid = hv_inst_get(hj, "InstanceID");
        if (r->jid == NULL && iid != NULL)
            r->jid = g_strdup(iid);
        r->st = hv_inst_get_int(hj, "JobState", 0);
        vmshift_job_log(r->job, VMSHIFT_LOG_INFO,
                        "Hyper-V job %s on %s: JobState %" G_GINT64_FORMAT ", %" G_GINT64_FORMAT
                        "%%",
                        r->jid, r->sh->name, r->st, hv_inst_get_int(hj, "PercentComplete", 0));
        return;
    }
    vmshift_job_log(r->job, VMSHIFT_LOG_INFO, "no Hyper-V job of %s on %s%s%s", r->spec->vm,
                    r->sh->name, r->jid ? " (job " : "", r->jid ? r->jid : "");
    if (r->jid != NULL)
        vmshift_job_log(r->job, VMSHIFT_LOG_INFO,
                        "Hyper-V job %s ended long ago; deciding "
                        "by where the VM is",
                        r->jid);
}

/* The Hyper-V job still runs: before switchover cancel it, then wait until
 * it ends; sets r->st to how it ended. */
static gboolean
repair_finish_job(Repair *r, GError **error)
{
    VmshiftPhase phase = vmshift_job_get_phase(r->job);
    g_autoptr(HvEpr) epr = g_new0(HvEpr, 1);
    g_autoptr(GError) e = NULL;
    g_autofree char *errmsg = NULL;
    gint64 errcode = 0;
    HvPollResult pr;

    epr->uri = g_strdup(r->juri);
    epr->names = g_ptr_array_new_with_free_func(g_free);
    epr->values = g_ptr_array_new_with_free_func(g_free);
    g_ptr_array_add(epr->names, g_strdup("InstanceID"));
    g_ptr_array_add(epr->values, g_strdup(r->jid));
    if (phase < VMSHIFT_PHASE_SWITCHOVER) {
        g_autoptr(HvInstance) out = hv_job_request_kill(r->sh, r->juri, r->jid, &e);
        if (out == NULL) {
            vmshift_job_log(r->job, VMSHIFT_LOG_WARNING,
                            "cancelling Hyper-V job %s: %s; "
                            "waiting for it instead",
                            r->jid, e->message);
            g_clear_error(&e);
        } else {
            vmshift_job_log(r->job, VMSHIFT_LOG_INFO,
                            "interrupted before switchover: asked "
                            "Hyper-V to stop job %s (ReturnValue %s)",
                            r->jid, hv_inst_get(out, "ReturnValue"));
        }
    } else {
        vmshift_job_log(r->job, VMSHIFT_LOG_INFO,
                        "interrupted in %s: waiting for Hyper-V "
                        "job %s to finish",
                        vmshift_phase_name(phase), r->jid);
    }
    pr = hv_poll_job(r->sh, epr, r->job, 0, &errmsg, &errcode, &e);
    if (pr == HV_POLL_DONE) {
        r->st = HV_JOB_COMPLETED;
    } else if (errmsg != NULL || pr == HV_POLL_CANCELLED) {
        r->st = HV_JOB_KILLED;
        if (errmsg != NULL)
            r->outcome_detail = g_strdup_printf("Hyper-V job %s ended: %s", r->jid, errmsg);
    } else {
        g_autoptr(HvVm) w = hv_find_vm(r->b, r->vmkey, FALSE, NULL);
        if (w != NULL)
            hv_report_location(r->b, w, r->job, r->jid);
        g_propagate_prefixed_error(error, g_steal_pointer(&e),
                                   "repair of %s: lost track of Hyper-V job %s: ", r->spec->vm,
                                   r->jid);
        return FALSE;
    }
    return TRUE;
}

/* After a "resumed" storage move: the moved files' ACLs, as after a normal
 * migration.  A failure is a warning: the VM has moved. */
static void
repair_acl(Repair *r, HvVm *v)
{
    const VmshiftMigrationSpec *spec = r->spec;
    g_autoptr(GError) ae = NULL;

    if (spec->dest_path == NULL && (spec->disk_paths == NULL || spec->disk_paths->len == 0))
        return;
    if (!vmshift_job_set_phase(r->job, VMSHIFT_PHASE_ACL, &ae)
        || !hyperv_recreate_acl(r->b, hv_inst_get(v->cs, "Name"), r->job, 0, &ae))
        vmshift_job_log(r->job, VMSHIFT_LOG_WARNING,
                        "storage moved but ACLs not re-created "
                        "(%s); run vmshift acl recreate %s",
                        ae->message, r->spec->vm);
}

/* A resumed cold move with --start: the interrupted job may have died
 * between the move and the start, so the VM is started if it is not
 * running (found by bench/faults: killed or cancelled at the switchover,
 * the VM stayed off on the destination). */
static gboolean
repair_start(Repair *r, HvVm *v, GError **error)
{
    if (r->spec->type != VMSHIFT_MIGRATION_COLD || !r->spec->start
        || hv_inst_get_int(v->cs, "EnabledState", 0) == HV_ENABLED_ENABLED)
        return TRUE;
    return hv_vm_start(v->host, v, r->job, "cold migration", r->spec->vm, error);
}

/*
 * repair: the vmshift process running a migration died; Hyper-V's own job
 * may still be running on the source host (the migration runs inside VMMS,
 * not in vmshift).  Decision (docs/hyperv.md "Repair"):
 *  - Hyper-V job still running and the interrupted job had not reached
 *    switchover: cancel it (RequestStateChange, RequestedState Kill) and wait
 *    until it ends, so the VM keeps running only at the source
 *    ("rolled-back").  If it completes before the cancel lands, it is
 *    "resumed".
 *  - still running at or after switchover: wait for it to end.
 *  - completed: "resumed" (the VM is at the destination; the ACLs of moved
 *    files are re-created, as after a normal migration).
 *  - failed, killed or none: "rolled-back", with the VM where it is; when
 *    the job record is gone (Hyper-V drops it 5 minutes after it ended),
 *    the outcome is read from where the VM actually is.
 * The location is always taken from the hosts, never assumed.
 */
gboolean
hyperv_repair(VmshiftBackend *b, VmshiftJob *job, guint32 flags, GError **error)
{
    g_auto(Repair) r = { .b = b, .job = job, .spec = vmshift_job_get_spec(job), .st = -1 };
    g_autoptr(HvInstance) hj = NULL;
    g_autoptr(HvVm) v = NULL;
    g_autoptr(GError) e = NULL;
    const char *outcome;

    if (!vmshift_check_flags(flags, 0, "repair", error))
        return FALSE;
    if (r.spec == NULL) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_INVALID_ARGUMENT,
                    "repair of job %s: not a migration", vmshift_job_get_id(job));
        return FALSE;
    }
    r.jid = vmshift_job_get_saved(job, "hyperv-job");
    r.juri = vmshift_job_get_saved(job, "hyperv-job-uri");
    r.src = vmshift_job_get_saved(job, "source-host");
    r.guid = vmshift_job_get_saved(job, "vm-guid");
    r.vmkey = r.guid != NULL ? r.guid : r.spec->vm;
    if (r.juri == NULL || !g_str_has_prefix(r.juri, HV_V2)) {
        g_free(r.juri);
        r.juri = g_strdup(HV_V2 "Msvm_MigrationJob");
    }
    if (!repair_source_host(&r, error))
        return FALSE;
    hj = repair_find_job(r.sh, r.juri, r.jid, r.guid, &e);
    if (hj == NULL && e != NULL) {
        g_propagate_prefixed_error(error, g_steal_pointer(&e), "repair of %s: ", r.spec->vm);
        return FALSE;
    }
    repair_log_job(&r, hj);
    if (hj != NULL && hv_job_state_running(r.st) && !repair_finish_job(&r, error))
        return FALSE;
    v = hv_find_vm(b, r.vmkey, FALSE, error);
    if (v == NULL) {
        g_prefix_error(error, "repair of %s: ", r.spec->vm);
        return FALSE;
    }
    hv_report_location(b, v, job, r.jid);
    if (hj != NULL)
        outcome = hv_job_state_completed(r.st) ? "resumed" : "rolled-back";
    else
        outcome = repair_vm_at_target(b, v, r.spec) ? "resumed" : "rolled-back";
    if (strcmp(outcome, "resumed") == 0 && !repair_vm_at_target(b, v, r.spec))
        vmshift_job_log(job, VMSHIFT_LOG_WARNING,
                        "Hyper-V job %s completed but %s is on %s, "
                        "not where the job asked",
                        r.jid ? r.jid : "", r.spec->vm, v->host->name);
    if (strcmp(outcome, "resumed") == 0) {
        repair_acl(&r, v);
        if (!repair_start(&r, v, error))
            return FALSE;
    }
    vmshift_job_set_result(job, "repair", outcome);
    if (r.outcome_detail != NULL)
        vmshift_job_log(job, VMSHIFT_LOG_INFO, "%s", r.outcome_detail);
    vmshift_job_log(job, VMSHIFT_LOG_INFO, "repair: %s; %s is on %s", outcome, r.spec->vm,
                    v->host->name);
    return TRUE;
}
