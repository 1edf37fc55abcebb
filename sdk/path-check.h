/*
 * vmshift: checks on the directories above a file vmshift trusts (a plugin,
 * a credentials file), shared by the SDK (credentials) and the host (plugin
 * loader). Internal; not installed.
 *
 * As sudo checks its plugins and policy files: every directory from the
 * file's own up to / (after resolving symbolic links) is owned by root or
 * by the user running vmshift, and writable by nobody else, except a
 * root-owned directory with the sticky bit (/tmp), where others cannot
 * rename or remove what they do not own.
 */
#ifndef VMSHIFT_PATH_CHECK_H
#define VMSHIFT_PATH_CHECK_H

#include <errno.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <glib.h>
#include <string.h>
#include <vmshift/vmshift.h>

/* FALSE with "FILE: refusing WHAT: directory D is ..." when a directory
 * from @dir up to / may be changed by someone else. */
static inline gboolean
vmshift_path_check_dirs(const char *file, const char *what, const char *dir, GError **error)
{
    g_autofree char *real = realpath(dir, NULL);
    g_autofree char *p = NULL;

    if (!real) {
        int e = errno;
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_PERMISSION, "%s: refusing %s: %s: %s", file,
                    what, dir, g_strerror(e));
        return FALSE;
    }
    p = g_strdup(real);
    for (;;) {
        struct stat st;
        const char *why = NULL;
        char *slash;

        if (lstat(p, &st) != 0 || !S_ISDIR(st.st_mode))
            why = "cannot be inspected";
        else if (st.st_uid != 0 && st.st_uid != getuid())
            why = "is owned by another user";
        else if ((st.st_mode & (S_IWGRP | S_IWOTH)) && !((st.st_mode & S_ISVTX) && st.st_uid == 0))
            why = st.st_mode & S_IWOTH ? "is world-writable" : "is group-writable";
        if (why) {
            g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_PERMISSION,
                        "%s: refusing %s: directory %s %s (mode %04o, uid %u)", file, what, p, why,
                        (unsigned)(st.st_mode & 07777), (unsigned)st.st_uid);
            return FALSE;
        }
        if (!strcmp(p, "/"))
            return TRUE;
        slash = strrchr(p, '/');
        if (slash == p)
            slash[1] = '\0';
        else
            *slash = '\0';
    }
}

#endif /* VMSHIFT_PATH_CHECK_H */
