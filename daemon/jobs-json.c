/*
 * vmshiftd: the JSON of journal jobs written straight into a GString, with
 * the bytes json-c gives for the same objects (host_json_job() and the
 * "switchover" of `vmshift --json jobs`, printed with JSON_C_TO_STRING_PRETTY
 * | JSON_C_TO_STRING_NOSLASHESCAPE), without building them: GET /api/v1/jobs
 * of 10,000 jobs was ~400,000 json-c objects built, printed and freed.
 *
 * json-c's pretty form, which this reproduces: a container at nesting level
 * L opens with "{\n" (or "[\n"), puts each member on its own line indented
 * by 2 (L + 1) spaces as "key":value (no space), separates them with ",\n",
 * and closes with "\n", 2 L spaces and "}" -- an empty one is "{\n", 2 L
 * spaces, "}". Strings escape " \ \b \f \n \r \t and other bytes below 0x20
 * as \u00xx (lower-case hex), nothing else. Doubles are "%.17g" with ".0"
 * added when that looks like an integer. Integers are "%lld".
 *
 * A job's spec and results are JSON text in the journal that host_json_job()
 * parses (json_tokener_parse) and json-c prints again: the parsed value's
 * print is the text reindented when the text is plain JSON -- json-c keeps a
 * double's own digits, and an integer of up to 18 digits without leading
 * zeros prints as written. Anything else (\u escapes, a duplicate key, a
 * comment, NaN, a big or "-0" integer, trailing text, deep nesting, bytes
 * that are not UTF-8, no JSON at all) goes through json-c itself, so the
 * output is json-c's whatever the journal holds; tests/daemon/jobs-json.sh
 * compares the two byte for byte.
 */
#include "config.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "daemon/daemon.h"

/* deeper JSON goes through json-c (its tokener stops at 32) */
#define REPRINT_DEPTH 16

/* Appends without GLib's g_string_insert_len() behind put()
 * (not inline before GLib 2.76): the listing is ~1 million small appends. */
static inline void
put(GString *s, const char *p, gsize n)
{
    if (G_UNLIKELY(s->len + n + 1 > s->allocated_len)) {
        gsize len = s->len;
        g_string_set_size(s, len + n + s->allocated_len);
        g_string_truncate(s, len);
    }
    memcpy(s->str + s->len, p, n);
    s->len += n;
    s->str[s->len] = 0;
}

#define PUT(s, lit) put((s), "" lit, sizeof(lit) - 1)

static inline void
put_str(GString *s, const char *p)
{
    put(s, p, strlen(p));
}

static void
indent(GString *s, int level)
{
    static const char spaces[] = "                                                                ";

    while (level > 0) {
        int n = MIN(level * 2, (int)sizeof spaces - 1);
        put(s, spaces, (gsize)n);
        level -= n / 2;
    }
}

/* @n bytes of @v, escaped as json-c does (NOSLASHESCAPE) */
static void
escape_len(GString *s, const char *v, gsize n)
{
    static const char hex[] = "0123456789abcdef";
    gsize start = 0;

    for (gsize i = 0; i < n; i++) {
        unsigned char c = (unsigned char)v[i];
        const char *e;
        char u[7];
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        put(s, v + start, i - start);
        start = i + 1;
        switch (c) {
        case '"': e = "\\\""; break;
        case '\\': e = "\\\\"; break;
        case '\b': e = "\\b"; break;
        case '\f': e = "\\f"; break;
        case '\n': e = "\\n"; break;
        case '\r': e = "\\r"; break;
        case '\t': e = "\\t"; break;
        default:
            u[0] = '\\', u[1] = 'u', u[2] = '0', u[3] = '0', u[4] = hex[c >> 4],
            u[5] = hex[c & 0xf], u[6] = 0;
            e = u;
        }
        put_str(s, e);
    }
    put(s, v + start, n - start);
}

/* as host_json_string(): NULL is null, bytes that are not UTF-8 U+FFFD */
static void
put_string(GString *s, const char *v)
{
    g_autofree char *valid = NULL;
    gsize n;

    if (!v) {
        PUT(s, "null");
        return;
    }
    n = strlen(v);
    if (!g_utf8_validate_len(v, n, NULL)) {
        valid = g_utf8_make_valid(v, (gssize)n);
        v = valid;
        n = strlen(v);
    }
    g_string_append_c(s, '"');
    escape_len(s, v, n);
    g_string_append_c(s, '"');
}

static void
put_int(GString *s, gint64 v)
{
    char buf[24], *p = buf + sizeof buf;
    guint64 u = v < 0 ? (guint64)0 - (guint64)v : (guint64)v;

    do
        *--p = (char)('0' + u % 10);
    while ((u /= 10));
    if (v < 0)
        *--p = '-';
    put(s, p, (gsize)(buf + sizeof buf - p));
}

/* json_object_double_to_json_string_format() with its default "%.17g" */
static void
put_double(GString *s, double v)
{
    char buf[128];
    char *p;
    int n;

    if (isnan(v)) {
        PUT(s, "NaN");
        return;
    }
    if (isinf(v)) {
        put_str(s, v > 0 ? "Infinity" : "-Infinity");
        return;
    }
    n = snprintf(buf, sizeof buf, "%.17g", v);
    if (n < 0 || n >= (int)sizeof buf - 2)
        return;
    if ((p = strchr(buf, ',')))
        *p = '.';
    else
        p = strchr(buf, '.');
    if (!p && !strchr(buf, 'e')
        && (g_ascii_isdigit(buf[0]) || (n > 1 && buf[0] == '-' && g_ascii_isdigit(buf[1]))))
        strcat(buf, ".0");
    put_str(s, buf);
}

/* a member's start: ",\n" after the first, the indent, "key": */
static void
put_key_len(GString *s, int level, const char *key, gsize n, gboolean first)
{
    if (!first)
        PUT(s, ",\n");
    indent(s, level);
    g_string_append_c(s, '"');
    put(s, key, n);
    PUT(s, "\":");
}

#define put_key(s, level, key, first) put_key_len((s), (level), "" key, sizeof(key) - 1, (first))

static void
close_container(GString *s, int level, gboolean had_children, char c)
{
    if (had_children)
        g_string_append_c(s, '\n');
    indent(s, level);
    g_string_append_c(s, c);
}

static void
put_empty_object(GString *s, int level)
{
    PUT(s, "{\n");
    close_container(s, level, FALSE, '}');
}

/* ---- JSON text printed again (spec, results) ----------------------------------------- */

typedef struct {
    const char *p;
    GString *s;
} Reprint;

static gboolean reprint_value(Reprint *r, int level, int depth);

static void
skip_ws(Reprint *r)
{
    while (*r->p == ' ' || *r->p == '\t' || *r->p == '\n' || *r->p == '\r')
        r->p++;
}

/* A string of plain JSON at r->p, written out as json-c prints it: FALSE for
 * a \u escape, a raw control byte or bytes that are not UTF-8. */
static gboolean
reprint_string(Reprint *r)
{
    const char *start = ++r->p, *begin = start; /* after the quote */
    gboolean high = FALSE;

    g_string_append_c(r->s, '"');
    for (;;) {
        unsigned char c = (unsigned char)*r->p;
        if (c == '"')
            break;
        if (c < 0x20)
            return FALSE; /* the end of the text, or a raw control byte */
        if (c >= 0x80)
            high = TRUE;
        if (c != '\\') {
            r->p++;
            continue;
        }
        put(r->s, start, (gsize)(r->p - start));
        switch (r->p[1]) {
        case '"': PUT(r->s, "\\\""); break;
        case '\\': PUT(r->s, "\\\\"); break;
        case '/': g_string_append_c(r->s, '/'); break;
        case 'b': PUT(r->s, "\\b"); break;
        case 'f': PUT(r->s, "\\f"); break;
        case 'n': PUT(r->s, "\\n"); break;
        case 'r': PUT(r->s, "\\r"); break;
        case 't': PUT(r->s, "\\t"); break;
        default: return FALSE; /* \u, or not an escape */
        }
        r->p += 2;
        start = r->p;
    }
    put(r->s, start, (gsize)(r->p - start));
    g_string_append_c(r->s, '"');
    /* escapes are ASCII: the text between the quotes is UTF-8 or not */
    if (high && !g_utf8_validate_len(begin, (gsize)(r->p - begin), NULL))
        return FALSE;
    r->p++;
    return TRUE;
}

/* A number of strict JSON: copied when json-c prints it as written. */
static gboolean
reprint_number(Reprint *r)
{
    const char *q = r->p, *digits;
    gboolean is_double = FALSE;
    gsize n;

    if (*q == '-')
        q++;
    digits = q;
    if (!g_ascii_isdigit(*q))
        return FALSE;
    while (g_ascii_isdigit(*q))
        q++;
    n = (gsize)(q - digits);
    if (*q == '.') {
        is_double = TRUE;
        if (!g_ascii_isdigit(*++q))
            return FALSE;
        while (g_ascii_isdigit(*q))
            q++;
    }
    if (*q == 'e' || *q == 'E') {
        const char *e;
        is_double = TRUE;
        if (*++q == '+' || *q == '-')
            q++;
        e = q;
        while (g_ascii_isdigit(*q))
            q++;
        if (q == e || q - e > 2) /* out of a double's range is json-c's to judge */
            return FALSE;
    }
    if (!is_double && (n > 18 || (digits[0] == '0' && (n > 1 || r->p[0] == '-'))))
        return FALSE; /* 007 prints 7, -0 prints 0, big ones are json-c's */
    if (is_double && digits[0] == '0' && n > 1)
        return FALSE;
    put(r->s, r->p, (gsize)(q - r->p));
    r->p = q;
    return TRUE;
}

/* an object of more keys goes through json-c (for its duplicates) */
#define REPRINT_KEYS 32

typedef struct {
    gsize at[REPRINT_KEYS], len[REPRINT_KEYS];
    guint n;
} Keys;

/* Whether the key just written at @at (its quotes and all) was written before
 * in this object, or is one too many to look through. */
static gboolean
duplicate_key(Reprint *r, Keys *keys, gsize at)
{
    gsize len = r->s->len - at;

    if (keys->n == REPRINT_KEYS)
        return TRUE;
    for (guint i = 0; i < keys->n; i++)
        if (keys->len[i] == len && !memcmp(r->s->str + keys->at[i], r->s->str + at, len))
            return TRUE;
    keys->at[keys->n] = at;
    keys->len[keys->n++] = len;
    return FALSE;
}

static gboolean
reprint_container(Reprint *r, int level, int depth)
{
    gboolean object = *r->p == '{';
    char close = object ? '}' : ']';
    Keys keys;
    gboolean first = TRUE;

    if (depth > REPRINT_DEPTH)
        return FALSE;
    keys.n = 0;
    g_string_append_c(r->s, *r->p++);
    g_string_append_c(r->s, '\n');
    skip_ws(r);
    while (*r->p != close) {
        if (!first) {
            if (*r->p != ',')
                return FALSE;
            r->p++;
            skip_ws(r);
            PUT(r->s, ",\n");
        }
        first = FALSE;
        indent(r->s, level + 1);
        if (object) {
            gsize at = r->s->len;
            if (*r->p != '"' || !reprint_string(r) || duplicate_key(r, &keys, at))
                return FALSE;
            skip_ws(r);
            if (*r->p++ != ':')
                return FALSE;
            g_string_append_c(r->s, ':');
        }
        if (!reprint_value(r, level + 1, depth + 1))
            return FALSE;
        skip_ws(r);
    }
    r->p++;
    close_container(r->s, level, !first, close);
    return TRUE;
}

static gboolean
reprint_value(Reprint *r, int level, int depth)
{
    static const char *const words[] = { "true", "false", "null" };

    skip_ws(r);
    switch (*r->p) {
    case '{':
    case '[': return reprint_container(r, level, depth);
    case '"': return reprint_string(r);
    case '-': return reprint_number(r);
    }
    if (g_ascii_isdigit(*r->p))
        return reprint_number(r);
    for (guint i = 0; i < G_N_ELEMENTS(words); i++) {
        gsize n = strlen(words[i]);
        if (!strncmp(r->p, words[i], n) && !g_ascii_isalnum(r->p[n])) {
            put(r->s, words[i], n);
            r->p += n;
            return TRUE;
        }
    }
    return FALSE;
}

/* What json-c prints, at @level, for json_tokener_parse(@text): NULL (no
 * JSON, or "null") is null, or {} when @empty_object. */
static void
put_parsed_json_c(GString *s, const char *text, int level, gboolean empty_object)
{
    json_object *o = json_tokener_parse(text);
    const char *out;

    if (!o) {
        if (!empty_object)
            PUT(s, "null");
        else
            put_empty_object(s, level);
        return;
    }
    out = json_object_to_json_string_ext(o,
                                         JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE);
    /* printed at level 0: a raw newline only ever starts a line */
    for (const char *nl; (nl = strchr(out, '\n')); out = nl + 1) {
        put(s, out, (gsize)(nl + 1 - out));
        indent(s, level);
    }
    put_str(s, out);
    json_object_put(o);
}

/* The JSON text @text as host_json_job() has json-c parse and print it */
static void
put_json_text(GString *s, const char *text, int level, gboolean empty_object)
{
    Reprint r = { text, s };
    gsize mark = s->len;

    if (text && *text) {
        skip_ws(&r);
        if (strncmp(r.p, "null", 4) != 0 && reprint_value(&r, level, 1)) {
            skip_ws(&r);
            if (!*r.p)
                return;
        }
    }
    g_string_truncate(s, mark);
    if (!text && empty_object)
        put_empty_object(s, level);
    else if (!text)
        PUT(s, "null");
    else
        put_parsed_json_c(s, text, level, empty_object);
}

/* ---- a job --------------------------------------------------------------------------- */

static void
put_schedule(GString *s, const HostSchedule *sc, const char *job_state, int level)
{
    g_autofree char *when = host_format_switchover(sc->switchover_at);
    g_autofree char *text = host_schedule_text(sc, job_state);

    PUT(s, "{\n");
    put_key(s, level + 1, "at", TRUE);
    put_int(s, sc->switchover_at);
    put_key(s, level + 1, "at_text", FALSE);
    put_string(s, when ? when : "");
    put_key(s, level + 1, "mode", FALSE);
    put_string(s, sc->mode);
    put_key(s, level + 1, "state", FALSE);
    put_string(s, sc->state);
    put_key(s, level + 1, "text", FALSE);
    put_string(s, text);
    close_container(s, level, TRUE, '}');
}

static void
put_error_location(GString *s, const HostJobRecord *r, int l)
{
    put_key(s, l, "error", FALSE);
    if (r->error_code) {
        PUT(s, "{\n");
        put_key(s, l + 1, "code", TRUE);
        put_string(s, r->error_code);
        put_key(s, l + 1, "message", FALSE);
        put_string(s, r->error_message);
        close_container(s, l, TRUE, '}');
    } else {
        PUT(s, "null");
    }
    put_key(s, l, "location", FALSE);
    PUT(s, "{\n");
    put_key(s, l + 1, "host", TRUE);
    put_string(s, r->location_verified ? r->location_host : NULL);
    put_key(s, l + 1, "detail", FALSE);
    put_string(s, r->location_detail);
    put_key(s, l + 1, "verified", FALSE);
    put_str(s, r->location_verified ? "true" : "false");
    close_container(s, l, TRUE, '}');
}

void
daemon_json_job(GString *s, const HostJobRecord *r, const HostSchedule *sc, int level)
{
    const int l = level + 1;

    PUT(s, "{\n");
    put_key(s, l, "id", TRUE);
    put_int(s, r->id);
    put_key(s, l, "kind", FALSE);
    put_string(s, r->kind);
    put_key(s, l, "backend", FALSE);
    put_string(s, r->backend);
    put_key(s, l, "vm", FALSE);
    put_string(s, r->vm);
    put_key(s, l, "state", FALSE);
    put_string(s, r->state);
    put_key(s, l, "phase", FALSE);
    put_string(s, r->phase);
    put_key(s, l, "pid", FALSE);
    put_int(s, r->pid);
    put_key(s, l, "created", FALSE);
    put_int(s, r->created);
    put_key(s, l, "started", FALSE);
    put_int(s, r->started);
    put_key(s, l, "ended", FALSE);
    if (r->ended)
        put_int(s, r->ended);
    else
        PUT(s, "null");
    put_key(s, l, "percent", FALSE);
    put_double(s, r->percent);
    put_key(s, l, "bytes_done", FALSE);
    put_int(s, r->bytes_done);
    put_key(s, l, "bytes_total", FALSE);
    put_int(s, r->bytes_total);
    put_error_location(s, r, l);
    put_key(s, l, "source_host", FALSE);
    put_string(s, r->source_host);
    put_key(s, l, "source_path", FALSE);
    put_string(s, r->source_path);
    put_key(s, l, "cancel_requested", FALSE);
    put_str(s, r->cancel_requested ? "true" : "false");
    put_key(s, l, "note", FALSE);
    put_string(s, r->note);
    put_key(s, l, "spec", FALSE);
    put_json_text(s, r->spec, l, FALSE);
    put_key(s, l, "results", FALSE);
    put_json_text(s, r->results, l, TRUE);
    if (sc) {
        put_key(s, l, "switchover", FALSE);
        put_schedule(s, sc, r->state, l);
    }
    close_container(s, level, TRUE, '}');
}

/* ---- the listing, in pieces ---------------------------------------------------------- */

struct DaemonJobsWriter {
    GPtrArray *list;       /* HostJobRecord */
    GHashTable *schedules; /* job id -> HostSchedule, or NULL */
    gint64 total, limit, offset;
    guint next;
    gboolean started, done;
};

DaemonJobsWriter *
daemon_jobs_writer_new(GPtrArray *list, GHashTable *schedules, gint64 total, gint64 limit,
                       gint64 offset)
{
    DaemonJobsWriter *w = g_new0(DaemonJobsWriter, 1);

    w->list = g_ptr_array_ref(list);
    w->schedules = schedules ? g_hash_table_ref(schedules) : NULL;
    w->total = total;
    w->limit = limit;
    w->offset = offset;
    return w;
}

void
daemon_jobs_writer_free(DaemonJobsWriter *w)
{
    if (!w)
        return;
    g_ptr_array_unref(w->list);
    if (w->schedules)
        g_hash_table_unref(w->schedules);
    g_free(w);
}

gboolean
daemon_jobs_writer_next(DaemonJobsWriter *w, GString *s, gsize want)
{
    if (w->done)
        return FALSE;
    if (!w->started) {
        PUT(s, "{\n  \"jobs\":[\n");
        w->started = TRUE;
    }
    while (w->next < w->list->len && s->len < want) {
        const HostJobRecord *r = g_ptr_array_index(w->list, w->next);
        const HostSchedule *sc = w->schedules ? g_hash_table_lookup(w->schedules, &r->id) : NULL;
        if (w->next++)
            PUT(s, ",\n");
        indent(s, 2);
        daemon_json_job(s, r, sc, 2);
    }
    if (w->next < w->list->len)
        return TRUE;
    close_container(s, 1, w->list->len > 0, ']');
    put_key(s, 1, "total", FALSE);
    put_int(s, w->total);
    put_key(s, 1, "limit", FALSE);
    put_int(s, w->limit);
    put_key(s, 1, "offset", FALSE);
    put_int(s, w->offset);
    PUT(s, "\n}");
    w->done = TRUE;
    return TRUE;
}
