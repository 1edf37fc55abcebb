/*
 * vmshift SDK: the table of canonical finding codes (vmshift/findings.h).
 */
#include "config.h"

#include <string.h>

#include <vmshift/vmshift.h>

#include "sdk-private.h"

#define E VMSHIFT_SEVERITY_ERROR
#define W VMSHIFT_SEVERITY_WARNING
#define I VMSHIFT_SEVERITY_INFO
#define H VMSHIFT_FINDING_HOST
#define B VMSHIFT_FINDING_BACKEND
#define ROW(code, sev, factor, effect, src, meaning)                           \
    {                                                                          \
        sizeof(VmshiftFindingInfo), sev, code, factor, effect, meaning, src, 0 \
    }

/* clang-format off */
static const VmshiftFindingInfo table[] = {
    ROW("host-not-found", E, "status", 0, H | B, "the destination host is not known to the VM's backend"),
    ROW("other-backend", E, "backend", 0, H, "the destination host belongs to another backend than the VM"),
    ROW("same-host", E, "current", 0, H | B, "the VM already runs on the destination host"),
    ROW("host-maintenance", E, "status", 0, H | B, "the destination host is in maintenance mode"),
    ROW("host-unreachable", E, "status", 0, H | B, "the destination host is disconnected or does not answer"),
    ROW("host-limited", W, "status", 1, H, "the destination host is degraded or its status is unknown"),
    ROW("not-running", E, "power", 0, H, "a live migration was asked for a VM that is not running"),
    ROW("running", E, "power", 0, H, "a cold migration was asked for a running VM"),
    ROW("merge-in-progress", E, "merge", 0, H | B, "a checkpoint/snapshot merge runs on the VM"),
    ROW("needs-consolidation", W, "merge", 1, H, "no merge runs but the VM's disks need consolidation"),
    ROW("merge-unknown", W, "merge", 0.25, H, "the VM's checkpoint state could not be read"),
    ROW("no-memory", E, "memory", 0, H | B, "the destination host has less free memory than the running VM needs"),
    ROW("memory-unknown", W, "memory", 0.5, H | B, "the destination host's free memory is not known"),
    ROW("no-space", E, "space", 0, H | B, "a volume receiving the VM's disks has less free space than they need"),
    ROW("low-space", W, "space", 0.5, H, "a volume receiving the disks would keep less than 5% free"),
    ROW("space-unknown", W, "space", 0.5, H, "the free space where the disks go is not known"),
    ROW("disk-size-unknown", W, "space", 0.5, H, "the size of a disk that moves is not known"),
    ROW("network-missing", E, "network", 0, H | B, "a NIC's (mapped) network does not exist on the destination host"),
    ROW("networks-unknown", W, "network", 0.5, H, "the networks of the destination host are not known"),
    ROW("disk-not-found", E, "mapping", 0, H | B, "a --disk-path names a disk the VM does not have"),
    ROW("nic-not-found", E, "mapping", 0, H | B, "a --network names a NIC the VM does not have"),
    ROW("storage-not-shared", E, "storage", 0, H | B, "--transfer san, but a disk is not on storage the destination reaches"),
    ROW("cpu-incompatible", E, "compat", 0, H | B, "the destination's CPU or hypervisor cannot run the VM live"),
    ROW("check-failed", E, "check", 0, H, "the backend's own check could not run"),
    ROW("backend-checks-skipped", I, "check", 0, H, "the backend has no check of its own; only the host's ran"),
    ROW("unknown-code", W, "check", 0, H, "a plugin raised a finding whose code is not canonical"),
    ROW("vm-state", E, "power", 0, B, "the VM is in a state the backend cannot migrate from"),
    ROW("vm-busy", E, "status", 0, B, "another operation (not a merge) runs on the VM"),
    ROW("hypervisor-missing", E, "compat", 0, B, "the destination lacks the hypervisor binary the VM needs"),
    ROW("hypervisor-older", W, "compat", 0.5, B, "the destination's hypervisor is older than the source's"),
    ROW("cpu-passthrough", W, "compat", 0.5, B, "the VM uses the host CPU model; a live move may fail on other CPUs"),
    ROW("disk-unreachable", E, "storage", 0, B, "a disk that stays in place cannot be reached from the destination"),
    ROW("path-not-found", E, "storage", 0, B, "the destination path or datastore does not exist"),
    ROW("volume-unavailable", E, "storage", 0, B, "the destination volume is inaccessible or in maintenance"),
    ROW("volume-not-on-host", E, "storage", 0, B, "the destination volume is not mounted on the destination host"),
    ROW("migration-disabled", E, "compat", 0, B, "the destination host does not accept migrations"),
    ROW("no-migration-network", E, "network", 0, B, "the destination host has no migration network"),
    ROW("migration-limit", W, "status", 0.5, B, "the destination host is at its simultaneous-migration limit"),
    ROW("network-unusable", E, "network", 0, B, "a mapped network exists but the backend cannot attach NICs to it"),
    ROW("snapshots-present", W, "snapshots", 0.25, B, "the VM has snapshots that move with it"),
    ROW("no-destination", E, "mapping", 0, B, "the spec names neither a host nor storage to move to"),
    ROW("transfer-conflict", E, "mapping", 0, B, "--transfer contradicts the rest of the spec"),
    ROW("unknown-option", E, "mapping", 0, B, "an --option key the backend does not know"),
    ROW("disk-mapped", I, "mapping", 0, B, "the backend resolved a --disk-path key by another name"),
    ROW("nic-mapped", I, "mapping", 0, B, "the backend resolved a --network key by another name"),
    ROW("nothing-to-do", I, "mapping", 0, B, "the VM already is where the spec puts it"),
    ROW("name-taken", E, "current", 0, H | B, "a VM of the same name exists at the destination backend"),
    ROW("bus-remapped", W, "compat", 0.25, B, "a disk's bus does not exist at the destination and is mapped to another"),
    ROW("mac-not-kept", W, "network", 0.25, B, "the destination cannot keep a NIC's MAC address"),
    ROW("firmware-changed", W, "compat", 0.5, B, "the destination cannot give the VM the firmware it has"),
    ROW("nic-model-changed", W, "network", 0.25, B, "a NIC's model does not exist at the destination and is mapped to another"),
    ROW("firmware-unknown", W, "compat", 0.5, B, "the source does not say the VM's firmware; the destination gives it BIOS"),
    ROW("firmware-unsupported", E, "compat", 0, B, "the destination host cannot give the VM its firmware (e.g. UEFI without OVMF)"),
    ROW("guest-drivers", W, "compat", 0.5, B, "the guest may lack drivers the destination's devices need (virtio, integration services, VMware tools)"),
};
/* clang-format on */

VMSHIFT_API const VmshiftFindingInfo *
vmshift_finding_info(const char *code)
{
    for (guint i = 0; code && i < G_N_ELEMENTS(table); i++)
        if (!strcmp(table[i].code, code))
            return &table[i];
    return NULL;
}

VMSHIFT_API const VmshiftFindingInfo *
vmshift_finding_infos(guint *n_infos)
{
    *n_infos = G_N_ELEMENTS(table);
    return table;
}
