/*
 * vmshift SDK: the plain objects that cross the boundary between the host and
 * a plugin.
 *
 * Include <vmshift/vmshift.h>, not this file.
 *
 * Ownership: every object is allocated with its vmshift_*_new() function and
 * freed with its vmshift_*_free() function, both in libvmshift-sdk, so the
 * allocation always has the size of the newest library loaded in the process.
 * Strings are g_malloc()'d and owned by the object; lists are GPtrArrays
 * created with the element type's free function, so g_ptr_array_unref()
 * frees their elements. An object returned by a plugin operation belongs to
 * the caller.
 *
 * Growth: members are only ever appended. Every object starts with
 * @struct_size, set by vmshift_*_new() to the size the library was compiled
 * with. Code that reads an object allocated by someone else must use
 * VMSHIFT_HAS_FIELD() before touching a member added after ABI 1.0.
 * Enumerations are stored in guint32 members, never in enum-typed members,
 * so their size cannot change.
 */
#if !defined(VMSHIFT_INSIDE) && !defined(VMSHIFT_COMPILATION)
#error "Only <vmshift/vmshift.h> can be included directly."
#endif

#ifndef VMSHIFT_TYPES_H
#define VMSHIFT_TYPES_H

#include <glib.h>
#include <stddef.h>

G_BEGIN_DECLS

/**
 * VMSHIFT_HAS_FIELD:
 * @obj: pointer to an SDK object that starts with guint32 struct_size
 * @member: member name
 *
 * TRUE when @obj was allocated by code that knew @member, i.e. when its
 * struct_size covers the member entirely.
 */
#define VMSHIFT_HAS_FIELD(obj, member) \
    ((obj)->struct_size >= offsetof(__typeof__(*(obj)), member) + sizeof((obj)->member))

/**
 * VmshiftPowerState:
 * @VMSHIFT_POWER_UNKNOWN: the backend could not tell.
 * @VMSHIFT_POWER_RUNNING: running (includes "running, migrating").
 * @VMSHIFT_POWER_STOPPED: powered off.
 * @VMSHIFT_POWER_PAUSED: paused / stopped by the hypervisor, memory kept.
 * @VMSHIFT_POWER_SUSPENDED: saved to disk (Hyper-V "Saved", vSphere
 *   "suspended", QEMU managed save).
 */
typedef enum {
    VMSHIFT_POWER_UNKNOWN = 0,
    VMSHIFT_POWER_RUNNING = 1,
    VMSHIFT_POWER_STOPPED = 2,
    VMSHIFT_POWER_PAUSED = 3,
    VMSHIFT_POWER_SUSPENDED = 4,
} VmshiftPowerState;

/**
 * VmshiftHostStatus:
 * @VMSHIFT_HOST_OK: connected and accepting VMs.
 * @VMSHIFT_HOST_LIMITED: connected but degraded (see status_detail); VMs may
 *   still be placed, with a warning.
 * @VMSHIFT_HOST_MAINTENANCE: in maintenance mode; not a migration target.
 * @VMSHIFT_HOST_DISCONNECTED: not reachable.
 * @VMSHIFT_HOST_UNKNOWN: the backend could not tell.
 */
typedef enum {
    VMSHIFT_HOST_OK = 0,
    VMSHIFT_HOST_LIMITED = 1,
    VMSHIFT_HOST_MAINTENANCE = 2,
    VMSHIFT_HOST_DISCONNECTED = 3,
    VMSHIFT_HOST_UNKNOWN = 4,
} VmshiftHostStatus;

/**
 * VmshiftHost:
 * @struct_size: sizeof(VmshiftHost) as compiled into the allocating library.
 * @id: the backend's stable identifier (moref, GUID, libvirt UUID).
 * @name: the name people use; unique within the backend.
 * @status: a #VmshiftHostStatus.
 * @status_detail: why the status is not OK, or NULL.
 * @hypervisor: product and version, e.g. "QEMU 7.2.22", "ESXi 8.0.2".
 * @cpu_model: CPU model name, or NULL.
 * @cpu_count: logical CPUs.
 * @cpu_usage_percent: CPU use 0–100, or -1 when unknown.
 * @memory_total: bytes of memory.
 * @memory_free: bytes of memory available for new VMs.
 * @migration_address: address the host receives migrations on, or NULL.
 * @default_vm_path: the host's default directory for VM files, or NULL.
 * @san_ids: identifiers of the shared storage this host reaches (datastore
 *   ids, SAN/CSV names); used to decide whether a transfer can use the SAN.
 *   NULL or empty when none.
 *
 * A host (hypervisor) a backend manages.
 */
typedef struct {
    guint32 struct_size;
    guint32 status;
    char *id;
    char *name;
    char *status_detail;
    char *hypervisor;
    char *cpu_model;
    guint32 cpu_count;
    gint32 cpu_usage_percent;
    guint64 memory_total;
    guint64 memory_free;
    char *migration_address;
    char *default_vm_path;
    GPtrArray *san_ids;
    /* Added in ABI 1.0; append new members below. */

    /* ---- ABI 1.2: facts for the host's rules (see vmshift/findings.h) ----
     * @networks: names of the networks a VM's NIC can use on this host;
     *   NULL when the plugin does not say (the host then reads
     *   list_networks() and each network's @hosts).
     * @compat_id: the live-migration compatibility class of this host (CPU
     *   model/feature level and hypervisor version, as the backend judges
     *   it): a running VM moves live only between hosts whose non-NULL
     *   @compat_id are equal; NULL when unknown.
     * Read them only after VMSHIFT_HAS_FIELD(host, compat_id). */
    GPtrArray *networks;
    char *compat_id;
} VmshiftHost;

/**
 * VmshiftDisk:
 * @struct_size: sizeof(VmshiftDisk) as compiled into the allocating library.
 * @id: the disk's id within the VM ("vda", "scsi0:0", a VHD's instance id).
 * @path: the image file or backing object (datastore path "[ds1] vm/vm.vmdk",
 *   "C:\\VMs\\vm.vhdx", "/var/lib/vm/vm.qcow2").
 * @format: "qcow2", "raw", "vmdk", "vhdx", "vhd", or NULL.
 * @capacity: virtual size in bytes.
 * @allocation: bytes actually used on storage (0 when unknown).
 * @volume: id or name of the volume / datastore that holds it, or NULL.
 * @backing_chain: paths of backing files, nearest first (snapshots,
 *   differencing disks, qcow2 overlays); NULL or empty for none.
 *
 * One virtual disk of a VM.
 */
typedef struct {
    guint32 struct_size;
    guint32 reserved0;
    char *id;
    char *path;
    char *format;
    guint64 capacity;
    guint64 allocation;
    char *volume;
    GPtrArray *backing_chain;

    /* ---- ABI 1.2 ----
     * @size_known: #VmshiftDiskSizeKnown bits saying which of @capacity and
     *   @allocation the backend knows (so that a known 0 differs from "not
     *   reported"). When 0 (a plugin built before 1.2), a non-zero value is
     *   taken as known and 0 as unknown. */
    guint32 size_known;
    guint32 reserved1;

    /* ---- ABI 1.4: moves between backends ----
     * @bus: the controller the guest sees the disk on: "ide", "sata",
     *   "scsi", "virtio" or "nvme"; NULL when unknown.
     * @boot_order: 1 for the disk the VM boots from, 2 for the next, ...;
     *   0 when it is not in the boot order or the backend does not say. */
    char *bus;
    guint32 boot_order;
    guint32 reserved2;
} VmshiftDisk;

/**
 * VmshiftDiskSizeKnown:
 * @VMSHIFT_DISK_CAPACITY_KNOWN: VmshiftDisk.capacity is what the backend reported.
 * @VMSHIFT_DISK_ALLOCATION_KNOWN: VmshiftDisk.allocation is what the backend reported.
 *
 * Since: ABI 1.2.
 */
typedef enum {
    VMSHIFT_DISK_CAPACITY_KNOWN = 1u << 0,
    VMSHIFT_DISK_ALLOCATION_KNOWN = 1u << 1,
} VmshiftDiskSizeKnown;

/**
 * VmshiftNic:
 * @struct_size: sizeof(VmshiftNic) as compiled into the allocating library.
 * @id: the NIC's id within the VM ("net0", "Network adapter 1", device key).
 * @mac: MAC address "52:54:00:12:34:56", or NULL.
 * @network: name of the network / switch / port group / bridge it is
 *   connected to, or NULL when disconnected.
 * @model: device model ("virtio-net-pci", "vmxnet3", "synthetic"), or NULL.
 *
 * One network adapter of a VM.
 */
typedef struct {
    guint32 struct_size;
    guint32 reserved0;
    char *id;
    char *mac;
    char *network;
    char *model;
} VmshiftNic;

/**
 * VmshiftVm:
 * @struct_size: sizeof(VmshiftVm) as compiled into the allocating library.
 * @power_state: a #VmshiftPowerState.
 * @id: the backend's stable identifier (UUID, GUID, moref).
 * @name: the name people use; unique within the backend.
 * @host: name of the host it is registered on (or running on).
 * @vcpus: number of virtual CPUs.
 * @memory: bytes of memory.
 * @config_path: where the VM's own files live (definition file's directory,
 *   datastore folder, Hyper-V configuration folder), or NULL.
 * @disks: #VmshiftDisk elements (never NULL after vmshift_vm_new()).
 * @nics: #VmshiftNic elements (never NULL after vmshift_vm_new()).
 * @snapshot_count: number of snapshots / checkpoints.
 * @status_detail: the backend's own word on the VM's state when it adds
 *   something (Hyper-V OperationalStatus, "consolidation needed"), or NULL.
 *
 * A virtual machine.
 */
typedef struct {
    guint32 struct_size;
    guint32 power_state;
    char *id;
    char *name;
    char *host;
    guint32 vcpus;
    guint32 snapshot_count;
    guint64 memory;
    char *config_path;
    GPtrArray *disks;
    GPtrArray *nics;
    char *status_detail;

    /* ---- ABI 1.4: moves between backends (export_vm fills them) ----
     * @firmware: a #VmshiftFirmware.
     * @guest_os: the guest's OS family, "linux", "windows" or "other", or
     *   NULL when the backend does not know it. */
    guint32 firmware;
    guint32 reserved1;
    char *guest_os;
} VmshiftVm;

/**
 * VmshiftFirmware:
 * @VMSHIFT_FIRMWARE_UNKNOWN: the backend does not say.
 * @VMSHIFT_FIRMWARE_BIOS: legacy BIOS (Hyper-V generation 1).
 * @VMSHIFT_FIRMWARE_UEFI: UEFI (Hyper-V generation 2, OVMF, vSphere efi).
 *
 * Since: ABI 1.4.
 */
typedef enum {
    VMSHIFT_FIRMWARE_UNKNOWN = 0,
    VMSHIFT_FIRMWARE_BIOS = 1,
    VMSHIFT_FIRMWARE_UEFI = 2,
} VmshiftFirmware;

/**
 * VmshiftVolume:
 * @struct_size: sizeof(VmshiftVolume) as compiled into the allocating library.
 * @shared: non-zero when several hosts reach it (SAN, CSV, NFS datastore).
 * @id: the backend's identifier.
 * @name: the name people use.
 * @path: a directory or datastore path VMs can be placed under.
 * @host: the host it belongs to, or NULL for shared volumes.
 * @kind: "datastore", "csv", "directory", "pool", "volume".
 * @capacity: bytes.
 * @free: bytes available.
 * @is_default: non-zero when @path is the host's default VM location.
 * @hosts: names of the hosts that reach a shared volume; NULL when local.
 *
 * A place VM files can live, with its free space.
 */
typedef struct {
    guint32 struct_size;
    guint32 shared;
    char *id;
    char *name;
    char *path;
    char *host;
    char *kind;
    guint64 capacity;
    guint64 free;
    guint32 is_default;
    guint32 reserved0;
    GPtrArray *hosts;

    /* ---- ABI 1.2 ----
     * @free_unknown: non-zero when the backend could not tell @free (it is
     *   then not a real 0). */
    guint32 free_unknown;
    guint32 reserved1;
} VmshiftVolume;

/**
 * VmshiftNetwork:
 * @struct_size: sizeof(VmshiftNetwork) as compiled into the allocating library.
 * @id: the backend's identifier.
 * @name: the name NIC mappings use.
 * @kind: "bridge", "network", "vswitch", "portgroup", "dvportgroup".
 * @hosts: names of the hosts where it exists; NULL or empty means all.
 *
 * A network a NIC can be connected to.
 */
typedef struct {
    guint32 struct_size;
    guint32 reserved0;
    char *id;
    char *name;
    char *kind;
    GPtrArray *hosts;
} VmshiftNetwork;

/**
 * VmshiftSeverity:
 * @VMSHIFT_SEVERITY_INFO: for the record.
 * @VMSHIFT_SEVERITY_WARNING: the migration may proceed with --force.
 * @VMSHIFT_SEVERITY_ERROR: the migration must not proceed.
 */
typedef enum {
    VMSHIFT_SEVERITY_INFO = 0,
    VMSHIFT_SEVERITY_WARNING = 1,
    VMSHIFT_SEVERITY_ERROR = 2,
} VmshiftSeverity;

/**
 * VmshiftFinding:
 * @struct_size: sizeof(VmshiftFinding) as compiled into the allocating library.
 * @severity: a #VmshiftSeverity.
 * @code: a stable, lower-case, dash-separated identifier programs can match
 *   ("host-maintenance", "merge-in-progress", "no-space", "nic-unmapped").
 * @message: one line for people, naming what was seen and where.
 * @subject: what it is about (a disk id, NIC id, host name), or NULL.
 *
 * One result of a validation.
 */
typedef struct {
    guint32 struct_size;
    guint32 severity;
    char *code;
    char *message;
    char *subject;
} VmshiftFinding;

/**
 * VmshiftCheckpointState:
 * @struct_size: sizeof(VmshiftCheckpointState) as compiled into the
 *   allocating library.
 * @merging: non-zero when a checkpoint/snapshot merge is in progress.
 * @detail: what was seen, for people ("snapshot 'pre-patch' is being
 *   removed, started 12:04"; "block-commit job 'commit0' on vda at 41%"),
 *   or NULL when nothing is merging.
 * @percent: progress of the merge 0–100, or -1 when unknown.
 * @started: when the merge started (Unix seconds), or 0 when unknown.
 * @needs_consolidation: non-zero when no merge runs but one is needed
 *   (vSphere consolidationNeeded, orphaned differencing disks).
 *
 * Whether a checkpoint (snapshot) merge is in progress on a VM.
 */
typedef struct {
    guint32 struct_size;
    guint32 merging;
    char *detail;
    gint32 percent;
    guint32 needs_consolidation;
    gint64 started;
} VmshiftCheckpointState;

/**
 * VmshiftSnapshot:
 * @struct_size: sizeof(VmshiftSnapshot) as compiled into the allocating library.
 * @current: non-zero for the snapshot the VM currently runs from.
 * @id: the backend's identifier.
 * @name: its name.
 * @parent: the parent snapshot's id, or NULL.
 * @created: creation time (Unix seconds), or 0.
 *
 * A snapshot / checkpoint of a VM.
 */
typedef struct {
    guint32 struct_size;
    guint32 current;
    char *id;
    char *name;
    char *parent;
    gint64 created;
} VmshiftSnapshot;

/**
 * VmshiftMapping:
 * @struct_size: sizeof(VmshiftMapping).
 * @key: what is mapped (a disk id, a NIC id).
 * @value: where to (a directory or datastore, a network name).
 *
 * One KEY=VALUE pair of a migration spec (`--disk-path`, `--network`).
 */
typedef struct {
    guint32 struct_size;
    guint32 reserved0;
    char *key;
    char *value;
} VmshiftMapping;

/**
 * VmshiftMigrationType:
 * @VMSHIFT_MIGRATION_LIVE: move a running VM to another host without
 *   stopping it (optionally with its storage: see dest_path).
 * @VMSHIFT_MIGRATION_COLD: move a stopped VM (definition and, with
 *   dest_path, its disks) to another host.
 * @VMSHIFT_MIGRATION_STORAGE: move a VM's storage on its current host;
 *   dest_host is NULL. Running VMs are moved live where the backend can.
 */
typedef enum {
    VMSHIFT_MIGRATION_LIVE = 0,
    VMSHIFT_MIGRATION_COLD = 1,
    VMSHIFT_MIGRATION_STORAGE = 2,
} VmshiftMigrationType;

/**
 * VmshiftTransfer:
 * @VMSHIFT_TRANSFER_AUTO: the backend chooses.
 * @VMSHIFT_TRANSFER_SAN: storage stays on shared storage; only the VM moves.
 * @VMSHIFT_TRANSFER_NETWORK: disks are copied over the network.
 */
typedef enum {
    VMSHIFT_TRANSFER_AUTO = 0,
    VMSHIFT_TRANSFER_SAN = 1,
    VMSHIFT_TRANSFER_NETWORK = 2,
} VmshiftTransfer;

/**
 * VmshiftMigrationSpec:
 * @struct_size: sizeof(VmshiftMigrationSpec) as compiled into the allocating
 *   library; plugins check VMSHIFT_HAS_FIELD() before reading members added
 *   after ABI 1.0.
 * @type: a #VmshiftMigrationType.
 * @vm: the VM's name or id, as the backend knows it.
 * @dest_host: the destination host's name; NULL for
 *   VMSHIFT_MIGRATION_STORAGE.
 * @dest_path: the destination directory / datastore for the VM's files and
 *   disks, or NULL to leave storage where it is (a pure host move).
 * @disk_paths: #VmshiftMapping elements, disk id → directory / datastore,
 *   overriding @dest_path per disk (never NULL after vmshift_migration_spec_new()).
 * @networks: #VmshiftMapping elements, NIC id → destination network
 *   (never NULL after vmshift_migration_spec_new()).
 * @transfer: a #VmshiftTransfer.
 * @start: non-zero: power the VM on at the destination after a cold migration.
 * @force: non-zero: the person accepted the warnings of validation.
 * @options: backend tuning as a GVariant of type a{sv} (e.g. "max-bandwidth"
 *   (t), "postcopy" (b)), or NULL. A plugin answers unknown keys with
 *   VMSHIFT_ERROR_INVALID_ARGUMENT.
 *
 * What to migrate and where to. Built by the host; read-only for plugins.
 */
typedef struct {
    guint32 struct_size;
    guint32 type;
    char *vm;
    char *dest_host;
    char *dest_path;
    GPtrArray *disk_paths;
    GPtrArray *networks;
    guint32 transfer;
    guint32 start;
    guint32 force;
    guint32 reserved0;
    GVariant *options;

    /* ---- ABI 1.3: scheduled switchover ----
     * @switchover_at: when not 0, the time (Unix seconds, UTC) before which
     *   the VM must not switch over. The host sets it only for plugins
     *   whose descriptor has VMSHIFT_PLUGIN_SWITCHOVER_AT (others get 0, and
     *   the host calls their migrate() at that time instead). Such a plugin
     *   copies ahead where it can keep the copy synchronised (a block
     *   mirror), calls vmshift_job_hold_switchover() right before its point
     *   of no return, and, where it cannot copy ahead, calls it before it
     *   changes anything. Read it only after
     *   VMSHIFT_HAS_FIELD(spec, switchover_at). */
    gint64 switchover_at;

    /* ---- ABI 1.4: moves between backends ----
     * @dest_backend: the backend the VM moves to when it is not the one it
     *   is on (`--to BACKEND:HOST`), else NULL. Only check_import() and
     *   import_vm() of the destination's plugin see a spec with it set.
     * @source_vm: for check_import() and import_vm(): the VM to define, as
     *   the source's export_vm() described it, with the host's mapping
     *   applied (NIC networks, disk ids); NULL otherwise. */
    char *dest_backend;
    VmshiftVm *source_vm;
} VmshiftMigrationSpec;

/**
 * VmshiftChangeKind:
 * @VMSHIFT_CHANGE_DISK_ADDED: a disk was attached.
 * @VMSHIFT_CHANGE_DISK_REMOVED: a disk was detached.
 * @VMSHIFT_CHANGE_SNAPSHOT_TAKEN: a snapshot / checkpoint was created.
 * @VMSHIFT_CHANGE_SNAPSHOT_REMOVED: a snapshot was removed or merged.
 * @VMSHIFT_CHANGE_POWER: the power state changed.
 * @VMSHIFT_CHANGE_HOST: the VM moved to another host.
 * @VMSHIFT_CHANGE_OTHER: anything else worth reporting.
 */
typedef enum {
    VMSHIFT_CHANGE_DISK_ADDED = 0,
    VMSHIFT_CHANGE_DISK_REMOVED = 1,
    VMSHIFT_CHANGE_SNAPSHOT_TAKEN = 2,
    VMSHIFT_CHANGE_SNAPSHOT_REMOVED = 3,
    VMSHIFT_CHANGE_POWER = 4,
    VMSHIFT_CHANGE_HOST = 5,
    VMSHIFT_CHANGE_OTHER = 6,
} VmshiftChangeKind;

/**
 * VmshiftChange:
 * @struct_size: sizeof(VmshiftChange).
 * @kind: a #VmshiftChangeKind.
 * @vm: the VM's name.
 * @subject: the disk id, snapshot name or host concerned, or NULL.
 * @detail: one line for people.
 *
 * A change to a VM seen by watch_changes.
 */
typedef struct {
    guint32 struct_size;
    guint32 kind;
    char *vm;
    char *subject;
    char *detail;
} VmshiftChange;

/**
 * VmshiftGuestNic:
 * @struct_size: sizeof(VmshiftGuestNic).
 * @prefix_len: network prefix length (24 for 255.255.255.0).
 * @nic: the NIC id.
 * @address: the new IPv4/IPv6 address, or NULL for DHCP.
 * @gateway: the default gateway, or NULL.
 * @dns: DNS servers (strings), or NULL.
 *
 * New guest network settings for one NIC (customize_guest).
 */
typedef struct {
    guint32 struct_size;
    guint32 prefix_len;
    char *nic;
    char *address;
    char *gateway;
    GPtrArray *dns;
} VmshiftGuestNic;

/* Constructors: zero-filled, struct_size set, lists created empty where the
 * documentation above says "never NULL". */
VmshiftHost *vmshift_host_new(void);
VmshiftDisk *vmshift_disk_new(void);
VmshiftNic *vmshift_nic_new(void);
VmshiftVm *vmshift_vm_new(void);
VmshiftVolume *vmshift_volume_new(void);
VmshiftNetwork *vmshift_network_new(void);
VmshiftFinding *vmshift_finding_new(VmshiftSeverity severity, const char *code, const char *subject,
                                    const char *format, ...) G_GNUC_PRINTF(4, 5);
VmshiftCheckpointState *vmshift_checkpoint_state_new(void);
VmshiftSnapshot *vmshift_snapshot_new(void);
VmshiftMapping *vmshift_mapping_new(const char *key, const char *value);
VmshiftMigrationSpec *vmshift_migration_spec_new(void);
VmshiftChange *vmshift_change_new(VmshiftChangeKind kind, const char *vm, const char *subject,
                                  const char *detail);
VmshiftGuestNic *vmshift_guest_nic_new(void);

/* Destructors: free the object, its strings and its lists; NULL is ignored. */
void vmshift_host_free(VmshiftHost *host);
void vmshift_disk_free(VmshiftDisk *disk);
void vmshift_nic_free(VmshiftNic *nic);
void vmshift_vm_free(VmshiftVm *vm);
void vmshift_volume_free(VmshiftVolume *volume);
void vmshift_network_free(VmshiftNetwork *network);
void vmshift_finding_free(VmshiftFinding *finding);
void vmshift_checkpoint_state_free(VmshiftCheckpointState *state);
void vmshift_snapshot_free(VmshiftSnapshot *snapshot);
void vmshift_mapping_free(VmshiftMapping *mapping);
void vmshift_migration_spec_free(VmshiftMigrationSpec *spec);
void vmshift_change_free(VmshiftChange *change);
void vmshift_guest_nic_free(VmshiftGuestNic *nic);

/**
 * vmshift_list_new:
 * @free_func: the element type's free function (e.g. vmshift_vm_free)
 *
 * Returns: a new empty GPtrArray that frees its elements with @free_func.
 *   Plugins return lists built this way.
 */
GPtrArray *vmshift_list_new(GDestroyNotify free_func);

/**
 * vmshift_string_list_new:
 *
 * Returns: a new empty GPtrArray of g_malloc()'d strings, freed with g_free.
 */
GPtrArray *vmshift_string_list_new(void);

/**
 * vmshift_vm_find_disk:
 * @vm: a VM
 * @id: a disk id
 *
 * Returns: (transfer none): the disk of @vm whose id is @id, or NULL.
 */
VmshiftDisk *vmshift_vm_find_disk(const VmshiftVm *vm, const char *id);

/**
 * vmshift_vm_find_nic:
 * @vm: a VM
 * @id: a NIC id
 *
 * Returns: (transfer none): the NIC of @vm whose id is @id, or NULL.
 */
VmshiftNic *vmshift_vm_find_nic(const VmshiftVm *vm, const char *id);

/**
 * vmshift_vm_copy:
 * @vm: a VM, or NULL
 *
 * Returns: a deep copy of @vm (its strings, disks and NICs), freed with
 *   vmshift_vm_free(); NULL for NULL. Members added to #VmshiftVm later are
 *   copied too. NULL disk or NIC lists become empty lists.
 *
 * Since: 1.1 (symbol version VMSHIFT_SDK_1.1)
 */
VmshiftVm *vmshift_vm_copy(const VmshiftVm *vm);

/**
 * vmshift_disk_copy:
 * @disk: a disk, or NULL
 *
 * Returns: a deep copy of @disk, freed with vmshift_disk_free(); NULL for NULL.
 *
 * Since: 1.1 (symbol version VMSHIFT_SDK_1.1)
 */
VmshiftDisk *vmshift_disk_copy(const VmshiftDisk *disk);

/**
 * vmshift_nic_copy:
 * @nic: a NIC, or NULL
 *
 * Returns: a deep copy of @nic, freed with vmshift_nic_free(); NULL for NULL.
 *
 * Since: 1.1 (symbol version VMSHIFT_SDK_1.1)
 */
VmshiftNic *vmshift_nic_copy(const VmshiftNic *nic);

/**
 * vmshift_migration_spec_copy:
 * @spec: a migration spec
 *
 * Returns: a deep copy of @spec, freed with vmshift_migration_spec_free().
 */
VmshiftMigrationSpec *vmshift_migration_spec_copy(const VmshiftMigrationSpec *spec);

/**
 * vmshift_migration_spec_moves_storage:
 * @spec: a migration spec
 *
 * Returns: TRUE when @spec moves any disk or VM file (storage-only
 *   migrations, or host migrations with dest_path or disk_paths).
 */
gboolean vmshift_migration_spec_moves_storage(const VmshiftMigrationSpec *spec);

/**
 * vmshift_migration_spec_disk_dir:
 * @spec: a migration spec
 * @disk_id: a disk id
 *
 * Returns: (transfer none): the directory @disk_id goes to: its --disk-path
 *   mapping if any, else dest_path, else NULL (the disk stays where it is).
 */
const char *vmshift_migration_spec_disk_dir(const VmshiftMigrationSpec *spec, const char *disk_id);

/**
 * vmshift_migration_spec_network_for:
 * @spec: a migration spec
 * @nic_id: a NIC id
 *
 * Returns: (transfer none): the destination network mapped for @nic_id, or
 *   NULL when the NIC keeps its network.
 */
const char *vmshift_migration_spec_network_for(const VmshiftMigrationSpec *spec,
                                               const char *nic_id);

/**
 * vmshift_power_state_name:
 * @state: a #VmshiftPowerState
 *
 * Returns: "running", "stopped", "paused", "suspended" or "unknown" (static).
 */
const char *vmshift_power_state_name(guint32 state);

/**
 * vmshift_host_status_name:
 * @status: a #VmshiftHostStatus
 *
 * Returns: "ok", "limited", "maintenance", "disconnected" or "unknown".
 */
const char *vmshift_host_status_name(guint32 status);

/**
 * vmshift_severity_name:
 * @severity: a #VmshiftSeverity
 *
 * Returns: "info", "warning" or "error".
 */
const char *vmshift_severity_name(guint32 severity);

/**
 * vmshift_migration_type_name:
 * @type: a #VmshiftMigrationType
 *
 * Returns: "live", "cold" or "storage".
 */
const char *vmshift_migration_type_name(guint32 type);

/**
 * vmshift_change_kind_name:
 * @kind: a #VmshiftChangeKind
 *
 * Returns: "disk-added", "disk-removed", "snapshot-taken", … (static).
 */
const char *vmshift_change_kind_name(guint32 kind);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(VmshiftHost, vmshift_host_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(VmshiftDisk, vmshift_disk_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(VmshiftNic, vmshift_nic_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(VmshiftVm, vmshift_vm_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(VmshiftVolume, vmshift_volume_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(VmshiftNetwork, vmshift_network_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(VmshiftFinding, vmshift_finding_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(VmshiftCheckpointState, vmshift_checkpoint_state_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(VmshiftSnapshot, vmshift_snapshot_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(VmshiftMapping, vmshift_mapping_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(VmshiftMigrationSpec, vmshift_migration_spec_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(VmshiftChange, vmshift_change_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(VmshiftGuestNic, vmshift_guest_nic_free)

G_END_DECLS

#endif /* VMSHIFT_TYPES_H */
