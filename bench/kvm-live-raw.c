/* kvm-live-raw: the bench's baseline, a minimal raw QMP client that drives
 * one live migration between two QEMUs with exactly the settings it is
 * given (no vmshift code: plain sockets and json-c).
 *
 *   kvm-live-raw SRC.sock DST.sock PORT CONFIG [TIMEOUT-S]
 *   CONFIG: default | bw | bw+multifd | bw+autoconverge | bw+postcopy
 *
 * Prints: status=… total-ms=… downtime-ms=… bytes=… (QEMU's numbers,
 * queried again 0.5 s after "completed", as QEMU 7.2 may report 0 at once)
 * gap-ms=… (from the source's STOP event to the destination's RESUME, by
 * the events' own timestamps: how long the guest really stood still; QEMU's
 * "downtime" of a post-copy switch ends before the destination runs). */
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

typedef struct {
    FILE *f;                      /* reading */
    long long stop_us, resume_us; /* first STOP / RESUME event seen */
    FILE *w;                      /* writing: a separate stream (mixing both directions on one
                                   * FILE without fseek is undefined, and sockets cannot seek) */
    const char *name;
} Q;

static double
now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static json_object *
readmsg(Q *q)
{
    static char line[1 << 20];
    for (;;) {
        if (!fgets(line, sizeof line, q->f)) {
            fprintf(stderr, "kvm-live-raw: %s closed the connection\n", q->name);
            exit(1);
        }
        json_object *o = json_tokener_parse(line);
        if (!o)
            continue;
        json_object *ev, *ts, *sec, *usec;
        if (json_object_object_get_ex(o, "event", &ev)) {
            const char *name = json_object_get_string(ev);
            if (json_object_object_get_ex(o, "timestamp", &ts)
                && json_object_object_get_ex(ts, "seconds", &sec)
                && json_object_object_get_ex(ts, "microseconds", &usec)) {
                long long t = json_object_get_int64(sec) * 1000000LL + json_object_get_int64(usec);
                if (!strcmp(name, "STOP") && !q->stop_us)
                    q->stop_us = t;
                if (!strcmp(name, "RESUME") && !q->resume_us)
                    q->resume_us = t;
            }
            json_object_put(o);
            continue;
        }
        return o;
    }
}

static json_object *
cmd(Q *q, const char *json)
{
    fprintf(q->w, "%s\n", json);
    fflush(q->w);
    json_object *o = readmsg(q);
    json_object *e;
    if (json_object_object_get_ex(o, "error", &e)) {
        fprintf(stderr, "kvm-live-raw: %s -> %s\n", json, json_object_to_json_string(e));
        exit(1);
    }
    return o;
}

static Q
conn(const char *path)
{
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un sun = { .sun_family = AF_UNIX };
    strncpy(sun.sun_path, path, sizeof sun.sun_path - 1);
    if (connect(fd, (struct sockaddr *)&sun, sizeof sun) != 0) {
        perror(path);
        exit(1);
    }
    Q q = { fdopen(fd, "r"), 0, 0, fdopen(dup(fd), "w"), path };
    json_object_put(readmsg(&q)); /* greeting */
    json_object_put(cmd(&q, "{\"execute\": \"qmp_capabilities\"}"));
    return q;
}

static long long
geti(json_object *o, const char *a, const char *b)
{
    json_object *r, *x;
    if (!json_object_object_get_ex(o, "return", &r) || !json_object_object_get_ex(r, a, &x))
        return -1;
    if (b && !json_object_object_get_ex(x, b, &x))
        return -1;
    return json_object_get_int64(x);
}

static const char *
gets_(json_object *o, const char *a)
{
    json_object *r, *x;
    if (!json_object_object_get_ex(o, "return", &r) || !json_object_object_get_ex(r, a, &x))
        return "";
    return json_object_get_string(x);
}

int
main(int argc, char **argv)
{
    if (argc < 5) {
        fprintf(stderr, "usage: kvm-live-raw SRC.sock DST.sock PORT CONFIG [TIMEOUT-S]\n");
        return 2;
    }
    const char *config = argv[4];
    double timeout = argc > 5 ? atof(argv[5]) : 60;
    int bw = strncmp(config, "bw", 2) == 0;
    int multifd = strstr(config, "multifd") != NULL;
    int ac = strstr(config, "autoconverge") != NULL;
    int pc = strstr(config, "postcopy") != NULL;
    Q s = conn(argv[1]), d = conn(argv[2]);
    char buf[1024];
    snprintf(buf, sizeof buf,
             "{\"execute\": \"migrate-set-capabilities\", \"arguments\": {\"capabilities\": ["
             "{\"capability\": \"events\", \"state\": true},"
             "{\"capability\": \"multifd\", \"state\": %s},"
             "{\"capability\": \"auto-converge\", \"state\": %s},"
             "{\"capability\": \"postcopy-ram\", \"state\": %s}]}}",
             multifd ? "true" : "false", ac ? "true" : "false", pc ? "true" : "false");
    json_object_put(cmd(&s, buf));
    json_object_put(cmd(&d, buf));
    if (multifd) {
        const char *p = "{\"execute\": \"migrate-set-parameters\", \"arguments\": "
                        "{\"multifd-channels\": 4}}";
        json_object_put(cmd(&s, p));
        json_object_put(cmd(&d, p));
    }
    if (bw)
        json_object_put(cmd(&s, "{\"execute\": \"migrate-set-parameters\", \"arguments\": "
                                "{\"max-bandwidth\": 10737418240}}"));
    snprintf(buf, sizeof buf,
             "{\"execute\": \"migrate-incoming\", \"arguments\": "
             "{\"uri\": \"tcp:127.0.0.1:%s\"}}",
             argv[3]);
    json_object_put(cmd(&d, buf));
    snprintf(buf, sizeof buf,
             "{\"execute\": \"migrate\", \"arguments\": "
             "{\"uri\": \"tcp:127.0.0.1:%s\"}}",
             argv[3]);
    double t0 = now();
    json_object_put(cmd(&s, buf));
    int switched = 0;
    char status[64] = "";
    for (;;) {
        usleep(50000);
        json_object *r = cmd(&s, "{\"execute\": \"query-migrate\"}");
        snprintf(status, sizeof status, "%s", gets_(r, "status"));
        json_object_put(r);
        if (!strcmp(status, "completed") || !strcmp(status, "failed")
            || !strcmp(status, "cancelled"))
            break;
        if (pc && !switched && !strcmp(status, "active") && now() - t0 > 0.25) {
            json_object_put(cmd(&s, "{\"execute\": \"migrate-start-postcopy\"}"));
            switched = 1;
        }
        if (now() - t0 > timeout) {
            json_object_put(cmd(&s, "{\"execute\": \"migrate_cancel\"}"));
            printf("status=not-converged total-ms=%.0f downtime-ms=- bytes=-\n",
                   (now() - t0) * 1000);
            return 0;
        }
    }
    usleep(500000);
    json_object *r = cmd(&s, "{\"execute\": \"query-migrate\"}");
    json_object_put(cmd(&d, "{\"execute\": \"query-status\"}")); /* reads its RESUME */
    char gap[32] = "-";
    if (s.stop_us && d.resume_us && d.resume_us >= s.stop_us)
        snprintf(gap, sizeof gap, "%.0f", (double)(d.resume_us - s.stop_us) / 1000.0);
    printf("status=%s total-ms=%lld downtime-ms=%lld bytes=%lld gap-ms=%s\n", status,
           geti(r, "total-time", NULL), geti(r, "downtime", NULL), geti(r, "ram", "transferred"),
           gap);
    json_object_put(r);
    return 0;
}
