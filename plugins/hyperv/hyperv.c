/*
 * vmshift Hyper-V plugin: WMI (root/virtualization/v2, root/cimv2) over
 * WS-Management.  Facts and sources: shared/design/hyperv.md.
 */
#include "config.h"

#include <string.h>

#include <vmshift/vmshift.h>
#include <vmshift/http.h>
#include <vmshift/xml.h>

#include "hyperv.h"
#include "ntlm.h"
#include "wsman.h"

#define HV_POLL_MS 250
#define HV_MAX_POLL_ERRORS 5
#define HV_MAX_PAGES 1000
#define HV_VM_MASK 0x12019F /* FILE_GENERIC_READ | FILE_GENERIC_WRITE (hyperv.md §3.1) */
#define HV_WORKER_CAP_SID \
    "S-1-15-3-1024-2268835264-3721307629-241982045-173645152-1490879176-104643441-2915960892-1612460704"

typedef struct {
    char *url;
    char *name;        /* computer name (Msvm_ComputerSystem.Name), or NULL */
    char *dest_name;   /* what we pass as DestinationHost */
    VmshiftHttp *http;
    GError *open_error;
    char *product;
    VmshiftHttpAuth auth; /* as configured */
    /* auth=ntlm is done here, in the "Negotiate" scheme WinRM takes (libcurl's
     * NTLM only answers "WWW-Authenticate: NTLM", which WinRM never sends).
     * NTLM authenticates the TCP connection: ntlm_ready says the handle's
     * connection completed a handshake; a 401 later means a new connection. */
    gboolean ntlm_ready;
    GMutex lock; /* a handshake and the request it carries go together */
} HvHost;

struct _VmshiftBackend {
    char *backend;
    GPtrArray *hosts; /* HvHost */
};

static void
hv_host_free(HvHost *h)
{
    g_free(h->url);
    g_free(h->name);
    g_free(h->dest_name);
    vmshift_http_free(h->http);
    g_clear_error(&h->open_error);
    g_free(h->product);
    g_mutex_clear(&h->lock);
    g_free(h);
}

/* ---- transport ----------------------------------------------------------- */

static const char *
host_label(const HvHost *h)
{
    return h->name != NULL ? h->name : h->url;
}

/* Maps a SOAP fault to an error code. */
static int
fault_code(const HvResponse *r)
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

/*
 * NTLM in the Negotiate scheme (MS-WSMV 2.2.9.1.1.1; MS-NLMP): NEGOTIATE
 * with an empty body, CHALLENGE in the 401, AUTHENTICATE with the envelope.
 * Returns the reply to the envelope, or NULL with an error.
 */
static VmshiftHttpResponse *
ntlm_handshake(HvHost *h, const char *env, const char *what, GCancellable *c,
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
                        "WinRM service allows", host_label(h), what, offer);
        else
            g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_PROTOCOL,
                        "Hyper-V host %s: %s: HTTP %u to the NTLM negotiate message, "
                        "expected 401 with a challenge", host_label(h), what, r1->status);
        return NULL;
    }
    chal = g_strstrip(g_strdup(www + 10));
    tok = hv_ntlm_authenticate_b64(chal, cr->user, cr->domain, cr->password, &local);
    if (tok == NULL) {
        g_set_error(error, VMSHIFT_ERROR, local->code, "Hyper-V host %s: %s: %s",
                    host_label(h), what, local->message);
        return NULL;
    }
    hdr3 = g_strconcat("Authorization: Negotiate ", tok, NULL);
    free_secret(tok);
    hdrs[0] = hdr3;
    r2 = vmshift_http_request(h->http, "POST", NULL, hdrs, env, strlen(env), c, error);
    free_secret(hdr3);
    if (r2 != NULL && r2->status != 401)
        h->ntlm_ready = TRUE;
    return r2;
}

/* POSTs one envelope with the configured authentication. */
static VmshiftHttpResponse *
hv_post(HvHost *h, const char *env, const char *what, GCancellable *c, GError **error)
{
    VmshiftHttpResponse *resp;

    if (h->auth != VMSHIFT_HTTP_AUTH_NTLM)
        return vmshift_http_request(h->http, "POST", NULL, NULL, env, strlen(env), c, error);
    g_mutex_lock(&h->lock);
    if (h->ntlm_ready) {
        resp = vmshift_http_request(h->http, "POST", NULL, NULL, env, strlen(env), c, error);
        if (resp == NULL || resp->status != 401) {
            g_mutex_unlock(&h->lock);
            return resp;
        }
        /* The authenticated connection is gone (closed by the server or
         * lost): authenticate the new one. */
        g_debug("Hyper-V host %s: connection not authenticated any more; NTLM again",
                host_label(h));
        vmshift_http_response_free(resp);
    }
    resp = ntlm_handshake(h, env, what, c, error);
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

    resp = hv_post(h, env, what, cancellable, &local);
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
        g_set_error(error, local->domain, local->code, "Hyper-V host %s: %s: %s",
                    host_label(h), what, local->message);
        return NULL;
    }
    buf = vmshift_http_response_get_body(resp, &len);
    label = g_strdup_printf("%s reply from %s", what, vmshift_http_get_url(h->http));
    if (resp->status == 200 || ((resp->status == 400 || resp->status == 500) && len > 0
                                && resp->content_type != NULL
                                && strstr(resp->content_type, "xml") != NULL)) {
        r = hv_response_parse(buf, len, label, &local);
        if (r == NULL) {
            g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_PROTOCOL,
                        "Hyper-V host %s: %s: %s", host_label(h), what, local->message);
            return NULL;
        }
        if (r->is_fault) {
            g_autofree char *d = hv_fault_describe(r);
            g_set_error(error, VMSHIFT_ERROR, fault_code(r), "Hyper-V host %s: %s: %s",
                        host_label(h), what, d);
            return NULL;
        }
        if (resp->status != 200) {
            g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_PROTOCOL,
                        "Hyper-V host %s: %s: HTTP %u without a SOAP fault", host_label(h),
                        what, resp->status);
            return NULL;
        }
        if (r->relates_to != NULL && strcmp(r->relates_to, msgid) != 0) {
            g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_PROTOCOL,
                        "Hyper-V host %s: %s: reply relates to another request",
                        host_label(h), what);
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
                        "user and password", host_label(h), what,
                        g_ascii_strcasecmp(offer, "none") != 0 ? "Negotiate, i.e. NTLM or Kerberos"
                                                                : "another scheme");
            return NULL;
        }
        if (h->auth == VMSHIFT_HTTP_AUTH_NEGOTIATE) {
            /* libcurl's Negotiate is GSS-API (Kerberos): it never uses the
             * password from the credentials file. */
            g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_AUTH_FAILED,
                        "Hyper-V host %s: %s: Negotiate (Kerberos) authentication refused "
                        "(HTTP 401); it needs a Kerberos ticket for the host (kinit) and "
                        "does not use the credentials file's password: set auth=ntlm to "
                        "log on with it", host_label(h), what);
            return NULL;
        }
        if (h->auth == VMSHIFT_HTTP_AUTH_NTLM) {
            g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_AUTH_FAILED,
                        "Hyper-V host %s: %s: NTLM authentication refused (HTTP 401); check "
                        "user, password and domain in the credentials file", host_label(h),
                        what);
            return NULL;
        }
    }
    if (!vmshift_http_response_check(resp, &local) || TRUE) {
        if (local == NULL)
            g_set_error(&local, VMSHIFT_ERROR, VMSHIFT_ERROR_PROTOCOL, "HTTP %u", resp->status);
        g_set_error(error, local->domain, local->code, "Hyper-V host %s: %s: %s",
                    host_label(h), what, local->message);
    }
    return NULL;
}

static GPtrArray *
hv_wql(HvHost *h, const char *ns, const char *query, GCancellable *cancellable,
       GError **error)
{
    g_autofree char *uri = g_strconcat(HV_URI_BASE, ns, "/*", NULL);
    g_autofree char *eq = hv_xml_escape(query);
    g_autofree char *body = g_strdup_printf(
        "<n:Enumerate><w:OptimizeEnumeration/><w:MaxElements>100</w:MaxElements>"
        "<w:Filter Dialect=\"" HV_WQL "\">%s</w:Filter></n:Enumerate>", eq);
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
                        "Hyper-V host %s: %s: enumeration does not end", host_label(h), what);
            return NULL;
        }
        ctx = hv_xml_escape(r->enum_context);
        pull = g_strdup_printf("<n:Pull><n:EnumerationContext>%s</n:EnumerationContext>"
                               "<n:MaxElements>100</n:MaxElements></n:Pull>", ctx);
        g_clear_pointer(&r, hv_response_free);
        r = hv_call(h, HV_A_PULL, uri, NULL, pull, what, cancellable, error);
        if (r == NULL)
            return NULL;
    }
    return g_steal_pointer(&items);
}

static HvInstance *
hv_get(HvHost *h, const char *uri, const char *const *sel, const char *what,
       GCancellable *cancellable, GError **error)
{
    g_autoptr(HvResponse) r = hv_call(h, HV_A_GET, uri, sel, "", what, cancellable, error);

    if (r == NULL)
        return NULL;
    if (r->body == NULL) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_PROTOCOL,
                    "Hyper-V host %s: %s: empty Get reply", host_label(h), what);
        return NULL;
    }
    return g_steal_pointer(&r->body);
}

/* Invoke; returns the <M>_OUTPUT instance. */
static HvInstance *
hv_invoke(HvHost *h, const char *uri, const char *method, const char *const *sel,
          const char *params, GCancellable *cancellable, GError **error)
{
    g_autofree char *action = g_strconcat(uri, "/", method, NULL);
    g_autofree char *body = g_strdup_printf("<p:%s_INPUT xmlns:p=\"%s\">%s</p:%s_INPUT>",
                                            method, uri, params, method);
    g_autoptr(HvResponse) r = hv_call(h, action, uri, sel, body, method, cancellable, error);
    g_autofree char *want = g_strconcat(method, "_OUTPUT", NULL);

    if (r == NULL)
        return NULL;
    if (r->body == NULL || g_strcmp0(r->body->cls, want) != 0) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_PROTOCOL,
                    "Hyper-V host %s: %s: reply has no %s", host_label(h), method, want);
        return NULL;
    }
    return g_steal_pointer(&r->body);
}

/* ---- open / close -------------------------------------------------------- */

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
     * (hyperv.md §1.7): take the one whose Name is not a GUID. */
    items = hv_wql(h, "root/virtualization/v2", "SELECT * FROM Msvm_ComputerSystem", c, error);
    if (items == NULL)
        return NULL;
    for (guint i = 0; i < items->len; i++) {
        HvInstance *inst = items->pdata[i];
        const char *name = hv_inst_get(inst, "Name");
        if (name != NULL && !g_uuid_string_is_valid(name))
            return g_ptr_array_steal_index(items, i);
    }
    g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_PROTOCOL,
                "Hyper-V host %s: no host Msvm_ComputerSystem", host_label(h));
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
    return g_strdup_printf("https://%s:5986/wsman", entry);
}

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
    if (opts->url != NULL) {
        HvHost *h = g_new0(HvHost, 1);
        g_mutex_init(&h->lock);
        h->url = g_strdup(opts->url);
        g_ptr_array_add(b->hosts, h);
    }
    for (guint i = 0; entries != NULL && entries[i] != NULL; i++) {
        HvHost *h = g_new0(HvHost, 1);
        g_mutex_init(&h->lock);
        h->url = host_entry_url(entries[i]);
        g_ptr_array_add(b->hosts, h);
    }
    for (guint i = 0; i < b->hosts->len; i++) {
        HvHost *h = b->hosts->pdata[i];
        static const char *const headers[] = {
            "Content-Type: application/soap+xml;charset=UTF-8", NULL
        };
        VmshiftHttpOptions o = *opts;
        o.struct_size = sizeof o;
        o.url = h->url;
        o.headers = headers;
        h->auth = opts->auth;
        if (o.auth == VMSHIFT_HTTP_AUTH_NTLM)
            o.auth = VMSHIFT_HTTP_AUTH_NONE; /* done by hv_post(); credentials kept */
        h->http = vmshift_http_new(&o, &h->open_error);
        if (h->http != NULL)
            hv_connect(h, &h->open_error);
        if (h->open_error == NULL)
            ok++;
        else if (first == NULL)
            first = g_error_copy(h->open_error);
    }
    if (ok == 0) {
        g_propagate_error(error, first);
        hyperv_close(b);
        return NULL;
    }
    g_clear_error(&first);
    return b;
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

static gboolean
host_usable(const HvHost *h)
{
    return h->open_error == NULL && h->name != NULL;
}

static HvHost *find_host(VmshiftBackend *b, const char *name);

/* Fails when @host names no connected host; the error of a host that did
 * not open is reported, since it may be the one meant. */
static gboolean
check_host_arg(VmshiftBackend *b, const char *host, GError **error)
{
    if (host == NULL || find_host(b, host) != NULL)
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
    g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_NOT_FOUND,
                "backend %s has no Hyper-V host %s", b->backend, host);
    return FALSE;
}

/* Inventory of all hosts skips the ones that did not open, loudly. */
static gboolean
usable_or_warn(VmshiftBackend *b, HvHost *h, const char *what)
{
    if (host_usable(h))
        return TRUE;
    g_warning("backend %s: %s of Hyper-V host %s are not listed: %s", b->backend, what,
              h->url, h->open_error->message);
    return FALSE;
}

static HvHost *
find_host(VmshiftBackend *b, const char *name)
{
    for (guint i = 0; i < b->hosts->len; i++) {
        HvHost *h = b->hosts->pdata[i];
        if (h->name != NULL && (g_ascii_strcasecmp(h->name, name) == 0
                                || g_ascii_strcasecmp(h->dest_name, name) == 0))
            return h;
    }
    return NULL;
}

/* ---- inventory ----------------------------------------------------------- */

static HvInstance *
first_of(HvHost *h, const char *ns, const char *query, GCancellable *c, GError **error)
{
    g_autoptr(GPtrArray) items = hv_wql(h, ns, query, c, error);

    if (items == NULL)
        return NULL;
    if (items->len == 0) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_NOT_FOUND,
                    "Hyper-V host %s: no result for WQL \"%s\"", host_label(h), query);
        return NULL;
    }
    return g_ptr_array_steal_index(items, 0);
}

static GPtrArray *
host_volumes(HvHost *h, GError **error)
{
    return hv_wql(h, "root/cimv2", "SELECT * FROM Win32_Volume WHERE DriveType = 3", NULL,
                  error);
}

static gboolean
path_under(const char *path, const char *dir)
{
    gsize n = strlen(dir);

    while (n > 0 && (dir[n - 1] == '\\' || dir[n - 1] == '/'))
        n--;
    return g_ascii_strncasecmp(path, dir, n) == 0
           && (path[n] == '\0' || path[n] == '\\' || path[n] == '/');
}

static HvInstance *
volume_of(GPtrArray *vols, const char *path)
{
    HvInstance *best = NULL;
    gsize best_len = 0;

    for (guint i = 0; vols != NULL && i < vols->len; i++) {
        const char *n = hv_inst_get(vols->pdata[i], "Name");
        if (n != NULL && path_under(path, n) && strlen(n) > best_len) {
            best = vols->pdata[i];
            best_len = strlen(n);
        }
    }
    return best;
}

/* A volume's Name ("C:\\", "C:\\ClusterStorage\\Volume1\\") as the
 * directory every path on it starts with: without the trailing backslash
 * ("C:", "C:\\ClusterStorage\\Volume1"), so that "C:\\VMs" is under it
 * by a plain "prefix, then a separator" test. */
static char *
volume_root(const char *name)
{
    gsize n;

    if (name == NULL)
        return NULL;
    n = strlen(name);
    while (n > 0 && (name[n - 1] == '\\' || name[n - 1] == '/'))
        n--;
    return g_strndup(name, n);
}

static gboolean
volume_is_shared(const HvInstance *v)
{
    return g_strcmp0(hv_inst_get(v, "FileSystem"), "CSVFS") == 0;
}

/* CPU, memory and product of a host, from root/cimv2 (what Get-VMHost reads
 * too): Win32_ComputerSystem (NumberOfLogicalProcessors, TotalPhysicalMemory
 * in bytes), Win32_OperatingSystem (FreePhysicalMemory in KiB, Caption,
 * Version) and Win32_Processor (one per socket: Name, LoadPercentage). A
 * class that does not answer leaves its facts unknown. */
static void
host_facts(HvHost *h, VmshiftHost *vh)
{
    g_autoptr(GError) e = NULL;
    g_autoptr(HvInstance) cs = NULL;
    g_autoptr(HvInstance) os = NULL;
    g_autoptr(GPtrArray) cpus = NULL;

    cs = first_of(h, "root/cimv2", "SELECT * FROM Win32_ComputerSystem", NULL, &e);
    if (cs != NULL) {
        vh->cpu_count = (guint32)CLAMP(hv_inst_get_int(cs, "NumberOfLogicalProcessors", 0), 0,
                                       G_MAXUINT32);
        vh->memory_total = (guint64)MAX(hv_inst_get_int(cs, "TotalPhysicalMemory", 0), 0);
    } else {
        g_debug("Hyper-V host %s: %s", host_label(h), e->message);
        g_clear_error(&e);
    }
    os = first_of(h, "root/cimv2", "SELECT * FROM Win32_OperatingSystem", NULL, &e);
    if (os != NULL) {
        const char *cap = hv_inst_get(os, "Caption");
        const char *ver = hv_inst_get(os, "Version");
        gint64 free_kib = hv_inst_get_int(os, "FreePhysicalMemory", 0);
        if (free_kib > 0 && free_kib <= (gint64)(G_MAXUINT64 >> 10))
            vh->memory_free = (guint64)free_kib << 10;
        if (vh->memory_total == 0) {
            gint64 tot_kib = hv_inst_get_int(os, "TotalVisibleMemorySize", 0);
            if (tot_kib > 0 && tot_kib <= (gint64)(G_MAXUINT64 >> 10))
                vh->memory_total = (guint64)tot_kib << 10;
        }
        if (cap != NULL || ver != NULL) {
            g_free(vh->hypervisor);
            vh->hypervisor = g_strdup_printf("Microsoft Hyper-V (%s%s%s)", cap ? cap : "",
                                             cap && ver ? " " : "", ver ? ver : "");
        }
    } else {
        g_debug("Hyper-V host %s: %s", host_label(h), e->message);
        g_clear_error(&e);
    }
    cpus = hv_wql(h, "root/cimv2", "SELECT * FROM Win32_Processor", NULL, &e);
    if (cpus != NULL) {
        gint64 load = 0;
        guint with_load = 0;
        for (guint i = 0; i < cpus->len; i++) {
            const char *n = hv_inst_get(cpus->pdata[i], "Name");
            gint64 l = hv_inst_get_int(cpus->pdata[i], "LoadPercentage", -1);
            if (vh->cpu_model == NULL && n != NULL && n[0] != '\0')
                vh->cpu_model = g_strstrip(g_strdup(n));
            if (l >= 0 && l <= 100) {
                load += l;
                with_load++;
            }
        }
        if (with_load > 0)
            vh->cpu_usage_percent = (gint32)(load / with_load);
    } else {
        g_debug("Hyper-V host %s: %s", host_label(h), e->message);
    }
}

GPtrArray *
hyperv_list_hosts(VmshiftBackend *b, guint32 flags, GError **error)
{
    GPtrArray *out;

    if (!vmshift_check_flags(flags, 0, "list_hosts", error))
        return NULL;
    out = vmshift_list_new((GDestroyNotify)vmshift_host_free);
    for (guint i = 0; i < b->hosts->len; i++) {
        HvHost *h = b->hosts->pdata[i];
        VmshiftHost *vh = vmshift_host_new();
        g_autoptr(GError) e = NULL;
        g_autoptr(HvInstance) svc = NULL;
        g_autoptr(HvInstance) msd = NULL;
        g_autoptr(HvInstance) vsms = NULL;
        g_autoptr(GPtrArray) vols = NULL;

        vh->id = g_strdup(h->name != NULL ? h->name : h->url);
        vh->name = g_strdup(host_label(h));
        vh->hypervisor = g_strdup("Microsoft Hyper-V");
        vh->cpu_usage_percent = -1;
        g_ptr_array_add(out, vh);
        if (!host_usable(h)) {
            vh->status = VMSHIFT_HOST_DISCONNECTED;
            vh->status_detail = g_strdup(h->open_error->message);
            continue;
        }
        svc = first_of(h, "root/virtualization/v2",
                       "SELECT * FROM Msvm_VirtualSystemMigrationService", NULL, &e);
        if (svc != NULL)
            msd = first_of(h, "root/virtualization/v2",
                           "SELECT * FROM Msvm_VirtualSystemMigrationServiceSettingData", NULL,
                           &e);
        if (msd != NULL)
            vsms = first_of(h, "root/virtualization/v2",
                            "SELECT * FROM Msvm_VirtualSystemManagementServiceSettingData",
                            NULL, &e);
        if (vsms != NULL)
            vols = host_volumes(h, &e);
        if (e != NULL) {
            vh->status = VMSHIFT_HOST_DISCONNECTED;
            vh->status_detail = g_strdup(e->message);
            continue;
        }
        vh->status = VMSHIFT_HOST_OK;
        host_facts(h, vh);
        if (g_strcmp0(hv_inst_get(msd, "EnableVirtualSystemMigration"), "false") == 0) {
            vh->status = VMSHIFT_HOST_LIMITED;
            vh->status_detail = g_strdup("live migration is not enabled "
                                         "(Enable-VMMigration)");
        } else if (hv_inst_get_all(svc, "MigrationServiceListenerIPAddressList")->len == 0) {
            vh->status = VMSHIFT_HOST_LIMITED;
            vh->status_detail = g_strdup("no live migration networks are configured "
                                         "(Set-VMMigrationNetwork)");
        }
        vh->migration_address = g_strdup(hv_inst_get(svc, "MigrationServiceListenerIPAddressList"));
        vh->default_vm_path = g_strdup(hv_inst_get(vsms, "DefaultExternalDataRoot"));
        vh->san_ids = vmshift_string_list_new();
        for (guint j = 0; j < vols->len; j++)
            if (volume_is_shared(vols->pdata[j]))
                g_ptr_array_add(vh->san_ids, g_strdup(hv_inst_get(vols->pdata[j], "DeviceID")));
    }
    return out;
}

static guint32
power_state(gint64 enabled)
{
    switch (enabled) {
    case 2: case 4: case 10: case 32770: case 32771: case 32773: case 32774:
    case 32776: case 32777:
        return VMSHIFT_POWER_RUNNING;
    case 3:
        return VMSHIFT_POWER_STOPPED;
    case 9: case 32768:
        return VMSHIFT_POWER_PAUSED;
    case 6: case 32769:
        return VMSHIFT_POWER_SUSPENDED;
    default:
        return VMSHIFT_POWER_UNKNOWN;
    }
}

static const char *
opstatus_text(gint64 v)
{
    switch (v) {
    case 32768: return "Creating Snapshot";
    case 32769: return "Applying Snapshot";
    case 32770: return "Deleting Snapshot";
    case 32771: return "Waiting to Start";
    case 32772: return "Merging Disks";
    case 32773: return "Exporting Virtual Machine";
    case 32774: return "Migrating Virtual Machine";
    default: return NULL;
    }
}

static gint64
opstatus2(const HvInstance *cs)
{
    const GPtrArray *a = hv_inst_get_all(cs, "OperationalStatus");
    gint64 v;

    if (a->len < 2 || !g_ascii_string_to_signed(a->pdata[1], 10, 0, G_MAXINT64, &v, NULL))
        return 0;
    return v;
}

static char *
vssd_query(const char *guid)
{
    return g_strdup_printf("ASSOCIATORS OF {Msvm_ComputerSystem.CreationClassName="
                           "'Msvm_ComputerSystem',Name='%s'} WHERE AssocClass = "
                           "Msvm_SettingsDefineState ResultClass = "
                           "Msvm_VirtualSystemSettingData", guid);
}

static char *
nic_mac(const char *raw)
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

/* Name="…" value from a WMI object path (Parent, HostResource). */
static char *
path_key(const char *path, const char *key)
{
    g_autofree char *pat = g_strconcat(key, "=\"", NULL);
    const char *p = path;
    GString *s;

    /* the key must start the key list or follow a comma (CreationClassName
     * must not match Name) */
    while (p != NULL && (p = strstr(p, pat)) != NULL && p != path && p[-1] != '.'
           && p[-1] != ',')
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

static const char *
basename_win(const char *p)
{
    const char *s = strrchr(p, '\\');
    const char *t = strrchr(p, '/');

    if (t > s)
        s = t;
    return s != NULL ? s + 1 : p;
}

/* Everything the plugin knows about one VM on one host. */
typedef struct {
    HvHost *host;
    HvInstance *cs;
    HvInstance *vssd;
    GPtrArray *sasds;   /* VHD SASDs */
    GPtrArray *ports;   /* Msvm_SyntheticEthernetPortSettingData */
    GPtrArray *epasds;  /* Msvm_EthernetPortAllocationSettingData */
    GPtrArray *switches;
    GPtrArray *sizes;   /* guint64 * per SASD: file size */
    GPtrArray *vsizes;  /* guint64 * per SASD: virtual size (MaxInternalSize) */
    GPtrArray *snaps;   /* Msvm_VirtualSystemSettingData of checkpoints */
    guint64 memory;     /* bytes (Msvm_MemorySettingData) */
    guint32 vcpus;      /* Msvm_ProcessorSettingData.VirtualQuantity */
    GPtrArray *volumes; /* Win32_Volume of the host, or NULL when unknown */
} HvVm;

static void
hv_vm_free(HvVm *v)
{
    if (v == NULL)
        return;
    hv_instance_free(v->cs);
    hv_instance_free(v->vssd);
    if (v->sasds) g_ptr_array_unref(v->sasds);
    if (v->ports) g_ptr_array_unref(v->ports);
    if (v->epasds) g_ptr_array_unref(v->epasds);
    if (v->switches) g_ptr_array_unref(v->switches);
    if (v->sizes) g_ptr_array_unref(v->sizes);
    if (v->vsizes) g_ptr_array_unref(v->vsizes);
    if (v->snaps) g_ptr_array_unref(v->snaps);
    if (v->volumes) g_ptr_array_unref(v->volumes);
    g_free(v);
}
G_DEFINE_AUTOPTR_CLEANUP_FUNC(HvVm, hv_vm_free)

static GPtrArray *
new_inst_list(void)
{
    return g_ptr_array_new_with_free_func((GDestroyNotify)hv_instance_free);
}

/* Msvm_MemorySettingData.VirtualQuantity in its AllocationUnits
 * ("byte * 2^20" on every Hyper-V; MSDOC msvm-memorysettingdata). */
static guint64
memory_bytes(const HvInstance *m)
{
    const char *u = hv_inst_get(m, "AllocationUnits");
    gint64 q = hv_inst_get_int(m, "VirtualQuantity", 0);
    guint shift = 20;

    if (q <= 0)
        return 0;
    if (u != NULL) {
        const char *p = strstr(u, "2^");
        shift = p != NULL ? (guint)g_ascii_strtoull(p + 2, NULL, 10)
                          : g_ascii_strcasecmp(u, "byte") == 0 ? 0 : 20;
        if (shift > 40)
            shift = 20;
    }
    return (guint64)q << shift;
}

/* Virtual size of a VHD: Msvm_ImageManagementService.
 * GetVirtualHardDiskSettingData(Path) -> embedded Msvm_VirtualHardDiskSettingData
 * (CIM-XML, hyperv.md §1.8, §2.2); its MaxInternalSize.  0 when unknown. */
static guint64
vhd_virtual_size(HvHost *h, const char *path)
{
    const char *sel[] = { "CreationClassName", "Msvm_ImageManagementService", NULL };
    g_autofree char *e = hv_xml_escape(path);
    g_autofree char *p = g_strdup_printf("<p:Path>%s</p:Path>", e);
    g_autoptr(HvInstance) out = hv_invoke(h, HV_V2 "Msvm_ImageManagementService",
                                          "GetVirtualHardDiskSettingData", sel, p, NULL, NULL);
    const char *sd;
    xmlDoc *doc;
    xmlNode *inst;
    guint64 size = 0;

    if (out == NULL || hv_inst_get_int(out, "ReturnValue", -1) != 0
        || (sd = hv_inst_get(out, "SettingData")) == NULL)
        return 0;
    doc = vmshift_xml_parse(sd, strlen(sd), "Msvm_VirtualHardDiskSettingData", NULL);
    if (doc == NULL)
        return 0;
    inst = vmshift_xml_root(doc);
    if (inst != NULL && vmshift_xml_node_is(inst, NULL, "INSTANCE")) {
        for (xmlNode *c = vmshift_xml_first_element(inst); c != NULL;
             c = vmshift_xml_next_element(c)) {
            g_autofree char *name = vmshift_xml_get_attr(c, NULL, "NAME");
            g_autofree char *val = NULL;
            if (!vmshift_xml_node_is(c, NULL, "PROPERTY")
                || g_strcmp0(name, "MaxInternalSize") != 0)
                continue;
            val = vmshift_xml_child_text(c, NULL, "VALUE");
            if (val != NULL)
                size = g_ascii_strtoull(val, NULL, 10);
        }
    }
    xmlFreeDoc(doc);
    return size;
}

static HvVm *
load_vm(HvHost *h, HvInstance *cs, gboolean sizes, GError **error)
{
    g_autoptr(HvVm) v = g_new0(HvVm, 1);
    g_autofree char *q = vssd_query(hv_inst_get(cs, "Name"));
    g_autofree char *q2 = NULL;
    g_autoptr(GPtrArray) parts = NULL;

    v->host = h;
    v->cs = cs;
    v->vssd = first_of(h, "root/virtualization/v2", q, NULL, error);
    if (v->vssd == NULL)
        return NULL;
    q2 = g_strdup_printf("ASSOCIATORS OF {Msvm_VirtualSystemSettingData.InstanceID='%s'} "
                         "WHERE AssocClass = Msvm_VirtualSystemSettingDataComponent",
                         hv_inst_get(v->vssd, "InstanceID"));
    parts = hv_wql(h, "root/virtualization/v2", q2, NULL, error);
    if (parts == NULL)
        return NULL;
    v->sasds = new_inst_list();
    v->ports = new_inst_list();
    v->epasds = new_inst_list();
    v->sizes = g_ptr_array_new_with_free_func(g_free);
    v->vsizes = g_ptr_array_new_with_free_func(g_free);
    while (parts->len > 0) {
        HvInstance *p = g_ptr_array_steal_index(parts, 0);
        if (g_strcmp0(p->cls, "Msvm_StorageAllocationSettingData") == 0
            && hv_inst_get_int(p, "ResourceType", 0) == 31)
            g_ptr_array_add(v->sasds, p);
        else if (g_strcmp0(p->cls, "Msvm_SyntheticEthernetPortSettingData") == 0)
            g_ptr_array_add(v->ports, p);
        else if (g_strcmp0(p->cls, "Msvm_EthernetPortAllocationSettingData") == 0)
            g_ptr_array_add(v->epasds, p);
        else {
            if (g_strcmp0(p->cls, "Msvm_MemorySettingData") == 0)
                v->memory = memory_bytes(p);
            else if (g_strcmp0(p->cls, "Msvm_ProcessorSettingData") == 0)
                v->vcpus = (guint32)CLAMP(hv_inst_get_int(p, "VirtualQuantity", 0), 0,
                                          G_MAXUINT32);
            hv_instance_free(p);
        }
    }
    {
        /* Checkpoints: Msvm_SnapshotOfVirtualSystem (hyperv.md §2.2); every
         * VirtualSystemType "Microsoft:Hyper-V:Snapshot:…" counts. */
        g_autofree char *q3 = g_strdup_printf(
            "ASSOCIATORS OF {Msvm_ComputerSystem.CreationClassName='Msvm_ComputerSystem',"
            "Name='%s'} WHERE AssocClass = Msvm_SnapshotOfVirtualSystem ResultClass = "
            "Msvm_VirtualSystemSettingData", hv_inst_get(cs, "Name"));
        g_autoptr(GPtrArray) ss = hv_wql(h, "root/virtualization/v2", q3, NULL, error);
        if (ss == NULL)
            return NULL;
        v->snaps = new_inst_list();
        while (ss->len > 0) {
            HvInstance *p = g_ptr_array_steal_index(ss, 0);
            if (strstr(hv_inst_get(p, "VirtualSystemType") ? hv_inst_get(p, "VirtualSystemType") : "", ":Snapshot:") != NULL)
                g_ptr_array_add(v->snaps, p);
            else
                hv_instance_free(p);
        }
    }
    v->switches = hv_wql(h, "root/virtualization/v2",
                         "SELECT * FROM Msvm_VirtualEthernetSwitch", NULL, error);
    if (v->switches == NULL)
        return NULL;
    {
        /* Only for each disk's volume: the VM is usable without it. */
        g_autoptr(GError) e = NULL;
        v->volumes = host_volumes(h, &e);
        if (v->volumes == NULL)
            g_debug("Hyper-V host %s: volumes unknown: %s", host_label(h), e->message);
    }
    for (guint i = 0; i < v->sasds->len; i++) {
        guint64 *sz = g_new0(guint64, 1);
        const char *path = hv_inst_get(v->sasds->pdata[i], "HostResource");
        if (sizes && path != NULL) {
            const char *sel[] = { "Name", path, NULL };
            g_autoptr(GError) e = NULL;
            g_autoptr(HvInstance) f = hv_get(h, HV_CIMV2 "CIM_DataFile", sel,
                                             "Get CIM_DataFile", NULL, &e);
            if (f != NULL)
                *sz = (guint64)hv_inst_get_int(f, "FileSize", 0);
        }
        g_ptr_array_add(v->sizes, sz);
        sz = g_new0(guint64, 1);
        if (sizes && path != NULL)
            *sz = vhd_virtual_size(h, path);
        g_ptr_array_add(v->vsizes, sz);
    }
    return g_steal_pointer(&v);
}

static char *
switch_name(const HvVm *v, const char *port_iid)
{
    for (guint i = 0; i < v->epasds->len; i++) {
        HvInstance *e = v->epasds->pdata[i];
        g_autofree char *parent = path_key(hv_inst_get(e, "Parent"), "InstanceID");
        g_autofree char *sw = NULL;
        if (g_strcmp0(parent, port_iid) != 0)
            continue;
        sw = path_key(hv_inst_get(e, "HostResource"), "Name");
        for (guint j = 0; sw != NULL && j < v->switches->len; j++)
            if (g_ascii_strcasecmp(hv_inst_get(v->switches->pdata[j], "Name"), sw) == 0)
                return g_strdup(hv_inst_get(v->switches->pdata[j], "ElementName"));
        return NULL;
    }
    return NULL;
}

static const char *
disk_id(const HvInstance *sasd)
{
    const char *p = hv_inst_get(sasd, "HostResource");
    return p != NULL ? basename_win(p) : hv_inst_get(sasd, "InstanceID");
}

/* The volume that holds a VHD: the id of the Win32_Volume (as in
 * list_volumes), or the \\server\share of a VHD on an SMB share. */
static char *
disk_volume(const HvVm *v, const char *path)
{
    HvInstance *vol;

    if (path == NULL)
        return NULL;
    if (g_str_has_prefix(path, "\\\\")) {
        const char *srv_end = strchr(path + 2, '\\');
        const char *share_end = srv_end != NULL ? strchr(srv_end + 1, '\\') : NULL;
        if (srv_end == NULL || srv_end[1] == '\0' || srv_end[1] == '\\')
            return NULL;
        return share_end != NULL ? g_strndup(path, (gsize)(share_end - path)) : g_strdup(path);
    }
    vol = volume_of(v->volumes, path);
    return vol != NULL ? g_strdup(hv_inst_get(vol, "DeviceID")) : NULL;
}

static VmshiftVm *
to_vm(const HvVm *v)
{
    VmshiftVm *vm = vmshift_vm_new();
    gint64 os2 = opstatus2(v->cs);

    vm->id = g_strdup(hv_inst_get(v->cs, "Name"));
    vm->name = g_strdup(hv_inst_get(v->cs, "ElementName"));
    vm->host = g_strdup(v->host->name);
    vm->power_state = power_state(hv_inst_get_int(v->cs, "EnabledState", 0));
    vm->config_path = g_strdup(hv_inst_get(v->vssd, "ConfigurationDataRoot"));
    vm->memory = v->memory;
    vm->vcpus = v->vcpus;
    vm->snapshot_count = v->snaps != NULL ? v->snaps->len : 0;
    if (opstatus_text(os2) != NULL)
        vm->status_detail = g_strdup(opstatus_text(os2));
    for (guint i = 0; i < v->sasds->len; i++) {
        HvInstance *s = v->sasds->pdata[i];
        VmshiftDisk *d = vmshift_disk_new();
        const char *path = hv_inst_get(s, "HostResource");
        d->id = g_strdup(disk_id(s));
        d->path = g_strdup(path);
        if (path != NULL) {
            const char *dot = strrchr(basename_win(path), '.');
            d->format = dot != NULL ? g_ascii_strdown(dot + 1, -1) : NULL;
            if (d->format != NULL && strcmp(d->format, "avhdx") == 0) {
                g_free(d->format);
                d->format = g_strdup("vhdx");
            }
        }
        d->allocation = *(guint64 *)v->sizes->pdata[i];
        d->capacity = *(guint64 *)v->vsizes->pdata[i];
        d->volume = disk_volume(v, path);
        g_ptr_array_add(vm->disks, d);
    }
    for (guint i = 0; i < v->ports->len; i++) {
        HvInstance *p = v->ports->pdata[i];
        VmshiftNic *n = vmshift_nic_new();
        const char *iid = hv_inst_get(p, "InstanceID");
        n->id = g_strdup(iid != NULL && strrchr(iid, '\\') ? strrchr(iid, '\\') + 1 : iid);
        n->mac = nic_mac(hv_inst_get(p, "Address"));
        n->network = switch_name(v, iid);
        n->model = g_strdup("synthetic");
        g_ptr_array_add(vm->nics, n);
    }
    return vm;
}

static GPtrArray *
host_vm_cs(HvHost *h, const char *where, GError **error)
{
    g_autofree char *q = g_strdup_printf("SELECT * FROM Msvm_ComputerSystem WHERE "
                                         "Description = 'Microsoft Virtual Machine'%s%s",
                                         where ? " AND " : "", where ? where : "");
    return hv_wql(h, "root/virtualization/v2", q, NULL, error);
}

GPtrArray *
hyperv_list_vms(VmshiftBackend *b, const char *host, guint32 flags, GError **error)
{
    g_autoptr(GPtrArray) out = NULL;

    if (!vmshift_check_flags(flags, 0, "list_vms", error))
        return NULL;
    if (!check_host_arg(b, host, error))
        return NULL;
    out = vmshift_list_new((GDestroyNotify)vmshift_vm_free);
    for (guint i = 0; i < b->hosts->len; i++) {
        HvHost *h = b->hosts->pdata[i];
        g_autoptr(GPtrArray) css = NULL;
        if ((host != NULL && h != find_host(b, host)) || !usable_or_warn(b, h, "VMs"))
            continue;
        css = host_vm_cs(h, NULL, error);
        if (css == NULL)
            return NULL;
        while (css->len > 0) {
            g_autoptr(HvVm) v = load_vm(h, g_ptr_array_steal_index(css, 0), TRUE, error);
            if (v == NULL)
                return NULL;
            g_ptr_array_add(out, to_vm(v));
        }
    }
    return g_steal_pointer(&out);
}

static gboolean
wql_safe(const char *s)
{
    return s != NULL && strpbrk(s, "'\"\\{}") == NULL;
}

/* Finds a VM by name or GUID on every host. */
static HvVm *
find_vm(VmshiftBackend *b, const char *vm, gboolean sizes, GError **error)
{
    g_autofree char *where = NULL;
    HvVm *found = NULL;

    if (!wql_safe(vm)) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_INVALID_ARGUMENT,
                    "invalid VM name \"%s\"", vm);
        return NULL;
    }
    where = g_strdup_printf(g_uuid_string_is_valid(vm) ? "Name = '%s'" : "ElementName = '%s'",
                            vm);
    for (guint i = 0; i < b->hosts->len; i++) {
        HvHost *h = b->hosts->pdata[i];
        g_autoptr(GPtrArray) css = NULL;
        if (!host_usable(h))
            continue;
        css = host_vm_cs(h, where, error);
        if (css == NULL) {
            hv_vm_free(found);
            return NULL;
        }
        if (css->len > 1 || (css->len == 1 && found != NULL)) {
            hv_vm_free(found);
            g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_CONFLICT,
                        "backend %s: more than one VM is named %s; use its id", b->backend,
                        vm);
            return NULL;
        }
        if (css->len == 1) {
            found = load_vm(h, g_ptr_array_steal_index(css, 0), sizes, error);
            if (found == NULL)
                return NULL;
        }
    }
    if (found == NULL)
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_NOT_FOUND,
                    "backend %s: no VM %s on any Hyper-V host", b->backend, vm);
    return found;
}

VmshiftVm *
hyperv_get_vm(VmshiftBackend *b, const char *vm, guint32 flags, GError **error)
{
    g_autoptr(HvVm) v = NULL;

    if (!vmshift_check_flags(flags, 0, "get_vm", error))
        return NULL;
    v = find_vm(b, vm, TRUE, error);
    return v != NULL ? to_vm(v) : NULL;
}

static char *
strip_microsoft(const char *iid)
{
    if (iid == NULL)
        return NULL;
    return g_strdup(g_str_has_prefix(iid, "Microsoft:") ? iid + 10 : iid);
}

/* Checkpoints of a VM: the Snapshot VSSDs (hyperv.md §2.2). */
GPtrArray *
hyperv_list_snapshots(VmshiftBackend *b, const char *vm, guint32 flags, GError **error)
{
    g_autoptr(HvVm) v = NULL;
    g_autoptr(GPtrArray) out = NULL;
    g_autofree char *cur = NULL;

    if (!vmshift_check_flags(flags, 0, "list_snapshots", error))
        return NULL;
    v = find_vm(b, vm, FALSE, error);
    if (v == NULL)
        return NULL;
    /* The VM's own settings name the checkpoint it runs from as Parent. */
    cur = path_key(hv_inst_get(v->vssd, "Parent"), "InstanceID");
    out = vmshift_list_new((GDestroyNotify)vmshift_snapshot_free);
    for (guint i = 0; i < v->snaps->len; i++) {
        HvInstance *s = v->snaps->pdata[i];
        VmshiftSnapshot *sn = vmshift_snapshot_new();
        const char *ct = hv_inst_get(s, "CreationTime");
        g_autofree char *parent = path_key(hv_inst_get(s, "Parent"), "InstanceID");
        sn->id = strip_microsoft(hv_inst_get(s, "InstanceID"));
        sn->name = g_strdup(hv_inst_get(s, "ElementName"));
        sn->parent = strip_microsoft(parent);
        sn->current = cur != NULL && g_strcmp0(cur, hv_inst_get(s, "InstanceID")) == 0;
        if (ct != NULL) {
            g_autoptr(GDateTime) dt = g_date_time_new_from_iso8601(ct, NULL);
            if (dt != NULL)
                sn->created = g_date_time_to_unix(dt);
        }
        g_ptr_array_add(out, sn);
    }
    return g_steal_pointer(&out);
}

GPtrArray *
hyperv_list_networks(VmshiftBackend *b, const char *host, guint32 flags, GError **error)
{
    g_autoptr(GPtrArray) out = NULL;

    if (!vmshift_check_flags(flags, 0, "list_networks", error) || !check_host_arg(b, host, error))
        return NULL;
    out = vmshift_list_new((GDestroyNotify)vmshift_network_free);
    for (guint i = 0; i < b->hosts->len; i++) {
        HvHost *h = b->hosts->pdata[i];
        g_autoptr(GPtrArray) sws = NULL;
        if (!host_usable(h) || (host != NULL && h != find_host(b, host)))
            continue;
        sws = hv_wql(h, "root/virtualization/v2", "SELECT * FROM Msvm_VirtualEthernetSwitch",
                     NULL, error);
        if (sws == NULL)
            return NULL;
        for (guint j = 0; j < sws->len; j++) {
            const char *name = hv_inst_get(sws->pdata[j], "ElementName");
            VmshiftNetwork *n = NULL;
            for (guint k = 0; k < out->len; k++)
                if (g_strcmp0(((VmshiftNetwork *)out->pdata[k])->name, name) == 0)
                    n = out->pdata[k];
            if (n == NULL) {
                n = vmshift_network_new();
                n->id = g_strdup(name);
                n->name = g_strdup(name);
                n->kind = g_strdup("vswitch");
                n->hosts = vmshift_string_list_new();
                g_ptr_array_add(out, n);
            }
            g_ptr_array_add(n->hosts, g_strdup(h->name));
        }
    }
    return g_steal_pointer(&out);
}

GPtrArray *
hyperv_list_volumes(VmshiftBackend *b, const char *host, guint32 flags, GError **error)
{
    g_autoptr(GPtrArray) out = NULL;

    if (!vmshift_check_flags(flags, 0, "list_volumes", error) || !check_host_arg(b, host, error))
        return NULL;
    out = vmshift_list_new((GDestroyNotify)vmshift_volume_free);
    for (guint i = 0; i < b->hosts->len; i++) {
        HvHost *h = b->hosts->pdata[i];
        g_autoptr(GPtrArray) vols = NULL;
        g_autoptr(HvInstance) vsms = NULL;
        HvInstance *def;
        if (!host_usable(h) || (host != NULL && h != find_host(b, host)))
            continue;
        vsms = first_of(h, "root/virtualization/v2",
                        "SELECT * FROM Msvm_VirtualSystemManagementServiceSettingData", NULL,
                        error);
        if (vsms == NULL)
            return NULL;
        vols = host_volumes(h, error);
        if (vols == NULL)
            return NULL;
        def = volume_of(vols, hv_inst_get(vsms, "DefaultExternalDataRoot"));
        for (guint j = 0; j < vols->len; j++) {
            HvInstance *v = vols->pdata[j];
            const char *dev = hv_inst_get(v, "DeviceID");
            VmshiftVolume *vol = NULL;
            gboolean shared = volume_is_shared(v);
            for (guint k = 0; shared && k < out->len; k++)
                if (g_strcmp0(((VmshiftVolume *)out->pdata[k])->id, dev) == 0)
                    vol = out->pdata[k];
            if (vol != NULL) {
                g_ptr_array_add(vol->hosts, g_strdup(h->name));
                continue;
            }
            vol = vmshift_volume_new();
            vol->id = g_strdup(dev);
            vol->name = g_strdup(hv_inst_get(v, "Label") != NULL && hv_inst_get(v, "Label")[0]
                                     ? hv_inst_get(v, "Label") : hv_inst_get(v, "Name"));
            vol->path = volume_root(hv_inst_get(v, "Name"));
            vol->shared = shared;
            vol->host = shared ? NULL : g_strdup(h->name);
            vol->kind = g_strdup(shared ? "csv" : "volume");
            vol->capacity = (guint64)hv_inst_get_int(v, "Capacity", 0);
            vol->free = (guint64)hv_inst_get_int(v, "FreeSpace", 0);
            vol->is_default = v == def;
            if (shared) {
                vol->hosts = vmshift_string_list_new();
                g_ptr_array_add(vol->hosts, g_strdup(h->name));
            }
            g_ptr_array_add(out, vol);
        }
    }
    return g_steal_pointer(&out);
}

/* ---- checkpoint state ---------------------------------------------------- */

static VmshiftCheckpointState *
checkpoint_of(HvVm *v, GError **error)
{
    VmshiftCheckpointState *st = vmshift_checkpoint_state_new();
    g_autoptr(GString) detail = g_string_new(NULL);
    g_autofree char *q = NULL;
    g_autoptr(GPtrArray) jobs = NULL;
    g_autoptr(GPtrArray) snaps = NULL;
    gint64 os2 = opstatus2(v->cs);
    const char *guid = hv_inst_get(v->cs, "Name");

    st->percent = -1;
    if (os2 == 32770 || os2 == 32772) {
        st->merging = TRUE;
        g_string_append_printf(detail, "Hyper-V reports \"%s\" (OperationalStatus %" G_GINT64_FORMAT ")",
                               opstatus_text(os2), os2);
    }
    if (hv_inst_get_int(v->cs, "EnabledState", 0) == 32771) {
        st->merging = TRUE;
        g_string_append_printf(detail, "%sthe VM is Snapshotting (EnabledState 32771)",
                               detail->len ? "; " : "");
    }
    q = g_strdup_printf("ASSOCIATORS OF {Msvm_ComputerSystem.CreationClassName="
                        "'Msvm_ComputerSystem',Name='%s'} WHERE AssocClass = "
                        "Msvm_AffectedJobElement ResultClass = Msvm_ConcreteJob", guid);
    jobs = hv_wql(v->host, "root/virtualization/v2", q, NULL, error);
    if (jobs == NULL) {
        vmshift_checkpoint_state_free(st);
        return NULL;
    }
    for (guint i = 0; i < jobs->len; i++) {
        HvInstance *j = jobs->pdata[i];
        gint64 state = hv_inst_get_int(j, "JobState", 0);
        gint64 type = hv_inst_get_int(j, "JobType", 0);
        if (state < 2 || state > 6 || (type != 50 && type != 70 && type != 71 && type != 72))
            continue;
        st->merging = TRUE;
        st->percent = (gint32)hv_inst_get_int(j, "PercentComplete", -1);
        g_string_append_printf(detail, "%sjob \"%s\" (JobType %" G_GINT64_FORMAT ") at %d%%",
                               detail->len ? "; " : "",
                               hv_inst_get(j, "Caption") ? hv_inst_get(j, "Caption") : "?",
                               type, st->percent);
        if (hv_inst_get(j, "StartTime") != NULL) {
            g_autoptr(GDateTime) t = g_date_time_new_from_iso8601(hv_inst_get(j, "StartTime"),
                                                                  NULL);
            if (t != NULL)
                st->started = g_date_time_to_unix(t);
        }
    }
    if (!st->merging) {
        g_free(q);
        q = g_strdup_printf("ASSOCIATORS OF {Msvm_ComputerSystem.CreationClassName="
                            "'Msvm_ComputerSystem',Name='%s'} WHERE AssocClass = "
                            "Msvm_SnapshotOfVirtualSystem ResultClass = "
                            "Msvm_VirtualSystemSettingData", guid);
        snaps = hv_wql(v->host, "root/virtualization/v2", q, NULL, error);
        if (snaps == NULL) {
            vmshift_checkpoint_state_free(st);
            return NULL;
        }
        for (guint i = 0; snaps->len == 0 && i < v->sasds->len; i++) {
            const char *p = hv_inst_get(v->sasds->pdata[i], "HostResource");
            if (p != NULL && g_str_has_suffix(p, ".avhdx")) {
                st->needs_consolidation = TRUE;
                g_string_append_printf(detail, "%s%s is a differencing disk but the VM has "
                                       "no checkpoint", detail->len ? "; " : "", p);
            }
        }
    }
    if (detail->len)
        st->detail = g_strdup(detail->str);
    return st;
}

VmshiftCheckpointState *
hyperv_checkpoint_state(VmshiftBackend *b, const char *vm, guint32 flags, GError **error)
{
    g_autoptr(HvVm) v = NULL;

    if (!vmshift_check_flags(flags, 0, "checkpoint_state", error))
        return NULL;
    v = find_vm(b, vm, FALSE, error);
    return v != NULL ? checkpoint_of(v, error) : NULL;
}

/* ---- migration planning --------------------------------------------------- */

static const char *
mapping_for(GPtrArray *maps, const char *const *keys)
{
    for (guint i = 0; maps != NULL && i < maps->len; i++) {
        VmshiftMapping *m = maps->pdata[i];
        for (guint k = 0; keys[k] != NULL; k++)
            if (keys[k][0] && g_ascii_strcasecmp(m->key, keys[k]) == 0)
                return m->value;
    }
    return NULL;
}

static char *
join_win(const char *dir, const char *file)
{
    gsize n = strlen(dir);

    while (n > 0 && (dir[n - 1] == '\\' || dir[n - 1] == '/'))
        n--;
    return g_strdup_printf("%.*s\\%s", (int)n, dir, file);
}

/* Target path of each disk (NULL entries: the disk stays). */
static GPtrArray *
disk_targets(const HvVm *v, const VmshiftMigrationSpec *spec)
{
    GPtrArray *out = g_ptr_array_new_with_free_func(g_free);

    for (guint i = 0; i < v->sasds->len; i++) {
        HvInstance *s = v->sasds->pdata[i];
        const char *path = hv_inst_get(s, "HostResource");
        const char *iid = hv_inst_get(s, "InstanceID");
        const char *keys[] = { disk_id(s), path ? path : "", iid ? iid : "", NULL };
        const char *dir = mapping_for(spec->disk_paths, keys);
        if (dir == NULL)
            dir = spec->dest_path;
        g_ptr_array_add(out, dir != NULL && path != NULL ? join_win(dir, basename_win(path))
                                                           : NULL);
    }
    return out;
}

static const char *
spec_type_name(guint32 t)
{
    return t == VMSHIFT_MIGRATION_LIVE ? "live migration"
           : t == VMSHIFT_MIGRATION_COLD ? "cold migration" : "storage migration";
}

static void
add_finding(GPtrArray *f, VmshiftSeverity sev, const char *code, const char *subject,
            const char *msg)
{
    g_ptr_array_add(f, vmshift_finding_new(sev, code, subject, "%s", msg));
}

static GPtrArray *
check_vm(VmshiftBackend *b, HvVm *v, const VmshiftMigrationSpec *spec, GError **error)
{
    g_autoptr(GPtrArray) f = vmshift_list_new((GDestroyNotify)vmshift_finding_free);
    g_autoptr(VmshiftCheckpointState) cp = NULL;
    g_autoptr(GPtrArray) targets = NULL;
    g_autoptr(GPtrArray) vols = NULL;
    const char *name = hv_inst_get(v->cs, "ElementName");
    guint32 power = power_state(hv_inst_get_int(v->cs, "EnabledState", 0));
    gint64 os2 = opstatus2(v->cs);
    HvHost *dest = v->host;
    g_autofree char *msg = NULL;

    /* Destination */
    if (spec->type != VMSHIFT_MIGRATION_STORAGE) {
        if (spec->dest_host == NULL) {
            g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_INVALID_ARGUMENT,
                        "%s of %s needs a destination host", spec_type_name(spec->type), name);
            return NULL;
        }
        dest = find_host(b, spec->dest_host);
        if (dest == NULL || !host_usable(dest)) {
            msg = g_strdup_printf("destination %s is not a reachable Hyper-V host of backend "
                                  "%s%s%s", spec->dest_host, b->backend,
                                  dest ? ": " : "", dest ? dest->open_error->message : "");
            add_finding(f, VMSHIFT_SEVERITY_ERROR, "host-unreachable", spec->dest_host, msg);
            return g_steal_pointer(&f);
        }
        if (dest == v->host) {
            msg = g_strdup_printf("%s already runs on %s", name, dest->name);
            add_finding(f, VMSHIFT_SEVERITY_ERROR, "same-host", dest->name, msg);
            return g_steal_pointer(&f);
        }
    }
    /* Merge / busy */
    cp = checkpoint_of(v, error);
    if (cp == NULL)
        return NULL;
    if (cp->merging) {
        g_clear_pointer(&msg, g_free);
        msg = g_strdup_printf("a checkpoint merge is in progress on %s (%s); wait until "
                              "Hyper-V has finished it, then retry", name, cp->detail);
        add_finding(f, VMSHIFT_SEVERITY_ERROR, "merge-in-progress", name, msg);
    } else if (cp->needs_consolidation) {
        g_clear_pointer(&msg, g_free);
        msg = g_strdup_printf("%s: %s", name, cp->detail);
        add_finding(f, VMSHIFT_SEVERITY_WARNING, "consolidation-needed", name, msg);
    }
    if (os2 != 0 && os2 != 32770 && os2 != 32772 && opstatus_text(os2) != NULL) {
        g_clear_pointer(&msg, g_free);
        msg = g_strdup_printf("%s is busy: Hyper-V reports \"%s\" (OperationalStatus "
                              "%" G_GINT64_FORMAT ")", name, opstatus_text(os2), os2);
        add_finding(f, VMSHIFT_SEVERITY_ERROR, "vm-busy", name, msg);
    }
    /* Power state */
    if (spec->type == VMSHIFT_MIGRATION_LIVE && power != VMSHIFT_POWER_RUNNING) {
        g_clear_pointer(&msg, g_free);
        msg = g_strdup_printf("%s is not running; it will be moved while off", name);
        add_finding(f, VMSHIFT_SEVERITY_WARNING, "vm-not-running", name, msg);
    } else if (spec->type == VMSHIFT_MIGRATION_COLD && power == VMSHIFT_POWER_RUNNING) {
        g_clear_pointer(&msg, g_free);
        msg = g_strdup_printf("%s is running; stop it for a cold migration or use --live",
                              name);
        add_finding(f, VMSHIFT_SEVERITY_ERROR, "vm-running", name, msg);
    }
    if (power == VMSHIFT_POWER_UNKNOWN) {
        g_clear_pointer(&msg, g_free);
        msg = g_strdup_printf("%s is in state %" G_GINT64_FORMAT " and cannot be migrated now",
                              name, hv_inst_get_int(v->cs, "EnabledState", 0));
        add_finding(f, VMSHIFT_SEVERITY_ERROR, "vm-state", name, msg);
    }
    /* Migration service on both hosts */
    if (spec->type != VMSHIFT_MIGRATION_STORAGE) {
        HvHost *sides[2] = { v->host, dest };
        for (int i = 0; i < 2; i++) {
            g_autoptr(HvInstance) msd = first_of(sides[i], "root/virtualization/v2",
                "SELECT * FROM Msvm_VirtualSystemMigrationServiceSettingData", NULL, error);
            g_autoptr(HvInstance) svc = NULL;
            if (msd == NULL)
                return NULL;
            svc = first_of(sides[i], "root/virtualization/v2",
                           "SELECT * FROM Msvm_VirtualSystemMigrationService", NULL, error);
            if (svc == NULL)
                return NULL;
            g_clear_pointer(&msg, g_free);
            if (g_strcmp0(hv_inst_get(msd, "EnableVirtualSystemMigration"), "false") == 0) {
                msg = g_strdup_printf("live migration is not enabled on %s "
                                      "(Enable-VMMigration)", sides[i]->name);
                add_finding(f, VMSHIFT_SEVERITY_ERROR, "migration-disabled", sides[i]->name,
                            msg);
            } else if (i == 1 && hv_inst_get_all(svc, "MigrationServiceListenerIPAddressList")
                                         ->len == 0) {
                msg = g_strdup_printf("%s has no live migration network "
                                      "(Set-VMMigrationNetwork)", sides[i]->name);
                add_finding(f, VMSHIFT_SEVERITY_ERROR, "no-migration-network",
                            sides[i]->name, msg);
            } else if (hv_inst_get_int(svc, "ActiveVirtualSystemMigrationCount", 0)
                       >= hv_inst_get_int(msd, "MaximumActiveVirtualSystemMigration", 2)) {
                msg = g_strdup_printf("%s already runs its maximum of %" G_GINT64_FORMAT
                                      " live migrations; this one will wait",
                                      sides[i]->name,
                                      hv_inst_get_int(msd, "MaximumActiveVirtualSystemMigration", 2));
                add_finding(f, VMSHIFT_SEVERITY_WARNING, "migration-limit", sides[i]->name,
                            msg);
            }
        }
        /* Networks */
        if (dest != v->host) {
            g_autoptr(GPtrArray) sws = hv_wql(dest, "root/virtualization/v2",
                                              "SELECT * FROM Msvm_VirtualEthernetSwitch", NULL,
                                              error);
            g_autoptr(VmshiftVm) pub = to_vm(v);
            if (sws == NULL)
                return NULL;
            for (guint i = 0; i < pub->nics->len; i++) {
                VmshiftNic *n = pub->nics->pdata[i];
                const char *keys[] = { n->id, n->mac ? n->mac : "", NULL };
                const char *want = mapping_for(spec->networks, keys);
                gboolean found = FALSE;
                if (want == NULL)
                    want = n->network;
                if (want == NULL)
                    continue;
                for (guint j = 0; j < sws->len; j++)
                    if (g_strcmp0(hv_inst_get(sws->pdata[j], "ElementName"), want) == 0)
                        found = TRUE;
                if (!found) {
                    g_clear_pointer(&msg, g_free);
                    msg = g_strdup_printf("NIC %s of %s is connected to switch \"%s\", which "
                                          "%s has not; map it with --network %s=SWITCH",
                                          n->id, name, want, dest->name, n->id);
                    add_finding(f, VMSHIFT_SEVERITY_ERROR, "nic-unmapped", n->id, msg);
                }
            }
        }
    }
    /* Storage reach and space */
    targets = disk_targets(v, spec);
    vols = host_volumes(dest, error);
    if (vols == NULL)
        return NULL;
    {
        g_autoptr(GHashTable) need = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
        g_autoptr(GPtrArray) src_vols = dest == v->host ? NULL : host_volumes(v->host, error);
        if (dest != v->host && src_vols == NULL)
            return NULL;
        if (spec->type == VMSHIFT_MIGRATION_STORAGE && spec->dest_path == NULL
            && (spec->disk_paths == NULL || spec->disk_paths->len == 0)) {
            g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_INVALID_ARGUMENT,
                        "storage migration of %s needs --path or --disk-path", name);
            return NULL;
        }
        for (guint i = 0; i < v->sasds->len; i++) {
            const char *path = hv_inst_get(v->sasds->pdata[i], "HostResource");
            const char *t = targets->pdata[i];
            const char *id = disk_id(v->sasds->pdata[i]);
            HvInstance *vol;
            g_clear_pointer(&msg, g_free);
            if (t == NULL) {
                HvInstance *sv = src_vols ? volume_of(src_vols, path) : NULL;
                if (dest != v->host && !(path != NULL && g_str_has_prefix(path, "\\\\"))
                    && (sv == NULL || !volume_is_shared(sv))) {
                    msg = g_strdup_printf("disk %s of %s is on storage local to %s (%s); "
                                          "give --path to move it too", id, name,
                                          v->host->name, path);
                    add_finding(f, VMSHIFT_SEVERITY_ERROR, "storage-not-shared", id, msg);
                }
                continue;
            }
            vol = volume_of(vols, t);
            if (vol == NULL) {
                msg = g_strdup_printf("no volume on %s holds %s (for disk %s)", dest->name, t,
                                      id);
                add_finding(f, VMSHIFT_SEVERITY_ERROR, "path-not-found", id, msg);
                continue;
            }
            {
                const char *dev = hv_inst_get(vol, "DeviceID");
                guint64 *n = g_hash_table_lookup(need, dev);
                if (n == NULL) {
                    n = g_new0(guint64, 1);
                    g_hash_table_insert(need, g_strdup(dev), n);
                }
                *n += *(guint64 *)v->sizes->pdata[i];
            }
        }
        for (guint i = 0; i < vols->len; i++) {
            const char *dev = hv_inst_get(vols->pdata[i], "DeviceID");
            guint64 *n = dev ? g_hash_table_lookup(need, dev) : NULL;
            guint64 free_b = (guint64)hv_inst_get_int(vols->pdata[i], "FreeSpace", 0);
            if (n != NULL && *n > free_b) {
                g_clear_pointer(&msg, g_free);
                msg = g_strdup_printf("%s on %s has %" G_GUINT64_FORMAT " MiB free; %s needs "
                                      "%" G_GUINT64_FORMAT " MiB there",
                                      hv_inst_get(vols->pdata[i], "Name"), dest->name,
                                      free_b >> 20, name, *n >> 20);
                add_finding(f, VMSHIFT_SEVERITY_ERROR, "no-space",
                            hv_inst_get(vols->pdata[i], "Name"), msg);
            }
        }
    }
    return g_steal_pointer(&f);
}

GPtrArray *
hyperv_check_migration(VmshiftBackend *b, const VmshiftMigrationSpec *spec, guint32 flags,
                       GError **error)
{
    g_autoptr(HvVm) v = NULL;

    if (!vmshift_check_flags(flags, 0, "check_migration", error))
        return NULL;
    v = find_vm(b, spec->vm, TRUE, error);
    return v != NULL ? check_vm(b, v, spec, error) : NULL;
}

/* ---- migration ------------------------------------------------------------ */

static const char *
return_value_text(gint64 rv)
{
    switch (rv) {
    case 32768: return "failed";
    case 32769: return "access denied";
    case 32770: return "not supported";
    case 32771: return "status unknown";
    case 32772: return "timeout";
    case 32773: return "invalid parameter";
    case 32774: return "system is in use";
    case 32775: return "invalid state for this operation";
    case 32776: return "incorrect data type";
    case 32777: return "system is not available";
    case 32778: return "out of memory";
    default: return "error";
    }
}

static int
return_value_code(gint64 rv)
{
    switch (rv) {
    case 32769: return VMSHIFT_ERROR_PERMISSION;
    case 32770: return VMSHIFT_ERROR_NOT_SUPPORTED;
    case 32772: return VMSHIFT_ERROR_TIMEOUT;
    case 32773: case 32776: return VMSHIFT_ERROR_INVALID_ARGUMENT;
    case 32774: return VMSHIFT_ERROR_BUSY;
    case 32775: return VMSHIFT_ERROR_CONFLICT;
    case 32778: return VMSHIFT_ERROR_NO_SPACE;
    default: return VMSHIFT_ERROR_FAILED;
    }
}

static char *
flatten(const char *s)
{
    GString *o = g_string_new(NULL);
    gboolean nl = FALSE;

    for (; s != NULL && *s; s++) {
        if (*s == '\r' || *s == '\n') {
            nl = o->len > 0;
            continue;
        }
        if (nl) {
            while (o->len && (o->str[o->len - 1] == ' ' || o->str[o->len - 1] == '.'))
                g_string_truncate(o, o->len - 1);
            g_string_append(o, ": ");
            nl = FALSE;
        }
        g_string_append_c(o, *s);
    }
    while (o->len && (o->str[o->len - 1] == ' ' || o->str[o->len - 1] == '.'))
        g_string_truncate(o, o->len - 1);
    return g_string_free(o, FALSE);
}

/* Properties of a SASD with their CIM types (MSDOC
 * msvm-storageallocationsettingdata), for NewResourceSettingData. */
static const char *const sasd_types[][2] = {
    { "Address", "string" }, { "AddressOnParent", "string" }, { "AllocationUnits", "string" },
    { "AutomaticAllocation", "boolean" }, { "AutomaticDeallocation", "boolean" },
    { "Caption", "string" }, { "Description", "string" }, { "ElementName", "string" },
    { "InstanceID", "string" }, { "Limit", "uint64" }, { "MappingBehavior", "uint16" },
    { "Parent", "string" }, { "Reservation", "uint64" }, { "ResourceSubType", "string" },
    { "ResourceType", "uint16" }, { "VirtualQuantity", "uint64" }, { "Weight", "uint32" },
};

static char *
sasd_with_path(const HvInstance *s, const char *path)
{
    HvCimXml *x = hv_cimxml_new("Msvm_StorageAllocationSettingData");
    const char *hr[] = { path };

    for (guint i = 0; i < G_N_ELEMENTS(sasd_types); i++) {
        const char *val = hv_inst_get(s, sasd_types[i][0]);
        if (val == NULL)
            continue;
        if (strcmp(sasd_types[i][1], "boolean") == 0)
            val = g_ascii_strcasecmp(val, "true") == 0 ? "TRUE" : "FALSE";
        hv_cimxml_prop(x, sasd_types[i][0], sasd_types[i][1], val);
    }
    hv_cimxml_prop_array(x, "HostResource", "string", hr, 1);
    hv_cimxml_prop(x, "PoolID", "string", "");
    return hv_cimxml_finish(x);
}

static char *
cdata_param(const char *name, const char *instance)
{
    g_autofree char *e = hv_xml_escape(instance);
    return g_strdup_printf("<p:%s>%s</p:%s>", name, e, name);
}

/* Where the VM is now: sets the job's location; best effort. */
static void
report_location(VmshiftBackend *b, HvVm *v, VmshiftJob *job, const char *job_id)
{
    const char *guid = hv_inst_get(v->cs, "Name");
    g_autofree char *where = g_strdup_printf("Name = '%s'", guid);

    for (guint i = 0; i < b->hosts->len; i++) {
        HvHost *h = b->hosts->pdata[i];
        g_autoptr(GPtrArray) css = NULL;
        if (!host_usable(h))
            continue;
        css = host_vm_cs(h, where, NULL);
        if (css != NULL && css->len == 1) {
            guint32 p = power_state(hv_inst_get_int(css->pdata[0], "EnabledState", 0));
            vmshift_job_set_location(job, h->name,
                                     p == VMSHIFT_POWER_RUNNING ? "running"
                                     : p == VMSHIFT_POWER_STOPPED ? "off"
                                     : p == VMSHIFT_POWER_PAUSED ? "paused"
                                     : p == VMSHIFT_POWER_SUSPENDED ? "saved" : "registered");
            return;
        }
    }
    {
        g_autofree char *d = g_strdup_printf("not confirmed: %s could not be asked; Hyper-V "
                                             "job %s may still be running there",
                                             v->host->name, job_id ? job_id : "(none)");
        vmshift_job_set_location(job, v->host->name, d);
    }
}

typedef enum { POLL_DONE, POLL_FAILED, POLL_CANCELLED } PollResult;

/* Polls a job EPR until it ends (hyperv.md §2.6).  Progress goes to @job. */
static PollResult
poll_job(HvHost *h, const HvEpr *epr, VmshiftJob *job, guint64 bytes, char **errmsg,
         gint64 *errcode, GError **error)
{
    const char *iid = hv_epr_selector(epr, "InstanceID");
    const char *sel[] = { "InstanceID", iid, NULL };
    GCancellable *c = vmshift_job_get_cancellable(job);
    gboolean cancel_sent = FALSE;
    guint errors = 0;
    g_autoptr(GError) last = NULL;

    if (iid == NULL || epr->uri == NULL || !g_str_has_prefix(epr->uri, HV_URI_BASE)) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_PROTOCOL,
                    "Hyper-V host %s: job reference without InstanceID", h->name);
        return POLL_FAILED;
    }
    for (;;) {
        g_autoptr(HvInstance) j = NULL;
        gint64 state;

        if (!cancel_sent && g_cancellable_is_cancelled(c)) {
            g_autoptr(GError) e = NULL;
            g_autoptr(HvInstance) out = hv_invoke(h, epr->uri, "RequestStateChange", sel,
                                                  "<p:RequestedState>5</p:RequestedState>",
                                                  NULL, &e);
            cancel_sent = TRUE;
            if (out == NULL)
                vmshift_job_log(job, VMSHIFT_LOG_WARNING, "cancelling Hyper-V job %s: %s", iid,
                                e->message);
            else
                vmshift_job_log(job, VMSHIFT_LOG_INFO,
                                "asked Hyper-V to stop job %s (ReturnValue %s)", iid,
                                hv_inst_get(out, "ReturnValue"));
        }
        g_clear_error(&last);
        j = hv_get(h, epr->uri, sel, "Get job", NULL, &last);
        if (j == NULL) {
            if (++errors >= HV_MAX_POLL_ERRORS) {
                g_propagate_error(error, g_steal_pointer(&last));
                return POLL_FAILED;
            }
            vmshift_job_log(job, VMSHIFT_LOG_WARNING, "polling Hyper-V job %s: %s", iid,
                            last->message);
            g_usleep(HV_POLL_MS * 1000 * errors);
            continue;
        }
        errors = 0;
        state = hv_inst_get_int(j, "JobState", 0);
        {
            gint64 pct = hv_inst_get_int(j, "PercentComplete", 0);
            vmshift_job_set_progress(job, (double)CLAMP(pct, 0, 100));
            if (bytes)
                vmshift_job_set_bytes(job, bytes / 100 * (guint64)CLAMP(pct, 0, 100), bytes);
        }
        if (state == 7 || state == 32768)
            return POLL_DONE;
        if (state == 8 || state == 9 || (cancel_sent && state == 10)) {
            if (cancel_sent)
                return POLL_CANCELLED;
        }
        if (state >= 8 && state <= 11) {
            const char *d = hv_inst_get(j, "ErrorDescription");
            if (d == NULL || !d[0])
                d = hv_inst_get(j, "ErrorSummaryDescription");
            *errmsg = flatten(d != NULL && d[0] ? d : "no error description");
            *errcode = hv_inst_get_int(j, "ErrorCode", 0);
            return POLL_FAILED;
        }
        g_usleep(HV_POLL_MS * 1000);
    }
}

gboolean
hyperv_migrate(VmshiftBackend *b, const VmshiftMigrationSpec *spec, VmshiftJob *job,
               guint32 flags, GError **error)
{
    g_autoptr(HvVm) v = NULL;
    g_autoptr(GPtrArray) targets = NULL;
    g_autoptr(GString) params = g_string_new(NULL);
    g_autoptr(HvInstance) out = NULL;
    g_autoptr(HvInstance) svc = NULL;
    g_autofree char *cs_epr = NULL;
    g_autofree char *msd = NULL;
    g_autofree char *jobid = NULL;
    HvHost *dest = NULL;
    const char *name;
    guint16 mtype;
    gboolean moves_storage = FALSE;
    guint64 bytes = 0;
    gint64 rv;

    if (!vmshift_check_flags(flags, 0, "migrate", error))
        return FALSE;
    if (!vmshift_job_set_phase(job, VMSHIFT_PHASE_VALIDATE, error))
        return FALSE;
    v = find_vm(b, spec->vm, TRUE, error);
    if (v == NULL)
        return FALSE;
    name = hv_inst_get(v->cs, "ElementName");
    vmshift_job_set_location(job, v->host->name, "running");
    if (spec->type != VMSHIFT_MIGRATION_STORAGE) {
        dest = spec->dest_host ? find_host(b, spec->dest_host) : NULL;
        if (dest == NULL || !host_usable(dest)) {
            g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_NOT_FOUND,
                        "%s of %s: %s is not a reachable Hyper-V host of backend %s",
                        spec_type_name(spec->type), name,
                        spec->dest_host ? spec->dest_host : "(none)", b->backend);
            report_location(b, v, job, NULL);
            return FALSE;
        }
    }
    {
        g_autoptr(VmshiftCheckpointState) cp = checkpoint_of(v, error);
        if (cp == NULL)
            return FALSE;
        if (cp->merging) {
            g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_BUSY,
                        "%s of %s refused: a checkpoint merge is in progress on %s (%s); wait "
                        "until it has finished", spec_type_name(spec->type), name,
                        v->host->name, cp->detail);
            report_location(b, v, job, NULL);
            return FALSE;
        }
    }
    if (!vmshift_job_set_phase(job, VMSHIFT_PHASE_PREPARE, error))
        return FALSE;
    targets = disk_targets(v, spec);
    for (guint i = 0; i < targets->len; i++) {
        g_autofree char *inst = NULL;
        g_autofree char *p = NULL;
        if (targets->pdata[i] == NULL)
            continue;
        moves_storage = TRUE;
        bytes += *(guint64 *)v->sizes->pdata[i];
        inst = sasd_with_path(v->sasds->pdata[i], targets->pdata[i]);
        p = cdata_param("NewResourceSettingData", inst);
        g_string_append(params, p);
        vmshift_job_log(job, VMSHIFT_LOG_INFO, "disk %s: %s -> %s",
                        disk_id(v->sasds->pdata[i]),
                        hv_inst_get(v->sasds->pdata[i], "HostResource"),
                        (const char *)targets->pdata[i]);
    }
    if (spec->dest_path != NULL) {
        HvCimXml *x = hv_cimxml_new("Msvm_VirtualSystemSettingData");
        g_autofree char *inst = NULL;
        g_autofree char *p = NULL;
        moves_storage = TRUE;
        hv_cimxml_prop(x, "InstanceID", "string", hv_inst_get(v->vssd, "InstanceID"));
        hv_cimxml_prop(x, "ConfigurationDataRoot", "string", spec->dest_path);
        hv_cimxml_prop(x, "SnapshotDataRoot", "string", spec->dest_path);
        hv_cimxml_prop(x, "SwapFileDataRoot", "string", spec->dest_path);
        inst = hv_cimxml_finish(x);
        p = cdata_param("NewSystemSettingData", inst);
        g_string_prepend(params, p);
    }
    if (spec->type == VMSHIFT_MIGRATION_STORAGE) {
        mtype = 32769;
        if (!moves_storage) {
            g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_INVALID_ARGUMENT,
                        "storage migration of %s: no destination path given", name);
            return FALSE;
        }
    } else {
        mtype = moves_storage ? 32771 : 32768;
    }
    /* MigrationSettingData: TransportType TCP; the destination's migration
     * networks as DestinationIPAddressList (os-win, hyperv.md §2.4). */
    {
        HvCimXml *x = hv_cimxml_new("Msvm_VirtualSystemMigrationSettingData");
        g_autofree char *mt = g_strdup_printf("%u", mtype);
        hv_cimxml_prop(x, "MigrationType", "uint16", mt);
        hv_cimxml_prop(x, "TransportType", "uint16", "5");
        if (dest != NULL) {
            g_autoptr(HvInstance) dsvc = first_of(dest, "root/virtualization/v2",
                "SELECT * FROM Msvm_VirtualSystemMigrationService", NULL, error);
            const GPtrArray *ips;
            if (dsvc == NULL) {
                g_free(hv_cimxml_finish(x));
                report_location(b, v, job, NULL);
                return FALSE;
            }
            ips = hv_inst_get_all(dsvc, "MigrationServiceListenerIPAddressList");
            if (ips->len > 0)
                hv_cimxml_prop_array(x, "DestinationIPAddressList", "string",
                                     (const char *const *)ips->pdata, ips->len);
        }
        msd = hv_cimxml_finish(x);
    }
    {
        const char *sel[] = { "CreationClassName", "Msvm_ComputerSystem", "Name",
                              hv_inst_get(v->cs, "Name"), NULL };
        g_autofree char *m = cdata_param("MigrationSettingData", msd);
        g_autofree char *eh = dest ? hv_xml_escape(dest->dest_name) : NULL;
        g_autofree char *dh = eh ? g_strdup_printf("<p:DestinationHost>%s</p:DestinationHost>",
                                                   eh) : g_strdup("");
        g_autofree char *epr = hv_epr_xml(HV_V2 "Msvm_ComputerSystem", sel);
        cs_epr = g_strdup_printf("<p:ComputerSystem>%s</p:ComputerSystem>%s%s", epr, dh, m);
        g_string_prepend(params, cs_epr);
    }
    /* What repair() needs after the host process died (see hyperv_repair):
     * where the VM was and which VM; the Hyper-V job once it exists. */
    if (!vmshift_job_save(job, "source-host", v->host->name, error)
        || !vmshift_job_save(job, "vm-guid", hv_inst_get(v->cs, "Name"), error)) {
        report_location(b, v, job, NULL);
        return FALSE;
    }
    if (!vmshift_job_set_phase(job, VMSHIFT_PHASE_TRANSFER, error))
        return FALSE;
    if (g_cancellable_set_error_if_cancelled(vmshift_job_get_cancellable(job), error)) {
        report_location(b, v, job, NULL);
        return FALSE;
    }
    {
        const char *sel[] = { "CreationClassName", "Msvm_VirtualSystemMigrationService", NULL };
        vmshift_job_log(job, VMSHIFT_LOG_INFO, "Hyper-V %s of %s from %s%s%s (MigrationType %u)",
                        spec_type_name(spec->type), name, v->host->name,
                        dest ? " to " : "", dest ? dest->name : "", mtype);
        out = hv_invoke(v->host, HV_V2 "Msvm_VirtualSystemMigrationService",
                        "MigrateVirtualSystemToHost", sel, params->str, NULL, error);
    }
    if (out == NULL) {
        g_prefix_error(error, "%s of %s: ", spec_type_name(spec->type), name);
        report_location(b, v, job, NULL);
        return FALSE;
    }
    rv = hv_inst_get_int(out, "ReturnValue", -1);
    if (rv == 4096) {
        const HvEpr *epr = hv_inst_get_epr(out, "Job");
        g_autofree char *errmsg = NULL;
        gint64 errcode = 0;
        PollResult pr;
        if (epr == NULL) {
            g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_PROTOCOL,
                        "%s of %s: Hyper-V host %s started a job but sent no reference to it",
                        spec_type_name(spec->type), name, v->host->name);
            report_location(b, v, job, NULL);
            return FALSE;
        }
        jobid = g_strdup(hv_epr_selector(epr, "InstanceID"));
        {
            g_autoptr(GError) e = NULL;
            if (!vmshift_job_save(job, "hyperv-job-uri", epr->uri, &e)
                || !vmshift_job_save(job, "hyperv-job", jobid, &e))
                vmshift_job_log(job, VMSHIFT_LOG_WARNING,
                                "could not journal Hyper-V job %s (%s); a repair after a "
                                "crash will look the job up by VM", jobid, e->message);
        }
        vmshift_job_set_result(job, "hyperv-job", jobid);
        pr = poll_job(v->host, epr, job, bytes, &errmsg, &errcode, error);
        if (pr == POLL_CANCELLED) {
            g_set_error(error, G_IO_ERROR, G_IO_ERROR_CANCELLED,
                        "%s of %s cancelled; Hyper-V job %s stopped",
                        spec_type_name(spec->type), name, jobid);
            report_location(b, v, job, jobid);
            return FALSE;
        }
        if (pr == POLL_FAILED) {
            if (errmsg != NULL)
                g_set_error(error, VMSHIFT_ERROR,
                            strstr(errmsg, "0x80070070") ? VMSHIFT_ERROR_NO_SPACE
                                                         : VMSHIFT_ERROR_FAILED,
                            "%s of %s from %s failed (Hyper-V job %s, ErrorCode %" G_GINT64_FORMAT
                            "): %s", spec_type_name(spec->type), name, v->host->name, jobid,
                            errcode, errmsg);
            else
                g_prefix_error(error, "%s of %s: lost track of Hyper-V job %s: ",
                               spec_type_name(spec->type), name, jobid);
            report_location(b, v, job, jobid);
            return FALSE;
        }
    } else if (rv != 0) {
        g_set_error(error, VMSHIFT_ERROR, return_value_code(rv),
                    "%s of %s refused by Hyper-V host %s: MigrateVirtualSystemToHost returned "
                    "%" G_GINT64_FORMAT " (%s)", spec_type_name(spec->type), name, v->host->name,
                    rv, return_value_text(rv));
        report_location(b, v, job, NULL);
        return FALSE;
    }
    if (!vmshift_job_set_phase(job, VMSHIFT_PHASE_SWITCHOVER, error))
        return FALSE;
    vmshift_job_set_progress(job, 100);
    report_location(b, v, job, jobid);
    (void)svc;
    return TRUE;
}

/* ---- repair ------------------------------------------------------------- */

G_DEFINE_AUTOPTR_CLEANUP_FUNC(HvEpr, hv_epr_free)

static gboolean
job_state_running(gint64 st)
{
    return st >= 2 && st <= 6; /* New, Starting, Running, Suspended, Shutting Down */
}

static gboolean
job_state_completed(gint64 st)
{
    return st == 7 || st == 32768;
}

/* The interrupted job's Hyper-V job on @h: by its saved InstanceID, else the
 * running migration job of the VM.  NULL without @error: there is none. */
static HvInstance *
repair_find_job(HvHost *h, const char *uri, const char *jid, const char *guid, GError **error)
{
    if (jid != NULL) {
        const char *sel[] = { "InstanceID", jid, NULL };
        g_autoptr(GError) e = NULL;
        HvInstance *j = hv_get(h, uri, sel, "Get job", NULL, &e);
        if (j != NULL)
            return j;
        if (!g_error_matches(e, VMSHIFT_ERROR, VMSHIFT_ERROR_NOT_FOUND)) {
            g_propagate_error(error, g_steal_pointer(&e));
            return NULL;
        }
        return NULL; /* ended more than TimeBeforeRemoval ago */
    }
    if (guid != NULL && wql_safe(guid)) {
        g_autofree char *q = g_strdup_printf("SELECT * FROM Msvm_MigrationJob WHERE "
                                             "VirtualSystemName = '%s'", guid);
        g_autoptr(GPtrArray) js = hv_wql(h, "root/virtualization/v2", q, NULL, error);
        if (js == NULL)
            return NULL;
        for (guint i = 0; i < js->len; i++)
            if (job_state_running(hv_inst_get_int(js->pdata[i], "JobState", 0)))
                return g_ptr_array_steal_index(js, i);
    }
    return NULL;
}

/* Whether @v sits where @spec wanted it. */
static gboolean
repair_vm_at_target(VmshiftBackend *b, HvVm *v, const VmshiftMigrationSpec *spec)
{
    if (spec->type != VMSHIFT_MIGRATION_STORAGE) {
        HvHost *d = spec->dest_host ? find_host(b, spec->dest_host) : NULL;
        if (d == NULL || d != v->host)
            return FALSE;
    }
    if (spec->dest_path != NULL) {
        const char *root = hv_inst_get(v->vssd, "ConfigurationDataRoot");
        g_autofree char *want = join_win(spec->dest_path, "x");
        g_autofree char *have = root ? join_win(root, "x") : NULL;
        return have != NULL && g_ascii_strcasecmp(want, have) == 0;
    }
    if (spec->disk_paths != NULL && spec->disk_paths->len > 0) {
        g_autoptr(GPtrArray) t = disk_targets(v, spec);
        for (guint i = 0; i < t->len; i++)
            if (t->pdata[i] != NULL
                && g_ascii_strcasecmp(t->pdata[i],
                                      hv_inst_get(v->sasds->pdata[i], "HostResource")) != 0)
                return FALSE;
    }
    return TRUE;
}

/*
 * repair: the vmshift process running a migration died; Hyper-V's own job
 * may still be running on the source host (the migration runs inside VMMS,
 * not in vmshift).  Decision (docs/hyperv.md "Repair"):
 *  - Hyper-V job still running and the interrupted job had not reached
 *    switchover: cancel it (RequestStateChange 5) and wait until it ends, so
 *    the VM keeps running only at the source ("rolled-back").  If it
 *    completes before the cancel lands, it is "resumed".
 *  - still running at or after switchover: wait for it to end.
 *  - completed: "resumed" (the VM is at the destination; the ACLs of moved
 *    files are re-created, as after a normal migration).
 *  - failed, killed or none: "rolled-back", with the VM where it is; when
 *    the job record is gone (Hyper-V drops it 5 minutes after it ended),
 *    the outcome is read from where the VM actually is.
 * The location is always taken from the hosts, never assumed.
 */
gboolean
hyperv_repair(VmshiftBackend *b, VmshiftJob *job, guint32 flags, GError **error)
{
    const VmshiftMigrationSpec *spec = vmshift_job_get_spec(job);
    VmshiftPhase phase = vmshift_job_get_phase(job);
    g_autofree char *jid = vmshift_job_get_saved(job, "hyperv-job");
    g_autofree char *juri = vmshift_job_get_saved(job, "hyperv-job-uri");
    g_autofree char *src = vmshift_job_get_saved(job, "source-host");
    g_autofree char *guid = vmshift_job_get_saved(job, "vm-guid");
    g_autoptr(HvInstance) hj = NULL;
    g_autoptr(HvVm) v = NULL;
    g_autoptr(GError) e = NULL;
    g_autofree char *outcome_detail = NULL;
    HvHost *sh = NULL;
    const char *outcome = NULL;
    const char *vmkey;
    gint64 st = -1;

    if (!vmshift_check_flags(flags, 0, "repair", error))
        return FALSE;
    if (spec == NULL) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_INVALID_ARGUMENT,
                    "repair of job %s: not a migration", vmshift_job_get_id(job));
        return FALSE;
    }
    vmkey = guid != NULL ? guid : spec->vm;
    if (juri == NULL || !g_str_has_prefix(juri, HV_V2)) {
        g_free(juri);
        juri = g_strdup(HV_V2 "Msvm_MigrationJob");
    }
    if (src == NULL) {
        /* Killed before anything was sent to Hyper-V: look where the VM is. */
        g_autoptr(HvVm) w = find_vm(b, vmkey, FALSE, error);
        if (w == NULL)
            return FALSE;
        sh = w->host;
    } else {
        sh = find_host(b, src);
    }
    if (sh == NULL || !host_usable(sh)) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_CONNECTION,
                    "repair of %s: source Hyper-V host %s is not reachable; the Hyper-V job "
                    "%s may still be running there, try again", spec->vm,
                    src ? src : "(unknown)", jid ? jid : "(none recorded)");
        return FALSE;
    }
    hj = repair_find_job(sh, juri, jid, guid, &e);
    if (hj == NULL && e != NULL) {
        g_propagate_prefixed_error(error, g_steal_pointer(&e), "repair of %s: ", spec->vm);
        return FALSE;
    }
    if (hj != NULL) {
        const char *iid = hv_inst_get(hj, "InstanceID");
        if (jid == NULL && iid != NULL)
            jid = g_strdup(iid);
        st = hv_inst_get_int(hj, "JobState", 0);
        vmshift_job_log(job, VMSHIFT_LOG_INFO, "Hyper-V job %s on %s: JobState %" G_GINT64_FORMAT
                        ", %" G_GINT64_FORMAT "%%", jid, sh->name, st,
                        hv_inst_get_int(hj, "PercentComplete", 0));
    } else {
        vmshift_job_log(job, VMSHIFT_LOG_INFO, "no Hyper-V job of %s on %s%s%s", spec->vm,
                        sh->name, jid ? " (job " : "", jid ? jid : "");
        if (jid != NULL)
            vmshift_job_log(job, VMSHIFT_LOG_INFO, "Hyper-V job %s ended long ago; deciding "
                            "by where the VM is", jid);
    }
    if (hj != NULL && job_state_running(st)) {
        const char *sel[] = { "InstanceID", jid, NULL };
        g_autoptr(HvEpr) epr = g_new0(HvEpr, 1);
        g_autofree char *errmsg = NULL;
        gint64 errcode = 0;
        PollResult pr;

        epr->uri = g_strdup(juri);
        epr->names = g_ptr_array_new_with_free_func(g_free);
        epr->values = g_ptr_array_new_with_free_func(g_free);
        g_ptr_array_add(epr->names, g_strdup("InstanceID"));
        g_ptr_array_add(epr->values, g_strdup(jid));
        if (phase < VMSHIFT_PHASE_SWITCHOVER) {
            g_autoptr(HvInstance) out = hv_invoke(sh, juri, "RequestStateChange", sel,
                                                  "<p:RequestedState>5</p:RequestedState>",
                                                  NULL, &e);
            if (out == NULL) {
                vmshift_job_log(job, VMSHIFT_LOG_WARNING, "cancelling Hyper-V job %s: %s; "
                                "waiting for it instead", jid, e->message);
                g_clear_error(&e);
            } else {
                vmshift_job_log(job, VMSHIFT_LOG_INFO, "interrupted before switchover: asked "
                                "Hyper-V to stop job %s (ReturnValue %s)", jid,
                                hv_inst_get(out, "ReturnValue"));
            }
        } else {
            vmshift_job_log(job, VMSHIFT_LOG_INFO, "interrupted in %s: waiting for Hyper-V "
                            "job %s to finish", vmshift_phase_name(phase), jid);
        }
        pr = poll_job(sh, epr, job, 0, &errmsg, &errcode, &e);
        if (pr == POLL_DONE) {
            st = 7;
        } else if (errmsg != NULL || pr == POLL_CANCELLED) {
            st = 9;
            if (errmsg != NULL)
                outcome_detail = g_strdup_printf("Hyper-V job %s ended: %s", jid, errmsg);
        } else {
            g_autoptr(HvVm) w = find_vm(b, vmkey, FALSE, NULL);
            if (w != NULL)
                report_location(b, w, job, jid);
            g_propagate_prefixed_error(error, g_steal_pointer(&e),
                                       "repair of %s: lost track of Hyper-V job %s: ",
                                       spec->vm, jid);
            return FALSE;
        }
    }
    v = find_vm(b, vmkey, FALSE, error);
    if (v == NULL) {
        g_prefix_error(error, "repair of %s: ", spec->vm);
        return FALSE;
    }
    report_location(b, v, job, jid);
    if (hj != NULL && job_state_completed(st))
        outcome = "resumed";
    else if (hj != NULL)
        outcome = "rolled-back";
    else
        outcome = repair_vm_at_target(b, v, spec) ? "resumed" : "rolled-back";
    if (strcmp(outcome, "resumed") == 0 && !repair_vm_at_target(b, v, spec))
        vmshift_job_log(job, VMSHIFT_LOG_WARNING, "Hyper-V job %s completed but %s is on %s, "
                        "not where the job asked", jid ? jid : "", spec->vm, v->host->name);
    if (strcmp(outcome, "resumed") == 0
        && (spec->dest_path != NULL || (spec->disk_paths && spec->disk_paths->len > 0))) {
        g_autoptr(GError) ae = NULL;
        if (!vmshift_job_set_phase(job, VMSHIFT_PHASE_ACL, &ae)
            || !hyperv_recreate_acl(b, hv_inst_get(v->cs, "Name"), job, 0, &ae))
            vmshift_job_log(job, VMSHIFT_LOG_WARNING, "storage moved but ACLs not re-created "
                            "(%s); run vmshift acl recreate %s", ae->message, spec->vm);
    }
    vmshift_job_set_result(job, "repair", outcome);
    if (outcome_detail != NULL)
        vmshift_job_log(job, VMSHIFT_LOG_INFO, "%s", outcome_detail);
    vmshift_job_log(job, VMSHIFT_LOG_INFO, "repair: %s; %s is on %s", outcome, spec->vm,
                    v->host->name);
    return TRUE;
}

/* ---- ACLs (hyperv.md §3) ------------------------------------------------- */

static char *
vm_sid(const char *guid)
{
    guint8 b[16];
    guint32 r[4];
    unsigned int x[11];

    if (sscanf(guid, "%8x-%4x-%4x-%2x%2x-%2x%2x%2x%2x%2x%2x", &x[0], &x[1], &x[2], &x[3],
               &x[4], &x[5], &x[6], &x[7], &x[8], &x[9], &x[10]) != 11)
        return NULL;
    /* GUID bytes in Windows (little-endian) order, read as 4 LE uint32 */
    b[0] = x[0] & 0xff; b[1] = (x[0] >> 8) & 0xff; b[2] = (x[0] >> 16) & 0xff;
    b[3] = (x[0] >> 24) & 0xff; b[4] = x[1] & 0xff; b[5] = (x[1] >> 8) & 0xff;
    b[6] = x[2] & 0xff; b[7] = (x[2] >> 8) & 0xff;
    for (int i = 0; i < 8; i++)
        b[8 + i] = (guint8)x[3 + i];
    for (int i = 0; i < 4; i++)
        r[i] = (guint32)b[4 * i] | (guint32)b[4 * i + 1] << 8 | (guint32)b[4 * i + 2] << 16
               | (guint32)b[4 * i + 3] << 24;
    return g_strdup_printf("S-1-5-83-1-%u-%u-%u-%u", r[0], r[1], r[2], r[3]);
}

static gboolean
sid_bytes(const char *sid, GByteArray *out)
{
    g_auto(GStrv) p = g_strsplit(sid, "-", -1);
    guint n = g_strv_length(p);
    guint64 auth, v;
    guint8 hdr[8];

    if (n < 3 || n > 18 || g_ascii_strcasecmp(p[0], "S") != 0
        || !g_ascii_string_to_unsigned(p[1], 10, 0, 255, &v, NULL)
        || !g_ascii_string_to_unsigned(p[2], 10, 0, G_GUINT64_CONSTANT(0xffffffffffff), &auth,
                                       NULL))
        return FALSE;
    hdr[0] = (guint8)v;
    hdr[1] = (guint8)(n - 3);
    for (int i = 0; i < 6; i++)
        hdr[2 + i] = (guint8)(auth >> (8 * (5 - i)));
    g_byte_array_append(out, hdr, 8);
    for (guint i = 3; i < n; i++) {
        guint8 le[4];
        if (!g_ascii_string_to_unsigned(p[i], 10, 0, G_MAXUINT32, &v, NULL))
            return FALSE;
        for (int k = 0; k < 4; k++)
            le[k] = (guint8)(v >> (8 * k));
        g_byte_array_append(out, le, 4);
    }
    return TRUE;
}

typedef struct {
    char *sid;
    guint32 mask, flags, type;
} HvAce;

static void
hv_ace_free(HvAce *a)
{
    g_free(a->sid);
    g_free(a);
}

static char *
ace_sid(const HvInstance *ace)
{
    const GPtrArray *tr = hv_inst_get_objs(ace, "Trustee");
    const HvInstance *t = tr->len ? tr->pdata[0] : NULL;
    const char *s = hv_inst_get(t, "SIDString");

    if (s != NULL && s[0])
        return g_strdup(s);
    return NULL;
}

static void
append_ace_xml(GString *s, const char *sid, guint32 mask, guint32 flags, guint32 type)
{
    g_autoptr(GByteArray) b = g_byte_array_new();

    sid_bytes(sid, b);
    g_string_append_printf(s,
        "<sd:DACL xmlns:ace=\"" HV_CIMV2 "Win32_ACE\" xsi:type=\"ace:Win32_ACE_Type\">"
        "<ace:AccessMask>%u</ace:AccessMask><ace:AceFlags>%u</ace:AceFlags>"
        "<ace:AceType>%u</ace:AceType><ace:Trustee xmlns:t=\"" HV_CIMV2 "Win32_Trustee\" "
        "xsi:type=\"t:Win32_Trustee_Type\">", mask, flags, type);
    for (guint i = 0; i < b->len; i++)
        g_string_append_printf(s, "<t:SID>%u</t:SID>", b->data[i]);
    g_string_append_printf(s, "<t:SIDLength>%u</t:SIDLength><t:SIDString>%s</t:SIDString>"
                              "</ace:Trustee></sd:DACL>", b->len, sid);
}

/* Re-applies the VM's grant on one file or folder.  Returns 1 if changed,
 * 0 if already right, -1 on error. */
static int
fix_acl(HvHost *h, const char *path, gboolean is_dir, const char *sid, VmshiftJob *job,
        GError **error)
{
    const char *sel[] = { "Path", path, NULL };
    const char *uri = HV_CIMV2 "Win32_LogicalFileSecuritySetting";
    g_autoptr(HvInstance) out = NULL;
    g_autoptr(GPtrArray) keep = g_ptr_array_new_with_free_func((GDestroyNotify)hv_ace_free);
    g_autoptr(GString) sd = g_string_new(NULL);
    const GPtrArray *descs, *dacl;
    guint32 want_flags = is_dir ? 0x3 : 0;
    gboolean has_vm = FALSE, has_cap = FALSE, extra_vm = FALSE;
    gint64 rv;

    out = hv_invoke(h, uri, "GetSecurityDescriptor", sel, "", NULL, error);
    if (out == NULL)
        return -1;
    rv = hv_inst_get_int(out, "ReturnValue", -1);
    descs = hv_inst_get_objs(out, "Descriptor");
    if (rv != 0 || descs->len != 1) {
        g_set_error(error, VMSHIFT_ERROR, rv == 2 || rv == 9 ? VMSHIFT_ERROR_PERMISSION
                                                              : VMSHIFT_ERROR_FAILED,
                    "Hyper-V host %s: GetSecurityDescriptor on %s returned %" G_GINT64_FORMAT,
                    h->name, path, rv);
        return -1;
    }
    dacl = hv_inst_get_objs(descs->pdata[0], "DACL");
    for (guint i = 0; i < dacl->len; i++) {
        HvInstance *a = dacl->pdata[i];
        HvAce *ace = g_new0(HvAce, 1);
        ace->sid = ace_sid(a);
        ace->mask = (guint32)hv_inst_get_int(a, "AccessMask", 0);
        ace->flags = (guint32)hv_inst_get_int(a, "AceFlags", 0);
        ace->type = (guint32)hv_inst_get_int(a, "AceType", 0);
        if (ace->sid == NULL || (ace->flags & 0x10)) { /* inherited: not ours to write */
            hv_ace_free(ace);
            continue;
        }
        if (g_ascii_strcasecmp(ace->sid, sid) == 0) {
            if (ace->type == 0 && ace->mask == HV_VM_MASK && ace->flags == want_flags && !has_vm)
                has_vm = TRUE;
            else
                extra_vm = TRUE;
            hv_ace_free(ace);
            continue;
        }
        if (strcmp(ace->sid, HV_WORKER_CAP_SID) == 0 && ace->type == 0
            && (ace->mask & HV_VM_MASK) == HV_VM_MASK)
            has_cap = TRUE;
        g_ptr_array_add(keep, ace);
    }
    if (has_vm && has_cap && !extra_vm)
        return 0;
    g_string_append(sd, "<p:Descriptor xmlns:sd=\"" HV_CIMV2 "Win32_SecurityDescriptor\" "
                        "xmlns:xsi=\"" HV_NS_XSI "\" xsi:type=\"sd:Win32_SecurityDescriptor_Type\">"
                        "<sd:ControlFlags>4</sd:ControlFlags>");
    append_ace_xml(sd, sid, HV_VM_MASK, want_flags, 0);
    if (!has_cap)
        append_ace_xml(sd, HV_WORKER_CAP_SID, HV_VM_MASK, want_flags, 0);
    for (guint i = 0; i < keep->len; i++) {
        HvAce *a = keep->pdata[i];
        append_ace_xml(sd, a->sid, a->mask, a->flags, a->type);
    }
    g_string_append(sd, "</p:Descriptor>");
    g_clear_pointer(&out, hv_instance_free);
    out = hv_invoke(h, uri, "SetSecurityDescriptor", sel, sd->str, NULL, error);
    if (out == NULL)
        return -1;
    rv = hv_inst_get_int(out, "ReturnValue", -1);
    if (rv != 0) {
        g_set_error(error, VMSHIFT_ERROR, rv == 2 || rv == 9 ? VMSHIFT_ERROR_PERMISSION
                                                              : VMSHIFT_ERROR_FAILED,
                    "Hyper-V host %s: SetSecurityDescriptor on %s returned %" G_GINT64_FORMAT,
                    h->name, path, rv);
        return -1;
    }
    vmshift_job_log(job, VMSHIFT_LOG_INFO, "%s: granted NT VIRTUAL MACHINE\\%s read/write%s%s",
                    path, sid, is_dir ? " (inherited by contents)" : "",
                    extra_vm ? "; replaced other entries for the VM account" : "");
    return 1;
}

gboolean
hyperv_recreate_acl(VmshiftBackend *b, const char *vm, VmshiftJob *job, guint32 flags,
                    GError **error)
{
    g_autoptr(HvVm) v = NULL;
    g_autofree char *sid = NULL;
    g_autofree char *summary = NULL;
    g_autoptr(GPtrArray) files = g_ptr_array_new_with_free_func(g_free);
    g_autoptr(GArray) dirs = g_array_new(FALSE, FALSE, sizeof(gboolean));
    guint changed = 0;
    const char *guid, *root, *cfg;

    if (!vmshift_check_flags(flags, 0, "recreate_acl", error))
        return FALSE;
    v = find_vm(b, vm, FALSE, error);
    if (v == NULL)
        return FALSE;
    guid = hv_inst_get(v->cs, "Name");
    sid = vm_sid(guid);
    if (sid == NULL) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_PROTOCOL,
                    "Hyper-V host %s: VM id %s is not a GUID", v->host->name, guid);
        return FALSE;
    }
    root = hv_inst_get(v->vssd, "ConfigurationDataRoot");
    cfg = hv_inst_get(v->vssd, "ConfigurationFile");
#define ADD(p, d) do { gboolean d_ = (d); g_ptr_array_add(files, g_strdup(p)); \
                       g_array_append_val(dirs, d_); } while (0)
    if (root != NULL)
        ADD(root, TRUE);
    if (cfg != NULL)
        ADD(cfg, FALSE);
    for (guint i = 0; i < v->sasds->len; i++) {
        const char *p = hv_inst_get(v->sasds->pdata[i], "HostResource");
        if (p != NULL)
            ADD(p, FALSE);
    }
#undef ADD
    for (guint i = 0; i < files->len; i++) {
        int r;
        if (g_cancellable_set_error_if_cancelled(vmshift_job_get_cancellable(job), error))
            return FALSE;
        r = fix_acl(v->host, files->pdata[i], g_array_index(dirs, gboolean, i), sid, job, error);
        if (r < 0) {
            g_prefix_error(error, "recreating ACLs of %s: ", hv_inst_get(v->cs, "ElementName"));
            return FALSE;
        }
        changed += (guint)r;
        vmshift_job_set_progress(job, 100.0 * (i + 1) / files->len);
    }
    summary = g_strdup_printf("NT VIRTUAL MACHINE\\%s (%s): %u of %u files and folders "
                              "updated on %s", guid, sid, changed, files->len, v->host->name);
    vmshift_job_set_result(job, "acl", summary);
    vmshift_job_log(job, VMSHIFT_LOG_INFO, "%s", summary);
    return TRUE;
}
