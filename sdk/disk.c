/* vmshift SDK: disk images as streams of their guest-visible bytes. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <glib/gstdio.h>
#include <string.h>
#include <unistd.h>
#include <vmshift/vmshift.h>
#include <vmshift/disk.h>

#include "sdk-private.h"

#define CHUNK (1024 * 1024)

/* ---- a stream reading a converter's stdout ------------------------------
 * At end of data it waits for the converter and fails the read when it
 * exited with an error, so a short conversion is never taken for a whole
 * disk. Closing it early stops the converter. */
typedef struct {
    GInputStream parent;
    GSubprocess *proc;
    GInputStream *out;
    int err_fd;
    char *what;
    gboolean done;
} ProcStream;

typedef struct {
    GInputStreamClass parent_class;
} ProcStreamClass;

static GType proc_stream_get_type(void);
G_DEFINE_TYPE(ProcStream, proc_stream, G_TYPE_INPUT_STREAM)

/* the first line the tool printed on stderr, or its exit status */
static char *
proc_failure(GSubprocess *proc, int err_fd, const char *what)
{
    char buf[512] = "";
    ssize_t n = err_fd >= 0 ? pread(err_fd, buf, sizeof buf - 1, 0) : -1;

    if (n > 0) {
        buf[n] = '\0';
        buf[strcspn(buf, "\n")] = '\0';
        return g_strdup_printf("%s failed: %s", what, buf);
    }
    if (g_subprocess_get_if_exited(proc))
        return g_strdup_printf("%s exited with status %d", what,
                               g_subprocess_get_exit_status(proc));
    return g_strdup_printf("%s was killed by signal %d", what, g_subprocess_get_term_sig(proc));
}

static gssize
proc_stream_read(GInputStream *stream, void *buf, gsize count, GCancellable *cancellable,
                 GError **error)
{
    ProcStream *ps = (ProcStream *)stream;
    gssize n;

    if (ps->done)
        return 0;
    n = g_input_stream_read(ps->out, buf, count, cancellable, error);
    if (n != 0)
        return n;
    ps->done = TRUE;
    if (!g_subprocess_wait(ps->proc, cancellable, error))
        return -1;
    if (!g_subprocess_get_successful(ps->proc)) {
        g_autofree char *msg = proc_failure(ps->proc, ps->err_fd, ps->what);
        g_set_error_literal(error, VMSHIFT_ERROR, VMSHIFT_ERROR_FAILED, msg);
        return -1;
    }
    return 0;
}

static gboolean
proc_stream_close(GInputStream *stream, GCancellable *cancellable, GError **error)
{
    ProcStream *ps = (ProcStream *)stream;

    if (ps->proc && !ps->done) {
        g_subprocess_force_exit(ps->proc);
        g_subprocess_wait(ps->proc, NULL, NULL);
        ps->done = TRUE;
    }
    return ps->out ? g_input_stream_close(ps->out, cancellable, error) : TRUE;
}

static void
proc_stream_finalize(GObject *object)
{
    ProcStream *ps = (ProcStream *)object;

    if (ps->proc && !ps->done) {
        g_subprocess_force_exit(ps->proc);
        g_subprocess_wait(ps->proc, NULL, NULL);
    }
    g_clear_object(&ps->out);
    g_clear_object(&ps->proc);
    if (ps->err_fd >= 0)
        close(ps->err_fd);
    g_free(ps->what);
    G_OBJECT_CLASS(proc_stream_parent_class)->finalize(object);
}

static void
proc_stream_class_init(ProcStreamClass *klass)
{
    GInputStreamClass *is = G_INPUT_STREAM_CLASS(klass);

    G_OBJECT_CLASS(klass)->finalize = proc_stream_finalize;
    is->read_fn = proc_stream_read;
    is->close_fn = proc_stream_close;
}

static void
proc_stream_init(ProcStream *ps)
{
    ps->err_fd = -1;
}

/* an unlinked temporary file for a tool's stderr */
static int
stderr_file(GError **error)
{
    g_autofree char *name = NULL;
    int fd = g_file_open_tmp("vmshift-disk-XXXXXX", &name, error);

    if (fd >= 0)
        g_unlink(name);
    return fd;
}

static gboolean
need_tool(const char *tool, const char *package, GError **error)
{
    g_autofree char *path = g_find_program_in_path(tool);

    if (path)
        return TRUE;
    g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_NOT_SUPPORTED,
                "%s not found: converting disk images needs it (Debian package %s)", tool, package);
    return FALSE;
}

/* starts ARGV with stderr to a temporary file (returned in *err_fd) and
 * stdin or stdout piped as FLAGS say */
static GSubprocess *
spawn_tool(const char *const *argv, GSubprocessFlags flags, int *err_fd, GError **error)
{
    g_autoptr(GSubprocessLauncher) l = g_subprocess_launcher_new(flags);
    int fd = stderr_file(error), fd2;

    *err_fd = -1;
    if (fd < 0)
        return NULL;
    fd2 = dup(fd);
    if (fd2 < 0) {
        g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errno), "dup: %s", g_strerror(errno));
        close(fd);
        return NULL;
    }
    g_subprocess_launcher_take_stderr_fd(l, fd2);
    GSubprocess *p = g_subprocess_launcher_spawnv(l, argv, error);
    if (!p) {
        close(fd);
        return NULL;
    }
    *err_fd = fd;
    return p;
}

static gboolean
is_raw(const char *format)
{
    return format && g_str_equal(format, "raw");
}

/* ---- qemu-img info ------------------------------------------------------ */

VMSHIFT_API gboolean
vmshift_disk_image_info(const char *path, char **format, guint64 *capacity, GError **error)
{
    const char *argv[] = { "qemu-img", "info", "--output=json", "--", path, NULL };
    g_autoptr(GSubprocess) p = NULL;
    g_autofree char *out = NULL, *err = NULL;
    g_autoptr(GRegex) re_size = NULL, re_fmt = NULL;
    g_autoptr(GMatchInfo) m1 = NULL, m2 = NULL;

    g_return_val_if_fail(path != NULL, FALSE);
    if (!need_tool("qemu-img", "qemu-utils", error))
        return FALSE;
    p = g_subprocess_newv(argv, G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_PIPE,
                          error);
    if (!p || !g_subprocess_communicate_utf8(p, NULL, NULL, &out, &err, error))
        return FALSE;
    if (!g_subprocess_get_successful(p)) {
        g_strstrip(err);
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_FAILED, "qemu-img info %s: %s", path,
                    err && *err ? err : "failed");
        return FALSE;
    }
    /* the top-level members come first in qemu-img's output */
    re_size = g_regex_new("\"virtual-size\": *([0-9]+)", 0, 0, NULL);
    re_fmt = g_regex_new("\"format\": *\"([a-z0-9_-]+)\"", 0, 0, NULL);
    if (!g_regex_match(re_size, out, 0, &m1) || !g_regex_match(re_fmt, out, 0, &m2)) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_PROTOCOL,
                    "qemu-img info %s: no virtual-size or format in its answer", path);
        return FALSE;
    }
    if (capacity) {
        g_autofree char *s = g_match_info_fetch(m1, 1);
        *capacity = g_ascii_strtoull(s, NULL, 10);
    }
    if (format)
        *format = g_match_info_fetch(m2, 1);
    return TRUE;
}

/* ---- reading ----------------------------------------------------------- */

VMSHIFT_API GInputStream *
vmshift_disk_read_raw(const char *path, const char *format, guint64 *capacity,
                      GCancellable *cancellable, GError **error)
{
    g_autofree char *fmt = g_strdup(format);
    guint64 size = 0;

    g_return_val_if_fail(path != NULL, NULL);
    if (!fmt && !vmshift_disk_image_info(path, &fmt, &size, error))
        return NULL;
    if (is_raw(fmt)) {
        g_autoptr(GFile) f = g_file_new_for_path(path);
        g_autoptr(GFileInfo) info = NULL;
        GFileInputStream *in = g_file_read(f, cancellable, error);

        if (!in)
            return NULL;
        info = g_file_input_stream_query_info(in, G_FILE_ATTRIBUTE_STANDARD_SIZE, cancellable,
                                              error);
        if (!info) {
            g_object_unref(in);
            return NULL;
        }
        if (capacity)
            *capacity = (guint64)g_file_info_get_size(info);
        return G_INPUT_STREAM(in);
    }
    if (size == 0 && !vmshift_disk_image_info(path, NULL, &size, error))
        return NULL;
    if (!need_tool("nbdcopy", "libnbd-bin", error) || !need_tool("qemu-nbd", "qemu-utils", error))
        return NULL;

    const char *argv[] = {
        "nbdcopy", "--", "[", "qemu-nbd", "-r", "-f", fmt, path, "]", "-", NULL
    };
    g_autofree char *what = g_strdup_printf("reading %s (%s)", path, fmt);
    GInputStream *in = vmshift_disk_read_command(argv, what, error);
    if (in && capacity)
        *capacity = size;
    return in;
}

VMSHIFT_API GInputStream *
vmshift_disk_read_command(const char *const *argv, const char *what, GError **error)
{
    int err_fd;
    GSubprocess *proc;

    g_return_val_if_fail(argv != NULL && argv[0] != NULL, NULL);
    proc = spawn_tool(argv, G_SUBPROCESS_FLAGS_STDOUT_PIPE, &err_fd, error);
    if (!proc)
        return NULL;
    ProcStream *ps = g_object_new(proc_stream_get_type(), NULL);
    ps->proc = proc;
    ps->out = g_object_ref(g_subprocess_get_stdout_pipe(proc));
    ps->err_fd = err_fd;
    ps->what = g_strdup(what ? what : argv[0]);
    return G_INPUT_STREAM(ps);
}

/* ---- writing ----------------------------------------------------------- */

static gboolean
all_zero(const guint8 *p, gsize n)
{
    return n == 0 || (p[0] == 0 && memcmp(p, p + 1, n - 1) == 0);
}

/* reads up to N bytes, fewer only at end of stream */
static gssize
read_full(GInputStream *in, guint8 *buf, gsize n, GCancellable *c, GError **error)
{
    gsize got = 0;

    while (got < n) {
        gssize r = g_input_stream_read(in, buf + got, n - got, c, error);
        if (r < 0)
            return -1;
        if (r == 0)
            break;
        got += (gsize)r;
    }
    return (gssize)got;
}

static gboolean
length_error(guint64 done, guint64 capacity, const char *path, GError **error)
{
    g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_PROTOCOL,
                "%s: the source gave %s%" G_GUINT64_FORMAT
                " bytes, the disk has %" G_GUINT64_FORMAT,
                path, done > capacity ? "more than " : "", done, capacity);
    return FALSE;
}

typedef gboolean (*ChunkFunc)(const guint8 *buf, gsize n, guint64 offset, gpointer data,
                              GError **error);

/* feeds @in to @func in chunks, checking the length and reporting bytes */
static gboolean
pump(GInputStream *in, guint64 capacity, const char *path, ChunkFunc func, gpointer data,
     VmshiftJob *job, GCancellable *c, GError **error)
{
    g_autofree guint8 *buf = g_malloc(CHUNK);
    guint64 done = 0;
    gint64 last = 0;

    for (;;) {
        gssize n = read_full(in, buf, CHUNK, c, error);
        if (n < 0)
            return FALSE;
        if (n == 0)
            break;
        if (done + (guint64)n > capacity)
            return length_error(done + (guint64)n, capacity, path, error);
        if (!func(buf, (gsize)n, done, data, error))
            return FALSE;
        done += (guint64)n;
        if (job && (g_get_monotonic_time() - last > 200000 || done == capacity)) {
            last = g_get_monotonic_time();
            vmshift_job_set_bytes(job, done, capacity);
        }
    }
    if (done != capacity)
        return length_error(done, capacity, path, error);
    return TRUE;
}

typedef struct {
    int fd;
    const char *path;
} RawOut;

static gboolean
raw_chunk(const guint8 *buf, gsize n, guint64 offset, gpointer data, GError **error)
{
    RawOut *o = data;
    gsize off = 0;

    if (all_zero(buf, n))
        return TRUE; /* a hole: the file is extended to its size at the end */
    while (off < n) {
        ssize_t w = pwrite(o->fd, buf + off, n - off, (off_t)(offset + off));
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0) {
            int e = errno;
            g_set_error(error, G_IO_ERROR, g_io_error_from_errno(e), "writing %s: %s", o->path,
                        g_strerror(e));
            return FALSE;
        }
        off += (gsize)w;
    }
    return TRUE;
}

static gboolean
write_raw_file(GInputStream *in, guint64 capacity, const char *path, VmshiftJob *job,
               GCancellable *c, GError **error)
{
    RawOut o = { .fd = g_open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600), .path = path };
    gboolean ok;

    if (o.fd < 0) {
        int e = errno;
        g_set_error(error, G_IO_ERROR, g_io_error_from_errno(e), "creating %s: %s", path,
                    g_strerror(e));
        return FALSE;
    }
    ok = pump(in, capacity, path, raw_chunk, &o, job, c, error);
    if (ok && (ftruncate(o.fd, (off_t)capacity) < 0 || fsync(o.fd) < 0)) {
        int e = errno;
        g_set_error(error, G_IO_ERROR, g_io_error_from_errno(e), "writing %s: %s", path,
                    g_strerror(e));
        ok = FALSE;
    }
    close(o.fd);
    if (!ok)
        g_unlink(path);
    return ok;
}

static gboolean
pipe_chunk(const guint8 *buf, gsize n, guint64 offset, gpointer data, GError **error)
{
    return g_output_stream_write_all(data, buf, n, NULL, NULL, error);
}

static gboolean
create_image(const char *path, const char *format, guint64 capacity, GError **error)
{
    g_autofree char *size = g_strdup_printf("%" G_GUINT64_FORMAT, capacity);
    const char *vhdx[] = { "qemu-img",          "create", "-q", "-f", format, "-o",
                           "subformat=dynamic", "--",     path, size, NULL };
    const char *plain[] = { "qemu-img", "create", "-q", "-f", format, "--", path, size, NULL };
    g_autoptr(GSubprocess) p = NULL;
    g_autofree char *err = NULL;

    if (g_file_test(path, G_FILE_TEST_EXISTS)) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_EXISTS, "creating %s: it exists", path);
        return FALSE;
    }
    p = g_subprocess_newv(g_str_equal(format, "vhdx") ? vhdx : plain,
                          G_SUBPROCESS_FLAGS_STDOUT_SILENCE | G_SUBPROCESS_FLAGS_STDERR_PIPE,
                          error);
    if (!p || !g_subprocess_communicate_utf8(p, NULL, NULL, NULL, &err, error))
        return FALSE;
    if (!g_subprocess_get_successful(p)) {
        g_strstrip(err);
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_FAILED, "qemu-img create %s: %s", path,
                    err && *err ? err : "failed");
        return FALSE;
    }
    return TRUE;
}

static gboolean
write_converted(GInputStream *in, guint64 capacity, const char *path, const char *format,
                VmshiftJob *job, GCancellable *c, GError **error)
{
    const char *argv[] = { "nbdcopy", "--",           "-",  "[", "qemu-nbd", "-f",
                           format,    "--cache=none", path, "]", NULL };
    g_autoptr(GSubprocess) proc = NULL;
    GError *local = NULL;
    int err_fd = -1;
    gboolean ok;

    if (!need_tool("nbdcopy", "libnbd-bin", error) || !need_tool("qemu-nbd", "qemu-utils", error)
        || !need_tool("qemu-img", "qemu-utils", error))
        return FALSE;
    if (!create_image(path, format, capacity, error))
        return FALSE;
    proc = spawn_tool(argv, G_SUBPROCESS_FLAGS_STDIN_PIPE | G_SUBPROCESS_FLAGS_STDOUT_SILENCE,
                      &err_fd, error);
    if (!proc) {
        g_unlink(path);
        return FALSE;
    }
    ok = pump(in, capacity, path, pipe_chunk, g_subprocess_get_stdin_pipe(proc), job, c, &local);
    g_output_stream_close(g_subprocess_get_stdin_pipe(proc), NULL, NULL);
    if (!ok)
        g_subprocess_force_exit(proc);
    g_subprocess_wait(proc, NULL, NULL);
    if (ok && !g_subprocess_get_successful(proc)) {
        g_autofree char *msg = proc_failure(proc, err_fd, "nbdcopy");
        g_set_error(&local, VMSHIFT_ERROR, VMSHIFT_ERROR_FAILED, "writing %s: %s", path, msg);
        ok = FALSE;
    }
    close(err_fd);
    if (!ok) {
        g_unlink(path);
        g_propagate_error(error, local);
    }
    return ok;
}

VMSHIFT_API gboolean
vmshift_disk_write_raw(GInputStream *in, guint64 capacity, const char *path, const char *format,
                       VmshiftJob *job, GCancellable *cancellable, GError **error)
{
    g_return_val_if_fail(in != NULL && path != NULL && format != NULL, FALSE);
    if (is_raw(format))
        return write_raw_file(in, capacity, path, job, cancellable, error);
    return write_converted(in, capacity, path, format, job, cancellable, error);
}
