/*
 * vmshift Hyper-V plugin: the descriptor and entry point.
 *
 * Keys besides the HTTP ones (vmshift.conf(5)):
 *   hosts=        the Hyper-V hosts (names or WS-Man URLs), ';'-separated
 *   smb-shares=   moves between backends: where each drive of a host is
 *                 shared, "D:=//SERVER/SHARE[/DIR]" entries (';'-separated;
 *                 %h = the host's name); a drive without an entry is reached
 *                 through its administrative share //HOST/D$. The user,
 *                 password and domain are the credentials file's.
 *   staging-dir=  moves between backends: where a disk is staged as VHDX on
 *                 its way to or from a host (default: $TMPDIR or /tmp); its
 *                 free space is checked against each disk first.
 */
#include "config.h"

#include <vmshift/vmshift.h>
#include <vmshift/http.h>

#include "hyperv.h"

static VmshiftBackend *
hyperv_open_all(const VmshiftConfig *config, guint32 flags, GError **error)
{
    g_auto(GStrv) list = vmshift_config_get_string_list(config, "smb-shares");
    g_autoptr(GPtrArray) shares = g_ptr_array_new_with_free_func(g_free);
    VmshiftBackend *b;

    for (guint i = 0; list != NULL && list[i] != NULL; i++)
        g_ptr_array_add(shares, g_strdup(list[i]));

    if (!hv_smb_check_shares(shares, error)) {
        g_prefix_error(error, "%s: backend %s: ", vmshift_config_get_source(config),
                       vmshift_config_get_backend(config));
        return NULL;
    }
    b = hyperv_open(config, flags, error);
    if (b == NULL)
        return NULL;
    if (shares->len > 0)
        b->smb_shares = g_steal_pointer(&shares);
    b->staging_dir = vmshift_config_get_string(config, "staging-dir", g_get_tmp_dir());
    return b;
}

static void
hyperv_close_all(VmshiftBackend *b)
{
    if (b == NULL)
        return;
    if (b->smb_shares != NULL)
        g_ptr_array_unref(b->smb_shares);
    g_free(b->staging_dir);
    hyperv_close(b);
}

/*
 * Every operation contacts the hosts first (hv_hosts_ready): open does not
 * wait on the network (`vmshift backends` answers at once), and a host that
 * does not answer fails the operation that needed it, in one line naming
 * the backend and the host.
 */
#define HV_READY(ret, fail, op, params, ...) \
    static ret hv_ready_##op params          \
    {                                        \
        if (!hv_hosts_ready(b, error))       \
            return fail;                     \
        return hyperv_##op(b, __VA_ARGS__);  \
    }

HV_READY(GPtrArray *, NULL, list_hosts, (VmshiftBackend * b, guint32 flags, GError **error), flags,
         error)
HV_READY(GPtrArray *, NULL, list_vms,
         (VmshiftBackend * b, const char *host, guint32 flags, GError **error), host, flags, error)
HV_READY(VmshiftVm *, NULL, get_vm,
         (VmshiftBackend * b, const char *vm, guint32 flags, GError **error), vm, flags, error)
HV_READY(GPtrArray *, NULL, list_networks,
         (VmshiftBackend * b, const char *host, guint32 flags, GError **error), host, flags, error)
HV_READY(GPtrArray *, NULL, list_volumes,
         (VmshiftBackend * b, const char *host, guint32 flags, GError **error), host, flags, error)
HV_READY(VmshiftCheckpointState *, NULL, checkpoint_state,
         (VmshiftBackend * b, const char *vm, guint32 flags, GError **error), vm, flags, error)
HV_READY(GPtrArray *, NULL, check_migration,
         (VmshiftBackend * b, const VmshiftMigrationSpec *spec, guint32 flags, GError **error),
         spec, flags, error)
HV_READY(gboolean, FALSE, migrate,
         (VmshiftBackend * b, const VmshiftMigrationSpec *spec, VmshiftJob *job, guint32 flags,
          GError **error),
         spec, job, flags, error)
HV_READY(gboolean, FALSE, recreate_acl,
         (VmshiftBackend * b, const char *vm, VmshiftJob *job, guint32 flags, GError **error), vm,
         job, flags, error)
HV_READY(GPtrArray *, NULL, list_snapshots,
         (VmshiftBackend * b, const char *vm, guint32 flags, GError **error), vm, flags, error)
HV_READY(gboolean, FALSE, repair,
         (VmshiftBackend * b, VmshiftJob *job, guint32 flags, GError **error), job, flags, error)
HV_READY(VmshiftVm *, NULL, export_vm,
         (VmshiftBackend * b, const char *vm, guint32 flags, GError **error), vm, flags, error)
HV_READY(GInputStream *, NULL, open_disk,
         (VmshiftBackend * b, const char *vm, const char *disk_id, GCancellable *c, guint32 flags,
          GError **error),
         vm, disk_id, c, flags, error)
HV_READY(GPtrArray *, NULL, check_import,
         (VmshiftBackend * b, const VmshiftMigrationSpec *spec, guint32 flags, GError **error),
         spec, flags, error)
HV_READY(gboolean, FALSE, import_vm,
         (VmshiftBackend * b, const VmshiftMigrationSpec *spec, VmshiftJob *job, guint32 flags,
          GError **error),
         spec, job, flags, error)
HV_READY(gboolean, FALSE, remove_vm,
         (VmshiftBackend * b, const char *vm, VmshiftJob *job, guint32 flags, GError **error), vm,
         job, flags, error)
HV_READY(gboolean, FALSE, start_vm,
         (VmshiftBackend * b, const char *vm, VmshiftJob *job, guint32 flags, GError **error), vm,
         job, flags, error)

static const VmshiftBackendOps hyperv_ops = {
    VMSHIFT_OPS_INIT,
    .open = hyperv_open_all,
    .close = hyperv_close_all,
    .list_hosts = hv_ready_list_hosts,
    .list_vms = hv_ready_list_vms,
    .get_vm = hv_ready_get_vm,
    .list_networks = hv_ready_list_networks,
    .list_volumes = hv_ready_list_volumes,
    .checkpoint_state = hv_ready_checkpoint_state,
    .check_migration = hv_ready_check_migration,
    .migrate = hv_ready_migrate,
    .recreate_acl = hv_ready_recreate_acl,
    .list_snapshots = hv_ready_list_snapshots,
    .repair = hv_ready_repair,
    .export_vm = hv_ready_export_vm,
    .open_disk = hv_ready_open_disk,
    .check_import = hv_ready_check_import,
    .import_vm = hv_ready_import_vm,
    .remove_vm = hv_ready_remove_vm,
    .start_vm = hv_ready_start_vm,
};

static const char *const hyperv_keys[] = { VMSHIFT_HTTP_CONFIG_KEYS, "hosts", "smb-shares",
                                           "staging-dir", NULL };

VMSHIFT_PLUGIN_DEFINE("hyperv", PACKAGE_VERSION, "MIT",
                      "Microsoft Hyper-V over WS-Management (WMI root/virtualization/v2)",
                      VMSHIFT_PLUGIN_LIVE | VMSHIFT_PLUGIN_COLD | VMSHIFT_PLUGIN_STORAGE
                          | VMSHIFT_PLUGIN_HOST_AND_STORAGE,
                      hyperv_ops, hyperv_keys)
