/*
 * vmshift host: the journal's own commands (journal check, journal export,
 * journal prune) and how a job record is shown (JSON, its location).
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "host/host.h"
#include "host/cmd.h"

/* ---- a job as JSON --------------------------------------------------------------------------- */

json_object *
host_json_job(const HostJobRecord *r)
{
    json_object *o = json_object_new_object();
    json_object *results = r->results ? json_tokener_parse(r->results) : NULL;
    json_object *spec = r->spec ? json_tokener_parse(r->spec) : NULL;
    json_object *loc = json_object_new_object();

    json_object_object_add(o, "id", json_object_new_int64(r->id));
    json_object_object_add(o, "kind", host_json_string(r->kind));
    json_object_object_add(o, "backend", host_json_string(r->backend));
    json_object_object_add(o, "vm", host_json_string(r->vm));
    json_object_object_add(o, "state", host_json_string(r->state));
    json_object_object_add(o, "phase", host_json_string(r->phase));
    json_object_object_add(o, "pid", json_object_new_int64(r->pid));
    json_object_object_add(o, "created", json_object_new_int64(r->created));
    json_object_object_add(o, "started", json_object_new_int64(r->started));
    json_object_object_add(o, "ended", r->ended ? json_object_new_int64(r->ended) : NULL);
    json_object_object_add(o, "percent", json_object_new_double(r->percent));
    json_object_object_add(o, "bytes_done", json_object_new_int64(r->bytes_done));
    json_object_object_add(o, "bytes_total", json_object_new_int64(r->bytes_total));
    if (r->error_code) {
        json_object *e = json_object_new_object();
        json_object_object_add(e, "code", host_json_string(r->error_code));
        json_object_object_add(e, "message", host_json_string(r->error_message));
        json_object_object_add(o, "error", e);
    } else {
        json_object_object_add(o, "error", NULL);
    }
    /* an unverified location has no host: what was recorded before may be
     * wrong, and "detail" says why it is unknown */
    json_object_object_add(loc, "host",
                           host_json_string(r->location_verified ? r->location_host : NULL));
    json_object_object_add(loc, "detail", host_json_string(r->location_detail));
    json_object_object_add(loc, "verified", json_object_new_boolean(r->location_verified));
    json_object_object_add(o, "location", loc);
    json_object_object_add(o, "source_host", host_json_string(r->source_host));
    json_object_object_add(o, "source_path", host_json_string(r->source_path));
    json_object_object_add(o, "cancel_requested", json_object_new_boolean(r->cancel_requested));
    json_object_object_add(o, "note", host_json_string(r->note));
    json_object_object_add(o, "spec", spec);
    json_object_object_add(o, "results", results ? results : json_object_new_object());
    return o;
}

json_object *
host_json_events(GPtrArray *events)
{
    json_object *arr = json_object_new_array();

    for (guint i = 0; i < events->len; i++) {
        HostEventRecord *e = g_ptr_array_index(events, i);
        json_object *ej = json_object_new_object();
        json_object_object_add(ej, "time", json_object_new_int64(e->time));
        json_object_object_add(ej, "kind", host_json_string(e->kind));
        json_object_object_add(ej, "level", host_json_string(e->level));
        json_object_object_add(ej, "key", host_json_string(e->key));
        /* saved plugin data may be sensitive to the plugin; it is kept in
         * the journal but only its keys are shown */
        json_object_object_add(ej, "value",
                               host_json_string(strcmp(e->kind, "save") == 0 ? NULL : e->value));
        json_object_array_add(arr, ej);
    }
    return arr;
}

char *
host_job_location_text(const HostJobRecord *r)
{
    if (!r->location_verified)
        return g_strdup_printf("unknown — verifying%s%s%s", r->location_detail ? " (" : "",
                               r->location_detail ? r->location_detail : "",
                               r->location_detail ? ")" : "");
    if (!r->location_host)
        return g_strdup("unknown");
    return g_strdup_printf("%s%s%s%s", r->location_host, r->location_detail ? " (" : "",
                           r->location_detail ? r->location_detail : "",
                           r->location_detail ? ")" : "");
}

/* ---- journal check / export / prune ------------------------------------------------------------
 */

int
host_cmd_journal_check(HostSession *s, CmdOpts *o, char **args)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(HostJournal) j = host_journal_open_read(s->config->state_dir, &err);
    g_autoptr(GPtrArray) problems = NULL;
    g_autoptr(GPtrArray) jobs = NULL;
    guint interrupted = 0, unknown = 0;
    int version = 0;

    if (!j || !(problems = host_journal_integrity(j, &version, &err))
        || !(jobs = host_journal_list(j, &err)))
        return host_cmd_fail(err);
    for (guint i = 0; i < jobs->len; i++) {
        HostJobRecord *r = g_ptr_array_index(jobs, i);
        interrupted += !strcmp(r->state, "interrupted");
        unknown += !r->location_verified;
    }
    if (s->g->json) {
        json_object *root = json_object_new_object();
        json_object_object_add(root, "journal", host_json_string(host_journal_path(j)));
        json_object_object_add(root, "ok", json_object_new_boolean(problems->len == 0));
        json_object_object_add(root, "schema_version", json_object_new_int(version));
        json_object_object_add(root, "read_only",
                               json_object_new_boolean(host_journal_read_only(j)));
        json_object_object_add(root, "jobs", json_object_new_int64(jobs->len));
        json_object_object_add(root, "interrupted", json_object_new_int64(interrupted));
        json_object_object_add(root, "location_unknown", json_object_new_int64(unknown));
        json_object_object_add(root, "problems", host_json_strings(problems));
        host_json_print(root);
    } else {
        for (guint i = 0; i < problems->len; i++)
            printf("problem: %s\n", (char *)g_ptr_array_index(problems, i));
        printf("journal %s: %s (schema version %d%s, %u job%s, %u interrupted, %u with the VM's "
               "location unknown)\n",
               host_journal_path(j), problems->len ? "DAMAGED" : "ok", version,
               host_journal_read_only(j) ? ", read-only" : "", jobs->len, jobs->len == 1 ? "" : "s",
               interrupted, unknown);
    }
    if (problems->len) {
        host_err("journal %s is damaged: keep a copy, then restore it from a backup or move it "
                 "aside to start a new journal",
                 host_journal_path(j));
        return HOST_EXIT_FAILED;
    }
    return HOST_EXIT_OK;
}

int
host_cmd_journal_export(HostSession *s, CmdOpts *o, char **args)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(HostJournal) j = host_journal_open_read(s->config->state_dir, &err);
    g_autoptr(GPtrArray) jobs = NULL;
    json_object *root, *arr;

    if (!j || !(jobs = host_journal_list(j, &err)))
        return host_cmd_fail(err);
    root = json_object_new_object();
    arr = json_object_new_array();
    json_object_object_add(root, "journal", host_json_string(host_journal_path(j)));
    json_object_object_add(root, "schema_version",
                           json_object_new_int(host_journal_schema_version()));
    json_object_object_add(root, "exported",
                           json_object_new_int64(g_get_real_time() / G_USEC_PER_SEC));
    /* oldest first: the order they happened in */
    for (guint i = jobs->len; i > 0; i--) {
        HostJobRecord *r = g_ptr_array_index(jobs, i - 1);
        g_autoptr(GPtrArray) ev = host_journal_events(j, r->id, &err);
        json_object *jo;
        if (!ev) {
            json_object_put(root);
            json_object_put(arr);
            return host_cmd_fail(err);
        }
        jo = host_json_job(r);
        json_object_object_add(jo, "events", host_json_events(ev));
        json_object_array_add(arr, jo);
    }
    json_object_object_add(root, "jobs", arr);
    host_json_print(root);
    return HOST_EXIT_OK;
}

int
host_cmd_journal_prune(HostSession *s, CmdOpts *o, char **args)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(HostJournal) j = NULL;
    gint64 before, n;

    if (!host_cmd_parse_time("--before", o->before, g_get_real_time() / G_USEC_PER_SEC, &before,
                             &err)) {
        host_err("journal prune: %s", err->message);
        return HOST_EXIT_USAGE;
    }
    j = host_session_journal(s, &err);
    if (!j || (n = host_journal_prune(j, before, &err)) < 0)
        return host_cmd_fail(err);
    if (s->g->json) {
        json_object *root = json_object_new_object();
        json_object_object_add(root, "before", json_object_new_int64(before));
        json_object_object_add(root, "pruned", json_object_new_int64(n));
        host_json_print(root);
    } else {
        g_autofree char *t = host_format_time(before);
        printf("%" G_GINT64_FORMAT " job%s that ended before %s deleted from the journal "
               "(running, queued and interrupted jobs are kept)\n",
               n, n == 1 ? "" : "s", t);
    }
    return HOST_EXIT_OK;
}
