/*
 * vmshift Hyper-V plugin: the connection to each host (WS-Man transport,
 * NTLM, open/close, host lookup).
 * Facts and sources: docs/design/hyperv.md.
 */
#include "config.h"

#include <string.h>

#include <vmshift/vmshift.h>
#include <vmshift/http.h>

#include "hyperv.h"
#include "ntlm.h"

#define HV_MAX_PAGES 1000                      /* Pull requests per enumeration before giving up */
#define HV_MAX_ELEMENTS 100                    /* items per Enumerate/Pull reply */
#define HV_DEFAULT_URL "https://%s:5986/wsman" /* WinRM over HTTPS, its default port */

static void
hv_host_free(HvHost *h)
{
    g_free(h->url);
    g_free(h->name);
    g_free(h->dest_name);
    vmshift_http_free(h->http);
    g_clear_error(&h->open_error);
    g_free(h->product);
    if (h->warned != NULL)
        g_hash_table_unref(h->warned);
    g_mutex_clear(&h->lock);
    g_mutex_clear(&h->connect_lock);
    g_free(h);
}

const char *
hv_host_label(const HvHost *h)
{
    return h->name != NULL ? h->name : h->url;
}

int
hv_fault_code(const HvResponse *r)
{
    const char *sub = r->fault_subcode != NULL ? r->fault_subcode : "";

    if (g_str_has_suffix(sub, ":AccessDenied"))
        return VMSHIFT_ERROR_AUTH_FAILED;
    if (g_str_has_suffix(sub, ":DestinationUnreachable"))
        return VMSHIFT_ERROR_NOT_FOUND;
    if (g_str_has_suffix(sub, ":TimedOut"))
        return VMSHIFT_ERROR_TIMEOUT;
    return VMSHIFT_ERROR_PROTOCOL;
}

static void
free_secret(char *s)
{
    if (s != NULL) {
        explicit_bzero(s, strlen(s));
        g_free(s);
    }
}

/* The scheme of the server's (last) WWW-Authenticate offer, or "none". */
static char *
offered_scheme(const VmshiftHttpResponse *resp)
{
    const char *www = vmshift_http_response_get_header(resp, "WWW-Authenticate");
    const char *sp;

    if (www == NULL || *www == '\0')
        return g_strdup("none");
    sp = strchr(www, ' ');
    return g_strndup(www, sp != NULL ? (gsize)(sp - www) : strlen(www));
}

/* POSTs an envelope once: libcurl may not send it again by itself (an
 * Invoke changes something; issue 13: never resent automatically), or as
 * any request (reads: Get, Enumerate, Pull, which may be repeated). */
static VmshiftHttpResponse *
post_env(HvHost *h, gboolean once, const char *const *hdrs, const char *env, GCancellable *c,
         GError **error)
{
    return once ? vmshift_http_request_once(h->http, "POST", NULL, hdrs, env, strlen(env), c, error)
                : vmshift_http_request(h->http, "POST", NULL, hdrs, env, strlen(env), c, error);
}

/*
 * NTLM in the Negotiate scheme (MS-WSMV 2.2.9.1.1.1; MS-NLMP): NEGOTIATE
 * with an empty body, CHALLENGE in the 401, AUTHENTICATE with the envelope.
 * Returns the reply to the envelope, or NULL with an error.
 */
static VmshiftHttpResponse *
ntlm_handshake(HvHost *h, const char *env, gboolean once, const char *what, GCancellable *c,
               GError **error)
{
    const VmshiftCredentials *cr = vmshift_http_get_credentials(h->http);
    g_autofree char *neg = hv_ntlm_negotiate_b64();
    g_autofree char *hdr1 = g_strconcat("Authorization: Negotiate ", neg, NULL);
    const char *hdrs[] = { hdr1, NULL };
    g_autoptr(VmshiftHttpResponse) r1 = NULL;
    VmshiftHttpResponse *r2;
    g_autoptr(GError) local = NULL;
    g_autofree char *chal = NULL;
    const char *www;
    char *tok, *hdr3;

    h->ntlm_ready = FALSE;
    r1 = vmshift_http_request(h->http, "POST", NULL, hdrs, NULL, 0, c, error);
    if (r1 == NULL)
        return NULL;
    www = vmshift_http_response_get_header(r1, "WWW-Authenticate");
    if (r1->status != 401 || www == NULL || g_ascii_strncasecmp(www, "Negotiate ", 10) != 0) {
        g_autofree char *offer = offered_scheme(r1);
        if (r1->status == 401)
            g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_AUTH_FAILED,
                        "Hyper-V host %s: %s: the host does not take NTLM in the Negotiate "
                        "scheme (HTTP 401, it offers %s); set auth= to what the host's "
                        "WinRM service allows",
                        hv_host_label(h), what, offer);
        else
            g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_PROTOCOL,
                        "Hyper-V host %s: %s: HTTP %u to the NTLM negotiate message, "
                        "expected 401 with a challenge",
                        hv_host_label(h), what, r1->status);
        return NULL;
    }
    chal = g_strstrip(g_strdup(www + 10));
    tok = hv_ntlm_authenticate_b64(chal, cr->user, cr->domain, cr->password, &local);
    if (tok == NULL) {
        g_set_error(error, VMSHIFT_ERROR, local->code, "Hyper-V host %s: %s: %s", hv_host_label(h),
                    what, local->message);
        return NULL;
    }
    hdr3 = g_strconcat("Authorization: Negotiate ", tok, NULL);
    free_secret(tok);
    hdrs[0] = hdr3;
    r2 = post_env(h, once, hdrs, env, c, error);
    free_secret(hdr3);
    if (r2 != NULL && r2->status != 401)
        h->ntlm_ready = TRUE;
    return r2;
}

/* POSTs one envelope with the configured authentication; @once: an Invoke. */
static VmshiftHttpResponse *
hv_post(HvHost *h, const char *env, gboolean once, const char *what, GCancellable *c,
        GError **error)
{
    VmshiftHttpResponse *resp;

    if (h->auth != VMSHIFT_HTTP_AUTH_NTLM)
        return post_env(h, once, NULL, env, c, error);
    g_mutex_lock(&h->lock);
    if (h->ntlm_ready) {
        resp = post_env(h, once, NULL, env, c, error);
        if (resp == NULL || resp->status != 401) {
            g_mutex_unlock(&h->lock);
            return resp;
        }
        /* The authenticated connection is gone (closed by the server or
         * lost): authenticate the new one. */
        g_debug("Hyper-V host %s: connection not authenticated any more; NTLM again",
                hv_host_label(h));
        vmshift_http_response_free(resp);
    }
    resp = ntlm_handshake(h, env, once, what, c, error);
    g_mutex_unlock(&h->lock);
    return resp;
}

/*
 * Sends one envelope and parses the reply.  SOAP faults, HTTP errors and
 * malformed replies all become one-line errors naming the host and what
 * was asked.
 */
static HvResponse *
hv_call(HvHost *h, const char *action, const char *uri, const char *const *selectors,
        const char *body, const char *what, GCancellable *cancellable, GError **error)
{
    g_autofree char *msgid = hv_message_id();
    g_autofree char *env = hv_envelope(h->url, action, uri, selectors, msgid, body);
    g_autoptr(VmshiftHttpResponse) resp = NULL;
    g_autoptr(HvResponse) r = NULL;
    g_autoptr(GError) local = NULL;
    g_autofree char *label = NULL;
    const char *buf;
    gsize len;
    gboolean once;

    /* Get, Enumerate, Pull, Release read; any other action is an Invoke. */
    once = strcmp(action, HV_A_GET) != 0 && strcmp(action, HV_A_ENUM) != 0
           && strcmp(action, HV_A_PULL) != 0 && strcmp(action, HV_A_RELEASE) != 0;
    resp = hv_post(h, env, once, what, cancellable, &local);
    if (resp == NULL) {
        if (local->code == VMSHIFT_ERROR_AUTH_FAILED && local->domain == VMSHIFT_ERROR
            && g_str_has_prefix(local->message, "Hyper-V host ")) {
            g_propagate_error(error, g_steal_pointer(&local));
            return NULL;
        }
        if (g_error_matches(local, G_IO_ERROR, G_IO_ERROR_CANCELLED)) {
            g_propagate_error(error, g_steal_pointer(&local));
            return NULL;
        }
        g_set_error(error, local->domain, local->code, "Hyper-V host %s: %s: %s", hv_host_label(h),
                    what, local->message);
        return NULL;
    }
    buf = vmshift_http_response_get_body(resp, &len);
    label = g_strdup_printf("%s reply from %s", what, vmshift_http_get_url(h->http));
    if (resp->status == 200
        || ((resp->status == 400 || resp->status == 500) && len > 0 && resp->content_type != NULL
            && strstr(resp->content_type, "xml") != NULL)) {
        r = hv_response_parse(buf, len, label, &local);
        if (r == NULL && once) {
            /* An Invoke's reply that cannot be read (truncated, garbled):
             * the host may have carried it out, as with no reply at all
             * (issue 13); the caller finds out from the host. */
            g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_CONNECTION,
                        "Hyper-V host %s: %s: reply unreadable (%s); the host may have "
                        "carried it out",
                        hv_host_label(h), what, local->message);
            return NULL;
        }
        if (r == NULL) {
            g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_PROTOCOL, "Hyper-V host %s: %s: %s",
                        hv_host_label(h), what, local->message);
            return NULL;
        }
        if (r->is_fault) {
            g_autofree char *d = hv_fault_describe(r);
            g_set_error(error, VMSHIFT_ERROR, hv_fault_code(r), "Hyper-V host %s: %s: %s",
                        hv_host_label(h), what, d);
            return NULL;
        }
        if (resp->status != 200) {
            g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_PROTOCOL,
                        "Hyper-V host %s: %s: HTTP %u without a SOAP fault", hv_host_label(h), what,
                        resp->status);
            return NULL;
        }
        if (r->relates_to != NULL && strcmp(r->relates_to, msgid) != 0) {
            g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_PROTOCOL,
                        "Hyper-V host %s: %s: reply relates to another request", hv_host_label(h),
                        what);
            return NULL;
        }
        return g_steal_pointer(&r);
    }
    if (resp->status == 401) {
        g_autofree char *offer = offered_scheme(resp);
        if (h->auth == VMSHIFT_HTTP_AUTH_BASIC && g_ascii_strcasecmp(offer, "Basic") != 0) {
            g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_AUTH_FAILED,
                        "Hyper-V host %s: %s: HTTP 401 to Basic authentication; the host "
                        "wants %s (WinRM has Basic off by default): set auth=ntlm, or check "
                        "user and password",
                        hv_host_label(h), what,
                        g_ascii_strcasecmp(offer, "none") != 0 ? "Negotiate, i.e. NTLM or Kerberos"
                                                               : "another scheme");
            return NULL;
        }
        if (h->auth == VMSHIFT_HTTP_AUTH_NEGOTIATE) {
            /* libcurl's Negotiate is GSS-API (Kerberos): it never uses the
             * password from the credentials file. */
            g_autofree char *why = hv_krb_explain(h);
            if (why != NULL) {
                g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_AUTH_FAILED,
                            "Hyper-V host %s: %s: %s", hv_host_label(h), what, why);
                return NULL;
            }
            g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_AUTH_FAILED,
                        "Hyper-V host %s: %s: Negotiate (Kerberos) authentication refused "
                        "(HTTP 401); it needs a Kerberos ticket for the host (kinit) and "
                        "does not use the credentials file's password: set auth=ntlm to "
                        "log on with it",
                        hv_host_label(h), what);
            return NULL;
        }
        if (h->auth == VMSHIFT_HTTP_AUTH_NTLM) {
            g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_AUTH_FAILED,
                        "Hyper-V host %s: %s: NTLM authentication refused (HTTP 401); check "
                        "user, password and domain in the credentials file",
                        hv_host_label(h), what);
            return NULL;
        }
    }
    if (!vmshift_http_response_check(resp, &local) || TRUE) {
        if (local == NULL)
            g_set_error(&local, VMSHIFT_ERROR, VMSHIFT_ERROR_PROTOCOL, "HTTP %u", resp->status);
        g_set_error(error, local->domain, local->code, "Hyper-V host %s: %s: %s", hv_host_label(h),
                    what, local->message);
    }
    return NULL;
}

GPtrArray *
hv_wql(HvHost *h, const char *ns, const char *query, GCancellable *cancellable, GError **error)
{
    g_autofree char *uri = g_strconcat(HV_URI_BASE, ns, "/*", NULL);
    g_autofree char *eq = hv_xml_escape(query);
    g_autofree char *body = g_strdup_printf(
        "<n:Enumerate><w:OptimizeEnumeration/>"
        "<w:MaxElements>" G_STRINGIFY(HV_MAX_ELEMENTS) "</w:MaxElements>"
                                                       "<w:Filter Dialect=\"" HV_WQL
                                                       "\">%s</w:Filter></n:Enumerate>",
        eq);
    g_autoptr(GPtrArray) items = g_ptr_array_new_with_free_func((GDestroyNotify)hv_instance_free);
    g_autoptr(HvResponse) r = NULL;
    g_autofree char *what = g_strdup_printf("WQL \"%s\"", query);

    r = hv_call(h, HV_A_ENUM, uri, NULL, body, what, cancellable, error);
    if (r == NULL)
        return NULL;
    for (guint page = 0;; page++) {
        g_autofree char *ctx = NULL;
        g_autofree char *pull = NULL;
        while (r->items->len > 0)
            g_ptr_array_add(items, g_ptr_array_steal_index(r->items, 0));
        if (r->end_of_sequence || r->enum_context == NULL)
            break;
        if (page >= HV_MAX_PAGES) {
            g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_PROTOCOL,
                        "Hyper-V host %s: %s: enumeration does not end", hv_host_label(h), what);
            return NULL;
        }
        ctx = hv_xml_escape(r->enum_context);
        pull = g_strdup_printf(
            "<n:Pull><n:EnumerationContext>%s</n:EnumerationContext>"
            "<n:MaxElements>" G_STRINGIFY(HV_MAX_ELEMENTS) "</n:MaxElements></n:Pull>",
            ctx);
        g_clear_pointer(&r, hv_response_free);
        r = hv_call(h, HV_A_PULL, uri, NULL, pull, what, cancellable, error);
        if (r == NULL)
            return NULL;
    }
    return g_steal_pointer(&items);
}

HvInstance *
hv_get(HvHost *h, const char *uri, const char *const *sel, const char *what,
       GCancellable *cancellable, GError **error)
{
    g_autoptr(HvResponse) r = hv_call(h, HV_A_GET, uri, sel, "", what, cancellable, error);

    if (r == NULL)
        return NULL;
    if (r->body == NULL) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_PROTOCOL,
                    "Hyper-V host %s: %s: empty Get reply", hv_host_label(h), what);
        return NULL;
    }
    return g_steal_pointer(&r->body);
}

/* Invoke; returns the <M>_OUTPUT instance. */
HvInstance *
hv_invoke(HvHost *h, const char *uri, const char *method, const char *const *sel,
          const char *params, GCancellable *cancellable, GError **error)
{
    g_autofree char *action = g_strconcat(uri, "/", method, NULL);
    g_autofree char *body = g_strdup_printf("<p:%s_INPUT xmlns:p=\"%s\">%s</p:%s_INPUT>", method,
                                            uri, params, method);
    g_autoptr(HvResponse) r = hv_call(h, action, uri, sel, body, method, cancellable, error);
    g_autofree char *want = g_strconcat(method, "_OUTPUT", NULL);

    if (r == NULL)
        return NULL;
    if (r->body == NULL || g_strcmp0(r->body->cls, want) != 0) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_PROTOCOL,
                    "Hyper-V host %s: %s: reply has no %s", hv_host_label(h), method, want);
        return NULL;
    }
    return g_steal_pointer(&r->body);
}

HvInstance *
hv_first_of(HvHost *h, const char *ns, const char *query, GCancellable *c, GError **error)
{
    g_autoptr(GPtrArray) items = hv_wql(h, ns, query, c, error);

    if (items == NULL)
        return NULL;
    if (items->len == 0) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_NOT_FOUND,
                    "Hyper-V host %s: no result for WQL \"%s\"", hv_host_label(h), query);
        return NULL;
    }
    return g_ptr_array_steal_index(items, 0);
}

static gboolean
is_ip_literal(const char *host)
{
    g_autoptr(GInetAddress) a = g_inet_address_new_from_string(host);
    return a != NULL || g_ascii_strcasecmp(host, "localhost") == 0;
}

static HvInstance *
host_cs(HvHost *h, GCancellable *c, GError **error)
{
    g_autoptr(GPtrArray) items = NULL;
    /* The host is the Msvm_ComputerSystem that is not a VM; identify it by
     * Description's absence of the VM value, never by localized text
     * (docs/design/hyperv.md §1.7): take the one whose Name is not a GUID. */
    items = hv_wql(h, HV_NS_V2, "SELECT * FROM Msvm_ComputerSystem", c, error);
    if (items == NULL)
        return NULL;
    for (guint i = 0; i < items->len; i++) {
        HvInstance *inst = items->pdata[i];
        const char *name = hv_inst_get(inst, "Name");
        if (name != NULL && !g_uuid_string_is_valid(name))
            return g_ptr_array_steal_index(items, i);
    }
    g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_PROTOCOL,
                "Hyper-V host %s: no host Msvm_ComputerSystem", hv_host_label(h));
    return NULL;
}

static gboolean
hv_connect(HvHost *h, GError **error)
{
    g_autoptr(HvInstance) cs = host_cs(h, NULL, error);
    g_autoptr(GUri) u = NULL;

    if (cs == NULL)
        return FALSE;
    g_free(h->name);
    h->name = g_strdup(hv_inst_get(cs, "Name"));
    u = g_uri_parse(h->url, G_URI_FLAGS_NONE, NULL);
    g_free(h->dest_name);
    if (u != NULL && g_uri_get_host(u) != NULL && !is_ip_literal(g_uri_get_host(u)))
        h->dest_name = g_strdup(g_uri_get_host(u));
    else
        h->dest_name = g_strdup(h->name);
    return TRUE;
}

static char *
host_entry_url(const char *entry)
{
    if (strstr(entry, "://") != NULL)
        return g_strdup(entry);
    return g_strdup_printf(HV_DEFAULT_URL, entry);
}

static HvHost *
host_new(char *url)
{
    HvHost *h = g_new0(HvHost, 1);

    g_mutex_init(&h->lock);
    g_mutex_init(&h->connect_lock);
    h->url = url;
    return h;
}

/* Opens a backend without a word to its hosts: the HTTP handles are made
 * (the configuration checked), the first operation contacts the hosts
 * (hv_hosts_ready). */
VmshiftBackend *
hyperv_open(const VmshiftConfig *config, guint32 flags, GError **error)
{
    g_autoptr(VmshiftHttpOptions) opts = NULL;
    g_auto(GStrv) entries = NULL;
    VmshiftBackend *b;
    GError *first = NULL;
    guint ok = 0;

    if (!vmshift_check_flags(flags, 0, "open", error))
        return NULL;
    opts = vmshift_http_options_new_from_config(config, VMSHIFT_HTTP_AUTH_NEGOTIATE, error);
    if (opts == NULL)
        return NULL;
    entries = vmshift_config_get_string_list(config, "hosts");
    if ((entries == NULL || entries[0] == NULL) && opts->url == NULL) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_CONFIG,
                    "%s: backend %s: set url= or hosts=", vmshift_config_get_source(config),
                    vmshift_config_get_backend(config));
        return NULL;
    }
    b = g_new0(VmshiftBackend, 1);
    b->backend = g_strdup(vmshift_config_get_backend(config));
    b->hosts = g_ptr_array_new_with_free_func((GDestroyNotify)hv_host_free);
    if (opts->url != NULL)
        g_ptr_array_add(b->hosts, host_new(g_strdup(opts->url)));
    for (guint i = 0; entries != NULL && entries[i] != NULL; i++)
        g_ptr_array_add(b->hosts, host_new(host_entry_url(entries[i])));
    for (guint i = 0; i < b->hosts->len; i++) {
        HvHost *h = b->hosts->pdata[i];
        static const char *const headers[] = { "Content-Type: application/soap+xml;charset=UTF-8",
                                               NULL };
        VmshiftHttpOptions o = *opts;
        o.struct_size = sizeof o;
        o.url = h->url;
        o.headers = headers;
        h->auth = opts->auth;
        if (o.auth == VMSHIFT_HTTP_AUTH_NTLM)
            o.auth = VMSHIFT_HTTP_AUTH_NONE; /* done by hv_post(); credentials kept */
        h->http = vmshift_http_new(&o, &h->open_error);
        if (h->open_error == NULL)
            ok++;
        else {
            h->contacted = TRUE; /* nothing to contact it with */
            if (first == NULL)
                first = g_error_copy(h->open_error);
        }
    }
    if (ok == 0) {
        g_propagate_error(error, first);
        hyperv_close(b);
        return NULL;
    }
    g_clear_error(&first);
    return b;
}

/* The first contact with @h, once (a failure stays in h->open_error, as a
 * failed open did). */
static gpointer
host_contact(gpointer data)
{
    HvHost *h = data;

    g_mutex_lock(&h->connect_lock);
    if (!h->contacted) {
        hv_connect(h, &h->open_error);
        h->contacted = TRUE;
    }
    g_mutex_unlock(&h->connect_lock);
    return NULL;
}

gboolean
hv_hosts_ready(VmshiftBackend *b, GError **error)
{
    g_autoptr(GPtrArray) threads = g_ptr_array_new();
    guint pending = 0;
    HvHost *failed = NULL;

    for (guint i = 0; i < b->hosts->len; i++)
        if (!g_atomic_int_get(&((HvHost *)b->hosts->pdata[i])->contacted))
            pending++;
    /* several hosts: each on its own thread, so the wait is the slowest
     * host's, not the sum */
    for (guint i = 0; pending > 1 && i < b->hosts->len; i++)
        g_ptr_array_add(threads, g_thread_new("hv-contact", host_contact, b->hosts->pdata[i]));
    for (guint i = 0; i < threads->len; i++)
        g_thread_join(threads->pdata[i]);
    /* at once for a host contacted; the lock also orders its fields */
    for (guint i = 0; i < b->hosts->len; i++)
        host_contact(b->hosts->pdata[i]);
    for (guint i = 0; i < b->hosts->len; i++) {
        HvHost *h = b->hosts->pdata[i];
        if (h->open_error == NULL)
            return TRUE;
        if (failed == NULL)
            failed = h;
    }
    g_set_error(error, failed->open_error->domain, failed->open_error->code, "backend %s: %s",
                b->backend, failed->open_error->message);
    return FALSE;
}

void
hyperv_close(VmshiftBackend *b)
{
    if (b == NULL)
        return;
    g_ptr_array_unref(b->hosts);
    g_free(b->backend);
    g_free(b);
}

gboolean
hv_host_usable(const HvHost *h)
{
    return h->open_error == NULL && h->name != NULL;
}

HvHost *
hv_find_host(VmshiftBackend *b, const char *name)
{
    for (guint i = 0; i < b->hosts->len; i++) {
        HvHost *h = b->hosts->pdata[i];
        if (h->name != NULL
            && (g_ascii_strcasecmp(h->name, name) == 0
                || g_ascii_strcasecmp(h->dest_name, name) == 0))
            return h;
    }
    return NULL;
}

/* Fails when @host names no connected host; the error of a host that did
 * not open is reported, since it may be the one meant. */
gboolean
hv_check_host_arg(VmshiftBackend *b, const char *host, GError **error)
{
    if (host == NULL || hv_find_host(b, host) != NULL)
        return TRUE;
    for (guint i = 0; i < b->hosts->len; i++) {
        HvHost *h = b->hosts->pdata[i];
        if (h->open_error != NULL) {
            g_set_error(error, h->open_error->domain, h->open_error->code,
                        "backend %s: no connected Hyper-V host %s; %s", b->backend, host,
                        h->open_error->message);
            return FALSE;
        }
    }
    g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_NOT_FOUND, "backend %s has no Hyper-V host %s",
                b->backend, host);
    return FALSE;
}

/* Inventory of all hosts skips the ones that did not open, loudly. */
gboolean
hv_usable_or_warn(VmshiftBackend *b, HvHost *h, const char *what)
{
    if (hv_host_usable(h))
        return TRUE;
    g_warning("backend %s: %s of Hyper-V host %s are not listed: %s", b->backend, what, h->url,
              h->open_error->message);
    return FALSE;
}

gboolean
hv_degrade_class(HvHost *h, const char *cls, const char *fact, GError **e)
{
    if (g_error_matches(*e, G_IO_ERROR, G_IO_ERROR_CANCELLED)
        || ((*e)->domain == VMSHIFT_ERROR
            && ((*e)->code == VMSHIFT_ERROR_CONNECTION || (*e)->code == VMSHIFT_ERROR_TIMEOUT
                || (*e)->code == VMSHIFT_ERROR_AUTH_FAILED || (*e)->code == VMSHIFT_ERROR_TLS)))
        return FALSE;
    if (h->warned == NULL)
        h->warned = g_hash_table_new(g_str_hash, g_str_equal);
    if (!g_hash_table_contains(h->warned, cls)) {
        g_hash_table_add(h->warned, (gpointer)cls);
        g_warning("Hyper-V host %s does not answer %s: %s unknown (%s)", hv_host_label(h), cls,
                  fact, (*e)->message);
    }
    g_clear_error(e);
    return TRUE;
}
