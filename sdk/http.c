/* vmshift SDK: HTTP(S) on libcurl, with the TLS policy, auth and redaction. */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <curl/curl.h>
#include <vmshift/http.h>

#include "sdk-private.h"

#undef G_LOG_DOMAIN
#define G_LOG_DOMAIN VMSHIFT_HTTP_LOG_DOMAIN

/* Shared with xml.c (vmshift_soap_call); hidden like every non-API symbol. */
void vmshift_http_status_error(const VmshiftHttpResponse *resp, const char *prefix, GError **error);

static void setup_handle(VmshiftHttp *h);

/* ---- libcurl global state --------------------------------------------- */

static gpointer
init_curl(gpointer unused)
{
    CURLcode rc = curl_global_init(CURL_GLOBAL_DEFAULT);
    return GINT_TO_POINTER(rc == CURLE_OK);
}

static gboolean
ensure_curl(GError **error)
{
    static GOnce once = G_ONCE_INIT;
    if (!GPOINTER_TO_INT(g_once(&once, init_curl, NULL))) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_FAILED, "cannot initialise libcurl");
        return FALSE;
    }
    return TRUE;
}

/* ---- options ------------------------------------------------------------ */

/* Options from the configuration own their strings; the public part comes
 * first so the pointer is the caller's VmshiftHttpOptions. */
typedef struct {
    VmshiftHttpOptions pub;
    char *url;
    char *ca_file;
    VmshiftCredentials *credentials;
} OwnedOptions;

VMSHIFT_API gboolean
vmshift_http_auth_from_string(const char *name, VmshiftHttpAuth *out)
{
    static const struct {
        const char *name;
        VmshiftHttpAuth auth;
    } names[] = {
        { "none", VMSHIFT_HTTP_AUTH_NONE },
        { "basic", VMSHIFT_HTTP_AUTH_BASIC },
        { "ntlm", VMSHIFT_HTTP_AUTH_NTLM },
        { "negotiate", VMSHIFT_HTTP_AUTH_NEGOTIATE },
    };
    if (!name)
        return FALSE;
    for (gsize i = 0; i < G_N_ELEMENTS(names); i++) {
        if (!g_ascii_strcasecmp(name, names[i].name)) {
            *out = names[i].auth;
            return TRUE;
        }
    }
    return FALSE;
}

VMSHIFT_API void
vmshift_http_options_free(VmshiftHttpOptions *options)
{
    OwnedOptions *o = (OwnedOptions *)options;

    if (!o)
        return;
    g_free(o->url);
    g_free(o->ca_file);
    vmshift_credentials_free(o->credentials);
    g_free(o);
}

VMSHIFT_API VmshiftHttpOptions *
vmshift_http_options_new_from_config(const VmshiftConfig *config, VmshiftHttpAuth default_auth,
                                     GError **error)
{
    OwnedOptions *o = g_new0(OwnedOptions, 1);
    g_autoptr(VmshiftHttpOptions) options = &o->pub; /* freed unless returned */
    g_autofree char *auth = NULL;
    gint64 timeout = 0, connect_timeout = 0;

    o->pub.struct_size = sizeof(VmshiftHttpOptions);
    o->pub.auth = default_auth;

    o->url = vmshift_config_get_string(config, "url", NULL);
    if (o->url && !*o->url)
        g_clear_pointer(&o->url, g_free);
    o->pub.url = o->url;

    o->ca_file = vmshift_config_get_string(config, "ca-file", NULL);
    if (o->ca_file && *o->ca_file && !g_path_is_absolute(o->ca_file)) {
        g_autofree char *dir = g_path_get_dirname(vmshift_config_get_source(config));
        char *abs = g_build_filename(dir, o->ca_file, NULL);
        g_free(o->ca_file);
        o->ca_file = abs;
    }
    if (o->ca_file && !*o->ca_file)
        g_clear_pointer(&o->ca_file, g_free);
    o->pub.ca_file = o->ca_file;

    if (!vmshift_config_get_boolean(config, "insecure", FALSE, &o->pub.insecure, error)
        || !vmshift_config_get_boolean(config, "allow-unencrypted", FALSE,
                                       &o->pub.allow_unencrypted, error)
        || !vmshift_config_get_int(config, "timeout", 0, 1, 86400, &timeout, error)
        || !vmshift_config_get_int(config, "connect-timeout", 0, 1, 86400, &connect_timeout, error))
        return NULL;
    if (vmshift_config_has_key(config, "timeout"))
        o->pub.timeout_ms = (guint)timeout * 1000u;
    if (vmshift_config_has_key(config, "connect-timeout"))
        o->pub.connect_timeout_ms = (guint)connect_timeout * 1000u;

    auth = vmshift_config_get_string(config, "auth", NULL);
    if (auth && !vmshift_http_auth_from_string(auth, &o->pub.auth)) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_CONFIG,
                    "%s: backend '%s': key 'auth' must be none, basic, ntlm or negotiate, "
                    "not '%s'",
                    vmshift_config_get_source(config), vmshift_config_get_backend(config), auth);
        return NULL;
    }

    if (vmshift_config_has_key(config, "credentials")) {
        o->credentials = vmshift_config_read_credentials(config, "credentials", error);
        if (!o->credentials)
            return NULL;
        o->pub.credentials = o->credentials;
    } else if (o->pub.auth != VMSHIFT_HTTP_AUTH_NONE) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_CONFIG,
                    "%s: backend '%s': missing key 'credentials' (needed for auth=%s)",
                    vmshift_config_get_source(config), vmshift_config_get_backend(config),
                    o->pub.auth == VMSHIFT_HTTP_AUTH_BASIC  ? "basic"
                    : o->pub.auth == VMSHIFT_HTTP_AUTH_NTLM ? "ntlm"
                                                            : "negotiate");
        return NULL;
    }
    return g_steal_pointer(&options);
}

/* ---- the handle --------------------------------------------------------- */

typedef struct {
    gint refcount;
    CURLSH *share;
    GMutex locks[CURL_LOCK_DATA_LAST];
} CookieJar;

struct _VmshiftHttp {
    GMutex lock; /* one request at a time; protects curl */
    CURL *curl;
    CookieJar *jar;
    char *url;
    char *ca_file;
    gboolean insecure;
    gboolean allow_unencrypted;
    guint timeout_ms;     /* configured (after defaults) */
    guint cur_timeout_ms; /* in force */
    guint connect_timeout_ms;
    VmshiftHttpAuth auth;
    VmshiftCredentials *creds;
    char *user_agent;
    char **headers;
    gsize max_response;
    char errbuf[CURL_ERROR_SIZE];
};

static void
jar_lock(CURL *handle, curl_lock_data data, curl_lock_access access, void *userptr)
{
    CookieJar *jar = userptr;
    if ((int)data >= 0 && data < CURL_LOCK_DATA_LAST)
        g_mutex_lock(&jar->locks[data]);
}

static void
jar_unlock(CURL *handle, curl_lock_data data, void *userptr)
{
    CookieJar *jar = userptr;
    if ((int)data >= 0 && data < CURL_LOCK_DATA_LAST)
        g_mutex_unlock(&jar->locks[data]);
}

static CookieJar *
jar_new(void)
{
    CookieJar *jar = g_new0(CookieJar, 1);

    jar->refcount = 1;
    for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
        g_mutex_init(&jar->locks[i]);
    jar->share = curl_share_init();
    if (!jar->share)
        g_error("out of memory creating a libcurl share");
    curl_share_setopt(jar->share, CURLSHOPT_LOCKFUNC, jar_lock);
    curl_share_setopt(jar->share, CURLSHOPT_UNLOCKFUNC, jar_unlock);
    curl_share_setopt(jar->share, CURLSHOPT_USERDATA, jar);
    curl_share_setopt(jar->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_COOKIE);
    return jar;
}

static void
jar_unref(CookieJar *jar)
{
    if (!jar || !g_atomic_int_dec_and_test(&jar->refcount))
        return;
    curl_share_cleanup(jar->share);
    for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
        g_mutex_clear(&jar->locks[i]);
    g_free(jar);
}

static VmshiftCredentials *
credentials_copy(const VmshiftCredentials *c)
{
    VmshiftCredentials *n;

    if (!c)
        return NULL;
    n = g_new0(VmshiftCredentials, 1);
    n->user = g_strdup(c->user);
    n->password = g_strdup(c->password);
    n->domain = g_strdup(c->domain);
    return n;
}

/* A URL as messages may show it: any userinfo, whatever it holds (spaces,
 * '/', '#', '@'), becomes "***".  GUri finds it in a well-formed URL; in one
 * GUri cannot parse, everything between "://" and the last '@' goes. */
static char *
shown_url(const char *url)
{
    g_autofree char *scheme = NULL;
    g_autofree char *userinfo = NULL;
    g_autofree char *host = NULL;
    g_autofree char *path = NULL;
    const char *sep = url != NULL ? strstr(url, "://") : NULL;
    const char *at = url != NULL ? strrchr(url, '@') : NULL;

    if (url == NULL)
        return g_strdup("");
    if (g_uri_split(url, G_URI_FLAGS_NONE, &scheme, &userinfo, &host, NULL, &path, NULL, NULL, NULL)
        && userinfo == NULL && at == NULL)
        return vmshift_redact(url);
    if (sep == NULL || at == NULL || at < sep)
        return vmshift_redact(url);
    return g_strdup_printf("%.*s://***%s", (int)(sep - url), url, at);
}

/* Parses and checks an absolute URL; returns it normalised, or NULL. */
/* libcurl's strings and URL handles, freed by libcurl */
typedef char CurlString;
G_DEFINE_AUTOPTR_CLEANUP_FUNC(CurlString, curl_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(CURLU, curl_url_cleanup)

/* Parses and checks an absolute URL; returns it normalised, or NULL. */
static char *
check_url(const char *url, gboolean allow_unencrypted, const char *what, GError **error)
{
    g_autoptr(CURLU) u = curl_url();
    g_autoptr(CurlString) scheme = NULL;
    g_autoptr(CurlString) user = NULL;
    g_autoptr(CurlString) password = NULL;
    g_autoptr(CurlString) host = NULL;
    g_autoptr(CurlString) full = NULL;
    g_autofree char *shown = shown_url(url);

    if (!u)
        g_error("out of memory");
    if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK
        || curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK
        || curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK || !host || !*host) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_INVALID_ARGUMENT,
                    "%s '%s' is not a valid URL", what, shown);
        return NULL;
    }
    if (curl_url_get(u, CURLUPART_USER, &user, 0) == CURLUE_OK
        || curl_url_get(u, CURLUPART_PASSWORD, &password, 0) == CURLUE_OK) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_INVALID_ARGUMENT,
                    "%s '%s' must not carry a user name or password; use credentials=", what,
                    shown);
        return NULL;
    }
    if (!g_ascii_strcasecmp(scheme, "http")) {
        if (!allow_unencrypted) {
            g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_INVALID_ARGUMENT,
                        "%s '%s' is unencrypted http://; use https:// or set "
                        "allow-unencrypted=true",
                        what, shown);
            return NULL;
        }
    } else if (g_ascii_strcasecmp(scheme, "https") != 0) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_INVALID_ARGUMENT,
                    "%s '%s': scheme must be https", what, shown);
        return NULL;
    }
    if (curl_url_get(u, CURLUPART_URL, &full, 0) != CURLUE_OK) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_INVALID_ARGUMENT,
                    "%s '%s' is not a valid URL", what, shown);
        return NULL;
    }
    return g_strdup(full);
}

#define OPT_HAS(opts, field) \
    ((opts)->struct_size >= G_STRUCT_OFFSET(VmshiftHttpOptions, field) + sizeof((opts)->field))

VMSHIFT_API VmshiftHttp *
vmshift_http_new(const VmshiftHttpOptions *opts, GError **error)
{
    VmshiftHttpOptions o = { 0 };
    g_autofree char *url = NULL;
    VmshiftHttp *h;

    g_return_val_if_fail(opts != NULL, NULL);
    if (!ensure_curl(error))
        return NULL;
    memcpy(&o, opts, MIN(opts->struct_size, sizeof o));
    if (!OPT_HAS(opts, url) || !o.url || !*o.url) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_INVALID_ARGUMENT,
                    "HTTP: no URL given (url=)");
        return NULL;
    }
    url = check_url(o.url, o.allow_unencrypted, "URL", error);
    if (!url)
        return NULL;
    if (o.auth != VMSHIFT_HTTP_AUTH_NONE
        && (!o.credentials || !o.credentials->user || !o.credentials->password)) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_INVALID_ARGUMENT,
                    "%s: HTTP authentication needs credentials (user and password)", url);
        return NULL;
    }
    if ((int)o.auth < VMSHIFT_HTTP_AUTH_NONE || o.auth > VMSHIFT_HTTP_AUTH_NEGOTIATE) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_INVALID_ARGUMENT,
                    "%s: unknown HTTP authentication scheme %d", url, (int)o.auth);
        return NULL;
    }
    if (o.ca_file && *o.ca_file) {
        FILE *f = fopen(o.ca_file, "re");
        if (!f) {
            int e = errno;
            g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_CONFIG, "ca-file %s: %s", o.ca_file,
                        g_strerror(e));
            return NULL;
        }
        fclose(f);
    }

    h = g_new0(VmshiftHttp, 1);
    g_mutex_init(&h->lock);
    h->curl = curl_easy_init();
    if (!h->curl)
        g_error("out of memory creating a libcurl handle");
    h->jar = jar_new();
    h->url = g_steal_pointer(&url);
    h->ca_file = o.ca_file && *o.ca_file ? g_strdup(o.ca_file) : NULL;
    h->insecure = o.insecure;
    h->allow_unencrypted = o.allow_unencrypted;
    h->timeout_ms = o.timeout_ms ? o.timeout_ms : VMSHIFT_HTTP_DEFAULT_TIMEOUT_MS;
    h->cur_timeout_ms = h->timeout_ms;
    h->connect_timeout_ms = o.connect_timeout_ms ? o.connect_timeout_ms
                                                 : VMSHIFT_HTTP_DEFAULT_CONNECT_TIMEOUT_MS;
    h->auth = o.auth;
    h->creds = credentials_copy(o.credentials);
    h->user_agent = g_strdup(o.user_agent && *o.user_agent ? o.user_agent
                                                           : "vmshift/" PACKAGE_VERSION);
    h->headers = g_strdupv((char **)o.headers);
    h->max_response = OPT_HAS(opts, max_response_size) && o.max_response_size
                          ? o.max_response_size
                          : VMSHIFT_HTTP_DEFAULT_MAX_RESPONSE;
    setup_handle(h);
    if (h->insecure)
        g_warning("TLS certificate verification is off (insecure=true) for %s; "
                  "use ca-file= instead outside of tests",
                  h->url);
    return h;
}

VMSHIFT_API VmshiftHttp *
vmshift_http_new_sharing(VmshiftHttp *http)
{
    VmshiftHttp *h = g_new0(VmshiftHttp, 1);

    g_mutex_init(&h->lock);
    h->curl = curl_easy_init();
    if (!h->curl)
        g_error("out of memory creating a libcurl handle");
    g_mutex_lock(&http->lock);
    g_atomic_int_inc(&http->jar->refcount);
    h->jar = http->jar;
    h->url = g_strdup(http->url);
    h->ca_file = g_strdup(http->ca_file);
    h->insecure = http->insecure;
    h->allow_unencrypted = http->allow_unencrypted;
    h->timeout_ms = http->timeout_ms;
    h->cur_timeout_ms = http->cur_timeout_ms;
    h->connect_timeout_ms = http->connect_timeout_ms;
    h->auth = http->auth;
    h->creds = credentials_copy(http->creds);
    h->user_agent = g_strdup(http->user_agent);
    h->headers = g_strdupv(http->headers);
    h->max_response = http->max_response;
    g_mutex_unlock(&http->lock);
    setup_handle(h);
    return h;
}

VMSHIFT_API void
vmshift_http_free(VmshiftHttp *h)
{
    if (!h)
        return;
    /* The easy handle goes first: it detaches from the share. */
    curl_easy_cleanup(h->curl);
    jar_unref(h->jar);
    g_free(h->url);
    g_free(h->ca_file);
    vmshift_credentials_free(h->creds);
    g_free(h->user_agent);
    g_strfreev(h->headers);
    g_mutex_clear(&h->lock);
    g_free(h);
}

VMSHIFT_API const char *
vmshift_http_get_url(VmshiftHttp *h)
{
    return h->url;
}

VMSHIFT_API const VmshiftCredentials *
vmshift_http_get_credentials(VmshiftHttp *h)
{
    return h->creds;
}

VMSHIFT_API void
vmshift_http_set_timeout(VmshiftHttp *h, guint timeout_ms)
{
    g_mutex_lock(&h->lock);
    h->cur_timeout_ms = timeout_ms ? timeout_ms : h->timeout_ms;
    g_mutex_unlock(&h->lock);
}

VMSHIFT_API char *
vmshift_http_get_cookie(VmshiftHttp *h, const char *name)
{
    struct curl_slist *list = NULL;
    char *value = NULL;

    g_mutex_lock(&h->lock);
    if (curl_easy_getinfo(h->curl, CURLINFO_COOKIELIST, &list) == CURLE_OK) {
        /* Netscape format: domain, tailmatch, path, secure, expires, name, value */
        for (struct curl_slist *l = list; l; l = l->next) {
            g_auto(GStrv) f = g_strsplit(l->data, "\t", 7);
            if (g_strv_length(f) == 7 && !strcmp(f[5], name)) {
                g_free(value);
                value = g_strdup(f[6]);
            }
        }
    }
    curl_slist_free_all(list);
    g_mutex_unlock(&h->lock);
    return value;
}

VMSHIFT_API void
vmshift_http_clear_cookies(VmshiftHttp *h)
{
    g_mutex_lock(&h->lock);
    curl_easy_setopt(h->curl, CURLOPT_COOKIELIST, "ALL");
    g_mutex_unlock(&h->lock);
}

/* ---- responses ---------------------------------------------------------- */

VMSHIFT_API void
vmshift_http_response_free(VmshiftHttpResponse *r)
{
    if (!r)
        return;
    g_bytes_unref(r->body);
    g_free(r->content_type);
    g_free(r->url);
    g_free(r->method);
    if (r->headers_)
        g_ptr_array_unref(r->headers_);
    g_free(r->reason_);
    g_free(r);
}

VMSHIFT_API const char *
vmshift_http_response_get_header(const VmshiftHttpResponse *r, const char *name)
{
    const char *found = NULL;

    if (!r->headers_)
        return NULL;
    for (guint i = 0; i + 1 < r->headers_->len; i += 2)
        if (!g_ascii_strcasecmp(g_ptr_array_index(r->headers_, i), name))
            found = g_ptr_array_index(r->headers_, i + 1);
    return found;
}

VMSHIFT_API char **
vmshift_http_response_get_header_names(const VmshiftHttpResponse *r)
{
    GPtrArray *out = g_ptr_array_new();

    for (guint i = 0; r->headers_ && i + 1 < r->headers_->len; i += 2)
        g_ptr_array_add(out, g_strdup(g_ptr_array_index(r->headers_, i)));
    g_ptr_array_add(out, NULL);
    return (char **)g_ptr_array_free(out, FALSE);
}

VMSHIFT_API const char *
vmshift_http_response_get_body(const VmshiftHttpResponse *r, gsize *len)
{
    gsize n = 0;
    const char *data = g_bytes_get_data(r->body, &n);

    if (len)
        *len = n - 1; /* the body always carries a terminating NUL */
    return data;
}

void
vmshift_http_status_error(const VmshiftHttpResponse *r, const char *prefix, GError **error)
{
    const char *reason = r->reason_ && *r->reason_ ? r->reason_ : "";
    const char *sep = *reason ? " " : "";
    int code;
    const char *hint = "";

    switch (r->status) {
    case 401:
    case 403:
        code = VMSHIFT_ERROR_AUTH_FAILED;
        hint = "; check user and password in the credentials file and auth=";
        break;
    case 404: code = VMSHIFT_ERROR_NOT_FOUND; break;
    case 408:
    case 504: code = VMSHIFT_ERROR_TIMEOUT; break;
    case 503: code = VMSHIFT_ERROR_BUSY; break;
    default: code = VMSHIFT_ERROR_PROTOCOL; break;
    }
    g_set_error(error, VMSHIFT_ERROR, code, "%s: HTTP %u%s%s%s", prefix, r->status, sep, reason,
                hint);
}

VMSHIFT_API gboolean
vmshift_http_response_check(const VmshiftHttpResponse *r, GError **error)
{
    g_autofree char *prefix = NULL;

    if (r->status / 100 == 2)
        return TRUE;
    prefix = g_strdup_printf("%s %s", r->method, r->url);
    vmshift_http_status_error(r, prefix, error);
    return FALSE;
}

/* ---- redaction ---------------------------------------------------------- */

typedef struct {
    GRegex *re;
    const char *replacement;
} Redaction;

static Redaction redactions[5];

static gpointer
init_redactions(gpointer unused)
{
    static const struct {
        const char *pattern;
        const char *replacement;
    } defs[G_N_ELEMENTS(redactions)] = {
        /* userinfo in URLs */
        { "\\b([a-zA-Z][a-zA-Z0-9+.-]*://)[^/?#@\\s]*@", "\\1***@" },
        /* secret headers, whole value up to the end of the line */
        { "(?i)\\b(authorization|proxy-authorization|cookie|set-cookie|"
          "vmware-api-session-id|x-auth-token)([ \\t]*:[ \\t]*)[^\\r\\n]*",
          "\\1\\2***" },
        /* vSphere session cookies wherever they appear */
        { "(?i)\\b(vmware_soap_session|vmware-api-session-id)=(\"[^\"]*\"|[^;\\s\"]*)", "\\1=***" },
        /* XML elements holding secrets: <password>, <ns:Password>, … */
        { "(?is)<((?:[\\w.-]+:)?[\\w.-]*(?:password|passwd|secret|sessioncookie)[\\w.-]*)"
          "(\\s[^>]*)?>.*?</\\1\\s*>",
          "<\\1\\2>***</\\1>" },
        /* password=… / "password": … in key=value, query or JSON text */
        { "(?i)\\b(password|passwd|pwd)(\"?[ \\t]*[=:][ \\t]*)(\"[^\"]*\"|[^\\s&;,\"<]*)",
          "\\1\\2***" },
    };
    for (gsize i = 0; i < G_N_ELEMENTS(defs); i++) {
        GError *err = NULL;
        redactions[i].re = g_regex_new(defs[i].pattern, G_REGEX_OPTIMIZE, 0, &err);
        if (!redactions[i].re)
            g_error("vmshift_redact: bad pattern %zu: %s", i, err->message);
        redactions[i].replacement = defs[i].replacement;
    }
    return NULL;
}

VMSHIFT_API char *
vmshift_redact(const char *text)
{
    static GOnce once = G_ONCE_INIT;
    char *cur;

    if (!text)
        return g_strdup("");
    g_once(&once, init_redactions, NULL);
    if (!g_utf8_validate(text, -1, NULL))
        cur = g_utf8_make_valid(text, -1);
    else
        cur = g_strdup(text);
    for (gsize i = 0; i < G_N_ELEMENTS(redactions); i++) {
        char *next = g_regex_replace(redactions[i].re, cur, -1, 0, redactions[i].replacement, 0,
                                     NULL);
        if (next) {
            g_free(cur);
            cur = next;
        }
    }
    return cur;
}

/* ---- requests ----------------------------------------------------------- */

typedef struct {
    VmshiftHttp *http;
    GByteArray *body;
    GPtrArray *headers; /* name, value, name, value… of the current reply */
    char *reason;
    gboolean too_large;
    GCancellable *cancellable;
    /* vmshift_http_request_once(): the body goes through on_read so that
     * libcurl must ask on_seek before it sends it a second time. */
    gboolean once;
    const guint8 *upload;
    gsize upload_len;
    gsize upload_pos;
    guint replies; /* status lines seen in this request */
    gboolean resend_refused;
} Transfer;

static size_t
on_read(char *buf, size_t size, size_t nitems, void *userdata)
{
    Transfer *t = userdata;
    gsize n = MIN(size * nitems, t->upload_len - t->upload_pos);

    memcpy(buf, t->upload + t->upload_pos, n);
    t->upload_pos += n;
    return n;
}

/* libcurl rewinds the body to send it again: after a complete reply that
 * asks for it (a 401 challenge) that is safe; with no reply at all it is
 * libcurl's "Connection died, retrying a fresh connect", a resend of a
 * request the server may have carried out: refused. */
static int
on_seek(void *userdata, curl_off_t offset, int origin)
{
    Transfer *t = userdata;

    if (origin != SEEK_SET || offset != 0 || t->replies == 0) {
        t->resend_refused = TRUE;
        return CURL_SEEKFUNC_FAIL;
    }
    t->upload_pos = 0;
    return CURL_SEEKFUNC_OK;
}

static size_t
on_body(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    Transfer *t = userdata;
    size_t n = size * nmemb;

    if (t->body->len + n > t->http->max_response) {
        t->too_large = TRUE;
        return 0;
    }
    g_byte_array_append(t->body, (const guint8 *)ptr, n);
    return n;
}

static size_t
on_header(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    Transfer *t = userdata;
    size_t n = size * nmemb;
    g_autofree char *line = g_strndup(ptr, n);
    char *colon;

    g_strchomp(line);
    if (g_str_has_prefix(line, "HTTP/")) {
        /* A new reply (after 100 Continue, a 401 challenge …): start over. */
        const char *sp = strchr(line, ' ');
        t->replies++;
        g_ptr_array_set_size(t->headers, 0);
        g_free(t->reason);
        t->reason = NULL;
        if (sp && (sp = strchr(sp + 1, ' ')))
            t->reason = g_strdup(sp + 1);
        return n;
    }
    colon = strchr(line, ':');
    if (colon && colon != line) {
        *colon = '\0';
        g_ptr_array_add(t->headers, g_strdup(g_strstrip(line)));
        g_ptr_array_add(t->headers, g_strdup(g_strstrip(colon + 1)));
    }
    return n;
}

static int
on_progress(void *clientp, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
            curl_off_t ulnow)
{
    Transfer *t = clientp;
    return t->cancellable && g_cancellable_is_cancelled(t->cancellable) ? 1 : 0;
}

static char *
resolve_url(VmshiftHttp *h, const char *path_or_url, GError **error)
{
    CURLU *u;
    char *full = NULL;
    char *result;

    if (!path_or_url || !*path_or_url)
        return g_strdup(h->url);
    u = curl_url();
    if (!u)
        g_error("out of memory");
    if (curl_url_set(u, CURLUPART_URL, h->url, 0) != CURLUE_OK
        || curl_url_set(u, CURLUPART_URL, path_or_url, 0) != CURLUE_OK
        || curl_url_get(u, CURLUPART_URL, &full, 0) != CURLUE_OK) {
        g_autofree char *shown = shown_url(path_or_url);
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_INVALID_ARGUMENT,
                    "%s: '%s' is not a valid path or URL", h->url, shown);
        curl_url_cleanup(u);
        return NULL;
    }
    curl_url_cleanup(u);
    result = check_url(full, h->allow_unencrypted, "request URL", error);
    curl_free(full);
    return result;
}

static void
set_transfer_error(VmshiftHttp *h, CURLcode rc, Transfer *t, const char *method, const char *url,
                   GError **error)
{
    g_autofree char *detail = NULL;
    g_autofree char *text = NULL;
    g_autofree char *red = NULL;
    const char *what;
    const char *hint = "";
    gboolean detail_override = FALSE;
    int code;

    detail = g_strdup(h->errbuf[0] ? h->errbuf : curl_easy_strerror(rc));
    g_strchomp(detail);
    switch (rc) {
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
        code = VMSHIFT_ERROR_CONNECTION;
        what = "cannot resolve host name";
        break;
    case CURLE_COULDNT_CONNECT:
        code = VMSHIFT_ERROR_CONNECTION;
        what = "cannot connect";
        break;
    case CURLE_GOT_NOTHING:
        code = VMSHIFT_ERROR_CONNECTION;
        what = "connection closed without a reply";
        break;
    case CURLE_PARTIAL_FILE:
        code = VMSHIFT_ERROR_CONNECTION;
        what = "connection closed in the middle of the reply";
        break;
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
        code = VMSHIFT_ERROR_CONNECTION;
        what = "connection lost";
        break;
    case CURLE_SEND_FAIL_REWIND:
        if (!t->resend_refused) {
            code = VMSHIFT_ERROR_FAILED;
            what = "request failed";
            break;
        }
        code = VMSHIFT_ERROR_CONNECTION;
        what = "connection lost before any reply; not sent again, the server may have carried "
               "it out";
        detail_override = TRUE;
        break;
    case CURLE_OPERATION_TIMEDOUT:
        code = VMSHIFT_ERROR_TIMEOUT;
        what = "timed out";
        break;
    case CURLE_PEER_FAILED_VERIFICATION:
#if LIBCURL_VERSION_NUM < 0x073e00
    case CURLE_SSL_CACERT:
#endif
        code = VMSHIFT_ERROR_TLS;
        what = "TLS certificate verification failed";
        hint = "; set ca-file= to the CA certificate that signed the server's certificate";
        break;
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_CRL_BADFILE:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS:
        code = VMSHIFT_ERROR_TLS;
        what = "TLS handshake failed";
        hint = "; check that the URL is an https:// endpoint, and ca-file=";
        break;
    case CURLE_SSL_CACERT_BADFILE:
        code = VMSHIFT_ERROR_TLS;
        what = "cannot load the CA certificates";
        hint = "; ca-file= must name a PEM file of CA certificates";
        break;
    case CURLE_WRITE_ERROR:
        if (t->too_large) {
            code = VMSHIFT_ERROR_PROTOCOL;
            text = g_strdup_printf("%s %s: reply larger than %" G_GSIZE_FORMAT " bytes", method,
                                   url, h->max_response);
            g_set_error_literal(error, VMSHIFT_ERROR, code, text);
            return;
        }
        code = VMSHIFT_ERROR_FAILED;
        what = "cannot store the reply";
        break;
    case CURLE_WEIRD_SERVER_REPLY:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
    case CURLE_BAD_CONTENT_ENCODING:
    case CURLE_TOO_MANY_REDIRECTS:
        code = VMSHIFT_ERROR_PROTOCOL;
        what = "malformed HTTP reply";
        break;
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_URL_MALFORMAT:
        code = VMSHIFT_ERROR_INVALID_ARGUMENT;
        what = "bad URL";
        break;
    case CURLE_LOGIN_DENIED:
    case CURLE_AUTH_ERROR:
        code = VMSHIFT_ERROR_AUTH_FAILED;
        what = "authentication failed";
        hint = "; check the credentials file and auth=";
        break;
    default:
        code = VMSHIFT_ERROR_CONNECTION;
        what = "request failed";
        break;
    }
    if (detail_override)
        text = g_strdup_printf("%s %s: %s", method, url, what);
    else
        text = g_strdup_printf("%s %s: %s (%s)%s", method, url, what, detail, hint);
    red = vmshift_redact(text);
    g_set_error_literal(error, VMSHIFT_ERROR, code, red);
}

static gboolean
debug_enabled(void)
{
    return !g_log_writer_default_would_drop(G_LOG_LEVEL_DEBUG, G_LOG_DOMAIN);
}

static void
debug_body(const char *label, const void *data, gsize len)
{
    g_autofree char *text = NULL;
    g_autofree char *red = NULL;
    const gsize max = 64 * 1024;

    if (!data || !len)
        return;
    text = g_strndup(data, MIN(len, max));
    red = vmshift_redact(text);
    g_debug("%s (%" G_GSIZE_FORMAT " bytes)%s:\n%s", label, len, len > max ? ", truncated" : "",
            red);
}

/* Options that stay for the handle's life (set once: curl_easy_reset()
 * would also switch off the cookie engine, and re-enabling it with
 * CURLOPT_COOKIEFILE on every request queues file names libcurl may leak). */
static void
setup_handle(VmshiftHttp *h)
{
    CURL *c = h->curl;

    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, h->errbuf);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_SHARE, h->jar->share);
    curl_easy_setopt(c, CURLOPT_COOKIEFILE, ""); /* cookie engine on, load nothing */
#if LIBCURL_VERSION_NUM >= 0x075500
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, h->allow_unencrypted ? "http,https" : "https");
#else
    curl_easy_setopt(
        c, CURLOPT_PROTOCOLS,
        (long)(h->allow_unencrypted ? CURLPROTO_HTTP | CURLPROTO_HTTPS : CURLPROTO_HTTPS));
#endif
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(c, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
    curl_easy_setopt(c, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, h->insecure ? 0L : 1L);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, h->insecure ? 0L : 2L);
    if (h->ca_file)
        curl_easy_setopt(c, CURLOPT_CAINFO, h->ca_file);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)h->connect_timeout_ms);
    curl_easy_setopt(c, CURLOPT_USERAGENT, h->user_agent);

    if (h->auth != VMSHIFT_HTTP_AUTH_NONE && h->creds) {
        long mask = h->auth == VMSHIFT_HTTP_AUTH_BASIC  ? CURLAUTH_BASIC
                    : h->auth == VMSHIFT_HTTP_AUTH_NTLM ? CURLAUTH_NTLM
                                                        : CURLAUTH_NEGOTIATE;
        curl_easy_setopt(c, CURLOPT_HTTPAUTH, mask);
        if (h->auth == VMSHIFT_HTTP_AUTH_NTLM && h->creds->domain && *h->creds->domain) {
            g_autofree char *user = g_strdup_printf("%s\\%s", h->creds->domain, h->creds->user);
            curl_easy_setopt(c, CURLOPT_USERNAME, user); /* libcurl copies */
        } else {
            curl_easy_setopt(c, CURLOPT_USERNAME, h->creds->user);
        }
        curl_easy_setopt(c, CURLOPT_PASSWORD, h->creds->password);
    }

    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
}

/* Everything one request changes; called with h->lock held. */
static void
prepare_request(VmshiftHttp *h, Transfer *t, struct curl_slist *headers, const char *url,
                const char *method, const void *body, gsize len)
{
    CURL *c = h->curl;

    h->errbuf[0] = '\0';
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS,
                     h->cur_timeout_ms == G_MAXUINT ? 0L : (long)h->cur_timeout_ms);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, t);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, t);
    curl_easy_setopt(c, CURLOPT_XFERINFODATA, t);

    /* HTTPGET resets whatever the previous request's method left. */
    curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, NULL);
    if (!strcmp(method, "HEAD")) {
        curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
    } else if (!strcmp(method, "GET") && !body) {
        /* done */
    } else {
        if (body || !strcmp(method, "POST") || !strcmp(method, "PUT")) {
            curl_easy_setopt(c, CURLOPT_POST, 1L);
            curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)(body ? len : 0));
            if (t->once) {
                t->upload = body;
                t->upload_len = body ? len : 0;
                curl_easy_setopt(c, CURLOPT_POSTFIELDS, NULL);
                curl_easy_setopt(c, CURLOPT_READFUNCTION, on_read);
                curl_easy_setopt(c, CURLOPT_READDATA, t);
                curl_easy_setopt(c, CURLOPT_SEEKFUNCTION, on_seek);
                curl_easy_setopt(c, CURLOPT_SEEKDATA, t);
            } else {
                curl_easy_setopt(c, CURLOPT_POSTFIELDS, body ? (const char *)body : "");
            }
        }
        if (strcmp(method, "POST") != 0)
            curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    }
}

static VmshiftHttpResponse *
http_request(VmshiftHttp *h, gboolean once, const char *method, const char *path_or_url,
             const char *const *headers, const void *body, gsize len, GCancellable *cancellable,
             GError **error)
{
    g_autofree char *url = NULL;
    struct curl_slist *hlist = NULL;
    Transfer t = { 0 };
    VmshiftHttpResponse *r = NULL;
    CURLcode rc;
    long status = 0;
    gboolean debug;
    gint64 start;

    g_return_val_if_fail(h != NULL && method != NULL, NULL);
    if (g_cancellable_set_error_if_cancelled(cancellable, error))
        return NULL;
    url = resolve_url(h, path_or_url, error);
    if (!url)
        return NULL;

    /* Expect: 100-continue only costs a round trip with these peers. */
    hlist = curl_slist_append(hlist, "Expect:");
    for (char **p = h->headers; p && *p; p++)
        hlist = curl_slist_append(hlist, *p);
    for (const char *const *p = headers; p && *p; p++)
        hlist = curl_slist_append(hlist, *p);

    t.http = h;
    t.body = g_byte_array_new();
    t.headers = g_ptr_array_new_with_free_func(g_free);
    t.cancellable = cancellable;
    t.once = once;

    debug = debug_enabled();

    g_mutex_lock(&h->lock);
    prepare_request(h, &t, hlist, url, method, body, len);
    if (debug) {
        g_autofree char *shown = vmshift_redact(url);
        g_debug("%s %s", method, shown);
        for (struct curl_slist *l = hlist; l; l = l->next) {
            g_autofree char *hl = vmshift_redact(l->data);
            g_debug("> %s", hl);
        }
        debug_body("request body", body, body ? len : 0);
    }
    start = g_get_monotonic_time();
    rc = curl_easy_perform(h->curl);
    if (rc == CURLE_OK)
        curl_easy_getinfo(h->curl, CURLINFO_RESPONSE_CODE, &status);
    if (rc != CURLE_OK) {
        GError *local = NULL;
        if (rc == CURLE_ABORTED_BY_CALLBACK && cancellable
            && g_cancellable_is_cancelled(cancellable)) {
            g_autofree char *shown = vmshift_redact(url);
            g_set_error(&local, G_IO_ERROR, G_IO_ERROR_CANCELLED, "%s %s: cancelled", method,
                        shown);
        } else {
            set_transfer_error(h, rc, &t, method, url, &local);
        }
        if (debug)
            g_debug("request failed after %" G_GINT64_FORMAT " ms: %s",
                    (g_get_monotonic_time() - start) / 1000, local->message);
        g_propagate_error(error, local);
    }
    /* Drop the pointers into this call's stack and the caller's body. */
    curl_easy_setopt(h->curl, CURLOPT_HTTPHEADER, NULL);
    curl_easy_setopt(h->curl, CURLOPT_POSTFIELDS, NULL);
    curl_easy_setopt(h->curl, CURLOPT_WRITEDATA, NULL);
    curl_easy_setopt(h->curl, CURLOPT_HEADERDATA, NULL);
    curl_easy_setopt(h->curl, CURLOPT_XFERINFODATA, NULL);
    if (once) {
        curl_easy_setopt(h->curl, CURLOPT_READFUNCTION, NULL);
        curl_easy_setopt(h->curl, CURLOPT_READDATA, NULL);
        curl_easy_setopt(h->curl, CURLOPT_SEEKFUNCTION, NULL);
        curl_easy_setopt(h->curl, CURLOPT_SEEKDATA, NULL);
    }
    g_mutex_unlock(&h->lock);
    curl_slist_free_all(hlist);

    if (rc == CURLE_OK) {
        r = g_new0(VmshiftHttpResponse, 1);
        r->status = (guint)status;
        r->method = g_strdup(method);
        r->url = vmshift_redact(url);
        r->headers_ = g_steal_pointer(&t.headers);
        r->reason_ = g_steal_pointer(&t.reason);
        r->content_type = g_strdup(vmshift_http_response_get_header(r, "Content-Type"));
        g_byte_array_append(t.body, (const guint8 *)"", 1); /* NUL terminator */
        r->body = g_byte_array_free_to_bytes(g_steal_pointer(&t.body));
        if (debug) {
            gsize blen;
            const char *b = vmshift_http_response_get_body(r, &blen);
            g_debug("%s %s: HTTP %u after %" G_GINT64_FORMAT " ms", method, r->url, r->status,
                    (g_get_monotonic_time() - start) / 1000);
            for (guint i = 0; i + 1 < r->headers_->len; i += 2) {
                g_autofree char *hl = g_strdup_printf(
                    "%s: %s", (char *)g_ptr_array_index(r->headers_, i),
                    (char *)g_ptr_array_index(r->headers_, i + 1));
                g_autofree char *red = vmshift_redact(hl);
                g_debug("< %s", red);
            }
            debug_body("reply body", b, blen);
        }
    }
    if (t.body)
        g_byte_array_unref(t.body);
    if (t.headers)
        g_ptr_array_unref(t.headers);
    g_free(t.reason);
    return r;
}

VMSHIFT_API VmshiftHttpResponse *
vmshift_http_request(VmshiftHttp *h, const char *method, const char *path_or_url,
                     const char *const *headers, const void *body, gsize len,
                     GCancellable *cancellable, GError **error)
{
    return http_request(h, FALSE, method, path_or_url, headers, body, len, cancellable, error);
}

VMSHIFT_API VmshiftHttpResponse *
vmshift_http_request_once(VmshiftHttp *h, const char *method, const char *path_or_url,
                          const char *const *headers, const void *body, gsize len,
                          GCancellable *cancellable, GError **error)
{
    return http_request(h, TRUE, method, path_or_url, headers, body, len, cancellable, error);
}
