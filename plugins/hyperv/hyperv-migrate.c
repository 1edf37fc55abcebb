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

static char *
sasd_with_path(const HvInstance *s, const char *path)
{
    HvCimXml *x = hv_cimxml_new("Msvm_StorageAllocationSettingData");
    const char *hr[] = { path };

    for (guint i = 0; i < G_N_ELEMENTS(sasd_types); i++) {
        const char *val = hv_inst_get(s, sasd_types[i][0]);
        if (val == NULL)
            continue;
        if (strcmp(sasd_types[i][1], "boolean") == 0)
            val = g_ascii_strcasecmp(val, "true") == 0 ? "TRUE" : "FALSE";
        hv_cimxml_prop(x, sasd_types[i][0], sasd_types[i][1], val);
    }
    hv_cimxml_prop_array(x, "HostResource", "string", hr, 1);
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
        inst = sasd_with_path(v->sasds->pdata[i], targets->pdata[i]);
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
follow_job(Migration *m, const HvInstance *out, GError **error)
{
    const HvEpr *epr = hv_inst_get_epr(out, "Job");
    g_autofree char *errmsg = NULL;
    gint64 errcode = 0;
    HvPollResult pr;

    if (epr == NULL) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_PROTOCOL,
                    "%s of %s: Hyper-V host %s started a job but sent no reference to it", m->what,
                    m->name, m->v->host->name);
        hv_report_location(m->b, m->v, m->job, NULL);
        return FALSE;
    }
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

/* Invokes MigrateVirtualSystemToHost on the source and waits for its end. */
static gboolean
migrate_run(Migration *m, HvMigrationType mtype, const char *params, GError **error)
{
    const char *sel[] = { "CreationClassName", "Msvm_VirtualSystemMigrationService", NULL };
    g_autoptr(HvInstance) out = NULL;
    gint64 rv;

    vmshift_job_log(m->job, VMSHIFT_LOG_INFO, "Hyper-V %s of %s from %s%s%s (MigrationType %u)",
                    m->what, m->name, m->v->host->name, m->dest ? " to " : "",
                    m->dest ? m->dest->name : "", (guint)mtype);
    out = hv_invoke(m->v->host, HV_V2 "Msvm_VirtualSystemMigrationService",
                    "MigrateVirtualSystemToHost", sel, params, NULL, error);
    if (out == NULL) {
        g_prefix_error(error, "%s of %s: ", m->what, m->name);
        hv_report_location(m->b, m->v, m->job, NULL);
        return FALSE;
    }
    rv = hv_inst_get_int(out, "ReturnValue", -1);
    if (rv == HV_RV_JOB_STARTED)
        return follow_job(m, out, error);
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

gboolean
hyperv_migrate(VmshiftBackend *b, const VmshiftMigrationSpec *spec, VmshiftJob *job, guint32 flags,
               GError **error)
{
    g_autoptr(HvVm) v = NULL;
    g_autofree char *params = NULL;
    g_auto(Migration)
        m = { .b = b, .spec = spec, .job = job, .what = hv_spec_type_name(spec->type) };
    HvMigrationType mtype;

    if (!vmshift_check_flags(flags, 0, "migrate", error))
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
    vmshift_job_set_progress(job, 100);
    hv_report_location(b, v, job, m.jobid);
    return TRUE;
}
