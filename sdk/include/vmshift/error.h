/*
 * vmshift SDK: the error domain.
 *
 * Include <vmshift/vmshift.h>, not this file.
 */
#if !defined(VMSHIFT_INSIDE) && !defined(VMSHIFT_COMPILATION)
#error "Only <vmshift/vmshift.h> can be included directly."
#endif

#ifndef VMSHIFT_ERROR_H
#define VMSHIFT_ERROR_H

#include <glib.h>

G_BEGIN_DECLS

/**
 * VMSHIFT_ERROR:
 *
 * The GError domain of every error that crosses the SDK boundary. Plugins map
 * lower-level errors (libcurl, libxml2, json-c, libvirt, errno) into this
 * domain, usually with g_prefix_error() for context. The one exception is
 * cancellation, which stays G_IO_ERROR / G_IO_ERROR_CANCELLED, as produced by
 * g_cancellable_set_error_if_cancelled().
 */
#define VMSHIFT_ERROR (vmshift_error_quark())

/**
 * VmshiftError:
 * @VMSHIFT_ERROR_FAILED: a failure with no more specific code.
 * @VMSHIFT_ERROR_NOT_SUPPORTED: the backend does not implement the operation
 *   or the requested variant of it (e.g. live storage migration).
 * @VMSHIFT_ERROR_NOT_APPLICABLE: the plugin declines this configuration
 *   (open() on a machine where the backend cannot run); not a failure.
 * @VMSHIFT_ERROR_INVALID_ARGUMENT: a malformed argument, unknown flag or
 *   unknown option key.
 * @VMSHIFT_ERROR_NOT_FOUND: unknown VM, host, disk, network or volume.
 * @VMSHIFT_ERROR_AUTH_FAILED: the peer refused the credentials.
 * @VMSHIFT_ERROR_TLS: certificate verification or TLS handshake failed.
 * @VMSHIFT_ERROR_PROTOCOL: the peer sent something malformed or unexpected
 *   (bad XML/JSON, a SOAP fault that maps to nothing better).
 * @VMSHIFT_ERROR_TIMEOUT: the peer did not answer in time.
 * @VMSHIFT_ERROR_BUSY: the VM is busy, e.g. a checkpoint merge is running.
 * @VMSHIFT_ERROR_CONFLICT: the requested state conflicts with the current one
 *   (VM powered on for a cold migration, another job holds the VM).
 * @VMSHIFT_ERROR_NO_SPACE: not enough space (or memory) at the destination.
 * @VMSHIFT_ERROR_ABI: a plugin was built for an incompatible SDK ABI.
 * @VMSHIFT_ERROR_CONFIG: a configuration file or key is invalid.
 * @VMSHIFT_ERROR_CONNECTION: the peer could not be reached or the connection
 *   was lost.
 * @VMSHIFT_ERROR_PERMISSION: local permission problem (file modes, owner).
 * @VMSHIFT_ERROR_INTERRUPTED: a job was interrupted (killed host process)
 *   and needs `vmshift job repair`.
 *
 * Stable error codes. Values are explicit and append-only: a code is never
 * renumbered or reused, so programs may store them.
 */
typedef enum {
    VMSHIFT_ERROR_FAILED = 1,
    VMSHIFT_ERROR_NOT_SUPPORTED = 2,
    VMSHIFT_ERROR_NOT_APPLICABLE = 3,
    VMSHIFT_ERROR_INVALID_ARGUMENT = 4,
    VMSHIFT_ERROR_NOT_FOUND = 5,
    VMSHIFT_ERROR_AUTH_FAILED = 6,
    VMSHIFT_ERROR_TLS = 7,
    VMSHIFT_ERROR_PROTOCOL = 8,
    VMSHIFT_ERROR_TIMEOUT = 9,
    VMSHIFT_ERROR_BUSY = 10,
    VMSHIFT_ERROR_CONFLICT = 11,
    VMSHIFT_ERROR_NO_SPACE = 12,
    VMSHIFT_ERROR_ABI = 13,
    VMSHIFT_ERROR_CONFIG = 14,
    VMSHIFT_ERROR_CONNECTION = 15,
    VMSHIFT_ERROR_PERMISSION = 16,
    VMSHIFT_ERROR_INTERRUPTED = 17,
} VmshiftError;

/**
 * vmshift_error_quark:
 *
 * Returns: the quark of the VMSHIFT_ERROR domain.
 */
GQuark vmshift_error_quark(void);

/**
 * vmshift_error_code_name:
 * @code: a #VmshiftError value
 *
 * Returns: a stable lower-case name for @code ("not-supported", "busy", …),
 *   used in `--json` output; "unknown" for values this SDK does not know.
 *   The string is static.
 */
const char *vmshift_error_code_name(int code);

/**
 * vmshift_check_flags:
 * @flags: the flags an operation was called with
 * @supported: the flags the operation understands
 * @operation: the operation's name, for the message
 * @error: return location for an error
 *
 * Rejects unknown flag bits, as libvirt's virCheckFlags() does: call it first
 * in every operation so that a newer host never has its flags silently
 * ignored by an older plugin.
 *
 * Returns: TRUE when @flags has no bit outside @supported; otherwise FALSE
 *   with VMSHIFT_ERROR_INVALID_ARGUMENT set.
 */
gboolean vmshift_check_flags(guint32 flags, guint32 supported, const char *operation,
                             GError **error);

G_END_DECLS

#endif /* VMSHIFT_ERROR_H */
