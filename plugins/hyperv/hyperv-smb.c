/*
 * vmshift Hyper-V plugin: a Hyper-V host's files through its SMB shares
 * (libsmbclient), for moves between backends.
 *
 * A host path "D:\VMs\vm1\vm1.vhdx" is reached as smb://SERVER/SHARE/VMs/
 * vm1/vm1.vhdx: the drive maps to a share by the backend's `smb-shares`
 * key (D:=//SERVER/SHARE[/DIR], %h = the host's name), or by default to
 * the drive's administrative share \\HOST\D$ that every Windows host
 * serves to administrators. The user, password and domain are those of the
 * backend's credentials file, given to libsmbclient through its
 * authentication callback, never in a URL, argv or a log line.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>
#include <glib/gstdio.h>

#include <vmshift/vmshift.h>
#include <vmshift/http.h>

#include "hyperv.h"

#ifdef HAVE_SMBCLIENT
#include <gmodule.h>
#include <libsmbclient.h>

/*
 * libsmbclient is loaded at the first SMB use, not linked: it brings some
 * 130 Samba libraries, whose loading (some 25 ms of CPU) every `vmshift`
 * command with a Hyper-V backend would pay, moves or not (issue 15:
 * `vmshift backends` at most twice `vmshift --help`). The functions used,
 * called through pointers of their own types; the names below stand for
 * them.
 */
#define HV_SMBCLIENT_SONAME "libsmbclient.so.0"
#define HV_SMB_FUNCS(X)                    \
    X(smbc_new_context)                    \
    X(smbc_free_context)                   \
    X(smbc_init_context)                   \
    X(smbc_setDebug)                       \
    X(smbc_setOptionUserData)              \
    X(smbc_getOptionUserData)              \
    X(smbc_setFunctionAuthDataWithContext) \
    X(smbc_setOptionNoAutoAnonymousLogin)  \
    X(smbc_setTimeout)                     \
    X(smbc_getFunctionStat)                \
    X(smbc_getFunctionOpen)                \
    X(smbc_getFunctionClose)               \
    X(smbc_getFunctionRead)                \
    X(smbc_getFunctionWrite)               \
    X(smbc_getFunctionUnlink)              \
    X(smbc_getFunctionMkdir)               \
    X(smbc_getFunctionRmdir)

#define HV_SMB_FIELD(f) __typeof__(f) *f;
static struct {
    HV_SMB_FUNCS(HV_SMB_FIELD)
} hv_smbc;
static char *hv_smbc_error; /* why it could not be loaded, or NULL */

static void
smbc_load_once(void)
{
    GModule *m = g_module_open(HV_SMBCLIENT_SONAME, G_MODULE_BIND_LAZY | G_MODULE_BIND_LOCAL);

    if (m == NULL) {
        hv_smbc_error = g_strdup(g_module_error());
        return;
    }
#define HV_SMB_SYM(f)                                                             \
    if (hv_smbc_error == NULL && !g_module_symbol(m, #f, (gpointer *)&hv_smbc.f)) \
        hv_smbc_error = g_strdup_printf("%s: no %s", HV_SMBCLIENT_SONAME, #f);
    HV_SMB_FUNCS(HV_SMB_SYM)
#undef HV_SMB_SYM
    g_module_make_resident(m); /* its pointers are kept */
}

/* Loads libsmbclient (once); FALSE with one line when it cannot be. */
static gboolean
smbc_load(GError **error)
{
    static gsize done;

    if (g_once_init_enter(&done)) {
        smbc_load_once();
        g_once_init_leave(&done, 1);
    }
    if (hv_smbc_error != NULL) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_NOT_SUPPORTED,
                    "moves through SMB need libsmbclient, which does not load: %s", hv_smbc_error);
        return FALSE;
    }
    return TRUE;
}

/* from here on, the names are the loaded functions */
#define smbc_new_context hv_smbc.smbc_new_context
#define smbc_free_context hv_smbc.smbc_free_context
#define smbc_init_context hv_smbc.smbc_init_context
#define smbc_setDebug hv_smbc.smbc_setDebug
#define smbc_setOptionUserData hv_smbc.smbc_setOptionUserData
#define smbc_getOptionUserData hv_smbc.smbc_getOptionUserData
#define smbc_setFunctionAuthDataWithContext hv_smbc.smbc_setFunctionAuthDataWithContext
#define smbc_setOptionNoAutoAnonymousLogin hv_smbc.smbc_setOptionNoAutoAnonymousLogin
#define smbc_setTimeout hv_smbc.smbc_setTimeout
#define smbc_getFunctionStat hv_smbc.smbc_getFunctionStat
#define smbc_getFunctionOpen hv_smbc.smbc_getFunctionOpen
#define smbc_getFunctionClose hv_smbc.smbc_getFunctionClose
#define smbc_getFunctionRead hv_smbc.smbc_getFunctionRead
#define smbc_getFunctionWrite hv_smbc.smbc_getFunctionWrite
#define smbc_getFunctionUnlink hv_smbc.smbc_getFunctionUnlink
#define smbc_getFunctionMkdir hv_smbc.smbc_getFunctionMkdir
#define smbc_getFunctionRmdir hv_smbc.smbc_getFunctionRmdir
#endif

#define HV_SMB_CHUNK (1024 * 1024) /* bytes per SMB read/write call */

struct _HvSmb {
    HvHost *host;
    GPtrArray *shares; /* "D:=//SERVER/SHARE" entries of the backend */
    char *user;
    char *password;
    char *domain;
#ifdef HAVE_SMBCLIENT
    SMBCCTX *ctx;
#endif
};

void
hv_smb_free(HvSmb *s)
{
    if (s == NULL)
        return;
#ifdef HAVE_SMBCLIENT
    if (s->ctx != NULL)
        smbc_free_context(s->ctx, 1);
#endif
    if (s->password != NULL)
        explicit_bzero(s->password, strlen(s->password));
    g_free(s->password);
    g_free(s->user);
    g_free(s->domain);
    g_free(s);
}

gboolean
hv_smb_check_shares(GPtrArray *shares, GError **error)
{
    for (guint i = 0; shares != NULL && i < shares->len; i++) {
        const char *e = shares->pdata[i];
        if (!g_ascii_isalpha(e[0]) || e[1] != ':' || e[2] != '=' || !g_str_has_prefix(e + 3, "//")
            || strchr(e + 5, '/') == NULL || strchr(e + 5, '/')[1] == '\0') {
            g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_CONFIG,
                        "smb-shares: \"%s\" is not DRIVE:=//SERVER/SHARE[/DIR] (e.g. D:=//%%h/d$)",
                        e);
            return FALSE;
        }
    }
    return TRUE;
}

/* The smb:// URL of a host path, components percent-encoded; NULL with
 * @error for a path that is not on a drive. */
char *
hv_smb_url(const HvSmb *s, const char *winpath, GError **error)
{
    g_autofree char *prefix = NULL;
    g_auto(GStrv) parts = NULL;
    GString *u;

    if (winpath == NULL || !g_ascii_isalpha(winpath[0]) || winpath[1] != ':'
        || (winpath[2] != '\\' && winpath[2] != '\0')) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_NOT_SUPPORTED,
                    "Hyper-V host %s: %s is not on a drive (X:\\...); only drives map to SMB "
                    "shares",
                    hv_host_label(s->host), winpath ? winpath : "(none)");
        return NULL;
    }
    for (guint i = 0; s->shares != NULL && i < s->shares->len && prefix == NULL; i++) {
        const char *e = s->shares->pdata[i];
        if (g_ascii_toupper(e[0]) == g_ascii_toupper(winpath[0]))
            prefix = g_strdup(e + 5); /* SERVER/SHARE[/DIR] */
    }
    if (prefix == NULL)
        prefix = g_strdup_printf("%%h/%c$", g_ascii_tolower(winpath[0]));
    u = g_string_new("smb://");
    for (const char *p = prefix; *p; p++) {
        if (p[0] == '%' && p[1] == 'h') {
            g_string_append(u, s->host->dest_name != NULL ? s->host->dest_name : s->host->name);
            p++;
        } else {
            g_string_append_c(u, *p);
        }
    }
    while (u->len > 6 && u->str[u->len - 1] == '/')
        g_string_truncate(u, u->len - 1);
    parts = g_strsplit(winpath + 2, "\\", -1);
    for (guint i = 0; parts[i] != NULL; i++) {
        g_autofree char *c = NULL;
        if (parts[i][0] == '\0')
            continue;
        if (strcmp(parts[i], "..") == 0 || strcmp(parts[i], ".") == 0) {
            g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_INVALID_ARGUMENT,
                        "Hyper-V path %s: \".\" and \"..\" are not allowed", winpath);
            g_string_free(u, TRUE);
            return NULL;
        }
        c = g_uri_escape_string(parts[i], NULL, FALSE);
        g_string_append_printf(u, "/%s", c);
    }
    return g_string_free(u, FALSE);
}

#ifdef HAVE_SMBCLIENT

static void
smb_auth(SMBCCTX *c, const char *srv, const char *shr, char *wg, int wglen, char *un, int unlen,
         char *pw, int pwlen)
{
    HvSmb *s = smbc_getOptionUserData(c);

    (void)srv;
    (void)shr;
    if (s == NULL)
        return;
    if (s->domain != NULL)
        g_strlcpy(wg, s->domain, (gsize)wglen);
    g_strlcpy(un, s->user != NULL ? s->user : "", (gsize)unlen);
    g_strlcpy(pw, s->password != NULL ? s->password : "", (gsize)pwlen);
}

/* One error line for a failed SMB call on @winpath. */
static void
smb_error(const HvSmb *s, int err, const char *what, const char *winpath, GError **error)
{
    int code = err == ENOENT || err == ENOTDIR  ? VMSHIFT_ERROR_NOT_FOUND
               : err == EACCES || err == EPERM  ? VMSHIFT_ERROR_PERMISSION
               : err == ENOSPC || err == EDQUOT ? VMSHIFT_ERROR_NO_SPACE
               : err == EEXIST                  ? VMSHIFT_ERROR_CONFLICT
               : err == ECONNREFUSED || err == EHOSTUNREACH || err == ETIMEDOUT
                       || err == ENETUNREACH
                   ? VMSHIFT_ERROR_CONNECTION
                   : VMSHIFT_ERROR_FAILED;
    g_set_error(error, VMSHIFT_ERROR, code, "Hyper-V host %s: SMB %s of %s: %s",
                hv_host_label(s->host), what, winpath, g_strerror(err));
}

HvSmb *
hv_smb_new(VmshiftBackend *b, HvHost *h, GError **error)
{
    const VmshiftCredentials *cr = vmshift_http_get_credentials(h->http);
    HvSmb *s;

    if (!smbc_load(error))
        return NULL;
    s = g_new0(HvSmb, 1);
    s->host = h;
    s->shares = b->smb_shares;
    if (cr != NULL) {
        s->user = g_strdup(cr->user);
        s->password = g_strdup(cr->password);
        s->domain = g_strdup(cr->domain);
    }
    s->ctx = smbc_new_context();
    if (s->ctx == NULL) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_FAILED, "libsmbclient: no context: %s",
                    g_strerror(errno));
        hv_smb_free(s);
        return NULL;
    }
    smbc_setDebug(s->ctx, 0);
    smbc_setOptionUserData(s->ctx, s);
    smbc_setFunctionAuthDataWithContext(s->ctx, smb_auth);
    smbc_setOptionNoAutoAnonymousLogin(s->ctx, 1);
    smbc_setTimeout(s->ctx, 30000);
    if (smbc_init_context(s->ctx) == NULL) {
        int e = errno;
        smbc_free_context(s->ctx, 1);
        s->ctx = NULL;
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_FAILED, "libsmbclient: init: %s",
                    g_strerror(e));
        hv_smb_free(s);
        return NULL;
    }
    return s;
}

gboolean
hv_smb_stat(HvSmb *s, const char *winpath, gboolean *exists, guint64 *size, GError **error)
{
    g_autofree char *url = hv_smb_url(s, winpath, error);
    struct stat st;

    if (url == NULL)
        return FALSE;
    if (smbc_getFunctionStat(s->ctx)(s->ctx, url, &st) < 0) {
        if (errno == ENOENT) {
            *exists = FALSE;
            return TRUE;
        }
        smb_error(s, errno, "stat", winpath, error);
        return FALSE;
    }
    *exists = TRUE;
    if (size != NULL)
        *size = (guint64)st.st_size;
    return TRUE;
}

gboolean
hv_smb_download(HvSmb *s, const char *winpath, const char *local, GCancellable *c, GError **error)
{
    g_autofree char *url = hv_smb_url(s, winpath, error);
    g_autofree guint8 *buf = NULL;
    SMBCFILE *f;
    int fd;
    gboolean ok = TRUE;

    if (url == NULL)
        return FALSE;
    f = smbc_getFunctionOpen(s->ctx)(s->ctx, url, O_RDONLY, 0);
    if (f == NULL) {
        smb_error(s, errno, "open", winpath, error);
        return FALSE;
    }
    fd = open(local, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_FAILED, "staging %s: %s", local,
                    g_strerror(errno));
        smbc_getFunctionClose(s->ctx)(s->ctx, f);
        return FALSE;
    }
    buf = g_malloc(HV_SMB_CHUNK);
    while (ok) {
        ssize_t n = smbc_getFunctionRead(s->ctx)(s->ctx, f, buf, HV_SMB_CHUNK);
        if (n < 0) {
            smb_error(s, errno, "read", winpath, error);
            ok = FALSE;
        } else if (n == 0) {
            break;
        } else if (g_cancellable_set_error_if_cancelled(c, error)) {
            ok = FALSE;
        } else {
            for (ssize_t off = 0; ok && off < n;) {
                ssize_t w = write(fd, buf + off, (size_t)(n - off));
                if (w < 0 && errno == EINTR)
                    continue;
                if (w < 0) {
                    g_set_error(error, VMSHIFT_ERROR,
                                errno == ENOSPC ? VMSHIFT_ERROR_NO_SPACE : VMSHIFT_ERROR_FAILED,
                                "staging %s: %s", local, g_strerror(errno));
                    ok = FALSE;
                }
                off += w > 0 ? w : 0;
            }
        }
    }
    smbc_getFunctionClose(s->ctx)(s->ctx, f);
    if (close(fd) < 0 && ok) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_FAILED, "staging %s: %s", local,
                    g_strerror(errno));
        ok = FALSE;
    }
    if (!ok)
        g_unlink(local);
    return ok;
}

gboolean
hv_smb_upload(HvSmb *s, const char *local, const char *winpath, GCancellable *c, GError **error)
{
    g_autofree char *url = hv_smb_url(s, winpath, error);
    g_autofree guint8 *buf = NULL;
    SMBCFILE *f;
    int fd;
    gboolean ok = TRUE;

    if (url == NULL)
        return FALSE;
    fd = open(local, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_FAILED, "staged %s: %s", local,
                    g_strerror(errno));
        return FALSE;
    }
    f = smbc_getFunctionOpen(s->ctx)(s->ctx, url, O_WRONLY | O_CREAT | O_EXCL, 0644);
    if (f == NULL) {
        smb_error(s, errno, "create", winpath, error);
        close(fd);
        return FALSE;
    }
    buf = g_malloc(HV_SMB_CHUNK);
    while (ok) {
        ssize_t n = read(fd, buf, HV_SMB_CHUNK);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_FAILED, "staged %s: %s", local,
                        g_strerror(errno));
            ok = FALSE;
        } else if (n == 0) {
            break;
        } else if (g_cancellable_set_error_if_cancelled(c, error)) {
            ok = FALSE;
        } else {
            for (ssize_t off = 0; ok && off < n;) {
                ssize_t w = smbc_getFunctionWrite(s->ctx)(s->ctx, f, buf + off, (size_t)(n - off));
                if (w <= 0) {
                    smb_error(s, w < 0 ? errno : EIO, "write", winpath, error);
                    ok = FALSE;
                }
                off += w > 0 ? w : 0;
            }
        }
    }
    close(fd);
    if (smbc_getFunctionClose(s->ctx)(s->ctx, f) < 0 && ok) {
        smb_error(s, errno, "close", winpath, error);
        ok = FALSE;
    }
    if (!ok)
        smbc_getFunctionUnlink(s->ctx)(s->ctx, url);
    return ok;
}

gboolean
hv_smb_unlink(HvSmb *s, const char *winpath, GError **error)
{
    g_autofree char *url = hv_smb_url(s, winpath, error);

    if (url == NULL)
        return FALSE;
    if (smbc_getFunctionUnlink(s->ctx)(s->ctx, url) < 0 && errno != ENOENT) {
        smb_error(s, errno, "delete", winpath, error);
        return FALSE;
    }
    return TRUE;
}

gboolean
hv_smb_mkdir(HvSmb *s, const char *windir, gboolean *created, GError **error)
{
    g_autofree char *url = hv_smb_url(s, windir, error);

    *created = FALSE;
    if (url == NULL)
        return FALSE;
    if (smbc_getFunctionMkdir(s->ctx)(s->ctx, url, 0755) < 0) {
        if (errno == EEXIST)
            return TRUE;
        smb_error(s, errno, "mkdir", windir, error);
        return FALSE;
    }
    *created = TRUE;
    return TRUE;
}

gboolean
hv_smb_rmdir(HvSmb *s, const char *windir, GError **error)
{
    g_autofree char *url = hv_smb_url(s, windir, error);

    if (url == NULL)
        return FALSE;
    if (smbc_getFunctionRmdir(s->ctx)(s->ctx, url) < 0 && errno != ENOENT) {
        smb_error(s, errno, "rmdir", windir, error);
        return FALSE;
    }
    return TRUE;
}

#else /* !HAVE_SMBCLIENT */

HvSmb *
hv_smb_new(VmshiftBackend *b, HvHost *h, GError **error)
{
    (void)b;
    g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_NOT_SUPPORTED,
                "Hyper-V host %s: disks between backends go through SMB, and this vmshift was "
                "built without libsmbclient (Debian: libsmbclient-dev)",
                hv_host_label(h));
    return NULL;
}

gboolean
hv_smb_stat(HvSmb *s, const char *p, gboolean *e, guint64 *z, GError **error)
{
    (void)s, (void)p, (void)e, (void)z;
    g_set_error_literal(error, VMSHIFT_ERROR, VMSHIFT_ERROR_NOT_SUPPORTED, "no libsmbclient");
    return FALSE;
}

gboolean
hv_smb_download(HvSmb *s, const char *p, const char *l, GCancellable *c, GError **error)
{
    (void)s, (void)p, (void)l, (void)c;
    g_set_error_literal(error, VMSHIFT_ERROR, VMSHIFT_ERROR_NOT_SUPPORTED, "no libsmbclient");
    return FALSE;
}

gboolean
hv_smb_upload(HvSmb *s, const char *l, const char *p, GCancellable *c, GError **error)
{
    (void)s, (void)p, (void)l, (void)c;
    g_set_error_literal(error, VMSHIFT_ERROR, VMSHIFT_ERROR_NOT_SUPPORTED, "no libsmbclient");
    return FALSE;
}

gboolean
hv_smb_unlink(HvSmb *s, const char *p, GError **error)
{
    (void)s, (void)p;
    g_set_error_literal(error, VMSHIFT_ERROR, VMSHIFT_ERROR_NOT_SUPPORTED, "no libsmbclient");
    return FALSE;
}

gboolean
hv_smb_mkdir(HvSmb *s, const char *p, gboolean *created, GError **error)
{
    (void)s, (void)p;
    *created = FALSE;
    g_set_error_literal(error, VMSHIFT_ERROR, VMSHIFT_ERROR_NOT_SUPPORTED, "no libsmbclient");
    return FALSE;
}

gboolean
hv_smb_rmdir(HvSmb *s, const char *p, GError **error)
{
    (void)s, (void)p;
    g_set_error_literal(error, VMSHIFT_ERROR, VMSHIFT_ERROR_NOT_SUPPORTED, "no libsmbclient");
    return FALSE;
}

#endif /* HAVE_SMBCLIENT */

gboolean
hv_staging_room(const char *dir, guint64 need, const char *what, GError **error)
{
    struct statvfs sv;
    guint64 avail;

    if (statvfs(dir, &sv) < 0) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_CONFIG, "staging-dir %s: %s", dir,
                    g_strerror(errno));
        return FALSE;
    }
    avail = (guint64)sv.f_bavail * (guint64)sv.f_frsize;
    if (avail < need) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_NO_SPACE,
                    "%s needs %" G_GUINT64_FORMAT
                    " MiB in staging-dir %s, which has %" G_GUINT64_FORMAT " MiB free",
                    what, need >> 20, dir, avail >> 20);
        return FALSE;
    }
    return TRUE;
}
