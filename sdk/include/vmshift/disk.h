/*
 * vmshift SDK: disk images as streams of their guest-visible bytes, for
 * moves between backends (ABI 1.4).
 *
 * Include <vmshift/vmshift.h>, not this file.
 *
 * Between backends a disk travels as its raw guest-visible bytes, whatever
 * format each side stores it in: the source's open_disk() gives such a
 * stream, the destination's import_vm() writes it into its own format. For
 * a local image these two helpers do the conversion with the tools the
 * distributions ship: a raw image is read and written directly (holes kept
 * where the data is zero); any other format goes through `qemu-nbd` (from
 * qemu-utils) and `nbdcopy` (from libnbd-bin), streaming, with no temporary
 * copy.
 */
#if !defined(VMSHIFT_INSIDE) && !defined(VMSHIFT_COMPILATION)
#error "Only <vmshift/vmshift.h> can be included directly."
#endif

#ifndef VMSHIFT_DISK_H
#define VMSHIFT_DISK_H

#include <gio/gio.h>
#include <vmshift/job.h>

G_BEGIN_DECLS

/**
 * vmshift_disk_read_raw:
 * @path: a local image file
 * @format: its format ("raw", "qcow2", "vmdk", "vhdx", "vpc"), or NULL to
 *   ask `qemu-img info`
 * @capacity: (out) (optional): the image's virtual size in bytes
 * @cancellable: (nullable): cancels the read
 * @error: return location for an error
 *
 * Opens @path for reading as its guest-visible bytes. Reading the stream
 * to its end fails when the converter failed, so a short read is never
 * taken for the whole disk.
 *
 * Returns: (transfer full): the stream, or NULL with @error set.
 *
 * Since: ABI 1.4 (symbol version VMSHIFT_SDK_1.4)
 */
GInputStream *vmshift_disk_read_raw(const char *path, const char *format, guint64 *capacity,
                                    GCancellable *cancellable, GError **error);

/**
 * vmshift_disk_read_command:
 * @argv: a command whose standard output is a disk's bytes (e.g. the
 *   converter run on a remote host through ssh)
 * @what: what it does, for errors ("reading /srv/a.qcow2 on host b")
 * @error: return location for an error
 *
 * Starts @argv and opens its standard output as a stream. At the end of the
 * data the read waits for the command and fails, with the first line it
 * printed on its standard error, when it did not succeed: a command cut
 * short is never taken for the whole disk. Closing the stream early stops
 * the command. vmshift_disk_read_raw() reads local images with it.
 *
 * Returns: (transfer full): the stream, or NULL with @error set.
 *
 * Since: ABI 1.4 (symbol version VMSHIFT_SDK_1.4)
 */
GInputStream *vmshift_disk_read_command(const char *const *argv, const char *what, GError **error);

/**
 * vmshift_disk_write_raw:
 * @in: guest-visible bytes (e.g. from vmshift_job_open_source_disk())
 * @capacity: how many bytes @in gives, the new image's virtual size
 * @path: the image to create; it must not exist
 * @format: the format to store it in ("raw", "qcow2", "vmdk", "vhdx", "vpc")
 * @job: (nullable): reports bytes written with vmshift_job_set_bytes()
 * @cancellable: (nullable): cancels the write
 * @error: return location for an error
 *
 * Creates @path in @format and writes @in into it. On failure (also a
 * stream shorter or longer than @capacity) the partial image is removed.
 *
 * Returns: TRUE when all @capacity bytes were written.
 *
 * Since: ABI 1.4 (symbol version VMSHIFT_SDK_1.4)
 */
gboolean vmshift_disk_write_raw(GInputStream *in, guint64 capacity, const char *path,
                                const char *format, VmshiftJob *job, GCancellable *cancellable,
                                GError **error);

/**
 * vmshift_disk_image_info:
 * @path: a local image file
 * @format: (out) (optional) (transfer full): its format as `qemu-img info` names it
 * @capacity: (out) (optional): its virtual size in bytes
 * @error: return location for an error
 *
 * Returns: TRUE when `qemu-img info` could read the image.
 *
 * Since: ABI 1.4 (symbol version VMSHIFT_SDK_1.4)
 */
gboolean vmshift_disk_image_info(const char *path, char **format, guint64 *capacity,
                                 GError **error);

G_END_DECLS

#endif /* VMSHIFT_DISK_H */
