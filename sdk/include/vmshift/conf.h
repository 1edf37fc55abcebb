/*
 * vmshift SDK: a backend's configuration, as a plugin sees it.
 *
 * Include <vmshift/vmshift.h>, not this file.
 *
 * The host reads `[backend NAME]` groups from vmshift.conf and backends.d/
 * and hands each plugin's open() a VmshiftConfig for its group. A plugin
 * reads its own keys through these functions; it lists the keys it knows in
 * its descriptor so the host can warn about typos.
 */
#if !defined(VMSHIFT_INSIDE) && !defined(VMSHIFT_COMPILATION)
#error "Only <vmshift/vmshift.h> can be included directly."
#endif

#ifndef VMSHIFT_CONF_H
#define VMSHIFT_CONF_H

#include <glib.h>

G_BEGIN_DECLS

/**
 * VmshiftConfig:
 *
 * An opaque, read-only view of one backend's configuration group. It is
 * valid from open() until close(); a plugin that needs a value later copies
 * it.
 */
typedef struct _VmshiftConfig VmshiftConfig;

/**
 * vmshift_config_get_backend:
 *
 * Returns: (transfer none): the backend's name (the NAME of
 *   `[backend NAME]`), for log lines such as "esx[vc1]: …".
 */
const char *vmshift_config_get_backend(const VmshiftConfig *config);

/**
 * vmshift_config_get_source:
 *
 * Returns: (transfer none): the file the group was read from, for messages.
 */
const char *vmshift_config_get_source(const VmshiftConfig *config);

/**
 * vmshift_config_get_state_dir:
 *
 * Returns: (transfer none): a directory private to this backend where the
 *   plugin may keep persistent state (created by the host, mode 0700).
 */
const char *vmshift_config_get_state_dir(const VmshiftConfig *config);

/**
 * vmshift_config_has_key:
 *
 * Returns: TRUE when the group sets @key.
 */
gboolean vmshift_config_has_key(const VmshiftConfig *config, const char *key);

/**
 * vmshift_config_get_string:
 * @config: the configuration
 * @key: the key
 * @default_value: (nullable): returned (copied) when @key is not set
 *
 * Returns: (transfer full): the value, or a copy of @default_value. Free
 *   with g_free().
 */
char *vmshift_config_get_string(const VmshiftConfig *config, const char *key,
                                const char *default_value);

/**
 * vmshift_config_require_string:
 * @config: the configuration
 * @key: the key
 * @error: return location for an error
 *
 * Returns: (transfer full): the value of a mandatory key, or NULL with
 *   VMSHIFT_ERROR_CONFIG "FILE: backend 'B': missing key 'KEY'".
 */
char *vmshift_config_require_string(const VmshiftConfig *config, const char *key, GError **error);

/**
 * vmshift_config_get_boolean:
 * @config: the configuration
 * @key: the key
 * @default_value: the value when @key is not set
 * @out: the value
 * @error: return location for an error
 *
 * Accepts true/false, yes/no, on/off, 1/0.
 *
 * Returns: FALSE with VMSHIFT_ERROR_CONFIG naming file, backend and key when
 *   the value is not a boolean.
 */
gboolean vmshift_config_get_boolean(const VmshiftConfig *config, const char *key,
                                    gboolean default_value, gboolean *out, GError **error);

/**
 * vmshift_config_get_int:
 * @config: the configuration
 * @key: the key
 * @default_value: the value when @key is not set
 * @min: smallest accepted value
 * @max: largest accepted value
 * @out: the value
 * @error: return location for an error
 *
 * Returns: FALSE with VMSHIFT_ERROR_CONFIG naming file, backend and key when
 *   the value is not an integer in [@min, @max].
 */
gboolean vmshift_config_get_int(const VmshiftConfig *config, const char *key, gint64 default_value,
                                gint64 min, gint64 max, gint64 *out, GError **error);

/**
 * vmshift_config_get_string_list:
 * @config: the configuration
 * @key: the key; values are separated by ';' or ','
 *
 * Returns: (transfer full): a NULL-terminated vector of trimmed, non-empty
 *   values, or NULL when @key is not set. Free with g_strfreev().
 */
char **vmshift_config_get_string_list(const VmshiftConfig *config, const char *key);

/**
 * vmshift_config_get_keys:
 *
 * Returns: (transfer full): the keys the group sets. Free with g_strfreev().
 */
char **vmshift_config_get_keys(const VmshiftConfig *config);

/**
 * VmshiftCredentials:
 * @user: the user name
 * @password: the secret; wiped by vmshift_credentials_free()
 * @domain: (nullable): a domain / realm, when the file sets one
 *
 * Credentials read from a credentials file.
 */
typedef struct {
    char *user;
    char *password;
    char *domain;
} VmshiftCredentials;

/**
 * vmshift_config_read_credentials:
 * @config: the configuration
 * @key: the key naming the credentials file, usually "credentials"
 * @error: return location for an error
 *
 * Reads the credentials file named by @key (relative paths are relative to
 * the file the group came from). The file holds `user=`, `password=` and
 * optionally `domain=` lines (blank lines and `#` comments allowed). It must
 * be a regular file that neither group nor others can read or write;
 * otherwise it is refused with a message naming it and its mode. The
 * password never appears in any message.
 *
 * Returns: (transfer full): the credentials, or NULL with @error set.
 */
VmshiftCredentials *vmshift_config_read_credentials(const VmshiftConfig *config, const char *key,
                                                    GError **error);

/**
 * vmshift_credentials_read_file:
 * @path: a credentials file
 * @error: return location for an error
 *
 * As vmshift_config_read_credentials(), for an explicit path.
 */
VmshiftCredentials *vmshift_credentials_read_file(const char *path, GError **error);

/**
 * vmshift_credentials_check_file:
 * @path: a credentials file
 * @error: return location for an error
 *
 * Checks, without reading secrets, that @path is a regular file that group
 * and others can neither read nor write.
 *
 * Returns: TRUE when acceptable; FALSE with VMSHIFT_ERROR_PERMISSION
 *   ("credentials file F is readable by group/others (mode 0644); chmod 600 F")
 *   or VMSHIFT_ERROR_CONFIG.
 */
gboolean vmshift_credentials_check_file(const char *path, GError **error);

/** vmshift_credentials_free: wipes the password and frees @creds. */
void vmshift_credentials_free(VmshiftCredentials *creds);

/* ---- for hosts (and tests) ------------------------------------------- */

/**
 * vmshift_config_new:
 * @backend: the backend's name
 * @keyfile: the key file holding the group; referenced
 * @group: the group's name in @keyfile ("backend NAME")
 * @source: the file the group came from
 * @state_dir: (nullable): the backend's state directory
 *
 * Returns: a new configuration view; free with vmshift_config_free().
 */
VmshiftConfig *vmshift_config_new(const char *backend, GKeyFile *keyfile, const char *group,
                                  const char *source, const char *state_dir);

/** vmshift_config_free: frees a configuration view; NULL is ignored. */
void vmshift_config_free(VmshiftConfig *config);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(VmshiftConfig, vmshift_config_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(VmshiftCredentials, vmshift_credentials_free)

G_END_DECLS

#endif /* VMSHIFT_CONF_H */
