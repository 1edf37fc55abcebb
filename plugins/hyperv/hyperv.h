/*
 * Hyper-V plugin: what crosses the plugin's files.  The backend operations
 * (used by plugin.c), the host and VM models, and the helpers one file
 * offers the others.  Tests that link the convenience library use it too.
 *
 * Files (one job each):
 *   hyperv-conn.c       WS-Man transport, NTLM, open/close, host lookup
 *   hyperv-path.c       Windows paths and WMI object paths as text (pure)
 *   hyperv-wmi.c        WMI numbers as vmshift values (pure; hyperv-wmi.h)
 *   hyperv-vm.c         one VM: found, loaded, turned into a VmshiftVm
 *   hyperv-inventory.c  list hosts, VMs, networks, volumes
 *   hyperv-checkpoint.c checkpoints and the merge state
 *   hyperv-check.c      migration planning and the pre-migration check
 *   hyperv-job.c        following a Hyper-V job; where the VM is
 *   hyperv-migrate.c    migrate
 *   hyperv-repair.c     repair after the vmshift process died
 *   hyperv-acl.c        re-creating the VM account's file ACLs
 *   hyperv-v2v.c        moves between backends: export, open_disk, check_import
 *   hyperv-import.c     moves between backends: import, remove, start
 *   hyperv-smb.c        the host's files through its SMB shares (libsmbclient)
 */
#ifndef HYPERV_HYPERV_H
#define HYPERV_HYPERV_H

#include <vmshift/vmshift.h>
#include <vmshift/http.h>

#include "hyperv-wmi.h"
#include "wsman.h"

G_BEGIN_DECLS

/* ---- backend operations (plugin.c) --------------------------------------- */

VmshiftBackend *hyperv_open(const VmshiftConfig *config, guint32 flags, GError **error);
void hyperv_close(VmshiftBackend *backend);
GPtrArray *hyperv_list_hosts(VmshiftBackend *b, guint32 flags, GError **error);
GPtrArray *hyperv_list_vms(VmshiftBackend *b, const char *host, guint32 flags, GError **error);
VmshiftVm *hyperv_get_vm(VmshiftBackend *b, const char *vm, guint32 flags, GError **error);
GPtrArray *hyperv_list_networks(VmshiftBackend *b, const char *host, guint32 flags, GError **error);
GPtrArray *hyperv_list_volumes(VmshiftBackend *b, const char *host, guint32 flags, GError **error);
VmshiftCheckpointState *hyperv_checkpoint_state(VmshiftBackend *b, const char *vm, guint32 flags,
                                                GError **error);
GPtrArray *hyperv_check_migration(VmshiftBackend *b, const VmshiftMigrationSpec *spec,
                                  guint32 flags, GError **error);
gboolean hyperv_migrate(VmshiftBackend *b, const VmshiftMigrationSpec *spec, VmshiftJob *job,
                        guint32 flags, GError **error);
gboolean hyperv_recreate_acl(VmshiftBackend *b, const char *vm, VmshiftJob *job, guint32 flags,
                             GError **error);
GPtrArray *hyperv_list_snapshots(VmshiftBackend *b, const char *vm, guint32 flags, GError **error);
gboolean hyperv_repair(VmshiftBackend *b, VmshiftJob *job, guint32 flags, GError **error);

/* ---- hosts and the backend (hyperv-conn.c) ------------------------------- */

#define HV_NS_V2 "root/virtualization/v2"
#define HV_NS_CIMV2 "root/cimv2"

typedef struct {
    char *url;
    char *name;      /* computer name (Msvm_ComputerSystem.Name), or NULL */
    char *dest_name; /* what we pass as DestinationHost */
    VmshiftHttp *http;
    GError *open_error; /* the first contact failed (hv_hosts_ready) */
    char *product;
    VmshiftHttpAuth auth; /* as configured */
    /* auth=ntlm is done here, in the "Negotiate" scheme WinRM takes (libcurl's
     * NTLM only answers "WWW-Authenticate: NTLM", which WinRM never sends).
     * NTLM authenticates the TCP connection: ntlm_ready says the handle's
     * connection completed a handshake; a 401 later means a new connection. */
    gboolean ntlm_ready;
    GMutex lock;        /* a handshake and the request it carries go together */
    GHashTable *warned; /* optional classes already warned about */
    /* open does not touch the network: the first operation contacts the
     * host (hv_hosts_ready), once, under connect_lock */
    GMutex connect_lock;
    gboolean contacted;
} HvHost;

struct _VmshiftBackend {
    char *backend;
    GPtrArray *hosts; /* HvHost */
    /* moves between backends (plugin.c reads them) */
    GPtrArray *smb_shares; /* smb-shares= entries "D:=//SERVER/SHARE[/DIR]", or NULL */
    char *staging_dir;     /* staging-dir= */
};

const char *hv_host_label(const HvHost *h);
/* The VmshiftError code of a SOAP fault. */
int hv_fault_code(const HvResponse *r);
/* WQL Enumerate (all pages) in namespace @ns; HvInstance items. */
GPtrArray *hv_wql(HvHost *h, const char *ns, const char *query, GCancellable *cancellable,
                  GError **error);
/* The first item of a WQL query; VMSHIFT_ERROR_NOT_FOUND when none. */
HvInstance *hv_first_of(HvHost *h, const char *ns, const char *query, GCancellable *c,
                        GError **error);
HvInstance *hv_get(HvHost *h, const char *uri, const char *const *sel, const char *what,
                   GCancellable *cancellable, GError **error);
/* Invoke; returns the <M>_OUTPUT instance. */
HvInstance *hv_invoke(HvHost *h, const char *uri, const char *method, const char *const *sel,
                      const char *params, GCancellable *cancellable, GError **error);
gboolean hv_host_usable(const HvHost *h);
/* Contacts the hosts not contacted yet (in parallel; each once, guarded:
 * jobs run concurrently). FALSE when none answered, with the first
 * failure as one line naming the backend and the host. Every operation
 * calls it first (plugin.c): open leaves the network alone. */
gboolean hv_hosts_ready(VmshiftBackend *b, GError **error);
/* hyperv-krb.c: after a 401 to auth=negotiate, one line saying why (no,
 * expired or unusable ticket, or a ticket the host refused), or NULL when
 * GSS-API cannot be asked. */
char *hv_krb_explain(const HvHost *h);
/* hyperv-vm.c: the ParentPath of a differencing VHD (NULL: none or unknown). */
char *hv_vhd_parent(HvHost *h, const char *path);
#define HV_MAX_VHD_CHAIN 64 /* parents followed (a loop stops there) */
HvHost *hv_find_host(VmshiftBackend *b, const char *name);
gboolean hv_check_host_arg(VmshiftBackend *b, const char *host, GError **error);
gboolean hv_usable_or_warn(VmshiftBackend *b, HvHost *h, const char *what);
/* @h answered a query of the optional class @cls with an error (*@e): when
 * the host answered (a fault, not a lost connection or refused logon),
 * warns once per host and class that @fact is unknown, clears *@e and
 * returns TRUE; otherwise FALSE (the error is the host's, not the class's). */
gboolean hv_degrade_class(HvHost *h, const char *cls, const char *fact, GError **e);

/* ---- text (hyperv-path.c; pure) ------------------------------------------ */

gboolean hv_path_under(const char *path, const char *dir);
char *hv_volume_root(const char *name);
char *hv_path_key(const char *path, const char *key);
const char *hv_basename_win(const char *p);
char *hv_join_win(const char *dir, const char *file);
char *hv_nic_mac(const char *raw);
gboolean hv_wql_safe(const char *s);
char *hv_strip_microsoft(const char *iid);

/* ---- one VM (hyperv-vm.c) ------------------------------------------------ */

/* Everything the plugin knows about one VM on one host. */
typedef struct {
    HvHost *host;
    HvInstance *cs;
    HvInstance *vssd;
    GPtrArray *sasds;  /* VHD SASDs */
    GPtrArray *ports;  /* Msvm_SyntheticEthernetPortSettingData */
    GPtrArray *epasds; /* Msvm_EthernetPortAllocationSettingData */
    GPtrArray *switches;
    GPtrArray *sizes;   /* guint64 * per SASD: file size */
    GPtrArray *vsizes;  /* guint64 * per SASD: virtual size (MaxInternalSize) */
    GPtrArray *snaps;   /* Msvm_VirtualSystemSettingData of checkpoints */
    guint64 memory;     /* bytes (Msvm_MemorySettingData) */
    guint32 vcpus;      /* Msvm_ProcessorSettingData.VirtualQuantity */
    GPtrArray *volumes; /* Win32_Volume of the host, or NULL when unknown */
} HvVm;

void hv_vm_free(HvVm *v);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(HvVm, hv_vm_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(HvEpr, hv_epr_free)

GPtrArray *hv_host_volumes(HvHost *h, GError **error);
HvInstance *hv_volume_of(GPtrArray *vols, const char *path);
gboolean hv_volume_is_shared(const HvInstance *v);
gint64 hv_opstatus2(const HvInstance *cs);
HvVm *hv_load_vm(HvHost *h, HvInstance *cs, gboolean sizes, GError **error);
const char *hv_disk_id(const HvInstance *sasd);
/* The port allocation settings (Msvm_EthernetPortAllocationSettingData) whose
 * Parent is the adapter with InstanceID @port_iid, or NULL. */
const HvInstance *hv_port_epasd(const HvVm *v, const char *port_iid);
VmshiftVm *hv_to_vm(const HvVm *v);
GPtrArray *hv_host_vm_cs(HvHost *h, const char *where, GError **error);
HvVm *hv_find_vm(VmshiftBackend *b, const char *vm, gboolean sizes, GError **error);

/* ---- checkpoints (hyperv-checkpoint.c) ----------------------------------- */

VmshiftCheckpointState *hv_checkpoint_of(HvVm *v, GError **error);

/* ---- planning (hyperv-check.c) ------------------------------------------- */

GPtrArray *hv_disk_targets(const HvVm *v, const VmshiftMigrationSpec *spec);
const char *hv_spec_type_name(guint32 t);
/* FALSE with VMSHIFT_ERROR_INVALID_ARGUMENT naming the first key of
 * spec->options: this backend has no migration options. */
gboolean hv_refuse_options(const VmshiftMigrationSpec *spec, GError **error);

/* ---- Hyper-V jobs (hyperv-job.c) ----------------------------------------- */

typedef enum { HV_POLL_DONE, HV_POLL_FAILED, HV_POLL_CANCELLED } HvPollResult;

void hv_report_location(VmshiftBackend *b, HvVm *v, VmshiftJob *job, const char *job_id);
/* Starts @v on @h and waits for it (hyperv-migrate.c; --start, and repair). */
gboolean hv_vm_start(HvHost *h, HvVm *v, VmshiftJob *job, const char *what, const char *name,
                     GError **error);
/* Asks Hyper-V to kill the job @iid (at @uri); the reply's ReturnValue, or
 * NULL with @error. */
HvInstance *hv_job_request_kill(HvHost *h, const char *uri, const char *iid, GError **error);
HvPollResult hv_poll_job(HvHost *h, const HvEpr *epr, VmshiftJob *job, guint64 bytes, char **errmsg,
                         gint64 *errcode, GError **error);

/* ---- ACLs (hyperv-acl.c) ------------------------------------------------- */

/* The SID of NT VIRTUAL MACHINE\<guid>, or NULL when @guid is not a GUID. */
char *hv_vm_sid(const char *guid);
/* Appends the binary form of SID string @sid; FALSE when it is not one. */
gboolean hv_sid_bytes(const char *sid, GByteArray *out);

/* ---- moves between backends (hyperv-v2v.c, hyperv-import.c, hyperv-smb.c) */

VmshiftVm *hyperv_export_vm(VmshiftBackend *b, const char *vm, guint32 flags, GError **error);
GInputStream *hyperv_open_disk(VmshiftBackend *b, const char *vm, const char *disk_id,
                               GCancellable *c, guint32 flags, GError **error);
GPtrArray *hyperv_check_import(VmshiftBackend *b, const VmshiftMigrationSpec *spec, guint32 flags,
                               GError **error);
gboolean hyperv_import_vm(VmshiftBackend *b, const VmshiftMigrationSpec *spec, VmshiftJob *job,
                          guint32 flags, GError **error);
gboolean hyperv_remove_vm(VmshiftBackend *b, const char *vm, VmshiftJob *job, guint32 flags,
                          GError **error);
gboolean hyperv_start_vm(VmshiftBackend *b, const char *vm, VmshiftJob *job, guint32 flags,
                         GError **error);

#define HV_VSMS HV_V2 "Msvm_VirtualSystemManagementService"
#define HV_SUBTYPE_GEN1 "Microsoft:Hyper-V:SubType:1"
#define HV_SUBTYPE_GEN2 "Microsoft:Hyper-V:SubType:2"
#define HV_RT_IDE_CONTROLLER 5    /* ResourceType of an IDE controller */
#define HV_RT_SCSI_CONTROLLER 6   /* ResourceType of a SCSI controller */
#define HV_RT_DISK_DRIVE 17       /* ResourceType of a disk drive */
#define HV_RT_ETHERNET_PORT 10    /* Msvm_SyntheticEthernetPortSettingData */
#define HV_RT_ETHERNET_CONN 33    /* Msvm_EthernetPortAllocationSettingData */
#define HV_IDE_DISKS 4            /* generation 1: 2 IDE controllers x 2 */
#define HV_MEMORY_ALIGN (2 << 20) /* Hyper-V memory is a multiple of 2 MiB */
#define HV_STAGE_SLACK (64 << 20) /* VHDX metadata beyond the data, staged */
#define HV_JOB_WAIT_S 600         /* longest wait for a VSMS job */

/* An import's destination: host, source description and folder. */
typedef struct {
    VmshiftBackend *b;
    const VmshiftMigrationSpec *spec;
    const VmshiftVm *src;
    HvHost *h;
    char *root;  /* dest_path or the host's DefaultExternalDataRoot */
    char *vmdir; /* root\NAME */
    guint gen;
} HvDest;

void hv_dest_clear(HvDest *d);
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(HvDest, hv_dest_clear)
gboolean hv_dest_open(VmshiftBackend *b, const VmshiftMigrationSpec *spec, HvDest *d,
                      GError **error);
/* FALSE with VMSHIFT_ERROR_NOT_FOUND when the destination folder is not
 * on the host (checked through SMB). */
typedef struct _HvSmb HvSmb;
gboolean hv_dest_root_exists(HvSmb *smb, const HvDest *d, GError **error);
/* The disk file of disk @i under the VM's folder. */
char *hv_disk_file(const HvDest *d, guint i);
/* The bus disk @i gets on a VM of generation @gen. */
const char *hv_bus_for(guint gen, guint i);
/* "00155D0A0B0C" from "00:15:5d:0a:0b:0c"; NULL when not a unicast MAC. */
char *hv_wmi_mac(const char *mac);
const HvInstance *hv_switch_named(GPtrArray *sws, const char *name);
/* A job line, or a g_warning/g_debug without a job. */
void hv_jlog(VmshiftJob *job, VmshiftLogLevel level, const char *fmt, ...) G_GNUC_PRINTF(3, 4);
/* Invokes a method of Msvm_VirtualSystemManagementService and waits for
 * its job; the _OUTPUT instance, or NULL with @error. */
HvInstance *hv_vsms_call(HvHost *h, const char *method, const char *params, const char *what,
                         GError **error);
/* <p:NAME>escaped CIM-XML</p:NAME> */
char *hv_cdata(const char *name, const char *instance);
/* \\HOST\root\virtualization\v2:CLASS.InstanceID="…" */
char *hv_settings_path(HvHost *h, const char *cls, const char *iid);
/* The VM's settings of class @cls (ASSOCIATORS of its VSSD). */
GPtrArray *hv_vm_settings(HvHost *h, const char *vssd_iid, const char *cls, GError **error);
/* VMSHIFT_ERROR_CONFLICT unless the VM is off. */
gboolean hv_require_off(const HvVm *v, const char *what, GError **error);
/* A private directory in the backend's staging-dir. */
char *hv_stage_dir(VmshiftBackend *b, GError **error);

/* SMB (hyperv-smb.c) */
HvSmb *hv_smb_new(VmshiftBackend *b, HvHost *h, GError **error);
void hv_smb_free(HvSmb *s);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(HvSmb, hv_smb_free)
/* FALSE with VMSHIFT_ERROR_CONFIG when an smb-shares entry is malformed. */
gboolean hv_smb_check_shares(GPtrArray *shares, GError **error);
char *hv_smb_url(const HvSmb *s, const char *winpath, GError **error);
gboolean hv_smb_stat(HvSmb *s, const char *winpath, gboolean *exists, guint64 *size,
                     GError **error);
gboolean hv_smb_download(HvSmb *s, const char *winpath, const char *local, GCancellable *c,
                         GError **error);
gboolean hv_smb_upload(HvSmb *s, const char *local, const char *winpath, GCancellable *c,
                       GError **error);
gboolean hv_smb_unlink(HvSmb *s, const char *winpath, GError **error);
gboolean hv_smb_mkdir(HvSmb *s, const char *windir, gboolean *created, GError **error);
gboolean hv_smb_rmdir(HvSmb *s, const char *windir, GError **error);
/* FALSE with VMSHIFT_ERROR_NO_SPACE when @dir has less than @need bytes free. */
gboolean hv_staging_room(const char *dir, guint64 need, const char *what, GError **error);

G_END_DECLS

#endif /* HYPERV_HYPERV_H */
