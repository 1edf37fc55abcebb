/* libFuzzer target: the QMP client's message reader and reply/event
 * dispatch (sdk/qmp.c), fed through a real socket as a QMP peer would.
 *
 * The first input byte picks the mode: even → the input is the peer's whole
 * stream, greeting included; odd → a valid greeting and capabilities reply
 * come first and the input follows as replies/events to one command. The
 * client then runs "query-status" and drains events until the stream ends;
 * any outcome but a crash, a leak or a hang is fine. */
#include "config.h"

#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <vmshift/qmp.h>

#define FUZZ_MAX_INPUT (48 * 1024)

static const char greeting[] =
    "{\"QMP\": {\"version\": {\"qemu\": {\"micro\": 0, \"minor\": 2, \"major\": 7}, "
    "\"package\": \"\"}, \"capabilities\": []}}\r\n"
    "{\"return\": {}, \"id\": \"vmshift-1\"}\r\n";

static void
write_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n <= 0)
            return;
        p += n;
        len -= (size_t)n;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > FUZZ_MAX_INPUT)
        return 0;
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
        return 0;
    int big = 1 << 20;
    setsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &big, sizeof big);
    setsockopt(sv[0], SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
    if (data[0] & 1)
        write_all(sv[1], greeting, sizeof greeting - 1);
    write_all(sv[1], data + 1, size - 1);
    /* the peer is done: every read past the data sees end of stream */
    shutdown(sv[1], SHUT_WR);

    GError *error = NULL;
    VmshiftQmp *qmp = vmshift_qmp_new_for_fd(sv[0], "fuzz", 1000, NULL, &error);
    if (qmp) {
        json_object *r = vmshift_qmp_execute(qmp, "query-status", NULL, 1000, &error);
        if (r)
            json_object_put(r);
        g_clear_error(&error);
        for (int i = 0; i < 10000; i++) {
            VmshiftQmpEvent *ev = vmshift_qmp_next_event(qmp, 0, &error);
            if (!ev)
                break;
            (void)vmshift_qmp_event_get_string(ev, "status");
            vmshift_qmp_event_free(ev);
        }
        g_clear_error(&error);
        VmshiftQmpEvent *ev = vmshift_qmp_wait_event(qmp, "MIGRATION", NULL, NULL, 1, &error);
        vmshift_qmp_event_free(ev);
        vmshift_qmp_free(qmp);
    }
    g_clear_error(&error);
    close(sv[1]);
    return 0;
}
