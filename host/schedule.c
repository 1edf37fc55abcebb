/*
 * vmshift host: the journal's schedules table (schema version 3, #17): when
 * a job may switch over, how it waits (copy-ahead: the plugin copies now and
 * holds before its switchover; start-at: the host starts the move at the
 * time) and where the wait is:
 *
 *   scheduled  recorded, the wait has not begun
 *   waiting    the job waits for its time (`jobs`: "waiting for switchover at …")
 *   released   the time came, the switchover went ahead
 *   cancelled  the job was cancelled (or failed) before its time
 *   missed     the time passed while no vmshift ran the job: it was rolled
 *              back, not switched over late (host/jobs.c, run_repair)
 *
 * The rows go with their job (ON DELETE CASCADE: `journal prune`).
 */
#include "config.h"

#include <string.h>

#include "host/host.h"

void
host_schedule_free(HostSchedule *s)
{
    if (!s)
        return;
    g_free(s->mode);
    g_free(s->state);
    g_free(s);
}

static gboolean
fail(sqlite3 *db, const char *path, GError **error)
{
    g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_FAILED, "journal %s: schedules: %s", path,
                sqlite3_errmsg(db));
    return FALSE;
}

/* Runs @st (bound) to its end and finalizes it, under the journal's lock. */
static gboolean
run(HostJournal *j, sqlite3 *db, sqlite3_stmt *st, GError **error)
{
    int rc = sqlite3_step(st);

    sqlite3_finalize(st);
    if (rc != SQLITE_DONE && rc != SQLITE_ROW)
        return fail(db, host_journal_path(j), error);
    return TRUE;
}

gboolean
host_journal_schedule_add(HostJournal *j, gint64 id, gint64 at, const char *mode, GError **error)
{
    GMutex *lock;
    sqlite3 *db = host_journal_db(j, &lock);
    sqlite3_stmt *st = NULL;
    g_autofree char *when = host_format_switchover(at);
    g_autofree char *ev = g_strdup_printf("switchover scheduled at %s (%s)", when, mode);
    gboolean ok;

    g_mutex_lock(lock);
    ok = sqlite3_prepare_v2(db,
                            "INSERT OR REPLACE INTO schedules(job, switchover_at, mode, state, "
                            "changed) VALUES (?, ?, ?, 'scheduled', ?)",
                            -1, &st, NULL)
         == SQLITE_OK;
    if (!ok) {
        fail(db, host_journal_path(j), error);
    } else {
        sqlite3_bind_int64(st, 1, id);
        sqlite3_bind_int64(st, 2, at);
        sqlite3_bind_text(st, 3, mode, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int64(st, 4, g_get_real_time() / G_USEC_PER_SEC);
        ok = run(j, db, st, error);
    }
    g_mutex_unlock(lock);
    return ok && host_journal_add_event(j, id, "schedule", "info", "switchover", ev, error);
}

gboolean
host_journal_schedule_set_state(HostJournal *j, gint64 id, const char *state, const char *event,
                                GError **error)
{
    GMutex *lock;
    sqlite3 *db = host_journal_db(j, &lock);
    sqlite3_stmt *st = NULL;
    gboolean ok;

    g_mutex_lock(lock);
    ok = sqlite3_prepare_v2(db, "UPDATE schedules SET state=?, changed=? WHERE job=?", -1, &st,
                            NULL)
         == SQLITE_OK;
    if (!ok) {
        fail(db, host_journal_path(j), error);
    } else {
        sqlite3_bind_text(st, 1, state, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int64(st, 2, g_get_real_time() / G_USEC_PER_SEC);
        sqlite3_bind_int64(st, 3, id);
        ok = run(j, db, st, error);
    }
    g_mutex_unlock(lock);
    return ok
           && (!event
               || host_journal_add_event(j, id, "schedule", "info", "switchover", event, error));
}

static HostSchedule *
read_row(sqlite3_stmt *st)
{
    HostSchedule *s = g_new0(HostSchedule, 1);

    s->job = sqlite3_column_int64(st, 0);
    s->switchover_at = sqlite3_column_int64(st, 1);
    s->mode = g_strdup((const char *)sqlite3_column_text(st, 2));
    s->state = g_strdup((const char *)sqlite3_column_text(st, 3));
    s->changed = sqlite3_column_int64(st, 4);
    return s;
}

/* Every schedule (@id 0) or job @id's. */
static GPtrArray *
select_schedules(HostJournal *j, gint64 id, GError **error)
{
    GMutex *lock;
    sqlite3 *db = host_journal_db(j, &lock);
    sqlite3_stmt *st = NULL;
    GPtrArray *out = NULL;
    int rc;

    g_mutex_lock(lock);
    if (sqlite3_prepare_v2(db,
                           "SELECT job, switchover_at, mode, state, changed FROM schedules "
                           "WHERE ?1 = 0 OR job = ?1",
                           -1, &st, NULL)
        != SQLITE_OK) {
        fail(db, host_journal_path(j), error);
        g_mutex_unlock(lock);
        return NULL;
    }
    sqlite3_bind_int64(st, 1, id);
    out = g_ptr_array_new_with_free_func((GDestroyNotify)host_schedule_free);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        g_ptr_array_add(out, read_row(st));
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        fail(db, host_journal_path(j), error);
        g_clear_pointer(&out, g_ptr_array_unref);
    }
    g_mutex_unlock(lock);
    return out;
}

HostSchedule *
host_journal_schedule_get(HostJournal *j, gint64 id, GError **error)
{
    g_autoptr(GPtrArray) all = select_schedules(j, id, error);

    if (!all || !all->len)
        return NULL;
    return g_ptr_array_steal_index(all, 0);
}

GHashTable *
host_journal_schedules(HostJournal *j, GError **error)
{
    g_autoptr(GPtrArray) all = select_schedules(j, 0, error);
    GHashTable *out;

    if (!all)
        return NULL;
    out = g_hash_table_new_full(g_int64_hash, g_int64_equal, NULL,
                                (GDestroyNotify)host_schedule_free);
    while (all->len) {
        HostSchedule *s = g_ptr_array_steal_index(all, all->len - 1);
        g_hash_table_replace(out, &s->job, s);
    }
    return out;
}

char *
host_schedule_text(const HostSchedule *s, const char *state)
{
    g_autofree char *when = NULL;
    gboolean live = state && (!strcmp(state, "running") || !strcmp(state, "queued"));

    if (!s)
        return NULL;
    when = host_format_switchover(s->switchover_at);
    if (!strcmp(s->state, "waiting"))
        return live ? g_strdup_printf("waiting for switchover at %s", when)
                    : g_strdup_printf("was waiting for switchover at %s", when);
    if (!strcmp(s->state, "scheduled"))
        return g_strdup_printf("switchover scheduled at %s", when);
    return g_strdup_printf("switchover at %s: %s", when, s->state);
}
