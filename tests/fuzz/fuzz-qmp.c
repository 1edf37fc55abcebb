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
        len -= (size_t) n;
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
            (void) vmshift_qmp_event_get_string(ev, "status");
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

#ifdef VMSHIFT_FUZZ_REPLAY
/* Without libFuzzer: run every file of the corpus directory once (TAP), so
 * `make check` replays the seeds and past crashes in every build. */
int
main(int argc, char **argv)
{
    const char *dir = argc > 1 ? argv[1] : NULL;
    char *def = NULL;
    if (!dir) {
        const char *src = g_getenv("VMSHIFT_SRCDIR");
        def = g_build_filename(src ? src : ".", "tests", "fuzz", "corpus-qmp", NULL);
        dir = def;
    }
    GDir *d = g_dir_open(dir, 0, NULL);
    if (!d) {
        printf("1..0 # SKIP no corpus at %s\n", dir);
        g_free(def);
        return 0;
    }
    GPtrArray *files = g_ptr_array_new_with_free_func(g_free);
    const char *name;
    while ((name = g_dir_read_name(d)))
        g_ptr_array_add(files, g_build_filename(dir, name, NULL));
    g_dir_close(d);
    printf("1..%u\n", files->len);
    for (guint i = 0; i < files->len; i++) {
        char *buf = NULL;
        gsize len = 0;
        gboolean ok = g_file_get_contents(files->pdata[i], &buf, &len, NULL);
        if (ok)
            LLVMFuzzerTestOneInput((const uint8_t *) buf, len);
        printf("%s %u - %s\n", ok ? "ok" : "not ok", i + 1, (char *) files->pdata[i]);
        g_free(buf);
    }
    g_ptr_array_unref(files);
    g_free(def);
    return 0;
}
#endif
