/* Unit tests of host validation helpers, the table of canonical finding
 * codes and the rule engine's merge of plugin findings. */
#include "config.h"

#include <string.h>

#include "host/rules.h"

static VmshiftVolume *
vol(GPtrArray *vols, const char *name, const char *path)
{
    VmshiftVolume *v = vmshift_volume_new();

    v->id = g_strdup_printf("id-%s", name);
    v->name = g_strdup(name);
    v->path = g_strdup(path);
    g_ptr_array_add(vols, v);
    return v;
}

static void
test_volume_for_path_posix(void)
{
    g_autoptr(GPtrArray) vols = vmshift_list_new((GDestroyNotify)vmshift_volume_free);
    VmshiftVolume *root = vol(vols, "root", "/");
    VmshiftVolume *srv = vol(vols, "srv", "/srv");
    VmshiftVolume *fast = vol(vols, "fast", "/srv/fast/");

    g_assert_true(host_volume_for_path(vols, "/srv/vms/a") == srv);
    g_assert_true(host_volume_for_path(vols, "/srv") == srv);
    g_assert_true(host_volume_for_path(vols, "/srv/fast/x") == fast);
    g_assert_true(host_volume_for_path(vols, "/srvx/y") == root);  /* not below /srv */
    g_assert_true(host_volume_for_path(vols, "/SRV/vms") == root); /* POSIX is case-sensitive */
    g_assert_true(host_volume_for_path(vols, "fast") == fast);     /* by name */
    g_assert_true(host_volume_for_path(vols, "id-srv") == srv);    /* by id */
    g_assert_null(host_volume_for_path(vols, "relative/path"));
    g_assert_null(host_volume_for_path(NULL, "/srv"));
}

static void
test_volume_for_path_windows(void)
{
    g_autoptr(GPtrArray) vols = vmshift_list_new((GDestroyNotify)vmshift_volume_free);
    VmshiftVolume *c = vol(vols, "C", "C:");
    VmshiftVolume *cback = vol(vols, "D", "D:\\");
    VmshiftVolume *csv = vol(vols, "csv1", "C:\\ClusterStorage\\Volume1");
    VmshiftVolume *unc = vol(vols, "share", "\\\\fs01\\vms");

    g_assert_true(host_volume_for_path(vols, "C:\\VMs\\dmz01") == c);
    g_assert_true(host_volume_for_path(vols, "c:\\vms\\dmz01") == c);   /* any case */
    g_assert_true(host_volume_for_path(vols, "C:\\VMs\\dmz01\\") == c); /* trailing '\' */
    g_assert_true(host_volume_for_path(vols, "d:\\Hyper-V") == cback);  /* root ends in '\' */
    g_assert_true(host_volume_for_path(vols, "C:\\clusterstorage\\volume1\\web") == csv);
    g_assert_true(host_volume_for_path(vols, "C:\\ClusterStorage\\Volume10") == c);
    g_assert_true(host_volume_for_path(vols, "\\\\FS01\\VMS\\web") == unc);
    g_assert_null(host_volume_for_path(vols, "E:\\VMs"));
}

/* Every code the SDK names (findings.h) has one row, and every row a name:
 * the list below is the header's, so a code added to one and not the other
 * fails here. */
static const char *const header_codes[] = {
    VMSHIFT_FINDING_HOST_NOT_FOUND,
    VMSHIFT_FINDING_OTHER_BACKEND,
    VMSHIFT_FINDING_SAME_HOST,
    VMSHIFT_FINDING_HOST_MAINTENANCE,
    VMSHIFT_FINDING_HOST_UNREACHABLE,
    VMSHIFT_FINDING_HOST_LIMITED,
    VMSHIFT_FINDING_NOT_RUNNING,
    VMSHIFT_FINDING_RUNNING,
    VMSHIFT_FINDING_MERGE_IN_PROGRESS,
    VMSHIFT_FINDING_NEEDS_CONSOLIDATION,
    VMSHIFT_FINDING_MERGE_UNKNOWN,
    VMSHIFT_FINDING_NO_MEMORY,
    VMSHIFT_FINDING_MEMORY_UNKNOWN,
    VMSHIFT_FINDING_NO_SPACE,
    VMSHIFT_FINDING_LOW_SPACE,
    VMSHIFT_FINDING_SPACE_UNKNOWN,
    VMSHIFT_FINDING_DISK_SIZE_UNKNOWN,
    VMSHIFT_FINDING_NETWORK_MISSING,
    VMSHIFT_FINDING_NETWORKS_UNKNOWN,
    VMSHIFT_FINDING_DISK_NOT_FOUND,
    VMSHIFT_FINDING_NIC_NOT_FOUND,
    VMSHIFT_FINDING_STORAGE_NOT_SHARED,
    VMSHIFT_FINDING_CPU_INCOMPATIBLE,
    VMSHIFT_FINDING_CHECK_FAILED,
    VMSHIFT_FINDING_BACKEND_CHECKS_SKIPPED,
    VMSHIFT_FINDING_UNKNOWN_CODE,
    VMSHIFT_FINDING_VM_STATE,
    VMSHIFT_FINDING_VM_BUSY,
    VMSHIFT_FINDING_HYPERVISOR_MISSING,
    VMSHIFT_FINDING_HYPERVISOR_OLDER,
    VMSHIFT_FINDING_CPU_PASSTHROUGH,
    VMSHIFT_FINDING_DISK_UNREACHABLE,
    VMSHIFT_FINDING_PATH_NOT_FOUND,
    VMSHIFT_FINDING_VOLUME_UNAVAILABLE,
    VMSHIFT_FINDING_VOLUME_NOT_ON_HOST,
    VMSHIFT_FINDING_MIGRATION_DISABLED,
    VMSHIFT_FINDING_NO_MIGRATION_NETWORK,
    VMSHIFT_FINDING_MIGRATION_LIMIT,
    VMSHIFT_FINDING_NETWORK_UNUSABLE,
    VMSHIFT_FINDING_SNAPSHOTS_PRESENT,
    VMSHIFT_FINDING_NO_DESTINATION,
    VMSHIFT_FINDING_TRANSFER_CONFLICT,
    VMSHIFT_FINDING_UNKNOWN_OPTION,
    VMSHIFT_FINDING_DISK_MAPPED,
    VMSHIFT_FINDING_NIC_MAPPED,
    VMSHIFT_FINDING_NOTHING_TO_DO,
    VMSHIFT_FINDING_NAME_TAKEN,
    VMSHIFT_FINDING_BUS_REMAPPED,
    VMSHIFT_FINDING_MAC_NOT_KEPT,
    VMSHIFT_FINDING_FIRMWARE_CHANGED,
    VMSHIFT_FINDING_GUEST_DRIVERS,
    VMSHIFT_FINDING_NIC_MODEL_CHANGED,
    VMSHIFT_FINDING_FIRMWARE_UNKNOWN,
    VMSHIFT_FINDING_FIRMWARE_UNSUPPORTED,
};

/* The codes of the old, duplicated vocabulary: none may come back. */
static const char *const retired_codes[] = {
    "vm-running",           "vm-not-running",  "power-state",         "nic-unmapped",
    "consolidation-needed", "host-unknown",    "host-not-connected",  "unknown-host",
    "unknown-nic",          "unknown-network", "datastore-too-small", "network-not-found",
    "network-not-on-host",  "qemu-missing",    "qemu-older",          "cpu-host",
};

static void
test_findings_table(void)
{
    guint n = 0;
    const VmshiftFindingInfo *t = vmshift_finding_infos(&n);
    g_autoptr(GHashTable) codes = g_hash_table_new(g_str_hash, g_str_equal);
    g_autoptr(GHashTable) meanings = g_hash_table_new(g_str_hash, g_str_equal);
    const char *factors[] = { "status",  "power",     "merge",  "memory",  "space",
                              "network", "storage",   "compat", "mapping", "backend",
                              "current", "snapshots", "check",  NULL };

    g_assert_cmpuint(n, ==, G_N_ELEMENTS(header_codes));
    for (guint i = 0; i < n; i++) {
        const VmshiftFindingInfo *x = &t[i];
        g_assert_cmpuint(x->struct_size, ==, sizeof(VmshiftFindingInfo));
        /* one row per code, one code per condition (meaning) */
        g_assert_true(g_hash_table_add(codes, (char *)x->code));
        g_assert_true(g_hash_table_add(meanings, (char *)x->meaning));
        g_assert_true(vmshift_finding_info(x->code) == x);
        g_assert_cmpuint(strlen(x->meaning), >, 20);
        g_assert_true(g_strv_contains(factors, x->factor));
        g_assert_cmpuint(x->severity, <=, VMSHIFT_SEVERITY_ERROR);
        g_assert_true(x->source & (VMSHIFT_FINDING_HOST | VMSHIFT_FINDING_BACKEND));
        /* a warning costs stars (except the flag of a bad plugin), an
         * error rules out, info is free */
        if (x->severity == VMSHIFT_SEVERITY_WARNING && strcmp(x->code, "unknown-code") != 0)
            g_assert_cmpfloat(x->rate_effect, >, 0);
        else
            g_assert_cmpfloat(x->rate_effect, ==, 0);
        for (const char *p = x->code; *p; p++)
            g_assert_true(g_ascii_islower(*p) || *p == '-');
    }
    for (guint i = 0; i < G_N_ELEMENTS(header_codes); i++)
        g_assert_nonnull(vmshift_finding_info(header_codes[i]));
    for (guint i = 0; i < G_N_ELEMENTS(retired_codes); i++)
        g_assert_null(vmshift_finding_info(retired_codes[i]));
    g_assert_null(vmshift_finding_info(NULL));
}

/* A plugin finding: the table's severity, dropped when the host raised the
 * same condition, an unknown code flagged. */
static void
test_merge_backend(void)
{
    g_autoptr(GPtrArray) f = vmshift_list_new((GDestroyNotify)vmshift_finding_free);
    g_autoptr(GPtrArray) pf = vmshift_list_new((GDestroyNotify)vmshift_finding_free);
    HostRuleSink s = { .findings = f };

    host_rule_add(&s, VMSHIFT_FINDING_SAME_HOST, "h1", "already there");
    g_ptr_array_add(pf, vmshift_finding_new(VMSHIFT_SEVERITY_ERROR, "same-host", "h1", "dup"));
    g_ptr_array_add(pf, vmshift_finding_new(VMSHIFT_SEVERITY_ERROR, "needs-consolidation", "vm",
                                            "an error elsewhere, a warning here"));
    g_ptr_array_add(pf, vmshift_finding_new(VMSHIFT_SEVERITY_WARNING, "made-up", "x", "?"));
    host_rules_merge_backend(&s, pf, "b1");
    g_assert_cmpuint(pf->len, ==, 0);
    g_assert_cmpuint(f->len, ==, 4); /* same-host, needs-consolidation, unknown-code, made-up */
    g_assert_cmpstr(((VmshiftFinding *)f->pdata[0])->code, ==, "same-host");
    g_assert_cmpstr(((VmshiftFinding *)f->pdata[1])->code, ==, "needs-consolidation");
    g_assert_cmpuint(((VmshiftFinding *)f->pdata[1])->severity, ==, VMSHIFT_SEVERITY_WARNING);
    g_assert_cmpstr(((VmshiftFinding *)f->pdata[2])->code, ==, "unknown-code");
    g_assert_cmpstr(((VmshiftFinding *)f->pdata[2])->subject, ==, "made-up");
    g_assert_cmpuint(s.errors, ==, 1);
    g_assert_cmpuint(s.warnings, ==, 3);
    g_assert_cmpstr(s.first_error, ==, "same-host");
}

/* A disk size of 0 is "unknown" unless the plugin says it knows it. */
static void
test_disk_bytes(void)
{
    g_autoptr(VmshiftDisk) d = vmshift_disk_new();
    guint64 n = 1;

    g_assert_false(host_disk_bytes(d, &n));
    d->capacity = 10;
    g_assert_true(host_disk_bytes(d, &n) && n == 10);
    d->allocation = 4;
    g_assert_true(host_disk_bytes(d, &n) && n == 4);
    d->capacity = d->allocation = 0;
    d->size_known = VMSHIFT_DISK_CAPACITY_KNOWN; /* a real empty disk */
    g_assert_true(host_disk_bytes(d, &n) && n == 0);
}

int
main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/host/validate/volume-for-path/posix", test_volume_for_path_posix);
    g_test_add_func("/host/validate/volume-for-path/windows", test_volume_for_path_windows);
    g_test_add_func("/host/validate/findings-table", test_findings_table);
    g_test_add_func("/host/validate/merge-backend", test_merge_backend);
    g_test_add_func("/host/validate/disk-bytes", test_disk_bytes);
    return g_test_run();
}
