/*
 * vmshift host: progress display.
 *
 * On a terminal (stderr), a live block at the bottom: one line per running
 * job (its label, phase, a bar, percent, bytes, rate, ETA), each cut to the
 * terminal's width and redrawn in place (the cursor goes back up over the
 * block, ANSI CUU/EL/ED); a job's line leaves the block when the job ends,
 * and log lines scroll above it. Otherwise (a pipe, a file, TERM=dumb) plain
 * lines, one per phase change and per 10 % step. stdout stays free for
 * results (and for the single JSON document of --json). Everything here
 * runs on the main thread.
 */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
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
    char *line; /* the job's line in the block (tty), NULL once it ended */
} Track;

struct HostProgress {
    gboolean tty;
    gboolean json;
    guint drawn;        /* lines of the block on the terminal; the cursor is below them */
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
    const char *term = g_getenv("TERM");

    /* a terminal that cannot move its cursor gets the plain lines */
    p->tty = tty && !(term && !strcmp(term, "dumb"));
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

/* Columns of the terminal on stderr (COLUMNS when it does not say, then 80). */
static int
term_width(void)
{
    struct winsize ws;
    const char *env = g_getenv("COLUMNS");

    if (ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0)
        return ws.ws_col;
    if (env && atoi(env) > 0)
        return atoi(env);
    return 80;
}

/* @s cut to at most @cols terminal columns (wide characters count two). */
static void
cut_to_columns(GString *s, int cols)
{
    int used = 0;

    for (const char *q = s->str; *q; q = g_utf8_next_char(q)) {
        gunichar c = g_utf8_get_char(q);
        int w = g_unichar_iszerowidth(c) ? 0 : g_unichar_iswide(c) ? 2 : 1;
        if (used + w > cols) {
            g_string_truncate(s, q - s->str);
            return;
        }
        used += w;
    }
}

/* Draws the block again where it is: up over the lines drawn last time,
 * one line per running job (never wider than the terminal, so that each
 * takes exactly one row and the count of rows to go up stays right), then
 * erases what is left below (the lines of jobs that ended). */
static void
redraw(HostProgress *p)
{
    g_autoptr(GString) out = g_string_new(NULL);
    int width = term_width() - 1; /* the last column would wrap on some terminals */
    guint n = 0;

    if (!p->tty)
        return;
    if (p->drawn)
        g_string_append_printf(out, "\033[%uA", p->drawn);
    g_string_append_c(out, '\r');
    for (guint i = 0; i < p->order->len; i++) {
        Track *t = g_hash_table_lookup(p->tracks, g_ptr_array_index(p->order, i));
        g_autofree char *shown = t->line ? host_display(t->line) : NULL;
        g_autoptr(GString) line = NULL;
        if (!shown)
            continue;
        line = g_string_new(shown);
        cut_to_columns(line, width);
        g_string_append_printf(out, "%s\033[K\n", line->str);
        n++;
    }
    g_string_append(out, "\033[J");
    fputs(out->str, stderr);
    fflush(stderr);
    p->drawn = n;
}

/* Erases the block, leaving the cursor where its first line was. */
static void
clear_block(HostProgress *p)
{
    if (p->tty && p->drawn) {
        fprintf(stderr, "\033[%uA\r\033[J", p->drawn);
        p->drawn = 0;
    }
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
    fflush(stdout);
    clear_block(p);
    fprintf(stderr, "%s\n", shown);
    redraw(p);
    fflush(stderr);
}

/* The tty line of a job: "LABEL PHASE [####----] 45% DONE/TOTAL RATE/s ETA T";
 * the label first, so that cutting the line to the width keeps it. */
static char *
tty_line(const char *label, const char *phase, const VmshiftJobProgress *pr, const char *done,
         const char *total, const char *rate, const char *eta)
{
    GString *s = g_string_new(NULL);
    int filled = pr->percent >= 0 ? (int)(pr->percent / 5) : 0;

    g_string_append_printf(s, "%s %s [", label, phase);
    for (int i = 0; i < 20; i++)
        g_string_append_c(s, i < filled ? '#' : '-');
    g_string_append_c(s, ']');
    if (pr->percent >= 0)
        g_string_append_printf(s, " %3.0f%%", pr->percent);
    else
        g_string_append(s, "   ?%");
    if (pr->bytes_total)
        g_string_append_printf(s, " %s/%s %s/s ETA %s", done, total, rate, eta ? eta : "-");
    return g_string_free(s, FALSE);
}

void
host_progress_update(HostProgress *p, const char *label, VmshiftJob *job)
{
    VmshiftJobProgress pr = { .struct_size = sizeof pr };
    Track *t = g_hash_table_lookup(p->tracks, label);
    gint64 now = g_get_monotonic_time();
    g_autofree char *done = NULL, *total = NULL, *rate = NULL, *eta = NULL;
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
        g_autofree char *line = tty_line(label, phase, &pr, done, total, rate, eta);
        if (g_strcmp0(line, t->line) != 0) {
            g_free(t->line);
            t->line = g_steal_pointer(&line);
            redraw(p);
        }
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
        redraw(p); /* the job's line leaves the block */
    }
}

void
host_progress_finish(HostProgress *p)
{
    for (guint i = 0; i < p->order->len; i++) {
        Track *t = g_hash_table_lookup(p->tracks, g_ptr_array_index(p->order, i));
        g_clear_pointer(&t->line, g_free);
    }
    clear_block(p);
    fflush(stderr);
}
