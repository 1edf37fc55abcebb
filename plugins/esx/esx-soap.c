/*
 * ESX plugin: vSphere SOAP session, calls and property retrieval.
 */
#include "config.h"

#include <string.h>

#include "esx.h"

#define VIM_ACTION "urn:vim25/6.5"

/* ---- reply parsing ---------------------------------------------------- */

void
esx_object_free(EsxObject *obj)
{
    if (obj == NULL)
        return;
    g_free(obj->type);
    g_free(obj->value);
    g_hash_table_unref(obj->props);
    g_hash_table_unref(obj->missing);
    g_free(obj);
}

void
esx_result_free(EsxResult *result)
{
    if (result == NULL || !g_atomic_int_dec_and_test(&result->refs))
        return;
    g_ptr_array_unref(result->objects);
    g_ptr_array_unref(result->docs);
    g_free(result);
}

EsxResult *
esx_result_ref(EsxResult *result)
{
    g_atomic_int_inc(&result->refs);
    return result;
}

static EsxResult *
result_new(void)
{
    EsxResult *r = g_new0(EsxResult, 1);
    r->refs = 1;
    r->docs = g_ptr_array_new_with_free_func((GDestroyNotify)xmlFreeDoc);
    r->objects = g_ptr_array_new_with_free_func((GDestroyNotify)esx_object_free);
    return r;
}

static gboolean
protocol_error(GError **error, const char *what)
{
    g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_PROTOCOL, "RetrievePropertiesEx reply: %s",
                what);
    return FALSE;
}

gboolean
esx_parse_retrieve_reply(xmlDoc *doc, GPtrArray *objects, char **token, GError **error)
{
    xmlNode *resp = vmshift_soap_body(doc);
    if (token != NULL)
        *token = NULL;
    if (resp == NULL)
        return protocol_error(error, "no SOAP body");
    if (!vmshift_xml_node_is(resp, VMSHIFT_NS_VIM25, "RetrievePropertiesExResponse")
        && !vmshift_xml_node_is(resp, VMSHIFT_NS_VIM25, "ContinueRetrievePropertiesExResponse")
        && !vmshift_xml_node_is(resp, VMSHIFT_NS_VIM25, "RetrievePropertiesResponse"))
        return protocol_error(error, "unexpected response element");

    /* An empty result has no returnval at all. */
    for (xmlNode *rv = vmshift_xml_first_element(resp); rv != NULL;
         rv = vmshift_xml_next_element(rv)) {
        if (!vmshift_xml_node_is(rv, VMSHIFT_NS_VIM25, "returnval"))
            continue;
        /* RetrieveProperties returns the ObjectContents directly. */
        gboolean direct = vmshift_xml_child(rv, VMSHIFT_NS_VIM25, "obj") != NULL;
        for (xmlNode *o = direct ? rv : vmshift_xml_first_element(rv); o != NULL;
             o = direct ? NULL : vmshift_xml_next_element(o)) {
            if (!direct && vmshift_xml_node_is(o, VMSHIFT_NS_VIM25, "token")) {
                if (token != NULL) {
                    g_free(*token);
                    *token = vmshift_xml_text(o);
                }
                continue;
            }
            if (!direct && !vmshift_xml_node_is(o, VMSHIFT_NS_VIM25, "objects"))
                continue;
            xmlNode *objn = vmshift_xml_child(o, VMSHIFT_NS_VIM25, "obj");
            if (objn == NULL)
                return protocol_error(error, "object without obj");
            EsxObject *obj = g_new0(EsxObject, 1);
            obj->type = vmshift_xml_get_attr(objn, NULL, "type");
            obj->value = vmshift_xml_text(objn);
            obj->props = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
            obj->missing = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
            if (obj->type == NULL || obj->value == NULL || obj->value[0] == '\0') {
                esx_object_free(obj);
                return protocol_error(error, "obj without type or value");
            }
            g_ptr_array_add(objects, obj);
            for (xmlNode *p = vmshift_xml_first_element(o); p != NULL;
                 p = vmshift_xml_next_element(p)) {
                if (vmshift_xml_node_is(p, VMSHIFT_NS_VIM25, "propSet")) {
                    char *name = vmshift_xml_child_text(p, VMSHIFT_NS_VIM25, "name");
                    xmlNode *val = vmshift_xml_child(p, VMSHIFT_NS_VIM25, "val");
                    if (name == NULL || val == NULL) {
                        g_free(name);
                        return protocol_error(error, "propSet without name or val");
                    }
                    g_hash_table_replace(obj->props, name, val);
                } else if (vmshift_xml_node_is(p, VMSHIFT_NS_VIM25, "missingSet")) {
                    char *path = vmshift_xml_child_text(p, VMSHIFT_NS_VIM25, "path");
                    xmlNode *f = vmshift_xml_child(p, VMSHIFT_NS_VIM25, "fault");
                    xmlNode *inner = f != NULL ? vmshift_xml_child(f, VMSHIFT_NS_VIM25, "fault")
                                               : NULL;
                    char *ftype = vmshift_xml_xsi_type(inner != NULL ? inner : f);
                    if (path == NULL) {
                        g_free(ftype);
                        return protocol_error(error, "missingSet without path");
                    }
                    g_hash_table_replace(obj->missing, path,
                                         ftype != NULL ? ftype : g_strdup("unknown"));
                }
            }
        }
    }
    return TRUE;
}

xmlNode *
esx_prop(const EsxObject *obj, const char *path)
{
    return obj != NULL ? g_hash_table_lookup(obj->props, path) : NULL;
}

char *
esx_prop_text(const EsxObject *obj, const char *path)
{
    xmlNode *n = esx_prop(obj, path);
    return n != NULL ? vmshift_xml_text(n) : NULL;
}

gboolean
esx_prop_bool(const EsxObject *obj, const char *path)
{
    g_autofree char *t = esx_prop_text(obj, path);
    return t != NULL && (g_strcmp0(g_strstrip(t), "true") == 0 || g_strcmp0(t, "1") == 0);
}

gint64
esx_prop_int(const EsxObject *obj, const char *path)
{
    g_autofree char *t = esx_prop_text(obj, path);
    return t != NULL ? g_ascii_strtoll(g_strstrip(t), NULL, 10) : 0;
}

char *
esx_node_moref_type(const xmlNode *node)
{
    return vmshift_xml_get_attr(node, NULL, "type");
}

GPtrArray *
esx_prop_morefs(const EsxObject *obj, const char *path)
{
    GPtrArray *out = g_ptr_array_new_with_free_func(g_free);
    xmlNode *n = esx_prop(obj, path);
    for (xmlNode *c = vmshift_xml_first_element(n); c != NULL; c = vmshift_xml_next_element(c))
        g_ptr_array_add(out, vmshift_xml_text(c));
    return out;
}

EsxObject *
esx_result_find(const EsxResult *result, const char *value)
{
    for (guint i = 0; result != NULL && value != NULL && i < result->objects->len; i++) {
        EsxObject *o = result->objects->pdata[i];
        if (g_strcmp0(o->value, value) == 0)
            return o;
    }
    return NULL;
}

EsxObject *
esx_result_find_name(const EsxResult *result, const char *type, const char *name)
{
    for (guint i = 0; result != NULL && name != NULL && i < result->objects->len; i++) {
        EsxObject *o = result->objects->pdata[i];
        if (type != NULL && g_strcmp0(o->type, type) != 0)
            continue;
        g_autofree char *n = esx_prop_text(o, "name");
        if (g_strcmp0(n, name) == 0)
            return o;
    }
    return NULL;
}

/* ---- building requests ---------------------------------------------- */

char *
esx_moref_xml(const char *element, const char *type, const char *value)
{
    g_autofree char *t = vmshift_xml_escape(type);
    g_autofree char *v = vmshift_xml_escape(value);
    return g_strdup_printf("<%s type=\"%s\">%s</%s>", element, t, v, element);
}

void
esx_xml_reserialize(GString *out, const xmlNode *node, const char *name, const char *replace_child,
                    const char *replacement)
{
    const char *local = name != NULL ? name : (const char *)node->name;
    g_autofree char *xsi = vmshift_xml_xsi_type(node);
    g_autofree char *mtype = vmshift_xml_get_attr(node, NULL, "type");
    g_string_append_printf(out, "<%s", local);
    if (xsi != NULL) {
        g_autofree char *e = vmshift_xml_escape(xsi);
        g_string_append_printf(out, " xsi:type=\"%s\"", e);
    }
    if (mtype != NULL) {
        g_autofree char *e = vmshift_xml_escape(mtype);
        g_string_append_printf(out, " type=\"%s\"", e);
    }
    g_string_append_c(out, '>');
    gboolean has_elements = vmshift_xml_first_element(node) != NULL;
    if (!has_elements) {
        g_autofree char *t = vmshift_xml_text(node);
        g_autofree char *e = vmshift_xml_escape(t);
        g_string_append(out, e);
    }
    gboolean replaced = FALSE;
    for (xmlNode *c = vmshift_xml_first_element(node); c != NULL; c = vmshift_xml_next_element(c)) {
        if (replace_child != NULL && g_strcmp0((const char *)c->name, replace_child) == 0) {
            if (!replaced && replacement != NULL)
                g_string_append(out, replacement);
            replaced = TRUE;
            continue;
        }
        esx_xml_reserialize(out, c, NULL, NULL, NULL);
    }
    g_string_append_printf(out, "</%s>", local);
}

/* ---- session --------------------------------------------------------- */

static gboolean
fault_is(const VmshiftSoapFault *f, const char *type)
{
    return f != NULL && g_strcmp0(f->detail_type, type) == 0;
}

/* vmshift_soap_call() over vmshift_http_request_once(): a call that
 * changes something (a *_Task method) reaches the server at most once;
 * libcurl's resend on a kept-alive connection found dead is refused and
 * the call fails with VMSHIFT_ERROR_CONNECTION, to be reconciled by reading
 * the server (esx_start_vm_task). The reply is read as vmshift_soap_call()
 * reads it. */
static xmlDoc *
soap_call_once(VmshiftHttp *http, const char *env, const char *what, GCancellable *cancellable,
               VmshiftSoapFault **fault_out, GError **error)
{
    static const char *const headers[] = { "Content-Type: text/xml; charset=utf-8",
                                           "SOAPAction: \"" VIM_ACTION "\"", NULL };
    g_autoptr(VmshiftHttpResponse) resp = vmshift_http_request_once(
        http, "POST", NULL, headers, env, strlen(env), cancellable, error);
    if (resp == NULL) {
        g_prefix_error(error, "%s: ", what);
        return NULL;
    }
    g_autofree char *prefix = g_strdup_printf("%s %s %s", resp->method, resp->url, what);
    gsize len = 0;
    const char *body = vmshift_http_response_get_body(resp, &len);
    gboolean soap_status = resp->status / 100 == 2 || resp->status == 500 || resp->status == 400;
    g_autoptr(GError) perr = NULL;
    xmlDoc *doc = soap_status && len > 0 ? vmshift_xml_parse(body, len, prefix, &perr) : NULL;
    if (doc != NULL && !vmshift_xml_node_is(vmshift_xml_root(doc), VMSHIFT_NS_SOAP11, "Envelope"))
        g_clear_pointer(&doc, xmlFreeDoc);
    if (doc == NULL) {
        if (!vmshift_http_response_check(resp, error))
            g_prefix_error(error, "%s: ", what);
        else if (len == 0)
            g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_PROTOCOL, "%s: empty reply (HTTP %u)",
                        prefix, resp->status);
        else
            g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_PROTOCOL,
                        "%s: reply is not a SOAP envelope%s%s", prefix, perr != NULL ? ": " : "",
                        perr != NULL ? perr->message : "");
        return NULL;
    }
    VmshiftSoapFault *fault = vmshift_soap_fault_get(doc);
    if (fault != NULL) {
        vmshift_soap_fault_set_error(fault, vmshift_soap_fault_default_code(fault), prefix, error);
        if (fault_out != NULL) {
            fault->doc_ = doc; /* as vmshift_soap_call(): the fault keeps its document */
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

static xmlDoc *
raw_call_mode(VmshiftBackend *be, VmshiftHttp *http, const char *what, const char *body,
              gboolean once, GCancellable *cancellable, VmshiftSoapFault **fault, GError **error)
{
    g_autofree char *env = vmshift_soap_envelope(VMSHIFT_SOAP_1_1, NULL, NULL, body);
    g_atomic_int_inc(&be->soap_calls);
    if (once)
        return soap_call_once(http, env, what, cancellable, fault, error);
    return vmshift_soap_call(http, NULL, VMSHIFT_SOAP_1_1, VIM_ACTION, env, what, cancellable,
                             fault, error);
}

static xmlDoc *
raw_call(VmshiftBackend *be, VmshiftHttp *http, const char *what, const char *body,
         GCancellable *cancellable, VmshiftSoapFault **fault, GError **error)
{
    return raw_call_mode(be, http, what, body, FALSE, cancellable, fault, error);
}

static char *
content_ref(xmlXPathContext *ctx, const char *name)
{
    g_autofree char *expr = g_strdup_printf("//vim:returnval/vim:%s", name);
    return vmshift_xpath_string(ctx, NULL, expr);
}

/* Called with be->lock held. */
static gboolean
login_locked(VmshiftBackend *be, GError **error)
{
    if (be->root_folder == NULL) {
        g_autoptr(xmlDoc) doc = raw_call(
            be, be->http, "RetrieveServiceContent",
            "<RetrieveServiceContent xmlns=\"urn:vim25\"><_this type=\"ServiceInstance\">"
            "ServiceInstance</_this></RetrieveServiceContent>",
            NULL, NULL, error);
        if (doc == NULL)
            return FALSE;
        g_autoptr(xmlXPathContext) ctx = vmshift_xpath_new(doc, NULL);
        be->root_folder = content_ref(ctx, "rootFolder");
        be->property_collector = content_ref(ctx, "propertyCollector");
        be->view_manager = content_ref(ctx, "viewManager");
        be->session_manager = content_ref(ctx, "sessionManager");
        be->auth_manager = content_ref(ctx, "authorizationManager");
        be->task_manager = content_ref(ctx, "taskManager");
        be->api_version = vmshift_xpath_string(ctx, NULL,
                                               "//vim:returnval/vim:about/vim:apiVersion");
        if (be->root_folder == NULL || be->property_collector == NULL || be->view_manager == NULL
            || be->session_manager == NULL) {
            g_clear_pointer(&be->root_folder, g_free);
            g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_PROTOCOL,
                        "%s RetrieveServiceContent: not a vCenter/ESXi service content "
                        "(no rootFolder, propertyCollector, viewManager or sessionManager)",
                        be->url);
            return FALSE;
        }
    }
    const VmshiftCredentials *cred = vmshift_http_get_credentials(be->http);
    if (cred == NULL || cred->user == NULL || cred->password == NULL) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_CONFIG,
                    "backend %s: credentials= is required (a file with user= and password=)",
                    be->name);
        return FALSE;
    }
    /* A Login sent with a still-valid session cookie fails: start clean. */
    vmshift_http_clear_cookies(be->http);
    g_autofree char *sm = vmshift_xml_escape(be->session_manager);
    g_autofree char *user = vmshift_xml_escape(cred->user);
    g_autofree char *pass = vmshift_xml_escape(cred->password);
    g_autofree char *body = g_strdup_printf(
        "<Login xmlns=\"urn:vim25\"><_this type=\"SessionManager\">%s</_this>"
        "<userName>%s</userName><password>%s</password></Login>",
        sm, user, pass);
    memset(pass, 0, strlen(pass));
    g_autoptr(VmshiftSoapFault) fault = NULL;
    g_autoptr(GError) err = NULL;
    g_autoptr(xmlDoc) doc = raw_call(be, be->http, "Login", body, NULL, &fault, &err);
    memset(body, 0, strlen(body));
    if (doc == NULL) {
        if (fault_is(fault, "InvalidLogin"))
            g_set_error(
                error, VMSHIFT_ERROR, VMSHIFT_ERROR_AUTH_FAILED,
                "%s Login: user or password refused (InvalidLogin); check the credentials file",
                be->url);
        else
            g_propagate_error(error, g_steal_pointer(&err));
        return FALSE;
    }
    be->logged_in = TRUE;
    be->login_count++;
    if (be->views != NULL)
        g_hash_table_remove_all(be->views);
    g_debug("backend %s: logged in to %s (API %s)", be->name, be->url,
            be->api_version != NULL ? be->api_version : "?");
    return TRUE;
}

gboolean
esx_connect(VmshiftBackend *be, GError **error)
{
    GError *local = NULL;

    g_mutex_lock(&be->lock);
    gboolean ok = be->logged_in || login_locked(be, &local);
    g_mutex_unlock(&be->lock);
    /* the first contact (open does not log in): one line naming the backend */
    if (!ok && local != NULL && !g_str_has_prefix(local->message, "backend "))
        g_prefix_error(&local, "backend %s: ", be->name);
    if (!ok)
        g_propagate_error(error, local);
    return ok;
}

/* Re-login after NotAuthenticated unless another thread already did. */
static gboolean
relogin(VmshiftBackend *be, guint seen_count, GError **error)
{
    g_mutex_lock(&be->lock);
    gboolean ok = TRUE;
    if (be->login_count == seen_count) {
        be->logged_in = FALSE;
        g_debug("backend %s: session expired, logging in again", be->name);
        ok = login_locked(be, error);
    }
    g_mutex_unlock(&be->lock);
    return ok;
}

static gboolean
reply_not_authenticated(xmlDoc *doc)
{
    /* vcsim answers an unauthenticated RetrievePropertiesEx with a
     * missingSet per property instead of a fault. */
    g_autoptr(xmlXPathContext) ctx = vmshift_xpath_new(doc, NULL);
    g_autoptr(GPtrArray) n = vmshift_xpath_nodes(ctx, NULL, "//vim:missingSet/vim:fault/vim:fault");
    gboolean yes = FALSE;
    for (guint i = 0; i < n->len && !yes; i++) {
        g_autofree char *t = vmshift_xml_xsi_type(n->pdata[i]);
        yes = g_strcmp0(t, "NotAuthenticated") == 0;
    }
    return yes;
}

static xmlDoc *
call_mode(VmshiftBackend *be, VmshiftHttp *http, const char *what, const char *body, gboolean once,
          GCancellable *cancellable, VmshiftSoapFault **fault, GError **error)
{
    if (!esx_connect(be, error))
        return NULL;
    for (int attempt = 0;; attempt++) {
        g_mutex_lock(&be->lock);
        guint seen = be->login_count;
        g_mutex_unlock(&be->lock);
        g_autoptr(VmshiftSoapFault) f = NULL;
        g_autoptr(GError) err = NULL;
        g_autoptr(xmlDoc) doc = raw_call_mode(be, http, what, body, once, cancellable, &f, &err);
        /* NotAuthenticated: the call was refused, sending it again after
         * the new Login is safe for a send-once call too. */
        gboolean expired = (doc == NULL && fault_is(f, "NotAuthenticated"))
                           || (doc != NULL && reply_not_authenticated(doc));
        if (expired && attempt == 0) {
            if (!relogin(be, seen, error))
                return NULL;
            continue;
        }
        if (doc == NULL) {
            if (fault != NULL)
                *fault = g_steal_pointer(&f);
            g_propagate_error(error, g_steal_pointer(&err));
        }
        return g_steal_pointer(&doc);
    }
}

xmlDoc *
esx_call_on(VmshiftBackend *be, VmshiftHttp *http, const char *what, const char *body,
            GCancellable *cancellable, VmshiftSoapFault **fault, GError **error)
{
    return call_mode(be, http, what, body, FALSE, cancellable, fault, error);
}

xmlDoc *
esx_call_once(VmshiftBackend *be, const char *what, const char *body, GCancellable *cancellable,
              VmshiftSoapFault **fault, GError **error)
{
    return call_mode(be, be->http, what, body, TRUE, cancellable, fault, error);
}

xmlDoc *
esx_call(VmshiftBackend *be, const char *what, const char *body, GCancellable *cancellable,
         VmshiftSoapFault **fault, GError **error)
{
    return esx_call_on(be, be->http, what, body, cancellable, fault, error);
}

/* ---- retrieval ------------------------------------------------------- */

char *
esx_propset_xml(const char *type, const char *const *paths)
{
    GString *s = g_string_new("<propSet>");
    g_autofree char *t = vmshift_xml_escape(type);
    g_string_append_printf(s, "<type>%s</type>", t);
    for (guint i = 0; paths != NULL && paths[i] != NULL; i++) {
        g_autofree char *p = vmshift_xml_escape(paths[i]);
        g_string_append_printf(s, "<pathSet>%s</pathSet>", p);
    }
    g_string_append(s, "</propSet>");
    return g_string_free(s, FALSE);
}

/* RetrievePropertiesEx, then ContinueRetrievePropertiesEx while a token
 * comes back (vCenter pages at maxObjects). */
static EsxResult *
retrieve(VmshiftBackend *be, const char *specset, GCancellable *cancellable, GError **error)
{
    g_autoptr(EsxResult) res = result_new();
    g_autofree char *pc = vmshift_xml_escape(be->property_collector);
    g_autofree char *body = g_strdup_printf(
        "<RetrievePropertiesEx xmlns=\"urn:vim25\"><_this type=\"PropertyCollector\">%s</_this>"
        "%s<options><maxObjects>500</maxObjects></options></RetrievePropertiesEx>",
        pc, specset);
    xmlDoc *doc = esx_call(be, "RetrievePropertiesEx", body, cancellable, NULL, error);
    for (int pages = 0; doc != NULL; pages++) {
        g_ptr_array_add(res->docs, doc);
        g_autofree char *token = NULL;
        if (!esx_parse_retrieve_reply(doc, res->objects, &token, error))
            return NULL;
        if (token == NULL || token[0] == '\0')
            return g_steal_pointer(&res);
        if (pages > 100000) {
            g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_PROTOCOL,
                        "%s ContinueRetrievePropertiesEx: too many pages", be->url);
            return NULL;
        }
        g_autofree char *tok = vmshift_xml_escape(token);
        g_autofree char *cbody = g_strdup_printf(
            "<ContinueRetrievePropertiesEx xmlns=\"urn:vim25\"><_this type=\"PropertyCollector\">"
            "%s</_this><token>%s</token></ContinueRetrievePropertiesEx>",
            pc, tok);
        doc = esx_call(be, "ContinueRetrievePropertiesEx", cbody, cancellable, NULL, error);
    }
    return NULL;
}

EsxResult *
esx_retrieve_spec(VmshiftBackend *be, const char *specset, GCancellable *cancellable,
                  GError **error)
{
    if (!esx_connect(be, error))
        return NULL;
    return retrieve(be, specset, cancellable, error);
}

static char *
find_datacenter(VmshiftBackend *be, GCancellable *cancellable, GError **error)
{
    g_autofree char *root = esx_moref_xml("obj", "Folder", be->root_folder);
    static const char *const paths[] = { "name", NULL };
    g_autofree char *ps = esx_propset_xml("Datacenter", paths);
    /* rootFolder.childEntity → datacenters (and folders of them). */
    g_autofree char *spec = g_strdup_printf(
        "<specSet>%s<objectSet>%s<skip>true</skip>"
        "<selectSet xsi:type=\"TraversalSpec\"><name>folderTraversal</name><type>Folder</type>"
        "<path>childEntity</path><skip>false</skip>"
        "<selectSet><name>folderTraversal</name></selectSet></selectSet>"
        "</objectSet></specSet>",
        ps, root);
    g_autoptr(EsxResult) r = retrieve(be, spec, cancellable, error);
    if (r == NULL)
        return NULL;
    EsxObject *dc = esx_result_find_name(r, "Datacenter", be->datacenter);
    if (dc == NULL) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_NOT_FOUND,
                    "%s: datacenter '%s' (datacenter= of backend %s) not found", be->url,
                    be->datacenter, be->name);
        return NULL;
    }
    return g_strdup(dc->value);
}

static EsxResult *retrieve_all_once(VmshiftBackend *be, const char *type, const char *const *paths,
                                    GCancellable *cancellable, GError **error);

/* Views belong to a session: when the session was replaced while we used
 * one (re-login after expiry), start again with a new view. */
EsxResult *
esx_retrieve_all(VmshiftBackend *be, const char *type, const char *const *paths,
                 GCancellable *cancellable, GError **error)
{
    for (int attempt = 0;; attempt++) {
        g_mutex_lock(&be->lock);
        guint seen = be->login_count;
        g_mutex_unlock(&be->lock);
        g_autoptr(GError) err = NULL;
        EsxResult *r = retrieve_all_once(be, type, paths, cancellable, &err);
        if (r != NULL)
            return r;
        g_mutex_lock(&be->lock);
        gboolean relogged = be->login_count != seen;
        g_mutex_unlock(&be->lock);
        (void)relogged;
        if (attempt == 0 && g_error_matches(err, VMSHIFT_ERROR, VMSHIFT_ERROR_NOT_FOUND))
            continue; /* the view (or the session it belonged to) was gone */
        g_propagate_error(error, g_steal_pointer(&err));
        return NULL;
    }
}

static char *
get_view(VmshiftBackend *be, const char *type, GCancellable *cancellable, GError **error)
{
    g_mutex_lock(&be->lock);
    char *view = be->views != NULL ? g_strdup(g_hash_table_lookup(be->views, type)) : NULL;
    char *dc = g_strdup(be->dc_moref);
    g_mutex_unlock(&be->lock);
    if (view != NULL) {
        g_free(dc);
        return view;
    }
    const char *ctype = "Folder";
    if (be->datacenter != NULL) {
        if (dc == NULL) {
            dc = find_datacenter(be, cancellable, error);
            if (dc == NULL)
                return NULL;
            g_mutex_lock(&be->lock);
            g_free(be->dc_moref);
            be->dc_moref = g_strdup(dc);
            g_mutex_unlock(&be->lock);
        }
        ctype = "Datacenter";
    } else {
        dc = g_strdup(be->root_folder);
    }
    g_autofree char *container = dc;
    g_autofree char *vm = vmshift_xml_escape(be->view_manager);
    g_autofree char *cont = esx_moref_xml("container", ctype, container);
    g_autofree char *t = vmshift_xml_escape(type);
    g_autofree char *cbody = g_strdup_printf(
        "<CreateContainerView xmlns=\"urn:vim25\"><_this type=\"ViewManager\">%s</_this>"
        "%s<type>%s</type><recursive>true</recursive></CreateContainerView>",
        vm, cont, t);
    g_autoptr(xmlDoc) vdoc = esx_call(be, "CreateContainerView", cbody, cancellable, NULL, error);
    if (vdoc == NULL)
        return NULL;
    view = vmshift_xml_text(
        vmshift_xml_child(vmshift_soap_body(vdoc), VMSHIFT_NS_VIM25, "returnval"));
    if (view == NULL || view[0] == '\0') {
        g_free(view);
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_PROTOCOL,
                    "%s CreateContainerView: no view in the reply", be->url);
        return NULL;
    }
    /* Views live as long as the session; keep one per type. */
    g_mutex_lock(&be->lock);
    if (be->views == NULL)
        be->views = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    g_hash_table_replace(be->views, g_strdup(type), g_strdup(view));
    g_mutex_unlock(&be->lock);
    return view;
}

static void
forget_views(VmshiftBackend *be)
{
    g_mutex_lock(&be->lock);
    if (be->views != NULL)
        g_hash_table_remove_all(be->views);
    g_clear_pointer(&be->dc_moref, g_free);
    g_mutex_unlock(&be->lock);
}

static EsxResult *
retrieve_all_once(VmshiftBackend *be, const char *type, const char *const *paths,
                  GCancellable *cancellable, GError **error)
{
    if (!esx_connect(be, error))
        return NULL;
    g_autofree char *view = get_view(be, type, cancellable, error);
    if (view == NULL)
        return NULL;
    g_autofree char *ps = esx_propset_xml(type, paths);
    g_autofree char *obj = esx_moref_xml("obj", "ContainerView", view);
    g_autofree char *spec = g_strdup_printf(
        "<specSet>%s<objectSet>%s<skip>true</skip>"
        "<selectSet xsi:type=\"TraversalSpec\"><type>ContainerView</type><path>view</path>"
        "<skip>false</skip></selectSet></objectSet></specSet>",
        ps, obj);
    g_autoptr(GError) err = NULL;
    EsxResult *r = retrieve(be, spec, cancellable, &err);
    if (r == NULL) {
        /* A view of a session that is gone, or destroyed: start again. */
        if (g_error_matches(err, VMSHIFT_ERROR, VMSHIFT_ERROR_NOT_FOUND))
            forget_views(be);
        g_propagate_error(error, g_steal_pointer(&err));
    }
    return r;
}

EsxResult *
esx_retrieve_objects(VmshiftBackend *be, const char *type, GPtrArray *morefs,
                     const char *const *paths, GCancellable *cancellable, GError **error)
{
    if (!esx_connect(be, error))
        return NULL;
    if (morefs->len == 0)
        return result_new();
    g_autofree char *ps = esx_propset_xml(type, paths);
    GString *spec = g_string_new("<specSet>");
    g_string_append(spec, ps);
    for (guint i = 0; i < morefs->len; i++) {
        g_autofree char *o = esx_moref_xml("obj", type, morefs->pdata[i]);
        g_string_append_printf(spec, "<objectSet>%s</objectSet>", o);
    }
    g_string_append(spec, "</specSet>");
    g_autofree char *s = g_string_free(spec, FALSE);
    return retrieve(be, s, cancellable, error);
}

EsxObject *
esx_retrieve_one(VmshiftBackend *be, const char *type, const char *moref, const char *const *paths,
                 EsxResult **keep, GCancellable *cancellable, GError **error)
{
    g_autoptr(GPtrArray) refs = g_ptr_array_new();
    g_ptr_array_add(refs, (gpointer)moref);
    g_autoptr(EsxResult) r = esx_retrieve_objects(be, type, refs, paths, cancellable, error);
    if (r == NULL)
        return NULL;
    EsxObject *o = esx_result_find(r, moref);
    if (o == NULL) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_NOT_FOUND, "%s: %s %s not found", be->url,
                    type, moref);
        return NULL;
    }
    *keep = g_steal_pointer(&r);
    return o;
}

/* ---- inventory cache ------------------------------------------------- */

static const char *const cache_types[] = { "HostSystem", "Datastore", "Network" };

EsxResult *
esx_cached_all(VmshiftBackend *be, EsxCacheKind kind, GCancellable *cancellable, GError **error)
{
    gint64 now = g_get_monotonic_time();
    g_mutex_lock(&be->lock);
    EsxResult *r = be->cache[kind];
    if (r != NULL && now - be->cache_at[kind] < ESX_CACHE_TTL_US)
        r = esx_result_ref(r);
    else
        r = NULL;
    g_mutex_unlock(&be->lock);
    if (r != NULL)
        return r;
    r = esx_retrieve_all(be, cache_types[kind], esx_cache_paths[kind], cancellable, error);
    if (r == NULL)
        return NULL;
    g_mutex_lock(&be->lock);
    if (be->cache[kind] != NULL)
        esx_result_free(be->cache[kind]);
    be->cache[kind] = esx_result_ref(r);
    be->cache_at[kind] = now;
    g_mutex_unlock(&be->lock);
    return r;
}

void
esx_cache_invalidate(VmshiftBackend *be, guint mask)
{
    g_mutex_lock(&be->lock);
    for (guint k = 0; k < G_N_ELEMENTS(be->cache); k++)
        if ((mask & (1u << k)) != 0)
            g_clear_pointer(&be->cache[k], esx_result_free);
    g_mutex_unlock(&be->lock);
}
