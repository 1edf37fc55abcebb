/*
 * vmshift SDK: the canonical finding codes.
 *
 * Include <vmshift/vmshift.h>, not this file.
 *
 * Every VmshiftFinding carries one of these codes. Each code names exactly
 * one condition, has one severity wherever it is raised, and maps to the
 * rating factor `vmshift rate` shows it under. The host decides most of them
 * itself from the facts plugins report (host status, memory, volumes,
 * networks, checkpoint state, VmshiftHost.compat_id); a plugin's
 * check_migration() reports only what the backend alone can know, with a
 * code of this table (VMSHIFT_FINDING_BACKEND). The host gives a known code
 * the table's severity, drops a plugin finding whose code the host has
 * already raised, and flags a code that is not in the table with an
 * "unknown-code" warning.
 *
 * Since: ABI 1.2 (symbol version VMSHIFT_SDK_1.2).
 */
#if !defined(VMSHIFT_INSIDE) && !defined(VMSHIFT_COMPILATION)
#error "Only <vmshift/vmshift.h> can be included directly."
#endif

#ifndef VMSHIFT_FINDINGS_H
#define VMSHIFT_FINDINGS_H

#include <vmshift/types.h>

G_BEGIN_DECLS

/* Raised by the host from facts. */
#define VMSHIFT_FINDING_HOST_NOT_FOUND "host-not-found"
#define VMSHIFT_FINDING_OTHER_BACKEND "other-backend"
#define VMSHIFT_FINDING_SAME_HOST "same-host"
#define VMSHIFT_FINDING_HOST_MAINTENANCE "host-maintenance"
#define VMSHIFT_FINDING_HOST_UNREACHABLE "host-unreachable"
#define VMSHIFT_FINDING_HOST_LIMITED "host-limited"
#define VMSHIFT_FINDING_NOT_RUNNING "not-running"
#define VMSHIFT_FINDING_RUNNING "running"
#define VMSHIFT_FINDING_MERGE_IN_PROGRESS "merge-in-progress"
#define VMSHIFT_FINDING_NEEDS_CONSOLIDATION "needs-consolidation"
#define VMSHIFT_FINDING_MERGE_UNKNOWN "merge-unknown"
#define VMSHIFT_FINDING_NO_MEMORY "no-memory"
#define VMSHIFT_FINDING_MEMORY_UNKNOWN "memory-unknown"
#define VMSHIFT_FINDING_NO_SPACE "no-space"
#define VMSHIFT_FINDING_LOW_SPACE "low-space"
#define VMSHIFT_FINDING_SPACE_UNKNOWN "space-unknown"
#define VMSHIFT_FINDING_DISK_SIZE_UNKNOWN "disk-size-unknown"
#define VMSHIFT_FINDING_NETWORK_MISSING "network-missing"
#define VMSHIFT_FINDING_NETWORKS_UNKNOWN "networks-unknown"
#define VMSHIFT_FINDING_DISK_NOT_FOUND "disk-not-found"
#define VMSHIFT_FINDING_NIC_NOT_FOUND "nic-not-found"
#define VMSHIFT_FINDING_STORAGE_NOT_SHARED "storage-not-shared"
#define VMSHIFT_FINDING_CPU_INCOMPATIBLE "cpu-incompatible"
#define VMSHIFT_FINDING_CHECK_FAILED "check-failed"
#define VMSHIFT_FINDING_BACKEND_CHECKS_SKIPPED "backend-checks-skipped"
#define VMSHIFT_FINDING_UNKNOWN_CODE "unknown-code"
/* Raised by plugins (what only the backend knows). */
#define VMSHIFT_FINDING_VM_STATE "vm-state"
#define VMSHIFT_FINDING_VM_BUSY "vm-busy"
#define VMSHIFT_FINDING_HYPERVISOR_MISSING "hypervisor-missing"
#define VMSHIFT_FINDING_HYPERVISOR_OLDER "hypervisor-older"
#define VMSHIFT_FINDING_CPU_PASSTHROUGH "cpu-passthrough"
#define VMSHIFT_FINDING_DISK_UNREACHABLE "disk-unreachable"
#define VMSHIFT_FINDING_PATH_NOT_FOUND "path-not-found"
#define VMSHIFT_FINDING_VOLUME_UNAVAILABLE "volume-unavailable"
#define VMSHIFT_FINDING_VOLUME_NOT_ON_HOST "volume-not-on-host"
#define VMSHIFT_FINDING_MIGRATION_DISABLED "migration-disabled"
#define VMSHIFT_FINDING_NO_MIGRATION_NETWORK "no-migration-network"
#define VMSHIFT_FINDING_MIGRATION_LIMIT "migration-limit"
#define VMSHIFT_FINDING_NETWORK_UNUSABLE "network-unusable"
#define VMSHIFT_FINDING_SNAPSHOTS_PRESENT "snapshots-present"
#define VMSHIFT_FINDING_NO_DESTINATION "no-destination"
#define VMSHIFT_FINDING_TRANSFER_CONFLICT "transfer-conflict"
#define VMSHIFT_FINDING_UNKNOWN_OPTION "unknown-option"
#define VMSHIFT_FINDING_DISK_MAPPED "disk-mapped"
#define VMSHIFT_FINDING_NIC_MAPPED "nic-mapped"
#define VMSHIFT_FINDING_NOTHING_TO_DO "nothing-to-do"
/* moves between backends (ABI 1.4): check_import()'s findings */
#define VMSHIFT_FINDING_NAME_TAKEN "name-taken"
#define VMSHIFT_FINDING_BUS_REMAPPED "bus-remapped"
#define VMSHIFT_FINDING_MAC_NOT_KEPT "mac-not-kept"
#define VMSHIFT_FINDING_FIRMWARE_CHANGED "firmware-changed"
#define VMSHIFT_FINDING_GUEST_DRIVERS "guest-drivers"
#define VMSHIFT_FINDING_NIC_MODEL_CHANGED "nic-model-changed"
#define VMSHIFT_FINDING_FIRMWARE_UNKNOWN "firmware-unknown"
#define VMSHIFT_FINDING_FIRMWARE_UNSUPPORTED "firmware-unsupported"

/**
 * VmshiftFindingSource:
 * @VMSHIFT_FINDING_HOST: the host raises it from facts; a plugin may too
 *   (when it knows better), the host then shows it once.
 * @VMSHIFT_FINDING_BACKEND: only a plugin's check_migration() raises it.
 */
typedef enum {
    VMSHIFT_FINDING_HOST = 1u << 0,
    VMSHIFT_FINDING_BACKEND = 1u << 1,
} VmshiftFindingSource;

/**
 * VmshiftFindingInfo:
 * @struct_size: sizeof(VmshiftFindingInfo) as compiled into the library.
 * @severity: the #VmshiftSeverity of the code, everywhere.
 * @code: the code.
 * @factor: the rating factor it belongs to ("status", "power", "merge",
 *   "memory", "space", "network", "storage", "compat", "mapping",
 *   "backend", "current", "snapshots", "check").
 * @rate_effect: stars a warning of this code takes off a rating (errors rule
 *   the host out; info takes nothing).
 * @meaning: one sentence: the one condition the code names.
 * @source: #VmshiftFindingSource bits.
 *
 * One row of the table of canonical finding codes.
 */
typedef struct {
    guint32 struct_size;
    guint32 severity;
    const char *code;
    const char *factor;
    double rate_effect;
    const char *meaning;
    guint32 source;
    guint32 reserved0;
} VmshiftFindingInfo;

/**
 * vmshift_finding_info:
 * @code: a finding code
 *
 * Returns: (transfer none) (nullable): the table row of @code, or NULL when
 *   @code is not a canonical code.
 *
 * Since: 1.2 (symbol version VMSHIFT_SDK_1.2)
 */
const VmshiftFindingInfo *vmshift_finding_info(const char *code);

/**
 * vmshift_finding_infos:
 * @n_infos: (out): the number of rows
 *
 * Returns: (transfer none): the whole table, in a stable order.
 *
 * Since: 1.2 (symbol version VMSHIFT_SDK_1.2)
 */
const VmshiftFindingInfo *vmshift_finding_infos(guint *n_infos);

G_END_DECLS

#endif /* VMSHIFT_FINDINGS_H */
