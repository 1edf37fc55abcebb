/*
 * vmshiftd: jobs run by the daemon, through the host's job engine
 * (host/jobs.c) on the host's journal, exactly as `vmshift migrate` and
 * `vmshift job repair` run them; only the waiting differs: the daemon's main
 * loop ticks every run (progress to the journal, cancel requests from any
 * process) instead of host_jobs_wait(). Every change is recorded in the
 * job's log with who asked (an "audit" event).
 */
#include "config.h"

#include <string.h>

#include "daemon/daemon.h"

static gboolean
audit(Daemon *d, gint64 id, const char *what, const char *who, GError **error)
{
    g_autofree char *line = g_strdup_printf("%s by %s", what, who);
    return host_journal_add_event(d->journal, id, "audit", "info", "requested-by", line, error);
}

static gboolean
parse_kind(json_object *body, HostJobKind *kind, GError **error)
{
    json_object *k = NULL;
    const char *s;

    if (!json_object_object_get_ex(body, "kind", &k)) {
        *kind = HOST_JOB_MIGRATE;
        return TRUE;
    }
    s = json_object_is_type(k, json_type_string) ? json_object_get_string(k) : "";
    if (!strcmp(s, "migrate"))
        *kind = HOST_JOB_MIGRATE;
    else if (!strcmp(s, "migrate-storage"))
        *kind = HOST_JOB_STORAGE;
    else if (!strcmp(s, "acl"))
        *kind = HOST_JOB_ACL;
    else {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_INVALID_ARGUMENT,
                    "request body: 'kind' must be migrate, migrate-storage or acl");
        return FALSE;
    }
    return TRUE;
}

/* What check_args() of the command line checks, for a request body. */
static gboolean
check_opts(HostJobKind kind, const HostMigrateOpts *o, GError **error)
{
    const char *name = host_job_kind_name(kind);

    if (kind == HOST_JOB_MIGRATE && !!o->to + !!o->to_group != 1) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_INVALID_ARGUMENT,
                    "%s: give exactly one of 'to' and 'to_group'", name);
        return FALSE;
    }
    if (kind == HOST_JOB_STORAGE && !o->path && !o->disk_paths) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_INVALID_ARGUMENT,
                    "%s: give 'path' or 'disk_paths'", name);
        return FALSE;
    }
    if (kind != HOST_JOB_MIGRATE && (o->to || o->to_group || o->live || o->cold)) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_INVALID_ARGUMENT,
                    "%s: 'to', 'to_group', 'live' and 'cold' are for migrate", name);
        return FALSE;
    }
    {
        g_autoptr(GPtrArray) tmp = vmshift_list_new((GDestroyNotify)vmshift_mapping_free);
        if (!host_spec_add_mappings(tmp, o->disk_paths, "disk_paths", error)
            || !host_spec_add_mappings(tmp, o->networks, "networks", error)
            || !host_spec_parse_options(o->options, NULL, error))
            return FALSE;
    }
    return TRUE;
}

HostJobRun *
daemon_job_create(Daemon *d, json_object *body, const char *who, GError **error)
{
    g_auto(HostMigrateOpts) o = { 0 };
    HostJobKind kind;
    json_object *vmj = NULL;
    HostBackend *b = NULL;
    g_autoptr(VmshiftVm) vm = NULL;
    g_autoptr(VmshiftMigrationSpec) spec = NULL;
    g_autoptr(HostJobRun) run = NULL;
    g_autoptr(GError) aerr = NULL;

    if (!parse_kind(body, &kind, error) || !daemon_opts_from_json(body, &o, error)
        || !check_opts(kind, &o, error))
        return NULL;
    if (!json_object_object_get_ex(body, "vm", &vmj) || !json_object_is_type(vmj, json_type_string)
        || !*json_object_get_string(vmj)) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_INVALID_ARGUMENT,
                    "request body: 'vm' is missing");
        return NULL;
    }
    if (kind == HOST_JOB_ACL) {
        vm = host_find_vm(d->session.reg, json_object_get_string(vmj), &b, error);
        if (!vm)
            return NULL;
        if (!host_backend_has_op(b, "recreate_acl")) {
            host_backend_unsupported(b, "recreate_acl", error);
            return NULL;
        }
    } else {
        spec = host_build_spec(d->session.reg, json_object_get_string(vmj), &o,
                               kind == HOST_JOB_STORAGE, &b, &vm, error);
        if (!spec)
            return NULL;
        if (!host_backend_has_op(b, "migrate")) {
            host_backend_unsupported(b, "migrate", error);
            return NULL;
        }
    }
    if (!host_backend_ensure_open(b, error))
        return NULL;
    run = host_job_run_new(&d->ctx, kind, b, vm, spec, 0, error);
    if (!run)
        return NULL;
    if (!audit(d, host_job_run_id(run), "submitted", who, &aerr))
        g_printerr("vmshiftd: job %" G_GINT64_FORMAT ": %s\n", host_job_run_id(run), aerr->message);
    return g_steal_pointer(&run);
}

/* The repair mode and reason of a POST /jobs/{id}/repair body, as `job
 * repair`'s options: {"mode": "auto|retry|dismiss|cleanup", "reason": TEXT}
 * (a reason goes with dismiss, and dismiss needs one). --undo, which moves
 * the VM back afterwards, stays the command's. */
static gboolean
parse_repair(json_object *body, HostRepairMode *mode, const char **reason, GError **error)
{
    static const char *const names[] = { "auto", "retry", "undo", "dismiss", "cleanup", NULL };
    json_object *m = NULL, *r = NULL;
    const char *name = "auto";
    guint i;

    *mode = HOST_REPAIR_AUTO;
    *reason = NULL;
    if (!body)
        return TRUE;
    json_object_object_foreach(body, key, val) {
        (void)val;
        if (strcmp(key, "mode") != 0 && strcmp(key, "reason") != 0) {
            g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_INVALID_ARGUMENT,
                        "request body: unknown key '%s' (mode, reason)", key);
            return FALSE;
        }
    }
    if (json_object_object_get_ex(body, "mode", &m))
        name = json_object_is_type(m, json_type_string) ? json_object_get_string(m) : "";
    if (json_object_object_get_ex(body, "reason", &r))
        *reason = json_object_is_type(r, json_type_string) ? json_object_get_string(r) : "";
    for (i = 0; names[i] && strcmp(names[i], name) != 0; i++)
        ;
    if (!names[i] || i == 2) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_INVALID_ARGUMENT,
                    !names[i] ? "request body: 'mode' must be auto, retry, dismiss or cleanup"
                              : "request body: mode 'undo' moves the VM back: use vmshift job "
                                "repair --undo");
        return FALSE;
    }
    *mode = i == 0   ? HOST_REPAIR_AUTO
            : i == 1 ? HOST_REPAIR_RETRY
            : i == 3 ? HOST_REPAIR_DISMISS
                     : HOST_REPAIR_CLEANUP;
    if (*mode == HOST_REPAIR_DISMISS && (!*reason || !**reason)) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_INVALID_ARGUMENT,
                    "request body: mode 'dismiss' needs a 'reason' (it is kept in the journal)");
        return FALSE;
    }
    if (*reason && *mode != HOST_REPAIR_DISMISS) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_INVALID_ARGUMENT,
                    "request body: 'reason' goes with mode 'dismiss'");
        return FALSE;
    }
    return TRUE;
}

/* Whether no job of @r's VM started after @r (as `job repair` checks). */
static gboolean
is_latest_job(Daemon *d, const HostJobRecord *r, GError **error)
{
    HostJobFilter f = { .backend = r->backend, .vm = r->vm, .limit = 1 };
    g_autoptr(GPtrArray) list = host_journal_list_filtered(d->journal, &f, error);

    if (!list)
        return FALSE;
    if (list->len && ((HostJobRecord *)g_ptr_array_index(list, 0))->id > r->id) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_CONFLICT,
                    "job %" G_GINT64_FORMAT " of VM '%s' came after job %" G_GINT64_FORMAT
                    ": repair that one, or dismiss this one",
                    ((HostJobRecord *)g_ptr_array_index(list, 0))->id, r->vm, r->id);
        return FALSE;
    }
    return TRUE;
}

HostJobRun *
daemon_job_repair(Daemon *d, gint64 id, json_object *body, const char *who, GError **error)
{
    g_autoptr(HostJobRecord) r = host_journal_get(d->journal, id, error);
    g_autoptr(VmshiftMigrationSpec) spec = NULL;
    g_autofree char *what = NULL;
    HostRepairMode mode;
    const char *reason, *op;
    HostBackend *b;
    HostJobRun *run;

    if (!r || !parse_repair(body, &mode, &reason, error))
        return NULL;
    if (!strcmp(r->state, "succeeded")
        || (!strcmp(r->state, "repaired") && mode != HOST_REPAIR_CLEANUP)) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_CONFLICT,
                    "job %" G_GINT64_FORMAT " is %s; there is nothing to repair", id, r->state);
        return NULL;
    }
    if (mode != HOST_REPAIR_DISMISS && !is_latest_job(d, r, error))
        return NULL;
    b = host_registry_get_open(d->session.reg, r->backend, error);
    if (!b)
        return NULL;
    op = mode == HOST_REPAIR_CLEANUP ? "cleanup" : mode == HOST_REPAIR_DISMISS ? NULL : "repair";
    if (op && !host_backend_has_op(b, op)) {
        host_backend_unsupported(b, op, error);
        g_prefix_error(error, "job %" G_GINT64_FORMAT " needs manual attention: ", id);
        return NULL;
    }
    spec = r->spec ? host_spec_from_json(r->spec, NULL) : NULL;
    run = host_job_run_new(&d->ctx, HOST_JOB_REPAIR, b, NULL, spec, id, error);
    if (!run)
        return NULL;
    host_job_run_set_repair(run, mode, reason);
    what = mode == HOST_REPAIR_AUTO ? g_strdup("repair")
                                    : g_strdup_printf("repair (%s%s%s)",
                                                      mode == HOST_REPAIR_RETRY     ? "retry"
                                                      : mode == HOST_REPAIR_DISMISS ? "dismiss"
                                                                                    : "cleanup",
                                                      reason ? ": " : "", reason ? reason : "");
    audit(d, id, what, who, NULL);
    return run;
}

void
daemon_job_start(Daemon *d, HostJobRun *run)
{
    g_printerr("vmshiftd: job %" G_GINT64_FORMAT ": started\n", host_job_run_id(run));
    host_job_run_start(run);
    g_ptr_array_add(d->runs, run);
    g_atomic_int_set(&d->n_runs, (gint)d->runs->len);
}

void
daemon_jobs_tick(Daemon *d)
{
    for (guint i = 0; i < d->runs->len;) {
        HostJobRun *r = g_ptr_array_index(d->runs, i);
        host_job_run_tick(r);
        if (!host_job_run_is_done(r)) {
            i++;
            continue;
        }
        g_printerr("vmshiftd: job %" G_GINT64_FORMAT ": %s\n", host_job_run_id(r),
                   host_job_run_state(r));
        g_ptr_array_remove_index(d->runs, i);
        g_atomic_int_set(&d->n_runs, (gint)d->runs->len);
        host_job_run_free(r);
    }
}

void
daemon_jobs_stop(Daemon *d)
{
    for (guint i = 0; i < d->runs->len; i++) {
        HostJobRun *r = g_ptr_array_index(d->runs, i);
        host_journal_add_event(d->journal, host_job_run_id(r), "cancel", "warning", "cancel",
                               "cancelled: vmshiftd is stopping", NULL);
        host_job_run_cancel(r);
    }
    while (d->runs->len) {
        g_usleep(100 * 1000);
        daemon_jobs_tick(d);
    }
}

void
daemon_jobs_repair_interrupted(Daemon *d)
{
    g_autoptr(GError) err = NULL;
    HostJobFilter f = { .state = "interrupted" };
    g_autoptr(GPtrArray) list = host_journal_list_filtered(d->journal, &f, &err);

    if (!list) {
        g_printerr("vmshiftd: warning: cannot list interrupted jobs: %s\n", err->message);
        return;
    }
    for (guint i = 0; i < list->len; i++) {
        HostJobRecord *r = g_ptr_array_index(list, i);
        g_autoptr(GError) e = NULL;
        HostJobRun *run = daemon_job_repair(d, r->id, NULL, "vmshiftd (repair on start)", &e);
        if (!run) {
            g_printerr("vmshiftd: job %" G_GINT64_FORMAT ": not repaired: %s\n", r->id, e->message);
            continue;
        }
        daemon_job_start(d, run);
    }
}

json_object *
daemon_schedule_json(const HostSchedule *sc, const char *job_state)
{
    json_object *o = json_object_new_object();
    g_autofree char *when = host_format_switchover(sc->switchover_at);
    g_autofree char *text = host_schedule_text(sc, job_state);

    json_object_object_add(o, "at", json_object_new_int64(sc->switchover_at));
    json_object_object_add(o, "at_text", json_object_new_string(when));
    json_object_object_add(o, "mode", host_json_string(sc->mode));
    json_object_object_add(o, "state", host_json_string(sc->state));
    json_object_object_add(o, "text", host_json_string(text));
    return o;
}

json_object *
daemon_job_show_json(Daemon *d, gint64 id, GError **error)
{
    g_autoptr(HostJobRecord) r = host_journal_get(d->journal, id, error);
    g_autoptr(GPtrArray) ev = NULL;
    g_autoptr(HostSchedule) sc = NULL;
    json_object *root;

    if (!r || !(ev = host_journal_events(d->journal, id, error)))
        return NULL;
    root = host_json_job(r);
    if ((sc = host_journal_schedule_get(d->journal, id, NULL)))
        json_object_object_add(root, "switchover", daemon_schedule_json(sc, r->state));
    /* as `job show`: saved plugin data is shown by key only */
    json_object_object_add(root, "events", host_json_events(ev));
    return root;
}
