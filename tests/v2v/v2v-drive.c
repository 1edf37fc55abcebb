/* v2v-drive: a move between two backends through the plugins' SDK 1.4
 * operations, in the order the host runs them (V2V.md: export_vm at the
 * source, check_import and import_vm at the destination with the source's
 * open_disk behind vmshift_job_open_source_disk, verify by reading every
 * disk back at the destination, remove_vm on failure, start_vm). For the
 * plugins' own tests before and besides `vmshift migrate --to`.
 *
 *   v2v-drive --config FILE [--path DIR] [--network NIC=NET]... [--start]
 *             [--check-only] [--force] [--skip-check] [--fail-disk ID]
 *             SRC-BACKEND VM DST-BACKEND HOST
 *
 * Each [backend NAME] of FILE names its plugin=; the plugin is loaded from
 * $VMSHIFT_BUILDDIR/plugins/PLUGIN/.libs/PLUGIN.so. Output: the exported VM,
 * "finding SEVERITY CODE SUBJECT: MESSAGE" lines, "disk ID sha256=…" and
 * "ok=1". --fail-disk makes the source's stream of that disk fail after
 * its first MiB (a failed import). Exit 0 ok, 1 failure, 2 usage.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include <gmodule.h>
#include <vmshift/vmshift.h>

typedef struct {
    const VmshiftBackendOps *ops;
    VmshiftBackend *be;
    VmshiftConfig *cfg;
} Side;

typedef struct {
    Side src, dst;
    const char *vm;
    const char *fail_disk;
    gboolean skip_check;
    VmshiftVm *exported;
} Drive;

static gboolean
side_open(Side *s, GKeyFile *kf, const char *config, const char *name, GError **error)
{
    g_autofree char *group = g_strdup_printf("backend %s", name);
    g_autofree char *plugin = g_key_file_get_string(kf, group, "plugin", error);
    if (!plugin)
        return FALSE;
    const char *dir = g_getenv("VMSHIFT_BUILDDIR");
    g_autofree char *so = g_strdup_printf("%s/plugins/%s/.libs/%s.so", dir ? dir : ".", plugin,
                                          plugin);
    GModule *mod = g_module_open(so, G_MODULE_BIND_LOCAL);
    VmshiftPluginEntryFunc entry = NULL;
    if (!mod || !g_module_symbol(mod, VMSHIFT_PLUGIN_ENTRY_SYMBOL, (gpointer *)&entry)) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_FAILED, "cannot load %s: %s", so,
                    g_module_error());
        return FALSE;
    }
    s->ops = entry()->ops;
    g_autofree char *state = g_build_filename(g_get_tmp_dir(), "v2v-drive-state", NULL);
    g_mkdir_with_parents(state, 0700);
    s->cfg = vmshift_config_new(name, kf, group, config, state);
    s->be = s->ops->open(s->cfg, 0, error);
    return s->be != NULL;
}

/* reads @in to its end: its SHA-256 and length */
static char *
hash_stream(GInputStream *in, guint64 *len, GError **error)
{
    g_autoptr(GChecksum) ck = g_checksum_new(G_CHECKSUM_SHA256);
    g_autofree guchar *buf = g_malloc(1 << 20);
    *len = 0;
    for (;;) {
        gssize n = g_input_stream_read(in, buf, 1 << 20, NULL, error);
        if (n < 0)
            return NULL;
        if (n == 0)
            break;
        g_checksum_update(ck, buf, (gsize)n);
        *len += (guint64)n;
    }
    return g_strdup(g_checksum_get_string(ck));
}

static VmshiftDisk *
exported_disk(Drive *d, const char *id)
{
    for (guint i = 0; i < d->exported->disks->len; i++) {
        VmshiftDisk *k = d->exported->disks->pdata[i];
        if (!strcmp(k->id, id))
            return k;
    }
    return NULL;
}

static GInputStream *
hook_open_source(VmshiftJob *job, const char *disk_id, guint64 *capacity, gpointer user_data,
                 GError **error)
{
    (void)job;
    Drive *d = user_data;
    VmshiftDisk *k = exported_disk(d, disk_id);
    if (!k) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_NOT_FOUND, "no source disk %s", disk_id);
        return NULL;
    }
    GInputStream *in = d->src.ops->open_disk(d->src.be, d->vm, disk_id, NULL, 0, error);
    if (!in)
        return NULL;
    *capacity = k->capacity;
    if (d->fail_disk && !strcmp(d->fail_disk, disk_id)) {
        /* the first MiB, then an error: a truncated source */
        g_autofree guchar *buf = g_malloc(1 << 20);
        gsize got = 0;
        g_input_stream_read_all(in, buf, 1 << 20, &got, NULL, NULL);
        g_object_unref(in);
        GBytes *b = g_bytes_new(buf, got);
        GInputStream *m = g_memory_input_stream_new_from_bytes(b);
        g_bytes_unref(b);
        return m; /* shorter than capacity: the import must fail */
    }
    return in;
}

static void
hook_log(VmshiftJob *job, VmshiftLogLevel level, const char *line, gpointer user_data)
{
    (void)job;
    (void)level;
    (void)user_data;
    g_printerr("LOG %s\n", line);
}

static gboolean
hook_save(VmshiftJob *job, const char *key, const char *value, gpointer user_data, GError **error)
{
    (void)job;
    (void)user_data;
    (void)error;
    printf("saved %s=%s\n", key, value ? value : "(removed)");
    return TRUE;
}

static const VmshiftJobHooks hooks = {
    .struct_size = sizeof(VmshiftJobHooks),
    .log = hook_log,
    .save = hook_save,
    .open_source = hook_open_source,
};

static void
print_vm(const VmshiftVm *vm)
{
    printf("vm %s vcpus=%u memory-mib=%" G_GUINT64_FORMAT " firmware=%u guest-os=%s\n", vm->name,
           vm->vcpus, vm->memory >> 20, vm->firmware, vm->guest_os ? vm->guest_os : "");
    for (guint i = 0; i < vm->disks->len; i++) {
        VmshiftDisk *k = vm->disks->pdata[i];
        printf("disk %s capacity=%" G_GUINT64_FORMAT " format=%s bus=%s boot=%u\n", k->id,
               k->capacity, k->format, k->bus ? k->bus : "", k->boot_order);
    }
    for (guint i = 0; i < vm->nics->len; i++) {
        VmshiftNic *n = vm->nics->pdata[i];
        printf("nic %s mac=%s network=%s model=%s\n", n->id, n->mac ? n->mac : "",
               n->network ? n->network : "", n->model ? n->model : "");
    }
}

/* verify: every destination disk, in order, against the source's */
static gboolean
verify(Drive *d, GError **error)
{
    g_autoptr(VmshiftVm) got = d->dst.ops->export_vm(d->dst.be, d->vm, 0, error);
    if (!got)
        return FALSE;
    if (got->disks->len != d->exported->disks->len) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_FAILED,
                    "%u disks at the destination, %u "
                    "at the source",
                    got->disks->len, d->exported->disks->len);
        return FALSE;
    }
    for (guint i = 0; i < got->disks->len; i++) {
        VmshiftDisk *sk = d->exported->disks->pdata[i], *dk = got->disks->pdata[i];
        g_autoptr(GInputStream) a = d->src.ops->open_disk(d->src.be, d->vm, sk->id, NULL, 0, error);
        guint64 la = 0, lb = 0;
        g_autofree char *ha = a ? hash_stream(a, &la, error) : NULL;
        if (!ha)
            return FALSE;
        g_autoptr(GInputStream) b = d->dst.ops->open_disk(d->dst.be, d->vm, dk->id, NULL, 0, error);
        g_autofree char *hb = b ? hash_stream(b, &lb, error) : NULL;
        if (!hb)
            return FALSE;
        printf("disk %s sha256=%s bytes=%" G_GUINT64_FORMAT "\n", dk->id, hb, lb);
        if (strcmp(ha, hb) || la != lb) {
            g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_FAILED,
                        "disk %s differs: source %s (%" G_GUINT64_FORMAT " bytes), destination "
                        "%s (%" G_GUINT64_FORMAT " bytes)",
                        dk->id, ha, la, hb, lb);
            return FALSE;
        }
    }
    return TRUE;
}

static int
fail(GError *e)
{
    printf("error=%s\n", e->domain == VMSHIFT_ERROR ? vmshift_error_code_name(e->code) : "other");
    g_printerr("error: %s\n", e->message);
    g_error_free(e);
    return 1;
}

static int
run(Drive *d, VmshiftMigrationSpec *spec, gboolean check_only, gboolean force, gboolean start)
{
    GError *error = NULL;
    d->exported = d->src.ops->export_vm(d->src.be, d->vm, 0, &error);
    if (!d->exported)
        return fail(error);
    print_vm(d->exported);
    spec->source_vm = d->exported; /* the spec owns it */
    for (guint i = 0; i < spec->networks->len; i++) {
        VmshiftMapping *m = spec->networks->pdata[i];
        for (guint k = 0; k < d->exported->nics->len; k++) {
            VmshiftNic *n = d->exported->nics->pdata[k];
            if (!strcmp(n->id, m->key)) {
                g_free(n->network);
                n->network = g_strdup(m->value);
            }
        }
    }
    g_autoptr(GPtrArray) f = d->dst.ops->check_import(d->dst.be, spec, 0, &error);
    if (!f)
        return fail(error);
    gboolean blocked = FALSE;
    for (guint i = 0; i < f->len; i++) {
        VmshiftFinding *x = f->pdata[i];
        printf("finding %s %s %s: %s\n", vmshift_severity_name(x->severity), x->code,
               x->subject ? x->subject : "", x->message);
        blocked = blocked || x->severity == VMSHIFT_SEVERITY_ERROR
                  || (x->severity == VMSHIFT_SEVERITY_WARNING && !force);
    }
    if (check_only)
        return 0;
    if (blocked && !d->skip_check) {
        printf("error=refused\n");
        return 1;
    }
    g_autoptr(VmshiftJob) job = vmshift_job_new("v2v-drive", spec, &hooks, d);
    if (!d->dst.ops->import_vm(d->dst.be, spec, job, 0, &error) || !verify(d, &error)) {
        GError *re = NULL;
        if (!d->dst.ops->remove_vm(d->dst.be, d->vm, job, 0, &re)) {
            g_printerr("remove_vm: %s\n", re->message);
            g_error_free(re);
        }
        return fail(error);
    }
    if (start && !d->dst.ops->start_vm(d->dst.be, d->vm, job, 0, &error))
        return fail(error);
    printf("ok=1\n");
    return 0;
}

int
main(int argc, char **argv)
{
    g_autofree char *config = NULL, *path = NULL, *fail_disk = NULL;
    g_auto(GStrv) networks = NULL;
    gboolean start = FALSE, check_only = FALSE, force = FALSE, skip_check = FALSE;
    GOptionEntry entries[] = {
        { "config", 0, 0, G_OPTION_ARG_FILENAME, &config, "backends file", "FILE" },
        { "path", 0, 0, G_OPTION_ARG_FILENAME, &path, "destination directory", "DIR" },
        { "network", 0, 0, G_OPTION_ARG_STRING_ARRAY, &networks, "NIC mapping", "NIC=NET" },
        { "start", 0, 0, G_OPTION_ARG_NONE, &start, "start at the destination", NULL },
        { "check-only", 0, 0, G_OPTION_ARG_NONE, &check_only, "only check_import", NULL },
        { "force", 0, 0, G_OPTION_ARG_NONE, &force, "accept warnings", NULL },
        { "skip-check", 0, 0, G_OPTION_ARG_NONE, &skip_check, "import despite findings", NULL },
        { "fail-disk", 0, 0, G_OPTION_ARG_STRING, &fail_disk, "truncate this source disk", "ID" },
        { NULL, 0, 0, 0, NULL, NULL, NULL },
    };
    GError *error = NULL;
    GOptionContext *ctx = g_option_context_new("SRC-BACKEND VM DST-BACKEND HOST");
    g_option_context_add_main_entries(ctx, entries, NULL);
    gboolean parsed = g_option_context_parse(ctx, &argc, &argv, &error);
    g_option_context_free(ctx);
    if (!parsed || argc != 5 || !config) {
        g_printerr("usage: v2v-drive --config FILE SRC-BACKEND VM DST-BACKEND HOST%s%s\n",
                   error ? ": " : "", error ? error->message : "");
        g_clear_error(&error);
        return 2;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    g_autoptr(GKeyFile) kf = g_key_file_new();
    Drive d = { .vm = argv[2], .fail_disk = fail_disk, .skip_check = skip_check };
    if (!g_key_file_load_from_file(kf, config, G_KEY_FILE_NONE, &error)
        || !side_open(&d.src, kf, config, argv[1], &error)
        || !side_open(&d.dst, kf, config, argv[3], &error))
        return fail(error);
    VmshiftMigrationSpec *spec = vmshift_migration_spec_new();
    spec->type = VMSHIFT_MIGRATION_COLD;
    spec->vm = g_strdup(argv[2]);
    spec->dest_backend = g_strdup(argv[3]);
    spec->dest_host = g_strdup(argv[4]);
    spec->dest_path = g_strdup(path);
    spec->start = start;
    spec->force = force;
    for (char **p = networks; p && *p; p++) {
        char *eq = strchr(*p, '=');
        if (eq) {
            *eq = '\0';
            g_ptr_array_add(spec->networks, vmshift_mapping_new(*p, eq + 1));
        }
    }
    int rc = run(&d, spec, check_only, force, start);
    vmshift_migration_spec_free(spec);
    d.src.ops->close(d.src.be);
    d.dst.ops->close(d.dst.be);
    vmshift_config_free(d.src.cfg);
    vmshift_config_free(d.dst.cfg);
    return rc;
}
