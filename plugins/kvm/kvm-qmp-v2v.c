/* vmshift KVM plugin, qmp transport: moves between backends (SDK 1.4:
 * export_vm, open_disk, check_import, import_vm, remove_vm, start_vm).
 *
 * A VM leaves a bare QEMU host as its vm.conf (firmware, CPUs, memory,
 * disks with their bus and boot order, NICs) and its images read as raw
 * guest-visible bytes: locally with vmshift_disk_read_raw(), on an ssh host
 * through `nbdcopy -- [ qemu-nbd -r -f FMT IMAGE ] -` run there, its
 * stdout carried back by the backend's ssh connection. A VM arrives as
 * qcow2 images under --path (or the host's images directory) written with
 * vmshift_disk_write_raw() (ssh hosts: `qemu-img create` and then nbdcopy
 * from stdin into qemu-nbd on the host) and a vm.conf in the run directory,
 * stopped. What an import creates is journaled first (v2v-* keys), so that
 * remove_vm() with the job removes exactly that and never a VM that was
 * there before.
 */
#include "config.h"

#include <string.h>
#include <unistd.h>

#include <glib/gstdio.h>

#include "kvm-qmp.h"

/* a stream never takes longer than a day */
#define V2V_STREAM_TIMEOUT_S 86400

/* ---- commands on the host ------------------------------------------------
 * A disk is read from an ssh host by vmshift_disk_read_command() (its end
 * fails when the command failed, so a broken ssh connection is never taken
 * for the end of a disk) and written through a command's stdin, checked
 * here the same way. */

/* the command's first stderr line, or how it ended */
static char *
cmd_failure(GSubprocess *proc, int err_fd, const char *what)
{
    char buf[512] = "";
    ssize_t n = err_fd >= 0 ? pread(err_fd, buf, sizeof buf - 1, 0) : -1;
    if (n > 0) {
        buf[n] = '\0';
        buf[strcspn(buf, "\n")] = '\0';
        return g_strdup_printf("%s failed: %s", what, buf);
    }
    if (g_subprocess_get_if_exited(proc))
        return g_strdup_printf("%s exited with status %d", what,
                               g_subprocess_get_exit_status(proc));
    return g_strdup_printf("%s was killed by signal %d", what, g_subprocess_get_term_sig(proc));
}

static gboolean
cmd_wait(GSubprocess *proc, int err_fd, const char *what, GCancellable *c, GError **error)
{
    if (!g_subprocess_wait(proc, c, error))
        return FALSE;
    if (!g_subprocess_get_successful(proc)) {
        g_autofree char *msg = cmd_failure(proc, err_fd, what);
        g_set_error_literal(error, VMSHIFT_ERROR, VMSHIFT_ERROR_FAILED, msg);
        return FALSE;
    }
    return TRUE;
}

/* @argv run on @h with its stderr in an unlinked temporary file (*err_fd)
 * and @flags for stdin/stdout. */
static GSubprocess *
host_spawn(KvmHost *h, const char *const *argv, GSubprocessFlags flags, int *err_fd, GError **error)
{
    g_autofree char *name = NULL;
    int fd = g_file_open_tmp("vmshift-kvm-XXXXXX", &name, error);
    if (fd < 0)
        return NULL;
    g_unlink(name);
    g_auto(GStrv) full = kvm_host_command_argv(h, argv, V2V_STREAM_TIMEOUT_S);
    g_autoptr(GSubprocessLauncher) l = g_subprocess_launcher_new(flags);
    g_subprocess_launcher_take_stderr_fd(l, dup(fd));
    GSubprocess *p = g_subprocess_launcher_spawnv(l, (const char *const *)full, error);
    if (!p) {
        close(fd);
        return NULL;
    }
    *err_fd = fd;
    return p;
}

/* ---- helpers ------------------------------------------------------------ */

/* a disk or NIC id QEMU takes (-blockdev node-name, -netdev id): a letter
 * first (ESX's device keys are numbers) */
static gboolean
v2v_qemu_id(const char *s)
{
    return s && g_ascii_isalpha(s[0]) && strlen(s) <= 32
           && strspn(s, "abcdefghijklmnopqrstuvwxyz"
                        "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
                        "0123456789-_")
                  == strlen(s);
}

static gboolean
v2v_valid_id(const char *s)
{
    if (!s || !*s || strlen(s) > 32)
        return FALSE;
    for (const char *p = s; *p; p++)
        if (!g_ascii_isalnum(*p) && *p != '-' && *p != '_')
            return FALSE;
    return TRUE;
}

static void add_finding(GPtrArray *l, VmshiftSeverity sev, const char *code, const char *subject,
                        const char *fmt, ...) G_GNUC_PRINTF(5, 6);

static void
add_finding(GPtrArray *l, VmshiftSeverity sev, const char *code, const char *subject,
            const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    g_autofree char *msg = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    g_ptr_array_add(l, vmshift_finding_new(sev, code, subject, "%s", msg));
}

static KvmDiskDef *
find_disk(KvmVmDef *def, const char *id)
{
    for (guint i = 0; i < def->disks->len; i++) {
        KvmDiskDef *dk = def->disks->pdata[i];
        if (!strcmp(dk->id, id))
            return dk;
    }
    return NULL;
}

/* The stopped VM @vm and its host; CONFLICT when it runs. */
static KvmHost *
locate_stopped(KvmBackend *b, const char *vm, KvmVmDef **def, const char *what, GError **error)
{
    KvmHost *h = kvm_backend_locate_vm(b, vm, def, error);
    if (h && kvm_vm_is_running(h, (*def)->name)) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_CONFLICT,
                    "VM %s runs on host %s: stop it before %s", (*def)->name, h->name, what);
        g_clear_pointer(def, kvm_vm_def_free);
        return NULL;
    }
    return h;
}

/* ---- export_vm, open_disk ----------------------------------------------- */

VmshiftVm *
kvm_qmp_export_vm(KvmBackend *b, const char *vm, GError **error)
{
    g_autoptr(KvmVmDef) def = NULL;
    KvmHost *h = locate_stopped(b, vm, &def, "moving it to another backend", error);
    if (!h)
        return NULL;
    VmshiftVm *v = kvm_vm_describe(h, def);
    gboolean any_boot = FALSE;
    for (guint i = 0; i < v->disks->len; i++) {
        VmshiftDisk *d = v->disks->pdata[i];
        if (d->capacity)
            d->size_known = VMSHIFT_DISK_CAPACITY_KNOWN | VMSHIFT_DISK_ALLOCATION_KNOWN;
        any_boot = any_boot || d->boot_order;
    }
    /* without a kernel= or a bootindex, the firmware boots the first disk */
    if (!any_boot && !def->kernel && v->disks->len)
        ((VmshiftDisk *)v->disks->pdata[0])->boot_order = 1;
    return v;
}

/* `nbdcopy -- [ qemu-nbd -r -f FMT PATH ] -` on the host, its stdout */
static GInputStream *
remote_read_raw(KvmHost *h, const KvmDiskDef *dk, GError **error)
{
    const char *argv[] = { "nbdcopy",  "--",     "[", "qemu-nbd", "-r", "-f",
                           dk->format, dk->path, "]", "-",        NULL };
    g_auto(GStrv) full = kvm_host_command_argv(h, argv, V2V_STREAM_TIMEOUT_S);
    g_autofree char *what = g_strdup_printf("reading %s on host %s", dk->path, h->name);
    return vmshift_disk_read_command((const char *const *)full, what, error);
}

GInputStream *
kvm_qmp_open_disk(KvmBackend *b, const char *vm, const char *disk_id, GCancellable *cancellable,
                  GError **error)
{
    g_autoptr(KvmVmDef) def = NULL;
    KvmHost *h = locate_stopped(b, vm, &def, "reading its disks", error);
    if (!h)
        return NULL;
    KvmDiskDef *dk = find_disk(def, disk_id);
    if (!dk) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_NOT_FOUND, "VM %s has no disk '%s'",
                    def->name, disk_id);
        return NULL;
    }
    if (!kvm_host_is_local(h))
        return remote_read_raw(h, dk, error);
    return vmshift_disk_read_raw(dk->path, dk->format, NULL, cancellable, error);
}

/* ---- the mapping (check_import and import_vm) --------------------------- */

/* The bus disk @d gets here; *why says what changed (NULL: nothing). */
static const char *
map_bus(const VmshiftDisk *d, guint *n_ide, char **why)
{
    *why = NULL;
    const char *bus = d->bus;
    if (!bus) {
        *why = g_strdup("its bus is not known: virtio");
        return "virtio";
    }
    if (!strcmp(bus, "ide") && (*n_ide)++ >= 4) {
        *why = g_strdup("a fifth IDE disk does not fit QEMU's pc machine: sata");
        return "sata";
    }
    if (!strcmp(bus, "scsi")) {
        *why = g_strdup("its SCSI controller becomes virtio-scsi (the guest needs its driver)");
        return "scsi";
    }
    if (kvm_vm_bus_supported(bus))
        return bus;
    *why = g_strdup_printf("QEMU has no bus '%s': virtio", bus);
    return "virtio";
}

/* The QEMU device model of NIC @n (*why as for map_bus). */
static const char *
map_nic_model(const VmshiftNic *n, char **why)
{
    static const char *const models[][2] = {
        { "e1000e", "e1000e" },   { "e1000", "e1000" },           { "vmxnet3", "vmxnet3" },
        { "rtl8139", "rtl8139" }, { "virtio", "virtio-net-pci" },
    };
    *why = NULL;
    if (!n->model || !*n->model)
        return "virtio-net-pci"; /* the source does not say: nothing changes that we know */
    g_autofree char *m = g_ascii_strdown(n->model, -1);
    for (guint i = 0; i < G_N_ELEMENTS(models); i++)
        if (strstr(m, models[i][0]))
            return models[i][1];
    *why = g_strdup_printf("model %s becomes virtio-net-pci", n->model);
    return "virtio-net-pci";
}

/* A unicast MAC "xx:xx:xx:xx:xx:xx" is kept; else NULL (a new one). */
static char *
map_mac(const char *mac)
{
    if (!mac || strlen(mac) != 17)
        return NULL;
    for (int i = 0; i < 17; i++)
        if (i % 3 == 2 ? mac[i] != ':' && mac[i] != '-' : !g_ascii_isxdigit(mac[i]))
            return NULL;
    if (g_ascii_xdigit_value(mac[1]) & 1) /* multicast */
        return NULL;
    char *m = g_ascii_strdown(mac, -1);
    g_strdelimit(m, "-", ':');
    return m;
}

static const char *
target_dir(KvmHost *h, const VmshiftMigrationSpec *spec)
{
    return spec->dest_path && *spec->dest_path ? spec->dest_path : h->images_dir;
}

static const VmshiftVm *
spec_source(const VmshiftMigrationSpec *spec, GError **error)
{
    if (!VMSHIFT_HAS_FIELD(spec, source_vm) || !spec->source_vm || !spec->dest_host) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_INVALID_ARGUMENT,
                    "an import needs the source VM's description and a destination host");
        return NULL;
    }
    return spec->source_vm;
}

/* ---- check_import ------------------------------------------------------- */

static void
check_disks(GPtrArray *l, KvmHost *h, const VmshiftMigrationSpec *spec, const VmshiftVm *src)
{
    guint n_ide = 0;
    guint64 need = 0;
    for (guint i = 0; i < src->disks->len; i++) {
        const VmshiftDisk *d = src->disks->pdata[i];
        g_autofree char *why = NULL;
        const char *bus = map_bus(d, &n_ide, &why);
        if (why)
            add_finding(l, VMSHIFT_SEVERITY_WARNING, VMSHIFT_FINDING_BUS_REMAPPED, d->id,
                        "disk %s: %s", d->id, why);
        if (!g_strcmp0(src->guest_os, "windows") && !strcmp(bus, "virtio")
            && g_strcmp0(d->bus, "virtio"))
            add_finding(l, VMSHIFT_SEVERITY_WARNING, VMSHIFT_FINDING_GUEST_DRIVERS, d->id,
                        "disk %s goes on virtio: the Windows guest may lack the virtio driver "
                        "(--convert-guest installs it)",
                        d->id);
        need += d->capacity;
    }
    const char *dir = target_dir(h, spec);
    guint64 total = 0, avail = 0;
    g_autoptr(GError) e = NULL;
    if (spec->dest_path && !kvm_host_exists(h, dir))
        add_finding(l, VMSHIFT_SEVERITY_ERROR, VMSHIFT_FINDING_PATH_NOT_FOUND, dir,
                    "host %s has no directory %s", h->name, dir);
    else if (kvm_host_df(h, kvm_host_exists(h, dir) ? dir : h->run_dir, &total, &avail, &e)
             && avail < need)
        add_finding(l, VMSHIFT_SEVERITY_ERROR, VMSHIFT_FINDING_NO_SPACE, dir,
                    "%s on host %s has %" G_GUINT64_FORMAT " MiB free; the disks need up to "
                    "%" G_GUINT64_FORMAT " MiB",
                    dir, h->name, avail >> 20, (need + (1 << 20) - 1) >> 20);
}

static void
check_nics(GPtrArray *l, KvmHost *h, const VmshiftVm *src)
{
    for (guint i = 0; i < src->nics->len; i++) {
        const VmshiftNic *n = src->nics->pdata[i];
        const char *net = n->network ? n->network : "default";
        g_autofree char *nd = kvm_host_netdev(h, net);
        if (!nd)
            add_finding(l, VMSHIFT_SEVERITY_ERROR, VMSHIFT_FINDING_NETWORK_MISSING, n->id,
                        "NIC %s: host %s has no network '%s' (see %s/networks.conf)", n->id,
                        h->name, net, h->run_dir);
        else if (!n->network)
            add_finding(l, VMSHIFT_SEVERITY_INFO, VMSHIFT_FINDING_NIC_MAPPED, n->id,
                        "NIC %s is not connected: it joins network 'default'", n->id);
        g_autofree char *why = NULL;
        const char *model = map_nic_model(n, &why);
        if (why)
            add_finding(l, VMSHIFT_SEVERITY_WARNING, VMSHIFT_FINDING_NIC_MODEL_CHANGED, n->id,
                        "NIC %s: %s (the guest needs its driver)", n->id, why);
        g_autofree char *mac = map_mac(n->mac);
        if (!mac)
            add_finding(l, VMSHIFT_SEVERITY_WARNING, VMSHIFT_FINDING_MAC_NOT_KEPT, n->id,
                        "NIC %s: MAC '%s' cannot be kept: a new one is made", n->id,
                        n->mac ? n->mac : "(none)");
        if (!g_strcmp0(src->guest_os, "windows") && !strcmp(model, "virtio-net-pci"))
            add_finding(l, VMSHIFT_SEVERITY_WARNING, VMSHIFT_FINDING_GUEST_DRIVERS, n->id,
                        "NIC %s is virtio-net: the Windows guest may lack its driver "
                        "(--convert-guest installs it)",
                        n->id);
    }
}

static void
check_firmware(GPtrArray *l, KvmHost *h, const VmshiftVm *src)
{
    if (src->firmware == VMSHIFT_FIRMWARE_UEFI) {
        if (!kvm_host_exists(h, KVM_OVMF_CODE) || !kvm_host_exists(h, KVM_OVMF_VARS))
            add_finding(l, VMSHIFT_SEVERITY_ERROR, VMSHIFT_FINDING_FIRMWARE_UNSUPPORTED, h->name,
                        "VM %s boots with UEFI: host %s lacks OVMF (%s, %s; install the ovmf "
                        "package)",
                        src->name, h->name, KVM_OVMF_CODE, KVM_OVMF_VARS);
    } else if (src->firmware != VMSHIFT_FIRMWARE_BIOS) {
        add_finding(l, VMSHIFT_SEVERITY_WARNING, VMSHIFT_FINDING_FIRMWARE_UNKNOWN, src->name,
                    "VM %s: its firmware is not known: it gets a BIOS", src->name);
    }
}

GPtrArray *
kvm_qmp_check_import(KvmBackend *b, const VmshiftMigrationSpec *spec, GError **error)
{
    const VmshiftVm *src = spec_source(spec, error);
    if (!src)
        return NULL;
    GPtrArray *l = vmshift_list_new((GDestroyNotify)vmshift_finding_free);
    g_autoptr(GError) e = NULL;
    KvmHost *h = kvm_backend_find_host(b, spec->dest_host, &e);
    if (!h) {
        gboolean down = g_error_matches(e, VMSHIFT_ERROR, VMSHIFT_ERROR_CONNECTION);
        add_finding(l, VMSHIFT_SEVERITY_ERROR,
                    down ? VMSHIFT_FINDING_HOST_UNREACHABLE : VMSHIFT_FINDING_HOST_NOT_FOUND,
                    spec->dest_host, "%s", e->message);
        return l;
    }
    g_autofree char *vmdir = kvm_host_vm_dir(h, src->name ? src->name : "");
    if (!v2v_valid_id(src->name))
        add_finding(l, VMSHIFT_SEVERITY_ERROR, VMSHIFT_FINDING_NAME_TAKEN, h->name,
                    "VM name '%s' is not usable on a QEMU host (letters, digits, '-', '_', "
                    "at most 32)",
                    src->name ? src->name : "");
    else if (kvm_host_exists(h, vmdir))
        add_finding(l, VMSHIFT_SEVERITY_ERROR, VMSHIFT_FINDING_NAME_TAKEN, h->name,
                    "host %s already has a VM called %s (%s)", h->name, src->name, vmdir);
    check_firmware(l, h, src);
    check_disks(l, h, spec, src);
    check_nics(l, h, src);
    return l;
}

/* ---- import_vm ---------------------------------------------------------- */

/* The definition of @src on @h, its disks under @dir. */
static KvmVmDef *
import_def(KvmHost *h, const VmshiftVm *src, const char *dir)
{
    g_autofree char *text = g_strdup_printf("[vm]\nname=%s\n", src->name);
    KvmVmDef *def = kvm_vm_def_parse(text, "(import)", NULL);
    def->memory_mib = src->memory ? (src->memory + (1 << 20) - 1) >> 20 : 512;
    def->vcpus = src->vcpus ? src->vcpus : 1;
    def->guest_os = g_strdup(src->guest_os);
    g_autofree char *vmdir = kvm_host_vm_dir(h, src->name);
    if (src->firmware == VMSHIFT_FIRMWARE_UEFI) {
        def->firmware = g_strdup("uefi");
        def->firmware_code = g_strdup(KVM_OVMF_CODE);
        def->nvram = g_build_filename(vmdir, "OVMF_VARS.fd", NULL);
    }
    guint n_ide = 0;
    for (guint i = 0; i < src->disks->len; i++) {
        const VmshiftDisk *d = src->disks->pdata[i];
        g_autofree char *why = NULL;
        KvmDiskDef *dk = g_new0(KvmDiskDef, 1);
        dk->acl_uid = dk->acl_gid = -1;
        dk->id = v2v_qemu_id(d->id) && !find_disk(def, d->id) ? g_strdup(d->id)
                                                              : g_strdup_printf("disk%u", i);
        g_autofree char *file = g_strdup_printf("%s-%s.qcow2", src->name, dk->id);
        dk->path = g_build_filename(dir, file, NULL);
        dk->format = g_strdup("qcow2");
        dk->bus = g_strdup(map_bus(d, &n_ide, &why));
        dk->boot_order = d->boot_order;
        g_ptr_array_add(def->disks, dk);
    }
    for (guint i = 0; i < src->nics->len; i++) {
        const VmshiftNic *n = src->nics->pdata[i];
        g_autofree char *why = NULL;
        KvmNicDef *nd = g_new0(KvmNicDef, 1);
        gboolean dup = FALSE;
        for (guint k = 0; k < def->nics->len; k++)
            dup = dup || !g_strcmp0(((KvmNicDef *)def->nics->pdata[k])->id, n->id);
        nd->id = v2v_qemu_id(n->id) && !dup ? g_strdup(n->id) : g_strdup_printf("net%u", i);
        nd->mac = map_mac(n->mac);
        if (!nd->mac)
            nd->mac = g_strdup_printf("52:54:00:%02x:%02x:%02x", g_random_int_range(0, 256),
                                      g_random_int_range(0, 256), g_random_int_range(0, 256));
        nd->network = g_strdup(n->network ? n->network : "default");
        nd->model = g_strdup(map_nic_model(n, &why));
        g_ptr_array_add(def->nics, nd);
    }
    return def;
}

/* ssh host: `qemu-img create` there, then our stream into
 * `nbdcopy - [ qemu-nbd -f qcow2 PATH ]` through the ssh connection. */
static gboolean
remote_write_qcow2(KvmHost *h, GInputStream *in, guint64 cap, const char *path, VmshiftJob *job,
                   GError **error)
{
    g_autofree char *size = g_strdup_printf("%" G_GUINT64_FORMAT, cap);
    const char *create[] = { "qemu-img", "create", "-q", "-f", "qcow2", path, size, NULL };
    if (!kvm_host_run(h, create, NULL, NULL, 60, error))
        return FALSE;
    const char *argv[] = {
        "nbdcopy", "--destination-is-zero", "--", "-", "[", "qemu-nbd", "-f", "qcow2", path, "]",
        NULL
    };
    int err_fd = -1;
    GCancellable *c = vmshift_job_get_cancellable(job);
    g_autoptr(GSubprocess) p = host_spawn(h, argv, G_SUBPROCESS_FLAGS_STDIN_PIPE, &err_fd, error);
    if (!p)
        return FALSE;
    GOutputStream *to = g_subprocess_get_stdin_pipe(p);
    g_autofree char *buf = g_malloc(1 << 20);
    guint64 done = 0;
    gboolean ok = TRUE;
    while (ok) {
        gssize n = g_input_stream_read(in, buf, 1 << 20, c, error);
        if (n <= 0) {
            ok = n == 0;
            break;
        }
        ok = g_output_stream_write_all(to, buf, (gsize)n, NULL, c, error);
        done += (guint64)n;
        vmshift_job_set_bytes(job, done, cap);
    }
    g_output_stream_close(to, NULL, NULL);
    if (!ok)
        g_subprocess_force_exit(p);
    g_autofree char *what = g_strdup_printf("writing %s on host %s", path, h->name);
    ok = ok && cmd_wait(p, err_fd, what, c, error);
    if (ok && done != cap) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_FAILED,
                    "%s: the source gave %" G_GUINT64_FORMAT " bytes, not %" G_GUINT64_FORMAT, what,
                    done, cap);
        ok = FALSE;
    }
    if (!ok)
        g_subprocess_wait(p, NULL, NULL);
    close(err_fd);
    return ok;
}

/* Journals @path into the job's v2v-files list, before it is made. */
static gboolean
save_file(VmshiftJob *job, const char *path, GError **error)
{
    g_autofree char *old = vmshift_job_get_saved(job, "v2v-files");
    g_autofree char *files = old && *old ? g_strconcat(old, "\n", path, NULL) : g_strdup(path);
    return vmshift_job_save(job, "v2v-files", files, error);
}

static gboolean
import_disks(KvmHost *h, const VmshiftVm *src, KvmVmDef *def, VmshiftJob *job, GError **error)
{
    for (guint i = 0; i < def->disks->len; i++) {
        KvmDiskDef *dk = def->disks->pdata[i];
        const VmshiftDisk *d = src->disks->pdata[i];
        if (kvm_host_exists(h, dk->path)) {
            g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_CONFLICT,
                        "host %s: %s already exists (disk %s of %s)", h->name, dk->path, d->id,
                        src->name);
            return FALSE;
        }
        if (!save_file(job, dk->path, error))
            return FALSE;
        guint64 cap = 0;
        g_autoptr(GInputStream) in = vmshift_job_open_source_disk(job, d->id, &cap, error);
        if (!in)
            return FALSE;
        gboolean ok = kvm_host_is_local(h) ? vmshift_disk_write_raw(
                          in, cap, dk->path, "qcow2", job, vmshift_job_get_cancellable(job), error)
                                           : remote_write_qcow2(h, in, cap, dk->path, job, error);
        g_input_stream_close(in, NULL, NULL);
        if (!ok) {
            g_prefix_error(error, "disk %s: ", d->id);
            return FALSE;
        }
        vmshift_job_log(job, VMSHIFT_LOG_INFO, "disk %s: %" G_GUINT64_FORMAT " bytes into %s:%s",
                        d->id, cap, h->name, dk->path);
    }
    return TRUE;
}

/* Removes what the job's import saved (v2v-files, v2v-vm-dir) on @h. */
static gboolean
remove_saved(KvmHost *h, VmshiftJob *job, GError **error)
{
    g_autofree char *files = vmshift_job_get_saved(job, "v2v-files");
    g_autofree char *vmdir = vmshift_job_get_saved(job, "v2v-vm-dir");
    g_auto(GStrv) list = g_strsplit(files ? files : "", "\n", -1);
    gboolean ok = TRUE;
    for (char **f = list; *f; f++) {
        if (!**f)
            continue;
        const char *argv[] = { "rm", "-f", "--", *f, NULL };
        GError *e = NULL;
        if (!kvm_host_run(h, argv, NULL, NULL, 60, &e)) {
            if (ok)
                g_propagate_error(error, e);
            else
                g_error_free(e);
            ok = FALSE;
        }
    }
    if (vmdir && !kvm_host_remove_tree(h, vmdir, ok ? error : NULL))
        ok = FALSE;
    return ok;
}

gboolean
kvm_qmp_import_vm(KvmBackend *b, const VmshiftMigrationSpec *spec, VmshiftJob *job, GError **error)
{
    const VmshiftVm *src = spec_source(spec, error);
    if (!src)
        return FALSE;
    KvmHost *h = kvm_backend_find_host(b, spec->dest_host, error);
    if (!h)
        return FALSE;
    g_autofree char *vmdir = kvm_host_vm_dir(h, src->name ? src->name : "");
    if (!v2v_valid_id(src->name) || kvm_host_exists(h, vmdir)) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_CONFLICT,
                    v2v_valid_id(src->name) ? "host %s already has a VM called %s"
                                            : "host %s: '%s' is not a usable VM name",
                    h->name, src->name ? src->name : "");
        return FALSE;
    }
    if (src->firmware == VMSHIFT_FIRMWARE_UEFI
        && (!kvm_host_exists(h, KVM_OVMF_CODE) || !kvm_host_exists(h, KVM_OVMF_VARS))) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_NOT_FOUND,
                    "VM %s boots with UEFI: host %s lacks OVMF (%s; install the ovmf package)",
                    src->name, h->name, KVM_OVMF_CODE);
        return FALSE;
    }
    const char *dir = target_dir(h, spec);
    if (!spec->dest_path && !kvm_host_mkdir(h, dir, error))
        return FALSE;
    if (!kvm_host_exists(h, dir)) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_NOT_FOUND, "host %s has no directory %s",
                    h->name, dir);
        return FALSE;
    }
    g_autoptr(KvmVmDef) def = import_def(h, src, dir);
    if (!vmshift_job_save(job, "v2v-host", h->name, error)
        || !vmshift_job_save(job, "v2v-backend", b->name, error))
        return FALSE;
    gboolean ok = import_disks(h, src, def, job, error)
                  && vmshift_job_save(job, "v2v-vm-dir", vmdir, error);
    if (ok && def->nvram) {
        const char *cp[] = { "cp", "--", KVM_OVMF_VARS, def->nvram, NULL };
        ok = kvm_host_mkdir(h, vmdir, error) && kvm_host_run(h, cp, NULL, NULL, 60, error);
    }
    ok = ok && kvm_vm_def_save(h, def, error);
    if (!ok) {
        remove_saved(h, job, NULL);
        vmshift_job_save(job, "v2v-files", NULL, NULL);
        vmshift_job_save(job, "v2v-vm-dir", NULL, NULL);
        return FALSE;
    }
    vmshift_job_log(job, VMSHIFT_LOG_INFO, "VM %s defined on host %s (%s)", def->name, h->name,
                    vmdir);
    return TRUE;
}

/* ---- remove_vm, start_vm ------------------------------------------------ */

/* TRUE when @job is an import into this backend (its v2v-* keys are ours) */
static gboolean
job_imports_here(KvmBackend *b, VmshiftJob *job)
{
    if (!job)
        return FALSE;
    const VmshiftMigrationSpec *spec = vmshift_job_get_spec(job);
    if (spec && VMSHIFT_HAS_FIELD(spec, dest_backend) && spec->dest_backend)
        return !strcmp(spec->dest_backend, b->name);
    g_autofree char *be = vmshift_job_get_saved(job, "v2v-backend");
    return be && !strcmp(be, b->name);
}

gboolean
kvm_qmp_remove_vm(KvmBackend *b, const char *vm, VmshiftJob *job, GError **error)
{
    if (job_imports_here(b, job)) {
        /* a partial import: only what it journaled, never a VM of the same
         * name that was there before */
        g_autofree char *host = vmshift_job_get_saved(job, "v2v-host");
        if (!host)
            return TRUE;
        KvmHost *h = kvm_backend_find_host(b, host, error);
        if (!h)
            return FALSE;
        g_autofree char *vmdir = vmshift_job_get_saved(job, "v2v-vm-dir");
        g_autofree char *name = vmdir ? g_path_get_basename(vmdir) : NULL;
        if (name && kvm_vm_is_running(h, name)) {
            g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_CONFLICT,
                        "VM %s runs on host %s: stop it before removing it", name, h->name);
            return FALSE;
        }
        if (!remove_saved(h, job, error))
            return FALSE;
        return vmshift_job_save(job, "v2v-files", NULL, error)
               && vmshift_job_save(job, "v2v-vm-dir", NULL, error);
    }
    g_autoptr(KvmVmDef) def = NULL;
    KvmHost *h = locate_stopped(b, vm, &def, "removing it", error);
    if (!h)
        return FALSE;
    for (guint i = 0; i < def->disks->len; i++) {
        KvmDiskDef *dk = def->disks->pdata[i];
        const char *argv[] = { "rm", "-f", "--", dk->path, NULL };
        if (!kvm_host_run(h, argv, NULL, NULL, 60, error))
            return FALSE;
    }
    g_autofree char *vmdir = kvm_host_vm_dir(h, def->name);
    return kvm_host_remove_tree(h, vmdir, error);
}

gboolean
kvm_qmp_start_vm(KvmBackend *b, const char *vm, VmshiftJob *job, GError **error)
{
    g_autoptr(KvmVmDef) def = NULL;
    KvmHost *h = kvm_backend_locate_vm(b, vm, &def, error);
    if (!h)
        return FALSE;
    if (!kvm_vm_start(h, def, KVM_START_NORMAL, NULL, error))
        return FALSE;
    if (job)
        vmshift_job_set_location(job, h->name, "running");
    return TRUE;
}
