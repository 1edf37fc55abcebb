/* Unit tests of the host's journal: write, reopen, one job per VM, and
 * interrupted-job detection after a real SIGKILL of the process running a
 * job. */
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
