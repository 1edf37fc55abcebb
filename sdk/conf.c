/* vmshift SDK: a backend's configuration view and credentials files. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <vmshift/vmshift.h>

#include "path-check.h"
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

/* A credentials file is a few lines; anything larger is refused unread. */
#define CREDENTIALS_MAX (64 * 1024)

/* What is refused before reading: a symlink, not a regular root-only file,
 * too large, a directory above that someone else may change. */
static gboolean
check_file(const char *path, const struct stat *st, GError **error)
{
    g_autofree char *dir = g_path_get_dirname(path);

    if (S_ISLNK(st->st_mode)) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_PERMISSION,
                    "credentials file %s is a symbolic link; refused (name the file itself)", path);
        return FALSE;
    }
    if (!check_stat(path, st, error))
        return FALSE;
    if (st->st_size > CREDENTIALS_MAX) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_CONFIG,
                    "credentials file %s is too large (%lld bytes, at most %d)", path,
                    (long long)st->st_size, CREDENTIALS_MAX);
        return FALSE;
    }
    return vmshift_path_check_dirs(path, "credentials file", dir, error);
}

VMSHIFT_API gboolean
vmshift_credentials_check_file(const char *path, GError **error)
{
    struct stat st;

    if (lstat(path, &st) != 0) {
        int e = errno;
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_CONFIG, "credentials file %s: %s", path,
                    g_strerror(e));
        return FALSE;
    }
    return check_file(path, &st, error);
}

VMSHIFT_API void
vmshift_credentials_free(VmshiftCredentials *cr)
{
    if (!cr)
        return;
    if (cr->password)
        explicit_bzero(cr->password, strlen(cr->password));
    g_free(cr->user);
    g_free(cr->password);
    g_free(cr->domain);
    g_free(cr);
}

/* The raw file, in memory kept out of core dumps and wiped when freed. */
typedef struct {
    char *data;
    gsize size; /* of the mapping */
    gsize len;  /* bytes read */
} SecretBuf;

static void
secret_buf_clear(SecretBuf *b)
{
    if (b->data) {
        explicit_bzero(b->data, b->size);
        munmap(b->data, b->size);
        b->data = NULL;
    }
}
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(SecretBuf, secret_buf_clear)

/* Opens @path without following a symbolic link or blocking (a FIFO),
 * checks it is a regular root-only file under the size limit in a
 * directory chain nobody else can change, and reads it into @b. */
static gboolean
read_secret_file(const char *path, SecretBuf *b, GError **error)
{
    struct stat st;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY);
    ssize_t n;

    if (fd < 0) {
        int e = errno;
        if (e == ELOOP)
            g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_PERMISSION,
                        "credentials file %s is a symbolic link; refused (name the file itself)",
                        path);
        else
            g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_CONFIG, "credentials file %s: %s", path,
                        g_strerror(e));
        return FALSE;
    }
    if (fstat(fd, &st) != 0 || !check_file(path, &st, error)) {
        if (error && !*error)
            g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_CONFIG,
                        "credentials file %s: cannot stat", path);
        close(fd);
        return FALSE;
    }
    b->size = CREDENTIALS_MAX + 1;
    b->data = mmap(NULL, b->size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (b->data == MAP_FAILED) {
        b->data = NULL;
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_FAILED,
                    "credentials file %s: out of memory", path);
        close(fd);
        return FALSE;
    }
    (void)madvise(b->data, b->size, MADV_DONTDUMP);
    while (b->len < CREDENTIALS_MAX
           && (n = read(fd, b->data + b->len, CREDENTIALS_MAX - b->len)) != 0) {
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            int e = errno;
            g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_CONFIG, "credentials file %s: %s", path,
                        g_strerror(e));
            close(fd);
            return FALSE;
        }
        b->len += (gsize)n;
    }
    close(fd);
    if (b->len >= CREDENTIALS_MAX || memchr(b->data, 0, b->len)) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_CONFIG,
                    "credentials file %s: not a text file of at most %d bytes", path,
                    CREDENTIALS_MAX);
        return FALSE;
    }
    return TRUE;
}

/* Reads the KEY=VALUE lines of @b (in place) into @cr. */
static gboolean
parse_credentials(const char *path, SecretBuf *b, VmshiftCredentials *cr, GError **error)
{
    char *next = b->data;
    guint lineno = 0;

    b->data[b->len] = '\0';
    while (next) {
        char *line = next, *eq;
        next = strchr(line, '\n');
        if (next)
            *next++ = '\0';
        lineno++;
        line = g_strstrip(line);
        if (!*line || *line == '#' || *line == ';')
            continue;
        if (!g_utf8_validate(line, -1, NULL)) {
            g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_CONFIG,
                        "credentials file %s: line %u is not UTF-8", path, lineno);
            return FALSE;
        }
        eq = strchr(line, '=');
        if (!eq) {
            g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_CONFIG,
                        "credentials file %s: line %u is not KEY=VALUE", path, lineno);
            return FALSE;
        }
        *eq = '\0';
        g_strstrip(line);
        if (!strcmp(line, "user") || !strcmp(line, "username")) {
            g_free(cr->user);
            cr->user = g_strdup(g_strstrip(eq + 1));
        } else if (!strcmp(line, "password")) {
            if (cr->password)
                explicit_bzero(cr->password, strlen(cr->password));
            g_free(cr->password);
            /* passwords keep their inner spaces; only the line end is trimmed */
            cr->password = g_strdup(eq + 1);
        } else if (!strcmp(line, "domain")) {
            g_free(cr->domain);
            cr->domain = g_strdup(g_strstrip(eq + 1));
        } else {
            g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_CONFIG,
                        "credentials file %s: line %u: unknown key '%s'", path, lineno, line);
            return FALSE;
        }
    }
    return TRUE;
}

VMSHIFT_API VmshiftCredentials *
vmshift_credentials_read_file(const char *path, GError **error)
{
    g_auto(SecretBuf) buf = { 0 };
    g_autoptr(VmshiftCredentials) cr = g_new0(VmshiftCredentials, 1);

    if (!read_secret_file(path, &buf, error) || !parse_credentials(path, &buf, cr, error))
        return NULL;
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
