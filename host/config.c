/*
 * vmshift host: configuration.
 *
 * vmshift.conf, then the backends.d drop-ins (NAME.conf) in sorted order. Every
 * problem is one line naming the file (and the line when GKeyFile gives it);
 * a bad group only makes its backend unusable, the rest keeps working.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "host/host.h"

const char *
host_default_config_path(void)
{
    return HOST_SYSCONFDIR "/vmshift.conf";
}

const char *
host_default_state_dir(void)
{
    return HOST_STATEDIR;
}

const char *
host_default_plugin_dir(void)
{
    return HOST_PLUGINDIR;
}

static void
backend_conf_free(HostBackendConf *b)
{
    if (!b)
        return;
    g_free(b->name);
    g_free(b->plugin);
    g_free(b->source);
    g_free(b->group);
    if (b->keyfile)
        g_key_file_unref(b->keyfile);
    g_free(b->error);
    g_free(b);
}

void
host_config_free(HostConfig *c)
{
    if (!c)
        return;
    g_free(c->path);
    g_free(c->dir);
    g_free(c->state_dir);
    g_free(c->daemon);
    g_ptr_array_unref(c->backends);
    g_hash_table_unref(c->groups);
    g_hash_table_unref(c->group_sources);
    g_ptr_array_unref(c->warnings);
    g_free(c);
}

HostBackendConf *
host_config_find_backend(HostConfig *c, const char *name)
{
    for (guint i = 0; i < c->backends->len; i++) {
        HostBackendConf *b = g_ptr_array_index(c->backends, i);
        if (g_strcmp0(b->name, name) == 0)
            return b;
    }
    return NULL;
}

static void warn(HostConfig *c, const char *format, ...) G_GNUC_PRINTF(2, 3);

static void
warn(HostConfig *c, const char *format, ...)
{
    va_list ap;
    va_start(ap, format);
    g_ptr_array_add(c->warnings, g_strdup_vprintf(format, ap));
    va_end(ap);
}

/* A backend or group name: letters, digits, '-', '_', '.'; no ':' since
 * "backend:name" uses it. */
static gboolean
valid_name(const char *s)
{
    if (!s || !*s)
        return FALSE;
    for (const char *p = s; *p; p++)
        if (!g_ascii_isalnum(*p) && *p != '-' && *p != '_' && *p != '.')
            return FALSE;
    return TRUE;
}

static char *
strip_value(GKeyFile *kf, const char *group, const char *key)
{
    char *v = g_key_file_get_value(kf, group, key, NULL);
    if (v)
        g_strstrip(v);
    return v;
}

static void
add_backend(HostConfig *c, GKeyFile *kf, const char *source, const char *group, const char *name)
{
    HostBackendConf *b;
    HostBackendConf *prev = host_config_find_backend(c, name);
    g_autofree char *enabled = NULL;
    g_autofree char *creds = NULL;

    if (prev) {
        warn(c, "%s: backend '%s' is already defined in %s; ignoring this one", source, name,
             prev->source);
        return;
    }
    b = g_new0(HostBackendConf, 1);
    b->name = g_strdup(name);
    b->source = g_strdup(source);
    b->group = g_strdup(group);
    b->keyfile = g_key_file_ref(kf);
    b->enabled = TRUE;
    g_ptr_array_add(c->backends, b);

    if (!valid_name(name)) {
        b->error = g_strdup_printf("%s: [%s]: a backend name may hold only letters, "
                                   "digits, '-', '_' and '.'",
                                   source, group);
        return;
    }
    b->plugin = strip_value(kf, group, "plugin");
    if (!b->plugin || !*b->plugin) {
        g_clear_pointer(&b->plugin, g_free);
        b->error = g_strdup_printf("%s: backend '%s': missing key 'plugin'", source, name);
        return;
    }
    if (!valid_name(b->plugin)) {
        b->error = g_strdup_printf("%s: backend '%s': plugin name '%s' is not valid "
                                   "(letters, digits, '-', '_' only)",
                                   source, name, b->plugin);
        return;
    }
    enabled = strip_value(kf, group, "enabled");
    if (enabled) {
        if (!g_ascii_strcasecmp(enabled, "true") || !g_ascii_strcasecmp(enabled, "yes")
            || !g_ascii_strcasecmp(enabled, "on") || !strcmp(enabled, "1")) {
            b->enabled = TRUE;
        } else if (!g_ascii_strcasecmp(enabled, "false") || !g_ascii_strcasecmp(enabled, "no")
                   || !g_ascii_strcasecmp(enabled, "off") || !strcmp(enabled, "0")) {
            b->enabled = FALSE;
        } else {
            b->error = g_strdup_printf("%s: backend '%s': key 'enabled' must be true or "
                                       "false, not '%s'",
                                       source, name, enabled);
            return;
        }
    }
    creds = strip_value(kf, group, "credentials");
    if (creds && b->enabled) {
        g_autofree char *dir = g_path_get_dirname(source);
        g_autofree char *path = g_path_is_absolute(creds) ? g_strdup(creds)
                                                          : g_build_filename(dir, creds, NULL);
        g_autoptr(GError) err = NULL;
        if (!vmshift_credentials_check_file(path, &err))
            b->error = g_strdup_printf("%s: backend '%s': %s", source, name, err->message);
    }
}

static void
add_group(HostConfig *c, GKeyFile *kf, const char *source, const char *group, const char *name)
{
    g_autofree char *hosts = NULL;
    g_auto(GStrv) parts = NULL;
    GPtrArray *list;
    g_auto(GStrv) keys = NULL;

    if (!valid_name(name)) {
        warn(c, "%s: [%s]: a group name may hold only letters, digits, '-', '_' and '.'", source,
             group);
        return;
    }
    if (g_hash_table_contains(c->groups, name)) {
        warn(c, "%s: group '%s' is already defined in %s; ignoring this one", source, name,
             (const char *)g_hash_table_lookup(c->group_sources, name));
        return;
    }
    keys = g_key_file_get_keys(kf, group, NULL, NULL);
    for (guint i = 0; keys && keys[i]; i++)
        if (strcmp(keys[i], "hosts") != 0)
            warn(c, "%s: [%s]: unknown key '%s'", source, group, keys[i]);
    hosts = strip_value(kf, group, "hosts");
    if (!hosts || !*hosts) {
        warn(c, "%s: [%s]: missing key 'hosts'", source, group);
        return;
    }
    parts = g_strsplit_set(hosts, ";,", -1);
    list = g_ptr_array_new();
    for (guint i = 0; parts[i]; i++) {
        g_strstrip(parts[i]);
        if (*parts[i])
            g_ptr_array_add(list, g_strdup(parts[i]));
    }
    g_ptr_array_add(list, NULL);
    g_hash_table_insert(c->groups, g_strdup(name), g_ptr_array_free(list, FALSE));
    g_hash_table_insert(c->group_sources, g_strdup(name), g_strdup(source));
}

static gboolean
read_vmshift_group(HostConfig *c, GKeyFile *kf, const char *source, gboolean state_dir_overridden,
                   GError **error)
{
    g_auto(GStrv) keys = g_key_file_get_keys(kf, "vmshift", NULL, NULL);

    for (guint i = 0; keys && keys[i]; i++) {
        if (strcmp(keys[i], "state-dir") == 0) {
            g_autofree char *v = strip_value(kf, "vmshift", "state-dir");
            if (!v || !g_path_is_absolute(v)) {
                /* an error, never a silent switch to the default state dir (#13),
                 * naming the line */
                g_autofree char *data = NULL;
                g_autoptr(GHashTable) lines = NULL;
                gpointer at = NULL;
                if (host_read_file(source, "configuration file", HOST_CONFIG_MAX, &data, NULL)
                    && host_keyfile_prescan(source, data, &lines, NULL) && lines)
                    at = g_hash_table_lookup(lines, "[vmshift]state-dir");
                g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_CONFIG,
                            "%s:%u: [vmshift]: state-dir must be an absolute path, not '%s'",
                            source, GPOINTER_TO_UINT(at), v ? v : "");
                return FALSE;
            } else if (!state_dir_overridden) {
                g_free(c->state_dir);
                c->state_dir = g_steal_pointer(&v);
            }
        } else if (strcmp(keys[i], "daemon") == 0) {
            g_free(c->daemon); /* vmshiftd's socket, auto or no (client.c) */
            c->daemon = strip_value(kf, "vmshift", "daemon");
        } else {
            warn(c, "%s: [vmshift]: unknown key '%s'", source, keys[i]);
        }
    }
    return TRUE;
}

/* Turns a GKeyFile parse error into one line with the file; GLib's messages
 * already carry "line N" when they know it. */
static char *
parse_error_line(const char *file, const char *data, const GError *e)
{
    const char *open = strstr(e->message, "\u201c");
    const char *close = open ? strstr(open, "\u201d") : NULL;
    g_autofree char *text = NULL;
    g_auto(GStrv) lines = NULL;

    /* GKeyFile quotes the offending line but does not number it */
    if (open && close) {
        text = g_strndup(open + strlen("\u201c"), close - open - strlen("\u201c"));
        lines = g_strsplit(data, "\n", -1);
        for (guint i = 0; lines[i]; i++)
            if (!strcmp(g_strstrip(lines[i]), g_strstrip(text)))
                return g_strdup_printf("%s: line %u: %s", file, i + 1, e->message);
    }
    return g_strdup_printf("%s: %s", file, e->message);
}

gboolean
host_read_file(const char *path, const char *what, gsize limit, char **contents, GError **error)
{
    struct stat st;
    g_autofree char *buf = NULL;
    gsize len = 0, cap;
    ssize_t n;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);

    if (fd < 0) {
        int e = errno;
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_CONFIG, "%s: %s", path, g_strerror(e));
        return FALSE;
    }
    if (fstat(fd, &st) != 0)
        st.st_mode = 0;
    if (!S_ISREG(st.st_mode)) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_CONFIG,
                    "%s: refusing %s: not a regular file (%s)", path, what,
                    S_ISDIR(st.st_mode)    ? "a directory"
                    : S_ISFIFO(st.st_mode) ? "a FIFO"
                                           : "a device or socket");
        close(fd);
        return FALSE;
    }
    /* one byte past the limit tells a file that grew after fstat */
    cap = MIN((gsize)st.st_size, limit) + 1;
    buf = g_malloc(cap + 1);
    while (st.st_size <= (off_t)limit && len < cap && (n = read(fd, buf + len, cap - len)) != 0) {
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            int e = errno;
            g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_CONFIG, "%s: %s", path, g_strerror(e));
            close(fd);
            return FALSE;
        }
        len += (gsize)n;
    }
    close(fd);
    if ((gsize)st.st_size > limit || len > limit) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_CONFIG,
                    "%s: refusing %s: larger than %" G_GSIZE_FORMAT " KiB", path, what,
                    limit / 1024);
        return FALSE;
    }
    if (memchr(buf, '\0', len)) {
        /* GKeyFile would silently drop everything after it */
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_CONFIG,
                    "%s: refusing %s: not a text file (a NUL byte at offset %td)", path, what,
                    (const char *)memchr(buf, '\0', len) - buf);
        return FALSE;
    }
    buf[len] = '\0';
    *contents = g_steal_pointer(&buf);
    return TRUE;
}

gboolean
host_keyfile_prescan(const char *file, const char *data, GHashTable **lines, GError **error)
{
    g_autoptr(GHashTable) seen = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    g_auto(GStrv) text = g_strsplit(data, "\n", -1);
    g_autofree char *group = g_strdup("");

    for (guint i = 0; text[i]; i++) {
        char *l = g_strstrip(text[i]);
        g_autofree char *key = NULL;
        char *eq;
        guint first;

        if (!g_utf8_validate(l, -1, NULL)) {
            g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_CONFIG, "%s:%u: not UTF-8", file,
                        i + 1);
            return FALSE;
        }
        if (!*l || *l == '#')
            continue;
        if (*l == '[' && l[strlen(l) - 1] == ']') {
            g_free(group);
            group = g_strndup(l + 1, strlen(l) - 2);
            key = g_strdup_printf("[%s]", group);
        } else if ((eq = strchr(l, '='))) {
            *eq = '\0';
            key = g_strdup_printf("[%s]%s", group, g_strchomp(l));
        } else {
            continue; /* GKeyFile reports it */
        }
        first = GPOINTER_TO_UINT(g_hash_table_lookup(seen, key));
        if (first) {
            if (*l == '[')
                g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_CONFIG,
                            "%s:%u: [%s] appears twice (first at line %u)", file, i + 1, group,
                            first);
            else
                g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_CONFIG,
                            "%s:%u: [%s]: key '%s' given twice (first at line %u)", file, i + 1,
                            group, l, first);
            return FALSE;
        }
        g_hash_table_insert(seen, g_steal_pointer(&key), GUINT_TO_POINTER(i + 1));
    }
    if (lines)
        *lines = g_steal_pointer(&seen);
    return TRUE;
}

/* A file of the configuration into @kf: refused unless a regular file under
 * the size limit; GKeyFile's parse errors get their line number. */
static gboolean
load_keyfile(GKeyFile *kf, const char *file, char **line)
{
    g_autoptr(GError) err = NULL;
    g_autofree char *data = NULL;

    if (!host_read_file(file, "configuration file", HOST_CONFIG_MAX, &data, &err)) {
        *line = g_strdup(err->message);
        return FALSE;
    }
    if (!host_keyfile_prescan(file, data, NULL, &err)) {
        *line = g_strdup(err->message);
        return FALSE;
    }
    if (!g_key_file_load_from_data(kf, data, -1, G_KEY_FILE_NONE, &err)) {
        *line = parse_error_line(file, data, err);
        return FALSE;
    }
    return TRUE;
}

static gboolean
read_file(HostConfig *c, const char *file, gboolean main_file, gboolean state_dir_overridden,
          GError **error)
{
    g_autoptr(GKeyFile) kf = g_key_file_new();
    g_auto(GStrv) groups = NULL;
    char *line = NULL;

    if (!load_keyfile(kf, file, &line)) {
        if (!main_file) {
            /* A placeholder so that `backends` shows the broken drop-in and
             * commands naming its backend fail with the parse error. */
            g_autofree char *base = g_path_get_basename(file);
            HostBackendConf *b = g_new0(HostBackendConf, 1);
            char *dot = strrchr(base, '.');
            if (dot)
                *dot = 0;
            if (!host_config_find_backend(c, base)) {
                b->name = g_strdup(base);
                b->source = g_strdup(file);
                b->group = g_strdup_printf("backend %s", base);
                b->enabled = TRUE;
                b->parse_failed = TRUE;
                b->error = g_strdup(line);
                g_ptr_array_add(c->backends, b);
                g_free(line);
                return TRUE;
            }
            backend_conf_free(b);
        }
        if (main_file) {
            /* never a silent switch to defaults (another state dir): #13 */
            g_set_error_literal(error, VMSHIFT_ERROR, VMSHIFT_ERROR_CONFIG, line);
            g_free(line);
            return FALSE;
        }
        warn(c, "%s", line);
        g_free(line);
        return TRUE;
    }
    groups = g_key_file_get_groups(kf, NULL);
    for (guint i = 0; groups[i]; i++) {
        const char *g = groups[i];
        if (strcmp(g, "vmshift") == 0) {
            if (main_file && !read_vmshift_group(c, kf, file, state_dir_overridden, error))
                return FALSE;
            else if (!main_file)
                warn(c, "%s: [vmshift] belongs in %s, not in a drop-in; ignored", file, c->path);
        } else if (strcmp(g, "vmshiftd") == 0 && main_file) {
            /* the daemon's own settings: read by vmshiftd */
        } else if (g_str_has_prefix(g, "backend ")) {
            const char *name = g + strlen("backend ");
            add_backend(c, kf, file, g, name);
        } else if (g_str_has_prefix(g, "group ")) {
            add_group(c, kf, file, g, g + strlen("group "));
        } else {
            warn(c,
                 "%s: unknown group [%s] (expected [vmshift], [backend NAME] or "
                 "[group NAME])",
                 file, g);
        }
    }
    return TRUE;
}

static gint
compare_strings(gconstpointer a, gconstpointer b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

HostConfig *
host_config_load(const char *path, gboolean explicit_path, const char *state_dir_override,
                 GError **error)
{
    g_autoptr(HostConfig) c = g_new0(HostConfig, 1);
    g_autofree char *dropin = NULL;
    GDir *dir;
    struct stat st;

    c->path = g_strdup(path ? path : host_default_config_path());
    c->dir = g_path_get_dirname(c->path);
    c->state_dir = g_strdup(state_dir_override ? state_dir_override : host_default_state_dir());
    c->backends = g_ptr_array_new_with_free_func((GDestroyNotify)backend_conf_free);
    c->groups = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, (GDestroyNotify)g_strfreev);
    c->group_sources = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    c->warnings = g_ptr_array_new_with_free_func(g_free);

    if (stat(c->path, &st) == 0) {
        if (S_ISDIR(st.st_mode)) {
            g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_CONFIG,
                        "%s: is a directory, not a configuration file", c->path);
            return NULL;
        }
        if (!read_file(c, c->path, TRUE, state_dir_override != NULL, error))
            return NULL;
    } else if (explicit_path || errno != ENOENT) {
        int e = errno;
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_CONFIG, "%s: %s", c->path, g_strerror(e));
        return NULL;
    }

    dropin = g_build_filename(c->dir, "backends.d", NULL);
    dir = g_dir_open(dropin, 0, NULL);
    if (dir) {
        g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func(g_free);
        const char *n;
        while ((n = g_dir_read_name(dir)))
            if (g_str_has_suffix(n, ".conf") && n[0] != '.')
                g_ptr_array_add(names, g_strdup(n));
        g_dir_close(dir);
        g_ptr_array_sort(names, compare_strings);
        for (guint i = 0; i < names->len; i++) {
            g_autofree char *f = g_build_filename(dropin, g_ptr_array_index(names, i), NULL);
            read_file(c, f, FALSE, state_dir_override != NULL, NULL);
        }
    }
    return g_steal_pointer(&c);
}
