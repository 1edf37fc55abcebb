/* vmshift KVM plugin: VM definition files and QEMU processes (qmp transport).
 *
 * A VM is RUN_DIR/vms/NAME/vm.conf (how to start it) plus, while it runs, a
 * QEMU process whose pid is in qemu.pid and whose QMP socket is qmp.sock;
 * the serial console goes to console.log. The definition is a key file:
 *
 *   [vm]
 *   name=demo
 *   uuid=…
 *   memory-mib=1024
 *   vcpus=1
 *   machine=pc          cpu=qemu64       accel=tcg (optional: the host's)
 *   kernel=…  initrd=…  append=…          (optional: direct kernel boot)
 *   firmware=uefi       (optional: OVMF; firmware-code=, nvram= default to
 *                        OVMF_CODE_4M.fd and VMDIR/OVMF_VARS.fd)
 *   guest-os=linux      (optional: linux, windows, other)
 *   [disk vda]
 *   path=/srv/images/demo.qcow2
 *   format=qcow2
 *   bus=virtio          (optional: virtio, ide, sata, scsi, nvme)
 *   boot-order=1        (optional: the disk's bootindex)
 *   [nic net0]
 *   mac=52:54:00:12:34:56
 *   network=lan          (a network of the host's networks.conf)
 *   model=virtio-net-pci
 */
#include "config.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "kvm.h"

static void
disk_def_free(KvmDiskDef *d)
{
    g_free(d->id);
    g_free(d->path);
    g_free(d->format);
    g_free(d->bus);
    g_free(d->acl_text);
    g_free(d->acl_label);
    g_free(d);
}

static void
nic_def_free(KvmNicDef *n)
{
    g_free(n->id);
    g_free(n->mac);
    g_free(n->network);
    g_free(n->model);
    g_free(n);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC(KvmDiskDef, disk_def_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(KvmNicDef, nic_def_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(json_object, json_object_put)

void
kvm_vm_def_free(KvmVmDef *def)
{
    if (!def)
        return;
    g_free(def->name);
    g_free(def->uuid);
    g_free(def->machine);
    g_free(def->cpu);
    g_free(def->accel);
    g_free(def->kernel);
    g_free(def->initrd);
    g_free(def->append);
    g_free(def->firmware);
    g_free(def->firmware_code);
    g_free(def->nvram);
    g_free(def->guest_os);
    g_ptr_array_unref(def->disks);
    g_ptr_array_unref(def->nics);
    g_free(def);
}

static KvmVmDef *
def_new(void)
{
    KvmVmDef *d = g_new0(KvmVmDef, 1);
    d->disks = g_ptr_array_new_with_free_func((GDestroyNotify)disk_def_free);
    d->nics = g_ptr_array_new_with_free_func((GDestroyNotify)nic_def_free);
    return d;
}

gboolean
kvm_vm_bus_supported(const char *bus)
{
    static const char *const buses[] = { "virtio", "ide", "sata", "scsi", "nvme", NULL };
    return bus && g_strv_contains(buses, bus);
}

static gboolean
valid_id(const char *s)
{
    if (!s || !*s || strlen(s) > 32)
        return FALSE;
    for (const char *p = s; *p; p++)
        if (!g_ascii_isalnum(*p) && *p != '-' && *p != '_')
            return FALSE;
    return TRUE;
}

/* [disk ID] of a vm.conf */
static KvmDiskDef *
parse_disk(GKeyFile *kf, const char *group, const char *where, GError **error)
{
    g_autoptr(KvmDiskDef) dk = g_new0(KvmDiskDef, 1);
    dk->id = g_strdup(group + 5);
    dk->path = g_key_file_get_string(kf, group, "path", NULL);
    dk->format = g_key_file_get_string(kf, group, "format", NULL);
    if (!dk->format)
        dk->format = g_strdup("qcow2");
    dk->bus = g_key_file_get_string(kf, group, "bus", NULL);
    dk->boot_order = (guint)g_key_file_get_integer(kf, group, "boot-order", NULL);
    dk->acl_text = g_key_file_get_string(kf, group, "acl", NULL);
    dk->acl_label = g_key_file_get_string(kf, group, "acl-label", NULL);
    dk->acl_uid = dk->acl_gid = -1;
    g_autofree char *owner = g_key_file_get_string(kf, group, "acl-owner", NULL);
    long long u = -1, g = -1;
    if (owner && sscanf(owner, "%lld:%lld", &u, &g) == 2) {
        dk->acl_uid = u;
        dk->acl_gid = g;
    }
    g_autofree char *mode = g_key_file_get_string(kf, group, "acl-mode", NULL);
    if (mode)
        dk->acl_mode = (guint)g_ascii_strtoull(mode, NULL, 8);
    if (!valid_id(dk->id) || !dk->path || !g_path_is_absolute(dk->path)
        || (strcmp(dk->format, "qcow2") && strcmp(dk->format, "raw"))
        || (dk->bus && !kvm_vm_bus_supported(dk->bus))) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_CONFIG,
                    "%s: [%s] needs an id of letters/digits, an absolute path=, "
                    "format=qcow2|raw and bus=virtio|ide|sata|scsi|nvme (or none)",
                    where, group);
        return NULL;
    }
    return g_steal_pointer(&dk);
}

/* [nic ID] of a vm.conf */
static KvmNicDef *
parse_nic(GKeyFile *kf, const char *group, const char *where, GError **error)
{
    g_autoptr(KvmNicDef) n = g_new0(KvmNicDef, 1);
    n->id = g_strdup(group + 4);
    n->mac = g_key_file_get_string(kf, group, "mac", NULL);
    n->network = g_key_file_get_string(kf, group, "network", NULL);
    n->model = g_key_file_get_string(kf, group, "model", NULL);
    if (!n->model)
        n->model = g_strdup("virtio-net-pci");
    if (!n->network)
        n->network = g_strdup("default");
    if (!n->mac)
        n->mac = g_strdup_printf("52:54:00:%02x:%02x:%02x", g_random_int_range(0, 256),
                                 g_random_int_range(0, 256), g_random_int_range(0, 256));
    if (!valid_id(n->id)) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_CONFIG, "%s: [%s]: bad NIC id", where,
                    group);
        return NULL;
    }
    return g_steal_pointer(&n);
}

KvmVmDef *
kvm_vm_def_parse(const char *text, const char *where, GError **error)
{
    g_autoptr(GKeyFile) kf = g_key_file_new();
    g_autoptr(GError) local = NULL;
    if (!g_key_file_load_from_data(kf, text, (gsize)-1, G_KEY_FILE_NONE, &local)) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_CONFIG, "%s: %s", where, local->message);
        return NULL;
    }
    g_autoptr(KvmVmDef) d = def_new();
    d->name = g_key_file_get_string(kf, "vm", "name", NULL);
    d->uuid = g_key_file_get_string(kf, "vm", "uuid", NULL);
    d->memory_mib = (guint64)g_key_file_get_uint64(kf, "vm", "memory-mib", NULL);
    d->vcpus = (guint32)g_key_file_get_integer(kf, "vm", "vcpus", NULL);
    d->machine = g_key_file_get_string(kf, "vm", "machine", NULL);
    d->cpu = g_key_file_get_string(kf, "vm", "cpu", NULL);
    d->accel = g_key_file_get_string(kf, "vm", "accel", NULL);
    d->kernel = g_key_file_get_string(kf, "vm", "kernel", NULL);
    d->initrd = g_key_file_get_string(kf, "vm", "initrd", NULL);
    d->append = g_key_file_get_string(kf, "vm", "append", NULL);
    d->firmware = g_key_file_get_string(kf, "vm", "firmware", NULL);
    d->firmware_code = g_key_file_get_string(kf, "vm", "firmware-code", NULL);
    d->nvram = g_key_file_get_string(kf, "vm", "nvram", NULL);
    d->guest_os = g_key_file_get_string(kf, "vm", "guest-os", NULL);
    if (d->firmware && strcmp(d->firmware, "uefi") && strcmp(d->firmware, "bios")) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_CONFIG,
                    "%s: [vm] firmware is '%s', not bios or uefi", where, d->firmware);
        return NULL;
    }
    if (!valid_id(d->name)) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_CONFIG,
                    "%s: [vm] name is missing or not made of letters, digits, '-', '_'", where);
        return NULL;
    }
    if (d->memory_mib == 0)
        d->memory_mib = 512;
    if (d->vcpus == 0)
        d->vcpus = 1;
    if (!d->uuid)
        d->uuid = g_uuid_string_random();
    if (!d->machine)
        d->machine = g_strdup("pc");
    if (!d->cpu)
        d->cpu = g_strdup("qemu64");

    g_auto(GStrv) groups = g_key_file_get_groups(kf, NULL);
    for (char **gr = groups; *gr; gr++) {
        if (g_str_has_prefix(*gr, "disk ")) {
            KvmDiskDef *dk = parse_disk(kf, *gr, where, error);
            if (!dk)
                return NULL;
            g_ptr_array_add(d->disks, dk);
        } else if (g_str_has_prefix(*gr, "nic ")) {
            KvmNicDef *n = parse_nic(kf, *gr, where, error);
            if (!n)
                return NULL;
            g_ptr_array_add(d->nics, n);
        }
    }
    return g_steal_pointer(&d);
}

char *
kvm_vm_def_to_string(const KvmVmDef *d)
{
    g_autoptr(GKeyFile) kf = g_key_file_new();
    g_key_file_set_string(kf, "vm", "name", d->name);
    g_key_file_set_string(kf, "vm", "uuid", d->uuid);
    g_key_file_set_uint64(kf, "vm", "memory-mib", d->memory_mib);
    g_key_file_set_integer(kf, "vm", "vcpus", (int)d->vcpus);
    g_key_file_set_string(kf, "vm", "machine", d->machine);
    g_key_file_set_string(kf, "vm", "cpu", d->cpu);
    if (d->accel)
        g_key_file_set_string(kf, "vm", "accel", d->accel);
    if (d->kernel)
        g_key_file_set_string(kf, "vm", "kernel", d->kernel);
    if (d->initrd)
        g_key_file_set_string(kf, "vm", "initrd", d->initrd);
    if (d->append)
        g_key_file_set_string(kf, "vm", "append", d->append);
    if (d->firmware)
        g_key_file_set_string(kf, "vm", "firmware", d->firmware);
    if (d->firmware_code)
        g_key_file_set_string(kf, "vm", "firmware-code", d->firmware_code);
    if (d->nvram)
        g_key_file_set_string(kf, "vm", "nvram", d->nvram);
    if (d->guest_os)
        g_key_file_set_string(kf, "vm", "guest-os", d->guest_os);
    for (guint i = 0; i < d->disks->len; i++) {
        KvmDiskDef *dk = d->disks->pdata[i];
        g_autofree char *g = g_strdup_printf("disk %s", dk->id);
        g_key_file_set_string(kf, g, "path", dk->path);
        g_key_file_set_string(kf, g, "format", dk->format);
        if (dk->bus)
            g_key_file_set_string(kf, g, "bus", dk->bus);
        if (dk->boot_order)
            g_key_file_set_integer(kf, g, "boot-order", (int)dk->boot_order);
        if (dk->acl_text) {
            g_autofree char *owner = g_strdup_printf("%" G_GINT64_FORMAT ":%" G_GINT64_FORMAT,
                                                     dk->acl_uid, dk->acl_gid);
            g_key_file_set_string(kf, g, "acl-owner", owner);
            g_autofree char *mode = g_strdup_printf("%04o", dk->acl_mode);
            g_key_file_set_string(kf, g, "acl-mode", mode);
            g_key_file_set_string(kf, g, "acl", dk->acl_text);
            if (dk->acl_label)
                g_key_file_set_string(kf, g, "acl-label", dk->acl_label);
        }
    }
    for (guint i = 0; i < d->nics->len; i++) {
        KvmNicDef *n = d->nics->pdata[i];
        g_autofree char *g = g_strdup_printf("nic %s", n->id);
        g_key_file_set_string(kf, g, "mac", n->mac);
        g_key_file_set_string(kf, g, "network", n->network);
        g_key_file_set_string(kf, g, "model", n->model);
    }
    return g_key_file_to_data(kf, NULL, NULL);
}

KvmVmDef *
kvm_vm_def_copy(const KvmVmDef *def)
{
    g_autofree char *s = kvm_vm_def_to_string(def);
    return kvm_vm_def_parse(s, "(copy)", NULL);
}

KvmVmDef *
kvm_vm_def_load(KvmHost *host, const char *vm, GError **error)
{
    g_autofree char *dir = kvm_host_vm_dir(host, vm);
    g_autofree char *path = g_build_filename(dir, "vm.conf", NULL);
    g_autofree char *text = NULL;
    if (!kvm_host_read_file(host, path, &text, error))
        return NULL;
    g_autofree char *where = g_strdup_printf("host %s: %s", host->name, path);
    return kvm_vm_def_parse(text, where, error);
}

gboolean
kvm_vm_def_save(KvmHost *host, const KvmVmDef *def, GError **error)
{
    g_autofree char *dir = kvm_host_vm_dir(host, def->name);
    g_autofree char *path = g_build_filename(dir, "vm.conf", NULL);
    g_autofree char *text = kvm_vm_def_to_string(def);
    return kvm_host_mkdir(host, dir, error) && kvm_host_write_file(host, path, text, error);
}

/* @o as one argument, plain; takes @o */
static char *
json_arg(json_object *o)
{
    g_autoptr(json_object) owned = o;
    return g_strdup(json_object_to_json_string_ext(owned, JSON_C_TO_STRING_PLAIN));
}

/* QEMU's option syntax doubles commas inside values. */
static char *
opt_escape(const char *s)
{
    g_autoptr(GString) g = g_string_new(NULL);
    for (const char *p = s; *p; p++) {
        if (*p == ',')
            g_string_append_c(g, ',');
        g_string_append_c(g, *p);
    }
    return g_string_free(g_steal_pointer(&g), FALSE);
}

/* -device for disk @dk on its bus (controllers added once, before the
 * first disk that needs them); FALSE when the bus is full. */
static gboolean
add_disk_device(GPtrArray *a, const KvmVmDef *def, const KvmDiskDef *dk, guint *n_ide,
                guint *n_sata, guint *n_scsi, GError **error)
{
    const char *bus = dk->bus ? dk->bus : "virtio";
    g_autofree char *boot = dk->boot_order ? g_strdup_printf(",bootindex=%u", dk->boot_order)
                                           : g_strdup("");
    char *dev = NULL;
    if (!strcmp(bus, "ide")) {
        /* the pc machine's two IDE channels, two units each */
        if (*n_ide >= 4) {
            g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_INVALID_ARGUMENT,
                        "VM %s: more than 4 IDE disks (disk %s)", def->name, dk->id);
            return FALSE;
        }
        dev = g_strdup_printf("ide-hd,bus=ide.%u,unit=%u,drive=%s,id=%s-dev%s", *n_ide / 2,
                              *n_ide % 2, dk->id, dk->id, boot);
        (*n_ide)++;
    } else if (!strcmp(bus, "sata")) {
        if (*n_sata >= 6) {
            g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_INVALID_ARGUMENT,
                        "VM %s: more than 6 SATA disks (disk %s)", def->name, dk->id);
            return FALSE;
        }
        if (*n_sata == 0) {
            g_ptr_array_add(a, g_strdup("-device"));
            g_ptr_array_add(a, g_strdup("ahci,id=sata0"));
        }
        dev = g_strdup_printf("ide-hd,bus=sata0.%u,drive=%s,id=%s-dev%s", *n_sata, dk->id, dk->id,
                              boot);
        (*n_sata)++;
    } else if (!strcmp(bus, "scsi")) {
        if ((*n_scsi)++ == 0) {
            g_ptr_array_add(a, g_strdup("-device"));
            g_ptr_array_add(a, g_strdup("virtio-scsi-pci,id=scsi0"));
        }
        dev = g_strdup_printf("scsi-hd,bus=scsi0.0,drive=%s,id=%s-dev%s", dk->id, dk->id, boot);
    } else if (!strcmp(bus, "nvme")) {
        dev = g_strdup_printf("nvme,drive=%s,serial=%s,id=%s-dev%s", dk->id, dk->id, dk->id, boot);
    } else {
        dev = g_strdup_printf("virtio-blk-pci,drive=%s,id=%s-dev%s", dk->id, dk->id, boot);
    }
    g_ptr_array_add(a, g_strdup("-device"));
    g_ptr_array_add(a, dev);
    return TRUE;
}

/* -drive if=pflash for OVMF: the code read-only, the VM's variable store */
static void
add_uefi(GPtrArray *a, const KvmVmDef *def, const char *dir)
{
    g_autofree char *code = opt_escape(def->firmware_code ? def->firmware_code : KVM_OVMF_CODE);
    g_autofree char *vars_path = def->nvram ? g_strdup(def->nvram)
                                            : g_build_filename(dir, "OVMF_VARS.fd", NULL);
    g_autofree char *vars = opt_escape(vars_path);
    g_ptr_array_add(a, g_strdup("-drive"));
    g_ptr_array_add(a, g_strdup_printf("if=pflash,format=raw,unit=0,readonly=on,file=%s", code));
    g_ptr_array_add(a, g_strdup("-drive"));
    g_ptr_array_add(a, g_strdup_printf("if=pflash,format=raw,unit=1,file=%s", vars));
}

char **
kvm_vm_build_argv(KvmHost *host, const KvmVmDef *def, KvmStartFlags flags, GError **error)
{
    g_autofree char *dir = kvm_host_vm_dir(host, def->name);
    g_autoptr(GPtrArray) a = g_ptr_array_new_with_free_func(g_free);
#define ADD(s) g_ptr_array_add(a, g_strdup(s))
#define ADDF(...) g_ptr_array_add(a, g_strdup_printf(__VA_ARGS__))
    ADD(host->qemu);
    ADD("-name");
    g_autofree char *en = opt_escape(def->name);
    ADDF("guest=%s", en);
    ADD("-uuid");
    ADD(def->uuid);
    ADD("-machine");
    ADD(def->machine);
    ADD("-accel");
    ADD(def->accel ? def->accel : host->accel);
    ADD("-cpu");
    ADD(def->cpu);
    ADD("-m");
    ADDF("%" G_GUINT64_FORMAT, def->memory_mib);
    ADD("-smp");
    ADDF("%u", def->vcpus);
    ADD("-nodefaults");
    ADD("-no-user-config");
    ADD("-display");
    ADD("none");
    g_autofree char *edir = opt_escape(dir);
    ADD("-chardev");
    ADDF("file,id=console,path=%s/console.log,append=on", edir);
    ADD("-serial");
    ADD("chardev:console");
    ADD("-chardev");
    ADDF("socket,id=qmp,path=%s/qmp.sock,server=on,wait=off", edir);
    ADD("-mon");
    ADD("chardev=qmp,mode=control");
    ADD("-pidfile");
    ADDF("%s/qemu.pid", dir);
    if (def->kernel) {
        ADD("-kernel");
        ADD(def->kernel);
    }
    if (def->initrd) {
        ADD("-initrd");
        ADD(def->initrd);
    }
    if (def->append) {
        ADD("-append");
        ADD(def->append);
    }
    if (g_strcmp0(def->firmware, "uefi") == 0)
        add_uefi(a, def, dir);
    guint n_ide = 0, n_sata = 0, n_scsi = 0;
    for (guint i = 0; i < def->disks->len; i++) {
        KvmDiskDef *dk = def->disks->pdata[i];
        json_object *f = json_object_new_object();
        json_object_object_add(f, "driver", json_object_new_string("file"));
        json_object_object_add(f, "filename", json_object_new_string(dk->path));
        g_autofree char *fn = g_strdup_printf("%s-file", dk->id);
        json_object_object_add(f, "node-name", json_object_new_string(fn));
        ADD("-blockdev");
        g_ptr_array_add(a, json_arg(f));
        json_object *fmt = json_object_new_object();
        json_object_object_add(fmt, "driver", json_object_new_string(dk->format));
        json_object_object_add(fmt, "file", json_object_new_string(fn));
        json_object_object_add(fmt, "node-name", json_object_new_string(dk->id));
        ADD("-blockdev");
        g_ptr_array_add(a, json_arg(fmt));
        if (!add_disk_device(a, def, dk, &n_ide, &n_sata, &n_scsi, error))
            return NULL;
    }
    for (guint i = 0; i < def->nics->len; i++) {
        KvmNicDef *n = def->nics->pdata[i];
        g_autofree char *nd = kvm_host_netdev(host, n->network);
        if (!nd) {
            g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_NOT_FOUND,
                        "host %s has no network '%s' (NIC %s of %s; see %s/networks.conf)",
                        host->name, n->network, n->id, def->name, host->run_dir);
            return NULL;
        }
        ADD("-netdev");
        ADDF("%s,id=%s", nd, n->id);
        ADD("-device");
        ADDF("%s,netdev=%s,mac=%s,id=%s-dev", n->model, n->id, n->mac, n->id);
    }
    if (flags & KVM_START_INCOMING) {
        ADD("-incoming");
        ADD("defer");
    }
    if (flags & KVM_START_PAUSED)
        ADD("-S");
#undef ADD
#undef ADDF
    g_ptr_array_add(a, NULL);
    return (char **)g_ptr_array_free(g_steal_pointer(&a), FALSE);
}

gint64
kvm_vm_pid(KvmHost *host, const char *vm)
{
    g_autofree char *dir = kvm_host_vm_dir(host, vm);
    g_autofree char *path = g_build_filename(dir, "qemu.pid", NULL);
    g_autofree char *text = NULL;
    gint64 pid = 0;
    if (kvm_host_exists(host, path) && kvm_host_read_file(host, path, &text, NULL))
        pid = g_ascii_strtoll(g_strstrip(text), NULL, 10);
    if (pid > 0 && !kvm_host_pid_alive(host, pid))
        pid = 0;
    return pid;
}

gboolean
kvm_vm_is_running(KvmHost *host, const char *vm)
{
    return kvm_vm_pid(host, vm) > 0;
}

/*
 * Runs @argv detached, stdout/stderr to @log so that a failure can be told,
 * and waits until it is up (the QMP socket @sock is there) or gone.
 */
static gboolean
spawn_qemu(KvmHost *host, const KvmVmDef *def, char **argv, const char *log, const char *sock,
           GError **error)
{
    g_autoptr(GPtrArray) a = g_ptr_array_new();
    g_ptr_array_add(a, (char *)"sh");
    g_ptr_array_add(a, (char *)"-c");
    g_ptr_array_add(
        a, (char *)"log=$1; shift; cd / && setsid \"$@\" </dev/null >>\"$log\" 2>&1 & echo $!");
    g_ptr_array_add(a, (char *)"sh");
    g_ptr_array_add(a, (char *)log);
    for (char **p = argv; *p; p++)
        g_ptr_array_add(a, *p);
    g_ptr_array_add(a, NULL);
    g_autofree char *out = NULL;
    if (!kvm_host_run(host, (const char *const *)a->pdata, NULL, &out, 60, error))
        return FALSE;
    gint64 child = out ? g_ascii_strtoll(out, NULL, 10) : 0;
    /* up when the QMP socket is there; failed when the process is gone */
    gint64 until = g_get_monotonic_time() + 30 * G_USEC_PER_SEC;
    for (;;) {
        if (kvm_host_exists(host, sock) && kvm_vm_pid(host, def->name) > 0)
            return TRUE;
        if (!kvm_host_pid_alive(host, child) || g_get_monotonic_time() > until) {
            g_autofree char *text = NULL;
            g_autofree char *last = NULL;
            if (kvm_host_read_file(host, log, &text, NULL)) {
                g_strchomp(text);
                char *nl = strrchr(text, '\n');
                last = g_strdup(nl ? nl + 1 : text);
            }
            g_set_error(
                error, VMSHIFT_ERROR, VMSHIFT_ERROR_FAILED, "QEMU on host %s %s: %s", host->name,
                kvm_host_pid_alive(host, child) ? "did not come up in 30 s" : "exited at once",
                last && *last ? last : "no message (see qemu.log)");
            return FALSE;
        }
        g_usleep(20000);
    }
}

gboolean
kvm_vm_start(KvmHost *host, const KvmVmDef *def, KvmStartFlags flags, gint64 *pid, GError **error)
{
    if (kvm_vm_is_running(host, def->name)) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_CONFLICT, "VM %s already runs on host %s",
                    def->name, host->name);
        return FALSE;
    }
    g_auto(GStrv) argv = kvm_vm_build_argv(host, def, flags, error);
    if (!argv)
        return FALSE;
    g_autofree char *dir = kvm_host_vm_dir(host, def->name);
    g_autofree char *sock = g_build_filename(dir, "qmp.sock", NULL);
    g_autofree char *pidf = g_build_filename(dir, "qemu.pid", NULL);
    if (kvm_host_is_local(host)) {
        unlink(sock);
        unlink(pidf);
    } else {
        const char *rm[] = { "rm", "-f", "--", sock, pidf, NULL };
        kvm_host_run(host, rm, NULL, NULL, 30, NULL);
    }
    g_autofree char *log = g_build_filename(dir, "qemu.log", NULL);
    /* the definition on disk is what runs (uuid and MACs included: multifd
     * checks the uuid on both ends) */
    if (!kvm_host_mkdir(host, dir, error) || !kvm_vm_def_save(host, def, error)
        || !spawn_qemu(host, def, argv, log, sock, error)) {
        g_prefix_error(error, "cannot start VM %s: ", def->name);
        return FALSE;
    }
    if (pid)
        *pid = kvm_vm_pid(host, def->name);
    return TRUE;
}

VmshiftQmp *
kvm_vm_qmp(KvmHost *host, const char *vm, guint timeout_ms, GCancellable *cancellable,
           GError **error)
{
    g_autofree char *dir = kvm_host_vm_dir(host, vm);
    g_autofree char *sock = g_build_filename(dir, "qmp.sock", NULL);
    return kvm_host_qmp_connect(host, sock, timeout_ms, cancellable, error);
}

/* "quit" through QMP; the connection is closed on return */
static void
qmp_quit(KvmHost *host, const char *vm)
{
    g_autoptr(VmshiftQmp) q = kvm_vm_qmp(host, vm, 3000, NULL, NULL);
    /* the connection closes as QEMU exits: an error here is expected */
    if (q)
        vmshift_qmp_execute_simple(q, "quit", NULL, 3000, NULL);
}

/* quit through QMP, then SIGTERM, then SIGKILL. */
gboolean
kvm_vm_stop(KvmHost *host, const char *vm, int timeout_s, GError **error)
{
    gint64 pid = kvm_vm_pid(host, vm);
    if (pid <= 0)
        return TRUE;
    qmp_quit(host, vm);
    gint64 until = g_get_monotonic_time() + (gint64)timeout_s * G_USEC_PER_SEC;
    gboolean termed = FALSE;
    while (kvm_host_pid_alive(host, pid)) {
        if (g_get_monotonic_time() > until) {
            if (termed) {
                kvm_host_kill(host, pid, SIGKILL);
                g_usleep(200000);
                if (kvm_host_pid_alive(host, pid)) {
                    g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_FAILED,
                                "VM %s: QEMU (pid %" G_GINT64_FORMAT ") on host %s does not "
                                "exit",
                                vm, pid, host->name);
                    return FALSE;
                }
                break;
            }
            kvm_host_kill(host, pid, SIGTERM);
            termed = TRUE;
            until = g_get_monotonic_time() + 3 * G_USEC_PER_SEC;
        }
        g_usleep(50000);
    }
    return TRUE;
}

/* Disk facts from `qemu-img info -U --backing-chain`. */
static void
fill_disk(KvmHost *host, VmshiftDisk *d)
{
    const char *argv[] = { "qemu-img",      "info",  "-U", "--backing-chain",
                           "--output=json", d->path, NULL };
    g_autofree char *out = NULL;
    if (!kvm_host_run(host, argv, NULL, &out, 30, NULL))
        return;
    g_autoptr(json_object) o = json_tokener_parse(out);
    if (!o)
        return;
    if (json_object_is_type(o, json_type_array)) {
        gsize n = json_object_array_length(o);
        for (gsize i = 0; i < n; i++) {
            json_object *e = json_object_array_get_idx(o, i);
            if (i == 0) {
                d->capacity = (guint64)vmshift_json_get_int(e, "virtual-size", 0);
                d->allocation = (guint64)vmshift_json_get_int(e, "actual-size", 0);
            } else {
                const char *fn = vmshift_json_get_string(e, "filename");
                if (fn)
                    g_ptr_array_add(d->backing_chain, g_strdup(fn));
            }
        }
    }
}

/* How long describing a running VM waits for its QMP socket and query-status
 * (over ssh the socket is reached through socat on the host). A slow answer
 * is not "unknown": a VM shown as not running is migrated cold by default,
 * and under load 3 s was too short (seen in CI on 2 shared cores). */
#define KVM_DESCRIBE_QMP_TIMEOUT_MS 10000

VmshiftVm *
kvm_vm_describe(KvmHost *host, const KvmVmDef *def)
{
    VmshiftVm *vm = vmshift_vm_new();
    vm->id = g_strdup(def->uuid);
    vm->name = g_strdup(def->name);
    vm->host = g_strdup(host->name);
    vm->vcpus = def->vcpus;
    vm->memory = def->memory_mib * 1024 * 1024;
    vm->config_path = kvm_host_vm_dir(host, def->name);
    vm->power_state = VMSHIFT_POWER_STOPPED;
    vm->firmware = g_strcmp0(def->firmware, "uefi") == 0 ? VMSHIFT_FIRMWARE_UEFI
                                                         : VMSHIFT_FIRMWARE_BIOS;
    vm->guest_os = g_strdup(def->guest_os);
    if (kvm_vm_is_running(host, def->name)) {
        vm->power_state = VMSHIFT_POWER_UNKNOWN;
        g_autoptr(VmshiftQmp)
            q = kvm_vm_qmp(host, def->name, KVM_DESCRIBE_QMP_TIMEOUT_MS, NULL, NULL);
        if (q) {
            g_autoptr(json_object) st = vmshift_qmp_execute(q, "query-status", NULL,
                                                            KVM_DESCRIBE_QMP_TIMEOUT_MS, NULL);
            const char *s = vmshift_json_get_string(st, "status");
            if (g_strcmp0(s, "running") == 0)
                vm->power_state = VMSHIFT_POWER_RUNNING;
            else if (s) {
                vm->power_state = VMSHIFT_POWER_PAUSED;
                vm->status_detail = g_strdup_printf("QEMU status: %s", s);
            }
        }
    }
    for (guint i = 0; i < def->disks->len; i++) {
        KvmDiskDef *dk = def->disks->pdata[i];
        VmshiftDisk *d = vmshift_disk_new();
        d->id = g_strdup(dk->id);
        d->path = g_strdup(dk->path);
        d->format = g_strdup(dk->format);
        d->bus = g_strdup(dk->bus ? dk->bus : "virtio");
        d->boot_order = dk->boot_order;
        if (!d->backing_chain)
            d->backing_chain = vmshift_string_list_new();
        d->volume = g_path_get_dirname(dk->path);
        fill_disk(host, d);
        g_ptr_array_add(vm->disks, d);
    }
    for (guint i = 0; i < def->nics->len; i++) {
        KvmNicDef *n = def->nics->pdata[i];
        VmshiftNic *nic = vmshift_nic_new();
        nic->id = g_strdup(n->id);
        nic->mac = g_strdup(n->mac);
        nic->network = g_strdup(n->network);
        nic->model = g_strdup(n->model);
        g_ptr_array_add(vm->nics, nic);
    }
    return vm;
}
