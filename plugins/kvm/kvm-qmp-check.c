/* vmshift KVM plugin, qmp transport: check_migration — what only the
 * backend can see (the destination's run directory, its QEMU and CPU
 * models, whether it reaches the disks that stay), with the canonical codes
 * of <vmshift/findings.h>. Power state, same host, memory and free space
 * the host judges from the facts (get_vm, list_hosts with each host's
 * meminfo, list_volumes with every filesystem). A missing network and a
 * running block job are reported here too, from the same facts the host
 * reads (netdev, checkpoint_state), so the plugin's own check (kvm-drive)
 * says so; the host shows each once. */
#include "config.h"

#define _GNU_SOURCE 1

#include <string.h>

#include "kvm-qmp.h"

static void
finding(GPtrArray *l, VmshiftSeverity sev, const char *code, const char *subject, const char *msg)
{
    g_ptr_array_add(l, vmshift_finding_new(sev, code, subject, "%s", msg));
}

/* The destination of a host migration; NULL (with a finding) when it is
 * unknown or unreachable, which ends the check. */
static KvmHost *
check_destination(KvmBackend *b, const VmshiftMigrationSpec *spec, KvmHost *src, GPtrArray *l)
{
    GError *e = NULL;
    KvmHost *dst = spec->dest_host ? kvm_backend_find_host(b, spec->dest_host, &e) : NULL;
    if (!dst) {
        finding(l, VMSHIFT_SEVERITY_ERROR,
                g_error_matches(e, VMSHIFT_ERROR, VMSHIFT_ERROR_CONNECTION)
                    ? VMSHIFT_FINDING_HOST_UNREACHABLE
                    : VMSHIFT_FINDING_HOST_NOT_FOUND,
                spec->dest_host, e ? e->message : "no destination host");
        g_clear_error(&e);
        return NULL;
    }
    if (dst == src)
        return NULL; /* same-host: the host says so */
    if (!kvm_host_exists(dst, dst->run_dir)) {
        g_autofree char *msg = g_strdup_printf("host %s: run directory %s is not reachable",
                                               dst->name, dst->run_dir);
        finding(l, VMSHIFT_SEVERITY_ERROR, VMSHIFT_FINDING_HOST_UNREACHABLE, dst->name, msg);
        return NULL;
    }
    return dst;
}

/* The destination's QEMU: there, not older, and it knows the CPU model. */
static void
check_qemu(KvmHost *src, KvmHost *dst, const KvmVmDef *def, GPtrArray *l)
{
    g_autofree char *sv = kvm_qmp_qemu_version(src);
    g_autofree char *dv = kvm_qmp_qemu_version(dst);
    if (!dv) {
        g_autofree char *msg = g_strdup_printf("%s does not run on host %s", dst->qemu, dst->name);
        finding(l, VMSHIFT_SEVERITY_ERROR, VMSHIFT_FINDING_HYPERVISOR_MISSING, dst->name, msg);
    } else if (sv && strverscmp(dv, sv) < 0) {
        g_autofree char *msg = g_strdup_printf("QEMU %s on %s is older than QEMU %s on %s: "
                                               "migration to an older QEMU may fail",
                                               dv, dst->name, sv, src->name);
        finding(l, VMSHIFT_SEVERITY_WARNING, VMSHIFT_FINDING_HYPERVISOR_OLDER, dst->name, msg);
    }
    if (dv) {
        const char *argv[] = { dst->qemu, "-cpu", "help", NULL };
        g_autofree char *out = NULL;
        if (kvm_host_run(dst, argv, NULL, &out, 30, NULL)) {
            g_autofree char *needle = g_strdup_printf(" %s ", def->cpu);
            if (!strstr(out, needle) && strcmp(def->cpu, "host")) {
                g_autofree char *msg = g_strdup_printf("QEMU on host %s does not know CPU "
                                                       "model %s",
                                                       dst->name, def->cpu);
                finding(l, VMSHIFT_SEVERITY_ERROR, VMSHIFT_FINDING_CPU_INCOMPATIBLE, dst->name,
                        msg);
            }
        }
    }
    if (!g_strcmp0(def->cpu, "host") && g_strcmp0(src->accel, dst->accel))
        finding(l, VMSHIFT_SEVERITY_WARNING, VMSHIFT_FINDING_CPU_PASSTHROUGH, def->name,
                "CPU model 'host' between different hosts: the CPUs must match");
}

static void
check_networks(const VmshiftMigrationSpec *spec, KvmHost *dst, const KvmVmDef *def, GPtrArray *l)
{
    for (guint i = 0; i < def->nics->len; i++) {
        KvmNicDef *n = def->nics->pdata[i];
        const char *net = vmshift_migration_spec_network_for(spec, n->id);
        if (!net)
            net = n->network;
        g_autofree char *nd = kvm_host_netdev(dst, net);
        if (!nd) {
            g_autofree char *msg = g_strdup_printf("network '%s' of NIC %s does not exist on "
                                                   "host %s (map it with --network %s=NET)",
                                                   net, n->id, dst->name, n->id);
            finding(l, VMSHIFT_SEVERITY_ERROR, VMSHIFT_FINDING_NETWORK_MISSING, n->id, msg);
        }
    }
}

/* disks that stay: reachable at the destination (the space where moved
 * ones go is the host's rule, from the volumes) */
static void
check_disks(const VmshiftMigrationSpec *spec, KvmHost *src, KvmHost *dst, const KvmVmDef *def,
            GPtrArray *l)
{
    for (guint i = 0; i < def->disks->len; i++) {
        KvmDiskDef *dk = def->disks->pdata[i];
        const char *dir = vmshift_migration_spec_disk_dir(spec, dk->id);
        if (!dir) {
            if (dst != src && !kvm_host_exists(dst, dk->path)) {
                g_autofree char *msg = g_strdup_printf("host %s does not reach %s (disk %s): "
                                                       "give --path",
                                                       dst->name, dk->path, dk->id);
                finding(l, VMSHIFT_SEVERITY_ERROR, VMSHIFT_FINDING_DISK_UNREACHABLE, dk->id, msg);
            }
        }
    }
}

/* --transfer: san keeps the disks where they are (both hosts reach them;
 * check_disks says when the destination does not), so it cannot go with
 * --path or --disk-path; network copies them over NBD, so it needs a
 * target directory. */
static void
check_transfer(const VmshiftMigrationSpec *spec, const char *vm, GPtrArray *l)
{
    gboolean moves = vmshift_migration_spec_moves_storage(spec);
    if (spec->transfer == VMSHIFT_TRANSFER_SAN
        && (moves || spec->type == VMSHIFT_MIGRATION_STORAGE))
        finding(l, VMSHIFT_SEVERITY_ERROR, VMSHIFT_FINDING_TRANSFER_CONFLICT, vm,
                "--transfer san keeps the disks where they are; it cannot go with --path, "
                "--disk-path or a storage migration");
    if (spec->transfer == VMSHIFT_TRANSFER_NETWORK && !moves)
        finding(l, VMSHIFT_SEVERITY_ERROR, VMSHIFT_FINDING_TRANSFER_CONFLICT, vm,
                "--transfer network copies the disks: give the target directory with --path "
                "DIR (or --disk-path)");
}

GPtrArray *
kvm_qmp_check_migration(KvmBackend *b, const VmshiftMigrationSpec *spec, GError **error)
{
    g_autoptr(KvmVmDef) def = NULL;
    KvmTuningOptions opts;
    /* an unknown --option key is refused by name here, as migrate does */
    if (!kvm_tuning_read_options(spec->options, &opts, error))
        return NULL;
    KvmHost *src = kvm_backend_locate_vm(b, spec->vm, &def, error);
    if (!src)
        return NULL;
    GPtrArray *l = vmshift_list_new((GDestroyNotify)vmshift_finding_free);
    KvmHost *dst = src;
    if (spec->type != VMSHIFT_MIGRATION_STORAGE && !(dst = check_destination(b, spec, src, l)))
        return l;
    if (dst != src) {
        check_qemu(src, dst, def, l);
        check_networks(spec, dst, def, l);
    }
    check_disks(spec, src, dst, def, l);
    check_transfer(spec, def->name, l);
    /* a block job the backend sees directly; the host shows it once */
    g_autoptr(VmshiftCheckpointState) cs = kvm_qmp_checkpoint_state(b, spec->vm, NULL);
    if (cs && cs->merging)
        finding(l, VMSHIFT_SEVERITY_ERROR, VMSHIFT_FINDING_MERGE_IN_PROGRESS, def->name,
                cs->detail);
    return l;
}
