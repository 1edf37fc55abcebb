/*
 * hv-v2v-drive: the Hyper-V plugin's six operations for moves between
 * backends (SDK 1.4), driven the way the host drives them, with two
 * backends of one plugin: SRC (the source) and DST (the destination).
 *
 *   hv-v2v-drive PLUGIN.so CONF SRC DST OP [ARGS]
 *     export VM                   SRC export_vm: "vm", "disk", "nic" lines
 *     read VM DISK FILE           SRC open_disk into FILE; "read bytes=…"
 *     check VM HOST [PATH]        SRC export_vm, DST check_import: "finding" lines
 *     move VM HOST [PATH] [--fail-after-import]
 *                                 SRC export_vm, DST import_vm (each disk
 *                                 from SRC open_disk, SHA-256 counted), then
 *                                 DST export_vm + open_disk in the same order,
 *                                 compared; on any failure DST remove_vm with
 *                                 the job (as the host rolls back)
 *     remove VM                   DST remove_vm (no job)
 *     start VM                    DST start_vm
 *
 * CONF holds groups [backend SRC] and [backend DST]. Exit 0 on success;
 * on failure "error code=NAME message=…" and exit 1.
 */
#include "config.h"

#include <string.h>

#include <vmshift/vmshift.h>

typedef struct {
    const VmshiftBackendOps *ops;
    VmshiftBackend *src;
    VmshiftBackend *dst;
    const char *src_vm;
    GHashTable *saved;  /* key -> value, what the import saved */
    GHashTable *hashes; /* disk id -> sha256 of what the source gave */
} Drive;

static void
kv(const char *k, const char *v)
{
    g_autofree char *e = g_strescape(v != NULL ? v : "(null)", NULL);
    g_print(" %s=\"%s\"", k, e);
}

static gboolean
hook_save(VmshiftJob *job, const char *key, const char *value, gpointer ud, GError **error)
{
    Drive *d = ud;

    (void)job;
    (void)error;
    g_print("save");
    kv("key", key);
    kv("value", value);
    g_print("\n");
    g_hash_table_replace(d->saved, g_strdup(key), g_strdup(value));
    return TRUE;
}

static void
hook_log(VmshiftJob *job, VmshiftLogLevel level, const char *line, gpointer ud)
{
    (void)job;
    (void)ud;
    g_print("log level=%d", (int)level);
    kv("line", line);
    g_print("\n");
}

/* Reads all of @in, returns its SHA-256 and byte count; copies to @out if given. */
static char *
drain(GInputStream *in, GOutputStream *out, guint64 *n, GError **error)
{
    g_autoptr(GChecksum) sum = g_checksum_new(G_CHECKSUM_SHA256);
    g_autofree guint8 *buf = g_malloc(1 << 20);

    *n = 0;
    for (;;) {
        gssize r = g_input_stream_read(in, buf, 1 << 20, NULL, error);
        if (r < 0)
            return NULL;
        if (r == 0)
            break;
        g_checksum_update(sum, buf, (gsize)r);
        *n += (guint64)r;
        if (out != NULL && !g_output_stream_write_all(out, buf, (gsize)r, NULL, NULL, error))
            return NULL;
    }
    if (!g_input_stream_close(in, NULL, error))
        return NULL;
    return g_strdup(g_checksum_get_string(sum));
}

/* The host's side of vmshift_job_open_source_disk(): the source's
 * open_disk, read whole here to hash it, handed on as a memory stream. */
static GInputStream *
hook_open_source(VmshiftJob *job, const char *disk_id, guint64 *capacity, gpointer ud,
                 GError **error)
{
    Drive *d = ud;
    g_autoptr(GInputStream) in = d->ops->open_disk(d->src, d->src_vm, disk_id, NULL, 0, error);
    g_autoptr(GOutputStream) mem = g_memory_output_stream_new_resizable();
    g_autofree char *sum = NULL;
    GBytes *bytes;
    GInputStream *s;

    (void)job;
    if (in == NULL || (sum = drain(in, mem, capacity, error)) == NULL)
        return NULL;
    g_output_stream_close(mem, NULL, NULL);
    g_hash_table_replace(d->hashes, g_strdup(disk_id), g_strdup(sum));
    bytes = g_memory_output_stream_steal_as_bytes(G_MEMORY_OUTPUT_STREAM(mem));
    s = g_memory_input_stream_new_from_bytes(bytes);
    g_bytes_unref(bytes);
    return s;
}

static const VmshiftJobHooks hooks = {
    .struct_size = sizeof(VmshiftJobHooks),
    .save = hook_save,
    .log = hook_log,
    .open_source = hook_open_source,
};

static void
print_vm(const VmshiftVm *vm)
{
    g_print("vm");
    kv("name", vm->name);
    g_print(" vcpus=%u memory=%" G_GUINT64_FORMAT " firmware=%u power=%u\n", vm->vcpus, vm->memory,
            vm->firmware, vm->power_state);
    for (guint i = 0; i < vm->disks->len; i++) {
        const VmshiftDisk *k = vm->disks->pdata[i];
        g_print("disk");
        kv("id", k->id);
        kv("path", k->path);
        kv("format", k->format);
        kv("bus", k->bus);
        g_print(" capacity=%" G_GUINT64_FORMAT " known=%u boot=%u\n", k->capacity, k->size_known,
                k->boot_order);
    }
    for (guint i = 0; i < vm->nics->len; i++) {
        const VmshiftNic *n = vm->nics->pdata[i];
        g_print("nic");
        kv("id", n->id);
        kv("mac", n->mac);
        kv("network", n->network);
        kv("model", n->model);
        g_print("\n");
    }
}

static VmshiftMigrationSpec *
spec_for(Drive *d, const char *vm, const char *host, const char *path, GError **error)
{
    VmshiftMigrationSpec *spec;
    VmshiftVm *src = d->ops->export_vm(d->src, vm, 0, error);

    if (src == NULL)
        return NULL;
    spec = vmshift_migration_spec_new();
    spec->type = VMSHIFT_MIGRATION_COLD;
    spec->vm = g_strdup(vm);
    spec->dest_host = g_strdup(host);
    spec->dest_path = g_strdup(path);
    spec->dest_backend = g_strdup("dst");
    spec->source_vm = src;
    return spec;
}

/* DST export_vm + open_disk of each disk, in the source's order, against
 * what the source gave. */
static gboolean
verify(Drive *d, const VmshiftMigrationSpec *spec, GError **error)
{
    g_autoptr(VmshiftVm) now = d->ops->export_vm(d->dst, spec->vm, 0, error);

    if (now == NULL)
        return FALSE;
    print_vm(now);
    if (now->disks->len != spec->source_vm->disks->len) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_FAILED, "%u disks at the destination, %u",
                    now->disks->len, spec->source_vm->disks->len);
        return FALSE;
    }
    for (guint i = 0; i < now->disks->len; i++) {
        const VmshiftDisk *k = now->disks->pdata[i];
        const VmshiftDisk *s = spec->source_vm->disks->pdata[i];
        g_autoptr(GInputStream) in = d->ops->open_disk(d->dst, spec->vm, k->id, NULL, 0, error);
        g_autofree char *sum = NULL;
        guint64 n = 0;
        if (in == NULL || (sum = drain(in, NULL, &n, error)) == NULL)
            return FALSE;
        g_print("verify");
        kv("disk", k->id);
        kv("sha256", sum);
        g_print(" bytes=%" G_GUINT64_FORMAT "\n", n);
        if (g_strcmp0(sum, g_hash_table_lookup(d->hashes, s->id)) != 0) {
            g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_FAILED,
                        "disk %s differs from source disk %s", k->id, s->id);
            return FALSE;
        }
    }
    return TRUE;
}

static gboolean
move(Drive *d, int argc, char **argv, GError **error)
{
    gboolean fail_after = argc > 3 && strcmp(argv[argc - 1], "--fail-after-import") == 0;
    g_autoptr(VmshiftMigrationSpec) spec = NULL;
    VmshiftJob *job;
    gboolean ok;

    if (fail_after)
        argc--;
    spec = spec_for(d, argv[0], argv[1], argc > 2 ? argv[2] : NULL, error);
    if (spec == NULL)
        return FALSE;
    d->src_vm = argv[0];
    job = vmshift_job_new("1", spec, &hooks, d);
    ok = d->ops->import_vm(d->dst, spec, job, 0, error);
    g_print("import ok=%d\n", ok);
    if (ok && fail_after) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_FAILED, "failing after the import");
        ok = FALSE;
    } else if (ok) {
        ok = verify(d, spec, error);
    }
    if (!ok) {
        g_autoptr(GError) e = NULL;
        if (!d->ops->remove_vm(d->dst, spec->vm, job, 0, &e))
            g_print("rollback-error message=\"%s\"\n", e->message);
        else
            g_print("rollback ok=1\n");
    }
    vmshift_job_unref(job);
    return ok;
}

static gboolean
run(Drive *d, const char *op, int argc, char **argv, GError **error)
{
    if (strcmp(op, "export") == 0 && argc == 1) {
        g_autoptr(VmshiftVm) vm = d->ops->export_vm(d->src, argv[0], 0, error);
        if (vm != NULL)
            print_vm(vm);
        return vm != NULL;
    }
    if (strcmp(op, "read") == 0 && argc == 3) {
        g_autoptr(GInputStream) in = d->ops->open_disk(d->src, argv[0], argv[1], NULL, 0, error);
        g_autoptr(GFile) f = g_file_new_for_path(argv[2]);
        g_autoptr(GFileOutputStream) out = NULL;
        g_autofree char *sum = NULL;
        guint64 n = 0;
        if (in == NULL
            || (out = g_file_replace(f, NULL, FALSE, G_FILE_CREATE_NONE, NULL, error)) == NULL
            || (sum = drain(in, G_OUTPUT_STREAM(out), &n, error)) == NULL)
            return FALSE;
        g_print("read bytes=%" G_GUINT64_FORMAT " sha256=%s\n", n, sum);
        return g_output_stream_close(G_OUTPUT_STREAM(out), NULL, error);
    }
    if (strcmp(op, "check") == 0 && (argc == 2 || argc == 3)) {
        g_autoptr(VmshiftMigrationSpec)
            spec = spec_for(d, argv[0], argv[1], argc > 2 ? argv[2] : NULL, error);
        g_autoptr(GPtrArray) f = spec ? d->ops->check_import(d->dst, spec, 0, error) : NULL;
        for (guint i = 0; f != NULL && i < f->len; i++) {
            const VmshiftFinding *x = f->pdata[i];
            g_print("finding severity=%u", x->severity);
            kv("code", x->code);
            kv("subject", x->subject);
            kv("message", x->message);
            g_print("\n");
        }
        return f != NULL;
    }
    if (strcmp(op, "move") == 0 && argc >= 2)
        return move(d, argc, argv, error);
    if (strcmp(op, "remove") == 0 && argc == 1)
        return d->ops->remove_vm(d->dst, argv[0], NULL, 0, error);
    if (strcmp(op, "start") == 0 && argc == 1) {
        VmshiftJob *job = vmshift_job_new("2", NULL, &hooks, d);
        gboolean ok = d->ops->start_vm(d->dst, argv[0], job, 0, error);
        vmshift_job_unref(job);
        return ok;
    }
    g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_INVALID_ARGUMENT, "unknown op or arguments");
    return FALSE;
}

static VmshiftBackend *
open_backend(const VmshiftBackendOps *ops, GKeyFile *kf, const char *conf, const char *name,
             GError **error)
{
    g_autofree char *group = g_strdup_printf("backend %s", name);
    g_autoptr(VmshiftConfig) c = vmshift_config_new(name, kf, group, conf, g_get_tmp_dir());
    return ops->open(c, 0, error);
}

int
main(int argc, char **argv)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(GKeyFile) kf = g_key_file_new();
    VmshiftPluginEntryFunc entry = NULL;
    Drive d = { 0 };
    GModule *mod;
    gboolean ok;

    if (argc < 6) {
        g_printerr("usage: hv-v2v-drive PLUGIN.so CONF SRC DST OP [ARGS]\n");
        return 2;
    }
    mod = g_module_open(argv[1], G_MODULE_BIND_LOCAL);
    if (mod == NULL || !g_module_symbol(mod, VMSHIFT_PLUGIN_ENTRY_SYMBOL, (gpointer *)&entry)) {
        g_printerr("cannot load %s: %s\n", argv[1], g_module_error());
        return 2;
    }
    d.ops = entry()->ops;
    if (!g_key_file_load_from_file(kf, argv[2], G_KEY_FILE_NONE, &error)) {
        g_printerr("%s\n", error->message);
        return 2;
    }
    d.saved = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    d.hashes = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    d.src = open_backend(d.ops, kf, argv[2], argv[3], &error);
    d.dst = d.src != NULL ? open_backend(d.ops, kf, argv[2], argv[4], &error) : NULL;
    ok = d.dst != NULL && run(&d, argv[5], argc - 6, argv + 6, &error);
    if (d.src != NULL)
        d.ops->close(d.src);
    if (d.dst != NULL)
        d.ops->close(d.dst);
    g_hash_table_unref(d.saved);
    g_hash_table_unref(d.hashes);
    if (!ok) {
        g_autofree char *e = g_strescape(error->message, NULL);
        g_print("error code=%s message=\"%s\"\n",
                error->domain == VMSHIFT_ERROR ? vmshift_error_code_name(error->code) : "other", e);
        return 1;
    }
    return 0;
}
