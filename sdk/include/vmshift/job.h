/*
 * vmshift SDK: the job object, the only channel from a running operation back
 * to the host (phase, progress, bytes, log lines, where the VM is, data to
 * resume or roll back with, cancellation).
 *
 * Include <vmshift/vmshift.h>, not this file.
 *
 * Threads: the host calls migrate/recreate_acl/repair on a worker thread of
 * its own, one per job. Every vmshift_job_* function is thread-safe, so a
 * plugin may also report from helper threads it starts and joins within the
 * operation. The host's hooks run on the calling thread.
 */
#if !defined(VMSHIFT_INSIDE) && !defined(VMSHIFT_COMPILATION)
#error "Only <vmshift/vmshift.h> can be included directly."
#endif

#ifndef VMSHIFT_JOB_H
#define VMSHIFT_JOB_H

#include <gio/gio.h>
#include <vmshift/types.h>

G_BEGIN_DECLS

/**
 * VmshiftJob:
 *
 * An opaque, reference-counted job. Plugins receive one from the host and
 * never free it.
 */
typedef struct _VmshiftJob VmshiftJob;

/**
 * VmshiftPhase:
 * @VMSHIFT_PHASE_NONE: not started.
 * @VMSHIFT_PHASE_VALIDATE: checks; nothing has changed anywhere yet.
 * @VMSHIFT_PHASE_PREPARE: destination being prepared (directories, an
 *   incoming VM, reservations); the VM still runs only at the source.
 * @VMSHIFT_PHASE_TRANSFER: memory and/or disks are being copied; the VM still
 *   runs at the source.
 * @VMSHIFT_PHASE_SWITCHOVER: the VM is being stopped at the source and
 *   started at the destination; the point of no return is inside this phase
 *   and the plugin reports it with vmshift_job_set_location().
 * @VMSHIFT_PHASE_ACL: access rules are being re-applied at the destination.
 * @VMSHIFT_PHASE_CLEANUP: the source's leftovers are being removed.
 * @VMSHIFT_PHASE_DONE: finished (set by the host).
 *
 * The phases of a job, in order. A plugin may skip phases that do not apply;
 * it never goes back.
 */
typedef enum {
    VMSHIFT_PHASE_NONE = 0,
    VMSHIFT_PHASE_VALIDATE = 1,
    VMSHIFT_PHASE_PREPARE = 2,
    VMSHIFT_PHASE_TRANSFER = 3,
    VMSHIFT_PHASE_SWITCHOVER = 4,
    VMSHIFT_PHASE_ACL = 5,
    VMSHIFT_PHASE_CLEANUP = 6,
    VMSHIFT_PHASE_DONE = 7,
} VmshiftPhase;

/**
 * VmshiftLogLevel:
 * @VMSHIFT_LOG_DEBUG: shown with --verbose only.
 * @VMSHIFT_LOG_INFO: shown to the person running the job.
 * @VMSHIFT_LOG_WARNING: something the person should know.
 * @VMSHIFT_LOG_ERROR: something failed (the operation's GError says what
 *   failed in the end; use this for secondary failures, e.g. during cleanup).
 */
typedef enum {
    VMSHIFT_LOG_DEBUG = 0,
    VMSHIFT_LOG_INFO = 1,
    VMSHIFT_LOG_WARNING = 2,
    VMSHIFT_LOG_ERROR = 3,
} VmshiftLogLevel;

/* ---- for plugins ------------------------------------------------------ */

/**
 * vmshift_job_set_phase:
 * @job: the job
 * @phase: the phase about to run
 * @error: return location for an error
 *
 * Announces that @phase is about to run. The host writes the transition to
 * its journal before this returns, so after a crash the host knows the last
 * phase entered. A plugin must not start the phase's work when this fails.
 *
 * Returns: TRUE on success; FALSE with @error set when the host could not
 *   record the transition.
 */
gboolean vmshift_job_set_phase(VmshiftJob *job, VmshiftPhase phase, GError **error);

/**
 * vmshift_job_set_progress:
 * @job: the job
 * @percent: overall progress 0–100, or a negative value for "unknown"
 *
 * Reports overall progress. Values are clamped to 0–100; progress that goes
 * backwards is accepted (a dirty-page pass can enlarge the remaining work).
 */
void vmshift_job_set_progress(VmshiftJob *job, double percent);

/**
 * vmshift_job_set_bytes:
 * @job: the job
 * @done: bytes transferred so far
 * @total: bytes expected in total, or 0 when unknown
 *
 * Reports the transfer's bytes. The host derives rate and ETA from them. When
 * no percentage was reported, it is derived from @done/@total.
 */
void vmshift_job_set_bytes(VmshiftJob *job, guint64 done, guint64 total);

/**
 * vmshift_job_log:
 * @job: the job
 * @level: a #VmshiftLogLevel
 * @format: printf-style format of one line (no trailing newline)
 * @...: arguments
 *
 * Adds a line to the job's log, which the host shows and journals. Never put
 * credentials in it.
 */
void vmshift_job_log(VmshiftJob *job, VmshiftLogLevel level, const char *format, ...)
    G_GNUC_PRINTF(3, 4);

/**
 * vmshift_job_set_location:
 * @job: the job
 * @host: the host the VM runs (or is registered) on right now
 * @detail: one line on its state there ("running", "paused, awaiting
 *   switchover"), or NULL
 *
 * Records where the VM is. Call it when the migration starts and whenever
 * that changes (switchover done, rollback done). A failed or cancelled job
 * reports this place to the person, so it must be true when the operation
 * returns.
 */
void vmshift_job_set_location(VmshiftJob *job, const char *host, const char *detail);

/**
 * vmshift_job_set_result:
 * @job: the job
 * @key: a stable dash-separated key ("downtime-ms", "tuning", "acl-entries")
 * @value: its value for people and programs
 *
 * Adds a fact to the job's result (shown by `vmshift job show`, and in
 * `--json`). Setting a key again replaces its value.
 */
void vmshift_job_set_result(VmshiftJob *job, const char *key, const char *value);

/**
 * vmshift_job_save:
 * @job: the job
 * @key: the plugin's key
 * @value: the value, or NULL to remove the key
 * @error: return location for an error
 *
 * Persists plugin data the plugin needs to resume or roll the job back after
 * the host process was killed (destination process id, temporary paths, task
 * ids). The host writes it to the journal before this returns. In a later
 * repair() call the same keys are available through vmshift_job_get_saved().
 *
 * Returns: TRUE on success; FALSE with @error set when the journal write
 *   failed (the plugin should then stop and roll back).
 */
gboolean vmshift_job_save(VmshiftJob *job, const char *key, const char *value, GError **error);

/**
 * vmshift_job_get_saved:
 * @job: the job
 * @key: a key given to vmshift_job_save()
 *
 * Returns: (transfer full): the saved value, or NULL. Free with g_free().
 */
char *vmshift_job_get_saved(VmshiftJob *job, const char *key);

/**
 * vmshift_job_get_spec:
 * @job: the job
 *
 * Returns: (transfer none): the migration spec the job runs (for migrate and
 *   repair of a migration), or NULL for jobs that are not migrations.
 */
const VmshiftMigrationSpec *vmshift_job_get_spec(VmshiftJob *job);

/**
 * vmshift_job_get_phase:
 * @job: the job
 *
 * Returns: the phase last set; for a repair job, the phase the interrupted
 *   job had reached.
 */
VmshiftPhase vmshift_job_get_phase(VmshiftJob *job);

/**
 * vmshift_job_get_id:
 * @job: the job
 *
 * Returns: (transfer none): the job's id, stable for its lifetime.
 */
const char *vmshift_job_get_id(VmshiftJob *job);

/**
 * vmshift_job_get_cancellable:
 * @job: the job
 *
 * Returns: (transfer none): the job's cancellable. A plugin polls it at safe
 *   points (g_cancellable_set_error_if_cancelled()) and may connect a handler
 *   that aborts the remote operation (QMP migrate_cancel, vSphere CancelTask,
 *   a WMI job's RequestStateChange). A cancelled operation returns FALSE with
 *   G_IO_ERROR_CANCELLED after leaving the VM running in exactly one place.
 *   Past the point of no return a plugin finishes the switchover instead and
 *   logs that cancellation came too late.
 */
GCancellable *vmshift_job_get_cancellable(VmshiftJob *job);

/**
 * vmshift_job_is_cancelled:
 * @job: the job
 *
 * Returns: TRUE once cancellation was requested.
 */
gboolean vmshift_job_is_cancelled(VmshiftJob *job);

/* ---- for hosts (and tests) ------------------------------------------- */

/**
 * VmshiftJobHooks:
 * @struct_size: sizeof(VmshiftJobHooks).
 * @phase: called by vmshift_job_set_phase() before it returns; returning
 *   FALSE fails it.
 * @changed: progress, bytes, location or result changed.
 * @log: a line was logged.
 * @save: called by vmshift_job_save(); returning FALSE fails it.
 *
 * How a host learns about a job's reports. Any hook may be NULL. Hooks run on
 * the reporting thread with no job lock held.
 */
typedef struct {
    guint32 struct_size;
    guint32 reserved0;
    gboolean (*phase)(VmshiftJob *job, VmshiftPhase phase, gpointer user_data, GError **error);
    void (*changed)(VmshiftJob *job, gpointer user_data);
    void (*log)(VmshiftJob *job, VmshiftLogLevel level, const char *line, gpointer user_data);
    gboolean (*save)(VmshiftJob *job, const char *key, const char *value, gpointer user_data,
                     GError **error);

    /* ---- ABI 1.3: scheduled switchover ----
     * @hold: called by vmshift_job_hold_switchover() when the wait begins
     *   and about once a second while it lasts, with @until the time (Unix
     *   seconds) the job waits for: the spec's switchover_at at first, then
     *   what the hook returned last. Returns the time to wait for: @until
     *   to keep it, an earlier time (0) to release the switchover now, a
     *   later one (G_MAXINT64: until released) to hold longer; or -1 with
     *   @error set to end the wait with that error. The host records the
     *   wait here ("waiting for switchover at ..."). */
    gint64 (*hold)(VmshiftJob *job, gint64 until, gpointer user_data, GError **error);

    /* ---- ABI 1.4: moves between backends ----
     * @open_source: called by vmshift_job_open_source_disk(): opens the
     *   source's disk @disk_id (the source plugin's open_disk()) and
     *   returns a stream of its guest-visible bytes, setting @capacity to
     *   their number. The host counts, hashes and reports what is read. */
    GInputStream *(*open_source)(VmshiftJob *job, const char *disk_id, guint64 *capacity,
                                 gpointer user_data, GError **error);
} VmshiftJobHooks;

/**
 * vmshift_job_new:
 * @id: the job's id
 * @spec: (nullable): the migration spec; copied
 * @hooks: (nullable): the host's hooks; the struct must outlive the job
 * @user_data: passed to the hooks
 *
 * Returns: a new job with one reference.
 */
VmshiftJob *vmshift_job_new(const char *id, const VmshiftMigrationSpec *spec,
                            const VmshiftJobHooks *hooks, gpointer user_data);

/** vmshift_job_ref: Returns: @job, with one more reference. */
VmshiftJob *vmshift_job_ref(VmshiftJob *job);

/** vmshift_job_unref: drops a reference; the last one frees the job. */
void vmshift_job_unref(VmshiftJob *job);

/**
 * vmshift_job_cancel:
 * @job: the job
 *
 * Requests cancellation (thread-safe).
 */
void vmshift_job_cancel(VmshiftJob *job);

/**
 * vmshift_job_restore:
 * @job: a job not yet running
 * @phase: the phase the interrupted job had reached
 * @saved: (nullable): key → value of the data the plugin saved
 *
 * Prepares a repair job from the journal: sets the phase without calling the
 * hooks and fills the saved data.
 */
void vmshift_job_restore(VmshiftJob *job, VmshiftPhase phase, GHashTable *saved);

/**
 * VmshiftJobProgress:
 * @struct_size: sizeof(VmshiftJobProgress).
 * @phase: the current #VmshiftPhase.
 * @percent: 0–100, or negative when unknown.
 * @bytes_done: bytes transferred.
 * @bytes_total: bytes expected, 0 when unknown.
 * @location_host: where the VM is, or NULL (owned by the snapshot).
 * @location_detail: the state there, or NULL.
 *
 * A consistent snapshot of a job's progress.
 */
typedef struct {
    guint32 struct_size;
    guint32 phase;
    double percent;
    guint64 bytes_done;
    guint64 bytes_total;
    char *location_host;
    char *location_detail;
} VmshiftJobProgress;

/**
 * vmshift_job_get_progress:
 * @job: the job
 * @out: filled with a snapshot; free its strings with
 *   vmshift_job_progress_clear()
 */
void vmshift_job_get_progress(VmshiftJob *job, VmshiftJobProgress *out);

/** vmshift_job_progress_clear: frees the strings of a progress snapshot. */
void vmshift_job_progress_clear(VmshiftJobProgress *progress);

/**
 * vmshift_job_get_results:
 * @job: the job
 *
 * Returns: (transfer full): key → value of the results set so far, in a new
 *   GHashTable of strings; free with g_hash_table_unref().
 */
GHashTable *vmshift_job_get_results(VmshiftJob *job);

/**
 * vmshift_phase_name:
 * @phase: a #VmshiftPhase
 *
 * Returns: "validate", "prepare", "transfer", "switchover", "acl",
 *   "cleanup", "done" or "none" (static).
 */
const char *vmshift_phase_name(guint32 phase);

/**
 * vmshift_phase_from_name:
 * @name: a phase name
 *
 * Returns: the phase, or VMSHIFT_PHASE_NONE for an unknown name.
 */
VmshiftPhase vmshift_phase_from_name(const char *name);

/* ---- ABI 1.3: scheduled switchover ---------------------------------- */

/**
 * VmshiftHoldPollFunc:
 * @job: the job
 * @user_data: the plugin's data
 * @error: return location for an error
 *
 * Called by vmshift_job_hold_switchover() about four times a second while
 * it waits, on the waiting thread: a plugin that keeps a copy synchronised
 * checks it here (reads its peer's events, reports progress).
 *
 * Returns: TRUE to go on waiting; FALSE with @error set when the copy
 *   failed (the wait then ends with that error).
 */
typedef gboolean (*VmshiftHoldPollFunc)(VmshiftJob *job, gpointer user_data, GError **error);

/**
 * vmshift_job_hold_switchover:
 * @job: the job
 * @poll: (nullable): checks the plugin's copy while it waits
 * @user_data: passed to @poll
 * @error: return location for an error
 *
 * Holds the job before its switchover until the time the host set
 * (VmshiftMigrationSpec.switchover_at) or until the host releases it (its
 * hold hook). A plugin whose descriptor has VMSHIFT_PLUGIN_SWITCHOVER_AT
 * calls this right before its point of no return, once its copy is
 * synchronised; where it cannot copy ahead it calls it before it changes
 * anything. Returns at once when nothing holds the job. Call it from the
 * job's worker thread, in the transfer phase or before any.
 *
 * Returns: TRUE when the switchover may go ahead; FALSE with
 *   G_IO_ERROR_CANCELLED when the job was cancelled meanwhile (the plugin
 *   then rolls back as for any cancellation), or with the error of @poll or
 *   of the host's hook.
 *
 * Since: ABI 1.3 (symbol version VMSHIFT_SDK_1.3)
 */
gboolean vmshift_job_hold_switchover(VmshiftJob *job, VmshiftHoldPollFunc poll, gpointer user_data,
                                     GError **error);

/**
 * vmshift_job_open_source_disk:
 * @job: an import job (VmshiftMigrationSpec.source_vm is set)
 * @disk_id: the id of a disk of the spec's source_vm
 * @capacity: (out): the number of bytes the stream gives
 * @error: return location for an error
 *
 * For import_vm(): opens the disk's data at the source, whatever backend
 * it is on, as its guest-visible bytes (raw, exactly @capacity of them).
 * Read it to the end: the host checks the bytes the destination wrote
 * against what was read here. vmshift_disk_write_raw() writes such a
 * stream into a local image of any format.
 *
 * Returns: (transfer full): the stream, or NULL with @error set.
 *
 * Since: ABI 1.4 (symbol version VMSHIFT_SDK_1.4)
 */
GInputStream *vmshift_job_open_source_disk(VmshiftJob *job, const char *disk_id, guint64 *capacity,
                                           GError **error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(VmshiftJob, vmshift_job_unref)

G_END_DECLS

#endif /* VMSHIFT_JOB_H */
