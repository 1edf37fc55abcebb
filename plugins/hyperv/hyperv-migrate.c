/*
 * vmshift Hyper-V plugin: migration (MigrateVirtualSystemToHost).
 * Facts and sources: docs/design/hyperv.md.
 */
#include "config.h"

#include <string.h>

#include <vmshift/vmshift.h>

#include "hyperv.h"

/* Properties of a SASD with their CIM types (MSDOC
 * msvm-storageallocationsettingdata), for NewResourceSettingData. */
static const char *const sasd_types[][2] = {
    { "Address", "string" },
    { "AddressOnParent", "string" },
    { "AllocationUnits", "string" },
    { "AutomaticAllocation", "boolean" },
    { "AutomaticDeallocation", "boolean" },
    { "Caption", "string" },
    { "Description", "string" },
    { "ElementName", "string" },
    { "InstanceID", "string" },
    { "Limit", "uint64" },
    { "MappingBehavior", "uint16" },
    { "Parent", "string" },
    { "Reservation", "uint64" },
    { "ResourceSubType", "string" },
    { "ResourceType", "uint16" },
    { "VirtualQuantity", "uint64" },
    { "Weight", "uint32" },
};

/* Properties of a port's allocation settings with their CIM types (MSDOC
 * msvm-ethernetportallocationsettingdata), for NewResourceSettingData. */
static const char *const epasd_types[][2] = {
    { "Address", "string" },     { "Caption", "string" },         { "Description", "string" },
    { "ElementName", "string" }, { "EnabledState", "uint16" },    { "InstanceID", "string" },
    { "Parent", "string" },      { "ResourceSubType", "string" }, { "ResourceType", "uint16" },
};

/* Resource settings @s of class @cls re-written with HostResource = @hr
 * (a VHD path, a switch's WMI path) and PoolID "" (docs/design/hyperv.md §2.4). */
static char *
rasd_with_host_resource(const char *cls, const char *const (*types)[2], guint ntypes,
                        const HvInstance *s, const char *hr)
{
    HvCimXml *x = hv_cimxml_new(cls);
    const char *hrs[] = { hr };

    for (guint i = 0; i < ntypes; i++) {
        const char *val = hv_inst_get(s, types[i][0]);
        if (val == NULL)
            continue;
        if (strcmp(types[i][1], "boolean") == 0)
            val = g_ascii_strcasecmp(val, "true") == 0 ? "TRUE" : "FALSE";
        hv_cimxml_prop(x, types[i][0], types[i][1], val);
    }
    hv_cimxml_prop_array(x, "HostResource", "string", hrs, 1);
    hv_cimxml_prop(x, "PoolID", "string", "");
    return hv_cimxml_finish(x);
}

static char *
cdata_param(const char *name, const char *instance)
{
    g_autofree char *e = hv_xml_escape(instance);
    return g_strdup_printf("<p:%s>%s</p:%s>", name, e, name);
}

/* One migration as it is prepared and run. */
typedef struct {
    VmshiftBackend *b;
    const VmshiftMigrationSpec *spec;
    VmshiftJob *job;
    HvVm *v;
    HvHost *dest;     /* NULL for a storage migration */
    const char *name; /* the VM's name */
    const char *what; /* "live migration", ... */
    gboolean moves_storage;
    guint64 bytes; /* of the disks that move */
    char *jobid;   /* the Hyper-V job, once started */
} Migration;

static void
migration_clear(Migration *m)
{
    g_free(m->jobid);
}
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(Migration, migration_clear)

/* Refuses early: no reachable destination, a checkpoint merge under way. */
static gboolean
migrate_validate(Migration *m, GError **error)
{
    g_autoptr(VmshiftCheckpointState) cp = NULL;

    if (m->spec->type != VMSHIFT_MIGRATION_STORAGE) {
        m->dest = m->spec->dest_host ? hv_find_host(m->b, m->spec->dest_host) : NULL;
        if (m->dest == NULL || !hv_host_usable(m->dest)) {
            g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_NOT_FOUND,
                        "%s of %s: %s is not a reachable Hyper-V host of backend %s", m->what,
                        m->name, m->spec->dest_host ? m->spec->dest_host : "(none)", m->b->backend);
            hv_report_location(m->b, m->v, m->job, NULL);
            return FALSE;
        }
    }
    cp = hv_checkpoint_of(m->v, error);
    if (cp == NULL)
        return FALSE;
    if (cp->merging) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_BUSY,
                    "%s of %s refused: a checkpoint merge is in progress on %s (%s); wait "
                    "until it has finished",
                    m->what, m->name, m->v->host->name, cp->detail);
        hv_report_location(m->b, m->v, m->job, NULL);
        return FALSE;
    }
    return TRUE;
}

/* NewResourceSettingData for each disk that moves; NewSystemSettingData
 * (first) when the configuration moves. */
static void
storage_params(Migration *m, GString *params)
{
    g_autoptr(GPtrArray) targets = hv_disk_targets(m->v, m->spec);
    HvVm *v = m->v;

    for (guint i = 0; i < targets->len; i++) {
        g_autofree char *inst = NULL;
        g_autofree char *p = NULL;
        if (targets->pdata[i] == NULL)
            continue;
        m->moves_storage = TRUE;
        m->bytes += *(guint64 *)v->sizes->pdata[i];
        inst = rasd_with_host_resource("Msvm_StorageAllocationSettingData", sasd_types,
                                       G_N_ELEMENTS(sasd_types), v->sasds->pdata[i],
                                       targets->pdata[i]);
        p = cdata_param("NewResourceSettingData", inst);
        g_string_append(params, p);
        vmshift_job_log(
            m->job, VMSHIFT_LOG_INFO, "disk %s: %s -> %s", hv_disk_id(v->sasds->pdata[i]),
            hv_inst_get(v->sasds->pdata[i], "HostResource"), (const char *)targets->pdata[i]);
    }
    if (m->spec->dest_path != NULL) {
        HvCimXml *x = hv_cimxml_new("Msvm_VirtualSystemSettingData");
        g_autofree char *inst = NULL;
        g_autofree char *p = NULL;
        m->moves_storage = TRUE;
        hv_cimxml_prop(x, "InstanceID", "string", hv_inst_get(v->vssd, "InstanceID"));
        hv_cimxml_prop(x, "ConfigurationDataRoot", "string", m->spec->dest_path);
        hv_cimxml_prop(x, "SnapshotDataRoot", "string", m->spec->dest_path);
        hv_cimxml_prop(x, "SwapFileDataRoot", "string", m->spec->dest_path);
        inst = hv_cimxml_finish(x);
        p = cdata_param("NewSystemSettingData", inst);
        g_string_prepend(params, p);
    }
}

/* The destination switch named @name, as the WMI path HostResource holds
 * (\\HOST\root\virtualization\v2:Msvm_VirtualEthernetSwitch.…, §2.2), or
 * NULL with @error when @h has no such switch. */
static char *
dest_switch_path(Migration *m, GPtrArray *sws, const VmshiftMapping *map, GError **error)
{
    for (guint j = 0; j < sws->len; j++)
        if (g_strcmp0(hv_inst_get(sws->pdata[j], "ElementName"), map->value) == 0)
            return g_strdup_printf("\\\\%s\\root\\virtualization\\v2:Msvm_VirtualEthernetSwitch."
                                   "CreationClassName=\"Msvm_VirtualEthernetSwitch\",Name=\"%s\"",
                                   m->dest->name, hv_inst_get(sws->pdata[j], "Name"));
    g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_NOT_FOUND,
                "%s of %s: --network %s=%s: Hyper-V host %s has no switch \"%s\"", m->what, m->name,
                map->key, map->value, m->dest->name, map->value);
    return NULL;
}

/* The index in spec->networks of the mapping of one adapter (by its id or
 * MAC), or -1. */
static gint
nic_mapping(Migration *m, const HvInstance *port)
{
    const char *iid = hv_inst_get(port, "InstanceID");
    g_autofree char *mac = hv_nic_mac(hv_inst_get(port, "Address"));
    const char *id = iid != NULL && strrchr(iid, '\\') ? strrchr(iid, '\\') + 1 : iid;

    for (guint i = 0; i < m->spec->networks->len; i++) {
        const VmshiftMapping *map = m->spec->networks->pdata[i];
        if ((id != NULL && g_ascii_strcasecmp(map->key, id) == 0)
            || (mac != NULL && g_ascii_strcasecmp(map->key, mac) == 0))
            return (gint)i;
    }
    return -1;
}

/* --network NIC=SWITCH: each mapped adapter's port allocation settings with
 * HostResource = the destination switch, as NewResourceSettingData (§2.4).
 * Every mapping must name an adapter of the VM and a switch of the
 * destination. */
static gboolean
network_params(Migration *m, GString *params, GError **error)
{
    g_autoptr(GPtrArray) sws = NULL;
    g_autofree gboolean *used = NULL;

    if (m->spec->networks == NULL || m->spec->networks->len == 0)
        return TRUE;
    if (m->dest == NULL) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_INVALID_ARGUMENT,
                    "%s of %s: --network applies to a move to another host", m->what, m->name);
        return FALSE;
    }
    sws = hv_wql(m->dest, HV_NS_V2, "SELECT * FROM Msvm_VirtualEthernetSwitch", NULL, error);
    if (sws == NULL)
        return FALSE;
    used = g_new0(gboolean, m->spec->networks->len);
    for (guint i = 0; i < m->v->ports->len; i++) {
        const HvInstance *port = m->v->ports->pdata[i];
        gint k = nic_mapping(m, port);
        const VmshiftMapping *map = k >= 0 ? m->spec->networks->pdata[k] : NULL;
        const HvInstance *epasd;
        g_autofree char *path = NULL;
        g_autofree char *inst = NULL;
        g_autofree char *p = NULL;
        if (map == NULL)
            continue;
        used[k] = TRUE;
        epasd = hv_port_epasd(m->v, hv_inst_get(port, "InstanceID"));
        if (epasd == NULL) {
            g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_INVALID_ARGUMENT,
                        "%s of %s: --network %s=%s: the adapter is connected to no switch", m->what,
                        m->name, map->key, map->value);
            return FALSE;
        }
        path = dest_switch_path(m, sws, map, error);
        if (path == NULL)
            return FALSE;
        inst = rasd_with_host_resource("Msvm_EthernetPortAllocationSettingData", epasd_types,
                                       G_N_ELEMENTS(epasd_types), epasd, path);
        p = cdata_param("NewResourceSettingData", inst);
        g_string_append(params, p);
        vmshift_job_log(m->job, VMSHIFT_LOG_INFO, "NIC %s: to switch %s on %s", map->key,
                        map->value, m->dest->name);
    }
    for (guint k = 0; k < m->spec->networks->len; k++) {
        const VmshiftMapping *map = m->spec->networks->pdata[k];
        if (used[k])
            continue;
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_NOT_FOUND,
                    "%s of %s: --network %s=%s: the VM has no adapter %s (give a NIC id or MAC "
                    "as `vmshift vms` shows them)",
                    m->what, m->name, map->key, map->value, map->key);
        return FALSE;
    }
    return TRUE;
}

/* MigrationSettingData: TransportType TCP; the destination's migration
 * networks as DestinationIPAddressList (os-win, docs/design/hyperv.md §2.4). */
static char *
migration_setting_data(Migration *m, HvMigrationType mtype, GError **error)
{
    HvCimXml *x = hv_cimxml_new("Msvm_VirtualSystemMigrationSettingData");
    g_autofree char *mt = g_strdup_printf("%u", (guint)mtype);
    g_autoptr(HvInstance) dsvc = NULL;
    const GPtrArray *ips;

    hv_cimxml_prop(x, "MigrationType", "uint16", mt);
    hv_cimxml_prop(x, "TransportType", "uint16", G_STRINGIFY(HV_TRANSPORT_TCP));
    if (m->dest == NULL)
        return hv_cimxml_finish(x);
    dsvc = hv_first_of(m->dest, HV_NS_V2, "SELECT * FROM Msvm_VirtualSystemMigrationService", NULL,
                       error);
    if (dsvc == NULL) {
        g_free(hv_cimxml_finish(x));
        hv_report_location(m->b, m->v, m->job, NULL);
        return NULL;
    }
    ips = hv_inst_get_all(dsvc, "MigrationServiceListenerIPAddressList");
    if (ips->len > 0)
        hv_cimxml_prop_array(x, "DestinationIPAddressList", "string",
                             (const char *const *)ips->pdata, ips->len);
    return hv_cimxml_finish(x);
}

/* ComputerSystem, DestinationHost and MigrationSettingData, put first. */
static void
system_params(Migration *m, const char *msd, GString *params)
{
    const char *sel[] = { "CreationClassName", "Msvm_ComputerSystem", "Name",
                          hv_inst_get(m->v->cs, "Name"), NULL };
    g_autofree char *ms = cdata_param("MigrationSettingData", msd);
    g_autofree char *eh = m->dest ? hv_xml_escape(m->dest->dest_name) : NULL;
    g_autofree char *dh = eh ? g_strdup_printf("<p:DestinationHost>%s</p:DestinationHost>", eh)
                             : g_strdup("");
    g_autofree char *epr = hv_epr_xml(HV_V2 "Msvm_ComputerSystem", sel);
    g_autofree char *cs_epr = g_strdup_printf("<p:ComputerSystem>%s</p:ComputerSystem>%s%s", epr,
                                              dh, ms);

    g_string_prepend(params, cs_epr);
}

/* The parameters of MigrateVirtualSystemToHost, or NULL with @error. */
static char *
migrate_params(Migration *m, HvMigrationType *mtype, GError **error)
{
    g_autoptr(GString) params = g_string_new(NULL);
    g_autofree char *msd = NULL;

    storage_params(m, params);
    if (!network_params(m, params, error))
        return NULL;
    if (m->spec->type == VMSHIFT_MIGRATION_STORAGE && !m->moves_storage) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_INVALID_ARGUMENT,
                    "storage migration of %s: no destination path given", m->name);
        return NULL;
    }
    *mtype = hv_migration_type(m->spec->type, m->moves_storage);
    msd = migration_setting_data(m, *mtype, error);
    if (msd == NULL)
        return NULL;
    system_params(m, msd, params);
    return g_string_free(g_steal_pointer(&params), FALSE);
}

/* Journals the Hyper-V job so that repair() finds it.  When the journal
 * cannot be written the migration stops (job.h): the Hyper-V job is killed
 * and waited for, so that the VM stays where it is. */
static gboolean
journal_job(Migration *m, const HvEpr *epr, GError **error)
{
    HvHost *h = m->v->host;
    g_autoptr(HvInstance) out = NULL;
    g_autoptr(GError) e = NULL;
    g_autofree char *errmsg = NULL;
    gint64 errcode = 0;

    if (vmshift_job_save(m->job, "hyperv-job-uri", epr->uri, error)
        && vmshift_job_save(m->job, "hyperv-job", m->jobid, error))
        return TRUE;
    if (m->jobid != NULL)
        out = hv_job_request_kill(h, epr->uri, m->jobid, &e);
    if (out == NULL && e != NULL) {
        vmshift_job_log(m->job, VMSHIFT_LOG_WARNING, "cancelling Hyper-V job %s: %s", m->jobid,
                        e->message);
        g_clear_error(&e);
    }
    if (m->jobid != NULL && hv_poll_job(h, epr, m->job, 0, &errmsg, &errcode, &e) == HV_POLL_DONE)
        vmshift_job_log(m->job, VMSHIFT_LOG_WARNING,
                        "Hyper-V job %s completed before it "
                        "could be stopped",
                        m->jobid);
    g_prefix_error(error, "%s of %s stopped: could not journal Hyper-V job %s: ", m->what, m->name,
                   m->jobid);
    hv_report_location(m->b, m->v, m->job, m->jobid);
    return FALSE;
}

/* Follows the Hyper-V job MigrateVirtualSystemToHost started until it ends. */
static gboolean
follow_job(Migration *m, const HvEpr *epr, GError **error)
{
    g_autofree char *errmsg = NULL;
    gint64 errcode = 0;
    HvPollResult pr;

    m->jobid = g_strdup(hv_epr_selector(epr, "InstanceID"));
    if (!journal_job(m, epr, error))
        return FALSE;
    vmshift_job_set_result(m->job, "hyperv-job", m->jobid);
    pr = hv_poll_job(m->v->host, epr, m->job, m->bytes, &errmsg, &errcode, error);
    if (pr == HV_POLL_CANCELLED) {
        g_set_error(error, G_IO_ERROR, G_IO_ERROR_CANCELLED,
                    "%s of %s cancelled; Hyper-V job %s stopped", m->what, m->name, m->jobid);
        hv_report_location(m->b, m->v, m->job, m->jobid);
        return FALSE;
    }
    if (pr == HV_POLL_FAILED) {
        if (errmsg != NULL)
            g_set_error(error, VMSHIFT_ERROR, hv_job_error_code(errmsg),
                        "%s of %s from %s failed (Hyper-V job %s, ErrorCode %" G_GINT64_FORMAT
                        "): %s",
                        m->what, m->name, m->v->host->name, m->jobid, errcode, errmsg);
        else
            g_prefix_error(error, "%s of %s: lost track of Hyper-V job %s: ", m->what, m->name,
                           m->jobid);
        hv_report_location(m->b, m->v, m->job, m->jobid);
        return FALSE;
    }
    return TRUE;
}

/* The Msvm_MigrationJob instances of the VM on its host (§2.6), or NULL. */
static GPtrArray *
vm_migration_jobs(Migration *m, GError **error)
{
    const char *guid = hv_inst_get(m->v->cs, "Name");
    g_autofree char *q = NULL;

    if (guid == NULL || !hv_wql_safe(guid)) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_PROTOCOL, "the VM has no usable Name");
        return NULL;
    }
    q = g_strdup_printf("SELECT * FROM Msvm_MigrationJob WHERE VirtualSystemName = '%s'", guid);
    return hv_wql(m->v->host, HV_NS_V2, q, NULL, error);
}

/* The InstanceIDs of the VM's migration jobs before the Invoke, so that a
 * job found after a lost reply is known to be this one; NULL: unknown. */
static GHashTable *
known_jobs(Migration *m)
{
    g_autoptr(GError) e = NULL;
    g_autoptr(GPtrArray) jobs = vm_migration_jobs(m, &e);
    GHashTable *ids;

    if (jobs == NULL) {
        vmshift_job_log(m->job, VMSHIFT_LOG_WARNING, "migration jobs of %s on %s unknown: %s",
                        m->name, m->v->host->name, e->message);
        return NULL;
    }
    ids = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    for (guint i = 0; i < jobs->len; i++)
        g_hash_table_add(ids, g_strdup(hv_inst_get(jobs->pdata[i], "InstanceID")));
    return ids;
}

/* The Invoke got no reply (@lost): the host may have started the migration
 * or not.  Asks it (the VM's Msvm_MigrationJob) and follows the job it
 * started; says "not started" only when the host shows none (issue 13). */
static gboolean
reconcile_lost_reply(Migration *m, GHashTable *before, GError *lost, GError **error)
{
    g_autoptr(GError) e = NULL;
    g_autoptr(GPtrArray) jobs = NULL;

    vmshift_job_log(m->job, VMSHIFT_LOG_WARNING,
                    "no reply to MigrateVirtualSystemToHost (%s); asking %s whether it started",
                    lost->message, m->v->host->name);
    jobs = vm_migration_jobs(m, &e);
    for (guint i = 0; jobs != NULL && i < jobs->len; i++) {
        const HvInstance *j = jobs->pdata[i];
        const char *iid = hv_inst_get(j, "InstanceID");
        g_autoptr(HvEpr) epr = NULL;
        if (iid == NULL || (before != NULL && g_hash_table_contains(before, iid))
            || (before == NULL && !hv_job_state_running(hv_inst_get_int(j, "JobState", 0))))
            continue;
        epr = g_new0(HvEpr, 1);
        epr->uri = g_strconcat(HV_V2, j->cls != NULL ? j->cls : "Msvm_MigrationJob", NULL);
        epr->names = g_ptr_array_new_with_free_func(g_free);
        epr->values = g_ptr_array_new_with_free_func(g_free);
        g_ptr_array_add(epr->names, g_strdup("InstanceID"));
        g_ptr_array_add(epr->values, g_strdup(iid));
        vmshift_job_log(m->job, VMSHIFT_LOG_INFO,
                        "%s did start the %s: Hyper-V job %s; following it", m->v->host->name,
                        m->what, iid);
        return follow_job(m, epr, error);
    }
    if (jobs == NULL)
        g_set_error(error, VMSHIFT_ERROR, lost->code,
                    "%s of %s: %s; whether Hyper-V host %s started it is unknown (%s): see where "
                    "the VM is with `vmshift job repair`",
                    m->what, m->name, lost->message, m->v->host->name, e->message);
    else
        g_set_error(error, VMSHIFT_ERROR, lost->code,
                    "%s of %s: %s; Hyper-V host %s shows no migration job of the VM: not started",
                    m->what, m->name, lost->message, m->v->host->name);
    hv_report_location(m->b, m->v, m->job, NULL);
    return FALSE;
}

/* A failure of the Invoke itself that leaves its outcome unknown: no reply
 * (connection lost, timed out), as opposed to a fault the host answered. */
static gboolean
reply_lost(const GError *e)
{
    return e->domain == VMSHIFT_ERROR
           && (e->code == VMSHIFT_ERROR_CONNECTION || e->code == VMSHIFT_ERROR_TIMEOUT);
}

/* Invokes MigrateVirtualSystemToHost on the source and waits for its end. */
static gboolean
migrate_run(Migration *m, HvMigrationType mtype, const char *params, GError **error)
{
    const char *sel[] = { "CreationClassName", "Msvm_VirtualSystemMigrationService", NULL };
    g_autoptr(HvInstance) out = NULL;
    g_autoptr(GHashTable) before = known_jobs(m);
    g_autoptr(GError) local = NULL;
    const HvEpr *epr;
    gint64 rv;

    vmshift_job_log(m->job, VMSHIFT_LOG_INFO, "Hyper-V %s of %s from %s%s%s (MigrationType %u)",
                    m->what, m->name, m->v->host->name, m->dest ? " to " : "",
                    m->dest ? m->dest->name : "", (guint)mtype);
    out = hv_invoke(m->v->host, HV_V2 "Msvm_VirtualSystemMigrationService",
                    "MigrateVirtualSystemToHost", sel, params, NULL, &local);
    if (out == NULL && reply_lost(local))
        return reconcile_lost_reply(m, before, local, error);
    if (out == NULL) {
        g_propagate_prefixed_error(error, g_steal_pointer(&local), "%s of %s: ", m->what, m->name);
        hv_report_location(m->b, m->v, m->job, NULL);
        return FALSE;
    }
    rv = hv_inst_get_int(out, "ReturnValue", -1);
    epr = hv_inst_get_epr(out, "Job");
    if (rv == HV_RV_JOB_STARTED && epr == NULL) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_PROTOCOL,
                    "%s of %s: Hyper-V host %s started a job but sent no reference to it", m->what,
                    m->name, m->v->host->name);
        hv_report_location(m->b, m->v, m->job, NULL);
        return FALSE;
    }
    if (rv == HV_RV_JOB_STARTED)
        return follow_job(m, epr, error);
    if (rv != HV_RV_OK) {
        g_set_error(error, VMSHIFT_ERROR, hv_return_value_code(rv),
                    "%s of %s refused by Hyper-V host %s: MigrateVirtualSystemToHost returned "
                    "%" G_GINT64_FORMAT " (%s)",
                    m->what, m->name, m->v->host->name, rv, hv_return_value_text(rv));
        hv_report_location(m->b, m->v, m->job, NULL);
        return FALSE;
    }
    return TRUE;
}

/* --start after a cold move: RequestStateChange(RequestedState 2 Enabled)
 * on @v at host @h (docs/design/hyperv.md §2.1), its job waited for.
 * @what names the move for messages ("cold migration"). Also used by
 * repair, when an interrupted cold move with --start had moved the VM. */
gboolean
hv_vm_start(HvHost *h, HvVm *v, VmshiftJob *job, const char *what, const char *name, GError **error)
{
    const char *sel[] = { "CreationClassName", "Msvm_ComputerSystem", "Name",
                          hv_inst_get(v->cs, "Name"), NULL };
    g_autoptr(HvInstance) out = NULL;
    g_autofree char *errmsg = NULL;
    gint64 errcode = 0;
    const HvEpr *epr;
    gint64 rv;

    vmshift_job_log(job, VMSHIFT_LOG_INFO,
                    "--start: starting %s on %s (RequestStateChange %d Enabled)", name, h->name,
                    HV_ENABLED_ENABLED);
    out = hv_invoke(h, HV_V2 "Msvm_ComputerSystem", "RequestStateChange", sel,
                    "<p:RequestedState>" G_STRINGIFY(HV_REQUEST_ENABLED) "</p:RequestedState>",
                    NULL, error);
    if (out == NULL) {
        g_prefix_error(error, "%s of %s done, but starting it on %s failed: ", what, name, h->name);
        return FALSE;
    }
    rv = hv_inst_get_int(out, "ReturnValue", -1);
    epr = hv_inst_get_epr(out, "Job");
    if (rv == HV_RV_JOB_STARTED && epr != NULL
        && hv_poll_job(h, epr, job, 0, &errmsg, &errcode, error) != HV_POLL_DONE) {
        if (errmsg != NULL)
            g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_FAILED,
                        "%s of %s done, but starting it on %s failed (ErrorCode %" G_GINT64_FORMAT
                        "): %s",
                        what, name, h->name, errcode, errmsg);
        else
            g_prefix_error(error, "%s of %s done, but starting it on %s: ", what, name, h->name);
        return FALSE;
    }
    if (rv != HV_RV_OK && !(rv == HV_RV_JOB_STARTED && epr != NULL)) {
        g_set_error(error, VMSHIFT_ERROR, hv_return_value_code(rv),
                    "%s of %s done, but Hyper-V host %s refused to start it: RequestStateChange "
                    "returned %" G_GINT64_FORMAT " (%s)",
                    what, name, h->name, rv, hv_return_value_text(rv));
        return FALSE;
    }
    vmshift_job_log(job, VMSHIFT_LOG_INFO, "%s started on %s", name, h->name);
    vmshift_job_set_result(job, "started", h->name);
    return TRUE;
}

static gboolean
start_after_move(Migration *m, GError **error)
{
    return hv_vm_start(m->dest != NULL ? m->dest : m->v->host, m->v, m->job, m->what, m->name,
                       error);
}

/* The NIC of @vm that @key names (id or MAC, as --network takes them). */
static const VmshiftNic *
verify_nic(const VmshiftVm *vm, const char *key)
{
    for (guint i = 0; i < vm->nics->len; i++) {
        const VmshiftNic *n = vm->nics->pdata[i];
        if (g_ascii_strcasecmp(n->id, key) == 0
            || (n->mac != NULL && g_ascii_strcasecmp(n->mac, key) == 0))
            return n;
    }
    return NULL;
}

/* What the host shows after the move, against the spec: the VM's host and
 * power state, each moved disk's path, each mapped NIC's switch. */
static char *
verify_difference(Migration *m, const VmshiftVm *now)
{
    const char *host = m->dest != NULL ? m->dest->name : m->v->host->name;
    gboolean was_running = hv_power_state(hv_inst_get_int(m->v->cs, "EnabledState", 0))
                           == VMSHIFT_POWER_RUNNING;
    gboolean want_run = m->spec->type == VMSHIFT_MIGRATION_COLD ? m->spec->start != 0 : was_running;
    g_autoptr(GPtrArray) targets = hv_disk_targets(m->v, m->spec);

    if (g_ascii_strcasecmp(now->host, host) != 0)
        return g_strdup_printf("it is on %s, not %s", now->host, host);
    if ((now->power_state == VMSHIFT_POWER_RUNNING) != want_run)
        return g_strdup_printf("it is %s", want_run ? "not running" : "running");
    for (guint i = 0; i < targets->len; i++) {
        const char *t = targets->pdata[i];
        const VmshiftDisk *d = t ? vmshift_vm_find_disk(now, hv_disk_id(m->v->sasds->pdata[i]))
                                 : NULL;
        if (t != NULL && (d == NULL || d->path == NULL || g_ascii_strcasecmp(d->path, t) != 0))
            return g_strdup_printf("disk %s is at %s, not %s", hv_disk_id(m->v->sasds->pdata[i]),
                                   d && d->path ? d->path : "(none)", t);
    }
    for (guint i = 0; m->spec->networks != NULL && i < m->spec->networks->len; i++) {
        const VmshiftMapping *map = m->spec->networks->pdata[i];
        const VmshiftNic *n = verify_nic(now, map->key);
        if (n != NULL && g_ascii_strcasecmp(n->network ? n->network : "", map->value) != 0)
            return g_strdup_printf("NIC %s is on switch '%s', not '%s'", n->id,
                                   n->network ? n->network : "(none)", map->value);
    }
    return NULL;
}

/* After the move: the VM read back from the hosts and compared with the
 * spec; a host that reported success without applying all of it fails the
 * job, naming what differs. What matched is the "verified" result. */
static gboolean
verify_moved(Migration *m, GError **error)
{
    g_autoptr(HvVm) v = hv_find_vm(m->b, m->spec->vm, TRUE, error);
    g_autoptr(VmshiftVm) now = NULL;
    g_autofree char *bad = NULL;

    if (v == NULL) {
        g_prefix_error(error, "%s of %s: the result could not be verified: ", m->what, m->name);
        return FALSE;
    }
    now = hv_to_vm(v);
    bad = verify_difference(m, now);
    if (bad != NULL) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_FAILED,
                    "%s of %s: Hyper-V reported success but did not apply it all: %s", m->what,
                    m->name, bad);
        return FALSE;
    }
    vmshift_job_set_result(m->job, "verified", "host,power,disks,nics");
    vmshift_job_log(m->job, VMSHIFT_LOG_INFO,
                    "%s verified on the hosts: on %s, %s, %u disk(s), %u NIC(s)", m->name,
                    now->host, vmshift_power_state_name(now->power_state), now->disks->len,
                    now->nics->len);
    return TRUE;
}

gboolean
hyperv_migrate(VmshiftBackend *b, const VmshiftMigrationSpec *spec, VmshiftJob *job, guint32 flags,
               GError **error)
{
    g_autoptr(HvVm) v = NULL;
    g_autofree char *params = NULL;
    g_auto(Migration)
        m = { .b = b, .spec = spec, .job = job, .what = hv_spec_type_name(spec->type) };
    HvMigrationType mtype;

    if (!vmshift_check_flags(flags, 0, "migrate", error) || !hv_refuse_options(spec, error))
        return FALSE;
    if (!vmshift_job_set_phase(job, VMSHIFT_PHASE_VALIDATE, error))
        return FALSE;
    v = hv_find_vm(b, spec->vm, TRUE, error);
    if (v == NULL)
        return FALSE;
    m.v = v;
    m.name = hv_inst_get(v->cs, "ElementName");
    vmshift_job_set_location(job, v->host->name, "running");
    if (!migrate_validate(&m, error))
        return FALSE;
    if (!vmshift_job_set_phase(job, VMSHIFT_PHASE_PREPARE, error))
        return FALSE;
    params = migrate_params(&m, &mtype, error);
    if (params == NULL)
        return FALSE;
    /* What repair() needs after the host process died (see hyperv_repair):
     * where the VM was and which VM; the Hyper-V job once it exists. */
    if (!vmshift_job_save(job, "source-host", v->host->name, error)
        || !vmshift_job_save(job, "vm-guid", hv_inst_get(v->cs, "Name"), error)) {
        hv_report_location(b, v, job, NULL);
        return FALSE;
    }
    if (!vmshift_job_set_phase(job, VMSHIFT_PHASE_TRANSFER, error))
        return FALSE;
    if (g_cancellable_set_error_if_cancelled(vmshift_job_get_cancellable(job), error)) {
        hv_report_location(b, v, job, NULL);
        return FALSE;
    }
    if (!migrate_run(&m, mtype, params, error))
        return FALSE;
    if (!vmshift_job_set_phase(job, VMSHIFT_PHASE_SWITCHOVER, error)) {
        /* Hyper-V's job has ended: say where the VM is now. */
        hv_report_location(b, v, job, m.jobid);
        return FALSE;
    }
    if (spec->type == VMSHIFT_MIGRATION_COLD && spec->start && !start_after_move(&m, error)) {
        hv_report_location(b, v, job, m.jobid);
        return FALSE;
    }
    vmshift_job_set_progress(job, 100);
    hv_report_location(b, v, job, m.jobid);
    return verify_moved(&m, error);
}
