/* vmshift KVM plugin: hosts of the qmp transport (local or over ssh). */
#include "config.h"

#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
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
    g_free(host->ssh_config);
    g_free(host->ssh_control_dir);
    g_free(host->unreachable);
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
    g_autoptr(KvmHost) h = g_new0(KvmHost, 1);
    h->name = g_strdup(name);
    if (g_str_has_prefix(spec, "ssh://")) {
        const char *rest = spec + 6;
        const char *slash = strchr(rest, '/');
        if (!slash || slash == rest) {
            g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_CONFIG,
                        "host '%s': want ssh://[user@]host[:port]/run/dir, got '%s'", name, spec);
            return NULL;
        }
        char *hostpart = g_strndup(rest, (gsize)(slash - rest));
        char *colon = strrchr(hostpart, ':');
        if (colon && !strchr(colon, ']')) {
            *colon = '\0';
            h->ssh_port = g_strdup(colon + 1);
        }
        /* [v6-address] as in URLs; ssh wants it bare */
        char *at = strrchr(hostpart, '@');
        char *addr = at ? at + 1 : hostpart;
        gsize al = strlen(addr);
        if (al > 2 && addr[0] == '[' && addr[al - 1] == ']') {
            memmove(addr, addr + 1, al - 2);
            addr[al - 2] = '\0';
        }
        h->ssh = hostpart;
        h->run_dir = g_strdup(slash);
        guint64 port = 0;
        gboolean bad = !*addr || hostpart[0] == '-' || *addr == '-' || (at && at == hostpart);
        for (const char *c = hostpart; *c && !bad; c++)
            bad = g_ascii_isspace(*c) || g_ascii_iscntrl(*c) || *c == '/';
        if (bad
            || (h->ssh_port
                && !g_ascii_string_to_unsigned(h->ssh_port, 10, 1, 65535, &port, NULL))) {
            g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_CONFIG,
                        "host '%s': '%s' is not ssh://[user@]host[:port]/run/dir", name, spec);
            return NULL;
        }
    } else if (g_path_is_absolute(spec)) {
        h->run_dir = g_strdup(spec);
    } else {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_CONFIG,
                    "host '%s': run directory '%s' is neither an absolute path nor "
                    "ssh://[user@]host[:port]/dir",
                    name, spec);
        return NULL;
    }
    /* a trailing slash would double in paths */
    gsize l = strlen(h->run_dir);
    while (l > 1 && h->run_dir[l - 1] == '/')
        h->run_dir[--l] = '\0';
    h->networks = g_key_file_new();
    h->port_min = 49152;
    h->port_max = 49407;
    return g_steal_pointer(&h);
}

static char *
ssh_address_host(const char *ssh)
{
    const char *at = strrchr(ssh, '@');
    return g_strdup(at ? at + 1 : ssh);
}

/*
 * Reads host.conf and networks.conf (both optional). An ssh host that does
 * not answer is not an error here (one host down must not take the others
 * with it): it gets the defaults and host->unreachable says why;
 * kvm_backend_find_host loads it again before it is used.
 */
gboolean
kvm_host_load(KvmHost *host, GError **error)
{
    g_clear_pointer(&host->unreachable, g_free);
    g_clear_pointer(&host->migration_address, g_free);
    g_clear_pointer(&host->images_dir, g_free);
    g_clear_pointer(&host->qemu, g_free);
    g_clear_pointer(&host->accel, g_free);
    g_clear_pointer(&host->qemu_user, g_free);
    if (host->networks)
        g_key_file_unref(host->networks);
    host->networks = g_key_file_new();
    host->port_min = 49152;
    host->port_max = 49407;
    host->max_bw_mib = 0;

    gboolean reachable = TRUE;
    if (!kvm_host_is_local(host)) {
        g_autoptr(GError) ce = NULL;
        if (!kvm_host_check(host, &ce)
            && g_error_matches(ce, VMSHIFT_ERROR, VMSHIFT_ERROR_CONNECTION)) {
            host->unreachable = g_strdup(ce->message);
            reachable = FALSE;
        }
    }
    g_autofree char *path = g_build_filename(host->run_dir, "host.conf", NULL);
    g_autoptr(GKeyFile) kf = g_key_file_new();
    if (reachable && kvm_host_exists(host, path)) {
        g_autofree char *text = NULL;
        g_autoptr(GError) local = NULL;
        if (!kvm_host_read_file(host, path, &text, error)
            || !g_key_file_load_from_data(kf, text, (gsize)-1, G_KEY_FILE_NONE, &local)) {
            if (local)
                g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_CONFIG, "host '%s': %s: %s",
                            host->name, path, local->message);
            return FALSE;
        }
    }
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
    g_autofree char *ports = GET("migration-ports");
    host->max_bw_mib = g_key_file_get_uint64(kf, "host", "max-bandwidth-mib-s", NULL);
    /* post-copy loses the VM if the link fails mid-way: some sites forbid it */
    g_autoptr(GError) pe = NULL;
    host->allow_postcopy = g_key_file_get_boolean(kf, "host", "allow-postcopy", &pe);
    if (pe)
        host->allow_postcopy = TRUE;
#undef GET
    if (ports) {
        int a = 0, b = 0;
        if (sscanf(ports, "%d-%d", &a, &b) == 2 && a > 0 && b >= a && b < 65536) {
            host->port_min = a;
            host->port_max = b;
        } else {
            g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_CONFIG,
                        "host '%s': %s: migration-ports '%s' is not LOW-HIGH", host->name, path,
                        ports);
            return FALSE;
        }
    }

    g_autofree char *npath = g_build_filename(host->run_dir, "networks.conf", NULL);
    if (reachable && kvm_host_exists(host, npath)) {
        g_autofree char *text = NULL;
        g_autoptr(GError) local = NULL;
        if (!kvm_host_read_file(host, npath, &text, error)
            || !g_key_file_load_from_data(host->networks, text, (gsize)-1, G_KEY_FILE_NONE,
                                          &local)) {
            if (local)
                g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_CONFIG, "host '%s': %s: %s",
                            host->name, npath, local->message);
            return FALSE;
        }
    }
    return TRUE;
}

char *
kvm_host_vm_dir(KvmHost *host, const char *vm)
{
    return g_build_filename(host->run_dir, "vms", vm, NULL);
}

/* "user@host port N" for messages (no credentials: ssh URLs carry none). */
static char *
ssh_where(KvmHost *host)
{
    return host->ssh_port ? g_strdup_printf("%s port %s", host->ssh, host->ssh_port)
                          : g_strdup(host->ssh);
}

/*
 * ssh and its options, up to the destination. Host keys are always
 * checked (BatchMode: no prompt; StrictHostKeyChecking=yes cannot be
 * weakened by the ssh-config); -F makes ssh read the backend's client
 * configuration (known_hosts, identity) instead of ~/.ssh of the passwd
 * home. Commands share one connection per host through a master in the
 * backend's private directory, which outlives its last command by 15 s at
 * most (kvm_host_ssh_close ends it at once).
 */
static void
add_ssh_argv(KvmHost *host, GPtrArray *a)
{
#define ADD(s) g_ptr_array_add(a, g_strdup(s))
    ADD("ssh");
    if (host->ssh_config) {
        ADD("-F");
        ADD(host->ssh_config);
    }
    ADD("-o");
    ADD("BatchMode=yes");
    ADD("-o");
    ADD("StrictHostKeyChecking=yes");
    ADD("-o");
    ADD("ConnectTimeout=10");
    ADD("-o");
    ADD("ServerAliveInterval=15");
    ADD("-o");
    ADD("ServerAliveCountMax=3");
    if (host->ssh_control_dir) {
        ADD("-o");
        ADD("ControlMaster=auto");
        ADD("-o");
        g_ptr_array_add(a, g_strdup_printf("ControlPath=%s/%%C", host->ssh_control_dir));
        ADD("-o");
        ADD("ControlPersist=15");
    }
    if (host->ssh_port) {
        ADD("-p");
        ADD(host->ssh_port);
    }
    ADD(host->ssh);
#undef ADD
}

/* The remote command line: argv quoted for the remote shell, under a timeout. */
static char *
remote_command(const char *const *argv, int timeout_s)
{
    g_autoptr(GString) cmd = g_string_new(NULL);
    if (timeout_s > 0)
        g_string_append_printf(cmd, "timeout -k 5 %d", timeout_s);
    for (const char *const *p = argv; *p; p++) {
        g_autofree char *q = g_shell_quote(*p);
        if (cmd->len)
            g_string_append_c(cmd, ' ');
        g_string_append(cmd, q);
    }
    return g_string_free(g_steal_pointer(&cmd), FALSE);
}

/* argv to run @argv on the host, with a timeout. */
static GPtrArray *
wrap_argv(KvmHost *host, const char *const *argv, int timeout_s)
{
    g_autoptr(GPtrArray) a = g_ptr_array_new_with_free_func(g_free);
    g_ptr_array_add(a, g_strdup("timeout"));
    g_ptr_array_add(a, g_strdup("-k"));
    g_ptr_array_add(a, g_strdup("5"));
    if (host->ssh) {
        g_ptr_array_add(a, g_strdup_printf("%d", timeout_s + 10));
        add_ssh_argv(host, a);
        g_ptr_array_add(a, g_strdup("--"));
        g_ptr_array_add(a, remote_command(argv, timeout_s));
    } else {
        g_ptr_array_add(a, g_strdup_printf("%d", timeout_s));
        for (const char *const *p = argv; *p; p++)
            g_ptr_array_add(a, g_strdup(*p));
    }
    g_ptr_array_add(a, NULL);
    return g_steal_pointer(&a);
}

char **
kvm_host_command_argv(KvmHost *host, const char *const *argv, int timeout_s)
{
    return (char **)g_ptr_array_free(wrap_argv(host, argv, timeout_s), FALSE);
}

/*
 * ssh's complaint in one line: its last line, with the line that says
 * which host key failed (ssh's banner of @ lines and advice are dropped).
 */
static char *
ssh_complaint(const char *serr)
{
    g_auto(GStrv) lines = g_strsplit_set(serr ? serr : "", "\r\n", -1);
    const char *last = NULL, *key = NULL;
    for (char **l = lines; *l; l++) {
        char *t = g_strstrip(*l);
        gsize n = strlen(t);
        while (n && t[n - 1] == '.')
            t[--n] = '\0';
        if (g_str_has_prefix(t, "ssh: "))
            t += 5;
        if (!*t || *t == '@' || g_str_has_prefix(t, "Warning: Permanently added"))
            continue;
        if (strstr(t, "requested strict checking"))
            key = t;
        last = t;
    }
    if (!last)
        return g_strdup("no message from ssh");
    if (key && key != last)
        return g_strdup_printf("%s (%s)", last, key);
    return g_strdup(last);
}

gboolean
kvm_host_run(KvmHost *host, const char *const *argv, const char *input, char **out, int timeout_s,
             GError **error)
{
    g_autoptr(GPtrArray) a = wrap_argv(host, argv, timeout_s);
    GSubprocessFlags fl = G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_PIPE;
    if (input)
        fl |= G_SUBPROCESS_FLAGS_STDIN_PIPE;
    g_autoptr(GError) local = NULL;
    g_autoptr(GSubprocess) p = g_subprocess_newv((const char *const *)a->pdata, fl, &local);
    if (!p) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_FAILED, "host %s: cannot run %s: %s",
                    host->name, argv[0], local->message);
        return FALSE;
    }
    g_autofree char *sout = NULL;
    g_autofree char *serr = NULL;
    if (!g_subprocess_communicate_utf8(p, input, NULL, &sout, &serr, &local)) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_FAILED, "host %s: %s: %s", host->name,
                    argv[0], local->message);
        return FALSE;
    }
    if (!g_subprocess_get_successful(p)) {
        int status = g_subprocess_get_exit_status(p);
        g_autofree char *e = g_strstrip(g_strdup(serr ? serr : ""));
        for (char *c = e; *c; c++)
            if (*c == '\n' || *c == '\r')
                *c = ' ';
        if (g_subprocess_get_if_exited(p) && status == 124) {
            g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_TIMEOUT,
                        "host %s: %s timed out after %d s", host->name, argv[0], timeout_s);
        } else if (host->ssh && status == 255) {
            g_autofree char *w = ssh_where(host);
            g_autofree char *c = ssh_complaint(serr);
            g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_CONNECTION,
                        "host %s: ssh to %s failed: %s", host->name, w, c);
        } else {
            g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_FAILED,
                        "host %s: %s failed (exit %d): %s", host->name, argv[0], status, e);
        }
        return FALSE;
    }
    if (out)
        *out = g_steal_pointer(&sout);
    return TRUE;
}

gboolean
kvm_host_read_file(KvmHost *host, const char *path, char **contents, GError **error)
{
    if (kvm_host_is_local(host)) {
        g_autoptr(GError) local = NULL;
        if (!g_file_get_contents(path, contents, NULL, &local)) {
            g_set_error(error, VMSHIFT_ERROR,
                        g_error_matches(local, G_FILE_ERROR, G_FILE_ERROR_NOENT)
                            ? VMSHIFT_ERROR_NOT_FOUND
                            : VMSHIFT_ERROR_FAILED,
                        "host %s: %s", host->name, local->message);
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
        g_autoptr(GError) local = NULL;
        if (!g_file_set_contents(path, contents, -1, &local)) {
            g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_FAILED, "host %s: %s", host->name,
                        local->message);
            return FALSE;
        }
        return TRUE;
    }
    g_autofree char *tmp = g_strconcat(path, ".tmp", NULL);
    g_autofree char *script = g_strdup_printf("cat > \"$1\" && mv -f \"$1\" \"$2\"");
    const char *argv[] = { "sh", "-c", script, "sh", tmp, path, NULL };
    return kvm_host_run(host, argv, contents, NULL, 30, error);
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
                    "host %s: refusing to remove %s outside the run directory", host->name, path);
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
kvm_host_check(KvmHost *host, GError **error)
{
    if (kvm_host_is_local(host)) {
        if (g_file_test(host->run_dir, G_FILE_TEST_IS_DIR))
            return TRUE;
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_NOT_FOUND,
                    "host %s: run directory %s is missing", host->name, host->run_dir);
        return FALSE;
    }
    const char *argv[] = { "test", "-d", host->run_dir, NULL };
    g_autoptr(GError) local = NULL;
    if (kvm_host_run(host, argv, NULL, NULL, 30, &local))
        return TRUE;
    if (g_error_matches(local, VMSHIFT_ERROR, VMSHIFT_ERROR_CONNECTION)
        || g_error_matches(local, VMSHIFT_ERROR, VMSHIFT_ERROR_TIMEOUT)) {
        g_propagate_error(error, g_steal_pointer(&local));
        return FALSE;
    }
    g_autofree char *w = ssh_where(host);
    g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_NOT_FOUND,
                "host %s: run directory %s is missing on %s", host->name, host->run_dir, w);
    return FALSE;
}

void
kvm_host_ssh_close(KvmHost *host)
{
    if (!host->ssh || !host->ssh_control_dir)
        return;
    g_autoptr(GPtrArray) a = g_ptr_array_new_with_free_func(g_free);
    g_ptr_array_add(a, g_strdup("timeout"));
    g_ptr_array_add(a, g_strdup("-k"));
    g_ptr_array_add(a, g_strdup("2"));
    g_ptr_array_add(a, g_strdup("10"));
    add_ssh_argv(host, a);
    /* -O goes before the destination */
    g_ptr_array_insert(a, (gint)a->len - 1, g_strdup("-O"));
    g_ptr_array_insert(a, (gint)a->len - 1, g_strdup("exit"));
    g_ptr_array_add(a, NULL);
    /* no master (never connected, or it timed out): ssh says so; ignored */
    g_autoptr(GSubprocess) p = g_subprocess_newv(
        (const char *const *)a->pdata,
        G_SUBPROCESS_FLAGS_STDOUT_SILENCE | G_SUBPROCESS_FLAGS_STDERR_SILENCE, NULL);
    if (p)
        g_subprocess_wait(p, NULL, NULL);
}

/* The value of a "Keyword value" / "Keyword=value" line of an ssh config
 * when the keyword is @kw (any case), unquoted; else NULL. */
static char *
ssh_config_value(const char *line, const char *kw)
{
    while (g_ascii_isspace(*line))
        line++;
    gsize n = strlen(kw);
    if (g_ascii_strncasecmp(line, kw, n) || !(g_ascii_isspace(line[n]) || line[n] == '='))
        return NULL;
    const char *v = line + n;
    while (g_ascii_isspace(*v))
        v++;
    if (*v == '=')
        v++;
    while (g_ascii_isspace(*v))
        v++;
    char *r = g_strstrip(g_strdup(v));
    gsize l = strlen(r);
    if (l >= 2 && r[0] == '"' && r[l - 1] == '"') {
        memmove(r, r + 1, l - 2);
        r[l - 2] = '\0';
    }
    return r;
}

gboolean
kvm_ssh_config_check(const char *path, GError **error)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        int e = errno;
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_CONFIG, "ssh-config %s: %s", path,
                    g_strerror(e));
        return FALSE;
    }
    if (!S_ISREG(st.st_mode)) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_CONFIG,
                    "ssh-config %s is not a regular file", path);
        return FALSE;
    }
    /* ssh refuses it too, with a less clear message */
    if (st.st_mode & (S_IWGRP | S_IWOTH)) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_PERMISSION,
                    "ssh-config %s is writable by group/others (mode %04o); run: chmod 600 %s",
                    path, (unsigned)(st.st_mode & 07777), path);
        return FALSE;
    }
    g_autofree char *text = NULL;
    g_autoptr(GError) local = NULL;
    if (!g_file_get_contents(path, &text, NULL, &local)) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_CONFIG, "ssh-config %s: %s", path,
                    local->message);
        return FALSE;
    }
    /* every private key it names (Include is not followed; paths with ssh's
     * %-tokens cannot be told here) */
    g_auto(GStrv) lines = g_strsplit(text, "\n", -1);
    for (char **l = lines; *l; l++) {
        g_autofree char *v = ssh_config_value(*l, "IdentityFile");
        if (!v || !*v || !g_ascii_strcasecmp(v, "none") || strchr(v, '%'))
            continue;
        g_autofree char *file = NULL;
        if (g_str_has_prefix(v, "~/")) {
            /* ssh's ~ is the passwd home, not $HOME */
            struct passwd *pw = getpwuid(geteuid());
            if (pw)
                file = g_build_filename(pw->pw_dir, v + 2, NULL);
        } else if (g_path_is_absolute(v)) {
            file = g_strdup(v);
        }
        if (file && !vmshift_credentials_check_file(file, &local)) {
            g_set_error(error, local->domain, local->code, "ssh-config %s: IdentityFile: %s", path,
                        local->message);
            return FALSE;
        }
    }
    return TRUE;
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
        *total = (guint64)st.f_blocks * st.f_frsize;
        *avail = (guint64)st.f_bavail * st.f_frsize;
        return TRUE;
    }
    const char *argv[] = { "df", "-Pk", "--", path, NULL };
    g_autofree char *out = NULL;
    if (!kvm_host_run(host, argv, NULL, &out, 30, error))
        return FALSE;
    g_auto(GStrv) lines = g_strsplit(out, "\n", -1);
    if (lines[0] && lines[1]) {
        unsigned long long t = 0, u = 0, a = 0;
        char fs[256];
        if (sscanf(lines[1], "%255s %llu %llu %llu", fs, &t, &u, &a) == 4) {
            *total = t * 1024;
            *avail = a * 1024;
            return TRUE;
        }
    }
    g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_PROTOCOL,
                "host %s: cannot read df output for %s", host->name, path);
    return FALSE;
}

/* Filesystems that hold no VM files (kernel and pseudo filesystems). */
static gboolean
pseudo_fs(const char *type, const char *dir)
{
    static const char *const types[] = {
        "proc",    "sysfs",       "devpts",   "cgroup",    "cgroup2",    "securityfs", "pstore",
        "debugfs", "tracefs",     "mqueue",   "hugetlbfs", "bpf",        "configfs",   "fusectl",
        "autofs",  "binfmt_misc", "devtmpfs", "nsfs",      "rpc_pipefs", "efivarfs",   "selinuxfs",
        "ramfs",   "squashfs",    "nfsd",     NULL,
    };
    if (g_strv_contains(types, type))
        return TRUE;
    return g_str_has_prefix(dir, "/proc") || g_str_has_prefix(dir, "/sys")
           || g_str_has_prefix(dir, "/dev") || g_str_has_prefix(dir, "/run/")
           || !strcmp(dir, "/run");
}

static VmshiftVolume *
fs_volume(const char *host, const char *dir, guint64 total, guint64 avail, gboolean known)
{
    VmshiftVolume *v = vmshift_volume_new();

    v->id = g_strdup_printf("%s:mount:%s", host, dir);
    v->name = g_strdup_printf("%s %s", host, dir);
    v->path = g_strdup(dir);
    v->host = g_strdup(host);
    v->kind = g_strdup("mount");
    v->capacity = total;
    v->free = avail;
    v->free_unknown = !known;
    return v;
}

/* Local: /proc/mounts, statvfs of each mount point. */
GPtrArray *
kvm_local_filesystems(const char *host, GError **error)
{
    g_autofree char *text = NULL;
    g_autoptr(GPtrArray) l = vmshift_list_new((GDestroyNotify)vmshift_volume_free);
    g_autoptr(GHashTable) seen = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);

    if (!g_file_get_contents("/proc/mounts", &text, NULL, NULL)) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_FAILED, "host %s: cannot read /proc/mounts",
                    host);
        return NULL;
    }
    g_auto(GStrv) lines = g_strsplit(text, "\n", -1);
    for (char **ln = lines; *ln; ln++) {
        g_auto(GStrv) f = g_strsplit(*ln, " ", 4);
        if (g_strv_length(f) < 3)
            continue;
        g_autofree char *dir = g_strcompress(f[1]); /* \040 and the like */
        if (pseudo_fs(f[2], dir) || g_hash_table_contains(seen, dir))
            continue;
        struct statvfs st;
        gboolean known = statvfs(dir, &st) == 0;
        g_ptr_array_add(l, fs_volume(host, dir, known ? (guint64)st.f_blocks * st.f_frsize : 0,
                                     known ? (guint64)st.f_bavail * st.f_frsize : 0, known));
        g_hash_table_add(seen, g_steal_pointer(&dir));
    }
    return g_steal_pointer(&l);
}

GPtrArray *
kvm_host_filesystems(KvmHost *host, GError **error)
{
    const char *argv[] = { "df", "-PkT", NULL };
    g_autofree char *out = NULL;
    g_autoptr(GPtrArray) l = NULL;
    g_autoptr(GHashTable) seen = NULL;

    if (kvm_host_is_local(host))
        return kvm_local_filesystems(host->name, error);
    if (!kvm_host_run(host, argv, NULL, &out, 30, error))
        return NULL;
    l = vmshift_list_new((GDestroyNotify)vmshift_volume_free);
    seen = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    /* Filesystem Type 1024-blocks Used Available Capacity Mounted-on */
    g_auto(GStrv) lines = g_strsplit(out, "\n", -1);
    for (char **ln = lines[0] ? lines + 1 : lines; *ln; ln++) {
        char fs[512], type[64];
        unsigned long long t, u, a;
        int end = 0;
        if (sscanf(*ln, "%511s %63s %llu %llu %llu %*s %n", fs, type, &t, &u, &a, &end) != 5 || !end
            || !(*ln)[end])
            continue;
        const char *dir = *ln + end;
        if (pseudo_fs(type, dir) || g_hash_table_contains(seen, dir))
            continue;
        g_ptr_array_add(l, fs_volume(host->name, dir, t * 1024, a * 1024, TRUE));
        g_hash_table_add(seen, g_strdup(dir));
    }
    return g_steal_pointer(&l);
}

gboolean
kvm_host_meminfo(KvmHost *host, guint64 *total, guint64 *avail, GError **error)
{
    g_autofree char *text = NULL;
    if (!kvm_host_read_file(host, "/proc/meminfo", &text, error))
        return FALSE;
    *total = *avail = 0;
    g_auto(GStrv) lines = g_strsplit(text, "\n", -1);
    for (char **l = lines; *l; l++) {
        unsigned long long kb;
        if (sscanf(*l, "MemTotal: %llu kB", &kb) == 1)
            *total = kb * 1024;
        else if (sscanf(*l, "MemAvailable: %llu kB", &kb) == 1)
            *avail = kb * 1024;
    }
    return TRUE;
}

/* g_ptr_array_sort() passes pointers to the elements. */
static gint
compare_names(gconstpointer a, gconstpointer b)
{
    return g_strcmp0(*(char *const *)a, *(char *const *)b);
}

char **
kvm_host_list_vms(KvmHost *host, GError **error)
{
    g_autofree char *dir = g_build_filename(host->run_dir, "vms", NULL);
    g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func(g_free);
    if (kvm_host_is_local(host)) {
        g_autoptr(GDir) d = g_dir_open(dir, 0, NULL);
        if (d) {
            const char *n;
            while ((n = g_dir_read_name(d))) {
                g_autofree char *conf = g_build_filename(dir, n, "vm.conf", NULL);
                if (g_file_test(conf, G_FILE_TEST_IS_REGULAR))
                    g_ptr_array_add(names, g_strdup(n));
            }
        }
    } else {
        g_autofree char *script = g_strdup_printf("cd \"$1\" 2>/dev/null || exit 0; "
                                                  "for d in */; do [ -f \"$d/vm.conf\" ] && "
                                                  "echo \"${d%%/}\"; done; exit 0");
        const char *argv[] = { "sh", "-c", script, "sh", dir, NULL };
        g_autofree char *out = NULL;
        if (!kvm_host_run(host, argv, NULL, &out, 30, error))
            return NULL;
        g_auto(GStrv) lines = g_strsplit(out, "\n", -1);
        for (char **l = lines; *l; l++)
            if (**l)
                g_ptr_array_add(names, g_strdup(*l));
    }
    g_ptr_array_sort(names, compare_names);
    g_ptr_array_add(names, NULL);
    return (char **)g_ptr_array_free(g_steal_pointer(&names), FALSE);
}

/*
 * Local hosts: connect to the socket. ssh hosts: `ssh HOST socat -
 * UNIX-CONNECT:SOCK` on one end of a socketpair (needs socat there).
 */
VmshiftQmp *
kvm_host_qmp_connect(KvmHost *host, const char *sock, guint timeout_ms, GCancellable *cancellable,
                     GError **error)
{
    if (kvm_host_is_local(host)) {
        g_autoptr(GError) local = NULL;
        VmshiftQmp *q = vmshift_qmp_connect(sock, timeout_ms, cancellable, &local);
        if (!q) {
            g_propagate_prefixed_error(error, g_steal_pointer(&local), "host %s: ", host->name);
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
    g_autofree char *target = g_strdup_printf("UNIX-CONNECT:%s", sock);
    const char *rargv[] = { "socat", "-", target, NULL };
    g_autoptr(GPtrArray) a = g_ptr_array_new_with_free_func(g_free);
    /* no timeout: the connection lives as long as it is used */
    add_ssh_argv(host, a);
    g_ptr_array_add(a, g_strdup("--"));
    g_ptr_array_add(a, remote_command(rargv, 0));
    g_ptr_array_add(a, NULL);
    /* ssh's stderr goes to an unlinked file, read back if the connection
     * fails (a pipe nobody drains could block or kill ssh later) */
    g_autofree char *errpath = NULL;
    int errfd = g_file_open_tmp("vmshift-ssh-XXXXXX", &errpath, NULL);
    if (errfd >= 0)
        unlink(errpath);
    g_autoptr(GSubprocessLauncher) l = g_subprocess_launcher_new(
        errfd >= 0 ? G_SUBPROCESS_FLAGS_NONE : G_SUBPROCESS_FLAGS_STDERR_SILENCE);
    g_subprocess_launcher_take_stdin_fd(l, dup(sv[1]));
    g_subprocess_launcher_take_stdout_fd(l, sv[1]);
    if (errfd >= 0)
        g_subprocess_launcher_take_stderr_fd(l, dup(errfd));
    g_autoptr(GError) local = NULL;
    const char *const *args = (const char *const *)a->pdata;
    /* dropped on return: ssh exits when the socket closes */
    g_autoptr(GSubprocess) p = g_subprocess_launcher_spawnv(l, args, &local);
    /* the launcher closes the fds it took (sv[1]): now, before QMP is read */
    g_clear_object(&l);
    if (!p) {
        close(sv[0]);
        if (errfd >= 0)
            close(errfd);
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_CONNECTION, "host %s: cannot start ssh: %s",
                    host->name, local->message);
        return NULL;
    }
    g_autofree char *peer = g_strdup_printf("%s:%s", host->ssh, sock);
    VmshiftQmp *q = vmshift_qmp_new_for_fd(sv[0], peer, timeout_ms, cancellable, &local);
    if (!q) {
        /* the socket is closed now: ssh ends; tell what it said */
        for (int i = 0; i < 100 && g_subprocess_get_identifier(p); i++)
            g_usleep(20000);
        if (g_subprocess_get_identifier(p))
            g_subprocess_force_exit(p);
        g_subprocess_wait(p, NULL, NULL);
        char said[2048] = "";
        ssize_t n = errfd >= 0 ? pread(errfd, said, sizeof said - 1, 0) : -1;
        if (n > 0)
            said[n] = '\0';
        int status = g_subprocess_get_if_exited(p) ? g_subprocess_get_exit_status(p) : -1;
        if (g_error_matches(local, G_IO_ERROR, G_IO_ERROR_CANCELLED) || n <= 0 || status < 0) {
            g_propagate_prefixed_error(error, g_steal_pointer(&local), "host %s: ", host->name);
        } else {
            g_autofree char *c = ssh_complaint(said);
            if (status == 255) {
                g_autofree char *w = ssh_where(host);
                g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_CONNECTION,
                            "host %s: ssh to %s failed: %s", host->name, w, c);
            } else {
                g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_CONNECTION,
                            "host %s: QMP socket %s: %s", host->name, sock, c);
            }
        }
    }
    if (errfd >= 0)
        close(errfd);
    return q;
}

gboolean
kvm_host_pid_alive(KvmHost *host, gint64 pid)
{
    if (pid <= 0)
        return FALSE;
    if (kvm_host_is_local(host)) {
        if (kill((pid_t)pid, 0) != 0)
            return FALSE;
        /* a zombie is not alive */
        g_autofree char *stat = NULL;
        g_autofree char *path = g_strdup_printf("/proc/%" G_GINT64_FORMAT "/stat", pid);
        if (g_file_get_contents(path, &stat, NULL, NULL)) {
            const char *rp = strrchr(stat, ')');
            if (rp && rp[1] == ' ' && rp[2] == 'Z')
                return FALSE;
        }
        return TRUE;
    }
    g_autofree char *p = g_strdup_printf("%" G_GINT64_FORMAT, pid);
    const char *argv[] = { "kill", "-0", p, NULL };
    return kvm_host_run(host, argv, NULL, NULL, 30, NULL);
}

gboolean
kvm_host_kill(KvmHost *host, gint64 pid, int sig)
{
    if (pid <= 0)
        return FALSE;
    if (kvm_host_is_local(host))
        return kill((pid_t)pid, sig) == 0;
    g_autofree char *p = g_strdup_printf("%" G_GINT64_FORMAT, pid);
    g_autofree char *s = g_strdup_printf("-%d", sig);
    const char *argv[] = { "kill", s, p, NULL };
    return kvm_host_run(host, argv, NULL, NULL, 30, NULL);
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
        struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
        if (inet_pton(AF_INET, host->migration_address, &sin.sin_addr) != 1)
            sin.sin_addr.s_addr = htonl(INADDR_ANY);
        int ok = bind(fd, (struct sockaddr *)&sin, sizeof sin) == 0;
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
    g_autofree char *group = g_strdup_printf("network %s", network);
    char *nd = g_key_file_get_string(host->networks, group, "netdev", NULL);
    if (!nd && g_strcmp0(network, "default") == 0)
        return g_strdup("user");
    return nd;
}
