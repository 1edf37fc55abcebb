/* vmshift KVM plugin: the descriptor, open/close, inventory and validation.
 *
 * Configuration ([backend NAME] with plugin=kvm):
 *   transport = qmp (default) | libvirt
 *   hosts     = A=/srv/vmshift/a, B=ssh://root@10.0.0.2/srv/vmshift   (qmp)
 *   uri       = qemu:///system                                        (libvirt)
 *   qmp-timeout-ms = 10000
 *   link-mib-s     = 1000   assumed migration link speed, for tuning
 *   ssh-config     = /etc/vmshift/kvm-ssh.conf                       (qmp)
 *                    the ssh client configuration for ssh:// hosts (ssh -F):
 *                    UserKnownHostsFile, IdentityFile, User… Without it ssh
 *                    reads ~/.ssh of the user's passwd home (not $HOME).
 *                    Relative to the configuration file's directory. It must
 *                    be a regular file not writable by group/others, and
 *                    every IdentityFile it names must be private (mode 600).
 *                    Host keys are always checked: StrictHostKeyChecking=yes
 *                    and BatchMode=yes are given on the command line, which
 *                    the file cannot override.
 * See kvm-host.c for a host's run directory (host.conf, networks.conf, vms/).
 */
#include "config.h"

#define _GNU_SOURCE 1

#include <string.h>

#include <glib/gstdio.h>

#include "kvm.h"
#ifdef HAVE_LIBVIRT
#include "kvm-libvirt.h"
#endif

static void
backend_free(KvmBackend *b)
{
    if (!b)
        return;
#ifdef HAVE_LIBVIRT
    kvm_libvirt_free(b->lv);
#endif
    if (b->hosts) {
        for (guint i = 0; i < b->hosts->len; i++)
            kvm_host_ssh_close(b->hosts->pdata[i]);
        g_ptr_array_unref(b->hosts);
    }
    if (b->ssh_control_dir) {
        /* the masters removed their sockets on exit; anything left is stale */
        GDir *d = g_dir_open(b->ssh_control_dir, 0, NULL);
        const char *n;
        while (d && (n = g_dir_read_name(d))) {
            char *f = g_build_filename(b->ssh_control_dir, n, NULL);
            g_unlink(f);
            g_free(f);
        }
        if (d)
            g_dir_close(d);
        g_rmdir(b->ssh_control_dir);
    }
    g_free(b->ssh_control_dir);
    g_free(b->ssh_config);
    g_free(b->name);
    g_free(b->transport);
    g_free(b);
}

KvmHost *
kvm_backend_find_host(KvmBackend *b, const char *name, GError **error)
{
    for (guint i = 0; i < b->hosts->len; i++) {
        KvmHost *h = b->hosts->pdata[i];
        if (strcmp(h->name, name))
            continue;
        /* ssh failed at open: try again, the host is about to be used */
        if (h->unreachable && (!kvm_host_load(h, error) || h->unreachable)) {
            if (h->unreachable)
                g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_CONNECTION, "%s",
                            h->unreachable);
            return NULL;
        }
        return h;
    }
    g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_NOT_FOUND, "kvm[%s]: no host '%s'", b->name,
                name);
    return NULL;
}

KvmHost *
kvm_backend_locate_vm(KvmBackend *b, const char *vm, KvmVmDef **def, GError **error)
{
    /* "host:name" picks the host */
    const char *colon = strchr(vm, ':');
    GError *down = NULL;   /* the first host that did not answer */
    for (guint i = 0; i < b->hosts->len; i++) {
        KvmHost *h = b->hosts->pdata[i];
        const char *name = vm;
        if (colon) {
            if (strncmp(h->name, vm, (gsize) (colon - vm)) || h->name[colon - vm])
                continue;
            name = colon + 1;
        }
        GError *le = NULL;
        if (h->unreachable && !kvm_backend_find_host(b, h->name, &le)) {
            if (!down)
                down = le;
            else
                g_error_free(le);
            continue;
        }
        char **names = kvm_host_list_vms(h, &le);
        if (!names) {
            if (!down)
                down = le;
            else
                g_error_free(le);
            continue;
        }
        for (char **n = names; n && *n; n++) {
            KvmVmDef *d = kvm_vm_def_load(h, *n, NULL);
            if (d && (!strcmp(d->name, name) || !g_ascii_strcasecmp(d->uuid, name))) {
                g_strfreev(names);
                g_clear_error(&down);
                if (def)
                    *def = d;
                else
                    kvm_vm_def_free(d);
                return h;
            }
            kvm_vm_def_free(d);
        }
        g_strfreev(names);
    }
    if (down) {
        /* it may be there */
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_CONNECTION,
                    "kvm[%s]: no VM '%s' on the hosts that answer; %s", b->name, vm,
                    down->message);
        g_error_free(down);
        return NULL;
    }
    g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_NOT_FOUND, "kvm[%s]: no VM '%s' on any host",
                b->name, vm);
    return NULL;
}

static VmshiftBackend *
kvm_open(const VmshiftConfig *config, guint32 flags, GError **error)
{
    if (!vmshift_check_flags(flags, 0, "open", error))
        return NULL;
    KvmBackend *b = g_new0(KvmBackend, 1);
    b->name = g_strdup(vmshift_config_get_backend(config));
    b->transport = vmshift_config_get_string(config, "transport", NULL);
    if (!b->transport)
        b->transport = g_strdup(vmshift_config_has_key(config, "uri") ? "libvirt" : "qmp");
    b->hosts = g_ptr_array_new_with_free_func((GDestroyNotify) kvm_host_free);
    gint64 v;
    if (!vmshift_config_get_int(config, "qmp-timeout-ms", 10000, 100, 600000, &v, error))
        goto fail;
    b->qmp_timeout_ms = (guint) v;
    if (!vmshift_config_get_int(config, "link-mib-s", 1000, 1, 1000000, &v, error))
        goto fail;
    b->link_mib_s = (guint64) v;

    if (!strcmp(b->transport, "libvirt")) {
#ifdef HAVE_LIBVIRT
        b->lv = kvm_libvirt_open(b, config, error);
        if (!b->lv)
            goto fail;
        return (VmshiftBackend *) b;
#else
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_NOT_SUPPORTED,
                    "%s: backend '%s': this kvm plugin was built without libvirt "
                    "(use transport=qmp with hosts=)", vmshift_config_get_source(config),
                    b->name);
        goto fail;
#endif
    }
    if (strcmp(b->transport, "qmp")) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_CONFIG,
                    "%s: backend '%s': transport '%s' is neither qmp nor libvirt",
                    vmshift_config_get_source(config), b->name, b->transport);
        goto fail;
    }
    b->ssh_config = vmshift_config_get_string(config, "ssh-config", NULL);
    if (b->ssh_config) {
        if (!*b->ssh_config) {
            g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_CONFIG,
                        "%s: backend '%s': ssh-config is empty", vmshift_config_get_source(config),
                        b->name);
            goto fail;
        }
        if (!g_path_is_absolute(b->ssh_config)) {
            char *dir = g_path_get_dirname(vmshift_config_get_source(config));
            char *full = g_build_filename(dir, b->ssh_config, NULL);
            g_free(dir);
            g_free(b->ssh_config);
            b->ssh_config = full;
        }
        GError *local = NULL;
        if (!kvm_ssh_config_check(b->ssh_config, &local)) {
            g_propagate_prefixed_error(error, local, "%s: backend '%s': ",
                                       vmshift_config_get_source(config), b->name);
            goto fail;
        }
    }
    char **hosts = vmshift_config_get_string_list(config, "hosts");
    if (!hosts || !hosts[0]) {
        g_strfreev(hosts);
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_CONFIG,
                    "%s: backend '%s': missing key 'hosts' (NAME=/run/dir or "
                    "NAME=ssh://user@host/run/dir, separated by ',')",
                    vmshift_config_get_source(config), b->name);
        goto fail;
    }
    for (char **p = hosts; *p; p++) {
        char *eq = strchr(*p, '=');
        if (!eq || eq == *p) {
            g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_CONFIG,
                        "%s: backend '%s': hosts entry '%s' is not NAME=RUN-DIR",
                        vmshift_config_get_source(config), b->name, *p);
            g_strfreev(hosts);
            goto fail;
        }
        char *name = g_strstrip(g_strndup(*p, (gsize) (eq - *p)));
        char *spec = g_strstrip(g_strdup(eq + 1));
        GError *local = NULL;
        KvmHost *h = kvm_host_parse(name, spec, &local);
        if (h && !kvm_host_is_local(h)) {
            /* one private directory for the shared connections (a
             * connection set up with other options is never reused) */
            if (!b->ssh_control_dir)
                b->ssh_control_dir = g_dir_make_tmp("vmshift-ssh-XXXXXX", NULL);
            h->ssh_config = g_strdup(b->ssh_config);
            h->ssh_control_dir = g_strdup(b->ssh_control_dir);
        }
        if (h && !kvm_host_load(h, &local)) {
            kvm_host_free(h);
            h = NULL;
        }
        g_free(name);
        g_free(spec);
        if (!h) {
            g_propagate_prefixed_error(error, local, "%s: backend '%s': ",
                                       vmshift_config_get_source(config), b->name);
            g_strfreev(hosts);
            goto fail;
        }
        g_ptr_array_add(b->hosts, h);
    }
    g_strfreev(hosts);
    return (VmshiftBackend *) b;
fail:
    backend_free(b);
    return NULL;
}

static void
kvm_close(VmshiftBackend *backend)
{
    backend_free((KvmBackend *) backend);
}

static char *
qemu_version(KvmHost *h)
{
    const char *argv[] = { h->qemu, "--version", NULL };
    char *out = NULL;
    if (!kvm_host_run(h, argv, NULL, &out, 30, NULL))
        return NULL;
    char *v = NULL;
    const char *p = strstr(out, "version ");
    if (p) {
        p += 8;
        gsize n = strspn(p, "0123456789.");
        v = g_strndup(p, n);
    }
    g_free(out);
    return v;
}

static VmshiftHost *
describe_host(KvmHost *h)
{
    VmshiftHost *vh = vmshift_host_new();
    vh->id = g_strdup(h->name);
    vh->name = g_strdup(h->name);
    vh->cpu_usage_percent = -1;
    vh->status = VMSHIFT_HOST_OK;
    GError *e = NULL;
    gboolean up = kvm_host_check(h, &e);
    /* ssh failed at open and works now: read its host.conf */
    if (up && h->unreachable && !kvm_host_load(h, &e)) {
        vh->status = VMSHIFT_HOST_LIMITED;
        vh->status_detail = g_strdup(e->message);
        g_clear_error(&e);
    }
    vh->migration_address = g_strdup(h->migration_address);
    vh->default_vm_path = g_strdup(h->images_dir);
    if (!up) {
        /* the message without its "host NAME: " */
        char *prefix = g_strdup_printf("host %s: ", h->name);
        const char *m = e->message;
        if (g_str_has_prefix(m, prefix))
            m += strlen(prefix);
        vh->status = VMSHIFT_HOST_DISCONNECTED;
        vh->status_detail = g_strdup(m);
        g_free(prefix);
        g_clear_error(&e);
        return vh;
    }
    char *v = qemu_version(h);
    if (!v) {
        vh->status = VMSHIFT_HOST_LIMITED;
        g_free(vh->status_detail);
        vh->status_detail = g_strdup_printf("%s does not run", h->qemu);
    } else {
        vh->hypervisor = g_strdup_printf("QEMU %s (%s)", v, h->accel);
        g_free(v);
    }
    if (!kvm_host_meminfo(h, &vh->memory_total, &vh->memory_free, &e))
        g_clear_error(&e);
    vh->cpu_count = 0;
    char *cpuinfo = NULL;
    if (kvm_host_read_file(h, "/proc/cpuinfo", &cpuinfo, NULL)) {
        for (char *p = cpuinfo; (p = strstr(p, "processor")); p++)
            vh->cpu_count++;
        char *mn = strstr(cpuinfo, "model name");
        if (mn && (mn = strchr(mn, ':'))) {
            char *end = strchr(mn, '\n');
            vh->cpu_model = g_strstrip(g_strndup(mn + 1, end ? (gsize) (end - mn - 1)
                                                             : strlen(mn + 1)));
        }
        g_free(cpuinfo);
    }
    /* CPU use: the 1-minute load average over the logical CPUs, capped at
     * 100% (one read, no sampling delay per host) */
    char *load = NULL;
    if (vh->cpu_count && kvm_host_read_file(h, "/proc/loadavg", &load, NULL)) {
        double l1 = g_ascii_strtod(load, NULL);
        if (l1 >= 0)
            vh->cpu_usage_percent = (gint32) MIN(100.0, l1 * 100.0 / vh->cpu_count + 0.5);
        g_free(load);
    }
    return vh;
}

static GPtrArray *
kvm_list_hosts(VmshiftBackend *backend, guint32 flags, GError **error)
{
    KvmBackend *b = (KvmBackend *) backend;
    if (!vmshift_check_flags(flags, 0, "list_hosts", error))
        return NULL;
#ifdef HAVE_LIBVIRT
    if (b->lv)
        return kvm_libvirt_list_hosts(b, error);
#endif
    GPtrArray *l = vmshift_list_new((GDestroyNotify) vmshift_host_free);
    for (guint i = 0; i < b->hosts->len; i++)
        g_ptr_array_add(l, describe_host(b->hosts->pdata[i]));
    return l;
}

static GPtrArray *
kvm_list_vms(VmshiftBackend *backend, const char *host, guint32 flags, GError **error)
{
    KvmBackend *b = (KvmBackend *) backend;
    if (!vmshift_check_flags(flags, 0, "list_vms", error))
        return NULL;
#ifdef HAVE_LIBVIRT
    if (b->lv)
        return kvm_libvirt_list_vms(b, host, error);
#endif
    if (host && !kvm_backend_find_host(b, host, error))
        return NULL;
    GPtrArray *l = vmshift_list_new((GDestroyNotify) vmshift_vm_free);
    for (guint i = 0; i < b->hosts->len; i++) {
        KvmHost *h = b->hosts->pdata[i];
        if (host && strcmp(h->name, host))
            continue;
        /* a host that does not answer has no VMs to list (`hosts` says why);
         * asked for by name, it is an error */
        GError *le = NULL;
        char **names = kvm_host_list_vms(h, host ? &le : NULL);
        if (!names && le) {
            g_propagate_error(error, le);
            g_ptr_array_unref(l);
            return NULL;
        }
        for (char **n = names; n && *n; n++) {
            KvmVmDef *d = kvm_vm_def_load(h, *n, NULL);
            if (d) {
                g_ptr_array_add(l, kvm_vm_describe(h, d));
                kvm_vm_def_free(d);
            }
        }
        g_strfreev(names);
    }
    return l;
}

static VmshiftVm *
kvm_get_vm(VmshiftBackend *backend, const char *vm, guint32 flags, GError **error)
{
    KvmBackend *b = (KvmBackend *) backend;
    if (!vmshift_check_flags(flags, 0, "get_vm", error))
        return NULL;
#ifdef HAVE_LIBVIRT
    if (b->lv)
        return kvm_libvirt_get_vm(b, vm, error);
#endif
    KvmVmDef *d = NULL;
    KvmHost *h = kvm_backend_locate_vm(b, vm, &d, error);
    if (!h)
        return NULL;
    VmshiftVm *r = kvm_vm_describe(h, d);
    kvm_vm_def_free(d);
    return r;
}

static GPtrArray *
kvm_list_networks(VmshiftBackend *backend, const char *host, guint32 flags, GError **error)
{
    KvmBackend *b = (KvmBackend *) backend;
    if (!vmshift_check_flags(flags, 0, "list_networks", error))
        return NULL;
#ifdef HAVE_LIBVIRT
    if (b->lv)
        return kvm_libvirt_list_networks(b, host, error);
#endif
    GPtrArray *l = vmshift_list_new((GDestroyNotify) vmshift_network_free);
    GHashTable *seen = g_hash_table_new(g_str_hash, g_str_equal);
    for (guint i = 0; i < b->hosts->len; i++) {
        KvmHost *h = b->hosts->pdata[i];
        if (host && strcmp(h->name, host))
            continue;
        gsize n = 0;
        char **groups = g_key_file_get_groups(h->networks, &n);
        GPtrArray *names = g_ptr_array_new_with_free_func(g_free);
        for (gsize k = 0; k < n; k++)
            if (g_str_has_prefix(groups[k], "network "))
                g_ptr_array_add(names, g_strdup(groups[k] + 8));
        if (!g_key_file_has_group(h->networks, "network default"))
            g_ptr_array_add(names, g_strdup("default"));
        g_strfreev(groups);
        for (guint k = 0; k < names->len; k++) {
            const char *nm = names->pdata[k];
            VmshiftNetwork *net = g_hash_table_lookup(seen, nm);
            if (!net) {
                net = vmshift_network_new();
                net->id = g_strdup(nm);
                net->name = g_strdup(nm);
                char *nd = kvm_host_netdev(h, nm);
                net->kind = g_strdup(nd && g_str_has_prefix(nd, "bridge") ? "bridge" : "network");
                g_free(nd);
                net->hosts = vmshift_string_list_new();
                g_ptr_array_add(l, net);
                g_hash_table_insert(seen, net->name, net);
            }
            g_ptr_array_add(net->hosts, g_strdup(h->name));
        }
        g_ptr_array_unref(names);
    }
    g_hash_table_unref(seen);
    return l;
}

static GPtrArray *
kvm_list_volumes(VmshiftBackend *backend, const char *host, guint32 flags, GError **error)
{
    KvmBackend *b = (KvmBackend *) backend;
    if (!vmshift_check_flags(flags, 0, "list_volumes", error))
        return NULL;
    GPtrArray *l = vmshift_list_new((GDestroyNotify) vmshift_volume_free);
    for (guint i = 0; i < b->hosts->len; i++) {
        KvmHost *h = b->hosts->pdata[i];
        if (host && strcmp(h->name, host))
            continue;
        VmshiftVolume *v = vmshift_volume_new();
        v->id = g_strdup_printf("%s:%s", h->name, h->images_dir);
        v->name = g_strdup_printf("%s images", h->name);
        v->path = g_strdup(h->images_dir);
        v->host = g_strdup(h->name);
        v->kind = g_strdup("directory");
        v->is_default = 1;
        kvm_host_mkdir(h, h->images_dir, NULL);
        GError *e = NULL;
        if (!kvm_host_df(h, h->images_dir, &v->capacity, &v->free, &e))
            g_clear_error(&e);
        g_ptr_array_add(l, v);
    }
    return l;
}

static VmshiftCheckpointState *
kvm_op_checkpoint_state(VmshiftBackend *backend, const char *vm, guint32 flags, GError **error)
{
    if (!vmshift_check_flags(flags, 0, "checkpoint_state", error))
        return NULL;
#ifdef HAVE_LIBVIRT
    if (((KvmBackend *) backend)->lv)
        return kvm_libvirt_checkpoint_state((KvmBackend *) backend, vm, error);
#endif
    return kvm_checkpoint_state((KvmBackend *) backend, vm, error);
}

static void
finding(GPtrArray *l, VmshiftSeverity sev, const char *code, const char *subject,
        const char *msg)
{
    g_ptr_array_add(l, vmshift_finding_new(sev, code, subject, "%s", msg));
}

GPtrArray *
kvm_check_migration(KvmBackend *b, const VmshiftMigrationSpec *spec, GError **error)
{
    KvmVmDef *def = NULL;
    KvmHost *src = kvm_backend_locate_vm(b, spec->vm, &def, error);
    if (!src)
        return NULL;
    GPtrArray *l = vmshift_list_new((GDestroyNotify) vmshift_finding_free);
    gboolean running = kvm_vm_is_running(src, def->name);
    KvmHost *dst = src;
    char *msg;
    if (spec->type != VMSHIFT_MIGRATION_STORAGE) {
        GError *e = NULL;
        dst = spec->dest_host ? kvm_backend_find_host(b, spec->dest_host, &e) : NULL;
        if (!dst) {
            finding(l, VMSHIFT_SEVERITY_ERROR,
                    g_error_matches(e, VMSHIFT_ERROR, VMSHIFT_ERROR_CONNECTION)
                        ? "host-unreachable" : "host-unknown",
                    spec->dest_host, e ? e->message : "no destination host");
            g_clear_error(&e);
            kvm_vm_def_free(def);
            return l;
        }
        if (dst == src)
            finding(l, VMSHIFT_SEVERITY_ERROR, "same-host", dst->name,
                    "the VM already is on this host");
        if (!kvm_host_exists(dst, dst->run_dir)) {
            msg = g_strdup_printf("host %s: run directory %s is not reachable", dst->name,
                                  dst->run_dir);
            finding(l, VMSHIFT_SEVERITY_ERROR, "host-unreachable", dst->name, msg);
            g_free(msg);
            kvm_vm_def_free(def);
            return l;
        }
    }
    if (spec->type == VMSHIFT_MIGRATION_LIVE && !running)
        finding(l, VMSHIFT_SEVERITY_ERROR, "power-state", def->name,
                "the VM is stopped: live migration needs it running (use --cold)");
    if (spec->type == VMSHIFT_MIGRATION_COLD && running)
        finding(l, VMSHIFT_SEVERITY_ERROR, "power-state", def->name,
                "the VM runs: cold migration needs it stopped (use --live)");
    if (dst != src) {
        guint64 total = 0, avail = 0;
        GError *e = NULL;
        if (kvm_host_meminfo(dst, &total, &avail, &e)) {
            if (avail < def->memory_mib * 1024 * 1024) {
                msg = g_strdup_printf("host %s has %" G_GUINT64_FORMAT " MiB available, the VM "
                                      "needs %" G_GUINT64_FORMAT " MiB", dst->name, avail >> 20,
                                      def->memory_mib);
                finding(l, VMSHIFT_SEVERITY_ERROR, "no-memory", dst->name, msg);
                g_free(msg);
            }
        } else {
            finding(l, VMSHIFT_SEVERITY_WARNING, "memory-unknown", dst->name, e->message);
            g_clear_error(&e);
        }
        char *sv = qemu_version(src), *dv = qemu_version(dst);
        if (!dv) {
            msg = g_strdup_printf("%s does not run on host %s", dst->qemu, dst->name);
            finding(l, VMSHIFT_SEVERITY_ERROR, "qemu-missing", dst->name, msg);
            g_free(msg);
        } else if (sv && strverscmp(dv, sv) < 0) {
            msg = g_strdup_printf("QEMU %s on %s is older than QEMU %s on %s: migration to "
                                  "an older QEMU may fail", dv, dst->name, sv, src->name);
            finding(l, VMSHIFT_SEVERITY_WARNING, "qemu-older", dst->name, msg);
            g_free(msg);
        }
        if (dv) {
            const char *argv[] = { dst->qemu, "-cpu", "help", NULL };
            char *out = NULL;
            if (kvm_host_run(dst, argv, NULL, &out, 30, NULL)) {
                char *needle = g_strdup_printf(" %s ", def->cpu);
                if (!strstr(out, needle) && strcmp(def->cpu, "host")) {
                    msg = g_strdup_printf("QEMU on host %s does not know CPU model %s",
                                          dst->name, def->cpu);
                    finding(l, VMSHIFT_SEVERITY_ERROR, "cpu-incompatible", dst->name, msg);
                    g_free(msg);
                }
                g_free(needle);
                g_free(out);
            }
        }
        if (!g_strcmp0(def->cpu, "host") && g_strcmp0(src->accel, dst->accel))
            finding(l, VMSHIFT_SEVERITY_WARNING, "cpu-host", def->name,
                    "CPU model 'host' between different hosts: the CPUs must match");
        g_free(sv);
        g_free(dv);
        for (guint i = 0; i < def->nics->len; i++) {
            KvmNicDef *n = def->nics->pdata[i];
            const char *net = vmshift_migration_spec_network_for(spec, n->id);
            if (!net)
                net = n->network;
            char *nd = kvm_host_netdev(dst, net);
            if (!nd) {
                msg = g_strdup_printf("network '%s' of NIC %s does not exist on host %s "
                                      "(map it with --network %s=NET)", net, n->id, dst->name,
                                      n->id);
                finding(l, VMSHIFT_SEVERITY_ERROR, "nic-unmapped", n->id, msg);
                g_free(msg);
            }
            g_free(nd);
        }
    }
    /* disks: reachable at the destination, or space where they go */
    guint64 need = 0;
    const char *space_dir = NULL;
    for (guint i = 0; i < def->disks->len; i++) {
        KvmDiskDef *dk = def->disks->pdata[i];
        const char *dir = vmshift_migration_spec_disk_dir(spec, dk->id);
        if (!dir) {
            if (dst != src && !kvm_host_exists(dst, dk->path)) {
                msg = g_strdup_printf("host %s does not reach %s (disk %s): give --path",
                                      dst->name, dk->path, dk->id);
                finding(l, VMSHIFT_SEVERITY_ERROR, "disk-unreachable", dk->id, msg);
                g_free(msg);
            }
            continue;
        }
        const char *argv[] = { "qemu-img", "info", "-U", "--output=json", dk->path, NULL };
        char *out = NULL;
        if (kvm_host_run(src, argv, NULL, &out, 30, NULL)) {
            json_object *o = json_tokener_parse(out);
            need += (guint64) vmshift_json_get_int(o, "virtual-size", 0);
            if (o)
                json_object_put(o);
        }
        g_free(out);
        space_dir = dir;
    }
    if (space_dir) {
        guint64 total = 0, avail = 0;
        char *probe = g_strdup(space_dir);
        while (strlen(probe) > 1 && !kvm_host_exists(dst, probe)) {
            char *up = g_path_get_dirname(probe);
            g_free(probe);
            probe = up;
        }
        if (kvm_host_df(dst, probe, &total, &avail, NULL) && avail < need) {
            msg = g_strdup_printf("%s on host %s has %" G_GUINT64_FORMAT " MiB free; the disks "
                                  "may need up to %" G_GUINT64_FORMAT " MiB", space_dir,
                                  dst->name, avail >> 20, need >> 20);
            finding(l, need > avail * 2 ? VMSHIFT_SEVERITY_ERROR : VMSHIFT_SEVERITY_WARNING,
                    "no-space", space_dir, msg);
            g_free(msg);
        }
        g_free(probe);
    }
    GError *e = NULL;
    VmshiftCheckpointState *cs = kvm_checkpoint_state(b, spec->vm, &e);
    if (cs && cs->merging)
        finding(l, VMSHIFT_SEVERITY_ERROR, "merge-in-progress", def->name, cs->detail);
    vmshift_checkpoint_state_free(cs);
    g_clear_error(&e);
    kvm_vm_def_free(def);
    return l;
}

static GPtrArray *
kvm_op_check_migration(VmshiftBackend *backend, const VmshiftMigrationSpec *spec, guint32 flags,
                       GError **error)
{
    if (!vmshift_check_flags(flags, 0, "check_migration", error))
        return NULL;
#ifdef HAVE_LIBVIRT
    if (((KvmBackend *) backend)->lv)
        return kvm_libvirt_check_migration((KvmBackend *) backend, spec, error);
#endif
    return kvm_check_migration((KvmBackend *) backend, spec, error);
}

static gboolean
kvm_op_migrate(VmshiftBackend *backend, const VmshiftMigrationSpec *spec, VmshiftJob *job,
               guint32 flags, GError **error)
{
    if (!vmshift_check_flags(flags, 0, "migrate", error))
        return FALSE;
#ifdef HAVE_LIBVIRT
    if (((KvmBackend *) backend)->lv)
        return kvm_libvirt_migrate((KvmBackend *) backend, spec, job, error);
#endif
    return kvm_migrate((KvmBackend *) backend, spec, job, error);
}

static gboolean
kvm_op_recreate_acl(VmshiftBackend *backend, const char *vm, VmshiftJob *job, guint32 flags,
                    GError **error)
{
    if (!vmshift_check_flags(flags, 0, "recreate_acl", error))
        return FALSE;
#ifdef HAVE_LIBVIRT
    if (((KvmBackend *) backend)->lv)
        return kvm_libvirt_recreate_acl((KvmBackend *) backend, vm, job, error);
#endif
    return kvm_recreate_acl((KvmBackend *) backend, vm, job, error);
}

static gboolean
kvm_op_repair(VmshiftBackend *backend, VmshiftJob *job, guint32 flags, GError **error)
{
    if (!vmshift_check_flags(flags, 0, "repair", error))
        return FALSE;
#ifdef HAVE_LIBVIRT
    if (((KvmBackend *) backend)->lv)
        return kvm_libvirt_repair((KvmBackend *) backend, job, error);
#endif
    return kvm_repair((KvmBackend *) backend, job, error);
}

static const VmshiftBackendOps kvm_ops = {
    VMSHIFT_OPS_INIT,
    .open = kvm_open,
    .close = kvm_close,
    .list_hosts = kvm_list_hosts,
    .list_vms = kvm_list_vms,
    .get_vm = kvm_get_vm,
    .list_networks = kvm_list_networks,
    .list_volumes = kvm_list_volumes,
    .checkpoint_state = kvm_op_checkpoint_state,
    .check_migration = kvm_op_check_migration,
    .migrate = kvm_op_migrate,
    .recreate_acl = kvm_op_recreate_acl,
    .repair = kvm_op_repair,
};

static const char *const kvm_config_keys[] = {
    "transport", "hosts", "uri", "migration-uris", "qmp-timeout-ms", "link-mib-s", "ssh-config",
    NULL
};

VMSHIFT_PLUGIN_DEFINE("kvm", PACKAGE_VERSION, "MIT",
                      "QEMU/KVM over QMP (bare QEMU hosts, local or ssh) or libvirt",
                      VMSHIFT_PLUGIN_LIVE | VMSHIFT_PLUGIN_COLD | VMSHIFT_PLUGIN_STORAGE |
                          VMSHIFT_PLUGIN_HOST_AND_STORAGE,
                      kvm_ops, kvm_config_keys)
