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
#include <stdlib.h>
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
    g_strfreev(lv->migration_uris);
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

/*
 * libvirt's client answers and sends keepalives only while an event loop
 * runs in the process: without one, a libvirtd (or a network) that stops
 * answering holds a call such as virDomainMigrateToURI3 forever, and
 * virDomainAbortJob, on the same connection, with it. One loop for the
 * process, started before the first connection; its thread never ends
 * (plugins stay loaded: g_module_make_resident).
 */
static gpointer
lv_event_thread(gpointer data)
{
    (void)data;
    for (;;)
        virEventRunDefaultImpl();
    return NULL;
}

static gboolean
lv_event_loop(void)
{
    static gsize started = 0;
    static gboolean ok = FALSE;
    if (g_once_init_enter(&started)) {
        ok = virEventRegisterDefaultImpl() == 0;
        if (ok)
            g_thread_unref(g_thread_new("lv-events", lv_event_thread, NULL));
        g_once_init_leave(&started, 1);
    }
    return ok;
}

/*
 * One connection being made (virConnectOpen has no timeout: a host that
 * takes the connection and never answers holds it forever). A thread of
 * its own dials; the caller waits up to connect-timeout and, past it,
 * leaves the thread: the last of the two to let go frees the dial (and a
 * connection that came too late).
 */
typedef struct {
    gint refs;
    char *uri;
    gboolean want_name;
    guint ka_interval, ka_count; /* keepalive (0: off) */
    GMutex lock;
    GCond cond;
    gboolean done;
    virConnectPtr conn;
    char *hostname;
    GError *error;
} LvDial;

static void
lv_dial_unref(LvDial *d)
{
    if (!g_atomic_int_dec_and_test(&d->refs))
        return;
    if (d->conn)
        virConnectClose(d->conn);
    g_free(d->uri);
    g_free(d->hostname);
    g_clear_error(&d->error);
    g_mutex_clear(&d->lock);
    g_cond_clear(&d->cond);
    g_free(d);
}

static gpointer
lv_dial_thread(gpointer data)
{
    LvDial *d = data;
    GError *err = NULL;
    char *hn = NULL;
    virConnectPtr conn = virConnectOpen(d->uri);
    /* libvirt's last error is per thread: read here */
    if (!conn)
        lv_error(&err, VMSHIFT_ERROR_CONNECTION, "cannot connect to %s", d->uri);
    else if (d->ka_interval && virConnectSetKeepAlive(conn, (int)d->ka_interval, d->ka_count) < 0) {
        lv_error(&err, VMSHIFT_ERROR_CONNECTION, "%s: cannot set keepalive", d->uri);
        virConnectClose(conn);
        conn = NULL;
    } else {
        virConnSetErrorFunc(conn, NULL, silent);
        if (d->want_name) {
            char *v = virConnectGetHostname(conn);
            hn = g_strdup(v);
            free(v);
        }
    }
    g_mutex_lock(&d->lock);
    d->conn = conn;
    d->hostname = hn;
    d->error = err;
    d->done = TRUE;
    g_cond_signal(&d->cond);
    g_mutex_unlock(&d->lock);
    lv_dial_unref(d);
    return NULL;
}

static LvDial *
lv_dial_start(KvmBackend *b, LvHost *h)
{
    LvDial *d = g_new0(LvDial, 1);
    d->refs = 2; /* the caller's and the thread's */
    d->uri = g_strdup(h->uri);
    d->want_name = h->name == NULL;
    d->ka_interval = b->lv->keepalive_interval_s;
    d->ka_count = b->lv->keepalive_count;
    g_mutex_init(&d->lock);
    g_cond_init(&d->cond);
    g_thread_unref(g_thread_new("lv-dial", lv_dial_thread, d));
    return d;
}

/* Waits for @d until @deadline (monotonic) and lets go of it: the
 * connection made, with the name the host gave (*@hostname, when asked
 * for), or NULL with an error naming the backend, the host and its URI. */
static virConnectPtr
lv_dial_wait(KvmBackend *b, LvHost *h, LvDial *d, gint64 deadline, char **hostname, GError **error)
{
    /* the host's name, when the configuration gave it (uri=: its hostname) */
    g_autofree char *who = h->name ? g_strdup_printf("backend '%s': host %s", b->name, h->name)
                                   : g_strdup_printf("backend '%s'", b->name);
    virConnectPtr conn = NULL;

    g_mutex_lock(&d->lock);
    while (!d->done)
        if (!g_cond_wait_until(&d->cond, &d->lock, deadline))
            break;
    if (!d->done)
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_TIMEOUT,
                    "%s: cannot connect to %s: no answer within %u s (connect-timeout)", who,
                    h->uri, b->lv->connect_timeout_s);
    else if (d->error)
        g_set_error(error, d->error->domain, d->error->code, "%s: %s", who, d->error->message);
    else {
        conn = g_steal_pointer(&d->conn);
        if (hostname)
            *hostname = g_steal_pointer(&d->hostname);
    }
    g_mutex_unlock(&d->lock);
    lv_dial_unref(d);
    return conn;
}

/* Waits for @d until @deadline; @h gets its connection and name. */
static gboolean
lv_dial_finish(KvmBackend *b, LvHost *h, LvDial *d, gint64 deadline, GError **error)
{
    g_autofree char *hostname = NULL;
    h->conn = lv_dial_wait(b, h, d, deadline, &hostname, error);
    if (!h->conn)
        return FALSE;
    if (!h->name)
        h->name = g_strdup(hostname ? hostname : h->uri);
    h->migration_uri = map_lookup(b->lv->migration_uris, h->name);
    if (!h->migration_uri)
        h->migration_uri = g_strdup(h->uri);
    return TRUE;
}

/*
 * A connection of its own to @h (its keepalive too), for one long call:
 * libvirt 9.0's client hangs a second thread that calls on a connection
 * while the first one's call dies of keepalive (the buck passes to the
 * second thread, which then waits on the dead socket with no timeout). The
 * migration call gets this one; progress and cancel stay on the host's.
 */
virConnectPtr
lv_conn_open_extra(KvmBackend *b, LvHost *h, GError **error)
{
    gint64 deadline = g_get_monotonic_time() + (gint64)b->lv->connect_timeout_s * G_USEC_PER_SEC;
    return lv_dial_wait(b, h, lv_dial_start(b, h), deadline, NULL, error);
}

/* The first contact (KvmTransport.connect): every host at once, each
 * given connect-timeout; the first failure, in the hosts' order, fails. */
static gboolean
lv_connect(KvmBackend *b, GError **error)
{
    GPtrArray *hosts = b->lv->hosts;
    g_autofree LvDial **dials = g_new0(LvDial *, hosts->len);
    gint64 deadline = g_get_monotonic_time() + (gint64)b->lv->connect_timeout_s * G_USEC_PER_SEC;
    GError *first = NULL;

    /* errors reach the user through GError only, not libvirt's stderr line */
    virSetErrorFunc(NULL, silent);
    if (b->lv->keepalive_interval_s && !lv_event_loop()) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_FAILED,
                    "backend '%s': libvirt's event loop did not start (needed for keepalive; "
                    "keepalive-interval=0 goes without)",
                    b->name);
        return FALSE;
    }
    for (guint i = 0; i < hosts->len; i++)
        dials[i] = lv_dial_start(b, hosts->pdata[i]);
    for (guint i = 0; i < hosts->len; i++) {
        GError *e = NULL;
        if (!lv_dial_finish(b, hosts->pdata[i], dials[i], deadline, &e)) {
            if (!first)
                first = e;
            else
                g_error_free(e);
        }
    }
    if (first) {
        g_propagate_error(error, first);
        return FALSE;
    }
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
    gint64 t;
    if (!vmshift_config_get_int(config, "connect-timeout", 30, 1, 3600, &t, error))
        return NULL;
    lv->connect_timeout_s = (guint)t;
    if (!vmshift_config_get_int(config, "keepalive-interval", 5, 0, 600, &t, error))
        return NULL;
    lv->keepalive_interval_s = (guint)t;
    if (!vmshift_config_get_int(config, "keepalive-count", 3, 1, 100, &t, error))
        return NULL;
    lv->keepalive_count = (guint)t;
    /* no connection yet: the first operation makes them (lv_connect) */
    lv->migration_uris = g_steal_pointer(&mig);
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

/* how sure a domain's state makes it the VM's place: running 3, paused 2,
 * defined and off 1, paused for a migration 0 (either end, mid-switch) */
static int
lv_rank(virDomainPtr d, gboolean *unsure)
{
    int state = 0, reason = 0;
    if (virDomainGetState(d, &state, &reason, 0) < 0) {
        *unsure = TRUE;
        return -1;
    }
    if (state == VIR_DOMAIN_RUNNING)
        return 3;
    if (state == VIR_DOMAIN_PAUSED)
        return reason == VIR_DOMAIN_PAUSED_MIGRATION ? 0 : 2;
    return 1;
}

typedef struct {
    virDomainPtr best;
    LvHost *best_host, *silent, *incoming;
    int best_rank;
    gboolean unsure;
} LvScan;

/* One look at every host (of HOST: when @vm names one) for @vm. */
static void
lv_scan(KvmBackend *b, const char *vm, LvScan *sc)
{
    const char *colon = strchr(vm, ':');
    *sc = (LvScan){ .best_rank = -1 };
    for (guint i = 0; i < b->lv->hosts->len; i++) {
        LvHost *h = b->lv->hosts->pdata[i];
        const char *name = vm;
        if (colon) {
            if (strncmp(h->name, vm, (gsize)(colon - vm)) || h->name[colon - vm])
                continue;
            name = colon + 1;
        }
        if (!h->conn || virConnectIsAlive(h->conn) != 1) {
            sc->unsure = TRUE, sc->silent = h;
            continue;
        }
        g_autoptr(virDomain) d = virDomainLookupByName(h->conn, name);
        if (!d)
            d = virDomainLookupByUUIDString(h->conn, name);
        if (!d) {
            virErrorPtr e = virGetLastError();
            if (e && e->code != VIR_ERR_NO_DOMAIN && e->code != VIR_ERR_INVALID_ARG)
                sc->unsure = TRUE, sc->silent = h;
            continue;
        }
        if (lv_incoming(d)) {
            sc->incoming = h;
            continue;
        }
        gboolean u = FALSE;
        int rank = lv_rank(d, &u);
        if (u)
            sc->unsure = TRUE, sc->silent = h;
        if (rank > sc->best_rank) {
            if (sc->best)
                virDomainFree(sc->best);
            sc->best = g_steal_pointer(&d);
            sc->best_host = h;
            sc->best_rank = rank;
        }
    }
}

/* The host that has @vm (name, uuid, or HOST:NAME): the one where it runs,
 * else where it is paused, else where it is defined. A domain paused for a
 * migration counts only when every host answered and none has it otherwise;
 * with a host that did not answer (a cut connection), only a running or
 * paused domain elsewhere is an answer: the rest is VMSHIFT_ERROR_CONNECTION
 * (where the VM is cannot be said), never a guess. While libvirt migrates
 * the VM (an incoming domain on another host: a migration vmshift lost
 * touch with goes on inside libvirtd), it waits up to 30 s for the outcome,
 * then answers VMSHIFT_ERROR_BUSY. */
virDomainPtr
lv_locate(KvmBackend *b, const char *vm, LvHost **host, GError **error)
{
    LvScan sc;
    gint64 until = g_get_monotonic_time() + 30 * G_USEC_PER_SEC;
    for (lv_scan(b, vm, &sc); sc.incoming && sc.best && g_get_monotonic_time() < until;
         lv_scan(b, vm, &sc)) {
        virDomainFree(sc.best);
        g_usleep(G_USEC_PER_SEC / 2);
    }
    if (sc.incoming && sc.best) {
        virDomainFree(sc.best);
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_BUSY,
                    "kvm[%s]: VM '%s' is being migrated from %s to %s by libvirt: where it "
                    "ends up is not known yet",
                    b->name, vm, sc.best_host->name, sc.incoming->name);
        return NULL;
    }
    if (sc.best && (sc.best_rank >= 2 || !sc.unsure)) {
        if (host)
            *host = sc.best_host;
        return sc.best;
    }
    if (sc.best)
        virDomainFree(sc.best);
    if (sc.unsure)
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_CONNECTION,
                    "kvm[%s]: host %s does not answer: where VM '%s' is cannot be said", b->name,
                    sc.silent ? sc.silent->name : "?", vm);
    else
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_NOT_FOUND,
                    "kvm[%s]: no VM '%s' on any host", b->name, vm);
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
    .connect = lv_connect,
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
