/*
 * skeleton.h — what the skeleton plugin's two files share: the backend
 * handle and the stand-in hypervisor's state file (skeleton.c), used by the
 * operations for moves between backends (skeleton-v2v.c).
 *
 * Nothing here is exported: the plugin is built with -fvisibility=hidden,
 * and only vmshift_plugin_entry() leaves the shared object.
 *
 * SPDX-License-Identifier: MIT
 */
#ifndef SKELETON_H
#define SKELETON_H

#include <vmshift/vmshift.h>

#define SKELETON_VERSION "1.0.0"
#define GiB (G_GUINT64_CONSTANT(1) << 30)

/* The plugin's handle: everything a backend instance needs. */
struct _VmshiftBackend {
    char *name;       /* the backend's name, for messages */
    char *state_file; /* our stand-in for a hypervisor's API */
    char **hosts;
    gint64 transfer_seconds;
    gint64 import_seconds; /* how long import_vm takes beyond the writes (0) */
    gint64 switchover_reply_seconds;
    char *shared_path;   /* NULL: every volume is local to its host */
    char *data_dir;      /* the stand-in hypervisor's file system: path P is DATA_DIR/P */
    char *import_format; /* the format import_vm writes disks in (raw) */
};
typedef struct _VmshiftBackend SkeletonBackend;

/* skeleton.c: the state file, locked with flock() while it is read and
 * written (state_load() takes the lock, state_unlock() drops it). */
GKeyFile *state_load(SkeletonBackend *b, int *lock_fd, GError **error);
gboolean state_save(SkeletonBackend *b, GKeyFile *kf, GError **error);
void state_unlock(int lock_fd);
char *vm_group(const char *vm);
gboolean host_known(SkeletonBackend *b, const char *host);
VmshiftVm *vm_from_state(GKeyFile *kf, const char *name);
/* The KIND of the fault armed at @where (`fault=KIND@WHERE`), one hit
 * consumed; NULL when none. */
char *hv_fault(SkeletonBackend *b, const char *where);

/* skeleton-v2v.c: moves between backends (ABI 1.4). */
VmshiftVm *skeleton_export_vm(VmshiftBackend *b, const char *vm, guint32 flags, GError **error);
GInputStream *skeleton_open_disk(VmshiftBackend *b, const char *vm, const char *disk_id,
                                 GCancellable *cancellable, guint32 flags, GError **error);
GPtrArray *skeleton_check_import(VmshiftBackend *b, const VmshiftMigrationSpec *spec, guint32 flags,
                                 GError **error);
gboolean skeleton_import_vm(VmshiftBackend *b, const VmshiftMigrationSpec *spec, VmshiftJob *job,
                            guint32 flags, GError **error);
gboolean skeleton_remove_vm(VmshiftBackend *b, const char *vm, VmshiftJob *job, guint32 flags,
                            GError **error);
gboolean skeleton_start_vm(VmshiftBackend *b, const char *vm, VmshiftJob *job, guint32 flags,
                           GError **error);

#endif /* SKELETON_H */
