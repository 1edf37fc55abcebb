/*
 * vmshift host: moves between backends (`migrate VM --to BACKEND:HOST`,
 * issue 16), implemented in crossmove.c (the spec, the checks, the job's
 * phases and its repair) and crossvm.c (the VM description as JSON, the
 * journal's copy of it).
 *
 * A stopped VM moves in journaled phases: validate, export (the source's
 * export_vm: the VM is off and described), convert (--convert-guest: the
 * disks staged as local raw files and converted with virt-v2v, for a KVM
 * destination), import (the destination's import_vm, fed by the source's
 * open_disk through the job's open_source hook, every byte counted and
 * SHA-256-hashed), verify (each destination disk read back with the
 * destination's open_disk, in the order of the source's disks, and
 * compared), acl (the destination's recreate_acl, if any) and finish (the
 * source removed with --delete-source, the destination started with
 * --start). Until verify passed the VM is at the source and any failure
 * removes the partial destination with remove_vm(); after it, the VM is at
 * the destination.
 */
#ifndef VMSHIFT_HOST_CROSSMOVE_H
#define VMSHIFT_HOST_CROSSMOVE_H

#include "host/host.h"

G_BEGIN_DECLS

/* The spec's options keys of the host's own flags of a move between backends. */
#define HOST_SPEC_DELETE_SOURCE_KEY "vmshift.delete-source"
#define HOST_SPEC_CONVERT_KEY "vmshift.convert-guest"
/* NIC=NET of each NIC --network mapped, as it was at the source (strv) */
#define HOST_SPEC_SOURCE_NETS_KEY "vmshift.source-networks"

/* TRUE when @spec moves its VM to another backend (spec->dest_backend). */
gboolean host_spec_is_cross(const VmshiftMigrationSpec *spec);
/* TRUE when the spec's options have the host flag @key. */
gboolean host_spec_flag(const VmshiftMigrationSpec *spec, const char *key);

/* spec.c: completes @spec (dest_host set) for moving @vm from @src to @dst:
 * the source's export_vm() with the --network mapping applied, type cold,
 * --delete-source / --convert-guest. One line for what cannot be done. */
gboolean host_cross_fill_spec(HostBackend *src, HostBackend *dst, const VmshiftVm *vm,
                              const HostMigrateOpts *o, VmshiftMigrationSpec *spec, GError **error);

/* validate.c: the host's rules for the move and the destination's
 * check_import(). */
GPtrArray *host_cross_validate(HostBackend *src, const VmshiftMigrationSpec *spec,
                               const VmshiftVm *vm, GError **error);

/* crossvm.c: the VM description in the journal's spec. */
json_object *host_cross_vm_to_json(const VmshiftVm *vm);
VmshiftVm *host_cross_vm_from_json(json_object *o);

/* cmd-jobs.c: "SRC->DST" for the backend column of a move between
 * backends, and "backend DST, host H" for `job show`; NULL for others. */
char *host_cross_backends_text(const HostJobRecord *r);
char *host_cross_dest_text(const HostJobRecord *r);

/* bulk.c: when the move @rec that took effect went between backends, sets
 * *@vm_spec to the VM at its destination ("DST:VM") and @o to move it back
 * to the backend and host it came from, and to the volume of its first disk
 * there where @src (the backend it came from, may be NULL) lists it,
 * removing the destination's copy (--delete-source); FALSE (nothing
 * changed) for other moves. */
gboolean host_cross_reverse(const HostJobRecord *rec, HostBackend *src, char **vm_spec,
                            HostMigrateOpts *o);

/* jobs.c: where the VM of the move between backends @r is ("BACKEND:HOST"),
 * from the backend the journal says has it; FALSE: not such a move. */
gboolean host_cross_ask_location(HostRegistry *reg, HostJournal *j, const HostJobRecord *r,
                                 char **host, char **detail, GError **error);

/* jobs.c: the runner of one job's move between backends. */
typedef struct HostCross HostCross;

HostCross *host_cross_new(HostBackend *src, HostJournal *journal, gint64 id);
void host_cross_free(HostCross *c);
/* The job's phase hook: records the host's phase names in the journal
 * (*@entered: the name, NULL when nothing was recorded); phases a plugin
 * sets inside import_vm are not the job's. */
gboolean host_cross_hook_phase(HostCross *c, VmshiftJob *job, VmshiftPhase phase,
                               const char **entered, GError **error);
/* The job's open_source hook (vmshift_job_open_source_disk()). */
GInputStream *host_cross_open_source(HostCross *c, VmshiftJob *job, const char *disk_id,
                                     guint64 *capacity, GError **error);
/* The move: every phase, with the rollback of a failure before verify. */
gboolean host_cross_run(HostCross *c, VmshiftJob *job, const VmshiftVm *vm, GError **error);
/* TRUE once the disks were verified: a cancel can no longer stop the move. */
gboolean host_cross_verified(HostCross *c);
/* `job repair`: @reached the phase name the interrupted job had reached. */
gboolean host_cross_repair(HostCross *c, VmshiftJob *job, const char *reached, HostRepairMode mode,
                           GError **error);

G_END_DECLS

#endif /* VMSHIFT_HOST_CROSSMOVE_H */
