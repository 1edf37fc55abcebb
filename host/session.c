/*
 * vmshift host: a command's session (configuration, plugin loader, backend
 * registry), shared by every command and the bulk runner.
 */
#include "config.h"

#include <string.h>

#include "host/host.h"

gboolean
host_session_open(HostSession *s, HostGlobals *g, GError **error)
{
    const char *path = g->config_path;
    gboolean explicit_path = path != NULL;

    memset(s, 0, sizeof *s);
    s->g = g;
    if (!path && g_getenv("VMSHIFT_CONFIG") && *g_getenv("VMSHIFT_CONFIG")) {
        path = g_getenv("VMSHIFT_CONFIG");
        explicit_path = TRUE;
    }
    s->config = host_config_load(path, explicit_path, g->state_dir, error);
    if (!s->config)
        return FALSE;
    s->loader = host_loader_new((const char *const *)g->plugin_dirs, !g->no_default_plugin_dir);
    s->reg = host_registry_new(s->config, s->loader, g->verbose);
    for (guint i = 0; i < s->config->warnings->len; i++)
        host_warn("%s", (char *)g_ptr_array_index(s->config->warnings, i));
    return TRUE;
}

void
host_session_close(HostSession *s)
{
    host_registry_free(s->reg);
    host_loader_free(s->loader);
    host_config_free(s->config);
    memset(s, 0, sizeof *s);
}

HostJournal *
host_session_journal(HostSession *s, GError **error)
{
    HostJournal *j = host_journal_open(s->config->state_dir, error);

    /* the interrupted-job sweep asks the backends where those VMs are */
    if (j && host_journal_swept(j) > 0)
        host_jobs_verify_locations(s->reg, j, NULL);
    return j;
}
