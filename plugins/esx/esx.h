/*
 * ESX plugin internals: the vSphere Web Services API (SOAP at /sdk) over the
 * SDK's HTTP and XML helpers.
 */
#ifndef VMSHIFT_ESX_H
#define VMSHIFT_ESX_H

#include <vmshift/vmshift.h>
#include <vmshift/http.h>
#include <vmshift/xml.h>

G_BEGIN_DECLS

struct _VmshiftBackend {
    char *name;
    char *url;
    char *datacenter;   /* datacenter= (name), or NULL for all */
    VmshiftHttp *http;
    GMutex lock;        /* guards the session fields below */
    gboolean logged_in;
    guint login_count;  /* how many Logins this handle did (tests) */
    char *root_folder;
    char *property_collector;
    char *view_manager;
    char *session_manager;
    char *auth_manager;
    char *task_manager;
    char *api_version;
    GHashTable *vm_ids;  /* VM name → moref, a cache (guarded by lock) */
    GHashTable *views;   /* type → ContainerView moref of this session (lock) */
    char *dc_moref;      /* the datacenter= datacenter (lock) */
};

/* One object of a RetrievePropertiesEx reply. Property values are nodes
 * borrowed from the reply documents kept by the EsxResult. */
typedef struct {
    char *type;
    char *value;
    GHashTable *props;    /* path → xmlNode * (the <val> element) */
    GHashTable *missing;  /* path → fault type */
} EsxObject;

typedef struct {
    GPtrArray *docs;      /* xmlDoc * */
    GPtrArray *objects;   /* EsxObject * */
} EsxResult;

void esx_result_free(EsxResult *result);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(EsxResult, esx_result_free)

/* Parse one RetrievePropertiesEx / ContinueRetrievePropertiesEx reply into
 * @objects (EsxObject *), return the continuation token (or NULL). The
 * nodes stay owned by @doc. Used by the fuzz target. */
gboolean esx_parse_retrieve_reply(xmlDoc *doc, GPtrArray *objects, char **token,
                                  GError **error);
void esx_object_free(EsxObject *obj);

/* Property accessors (NULL/0 when absent: vSphere omits unset values). */
xmlNode *esx_prop(const EsxObject *obj, const char *path);
char *esx_prop_text(const EsxObject *obj, const char *path);
gboolean esx_prop_bool(const EsxObject *obj, const char *path);
gint64 esx_prop_int(const EsxObject *obj, const char *path);
char *esx_node_moref_type(const xmlNode *node);
/* Children of an ArrayOfManagedObjectReference (moref values). */
GPtrArray *esx_prop_morefs(const EsxObject *obj, const char *path);
EsxObject *esx_result_find(const EsxResult *result, const char *value);
EsxObject *esx_result_find_name(const EsxResult *result, const char *type, const char *name);

/* Session. */
gboolean esx_connect(VmshiftBackend *be, GError **error);
/* One SOAP call; @body is the Body content (already escaped). Logs in again
 * once when the session has expired. */
xmlDoc *esx_call(VmshiftBackend *be, const char *what, const char *body,
                 GCancellable *cancellable, VmshiftSoapFault **fault, GError **error);
xmlDoc *esx_call_on(VmshiftBackend *be, VmshiftHttp *http, const char *what, const char *body,
                    GCancellable *cancellable, VmshiftSoapFault **fault, GError **error);

/* Retrieval. @types/@paths: NULL-terminated; @container: a folder or
 * datacenter moref to search recursively (NULL = the configured
 * datacenter or the root folder). */
EsxResult *esx_retrieve_all(VmshiftBackend *be, const char *type, const char *const *paths,
                            GCancellable *cancellable, GError **error);
/* Properties of explicit objects, all of one type. */
EsxResult *esx_retrieve_objects(VmshiftBackend *be, const char *type, GPtrArray *morefs,
                                const char *const *paths, GCancellable *cancellable,
                                GError **error);
EsxObject *esx_retrieve_one(VmshiftBackend *be, const char *type, const char *moref,
                            const char *const *paths, EsxResult **keep,
                            GCancellable *cancellable, GError **error);

/* Serialise a received value element again (xsi:type written as xsi:type),
 * renaming it to @name, replacing its child @replace_child (if not NULL)
 * with the fragment @replacement. */
void esx_xml_reserialize(GString *out, const xmlNode *node, const char *name,
                         const char *replace_child, const char *replacement);

/* Moref helpers. */
char *esx_moref_xml(const char *element, const char *type, const char *value);

G_END_DECLS

#endif
