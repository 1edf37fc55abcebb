/*
 * esx-drive: runs operations of the ESX plugin through the SDK the way the
 * host does (GModule, vmshift_plugin_entry, the ops table) and prints the
 * results as "kind key=value …" lines for tests/esx/test-esx.sh.
 *
 *   esx-drive PLUGIN.so CONF OP [ARGS]
 *     hosts | vms [HOST] | vm NAME | networks [HOST] | volumes [HOST]
 *     snapshots VM | checkpoint VM | acl VM
 *     check   live|cold|storage VM [DEST] [OPTIONS]
 *     migrate live|cold|storage VM [DEST] [OPTIONS] [--cancel-at PCT] [--acl]
 *     repair TASK live|cold|storage VM [DEST] [OPTIONS]   (a job interrupted in transfer)
 *     customize VM NIC=ADDR/PREFIX[,GATEWAY[,DNS]]...
 *     watch VM SECONDS
 *     repeat N OP ARGS      (run OP N times on one backend handle)
 *   OPTIONS: --path DS  --disk-path DISK=DS  --network NIC=NET  --start  --force
 *
 * CONF is a key file with one [backend esx] group. Exit 0 on success; on
 * failure a line "error domain=… code=NAME message=…" and exit 1.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
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
print_vm(const VmshiftVm *vm)
{
    g_print("vm");
    kv("id", vm->id);
    kv("name", vm->name);
    kv("host", vm->host);
    kv("power", vmshift_power_state_name(vm->power_state));
    kv("config", vm->config_path);
    kvu("snapshots", vm->snapshot_count);
    kv("status", vm->status_detail);
    g_print("\n");
    for (guint i = 0; i < vm->disks->len; i++) {
        VmshiftDisk *d = vm->disks->pdata[i];
        g_print("disk");
        kv("vm", vm->name);
        kv("id", d->id);
        kv("path", d->path);
        kv("volume", d->volume);
        kvu("capacity", d->capacity);
        g_print("\n");
    }
    for (guint i = 0; i < vm->nics->len; i++) {
        VmshiftNic *n = vm->nics->pdata[i];
        g_print("nic");
        kv("vm", vm->name);
        kv("id", n->id);
        kv("mac", n->mac);
        kv("network", n->network);
        kv("model", n->model);
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
        g_print("cancel percent=%.0f\n", p.percent);
        vmshift_job_cancel(job);
    }
    vmshift_job_progress_clear(&p);
}

static void
on_log(VmshiftJob *job, VmshiftLogLevel level, const char *line, gpointer user_data)
{
    g_print("log level=%d", level);
    kv("line", line);
    g_print("\n");
}

static gboolean
on_save(VmshiftJob *job, const char *key, const char *value, gpointer user_data, GError **error)
{
    g_print("save");
    kv("key", key);
    if (g_strcmp0(key, "task") == 0)
        kv("value", value);
    g_print("\n");
    fflush(stdout);
    return TRUE;
}

static const VmshiftJobHooks hooks = {
    .struct_size = sizeof(VmshiftJobHooks),
    .phase = on_phase,
    .changed = on_changed,
    .log = on_log,
    .save = on_save,
};

static VmshiftMigrationSpec *
parse_spec(int argc, char **argv, gboolean *acl, GError **error)
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
        } else if (strcmp(a, "--acl") == 0) {
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
                g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_INVALID_ARGUMENT, "%s wants X=Y", a);
                return NULL;
            }
            g_autofree char *k = g_strndup(v, eq - v);
            g_ptr_array_add(strcmp(a, "--network") == 0 ? s->networks : s->disk_paths,
                            vmshift_mapping_new(k, eq + 1));
            i++;
        } else {
            g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_INVALID_ARGUMENT, "unknown option %s", a);
            return NULL;
        }
    }
    return g_steal_pointer(&s);
}

static void
on_change(const VmshiftChange *c, gpointer user_data)
{
    g_print("change kind=%s", vmshift_change_kind_name(c->kind));
    kv("vm", c->vm);
    kv("subject", c->subject);
    kv("detail", c->detail);
    g_print("\n");
    fflush(stdout);
}

static gboolean
stop_watch(gpointer data)
{
    g_cancellable_cancel(data);
    return G_SOURCE_REMOVE;
}

static gpointer
timer_thread(gpointer data)
{
    GMainContext *ctx = g_main_context_new();
    GSource *s = g_timeout_source_new_seconds(GPOINTER_TO_UINT(g_object_get_data(data, "secs")));
    g_source_set_callback(s, stop_watch, data, NULL);
    g_source_attach(s, ctx);
    while (!g_cancellable_is_cancelled(data))
        g_main_context_iteration(ctx, TRUE);
    g_source_unref(s);
    g_main_context_unref(ctx);
    return NULL;
}

static gboolean
run(VmshiftBackend *b, const char *op, int argc, char **argv, GError **error)
{
    const char *arg = argc > 0 ? argv[0] : NULL;
    if (strcmp(op, "hosts") == 0) {
        g_autoptr(GPtrArray) l = ops->list_hosts(b, 0, error);
        for (guint i = 0; l != NULL && i < l->len; i++) {
            VmshiftHost *h = l->pdata[i];
            g_print("host");
            kv("id", h->id);
            kv("name", h->name);
            kv("status", vmshift_host_status_name(h->status));
            kv("detail", h->status_detail);
            kvu("cpus", h->cpu_count);
            kvu("memory", h->memory_total);
            kvu("free", h->memory_free);
            g_print("\n");
        }
        return l != NULL;
    }
    if (strcmp(op, "vms") == 0) {
        g_autoptr(GPtrArray) l = ops->list_vms(b, arg, 0, error);
        for (guint i = 0; l != NULL && i < l->len; i++)
            print_vm(l->pdata[i]);
        return l != NULL;
    }
    if (strcmp(op, "vm") == 0 && arg != NULL) {
        g_autoptr(VmshiftVm) vm = ops->get_vm(b, arg, 0, error);
        if (vm != NULL)
            print_vm(vm);
        return vm != NULL;
    }
    if (strcmp(op, "networks") == 0) {
        g_autoptr(GPtrArray) l = ops->list_networks(b, arg, 0, error);
        for (guint i = 0; l != NULL && i < l->len; i++) {
            VmshiftNetwork *n = l->pdata[i];
            g_print("network");
            kv("id", n->id);
            kv("name", n->name);
            kv("kind", n->kind);
            kvu("hosts", n->hosts != NULL ? n->hosts->len : 0);
            g_print("\n");
        }
        return l != NULL;
    }
    if (strcmp(op, "volumes") == 0) {
        g_autoptr(GPtrArray) l = ops->list_volumes(b, arg, 0, error);
        for (guint i = 0; l != NULL && i < l->len; i++) {
            VmshiftVolume *v = l->pdata[i];
            g_print("volume");
            kv("id", v->id);
            kv("name", v->name);
            kv("path", v->path);
            kvu("capacity", v->capacity);
            kvu("free", v->free);
            kvu("shared", v->shared);
            g_print("\n");
        }
        return l != NULL;
    }
    if (strcmp(op, "snapshots") == 0 && arg != NULL) {
        g_autoptr(GPtrArray) l = ops->list_snapshots(b, arg, 0, error);
        for (guint i = 0; l != NULL && i < l->len; i++) {
            VmshiftSnapshot *s = l->pdata[i];
            g_print("snapshot");
            kv("name", s->name);
            kv("parent", s->parent);
            kvu("current", s->current);
            g_print("\n");
        }
        return l != NULL;
    }
    if (strcmp(op, "checkpoint") == 0 && arg != NULL) {
        g_autoptr(VmshiftCheckpointState) st = ops->checkpoint_state(b, arg, 0, error);
        if (st == NULL)
            return FALSE;
        g_print("checkpoint merging=%u consolidation=%u percent=%d", st->merging,
                st->needs_consolidation, st->percent);
        kv("detail", st->detail);
        g_print("\n");
        return TRUE;
    }
    if (strcmp(op, "check") == 0) {
        gboolean acl = FALSE;
        g_autoptr(VmshiftMigrationSpec) s = parse_spec(argc, argv, &acl, error);
        if (s == NULL)
            return FALSE;
        g_autoptr(GPtrArray) f = ops->check_migration(b, s, 0, error);
        for (guint i = 0; f != NULL && i < f->len; i++) {
            VmshiftFinding *x = f->pdata[i];
            g_print("finding severity=%s code=%s", vmshift_severity_name(x->severity), x->code);
            kv("subject", x->subject);
            kv("message", x->message);
            g_print("\n");
        }
        if (f != NULL)
            g_print("findings count=%u\n", f->len);
        return f != NULL;
    }
    if (strcmp(op, "migrate") == 0 || strcmp(op, "acl") == 0) {
        gboolean acl = strcmp(op, "acl") == 0;
        g_autoptr(VmshiftMigrationSpec) s = NULL;
        if (!acl && (s = parse_spec(argc, argv, &acl, error)) == NULL)
            return FALSE;
        if (s == NULL && arg == NULL) {
            g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_INVALID_ARGUMENT, "usage: acl VM");
            return FALSE;
        }
        g_autoptr(VmshiftJob) job = vmshift_job_new("test-job", s, &hooks, NULL);
        gboolean ok = TRUE;
        if (s != NULL)
            ok = ops->migrate(b, s, job, 0, error);
        if (ok && acl)
            ok = ops->recreate_acl(b, s != NULL ? s->vm : arg, job, 0, error);
        VmshiftJobProgress p = { .struct_size = sizeof p };
        vmshift_job_get_progress(job, &p);
        g_print("job ok=%d percent=%.0f", ok, p.percent);
        kv("location", p.location_host);
        kv("detail", p.location_detail);
        g_print("\n");
        vmshift_job_progress_clear(&p);
        g_autoptr(GHashTable) res = vmshift_job_get_results(job);
        GHashTableIter it;
        gpointer k, v;
        g_hash_table_iter_init(&it, res);
        while (g_hash_table_iter_next(&it, &k, &v)) {
            g_print("result");
            kv("key", k);
            kv("value", v);
            g_print("\n");
        }
        return ok;
    }
    if (strcmp(op, "repair") == 0 && argc >= 3) {
        gboolean acl = FALSE;
        g_autoptr(VmshiftMigrationSpec) s = parse_spec(argc - 1, argv + 1, &acl, error);
        if (s == NULL)
            return FALSE;
        g_autoptr(VmshiftJob) job = vmshift_job_new("repair-job", s, &hooks, NULL);
        g_autoptr(GHashTable) saved = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
        g_hash_table_insert(saved, g_strdup("task"), g_strdup(argv[0]));
        vmshift_job_restore(job, VMSHIFT_PHASE_TRANSFER, saved);
        gboolean ok = ops->repair(b, job, 0, error);
        VmshiftJobProgress p = { .struct_size = sizeof p };
        vmshift_job_get_progress(job, &p);
        g_print("job ok=%d", ok);
        kv("location", p.location_host);
        g_print("\n");
        vmshift_job_progress_clear(&p);
        g_autoptr(GHashTable) res = vmshift_job_get_results(job);
        g_print("result");
        kv("key", "repair");
        kv("value", g_hash_table_lookup(res, "repair"));
        g_print("\n");
        return ok;
    }
    if (strcmp(op, "customize") == 0 && argc >= 2) {
        g_autoptr(GPtrArray) nics = vmshift_list_new((GDestroyNotify)vmshift_guest_nic_free);
        for (int i = 1; i < argc; i++) {
            const char *eq = strchr(argv[i], '=');
            if (eq == NULL)
                continue;
            VmshiftGuestNic *g = vmshift_guest_nic_new();
            g->nic = g_strndup(argv[i], eq - argv[i]);
            g_auto(GStrv) f = g_strsplit(eq + 1, ",", 3);
            const char *slash = strchr(f[0], '/');
            g->address = slash != NULL ? g_strndup(f[0], slash - f[0]) : g_strdup(f[0]);
            g->prefix_len = slash != NULL ? (guint32)atoi(slash + 1) : 24;
            if (f[1] != NULL)
                g->gateway = g_strdup(f[1]);
            if (f[1] != NULL && f[2] != NULL) {
                g->dns = vmshift_string_list_new();
                g_ptr_array_add(g->dns, g_strdup(f[2]));
            }
            g_ptr_array_add(nics, g);
        }
        g_autoptr(VmshiftJob) job = vmshift_job_new("customize-job", NULL, &hooks, NULL);
        gboolean ok = ops->customize_guest(b, arg, nics, job, 0, error);
        g_autoptr(GHashTable) res = vmshift_job_get_results(job);
        g_print("job ok=%d", ok);
        kv("customize", g_hash_table_lookup(res, "customize"));
        g_print("\n");
        return ok;
    }
    if (strcmp(op, "watch") == 0 && argc >= 2) {
        g_autoptr(GCancellable) c = g_cancellable_new();
        g_object_set_data(G_OBJECT(c), "secs", GUINT_TO_POINTER((guint)atoi(argv[1])));
        GThread *t = g_thread_new("timer", timer_thread, c);
        g_print("watching\n");
        fflush(stdout);
        g_autoptr(GError) err = NULL;
        gboolean ok = ops->watch_changes(b, arg, on_change, NULL, c, 0, &err);
        g_cancellable_cancel(c);
        g_thread_join(t);
        if (!ok && g_error_matches(err, G_IO_ERROR, G_IO_ERROR_CANCELLED))
            return TRUE;
        if (!ok)
            g_propagate_error(error, g_steal_pointer(&err));
        return ok;
    }
    if (strcmp(op, "repeat") == 0 && argc >= 2) {
        int n = atoi(argv[0]);
        for (int i = 0; i < n; i++)
            if (!run(b, argv[1], argc - 2, argv + 2, error))
                return FALSE;
        return TRUE;
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
    VmshiftPluginEntryFunc entry = NULL;

    if (argc < 4) {
        g_printerr("usage: esx-drive PLUGIN.so CONF OP [ARGS]\n");
        return 2;
    }
    GModule *mod = g_module_open(argv[1], G_MODULE_BIND_LOCAL);
    if (mod == NULL || !g_module_symbol(mod, VMSHIFT_PLUGIN_ENTRY_SYMBOL, (gpointer *)&entry)) {
        g_printerr("cannot load %s: %s\n", argv[1], g_module_error());
        return 2;
    }
    const VmshiftPluginDescriptor *d = entry();
    if (d->abi_major != VMSHIFT_ABI_MAJOR || g_strcmp0(d->name, "esx") != 0) {
        g_printerr("not the ESX plugin of this ABI\n");
        return 2;
    }
    ops = d->ops;
    if (!g_key_file_load_from_file(kf, argv[2], G_KEY_FILE_NONE, &error)) {
        g_printerr("%s\n", error->message);
        return 2;
    }
    config = vmshift_config_new("esx", kf, "backend esx", argv[2], g_get_tmp_dir());
    VmshiftBackend *b = ops->open(config, 0, &error);
    gboolean ok = b != NULL && run(b, argv[3], argc - 4, argv + 4, &error);
    if (b != NULL)
        ops->close(b);
    if (!ok) {
        g_print("error domain=%s code=%s", g_quark_to_string(error->domain),
                error->domain == VMSHIFT_ERROR ? vmshift_error_code_name(error->code)
                : g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED) ? "cancelled"
                                                                           : "other");
        kv("message", error->message);
        g_print("\n");
    }
    return ok ? 0 : 1;
}
