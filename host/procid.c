/*
 * vmshift host: a process's identity (boot id and start time), so that a
 * journal entry's pid is not mistaken for a later process with the same pid.
 */
#include "config.h"

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/types.h>

#include "host/host.h"

static char *
boot_id(void)
{
    char *s = NULL;
    if (!g_file_get_contents("/proc/sys/kernel/random/boot_id", &s, NULL, NULL))
        return g_strdup("noboot");
    return g_strstrip(s);
}

char *
host_process_identity(gint64 pid)
{
    g_autofree char *path = g_strdup_printf("/proc/%" G_GINT64_FORMAT "/stat", pid);
    g_autofree char *stat = NULL;
    g_autofree char *boot = NULL;
    g_auto(GStrv) fields = NULL;
    const char *p;

    if (!g_file_get_contents(path, &stat, NULL, NULL))
        return NULL;
    /* comm may hold spaces and parentheses: fields resume after the last ')' */
    p = strrchr(stat, ')');
    if (!p)
        return NULL;
    fields = g_strsplit(p + 2, " ", 0);
    /* after ')' come field 3 (state) …; starttime is field 22 → index 19 */
    if (g_strv_length(fields) < 20)
        return NULL;
    if (fields[0][0] == 'Z' || fields[0][0] == 'X')
        return NULL; /* a zombie has finished its work */
    boot = boot_id();
    return g_strdup_printf("%s:%s", boot, fields[19]);
}

gboolean
host_process_alive(gint64 pid, const char *identity)
{
    g_autofree char *now = NULL;

    if (pid <= 0)
        return FALSE;
    if (kill((pid_t)pid, 0) != 0 && errno == ESRCH)
        return FALSE;
    now = host_process_identity(pid);
    return now && identity && strcmp(now, identity) == 0;
}
