/* vmshift KVM plugin: what both transports tell the job about the tuning
 * kvm-tuning.c decided (kvm-tuning.c itself stays pure). */
#include "config.h"

#include "kvm.h"

void
kvm_tuning_warn_tcg_live(VmshiftJob *job, int qemu_major)
{
    vmshift_job_log(job, VMSHIFT_LOG_WARNING,
                    "tcg-safe=false: migrating a TCG guest live on "
                    "QEMU %d, which can lose guest writes (fixed in QEMU 9.0)",
                    qemu_major);
}

void
kvm_tuning_report(VmshiftJob *job, const KvmTuning *t, const char *tuning)
{
    vmshift_job_set_result(job, "tuning", tuning);
    vmshift_job_set_result(job, "tuning-reason", t->why);
    if (t->dirty_mib_s >= 0) {
        g_autofree char *d = g_strdup_printf("%" G_GINT64_FORMAT, t->dirty_mib_s);
        vmshift_job_set_result(job, "dirty-rate-mib-s", d);
    }
    vmshift_job_log(job, VMSHIFT_LOG_INFO, "tuning: %s (%s)", tuning, t->why);
}
