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
 * failure a line "error domain=… code=NAME message=…" and exit 1. What does
 * not depend on the backend is in tests/lib/drive.c.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <vmshift/vmshift.h>

#include "tests/lib/drive.h"

static void
vm_fields(const VmshiftVm *vm)
{
    drive_kv("power", vmshift_power_state_name(vm->power_state));
    drive_kv("config", vm->config_path);
    drive_kvu("snapshots", vm->snapshot_count);
    drive_kv("status", vm->status_detail);
}

static void
disk_fields(const VmshiftDisk *d)
{
    drive_kv("volume", d->volume);
    drive_kvu("capacity", d->capacity);
}

static void
nic_fields(const VmshiftNic *n)
{
    drive_kv("model", n->model);
}

static void
on_change(const VmshiftChange *c, gpointer user_data)
{
    g_print("change kind=%s", vmshift_change_kind_name(c->kind));
    drive_kv("vm", c->vm);
    drive_kv("subject", c->subject);
    drive_kv("detail", c->detail);
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
run(const VmshiftBackendOps *ops, VmshiftBackend *b, const char *op, int argc, char **argv,
    GError **error)
{
    const char *arg = argc > 0 ? argv[0] : NULL;
    if (strcmp(op, "hosts") == 0) {
        g_autoptr(GPtrArray) l = ops->list_hosts(b, 0, error);
        for (guint i = 0; l != NULL && i < l->len; i++) {
            VmshiftHost *h = l->pdata[i];
            g_print("host");
            drive_kv("id", h->id);
            drive_kv("name", h->name);
            drive_kv("status", vmshift_host_status_name(h->status));
            drive_kv("detail", h->status_detail);
            drive_kvu("cpus", h->cpu_count);
            drive_kvu("memory", h->memory_total);
            drive_kvu("free", h->memory_free);
            g_print("\n");
        }
        return l != NULL;
    }
    if (strcmp(op, "networks") == 0) {
        g_autoptr(GPtrArray) l = ops->list_networks(b, arg, 0, error);
        for (guint i = 0; l != NULL && i < l->len; i++) {
            VmshiftNetwork *n = l->pdata[i];
            g_print("network");
            drive_kv("id", n->id);
            drive_kv("name", n->name);
            drive_kv("kind", n->kind);
            drive_kvu("hosts", n->hosts != NULL ? n->hosts->len : 0);
            g_print("\n");
        }
        return l != NULL;
    }
    if (strcmp(op, "volumes") == 0) {
        g_autoptr(GPtrArray) l = ops->list_volumes(b, arg, 0, error);
        for (guint i = 0; l != NULL && i < l->len; i++) {
            VmshiftVolume *v = l->pdata[i];
            g_print("volume");
            drive_kv("id", v->id);
            drive_kv("name", v->name);
            drive_kv("path", v->path);
            drive_kvu("capacity", v->capacity);
            drive_kvu("free", v->free);
            drive_kvu("shared", v->shared);
            g_print("\n");
        }
        return l != NULL;
    }
    if (strcmp(op, "snapshots") == 0 && arg != NULL) {
        g_autoptr(GPtrArray) l = ops->list_snapshots(b, arg, 0, error);
        for (guint i = 0; l != NULL && i < l->len; i++) {
            VmshiftSnapshot *s = l->pdata[i];
            g_print("snapshot");
            drive_kv("name", s->name);
            drive_kv("parent", s->parent);
            drive_kvu("current", s->current);
            g_print("\n");
        }
        return l != NULL;
    }
    if (strcmp(op, "check") == 0) {
        gboolean acl = FALSE;
        g_autoptr(VmshiftMigrationSpec) s = drive_parse_spec(argc, argv, &acl, error);
        if (s == NULL)
            return FALSE;
        g_autoptr(GPtrArray) f = ops->check_migration(b, s, 0, error);
        for (guint i = 0; f != NULL && i < f->len; i++) {
            VmshiftFinding *x = f->pdata[i];
            g_print("finding severity=%s code=%s", vmshift_severity_name(x->severity), x->code);
            drive_kv("subject", x->subject);
            drive_kv("message", x->message);
            g_print("\n");
        }
        if (f != NULL)
            g_print("findings count=%u\n", f->len);
        return f != NULL;
    }
    if (strcmp(op, "repair") == 0 && argc >= 3) {
        gboolean acl = FALSE;
        g_autoptr(VmshiftMigrationSpec) s = drive_parse_spec(argc - 1, argv + 1, &acl, error);
        if (s == NULL)
            return FALSE;
        g_autoptr(VmshiftJob) job = vmshift_job_new("repair-job", s, drive_job_hooks(), NULL);
        g_autoptr(GHashTable)
            saved = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
        g_hash_table_insert(saved, g_strdup("task"), g_strdup(argv[0]));
        vmshift_job_restore(job, VMSHIFT_PHASE_TRANSFER, saved);
        gboolean ok = ops->repair(b, job, 0, error);
        VmshiftJobProgress p = { .struct_size = sizeof p };
        vmshift_job_get_progress(job, &p);
        g_print("job ok=%d", ok);
        drive_kv("location", p.location_host);
        g_print("\n");
        vmshift_job_progress_clear(&p);
        g_autoptr(GHashTable) res = vmshift_job_get_results(job);
        g_print("result");
        drive_kv("key", "repair");
        drive_kv("value", g_hash_table_lookup(res, "repair"));
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
        g_autoptr(VmshiftJob) job = vmshift_job_new("customize-job", NULL, drive_job_hooks(), NULL);
        gboolean ok = ops->customize_guest(b, arg, nics, job, 0, error);
        g_autoptr(GHashTable) res = vmshift_job_get_results(job);
        g_print("job ok=%d", ok);
        drive_kv("customize", g_hash_table_lookup(res, "customize"));
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
            if (!run(ops, b, argv[1], argc - 2, argv + 2, error))
                return FALSE;
        return TRUE;
    }
    return drive_run_common(ops, b, op, argc, argv, error);
}

int
main(int argc, char **argv)
{
    static const DriveBackend esx = {
        .prog = "esx-drive",
        .plugin = "esx",
        .mismatch = "not the ESX plugin of this ABI",
        .config_name = "esx",
        .config_group = "backend esx",
        .cancel_label = "cancel percent=",
        .print_saves = TRUE,
        .vm_fields = vm_fields,
        .disk_fields = disk_fields,
        .nic_fields = nic_fields,
        .run = run,
    };
    return drive_main(&esx, argc, argv);
}
