/*
 * libFuzzer target for the ESX plugin's SOAP reply handling: the hardened
 * parse (vmshift_xml_parse), fault extraction (vmshift_soap_fault_get) and
 * the plugin's RetrievePropertiesEx parser (esx_parse_retrieve_reply) with
 * the property accessors walking every value as the plugin does (device
 * lists, snapshot trees, moref arrays, task info).
 *
 * Built with -DVMSHIFT_FUZZ_REPLAY it replays the seed replies below (shapes
 * captured from vCenter/vcsim: docs/design/vsphere.md §2) and any
 * files given on the command line once each, as TAP, in `make check`.
 */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <glib.h>

#include "plugins/esx/esx.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
walk_value(const xmlNode *n, int depth)
{
    if (n == NULL || depth > 64)
        return;
    g_autofree char *t = vmshift_xml_xsi_type(n);
    g_autofree char *mt = esx_node_moref_type(n);
    (void)t;
    (void)mt;
    for (xmlNode *c = vmshift_xml_first_element(n); c != NULL; c = vmshift_xml_next_element(c))
        walk_value(c, depth + 1);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    GError *error = NULL;
    xmlDoc *doc = vmshift_xml_parse((const char *)data, size, "fuzz input", &error);
    if (doc == NULL) {
        g_error_free(error);
        return 0;
    }
    VmshiftSoapFault *fault = vmshift_soap_fault_get(doc);
    if (fault != NULL) {
        (void)vmshift_soap_fault_default_code(fault);
        vmshift_soap_fault_set_error(fault, VMSHIFT_ERROR_FAILED, "fuzz", &error);
        g_clear_error(&error);
        vmshift_soap_fault_free(fault);
    }
    GPtrArray *objects = g_ptr_array_new_with_free_func((GDestroyNotify)esx_object_free);
    char *token = NULL;
    if (esx_parse_retrieve_reply(doc, objects, &token, &error)) {
        for (guint i = 0; i < objects->len; i++) {
            EsxObject *o = objects->pdata[i];
            GHashTableIter it;
            gpointer k, v;
            g_hash_table_iter_init(&it, o->props);
            while (g_hash_table_iter_next(&it, &k, &v)) {
                g_free(esx_prop_text(o, k));
                (void)esx_prop_bool(o, k);
                (void)esx_prop_int(o, k);
                g_ptr_array_unref(esx_prop_morefs(o, k));
                walk_value(v, 0);
                GString *s = g_string_new(NULL);
                esx_xml_reserialize(s, v, "device", "backing", "<backing/>");
                g_string_free(s, TRUE);
            }
        }
        (void)esx_result_find_name(NULL, NULL, NULL);
    } else {
        g_clear_error(&error);
    }
    g_free(token);
    g_ptr_array_unref(objects);
    xmlFreeDoc(doc);
    return 0;
}

#ifdef VMSHIFT_FUZZ_REPLAY
/* The seed replies are kept as the XML reads, one element a line. */
/* clang-format off */
#define ENV_OPEN "<?xml version=\"1.0\" encoding=\"UTF-8\"?><soapenv:Envelope " \
    "xmlns:soapenv=\"http://schemas.xmlsoap.org/soap/envelope/\" " \
    "xmlns:xsd=\"http://www.w3.org/2001/XMLSchema\" " \
    "xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\"><soapenv:Body>"
#define ENV_CLOSE "</soapenv:Body></soapenv:Envelope>"
#define XSI "xmlns:XMLSchema-instance=\"http://www.w3.org/2001/XMLSchema-instance\" XMLSchema-instance:type="

static const char *const seeds[] = {
    /* VMs with devices, snapshot tree, moref arrays (vcsim's xsi prefix). */
    ENV_OPEN "<RetrievePropertiesExResponse xmlns=\"urn:vim25\"><returnval><objects>"
    "<obj type=\"VirtualMachine\">vm-67</obj>"
    "<propSet><name>name</name><val " XSI "\"xsd:string\">DC0_H0_VM0</val></propSet>"
    "<propSet><name>runtime.host</name><val " XSI "\"ManagedObjectReference\" type=\"HostSystem\">host-21</val></propSet>"
    "<propSet><name>datastore</name><val " XSI "\"ArrayOfManagedObjectReference\">"
    "<ManagedObjectReference type=\"Datastore\">/tmp/govcsim-DC0-LocalDS_0-1@folder-5</ManagedObjectReference></val></propSet>"
    "<propSet><name>config.hardware.device</name><val " XSI "\"ArrayOfVirtualDevice\">"
    "<VirtualDevice XMLSchema-instance:type=\"VirtualDisk\"><key>204</key><backing XMLSchema-instance:type=\"VirtualDiskFlatVer2BackingInfo\">"
    "<fileName>[LocalDS_0] DC0_H0_VM0/disk1.vmdk</fileName></backing><capacityInKB>1024</capacityInKB></VirtualDevice>"
    "<VirtualDevice XMLSchema-instance:type=\"VirtualE1000\"><key>4000</key><deviceInfo><label>ethernet-0</label></deviceInfo>"
    "<backing XMLSchema-instance:type=\"VirtualEthernetCardDistributedVirtualPortBackingInfo\"><port>"
    "<switchUuid>fea97929</switchUuid><portgroupKey>dvportgroup-13</portgroupKey></port></backing>"
    "<macAddress>00:0c:29:36:63:62</macAddress></VirtualDevice></val></propSet>"
    "<propSet><name>snapshot</name><val " XSI "\"VirtualMachineSnapshotInfo\"><currentSnapshot type=\"VirtualMachineSnapshot\">snapshot-1</currentSnapshot>"
    "<rootSnapshotList><snapshot type=\"VirtualMachineSnapshot\">snapshot-1</snapshot><name>pre-patch</name>"
    "<createTime>2026-11-21T23:26:57.64Z</createTime><childSnapshotList><name>child</name></childSnapshotList></rootSnapshotList></val></propSet>"
    "<missingSet><path>config.bogus</path><fault><fault " XSI "\"InvalidProperty\"></fault></fault></missingSet>"
    "</objects><token>1</token></returnval></RetrievePropertiesExResponse>" ENV_CLOSE,
    /* TaskInfo with an error. */
    ENV_OPEN "<RetrievePropertiesExResponse xmlns=\"urn:vim25\"><returnval><objects><obj type=\"Task\">task-72</obj>"
    "<propSet><name>info.state</name><val xsi:type=\"TaskInfoState\">error</val></propSet>"
    "<propSet><name>info.progress</name><val xsi:type=\"xsd:int\">50</val></propSet>"
    "<propSet><name>info.error</name><val xsi:type=\"LocalizedMethodFault\"><fault xsi:type=\"MigrationFault\"></fault>"
    "<localizedMessage>vMotion failed</localizedMessage></val></propSet></objects></returnval>"
    "</RetrievePropertiesExResponse>" ENV_CLOSE,
    /* Unauthenticated retrieve (vcsim). */
    ENV_OPEN "<RetrievePropertiesExResponse xmlns=\"urn:vim25\"><returnval><objects><obj type=\"VirtualMachine\">vm-1</obj>"
    "<missingSet><path>name</path><fault><fault " XSI "\"NotAuthenticated\"><object type=\"VirtualMachine\">vm-1</object>"
    "<privilegeId>System.View</privilegeId></fault></fault></missingSet></objects></returnval>"
    "</RetrievePropertiesExResponse>" ENV_CLOSE,
    /* Empty result, continuation. */
    ENV_OPEN "<RetrievePropertiesExResponse xmlns=\"urn:vim25\"></RetrievePropertiesExResponse>" ENV_CLOSE,
    ENV_OPEN "<ContinueRetrievePropertiesExResponse xmlns=\"urn:vim25\"><returnval><objects><obj type=\"HostSystem\">host-1</obj>"
    "<propSet><name>runtime.inMaintenanceMode</name><val xsi:type=\"xsd:boolean\">true</val></propSet></objects>"
    "</returnval></ContinueRetrievePropertiesExResponse>" ENV_CLOSE,
    /* Faults. */
    ENV_OPEN "<soapenv:Fault><faultcode>ServerFaultCode</faultcode><faultstring>Login failure</faultstring>"
    "<detail><InvalidLoginFault xmlns=\"urn:vim25\" xsi:type=\"InvalidLogin\"></InvalidLoginFault></detail>"
    "</soapenv:Fault>" ENV_CLOSE,
    ENV_OPEN "<soapenv:Fault><faultcode>ServerFaultCode</faultcode><faultstring>not found</faultstring>"
    "<detail><ManagedObjectNotFoundFault xmlns=\"urn:vim25\" xsi:type=\"ManagedObjectNotFound\"><obj type=\"HostSystem\">host-9999</obj>"
    "</ManagedObjectNotFoundFault></detail></soapenv:Fault>" ENV_CLOSE,
    /* Broken ones. */
    ENV_OPEN "<RetrievePropertiesExResponse xmlns=\"urn:vim25\"><returnval><objects><propSet><name>x</name></propSet>"
    "</objects></returnval></RetrievePropertiesExResponse>" ENV_CLOSE,
    ENV_OPEN "<RetrievePropertiesExResponse xmlns=\"urn:vim25\"><returnval><objects><obj type=\"VirtualMachine\">vm-1</obj><propSet><name>",
    "<!DOCTYPE x [<!ENTITY a \"aaaa\">]><x>&a;</x>",
};
/* clang-format on */

int
main(int argc, char **argv)
{
    guint n = G_N_ELEMENTS(seeds) + (guint)(argc > 1 ? argc - 1 : 0);
    printf("1..%u\n", n);
    for (guint i = 0; i < G_N_ELEMENTS(seeds); i++) {
        LLVMFuzzerTestOneInput((const uint8_t *)seeds[i], strlen(seeds[i]));
        printf("ok %u - seed %u\n", i + 1, i + 1);
    }
    for (int i = 1; i < argc; i++) {
        char *buf = NULL;
        gsize len = 0;
        gboolean ok = g_file_get_contents(argv[i], &buf, &len, NULL);
        if (ok)
            LLVMFuzzerTestOneInput((const uint8_t *)buf, len);
        printf("%s %u - %s\n", ok ? "ok" : "not ok", (guint)G_N_ELEMENTS(seeds) + (guint)i,
               argv[i]);
        g_free(buf);
    }
    return 0;
}
#endif
