/*
 * vmshift Hyper-V plugin: following a Hyper-V job (poll, cancel) and
 * reporting where the VM is.
 * Facts and sources: docs/design/hyperv.md.
 */
#include "config.h"

#include <string.h>

#include <vmshift/vmshift.h>

#include "hyperv.h"

#define HV_POLL_MS 250       /* between two Gets of a job */
#define HV_MAX_POLL_ERRORS 5 /* failed Gets in a row before the job is lost */

/* Where the VM is now: sets the job's location; best effort. */
void
hv_report_location(VmshiftBackend *b, HvVm *v, VmshiftJob *job, const char *job_id)
{
    const char *guid = hv_inst_get(v->cs, "Name");
    g_autofree char *where = g_strdup_printf("Name = '%s'", guid);

    for (guint i = 0; i < b->hosts->len; i++) {
        HvHost *h = b->hosts->pdata[i];
        g_autoptr(GPtrArray) css = NULL;
        if (!hv_host_usable(h))
            continue;
        css = hv_host_vm_cs(h, where, NULL);
        if (css != NULL && css->len == 1) {
            guint32 p = hv_power_state(hv_inst_get_int(css->pdata[0], "EnabledState", 0));
            vmshift_job_set_location(job, h->name, hv_power_location(p));
            return;
        }
    }
    {
        g_autofree char *d = g_strdup_printf("not confirmed: %s could not be asked; Hyper-V "
                                             "job %s may still be running there",
                                             v->host->name, job_id ? job_id : "(none)");
        vmshift_job_set_location(job, v->host->name, d);
    }
}

HvInstance *
hv_job_request_kill(HvHost *h, const char *uri, const char *iid, GError **error)
{
    const char *sel[] = { "InstanceID", iid, NULL };

    return hv_invoke(h, uri, "RequestStateChange", sel,
                     "<p:RequestedState>" G_STRINGIFY(HV_JOB_REQUEST_KILL) "</p:RequestedState>",
                     NULL, error);
}

/* Progress of a job to @job; @bytes: what the job copies in all, or 0. */
static void
report_progress(const HvInstance *j, VmshiftJob *job, guint64 bytes)
{
    gint64 pct = CLAMP(hv_inst_get_int(j, "PercentComplete", 0), 0, 100);

    vmshift_job_set_progress(job, (double)pct);
    if (bytes)
        vmshift_job_set_bytes(job, bytes / 100 * (guint64)pct, bytes);
}

/* Polls a job EPR until it ends (docs/design/hyperv.md §2.6).  Progress goes
 * to @job.  A job that fails sets @errmsg and @errcode; a job that cannot be
 * followed any more sets @error. */
HvPollResult
hv_poll_job(HvHost *h, const HvEpr *epr, VmshiftJob *job, guint64 bytes, char **errmsg,
            gint64 *errcode, GError **error)
{
    const char *iid = hv_epr_selector(epr, "InstanceID");
    const char *sel[] = { "InstanceID", iid, NULL };
    GCancellable *c = vmshift_job_get_cancellable(job);
    gboolean cancel_sent = FALSE;
    guint errors = 0;
    g_autoptr(GError) last = NULL;

    if (iid == NULL || epr->uri == NULL || !g_str_has_prefix(epr->uri, HV_URI_BASE)) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_PROTOCOL,
                    "Hyper-V host %s: job reference without InstanceID", h->name);
        return HV_POLL_FAILED;
    }
    for (;;) {
        g_autoptr(HvInstance) j = NULL;
        gint64 state;

        if (!cancel_sent && g_cancellable_is_cancelled(c)) {
            g_autoptr(GError) e = NULL;
            g_autoptr(HvInstance) out = hv_job_request_kill(h, epr->uri, iid, &e);
            cancel_sent = TRUE;
            if (out == NULL)
                vmshift_job_log(job, VMSHIFT_LOG_WARNING, "cancelling Hyper-V job %s: %s", iid,
                                e->message);
            else
                vmshift_job_log(job, VMSHIFT_LOG_INFO,
                                "asked Hyper-V to stop job %s (ReturnValue %s)", iid,
                                hv_inst_get(out, "ReturnValue"));
        }
        g_clear_error(&last);
        j = hv_get(h, epr->uri, sel, "Get job", NULL, &last);
        if (j == NULL) {
            if (++errors >= HV_MAX_POLL_ERRORS) {
                g_propagate_error(error, g_steal_pointer(&last));
                return HV_POLL_FAILED;
            }
            vmshift_job_log(job, VMSHIFT_LOG_WARNING, "polling Hyper-V job %s: %s", iid,
                            last->message);
            g_usleep(HV_POLL_MS * 1000 * errors);
            continue;
        }
        errors = 0;
        state = hv_inst_get_int(j, "JobState", 0);
        report_progress(j, job, bytes);
        if (hv_job_state_completed(state))
            return HV_POLL_DONE;
        if (cancel_sent
            && (state == HV_JOB_TERMINATED || state == HV_JOB_KILLED || state == HV_JOB_EXCEPTION))
            return HV_POLL_CANCELLED;
        if (hv_job_state_failed(state)) {
            const char *d = hv_inst_get(j, "ErrorDescription");
            if (d == NULL || !d[0])
                d = hv_inst_get(j, "ErrorSummaryDescription");
            *errmsg = hv_flatten(d != NULL && d[0] ? d : "no error description");
            *errcode = hv_inst_get_int(j, "ErrorCode", 0);
            return HV_POLL_FAILED;
        }
        g_usleep(HV_POLL_MS * 1000);
    }
}
