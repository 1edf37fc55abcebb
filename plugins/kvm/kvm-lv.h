/* vmshift KVM plugin: the libvirt transport's private declarations
 * (kvm-lv-*.c, built only with libvirt: HAVE_LIBVIRT).
 *
 *   kvm-lv-conn.c       the connections, errors, finding hosts and domains,
 *                       kvm_transport_libvirt
 *   kvm-lv-inventory.c  hosts, VMs, networks, volumes (pools), checkpoint state
 *   kvm-lv-check.c      check_migration
 *   kvm-lv-xml.c        domain XML: reading, networks, disks that move
 *   kvm-lv-pool.c       storage pools and volumes of other hosts, streams
 *   kvm-lv-storage.c    storage migration on the same host (block copy)
 *   kvm-lv-cold.c       cold migration to another host
 *   kvm-lv-live.c       live migration (and VM + storage), the tuning
 *   kvm-lv-acl.c        recreate_acl
 *   kvm-lv-repair.c     repair of interrupted jobs
 *   kvm-lv-verify.c     the result of a move, read back
 *   kvm-lv-v2v.c        moves between backends: export_vm, open_disk
 *   kvm-lv-v2v-import.c moves between backends: check_import, import_vm,
 *                       remove_vm, start_vm
 */
#ifndef VMSHIFT_KVM_LV_H
#define VMSHIFT_KVM_LV_H

#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>
#include <vmshift/xml.h>

#include "kvm.h"

G_BEGIN_DECLS

/* libvirt has no g_autoptr for its types */
G_DEFINE_AUTOPTR_CLEANUP_FUNC(virConnect, virConnectClose)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(virDomain, virDomainFree)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(virNetwork, virNetworkFree)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(virStoragePool, virStoragePoolFree)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(virStorageVol, virStorageVolFree)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(virStream, virStreamFree)

/* a typed parameter list of libvirt's (virTypedParamsAdd*), for g_auto */
typedef struct {
    virTypedParameterPtr p;
    int n, max;
} LvParams;

static inline void
lv_params_clear(LvParams *lp)
{
    virTypedParamsFree(lp->p, lp->n);
    lp->p = NULL;
    lp->n = lp->max = 0;
}
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(LvParams, lv_params_clear)

typedef struct {
    char *name;
    char *uri;
    char *migration_uri;
    virConnectPtr conn;
} LvHost;

typedef struct KvmLibvirt {
    GPtrArray *hosts; /* LvHost */
    /* kvm-lv-conn.c: open names the hosts, the first operation connects */
    char **migration_uris;
    guint connect_timeout_s;
    /* libvirt's keepalive on every connection: a ping each interval, the
     * connection closed after count unanswered (0: off) */
    guint keepalive_interval_s, keepalive_count;
} KvmLibvirt;

/* the operations (kvm_transport_libvirt), under their old names */
struct KvmLibvirt *kvm_libvirt_open(KvmBackend *b, const VmshiftConfig *config, GError **error);
void kvm_libvirt_free(struct KvmLibvirt *lv);
GPtrArray *kvm_libvirt_list_hosts(KvmBackend *b, GError **error);
GPtrArray *kvm_libvirt_list_networks(KvmBackend *b, const char *host, GError **error);
GPtrArray *kvm_libvirt_list_vms(KvmBackend *b, const char *host, GError **error);
GPtrArray *kvm_libvirt_list_volumes(KvmBackend *b, const char *host, GError **error);
VmshiftVm *kvm_libvirt_get_vm(KvmBackend *b, const char *vm, GError **error);
VmshiftCheckpointState *kvm_libvirt_checkpoint_state(KvmBackend *b, const char *vm, GError **error);
GPtrArray *kvm_libvirt_check_migration(KvmBackend *b, const VmshiftMigrationSpec *spec,
                                       GError **error);
gboolean kvm_libvirt_migrate(KvmBackend *b, const VmshiftMigrationSpec *spec, VmshiftJob *job,
                             GError **error);
gboolean kvm_libvirt_recreate_acl(KvmBackend *b, const char *vm, VmshiftJob *job, GError **error);
gboolean kvm_libvirt_repair(KvmBackend *b, VmshiftJob *job, GError **error);

/* ---- kvm-lv-conn.c ------------------------------------------------------ */

/* "what: libvirt's last error" as one line; VMSHIFT_ERROR_FAILED is refined
 * from libvirt's error code */
void lv_error(GError **error, int code, const char *fmt, ...) G_GNUC_PRINTF(3, 4);
/* a new connection to @h (keepalive on) for one long call; the caller
 * closes it */
virConnectPtr lv_conn_open_extra(KvmBackend *b, LvHost *h, GError **error);
LvHost *lv_find_host(KvmBackend *b, const char *name, GError **error);
/* Finds a domain (name or UUID, "host:name" picks the host). */
virDomainPtr lv_locate(KvmBackend *b, const char *vm, LvHost **host, GError **error);

/* journals stage=rolled-back after a rollback (a failure already being
 * reported: a journal that cannot record it is logged) */
void lv_save_rolled_back(VmshiftJob *job);

/* the flags that undefine a domain and its metadata, not its NVRAM */
#define LV_UNDEFINE_FLAGS                                                              \
    (VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA | VIR_DOMAIN_UNDEFINE_CHECKPOINTS_METADATA \
     | VIR_DOMAIN_UNDEFINE_KEEP_NVRAM)

/* ---- kvm-lv-inventory.c ------------------------------------------------- */

VmshiftVm *lv_describe(LvHost *h, virDomainPtr d);
/* the domain XML's NICs into @vm (ids: alias, else netN), as lv_describe */
void lv_describe_nics(xmlXPathContext *ctx, VmshiftVm *vm);

/* ---- kvm-lv-xml.c -------------------------------------------------------- */

xmlDoc *lv_xml(virDomainPtr d, unsigned int flags, GError **error);
char *lv_xml_dump(xmlDoc *doc);
/* Rewires the <interface> elements of @doc for --network NIC=NET. */
gboolean lv_map_networks(xmlDoc *doc, const VmshiftMigrationSpec *spec, GError **error);
/* the directory disk @dev moves to (--disk-path, else --path), or NULL */
const char *lv_disk_dir(const VmshiftMigrationSpec *spec, const char *dev);
/* the disk @dev's source file in @d's live (or, with @inactive, persistent) XML */
char *lv_disk_source(virDomainPtr d, const char *dev, gboolean inactive);
/* the <disk> of @dev in @ctx's document, or NULL */
xmlNode *lv_xml_disk(xmlXPathContext *ctx, const char *dev);
/* @disk's source becomes @path, a whole image (no backing chain); FALSE
 * when @disk has no source or it already names @path */
gboolean lv_xml_set_source(xmlNode *disk, const char *path);

/* a disk that moves to another file (and maybe another host) */
typedef struct {
    char *dev, *src_path, *dst_path, *format;
    guint64 capacity, physical;
    gboolean created;          /* the destination file is ours: a rollback removes it */
    gboolean started, pivoted; /* block copy on the same host (kvm-lv-storage.c) */
} LvMove;

void lv_move_free(LvMove *m);
/* The file disks of @doc that move: to DIR/basename for --disk-path/--path,
 * or (@same_path: a cold move to another host) to the same path there. */
/* the file disks of @doc that move, added to @moves (no check) */
void lv_collect_moves(xmlDoc *doc, const VmshiftMigrationSpec *spec, gboolean same_path,
                      GPtrArray *moves);
gboolean lv_moves_have(GPtrArray *moves, const char *dev);
/* FALSE with the error "VM has no file disk" for --disk-path @mp */
gboolean lv_no_file_disk(const VmshiftMigrationSpec *spec, const VmshiftMapping *mp,
                         GError **error);
gboolean lv_plan_moves(xmlDoc *doc, const VmshiftMigrationSpec *spec, gboolean same_path,
                       GPtrArray *moves, GError **error);
/* the disks of @doc name their new files; a moved image is a whole one */
void lv_rewrite_disks(xmlDoc *doc, GPtrArray *moves);
/* the source (or, with @dst, destination) paths of @moves joined by ';' */
char *lv_paths(GPtrArray *moves, gboolean dst);
/* journals @moves (new-vols, old-vols) */
gboolean lv_save_moves(VmshiftJob *job, GPtrArray *moves, GError **error);

/* ---- kvm-lv-pool.c ------------------------------------------------------- */

/* a storage pool of a directory a disk moves from or to (see kvm-lv-pool.c) */
typedef struct {
    LvHost *host;
    char *dir;
    virStoragePoolPtr pool;
    gboolean created; /* made for the job: destroyed at the end */
    gboolean built;   /* defined and built for the job: also undefined */
} LvPool;

void lv_pool_free(LvPool *p);
/* on a rollback: the directories made on @h for the job go again */
void lv_pools_unbuild(GPtrArray *pools, LvHost *h);
/* the pool of directory @dir on @h (borrowed from @pools, which frees it) */
virStoragePoolPtr lv_pool(GPtrArray *pools, LvHost *h, const char *dir, gboolean build,
                          GError **error);
/* the volume of file @path on @h, or NULL (with @error set only when the
 * pool could not be had) */
virStorageVolPtr lv_vol(GPtrArray *pools, LvHost *h, const char *path, gboolean build,
                        GError **error);
/* TRUE when @h has no file @path (its directory's pool made, with @build,
 * for the job); else a conflict error naming it, with @hint appended */
gboolean lv_vol_absent(GPtrArray *pools, LvHost *h, const char *path, const char *hint,
                       GError **error);
/* removes file @path on @h through its pool; an absent file is fine */
gboolean lv_vol_delete(GPtrArray *pools, LvHost *h, const char *path, GError **error);
/* removes the files of @moves on @h (source or, with @dst, destination
 * paths; with @only_created only those made for the job), logging each */
void lv_delete_moves(VmshiftJob *job, GPtrArray *pools, LvHost *h, GPtrArray *moves, gboolean dst,
                     gboolean only_created);
/* "dev=host:path,…" of @moves, for the disks result */
char *lv_moved_disks(GPtrArray *moves, LvHost *dst);
/* removes the files of the saved list @key (paths joined by ';') on @h */
void lv_delete_saved(VmshiftJob *job, GPtrArray *pools, LvHost *h, const char *key);
/* the pools an interrupted job made on @h for the directories of the saved
 * list @key (its files stay) */
void lv_drop_job_pools(VmshiftJob *job, LvHost *h, const char *key);
/* Streams volume @from of @fh into volume @to of @th (sparse). */
gboolean lv_vol_stream(virStorageVolPtr from, LvHost *fh, virStorageVolPtr to, LvHost *th,
                       const char *what, VmshiftJob *job, guint64 *done, guint64 total,
                       GError **error);
/* the <permissions> of a volume's XML, to give its copy the same */
char *lv_vol_permissions(virStorageVolPtr v);
/* the backing file a volume's image names, or NULL */
char *lv_vol_backing(virStorageVolPtr v);
/* makes volume @name (bytes @capacity, format @fmt, @extra target XML) in @pool */
virStorageVolPtr lv_vol_create(virStoragePoolPtr pool, const char *path, guint64 capacity,
                               const char *fmt, const char *extra);

/* ---- the migrations ------------------------------------------------------ */

/* kvm-lv-storage.c */
gboolean lv_storage_migrate(const VmshiftMigrationSpec *spec, VmshiftJob *job, virDomainPtr d,
                            LvHost *h, GError **error);
/* the disks of a storage move as its journal saved them (new-files,
 * old-files): LvMove with dev, dst_path and (when saved) src_path */
GPtrArray *lv_saved_copies(VmshiftJob *job);
/* a repair's end of a storage move found pivoted (@copies: from
 * lv_saved_copies): saved definition, old files */
gboolean lv_storage_finish(VmshiftJob *job, virDomainPtr d, GPtrArray *copies, GError **error);
/* kvm-lv-cold.c */
gboolean lv_cold_migrate(KvmBackend *b, const VmshiftMigrationSpec *spec, VmshiftJob *job,
                         virDomainPtr d, LvHost *src, GError **error);
/* kvm-lv-live.c */
gboolean lv_live_migrate(KvmBackend *b, const VmshiftMigrationSpec *spec, VmshiftJob *job,
                         virDomainPtr d, LvHost *src, GError **error);

/* kvm-lv-verify.c: after a move, libvirt's view of VM @name: on @want (and
 * no other host), running or not as @want_running, each disk under its
 * --disk-path/--path directory (the running and the saved definition
 * alike), each --network NIC on its network or bridge. FALSE naming the
 * first difference; else the "verified" result. @b NULL: the other hosts
 * are not asked (a storage move on one host). */
gboolean lv_verify_move(KvmBackend *b, const VmshiftMigrationSpec *spec, VmshiftJob *job,
                        const char *name, LvHost *want, gboolean want_running, GError **error);

/* ---- kvm-lv-v2v.c, kvm-lv-v2v-import.c: moves between backends ----------- */

VmshiftVm *lv_export_vm(KvmBackend *b, const char *vm, GError **error);
GInputStream *lv_open_disk(KvmBackend *b, const char *vm, const char *disk_id,
                           GCancellable *cancellable, GError **error);
GPtrArray *lv_check_import(KvmBackend *b, const VmshiftMigrationSpec *spec, GError **error);
gboolean lv_import_vm(KvmBackend *b, const VmshiftMigrationSpec *spec, VmshiftJob *job,
                      GError **error);
gboolean lv_remove_vm(KvmBackend *b, const char *vm, VmshiftJob *job, GError **error);
gboolean lv_start_vm(KvmBackend *b, const char *vm, VmshiftJob *job, GError **error);
/* whether @d is shut off; FALSE with a conflict error naming @what */
gboolean lv_is_off(virDomainPtr d);
gboolean lv_require_off(virDomainPtr d, const char *what, GError **error);
/* TRUE when volume @vol is the file this process sees at @path (same size,
 * mtime and ctime to the nanosecond): then it is read and written here */
gboolean lv_vol_is_local(virStorageVolPtr vol, const char *path);
/* the source path of <disk> @n (file, block device or pool volume), or NULL */
char *lv_disk_path(LvHost *h, xmlXPathContext *ctx, xmlNode *n);

G_END_DECLS

#endif
