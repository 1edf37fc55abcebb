/*
 * vmshiftd: GET /api/v1/events, a server-sent event stream of job changes.
 *
 * Every 250 ms the poller reads, on a read-only connection of its own, which
 * jobs have new journal events since the last look (a phase, a log line, a
 * state change, a cancel request: from this daemon or from any vmshift
 * process on the same journal), adds the daemon's running jobs, its bulk
 * plans' among them (whose progress moves without events), and sends each
 * job whose JSON (the `vmshift --json job show` object without its log)
 * changed as
 *
 *   event: job
 *   data: {"id": 12, "state": "running", "phase": "transfer", "percent": 40, ...}
 *
 * with its "switchover" when it has a schedule.
 *
 * A comment line every 15 s keeps idle streams alive and finds dead clients.
 */
#include "config.h"

#include <string.h>

#include "daemon/daemon.h"

typedef struct {
    Daemon *d;
    SoupServerMessage *msg;
    gulong finished_id;
    gboolean dead; /* finished: freed from an idle, outside libsoup's emission */
} DaemonSse;

static void
sse_free(DaemonSse *c)
{
    if (c->finished_id)
        g_signal_handler_disconnect(c->msg, c->finished_id);
    g_object_unref(c->msg);
    g_free(c);
}

static void
sse_send(DaemonSse *c, const char *text)
{
    SoupMessageBody *body;

    if (c->dead)
        return;
    body = soup_server_message_get_response_body(c->msg);
    soup_message_body_append(body, SOUP_MEMORY_COPY, text, strlen(text));
    soup_server_message_unpause(c->msg);
}

static gboolean
remove_dead(gpointer data)
{
    Daemon *d = data;

    for (guint i = 0; d->sse_clients && i < d->sse_clients->len;) {
        DaemonSse *c = g_ptr_array_index(d->sse_clients, i);
        if (c->dead)
            g_ptr_array_remove_index_fast(d->sse_clients, i);
        else
            i++;
    }
    g_atomic_int_set(&d->n_sse, d->sse_clients ? (gint)d->sse_clients->len : 0);
    return G_SOURCE_REMOVE;
}

/* The stream ended (the client went away): libsoup is inside the
 * message's emission and may still use it, so the client is dropped from
 * an idle callback. */
static void
on_finished(SoupServerMessage *msg, gpointer data)
{
    DaemonSse *c = data;

    if (c->dead)
        return;
    c->dead = TRUE;
    g_idle_add(remove_dead, c->d);
}

gboolean
daemon_events_init(Daemon *d)
{
    g_autofree char *path = NULL;
    sqlite3_stmt *st = NULL;

    if (d->watch_db)
        return TRUE;
    path = g_build_filename(d->session.config->state_dir, "journal.db", NULL);
    if (sqlite3_open_v2(path, &d->watch_db, SQLITE_OPEN_READONLY | SQLITE_OPEN_FULLMUTEX, NULL)
        != SQLITE_OK) {
        g_printerr("vmshiftd: warning: %s: %s\n", path, sqlite3_errmsg(d->watch_db));
        sqlite3_close(d->watch_db);
        d->watch_db = NULL;
        return FALSE;
    }
    sqlite3_busy_timeout(d->watch_db, 5000);
    if (sqlite3_prepare_v2(d->watch_db, "SELECT coalesce(max(seq), 0) FROM events", -1, &st, NULL)
            == SQLITE_OK
        && sqlite3_step(st) == SQLITE_ROW)
        d->events_seq = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return TRUE;
}

void
daemon_events_add_client(Daemon *d, SoupServerMessage *msg)
{
    SoupMessageHeaders *h = soup_server_message_get_response_headers(msg);
    DaemonSse *c = g_new0(DaemonSse, 1);

    if (!d->sse_clients)
        d->sse_clients = g_ptr_array_new_with_free_func((GDestroyNotify)sse_free);
    daemon_events_init(d);
    c->d = d;
    c->msg = g_object_ref(msg);
    soup_server_message_set_status(msg, SOUP_STATUS_OK, NULL);
    soup_message_headers_set_content_type(h, "text/event-stream", NULL);
    soup_message_headers_replace(h, "Cache-Control", "no-cache");
    soup_message_headers_set_encoding(h, SOUP_ENCODING_CHUNKED);
    c->finished_id = g_signal_connect(msg, "finished", G_CALLBACK(on_finished), c);
    g_ptr_array_add(d->sse_clients, c);
    g_atomic_int_set(&d->n_sse, (gint)d->sse_clients->len);
    sse_send(c, ": vmshiftd job events\nretry: 2000\n\n");
}

static void
broadcast(Daemon *d, const char *text)
{
    for (guint i = 0; d->sse_clients && i < d->sse_clients->len; i++)
        sse_send(g_ptr_array_index(d->sse_clients, i), text);
}

/* The ids of jobs with journal events after d->events_seq. */
static void
changed_jobs(Daemon *d, GHashTable *ids)
{
    sqlite3_stmt *st = NULL;

    if (!daemon_events_init(d)
        || sqlite3_prepare_v2(d->watch_db, "SELECT seq, job FROM events WHERE seq > ? ORDER BY seq",
                              -1, &st, NULL)
               != SQLITE_OK) {
        sqlite3_finalize(st);
        return;
    }
    sqlite3_bind_int64(st, 1, d->events_seq);
    while (sqlite3_step(st) == SQLITE_ROW) {
        gint64 job = sqlite3_column_int64(st, 1);
        d->events_seq = sqlite3_column_int64(st, 0);
        g_hash_table_add(ids, g_memdup2(&job, sizeof job));
    }
    sqlite3_finalize(st);
}

static void
send_job(Daemon *d, gint64 id)
{
    g_autoptr(HostJobRecord) r = host_journal_get(d->journal, id, NULL);
    g_autoptr(HostSchedule) sc = NULL;
    json_object *j;
    g_autofree char *text = NULL;
    const char *prev;

    if (!r)
        return;
    j = host_json_job(r);
    if ((sc = host_journal_schedule_get(d->journal, id, NULL)))
        json_object_object_add(j, "switchover", daemon_schedule_json(sc, r->state));
    text = g_strdup(json_object_to_json_string_ext(j, JSON_C_TO_STRING_PLAIN));
    json_object_put(j);
    prev = g_hash_table_lookup(d->sent, &id);
    if (!prev || strcmp(prev, text) != 0) {
        g_autofree char *ev = g_strdup_printf("event: job\ndata: %s\n\n", text);
        broadcast(d, ev);
    }
    if (!strcmp(r->state, "running") || !strcmp(r->state, "queued"))
        g_hash_table_insert(d->sent, g_memdup2(&id, sizeof id), g_steal_pointer(&text));
    else
        g_hash_table_remove(d->sent, &id);
}

void
daemon_events_poll(Daemon *d)
{
    static guint ticks;
    g_autoptr(GHashTable) ids = g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free, NULL);
    GHashTableIter it;
    gpointer key;

    changed_jobs(d, ids);
    if (!d->sse_clients || !d->sse_clients->len)
        return;
    for (guint i = 0; i < d->runs->len; i++) {
        gint64 id = host_job_run_id(g_ptr_array_index(d->runs, i));
        g_hash_table_add(ids, g_memdup2(&id, sizeof id));
    }
    daemon_bulks_running(d, ids);
    g_hash_table_iter_init(&it, ids);
    while (g_hash_table_iter_next(&it, &key, NULL))
        send_job(d, *(gint64 *)key);
    if (++ticks % 60 == 0)
        broadcast(d, ": keepalive\n\n");
}

void
daemon_events_close_all(Daemon *d)
{
    while (d->sse_clients && d->sse_clients->len) {
        DaemonSse *c = g_ptr_array_index(d->sse_clients, 0);
        soup_message_body_complete(soup_server_message_get_response_body(c->msg));
        soup_server_message_unpause(c->msg);
        g_ptr_array_remove_index_fast(d->sse_clients, 0);
    }
}
