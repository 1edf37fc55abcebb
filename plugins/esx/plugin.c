/*
 * vmshift ESX plugin: the descriptor and entry point.
 */
#include "config.h"

#include <vmshift/vmshift.h>
#include <vmshift/http.h>

#include "esx-ops.h"

static const VmshiftBackendOps esx_ops = {
    VMSHIFT_OPS_INIT,
    .open = esx_open,
    .close = esx_close,
    .list_hosts = esx_list_hosts,
    .list_vms = esx_list_vms,
    .get_vm = esx_get_vm,
    .list_networks = esx_list_networks,
    .list_volumes = esx_list_volumes,
    .checkpoint_state = esx_checkpoint_state,
    .check_migration = esx_guest_check_migration, /* esx_check_migration, and --ip */
    .migrate = esx_migrate,
    .recreate_acl = esx_recreate_acl,
    .list_snapshots = esx_list_snapshots,
    .watch_changes = esx_watch_changes,
    .customize_guest = esx_customize_guest,
    .repair = esx_repair,
    .export_vm = esx_export_vm,
    .open_disk = esx_open_disk,
    .check_import = esx_check_import,
    .import_vm = esx_import_vm,
    .remove_vm = esx_remove_vm,
    .start_vm = esx_start_vm,
};

static const char *const esx_keys[] = { VMSHIFT_HTTP_CONFIG_KEYS, "datacenter", NULL };

VMSHIFT_PLUGIN_DEFINE("esx", PACKAGE_VERSION, "MIT",
                      "VMware ESXi / vCenter over the vSphere Web Services API (SOAP /sdk)",
                      VMSHIFT_PLUGIN_LIVE | VMSHIFT_PLUGIN_COLD | VMSHIFT_PLUGIN_STORAGE
                          | VMSHIFT_PLUGIN_HOST_AND_STORAGE,
                      esx_ops, esx_keys)
