/* Unit tests of the SDK's QMP client (<vmshift/qmp.h>) against a scripted
 * peer on the other end of a real socket (socketpair, unix, tcp). */
#include "config.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <unistd.h>

#include <vmshift/qmp.h>

#define GREETING                                                                       \
    "{\"QMP\": {\"version\": {\"qemu\": {\"micro\": 22, \"minor\": 2, \"major\": 7}, " \
    "\"package\": \"Debian 1:7.2+dfsg-7+deb12u18\"}, \"capabilities\": [\"oob\"]}}\r\n"

typedef struct Peer Peer;
typedef void (*PeerScript)(Peer *p);

struct Peer {
    int fd;
    PeerScript script;
    GThread *thread;
    GString *in; /* bytes read, not yet consumed as lines */
    gpointer data;
};

static void
peer_send(Peer *p, const char *text)
{
    gsize len = strlen(text), off = 0;
    while (off < len) {
        ssize_t n = send(p->fd, text + off, len - off, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return; /* the client went away: the test decides */
        off += (gsize)n;
    }
}

static void peer_sendf(Peer *p, const char *fmt, ...) G_GNUC_PRINTF(2, 3);
static void
peer_sendf(Peer *p, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *s = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    peer_send(p, s);
    g_free(s);
}

/* Reads one command line; asserts its name; returns its id (owned). */
static char *
peer_expect(Peer *p, const char *command)
{
    for (;;) {
        char *nl = memchr(p->in->str, '\n', p->in->len);
        if (nl) {
            gsize linelen = (gsize)(nl - p->in->str);
            char *line = g_strndup(p->in->str, linelen);
            g_string_erase(p->in, 0, (gssize)linelen + 1);
            json_object *o = json_tokener_parse(line);
            g_assert_nonnull(o);
            g_assert_cmpstr(vmshift_json_get_string(o, "execute"), ==, command);
            char *id = g_strdup(vmshift_json_get_string(o, "id"));
            g_assert_nonnull(id);
            json_object_put(o);
            g_free(line);
            return id;
        }
        char buf[4096];
        ssize_t n = recv(p->fd, buf, sizeof buf, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return NULL;
        g_string_append_len(p->in, buf, n);
    }
}

static void
peer_handshake(Peer *p)
{
    peer_send(p, GREETING);
    char *id = peer_expect(p, "qmp_capabilities");
    g_assert_nonnull(id);
    peer_sendf(p, "{\"return\": {}, \"id\": \"%s\"}\r\n", id);
    g_free(id);
}

static gpointer
peer_thread(gpointer data)
{
    Peer *p = data;
    p->script(p);
    shutdown(p->fd, SHUT_RDWR);
    return NULL;
}

/* Starts a peer on a socketpair; returns the client's end. */
static Peer *
peer_start(PeerScript script, int *client_fd)
{
    int sv[2];
    g_assert_cmpint(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), ==, 0);
    Peer *p = g_new0(Peer, 1);
    p->fd = sv[1];
    p->script = script;
    p->in = g_string_new(NULL);
    p->thread = g_thread_new("qmp-peer", peer_thread, p);
    *client_fd = sv[0];
    return p;
}

static void
peer_join(Peer *p)
{
    g_thread_join(p->thread);
    close(p->fd);
    g_string_free(p->in, TRUE);
    g_free(p);
}

static VmshiftQmp *
client_for(PeerScript script, Peer **peer, GError **error)
{
    int fd;
    *peer = peer_start(script, &fd);
    return vmshift_qmp_new_for_fd(fd, "test-peer", 2000, NULL, error);
}

/* ---- greeting, capabilities, a command ------------------------------- */

static void
script_basic(Peer *p)
{
    peer_handshake(p);
    char *id = peer_expect(p, "query-status");
    peer_sendf(p, "{\"return\": {\"status\": \"running\", \"running\": true}, \"id\": \"%s\"}\r\n",
               id);
    g_free(id);
    id = peer_expect(p, "stop");
    peer_sendf(p, "{\"return\": {}, \"id\": \"%s\"}", id); /* no newline */
    g_free(id);
}

static void
test_basic(void)
{
    Peer *peer;
    GError *error = NULL;
    VmshiftQmp *qmp = client_for(script_basic, &peer, &error);
    g_assert_no_error(error);
    int maj, min, mic;
    g_assert_cmpstr(vmshift_qmp_get_version(qmp, &maj, &min, &mic), ==, "7.2.22");
    g_assert_cmpint(maj, ==, 7);
    g_assert_cmpint(min, ==, 2);
    g_assert_cmpint(mic, ==, 22);
    g_assert_cmpstr(vmshift_qmp_get_peer(qmp), ==, "test-peer");

    json_object *r = vmshift_qmp_execute(qmp, "query-status", NULL, 2000, &error);
    g_assert_no_error(error);
    g_assert_cmpstr(vmshift_json_get_string(r, "status"), ==, "running");
    g_assert_true(vmshift_json_get_bool(r, "running", FALSE));
    json_object_put(r);
    g_assert_true(vmshift_qmp_execute_simple(qmp, "stop", NULL, 2000, &error));
    g_assert_no_error(error);
    g_assert_false(vmshift_qmp_is_broken(qmp));
    vmshift_qmp_free(qmp);
    peer_join(peer);
}

/* ---- events while waiting for a reply ------------------------------- */

static void
script_events(Peer *p)
{
    peer_handshake(p);
    char *id = peer_expect(p, "migrate");
    peer_send(
        p,
        "{\"timestamp\": {\"seconds\": 1700000000, \"microseconds\": 5}, "
        "\"event\": \"MIGRATION\", \"data\": {\"status\": \"setup\"}}\r\n"
        "{\"event\": \"JOB_STATUS_CHANGE\", \"data\": {\"status\": \"running\", \"id\": \"j\"}}\r\n");
    peer_sendf(p,
               "{\"return\": {}, \"id\": \"%s\"}\r\n"
               "{\"event\": \"MIGRATION\", \"data\": {\"status\": \"active\"}}\r\n",
               id);
    g_free(id);
    g_usleep(50000);
    peer_send(
        p,
        "{\"event\": \"BLOCK_JOB_READY\", \"data\": {\"device\": \"mirror0\", \"type\": \"mirror\"}}\r\n");
    g_usleep(50000);
    peer_send(p, "{\"event\": \"MIGRATION\", \"data\": {\"status\": \"completed\"}}\r\n");
    /* stay open until the client is done */
    char buf[16];
    while (recv(p->fd, buf, sizeof buf, 0) > 0)
        ;
}

static void
count_events(VmshiftQmp *qmp, const VmshiftQmpEvent *ev, gpointer data)
{
    (void)qmp;
    GPtrArray *seen = data;
    g_ptr_array_add(seen, g_strdup(ev->name));
}

static gboolean
match_status(const VmshiftQmpEvent *ev, gpointer data)
{
    return g_strcmp0(vmshift_qmp_event_get_string(ev, "status"), data) == 0;
}

static void
test_events(void)
{
    Peer *peer;
    GError *error = NULL;
    VmshiftQmp *qmp = client_for(script_events, &peer, &error);
    g_assert_no_error(error);
    GPtrArray *seen = g_ptr_array_new_with_free_func(g_free);
    vmshift_qmp_set_event_func(qmp, count_events, seen);

    g_assert_true(vmshift_qmp_execute_simple(
        qmp, "migrate", json_tokener_parse("{\"uri\": \"tcp:127.0.0.1:1\"}"), 2000, &error));
    g_assert_no_error(error);
    /* the two events before the reply are queued, in order */
    g_assert_cmpuint(vmshift_qmp_pending_events(qmp), ==, 2);
    VmshiftQmpEvent *ev = vmshift_qmp_next_event(qmp, 0, &error);
    g_assert_no_error(error);
    g_assert_cmpstr(ev->name, ==, "MIGRATION");
    g_assert_cmpstr(vmshift_qmp_event_get_string(ev, "status"), ==, "setup");
    g_assert_cmpint(ev->timestamp_us, ==, 1700000000LL * G_USEC_PER_SEC + 5);
    vmshift_qmp_event_free(ev);

    /* wait by name + match skips the others and leaves them queued */
    ev = vmshift_qmp_wait_event(qmp, "MIGRATION", match_status, (gpointer) "completed", 3000,
                                &error);
    g_assert_no_error(error);
    g_assert_nonnull(ev);
    vmshift_qmp_event_free(ev);
    g_assert_cmpuint(vmshift_qmp_pending_events(qmp), ==, 3);
    ev = vmshift_qmp_wait_event(qmp, "BLOCK_JOB_READY", NULL, NULL, 1000, &error);
    g_assert_no_error(error);
    g_assert_cmpstr(vmshift_qmp_event_get_string(ev, "device"), ==, "mirror0");
    vmshift_qmp_event_free(ev);
    ev = vmshift_qmp_next_event(qmp, 0, &error);
    g_assert_cmpstr(ev->name, ==, "JOB_STATUS_CHANGE");
    vmshift_qmp_event_free(ev);
    ev = vmshift_qmp_next_event(qmp, 0, &error);
    g_assert_cmpstr(vmshift_qmp_event_get_string(ev, "status"), ==, "active");
    vmshift_qmp_event_free(ev);

    /* nothing more: NULL without an error, after the timeout */
    ev = vmshift_qmp_next_event(qmp, 100, &error);
    g_assert_no_error(error);
    g_assert_null(ev);
    /* and waiting for a named event times out with a clear error */
    ev = vmshift_qmp_wait_event(qmp, "SHUTDOWN", NULL, NULL, 100, &error);
    g_assert_null(ev);
    g_assert_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_TIMEOUT);
    g_assert_nonnull(strstr(error->message, "SHUTDOWN"));
    g_assert_nonnull(strstr(error->message, "test-peer"));
    g_clear_error(&error);

    g_assert_cmpuint(seen->len, ==, 5);
    g_assert_cmpstr(g_ptr_array_index(seen, 3), ==, "BLOCK_JOB_READY");
    g_ptr_array_unref(seen);
    vmshift_qmp_free(qmp);
    peer_join(peer);
}

/* ---- a reply bigger than one read, in small pieces ------------------- */

#define BIG (3 * 1024 * 1024 + 17)

static void
script_big(Peer *p)
{
    peer_handshake(p);
    char *id = peer_expect(p, "query-named-block-nodes");
    GString *s = g_string_new("{\"return\": [{\"node-name\": \"n\", \"blob\": \"");
    for (gsize i = 0; i < BIG; i++)
        g_string_append_c(s, (char)('a' + i % 26));
    g_string_append_printf(s, "\", \"n\": 42}], \"id\": \"%s\"}\r\n", id);
    /* odd-sized pieces with pauses, splitting tokens and the UTF-8 free text */
    gsize off = 0, piece = 1;
    while (off < s->len) {
        gsize n = MIN(piece, s->len - off);
        char *chunk = g_strndup(s->str + off, n);
        peer_send(p, chunk);
        g_free(chunk);
        off += n;
        piece = piece < 100000 ? piece * 7 + 3 : 65521;
        if (off < 200)
            g_usleep(2000);
    }
    g_string_free(s, TRUE);
    g_free(id);
}

static void
test_big_reply(void)
{
    Peer *peer;
    GError *error = NULL;
    VmshiftQmp *qmp = client_for(script_big, &peer, &error);
    g_assert_no_error(error);
    json_object *r = vmshift_qmp_execute(qmp, "query-named-block-nodes", NULL, 10000, &error);
    g_assert_no_error(error);
    g_assert_true(json_object_is_type(r, json_type_array));
    json_object *n0 = json_object_array_get_idx(r, 0);
    const char *blob = vmshift_json_get_string(n0, "blob");
    g_assert_cmpuint(strlen(blob), ==, BIG);
    g_assert_cmpint(blob[BIG - 1], ==, 'a' + (BIG - 1) % 26);
    g_assert_cmpint(vmshift_json_get_int(n0, "n", 0), ==, 42);
    json_object_put(r);
    vmshift_qmp_free(qmp);
    peer_join(peer);
}

/* ---- connection dropped mid-reply ------------------------------------ */

static void
script_drop(Peer *p)
{
    peer_handshake(p);
    char *id = peer_expect(p, "query-migrate");
    peer_sendf(p, "{\"return\": {\"status\": \"active\", \"ram\": {\"transferred\": 12");
    g_free(id);
}

static void
test_drop_mid_reply(void)
{
    Peer *peer;
    GError *error = NULL;
    VmshiftQmp *qmp = client_for(script_drop, &peer, &error);
    g_assert_no_error(error);
    json_object *r = vmshift_qmp_execute(qmp, "query-migrate", NULL, 5000, &error);
    g_assert_null(r);
    g_assert_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_CONNECTION);
    g_assert_nonnull(strstr(error->message, "test-peer"));
    g_assert_nonnull(strstr(error->message, "middle of a message"));
    g_assert_null(strchr(error->message, '\n'));
    g_clear_error(&error);
    g_assert_true(vmshift_qmp_is_broken(qmp));
    /* later calls fail at once with the first reason */
    g_assert_false(vmshift_qmp_execute_simple(qmp, "query-status", NULL, 1000, &error));
    g_assert_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_CONNECTION);
    g_assert_nonnull(strstr(error->message, "middle of a message"));
    g_clear_error(&error);
    vmshift_qmp_free(qmp);
    peer_join(peer);
}

static void
script_close_clean(Peer *p)
{
    peer_handshake(p);
    char *id = peer_expect(p, "quit");
    g_free(id);
}

static void
test_closed(void)
{
    Peer *peer;
    GError *error = NULL;
    VmshiftQmp *qmp = client_for(script_close_clean, &peer, &error);
    g_assert_no_error(error);
    g_assert_false(vmshift_qmp_execute_simple(qmp, "quit", NULL, 5000, &error));
    g_assert_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_CONNECTION);
    g_assert_nonnull(strstr(error->message, "closed by the peer"));
    g_clear_error(&error);
    vmshift_qmp_free(qmp);
    peer_join(peer);
}

/* ---- malformed JSON, non-QMP messages -------------------------------- */

static const char *bad_reply;

static void
script_bad(Peer *p)
{
    peer_handshake(p);
    char *id = peer_expect(p, "query-status");
    peer_send(p, bad_reply);
    g_free(id);
    char buf[16];
    while (recv(p->fd, buf, sizeof buf, 0) > 0)
        ;
}

static void
check_bad(const char *reply, const char *expect)
{
    Peer *peer;
    GError *error = NULL;
    bad_reply = reply;
    VmshiftQmp *qmp = client_for(script_bad, &peer, &error);
    g_assert_no_error(error);
    json_object *r = vmshift_qmp_execute(qmp, "query-status", NULL, 3000, &error);
    g_assert_null(r);
    g_assert_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_PROTOCOL);
    if (g_test_verbose())
        g_printerr("%s\n", error->message);
    g_assert_nonnull(strstr(error->message, "test-peer"));
    g_assert_nonnull(strstr(error->message, expect));
    g_assert_null(strchr(error->message, '\n'));
    g_clear_error(&error);
    g_assert_true(vmshift_qmp_is_broken(qmp));
    vmshift_qmp_free(qmp);
    peer_join(peer);
}

static void
test_malformed(void)
{
    check_bad("{\"return\": {\"status\": running}}\r\n", "malformed JSON");
    check_bad("{\"return\": {}, }\r\n", "malformed JSON");
    check_bad("{'return': {}}\r\n", "malformed JSON");
    check_bad("\x01\x02garbage\r\n", "malformed JSON");
    check_bad("[1, 2, 3]\r\n", "not a QMP message");
    check_bad("\"just a string\"\r\n", "not a QMP message");
    check_bad("{\"hello\": 1}\r\n", "unexpected message");
    check_bad("{\"event\": 5}\r\n", "event without a name");
    check_bad("{\"return\": {}, \"id\": \"someone-else\"}\r\n", "unknown id");
    check_bad(GREETING, "second greeting");
}

/* ---- error replies ---------------------------------------------------- */

static void
script_errors(Peer *p)
{
    peer_handshake(p);
    char *id = peer_expect(p, "blockdev-mirror");
    peer_sendf(p,
               "{\"id\": \"%s\", \"error\": {\"class\": \"GenericError\", "
               "\"desc\": \"Need a root block node\\nsecond line\"}}\r\n",
               id);
    g_free(id);
    id = peer_expect(p, "no-such-command");
    peer_sendf(p,
               "{\"id\": \"%s\", \"error\": {\"class\": \"CommandNotFound\", "
               "\"desc\": \"The command no-such-command has not been found\"}}\r\n",
               id);
    g_free(id);
    id = peer_expect(p, "block-job-cancel");
    peer_sendf(p,
               "{\"id\": \"%s\", \"error\": {\"class\": \"DeviceNotFound\", "
               "\"desc\": \"Block job 'x' not found\"}}\r\n",
               id);
    g_free(id);
    id = peer_expect(p, "query-status");
    peer_sendf(p, "{\"return\": {\"status\": \"paused\"}, \"id\": \"%s\"}\r\n", id);
    g_free(id);
}

static void
test_error_replies(void)
{
    Peer *peer;
    GError *error = NULL;
    VmshiftQmp *qmp = client_for(script_errors, &peer, &error);
    g_assert_no_error(error);
    g_assert_false(vmshift_qmp_execute_simple(qmp, "blockdev-mirror", NULL, 2000, &error));
    g_assert_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_FAILED);
    g_assert_cmpstr(error->message, ==,
                    "QMP command 'blockdev-mirror' failed on test-peer: "
                    "Need a root block node second line");
    g_assert_cmpstr(vmshift_qmp_get_last_error_class(qmp), ==, "GenericError");
    g_clear_error(&error);
    g_assert_false(vmshift_qmp_execute_simple(qmp, "no-such-command", NULL, 2000, &error));
    g_assert_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_NOT_SUPPORTED);
    g_clear_error(&error);
    g_assert_false(vmshift_qmp_execute_simple(
        qmp, "block-job-cancel", json_tokener_parse("{\"device\": \"x\"}"), 2000, &error));
    g_assert_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_NOT_FOUND);
    g_clear_error(&error);
    /* an error reply does not break the connection */
    g_assert_false(vmshift_qmp_is_broken(qmp));
    json_object *r = vmshift_qmp_execute(qmp, "query-status", NULL, 2000, &error);
    g_assert_no_error(error);
    g_assert_null(vmshift_qmp_get_last_error_class(qmp));
    g_assert_cmpstr(vmshift_json_get_string(r, "status"), ==, "paused");
    json_object_put(r);
    /* arguments that are not an object are refused before sending */
    g_assert_false(vmshift_qmp_execute_simple(qmp, "x", json_object_new_int(1), 100, &error));
    g_assert_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_INVALID_ARGUMENT);
    g_clear_error(&error);
    vmshift_qmp_free(qmp);
    peer_join(peer);
}

/* ---- timeouts, late replies ------------------------------------------ */

static void
script_late(Peer *p)
{
    peer_handshake(p);
    char *id1 = peer_expect(p, "query-migrate");
    /* no answer in time: the client gives up and sends the next command */
    char *id2 = peer_expect(p, "query-status");
    peer_sendf(p, "{\"return\": {\"status\": \"late\"}, \"id\": \"%s\"}\r\n", id1);
    peer_sendf(p, "{\"return\": {\"status\": \"running\"}, \"id\": \"%s\"}\r\n", id2);
    g_free(id1);
    g_free(id2);
}

static void
test_timeout_and_late_reply(void)
{
    Peer *peer;
    GError *error = NULL;
    VmshiftQmp *qmp = client_for(script_late, &peer, &error);
    g_assert_no_error(error);
    gint64 t0 = g_get_monotonic_time();
    g_assert_null(vmshift_qmp_execute(qmp, "query-migrate", NULL, 200, &error));
    g_assert_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_TIMEOUT);
    g_assert_cmpstr(error->message, ==,
                    "QMP command 'query-migrate' on test-peer timed out after 200 ms");
    g_assert_cmpint(g_get_monotonic_time() - t0, >=, 190000);
    g_clear_error(&error);
    g_assert_false(vmshift_qmp_is_broken(qmp));
    json_object *r = vmshift_qmp_execute(qmp, "query-status", NULL, 2000, &error);
    g_assert_no_error(error);
    g_assert_cmpstr(vmshift_json_get_string(r, "status"), ==, "running");
    json_object_put(r);
    vmshift_qmp_free(qmp);
    peer_join(peer);
}

/* ---- greeting problems ------------------------------------------------ */

static void
script_no_greeting(Peer *p)
{
    g_usleep(600000);
    (void)p;
}

static void
script_wrong_greeting(Peer *p)
{
    peer_send(p, "{\"return\": {}}\r\n");
}

static void
script_closed_at_once(Peer *p)
{
    (void)p;
}

static void
script_caps_refused(Peer *p)
{
    peer_send(p, GREETING);
    char *id = peer_expect(p, "qmp_capabilities");
    peer_sendf(p,
               "{\"id\": \"%s\", \"error\": {\"class\": \"CommandNotFound\", "
               "\"desc\": \"Capabilities negotiation is already complete\"}}\r\n",
               id);
    g_free(id);
}

static void
test_greeting(void)
{
    struct {
        PeerScript script;
        int code;
        const char *text;
    } cases[] = {
        { script_no_greeting, VMSHIFT_ERROR_TIMEOUT, "no greeting within" },
        { script_wrong_greeting, VMSHIFT_ERROR_PROTOCOL, "did not start with a QMP greeting" },
        { script_closed_at_once, VMSHIFT_ERROR_CONNECTION, "closed by the peer" },
        { script_caps_refused, VMSHIFT_ERROR_NOT_SUPPORTED, "qmp_capabilities" },
    };
    for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
        int fd;
        GError *error = NULL;
        Peer *peer = peer_start(cases[i].script, &fd);
        VmshiftQmp *qmp = vmshift_qmp_new_for_fd(fd, "test-peer", 300, NULL, &error);
        g_assert_null(qmp);
        g_assert_error(error, VMSHIFT_ERROR, cases[i].code);
        g_assert_nonnull(strstr(error->message, cases[i].text));
        g_assert_nonnull(strstr(error->message, "test-peer"));
        g_clear_error(&error);
        peer_join(peer);
    }
}

/* ---- cancellation ------------------------------------------------------ */

static void
script_silent(Peer *p)
{
    peer_handshake(p);
    char *id = peer_expect(p, "query-migrate");
    g_free(id);
    char buf[16];
    while (recv(p->fd, buf, sizeof buf, 0) > 0)
        ;
}

static gboolean
cancel_cb(gpointer data)
{
    g_cancellable_cancel(data);
    return G_SOURCE_REMOVE;
}

static gpointer
cancel_thread(gpointer data)
{
    g_usleep(150000);
    cancel_cb(data);
    return NULL;
}

static void
test_cancel(void)
{
    Peer *peer;
    GError *error = NULL;
    VmshiftQmp *qmp = client_for(script_silent, &peer, &error);
    g_assert_no_error(error);
    GCancellable *c = g_cancellable_new();
    vmshift_qmp_set_cancellable(qmp, c);
    GThread *t = g_thread_new("cancel", cancel_thread, c);
    gint64 t0 = g_get_monotonic_time();
    g_assert_null(vmshift_qmp_execute(qmp, "query-migrate", NULL, 0, &error));
    g_assert_error(error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
    g_assert_cmpint(g_get_monotonic_time() - t0, <, 5 * G_USEC_PER_SEC);
    g_clear_error(&error);
    g_thread_join(t);
    vmshift_qmp_set_cancellable(qmp, NULL);
    g_object_unref(c);
    vmshift_qmp_free(qmp);
    peer_join(peer);
}

/* ---- real unix and tcp sockets --------------------------------------- */

typedef struct {
    int lfd;
} Listener;

static gpointer
accept_thread(gpointer data)
{
    Listener *l = data;
    int fd = accept(l->lfd, NULL, NULL);
    g_assert_cmpint(fd, >=, 0);
    Peer p = { .fd = fd, .in = g_string_new(NULL) };
    script_basic(&p);
    close(fd);
    g_string_free(p.in, TRUE);
    return NULL;
}

static void
run_against_listener(int lfd, const char *address)
{
    Listener l = { lfd };
    GThread *t = g_thread_new("accept", accept_thread, &l);
    GError *error = NULL;
    VmshiftQmp *qmp = vmshift_qmp_connect(address, 2000, NULL, &error);
    g_assert_no_error(error);
    json_object *r = vmshift_qmp_execute(qmp, "query-status", NULL, 2000, &error);
    g_assert_no_error(error);
    json_object_put(r);
    g_assert_true(vmshift_qmp_execute_simple(qmp, "stop", NULL, 2000, &error));
    vmshift_qmp_free(qmp);
    g_thread_join(t);
}

static void
test_unix_and_tcp(void)
{
    char *dir = g_dir_make_tmp("test-qmp-XXXXXX", NULL);
    char *path = g_build_filename(dir, "qmp.sock", NULL);
    int lfd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un sun = { .sun_family = AF_UNIX };
    g_strlcpy(sun.sun_path, path, sizeof sun.sun_path);
    g_assert_cmpint(bind(lfd, (struct sockaddr *)&sun, sizeof sun), ==, 0);
    g_assert_cmpint(listen(lfd, 1), ==, 0);
    char *addr = g_strdup_printf("unix:%s", path);
    run_against_listener(lfd, addr);
    run_against_listener(lfd, path); /* a plain path works too */
    close(lfd);
    unlink(path);

    GError *error = NULL;
    /* nobody listening any more */
    g_assert_null(vmshift_qmp_connect(addr, 500, NULL, &error));
    g_assert_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_CONNECTION);
    g_assert_nonnull(strstr(error->message, path));
    g_clear_error(&error);
    g_free(addr);
    rmdir(dir);

    lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sin = { .sin_family = AF_INET };
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    g_assert_cmpint(bind(lfd, (struct sockaddr *)&sin, sizeof sin), ==, 0);
    socklen_t sl = sizeof sin;
    getsockname(lfd, (struct sockaddr *)&sin, &sl);
    g_assert_cmpint(listen(lfd, 1), ==, 0);
    addr = g_strdup_printf("tcp:127.0.0.1:%u", ntohs(sin.sin_port));
    run_against_listener(lfd, addr);
    close(lfd);
    g_free(addr);

    const char *bad[] = { "tcp:nohostport", "tcp::1", "ftp://x", "relative/path" };
    for (gsize i = 0; i < G_N_ELEMENTS(bad); i++) {
        g_assert_null(vmshift_qmp_connect(bad[i], 500, NULL, &error));
        g_assert_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_INVALID_ARGUMENT);
        g_clear_error(&error);
    }
    g_free(path);
    g_free(dir);
}

/* ---- json helpers ------------------------------------------------------ */

static void
test_json_helpers(void)
{
    json_object *o = json_tokener_parse(
        "{\"ram\": {\"transferred\": 123456789012, \"remaining\": 0}, \"status\": \"active\","
        " \"b\": true, \"big\": 9223372036853727232}");
    g_assert_cmpint(vmshift_json_get_int(o, "ram/transferred", -1), ==, 123456789012LL);
    g_assert_cmpint(vmshift_json_get_int(o, "ram/missing", -1), ==, -1);
    g_assert_cmpint(vmshift_json_get_int(o, "status", -1), ==, -1);
    g_assert_cmpint(vmshift_json_get_int(o, "big", -1), ==, 9223372036853727232LL);
    g_assert_cmpstr(vmshift_json_get_string(o, "status"), ==, "active");
    g_assert_null(vmshift_json_get_string(o, "ram"));
    g_assert_null(vmshift_json_get_string(o, "status/deeper"));
    g_assert_true(vmshift_json_get_bool(o, "b", FALSE));
    g_assert_false(vmshift_json_get_bool(NULL, "b", FALSE));
    json_object_put(o);
}

int
main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/qmp/basic", test_basic);
    g_test_add_func("/qmp/events", test_events);
    g_test_add_func("/qmp/big-reply", test_big_reply);
    g_test_add_func("/qmp/drop-mid-reply", test_drop_mid_reply);
    g_test_add_func("/qmp/closed", test_closed);
    g_test_add_func("/qmp/malformed", test_malformed);
    g_test_add_func("/qmp/error-replies", test_error_replies);
    g_test_add_func("/qmp/timeout-late-reply", test_timeout_and_late_reply);
    g_test_add_func("/qmp/greeting", test_greeting);
    g_test_add_func("/qmp/cancel", test_cancel);
    g_test_add_func("/qmp/unix-tcp", test_unix_and_tcp);
    g_test_add_func("/qmp/json-helpers", test_json_helpers);
    return g_test_run();
}
