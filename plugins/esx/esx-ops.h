/* ESX plugin: the operations table's functions (esx.c: open/close; the others in one
 * esx-*.c file per family, see esx.c). */
#ifndef VMSHIFT_ESX_OPS_H
#define VMSHIFT_ESX_OPS_H

#include <vmshift/vmshift.h>

VmshiftBackend *esx_open(const VmshiftConfig *config, guint32 flags, GError **error);
void esx_close(VmshiftBackend *be);
GPtrArray *esx_list_hosts(VmshiftBackend *be, guint32 flags, GError **error);
GPtrArray *esx_list_vms(VmshiftBackend *be, const char *host, guint32 flags, GError **error);
VmshiftVm *esx_get_vm(VmshiftBackend *be, const char *name, guint32 flags, GError **error);
GPtrArray *esx_list_networks(VmshiftBackend *be, const char *host, guint32 flags, GError **error);
GPtrArray *esx_list_volumes(VmshiftBackend *be, const char *host, guint32 flags, GError **error);
VmshiftCheckpointState *esx_checkpoint_state(VmshiftBackend *be, const char *name, guint32 flags,
                                             GError **error);
GPtrArray *esx_check_migration(VmshiftBackend *be, const VmshiftMigrationSpec *spec, guint32 flags,
                               GError **error);
gboolean esx_migrate(VmshiftBackend *be, const VmshiftMigrationSpec *spec, VmshiftJob *job,
                     guint32 flags, GError **error);
gboolean esx_recreate_acl(VmshiftBackend *be, const char *name, VmshiftJob *job, guint32 flags,
                          GError **error);
GPtrArray *esx_list_snapshots(VmshiftBackend *be, const char *name, guint32 flags, GError **error);
gboolean esx_watch_changes(VmshiftBackend *be, const char *name, VmshiftChangeFunc func,
                           gpointer user_data, GCancellable *cancellable, guint32 flags,
                           GError **error);

gboolean esx_customize_guest(VmshiftBackend *be, const char *name, GPtrArray *nics, VmshiftJob *job,
                             guint32 flags, GError **error);
/* esx-guest.c: check_migration, with --ip's every-adapter check */
GPtrArray *esx_guest_check_migration(VmshiftBackend *be, const VmshiftMigrationSpec *spec,
                                     guint32 flags, GError **error);
/* esx-v2v.c: moves between backends (ABI 1.4) */
VmshiftVm *esx_export_vm(VmshiftBackend *be, const char *vm, guint32 flags, GError **error);
GInputStream *esx_open_disk(VmshiftBackend *be, const char *vm, const char *disk_id,
                            GCancellable *cancellable, guint32 flags, GError **error);
GPtrArray *esx_check_import(VmshiftBackend *be, const VmshiftMigrationSpec *spec, guint32 flags,
                            GError **error);
gboolean esx_import_vm(VmshiftBackend *be, const VmshiftMigrationSpec *spec, VmshiftJob *job,
                       guint32 flags, GError **error);
gboolean esx_remove_vm(VmshiftBackend *be, const char *vm, VmshiftJob *job, guint32 flags,
                       GError **error);
gboolean esx_start_vm(VmshiftBackend *be, const char *vm, VmshiftJob *job, guint32 flags,
                      GError **error);
gboolean esx_repair(VmshiftBackend *be, VmshiftJob *job, guint32 flags, GError **error);

#endif
