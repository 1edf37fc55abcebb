/*
 * vmshift SDK: the plugin ABI — the descriptor a plugin exports and the table
 * of operations the host calls.
 *
 * Include <vmshift/vmshift.h>, not this file.
 *
 * A plugin is a shared object NAME.so in the host's plugin directory
 * (`pkg-config --variable=plugindir vmshift-sdk`) that exports exactly one
 * symbol, vmshift_plugin_entry(), returning a pointer to a constant
 * VmshiftPluginDescriptor. Use VMSHIFT_PLUGIN_DEFINE() to emit both; it stamps
 * the ABI version and struct sizes from the headers the plugin is compiled
 * against, so they cannot be wrong.
 *
 * ABI rules (the SQLite sqlite3_vfs idea):
 *  - Every structure starts with its size. The host reads only the members
 *    that size covers, so a plugin built against an older header keeps
 *    loading when the structures grow.
 *  - Members are only appended, never moved, retyped or reused; each block
 *    says which ABI minor added it. A change that breaks this bumps
 *    VMSHIFT_ABI_MAJOR, and the host refuses plugins of another major.
 *  - A plugin built for a newer minor than the host provides is refused too.
 *  - A NULL operation means "not supported": the host reports
 *    "backend B (plugin P) does not support OPERATION" and never calls it.
 *
 * Threads (see sdk/THREADS.md): query operations (list_*, get_vm,
 * checkpoint_state, check_migration) may be called concurrently on one
 * backend handle from several threads unless the descriptor sets
 * VMSHIFT_PLUGIN_SERIALIZE, in which case the host serialises every call on a
 * handle. migrate, recreate_acl, repair and customize_guest run on the job's
 * worker thread; the host runs at most one of them per VM at a time. Plugins
 * keep no global mutable state: everything lives in the backend handle.
 *
 * Errors: every operation returns a pointer or gboolean and reports failure
 * through @error in the VMSHIFT_ERROR domain (cancellation:
 * G_IO_ERROR_CANCELLED). On success @error is left untouched.
 *
 * Flags: every operation takes a guint32 @flags, 0 in ABI 1.0. Operations
 * start with vmshift_check_flags() so that flags a newer host sets are
 * refused rather than ignored.
 */
#if !defined(VMSHIFT_INSIDE) && !defined(VMSHIFT_COMPILATION)
#error "Only <vmshift/vmshift.h> can be included directly."
#endif

#ifndef VMSHIFT_PLUGIN_H
#define VMSHIFT_PLUGIN_H

#include <gio/gio.h>
#include <vmshift/version.h>
#include <vmshift/types.h>
#include <vmshift/job.h>
#include <vmshift/conf.h>

G_BEGIN_DECLS

/**
 * VmshiftBackend:
 *
 * A plugin's handle for one configured backend, created by open() and
 * destroyed by close(). Its layout is the plugin's own business.
 */
typedef struct _VmshiftBackend VmshiftBackend;

/**
 * VmshiftChangeFunc:
 * @change: (transfer none): what changed
 * @user_data: the caller's data
 *
 * Called by watch_changes() for each change seen.
 */
typedef void (*VmshiftChangeFunc)(const VmshiftChange *change, gpointer user_data);

/**
 * VmshiftBackendOps:
 *
 * The operations a plugin implements. Any member after @open and @close may
 * be NULL ("not supported").
 */
typedef struct {
    /**
     * struct_size: sizeof(VmshiftBackendOps) as the plugin was compiled.
     * Grows independently of the descriptor.
     */
    guint32 struct_size;
    guint32 reserved0;

    /* ---- ABI 1.0 ---------------------------------------------------- */

    /**
     * open: read the configuration and make the handle; do not wait on the
     * network (`vmshift backends` opens every backend and must answer at
     * once): connect, authenticate and verify TLS at the first operation
     * that needs the host, guarded (operations may run concurrently), and
     * report a failure there in one line naming the backend and the host.
     * @config is valid until close() returns. May decline with VMSHIFT_ERROR_NOT_APPLICABLE, which
     * the host shows as "not applicable", not as a failure.
     * Returns: the handle, or NULL with @error set. Mandatory.
     */
    VmshiftBackend *(*open)(const VmshiftConfig *config, guint32 flags, GError **error);

    /** close: disconnect and free @backend. Mandatory. */
    void (*close)(VmshiftBackend *backend);

    /** list_hosts: Returns: a list of VmshiftHost (vmshift_list_new()). */
    GPtrArray *(*list_hosts)(VmshiftBackend *backend, guint32 flags, GError **error);

    /**
     * list_vms: @host: (nullable): restrict to this host's VMs.
     * Returns: a list of VmshiftVm, with disks and NICs filled.
     */
    GPtrArray *(*list_vms)(VmshiftBackend *backend, const char *host, guint32 flags,
                           GError **error);

    /**
     * get_vm: @vm: a VM name or id.
     * Returns: the VM, or NULL with VMSHIFT_ERROR_NOT_FOUND.
     */
    VmshiftVm *(*get_vm)(VmshiftBackend *backend, const char *vm, guint32 flags, GError **error);

    /** list_networks: @host: (nullable). Returns: a list of VmshiftNetwork. */
    GPtrArray *(*list_networks)(VmshiftBackend *backend, const char *host, guint32 flags,
                                GError **error);

    /**
     * list_volumes: @host: (nullable). Returns: a list of VmshiftVolume
     * (datastores, CSVs, storage pools, directories) with free space; the
     * host's default VM location has is_default set.
     */
    GPtrArray *(*list_volumes)(VmshiftBackend *backend, const char *host, guint32 flags,
                               GError **error);

    /**
     * checkpoint_state: whether a checkpoint/snapshot merge is in progress
     * on @vm (Hyper-V merging disks, vSphere snapshot removal or
     * consolidation, QEMU block-commit/stream).
     * Returns: the state (merging = 0 when none), or NULL with @error set.
     */
    VmshiftCheckpointState *(*checkpoint_state)(VmshiftBackend *backend, const char *vm,
                                                guint32 flags, GError **error);

    /**
     * check_migration: backend-specific validation of @spec: power state
     * for the type, destination status and compatibility, space, networks,
     * disk paths, merges. Must not change anything.
     * Returns: a list of VmshiftFinding (empty when all is well), or NULL
     *   with @error set when validation itself could not run.
     */
    GPtrArray *(*check_migration)(VmshiftBackend *backend, const VmshiftMigrationSpec *spec,
                                  guint32 flags, GError **error);

    /**
     * migrate: run @spec, reporting through @job (phases in order,
     * progress, bytes, location) and honouring its cancellable. On failure
     * or cancellation the VM runs in exactly one place, recorded with
     * vmshift_job_set_location(). The host calls check_migration() first
     * and recreate_acl() afterwards when storage moved; a plugin does not
     * need to repeat either.
     * Returns: TRUE when the VM runs (or, for cold migrations, is
     *   registered) at the destination.
     */
    gboolean (*migrate)(VmshiftBackend *backend, const VmshiftMigrationSpec *spec, VmshiftJob *job,
                        guint32 flags, GError **error);

    /**
     * recreate_acl: re-apply the access rules @vm's files and objects need
     * at their current place (Hyper-V: NT VIRTUAL MACHINE\{id} on VHDs and
     * configuration; KVM: owner, mode, POSIX ACLs, SELinux label for the
     * QEMU user; vSphere: entity permissions), replacing changes made
     * outside vmshift. Report each change with vmshift_job_log() and a
     * summary with vmshift_job_set_result(job, "acl", …).
     */
    gboolean (*recreate_acl)(VmshiftBackend *backend, const char *vm, VmshiftJob *job,
                             guint32 flags, GError **error);

    /** list_snapshots: Returns: a list of VmshiftSnapshot. Optional. */
    GPtrArray *(*list_snapshots)(VmshiftBackend *backend, const char *vm, guint32 flags,
                                 GError **error);

    /**
     * watch_changes: block until @cancellable is cancelled, calling @func
     * for each disk added/removed, snapshot taken, power or host change on
     * @vm. Returns FALSE with G_IO_ERROR_CANCELLED when cancelled, or with
     * another error when watching failed. Optional.
     */
    gboolean (*watch_changes)(VmshiftBackend *backend, const char *vm, VmshiftChangeFunc func,
                              gpointer user_data, GCancellable *cancellable, guint32 flags,
                              GError **error);

    /**
     * customize_guest: set new guest network settings (a list of
     * VmshiftGuestNic) after a move. Optional.
     */
    gboolean (*customize_guest)(VmshiftBackend *backend, const char *vm, GPtrArray *nics,
                                VmshiftJob *job, guint32 flags, GError **error);

    /**
     * repair: bring an interrupted or failed job's VM back to a consistent
     * state — resume it if it was past the point of no return, otherwise
     * roll it back so the VM runs only at the source — using
     * vmshift_job_get_spec(), vmshift_job_get_phase() and the data saved
     * with vmshift_job_save(). Records the outcome with
     * vmshift_job_set_location() and a "repair" result ("rolled-back",
     * "resumed", "nothing-to-do"). Optional; without it the host can only
     * mark such jobs as needing manual attention.
     */
    gboolean (*repair)(VmshiftBackend *backend, VmshiftJob *job, guint32 flags, GError **error);

    /* Append members for ABI 1.1 and later below this line, each block
     * marked with the minor that added it. */

    /* ---- ABI 1.2: recovery (`vmshift job repair --force-cleanup`) ---- */

    /**
     * cleanup: remove what a failed, cancelled or interrupted job left
     * behind on either side (half-copied disks, a paused or incoming VM that
     * never took over, temporary directories), using
     * vmshift_job_get_spec() and the data saved with vmshift_job_save().
     * It never touches the VM where it runs: the VM's own files, its
     * running process or registration stay as they are, and anything that
     * cannot be told apart from them is left in place with a warning. Logs
     * each removal with vmshift_job_log() and sets a "cleanup" result
     * ("N item(s) removed", "nothing left"). Optional; without it the host
     * says "does not support 'cleanup'".
     */
    gboolean (*cleanup)(VmshiftBackend *backend, VmshiftJob *job, guint32 flags, GError **error);

    /* ---- ABI 1.4: moves between backends (`migrate --to BACKEND:HOST`) ----
     * A stopped VM moves from one backend to another in four steps the host
     * runs and journals: the source describes it (export_vm), the
     * destination defines it and writes its disks from the source's streams
     * (import_vm), the host reads every disk back at the destination
     * (open_disk) and compares it with what the source gave, and only then
     * is the source left off or removed (remove_vm). A failure before that
     * removes the partial destination with remove_vm() and leaves the source
     * as it was. A plugin with export_vm and open_disk can be a source; one
     * with import_vm, open_disk and remove_vm a destination. */

    /**
     * export_vm: describe the stopped VM @vm for another backend: name,
     * vcpus, memory, firmware, guest_os, and its disks (id, capacity in
     * guest-visible bytes, format, bus, boot_order) and NICs (id, mac,
     * network, model). Must not change anything.
     * Returns: the description, or NULL with VMSHIFT_ERROR_CONFLICT for a
     *   VM that is not off.
     */
    VmshiftVm *(*export_vm)(VmshiftBackend *backend, const char *vm, guint32 flags, GError **error);

    /**
     * open_disk: open the disk @disk_id of the stopped VM @vm for reading
     * as its guest-visible bytes (raw, the disk's capacity of them),
     * whatever format it is stored in. The host uses it on the source to
     * copy the disk and on the destination to verify the copy.
     * Returns: (transfer full): the stream, or NULL with @error set.
     */
    GInputStream *(*open_disk)(VmshiftBackend *backend, const char *vm, const char *disk_id,
                               GCancellable *cancellable, guint32 flags, GError **error);

    /**
     * check_import: validate importing spec->source_vm (see
     * VmshiftMigrationSpec.dest_backend) on spec->dest_host under
     * spec->dest_path: the name is free, networks exist, space, and every
     * change the destination forces (a disk bus it lacks, a MAC it cannot
     * keep, firmware, guest drivers the guest may lack) as a warning.
     * Must not change anything.
     * Returns: a list of VmshiftFinding, or NULL with @error set.
     */
    GPtrArray *(*check_import)(VmshiftBackend *backend, const VmshiftMigrationSpec *spec,
                               guint32 flags, GError **error);

    /**
     * import_vm: define spec->source_vm on spec->dest_host (stopped), with
     * its files under spec->dest_path (or the host's default), each disk
     * written from vmshift_job_open_source_disk(). Save what it creates with
     * vmshift_job_save() as it goes, so that remove_vm() and cleanup()
     * find it after a crash, and report bytes with vmshift_job_set_bytes().
     * On failure it removes what it created. The host starts the VM (when
     * asked) only after it verified the disks.
     * Returns: TRUE when the VM is defined and its disks written.
     */
    gboolean (*import_vm)(VmshiftBackend *backend, const VmshiftMigrationSpec *spec,
                          VmshiftJob *job, guint32 flags, GError **error);

    /**
     * remove_vm: unregister the stopped VM @vm and delete its disks and
     * files (a partial import being rolled back, or the source after
     * `--delete-source`). With @job (a job whose import_vm saved data),
     * also removes what a partial import left that is not yet a VM.
     * Refuses a running VM.
     */
    gboolean (*remove_vm)(VmshiftBackend *backend, const char *vm, VmshiftJob *job, guint32 flags,
                          GError **error);

    /** start_vm: power on the VM @vm where it is registered. */
    gboolean (*start_vm)(VmshiftBackend *backend, const char *vm, VmshiftJob *job, guint32 flags,
                         GError **error);
} VmshiftBackendOps;

/**
 * VmshiftPluginFlags:
 * @VMSHIFT_PLUGIN_SERIALIZE: the host must not call operations on one
 *   backend handle concurrently.
 * @VMSHIFT_PLUGIN_LIVE: supports live migration.
 * @VMSHIFT_PLUGIN_COLD: supports cold migration.
 * @VMSHIFT_PLUGIN_STORAGE: supports storage migration.
 * @VMSHIFT_PLUGIN_HOST_AND_STORAGE: supports moving host and storage at once.
 * @VMSHIFT_PLUGIN_SWITCHOVER_AT: (ABI 1.3) honours
 *   VmshiftMigrationSpec.switchover_at: migrate() starts the copy at once
 *   where it can keep it synchronised and calls vmshift_job_hold_switchover()
 *   before its point of no return (before it changes anything where it
 *   cannot copy ahead). Without it the host starts migrate() at the time.
 *
 * Capabilities and requirements a plugin declares in its descriptor.
 */
typedef enum {
    VMSHIFT_PLUGIN_SERIALIZE = 1u << 0,
    VMSHIFT_PLUGIN_LIVE = 1u << 1,
    VMSHIFT_PLUGIN_COLD = 1u << 2,
    VMSHIFT_PLUGIN_STORAGE = 1u << 3,
    VMSHIFT_PLUGIN_HOST_AND_STORAGE = 1u << 4,
    VMSHIFT_PLUGIN_SWITCHOVER_AT = 1u << 5,
} VmshiftPluginFlags;

/**
 * VmshiftPluginDescriptor:
 * @abi_major: VMSHIFT_ABI_MAJOR of the headers the plugin was built with.
 * @abi_minor: VMSHIFT_ABI_MINOR of those headers.
 * @struct_size: sizeof(VmshiftPluginDescriptor) in those headers.
 * @flags: #VmshiftPluginFlags.
 * @name: the plugin's name; must equal its file name without ".so".
 * @version: the plugin's own version.
 * @license: an SPDX licence identifier.
 * @description: one line for `vmshift backends`.
 * @ops: the operations table.
 * @config_keys: (nullable): NULL-terminated list of the configuration keys
 *   the plugin reads besides `plugin` and `enabled`; the host warns about
 *   other keys (typos).
 *
 * What vmshift_plugin_entry() returns. The first three members never move.
 */
typedef struct {
    guint32 abi_major;
    guint32 abi_minor;
    guint32 struct_size;
    guint32 flags;
    const char *name;
    const char *version;
    const char *license;
    const char *description;
    const VmshiftBackendOps *ops;
    const char *const *config_keys;
    /* Append members for ABI 1.1 and later below this line. */
} VmshiftPluginDescriptor;

/**
 * VMSHIFT_PLUGIN_ENTRY_SYMBOL:
 *
 * The name of the one symbol a plugin exports.
 */
#define VMSHIFT_PLUGIN_ENTRY_SYMBOL "vmshift_plugin_entry"

/**
 * VmshiftPluginEntryFunc:
 *
 * The type of vmshift_plugin_entry().
 */
typedef const VmshiftPluginDescriptor *(*VmshiftPluginEntryFunc)(void);

/**
 * VMSHIFT_PLUGIN_EXPORT:
 *
 * Marks the entry point for export from a plugin built with
 * -fvisibility=hidden.
 */
#define VMSHIFT_PLUGIN_EXPORT __attribute__((visibility("default")))

/**
 * VMSHIFT_PLUGIN_DEFINE:
 * @name_: the plugin's name (a string literal, equal to its file name)
 * @version_: the plugin's version (string)
 * @license_: SPDX licence identifier (string)
 * @description_: one line (string)
 * @flags_: #VmshiftPluginFlags
 * @ops_: a `static const VmshiftBackendOps` (its struct_size is set by the
 *   plugin with sizeof; use VMSHIFT_OPS_INIT)
 * @config_keys_: a NULL-terminated `static const char *const[]`, or NULL
 *
 * Defines the plugin's descriptor and its exported vmshift_plugin_entry().
 */
#define VMSHIFT_PLUGIN_DEFINE(name_, version_, license_, description_, flags_, ops_, config_keys_) \
    static const VmshiftPluginDescriptor vmshift_plugin_descriptor_ = {                            \
        .abi_major = VMSHIFT_ABI_MAJOR,                                                            \
        .abi_minor = VMSHIFT_ABI_MINOR,                                                            \
        .struct_size = sizeof(VmshiftPluginDescriptor),                                            \
        .flags = (flags_),                                                                         \
        .name = (name_),                                                                           \
        .version = (version_),                                                                     \
        .license = (license_),                                                                     \
        .description = (description_),                                                             \
        .ops = &(ops_),                                                                            \
        .config_keys = (config_keys_),                                                             \
    };                                                                                             \
    VMSHIFT_PLUGIN_EXPORT const VmshiftPluginDescriptor *vmshift_plugin_entry(void);               \
    VMSHIFT_PLUGIN_EXPORT const VmshiftPluginDescriptor *vmshift_plugin_entry(void)                \
    {                                                                                              \
        return &vmshift_plugin_descriptor_;                                                        \
    }

/**
 * VMSHIFT_OPS_INIT:
 *
 * Designated-initializer prefix for a VmshiftBackendOps:
 * `static const VmshiftBackendOps ops = { VMSHIFT_OPS_INIT, .open = …, };`
 */
#define VMSHIFT_OPS_INIT .struct_size = sizeof(VmshiftBackendOps)

/**
 * VMSHIFT_OPS_HAS:
 * @ops: a VmshiftBackendOps pointer from a loaded plugin
 * @member: an operation's member name
 *
 * TRUE when the table is large enough to hold @member and it is not NULL.
 * The host checks every call with this.
 */
#define VMSHIFT_OPS_HAS(ops, member)                                                   \
    ((ops)->struct_size >= offsetof(VmshiftBackendOps, member) + sizeof((ops)->member) \
     && (ops)->member != NULL)

G_END_DECLS

#endif /* VMSHIFT_PLUGIN_H */
