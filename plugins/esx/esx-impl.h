/*
 * ESX plugin internals that cross files: the inventory of one operation,
 * the migration plan, vSphere tasks, a VM's watched state, the REST
 * (tags) session and the permission records. Each block names the file
 * that defines it; esx.h is the SOAP layer below all of them.
 */
#ifndef VMSHIFT_ESX_IMPL_H
#define VMSHIFT_ESX_IMPL_H

#include "esx.h"

G_BEGIN_DECLS

/* ---- esx-inventory.c: what one operation read ------------------------ */

typedef struct {
    EsxResult *hosts;
    EsxResult *vms;
    EsxResult *datastores;
    EsxResult *networks;
    gboolean want_tasks; /* esx_find_vm: fetch the recent tasks (entity) along */
    gboolean have_tasks; /* vms holds the TaskManager's recent tasks */
} EsxInventory;

void esx_inventory_clear(EsxInventory *inv);
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(EsxInventory, esx_inventory_clear)

/* TaskInfo properties of the merges esx-checkpoint.c looks for. */
extern const char *const esx_merge_task_paths[];
/* { "info.entity" }: what esx_find_vm() fetches of every recent task along
 * with a VM when inv->want_tasks is set (esx-task.c); the merge properties
 * are then read for that VM's tasks only (issue 15: 200 recent tasks per
 * job were most of a bulk move's memory). */
extern const char *const esx_task_entity_paths[];

/* Fills the kinds asked for that @inv does not have yet (hosts, datastores
 * and networks through the handle's cache). */
gboolean esx_inventory_load(VmshiftBackend *be, EsxInventory *inv, gboolean hosts, gboolean vms,
                            gboolean ds, gboolean nets, GCancellable *c, GError **error);
/* The name of object @moref in @r, else @moref itself. */
char *esx_name_of(EsxResult *r, const char *moref);
/* An object by name or moref (@type NULL: any type). */
EsxObject *esx_lookup(EsxResult *r, const char *type, const char *key);
/* The VM @name (name or moref) with all its properties, from inv->vms when
 * loaded, else fetched alone (with the merge tasks when inv->want_tasks). */
EsxObject *esx_find_vm(VmshiftBackend *be, EsxInventory *inv, const char *name, GError **error);
gboolean esx_is_nic_type(const char *type);
/* The network a NIC device's backing is on: (moref, name). */
void esx_nic_network(const xmlNode *dev, EsxResult *nets, char **moref, char **name);
/* The VirtualDisk (or, with @nic, the network adapter) of @vm whose key,
 * label, MAC or file name is @id. */
const xmlNode *esx_find_device(const EsxObject *vm, const char *id, gboolean nic);
/* "[DS] dir/file" → "DS"; NULL when @path does not start with '['. */
char *esx_ds_name_of_path(const char *path);
/* Whether datastore @ds is mounted on @host. */
gboolean esx_ds_on_host(const EsxObject *ds, const EsxObject *host);
/* Adds the snapshots in a VirtualMachineSnapshotInfo tree to *@n. */
void esx_count_snapshots(const xmlNode *list_parent, guint *n);

/* ---- esx-checkpoint.c: snapshots and merges --------------------------- */

/* The VM's snapshots (VmshiftSnapshot *). */
GPtrArray *esx_snapshots_of(const EsxObject *vm);
/* Merges (snapshot removal, consolidation) running on @vm, from the tasks
 * in @inv when it has them. */
VmshiftCheckpointState *esx_checkpoint_state_of(VmshiftBackend *be, const EsxObject *vm,
                                                const EsxInventory *inv, GError **error);

/* ---- esx-plan.c: planning a move -------------------------------------- */

typedef struct {
    char *key; /* device key */
    char *ds;  /* target datastore moref */
    char *ds_name;
} EsxDiskTarget;

typedef struct {
    char *key;
    char *backing; /* the new <backing> fragment */
    char *net_name;
    const xmlNode *device;
} EsxNicTarget;

typedef struct {
    EsxObject *vm;
    char *vm_name;
    char *src_host, *src_host_name;
    char *power;
    EsxObject *dest_host; /* NULL: stays */
    char *dest_host_name;
    char *pool;          /* destination resource pool when the compute resource changes */
    EsxObject *dest_ds;  /* NULL: storage stays */
    GArray *disks;       /* EsxDiskTarget */
    GArray *nics;        /* EsxNicTarget */
    GPtrArray *findings; /* VmshiftFinding */
    guint64 needed;      /* bytes the move needs on the target datastore(s) */
} EsxPlan;

void esx_plan_clear(EsxPlan *p);
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(EsxPlan, esx_plan_clear)

/* Build the plan and the findings; returns FALSE only when planning itself
 * could not run (VM unknown, server unreachable). Objects in @p point into
 * @inv. */
gboolean esx_plan_build(VmshiftBackend *be, const VmshiftMigrationSpec *spec, EsxInventory *inv,
                        EsxPlan *p, GCancellable *c, GError **error);
/* The RelocateVM_Task body of the plan; with @only_disk_key, the body that
 * moves that one disk to datastore @only_disk_ds. */
/* The <backing> fragment for a NIC on network @net (a Network or a
 * DistributedVirtualPortgroup object with its name). */
char *esx_plan_nic_backing(VmshiftBackend *be, EsxObject *net, GError **error);
char *esx_relocate_body(const EsxPlan *p, const char *only_disk_key, const char *only_disk_ds);

/* ---- esx-verify.c: the result of a move, read back ------------------ */

/* Reads the VM again and compares host, power state, home datastore, each
 * disk's datastore and each NIC's network with the plan; sets the job
 * result "verified" (the fields compared). A difference is an error that
 * names the field, what was expected and what the server shows. */
gboolean esx_verify_move(VmshiftBackend *be, const VmshiftMigrationSpec *spec, EsxInventory *inv,
                         const EsxPlan *p, VmshiftJob *job, GError **error);
/* esx_verify_move() on @read, a read of the VM from esx_read_after_move()
 * (NULL: read it now). */
gboolean esx_verify_move_read(VmshiftBackend *be, const VmshiftMigrationSpec *spec,
                              EsxInventory *inv, const EsxPlan *p, VmshiftJob *job,
                              const EsxObject *read, GError **error);
/* The VM after a move with every property the switchover check
 * (esx_vm_state_parse) and the verification use: one round trip. */
EsxObject *esx_read_after_move(VmshiftBackend *be, const char *vm, EsxResult **keep,
                               GError **error);

/* ---- esx-vmstate.c: what a move or a watch compares ------------------- */

typedef struct {
    GHashTable *disks; /* device key → file name of the VirtualDisks */
    guint snapshots;
    char *host;
} EsxVmState;

void esx_vm_state_clear(EsxVmState *s);
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(EsxVmState, esx_vm_state_clear)

extern const char *const esx_vm_state_paths[];
void esx_vm_state_parse(const EsxObject *o, EsxVmState *out, char **power);
/* The VM's state (and power state, when @power is not NULL), read now. */
gboolean esx_vm_state(VmshiftBackend *be, const char *vm, EsxVmState *out, char **power,
                      GError **error);
/* "disk K (FILE) was added/removed": a disk in @now not in @before, or
 * the reverse; NULL when both have the same disks. */
char *esx_disk_diff(const EsxVmState *before, const EsxVmState *now, gboolean *added_out);
/* Where the VM is now, for the job (by asking the server; @fallback is the
 * host named when that fails). */
void esx_report_location(VmshiftBackend *be, EsxInventory *inv, VmshiftJob *job, const char *vm,
                         const char *fallback);

/* ---- esx-task.c: vSphere tasks ---------------------------------------- */

typedef struct {
    char *state;
    gint32 progress;
    char *fault_type;
    char *message;
    char *result;
} EsxTaskInfo;

void esx_task_info_clear(EsxTaskInfo *t);
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(EsxTaskInfo, esx_task_info_clear)

/* The next polling interval in ms: quick first looks, then back off. */
guint esx_next_poll(guint *ms);
/* The VMSHIFT_ERROR code of a task's fault type. */
int esx_task_fault_code(const char *type);
/* A Task object's TaskInfo; a finished task invalidates the handle's cached
 * hosts and datastores. */
gboolean esx_task_parse(VmshiftBackend *be, const char *task, const EsxObject *t, EsxTaskInfo *ti,
                        GError **error);
gboolean esx_task_poll(VmshiftBackend *be, const char *task, EsxTaskInfo *ti, GError **error);
/* Start a *_Task method; returns the task's moref. */
char *esx_start_task(VmshiftBackend *be, const char *what, const char *body, GError **error);
/* esx_start_task() of a task on VM @vm that must not run twice: after a
 * lost reply the VM's recent tasks tell whether it started (logged in
 * @job, nullable). */
char *esx_start_vm_task(VmshiftBackend *be, const char *what, const char *body, const char *vm,
                        VmshiftJob *job, GError **error);
/* esx_start_vm_task() with the VM's tasks before the call already read:
 * the Task objects (with info.entity) in @known, e.g. an inventory's vms
 * when it has_tasks; saves a round trip per call. */
char *esx_start_vm_task_known(VmshiftBackend *be, const char *what, const char *body,
                              const char *vm, const EsxResult *known, VmshiftJob *job,
                              GError **error);
gboolean esx_cancel_task(VmshiftBackend *be, const char *task, GError **error);
/* Wait for a task that needs no progress reporting. */
gboolean esx_wait_task(VmshiftBackend *be, const char *task, const char *what, GError **error);
/* The task's info and the VM's state in one RetrievePropertiesEx. */
gboolean esx_task_poll_vm(VmshiftBackend *be, const char *task, const char *vm, EsxTaskInfo *ti,
                          EsxVmState *now, GError **error);

/* ---- esx-rest.c: vSphere Automation REST (tags) ----------------------- */

/* Whether @error says the server has no REST API (tags are then not
 * carried over, silently). */
gboolean esx_rest_unavailable(const GError *error);
/* The ids of the tags attached to VM @vm. */
GPtrArray *esx_read_tags(VmshiftBackend *be, const char *vm, GError **error);
gboolean esx_attach_tag(VmshiftBackend *be, const char *tag, const char *vm, GError **error);
/* "id\tname" lines for the tags @ids. */
char *esx_read_tag_names(VmshiftBackend *be, GPtrArray *ids);

/* ---- esx-acl.c: permissions and tags kept across a move --------------- */

/* Saves VM @vm's permissions ("acl") and tags ("tags", "tag-names") in the
 * job before the move; FALSE only when a journal write failed. */
gboolean esx_acl_record(VmshiftBackend *be, VmshiftJob *job, const char *vm, const char *vmname,
                        GError **error);
/* The name of tag @id in "id\tname" lines @names, for messages. */
char *esx_tag_label(const char *names, const char *id);

/* ---- esx-guest.c ------------------------------------------------------ */

/* 24 → "255.255.255.0". */
char *esx_prefix_to_mask(guint32 prefix);

/* ---- esx-v2v.c: moves between backends (shared with esx-v2v-import.c) -- */

/* Job keys of an import: "URL\tDATACENTER-MOREF\t[DS] DIR" and the VM name. */
#define ESX_V2V_SAVED_DIR "esx-import-dir"
#define ESX_V2V_SAVED_VM "esx-import-vm"

/* VM @name with what export_vm and open_disk read. */
EsxObject *esx_v2v_read_vm(VmshiftBackend *be, const char *name, EsxResult **keep, GError **error);
/* Datacenters (name, vmFolder, datastore). */
EsxResult *esx_v2v_datacenters(VmshiftBackend *be, GError **error);
EsxObject *esx_v2v_dc_of_ds(VmshiftBackend *be, EsxResult *dcs, const char *ds, GError **error);
/* The single flat extent (file name, sectors) of a VMDK descriptor. */
gboolean esx_vmdk_flat_extent(const char *text, gsize len, char **file, guint64 *sectors,
                              GError **error);
/* "[DS] dir/x.vmdk" → DS and "dir/x.vmdk". */
gboolean esx_split_ds_path(const char *p, char **ds, char **rel);
char *esx_v2v_file_manager(VmshiftBackend *be, GError **error);
/* DeleteDatastoreFile_Task of @ds_path ("[DS] dir") in datacenter @dc_moref. */
gboolean esx_v2v_delete_file(VmshiftBackend *be, const char *dc_moref, const char *ds_path,
                             GError **error);

G_END_DECLS

#endif
