/*
 * vmshift host: bulk migrations from a plan file.
 *
 * A plan is a GKeyFile:
 *
 *   [bulk]
 *   max-per-backend = 2        # jobs at once per backend (default 2)
 *   max-per-host = 1           # jobs at once touching a host (default 1)
 *   window = 22:00-06:00       # jobs start only inside this local-time window
 *
 *   [wave 1]
 *   vms = kvm1:web1; web2      # VM or BACKEND:VM, ';' or ',' separated
 *   to = hostB                 # or: to-group = G
 *   type = live                # live or cold (default: live when running)
 *   path = /srv/vms            # optional storage move
 *   transfer = auto            # auto, san, network
 *   to.web2 = hostC            # per-VM destination
 *   switchover = 2026-01-31T22:00  # switch over at this time (local, or Z/+01:00)
 *
 *   [networks kvm]             # NICs of VMs sent to backend kvm:
 *   VM Network = br0           # from network "VM Network" onto br0
 *
 * Waves run in order of their number, one after the other; inside a wave,
 * jobs run concurrently within the limits. --reverse moves every VM of the
 * plan back to the host and the exact directories its last move that took
 * effect (succeeded, or repaired by resuming or retrying it) started from,
 * storage-only moves included, waves in reverse order. Every VM ends as
 * moved, failed or skipped with a reason (cmd-bulk.c accounts for them).
 *
 * A wave's switchover= (plan.c) schedules the switchover of its jobs: where
 * the backend copies ahead the jobs start as the limits allow and hold before
 * their switchover until the time; elsewhere they start at the time. A time
 * that had passed when the plan was read fails the wave's VMs; --reverse
 * moves back at once (the plan's times are for the way there).
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "host/crossmove.h"
#include "host/rules.h"

static void
item_free(HostBulkItem *it)
{
    g_free(it->vm);
    host_migrate_opts_clear(&it->opts);
    g_free(it->skipped);
    vmshift_vm_free(it->vmrec);
    vmshift_migration_spec_free(it->spec);
    g_free(it->error);
    g_free(it->placement);
    g_free(it->failure);
    host_job_run_free(it->run);
    g_free(it);
}

static void
wave_free(HostBulkWave *w)
{
    g_free(w->group);
    g_free(w->switchover_where);
    g_ptr_array_unref(w->items);
    g_free(w);
}

static gint
compare_waves(gconstpointer a, gconstpointer b)
{
    const HostBulkWave *x = *(HostBulkWave *const *)a, *y = *(HostBulkWave *const *)b;
    return x->number - y->number;
}

static gboolean
parse_hhmm(const char *s, int *minutes)
{
    unsigned h, m;
    char extra;
    if (sscanf(s, "%u:%u%c", &h, &m, &extra) != 2 || h > 23 || m > 59)
        return FALSE;
    *minutes = (int)(h * 60 + m);
    return TRUE;
}

static gboolean
in_window(HostBulk *bk)
{
    g_autoptr(GDateTime) now = NULL;
    int m;

    if (bk->win_start < 0)
        return TRUE;
    now = g_date_time_new_now_local();
    m = g_date_time_get_hour(now) * 60 + g_date_time_get_minute(now);
    if (bk->win_start <= bk->win_end)
        return m >= bk->win_start && m < bk->win_end;
    return m >= bk->win_start || m < bk->win_end; /* over midnight */
}

static char *
kf_str(GKeyFile *kf, const char *group, const char *key)
{
    char *v = g_key_file_get_value(kf, group, key, NULL);
    if (v) {
        g_strstrip(v);
        if (!*v)
            g_clear_pointer(&v, g_free);
    }
    return v;
}

/* The line of [@group]@key from host_keyfile_prescan's table (0: unknown). */
static guint
key_line(GHashTable *lines, const char *group, const char *key)
{
    g_autofree char *k = g_strdup_printf("[%s]%s", group, key);
    return GPOINTER_TO_UINT(g_hash_table_lookup(lines, k));
}

/* Each to.NAME of wave @g names a VM of its vms= list (NAME or BACKEND:NAME):
 * a typo would silently send the VM to the wave's default host. */
static gboolean
check_overrides(const char *file, GHashTable *lines, GKeyFile *kf, const char *g, const char *vms,
                GError **error)
{
    g_auto(GStrv) keys = g_key_file_get_keys(kf, g, NULL, NULL);
    g_auto(GStrv) list = g_strsplit_set(vms, ";,", -1);

    for (guint k = 0; keys[k]; k++) {
        const char *name = keys[k] + 3;
        gboolean found = FALSE;
        if (!g_str_has_prefix(keys[k], "to."))
            continue;
        for (guint i = 0; list[i] && !found; i++) {
            const char *vm = g_strstrip(list[i]);
            const char *colon = strchr(vm, ':');
            found = !strcmp(vm, name) || (colon && !strcmp(colon + 1, name));
        }
        if (!found) {
            g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_CONFIG,
                        "%s:%u: [%s]: %s names no VM of this wave's vms=", file,
                        key_line(lines, g, keys[k]), g, keys[k]);
            return FALSE;
        }
    }
    return TRUE;
}

/* [wave N] switchover=: a time as plan.c reads it, or one line naming the
 * file and line. */
static gboolean
read_switchover(const char *file, GHashTable *lines, GKeyFile *kf, HostBulkWave *w, GError **error)
{
    g_autofree char *v = g_key_file_get_value(kf, w->group, "switchover", NULL);
    guint line = key_line(lines, w->group, "switchover");

    if (!v)
        return TRUE;
    g_strstrip(v);
    if (!host_parse_switchover(v, &w->switchover_at, error)) {
        g_prefix_error(error, "%s:%u: [%s]: switchover: ", file, line, w->group);
        return FALSE;
    }
    w->switchover_where = g_strdup_printf("%s:%u: [%s]", file, line, w->group);
    return TRUE;
}

/* [bulk]: the limits and the window into @bk. */
static gboolean
read_bulk_group(const char *file, GHashTable *lines, GKeyFile *kf, const char *g, HostBulk *bk,
                GError **error)
{
    g_auto(GStrv) keys = g_key_file_get_keys(kf, g, NULL, NULL);
    for (guint k = 0; keys[k]; k++) {
        g_autofree char *v = kf_str(kf, g, keys[k]);
        gint64 n;
        if (!strcmp(keys[k], "max-per-backend") || !strcmp(keys[k], "max-per-host")) {
            if (!v || !g_ascii_string_to_signed(v, 10, 1, 1000, &n, NULL)) {
                g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_CONFIG,
                            "%s:%u: [bulk]: %s must be a number from 1 to 1000", file,
                            key_line(lines, g, keys[k]), keys[k]);
                return FALSE;
            }
            if (keys[k][8] == 'b')
                bk->max_backend = n;
            else
                bk->max_host = n;
        } else if (!strcmp(keys[k], "window")) {
            g_auto(GStrv) p = v ? g_strsplit(v, "-", 2) : NULL;
            if (!p || g_strv_length(p) != 2 || !parse_hhmm(g_strstrip(p[0]), &bk->win_start)
                || !parse_hhmm(g_strstrip(p[1]), &bk->win_end)) {
                g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_CONFIG,
                            "%s:%u: [bulk]: window must look like 22:00-06:00", file,
                            key_line(lines, g, "window"));
                return FALSE;
            }
            if (bk->win_start == bk->win_end) {
                g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_CONFIG,
                            "%s:%u: [bulk]: window %s starts where it ends", file,
                            key_line(lines, g, "window"), v);
                return FALSE;
            }
            g_free(bk->window);
            bk->window = g_strdup(v);
        } else {
            g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_CONFIG,
                        "%s:%u: [bulk]: unknown key '%s'", file, key_line(lines, g, keys[k]),
                        keys[k]);
            return FALSE;
        }
    }
    return TRUE;
}

/* A [networks BACKEND] group: each key a network of the source, its value
 * the network of BACKEND that NICs on it go to; added to @map as
 * "BACKEND:SOURCE=DEST" */
static gboolean
read_networks_group(const char *file, GHashTable *lines, GKeyFile *kf, const char *g, HostBulk *bk,
                    GPtrArray *map, GError **error)
{
    const char *backend = g + strlen("networks ");
    g_auto(GStrv) keys = g_key_file_get_keys(kf, g, NULL, NULL);
    if (!*backend || strchr(backend, ':') || strchr(backend, ' ')) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_CONFIG,
                    "%s:%u: [%s]: name one backend, e.g. [networks kvm]", file,
                    key_line(lines, g, ""), g);
        return FALSE;
    }
    if (bk->reg && !host_registry_find(bk->reg, backend)) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_CONFIG,
                    "%s:%u: [%s]: no backend '%s' is configured", file, key_line(lines, g, ""), g,
                    backend);
        return FALSE;
    }
    for (guint k = 0; keys && keys[k]; k++) {
        g_autofree char *v = kf_str(kf, g, keys[k]);
        if (!v || !*v) {
            g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_CONFIG,
                        "%s:%u: [%s]: '%s' maps to no network", file, key_line(lines, g, keys[k]),
                        g, keys[k]);
            return FALSE;
        }
        g_ptr_array_add(map, g_strdup_printf("%s:%s=%s", backend, keys[k], v));
    }
    return TRUE;
}

GPtrArray *
host_bulk_load_plan(const char *file, HostBulk *bk, GError **error)
{
    g_autoptr(GKeyFile) kf = g_key_file_new();
    g_autoptr(GPtrArray) waves = g_ptr_array_new_with_free_func((GDestroyNotify)wave_free);
    g_auto(GStrv) groups = NULL;
    g_autofree char *data = NULL;
    g_autoptr(GHashTable) lines = NULL;
    g_autoptr(GPtrArray) netmap = g_ptr_array_new_null_terminated(4, g_free, TRUE);

    if (!host_read_file(file, "plan file", HOST_CONFIG_MAX, &data, error)
        || !host_keyfile_prescan(file, data, &lines, error))
        return NULL;
    if (!g_key_file_load_from_data(kf, data, -1, G_KEY_FILE_NONE, error)) {
        g_prefix_error(error, "%s: ", file);
        return NULL;
    }
    bk->max_backend = 2;
    bk->max_host = 1;
    bk->win_start = bk->win_end = -1;
    bk->loaded_at = g_get_real_time() / G_USEC_PER_SEC;
    groups = g_key_file_get_groups(kf, NULL);
    for (guint i = 0; groups[i]; i++) {
        const char *g = groups[i];
        if (!strcmp(g, "bulk")) {
            if (!read_bulk_group(file, lines, kf, g, bk, error))
                return NULL;
        } else if (g_str_has_prefix(g, "networks ")) {
            if (!read_networks_group(file, lines, kf, g, bk, netmap, error))
                return NULL;
        } else if (g_str_has_prefix(g, "wave ")) {
            gint64 n;
            HostBulkWave *w;
            g_autofree char *vms = kf_str(kf, g, "vms");
            g_autofree char *to = kf_str(kf, g, "to");
            g_autofree char *to_group = kf_str(kf, g, "to-group");
            g_autofree char *type = kf_str(kf, g, "type");
            g_autofree char *path = kf_str(kf, g, "path");
            g_autofree char *transfer = kf_str(kf, g, "transfer");
            gboolean delete_source = FALSE; /* moves between backends */
            g_auto(GStrv) list = NULL;
            g_auto(GStrv) keys = g_key_file_get_keys(kf, g, NULL, NULL);

            if (!g_ascii_string_to_signed(g + 5, 10, 0, 100000, &n, NULL)) {
                g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_CONFIG,
                            "%s: [%s]: a wave is named by a number, e.g. [wave 1]", file, g);
                return NULL;
            }
            for (guint k = 0; keys[k]; k++) {
                static const char *const known[] = { "vms",        "to",           "to-group",
                                                     "type",       "path",         "transfer",
                                                     "switchover", "delete-source" };
                gboolean ok = g_str_has_prefix(keys[k], "to.");
                for (guint q = 0; q < G_N_ELEMENTS(known); q++)
                    ok |= !strcmp(keys[k], known[q]);
                if (!ok) {
                    g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_CONFIG,
                                "%s:%u: [%s]: unknown key '%s'", file, key_line(lines, g, keys[k]),
                                g, keys[k]);
                    return NULL;
                }
            }
            if (!vms) {
                g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_CONFIG,
                            "%s:%u: [%s]: missing key 'vms'", file, key_line(lines, g, ""), g);
                return NULL;
            }
            if (g_key_file_has_key(kf, g, "path", NULL) && (!path || !g_path_is_absolute(path))) {
                g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_CONFIG,
                            "%s:%u: [%s]: path must be an absolute directory, not '%s'", file,
                            key_line(lines, g, "path"), g, path ? path : "");
                return NULL;
            }
            if (!check_overrides(file, lines, kf, g, vms, error))
                return NULL;
            if (g_key_file_has_key(kf, g, "delete-source", NULL)) {
                g_autoptr(GError) berr = NULL;
                delete_source = g_key_file_get_boolean(kf, g, "delete-source", &berr);
                if (berr) {
                    g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_CONFIG,
                                "%s:%u: [%s]: delete-source must be true or false", file,
                                key_line(lines, g, "delete-source"), g);
                    return NULL;
                }
            }
            if (type && strcmp(type, "live") && strcmp(type, "cold")) {
                g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_CONFIG,
                            "%s:%u: [%s]: type must be live or cold", file,
                            key_line(lines, g, "type"), g);
                return NULL;
            }
            w = g_new0(HostBulkWave, 1);
            w->number = (int)n;
            w->group = g_strdup(g);
            w->items = g_ptr_array_new_with_free_func((GDestroyNotify)item_free);
            g_ptr_array_add(waves, w);
            if (!read_switchover(file, lines, kf, w, error))
                return NULL;
            list = g_strsplit_set(vms, ";,", -1);
            for (guint k = 0; list[k]; k++) {
                HostBulkItem *it;
                g_autofree char *okey = NULL;
                g_autofree char *own = NULL;
                const char *colon;
                g_strstrip(list[k]);
                if (!*list[k])
                    continue;
                it = g_new0(HostBulkItem, 1);
                it->vm = g_strdup(list[k]);
                colon = strchr(list[k], ':');
                okey = g_strdup_printf("to.%s", colon ? colon + 1 : list[k]);
                own = kf_str(kf, g, okey);
                if (!own) {
                    g_free(okey);
                    okey = g_strdup_printf("to.%s", list[k]);
                    own = kf_str(kf, g, okey);
                }
                it->opts.to = g_strdup(own ? own : to);
                it->opts.to_group = own ? NULL : g_strdup(to_group);
                it->opts.live = type && !strcmp(type, "live");
                it->opts.cold = type && !strcmp(type, "cold");
                it->opts.path = g_strdup(path);
                it->opts.transfer = g_strdup(transfer);
                it->opts.delete_source = delete_source;
                it->opts.switchover_at = g_key_file_get_value(kf, g, "switchover", NULL);
                if (it->opts.switchover_at)
                    g_strstrip(it->opts.switchover_at);
                if (!it->opts.to && !it->opts.to_group)
                    it->error = g_strdup_printf("%s: [%s]: no 'to' or 'to-group' for VM '%s'", file,
                                                g, it->vm);
                g_ptr_array_add(w->items, it);
            }
            if (!w->items->len) {
                g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_CONFIG,
                            "%s:%u: [%s]: 'vms' names no VM", file, key_line(lines, g, "vms"), g);
                return NULL;
            }
        } else {
            g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_CONFIG,
                        "%s: unknown group [%s] (expected [bulk], [wave N] or "
                        "[networks BACKEND])",
                        file, g);
            return NULL;
        }
    }
    if (!waves->len) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_CONFIG, "%s: the plan has no [wave N]",
                    file);
        return NULL;
    }
    for (guint i = 0; netmap->len && i < waves->len; i++) {
        HostBulkWave *w = g_ptr_array_index(waves, i);
        for (guint k = 0; k < w->items->len; k++) {
            HostBulkItem *it = g_ptr_array_index(w->items, k);
            it->opts.network_map = g_strdupv((char **)netmap->pdata);
        }
    }
    g_ptr_array_sort(waves, compare_waves);
    return g_steal_pointer(&waves);
}

/* --reverse of one VM: back to the host and the exact directories its last
 * move that took effect (a repaired one included) started from. */
static void
reverse_item(HostBulk *bk, HostBulkItem *it, HostJournal *j)
{
    g_autofree char *bn = NULL, *vn = NULL;
    g_autoptr(HostJobRecord) rec = NULL;
    g_autoptr(VmshiftVm) now = NULL;
    g_autoptr(GError) err = NULL;
    HostBackend *b;

    host_split_name(bk->reg, it->vm, &bn, &vn);
    g_clear_pointer(&it->opts.to, g_free);
    g_clear_pointer(&it->opts.to_group, g_free);
    g_clear_pointer(&it->opts.path, g_free);
    g_clear_pointer(&it->opts.disk_paths, g_strfreev);
    it->opts.live = it->opts.cold = FALSE;
    g_clear_pointer(&it->opts.switchover_at, g_free); /* back at once */
    /* NICs go back to the networks they had, not through the plan's map */
    g_clear_pointer(&it->opts.network_map, g_strfreev);
    g_clear_pointer(&it->opts.networks, g_strfreev);
    g_clear_pointer(&it->error, g_free);
    rec = host_last_move(j, bn, vn, &err);
    if (!rec) {
        it->error = err ? g_strdup(err->message)
                        : g_strdup_printf("VM '%s': the journal records no move of it to reverse",
                                          it->vm);
        return;
    }
    if (!bn) {
        g_free(it->vm);
        it->vm = g_strdup_printf("%s:%s", rec->backend, vn);
    }
    b = host_registry_get_open(bk->reg, rec->backend, NULL);
    if (host_cross_reverse(rec, b, &it->vm, &it->opts)) {
        it->storage_only = FALSE; /* back to the backend and host it came from */
        return;
    }
    if (!(b = host_registry_get_open(bk->reg, rec->backend, &err))
        || !(now = host_backend_get_vm(b, rec->vm, &err))
        || !host_reverse_opts(j, rec, now, &it->opts, &it->storage_only, &err))
        it->error = g_strdup(err->message);
}

/* --reverse: back to where the journal says each VM came from. */
void
host_bulk_reverse(HostBulk *bk, GPtrArray *waves, HostJournal *j)
{
    for (guint w = 0; w < waves->len; w++) {
        HostBulkWave *wave = g_ptr_array_index(waves, w);
        wave->number = -wave->number;
        wave->switchover_at = 0;
        for (guint i = 0; i < wave->items->len; i++)
            reverse_item(bk, g_ptr_array_index(wave->items, i), j);
    }
    g_ptr_array_sort(waves, compare_waves);
}

void
host_bulk_plan_wave(HostBulk *bk, HostBulkWave *wave, gboolean force)
{
    for (guint i = 0; i < wave->items->len; i++) {
        HostBulkItem *it = g_ptr_array_index(wave->items, i);
        g_autoptr(GError) err = NULL;
        it->opts.force = force;
        if (it->error)
            continue;
        if (wave->switchover_at && wave->switchover_at < bk->loaded_at) {
            g_autofree char *when = host_format_switchover(wave->switchover_at);
            it->error = g_strdup_printf("%s: switchover time %s had passed when the plan was "
                                        "read; VM '%s' not moved",
                                        wave->switchover_where, when, it->vm);
            continue;
        }
        if (!bk->placed)
            bk->placed = host_place_run_new();
        it->spec = host_build_spec_run(bk->reg, it->vm, &it->opts, it->storage_only, bk->placed,
                                       &it->b, &it->vmrec, &it->placement, &err);
        if (!it->spec)
            it->error = g_strdup(err->message);
    }
}

/* What runs now (started, not finished) per backend and per backend+host,
 * counted once per scheduling pass: "BACKEND" and "BACKEND\nHOST" -> count. */
static void
count_add(GHashTable *n, const char *backend, const char *host)
{
    char *k = host ? g_strdup_printf("%s\n%s", backend, host) : g_strdup(backend);
    g_hash_table_insert(n, k, GUINT_TO_POINTER(GPOINTER_TO_UINT(g_hash_table_lookup(n, k)) + 1));
}

static void
count_run(GHashTable *n, HostBulkItem *it)
{
    const char *bn = host_backend_name(it->b);
    count_add(n, bn, NULL);
    /* a job touches its destination and its source host (once when equal) */
    if (it->spec->dest_host)
        count_add(n, bn, it->spec->dest_host);
    if (it->vmrec->host && g_strcmp0(it->vmrec->host, it->spec->dest_host))
        count_add(n, bn, it->vmrec->host);
}

static guint
count_get(GHashTable *n, const char *backend, const char *host)
{
    g_autofree char *k = host ? g_strdup_printf("%s\n%s", backend, host) : g_strdup(backend);
    return GPOINTER_TO_UINT(g_hash_table_lookup(n, k));
}

static gboolean
host_busy(HostBulk *bk, GHashTable *n, const char *backend, const char *host)
{
    return host && count_get(n, backend, host) >= bk->max_host;
}

void
host_bulk_retire(HostBulk *bk, GPtrArray *runs)
{
    for (guint i = 0; i < bk->wave->items->len; i++) {
        HostBulkItem *it = g_ptr_array_index(bk->wave->items, i);
        const GError *e;
        if (!it->run || !host_job_run_is_done(it->run))
            continue;
        it->job_id = host_job_run_id(it->run);
        e = host_job_run_error(it->run);
        if (e)
            it->failure = g_strdup_printf("job %" G_GINT64_FORMAT " %s: %s", it->job_id,
                                          host_job_run_state(it->run), e->message);
        host_job_run_tick(it->run); /* its last lines; its line leaves the progress block */
        g_ptr_array_remove(runs, it->run);
        g_clear_pointer(&it->run, host_job_run_free);
        it->finished = TRUE;
    }
}

gboolean
host_bulk_schedule(gpointer data, GPtrArray *runs)
{
    HostBulk *bk = data;
    gboolean pending = FALSE;
    g_autoptr(GHashTable) n = NULL;

    host_bulk_retire(bk, runs);
    if (bk->ctx->stopping)
        return FALSE;
    n = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    for (guint i = 0; i < bk->wave->items->len; i++) {
        HostBulkItem *it = g_ptr_array_index(bk->wave->items, i);
        if (it->started && !it->finished)
            count_run(n, it);
    }
    for (guint i = 0; i < bk->wave->items->len; i++) {
        HostBulkItem *it = g_ptr_array_index(bk->wave->items, i);
        const char *bn;
        g_autoptr(GError) err = NULL;
        if (it->started || it->error)
            continue;
        pending = TRUE;
        if (!in_window(bk)) {
            if (!bk->waiting_shown)
                host_progress_line(bk->ctx->progress, "waiting for the switchover window %s",
                                   bk->window);
            bk->waiting_shown = TRUE;
            return TRUE;
        }
        bk->waiting_shown = FALSE;
        bn = host_backend_name(it->b);
        if (count_get(n, bn, NULL) >= bk->max_backend || host_busy(bk, n, bn, it->spec->dest_host)
            || host_busy(bk, n, bn, it->vmrec->host))
            continue;
        it->run = host_job_run_new(bk->ctx, it->storage_only ? HOST_JOB_STORAGE : HOST_JOB_MIGRATE,
                                   it->b, it->vmrec, it->spec, 0, &err);
        it->started = TRUE;
        if (!it->run) {
            /* a VM busy with another job, or held by an interrupted one */
            it->finished = TRUE;
            it->skipped = g_strdup(err->message);
            continue;
        }
        count_run(n, it);
        bk->jobs_started++;
        host_progress_line(
            bk->ctx->progress, "job %" G_GINT64_FORMAT ": %s %s to %s", host_job_run_id(it->run),
            it->storage_only ? "migrate-storage" : "migrate", it->vm,
            it->storage_only
                ? (it->spec->dest_path ? it->spec->dest_path : "its disks' directories")
                : it->spec->dest_host);
        host_job_run_start(it->run);
        g_ptr_array_add(runs, it->run);
    }
    return pending;
}

void
host_bulk_clear(HostBulk *bk)
{
    g_clear_pointer(&bk->window, g_free);
    g_clear_pointer(&bk->placed, host_place_run_free);
}
