/* vmshift KVM plugin, qmp transport: open/close of the bare QEMU hosts
 * (hosts=, ssh-config=), and the inventory (hosts, VMs, networks, volumes).
 * The transport's vtable, kvm_transport_qmp, is at the end.
 * See kvm-host.c for a host's run directory (host.conf, networks.conf, vms/).
 */
#include "config.h"

#include <string.h>

#include <glib/gstdio.h>

#include "kvm-qmp.h"

static void
qmp_close(KvmBackend *b)
{
    if (b->hosts) {
        for (guint i = 0; i < b->hosts->len; i++)
            if (!((KvmHost *)b->hosts->pdata[i])->deferred)
                kvm_host_ssh_close(b->hosts->pdata[i]);
        g_clear_pointer(&b->hosts, g_ptr_array_unref);
    }
    if (b->ssh_control_dir) {
        /* the masters removed their sockets on exit; anything left is stale */
        g_autoptr(GDir) d = g_dir_open(b->ssh_control_dir, 0, NULL);
        const char *n;
        while (d && (n = g_dir_read_name(d))) {
            g_autofree char *f = g_build_filename(b->ssh_control_dir, n, NULL);
            g_unlink(f);
        }
        g_rmdir(b->ssh_control_dir);
    }
    g_clear_pointer(&b->ssh_control_dir, g_free);
    g_clear_pointer(&b->ssh_config, g_free);
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
                g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_CONNECTION, "%s", h->unreachable);
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
    g_autoptr(GError) down = NULL; /* the first host that did not answer */
    for (guint i = 0; i < b->hosts->len; i++) {
        KvmHost *h = b->hosts->pdata[i];
        const char *name = vm;
        if (colon) {
            if (strncmp(h->name, vm, (gsize)(colon - vm)) || h->name[colon - vm])
                continue;
            name = colon + 1;
        }
        g_autoptr(GError) le = NULL;
        g_auto(GStrv) names = NULL;
        if ((h->unreachable && !kvm_backend_find_host(b, h->name, &le))
            || !(names = kvm_host_list_vms(h, &le))) {
            if (!down)
                down = g_steal_pointer(&le);
            continue;
        }
        for (char **n = names; *n; n++) {
            g_autoptr(KvmVmDef) d = kvm_vm_def_load(h, *n, NULL);
            if (d && (!strcmp(d->name, name) || !g_ascii_strcasecmp(d->uuid, name))) {
                if (def)
                    *def = g_steal_pointer(&d);
                return h;
            }
        }
    }
    if (down) {
        /* it may be there */
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_CONNECTION,
                    "kvm[%s]: no VM '%s' on the hosts that answer; %s", b->name, vm, down->message);
        return NULL;
    }
    g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_NOT_FOUND, "kvm[%s]: no VM '%s' on any host",
                b->name, vm);
    return NULL;
}

/* ssh-config=: made absolute (relative to the configuration file) and
 * checked */
static gboolean
read_ssh_config(KvmBackend *b, const VmshiftConfig *config, GError **error)
{
    b->ssh_config = vmshift_config_get_string(config, "ssh-config", NULL);
    if (!b->ssh_config)
        return TRUE;
    if (!*b->ssh_config) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_CONFIG,
                    "%s: backend '%s': ssh-config is empty", vmshift_config_get_source(config),
                    b->name);
        return FALSE;
    }
    if (!g_path_is_absolute(b->ssh_config)) {
        g_autofree char *dir = g_path_get_dirname(vmshift_config_get_source(config));
        char *full = g_build_filename(dir, b->ssh_config, NULL);
        g_free(b->ssh_config);
        b->ssh_config = full;
    }
    GError *local = NULL;
    if (!kvm_ssh_config_check(b->ssh_config, &local)) {
        g_propagate_prefixed_error(
            error, local, "%s: backend '%s': ", vmshift_config_get_source(config), b->name);
        return FALSE;
    }
    return TRUE;
}

/* One hosts= entry, NAME=RUN-DIR, parsed and loaded into b->hosts. */
static gboolean
add_host(KvmBackend *b, const VmshiftConfig *config, const char *entry, GError **error)
{
    const char *eq = strchr(entry, '=');
    if (!eq || eq == entry) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_CONFIG,
                    "%s: backend '%s': hosts entry '%s' is not NAME=RUN-DIR",
                    vmshift_config_get_source(config), b->name, entry);
        return FALSE;
    }
    g_autofree char *name = g_strstrip(g_strndup(entry, (gsize)(eq - entry)));
    g_autofree char *spec = g_strstrip(g_strdup(eq + 1));
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
    /* an ssh host waits for the first operation (qmp_connect): opening a
     * backend never waits on the network */
    if (h && !kvm_host_is_local(h))
        h->deferred = TRUE;
    else if (h && !kvm_host_load(h, &local)) {
        kvm_host_free(h);
        h = NULL;
    }
    if (!h) {
        g_propagate_prefixed_error(
            error, local, "%s: backend '%s': ", vmshift_config_get_source(config), b->name);
        return FALSE;
    }
    g_ptr_array_add(b->hosts, h);
    return TRUE;
}

static gboolean
qmp_open(KvmBackend *b, const VmshiftConfig *config, GError **error)
{
    b->hosts = g_ptr_array_new_with_free_func((GDestroyNotify)kvm_host_free);
    if (!read_ssh_config(b, config, error))
        return FALSE;
    g_auto(GStrv) hosts = vmshift_config_get_string_list(config, "hosts");
    if (!hosts || !hosts[0]) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_CONFIG,
                    "%s: backend '%s': missing key 'hosts' (NAME=/run/dir or "
                    "NAME=ssh://user@host/run/dir, separated by ',')",
                    vmshift_config_get_source(config), b->name);
        return FALSE;
    }
    for (char **p = hosts; *p; p++)
        if (!add_host(b, config, *p, error))
            return FALSE;
    return TRUE;
}

/* The first contact (KvmTransport.connect): the ssh hosts' host.conf and
 * networks.conf read, as open reads the local hosts' (a host that does not
 * answer is no error: it gets the defaults and h->unreachable says why). */
static gboolean
qmp_connect(KvmBackend *b, GError **error)
{
    for (guint i = 0; i < b->hosts->len; i++) {
        KvmHost *h = b->hosts->pdata[i];
        GError *local = NULL;
        if (!h->deferred)
            continue;
        h->deferred = FALSE;
        if (!kvm_host_load(h, &local)) {
            g_propagate_prefixed_error(error, local, "backend '%s': ", b->name);
            return FALSE;
        }
    }
    return TRUE;
}

char *
kvm_qmp_qemu_version(KvmHost *h)
{
    const char *argv[] = { h->qemu, "--version", NULL };
    g_autofree char *out = NULL;
    if (!kvm_host_run(h, argv, NULL, &out, 30, NULL))
        return NULL;
    const char *p = strstr(out, "version ");
    if (!p)
        return NULL;
    p += 8;
    return g_strndup(p, strspn(p, "0123456789."));
}

/* The networks a NIC can use on @h: its host.conf [network NAME] groups
 * and "default". */
static GPtrArray *
host_network_names(KvmHost *h)
{
    gsize n = 0;
    g_auto(GStrv) groups = g_key_file_get_groups(h->networks, &n);
    GPtrArray *names = vmshift_string_list_new();
    for (gsize k = 0; k < n; k++) {
        g_autofree char *nd = NULL;
        /* a network is usable when it says how (its netdev) */
        if (g_str_has_prefix(groups[k], "network ") && (nd = kvm_host_netdev(h, groups[k] + 8)))
            g_ptr_array_add(names, g_strdup(groups[k] + 8));
    }
    if (!g_key_file_has_group(h->networks, "network default"))
        g_ptr_array_add(names, g_strdup("default"));
    return names;
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
    vh->networks = host_network_names(h);
    if (!up) {
        /* the message without its "host NAME: " */
        g_autofree char *prefix = g_strdup_printf("host %s: ", h->name);
        const char *m = e->message;
        if (g_str_has_prefix(m, prefix))
            m += strlen(prefix);
        vh->status = VMSHIFT_HOST_DISCONNECTED;
        vh->status_detail = g_strdup(m);
        g_clear_error(&e);
        return vh;
    }
    g_autofree char *v = kvm_qmp_qemu_version(h);
    if (!v) {
        vh->status = VMSHIFT_HOST_LIMITED;
        g_free(vh->status_detail);
        vh->status_detail = g_strdup_printf("%s does not run", h->qemu);
    } else {
        vh->hypervisor = g_strdup_printf("QEMU %s (%s)", v, h->accel);
    }
    if (!kvm_host_meminfo(h, &vh->memory_total, &vh->memory_free, &e))
        g_clear_error(&e);
    vh->cpu_count = 0;
    g_autofree char *cpuinfo = NULL;
    if (kvm_host_read_file(h, "/proc/cpuinfo", &cpuinfo, NULL)) {
        for (char *p = cpuinfo; (p = strstr(p, "processor")); p++)
            vh->cpu_count++;
        char *mn = strstr(cpuinfo, "model name");
        if (mn && (mn = strchr(mn, ':'))) {
            char *end = strchr(mn, '\n');
            vh->cpu_model = g_strstrip(
                g_strndup(mn + 1, end ? (gsize)(end - mn - 1) : strlen(mn + 1)));
        }
    }
    /* live-migration class: under KVM the guest sees the host's CPU model;
     * under TCG any host emulates the same CPU (QEMU versions are not part
     * of it: a newer QEMU takes an older one's VMs) */
    if (h->accel && !strcmp(h->accel, "kvm"))
        vh->compat_id = g_strdup_printf("kvm %s", vh->cpu_model ? vh->cpu_model : "?");
    else if (h->accel)
        vh->compat_id = g_strdup(h->accel);
    /* CPU use: the 1-minute load average over the logical CPUs, capped at
     * 100% (one read, no sampling delay per host) */
    g_autofree char *load = NULL;
    if (vh->cpu_count && kvm_host_read_file(h, "/proc/loadavg", &load, NULL)) {
        double l1 = g_ascii_strtod(load, NULL);
        if (l1 >= 0)
            vh->cpu_usage_percent = (gint32)MIN(100.0, l1 * 100.0 / vh->cpu_count + 0.5);
    }
    return vh;
}

static GPtrArray *
qmp_list_hosts(KvmBackend *b, GError **error)
{
    GPtrArray *l = vmshift_list_new((GDestroyNotify)vmshift_host_free);
    for (guint i = 0; i < b->hosts->len; i++)
        g_ptr_array_add(l, describe_host(b->hosts->pdata[i]));
    return l;
}

/* qemu-img info gives both sizes or neither: a disk with a virtual size
 * has its allocation known too, even when 0. */
static VmshiftVm *
sizes_known(VmshiftVm *vm)
{
    for (guint i = 0; vm && i < vm->disks->len; i++) {
        VmshiftDisk *d = g_ptr_array_index(vm->disks, i);
        if (d->capacity)
            d->size_known = VMSHIFT_DISK_CAPACITY_KNOWN | VMSHIFT_DISK_ALLOCATION_KNOWN;
    }
    return vm;
}

static GPtrArray *
qmp_list_vms(KvmBackend *b, const char *host, GError **error)
{
    if (host && !kvm_backend_find_host(b, host, error))
        return NULL;
    g_autoptr(GPtrArray) l = vmshift_list_new((GDestroyNotify)vmshift_vm_free);
    for (guint i = 0; i < b->hosts->len; i++) {
        KvmHost *h = b->hosts->pdata[i];
        if (host && strcmp(h->name, host))
            continue;
        /* a host that does not answer has no VMs to list (`hosts` says why);
         * asked for by name, it is an error */
        GError *le = NULL;
        g_auto(GStrv) names = kvm_host_list_vms(h, host ? &le : NULL);
        if (!names && le) {
            g_propagate_error(error, le);
            return NULL;
        }
        for (char **n = names; n && *n; n++) {
            g_autoptr(KvmVmDef) d = kvm_vm_def_load(h, *n, NULL);
            if (d)
                g_ptr_array_add(l, sizes_known(kvm_vm_describe(h, d)));
        }
    }
    return g_steal_pointer(&l);
}

static VmshiftVm *
qmp_get_vm(KvmBackend *b, const char *vm, GError **error)
{
    g_autoptr(KvmVmDef) d = NULL;
    KvmHost *h = kvm_backend_locate_vm(b, vm, &d, error);
    if (!h)
        return NULL;
    return sizes_known(kvm_vm_describe(h, d));
}

static GPtrArray *
qmp_list_networks(KvmBackend *b, const char *host, GError **error)
{
    GPtrArray *l = vmshift_list_new((GDestroyNotify)vmshift_network_free);
    g_autoptr(GHashTable) seen = g_hash_table_new(g_str_hash, g_str_equal);
    for (guint i = 0; i < b->hosts->len; i++) {
        KvmHost *h = b->hosts->pdata[i];
        if (host && strcmp(h->name, host))
            continue;
        g_autoptr(GPtrArray) names = host_network_names(h);
        for (guint k = 0; k < names->len; k++) {
            const char *nm = names->pdata[k];
            VmshiftNetwork *net = g_hash_table_lookup(seen, nm);
            if (!net) {
                net = vmshift_network_new();
                net->id = g_strdup(nm);
                net->name = g_strdup(nm);
                g_autofree char *nd = kvm_host_netdev(h, nm);
                net->kind = g_strdup(nd && g_str_has_prefix(nd, "bridge") ? "bridge" : "network");
                net->hosts = vmshift_string_list_new();
                g_ptr_array_add(l, net);
                g_hash_table_insert(seen, net->name, net);
            }
            g_ptr_array_add(net->hosts, g_strdup(h->name));
        }
    }
    return l;
}

static GPtrArray *
qmp_list_volumes(KvmBackend *b, const char *host, GError **error)
{
    GPtrArray *l = vmshift_list_new((GDestroyNotify)vmshift_volume_free);
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
        if (!kvm_host_df(h, h->images_dir, &v->capacity, &v->free, &e)) {
            g_clear_error(&e);
            v->free_unknown = 1; /* not a real 0 */
        }
        g_ptr_array_add(l, v);
        /* every filesystem of the host, so that a --path anywhere has its
         * free space known (a host that does not answer has none) */
        g_autoptr(GPtrArray) fs = h->unreachable ? NULL : kvm_host_filesystems(h, NULL);
        while (fs && fs->len)
            g_ptr_array_add(l, g_ptr_array_steal_index(fs, 0));
    }
    return l;
}

const KvmTransport kvm_transport_qmp = {
    .name = "qmp",
    .open = qmp_open,
    .connect = qmp_connect,
    .close = qmp_close,
    .list_hosts = qmp_list_hosts,
    .list_vms = qmp_list_vms,
    .get_vm = qmp_get_vm,
    .list_networks = qmp_list_networks,
    .list_volumes = qmp_list_volumes,
    .checkpoint_state = kvm_qmp_checkpoint_state,
    .check_migration = kvm_qmp_check_migration,
    .migrate = kvm_qmp_migrate,
    .recreate_acl = kvm_qmp_recreate_acl,
    .repair = kvm_qmp_repair,
    .cleanup = kvm_qmp_cleanup,
    .export_vm = kvm_qmp_export_vm,
    .open_disk = kvm_qmp_open_disk,
    .check_import = kvm_qmp_check_import,
    .import_vm = kvm_qmp_import_vm,
    .remove_vm = kvm_qmp_remove_vm,
    .start_vm = kvm_qmp_start_vm,
};
