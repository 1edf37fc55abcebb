/*
 * vmshift host: what the journal says about a VM's moves, for the commands
 * that look back at them: `job repair` (is the VM held by an interrupted
 * job? where did it come from?), `acl recreate` (the access data its last
 * move saved) and `bulk --reverse` (its last move that took effect, and
 * the exact directories its files came from).
 */
#include "config.h"

#include <string.h>

#include "host/host.h"

#define SOURCE_DISK_KEY "vmshift.disk:"
#define SOURCE_NIC_KEY "vmshift.nic:"

static const char *
result_of(const HostJobRecord *rec, const char *key, char **out)
{
    json_object *o = rec->results ? json_tokener_parse(rec->results) : NULL;
    json_object *v;

    *out = NULL;
    if (o && json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_string))
        *out = g_strdup(json_object_get_string(v));
    if (o)
        json_object_put(o);
    return *out;
}

static gboolean
is_move(const HostJobRecord *rec)
{
    return !g_strcmp0(rec->kind, "migrate") || !g_strcmp0(rec->kind, "migrate-storage");
}

gboolean
host_move_took_effect(const HostJobRecord *rec)
{
    g_autofree char *moved = NULL;
    g_autofree char *how = NULL;

    if (!is_move(rec))
        return FALSE;
    if (!g_strcmp0(rec->state, "succeeded"))
        return TRUE;
    if (g_strcmp0(rec->state, "repaired") != 0)
        return FALSE;
    /* the host's own verdict of the repair, else the plugin's */
    if (result_of(rec, "moved", &moved))
        return !strcmp(moved, "true");
    result_of(rec, "repair", &how);
    return !g_strcmp0(how, "resumed") || !g_strcmp0(how, "retried");
}

HostJobRecord *
host_last_move(HostJournal *j, const char *backend, const char *vm, GError **error)
{
    HostJobFilter f = { .backend = backend, .vm = vm };
    g_autoptr(GPtrArray) list = host_journal_list_filtered(j, &f, error);

    for (guint i = 0; list && i < list->len; i++) {
        HostJobRecord *r = g_ptr_array_index(list, i);
        if (host_move_took_effect(r))
            return host_journal_get(j, r->id, error);
    }
    return NULL;
}

gint64
host_interrupted_job(HostJournal *j, const char *backend, const char *vm, GError **error)
{
    HostJobFilter f = { .state = "interrupted", .backend = backend, .vm = vm };
    g_autoptr(GPtrArray) list = host_journal_list_filtered(j, &f, error);

    if (!list)
        return -1;
    /* the oldest first: it is the one the VM's state hangs on */
    return list->len ? ((HostJobRecord *)g_ptr_array_index(list, list->len - 1))->id : 0;
}

gboolean
host_record_source(HostJournal *j, gint64 id, const VmshiftVm *vm, GError **error)
{
    for (guint i = 0; vm && vm->disks && i < vm->disks->len; i++) {
        const VmshiftDisk *d = g_ptr_array_index(vm->disks, i);
        g_autofree char *key = NULL;
        if (!d->id || !d->path)
            continue;
        key = g_strconcat(SOURCE_DISK_KEY, d->id, NULL);
        if (!host_journal_add_event(j, id, "save", NULL, key, d->path, error))
            return FALSE;
    }
    /* and the network of each NIC, which a --network (or a plan's
     * [networks BACKEND]) may change: --reverse puts it back */
    for (guint i = 0; vm && vm->nics && i < vm->nics->len; i++) {
        const VmshiftNic *n = g_ptr_array_index(vm->nics, i);
        g_autofree char *key = NULL;
        if (!n->id || !n->network)
            continue;
        key = g_strconcat(SOURCE_NIC_KEY, n->id, NULL);
        if (!host_journal_add_event(j, id, "save", NULL, key, n->network, error))
            return FALSE;
    }
    return TRUE;
}

/* The NICs of @now that a job moved off the network they had (@saved: its
 * saved values), as --network ID=NET items putting each back (NULL when
 * none). */
static char **
reverse_networks(GHashTable *saved, const VmshiftVm *now)
{
    g_autoptr(GPtrArray) out = g_ptr_array_new_null_terminated(2, g_free, TRUE);
    for (guint i = 0; saved && now && now->nics && i < now->nics->len; i++) {
        const VmshiftNic *n = g_ptr_array_index(now->nics, i);
        g_autofree char *key = n->id ? g_strconcat(SOURCE_NIC_KEY, n->id, NULL) : NULL;
        const char *was = key ? g_hash_table_lookup(saved, key) : NULL;
        if (was && g_strcmp0(was, n->network) != 0)
            g_ptr_array_add(out, g_strdup_printf("%s=%s", n->id, was));
    }
    return out->len ? (char **)g_ptr_array_steal(out, NULL) : NULL;
}

static gboolean
is_sep(char c)
{
    return c == '/' || c == '\\';
}

/* @now is @dir + separator + REL: returns REL (inside @now), else NULL. */
static const char *
below(const char *now, const char *dir)
{
    size_t n = dir ? strlen(dir) : 0;

    while (n > 1 && is_sep(dir[n - 1]))
        n--;
    if (!now || !n || strncmp(now, dir, n) != 0 || !is_sep(now[n]))
        return NULL;
    while (is_sep(now[n]))
        n++;
    return now[n] ? now + n : NULL;
}

/* @orig without the trailing separator + @rel: the directory that, given as
 * a move's destination, puts the file back at @orig; NULL when @orig does
 * not end in @rel. */
static char *
strip_rel(const char *orig, const char *rel)
{
    size_t lo = strlen(orig), lr = strlen(rel);

    if (lo <= lr + 1 || strcmp(orig + lo - lr, rel) != 0 || !is_sep(orig[lo - lr - 1]))
        return NULL;
    lo -= lr;
    while (lo > 1 && is_sep(orig[lo - 1]))
        lo--;
    return g_strndup(orig, lo);
}

/* The storage part of the reverse of @old: the directories that put the
 * VM's configuration and each disk back where they were. */
static void
reverse_storage(GHashTable *saved, const HostJobRecord *rec, const VmshiftMigrationSpec *old,
                const VmshiftVm *now, HostMigrateOpts *o)
{
    g_autoptr(GPtrArray) dp = g_ptr_array_new_with_free_func(g_free);
    const char *rel = below(now->config_path, old->dest_path);

    if (rel && rec->source_path)
        o->path = strip_rel(rec->source_path, rel);
    for (guint i = 0; saved && now->disks && i < now->disks->len; i++) {
        const VmshiftDisk *d = g_ptr_array_index(now->disks, i);
        g_autofree char *key = g_strconcat(SOURCE_DISK_KEY, d->id, NULL);
        const char *orig = g_hash_table_lookup(saved, key);
        const char *drel = below(d->path, vmshift_migration_spec_disk_dir(old, d->id));
        g_autofree char *dir = orig && drel ? strip_rel(orig, drel) : NULL;
        if (dir && g_strcmp0(dir, o->path) != 0)
            g_ptr_array_add(dp, g_strdup_printf("%s=%s", d->id, dir));
    }
    if (dp->len) {
        g_ptr_array_add(dp, NULL);
        o->disk_paths = (char **)g_ptr_array_steal(dp, NULL);
    }
    /* nothing could be derived (the backend names storage otherwise, say a
     * datastore): the directory the journal recorded */
    if (!o->path && !o->disk_paths && rec->source_path)
        o->path = g_strdup(rec->source_path);
}

gboolean
host_reverse_opts(HostJournal *j, const HostJobRecord *rec, const VmshiftVm *now,
                  HostMigrateOpts *o, gboolean *storage_only, GError **error)
{
    g_autoptr(VmshiftMigrationSpec) old = rec->spec ? host_spec_from_json(rec->spec, NULL) : NULL;
    g_autoptr(GHashTable) saved = NULL; /* what the job saved, read once */

    if (!old) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_NOT_FOUND,
                    "job %" G_GINT64_FORMAT ": the journal has no spec of the move to reverse",
                    rec->id);
        return FALSE;
    }
    saved = host_journal_saved(j, rec->id, NULL);
    *storage_only = old->type == VMSHIFT_MIGRATION_STORAGE || !old->dest_host
                    || !g_strcmp0(old->dest_host, rec->source_host);
    if (!*storage_only) {
        if (!rec->source_host) {
            g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_NOT_FOUND,
                        "job %" G_GINT64_FORMAT ": the journal does not say which host VM '%s' "
                        "came from",
                        rec->id, rec->vm);
            return FALSE;
        }
        o->to = g_strdup_printf("%s:%s", rec->backend, rec->source_host);
        g_strfreev(o->networks);
        o->networks = reverse_networks(saved, now);
    }
    if (vmshift_migration_spec_moves_storage(old))
        reverse_storage(saved, rec, old, now, o);
    if (*storage_only && !o->path && !o->disk_paths) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_NOT_FOUND,
                    "job %" G_GINT64_FORMAT ": the journal does not say where the files of VM "
                    "'%s' were",
                    rec->id, rec->vm);
        return FALSE;
    }
    return TRUE;
}
