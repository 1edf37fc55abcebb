/*
 * ESX plugin: the backend handle (open, close) and the property paths its
 * inventory cache retrieves.
 *
 * The operations live in one file each: esx-inventory.c (hosts, VMs,
 * datastores, networks), esx-checkpoint.c (snapshots, merges), esx-plan.c
 * (checking a move and building its RelocateSpec), esx-migrate.c (the
 * RelocateVM_Task, followed through its TaskInfo and cancelled with
 * CancelTask), esx-acl.c (permissions and tags kept across a move),
 * esx-watch.c, esx-repair.c and esx-guest.c; esx-task.c, esx-vmstate.c
 * and esx-rest.c are what they share, esx-soap.c the SOAP layer below.
 * This file needs nothing but esx-soap.c, so that a fuzz target can link
 * the two alone.
 */
#include "config.h"

#include <string.h>

#include "esx.h"
#include "esx-ops.h"

/* The cached kinds (esx_cached_all). */
static const char *const host_paths[] = {
    "name",
    "runtime.connectionState",
    "runtime.inMaintenanceMode",
    "summary.hardware.cpuModel",
    "summary.hardware.numCpuThreads",
    "summary.hardware.cpuMhz",
    "summary.hardware.numCpuCores",
    "summary.hardware.memorySize",
    "summary.quickStats.overallCpuUsage",
    "summary.quickStats.overallMemoryUsage",
    "summary.config.product.fullName",
    "parent",
    "datastore",
    "network",
    NULL,
};

static const char *const ds_paths[] = {
    "name",
    "summary.capacity",
    "summary.freeSpace",
    "summary.accessible",
    "summary.type",
    "summary.maintenanceMode",
    "host",
    NULL,
};

static const char *const net_paths[] = { "name", "host", NULL };

const char *const *const esx_cache_paths[3] = { host_paths, ds_paths, net_paths };

VmshiftBackend *
esx_open(const VmshiftConfig *config, guint32 flags, GError **error)
{
    if (!vmshift_check_flags(flags, 0, "open", error))
        return NULL;
    g_autoptr(VmshiftHttpOptions)
        opts = vmshift_http_options_new_from_config(config, VMSHIFT_HTTP_AUTH_NONE, error);
    if (opts == NULL)
        return NULL;
    const char *backend = vmshift_config_get_backend(config);
    if (opts->url == NULL) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_CONFIG,
                    "backend %s (%s): url= is required (https://vcenter/sdk)", backend,
                    vmshift_config_get_source(config));
        return NULL;
    }
    if (opts->credentials == NULL) {
        g_set_error(
            error, VMSHIFT_ERROR, VMSHIFT_ERROR_CONFIG,
            "backend %s (%s): credentials= is required (a root-only file with user= and password=)",
            backend, vmshift_config_get_source(config));
        return NULL;
    }
    /* https://vc → https://vc/sdk */
    g_autofree char *url = NULL;
    {
        const char *p = strstr(opts->url, "://");
        const char *slash = p != NULL ? strchr(p + 3, '/') : NULL;
        if (slash == NULL || g_strcmp0(slash, "/") == 0)
            url = g_strdup_printf("%.*s/sdk",
                                  (int)(slash != NULL ? slash - opts->url : (int)strlen(opts->url)),
                                  opts->url);
        else
            url = g_strdup(opts->url);
        opts->url = url;
    }
    VmshiftHttp *http = vmshift_http_new(opts, error);
    if (http == NULL)
        return NULL;
    VmshiftBackend *be = g_new0(VmshiftBackend, 1);
    g_mutex_init(&be->lock);
    g_mutex_init(&be->rest_lock);
    be->name = g_strdup(backend);
    be->url = g_strdup(vmshift_http_get_url(http));
    be->http = http;
    be->datacenter = vmshift_config_get_string(config, "datacenter", NULL);
    be->ca_file = g_strdup(opts->ca_file);
    be->insecure = opts->insecure;
    be->allow_unencrypted = opts->allow_unencrypted;
    be->connect_timeout_ms = opts->connect_timeout_ms;
    /* No Login here: opening a backend never waits on the network (issue
     * 15: `vmshift backends` with the server unreachable). The first call
     * logs in (esx_connect() in esx_call() and the retrievals). */
    return be;
}

void
esx_close(VmshiftBackend *be)
{
    if (be == NULL)
        return;
    if (be->logged_in) {
        g_autofree char *sm = esx_moref_xml("_this", "SessionManager", be->session_manager);
        g_autofree char *body = g_strdup_printf("<Logout xmlns=\"urn:vim25\">%s</Logout>", sm);
        g_autofree char *env = vmshift_soap_envelope(VMSHIFT_SOAP_1_1, NULL, NULL, body);
        g_autoptr(GError) err = NULL;
        g_autoptr(xmlDoc) doc = vmshift_soap_call(be->http, NULL, VMSHIFT_SOAP_1_1, "urn:vim25/6.5",
                                                  env, "Logout", NULL, NULL, &err);
        if (doc == NULL)
            g_debug("backend %s: Logout: %s", be->name, err->message);
    }
    g_debug("backend %s: %u SOAP calls", be->name, g_atomic_int_get(&be->soap_calls));
    if (be->rest_session != NULL) {
        g_autofree char *h = g_strdup_printf("vmware-api-session-id: %s", be->rest_session);
        const char *hdrs[] = { h, NULL };
        g_autoptr(GError) err = NULL;
        g_autoptr(VmshiftHttpResponse) r = vmshift_http_request(
            be->rest, "DELETE", "/rest/com/vmware/cis/session", hdrs, NULL, 0, NULL, &err);
        if (r == NULL)
            g_debug("backend %s: REST logout: %s", be->name, err->message);
        explicit_bzero(h, strlen(h));
        explicit_bzero(be->rest_session, strlen(be->rest_session));
        g_free(be->rest_session);
    }
    vmshift_http_free(be->rest);
    g_mutex_clear(&be->rest_lock);
    vmshift_http_free(be->http);
    for (guint k = 0; k < G_N_ELEMENTS(be->cache); k++)
        esx_result_free(be->cache[k]);
    esx_result_free(be->roles);
    if (be->pools != NULL)
        g_hash_table_unref(be->pools);
    if (be->pg_backings != NULL)
        g_hash_table_unref(be->pg_backings);
    g_mutex_clear(&be->lock);
    g_free(be->name);
    g_free(be->url);
    g_free(be->datacenter);
    g_free(be->ca_file);
    g_free(be->root_folder);
    g_free(be->property_collector);
    g_free(be->view_manager);
    g_free(be->session_manager);
    g_free(be->auth_manager);
    g_free(be->task_manager);
    g_free(be->api_version);
    if (be->vm_ids != NULL)
        g_hash_table_unref(be->vm_ids);
    if (be->views != NULL)
        g_hash_table_unref(be->views);
    g_free(be->dc_moref);
    g_free(be);
}
