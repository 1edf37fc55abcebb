/*
 * Hyper-V plugin: WS-Management envelopes and response parsing.
 * See wsman.h and docs/design/hyperv.md §1.
 */
#include "config.h"

#include <string.h>

#include <libxml/tree.h>
#include <vmshift/vmshift.h>
#include <vmshift/xml.h>

#include "wsman.h"

#define HV_MAX_ITEMS 100000
#define HV_MAX_DEPTH 16
#define HV_MAX_VALUES 4096 /* values of one array property (or nested objects) kept */

void
hv_epr_free(HvEpr *epr)
{
    if (epr == NULL)
        return;
    g_free(epr->uri);
    g_ptr_array_unref(epr->names);
    g_ptr_array_unref(epr->values);
    g_free(epr);
}

static void
ptr_array_unref0(gpointer p)
{
    if (p != NULL)
        g_ptr_array_unref(p);
}

static HvInstance *
hv_instance_new(const char *cls)
{
    HvInstance *i = g_new0(HvInstance, 1);
    i->cls = g_strdup(cls);
    i->props = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, ptr_array_unref0);
    i->eprs = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, (GDestroyNotify)hv_epr_free);
    i->objs = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, ptr_array_unref0);
    return i;
}

void
hv_instance_free(HvInstance *inst)
{
    if (inst == NULL)
        return;
    g_free(inst->cls);
    g_hash_table_unref(inst->props);
    g_hash_table_unref(inst->eprs);
    g_hash_table_unref(inst->objs);
    g_free(inst);
}

void
hv_response_free(HvResponse *resp)
{
    if (resp == NULL)
        return;
    g_free(resp->action);
    g_free(resp->relates_to);
    g_free(resp->fault_code);
    g_free(resp->fault_subcode);
    g_free(resp->fault_reason);
    g_free(resp->fault_message);
    g_free(resp->fault_wsman_code);
    g_free(resp->enum_context);
    if (resp->items != NULL)
        g_ptr_array_unref(resp->items);
    hv_instance_free(resp->body);
    g_free(resp->product_version);
    g_free(resp);
}

const char *
hv_inst_get(const HvInstance *inst, const char *prop)
{
    GPtrArray *a;

    if (inst == NULL)
        return NULL;
    a = g_hash_table_lookup(inst->props, prop);
    return a != NULL && a->len > 0 ? g_ptr_array_index(a, 0) : NULL;
}

const GPtrArray *
hv_inst_get_all(const HvInstance *inst, const char *prop)
{
    static GPtrArray empty = { NULL, 0 };
    GPtrArray *a = inst != NULL ? g_hash_table_lookup(inst->props, prop) : NULL;

    return a != NULL ? a : &empty;
}

gint64
hv_inst_get_int(const HvInstance *inst, const char *prop, gint64 def)
{
    const char *v = hv_inst_get(inst, prop);
    gint64 out;

    if (v == NULL || !g_ascii_string_to_signed(v, 10, G_MININT64, G_MAXINT64, &out, NULL))
        return def;
    return out;
}

const HvEpr *
hv_inst_get_epr(const HvInstance *inst, const char *prop)
{
    return inst != NULL ? g_hash_table_lookup(inst->eprs, prop) : NULL;
}

const GPtrArray *
hv_inst_get_objs(const HvInstance *inst, const char *prop)
{
    static GPtrArray empty = { NULL, 0 };
    GPtrArray *a = inst != NULL ? g_hash_table_lookup(inst->objs, prop) : NULL;

    return a != NULL ? a : &empty;
}

const char *
hv_epr_selector(const HvEpr *epr, const char *name)
{
    if (epr == NULL)
        return NULL;
    for (guint i = 0; i < epr->names->len; i++)
        if (g_strcmp0(g_ptr_array_index(epr->names, i), name) == 0)
            return g_ptr_array_index(epr->values, i);
    return NULL;
}

/* ---- parsing ------------------------------------------------------------ */

static gboolean
is_el(const xmlNode *n, const char *ns, const char *name)
{
    return n != NULL && n->type == XML_ELEMENT_NODE && n->ns != NULL
           && strcmp((const char *)n->ns->href, ns) == 0
           && strcmp((const char *)n->name, name) == 0;
}

static xmlNode *
child(const xmlNode *n, const char *ns, const char *name)
{
    if (n == NULL)
        return NULL;
    for (xmlNode *c = n->children; c != NULL; c = c->next)
        if (is_el(c, ns, name))
            return c;
    return NULL;
}

static gboolean
has_element_children(const xmlNode *n)
{
    for (xmlNode *c = n->children; c != NULL; c = c->next)
        if (c->type == XML_ELEMENT_NODE)
            return TRUE;
    return FALSE;
}

static char *
text_of(const xmlNode *n)
{
    xmlChar *t;
    char *out;

    if (n == NULL)
        return NULL;
    t = xmlNodeGetContent(n);
    out = g_strdup(t != NULL ? (const char *)t : "");
    xmlFree(t);
    g_strstrip(out);
    return out;
}

static gboolean
is_nil(const xmlNode *n)
{
    xmlChar *v = xmlGetNsProp(n, (const xmlChar *)"nil", (const xmlChar *)HV_NS_XSI);
    gboolean nil = v != NULL
                   && (strcmp((const char *)v, "true") == 0 || strcmp((const char *)v, "1") == 0);
    xmlFree(v);
    return nil;
}

static HvEpr *
parse_epr(const xmlNode *n)
{
    xmlNode *rp, *ss;
    HvEpr *e;

    if (child(n, HV_NS_A, "EndpointReference") != NULL)
        n = child(n, HV_NS_A, "EndpointReference");
    rp = child(n, HV_NS_A, "ReferenceParameters");
    if (rp == NULL)
        return NULL;
    e = g_new0(HvEpr, 1);
    e->uri = text_of(child(rp, HV_NS_W, "ResourceURI"));
    e->names = g_ptr_array_new_with_free_func(g_free);
    e->values = g_ptr_array_new_with_free_func(g_free);
    ss = child(rp, HV_NS_W, "SelectorSet");
    if (ss != NULL) {
        for (xmlNode *s = ss->children; s != NULL; s = s->next) {
            xmlChar *name;
            if (!is_el(s, HV_NS_W, "Selector") || e->names->len >= 64)
                continue;
            name = xmlGetProp(s, (const xmlChar *)"Name");
            if (name == NULL)
                continue;
            g_ptr_array_add(e->names, g_strdup((const char *)name));
            g_ptr_array_add(e->values, text_of(s));
            xmlFree(name);
        }
    }
    return e;
}

static gboolean
is_epr(const xmlNode *n)
{
    return child(n, HV_NS_A, "ReferenceParameters") != NULL
           || child(n, HV_NS_A, "EndpointReference") != NULL;
}

static HvInstance *parse_instance(const xmlNode *n, int depth);

static void
add_value(HvInstance *inst, const char *name, char *value)
{
    GPtrArray *a = g_hash_table_lookup(inst->props, name);

    if (a == NULL) {
        a = g_ptr_array_new_with_free_func(g_free);
        g_hash_table_insert(inst->props, g_strdup(name), a);
    }
    if (value != NULL && a->len < HV_MAX_VALUES)
        g_ptr_array_add(a, value);
    else
        g_free(value);
}

static void
parse_property(HvInstance *inst, const xmlNode *c, int depth)
{
    const char *name = (const char *)c->name;
    xmlNode *dt;

    if (is_nil(c)) {
        add_value(inst, name, NULL);
        return;
    }
    if (!has_element_children(c)) {
        add_value(inst, name, text_of(c));
        return;
    }
    if ((dt = child(c, HV_NS_CIM, "Datetime")) != NULL
        || (dt = child(c, HV_NS_CIM, "Interval")) != NULL
        || (dt = child(c, HV_NS_CIM, "Date")) != NULL) {
        add_value(inst, name, text_of(dt));
        return;
    }
    if (is_epr(c)) {
        HvEpr *e = parse_epr(c);
        if (e != NULL && !g_hash_table_contains(inst->eprs, name))
            g_hash_table_insert(inst->eprs, g_strdup(name), e);
        else
            hv_epr_free(e);
        return;
    }
    if (depth < HV_MAX_DEPTH) {
        GPtrArray *a = g_hash_table_lookup(inst->objs, name);
        if (a == NULL) {
            a = g_ptr_array_new_with_free_func((GDestroyNotify)hv_instance_free);
            g_hash_table_insert(inst->objs, g_strdup(name), a);
        }
        if (a->len < HV_MAX_VALUES)
            g_ptr_array_add(a, parse_instance(c, depth + 1));
    }
}

static HvInstance *
parse_instance(const xmlNode *n, int depth)
{
    HvInstance *inst = hv_instance_new((const char *)n->name);

    for (xmlNode *c = n->children; c != NULL; c = c->next)
        if (c->type == XML_ELEMENT_NODE)
            parse_property(inst, c, depth);
    return inst;
}

static void
parse_items(HvResponse *r, const xmlNode *items)
{
    if (items == NULL)
        return;
    for (xmlNode *c = items->children; c != NULL; c = c->next) {
        HvInstance *inst = NULL;
        if (c->type != XML_ELEMENT_NODE)
            continue;
        if (r->items->len >= HV_MAX_ITEMS)
            break;
        if (is_el(c, HV_NS_A, "EndpointReference")) {
            HvEpr *e;
            inst = hv_instance_new(NULL);
            e = parse_epr(c);
            if (e != NULL)
                g_hash_table_insert(inst->eprs, g_strdup("EPR"), e);
        } else if (is_el(c, HV_NS_W, "Item")) {
            for (xmlNode *d = c->children; d != NULL; d = d->next) {
                if (d->type != XML_ELEMENT_NODE)
                    continue;
                if (is_el(d, HV_NS_A, "EndpointReference")) {
                    HvEpr *e = parse_epr(d);
                    if (inst != NULL && e != NULL)
                        g_hash_table_replace(inst->eprs, g_strdup("EPR"), e);
                    else
                        hv_epr_free(e);
                } else if (inst == NULL) {
                    inst = parse_instance(d, 0);
                }
            }
            if (inst == NULL)
                continue;
        } else {
            inst = parse_instance(c, 0);
        }
        g_ptr_array_add(r->items, inst);
    }
}

static void
parse_fault(HvResponse *r, const xmlNode *f)
{
    xmlNode *code = child(f, HV_NS_S, "Code");
    xmlNode *sub = child(code, HV_NS_S, "Subcode");
    xmlNode *reason = child(f, HV_NS_S, "Reason");
    xmlNode *detail = child(f, HV_NS_S, "Detail");
    xmlNode *wf = child(detail, HV_NS_F, "WSManFault");

    r->is_fault = TRUE;
    r->fault_code = text_of(child(code, HV_NS_S, "Value"));
    r->fault_subcode = text_of(child(sub, HV_NS_S, "Value"));
    r->fault_reason = text_of(child(reason, HV_NS_S, "Text"));
    /* The innermost WSManFault (inside f:ProviderFault) is the WMI one. */
    for (int depth = 0; wf != NULL && depth < HV_MAX_DEPTH; depth++) {
        xmlChar *c = xmlGetProp(wf, (const xmlChar *)"Code");
        xmlNode *msg = child(wf, HV_NS_F, "Message");
        xmlNode *pf = child(msg, HV_NS_F, "ProviderFault");
        xmlNode *inner = pf != NULL ? child(pf, HV_NS_F, "WSManFault") : NULL;
        if (c != NULL) {
            g_free(r->fault_wsman_code);
            r->fault_wsman_code = g_strdup((const char *)c);
            xmlFree(c);
        }
        if (msg != NULL && inner == NULL) {
            g_free(r->fault_message);
            r->fault_message = text_of(msg);
        }
        wf = inner;
    }
    if (r->fault_message == NULL) {
        /* MSFT_WmiError variant (docs/design/hyperv.md §1.9): take its Message. */
        for (xmlNode *c = detail != NULL ? detail->children : NULL; c; c = c->next) {
            xmlNode *m;
            if (c->type != XML_ELEMENT_NODE)
                continue;
            for (m = c->children; m != NULL; m = m->next)
                if (m->type == XML_ELEMENT_NODE && strcmp((const char *)m->name, "Message") == 0) {
                    r->fault_message = text_of(m);
                    break;
                }
            if (r->fault_message != NULL)
                break;
        }
    }
}

HvResponse *
hv_response_parse(const char *buf, gsize len, const char *what, GError **error)
{
    g_autoptr(HvResponse) r = NULL;
    g_autoptr(xmlDoc) doc = NULL;
    xmlNode *env, *header, *body, *first = NULL;

    doc = vmshift_xml_parse(buf, len, what != NULL ? what : "WS-Management reply", error);
    if (doc == NULL)
        return NULL;
    env = xmlDocGetRootElement(doc);
    if (!is_el(env, HV_NS_S, "Envelope")) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_PROTOCOL,
                    "reply is not a SOAP 1.2 envelope");
        return NULL;
    }
    header = child(env, HV_NS_S, "Header");
    body = child(env, HV_NS_S, "Body");
    if (body == NULL) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_PROTOCOL, "SOAP reply has no body");
        return NULL;
    }
    r = g_new0(HvResponse, 1);
    r->items = g_ptr_array_new_with_free_func((GDestroyNotify)hv_instance_free);
    r->action = text_of(child(header, HV_NS_A, "Action"));
    r->relates_to = text_of(child(header, HV_NS_A, "RelatesTo"));
    for (xmlNode *c = body->children; c != NULL; c = c->next)
        if (c->type == XML_ELEMENT_NODE) {
            first = c;
            break;
        }
    if (first == NULL) {
        /* e.g. ReleaseResponse */
    } else if (is_el(first, HV_NS_S, "Fault")) {
        parse_fault(r, first);
    } else if (is_el(first, HV_NS_N, "EnumerateResponse")
               || is_el(first, HV_NS_N, "PullResponse")) {
        r->enum_context = text_of(child(first, HV_NS_N, "EnumerationContext"));
        if (r->enum_context != NULL && r->enum_context[0] == '\0')
            g_clear_pointer(&r->enum_context, g_free);
        parse_items(r, child(first, HV_NS_N, "Items"));
        parse_items(r, child(first, HV_NS_W, "Items"));
        r->end_of_sequence = child(first, HV_NS_N, "EndOfSequence") != NULL
                             || child(first, HV_NS_W, "EndOfSequence") != NULL;
    } else if (first->ns != NULL
               && g_str_has_suffix((const char *)first->ns->href, "wsmanidentity.xsd")) {
        for (xmlNode *c = first->children; c != NULL; c = c->next)
            if (c->type == XML_ELEMENT_NODE && strcmp((const char *)c->name, "ProductVersion") == 0)
                r->product_version = text_of(c);
    } else {
        r->body = parse_instance(first, 0);
    }
    return g_steal_pointer(&r);
}

/* The fault text as the server wrote it, on one line: each run of spaces,
 * tabs and line breaks becomes one space; leading and trailing blanks go. */
static char *
one_line(const char *s)
{
    GString *out = g_string_new(NULL);
    gboolean space = FALSE;

    for (const char *p = s != NULL ? s : ""; *p; p++) {
        if (*p == '\n' || *p == '\r' || *p == '\t' || *p == ' ') {
            space = out->len > 0;
            continue;
        }
        if (space)
            g_string_append_c(out, ' ');
        space = FALSE;
        g_string_append_c(out, *p);
    }
    return g_string_free(out, FALSE);
}

char *
hv_fault_describe(const HvResponse *r)
{
    g_autofree char *msg = one_line(
        r->fault_message != NULL && r->fault_message[0] ? r->fault_message : r->fault_reason);
    const char *sub = r->fault_subcode != NULL && r->fault_subcode[0] ? r->fault_subcode
                                                                      : r->fault_code;
    GString *s = g_string_new("WS-Management fault ");

    g_string_append(s, sub != NULL && sub[0] ? sub : "(no code)");
    if (r->fault_wsman_code != NULL && r->fault_wsman_code[0])
        g_string_append_printf(s, " (code %s)", r->fault_wsman_code);
    if (msg[0])
        g_string_append_printf(s, ": %s", msg);
    return g_string_free(s, FALSE);
}

/* ---- building ------------------------------------------------------------ */

char *
hv_xml_escape(const char *text)
{
    return g_markup_escape_text(text != NULL ? text : "", -1);
}

char *
hv_message_id(void)
{
    g_autofree char *u = g_uuid_string_random();
    return g_strconcat("uuid:", u, NULL);
}

static void
append_selectors(GString *s, const char *const *sel)
{
    g_string_append(s, "<w:SelectorSet>");
    for (guint i = 0; sel[i] != NULL && sel[i + 1] != NULL; i += 2) {
        g_autofree char *n = hv_xml_escape(sel[i]);
        g_autofree char *v = hv_xml_escape(sel[i + 1]);
        g_string_append_printf(s, "<w:Selector Name=\"%s\">%s</w:Selector>", n, v);
    }
    g_string_append(s, "</w:SelectorSet>");
}

char *
hv_envelope(const char *to, const char *action, const char *resource_uri,
            const char *const *selectors, const char *message_id, const char *body)
{
    GString *s = g_string_new(NULL);
    g_autofree char *eto = hv_xml_escape(to);
    g_autofree char *eaction = hv_xml_escape(action);
    g_autofree char *euri = hv_xml_escape(resource_uri);

    g_string_append(s, "<s:Envelope xmlns:s=\"" HV_NS_S "\" xmlns:a=\"" HV_NS_A
                       "\" xmlns:w=\"" HV_NS_W "\" xmlns:n=\"" HV_NS_N
                       "\" xmlns:p=\"http://schemas.microsoft.com/wbem/wsman/1/wsman.xsd\">"
                       "<s:Header>");
    g_string_append_printf(s, "<a:To>%s</a:To>", eto);
    g_string_append_printf(s, "<w:ResourceURI s:mustUnderstand=\"true\">%s</w:ResourceURI>", euri);
    g_string_append(s, "<a:ReplyTo><a:Address s:mustUnderstand=\"true\">" HV_ANON
                       "</a:Address></a:ReplyTo>");
    g_string_append_printf(s, "<a:Action s:mustUnderstand=\"true\">%s</a:Action>", eaction);
    g_string_append(s, "<w:MaxEnvelopeSize s:mustUnderstand=\"true\">512000</w:MaxEnvelopeSize>");
    g_string_append_printf(s, "<a:MessageID>%s</a:MessageID>", message_id);
    g_string_append(s, "<w:Locale xml:lang=\"en-US\" s:mustUnderstand=\"false\"/>"
                       "<p:DataLocale xml:lang=\"en-US\" s:mustUnderstand=\"false\"/>"
                       "<w:OperationTimeout>PT60S</w:OperationTimeout>");
    if (selectors != NULL && selectors[0] != NULL)
        append_selectors(s, selectors);
    g_string_append(s, "</s:Header><s:Body>");
    g_string_append(s, body != NULL ? body : "");
    g_string_append(s, "</s:Body></s:Envelope>");
    return g_string_free(s, FALSE);
}

char *
hv_epr_xml(const char *resource_uri, const char *const *selectors)
{
    GString *s = g_string_new(NULL);
    g_autofree char *euri = hv_xml_escape(resource_uri);

    g_string_append_printf(s,
                           "<a:Address>" HV_ANON "</a:Address><a:ReferenceParameters>"
                           "<w:ResourceURI>%s</w:ResourceURI>",
                           euri);
    append_selectors(s, selectors);
    g_string_append(s, "</a:ReferenceParameters>");
    return g_string_free(s, FALSE);
}

struct _HvCimXml {
    GString *s;
};

HvCimXml *
hv_cimxml_new(const char *class_name)
{
    HvCimXml *x = g_new0(HvCimXml, 1);
    g_autofree char *c = hv_xml_escape(class_name);

    x->s = g_string_new(NULL);
    g_string_append_printf(x->s, "<INSTANCE CLASSNAME=\"%s\">", c);
    return x;
}

void
hv_cimxml_prop(HvCimXml *x, const char *name, const char *type, const char *value)
{
    g_autofree char *n = hv_xml_escape(name);

    g_string_append_printf(x->s, "<PROPERTY NAME=\"%s\" TYPE=\"%s\">", n, type);
    if (value != NULL) {
        g_autofree char *v = hv_xml_escape(value);
        g_string_append_printf(x->s, "<VALUE>%s</VALUE>", v);
    }
    g_string_append(x->s, "</PROPERTY>");
}

void
hv_cimxml_prop_array(HvCimXml *x, const char *name, const char *type, const char *const *values,
                     guint n)
{
    g_autofree char *en = hv_xml_escape(name);

    g_string_append_printf(x->s, "<PROPERTY.ARRAY NAME=\"%s\" TYPE=\"%s\">", en, type);
    if (values != NULL) {
        g_string_append(x->s, "<VALUE.ARRAY>");
        for (guint i = 0; i < n; i++) {
            g_autofree char *v = hv_xml_escape(values[i]);
            g_string_append_printf(x->s, "<VALUE>%s</VALUE>", v);
        }
        g_string_append(x->s, "</VALUE.ARRAY>");
    }
    g_string_append(x->s, "</PROPERTY.ARRAY>");
}

char *
hv_cimxml_finish(HvCimXml *x)
{
    char *out;

    g_string_append(x->s, "</INSTANCE>");
    out = g_string_free(x->s, FALSE);
    g_free(x);
    return out;
}
