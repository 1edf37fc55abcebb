/*
 * skeleton.c — a complete, minimal vmshift backend plugin.
 *
 * Copy this directory to start a plugin for a new hypervisor. It builds out
 * of tree against the installed SDK with nothing but `pkg-config vmshift-sdk`
 * (see Makefile), and it implements the operations a backend usually has, over
 * a tiny "hypervisor" of its own: a state file listing hosts and VMs. Replace
 * the state-file calls with your hypervisor's API and keep the rest:
 *
 *   - one exported symbol, emitted by VMSHIFT_PLUGIN_DEFINE();
 *   - everything else static, no global mutable state (all of it lives in
 *     the SkeletonBackend handle that open() returns);
 *   - every operation starts with vmshift_check_flags();
 *   - errors in the VMSHIFT_ERROR domain, one line each, naming what and where;
 *   - migrate() reports phases, progress and location through the job,
 *     saves what it needs to repair an interrupted run, honours cancellation,
 *     and leaves the VM in exactly one place whatever happens.
 *
 * recreate_acl is deliberately left NULL: the host then tells the person
 * "backend 'B' (plugin skeleton …) does not support 'recreate_acl'", which is
 * the right answer for a backend without per-VM access rules.
 *
 * The stand-in hypervisor can be told, for tests, to accept a move and not
 * apply some of it: `ignore=host;path;disk;power;network` in the state
 * file's [hypervisor] group. migrate() reads the VM back after every move
 * (verify_moved) and fails the job on any difference, as a plugin for a
 * real hypervisor must.
 *
 * Configuration keys (in the backend's [backend NAME] group):
 *   hosts=alpha;beta            host names
 *   vms=web1@alpha;db1@alpha    VMs and where they start (first run only)
 *   state-file=PATH             default: STATE_DIR/skeleton.state
 *   transfer-seconds=N          how long a migration's transfer takes (2)
 *   switchover-reply-seconds=N  how long the "hypervisor" takes to answer the
 *                               switchover after doing it (0): a test's window
 *                               for a kill or a cancel right after it
 *   shared-path=DIR             a volume every host reaches (SAN, NFS); new
 *                               VMs start there instead of /srv/vms
 *   data-dir=DIR                the VMs' disk files for moves between
 *                               backends: path P is DIR/P (STATE-FILE.data)
 *   import-format=FMT           the format import_vm writes disks in (raw)
 *   import-seconds=N            how long import_vm takes beyond its writes (0),
 *                               spread after each disk: a test's window for a
 *                               kill or a cancel in the middle of an import
 *
 * Moves between backends (export_vm ... start_vm) live in skeleton-v2v.c.
 *
 * Fault switches, for tests/faults and bench/faults: `fault=KIND@WHERE` in
 * [hypervisor], with `fault-count=N` (default 1) hits before it clears
 * itself. WHERE is prepare, transfer or switchover; KIND is error (the
 * server refuses the call; nothing changes), cut (the connection drops
 * before the call arrives), disk-full (no space left at the destination),
 * dest-down (the destination host dies: its partial copy is left for
 * repair) or lost-reply (switchover only: the hypervisor carries the move
 * out, then the reply is lost; migrate() asks the hypervisor where the VM
 * is instead of guessing).
 *
 * The facts a real hypervisor would report can be changed in the state file
 * (tests and demos do): [host NAME] status=maintenance|limited|disconnected,
 * memory-free=BYTES|unknown, cpu=PERCENT, networks=lan;dmz, compat=CLASS,
 * volume-free=BYTES|unknown; [shared] free=BYTES; [vm NAME] disk-size=
 * BYTES|unknown, merging=SNAPSHOT, consolidate=true.
 *
 * SPDX-License-Identifier: MIT
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "skeleton.h"

/* ---- the stand-in hypervisor: a key file guarded by flock() ------------ */

GKeyFile *
state_load(SkeletonBackend *b, int *lock_fd, GError **error)
{
    g_autoptr(GKeyFile) kf = g_key_file_new();
    g_autofree char *lock_path = g_strconcat(b->state_file, ".lock", NULL);
    GError *local = NULL;

    *lock_fd = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (*lock_fd < 0 || flock(*lock_fd, LOCK_EX) != 0) {
        int e = errno;
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_CONNECTION,
                    "skeleton[%s]: cannot lock %s: %s", b->name, lock_path, g_strerror(e));
        if (*lock_fd >= 0)
            close(*lock_fd);
        return NULL;
    }
    if (!g_key_file_load_from_file(kf, b->state_file, G_KEY_FILE_NONE, &local)) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_CONNECTION,
                    "skeleton[%s]: cannot read %s: %s", b->name, b->state_file, local->message);
        g_error_free(local);
        close(*lock_fd);
        return NULL;
    }
    return g_steal_pointer(&kf);
}

gboolean
state_save(SkeletonBackend *b, GKeyFile *kf, GError **error)
{
    GError *local = NULL;

    /* g_key_file_save_to_file() writes a temporary file and renames it, so a
     * crash never leaves a half-written state. */
    if (!g_key_file_save_to_file(kf, b->state_file, &local)) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_FAILED, "skeleton[%s]: cannot write %s: %s",
                    b->name, b->state_file, local->message);
        g_error_free(local);
        return FALSE;
    }
    return TRUE;
}

void
state_unlock(int lock_fd)
{
    if (lock_fd >= 0)
        close(lock_fd); /* releases the flock */
}

char *
vm_group(const char *vm)
{
    return g_strconcat("vm ", vm, NULL);
}

gboolean
host_known(SkeletonBackend *b, const char *host)
{
    return host && g_strv_contains((const char *const *)b->hosts, host);
}

/* ---- open / close -------------------------------------------------------- */

static void skeleton_close(VmshiftBackend *b);

static VmshiftBackend *
skeleton_open(const VmshiftConfig *config, guint32 flags, GError **error)
{
    g_autofree char *vms = NULL;
    SkeletonBackend *b;
    int fd;

    if (!vmshift_check_flags(flags, 0, "open", error))
        return NULL;
    b = g_new0(SkeletonBackend, 1);
    b->name = g_strdup(vmshift_config_get_backend(config));
    b->hosts = vmshift_config_get_string_list(config, "hosts");
    if (!b->hosts)
        b->hosts = g_strsplit("alpha;beta", ";", -1);
    if (!vmshift_config_get_int(config, "transfer-seconds", 2, 0, 3600, &b->transfer_seconds, error)
        || !vmshift_config_get_int(config, "switchover-reply-seconds", 0, 0, 3600,
                                   &b->switchover_reply_seconds, error)
        || !vmshift_config_get_int(config, "import-seconds", 0, 0, 3600, &b->import_seconds, error))
        goto fail;
    b->shared_path = vmshift_config_get_string(config, "shared-path", NULL);
    b->import_format = vmshift_config_get_string(config, "import-format", "raw");
    b->state_file = vmshift_config_get_string(config, "state-file", NULL);
    if (!b->state_file) {
        const char *dir = vmshift_config_get_state_dir(config);
        if (!dir) {
            g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_CONFIG,
                        "%s: backend '%s': no state directory; set state-file=",
                        vmshift_config_get_source(config), b->name);
            goto fail;
        }
        b->state_file = g_build_filename(dir, "skeleton.state", NULL);
    }
    b->data_dir = vmshift_config_get_string(config, "data-dir", NULL);
    if (!b->data_dir)
        b->data_dir = g_strconcat(b->state_file, ".data", NULL);

    /* First run: create the "hypervisor" with the configured VMs. */
    if (!g_file_test(b->state_file, G_FILE_TEST_EXISTS)) {
        g_autoptr(GKeyFile) kf = g_key_file_new();
        g_auto(GStrv) list = vmshift_config_get_string_list(config, "vms");
        if (!list)
            list = g_strsplit("web1@alpha;db1@alpha", ";", -1);
        for (guint i = 0; list[i]; i++) {
            g_auto(GStrv) parts = g_strsplit(list[i], "@", 2);
            g_autofree char *group = vm_group(parts[0]);
            const char *host = parts[1] ? parts[1] : b->hosts[0];
            if (!host_known(b, host)) {
                g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_CONFIG,
                            "%s: backend '%s': VM '%s' is on unknown host '%s'",
                            vmshift_config_get_source(config), b->name, parts[0], host);
                goto fail;
            }
            g_key_file_set_string(kf, group, "host", host);
            g_key_file_set_string(kf, group, "power", "running");
            g_key_file_set_uint64(kf, group, "memory", 2 * GiB);
            g_key_file_set_string(kf, group, "path", b->shared_path ? b->shared_path : "/srv/vms");
        }
        if (!state_save(b, kf, error))
            goto fail;
    }
    /* Prove the state is readable now rather than at the first command. */
    {
        g_autoptr(GKeyFile) kf = state_load(b, &fd, error);
        if (!kf)
            goto fail;
        state_unlock(fd);
    }
    return b;

fail:
    skeleton_close(b);
    return NULL;
}

static void
skeleton_close(VmshiftBackend *b)
{
    if (!b)
        return;
    g_free(b->name);
    g_free(b->state_file);
    g_free(b->shared_path);
    g_free(b->data_dir);
    g_free(b->import_format);
    g_strfreev(b->hosts);
    g_free(b);
}

/* ---- inventory ----------------------------------------------------------- */

static char *
host_group(const char *host)
{
    return g_strconcat("host ", host, NULL);
}

/* A number of the state file, @fallback when absent; *known FALSE when it
 * says "unknown". */
static guint64
state_bytes(GKeyFile *kf, const char *group, const char *key, guint64 fallback, gboolean *known)
{
    g_autofree char *v = g_key_file_get_string(kf, group, key, NULL);

    if (known)
        *known = g_strcmp0(v, "unknown") != 0;
    return v && g_ascii_isdigit(*v) ? g_ascii_strtoull(v, NULL, 10) : fallback;
}

static guint32
host_status_from(const char *s)
{
    return !g_strcmp0(s, "maintenance")    ? VMSHIFT_HOST_MAINTENANCE
           : !g_strcmp0(s, "limited")      ? VMSHIFT_HOST_LIMITED
           : !g_strcmp0(s, "disconnected") ? VMSHIFT_HOST_DISCONNECTED
                                           : VMSHIFT_HOST_OK;
}

static GPtrArray *
skeleton_list_hosts(VmshiftBackend *b, guint32 flags, GError **error)
{
    g_autoptr(GKeyFile) kf = NULL;
    GPtrArray *hosts;
    int fd;

    if (!vmshift_check_flags(flags, 0, "list_hosts", error))
        return NULL;
    if (!(kf = state_load(b, &fd, error)))
        return NULL;
    state_unlock(fd);
    hosts = vmshift_list_new((GDestroyNotify)vmshift_host_free);
    for (guint i = 0; b->hosts[i]; i++) {
        g_autofree char *group = host_group(b->hosts[i]);
        g_autofree char *status = g_key_file_get_string(kf, group, "status", NULL);
        g_auto(GStrv) nets = g_key_file_get_string_list(kf, group, "networks", NULL, NULL);
        VmshiftHost *h = vmshift_host_new();
        gboolean known;
        h->id = g_strdup(b->hosts[i]);
        h->name = g_strdup(b->hosts[i]);
        h->status = host_status_from(status);
        h->hypervisor = g_strdup("skeleton " SKELETON_VERSION);
        h->cpu_count = 8;
        h->cpu_usage_percent = (gint32)state_bytes(kf, group, "cpu", 10, NULL);
        h->memory_free = state_bytes(kf, group, "memory-free", 48 * GiB, &known);
        h->memory_total = known ? 64 * GiB : 0; /* both 0: not known */
        if (!known)
            h->memory_free = 0;
        h->default_vm_path = g_strdup("/srv/vms");
        /* ABI 1.2 facts: the networks this host has, when the state names
         * them, and its live-migration compatibility class */
        if (nets) {
            h->networks = vmshift_string_list_new();
            for (guint k = 0; nets[k]; k++)
                g_ptr_array_add(h->networks, g_strdup(nets[k]));
        }
        h->compat_id = g_key_file_get_string(kf, group, "compat", NULL);
        g_ptr_array_add(hosts, h);
    }
    return hosts;
}

/* Disk @id of the VM of @group: its place, format, size, bus and boot
 * order (`disks=` lists a VM's disks, disk0 alone when absent; an imported
 * VM has `size-ID=`, `format-ID=` and `bus-ID=` for each). */
static VmshiftDisk *
disk_from_state(GKeyFile *kf, const char *group, const VmshiftVm *vm, const char *id, guint index)
{
    g_autofree char *disk_dir = g_key_file_get_string(kf, group, "disk-dir", NULL);
    g_autofree char *size_key = g_strconcat("size-", id, NULL);
    g_autofree char *format_key = g_strconcat("format-", id, NULL);
    g_autofree char *bus_key = g_strconcat("bus-", id, NULL);
    VmshiftDisk *disk = vmshift_disk_new();
    gboolean known;

    disk->id = g_strdup(id);
    disk->path = g_strdup_printf("%s/%s.img", disk_dir ? disk_dir : vm->config_path, id);
    disk->format = g_key_file_get_string(kf, group, format_key, NULL);
    if (!disk->format)
        disk->format = g_strdup("raw");
    /* a size the backend cannot tell is reported as unknown, not as 0 */
    disk->capacity = g_key_file_has_key(kf, group, size_key, NULL)
                         ? state_bytes(kf, group, size_key, 0, &known)
                         : state_bytes(kf, group, "disk-size", 10 * GiB, &known);
    disk->size_known = known ? VMSHIFT_DISK_CAPACITY_KNOWN : 0;
    if (!known)
        disk->capacity = 0;
    disk->bus = g_key_file_get_string(kf, group, bus_key, NULL);
    disk->boot_order = index + 1;
    return disk;
}

/* NIC @id: `nics=` lists an imported VM's NICs with `network-ID=` and
 * `mac-ID=`; without it the VM has net0 on `network=` (lan). */
static VmshiftNic *
nic_from_state(GKeyFile *kf, const char *group, const char *id, gboolean listed)
{
    g_autofree char *net_key = g_strconcat("network-", id, NULL);
    g_autofree char *mac_key = g_strconcat("mac-", id, NULL);
    VmshiftNic *nic = vmshift_nic_new();

    nic->id = g_strdup(id);
    nic->network = g_key_file_get_string(kf, group, listed ? net_key : "network", NULL);
    if (!nic->network)
        nic->network = g_strdup("lan");
    nic->mac = g_key_file_get_string(kf, group, mac_key, NULL);
    nic->model = g_key_file_get_string(kf, group, "nic-model", NULL);
    return nic;
}

VmshiftVm *
vm_from_state(GKeyFile *kf, const char *name)
{
    g_autofree char *group = vm_group(name);
    g_autofree char *power = g_key_file_get_string(kf, group, "power", NULL);
    g_autofree char *path = g_key_file_get_string(kf, group, "path", NULL);
    g_autofree char *firmware = g_key_file_get_string(kf, group, "firmware", NULL);
    g_auto(GStrv) disks = g_key_file_get_string_list(kf, group, "disks", NULL, NULL);
    g_auto(GStrv) nics = g_key_file_get_string_list(kf, group, "nics", NULL, NULL);
    static const char *const one_disk[] = { "disk0", NULL }, *const one_nic[] = { "net0", NULL };
    const char *const *dl = disks ? (const char *const *)disks : one_disk;
    const char *const *nl = nics ? (const char *const *)nics : one_nic;
    VmshiftVm *vm = vmshift_vm_new();
    gint64 vcpus = g_key_file_get_int64(kf, group, "vcpus", NULL);

    vm->id = g_strdup(name);
    vm->name = g_strdup(name);
    vm->host = g_key_file_get_string(kf, group, "host", NULL);
    vm->power_state = g_strcmp0(power, "stopped") == 0 ? VMSHIFT_POWER_STOPPED
                                                       : VMSHIFT_POWER_RUNNING;
    vm->vcpus = vcpus > 0 ? (guint32)vcpus : 2;
    vm->memory = g_key_file_get_uint64(kf, group, "memory", NULL);
    vm->config_path = g_build_filename(path ? path : "/srv/vms", name, NULL);
    vm->firmware = !g_strcmp0(firmware, "uefi")   ? VMSHIFT_FIRMWARE_UEFI
                   : !g_strcmp0(firmware, "bios") ? VMSHIFT_FIRMWARE_BIOS
                                                  : VMSHIFT_FIRMWARE_UNKNOWN;
    vm->guest_os = g_key_file_get_string(kf, group, "guest-os", NULL);
    for (guint i = 0; dl[i]; i++)
        g_ptr_array_add(vm->disks, disk_from_state(kf, group, vm, dl[i], i));
    for (guint i = 0; nl[i]; i++)
        g_ptr_array_add(vm->nics, nic_from_state(kf, group, nl[i], nics != NULL));
    return vm;
}

static GPtrArray *
skeleton_list_vms(VmshiftBackend *b, const char *host, guint32 flags, GError **error)
{
    g_autoptr(GKeyFile) kf = NULL;
    g_auto(GStrv) groups = NULL;
    GPtrArray *vms;
    int fd;

    if (!vmshift_check_flags(flags, 0, "list_vms", error))
        return NULL;
    if (!(kf = state_load(b, &fd, error)))
        return NULL;
    state_unlock(fd);
    vms = vmshift_list_new((GDestroyNotify)vmshift_vm_free);
    groups = g_key_file_get_groups(kf, NULL);
    for (guint i = 0; groups[i]; i++) {
        VmshiftVm *vm;
        if (!g_str_has_prefix(groups[i], "vm "))
            continue;
        vm = vm_from_state(kf, groups[i] + 3);
        if (host && g_strcmp0(vm->host, host) != 0)
            vmshift_vm_free(vm);
        else
            g_ptr_array_add(vms, vm);
    }
    return vms;
}

static VmshiftVm *
skeleton_get_vm(VmshiftBackend *b, const char *name, guint32 flags, GError **error)
{
    g_autoptr(GKeyFile) kf = NULL;
    g_autofree char *group = NULL;
    int fd;

    if (!vmshift_check_flags(flags, 0, "get_vm", error))
        return NULL;
    if (!(kf = state_load(b, &fd, error)))
        return NULL;
    state_unlock(fd);
    group = vm_group(name);
    if (!g_key_file_has_group(kf, group)) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_NOT_FOUND, "skeleton[%s]: no VM named '%s'",
                    b->name, name);
        return NULL;
    }
    return vm_from_state(kf, name);
}

static GPtrArray *
skeleton_list_networks(VmshiftBackend *b, const char *host, guint32 flags, GError **error)
{
    GPtrArray *nets;
    VmshiftNetwork *n;

    if (!vmshift_check_flags(flags, 0, "list_networks", error))
        return NULL;
    nets = vmshift_list_new((GDestroyNotify)vmshift_network_free);
    n = vmshift_network_new();
    n->id = g_strdup("lan");
    n->name = g_strdup("lan");
    n->kind = g_strdup("bridge");
    g_ptr_array_add(nets, n);
    return nets;
}

static GPtrArray *
skeleton_list_volumes(VmshiftBackend *b, const char *host, guint32 flags, GError **error)
{
    g_autoptr(GKeyFile) kf = NULL;
    GPtrArray *vols;
    int fd;

    if (!vmshift_check_flags(flags, 0, "list_volumes", error))
        return NULL;
    if (!(kf = state_load(b, &fd, error)))
        return NULL;
    state_unlock(fd);
    vols = vmshift_list_new((GDestroyNotify)vmshift_volume_free);
    for (guint i = 0; b->hosts[i]; i++) {
        g_autofree char *group = host_group(b->hosts[i]);
        gboolean known;
        VmshiftVolume *v;
        if (host && strcmp(host, b->hosts[i]) != 0)
            continue;
        v = vmshift_volume_new();
        v->id = g_strdup_printf("%s:/srv/vms", b->hosts[i]);
        v->name = g_strdup("vms");
        v->path = g_strdup("/srv/vms");
        v->host = g_strdup(b->hosts[i]);
        v->kind = g_strdup("directory");
        v->capacity = 1024 * GiB;
        v->free = state_bytes(kf, group, "volume-free", 512 * GiB, &known);
        v->free_unknown = !known; /* ABI 1.2 */
        v->is_default = 1;
        g_ptr_array_add(vols, v);
    }
    if (b->shared_path) {
        /* shared: no owning host, every host reaches it (hosts NULL) */
        VmshiftVolume *v = vmshift_volume_new();
        v->id = g_strdup("shared");
        v->name = g_strdup("shared");
        v->path = g_strdup(b->shared_path);
        v->kind = g_strdup("datastore");
        v->shared = 1;
        v->capacity = 4096 * GiB;
        v->free = state_bytes(kf, "shared", "free", 2048 * GiB, NULL);
        g_ptr_array_add(vols, v);
    }
    return vols;
}

/* A merge is "in progress" when the state file says so (tests set it). */
static VmshiftCheckpointState *
skeleton_checkpoint_state(VmshiftBackend *b, const char *name, guint32 flags, GError **error)
{
    g_autoptr(GKeyFile) kf = NULL;
    g_autofree char *group = vm_group(name);
    g_autofree char *merging = NULL;
    VmshiftCheckpointState *st;
    int fd;

    if (!vmshift_check_flags(flags, 0, "checkpoint_state", error))
        return NULL;
    if (!(kf = state_load(b, &fd, error)))
        return NULL;
    state_unlock(fd);
    if (!g_key_file_has_group(kf, group)) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_NOT_FOUND, "skeleton[%s]: no VM named '%s'",
                    b->name, name);
        return NULL;
    }
    st = vmshift_checkpoint_state_new();
    merging = g_key_file_get_string(kf, group, "merging", NULL);
    if (merging && *merging) {
        st->merging = 1;
        st->detail = g_strdup_printf("snapshot '%s' is being merged", merging);
    }
    st->needs_consolidation = g_key_file_get_boolean(kf, group, "consolidate", NULL);
    return st;
}

/* ---- validation ----------------------------------------------------------- */

/* The host judges destination, power state, memory, space, networks and
 * merges itself from the facts above (vmshift/findings.h); check_migration
 * reports only what the backend alone knows, with a canonical code. Here
 * that is the migration options this backend does not have. */
static GPtrArray *
skeleton_check_migration(VmshiftBackend *b, const VmshiftMigrationSpec *spec, guint32 flags,
                         GError **error)
{
    GPtrArray *findings;

    if (!vmshift_check_flags(flags, 0, "check_migration", error))
        return NULL;
    findings = vmshift_list_new((GDestroyNotify)vmshift_finding_free);
    /* one stand-in hypervisor with no storage network: no --transfer choice */
    if (spec->transfer != VMSHIFT_TRANSFER_AUTO)
        g_ptr_array_add(
            findings,
            vmshift_finding_new(VMSHIFT_SEVERITY_ERROR, VMSHIFT_FINDING_TRANSFER_CONFLICT, spec->vm,
                                "skeleton: --transfer %s is not supported (this "
                                "backend has no transfer choice)",
                                spec->transfer == VMSHIFT_TRANSFER_SAN ? "san" : "network"));
    /* this backend has no migration options: each key is refused by name */
    if (spec->options) {
        GVariantIter it;
        const char *key;
        g_variant_iter_init(&it, spec->options);
        while (g_variant_iter_next(&it, "{&sv}", &key, NULL))
            g_ptr_array_add(findings, vmshift_finding_new(VMSHIFT_SEVERITY_ERROR,
                                                          VMSHIFT_FINDING_UNKNOWN_OPTION, key,
                                                          "skeleton: unknown option '%s'", key));
    }
    return findings;
}

/* ---- migration ------------------------------------------------------------ */

/* The half-copied files a transfer leaves at the destination until the
 * switchover: a "[copy VM]" group naming the job, the host and directory.
 * @job_id NULL removes the group (only when it is @only_job's, if given);
 * *removed says whether there was one. */
static gboolean
set_copy(SkeletonBackend *b, const char *vm, const char *job_id, const char *host, const char *path,
         const char *only_job, gboolean *removed, GError **error)
{
    g_autoptr(GKeyFile) kf = NULL;
    g_autofree char *group = g_strconcat("copy ", vm, NULL);
    g_autofree char *owner = NULL;
    gboolean ok;
    int fd;

    if (removed)
        *removed = FALSE;
    if (!(kf = state_load(b, &fd, error)))
        return FALSE;
    if (job_id) {
        g_key_file_set_string(kf, group, "job", job_id);
        g_key_file_set_string(kf, group, "host", host ? host : "");
        g_key_file_set_string(kf, group, "path", path ? path : "");
    } else {
        owner = g_key_file_get_string(kf, group, "job", NULL);
        if (!owner || (only_job && strcmp(owner, only_job) != 0)) {
            state_unlock(fd);
            return TRUE;
        }
        g_key_file_remove_group(kf, group, NULL);
        if (removed)
            *removed = TRUE;
    }
    ok = state_save(b, kf, error);
    state_unlock(fd);
    return ok;
}

/* TRUE when the stand-in hypervisor is told not to apply @field */
static gboolean
hv_ignores(GKeyFile *kf, const char *field)
{
    g_auto(GStrv) ignore = g_key_file_get_string_list(kf, "hypervisor", "ignore", NULL, NULL);
    return ignore && g_strv_contains((const char *const *)ignore, field);
}

/* The fault switch of the stand-in hypervisor (see the top of the file):
 * the KIND of the fault armed at @where, one hit consumed, else NULL. */
char *
hv_fault(SkeletonBackend *b, const char *where)
{
    g_autoptr(GKeyFile) kf = NULL;
    g_autofree char *f = NULL;
    char *at;
    gint64 count;
    int fd;

    if (!(kf = state_load(b, &fd, NULL)))
        return NULL;
    f = g_key_file_get_string(kf, "hypervisor", "fault", NULL);
    at = f ? strchr(f, '@') : NULL;
    if (!at || strcmp(at + 1, where) != 0) {
        state_unlock(fd);
        return NULL;
    }
    *at = '\0';
    count = g_key_file_has_key(kf, "hypervisor", "fault-count", NULL)
                ? g_key_file_get_int64(kf, "hypervisor", "fault-count", NULL)
                : 1;
    if (count <= 1) {
        g_key_file_remove_key(kf, "hypervisor", "fault", NULL);
        g_key_file_remove_key(kf, "hypervisor", "fault-count", NULL);
    } else
        g_key_file_set_int64(kf, "hypervisor", "fault-count", count - 1);
    state_save(b, kf, NULL);
    state_unlock(fd);
    return g_steal_pointer(&f);
}

/* The error a fault of @kind at @where makes (lost-reply: a timeout). */
static void
fault_error(SkeletonBackend *b, const char *kind, const char *where, const char *dest,
            GError **error)
{
    if (!strcmp(kind, "cut"))
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_CONNECTION,
                    "skeleton[%s]: connection to the hypervisor lost during %s", b->name, where);
    else if (!strcmp(kind, "disk-full"))
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_NO_SPACE,
                    "skeleton[%s]: no space left on host '%s' during %s", b->name, dest, where);
    else if (!strcmp(kind, "dest-down"))
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_CONNECTION,
                    "skeleton[%s]: destination host '%s' stopped answering during %s", b->name,
                    dest, where);
    else if (!strcmp(kind, "lost-reply"))
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_TIMEOUT,
                    "skeleton[%s]: no reply to the %s call", b->name, where);
    else
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_FAILED,
                    "skeleton[%s]: the hypervisor refused the %s call (server error)", b->name,
                    where);
}

/* Moves the VM in the "hypervisor": the switchover of this backend. The
 * copy becomes the VM in the same atomic write. */
static gboolean
move_vm(SkeletonBackend *b, const VmshiftMigrationSpec *spec, GError **error)
{
    g_autoptr(GKeyFile) kf = NULL;
    g_autofree char *group = vm_group(spec->vm);
    const char *disk_dir = vmshift_migration_spec_disk_dir(spec, "disk0");
    gboolean ok;
    int fd;

    if (!(kf = state_load(b, &fd, error)))
        return FALSE;
    if (spec->dest_host && !hv_ignores(kf, "host"))
        g_key_file_set_string(kf, group, "host", spec->dest_host);
    if (spec->dest_path && !hv_ignores(kf, "path"))
        g_key_file_set_string(kf, group, "path", spec->dest_path);
    if (disk_dir && !hv_ignores(kf, "disk"))
        g_key_file_set_string(kf, group, "disk-dir", disk_dir);
    for (guint i = 0; spec->networks && i < spec->networks->len; i++) {
        const VmshiftMapping *m = g_ptr_array_index(spec->networks, i);
        if (!hv_ignores(kf, "network"))
            g_key_file_set_string(kf, group, "network", m->value);
    }
    if (spec->type == VMSHIFT_MIGRATION_COLD && spec->start && !hv_ignores(kf, "power"))
        g_key_file_set_string(kf, group, "power", "running");
    g_free(group);
    group = g_strconcat("copy ", spec->vm, NULL);
    g_key_file_remove_group(kf, group, NULL);
    ok = state_save(b, kf, error);
    state_unlock(fd);
    return ok;
}

/* Whether @vm is where @spec sends it: on its host, and for a move of
 * storage (with or without the host) in its directory. */
static gboolean
moved_as_asked(const VmshiftMigrationSpec *spec, const VmshiftVm *vm)
{
    g_autofree char *under = spec->dest_path ? g_strconcat(spec->dest_path, "/", NULL) : NULL;

    if (!spec->dest_host && !under)
        return FALSE;
    return (!spec->dest_host || g_strcmp0(vm->host, spec->dest_host) == 0)
           && (!under || g_str_has_prefix(vm->config_path, under));
}

/* The move read back from the hypervisor: host, power state, each disk's
 * place and each NIC's network as the spec asks. A difference fails the
 * job, naming the field; what matched is the job's "verified" result. */
static gboolean
verify_moved(SkeletonBackend *b, const VmshiftMigrationSpec *spec, const VmshiftVm *before,
             VmshiftJob *job, GError **error)
{
    g_autoptr(VmshiftVm) vm = skeleton_get_vm(b, spec->vm, 0, error);
    g_autofree char *bad = NULL;
    const char *host = spec->dest_host ? spec->dest_host : before->host;
    gboolean want_run = spec->type == VMSHIFT_MIGRATION_COLD
                            ? spec->start
                            : before->power_state == VMSHIFT_POWER_RUNNING;

    if (!vm)
        return FALSE;
    vmshift_job_set_location(job, vm->host,
                             vm->power_state == VMSHIFT_POWER_RUNNING ? "running" : "stopped");
    if (g_strcmp0(vm->host, host) != 0)
        bad = g_strdup_printf("it is on '%s', not '%s'", vm->host, host);
    else if (spec->dest_path && !moved_as_asked(spec, vm))
        bad = g_strdup_printf("its files are in %s, not under %s", vm->config_path,
                              spec->dest_path);
    else if ((vm->power_state == VMSHIFT_POWER_RUNNING) != want_run)
        bad = g_strdup_printf("it is %s", want_run ? "stopped" : "running");
    for (guint i = 0; !bad && i < vm->disks->len; i++) {
        const VmshiftDisk *d = g_ptr_array_index(vm->disks, i);
        const char *dir = vmshift_migration_spec_disk_dir(spec, d->id);
        g_autofree char *in = d->path ? g_path_get_dirname(d->path) : NULL;
        if (dir && !g_str_has_prefix(in ? in : "", dir))
            bad = g_strdup_printf("disk %s is in %s, not under %s", d->id, in, dir);
    }
    for (guint i = 0; !bad && spec->networks && i < spec->networks->len; i++) {
        const VmshiftMapping *m = g_ptr_array_index(spec->networks, i);
        const VmshiftNic *n = vmshift_vm_find_nic(vm, m->key);
        if (n && g_strcmp0(n->network, m->value) != 0)
            bad = g_strdup_printf("NIC %s is on '%s', not '%s'", n->id, n->network, m->value);
    }
    if (bad) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_FAILED,
                    "skeleton[%s]: VM '%s' was not moved as asked: %s", b->name, vm->name, bad);
        return FALSE;
    }
    vmshift_job_set_result(job, "verified", "host,power,disks,nics");
    vmshift_job_log(job, VMSHIFT_LOG_INFO, "VM '%s' verified: on '%s', %s, %u disk(s), %u NIC(s)",
                    vm->name, vm->host, want_run ? "running" : "stopped", vm->disks->len,
                    vm->nics->len);
    return TRUE;
}

/* Whether the VM read back from the hypervisor (@now) is no longer where
 * it was (@before): the switchover is one atomic write, so any difference
 * in host, directory or disk place means it happened. */
static gboolean
vm_moved(const VmshiftVm *before, const VmshiftVm *now)
{
    const VmshiftDisk *d0 = before->disks->len ? g_ptr_array_index(before->disks, 0) : NULL;
    const VmshiftDisk *d1 = now->disks->len ? g_ptr_array_index(now->disks, 0) : NULL;

    return g_strcmp0(before->host, now->host) != 0
           || g_strcmp0(before->config_path, now->config_path) != 0
           || g_strcmp0(d0 ? d0->path : NULL, d1 ? d1->path : NULL) != 0;
}

/* The transfer: the copy at the destination, in steps, each a
 * cancellation point (and where a fault switch can strike). */
static gboolean
transfer(SkeletonBackend *b, const VmshiftMigrationSpec *spec, const VmshiftVm *vm, VmshiftJob *job,
         GError **error)
{
    GCancellable *cancel = vmshift_job_get_cancellable(job);
    const char *dest = spec->dest_host ? spec->dest_host : vm->host;
    const guint64 total = 2 * GiB;
    const guint steps = 20;

    if (!vmshift_job_set_phase(job, VMSHIFT_PHASE_TRANSFER, error))
        return FALSE;
    if (!set_copy(b, vm->name, vmshift_job_get_id(job), dest, spec->dest_path, NULL, NULL, error))
        return FALSE;
    for (guint i = 1; i <= steps; i++) {
        g_autofree char *fault = NULL;
        /* Each step: a slice of the transfer, then a cancellation point. */
        g_usleep((gulong)(b->transfer_seconds * G_USEC_PER_SEC / steps));
        if (i == steps / 2 && (fault = hv_fault(b, "transfer"))) {
            fault_error(b, fault, "transfer", dest, error);
            /* a refusal or a full disk: the copy can go; a cut or a dead
             * destination leaves it for repair */
            if (!strcmp(fault, "error") || !strcmp(fault, "disk-full"))
                set_copy(b, vm->name, NULL, NULL, NULL, vmshift_job_get_id(job), NULL, NULL);
            vmshift_job_set_location(job, vm->host, "running");
            return FALSE;
        }
        if (g_cancellable_set_error_if_cancelled(cancel, error)) {
            /* The copy goes; the VM is still at home. */
            set_copy(b, vm->name, NULL, NULL, NULL, vmshift_job_get_id(job), NULL, NULL);
            vmshift_job_log(job, VMSHIFT_LOG_INFO,
                            "cancelled during transfer; "
                            "VM '%s' keeps running on '%s'",
                            vm->name, vm->host);
            vmshift_job_set_location(job, vm->host, "running");
            return FALSE;
        }
        vmshift_job_set_bytes(job, total * i / steps, total);
    }
    return TRUE;
}

/* The switchover call. A call without an answer (a cut connection, a lost
 * reply) is never sent again: the hypervisor is asked where the VM is, and
 * that decides. */
static gboolean
switchover(SkeletonBackend *b, const VmshiftMigrationSpec *spec, const VmshiftVm *vm,
           VmshiftJob *job, GError **error)
{
    g_autofree char *fault = NULL;
    g_autoptr(VmshiftVm) now = NULL;
    g_autoptr(GError) local = NULL;
    const char *dest = spec->dest_host ? spec->dest_host : vm->host;

    if (!vmshift_job_set_phase(job, VMSHIFT_PHASE_SWITCHOVER, error))
        return FALSE;
    fault = hv_fault(b, "switchover");
    if (fault && strcmp(fault, "lost-reply") != 0) {
        fault_error(b, fault, "switchover", dest, &local);
    } else if (!move_vm(b, spec, &local)) {
        vmshift_job_set_location(job, vm->host, "running");
        g_propagate_error(error, g_steal_pointer(&local));
        return FALSE;
    } else if (fault)
        fault_error(b, fault, "switchover", dest, &local);
    if (!local)
        return TRUE;
    if (!g_error_matches(local, VMSHIFT_ERROR, VMSHIFT_ERROR_CONNECTION)
        && !g_error_matches(local, VMSHIFT_ERROR, VMSHIFT_ERROR_TIMEOUT)) {
        /* a definite refusal: nothing moved */
        vmshift_job_set_location(job, vm->host, "running");
        g_propagate_error(error, g_steal_pointer(&local));
        return FALSE;
    }
    if (!(now = skeleton_get_vm(b, spec->vm, 0, error))) {
        g_prefix_error(error, "%s; where the VM is could not be read back: ", local->message);
        return FALSE; /* the location stays unknown */
    }
    vmshift_job_set_location(job, now->host,
                             now->power_state == VMSHIFT_POWER_RUNNING ? "running" : "stopped");
    if (vm_moved(vm, now)) {
        vmshift_job_log(job, VMSHIFT_LOG_WARNING,
                        "%s; the hypervisor shows the switchover done: VM '%s' on '%s'",
                        local->message, now->name, now->host);
        return TRUE;
    }
    g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_FAILED,
                "%s; the hypervisor shows VM '%s' still on '%s': not moved", local->message,
                now->name, now->host);
    return FALSE;
}

static gboolean
skeleton_migrate(VmshiftBackend *b, const VmshiftMigrationSpec *spec, VmshiftJob *job,
                 guint32 flags, GError **error)
{
    g_autoptr(VmshiftVm) vm = NULL;
    g_autofree char *fault = NULL;

    if (!vmshift_check_flags(flags, 0, "migrate", error))
        return FALSE;
    if (!vmshift_job_set_phase(job, VMSHIFT_PHASE_VALIDATE, error))
        return FALSE;
    if (!(vm = skeleton_get_vm(b, spec->vm, 0, error)))
        return FALSE;
    vmshift_job_set_location(job, vm->host, "running");

    if (!vmshift_job_set_phase(job, VMSHIFT_PHASE_PREPARE, error))
        return FALSE;
    if ((fault = hv_fault(b, "prepare"))) {
        fault_error(b, fault, "prepare", spec->dest_host ? spec->dest_host : vm->host, error);
        return FALSE;
    }
    /* Record what repair() needs before anything changes. */
    if (!vmshift_job_save(job, "source-host", vm->host, error))
        return FALSE;

    if (!transfer(b, spec, vm, job, error))
        return FALSE;
    if (!switchover(b, spec, vm, job, error))
        return FALSE;
    /* The VM has moved; the reply takes this long (not a cancellation
     * point: the switchover is done, whatever is asked now). */
    g_usleep((gulong)(b->switchover_reply_seconds * G_USEC_PER_SEC));
    if (!verify_moved(b, spec, vm, job, error))
        return FALSE;

    if (!vmshift_job_set_phase(job, VMSHIFT_PHASE_CLEANUP, error))
        return FALSE;
    vmshift_job_log(job, VMSHIFT_LOG_INFO, "moved '%s' from '%s' to '%s'", vm->name, vm->host,
                    spec->dest_host ? spec->dest_host : vm->host);
    vmshift_job_set_result(job, "transferred-bytes", "2147483648");
    return TRUE;
}

/* Repair an interrupted migration: the switchover is one atomic write, so
 * the VM is either still at the source (the copy at the destination goes)
 * or already at the destination (the migration completed; only the
 * bookkeeping is left). A job that never reached the switchover did not
 * move the VM, wherever it is now. */
static gboolean
skeleton_repair(VmshiftBackend *b, VmshiftJob *job, guint32 flags, GError **error)
{
    const VmshiftMigrationSpec *spec = vmshift_job_get_spec(job);
    g_autoptr(VmshiftVm) vm = NULL;
    g_autofree char *source = NULL;
    gboolean removed = FALSE;

    if (!vmshift_check_flags(flags, 0, "repair", error))
        return FALSE;
    if (!spec) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_INVALID_ARGUMENT,
                    "skeleton[%s]: job %s is not a migration", b->name, vmshift_job_get_id(job));
        return FALSE;
    }
    if (!(vm = skeleton_get_vm(b, spec->vm, 0, error)))
        return FALSE;
    source = vmshift_job_get_saved(job, "source-host");
    vmshift_job_set_location(job, vm->host,
                             vm->power_state == VMSHIFT_POWER_RUNNING ? "running" : "stopped");
    if (vmshift_job_get_phase(job) >= VMSHIFT_PHASE_SWITCHOVER && moved_as_asked(spec, vm)) {
        vmshift_job_set_result(job, "repair", "resumed");
    } else if (vmshift_job_get_phase(job) <= VMSHIFT_PHASE_VALIDATE || !source) {
        vmshift_job_set_result(job, "repair", "nothing-to-do");
    } else {
        if (!set_copy(b, spec->vm, NULL, NULL, NULL, vmshift_job_get_id(job), &removed, error))
            return FALSE;
        if (removed)
            vmshift_job_log(job, VMSHIFT_LOG_INFO, "removed the partial copy of '%s'", vm->name);
        vmshift_job_set_result(job, "repair", "rolled-back");
    }
    vmshift_job_log(job, VMSHIFT_LOG_INFO, "VM '%s' runs on '%s'", vm->name, vm->host);
    return TRUE;
}

/* Force cleanup: the partial copy a job left goes; the VM, wherever it
 * runs, is not touched. */
static gboolean
skeleton_cleanup(VmshiftBackend *b, VmshiftJob *job, guint32 flags, GError **error)
{
    const VmshiftMigrationSpec *spec = vmshift_job_get_spec(job);
    gboolean removed = FALSE;

    if (!vmshift_check_flags(flags, 0, "cleanup", error))
        return FALSE;
    if (!spec) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_INVALID_ARGUMENT,
                    "skeleton[%s]: job %s is not a migration", b->name, vmshift_job_get_id(job));
        return FALSE;
    }
    if (!set_copy(b, spec->vm, NULL, NULL, NULL, vmshift_job_get_id(job), &removed, error))
        return FALSE;
    if (removed)
        vmshift_job_log(job, VMSHIFT_LOG_INFO, "removed the partial copy of '%s' left by job %s",
                        spec->vm, vmshift_job_get_id(job));
    vmshift_job_set_result(job, "cleanup", removed ? "1 item(s) removed" : "nothing left");
    return TRUE;
}

/* ---- the descriptor ------------------------------------------------------- */

static const VmshiftBackendOps skeleton_ops = {
    VMSHIFT_OPS_INIT,
    .open = skeleton_open,
    .close = skeleton_close,
    .list_hosts = skeleton_list_hosts,
    .list_vms = skeleton_list_vms,
    .get_vm = skeleton_get_vm,
    .list_networks = skeleton_list_networks,
    .list_volumes = skeleton_list_volumes,
    .checkpoint_state = skeleton_checkpoint_state,
    .check_migration = skeleton_check_migration,
    .migrate = skeleton_migrate,
    .recreate_acl = NULL, /* not supported: the host says so */
    .repair = skeleton_repair,
    .cleanup = skeleton_cleanup,
    /* ABI 1.4: moves between backends (skeleton-v2v.c) */
    .export_vm = skeleton_export_vm,
    .open_disk = skeleton_open_disk,
    .check_import = skeleton_check_import,
    .import_vm = skeleton_import_vm,
    .remove_vm = skeleton_remove_vm,
    .start_vm = skeleton_start_vm,
};

static const char *const skeleton_config_keys[] = {
    "hosts",       "vms",      "state-file",    "transfer-seconds", "switchover-reply-seconds",
    "shared-path", "data-dir", "import-format", "import-seconds",   NULL,
};

VMSHIFT_PLUGIN_DEFINE("skeleton", SKELETON_VERSION, "MIT",
                      "example backend over a state file (for plugin vendors and demos)",
                      VMSHIFT_PLUGIN_LIVE | VMSHIFT_PLUGIN_COLD | VMSHIFT_PLUGIN_STORAGE
                          | VMSHIFT_PLUGIN_HOST_AND_STORAGE,
                      skeleton_ops, skeleton_config_keys)
