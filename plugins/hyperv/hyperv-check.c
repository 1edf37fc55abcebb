/*
 * vmshift Hyper-V plugin: migration planning (disk targets, mappings)
 * and the pre-migration check.
 * Facts and sources: docs/design/hyperv.md.
 */
#include "config.h"

#include <stdarg.h>
#include <string.h>

#include <vmshift/vmshift.h>

#include "hyperv.h"

static const char *
mapping_for(GPtrArray *maps, const char *const *keys)
{
    for (guint i = 0; maps != NULL && i < maps->len; i++) {
        VmshiftMapping *m = maps->pdata[i];
        for (guint k = 0; keys[k] != NULL; k++)
            if (keys[k][0] && g_ascii_strcasecmp(m->key, keys[k]) == 0)
                return m->value;
    }
    return NULL;
}

/* Target path of each disk (NULL entries: the disk stays). */
GPtrArray *
hv_disk_targets(const HvVm *v, const VmshiftMigrationSpec *spec)
{
    GPtrArray *out = g_ptr_array_new_with_free_func(g_free);

    for (guint i = 0; i < v->sasds->len; i++) {
        HvInstance *s = v->sasds->pdata[i];
        const char *path = hv_inst_get(s, "HostResource");
        const char *iid = hv_inst_get(s, "InstanceID");
        const char *keys[] = { hv_disk_id(s), path ? path : "", iid ? iid : "", NULL };
        const char *dir = mapping_for(spec->disk_paths, keys);
        if (dir == NULL)
            dir = spec->dest_path;
        g_ptr_array_add(out, dir != NULL && path != NULL ? hv_join_win(dir, hv_basename_win(path))
                                                         : NULL);
    }
    return out;
}

const char *
hv_spec_type_name(guint32 t)
{
    return t == VMSHIFT_MIGRATION_LIVE   ? "live migration"
           : t == VMSHIFT_MIGRATION_COLD ? "cold migration"
                                         : "storage migration";
}

static void add_finding(GPtrArray *f, VmshiftSeverity sev, const char *code, const char *subject,
                        const char *format, ...) G_GNUC_PRINTF(5, 6);

static void
add_finding(GPtrArray *f, VmshiftSeverity sev, const char *code, const char *subject,
            const char *format, ...)
{
    g_autofree char *msg = NULL;
    va_list ap;

    va_start(ap, format);
    msg = g_strdup_vprintf(format, ap);
    va_end(ap);
    g_ptr_array_add(f, vmshift_finding_new(sev, code, subject, "%s", msg));
}

/* The destination host of a live or cold migration.  NULL with @error set,
 * or NULL with a finding in @f that says why there is none to check. */
static HvHost *
check_destination(VmshiftBackend *b, HvVm *v, const VmshiftMigrationSpec *spec, const char *name,
                  GPtrArray *f, GError **error)
{
    HvHost *dest;

    if (spec->dest_host == NULL) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_INVALID_ARGUMENT,
                    "%s of %s needs a destination host", hv_spec_type_name(spec->type), name);
        return NULL;
    }
    dest = hv_find_host(b, spec->dest_host);
    if (dest == NULL || !hv_host_usable(dest)) {
        add_finding(f, VMSHIFT_SEVERITY_ERROR, VMSHIFT_FINDING_HOST_UNREACHABLE, spec->dest_host,
                    "destination %s is not a reachable Hyper-V host of backend %s%s%s",
                    spec->dest_host, b->backend, dest ? ": " : "",
                    dest ? dest->open_error->message : "");
        return NULL;
    }
    return dest; /* the host itself reports a move to the VM's own host (same-host) */
}

/* Another operation Hyper-V runs on the VM (a merge the host reports from
 * checkpoint_state, as merge-in-progress). */
static void
check_busy(HvVm *v, const char *name, GPtrArray *f)
{
    gint64 os2 = hv_opstatus2(v->cs);

    if (os2 != HV_OPSTATUS_NONE && !hv_opstatus_is_merge(os2) && hv_opstatus_text(os2) != NULL)
        add_finding(f, VMSHIFT_SEVERITY_ERROR, VMSHIFT_FINDING_VM_BUSY, name,
                    "%s is busy: Hyper-V reports \"%s\" (OperationalStatus %" G_GINT64_FORMAT ")",
                    name, hv_opstatus_text(os2), os2);
}

static void
check_power(HvVm *v, const VmshiftMigrationSpec *spec, const char *name, GPtrArray *f)
{
    gint64 enabled = hv_inst_get_int(v->cs, "EnabledState", 0);
    guint32 power = hv_power_state(enabled);

    /* running against --live/--cold the host judges from get_vm's power state;
     * a state Hyper-V cannot migrate from only the backend knows */
    (void)spec;
    if (power == VMSHIFT_POWER_UNKNOWN)
        add_finding(f, VMSHIFT_SEVERITY_ERROR, VMSHIFT_FINDING_VM_STATE, name,
                    "%s is in state %" G_GINT64_FORMAT " and cannot be migrated now", name,
                    enabled);
}

/* The migration service of one side: enabled, listening (destination),
 * below its limit of simultaneous migrations. */
static gboolean
check_migration_service(HvHost *h, gboolean is_dest, GPtrArray *f, GError **error)
{
    g_autoptr(HvInstance) msd = hv_first_of(
        h, HV_NS_V2, "SELECT * FROM Msvm_VirtualSystemMigrationServiceSettingData", NULL, error);
    g_autoptr(HvInstance) svc = NULL;
    gint64 max;

    if (msd == NULL)
        return FALSE;
    svc = hv_first_of(h, HV_NS_V2, "SELECT * FROM Msvm_VirtualSystemMigrationService", NULL, error);
    if (svc == NULL)
        return FALSE;
    max = hv_inst_get_int(msd, "MaximumActiveVirtualSystemMigration",
                          HV_DEFAULT_MAX_ACTIVE_MIGRATIONS);
    if (g_strcmp0(hv_inst_get(msd, "EnableVirtualSystemMigration"), "false") == 0)
        add_finding(f, VMSHIFT_SEVERITY_ERROR, VMSHIFT_FINDING_MIGRATION_DISABLED, h->name,
                    "live migration is not enabled on %s (Enable-VMMigration)", h->name);
    else if (is_dest && hv_inst_get_all(svc, "MigrationServiceListenerIPAddressList")->len == 0)
        add_finding(f, VMSHIFT_SEVERITY_ERROR, VMSHIFT_FINDING_NO_MIGRATION_NETWORK, h->name,
                    "%s has no live migration network (Set-VMMigrationNetwork)", h->name);
    else if (hv_inst_get_int(svc, "ActiveVirtualSystemMigrationCount", 0) >= max)
        add_finding(f, VMSHIFT_SEVERITY_WARNING, VMSHIFT_FINDING_MIGRATION_LIMIT, h->name,
                    "%s already runs its maximum of %" G_GINT64_FORMAT " live migrations; "
                    "this one will wait",
                    h->name, max);
    return TRUE;
}

/* Each disk: reachable from @dest where it stays, or a volume of @dest for
 * its target. The space there the host judges from list_volumes (FreeSpace)
 * and the disks' allocation (no-space, low-space, space-unknown). */
static gboolean
check_storage(HvVm *v, HvHost *dest, const VmshiftMigrationSpec *spec, const char *name,
              GPtrArray *f, GError **error)
{
    g_autoptr(GPtrArray) targets = hv_disk_targets(v, spec);
    g_autoptr(GPtrArray) vols = hv_host_volumes(dest, error);
    g_autoptr(GPtrArray) src_vols = NULL;

    if (vols == NULL)
        return FALSE;
    src_vols = dest == v->host ? NULL : hv_host_volumes(v->host, error);
    if (dest != v->host && src_vols == NULL)
        return FALSE;
    if (spec->type == VMSHIFT_MIGRATION_STORAGE && spec->dest_path == NULL
        && (spec->disk_paths == NULL || spec->disk_paths->len == 0)) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_INVALID_ARGUMENT,
                    "storage migration of %s needs --path or --disk-path", name);
        return FALSE;
    }
    for (guint i = 0; i < v->sasds->len; i++) {
        const char *path = hv_inst_get(v->sasds->pdata[i], "HostResource");
        const char *t = targets->pdata[i];
        const char *id = hv_disk_id(v->sasds->pdata[i]);
        if (t == NULL) {
            HvInstance *sv = src_vols ? hv_volume_of(src_vols, path) : NULL;
            if (dest != v->host && !(path != NULL && g_str_has_prefix(path, "\\\\"))
                && (sv == NULL || !hv_volume_is_shared(sv)))
                add_finding(f, VMSHIFT_SEVERITY_ERROR, VMSHIFT_FINDING_DISK_UNREACHABLE, id,
                            "disk %s of %s is on storage local to %s (%s); give --path to "
                            "move it too",
                            id, name, v->host->name, path);
            continue;
        }
        if (hv_volume_of(vols, t) == NULL)
            add_finding(f, VMSHIFT_SEVERITY_ERROR, VMSHIFT_FINDING_PATH_NOT_FOUND, id,
                        "no volume on %s holds %s (for disk %s)", dest->name, t, id);
    }
    return TRUE;
}

/* --transfer (docs/design/hyperv.md §2.4): Hyper-V has no SAN copy of its
 * own; a VirtualSystem migration leaves the VHDs where they are, which is
 * what san asks (check_storage says when a VHD is not on storage both hosts
 * reach: an SMB share or a cluster volume), and VirtualSystemAndStorage
 * copies them over the migration network, which is what network asks. */
static void
check_transfer(const VmshiftMigrationSpec *spec, const char *name, GPtrArray *f)
{
    gboolean moves = vmshift_migration_spec_moves_storage(spec);

    if (spec->transfer == VMSHIFT_TRANSFER_SAN
        && (moves || spec->type == VMSHIFT_MIGRATION_STORAGE))
        add_finding(f, VMSHIFT_SEVERITY_ERROR, VMSHIFT_FINDING_TRANSFER_CONFLICT, name,
                    "--transfer san keeps the VHDs of %s where they are; it cannot go with "
                    "--path, --disk-path or a storage migration",
                    name);
    if (spec->transfer == VMSHIFT_TRANSFER_NETWORK && !moves)
        add_finding(f, VMSHIFT_SEVERITY_ERROR, VMSHIFT_FINDING_TRANSFER_CONFLICT, name,
                    "--transfer network copies the VHDs of %s: give the target folder with "
                    "--path DIR (or --disk-path)",
                    name);
}

static GPtrArray *
check_vm(VmshiftBackend *b, HvVm *v, const VmshiftMigrationSpec *spec, GError **error)
{
    g_autoptr(GPtrArray) f = vmshift_list_new((GDestroyNotify)vmshift_finding_free);
    const char *name = hv_inst_get(v->cs, "ElementName");
    HvHost *dest = v->host;

    if (spec->type != VMSHIFT_MIGRATION_STORAGE) {
        dest = check_destination(b, v, spec, name, f, error);
        if (dest == NULL)
            return f->len > 0 ? g_steal_pointer(&f) : NULL;
        if (dest == v->host)
            return g_steal_pointer(&f);
    }
    check_busy(v, name, f);
    check_power(v, spec, name, f);
    if (spec->type != VMSHIFT_MIGRATION_STORAGE) {
        if (!check_migration_service(v->host, FALSE, f, error)
            || !check_migration_service(dest, TRUE, f, error))
            return NULL;
        /* the NICs' switches at @dest the host judges from list_hosts
         * (VmshiftHost.networks: the host's switches), as network-missing */
    }
    check_transfer(spec, name, f);
    if (!check_storage(v, dest, spec, name, f, error))
        return NULL;
    return g_steal_pointer(&f);
}

/* This backend takes no --option keys (spec->options); each is refused by name. */
gboolean
hv_refuse_options(const VmshiftMigrationSpec *spec, GError **error)
{
    GVariantIter it;
    const char *key;
    GVariant *val;

    if (spec->options == NULL || !g_variant_is_of_type(spec->options, G_VARIANT_TYPE("a{sv}")))
        return TRUE;
    g_variant_iter_init(&it, spec->options);
    if (g_variant_iter_next(&it, "{&sv}", &key, &val)) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_INVALID_ARGUMENT,
                    "hyperv: unknown migration option '%s' (this backend has none)", key);
        g_variant_unref(val);
        return FALSE;
    }
    return TRUE;
}

GPtrArray *
hyperv_check_migration(VmshiftBackend *b, const VmshiftMigrationSpec *spec, guint32 flags,
                       GError **error)
{
    g_autoptr(HvVm) v = NULL;

    if (!vmshift_check_flags(flags, 0, "check_migration", error) || !hv_refuse_options(spec, error))
        return NULL;
    v = hv_find_vm(b, spec->vm, TRUE, error);
    return v != NULL ? check_vm(b, v, spec, error) : NULL;
}
