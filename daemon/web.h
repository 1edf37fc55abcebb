/*
 * vmshiftd: the web view's private interface between web.c (routing,
 * template, static files) and webpages.c (the pages).
 */
#ifndef VMSHIFT_DAEMON_WEB_H
#define VMSHIFT_DAEMON_WEB_H

#include "daemon/daemon.h"

typedef struct WebCall WebCall;

const char *web_q(WebCall *w, const char *key);
Daemon *web_daemon(WebCall *w);
gboolean web_can_change(WebCall *w);
/* The page's status, title and main part (@html: HTML, taken). */
void web_set(WebCall *w, guint status, const char *title, char *html);
/* g_string_append of g_markup_printf_escaped(). */
void web_append(GString *s, const char *fmt, ...) G_GNUC_PRINTF(2, 3);

void web_page_jobs(WebCall *w);
void web_page_job(WebCall *w, gint64 id);
void web_page_hosts(WebCall *w);
void web_page_bulk(WebCall *w);

#endif /* VMSHIFT_DAEMON_WEB_H */
