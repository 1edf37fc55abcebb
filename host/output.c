/*
 * vmshift host: output for people (aligned tables, sizes, times) and for
 * programs (JSON through json-c).
 */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

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

/* ---- tables ---------------------------------------------------------------- */

HostTable *
host_table_new(const char *first, ...)
{
    HostTable *t = g_new0(HostTable, 1);
    GPtrArray *hdr = g_ptr_array_new();
    va_list ap;

    va_start(ap, first);
    for (const char *c = first; c; c = va_arg(ap, const char *))
        g_ptr_array_add(hdr, g_strdup(c));
    va_end(ap);
    t->ncols = hdr->len;
    g_ptr_array_add(hdr, NULL);
    t->rows = g_ptr_array_new_with_free_func((GDestroyNotify)g_strfreev);
    g_ptr_array_add(t->rows, g_ptr_array_free(hdr, FALSE));
    return t;
}

void
host_table_add(HostTable *t, const char *first, ...)
{
    char **row = g_new0(char *, t->ncols + 1);
    va_list ap;

    va_start(ap, first);
    for (guint i = 0; i < t->ncols; i++) {
        const char *c = i == 0 ? first : va_arg(ap, const char *);
        row[i] = g_strdup(c ? c : "-");
    }
    va_end(ap);
    g_ptr_array_add(t->rows, row);
}

void
host_table_addv(HostTable *t, char **cells)
{
    char **row = g_new0(char *, t->ncols + 1);
    for (guint i = 0; i < t->ncols; i++)
        row[i] = cells[i] ? cells[i] : g_strdup("-");
    g_free(cells);
    g_ptr_array_add(t->rows, row);
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

char *
host_display(const char *s)
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
            g_string_append_printf(out, "\\x%02x", (guchar)*p++);
            continue;
        }
        next = g_utf8_next_char(p);
        if (c < 0x20 || c == 0x7f || (c >= 0x80 && c < 0xa0))
            g_string_append_printf(out, c < 0x100 ? "\\x%02x" : "\\u%04x", c);
        else if (c < 0x80 || utf8)
            g_string_append_len(out, p, next - p);
        else
            g_string_append(out, ascii_for(c) ? ascii_for(c) : "?");
        p = next;
    }
    return g_string_free(out, FALSE);
}

void
host_table_print(HostTable *t, FILE *out)
{
    g_autofree glong *w = g_new0(glong, t->ncols);
    g_autoptr(GPtrArray) shown = g_ptr_array_new_with_free_func((GDestroyNotify)g_strfreev);

    for (guint r = 0; r < t->rows->len; r++) {
        char **row = g_ptr_array_index(t->rows, r);
        char **d = g_new0(char *, t->ncols + 1);
        for (guint c = 0; c < t->ncols; c++) {
            d[c] = host_display(row[c]);
            w[c] = MAX(w[c], g_utf8_strlen(d[c], -1));
        }
        g_ptr_array_add(shown, d);
    }
    for (guint r = 0; r < shown->len; r++) {
        char **row = g_ptr_array_index(shown, r);
        g_autoptr(GString) line = g_string_new(NULL);
        for (guint c = 0; c < t->ncols; c++) {
            g_string_append(line, row[c]);
            if (c + 1 < t->ncols)
                for (glong k = g_utf8_strlen(row[c], -1); k < w[c] + 2; k++)
                    g_string_append_c(line, ' ');
        }
        while (line->len && line->str[line->len - 1] == ' ')
            g_string_truncate(line, line->len - 1);
        fprintf(out, "%s\n", line->str);
    }
}

void
host_table_free(HostTable *t)
{
    if (!t)
        return;
    g_ptr_array_unref(t->rows);
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
    g_autoptr(GDateTime) dt = NULL;

    if (t <= 0)
        return g_strdup("-");
    dt = g_date_time_new_from_unix_local(t);
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
