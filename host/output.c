/*
 * vmshift host: output for people (aligned tables, sizes, times) and for
 * programs (JSON through json-c).
 */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>

#include <libsmartcols.h>

#include "host/host.h"

void
host_err(const char *format, ...)
{
    va_list ap;
    g_autofree char *msg = NULL;

    va_start(ap, format);
    msg = g_strdup_vprintf(format, ap);
    va_end(ap);
    fflush(stdout);
    fprintf(stderr, "vmshift: %s\n", msg);
}

void
host_warn(const char *format, ...)
{
    va_list ap;
    g_autofree char *msg = NULL;

    va_start(ap, format);
    msg = g_strdup_vprintf(format, ap);
    va_end(ap);
    fflush(stdout);
    fprintf(stderr, "vmshift: warning: %s\n", msg);
}

/* ---- text for a terminal ----------------------------------------------------- */

/* The ASCII stand-in of a character vmshift itself prints, or NULL. */
static const char *
ascii_for(gunichar c)
{
    switch (c) {
    case 0x2605: /* black star */ return "*";
    case 0x2606: /* white star */ return ".";
    case 0x00a0: /* no-break space */
    case 0x202f: /* narrow no-break space */ return " ";
    case 0x2192: /* rightwards arrow */ return "->";
    case 0x2013: /* en dash */
    case 0x2014: /* em dash */ return "-";
    case 0x2026: /* ellipsis */ return "...";
    default: return NULL;
    }
}

/* @s with the stand-ins of ascii_for() (or '?') for what is not ASCII
 * under a locale that is not UTF-8; with @escape, also control characters
 * and bytes that are not UTF-8 as \xNN (left as they are without). */
static char *
display(const char *s, gboolean escape)
{
    static int utf8 = -1;
    GString *out;
    const char *p, *end;

    if (!s)
        return NULL;
    if (utf8 < 0)
        utf8 = g_get_charset(NULL);
    out = g_string_sized_new(strlen(s));
    end = s + strlen(s);
    for (p = s; p < end;) {
        gunichar c = g_utf8_get_char_validated(p, end - p);
        const char *next;
        if (c == (gunichar)-1 || c == (gunichar)-2) {
            if (escape)
                g_string_append_printf(out, "\\x%02x", (guchar)*p);
            else
                g_string_append_c(out, *p);
            p++;
            continue;
        }
        next = g_utf8_next_char(p);
        if (!escape && (c < 0x20 || c == 0x7f || (c >= 0x80 && c < 0xa0)))
            g_string_append_len(out, p, next - p);
        else if (c < 0x20 || c == 0x7f || (c >= 0x80 && c < 0xa0))
            g_string_append_printf(out, c < 0x100 ? "\\x%02x" : "\\u%04x", c);
        else if (c < 0x80 || utf8)
            g_string_append_len(out, p, next - p);
        else
            g_string_append(out, ascii_for(c) ? ascii_for(c) : "?");
        p = next;
    }
    return g_string_free(out, FALSE);
}

char *
host_display(const char *s)
{
    return display(s, TRUE);
}

/* ---- tables (libsmartcols) ----------------------------------------------------- */

/* The global options that shape every table (cli.c sets them once). */
static struct {
    char *columns; /* -o: "A,B", or "+A,B" for the defaults and A, B */
    gboolean noheadings;
    gboolean raw;
    gboolean refused; /* a table refused -o: the command exits 2 */
} table_opts;

struct HostTable {
    struct libscols_table *tb;
    GPtrArray *names; /* the caller's column names, in the caller's order */
    GArray *shown;    /* guint each: the caller's index of each printed column */
    gboolean refused; /* -o named a column this table lacks: prints nothing */
};

void
host_table_set_options(const char *columns, gboolean noheadings, gboolean raw)
{
    g_free(table_opts.columns);
    table_opts.columns = g_strdup(columns);
    table_opts.noheadings = noheadings;
    table_opts.raw = raw;
    table_opts.refused = FALSE;
}

gboolean
host_table_refused(void)
{
    return table_opts.refused;
}

/* A column's name for -o: its header with each run of other characters than
 * letters and digits as one '-' ("VM IS ON" -> "VM-IS-ON"), upper case. The
 * user's words are read the same way, so "vm_is_on" names it too. */
static char *
column_key(const char *name)
{
    GString *k = g_string_new(NULL);

    for (const char *p = name; *p; p++) {
        if (g_ascii_isalnum(*p))
            g_string_append_c(k, g_ascii_toupper(*p));
        else if (k->len && k->str[k->len - 1] != '-')
            g_string_append_c(k, '-');
    }
    if (k->len && k->str[k->len - 1] == '-')
        g_string_truncate(k, k->len - 1);
    return g_string_free(k, FALSE);
}

/* -o said something this table cannot show: one line on stderr (for the
 * first such table only), and nothing more on stdout, so that a usage error
 * leaves no half output behind. */
static void
refuse(HostTable *t, const char *word)
{
    g_autoptr(GString) valid = g_string_new(NULL);

    t->refused = TRUE;
    if (table_opts.refused)
        return;
    table_opts.refused = TRUE;
    for (guint i = 0; i < t->names->len; i++) {
        g_autofree char *k = column_key(g_ptr_array_index(t->names, i));
        g_string_append_printf(valid, "%s%s", valid->len ? ", " : "", k);
    }
    if (*word) {
        g_autofree char *shown = host_display(word);
        host_err("-o: unknown column '%s'; the columns are %s", shown, valid->str);
    } else {
        host_err("-o: an empty column name; the columns are %s", valid->str);
    }
    fflush(stdout);
    int fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
    if (fd >= 0) {
        dup2(fd, STDOUT_FILENO);
        close(fd);
    }
}

/* The caller's indices of the columns to print, in order: all of them, or
 * what -o names. */
static void
select_columns(HostTable *t)
{
    const char *spec = table_opts.columns;
    g_auto(GStrv) words = NULL;

    if (!spec || *spec == '+') {
        for (guint i = 0; i < t->names->len; i++)
            g_array_append_val(t->shown, i);
        if (!spec)
            return;
        spec++;
    }
    if (!*spec) {
        refuse(t, "");
        return;
    }
    words = g_strsplit(spec, ",", -1);
    for (guint w = 0; words[w]; w++) {
        g_autofree char *want = column_key(words[w]);
        guint i;
        for (i = 0; i < t->names->len; i++) {
            g_autofree char *k = column_key(g_ptr_array_index(t->names, i));
            if (*want && !strcmp(k, want))
                break;
        }
        if (i == t->names->len) {
            refuse(t, g_strstrip(words[w]));
            return;
        }
        g_array_append_val(t->shown, i);
    }
}

HostTable *
host_table_new(const char *first, ...)
{
    HostTable *t = g_new0(HostTable, 1);
    va_list ap;

    t->names = g_ptr_array_new_with_free_func(g_free);
    t->shown = g_array_new(FALSE, FALSE, sizeof(guint));
    va_start(ap, first);
    for (const char *c = first; c; c = va_arg(ap, const char *))
        g_ptr_array_add(t->names, g_strdup(c));
    va_end(ap);
    if (table_opts.refused)
        t->refused = TRUE;
    else
        select_columns(t);
    if (t->refused)
        return t;
    t->tb = scols_new_table();
    if (!t->tb)
        g_error("out of memory");
    scols_table_set_termforce(t->tb, SCOLS_TERMFORCE_NEVER); /* same layout in a pipe */
    scols_table_enable_ascii(t->tb, !g_get_charset(NULL));
    scols_table_enable_raw(t->tb, table_opts.raw);
    scols_table_enable_noheadings(t->tb, table_opts.noheadings);
    if (!table_opts.raw) {
        /* cells arrive escaped by host_display() (the escaping every other
         * line of vmshift uses); raw mode escapes as libsmartcols does */
        scols_table_enable_noencoding(t->tb, 1);
        scols_table_set_column_separator(t->tb, "  ");
    }
    for (guint i = 0; i < t->shown->len; i++) {
        const char *name = g_ptr_array_index(t->names, g_array_index(t->shown, guint, i));
        g_autofree char *shown = table_opts.raw ? column_key(name) : host_display(name);
        if (!scols_table_new_column(t->tb, shown, 0, 0))
            g_error("out of memory");
    }
    return t;
}

/* A cell as printed: "-" for none; for a terminal, escaped and ASCII under a
 * locale that is not UTF-8; in raw mode only the ASCII stand-ins (the bytes
 * left are libsmartcols' to escape). */
static char *
cell_text(const char *s)
{
    if (!s || !*s)
        return g_strdup("-");
    return table_opts.raw ? display(s, FALSE) : display(s, TRUE);
}

/* Takes @cells (the caller's columns, NULL for none). */
static void
add_row(HostTable *t, char **cells)
{
    struct libscols_line *ln;

    if (t->refused)
        return;
    ln = scols_table_new_line(t->tb, NULL);
    if (!ln)
        g_error("out of memory");
    for (guint i = 0; i < t->shown->len; i++)
        scols_line_refer_data(ln, i, cell_text(cells[g_array_index(t->shown, guint, i)]));
}

void
host_table_add(HostTable *t, const char *first, ...)
{
    g_autofree const char **cells = g_new0(const char *, t->names->len + 1);
    va_list ap;

    va_start(ap, first);
    for (guint i = 0; i < t->names->len; i++)
        cells[i] = i == 0 ? first : va_arg(ap, const char *);
    va_end(ap);
    add_row(t, (char **)cells);
}

void
host_table_addv(HostTable *t, char **cells)
{
    add_row(t, cells);
    for (guint i = 0; i < t->names->len; i++)
        g_free(cells[i]);
    g_free(cells);
}

void
host_table_print(HostTable *t, FILE *out)
{
    if (t->refused)
        return;
    fflush(out);
    if (scols_table_is_empty(t->tb)) {
        /* libsmartcols prints nothing for a table without lines; the
         * header alone says that the listing is empty */
        for (size_t i = 0; !table_opts.noheadings && i < scols_table_get_ncols(t->tb); i++) {
            struct libscols_column *c = scols_table_get_column(t->tb, i);
            fprintf(out, "%s%s", i ? (table_opts.raw ? " " : "  ") : "",
                    scols_cell_get_data(scols_column_get_header(c)));
        }
        if (!table_opts.noheadings)
            fputc('\n', out);
        fflush(out);
        return;
    }
    scols_table_set_stream(t->tb, out);
    scols_print_table(t->tb);
    fflush(out);
}

void
host_table_free(HostTable *t)
{
    if (!t)
        return;
    if (t->tb)
        scols_unref_table(t->tb);
    g_ptr_array_unref(t->names);
    g_array_unref(t->shown);
    g_free(t);
}

/* ---- formatting -------------------------------------------------------------- */

char *
host_format_bytes(guint64 bytes)
{
    /* GLib puts a no-break space between number and unit: a plain one
     * keeps tables ASCII under any locale */
    g_autofree char *f = g_format_size_full(bytes, G_FORMAT_SIZE_IEC_UNITS);
    g_auto(GStrv) parts = g_strsplit(f, "\u00a0", -1);
    return g_strjoinv(" ", parts);
}

char *
host_format_duration(gint64 s)
{
    if (s < 0)
        return g_strdup("-");
    if (s >= 3600)
        return g_strdup_printf("%" G_GINT64_FORMAT ":%02d:%02d", s / 3600, (int)(s / 60 % 60),
                               (int)(s % 60));
    return g_strdup_printf("%d:%02d", (int)(s / 60), (int)(s % 60));
}

char *
host_format_time(gint64 t)
{
    static GTimeZone *local; /* once: GLib reads /etc/localtime for each new local zone */
    g_autoptr(GDateTime) utc = NULL;
    g_autoptr(GDateTime) dt = NULL;

    if (t <= 0)
        return g_strdup("-");
    if (g_once_init_enter(&local))
        g_once_init_leave(&local, g_time_zone_new_local());
    utc = g_date_time_new_from_unix_utc(t);
    dt = utc ? g_date_time_to_timezone(utc, local) : NULL;
    return dt ? g_date_time_format(dt, "%Y-%m-%d %H:%M:%S") : g_strdup("-");
}

/* ---- JSON ------------------------------------------------------------------- */

json_object *
host_json_string(const char *s)
{
    g_autofree char *valid = NULL;

    if (!s)
        return NULL;
    if (g_utf8_validate(s, -1, NULL))
        return json_object_new_string(s);
    valid = g_utf8_make_valid(s, -1); /* U+FFFD for each bad sequence */
    return json_object_new_string(valid);
}

void
host_json_print(json_object *obj)
{
    fprintf(stdout, "%s\n",
            json_object_to_json_string_ext(obj, JSON_C_TO_STRING_PRETTY
                                                    | JSON_C_TO_STRING_NOSLASHESCAPE));
    fflush(stdout);
    json_object_put(obj);
}

json_object *
host_json_error(const GError *e)
{
    json_object *o = json_object_new_object();
    const char *code = e->domain == VMSHIFT_ERROR ? vmshift_error_code_name(e->code)
                       : g_error_matches(e, G_IO_ERROR, G_IO_ERROR_CANCELLED) ? "cancelled"
                                                                              : "failed";
    json_object_object_add(o, "code", json_object_new_string(code));
    json_object_object_add(o, "message", host_json_string(e->message));
    return o;
}

json_object *
host_json_strings(GPtrArray *a)
{
    json_object *arr = json_object_new_array();
    for (guint i = 0; a && i < a->len; i++)
        json_object_array_add(arr, host_json_string(g_ptr_array_index(a, i)));
    return arr;
}

json_object *
host_json_host(const VmshiftHost *h, const char *backend)
{
    json_object *o = json_object_new_object();

    json_object_object_add(o, "backend", host_json_string(backend));
    json_object_object_add(o, "name", host_json_string(h->name));
    json_object_object_add(o, "id", host_json_string(h->id));
    json_object_object_add(o, "status",
                           json_object_new_string(vmshift_host_status_name(h->status)));
    json_object_object_add(o, "status_detail", host_json_string(h->status_detail));
    json_object_object_add(o, "hypervisor", host_json_string(h->hypervisor));
    json_object_object_add(o, "cpu_model", host_json_string(h->cpu_model));
    json_object_object_add(o, "cpu_count", json_object_new_int64(h->cpu_count));
    json_object_object_add(o, "cpu_usage_percent", json_object_new_int(h->cpu_usage_percent));
    json_object_object_add(o, "memory_total", json_object_new_int64((gint64)h->memory_total));
    json_object_object_add(o, "memory_free", json_object_new_int64((gint64)h->memory_free));
    json_object_object_add(o, "migration_address", host_json_string(h->migration_address));
    json_object_object_add(o, "default_vm_path", host_json_string(h->default_vm_path));
    json_object_object_add(o, "san_ids", host_json_strings(h->san_ids));
    return o;
}

json_object *
host_json_vm(const VmshiftVm *vm, const char *backend)
{
    json_object *o = json_object_new_object();
    json_object *disks = json_object_new_array();
    json_object *nics = json_object_new_array();

    json_object_object_add(o, "backend", host_json_string(backend));
    json_object_object_add(o, "name", host_json_string(vm->name));
    json_object_object_add(o, "id", host_json_string(vm->id));
    json_object_object_add(o, "host", host_json_string(vm->host));
    json_object_object_add(o, "power_state",
                           json_object_new_string(vmshift_power_state_name(vm->power_state)));
    json_object_object_add(o, "vcpus", json_object_new_int64(vm->vcpus));
    json_object_object_add(o, "memory", json_object_new_int64((gint64)vm->memory));
    json_object_object_add(o, "config_path", host_json_string(vm->config_path));
    json_object_object_add(o, "snapshot_count", json_object_new_int64(vm->snapshot_count));
    json_object_object_add(o, "status_detail", host_json_string(vm->status_detail));
    for (guint i = 0; vm->disks && i < vm->disks->len; i++) {
        const VmshiftDisk *d = g_ptr_array_index(vm->disks, i);
        json_object *dj = json_object_new_object();
        json_object_object_add(dj, "id", host_json_string(d->id));
        json_object_object_add(dj, "path", host_json_string(d->path));
        json_object_object_add(dj, "format", host_json_string(d->format));
        json_object_object_add(dj, "capacity", json_object_new_int64((gint64)d->capacity));
        json_object_object_add(dj, "allocation", json_object_new_int64((gint64)d->allocation));
        json_object_object_add(dj, "volume", host_json_string(d->volume));
        json_object_object_add(dj, "backing_chain", host_json_strings(d->backing_chain));
        json_object_array_add(disks, dj);
    }
    for (guint i = 0; vm->nics && i < vm->nics->len; i++) {
        const VmshiftNic *n = g_ptr_array_index(vm->nics, i);
        json_object *nj = json_object_new_object();
        json_object_object_add(nj, "id", host_json_string(n->id));
        json_object_object_add(nj, "mac", host_json_string(n->mac));
        json_object_object_add(nj, "network", host_json_string(n->network));
        json_object_object_add(nj, "model", host_json_string(n->model));
        json_object_array_add(nics, nj);
    }
    json_object_object_add(o, "disks", disks);
    json_object_object_add(o, "nics", nics);
    return o;
}

json_object *
host_json_finding(const VmshiftFinding *f)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, "severity",
                           json_object_new_string(vmshift_severity_name(f->severity)));
    json_object_object_add(o, "code", host_json_string(f->code));
    json_object_object_add(o, "message", host_json_string(f->message));
    json_object_object_add(o, "subject", host_json_string(f->subject));
    return o;
}

/* `rate --json` and vmshiftd's /vms/{vm}/rating: the VM and each host's
 * rating with the factors behind it. */
json_object *
host_json_ratings(const VmshiftVm *vm, const char *backend, const char *group, GPtrArray *ratings)
{
    json_object *root = json_object_new_object();
    json_object *arr = json_object_new_array();

    json_object_object_add(root, "vm", host_json_string(vm->name));
    json_object_object_add(root, "backend", host_json_string(backend));
    json_object_object_add(root, "group", host_json_string(group));
    for (guint i = 0; i < ratings->len; i++) {
        const HostRating *r = g_ptr_array_index(ratings, i);
        json_object *j = json_object_new_object();
        json_object *fs = json_object_new_array();
        json_object_object_add(j, "host", host_json_string(r->host->name));
        json_object_object_add(j, "backend", host_json_string(host_backend_name(r->backend)));
        json_object_object_add(j, "stars", json_object_new_int((int)(r->score + 0.5)));
        json_object_object_add(j, "score", json_object_new_double(r->score));
        json_object_object_add(j, "eligible", json_object_new_boolean(r->eligible));
        json_object_object_add(j, "best_volume", host_json_string(r->best_volume));
        json_object_object_add(j, "dest_path", host_json_string(r->dest_path));
        json_object_object_add(j, "storage_shared", json_object_new_boolean(r->storage_shared));
        json_object_object_add(j, "reason", host_json_string(r->reason));
        json_object_object_add(j, "reason_code", host_json_string(r->reason_code));
        for (guint k = 0; k < r->factors->len; k++) {
            const HostFactor *f = g_ptr_array_index(r->factors, k);
            json_object *fj = json_object_new_object();
            json_object_object_add(fj, "factor", host_json_string(f->name));
            json_object_object_add(fj, "code", host_json_string(f->code));
            json_object_object_add(fj, "result", host_json_string(f->result));
            json_object_object_add(fj, "effect",
                                   f->effect > -1e9 ? json_object_new_double(f->effect) : NULL);
            json_object_object_add(fj, "detail", host_json_string(f->detail));
            json_object_array_add(fs, fj);
        }
        json_object_object_add(j, "factors", fs);
        json_object_array_add(arr, j);
    }
    json_object_object_add(root, "ratings", arr);
    return root;
}

/* "live,cold,storage,host+storage": what a plugin says it can do. */
char *
host_plugin_capabilities(const VmshiftPluginDescriptor *d)
{
    g_autoptr(GString) s = g_string_new(NULL);
    if (d->flags & VMSHIFT_PLUGIN_LIVE)
        g_string_append(s, "live,");
    if (d->flags & VMSHIFT_PLUGIN_COLD)
        g_string_append(s, "cold,");
    if (d->flags & VMSHIFT_PLUGIN_STORAGE)
        g_string_append(s, "storage,");
    if (d->flags & VMSHIFT_PLUGIN_HOST_AND_STORAGE)
        g_string_append(s, "host+storage,");
    if (s->len)
        g_string_truncate(s, s->len - 1);
    return g_string_free(g_steal_pointer(&s), FALSE);
}

/* One backend of `backends --json` and vmshiftd's /backends. */
json_object *
host_json_backend(const HostBackend *b)
{
    const VmshiftPluginDescriptor *d = b->plugin ? b->plugin->desc : NULL;
    g_autofree char *caps = d ? host_plugin_capabilities(d) : NULL;
    json_object *j = json_object_new_object();

    json_object_object_add(j, "name", host_json_string(b->conf->name));
    json_object_object_add(j, "plugin", host_json_string(b->conf->plugin));
    json_object_object_add(j, "plugin_version", host_json_string(d ? d->version : NULL));
    json_object_object_add(j, "plugin_path", host_json_string(b->plugin ? b->plugin->path : NULL));
    json_object_object_add(j, "description", host_json_string(d ? d->description : NULL));
    json_object_object_add(j, "license", host_json_string(d ? d->license : NULL));
    json_object_object_add(j, "enabled", json_object_new_boolean(b->conf->enabled));
    json_object_object_add(j, "status",
                           json_object_new_string(host_backend_status_name(b->status)));
    json_object_object_add(j, "reachable",
                           json_object_new_boolean(b->status == HOST_BACKEND_READY));
    json_object_object_add(j, "capabilities", host_json_string(caps));
    json_object_object_add(j, "source", host_json_string(b->conf->source));
    json_object_object_add(j, "error", b->error ? host_json_error(b->error) : NULL);
    return j;
}
