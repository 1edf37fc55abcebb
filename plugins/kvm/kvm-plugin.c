/* vmshift KVM plugin: the descriptor, open/close, and the dispatch of every
 * operation to the backend's transport (KvmTransport, kvm.h): kvm-qmp-*.c
 * for bare QEMU hosts, kvm-libvirt.c for libvirt.
 *
 * Configuration ([backend NAME] with plugin=kvm):
 *   transport = qmp (default) | libvirt
 *   hosts     = A=/srv/vmshift/a, B=ssh://root@10.0.0.2/srv/vmshift   (qmp)
 *   uri       = qemu:///system                                        (libvirt)
 *   qmp-timeout-ms = 10000
 *   link-mib-s     = 1000   assumed migration link speed, for tuning
 *   ssh-config     = /etc/vmshift/kvm-ssh.conf                       (qmp)
 *                    the ssh client configuration for ssh:// hosts (ssh -F):
 *                    UserKnownHostsFile, IdentityFile, User… Without it ssh
 *                    reads ~/.ssh of the user's passwd home (not $HOME).
 *                    Relative to the configuration file's directory. It must
 *                    be a regular file not writable by group/others, and
 *                    every IdentityFile it names must be private (mode 600).
 *                    Host keys are always checked: StrictHostKeyChecking=yes
 *                    and BatchMode=yes are given on the command line, which
 *                    the file cannot override.
 *   connect-timeout = 30  (libvirt) seconds a host's libvirtd has to answer
 *                    the first contact, made by the first operation (open
 *                    does not touch the network)
 *   keepalive-interval = 5, keepalive-count = 3  (libvirt) libvirt's
 *                    keepalive: a connection whose libvirtd misses count
 *                    pings in a row is closed, and the call waiting on it
 *                    fails (0: off)
 * See kvm-host.c for a host's run directory (host.conf, networks.conf, vms/).
 */
#include "config.h"

#include <string.h>

#include "kvm.h"

static void
backend_free(KvmBackend *b)
{
    if (!b)
        return;
    if (b->ops)
        b->ops->close(b);
    g_clear_error(&b->connect_error);
    g_mutex_clear(&b->connect_lock);
    g_free(b->name);
    g_free(b->transport);
    g_free(b);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC(KvmBackend, backend_free)

/* The one place that knows the transports. */
static const KvmTransport *
pick_transport(const VmshiftConfig *config, const KvmBackend *b, GError **error)
{
    if (!strcmp(b->transport, "qmp"))
        return &kvm_transport_qmp;
    if (!strcmp(b->transport, "libvirt")) {
#ifdef HAVE_LIBVIRT
        return &kvm_transport_libvirt;
#else
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_NOT_SUPPORTED,
                    "%s: backend '%s': this kvm plugin was built without libvirt "
                    "(use transport=qmp with hosts=)",
                    vmshift_config_get_source(config), b->name);
        return NULL;
#endif
    }
    g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_CONFIG,
                "%s: backend '%s': transport '%s' is neither qmp nor libvirt",
                vmshift_config_get_source(config), b->name, b->transport);
    return NULL;
}

static VmshiftBackend *
kvm_open(const VmshiftConfig *config, guint32 flags, GError **error)
{
    if (!vmshift_check_flags(flags, 0, "open", error))
        return NULL;
    g_autoptr(KvmBackend) b = g_new0(KvmBackend, 1);
    g_mutex_init(&b->connect_lock);
    b->name = g_strdup(vmshift_config_get_backend(config));
    b->transport = vmshift_config_get_string(config, "transport", NULL);
    if (!b->transport)
        b->transport = g_strdup(vmshift_config_has_key(config, "uri") ? "libvirt" : "qmp");
    gint64 v;
    if (!vmshift_config_get_int(config, "qmp-timeout-ms", 10000, 100, 600000, &v, error))
        return NULL;
    b->qmp_timeout_ms = (guint)v;
    if (!vmshift_config_get_int(config, "link-mib-s", 1000, 1, 1000000, &v, error))
        return NULL;
    b->link_mib_s = (guint64)v;
    const KvmTransport *ops = pick_transport(config, b, error);
    if (!ops)
        return NULL;
    /* set before open: close undoes what a failed open made */
    b->ops = ops;
    if (!b->ops->open(b, config, error))
        return NULL;
    return (VmshiftBackend *)g_steal_pointer(&b);
}

static void
kvm_close(VmshiftBackend *backend)
{
    backend_free((KvmBackend *)backend);
}

#define KVM_B(backend) ((KvmBackend *)(backend))

/* The transport's first contact with the hosts (open leaves the network
 * alone), once per backend, under a lock: bulk runs jobs concurrently. A
 * failure stays, as a failed open did, and fails every operation. */
static gboolean
kvm_ready(KvmBackend *b, GError **error)
{
    if (!b->ops->connect)
        return TRUE;
    g_mutex_lock(&b->connect_lock);
    if (!b->connected) {
        b->ops->connect(b, &b->connect_error);
        b->connected = TRUE;
    }
    g_mutex_unlock(&b->connect_lock);
    if (b->connect_error) {
        g_propagate_error(error, g_error_copy(b->connect_error));
        return FALSE;
    }
    return TRUE;
}

/* the flags of @op checked, the hosts contacted */
static gboolean
kvm_begin(VmshiftBackend *backend, guint32 flags, const char *op, GError **error)
{
    return vmshift_check_flags(flags, 0, op, error) && kvm_ready(KVM_B(backend), error);
}

static GPtrArray *
kvm_list_hosts(VmshiftBackend *backend, guint32 flags, GError **error)
{
    if (!kvm_begin(backend, flags, "list_hosts", error))
        return NULL;
    return KVM_B(backend)->ops->list_hosts(KVM_B(backend), error);
}

static GPtrArray *
kvm_list_vms(VmshiftBackend *backend, const char *host, guint32 flags, GError **error)
{
    if (!kvm_begin(backend, flags, "list_vms", error))
        return NULL;
    return KVM_B(backend)->ops->list_vms(KVM_B(backend), host, error);
}

static VmshiftVm *
kvm_get_vm(VmshiftBackend *backend, const char *vm, guint32 flags, GError **error)
{
    if (!kvm_begin(backend, flags, "get_vm", error))
        return NULL;
    return KVM_B(backend)->ops->get_vm(KVM_B(backend), vm, error);
}

static GPtrArray *
kvm_list_networks(VmshiftBackend *backend, const char *host, guint32 flags, GError **error)
{
    if (!kvm_begin(backend, flags, "list_networks", error))
        return NULL;
    return KVM_B(backend)->ops->list_networks(KVM_B(backend), host, error);
}

static GPtrArray *
kvm_list_volumes(VmshiftBackend *backend, const char *host, guint32 flags, GError **error)
{
    if (!kvm_begin(backend, flags, "list_volumes", error))
        return NULL;
    return KVM_B(backend)->ops->list_volumes(KVM_B(backend), host, error);
}

static VmshiftCheckpointState *
kvm_checkpoint_state(VmshiftBackend *backend, const char *vm, guint32 flags, GError **error)
{
    if (!kvm_begin(backend, flags, "checkpoint_state", error))
        return NULL;
    return KVM_B(backend)->ops->checkpoint_state(KVM_B(backend), vm, error);
}

static GPtrArray *
kvm_check_migration(VmshiftBackend *backend, const VmshiftMigrationSpec *spec, guint32 flags,
                    GError **error)
{
    if (!kvm_begin(backend, flags, "check_migration", error))
        return NULL;
    return KVM_B(backend)->ops->check_migration(KVM_B(backend), spec, error);
}

static gboolean
kvm_migrate(VmshiftBackend *backend, const VmshiftMigrationSpec *spec, VmshiftJob *job,
            guint32 flags, GError **error)
{
    KvmBackend *b = KVM_B(backend);

    if (!kvm_begin(backend, flags, "migrate", error))
        return FALSE;
    /* VMSHIFT_PLUGIN_SWITCHOVER_AT: storage moves and host+storage moves
     * of the qmp transport keep a block mirror in sync and hold before the
     * switchover (kvm-qmp-mirror.c); every other move waits before it
     * starts */
    if (!(b->ops == &kvm_transport_qmp
          && (spec->type == VMSHIFT_MIGRATION_STORAGE
              || (spec->type == VMSHIFT_MIGRATION_LIVE
                  && vmshift_migration_spec_moves_storage(spec))))
        && !vmshift_job_hold_switchover(job, NULL, NULL, error))
        return FALSE;
    return b->ops->migrate(b, spec, job, error);
}

static gboolean
kvm_recreate_acl(VmshiftBackend *backend, const char *vm, VmshiftJob *job, guint32 flags,
                 GError **error)
{
    if (!kvm_begin(backend, flags, "recreate_acl", error))
        return FALSE;
    return KVM_B(backend)->ops->recreate_acl(KVM_B(backend), vm, job, error);
}

static gboolean
kvm_repair(VmshiftBackend *backend, VmshiftJob *job, guint32 flags, GError **error)
{
    if (!kvm_begin(backend, flags, "repair", error))
        return FALSE;
    return KVM_B(backend)->ops->repair(KVM_B(backend), job, error);
}

static gboolean
kvm_cleanup(VmshiftBackend *backend, VmshiftJob *job, guint32 flags, GError **error)
{
    if (!vmshift_check_flags(flags, 0, "cleanup", error))
        return FALSE;
    if (!KVM_B(backend)->ops->cleanup) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_NOT_SUPPORTED,
                    "kvm: the libvirt transport does not support 'cleanup'");
        return FALSE;
    }
    if (!kvm_ready(KVM_B(backend), error))
        return FALSE;
    return KVM_B(backend)->ops->cleanup(KVM_B(backend), job, error);
}

/* ---- moves between backends (SDK 1.4): the transport's, when it has them ---- */

static gboolean
transport_has(KvmBackend *b, gconstpointer fn, const char *op, guint32 flags, GError **error)
{
    if (!vmshift_check_flags(flags, 0, op, error))
        return FALSE;
    if (!fn) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_NOT_SUPPORTED,
                    "kvm: the %s transport does not support '%s'", b->ops->name, op);
        return FALSE;
    }
    return kvm_ready(b, error);
}

static VmshiftVm *
kvm_export_vm(VmshiftBackend *backend, const char *vm, guint32 flags, GError **error)
{
    KvmBackend *b = KVM_B(backend);
    if (!transport_has(b, (gconstpointer)b->ops->export_vm, "export_vm", flags, error))
        return NULL;
    return b->ops->export_vm(b, vm, error);
}

static GInputStream *
kvm_open_disk(VmshiftBackend *backend, const char *vm, const char *disk_id,
              GCancellable *cancellable, guint32 flags, GError **error)
{
    KvmBackend *b = KVM_B(backend);
    if (!transport_has(b, (gconstpointer)b->ops->open_disk, "open_disk", flags, error))
        return NULL;
    return b->ops->open_disk(b, vm, disk_id, cancellable, error);
}

static GPtrArray *
kvm_check_import(VmshiftBackend *backend, const VmshiftMigrationSpec *spec, guint32 flags,
                 GError **error)
{
    KvmBackend *b = KVM_B(backend);
    if (!transport_has(b, (gconstpointer)b->ops->check_import, "check_import", flags, error))
        return NULL;
    return b->ops->check_import(b, spec, error);
}

static gboolean
kvm_import_vm(VmshiftBackend *backend, const VmshiftMigrationSpec *spec, VmshiftJob *job,
              guint32 flags, GError **error)
{
    KvmBackend *b = KVM_B(backend);
    if (!transport_has(b, (gconstpointer)b->ops->import_vm, "import_vm", flags, error))
        return FALSE;
    return b->ops->import_vm(b, spec, job, error);
}

static gboolean
kvm_remove_vm(VmshiftBackend *backend, const char *vm, VmshiftJob *job, guint32 flags,
              GError **error)
{
    KvmBackend *b = KVM_B(backend);
    if (!transport_has(b, (gconstpointer)b->ops->remove_vm, "remove_vm", flags, error))
        return FALSE;
    return b->ops->remove_vm(b, vm, job, error);
}

static gboolean
kvm_start_vm(VmshiftBackend *backend, const char *vm, VmshiftJob *job, guint32 flags,
             GError **error)
{
    KvmBackend *b = KVM_B(backend);
    if (!transport_has(b, (gconstpointer)b->ops->start_vm, "start_vm", flags, error))
        return FALSE;
    return b->ops->start_vm(b, vm, job, error);
}

static const VmshiftBackendOps kvm_ops = {
    VMSHIFT_OPS_INIT,
    .open = kvm_open,
    .close = kvm_close,
    .list_hosts = kvm_list_hosts,
    .list_vms = kvm_list_vms,
    .get_vm = kvm_get_vm,
    .list_networks = kvm_list_networks,
    .list_volumes = kvm_list_volumes,
    .checkpoint_state = kvm_checkpoint_state,
    .check_migration = kvm_check_migration,
    .migrate = kvm_migrate,
    .recreate_acl = kvm_recreate_acl,
    .repair = kvm_repair,
    .cleanup = kvm_cleanup,
    .export_vm = kvm_export_vm,
    .open_disk = kvm_open_disk,
    .check_import = kvm_check_import,
    .import_vm = kvm_import_vm,
    .remove_vm = kvm_remove_vm,
    .start_vm = kvm_start_vm,
};

static const char *const kvm_config_keys[] = {
    "transport",          "hosts",           "uri",        "migration-uris",
    "qmp-timeout-ms",     "link-mib-s",      "ssh-config", "connect-timeout",
    "keepalive-interval", "keepalive-count", NULL
};

VMSHIFT_PLUGIN_DEFINE("kvm", PACKAGE_VERSION, "MIT",
                      "QEMU/KVM over QMP (bare QEMU hosts, local or ssh) or libvirt",
                      VMSHIFT_PLUGIN_LIVE | VMSHIFT_PLUGIN_COLD | VMSHIFT_PLUGIN_STORAGE
                          | VMSHIFT_PLUGIN_HOST_AND_STORAGE | VMSHIFT_PLUGIN_SWITCHOVER_AT,
                      kvm_ops, kvm_config_keys)
