/*
 * hv-drive: runs one operation of the Hyper-V plugin through the SDK, the
 * way the host does (GModule, vmshift_plugin_entry, the ops table), and
 * prints the result as "kind key=value …" lines for tests/hyperv/test-hyperv.py.
 *
 *   hv-drive PLUGIN.so CONF OP [ARGS]
 *     hosts | vms [HOST] | vm NAME | networks | volumes | checkpoint VM
 *     check  live|cold|storage VM [DEST] [--path DIR] [--disk-path D=DIR]… [--network N=S]…
 *     migrate live|cold|storage VM [DEST] [same options] [--cancel-at PCT]
 *     acl VM
 *
 * CONF is a key file with one [backend hv] group.  Exit 0 on success; on
 * failure one line "error code=NAME message=…" and exit 1.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include <gmodule.h>
#include <vmshift/vmshift.h>

static const VmshiftBackendOps *ops;
static double cancel_at = -1;

static void
kv(const char *k, const char *v)
{
    g_autofree char *e = g_strescape(v != NULL ? v : "(null)", NULL);
    g_print(" %s=\"%s\"", k, e);
}

static void
kvu(const char *k, guint64 v)
{
    g_print(" %s=%" G_GUINT64_FORMAT, k, v);
}

static void
print_list(const char *k, GPtrArray *a)
{
    g_autoptr(GString) s = g_string_new(NULL);
    for (guint i = 0; a != NULL && i < a->len; i++)
        g_string_append_printf(s, "%s%s", i ? "," : "", (char *)a->pdata[i]);
    kv(k, s->str);
}

static void
print_vm(const VmshiftVm *vm)
{
    g_print("vm");
    kv("id", vm->id);
    kv("name", vm->name);
    kv("host", vm->host);
    kvu("power", vm->power_state);
    kv("config", vm->config_path);
    kv("status", vm->status_detail);
    g_print("\n");
    for (guint i = 0; i < vm->disks->len; i++) {
        VmshiftDisk *d = vm->disks->pdata[i];
        g_print("disk");
        kv("vm", vm->name);
        kv("id", d->id);
        kv("path", d->path);
        kv("format", d->format);
        kvu("allocation", d->allocation);
        kv("volume", d->volume);
        g_print("\n");
    }
    for (guint i = 0; i < vm->nics->len; i++) {
        VmshiftNic *n = vm->nics->pdata[i];
        g_print("nic");
        kv("vm", vm->name);
        kv("id", n->id);
        kv("mac", n->mac);
        kv("network", n->network);
        g_print("\n");
    }
}

static void
on_changed(VmshiftJob *job, gpointer user_data)
{
    VmshiftJobProgress p = { .struct_size = sizeof p };

    (void)user_data;
    vmshift_job_get_progress(job, &p);
    if (cancel_at >= 0 && p.percent >= cancel_at) {
        cancel_at = -1;
        g_print("cancelling at=%.0f\n", p.percent);
        vmshift_job_cancel(job);
    }
    vmshift_job_progress_clear(&p);
}

static void
on_log(VmshiftJob *job, VmshiftLogLevel level, const char *line, gpointer user_data)
{
    (void)job;
    (void)user_data;
    g_print("log level=%d", (int)level);
    kv("line", line);
    g_print("\n");
}

static gboolean
on_phase(VmshiftJob *job, VmshiftPhase phase, gpointer user_data, GError **error)
{
    (void)job;
    (void)user_data;
    (void)error;
    g_print("phase name=%s\n", vmshift_phase_name(phase));
    return TRUE;
}

static const VmshiftJobHooks hooks = {
    .struct_size = sizeof(VmshiftJobHooks),
    .phase = on_phase,
    .changed = on_changed,
    .log = on_log,
};

static VmshiftMigrationSpec *
parse_spec(int argc, char **argv, GError **error)
{
    g_autoptr(VmshiftMigrationSpec) s = vmshift_migration_spec_new();
    int i = 0;

    if (argc < 2) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_INVALID_ARGUMENT, "usage: TYPE VM [DEST]");
        return NULL;
    }
    s->type = strcmp(argv[0], "live") == 0 ? VMSHIFT_MIGRATION_LIVE
              : strcmp(argv[0], "cold") == 0 ? VMSHIFT_MIGRATION_COLD
                                             : VMSHIFT_MIGRATION_STORAGE;
    s->vm = g_strdup(argv[1]);
    i = 2;
    if (i < argc && argv[i][0] != '-')
        s->dest_host = g_strdup(argv[i++]);
    for (; i + 1 < argc; i += 2) {
        char *eq = strchr(argv[i + 1], '=');
        if (strcmp(argv[i], "--path") == 0) {
            s->dest_path = g_strdup(argv[i + 1]);
        } else if (strcmp(argv[i], "--cancel-at") == 0) {
            cancel_at = g_ascii_strtod(argv[i + 1], NULL);
        } else if (eq != NULL && (strcmp(argv[i], "--disk-path") == 0
                                  || strcmp(argv[i], "--network") == 0)) {
            g_autofree char *k = g_strndup(argv[i + 1], (gsize)(eq - argv[i + 1]));
            g_ptr_array_add(strcmp(argv[i], "--network") == 0 ? s->networks : s->disk_paths,
                            vmshift_mapping_new(k, eq + 1));
        } else {
            g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_INVALID_ARGUMENT, "bad option %s",
                        argv[i]);
            return NULL;
        }
    }
    return g_steal_pointer(&s);
}

static gboolean
run(VmshiftBackend *b, const char *op, int argc, char **argv, GError **error)
{
    if (strcmp(op, "hosts") == 0) {
        g_autoptr(GPtrArray) a = ops->list_hosts(b, 0, error);
        for (guint i = 0; a != NULL && i < a->len; i++) {
            VmshiftHost *h = a->pdata[i];
            g_print("host");
            kv("name", h->name);
            kvu("status", h->status);
            kv("detail", h->status_detail);
            kv("migration", h->migration_address);
            kv("default", h->default_vm_path);
            kv("hypervisor", h->hypervisor);
            kv("cpu_model", h->cpu_model);
            kvu("cpus", h->cpu_count);
            g_print(" cpu_usage=%d", (int)h->cpu_usage_percent);
            kvu("memory_total", h->memory_total);
            kvu("memory_free", h->memory_free);
            print_list("san", h->san_ids);
            g_print("\n");
        }
        return a != NULL;
    }
    if (strcmp(op, "vms") == 0) {
        g_autoptr(GPtrArray) a = ops->list_vms(b, argc > 0 ? argv[0] : NULL, 0, error);
        for (guint i = 0; a != NULL && i < a->len; i++)
            print_vm(a->pdata[i]);
        return a != NULL;
    }
    if (strcmp(op, "vm") == 0 && argc > 0) {
        g_autoptr(VmshiftVm) vm = ops->get_vm(b, argv[0], 0, error);
        if (vm != NULL)
            print_vm(vm);
        return vm != NULL;
    }
    if (strcmp(op, "snapshots") == 0 && argc > 0) {
        g_autoptr(GPtrArray) a = NULL;
        if (ops->list_snapshots == NULL) {
            g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_NOT_SUPPORTED,
                        "list_snapshots not implemented");
            return FALSE;
        }
        a = ops->list_snapshots(b, argv[0], 0, error);
        for (guint i = 0; a != NULL && i < a->len; i++) {
            VmshiftSnapshot *sn = a->pdata[i];
            g_print("snapshot");
            kv("id", sn->id);
            kv("name", sn->name);
            kv("parent", sn->parent);
            kvu("current", sn->current);
            g_print(" created=%" G_GINT64_FORMAT, sn->created);
            g_print("\n");
        }
        return a != NULL;
    }
    if (strcmp(op, "networks") == 0) {
        g_autoptr(GPtrArray) a = ops->list_networks(b, NULL, 0, error);
        for (guint i = 0; a != NULL && i < a->len; i++) {
            VmshiftNetwork *n = a->pdata[i];
            g_print("network");
            kv("name", n->name);
            print_list("hosts", n->hosts);
            g_print("\n");
        }
        return a != NULL;
    }
    if (strcmp(op, "volumes") == 0) {
        g_autoptr(GPtrArray) a = ops->list_volumes(b, NULL, 0, error);
        for (guint i = 0; a != NULL && i < a->len; i++) {
            VmshiftVolume *v = a->pdata[i];
            g_print("volume");
            kv("name", v->name);
            kv("path", v->path);
            kv("host", v->host);
            kv("kind", v->kind);
            kvu("shared", v->shared);
            kvu("default", v->is_default);
            kvu("free", v->free);
            print_list("hosts", v->hosts);
            g_print("\n");
        }
        return a != NULL;
    }
    if (strcmp(op, "checkpoint") == 0 && argc > 0) {
        g_autoptr(VmshiftCheckpointState) st = ops->checkpoint_state(b, argv[0], 0, error);
        if (st == NULL)
            return FALSE;
        g_print("checkpoint merging=%u consolidation=%u percent=%d", st->merging,
                st->needs_consolidation, st->percent);
        kv("detail", st->detail);
        g_print("\n");
        return TRUE;
    }
    if (strcmp(op, "check") == 0) {
        g_autoptr(VmshiftMigrationSpec) s = parse_spec(argc, argv, error);
        g_autoptr(GPtrArray) f = s ? ops->check_migration(b, s, 0, error) : NULL;
        for (guint i = 0; f != NULL && i < f->len; i++) {
            VmshiftFinding *x = f->pdata[i];
            g_print("finding severity=%u", x->severity);
            kv("code", x->code);
            kv("subject", x->subject);
            kv("message", x->message);
            g_print("\n");
        }
        return f != NULL;
    }
    if (strcmp(op, "migrate") == 0 || strcmp(op, "acl") == 0) {
        g_autoptr(VmshiftMigrationSpec) s = strcmp(op, "migrate") == 0
                                                ? parse_spec(argc, argv, error) : NULL;
        g_autoptr(VmshiftJob) job = NULL;
        g_autoptr(GHashTable) res = NULL;
        VmshiftJobProgress p = { .struct_size = sizeof p };
        GHashTableIter it;
        gpointer k, v;
        gboolean ok;

        if (strcmp(op, "migrate") == 0 && s == NULL)
            return FALSE;
        if (s == NULL && argc < 1) {
            g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_INVALID_ARGUMENT, "usage: acl VM");
            return FALSE;
        }
        job = vmshift_job_new("test-job", s, &hooks, NULL);
        ok = s != NULL ? ops->migrate(b, s, job, 0, error)
                       : ops->recreate_acl(b, argv[0], job, 0, error);
        vmshift_job_get_progress(job, &p);
        g_print("job ok=%d percent=%.0f", ok, p.percent);
        kv("location", p.location_host);
        kv("detail", p.location_detail);
        g_print("\n");
        vmshift_job_progress_clear(&p);
        res = vmshift_job_get_results(job);
        g_hash_table_iter_init(&it, res);
        while (g_hash_table_iter_next(&it, &k, &v)) {
            g_print("result");
            kv("key", k);
            kv("value", v);
            g_print("\n");
        }
        return ok;
    }
    g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_INVALID_ARGUMENT, "unknown operation %s", op);
    return FALSE;
}

int
main(int argc, char **argv)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(GKeyFile) kf = g_key_file_new();
    g_autoptr(VmshiftConfig) config = NULL;
    GModule *mod;
    VmshiftPluginEntryFunc entry = NULL;
    const VmshiftPluginDescriptor *d;
    VmshiftBackend *b;
    gboolean ok;

    if (argc < 4) {
        g_printerr("usage: hv-drive PLUGIN.so CONF OP [ARGS]\n");
        return 2;
    }
    mod = g_module_open(argv[1], G_MODULE_BIND_LOCAL);
    if (mod == NULL || !g_module_symbol(mod, VMSHIFT_PLUGIN_ENTRY_SYMBOL, (gpointer *)&entry)) {
        g_printerr("cannot load %s: %s\n", argv[1], g_module_error());
        return 2;
    }
    d = entry();
    if (d->abi_major != VMSHIFT_ABI_MAJOR) {
        g_printerr("ABI mismatch\n");
        return 2;
    }
    ops = d->ops;
    if (!g_key_file_load_from_file(kf, argv[2], G_KEY_FILE_NONE, &error)) {
        g_printerr("%s\n", error->message);
        return 2;
    }
    config = vmshift_config_new("hv", kf, "backend hv", argv[2], g_get_tmp_dir());
    b = ops->open(config, 0, &error);
    ok = b != NULL && run(b, argv[3], argc - 4, argv + 4, &error);
    if (b != NULL)
        ops->close(b);
    if (!ok) {
        g_print("error domain=%s code=%s",
                g_quark_to_string(error->domain),
                error->domain == VMSHIFT_ERROR ? vmshift_error_code_name(error->code)
                                               : (error->domain == G_IO_ERROR
                                                  && error->code == G_IO_ERROR_CANCELLED
                                                      ? "cancelled" : "other"));
        kv("message", error->message);
        g_print("\n");
    }
    /* The module stays loaded: the plugin may have registered GTypes. */
    return ok ? 0 : 1;
}
