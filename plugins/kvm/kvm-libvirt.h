/* vmshift KVM plugin: the libvirt transport (kvm-libvirt.c), built only
 * with libvirt (HAVE_LIBVIRT). */
#ifndef VMSHIFT_KVM_LIBVIRT_H
#define VMSHIFT_KVM_LIBVIRT_H

#include "kvm.h"

struct KvmLibvirt *kvm_libvirt_open(KvmBackend *b, const VmshiftConfig *config, GError **error);
void kvm_libvirt_free(struct KvmLibvirt *lv);
GPtrArray *kvm_libvirt_list_hosts(KvmBackend *b, GError **error);
GPtrArray *kvm_libvirt_list_networks(KvmBackend *b, const char *host, GError **error);
GPtrArray *kvm_libvirt_list_vms(KvmBackend *b, const char *host, GError **error);
VmshiftVm *kvm_libvirt_get_vm(KvmBackend *b, const char *vm, GError **error);
VmshiftCheckpointState *kvm_libvirt_checkpoint_state(KvmBackend *b, const char *vm,
                                                     GError **error);
GPtrArray *kvm_libvirt_check_migration(KvmBackend *b, const VmshiftMigrationSpec *spec,
                                       GError **error);
gboolean kvm_libvirt_migrate(KvmBackend *b, const VmshiftMigrationSpec *spec, VmshiftJob *job,
                             GError **error);
gboolean kvm_libvirt_recreate_acl(KvmBackend *b, const char *vm, VmshiftJob *job,
                                  GError **error);
gboolean kvm_libvirt_repair(KvmBackend *b, VmshiftJob *job, GError **error);

#endif
