/*
 * vmshift host: the journal's commands (jobs, job show, job cancel,
 * job repair).
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "host/host.h"
#include "host/cmd.h"
#include "host/crossmove.h"

/* ---- jobs ----------------------------------------------------------------------------------- */

/* The ID argument of `job WHAT ID`; FALSE, with the usage error said, when
 * it is not a job id. */
static gboolean
job_id_arg(const char *what, const char *arg, gint64 *id)
{
    if (g_ascii_string_to_signed(arg, 10, 1, G_MAXINT64, id, NULL))
        return TRUE;
    host_err("job %s: '%s' is not a job id", what, arg);
    return FALSE;
}

gboolean
host_cmd_parse_time(const char *opt, const char *t, gint64 now, gint64 *out, GError **error)
{
    static const struct {
        char unit;
        gint64 seconds;
    } units[] = { { 's', 1 }, { 'm', 60 }, { 'h', 3600 }, { 'd', 86400 }, { 'w', 7 * 86400 } };
    size_t n = strlen(t);
    g_autoptr(GTimeZone) local = g_time_zone_new_local();
    g_autoptr(GDateTime) dt = NULL;
    guint64 count;

    for (guint i = 0; n > 1 && i < G_N_ELEMENTS(units); i++) {
        g_autofree char *num = g_strndup(t, n - 1);
        if (t[n - 1] != units[i].unit)
            continue;
        if (g_ascii_string_to_unsigned(num, 10, 0, G_MAXINT64 / units[i].seconds / 2, &count,
                                       NULL)) {
            *out = now - (gint64)count * units[i].seconds;
            return TRUE;
        }
    }
    if (n == 10 && t[4] == '-' && t[7] == '-') {
        g_autofree char *full = g_strconcat(t, "T00:00:00", NULL);
        dt = g_date_time_new_from_iso8601(full, local);
    } else if (n > 10 && t[10] == 'T') {
        /* seconds are optional: 2026-01-31T08:00 */
        g_autofree char *full = n == 16 ? g_strconcat(t, ":00", NULL) : g_strdup(t);
        dt = g_date_time_new_from_iso8601(full, local);
    }
    if (!dt) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_INVALID_ARGUMENT,
                    "%s '%s': not a date (2026-01-31), a date and time (2026-01-31T08:00) "
                    "or an age (30d, 12h, 45m, 2w)",
                    opt, t);
        return FALSE;
    }
    *out = g_date_time_to_unix(dt);
    return TRUE;
}

/* ---- scheduled switchovers (host/schedule.c) ------------------------------------------- */

/* The job's schedule as JSON: {"at", "at_text", "mode", "state", "text"} */
static json_object *
schedule_json(const HostSchedule *sc, const char *job_state)
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

/* A job's JSON, with its schedule when it has one */
static json_object *
job_json(const HostJobRecord *r, GHashTable *schedules)
{
    json_object *o = host_json_job(r);
    const HostSchedule *sc = schedules ? g_hash_table_lookup(schedules, &r->id) : NULL;

    if (sc)
        json_object_object_add(o, "switchover", schedule_json(sc, r->state));
    return o;
}

/* For the table: the phase of a job whose switchover is still to come says
 * so ("transfer, waiting for switchover at ..."). */
static void
annotate_phases(GPtrArray *list, GHashTable *schedules)
{
    for (guint i = 0; schedules && i < list->len; i++) {
        HostJobRecord *r = g_ptr_array_index(list, i);
        const HostSchedule *sc = g_hash_table_lookup(schedules, &r->id);
        g_autofree char *text = NULL;
        char *phase;
        if (!sc || (strcmp(sc->state, "waiting") && strcmp(sc->state, "scheduled")))
            continue;
        text = host_schedule_text(sc, r->state);
        phase = g_strdup_printf("%s, %s", r->phase, text);
        g_free(r->phase);
        r->phase = phase;
    }
}

static const char *const job_states[] = { "queued",    "running",     "succeeded", "failed",
                                          "cancelled", "interrupted", "repaired" };

int
host_cmd_jobs(HostSession *s, CmdOpts *o, char **args)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(HostJournal) j = NULL;
    g_autoptr(GPtrArray) list = NULL;
    g_autoptr(GHashTable) schedules = NULL;
    g_autofree char *vb = NULL, *vname = NULL;
    HostJobFilter f = { .state = o->state, .backend = o->backend, .vm = o->vm };

    if (o->state && !g_strv_contains((const char *const *)job_states, o->state)) {
        g_autofree char *all = NULL;
        const char *v[G_N_ELEMENTS(job_states) + 1] = { 0 };
        memcpy(v, job_states, sizeof job_states);
        all = g_strjoinv(", ", (char **)v);
        host_err("jobs: --state '%s': not a job state (%s)", o->state, all);
        return HOST_EXIT_USAGE;
    }
    if (o->vm) { /* --vm BACKEND:VM */
        host_split_name(s->reg, o->vm, &vb, &vname);
        if (vb && o->backend && strcmp(vb, o->backend) != 0) {
            host_err("jobs: --backend %s and --vm %s name different backends", o->backend, o->vm);
            return HOST_EXIT_USAGE;
        }
        f.vm = vname;
        f.backend = vb ? vb : o->backend;
    }
    if (o->since
        && !host_cmd_parse_time("--since", o->since, g_get_real_time() / G_USEC_PER_SEC, &f.since,
                                &err)) {
        host_err("jobs: %s", err->message);
        return HOST_EXIT_USAGE;
    }
    j = host_journal_open_read(s->config->state_dir, &err);
    if (!j || !(list = host_journal_list_filtered(j, &f, &err)))
        return host_cmd_fail(err);
    /* a location that is unknown is asked for before it is shown */
    host_jobs_verify_locations(s->reg, j, list);
    schedules = host_journal_schedules(j, NULL);
    if (s->g->json) {
        json_object *root = json_object_new_object();
        json_object *arr = json_object_new_array();
        for (guint i = 0; i < list->len; i++)
            json_object_array_add(arr, job_json(g_ptr_array_index(list, i), schedules));
        json_object_object_add(root, "jobs", arr);
        host_json_print(root);
        return HOST_EXIT_OK;
    }
    if (!list->len && !s->g->columns) { /* -o: the header, and its columns checked */
        printf("no jobs%s in %s\n", o->state || o->backend || o->vm || o->since ? " match" : "",
               s->config->state_dir);
        return HOST_EXIT_OK;
    }
    annotate_phases(list, schedules);
    host_jobs_table_print(list);
    return HOST_EXIT_OK;
}

void
host_jobs_table_print(GPtrArray *list)
{
    g_autoptr(HostTable) t = host_table_new("ID", "KIND", "BACKEND", "VM", "STATE", "PHASE",
                                            "PROGRESS", "STARTED", "VM IS ON", NULL);
    for (guint i = 0; i < list->len; i++) {
        HostJobRecord *r = g_ptr_array_index(list, i);
        g_autofree char *id = g_strdup_printf("%" G_GINT64_FORMAT, r->id);
        g_autofree char *pct = r->percent >= 0 ? g_strdup_printf("%.0f%%", r->percent) : NULL;
        g_autofree char *started = host_format_time(r->started);
        g_autofree char *loc = r->location_verified ? g_strdup(r->location_host)
                                                    : host_job_location_text(r);
        g_autofree char *backends = host_cross_backends_text(r);
        host_table_add(t, id, r->kind, backends ? backends : r->backend, r->vm, r->state, r->phase,
                       pct, started, loc);
    }
    host_table_print(t, stdout);
}

int
host_cmd_job_show(HostSession *s, CmdOpts *o, char **args)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(HostJournal) j = NULL;
    g_autoptr(HostJobRecord) r = NULL;
    g_autoptr(GPtrArray) ev = NULL;
    g_autoptr(HostSchedule) sc = NULL;
    gint64 id;

    if (!job_id_arg("show", args[0], &id))
        return HOST_EXIT_USAGE;
    j = host_journal_open_read(s->config->state_dir, &err);
    if (!j || !(r = host_journal_get(j, id, &err)))
        return host_cmd_fail(err);
    {
        /* a location that is unknown is asked for before it is shown */
        g_autoptr(GPtrArray) one = g_ptr_array_new();
        g_ptr_array_add(one, r);
        host_jobs_verify_locations(s->reg, j, one);
    }
    if (!(ev = host_journal_events(j, id, &err)))
        return host_cmd_fail(err);
    sc = host_journal_schedule_get(j, id, NULL);
    if (s->g->json) {
        json_object *root = host_json_job(r);
        if (sc)
            json_object_object_add(root, "switchover", schedule_json(sc, r->state));
        json_object_object_add(root, "events", host_json_events(ev));
        host_json_print(root);
        return HOST_EXIT_OK;
    }
    {
        g_autofree char *st = host_format_time(r->started);
        g_autofree char *en = host_format_time(r->ended);
        g_autofree char *loc = host_job_location_text(r);
        printf("job %" G_GINT64_FORMAT ": %s of %s:%s\n", r->id, r->kind, r->backend, r->vm);
        printf("  state:     %s (phase %s)\n", r->state, r->phase);
        if (r->note)
            printf("  note:      %s\n", r->note);
        if (sc) {
            g_autofree char *text = host_schedule_text(sc, r->state);
            printf("  schedule:  %s (%s)\n", text, sc->mode);
        }
        if (r->error_message)
            printf("  error:     %s: %s\n", r->error_code, r->error_message);
        printf("  VM is on:  %s\n", loc);
        {
            g_autofree char *to = host_cross_dest_text(r);
            if (to)
                printf("  moves to:  %s\n", to);
        }
        if (r->source_host)
            printf("  came from: %s%s%s\n", r->source_host, r->source_path ? ", files in " : "",
                   r->source_path ? r->source_path : "");
        printf("  started:   %s\n  ended:     %s\n", st, en);
        printf("  process:   pid %" G_GINT64_FORMAT "\n", r->pid);
        if (r->percent >= 0 || r->bytes_total) {
            g_autofree char *d = host_format_bytes((guint64)r->bytes_done);
            g_autofree char *t = host_format_bytes((guint64)r->bytes_total);
            printf("  progress:  %.0f%%, %s of %s\n", r->percent < 0 ? 0 : r->percent, d, t);
        }
        if (r->spec)
            printf("  spec:      %s\n", r->spec);
        if (r->results && strcmp(r->results, "{}") != 0)
            printf("  results:   %s\n", r->results);
        printf("\nlog:\n");
        for (guint i = 0; i < ev->len; i++) {
            HostEventRecord *e = g_ptr_array_index(ev, i);
            g_autofree char *t = host_format_time(e->time);
            if (!strcmp(e->kind, "phase"))
                printf("  %s  phase %s\n", t, e->value);
            else if (!strcmp(e->kind, "save"))
                printf("  %s  saved %s\n", t, e->key);
            else if (!strcmp(e->kind, "location") || !strcmp(e->kind, "note"))
                printf("  %s  %s %s\n", t, e->kind, e->value ? e->value : "");
            else if (!strcmp(e->kind, "state"))
                printf("  %s  %s%s%s\n", t, e->key, e->value ? ": " : "", e->value ? e->value : "");
            else
                printf("  %s  %s: %s\n", t, e->level ? e->level : e->kind,
                       e->value ? e->value : "");
        }
    }
    return HOST_EXIT_OK;
}

int
host_cmd_job_cancel(HostSession *s, CmdOpts *o, char **args)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(HostJournal) j = NULL;
    gint64 id;

    if (!job_id_arg("cancel", args[0], &id))
        return HOST_EXIT_USAGE;
    j = host_session_journal(s, &err);
    if (!j || !host_journal_request_cancel(j, id, &err))
        return host_cmd_fail(err);
    if (s->g->json) {
        json_object *root = json_object_new_object();
        json_object_object_add(root, "id", json_object_new_int64(id));
        json_object_object_add(root, "cancel_requested", json_object_new_boolean(TRUE));
        host_json_print(root);
    } else {
        printf("cancellation of job %" G_GINT64_FORMAT " requested; the process running it "
               "stops it at its next safe point\n",
               id);
    }
    return HOST_EXIT_OK;
}

/* Whether no job of @r's VM started after @r (a repair, retry or undo acts
 * on the VM's present state, which a later job may have changed). */
static gboolean
is_latest_job(HostJournal *j, const HostJobRecord *r, GError **error)
{
    HostJobFilter f = { .backend = r->backend, .vm = r->vm };
    g_autoptr(GPtrArray) list = host_journal_list_filtered(j, &f, error);

    if (!list)
        return FALSE;
    for (guint i = 0; i < list->len; i++)
        if (((HostJobRecord *)g_ptr_array_index(list, i))->id > r->id)
            return FALSE;
    return TRUE;
}

/* The one repair choice of the command line; FALSE (said) for two. */
static gboolean
repair_mode(CmdOpts *o, HostRepairMode *mode)
{
    guint n = !!o->retry + !!o->undo + !!o->dismiss + !!o->force_cleanup;

    if (n > 1) {
        host_err("job repair: --retry, --undo, --dismiss and --force-cleanup exclude each other");
        return FALSE;
    }
    if (o->dismiss && (!o->reason || !*o->reason)) {
        host_err("job repair: --dismiss needs --reason TEXT (it is kept in the journal)");
        return FALSE;
    }
    if (o->reason && !o->dismiss) {
        host_err("job repair: --reason goes with --dismiss");
        return FALSE;
    }
    *mode = o->retry           ? HOST_REPAIR_RETRY
            : o->undo          ? HOST_REPAIR_UNDO
            : o->dismiss       ? HOST_REPAIR_DISMISS
            : o->force_cleanup ? HOST_REPAIR_CLEANUP
                               : HOST_REPAIR_AUTO;
    return TRUE;
}

/* --undo of a job whose move took effect: the repair brought it to a
 * consistent state at the destination; a migration back (a job of its own,
 * repairable like any other) returns the VM and its files to where they
 * were, and the move's own cleanup empties the destination. */
static int
undo_move(HostSession *s, HostBackend *b, gint64 id)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(HostJournal) j = host_session_journal(s, &err);
    g_autoptr(HostJobRecord) rec = j ? host_journal_get(j, id, &err) : NULL;
    g_autoptr(VmshiftVm) now = NULL;
    g_autoptr(VmshiftVm) vm = NULL;
    g_autoptr(VmshiftMigrationSpec) back = NULL;
    g_autofree char *name = NULL;
    g_auto(HostMigrateOpts) mo = { 0 };
    gboolean storage_only = FALSE;
    HostBackend *b2 = NULL;
    int rc;

    if (!rec)
        return host_cmd_fail(err);
    if (!host_move_took_effect(rec))
        return HOST_EXIT_OK; /* rolled back by the repair: nothing moved */
    name = g_strdup_printf("%s:%s", rec->backend, rec->vm);
    if (!(now = host_backend_get_vm(b, rec->vm, &err))
        || !host_reverse_opts(j, rec, now, &mo, &storage_only, &err)
        || !(back = host_build_spec(s->reg, name, &mo, storage_only, &b2, &vm, &err))) {
        g_prefix_error(&err, "job %" G_GINT64_FORMAT ": cannot move VM '%s' back: ", id, rec->vm);
        return host_cmd_fail(err);
    }
    host_journal_close(g_steal_pointer(&j));
    rc = host_cmd_run_job(s, storage_only ? HOST_JOB_STORAGE : HOST_JOB_MIGRATE, b2, vm, back, 0);
    j = host_session_journal(s, &err);
    if (j) {
        g_autoptr(HostJobRecord) last = host_last_move(j, rec->backend, rec->vm, NULL);
        g_autofree char *note = NULL;
        if (rc == HOST_EXIT_OK && last)
            note = g_strdup_printf("undone: VM moved back by job %" G_GINT64_FORMAT, last->id);
        else
            note = g_strdup("undo: moving the VM back failed; see the newest job of the VM");
        host_journal_add_event(j, id, "state", rc == HOST_EXIT_OK ? "info" : "error", "undo", note,
                               NULL);
    }
    return rc;
}

int
host_cmd_job_repair(HostSession *s, CmdOpts *o, char **args)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(HostJournal) j = NULL;
    g_autoptr(HostJobRecord) r = NULL;
    g_autoptr(VmshiftMigrationSpec) spec = NULL;
    HostRepairMode mode;
    HostBackend *b;
    gboolean cross;
    gint64 id;
    int rc;

    if (!job_id_arg("repair", args[0], &id) || !repair_mode(o, &mode))
        return HOST_EXIT_USAGE;
    j = host_session_journal(s, &err);
    if (!j || !(r = host_journal_get(j, id, &err)))
        return host_cmd_fail(err);
    if (!strcmp(r->state, "succeeded")
        || (!strcmp(r->state, "repaired") && mode != HOST_REPAIR_CLEANUP)) {
        host_err("job %" G_GINT64_FORMAT " is %s; there is nothing to repair", id, r->state);
        return HOST_EXIT_FAILED;
    }
    if (mode != HOST_REPAIR_DISMISS && !is_latest_job(j, r, &err)) {
        if (err)
            return host_cmd_fail(err);
        host_err("job %" G_GINT64_FORMAT " is not the latest job of VM '%s'; what it left can no "
                 "longer be told apart from the VM's present state (see vmshift jobs --vm %s)",
                 id, r->vm, r->vm);
        return HOST_EXIT_FAILED;
    }
    b = host_registry_get_open(s->reg, r->backend, &err);
    if (!b)
        return host_cmd_fail(err);
    spec = r->spec ? host_spec_from_json(r->spec, NULL) : NULL;
    cross = host_spec_is_cross(spec); /* the host repairs those itself (crossmove.c) */
    if (mode == HOST_REPAIR_CLEANUP && !cross && !host_backend_has_op(b, "cleanup")) {
        host_backend_unsupported(b, "cleanup", &err);
        return host_cmd_fail(err);
    }
    if (mode != HOST_REPAIR_DISMISS && mode != HOST_REPAIR_CLEANUP && !cross
        && !host_backend_has_op(b, "repair")) {
        host_backend_unsupported(b, "repair", &err);
        g_prefix_error(&err, "job %" G_GINT64_FORMAT " needs manual attention: ", id);
        return host_cmd_fail(err);
    }
    host_journal_close(g_steal_pointer(&j));
    rc = host_cmd_run_repair(s, b, spec, id, mode, o->reason);
    if (rc != HOST_EXIT_OK || mode != HOST_REPAIR_UNDO || cross)
        return rc;
    return undo_move(s, b, id);
}
