/*
 * vmshiftd: GET /metrics in the Prometheus text format (version 0.0.4).
 *
 * From the journal (all jobs, whoever ran them): jobs by state and backend,
 * bytes moved by succeeded jobs, migration durations and switchover
 * downtimes as histograms. Downtime is the time from entering the
 * switchover phase to the next phase, from the journal's phase events (1 s
 * resolution). From the registry: whether each backend is reachable. From
 * the daemon: its running jobs, event-stream clients and requests.
 *
 * Runs in an API thread with d->api_lock held (it may open backends).
 */
#include "config.h"

#include <string.h>

#include "daemon/daemon.h"

static const double buckets[] = { 1, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200 };

/* A label value with \, " and newline escaped. */
static char *
label(const char *s)
{
    g_autoptr(GString) o = g_string_new(NULL);
    for (const char *p = s ? s : ""; *p; p++) {
        if (*p == '\\' || *p == '"')
            g_string_append_c(o, '\\');
        if (*p == '\n')
            g_string_append(o, "\\n");
        else
            g_string_append_c(o, *p);
    }
    return g_string_free(g_steal_pointer(&o), FALSE);
}

typedef struct {
    char *backend;
    guint64 counts[G_N_ELEMENTS(buckets) + 1];
    double sum;
    guint64 n;
} Histogram;

static void
histogram_free(Histogram *h)
{
    g_free(h->backend);
    g_free(h);
}

static void
histogram_add(GHashTable *hs, const char *backend, double v)
{
    Histogram *h = g_hash_table_lookup(hs, backend);
    if (!h) {
        h = g_new0(Histogram, 1);
        h->backend = g_strdup(backend);
        g_hash_table_insert(hs, h->backend, h);
    }
    for (guint i = 0; i < G_N_ELEMENTS(buckets); i++)
        if (v <= buckets[i])
            h->counts[i]++;
    h->counts[G_N_ELEMENTS(buckets)]++;
    h->sum += v;
    h->n++;
}

static void
histogram_print(GString *out, const char *name, const char *help, GHashTable *hs)
{
    GHashTableIter it;
    gpointer v;

    g_string_append_printf(out, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name);
    g_hash_table_iter_init(&it, hs);
    while (g_hash_table_iter_next(&it, NULL, &v)) {
        Histogram *h = v;
        g_autofree char *b = label(h->backend);
        for (guint i = 0; i < G_N_ELEMENTS(buckets); i++)
            g_string_append_printf(out,
                                   "%s_bucket{backend=\"%s\",le=\"%g\"} %" G_GUINT64_FORMAT "\n",
                                   name, b, buckets[i], h->counts[i]);
        g_string_append_printf(out, "%s_bucket{backend=\"%s\",le=\"+Inf\"} %" G_GUINT64_FORMAT "\n",
                               name, b, h->n);
        g_string_append_printf(out, "%s_sum{backend=\"%s\"} %g\n", name, b, h->sum);
        g_string_append_printf(out, "%s_count{backend=\"%s\"} %" G_GUINT64_FORMAT "\n", name, b,
                               h->n);
    }
}

static sqlite3_stmt *
query(Daemon *d, const char *sql, GError **error)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(d->watch_db, sql, -1, &st, NULL) != SQLITE_OK) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_FAILED, "journal: %s",
                    sqlite3_errmsg(d->watch_db));
        sqlite3_finalize(st);
        return NULL;
    }
    return st;
}

static gboolean
job_metrics(Daemon *d, GString *out, GError **error)
{
    sqlite3_stmt *st;
    g_autoptr(GHashTable)
        dur = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, (GDestroyNotify)histogram_free);
    g_autoptr(GHashTable)
        down = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, (GDestroyNotify)histogram_free);

    if (!(st = query(d, "SELECT state, backend, count(*) FROM jobs GROUP BY state, backend",
                     error)))
        return FALSE;
    g_string_append(out, "# HELP vmshift_jobs Jobs in the journal by state and backend.\n"
                         "# TYPE vmshift_jobs gauge\n");
    while (sqlite3_step(st) == SQLITE_ROW) {
        g_autofree char *s = label((const char *)sqlite3_column_text(st, 0));
        g_autofree char *b = label((const char *)sqlite3_column_text(st, 1));
        g_string_append_printf(out, "vmshift_jobs{state=\"%s\",backend=\"%s\"} %lld\n", s, b,
                               (long long)sqlite3_column_int64(st, 2));
    }
    sqlite3_finalize(st);
    if (!(st = query(
              d,
              "SELECT backend, sum(bytes_done) FROM jobs WHERE state='succeeded' GROUP BY backend",
              error)))
        return FALSE;
    g_string_append(out, "# HELP vmshift_bytes_moved_total Bytes moved by succeeded jobs.\n"
                         "# TYPE vmshift_bytes_moved_total counter\n");
    while (sqlite3_step(st) == SQLITE_ROW) {
        g_autofree char *b = label((const char *)sqlite3_column_text(st, 0));
        g_string_append_printf(out, "vmshift_bytes_moved_total{backend=\"%s\"} %lld\n", b,
                               (long long)sqlite3_column_int64(st, 1));
    }
    sqlite3_finalize(st);
    if (!(st = query(d,
                     "SELECT backend, ended - started FROM jobs WHERE state='succeeded' "
                     "AND kind IN ('migrate','migrate-storage') AND ended >= started",
                     error)))
        return FALSE;
    while (sqlite3_step(st) == SQLITE_ROW)
        histogram_add(dur, (const char *)sqlite3_column_text(st, 0), sqlite3_column_double(st, 1));
    sqlite3_finalize(st);
    histogram_print(out, "vmshift_migration_duration_seconds",
                    "Duration of succeeded migrations and storage moves.", dur);
    if (!(st = query(d,
                     "SELECT j.backend, (SELECT min(n.time) FROM events n WHERE n.job = e.job "
                     "AND n.seq > e.seq AND n.kind = 'phase') - e.time "
                     "FROM events e JOIN jobs j ON j.id = e.job WHERE e.kind = 'phase' "
                     "AND e.value = 'switchover' AND j.state = 'succeeded'",
                     error)))
        return FALSE;
    while (sqlite3_step(st) == SQLITE_ROW)
        if (sqlite3_column_type(st, 1) != SQLITE_NULL)
            histogram_add(down, (const char *)sqlite3_column_text(st, 0),
                          sqlite3_column_double(st, 1));
    sqlite3_finalize(st);
    histogram_print(out, "vmshift_downtime_seconds",
                    "Time in the switchover phase of succeeded migrations (1 s resolution).", down);
    return TRUE;
}

char *
daemon_metrics_text(Daemon *d, GError **error)
{
    g_autoptr(GString) out = g_string_new(NULL);
    HostRegistry *reg = d->session.reg;

    if (!d->watch_db) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_FAILED, "journal: not open for reading");
        return NULL;
    }
    if (!job_metrics(d, out, error))
        return NULL;
    g_string_append(out,
                    "# HELP vmshift_backend_reachable Whether the backend opened (1) or not (0).\n"
                    "# TYPE vmshift_backend_reachable gauge\n");
    for (guint i = 0; i < reg->backends->len; i++) {
        HostBackend *b = g_ptr_array_index(reg->backends, i);
        g_autofree char *n = label(host_backend_name(b));
        if (b->status == HOST_BACKEND_LOADED)
            host_backend_ensure_open(b, NULL);
        g_string_append_printf(out, "vmshift_backend_reachable{backend=\"%s\"} %d\n", n,
                               b->status == HOST_BACKEND_READY);
    }
    g_string_append_printf(
        out,
        "# HELP vmshiftd_jobs_running Jobs this daemon is running.\n"
        "# TYPE vmshiftd_jobs_running gauge\nvmshiftd_jobs_running %u\n"
        "# HELP vmshiftd_event_clients Open /api/v1/events streams.\n"
        "# TYPE vmshiftd_event_clients gauge\nvmshiftd_event_clients %u\n"
        "# HELP vmshiftd_requests_total API requests answered.\n"
        "# TYPE vmshiftd_requests_total counter\nvmshiftd_requests_total %" G_GUINT64_FORMAT "\n"
        "# HELP vmshiftd_refused_total API requests refused (403).\n"
        "# TYPE vmshiftd_refused_total counter\nvmshiftd_refused_total %" G_GUINT64_FORMAT "\n"
        "# HELP vmshiftd_start_time_seconds When the daemon started (Unix time).\n"
        "# TYPE vmshiftd_start_time_seconds gauge\nvmshiftd_start_time_seconds %" G_GINT64_FORMAT
        "\n",
        g_atomic_int_get(&d->n_runs), g_atomic_int_get(&d->n_sse), d->requests, d->refused,
        d->started);
    return g_string_free(g_steal_pointer(&out), FALSE);
}
