/* Unit tests of the ESX plugin's pure logic (plugins/esx/libesx-impl.la),
 * with no simulator: planning a move from an inventory given as
 * RetrievePropertiesEx replies (destination host, datastore per disk, NIC
 * backings, findings), the RelocateVM_Task spec built from the plan, a
 * task's TaskInfo and the error its fault maps to, and the small helpers. */
#include "config.h"

#include <string.h>

#include <vmshift/vmshift.h>

#include "plugins/esx/esx-impl.h"
#include "plugins/esx/esx-ops.h"

#define ENVELOPE_HEAD                                                               \
    "<?xml version=\"1.0\"?>"                                                       \
    "<soapenv:Envelope xmlns:soapenv=\"http://schemas.xmlsoap.org/soap/envelope/\"" \
    " xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\""                      \
    " xmlns:xsd=\"http://www.w3.org/2001/XMLSchema\">"                              \
    "<soapenv:Body><RetrievePropertiesExResponse xmlns=\"urn:vim25\"><returnval>"
#define ENVELOPE_TAIL \
    "</returnval></RetrievePropertiesExResponse></soapenv:Body></soapenv:Envelope>"

/* A property: <propSet><name>NAME</name><val ...>VALUE</val></propSet>. */
#define PROP(name, attrs, value) \
    "<propSet><name>" name "</name><val " attrs ">" value "</val></propSet>"
#define STR(name, value) PROP(name, "xsi:type=\"xsd:string\"", value)
#define BOOL(name, value) PROP(name, "xsi:type=\"xsd:boolean\"", value)
#define LONG(name, value) PROP(name, "xsi:type=\"xsd:long\"", value)
#define REF(name, type, value) \
    PROP(name, "xsi:type=\"ManagedObjectReference\" type=\"" type "\"", value)
#define REFS(name, items) PROP(name, "xsi:type=\"ArrayOfManagedObjectReference\"", items)
#define MOREF(type, value) \
    "<ManagedObjectReference type=\"" type "\">" value "</ManagedObjectReference>"
#define OBJ(type, value, props) "<objects><obj type=\"" type "\">" value "</obj>" props "</objects>"

/* host-1 and host-2 share cluster domain-c1; host-3 (maintenance) is in
 * domain-c2; host-4 is disconnected. */
static const char hosts_xml[] = OBJ(
    "HostSystem", "host-1",
    STR("name", "H1") STR("runtime.connectionState", "connected")
        BOOL("runtime.inMaintenanceMode", "false")
            REF("parent", "ClusterComputeResource", "domain-c1")
                REFS("datastore", MOREF("Datastore", "ds-1") MOREF("Datastore", "ds-2"))
                    REFS("network", MOREF("Network", "network-7")))
    OBJ("HostSystem", "host-2",
        STR("name", "H2") STR("runtime.connectionState", "connected")
            BOOL("runtime.inMaintenanceMode", "false")
                REF("parent", "ClusterComputeResource", "domain-c1")
                    REFS("datastore", MOREF("Datastore", "ds-1") MOREF("Datastore", "ds-2"))
                        REFS("network", MOREF("Network", "network-7") MOREF("Network", "network-8")
                                            MOREF("DistributedVirtualPortgroup", "dvportgroup-9")))
        OBJ("HostSystem", "host-3",
            STR("name", "H3") STR("runtime.connectionState", "connected")
                BOOL("runtime.inMaintenanceMode", "true")
                    REF("parent", "ClusterComputeResource", "domain-c2")
                        REFS("datastore", MOREF("Datastore", "ds-3"))
                            REFS("network", MOREF("Network", "network-8")))
            OBJ("HostSystem", "host-4",
                STR("name", "H4") STR("runtime.connectionState", "disconnected")
                    BOOL("runtime.inMaintenanceMode", "false")
                        REF("parent", "ClusterComputeResource", "domain-c1") REFS("datastore", "")
                            REFS("network", ""));

#define MOUNT(host) \
    "<DatastoreHostMount><key type=\"HostSystem\">" host "</key></DatastoreHostMount>"

/* ds-1 LocalDS_0 (100 GiB free), ds-2 SmallDS (1 MiB free), ds-3 FarDS
 * (only on host-3), ds-4 MaintDS (in maintenance). */
static const char datastores_xml[] = OBJ(
    "Datastore", "ds-1",
    STR("name", "LocalDS_0") LONG("summary.freeSpace", "107374182400")
        BOOL("summary.accessible", "true") STR("summary.maintenanceMode", "normal")
            PROP("host", "xsi:type=\"ArrayOfDatastoreHostMount\"", MOUNT("host-1") MOUNT("host-2")))
    OBJ("Datastore", "ds-2",
        STR("name", "SmallDS") LONG("summary.freeSpace", "1048576")
            BOOL("summary.accessible", "true") STR("summary.maintenanceMode", "normal") PROP(
                "host", "xsi:type=\"ArrayOfDatastoreHostMount\"", MOUNT("host-1") MOUNT("host-2")))
        OBJ("Datastore", "ds-3",
            STR("name", "FarDS") LONG("summary.freeSpace", "107374182400")
                BOOL("summary.accessible", "true") STR("summary.maintenanceMode", "normal")
                    PROP("host", "xsi:type=\"ArrayOfDatastoreHostMount\"", MOUNT("host-3")))
            OBJ("Datastore", "ds-4",
                STR("name", "MaintDS") LONG("summary.freeSpace", "107374182400")
                    BOOL("summary.accessible", "true")
                        STR("summary.maintenanceMode", "inMaintenance")
                            PROP("host", "xsi:type=\"ArrayOfDatastoreHostMount\"",
                                 MOUNT("host-1") MOUNT("host-2")));

static const char networks_xml[] = OBJ("Network", "network-7", STR("name", "VM Network"))
    OBJ("Network", "network-8", STR("name", "Prod"))
        OBJ("DistributedVirtualPortgroup", "dvportgroup-9", STR("name", "DPG"))
            OBJ("OpaqueNetwork", "opaque-10", STR("name", "NSX"));

#define DISK(key, label, file, kb)                                                              \
    "<VirtualDevice xsi:type=\"VirtualDisk\"><key>" key "</key><deviceInfo><label>" label       \
    "</label></deviceInfo><backing xsi:type=\"VirtualDiskFlatVer2BackingInfo\"><fileName>" file \
    "</fileName></backing><capacityInKB>" kb "</capacityInKB></VirtualDevice>"
#define NIC(key, label, mac, netname, net)                                                 \
    "<VirtualDevice xsi:type=\"VirtualE1000\"><key>" key "</key><deviceInfo><label>" label \
    "</label></deviceInfo><backing xsi:type=\"VirtualEthernetCardNetworkBackingInfo\">"    \
    "<deviceName>" netname "</deviceName><network type=\"Network\">" net "</network>"      \
    "</backing><macAddress>" mac "</macAddress></VirtualDevice>"

/* vm1: on H1, running, one 1 GiB disk on LocalDS_0, one NIC on VM Network.
 * vm2: on H1, off, two disks, a NIC on VM Network and one on Prod, one
 * snapshot. */
static const char vms_xml[] = OBJ(
    "VirtualMachine", "vm-1",
    STR("name", "vm1") REF("runtime.host", "HostSystem", "host-1")
        STR("runtime.powerState", "poweredOn") LONG("summary.storage.committed", "1073741824")
            REFS("datastore", MOREF("Datastore", "ds-1"))
                PROP("config.hardware.device", "xsi:type=\"ArrayOfVirtualDevice\"",
                     DISK("2000", "Hard disk 1", "[LocalDS_0] vm1/vm1.vmdk", "1048576")
                         NIC("4000", "Network adapter 1", "00:50:56:aa:bb:01", "VM Network",
                             "network-7")))
    OBJ("VirtualMachine", "vm-2",
        STR("name", "vm2") REF("runtime.host", "HostSystem", "host-1") STR(
            "runtime.powerState", "poweredOff") LONG("summary.storage.committed", "0")
            REFS("datastore", MOREF("Datastore", "ds-1")) PROP(
                "config.hardware.device", "xsi:type=\"ArrayOfVirtualDevice\"",
                DISK("2000", "Hard disk 1", "[LocalDS_0] vm2/vm2.vmdk",
                     "2097152") DISK("2001", "Hard disk 2", "[LocalDS_0] vm2/vm2_1.vmdk", "1048576")
                    NIC("4000", "Network adapter 1", "00:50:56:aa:bb:02", "VM Network", "network-7")
                        NIC("4001", "Network adapter 2", "00:50:56:aa:bb:03", "Prod", "network-8"))
                PROP(
                    "snapshot", "xsi:type=\"VirtualMachineSnapshotInfo\"",
                    "<currentSnapshot type=\"VirtualMachineSnapshot\">snapshot-1</currentSnapshot>"
                    "<rootSnapshotList><snapshot type=\"VirtualMachineSnapshot\">snapshot-1</snapshot>"
                    "<name>before-upgrade</name><createTime>2026-01-02T03:04:05Z</createTime>"
                    "</rootSnapshotList>"));

static EsxResult *
result_from(const char *objects)
{
    g_autofree char *text = g_strconcat(ENVELOPE_HEAD, objects, ENVELOPE_TAIL, NULL);
    g_autoptr(GError) error = NULL;
    xmlDoc *doc = vmshift_xml_parse(text, strlen(text), "test reply", &error);
    g_assert_no_error(error);
    g_assert_nonnull(doc);
    EsxResult *r = g_new0(EsxResult, 1);
    r->refs = 1;
    r->docs = g_ptr_array_new_with_free_func((GDestroyNotify)xmlFreeDoc);
    r->objects = g_ptr_array_new_with_free_func((GDestroyNotify)esx_object_free);
    g_ptr_array_add(r->docs, doc);
    g_autofree char *token = NULL;
    g_assert_true(esx_parse_retrieve_reply(doc, r->objects, &token, &error));
    g_assert_no_error(error);
    g_assert_null(token);
    return r;
}

/* A handle that never talks to a server: no task manager (no merge
 * lookups), everything the plan needs already in the inventory. */
typedef struct {
    VmshiftBackend *be;
    EsxInventory inv;
    VmshiftMigrationSpec *spec;
} Fixture;

static void
fixture_set_up(Fixture *f, gconstpointer data)
{
    (void)data;
    f->be = g_new0(VmshiftBackend, 1);
    g_mutex_init(&f->be->lock);
    g_mutex_init(&f->be->rest_lock);
    f->be->name = g_strdup("test");
    f->be->url = g_strdup("https://vc.test/sdk");
    f->inv.hosts = result_from(hosts_xml);
    f->inv.datastores = result_from(datastores_xml);
    f->inv.networks = result_from(networks_xml);
    f->inv.vms = result_from(vms_xml);
    f->spec = vmshift_migration_spec_new();
}

static void
fixture_tear_down(Fixture *f, gconstpointer data)
{
    (void)data;
    esx_inventory_clear(&f->inv);
    vmshift_migration_spec_free(f->spec);
    esx_close(f->be);
}

static void
spec_set(Fixture *f, VmshiftMigrationType type, const char *vm, const char *host, const char *path)
{
    f->spec->type = type;
    f->spec->vm = g_strdup(vm);
    f->spec->dest_host = g_strdup(host);
    f->spec->dest_path = g_strdup(path);
}

static const VmshiftFinding *
find_code(const EsxPlan *p, const char *code)
{
    for (guint i = 0; i < p->findings->len; i++) {
        const VmshiftFinding *x = p->findings->pdata[i];
        if (g_strcmp0(x->code, code) == 0)
            return x;
    }
    return NULL;
}

static guint
count_severity(const EsxPlan *p, VmshiftSeverity sev)
{
    guint n = 0;
    for (guint i = 0; i < p->findings->len; i++)
        n += ((const VmshiftFinding *)p->findings->pdata[i])->severity == sev;
    return n;
}

static void
assert_finding(const EsxPlan *p, VmshiftSeverity sev, const char *code, const char *subject,
               const char *fragment)
{
    const VmshiftFinding *x = find_code(p, code);
    if (x == NULL)
        g_error("no finding %s among %u", code, p->findings->len);
    g_assert_cmpint(x->severity, ==, sev);
    g_assert_cmpstr(x->subject, ==, subject);
    if (strstr(x->message, fragment) == NULL)
        g_error("finding %s: '%s' does not say '%s'", code, x->message, fragment);
}

static void
assert_contains(const char *text, const char *fragment)
{
    if (strstr(text, fragment) == NULL)
        g_error("'%s' does not contain '%s'", text, fragment);
}

/* A vMotion to another host of the same cluster, one NIC remapped. */
static void
test_plan_live_host_and_network(Fixture *f, gconstpointer data)
{
    (void)data;
    spec_set(f, VMSHIFT_MIGRATION_LIVE, "vm1", "H2", NULL);
    g_ptr_array_add(f->spec->networks, vmshift_mapping_new("Network adapter 1", "Prod"));
    g_auto(EsxPlan) p = { 0 };
    g_autoptr(GError) error = NULL;
    g_assert_true(esx_plan_build(f->be, f->spec, &f->inv, &p, NULL, &error));
    g_assert_no_error(error);
    /* only the label resolved, for the host (which knows NICs by key) */
    g_assert_cmpuint(p.findings->len, ==, 1);
    assert_finding(&p, VMSHIFT_SEVERITY_INFO, "nic-mapped", "Network adapter 1",
                   "'Network adapter 1' is device 4000; it goes to network 'Prod'");
    g_assert_cmpstr(p.vm_name, ==, "vm1");
    g_assert_cmpstr(p.src_host, ==, "host-1");
    g_assert_cmpstr(p.src_host_name, ==, "H1");
    g_assert_cmpstr(p.dest_host->value, ==, "host-2");
    g_assert_cmpstr(p.dest_host_name, ==, "H2");
    g_assert_null(p.pool); /* same compute resource */
    g_assert_null(p.dest_ds);
    g_assert_cmpuint(p.disks->len, ==, 0);
    g_assert_cmpuint(p.needed, ==, 1073741824); /* summary.storage.committed */
    g_assert_cmpuint(p.nics->len, ==, 1);
    EsxNicTarget *n = &g_array_index(p.nics, EsxNicTarget, 0);
    g_assert_cmpstr(n->key, ==, "4000");
    g_assert_cmpstr(n->net_name, ==, "Prod");
    assert_contains(n->backing, "<deviceName>Prod</deviceName>");
    assert_contains(n->backing, ">network-8</network>");

    g_autofree char *body = esx_relocate_body(&p, NULL, NULL);
    assert_contains(body, "<RelocateVM_Task xmlns=\"urn:vim25\">");
    assert_contains(body, ">vm-1</_this>");
    assert_contains(body, "type=\"HostSystem\">host-2</host>");
    assert_contains(body, "<deviceChange><operation>edit</operation><device");
    assert_contains(body, "<macAddress>00:50:56:aa:bb:01</macAddress>");
    assert_contains(body, "<deviceName>Prod</deviceName>");
    assert_contains(body, "<priority>defaultPriority</priority>");
    g_assert_null(strstr(body, "<datastore"));
    g_assert_null(strstr(body, "<pool"));
    g_assert_null(strstr(body, "VM Network")); /* the old backing is replaced */
}

/* The power state each migration type needs. */
static void
test_plan_power_state(Fixture *f, gconstpointer data)
{
    (void)data;
    spec_set(f, VMSHIFT_MIGRATION_LIVE, "vm2", "H2", NULL);
    g_auto(EsxPlan) p = { 0 };
    g_autoptr(GError) error = NULL;
    g_assert_true(esx_plan_build(f->be, f->spec, &f->inv, &p, NULL, &error));
    assert_finding(&p, VMSHIFT_SEVERITY_ERROR, "not-running", "vm2", "is poweredOff");

    f->spec->type = VMSHIFT_MIGRATION_COLD;
    g_free(f->spec->vm);
    f->spec->vm = g_strdup("vm-1"); /* by moref */
    g_auto(EsxPlan) q = { 0 };
    g_assert_true(esx_plan_build(f->be, f->spec, &f->inv, &q, NULL, &error));
    assert_finding(&q, VMSHIFT_SEVERITY_ERROR, "running", "vm1", "needs it powered off");

    f->spec->type = 42;
    g_auto(EsxPlan) r = { 0 };
    g_assert_false(esx_plan_build(f->be, f->spec, &f->inv, &r, NULL, &error));
    g_assert_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_INVALID_ARGUMENT);
}

/* A cold move to another cluster: the root resource pool of the
 * destination compute resource (here from the handle's cache) goes into
 * the spec; the host's maintenance mode and the VM's networks and
 * datastore it lacks are findings. */
static void
test_plan_cold_other_cluster(Fixture *f, gconstpointer data)
{
    (void)data;
    f->be->pools = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    g_hash_table_insert(f->be->pools, g_strdup("domain-c2"), g_strdup("resgroup-2"));
    spec_set(f, VMSHIFT_MIGRATION_COLD, "vm2", "H3", NULL);
    f->spec->start = TRUE;
    g_auto(EsxPlan) p = { 0 };
    g_autoptr(GError) error = NULL;
    g_assert_true(esx_plan_build(f->be, f->spec, &f->inv, &p, NULL, &error));
    g_assert_no_error(error);
    g_assert_cmpstr(p.pool, ==, "resgroup-2");
    assert_finding(&p, VMSHIFT_SEVERITY_ERROR, "host-maintenance", "H3", "maintenance mode");
    assert_finding(&p, VMSHIFT_SEVERITY_ERROR, "volume-not-on-host", "LocalDS_0",
                   "which host 'H3' does not mount; add --path");
    /* Adapter 1's VM Network is not on H3 (adapter 2's Prod is). */
    assert_finding(
        &p, VMSHIFT_SEVERITY_ERROR, "network-missing", "4000",
        "on 'VM Network', which host 'H3' does not have; map it with --network 4000=NET");
    g_assert_cmpuint(count_severity(&p, VMSHIFT_SEVERITY_WARNING), ==, 0);
    g_assert_null(find_code(&p, "snapshots-present")); /* storage stays */

    g_autofree char *body = esx_relocate_body(&p, NULL, NULL);
    assert_contains(body, "type=\"ResourcePool\">resgroup-2</pool>");
    assert_contains(body, "type=\"HostSystem\">host-3</host>");
}

/* A storage move: --path for the VM, --disk-path for one disk; each target
 * datastore must have room for what goes there. */
static void
test_plan_storage(Fixture *f, gconstpointer data)
{
    (void)data;
    spec_set(f, VMSHIFT_MIGRATION_STORAGE, "vm2", NULL, "[SmallDS]");
    g_ptr_array_add(f->spec->disk_paths, vmshift_mapping_new("Hard disk 2", "LocalDS_0"));
    g_auto(EsxPlan) p = { 0 };
    g_autoptr(GError) error = NULL;
    g_assert_true(esx_plan_build(f->be, f->spec, &f->inv, &p, NULL, &error));
    g_assert_no_error(error);
    g_assert_null(p.dest_host);
    g_assert_cmpstr(p.dest_ds->value, ==, "ds-2");
    g_assert_cmpuint(p.disks->len, ==, 1);
    EsxDiskTarget *d = &g_array_index(p.disks, EsxDiskTarget, 0);
    g_assert_cmpstr(d->key, ==, "2001");
    g_assert_cmpstr(d->ds, ==, "ds-1");
    g_assert_cmpstr(d->ds_name, ==, "LocalDS_0");
    /* No committed size: the disks' capacity (3 GiB); 1 GiB of it is
     * mapped to LocalDS_0, where the VM already is (no space check), the
     * other 2 GiB go to SmallDS, which has 1 MiB. */
    g_assert_cmpuint(p.needed, ==, 3ull << 30);
    assert_finding(&p, VMSHIFT_SEVERITY_ERROR, "no-space", "SmallDS",
                   "has 1 MiB free, the VM needs 2048 MiB");
    assert_finding(&p, VMSHIFT_SEVERITY_WARNING, "snapshots-present", "vm2", "'before-upgrade'");
    g_assert_cmpuint(count_severity(&p, VMSHIFT_SEVERITY_ERROR), ==, 1);

    g_autofree char *body = esx_relocate_body(&p, NULL, NULL);
    assert_contains(body,
                    "<spec><datastore type=\"Datastore\">ds-2</datastore>"
                    "<disk><diskId>2001</diskId><datastore type=\"Datastore\">ds-1</datastore>"
                    "</disk></spec>");
    /* A disk added during the move: a spec that moves only that one. */
    g_autofree char *one = esx_relocate_body(&p, "2002", "ds-2");
    assert_contains(one, "<spec><disk><diskId>2002</diskId><datastore type=\"Datastore\">ds-2"
                         "</datastore></disk></spec>");
}

/* Datastores that cannot take the VM, by --path and by --disk-path. */
static void
test_plan_datastore_checks(Fixture *f, gconstpointer data)
{
    (void)data;
    spec_set(f, VMSHIFT_MIGRATION_LIVE, "vm1", "H2", "MaintDS");
    g_ptr_array_add(f->spec->disk_paths, vmshift_mapping_new("2000", "FarDS"));
    g_ptr_array_add(f->spec->disk_paths, vmshift_mapping_new("Hard disk 9", "LocalDS_0"));
    g_ptr_array_add(f->spec->disk_paths,
                    vmshift_mapping_new("[LocalDS_0] vm1/vm1.vmdk", "NoSuchDS"));
    g_auto(EsxPlan) p = { 0 };
    g_autoptr(GError) error = NULL;
    g_assert_true(esx_plan_build(f->be, f->spec, &f->inv, &p, NULL, &error));
    assert_finding(&p, VMSHIFT_SEVERITY_ERROR, "volume-unavailable", "MaintDS", "(inMaintenance)");
    assert_finding(&p, VMSHIFT_SEVERITY_ERROR, "volume-not-on-host", "FarDS",
                   "datastore 'FarDS' is not mounted on host 'H2'");
    assert_finding(&p, VMSHIFT_SEVERITY_ERROR, "disk-not-found", "Hard disk 9", "has no disk");
    assert_finding(&p, VMSHIFT_SEVERITY_ERROR, "path-not-found", "NoSuchDS",
                   "'NoSuchDS' not found at https://vc.test/sdk");
}

/* Destinations that do not exist or cannot be used. */
static void
test_plan_bad_destinations(Fixture *f, gconstpointer data)
{
    (void)data;
    spec_set(f, VMSHIFT_MIGRATION_LIVE, "vm1", "H9", NULL);
    g_ptr_array_add(f->spec->networks, vmshift_mapping_new("00:50:56:AA:BB:01", "NoSuchNet"));
    g_ptr_array_add(f->spec->networks, vmshift_mapping_new("Network adapter 7", "Prod"));
    g_auto(EsxPlan) p = { 0 };
    g_autoptr(GError) error = NULL;
    g_assert_true(esx_plan_build(f->be, f->spec, &f->inv, &p, NULL, &error));
    assert_finding(&p, VMSHIFT_SEVERITY_ERROR, "host-not-found", "H9", "'H9' not found");
    assert_finding(&p, VMSHIFT_SEVERITY_ERROR, "network-missing", "NoSuchNet", "not found");
    assert_finding(&p, VMSHIFT_SEVERITY_ERROR, "nic-not-found", "Network adapter 7",
                   "no network adapter 'Network adapter 7'");
    g_assert_null(find_code(&p, "nothing-to-do"));

    g_free(f->spec->dest_host);
    f->spec->dest_host = g_strdup("host-4");
    g_ptr_array_set_size(f->spec->networks, 0);
    g_auto(EsxPlan) q = { 0 };
    g_assert_true(esx_plan_build(f->be, f->spec, &f->inv, &q, NULL, &error));
    assert_finding(&q, VMSHIFT_SEVERITY_ERROR, "host-unreachable", "H4", "is disconnected");

    g_clear_pointer(&f->spec->dest_host, g_free);
    g_auto(EsxPlan) r = { 0 };
    g_assert_true(esx_plan_build(f->be, f->spec, &f->inv, &r, NULL, &error));
    assert_finding(&r, VMSHIFT_SEVERITY_ERROR, "no-destination", "vm1", "no destination host");

    f->spec->type = VMSHIFT_MIGRATION_STORAGE;
    g_auto(EsxPlan) s = { 0 };
    g_assert_true(esx_plan_build(f->be, f->spec, &f->inv, &s, NULL, &error));
    assert_finding(&s, VMSHIFT_SEVERITY_ERROR, "no-destination", "vm1", "--path DATASTORE");
}

/* Networks: one the destination lacks, a distributed port group (its
 * backing from the handle's cache), an opaque network (not mappable). */
static void
test_plan_networks(Fixture *f, gconstpointer data)
{
    (void)data;
    f->be->pg_backings = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    g_hash_table_insert(f->be->pg_backings, g_strdup("dvportgroup-9"),
                        g_strdup("<backing xsi:type="
                                 "\"VirtualEthernetCardDistributedVirtualPortBackingInfo\">"
                                 "<port><switchUuid>50 2a</switchUuid><portgroupKey>dvportgroup-9"
                                 "</portgroupKey></port></backing>"));
    spec_set(f, VMSHIFT_MIGRATION_COLD, "vm2", "H1", NULL);
    g_ptr_array_add(f->spec->networks, vmshift_mapping_new("4000", "DPG"));
    g_ptr_array_add(f->spec->networks, vmshift_mapping_new("4001", "NSX"));
    g_auto(EsxPlan) p = { 0 };
    g_autoptr(GError) error = NULL;
    g_assert_true(esx_plan_build(f->be, f->spec, &f->inv, &p, NULL, &error));
    /* Same host: H1 has no DPG. */
    g_assert_null(p.dest_host);
    assert_finding(&p, VMSHIFT_SEVERITY_ERROR, "network-missing", "DPG",
                   "network 'DPG' is not available on host 'H1'");
    assert_finding(&p, VMSHIFT_SEVERITY_ERROR, "network-unusable", "NSX", "is a OpaqueNetwork");
    g_assert_cmpuint(p.nics->len, ==, 1);
    EsxNicTarget *n = &g_array_index(p.nics, EsxNicTarget, 0);
    assert_contains(n->backing, "<portgroupKey>dvportgroup-9</portgroupKey>");
    /* Adapter 2 stays on 'Prod', which H1 has: nothing to say (one finding
     * per condition: the failed mapping above). */
    g_assert_null(find_code(&p, "nic-unmapped"));
    g_assert_null(find_code(&p, "nothing-to-do")); /* a NIC changes */
}

static void
test_plan_nothing_to_do(Fixture *f, gconstpointer data)
{
    (void)data;
    spec_set(f, VMSHIFT_MIGRATION_LIVE, "vm1", "H1", NULL);
    g_auto(EsxPlan) p = { 0 };
    g_autoptr(GError) error = NULL;
    g_assert_true(esx_plan_build(f->be, f->spec, &f->inv, &p, NULL, &error));
    g_assert_cmpuint(p.findings->len, ==, 1);
    assert_finding(&p, VMSHIFT_SEVERITY_INFO, "nothing-to-do", "vm1", "already on host 'H1'");
    g_assert_null(p.dest_host);
}

/* --transfer: san keeps the storage (shared datastores only), network
 * needs a target datastore. */
static void
test_plan_transfer(Fixture *f, gconstpointer data)
{
    (void)data;
    spec_set(f, VMSHIFT_MIGRATION_LIVE, "vm1", "H2", NULL);
    f->spec->transfer = VMSHIFT_TRANSFER_SAN;
    g_auto(EsxPlan) p = { 0 };
    g_autoptr(GError) error = NULL;
    g_assert_true(esx_plan_build(f->be, f->spec, &f->inv, &p, NULL, &error));
    g_assert_null(find_code(&p, "storage-not-shared"));
    g_assert_null(find_code(&p, "transfer-conflict"));

    g_free(f->spec->dest_path);
    f->spec->dest_path = g_strdup("LocalDS_0");
    g_auto(EsxPlan) q = { 0 };
    g_assert_true(esx_plan_build(f->be, f->spec, &f->inv, &q, NULL, &error));
    assert_finding(&q, VMSHIFT_SEVERITY_ERROR, "transfer-conflict", "vm1",
                   "--transfer san keeps the storage");

    f->spec->transfer = VMSHIFT_TRANSFER_NETWORK;
    g_auto(EsxPlan) r = { 0 };
    g_assert_true(esx_plan_build(f->be, f->spec, &f->inv, &r, NULL, &error));
    g_assert_null(find_code(&r, "transfer-conflict"));
    g_clear_pointer(&f->spec->dest_path, g_free);
    g_auto(EsxPlan) t = { 0 };
    g_assert_true(esx_plan_build(f->be, f->spec, &f->inv, &t, NULL, &error));
    assert_finding(&t, VMSHIFT_SEVERITY_ERROR, "transfer-conflict", "vm1",
                   "give the target datastore with --path");
}

/* When planning cannot run at all. */
static void
test_plan_errors(Fixture *f, gconstpointer data)
{
    (void)data;
    g_autoptr(GError) error = NULL;
    g_auto(EsxPlan) p = { 0 };
    f->spec->type = VMSHIFT_MIGRATION_LIVE;
    g_assert_false(esx_plan_build(f->be, f->spec, &f->inv, &p, NULL, &error));
    g_assert_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_INVALID_ARGUMENT);
    g_clear_error(&error);

    spec_set(f, VMSHIFT_MIGRATION_LIVE, "vm1", "H2", NULL);
    GVariantBuilder b;
    g_variant_builder_init(&b, G_VARIANT_TYPE_VARDICT);
    g_variant_builder_add(&b, "{sv}", "postcopy", g_variant_new_boolean(TRUE));
    f->spec->options = g_variant_ref_sink(g_variant_builder_end(&b));
    g_auto(EsxPlan) q = { 0 };
    g_assert_false(esx_plan_build(f->be, f->spec, &f->inv, &q, NULL, &error));
    g_assert_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_INVALID_ARGUMENT);
    /* the unknown key is named */
    g_assert_nonnull(strstr(error->message, "unknown option 'postcopy'"));
    g_clear_error(&error);
    g_clear_pointer(&f->spec->options, g_variant_unref);

    g_free(f->spec->vm);
    f->spec->vm = g_strdup("ghost");
    g_auto(EsxPlan) r = { 0 };
    g_assert_false(esx_plan_build(f->be, f->spec, &f->inv, &r, NULL, &error));
    g_assert_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_NOT_FOUND);
}

/* A task's fault type → the vmshift error code. */
static void
test_task_fault_code(void)
{
    static const struct {
        const char *type;
        int code;
    } cases[] = {
        { "InvalidState", VMSHIFT_ERROR_CONFLICT },
        { "InvalidPowerState", VMSHIFT_ERROR_CONFLICT },
        { "HostNotConnected", VMSHIFT_ERROR_CONNECTION },
        { "NotAuthenticated", VMSHIFT_ERROR_AUTH_FAILED },
        { "NoPermission", VMSHIFT_ERROR_PERMISSION },
        { "InsufficientResourcesFault", VMSHIFT_ERROR_NO_SPACE },
        { "OutOfDiskSpace", VMSHIFT_ERROR_NO_SPACE },
        { "ManagedObjectNotFound", VMSHIFT_ERROR_NOT_FOUND },
        { "TaskInProgress", VMSHIFT_ERROR_BUSY },
        { "Timedout", VMSHIFT_ERROR_TIMEOUT },
        { "InvalidArgument", VMSHIFT_ERROR_INVALID_ARGUMENT },
        { "RequestCanceled", VMSHIFT_ERROR_FAILED },
        { "invalidstate", VMSHIFT_ERROR_FAILED },
        { NULL, VMSHIFT_ERROR_FAILED },
    };
    for (guint i = 0; i < G_N_ELEMENTS(cases); i++)
        g_assert_cmpint(esx_task_fault_code(cases[i].type), ==, cases[i].code);
}

/* TaskInfo of a failed, a running and a broken task. */
static void
test_task_parse(Fixture *f, gconstpointer data)
{
    (void)data;
    g_autoptr(EsxResult) tasks = result_from(
        OBJ("Task", "task-1",
            STR("info.state", "error") PROP(
                "info.error", "xsi:type=\"LocalizedMethodFault\"",
                "<fault xsi:type=\"InvalidPowerState\"><requestedState>poweredOn</requestedState>"
                "</fault><localizedMessage>  The attempted operation cannot be performed "
                "in the current state (Powered off).\n</localizedMessage>"))
            OBJ("Task", "task-2",
                STR("info.state", "running") PROP("info.progress", "xsi:type=\"xsd:int\"", "42"))
                OBJ("Task", "task-3", PROP("info.progress", "xsi:type=\"xsd:int\"", "1")));
    g_auto(EsxTaskInfo) ti = { 0 };
    g_autoptr(GError) error = NULL;
    g_assert_true(esx_task_parse(f->be, "task-1", esx_result_find(tasks, "task-1"), &ti, &error));
    g_assert_cmpstr(ti.state, ==, "error");
    g_assert_cmpint(ti.progress, ==, -1);
    g_assert_cmpstr(ti.fault_type, ==, "InvalidPowerState");
    g_assert_cmpstr(
        ti.message, ==,
        "The attempted operation cannot be performed in the current state (Powered off).");
    g_assert_cmpint(esx_task_fault_code(ti.fault_type), ==, VMSHIFT_ERROR_CONFLICT);

    g_assert_true(esx_task_parse(f->be, "task-2", esx_result_find(tasks, "task-2"), &ti, &error));
    g_assert_cmpstr(ti.state, ==, "running");
    g_assert_cmpint(ti.progress, ==, 42);
    g_assert_null(ti.fault_type);
    g_assert_null(ti.message);

    g_assert_false(esx_task_parse(f->be, "task-3", esx_result_find(tasks, "task-3"), &ti, &error));
    g_assert_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_PROTOCOL);
    assert_contains(error->message, "task task-3 has no info.state");
}

/* Disks a VM gained or lost between two looks. */
static void
test_disk_diff(Fixture *f, gconstpointer data)
{
    (void)data;
    EsxObject *vm1 = esx_result_find(f->inv.vms, "vm-1");
    EsxObject *vm2 = esx_result_find(f->inv.vms, "vm-2");
    g_auto(EsxVmState) a = { 0 };
    g_auto(EsxVmState) b = { 0 };
    g_autofree char *power = NULL;
    esx_vm_state_parse(vm1, &a, &power);
    g_assert_cmpstr(power, ==, "poweredOn");
    g_assert_cmpstr(a.host, ==, "host-1");
    g_assert_cmpuint(a.snapshots, ==, 0);
    g_assert_cmpuint(g_hash_table_size(a.disks), ==, 1);
    esx_vm_state_parse(vm2, &b, NULL);
    g_assert_cmpuint(b.snapshots, ==, 1);
    g_assert_cmpuint(g_hash_table_size(b.disks), ==, 2);

    gboolean added = FALSE;
    g_autofree char *none = esx_disk_diff(&a, &a, &added);
    g_assert_null(none);
    g_autofree char *gained = esx_disk_diff(&a, &b, &added);
    g_assert_true(added);
    g_assert_cmpstr(gained, ==, "disk 2001 ([LocalDS_0] vm2/vm2_1.vmdk) was added");
    g_hash_table_remove(b.disks, "2000");
    g_hash_table_remove(b.disks, "2001");
    g_autofree char *lost = esx_disk_diff(&a, &b, &added);
    g_assert_false(added);
    g_assert_cmpstr(lost, ==, "disk 2000 ([LocalDS_0] vm1/vm1.vmdk) was removed");
}

/* The VM's devices by key, label, MAC (any case) or file name. */
static void
test_find_device(Fixture *f, gconstpointer data)
{
    (void)data;
    EsxObject *vm = esx_result_find(f->inv.vms, "vm-2");
    const xmlNode *d1 = esx_find_device(vm, "2001", FALSE);
    g_assert_nonnull(d1);
    g_assert_true(esx_find_device(vm, "Hard disk 2", FALSE) == d1);
    g_assert_true(esx_find_device(vm, "[LocalDS_0] vm2/vm2_1.vmdk", FALSE) == d1);
    g_assert_null(esx_find_device(vm, "2001", TRUE)); /* not a NIC */
    const xmlNode *n2 = esx_find_device(vm, "00:50:56:AA:BB:03", TRUE);
    g_assert_nonnull(n2);
    g_assert_true(esx_find_device(vm, "Network adapter 2", TRUE) == n2);
    g_assert_null(esx_find_device(vm, "4001", FALSE)); /* not a disk */
    g_autofree char *moref = NULL, *name = NULL;
    esx_nic_network(n2, f->inv.networks, &moref, &name);
    g_assert_cmpstr(moref, ==, "network-8");
    g_assert_cmpstr(name, ==, "Prod");
}

static void
test_helpers(void)
{
    static const struct {
        guint32 prefix;
        const char *mask;
    } masks[] = {
        { 0, "0.0.0.0" },          { 8, "255.0.0.0" },        { 20, "255.255.240.0" },
        { 24, "255.255.255.0" },   { 31, "255.255.255.254" }, { 32, "255.255.255.255" },
        { 40, "255.255.255.255" },
    };
    for (guint i = 0; i < G_N_ELEMENTS(masks); i++) {
        g_autofree char *m = esx_prefix_to_mask(masks[i].prefix);
        g_assert_cmpstr(m, ==, masks[i].mask);
    }

    g_autofree char *ds1 = esx_ds_name_of_path("[LocalDS_0] vm1/vm1.vmx");
    g_assert_cmpstr(ds1, ==, "LocalDS_0");
    g_autofree char *ds2 = esx_ds_name_of_path("[Shared DS]");
    g_assert_cmpstr(ds2, ==, "Shared DS");
    g_assert_null(esx_ds_name_of_path("LocalDS_0"));
    g_assert_null(esx_ds_name_of_path("[unterminated"));
    g_assert_null(esx_ds_name_of_path(NULL));

    const char *names = "urn:tag:1\tgold\nurn:tag:12\tsilver\n";
    g_autofree char *l1 = esx_tag_label(names, "urn:tag:12");
    g_assert_cmpstr(l1, ==, "silver (urn:tag:12)");
    g_autofree char *l2 = esx_tag_label(names, "urn:tag:1");
    g_assert_cmpstr(l2, ==, "gold (urn:tag:1)");
    g_autofree char *l3 = esx_tag_label(names, "urn:tag:2");
    g_assert_cmpstr(l3, ==, "urn:tag:2");
    g_autofree char *l4 = esx_tag_label(NULL, "urn:tag:1");
    g_assert_cmpstr(l4, ==, "urn:tag:1");

    g_assert_true(esx_is_nic_type("VirtualVmxnet3"));
    g_assert_false(esx_is_nic_type("VirtualDisk"));
    g_assert_false(esx_is_nic_type(NULL));
}

#define ADD(path, fn) g_test_add(path, Fixture, NULL, fixture_set_up, fn, fixture_tear_down)

int
main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    ADD("/esx/plan/live-host-and-network", test_plan_live_host_and_network);
    ADD("/esx/plan/power-state", test_plan_power_state);
    ADD("/esx/plan/cold-other-cluster", test_plan_cold_other_cluster);
    ADD("/esx/plan/storage", test_plan_storage);
    ADD("/esx/plan/datastore-checks", test_plan_datastore_checks);
    ADD("/esx/plan/bad-destinations", test_plan_bad_destinations);
    ADD("/esx/plan/networks", test_plan_networks);
    ADD("/esx/plan/nothing-to-do", test_plan_nothing_to_do);
    ADD("/esx/plan/transfer", test_plan_transfer);
    ADD("/esx/plan/errors", test_plan_errors);
    g_test_add_func("/esx/task/fault-code", test_task_fault_code);
    ADD("/esx/task/parse", test_task_parse);
    ADD("/esx/vmstate/disk-diff", test_disk_diff);
    ADD("/esx/inventory/find-device", test_find_device);
    g_test_add_func("/esx/helpers", test_helpers);
    return g_test_run();
}
