/*
 * Unit tests of the Hyper-V plugin's pure logic (no simulator, no network):
 * WMI numbers as vmshift values and messages, the migration type a spec
 * asks for, Windows path and SID texts, SOAP faults and a canned
 * MigrateVirtualSystemToHost reply.  Facts: docs/design/hyperv.md §2, §3.
 */
#include "config.h"

#include <string.h>
#include <vmshift/vmshift.h>

#include "plugins/hyperv/hyperv.h"

/* The numbers the design note gives; the names must not drift from them. */
static void
test_constants(void)
{
    g_assert_cmpint(HV_RV_JOB_STARTED, ==, 4096);
    g_assert_cmpint(HV_RV_FAILED, ==, 32768);
    g_assert_cmpint(HV_RV_OUT_OF_MEMORY, ==, 32778);
    g_assert_cmpint(HV_MIGRATION_VIRTUAL_SYSTEM, ==, 32768);
    g_assert_cmpint(HV_MIGRATION_STORAGE, ==, 32769);
    g_assert_cmpint(HV_MIGRATION_STAGED, ==, 32770);
    g_assert_cmpint(HV_MIGRATION_VIRTUAL_SYSTEM_AND_STORAGE, ==, 32771);
    g_assert_cmpint(HV_JOB_COMPLETED, ==, 7);
    g_assert_cmpint(HV_JOB_COMPLETED_WITH_WARNINGS, ==, 32768);
    g_assert_cmpint(HV_ENABLED_PAUSED, ==, 32768);
    g_assert_cmpint(HV_ENABLED_SNAPSHOTTING, ==, 32771);
    g_assert_cmpint(HV_OPSTATUS_CREATING_SNAPSHOT, ==, 32768);
    g_assert_cmpint(HV_OPSTATUS_MIGRATING, ==, 32774);
    g_assert_cmpint(HV_TRANSPORT_TCP, ==, 5);
    g_assert_cmpint(HV_JOB_REQUEST_KILL, ==, 5);
    g_assert_cmpint(HV_RESOURCE_TYPE_LOGICAL_DISK, ==, 31);
    g_assert_cmpint(HV_ACE_MASK_VM, ==, 0x120089 | 0x120116);
    /* The ones spliced into request text must be plain numbers. */
    g_assert_cmpstr(G_STRINGIFY(HV_TRANSPORT_TCP), ==, "5");
    g_assert_cmpstr(G_STRINGIFY(HV_JOB_REQUEST_KILL), ==, "5");
    g_assert_cmpstr(G_STRINGIFY(HV_DRIVE_TYPE_LOCAL_DISK), ==, "3");
    g_assert_cmpstr(G_STRINGIFY(HV_SD_DACL_PRESENT), ==, "4");
}

static void
test_power_state(void)
{
    static const struct {
        gint64 enabled;
        guint32 power;
        const char *where;
    } cases[] = {
        { HV_ENABLED_ENABLED, VMSHIFT_POWER_RUNNING, "running" },
        { HV_ENABLED_SHUTTING_DOWN, VMSHIFT_POWER_RUNNING, "running" },
        { HV_ENABLED_STARTING, VMSHIFT_POWER_RUNNING, "running" },
        { HV_ENABLED_HV_STARTING, VMSHIFT_POWER_RUNNING, "running" },
        { HV_ENABLED_SNAPSHOTTING, VMSHIFT_POWER_RUNNING, "running" },
        { HV_ENABLED_SAVING, VMSHIFT_POWER_RUNNING, "running" },
        { HV_ENABLED_STOPPING, VMSHIFT_POWER_RUNNING, "running" },
        { HV_ENABLED_PAUSING, VMSHIFT_POWER_RUNNING, "running" },
        { HV_ENABLED_RESUMING, VMSHIFT_POWER_RUNNING, "running" },
        { HV_ENABLED_DISABLED, VMSHIFT_POWER_STOPPED, "off" },
        { HV_ENABLED_QUIESCE, VMSHIFT_POWER_PAUSED, "paused" },
        { HV_ENABLED_PAUSED, VMSHIFT_POWER_PAUSED, "paused" },
        { HV_ENABLED_OFFLINE, VMSHIFT_POWER_SUSPENDED, "saved" },
        { HV_ENABLED_SUSPENDED, VMSHIFT_POWER_SUSPENDED, "saved" },
        { HV_ENABLED_UNKNOWN, VMSHIFT_POWER_UNKNOWN, "registered" },
        { 5, VMSHIFT_POWER_UNKNOWN, "registered" },     /* Not Applicable */
        { 32772, VMSHIFT_POWER_UNKNOWN, "registered" }, /* no such state */
    };

    for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
        guint32 p = hv_power_state(cases[i].enabled);
        g_assert_cmpuint(p, ==, cases[i].power);
        g_assert_cmpstr(hv_power_location(p), ==, cases[i].where);
    }
}

static void
test_opstatus(void)
{
    g_assert_cmpstr(hv_opstatus_text(HV_OPSTATUS_CREATING_SNAPSHOT), ==, "Creating Snapshot");
    g_assert_cmpstr(hv_opstatus_text(HV_OPSTATUS_MERGING_DISKS), ==, "Merging Disks");
    g_assert_cmpstr(hv_opstatus_text(HV_OPSTATUS_MIGRATING), ==, "Migrating Virtual Machine");
    g_assert_null(hv_opstatus_text(HV_OPSTATUS_NONE));
    g_assert_null(hv_opstatus_text(2));
    g_assert_null(hv_opstatus_text(32775));
    g_assert_true(hv_opstatus_is_merge(HV_OPSTATUS_DELETING_SNAPSHOT));
    g_assert_true(hv_opstatus_is_merge(HV_OPSTATUS_MERGING_DISKS));
    g_assert_false(hv_opstatus_is_merge(HV_OPSTATUS_CREATING_SNAPSHOT));
    g_assert_false(hv_opstatus_is_merge(HV_OPSTATUS_NONE));
    for (gint64 t = 0; t < 300; t++)
        g_assert_cmpint(hv_job_type_is_checkpoint(t), ==, t == 50 || t == 70 || t == 71 || t == 72);
}

static void
test_return_values(void)
{
    static const struct {
        gint64 rv;
        int code;
        const char *text;
    } cases[] = {
        { HV_RV_FAILED, VMSHIFT_ERROR_FAILED, "failed" },
        { HV_RV_ACCESS_DENIED, VMSHIFT_ERROR_PERMISSION, "access denied" },
        { HV_RV_NOT_SUPPORTED, VMSHIFT_ERROR_NOT_SUPPORTED, "not supported" },
        { HV_RV_STATUS_UNKNOWN, VMSHIFT_ERROR_FAILED, "status unknown" },
        { HV_RV_TIMEOUT, VMSHIFT_ERROR_TIMEOUT, "timeout" },
        { HV_RV_INVALID_PARAMETER, VMSHIFT_ERROR_INVALID_ARGUMENT, "invalid parameter" },
        { HV_RV_SYSTEM_IN_USE, VMSHIFT_ERROR_BUSY, "system is in use" },
        { HV_RV_INVALID_STATE, VMSHIFT_ERROR_CONFLICT, "invalid state for this operation" },
        { HV_RV_INCORRECT_DATA_TYPE, VMSHIFT_ERROR_INVALID_ARGUMENT, "incorrect data type" },
        { HV_RV_SYSTEM_NOT_AVAILABLE, VMSHIFT_ERROR_FAILED, "system is not available" },
        { HV_RV_OUT_OF_MEMORY, VMSHIFT_ERROR_NO_SPACE, "out of memory" },
        { 4097, VMSHIFT_ERROR_FAILED, "error" },
        { 32784, VMSHIFT_ERROR_FAILED, "error" },
    };

    for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_assert_cmpint(hv_return_value_code(cases[i].rv), ==, cases[i].code);
        g_assert_cmpstr(hv_return_value_text(cases[i].rv), ==, cases[i].text);
    }
    g_assert_cmpint(hv_file_sd_error_code(HV_FILE_SD_ACCESS_DENIED), ==, VMSHIFT_ERROR_PERMISSION);
    g_assert_cmpint(hv_file_sd_error_code(HV_FILE_SD_PRIVILEGE_MISSING), ==,
                    VMSHIFT_ERROR_PERMISSION);
    g_assert_cmpint(hv_file_sd_error_code(HV_FILE_SD_UNKNOWN_FAILURE), ==, VMSHIFT_ERROR_FAILED);
    g_assert_cmpint(hv_file_sd_error_code(HV_FILE_SD_INVALID_PARAMETER), ==, VMSHIFT_ERROR_FAILED);
}

static void
test_job_states(void)
{
    for (gint64 st = 0; st <= 12; st++) {
        g_assert_cmpint(hv_job_state_running(st), ==, st >= 2 && st <= 6);
        g_assert_cmpint(hv_job_state_completed(st), ==, st == 7);
        g_assert_cmpint(hv_job_state_failed(st), ==, st >= 8 && st <= 11);
    }
    g_assert_true(hv_job_state_completed(HV_JOB_COMPLETED_WITH_WARNINGS));
    g_assert_false(hv_job_state_running(HV_JOB_COMPLETED_WITH_WARNINGS));
    g_assert_false(hv_job_state_failed(HV_JOB_COMPLETED_WITH_WARNINGS));
}

static void
test_job_errors(void)
{
    static const struct {
        const char *in, *out;
    } cases[] = {
        { "Virtual machine migration operation failed at migration source.\r\n"
          "Failed to create folder.  \n",
          "Virtual machine migration operation failed at "
          "migration source: Failed to create folder" },
        { "\n\nonly line.\n", "only line" },
        { "one line", "one line" },
        { "", "" },
        { NULL, "" },
    };

    for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_autofree char *f = hv_flatten(cases[i].in);
        g_assert_cmpstr(f, ==, cases[i].out);
    }
    g_assert_cmpint(hv_job_error_code("There is not enough space on the disk. (0x80070070)"), ==,
                    VMSHIFT_ERROR_NO_SPACE);
    g_assert_cmpint(hv_job_error_code("Access denied (0x80070005)"), ==, VMSHIFT_ERROR_FAILED);
    g_assert_cmpint(hv_job_error_code(NULL), ==, VMSHIFT_ERROR_FAILED);
}

static void
test_migration_type(void)
{
    g_assert_cmpint(hv_migration_type(VMSHIFT_MIGRATION_LIVE, FALSE), ==,
                    HV_MIGRATION_VIRTUAL_SYSTEM);
    g_assert_cmpint(hv_migration_type(VMSHIFT_MIGRATION_COLD, FALSE), ==,
                    HV_MIGRATION_VIRTUAL_SYSTEM);
    g_assert_cmpint(hv_migration_type(VMSHIFT_MIGRATION_LIVE, TRUE), ==,
                    HV_MIGRATION_VIRTUAL_SYSTEM_AND_STORAGE);
    g_assert_cmpint(hv_migration_type(VMSHIFT_MIGRATION_COLD, TRUE), ==,
                    HV_MIGRATION_VIRTUAL_SYSTEM_AND_STORAGE);
    g_assert_cmpint(hv_migration_type(VMSHIFT_MIGRATION_STORAGE, TRUE), ==, HV_MIGRATION_STORAGE);
}

static void
test_paths(void)
{
    static const char parent[] =
        "\\\\HV01\\root\\virtualization\\v2:Msvm_VirtualSystemSettingData."
        "CreationClassName=\"Msvm_VirtualSystemSettingData\",InstanceID=\"Microsoft:AB\\\\CD\"";
    g_autofree char *iid = hv_path_key(parent, "InstanceID");
    g_autofree char *ccn = hv_path_key(parent, "CreationClassName");
    g_autofree char *none = hv_path_key(parent, "Name");
    g_autofree char *joined = hv_join_win("D:\\VMs\\\\", "disk.vhdx");
    g_autofree char *root = hv_volume_root("C:\\ClusterStorage\\Volume1\\");
    g_autofree char *mac = hv_nic_mac("00155D010203");
    g_autofree char *strip = hv_strip_microsoft("Microsoft:1234");

    g_assert_cmpstr(iid, ==, "Microsoft:AB\\CD");
    g_assert_cmpstr(ccn, ==, "Msvm_VirtualSystemSettingData");
    g_assert_null(none);
    g_assert_cmpstr(hv_basename_win("C:\\VMs\\vm1/disk.vhdx"), ==, "disk.vhdx");
    g_assert_cmpstr(hv_basename_win("disk.vhdx"), ==, "disk.vhdx");
    g_assert_cmpstr(joined, ==, "D:\\VMs\\disk.vhdx");
    g_assert_cmpstr(root, ==, "C:\\ClusterStorage\\Volume1");
    g_assert_true(hv_path_under("c:\\vms\\a.vhdx", "C:\\"));
    g_assert_true(hv_path_under("C:\\VMs", "C:\\VMs\\"));
    g_assert_false(hv_path_under("C:\\VMs2\\a", "C:\\VMs"));
    g_assert_cmpstr(mac, ==, "00:15:5D:01:02:03");
    g_assert_cmpstr(strip, ==, "1234");
    g_assert_true(hv_wql_safe("vm 1"));
    g_assert_false(hv_wql_safe("vm' OR 'a'='a"));
    g_assert_false(hv_wql_safe(NULL));
}

/* The pair verified in docs/design/hyperv.md §3.1. */
static void
test_vm_sid(void)
{
    g_autofree char *sid = hv_vm_sid("BCBD8064-6BB4-42EF-A9C0-7C14211C9E02");
    g_autofree char *bad = hv_vm_sid("HV01");
    g_autoptr(GByteArray) b = g_byte_array_new();
    static const guint8 group[] = { 1, 1, 0, 0, 0, 0, 0, 5, 83, 0, 0, 0 };

    g_assert_cmpstr(sid, ==, "S-1-5-83-1-3166535780-1122986932-343720105-43916321");
    g_assert_null(bad);
    g_assert_true(hv_sid_bytes("S-1-5-83", b));
    g_assert_cmpmem(b->data, b->len, group, sizeof group);
    g_byte_array_set_size(b, 0);
    g_assert_false(hv_sid_bytes("X-1-5", b));
}

static HvResponse *
parse(const char *xml)
{
    g_autoptr(GError) error = NULL;
    HvResponse *r = hv_response_parse(xml, strlen(xml), "test reply", &error);

    g_assert_no_error(error);
    g_assert_nonnull(r);
    return r;
}

#define FAULT(sub)                                                                         \
    "<s:Envelope xmlns:s=\"http://www.w3.org/2003/05/soap-envelope\"><s:Body><s:Fault>"    \
    "<s:Code><s:Value>s:Sender</s:Value><s:Subcode><s:Value>" sub "</s:Value></s:Subcode>" \
    "</s:Code><s:Reason><s:Text xml:lang=\"en-US\">Reason. </s:Text></s:Reason>"           \
    "</s:Fault></s:Body></s:Envelope>"

static void
test_fault_code(void)
{
    static const struct {
        const char *xml;
        int code;
    } cases[] = {
        { FAULT("w:AccessDenied"), VMSHIFT_ERROR_AUTH_FAILED },
        { FAULT("a:DestinationUnreachable"), VMSHIFT_ERROR_NOT_FOUND },
        { FAULT("w:TimedOut"), VMSHIFT_ERROR_TIMEOUT },
        { FAULT("w:InvalidSelectors"), VMSHIFT_ERROR_PROTOCOL },
    };

    for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_autoptr(HvResponse) r = parse(cases[i].xml);
        g_assert_true(r->is_fault);
        g_assert_cmpint(hv_fault_code(r), ==, cases[i].code);
    }
}

/* The reply a host sends when it started the migration (4096 + the job). */
static void
test_invoke_reply(void)
{
    static const char xml[] =
        "<s:Envelope xmlns:s=\"http://www.w3.org/2003/05/soap-envelope\" "
        "xmlns:a=\"http://schemas.xmlsoap.org/ws/2004/08/addressing\" "
        "xmlns:w=\"http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd\" "
        "xmlns:p=\"" HV_V2 "Msvm_VirtualSystemMigrationService\"><s:Header>"
        "<a:RelatesTo>uuid:1</a:RelatesTo></s:Header><s:Body>"
        "<p:MigrateVirtualSystemToHost_OUTPUT><p:Job><a:Address>" HV_ANON "</a:Address>"
        "<a:ReferenceParameters><w:ResourceURI>" HV_V2 "Msvm_MigrationJob</w:ResourceURI>"
        "<w:SelectorSet><w:Selector Name=\"InstanceID\">04EFED1D</w:Selector></w:SelectorSet>"
        "</a:ReferenceParameters></p:Job><p:ReturnValue>4096</p:ReturnValue>"
        "</p:MigrateVirtualSystemToHost_OUTPUT></s:Body></s:Envelope>";
    g_autoptr(HvResponse) r = parse(xml);
    const HvEpr *epr;

    g_assert_false(r->is_fault);
    g_assert_nonnull(r->body);
    g_assert_cmpstr(r->body->cls, ==, "MigrateVirtualSystemToHost_OUTPUT");
    g_assert_cmpint(hv_inst_get_int(r->body, "ReturnValue", -1), ==, HV_RV_JOB_STARTED);
    epr = hv_inst_get_epr(r->body, "Job");
    g_assert_nonnull(epr);
    g_assert_cmpstr(epr->uri, ==, HV_V2 "Msvm_MigrationJob");
    g_assert_cmpstr(hv_epr_selector(epr, "InstanceID"), ==, "04EFED1D");
}

int
main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/hyperv/wmi/constants", test_constants);
    g_test_add_func("/hyperv/wmi/power-state", test_power_state);
    g_test_add_func("/hyperv/wmi/operational-status", test_opstatus);
    g_test_add_func("/hyperv/wmi/return-values", test_return_values);
    g_test_add_func("/hyperv/wmi/job-states", test_job_states);
    g_test_add_func("/hyperv/wmi/job-errors", test_job_errors);
    g_test_add_func("/hyperv/wmi/migration-type", test_migration_type);
    g_test_add_func("/hyperv/text/paths", test_paths);
    g_test_add_func("/hyperv/text/vm-sid", test_vm_sid);
    g_test_add_func("/hyperv/wsman/fault-code", test_fault_code);
    g_test_add_func("/hyperv/wsman/invoke-reply", test_invoke_reply);
    return g_test_run();
}
