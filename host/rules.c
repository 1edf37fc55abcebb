/*
 * vmshift host: the rule engine — facts in, findings (canonical codes of
 * <vmshift/findings.h>) out. See rules.h.
 */
#include "config.h"

#include <stdarg.h>
#include <string.h>

#include "host/rules.h"

/* ---- facts of a backend ------------------------------------------------------------- */

static void
add_host_volume(GHashTable *map, const char *host, VmshiftVolume *v)
{
    GPtrArray *a = g_hash_table_lookup(map, host);
    if (!a) {
        a = g_ptr_array_new();
        g_hash_table_insert(map, g_strdup(host), a);
    }
    g_ptr_array_add(a, v);
}

/* Each volume under the hosts that reach it: its own host, the hosts a
 * shared volume names, or every host (a volume that names none). */
static void
index_volumes(HostFacts *f)
{
    for (guint i = 0; f->volumes && i < f->volumes->len; i++) {
        VmshiftVolume *v = g_ptr_array_index(f->volumes, i);
        if (v->host && !(v->shared && v->hosts && v->hosts->len)) {
            add_host_volume(f->host_volumes, v->host, v);
        } else if (v->hosts && v->hosts->len) {
            for (guint k = 0; k < v->hosts->len; k++)
                add_host_volume(f->host_volumes, g_ptr_array_index(v->hosts, k), v);
        } else {
            for (guint k = 0; k < f->hosts->len; k++)
                add_host_volume(f->host_volumes,
                                ((VmshiftHost *)g_ptr_array_index(f->hosts, k))->name, v);
        }
    }
}

static void
add_net_name(HostFacts *f, const char *host, const VmshiftNetwork *n)
{
    const char *names[] = { n->name, n->id };
    for (guint j = 0; j < G_N_ELEMENTS(names); j++) {
        if (!names[j])
            continue;
        GHashTable *set;
        if (!host) {
            g_hash_table_add(f->net_anywhere, g_strdup(names[j]));
            continue;
        }
        set = g_hash_table_lookup(f->net_on_host, host);
        if (!set) {
            set = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
            g_hash_table_insert(f->net_on_host, g_strdup(host), set);
        }
        g_hash_table_add(set, g_strdup(names[j]));
    }
}

static void
index_networks(HostFacts *f)
{
    for (guint i = 0; f->networks && i < f->networks->len; i++) {
        VmshiftNetwork *n = g_ptr_array_index(f->networks, i);
        if (!n->hosts || !n->hosts->len)
            add_net_name(f, NULL, n);
        for (guint k = 0; n->hosts && k < n->hosts->len; k++)
            add_net_name(f, g_ptr_array_index(n->hosts, k), n);
    }
}

/* A VM's checkpoint state as the backend answered (or why not). */
typedef struct {
    VmshiftCheckpointState *cp;
    GError *error;
} VmCp;

static void
vm_cp_free(VmCp *c)
{
    vmshift_checkpoint_state_free(c->cp);
    g_clear_error(&c->error);
    g_free(c);
}

static gint64 plugin_us;

gint64
host_rules_plugin_us(void)
{
    return __atomic_load_n(&plugin_us, __ATOMIC_RELAXED);
}

void
host_rules_plugin_time(gint64 since)
{
    __atomic_fetch_add(&plugin_us, g_get_monotonic_time() - since, __ATOMIC_RELAXED);
}

HostFacts *
host_facts_load(HostBackend *b, GError **error)
{
    g_autoptr(HostFacts) f = g_new0(HostFacts, 1);

    f->b = b;
    f->host_by_name = g_hash_table_new(g_str_hash, g_str_equal);
    f->host_volumes = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
                                            (GDestroyNotify)g_ptr_array_unref);
    f->net_anywhere = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    f->net_on_host = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
                                           (GDestroyNotify)g_hash_table_unref);
    f->vm_cp = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, (GDestroyNotify)vm_cp_free);
    f->members = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
                                       (GDestroyNotify)g_ptr_array_unref);
    f->hosts = host_backend_list_hosts(b, error);
    if (!f->hosts)
        return NULL;
    for (guint i = 0; i < f->hosts->len; i++) {
        VmshiftHost *h = g_ptr_array_index(f->hosts, i);
        if (h->id)
            g_hash_table_insert(f->host_by_name, h->id, h);
        if (h->name)
            g_hash_table_insert(f->host_by_name, h->name, h);
    }
    f->volumes = host_backend_list_volumes(b, NULL, &f->volumes_error);
    index_volumes(f);
    f->networks = host_backend_list_networks(b, NULL, &f->networks_error);
    index_networks(f);
    return g_steal_pointer(&f);
}

void
host_facts_free(HostFacts *f)
{
    if (!f)
        return;
    g_clear_pointer(&f->host_by_name, g_hash_table_unref);
    g_clear_pointer(&f->host_volumes, g_hash_table_unref);
    g_clear_pointer(&f->net_anywhere, g_hash_table_unref);
    g_clear_pointer(&f->net_on_host, g_hash_table_unref);
    g_clear_pointer(&f->vm_cp, g_hash_table_unref);
    g_clear_pointer(&f->members, g_hash_table_unref);
    g_clear_pointer(&f->hosts, g_ptr_array_unref);
    g_clear_pointer(&f->volumes, g_ptr_array_unref);
    g_clear_pointer(&f->networks, g_ptr_array_unref);
    g_clear_error(&f->volumes_error);
    g_clear_error(&f->networks_error);
    g_free(f);
}

VmshiftHost *
host_facts_host(const HostFacts *f, const char *name)
{
    return name ? g_hash_table_lookup(f->host_by_name, name) : NULL;
}

GPtrArray *
host_facts_volumes(const HostFacts *f, const char *host)
{
    static GPtrArray *empty;
    GPtrArray *a = host ? g_hash_table_lookup(f->host_volumes, host) : NULL;

    if (a)
        return a;
    if (g_once_init_enter(&empty))
        g_once_init_leave(&empty, g_ptr_array_new());
    return empty;
}

gboolean
host_facts_has_network(const HostFacts *f, const VmshiftHost *h, const char *net, gboolean *known)
{
    GHashTable *set;

    *known = TRUE;
    if (VMSHIFT_HAS_FIELD(h, networks) && h->networks) {
        for (guint i = 0; i < h->networks->len; i++)
            if (!g_strcmp0(g_ptr_array_index(h->networks, i), net))
                return TRUE;
        return FALSE;
    }
    if (!f->networks) {
        *known = FALSE;
        return FALSE;
    }
    if (g_hash_table_contains(f->net_anywhere, net))
        return TRUE;
    set = h->name ? g_hash_table_lookup(f->net_on_host, h->name) : NULL;
    return set && g_hash_table_contains(set, net);
}

/* ---- facts of a VM ------------------------------------------------------------------- */

gboolean
host_disk_bytes(const VmshiftDisk *d, guint64 *bytes)
{
    guint32 k = VMSHIFT_HAS_FIELD(d, size_known) ? d->size_known : 0;

    if (!k)
        k = (d->allocation ? VMSHIFT_DISK_ALLOCATION_KNOWN : 0)
            | (d->capacity ? VMSHIFT_DISK_CAPACITY_KNOWN : 0);
    if (k & VMSHIFT_DISK_ALLOCATION_KNOWN)
        *bytes = d->allocation;
    else if (k & VMSHIFT_DISK_CAPACITY_KNOWN)
        *bytes = d->capacity;
    else
        return FALSE;
    return TRUE;
}

/* The volume holding disk @d: the one its @volume names, else the one its
 * path lies on among the volumes the source host reaches. */
static VmshiftVolume *
disk_volume(const HostFacts *f, const VmshiftVm *vm, const VmshiftDisk *d)
{
    GPtrArray *vols = host_facts_volumes(f, vm->host);

    for (guint i = 0; d->volume && i < vols->len; i++) {
        VmshiftVolume *v = g_ptr_array_index(vols, i);
        if (!g_strcmp0(v->id, d->volume) || !g_strcmp0(v->name, d->volume))
            return v;
    }
    return host_volume_for_path(vols, d->path);
}

HostVmFacts *
host_vm_facts_new(HostFacts *f, const VmshiftVm *vm)
{
    HostVmFacts *v = g_new0(HostVmFacts, 1);
    VmCp *c = g_hash_table_lookup(f->vm_cp, vm->name);

    if (!c) {
        gint64 t0 = g_get_monotonic_time();
        c = g_new0(VmCp, 1);
        c->cp = host_backend_checkpoint_state(f->b, vm->name, &c->error);
        host_rules_plugin_time(t0);
        g_hash_table_insert(f->vm_cp, g_strdup(vm->name), c);
    }
    v->vm = vm;
    v->cp = c->cp;
    v->cp_error = c->error;
    v->src = host_facts_host(f, vm->host);
    v->disk_volumes = g_ptr_array_new();
    for (guint i = 0; i < vm->disks->len; i++) {
        VmshiftDisk *d = g_ptr_array_index(vm->disks, i);
        guint64 n;
        g_ptr_array_add(v->disk_volumes, disk_volume(f, vm, d));
        if (host_disk_bytes(d, &n))
            v->disk_bytes += n;
        else
            v->unknown_disks++;
    }
    return v;
}

void
host_vm_facts_free(HostVmFacts *v)
{
    if (!v)
        return;
    g_ptr_array_unref(v->disk_volumes); /* cp, cp_error: the facts' */
    g_free(v);
}

/* Whether @h reaches @vol: as index_volumes() files it. */
static gboolean
volume_reaches(const HostFacts *f, const VmshiftVolume *vol, const VmshiftHost *h)
{
    (void)f;
    if (vol->host && !(vol->shared && vol->hosts && vol->hosts->len))
        return !g_strcmp0(vol->host, h->name);
    if (vol->hosts && vol->hosts->len) {
        for (guint k = 0; k < vol->hosts->len; k++)
            if (!g_strcmp0(g_ptr_array_index(vol->hosts, k), h->name))
                return TRUE;
        return FALSE;
    }
    return TRUE;
}

gboolean
host_vm_storage_shared(const HostFacts *f, const HostVmFacts *v, const VmshiftHost *h,
                       gboolean *known)
{
    *known = TRUE;
    for (guint i = 0; i < v->disk_volumes->len; i++) {
        const VmshiftVolume *vol = g_ptr_array_index(v->disk_volumes, i);
        if (!vol) {
            *known = FALSE;
            return FALSE;
        }
        if (!vol->shared || !volume_reaches(f, vol, h))
            return FALSE;
    }
    return TRUE;
}

/* ---- what a run has placed ------------------------------------------------------------- */

HostPlaceRun *
host_place_run_new(void)
{
    HostPlaceRun *run = g_new0(HostPlaceRun, 1);
    run->tally = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    run->dirty = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    run->bytes = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    run->facts = g_hash_table_new_full(g_direct_hash, g_direct_equal, NULL,
                                       (GDestroyNotify)host_facts_free);
    return run;
}

void
host_place_run_free(HostPlaceRun *run)
{
    if (!run)
        return;
    if (run->place_calls)
        g_debug("placement: %u VM(s) on %u host(s) in %.3f s, of which %.3f s in plugin calls",
                run->place_calls, run->place_hosts, run->place_us / 1e6, run->plugin_us / 1e6);
    g_hash_table_unref(run->tally);
    g_hash_table_unref(run->dirty);
    g_free(run->quick_key);
    g_free(run->quick);
    g_hash_table_unref(run->bytes);
    g_hash_table_unref(run->facts);
    g_free(run->last_reason);
    g_free(run);
}

HostFacts *
host_place_run_facts(HostPlaceRun *run, HostBackend *b, GError **error)
{
    HostFacts *f = g_hash_table_lookup(run->facts, b);

    if (!f && (f = host_facts_load(b, error)))
        g_hash_table_insert(run->facts, b, f);
    return f;
}

/* The tally of @host, or NULL; remembers the last host asked (the run is
 * const to the rules, the memo is not part of what it says). */
static const HostTally *
run_tally(const HostPlaceRun *run, const char *host)
{
    HostPlaceRun *r = (HostPlaceRun *)run;
    gsize l;

    if (!run || !host || !g_hash_table_size(run->tally))
        return NULL;
    if (run->memo_name[0] && !strcmp(run->memo_name, host))
        return run->memo;
    r->memo = g_hash_table_lookup(run->tally, host);
    l = strlen(host);
    if (l < sizeof r->memo_name)
        memcpy(r->memo_name, host, l + 1);
    else
        r->memo_name[0] = '\0';
    return run->memo;
}

guint64
host_place_run_memory(const HostPlaceRun *run, const char *host)
{
    const HostTally *t = run_tally(run, host);
    return t ? t->memory : 0;
}

guint
host_place_run_count(const HostPlaceRun *run, const char *host)
{
    const HostTally *t = run_tally(run, host);
    return t ? t->count : 0;
}

guint64
host_place_run_bytes(const HostPlaceRun *run, const char *host, const char *path)
{
    g_autofree char *key = NULL;
    guint64 *b;

    if (!run || !path || !g_hash_table_size(run->bytes))
        return 0;
    key = g_strdup_printf("%s\x1f%s", host ? host : "", path);
    b = g_hash_table_lookup(run->bytes, key);
    return b ? *b : 0;
}

void
host_place_run_add(HostPlaceRun *run, const char *host, guint64 memory, const char *path,
                   guint64 bytes)
{
    HostTally *t;

    if (!run || !host)
        return;
    t = g_hash_table_lookup(run->tally, host);
    if (!t) {
        t = g_new0(HostTally, 1);
        g_hash_table_insert(run->tally, g_strdup(host), t);
    }
    t->memory += memory;
    t->count++;
    if (run->quick)
        g_hash_table_add(run->dirty, g_strdup(host));
    run->memo_name[0] = '\0';
    if (path && bytes) {
        char *key = g_strdup_printf("%s\x1f%s", host, path);
        guint64 *b = g_hash_table_lookup(run->bytes, key);
        if (!b) {
            b = g_new0(guint64, 1);
            g_hash_table_insert(run->bytes, key, b);
        } else {
            g_free(key);
        }
        *b += bytes;
    }
}

VmshiftVolume *
host_place_best_volume(const HostFacts *f, const VmshiftHost *h, const HostPlaceRun *run,
                       guint64 *free_after)
{
    GPtrArray *vols = host_facts_volumes(f, h->name);
    VmshiftVolume *best = NULL;
    guint64 best_free = 0;

    for (guint i = 0; i < vols->len; i++) {
        VmshiftVolume *v = g_ptr_array_index(vols, i);
        guint64 used = host_place_run_bytes(run, h->name, v->path);
        guint64 fr = v->free > used ? v->free - used : 0;
        /* a "mount" volume is there to tell any path's free space, not
         * a place the backend keeps VMs */
        if (!v->path || (VMSHIFT_HAS_FIELD(v, free_unknown) && v->free_unknown)
            || !g_strcmp0(v->kind, "mount"))
            continue;
        if (!best || fr > best_free) {
            best = v;
            best_free = fr;
        }
    }
    if (free_after)
        *free_after = best_free;
    return best;
}

/* ---- findings ----------------------------------------------------------------------------- */

/* Counts a finding of @code; TRUE when it is to be written out. */
static gboolean
count(HostRuleSink *s, const VmshiftFindingInfo *info)
{
    if (info->severity == VMSHIFT_SEVERITY_ERROR) {
        if (!s->errors)
            s->first_error = info->code;
        s->errors++;
    } else if (info->severity == VMSHIFT_SEVERITY_WARNING) {
        s->warnings++;
        s->penalty += info->rate_effect;
    }
    return s->findings != NULL;
}

void
host_rule_add(HostRuleSink *s, const char *code, const char *subject, const char *format, ...)
{
    const VmshiftFindingInfo *info = vmshift_finding_info(code);
    g_autofree char *msg = NULL;
    va_list ap;

    g_assert(info); /* the host raises canonical codes only */
    if (!count(s, info))
        return;
    va_start(ap, format);
    msg = g_strdup_vprintf(format, ap);
    va_end(ap);
    g_ptr_array_add(s->findings, vmshift_finding_new(info->severity, code, subject, "%s", msg));
}

#define ADD(code, subject, ...) host_rule_add(s, VMSHIFT_FINDING_##code, subject, __VA_ARGS__)

static const char *
or_dash(const char *s)
{
    return s ? s : "-";
}

/* The destination exists, is another host, accepts VMs. */
static const VmshiftHost *
rule_destination(const HostFacts *f, const HostVmFacts *v, const VmshiftMigrationSpec *spec,
                 const VmshiftHost *d, HostRuleSink *s)
{
    const VmshiftVm *vm = v->vm;
    const char *detail_sep;

    if (spec->type == VMSHIFT_MIGRATION_STORAGE)
        return v->src;
    if (!d) {
        ADD(HOST_NOT_FOUND, spec->dest_host, "destination host '%s' is not known to backend '%s'",
            or_dash(spec->dest_host), host_backend_name(f->b));
        return NULL;
    }
    if (!g_strcmp0(d->name, vm->host)) {
        ADD(SAME_HOST, d->name, "VM '%s' already runs on host '%s'", vm->name, d->name);
        return d;
    }
    detail_sep = d->status_detail ? ": " : "";
    switch (d->status) {
    case VMSHIFT_HOST_OK: break;
    case VMSHIFT_HOST_MAINTENANCE:
        ADD(HOST_MAINTENANCE, d->name, "host '%s' is in maintenance mode%s%s", d->name, detail_sep,
            d->status_detail ? d->status_detail : "");
        break;
    case VMSHIFT_HOST_DISCONNECTED:
        ADD(HOST_UNREACHABLE, d->name, "host '%s' is disconnected%s%s", d->name, detail_sep,
            d->status_detail ? d->status_detail : "");
        break;
    default:
        ADD(HOST_LIMITED, d->name, "host '%s' is %s%s%s", d->name,
            vmshift_host_status_name(d->status), detail_sep,
            d->status_detail ? d->status_detail : "");
    }
    return d;
}

static void
rule_power(const VmshiftVm *vm, const VmshiftMigrationSpec *spec, HostRuleSink *s)
{
    if (spec->type == VMSHIFT_MIGRATION_LIVE && vm->power_state != VMSHIFT_POWER_RUNNING)
        ADD(NOT_RUNNING, vm->name, "VM '%s' is %s; a live migration needs it running (use --cold)",
            vm->name, vmshift_power_state_name(vm->power_state));
    if (spec->type == VMSHIFT_MIGRATION_COLD && vm->power_state == VMSHIFT_POWER_RUNNING)
        ADD(RUNNING, vm->name,
            "VM '%s' is running; a cold migration needs it stopped (use --live, or stop it first)",
            vm->name);
}

static void
rule_merge(const HostVmFacts *v, HostRuleSink *s)
{
    const VmshiftCheckpointState *cp = v->cp;
    const char *name = v->vm->name;

    if (cp && cp->merging)
        ADD(MERGE_IN_PROGRESS, name,
            "VM '%s': a checkpoint merge is in progress (%s); wait for it to finish", name,
            cp->detail ? cp->detail : "no detail");
    else if (cp && cp->needs_consolidation)
        ADD(NEEDS_CONSOLIDATION, name, "VM '%s' needs disk consolidation%s%s", name,
            cp->detail ? ": " : "", cp->detail ? cp->detail : "");
    else if (!cp)
        ADD(MERGE_UNKNOWN, name,
            "checkpoint state of VM '%s' unknown (a running merge cannot be "
            "ruled out): %s",
            name, v->cp_error ? v->cp_error->message : "no answer");
}

/* Memory for a VM that runs at the destination, after the run's placements. */
static void
rule_memory(const VmshiftVm *vm, const VmshiftMigrationSpec *spec, const VmshiftHost *d,
            const HostPlaceRun *run, HostRuleSink *s)
{
    gboolean runs = vm->power_state == VMSHIFT_POWER_RUNNING
                    || (spec->type == VMSHIFT_MIGRATION_COLD && spec->start);
    guint64 placed = host_place_run_memory(run, d->name);
    guint64 fr = d->memory_free > placed ? d->memory_free - placed : 0;

    if (!runs || spec->type == VMSHIFT_MIGRATION_STORAGE)
        return;
    if (!d->memory_free && !d->memory_total) {
        ADD(MEMORY_UNKNOWN, d->name, "free memory of host '%s' is not known; VM '%s' needs %s",
            d->name, vm->name, "its memory");
        return;
    }
    if (vm->memory > fr) {
        g_autofree char *need = host_format_bytes(vm->memory);
        g_autofree char *have = host_format_bytes(fr);
        ADD(NO_MEMORY, d->name, "host '%s' has %s free%s, VM '%s' needs %s", d->name, have,
            placed ? " after this run's placements" : "", vm->name, need);
    }
}

static void
rule_networks(const HostFacts *f, const VmshiftVm *vm, const VmshiftMigrationSpec *spec,
              const VmshiftHost *d, HostRuleSink *s)
{
    gboolean reported_unknown = FALSE;

    if (spec->type == VMSHIFT_MIGRATION_STORAGE)
        return;
    for (guint i = 0; i < vm->nics->len; i++) {
        VmshiftNic *n = g_ptr_array_index(vm->nics, i);
        const char *want = vmshift_migration_spec_network_for(spec, n->id);
        gboolean known;
        if (!want)
            want = n->network;
        if (!want || host_facts_has_network(f, d, want, &known))
            continue;
        if (!known && !reported_unknown) {
            ADD(NETWORKS_UNKNOWN, d->name, "networks of host '%s' are not known: %s", d->name,
                f->networks_error ? f->networks_error->message : "not reported");
            reported_unknown = TRUE;
        } else if (known) {
            ADD(NETWORK_MISSING, n->id,
                "NIC '%s': network '%s' does not exist on host '%s' (map it with --network %s=NET)",
                n->id, want, d->name, n->id);
        }
    }
}

/* Adds @bytes needed on @vol to @need (a volume -> guint64 table). */
static void
need_add(GHashTable *need, VmshiftVolume *vol, guint64 bytes)
{
    guint64 *n = g_hash_table_lookup(need, vol);
    if (!n) {
        n = g_new0(guint64, 1);
        g_hash_table_insert(need, vol, n);
    }
    *n += bytes;
}

static void
space_verdict(const VmshiftVolume *vol, const char *host, guint64 bytes, const HostPlaceRun *run,
              HostRuleSink *s)
{
    guint64 used = host_place_run_bytes(run, host, vol->path);
    guint64 fr = vol->free > used ? vol->free - used : 0;
    const char *vn = vol->name ? vol->name : vol->path;

    if (VMSHIFT_HAS_FIELD(vol, free_unknown) && vol->free_unknown) {
        ADD(SPACE_UNKNOWN, vn, "free space of volume '%s' (%s) is not known", vn,
            or_dash(vol->path));
    } else if (bytes > fr) {
        g_autofree char *a = host_format_bytes(bytes);
        g_autofree char *h = host_format_bytes(fr);
        ADD(NO_SPACE, vn, "volume '%s' (%s) has %s free; the disks need %s", vn, or_dash(vol->path),
            h, a);
    } else if (vol->capacity && fr - bytes < vol->capacity / 20) {
        g_autofree char *h = host_format_bytes(fr - bytes);
        ADD(LOW_SPACE, vn, "volume '%s' would have only %s free afterwards", vn, h);
    }
}

/* Space where moved disks go, on the destination (or the VM's own host). */
static void
rule_space(const HostFacts *f, const VmshiftVm *vm, const VmshiftMigrationSpec *spec,
           const VmshiftHost *d, const HostPlaceRun *run, HostRuleSink *s)
{
    g_autoptr(GHashTable) need = NULL;
    GPtrArray *vols;
    GHashTableIter it;
    gpointer k, val;
    const char *target = d ? d->name : vm->host;

    if (!vmshift_migration_spec_moves_storage(spec))
        return;
    if (!f->volumes) {
        ADD(SPACE_UNKNOWN, target, "cannot list the volumes of backend '%s': %s",
            host_backend_name(f->b), f->volumes_error ? f->volumes_error->message : "-");
        return;
    }
    vols = host_facts_volumes(f, target);
    need = g_hash_table_new_full(g_direct_hash, g_direct_equal, NULL, g_free);
    for (guint i = 0; i < vm->disks->len; i++) {
        VmshiftDisk *dk = g_ptr_array_index(vm->disks, i);
        const char *dir = vmshift_migration_spec_disk_dir(spec, dk->id);
        VmshiftVolume *vol;
        guint64 bytes;
        if (!dir)
            continue;
        if (!host_disk_bytes(dk, &bytes)) {
            ADD(DISK_SIZE_UNKNOWN, dk->id,
                "the size of disk '%s' of VM '%s' is not known; free "
                "space cannot be checked for it",
                dk->id, vm->name);
            bytes = 0;
        }
        vol = host_volume_for_path(vols, dir);
        if (!vol) {
            ADD(SPACE_UNKNOWN, dk->id,
                "no volume of host '%s' is known to hold %s; free space not "
                "checked for disk '%s'",
                or_dash(target), dir, dk->id);
            continue;
        }
        need_add(need, vol, bytes);
    }
    g_hash_table_iter_init(&it, need);
    while (g_hash_table_iter_next(&it, &k, &val))
        space_verdict(k, target, *(guint64 *)val, run, s);
}

/* --transfer san needs every disk on storage the destination reaches. */
static void
rule_transfer(const HostFacts *f, const HostVmFacts *v, const VmshiftMigrationSpec *spec,
              const VmshiftHost *d, HostRuleSink *s)
{
    if (spec->transfer != VMSHIFT_TRANSFER_SAN || spec->type == VMSHIFT_MIGRATION_STORAGE)
        return;
    for (guint i = 0; i < v->disk_volumes->len; i++) {
        const VmshiftVolume *vol = g_ptr_array_index(v->disk_volumes, i);
        const VmshiftDisk *dk = g_ptr_array_index(v->vm->disks, i);
        if (vol && (!vol->shared || !volume_reaches(f, vol, d))) {
            ADD(STORAGE_NOT_SHARED, dk->id,
                "--transfer san: disk '%s' is on volume '%s', which "
                "host '%s' does not reach",
                dk->id, or_dash(vol->name), d->name);
            return;
        }
    }
}

static void
rule_compat(const HostVmFacts *v, const VmshiftMigrationSpec *spec, const VmshiftHost *d,
            HostRuleSink *s)
{
    const VmshiftHost *src = v->src;

    if (spec->type != VMSHIFT_MIGRATION_LIVE || !src || !VMSHIFT_HAS_FIELD(src, compat_id)
        || !src->compat_id || !d->compat_id || !strcmp(src->compat_id, d->compat_id))
        return;
    ADD(CPU_INCOMPATIBLE, d->name, "host '%s' (%s) cannot run VM '%s' of host '%s' (%s) live",
        d->name, d->compat_id, v->vm->name, src->name, src->compat_id);
}

void
host_rules_check(const HostFacts *f, const HostVmFacts *v, const VmshiftMigrationSpec *spec,
                 const HostPlaceRun *run, HostRuleSink *s)
{
    host_rules_check_to(f, v, spec, host_facts_host(f, spec->dest_host), run, s);
}

void
host_rules_check_to(const HostFacts *f, const HostVmFacts *v, const VmshiftMigrationSpec *spec,
                    const VmshiftHost *dest, const HostPlaceRun *run, HostRuleSink *s)
{
    const VmshiftHost *d = rule_destination(f, v, spec, dest, s);

    rule_power(v->vm, spec, s);
    rule_merge(v, s);
    if (!d)
        return;
    if (spec->type != VMSHIFT_MIGRATION_STORAGE && !g_strcmp0(d->name, v->vm->host))
        return;
    rule_memory(v->vm, spec, d, run, s);
    rule_networks(f, v->vm, spec, d, s);
    rule_space(f, v->vm, spec, d, run, s);
    rule_transfer(f, v, spec, d, s);
    rule_compat(v, spec, d, s);
}

static gboolean
has_code(HostRuleSink *s, const char *code, const char *subject)
{
    for (guint i = 0; s->findings && i < s->findings->len; i++) {
        VmshiftFinding *x = g_ptr_array_index(s->findings, i);
        if (!g_strcmp0(x->code, code) && (!subject || !g_strcmp0(x->subject, subject)))
            return TRUE;
    }
    return FALSE;
}

void
host_rules_mappings(const VmshiftMigrationSpec *spec, const VmshiftVm *vm, HostRuleSink *s)
{
    for (guint i = 0; i < spec->disk_paths->len; i++) {
        VmshiftMapping *m = g_ptr_array_index(spec->disk_paths, i);
        if (!vmshift_vm_find_disk(vm, m->key) && !has_code(s, VMSHIFT_FINDING_DISK_MAPPED, m->key)
            && !has_code(s, VMSHIFT_FINDING_DISK_NOT_FOUND, m->key))
            ADD(DISK_NOT_FOUND, m->key, "VM '%s' has no disk '%s'", vm->name, m->key);
    }
    for (guint i = 0; i < spec->networks->len; i++) {
        VmshiftMapping *m = g_ptr_array_index(spec->networks, i);
        if (!vmshift_vm_find_nic(vm, m->key) && !has_code(s, VMSHIFT_FINDING_NIC_MAPPED, m->key)
            && !has_code(s, VMSHIFT_FINDING_NIC_NOT_FOUND, m->key))
            ADD(NIC_NOT_FOUND, m->key, "VM '%s' has no NIC '%s'", vm->name, m->key);
    }
}

/* A host the facts mark limited (host-limited, from its status) for a reason
 * the backend then names precisely (migration-disabled, no-migration-network
 * on the same host) is one condition: the precise finding stays, the
 * generic one goes, so check never shows the condition twice. By code and
 * subject, never by text. */
static void
drop_explained_limits(HostRuleSink *s)
{
    const VmshiftFindingInfo *lim = vmshift_finding_info(VMSHIFT_FINDING_HOST_LIMITED);

    for (guint i = 0; s->findings && lim && i < s->findings->len; i++) {
        VmshiftFinding *x = g_ptr_array_index(s->findings, i);
        if (g_strcmp0(x->code, VMSHIFT_FINDING_HOST_LIMITED) != 0 || !x->subject
            || (!has_code(s, VMSHIFT_FINDING_MIGRATION_DISABLED, x->subject)
                && !has_code(s, VMSHIFT_FINDING_NO_MIGRATION_NETWORK, x->subject)))
            continue;
        s->warnings--;
        s->penalty -= lim->rate_effect;
        g_ptr_array_remove_index(s->findings, i--);
    }
}

void
host_rules_merge_backend(HostRuleSink *s, GPtrArray *pf, const char *backend)
{
    g_autoptr(GHashTable) host_codes = g_hash_table_new(g_str_hash, g_str_equal);

    /* a condition the host already reported from facts is not repeated */
    for (guint i = 0; s->findings && i < s->findings->len; i++)
        g_hash_table_add(host_codes, ((VmshiftFinding *)g_ptr_array_index(s->findings, i))->code);
    while (pf->len) {
        g_autoptr(VmshiftFinding) x = g_ptr_array_steal_index(pf, 0);
        const VmshiftFindingInfo *info = vmshift_finding_info(x->code);
        if (!info) {
            host_rule_add(s, VMSHIFT_FINDING_UNKNOWN_CODE, x->code,
                          "backend '%s' raised finding code '%s', which is not canonical "
                          "(vmshift/findings.h)",
                          backend, x->code ? x->code : "(null)");
            if (x->severity == VMSHIFT_SEVERITY_ERROR) {
                s->first_error = s->errors++ ? s->first_error : VMSHIFT_FINDING_UNKNOWN_CODE;
            } else if (x->severity == VMSHIFT_SEVERITY_WARNING) {
                s->warnings++;
            }
            if (s->findings)
                g_ptr_array_add(s->findings, g_steal_pointer(&x));
            continue;
        }
        if (g_hash_table_contains(host_codes, info->code)
            || has_code(s, info->code, x->subject ? x->subject : ""))
            continue;
        x->severity = info->severity;
        if (count(s, info))
            g_ptr_array_add(s->findings, g_steal_pointer(&x));
    }
    drop_explained_limits(s);
}
