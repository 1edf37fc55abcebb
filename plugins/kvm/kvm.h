/* vmshift KVM plugin: internal declarations (not installed). */
#ifndef VMSHIFT_KVM_H
#define VMSHIFT_KVM_H

#include <vmshift/vmshift.h>
#include <vmshift/qmp.h>

#include "kvm-tuning.h"

G_BEGIN_DECLS

/* ---- hosts (kvm-host.c) ------------------------------------------------ */

/*
 * A host of the qmp transport: where commands run (locally or through
 * ssh://user@host[:port]) and its run directory. The run directory holds
 *   host.conf        [host] migration-address, images, qemu, accel,
 *                    migration-ports, qemu-user, max-bandwidth-mib-s,
 *                    allow-postcopy (all optional)
 *   networks.conf    [network NAME] netdev=QEMU -netdev options (optional;
 *                    "default" = user networking when absent)
 *   vms/NAME/vm.conf the VM's definition; qmp.sock, qemu.pid, console.log
 */
typedef struct {
    char *name;
    char *run_dir;
    char *ssh;               /* NULL: local; else "user@host" */
    char *ssh_port;          /* or NULL */
    char *ssh_config;        /* ssh -F FILE (the backend's ssh-config), or NULL */
    char *ssh_control_dir;   /* private directory for ssh connection sharing
                              * (the backend's), or NULL: one connection per
                              * command */
    char *unreachable;       /* why host.conf could not be read (ssh failed
                              * at the first contact), or NULL: loaded */
    gboolean deferred;       /* an ssh host not contacted yet: open leaves
                              * it alone, the first operation loads it */
    char *migration_address; /* from host.conf, default 127.0.0.1 / ssh host */
    char *images_dir;        /* default RUN_DIR/images */
    char *qemu;              /* default qemu-system-x86_64 */
    char *accel;             /* tcg, kvm, or auto (boot probe result) */
    char *qemu_user;         /* the user QEMU runs as (ACLs); NULL: root */
    int port_min, port_max;  /* migration / NBD ports */
    guint64 max_bw_mib;      /* outgoing migration limit, MiB/s; 0: none */
    gboolean allow_postcopy; /* FALSE: the admin forbids post-copy from here */
    GKeyFile *networks;      /* networks.conf, never NULL */
} KvmHost;

void kvm_host_free(KvmHost *host);
KvmHost *kvm_host_parse(const char *name, const char *spec, GError **error);
gboolean kvm_host_load(KvmHost *host, GError **error);
char *kvm_host_vm_dir(KvmHost *host, const char *vm);
gboolean kvm_host_is_local(KvmHost *host);
/* TRUE when the host answers and its run directory is there; else
 * VMSHIFT_ERROR_CONNECTION (ssh failed) or VMSHIFT_ERROR_NOT_FOUND. */
gboolean kvm_host_check(KvmHost *host, GError **error);
/* Ends the shared ssh connection to the host, if there is one. */
void kvm_host_ssh_close(KvmHost *host);
/* Checks an ssh client configuration file for kvm's ssh-config=: a regular
 * file, not writable by others, every IdentityFile it names private. */
gboolean kvm_ssh_config_check(const char *path, GError **error);

/* Runs argv on the host; stdout returned (nullable out), stderr folded into
 * the error. Timeout in seconds. */
gboolean kvm_host_run(KvmHost *host, const char *const *argv, const char *input, char **out,
                      int timeout_s, GError **error);
/* The local argv that runs @argv on the host (through ssh for an ssh host)
 * under a timeout, for a caller that spawns it itself. */
char **kvm_host_command_argv(KvmHost *host, const char *const *argv, int timeout_s);
gboolean kvm_host_read_file(KvmHost *host, const char *path, char **contents, GError **error);
gboolean kvm_host_write_file(KvmHost *host, const char *path, const char *contents, GError **error);
gboolean kvm_host_mkdir(KvmHost *host, const char *path, GError **error);
gboolean kvm_host_remove_tree(KvmHost *host, const char *path, GError **error);
gboolean kvm_host_exists(KvmHost *host, const char *path);
gboolean kvm_host_df(KvmHost *host, const char *path, guint64 *total, guint64 *avail,
                     GError **error);
/* The host's filesystems as volumes of kind "mount" (mount point, size,
 * free space; free_unknown when statvfs fails), so that free space is known
 * for any directory; pseudo filesystems left out. */
GPtrArray *kvm_host_filesystems(KvmHost *host, GError **error);
/* The same for this machine, the volumes named after host @host. */
GPtrArray *kvm_local_filesystems(const char *host, GError **error);
gboolean kvm_host_meminfo(KvmHost *host, guint64 *total, guint64 *avail, GError **error);
char **kvm_host_list_vms(KvmHost *host, GError **error);
VmshiftQmp *kvm_host_qmp_connect(KvmHost *host, const char *sock, guint timeout_ms,
                                 GCancellable *cancellable, GError **error);
gboolean kvm_host_pid_alive(KvmHost *host, gint64 pid);
gboolean kvm_host_kill(KvmHost *host, gint64 pid, int sig);
int kvm_host_pick_port(KvmHost *host);
char *kvm_host_netdev(KvmHost *host, const char *network);

/* ---- VM definitions and processes (kvm-vm.c) ------------------------- */

typedef struct {
    char *id; /* vda, vdb … */
    char *path;
    char *format;     /* qcow2, raw */
    char *bus;        /* virtio (NULL), ide, sata, scsi (virtio-scsi), nvme */
    guint boot_order; /* bootindex; 0: none */
    /* access model recorded by recreate_acl (acl-* keys); acl_text NULL:
     * none recorded yet */
    gint64 acl_uid, acl_gid;
    guint acl_mode;
    char *acl_text;
    char *acl_label; /* SELinux label, or NULL */
} KvmDiskDef;

typedef struct {
    char *id; /* net0 … */
    char *mac;
    char *network;
    char *model;
} KvmNicDef;

typedef struct {
    char *name;
    char *uuid;
    guint64 memory_mib;
    guint32 vcpus;
    char *machine;
    char *cpu;
    char *accel; /* NULL: the host's */
    char *kernel, *initrd, *append;
    char *firmware;      /* "uefi" (OVMF) or NULL: BIOS */
    char *firmware_code; /* uefi: the OVMF code image (default OVMF_CODE_4M.fd) */
    char *nvram;         /* uefi: the VM's variable store (default VMDIR/OVMF_VARS.fd) */
    char *guest_os;      /* linux, windows, other, or NULL: unknown */
    GPtrArray *disks;    /* KvmDiskDef */
    GPtrArray *nics;     /* KvmNicDef */
} KvmVmDef;

void kvm_vm_def_free(KvmVmDef *def);
KvmVmDef *kvm_vm_def_parse(const char *text, const char *where, GError **error);
char *kvm_vm_def_to_string(const KvmVmDef *def);
KvmVmDef *kvm_vm_def_copy(const KvmVmDef *def);
KvmVmDef *kvm_vm_def_load(KvmHost *host, const char *vm, GError **error);
gboolean kvm_vm_def_save(KvmHost *host, const KvmVmDef *def, GError **error);

typedef enum {
    KVM_START_NORMAL = 0,
    KVM_START_INCOMING = 1 << 0, /* -incoming defer */
    KVM_START_PAUSED = 1 << 1,   /* -S */
} KvmStartFlags;

/* the buses a disk can have in vm.conf (bus=) */
gboolean kvm_vm_bus_supported(const char *bus);
/* OVMF as Debian's ovmf package installs it (firmware=uefi) */
#define KVM_OVMF_DIR "/usr/share/OVMF"
#define KVM_OVMF_CODE KVM_OVMF_DIR "/OVMF_CODE_4M.fd"
#define KVM_OVMF_VARS KVM_OVMF_DIR "/OVMF_VARS_4M.fd"
char **kvm_vm_build_argv(KvmHost *host, const KvmVmDef *def, KvmStartFlags flags, GError **error);
gboolean kvm_vm_start(KvmHost *host, const KvmVmDef *def, KvmStartFlags flags, gint64 *pid,
                      GError **error);
gint64 kvm_vm_pid(KvmHost *host, const char *vm);
gboolean kvm_vm_is_running(KvmHost *host, const char *vm);
VmshiftQmp *kvm_vm_qmp(KvmHost *host, const char *vm, guint timeout_ms, GCancellable *cancellable,
                       GError **error);
gboolean kvm_vm_stop(KvmHost *host, const char *vm, int timeout_s, GError **error);
VmshiftVm *kvm_vm_describe(KvmHost *host, const KvmVmDef *def);

/* ---- the backend -------------------------------------------------------- */

typedef struct _KvmBackend KvmBackend;

/*
 * One transport of the KVM plugin (qmp: bare QEMU hosts; libvirt) behind
 * one interface, as SQLite puts each OS behind sqlite3_vfs: kvm-plugin.c
 * picks b->ops once in open (transport= key) and dispatches every SDK
 * operation through it, never asking which transport it has. Each
 * operation has the SDK operation's meaning (sdk/include/vmshift/plugin.h);
 * the flags are checked by kvm-plugin.c before the call.
 */
typedef struct KvmTransport {
    const char *name; /* "qmp" | "libvirt" */
    /* reads the transport's own config keys and connects; @b's common
     * fields (name, timeouts, link speed) are set */
    gboolean (*open)(KvmBackend *b, const VmshiftConfig *config, GError **error);
    /* the first contact with the hosts, which open leaves alone (issue 15:
     * opening a backend never waits on the network): kvm-plugin.c calls it
     * once, guarded, before the first operation; its failure fails that
     * operation and the later ones. NULL: nothing to do. */
    gboolean (*connect)(KvmBackend *b, GError **error);
    /* frees what open made (called also after a failed open) */
    void (*close)(KvmBackend *b);
    GPtrArray *(*list_hosts)(KvmBackend *b, GError **error);
    GPtrArray *(*list_vms)(KvmBackend *b, const char *host, GError **error);
    VmshiftVm *(*get_vm)(KvmBackend *b, const char *vm, GError **error);
    GPtrArray *(*list_networks)(KvmBackend *b, const char *host, GError **error);
    GPtrArray *(*list_volumes)(KvmBackend *b, const char *host, GError **error);
    VmshiftCheckpointState *(*checkpoint_state)(KvmBackend *b, const char *vm, GError **error);
    GPtrArray *(*check_migration)(KvmBackend *b, const VmshiftMigrationSpec *spec, GError **error);
    gboolean (*migrate)(KvmBackend *b, const VmshiftMigrationSpec *spec, VmshiftJob *job,
                        GError **error);
    gboolean (*recreate_acl)(KvmBackend *b, const char *vm, VmshiftJob *job, GError **error);
    gboolean (*repair)(KvmBackend *b, VmshiftJob *job, GError **error);
    /* NULL: the transport does not support it */
    gboolean (*cleanup)(KvmBackend *b, VmshiftJob *job, GError **error);
    /* moves between backends (SDK 1.4, see plugin.h); NULL: the transport
     * does not support it */
    VmshiftVm *(*export_vm)(KvmBackend *b, const char *vm, GError **error);
    GInputStream *(*open_disk)(KvmBackend *b, const char *vm, const char *disk_id,
                               GCancellable *cancellable, GError **error);
    GPtrArray *(*check_import)(KvmBackend *b, const VmshiftMigrationSpec *spec, GError **error);
    gboolean (*import_vm)(KvmBackend *b, const VmshiftMigrationSpec *spec, VmshiftJob *job,
                          GError **error);
    gboolean (*remove_vm)(KvmBackend *b, const char *vm, VmshiftJob *job, GError **error);
    gboolean (*start_vm)(KvmBackend *b, const char *vm, VmshiftJob *job, GError **error);
} KvmTransport;

extern const KvmTransport kvm_transport_qmp;
#ifdef HAVE_LIBVIRT
extern const KvmTransport kvm_transport_libvirt;
#endif

struct _KvmBackend {
    const KvmTransport *ops; /* the transport (see KvmTransport) */
    char *name;              /* the backend's name, for messages */
    char *transport;         /* "qmp" or "libvirt" */
    GPtrArray *hosts;        /* KvmHost */
    guint qmp_timeout_ms;
    guint64 link_mib_s;    /* assumed migration link speed (tuning) */
    char *ssh_config;      /* ssh-config= (qmp transport), or NULL */
    char *ssh_control_dir; /* private directory of the shared ssh connections */
#ifdef HAVE_LIBVIRT
    struct KvmLibvirt *lv; /* the libvirt transport's state */
#endif
    /* ops->connect, once (kvm-plugin.c) */
    GMutex connect_lock;
    gboolean connected;
    GError *connect_error;
};

/* qmp transport (kvm-qmp-inventory.c): the host called @name; the host
 * whose run directory holds @vm (name or uuid). */
KvmHost *kvm_backend_find_host(KvmBackend *b, const char *name, GError **error);
KvmHost *kvm_backend_locate_vm(KvmBackend *b, const char *vm, KvmVmDef **def, GError **error);

/* kvm-tuning-job.c, for both transports: the warning logged when
 * tcg-safe=false overrides the TCG rule (KvmTuning.warn_tcg_live), and the
 * job's tuning, tuning-reason and dirty-rate-mib-s results and log line,
 * with @tuning the transport's summary of @t. */
void kvm_tuning_warn_tcg_live(VmshiftJob *job, int qemu_major);
void kvm_tuning_report(VmshiftJob *job, const KvmTuning *t, const char *tuning);

/* kvm-qmp-acl.c: the access model of one file (kvm_acl_capture records
 * @path's owner, mode, ACL, label into @dk; kvm_acl_apply_def makes @path
 * match @dk plus rw (r without @write) for @user), shared by both
 * transports. kvm_acl_apply applies the access a QEMU running as @user
 * needs on @path, modelled on @model (nullable): owner, group, mode, ACL
 * entries. Each reports its changes into @changes. */
gboolean kvm_acl_capture(const char *path, KvmDiskDef *dk, GError **error);
gboolean kvm_acl_apply_def(const char *path, KvmDiskDef *dk, const char *user, gboolean write,
                           GPtrArray *changes, GError **error);
gboolean kvm_acl_apply(const char *path, const char *model, const char *user, GPtrArray *changes,
                       GError **error);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(KvmHost, kvm_host_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(KvmVmDef, kvm_vm_def_free)

G_END_DECLS

#endif
