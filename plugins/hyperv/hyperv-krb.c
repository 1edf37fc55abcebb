/*
 * vmshift Hyper-V plugin: why a Negotiate (Kerberos) logon was refused.
 *
 * auth=negotiate is libcurl's SPNEGO through GSS-API; libcurl only says
 * "HTTP 401".  After a 401 this asks the same GSS-API library libcurl uses
 * (MIT's libgssapi_krb5.so.2, loaded on demand so that it is no build
 * dependency) what it has: no ticket, an expired ticket, no service ticket
 * for HTTP/<host> (RFC 4559 §4: the host-based service "HTTP@host"), or a
 * ticket the host refused, and names the principal.  The C binding used is
 * RFC 2744's (stable ABI); nothing secret is read or logged.
 */
#include "config.h"

#include <dlfcn.h>
#include <stdint.h>
#include <string.h>

#include <vmshift/vmshift.h>

#include "hyperv.h"

/* RFC 2744 §3 types, as far as used here. */
typedef uint32_t OM_uint32;
typedef struct {
    size_t length;
    void *value;
} GssBuffer;
typedef struct {
    OM_uint32 length;
    void *elements;
} GssOid;
typedef void *GssName;
typedef void *GssCred;
typedef void *GssCtx;

#define GSS_C_INITIATE 1
#define GSS_C_GSS_CODE 1
#define GSS_C_MECH_CODE 2
#define GSS_C_MUTUAL_FLAG 2
#define GSS_ROUTINE_ERROR(x) (((x) >> 16) & 0xffu)
#define GSS_IS_ERROR(x) (((x)&0xffff0000u) != 0)
#define GSS_S_NO_CRED 7u
#define GSS_S_CREDENTIALS_EXPIRED 11u
#define GSS_S_FAILURE 13u

/* 1.2.840.113554.1.2.1.4 GSS_C_NT_HOSTBASED_SERVICE; 1.2.840.113554.1.2.2
 * Kerberos V5 (RFC 2744 §4, RFC 1964). */
static GssOid nt_hostbased = { 10, (void *)"\x2a\x86\x48\x86\xf7\x12\x01\x02\x01\x04" };
static GssOid mech_krb5 = { 9, (void *)"\x2a\x86\x48\x86\xf7\x12\x01\x02\x02" };

typedef struct {
    OM_uint32 (*acquire_cred)(OM_uint32 *, GssName, OM_uint32, void *, int, GssCred *, void **,
                              OM_uint32 *);
    OM_uint32 (*inquire_cred)(OM_uint32 *, GssCred, GssName *, OM_uint32 *, int *, void **);
    OM_uint32 (*display_name)(OM_uint32 *, GssName, GssBuffer *, GssOid **);
    OM_uint32 (*import_name)(OM_uint32 *, GssBuffer *, GssOid *, GssName *);
    OM_uint32 (*init_sec_context)(OM_uint32 *, GssCred, GssCtx *, GssName, GssOid *, OM_uint32,
                                  OM_uint32, void *, GssBuffer *, GssOid **, GssBuffer *,
                                  OM_uint32 *, OM_uint32 *);
    OM_uint32 (*display_status)(OM_uint32 *, OM_uint32, int, GssOid *, OM_uint32 *, GssBuffer *);
    OM_uint32 (*release_buffer)(OM_uint32 *, GssBuffer *);
    OM_uint32 (*release_name)(OM_uint32 *, GssName *);
    OM_uint32 (*release_cred)(OM_uint32 *, GssCred *);
    OM_uint32 (*delete_sec_context)(OM_uint32 *, GssCtx *, GssBuffer *);
} Gss;

static gpointer
load_gss(gpointer unused)
{
    Gss *g = g_new0(Gss, 1);
    void *lib = dlopen("libgssapi_krb5.so.2", RTLD_NOW | RTLD_LOCAL);
    void **fn = (void **)g;
    static const char *const names[] = { "gss_acquire_cred",     "gss_inquire_cred",
                                         "gss_display_name",     "gss_import_name",
                                         "gss_init_sec_context", "gss_display_status",
                                         "gss_release_buffer",   "gss_release_name",
                                         "gss_release_cred",     "gss_delete_sec_context" };

    if (lib == NULL) {
        g_free(g);
        return NULL;
    }
    G_STATIC_ASSERT(sizeof(Gss) == G_N_ELEMENTS(names) * sizeof(void *));
    for (gsize i = 0; i < G_N_ELEMENTS(names); i++) {
        fn[i] = dlsym(lib, names[i]);
        if (fn[i] == NULL) {
            g_free(g);
            return NULL; /* the library stays loaded: harmless */
        }
    }
    return g;
}

static const Gss *
gss(void)
{
    static GOnce once = G_ONCE_INIT;
    return g_once(&once, load_gss, NULL);
}

/* GSS-API's text for a major status (and the mechanism's minor one). */
static char *
status_text(const Gss *g, OM_uint32 major, OM_uint32 minor)
{
    GString *s = g_string_new(NULL);
    struct {
        OM_uint32 code;
        int type;
    } parts[] = { { major, GSS_C_GSS_CODE }, { minor, GSS_C_MECH_CODE } };

    for (gsize i = 0; i < G_N_ELEMENTS(parts); i++) {
        OM_uint32 ctx = 0, min2;
        if (parts[i].type == GSS_C_MECH_CODE && parts[i].code == 0)
            continue;
        /* "Unspecified GSS failure.  Minor code may provide more
         * information": the minor code's text says it all. */
        if (parts[i].type == GSS_C_GSS_CODE && GSS_ROUTINE_ERROR(major) == GSS_S_FAILURE
            && minor != 0)
            continue;
        do {
            GssBuffer b = { 0, NULL };
            if (GSS_IS_ERROR(
                    g->display_status(&min2, parts[i].code, parts[i].type, &mech_krb5, &ctx, &b)))
                break;
            if (b.length > 0) {
                if (s->len > 0)
                    g_string_append(s, ": ");
                g_string_append_len(s, b.value, (gssize)b.length);
            }
            g->release_buffer(&min2, &b);
        } while (ctx != 0);
    }
    /* one line */
    for (char *p = s->str; *p; p++)
        if (*p == '\n' || *p == '\r')
            *p = ' ';
    return g_string_free(s, FALSE);
}

/* The host name of a URL (no port, no brackets). */
static char *
url_host(const char *url)
{
    const char *p = strstr(url, "://");
    const char *e;

    p = p != NULL ? p + 3 : url;
    if (*p == '[') {
        e = strchr(p, ']');
        return e != NULL ? g_strndup(p + 1, (gsize)(e - p - 1)) : g_strdup(p);
    }
    e = p + strcspn(p, ":/?#");
    return g_strndup(p, (gsize)(e - p));
}

/* Tries a security context for HTTP@@host with @cred; NULL when it can be
 * made (the KDC gave a service ticket), else GSS-API's reason. */
static char *
try_service(const Gss *g, GssCred cred, const char *host)
{
    g_autofree char *svc = g_strconcat("HTTP@", host, NULL);
    GssBuffer in = { strlen(svc), svc }, out = { 0, NULL };
    GssName target = NULL;
    GssCtx ctx = NULL;
    OM_uint32 major, minor, min2;
    char *why = NULL;

    major = g->import_name(&minor, &in, &nt_hostbased, &target);
    if (GSS_IS_ERROR(major))
        return status_text(g, major, minor);
    major = g->init_sec_context(&minor, cred, &ctx, target, &mech_krb5, GSS_C_MUTUAL_FLAG, 0, NULL,
                                NULL, NULL, &out, NULL, NULL);
    if (GSS_IS_ERROR(major))
        why = status_text(g, major, minor);
    g->release_buffer(&min2, &out);
    if (ctx != NULL)
        g->delete_sec_context(&min2, &ctx, NULL);
    g->release_name(&min2, &target);
    return why;
}

char *
hv_krb_explain(const HvHost *h)
{
    const Gss *g = gss();
    g_autofree char *host = NULL;
    g_autofree char *who = NULL;
    g_autofree char *why = NULL;
    GssCred cred = NULL;
    GssName name = NULL;
    OM_uint32 major, minor, min2, lifetime = 0;
    char *line;

    if (g == NULL)
        return NULL;
    major = g->acquire_cred(&minor, NULL, 0, NULL, GSS_C_INITIATE, &cred, NULL, &lifetime);
    if (GSS_IS_ERROR(major)) {
        why = status_text(g, major, minor);
        if (GSS_ROUTINE_ERROR(major) == GSS_S_CREDENTIALS_EXPIRED)
            return g_strdup_printf("Negotiate (Kerberos) logon refused (HTTP 401): the Kerberos "
                                   "ticket has expired (%s); renew it with kinit",
                                   why);
        return g_strdup_printf("Negotiate (Kerberos) logon refused (HTTP 401): no Kerberos "
                               "ticket (%s); get one with kinit, or set auth=ntlm to log on "
                               "with the credentials file's password",
                               why);
    }
    if (lifetime == 0) {
        /* (not gss_inquire_cred(): MIT's leaks on an expired credential) */
        const char *cc = g_getenv("KRB5CCNAME");
        g->release_cred(&min2, &cred);
        return g_strdup_printf("Negotiate (Kerberos) logon refused (HTTP 401): the Kerberos "
                               "ticket in %s has expired; renew it with kinit",
                               cc != NULL ? cc : "the default credentials cache");
    }
    major = g->inquire_cred(&minor, cred, &name, NULL, NULL, NULL);
    if (name != NULL) {
        GssBuffer b = { 0, NULL };
        if (!GSS_IS_ERROR(g->display_name(&min2, name, &b, NULL)))
            who = g_strndup(b.value, b.length);
        g->release_buffer(&min2, &b);
        g->release_name(&min2, &name);
    }
    if (GSS_ROUTINE_ERROR(major) == GSS_S_CREDENTIALS_EXPIRED) {
        g->release_cred(&min2, &cred);
        return g_strdup_printf("Negotiate (Kerberos) logon refused (HTTP 401): the Kerberos "
                               "ticket of %s has expired; renew it with kinit",
                               who != NULL ? who : "the default principal");
    }
    host = url_host(h->url);
    why = try_service(g, cred, host);
    g->release_cred(&min2, &cred);
    if (why != NULL)
        line = g_strdup_printf("Negotiate (Kerberos) logon refused (HTTP 401): %s has no "
                               "ticket for HTTP/%s (%s)",
                               who != NULL ? who : "the default principal", host, why);
    else
        line = g_strdup_printf("Negotiate (Kerberos) logon refused (HTTP 401): the host does "
                               "not accept %s (a valid ticket for HTTP/%s was offered); log "
                               "on as an account allowed to use WinRM there",
                               who != NULL ? who : "the default principal", host);
    return line;
}
