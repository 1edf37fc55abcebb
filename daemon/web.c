/*
 * vmshiftd: the web view at / (#17). Plain files installed with the daemon
 * ($(pkgdatadir)/www: page.html, style.css, app.js; no build step) and
 * pages rendered here, so that the lists read without JavaScript:
 *
 *   /               jobs, newest first (?offset= pages), and a form to
 *                   start a migration
 *   /jobs/{id}      one job: state, progress, phases, log, location,
 *                   cancel and repair
 *   /hosts          the hosts rated for a chosen VM (?vm=, ?group=), with
 *                   the factors behind each rating
 *   /bulk           bulk plans this daemon runs, by wave, and a form to
 *                   submit one
 *   /static/NAME    the files of www/
 *   /login          TCP only: a token to a session cookie (tcp.c)
 *
 * app.js follows /api/v1/events to update progress live and sends the
 * changes (start, cancel, repair, bulk) to the API as JSON, where the same
 * checks as for any client apply (who may change, same origin).
 */
#include "config.h"

#include <string.h>

#include "daemon/daemon.h"
#include "daemon/web.h"

struct WebCall {
    Daemon *d;
    SoupServerMessage *msg;
    char *path;
    GHashTable *query;
    DaemonCaller caller;
    char *title;
    char *html; /* out: the page's main part */
    guint status;
};

static void
web_call_free(WebCall *w)
{
    g_object_unref(w->msg);
    g_free(w->path);
    if (w->query)
        g_hash_table_unref(w->query);
    daemon_caller_clear(&w->caller);
    g_free(w->title);
    g_free(w->html);
    g_free(w);
}

const char *
web_q(WebCall *w, const char *key)
{
    const char *v = w->query ? g_hash_table_lookup(w->query, key) : NULL;
    return v && *v ? v : NULL;
}

Daemon *
web_daemon(WebCall *w)
{
    return w->d;
}

gboolean
web_can_change(WebCall *w)
{
    return w->caller.can_change;
}

void
web_set(WebCall *w, guint status, const char *title, char *html)
{
    w->status = status;
    g_free(w->title);
    w->title = g_strdup(title);
    g_free(w->html);
    w->html = html;
}

void
web_append(GString *s, const char *fmt, ...)
{
    va_list ap;
    g_autofree char *text = NULL;

    va_start(ap, fmt);
    text = g_markup_vprintf_escaped(fmt, ap);
    va_end(ap);
    g_string_append(s, text);
}

static void
reply_page(Daemon *d, SoupServerMessage *msg, guint status, const char *title, const char *main,
           const char *who, const char *nav)
{
    g_autofree char *path = g_build_filename(d->www_dir, "page.html", NULL);
    g_autofree char *tmpl = NULL;
    g_autoptr(GString) out = NULL;
    const char *p;

    if (!g_file_get_contents(path, &tmpl, NULL, NULL))
        tmpl = g_strdup("<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>@TITLE@"
                        "</title></head><body>@MAIN@</body></html>");
    out = g_string_sized_new(strlen(tmpl) + strlen(main) + 256);
    /* @TITLE@, @WHO@ (escaped here) and @NAV@, @MAIN@ (HTML already) */
    for (p = tmpl; *p;) {
        const char *at = strchr(p, '@');
        if (!at) {
            g_string_append(out, p);
            break;
        }
        g_string_append_len(out, p, at - p);
        if (g_str_has_prefix(at, "@TITLE@")) {
            web_append(out, "%s", title);
            p = at + 7;
        } else if (g_str_has_prefix(at, "@WHO@")) {
            web_append(out, "%s", who ? who : "");
            p = at + 5;
        } else if (g_str_has_prefix(at, "@NAV@")) {
            g_string_append(out, nav);
            p = at + 5;
        } else if (g_str_has_prefix(at, "@MAIN@")) {
            g_string_append(out, main);
            p = at + 6;
        } else {
            g_string_append_c(out, '@');
            p = at + 1;
        }
    }
    soup_server_message_set_status(msg, status, NULL);
    soup_message_headers_replace(
        soup_server_message_get_response_headers(msg), "Content-Security-Policy",
        "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; "
        "form-action 'self'");
    soup_message_headers_replace(soup_server_message_get_response_headers(msg), "Cache-Control",
                                 "no-store");
    soup_server_message_set_response(msg, "text/html; charset=utf-8", SOUP_MEMORY_COPY, out->str,
                                     out->len);
}

static char *
nav_html(const char *path)
{
    static const struct {
        const char *href, *label;
    } items[] = { { "/", "Jobs" }, { "/hosts", "Hosts" }, { "/bulk", "Bulk plans" } };
    GString *s = g_string_new("<nav><ul>");

    for (guint i = 0; i < G_N_ELEMENTS(items); i++) {
        gboolean cur = !strcmp(items[i].href, "/")
                           ? (!strcmp(path, "/") || g_str_has_prefix(path, "/jobs/"))
                           : g_str_has_prefix(path, items[i].href);
        web_append(s,
                   cur ? "<li><a href=\"%s\" aria-current=\"page\">%s</a></li>"
                       : "<li><a href=\"%s\">%s</a></li>",
                   items[i].href, items[i].label);
    }
    g_string_append(s, "</ul></nav>");
    return g_string_free(s, FALSE);
}

/* ---- pages, in a thread under api_lock (they may ask backends) ----------------------- */

static void
page_thread(GTask *task, gpointer source, gpointer data, GCancellable *cancellable)
{
    WebCall *w = data;
    gint64 id = 0;

    g_mutex_lock(&w->d->api_lock);
    if (!strcmp(w->path, "/"))
        web_page_jobs(w);
    else if (g_str_has_prefix(w->path, "/jobs/")
             && g_ascii_string_to_signed(w->path + 6, 10, 1, G_MAXINT64, &id, NULL))
        web_page_job(w, id);
    else if (!strcmp(w->path, "/hosts"))
        web_page_hosts(w);
    else if (!strcmp(w->path, "/bulk"))
        web_page_bulk(w);
    else
        web_set(
            w, SOUP_STATUS_NOT_FOUND, "Not found",
            g_markup_printf_escaped("<h2>Not found</h2><p>There is no page %s here.</p>", w->path));
    g_mutex_unlock(&w->d->api_lock);
    g_task_return_boolean(task, TRUE);
}

static void
page_done(GObject *source, GAsyncResult *res, gpointer data)
{
    WebCall *w = data;
    g_autofree char *nav = nav_html(w->path);

    reply_page(w->d, w->msg, w->status ? w->status : SOUP_STATUS_OK, w->title ? w->title : "",
               w->html ? w->html : "", w->caller.name, nav);
    soup_server_message_unpause(w->msg);
    web_call_free(w);
}

/* ---- static files ----------------------------------------------------------------- */

static void
serve_static(Daemon *d, SoupServerMessage *msg, const char *name)
{
    static const struct {
        const char *name, *type;
    } files[] = { { "style.css", "text/css; charset=utf-8" },
                  { "app.js", "text/javascript; charset=utf-8" } };
    g_autofree char *path = NULL;
    char *text = NULL;
    gsize len = 0;

    for (guint i = 0; i < G_N_ELEMENTS(files); i++) {
        if (strcmp(files[i].name, name) != 0)
            continue;
        path = g_build_filename(d->www_dir, name, NULL);
        if (!g_file_get_contents(path, &text, &len, NULL))
            break;
        soup_server_message_set_status(msg, SOUP_STATUS_OK, NULL);
        soup_message_headers_replace(soup_server_message_get_response_headers(msg), "Cache-Control",
                                     "no-cache");
        soup_server_message_set_response(msg, files[i].type, SOUP_MEMORY_TAKE, text, len);
        return;
    }
    soup_server_message_set_status(msg, SOUP_STATUS_NOT_FOUND, NULL);
    soup_server_message_set_response(msg, "text/plain", SOUP_MEMORY_STATIC, "not found\n", 10);
}

/* ---- the handler ------------------------------------------------------------------- */

static void
web_handler(SoupServer *server, SoupServerMessage *msg, const char *path, GHashTable *query,
            gpointer data)
{
    Daemon *d = data;
    const char *method = soup_server_message_get_method(msg);
    g_autoptr(GError) err = NULL;
    g_autoptr(GTask) task = NULL;
    WebCall *w;

    d->requests++;
    if (!strcmp(path, "/login")) {
        daemon_tcp_login(d, msg);
        return;
    }
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
        soup_server_message_set_status(msg, SOUP_STATUS_METHOD_NOT_ALLOWED, NULL);
        return;
    }
    if (g_str_has_prefix(path, "/static/")) {
        serve_static(d, msg, path + 8);
        return;
    }
    w = g_new0(WebCall, 1);
    w->d = d;
    w->msg = g_object_ref(msg);
    w->path = g_strdup(path);
    if (!daemon_caller_from_message(d, msg, &w->caller, &err) || !w->caller.can_read) {
        d->refused++;
        if (daemon_message_is_tcp(msg) && !w->caller.name) {
            soup_server_message_set_redirect(msg, SOUP_STATUS_SEE_OTHER, "/login");
        } else {
            g_autofree char *nav = nav_html(path);
            g_autofree char *m = g_markup_printf_escaped(
                "<h2>Not allowed</h2><p>%s may not read: that needs root or membership of "
                "group '%s'.</p>",
                w->caller.name ? w->caller.name : "who is asking is unknown", d->read_group);
            reply_page(d, msg, SOUP_STATUS_FORBIDDEN, "Not allowed", m, w->caller.name, nav);
        }
        web_call_free(w);
        return;
    }
    if (query)
        w->query = g_hash_table_ref(query);
    task = g_task_new(NULL, NULL, page_done, w);
    g_task_set_task_data(task, w, NULL);
    soup_server_message_pause(msg);
    g_task_run_in_thread(task, page_thread);
}

/* Every answer, of the API too: no type sniffing, no referrer to other sites. */
static void
on_request_read(SoupServer *server, SoupServerMessage *msg, gpointer data)
{
    SoupMessageHeaders *h = soup_server_message_get_response_headers(msg);

    soup_message_headers_replace(h, "X-Content-Type-Options", "nosniff");
    soup_message_headers_replace(h, "Referrer-Policy", "same-origin");
}

void
daemon_web_register(Daemon *d)
{
    soup_server_add_handler(d->server, "/", web_handler, d, NULL);
    g_signal_connect(d->server, "request-read", G_CALLBACK(on_request_read), d);
}
