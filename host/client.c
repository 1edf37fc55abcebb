/*
 * vmshift host: `vmshift migrate` as a client of vmshiftd (#17).
 *
 * When a daemon is to be used (--daemon WHERE, else [vmshift] daemon=
 * WHERE, else "auto"; WHERE is a socket path, "auto" — the default socket
 * when it exists — or "no"), `migrate` and `migrate-storage` submit the job
 * to it (POST /api/v1/jobs, the options as a JSON object) and follow it by
 * polling GET /api/v1/jobs/ID: the same phase and log lines and progress
 * bar as a job run in the process, and the job's result as the exit code.
 * --detach prints the job id and returns at once; Ctrl-C detaches (the job
 * goes on in the daemon) unless --cancel-on-interrupt, which asks the
 * daemon to cancel and follows the job to its end.
 *
 * The HTTP here is the little the daemon's socket needs: one HTTP/1.0
 * request per connection, the answer read to EOF. The daemon never runs
 * without a standalone path: with "auto" and no socket, the command runs
 * the job itself as before.
 */
#include "config.h"

#include <gio/gunixsocketaddress.h>
#include <glib-unix.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "host/host.h"

#define CLIENT_DEFAULT_SOCKET "/run/vmshift/vmshiftd.sock"
#define CLIENT_REPLY_MAX (64 * 1024 * 1024)

/* The socket to use, or NULL for standalone; FALSE for a bad WHERE. */
static gboolean
client_socket(HostSession *s, char **path, GError **error)
{
    const char *where = s->g->daemon        ? s->g->daemon
                        : s->config->daemon ? s->config->daemon
                                            : "auto";
    struct stat st;

    *path = NULL;
    if (!strcmp(where, "no"))
        return TRUE;
    if (!strcmp(where, "auto")) {
        if (stat(CLIENT_DEFAULT_SOCKET, &st) == 0 && S_ISSOCK(st.st_mode))
            *path = g_strdup(CLIENT_DEFAULT_SOCKET);
        return TRUE;
    }
    if (!g_path_is_absolute(where)) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_INVALID_ARGUMENT,
                    "daemon '%s': give a socket path, auto or no", where);
        return FALSE;
    }
    *path = g_strdup(where);
    return TRUE;
}

/* One request; the answer's status and JSON body (NULL when not JSON). */
static gboolean
client_request(const char *sock, const char *method, const char *path, const char *body,
               guint *status, json_object **reply, GError **error)
{
    g_autoptr(GSocketClient) cl = g_socket_client_new();
    g_autoptr(GSocketAddress) addr = g_unix_socket_address_new(sock);
    g_autoptr(GSocketConnection) conn = NULL;
    g_autoptr(GString) req = g_string_new(NULL);
    g_autoptr(GByteArray) in = g_byte_array_new();
    GOutputStream *out;
    guint8 buf[16384];
    gssize n;
    const char *data, *sep;

    conn = g_socket_client_connect(cl, G_SOCKET_CONNECTABLE(addr), NULL, error);
    if (!conn) {
        g_prefix_error(error, "vmshiftd at %s: ", sock);
        return FALSE;
    }
    g_string_append_printf(req, "%s %s HTTP/1.0\r\nHost: vmshiftd\r\nAccept: application/json\r\n",
                           method, path);
    if (body)
        g_string_append_printf(
            req, "Content-Type: application/json\r\nContent-Length: %" G_GSIZE_FORMAT "\r\n",
            strlen(body));
    g_string_append(req, "\r\n");
    if (body)
        g_string_append(req, body);
    out = g_io_stream_get_output_stream(G_IO_STREAM(conn));
    if (!g_output_stream_write_all(out, req->str, req->len, NULL, NULL, error)) {
        g_prefix_error(error, "vmshiftd at %s: ", sock);
        return FALSE;
    }
    while ((n = g_input_stream_read(g_io_stream_get_input_stream(G_IO_STREAM(conn)), buf,
                                    sizeof buf, NULL, error))
           > 0) {
        if (in->len + (gsize)n > CLIENT_REPLY_MAX)
            break;
        g_byte_array_append(in, buf, (guint)n);
    }
    if (n < 0) {
        g_prefix_error(error, "vmshiftd at %s: ", sock);
        return FALSE;
    }
    g_byte_array_append(in, (const guint8 *)"", 1);
    data = (const char *)in->data;
    sep = strstr(data, "\r\n\r\n");
    if (!g_str_has_prefix(data, "HTTP/1.") || !sep || strlen(data) < 12) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_PROTOCOL,
                    "vmshiftd at %s: not an HTTP answer", sock);
        return FALSE;
    }
    *status = (guint)g_ascii_strtoull(data + 9, NULL, 10);
    *reply = json_tokener_parse(sep + 4);
    return TRUE;
}

/* The daemon's error answer as a GError. */
static void
client_error(const char *sock, guint status, json_object *reply, GError **error)
{
    json_object *e = NULL, *m = NULL;

    if (reply && json_object_object_get_ex(reply, "error", &e)
        && json_object_object_get_ex(e, "message", &m))
        g_set_error(error, VMSHIFT_ERROR,
                    status == 403   ? VMSHIFT_ERROR_PERMISSION
                    : status == 409 ? VMSHIFT_ERROR_CONFLICT
                    : status == 404 ? VMSHIFT_ERROR_NOT_FOUND
                                    : VMSHIFT_ERROR_FAILED,
                    "%s", json_object_get_string(m));
    else
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_PROTOCOL, "vmshiftd at %s answered HTTP %u",
                    sock, status);
}

static void
add_pairs(json_object *o, const char *key, char **items)
{
    json_object *m;

    if (!items)
        return;
    m = json_object_new_object();
    for (guint i = 0; items[i]; i++) {
        const char *eq = strchr(items[i], '=');
        g_autofree char *k = eq ? g_strndup(items[i], eq - items[i]) : g_strdup(items[i]);
        json_object_object_add(m, k, json_object_new_string(eq ? eq + 1 : ""));
    }
    json_object_object_add(o, key, m);
}

static char *
request_body(const char *vm, const HostMigrateOpts *m, gboolean storage)
{
    json_object *o = json_object_new_object();
    char *out;

    json_object_object_add(o, "kind",
                           json_object_new_string(storage ? "migrate-storage" : "migrate"));
    json_object_object_add(o, "vm", json_object_new_string(vm));
    if (m->to)
        json_object_object_add(o, "to", json_object_new_string(m->to));
    if (m->to_group)
        json_object_object_add(o, "to_group", json_object_new_string(m->to_group));
    if (m->path)
        json_object_object_add(o, "path", json_object_new_string(m->path));
    if (m->transfer)
        json_object_object_add(o, "transfer", json_object_new_string(m->transfer));
    if (m->live)
        json_object_object_add(o, "live", json_object_new_boolean(TRUE));
    if (m->cold)
        json_object_object_add(o, "cold", json_object_new_boolean(TRUE));
    if (m->start)
        json_object_object_add(o, "start", json_object_new_boolean(TRUE));
    if (m->force)
        json_object_object_add(o, "force", json_object_new_boolean(TRUE));
    /* moves between backends: a daemon that does not know them refuses */
    if (m->delete_source)
        json_object_object_add(o, "delete_source", json_object_new_boolean(TRUE));
    if (m->convert_guest)
        json_object_object_add(o, "convert_guest", json_object_new_boolean(TRUE));
    if (m->switchover_at) /* a daemon that does not know it refuses the request */
        json_object_object_add(o, "switchover_at", json_object_new_string(m->switchover_at));
    add_pairs(o, "disk_paths", m->disk_paths);
    add_pairs(o, "networks", m->networks);
    add_pairs(o, "options", m->options);
    add_pairs(o, "ips", m->ips); /* NIC -> "ADDR/PREFIX[,GATEWAY]" */
    out = g_strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
    json_object_put(o);
    return out;
}

static const char *
jget(json_object *o, const char *key)
{
    json_object *v = NULL;
    return json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_string)
               ? json_object_get_string(v)
               : NULL;
}

static gint64
jint(json_object *o, const char *key)
{
    json_object *v = NULL;
    return json_object_object_get_ex(o, key, &v) ? json_object_get_int64(v) : 0;
}

/* ---- following a job --------------------------------------------------------------- */

typedef struct {
    HostSession *s;
    const char *sock;
    gint64 id;
    char *label;
    HostProgress *progress;
    VmshiftJob *view; /* what the progress bar draws: the daemon's figures */
    guint events_seen;
    gboolean interrupted;
    gboolean cancel_on_interrupt, cancel_sent;
} Follow;

static gboolean
on_interrupt(gpointer data)
{
    ((Follow *)data)->interrupted = TRUE;
    return G_SOURCE_CONTINUE;
}

/* New phase and log lines of @job (the events after f->events_seen). */
static void
show_events(Follow *f, json_object *job)
{
    json_object *ev = NULL;
    size_t n;

    if (!json_object_object_get_ex(job, "events", &ev) || !json_object_is_type(ev, json_type_array))
        return;
    n = json_object_array_length(ev);
    for (; f->events_seen < n; f->events_seen++) {
        json_object *e = json_object_array_get_idx(ev, f->events_seen);
        const char *kind = jget(e, "kind"), *level = jget(e, "level"), *value = jget(e, "value");
        if (f->s->g->json || !kind || !value)
            continue;
        if (!strcmp(kind, "phase"))
            host_progress_line(f->progress, "%s: phase %s", f->label, value);
        else if (!strcmp(kind, "log") && (g_strcmp0(level, "debug") || f->s->g->verbose))
            host_progress_line(
                f->progress, "%s: %s%s%s", f->label,
                !g_strcmp0(level, "warning") || !g_strcmp0(level, "error") ? level : "",
                !g_strcmp0(level, "warning") || !g_strcmp0(level, "error") ? ": " : "", value);
    }
}

static void
update_view(Follow *f, json_object *job)
{
    json_object *pct = NULL;
    if (json_object_object_get_ex(job, "percent", &pct) && json_object_get_double(pct) >= 0)
        vmshift_job_set_progress(f->view, json_object_get_double(pct));
    vmshift_job_set_bytes(f->view, (guint64)jint(job, "bytes_done"),
                          (guint64)jint(job, "bytes_total"));
    vmshift_job_restore(f->view, vmshift_phase_from_name(jget(job, "phase")), NULL);
    host_progress_update(f->progress, f->label, f->view);
}

static int
report(Follow *f, json_object *job)
{
    const char *state = jget(job, "state");
    json_object *loc = NULL, *err = NULL;
    const char *where = NULL, *detail = NULL, *msg = NULL;
    gboolean ok = !g_strcmp0(state, "succeeded") || !g_strcmp0(state, "repaired");

    if (json_object_object_get_ex(job, "location", &loc)) {
        where = jget(loc, "host");
        detail = jget(loc, "detail");
    }
    if (json_object_object_get_ex(job, "error", &err) && err)
        msg = jget(err, "message");
    if (f->s->g->json) {
        json_object_object_del(job, "events");
        host_json_print(json_object_get(job));
    } else if (ok) {
        printf("job %" G_GINT64_FORMAT " %s: %s '%s' is on %s (%s)\n", f->id, state,
               jget(job, "kind"), jget(job, "vm"), where ? where : "-", detail ? detail : "-");
    }
    if (!ok) {
        if (where)
            host_err("job %" G_GINT64_FORMAT " %s: %s; VM '%s' is on %s (%s)", f->id, state,
                     msg ? msg : "failed", jget(job, "vm"), where, detail ? detail : "-");
        else
            host_err("job %" G_GINT64_FORMAT " %s: %s", f->id, state, msg ? msg : "failed");
    }
    return ok ? HOST_EXIT_OK : HOST_EXIT_FAILED;
}

static int
follow_step(Follow *f, GError **error, gboolean *done)
{
    g_autofree char *path = g_strdup_printf("/api/v1/jobs/%" G_GINT64_FORMAT, f->id);
    json_object *job = NULL;
    guint status = 0;
    const char *state;
    int rc = HOST_EXIT_OK;

    *done = FALSE;
    if (f->interrupted && !f->cancel_on_interrupt) {
        host_progress_finish(f->progress);
        host_err("detached from job %" G_GINT64_FORMAT "; it goes on in vmshiftd: "
                 "'vmshift job show %" G_GINT64_FORMAT "' shows it, "
                 "'vmshift job cancel %" G_GINT64_FORMAT "' stops it",
                 f->id, f->id, f->id);
        *done = TRUE;
        return HOST_EXIT_FAILED;
    }
    if (f->interrupted && !f->cancel_sent) {
        g_autofree char *cpath = g_strdup_printf("%s/cancel", path);
        json_object *r = NULL;
        f->cancel_sent = TRUE;
        host_progress_line(f->progress, "%s: interrupted, cancelling", f->label);
        if (client_request(f->sock, "POST", cpath, "{}", &status, &r, error) && r)
            json_object_put(r);
    }
    if (!client_request(f->sock, "GET", path, NULL, &status, &job, error))
        return -1;
    if (status != 200 || !job) {
        client_error(f->sock, status, job, error);
        if (job)
            json_object_put(job);
        return -1;
    }
    show_events(f, job);
    state = jget(job, "state");
    if (!g_strcmp0(state, "running") || !g_strcmp0(state, "queued")) {
        update_view(f, job);
    } else {
        host_progress_remove(f->progress, f->label);
        host_progress_finish(f->progress);
        rc = report(f, job);
        *done = TRUE;
    }
    json_object_put(job);
    return rc;
}

static int
follow(HostSession *s, const char *sock, gint64 id, const char *vm, gboolean cancel_on_interrupt)
{
    Follow f = { .s = s, .sock = sock, .id = id, .cancel_on_interrupt = cancel_on_interrupt };
    g_autofree char *jid = g_strdup_printf("%" G_GINT64_FORMAT, id);
    g_autoptr(GError) err = NULL;
    guint sint, sterm;
    gboolean done = FALSE;
    int rc = HOST_EXIT_FAILED;

    f.label = g_strdup_printf("job %" G_GINT64_FORMAT " (%s)", id, vm);
    f.progress = host_progress_new(isatty(STDERR_FILENO), s->g->json);
    f.view = vmshift_job_new(jid, NULL, NULL, NULL);
    sint = g_unix_signal_add(SIGINT, on_interrupt, &f);
    sterm = g_unix_signal_add(SIGTERM, on_interrupt, &f);
    while (!done) {
        rc = follow_step(&f, &err, &done);
        if (rc < 0) {
            host_progress_finish(f.progress);
            host_err("job %" G_GINT64_FORMAT ": %s", id, err->message);
            rc = HOST_EXIT_FAILED;
            break;
        }
        for (int i = 0; !done && i < 5 && !f.interrupted; i++) {
            g_usleep(100 * 1000);
            while (g_main_context_iteration(NULL, FALSE))
                ;
        }
    }
    g_source_remove(sint);
    g_source_remove(sterm);
    vmshift_job_unref(f.view);
    host_progress_free(f.progress);
    g_free(f.label);
    return rc;
}

gboolean
host_client_migrate(HostSession *s, const char *vm, const HostMigrateOpts *m, gboolean storage,
                    gboolean detach, gboolean cancel_on_interrupt, int *rc)
{
    g_autoptr(GError) err = NULL;
    g_autofree char *sock = NULL;
    g_autofree char *body = NULL;
    json_object *reply = NULL;
    guint status = 0;
    gint64 id;

    if (!client_socket(s, &sock, &err)) {
        host_err("%s", err->message);
        *rc = HOST_EXIT_USAGE;
        return TRUE;
    }
    if (!sock)
        return FALSE;
    body = request_body(vm, m, storage);
    if (!client_request(sock, "POST", "/api/v1/jobs", body, &status, &reply, &err)
        || (status != 201 && (client_error(sock, status, reply, &err), TRUE))) {
        host_err("%s", err->message);
        if (reply)
            json_object_put(reply);
        *rc = HOST_EXIT_FAILED;
        return TRUE;
    }
    id = jint(reply, "id");
    if (detach) {
        if (s->g->json)
            host_json_print(reply);
        else {
            printf("%" G_GINT64_FORMAT "\n", id);
            json_object_put(reply);
        }
        *rc = HOST_EXIT_OK;
        return TRUE;
    }
    json_object_put(reply);
    if (!s->g->json)
        fprintf(stderr, "job %" G_GINT64_FORMAT ": %s %s (in vmshiftd)\n", id,
                storage ? "migrate-storage" : "migrate", vm);
    *rc = follow(s, sock, id, vm, cancel_on_interrupt);
    return TRUE;
}
