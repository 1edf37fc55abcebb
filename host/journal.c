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
#include <glib/gstdio.h>
#include <signal.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

#include "host/host.h"

struct HostJournal {
    sqlite3 *db;
    GMutex lock;
    char *path;
    gboolean read_only; /* opened for reading: nothing is written */
    int swept;          /* jobs the open marked interrupted */
};

/* The journal's layout, one step per version: step i takes a journal of
 * version i (PRAGMA user_version) to version i + 1, in one transaction
 * with the new user_version. A released step is never edited: a change is
 * a new step at the end (tests/unit/test-host-journal.c opens a journal of
 * every earlier version). */
static const char *const migrations[] = {
    /* 0 -> 1: the first layout (IF NOT EXISTS: journals of the first
     * releases set user_version 1 after creating these) */
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
    "CREATE INDEX IF NOT EXISTS jobs_vm ON jobs(backend, vm, state);",
    /* 1 -> 2: whether the location was reported by the hypervisor (0: the
     * VM may have moved since, the location is unknown until a backend is
     * asked), and a note on how the job ended (a cancel too late) (#13) */
    "ALTER TABLE jobs ADD COLUMN location_verified INTEGER NOT NULL DEFAULT 1;"
    "ALTER TABLE jobs ADD COLUMN note TEXT;",
    /* 2 -> 3: scheduled switchovers (#17): when job @job may switch over,
     * whether the plugin copies ahead (copy-ahead) or the host starts the
     * move at that time (start-at), and where the wait is (host/schedule.c) */
    "CREATE TABLE IF NOT EXISTS schedules ("
    " job INTEGER PRIMARY KEY REFERENCES jobs(id) ON DELETE CASCADE,"
    " switchover_at INTEGER NOT NULL, mode TEXT NOT NULL,"
    " state TEXT NOT NULL DEFAULT 'scheduled', changed INTEGER);",
};

int
host_journal_schema_version(void)
{
    return (int)G_N_ELEMENTS(migrations);
}

/* ---- helpers ------------------------------------------------------------------- */

/* SQLite's error @rc as one line naming the journal; a damaged file says
 * what to do about it. */
static void
set_db_error(HostJournal *j, int rc, const char *what, const char *msg, GError **error)
{
    int primary = rc & 0xff;

    if (primary == SQLITE_CORRUPT || primary == SQLITE_NOTADB)
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_FAILED,
                    "journal %s is damaged (%s): keep a copy, then restore it from a backup or "
                    "move it aside to start a new journal; 'vmshift journal check' tells more",
                    j->path, msg);
    else if (primary == SQLITE_READONLY)
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_PERMISSION,
                    "journal %s is read-only (%s): only 'jobs' and 'job show' work without "
                    "write access",
                    j->path, msg);
    else if (what)
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_FAILED, "journal %s: %s: %s", j->path, what,
                    msg);
    else
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_FAILED, "journal %s: %s", j->path, msg);
}

static gboolean
db_fail(HostJournal *j, const char *what, GError **error)
{
    set_db_error(j, sqlite3_extended_errcode(j->db), what, sqlite3_errmsg(j->db), error);
    return FALSE;
}

static gboolean
exec(HostJournal *j, const char *sql, GError **error)
{
    char *msg = NULL;
    int rc = sqlite3_exec(j->db, sql, NULL, NULL, &msg);

    if (rc != SQLITE_OK) {
        set_db_error(j, rc, NULL, msg ? msg : sqlite3_errmsg(j->db), error);
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
    if (rc != SQLITE_DONE && rc != SQLITE_ROW)
        return db_fail(j, NULL, error);
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

static guint32
be32(const guchar *p)
{
    return (guint32)p[0] << 24 | (guint32)p[1] << 16 | (guint32)p[2] << 8 | p[3];
}

/* Refuses, before SQLite sees it, a journal file SQLite would take for a
 * new database (0 bytes: history and interrupted jobs gone without a word)
 * or that is shorter than its own header says (cut by a full disk, a
 * copy). A missing file is a new journal. The page count in the header is
 * checked only without a WAL holding frames (pages may live there). */
static gboolean
preflight(const char *path, GError **error)
{
    static const char what_to_do[] =
        "restore it from a backup, or move it aside to start a new journal";
    g_autofree char *wal = g_strconcat(path, "-wal", NULL);
    guchar hdr[100];
    GStatBuf st, wst;
    guint64 page, pages;
    FILE *f;
    size_t got;

    if (g_stat(path, &st) != 0)
        return TRUE;
    if (!S_ISREG(st.st_mode)) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_CONFIG, "journal %s is not a regular file",
                    path);
        return FALSE;
    }
    if (st.st_size == 0) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_FAILED,
                    "journal %s is empty (0 bytes), its jobs are lost: %s", path, what_to_do);
        return FALSE;
    }
    if (!(f = fopen(path, "rb"))) {
        int e = errno;
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_PERMISSION, "cannot read journal %s: %s",
                    path, g_strerror(e));
        return FALSE;
    }
    got = fread(hdr, 1, sizeof hdr, f);
    fclose(f);
    if (got < sizeof hdr || memcmp(hdr, "SQLite format 3", 16) != 0) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_FAILED,
                    "journal %s is not an SQLite database (truncated or overwritten): %s", path,
                    what_to_do);
        return FALSE;
    }
    if (g_stat(wal, &wst) == 0 && wst.st_size > 0)
        return TRUE;
    page = hdr[16] << 8 | hdr[17];
    if (page == 1)
        page = 65536;
    pages = be32(hdr + 28);
    /* the header's page count is valid when its change counter matches */
    if (pages && be32(hdr + 24) == be32(hdr + 92) && (guint64)st.st_size < pages * page) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_FAILED,
                    "journal %s is truncated (%" G_GUINT64_FORMAT " of %" G_GUINT64_FORMAT
                    " bytes): %s",
                    path, (guint64)st.st_size, pages * page, what_to_do);
        return FALSE;
    }
    return TRUE;
}

static int
user_version(HostJournal *j, GError **error)
{
    sqlite3_stmt *st = prepare(j, "PRAGMA user_version", error);
    int v = -1;

    if (!st)
        return -1;
    if (sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int(st, 0);
    else
        db_fail(j, "reading the schema version", error);
    sqlite3_finalize(st);
    return v;
}

/* Runs the steps from the journal's version to the newest, each in its own
 * transaction that first re-reads the version (another process may have
 * upgraded it meanwhile). */
static gboolean
upgrade(HostJournal *j, GError **error)
{
    for (int to = 1; to <= host_journal_schema_version(); to++) {
        g_autofree char *sql = g_strdup_printf("%s PRAGMA user_version = %d;", migrations[to - 1],
                                               to);
        int v;

        if (!exec(j, "BEGIN IMMEDIATE", error))
            return FALSE;
        v = user_version(j, error);
        if (v < 0 || (v < to && !exec(j, sql, error)) || !exec(j, "COMMIT", error)) {
            exec(j, "ROLLBACK", NULL);
            g_prefix_error(error, "upgrading the journal to schema version %d: ", to);
            return FALSE;
        }
    }
    return TRUE;
}

gboolean
host_journal_build_schema(const char *path, int version, GError **error)
{
    g_autoptr(HostJournal) j = g_new0(HostJournal, 1);

    g_mutex_init(&j->lock);
    j->path = g_strdup(path);
    if (sqlite3_open_v2(path, &j->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL)
        != SQLITE_OK)
        return db_fail(j, "open", error);
    for (int to = 1; to <= version && to <= host_journal_schema_version(); to++) {
        g_autofree char *sql = g_strdup_printf("BEGIN; %s PRAGMA user_version = %d; COMMIT;",
                                               migrations[to - 1], to);
        if (!exec(j, sql, error))
            return FALSE;
    }
    return TRUE;
}

/* A new journal appears whole or not at all (built under a temporary name,
 * then linked into place; EEXIST: another vmshift's was first, and is used),
 * so a vmshift starting at the same moment never sees a 0-byte file. */
static gboolean
create_new(const char *path, GError **error)
{
    g_autofree char *tmp = g_strdup_printf("%s.new.%d", path, (int)getpid());
    g_autoptr(HostJournal) j = g_new0(HostJournal, 1);
    gboolean ok;

    g_mutex_init(&j->lock);
    j->path = g_strdup(tmp);
    g_unlink(tmp);
    ok = host_journal_build_schema(tmp, host_journal_schema_version(), error)
         && (sqlite3_open_v2(tmp, &j->db, SQLITE_OPEN_READWRITE, NULL) == SQLITE_OK
                 ? exec(j, "PRAGMA journal_mode=WAL;", error)
                 : db_fail(j, "create", error));
    sqlite3_close(g_steal_pointer(&j->db)); /* the last connection: WAL merged */
    if (ok && link(tmp, path) != 0 && errno != EEXIST) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_PERMISSION, "cannot create journal %s: %s",
                    path, g_strerror(errno));
        ok = FALSE;
    }
    g_unlink(tmp);
    return ok;
}

/* Opens the database file: read-write, or read-only (a WAL journal in a
 * directory we may not write, with no -shm file of a writer, as immutable:
 * SQLite could not create its -shm). */
static gboolean
open_db(HostJournal *j, const char *state_dir, GError **error)
{
    g_autofree char *shm = g_strconcat(j->path, "-shm", NULL);
    int flags = SQLITE_OPEN_FULLMUTEX;
    g_autofree char *uri = NULL;

    if (!j->read_only)
        flags |= SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
    else if (access(state_dir, W_OK) == 0 || g_file_test(shm, G_FILE_TEST_EXISTS))
        flags |= SQLITE_OPEN_READONLY;
    else {
        g_autofree char *u = g_filename_to_uri(j->path, NULL, NULL);
        if (u)
            uri = g_strconcat(u, "?immutable=1", NULL);
        flags |= SQLITE_OPEN_READONLY | SQLITE_OPEN_URI;
    }
    if (sqlite3_open_v2(uri ? uri : j->path, &j->db, flags, NULL) != SQLITE_OK)
        return db_fail(j, "open", error);
    sqlite3_busy_timeout(j->db, 15000);
    if (j->read_only)
        return TRUE;
    return exec(j, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;",
                error);
}

/* The schema version is one this vmshift knows (upgraded when older and
 * writable), and the jobs table reads. */
static gboolean
check_schema(HostJournal *j, GError **error)
{
    int v = user_version(j, error), newest = host_journal_schema_version();
    sqlite3_stmt *st;

    if (v < 0)
        return FALSE;
    if (v > newest) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_FAILED,
                    "journal %s was written by a newer vmshift (schema version %d, this one "
                    "knows up to %d): use that newer vmshift",
                    j->path, v, newest);
        return FALSE;
    }
    if (v < newest && j->read_only) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_PERMISSION,
                    "journal %s has schema version %d and is read-only: run vmshift once with "
                    "write access to upgrade it to version %d",
                    j->path, v, newest);
        return FALSE;
    }
    if (v < newest && !upgrade(j, error))
        return FALSE;
    /* a damaged file says so now, not halfway through a job */
    st = prepare(j, "SELECT count(*) FROM jobs", error);
    if (!st)
        return FALSE;
    return step_done(j, st, error);
}

static HostJournal *
journal_open(const char *state_dir, gboolean for_reading, GError **error)
{
    g_autoptr(HostJournal) j = g_new0(HostJournal, 1);

    g_mutex_init(&j->lock);
    if (!g_file_test(state_dir, G_FILE_TEST_IS_DIR) && g_mkdir_with_parents(state_dir, 0700) != 0) {
        int e = errno;
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_PERMISSION,
                    "cannot create state directory %s: %s", state_dir, g_strerror(e));
        return NULL;
    }
    j->path = g_build_filename(state_dir, "journal.db", NULL);
    if (!g_file_test(j->path, G_FILE_TEST_EXISTS) && access(state_dir, W_OK) == 0
        && !create_new(j->path, error))
        return NULL;
    if (!preflight(j->path, error))
        return NULL;
    j->read_only = access(state_dir, W_OK) != 0
                   || (access(j->path, F_OK) == 0 && access(j->path, W_OK) != 0);
    if (j->read_only && !g_file_test(j->path, G_FILE_TEST_EXISTS)) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_PERMISSION,
                    "no journal in %s, and the directory is not writable", state_dir);
        return NULL;
    }
    if (j->read_only && !for_reading) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_PERMISSION,
                    "journal %s is read-only here: this command writes to it (only 'jobs' and "
                    "'job show' work without write access)",
                    j->path);
        return NULL;
    }
    if (!open_db(j, state_dir, error) || !check_schema(j, error))
        return NULL;
    if (!j->read_only && (j->swept = host_journal_reconcile(j, error)) < 0)
        return NULL;
    return g_steal_pointer(&j);
}

HostJournal *
host_journal_open(const char *state_dir, GError **error)
{
    return journal_open(state_dir, FALSE, error);
}

HostJournal *
host_journal_open_read(const char *state_dir, GError **error)
{
    return journal_open(state_dir, TRUE, error);
}

gboolean
host_journal_read_only(HostJournal *j)
{
    return j->read_only;
}

int
host_journal_swept(HostJournal *j)
{
    return j->swept;
}

const char *
host_journal_path(HostJournal *j)
{
    return j->path;
}

/* host/schedule.c: the connection and its lock, for the schedule table */
sqlite3 *
host_journal_db(HostJournal *j, GMutex **lock)
{
    *lock = &j->lock;
    return j->db;
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
                               "error_code='interrupted', error_message=?, "
                               /* the VM may have moved since the last report */
                               "location_verified=CASE WHEN phase IN ('none','validate','done') "
                               "THEN location_verified ELSE 0 END WHERE id=?",
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
    return host_journal_set_phase_at(j, id, phase, NULL, NULL, FALSE, error);
}

gboolean
host_journal_set_phase_at(HostJournal *j, gint64 id, const char *phase, const char *loc_host,
                          const char *loc_detail, gboolean location_unknown, GError **error)
{
    g_auto(JournalTxn) txn = { 0 };
    sqlite3_stmt *st;

    if (!txn_begin(&txn, j, error))
        return FALSE;
    st = prepare(j,
                 "UPDATE jobs SET phase=?1, "
                 "location_host=CASE WHEN ?4 THEN NULL ELSE COALESCE(?2, location_host) END, "
                 "location_detail=CASE WHEN ?4 THEN NULL ELSE COALESCE(?3, location_detail) END, "
                 "location_verified=CASE WHEN ?4 THEN 0 WHEN ?2 IS NOT NULL THEN 1 "
                 "ELSE location_verified END WHERE id=?5",
                 error);
    if (!st)
        return FALSE;
    bind_text(st, 1, phase);
    bind_text(st, 2, loc_host);
    bind_text(st, 3, loc_detail);
    sqlite3_bind_int(st, 4, location_unknown ? 1 : 0);
    sqlite3_bind_int64(st, 5, id);
    return step_done(j, st, error)
           && insert_event_locked(j, id, "phase", "info", "phase", phase, error)
           && (!location_unknown
               || insert_event_locked(j, id, "location", "info", "location",
                                      "unknown until the backend reports it", error))
           && txn_commit(&txn, error);
}

gboolean
host_journal_set_location(HostJournal *j, gint64 id, const char *loc_host, const char *loc_detail,
                          const char *event, GError **error)
{
    g_auto(JournalTxn) txn = { 0 };
    sqlite3_stmt *st;

    if (!txn_begin(&txn, j, error))
        return FALSE;
    st = prepare(j,
                 "UPDATE jobs SET location_host=?, location_detail=?, location_verified=1 "
                 "WHERE id=?",
                 error);
    if (!st)
        return FALSE;
    bind_text(st, 1, loc_host);
    bind_text(st, 2, loc_detail);
    sqlite3_bind_int64(st, 3, id);
    return step_done(j, st, error)
           && (!event || insert_event_locked(j, id, "location", "info", "location", event, error))
           && txn_commit(&txn, error);
}

gboolean
host_journal_set_note(HostJournal *j, gint64 id, const char *note, GError **error)
{
    g_auto(JournalTxn) txn = { 0 };
    sqlite3_stmt *st;

    if (!txn_begin(&txn, j, error))
        return FALSE;
    st = prepare(j, "UPDATE jobs SET note=? WHERE id=?", error);
    if (!st)
        return FALSE;
    bind_text(st, 1, note);
    sqlite3_bind_int64(st, 2, id);
    return step_done(j, st, error)
           && insert_event_locked(j, id, "note", "warning", "note", note, error)
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
                 "location_host=COALESCE(?4, location_host), "
                 "location_detail=COALESCE(?5, location_detail), "
                 "location_verified=CASE WHEN ?4 IS NULL THEN location_verified ELSE 1 END, "
                 "results=COALESCE(?6, results) WHERE id=?7",
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
                 "UPDATE jobs SET state=?1, ended=?2, error_code=?3, error_message=?4, "
                 "location_host=COALESCE(?5, location_host), "
                 "location_detail=COALESCE(?6, location_detail), "
                 "location_verified=CASE WHEN ?5 IS NULL THEN location_verified ELSE 1 END, "
                 "results=COALESCE(?7, results) WHERE id=?8",
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

GPtrArray *
host_journal_integrity(HostJournal *j, int *version, GError **error)
{
    g_autoptr(GPtrArray) out = g_ptr_array_new_with_free_func(g_free);
    sqlite3_stmt *st;
    int rc;

    g_mutex_lock(&j->lock);
    *version = user_version(j, error);
    st = *version < 0 ? NULL : prepare(j, "PRAGMA integrity_check", error);
    if (!st) {
        g_mutex_unlock(&j->lock);
        return NULL;
    }
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *line = (const char *)sqlite3_column_text(st, 0);
        if (line && strcmp(line, "ok") != 0)
            g_ptr_array_add(out, g_strdup(line));
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE)
        g_ptr_array_add(out, g_strdup(sqlite3_errmsg(j->db)));
    g_mutex_unlock(&j->lock);
    return g_steal_pointer(&out);
}

/* ---- reading -------------------------------------------------------------------------- */

#define JOB_COLUMNS                                                                        \
    "id, kind, backend, vm, spec, state, phase, pid, pid_start, created, started, ended, " \
    "error_code, error_message, location_host, location_detail, results, source_host, "    \
    "source_path, percent, bytes_done, bytes_total, cancel_requested, location_verified, note"

static HostJobRecord *read_job_row(sqlite3_stmt *st);

/* A record; read-only, a running job whose process is gone shows as the
 * sweep would have marked it. */
static HostJobRecord *
read_job(HostJournal *j, sqlite3_stmt *st)
{
    HostJobRecord *r = read_job_row(st);

    if (j->read_only && (!strcmp(r->state, "running") || !strcmp(r->state, "queued"))
        && !host_process_alive(r->pid, r->pid_start)) {
        g_free(r->state);
        r->state = g_strdup("interrupted");
        if (strcmp(r->phase, "none") && strcmp(r->phase, "validate") && strcmp(r->phase, "done"))
            r->location_verified = FALSE;
    }
    return r;
}

static HostJobRecord *
read_job_row(sqlite3_stmt *st)
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
    r->location_verified = sqlite3_column_int(st, 23) != 0;
    r->note = col_text(st, 24);
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
    g_free(r->note);
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
            r = read_job(j, st);
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

/* SELECT @what with only the conditions @filter sets (jobs_vm serves a backend or VM), in
 * pages when @page (else the page's binds find no parameter: SQLITE_RANGE, ignored). */
static sqlite3_stmt *
prepare_filtered(HostJournal *j, const char *what, const HostJobFilter *filter, gboolean page,
                 GError **error)
{
    const HostJobFilter *f = filter ? filter : &(const HostJobFilter){ 0 };
    g_autofree char *sql = g_strdup_printf("SELECT %s FROM jobs WHERE 1%s%s%s%s%s", what,
                                           f->backend ? " AND backend=?" : "",
                                           f->vm ? " AND vm=?" : "", f->state ? " AND state=?" : "",
                                           f->since ? " AND COALESCE(created, started)>=?" : "",
                                           page ? " ORDER BY id DESC LIMIT ? OFFSET ?" : "");
    const char *texts[] = { f->backend, f->vm, f->state };
    sqlite3_stmt *st;
    int n = 1;

    if (!(st = prepare(j, sql, error)))
        return NULL;
    for (guint i = 0; i < G_N_ELEMENTS(texts); i++)
        if (texts[i])
            bind_text(st, n++, texts[i]);
    if (f->since)
        sqlite3_bind_int64(st, n++, f->since);
    sqlite3_bind_int64(st, n++, f->limit > 0 ? f->limit : -1);
    sqlite3_bind_int64(st, n, MAX(f->offset, 0));
    return st;
}

GPtrArray *
host_journal_list_filtered(HostJournal *j, const HostJobFilter *f, GError **error)
{
    GPtrArray *out = NULL;
    sqlite3_stmt *st;

    g_mutex_lock(&j->lock);
    if ((st = prepare_filtered(j, JOB_COLUMNS, f, TRUE, error))) {
        out = g_ptr_array_new_with_free_func((GDestroyNotify)host_job_record_free);
        while (sqlite3_step(st) == SQLITE_ROW)
            g_ptr_array_add(out, read_job(j, st));
        sqlite3_finalize(st);
    }
    g_mutex_unlock(&j->lock);
    return out;
}

gint64
host_journal_count(HostJournal *j, const HostJobFilter *f, GError **error)
{
    sqlite3_stmt *st;
    gint64 n = -1;

    g_mutex_lock(&j->lock);
    if ((st = prepare_filtered(j, "count(*)", f, FALSE, error)) && sqlite3_step(st) == SQLITE_ROW)
        n = sqlite3_column_int64(st, 0);
    else if (st)
        db_fail(j, "count", error);
    sqlite3_finalize(st);
    g_mutex_unlock(&j->lock);
    return n;
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
