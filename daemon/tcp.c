/*
 * vmshiftd: the API and the web view on TCP with TLS (#17).
 *
 * Off unless [vmshiftd] listen=ADDRESS:PORT is set, with tls-cert= and
 * tls-key= (PEM files): there is no plain-text TCP. Who asks is then:
 *
 *   - a client certificate, when client-ca= names the CA that signs them:
 *     its subject's common name must be listed in admin-certs= (changes)
 *     or read-certs= (reading), ';'-separated;
 *   - a bearer token (Authorization: Bearer TOKEN) from the file tokens=,
 *     which must be 0600 (or stricter) and hold lines "read NAME TOKEN" or
 *     "admin NAME TOKEN" ('#' starts a comment);
 *   - a browser session: POST /login with a token (a form) sets an HttpOnly,
 *     Secure, SameSite=Strict cookie for 12 hours.
 *
 * Anything else gets 401. Changes are refused when a browser says the
 * request comes from another site (Origin or Sec-Fetch-Site), on TCP and on
 * the socket alike, besides the Content-Type: application/json every POST
 * needs (api.c): a cross-site page cannot start a job.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon/daemon.h"

#define SESSION_COOKIE "vmshiftd_session"
#define SESSION_SECONDS (12 * 3600)

typedef struct {
    char *name;
    char *token;
    gboolean admin;
} DaemonToken;

typedef struct {
    char *name;
    gboolean admin;
    gint64 expires;
} DaemonWebSession;

static void
token_free(DaemonToken *t)
{
    if (t->token)
        memset(t->token, 0, strlen(t->token));
    g_free(t->token);
    g_free(t->name);
    g_free(t);
}

static void
web_session_free(DaemonWebSession *s)
{
    g_free(s->name);
    g_free(s);
}

gboolean
daemon_tcp_config_key(Daemon *d, const char *path, const char *key, char *value, GError **error)
{
    char **slot = NULL;

    if (!strcmp(key, "listen"))
        slot = &d->listen;
    else if (!strcmp(key, "tls-cert"))
        slot = &d->tls_cert;
    else if (!strcmp(key, "tls-key"))
        slot = &d->tls_key;
    else if (!strcmp(key, "tokens"))
        slot = &d->tokens_path;
    else if (!strcmp(key, "client-ca"))
        slot = &d->client_ca;
    else if (!strcmp(key, "admin-certs") || !strcmp(key, "read-certs")) {
        char ***list = key[0] == 'a' ? &d->admin_certs : &d->read_certs;
        g_strfreev(*list);
        *list = g_strsplit(value, ";", -1);
        for (guint i = 0; (*list)[i]; i++)
            g_strstrip((*list)[i]);
        return TRUE;
    } else
        return FALSE;
    if (!*value || (strcmp(key, "listen") != 0 && !g_path_is_absolute(value))) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_CONFIG,
                    "%s: [vmshiftd]: %s must be %s, not '%s'", path, key,
                    strcmp(key, "listen") ? "an absolute path" : "ADDRESS:PORT", value);
        return FALSE;
    }
    g_free(*slot);
    *slot = g_strdup(value);
    return TRUE;
}

/* Reads the tokens file: 0600 or stricter, "read|admin NAME TOKEN" lines. */
static gboolean
load_tokens(Daemon *d, GError **error)
{
    const char *path = d->tokens_path;
    g_autofree char *text = NULL;
    g_auto(GStrv) lines = NULL;
    struct stat st;

    if (stat(path, &st) != 0) {
        int e = errno;
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_CONFIG, "tokens file %s: %s", path,
                    g_strerror(e));
        return FALSE;
    }
    if (st.st_mode & 077) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_CONFIG,
                    "tokens file %s is mode %04o: it must be 0600 (readable by its owner only)",
                    path, (unsigned)(st.st_mode & 07777));
        return FALSE;
    }
    if (!host_read_file(path, "tokens file", 1024 * 1024, &text, error))
        return FALSE;
    d->tokens = g_ptr_array_new_with_free_func((GDestroyNotify)token_free);
    lines = g_strsplit(text, "\n", -1);
    memset(text, 0, strlen(text));
    for (guint i = 0; lines[i]; i++) {
        g_auto(GStrv) f = NULL;
        DaemonToken *t;
        char *hash = strchr(lines[i], '#');
        if (hash)
            *hash = 0;
        f = g_strsplit_set(g_strstrip(lines[i]), " \t", -1);
        if (!f[0] || !*f[0])
            continue;
        {
            /* drop the empty fields of repeated blanks */
            guint n = 0;
            for (guint k = 0; f[k]; k++)
                if (*f[k])
                    f[n++] = f[k];
                else
                    g_free(f[k]);
            f[n] = NULL;
            if (n != 3 || (strcmp(f[0], "read") && strcmp(f[0], "admin")) || strlen(f[2]) < 16) {
                g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_CONFIG,
                            "tokens file %s, line %u: expected 'read|admin NAME TOKEN' with a "
                            "token of 16 characters or more",
                            path, i + 1);
                return FALSE;
            }
        }
        t = g_new0(DaemonToken, 1);
        t->admin = !strcmp(f[0], "admin");
        t->name = g_strdup(f[1]);
        t->token = g_strdup(f[2]);
        g_ptr_array_add(d->tokens, t);
    }
    for (guint i = 0; lines[i]; i++)
        memset(lines[i], 0, strlen(lines[i]));
    return TRUE;
}

/* A client certificate is taken in the handshake whatever it is, so that a
 * bad one gets a clear 401 rather than a reset connection; client_cn()
 * verifies it against client-ca= before its name counts. */
static gboolean
on_accept_certificate(SoupServerMessage *msg, GTlsCertificate *cert, GTlsCertificateFlags errors,
                      gpointer data)
{
    return TRUE;
}

static void
on_request_started(SoupServer *server, SoupServerMessage *msg, gpointer data)
{
    g_signal_connect(msg, "accept-certificate", G_CALLBACK(on_accept_certificate), data);
}

gboolean
daemon_tcp_listen(Daemon *d, GError **error)
{
    g_autoptr(GTlsCertificate) cert = NULL;
    g_autoptr(GSocketAddress) addr = NULL;
    g_autoptr(GSocketConnectable) na = NULL;

    if (!d->listen)
        return TRUE;
    if (!d->tls_cert || !d->tls_key) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_CONFIG,
                    "[vmshiftd] listen=%s needs tls-cert= and tls-key= (no plain-text TCP)",
                    d->listen);
        return FALSE;
    }
    if (!d->tokens_path && !d->client_ca) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_CONFIG,
                    "[vmshiftd] listen=%s needs tokens= or client-ca= (who may ask)", d->listen);
        return FALSE;
    }
    na = g_network_address_parse(d->listen, 0, NULL);
    if (!na || !g_network_address_get_port(G_NETWORK_ADDRESS(na))
        || !(addr = g_inet_socket_address_new_from_string(
                 g_network_address_get_hostname(G_NETWORK_ADDRESS(na)),
                 g_network_address_get_port(G_NETWORK_ADDRESS(na))))) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_CONFIG,
                    "[vmshiftd] listen=%s: not a numeric ADDRESS:PORT (127.0.0.1:8443, [::1]:8443)",
                    d->listen);
        return FALSE;
    }
    if (d->tokens_path && !load_tokens(d, error))
        return FALSE;
    cert = g_tls_certificate_new_from_files(d->tls_cert, d->tls_key, error);
    if (!cert) {
        g_prefix_error(error, "[vmshiftd] tls-cert=%s, tls-key=%s: ", d->tls_cert, d->tls_key);
        return FALSE;
    }
    soup_server_set_tls_certificate(d->server, cert);
    if (d->client_ca) {
        g_autoptr(GTlsDatabase) db = g_tls_file_database_new(d->client_ca, error);
        if (!db) {
            g_prefix_error(error, "[vmshiftd] client-ca=%s: ", d->client_ca);
            return FALSE;
        }
        d->client_ca_certs = g_tls_certificate_list_new_from_file(d->client_ca, error);
        if (!d->client_ca_certs) {
            g_prefix_error(error, "[vmshiftd] client-ca=%s: ", d->client_ca);
            return FALSE;
        }
        soup_server_set_tls_database(d->server, db);
        soup_server_set_tls_auth_mode(d->server, G_TLS_AUTHENTICATION_REQUESTED);
        g_signal_connect(d->server, "request-started", G_CALLBACK(on_request_started), d);
    }
    d->web_sessions = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
                                            (GDestroyNotify)web_session_free);
    if (!soup_server_listen(d->server, addr, SOUP_SERVER_LISTEN_HTTPS, error)) {
        g_prefix_error(error, "[vmshiftd] listen=%s: ", d->listen);
        return FALSE;
    }
    return TRUE;
}

void
daemon_tcp_clear(Daemon *d)
{
    g_clear_pointer(&d->tokens, g_ptr_array_unref);
    g_clear_pointer(&d->web_sessions, g_hash_table_unref);
    g_clear_pointer(&d->listen, g_free);
    g_clear_pointer(&d->tls_cert, g_free);
    g_clear_pointer(&d->tls_key, g_free);
    g_clear_pointer(&d->tokens_path, g_free);
    g_clear_pointer(&d->client_ca, g_free);
    g_clear_pointer(&d->admin_certs, g_strfreev);
    g_clear_pointer(&d->read_certs, g_strfreev);
    g_list_free_full(g_steal_pointer(&d->client_ca_certs), g_object_unref);
}

gboolean
daemon_message_is_tcp(SoupServerMessage *msg)
{
    return G_IS_INET_SOCKET_ADDRESS(soup_server_message_get_local_address(msg));
}

/* Compares without stopping at the first difference. */
static gboolean
same_secret(const char *a, const char *b)
{
    gsize la = strlen(a), lb = strlen(b);
    unsigned char diff = la != lb;

    for (gsize i = 0; i < la; i++)
        diff |= (unsigned char)a[i] ^ (unsigned char)b[i % (lb ? lb : 1)];
    return diff == 0;
}

static const DaemonToken *
find_token(Daemon *d, const char *secret)
{
    const DaemonToken *found = NULL;

    for (guint i = 0; d->tokens && i < d->tokens->len; i++) {
        const DaemonToken *t = g_ptr_array_index(d->tokens, i);
        if (same_secret(t->token, secret))
            found = t;
    }
    return found;
}

/* The value of cookie @name in the request, or NULL. */
static char *
request_cookie(SoupServerMessage *msg, const char *name)
{
    SoupMessageHeaders *h = soup_server_message_get_request_headers(msg);
    const char *header = soup_message_headers_get_list(h, "Cookie");
    g_autoptr(GHashTable) cookies = header ? soup_header_parse_semi_param_list(header) : NULL;
    const char *v = cookies ? g_hash_table_lookup(cookies, name) : NULL;

    return v ? g_strdup(v) : NULL;
}

/* Whether @cert is signed by one of the client-ca= certificates and valid
 * now. */
static gboolean
client_cert_valid(Daemon *d, GTlsCertificate *cert)
{
    for (GList *l = d->client_ca_certs; l; l = l->next)
        if (g_tls_certificate_verify(cert, NULL, l->data) == 0)
            return TRUE;
    return FALSE;
}

/* The common name of the verified client certificate, or NULL. */
static char *
client_cn(Daemon *d, SoupServerMessage *msg)
{
    GTlsCertificate *cert = soup_server_message_get_tls_peer_certificate(msg);
    g_autofree char *dn = NULL;
    g_auto(GStrv) parts = NULL;

    if (!cert || !client_cert_valid(d, cert))
        return NULL;
    g_object_get(cert, "subject-name", &dn, NULL);
    if (!dn)
        return NULL;
    parts = g_strsplit(dn, ",", -1);
    for (guint i = 0; parts[i]; i++) {
        const char *p = g_strstrip(parts[i]);
        if (g_str_has_prefix(p, "CN="))
            return g_strdup(p + 3);
    }
    return NULL;
}

gboolean
daemon_tcp_caller(Daemon *d, SoupServerMessage *msg, DaemonCaller *c)
{
    SoupMessageHeaders *h = soup_server_message_get_request_headers(msg);
    const char *auth = soup_message_headers_get_one(h, "Authorization");
    const char *from = soup_server_message_get_remote_host(msg);
    g_autofree char *cn = client_cn(d, msg);
    g_autofree char *sid = NULL;

    memset(c, 0, sizeof *c);
    c->uid = -1;
    if (cn && d->admin_certs && g_strv_contains((const char *const *)d->admin_certs, cn)) {
        c->can_change = c->can_read = TRUE;
    } else if (cn && d->read_certs && g_strv_contains((const char *const *)d->read_certs, cn)) {
        c->can_read = TRUE;
    }
    if (c->can_read) {
        c->name = g_strdup_printf("certificate '%s' (%s)", cn, from ? from : "?");
        return TRUE;
    }
    if (auth && g_ascii_strncasecmp(auth, "Bearer ", 7) == 0) {
        const DaemonToken *t = find_token(d, auth + 7);
        if (!t)
            return FALSE;
        c->can_read = TRUE;
        c->can_change = t->admin;
        c->name = g_strdup_printf("token '%s' (%s, %s)", t->name, t->admin ? "admin" : "read",
                                  from ? from : "?");
        return TRUE;
    }
    sid = request_cookie(msg, SESSION_COOKIE);
    if (sid && d->web_sessions) {
        DaemonWebSession *s = g_hash_table_lookup(d->web_sessions, sid);
        if (s && s->expires > g_get_real_time() / G_USEC_PER_SEC) {
            c->can_read = TRUE;
            c->can_change = s->admin;
            c->by_cookie = TRUE;
            c->name = g_strdup_printf("token '%s' (%s, web, %s)", s->name,
                                      s->admin ? "admin" : "read", from ? from : "?");
            return TRUE;
        }
        if (s)
            g_hash_table_remove(d->web_sessions, sid);
    }
    return FALSE;
}

gboolean
daemon_cross_site(SoupServerMessage *msg, char **why)
{
    SoupMessageHeaders *h = soup_server_message_get_request_headers(msg);
    const char *origin = soup_message_headers_get_one(h, "Origin");
    const char *site = soup_message_headers_get_one(h, "Sec-Fetch-Site");
    const char *host = soup_message_headers_get_one(h, "Host");
    GUri *uri = soup_server_message_get_uri(msg);
    g_autofree char *own = NULL;

    if (site && strcmp(site, "same-origin") != 0 && strcmp(site, "none") != 0) {
        *why = g_strdup_printf("a %s request (Sec-Fetch-Site)", site);
        return TRUE;
    }
    if (!origin)
        return FALSE;
    own = g_strdup_printf("%s://%s", g_uri_get_scheme(uri), host ? host : "");
    if (g_ascii_strcasecmp(origin, own) != 0) {
        *why = g_strdup_printf("a request from origin %s to %s", origin, own);
        return TRUE;
    }
    return FALSE;
}

/* ---- /login: a form that turns a token into a session cookie ----------------------- */

static void
login_page(Daemon *d, SoupServerMessage *msg, guint status, const char *note)
{
    g_autofree char *esc = g_markup_escape_text(note ? note : "", -1);
    g_autofree char *html = g_strdup_printf(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        "<title>vmshiftd: sign in</title>"
        "<link rel=\"stylesheet\" href=\"/static/style.css\"></head><body>"
        "<header><h1>vmshiftd</h1></header><main><h2>Sign in</h2>"
        "<p class=\"note\">%s</p>"
        "<form method=\"post\" action=\"/login\" id=\"login\">"
        "<label>Token <input type=\"password\" name=\"token\" id=\"token\" "
        "autocomplete=\"current-password\" required></label> "
        "<button type=\"submit\">Sign in</button></form></main></body></html>\n",
        esc);
    gsize len = strlen(html);

    soup_server_message_set_status(msg, status, NULL);
    soup_server_message_set_response(msg, "text/html; charset=utf-8", SOUP_MEMORY_TAKE,
                                     g_steal_pointer(&html), len);
}

static gboolean
random_bytes(guint8 *buf, gsize len)
{
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    gboolean ok;

    if (fd < 0)
        return FALSE;
    ok = read(fd, buf, len) == (ssize_t)len;
    close(fd);
    return ok;
}

void
daemon_tcp_login(Daemon *d, SoupServerMessage *msg)
{
    const char *method = soup_server_message_get_method(msg);
    g_autoptr(GBytes) body = NULL;
    g_autoptr(GHashTable) form = NULL;
    g_autofree char *data = NULL, *why = NULL;
    const char *token;
    const DaemonToken *t;
    guint8 raw[24];
    g_autofree char *sid = NULL, *cookie = NULL;
    DaemonWebSession *s;

    if (!daemon_message_is_tcp(msg) || !d->web_sessions) {
        login_page(d, msg, SOUP_STATUS_NOT_FOUND,
                   "Signing in is for TCP; on the socket, who you are is your user.");
        return;
    }
    if (strcmp(method, "POST") != 0) {
        login_page(d, msg, SOUP_STATUS_OK, "A read or admin token of this vmshiftd.");
        return;
    }
    if (daemon_cross_site(msg, &why)) {
        d->refused++;
        login_page(d, msg, SOUP_STATUS_FORBIDDEN, why);
        return;
    }
    body = soup_message_body_flatten(soup_server_message_get_request_body(msg));
    data = g_strndup(g_bytes_get_data(body, NULL), MIN(g_bytes_get_size(body), 4096));
    form = soup_form_decode(data);
    token = form ? g_hash_table_lookup(form, "token") : NULL;
    t = token ? find_token(d, token) : NULL;
    if (!t) {
        d->refused++;
        login_page(d, msg, SOUP_STATUS_UNAUTHORIZED, "That token is not known here.");
        return;
    }
    if (!random_bytes(raw, sizeof raw)) {
        login_page(d, msg, SOUP_STATUS_INTERNAL_SERVER_ERROR, "No random source for a session.");
        return;
    }
    sid = g_compute_checksum_for_data(G_CHECKSUM_SHA256, raw, sizeof raw);
    s = g_new0(DaemonWebSession, 1);
    s->name = g_strdup(t->name);
    s->admin = t->admin;
    s->expires = g_get_real_time() / G_USEC_PER_SEC + SESSION_SECONDS;
    g_hash_table_replace(d->web_sessions, g_strdup(sid), s);
    cookie = g_strdup_printf("%s=%s; Path=/; Max-Age=%d; HttpOnly; Secure; SameSite=Strict",
                             SESSION_COOKIE, sid, SESSION_SECONDS);
    soup_message_headers_append(soup_server_message_get_response_headers(msg), "Set-Cookie",
                                cookie);
    soup_server_message_set_redirect(msg, SOUP_STATUS_SEE_OTHER, "/");
}
