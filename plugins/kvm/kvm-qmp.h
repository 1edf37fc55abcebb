/* vmshift KVM plugin: the qmp transport's private declarations (bare QEMU
 * hosts driven over QMP and ssh; the kvm-qmp-*.c files, one per role). Not
 * included by kvm.h. */
#ifndef VMSHIFT_KVM_QMP_H
#define VMSHIFT_KVM_QMP_H

#include "kvm.h"

G_BEGIN_DECLS

#define QMP_CMD_TIMEOUT 10000

/* ---- the transport's operations (kvm_transport_qmp) --------------------- */

/* kvm-qmp-inventory.c: "QEMU x.y.z" of the host's qemu, or NULL */
char *kvm_qmp_qemu_version(KvmHost *h);
/* kvm-qmp-check.c */
GPtrArray *kvm_qmp_check_migration(KvmBackend *b, const VmshiftMigrationSpec *spec, GError **error);
/* kvm-qmp-storage.c */
VmshiftCheckpointState *kvm_qmp_checkpoint_state(KvmBackend *b, const char *vm, GError **error);
/* kvm-qmp-acl.c */
gboolean kvm_qmp_recreate_acl(KvmBackend *b, const char *vm, VmshiftJob *job, GError **error);
/* Records the access model of every disk that has none yet (before a
 * migration, so that the model travels with the definition). */
void kvm_acl_capture_def(KvmHost *h, KvmVmDef *def);
/* kvm-qmp-mig.c */
gboolean kvm_qmp_migrate(KvmBackend *b, const VmshiftMigrationSpec *spec, VmshiftJob *job,
                         GError **error);
/* kvm-qmp-repair.c */
gboolean kvm_qmp_repair(KvmBackend *b, VmshiftJob *job, GError **error);
gboolean kvm_qmp_cleanup(KvmBackend *b, VmshiftJob *job, GError **error);

/* kvm-qmp-v2v.c: moves between backends (see KvmTransport) */
VmshiftVm *kvm_qmp_export_vm(KvmBackend *b, const char *vm, GError **error);
GInputStream *kvm_qmp_open_disk(KvmBackend *b, const char *vm, const char *disk_id,
                                GCancellable *cancellable, GError **error);
GPtrArray *kvm_qmp_check_import(KvmBackend *b, const VmshiftMigrationSpec *spec, GError **error);
gboolean kvm_qmp_import_vm(KvmBackend *b, const VmshiftMigrationSpec *spec, VmshiftJob *job,
                           GError **error);
gboolean kvm_qmp_remove_vm(KvmBackend *b, const char *vm, VmshiftJob *job, GError **error);
gboolean kvm_qmp_start_vm(KvmBackend *b, const char *vm, VmshiftJob *job, GError **error);

/* ---- one migration (kvm-qmp-mig.c) -------------------------------------- */

typedef struct {
    KvmBackend *b;
    VmshiftJob *job;
    const VmshiftMigrationSpec *spec;
    GCancellable *cancel;
    KvmHost *src, *dst;
    KvmVmDef *sdef, *ddef;
    VmshiftQmp *sq, *dq;
    gint64 dst_pid;
    gboolean dst_def_written;
    GPtrArray *new_files; /* created at the destination */
    GPtrArray *moves;     /* "ID|OLD|NEW" of each disk given a new file */
    KvmTuning t;
    gboolean src_paused;    /* this job paused the source (KvmTuning.paused) */
    gint64 t_paused;        /* when (monotonic µs) */
    gint64 t_resumed;       /* when the destination ran (0: not yet) */
    gboolean src_running;   /* storage moves: the VM ran when the move began */
    gboolean pivot_unknown; /* storage moves: a pivot failed and QEMU did not
                             * show every disk on its old file: nothing of
                             * the move may be removed */
} KvmMig;

/* the journal (vmshift_job_save) and the phases */
gboolean kvm_mig_save(KvmMig *m, const char *key, const char *value, GError **error);
gboolean kvm_mig_save_new_files(KvmMig *m, GError **error);
gboolean kvm_mig_phase(KvmMig *m, VmshiftPhase p, GError **error);
/* a journal write past the point of no return: logged when it fails */
void kvm_mig_save_late(KvmMig *m, const char *key, const char *value);
void kvm_mig_phase_late(KvmMig *m, VmshiftPhase p);
gboolean kvm_mig_check_cancel(KvmMig *m, GError **error);
/* After a move (kvm-qmp-verify.c): the VM read back from the hosts and
 * QEMU, compared with the spec; a difference fails the job. */
gboolean kvm_mig_verify(KvmMig *m, GError **error);
/* Removes everything made at the destination; the VM runs at the source. */
void kvm_mig_rollback_destination(KvmMig *m);
/* What a destination QEMU says of the VM an incoming migration brings:
 * TOOK_OVER once it has loaded the device state (its incoming migration is
 * in post-copy or completed) or runs; NOT_YET while it waits or receives
 * RAM before the switch, or after its migration failed there; UNKNOWN when
 * its QMP does not answer. A post-copy switch that failed on the source
 * (QEMU 7.2's postcopy_start: status failed, nothing sent) leaves the
 * destination NOT_YET and the source the one holder of the VM. */
typedef enum { KVM_DEST_NOT_YET, KVM_DEST_TOOK_OVER, KVM_DEST_UNKNOWN } KvmDestState;
/* the "status" of a QMP reply to @cmd (query-status, query-migrate), or NULL */
char *kvm_qmp_status(VmshiftQmp *q, const char *cmd);
KvmDestState kvm_dest_state(VmshiftQmp *dq, char **why);
/* FALSE (conflict) when the destination already has a VM of that name */
gboolean kvm_mig_check_no_dst_vm(KvmMig *m, GError **error);
char *kvm_mig_target_path(const char *dir, const char *old_path, const char *vm, const char *disk);
/* A new empty image on @h at @dk's path, of the size of source disk @sk,
 * journaled (new-files) before it is made. */
gboolean kvm_mig_new_image(KvmMig *m, KvmHost *h, const KvmDiskDef *sk, const KvmDiskDef *dk,
                           GError **error);
/* Applies --network NIC=NET; checks every NIC's network on the destination. */
gboolean kvm_mig_map_networks(KvmMig *m, GError **error);
gboolean kvm_mig_copy_image(KvmMig *m, KvmHost *h, const char *id, const char *from, const char *to,
                            const char *format, GError **error);
/* journals (key "moves") that disk @id gets the new file @to for @from,
 * before the file is made: a repair finishes or undoes each move */
gboolean kvm_mig_save_move(KvmMig *m, const char *id, const char *from, const char *to,
                           GError **error);
/* the image file QEMU has open for disk @id in a query-block reply */
char *kvm_qemu_disk_file(json_object *blocks, const char *id);

/* the three kinds */
gboolean kvm_mig_live(KvmMig *m, GError **error);    /* kvm-qmp-live.c */
gboolean kvm_mig_cold(KvmMig *m, GError **error);    /* kvm-qmp-cold.c */
gboolean kvm_mig_storage(KvmMig *m, GError **error); /* kvm-qmp-storage.c */

/* ---- block mirrors (kvm-qmp-mirror.c) ----------------------------------- */

typedef struct {
    char *disk;
    char *old_node;
    char *job;
    char *new_node;
    char *new_path;
    char *old_path;
    gboolean ready, done;
    gboolean completed; /* it ended with BLOCK_JOB_COMPLETED */
} KvmMirror;

void kvm_mirror_free(KvmMirror *x);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(KvmMirror, kvm_mirror_free)
/* The node currently attached to disk @id (it changes after a pivot). */
char *kvm_mig_disk_node(VmshiftQmp *q, const char *id, GError **error);
gboolean kvm_mirrors_wait_ready(KvmMig *m, VmshiftQmp *q, GPtrArray *mirrors, GError **error);
gboolean kvm_mirrors_abort_ex(KvmMig *m, VmshiftQmp *q, GPtrArray *mirrors, gboolean graceful);
void kvm_mirrors_abort(KvmMig *m, VmshiftQmp *q, GPtrArray *mirrors);
/* A mirror of disk @dk to @new_path in @mirrors, its old node looked up
 * (NULL when there is none; the mirror stays in @mirrors). */
KvmMirror *kvm_mirror_new(VmshiftQmp *q, const KvmDiskDef *dk, const char *new_path,
                          GPtrArray *mirrors, GError **error);
/* blockdev-mirror from x->old_node to x->new_node, as job vmshift-mirror-DISK */
gboolean kvm_mirror_run(VmshiftQmp *q, KvmMirror *x, GError **error);
gboolean kvm_mirror_start(KvmMig *m, VmshiftQmp *q, const KvmDiskDef *dk, json_object *target_file,
                          const char *target_path_, GPtrArray *mirrors, GError **error);
gboolean kvm_mirrors_pivot(KvmMig *m, VmshiftQmp *q, GPtrArray *mirrors, GError **error);

G_END_DECLS

#endif
