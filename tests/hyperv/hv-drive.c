/*
 * hv-drive: runs one operation of the Hyper-V plugin through the SDK, the
 * way the host does (GModule, vmshift_plugin_entry, the ops table), and
 * prints the result as "kind key=value …" lines for tests/hyperv/test-hyperv.py.
 *
 *   hv-drive PLUGIN.so CONF OP [ARGS]
 *     hosts | vms [HOST] | vm NAME | networks | volumes | checkpoint VM
 *     check  live|cold|storage VM [DEST] [--path DIR] [--disk-path D=DIR]… [--network N=S]…
 *            [--start] [--force]
 *     migrate live|cold|storage VM [DEST] [same options] [--cancel-at PCT] [--acl]
 *     acl VM
 *
 * CONF is a key file with one [backend hv] group.  Exit 0 on success; on
 * failure one line "error domain=… code=NAME message=…" and exit 1.  What
 * does not depend on the backend is in tests/lib/drive.c.
 */
#include "config.h"

#include <string.h>

#include <vmshift/vmshift.h>

#include "tests/lib/drive.h"

static void
vm_fields(const VmshiftVm *vm)
{
    drive_kvu("power", vm->power_state);
    drive_kv("config", vm->config_path);
    drive_kv("status", vm->status_detail);
}

static void
disk_fields(const VmshiftDisk *d)
{
    drive_kv("format", d->format);
    drive_kvu("allocation", d->allocation);
    drive_kv("volume", d->volume);
}

static gboolean
run(const VmshiftBackendOps *ops, VmshiftBackend *b, const char *op, int argc, char **argv,
    GError **error)
{
    if (strcmp(op, "hosts") == 0) {
        g_autoptr(GPtrArray) a = ops->list_hosts(b, 0, error);
        for (guint i = 0; a != NULL && i < a->len; i++) {
            VmshiftHost *h = a->pdata[i];
            g_print("host");
            drive_kv("name", h->name);
            drive_kvu("status", h->status);
            drive_kv("detail", h->status_detail);
            drive_kv("migration", h->migration_address);
            drive_kv("default", h->default_vm_path);
            drive_kv("hypervisor", h->hypervisor);
            drive_kv("cpu_model", h->cpu_model);
            drive_kvu("cpus", h->cpu_count);
            g_print(" cpu_usage=%d", (int)h->cpu_usage_percent);
            drive_kvu("memory_total", h->memory_total);
            drive_kvu("memory_free", h->memory_free);
            drive_kv_list("san", h->san_ids);
            g_print("\n");
        }
        return a != NULL;
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
            drive_kv("id", sn->id);
            drive_kv("name", sn->name);
            drive_kv("parent", sn->parent);
            drive_kvu("current", sn->current);
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
            drive_kv("name", n->name);
            drive_kv_list("hosts", n->hosts);
            g_print("\n");
        }
        return a != NULL;
    }
    if (strcmp(op, "volumes") == 0) {
        g_autoptr(GPtrArray) a = ops->list_volumes(b, NULL, 0, error);
        for (guint i = 0; a != NULL && i < a->len; i++) {
            VmshiftVolume *v = a->pdata[i];
            g_print("volume");
            drive_kv("name", v->name);
            drive_kv("path", v->path);
            drive_kv("host", v->host);
            drive_kv("kind", v->kind);
            drive_kvu("shared", v->shared);
            drive_kvu("default", v->is_default);
            drive_kvu("free", v->free);
            drive_kv_list("hosts", v->hosts);
            g_print("\n");
        }
        return a != NULL;
    }
    if (strcmp(op, "check") == 0) {
        g_autoptr(VmshiftMigrationSpec) s = drive_parse_spec(argc, argv, NULL, error);
        g_autoptr(GPtrArray) f = s ? ops->check_migration(b, s, 0, error) : NULL;
        for (guint i = 0; f != NULL && i < f->len; i++) {
            VmshiftFinding *x = f->pdata[i];
            g_print("finding severity=%u", x->severity);
            drive_kv("code", x->code);
            drive_kv("subject", x->subject);
            drive_kv("message", x->message);
            g_print("\n");
        }
        return f != NULL;
    }
    return drive_run_common(ops, b, op, argc, argv, error);
}

int
main(int argc, char **argv)
{
    static const DriveBackend hv = {
        .prog = "hv-drive",
        .mismatch = "ABI mismatch",
        .config_name = "hv",
        .config_group = "backend hv",
        .cancel_label = "cancelling at=",
        .vm_fields = vm_fields,
        .disk_fields = disk_fields,
        .run = run,
    };
    return drive_main(&hv, argc, argv);
}
