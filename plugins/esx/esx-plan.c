/*
 * ESX plugin: planning a move. The plugin checks the destination itself
 * (connection state, maintenance mode, datastores, space, networks, running
 * merges) before sending anything, and turns the plan into the
 * RelocateVM_Task's spec (vMotion, cold, storage vMotion with per-disk
 * locators, host + storage, NIC backings through deviceChange).
 */
#include "config.h"

#include <string.h>

#include "esx-impl.h"
#include "esx-ops.h"

static void
disk_target_clear(gpointer p)
{
    EsxDiskTarget *d = p;
    g_free(d->key);
    g_free(d->ds);
    g_free(d->ds_name);
}

static void
nic_target_clear(gpointer p)
{
    EsxNicTarget *n = p;
    g_free(n->key);
    g_free(n->backing);
    g_free(n->net_name);
}

void
esx_plan_clear(EsxPlan *p)
{
    g_free(p->vm_name);
    g_free(p->src_host);
    g_free(p->src_host_name);
    g_free(p->power);
    g_free(p->dest_host_name);
    g_free(p->pool);
    g_clear_pointer(&p->disks, g_array_unref);
    g_clear_pointer(&p->nics, g_array_unref);
    g_clear_pointer(&p->findings, g_ptr_array_unref);
}

static void finding(EsxPlan *p, VmshiftSeverity sev, const char *code, const char *subject,
                    const char *fmt, ...) G_GNUC_PRINTF(5, 6);

static void
finding(EsxPlan *p, VmshiftSeverity sev, const char *code, const char *subject, const char *fmt,
        ...)
{
    va_list ap;
    va_start(ap, fmt);
    g_autofree char *msg = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    g_ptr_array_add(p->findings, vmshift_finding_new(sev, code, subject, "%s", msg));
}

/* "LocalDS_1", "[LocalDS_1]", "[LocalDS_1] dir/x" or a moref. */
static EsxObject *
find_datastore(EsxInventory *inv, const char *spec)
{
    /* ESXi's own absolute form, /vmfs/volumes/NAME[/...] (what a bulk
     * plan's path= takes: it must be absolute) */
    if (g_str_has_prefix(spec, "/vmfs/volumes/") && spec[14] != '\0') {
        g_autofree char *vname = g_strndup(spec + 14, strcspn(spec + 14, "/"));
        return esx_lookup(inv->datastores, "Datastore", vname);
    }
    g_autofree char *name = esx_ds_name_of_path(spec);
    return esx_lookup(inv->datastores, "Datastore", name != NULL ? name : spec);
}

/* The backing fragment for a NIC on network @net. */
static char *
nic_backing(VmshiftBackend *be, EsxObject *net, GError **error)
{
    g_autofree char *name = esx_prop_text(net, "name");
    g_autofree char *en = vmshift_xml_escape(name);
    if (g_strcmp0(net->type, "DistributedVirtualPortgroup") == 0) {
        /* A port group's key and its switch's uuid never change: cached. */
        g_mutex_lock(&be->lock);
        const char *cached = be->pg_backings != NULL
                                 ? g_hash_table_lookup(be->pg_backings, net->value)
                                 : NULL;
        char *hit = g_strdup(cached);
        g_mutex_unlock(&be->lock);
        if (hit != NULL)
            return hit;
        static const char *const pg_paths[] = { "key", "config.distributedVirtualSwitch", NULL };
        g_autoptr(EsxResult) k1 = NULL;
        EsxObject *pg = esx_retrieve_one(be, "DistributedVirtualPortgroup", net->value, pg_paths,
                                         &k1, NULL, error);
        if (pg == NULL)
            return NULL;
        g_autofree char *key = esx_prop_text(pg, "key");
        g_autofree char *dvs = esx_prop_text(pg, "config.distributedVirtualSwitch");
        g_autofree char *dvs_type = esx_node_moref_type(
            esx_prop(pg, "config.distributedVirtualSwitch"));
        static const char *const dvs_paths[] = { "uuid", NULL };
        g_autoptr(EsxResult) k2 = NULL;
        EsxObject *sw = dvs != NULL ? esx_retrieve_one(
                            be, dvs_type != NULL ? dvs_type : "DistributedVirtualSwitch", dvs,
                            dvs_paths, &k2, NULL, error)
                                    : NULL;
        if (sw == NULL) {
            if (error != NULL && *error == NULL)
                g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_PROTOCOL,
                            "%s: port group '%s' has no distributed switch", be->url, name);
            return NULL;
        }
        g_autofree char *uuid = esx_prop_text(sw, "uuid");
        g_autofree char *eu = vmshift_xml_escape(uuid);
        g_autofree char *ek = vmshift_xml_escape(key != NULL ? key : net->value);
        char *backing = g_strdup_printf(
            "<backing xsi:type=\"VirtualEthernetCardDistributedVirtualPortBackingInfo\">"
            "<port><switchUuid>%s</switchUuid><portgroupKey>%s</portgroupKey></port>"
            "</backing>",
            eu, ek);
        g_mutex_lock(&be->lock);
        if (be->pg_backings == NULL)
            be->pg_backings = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
        g_hash_table_replace(be->pg_backings, g_strdup(net->value), g_strdup(backing));
        g_mutex_unlock(&be->lock);
        return backing;
    }
    if (g_strcmp0(net->type, "Network") != 0) {
        g_set_error(
            error, VMSHIFT_ERROR, VMSHIFT_ERROR_NOT_SUPPORTED,
            "network '%s' is a %s; only standard networks and distributed port groups can be mapped",
            name, net->type);
        return NULL;
    }
    g_autofree char *ref = esx_moref_xml("network", "Network", net->value);
    return g_strdup_printf("<backing xsi:type=\"VirtualEthernetCardNetworkBackingInfo\">"
                           "<deviceName>%s</deviceName>%s</backing>",
                           en, ref);
}

static gboolean
host_has(const EsxObject *h, const char *path, const char *moref)
{
    g_autoptr(GPtrArray) l = esx_prop_morefs(h, path);
    for (guint i = 0; i < l->len; i++)
        if (g_strcmp0(l->pdata[i], moref) == 0)
            return TRUE;
    return FALSE;
}

/* Step 1: the arrays, the arguments, the inventory and the VM. */
static gboolean
plan_start(VmshiftBackend *be, const VmshiftMigrationSpec *spec, EsxInventory *inv, EsxPlan *p,
           GCancellable *c, GError **error)
{
    p->findings = vmshift_list_new((GDestroyNotify)vmshift_finding_free);
    p->disks = g_array_new(FALSE, TRUE, sizeof(EsxDiskTarget));
    g_array_set_clear_func(p->disks, disk_target_clear);
    p->nics = g_array_new(FALSE, TRUE, sizeof(EsxNicTarget));
    g_array_set_clear_func(p->nics, nic_target_clear);
    if (spec->vm == NULL) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_INVALID_ARGUMENT, "no VM given");
        return FALSE;
    }
    if (spec->options != NULL && g_variant_n_children(spec->options) > 0) {
        /* No --option key is known (esx.conf.example): the first is named. */
        const char *key = NULL;
        g_variant_get_child(spec->options, 0, "{&sv}", &key, NULL);
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_INVALID_ARGUMENT,
                    "backend %s: unknown option '%s' (the ESX plugin takes no --option keys)",
                    be->name, key);
        return FALSE;
    }
    if (!esx_inventory_load(be, inv, TRUE, FALSE, TRUE, TRUE, c, error))
        return FALSE;
    inv->want_tasks = TRUE;
    p->vm = esx_find_vm(be, inv, spec->vm, error);
    if (p->vm == NULL)
        return FALSE;
    p->vm_name = esx_prop_text(p->vm, "name");
    p->src_host = esx_prop_text(p->vm, "runtime.host");
    p->src_host_name = esx_name_of(inv->hosts, p->src_host);
    p->power = esx_prop_text(p->vm, "runtime.powerState");
    return TRUE;
}

/* Step 2: the power state the migration type needs. */
static gboolean
plan_check_power(const VmshiftMigrationSpec *spec, EsxPlan *p, GError **error)
{
    gboolean on = g_strcmp0(p->power, "poweredOn") == 0;
    switch (spec->type) {
    case VMSHIFT_MIGRATION_LIVE:
        if (!on)
            finding(p, VMSHIFT_SEVERITY_ERROR, VMSHIFT_FINDING_NOT_RUNNING, p->vm_name,
                    "VM '%s' is %s: a live migration (vMotion) needs it powered on; use --cold",
                    p->vm_name, p->power);
        return TRUE;
    case VMSHIFT_MIGRATION_COLD:
        if (on || g_strcmp0(p->power, "suspended") == 0)
            finding(
                p, VMSHIFT_SEVERITY_ERROR, VMSHIFT_FINDING_RUNNING, p->vm_name,
                "VM '%s' is %s: a cold migration needs it powered off (shut it down or use --live)",
                p->vm_name, p->power);
        return TRUE;
    case VMSHIFT_MIGRATION_STORAGE:
        if (spec->dest_path == NULL && spec->disk_paths->len == 0)
            finding(p, VMSHIFT_SEVERITY_ERROR, "no-destination", p->vm_name,
                    "a storage migration needs --path DATASTORE or --disk-path");
        return TRUE;
    default:
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_INVALID_ARGUMENT,
                    "unknown migration type %u", spec->type);
        return FALSE;
    }
}

/* Step 3: the destination host. Returns the host named by the spec (also
 * when it is the VM's own, then p->dest_host stays NULL). */
static EsxObject *
plan_dest_host(VmshiftBackend *be, const VmshiftMigrationSpec *spec, EsxInventory *inv, EsxPlan *p)
{
    if (spec->type == VMSHIFT_MIGRATION_STORAGE)
        return NULL;
    if (spec->dest_host == NULL) {
        finding(p, VMSHIFT_SEVERITY_ERROR, "no-destination", p->vm_name,
                "no destination host given");
        return NULL;
    }
    EsxObject *dest = esx_lookup(inv->hosts, "HostSystem", spec->dest_host);
    if (dest == NULL) {
        finding(p, VMSHIFT_SEVERITY_ERROR, "host-not-found", spec->dest_host,
                "destination host '%s' not found at %s", spec->dest_host, be->url);
        return NULL;
    }
    g_autofree char *hname = esx_prop_text(dest, "name");
    g_autofree char *cs = esx_prop_text(dest, "runtime.connectionState");
    if (g_strcmp0(cs, "connected") != 0)
        finding(p, VMSHIFT_SEVERITY_ERROR, VMSHIFT_FINDING_HOST_UNREACHABLE, hname,
                "destination host '%s' is %s", hname, cs != NULL ? cs : "in an unknown state");
    if (esx_prop_bool(dest, "runtime.inMaintenanceMode"))
        finding(p, VMSHIFT_SEVERITY_ERROR, "host-maintenance", hname,
                "destination host '%s' is in maintenance mode", hname);
    if (g_strcmp0(dest->value, p->src_host) != 0) {
        p->dest_host = dest;
        p->dest_host_name = g_steal_pointer(&hname);
    }
    return dest;
}

/* Step 4, resource pool: the destination compute resource's root pool when
 * the compute resource changes (vCenter requires spec.pool then). */
static gboolean
plan_pool(VmshiftBackend *be, EsxInventory *inv, EsxPlan *p, GCancellable *c, GError **error)
{
    if (p->dest_host == NULL)
        return TRUE;
    EsxObject *src = esx_result_find(inv->hosts, p->src_host);
    g_autofree char *sp = esx_prop_text(src, "parent");
    g_autofree char *dp = esx_prop_text(p->dest_host, "parent");
    g_autofree char *dpt = esx_node_moref_type(esx_prop(p->dest_host, "parent"));
    if (dp == NULL || g_strcmp0(sp, dp) == 0)
        return TRUE;
    /* A compute resource's root pool never changes: cached. */
    g_mutex_lock(&be->lock);
    p->pool = be->pools != NULL ? g_strdup(g_hash_table_lookup(be->pools, dp)) : NULL;
    g_mutex_unlock(&be->lock);
    if (p->pool != NULL)
        return TRUE;
    static const char *const cr_paths[] = { "resourcePool", NULL };
    g_autoptr(EsxResult) keep = NULL;
    EsxObject *cr = esx_retrieve_one(be, dpt != NULL ? dpt : "ComputeResource", dp, cr_paths, &keep,
                                     c, error);
    if (cr == NULL)
        return FALSE;
    p->pool = esx_prop_text(cr, "resourcePool");
    if (p->pool != NULL) {
        g_mutex_lock(&be->lock);
        if (be->pools == NULL)
            be->pools = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
        g_hash_table_replace(be->pools, g_strdup(dp), g_strdup(p->pool));
        g_mutex_unlock(&be->lock);
    }
    return TRUE;
}

static void
add_need(GHashTable *need_per_ds, const char *ds, guint64 bytes)
{
    g_hash_table_insert(
        need_per_ds, g_strdup(ds),
        GSIZE_TO_POINTER(GPOINTER_TO_SIZE(g_hash_table_lookup(need_per_ds, ds)) + bytes));
}

static guint64
disk_capacity(const xmlNode *dev)
{
    g_autofree char *kb = vmshift_xml_child_text(dev, VMSHIFT_NS_VIM25, "capacityInKB");
    return kb != NULL ? g_ascii_strtoull(kb, NULL, 10) * 1024 : 0;
}

/* Step 5, storage: where each disk goes (--path, --disk-path) and how many
 * bytes each target datastore must take (datastore moref → bytes). */
static GHashTable *
plan_disks(VmshiftBackend *be, const VmshiftMigrationSpec *spec, EsxInventory *inv, EsxPlan *p)
{
    guint64 committed = (guint64)esx_prop_int(p->vm, "summary.storage.committed");
    guint64 disks_total = 0;
    for (xmlNode *d = vmshift_xml_first_element(esx_prop(p->vm, "config.hardware.device"));
         d != NULL; d = vmshift_xml_next_element(d)) {
        g_autofree char *t = vmshift_xml_xsi_type(d);
        if (g_strcmp0(t, "VirtualDisk") == 0)
            disks_total += disk_capacity(d);
    }
    p->needed = committed > 0 ? committed : disks_total;
    GHashTable *need_per_ds = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    if (spec->dest_path != NULL) {
        p->dest_ds = find_datastore(inv, spec->dest_path);
        if (p->dest_ds == NULL)
            finding(p, VMSHIFT_SEVERITY_ERROR, VMSHIFT_FINDING_PATH_NOT_FOUND, spec->dest_path,
                    "datastore '%s' not found at %s", spec->dest_path, be->url);
    }
    for (guint i = 0; i < spec->disk_paths->len; i++) {
        VmshiftMapping *m = spec->disk_paths->pdata[i];
        const xmlNode *dev = esx_find_device(p->vm, m->key, FALSE);
        EsxObject *ds = find_datastore(inv, m->value);
        if (dev == NULL) {
            finding(p, VMSHIFT_SEVERITY_ERROR, "disk-not-found", m->key,
                    "VM '%s' has no disk '%s' (use its key, label or file name)", p->vm_name,
                    m->key);
            continue;
        }
        if (ds == NULL) {
            finding(p, VMSHIFT_SEVERITY_ERROR, VMSHIFT_FINDING_PATH_NOT_FOUND, m->value,
                    "datastore '%s' not found at %s", m->value, be->url);
            continue;
        }
        EsxDiskTarget t = { 0 };
        t.key = vmshift_xml_child_text(dev, VMSHIFT_NS_VIM25, "key");
        t.ds = g_strdup(ds->value);
        t.ds_name = esx_prop_text(ds, "name");
        if (g_strcmp0(t.key, m->key) != 0)
            finding(p, VMSHIFT_SEVERITY_INFO, "disk-mapped", m->key,
                    "disk '%s' is device %s; it goes to datastore '%s'", m->key, t.key, t.ds_name);
        add_need(need_per_ds, ds->value, disk_capacity(dev));
        g_array_append_val(p->disks, t);
    }
    if (p->dest_ds != NULL) {
        /* What the mapped disks do not take goes to --path. */
        guint64 rest = p->needed;
        GHashTableIter it;
        gpointer k, v;
        g_hash_table_iter_init(&it, need_per_ds);
        while (g_hash_table_iter_next(&it, &k, &v))
            rest = rest > GPOINTER_TO_SIZE(v) ? rest - GPOINTER_TO_SIZE(v) : 0;
        add_need(need_per_ds, p->dest_ds->value, rest);
    }
    return need_per_ds;
}

/* Step 6: each target datastore is usable, mounted on the target host and
 * has room (unless the VM is already on it). */
static void
plan_check_datastores(EsxInventory *inv, EsxPlan *p, GHashTable *need_per_ds,
                      const EsxObject *target_host)
{
    GHashTableIter it;
    gpointer k, v;
    g_hash_table_iter_init(&it, need_per_ds);
    g_autoptr(GPtrArray) cur = esx_prop_morefs(p->vm, "datastore");
    while (g_hash_table_iter_next(&it, &k, &v)) {
        EsxObject *ds = esx_result_find(inv->datastores, k);
        g_autofree char *dn = esx_prop_text(ds, "name");
        gboolean already = FALSE;
        for (guint i = 0; i < cur->len; i++)
            already |= g_strcmp0(cur->pdata[i], k) == 0;
        g_autofree char *mm = esx_prop_text(ds, "summary.maintenanceMode");
        if (esx_prop(ds, "summary.accessible") != NULL && !esx_prop_bool(ds, "summary.accessible"))
            finding(p, VMSHIFT_SEVERITY_ERROR, VMSHIFT_FINDING_VOLUME_UNAVAILABLE, dn,
                    "datastore '%s' is not accessible", dn);
        if (mm != NULL && g_strcmp0(mm, "normal") != 0)
            finding(p, VMSHIFT_SEVERITY_ERROR, VMSHIFT_FINDING_VOLUME_UNAVAILABLE, dn,
                    "datastore '%s' is in maintenance mode (%s)", dn, mm);
        if (target_host != NULL && ds != NULL && !esx_ds_on_host(ds, target_host)) {
            g_autofree char *hn = esx_prop_text(target_host, "name");
            finding(p, VMSHIFT_SEVERITY_ERROR, VMSHIFT_FINDING_VOLUME_NOT_ON_HOST, dn,
                    "datastore '%s' is not mounted on host '%s'", dn, hn);
        }
        guint64 free_b = (guint64)esx_prop_int(ds, "summary.freeSpace");
        guint64 need = GPOINTER_TO_SIZE(v);
        if (!already && need > free_b)
            finding(p, VMSHIFT_SEVERITY_ERROR, VMSHIFT_FINDING_NO_SPACE, dn,
                    "datastore '%s' has %" G_GUINT64_FORMAT
                    " MiB free, the VM needs %" G_GUINT64_FORMAT " MiB",
                    dn, free_b >> 20, need >> 20);
    }
}

/* Step 7: a compute-only move needs the VM's datastores on the new host; a
 * storage move carries the snapshots along. */
static void
plan_check_placement(EsxInventory *inv, EsxPlan *p, gboolean moves_storage)
{
    if (!moves_storage && p->dest_host != NULL) {
        g_autoptr(GPtrArray) cur = esx_prop_morefs(p->vm, "datastore");
        for (guint i = 0; i < cur->len; i++) {
            EsxObject *ds = esx_result_find(inv->datastores, cur->pdata[i]);
            if (ds != NULL && !esx_ds_on_host(ds, p->dest_host)) {
                g_autofree char *dn = esx_prop_text(ds, "name");
                finding(p, VMSHIFT_SEVERITY_ERROR, VMSHIFT_FINDING_VOLUME_NOT_ON_HOST, dn,
                        "VM '%s' is on datastore '%s', which host '%s' does not mount; "
                        "add --path to move its storage too",
                        p->vm_name, dn, p->dest_host_name);
            }
        }
    }
    if (moves_storage) {
        g_autoptr(GPtrArray) snaps = esx_snapshots_of(p->vm);
        if (snaps->len > 0)
            finding(
                p, VMSHIFT_SEVERITY_WARNING, "snapshots-present", p->vm_name,
                "VM '%s' has %u snapshot(s) (e.g. '%s'); they move with the storage and make it slower",
                p->vm_name, snaps->len, ((VmshiftSnapshot *)snaps->pdata[0])->name);
    }
}

/* Step 7b, --transfer: san keeps the storage where it is, on datastores
 * both hosts mount; network copies the disks, so it needs a target
 * datastore (--path or --disk-path); auto lets the spec decide. */
static void
plan_check_transfer(const VmshiftMigrationSpec *spec, EsxInventory *inv, EsxPlan *p,
                    gboolean moves_storage)
{
    if (spec->transfer == VMSHIFT_TRANSFER_NETWORK && !moves_storage)
        finding(p, VMSHIFT_SEVERITY_ERROR, VMSHIFT_FINDING_TRANSFER_CONFLICT, p->vm_name,
                "--transfer network copies the disks of VM '%s': give the target datastore "
                "with --path DATASTORE (or --disk-path)",
                p->vm_name);
    if (spec->transfer != VMSHIFT_TRANSFER_SAN)
        return;
    if (moves_storage || spec->type == VMSHIFT_MIGRATION_STORAGE) {
        finding(p, VMSHIFT_SEVERITY_ERROR, VMSHIFT_FINDING_TRANSFER_CONFLICT, p->vm_name,
                "--transfer san keeps the storage of VM '%s' where it is; it cannot go with "
                "--path or --disk-path or a storage migration",
                p->vm_name);
        return;
    }
    if (p->dest_host == NULL)
        return;
    EsxObject *src = esx_result_find(inv->hosts, p->src_host);
    g_autoptr(GPtrArray) cur = esx_prop_morefs(p->vm, "datastore");
    for (guint i = 0; i < cur->len; i++) {
        EsxObject *ds = esx_result_find(inv->datastores, cur->pdata[i]);
        if (ds == NULL
            || (src != NULL && esx_ds_on_host(ds, src) && esx_ds_on_host(ds, p->dest_host)))
            continue;
        g_autofree char *dn = esx_prop_text(ds, "name");
        finding(p, VMSHIFT_SEVERITY_ERROR, VMSHIFT_FINDING_STORAGE_NOT_SHARED, dn,
                "--transfer san: datastore '%s' of VM '%s' is not shared by hosts '%s' and '%s'",
                dn, p->vm_name, p->src_host_name, p->dest_host_name);
    }
}

/* Step 8: no merge runs or is due on the VM. */
static gboolean
plan_check_merges(VmshiftBackend *be, EsxInventory *inv, EsxPlan *p, GError **error)
{
    g_autoptr(VmshiftCheckpointState) cs = esx_checkpoint_state_of(be, p->vm, inv, error);
    if (cs == NULL)
        return FALSE;
    if (cs->merging)
        finding(p, VMSHIFT_SEVERITY_ERROR, "merge-in-progress", p->vm_name, "%s", cs->detail);
    else if (cs->needs_consolidation)
        finding(p, VMSHIFT_SEVERITY_WARNING, VMSHIFT_FINDING_NEEDS_CONSOLIDATION, p->vm_name, "%s",
                cs->detail);
    return TRUE;
}

/* Step 9: the new backing of each NIC mapped with --network. */
static void
plan_networks(VmshiftBackend *be, const VmshiftMigrationSpec *spec, EsxInventory *inv, EsxPlan *p,
              const EsxObject *target_host)
{
    for (guint i = 0; i < spec->networks->len; i++) {
        VmshiftMapping *m = spec->networks->pdata[i];
        const xmlNode *dev = esx_find_device(p->vm, m->key, TRUE);
        EsxObject *net = esx_lookup(inv->networks, NULL, m->value);
        if (dev == NULL) {
            finding(p, VMSHIFT_SEVERITY_ERROR, "nic-not-found", m->key,
                    "VM '%s' has no network adapter '%s' (use its key, label or MAC)", p->vm_name,
                    m->key);
            continue;
        }
        if (net == NULL) {
            finding(p, VMSHIFT_SEVERITY_ERROR, VMSHIFT_FINDING_NETWORK_MISSING, m->value,
                    "network '%s' not found at %s", m->value, be->url);
            continue;
        }
        if (target_host != NULL && !host_has(target_host, "network", net->value)) {
            g_autofree char *hn = esx_prop_text(target_host, "name");
            finding(p, VMSHIFT_SEVERITY_ERROR, VMSHIFT_FINDING_NETWORK_MISSING, m->value,
                    "network '%s' is not available on host '%s'", m->value, hn);
        }
        g_autoptr(GError) err = NULL;
        EsxNicTarget t = { 0 };
        t.backing = nic_backing(be, net, &err);
        if (t.backing == NULL) {
            finding(p, VMSHIFT_SEVERITY_ERROR, "network-unusable", m->value, "%s", err->message);
            continue;
        }
        t.key = vmshift_xml_child_text(dev, VMSHIFT_NS_VIM25, "key");
        t.net_name = esx_prop_text(net, "name");
        t.device = dev;
        /* The host knows a NIC by its key only: the mapping of a label or
         * MAC is reported resolved (host/validate.c reads this finding). */
        if (g_strcmp0(t.key, m->key) != 0)
            finding(p, VMSHIFT_SEVERITY_INFO, "nic-mapped", m->key,
                    "network adapter '%s' is device %s; it goes to network '%s'", m->key, t.key,
                    t.net_name);
        g_array_append_val(p->nics, t);
    }
}

/* Step 10: NICs left out of the mapping that lose their network. */
static void
plan_check_unmapped_nics(const VmshiftMigrationSpec *spec, EsxInventory *inv, EsxPlan *p)
{
    for (xmlNode *d = vmshift_xml_first_element(esx_prop(p->vm, "config.hardware.device"));
         d != NULL; d = vmshift_xml_next_element(d)) {
        g_autofree char *t = vmshift_xml_xsi_type(d);
        if (!esx_is_nic_type(t))
            continue;
        g_autofree char *key = vmshift_xml_child_text(d, VMSHIFT_NS_VIM25, "key");
        gboolean mapped = FALSE;
        for (guint i = 0; i < p->nics->len; i++)
            mapped |= g_strcmp0(g_array_index(p->nics, EsxNicTarget, i).key, key) == 0;
        if (mapped)
            continue;
        g_autofree char *moref = NULL, *nname = NULL;
        esx_nic_network(d, inv->networks, &moref, &nname);
        if (p->dest_host != NULL && moref != NULL && !host_has(p->dest_host, "network", moref))
            finding(
                p, VMSHIFT_SEVERITY_ERROR, VMSHIFT_FINDING_NETWORK_MISSING, key,
                "network adapter %s is on '%s', which host '%s' does not have; map it with --network %s=NET",
                key, nname != NULL ? nname : moref, p->dest_host_name, key);
    }
}

gboolean
esx_plan_build(VmshiftBackend *be, const VmshiftMigrationSpec *spec, EsxInventory *inv, EsxPlan *p,
               GCancellable *c, GError **error)
{
    if (!plan_start(be, spec, inv, p, c, error) || !plan_check_power(spec, p, error))
        return FALSE;
    EsxObject *dest = plan_dest_host(be, spec, inv, p);
    const EsxObject *target_host = p->dest_host != NULL ? p->dest_host
                                                        : esx_result_find(inv->hosts, p->src_host);
    if (!plan_pool(be, inv, p, c, error))
        return FALSE;
    g_autoptr(GHashTable) need_per_ds = plan_disks(be, spec, inv, p);
    plan_check_datastores(inv, p, need_per_ds, target_host);
    gboolean moves_storage = p->dest_ds != NULL || p->disks->len > 0;
    plan_check_placement(inv, p, moves_storage);
    plan_check_transfer(spec, inv, p, moves_storage);
    if (!plan_check_merges(be, inv, p, error))
        return FALSE;
    plan_networks(be, spec, inv, p, target_host);
    plan_check_unmapped_nics(spec, inv, p);
    if (p->dest_host == NULL && !moves_storage && p->nics->len == 0
        && spec->type != VMSHIFT_MIGRATION_STORAGE && dest != NULL)
        finding(p, VMSHIFT_SEVERITY_INFO, "nothing-to-do", p->vm_name,
                "VM '%s' is already on host '%s'", p->vm_name, p->src_host_name);
    return TRUE;
}

GPtrArray *
esx_check_migration(VmshiftBackend *be, const VmshiftMigrationSpec *spec, guint32 flags,
                    GError **error)
{
    if (!vmshift_check_flags(flags, 0, "check_migration", error))
        return NULL;
    g_auto(EsxInventory) inv = { 0 };
    g_auto(EsxPlan) p = { 0 };
    if (!esx_plan_build(be, spec, &inv, &p, NULL, error))
        return NULL;
    return g_ptr_array_ref(p.findings);
}

char *
esx_relocate_body(const EsxPlan *p, const char *only_disk_key, const char *only_disk_ds)
{
    GString *s = g_string_new("<RelocateVM_Task xmlns=\"urn:vim25\">");
    g_autofree char *vm = esx_moref_xml("_this", "VirtualMachine", p->vm->value);
    g_string_append(s, vm);
    g_string_append(s, "<spec>");
    if (only_disk_key != NULL) {
        g_autofree char *ds = esx_moref_xml("datastore", "Datastore", only_disk_ds);
        g_autofree char *k = vmshift_xml_escape(only_disk_key);
        g_string_append_printf(s, "<disk><diskId>%s</diskId>%s</disk>", k, ds);
    } else {
        if (p->dest_ds != NULL) {
            g_autofree char *ds = esx_moref_xml("datastore", "Datastore", p->dest_ds->value);
            g_string_append(s, ds);
        }
        if (p->pool != NULL) {
            g_autofree char *pool = esx_moref_xml("pool", "ResourcePool", p->pool);
            g_string_append(s, pool);
        }
        if (p->dest_host != NULL) {
            g_autofree char *h = esx_moref_xml("host", "HostSystem", p->dest_host->value);
            g_string_append(s, h);
        }
        for (guint i = 0; i < p->disks->len; i++) {
            EsxDiskTarget *d = &g_array_index(p->disks, EsxDiskTarget, i);
            g_autofree char *ds = esx_moref_xml("datastore", "Datastore", d->ds);
            g_autofree char *k = vmshift_xml_escape(d->key);
            g_string_append_printf(s, "<disk><diskId>%s</diskId>%s</disk>", k, ds);
        }
        for (guint i = 0; i < p->nics->len; i++) {
            EsxNicTarget *n = &g_array_index(p->nics, EsxNicTarget, i);
            g_string_append(s, "<deviceChange><operation>edit</operation>");
            esx_xml_reserialize(s, n->device, "device", "backing", n->backing);
            g_string_append(s, "</deviceChange>");
        }
    }
    g_string_append(s, "</spec><priority>defaultPriority</priority></RelocateVM_Task>");
    return g_string_free(s, FALSE);
}

/* nic_backing() for the imports of esx-v2v-import.c */
char *
esx_plan_nic_backing(VmshiftBackend *be, EsxObject *net, GError **error)
{
    return nic_backing(be, net, error);
}
