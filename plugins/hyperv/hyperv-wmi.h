/*
 * Hyper-V plugin: the WMI numbers the plugin uses, by name, and the pure
 * functions that turn them into vmshift values (hyperv-wmi.c).
 *
 * Sources: docs/design/hyperv.md (section given with each group).  A WMI
 * number means something only together with its class and property: 32768
 * is a paused VM (EnabledState), "Creating Snapshot" (OperationalStatus),
 * a failed method (ReturnValue), a job completed with warnings (JobState)
 * and a live migration (MigrationType).  Use the names.
 */
#ifndef HYPERV_HYPERV_WMI_H
#define HYPERV_HYPERV_WMI_H

#include <vmshift/vmshift.h>

G_BEGIN_DECLS

/* ---- method return values (docs/design/hyperv.md §2.7) ------------------- */

/* ReturnValue of the Msvm methods (MigrateVirtualSystemToHost,
 * GetVirtualHardDiskSettingData, RequestStateChange, ...). */
typedef enum {
    HV_RV_OK = 0,                       /* completed with no error */
    HV_RV_JOB_STARTED = 4096,           /* parameters checked, job started: follow the Job EPR */
    HV_RV_FAILED = 32768,               /* failed */
    HV_RV_ACCESS_DENIED = 32769,        /* access denied */
    HV_RV_NOT_SUPPORTED = 32770,        /* not supported */
    HV_RV_STATUS_UNKNOWN = 32771,       /* status is unknown */
    HV_RV_TIMEOUT = 32772,              /* timeout */
    HV_RV_INVALID_PARAMETER = 32773,    /* invalid parameter */
    HV_RV_SYSTEM_IN_USE = 32774,        /* system is in use */
    HV_RV_INVALID_STATE = 32775,        /* invalid state for this operation */
    HV_RV_INCORRECT_DATA_TYPE = 32776,  /* incorrect data type */
    HV_RV_SYSTEM_NOT_AVAILABLE = 32777, /* system is not available */
    HV_RV_OUT_OF_MEMORY = 32778,        /* out of memory */
} HvReturnValue;

/* ReturnValue of Win32_LogicalFileSecuritySetting.Get/SetSecurityDescriptor
 * (root/cimv2; docs/design/hyperv.md §3.2). */
typedef enum {
    HV_FILE_SD_OK = 0,                 /* success */
    HV_FILE_SD_ACCESS_DENIED = 2,      /* access denied */
    HV_FILE_SD_UNKNOWN_FAILURE = 8,    /* unknown failure */
    HV_FILE_SD_PRIVILEGE_MISSING = 9,  /* SeSecurityPrivilege missing */
    HV_FILE_SD_INVALID_PARAMETER = 21, /* invalid parameter (e.g. unresolvable trustee) */
} HvFileSdReturnValue;

/* ---- Msvm_ComputerSystem (docs/design/hyperv.md §2.1) -------------------- */

/* EnabledState: the CIM values, then Hyper-V's own (32768 and up). */
typedef enum {
    HV_ENABLED_UNKNOWN = 0,          /* unknown */
    HV_ENABLED_ENABLED = 2,          /* enabled: running */
    HV_ENABLED_DISABLED = 3,         /* disabled: off */
    HV_ENABLED_SHUTTING_DOWN = 4,    /* shutting down (still running) */
    HV_ENABLED_OFFLINE = 6,          /* enabled but offline: saved */
    HV_ENABLED_QUIESCE = 9,          /* quiesce: paused */
    HV_ENABLED_STARTING = 10,        /* starting */
    HV_ENABLED_PAUSED = 32768,       /* Hyper-V: paused */
    HV_ENABLED_SUSPENDED = 32769,    /* Hyper-V: suspended (saved state) */
    HV_ENABLED_HV_STARTING = 32770,  /* Hyper-V: starting */
    HV_ENABLED_SNAPSHOTTING = 32771, /* Hyper-V: taking a checkpoint */
    HV_ENABLED_SAVING = 32773,       /* Hyper-V: saving */
    HV_ENABLED_STOPPING = 32774,     /* Hyper-V: stopping */
    HV_ENABLED_PAUSING = 32776,      /* Hyper-V: pausing */
    HV_ENABLED_RESUMING = 32777,     /* Hyper-V: resuming */
} HvEnabledState;

/* RequestedState of Msvm_ComputerSystem.RequestStateChange (§2.1). */
#define HV_REQUEST_ENABLED 2 /* start (or resume) the VM */

/* OperationalStatus[1], the operation in progress (Hyper-V values). */
typedef enum {
    HV_OPSTATUS_NONE = 0,                  /* no second element: nothing in progress */
    HV_OPSTATUS_CREATING_SNAPSHOT = 32768, /* Creating Snapshot */
    HV_OPSTATUS_APPLYING_SNAPSHOT = 32769, /* Applying Snapshot */
    HV_OPSTATUS_DELETING_SNAPSHOT = 32770, /* Deleting Snapshot (a merge follows) */
    HV_OPSTATUS_WAITING_TO_START = 32771,  /* Waiting to Start */
    HV_OPSTATUS_MERGING_DISKS = 32772,     /* Merging Disks */
    HV_OPSTATUS_EXPORTING = 32773,         /* Exporting Virtual Machine */
    HV_OPSTATUS_MIGRATING = 32774,         /* Migrating Virtual Machine */
} HvOperationalStatus;

/* ---- jobs: Msvm_ConcreteJob, Msvm_MigrationJob (docs/design/hyperv.md §2.6) */

/* JobState. */
typedef enum {
    HV_JOB_NEW = 2,                         /* new */
    HV_JOB_STARTING = 3,                    /* starting */
    HV_JOB_RUNNING = 4,                     /* running */
    HV_JOB_SUSPENDED = 5,                   /* suspended */
    HV_JOB_SHUTTING_DOWN = 6,               /* shutting down */
    HV_JOB_COMPLETED = 7,                   /* completed */
    HV_JOB_TERMINATED = 8,                  /* terminated */
    HV_JOB_KILLED = 9,                      /* killed */
    HV_JOB_EXCEPTION = 10,                  /* exception: failed */
    HV_JOB_SERVICE = 11,                    /* service */
    HV_JOB_COMPLETED_WITH_WARNINGS = 32768, /* os-win's JOB_STATE_COMPLETED_WITH_WARNINGS */
} HvJobState;

/* RequestedState of CIM_ConcreteJob.RequestStateChange. */
#define HV_JOB_REQUEST_KILL 5 /* kill the job (what os-win sends; the job ends Killed) */

/* JobType of the jobs that take or remove a checkpoint (§2.8 rule 3). */
typedef enum {
    HV_JOBTYPE_MERGE_VHD = 50,       /* Merging VHD Disks */
    HV_JOBTYPE_SNAPSHOT = 70,        /* Snapshot VM */
    HV_JOBTYPE_APPLY_SNAPSHOT = 71,  /* Apply snapshot */
    HV_JOBTYPE_DELETE_SNAPSHOT = 72, /* Delete VM snapshot */
} HvJobType;

/* ---- migration (docs/design/hyperv.md §2.4) ------------------------------ */

/* Msvm_VirtualSystemMigrationSettingData.MigrationType. */
typedef enum {
    HV_MIGRATION_VIRTUAL_SYSTEM = 32768,             /* VirtualSystem: live/cold, disks stay */
    HV_MIGRATION_STORAGE = 32769,                    /* Storage: disks only, same host */
    HV_MIGRATION_STAGED = 32770,                     /* Staged: planned VM at the destination */
    HV_MIGRATION_VIRTUAL_SYSTEM_AND_STORAGE = 32771, /* VirtualSystemAndStorage */
} HvMigrationType;

/* Msvm_VirtualSystemMigrationSettingData.TransportType. */
#define HV_TRANSPORT_TCP 5 /* TCP (the other live migration transport is 32768 SMB) */

/* MaximumActiveVirtualSystemMigration when the host does not say (Hyper-V's
 * default of simultaneous live migrations, §2.5). */
#define HV_DEFAULT_MAX_ACTIVE_MIGRATIONS 2

/* ---- settings (docs/design/hyperv.md §2.2) ------------------------------- */

/* ResourceType of a SASD that attaches a VHD/VHDX ("Logical Disk"). */
#define HV_RESOURCE_TYPE_LOGICAL_DISK 31

/* Win32_Volume.DriveType of a local disk (root/cimv2). */
#define HV_DRIVE_TYPE_LOCAL_DISK 3

/* Msvm_MemorySettingData AllocationUnits "byte * 2^20": the shift used when
 * the units are absent or not understood, and the largest one accepted. */
#define HV_MEMORY_UNIT_SHIFT_DEFAULT 20
#define HV_MEMORY_UNIT_SHIFT_MAX 40

/* HRESULT text in a job's ErrorDescription for "not enough space on the
 * disk" (HRESULT_FROM_WIN32(ERROR_DISK_FULL)). */
#define HV_HRESULT_DISK_FULL "0x80070070"

/* ---- file security (docs/design/hyperv.md §3) ---------------------------- */

/* AccessMask Hyper-V grants the VM account: FILE_GENERIC_READ |
 * FILE_GENERIC_WRITE (§3.1). */
#define HV_ACE_MASK_VM 0x12019F
/* Win32_ACE.AceType: access allowed. */
#define HV_ACE_TYPE_ALLOW 0
/* Win32_ACE.AceFlags: OBJECT_INHERIT | CONTAINER_INHERIT, what a folder's
 * grant carries (§3.1). */
#define HV_ACE_FLAGS_INHERIT_ALL 0x3
/* Win32_ACE.AceFlags: INHERITED_ACE (inherited from the parent). */
#define HV_ACE_FLAG_INHERITED 0x10
/* Win32_SecurityDescriptor.ControlFlags: SE_DACL_PRESENT (0x4, §3.2); decimal, as
 * it goes into the request text. */
#define HV_SD_DACL_PRESENT 4

/* ---- mapping to vmshift (hyperv-wmi.c) ----------------------------------- */

/* A VmshiftPowerState for an EnabledState. */
guint32 hv_power_state(gint64 enabled);
/* The job location detail ("running", "off", ...) for a VmshiftPowerState. */
const char *hv_power_location(guint32 power);
/* Hyper-V's text for OperationalStatus[1], or NULL for another value. */
const char *hv_opstatus_text(gint64 v);
/* Whether OperationalStatus[1] says a checkpoint merge is under way. */
gboolean hv_opstatus_is_merge(gint64 v);
/* Whether a job of this JobType takes, applies or merges a checkpoint. */
gboolean hv_job_type_is_checkpoint(gint64 type);
/* Text and VmshiftError code of a method ReturnValue. */
const char *hv_return_value_text(gint64 rv);
int hv_return_value_code(gint64 rv);
/* VmshiftError code of a Win32_LogicalFileSecuritySetting ReturnValue. */
int hv_file_sd_error_code(gint64 rv);
/* JobState classes: still running (New .. Shutting Down); completed (also
 * with warnings); ended in failure (Terminated .. Service). */
gboolean hv_job_state_running(gint64 st);
gboolean hv_job_state_completed(gint64 st);
gboolean hv_job_state_failed(gint64 st);
/* One line from a job's multi-line ErrorDescription. */
char *hv_flatten(const char *s);
/* VmshiftError code for a failed job's (flattened) error description. */
int hv_job_error_code(const char *errmsg);
/* The MigrationType for a vmshift migration type; @moves_storage: the spec
 * moves the configuration or a disk. */
HvMigrationType hv_migration_type(guint32 spec_type, gboolean moves_storage);

G_END_DECLS

#endif /* HYPERV_HYPERV_WMI_H */
