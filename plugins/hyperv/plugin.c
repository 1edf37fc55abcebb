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

static const VmshiftBackendOps hyperv_ops = {
    VMSHIFT_OPS_INIT,
    .open = hyperv_open_all,
    .close = hyperv_close_all,
    .list_hosts = hyperv_list_hosts,
    .list_vms = hyperv_list_vms,
    .get_vm = hyperv_get_vm,
    .list_networks = hyperv_list_networks,
    .list_volumes = hyperv_list_volumes,
    .checkpoint_state = hyperv_checkpoint_state,
    .check_migration = hyperv_check_migration,
    .migrate = hyperv_migrate,
    .recreate_acl = hyperv_recreate_acl,
    .list_snapshots = hyperv_list_snapshots,
    .repair = hyperv_repair,
    .export_vm = hyperv_export_vm,
    .open_disk = hyperv_open_disk,
    .check_import = hyperv_check_import,
    .import_vm = hyperv_import_vm,
    .remove_vm = hyperv_remove_vm,
    .start_vm = hyperv_start_vm,
};

static const char *const hyperv_keys[] = { VMSHIFT_HTTP_CONFIG_KEYS, "hosts", "smb-shares",
                                           "staging-dir", NULL };

VMSHIFT_PLUGIN_DEFINE("hyperv", PACKAGE_VERSION, "MIT",
                      "Microsoft Hyper-V over WS-Management (WMI root/virtualization/v2)",
                      VMSHIFT_PLUGIN_LIVE | VMSHIFT_PLUGIN_COLD | VMSHIFT_PLUGIN_STORAGE
                          | VMSHIFT_PLUGIN_HOST_AND_STORAGE,
                      hyperv_ops, hyperv_keys)
