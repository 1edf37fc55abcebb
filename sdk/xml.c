/* vmshift SDK: hardened XML parsing, XPath and SOAP helpers (libxml2). */
#include "config.h"

#include <limits.h>
#include <string.h>
#include <libxml/parser.h>
#include <libxml/parserInternals.h>
#include <libxml/SAX2.h>
#include <libxml/xpathInternals.h>
#include <vmshift/xml.h>

#include "sdk-private.h"

/* ---- parsing ---------------------------------------------------------- */

static gpointer
init_libxml(gpointer unused)
{
    xmlInitParser();
    return NULL;
}

static void
ensure_libxml(void)
{
    static GOnce once = G_ONCE_INIT;
    g_once(&once, init_libxml, NULL);
}

typedef struct {
    const char *refused; /* why the document was refused, or NULL */
} ParseGuard;

static void
guard_refuse(void *ctx, const char *why)
{
    xmlParserCtxtPtr ctxt = ctx;
    ParseGuard *g = ctxt->_private;

    if (g && !g->refused)
        g->refused = why;
    xmlStopParser(ctxt);
}

static void
guard_internal_subset(void *ctx, const xmlChar *name, const xmlChar *external_id,
                      const xmlChar *system_id)
{
    if (external_id || system_id) {
        guard_refuse(ctx, "DOCTYPE names an external DTD");
        return;
    }
    xmlSAX2InternalSubset(ctx, name, external_id, system_id);
}

static void
guard_external_subset(void *ctx, const xmlChar *name, const xmlChar *external_id,
                      const xmlChar *system_id)
{
    /* Called after every DOCTYPE; never load anything. */
    if (external_id || system_id)
        guard_refuse(ctx, "DOCTYPE names an external DTD");
}

static void
guard_entity_decl(void *ctx, const xmlChar *name, int type, const xmlChar *public_id,
                  const xmlChar *system_id, xmlChar *content)
{
    guard_refuse(ctx, "DOCTYPE declares entities");
}

static void
guard_unparsed_entity_decl(void *ctx, const xmlChar *name, const xmlChar *public_id,
                           const xmlChar *system_id, const xmlChar *notation)
{
    guard_refuse(ctx, "DOCTYPE declares entities");
}

static xmlEntityPtr
guard_get_parameter_entity(void *ctx, const xmlChar *name)
{
    /* No parameter entity was declared (that would have been refused). */
    return NULL;
}

/* One line of at most 200 characters of libxml2's message. */
static char *
clean_message(const char *msg)
{
    g_autofree char *valid = g_utf8_make_valid(msg ? msg : "unknown error", -1);
    GString *s = g_string_new(NULL);

    for (const char *p = valid; *p && s->len < 200; p++) {
        if (*p == '\n' || *p == '\r' || *p == '\t')
            g_string_append_c(s, ' ');
        else if ((unsigned char)*p >= 0x20 || *p < 0)
            g_string_append_c(s, *p);
    }
    g_strstrip(s->str);
    s->len = strlen(s->str);
    return g_string_free(s, FALSE);
}

VMSHIFT_API xmlDoc *
vmshift_xml_parse(const char *buf, gsize len, const char *what, GError **error)
{
    const int options = XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING;
    ParseGuard guard = { NULL };
    xmlParserCtxtPtr ctxt;
    xmlDoc *doc;

    if (!what)
        what = "XML document";
    if (!buf || len == 0) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_PROTOCOL, "%s: empty document", what);
        return NULL;
    }
    if (len > VMSHIFT_XML_MAX_INPUT || len > INT_MAX) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_PROTOCOL,
                    "%s: document too large (%" G_GSIZE_FORMAT " bytes, at most %" G_GSIZE_FORMAT
                    ")",
                    what, len, (gsize)VMSHIFT_XML_MAX_INPUT);
        return NULL;
    }

    ensure_libxml();
    ctxt = xmlNewParserCtxt();
    if (!ctxt) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_FAILED, "%s: cannot allocate an XML parser",
                    what);
        return NULL;
    }
    ctxt->_private = &guard;
    ctxt->sax->internalSubset = guard_internal_subset;
    ctxt->sax->externalSubset = guard_external_subset;
    ctxt->sax->entityDecl = guard_entity_decl;
    ctxt->sax->unparsedEntityDecl = guard_unparsed_entity_decl;
    ctxt->sax->getParameterEntity = guard_get_parameter_entity;
    /* Belt and braces: whatever the options say, never substitute or load. */
    ctxt->replaceEntities = 0;
    ctxt->loadsubset = 0;
    ctxt->validate = 0;

    doc = xmlCtxtReadMemory(ctxt, buf, (int)len, NULL, NULL, options);
    if (guard.refused) {
        if (doc)
            xmlFreeDoc(doc);
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_PROTOCOL, "%s: refused XML document: %s",
                    what, guard.refused);
        xmlFreeParserCtxt(ctxt);
        return NULL;
    }
    if (!doc || !ctxt->wellFormed || !xmlDocGetRootElement(doc)) {
        const xmlError *e = &ctxt->lastError;
        if (e->code != XML_ERR_OK) {
            g_autofree char *msg = clean_message(e->message);
            g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_PROTOCOL,
                        "%s: malformed XML at line %d: %s", what, e->line, msg);
        } else {
            g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_PROTOCOL,
                        "%s: malformed XML: no root element", what);
        }
        if (doc)
            xmlFreeDoc(doc);
        xmlFreeParserCtxt(ctxt);
        return NULL;
    }
    xmlFreeParserCtxt(ctxt);
    return doc;
}

/* ---- nodes ------------------------------------------------------------ */

static char *
from_xml(xmlChar *s)
{
    char *r;

    if (!s)
        return NULL;
    r = g_strdup((const char *)s);
    xmlFree(s);
    return r;
}

VMSHIFT_API xmlNode *
vmshift_xml_root(xmlDoc *doc)
{
    return doc ? xmlDocGetRootElement(doc) : NULL;
}

VMSHIFT_API gboolean
vmshift_xml_node_is(const xmlNode *node, const char *ns_uri, const char *name)
{
    if (!node || node->type != XML_ELEMENT_NODE || !name
        || strcmp((const char *)node->name, name) != 0)
        return FALSE;
    if (!ns_uri)
        return TRUE;
    return node->ns && node->ns->href && strcmp((const char *)node->ns->href, ns_uri) == 0;
}

VMSHIFT_API xmlNode *
vmshift_xml_first_element(const xmlNode *node)
{
    if (!node)
        return NULL;
    for (xmlNode *c = node->children; c; c = c->next)
        if (c->type == XML_ELEMENT_NODE)
            return c;
    return NULL;
}

VMSHIFT_API xmlNode *
vmshift_xml_next_element(const xmlNode *node)
{
    if (!node)
        return NULL;
    for (xmlNode *c = node->next; c; c = c->next)
        if (c->type == XML_ELEMENT_NODE)
            return c;
    return NULL;
}

VMSHIFT_API xmlNode *
vmshift_xml_child(const xmlNode *parent, const char *ns_uri, const char *name)
{
    for (xmlNode *c = vmshift_xml_first_element(parent); c; c = vmshift_xml_next_element(c))
        if (vmshift_xml_node_is(c, ns_uri, name))
            return c;
    return NULL;
}

VMSHIFT_API char *
vmshift_xml_text(const xmlNode *node)
{
    if (!node)
        return NULL;
    return from_xml(xmlNodeGetContent(node));
}

VMSHIFT_API char *
vmshift_xml_child_text(const xmlNode *parent, const char *ns_uri, const char *name)
{
    return vmshift_xml_text(vmshift_xml_child(parent, ns_uri, name));
}

VMSHIFT_API char *
vmshift_xml_get_attr(const xmlNode *node, const char *ns_uri, const char *name)
{
    if (!node || node->type != XML_ELEMENT_NODE || !name)
        return NULL;
    if (ns_uri)
        return from_xml(xmlGetNsProp(node, (const xmlChar *)name, (const xmlChar *)ns_uri));
    return from_xml(xmlGetNoNsProp(node, (const xmlChar *)name));
}

VMSHIFT_API char *
vmshift_xml_xsi_type(const xmlNode *node)
{
    g_autofree char *t = vmshift_xml_get_attr(node, VMSHIFT_NS_XSI, "type");
    const char *colon;

    if (!t)
        return NULL;
    g_strstrip(t);
    colon = strrchr(t, ':');
    return g_strdup(colon ? colon + 1 : t);
}

/* ---- XPath ------------------------------------------------------------ */

static const VmshiftXmlNs standard_ns[] = {
    { "soap11", VMSHIFT_NS_SOAP11 },
    { "soap12", VMSHIFT_NS_SOAP12 },
    { "xsi", VMSHIFT_NS_XSI },
    { "xsd", VMSHIFT_NS_XSD },
    { "vim", VMSHIFT_NS_VIM25 },
    { "wsa", VMSHIFT_NS_WSA },
    { "wsman", VMSHIFT_NS_WSMAN },
    { "wsmanms", VMSHIFT_NS_WSMAN_MS },
    { "wsen", VMSHIFT_NS_WSEN },
    { "wst", VMSHIFT_NS_WST },
    { "wsmanfault", VMSHIFT_NS_WSMANFAULT },
    { "cim", VMSHIFT_NS_CIM },
    { NULL, NULL },
};

static void
xpath_silent_error(void *data, xmlErrorPtr err)
{
}

VMSHIFT_API xmlXPathContext *
vmshift_xpath_new(xmlDoc *doc, const VmshiftXmlNs *extra_ns)
{
    xmlXPathContext *ctx;

    ensure_libxml();
    ctx = xmlXPathNewContext(doc);
    if (!ctx)
        g_error("out of memory creating an XPath context");
    ctx->error = xpath_silent_error;
    for (const VmshiftXmlNs *n = standard_ns; n->prefix; n++)
        xmlXPathRegisterNs(ctx, (const xmlChar *)n->prefix, (const xmlChar *)n->uri);
    for (const VmshiftXmlNs *n = extra_ns; n && n->prefix; n++)
        xmlXPathRegisterNs(ctx, (const xmlChar *)n->prefix, (const xmlChar *)n->uri);
    return ctx;
}

static xmlXPathObject *
xpath_eval(xmlXPathContext *ctx, xmlNode *node, const char *expr)
{
    xmlXPathObject *obj;

    ctx->node = node ? node : (xmlNode *)ctx->doc;
    obj = xmlXPathEvalExpression((const xmlChar *)expr, ctx);
    if (!obj)
        g_critical("vmshift_xpath: invalid XPath expression '%s'", expr);
    return obj;
}

VMSHIFT_API GPtrArray *
vmshift_xpath_nodes(xmlXPathContext *ctx, xmlNode *node, const char *expr)
{
    GPtrArray *out = g_ptr_array_new();
    xmlXPathObject *obj = xpath_eval(ctx, node, expr);

    if (!obj)
        return out;
    if (obj->type == XPATH_NODESET && obj->nodesetval) {
        for (int i = 0; i < obj->nodesetval->nodeNr; i++)
            g_ptr_array_add(out, obj->nodesetval->nodeTab[i]);
    }
    xmlXPathFreeObject(obj);
    return out;
}

VMSHIFT_API xmlNode *
vmshift_xpath_node(xmlXPathContext *ctx, xmlNode *node, const char *expr)
{
    xmlXPathObject *obj = xpath_eval(ctx, node, expr);
    xmlNode *n = NULL;

    if (!obj)
        return NULL;
    if (obj->type == XPATH_NODESET && obj->nodesetval && obj->nodesetval->nodeNr > 0)
        n = obj->nodesetval->nodeTab[0];
    xmlXPathFreeObject(obj);
    return n;
}

VMSHIFT_API char *
vmshift_xpath_string(xmlXPathContext *ctx, xmlNode *node, const char *expr)
{
    xmlXPathObject *obj = xpath_eval(ctx, node, expr);
    char *s = NULL;

    if (!obj)
        return NULL;
    switch (obj->type) {
    case XPATH_NODESET:
        if (obj->nodesetval && obj->nodesetval->nodeNr > 0)
            s = from_xml(xmlNodeGetContent(obj->nodesetval->nodeTab[0]));
        break;
    default: s = from_xml(xmlXPathCastToString(obj)); break;
    }
    xmlXPathFreeObject(obj);
    return s;
}

VMSHIFT_API gboolean
vmshift_xpath_uint64(xmlXPathContext *ctx, xmlNode *node, const char *expr, guint64 *out,
                     GError **error)
{
    g_autofree char *s = vmshift_xpath_string(ctx, node, expr);
    guint64 v;

    if (!s) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_PROTOCOL, "XML reply has no %s", expr);
        return FALSE;
    }
    g_strstrip(s);
    if (!g_ascii_string_to_unsigned(s, 10, 0, G_MAXUINT64, &v, NULL)) {
        g_autofree char *shown = g_utf8_make_valid(s, MIN(strlen(s), 64));
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_PROTOCOL,
                    "XML reply: %s is not an unsigned integer: '%s'", expr, shown);
        return FALSE;
    }
    *out = v;
    return TRUE;
}

/* ---- building documents ---------------------------------------------- */

VMSHIFT_API char *
vmshift_xml_escape(const char *text)
{
    g_autofree char *valid = NULL;
    GString *s;

    if (!text)
        return g_strdup("");
    valid = g_utf8_make_valid(text, -1);
    s = g_string_sized_new(strlen(valid) + 16);
    for (const char *p = valid; *p; p = g_utf8_next_char(p)) {
        gunichar c = g_utf8_get_char(p);
        switch (c) {
        case '&': g_string_append(s, "&amp;"); break;
        case '<': g_string_append(s, "&lt;"); break;
        case '>': g_string_append(s, "&gt;"); break;
        case '"': g_string_append(s, "&quot;"); break;
        case '\'': g_string_append(s, "&apos;"); break;
        case '\t': g_string_append(s, "&#9;"); break;
        case '\n': g_string_append(s, "&#10;"); break;
        case '\r': g_string_append(s, "&#13;"); break;
        default:
            if (c < 0x20 || c == 0xFFFE || c == 0xFFFF)
                g_string_append_unichar(s, 0xFFFD);
            else
                g_string_append_len(s, p, g_utf8_next_char(p) - p);
        }
    }
    return g_string_free(s, FALSE);
}

/* ---- SOAP ------------------------------------------------------------- */

VMSHIFT_API char *
vmshift_soap_envelope(VmshiftSoapVersion version, const char *ns_decls, const char *header,
                      const char *body)
{
    const char *p = version == VMSHIFT_SOAP_1_2 ? "s" : "soapenv";
    const char *uri = version == VMSHIFT_SOAP_1_2 ? VMSHIFT_NS_SOAP12 : VMSHIFT_NS_SOAP11;
    GString *s = g_string_new("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");

    g_string_append_printf(s, "<%s:Envelope xmlns:%s=\"%s\" xmlns:xsi=\"%s\" xmlns:xsd=\"%s\"", p,
                           p, uri, VMSHIFT_NS_XSI, VMSHIFT_NS_XSD);
    if (ns_decls && *ns_decls)
        g_string_append_printf(s, " %s", ns_decls);
    g_string_append(s, ">");
    if (header)
        g_string_append_printf(s, "<%s:Header>%s</%s:Header>", p, header, p);
    g_string_append_printf(s, "<%s:Body>%s</%s:Body></%s:Envelope>", p, body ? body : "", p, p);
    return g_string_free(s, FALSE);
}

static const char *
envelope_ns(xmlDoc *doc)
{
    xmlNode *root = vmshift_xml_root(doc);

    if (vmshift_xml_node_is(root, VMSHIFT_NS_SOAP11, "Envelope"))
        return VMSHIFT_NS_SOAP11;
    if (vmshift_xml_node_is(root, VMSHIFT_NS_SOAP12, "Envelope"))
        return VMSHIFT_NS_SOAP12;
    return NULL;
}

VMSHIFT_API xmlNode *
vmshift_soap_body(xmlDoc *doc)
{
    const char *ns = envelope_ns(doc);

    if (!ns)
        return NULL;
    return vmshift_xml_first_element(vmshift_xml_child(vmshift_xml_root(doc), ns, "Body"));
}

VMSHIFT_API void
vmshift_soap_fault_free(VmshiftSoapFault *f)
{
    if (!f)
        return;
    g_free(f->code);
    g_free(f->subcode);
    g_free(f->subcode_name);
    g_free(f->reason);
    g_free(f->detail_type);
    g_free(f->detail_ns);
    g_free(f->detail_code);
    g_free(f->detail_message);
    if (f->doc_)
        xmlFreeDoc(f->doc_);
    g_free(f);
}

/* Whitespace (including newlines) collapsed to single spaces, trimmed. */
static char *
collapse(char *s)
{
    GString *out;
    gboolean space = FALSE;

    if (!s)
        return NULL;
    out = g_string_sized_new(strlen(s));
    for (const char *p = s; *p; p++) {
        if (g_ascii_isspace(*p)) {
            space = TRUE;
            continue;
        }
        if (space && out->len)
            g_string_append_c(out, ' ');
        space = FALSE;
        g_string_append_c(out, *p);
    }
    g_free(s);
    return g_string_free(out, FALSE);
}

static const char *
local_part(const char *qname)
{
    const char *colon = qname ? strrchr(qname, ':') : NULL;
    return colon ? colon + 1 : qname;
}

/* The deepest WSManFault element under @node (depth-first), or NULL. */
static xmlNode *
deepest_wsman_fault(xmlNode *node, int depth, int *best_depth)
{
    xmlNode *best = NULL;

    if (depth > 64)
        return NULL;
    if (vmshift_xml_node_is(node, VMSHIFT_NS_WSMANFAULT, "WSManFault") && depth > *best_depth) {
        best = node;
        *best_depth = depth;
    }
    for (xmlNode *c = vmshift_xml_first_element(node); c; c = vmshift_xml_next_element(c)) {
        xmlNode *b = deepest_wsman_fault(c, depth + 1, best_depth);
        if (b)
            best = b;
    }
    return best;
}

static void
fill_detail(VmshiftSoapFault *f, xmlNode *detail)
{
    xmlNode *d = vmshift_xml_first_element(detail);
    g_autofree char *xsi = NULL;
    const char *name;

    if (!d)
        return;
    f->detail = d;
    name = (const char *)d->name;
    if (d->ns && d->ns->href)
        f->detail_ns = g_strdup((const char *)d->ns->href);

    if (vmshift_xml_node_is(d, VMSHIFT_NS_WSMANFAULT, "WSManFault")) {
        int depth = -1;
        xmlNode *inner = deepest_wsman_fault(d, 0, &depth);
        f->detail_type = g_strdup("WSManFault");
        f->detail_code = vmshift_xml_get_attr(inner, NULL, "Code");
        if (!f->detail_code)
            f->detail_code = vmshift_xml_get_attr(d, NULL, "Code");
        f->detail_message = collapse(
            vmshift_xml_child_text(inner, VMSHIFT_NS_WSMANFAULT, "Message"));
        if (f->detail_message && !*f->detail_message)
            g_clear_pointer(&f->detail_message, g_free);
        return;
    }
    if (!strcmp(name, "MSFT_WmiError")) {
        f->detail_type = g_strdup("MSFT_WmiError");
        f->detail_code = collapse(vmshift_xml_child_text(d, NULL, "error_Code"));
        f->detail_message = collapse(vmshift_xml_child_text(d, NULL, "Message"));
        if (f->detail_message && !*f->detail_message)
            g_clear_pointer(&f->detail_message, g_free);
        return;
    }
    xsi = vmshift_xml_xsi_type(d);
    if (xsi && *xsi) {
        f->detail_type = g_steal_pointer(&xsi);
    } else {
        gsize n = strlen(name);
        /* vSphere: <InvalidLoginFault xsi:type="InvalidLogin"> */
        if (f->detail_ns && !strcmp(f->detail_ns, VMSHIFT_NS_VIM25) && n > 5
            && g_str_has_suffix(name, "Fault"))
            f->detail_type = g_strndup(name, n - 5);
        else
            f->detail_type = g_strdup(name);
    }
}

VMSHIFT_API VmshiftSoapFault *
vmshift_soap_fault_get(xmlDoc *doc)
{
    const char *ns = envelope_ns(doc);
    xmlNode *fault = vmshift_soap_body(doc);
    VmshiftSoapFault *f;

    if (!ns || !vmshift_xml_node_is(fault, ns, "Fault"))
        return NULL;
    f = g_new0(VmshiftSoapFault, 1);
    if (!strcmp(ns, VMSHIFT_NS_SOAP11)) {
        f->version = VMSHIFT_SOAP_1_1;
        /* faultcode etc. are unqualified, but be lenient about namespaces. */
        f->code = collapse(vmshift_xml_child_text(fault, NULL, "faultcode"));
        f->reason = collapse(vmshift_xml_child_text(fault, NULL, "faultstring"));
        fill_detail(f, vmshift_xml_child(fault, NULL, "detail"));
    } else {
        xmlNode *code = vmshift_xml_child(fault, ns, "Code");
        xmlNode *sub = vmshift_xml_child(code, ns, "Subcode");
        xmlNode *reason = vmshift_xml_child(fault, ns, "Reason");
        f->version = VMSHIFT_SOAP_1_2;
        f->code = collapse(vmshift_xml_child_text(code, ns, "Value"));
        for (int depth = 0; sub && depth < 16; depth++) {
            char *v = collapse(vmshift_xml_child_text(sub, ns, "Value"));
            if (v) {
                g_free(f->subcode);
                f->subcode = v;
            }
            sub = vmshift_xml_child(sub, ns, "Subcode");
        }
        f->reason = collapse(vmshift_xml_child_text(reason, ns, "Text"));
        fill_detail(f, vmshift_xml_child(fault, ns, "Detail"));
    }
    if (!f->code)
        f->code = g_strdup("");
    if (!f->reason)
        f->reason = g_strdup("");
    if (f->subcode)
        f->subcode_name = g_strdup(local_part(f->subcode));
    return f;
}

static const struct {
    const char *name;
    int code;
} fault_codes[] = {
    { "InvalidLogin", VMSHIFT_ERROR_AUTH_FAILED },
    { "NotAuthenticated", VMSHIFT_ERROR_AUTH_FAILED },
    { "NoPermission", VMSHIFT_ERROR_AUTH_FAILED },
    { "AccessDenied", VMSHIFT_ERROR_AUTH_FAILED },
    { "InvalidCredentials", VMSHIFT_ERROR_AUTH_FAILED },
    { "ManagedObjectNotFound", VMSHIFT_ERROR_NOT_FOUND },
    { "NotFound", VMSHIFT_ERROR_NOT_FOUND },
    { "FileNotFound", VMSHIFT_ERROR_NOT_FOUND },
    { "DestinationUnreachable", VMSHIFT_ERROR_NOT_FOUND },
    { "InvalidSelectors", VMSHIFT_ERROR_NOT_FOUND },
    { "MethodNotFound", VMSHIFT_ERROR_NOT_SUPPORTED },
    { "MethodDisabled", VMSHIFT_ERROR_NOT_SUPPORTED },
    { "NotSupported", VMSHIFT_ERROR_NOT_SUPPORTED },
    { "NotImplemented", VMSHIFT_ERROR_NOT_SUPPORTED },
    { "ActionNotSupported", VMSHIFT_ERROR_NOT_SUPPORTED },
    { "TimedOut", VMSHIFT_ERROR_TIMEOUT },
    { "InvalidPowerState", VMSHIFT_ERROR_CONFLICT },
    { "InvalidState", VMSHIFT_ERROR_CONFLICT },
    { "ConcurrentAccess", VMSHIFT_ERROR_CONFLICT },
    { "TaskInProgress", VMSHIFT_ERROR_BUSY },
    { "ResourceInUse", VMSHIFT_ERROR_BUSY },
    { "Busy", VMSHIFT_ERROR_BUSY },
    { "InsufficientResourcesFault", VMSHIFT_ERROR_NO_SPACE },
    { "OutOfDiskSpace", VMSHIFT_ERROR_NO_SPACE },
    { "FileTooLarge", VMSHIFT_ERROR_NO_SPACE },
    { "QuotaLimit", VMSHIFT_ERROR_NO_SPACE },
    { "InvalidArgument", VMSHIFT_ERROR_INVALID_ARGUMENT },
    { "InvalidRequest", VMSHIFT_ERROR_INVALID_ARGUMENT },
    { "InvalidType", VMSHIFT_ERROR_INVALID_ARGUMENT },
    { "InvalidName", VMSHIFT_ERROR_INVALID_ARGUMENT },
    { "InvalidProperty", VMSHIFT_ERROR_INVALID_ARGUMENT },
};

static int
lookup_fault_code(const char *name)
{
    if (!name)
        return 0;
    for (gsize i = 0; i < G_N_ELEMENTS(fault_codes); i++)
        if (!strcmp(fault_codes[i].name, name))
            return fault_codes[i].code;
    return 0;
}

VMSHIFT_API int
vmshift_soap_fault_default_code(const VmshiftSoapFault *f)
{
    int c;

    if ((c = lookup_fault_code(f->detail_type)))
        return c;
    if ((c = lookup_fault_code(f->subcode_name)))
        return c;
    if ((c = lookup_fault_code(local_part(f->code))))
        return c;
    return VMSHIFT_ERROR_FAILED;
}

VMSHIFT_API void
vmshift_soap_fault_set_error(const VmshiftSoapFault *f, int code, const char *what, GError **error)
{
    const char *type = f->detail_type && *f->detail_type ? f->detail_type
                       : f->subcode && *f->subcode       ? f->subcode
                       : f->code && *f->code             ? f->code
                                                         : "(no code)";
    const char *msg = f->detail_message && *f->detail_message ? f->detail_message : f->reason;
    g_autofree char *text = NULL;
    g_autofree char *red = NULL;

    if (msg && *msg)
        text = g_strdup_printf("%s: SOAP fault %s: %s", what ? what : "SOAP call", type, msg);
    else
        text = g_strdup_printf("%s: SOAP fault %s", what ? what : "SOAP call", type);
    red = vmshift_redact(text);
    g_set_error_literal(error, VMSHIFT_ERROR, code, red);
}

/* Defined in http.c: the status-to-error mapping shared with soap_call. */
void vmshift_http_status_error(const VmshiftHttpResponse *resp, const char *prefix, GError **error);

VMSHIFT_API xmlDoc *
vmshift_soap_call(VmshiftHttp *http, const char *path_or_url, VmshiftSoapVersion version,
                  const char *action, const char *envelope, const char *what,
                  GCancellable *cancellable, VmshiftSoapFault **fault_out, GError **error)
{
    g_autoptr(VmshiftHttpResponse) resp = NULL;
    g_autofree char *ctype = NULL;
    g_autofree char *soapaction = NULL;
    g_autofree char *prefix = NULL;
    g_autofree char *doc_what = NULL;
    const char *headers[3] = { NULL, NULL, NULL };
    const char *body;
    gsize len = 0;
    GError *local = NULL;
    xmlDoc *doc;
    VmshiftSoapFault *fault;

    if (fault_out)
        *fault_out = NULL;
    if (!what)
        what = "SOAP call";
    if (version == VMSHIFT_SOAP_1_2) {
        if (action)
            ctype = g_strdup_printf(
                "Content-Type: application/soap+xml;charset=UTF-8;action=\"%s\"", action);
        else
            ctype = g_strdup("Content-Type: application/soap+xml;charset=UTF-8");
        headers[0] = ctype;
    } else {
        ctype = g_strdup("Content-Type: text/xml; charset=utf-8");
        headers[0] = ctype;
        if (action) {
            soapaction = g_strdup_printf("SOAPAction: \"%s\"", action);
            headers[1] = soapaction;
        }
    }

    resp = vmshift_http_request(http, "POST", path_or_url, headers, envelope,
                                envelope ? strlen(envelope) : 0, cancellable, error);
    if (!resp) {
        g_prefix_error(error, "%s: ", what);
        return NULL;
    }
    prefix = g_strdup_printf("%s %s %s", resp->method, resp->url, what);
    body = vmshift_http_response_get_body(resp, &len);

    if (resp->status == 401 || resp->status == 403) {
        vmshift_http_status_error(resp, prefix, error);
        return NULL;
    }
    if (!(resp->status / 100 == 2 || resp->status == 500 || resp->status == 400)) {
        vmshift_http_status_error(resp, prefix, error);
        return NULL;
    }
    if (len == 0) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_PROTOCOL, "%s: empty reply (HTTP %u)",
                    prefix, resp->status);
        return NULL;
    }
    doc_what = g_strdup_printf("%s reply", prefix);
    doc = vmshift_xml_parse(body, len, doc_what, &local);
    if (!doc) {
        if (resp->status / 100 == 2) {
            g_propagate_error(error, local);
        } else {
            g_clear_error(&local);
            vmshift_http_status_error(resp, prefix, error);
        }
        return NULL;
    }
    if (!envelope_ns(doc)) {
        xmlFreeDoc(doc);
        if (resp->status / 100 == 2)
            g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_PROTOCOL,
                        "%s: reply is not a SOAP envelope", prefix);
        else
            vmshift_http_status_error(resp, prefix, error);
        return NULL;
    }
    fault = vmshift_soap_fault_get(doc);
    if (fault) {
        vmshift_soap_fault_set_error(fault, vmshift_soap_fault_default_code(fault), prefix, error);
        if (fault_out) {
            fault->doc_ = doc;
            *fault_out = fault;
        } else {
            vmshift_soap_fault_free(fault);
            xmlFreeDoc(doc);
        }
        return NULL;
    }
    if (resp->status / 100 != 2) {
        xmlFreeDoc(doc);
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_PROTOCOL,
                    "%s: HTTP %u without a SOAP fault", prefix, resp->status);
        return NULL;
    }
    return doc;
}
