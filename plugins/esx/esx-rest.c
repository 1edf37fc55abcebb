/*
 * ESX plugin: the vSphere Automation REST API (/rest, vCenter only) for
 * what SOAP does not offer: reading and attaching a VM's tags.
 */
#include "config.h"

#include <string.h>

#include <json-c/json.h>

#include "esx-impl.h"

G_DEFINE_AUTOPTR_CLEANUP_FUNC(json_object, json_object_put)

/* The REST API lives at /rest on the SDK's host (vCenter only: an ESXi
 * host, or a vCenter without it, answers 404 to the session endpoint; the
 * backend is then SOAP-only for the rest of its life, said once at debug
 * level). One session per backend, made on first use; a 401 later means
 * the session expired: log in again once. */
#define REST_SESSION_PATH "/rest/com/vmware/cis/session"

static gboolean
rest_login_locked(VmshiftBackend *be, GError **error)
{
    if (be->rest == NULL)
        be->rest = vmshift_http_new_sharing(be->http);
    const VmshiftCredentials *c = vmshift_http_get_credentials(be->http);
    g_autofree char *up = g_strdup_printf("%s%s%s:%s", c->domain != NULL ? c->domain : "",
                                          c->domain != NULL ? "\\" : "", c->user, c->password);
    g_autofree char *b64 = g_base64_encode((const guchar *)up, strlen(up));
    g_autofree char *auth = g_strdup_printf("Authorization: Basic %s", b64);
    const char *hdrs[] = { auth, "Accept: application/json", NULL };
    g_autoptr(VmshiftHttpResponse)
        r = vmshift_http_request(be->rest, "POST", REST_SESSION_PATH, hdrs, NULL, 0, NULL, error);
    explicit_bzero(up, strlen(up));
    explicit_bzero(b64, strlen(b64));
    explicit_bzero(auth, strlen(auth));
    if (r == NULL)
        return FALSE;
    if (r->status == 404) {
        g_debug("backend %s: no vSphere Automation REST API at %s (404 from %s); "
                "tags are not carried over",
                be->name, be->url, REST_SESSION_PATH);
        be->rest_unavailable = TRUE;
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_NOT_SUPPORTED,
                    "no vSphere Automation REST API at %s", be->url);
        return FALSE;
    }
    if (!vmshift_http_response_check(r, error))
        return FALSE;
    const char *body = vmshift_http_response_get_body(r, NULL);
    g_autoptr(json_object) doc = json_tokener_parse(body);
    json_object *v = NULL;
    if (doc == NULL || !json_object_object_get_ex(doc, "value", &v)
        || !json_object_is_type(v, json_type_string)) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_PROTOCOL,
                    "POST %s: no session id in the reply", r->url);
        return FALSE;
    }
    if (be->rest_session != NULL)
        explicit_bzero(be->rest_session, strlen(be->rest_session));
    g_free(be->rest_session);
    be->rest_session = g_strdup(json_object_get_string(v));
    g_debug("backend %s: REST session opened (%s next to %s)", be->name, REST_SESSION_PATH,
            be->url);
    return TRUE;
}

/* One REST call with a JSON body; *value gets the reply's "value" (or NULL
 * when it has none). FALSE with VMSHIFT_ERROR_NOT_SUPPORTED when the server
 * has no REST API (see esx_rest_unavailable()). */
static gboolean
rest_call(VmshiftBackend *be, const char *method, const char *path, json_object *body,
          json_object **value, GError **error)
{
    if (value != NULL)
        *value = NULL;
    G_GNUC_UNUSED g_autoptr(GMutexLocker) locker = g_mutex_locker_new(&be->rest_lock);
    if (be->rest_unavailable) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_NOT_SUPPORTED,
                    "no vSphere Automation REST API at %s", be->url);
        return FALSE;
    }
    if (be->rest_session == NULL && !rest_login_locked(be, error))
        return FALSE;
    const char *data = body != NULL ? json_object_to_json_string_ext(body, JSON_C_TO_STRING_PLAIN)
                                    : NULL;
    for (int attempt = 0;; attempt++) {
        g_autofree char *sid = g_strdup_printf("vmware-api-session-id: %s", be->rest_session);
        const char *hdrs[] = { sid, "Accept: application/json",
                               data != NULL ? "Content-Type: application/json" : NULL, NULL };
        g_autoptr(VmshiftHttpResponse) r = vmshift_http_request(
            be->rest, method, path, hdrs, data, data != NULL ? strlen(data) : 0, NULL, error);
        explicit_bzero(sid, strlen(sid));
        if (r == NULL)
            return FALSE;
        if (r->status == 401 && attempt == 0) {
            /* One new session, then the call once more; a second 401 is
             * an error (below). Neither the id nor the reply is logged. */
            g_debug("backend %s: REST session expired; logging in again", be->name);
            explicit_bzero(be->rest_session, strlen(be->rest_session));
            g_clear_pointer(&be->rest_session, g_free);
            if (!rest_login_locked(be, error))
                return FALSE;
            continue;
        }
        if (!vmshift_http_response_check(r, error))
            return FALSE;
        gsize len = 0;
        const char *text = vmshift_http_response_get_body(r, &len);
        if (len > 0 && value != NULL) {
            g_autoptr(json_object) doc = json_tokener_parse(text);
            if (doc == NULL) {
                g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_PROTOCOL,
                            "%s %s: reply is not JSON", r->method, r->url);
                return FALSE;
            }
            json_object *v = NULL;
            if (json_object_object_get_ex(doc, "value", &v))
                *value = json_object_get(v);
        }
        return TRUE;
    }
}

gboolean
esx_rest_unavailable(const GError *error)
{
    return g_error_matches(error, VMSHIFT_ERROR, VMSHIFT_ERROR_NOT_SUPPORTED);
}

static json_object *
vm_object_id(const char *vm)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, "id", json_object_new_string(vm));
    json_object_object_add(o, "type", json_object_new_string("VirtualMachine"));
    json_object *spec = json_object_new_object();
    json_object_object_add(spec, "object_id", o);
    return spec;
}

/* The ids of the tags attached to VM @vm. */
GPtrArray *
esx_read_tags(VmshiftBackend *be, const char *vm, GError **error)
{
    g_autoptr(json_object) spec = vm_object_id(vm);
    g_autoptr(json_object) value = NULL;
    if (!rest_call(be, "POST",
                   "/rest/com/vmware/cis/tagging/tag-association?~action=list-attached-tags", spec,
                   &value, error))
        return NULL;
    GPtrArray *ids = g_ptr_array_new_with_free_func(g_free);
    if (value != NULL && json_object_is_type(value, json_type_array)) {
        for (size_t i = 0; i < json_object_array_length(value); i++) {
            json_object *e = json_object_array_get_idx(value, i);
            if (json_object_is_type(e, json_type_string))
                g_ptr_array_add(ids, g_strdup(json_object_get_string(e)));
        }
    }
    return ids;
}

gboolean
esx_attach_tag(VmshiftBackend *be, const char *tag, const char *vm, GError **error)
{
    g_autofree char *esc = g_uri_escape_string(tag, ":", FALSE);
    g_autofree char *path = g_strdup_printf(
        "/rest/com/vmware/cis/tagging/tag-association/id:%s?~action=attach", esc);
    g_autoptr(json_object) spec = vm_object_id(vm);
    return rest_call(be, "POST", path, spec, NULL, error);
}

/* "id\tname" lines for the tags @ids (the names are only for messages: a
 * tag whose name cannot be read is left out). */
char *
esx_read_tag_names(VmshiftBackend *be, GPtrArray *ids)
{
    GString *s = g_string_new(NULL);
    for (guint i = 0; i < ids->len; i++) {
        const char *id = ids->pdata[i];
        g_autofree char *esc = g_uri_escape_string(id, ":", FALSE);
        g_autofree char *path = g_strdup_printf("/rest/com/vmware/cis/tagging/tag/id:%s", esc);
        g_autoptr(GError) err = NULL;
        g_autoptr(json_object) value = NULL;
        json_object *name = NULL;
        if (!rest_call(be, "GET", path, NULL, &value, &err))
            g_debug("backend %s: name of tag %s: %s", be->name, id, err->message);
        else if (value != NULL && json_object_object_get_ex(value, "name", &name)
                 && json_object_is_type(name, json_type_string)
                 && strpbrk(json_object_get_string(name), "\t\n") == NULL
                 && strpbrk(id, "\t\n") == NULL)
            g_string_append_printf(s, "%s\t%s\n", id, json_object_get_string(name));
    }
    return g_string_free(s, FALSE);
}
