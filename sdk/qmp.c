/* vmshift SDK: QMP client on json-c. See <vmshift/qmp.h>. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <vmshift/qmp.h>

#include "sdk-private.h"

/* json-c has no GLib cleanup of its own (json_object_put's result, the
 * "freed" flag, is of no use here). */
G_DEFINE_AUTOPTR_CLEANUP_FUNC(json_object, json_object_put)

#define QMP_READ_CHUNK 65536
#define QMP_MAX_QUEUED_EVENTS 4096

struct _VmshiftQmp {
    int fd;
    char *peer;
    json_tokener *tok;
    /* bytes read but not yet fed to the tokener */
    char *rbuf;
    gsize rpos, rlen;
    /* bytes of the message being assembled; did it start (non-blank)? */
    gsize msg_bytes;
    gboolean msg_started;
    /* lexical state of the bytes consumed so far (for scan_quotes) */
    gboolean in_string, escaped;
    GQueue events;
    guint dropped_events;
    GError *broken;
    guint64 next_id;
    GCancellable *cancellable;
    VmshiftQmpEventFunc event_func;
    gpointer event_data;
    char *version;
    int vmajor, vminor, vmicro;
    char *last_error_class;
};

typedef enum { READ_OK, READ_TIMEOUT, READ_FAILED } ReadResult;

static gint64
deadline_for(guint timeout_ms)
{
    return timeout_ms ? g_get_monotonic_time() + (gint64)timeout_ms * 1000 : 0;
}

/* A short, printable excerpt of untrusted bytes for error messages. */
static char *
excerpt(const char *data, gsize len)
{
    GString *s = g_string_new(NULL);
    gsize n = MIN(len, 40);
    for (gsize i = 0; i < n; i++) {
        unsigned char c = (unsigned char)data[i];
        if (c >= 0x20 && c < 0x7f && c != '\'')
            g_string_append_c(s, (char)c);
        else
            g_string_append_printf(s, "\\x%02x", c);
    }
    if (len > n)
        g_string_append(s, "...");
    return g_string_free(s, FALSE);
}

/* One line: newlines and control characters become spaces. */
static char *
one_line(const char *text)
{
    char *s = g_strdup(text ? text : "");
    for (char *p = s; *p; p++)
        if ((unsigned char)*p < 0x20)
            *p = ' ';
    g_strstrip(s);
    return s;
}

static void
mark_broken(VmshiftQmp *qmp, const GError *err)
{
    if (!qmp->broken)
        qmp->broken = g_error_copy(err);
}

static gboolean
check_broken(VmshiftQmp *qmp, GError **error)
{
    if (qmp->broken) {
        g_set_error(error, VMSHIFT_ERROR, qmp->broken->code,
                    "QMP connection to %s is unusable after an earlier error: %s", qmp->peer,
                    qmp->broken->message);
        return TRUE;
    }
    return FALSE;
}

static void fail_broken(VmshiftQmp *qmp, GError **error, int code, const char *format, ...)
    G_GNUC_PRINTF(4, 5);

static void
fail_broken(VmshiftQmp *qmp, GError **error, int code, const char *format, ...)
{
    va_list ap;
    va_start(ap, format);
    char *msg = g_strdup_vprintf(format, ap);
    va_end(ap);
    GError *err = g_error_new_literal(VMSHIFT_ERROR, code, msg);
    g_free(msg);
    mark_broken(qmp, err);
    g_propagate_error(error, err);
}

/*
 * Waits until @fd is ready for @events, the deadline passes (READ_TIMEOUT)
 * or the cancellable fires (READ_FAILED with G_IO_ERROR_CANCELLED).
 */
static ReadResult
wait_fd(VmshiftQmp *qmp, short events, gint64 deadline, GError **error)
{
    for (;;) {
        if (qmp->cancellable && g_cancellable_set_error_if_cancelled(qmp->cancellable, error))
            return READ_FAILED;
        struct pollfd pfd[2] = { { .fd = qmp->fd, .events = events } };
        nfds_t n = 1;
        gboolean have_cancel_fd = FALSE;
        GPollFD gpfd;
        if (qmp->cancellable && g_cancellable_make_pollfd(qmp->cancellable, &gpfd)) {
            pfd[1].fd = gpfd.fd;
            pfd[1].events = POLLIN;
            n = 2;
            have_cancel_fd = TRUE;
        }
        int timeout = -1;
        if (deadline) {
            gint64 left = deadline - g_get_monotonic_time();
            if (left <= 0)
                timeout = 0;
            else
                timeout = (int)MIN((left + 999) / 1000, G_MAXINT);
        }
        int rc = poll(pfd, n, timeout);
        int saved = errno;
        if (have_cancel_fd)
            g_cancellable_release_fd(qmp->cancellable);
        if (rc < 0) {
            if (saved == EINTR)
                continue;
            fail_broken(qmp, error, VMSHIFT_ERROR_CONNECTION,
                        "QMP connection to %s: poll failed: %s", qmp->peer, g_strerror(saved));
            return READ_FAILED;
        }
        if (rc == 0) {
            if (deadline && g_get_monotonic_time() >= deadline)
                return READ_TIMEOUT;
            continue;
        }
        if (n == 2 && pfd[1].revents)
            continue; /* re-checked at the top */
        if (pfd[0].revents)
            return READ_OK;
    }
}

static void
queue_event(VmshiftQmp *qmp, VmshiftQmpEvent *ev)
{
    if (qmp->event_func)
        qmp->event_func(qmp, ev, qmp->event_data);
    if (g_queue_get_length(&qmp->events) >= QMP_MAX_QUEUED_EVENTS) {
        vmshift_qmp_event_free(g_queue_pop_head(&qmp->events));
        if (qmp->dropped_events++ == 0)
            g_debug("QMP %s: event queue full, dropping the oldest events", qmp->peer);
    }
    g_queue_push_tail(&qmp->events, ev);
}

static VmshiftQmpEvent *
event_from_message(json_object *msg)
{
    json_object *name = NULL, *data = NULL, *ts = NULL;
    if (!json_object_object_get_ex(msg, "event", &name)
        || !json_object_is_type(name, json_type_string))
        return NULL;
    VmshiftQmpEvent *ev = g_new0(VmshiftQmpEvent, 1);
    ev->name = g_strdup(json_object_get_string(name));
    if (json_object_object_get_ex(msg, "data", &data) && data)
        ev->data = json_object_get(data);
    if (json_object_object_get_ex(msg, "timestamp", &ts)
        && json_object_is_type(ts, json_type_object)) {
        gint64 s = vmshift_json_get_int(ts, "seconds", 0);
        gint64 us = vmshift_json_get_int(ts, "microseconds", 0);
        if (s > 0)
            ev->timestamp_us = s * G_USEC_PER_SEC + MAX(us, 0);
    }
    return ev;
}

static gboolean
is_blank(const char *p, gsize n)
{
    for (gsize i = 0; i < n; i++)
        if (!g_ascii_isspace(p[i]))
            return FALSE;
    return TRUE;
}

/*
 * json-c accepts single-quoted strings even in strict mode; QMP is JSON, so
 * a quote outside a string is refused here. Tracks string state across
 * reads. Returns the offset of the offending quote, or -1.
 */
static gssize
scan_quotes(VmshiftQmp *qmp, const char *p, gsize n)
{
    for (gsize i = 0; i < n; i++) {
        char c = p[i];
        if (qmp->in_string) {
            if (qmp->escaped)
                qmp->escaped = FALSE;
            else if (c == '\\')
                qmp->escaped = TRUE;
            else if (c == '"')
                qmp->in_string = FALSE;
        } else if (c == '"') {
            qmp->in_string = TRUE;
        } else if (c == '\'') {
            return (gssize)i;
        }
    }
    return -1;
}

/*
 * Reads the next complete JSON message. READ_OK with *out set; READ_TIMEOUT
 * when @deadline passed (no error set); READ_FAILED with @error set.
 */
/* QMP is JSON: a single-quoted string (which json-c would accept) breaks
 * the connection like any other malformed message. */
static ReadResult
fail_single_quote(VmshiftQmp *qmp, GError **error)
{
    fail_broken(qmp, error, VMSHIFT_ERROR_PROTOCOL,
                "malformed JSON from QMP peer %s: single-quoted string", qmp->peer);
    return READ_FAILED;
}

static ReadResult
read_message(VmshiftQmp *qmp, gint64 deadline, json_object **out, GError **error)
{
    *out = NULL;
    if (check_broken(qmp, error))
        return READ_FAILED;
    for (;;) {
        if (qmp->rpos < qmp->rlen) {
            const char *p = qmp->rbuf + qmp->rpos;
            gsize n = qmp->rlen - qmp->rpos;
            int feed = (int)MIN(n, (gsize)G_MAXINT);
            json_object *obj = json_tokener_parse_ex(qmp->tok, p, feed);
            enum json_tokener_error jerr = json_tokener_get_error(qmp->tok);
            if (obj) {
#if defined(JSON_C_VERSION_NUM) && JSON_C_VERSION_NUM >= ((0 << 16) | (15 << 8))
                gsize used = json_tokener_get_parse_end(qmp->tok);
#else
                gsize used = (gsize)qmp->tok->char_offset;
#endif
                if (used == 0 || used > n)
                    used = n;
                gssize q = scan_quotes(qmp, p, used);
                if (q >= 0) {
                    json_object_put(obj);
                    return fail_single_quote(qmp, error);
                }
                qmp->in_string = qmp->escaped = FALSE;
                qmp->rpos += used;
                qmp->msg_bytes = 0;
                qmp->msg_started = FALSE;
                json_tokener_reset(qmp->tok);
                if (!json_object_is_type(obj, json_type_object)) {
                    const char *text = json_object_to_json_string(obj);
                    char *ex = excerpt(text, strlen(text));
                    fail_broken(qmp, error, VMSHIFT_ERROR_PROTOCOL,
                                "QMP peer %s sent a JSON %s, not a QMP message: '%s'", qmp->peer,
                                json_type_to_name(json_object_get_type(obj)), ex);
                    g_free(ex);
                    json_object_put(obj);
                    return READ_FAILED;
                }
                *out = obj;
                return READ_OK;
            }
            if (jerr == json_tokener_continue) {
                if (scan_quotes(qmp, p, n) >= 0)
                    return fail_single_quote(qmp, error);
                if (!qmp->msg_started && !is_blank(p, n))
                    qmp->msg_started = TRUE;
                if (qmp->msg_started)
                    qmp->msg_bytes += n;
                qmp->rpos = qmp->rlen;
                if (qmp->msg_bytes > VMSHIFT_QMP_MAX_MESSAGE) {
                    fail_broken(qmp, error, VMSHIFT_ERROR_PROTOCOL,
                                "QMP peer %s sent a message larger than %u bytes", qmp->peer,
                                VMSHIFT_QMP_MAX_MESSAGE);
                    return READ_FAILED;
                }
            } else {
#if defined(JSON_C_VERSION_NUM) && JSON_C_VERSION_NUM >= ((0 << 16) | (15 << 8))
                gsize at = json_tokener_get_parse_end(qmp->tok);
#else
                gsize at = (gsize)qmp->tok->char_offset;
#endif
                gsize from = at > 20 ? at - 20 : 0;
                char *ex = excerpt(p + MIN(from, n), n - MIN(from, n));
                fail_broken(qmp, error, VMSHIFT_ERROR_PROTOCOL,
                            "malformed JSON from QMP peer %s: %s near '%s'", qmp->peer,
                            json_tokener_error_desc(jerr), ex);
                g_free(ex);
                return READ_FAILED;
            }
        }

        /* need more bytes */
        ReadResult wr = wait_fd(qmp, POLLIN, deadline, error);
        if (wr != READ_OK)
            return wr;
        ssize_t got;
        do {
            got = recv(qmp->fd, qmp->rbuf, QMP_READ_CHUNK, MSG_DONTWAIT);
        } while (got < 0 && errno == EINTR);
        if (got < 0) {
            int saved = errno;
            if (saved == EAGAIN || saved == EWOULDBLOCK)
                continue;
            fail_broken(qmp, error, VMSHIFT_ERROR_CONNECTION,
                        "QMP connection to %s failed while reading: %s", qmp->peer,
                        g_strerror(saved));
            return READ_FAILED;
        }
        if (got == 0) {
            if (qmp->msg_started)
                fail_broken(qmp, error, VMSHIFT_ERROR_CONNECTION,
                            "QMP connection to %s closed in the middle of a message "
                            "(%" G_GSIZE_FORMAT " bytes of it received)",
                            qmp->peer, qmp->msg_bytes);
            else
                fail_broken(qmp, error, VMSHIFT_ERROR_CONNECTION,
                            "QMP connection to %s closed by the peer", qmp->peer);
            return READ_FAILED;
        }
        qmp->rpos = 0;
        qmp->rlen = (gsize)got;
    }
}

/*
 * Reads one message and, if it is an event, queues it. Returns READ_OK with
 * *reply set to a non-event message, or with *reply NULL after an event.
 */
static ReadResult
read_and_dispatch(VmshiftQmp *qmp, gint64 deadline, json_object **reply, GError **error)
{
    json_object *msg = NULL;
    *reply = NULL;
    ReadResult r = read_message(qmp, deadline, &msg, error);
    if (r != READ_OK)
        return r;
    if (json_object_object_get_ex(msg, "event", NULL)) {
        VmshiftQmpEvent *ev = event_from_message(msg);
        if (!ev) {
            const char *text = json_object_to_json_string(msg);
            char *ex = excerpt(text, strlen(text));
            fail_broken(qmp, error, VMSHIFT_ERROR_PROTOCOL,
                        "QMP peer %s sent an event without a name: '%s'", qmp->peer, ex);
            g_free(ex);
            json_object_put(msg);
            return READ_FAILED;
        }
        queue_event(qmp, ev);
        json_object_put(msg);
        return READ_OK;
    }
    *reply = msg;
    return READ_OK;
}

static gboolean
write_all(VmshiftQmp *qmp, const char *data, gsize len, gint64 deadline, const char *what,
          GError **error)
{
    gsize off = 0;
    while (off < len) {
        ssize_t n = send(qmp->fd, data + off, len - off, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0) {
            int saved = errno;
            if (saved == EINTR)
                continue;
            if (saved == EAGAIN || saved == EWOULDBLOCK) {
                ReadResult wr = wait_fd(qmp, POLLOUT, deadline, error);
                if (wr == READ_TIMEOUT) {
                    /* a partly written command leaves the stream unusable */
                    fail_broken(qmp, error, VMSHIFT_ERROR_TIMEOUT,
                                "QMP command '%s' to %s: timed out while sending", what, qmp->peer);
                    return FALSE;
                }
                if (wr == READ_FAILED) {
                    if (off > 0 && error && *error
                        && g_error_matches(*error, G_IO_ERROR, G_IO_ERROR_CANCELLED)) {
                        GError *e = g_error_new(VMSHIFT_ERROR, VMSHIFT_ERROR_CONNECTION,
                                                "QMP command '%s' to %s cancelled "
                                                "half-sent",
                                                what, qmp->peer);
                        mark_broken(qmp, e);
                        g_error_free(e);
                    }
                    return FALSE;
                }
                continue;
            }
            fail_broken(qmp, error, VMSHIFT_ERROR_CONNECTION,
                        "QMP connection to %s failed while sending '%s': %s", qmp->peer, what,
                        g_strerror(saved));
            return FALSE;
        }
        off += (gsize)n;
    }
    return TRUE;
}

static int
error_code_for_class(const char *klass)
{
    if (g_strcmp0(klass, "CommandNotFound") == 0)
        return VMSHIFT_ERROR_NOT_SUPPORTED;
    if (g_strcmp0(klass, "DeviceNotFound") == 0)
        return VMSHIFT_ERROR_NOT_FOUND;
    return VMSHIFT_ERROR_FAILED;
}

static gboolean
id_is_ours_and_old(VmshiftQmp *qmp, const char *id)
{
    if (!g_str_has_prefix(id, "vmshift-"))
        return FALSE;
    guint64 n = g_ascii_strtoull(id + 8, NULL, 10);
    return n > 0 && n < qmp->next_id;
}

VMSHIFT_API json_object *
vmshift_qmp_execute(VmshiftQmp *qmp, const char *command, json_object *arguments, guint timeout_ms,
                    GError **error)
{
    g_return_val_if_fail(qmp != NULL, NULL);
    g_return_val_if_fail(command != NULL, NULL);

    g_clear_pointer(&qmp->last_error_class, g_free);
    if (check_broken(qmp, error)) {
        if (arguments)
            json_object_put(arguments);
        return NULL;
    }
    if (arguments && !json_object_is_type(arguments, json_type_object)) {
        json_object_put(arguments);
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_INVALID_ARGUMENT,
                    "QMP command '%s': arguments must be a JSON object", command);
        return NULL;
    }

    g_autofree char *id = g_strdup_printf("vmshift-%" G_GUINT64_FORMAT, qmp->next_id++);
    json_object *req = json_object_new_object();
    json_object_object_add(req, "execute", json_object_new_string(command));
    if (arguments)
        json_object_object_add(req, "arguments", arguments);
    json_object_object_add(req, "id", json_object_new_string(id));
    const char *text = json_object_to_json_string_ext(req, JSON_C_TO_STRING_PLAIN);
    g_autofree char *line = g_strconcat(text, "\n", NULL);
    json_object_put(req);

    gint64 deadline = deadline_for(timeout_ms);
    if (!write_all(qmp, line, strlen(line), deadline, command, error))
        return NULL;

    for (;;) {
        g_autoptr(json_object) msg = NULL;
        GError *local = NULL;
        ReadResult r = read_and_dispatch(qmp, deadline, &msg, &local);
        if (r == READ_TIMEOUT) {
            g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_TIMEOUT,
                        "QMP command '%s' on %s timed out after %u ms", command, qmp->peer,
                        timeout_ms);
            return NULL;
        }
        if (r == READ_FAILED) {
            if (local->domain == VMSHIFT_ERROR
                && !g_str_has_prefix(local->message, "QMP connection to ")
                && local->code == VMSHIFT_ERROR_CONNECTION)
                g_prefix_error(&local, "QMP command '%s': ", command);
            g_propagate_error(error, local);
            return NULL;
        }
        if (!msg)
            continue; /* an event, queued */

        json_object *jid = NULL;
        if (json_object_object_get_ex(msg, "id", &jid)) {
            const char *rid = json_object_get_string(jid);
            if (g_strcmp0(rid, id) != 0) {
                if (rid && id_is_ours_and_old(qmp, rid)) {
                    g_debug("QMP %s: discarding late reply to %s", qmp->peer, rid);
                    continue;
                }
                g_autofree char *ex = excerpt(rid ? rid : "", rid ? strlen(rid) : 0);
                fail_broken(qmp, error, VMSHIFT_ERROR_PROTOCOL,
                            "QMP peer %s answered '%s' with an unknown id '%s'", qmp->peer, command,
                            ex);
                return NULL;
            }
        }
        /* A reply without an id is QEMU's answer to a request it could not
         * parse far enough to see the id: with one command in flight it is
         * ours. */
        json_object *ret = NULL, *err = NULL;
        if (json_object_object_get_ex(msg, "return", &ret))
            return ret ? json_object_get(ret) : json_object_new_object();
        if (json_object_object_get_ex(msg, "error", &err)
            && json_object_is_type(err, json_type_object)) {
            const char *klass = vmshift_json_get_string(err, "class");
            const char *desc = vmshift_json_get_string(err, "desc");
            g_autofree char *d = one_line(desc ? desc : "(no description)");
            qmp->last_error_class = g_strdup(klass ? klass : "GenericError");
            g_set_error(error, VMSHIFT_ERROR, error_code_for_class(klass),
                        "QMP command '%s' failed on %s: %s", command, qmp->peer, d);
            return NULL;
        }
        if (json_object_object_get_ex(msg, "QMP", NULL)) {
            fail_broken(qmp, error, VMSHIFT_ERROR_PROTOCOL,
                        "QMP peer %s sent a second greeting instead of answering '%s'", qmp->peer,
                        command);
            return NULL;
        }
        const char *mt = json_object_to_json_string(msg);
        g_autofree char *ex = excerpt(mt, strlen(mt));
        fail_broken(qmp, error, VMSHIFT_ERROR_PROTOCOL,
                    "QMP peer %s sent an unexpected message while '%s' ran: '%s'", qmp->peer,
                    command, ex);
        return NULL;
    }
}

VMSHIFT_API gboolean
vmshift_qmp_execute_simple(VmshiftQmp *qmp, const char *command, json_object *arguments,
                           guint timeout_ms, GError **error)
{
    json_object *r = vmshift_qmp_execute(qmp, command, arguments, timeout_ms, error);
    if (!r)
        return FALSE;
    json_object_put(r);
    return TRUE;
}

static gboolean
handshake(VmshiftQmp *qmp, guint timeout_ms, GError **error)
{
    gint64 deadline = deadline_for(timeout_ms);
    json_object *msg = NULL;
    GError *local = NULL;
    ReadResult r = read_and_dispatch(qmp, deadline, &msg, &local);
    if (r == READ_TIMEOUT) {
        fail_broken(qmp, error, VMSHIFT_ERROR_TIMEOUT, "QMP peer %s sent no greeting within %u ms",
                    qmp->peer, timeout_ms);
        return FALSE;
    }
    if (r == READ_FAILED) {
        g_propagate_prefixed_error(error, local, "QMP greeting: ");
        return FALSE;
    }
    json_object *qmpobj = NULL;
    if (!msg || !json_object_object_get_ex(msg, "QMP", &qmpobj)
        || !json_object_is_type(qmpobj, json_type_object)) {
        const char *t = msg ? json_object_to_json_string(msg) : "(an event)";
        char *ex = excerpt(t, strlen(t));
        fail_broken(qmp, error, VMSHIFT_ERROR_PROTOCOL,
                    "QMP peer %s did not start with a QMP greeting: '%s'", qmp->peer, ex);
        g_free(ex);
        if (msg)
            json_object_put(msg);
        return FALSE;
    }
    json_object *qv = vmshift_json_get(qmpobj, "version/qemu");
    if (qv && json_object_is_type(qv, json_type_object)) {
        qmp->vmajor = (int)vmshift_json_get_int(qv, "major", 0);
        qmp->vminor = (int)vmshift_json_get_int(qv, "minor", 0);
        qmp->vmicro = (int)vmshift_json_get_int(qv, "micro", 0);
        qmp->version = g_strdup_printf("%d.%d.%d", qmp->vmajor, qmp->vminor, qmp->vmicro);
    }
    json_object_put(msg);

    /* events that came with the greeting stay queued */
    guint left = 0;
    if (timeout_ms) {
        gint64 l = (deadline - g_get_monotonic_time()) / 1000;
        left = (guint)CLAMP(l, 1, G_MAXUINT);
    }
    if (!vmshift_qmp_execute_simple(qmp, "qmp_capabilities", NULL, left, &local)) {
        g_propagate_error(error, local);
        return FALSE;
    }
    return TRUE;
}

VMSHIFT_API VmshiftQmp *
vmshift_qmp_new_for_fd(int fd, const char *peer, guint timeout_ms, GCancellable *cancellable,
                       GError **error)
{
    g_return_val_if_fail(fd >= 0, NULL);
    if (timeout_ms == 0)
        timeout_ms = VMSHIFT_QMP_DEFAULT_TIMEOUT_MS;
    VmshiftQmp *qmp = g_new0(VmshiftQmp, 1);
    qmp->fd = fd;
    qmp->peer = g_strdup(peer ? peer : "(unnamed peer)");
    qmp->tok = json_tokener_new_ex(64);
#ifdef JSON_TOKENER_ALLOW_TRAILING_CHARS
    /* strict JSON (no single quotes, no comments); the next message may
     * follow in the same read */
    json_tokener_set_flags(qmp->tok, JSON_TOKENER_STRICT | JSON_TOKENER_ALLOW_TRAILING_CHARS);
#endif
    qmp->rbuf = g_malloc(QMP_READ_CHUNK);
    qmp->next_id = 1;
    g_queue_init(&qmp->events);
    int fl = fcntl(fd, F_GETFD);
    if (fl >= 0)
        (void)fcntl(fd, F_SETFD, fl | FD_CLOEXEC);
    vmshift_qmp_set_cancellable(qmp, cancellable);
    if (!handshake(qmp, timeout_ms, error)) {
        vmshift_qmp_free(qmp);
        return NULL;
    }
    return qmp;
}

static int
connect_with_deadline(int fd, const struct sockaddr *sa, socklen_t salen, gint64 deadline,
                      GCancellable *cancellable, GError **error, const char *peer)
{
    int fl = fcntl(fd, F_GETFL);
    (void)fcntl(fd, F_SETFL, fl | O_NONBLOCK);
    if (connect(fd, sa, salen) == 0)
        return 0;
    if (errno != EINPROGRESS && errno != EAGAIN) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_CONNECTION,
                    "cannot connect to QMP socket %s: %s", peer, g_strerror(errno));
        return -1;
    }
    for (;;) {
        if (g_cancellable_set_error_if_cancelled(cancellable, error))
            return -1;
        gint64 left = (deadline - g_get_monotonic_time()) / 1000;
        if (left <= 0) {
            g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_TIMEOUT,
                        "cannot connect to QMP socket %s: timed out", peer);
            return -1;
        }
        struct pollfd pfd = { .fd = fd, .events = POLLOUT };
        int rc = poll(&pfd, 1, (int)MIN(left, 100));
        if (rc < 0 && errno != EINTR) {
            g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_CONNECTION,
                        "cannot connect to QMP socket %s: %s", peer, g_strerror(errno));
            return -1;
        }
        if (rc > 0) {
            int soerr = 0;
            socklen_t l = sizeof soerr;
            getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &l);
            if (soerr) {
                g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_CONNECTION,
                            "cannot connect to QMP socket %s: %s", peer, g_strerror(soerr));
                return -1;
            }
            return 0;
        }
    }
}

VMSHIFT_API VmshiftQmp *
vmshift_qmp_connect(const char *address, guint timeout_ms, GCancellable *cancellable,
                    GError **error)
{
    g_return_val_if_fail(address != NULL, NULL);
    if (timeout_ms == 0)
        timeout_ms = VMSHIFT_QMP_DEFAULT_TIMEOUT_MS;
    gint64 deadline = deadline_for(timeout_ms);

    const char *path = NULL;
    if (g_str_has_prefix(address, "unix:"))
        path = address + 5;
    else if (address[0] == '/')
        path = address;

    int fd = -1;
    if (path) {
        struct sockaddr_un sun = { .sun_family = AF_UNIX };
        if (strlen(path) >= sizeof sun.sun_path) {
            g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_INVALID_ARGUMENT,
                        "QMP socket path too long (%zu bytes, at most %zu): %s", strlen(path),
                        sizeof sun.sun_path - 1, path);
            return NULL;
        }
        strcpy(sun.sun_path, path);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0
            || connect_with_deadline(fd, (struct sockaddr *)&sun, sizeof sun, deadline, cancellable,
                                     error, path)
                   < 0) {
            if (fd < 0)
                g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_CONNECTION,
                            "cannot create a socket for %s: %s", path, g_strerror(errno));
            else
                close(fd);
            return NULL;
        }
        return vmshift_qmp_new_for_fd(fd, path, timeout_ms, cancellable, error);
    }

    if (g_str_has_prefix(address, "tcp:")) {
        const char *hp = address + 4;
        char *host = NULL;
        const char *port = NULL;
        if (hp[0] == '[') {
            const char *end = strchr(hp, ']');
            if (end && end[1] == ':') {
                host = g_strndup(hp + 1, (gsize)(end - hp - 1));
                port = end + 2;
            }
        } else {
            const char *colon = strrchr(hp, ':');
            if (colon) {
                host = g_strndup(hp, (gsize)(colon - hp));
                port = colon + 1;
            }
        }
        if (!host || !*host || !port || !*port) {
            g_free(host);
            g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_INVALID_ARGUMENT,
                        "malformed QMP address '%s' (want tcp:HOST:PORT)", address);
            return NULL;
        }
        struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM };
        struct addrinfo *res = NULL;
        int gai = getaddrinfo(host, port, &hints, &res);
        if (gai != 0) {
            g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_CONNECTION,
                        "cannot resolve QMP address %s: %s", address + 4, gai_strerror(gai));
            g_free(host);
            return NULL;
        }
        GError *last = NULL;
        for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
            fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
            if (fd < 0)
                continue;
            g_clear_error(&last);
            if (connect_with_deadline(fd, ai->ai_addr, ai->ai_addrlen, deadline, cancellable, &last,
                                      address + 4)
                == 0)
                break;
            close(fd);
            fd = -1;
        }
        freeaddrinfo(res);
        g_free(host);
        if (fd < 0) {
            if (last)
                g_propagate_error(error, last);
            else
                g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_CONNECTION,
                            "cannot connect to QMP address %s", address + 4);
            return NULL;
        }
        g_clear_error(&last);
        return vmshift_qmp_new_for_fd(fd, address + 4, timeout_ms, cancellable, error);
    }

    g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_INVALID_ARGUMENT,
                "malformed QMP address '%s' (want unix:PATH, /PATH or tcp:HOST:PORT)", address);
    return NULL;
}

VMSHIFT_API void
vmshift_qmp_free(VmshiftQmp *qmp)
{
    if (!qmp)
        return;
    if (qmp->fd >= 0)
        close(qmp->fd);
    if (qmp->tok)
        json_tokener_free(qmp->tok);
    g_queue_clear_full(&qmp->events, (GDestroyNotify)vmshift_qmp_event_free);
    g_clear_object(&qmp->cancellable);
    g_clear_error(&qmp->broken);
    g_free(qmp->rbuf);
    g_free(qmp->peer);
    g_free(qmp->version);
    g_free(qmp->last_error_class);
    g_free(qmp);
}

VMSHIFT_API const char *
vmshift_qmp_get_peer(VmshiftQmp *qmp)
{
    return qmp->peer;
}

VMSHIFT_API const char *
vmshift_qmp_get_version(VmshiftQmp *qmp, int *major, int *minor, int *micro)
{
    if (major)
        *major = qmp->vmajor;
    if (minor)
        *minor = qmp->vminor;
    if (micro)
        *micro = qmp->vmicro;
    return qmp->version;
}

VMSHIFT_API void
vmshift_qmp_set_cancellable(VmshiftQmp *qmp, GCancellable *cancellable)
{
    if (cancellable)
        g_object_ref(cancellable);
    g_clear_object(&qmp->cancellable);
    qmp->cancellable = cancellable;
}

VMSHIFT_API void
vmshift_qmp_set_event_func(VmshiftQmp *qmp, VmshiftQmpEventFunc func, gpointer user_data)
{
    qmp->event_func = func;
    qmp->event_data = user_data;
}

VMSHIFT_API const char *
vmshift_qmp_get_last_error_class(VmshiftQmp *qmp)
{
    return qmp->last_error_class;
}

/* Reads until an event is queued or the deadline passes. */
static ReadResult
read_events(VmshiftQmp *qmp, gint64 deadline, GError **error)
{
    guint before = g_queue_get_length(&qmp->events);
    for (;;) {
        json_object *msg = NULL;
        ReadResult r = read_and_dispatch(qmp, deadline, &msg, error);
        if (r != READ_OK)
            return r;
        if (msg) {
            /* a reply nobody waits for: a late one to a timed-out command */
            json_object *jid = NULL;
            const char *rid = NULL;
            if (json_object_object_get_ex(msg, "id", &jid))
                rid = json_object_get_string(jid);
            if (!(rid && id_is_ours_and_old(qmp, rid))) {
                const char *t = json_object_to_json_string(msg);
                char *ex = excerpt(t, strlen(t));
                fail_broken(qmp, error, VMSHIFT_ERROR_PROTOCOL,
                            "QMP peer %s sent an unexpected message: '%s'", qmp->peer, ex);
                g_free(ex);
                json_object_put(msg);
                return READ_FAILED;
            }
            json_object_put(msg);
        }
        if (g_queue_get_length(&qmp->events) > before
            || g_queue_get_length(&qmp->events) >= QMP_MAX_QUEUED_EVENTS)
            return READ_OK;
    }
}

VMSHIFT_API VmshiftQmpEvent *
vmshift_qmp_next_event(VmshiftQmp *qmp, guint timeout_ms, GError **error)
{
    if (g_queue_is_empty(&qmp->events)) {
        gint64 deadline = timeout_ms ? deadline_for(timeout_ms) : g_get_monotonic_time();
        ReadResult r = read_events(qmp, deadline, error);
        if (r == READ_FAILED)
            return NULL;
    }
    return g_queue_pop_head(&qmp->events);
}

VMSHIFT_API VmshiftQmpEvent *
vmshift_qmp_wait_event(VmshiftQmp *qmp, const char *name, VmshiftQmpEventMatch match,
                       gpointer user_data, guint timeout_ms, GError **error)
{
    gint64 deadline = deadline_for(timeout_ms);
    GList *scanned_to = NULL; /* last element already tested */
    for (;;) {
        GList *l = scanned_to ? scanned_to->next : qmp->events.head;
        for (; l; l = l->next) {
            VmshiftQmpEvent *ev = l->data;
            scanned_to = l;
            if ((!name || g_strcmp0(ev->name, name) == 0) && (!match || match(ev, user_data))) {
                g_queue_delete_link(&qmp->events, l);
                return ev;
            }
        }
        ReadResult r = read_events(qmp, deadline, error);
        if (r == READ_FAILED)
            return NULL;
        if (r == READ_TIMEOUT) {
            g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_TIMEOUT,
                        "no %s event from QMP peer %s within %u ms", name ? name : "matching",
                        qmp->peer, timeout_ms);
            return NULL;
        }
        /* the queue may have dropped its oldest entries: rescan */
        if (g_queue_get_length(&qmp->events) >= QMP_MAX_QUEUED_EVENTS)
            scanned_to = NULL;
    }
}

VMSHIFT_API guint
vmshift_qmp_pending_events(VmshiftQmp *qmp)
{
    return g_queue_get_length(&qmp->events);
}

VMSHIFT_API void
vmshift_qmp_clear_events(VmshiftQmp *qmp)
{
    g_queue_clear_full(&qmp->events, (GDestroyNotify)vmshift_qmp_event_free);
    g_queue_init(&qmp->events);
}

VMSHIFT_API gboolean
vmshift_qmp_is_broken(VmshiftQmp *qmp)
{
    return qmp->broken != NULL;
}

VMSHIFT_API void
vmshift_qmp_event_free(VmshiftQmpEvent *event)
{
    if (!event)
        return;
    g_free(event->name);
    if (event->data)
        json_object_put(event->data);
    g_free(event);
}

VMSHIFT_API const char *
vmshift_qmp_event_get_string(const VmshiftQmpEvent *event, const char *key)
{
    return event ? vmshift_json_get_string(event->data, key) : NULL;
}

VMSHIFT_API json_object *
vmshift_json_get(json_object *obj, const char *path)
{
    if (!obj || !path)
        return NULL;
    char **parts = g_strsplit(path, "/", -1);
    json_object *cur = obj;
    for (char **p = parts; *p && cur; p++) {
        json_object *next = NULL;
        if (!json_object_is_type(cur, json_type_object)
            || !json_object_object_get_ex(cur, *p, &next))
            cur = NULL;
        else
            cur = next;
    }
    g_strfreev(parts);
    return cur;
}

VMSHIFT_API const char *
vmshift_json_get_string(json_object *obj, const char *path)
{
    json_object *v = vmshift_json_get(obj, path);
    return v && json_object_is_type(v, json_type_string) ? json_object_get_string(v) : NULL;
}

VMSHIFT_API gint64
vmshift_json_get_int(json_object *obj, const char *path, gint64 fallback)
{
    json_object *v = vmshift_json_get(obj, path);
    if (!v || !(json_object_is_type(v, json_type_int) || json_object_is_type(v, json_type_double)))
        return fallback;
    return json_object_get_int64(v);
}

VMSHIFT_API gboolean
vmshift_json_get_bool(json_object *obj, const char *path, gboolean fallback)
{
    json_object *v = vmshift_json_get(obj, path);
    if (!v || !json_object_is_type(v, json_type_boolean))
        return fallback;
    return json_object_get_boolean(v) ? TRUE : FALSE;
}
