/*
 * vmshift host: the plugin loader.
 *
 * plugin=NAME maps to exactly NAME.so in the search directories (each
 * --plugin-dir first, then the compiled-in plugindir). Every refusal is one
 * line naming the file and the reason; a refused plugin never stops the
 * other backends. Modules are opened with G_MODULE_BIND_LOCAL and made
 * resident: unloading code another thread may still run is not safe.
 */
#include "config.h"

#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "host/host.h"
#include "sdk/path-check.h"

static void
plugin_free(HostPlugin *p)
{
    g_free(p->name);
    g_free(p->path);
    g_clear_error(&p->error);
    /* p->module is resident and stays in GModule's list */
    g_free(p);
}

HostLoader *
host_loader_new(const char *const *extra_dirs, gboolean use_default_dir)
{
    HostLoader *l = g_new0(HostLoader, 1);

    l->dirs = g_ptr_array_new_with_free_func(g_free);
    for (guint i = 0; extra_dirs && extra_dirs[i]; i++) {
        struct stat st;
        /* "" would be the current directory; a symlink may be re-pointed */
        if (!*extra_dirs[i] && !l->dir_error)
            g_set_error(&l->dir_error, VMSHIFT_ERROR, VMSHIFT_ERROR_PERMISSION,
                        "--plugin-dir \"\": refusing an empty plugin directory name");
        else if (lstat(extra_dirs[i], &st) == 0 && S_ISLNK(st.st_mode) && !l->dir_error)
            g_set_error(&l->dir_error, VMSHIFT_ERROR, VMSHIFT_ERROR_PERMISSION,
                        "--plugin-dir %s: refusing a plugin directory that is a symbolic link",
                        extra_dirs[i]);
        g_ptr_array_add(l->dirs, g_canonicalize_filename(extra_dirs[i], NULL));
    }
    if (use_default_dir)
        g_ptr_array_add(l->dirs, g_strdup(host_default_plugin_dir()));
    l->plugins = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, (GDestroyNotify)plugin_free);
    return l;
}

void
host_loader_free(HostLoader *l)
{
    if (!l)
        return;
    g_ptr_array_unref(l->dirs);
    g_hash_table_unref(l->plugins);
    g_clear_error(&l->dir_error);
    g_free(l);
}

static char *
dirs_string(HostLoader *l)
{
    g_autoptr(GString) s = g_string_new(NULL);
    for (guint i = 0; i < l->dirs->len; i++) {
        if (i)
            g_string_append_c(s, ':');
        g_string_append(s, g_ptr_array_index(l->dirs, i));
    }
    return g_string_free(g_steal_pointer(&s), FALSE);
}

/* Owner must be root or whoever runs vmshift; group and others may not write. */
static gboolean
check_owner_mode(const char *what, const char *path, const struct stat *st, GError **error)
{
    if (st->st_mode & S_IWOTH) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_PERMISSION,
                    "%s: refusing plugin: %s is world-writable (mode %04o)", path, what,
                    (unsigned)(st->st_mode & 07777));
        return FALSE;
    }
    if (st->st_mode & S_IWGRP) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_PERMISSION,
                    "%s: refusing plugin: %s is group-writable (mode %04o)", path, what,
                    (unsigned)(st->st_mode & 07777));
        return FALSE;
    }
    if (st->st_uid != 0 && st->st_uid != getuid()) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_PERMISSION,
                    "%s: refusing plugin: %s is owned by uid %u, not root or uid %u", path, what,
                    (unsigned)st->st_uid, (unsigned)getuid());
        return FALSE;
    }
    return TRUE;
}

/* "version `VMSHIFT_SDK_1.3' not found" → the ABI the plugin needs. */
static gboolean
parse_sdk_version_error(const char *msg, guint *major, guint *minor)
{
    const char *p = strstr(msg, "VMSHIFT_SDK_");
    guint64 a, b;
    char *end;

    if (!p || !strstr(msg, "not found"))
        return FALSE;
    p += strlen("VMSHIFT_SDK_");
    a = g_ascii_strtoull(p, &end, 10);
    if (end == p || *end != '.')
        return FALSE;
    p = end + 1;
    b = g_ascii_strtoull(p, &end, 10);
    if (end == p)
        return FALSE;
    *major = (guint)a;
    *minor = (guint)b;
    return TRUE;
}

#define DESC_MIN_SIZE (G_STRUCT_OFFSET(VmshiftPluginDescriptor, ops) + sizeof(void *))
#define OPS_MIN_SIZE (G_STRUCT_OFFSET(VmshiftBackendOps, close) + sizeof(void *))

const char *const *
host_plugin_config_keys(const VmshiftPluginDescriptor *d)
{
    if (d->struct_size
        >= G_STRUCT_OFFSET(VmshiftPluginDescriptor, config_keys) + sizeof(d->config_keys))
        return d->config_keys;
    return NULL;
}

static gboolean
check_descriptor(const char *file, const char *name, const VmshiftPluginDescriptor *d,
                 GError **error)
{
    if (!d) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_ABI,
                    "%s: refusing plugin: vmshift_plugin_entry() returned no descriptor", file);
        return FALSE;
    }
    if (d->abi_major != VMSHIFT_ABI_MAJOR || d->abi_minor > VMSHIFT_ABI_MINOR) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_ABI,
                    "%s: built for vmshift plugin ABI %u.%u, this vmshift provides %u.%u", file,
                    d->abi_major, d->abi_minor, VMSHIFT_ABI_MAJOR, VMSHIFT_ABI_MINOR);
        return FALSE;
    }
    if (d->struct_size < DESC_MIN_SIZE) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_ABI,
                    "%s: refusing plugin: descriptor is too small (struct_size %u, "
                    "ABI %u.0 needs at least %u)",
                    file, d->struct_size, VMSHIFT_ABI_MAJOR, (unsigned)DESC_MIN_SIZE);
        return FALSE;
    }
#define REQUIRE_FIELD(f, what)                                                \
    if (!d->f || !*d->f) {                                                    \
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_ABI,                  \
                    "%s: refusing plugin: descriptor has no %s", file, what); \
        return FALSE;                                                         \
    }
    REQUIRE_FIELD(name, "name")
    REQUIRE_FIELD(version, "version")
    REQUIRE_FIELD(license, "license")
#undef REQUIRE_FIELD
    if (strcmp(d->name, name) != 0) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_ABI,
                    "%s: refusing plugin: it calls itself '%s', but the file name says '%s'", file,
                    d->name, name);
        return FALSE;
    }
    if (!d->ops) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_ABI,
                    "%s: refusing plugin: descriptor has no operations table", file);
        return FALSE;
    }
    if (d->ops->struct_size < OPS_MIN_SIZE) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_ABI,
                    "%s: refusing plugin: operations table is too small (struct_size %u, "
                    "ABI %u.0 needs at least %u)",
                    file, d->ops->struct_size, VMSHIFT_ABI_MAJOR, (unsigned)OPS_MIN_SIZE);
        return FALSE;
    }
    if (!d->ops->open || !d->ops->close) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_ABI,
                    "%s: refusing plugin: mandatory operation '%s' is missing", file,
                    d->ops->open ? "close" : "open");
        return FALSE;
    }
    return TRUE;
}

static void
load_one(HostLoader *l, HostPlugin *p)
{
    struct stat st, dst;
    g_autoptr(GError) err = NULL;
    g_autofree char *file = g_strdup_printf("%s.so", p->name);
    g_autofree char *dir = NULL;
    gpointer sym = NULL;
    GModule *mod;
    const VmshiftPluginDescriptor *d;

    if (l->dir_error) {
        p->status = HOST_LOAD_REFUSED;
        p->error = g_error_copy(l->dir_error);
        return;
    }
    for (guint i = 0; i < l->dirs->len; i++) {
        g_autofree char *cand = g_build_filename(g_ptr_array_index(l->dirs, i), file, NULL);
        if (lstat(cand, &st) == 0) {
            p->path = g_steal_pointer(&cand);
            dir = g_strdup(g_ptr_array_index(l->dirs, i));
            break;
        }
        if (errno != ENOENT && errno != ENOTDIR) {
            int e = errno;
            p->status = HOST_LOAD_REFUSED;
            g_set_error(&p->error, VMSHIFT_ERROR, VMSHIFT_ERROR_PERMISSION, "%s: %s", cand,
                        g_strerror(e));
            return;
        }
    }
    if (!p->path) {
        g_autofree char *dirs = dirs_string(l);
        p->status = HOST_LOAD_MISSING;
        g_set_error(&p->error, VMSHIFT_ERROR, VMSHIFT_ERROR_NOT_FOUND,
                    "plugin '%s' not found in %s (install vmshift-plugin-%s)", p->name, dirs,
                    p->name);
        return;
    }
    p->status = HOST_LOAD_REFUSED;
    if (stat(dir, &dst) != 0 || !check_owner_mode("its directory", p->path, &dst, &p->error)) {
        if (!p->error)
            g_set_error(&p->error, VMSHIFT_ERROR, VMSHIFT_ERROR_PERMISSION,
                        "%s: cannot inspect plugin directory %s", p->path, dir);
        return;
    }
    if (!vmshift_path_check_dirs(p->path, "plugin", dir, &p->error))
        return;
    if (S_ISLNK(st.st_mode)) {
        g_set_error(&p->error, VMSHIFT_ERROR, VMSHIFT_ERROR_PERMISSION,
                    "%s: refusing plugin: it is a symbolic link", p->path);
        return;
    }
    if (!S_ISREG(st.st_mode)) {
        g_set_error(&p->error, VMSHIFT_ERROR, VMSHIFT_ERROR_PERMISSION,
                    "%s: refusing plugin: not a regular file", p->path);
        return;
    }
    if (!check_owner_mode("the file", p->path, &st, &p->error))
        return;

    mod = g_module_open_full(p->path, G_MODULE_BIND_LOCAL, &err);
    if (!mod) {
        guint maj, min;
        const char *msg = err ? err->message : "unknown error";
        if (parse_sdk_version_error(msg, &maj, &min))
            g_set_error(&p->error, VMSHIFT_ERROR, VMSHIFT_ERROR_ABI,
                        "%s: built for vmshift plugin ABI %u.%u, this vmshift provides "
                        "%u.%u",
                        p->path, maj, min, VMSHIFT_ABI_MAJOR, VMSHIFT_ABI_MINOR);
        else
            g_set_error(&p->error, VMSHIFT_ERROR, VMSHIFT_ERROR_FAILED,
                        "%s: cannot load plugin: %s (check its dependencies with ldd)", p->path,
                        msg);
        return;
    }
    /* Never unloaded, refused or not: a constructor may have started
     * something, and GModule keeps resident modules reachable. */
    g_module_make_resident(mod);
    p->module = mod;
    if (!g_module_symbol(mod, VMSHIFT_PLUGIN_ENTRY_SYMBOL, &sym) || !sym) {
        g_set_error(&p->error, VMSHIFT_ERROR, VMSHIFT_ERROR_ABI,
                    "%s: refusing plugin: no symbol %s (not a vmshift plugin)", p->path,
                    VMSHIFT_PLUGIN_ENTRY_SYMBOL);
        return;
    }
    d = ((VmshiftPluginEntryFunc)sym)();
    if (!check_descriptor(p->path, p->name, d, &p->error))
        return;
    p->desc = d;
    p->status = HOST_LOAD_OK;
}

HostPlugin *
host_loader_load(HostLoader *l, const char *name)
{
    HostPlugin *p = g_hash_table_lookup(l->plugins, name);

    if (p)
        return p;
    p = g_new0(HostPlugin, 1);
    p->name = g_strdup(name);
    g_hash_table_insert(l->plugins, p->name, p);
    load_one(l, p);
    return p;
}

static gint
compare_strings(gconstpointer a, gconstpointer b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

GPtrArray *
host_loader_scan(HostLoader *l)
{
    GPtrArray *out = g_ptr_array_new_with_free_func(g_free);
    g_autoptr(GHashTable) seen = g_hash_table_new(g_str_hash, g_str_equal);

    for (guint i = 0; i < l->dirs->len; i++) {
        GDir *d = g_dir_open(g_ptr_array_index(l->dirs, i), 0, NULL);
        const char *n;
        if (!d)
            continue;
        while ((n = g_dir_read_name(d))) {
            if (g_str_has_suffix(n, ".so") && strlen(n) > 3) {
                char *name = g_strndup(n, strlen(n) - 3);
                if (g_hash_table_contains(seen, name)) {
                    g_free(name);
                    continue;
                }
                g_ptr_array_add(out, name);
                g_hash_table_add(seen, name);
            }
        }
        g_dir_close(d);
    }
    g_ptr_array_sort(out, compare_strings);
    return out;
}
