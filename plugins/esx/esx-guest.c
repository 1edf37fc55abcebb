/*
 * ESX plugin: guest customization (network settings of the guest) after a
 * move (`vmshift migrate --ip`): CustomizeVM_Task on the powered-off VM,
 * read back (vSphere holds it pending until the next power-on:
 * config.tools.pendingCustomization), then, when the job's spec says
 * --start, PowerOnVM_Task, at which the guest takes the new settings.
 * Before the move, check_migration refuses a --ip that does not cover
 * every adapter (esx_guest_check_migration).
 */
#include "config.h"

#include <string.h>

#include "esx-impl.h"
#include "esx-ops.h"

/* A prefix length as a dotted netmask (24 → 255.255.255.0). */
char *
esx_prefix_to_mask(guint32 prefix)
{
    guint32 m = prefix == 0 ? 0 : (prefix >= 32 ? 0xffffffffu : ~((1u << (32 - prefix)) - 1));
    return g_strdup_printf("%u.%u.%u.%u", m >> 24, (m >> 16) & 255, (m >> 8) & 255, m & 255);
}

/* vSphere holds a customization for @moref (pending until its next
 * power-on); the task's success alone is not taken for it */
static gboolean
customize_read_back(VmshiftBackend *be, const char *moref, const char *vmname, GError **error)
{
    static const char *const paths[] = { "config.tools.pendingCustomization", NULL };
    g_autoptr(EsxResult) keep = NULL;
    EsxObject *o = esx_retrieve_one(be, "VirtualMachine", moref, paths, &keep, NULL, error);
    if (o == NULL)
        return FALSE;
    g_autofree char *pending = esx_prop_text(o, "config.tools.pendingCustomization");
    if (pending == NULL || *pending == 0) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_FAILED,
                    "VM %s: CustomizeVM_Task succeeded but vSphere holds no pending "
                    "customization (config.tools.pendingCustomization is empty)",
                    vmname);
        return FALSE;
    }
    return TRUE;
}

/* --start after a customized cold move: the power-on applies it */
static gboolean
customize_power_on(VmshiftBackend *be, const char *moref, const char *vmname, VmshiftJob *job,
                   GError **error)
{
    g_autofree char *this = esx_moref_xml("_this", "VirtualMachine", moref);
    g_autofree char *body = g_strdup_printf(
        "<PowerOnVM_Task xmlns=\"urn:vim25\">%s</PowerOnVM_Task>", this);
    g_autofree char *task = esx_start_task(be, "PowerOnVM_Task", body, error);
    if (task == NULL || !esx_wait_task(be, task, "PowerOnVM_Task", error)) {
        g_prefix_error(error, "VM %s was customized but did not power on: ", vmname);
        return FALSE;
    }
    vmshift_job_log(job, VMSHIFT_LOG_INFO, "VM %s powered on with its new guest settings", vmname);
    VmshiftJobProgress pr = { .struct_size = sizeof pr };
    vmshift_job_get_progress(job, &pr);
    if (pr.location_host != NULL)
        vmshift_job_set_location(job, pr.location_host, "poweredOn");
    vmshift_job_progress_clear(&pr);
    return TRUE;
}

/* The CustomizationIPSettings of @g (inside <adapter>), in the type's
 * member order: ip, subnetMask, gateway, ipV6Spec. IPv4: a fixed address,
 * its netmask and gateway; IPv6: DHCP for IPv4 and the fixed IPv6 address,
 * its prefix length and gateway in ipV6Spec; no address: DHCP. */
static void
append_adapter(GString *map, const VmshiftGuestNic *g)
{
    g_autofree char *ea = g->address != NULL ? vmshift_xml_escape(g->address) : NULL;
    g_autofree char *eg = g->gateway != NULL ? vmshift_xml_escape(g->gateway) : NULL;
    gboolean v6 = g->address != NULL && strchr(g->address, ':') != NULL;
    if (g->address == NULL || v6) {
        g_string_append(map, "<ip xsi:type=\"CustomizationDhcpIpGenerator\"></ip>");
    } else {
        g_autofree char *mask = esx_prefix_to_mask(g->prefix_len);
        g_string_append_printf(
            map,
            "<ip xsi:type=\"CustomizationFixedIp\"><ipAddress>%s</ipAddress></ip>"
            "<subnetMask>%s</subnetMask>",
            ea, mask);
        if (eg != NULL)
            g_string_append_printf(map, "<gateway>%s</gateway>", eg);
    }
    if (v6) {
        g_string_append_printf(map,
                               "<ipV6Spec><ip xsi:type=\"CustomizationFixedIpV6\"><ipAddress>%s"
                               "</ipAddress><subnetMask>%u</subnetMask></ip>",
                               ea, g->prefix_len);
        if (eg != NULL)
            g_string_append_printf(map, "<gateway>%s</gateway>", eg);
        g_string_append(map, "</ipV6Spec>");
    }
}

/* Guest customization (CustomizeVM_Task, LinuxPrep): vSphere rewrites the
 * settings of every NIC, so every NIC needs an entry; they apply at the
 * next power-on. */
gboolean
esx_customize_guest(VmshiftBackend *be, const char *name, GPtrArray *nics, VmshiftJob *job,
                    guint32 flags, GError **error)
{
    if (!vmshift_check_flags(flags, 0, "customize_guest", error))
        return FALSE;
    g_auto(EsxInventory) inv = { 0 };
    EsxObject *vm = esx_find_vm(be, &inv, name, error);
    if (vm == NULL)
        return FALSE;
    g_autofree char *vmname = esx_prop_text(vm, "name");
    g_autofree char *power = esx_prop_text(vm, "runtime.powerState");
    if (g_strcmp0(power, "poweredOff") != 0) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_CONFLICT,
                    "cannot customize VM %s: it is %s; guest customization needs it powered off",
                    vmname, power);
        return FALSE;
    }
    g_autoptr(GString) map = g_string_new(NULL);
    g_autoptr(GString) dns = g_string_new(NULL);
    guint count = 0;
    for (xmlNode *d = vmshift_xml_first_element(esx_prop(vm, "config.hardware.device")); d != NULL;
         d = vmshift_xml_next_element(d)) {
        g_autofree char *t = vmshift_xml_xsi_type(d);
        if (!esx_is_nic_type(t))
            continue;
        g_autofree char *key = vmshift_xml_child_text(d, VMSHIFT_NS_VIM25, "key");
        g_autofree char *mac = vmshift_xml_child_text(d, VMSHIFT_NS_VIM25, "macAddress");
        VmshiftGuestNic *g = NULL;
        for (guint i = 0; nics != NULL && i < nics->len && g == NULL; i++) {
            VmshiftGuestNic *x = nics->pdata[i];
            if (esx_find_device(vm, x->nic, TRUE) == d)
                g = x;
        }
        if (g == NULL) {
            g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_INVALID_ARGUMENT,
                        "cannot customize VM %s: no settings for network adapter %s "
                        "(vSphere rewrites every adapter's settings)",
                        vmname, key);
            return FALSE;
        }
        g_autofree char *emac = vmshift_xml_escape(mac);
        g_string_append(map, "<nicSettingMap>");
        if (mac != NULL)
            g_string_append_printf(map, "<macAddress>%s</macAddress>", emac);
        g_string_append(map, "<adapter>");
        append_adapter(map, g);
        g_string_append(map, "</adapter></nicSettingMap>");
        for (guint i = 0; g->dns != NULL && i < g->dns->len; i++) {
            g_autofree char *e = vmshift_xml_escape(g->dns->pdata[i]);
            g_string_append_printf(dns, "<dnsServerList>%s</dnsServerList>", e);
        }
        vmshift_job_log(job, VMSHIFT_LOG_INFO, "VM %s adapter %s: %s/%u gateway %s", vmname, key,
                        g->address != NULL ? g->address : "DHCP", g->prefix_len,
                        g->gateway != NULL ? g->gateway : "-");
        count++;
    }
    g_autofree char *ename = vmshift_xml_escape(vmname);
    g_autofree char *this = esx_moref_xml("_this", "VirtualMachine", vm->value);
    g_autofree char *body = g_strdup_printf(
        "<CustomizeVM_Task xmlns=\"urn:vim25\">%s<spec>"
        "<identity xsi:type=\"CustomizationLinuxPrep\"><hostName xsi:type=\"CustomizationFixedName\">"
        "<name>%s</name></hostName><domain>localdomain</domain></identity>"
        "<globalIPSettings>%s</globalIPSettings>%s</spec></CustomizeVM_Task>",
        this, ename, dns->str, map->str);
    g_autofree char *task = esx_start_task(be, "CustomizeVM_Task", body, error);
    if (task == NULL || !esx_wait_task(be, task, "CustomizeVM_Task", error))
        return FALSE;
    if (!customize_read_back(be, vm->value, vmname, error))
        return FALSE;
    const VmshiftMigrationSpec *spec = vmshift_job_get_spec(job);
    gboolean start = spec != NULL && spec->start && spec->type == VMSHIFT_MIGRATION_COLD;
    g_autofree char *res = g_strdup_printf("%u adapter(s) customized; %s", count,
                                           start ? "applied at the power-on"
                                                 : "applied at the next power-on");
    vmshift_job_set_result(job, "customize", res);
    return !start || customize_power_on(be, vm->value, vmname, job, error);
}

/* The key under which the host passes --ip's items ("NIC=ADDR/PREFIX[,GW]",
 * a string array) in the options of check_migration (HOST_SPEC_IP_KEY). */
#define ESX_IP_KEY "vmshift.ip"

/* vSphere rewrites every adapter's settings, so each needs an --ip, and an
 * --ip names an adapter of the VM (key, label or MAC); one line says which
 * do not. */
static gboolean
check_every_nic(const EsxObject *vm, const char *vmname, const char *const *items, GError **error)
{
    g_autoptr(GString) missing = g_string_new(NULL);
    guint n = 0;

    for (guint i = 0; items[i] != NULL; i++) {
        g_autofree char *nic = g_strndup(items[i], strcspn(items[i], "="));
        if (esx_find_device(vm, nic, TRUE) == NULL) {
            g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_INVALID_ARGUMENT,
                        "--ip %s: VM %s has no network adapter '%s' (give its key, label or MAC)",
                        items[i], vmname, nic);
            return FALSE;
        }
    }
    for (xmlNode *d = vmshift_xml_first_element(esx_prop(vm, "config.hardware.device")); d != NULL;
         d = vmshift_xml_next_element(d)) {
        g_autofree char *t = vmshift_xml_xsi_type(d);
        gboolean given = FALSE;
        if (!esx_is_nic_type(t))
            continue;
        for (guint i = 0; items[i] != NULL && !given; i++) {
            g_autofree char *nic = g_strndup(items[i], strcspn(items[i], "="));
            given = esx_find_device(vm, nic, TRUE) == d;
        }
        if (given)
            continue;
        g_autofree char *key = vmshift_xml_child_text(d, VMSHIFT_NS_VIM25, "key");
        xmlNode *di = vmshift_xml_child(d, VMSHIFT_NS_VIM25, "deviceInfo");
        g_autofree char *label = vmshift_xml_child_text(di, VMSHIFT_NS_VIM25, "label");
        g_string_append_printf(missing, "%s%s%s%s%s", n++ ? ", " : "", key, label ? " (" : "",
                               label ? label : "", label ? ")" : "");
    }
    if (n == 0)
        return TRUE;
    g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_INVALID_ARGUMENT,
                "--ip: VM %s has no --ip for network adapter%s %s (vSphere's guest customization "
                "rewrites every adapter's settings: give each one an --ip)",
                vmname, n == 1 ? "" : "s", missing->str);
    return FALSE;
}

/* check_migration: without --ip, esx_check_migration; with it, the same
 * plan (the options without the host's key) and every adapter covered. */
GPtrArray *
esx_guest_check_migration(VmshiftBackend *be, const VmshiftMigrationSpec *spec, guint32 flags,
                          GError **error)
{
    g_autoptr(GVariant)
        ipv = spec->options != NULL
                  ? g_variant_lookup_value(spec->options, ESX_IP_KEY, G_VARIANT_TYPE_STRING_ARRAY)
                  : NULL;
    if (ipv == NULL)
        return esx_check_migration(be, spec, flags, error);
    if (!vmshift_check_flags(flags, 0, "check_migration", error))
        return NULL;
    g_autoptr(VmshiftMigrationSpec) own = vmshift_migration_spec_copy(spec);
    g_auto(GVariantBuilder) b = G_VARIANT_BUILDER_INIT(G_VARIANT_TYPE_VARDICT);
    GVariantIter it;
    const char *k;
    GVariant *v;
    guint n = 0;
    g_variant_iter_init(&it, spec->options);
    while (g_variant_iter_next(&it, "{&sv}", &k, &v)) {
        if (strcmp(k, ESX_IP_KEY) != 0) {
            g_variant_builder_add(&b, "{sv}", k, v);
            n++;
        }
        g_variant_unref(v);
    }
    g_clear_pointer(&own->options, g_variant_unref);
    if (n > 0)
        own->options = g_variant_ref_sink(g_variant_builder_end(&b));
    g_auto(EsxInventory) inv = { 0 };
    g_auto(EsxPlan) p = { 0 };
    g_autofree const char **items = g_variant_get_strv(ipv, NULL);
    if (!esx_plan_build(be, own, &inv, &p, NULL, error)
        || !check_every_nic(p.vm, p.vm_name, items, error))
        return NULL;
    return g_ptr_array_ref(p.findings);
}
