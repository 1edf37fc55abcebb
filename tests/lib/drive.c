/*
 * drive: the part of the SDK test drivers that does not depend on the
 * backend (see drive.h).
 */
#include "config.h"

#include "drive.h"

#include <stdio.h>
#include <string.h>

#include <gmodule.h>

/* The driver's backend; set by drive_main(). */
static const DriveBackend *backend;
/* --cancel-at: cancel the job once it reports this percentage (< 0: never) */
static double cancel_at = -1;

void
drive_kv(const char *k, const char *v)
{
    g_autofree char *e = g_strescape(v != NULL ? v : "(null)", NULL);
    g_print(" %s=\"%s\"", k, e);
}

void
drive_kvu(const char *k, guint64 v)
{
    g_print(" %s=%" G_GUINT64_FORMAT, k, v);
}

void
drive_kv_list(const char *k, GPtrArray *a)
{
    g_autoptr(GString) s = g_string_new(NULL);
    for (guint i = 0; a != NULL && i < a->len; i++)
        g_string_append_printf(s, "%s%s", i ? "," : "", (char *)a->pdata[i]);
    drive_kv(k, s->str);
}

void
drive_print_vm(const VmshiftVm *vm)
{
    g_print("vm");
    drive_kv("id", vm->id);
    drive_kv("name", vm->name);
    drive_kv("host", vm->host);
    if (backend->vm_fields != NULL)
        backend->vm_fields(vm);
    g_print("\n");
    for (guint i = 0; i < vm->disks->len; i++) {
        const VmshiftDisk *d = vm->disks->pdata[i];
        g_print("disk");
        drive_kv("vm", vm->name);
        drive_kv("id", d->id);
        drive_kv("path", d->path);
        if (backend->disk_fields != NULL)
            backend->disk_fields(d);
        g_print("\n");
    }
    for (guint i = 0; i < vm->nics->len; i++) {
        const VmshiftNic *n = vm->nics->pdata[i];
        g_print("nic");
        drive_kv("vm", vm->name);
        drive_kv("id", n->id);
        drive_kv("mac", n->mac);
        drive_kv("network", n->network);
        if (backend->nic_fields != NULL)
            backend->nic_fields(n);
        g_print("\n");
    }
}

static gboolean
on_phase(VmshiftJob *job, VmshiftPhase phase, gpointer user_data, GError **error)
{
    g_print("phase name=%s\n", vmshift_phase_name(phase));
    return TRUE;
}

static void
on_changed(VmshiftJob *job, gpointer user_data)
{
    VmshiftJobProgress p = { .struct_size = sizeof p };
    vmshift_job_get_progress(job, &p);
    if (cancel_at >= 0 && p.percent >= cancel_at && !vmshift_job_is_cancelled(job)) {
        g_print("%s%.0f\n", backend->cancel_label, p.percent);
        vmshift_job_cancel(job);
    }
    vmshift_job_progress_clear(&p);
}

static void
on_log(VmshiftJob *job, VmshiftLogLevel level, const char *line, gpointer user_data)
{
    g_print("log level=%d", (int)level);
    drive_kv("line", line);
    g_print("\n");
}

static gboolean
on_save(VmshiftJob *job, const char *key, const char *value, gpointer user_data, GError **error)
{
    g_print("save");
    drive_kv("key", key);
    if (g_strcmp0(key, "task") == 0)
        drive_kv("value", value);
    g_print("\n");
    fflush(stdout);
    return TRUE;
}

static const VmshiftJobHooks hooks = {
    .struct_size = sizeof(VmshiftJobHooks),
    .phase = on_phase,
    .changed = on_changed,
    .log = on_log,
};

static const VmshiftJobHooks hooks_saving = {
    .struct_size = sizeof(VmshiftJobHooks),
    .phase = on_phase,
    .changed = on_changed,
    .log = on_log,
    .save = on_save,
};

const VmshiftJobHooks *
drive_job_hooks(void)
{
    return backend->print_saves ? &hooks_saving : &hooks;
}

VmshiftMigrationSpec *
drive_parse_spec(int argc, char **argv, gboolean *acl, GError **error)
{
    if (argc < 2) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_INVALID_ARGUMENT,
                    "usage: migrate|check live|cold|storage VM [DEST] [options]");
        return NULL;
    }
    g_autoptr(VmshiftMigrationSpec) s = vmshift_migration_spec_new();
    if (strcmp(argv[0], "live") == 0)
        s->type = VMSHIFT_MIGRATION_LIVE;
    else if (strcmp(argv[0], "cold") == 0)
        s->type = VMSHIFT_MIGRATION_COLD;
    else if (strcmp(argv[0], "storage") == 0)
        s->type = VMSHIFT_MIGRATION_STORAGE;
    else {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_INVALID_ARGUMENT, "bad type %s", argv[0]);
        return NULL;
    }
    s->vm = g_strdup(argv[1]);
    int i = 2;
    if (i < argc && strncmp(argv[i], "--", 2) != 0)
        s->dest_host = g_strdup(argv[i++]);
    for (; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--start") == 0) {
            s->start = 1;
        } else if (strcmp(a, "--force") == 0) {
            s->force = 1;
        } else if (acl != NULL && strcmp(a, "--acl") == 0) {
            *acl = TRUE;
        } else if (v != NULL && strcmp(a, "--path") == 0) {
            s->dest_path = g_strdup(v);
            i++;
        } else if (v != NULL && strcmp(a, "--cancel-at") == 0) {
            cancel_at = g_ascii_strtod(v, NULL);
            i++;
        } else if (v != NULL && (strcmp(a, "--disk-path") == 0 || strcmp(a, "--network") == 0)) {
            const char *eq = strchr(v, '=');
            if (eq == NULL) {
                g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_INVALID_ARGUMENT, "%s wants X=Y",
                            a);
                return NULL;
            }
            g_autofree char *k = g_strndup(v, (gsize)(eq - v));
            g_ptr_array_add(strcmp(a, "--network") == 0 ? s->networks : s->disk_paths,
                            vmshift_mapping_new(k, eq + 1));
            i++;
        } else {
            g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_INVALID_ARGUMENT, "unknown option %s",
                        a);
            return NULL;
        }
    }
    return g_steal_pointer(&s);
}

void
drive_print_job(VmshiftJob *job, gboolean ok)
{
    VmshiftJobProgress p = { .struct_size = sizeof p };
    vmshift_job_get_progress(job, &p);
    g_print("job ok=%d percent=%.0f", ok, p.percent);
    drive_kv("location", p.location_host);
    drive_kv("detail", p.location_detail);
    g_print("\n");
    vmshift_job_progress_clear(&p);

    g_autoptr(GHashTable) res = vmshift_job_get_results(job);
    GHashTableIter it;
    gpointer k, v;
    g_hash_table_iter_init(&it, res);
    while (g_hash_table_iter_next(&it, &k, &v)) {
        g_print("result");
        drive_kv("key", k);
        drive_kv("value", v);
        g_print("\n");
    }
}

/* migrate SPEC [--acl] | acl VM */
static gboolean
run_migrate(const VmshiftBackendOps *ops, VmshiftBackend *b, const char *op, int argc, char **argv,
            GError **error)
{
    gboolean acl = strcmp(op, "acl") == 0;
    g_autoptr(VmshiftMigrationSpec) s = NULL;
    if (!acl && (s = drive_parse_spec(argc, argv, &acl, error)) == NULL)
        return FALSE;
    if (s == NULL && argc < 1) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_INVALID_ARGUMENT, "usage: acl VM");
        return FALSE;
    }
    g_autoptr(VmshiftJob) job = vmshift_job_new("test-job", s, drive_job_hooks(), NULL);
    gboolean ok = TRUE;
    if (s != NULL)
        ok = ops->migrate(b, s, job, 0, error);
    if (ok && acl)
        ok = ops->recreate_acl(b, s != NULL ? s->vm : argv[0], job, 0, error);
    drive_print_job(job, ok);
    return ok;
}

gboolean
drive_run_common(const VmshiftBackendOps *ops, VmshiftBackend *b, const char *op, int argc,
                 char **argv, GError **error)
{
    const char *arg = argc > 0 ? argv[0] : NULL;
    if (strcmp(op, "vms") == 0) {
        g_autoptr(GPtrArray) l = ops->list_vms(b, arg, 0, error);
        for (guint i = 0; l != NULL && i < l->len; i++)
            drive_print_vm(l->pdata[i]);
        return l != NULL;
    }
    if (strcmp(op, "vm") == 0 && arg != NULL) {
        g_autoptr(VmshiftVm) vm = ops->get_vm(b, arg, 0, error);
        if (vm != NULL)
            drive_print_vm(vm);
        return vm != NULL;
    }
    if (strcmp(op, "checkpoint") == 0 && arg != NULL) {
        g_autoptr(VmshiftCheckpointState) st = ops->checkpoint_state(b, arg, 0, error);
        if (st == NULL)
            return FALSE;
        g_print("checkpoint merging=%u consolidation=%u percent=%d", st->merging,
                st->needs_consolidation, st->percent);
        drive_kv("detail", st->detail);
        g_print("\n");
        return TRUE;
    }
    if (strcmp(op, "migrate") == 0 || strcmp(op, "acl") == 0)
        return run_migrate(ops, b, op, argc, argv, error);
    g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_INVALID_ARGUMENT, "unknown operation %s", op);
    return FALSE;
}

int
drive_main(const DriveBackend *be, int argc, char **argv)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(GKeyFile) kf = g_key_file_new();
    g_autoptr(VmshiftConfig) config = NULL;
    VmshiftPluginEntryFunc entry = NULL;

    backend = be;
    if (argc < 4) {
        g_printerr("usage: %s PLUGIN.so CONF OP [ARGS]\n", be->prog);
        return 2;
    }
    /* The module stays loaded: the plugin may have registered GTypes. */
    GModule *mod = g_module_open(argv[1], G_MODULE_BIND_LOCAL);
    if (mod == NULL || !g_module_symbol(mod, VMSHIFT_PLUGIN_ENTRY_SYMBOL, (gpointer *)&entry)) {
        g_printerr("cannot load %s: %s\n", argv[1], g_module_error());
        return 2;
    }
    const VmshiftPluginDescriptor *d = entry();
    if (d->abi_major != VMSHIFT_ABI_MAJOR
        || (be->plugin != NULL && g_strcmp0(d->name, be->plugin) != 0)) {
        g_printerr("%s\n", be->mismatch);
        return 2;
    }
    const VmshiftBackendOps *ops = d->ops;
    if (!g_key_file_load_from_file(kf, argv[2], G_KEY_FILE_NONE, &error)) {
        g_printerr("%s\n", error->message);
        return 2;
    }
    config = vmshift_config_new(be->config_name, kf, be->config_group, argv[2], g_get_tmp_dir());
    VmshiftBackend *b = ops->open(config, 0, &error);
    gboolean ok = b != NULL && be->run(ops, b, argv[3], argc - 4, argv + 4, &error);
    if (b != NULL)
        ops->close(b);
    if (!ok) {
        g_print("error domain=%s code=%s", g_quark_to_string(error->domain),
                error->domain == VMSHIFT_ERROR ? vmshift_error_code_name(error->code)
                : g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED) ? "cancelled"
                                                                           : "other");
        drive_kv("message", error->message);
        g_print("\n");
    }
    return ok ? 0 : 1;
}
