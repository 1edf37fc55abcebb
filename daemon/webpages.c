/*
 * vmshiftd: the pages of the web view (web.c), rendered from the same
 * documents as the API (the journal's jobs, daemon_vms_json(),
 * daemon_rating_json(), daemon_bulks_json()); every value is escaped.
 * Run in a thread under api_lock.
 */
#include "config.h"

#include <string.h>

#include "daemon/web.h"

#define PAGE_JOBS 100

static const char *
jstr(json_object *o, const char *key)
{
    json_object *v = NULL;
    return json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_string)
               ? json_object_get_string(v)
               : NULL;
}

static json_object *
jget(json_object *o, const char *key)
{
    json_object *v = NULL;
    return json_object_object_get_ex(o, key, &v) ? v : NULL;
}

static void
error_block(GString *s, const char *what, const GError *e)
{
    web_append(s, "<p class=\"error\" role=\"alert\">%s: %s</p>", what, e->message);
}

static void
progress_cell(GString *s, double percent, const char *state)
{
    if (percent >= 0)
        web_append(s,
                   "<progress max=\"100\" value=\"%.0f\"></progress> <span class=\"pct\">%.0f%%"
                   "</span>",
                   percent, percent);
    else
        web_append(s, "<progress max=\"100\"%s></progress> <span class=\"pct\"></span>",
                   !strcmp(state, "running") ? "" : " value=0");
}

static char *
location_text(const HostJobRecord *r)
{
    return r->location_verified && r->location_host ? g_strdup(r->location_host)
                                                    : host_job_location_text(r);
}

/* ---- / : the jobs ------------------------------------------------------------------ */

/* What the jobs list says of a job's schedule, after its phase, as `vmshift
 * jobs` does: only while the switchover is to come. */
static char *
row_schedule_text(const HostSchedule *sc, const char *state)
{
    if (!sc || (strcmp(sc->state, "waiting") && strcmp(sc->state, "scheduled")))
        return NULL;
    return host_schedule_text(sc, state);
}

static void
job_row(GString *s, const HostJobRecord *r, const HostSchedule *sc)
{
    g_autofree char *started = host_format_time(r->started ? r->started : r->created);
    g_autofree char *loc = location_text(r);
    g_autofree char *when = row_schedule_text(sc, r->state);

    web_append(s,
               "<tr id=\"job-%" G_GINT64_FORMAT "\" data-id=\"%" G_GINT64_FORMAT
               "\" class=\"state-%s\"><td><a href=\"/jobs/%" G_GINT64_FORMAT "\">%" G_GINT64_FORMAT
               "</a></td><td>%s</td><td>%s</td><td class=\"vm\">%s</td>"
               "<td class=\"state\"><span class=\"badge\">%s</span></td><td class=\"phase-cell\">"
               "<span class=\"phase\">%s</span><span class=\"schedule\" data-in=\"row\">%s%s"
               "</span></td><td class=\"progress\">",
               r->id, r->id, r->state, r->id, r->id, r->kind, r->backend, r->vm, r->state, r->phase,
               when ? ", " : "", when ? when : "");
    progress_cell(s, r->percent, r->state);
    web_append(s, "</td><td>%s</td><td class=\"location\">%s</td></tr>\n", started ? started : "",
               loc ? loc : "");
}

/* The form that starts a migration: every VM and every host the backends
 * list. */
static void
start_form(GString *s, Daemon *d, gboolean can_change)
{
    g_autoptr(GError) err = NULL;
    json_object *vms = daemon_vms_json(d, NULL, NULL, &err);
    json_object *hosts = vms ? daemon_hosts_json(d, NULL, NULL, &err) : NULL;
    json_object *arr;

    g_string_append(s, "<section class=\"start\" aria-labelledby=\"start-h\">"
                       "<h2 id=\"start-h\">Start a migration</h2>");
    if (!hosts) {
        error_block(s, "cannot list VMs and hosts", err);
        if (vms)
            json_object_put(vms);
        g_string_append(s, "</section>");
        return;
    }
    web_append(s,
               "<form id=\"start-form\" class=\"js-only\"%s><label>VM <select name=\"vm\" "
               "id=\"start-vm\">",
               can_change ? "" : " data-disabled=1");
    arr = jget(vms, "vms");
    for (size_t i = 0; arr && i < json_object_array_length(arr); i++) {
        json_object *v = json_object_array_get_idx(arr, i);
        g_autofree char *full = g_strdup_printf("%s:%s", jstr(v, "backend"), jstr(v, "name"));
        web_append(s, "<option value=\"%s\" data-backend=\"%s\">%s (on %s)</option>", full,
                   jstr(v, "backend"), full, jstr(v, "host") ? jstr(v, "host") : "?");
    }
    g_string_append(s, "</select></label> <label>to host <select name=\"to\" id=\"start-to\">");
    arr = jget(hosts, "hosts");
    for (size_t i = 0; arr && i < json_object_array_length(arr); i++) {
        json_object *h = json_object_array_get_idx(arr, i);
        g_autofree char *full = g_strdup_printf("%s:%s", jstr(h, "backend"), jstr(h, "name"));
        web_append(s, "<option value=\"%s\" data-backend=\"%s\">%s</option>", full,
                   jstr(h, "backend"), full);
    }
    web_append(s,
               "</select></label> <label>type <select name=\"type\" id=\"start-type\">"
               "<option value=\"\">as the backend chooses</option><option value=\"live\">live"
               "</option><option value=\"cold\">cold</option></select></label> "
               "<button type=\"submit\" id=\"start-button\"%s>Start</button> "
               "<output id=\"start-result\" aria-live=\"polite\"></output></form>"
               "<p class=\"no-js\">Starting, cancelling and repairing jobs here needs "
               "JavaScript; <code>vmshift migrate</code> works as well.</p>",
               can_change ? "" : " disabled");
    if (!can_change)
        g_string_append(s, "<p class=\"note\">You may read, not change.</p>");
    g_string_append(s, "</section>");
    json_object_put(vms);
    json_object_put(hosts);
}

void
web_page_jobs(WebCall *w)
{
    Daemon *d = web_daemon(w);
    HostJobFilter f = { .state = web_q(w, "state"), .limit = PAGE_JOBS };
    g_autoptr(GError) err = NULL;
    g_autoptr(GPtrArray) list = NULL;
    g_autoptr(GHashTable) schedules = NULL;
    GString *s = g_string_new(NULL);
    gint64 total;
    const char *off = web_q(w, "offset");

    if (off && !g_ascii_string_to_signed(off, 10, 0, G_MAXINT64, &f.offset, NULL))
        f.offset = 0;
    web_append(s, "<div id=\"view\" data-view=\"jobs\" data-can-change=\"%d\">",
               web_can_change(w) ? 1 : 0);
    start_form(s, d, web_can_change(w));
    total = host_journal_count(d->journal, &f, &err);
    list = total >= 0 ? host_journal_list_filtered(d->journal, &f, &err) : NULL;
    g_string_append(s, "<section aria-labelledby=\"jobs-h\"><h2 id=\"jobs-h\">Jobs</h2>");
    if (!list) {
        error_block(s, "cannot read the journal", err);
    } else {
        web_append(s,
                   "<p class=\"count\">%" G_GINT64_FORMAT " job(s) in the journal; newest first"
                   "%s</p>",
                   total, total > PAGE_JOBS ? ", a page at a time" : "");
        g_string_append(s, "<table id=\"jobs\"><thead><tr><th>ID</th><th>Kind</th><th>Backend"
                           "</th><th>VM</th><th>State</th><th>Phase</th><th>Progress</th>"
                           "<th>Started</th><th>VM is on</th></tr></thead><tbody>\n");
        schedules = host_journal_schedules(d->journal, NULL);
        for (guint i = 0; i < list->len; i++) {
            const HostJobRecord *r = g_ptr_array_index(list, i);
            job_row(s, r, schedules ? g_hash_table_lookup(schedules, &r->id) : NULL);
        }
        g_string_append(s, "</tbody></table>");
        if (f.offset > 0)
            web_append(s, "<a class=\"page\" href=\"/?offset=%" G_GINT64_FORMAT "\">newer</a> ",
                       MAX(f.offset - PAGE_JOBS, 0));
        if (f.offset + PAGE_JOBS < total)
            web_append(s, "<a class=\"page\" href=\"/?offset=%" G_GINT64_FORMAT "\">older</a>",
                       f.offset + PAGE_JOBS);
    }
    g_string_append(s, "</section></div>");
    web_set(w, SOUP_STATUS_OK, "Jobs", g_string_free(s, FALSE));
}

/* ---- /jobs/{id} ------------------------------------------------------------------- */

static void
job_facts(GString *s, const HostJobRecord *r, const HostSchedule *sc)
{
    g_autofree char *started = host_format_time(r->started);
    g_autofree char *ended = r->ended ? host_format_time(r->ended) : NULL;
    g_autofree char *done = host_format_bytes(r->bytes_done);
    g_autofree char *total = host_format_bytes(r->bytes_total);
    g_autofree char *loc = location_text(r);

    web_append(s,
               "<dl class=\"facts\"><dt>Kind</dt><dd>%s</dd><dt>Backend</dt><dd>%s</dd>"
               "<dt>VM</dt><dd>%s</dd><dt>State</dt><dd class=\"state\"><span class=\"badge\">%s"
               "</span></dd><dt>Phase</dt><dd class=\"phase\">%s</dd><dt>Progress</dt>"
               "<dd class=\"progress\">",
               r->kind, r->backend, r->vm, r->state, r->phase);
    progress_cell(s, r->percent, r->state);
    web_append(s,
               " <span class=\"bytes\">%s of %s</span></dd><dt>Started</dt><dd>%s</dd>"
               "<dt>Ended</dt><dd class=\"ended\">%s</dd><dt>From</dt><dd>%s%s%s</dd>"
               "<dt>VM is on</dt><dd class=\"location\">%s</dd>",
               done, total, started ? started : "", ended ? ended : "",
               r->source_host ? r->source_host : "", r->source_path ? " " : "",
               r->source_path ? r->source_path : "", loc ? loc : "");
    if (sc) {
        g_autofree char *text = host_schedule_text(sc, r->state);
        web_append(s,
                   "<dt>Switchover</dt><dd><span class=\"schedule\" data-in=\"page\" "
                   "data-state=\"%s\">%s</span> <span class=\"mode\">(%s)</span></dd>",
                   sc->state, text ? text : "", sc->mode);
    }
    if (r->error_code)
        web_append(s, "<dt>Error</dt><dd class=\"error\">%s: %s</dd>", r->error_code,
                   r->error_message ? r->error_message : "");
    if (r->note)
        web_append(s, "<dt>Note</dt><dd>%s</dd>", r->note);
    g_string_append(s, "</dl>");
}

static void
job_events(GString *s, const HostJobRecord *r, GPtrArray *ev)
{
    guint phases = 0;

    g_string_append(s, "<section aria-labelledby=\"phases-h\"><h3 id=\"phases-h\">Phases</h3>"
                       "<ol class=\"phases\">");
    for (guint i = 0; i < ev->len; i++) {
        HostEventRecord *e = g_ptr_array_index(ev, i);
        g_autofree char *t = NULL;
        if (strcmp(e->kind, "phase") != 0 || !e->value)
            continue;
        t = host_format_time(e->time);
        web_append(s, "<li class=\"%s\"><span class=\"name\">%s</span> <time>%s</time></li>",
                   !strcmp(e->value, r->phase) && !strcmp(r->state, "running") ? "current" : "done",
                   e->value, t ? t : "");
        phases++;
    }
    if (!phases)
        g_string_append(s, "<li class=\"none\">none yet</li>");
    g_string_append(s, "</ol></section><section aria-labelledby=\"log-h\"><h3 id=\"log-h\">Log"
                       "</h3><table class=\"log\"><thead><tr><th>Time</th><th>Level</th>"
                       "<th>Kind</th><th>What</th></tr></thead><tbody>");
    for (guint i = 0; i < ev->len; i++) {
        HostEventRecord *e = g_ptr_array_index(ev, i);
        g_autofree char *t = host_format_time(e->time);
        /* saved plugin data: its key only, as `job show` */
        gboolean save = !strcmp(e->kind, "save");
        web_append(s,
                   "<tr class=\"level-%s\"><td>%s</td><td>%s</td><td>%s</td><td>%s%s%s</td>"
                   "</tr>",
                   e->level ? e->level : "none", t ? t : "", e->level ? e->level : "", e->kind,
                   e->key ? e->key : "", e->key && e->value && !save ? ": " : "",
                   e->value && !save ? e->value : "");
    }
    g_string_append(s, "</tbody></table></section>");
}

void
web_page_job(WebCall *w, gint64 id)
{
    Daemon *d = web_daemon(w);
    g_autoptr(GError) err = NULL;
    g_autoptr(HostJobRecord) r = host_journal_get(d->journal, id, &err);
    g_autoptr(GPtrArray) ev = r ? host_journal_events(d->journal, id, &err) : NULL;
    g_autoptr(HostSchedule) sc = ev ? host_journal_schedule_get(d->journal, id, NULL) : NULL;
    g_autofree char *title = g_strdup_printf("Job %" G_GINT64_FORMAT, id);
    gboolean live = r && (!strcmp(r->state, "running") || !strcmp(r->state, "queued"));
    GString *s = g_string_new(NULL);

    if (!ev) {
        error_block(s, title, err);
        web_set(w, SOUP_STATUS_NOT_FOUND, title, g_string_free(s, FALSE));
        return;
    }
    web_append(s,
               "<div id=\"view\" data-view=\"job\" data-can-change=\"%d\"><article id=\"job\" "
               "data-id=\"%" G_GINT64_FORMAT "\" class=\"state-%s\"><h2>Job %" G_GINT64_FORMAT
               ": %s %s</h2>",
               web_can_change(w) ? 1 : 0, id, r->state, id, r->kind, r->vm);
    job_facts(s, r, sc);
    web_append(s,
               "<div class=\"actions js-only\"><button type=\"button\" id=\"cancel\"%s>Cancel"
               "</button> <label>repair <select id=\"repair-mode\"><option value=\"auto\">"
               "as the hypervisor says</option><option value=\"retry\">retry</option>"
               "<option value=\"dismiss\">dismiss</option><option value=\"cleanup\">clean up"
               "</option></select></label> <input id=\"repair-reason\" placeholder=\"reason "
               "(to dismiss)\"> <button type=\"button\" id=\"repair\"%s>Repair</button> "
               "<output id=\"action-result\" aria-live=\"polite\"></output></div>",
               live && web_can_change(w) ? "" : " disabled",
               !live && web_can_change(w) && strcmp(r->state, "succeeded")
                       && strcmp(r->state, "repaired")
                   ? ""
                   : " disabled");
    job_events(s, r, ev);
    g_string_append(s, "</article></div>");
    web_set(w, SOUP_STATUS_OK, title, g_string_free(s, FALSE));
}

/* ---- /hosts?vm=&group= -------------------------------------------------------------- */

static void
stars(GString *s, int n)
{
    web_append(s,
               "<span class=\"stars\" role=\"img\" aria-label=\"%d of 5 stars\" "
               "data-stars=\"%d\">",
               n, n);
    for (int i = 0; i < 5; i++)
        g_string_append(s, i < n ? "\u2605" : "\u2606");
    g_string_append(s, "</span>");
}

static void
rating_rows(GString *s, json_object *ratings)
{
    for (size_t i = 0; ratings && i < json_object_array_length(ratings); i++) {
        json_object *r = json_object_array_get_idx(ratings, i);
        json_object *factors = jget(r, "factors");
        json_object *st = jget(r, "stars"), *score = jget(r, "score"), *el = jget(r, "eligible");
        web_append(s, "<tr class=\"host%s\" data-host=\"%s:%s\"><td>%s:%s</td><td>",
                   el && json_object_get_boolean(el) ? "" : " ineligible", jstr(r, "backend"),
                   jstr(r, "host"), jstr(r, "backend"), jstr(r, "host"));
        stars(s, st ? json_object_get_int(st) : 0);
        web_append(s, "</td><td>%.1f</td><td>%s</td><td><ul class=\"factors\">",
                   score ? json_object_get_double(score) : 0.0,
                   jstr(r, "reason") ? jstr(r, "reason") : "");
        for (size_t k = 0; factors && k < json_object_array_length(factors); k++) {
            json_object *f = json_object_array_get_idx(factors, k);
            json_object *eff = jget(f, "effect");
            web_append(s,
                       "<li class=\"result-%s\"><span class=\"factor\">%s</span> "
                       "<span class=\"effect\">%+.1f</span> %s</li>",
                       jstr(f, "result"), jstr(f, "factor"),
                       eff ? json_object_get_double(eff) : 0.0,
                       jstr(f, "detail") ? jstr(f, "detail") : "");
        }
        g_string_append(s, "</ul></td></tr>\n");
    }
}

void
web_page_hosts(WebCall *w)
{
    Daemon *d = web_daemon(w);
    const char *vm = web_q(w, "vm"), *group = web_q(w, "group");
    g_autoptr(GError) err = NULL;
    json_object *vms = daemon_vms_json(d, NULL, NULL, &err);
    json_object *arr = vms ? jget(vms, "vms") : NULL;
    GString *s = g_string_new("<div id=\"view\" data-view=\"hosts\"><section aria-labelledby="
                              "\"hosts-h\"><h2 id=\"hosts-h\">Hosts rated for a VM</h2>"
                              "<form method=\"get\" action=\"/hosts\" id=\"rate-form\">"
                              "<label>VM <select name=\"vm\" id=\"rate-vm\">");

    for (size_t i = 0; arr && i < json_object_array_length(arr); i++) {
        json_object *v = json_object_array_get_idx(arr, i);
        g_autofree char *full = g_strdup_printf("%s:%s", jstr(v, "backend"), jstr(v, "name"));
        web_append(s, "<option value=\"%s\"%s>%s</option>", full,
                   vm && (!strcmp(vm, full) || !g_strcmp0(vm, jstr(v, "name"))) ? " selected" : "",
                   full);
    }
    web_append(s,
               "</select></label> <label>group <input name=\"group\" id=\"rate-group\" "
               "value=\"%s\" placeholder=\"all hosts\"></label> <button type=\"submit\">Rate"
               "</button></form>",
               group ? group : "");
    if (!vms)
        error_block(s, "cannot list VMs", err);
    if (vm) {
        g_autoptr(GError) e = NULL;
        json_object *rating = daemon_rating_json(d, vm, group, &e);
        if (!rating) {
            error_block(s, vm, e);
        } else {
            web_append(s,
                       "<table id=\"ratings\" data-vm=\"%s\"><caption>Hosts for %s, best first; "
                       "the factors behind each rating</caption><thead><tr><th>Host</th>"
                       "<th>Rating</th><th>Score</th><th>Not eligible because</th><th>Factors"
                       "</th></tr></thead><tbody>",
                       vm, vm);
            rating_rows(s, jget(rating, "ratings"));
            g_string_append(s, "</tbody></table>");
            json_object_put(rating);
        }
    } else {
        g_string_append(s, "<p class=\"note\">Choose a VM to see how every host rates for it."
                           "</p>");
    }
    if (vms)
        json_object_put(vms);
    g_string_append(s, "</section></div>");
    web_set(w, SOUP_STATUS_OK, "Hosts", g_string_free(s, FALSE));
}

/* ---- /bulk ------------------------------------------------------------------------ */

static void
bulk_section(GString *s, json_object *b)
{
    json_object *waves = jget(b, "waves");
    json_object *id = jget(b, "id");

    web_append(s,
               "<section class=\"bulk state-%s\" id=\"bulk-%d\" data-id=\"%d\"><h3>Bulk plan %d: "
               "<span class=\"badge\">%s</span></h3><p class=\"who\">submitted by %s</p>",
               jstr(b, "state"), json_object_get_int(id), json_object_get_int(id),
               json_object_get_int(id), jstr(b, "state"),
               jstr(b, "submitted_by") ? jstr(b, "submitted_by") : "?");
    for (size_t i = 0; waves && i < json_object_array_length(waves); i++) {
        json_object *wv = json_object_array_get_idx(waves, i);
        json_object *vms = jget(wv, "vms");
        web_append(s,
                   "<table class=\"wave\" data-wave=\"%s\"><caption>%s: <span class=\"badge "
                   "wave-%s\">%s</span></caption><thead><tr><th>VM</th><th>To</th><th>Job</th>"
                   "<th>State</th><th>Phase</th><th>Progress</th><th>Why not</th></tr></thead>"
                   "<tbody>",
                   jstr(wv, "wave"), jstr(wv, "wave"), jstr(wv, "state"), jstr(wv, "state"));
        for (size_t k = 0; vms && k < json_object_array_length(vms); k++) {
            json_object *v = json_object_array_get_idx(vms, k);
            json_object *job = jget(v, "job"), *pct = jget(v, "percent");
            const char *state = jstr(v, "state") ? jstr(v, "state") : "";
            web_append(s, "<tr class=\"state-%s\"><td>%s</td><td>%s</td><td>", state, jstr(v, "vm"),
                       jstr(v, "to") ? jstr(v, "to") : "");
            if (job)
                web_append(s, "<a href=\"/jobs/%d\">%d</a>", json_object_get_int(job),
                           json_object_get_int(job));
            web_append(s, "</td><td class=\"state\">%s</td><td>%s</td><td class=\"progress\">",
                       state, jstr(v, "phase") ? jstr(v, "phase") : "");
            if (job)
                progress_cell(s, pct ? json_object_get_double(pct) : -1, state);
            web_append(s, "</td><td class=\"error\">%s</td></tr>",
                       jstr(v, "error") ? jstr(v, "error") : "");
        }
        g_string_append(s, "</tbody></table>");
    }
    g_string_append(s, "</section>");
}

void
web_page_bulk(WebCall *w)
{
    Daemon *d = web_daemon(w);
    json_object *all = daemon_bulks_json(d, 0, NULL);
    json_object *arr = jget(all, "bulks");
    GString *s = g_string_new(NULL);

    web_append(
        s,
        "<div id=\"view\" data-view=\"bulk\" data-can-change=\"%d\"><section class=\"start\" "
        "aria-labelledby=\"plan-h\"><h2 id=\"plan-h\">Run a bulk plan</h2><form "
        "id=\"bulk-form\" class=\"js-only\"><label for=\"bulk-plan\">Plan (vmshift-bulk(5))"
        "</label><textarea id=\"bulk-plan\" name=\"plan\" rows=\"8\" cols=\"60\" "
        "spellcheck=\"false\">[bulk]\nmax-per-backend=2\n\n[wave 1]\nvms=\nto=\n</textarea>"
        "<button type=\"submit\" id=\"bulk-button\"%s>Run</button> <output "
        "id=\"bulk-result\" aria-live=\"polite\"></output></form><p class=\"no-js\">Running "
        "a plan here needs JavaScript; <code>vmshift bulk PLAN</code> works as well.</p>"
        "</section><section aria-labelledby=\"bulks-h\"><h2 id=\"bulks-h\">Bulk plans, by "
        "wave</h2><div id=\"bulks\">",
        web_can_change(w) ? 1 : 0, web_can_change(w) ? "" : " disabled");
    if (!arr || !json_object_array_length(arr))
        g_string_append(s, "<p class=\"note\">No bulk plan has run in this vmshiftd.</p>");
    for (size_t i = 0; arr && i < json_object_array_length(arr); i++)
        bulk_section(s, json_object_array_get_idx(arr, i));
    g_string_append(s, "</div></section></div>");
    json_object_put(all);
    web_set(w, SOUP_STATUS_OK, "Bulk plans", g_string_free(s, FALSE));
}
