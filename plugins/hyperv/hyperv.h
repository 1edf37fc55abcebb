/*
 * Hyper-V plugin: the backend operations (hyperv.c), shared with the
 * plugin entry point (plugin.c) and the tests that link the convenience
 * library.
 */
#ifndef HYPERV_HYPERV_H
#define HYPERV_HYPERV_H

#include <vmshift/vmshift.h>

VmshiftBackend *hyperv_open(const VmshiftConfig *config, guint32 flags, GError **error);
void hyperv_close(VmshiftBackend *backend);
GPtrArray *hyperv_list_hosts(VmshiftBackend *b, guint32 flags, GError **error);
GPtrArray *hyperv_list_vms(VmshiftBackend *b, const char *host, guint32 flags, GError **error);
VmshiftVm *hyperv_get_vm(VmshiftBackend *b, const char *vm, guint32 flags, GError **error);
GPtrArray *hyperv_list_networks(VmshiftBackend *b, const char *host, guint32 flags,
                                GError **error);
GPtrArray *hyperv_list_volumes(VmshiftBackend *b, const char *host, guint32 flags,
                               GError **error);
VmshiftCheckpointState *hyperv_checkpoint_state(VmshiftBackend *b, const char *vm,
                                                guint32 flags, GError **error);
GPtrArray *hyperv_check_migration(VmshiftBackend *b, const VmshiftMigrationSpec *spec,
                                  guint32 flags, GError **error);
gboolean hyperv_migrate(VmshiftBackend *b, const VmshiftMigrationSpec *spec, VmshiftJob *job,
                        guint32 flags, GError **error);
gboolean hyperv_recreate_acl(VmshiftBackend *b, const char *vm, VmshiftJob *job,
                             guint32 flags, GError **error);
GPtrArray *hyperv_list_snapshots(VmshiftBackend *b, const char *vm, guint32 flags,
                                 GError **error);
gboolean hyperv_repair(VmshiftBackend *b, VmshiftJob *job, guint32 flags, GError **error);

#endif /* HYPERV_HYPERV_H */
