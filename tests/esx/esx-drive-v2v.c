/*
 * esx-drive's operations of moves between backends (ABI 1.4), for
 * tests/v2v/esx.sh until and besides `vmshift migrate --to`:
 *
 *   v2v-export VM                      "vm …", "disk …", "nic …" lines
 *   v2v-read VM DISK OUT               open_disk → file OUT
 *   v2v-check|v2v-import NAME HOST [--path DS] [--firmware bios|efi|unknown]
 *       [--guest FAMILY] [--cpus N] [--memory-mb N]
 *       --disk FILE,BUS,BOOT[,CAPACITY]... --nic ID,MAC,NETWORK,MODEL...
 *       (the source disk is the raw FILE; CAPACITY larger than FILE makes a
 *       source that ends early)
 *   v2v-remove VM [KEY=VALUE...]       remove_vm, with a job holding the
 *                                      saved data KEY=VALUE of an import
 *   v2v-start VM
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <vmshift/vmshift.h>

#include "tests/lib/drive.h"
#include "esx-drive-v2v.h"

static GHashTable *disk_files; /* disk id → raw file */

static GInputStream *
open_source(VmshiftJob *job, const char *disk_id, guint64 *capacity, gpointer user_data,
            GError **error)
{
    (void)user_data;
    const VmshiftMigrationSpec *s = vmshift_job_get_spec(job);
    const char *file = g_hash_table_lookup(disk_files, disk_id);
    for (guint i = 0; file != NULL && i < s->source_vm->disks->len; i++) {
        VmshiftDisk *d = s->source_vm->disks->pdata[i];
        if (strcmp(d->id, disk_id) == 0) {
            GInputStream *in = vmshift_disk_read_raw(file, "raw", NULL, NULL, error);
            *capacity = d->capacity; /* what the source says */
            return in;
        }
    }
    g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_NOT_FOUND, "no source disk %s", disk_id);
    return NULL;
}

static gboolean
save_hook(VmshiftJob *job, const char *key, const char *value, gpointer user_data, GError **error)
{
    (void)job;
    (void)user_data;
    (void)error;
    g_print("save key=%s value=\"%s\"\n", key, value);
    return TRUE;
}

static void
log_hook(VmshiftJob *job, VmshiftLogLevel level, const char *line, gpointer user_data)
{
    (void)job;
    (void)level;
    (void)user_data;
    g_print("log %s\n", line);
}

static const VmshiftJobHooks hooks = {
    .struct_size = sizeof(VmshiftJobHooks),
    .log = log_hook,
    .save = save_hook,
    .open_source = open_source,
};

static VmshiftMigrationSpec *
parse_import(int argc, char **argv, GError **error)
{
    if (argc < 2) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_INVALID_ARGUMENT,
                    "usage: v2v-import NAME HOST [options]");
        return NULL;
    }
    g_autoptr(VmshiftMigrationSpec) s = vmshift_migration_spec_new();
    VmshiftVm *vm = vmshift_vm_new();
    s->source_vm = vm;
    s->type = VMSHIFT_MIGRATION_COLD;
    s->vm = g_strdup(argv[0]);
    s->dest_host = g_strdup(argv[1]);
    s->dest_backend = g_strdup("esx");
    vm->name = g_strdup(argv[0]);
    vm->vcpus = 2;
    vm->memory = 512u << 20;
    vm->firmware = VMSHIFT_FIRMWARE_BIOS;
    vm->guest_os = g_strdup("linux");
    if (disk_files == NULL)
        disk_files = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    for (int i = 2; i + 1 < argc; i += 2) {
        const char *o = argv[i], *v = argv[i + 1];
        if (strcmp(o, "--path") == 0) {
            s->dest_path = g_strdup(v);
        } else if (strcmp(o, "--firmware") == 0) {
            vm->firmware = strcmp(v, "efi") == 0    ? VMSHIFT_FIRMWARE_UEFI
                           : strcmp(v, "bios") == 0 ? VMSHIFT_FIRMWARE_BIOS
                                                    : VMSHIFT_FIRMWARE_UNKNOWN;
        } else if (strcmp(o, "--guest") == 0) {
            g_free(vm->guest_os);
            vm->guest_os = g_strdup(v);
        } else if (strcmp(o, "--cpus") == 0) {
            vm->vcpus = (guint32)atoi(v);
        } else if (strcmp(o, "--memory-mb") == 0) {
            vm->memory = g_ascii_strtoull(v, NULL, 10) << 20;
        } else if (strcmp(o, "--disk") == 0) {
            g_auto(GStrv) f = g_strsplit(v, ",", 4);
            if (g_strv_length(f) < 3)
                goto bad;
            VmshiftDisk *d = vmshift_disk_new();
            d->id = g_strdup_printf("disk%u", vm->disks->len);
            d->path = g_strdup(f[0]);
            d->format = g_strdup("raw");
            d->bus = g_strdup(f[1]);
            d->boot_order = (guint32)atoi(f[2]);
            guint64 cap = 0;
            if (f[3] != NULL)
                cap = g_ascii_strtoull(f[3], NULL, 10);
            else if (!vmshift_disk_image_info(f[0], NULL, &cap, error))
                return NULL;
            d->capacity = cap;
            d->size_known = VMSHIFT_DISK_CAPACITY_KNOWN;
            g_hash_table_replace(disk_files, g_strdup(d->id), g_strdup(f[0]));
            g_ptr_array_add(vm->disks, d);
        } else if (strcmp(o, "--nic") == 0) {
            g_auto(GStrv) f = g_strsplit(v, ",", 4);
            if (g_strv_length(f) != 4)
                goto bad;
            VmshiftNic *n = vmshift_nic_new();
            n->id = g_strdup(f[0]);
            n->mac = g_strdup(f[1]);
            n->network = g_strdup(f[2]);
            n->model = g_strdup(f[3]);
            g_ptr_array_add(vm->nics, n);
        } else {
            goto bad;
        }
        continue;
bad:
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_INVALID_ARGUMENT, "bad option %s %s", o, v);
        return NULL;
    }
    return g_steal_pointer(&s);
}

static void
print_export(const VmshiftVm *vm)
{
    g_print("vm");
    drive_kv("name", vm->name);
    drive_kvu("firmware", vm->firmware);
    drive_kv("guest", vm->guest_os);
    drive_kvu("cpus", vm->vcpus);
    drive_kvu("memory", vm->memory);
    g_print("\n");
    for (guint i = 0; i < vm->disks->len; i++) {
        const VmshiftDisk *d = vm->disks->pdata[i];
        g_print("disk");
        drive_kv("id", d->id);
        drive_kv("path", d->path);
        drive_kv("bus", d->bus);
        drive_kvu("capacity", d->capacity);
        drive_kvu("boot", d->boot_order);
        g_print("\n");
    }
    for (guint i = 0; i < vm->nics->len; i++) {
        const VmshiftNic *n = vm->nics->pdata[i];
        g_print("nic");
        drive_kv("id", n->id);
        drive_kv("mac", n->mac);
        drive_kv("network", n->network);
        drive_kv("model", n->model);
        g_print("\n");
    }
}

static gboolean
read_disk(const VmshiftBackendOps *ops, VmshiftBackend *b, char **argv, GError **error)
{
    g_autoptr(GInputStream) in = ops->open_disk(b, argv[0], argv[1], NULL, 0, error);
    if (in == NULL)
        return FALSE;
    g_autoptr(GFile) f = g_file_new_for_path(argv[2]);
    g_autoptr(GFileOutputStream)
        out = g_file_replace(f, NULL, FALSE, G_FILE_CREATE_NONE, NULL, error);
    if (out == NULL)
        return FALSE;
    gssize n = g_output_stream_splice(
        G_OUTPUT_STREAM(out), in,
        G_OUTPUT_STREAM_SPLICE_CLOSE_SOURCE | G_OUTPUT_STREAM_SPLICE_CLOSE_TARGET, NULL, error);
    if (n < 0)
        return FALSE;
    g_print("read bytes=%" G_GSSIZE_FORMAT "\n", n);
    return TRUE;
}

gboolean
esx_drive_v2v(const VmshiftBackendOps *ops, VmshiftBackend *b, const char *op, int argc,
              char **argv, GError **error)
{
    if (strcmp(op, "v2v-export") == 0 && argc == 1) {
        g_autoptr(VmshiftVm) vm = ops->export_vm(b, argv[0], 0, error);
        if (vm != NULL)
            print_export(vm);
        return vm != NULL;
    }
    if (strcmp(op, "v2v-read") == 0 && argc == 3)
        return read_disk(ops, b, argv, error);
    if (strcmp(op, "v2v-check") == 0 || strcmp(op, "v2v-import") == 0) {
        g_autoptr(VmshiftMigrationSpec) s = parse_import(argc, argv, error);
        if (s == NULL)
            return FALSE;
        if (strcmp(op, "v2v-check") == 0) {
            g_autoptr(GPtrArray) f = ops->check_import(b, s, 0, error);
            for (guint i = 0; f != NULL && i < f->len; i++) {
                VmshiftFinding *x = f->pdata[i];
                g_print("finding severity=%s code=%s", vmshift_severity_name(x->severity), x->code);
                drive_kv("subject", x->subject);
                drive_kv("message", x->message);
                g_print("\n");
            }
            return f != NULL;
        }
        g_autoptr(VmshiftJob) job = vmshift_job_new("v2v-job", s, &hooks, NULL);
        gboolean ok = ops->import_vm(b, s, job, 0, error);
        g_print("job ok=%d\n", ok);
        return ok;
    }
    if (strcmp(op, "v2v-remove") == 0 && argc >= 1) {
        g_autoptr(VmshiftJob) job = vmshift_job_new("v2v-job", NULL, &hooks, NULL);
        g_autoptr(GHashTable)
            saved = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
        for (int i = 1; i < argc; i++) {
            const char *eq = strchr(argv[i], '=');
            if (eq != NULL)
                g_hash_table_insert(saved, g_strndup(argv[i], eq - argv[i]), g_strdup(eq + 1));
        }
        vmshift_job_restore(job, VMSHIFT_PHASE_TRANSFER, saved);
        return ops->remove_vm(b, argv[0], argc > 1 ? job : NULL, 0, error);
    }
    if (strcmp(op, "v2v-start") == 0 && argc == 1)
        return ops->start_vm(b, argv[0], NULL, 0, error);
    g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_INVALID_ARGUMENT, "bad %s arguments", op);
    return FALSE;
}
