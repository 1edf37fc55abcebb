/*
 * vmshift host: the scheduled switchover of a plan's wave or of one
 * migration (--switchover-at, a wave's switchover=), as HCX schedules it
 * for bulk migrations (#17).
 *
 * A time is written YYYY-MM-DDTHH:MM (seconds optional), in local time or
 * with Z or an offset (+01:00); nothing else of ISO 8601 (week dates,
 * ordinal dates, the basic format) is taken. Where the backend's plugin
 * copies ahead (VMSHIFT_PLUGIN_SWITCHOVER_AT: KVM storage moves and host
 * and storage moves keep a block mirror synchronised), the job starts at
 * once and the plugin holds before its switchover until the time; for
 * other plugins the host starts the move at the time (host/jobs.c).
 */
#include "config.h"

#include <string.h>

#include "host/host.h"

gboolean
host_parse_switchover(const char *text, gint64 *out, GError **error)
{
    static const char re[] = "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}(:[0-9]{2})?"
                             "(Z|[+-][0-9]{2}:[0-9]{2})?$";
    g_autoptr(GTimeZone) local = g_time_zone_new_local();
    g_autoptr(GDateTime) dt = NULL;
    g_autofree char *full = NULL;

    if (text && g_regex_match_simple(re, text, 0, 0)) {
        /* seconds are optional here, not for GLib */
        if (text[16] != ':')
            full = g_strdup_printf("%.16s:00%s", text, text + 16);
        else
            full = g_strdup(text);
        dt = g_date_time_new_from_iso8601(full, local);
    }
    if (!dt) {
        g_autofree char *shown = g_utf8_make_valid(text ? text : "", -1);
        if (g_utf8_strlen(shown, -1) > 64)
            *g_utf8_offset_to_pointer(shown, 64) = '\0';
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_INVALID_ARGUMENT,
                    "'%s' is not a switchover time: give YYYY-MM-DDTHH:MM in local time, or "
                    "with Z or an offset like +01:00",
                    shown);
        return FALSE;
    }
    *out = g_date_time_to_unix(dt);
    return TRUE;
}

gboolean
host_parse_switchover_future(const char *text, gint64 now, gint64 *out, GError **error)
{
    g_autofree char *when = NULL;

    if (!host_parse_switchover(text, out, error))
        return FALSE;
    if (*out >= now)
        return TRUE;
    when = host_format_switchover(*out);
    g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_INVALID_ARGUMENT,
                "switchover time %s (%s) has passed", text, when);
    return FALSE;
}

char *
host_format_switchover(gint64 t)
{
    g_autoptr(GDateTime) dt = g_date_time_new_from_unix_local(t);

    return dt ? g_date_time_format(dt, "%Y-%m-%dT%H:%M:%S%:z") : g_strdup("?");
}

gboolean
host_backend_holds_switchover(HostBackend *b)
{
    const VmshiftPluginDescriptor *d = b && b->plugin ? b->plugin->desc : NULL;

    return d && d->abi_minor >= 3 && (d->flags & VMSHIFT_PLUGIN_SWITCHOVER_AT);
}
