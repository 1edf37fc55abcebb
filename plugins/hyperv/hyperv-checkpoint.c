/*
 * vmshift Hyper-V plugin: checkpoints (list) and the merge state.
 * Facts and sources: docs/design/hyperv.md.
 */
#include "config.h"

#include <string.h>

#include <vmshift/vmshift.h>

#include "hyperv.h"

/* Checkpoints of a VM: the Snapshot VSSDs (docs/design/hyperv.md §2.2). */
GPtrArray *
hyperv_list_snapshots(VmshiftBackend *b, const char *vm, guint32 flags, GError **error)
{
    g_autoptr(HvVm) v = NULL;
    g_autoptr(GPtrArray) out = NULL;
    g_autofree char *cur = NULL;

    if (!vmshift_check_flags(flags, 0, "list_snapshots", error))
        return NULL;
    v = hv_find_vm(b, vm, FALSE, error);
    if (v == NULL)
        return NULL;
    if (v->snaps == NULL) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_NOT_SUPPORTED,
                    "checkpoints of %s unknown: Hyper-V host %s does not answer "
                    "Msvm_SnapshotOfVirtualSystem",
                    vm, v->host->name);
        return NULL;
    }
    /* The VM's own settings name the checkpoint it runs from as Parent. */
    cur = hv_path_key(hv_inst_get(v->vssd, "Parent"), "InstanceID");
    out = vmshift_list_new((GDestroyNotify)vmshift_snapshot_free);
    for (guint i = 0; i < v->snaps->len; i++) {
        HvInstance *s = v->snaps->pdata[i];
        VmshiftSnapshot *sn = vmshift_snapshot_new();
        const char *ct = hv_inst_get(s, "CreationTime");
        g_autofree char *parent = hv_path_key(hv_inst_get(s, "Parent"), "InstanceID");
        sn->id = hv_strip_microsoft(hv_inst_get(s, "InstanceID"));
        sn->name = g_strdup(hv_inst_get(s, "ElementName"));
        sn->parent = hv_strip_microsoft(parent);
        sn->current = cur != NULL && g_strcmp0(cur, hv_inst_get(s, "InstanceID")) == 0;
        if (ct != NULL) {
            g_autoptr(GDateTime) dt = g_date_time_new_from_iso8601(ct, NULL);
            if (dt != NULL)
                sn->created = g_date_time_to_unix(dt);
        }
        g_ptr_array_add(out, sn);
    }
    return g_steal_pointer(&out);
}

VmshiftCheckpointState *
hv_checkpoint_of(HvVm *v, GError **error)
{
    g_autoptr(VmshiftCheckpointState) st = vmshift_checkpoint_state_new();
    g_autoptr(GString) detail = g_string_new(NULL);
    g_autofree char *q = NULL;
    g_autoptr(GPtrArray) jobs = NULL;
    g_autoptr(GPtrArray) snaps = NULL;
    gint64 os2 = hv_opstatus2(v->cs);
    const char *guid = hv_inst_get(v->cs, "Name");

    st->percent = -1;
    if (hv_opstatus_is_merge(os2)) {
        st->merging = TRUE;
        g_string_append_printf(detail,
                               "Hyper-V reports \"%s\" (OperationalStatus %" G_GINT64_FORMAT ")",
                               hv_opstatus_text(os2), os2);
    }
    if (hv_inst_get_int(v->cs, "EnabledState", 0) == HV_ENABLED_SNAPSHOTTING) {
        st->merging = TRUE;
        g_string_append_printf(detail, "%sthe VM is Snapshotting (EnabledState %d)",
                               detail->len ? "; " : "", HV_ENABLED_SNAPSHOTTING);
    }
    q = g_strdup_printf("ASSOCIATORS OF {Msvm_ComputerSystem.CreationClassName="
                        "'Msvm_ComputerSystem',Name='%s'} WHERE AssocClass = "
                        "Msvm_AffectedJobElement ResultClass = Msvm_ConcreteJob",
                        guid);
    jobs = hv_wql(v->host, HV_NS_V2, q, NULL, error);
    if (jobs == NULL)
        return NULL;
    for (guint i = 0; i < jobs->len; i++) {
        HvInstance *j = jobs->pdata[i];
        gint64 state = hv_inst_get_int(j, "JobState", 0);
        gint64 type = hv_inst_get_int(j, "JobType", 0);
        if (!hv_job_state_running(state) || !hv_job_type_is_checkpoint(type))
            continue;
        st->merging = TRUE;
        st->percent = (gint32)hv_inst_get_int(j, "PercentComplete", -1);
        g_string_append_printf(
            detail, "%sjob \"%s\" (JobType %" G_GINT64_FORMAT ") at %d%%", detail->len ? "; " : "",
            hv_inst_get(j, "Caption") ? hv_inst_get(j, "Caption") : "?", type, st->percent);
        if (hv_inst_get(j, "StartTime") != NULL) {
            g_autoptr(GDateTime)
                t = g_date_time_new_from_iso8601(hv_inst_get(j, "StartTime"), NULL);
            if (t != NULL)
                st->started = g_date_time_to_unix(t);
        }
    }
    if (!st->merging) {
        g_free(q);
        q = g_strdup_printf("ASSOCIATORS OF {Msvm_ComputerSystem.CreationClassName="
                            "'Msvm_ComputerSystem',Name='%s'} WHERE AssocClass = "
                            "Msvm_SnapshotOfVirtualSystem ResultClass = "
                            "Msvm_VirtualSystemSettingData",
                            guid);
        snaps = hv_wql(v->host, HV_NS_V2, q, NULL, error);
        if (snaps == NULL)
            return NULL;
        for (guint i = 0; snaps->len == 0 && i < v->sasds->len; i++) {
            const char *p = hv_inst_get(v->sasds->pdata[i], "HostResource");
            if (p != NULL && g_str_has_suffix(p, ".avhdx")) {
                st->needs_consolidation = TRUE;
                g_string_append_printf(detail,
                                       "%s%s is a differencing disk but the VM has "
                                       "no checkpoint",
                                       detail->len ? "; " : "", p);
            }
        }
    }
    if (detail->len)
        st->detail = g_strdup(detail->str);
    return g_steal_pointer(&st);
}

VmshiftCheckpointState *
hyperv_checkpoint_state(VmshiftBackend *b, const char *vm, guint32 flags, GError **error)
{
    g_autoptr(HvVm) v = NULL;

    if (!vmshift_check_flags(flags, 0, "checkpoint_state", error))
        return NULL;
    v = hv_find_vm(b, vm, FALSE, error);
    return v != NULL ? hv_checkpoint_of(v, error) : NULL;
}
