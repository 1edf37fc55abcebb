/*
 * vmshift Hyper-V plugin: Windows paths and WMI object paths as text
 * (pure functions, no host).
 * Facts and sources: docs/design/hyperv.md.
 */
#include "config.h"

#include <string.h>

#include <vmshift/vmshift.h>

#include "hyperv.h"

gboolean
hv_path_under(const char *path, const char *dir)
{
    gsize n = strlen(dir);

    while (n > 0 && (dir[n - 1] == '\\' || dir[n - 1] == '/'))
        n--;
    return g_ascii_strncasecmp(path, dir, n) == 0
           && (path[n] == '\0' || path[n] == '\\' || path[n] == '/');
}

/* A volume's Name ("C:\\", "C:\\ClusterStorage\\Volume1\\") as the
 * directory every path on it starts with: without the trailing backslash
 * ("C:", "C:\\ClusterStorage\\Volume1"), so that "C:\\VMs" is under it
 * by a plain "prefix, then a separator" test. */
char *
hv_volume_root(const char *name)
{
    gsize n;

    if (name == NULL)
        return NULL;
    n = strlen(name);
    while (n > 0 && (name[n - 1] == '\\' || name[n - 1] == '/'))
        n--;
    return g_strndup(name, n);
}

/* Name="…" value from a WMI object path (Parent, HostResource). */
char *
hv_path_key(const char *path, const char *key)
{
    g_autofree char *pat = g_strconcat(key, "=\"", NULL);
    const char *p = path;
    GString *s;

    /* the key must start the key list or follow a comma (CreationClassName
     * must not match Name) */
    while (p != NULL && (p = strstr(p, pat)) != NULL && p != path && p[-1] != '.' && p[-1] != ',')
        p++;
    if (p == NULL)
        return NULL;
    s = g_string_new(NULL);
    for (p += strlen(pat); *p && *p != '"'; p++) {
        if (*p == '\\' && p[1])
            p++;
        g_string_append_c(s, *p);
    }
    return g_string_free(s, FALSE);
}

const char *
hv_basename_win(const char *p)
{
    const char *s = strrchr(p, '\\');
    const char *t = strrchr(p, '/');

    if (t > s)
        s = t;
    return s != NULL ? s + 1 : p;
}

char *
hv_join_win(const char *dir, const char *file)
{
    gsize n = strlen(dir);

    while (n > 0 && (dir[n - 1] == '\\' || dir[n - 1] == '/'))
        n--;
    return g_strdup_printf("%.*s\\%s", (int)n, dir, file);
}

char *
hv_nic_mac(const char *raw)
{
    GString *s = g_string_new(NULL);

    for (guint i = 0; raw != NULL && raw[i] && raw[i + 1]; i += 2) {
        if (s->len)
            g_string_append_c(s, ':');
        g_string_append_c(s, raw[i]);
        g_string_append_c(s, raw[i + 1]);
    }
    return g_string_free(s, FALSE);
}

gboolean
hv_wql_safe(const char *s)
{
    return s != NULL && strpbrk(s, "'\"\\{}") == NULL;
}

char *
hv_strip_microsoft(const char *iid)
{
    if (iid == NULL)
        return NULL;
    return g_strdup(g_str_has_prefix(iid, "Microsoft:") ? iid + 10 : iid);
}
