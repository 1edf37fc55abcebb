/*
 * vmshift host: guest conversion for moves between backends
 * (`migrate --to BACKEND:HOST --convert-guest`), through virt-v2v.
 *
 * virt-v2v converts guests for KVM only (it installs virtio drivers and
 * fixes the boot configuration); the host therefore accepts
 * --convert-guest for a KVM destination and refuses it for others.
 * Implemented in convert.c.
 */
#ifndef VMSHIFT_HOST_CONVERT_H
#define VMSHIFT_HOST_CONVERT_H

#include <vmshift/vmshift.h>

G_BEGIN_DECLS

/* TRUE when virt-v2v-in-place can run here; FALSE with one line naming the
 * Debian package to install. */
gboolean host_convert_available(GError **error);

/* Converts the guest on @paths (local raw images of @vm's disks, in the
 * order of vm->disks) in place for KVM with virt-v2v-in-place, logging its
 * progress to @job. */
gboolean host_convert_guest(const VmshiftVm *vm, GPtrArray *paths, VmshiftJob *job,
                            GCancellable *cancellable, GError **error);

G_END_DECLS

#endif /* VMSHIFT_HOST_CONVERT_H */
