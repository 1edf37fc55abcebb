/*
 * vmshift SDK: a QEMU Machine Protocol (QMP) client on json-c.
 *
 * Include this header on its own: #include <vmshift/qmp.h>
 * (it includes <vmshift/vmshift.h> and <json-c/json.h>).
 *
 * QMP is QEMU's JSON monitor protocol: the server greets with
 * {"QMP": {"version": …, "capabilities": […]}}, the client leaves
 * negotiation mode with "qmp_capabilities", then sends
 * {"execute": CMD, "arguments": {…}, "id": ID} and gets
 * {"return": …, "id": ID} or {"error": {"class": …, "desc": …}, "id": ID}.
 * Between replies the server sends asynchronous events
 * {"event": NAME, "data": {…}, "timestamp": {"seconds": S, "microseconds": U}}
 * (MIGRATION, MIGRATION_PASS, JOB_STATUS_CHANGE, BLOCK_JOB_READY,
 * BLOCK_JOB_COMPLETED, BLOCK_JOB_CANCELLED, BLOCK_JOB_ERROR, STOP, RESUME,
 * SHUTDOWN, …).
 *
 * This client:
 *  - connects to "unix:PATH", a plain absolute PATH (a unix socket) or
 *    "tcp:HOST:PORT", or adopts a connected socket (vmshift_qmp_new_for_fd()),
 *    reads the greeting and negotiates capabilities before returning;
 *  - sends each command with a fresh id and a timeout, and matches the reply
 *    by id (a late reply to a command that timed out is discarded);
 *  - queues every event that arrives while it waits, calls the event
 *    function set with vmshift_qmp_set_event_func() as each is read, and
 *    lets the caller take them in order (vmshift_qmp_next_event()) or wait
 *    for one by name (vmshift_qmp_wait_event());
 *  - reassembles messages of any size from any number of reads (up to
 *    VMSHIFT_QMP_MAX_MESSAGE bytes);
 *  - turns every failure into one GError line in the VMSHIFT_ERROR domain
 *    that names the peer: VMSHIFT_ERROR_CONNECTION (cannot connect, closed,
 *    closed in the middle of a message), VMSHIFT_ERROR_PROTOCOL (malformed
 *    JSON, a message that is not a QMP message, a reply to the wrong id),
 *    VMSHIFT_ERROR_TIMEOUT, and for error replies a code derived from the
 *    QMP error class (CommandNotFound → VMSHIFT_ERROR_NOT_SUPPORTED,
 *    DeviceNotFound → VMSHIFT_ERROR_NOT_FOUND, others → VMSHIFT_ERROR_FAILED)
 *    with the class kept for vmshift_qmp_get_last_error_class();
 *  - after a connection or protocol error the handle is broken: every later
 *    call fails at once with the first error's message;
 *  - honours a GCancellable (vmshift_qmp_set_cancellable()): a blocked call
 *    returns G_IO_ERROR_CANCELLED.
 *
 * Threads: a VmshiftQmp may be used by one thread at a time. The event
 * function runs on the thread that is reading.
 *
 * Ownership of json-c objects: arguments passed in are taken over
 * ("transfer full"); returned objects belong to the caller, who drops them
 * with json_object_put().
 */
#ifndef VMSHIFT_QMP_H
#define VMSHIFT_QMP_H

#include <vmshift/vmshift.h>
#include <json-c/json.h>
#include <gio/gio.h>

G_BEGIN_DECLS

/**
 * VMSHIFT_QMP_MAX_MESSAGE:
 *
 * The largest QMP message the client accepts (64 MiB); a larger one is a
 * protocol error.
 */
#define VMSHIFT_QMP_MAX_MESSAGE (64u * 1024u * 1024u)

/**
 * VMSHIFT_QMP_DEFAULT_TIMEOUT_MS:
 *
 * The timeout vmshift_qmp_connect() uses for connecting and the greeting
 * when it is given 0.
 */
#define VMSHIFT_QMP_DEFAULT_TIMEOUT_MS 10000u

/**
 * VmshiftQmp:
 *
 * An open QMP connection.
 */
typedef struct _VmshiftQmp VmshiftQmp;

/**
 * VmshiftQmpEvent:
 * @name: the event's name ("MIGRATION", "BLOCK_JOB_READY", …).
 * @data: (nullable): its "data" member, or NULL when it had none.
 * @timestamp_us: the server's timestamp in microseconds since the epoch,
 *   or 0 when the event carried none.
 *
 * An asynchronous QMP event. Free with vmshift_qmp_event_free().
 */
typedef struct {
    char *name;
    json_object *data;
    gint64 timestamp_us;
} VmshiftQmpEvent;

/** vmshift_qmp_event_free: frees @event (NULL is ignored). */
void vmshift_qmp_event_free(VmshiftQmpEvent *event);

/**
 * vmshift_qmp_event_get_string:
 * @event: an event
 * @key: a member of the event's data
 *
 * Returns: (transfer none): the string value of data[@key], or NULL when
 *   there is no such string member.
 */
const char *vmshift_qmp_event_get_string(const VmshiftQmpEvent *event, const char *key);

/**
 * VmshiftQmpEventFunc:
 * @qmp: the connection
 * @event: (transfer none): the event just read
 * @user_data: the caller's data
 *
 * Called for every event as it is read, before it is queued. It must not
 * call back into @qmp.
 */
typedef void (*VmshiftQmpEventFunc)(VmshiftQmp *qmp, const VmshiftQmpEvent *event,
                                    gpointer user_data);

/**
 * VmshiftQmpEventMatch:
 * @event: (transfer none): a queued or newly read event
 * @user_data: the caller's data
 *
 * Returns: TRUE when @event is the one vmshift_qmp_wait_event() waits for.
 */
typedef gboolean (*VmshiftQmpEventMatch)(const VmshiftQmpEvent *event, gpointer user_data);

/**
 * vmshift_qmp_connect:
 * @address: "unix:/run/vm.qmp", "/run/vm.qmp" or "tcp:127.0.0.1:4444"
 * @timeout_ms: timeout for connecting, the greeting and qmp_capabilities;
 *   0 means VMSHIFT_QMP_DEFAULT_TIMEOUT_MS
 * @cancellable: (nullable): cancels the connection attempt; it is also
 *   kept as with vmshift_qmp_set_cancellable()
 * @error: return location for an error
 *
 * Connects, reads the greeting and negotiates capabilities.
 *
 * Returns: (transfer full): the connection, or NULL with @error set
 *   (VMSHIFT_ERROR_CONNECTION, _PROTOCOL, _TIMEOUT, _INVALID_ARGUMENT for a
 *   malformed address).
 */
VmshiftQmp *vmshift_qmp_connect(const char *address, guint timeout_ms, GCancellable *cancellable,
                                GError **error);

/**
 * vmshift_qmp_new_for_fd:
 * @fd: a connected stream socket; the connection takes it over and closes
 *   it, also on failure
 * @peer: a name for the peer, used in every message (e.g. the socket path)
 * @timeout_ms: as for vmshift_qmp_connect()
 * @cancellable: (nullable): as for vmshift_qmp_connect()
 * @error: return location for an error
 *
 * As vmshift_qmp_connect() for a socket the caller connected itself (a
 * socketpair in tests, a socket handed over by a supervisor).
 *
 * Returns: (transfer full): the connection, or NULL with @error set.
 */
VmshiftQmp *vmshift_qmp_new_for_fd(int fd, const char *peer, guint timeout_ms,
                                   GCancellable *cancellable, GError **error);

/** vmshift_qmp_free: closes the connection and frees it (NULL is ignored). */
void vmshift_qmp_free(VmshiftQmp *qmp);

/**
 * vmshift_qmp_get_peer:
 *
 * Returns: (transfer none): the peer's name as used in messages.
 */
const char *vmshift_qmp_get_peer(VmshiftQmp *qmp);

/**
 * vmshift_qmp_get_version:
 * @qmp: the connection
 * @major: (out) (optional): QEMU's major version
 * @minor: (out) (optional): minor version
 * @micro: (out) (optional): micro version
 *
 * The version the greeting announced.
 *
 * Returns: (transfer none) (nullable): the version as "7.2.22", or NULL when
 *   the greeting carried none.
 */
const char *vmshift_qmp_get_version(VmshiftQmp *qmp, int *major, int *minor, int *micro);

/**
 * vmshift_qmp_set_cancellable:
 * @qmp: the connection
 * @cancellable: (nullable): from now on, a blocked call returns
 *   G_IO_ERROR_CANCELLED when this is cancelled; NULL removes it
 *
 * A cancelled wait leaves the connection usable: a reply that arrives later
 * is discarded by its id.
 */
void vmshift_qmp_set_cancellable(VmshiftQmp *qmp, GCancellable *cancellable);

/**
 * vmshift_qmp_set_event_func:
 * @qmp: the connection
 * @func: (nullable): called for each event as it is read
 * @user_data: passed to @func
 */
void vmshift_qmp_set_event_func(VmshiftQmp *qmp, VmshiftQmpEventFunc func, gpointer user_data);

/**
 * vmshift_qmp_execute:
 * @qmp: the connection
 * @command: the command's name ("query-status")
 * @arguments: (transfer full) (nullable): a JSON object, or NULL for none
 * @timeout_ms: how long to wait for the reply; 0 means wait forever
 *   (cancellation still applies)
 * @error: return location for an error
 *
 * Sends @command and waits for its reply, queueing the events that arrive
 * meanwhile.
 *
 * Returns: (transfer full): the reply's "return" value (often an empty
 *   object), or NULL with @error set. An error reply gives
 *   "QMP command 'CMD' failed on PEER: DESC" with the code described at the
 *   top of this file.
 */
json_object *vmshift_qmp_execute(VmshiftQmp *qmp, const char *command, json_object *arguments,
                                 guint timeout_ms, GError **error);

/**
 * vmshift_qmp_execute_simple:
 *
 * As vmshift_qmp_execute(), for commands whose return value does not
 * matter.
 *
 * Returns: TRUE on a "return" reply.
 */
gboolean vmshift_qmp_execute_simple(VmshiftQmp *qmp, const char *command, json_object *arguments,
                                    guint timeout_ms, GError **error);

/**
 * vmshift_qmp_get_last_error_class:
 *
 * Returns: (transfer none) (nullable): the QMP error class ("GenericError",
 *   "CommandNotFound", "DeviceNotFound", …) of the last error reply, or NULL
 *   when the last command succeeded or failed otherwise.
 */
const char *vmshift_qmp_get_last_error_class(VmshiftQmp *qmp);

/**
 * vmshift_qmp_next_event:
 * @qmp: the connection
 * @timeout_ms: how long to wait when no event is queued (0: do not wait,
 *   only take what is queued or already readable)
 * @error: return location for an error
 *
 * Returns: (transfer full) (nullable): the oldest queued event; NULL without
 *   an error when none came within @timeout_ms; NULL with @error set when
 *   the connection failed or was cancelled.
 */
VmshiftQmpEvent *vmshift_qmp_next_event(VmshiftQmp *qmp, guint timeout_ms, GError **error);

/**
 * vmshift_qmp_wait_event:
 * @qmp: the connection
 * @name: (nullable): the event name to wait for; NULL for any name
 * @match: (nullable): a further test of the event
 * @user_data: passed to @match
 * @timeout_ms: how long to wait; 0 means forever (cancellation applies)
 * @error: return location for an error
 *
 * Takes the first queued event called @name that @match accepts, reading
 * more when none is queued. Other events stay queued, in order.
 *
 * Returns: (transfer full): the event, or NULL with @error set
 *   (VMSHIFT_ERROR_TIMEOUT "no NAME event from PEER within N ms").
 */
VmshiftQmpEvent *vmshift_qmp_wait_event(VmshiftQmp *qmp, const char *name,
                                        VmshiftQmpEventMatch match, gpointer user_data,
                                        guint timeout_ms, GError **error);

/**
 * vmshift_qmp_pending_events:
 *
 * Returns: the number of queued events.
 */
guint vmshift_qmp_pending_events(VmshiftQmp *qmp);

/** vmshift_qmp_clear_events: drops every queued event. */
void vmshift_qmp_clear_events(VmshiftQmp *qmp);

/**
 * vmshift_qmp_is_broken:
 *
 * Returns: TRUE after a connection or protocol error; the handle can then
 *   only be freed.
 */
gboolean vmshift_qmp_is_broken(VmshiftQmp *qmp);

/**
 * vmshift_json_get_string / _int / _bool:
 * @obj: (nullable): a JSON object
 * @path: member names separated by '/', e.g. "ram/transferred"
 *
 * Helpers for reading replies. They return NULL / @fallback when a member on
 * the path is missing or has another type.
 */
const char *vmshift_json_get_string(json_object *obj, const char *path);
gint64 vmshift_json_get_int(json_object *obj, const char *path, gint64 fallback);
gboolean vmshift_json_get_bool(json_object *obj, const char *path, gboolean fallback);

/**
 * vmshift_json_get:
 *
 * Returns: (transfer none) (nullable): the member at @path, of any type.
 */
json_object *vmshift_json_get(json_object *obj, const char *path);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(VmshiftQmp, vmshift_qmp_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(VmshiftQmpEvent, vmshift_qmp_event_free)

G_END_DECLS

#endif /* VMSHIFT_QMP_H */
