/*
 * vmshiftd: the job daemon (#17). See daemon.h for the threads.
 *
 *   vmshiftd [--config FILE] [--plugin-dir DIR]... [--state-dir DIR]
 *            [--socket PATH] [--data-dir DIR] [--verbose]
 *
 * The configuration is vmshift's (vmshift.conf and backends.d/), plus a
 * [vmshiftd] group in vmshift.conf:
 *
 *   socket=/run/vmshift/vmshiftd.sock   where to listen (--socket wins)
 *   read-group=vmshift                  may list backends, VMs, jobs
 *   admin-group=vmshift-admin           may also start, cancel, repair jobs
 *   repair-on-start=true                repair jobs a stop interrupted
 *   listen=127.0.0.1:8443               also HTTPS on TCP (tcp.c), with
 *   tls-cert=, tls-key=, tokens=,       its certificate, key, tokens file
 *   client-ca=, admin-certs=, read-certs=   and client certificates
 *
 * Under systemd the socket comes from vmshiftd.socket (LISTEN_FDS).
 */
#include "config.h"

#include <errno.h>
#include <glib-unix.h>
#include <gio/gunixsocketaddress.h>
#include <locale.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon/daemon.h"

#define DEFAULT_SOCKET "/run/vmshift/vmshiftd.sock"

json_object *
daemon_error_json(const GError *e)
{
    json_object *root = json_object_new_object();
    json_object_object_add(root, "error", host_json_error(e));
    return root;
}

guint
daemon_http_status(const GError *e)
{
    if (g_error_matches(e, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        return SOUP_STATUS_CONFLICT;
    if (e->domain != VMSHIFT_ERROR)
        return SOUP_STATUS_INTERNAL_SERVER_ERROR;
    switch (e->code) {
    case VMSHIFT_ERROR_INVALID_ARGUMENT: return SOUP_STATUS_BAD_REQUEST;
    case VMSHIFT_ERROR_NOT_FOUND: return SOUP_STATUS_NOT_FOUND;
    case VMSHIFT_ERROR_CONFLICT:
    case VMSHIFT_ERROR_BUSY: return SOUP_STATUS_CONFLICT;
    case VMSHIFT_ERROR_PERMISSION: return SOUP_STATUS_FORBIDDEN;
    case VMSHIFT_ERROR_NOT_SUPPORTED:
    case VMSHIFT_ERROR_NOT_APPLICABLE: return SOUP_STATUS_UNPROCESSABLE_ENTITY;
    case VMSHIFT_ERROR_CONNECTION:
    case VMSHIFT_ERROR_TIMEOUT:
    case VMSHIFT_ERROR_AUTH_FAILED:
    case VMSHIFT_ERROR_TLS: return SOUP_STATUS_BAD_GATEWAY;
    default: return SOUP_STATUS_INTERNAL_SERVER_ERROR;
    }
}

/* ---- configuration: [vmshiftd] of vmshift.conf ------------------------------------ */

static gboolean
parse_bool(const char *v, gboolean *out)
{
    if (!g_ascii_strcasecmp(v, "true") || !g_ascii_strcasecmp(v, "yes") || !strcmp(v, "1"))
        *out = TRUE;
    else if (!g_ascii_strcasecmp(v, "false") || !g_ascii_strcasecmp(v, "no") || !strcmp(v, "0"))
        *out = FALSE;
    else
        return FALSE;
    return TRUE;
}

static gboolean
read_daemon_group(Daemon *d, gboolean socket_given, GError **error)
{
    const char *path = d->session.config->path;
    g_autofree char *data = NULL;
    g_autoptr(GKeyFile) kf = g_key_file_new();
    g_auto(GStrv) keys = NULL;

    if (!g_file_test(path, G_FILE_TEST_EXISTS))
        return TRUE;
    if (!host_read_file(path, "configuration file", HOST_CONFIG_MAX, &data, error))
        return FALSE;
    if (!g_key_file_load_from_data(kf, data, -1, G_KEY_FILE_NONE, error)) {
        g_prefix_error(error, "%s: ", path);
        return FALSE;
    }
    keys = g_key_file_get_keys(kf, "vmshiftd", NULL, NULL);
    for (guint i = 0; keys && keys[i]; i++) {
        g_autofree char *v = g_key_file_get_value(kf, "vmshiftd", keys[i], NULL);
        g_strstrip(v);
        if (!strcmp(keys[i], "socket")) {
            if (!g_path_is_absolute(v)) {
                g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_CONFIG,
                            "%s: [vmshiftd]: socket must be an absolute path, not '%s'", path, v);
                return FALSE;
            }
            if (!socket_given) {
                g_free(d->socket_path);
                d->socket_path = g_steal_pointer(&v);
            }
        } else if (!strcmp(keys[i], "read-group") || !strcmp(keys[i], "admin-group")) {
            char **slot = keys[i][0] == 'r' ? &d->read_group : &d->admin_group;
            if (!*v) {
                g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_CONFIG,
                            "%s: [vmshiftd]: %s is empty", path, keys[i]);
                return FALSE;
            }
            g_free(*slot);
            *slot = g_steal_pointer(&v);
        } else if (!strcmp(keys[i], "repair-on-start")) {
            if (!parse_bool(v, &d->repair_on_start)) {
                g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_CONFIG,
                            "%s: [vmshiftd]: repair-on-start must be true or false, not '%s'", path,
                            v);
                return FALSE;
            }
        } else if (!daemon_tcp_config_key(d, path, keys[i], v, error)) {
            if (error && *error)
                return FALSE;
            g_printerr("vmshiftd: warning: %s: [vmshiftd]: unknown key '%s'\n", path, keys[i]);
        }
    }
    return TRUE;
}

/* ---- the socket --------------------------------------------------------------------- */

/* The socket systemd passed (vmshiftd.socket), or NULL. */
static GSocket *
systemd_socket(GError **error)
{
    const char *pid = g_getenv("LISTEN_PID");
    const char *fds = g_getenv("LISTEN_FDS");

    if (!pid || !fds || g_ascii_strtoll(pid, NULL, 10) != getpid() || strcmp(fds, "1") != 0)
        return NULL;
    g_unsetenv("LISTEN_PID");
    g_unsetenv("LISTEN_FDS");
    g_unsetenv("LISTEN_FDNAMES");
    return g_socket_new_from_fd(3, error);
}

/* Binds @path: the directory is made 0755 if missing; a socket left by a
 * daemon that died is replaced, one a live daemon answers on is not. The
 * socket itself is 0666: who may do what is decided per request from the
 * peer's credentials (auth.c), which gives a refused user a clear answer. */
static GSocket *
bind_socket(const char *path, GError **error)
{
    g_autofree char *dir = g_path_get_dirname(path);
    g_autoptr(GSocket) sock = NULL;
    g_autoptr(GSocketAddress) addr = g_unix_socket_address_new(path);
    struct stat st;

    if (g_mkdir_with_parents(dir, 0755) != 0) {
        int e = errno;
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_PERMISSION, "cannot create %s: %s", dir,
                    g_strerror(e));
        return NULL;
    }
    if (lstat(path, &st) == 0) {
        g_autoptr(GSocket) probe = NULL;
        if (!S_ISSOCK(st.st_mode)) {
            g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_CONFLICT,
                        "%s exists and is not a socket", path);
            return NULL;
        }
        probe = g_socket_new(G_SOCKET_FAMILY_UNIX, G_SOCKET_TYPE_STREAM, 0, NULL);
        if (probe && g_socket_connect(probe, addr, NULL, NULL)) {
            g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_CONFLICT,
                        "%s: another vmshiftd is listening there", path);
            return NULL;
        }
        unlink(path);
    }
    sock = g_socket_new(G_SOCKET_FAMILY_UNIX, G_SOCKET_TYPE_STREAM, 0, error);
    if (!sock || !g_socket_bind(sock, addr, FALSE, error)) {
        g_prefix_error(error, "%s: ", path);
        return NULL;
    }
    chmod(path, 0666);
    g_socket_set_listen_backlog(sock, 512);
    if (!g_socket_listen(sock, error)) {
        g_prefix_error(error, "%s: ", path);
        return NULL;
    }
    return g_steal_pointer(&sock);
}

/* ---- main loop ---------------------------------------------------------------------- */

static gboolean
on_tick(gpointer data)
{
    daemon_jobs_tick(data);
    daemon_bulks_tick(data);
    return G_SOURCE_CONTINUE;
}

static gboolean
on_events(gpointer data)
{
    daemon_events_poll(data);
    return G_SOURCE_CONTINUE;
}

static gboolean
on_signal(gpointer data)
{
    Daemon *d = data;
    g_main_loop_quit(d->loop);
    return G_SOURCE_REMOVE;
}

static void
daemon_free(Daemon *d)
{
    if (d->server) {
        soup_server_disconnect(d->server);
        g_object_unref(d->server);
    }
    if (d->runs)
        g_ptr_array_unref(d->runs);
    if (d->sse_clients)
        g_ptr_array_unref(d->sse_clients);
    if (d->sent)
        g_hash_table_unref(d->sent);
    if (d->watch_db)
        sqlite3_close(d->watch_db);
    if (d->bulks)
        g_ptr_array_unref(d->bulks);
    host_journal_close(d->journal);
    if (d->session.config)
        host_session_close(&d->session);
    g_free(d->globals.config_path);
    g_strfreev(d->globals.plugin_dirs);
    g_free(d->globals.state_dir);
    g_free(d->socket_path);
    g_free(d->read_group);
    g_free(d->admin_group);
    g_free(d->www_dir);
    g_free(d->openapi_path);
    daemon_tcp_clear(d);
    g_mutex_clear(&d->api_lock);
    g_free(d);
}
G_DEFINE_AUTOPTR_CLEANUP_FUNC(Daemon, daemon_free)

static gboolean
parse_args(Daemon *d, int *argc, char ***argv, gboolean *socket_given, GError **error)
{
    g_autofree char *data_dir = NULL;
    gboolean version = FALSE;
    GOptionEntry entries[] = {
        { "config", 0, 0, G_OPTION_ARG_FILENAME, &d->globals.config_path,
          "configuration file (default " HOST_SYSCONFDIR "/vmshift.conf)", "FILE" },
        { "plugin-dir", 0, 0, G_OPTION_ARG_FILENAME_ARRAY, &d->globals.plugin_dirs,
          "look for plugins in DIR first (repeatable)", "DIR" },
        { "state-dir", 0, 0, G_OPTION_ARG_FILENAME, &d->globals.state_dir,
          "journal and plugin state directory", "DIR" },
        { "socket", 0, 0, G_OPTION_ARG_FILENAME, &d->socket_path,
          "listen on this Unix socket (default " DEFAULT_SOCKET ")", "PATH" },
        { "data-dir", 0, 0, G_OPTION_ARG_FILENAME, &data_dir,
          "the web view and openapi.json (default " DAEMON_DATADIR ")", "DIR" },
        { "verbose", 0, 0, G_OPTION_ARG_NONE, &d->globals.verbose, "debug lines of jobs", NULL },
        { "version", 0, 0, G_OPTION_ARG_NONE, &version, "print the version", NULL },
        { NULL },
    };
    g_autoptr(GOptionContext) oc = g_option_context_new("- the vmshift job daemon and REST API");

    g_option_context_add_main_entries(oc, entries, NULL);
    if (!g_option_context_parse(oc, argc, argv, error))
        return FALSE;
    if (version) {
        printf("vmshiftd %s\n", PACKAGE_VERSION);
        exit(0);
    }
    if (*argc > 1) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_INVALID_ARGUMENT,
                    "unexpected argument '%s'", (*argv)[1]);
        return FALSE;
    }
    *socket_given = d->socket_path != NULL;
    if (!d->socket_path)
        d->socket_path = g_strdup(DEFAULT_SOCKET);
    if (!data_dir)
        data_dir = g_strdup(DAEMON_DATADIR);
    d->www_dir = g_build_filename(data_dir, "www", NULL);
    d->openapi_path = g_build_filename(data_dir, "openapi.json", NULL);
    return TRUE;
}

static gboolean
daemon_setup(Daemon *d, int *argc, char ***argv, GError **error)
{
    gboolean socket_given = FALSE;
    g_autoptr(GSocket) sock = NULL;

    if (!parse_args(d, argc, argv, &socket_given, error))
        return FALSE;
    if (!host_session_open(&d->session, &d->globals, error)
        || !read_daemon_group(d, socket_given, error))
        return FALSE;
    d->journal = host_session_journal(&d->session, error);
    if (!d->journal)
        return FALSE;
    if (!daemon_events_init(d)) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_FAILED, "cannot read the journal in %s",
                    d->session.config->state_dir);
        return FALSE;
    }
    if (!daemon_bulks_init(d, error))
        return FALSE;
    d->ctx.reg = d->session.reg;
    d->ctx.journal = d->journal;
    d->ctx.verbose = d->globals.verbose;
    /* before the socket answers: a client then sees the repairs running */
    if (d->repair_on_start)
        daemon_jobs_repair_interrupted(d);
    d->server = soup_server_new("server-header", "vmshiftd/" PACKAGE_VERSION, NULL);
    daemon_api_register(d);
    daemon_web_register(d);
    sock = systemd_socket(error);
    if (!sock && error && *error)
        return FALSE;
    d->socket_activated = sock != NULL;
    if (!sock)
        sock = bind_socket(d->socket_path, error);
    if (!sock)
        return FALSE;
    if (!soup_server_listen_socket(d->server, sock, 0, error)) {
        g_prefix_error(error, "%s: ", d->socket_path);
        return FALSE;
    }
    return daemon_tcp_listen(d, error);
}

int
main(int argc, char **argv)
{
    g_autoptr(Daemon) d = g_new0(Daemon, 1);
    g_autoptr(GError) err = NULL;
    struct rlimit no_core = { 0, 0 };

    /* the daemon holds backend passwords: no core file, no ptrace (#14) */
    if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0 || setrlimit(RLIMIT_CORE, &no_core) != 0)
        perror("vmshiftd: warning: could not turn core dumps off");
    setlocale(LC_ALL, "");
    signal(SIGPIPE, SIG_IGN);
    g_mutex_init(&d->api_lock);
    d->read_group = g_strdup("vmshift");
    d->admin_group = g_strdup("vmshift-admin");
    d->repair_on_start = TRUE;
    d->runs = g_ptr_array_new();
    d->sent = g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free, g_free);
    d->started = g_get_real_time() / G_USEC_PER_SEC;
    if (!daemon_setup(d, &argc, &argv, &err)) {
        g_printerr("vmshiftd: %s\n", err->message);
        return g_error_matches(err, G_OPTION_ERROR, G_OPTION_ERROR_UNKNOWN_OPTION)
                       || g_error_matches(err, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE)
                       || g_error_matches(err, VMSHIFT_ERROR, VMSHIFT_ERROR_INVALID_ARGUMENT)
                   ? HOST_EXIT_USAGE
                   : HOST_EXIT_FAILED;
    }
    d->loop = g_main_loop_new(NULL, FALSE);
    g_unix_signal_add(SIGINT, on_signal, d);
    g_unix_signal_add(SIGTERM, on_signal, d);
    g_timeout_add(100, on_tick, d);
    g_timeout_add(250, on_events, d);
    g_printerr("vmshiftd: listening on %s (read: group %s, changes: group %s)\n", d->socket_path,
               d->read_group, d->admin_group);
    if (d->listen)
        g_printerr("vmshiftd: listening on https://%s (%u token(s)%s)\n", d->listen,
                   d->tokens ? d->tokens->len : 0, d->client_ca ? ", client certificates" : "");
    g_main_loop_run(d->loop);
    g_printerr("vmshiftd: stopping: cancelling %u running job(s)\n", d->runs->len);
    daemon_events_close_all(d);
    daemon_bulks_stop(d);
    daemon_jobs_stop(d);
    g_main_loop_unref(d->loop);
    if (!d->socket_activated)
        unlink(d->socket_path);
    return HOST_EXIT_OK;
}
