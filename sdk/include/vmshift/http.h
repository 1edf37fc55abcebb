/*
 * vmshift SDK: HTTP(S) for backends, on libcurl.
 *
 * Include this header on its own: #include <vmshift/http.h>
 * (it includes <vmshift/vmshift.h> and <gio/gio.h>).
 *
 * A VmshiftHttp is a connection to one endpoint (a base URL such as
 * https://vc.example.com/sdk or https://hv1:5986/wsman) with the TLS policy,
 * HTTP authentication and session cookies of one backend:
 *
 *  - TLS: certificates are verified (peer and host name) against the system
 *    store or ca_file; insecure turns verification off and logs a warning.
 *    Plain http:// is refused unless allow_unencrypted is set (WinRM on
 *    5985 with AllowUnencrypted, test peers).
 *  - Authentication: HTTP Basic, NTLM or Negotiate (SPNEGO, through
 *    libcurl's GSS-API) with the handle's credentials, or none (vSphere
 *    logs in with a SOAP call and then rides on its session cookie). NTLM
 *    and Negotiate over http:// send the SOAP body unsealed: WinRM only
 *    accepts that with AllowUnencrypted=true; WinRM message encryption is
 *    not implemented.
 *  - Cookies: every Set-Cookie the peer sends (vmware_soap_session,
 *    vmware-api-session-id, …) is kept in memory for the handle and sent
 *    back; handles made with vmshift_http_new_sharing() share the jar.
 *  - Errors: one GError line in the VMSHIFT_ERROR domain naming the method
 *    and the URL (credentials are never part of it):
 *    VMSHIFT_ERROR_CONNECTION (refused, unreachable, reset, connection
 *    closed before or in the middle of the reply), VMSHIFT_ERROR_TLS
 *    (verification or handshake failure; the message says to set ca-file=),
 *    VMSHIFT_ERROR_TIMEOUT, VMSHIFT_ERROR_INVALID_ARGUMENT (bad URL, http://
 *    without allow_unencrypted), VMSHIFT_ERROR_PROTOCOL (a reply that is not
 *    HTTP, a body over max_response_size). Cancellation gives
 *    G_IO_ERROR_CANCELLED. An HTTP status is not an error for
 *    vmshift_http_request(): the caller gets the response (a SOAP fault
 *    arrives as 500 with a body) and decides, usually with
 *    vmshift_http_response_check().
 *  - Logging: with G_MESSAGES_DEBUG including "vmshift-http", every request
 *    and reply is logged at debug level (method, URL, status, headers,
 *    body), always through vmshift_redact().
 *
 * Threads: a VmshiftHttp may be used from any thread, but it carries one
 * request at a time: concurrent calls on the same handle are serialised by
 * an internal lock (a second caller waits). A thread that must not wait
 * behind another (a long poll such as vSphere's WaitForUpdatesEx, a job
 * watching Msvm_ConcreteJob) uses its own handle from
 * vmshift_http_new_sharing(): same options and credentials, same cookie
 * jar (so the same vSphere session), its own connection. Cookie access is
 * locked across sharing handles.
 */
#ifndef VMSHIFT_HTTP_H
#define VMSHIFT_HTTP_H

#include <vmshift/vmshift.h>
#include <gio/gio.h>

G_BEGIN_DECLS

/**
 * VMSHIFT_HTTP_LOG_DOMAIN:
 *
 * The log domain of the HTTP helpers' debug and warning messages.
 */
#define VMSHIFT_HTTP_LOG_DOMAIN "vmshift-http"

/**
 * VMSHIFT_HTTP_DEFAULT_TIMEOUT_MS:
 *
 * The whole-request timeout used when the options give 0 and the
 * configuration has no `timeout=` (5 minutes).
 */
#define VMSHIFT_HTTP_DEFAULT_TIMEOUT_MS (300u * 1000u)

/**
 * VMSHIFT_HTTP_DEFAULT_CONNECT_TIMEOUT_MS:
 *
 * The connection (TCP + TLS handshake) timeout used when the options give
 * 0 (30 seconds).
 */
#define VMSHIFT_HTTP_DEFAULT_CONNECT_TIMEOUT_MS (30u * 1000u)

/**
 * VMSHIFT_HTTP_DEFAULT_MAX_RESPONSE:
 *
 * The largest response body accepted when the options give 0 (256 MiB);
 * a larger one fails with VMSHIFT_ERROR_PROTOCOL.
 */
#define VMSHIFT_HTTP_DEFAULT_MAX_RESPONSE ((gsize)256 * 1024 * 1024)

/**
 * VMSHIFT_HTTP_CONFIG_KEYS:
 *
 * The configuration keys vmshift_http_options_new_from_config() reads, for a
 * plugin's `config_keys` list:
 * |[
 * static const char *const esx_keys[] = { VMSHIFT_HTTP_CONFIG_KEYS, "datacenter", NULL };
 * ]|
 */
#define VMSHIFT_HTTP_CONFIG_KEYS                                                             \
    "url", "ca-file", "insecure", "allow-unencrypted", "timeout", "connect-timeout", "auth", \
        "credentials"

/**
 * VmshiftHttpAuth:
 * @VMSHIFT_HTTP_AUTH_NONE: no HTTP authentication (credentials, if any,
 *   are only kept for the plugin, e.g. for a SOAP Login).
 * @VMSHIFT_HTTP_AUTH_BASIC: HTTP Basic.
 * @VMSHIFT_HTTP_AUTH_NTLM: NTLM in HTTP's own "NTLM" scheme (libcurl's),
 *   as IIS-style servers offer it; a credentials domain is sent as
 *   DOMAIN\user. Servers that offer NTLM only inside "Negotiate" (WinRM,
 *   MS-WSMV 2.2.9.1.1.1) do not accept it: the Hyper-V plugin speaks NTLM
 *   inside Negotiate itself (plugins/hyperv/ntlm.c).
 * @VMSHIFT_HTTP_AUTH_NEGOTIATE: SPNEGO (Kerberos, or NTLM when the GSS-API
 *   library offers it); needs a libcurl built with GSS-API.
 *
 * HTTP authentication schemes; `auth=none|basic|ntlm|negotiate` in the
 * configuration.
 */
typedef enum {
    VMSHIFT_HTTP_AUTH_NONE = 0,
    VMSHIFT_HTTP_AUTH_BASIC = 1,
    VMSHIFT_HTTP_AUTH_NTLM = 2,
    VMSHIFT_HTTP_AUTH_NEGOTIATE = 3,
} VmshiftHttpAuth;

/**
 * VmshiftHttpOptions:
 * @struct_size: sizeof(VmshiftHttpOptions) as the caller was compiled;
 *   fields beyond it are taken as zero, so older callers keep working when
 *   fields are appended
 * @url: the base URL, "https://host[:port]/path"; request paths are
 *   resolved against it. It must not carry user:password@ (use
 *   @credentials).
 * @ca_file: (nullable): a PEM file of CA certificates to trust instead of
 *   the system store (`ca-file=`)
 * @insecure: do not verify the peer's certificate or host name (tests and
 *   labs only; a warning is logged each time a handle is made with it)
 * @allow_unencrypted: accept http:// URLs
 * @timeout_ms: the limit for a whole request, 0 for
 *   VMSHIFT_HTTP_DEFAULT_TIMEOUT_MS; G_MAXUINT for none (long polls should
 *   rather use their own handle with vmshift_http_set_timeout())
 * @connect_timeout_ms: the limit for connecting (TCP and TLS), 0 for
 *   VMSHIFT_HTTP_DEFAULT_CONNECT_TIMEOUT_MS
 * @auth: the HTTP authentication scheme
 * @credentials: (nullable): user and password for @auth; copied by
 *   vmshift_http_new(), and the copy is wiped when the handle is freed
 * @user_agent: (nullable): the User-Agent, default "vmshift/VERSION"
 * @headers: (nullable): NULL-terminated "Name: value" headers sent with
 *   every request
 * @max_response_size: the largest response body accepted, 0 for
 *   VMSHIFT_HTTP_DEFAULT_MAX_RESPONSE
 *
 * What vmshift_http_new() needs. The strings are borrowed: the caller
 * keeps ownership and vmshift_http_new() copies what it keeps. Fill one on
 * the stack:
 * |[
 * VmshiftHttpOptions o = { .struct_size = sizeof o, .url = "https://vc/sdk" };
 * ]|
 * or get one from vmshift_http_options_new_from_config() and adjust it.
 */
typedef struct {
    gsize struct_size;
    const char *url;
    const char *ca_file;
    gboolean insecure;
    gboolean allow_unencrypted;
    guint timeout_ms;
    guint connect_timeout_ms;
    VmshiftHttpAuth auth;
    const VmshiftCredentials *credentials;
    const char *user_agent;
    const char *const *headers;
    gsize max_response_size;
} VmshiftHttpOptions;

/**
 * vmshift_http_options_new_from_config:
 * @config: a backend's configuration
 * @default_auth: the scheme when `auth=` is not set (ESX: NONE, Hyper-V:
 *   NEGOTIATE or BASIC)
 * @error: return location for an error
 *
 * Reads the connection keys every HTTP backend shares, so that all plugins
 * read them the same way:
 *
 *  - `url=` the endpoint (optional here: when absent, @url is NULL and the
 *    plugin sets it, e.g. from its own `host=` key, before
 *    vmshift_http_new());
 *  - `ca-file=` a PEM CA bundle (relative paths are relative to the file
 *    the group came from);
 *  - `insecure=` boolean; when true, a warning is logged every time a
 *    handle is made from the options (vmshift_http_new());
 *  - `allow-unencrypted=` boolean;
 *  - `timeout=`, `connect-timeout=` seconds (1 to 86400);
 *  - `auth=` none, basic, ntlm or negotiate;
 *  - `credentials=` a credentials file, read with
 *    vmshift_config_read_credentials() (mode checks included). It is
 *    required when the scheme is not none.
 *
 * The returned options own their strings and credentials; the caller may
 * change any field (pointing it at its own strings) before
 * vmshift_http_new(), and the options' own copies are still freed by
 * vmshift_http_options_free().
 *
 * Returns: (transfer full): the options, or NULL with VMSHIFT_ERROR_CONFIG
 *   (or the credentials file's error) naming the file, backend and key.
 */
VmshiftHttpOptions *vmshift_http_options_new_from_config(const VmshiftConfig *config,
                                                         VmshiftHttpAuth default_auth,
                                                         GError **error);

/**
 * vmshift_http_options_free:
 *
 * Frees options from vmshift_http_options_new_from_config(), wiping the
 * password they own. NULL is ignored. Never call it on caller-built options.
 */
void vmshift_http_options_free(VmshiftHttpOptions *options);

/**
 * vmshift_http_auth_from_string:
 * @name: "none", "basic", "ntlm" or "negotiate" (case-insensitive)
 * @out: the scheme
 *
 * Returns: FALSE when @name is none of these.
 */
gboolean vmshift_http_auth_from_string(const char *name, VmshiftHttpAuth *out);

/**
 * VmshiftHttp:
 *
 * A connection to one HTTP(S) endpoint; see the top of this header.
 */
typedef struct _VmshiftHttp VmshiftHttp;

/**
 * vmshift_http_new:
 * @options: the options (copied)
 * @error: return location for an error
 *
 * Makes a handle. Nothing is sent yet. Fails with
 * VMSHIFT_ERROR_INVALID_ARGUMENT for a missing or malformed URL, a URL with
 * user:password@, a scheme other than https (or http with
 * @allow_unencrypted), a scheme that needs credentials without them, or
 * VMSHIFT_ERROR_CONFIG when @ca_file cannot be read.
 *
 * Returns: (transfer full): the handle, or NULL with @error set.
 */
VmshiftHttp *vmshift_http_new(const VmshiftHttpOptions *options, GError **error);

/**
 * vmshift_http_new_sharing:
 * @http: a handle
 *
 * Makes a second handle with @http's options, credentials and timeouts and
 * the same cookie jar, for another thread (long polls). Either may be
 * freed first.
 *
 * Returns: (transfer full): the new handle.
 */
VmshiftHttp *vmshift_http_new_sharing(VmshiftHttp *http);

/** vmshift_http_free: frees a handle (NULL is ignored); wipes its password. */
void vmshift_http_free(VmshiftHttp *http);

/**
 * vmshift_http_get_url:
 *
 * Returns: (transfer none): the handle's base URL (never carries
 *   credentials), for messages.
 */
const char *vmshift_http_get_url(VmshiftHttp *http);

/**
 * vmshift_http_get_credentials:
 *
 * Returns: (transfer none) (nullable): the handle's copy of the
 *   credentials, e.g. for a SOAP Login; valid until the handle is freed.
 */
const VmshiftCredentials *vmshift_http_get_credentials(VmshiftHttp *http);

/**
 * vmshift_http_set_timeout:
 * @http: a handle
 * @timeout_ms: the whole-request limit for later requests on this handle;
 *   0 restores the handle's configured value, G_MAXUINT means none
 *
 * Changes the request timeout, e.g. for a long poll on its own handle
 * (vSphere WaitForUpdatesEx with maxWaitSeconds=N wants a bit more than N).
 */
void vmshift_http_set_timeout(VmshiftHttp *http, guint timeout_ms);

/**
 * vmshift_http_get_cookie:
 * @http: a handle
 * @name: a cookie name, e.g. "vmware_soap_session"
 *
 * Returns: (transfer full) (nullable): the value of the cookie @name the
 *   peer set (for any path of the handle's host), or NULL. Free with
 *   g_free(). Session cookies are secrets: never log them.
 */
char *vmshift_http_get_cookie(VmshiftHttp *http, const char *name);

/**
 * vmshift_http_clear_cookies:
 *
 * Forgets every cookie of the jar (shared with vmshift_http_new_sharing()
 * handles), e.g. before a vSphere re-Login, which fails with InvalidLogin
 * while a valid session cookie is sent.
 */
void vmshift_http_clear_cookies(VmshiftHttp *http);

/**
 * VmshiftHttpResponse:
 * @status: the HTTP status code (200, 401, 500, …)
 * @body: the body (possibly empty, never NULL)
 * @content_type: (nullable): the Content-Type header, if any
 * @url: the request's URL (without credentials), for messages
 * @method: the request's method, for messages
 *
 * A reply. Headers are read with vmshift_http_response_get_header().
 * Free with vmshift_http_response_free().
 */
typedef struct _VmshiftHttpResponse VmshiftHttpResponse;
struct _VmshiftHttpResponse {
    guint status;
    GBytes *body;
    char *content_type;
    char *url;
    char *method;
    /*< private >*/
    GPtrArray *headers_;
    char *reason_;
};

/** vmshift_http_response_free: frees @response (NULL is ignored). */
void vmshift_http_response_free(VmshiftHttpResponse *response);

/**
 * vmshift_http_response_get_header:
 * @response: a response
 * @name: a header name (case-insensitive)
 *
 * Returns: (transfer none) (nullable): the value of the last header @name
 *   of the final reply (not of 401/100 interim replies), trimmed, or NULL.
 */
const char *vmshift_http_response_get_header(const VmshiftHttpResponse *response, const char *name);

/**
 * vmshift_http_response_get_header_names:
 *
 * Returns: (transfer full): the header names of the final reply, in order
 *   (duplicates repeated). Free with g_strfreev().
 */
char **vmshift_http_response_get_header_names(const VmshiftHttpResponse *response);

/**
 * vmshift_http_response_get_body:
 * @response: a response
 * @len: (out) (optional): the body's length
 *
 * Returns: (transfer none): the body, NUL-terminated for convenience (the
 *   terminator is not counted in @len).
 */
const char *vmshift_http_response_get_body(const VmshiftHttpResponse *response, gsize *len);

/**
 * vmshift_http_request:
 * @http: a handle
 * @method: "GET", "POST", "PUT", "DELETE", …
 * @path_or_url: a reference resolved against the base URL as a link in
 *   a page at that URL would be (RFC 3986: "/sdk" replaces the path,
 *   "wsman" replaces its last segment, "?x=1" the query), an absolute URL
 *   on any host (same scheme rules as the base URL), or NULL for the base
 *   URL itself
 * @headers: (nullable): NULL-terminated "Name: value" headers for this
 *   request, sent after the handle's own (@headers of the options);
 *   "Name:" removes a header libcurl would add (Accept, Expect, …)
 * @body: (nullable): the request body
 * @len: its length
 * @cancellable: (nullable): aborts the request, also while it waits for
 *   the peer (within about a second)
 * @error: return location for an error
 *
 * Sends one request and reads the whole reply. Redirects are not
 * followed (the 3xx reply is returned). A peer that asks for HTTP
 * authentication (401) gets it once, with the handle's scheme; a 401 after
 * that is returned as a response (see vmshift_http_response_check()).
 *
 * Returns: (transfer full): the response whatever its status, or NULL with
 *   @error set when no complete HTTP reply arrived.
 */
VmshiftHttpResponse *vmshift_http_request(VmshiftHttp *http, const char *method,
                                          const char *path_or_url, const char *const *headers,
                                          const void *body, gsize len, GCancellable *cancellable,
                                          GError **error);

/**
 * vmshift_http_request_once:
 * @http: a handle
 * @method: as for vmshift_http_request()
 * @path_or_url: as for vmshift_http_request()
 * @headers: (nullable): as for vmshift_http_request()
 * @body: (nullable): the request body
 * @len: its length
 * @cancellable: (nullable): as for vmshift_http_request()
 * @error: return location for an error
 *
 * vmshift_http_request() for a request that must never reach the server
 * twice (a call that changes something, e.g. a WS-Management Invoke).
 * libcurl sends a request again by itself when a kept-alive connection
 * turns out to be dead after the request went out and before any reply
 * came ("Connection died, retrying a fresh connect"), POST included; for
 * this request that resend is refused and the request fails with
 * VMSHIFT_ERROR_CONNECTION ("… not sent again, the server may have carried
 * it out"): the caller must find out from the server what happened. A
 * body sent again after a complete reply that asks for it (a 401
 * authentication challenge) is still sent, and the connection is kept
 * alive as for any request. A request without a body is sent as by
 * vmshift_http_request(). Since: 1.1
 *
 * Returns: (transfer full): the response whatever its status, or NULL with
 *   @error set.
 */
VmshiftHttpResponse *vmshift_http_request_once(VmshiftHttp *http, const char *method,
                                               const char *path_or_url, const char *const *headers,
                                               const void *body, gsize len,
                                               GCancellable *cancellable, GError **error);

/**
 * vmshift_http_response_check:
 * @response: a response
 * @error: return location for an error
 *
 * Turns a non-2xx status into an error naming the method, URL and status:
 * 401 and 403 → VMSHIFT_ERROR_AUTH_FAILED ("… check user and password in
 * the credentials file and auth="), 404 → VMSHIFT_ERROR_NOT_FOUND,
 * 408 and 504 → VMSHIFT_ERROR_TIMEOUT, 503 → VMSHIFT_ERROR_BUSY, others →
 * VMSHIFT_ERROR_PROTOCOL.
 *
 * Returns: TRUE when the status is 2xx.
 */
gboolean vmshift_http_response_check(const VmshiftHttpResponse *response, GError **error);

/**
 * vmshift_redact:
 * @text: (nullable): a URL, header block, request line or body
 *
 * Hides secrets in text meant for logs and messages:
 *  - user:password@ in URLs (the userinfo becomes "***");
 *  - the values of Authorization, Proxy-Authorization, Cookie, Set-Cookie,
 *    vmware-api-session-id and X-Auth-Token headers;
 *  - the content of XML elements whose local name contains "password"
 *    (case-insensitive: vSphere's Login <password>, <ns:Password>, …) and
 *    "sessionCookie"/"ticket" elements;
 *  - password=… in key=value text.
 *
 * Returns: (transfer full): the redacted text ("" for NULL). Free with
 *   g_free().
 */
char *vmshift_redact(const char *text);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(VmshiftHttp, vmshift_http_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(VmshiftHttpOptions, vmshift_http_options_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(VmshiftHttpResponse, vmshift_http_response_free)

G_END_DECLS

#endif /* VMSHIFT_HTTP_H */
