/* vmshift KVM plugin: hosts of the qmp transport (local or over ssh). */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/statvfs.h>
#include <sys/types.h>
#include <unistd.h>

#include <gio/gio.h>

#include "kvm.h"

void
kvm_host_free(KvmHost *host)
{
    if (!host)
        return;
    g_free(host->name);
    g_free(host->run_dir);
    g_free(host->ssh);
    g_free(host->ssh_port);
    g_free(host->migration_address);
    g_free(host->images_dir);
    g_free(host->qemu);
    g_free(host->accel);
    g_free(host->qemu_user);
    if (host->networks)
        g_key_file_unref(host->networks);
    g_free(host);
}

gboolean
kvm_host_is_local(KvmHost *host)
{
    return host->ssh == NULL;
}

/*
 * NAME=/run/dir (local) or NAME=ssh://[user@]host[:port]/run/dir.
 */
KvmHost *
kvm_host_parse(const char *name, const char *spec, GError **error)
{
    KvmHost *h = g_new0(KvmHost, 1);
    h->name = g_strdup(name);
    if (g_str_has_prefix(spec, "ssh://")) {
        const char *rest = spec + 6;
        const char *slash = strchr(rest, '/');
        if (!slash || slash == rest) {
            g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_CONFIG,
                        "host '%s': want ssh://[user@]host[:port]/run/dir, got '%s'", name, spec);
            kvm_host_free(h);
            return NULL;
        }
        char *hostpart = g_strndup(rest, (gsize) (slash - rest));
        char *colon = strrchr(hostpart, ':');
        if (colon && !strchr(colon, ']')) {
            *colon = '\0';
            h->ssh_port = g_strdup(colon + 1);
        }
        h->ssh = hostpart;
        h->run_dir = g_strdup(slash);
    } else if (g_path_is_absolute(spec)) {
        h->run_dir = g_strdup(spec);
    } else {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_CONFIG,
                    "host '%s': run directory '%s' is neither an absolute path nor "
                    "ssh://[user@]host[:port]/dir", name, spec);
        kvm_host_free(h);
        return NULL;
    }
    /* a trailing slash would double in paths */
    gsize l = strlen(h->run_dir);
    while (l > 1 && h->run_dir[l - 1] == '/')
        h->run_dir[--l] = '\0';
    h->networks = g_key_file_new();
    h->port_min = 49152;
    h->port_max = 49407;
    return h;
}

static char *
ssh_address_host(const char *ssh)
{
    const char *at = strrchr(ssh, '@');
    return g_strdup(at ? at + 1 : ssh);
}

/* Reads host.conf and networks.conf (both optional). */
gboolean
kvm_host_load(KvmHost *host, GError **error)
{
    char *path = g_build_filename(host->run_dir, "host.conf", NULL);
    char *text = NULL;
    GKeyFile *kf = g_key_file_new();
    GError *local = NULL;
    if (kvm_host_exists(host, path)) {
        if (!kvm_host_read_file(host, path, &text, error) ||
            !g_key_file_load_from_data(kf, text, (gsize) -1, G_KEY_FILE_NONE, &local)) {
            if (local)
                g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_CONFIG, "host '%s': %s: %s",
                            host->name, path, local->message);
            g_clear_error(&local);
            g_free(text);
            g_free(path);
            g_key_file_unref(kf);
            return FALSE;
        }
    }
    g_free(text);
    text = NULL;
#define GET(key) g_key_file_get_string(kf, "host", key, NULL)
    host->migration_address = GET("migration-address");
    if (!host->migration_address)
        host->migration_address = host->ssh ? ssh_address_host(host->ssh) : g_strdup("127.0.0.1");
    host->images_dir = GET("images");
    if (!host->images_dir)
        host->images_dir = g_build_filename(host->run_dir, "images", NULL);
    host->qemu = GET("qemu");
    if (!host->qemu)
        host->qemu = g_strdup("qemu-system-x86_64");
    host->accel = GET("accel");
    if (!host->accel)
        host->accel = g_strdup("tcg");
    host->qemu_user = GET("qemu-user");
    char *ports = GET("migration-ports");
    host->max_bw_mib = g_key_file_get_uint64(kf, "host", "max-bandwidth-mib-s", NULL);
    /* post-copy loses the VM if the link fails mid-way: some sites forbid it */
    GError *pe = NULL;
    host->allow_postcopy = g_key_file_get_boolean(kf, "host", "allow-postcopy", &pe);
    if (pe) {
        host->allow_postcopy = TRUE;
        g_error_free(pe);
    }
#undef GET
    if (ports) {
        int a = 0, b = 0;
        if (sscanf(ports, "%d-%d", &a, &b) == 2 && a > 0 && b >= a && b < 65536) {
            host->port_min = a;
            host->port_max = b;
        } else {
            g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_CONFIG,
                        "host '%s': %s: migration-ports '%s' is not LOW-HIGH", host->name,
                        path, ports);
            g_free(ports);
            g_free(path);
            g_key_file_unref(kf);
            return FALSE;
        }
        g_free(ports);
    }
    g_key_file_unref(kf);
    g_free(path);

    path = g_build_filename(host->run_dir, "networks.conf", NULL);
    if (kvm_host_exists(host, path)) {
        if (!kvm_host_read_file(host, path, &text, error) ||
            !g_key_file_load_from_data(host->networks, text, (gsize) -1, G_KEY_FILE_NONE,
                                       &local)) {
            if (local)
                g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_CONFIG, "host '%s': %s: %s",
                            host->name, path, local->message);
            g_clear_error(&local);
            g_free(text);
            g_free(path);
            return FALSE;
        }
    }
    g_free(text);
    g_free(path);
    return TRUE;
}

char *
kvm_host_vm_dir(KvmHost *host, const char *vm)
{
    return g_build_filename(host->run_dir, "vms", vm, NULL);
}

/* argv to run @argv on the host, with a timeout. */
static GPtrArray *
wrap_argv(KvmHost *host, const char *const *argv, int timeout_s)
{
    GPtrArray *a = g_ptr_array_new_with_free_func(g_free);
    if (host->ssh) {
        g_ptr_array_add(a, g_strdup("timeout"));
        g_ptr_array_add(a, g_strdup("-k"));
        g_ptr_array_add(a, g_strdup("5"));
        g_ptr_array_add(a, g_strdup_printf("%d", timeout_s + 10));
        g_ptr_array_add(a, g_strdup("ssh"));
        g_ptr_array_add(a, g_strdup("-o"));
        g_ptr_array_add(a, g_strdup("BatchMode=yes"));
        g_ptr_array_add(a, g_strdup("-o"));
        g_ptr_array_add(a, g_strdup("ConnectTimeout=10"));
        if (host->ssh_port) {
            g_ptr_array_add(a, g_strdup("-p"));
            g_ptr_array_add(a, g_strdup(host->ssh_port));
        }
        g_ptr_array_add(a, g_strdup(host->ssh));
        g_ptr_array_add(a, g_strdup("--"));
        GString *cmd = g_string_new(NULL);
        g_string_append_printf(cmd, "timeout -k 5 %d", timeout_s);
        for (const char *const *p = argv; *p; p++) {
            char *q = g_shell_quote(*p);
            g_string_append_c(cmd, ' ');
            g_string_append(cmd, q);
            g_free(q);
        }
        g_ptr_array_add(a, g_string_free(cmd, FALSE));
    } else {
        g_ptr_array_add(a, g_strdup("timeout"));
        g_ptr_array_add(a, g_strdup("-k"));
        g_ptr_array_add(a, g_strdup("5"));
        g_ptr_array_add(a, g_strdup_printf("%d", timeout_s));
        for (const char *const *p = argv; *p; p++)
            g_ptr_array_add(a, g_strdup(*p));
    }
    g_ptr_array_add(a, NULL);
    return a;
}

gboolean
kvm_host_run(KvmHost *host, const char *const *argv, const char *input, char **out,
             int timeout_s, GError **error)
{
    GPtrArray *a = wrap_argv(host, argv, timeout_s);
    GSubprocessFlags fl = G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_PIPE;
    if (input)
        fl |= G_SUBPROCESS_FLAGS_STDIN_PIPE;
    GError *local = NULL;
    GSubprocess *p = g_subprocess_newv((const char *const *) a->pdata, fl, &local);
    g_ptr_array_unref(a);
    if (!p) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_FAILED, "host %s: cannot run %s: %s",
                    host->name, argv[0], local->message);
        g_error_free(local);
        return FALSE;
    }
    char *sout = NULL, *serr = NULL;
    gboolean ok = g_subprocess_communicate_utf8(p, input, NULL, &sout, &serr, &local);
    if (ok && !g_subprocess_get_successful(p)) {
        int status = g_subprocess_get_exit_status(p);
        char *e = g_strstrip(g_strdup(serr ? serr : ""));
        for (char *c = e; *c; c++)
            if (*c == '\n' || *c == '\r')
                *c = ' ';
        if (g_subprocess_get_if_exited(p) && status == 124)
            g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_TIMEOUT,
                        "host %s: %s timed out after %d s", host->name, argv[0], timeout_s);
        else if (host->ssh && status == 255)
            g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_CONNECTION,
                        "host %s: ssh to %s failed: %s", host->name, host->ssh, e);
        else
            g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_FAILED,
                        "host %s: %s failed (exit %d): %s", host->name, argv[0], status, e);
        g_free(e);
        ok = FALSE;
    } else if (!ok) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_FAILED, "host %s: %s: %s", host->name,
                    argv[0], local->message);
        g_clear_error(&local);
    }
    if (ok && out)
        *out = g_steal_pointer(&sout);
    g_free(sout);
    g_free(serr);
    g_object_unref(p);
    return ok;
}

gboolean
kvm_host_read_file(KvmHost *host, const char *path, char **contents, GError **error)
{
    if (kvm_host_is_local(host)) {
        GError *local = NULL;
        if (!g_file_get_contents(path, contents, NULL, &local)) {
            g_set_error(error, VMSHIFT_ERROR,
                        g_error_matches(local, G_FILE_ERROR, G_FILE_ERROR_NOENT)
                            ? VMSHIFT_ERROR_NOT_FOUND : VMSHIFT_ERROR_FAILED,
                        "host %s: %s", host->name, local->message);
            g_error_free(local);
            return FALSE;
        }
        return TRUE;
    }
    const char *argv[] = { "cat", "--", path, NULL };
    return kvm_host_run(host, argv, NULL, contents, 30, error);
}

gboolean
kvm_host_write_file(KvmHost *host, const char *path, const char *contents, GError **error)
{
    if (kvm_host_is_local(host)) {
        GError *local = NULL;
        if (!g_file_set_contents(path, contents, -1, &local)) {
            g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_FAILED, "host %s: %s", host->name,
                        local->message);
            g_error_free(local);
            return FALSE;
        }
        return TRUE;
    }
    char *tmp = g_strconcat(path, ".tmp", NULL);
    char *script = g_strdup_printf("cat > \"$1\" && mv -f \"$1\" \"$2\"");
    const char *argv[] = { "sh", "-c", script, "sh", tmp, path, NULL };
    gboolean ok = kvm_host_run(host, argv, contents, NULL, 30, error);
    g_free(script);
    g_free(tmp);
    return ok;
}

gboolean
kvm_host_mkdir(KvmHost *host, const char *path, GError **error)
{
    if (kvm_host_is_local(host)) {
        if (g_mkdir_with_parents(path, 0755) != 0) {
            g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_PERMISSION,
                        "host %s: cannot create %s: %s", host->name, path, g_strerror(errno));
            return FALSE;
        }
        return TRUE;
    }
    const char *argv[] = { "mkdir", "-p", "--", path, NULL };
    return kvm_host_run(host, argv, NULL, NULL, 30, error);
}

gboolean
kvm_host_remove_tree(KvmHost *host, const char *path, GError **error)
{
    /* only ever below the run directory or the images directory */
    if (!g_str_has_prefix(path, host->run_dir) && !g_str_has_prefix(path, host->images_dir)) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_PERMISSION,
                    "host %s: refusing to remove %s outside the run directory", host->name,
                    path);
        return FALSE;
    }
    const char *argv[] = { "rm", "-rf", "--", path, NULL };
    return kvm_host_run(host, argv, NULL, NULL, 60, error);
}

gboolean
kvm_host_exists(KvmHost *host, const char *path)
{
    if (kvm_host_is_local(host))
        return g_file_test(path, G_FILE_TEST_EXISTS);
    const char *argv[] = { "test", "-e", path, NULL };
    return kvm_host_run(host, argv, NULL, NULL, 30, NULL);
}

gboolean
kvm_host_df(KvmHost *host, const char *path, guint64 *total, guint64 *avail, GError **error)
{
    if (kvm_host_is_local(host)) {
        struct statvfs st;
        if (statvfs(path, &st) != 0) {
            g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_FAILED, "host %s: statvfs %s: %s",
                        host->name, path, g_strerror(errno));
            return FALSE;
        }
        *total = (guint64) st.f_blocks * st.f_frsize;
        *avail = (guint64) st.f_bavail * st.f_frsize;
        return TRUE;
    }
    const char *argv[] = { "df", "-Pk", "--", path, NULL };
    char *out = NULL;
    if (!kvm_host_run(host, argv, NULL, &out, 30, error))
        return FALSE;
    char **lines = g_strsplit(out, "\n", -1);
    gboolean ok = FALSE;
    if (lines[0] && lines[1]) {
        unsigned long long t = 0, u = 0, a = 0;
        char fs[256];
        if (sscanf(lines[1], "%255s %llu %llu %llu", fs, &t, &u, &a) == 4) {
            *total = t * 1024;
            *avail = a * 1024;
            ok = TRUE;
        }
    }
    if (!ok)
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_PROTOCOL,
                    "host %s: cannot read df output for %s", host->name, path);
    g_strfreev(lines);
    g_free(out);
    return ok;
}

gboolean
kvm_host_meminfo(KvmHost *host, guint64 *total, guint64 *avail, GError **error)
{
    char *text = NULL;
    if (!kvm_host_read_file(host, "/proc/meminfo", &text, error))
        return FALSE;
    *total = *avail = 0;
    char **lines = g_strsplit(text, "\n", -1);
    for (char **l = lines; *l; l++) {
        unsigned long long kb;
        if (sscanf(*l, "MemTotal: %llu kB", &kb) == 1)
            *total = kb * 1024;
        else if (sscanf(*l, "MemAvailable: %llu kB", &kb) == 1)
            *avail = kb * 1024;
    }
    g_strfreev(lines);
    g_free(text);
    return TRUE;
}

char **
kvm_host_list_vms(KvmHost *host, GError **error)
{
    char *dir = g_build_filename(host->run_dir, "vms", NULL);
    GPtrArray *names = g_ptr_array_new();
    if (kvm_host_is_local(host)) {
        GDir *d = g_dir_open(dir, 0, NULL);
        if (d) {
            const char *n;
            while ((n = g_dir_read_name(d))) {
                char *conf = g_build_filename(dir, n, "vm.conf", NULL);
                if (g_file_test(conf, G_FILE_TEST_IS_REGULAR))
                    g_ptr_array_add(names, g_strdup(n));
                g_free(conf);
            }
            g_dir_close(d);
        }
    } else {
        char *script = g_strdup_printf("cd \"$1\" 2>/dev/null || exit 0; "
                                       "for d in */; do [ -f \"$d/vm.conf\" ] && "
                                       "echo \"${d%%/}\"; done; exit 0");
        const char *argv[] = { "sh", "-c", script, "sh", dir, NULL };
        char *out = NULL;
        if (!kvm_host_run(host, argv, NULL, &out, 30, error)) {
            g_free(script);
            g_free(dir);
            g_ptr_array_free(names, TRUE);
            return NULL;
        }
        char **lines = g_strsplit(out, "\n", -1);
        for (char **l = lines; *l; l++)
            if (**l)
                g_ptr_array_add(names, g_strdup(*l));
        g_strfreev(lines);
        g_free(out);
        g_free(script);
    }
    g_free(dir);
    g_ptr_array_sort(names, (GCompareFunc) g_strcmp0);
    g_ptr_array_add(names, NULL);
    return (char **) g_ptr_array_free(names, FALSE);
}

/*
 * Local hosts: connect to the socket. ssh hosts: `ssh HOST socat -
 * UNIX-CONNECT:SOCK` on one end of a socketpair (needs socat there).
 */
VmshiftQmp *
kvm_host_qmp_connect(KvmHost *host, const char *sock, guint timeout_ms,
                     GCancellable *cancellable, GError **error)
{
    if (kvm_host_is_local(host)) {
        GError *local = NULL;
        VmshiftQmp *q = vmshift_qmp_connect(sock, timeout_ms, cancellable, &local);
        if (!q) {
            g_propagate_prefixed_error(error, local, "host %s: ", host->name);
            return NULL;
        }
        return q;
    }
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_FAILED, "socketpair: %s",
                    g_strerror(errno));
        return NULL;
    }
    char *target = g_strdup_printf("UNIX-CONNECT:%s", sock);
    const char *argv[] = { "socat", "-", target, NULL };
    GPtrArray *a = wrap_argv(host, argv, 24 * 3600);
    /* drop the outer timeout: the connection lives as long as it is used */
    GSubprocessLauncher *l = g_subprocess_launcher_new(G_SUBPROCESS_FLAGS_STDERR_SILENCE);
    g_subprocess_launcher_take_stdin_fd(l, dup(sv[1]));
    g_subprocess_launcher_take_stdout_fd(l, sv[1]);
    GError *local = NULL;
    GSubprocess *p = g_subprocess_launcher_spawnv(l, (const char *const *) a->pdata + 4, &local);
    g_object_unref(l);
    g_ptr_array_unref(a);
    g_free(target);
    if (!p) {
        close(sv[0]);
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_CONNECTION,
                    "host %s: cannot start ssh: %s", host->name, local->message);
        g_error_free(local);
        return NULL;
    }
    g_object_unref(p);  /* it exits when the socket closes */
    char *peer = g_strdup_printf("%s:%s", host->ssh, sock);
    VmshiftQmp *q = vmshift_qmp_new_for_fd(sv[0], peer, timeout_ms, cancellable, error);
    g_free(peer);
    return q;
}

gboolean
kvm_host_pid_alive(KvmHost *host, gint64 pid)
{
    if (pid <= 0)
        return FALSE;
    if (kvm_host_is_local(host)) {
        if (kill((pid_t) pid, 0) != 0)
            return FALSE;
        /* a zombie is not alive */
        char *stat = NULL;
        char *path = g_strdup_printf("/proc/%" G_GINT64_FORMAT "/stat", pid);
        gboolean alive = TRUE;
        if (g_file_get_contents(path, &stat, NULL, NULL)) {
            const char *rp = strrchr(stat, ')');
            if (rp && rp[1] == ' ' && rp[2] == 'Z')
                alive = FALSE;
        }
        g_free(stat);
        g_free(path);
        return alive;
    }
    char *p = g_strdup_printf("%" G_GINT64_FORMAT, pid);
    const char *argv[] = { "kill", "-0", p, NULL };
    gboolean ok = kvm_host_run(host, argv, NULL, NULL, 30, NULL);
    g_free(p);
    return ok;
}

gboolean
kvm_host_kill(KvmHost *host, gint64 pid, int sig)
{
    if (pid <= 0)
        return FALSE;
    if (kvm_host_is_local(host))
        return kill((pid_t) pid, sig) == 0;
    char *p = g_strdup_printf("%" G_GINT64_FORMAT, pid);
    char *s = g_strdup_printf("-%d", sig);
    const char *argv[] = { "kill", s, p, NULL };
    gboolean ok = kvm_host_run(host, argv, NULL, NULL, 30, NULL);
    g_free(p);
    g_free(s);
    return ok;
}

/* A TCP port for QEMU to listen on at the host's migration address. */
int
kvm_host_pick_port(KvmHost *host)
{
    int span = host->port_max - host->port_min + 1;
    int start = g_random_int_range(0, span);
    for (int i = 0; i < span; i++) {
        int port = host->port_min + (start + i) % span;
        if (!kvm_host_is_local(host))
            return port;
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
            return port;
        struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons((uint16_t) port) };
        if (inet_pton(AF_INET, host->migration_address, &sin.sin_addr) != 1)
            sin.sin_addr.s_addr = htonl(INADDR_ANY);
        int ok = bind(fd, (struct sockaddr *) &sin, sizeof sin) == 0;
        close(fd);
        if (ok)
            return port;
    }
    return host->port_min;
}

/*
 * The -netdev options (without id) of @network on @host: networks.conf's
 * [network NAME] netdev=…; "default" means user networking unless defined.
 * NULL when the host has no such network.
 */
char *
kvm_host_netdev(KvmHost *host, const char *network)
{
    char *group = g_strdup_printf("network %s", network);
    char *nd = g_key_file_get_string(host->networks, group, "netdev", NULL);
    g_free(group);
    if (!nd && g_strcmp0(network, "default") == 0)
        nd = g_strdup("user");
    return nd;
}
