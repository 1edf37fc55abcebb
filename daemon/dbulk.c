/*
 * vmshiftd: bulk plans run by the daemon (#17): POST /api/v1/jobs with
 * {"kind": "bulk", "plan": "<the text of a vmshift-bulk(5) plan>"} runs the
 * plan wave by wave through the same code as `vmshift bulk` (host/bulk.c:
 * loading, planning each wave when its turn comes, the per-backend and
 * per-host limits and the window); GET /api/v1/bulks and /bulks/{id} show
 * each wave's VMs with their jobs. Each job is an ordinary journal job;
 * the bulk run itself (which job belongs to which wave) lives in the
 * daemon while it runs, and its document is kept in the journal (table
 * vmshiftd_bulks, the daemon's own) each time it changes shape -- a wave
 * planned, a job started, a wave over -- so that the view of past runs
 * survives a restart: a run the daemon no longer has is shown from its
 * last document with its jobs as the journal has them now, "interrupted"
 * when it was running when the daemon stopped.
 *
 * Planning and starting jobs use the registry, so the main loop does them
 * only when it gets api_lock at once (g_mutex_trylock), else on a later
 * tick; the jobs themselves run on their threads like every other.
 */
#include "config.h"

#include <errno.h>
#include <glib/gstdio.h>
#include <string.h>
#include <unistd.h>

#include "daemon/daemon.h"

#define PLAN_MAX (256 * 1024)

struct DaemonBulk {
    gint64 id;
    char *who;
    gint64 created, ended;
    HostBulk bk;
    HostJobContext ctx; /* the daemon's, with a progress of its own */
    GPtrArray *waves;   /* HostBulkWave */
    guint current;      /* the wave running (waves->len: all done) */
    gboolean planned;   /* waves[current] is planned and starting */
    GPtrArray *runs;    /* running of waves[current], owned by their items */
    gboolean force;
    char *saved; /* the shape last kept in the journal (bulk_save) */
};

static json_object *bulk_json(Daemon *d, DaemonBulk *b);

void
daemon_bulk_free(DaemonBulk *b)
{
    host_bulk_clear(&b->bk);
    if (b->ctx.progress)
        host_progress_free(b->ctx.progress);
    if (b->waves)
        g_ptr_array_unref(b->waves);
    if (b->runs)
        g_ptr_array_unref(b->runs);
    g_free(b->who);
    g_free(b->saved);
    g_free(b);
}

/* ---- in the journal ---------------------------------------------------------------- */

gboolean
daemon_bulks_init(Daemon *d, GError **error)
{
    GMutex *lock;
    sqlite3 *db = host_journal_db(d->journal, &lock);
    sqlite3_stmt *st = NULL;
    gboolean ok;

    g_mutex_lock(lock);
    ok = sqlite3_exec(db,
                      "CREATE TABLE IF NOT EXISTS vmshiftd_bulks (id INTEGER PRIMARY KEY, "
                      "created INTEGER NOT NULL, doc TEXT NOT NULL)",
                      NULL, NULL, NULL)
             == SQLITE_OK
         && sqlite3_prepare_v2(db, "SELECT coalesce(max(id), 0) FROM vmshiftd_bulks", -1, &st, NULL)
                == SQLITE_OK
         && sqlite3_step(st) == SQLITE_ROW;
    if (ok)
        d->last_bulk = sqlite3_column_int64(st, 0);
    else
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_FAILED, "journal: bulk runs: %s",
                    sqlite3_errmsg(db));
    sqlite3_finalize(st);
    g_mutex_unlock(lock);
    return ok;
}

/* Keeps the document of @b in the journal when its shape changed since the
 * last time; main thread, api_lock held. */
static void
bulk_save(Daemon *d, DaemonBulk *b)
{
    g_autofree char *shape = g_strdup_printf("%u %d %u %" G_GINT64_FORMAT, b->current, b->planned,
                                             b->bk.jobs_started, b->ended);
    json_object *doc;
    GMutex *lock;
    sqlite3 *db;
    sqlite3_stmt *st = NULL;

    if (!g_strcmp0(shape, b->saved))
        return;
    doc = bulk_json(d, b); /* reads the journal: before its lock is taken */
    db = host_journal_db(d->journal, &lock);
    g_mutex_lock(lock);
    if (sqlite3_prepare_v2(db,
                           "INSERT OR REPLACE INTO vmshiftd_bulks(id, created, doc) "
                           "VALUES (?, ?, ?)",
                           -1, &st, NULL)
        == SQLITE_OK) {
        sqlite3_bind_int64(st, 1, b->id);
        sqlite3_bind_int64(st, 2, b->created);
        sqlite3_bind_text(st, 3, json_object_to_json_string_ext(doc, JSON_C_TO_STRING_PLAIN), -1,
                          SQLITE_TRANSIENT);
    }
    if (!st || sqlite3_step(st) != SQLITE_DONE)
        g_printerr("vmshiftd: warning: bulk %" G_GINT64_FORMAT ": not kept in the journal: %s\n",
                   b->id, sqlite3_errmsg(db));
    else
        g_free(b->saved), b->saved = g_steal_pointer(&shape);
    sqlite3_finalize(st);
    g_mutex_unlock(lock);
    json_object_put(doc);
}

gint64
daemon_bulk_id(DaemonBulk *b)
{
    return b->id;
}

/* Loads the plan text of @body through a private file, as `vmshift bulk`
 * reads a plan file. */
static GPtrArray *
load_plan(Daemon *d, json_object *body, HostBulk *bk, GError **error)
{
    json_object *p = NULL;
    const char *text;
    g_autofree char *path = NULL;
    g_autoptr(GError) e = NULL;
    GPtrArray *waves;
    int fd;

    if (!json_object_object_get_ex(body, "plan", &p) || !json_object_is_type(p, json_type_string)
        || !*(text = json_object_get_string(p))) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_INVALID_ARGUMENT,
                    "request body: a bulk job needs 'plan', the text of a plan file");
        return NULL;
    }
    if (strlen(text) > PLAN_MAX) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_INVALID_ARGUMENT,
                    "request body: 'plan' is larger than 256 KiB");
        return NULL;
    }
    fd = g_file_open_tmp("vmshiftd-plan.XXXXXX", &path, error);
    if (fd < 0)
        return NULL;
    if (write(fd, text, strlen(text)) != (ssize_t)strlen(text)) {
        int err = errno;
        close(fd);
        g_unlink(path);
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_FAILED, "%s: %s", path, g_strerror(err));
        return NULL;
    }
    close(fd);
    waves = host_bulk_load_plan(path, bk, &e);
    g_unlink(path);
    if (!waves) {
        /* the message names the private file: say "plan" instead */
        g_auto(GStrv) parts = g_strsplit(e->message, path, -1);
        g_autofree char *msg = g_strjoinv("plan", parts);
        /* a plan is the request's: its mistakes are a bad request */
        g_set_error(error, e->domain,
                    e->domain == VMSHIFT_ERROR && e->code == VMSHIFT_ERROR_CONFIG
                        ? VMSHIFT_ERROR_INVALID_ARGUMENT
                        : e->code,
                    "%s", msg);
        return NULL;
    }
    return waves;
}

DaemonBulk *
daemon_bulk_create(Daemon *d, json_object *body, const char *who, GError **error)
{
    DaemonBulk *b = g_new0(DaemonBulk, 1);
    json_object *f = NULL;

    b->bk.reg = d->session.reg;
    b->waves = load_plan(d, body, &b->bk, error);
    if (!b->waves) {
        daemon_bulk_free(b);
        return NULL;
    }
    if (json_object_object_get_ex(body, "force", &f))
        b->force = json_object_get_boolean(f);
    b->ctx = d->ctx;
    b->ctx.progress = host_progress_new(FALSE, TRUE);
    b->bk.ctx = &b->ctx;
    b->runs = g_ptr_array_new();
    b->who = g_strdup(who);
    b->created = g_get_real_time() / G_USEC_PER_SEC;
    b->id = ++d->last_bulk;
    /* the first wave is planned here, under api_lock: its errors show in
     * the answer */
    if (b->waves->len) {
        b->bk.wave = g_ptr_array_index(b->waves, 0);
        host_bulk_plan_wave(&b->bk, b->bk.wave, b->force);
        b->planned = TRUE;
    }
    g_printerr("vmshiftd: bulk %" G_GINT64_FORMAT ": %u wave(s), submitted by %s\n", b->id,
               b->waves->len, who);
    return b;
}

void
daemon_bulk_start(Daemon *d, DaemonBulk *b)
{
    /* API threads read the list under api_lock */
    g_mutex_lock(&d->api_lock);
    if (!d->bulks)
        d->bulks = g_ptr_array_new_with_free_func((GDestroyNotify)daemon_bulk_free);
    g_ptr_array_add(d->bulks, b);
    bulk_save(d, b);
    g_mutex_unlock(&d->api_lock);
}

static gboolean
wave_done(DaemonBulk *b)
{
    for (guint i = 0; i < b->runs->len; i++)
        if (!host_job_run_is_done(g_ptr_array_index(b->runs, i)))
            return FALSE;
    return TRUE;
}

/* Main thread, api_lock held: starts what the limits allow, moves to the
 * next wave when this one is over. */
static void
bulk_step(Daemon *d, DaemonBulk *b)
{
    gboolean pending;

    if (b->current >= b->waves->len)
        return;
    if (!b->planned) {
        b->bk.wave = g_ptr_array_index(b->waves, b->current);
        host_bulk_plan_wave(&b->bk, b->bk.wave, b->force);
        b->planned = TRUE;
    }
    pending = host_bulk_schedule(&b->bk, b->runs);
    bulk_save(d, b);
    if (pending || !wave_done(b))
        return;
    g_printerr("vmshiftd: bulk %" G_GINT64_FORMAT ": %s done\n", b->id, b->bk.wave->group);
    g_ptr_array_set_size(b->runs, 0);
    b->current++;
    b->planned = FALSE;
    if (b->current >= b->waves->len)
        b->ended = g_get_real_time() / G_USEC_PER_SEC;
    bulk_save(d, b);
}

void
daemon_bulks_tick(Daemon *d)
{
    gboolean locked = FALSE;

    for (guint i = 0; d->bulks && i < d->bulks->len; i++) {
        DaemonBulk *b = g_ptr_array_index(d->bulks, i);
        for (guint k = 0; k < b->runs->len; k++)
            host_job_run_tick(g_ptr_array_index(b->runs, k));
        if (b->current >= b->waves->len)
            continue;
        if (!locked && !(locked = g_mutex_trylock(&d->api_lock)))
            return; /* an API request uses the registry: next tick */
        bulk_step(d, b);
    }
    if (locked)
        g_mutex_unlock(&d->api_lock);
}

void
daemon_bulks_running(Daemon *d, GHashTable *ids)
{
    for (guint i = 0; d->bulks && i < d->bulks->len; i++) {
        DaemonBulk *b = g_ptr_array_index(d->bulks, i);
        for (guint k = 0; k < b->runs->len; k++) {
            HostJobRun *r = g_ptr_array_index(b->runs, k);
            gint64 id = host_job_run_id(r);
            if (!host_job_run_is_done(r))
                g_hash_table_add(ids, g_memdup2(&id, sizeof id));
        }
    }
}

void
daemon_bulks_stop(Daemon *d)
{
    for (guint i = 0; d->bulks && i < d->bulks->len; i++) {
        DaemonBulk *b = g_ptr_array_index(d->bulks, i);
        b->ctx.stopping = TRUE;
        for (guint k = 0; k < b->runs->len; k++) {
            HostJobRun *r = g_ptr_array_index(b->runs, k);
            if (!host_job_run_is_done(r))
                host_job_run_cancel(r);
        }
    }
    for (guint i = 0; d->bulks && i < d->bulks->len; i++) {
        DaemonBulk *b = g_ptr_array_index(d->bulks, i);
        while (!wave_done(b)) {
            g_usleep(100 * 1000);
            for (guint k = 0; k < b->runs->len; k++)
                host_job_run_tick(g_ptr_array_index(b->runs, k));
        }
        g_free(b->saved); /* its jobs' ends, in the journal's copy */
        b->saved = NULL;
        g_mutex_lock(&d->api_lock);
        bulk_save(d, b);
        g_mutex_unlock(&d->api_lock);
    }
}

/* ---- JSON ------------------------------------------------------------------------- */

static json_object *
item_json(Daemon *d, const HostBulkItem *it)
{
    json_object *o = json_object_new_object();
    g_autoptr(HostJobRecord) r = NULL;
    gint64 id = it->run ? host_job_run_id(it->run) : it->job_id;

    if (id)
        r = host_journal_get(d->journal, id, NULL);
    json_object_object_add(o, "vm", host_json_string(it->vm));
    json_object_object_add(o, "job", id ? json_object_new_int64(id) : NULL);
    json_object_object_add(o, "state", host_json_string(r ? r->state : NULL));
    json_object_object_add(o, "phase", host_json_string(r ? r->phase : NULL));
    json_object_object_add(o, "percent", r ? json_object_new_double(r->percent) : NULL);
    json_object_object_add(
        o, "to",
        host_json_string(it->spec ? (it->storage_only ? it->spec->dest_path : it->spec->dest_host)
                                  : it->opts.to));
    json_object_object_add(o, "placement", host_json_string(it->placement));
    json_object_object_add(o, "error", host_json_string(it->error ? it->error : it->skipped));
    return o;
}

static const char *
wave_state(DaemonBulk *b, guint w)
{
    if (w < b->current)
        return "done";
    if (w == b->current && b->current < b->waves->len)
        return b->planned ? "running" : "planning";
    return "waiting";
}

static const char *
bulk_state(Daemon *d, DaemonBulk *b)
{
    if (b->current < b->waves->len)
        return "running";
    for (guint w = 0; w < b->waves->len; w++) {
        HostBulkWave *wave = g_ptr_array_index(b->waves, w);
        for (guint i = 0; i < wave->items->len; i++) {
            HostBulkItem *it = g_ptr_array_index(wave->items, i);
            if (it->error || it->skipped || (!it->run && !it->job_id)
                || (it->run ? host_job_run_error(it->run) != NULL : it->failure != NULL))
                return "failed";
        }
    }
    return "succeeded";
}

/* The document of bulk @b; main thread, or an API thread under api_lock. */
static json_object *
bulk_json(Daemon *d, DaemonBulk *b)
{
    json_object *o = json_object_new_object();
    json_object *waves = json_object_new_array();

    json_object_object_add(o, "id", json_object_new_int64(b->id));
    json_object_object_add(o, "state", json_object_new_string(bulk_state(d, b)));
    json_object_object_add(o, "submitted_by", host_json_string(b->who));
    json_object_object_add(o, "created", json_object_new_int64(b->created));
    json_object_object_add(o, "ended", b->ended ? json_object_new_int64(b->ended) : NULL);
    json_object_object_add(o, "window", host_json_string(b->bk.window));
    json_object_object_add(o, "max_per_backend", json_object_new_int64(b->bk.max_backend));
    json_object_object_add(o, "max_per_host", json_object_new_int64(b->bk.max_host));
    for (guint w = 0; w < b->waves->len; w++) {
        HostBulkWave *wave = g_ptr_array_index(b->waves, w);
        json_object *wj = json_object_new_object();
        json_object *vms = json_object_new_array();
        for (guint i = 0; i < wave->items->len; i++)
            json_object_array_add(vms, item_json(d, g_ptr_array_index(wave->items, i)));
        json_object_object_add(wj, "wave", host_json_string(wave->group));
        json_object_object_add(wj, "number", json_object_new_int(wave->number));
        json_object_object_add(wj, "state", json_object_new_string(wave_state(b, w)));
        json_object_object_add(wj, "vms", vms);
        json_object_array_add(waves, wj);
    }
    json_object_object_add(o, "waves", waves);
    return o;
}

json_object *
daemon_bulk_json(Daemon *d, DaemonBulk *b)
{
    return bulk_json(d, b);
}

/* A kept document: its jobs as the journal has them now; a run this daemon
 * no longer has, and that had not ended, was interrupted by its stop. */
static json_object *
stored_bulk(Daemon *d, const char *text)
{
    json_object *o = json_tokener_parse(text), *waves = NULL, *st = NULL;

    if (!o || !json_object_object_get_ex(o, "waves", &waves)
        || !json_object_is_type(waves, json_type_array)) {
        if (o)
            json_object_put(o);
        return NULL;
    }
    if (json_object_object_get_ex(o, "state", &st)
        && !strcmp(json_object_get_string(st), "running"))
        json_object_object_add(o, "state", json_object_new_string("interrupted"));
    for (size_t w = 0; w < json_object_array_length(waves); w++) {
        json_object *wv = json_object_array_get_idx(waves, w), *vms = NULL, *ws = NULL;
        if (json_object_object_get_ex(wv, "state", &ws)) {
            const char *was = json_object_get_string(ws);
            if (!strcmp(was, "running") || !strcmp(was, "planning"))
                json_object_object_add(wv, "state", json_object_new_string("interrupted"));
            else if (!strcmp(was, "waiting"))
                json_object_object_add(wv, "state", json_object_new_string("not run"));
        }
        if (!json_object_object_get_ex(wv, "vms", &vms))
            continue;
        for (size_t i = 0; i < json_object_array_length(vms); i++) {
            json_object *v = json_object_array_get_idx(vms, i), *job = NULL;
            g_autoptr(HostJobRecord) r = NULL;
            if (!json_object_object_get_ex(v, "job", &job) || !job
                || !(r = host_journal_get(d->journal, json_object_get_int64(job), NULL)))
                continue; /* never started, or pruned: as it was */
            json_object_object_add(v, "state", host_json_string(r->state));
            json_object_object_add(v, "phase", host_json_string(r->phase));
            json_object_object_add(v, "percent", json_object_new_double(r->percent));
        }
    }
    return o;
}

static gboolean
is_live(Daemon *d, gint64 id)
{
    for (guint i = 0; d->bulks && i < d->bulks->len; i++)
        if (((DaemonBulk *)g_ptr_array_index(d->bulks, i))->id == id)
            return TRUE;
    return FALSE;
}

/* Adds to @arr the kept documents of the runs this daemon does not have
 * (@id: that one only), newest first. */
static void
add_stored(Daemon *d, gint64 id, json_object *arr)
{
    GMutex *lock;
    sqlite3 *db = host_journal_db(d->journal, &lock);
    sqlite3_stmt *st = NULL;
    g_autoptr(GPtrArray) docs = g_ptr_array_new_with_free_func(g_free);

    g_mutex_lock(lock);
    if (sqlite3_prepare_v2(db,
                           "SELECT id, doc FROM vmshiftd_bulks WHERE ?1 = 0 OR id = ?1 "
                           "ORDER BY id DESC",
                           -1, &st, NULL)
        == SQLITE_OK) {
        sqlite3_bind_int64(st, 1, id);
        while (sqlite3_step(st) == SQLITE_ROW)
            if (!is_live(d, sqlite3_column_int64(st, 0)))
                g_ptr_array_add(docs, g_strdup((const char *)sqlite3_column_text(st, 1)));
    }
    sqlite3_finalize(st);
    g_mutex_unlock(lock);
    for (guint i = 0; i < docs->len; i++) { /* host_journal_get() takes the lock */
        json_object *o = stored_bulk(d, g_ptr_array_index(docs, i));
        if (o)
            json_object_array_add(arr, o);
    }
}

json_object *
daemon_bulks_json(Daemon *d, gint64 id, GError **error)
{
    json_object *arr, *root;

    for (guint i = 0; id && d->bulks && i < d->bulks->len; i++) {
        DaemonBulk *b = g_ptr_array_index(d->bulks, i);
        if (b->id == id)
            return bulk_json(d, b);
    }
    arr = json_object_new_array();
    if (id) {
        add_stored(d, id, arr);
        if (json_object_array_length(arr) == 1) {
            json_object *o = json_object_get(json_object_array_get_idx(arr, 0));
            json_object_put(arr);
            return o;
        }
        json_object_put(arr);
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_NOT_FOUND,
                    "no bulk run %" G_GINT64_FORMAT " in this vmshiftd's journal", id);
        return NULL;
    }
    for (guint i = d->bulks ? d->bulks->len : 0; i > 0; i--)
        json_object_array_add(arr, bulk_json(d, g_ptr_array_index(d->bulks, i - 1)));
    add_stored(d, 0, arr);
    root = json_object_new_object();
    json_object_object_add(root, "bulks", arr);
    return root;
}
