/* vmshift SDK: the job object. */
#include "config.h"

#include <math.h>
#include <string.h>
#include <vmshift/vmshift.h>

#include "sdk-private.h"

struct _VmshiftJob {
    gint refcount;
    GMutex lock;
    char *id;
    VmshiftMigrationSpec *spec;
    const VmshiftJobHooks *hooks;
    gpointer user_data;
    GCancellable *cancellable;

    /* protected by lock */
    VmshiftPhase phase;
    double percent;
    gboolean percent_set;
    guint64 bytes_done;
    guint64 bytes_total;
    char *location_host;
    char *location_detail;
    GHashTable *results;
    GHashTable *saved;
};

#define HOOK(job, member)                                                              \
    ((job)->hooks                                                                      \
     && (job)->hooks->struct_size                                                      \
            >= G_STRUCT_OFFSET(VmshiftJobHooks, member) + sizeof((job)->hooks->member) \
     && (job)->hooks->member)

VMSHIFT_API VmshiftJob *
vmshift_job_new(const char *id, const VmshiftMigrationSpec *spec, const VmshiftJobHooks *hooks,
                gpointer user_data)
{
    VmshiftJob *job = g_new0(VmshiftJob, 1);

    job->refcount = 1;
    g_mutex_init(&job->lock);
    job->id = g_strdup(id ? id : "job");
    job->spec = vmshift_migration_spec_copy(spec);
    job->hooks = hooks;
    job->user_data = user_data;
    job->cancellable = g_cancellable_new();
    job->percent = -1;
    job->results = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    job->saved = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    return job;
}

VMSHIFT_API VmshiftJob *
vmshift_job_ref(VmshiftJob *job)
{
    g_return_val_if_fail(job != NULL, NULL);
    g_atomic_int_inc(&job->refcount);
    return job;
}

VMSHIFT_API void
vmshift_job_unref(VmshiftJob *job)
{
    if (!job || !g_atomic_int_dec_and_test(&job->refcount))
        return;
    g_free(job->id);
    vmshift_migration_spec_free(job->spec);
    g_object_unref(job->cancellable);
    g_free(job->location_host);
    g_free(job->location_detail);
    g_hash_table_unref(job->results);
    g_hash_table_unref(job->saved);
    g_mutex_clear(&job->lock);
    g_free(job);
}

static void
notify_changed(VmshiftJob *job)
{
    if (HOOK(job, changed))
        job->hooks->changed(job, job->user_data);
}

VMSHIFT_API gboolean
vmshift_job_set_phase(VmshiftJob *job, VmshiftPhase phase, GError **error)
{
    g_return_val_if_fail(job != NULL, FALSE);
    /* The journal write comes first: the phase counts as entered only once
     * the host has recorded it. */
    if (HOOK(job, phase) && !job->hooks->phase(job, phase, job->user_data, error))
        return FALSE;
    g_mutex_lock(&job->lock);
    job->phase = phase;
    g_mutex_unlock(&job->lock);
    notify_changed(job);
    return TRUE;
}

VMSHIFT_API void
vmshift_job_set_progress(VmshiftJob *job, double percent)
{
    g_return_if_fail(job != NULL);
    g_mutex_lock(&job->lock);
    if (percent < 0 || isnan(percent)) {
        job->percent = -1;
        job->percent_set = FALSE;
    } else {
        job->percent = MIN(percent, 100.0);
        job->percent_set = TRUE;
    }
    g_mutex_unlock(&job->lock);
    notify_changed(job);
}

VMSHIFT_API void
vmshift_job_set_bytes(VmshiftJob *job, guint64 done, guint64 total)
{
    g_return_if_fail(job != NULL);
    g_mutex_lock(&job->lock);
    job->bytes_done = done;
    job->bytes_total = total;
    if (!job->percent_set && total > 0)
        job->percent = MIN(100.0, 100.0 * (double)done / (double)total);
    g_mutex_unlock(&job->lock);
    notify_changed(job);
}

VMSHIFT_API void
vmshift_job_log(VmshiftJob *job, VmshiftLogLevel level, const char *format, ...)
{
    va_list ap;
    char *line;

    g_return_if_fail(job != NULL);
    va_start(ap, format);
    line = g_strdup_vprintf(format, ap);
    va_end(ap);
    if (HOOK(job, log))
        job->hooks->log(job, level, line, job->user_data);
    else
        g_log("vmshift-job",
              level >= VMSHIFT_LOG_ERROR     ? G_LOG_LEVEL_CRITICAL
              : level == VMSHIFT_LOG_WARNING ? G_LOG_LEVEL_WARNING
              : level == VMSHIFT_LOG_INFO    ? G_LOG_LEVEL_INFO
                                             : G_LOG_LEVEL_DEBUG,
              "%s: %s", job->id, line);
    g_free(line);
}

VMSHIFT_API void
vmshift_job_set_location(VmshiftJob *job, const char *host, const char *detail)
{
    g_return_if_fail(job != NULL);
    g_mutex_lock(&job->lock);
    g_free(job->location_host);
    g_free(job->location_detail);
    job->location_host = g_strdup(host);
    job->location_detail = g_strdup(detail);
    g_mutex_unlock(&job->lock);
    notify_changed(job);
}

VMSHIFT_API void
vmshift_job_set_result(VmshiftJob *job, const char *key, const char *value)
{
    g_return_if_fail(job != NULL && key != NULL);
    g_mutex_lock(&job->lock);
    if (value)
        g_hash_table_replace(job->results, g_strdup(key), g_strdup(value));
    else
        g_hash_table_remove(job->results, key);
    g_mutex_unlock(&job->lock);
    notify_changed(job);
}

VMSHIFT_API gboolean
vmshift_job_save(VmshiftJob *job, const char *key, const char *value, GError **error)
{
    g_return_val_if_fail(job != NULL && key != NULL, FALSE);
    if (HOOK(job, save) && !job->hooks->save(job, key, value, job->user_data, error))
        return FALSE;
    g_mutex_lock(&job->lock);
    if (value)
        g_hash_table_replace(job->saved, g_strdup(key), g_strdup(value));
    else
        g_hash_table_remove(job->saved, key);
    g_mutex_unlock(&job->lock);
    return TRUE;
}

VMSHIFT_API char *
vmshift_job_get_saved(VmshiftJob *job, const char *key)
{
    char *v;

    g_return_val_if_fail(job != NULL && key != NULL, NULL);
    g_mutex_lock(&job->lock);
    v = g_strdup(g_hash_table_lookup(job->saved, key));
    g_mutex_unlock(&job->lock);
    return v;
}

VMSHIFT_API const VmshiftMigrationSpec *
vmshift_job_get_spec(VmshiftJob *job)
{
    g_return_val_if_fail(job != NULL, NULL);
    return job->spec;
}

VMSHIFT_API VmshiftPhase
vmshift_job_get_phase(VmshiftJob *job)
{
    VmshiftPhase p;

    g_return_val_if_fail(job != NULL, VMSHIFT_PHASE_NONE);
    g_mutex_lock(&job->lock);
    p = job->phase;
    g_mutex_unlock(&job->lock);
    return p;
}

VMSHIFT_API const char *
vmshift_job_get_id(VmshiftJob *job)
{
    g_return_val_if_fail(job != NULL, NULL);
    return job->id;
}

VMSHIFT_API GCancellable *
vmshift_job_get_cancellable(VmshiftJob *job)
{
    g_return_val_if_fail(job != NULL, NULL);
    return job->cancellable;
}

VMSHIFT_API gboolean
vmshift_job_is_cancelled(VmshiftJob *job)
{
    g_return_val_if_fail(job != NULL, FALSE);
    return g_cancellable_is_cancelled(job->cancellable);
}

VMSHIFT_API void
vmshift_job_cancel(VmshiftJob *job)
{
    g_return_if_fail(job != NULL);
    g_cancellable_cancel(job->cancellable);
}

VMSHIFT_API void
vmshift_job_restore(VmshiftJob *job, VmshiftPhase phase, GHashTable *saved)
{
    GHashTableIter it;
    gpointer k, v;

    g_return_if_fail(job != NULL);
    g_mutex_lock(&job->lock);
    job->phase = phase;
    if (saved) {
        g_hash_table_iter_init(&it, saved);
        while (g_hash_table_iter_next(&it, &k, &v))
            g_hash_table_replace(job->saved, g_strdup(k), g_strdup(v));
    }
    g_mutex_unlock(&job->lock);
}

VMSHIFT_API void
vmshift_job_get_progress(VmshiftJob *job, VmshiftJobProgress *out)
{
    g_return_if_fail(job != NULL && out != NULL);
    memset(out, 0, sizeof(*out));
    out->struct_size = sizeof(*out);
    g_mutex_lock(&job->lock);
    out->phase = job->phase;
    out->percent = job->percent;
    out->bytes_done = job->bytes_done;
    out->bytes_total = job->bytes_total;
    out->location_host = g_strdup(job->location_host);
    out->location_detail = g_strdup(job->location_detail);
    g_mutex_unlock(&job->lock);
}

VMSHIFT_API void
vmshift_job_progress_clear(VmshiftJobProgress *p)
{
    if (!p)
        return;
    g_clear_pointer(&p->location_host, g_free);
    g_clear_pointer(&p->location_detail, g_free);
}

VMSHIFT_API GHashTable *
vmshift_job_get_results(VmshiftJob *job)
{
    GHashTable *copy = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    GHashTableIter it;
    gpointer k, v;

    g_return_val_if_fail(job != NULL, copy);
    g_mutex_lock(&job->lock);
    g_hash_table_iter_init(&it, job->results);
    while (g_hash_table_iter_next(&it, &k, &v))
        g_hash_table_insert(copy, g_strdup(k), g_strdup(v));
    g_mutex_unlock(&job->lock);
    return copy;
}

static const char *const phase_names[] = { "none",       "validate", "prepare", "transfer",
                                           "switchover", "acl",      "cleanup", "done" };

VMSHIFT_API const char *
vmshift_phase_name(guint32 phase)
{
    return phase < G_N_ELEMENTS(phase_names) ? phase_names[phase] : "none";
}

VMSHIFT_API VmshiftPhase
vmshift_phase_from_name(const char *name)
{
    for (guint i = 0; name && i < G_N_ELEMENTS(phase_names); i++)
        if (strcmp(name, phase_names[i]) == 0)
            return (VmshiftPhase)i;
    return VMSHIFT_PHASE_NONE;
}

/* ---- scheduled switchover (ABI 1.3) ------------------------------------ */

/* Sleeps up to @ms, waking at once when @c is cancelled. */
static void
sleep_cancellable(GCancellable *c, int ms)
{
    GPollFD fd;

    if (g_cancellable_make_pollfd(c, &fd)) {
        g_poll(&fd, 1, ms);
        g_cancellable_release_fd(c);
    } else {
        g_usleep((gulong)ms * 1000);
    }
}

VMSHIFT_API gboolean
vmshift_job_hold_switchover(VmshiftJob *job, VmshiftHoldPollFunc poll, gpointer user_data,
                            GError **error)
{
    gint64 until, last_hook = 0;

    g_return_val_if_fail(job != NULL, FALSE);
    until = job->spec && VMSHIFT_HAS_FIELD(job->spec, switchover_at) ? job->spec->switchover_at : 0;
    if (until <= 0 && !HOOK(job, hold))
        return TRUE;
    for (;;) {
        gint64 now_us = g_get_real_time(), now = now_us / G_USEC_PER_SEC;

        if (g_cancellable_set_error_if_cancelled(job->cancellable, error))
            return FALSE;
        /* the host's hook when the wait begins, once a second, and before
         * the time releases the job (the host may move it) */
        if (HOOK(job, hold)
            && (last_hook == 0 || now_us - last_hook >= G_USEC_PER_SEC || now >= until)) {
            last_hook = now_us;
            until = job->hooks->hold(job, until, job->user_data, error);
            if (until < 0)
                return FALSE;
        }
        if (now >= until)
            return TRUE;
        if (poll && !poll(job, user_data, error))
            return FALSE;
        sleep_cancellable(job->cancellable, 250);
    }
}

VMSHIFT_API GInputStream *
vmshift_job_open_source_disk(VmshiftJob *job, const char *disk_id, guint64 *capacity,
                             GError **error)
{
    guint64 dummy;

    g_return_val_if_fail(job != NULL && disk_id != NULL, NULL);
    if (!capacity)
        capacity = &dummy;
    *capacity = 0;
    if (!HOOK(job, open_source)) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_NOT_SUPPORTED,
                    "job %s has no source disks to read (not an import)", job->id);
        return NULL;
    }
    return job->hooks->open_source(job, disk_id, capacity, job->user_data, error);
}
