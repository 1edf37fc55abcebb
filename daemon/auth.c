/*
 * vmshiftd: who may do what on the Unix socket (#17).
 *
 * The kernel tells who the peer is (SO_PEERCRED, through GCredentials): root
 * may do everything; members of the read group ([vmshiftd] read-group=,
 * default "vmshift") may read; members of the admin group (admin-group=,
 * default "vmshift-admin") may also start, cancel and repair jobs. Group
 * membership is the user's in the group database (primary group and
 * getgrouplist()), as login would grant it.
 */
#include "config.h"

#include <grp.h>
#include <pwd.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "daemon/daemon.h"

gboolean
daemon_user_in_group(gint64 uid, gint64 gid, const char *group)
{
    struct group *gr = getgrnam(group);
    struct passwd *pw;
    g_autofree gid_t *groups = NULL;
    int n = 64;

    if (!gr)
        return FALSE;
    if ((gid_t)gid == gr->gr_gid)
        return TRUE;
    pw = getpwuid((uid_t)uid);
    if (!pw)
        return FALSE;
    groups = g_new(gid_t, n);
    if (getgrouplist(pw->pw_name, pw->pw_gid, groups, &n) < 0) {
        groups = g_renew(gid_t, groups, n);
        if (getgrouplist(pw->pw_name, pw->pw_gid, groups, &n) < 0)
            return FALSE;
    }
    for (int i = 0; i < n; i++)
        if (groups[i] == gr->gr_gid)
            return TRUE;
    return FALSE;
}

gboolean
daemon_caller_from_message(Daemon *d, SoupServerMessage *msg, DaemonCaller *c, GError **error)
{
    GSocket *sock = soup_server_message_get_socket(msg);
    g_autoptr(GCredentials) cred = NULL;
    struct passwd *pw;
    uid_t uid;
    gid_t gid;
    pid_t pid;

    memset(c, 0, sizeof *c);
    if (daemon_message_is_tcp(msg)) {
        if (daemon_tcp_caller(d, msg, c)) {
            c->tcp = TRUE;
            return TRUE;
        }
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_AUTH_FAILED,
                    "no valid client certificate, bearer token or session");
        return FALSE;
    }
    cred = sock ? g_socket_get_credentials(sock, error) : NULL;
    if (!cred) {
        if (error && !*error)
            g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_PERMISSION,
                        "the peer's credentials are unknown");
        return FALSE;
    }
    uid = g_credentials_get_unix_user(cred, error);
    pid = g_credentials_get_unix_pid(cred, NULL);
    if (uid == (uid_t)-1)
        return FALSE;
    gid = ((struct ucred *)g_credentials_get_native(cred, G_CREDENTIALS_TYPE_LINUX_UCRED))->gid;
    pw = getpwuid(uid);
    c->uid = uid;
    c->pid = pid;
    c->name = g_strdup_printf("%s (uid %u, pid %d)", pw ? pw->pw_name : "?", (unsigned)uid,
                              (int)pid);
    c->can_change = uid == 0 || daemon_user_in_group(uid, gid, d->admin_group);
    c->can_read = c->can_change || daemon_user_in_group(uid, gid, d->read_group);
    return TRUE;
}

void
daemon_caller_clear(DaemonCaller *c)
{
    g_clear_pointer(&c->name, g_free);
}
