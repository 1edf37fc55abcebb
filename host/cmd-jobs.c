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

int
host_cmd_jobs(HostSession *s, CmdOpts *o, char **args)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(HostJournal) j = host_session_journal(s, &err);
    g_autoptr(GPtrArray) list = NULL;

    if (!j || !(list = host_journal_list(j, &err)))
        return host_cmd_fail(err);
    if (s->g->json) {
        json_object *root = json_object_new_object();
        json_object *arr = json_object_new_array();
        for (guint i = 0; i < list->len; i++)
            json_object_array_add(arr, host_json_job(g_ptr_array_index(list, i)));
        json_object_object_add(root, "jobs", arr);
        host_json_print(root);
        return HOST_EXIT_OK;
    }
    if (!list->len) {
        printf("no jobs in %s\n", s->config->state_dir);
        return HOST_EXIT_OK;
    }
    {
        g_autoptr(HostTable) t = host_table_new("ID", "KIND", "BACKEND", "VM", "STATE", "PHASE",
                                                "PROGRESS", "STARTED", "VM IS ON", NULL);
        for (guint i = 0; i < list->len; i++) {
            HostJobRecord *r = g_ptr_array_index(list, i);
            g_autofree char *id = g_strdup_printf("%" G_GINT64_FORMAT, r->id);
            g_autofree char *pct = r->percent >= 0 ? g_strdup_printf("%.0f%%", r->percent) : NULL;
            g_autofree char *started = host_format_time(r->started);
            host_table_add(t, id, r->kind, r->backend, r->vm, r->state, r->phase, pct, started,
                           r->location_host);
        }
        host_table_print(t, stdout);
    }
    return HOST_EXIT_OK;
}

int
host_cmd_job_show(HostSession *s, CmdOpts *o, char **args)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(HostJournal) j = NULL;
    g_autoptr(HostJobRecord) r = NULL;
    g_autoptr(GPtrArray) ev = NULL;
    gint64 id;

    if (!job_id_arg("show", args[0], &id))
        return HOST_EXIT_USAGE;
    j = host_session_journal(s, &err);
    if (!j || !(r = host_journal_get(j, id, &err)) || !(ev = host_journal_events(j, id, &err)))
        return host_cmd_fail(err);
    if (s->g->json) {
        json_object *root = host_json_job(r);
        json_object *arr = json_object_new_array();
        for (guint i = 0; i < ev->len; i++) {
            HostEventRecord *e = g_ptr_array_index(ev, i);
            json_object *ej = json_object_new_object();
            json_object_object_add(ej, "time", json_object_new_int64(e->time));
            json_object_object_add(ej, "kind", host_json_string(e->kind));
            json_object_object_add(ej, "level", host_json_string(e->level));
            json_object_object_add(ej, "key", host_json_string(e->key));
            /* saved plugin data may be sensitive to the plugin; it is kept in
             * the journal but only its keys are shown */
            json_object_object_add(
                ej, "value", host_json_string(strcmp(e->kind, "save") == 0 ? NULL : e->value));
            json_object_array_add(arr, ej);
        }
        json_object_object_add(root, "events", arr);
        host_json_print(root);
        return HOST_EXIT_OK;
    }
    {
        g_autofree char *st = host_format_time(r->started);
        g_autofree char *en = host_format_time(r->ended);
        printf("job %" G_GINT64_FORMAT ": %s of %s:%s\n", r->id, r->kind, r->backend, r->vm);
        printf("  state:     %s (phase %s)\n", r->state, r->phase);
        if (r->error_message)
            printf("  error:     %s: %s\n", r->error_code, r->error_message);
        printf("  VM is on:  %s%s%s%s\n", r->location_host ? r->location_host : "unknown",
               r->location_detail ? " (" : "", r->location_detail ? r->location_detail : "",
               r->location_detail ? ")" : "");
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

int
host_cmd_job_repair(HostSession *s, CmdOpts *o, char **args)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(HostJournal) j = NULL;
    g_autoptr(HostJobRecord) r = NULL;
    g_autoptr(VmshiftMigrationSpec) spec = NULL;
    HostBackend *b;
    gint64 id;

    if (!job_id_arg("repair", args[0], &id))
        return HOST_EXIT_USAGE;
    j = host_session_journal(s, &err);
    if (!j || !(r = host_journal_get(j, id, &err)))
        return host_cmd_fail(err);
    if (!strcmp(r->state, "succeeded") || !strcmp(r->state, "repaired")) {
        host_err("job %" G_GINT64_FORMAT " is %s; there is nothing to repair", id, r->state);
        return HOST_EXIT_FAILED;
    }
    b = host_registry_get_open(s->reg, r->backend, &err);
    if (!b)
        return host_cmd_fail(err);
    if (!host_backend_has_op(b, "repair")) {
        host_backend_unsupported(b, "repair", &err);
        g_prefix_error(&err, "job %" G_GINT64_FORMAT " needs manual attention: ", id);
        return host_cmd_fail(err);
    }
    spec = r->spec ? host_spec_from_json(r->spec, NULL) : NULL;
    host_journal_close(g_steal_pointer(&j));
    return host_cmd_run_job(s, HOST_JOB_REPAIR, b, NULL, spec, id);
}
