/*
 * ESX plugin: watch_changes, a VM's disk, snapshot, power and host changes
 * as they happen (WaitForUpdatesEx on a PropertyCollector of its own).
 */
#include "config.h"

#include <string.h>

#include "esx-impl.h"
#include "esx-ops.h"

/* Calls @func for each difference between @prev and @now (compared whole:
 * simple and exact). */
static void
report_changes(EsxInventory *inv, const char *vmname, const EsxVmState *prev,
               const char *prev_power, const EsxVmState *now, const char *power,
               VmshiftChangeFunc func, gpointer user_data)
{
    GHashTableIter it;
    gpointer k, v;
    g_hash_table_iter_init(&it, now->disks);
    while (g_hash_table_iter_next(&it, &k, &v))
        if (!g_hash_table_contains(prev->disks, k)) {
            g_autoptr(VmshiftChange)
                ch = vmshift_change_new(VMSHIFT_CHANGE_DISK_ADDED, vmname, k, v);
            func(ch, user_data);
        }
    g_hash_table_iter_init(&it, prev->disks);
    while (g_hash_table_iter_next(&it, &k, &v))
        if (!g_hash_table_contains(now->disks, k)) {
            g_autoptr(VmshiftChange)
                ch = vmshift_change_new(VMSHIFT_CHANGE_DISK_REMOVED, vmname, k, v);
            func(ch, user_data);
        }
    if (now->snapshots != prev->snapshots) {
        g_autofree char *d = g_strdup_printf("%u snapshot(s), was %u", now->snapshots,
                                             prev->snapshots);
        g_autoptr(VmshiftChange) ch = vmshift_change_new(now->snapshots > prev->snapshots
                                                             ? VMSHIFT_CHANGE_SNAPSHOT_TAKEN
                                                             : VMSHIFT_CHANGE_SNAPSHOT_REMOVED,
                                                         vmname, NULL, d);
        func(ch, user_data);
    }
    if (g_strcmp0(power, prev_power) != 0) {
        g_autoptr(VmshiftChange) ch = vmshift_change_new(VMSHIFT_CHANGE_POWER, vmname, NULL, power);
        func(ch, user_data);
    }
    if (g_strcmp0(now->host, prev->host) != 0) {
        g_autofree char *h = esx_name_of(inv->hosts, now->host);
        g_autoptr(VmshiftChange) ch = vmshift_change_new(VMSHIFT_CHANGE_HOST, vmname, NULL, h);
        func(ch, user_data);
    }
}

/* The filter on VM @vmref in collector @mypc (a _this element), then the
 * updates until @cancellable is cancelled or a call fails: returns FALSE
 * with @error set, always. */
static gboolean
watch_with_collector(VmshiftBackend *be, VmshiftHttp *http, const char *mypc, EsxInventory *inv,
                     const char *vmref, const char *vmname, VmshiftChangeFunc func,
                     gpointer user_data, GCancellable *cancellable, GError **error)
{
    g_autofree char *obj = esx_moref_xml("obj", "VirtualMachine", vmref);
    g_autofree char *fb = g_strdup_printf(
        "<CreateFilter xmlns=\"urn:vim25\">%s<spec><propSet><type>VirtualMachine</type>"
        "<pathSet>config.hardware.device</pathSet><pathSet>snapshot</pathSet>"
        "<pathSet>runtime.powerState</pathSet><pathSet>runtime.host</pathSet></propSet>"
        "<objectSet>%s</objectSet></spec><partialUpdates>false</partialUpdates></CreateFilter>",
        mypc, obj);
    g_autoptr(xmlDoc) fdoc = esx_call_on(be, http, "CreateFilter", fb, cancellable, NULL, error);
    if (fdoc == NULL)
        return FALSE;
    g_auto(EsxVmState) prev = { 0 };
    g_autofree char *prev_power = NULL;
    g_autofree char *version = g_strdup("");
    if (!esx_vm_state(be, vmref, &prev, &prev_power, error))
        return FALSE;
    for (;;) {
        if (g_cancellable_set_error_if_cancelled(cancellable, error))
            return FALSE;
        g_autofree char *ev = vmshift_xml_escape(version);
        g_autofree char *wb = g_strdup_printf(
            "<WaitForUpdatesEx xmlns=\"urn:vim25\">%s<version>%s</version>"
            "<options><maxWaitSeconds>1</maxWaitSeconds></options></WaitForUpdatesEx>",
            mypc, ev);
        g_autoptr(xmlDoc)
            wdoc = esx_call_on(be, http, "WaitForUpdatesEx", wb, cancellable, NULL, error);
        if (wdoc == NULL)
            return FALSE;
        g_autoptr(xmlXPathContext) ctx = vmshift_xpath_new(wdoc, NULL);
        g_autofree char *nv = vmshift_xpath_string(ctx, NULL, "//vim:returnval/vim:version");
        if (nv == NULL)
            continue; /* timed out without changes */
        g_free(version);
        version = g_steal_pointer(&nv);
        /* Something changed: compare states (simple and exact). */
        g_auto(EsxVmState) now = { 0 };
        g_autofree char *power = NULL;
        if (!esx_vm_state(be, vmref, &now, &power, error))
            return FALSE;
        report_changes(inv, vmname, &prev, prev_power, &now, power, func, user_data);
        esx_vm_state_clear(&prev);
        prev = now;
        memset(&now, 0, sizeof now);
        g_free(prev_power);
        prev_power = g_steal_pointer(&power);
    }
}

gboolean
esx_watch_changes(VmshiftBackend *be, const char *name, VmshiftChangeFunc func, gpointer user_data,
                  GCancellable *cancellable, guint32 flags, GError **error)
{
    if (!vmshift_check_flags(flags, 0, "watch_changes", error))
        return FALSE;
    g_auto(EsxInventory) inv = { 0 };
    if (!esx_inventory_load(be, &inv, TRUE, FALSE, FALSE, FALSE, cancellable, error))
        return FALSE;
    EsxObject *vm = esx_find_vm(be, &inv, name, error);
    if (vm == NULL)
        return FALSE;
    g_autofree char *vmname = esx_prop_text(vm, "name");
    g_autofree char *vmref = g_strdup(vm->value);
    g_autoptr(VmshiftHttp) http = vmshift_http_new_sharing(be->http);
    vmshift_http_set_timeout(http, 30 * 1000);

    /* A collector of our own, so that other users of the session's
     * collector never see our updates. */
    g_autofree char *pcthis = esx_moref_xml("_this", "PropertyCollector", be->property_collector);
    g_autofree char *cb = g_strdup_printf("<CreatePropertyCollector xmlns=\"urn:vim25\">%s"
                                          "</CreatePropertyCollector>",
                                          pcthis);
    g_autoptr(xmlDoc)
        cdoc = esx_call_on(be, http, "CreatePropertyCollector", cb, cancellable, NULL, error);
    if (cdoc == NULL)
        return FALSE;
    g_autofree char *pc = vmshift_xml_child_text(vmshift_soap_body(cdoc), VMSHIFT_NS_VIM25,
                                                 "returnval");
    g_autofree char *mypc = esx_moref_xml("_this", "PropertyCollector", pc);
    gboolean ok = watch_with_collector(be, http, mypc, &inv, vmref, vmname, func, user_data,
                                       cancellable, error);
    g_autofree char *db = g_strdup_printf("<DestroyPropertyCollector xmlns=\"urn:vim25\">%s"
                                          "</DestroyPropertyCollector>",
                                          mypc);
    g_autoptr(GError) derr = NULL;
    g_autoptr(xmlDoc)
        ddoc = esx_call_on(be, http, "DestroyPropertyCollector", db, NULL, NULL, &derr);
    if (ddoc == NULL)
        g_debug("DestroyPropertyCollector: %s", derr->message);
    return ok;
}
