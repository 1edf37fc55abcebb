/*
 * skeleton-v2v.c — the skeleton plugin's side of moves between backends
 * (`vmshift migrate VM --to OTHER:HOST`, ABI 1.4): export_vm, open_disk,
 * check_import, import_vm, remove_vm and start_vm.
 *
 * The stand-in hypervisor keeps real disk files so that a move's bytes can
 * be checked: a VM path P (say /srv/vms/web1/disk0.img) is the file
 * DATA_DIR/P, DATA_DIR being `data-dir=` (default: the state file's name
 * with ".data"). A VM to export needs a file for each of its disks (raw,
 * or `format-ID=` in its state group); tests write them. import_vm writes
 * the disks in `import-format=` (raw by default, qcow2 works too) with
 * vmshift_disk_write_raw() and defines the VM stopped.
 *
 * Fault switches for tests (`fault=KIND@WHERE` in [hypervisor], see
 * skeleton.c): WHERE import with KIND error (the import fails after its
 * first disk was written; it removes what it made) or corrupt (the import
 * succeeds but a byte of the first disk is changed: the host's verify must
 * catch it); WHERE open-disk with KIND error (open_disk fails) or corrupt
 * (the stream gives one changed byte).
 *
 * SPDX-License-Identifier: MIT
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <glib/gstdio.h>

#include "skeleton.h"

/* The local file behind the stand-in hypervisor's path @path. */
static char *
data_path(SkeletonBackend *b, const char *path)
{
    return g_build_filename(b->data_dir, path, NULL);
}

/* The VM @name read under the lock, or NULL with NOT_FOUND. */
static VmshiftVm *
load_vm(SkeletonBackend *b, const char *name, GError **error)
{
    g_autoptr(GKeyFile) kf = NULL;
    g_autofree char *group = vm_group(name);
    int fd;

    if (!(kf = state_load(b, &fd, error)))
        return NULL;
    state_unlock(fd);
    if (!g_key_file_has_group(kf, group)) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_NOT_FOUND, "skeleton[%s]: no VM named '%s'",
                    b->name, name);
        return NULL;
    }
    return vm_from_state(kf, name);
}

static gboolean
require_stopped(SkeletonBackend *b, const VmshiftVm *vm, GError **error)
{
    if (vm->power_state == VMSHIFT_POWER_STOPPED)
        return TRUE;
    g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_CONFLICT,
                "skeleton[%s]: VM '%s' is %s; stop it first", b->name, vm->name,
                vmshift_power_state_name(vm->power_state));
    return FALSE;
}

VmshiftVm *
skeleton_export_vm(VmshiftBackend *b, const char *name, guint32 flags, GError **error)
{
    g_autoptr(VmshiftVm) vm = NULL;

    if (!vmshift_check_flags(flags, 0, "export_vm", error))
        return NULL;
    if (!(vm = load_vm(b, name, error)) || !require_stopped(b, vm, error))
        return NULL;
    for (guint i = 0; i < vm->disks->len; i++) {
        VmshiftDisk *d = g_ptr_array_index(vm->disks, i);
        g_autofree char *file = data_path(b, d->path);
        guint64 cap = 0;
        if (!g_file_test(file, G_FILE_TEST_IS_REGULAR)) {
            g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_NOT_FOUND,
                        "skeleton[%s]: disk %s of VM '%s' has no data file %s", b->name, d->id,
                        vm->name, file);
            return NULL;
        }
        if (!g_strcmp0(d->format, "raw")) {
            GStatBuf st;
            if (g_stat(file, &st) != 0) {
                int e = errno;
                g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_FAILED, "skeleton[%s]: %s: %s",
                            b->name, file, g_strerror(e));
                return NULL;
            }
            cap = (guint64)st.st_size; /* a raw file is its guest-visible bytes */
        } else if (!vmshift_disk_image_info(file, NULL, &cap, error))
            return NULL;
        d->capacity = cap; /* guest-visible bytes, whatever the format */
        d->size_known = VMSHIFT_DISK_CAPACITY_KNOWN;
        if (!d->bus)
            d->bus = g_strdup("virtio");
    }
    if (!vm->guest_os)
        vm->guest_os = g_strdup("linux");
    return g_steal_pointer(&vm);
}

/* A stream of @in's bytes with the byte in the middle changed (the
 * `corrupt@open-disk` fault; read into memory: for small test disks). */
static GInputStream *
corrupt_stream(GInputStream *in, GError **error)
{
    g_autoptr(GOutputStream) mem = g_memory_output_stream_new_resizable();
    g_autoptr(GBytes) bytes = NULL;
    guint8 *data;
    gsize len;

    if (g_output_stream_splice(
            mem, in, G_OUTPUT_STREAM_SPLICE_CLOSE_SOURCE | G_OUTPUT_STREAM_SPLICE_CLOSE_TARGET,
            NULL, error)
        < 0)
        return NULL;
    bytes = g_memory_output_stream_steal_as_bytes(G_MEMORY_OUTPUT_STREAM(mem));
    data = g_bytes_unref_to_data(g_steal_pointer(&bytes), &len);
    if (len)
        data[len / 2] ^= 0x5a;
    return g_memory_input_stream_new_from_data(data, (gssize)len, g_free);
}

GInputStream *
skeleton_open_disk(VmshiftBackend *b, const char *name, const char *disk_id,
                   GCancellable *cancellable, guint32 flags, GError **error)
{
    g_autoptr(VmshiftVm) vm = NULL;
    g_autofree char *fault = NULL, *file = NULL;
    const VmshiftDisk *d;

    if (!vmshift_check_flags(flags, 0, "open_disk", error))
        return NULL;
    if (!(vm = load_vm(b, name, error)) || !require_stopped(b, vm, error))
        return NULL;
    if (!(d = vmshift_vm_find_disk(vm, disk_id))) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_NOT_FOUND,
                    "skeleton[%s]: VM '%s' has no disk '%s'", b->name, name, disk_id);
        return NULL;
    }
    file = data_path(b, d->path);
    if ((fault = hv_fault(b, "open-disk"))) {
        if (!strcmp(fault, "corrupt")) {
            g_autoptr(GInputStream)
                in = vmshift_disk_read_raw(file, d->format, NULL, cancellable, error);
            return in ? corrupt_stream(in, error) : NULL;
        }
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_FAILED,
                    "skeleton[%s]: the hypervisor refused to open disk %s of '%s' (server error)",
                    b->name, disk_id, name);
        return NULL;
    }
    return vmshift_disk_read_raw(file, d->format, NULL, cancellable, error);
}

/* The stand-in hypervisor's directory for @spec's VM (not its DATA_DIR). */
static char *
import_dir(const VmshiftMigrationSpec *spec)
{
    return g_build_filename(spec->dest_path ? spec->dest_path : "/srv/vms", spec->source_vm->name,
                            NULL);
}

GPtrArray *
skeleton_check_import(VmshiftBackend *b, const VmshiftMigrationSpec *spec, guint32 flags,
                      GError **error)
{
    g_autoptr(GKeyFile) kf = NULL;
    g_autofree char *group = NULL;
    GPtrArray *f;
    int fd;

    if (!vmshift_check_flags(flags, 0, "check_import", error))
        return NULL;
    if (!VMSHIFT_HAS_FIELD(spec, source_vm) || !spec->source_vm) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_INVALID_ARGUMENT,
                    "skeleton[%s]: check_import without a VM description", b->name);
        return NULL;
    }
    if (!(kf = state_load(b, &fd, error)))
        return NULL;
    state_unlock(fd);
    f = vmshift_list_new((GDestroyNotify)vmshift_finding_free);
    if (!host_known(b, spec->dest_host))
        g_ptr_array_add(f,
                        vmshift_finding_new(VMSHIFT_SEVERITY_ERROR, VMSHIFT_FINDING_HOST_NOT_FOUND,
                                            spec->dest_host, "skeleton[%s]: no host '%s'", b->name,
                                            spec->dest_host));
    group = vm_group(spec->source_vm->name);
    if (g_key_file_has_group(kf, group))
        g_ptr_array_add(f, vmshift_finding_new(VMSHIFT_SEVERITY_ERROR, VMSHIFT_FINDING_NAME_TAKEN,
                                               spec->source_vm->name,
                                               "skeleton[%s]: a VM named '%s' exists already",
                                               b->name, spec->source_vm->name));
    /* this stand-in takes every bus, MAC and firmware as they are */
    return f;
}

/* Writes disk @d of the source into @file (saved first, for remove_vm). */
static gboolean
import_disk(SkeletonBackend *b, const VmshiftDisk *d, const char *file, VmshiftJob *job,
            GError **error)
{
    g_autofree char *key = g_strconcat("skeleton.disk.", d->id, NULL);
    g_autoptr(GInputStream) in = NULL;
    guint64 cap = 0;

    if (!vmshift_job_save(job, key, file, error))
        return FALSE;
    if (!(in = vmshift_job_open_source_disk(job, d->id, &cap, error)))
        return FALSE;
    vmshift_job_log(job, VMSHIFT_LOG_INFO,
                    "skeleton[%s]: writing disk %s (%" G_GUINT64_FORMAT " bytes) to %s as %s",
                    b->name, d->id, cap, file, b->import_format);
    return vmshift_disk_write_raw(in, cap, file, b->import_format, job,
                                  vmshift_job_get_cancellable(job), error);
}

/* `import-seconds=`: this disk's share of the time, in cancellable steps. */
static gboolean
import_pause(SkeletonBackend *b, guint ndisks, VmshiftJob *job, GError **error)
{
    GCancellable *cancel = vmshift_job_get_cancellable(job);

    for (guint i = 0; b->import_seconds && i < 20; i++) {
        g_usleep((gulong)(b->import_seconds * G_USEC_PER_SEC / 20 / ndisks));
        if (g_cancellable_set_error_if_cancelled(cancel, error))
            return FALSE;
    }
    return TRUE;
}

/* Changes the byte in the middle of @file (the `corrupt@import` fault). */
static void
corrupt_file(const char *file)
{
    FILE *fp = fopen(file, "r+b");
    long len;
    int c;

    if (!fp)
        return;
    if (fseek(fp, 0, SEEK_END) == 0 && (len = ftell(fp)) > 0 && fseek(fp, len / 2, SEEK_SET) == 0
        && (c = fgetc(fp)) != EOF && fseek(fp, len / 2, SEEK_SET) == 0)
        fputc(c ^ 0x5a, fp);
    fclose(fp);
}

/* The VM defined from @src in the state file, stopped, on @host. */
static gboolean
define_vm(SkeletonBackend *b, const VmshiftMigrationSpec *spec, VmshiftJob *job, GError **error)
{
    const VmshiftVm *src = spec->source_vm;
    g_autoptr(GKeyFile) kf = NULL;
    g_autofree char *group = vm_group(src->name);
    g_autoptr(GPtrArray) ids = g_ptr_array_new_null_terminated(4, NULL, TRUE);
    g_autoptr(GPtrArray) nids = g_ptr_array_new_null_terminated(4, NULL, TRUE);
    gboolean ok;
    int fd;

    if (!(kf = state_load(b, &fd, error)))
        return FALSE;
    g_key_file_set_string(kf, group, "host", spec->dest_host);
    g_key_file_set_string(kf, group, "power", "stopped");
    g_key_file_set_uint64(kf, group, "memory", src->memory);
    g_key_file_set_int64(kf, group, "vcpus", src->vcpus);
    g_key_file_set_string(kf, group, "path", spec->dest_path ? spec->dest_path : "/srv/vms");
    g_key_file_set_string(kf, group, "imported-by", vmshift_job_get_id(job));
    if (src->firmware != VMSHIFT_FIRMWARE_UNKNOWN)
        g_key_file_set_string(kf, group, "firmware",
                              src->firmware == VMSHIFT_FIRMWARE_UEFI ? "uefi" : "bios");
    if (src->guest_os)
        g_key_file_set_string(kf, group, "guest-os", src->guest_os);
    for (guint i = 0; i < src->disks->len; i++) {
        const VmshiftDisk *d = g_ptr_array_index(src->disks, i);
        g_autofree char *k1 = g_strconcat("size-", d->id, NULL);
        g_autofree char *k2 = g_strconcat("format-", d->id, NULL);
        g_autofree char *k3 = g_strconcat("bus-", d->id, NULL);
        g_ptr_array_add(ids, d->id);
        g_key_file_set_uint64(kf, group, k1, d->capacity);
        g_key_file_set_string(kf, group, k2, b->import_format);
        g_key_file_set_string(kf, group, k3, d->bus ? d->bus : "virtio");
    }
    for (guint i = 0; i < src->nics->len; i++) {
        const VmshiftNic *n = g_ptr_array_index(src->nics, i);
        g_autofree char *k1 = g_strconcat("network-", n->id, NULL);
        g_autofree char *k2 = g_strconcat("mac-", n->id, NULL);
        g_ptr_array_add(nids, n->id);
        g_key_file_set_string(kf, group, k1, n->network ? n->network : "lan");
        if (n->mac)
            g_key_file_set_string(kf, group, k2, n->mac); /* the MAC is kept */
    }
    g_key_file_set_string_list(kf, group, "disks", (const char *const *)ids->pdata, ids->len);
    if (nids->len)
        g_key_file_set_string_list(kf, group, "nics", (const char *const *)nids->pdata, nids->len);
    ok = state_save(b, kf, error);
    state_unlock(fd);
    return ok;
}

/* Removes the files a job's import saved (disks, then its directory). */
static guint
remove_saved_files(VmshiftJob *job, const VmshiftMigrationSpec *spec)
{
    g_autofree char *dir = vmshift_job_get_saved(job, "skeleton.dir");
    guint n = 0;

    for (guint i = 0; spec && spec->source_vm && i < spec->source_vm->disks->len; i++) {
        const VmshiftDisk *d = g_ptr_array_index(spec->source_vm->disks, i);
        g_autofree char *key = g_strconcat("skeleton.disk.", d->id, NULL);
        g_autofree char *file = vmshift_job_get_saved(job, key);
        if (file && g_unlink(file) == 0)
            n++;
    }
    if (dir && g_rmdir(dir) == 0)
        n++;
    return n;
}

gboolean
skeleton_import_vm(VmshiftBackend *b, const VmshiftMigrationSpec *spec, VmshiftJob *job,
                   guint32 flags, GError **error)
{
    g_autofree char *vdir = NULL, *dir = NULL, *fault = NULL;
    const VmshiftVm *src;

    if (!vmshift_check_flags(flags, 0, "import_vm", error))
        return FALSE;
    if (!VMSHIFT_HAS_FIELD(spec, source_vm) || !(src = spec->source_vm)) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_INVALID_ARGUMENT,
                    "skeleton[%s]: import_vm without a VM description", b->name);
        return FALSE;
    }
    if (!host_known(b, spec->dest_host)) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_NOT_FOUND, "skeleton[%s]: no host '%s'",
                    b->name, spec->dest_host);
        return FALSE;
    }
    vdir = import_dir(spec);
    dir = data_path(b, vdir);
    if (!vmshift_job_save(job, "skeleton.dir", dir, error))
        return FALSE;
    if (g_mkdir_with_parents(dir, 0755) != 0) {
        int e = errno;
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_FAILED,
                    "skeleton[%s]: cannot create %s: %s", b->name, dir, g_strerror(e));
        return FALSE;
    }
    fault = hv_fault(b, "import");
    for (guint i = 0; i < src->disks->len; i++) {
        const VmshiftDisk *d = g_ptr_array_index(src->disks, i);
        g_autofree char *base = g_strconcat(d->id, ".img", NULL);
        g_autofree char *file = g_build_filename(dir, base, NULL);
        if (!import_disk(b, d, file, job, error) || !import_pause(b, src->disks->len, job, error))
            goto fail;
        if (i == 0 && fault && !strcmp(fault, "corrupt"))
            corrupt_file(file);
        if (i == 0 && fault && strcmp(fault, "corrupt") != 0) {
            g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_NO_SPACE,
                        "skeleton[%s]: no space left on host '%s' during import", b->name,
                        spec->dest_host);
            goto fail;
        }
    }
    if (!vmshift_job_save(job, "skeleton.vm", src->name, error) || !define_vm(b, spec, job, error))
        goto fail;
    vmshift_job_log(job, VMSHIFT_LOG_INFO, "skeleton[%s]: VM '%s' defined on '%s' (stopped)",
                    b->name, src->name, spec->dest_host);
    return TRUE;

fail:
    remove_saved_files(job, spec);
    return FALSE;
}

gboolean
skeleton_remove_vm(VmshiftBackend *b, const char *name, VmshiftJob *job, guint32 flags,
                   GError **error)
{
    g_autoptr(GKeyFile) kf = NULL;
    g_autofree char *group = vm_group(name);
    g_autofree char *by = NULL;
    g_autoptr(VmshiftVm) vm = NULL;
    guint n = 0;
    int fd;

    if (!vmshift_check_flags(flags, 0, "remove_vm", error))
        return FALSE;
    if (!(kf = state_load(b, &fd, error)))
        return FALSE;
    if (g_key_file_has_group(kf, group)) {
        vm = vm_from_state(kf, name);
        by = g_key_file_get_string(kf, group, "imported-by", NULL);
    }
    /* a rollback (with @job) removes only the VM that job's import made */
    if (vm && job && g_strcmp0(by, vmshift_job_get_id(job)) != 0)
        g_clear_pointer(&vm, vmshift_vm_free);
    if (vm && !require_stopped(b, vm, error)) {
        state_unlock(fd);
        return FALSE;
    }
    if (vm) {
        g_key_file_remove_group(kf, group, NULL);
        if (!state_save(b, kf, error)) {
            state_unlock(fd);
            return FALSE;
        }
        for (guint i = 0; i < vm->disks->len; i++) {
            const VmshiftDisk *d = g_ptr_array_index(vm->disks, i);
            g_autofree char *file = data_path(b, d->path);
            if (g_unlink(file) == 0)
                n++;
        }
        {
            g_autofree char *dir = data_path(b, vm->config_path);
            g_rmdir(dir);
        }
    }
    state_unlock(fd);
    if (job)
        n += remove_saved_files(job, vmshift_job_get_spec(job));
    if (job)
        vmshift_job_log(job, VMSHIFT_LOG_INFO, "skeleton[%s]: removed VM '%s'%s (%u file(s))",
                        b->name, name, vm ? "" : " (not defined)", n);
    return TRUE;
}

gboolean
skeleton_start_vm(VmshiftBackend *b, const char *name, VmshiftJob *job, guint32 flags,
                  GError **error)
{
    g_autoptr(GKeyFile) kf = NULL;
    g_autofree char *group = vm_group(name);
    gboolean ok;
    int fd;

    if (!vmshift_check_flags(flags, 0, "start_vm", error))
        return FALSE;
    if (!(kf = state_load(b, &fd, error)))
        return FALSE;
    if (!g_key_file_has_group(kf, group)) {
        state_unlock(fd);
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_NOT_FOUND, "skeleton[%s]: no VM named '%s'",
                    b->name, name);
        return FALSE;
    }
    g_key_file_set_string(kf, group, "power", "running");
    ok = state_save(b, kf, error);
    state_unlock(fd);
    if (ok && job)
        vmshift_job_log(job, VMSHIFT_LOG_INFO, "skeleton[%s]: VM '%s' started", b->name, name);
    return ok;
}
