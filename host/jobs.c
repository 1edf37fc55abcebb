/*
 * vmshift host: the job engine.
 *
 * Each migrate / migrate-storage / acl / repair runs on a worker thread of
 * its own with a VmshiftJob whose hooks write to the journal (phase
 * transitions and saved data are committed before the hook returns) and
 * queue log lines for the main thread. The main thread runs a GMainLoop that
 * draws progress, polls the journal for a cancel request from another
 * process every 200 ms, and cancels on SIGINT/SIGTERM.
 */
#include "config.h"

#include <glib-unix.h>
#include <signal.h>
#include <string.h>

#include "host/host.h"

struct HostJobRun {
    HostJobContext *ctx;
    HostJobKind kind;
    HostBackend *b;
    VmshiftVm *vm;
    VmshiftMigrationSpec *spec;
    gint64 id;
    VmshiftJob *job;
    VmshiftJobHooks hooks;
    GThread *thread;
    gint done;
    GError *error;
    char *state;
    char *label;
    GMutex qlock;
    GPtrArray *queue; /* lines for the main thread */
    gint64 last_journal;
    gint64 last_cancel_poll;
    gboolean cancel_seen;
    gint journal_warned; /* a failed journal write was reported (atomic) */
};

static const char *const kind_names[] = {
    [HOST_JOB_MIGRATE] = "migrate",
    [HOST_JOB_STORAGE] = "migrate-storage",
    [HOST_JOB_ACL] = "acl",
    [HOST_JOB_REPAIR] = "repair",
};

const char *
host_job_kind_name(HostJobKind k)
{
    return k < G_N_ELEMENTS(kind_names) ? kind_names[k] : "unknown";
}

/* ---- spec <-> JSON (the journal's record of what a job does) ------------------- */

static json_object *
mappings_json(GPtrArray *m)
{
    json_object *o = json_object_new_object();
    for (guint i = 0; m && i < m->len; i++) {
        VmshiftMapping *p = g_ptr_array_index(m, i);
        /* a key that is not UTF-8 (a damaged journal row) never reaches --json raw */
        g_autofree char *key = g_utf8_make_valid(p->key ? p->key : "", -1);
        json_object_object_add(o, key, host_json_string(p->value));
    }
    return o;
}

char *
host_spec_to_json(const VmshiftMigrationSpec *s, HostJobKind kind)
{
    json_object *o = json_object_new_object();
    char *out;

    json_object_object_add(o, "kind", json_object_new_string(host_job_kind_name(kind)));
    if (s) {
        json_object_object_add(o, "type",
                               json_object_new_string(vmshift_migration_type_name(s->type)));
        json_object_object_add(o, "vm", host_json_string(s->vm));
        json_object_object_add(o, "dest_host", host_json_string(s->dest_host));
        json_object_object_add(o, "dest_path", host_json_string(s->dest_path));
        json_object_object_add(o, "disk_paths", mappings_json(s->disk_paths));
        json_object_object_add(o, "networks", mappings_json(s->networks));
        json_object_object_add(o, "transfer",
                               json_object_new_string(host_spec_transfer_name(s->transfer)));
        json_object_object_add(o, "start", json_object_new_boolean(s->start));
        json_object_object_add(o, "force", json_object_new_boolean(s->force));
        if (s->options) {
            g_autofree char *v = g_variant_print(s->options, TRUE);
            json_object_object_add(o, "options", json_object_new_string(v));
        }
    }
    out = g_strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
    json_object_put(o);
    return out;
}

static const char *
jstr(json_object *o, const char *key)
{
    json_object *v;
    if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
        return NULL;
    return json_object_get_string(v);
}

static void
mappings_from(json_object *o, const char *key, GPtrArray *out)
{
    json_object *m;
    if (!json_object_object_get_ex(o, key, &m) || !json_object_is_type(m, json_type_object))
        return;
    json_object_object_foreach(m, k, v) {
        if (json_object_is_type(v, json_type_string))
            g_ptr_array_add(out, vmshift_mapping_new(k, json_object_get_string(v)));
    }
}

VmshiftMigrationSpec *
host_spec_from_json(const char *text, GError **error)
{
    json_object *o = text ? json_tokener_parse(text) : NULL;
    VmshiftMigrationSpec *s;
    const char *t;
    json_object *v;

    if (!o || !json_object_is_type(o, json_type_object)) {
        if (o)
            json_object_put(o);
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_PROTOCOL,
                    "the journal's record of the job's spec is unreadable");
        return NULL;
    }
    if (!jstr(o, "vm")) {
        json_object_put(o);
        return NULL; /* not a migration */
    }
    s = vmshift_migration_spec_new();
    t = jstr(o, "type");
    s->type = !g_strcmp0(t, "cold")      ? VMSHIFT_MIGRATION_COLD
              : !g_strcmp0(t, "storage") ? VMSHIFT_MIGRATION_STORAGE
                                         : VMSHIFT_MIGRATION_LIVE;
    s->vm = g_strdup(jstr(o, "vm"));
    s->dest_host = g_strdup(jstr(o, "dest_host"));
    s->dest_path = g_strdup(jstr(o, "dest_path"));
    mappings_from(o, "disk_paths", s->disk_paths);
    mappings_from(o, "networks", s->networks);
    t = jstr(o, "transfer");
    if (!host_spec_parse_transfer(t, &s->transfer))
        s->transfer = VMSHIFT_TRANSFER_AUTO;
    if (json_object_object_get_ex(o, "start", &v))
        s->start = json_object_get_boolean(v);
    if (json_object_object_get_ex(o, "force", &v))
        s->force = json_object_get_boolean(v);
    if ((t = jstr(o, "options"))) {
        GVariant *var = g_variant_parse(G_VARIANT_TYPE("a{sv}"), t, NULL, NULL, NULL);
        if (var)
            s->options = g_variant_ref_sink(var);
    }
    json_object_put(o);
    return s;
}

/* ---- hooks (worker thread) ---------------------------------------------------------- */

static void
queue_line(HostJobRun *r, char *line)
{
    g_mutex_lock(&r->qlock);
    g_ptr_array_add(r->queue, line);
    g_mutex_unlock(&r->qlock);
    g_main_context_wakeup(NULL);
}

/* A journal write that does not decide the job's outcome (a log line,
 * progress, a cancel note) failed: the job goes on, and the first such
 * failure of a run is shown. Phase and save writes fail the job instead. */
static void
journal_write_failed(HostJobRun *r, const GError *e)
{
    if (!g_atomic_int_compare_and_exchange(&r->journal_warned, 0, 1))
        return;
    queue_line(r, g_strdup_printf("%s: warning: journal write failed: %s", r->label,
                                  e ? e->message : "unknown error"));
}

static gboolean
hook_phase(VmshiftJob *job, VmshiftPhase phase, gpointer user_data, GError **error)
{
    HostJobRun *r = user_data;
    /* The host enters validate before calling the plugin, and plugins
     * announce it again: a phase already entered is not a transition. */
    if (phase == vmshift_job_get_phase(job))
        return TRUE;
    if (!host_journal_set_phase(r->ctx->journal, r->id, vmshift_phase_name(phase), error))
        return FALSE;
    queue_line(r, g_strdup_printf("%s: phase %s", r->label, vmshift_phase_name(phase)));
    return TRUE;
}

static const char *const level_names[] = { "debug", "info", "warning", "error" };

static void
hook_log(VmshiftJob *job, VmshiftLogLevel level, const char *line, gpointer user_data)
{
    HostJobRun *r = user_data;
    const char *lv = level_names[MIN((guint)level, 3u)];
    g_autoptr(GError) err = NULL;

    /* a failed journal write of a log line is not worth failing the job */
    if (!host_journal_add_event(r->ctx->journal, r->id, "log", lv, NULL, line, &err))
        journal_write_failed(r, err);
    if (level == VMSHIFT_LOG_DEBUG && !r->ctx->verbose)
        return;
    queue_line(r, level >= VMSHIFT_LOG_WARNING ? g_strdup_printf("%s: %s: %s", r->label, lv, line)
                                               : g_strdup_printf("%s: %s", r->label, line));
}

static gboolean
hook_save(VmshiftJob *job, const char *key, const char *value, gpointer user_data, GError **error)
{
    HostJobRun *r = user_data;
    return host_journal_add_event(r->ctx->journal, r->id, "save", NULL, key, value, error);
}

/* ---- the worker ------------------------------------------------------------------------ */

static gboolean
run_validate(HostJobRun *r, GError **error)
{
    g_autoptr(GPtrArray) f = NULL;
    guint errors = 0, warnings = 0;
    const VmshiftFinding *first = NULL;

    if (!vmshift_job_set_phase(r->job, VMSHIFT_PHASE_VALIDATE, error))
        return FALSE;
    f = host_validate(r->b, r->spec, r->vm, error);
    if (!f)
        return FALSE;
    for (guint i = 0; i < f->len; i++) {
        const VmshiftFinding *x = g_ptr_array_index(f, i);
        VmshiftLogLevel lv = x->severity == VMSHIFT_SEVERITY_ERROR     ? VMSHIFT_LOG_ERROR
                             : x->severity == VMSHIFT_SEVERITY_WARNING ? VMSHIFT_LOG_WARNING
                                                                       : VMSHIFT_LOG_INFO;
        vmshift_job_log(r->job, lv, "check %s: %s", x->code, x->message);
        if (x->severity == VMSHIFT_SEVERITY_ERROR && !first)
            first = x;
    }
    host_findings_count(f, &errors, &warnings);
    if (errors) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_CONFLICT,
                    "validation failed with %u error%s (first: %s)", errors, errors == 1 ? "" : "s",
                    first->message);
        return FALSE;
    }
    if (warnings && !r->spec->force) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_CONFLICT,
                    "validation found %u warning%s; rerun with --force to accept %s", warnings,
                    warnings == 1 ? "" : "s", warnings == 1 ? "it" : "them");
        return FALSE;
    }
    return !g_cancellable_set_error_if_cancelled(vmshift_job_get_cancellable(r->job), error);
}

static gboolean
run_body(HostJobRun *r, GError **error)
{
    switch (r->kind) {
    case HOST_JOB_MIGRATE:
    case HOST_JOB_STORAGE:
        if (!run_validate(r, error))
            return FALSE;
        if (!host_backend_migrate(r->b, r->spec, r->job, error))
            return FALSE;
        if (vmshift_migration_spec_moves_storage(r->spec)
            && host_backend_has_op(r->b, "recreate_acl")) {
            g_autoptr(GError) acl = NULL;
            if (!vmshift_job_set_phase(r->job, VMSHIFT_PHASE_ACL, error))
                return FALSE;
            if (!host_backend_recreate_acl(r->b, r->spec->vm, r->job, &acl)) {
                /* the backend cannot do it for this VM or host (say, a
                 * remote libvirt host): the move itself succeeded */
                if (g_error_matches(acl, VMSHIFT_ERROR, VMSHIFT_ERROR_NOT_SUPPORTED)) {
                    vmshift_job_log(r->job, VMSHIFT_LOG_WARNING, "access rules not recreated: %s",
                                    acl->message);
                    return TRUE;
                }
                g_set_error(error, acl->domain, acl->code,
                            "the VM moved, but recreating its access rules failed: %s "
                            "(retry with 'vmshift acl recreate %s:%s')",
                            acl->message, host_backend_name(r->b), r->spec->vm);
                return FALSE;
            }
        }
        return TRUE;
    case HOST_JOB_ACL:
        if (!host_backend_has_op(r->b, "recreate_acl"))
            return host_backend_unsupported(r->b, "recreate_acl", error);
        if (!vmshift_job_set_phase(r->job, VMSHIFT_PHASE_ACL, error))
            return FALSE;
        return host_backend_recreate_acl(r->b, r->vm->name, r->job, error);
    case HOST_JOB_REPAIR: return host_backend_repair(r->b, r->job, error);
    }
    return FALSE;
}

static char *
results_json(VmshiftJob *job)
{
    g_autoptr(GHashTable) res = vmshift_job_get_results(job);
    json_object *o = json_object_new_object();
    GHashTableIter it;
    gpointer k, v;
    char *out;

    g_hash_table_iter_init(&it, res);
    while (g_hash_table_iter_next(&it, &k, &v))
        json_object_object_add(o, k, host_json_string(v));
    out = g_strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
    json_object_put(o);
    return out;
}

static gpointer
worker(gpointer data)
{
    HostJobRun *r = data;
    GError *err = NULL;
    gboolean ok = run_body(r, &err);
    VmshiftJobProgress pr = { .struct_size = sizeof pr };
    g_autofree char *results = NULL;
    g_autoptr(GError) jerr = NULL;

    if (ok) {
        g_autoptr(GError) perr = NULL;
        if (!vmshift_job_set_phase(r->job, VMSHIFT_PHASE_DONE, &perr))
            vmshift_job_log(r->job, VMSHIFT_LOG_WARNING, "could not record phase done: %s",
                            perr->message);
        r->state = g_strdup(r->kind == HOST_JOB_REPAIR ? "repaired" : "succeeded");
    } else {
        if (!err)
            g_set_error(&err, VMSHIFT_ERROR, VMSHIFT_ERROR_FAILED, "failed without a reason");
        r->state = g_strdup(g_error_matches(err, G_IO_ERROR, G_IO_ERROR_CANCELLED) ? "cancelled"
                                                                                   : "failed");
        r->error = err;
    }
    if (ok)
        vmshift_job_set_progress(r->job, 100);
    vmshift_job_get_progress(r->job, &pr);
    if (!host_journal_update_progress(r->ctx->journal, r->id, pr.percent, pr.bytes_done,
                                      pr.bytes_total, NULL, NULL, NULL, &jerr)) {
        journal_write_failed(r, jerr);
        g_clear_error(&jerr);
    }
    results = results_json(r->job);
    if (!host_journal_finish(r->ctx->journal, r->id, r->state, r->error, pr.location_host,
                             pr.location_detail, results, &jerr))
        queue_line(r, g_strdup_printf("%s: warning: %s", r->label, jerr->message));
    vmshift_job_progress_clear(&pr);
    g_atomic_int_set(&r->done, 1);
    g_main_context_wakeup(NULL);
    return NULL;
}

/* ---- main-thread API ------------------------------------------------------------------- */

HostJobRun *
host_job_run_new(HostJobContext *ctx, HostJobKind kind, HostBackend *b, const VmshiftVm *vm,
                 const VmshiftMigrationSpec *spec, gint64 repair_id, GError **error)
{
    g_autoptr(HostJobRun) r = g_new0(HostJobRun, 1);
    g_autofree char *spec_json = NULL;
    g_autofree char *id_str = NULL;
    g_autofree char *source_path = NULL;
    const char *vm_name = vm ? vm->name : spec ? spec->vm : NULL;

    r->ctx = ctx;
    r->kind = kind;
    r->b = b;
    g_mutex_init(&r->qlock);
    r->queue = g_ptr_array_new_with_free_func(g_free);
    r->hooks = (VmshiftJobHooks){
        .struct_size = sizeof(VmshiftJobHooks),
        .phase = hook_phase,
        .log = hook_log,
        .save = hook_save,
    };
    if (vm) {
        /* keep what validation needs: the caller has just fetched the VM
         * (migrate, bulk planning), so asking the plugin again would only
         * repeat that; the plugin's check_migration and migrate read the
         * live state themselves */
        r->vm = vmshift_vm_copy(vm);
    }
    r->spec = vmshift_migration_spec_copy(spec);

    if (kind == HOST_JOB_REPAIR) {
        g_autoptr(HostJobRecord) rec = host_journal_get(ctx->journal, repair_id, error);
        g_autoptr(GHashTable) saved = NULL;
        if (!rec || !host_journal_take_job(ctx->journal, repair_id, error))
            return NULL;
        saved = host_journal_saved(ctx->journal, repair_id, error);
        if (!saved)
            return NULL;
        r->id = repair_id;
        if (!r->spec && rec->spec)
            r->spec = host_spec_from_json(rec->spec, NULL);
        id_str = g_strdup_printf("%" G_GINT64_FORMAT, r->id);
        r->job = vmshift_job_new(id_str, r->spec, &r->hooks, r);
        vmshift_job_restore(r->job, vmshift_phase_from_name(rec->phase), saved);
        vmshift_job_set_location(r->job, rec->location_host, rec->location_detail);
        r->label = g_strdup_printf("job %" G_GINT64_FORMAT " (repair %s)", r->id, rec->vm);
        return g_steal_pointer(&r);
    }

    if (r->vm && r->vm->config_path)
        source_path = g_strdup(r->vm->config_path);
    spec_json = host_spec_to_json(spec, kind);
    r->id = host_journal_begin_job(ctx->journal, host_job_kind_name(kind), host_backend_name(b),
                                   vm_name, spec_json, r->vm ? r->vm->host : NULL, source_path,
                                   error);
    if (!r->id)
        return NULL;
    id_str = g_strdup_printf("%" G_GINT64_FORMAT, r->id);
    r->job = vmshift_job_new(id_str, r->spec, &r->hooks, r);
    r->label = g_strdup_printf("job %" G_GINT64_FORMAT " (%s)", r->id, vm_name);
    if (r->vm)
        vmshift_job_set_location(r->job, r->vm->host, vmshift_power_state_name(r->vm->power_state));
    return g_steal_pointer(&r);
}

void
host_job_run_start(HostJobRun *r)
{
    g_autofree char *name = g_strdup_printf("job-%" G_GINT64_FORMAT, r->id);
    r->thread = g_thread_new(name, worker, r);
}

gboolean
host_job_run_is_done(HostJobRun *r)
{
    return g_atomic_int_get(&r->done) != 0;
}

gint64
host_job_run_id(HostJobRun *r)
{
    return r->id;
}

const char *
host_job_run_state(HostJobRun *r)
{
    return r->state;
}

const GError *
host_job_run_error(HostJobRun *r)
{
    return r->error;
}

const char *
host_job_run_backend(HostJobRun *r)
{
    return host_backend_name(r->b);
}

const char *
host_job_run_dest_host(HostJobRun *r)
{
    return r->spec ? r->spec->dest_host : NULL;
}

void
host_job_run_cancel(HostJobRun *r)
{
    if (r->job && !host_job_run_is_done(r))
        vmshift_job_cancel(r->job);
}

static void
drain(HostJobRun *r)
{
    g_autoptr(GPtrArray) lines = NULL;

    g_mutex_lock(&r->qlock);
    lines = r->queue;
    r->queue = g_ptr_array_new_with_free_func(g_free);
    g_mutex_unlock(&r->qlock);
    for (guint i = 0; i < lines->len; i++) {
        if (r->ctx->progress)
            host_progress_line(r->ctx->progress, "%s", (char *)g_ptr_array_index(lines, i));
        else
            fprintf(stderr, "%s\n", (char *)g_ptr_array_index(lines, i));
    }
}

void
host_job_run_tick(HostJobRun *r)
{
    gint64 now = g_get_monotonic_time();

    if (host_job_run_is_done(r)) {
        if (r->ctx->progress)
            host_progress_remove(r->ctx->progress, r->label);
        drain(r);
        return;
    }
    drain(r);
    if (now - r->last_cancel_poll >= 200 * 1000) {
        r->last_cancel_poll = now;
        if (!r->cancel_seen && host_journal_cancel_requested(r->ctx->journal, r->id)) {
            r->cancel_seen = TRUE;
            if (r->ctx->progress)
                host_progress_line(r->ctx->progress, "%s: cancel requested, cancelling", r->label);
            vmshift_job_cancel(r->job);
        }
    }
    if (r->ctx->progress)
        host_progress_update(r->ctx->progress, r->label, r->job);
    if (now - r->last_journal >= G_USEC_PER_SEC) {
        VmshiftJobProgress pr = { .struct_size = sizeof pr };
        /* results a plugin sets while running survive a killed process */
        g_autofree char *results = results_json(r->job);
        g_autoptr(GError) err = NULL;
        r->last_journal = now;
        vmshift_job_get_progress(r->job, &pr);
        if (!host_journal_update_progress(r->ctx->journal, r->id, pr.percent, pr.bytes_done,
                                          pr.bytes_total, pr.location_host, pr.location_detail,
                                          results, &err))
            journal_write_failed(r, err);
        vmshift_job_progress_clear(&pr);
    }
}

void
host_job_run_free(HostJobRun *r)
{
    if (!r)
        return;
    if (r->thread)
        g_thread_join(r->thread);
    if (r->job)
        vmshift_job_unref(r->job);
    vmshift_vm_free(r->vm);
    vmshift_migration_spec_free(r->spec);
    g_clear_error(&r->error);
    g_free(r->state);
    g_free(r->label);
    g_ptr_array_unref(r->queue);
    g_mutex_clear(&r->qlock);
    g_free(r);
}

typedef struct {
    HostJobContext *ctx;
    GPtrArray *runs;
    GMainLoop *loop;
    HostJobsMore more;
    gpointer more_data;
    gboolean more_pending;
} WaitState;

static gboolean
all_done(WaitState *w)
{
    for (guint i = 0; i < w->runs->len; i++)
        if (!host_job_run_is_done(g_ptr_array_index(w->runs, i)))
            return FALSE;
    return !w->more_pending;
}

static gboolean
on_tick(gpointer data)
{
    WaitState *w = data;

    if (w->more && w->more_pending)
        w->more_pending = w->more(w->more_data, w->runs);
    for (guint i = 0; i < w->runs->len; i++)
        host_job_run_tick(g_ptr_array_index(w->runs, i));
    if (all_done(w))
        g_main_loop_quit(w->loop);
    return G_SOURCE_CONTINUE;
}

static gboolean
on_signal(gpointer data)
{
    WaitState *w = data;

    w->ctx->stopping = TRUE;
    for (guint i = 0; i < w->runs->len; i++) {
        HostJobRun *r = g_ptr_array_index(w->runs, i);
        g_autoptr(GError) err = NULL;
        if (host_job_run_is_done(r))
            continue;
        if (w->ctx->progress)
            host_progress_line(w->ctx->progress, "%s: interrupted, cancelling", r->label);
        if (!host_journal_add_event(w->ctx->journal, r->id, "cancel", "warning", "cancel",
                                    "cancelled by a signal", &err))
            journal_write_failed(r, err);
        host_job_run_cancel(r);
    }
    return G_SOURCE_CONTINUE;
}

void
host_jobs_wait_full(HostJobContext *ctx, GPtrArray *runs, HostJobsMore more, gpointer more_data)
{
    WaitState w = {
        .ctx = ctx, .runs = runs, .more = more, .more_data = more_data, .more_pending = more != NULL
    };
    guint tick, sint, sterm;

    w.loop = g_main_loop_new(NULL, FALSE);
    tick = g_timeout_add(100, on_tick, &w);
    sint = g_unix_signal_add(SIGINT, on_signal, &w);
    sterm = g_unix_signal_add(SIGTERM, on_signal, &w);
    on_tick(&w);
    if (!all_done(&w))
        g_main_loop_run(w.loop);
    g_source_remove(tick);
    g_source_remove(sint);
    g_source_remove(sterm);
    if (ctx->progress)
        host_progress_finish(ctx->progress);
    for (guint i = 0; i < runs->len; i++) {
        HostJobRun *r = g_ptr_array_index(runs, i);
        if (r->thread) {
            g_thread_join(r->thread);
            r->thread = NULL;
        }
        drain(r);
    }
    g_main_loop_unref(w.loop);
}

void
host_jobs_wait(HostJobContext *ctx, GPtrArray *runs)
{
    host_jobs_wait_full(ctx, runs, NULL, NULL);
}
