/*
 * vmshift host: internal declarations shared by the host's files.
 *
 * Nothing here is installed or visible to plugins. Names carry the host_
 * prefix; each block names the file that implements it.
 */
#ifndef VMSHIFT_HOST_H
#define VMSHIFT_HOST_H

#include <stdio.h>

#include <gio/gio.h>
#include <gmodule.h>
#include <json-c/json.h>
#include <sqlite3.h>
#include <vmshift/vmshift.h>

G_BEGIN_DECLS

/* Exit codes of the vmshift command. */
enum {
    HOST_EXIT_OK = 0,
    HOST_EXIT_FAILED = 1, /* the operation failed */
    HOST_EXIT_USAGE = 2,  /* bad command line */
};

/* ---- config.c: vmshift.conf + backends.d/ ------------------------------ */

typedef struct {
    char *name;       /* NAME of [backend NAME] */
    char *plugin;     /* plugin=, or NULL when missing */
    gboolean enabled; /* enabled= (default true) */
    char *source;     /* file the group came from */
    char *group;      /* "backend NAME" */
    GKeyFile *keyfile;
    char *error;           /* set: the group is unusable, one line why */
    gboolean parse_failed; /* placeholder for a file that did not parse */
} HostBackendConf;

typedef struct {
    char *path;                /* the main file (may not exist) */
    char *dir;                 /* its directory */
    char *state_dir;           /* [vmshift] state-dir=, or the override, or the default */
    char *daemon;              /* [vmshift] daemon=: a socket path, auto or no (NULL: auto) */
    GPtrArray *backends;       /* HostBackendConf, in file order */
    GHashTable *groups;        /* name -> GStrv of host specs */
    GHashTable *group_sources; /* name -> file */
    GPtrArray *warnings;       /* one line each (char *) */
} HostConfig;

/* Default paths, compiled in (overridable for tests through options only). */
const char *host_default_config_path(void);
const char *host_default_state_dir(void);
const char *host_default_plugin_dir(void);

/* Size limits of the files vmshift reads (bytes). */
#define HOST_CONFIG_MAX (1024 * 1024) /* vmshift.conf, a drop-in, a plan */

/* Reads @path whole into @contents (NUL-terminated) without blocking on a
 * FIFO: FALSE with one line naming the file, what it is (@what) and why,
 * unless it is a regular file of at most @limit bytes. */
gboolean host_read_file(const char *path, const char *what, gsize limit, char **contents,
                        GError **error);

/* What GKeyFile merges silently, as an error "FILE:LINE: ...": a group or a
 * key of one group given twice, a line that is not UTF-8. @lines (may be
 * NULL) receives "[group]" and "[group]key" -> line number. */
gboolean host_keyfile_prescan(const char *file, const char *data, GHashTable **lines,
                              GError **error);

HostConfig *host_config_load(const char *path, gboolean explicit_path,
                             const char *state_dir_override, GError **error);
void host_config_free(HostConfig *config);
HostBackendConf *host_config_find_backend(HostConfig *config, const char *name);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(HostConfig, host_config_free)

/* ---- loader.c: finding, checking and loading plugin .so files ----------- */

typedef enum {
    HOST_LOAD_OK = 0,
    HOST_LOAD_MISSING = 1, /* no NAME.so in any directory */
    HOST_LOAD_REFUSED = 2, /* found but refused: unsafe, ABI, malformed */
} HostLoadStatus;

typedef struct {
    char *name; /* plugin name */
    char *path; /* the file, when found */
    HostLoadStatus status;
    GError *error;                       /* why not OK: one line naming the file */
    const VmshiftPluginDescriptor *desc; /* OK only */
    GModule *module;
} HostPlugin;

typedef struct {
    GPtrArray *dirs;     /* search order: --plugin-dir..., then plugindir */
    GHashTable *plugins; /* name -> HostPlugin (a cache: one load per name) */
    GError *dir_error;   /* a --plugin-dir refused (empty, a symlink): every load fails */
} HostLoader;

HostLoader *host_loader_new(const char *const *extra_dirs, gboolean use_default_dir);
void host_loader_free(HostLoader *loader);
/* Returns the (cached) result for plugin @name; never NULL. */
HostPlugin *host_loader_load(HostLoader *loader, const char *name);
/* Names of every *.so found in the search directories (sorted). */
GPtrArray *host_loader_scan(HostLoader *loader);
/* The descriptor's config_keys if struct_size covers them, else NULL. */
const char *const *host_plugin_config_keys(const VmshiftPluginDescriptor *desc);

/* ---- registry.c: configured backends and dispatch ------------------------- */

typedef enum {
    HOST_BACKEND_LOADED = 0,     /* plugin loaded, not opened yet */
    HOST_BACKEND_READY,          /* opened */
    HOST_BACKEND_DISABLED,       /* enabled=false */
    HOST_BACKEND_MISSING,        /* plugin file not found */
    HOST_BACKEND_REFUSED,        /* plugin refused by the loader */
    HOST_BACKEND_BAD_CONFIG,     /* the configuration group is unusable */
    HOST_BACKEND_NOT_APPLICABLE, /* open() declined */
    HOST_BACKEND_FAILED,         /* open() failed */
} HostBackendStatus;

typedef struct {
    HostBackendConf *conf; /* owned by the HostConfig */
    HostPlugin *plugin;    /* owned by the loader; NULL when not loaded */
    HostBackendStatus status;
    GError *error;          /* why the backend is unusable */
    VmshiftConfig *vconf;   /* the view handed to open() */
    VmshiftBackend *handle; /* open() result */
    GMutex lock;            /* held around calls with VMSHIFT_PLUGIN_SERIALIZE */
    char *state_dir;
    struct HostRegistry_ *reg; /* back pointer */
} HostBackend;

typedef struct HostRegistry_ {
    HostConfig *config;
    HostLoader *loader;
    GPtrArray *backends; /* HostBackend, config order */
    gboolean verbose;
} HostRegistry;

HostRegistry *host_registry_new(HostConfig *config, HostLoader *loader, gboolean verbose);
void host_registry_free(HostRegistry *reg);
HostBackend *host_registry_find(HostRegistry *reg, const char *name);
const char *host_backend_status_name(HostBackendStatus status);
const char *host_backend_name(const HostBackend *b);
/* Opens the backend if needed. FALSE with the reason (naming file, backend,
 * plugin) when it is unusable. */
gboolean host_backend_ensure_open(HostBackend *b, GError **error);
/* Like ensure_open, for the backend named @name. */
HostBackend *host_registry_get_open(HostRegistry *reg, const char *name, GError **error);
/* "backend 'B' (plugin P VERSION) does not support 'OP'" */
gboolean host_backend_unsupported(HostBackend *b, const char *op, GError **error);
gboolean host_backend_has_op(HostBackend *b, const char *op);

/* Dispatch: each checks VMSHIFT_OPS_HAS, serialises when asked, and turns a
 * failure without a GError into one. */
GPtrArray *host_backend_list_hosts(HostBackend *b, GError **error);
GPtrArray *host_backend_list_vms(HostBackend *b, const char *host, GError **error);
VmshiftVm *host_backend_get_vm(HostBackend *b, const char *vm, GError **error);
GPtrArray *host_backend_list_networks(HostBackend *b, const char *host, GError **error);
GPtrArray *host_backend_list_volumes(HostBackend *b, const char *host, GError **error);
GPtrArray *host_backend_list_snapshots(HostBackend *b, const char *vm, GError **error);
VmshiftCheckpointState *host_backend_checkpoint_state(HostBackend *b, const char *vm,
                                                      GError **error);
GPtrArray *host_backend_check_migration(HostBackend *b, const VmshiftMigrationSpec *spec,
                                        GError **error);
gboolean host_backend_migrate(HostBackend *b, const VmshiftMigrationSpec *spec, VmshiftJob *job,
                              GError **error);
gboolean host_backend_recreate_acl(HostBackend *b, const char *vm, VmshiftJob *job, GError **error);
gboolean host_backend_customize_guest(HostBackend *b, const char *vm, GPtrArray *nics,
                                      VmshiftJob *job, GError **error);
gboolean host_backend_repair(HostBackend *b, VmshiftJob *job, GError **error);
gboolean host_backend_cleanup(HostBackend *b, VmshiftJob *job, GError **error);
/* ABI 1.4: moves between backends */
VmshiftVm *host_backend_export_vm(HostBackend *b, const char *vm, GError **error);
GInputStream *host_backend_open_disk(HostBackend *b, const char *vm, const char *disk_id,
                                     GCancellable *cancellable, GError **error);
GPtrArray *host_backend_check_import(HostBackend *b, const VmshiftMigrationSpec *spec,
                                     GError **error);
gboolean host_backend_import_vm(HostBackend *b, const VmshiftMigrationSpec *spec, VmshiftJob *job,
                                GError **error);
gboolean host_backend_remove_vm(HostBackend *b, const char *vm, VmshiftJob *job, GError **error);
gboolean host_backend_start_vm(HostBackend *b, const char *vm, VmshiftJob *job, GError **error);

/* Splits "backend:name". *backend is NULL when @spec names no configured
 * backend before a colon. */
void host_split_name(HostRegistry *reg, const char *spec, char **backend, char **name);

/* Finds a VM by "[backend:]name" across usable backends. */
VmshiftVm *host_find_vm(HostRegistry *reg, const char *spec, HostBackend **backend_out,
                        GError **error);
/* Finds a host by "[backend:]name"; @prefer: a backend to look in first. */
VmshiftHost *host_find_host(HostRegistry *reg, const char *spec, HostBackend *prefer,
                            HostBackend **backend_out, GError **error);

/* ---- output.c: tables, JSON, sizes ---------------------------------------- */

/* A table printed with libsmartcols: aligned for people, or --raw (one
 * space between columns, blanks, backslashes and control characters as
 * \xNN), with or without the header line, of the columns -o names. */
typedef struct HostTable HostTable;

/* The global options of every table (cli.c): @columns "A,B" (names of
 * columns, case-insensitive; "+A" adds A to the defaults), or NULL for all. */
void host_table_set_options(const char *columns, gboolean noheadings, gboolean raw);
/* TRUE once a table refused -o (it said so on stderr, and nothing more
 * goes to stdout): the command's exit code is HOST_EXIT_USAGE. */
gboolean host_table_refused(void);
/* The columns' headers (a NULL-terminated list). */
HostTable *host_table_new(const char *first, ...) G_GNUC_NULL_TERMINATED;
/* One cell per column; NULL or "" is shown as "-". */
void host_table_add(HostTable *t, const char *first, ...);
void host_table_addv(HostTable *t, char **cells); /* takes the strings */
void host_table_print(HostTable *t, FILE *out);
void host_table_free(HostTable *t);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(HostTable, host_table_free)

char *host_format_bytes(guint64 bytes);
char *host_format_duration(gint64 seconds);
char *host_format_time(gint64 unix_seconds);
/* NULL -> json null; bytes that are not UTF-8 become U+FFFD */
json_object *host_json_string(const char *s);
/* @s for a terminal: control characters and bytes that are not UTF-8 as
 * \xNN; under a locale that is not UTF-8, ASCII only (stars as '*' and
 * '.', other characters '?'). */
char *host_display(const char *s);
void host_json_print(json_object *obj); /* pretty, to stdout, and puts it */
json_object *host_json_error(const GError *error);
json_object *host_json_strings(GPtrArray *a); /* an array of strings; [] for NULL */
json_object *host_json_vm(const VmshiftVm *vm, const char *backend);
json_object *host_json_host(const VmshiftHost *h, const char *backend);
json_object *host_json_finding(const VmshiftFinding *f);
char *host_plugin_capabilities(const VmshiftPluginDescriptor *d);
json_object *host_json_backend(const HostBackend *b);
json_object *host_json_ratings(const VmshiftVm *vm, const char *backend, const char *group,
                               GPtrArray *ratings);

void host_err(const char *format, ...) G_GNUC_PRINTF(1, 2);  /* "vmshift: …\n" */
void host_warn(const char *format, ...) G_GNUC_PRINTF(1, 2); /* "vmshift: warning: …\n" */

/* ---- journal.c: the SQLite journal in the state directory ------------------ */

typedef struct HostJournal HostJournal;

typedef struct {
    gint64 id;
    char *kind; /* migrate, migrate-storage, acl, repair */
    char *backend;
    char *vm;
    char *spec;  /* JSON */
    char *state; /* queued running succeeded failed cancelled interrupted repaired */
    char *phase;
    gint64 pid;
    char *pid_start;
    gint64 created, started, ended;
    char *error_code, *error_message;
    char *location_host, *location_detail;
    char *results; /* JSON object */
    char *source_host, *source_path;
    double percent;
    gint64 bytes_done, bytes_total;
    gboolean cancel_requested;
    /* FALSE: the VM may have moved since location_* was written (a
     * switchover without a report, a killed process); ask a backend */
    gboolean location_verified;
    char *note; /* how the job ended, beyond its state (a cancel too late) */
} HostJobRecord;

typedef struct {
    gint64 seq;
    gint64 time;
    char *kind; /* phase, log, save, state, cancel */
    char *level;
    char *key;
    char *value;
} HostEventRecord;

/* Opens (creating, upgrading) the journal of @state_dir for writing. An
 * empty, truncated, damaged or newer journal is refused with one line. */
HostJournal *host_journal_open(const char *state_dir, GError **error);
/* The same for listing: read-only when the file or directory is not
 * writable (nothing written then: no sweep, no upgrade). */
HostJournal *host_journal_open_read(const char *state_dir, GError **error);
void host_journal_close(HostJournal *j);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(HostJournal, host_journal_close)
gboolean host_journal_read_only(HostJournal *j);
const char *host_journal_path(HostJournal *j);
/* How many jobs the open marked interrupted. */
int host_journal_swept(HostJournal *j);
/* The newest schema version (PRAGMA user_version) this vmshift writes. */
int host_journal_schema_version(void);
/* Tests: creates the journal file @path at schema version @version. */
gboolean host_journal_build_schema(const char *path, int version, GError **error);
/* `journal check`: the schema version, and one line per problem SQLite's
 * integrity check finds (an empty array: none). */
GPtrArray *host_journal_integrity(HostJournal *j, int *version, GError **error);
/* Marks jobs whose process is gone as interrupted; returns how many. */
int host_journal_reconcile(HostJournal *j, GError **error);
/* Inserts a running job for this process after checking that no live job
 * holds the VM. Returns the id, or 0 with CONFLICT. */
gint64 host_journal_begin_job(HostJournal *j, const char *kind, const char *backend, const char *vm,
                              const char *spec_json, const char *source_host,
                              const char *source_path, GError **error);
/* Retakes a finished job for a repair (state running, our pid). */
gboolean host_journal_take_job(HostJournal *j, gint64 id, GError **error);
gboolean host_journal_set_phase(HostJournal *j, gint64 id, const char *phase, GError **error);
/* The phase and, in the same transaction, the location the plugin last
 * reported (@loc_host NULL: unchanged), or none (@location_unknown). */
gboolean host_journal_set_phase_at(HostJournal *j, gint64 id, const char *phase,
                                   const char *loc_host, const char *loc_detail,
                                   gboolean location_unknown, GError **error);
/* Where a backend says the VM is (verified), with an event @event. */
gboolean host_journal_set_location(HostJournal *j, gint64 id, const char *loc_host,
                                   const char *loc_detail, const char *event, GError **error);
gboolean host_journal_set_note(HostJournal *j, gint64 id, const char *note, GError **error);
gboolean host_journal_add_event(HostJournal *j, gint64 id, const char *kind, const char *level,
                                const char *key, const char *value, GError **error);
gboolean host_journal_update_progress(HostJournal *j, gint64 id, double percent, guint64 done,
                                      guint64 total, const char *loc_host, const char *loc_detail,
                                      const char *results_json, GError **error);
gboolean host_journal_finish(HostJournal *j, gint64 id, const char *state, const GError *failure,
                             const char *loc_host, const char *loc_detail, const char *results_json,
                             GError **error);
gboolean host_journal_request_cancel(HostJournal *j, gint64 id, GError **error);
gboolean host_journal_cancel_requested(HostJournal *j, gint64 id);
HostJobRecord *host_journal_get(HostJournal *j, gint64 id, GError **error);
GPtrArray *host_journal_list(HostJournal *j, GError **error); /* HostJobRecord, newest first */
/* What `jobs` filters on; NULL/0 members match everything. */
typedef struct {
    const char *state, *backend, *vm;
    gint64 since;  /* created at or after (Unix seconds) */
    gint64 limit;  /* at most this many (newest first); 0: all */
    gint64 offset; /* after skipping this many */
} HostJobFilter;
GPtrArray *host_journal_list_filtered(HostJournal *j, const HostJobFilter *f, GError **error);
/* How many jobs match @f (its limit and offset aside), or -1. */
gint64 host_journal_count(HostJournal *j, const HostJobFilter *f, GError **error);
/* Deletes the jobs (and their events) that ended before @before, except
 * running, queued and interrupted ones. Returns how many, or -1. */
gint64 host_journal_prune(HostJournal *j, gint64 before, GError **error);
GPtrArray *host_journal_events(HostJournal *j, gint64 id, GError **error);
GHashTable *host_journal_saved(HostJournal *j, gint64 id, GError **error);
void host_job_record_free(HostJobRecord *r);
void host_event_record_free(HostEventRecord *e);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(HostJobRecord, host_job_record_free)
/* cmd-journal.c: a job as JSON; its events (saved plugin data: keys only) */
json_object *host_json_job(const HostJobRecord *r);
json_object *host_json_events(GPtrArray *events);
/* "HOST (DETAIL)", or what is known of an unverified location. */
char *host_job_location_text(const HostJobRecord *r);

/* TEST-ONLY (testhook.c): with VMSHIFT_TEST_KILL_AT=PHASE[+MS] set, SIGKILL
 * this process MS ms after the journal records @phase; with
 * VMSHIFT_TEST_STOP_AT=PHASE, SIGSTOP it once right then; unset, nothing. */
void host_test_kill_at(VmshiftPhase phase);
/* The same for a phase given by name (a move between backends' export,
 * import, verify, convert, acl, finish). */
void host_test_kill_at_name(const char *name);

/* procid.c: "BOOTID:STARTTIME" of @pid, or NULL when it is gone. */
char *host_process_identity(gint64 pid);
gboolean host_process_alive(gint64 pid, const char *identity);

/* ---- validate.c: host checks + the plugin's check_migration ------------- */

/* The volume of @vols holding @path (by name, id, or longest path prefix;
 * Windows paths case-insensitively), or NULL. */
VmshiftVolume *host_volume_for_path(GPtrArray *vols, const char *path);
/* Findings (VmshiftFinding) for @spec on backend @b. NULL with @error when
 * validation could not run at all. */
GPtrArray *host_validate(HostBackend *b, const VmshiftMigrationSpec *spec, const VmshiftVm *vm,
                         GError **error);
/* Counts findings by severity. */
void host_findings_count(GPtrArray *findings, guint *errors, guint *warnings);
void host_findings_print(GPtrArray *findings, FILE *out);

/* ---- rate.c: placement --------------------------------------------------- */

typedef struct {
    HostBackend *backend;
    VmshiftHost *host;
    double score; /* 0–5 */
    gboolean eligible;
    GPtrArray *factors; /* HostFactor */
    char *best_volume;  /* path of the volume with the most free space */
    guint64 best_volume_free;
    char *reason;            /* ruled out: the refusing finding's message */
    char *reason_code;       /* ruled out: its code */
    char *dest_path;         /* where the storage goes (NULL: it stays) */
    gboolean storage_shared; /* the VM's disks are on storage this host reaches */
    guint placed;            /* VMs placed on this host earlier in the run */
    guint64 memory_after;    /* free memory after the run's placements and this VM */
    gboolean host_borrowed;  /* @host belongs to the facts (quick ratings) */
} HostRating;

typedef struct {
    char *name;   /* status, memory, cpu, space, network, storage, merge, power, compat, … */
    char *code;   /* the finding code behind it, or NULL for a soft factor */
    char *result; /* ok, warn, fail */
    double effect;
    char *detail;
} HostFactor;

/* Rates every host of @group (NULL: every host of the VM's backend) for @vm.
 * Returns HostRating sorted best first. */
GPtrArray *host_rate(HostRegistry *reg, HostBackend *vm_backend, const VmshiftVm *vm,
                     const char *group, GError **error);
void host_rating_free(HostRating *r);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(HostRating, host_rating_free)
char *host_stars(double score);

/* ---- progress.c: the terminal's view of running jobs ------------------------ */

typedef struct HostProgress HostProgress;
HostProgress *host_progress_new(gboolean tty, gboolean json);
void host_progress_update(HostProgress *p, const char *label, VmshiftJob *job);
void host_progress_line(HostProgress *p, const char *format, ...) G_GNUC_PRINTF(2, 3);
void host_progress_remove(HostProgress *p, const char *label); /* job ended */
void host_progress_finish(HostProgress *p);
void host_progress_free(HostProgress *p);

/* ---- jobs.c: running jobs on worker threads ---------------------------------- */

typedef enum {
    HOST_JOB_MIGRATE = 0,
    HOST_JOB_STORAGE,
    HOST_JOB_ACL,
    HOST_JOB_REPAIR,
} HostJobKind;

typedef struct HostJobRun HostJobRun;

typedef struct {
    HostRegistry *reg;
    HostJournal *journal;
    HostProgress *progress;
    gboolean json;
    gboolean verbose;
    gboolean stopping; /* a signal asked to stop: start nothing new */
} HostJobContext;

/* Called on every tick of host_jobs_wait_full(); may start runs and append
 * them to @runs. Returns FALSE once it has nothing more to start. */
typedef gboolean (*HostJobsMore)(gpointer data, GPtrArray *runs);

/* What `job repair` does (HOST_JOB_REPAIR): decide from the hypervisor
 * (auto), run the failed phase and the rest again (retry), move the VM back
 * and clean up the destination (undo), mark it handled (dismiss), or remove
 * the leftovers on both sides without touching the VM (cleanup). */
typedef enum {
    HOST_REPAIR_AUTO = 0,
    HOST_REPAIR_RETRY,
    HOST_REPAIR_UNDO,
    HOST_REPAIR_DISMISS,
    HOST_REPAIR_CLEANUP,
} HostRepairMode;

/* Creates the journal record and the VmshiftJob. @vm: the VM's record.
 * For HOST_JOB_REPAIR, @repair_id names the job repaired. */
HostJobRun *host_job_run_new(HostJobContext *ctx, HostJobKind kind, HostBackend *b,
                             const VmshiftVm *vm, const VmshiftMigrationSpec *spec,
                             gint64 repair_id, GError **error);
/* Before host_job_run_start() of a repair: how to repair (@reason: the
 * admin's words for --dismiss, kept in the journal). */
void host_job_run_set_repair(HostJobRun *run, HostRepairMode mode, const char *reason);
void host_job_run_start(HostJobRun *run);
gboolean host_job_run_is_done(HostJobRun *run);
/* Polls the journal's cancel request and refreshes progress; from the main
 * loop. */
void host_job_run_tick(HostJobRun *run);
void host_job_run_cancel(HostJobRun *run);
gint64 host_job_run_id(HostJobRun *run);
const char *host_job_run_state(HostJobRun *run);
const GError *host_job_run_error(HostJobRun *run);
const char *host_job_run_backend(HostJobRun *run);
const char *host_job_run_dest_host(HostJobRun *run);
void host_job_run_free(HostJobRun *run);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(HostJobRun, host_job_run_free)
/* Runs @runs concurrently to completion with a main loop (progress, cancel
 * polling, SIGINT/SIGTERM). */
void host_jobs_wait(HostJobContext *ctx, GPtrArray *runs);
void host_jobs_wait_full(HostJobContext *ctx, GPtrArray *runs, HostJobsMore more,
                         gpointer more_data);
/* Asks the backends where the VM of each job of @list (NULL: the whole
 * journal) is whose location is unverified and whose process is gone;
 * records the answer (unless read-only) and updates @list's records.
 * Returns how many it verified. */
guint host_jobs_verify_locations(HostRegistry *reg, HostJournal *j, GPtrArray *list);
char *host_spec_to_json(const VmshiftMigrationSpec *spec, HostJobKind kind);
VmshiftMigrationSpec *host_spec_from_json(const char *json, GError **error);
const char *host_job_kind_name(HostJobKind kind);

/* ---- session.c: what every command opens ------------------------------------ */

typedef struct {
    char *config_path;
    gboolean config_explicit;
    char **plugin_dirs;
    char *state_dir;
    gboolean json;
    gboolean verbose;
    gboolean help;
    gboolean no_default_plugin_dir; /* tests: --plugin-dir only */
    char *columns;                  /* -o, --output: the columns of tables */
    gboolean noheadings;            /* -n, --noheadings */
    gboolean raw;                   /* -r, --raw */
    char *daemon;                   /* --daemon: a socket path, auto or no */
} HostGlobals;

typedef struct {
    HostGlobals *g;
    HostConfig *config;
    HostLoader *loader;
    HostRegistry *reg;
} HostSession;

/* Loads config, loader and registry; prints config warnings. */
gboolean host_session_open(HostSession *s, HostGlobals *g, GError **error);
void host_session_close(HostSession *s);
HostJournal *host_session_journal(HostSession *s, GError **error);

/* ---- spec.c: the migration spec, from options (check, migrate, bulk) ------------ */

/* What `migrate`/`check` options and a bulk wave say about one migration. */
typedef struct {
    char *to;
    char *to_group;
    gboolean live, cold;
    char *path;
    char **disk_paths;
    char **networks;
    char *transfer;
    char **options; /* --option KEY=VALUE: backend options, passed as strings */
    gboolean start, force, dry_run;
    char *switchover_at; /* --switchover-at, a wave's switchover=: as written (plan.c) */
    char **ips;          /* --ip NIC=ADDR/PREFIX[,GATEWAY]: the guest's new addresses */
    gboolean delete_source, convert_guest; /* moves between backends (crossmove.c) */
    /* a bulk plan's [networks BACKEND] groups, as "BACKEND:SOURCE=DEST":
     * a NIC on network SOURCE of a VM sent to backend BACKEND goes on DEST,
     * unless a --network names that NIC (host_spec_map_networks) */
    char **network_map;
} HostMigrateOpts;

/* Adds to @spec->networks, for each NIC of @nics (VmshiftNic) whose
 * network @o->network_map maps for backend @dest_backend, NIC=DEST, unless
 * @spec->networks maps that NIC already (spec.c). */
void host_spec_map_networks(VmshiftMigrationSpec *spec, const HostMigrateOpts *o,
                            const char *dest_backend, GPtrArray *nics);

/* Frees what @o holds and zeroes it (spec.c). */
void host_migrate_opts_clear(HostMigrateOpts *o);
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(HostMigrateOpts, host_migrate_opts_clear)

/* Appends a VmshiftMapping to @out for each "KEY=VALUE" of @items; FALSE
 * (naming @opt) for one that is not KEY=VALUE. */
gboolean host_spec_add_mappings(GPtrArray *out, char **items, const char *opt, GError **error);
/* The a{sv} of "KEY=VALUE" @items (values as strings), NULL for none; FALSE
 * for an item that is not KEY=VALUE, a key given twice or bytes that are not
 * UTF-8, naming the item. */
gboolean host_spec_parse_options(char **items, GVariant **out, GError **error);
/* The VmshiftGuestNic list of "NIC=ADDR/PREFIX[,GATEWAY]" @items (--ip),
 * NULL for none; FALSE naming the item that is not that (an address or
 * gateway that is not IPv4/IPv6, a prefix out of range, a NIC twice). */
gboolean host_spec_parse_ips(char **items, GPtrArray **out, GError **error);
/* The options key under which a spec carries --ip's items (a string array):
 * journaled with the spec, shown as --ip by host_spec_command_line(), read
 * by check_migration of a plugin with customize_guest, never by migrate. */
#define HOST_SPEC_IP_KEY "vmshift.ip"
/* @spec's --ip as a VmshiftGuestNic list (NULL: none). */
gboolean host_spec_guest(const VmshiftMigrationSpec *spec, GPtrArray **out, GError **error);
/* A copy of @spec for the plugin's migrate: without --ip, and without
 * --start when --ip is there (the guest phase starts the VM). */
VmshiftMigrationSpec *host_spec_for_plugin(const VmshiftMigrationSpec *spec);
/* "auto" (or NULL), "san", "network" -> VMSHIFT_TRANSFER_*; FALSE otherwise. */
gboolean host_spec_parse_transfer(const char *s, guint32 *out);
/* VMSHIFT_TRANSFER_* -> "auto", "san", "network" (static). */
const char *host_spec_transfer_name(guint32 transfer);
/* The spec that moves VM @vm_spec ("[backend:]name") as @o says: finds the
 * VM, the destination host (--to, or the best-rated host of --to-group,
 * whose roomiest volume then receives the storage unless the SAN is shared)
 * and the type (--live/--cold, else by the VM's power state). */
VmshiftMigrationSpec *host_build_spec(HostRegistry *reg, const char *vm_spec,
                                      const HostMigrateOpts *o, gboolean storage_only,
                                      HostBackend **backend_out, VmshiftVm **vm_out,
                                      GError **error);
/* host_build_spec() for one VM of a run (bulk plan): a --to-group placement
 * counts what @run (a HostPlaceRun, rules.h) already placed and records its
 * own; *placement (may be NULL) receives the choice and its reason. */
struct HostPlaceRun_;
VmshiftMigrationSpec *host_build_spec_run(HostRegistry *reg, const char *vm_spec,
                                          const HostMigrateOpts *o, gboolean storage_only,
                                          struct HostPlaceRun_ *run, HostBackend **backend_out,
                                          VmshiftVm **vm_out, char **placement, GError **error);
/* The `vmshift migrate ...` command line that builds @spec again. */
char *host_spec_command_line(const char *backend, const VmshiftMigrationSpec *spec);

/* ---- recovery.c: what the journal says about a VM's moves (repair, acl
 * recreate, bulk --reverse) ---------------------------------------------------- */

/* Whether move job @rec (migrate, migrate-storage) left its VM at the
 * destination: it succeeded, or a repair resumed or retried it. */
gboolean host_move_took_effect(const HostJobRecord *rec);
/* The newest move of backend:vm that took effect; NULL with @error unset
 * when there is none. */
HostJobRecord *host_last_move(HostJournal *j, const char *backend, const char *vm, GError **error);
/* The id of an interrupted job of backend:vm that was never repaired, 0
 * when there is none (or -1 with @error). */
gint64 host_interrupted_job(HostJournal *j, const char *backend, const char *vm, GError **error);
/* Records where @vm's disks were before job @id moves them ("vmshift.disk:ID"
 * saved data), for host_reverse_opts(). */
gboolean host_record_source(HostJournal *j, gint64 id, const VmshiftVm *vm, GError **error);
/* Fills @o (to, path, disk_paths) with what moves the VM of move @rec back
 * to the host it came from and its files to exactly their directories of
 * before; *storage_only when the move did not change host. @now: the VM as
 * it is (after @rec). */
gboolean host_reverse_opts(HostJournal *j, const HostJobRecord *rec, const VmshiftVm *now,
                           HostMigrateOpts *o, gboolean *storage_only, GError **error);

/* ---- bulk.c: plan files and their scheduling ------------------------------------ */

typedef struct {
    char *vm; /* as written in the plan */
    HostMigrateOpts opts;
    HostBackend *b;
    VmshiftVm *vmrec;
    VmshiftMigrationSpec *spec;
    char *error;     /* planning failed */
    HostJobRun *run; /* while its job runs; freed once it ended (host_bulk_retire) */
    gint64 job_id;   /* the job that ran, 0: none */
    char *failure;   /* "job ID STATE: why" when it failed */
    gboolean started;
    gboolean finished;
    gboolean storage_only; /* --reverse of a storage move: migrate-storage */
    char *skipped;         /* why the job could not start (busy VM, ...) */
    char *placement;       /* --to-group: the host chosen and why */
} HostBulkItem;

typedef struct {
    int number;
    char *group;
    GPtrArray *items;       /* HostBulkItem */
    gint64 switchover_at;   /* switchover= (plan.c), 0: none */
    char *switchover_where; /* "FILE:LINE: [wave N]" of switchover= */
} HostBulkWave;

typedef struct {
    HostRegistry *reg;
    HostJobContext *ctx;
    gint64 max_backend, max_host;
    int win_start, win_end; /* minutes since midnight; -1: no window */
    char *window;
    HostBulkWave *wave; /* the wave host_bulk_schedule() starts jobs of */
    gboolean waiting_shown;
    guint jobs_started;           /* jobs started by host_bulk_schedule so far */
    struct HostPlaceRun_ *placed; /* what planning placed so far (rules.h) */
    gint64 loaded_at;             /* when the plan was read (a switchover= before it: refused) */
} HostBulk;

/* Reads plan @file: its [bulk] limits into @bk, its waves (HostBulkWave)
 * sorted by number. */
GPtrArray *host_bulk_load_plan(const char *file, HostBulk *bk, GError **error);
/* --reverse: every VM back to where the journal says it came from, waves in
 * reverse order. */
void host_bulk_reverse(HostBulk *bk, GPtrArray *waves, HostJournal *j);
/* Builds the spec of each item of @wave (or records why not). */
void host_bulk_plan_wave(HostBulk *bk, HostBulkWave *wave, gboolean force);
/* A HostJobsMore: starts the jobs of bk->wave the limits allow. */
gboolean host_bulk_schedule(gpointer data, GPtrArray *runs);
/* Each item of bk->wave whose job ended keeps only its outcome (job id,
 * failure); its run (job, results, log queue, thread) leaves @runs and is
 * freed: the runs a wave holds are bounded by its concurrency, not by its
 * size. */
void host_bulk_retire(HostBulk *bk, GPtrArray *runs);
/* Frees the window and the placements of @bk. */
void host_bulk_clear(HostBulk *bk);

/* ---- plan.c, schedule.c: scheduled switchover (#17) --------------------------------- */

/* A switchover time: YYYY-MM-DDTHH:MM[:SS] in local time, or followed by Z
 * or an offset (+01:00); FALSE with one line for anything else. */
gboolean host_parse_switchover(const char *text, gint64 *out, GError **error);
/* host_parse_switchover(), and refuses a time before @now */
gboolean host_parse_switchover_future(const char *text, gint64 now, gint64 *out, GError **error);
/* "2026-12-02T17:00:00+01:00" in local time */
char *host_format_switchover(gint64 t);
/* Whether backend @b's plugin copies ahead and holds before its switchover
 * (VMSHIFT_PLUGIN_SWITCHOVER_AT); otherwise the host starts the move at the
 * time. */
gboolean host_backend_holds_switchover(HostBackend *b);

typedef struct {
    gint64 job;
    gint64 switchover_at;
    char *mode;  /* copy-ahead (the plugin copies now, holds), start-at (the host waits) */
    char *state; /* scheduled, waiting, released, cancelled, failed, missed */
    gint64 changed;
} HostSchedule;

void host_schedule_free(HostSchedule *s);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(HostSchedule, host_schedule_free)
/* journal.c: the connection and its lock (schedule.c only) */
sqlite3 *host_journal_db(HostJournal *j, GMutex **lock);
gboolean host_journal_schedule_add(HostJournal *j, gint64 id, gint64 at, const char *mode,
                                   GError **error);
/* The state, with an event "schedule" @event (NULL: none) */
gboolean host_journal_schedule_set_state(HostJournal *j, gint64 id, const char *state,
                                         const char *event, GError **error);
/* The schedule of job @id; NULL with @error unset when it has none. */
HostSchedule *host_journal_schedule_get(HostJournal *j, gint64 id, GError **error);
/* job id (gint64 *) -> HostSchedule of every job with a schedule */
GHashTable *host_journal_schedules(HostJournal *j, GError **error);
/* What `jobs` and `job show` say of @s for a job in @state: "waiting for
 * switchover at ...", "switchover scheduled at ...", or NULL. */
char *host_schedule_text(const HostSchedule *s, const char *state);

/* ---- client.c: migrate through vmshiftd (#17) ------------------------------------ */

/* When a daemon is to be used (--daemon, [vmshift] daemon=, or its socket
 * exists), submits the migration of @vm to it and follows it (or, with
 * @detach, prints its id): TRUE with the exit code in @rc. FALSE: no daemon,
 * run the job in this process. */
gboolean host_client_migrate(HostSession *s, const char *vm, const HostMigrateOpts *m,
                             gboolean storage, gboolean detach, gboolean cancel_on_interrupt,
                             int *rc);

/* ---- cli.c: the command line (commands: cmd.h, cmd-*.c) ------------------------- */

int host_main(int argc, char **argv);
/* What host_main() does short of running the command (fuzzing, tests): the
 * exit code of --version, --help or a usage error, or -1 when the command
 * would run. */
int host_cli_parse(int argc, char **argv);

G_END_DECLS

#endif /* VMSHIFT_HOST_H */
