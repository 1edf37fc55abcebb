/*
 * Unit tests of scheduled switchovers (#17 item 6): the times host/plan.c
 * takes and refuses, and the journal's schedules table (host/schedule.c,
 * schema version 3) on a journal upgraded from every earlier version, its
 * rows going with their job when the journal is pruned.
 */
#include "config.h"

#include <glib/gstdio.h>
#include <string.h>

#include "host/host.h"

static void
test_parse_accepts(void)
{
    static const struct {
        const char *text;
        gint64 utc; /* 0: local time, compared with GLib's own reading */
    } ok[] = {
        { "2030-01-31T22:00Z", 1896127200 },
        { "2030-01-31T22:00:30Z", 1896127230 },
        { "2030-01-31T23:00+01:00", 1896127200 },
        { "2030-01-31T17:30-04:30", 1896127200 },
        { "2030-01-31T22:00", 0 },
        { "2030-01-31T22:00:05", 0 },
    };

    for (guint i = 0; i < G_N_ELEMENTS(ok); i++) {
        g_autoptr(GError) err = NULL;
        gint64 t = -1;
        g_assert_true(host_parse_switchover(ok[i].text, &t, &err));
        g_assert_no_error(err);
        if (ok[i].utc) {
            g_assert_cmpint(t, ==, ok[i].utc);
        } else {
            g_autoptr(GTimeZone) tz = g_time_zone_new_local();
            g_autofree char *full = strlen(ok[i].text) == 16 ? g_strconcat(ok[i].text, ":00", NULL)
                                                             : g_strdup(ok[i].text);
            g_autoptr(GDateTime) dt = g_date_time_new_from_iso8601(full, tz);
            g_assert_cmpint(t, ==, g_date_time_to_unix(dt));
        }
    }
}

static void
test_parse_refuses(void)
{
    static const char *const bad[] = {
        "",
        "2030-01-31",
        "2030-01-31 22:00",
        "2030-01-31T22",
        "2030-01-31T22:00+01",
        "2030-01-31T22:00+0100",
        "20300131T2200",
        "2030-W05-4T22:00",
        "2030-031T22:00",
        "2030-02-30T22:00",
        "2030-01-31T24:00",
        "2030-01-31T22:00:00.5Z",
        "2030-01-31T22:00Z ",
        "tomorrow",
        "2030-01-31T22:00\xff",
    };

    for (guint i = 0; i < G_N_ELEMENTS(bad); i++) {
        g_autoptr(GError) err = NULL;
        gint64 t = 0;
        g_test_message("refuses '%s'", bad[i]);
        g_assert_false(host_parse_switchover(bad[i], &t, &err));
        g_assert_error(err, VMSHIFT_ERROR, VMSHIFT_ERROR_INVALID_ARGUMENT);
        g_assert_null(strchr(err->message, '\n'));
        g_assert_true(g_utf8_validate(err->message, -1, NULL));
        g_assert_nonnull(strstr(err->message, "is not a switchover time"));
    }
}

static void
test_parse_future(void)
{
    g_autoptr(GError) err = NULL;
    gint64 t = 0;

    g_assert_true(host_parse_switchover_future("2030-01-31T22:00Z", 1896127200, &t, &err));
    g_assert_false(host_parse_switchover_future("2030-01-31T22:00Z", 1896127201, &t, &err));
    g_assert_nonnull(strstr(err->message, "has passed"));
}

static char *
fresh_dir(void)
{
    return g_dir_make_tmp("vmshift-schedule-XXXXXX", NULL);
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

/* A journal of every earlier schema version, upgraded by the open, keeps
 * schedules: added, moved through their states, listed, shown, and pruned
 * with their job. */
static void
test_schedules_every_version(void)
{
    g_assert_cmpint(host_journal_schema_version(), >=, 3);
    for (int v = 0; v < host_journal_schema_version(); v++) {
        g_autofree char *dir = fresh_dir();
        g_autofree char *db = g_build_filename(dir, "journal.db", NULL);
        g_autoptr(GError) err = NULL;
        g_autoptr(HostJournal) j = NULL;
        g_autoptr(HostSchedule) s = NULL;
        g_autoptr(GHashTable) all = NULL;
        g_autofree char *text = NULL;
        gint64 id, other;

        g_test_message("from schema version %d", v);
        g_assert_true(host_journal_build_schema(db, v, &err));
        if (v == 0)
            g_unlink(db);
        j = host_journal_open(dir, &err);
        g_assert_no_error(err);
        id = host_journal_begin_job(j, "migrate-storage", "kvm", "vm1", NULL, NULL, NULL, &err);
        g_assert_no_error(err);
        other = host_journal_begin_job(j, "migrate", "kvm", "vm2", NULL, NULL, NULL, &err);
        g_assert_no_error(err);
        g_assert_null(host_journal_schedule_get(j, id, &err));
        g_assert_no_error(err);
        g_assert_true(host_journal_schedule_add(j, id, 1896127200, "copy-ahead", &err));
        g_assert_no_error(err);
        s = host_journal_schedule_get(j, id, &err);
        g_assert_nonnull(s);
        g_assert_cmpint(s->switchover_at, ==, 1896127200);
        g_assert_cmpstr(s->mode, ==, "copy-ahead");
        g_assert_cmpstr(s->state, ==, "scheduled");
        g_clear_pointer(&s, host_schedule_free);

        g_assert_true(host_journal_schedule_set_state(j, id, "waiting", "waiting", &err));
        s = host_journal_schedule_get(j, id, &err);
        g_assert_cmpstr(s->state, ==, "waiting");
        text = host_schedule_text(s, "running");
        g_assert_true(g_str_has_prefix(text, "waiting for switchover at 2030-"));
        g_clear_pointer(&text, g_free);
        text = host_schedule_text(s, "interrupted");
        g_assert_true(g_str_has_prefix(text, "was waiting for switchover at "));

        all = host_journal_schedules(j, &err);
        g_assert_cmpuint(g_hash_table_size(all), ==, 1);
        g_assert_nonnull(g_hash_table_lookup(all, &id));
        g_assert_null(g_hash_table_lookup(all, &other));

        /* the rows go with their job */
        g_assert_true(host_journal_finish(j, id, "cancelled", NULL, NULL, NULL, NULL, &err));
        g_assert_true(host_journal_finish(j, other, "succeeded", NULL, NULL, NULL, NULL, &err));
        g_assert_cmpint(host_journal_prune(j, G_MAXINT64 / 2, &err), ==, 2);
        g_assert_no_error(err);
        g_assert_null(host_journal_schedule_get(j, id, &err));
        g_assert_no_error(err);
        host_journal_close(g_steal_pointer(&j));
        remove_dir(dir);
    }
}

int
main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_setenv("TZ", "Europe/Paris", TRUE);
    g_test_add_func("/host/switchover/parse-accepts", test_parse_accepts);
    g_test_add_func("/host/switchover/parse-refuses", test_parse_refuses);
    g_test_add_func("/host/switchover/parse-future", test_parse_future);
    g_test_add_func("/host/switchover/schedules-every-version", test_schedules_every_version);
    return g_test_run();
}
