/*
 * drive: what the SDK test drivers (tests/esx/esx-drive,
 * tests/hyperv/hv-drive) share.  A driver loads one plugin through the SDK
 * the way the host does (GModule, vmshift_plugin_entry, the ops table), runs
 * one operation and prints the results as "kind key=value …" lines that the
 * integration tests parse; on failure one line
 * "error domain=… code=NAME message=…" and exit 1.
 *
 * A driver describes its backend in a DriveBackend and calls drive_main().
 * Its run function handles the backend's own operations and passes every
 * other one to drive_run_common(), which knows the ones whose output is the
 * same in every driver (vms, vm, checkpoint, migrate, acl).
 */
#ifndef VMSHIFT_TESTS_DRIVE_H
#define VMSHIFT_TESTS_DRIVE_H

#include <glib.h>
#include <vmshift/vmshift.h>

G_BEGIN_DECLS

typedef gboolean (*DriveRunFunc)(const VmshiftBackendOps *ops, VmshiftBackend *b, const char *op,
                                 int argc, char **argv, GError **error);

typedef struct {
    /* the program's name, for its usage line */
    const char *prog;
    /* the descriptor name the plugin must have, or NULL for any */
    const char *plugin;
    /* what main() says when the plugin is not the one wanted */
    const char *mismatch;
    /* the backend's configuration name and key-file group */
    const char *config_name;
    const char *config_group;
    /* what the line printed at --cancel-at says before the percentage */
    const char *cancel_label;
    /* the job reports what it saves ("save key=… [value=…]" lines) */
    gboolean print_saves;
    /* print the backend's own fields of a "vm" line (after id, name and
     * host), of a "disk" line (after vm, id and path) and of a "nic" line
     * (after vm, id, mac and network); NULL: none */
    void (*vm_fields)(const VmshiftVm *vm);
    void (*disk_fields)(const VmshiftDisk *disk);
    void (*nic_fields)(const VmshiftNic *nic);
    /* runs one operation */
    DriveRunFunc run;
} DriveBackend;

/* Output: a " KEY=\"VALUE\"" field (escaped; NULL prints "(null)"), a
 * " KEY=NUMBER" field, and a " KEY=\"A,B,…\"" field of a string list. */
void drive_kv(const char *k, const char *v);
void drive_kvu(const char *k, guint64 v);
void drive_kv_list(const char *k, GPtrArray *a);

/* Prints a "vm" line, a "disk" line for each of its disks and a "nic" line
 * for each of its NICs, with the backend's own fields. */
void drive_print_vm(const VmshiftVm *vm);

/* The hooks every job of the driver runs with: "phase", "log", the
 * --cancel-at trigger and, if the backend wants them, "save" lines. */
const VmshiftJobHooks *drive_job_hooks(void);

/* Parses "live|cold|storage VM [DEST] [OPTIONS]": --path DS,
 * --disk-path DISK=DS, --network NIC=NET, --start, --force,
 * --cancel-at PCT (for drive_job_hooks()) and --acl (sets *acl; NULL
 * refuses it). */
VmshiftMigrationSpec *drive_parse_spec(int argc, char **argv, gboolean *acl, GError **error);

/* Prints "job ok=… percent=… location=… detail=…" and a "result" line for
 * each of @job's results. */
void drive_print_job(VmshiftJob *job, gboolean ok);

/* vms [HOST] | vm NAME | checkpoint VM | migrate SPEC [--acl] | acl VM;
 * anything else is an unknown operation. */
gboolean drive_run_common(const VmshiftBackendOps *ops, VmshiftBackend *b, const char *op, int argc,
                          char **argv, GError **error);

/* DRIVER PLUGIN.so CONF OP [ARGS]: loads the plugin, opens a backend from
 * CONF, runs OP, closes the backend; returns the exit status. */
int drive_main(const DriveBackend *backend, int argc, char **argv);

G_END_DECLS

#endif /* VMSHIFT_TESTS_DRIVE_H */
