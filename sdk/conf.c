/* vmshift SDK: a backend's configuration view and credentials files. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <vmshift/vmshift.h>

#include "sdk-private.h"

struct _VmshiftConfig {
    char *backend;
    GKeyFile *keyfile;
    char *group;
    char *source;
    char *state_dir;
};

VMSHIFT_API VmshiftConfig *
vmshift_config_new(const char *backend, GKeyFile *keyfile, const char *group, const char *source,
                   const char *state_dir)
{
    VmshiftConfig *c = g_new0(VmshiftConfig, 1);

    c->backend = g_strdup(backend);
    c->keyfile = g_key_file_ref(keyfile);
    c->group = g_strdup(group);
    c->source = g_strdup(source ? source : "(config)");
    c->state_dir = g_strdup(state_dir);
    return c;
}

VMSHIFT_API void
vmshift_config_free(VmshiftConfig *c)
{
    if (!c)
        return;
    g_free(c->backend);
    g_key_file_unref(c->keyfile);
    g_free(c->group);
    g_free(c->source);
    g_free(c->state_dir);
    g_free(c);
}

VMSHIFT_API const char *
vmshift_config_get_backend(const VmshiftConfig *c)
{
    return c->backend;
}

VMSHIFT_API const char *
vmshift_config_get_source(const VmshiftConfig *c)
{
    return c->source;
}

VMSHIFT_API const char *
vmshift_config_get_state_dir(const VmshiftConfig *c)
{
    return c->state_dir;
}

VMSHIFT_API gboolean
vmshift_config_has_key(const VmshiftConfig *c, const char *key)
{
    return g_key_file_has_key(c->keyfile, c->group, key, NULL);
}

static char *
raw_value(const VmshiftConfig *c, const char *key)
{
    char *v = g_key_file_get_string(c->keyfile, c->group, key, NULL);
    if (v)
        g_strstrip(v);
    return v;
}

VMSHIFT_API char *
vmshift_config_get_string(const VmshiftConfig *c, const char *key, const char *def)
{
    char *v = raw_value(c, key);
    return v ? v : g_strdup(def);
}

VMSHIFT_API char *
vmshift_config_require_string(const VmshiftConfig *c, const char *key, GError **error)
{
    char *v = raw_value(c, key);

    if (!v || !*v) {
        g_free(v);
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_CONFIG,
                    "%s: backend '%s': missing key '%s'", c->source, c->backend, key);
        return NULL;
    }
    return v;
}

VMSHIFT_API gboolean
vmshift_config_get_boolean(const VmshiftConfig *c, const char *key, gboolean def, gboolean *out,
                           GError **error)
{
    g_autofree char *v = raw_value(c, key);

    if (!v) {
        *out = def;
        return TRUE;
    }
    if (!g_ascii_strcasecmp(v, "true") || !g_ascii_strcasecmp(v, "yes")
        || !g_ascii_strcasecmp(v, "on") || !strcmp(v, "1")) {
        *out = TRUE;
        return TRUE;
    }
    if (!g_ascii_strcasecmp(v, "false") || !g_ascii_strcasecmp(v, "no")
        || !g_ascii_strcasecmp(v, "off") || !strcmp(v, "0")) {
        *out = FALSE;
        return TRUE;
    }
    g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_CONFIG,
                "%s: backend '%s': key '%s' must be true or false, not '%s'", c->source, c->backend,
                key, v);
    return FALSE;
}

VMSHIFT_API gboolean
vmshift_config_get_int(const VmshiftConfig *c, const char *key, gint64 def, gint64 min, gint64 max,
                       gint64 *out, GError **error)
{
    g_autofree char *v = raw_value(c, key);
    gint64 n;

    if (!v) {
        *out = def;
        return TRUE;
    }
    if (!g_ascii_string_to_signed(v, 10, min, max, &n, NULL)) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_CONFIG,
                    "%s: backend '%s': key '%s' must be an integer from %" G_GINT64_FORMAT
                    " to %" G_GINT64_FORMAT ", not '%s'",
                    c->source, c->backend, key, min, max, v);
        return FALSE;
    }
    *out = n;
    return TRUE;
}

VMSHIFT_API char **
vmshift_config_get_string_list(const VmshiftConfig *c, const char *key)
{
    g_autofree char *v = raw_value(c, key);
    g_auto(GStrv) parts = NULL;
    GPtrArray *out;

    if (!v)
        return NULL;
    parts = g_strsplit_set(v, ";,", -1);
    out = g_ptr_array_new();
    for (guint i = 0; parts[i]; i++) {
        g_strstrip(parts[i]);
        if (*parts[i])
            g_ptr_array_add(out, g_strdup(parts[i]));
    }
    g_ptr_array_add(out, NULL);
    return (char **)g_ptr_array_free(out, FALSE);
}

VMSHIFT_API char **
vmshift_config_get_keys(const VmshiftConfig *c)
{
    char **keys = g_key_file_get_keys(c->keyfile, c->group, NULL, NULL);
    return keys ? keys : g_new0(char *, 1);
}

/* ---- credentials ---- */

static gboolean
check_stat(const char *path, const struct stat *st, GError **error)
{
    if (!S_ISREG(st->st_mode)) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_CONFIG,
                    "credentials file %s is not a regular file", path);
        return FALSE;
    }
    if (st->st_mode & (S_IRWXG | S_IRWXO)) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_PERMISSION,
                    "credentials file %s is accessible by group/others (mode %04o); "
                    "run: chmod 600 %s",
                    path, (unsigned)(st->st_mode & 07777), path);
        return FALSE;
    }
    return TRUE;
}

VMSHIFT_API gboolean
vmshift_credentials_check_file(const char *path, GError **error)
{
    struct stat st;

    if (stat(path, &st) != 0) {
        int e = errno;
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_CONFIG, "credentials file %s: %s", path,
                    g_strerror(e));
        return FALSE;
    }
    return check_stat(path, &st, error);
}

VMSHIFT_API void
vmshift_credentials_free(VmshiftCredentials *cr)
{
    if (!cr)
        return;
    if (cr->password) {
        /* volatile so the wipe is not optimised away */
        volatile char *p = cr->password;
        while (*p)
            *p++ = 0;
    }
    g_free(cr->user);
    g_free(cr->password);
    g_free(cr->domain);
    g_free(cr);
}

VMSHIFT_API VmshiftCredentials *
vmshift_credentials_read_file(const char *path, GError **error)
{
    struct stat st;
    g_autoptr(VmshiftCredentials) cr = NULL;
    g_autofree char *data = NULL;
    g_auto(GStrv) lines = NULL;
    gsize len = 0;
    int fd;
    GIOChannel *ch;
    GError *local = NULL;

    /* Check the file we actually read (fstat on the open descriptor). */
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
        int e = errno;
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_CONFIG, "credentials file %s: %s", path,
                    g_strerror(e));
        return NULL;
    }
    if (fstat(fd, &st) != 0 || !check_stat(path, &st, error)) {
        if (error && !*error)
            g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_CONFIG,
                        "credentials file %s: cannot stat", path);
        close(fd);
        return NULL;
    }
    ch = g_io_channel_unix_new(fd);
    g_io_channel_set_close_on_unref(ch, TRUE);
    g_io_channel_set_encoding(ch, NULL, NULL);
    if (g_io_channel_read_to_end(ch, &data, &len, &local) != G_IO_STATUS_NORMAL) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_CONFIG, "credentials file %s: %s", path,
                    local ? local->message : "read failed");
        g_clear_error(&local);
        g_io_channel_unref(ch);
        return NULL;
    }
    g_io_channel_unref(ch);

    cr = g_new0(VmshiftCredentials, 1);
    lines = g_strsplit(data, "\n", -1);
    for (guint i = 0; lines[i]; i++) {
        char *line = g_strstrip(lines[i]);
        char *eq;

        if (!*line || *line == '#' || *line == ';')
            continue;
        eq = strchr(line, '=');
        if (!eq) {
            g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_CONFIG,
                        "credentials file %s: line %u is not KEY=VALUE", path, i + 1);
            return NULL;
        }
        *eq = '\0';
        g_strstrip(line);
        if (!strcmp(line, "user") || !strcmp(line, "username")) {
            g_free(cr->user);
            cr->user = g_strdup(g_strstrip(eq + 1));
        } else if (!strcmp(line, "password")) {
            g_free(cr->password);
            /* passwords keep their inner spaces; only the line end is trimmed */
            cr->password = g_strdup(eq + 1);
        } else if (!strcmp(line, "domain")) {
            g_free(cr->domain);
            cr->domain = g_strdup(g_strstrip(eq + 1));
        } else {
            g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_CONFIG,
                        "credentials file %s: line %u: unknown key '%s'", path, i + 1, line);
            return NULL;
        }
    }
    /* wipe the raw copy of the secret */
    memset(data, 0, len);
    if (!cr->user || !*cr->user || !cr->password) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_CONFIG,
                    "credentials file %s: needs user= and password= lines", path);
        return NULL;
    }
    return g_steal_pointer(&cr);
}

VMSHIFT_API VmshiftCredentials *
vmshift_config_read_credentials(const VmshiftConfig *c, const char *key, GError **error)
{
    g_autofree char *path = vmshift_config_require_string(c, key, error);
    g_autofree char *full = NULL;

    if (!path)
        return NULL;
    if (!g_path_is_absolute(path)) {
        g_autofree char *dir = g_path_get_dirname(c->source);
        full = g_build_filename(dir, path, NULL);
    } else {
        full = g_steal_pointer(&path);
    }
    return vmshift_credentials_read_file(full, error);
}
