/* vmshift KVM plugin: the libvirt transport (transport=libvirt): its
 * connections, and kvm_transport_libvirt.
 *
 * Configuration:
 *   hosts = A=qemu+ssh://root@a/system, B=qemu+tcp://b/system   (one URI per host)
 *   uri   = qemu:///system                      (a single host, named by its hostname)
 *   migration-uris = B=qemu+tcp://10.0.0.2/system   (how the SOURCE libvirtd reaches a
 *                    destination for peer-to-peer migration; default: the host's URI)
 *
 * Inventory and lifecycle go through libvirt's API; live migration is
 * libvirt's peer-to-peer migration (virDomainMigrateToURI3) with the
 * plugin's tuning (kvm-tuning.c: parallel connections for quiet guests,
 * post-copy for busy ones, decided from libvirt's dirty-rate measurement);
 * progress from virDomainGetJobStats; cancellation with virDomainAbortJob;
 * block jobs through virDomainGetBlockJobInfo; --network NIC=NET through
 * the destination XML (VIR_MIGRATE_PARAM_DEST_XML/PERSIST_XML); storage
 * migration on the same host through virDomainBlockCopy + pivot;
 * recreate_acl with the qmp transport's libacl model, kept in the domain's
 * metadata.
 *
 * Between hosts the files move through libvirt's storage API only (the
 * hosts are separate libvirtds, maybe on other machines), in directory
 * pools (an existing one is refreshed, a missing one is made transient for
 * the job): cold migration of a shut-off domain streams each image from
 * virStorageVolDownload on the source into virStorageVolUpload on the
 * destination (sparse, holes as holes; same path by default, --path and
 * --disk-path choose directories), defines the domain there, undefines it
 * on the source, removes the source's images, and with --start starts it.
 * VM + storage (live with --path/--disk-path) is the live path above with
 * VIR_MIGRATE_NON_SHARED_DISK and VIR_MIGRATE_PARAM_MIGRATE_DISKS: libvirt
 * mirrors the disks over NBD into images made beforehand in the
 * destination's pools, named in the destination XML; the source's images go
 * only after success. Each step is journaled (vmshift_job_save: kind, stage,
 * new-vols, old-vols) for kvm_libvirt_repair, which finishes a move the
 * destination already owns and otherwise rolls it back.
 */
#include "config.h"

#include <errno.h>
#include <string.h>

#include "kvm-lv.h"

static void
lv_host_free(LvHost *h)
{
    if (h->conn)
        virConnectClose(h->conn);
    g_free(h->name);
    g_free(h->uri);
    g_free(h->migration_uri);
    g_free(h);
}

static void
silent(void *data, virErrorPtr err)
{
    (void)data;
    (void)err;
}

/* the vmshift error code of libvirt's last error @e, for a generic failure */
static int
lv_error_code(virErrorPtr e)
{
    if (e->code == VIR_ERR_NO_DOMAIN)
        return VMSHIFT_ERROR_NOT_FOUND;
    if (e->code == VIR_ERR_NO_SUPPORT)
        return VMSHIFT_ERROR_NOT_SUPPORTED;
    if (e->code == VIR_ERR_OPERATION_ABORTED)
        return VMSHIFT_ERROR_FAILED;
    if (e->code == VIR_ERR_SYSTEM_ERROR && (e->int1 == ENOSPC || e->int1 == EDQUOT))
        return VMSHIFT_ERROR_NO_SPACE;
    if (e->code == VIR_ERR_SYSTEM_ERROR
        && (e->int1 == EACCES || e->int1 == EPERM || e->int1 == EROFS))
        return VMSHIFT_ERROR_PERMISSION;
    if (e->code == VIR_ERR_SYSTEM_ERROR || e->code == VIR_ERR_RPC)
        return VMSHIFT_ERROR_CONNECTION;
    return VMSHIFT_ERROR_FAILED;
}

void
lv_error(GError **error, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    g_autofree char *what = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    const char *msg = virGetLastErrorMessage();
    virErrorPtr e = virGetLastError();
    if (e && code == VMSHIFT_ERROR_FAILED)
        code = lv_error_code(e);
    g_autofree char *one = g_strdup(msg ? msg : "unknown libvirt error");
    for (char *p = one; *p; p++)
        if (*p == '\n')
            *p = ' ';
    g_set_error(error, VMSHIFT_ERROR, code, "%s: %s", what, one);
}

void
kvm_libvirt_free(struct KvmLibvirt *lv)
{
    if (!lv)
        return;
    g_ptr_array_unref(lv->hosts);
    g_free(lv);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC(KvmLibvirt, kvm_libvirt_free)

static char *
map_lookup(char **list, const char *name)
{
    for (char **p = list; p && *p; p++) {
        const char *eq = strchr(*p, '=');
        if (eq && (gsize)(eq - *p) == strlen(name) && !strncmp(*p, name, (gsize)(eq - *p)))
            return g_strstrip(g_strdup(eq + 1));
    }
    return NULL;
}

/* connects to @h and names it (its hostname when the config did not) */
static gboolean
lv_host_connect(KvmBackend *b, LvHost *h, char **mig, const char *src, GError **error)
{
    h->conn = virConnectOpen(h->uri);
    if (!h->conn) {
        lv_error(error, VMSHIFT_ERROR_CONNECTION, "%s: backend '%s': cannot connect to %s", src,
                 b->name, h->uri);
        return FALSE;
    }
    virConnSetErrorFunc(h->conn, NULL, silent);
    if (!h->name) {
        g_autofree char *hn = virConnectGetHostname(h->conn);
        h->name = g_strdup(hn ? hn : h->uri);
    }
    h->migration_uri = map_lookup(mig, h->name);
    if (!h->migration_uri)
        h->migration_uri = g_strdup(h->uri);
    return TRUE;
}

struct KvmLibvirt *
kvm_libvirt_open(KvmBackend *b, const VmshiftConfig *config, GError **error)
{
    g_autoptr(KvmLibvirt) lv = g_new0(struct KvmLibvirt, 1);
    lv->hosts = g_ptr_array_new_with_free_func((GDestroyNotify)lv_host_free);
    g_auto(GStrv) hosts = vmshift_config_get_string_list(config, "hosts");
    g_auto(GStrv) mig = vmshift_config_get_string_list(config, "migration-uris");
    char *single = vmshift_config_get_string(config, "uri", NULL);
    const char *src = vmshift_config_get_source(config);
    if (single) {
        LvHost *h = g_new0(LvHost, 1);
        h->uri = single;
        g_ptr_array_add(lv->hosts, h);
    }
    for (char **p = hosts; p && *p; p++) {
        const char *eq = strchr(*p, '=');
        if (!eq || eq == *p) {
            g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_CONFIG,
                        "%s: backend '%s': hosts entry '%s' is not NAME=LIBVIRT-URI", src, b->name,
                        *p);
            return NULL;
        }
        LvHost *h = g_new0(LvHost, 1);
        h->name = g_strstrip(g_strndup(*p, (gsize)(eq - *p)));
        h->uri = g_strstrip(g_strdup(eq + 1));
        g_ptr_array_add(lv->hosts, h);
    }
    if (lv->hosts->len == 0) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_CONFIG,
                    "%s: backend '%s': the libvirt transport needs uri= or hosts=NAME=URI,...", src,
                    b->name);
        return NULL;
    }
    for (guint i = 0; i < lv->hosts->len; i++)
        if (!lv_host_connect(b, lv->hosts->pdata[i], mig, src, error))
            return NULL;
    return g_steal_pointer(&lv);
}

LvHost *
lv_find_host(KvmBackend *b, const char *name, GError **error)
{
    for (guint i = 0; i < b->lv->hosts->len; i++) {
        LvHost *h = b->lv->hosts->pdata[i];
        if (!strcmp(h->name, name))
            return h;
    }
    g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_NOT_FOUND, "kvm[%s]: no host '%s'", b->name,
                name);
    return NULL;
}

/* a transient domain being migrated in is not its host's yet */
static gboolean
lv_incoming(virDomainPtr d)
{
    int state = 0, reason = 0;
    return virDomainGetState(d, &state, &reason, 0) == 0 && state == VIR_DOMAIN_PAUSED
           && reason == VIR_DOMAIN_PAUSED_MIGRATION && !virDomainIsPersistent(d);
}

virDomainPtr
lv_locate(KvmBackend *b, const char *vm, LvHost **host, GError **error)
{
    const char *colon = strchr(vm, ':');
    for (guint i = 0; i < b->lv->hosts->len; i++) {
        LvHost *h = b->lv->hosts->pdata[i];
        const char *name = vm;
        if (colon) {
            if (strncmp(h->name, vm, (gsize)(colon - vm)) || h->name[colon - vm])
                continue;
            name = colon + 1;
        }
        g_autoptr(virDomain) d = virDomainLookupByName(h->conn, name);
        if (!d)
            d = virDomainLookupByUUIDString(h->conn, name);
        if (!d || lv_incoming(d))
            continue;
        if (host)
            *host = h;
        return g_steal_pointer(&d);
    }
    g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_NOT_FOUND, "kvm[%s]: no VM '%s' on any host",
                b->name, vm);
    return NULL;
}

void
lv_save_rolled_back(VmshiftJob *job)
{
    g_autoptr(GError) e = NULL;
    if (!vmshift_job_save(job, "stage", "rolled-back", &e))
        vmshift_job_log(job, VMSHIFT_LOG_WARNING, "the journal did not record the rollback: %s",
                        e->message);
}

/* ---- the transport ------------------------------------------------------- */

static gboolean
lv_open(KvmBackend *b, const VmshiftConfig *config, GError **error)
{
    b->lv = kvm_libvirt_open(b, config, error);
    return b->lv != NULL;
}

static void
lv_close(KvmBackend *b)
{
    g_clear_pointer(&b->lv, kvm_libvirt_free);
}

const KvmTransport kvm_transport_libvirt = {
    .name = "libvirt",
    .open = lv_open,
    .close = lv_close,
    .list_hosts = kvm_libvirt_list_hosts,
    .list_vms = kvm_libvirt_list_vms,
    .get_vm = kvm_libvirt_get_vm,
    .list_networks = kvm_libvirt_list_networks,
    .list_volumes = kvm_libvirt_list_volumes,
    .checkpoint_state = kvm_libvirt_checkpoint_state,
    .check_migration = kvm_libvirt_check_migration,
    .migrate = kvm_libvirt_migrate,
    .recreate_acl = kvm_libvirt_recreate_acl,
    .repair = kvm_libvirt_repair,
    .export_vm = lv_export_vm,
    .open_disk = lv_open_disk,
    .check_import = lv_check_import,
    .import_vm = lv_import_vm,
    .remove_vm = lv_remove_vm,
    .start_vm = lv_start_vm,
};
