/* vmshift SDK: error domain. */
#include "config.h"

#include <vmshift/vmshift.h>

#include "sdk-private.h"

VMSHIFT_API GQuark
vmshift_error_quark(void)
{
    return g_quark_from_static_string("vmshift-error-quark");
}

static const char *const error_names[] = {
    [VMSHIFT_ERROR_FAILED] = "failed",
    [VMSHIFT_ERROR_NOT_SUPPORTED] = "not-supported",
    [VMSHIFT_ERROR_NOT_APPLICABLE] = "not-applicable",
    [VMSHIFT_ERROR_INVALID_ARGUMENT] = "invalid-argument",
    [VMSHIFT_ERROR_NOT_FOUND] = "not-found",
    [VMSHIFT_ERROR_AUTH_FAILED] = "auth-failed",
    [VMSHIFT_ERROR_TLS] = "tls",
    [VMSHIFT_ERROR_PROTOCOL] = "protocol",
    [VMSHIFT_ERROR_TIMEOUT] = "timeout",
    [VMSHIFT_ERROR_BUSY] = "busy",
    [VMSHIFT_ERROR_CONFLICT] = "conflict",
    [VMSHIFT_ERROR_NO_SPACE] = "no-space",
    [VMSHIFT_ERROR_ABI] = "abi",
    [VMSHIFT_ERROR_CONFIG] = "config",
    [VMSHIFT_ERROR_CONNECTION] = "connection",
    [VMSHIFT_ERROR_PERMISSION] = "permission",
    [VMSHIFT_ERROR_INTERRUPTED] = "interrupted",
};

VMSHIFT_API const char *
vmshift_error_code_name(int code)
{
    if (code <= 0 || (gsize)code >= G_N_ELEMENTS(error_names) || !error_names[code])
        return "unknown";
    return error_names[code];
}

VMSHIFT_API gboolean
vmshift_check_flags(guint32 flags, guint32 supported, const char *operation, GError **error)
{
    if ((flags & ~supported) == 0)
        return TRUE;
    g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_INVALID_ARGUMENT, "%s: unsupported flags 0x%x",
                operation ? operation : "operation", flags & ~supported);
    return FALSE;
}
