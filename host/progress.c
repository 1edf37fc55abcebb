/*
 * vmshift host: progress display.
 *
 * On a terminal (stderr), one live status line: a bar, percent, bytes,
 * rate, ETA and phase; log lines scroll above it. Otherwise plain lines, one
 * per phase change and per 10 % step. stdout stays free for results (and for
 * the single JSON document of --json). Everything here runs on the main
 * thread.
 */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "host/host.h"

typedef struct {
    gint64 t_last;
    guint64 b_last;
    double rate; /* bytes/s, smoothed */
    int last_step;
    guint32 last_phase;
    char *line; /* last status for the tty */
} Track;

struct HostProgress {
    gboolean tty;
    gboolean json;
    gboolean bar_shown;
    GHashTable *tracks; /* label -> Track */
    GPtrArray *order;   /* labels in first-seen order */
};

static void
track_free(Track *t)
{
    g_free(t->line);
    g_free(t);
}

HostProgress *
host_progress_new(gboolean tty, gboolean json)
{
    HostProgress *p = g_new0(HostProgress, 1);
    p->tty = tty;
    p->json = json;
    p->tracks = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, (GDestroyNotify)track_free);
    p->order = g_ptr_array_new_with_free_func(g_free);
    return p;
}

void
host_progress_free(HostProgress *p)
{
    if (!p)
        return;
    g_hash_table_unref(p->tracks);
    g_ptr_array_unref(p->order);
    g_free(p);
}

static int
term_width(void)
{
    struct winsize ws;
    if (ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 20)
        return ws.ws_col;
    return 80;
}

static void
clear_bar(HostProgress *p)
{
    if (p->tty && p->bar_shown) {
        fputs("\r\033[K", stderr);
        p->bar_shown = FALSE;
    }
}

static void
draw_bar(HostProgress *p)
{
    g_autoptr(GString) s = g_string_new(NULL);
    int width = term_width() - 1;

    if (!p->tty)
        return;
    for (guint i = 0; i < p->order->len; i++) {
        Track *t = g_hash_table_lookup(p->tracks, g_ptr_array_index(p->order, i));
        g_autofree char *shown = t->line ? host_display(t->line) : NULL;
        if (!shown)
            continue;
        if (s->len)
            g_string_append(s, " | ");
        g_string_append(s, shown);
    }
    if ((int)g_utf8_strlen(s->str, -1) > width)
        g_string_truncate(s, g_utf8_offset_to_pointer(s->str, width) - s->str);
    fprintf(stderr, "\r\033[K%s", s->str);
    fflush(stderr);
    p->bar_shown = TRUE;
}

void
host_progress_line(HostProgress *p, const char *format, ...)
{
    va_list ap;
    g_autofree char *msg = NULL, *shown = NULL;

    va_start(ap, format);
    msg = g_strdup_vprintf(format, ap);
    va_end(ap);
    shown = host_display(msg); /* names escaped, ASCII under LC_ALL=C */
    clear_bar(p);
    fflush(stdout);
    fprintf(stderr, "%s\n", shown);
    if (p->tty)
        draw_bar(p);
    fflush(stderr);
}

void
host_progress_update(HostProgress *p, const char *label, VmshiftJob *job)
{
    VmshiftJobProgress pr = { .struct_size = sizeof pr };
    Track *t = g_hash_table_lookup(p->tracks, label);
    gint64 now = g_get_monotonic_time();
    g_autofree char *done = NULL, *total = NULL, *rate = NULL, *eta = NULL;
    g_autoptr(GString) bar = g_string_new(NULL);
    const char *phase;
    int step;

    if (!t) {
        t = g_new0(Track, 1);
        t->last_step = -1;
        t->t_last = now;
        g_hash_table_insert(p->tracks, g_strdup(label), t);
        g_ptr_array_add(p->order, g_strdup(label));
    }
    vmshift_job_get_progress(job, &pr);
    phase = vmshift_phase_name(pr.phase);
    if (now - t->t_last >= G_USEC_PER_SEC / 2) {
        double dt = (double)(now - t->t_last) / G_USEC_PER_SEC;
        double inst = pr.bytes_done >= t->b_last ? (double)(pr.bytes_done - t->b_last) / dt : 0;
        t->rate = t->rate > 0 ? 0.7 * t->rate + 0.3 * inst : inst;
        t->t_last = now;
        t->b_last = pr.bytes_done;
    }
    done = host_format_bytes(pr.bytes_done);
    total = host_format_bytes(pr.bytes_total);
    if (pr.bytes_total > pr.bytes_done && t->rate > 1)
        eta = host_format_duration((gint64)((double)(pr.bytes_total - pr.bytes_done) / t->rate));
    rate = host_format_bytes((guint64)t->rate);

    if (p->tty) {
        int filled = pr.percent >= 0 ? (int)(pr.percent / 5) : 0;
        g_string_append_c(bar, '[');
        for (int i = 0; i < 20; i++)
            g_string_append_c(bar, i < filled ? '#' : '-');
        g_string_append_c(bar, ']');
        if (pr.percent >= 0)
            g_string_append_printf(bar, " %3.0f%%", pr.percent);
        else
            g_string_append(bar, "   ?%");
        if (pr.bytes_total)
            g_string_append_printf(bar, " %s/%s %s/s ETA %s", done, total, rate, eta ? eta : "-");
        g_string_append_printf(bar, " %s %s", phase, label);
        g_free(t->line);
        t->line = g_string_free(g_steal_pointer(&bar), FALSE);
        draw_bar(p);
    } else {
        step = pr.percent >= 0 ? (int)(pr.percent / 10) : -1;
        /* phase changes are printed by the job's phase hook */
        if (pr.phase != t->last_phase)
            t->last_step = -1;
        t->last_phase = pr.phase;
        if (step > t->last_step && step >= 0) {
            if (pr.bytes_total)
                host_progress_line(p, "%s: %s %.0f%% (%s of %s, %s/s)", label, phase,
                                   pr.percent < 0 ? 0 : pr.percent, done, total, rate);
            else
                host_progress_line(p, "%s: %s %.0f%%", label, phase, pr.percent);
            t->last_step = step;
        }
    }
    vmshift_job_progress_clear(&pr);
}

void
host_progress_remove(HostProgress *p, const char *label)
{
    Track *t = g_hash_table_lookup(p->tracks, label);
    if (t && t->line) {
        g_clear_pointer(&t->line, g_free);
        clear_bar(p);
        for (guint i = 0; i < p->order->len; i++) {
            Track *o = g_hash_table_lookup(p->tracks, g_ptr_array_index(p->order, i));
            if (o->line) {
                draw_bar(p);
                break;
            }
        }
    }
}

void
host_progress_finish(HostProgress *p)
{
    for (guint i = 0; i < p->order->len; i++) {
        Track *t = g_hash_table_lookup(p->tracks, g_ptr_array_index(p->order, i));
        g_clear_pointer(&t->line, g_free);
    }
    clear_bar(p);
    fflush(stderr);
}
