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
    char *datacenter; /* datacenter= (name), or NULL for all */
    VmshiftHttp *http;
    GMutex lock; /* guards the session fields below */
    gboolean logged_in;
    guint login_count; /* how many Logins this handle did (tests) */
    char *root_folder;
    char *property_collector;
    char *view_manager;
    char *session_manager;
    char *auth_manager;
    char *task_manager;
    char *api_version;
    GHashTable *vm_ids; /* VM name → moref, a cache (guarded by lock) */
    GHashTable *views;  /* type → ContainerView moref of this session (lock) */
    char *dc_moref;     /* the datacenter= datacenter (lock) */
    /* Inventory cache (lock): the last HostSystem, Datastore and Network
     * retrievals, shared read-only by every operation on this handle for
     * ESX_CACHE_TTL_US; hosts and datastores are dropped whenever a task
     * this handle follows finishes (placement, free space and usage
     * change then). See esx_cached_all(). */
    struct _EsxResult *cache[3];
    gint64 cache_at[3];
    struct _EsxResult *roles; /* AuthorizationManager.roleList (lock) */
    gint64 roles_at;
    GHashTable *pools;       /* compute resource moref → root resource pool (lock) */
    GHashTable *pg_backings; /* DVPG moref → its NIC <backing> fragment (lock) */
    guint soap_calls;        /* SOAP requests sent (atomic; logged at close) */
    /* vSphere Automation REST (/rest, tags), made on first use and guarded
     * by rest_lock: its own handle on the SDK handle's options and cookie
     * jar, the session id, and whether the server has no REST API. */
    GMutex rest_lock;
    VmshiftHttp *rest;
    char *rest_session;
    gboolean rest_unavailable;
    /* Datastore file access (/folder, esx-dsfile.c) opens its own libcurl
     * handles with the same TLS settings as the SDK handle. */
    char *ca_file;
    gboolean insecure;
    gboolean allow_unencrypted;
    guint connect_timeout_ms;
};

/* Cached inventory kinds (VmshiftBackend.cache). */
typedef enum {
    ESX_CACHE_HOSTS,
    ESX_CACHE_DATASTORES,
    ESX_CACHE_NETWORKS,
} EsxCacheKind;

/* The property paths retrieved for each cached kind (esx.c). */
extern const char *const *const esx_cache_paths[3];

#define ESX_CACHE_TTL_US (3 * G_USEC_PER_SEC)
#define ESX_ROLES_TTL_US (10 * G_USEC_PER_SEC)

/* One object of a RetrievePropertiesEx reply. Property values are nodes
 * borrowed from the reply documents kept by the EsxResult. */
typedef struct {
    char *type;
    char *value;
    GHashTable *props;   /* path → xmlNode * (the <val> element) */
    GHashTable *missing; /* path → fault type */
} EsxObject;

typedef struct _EsxResult {
    GPtrArray *docs;    /* xmlDoc * */
    GPtrArray *objects; /* EsxObject * */
    gint refs;          /* results in the inventory cache are shared */
} EsxResult;

/* Drops a reference; the last one frees. */
void esx_result_free(EsxResult *result);
EsxResult *esx_result_ref(EsxResult *result);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(EsxResult, esx_result_free)

/* Parse one RetrievePropertiesEx / ContinueRetrievePropertiesEx reply into
 * @objects (EsxObject *), return the continuation token (or NULL). The
 * nodes stay owned by @doc. Used by the fuzz target. */
gboolean esx_parse_retrieve_reply(xmlDoc *doc, GPtrArray *objects, char **token, GError **error);
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
xmlDoc *esx_call(VmshiftBackend *be, const char *what, const char *body, GCancellable *cancellable,
                 VmshiftSoapFault **fault, GError **error);
/* esx_call() of a method that changes something (every *_Task method):
 * never sent twice by the HTTP layer (vmshift_http_request_once()); a lost
 * reply is VMSHIFT_ERROR_CONNECTION and the caller finds out from the
 * server whether it ran. */
xmlDoc *esx_call_once(VmshiftBackend *be, const char *what, const char *body,
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
/* One RetrievePropertiesEx (with continuation) of a ready specSet. */
EsxResult *esx_retrieve_spec(VmshiftBackend *be, const char *specset, GCancellable *cancellable,
                             GError **error);
char *esx_propset_xml(const char *type, const char *const *paths);
/* esx_retrieve_all() of @kind through the handle's inventory cache. */
EsxResult *esx_cached_all(VmshiftBackend *be, EsxCacheKind kind, GCancellable *cancellable,
                          GError **error);
/* Drop cached kinds (bit mask of 1 << EsxCacheKind). */
void esx_cache_invalidate(VmshiftBackend *be, guint mask);
EsxObject *esx_retrieve_one(VmshiftBackend *be, const char *type, const char *moref,
                            const char *const *paths, EsxResult **keep, GCancellable *cancellable,
                            GError **error);

/* Serialise a received value element again (xsi:type written as xsi:type),
 * renaming it to @name, replacing its child @replace_child (if not NULL)
 * with the fragment @replacement. */
void esx_xml_reserialize(GString *out, const xmlNode *node, const char *name,
                         const char *replace_child, const char *replacement);

/* Datastore files over HTTP (esx-dsfile.c): https://HOST/folder/PATH?
 * dcPath=DC&dsName=DS with the session cookie. */
char *esx_folder_path(const char *dc, const char *ds, const char *path);
/* GET of a small file; NULL with *@status the HTTP status when not 200
 * (@error only for transport failures). */
char *esx_folder_get_small(VmshiftBackend *be, const char *dc, const char *ds, const char *path,
                           gsize *len, guint *status, GError **error);
gboolean esx_folder_put_small(VmshiftBackend *be, const char *dc, const char *ds, const char *path,
                              const char *data, gsize len, GError **error);
/* PUT of @length bytes read from @in (bytes reported to @job as
 * @done_before + sent of @total). */
gboolean esx_folder_upload(VmshiftBackend *be, const char *dc, const char *ds, const char *path,
                           GInputStream *in, guint64 length, VmshiftJob *job, guint64 done_before,
                           guint64 total, GError **error);
/* GET streamed: the stream fails at its end unless exactly @length bytes
 * came with HTTP 200. */
GInputStream *esx_folder_open(VmshiftBackend *be, const char *dc, const char *ds, const char *path,
                              guint64 length, GError **error);

/* Moref helpers. */
char *esx_moref_xml(const char *element, const char *type, const char *value);

G_END_DECLS

#endif
