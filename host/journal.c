/*
 * vmshift host: the job journal.
 *
 * One SQLite database per state directory (journal.db, WAL, synchronous=FULL)
 * shared by every vmshift process. Each phase transition and each
 * vmshift_job_save() is committed before the job's hook returns, so after a
 * kill -9 the journal knows the last phase a job entered and what the plugin
 * saved. A job records the pid and the start time of the process running it;
 * every start marks jobs whose process is gone as interrupted.
 *
 * One connection per journal, used from the main thread and from job
 * threads under one mutex.
 */
#include "config.h"

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

#include "host/host.h"

struct HostJournal {
    sqlite3 *db;
    GMutex lock;
    char *path;
};

static const char schema[] =
    "CREATE TABLE IF NOT EXISTS jobs ("
    " id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " kind TEXT NOT NULL, backend TEXT NOT NULL, vm TEXT NOT NULL,"
    " spec TEXT, state TEXT NOT NULL, phase TEXT NOT NULL DEFAULT 'none',"
    " pid INTEGER, pid_start TEXT,"
    " created INTEGER, started INTEGER, ended INTEGER,"
    " error_code TEXT, error_message TEXT,"
    " location_host TEXT, location_detail TEXT, results TEXT,"
    " source_host TEXT, source_path TEXT,"
    " percent REAL DEFAULT -1, bytes_done INTEGER DEFAULT 0, bytes_total INTEGER DEFAULT 0,"
    " cancel_requested INTEGER NOT NULL DEFAULT 0);"
    "CREATE TABLE IF NOT EXISTS events ("
    " seq INTEGER PRIMARY KEY AUTOINCREMENT,"
    " job INTEGER NOT NULL REFERENCES jobs(id),"
    " time INTEGER NOT NULL, kind TEXT NOT NULL, level TEXT, key TEXT, value TEXT);"
    "CREATE INDEX IF NOT EXISTS events_job ON events(job, seq);"
    "CREATE INDEX IF NOT EXISTS jobs_vm ON jobs(backend, vm, state);"
    "PRAGMA user_version = 1;";

/* ---- process identity --------------------------------------------------------- */

static char *
boot_id(void)
{
    char *s = NULL;
    if (!g_file_get_contents("/proc/sys/kernel/random/boot_id", &s, NULL, NULL))
        return g_strdup("noboot");
    return g_strstrip(s);
}

char *
host_process_identity(gint64 pid)
{
    g_autofree char *path = g_strdup_printf("/proc/%" G_GINT64_FORMAT "/stat", pid);
    g_autofree char *stat = NULL;
    g_autofree char *boot = NULL;
    g_auto(GStrv) fields = NULL;
    const char *p;

    if (!g_file_get_contents(path, &stat, NULL, NULL))
        return NULL;
    /* comm may hold spaces and parentheses: fields resume after the last ')' */
    p = strrchr(stat, ')');
    if (!p)
        return NULL;
    fields = g_strsplit(p + 2, " ", 0);
    /* after ')' come field 3 (state) …; starttime is field 22 → index 19 */
    if (g_strv_length(fields) < 20)
        return NULL;
    if (fields[0][0] == 'Z' || fields[0][0] == 'X')
        return NULL; /* a zombie has finished its work */
    boot = boot_id();
    return g_strdup_printf("%s:%s", boot, fields[19]);
}

gboolean
host_process_alive(gint64 pid, const char *identity)
{
    g_autofree char *now = NULL;

    if (pid <= 0)
        return FALSE;
    if (kill((pid_t)pid, 0) != 0 && errno == ESRCH)
        return FALSE;
    now = host_process_identity(pid);
    return now && identity && strcmp(now, identity) == 0;
}

/* ---- helpers ------------------------------------------------------------------- */

static gboolean
db_fail(HostJournal *j, const char *what, GError **error)
{
    g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_FAILED, "journal %s: %s: %s", j->path, what,
                sqlite3_errmsg(j->db));
    return FALSE;
}

static gboolean
exec(HostJournal *j, const char *sql, GError **error)
{
    char *msg = NULL;
    if (sqlite3_exec(j->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_FAILED, "journal %s: %s", j->path,
                    msg ? msg : sqlite3_errmsg(j->db));
        sqlite3_free(msg);
        return FALSE;
    }
    return TRUE;
}

/* A write transaction under j->lock. txn_begin() takes the lock and begins
 * it; leaving the scope without txn_commit() rolls it back, and the lock is
 * always released: declare it g_auto(JournalTxn). */
typedef struct {
    HostJournal *j;
    gboolean locked;
    gboolean open;
} JournalTxn;

static void
txn_clear(JournalTxn *t)
{
    if (t->open)
        exec(t->j, "ROLLBACK", NULL);
    if (t->locked)
        g_mutex_unlock(&t->j->lock);
}
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(JournalTxn, txn_clear)

static gboolean
txn_begin(JournalTxn *t, HostJournal *j, GError **error)
{
    t->j = j;
    g_mutex_lock(&j->lock);
    t->locked = TRUE;
    t->open = exec(j, "BEGIN IMMEDIATE", error);
    return t->open;
}

static gboolean
txn_commit(JournalTxn *t, GError **error)
{
    if (!exec(t->j, "COMMIT", error))
        return FALSE; /* rolled back by txn_clear() */
    t->open = FALSE;
    return TRUE;
}

static sqlite3_stmt *
prepare(HostJournal *j, const char *sql, GError **error)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(j->db, sql, -1, &st, NULL) != SQLITE_OK) {
        db_fail(j, "prepare", error);
        return NULL;
    }
    return st;
}

static void
bind_text(sqlite3_stmt *st, int i, const char *s)
{
    if (s)
        sqlite3_bind_text(st, i, s, -1, SQLITE_TRANSIENT);
    else
        sqlite3_bind_null(st, i);
}

static gboolean
step_done(HostJournal *j, sqlite3_stmt *st, GError **error)
{
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_FAILED, "journal %s: %s", j->path,
                    sqlite3_errmsg(j->db));
        return FALSE;
    }
    return TRUE;
}

static char *
col_text(sqlite3_stmt *st, int i)
{
    const unsigned char *t = sqlite3_column_text(st, i);
    return t ? g_strdup((const char *)t) : NULL;
}

/* ---- open / reconcile ------------------------------------------------------------ */

void
host_journal_close(HostJournal *j)
{
    if (!j)
        return;
    sqlite3_close(j->db);
    g_mutex_clear(&j->lock);
    g_free(j->path);
    g_free(j);
}

HostJournal *
host_journal_open(const char *state_dir, GError **error)
{
    g_autoptr(HostJournal) j = g_new0(HostJournal, 1);

    g_mutex_init(&j->lock);
    if (g_mkdir_with_parents(state_dir, 0700) != 0) {
        int e = errno;
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_PERMISSION,
                    "cannot create state directory %s: %s", state_dir, g_strerror(e));
        return NULL;
    }
    j->path = g_build_filename(state_dir, "journal.db", NULL);
    if (sqlite3_open_v2(j->path, &j->db,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX, NULL)
        != SQLITE_OK) {
        db_fail(j, "open", error);
        return NULL;
    }
    sqlite3_busy_timeout(j->db, 15000);
    if (!exec(j,
              "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; "
              "PRAGMA foreign_keys=ON;",
              error)
        || !exec(j, schema, error))
        return NULL;
    if (host_journal_reconcile(j, error) < 0)
        return NULL;
    return g_steal_pointer(&j);
}

static gboolean
insert_event_locked(HostJournal *j, gint64 id, const char *kind, const char *level, const char *key,
                    const char *value, GError **error)
{
    sqlite3_stmt *st = prepare(j,
                               "INSERT INTO events(job, time, kind, level, key, value) "
                               "VALUES (?, ?, ?, ?, ?, ?)",
                               error);
    if (!st)
        return FALSE;
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_int64(st, 2, g_get_real_time() / G_USEC_PER_SEC);
    bind_text(st, 3, kind);
    bind_text(st, 4, level);
    bind_text(st, 5, key);
    bind_text(st, 6, value);
    return step_done(j, st, error);
}

static gboolean
mark_interrupted_locked(HostJournal *j, gint64 id, gint64 pid, const char *phase, GError **error)
{
    g_autofree char *msg = g_strdup_printf("the vmshift process (pid %" G_GINT64_FORMAT
                                           ") ended during phase %s; run "
                                           "'vmshift job repair %" G_GINT64_FORMAT "'",
                                           pid, phase ? phase : "none", id);
    sqlite3_stmt *st = prepare(j,
                               "UPDATE jobs SET state='interrupted', ended=?, "
                               "error_code='interrupted', error_message=? WHERE id=?",
                               error);
    if (!st)
        return FALSE;
    sqlite3_bind_int64(st, 1, g_get_real_time() / G_USEC_PER_SEC);
    bind_text(st, 2, msg);
    sqlite3_bind_int64(st, 3, id);
    if (!step_done(j, st, error))
        return FALSE;
    return insert_event_locked(j, id, "state", "warning", "interrupted", msg, error);
}

int
host_journal_reconcile(HostJournal *j, GError **error)
{
    g_auto(JournalTxn) txn = { 0 };
    sqlite3_stmt *st;
    int n = 0;
    g_autoptr(GArray) ids = g_array_new(FALSE, FALSE, sizeof(gint64));
    g_autoptr(GArray) pids = g_array_new(FALSE, FALSE, sizeof(gint64));
    g_autoptr(GPtrArray) phases = g_ptr_array_new_with_free_func(g_free);

    if (!txn_begin(&txn, j, error))
        return -1;
    st = prepare(j,
                 "SELECT id, pid, pid_start, phase FROM jobs "
                 "WHERE state IN ('queued','running')",
                 error);
    if (!st)
        return -1;
    while (sqlite3_step(st) == SQLITE_ROW) {
        gint64 id = sqlite3_column_int64(st, 0), pid = sqlite3_column_int64(st, 1);
        const char *ident = (const char *)sqlite3_column_text(st, 2);
        if (!host_process_alive(pid, ident)) {
            g_array_append_val(ids, id);
            g_array_append_val(pids, pid);
            g_ptr_array_add(phases, col_text(st, 3));
        }
    }
    sqlite3_finalize(st);
    for (guint i = 0; i < ids->len; i++) {
        if (!mark_interrupted_locked(j, g_array_index(ids, gint64, i),
                                     g_array_index(pids, gint64, i), g_ptr_array_index(phases, i),
                                     error))
            return -1;
        n++;
    }
    if (!txn_commit(&txn, error))
        return -1;
    return n;
}

/* ---- jobs ------------------------------------------------------------------------- */

/* With the lock and a write transaction held: fails with CONFLICT when a live
 * job of another process (or this one) holds backend:vm. */
static gboolean
check_vm_free_locked(HostJournal *j, const char *backend, const char *vm, gint64 except,
                     GError **error)
{
    sqlite3_stmt *st = prepare(j,
                               "SELECT id, kind, phase, pid, pid_start FROM jobs "
                               "WHERE backend=? AND vm=? AND id<>? "
                               "AND state IN ('queued','running')",
                               error);
    gboolean ok = TRUE;

    if (!st)
        return FALSE;
    bind_text(st, 1, backend);
    bind_text(st, 2, vm);
    sqlite3_bind_int64(st, 3, except);
    while (ok && sqlite3_step(st) == SQLITE_ROW) {
        gint64 id = sqlite3_column_int64(st, 0);
        gint64 pid = sqlite3_column_int64(st, 3);
        if (host_process_alive(pid, (const char *)sqlite3_column_text(st, 4))) {
            g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_CONFLICT,
                        "VM '%s' (backend '%s') is busy with job %" G_GINT64_FORMAT
                        " (%s, phase %s, pid %" G_GINT64_FORMAT ")",
                        vm, backend, id, sqlite3_column_text(st, 1), sqlite3_column_text(st, 2),
                        pid);
            ok = FALSE;
        }
    }
    sqlite3_finalize(st);
    return ok;
}

gint64
host_journal_begin_job(HostJournal *j, const char *kind, const char *backend, const char *vm,
                       const char *spec_json, const char *source_host, const char *source_path,
                       GError **error)
{
    g_autofree char *ident = host_process_identity(getpid());
    gint64 now = g_get_real_time() / G_USEC_PER_SEC;
    g_auto(JournalTxn) txn = { 0 };
    gint64 id;
    sqlite3_stmt *st;

    if (!txn_begin(&txn, j, error) || !check_vm_free_locked(j, backend, vm, 0, error))
        return 0;
    st = prepare(j,
                 "INSERT INTO jobs(kind, backend, vm, spec, state, phase, pid, pid_start,"
                 " created, started, source_host, source_path, results) "
                 "VALUES (?, ?, ?, ?, 'running', 'none', ?, ?, ?, ?, ?, ?, '{}')",
                 error);
    if (!st)
        return 0;
    bind_text(st, 1, kind);
    bind_text(st, 2, backend);
    bind_text(st, 3, vm);
    bind_text(st, 4, spec_json);
    sqlite3_bind_int64(st, 5, getpid());
    bind_text(st, 6, ident);
    sqlite3_bind_int64(st, 7, now);
    sqlite3_bind_int64(st, 8, now);
    bind_text(st, 9, source_host);
    bind_text(st, 10, source_path);
    if (!step_done(j, st, error))
        return 0;
    id = sqlite3_last_insert_rowid(j->db);
    if (!insert_event_locked(j, id, "state", "info", "running", kind, error)
        || !txn_commit(&txn, error))
        return 0;
    return id;
}

gboolean
host_journal_take_job(HostJournal *j, gint64 id, GError **error)
{
    g_autofree char *ident = host_process_identity(getpid());
    g_autoptr(HostJobRecord) r = NULL;
    g_auto(JournalTxn) txn = { 0 };
    sqlite3_stmt *st;

    if (!txn_begin(&txn, j, error))
        return FALSE;
    /* host_journal_get() takes the lock itself; the transaction stays open */
    g_mutex_unlock(&j->lock);
    txn.locked = FALSE;
    r = host_journal_get(j, id, error);
    g_mutex_lock(&j->lock);
    txn.locked = TRUE;
    if (!r)
        return FALSE;
    if (!strcmp(r->state, "running") || !strcmp(r->state, "queued")) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_CONFLICT,
                    "job %" G_GINT64_FORMAT " is still running (pid %" G_GINT64_FORMAT ")", id,
                    r->pid);
        return FALSE;
    }
    if (!check_vm_free_locked(j, r->backend, r->vm, id, error))
        return FALSE;
    st = prepare(j,
                 "UPDATE jobs SET state='running', pid=?, pid_start=?, ended=NULL, "
                 "cancel_requested=0 WHERE id=?",
                 error);
    if (!st)
        return FALSE;
    sqlite3_bind_int64(st, 1, getpid());
    bind_text(st, 2, ident);
    sqlite3_bind_int64(st, 3, id);
    return step_done(j, st, error)
           && insert_event_locked(j, id, "state", "info", "repair", "repair started", error)
           && txn_commit(&txn, error);
}

gboolean
host_journal_set_phase(HostJournal *j, gint64 id, const char *phase, GError **error)
{
    g_auto(JournalTxn) txn = { 0 };
    sqlite3_stmt *st;

    if (!txn_begin(&txn, j, error))
        return FALSE;
    st = prepare(j, "UPDATE jobs SET phase=? WHERE id=?", error);
    if (!st)
        return FALSE;
    bind_text(st, 1, phase);
    sqlite3_bind_int64(st, 2, id);
    return step_done(j, st, error)
           && insert_event_locked(j, id, "phase", "info", "phase", phase, error)
           && txn_commit(&txn, error);
}

gboolean
host_journal_add_event(HostJournal *j, gint64 id, const char *kind, const char *level,
                       const char *key, const char *value, GError **error)
{
    gboolean ok;
    g_mutex_lock(&j->lock);
    ok = insert_event_locked(j, id, kind, level, key, value, error);
    g_mutex_unlock(&j->lock);
    return ok;
}

gboolean
host_journal_update_progress(HostJournal *j, gint64 id, double percent, guint64 done, guint64 total,
                             const char *loc_host, const char *loc_detail, const char *results_json,
                             GError **error)
{
    sqlite3_stmt *st;
    gboolean ok = FALSE;

    g_mutex_lock(&j->lock);
    st = prepare(j,
                 "UPDATE jobs SET percent=?, bytes_done=?, bytes_total=?, "
                 "location_host=COALESCE(?, location_host), "
                 "location_detail=COALESCE(?, location_detail), "
                 "results=COALESCE(?, results) WHERE id=?",
                 error);
    if (st) {
        sqlite3_bind_double(st, 1, percent);
        sqlite3_bind_int64(st, 2, (sqlite3_int64)done);
        sqlite3_bind_int64(st, 3, (sqlite3_int64)total);
        bind_text(st, 4, loc_host);
        bind_text(st, 5, loc_detail);
        bind_text(st, 6, results_json);
        sqlite3_bind_int64(st, 7, id);
        ok = step_done(j, st, error);
    }
    g_mutex_unlock(&j->lock);
    return ok;
}

static const char *
error_code_string(const GError *e)
{
    if (g_error_matches(e, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        return "cancelled";
    if (e->domain == VMSHIFT_ERROR)
        return vmshift_error_code_name(e->code);
    return "failed";
}

gboolean
host_journal_finish(HostJournal *j, gint64 id, const char *state, const GError *failure,
                    const char *loc_host, const char *loc_detail, const char *results_json,
                    GError **error)
{
    g_auto(JournalTxn) txn = { 0 };
    sqlite3_stmt *st;

    if (!txn_begin(&txn, j, error))
        return FALSE;
    st = prepare(j,
                 "UPDATE jobs SET state=?, ended=?, error_code=?, error_message=?, "
                 "location_host=COALESCE(?, location_host), "
                 "location_detail=COALESCE(?, location_detail), "
                 "results=COALESCE(?, results) WHERE id=?",
                 error);
    if (!st)
        return FALSE;
    bind_text(st, 1, state);
    sqlite3_bind_int64(st, 2, g_get_real_time() / G_USEC_PER_SEC);
    bind_text(st, 3, failure ? error_code_string(failure) : NULL);
    bind_text(st, 4, failure ? failure->message : NULL);
    bind_text(st, 5, loc_host);
    bind_text(st, 6, loc_detail);
    bind_text(st, 7, results_json);
    sqlite3_bind_int64(st, 8, id);
    return step_done(j, st, error)
           && insert_event_locked(j, id, "state", failure ? "error" : "info", state,
                                  failure ? failure->message : NULL, error)
           && txn_commit(&txn, error);
}

gboolean
host_journal_request_cancel(HostJournal *j, gint64 id, GError **error)
{
    g_autoptr(HostJobRecord) r = host_journal_get(j, id, error);
    sqlite3_stmt *st;
    gboolean ok;

    if (!r)
        return FALSE;
    if (strcmp(r->state, "running") != 0 && strcmp(r->state, "queued") != 0) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_CONFLICT,
                    "job %" G_GINT64_FORMAT " is not running (state %s)", id, r->state);
        return FALSE;
    }
    g_mutex_lock(&j->lock);
    st = prepare(j, "UPDATE jobs SET cancel_requested=1 WHERE id=?", error);
    ok = st != NULL;
    if (ok) {
        sqlite3_bind_int64(st, 1, id);
        ok = step_done(j, st, error);
    }
    if (ok)
        ok = insert_event_locked(j, id, "cancel", "warning", "cancel", "cancellation requested",
                                 error);
    g_mutex_unlock(&j->lock);
    return ok;
}

gboolean
host_journal_cancel_requested(HostJournal *j, gint64 id)
{
    sqlite3_stmt *st;
    gboolean yes = FALSE;

    g_mutex_lock(&j->lock);
    st = prepare(j, "SELECT cancel_requested FROM jobs WHERE id=?", NULL);
    if (st) {
        sqlite3_bind_int64(st, 1, id);
        if (sqlite3_step(st) == SQLITE_ROW)
            yes = sqlite3_column_int(st, 0) != 0;
        sqlite3_finalize(st);
    }
    g_mutex_unlock(&j->lock);
    return yes;
}

/* ---- reading -------------------------------------------------------------------------- */

#define JOB_COLUMNS                                                                        \
    "id, kind, backend, vm, spec, state, phase, pid, pid_start, created, started, ended, " \
    "error_code, error_message, location_host, location_detail, results, source_host, "    \
    "source_path, percent, bytes_done, bytes_total, cancel_requested"

static HostJobRecord *
read_job(sqlite3_stmt *st)
{
    HostJobRecord *r = g_new0(HostJobRecord, 1);
    r->id = sqlite3_column_int64(st, 0);
    r->kind = col_text(st, 1);
    r->backend = col_text(st, 2);
    r->vm = col_text(st, 3);
    r->spec = col_text(st, 4);
    r->state = col_text(st, 5);
    r->phase = col_text(st, 6);
    r->pid = sqlite3_column_int64(st, 7);
    r->pid_start = col_text(st, 8);
    r->created = sqlite3_column_int64(st, 9);
    r->started = sqlite3_column_int64(st, 10);
    r->ended = sqlite3_column_int64(st, 11);
    r->error_code = col_text(st, 12);
    r->error_message = col_text(st, 13);
    r->location_host = col_text(st, 14);
    r->location_detail = col_text(st, 15);
    r->results = col_text(st, 16);
    r->source_host = col_text(st, 17);
    r->source_path = col_text(st, 18);
    r->percent = sqlite3_column_double(st, 19);
    r->bytes_done = sqlite3_column_int64(st, 20);
    r->bytes_total = sqlite3_column_int64(st, 21);
    r->cancel_requested = sqlite3_column_int(st, 22) != 0;
    return r;
}

void
host_job_record_free(HostJobRecord *r)
{
    if (!r)
        return;
    g_free(r->kind);
    g_free(r->backend);
    g_free(r->vm);
    g_free(r->spec);
    g_free(r->state);
    g_free(r->phase);
    g_free(r->pid_start);
    g_free(r->error_code);
    g_free(r->error_message);
    g_free(r->location_host);
    g_free(r->location_detail);
    g_free(r->results);
    g_free(r->source_host);
    g_free(r->source_path);
    g_free(r);
}

void
host_event_record_free(HostEventRecord *e)
{
    if (!e)
        return;
    g_free(e->kind);
    g_free(e->level);
    g_free(e->key);
    g_free(e->value);
    g_free(e);
}

HostJobRecord *
host_journal_get(HostJournal *j, gint64 id, GError **error)
{
    sqlite3_stmt *st;
    HostJobRecord *r = NULL;

    g_mutex_lock(&j->lock);
    st = prepare(j, "SELECT " JOB_COLUMNS " FROM jobs WHERE id=?", error);
    if (st) {
        sqlite3_bind_int64(st, 1, id);
        if (sqlite3_step(st) == SQLITE_ROW)
            r = read_job(st);
        else
            g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_NOT_FOUND,
                        "no job %" G_GINT64_FORMAT " in %s", id, j->path);
        sqlite3_finalize(st);
    }
    g_mutex_unlock(&j->lock);
    return r;
}

GPtrArray *
host_journal_list(HostJournal *j, GError **error)
{
    return host_journal_list_filtered(j, NULL, error);
}

GPtrArray *
host_journal_list_filtered(HostJournal *j, const HostJobFilter *f, GError **error)
{
    static const HostJobFilter none = { 0 };
    sqlite3_stmt *st;
    GPtrArray *out = NULL;

    if (!f)
        f = &none;
    g_mutex_lock(&j->lock);
    st = prepare(j,
                 "SELECT " JOB_COLUMNS " FROM jobs WHERE (?1 IS NULL OR state=?1)"
                 " AND (?2 IS NULL OR backend=?2) AND (?3 IS NULL OR vm=?3)"
                 " AND (?4 IS NULL OR COALESCE(created, started)>=?4) ORDER BY id DESC",
                 error);
    if (st) {
        bind_text(st, 1, f->state);
        bind_text(st, 2, f->backend);
        bind_text(st, 3, f->vm);
        if (f->since)
            sqlite3_bind_int64(st, 4, f->since);
        out = g_ptr_array_new_with_free_func((GDestroyNotify)host_job_record_free);
        while (sqlite3_step(st) == SQLITE_ROW)
            g_ptr_array_add(out, read_job(st));
        sqlite3_finalize(st);
    }
    g_mutex_unlock(&j->lock);
    return out;
}

/* The jobs prune may delete: ended before ?1, and not running, queued or
 * interrupted (an interrupted job's VM may still need `job repair`). */
#define PRUNABLE                                                                \
    "SELECT id FROM jobs WHERE state NOT IN ('running','queued','interrupted')" \
    " AND COALESCE(ended, created) < ?1"

gint64
host_journal_prune(HostJournal *j, gint64 before, GError **error)
{
    static const char *const deletes[] = { "DELETE FROM events WHERE job IN (" PRUNABLE ")",
                                           "DELETE FROM jobs WHERE id IN (" PRUNABLE ")" };
    g_auto(JournalTxn) t = { 0 };
    sqlite3_stmt *st;
    gint64 n;

    if (!txn_begin(&t, j, error))
        return -1;
    for (guint i = 0; i < G_N_ELEMENTS(deletes); i++) {
        st = prepare(j, deletes[i], error);
        if (!st)
            return -1;
        sqlite3_bind_int64(st, 1, before);
        if (!step_done(j, st, error))
            return -1;
    }
    n = sqlite3_changes(j->db);
    if (!txn_commit(&t, error))
        return -1;
    return n;
}

HostJobRecord *
host_journal_last_migration(HostJournal *j, const char *backend, const char *vm, GError **error)
{
    sqlite3_stmt *st;
    HostJobRecord *r = NULL;

    g_mutex_lock(&j->lock);
    st = prepare(j,
                 "SELECT " JOB_COLUMNS " FROM jobs WHERE vm=? "
                 "AND (?2 IS NULL OR backend=?2) AND state='succeeded' "
                 "AND kind IN ('migrate','migrate-storage') ORDER BY id DESC LIMIT 1",
                 error);
    if (st) {
        bind_text(st, 1, vm);
        bind_text(st, 2, backend);
        if (sqlite3_step(st) == SQLITE_ROW)
            r = read_job(st);
        sqlite3_finalize(st);
    }
    g_mutex_unlock(&j->lock);
    return r;
}

GPtrArray *
host_journal_events(HostJournal *j, gint64 id, GError **error)
{
    sqlite3_stmt *st;
    GPtrArray *out = NULL;

    g_mutex_lock(&j->lock);
    st = prepare(j,
                 "SELECT seq, time, kind, level, key, value FROM events WHERE job=? "
                 "ORDER BY seq",
                 error);
    if (st) {
        sqlite3_bind_int64(st, 1, id);
        out = g_ptr_array_new_with_free_func((GDestroyNotify)host_event_record_free);
        while (sqlite3_step(st) == SQLITE_ROW) {
            HostEventRecord *e = g_new0(HostEventRecord, 1);
            e->seq = sqlite3_column_int64(st, 0);
            e->time = sqlite3_column_int64(st, 1);
            e->kind = col_text(st, 2);
            e->level = col_text(st, 3);
            e->key = col_text(st, 4);
            e->value = col_text(st, 5);
            g_ptr_array_add(out, e);
        }
        sqlite3_finalize(st);
    }
    g_mutex_unlock(&j->lock);
    return out;
}

GHashTable *
host_journal_saved(HostJournal *j, gint64 id, GError **error)
{
    g_autoptr(GPtrArray) ev = host_journal_events(j, id, error);
    GHashTable *saved;

    if (!ev)
        return NULL;
    saved = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    for (guint i = 0; i < ev->len; i++) {
        HostEventRecord *e = g_ptr_array_index(ev, i);
        if (strcmp(e->kind, "save") != 0 || !e->key)
            continue;
        if (e->value)
            g_hash_table_replace(saved, g_strdup(e->key), g_strdup(e->value));
        else
            g_hash_table_remove(saved, e->key);
    }
    return saved;
}

json_object *
host_json_job(const HostJobRecord *r)
{
    json_object *o = json_object_new_object();
    json_object *results = r->results ? json_tokener_parse(r->results) : NULL;
    json_object *spec = r->spec ? json_tokener_parse(r->spec) : NULL;

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
    {
        json_object *loc = json_object_new_object();
        json_object_object_add(loc, "host", host_json_string(r->location_host));
        json_object_object_add(loc, "detail", host_json_string(r->location_detail));
        json_object_object_add(o, "location", loc);
    }
    json_object_object_add(o, "source_host", host_json_string(r->source_host));
    json_object_object_add(o, "source_path", host_json_string(r->source_path));
    json_object_object_add(o, "cancel_requested", json_object_new_boolean(r->cancel_requested));
    json_object_object_add(o, "spec", spec);
    json_object_object_add(o, "results", results ? results : json_object_new_object());
    return o;
}
