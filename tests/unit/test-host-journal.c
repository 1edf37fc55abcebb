/* Unit tests of the host's journal: write, reopen, one job per VM,
 * interrupted-job detection after a real SIGKILL of the process running a
 * job, the location's verified flag, schema upgrades from every earlier
 * version (and from the first release's layout, frozen here), and the
 * refusal of empty and newer journals. */
#include "config.h"

#include <glib/gstdio.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "host/host.h"

static char *state_dir;

static void
test_write_reopen(void)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(HostJournal) j = host_journal_open(state_dir, &err);
    g_autoptr(HostJobRecord) r = NULL;
    g_autoptr(GHashTable) saved = NULL;
    g_autoptr(GPtrArray) ev = NULL;
    gint64 id;
    GError *fail = NULL;

    g_assert_no_error(err);
    id = host_journal_begin_job(j, "migrate", "b1", "vm-a", "{\"vm\":\"vm-a\"}", "h1", "/srv/vm-a",
                                &err);
    g_assert_no_error(err);
    g_assert_cmpint(id, >, 0);
    g_assert_true(host_journal_set_phase(j, id, "transfer", &err));
    g_assert_true(host_journal_add_event(j, id, "save", NULL, "pid", "42", &err));
    g_assert_true(host_journal_add_event(j, id, "save", NULL, "tmp", "/x", &err));
    g_assert_true(host_journal_add_event(j, id, "save", NULL, "tmp", NULL, &err));
    g_set_error(&fail, VMSHIFT_ERROR, VMSHIFT_ERROR_NO_SPACE, "no space on /srv");
    g_assert_true(
        host_journal_finish(j, id, "failed", fail, "h1", "running", "{\"k\":\"v\"}", &err));
    g_error_free(fail);
    g_assert_no_error(err);
    host_journal_close(g_steal_pointer(&j));

    j = host_journal_open(state_dir, &err);
    g_assert_no_error(err);
    r = host_journal_get(j, id, &err);
    g_assert_no_error(err);
    g_assert_cmpstr(r->state, ==, "failed");
    g_assert_cmpstr(r->phase, ==, "transfer");
    g_assert_cmpstr(r->error_code, ==, "no-space");
    g_assert_cmpstr(r->error_message, ==, "no space on /srv");
    g_assert_cmpstr(r->location_host, ==, "h1");
    g_assert_cmpstr(r->source_path, ==, "/srv/vm-a");
    g_assert_cmpstr(r->results, ==, "{\"k\":\"v\"}");
    saved = host_journal_saved(j, id, &err);
    g_assert_cmpuint(g_hash_table_size(saved), ==, 1);
    g_assert_cmpstr(g_hash_table_lookup(saved, "pid"), ==, "42");
    ev = host_journal_events(j, id, &err);
    g_assert_cmpuint(ev->len, >=, 5);
    {
        json_object *o = host_json_job(r);
        json_object *back = json_tokener_parse(json_object_to_json_string(o));
        g_assert_nonnull(back);
        json_object_put(back);
        json_object_put(o);
    }
}

static void
test_one_job_per_vm(void)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(HostJournal) j = host_journal_open(state_dir, &err);
    gint64 a, b;

    a = host_journal_begin_job(j, "migrate", "b1", "vm-busy", NULL, NULL, NULL, &err);
    g_assert_no_error(err);
    b = host_journal_begin_job(j, "acl", "b1", "vm-busy", NULL, NULL, NULL, &err);
    g_assert_cmpint(b, ==, 0);
    g_assert_error(err, VMSHIFT_ERROR, VMSHIFT_ERROR_CONFLICT);
    g_assert_nonnull(strstr(err->message, "is busy with job"));
    g_clear_error(&err);
    /* another VM is free; the same VM in another backend too */
    g_assert_cmpint(host_journal_begin_job(j, "acl", "b2", "vm-busy", NULL, NULL, NULL, &err), >,
                    0);
    g_assert_true(host_journal_finish(j, a, "succeeded", NULL, NULL, NULL, NULL, &err));
    g_assert_cmpint(host_journal_begin_job(j, "acl", "b1", "vm-busy", NULL, NULL, NULL, &err), >,
                    0);
    g_assert_no_error(err);
}

static void
test_killed(void)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(HostJournal) j = NULL;
    g_autoptr(GPtrArray) list = NULL;
    HostJobRecord *found = NULL;

    if (g_test_subprocess()) {
        /* the child: start a job, reach the transfer phase, die by SIGKILL */
        HostJournal *cj = host_journal_open(state_dir, NULL);
        gint64 id = host_journal_begin_job(cj, "migrate", "b1", "vm-killed", NULL, "h1", NULL,
                                           NULL);
        host_journal_set_phase(cj, id, "transfer", NULL);
        kill(getpid(), SIGKILL);
        return;
    }
    g_test_trap_subprocess(NULL, 0, G_TEST_SUBPROCESS_DEFAULT);
    g_test_trap_assert_failed();

    j = host_journal_open(state_dir, &err); /* reconciles */
    g_assert_no_error(err);
    list = host_journal_list(j, &err);
    for (guint i = 0; i < list->len; i++) {
        HostJobRecord *r = g_ptr_array_index(list, i);
        if (!strcmp(r->vm, "vm-killed"))
            found = r;
    }
    g_assert_nonnull(found);
    g_assert_cmpstr(found->state, ==, "interrupted");
    g_assert_cmpstr(found->phase, ==, "transfer");
    g_assert_cmpstr(found->error_code, ==, "interrupted");
    g_assert_nonnull(strstr(found->error_message, "ended during phase transfer"));
    /* killed in the transfer: the VM may have moved since */
    g_assert_false(found->location_verified);
    /* and the VM is free again */
    g_assert_cmpint(host_journal_begin_job(j, "acl", "b1", "vm-killed", NULL, NULL, NULL, &err), >,
                    0);
}

static void
test_process_identity(void)
{
    g_autofree char *me = host_process_identity(getpid());
    g_assert_nonnull(me);
    g_assert_true(host_process_alive(getpid(), me));
    g_assert_false(host_process_alive(getpid(), "other-boot:1"));
    g_assert_false(host_process_alive(0, me));
}

static void
test_location(void)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(HostJournal) j = host_journal_open(state_dir, &err);
    g_autoptr(HostJobRecord) r = NULL;
    gint64 id;

    g_assert_no_error(err);
    id = host_journal_begin_job(j, "migrate", "b1", "vm-loc", NULL, "h1", NULL, &err);
    g_assert_cmpint(id, >, 0);
    g_assert_true(host_journal_set_phase_at(j, id, "transfer", "h1", "running", FALSE, &err));
    r = host_journal_get(j, id, &err);
    g_assert_true(r->location_verified);
    g_assert_cmpstr(r->location_host, ==, "h1");
    g_clear_pointer(&r, host_job_record_free);
    /* the switchover: unknown, the old report is gone */
    g_assert_true(host_journal_set_phase_at(j, id, "switchover", NULL, NULL, TRUE, &err));
    r = host_journal_get(j, id, &err);
    g_assert_false(r->location_verified);
    g_assert_null(r->location_host);
    g_clear_pointer(&r, host_job_record_free);
    /* a phase without a report keeps it unknown */
    g_assert_true(host_journal_set_phase_at(j, id, "cleanup", NULL, NULL, FALSE, &err));
    r = host_journal_get(j, id, &err);
    g_assert_false(r->location_verified);
    g_clear_pointer(&r, host_job_record_free);
    g_assert_true(host_journal_set_location(j, id, "h2", "running", "asked", &err));
    g_assert_true(host_journal_set_note(j, id, "a note", &err));
    r = host_journal_get(j, id, &err);
    g_assert_true(r->location_verified);
    g_assert_cmpstr(r->location_host, ==, "h2");
    g_assert_cmpstr(r->note, ==, "a note");
    g_assert_no_error(err);
}

/* The first release's layout, exactly as it created it (schema version 1). */
static const char v1_schema[] =
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

static const char v1_rows[] =
    "INSERT INTO jobs(kind, backend, vm, state, phase, location_host, results)"
    " VALUES ('migrate', 'b1', 'old-vm', 'succeeded', 'done', 'h9', '{}');"
    "INSERT INTO events(job, time, kind, key, value) VALUES (1, 1, 'state', 'succeeded', NULL);";

static char *
fresh_dir(void)
{
    return g_dir_make_tmp("vmshift-journal-schema-XXXXXX", NULL);
}

static void
remove_dir(const char *dir)
{
    const char *suffix[] = { "", "-wal", "-shm" };
    for (guint i = 0; i < G_N_ELEMENTS(suffix); i++) {
        g_autofree char *f = g_strdup_printf("%s/journal.db%s", dir, suffix[i]);
        g_unlink(f);
    }
    g_rmdir(dir);
}

static int
file_version(const char *path)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    int v = -1;

    g_assert_cmpint(sqlite3_open(path, &db), ==, SQLITE_OK);
    g_assert_cmpint(sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL), ==, SQLITE_OK);
    if (sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
}

/* Opens the journal in @dir, which then has the newest version and still
 * has old-vm's job when @has_row. */
static void
assert_upgraded(const char *dir, gboolean has_row)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(HostJournal) j = host_journal_open(dir, &err);
    g_autofree char *db = g_build_filename(dir, "journal.db", NULL);
    g_autoptr(GPtrArray) list = NULL;
    gint64 id;

    g_assert_no_error(err);
    list = host_journal_list(j, &err);
    g_assert_no_error(err);
    if (has_row) {
        HostJobRecord *r;
        g_assert_cmpuint(list->len, ==, 1);
        r = g_ptr_array_index(list, 0);
        g_assert_cmpstr(r->vm, ==, "old-vm");
        g_assert_cmpstr(r->location_host, ==, "h9");
        g_assert_true(r->location_verified);
        g_assert_null(r->note);
    }
    /* and it takes new jobs */
    id = host_journal_begin_job(j, "migrate", "b1", "new-vm", NULL, NULL, NULL, &err);
    g_assert_no_error(err);
    g_assert_true(host_journal_set_note(j, id, "n", &err));
    g_assert_true(host_journal_finish(j, id, "succeeded", NULL, "h1", NULL, NULL, &err));
    host_journal_close(g_steal_pointer(&j));
    g_assert_cmpint(file_version(db), ==, host_journal_schema_version());
}

static void
test_upgrade_every_version(void)
{
    for (int v = 0; v < host_journal_schema_version(); v++) {
        g_autofree char *dir = fresh_dir();
        g_autofree char *db = g_build_filename(dir, "journal.db", NULL);
        g_autoptr(GError) err = NULL;

        g_test_message("from schema version %d", v);
        g_assert_true(host_journal_build_schema(db, v, &err));
        g_assert_no_error(err);
        g_assert_cmpint(file_version(db), ==, v);
        if (v == 0)
            g_unlink(db); /* version 0: no journal yet (SQLite wrote 0 bytes) */
        if (v >= 1) {
            sqlite3 *raw = NULL;
            g_assert_cmpint(sqlite3_open(db, &raw), ==, SQLITE_OK);
            g_assert_cmpint(sqlite3_exec(raw, v1_rows, NULL, NULL, NULL), ==, SQLITE_OK);
            sqlite3_close(raw);
        }
        assert_upgraded(dir, v >= 1);
        remove_dir(dir);
    }
}

static void
test_upgrade_first_release(void)
{
    g_autofree char *dir = fresh_dir();
    g_autofree char *db = g_build_filename(dir, "journal.db", NULL);
    sqlite3 *raw = NULL;

    g_assert_cmpint(sqlite3_open(db, &raw), ==, SQLITE_OK);
    g_assert_cmpint(sqlite3_exec(raw, "PRAGMA journal_mode=WAL;", NULL, NULL, NULL), ==, SQLITE_OK);
    g_assert_cmpint(sqlite3_exec(raw, v1_schema, NULL, NULL, NULL), ==, SQLITE_OK);
    g_assert_cmpint(sqlite3_exec(raw, v1_rows, NULL, NULL, NULL), ==, SQLITE_OK);
    sqlite3_close(raw);
    assert_upgraded(dir, TRUE);
    /* opening again changes nothing */
    assert_upgraded(dir, FALSE);
    remove_dir(dir);
}

static void
test_refused(void)
{
    g_autofree char *dir = fresh_dir();
    g_autofree char *db = g_build_filename(dir, "journal.db", NULL);
    g_autoptr(GError) err = NULL;
    g_autoptr(HostJournal) j = NULL;
    g_autofree char *newer = NULL;

    g_assert_true(g_file_set_contents(db, "", 0, NULL));
    j = host_journal_open(dir, &err);
    g_assert_null(j);
    g_assert_nonnull(strstr(err->message, "is empty (0 bytes)"));
    g_assert_null(strchr(err->message, '\n'));
    g_clear_error(&err);
    g_unlink(db);
    newer = g_strdup_printf("PRAGMA user_version = %d", host_journal_schema_version() + 1);
    g_assert_true(host_journal_build_schema(db, host_journal_schema_version(), &err));
    {
        sqlite3 *raw = NULL;
        g_assert_cmpint(sqlite3_open(db, &raw), ==, SQLITE_OK);
        g_assert_cmpint(sqlite3_exec(raw, newer, NULL, NULL, NULL), ==, SQLITE_OK);
        sqlite3_close(raw);
    }
    j = host_journal_open(dir, &err);
    g_assert_null(j);
    g_assert_nonnull(strstr(err->message, "written by a newer vmshift"));
    g_clear_error(&err);
    /* the refused file is left as it was */
    g_assert_cmpint(file_version(db), ==, host_journal_schema_version() + 1);
    remove_dir(dir);
}

int
main(int argc, char **argv)
{
    const char *fixed = g_getenv("VMSHIFT_TEST_STATE_DIR");
    int rc;

    g_test_init(&argc, &argv, NULL);
    /* the subprocess of test_killed must use the parent's directory */
    if (fixed) {
        state_dir = g_strdup(fixed);
    } else {
        state_dir = g_dir_make_tmp("vmshift-journal-XXXXXX", NULL);
        g_setenv("VMSHIFT_TEST_STATE_DIR", state_dir, TRUE);
    }
    g_test_add_func("/host/journal/write-reopen", test_write_reopen);
    g_test_add_func("/host/journal/one-job-per-vm", test_one_job_per_vm);
    g_test_add_func("/host/journal/killed-process", test_killed);
    g_test_add_func("/host/journal/process-identity", test_process_identity);
    g_test_add_func("/host/journal/location", test_location);
    g_test_add_func("/host/journal/upgrade-every-version", test_upgrade_every_version);
    g_test_add_func("/host/journal/upgrade-first-release", test_upgrade_first_release);
    g_test_add_func("/host/journal/refused", test_refused);
    rc = g_test_run();
    if (!fixed) {
        g_autofree char *db = g_build_filename(state_dir, "journal.db", NULL);
        g_autofree char *wal = g_strconcat(db, "-wal", NULL);
        g_autofree char *shm = g_strconcat(db, "-shm", NULL);
        g_unlink(db);
        g_unlink(wal);
        g_unlink(shm);
        g_rmdir(state_dir);
    }
    g_free(state_dir);
    return rc;
}
