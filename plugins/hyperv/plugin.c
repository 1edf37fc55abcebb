/*
 * vmshift Hyper-V plugin: the descriptor and entry point.
 */
#include "config.h"

#include <vmshift/vmshift.h>
#include <vmshift/http.h>

#include "hyperv.h"

static const VmshiftBackendOps hyperv_ops = {
    VMSHIFT_OPS_INIT,
    .open = hyperv_open,
    .close = hyperv_close,
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
};

static const char *const hyperv_keys[] = { VMSHIFT_HTTP_CONFIG_KEYS, "hosts", NULL };

VMSHIFT_PLUGIN_DEFINE("hyperv", PACKAGE_VERSION, "MIT",
                      "Microsoft Hyper-V over WS-Management (WMI root/virtualization/v2)",
                      VMSHIFT_PLUGIN_LIVE | VMSHIFT_PLUGIN_COLD | VMSHIFT_PLUGIN_STORAGE
                          | VMSHIFT_PLUGIN_HOST_AND_STORAGE,
                      hyperv_ops, hyperv_keys)
