/*
 * vmshift host: validation of a planned migration.
 *
 * Host checks that need only the SDK's inventory (destination status, power
 * state against --live/--cold, checkpoint merge, memory, space, networks,
 * mappings), then the plugin's own check_migration. Errors stop a migration;
 * warnings need --force.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "host/host.h"

#define ADD(sev, code, subject, ...) \
    g_ptr_array_add(f, vmshift_finding_new(VMSHIFT_SEVERITY_##sev, code, subject, __VA_ARGS__))

static VmshiftHost *
find_host(GPtrArray *hosts, const char *name)
{
    for (guint i = 0; hosts && i < hosts->len; i++) {
        VmshiftHost *h = g_ptr_array_index(hosts, i);
        if (!g_strcmp0(h->name, name) || !g_strcmp0(h->id, name))
            return h;
    }
    return NULL;
}

static gboolean
network_on_host(GPtrArray *nets, const char *name, const char *host)
{
    for (guint i = 0; nets && i < nets->len; i++) {
        VmshiftNetwork *n = g_ptr_array_index(nets, i);
        if (g_strcmp0(n->name, name) != 0 && g_strcmp0(n->id, name) != 0)
            continue;
        if (!n->hosts || n->hosts->len == 0 || !host)
            return TRUE;
        for (guint k = 0; k < n->hosts->len; k++)
            if (!g_strcmp0(g_ptr_array_index(n->hosts, k), host))
                return TRUE;
    }
    return FALSE;
}

/* Windows paths (a drive letter or a UNC share) name files case-insensitively
 * and separate with '\\'; POSIX paths are compared as they are. */
static gboolean
is_windows_path(const char *p)
{
    return (g_ascii_isalpha(p[0]) && p[1] == ':') || (p[0] == '\\' && p[1] == '\\');
}

/* How much of @path the volume root @root covers: strlen(@root) when @path
 * is @root or lies below it (a separator follows, or @root ends in one),
 * else 0. */
static gsize
path_prefix_len(const char *root, const char *path)
{
    gsize l = strlen(root);
    gboolean win = is_windows_path(root) && is_windows_path(path);
    char last;

    if (l == 0 || strlen(path) < l)
        return 0;
    if (win ? g_ascii_strncasecmp(root, path, l) != 0 : strncmp(root, path, l) != 0)
        return 0;
    last = root[l - 1];
    if (path[l] == '\0' || path[l] == '/' || last == '/'
        || (win && (path[l] == '\\' || last == '\\')))
        return l;
    return 0;
}

/* The volume holding @path: one named or identified by @path, else the
 * longest path prefix among @vols. */
VmshiftVolume *
host_volume_for_path(GPtrArray *vols, const char *path)
{
    VmshiftVolume *best = NULL;
    gsize best_len = 0;

    for (guint i = 0; vols && path && i < vols->len; i++) {
        VmshiftVolume *v = g_ptr_array_index(vols, i);
        gsize l;
        if (!v->path)
            continue;
        if (!g_strcmp0(v->name, path) || !g_strcmp0(v->id, path))
            return v;
        l = path_prefix_len(v->path, path);
        if (l && l >= best_len) {
            best = v;
            best_len = l;
        }
    }
    return best;
}

static guint64
disk_bytes(const VmshiftDisk *d)
{
    return d->allocation ? d->allocation : d->capacity;
}

/* The destination host of a host migration: known, another host than the
 * VM's, available, with memory for a running VM. Returns the host record
 * the later steps use (for a storage migration: the VM's own host). */
static VmshiftHost *
check_destination(GPtrArray *f, HostBackend *b, const VmshiftMigrationSpec *spec,
                  const VmshiftVm *vm, GPtrArray *hosts)
{
    VmshiftHost *dest;

    if (spec->type == VMSHIFT_MIGRATION_STORAGE)
        return find_host(hosts, vm->host);
    dest = find_host(hosts, spec->dest_host);
    if (!dest) {
        ADD(ERROR, "host-not-found", spec->dest_host,
            "destination host '%s' is not known "
            "to backend '%s'",
            spec->dest_host, host_backend_name(b));
    } else if (!g_strcmp0(dest->name, vm->host)) {
        ADD(ERROR, "same-host", dest->name, "VM '%s' already runs on host '%s'", vm->name,
            dest->name);
    } else if (dest->status == VMSHIFT_HOST_LIMITED || dest->status == VMSHIFT_HOST_UNKNOWN) {
        ADD(WARNING, "host-limited", dest->name, "host '%s' is %s%s%s", dest->name,
            vmshift_host_status_name(dest->status), dest->status_detail ? ": " : "",
            dest->status_detail ? dest->status_detail : "");
    } else if (dest->status != VMSHIFT_HOST_OK) {
        ADD(ERROR, "host-unavailable", dest->name, "host '%s' is %s%s%s", dest->name,
            vmshift_host_status_name(dest->status), dest->status_detail ? ": " : "",
            dest->status_detail ? dest->status_detail : "");
    }
    if (dest && dest->memory_free && vm->memory > dest->memory_free
        && vm->power_state == VMSHIFT_POWER_RUNNING) {
        g_autofree char *need = host_format_bytes(vm->memory);
        g_autofree char *have = host_format_bytes(dest->memory_free);
        ADD(ERROR, "no-memory", dest->name, "host '%s' has %s free, VM '%s' needs %s", dest->name,
            have, vm->name, need);
    }
    return dest;
}

/* The power state against the migration type. */
static void
check_power(GPtrArray *f, const VmshiftMigrationSpec *spec, const VmshiftVm *vm)
{
    if (spec->type == VMSHIFT_MIGRATION_LIVE && vm->power_state != VMSHIFT_POWER_RUNNING)
        ADD(ERROR, "not-running", vm->name,
            "VM '%s' is %s; a live migration needs it running "
            "(use --cold)",
            vm->name, vmshift_power_state_name(vm->power_state));
    if (spec->type == VMSHIFT_MIGRATION_COLD && vm->power_state == VMSHIFT_POWER_RUNNING)
        ADD(ERROR, "running", vm->name,
            "VM '%s' is running; a cold migration needs it "
            "stopped (use --live, or stop it first)",
            vm->name);
}

/* No checkpoint merge runs (or may run) on the VM. */
static void
check_merge(GPtrArray *f, HostBackend *b, const VmshiftVm *vm)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(VmshiftCheckpointState) cp = host_backend_checkpoint_state(b, vm->name, &err);

    if (cp && cp->merging)
        ADD(ERROR, "merge-in-progress", vm->name,
            "VM '%s': a checkpoint merge is in progress "
            "(%s); wait for it to finish",
            vm->name, cp->detail ? cp->detail : "no detail");
    else if (cp && cp->needs_consolidation)
        ADD(WARNING, "needs-consolidation", vm->name, "VM '%s' needs disk consolidation%s%s",
            vm->name, cp->detail ? ": " : "", cp->detail ? cp->detail : "");
    else if (!cp && g_error_matches(err, VMSHIFT_ERROR, VMSHIFT_ERROR_NOT_SUPPORTED))
        ADD(INFO, "merge-unknown", vm->name, "%s; a running merge cannot be ruled out",
            err->message);
    else if (!cp)
        ADD(WARNING, "merge-unknown", vm->name, "checkpoint state of VM '%s' unknown: %s", vm->name,
            err->message);
}

/* Whether the backend's findings (already in @f) say it resolved the
 * mapping key @key itself (code @code: a label or MAC the host's inventory
 * does not carry, e.g. ESX "Network adapter 1"). */
static gboolean
backend_resolved(GPtrArray *f, const char *code, const char *key)
{
    for (guint i = 0; i < f->len; i++) {
        VmshiftFinding *x = g_ptr_array_index(f, i);
        if (!g_strcmp0(x->code, code) && !g_strcmp0(x->subject, key))
            return TRUE;
    }
    return FALSE;
}

/* --disk-path and --network name real disks and NICs (after the backend's
 * findings, which may resolve other names than the ids). */
static void
check_mappings(GPtrArray *f, const VmshiftMigrationSpec *spec, const VmshiftVm *vm)
{
    for (guint i = 0; i < spec->disk_paths->len; i++) {
        VmshiftMapping *m = g_ptr_array_index(spec->disk_paths, i);
        if (!vmshift_vm_find_disk(vm, m->key) && !backend_resolved(f, "disk-mapped", m->key))
            ADD(ERROR, "disk-not-found", m->key, "VM '%s' has no disk '%s'", vm->name, m->key);
    }
    for (guint i = 0; i < spec->networks->len; i++) {
        VmshiftMapping *m = g_ptr_array_index(spec->networks, i);
        if (!vmshift_vm_find_nic(vm, m->key) && !backend_resolved(f, "nic-mapped", m->key))
            ADD(ERROR, "nic-not-found", m->key, "VM '%s' has no NIC '%s'", vm->name, m->key);
    }
}

/* Every NIC's (mapped) network exists at the destination. */
static void
check_networks(GPtrArray *f, HostBackend *b, const VmshiftMigrationSpec *spec, const VmshiftVm *vm)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(GPtrArray) nets = NULL;

    if (spec->type == VMSHIFT_MIGRATION_STORAGE)
        return;
    nets = host_backend_list_networks(b, spec->dest_host, &err);
    if (!nets) {
        ADD(WARNING, "networks-unknown", spec->dest_host,
            "cannot list networks of host "
            "'%s': %s",
            spec->dest_host, err->message);
        return;
    }
    for (guint i = 0; i < vm->nics->len; i++) {
        VmshiftNic *n = g_ptr_array_index(vm->nics, i);
        const char *want = vmshift_migration_spec_network_for(spec, n->id);
        if (!want)
            want = n->network;
        if (!want)
            continue;
        if (!network_on_host(nets, want, spec->dest_host))
            ADD(ERROR, "network-missing", n->id,
                "NIC '%s': network '%s' does not "
                "exist on host '%s' (map it with --network %s=NET)",
                n->id, want, spec->dest_host, n->id);
    }
}

/* Space on the volumes that receive moved disks, on host @target. */
static void
check_space(GPtrArray *f, HostBackend *b, const VmshiftMigrationSpec *spec, const VmshiftVm *vm,
            const char *target)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(GPtrArray) vols = NULL;
    g_autoptr(GHashTable) need = NULL;
    GHashTableIter it;
    gpointer k, v;

    if (!vmshift_migration_spec_moves_storage(spec))
        return;
    vols = host_backend_list_volumes(b, target, &err);
    if (!vols) {
        ADD(WARNING, "space-unknown", target, "cannot list volumes of host '%s': %s",
            target ? target : "-", err->message);
        return;
    }
    need = g_hash_table_new(g_direct_hash, g_direct_equal);
    for (guint i = 0; i < vm->disks->len; i++) {
        VmshiftDisk *d = g_ptr_array_index(vm->disks, i);
        const char *dir = vmshift_migration_spec_disk_dir(spec, d->id);
        VmshiftVolume *vol;
        if (!dir)
            continue;
        vol = host_volume_for_path(vols, dir);
        if (!vol) {
            ADD(INFO, "space-unknown", d->id,
                "no known volume holds %s; free space "
                "not checked for disk '%s'",
                dir, d->id);
            continue;
        }
        g_hash_table_insert(
            need, vol,
            GSIZE_TO_POINTER(GPOINTER_TO_SIZE(g_hash_table_lookup(need, vol)) + disk_bytes(d)));
    }
    g_hash_table_iter_init(&it, need);
    while (g_hash_table_iter_next(&it, &k, &v)) {
        VmshiftVolume *vol = k;
        guint64 bytes = GPOINTER_TO_SIZE(v);
        if (bytes > vol->free) {
            g_autofree char *a = host_format_bytes(bytes);
            g_autofree char *fr = host_format_bytes(vol->free);
            ADD(ERROR, "no-space", vol->name,
                "volume '%s' (%s) has %s free; the disks "
                "need %s",
                vol->name ? vol->name : vol->path, vol->path, fr, a);
        } else if (vol->capacity && vol->free - bytes < vol->capacity / 20) {
            g_autofree char *fr = host_format_bytes(vol->free - bytes);
            ADD(WARNING, "low-space", vol->name,
                "volume '%s' would have only %s free "
                "afterwards",
                vol->name ? vol->name : vol->path, fr);
        }
    }
}

/* The plugin's own findings (check_migration). */
static void
add_backend_findings(GPtrArray *f, HostBackend *b, const VmshiftMigrationSpec *spec,
                     const VmshiftHost *dest)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(GPtrArray) pf = host_backend_check_migration(b, spec, &err);
    const char *why;

    if (!pf) {
        if (g_error_matches(err, VMSHIFT_ERROR, VMSHIFT_ERROR_NOT_SUPPORTED))
            ADD(INFO, "backend-checks-skipped", NULL, "%s; only the host's checks ran",
                err->message);
        else
            ADD(ERROR, "check-failed", NULL, "backend check failed: %s", err->message);
        return;
    }
    /* an unavailable destination is already an error with the backend's own
     * reason (its host status detail): a backend finding that repeats that
     * reason for that host adds nothing */
    why = dest && dest->status != VMSHIFT_HOST_OK && spec->type != VMSHIFT_MIGRATION_STORAGE
              ? dest->status_detail
              : NULL;
    while (pf->len) {
        VmshiftFinding *x = g_ptr_array_steal_index(pf, 0);
        if (why && *why && x->severity == VMSHIFT_SEVERITY_ERROR
            && !g_strcmp0(x->subject, dest->name) && x->message && strstr(x->message, why))
            vmshift_finding_free(x);
        else
            g_ptr_array_add(f, x);
    }
}

GPtrArray *
host_validate(HostBackend *b, const VmshiftMigrationSpec *spec, const VmshiftVm *vm, GError **error)
{
    g_autoptr(GPtrArray) f = vmshift_list_new((GDestroyNotify)vmshift_finding_free);
    g_autoptr(GPtrArray) hosts = host_backend_list_hosts(b, error);
    const char *target = spec->type == VMSHIFT_MIGRATION_STORAGE ? vm->host : spec->dest_host;
    VmshiftHost *dest;

    if (!hosts)
        return NULL;
    dest = check_destination(f, b, spec, vm, hosts);
    check_power(f, spec, vm);
    check_merge(f, b, vm);
    check_networks(f, b, spec, vm);
    check_space(f, b, spec, vm, target);
    add_backend_findings(f, b, spec, dest);
    check_mappings(f, spec, vm);
    return g_steal_pointer(&f);
}

void
host_findings_count(GPtrArray *f, guint *errors, guint *warnings)
{
    *errors = *warnings = 0;
    for (guint i = 0; f && i < f->len; i++) {
        VmshiftFinding *x = g_ptr_array_index(f, i);
        if (x->severity == VMSHIFT_SEVERITY_ERROR)
            (*errors)++;
        else if (x->severity == VMSHIFT_SEVERITY_WARNING)
            (*warnings)++;
    }
}

void
host_findings_print(GPtrArray *f, FILE *out)
{
    g_autoptr(HostTable) t = host_table_new("SEVERITY", "CODE", "SUBJECT", "MESSAGE", NULL);

    for (guint i = 0; f && i < f->len; i++) {
        VmshiftFinding *x = g_ptr_array_index(f, i);
        host_table_add(t, vmshift_severity_name(x->severity), x->code, x->subject, x->message);
    }
    if (!f || f->len == 0)
        fprintf(out, "no findings\n");
    else
        host_table_print(t, out);
}
