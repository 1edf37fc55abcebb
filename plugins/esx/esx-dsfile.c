/*
 * ESX plugin: datastore files over HTTP, the interface vCenter and ESXi
 * serve at https://HOST/folder/PATH?dcPath=DC&dsName=DS with the SOAP
 * session's cookie. Small files (descriptors, directory probes) go through
 * the SDK handle; disk data is streamed with a libcurl handle of its own
 * (same TLS settings: verification on unless insecure=true): GET as a
 * GInputStream fed by a thread, PUT read from a GInputStream with a known
 * Content-Length (the server wants it; no chunked uploads).
 */
#include "config.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <curl/curl.h>

#include "esx-impl.h"

#define SESSION_COOKIE "vmware_soap_session"
/* a transfer that moves no byte for this long has stalled */
#define STALL_SECONDS 300L

char *
esx_folder_path(const char *dc, const char *ds, const char *path)
{
    g_autofree char *p = g_uri_escape_string(path, "/", FALSE);
    g_autofree char *d = g_uri_escape_string(dc, NULL, FALSE);
    g_autofree char *s = g_uri_escape_string(ds, NULL, FALSE);
    return g_strdup_printf("/folder/%s?dcPath=%s&dsName=%s", p, d, s);
}

/* A libcurl handle for @path on the server of the SDK URL, with the
 * session cookie (*@hdrs, to free with curl_slist_free_all). */
static CURL *
folder_handle(VmshiftBackend *be, const char *path, struct curl_slist **hdrs, GError **error)
{
    if (!esx_connect(be, error))
        return NULL;
    g_autofree char *cookie = vmshift_http_get_cookie(be->http, SESSION_COOKIE);
    if (cookie == NULL) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_AUTH_FAILED,
                    "%s: no session cookie after Login for the datastore file access", be->url);
        return NULL;
    }
    CURLU *u = curl_url();
    char *full = NULL;
    if (u == NULL || curl_url_set(u, CURLUPART_URL, be->url, 0) != CURLUE_OK
        || curl_url_set(u, CURLUPART_URL, path, 0) != CURLUE_OK
        || curl_url_get(u, CURLUPART_URL, &full, 0) != CURLUE_OK) {
        curl_url_cleanup(u);
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_INVALID_ARGUMENT,
                    "%s: cannot build the datastore URL", be->url);
        return NULL;
    }
    curl_url_cleanup(u);
    CURL *c = curl_easy_init();
    if (c == NULL)
        g_error("out of memory creating a libcurl handle");
    curl_easy_setopt(c, CURLOPT_URL, full);
    curl_free(full);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, be->allow_unencrypted ? "http,https" : "https");
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(c, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, be->insecure ? 0L : 1L);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, be->insecure ? 0L : 2L);
    if (be->ca_file != NULL)
        curl_easy_setopt(c, CURLOPT_CAINFO, be->ca_file);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS,
                     (long)(be->connect_timeout_ms ? be->connect_timeout_ms
                                                   : VMSHIFT_HTTP_DEFAULT_CONNECT_TIMEOUT_MS));
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, STALL_SECONDS);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "vmshift/" PACKAGE_VERSION);
    g_autofree char *h = g_strdup_printf("Cookie: %s=%s", SESSION_COOKIE, cookie);
    *hdrs = curl_slist_append(NULL, h);
    *hdrs = curl_slist_append(*hdrs, "Expect:");
    explicit_bzero(h, strlen(h));
    explicit_bzero(cookie, strlen(cookie));
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, *hdrs);
    return c;
}

/* ---- small files through the SDK handle -------------------------------- */

char *
esx_folder_get_small(VmshiftBackend *be, const char *dc, const char *ds, const char *path,
                     gsize *len, guint *status, GError **error)
{
    if (!esx_connect(be, error))
        return NULL;
    g_autofree char *p = esx_folder_path(dc, ds, path);
    g_autoptr(VmshiftHttpResponse)
        r = vmshift_http_request(be->http, "GET", p, NULL, NULL, 0, NULL, error);
    if (r == NULL)
        return NULL;
    *status = r->status;
    if (r->status != 200) {
        if (len != NULL)
            *len = 0;
        return NULL;
    }
    gsize n = 0;
    const char *body = vmshift_http_response_get_body(r, &n);
    if (len != NULL)
        *len = n;
    return g_strndup(body != NULL ? body : "", n);
}

gboolean
esx_folder_put_small(VmshiftBackend *be, const char *dc, const char *ds, const char *path,
                     const char *data, gsize len, GError **error)
{
    if (!esx_connect(be, error))
        return FALSE;
    g_autofree char *p = esx_folder_path(dc, ds, path);
    const char *hdrs[] = { "Content-Type: application/octet-stream", NULL };
    g_autoptr(VmshiftHttpResponse)
        r = vmshift_http_request_once(be->http, "PUT", p, hdrs, data, len, NULL, error);
    if (r == NULL)
        return FALSE;
    if (r->status != 200 && r->status != 201 && r->status != 204) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_FAILED, "%s: PUT [%s] %s answered HTTP %u",
                    be->url, ds, path, r->status);
        return FALSE;
    }
    return TRUE;
}

/* ---- PUT from a stream --------------------------------------------------- */

typedef struct {
    GInputStream *in;
    GCancellable *cancellable;
    GError *error;
    guint64 sent, length;
    VmshiftJob *job;
    guint64 done_before, total;
    gint64 reported_at;
} Upload;

static size_t
upload_read(char *buf, size_t size, size_t n, void *data)
{
    Upload *u = data;
    gsize want = size * n;
    if (u->sent >= u->length)
        return 0;
    if (want > u->length - u->sent)
        want = (gsize)(u->length - u->sent);
    gssize got = g_input_stream_read(u->in, buf, want, u->cancellable, &u->error);
    if (got < 0)
        return CURL_READFUNC_ABORT;
    if (got == 0) {
        g_set_error(&u->error, VMSHIFT_ERROR, VMSHIFT_ERROR_FAILED,
                    "the source disk ended after %" G_GUINT64_FORMAT " of %" G_GUINT64_FORMAT
                    " bytes",
                    u->sent, u->length);
        return CURL_READFUNC_ABORT;
    }
    u->sent += (guint64)got;
    gint64 now = g_get_monotonic_time();
    if (u->job != NULL && (now - u->reported_at > G_USEC_PER_SEC / 2 || u->sent == u->length)) {
        vmshift_job_set_bytes(u->job, u->done_before + u->sent, u->total);
        u->reported_at = now;
    }
    return (size_t)got;
}

static size_t
discard_body(char *buf, size_t size, size_t n, void *data)
{
    GString *s = data;
    if (s->len < 512)
        g_string_append_len(s, buf, MIN(size * n, 512 - s->len));
    return size * n;
}

gboolean
esx_folder_upload(VmshiftBackend *be, const char *dc, const char *ds, const char *path,
                  GInputStream *in, guint64 length, VmshiftJob *job, guint64 done_before,
                  guint64 total, GError **error)
{
    g_autofree char *p = esx_folder_path(dc, ds, path);
    struct curl_slist *hdrs = NULL;
    CURL *c = folder_handle(be, p, &hdrs, error);
    if (c == NULL)
        return FALSE;
    hdrs = curl_slist_append(hdrs, "Content-Type: application/octet-stream");
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
    Upload u = { .in = in,
                 .cancellable = job != NULL ? vmshift_job_get_cancellable(job) : NULL,
                 .length = length,
                 .job = job,
                 .done_before = done_before,
                 .total = total };
    g_autoptr(GString) reply = g_string_new(NULL);
    curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE, (curl_off_t)length);
    curl_easy_setopt(c, CURLOPT_READFUNCTION, upload_read);
    curl_easy_setopt(c, CURLOPT_READDATA, &u);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, reply);
    CURLcode rc = curl_easy_perform(c);
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(c);
    curl_slist_free_all(hdrs);
    if (u.error != NULL) {
        g_propagate_prefixed_error(error, u.error, "uploading [%s] %s: ", ds, path);
        return FALSE;
    }
    if (rc != CURLE_OK) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_CONNECTION, "%s: PUT [%s] %s: %s", be->url,
                    ds, path, curl_easy_strerror(rc));
        return FALSE;
    }
    if (status != 200 && status != 201 && status != 204) {
        g_strdelimit(reply->str, "\r\n", ' ');
        g_set_error(error, VMSHIFT_ERROR,
                    status == 401 || status == 403 ? VMSHIFT_ERROR_PERMISSION
                                                   : VMSHIFT_ERROR_FAILED,
                    "%s: PUT [%s] %s answered HTTP %ld %s", be->url, ds, path, status, reply->str);
        return FALSE;
    }
    return TRUE;
}

/* ---- GET as a stream ------------------------------------------------------
 * A thread runs the transfer and writes the body into one end of a socket
 * pair (send with MSG_NOSIGNAL: a reader that went away ends the transfer
 * rather than the process); the stream reads the other end and, at its
 * end, fails unless the transfer succeeded with exactly the expected
 * length. */
typedef struct {
    CURL *curl;
    struct curl_slist *hdrs;
    int fd;
    long status;
    CURLcode rc;
    guint64 got;
    char *what;
} Fetch;

typedef struct {
    GInputStream parent;
    GSocket *in;
    GThread *thread;
    Fetch *f;
    guint64 length, read;
    gboolean done;
} FolderStream;

typedef struct {
    GInputStreamClass parent_class;
} FolderStreamClass;

static GType folder_stream_get_type(void);
G_DEFINE_TYPE(FolderStream, folder_stream, G_TYPE_INPUT_STREAM)

static size_t
fetch_write(char *buf, size_t size, size_t n, void *data)
{
    Fetch *f = data;
    if (f->status == 0)
        curl_easy_getinfo(f->curl, CURLINFO_RESPONSE_CODE, &f->status);
    if (f->status != 200)
        return 0; /* not the file: stop */
    size_t len = size * n, off = 0;
    while (off < len) {
        ssize_t w = send(f->fd, buf + off, len - off, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return 0;
        off += (size_t)w;
    }
    f->got += len;
    return len;
}

static gpointer
fetch_run(gpointer data)
{
    Fetch *f = data;
    f->rc = curl_easy_perform(f->curl);
    if (f->status == 0)
        curl_easy_getinfo(f->curl, CURLINFO_RESPONSE_CODE, &f->status);
    shutdown(f->fd, SHUT_WR);
    return NULL;
}

static void
fetch_free(Fetch *f)
{
    if (f->curl != NULL)
        curl_easy_cleanup(f->curl);
    curl_slist_free_all(f->hdrs);
    if (f->fd >= 0)
        close(f->fd);
    g_free(f->what);
    g_free(f);
}

/* Stop the transfer (if still running) and wait for the thread. */
static void
folder_stream_finish(FolderStream *fs)
{
    if (fs->thread == NULL)
        return;
    if (fs->f->fd >= 0)
        shutdown(fs->f->fd, SHUT_RDWR);
    if (fs->in != NULL)
        g_socket_close(fs->in, NULL); /* our end: the sender gets EPIPE */
    g_clear_object(&fs->in);
    g_thread_join(fs->thread);
    fs->thread = NULL;
}

static gssize
folder_stream_read(GInputStream *stream, void *buf, gsize count, GCancellable *cancellable,
                   GError **error)
{
    FolderStream *fs = (FolderStream *)stream;
    if (fs->done)
        return 0;
    gssize n = g_socket_receive(fs->in, buf, count, cancellable, error);
    if (n < 0)
        return -1;
    if (n > 0) {
        fs->read += (guint64)n;
        return n;
    }
    fs->done = TRUE;
    folder_stream_finish(fs);
    Fetch *f = fs->f;
    if (f->status != 200) {
        g_set_error(error, VMSHIFT_ERROR,
                    f->status == 404                       ? VMSHIFT_ERROR_NOT_FOUND
                    : f->status == 401 || f->status == 403 ? VMSHIFT_ERROR_PERMISSION
                                                           : VMSHIFT_ERROR_FAILED,
                    "GET %s answered HTTP %ld", f->what, f->status);
        return -1;
    }
    if (f->rc != CURLE_OK) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_CONNECTION, "GET %s: %s", f->what,
                    curl_easy_strerror(f->rc));
        return -1;
    }
    if (fs->read != fs->length) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_PROTOCOL,
                    "GET %s gave %" G_GUINT64_FORMAT " bytes, the disk has %" G_GUINT64_FORMAT,
                    f->what, fs->read, fs->length);
        return -1;
    }
    return 0;
}

static gboolean
folder_stream_close(GInputStream *stream, GCancellable *cancellable, GError **error)
{
    (void)cancellable;
    (void)error;
    folder_stream_finish((FolderStream *)stream);
    return TRUE;
}

static void
folder_stream_finalize(GObject *object)
{
    FolderStream *fs = (FolderStream *)object;
    folder_stream_finish(fs);
    g_clear_object(&fs->in);
    if (fs->f != NULL)
        fetch_free(fs->f);
    G_OBJECT_CLASS(folder_stream_parent_class)->finalize(object);
}

static void
folder_stream_class_init(FolderStreamClass *klass)
{
    GInputStreamClass *is = G_INPUT_STREAM_CLASS(klass);
    G_OBJECT_CLASS(klass)->finalize = folder_stream_finalize;
    is->read_fn = folder_stream_read;
    is->close_fn = folder_stream_close;
}

static void
folder_stream_init(FolderStream *fs)
{
    (void)fs;
}

GInputStream *
esx_folder_open(VmshiftBackend *be, const char *dc, const char *ds, const char *path,
                guint64 length, GError **error)
{
    g_autofree char *p = esx_folder_path(dc, ds, path);
    struct curl_slist *hdrs = NULL;
    CURL *c = folder_handle(be, p, &hdrs, error);
    if (c == NULL)
        return NULL;
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
        int e = errno;
        curl_easy_cleanup(c);
        curl_slist_free_all(hdrs);
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_FAILED, "socketpair: %s", g_strerror(e));
        return NULL;
    }
    Fetch *f = g_new0(Fetch, 1);
    f->curl = c;
    f->hdrs = hdrs;
    f->fd = sv[1];
    f->what = g_strdup_printf("[%s] %s", ds, path);
    curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, fetch_write);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, f);
    FolderStream *fs = g_object_new(folder_stream_get_type(), NULL);
    fs->in = g_socket_new_from_fd(sv[0], error);
    fs->f = f;
    if (fs->in == NULL) {
        close(sv[0]);
        g_object_unref(fs);
        return NULL;
    }
    fs->length = length;
    fs->thread = g_thread_new("esx-folder-get", fetch_run, f);
    return G_INPUT_STREAM(fs);
}
