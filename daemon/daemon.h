/*
 * vmshiftd: the job daemon and REST API (#17). Private header of daemon/.
 *
 * vmshiftd links libvmshift-host, the library the vmshift command is built
 * from: the same configuration, registry, journal and job engine
 * (host/jobs.c). Jobs run on their worker threads as in the command; the
 * daemon's main loop ticks them, serves the API with libsoup 3's SoupServer
 * on a Unix socket, and streams job changes to /events clients.
 *
 * Threads: SoupServer and the runs' ticks live in the main context. Handlers
 * that call a backend (inventory, rating, checks, building a job's spec) run
 * in a GTask thread under api_lock, so that at most one API request uses the
 * registry (opening a backend is not thread-safe) while jobs run beside it,
 * as in `vmshift bulk`.
 */
#ifndef VMSHIFT_DAEMON_H
#define VMSHIFT_DAEMON_H

#include <libsoup/soup.h>
#include <sys/types.h>

#include "host/host.h"

G_BEGIN_DECLS

/* Who is asking, from the socket's peer credentials (auth.c). */
typedef struct {
    gint64 uid;
    gint64 pid;
    char *name; /* "root (uid 0, pid 123)" for the journal */
    gboolean can_read;
    gboolean can_change;
    gboolean tcp;       /* asked over TCP (tcp.c) */
    gboolean by_cookie; /* a browser's session cookie (tcp.c) */
} DaemonCaller;

typedef struct Daemon Daemon;
typedef struct DaemonBulk DaemonBulk;

struct Daemon {
    HostGlobals globals;
    HostSession session;
    HostJournal *journal;
    HostJobContext ctx;
    SoupServer *server;
    GMainLoop *loop;
    GMutex api_lock;
    GPtrArray *runs;        /* HostJobRun of this daemon, running */
    GPtrArray *sse_clients; /* DaemonSse */
    GHashTable *sent;       /* job id (gint64 *) -> last JSON sent to /events */
    gint64 events_seq;      /* last journal event seen by the /events poller */
    sqlite3 *watch_db;      /* read-only connection for the poller */
    char *socket_path;
    gboolean socket_activated; /* systemd passed it: not ours to remove */
    char *read_group, *admin_group;
    char *www_dir, *openapi_path;
    gboolean repair_on_start;
    gint64 started;
    guint64 requests, refused;
    gint n_runs, n_sse; /* runs->len, sse_clients->len for other threads (atomic) */
    /* TCP with TLS (tcp.c) */
    char *listen, *tls_cert, *tls_key, *tokens_path, *client_ca;
    char **admin_certs, **read_certs;
    GList *client_ca_certs;   /* GTlsCertificate of client-ca= */
    GPtrArray *tokens;        /* DaemonToken */
    GHashTable *web_sessions; /* session id -> DaemonWebSession */
    GPtrArray *bulks;         /* DaemonBulk (bulk.c) */
    gint64 last_bulk;
};

/* vmshiftd.c */
json_object *daemon_error_json(const GError *e);
guint daemon_http_status(const GError *e);

/* auth.c: who the peer of @msg is and what it may do */
gboolean daemon_caller_from_message(Daemon *d, SoupServerMessage *msg, DaemonCaller *c,
                                    GError **error);
void daemon_caller_clear(DaemonCaller *c);
/* Whether the user @uid (primary group @gid) is a member of group @group. */
gboolean daemon_user_in_group(gint64 uid, gint64 gid, const char *group);

/* tcp.c: TCP with TLS, tokens, client certificates, browser sessions */
/* A [vmshiftd] key of TCP (listen, tls-cert, ...): FALSE when not one. */
gboolean daemon_tcp_config_key(Daemon *d, const char *path, const char *key, char *value,
                               GError **error);
gboolean daemon_tcp_listen(Daemon *d, GError **error);
void daemon_tcp_clear(Daemon *d);
gboolean daemon_message_is_tcp(SoupServerMessage *msg);
/* Who a TCP request is from (certificate, token, session); FALSE: nobody. */
gboolean daemon_tcp_caller(Daemon *d, SoupServerMessage *msg, DaemonCaller *c);
/* TRUE when a browser says @msg comes from another site; *why says how. */
gboolean daemon_cross_site(SoupServerMessage *msg, char **why);
void daemon_tcp_login(Daemon *d, SoupServerMessage *msg);

/* api.c: the REST API's routes */
void daemon_api_register(Daemon *d);
void daemon_reply_json(SoupServerMessage *msg, guint status, json_object *body);
void daemon_reply_error(SoupServerMessage *msg, const GError *e);

/* web.c: the web view at / (pages in webpages.c, files in www_dir) */
void daemon_web_register(Daemon *d);

/* inventory.c: the JSON documents of the inventory commands (same keys as
 * `vmshift --json backends|hosts|vms|rate|check`) */
json_object *daemon_backends_json(Daemon *d);
json_object *daemon_hosts_json(Daemon *d, const char *backend, const char *group, GError **error);
json_object *daemon_vms_json(Daemon *d, const char *backend, const char *host, GError **error);
json_object *daemon_rating_json(Daemon *d, const char *vm, const char *group, GError **error);
json_object *daemon_check_json(Daemon *d, json_object *body, GError **error);
/* The HostMigrateOpts a request body of POST /checks or /jobs describes. */
gboolean daemon_opts_from_json(json_object *body, HostMigrateOpts *o, GError **error);

/* djobs.c: jobs run by the daemon */
/* Creates the job @body describes (migrate, migrate-storage, acl) on behalf
 * of @who; from an API thread. Returns the run, not started. */
HostJobRun *daemon_job_create(Daemon *d, json_object *body, const char *who, GError **error);
/* Retakes job @id for a repair on behalf of @who, in the mode @body says
 * (NULL: auto); from an API thread. */
HostJobRun *daemon_job_repair(Daemon *d, gint64 id, json_object *body, const char *who,
                              GError **error);
/* Main thread: starts @run and ticks it until it ends. */
void daemon_job_start(Daemon *d, HostJobRun *run);
/* On start: repair every interrupted job whose backend can. */
void daemon_jobs_repair_interrupted(Daemon *d);
void daemon_jobs_tick(Daemon *d);
/* Main thread: cancels every run (SIGTERM) and waits for them. */
void daemon_jobs_stop(Daemon *d);
json_object *daemon_job_show_json(Daemon *d, gint64 id, GError **error);
/* The "switchover" of a job in @job_state, as `vmshift --json jobs` */
json_object *daemon_schedule_json(const HostSchedule *sc, const char *job_state);

/* dbulk.c: bulk plans run by the daemon (POST /jobs {"kind": "bulk"}) */
/* Loads and plans the first wave of the plan of @body; API thread, under
 * api_lock. */
DaemonBulk *daemon_bulk_create(Daemon *d, json_object *body, const char *who, GError **error);
void daemon_bulk_free(DaemonBulk *b);
/* Makes the journal's table of bulk runs; the next id follows its last. */
gboolean daemon_bulks_init(Daemon *d, GError **error);
gint64 daemon_bulk_id(DaemonBulk *b);
/* Main thread: runs @b from the next tick on. */
void daemon_bulk_start(Daemon *d, DaemonBulk *b);
void daemon_bulks_tick(Daemon *d);
/* Main thread: adds the ids (gint64 *) of the bulk runs' running jobs. */
void daemon_bulks_running(Daemon *d, GHashTable *ids);
void daemon_bulks_stop(Daemon *d);
/* The document of @b, or of bulk @id, or {"bulks": [...]} for id 0; under
 * api_lock. */
json_object *daemon_bulk_json(Daemon *d, DaemonBulk *b);
json_object *daemon_bulks_json(Daemon *d, gint64 id, GError **error);

/* jobs-json.c: the JSON of journal jobs, byte for byte json-c's (PRETTY |
 * NOSLASHESCAPE) print of host_json_job() with its "switchover" (as
 * `vmshift --json jobs`), written without building json-c objects */
typedef struct DaemonJobsWriter DaemonJobsWriter;
/* Appends job @r (schedule @sc or NULL) as printed at nesting level @level */
void daemon_json_job(GString *s, const HostJobRecord *r, const HostSchedule *sc, int level);
/* {"jobs": [@list], "total", "limit", "offset"} in pieces; keeps a reference
 * to @list and @schedules (NULL: none) */
DaemonJobsWriter *daemon_jobs_writer_new(GPtrArray *list, GHashTable *schedules, gint64 total,
                                         gint64 limit, gint64 offset);
/* Appends the next piece, jobs until @s holds @want bytes; FALSE when all
 * was written before. */
gboolean daemon_jobs_writer_next(DaemonJobsWriter *w, GString *s, gsize want);
void daemon_jobs_writer_free(DaemonJobsWriter *w);

/* events.c: GET /api/v1/events (server-sent events) */
/* Opens the poller's read-only journal connection (also used by metrics.c). */
gboolean daemon_events_init(Daemon *d);
void daemon_events_add_client(Daemon *d, SoupServerMessage *msg);
void daemon_events_poll(Daemon *d);
void daemon_events_close_all(Daemon *d);

/* metrics.c: GET /metrics */
char *daemon_metrics_text(Daemon *d, GError **error);

G_END_DECLS

#endif /* VMSHIFT_DAEMON_H */
