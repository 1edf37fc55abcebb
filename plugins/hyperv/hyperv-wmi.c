/*
 * vmshift Hyper-V plugin: WMI values as vmshift values (power state,
 * status texts, method return values, job states, job errors).  Pure: no
 * host, no I/O; tests/unit/test-hyperv-wmi.c covers it.
 * Facts and sources: docs/design/hyperv.md §2.
 */
#include "config.h"

#include <string.h>

#include <vmshift/vmshift.h>

#include "hyperv-wmi.h"

guint32
hv_power_state(gint64 enabled)
{
    switch (enabled) {
    case HV_ENABLED_ENABLED:
    case HV_ENABLED_SHUTTING_DOWN:
    case HV_ENABLED_STARTING:
    case HV_ENABLED_HV_STARTING:
    case HV_ENABLED_SNAPSHOTTING:
    case HV_ENABLED_SAVING:
    case HV_ENABLED_STOPPING:
    case HV_ENABLED_PAUSING:
    case HV_ENABLED_RESUMING: return VMSHIFT_POWER_RUNNING;
    case HV_ENABLED_DISABLED: return VMSHIFT_POWER_STOPPED;
    case HV_ENABLED_QUIESCE:
    case HV_ENABLED_PAUSED: return VMSHIFT_POWER_PAUSED;
    case HV_ENABLED_OFFLINE:
    case HV_ENABLED_SUSPENDED: return VMSHIFT_POWER_SUSPENDED;
    default: return VMSHIFT_POWER_UNKNOWN;
    }
}

const char *
hv_power_location(guint32 power)
{
    switch (power) {
    case VMSHIFT_POWER_RUNNING: return "running";
    case VMSHIFT_POWER_STOPPED: return "off";
    case VMSHIFT_POWER_PAUSED: return "paused";
    case VMSHIFT_POWER_SUSPENDED: return "saved";
    default: return "registered";
    }
}

const char *
hv_opstatus_text(gint64 v)
{
    switch (v) {
    case HV_OPSTATUS_CREATING_SNAPSHOT: return "Creating Snapshot";
    case HV_OPSTATUS_APPLYING_SNAPSHOT: return "Applying Snapshot";
    case HV_OPSTATUS_DELETING_SNAPSHOT: return "Deleting Snapshot";
    case HV_OPSTATUS_WAITING_TO_START: return "Waiting to Start";
    case HV_OPSTATUS_MERGING_DISKS: return "Merging Disks";
    case HV_OPSTATUS_EXPORTING: return "Exporting Virtual Machine";
    case HV_OPSTATUS_MIGRATING: return "Migrating Virtual Machine";
    default: return NULL;
    }
}

gboolean
hv_opstatus_is_merge(gint64 v)
{
    return v == HV_OPSTATUS_DELETING_SNAPSHOT || v == HV_OPSTATUS_MERGING_DISKS;
}

gboolean
hv_job_type_is_checkpoint(gint64 type)
{
    return type == HV_JOBTYPE_MERGE_VHD || type == HV_JOBTYPE_SNAPSHOT
           || type == HV_JOBTYPE_APPLY_SNAPSHOT || type == HV_JOBTYPE_DELETE_SNAPSHOT;
}

const char *
hv_return_value_text(gint64 rv)
{
    switch (rv) {
    case HV_RV_FAILED: return "failed";
    case HV_RV_ACCESS_DENIED: return "access denied";
    case HV_RV_NOT_SUPPORTED: return "not supported";
    case HV_RV_STATUS_UNKNOWN: return "status unknown";
    case HV_RV_TIMEOUT: return "timeout";
    case HV_RV_INVALID_PARAMETER: return "invalid parameter";
    case HV_RV_SYSTEM_IN_USE: return "system is in use";
    case HV_RV_INVALID_STATE: return "invalid state for this operation";
    case HV_RV_INCORRECT_DATA_TYPE: return "incorrect data type";
    case HV_RV_SYSTEM_NOT_AVAILABLE: return "system is not available";
    case HV_RV_OUT_OF_MEMORY: return "out of memory";
    default: return "error";
    }
}

int
hv_return_value_code(gint64 rv)
{
    switch (rv) {
    case HV_RV_ACCESS_DENIED: return VMSHIFT_ERROR_PERMISSION;
    case HV_RV_NOT_SUPPORTED: return VMSHIFT_ERROR_NOT_SUPPORTED;
    case HV_RV_TIMEOUT: return VMSHIFT_ERROR_TIMEOUT;
    case HV_RV_INVALID_PARAMETER:
    case HV_RV_INCORRECT_DATA_TYPE: return VMSHIFT_ERROR_INVALID_ARGUMENT;
    case HV_RV_SYSTEM_IN_USE: return VMSHIFT_ERROR_BUSY;
    case HV_RV_INVALID_STATE: return VMSHIFT_ERROR_CONFLICT;
    case HV_RV_OUT_OF_MEMORY: return VMSHIFT_ERROR_NO_SPACE;
    default: return VMSHIFT_ERROR_FAILED;
    }
}

int
hv_file_sd_error_code(gint64 rv)
{
    return rv == HV_FILE_SD_ACCESS_DENIED || rv == HV_FILE_SD_PRIVILEGE_MISSING
               ? VMSHIFT_ERROR_PERMISSION
               : VMSHIFT_ERROR_FAILED;
}

gboolean
hv_job_state_running(gint64 st)
{
    return st >= HV_JOB_NEW && st <= HV_JOB_SHUTTING_DOWN;
}

gboolean
hv_job_state_completed(gint64 st)
{
    return st == HV_JOB_COMPLETED || st == HV_JOB_COMPLETED_WITH_WARNINGS;
}

gboolean
hv_job_state_failed(gint64 st)
{
    return st >= HV_JOB_TERMINATED && st <= HV_JOB_SERVICE;
}

static void
trim_end(GString *o)
{
    while (o->len && (o->str[o->len - 1] == ' ' || o->str[o->len - 1] == '.'))
        g_string_truncate(o, o->len - 1);
}

char *
hv_flatten(const char *s)
{
    GString *o = g_string_new(NULL);
    gboolean nl = FALSE;

    for (; s != NULL && *s; s++) {
        if (*s == '\r' || *s == '\n') {
            nl = o->len > 0;
            continue;
        }
        if (nl) {
            trim_end(o);
            g_string_append(o, ": ");
            nl = FALSE;
        }
        g_string_append_c(o, *s);
    }
    trim_end(o);
    return g_string_free(o, FALSE);
}

int
hv_job_error_code(const char *errmsg)
{
    return errmsg != NULL && strstr(errmsg, HV_HRESULT_DISK_FULL) != NULL ? VMSHIFT_ERROR_NO_SPACE
                                                                          : VMSHIFT_ERROR_FAILED;
}

HvMigrationType
hv_migration_type(guint32 spec_type, gboolean moves_storage)
{
    if (spec_type == VMSHIFT_MIGRATION_STORAGE)
        return HV_MIGRATION_STORAGE;
    return moves_storage ? HV_MIGRATION_VIRTUAL_SYSTEM_AND_STORAGE : HV_MIGRATION_VIRTUAL_SYSTEM;
}
