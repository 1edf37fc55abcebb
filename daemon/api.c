/*
 * vmshiftd: the REST API's routes (/api/v1/..., /metrics), each answered
 * with the JSON of the matching `vmshift --json` command. The document
 * describing them is data/openapi.json, served at /api/v1/openapi.json.
 *
 * Every request is first checked against the peer's credentials (auth.c):
 * reading needs the read group, a change (POST) the admin group. A POST
 * must carry Content-Type: application/json, which a cross-site form
 * cannot send without a preflight. Handlers that call a backend or read
 * the journal run in a GTask thread (daemon.h) with the message paused.
 */
#include "config.h"

#include <string.h>

#include "daemon/daemon.h"

#define BODY_MAX (1024 * 1024)

typedef struct ApiCall ApiCall;
typedef json_object *(*ApiFunc)(ApiCall *c, GError **error);

struct ApiCall {
    Daemon *d;
    SoupServerMessage *msg;
    ApiFunc fn;
    gboolean lock;          /* hold d->api_lock: the handler uses the registry */
    char *arg;              /* {vm} or {id} of the path */
    gint64 id;              /* {id} as a number */
    GHashTable *query;      /* copy of the query (string -> string) */
    json_object *body;      /* POST body */
    char *who;              /* the caller, for the journal */
    guint ok_status;        /* 200, 201, 202 */
    HostJobRun *run;        /* out: a job to start in the main thread */
    DaemonBulk *bulk;       /* out: a bulk run to start in the main thread */
    char *text;             /* out: a text/plain answer instead of JSON */
    DaemonJobsWriter *jobs; /* out: a job listing to stream instead of JSON */
};

static void
api_call_free(ApiCall *c)
{
    g_object_unref(c->msg);
    g_free(c->arg);
    if (c->query)
        g_hash_table_unref(c->query);
    if (c->body)
        json_object_put(c->body);
    g_free(c->who);
    host_job_run_free(c->run);
    if (c->bulk)
        daemon_bulk_free(c->bulk);
    g_free(c->text);
    daemon_jobs_writer_free(c->jobs);
    g_free(c);
}

void
daemon_reply_json(SoupServerMessage *msg, guint status, json_object *body)
{
    /* as host_json_print(): the command's --json, byte for byte */
    const char *txt = json_object_to_json_string_ext(body, JSON_C_TO_STRING_PRETTY
                                                               | JSON_C_TO_STRING_NOSLASHESCAPE);
    soup_server_message_set_status(msg, status, NULL);
    soup_server_message_set_response(msg, "application/json", SOUP_MEMORY_COPY, txt, strlen(txt));
    json_object_put(body);
}

void
daemon_reply_error(SoupServerMessage *msg, const GError *e)
{
    daemon_reply_json(msg, daemon_http_status(e), daemon_error_json(e));
}

static void reply_errorf(SoupServerMessage *msg, int code, const char *fmt, ...)
    G_GNUC_PRINTF(3, 4);

static void
reply_errorf(SoupServerMessage *msg, int code, const char *fmt, ...)
{
    va_list ap;
    g_autoptr(GError) e = NULL;

    va_start(ap, fmt);
    e = g_error_new_valist(VMSHIFT_ERROR, code, fmt, ap);
    va_end(ap);
    daemon_reply_error(msg, e);
}

static void
json_put(gpointer o)
{
    json_object_put(o);
}

static const char *
q(ApiCall *c, const char *key)
{
    const char *v = c->query ? g_hash_table_lookup(c->query, key) : NULL;
    return v && *v ? v : NULL;
}

/* ---- handlers (API thread) ---------------------------------------------------------- */

static json_object *
get_backends(ApiCall *c, GError **error)
{
    return daemon_backends_json(c->d);
}

static json_object *
get_hosts(ApiCall *c, GError **error)
{
    return daemon_hosts_json(c->d, q(c, "backend"), q(c, "group"), error);
}

static json_object *
get_vms(ApiCall *c, GError **error)
{
    return daemon_vms_json(c->d, q(c, "backend"), q(c, "host"), error);
}

static json_object *
get_rating(ApiCall *c, GError **error)
{
    return daemon_rating_json(c->d, c->arg, q(c, "group"), error);
}

static json_object *
post_checks(ApiCall *c, GError **error)
{
    return daemon_check_json(c->d, c->body, error);
}

static const char *const job_states[] = { "queued",    "running",     "succeeded", "failed",
                                          "cancelled", "interrupted", "repaired",  NULL };

/* GET /jobs pages: at most ?limit= jobs (default JOBS_LIMIT), newest first,
 * after ?offset=; "total" says how many match. */
#define JOBS_LIMIT 100
#define JOBS_LIMIT_MAX 10000

static gboolean
page_arg(ApiCall *c, const char *key, gint64 max, gint64 def, gint64 *out, GError **error)
{
    const char *v = q(c, key);

    *out = def;
    if (v && !g_ascii_string_to_signed(v, 10, key[0] == 'l' ? 1 : 0, max, out, NULL)) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_INVALID_ARGUMENT,
                    "%s '%s': not a number from %d to %" G_GINT64_FORMAT, key, v,
                    key[0] == 'l' ? 1 : 0, max);
        return FALSE;
    }
    return TRUE;
}

static json_object *
get_jobs(ApiCall *c, GError **error)
{
    HostJobFilter f = { .state = q(c, "state"), .backend = q(c, "backend"), .vm = q(c, "vm") };
    g_autoptr(GPtrArray) list = NULL;
    g_autoptr(GHashTable) schedules = NULL;
    const char *since = q(c, "since");
    gint64 total;

    if (f.state && !g_strv_contains(job_states, f.state)) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_INVALID_ARGUMENT,
                    "state '%s': not a job state", f.state);
        return NULL;
    }
    if (since && !g_ascii_string_to_signed(since, 10, 0, G_MAXINT64, &f.since, NULL)) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_INVALID_ARGUMENT,
                    "since '%s': not a Unix time in seconds", since);
        return NULL;
    }
    if (!page_arg(c, "limit", JOBS_LIMIT_MAX, JOBS_LIMIT, &f.limit, error)
        || !page_arg(c, "offset", G_MAXINT64, 0, &f.offset, error))
        return NULL;
    if ((total = host_journal_count(c->d->journal, &f, error)) < 0
        || !(list = host_journal_list_filtered(c->d->journal, &f, error)))
        return NULL;
    schedules = list->len ? host_journal_schedules(c->d->journal, NULL) : NULL;
    /* written as it is sent (stream_jobs), not built */
    c->jobs = daemon_jobs_writer_new(list, schedules, total, f.limit, f.offset);
    return json_object_new_object();
}

static json_object *
job_json(ApiCall *c, gint64 id, GError **error)
{
    g_autoptr(HostJobRecord) r = host_journal_get(c->d->journal, id, error);
    return r ? host_json_job(r) : NULL;
}

static json_object *
post_jobs(ApiCall *c, GError **error)
{
    json_object *k = NULL;

    if (json_object_object_get_ex(c->body, "kind", &k) && json_object_is_type(k, json_type_string)
        && !strcmp(json_object_get_string(k), "bulk")) {
        c->bulk = daemon_bulk_create(c->d, c->body, c->who, error);
        return c->bulk ? daemon_bulk_json(c->d, c->bulk) : NULL;
    }
    c->run = daemon_job_create(c->d, c->body, c->who, error);
    return c->run ? job_json(c, host_job_run_id(c->run), error) : NULL;
}

static json_object *
get_bulks(ApiCall *c, GError **error)
{
    return daemon_bulks_json(c->d, c->id, error);
}

static json_object *
get_job(ApiCall *c, GError **error)
{
    return daemon_job_show_json(c->d, c->id, error);
}

static json_object *
post_cancel(ApiCall *c, GError **error)
{
    g_autofree char *line = g_strdup_printf("cancel requested by %s", c->who);
    json_object *root;

    if (!host_journal_request_cancel(c->d->journal, c->id, error))
        return NULL;
    host_journal_add_event(c->d->journal, c->id, "audit", "info", "requested-by", line, NULL);
    root = json_object_new_object();
    json_object_object_add(root, "id", json_object_new_int64(c->id));
    json_object_object_add(root, "cancel_requested", json_object_new_boolean(TRUE));
    return root;
}

static json_object *
post_repair(ApiCall *c, GError **error)
{
    c->run = daemon_job_repair(c->d, c->id, c->body, c->who, error);
    return c->run ? job_json(c, c->id, error) : NULL;
}

static json_object *
get_metrics(ApiCall *c, GError **error)
{
    c->text = daemon_metrics_text(c->d, error);
    return c->text ? json_object_new_object() : NULL;
}

/* ---- GET /jobs, streamed ------------------------------------------------------------ */

/* a piece of the listing: ~300 jobs */
#define JOBS_PIECE (256 * 1024)

typedef struct {
    DaemonJobsWriter *w;
    gulong wrote_id, finished_id;
} JobsStream;

/* Appends the next piece of the listing once the last one is written, or
 * ends the body. */
static void
stream_piece(SoupServerMessage *msg, gpointer data)
{
    JobsStream *js = data;
    SoupMessageBody *body = soup_server_message_get_response_body(msg);
    GString *s = g_string_sized_new(JOBS_PIECE + 8192);

    if (daemon_jobs_writer_next(js->w, s, JOBS_PIECE)) {
        gsize len = s->len;
        soup_message_body_append_take(body, (guchar *)g_string_free(s, FALSE), len);
    } else {
        g_string_free(s, TRUE);
        soup_message_body_complete(body);
    }
    soup_server_message_unpause(msg);
}

static void
stream_finished(SoupServerMessage *msg, gpointer data)
{
    JobsStream *js = data;

    g_signal_handler_disconnect(msg, js->wrote_id);
    g_signal_handler_disconnect(msg, js->finished_id);
    daemon_jobs_writer_free(js->w);
    g_free(js);
}

/* Sends the listing of @w chunked (HTTP/1.1), a piece at a time as the
 * client reads. */
static void
stream_jobs(SoupServerMessage *msg, DaemonJobsWriter *w)
{
    SoupMessageHeaders *h = soup_server_message_get_response_headers(msg);
    JobsStream *js = g_new0(JobsStream, 1);

    js->w = w;
    soup_server_message_set_status(msg, SOUP_STATUS_OK, NULL);
    soup_message_headers_set_content_type(h, "application/json", NULL);
    /* libsoup would send chunks to an HTTP/1.0 client, which cannot read
     * them: its body ends when the connection closes */
    soup_message_headers_set_encoding(h, soup_server_message_get_http_version(msg) == SOUP_HTTP_1_0
                                             ? SOUP_ENCODING_EOF
                                             : SOUP_ENCODING_CHUNKED);
    js->wrote_id = g_signal_connect(msg, "wrote-chunk", G_CALLBACK(stream_piece), js);
    js->finished_id = g_signal_connect(msg, "finished", G_CALLBACK(stream_finished), js);
    stream_piece(msg, js);
}

/* ---- dispatch ---------------------------------------------------------------------- */

static void
call_thread(GTask *task, gpointer source, gpointer data, GCancellable *cancellable)
{
    ApiCall *c = data;
    GError *err = NULL;
    json_object *res;

    if (c->lock)
        g_mutex_lock(&c->d->api_lock);
    res = c->fn(c, &err);
    if (c->lock)
        g_mutex_unlock(&c->d->api_lock);
    if (res)
        g_task_return_pointer(task, res, json_put);
    else
        g_task_return_error(task, err ? err
                                      : g_error_new(VMSHIFT_ERROR, VMSHIFT_ERROR_FAILED,
                                                    "failed without a reason"));
}

static void
call_done(GObject *source, GAsyncResult *res, gpointer data)
{
    ApiCall *c = data;
    g_autoptr(GError) err = NULL;
    json_object *body = g_task_propagate_pointer(G_TASK(res), &err);

    if (!body) {
        daemon_reply_error(c->msg, err);
    } else if (c->jobs) {
        json_object_put(body);
        stream_jobs(c->msg, g_steal_pointer(&c->jobs));
    } else if (c->text) {
        json_object_put(body);
        soup_server_message_set_status(c->msg, SOUP_STATUS_OK, NULL);
        soup_server_message_set_response(c->msg, "text/plain; version=0.0.4; charset=utf-8",
                                         SOUP_MEMORY_COPY, c->text, strlen(c->text));
    } else {
        if (c->run) {
            g_autofree char *loc = g_strdup_printf("/api/v1/jobs/%" G_GINT64_FORMAT,
                                                   host_job_run_id(c->run));
            soup_message_headers_replace(soup_server_message_get_response_headers(c->msg),
                                         "Location", loc);
            daemon_job_start(c->d, g_steal_pointer(&c->run));
        }
        if (c->bulk) {
            g_autofree char *loc = g_strdup_printf("/api/v1/bulks/%" G_GINT64_FORMAT,
                                                   daemon_bulk_id(c->bulk));
            soup_message_headers_replace(soup_server_message_get_response_headers(c->msg),
                                         "Location", loc);
            daemon_bulk_start(c->d, g_steal_pointer(&c->bulk));
        }
        daemon_reply_json(c->msg, c->ok_status, body);
    }
    soup_server_message_unpause(c->msg);
    api_call_free(c);
}

static void
dispatch(ApiCall *c)
{
    g_autoptr(GTask) task = g_task_new(NULL, NULL, call_done, c);
    g_task_set_task_data(task, c, NULL);
    soup_server_message_pause(c->msg);
    g_task_run_in_thread(task, call_thread);
}

/* The JSON object of a POST body, or FALSE with the reply made. */
static gboolean
read_body(SoupServerMessage *msg, json_object **out)
{
    SoupMessageHeaders *h = soup_server_message_get_request_headers(msg);
    SoupMessageBody *b = soup_server_message_get_request_body(msg);
    const char *ct = soup_message_headers_get_content_type(h, NULL);
    g_autoptr(GBytes) bytes = NULL;
    json_tokener *tok;
    json_object *o;
    gsize len;
    const char *data;

    if (g_strcmp0(ct, "application/json") != 0) {
        reply_errorf(msg, VMSHIFT_ERROR_INVALID_ARGUMENT,
                     "a change needs Content-Type: application/json, not '%s'", ct ? ct : "none");
        return FALSE;
    }
    bytes = soup_message_body_flatten(b);
    data = g_bytes_get_data(bytes, &len);
    if (len > BODY_MAX) {
        reply_errorf(msg, VMSHIFT_ERROR_INVALID_ARGUMENT, "request body larger than %s", "1 MiB");
        return FALSE;
    }
    tok = json_tokener_new();
    o = len ? json_tokener_parse_ex(tok, data, (int)len) : NULL;
    if (o && json_tokener_get_error(tok) != json_tokener_success) {
        json_object_put(o);
        o = NULL;
    }
    json_tokener_free(tok);
    if (!o || !json_object_is_type(o, json_type_object)) {
        if (o)
            json_object_put(o);
        reply_errorf(msg, VMSHIFT_ERROR_INVALID_ARGUMENT, "request body: %s", "not a JSON object");
        return FALSE;
    }
    *out = o;
    return TRUE;
}

typedef struct {
    const char *method;
    const char *pattern; /* path after /api/v1, '*' one segment */
    ApiFunc fn;
    gboolean change; /* needs the admin group */
    gboolean lock;
    guint ok_status;
} Route;

static const Route routes[] = {
    { "GET", "/backends", get_backends, FALSE, TRUE, SOUP_STATUS_OK },
    { "GET", "/hosts", get_hosts, FALSE, TRUE, SOUP_STATUS_OK },
    { "GET", "/vms", get_vms, FALSE, TRUE, SOUP_STATUS_OK },
    { "GET", "/vms/*/rating", get_rating, FALSE, TRUE, SOUP_STATUS_OK },
    { "POST", "/checks", post_checks, FALSE, TRUE, SOUP_STATUS_OK },
    { "GET", "/jobs", get_jobs, FALSE, FALSE, SOUP_STATUS_OK },
    { "POST", "/jobs", post_jobs, TRUE, TRUE, SOUP_STATUS_CREATED },
    { "GET", "/jobs/*", get_job, FALSE, FALSE, SOUP_STATUS_OK },
    { "POST", "/jobs/*/cancel", post_cancel, TRUE, FALSE, SOUP_STATUS_ACCEPTED },
    { "POST", "/jobs/*/repair", post_repair, TRUE, TRUE, SOUP_STATUS_CREATED },
    { "GET", "/bulks", get_bulks, FALSE, TRUE, SOUP_STATUS_OK },
    { "GET", "/bulks/*", get_bulks, FALSE, TRUE, SOUP_STATUS_OK },
};

/* Whether @path matches @pattern; the '*' segment into @arg. */
static gboolean
match(const char *pattern, const char *path, char **arg)
{
    g_auto(GStrv) p = g_strsplit(pattern, "/", -1);
    g_auto(GStrv) s = g_strsplit(path, "/", -1);

    if (g_strv_length(p) != g_strv_length(s))
        return FALSE;
    for (guint i = 0; p[i]; i++) {
        if (!strcmp(p[i], "*")) {
            if (!*s[i])
                return FALSE;
            g_free(*arg);
            *arg = g_uri_unescape_string(s[i], NULL);
            if (!*arg)
                return FALSE;
        } else if (strcmp(p[i], s[i]) != 0) {
            return FALSE;
        }
    }
    return TRUE;
}

/* FALSE, with 403 made, unless the caller may do what @change says. */
static gboolean
authorize(Daemon *d, SoupServerMessage *msg, gboolean change, char **who)
{
    DaemonCaller c;
    g_autoptr(GError) err = NULL;
    g_autofree char *why = NULL;
    gboolean ok;

    if (!daemon_caller_from_message(d, msg, &c, &err)) {
        d->refused++;
        if (g_error_matches(err, VMSHIFT_ERROR, VMSHIFT_ERROR_AUTH_FAILED)) {
            daemon_reply_error(msg, err);
            soup_server_message_set_status(msg, SOUP_STATUS_UNAUTHORIZED, NULL);
            soup_message_headers_replace(soup_server_message_get_response_headers(msg),
                                         "WWW-Authenticate", "Bearer realm=\"vmshiftd\"");
            return FALSE;
        }
        g_prefix_error(&err, "who is asking is unknown: ");
        err->domain = VMSHIFT_ERROR;
        err->code = VMSHIFT_ERROR_PERMISSION;
        daemon_reply_error(msg, err);
        return FALSE;
    }
    ok = change ? c.can_change : c.can_read;
    if (ok && change && daemon_cross_site(msg, &why)) {
        d->refused++;
        g_printerr("vmshiftd: refused %s %s from %s: %s\n", soup_server_message_get_method(msg),
                   g_uri_get_path(soup_server_message_get_uri(msg)), c.name, why);
        reply_errorf(msg, VMSHIFT_ERROR_PERMISSION, "%s may not change anything: %s", c.name, why);
        daemon_caller_clear(&c);
        return FALSE;
    }
    if (!ok) {
        g_autofree char *m = g_strdup_printf(
            c.tcp ? "%s may not %s: that needs an admin token or certificate%.0s"
                  : "%s may not %s: that needs root or membership of group '%s'",
            c.name, change ? "change anything" : "read", change ? d->admin_group : d->read_group);
        d->refused++;
        g_printerr("vmshiftd: refused %s %s: %s\n", soup_server_message_get_method(msg),
                   g_uri_get_path(soup_server_message_get_uri(msg)), m);
        reply_errorf(msg, VMSHIFT_ERROR_PERMISSION, "%s", m);
    } else if (who) {
        *who = g_steal_pointer(&c.name);
    }
    daemon_caller_clear(&c);
    return ok;
}

static void
serve_openapi(Daemon *d, SoupServerMessage *msg)
{
    g_autofree char *text = NULL;
    gsize len = 0;
    g_autoptr(GError) err = NULL;

    if (!g_file_get_contents(d->openapi_path, &text, &len, &err)) {
        err->domain = VMSHIFT_ERROR;
        err->code = VMSHIFT_ERROR_NOT_FOUND;
        daemon_reply_error(msg, err);
        return;
    }
    soup_server_message_set_status(msg, SOUP_STATUS_OK, NULL);
    soup_server_message_set_response(msg, "application/json", SOUP_MEMORY_TAKE,
                                     g_steal_pointer(&text), len);
}

static void
api_handler(SoupServer *server, SoupServerMessage *msg, const char *path, GHashTable *query,
            gpointer data)
{
    Daemon *d = data;
    const char *method = soup_server_message_get_method(msg);
    const char *rest = g_str_has_prefix(path, "/api/v1") ? path + strlen("/api/v1") : NULL;
    gboolean known_path = FALSE;

    d->requests++;
    if (!strcmp(path, "/metrics") && !strcmp(method, "GET"))
        rest = "/metrics";
    if (!rest) {
        reply_errorf(msg, VMSHIFT_ERROR_NOT_FOUND, "no such resource: %s", path);
        return;
    }
    if (!strcmp(rest, "/openapi.json") || !strcmp(rest, "/events") || !strcmp(rest, "/metrics")) {
        if (strcmp(method, "GET") != 0) {
            reply_errorf(msg, VMSHIFT_ERROR_INVALID_ARGUMENT, "%s takes GET only", path);
            soup_server_message_set_status(msg, SOUP_STATUS_METHOD_NOT_ALLOWED, NULL);
            return;
        }
        if (!authorize(d, msg, FALSE, NULL))
            return;
        if (!strcmp(rest, "/openapi.json"))
            serve_openapi(d, msg);
        else if (!strcmp(rest, "/events"))
            daemon_events_add_client(d, msg);
        else {
            ApiCall *c = g_new0(ApiCall, 1);
            c->d = d;
            c->msg = g_object_ref(msg);
            c->fn = get_metrics;
            c->lock = TRUE;
            c->ok_status = SOUP_STATUS_OK;
            dispatch(c);
        }
        return;
    }
    for (guint i = 0; i < G_N_ELEMENTS(routes); i++) {
        const Route *r = &routes[i];
        g_autofree char *arg = NULL;
        ApiCall *c;
        if (!match(r->pattern, rest, &arg))
            continue;
        known_path = TRUE;
        if (strcmp(method, r->method) != 0)
            continue;
        c = g_new0(ApiCall, 1);
        c->d = d;
        c->msg = g_object_ref(msg);
        if (!authorize(d, msg, r->change, &c->who)
            || (!strcmp(method, "POST") && !read_body(msg, &c->body))) {
            api_call_free(c);
            return;
        }
        if (arg && (strstr(r->pattern, "/jobs/") || strstr(r->pattern, "/bulks/"))
            && !g_ascii_string_to_signed(arg, 10, 1, G_MAXINT64, &c->id, NULL)) {
            reply_errorf(msg, VMSHIFT_ERROR_INVALID_ARGUMENT, "'%s' is not a job id", arg);
            api_call_free(c);
            return;
        }
        c->arg = g_steal_pointer(&arg);
        c->fn = r->fn;
        c->lock = r->lock;
        c->ok_status = r->ok_status;
        if (query)
            c->query = g_hash_table_ref(query);
        dispatch(c);
        return;
    }
    if (known_path) {
        reply_errorf(msg, VMSHIFT_ERROR_INVALID_ARGUMENT, "%s: method not allowed", method);
        soup_server_message_set_status(msg, SOUP_STATUS_METHOD_NOT_ALLOWED, NULL);
        return;
    }
    reply_errorf(msg, VMSHIFT_ERROR_NOT_FOUND, "no such resource: %s", path);
}

void
daemon_api_register(Daemon *d)
{
    soup_server_add_handler(d->server, "/api/v1", api_handler, d, NULL);
    soup_server_add_handler(d->server, "/metrics", api_handler, d, NULL);
}
