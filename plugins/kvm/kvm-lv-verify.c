/* vmshift KVM plugin, libvirt transport: the result of a move, read back.
 * After a live, cold or storage migration the plugin asks every host's
 * libvirtd where the domain is (the same read-back as kvm-qmp-verify.c on
 * the qmp transport): the host (defined or running there and on no other
 * host), the power state (virDomainGetState), each disk's source file in
 * the live definition and, for a persistent domain, in the saved one
 * (under its --disk-path/--path directory), and each mapped NIC's network
 * or bridge. A difference fails the job, naming it; what matched is the
 * "verified" result. */
#include "config.h"

#include <string.h>

#include "kvm-lv.h"

/* the hosts other than @want whose libvirtd has domain @name (an incoming
 * migration's transient, paused domain does not count) */
static char *
lv_other_hosts(KvmBackend *b, const char *name, LvHost *want)
{
    g_autoptr(GString) s = g_string_new(NULL);
    for (guint i = 0; b && i < b->lv->hosts->len; i++) {
        LvHost *h = b->lv->hosts->pdata[i];
        if (h == want)
            continue;
        g_autoptr(virDomain) d = virDomainLookupByName(h->conn, name);
        if (!d)
            continue;
        int state = 0, reason = 0;
        if (virDomainGetState(d, &state, &reason, 0) == 0 && state == VIR_DOMAIN_PAUSED
            && reason == VIR_DOMAIN_PAUSED_MIGRATION && !virDomainIsPersistent(d))
            continue;
        g_string_append_printf(s, "%s%s", s->len ? ", " : "", h->name);
    }
    return s->len ? g_strdup(s->str) : NULL;
}

/* whether interface @n (the @i-th) is the NIC @key: its alias, "netN" by
 * position, or its MAC (as lv_map_networks matches them) */
static gboolean
lv_verify_nic_is(xmlXPathContext *ctx, xmlNode *n, guint i, const char *key)
{
    g_autofree char *alias = vmshift_xpath_string(ctx, n, "alias/@name");
    g_autofree char *mac = vmshift_xpath_string(ctx, n, "mac/@address");
    g_autofree char *pos = g_strdup_printf("net%u", i);
    return !g_strcmp0(alias, key) || !g_strcmp0(pos, key) || (mac && !g_ascii_strcasecmp(mac, key));
}

/* the first disk of @doc (@which: "running", "saved") not under its
 * directory, or not the file @live names for it; NULL when all are */
static char *
lv_verify_disks(const VmshiftMigrationSpec *spec, xmlDoc *doc, const char *which, xmlDoc *live)
{
    g_autoptr(xmlXPathContext) ctx = vmshift_xpath_new(doc, NULL);
    g_autoptr(xmlXPathContext) lctx = live ? vmshift_xpath_new(live, NULL) : NULL;
    g_autoptr(GPtrArray) disks = vmshift_xpath_nodes(
        ctx, NULL, "/domain/devices/disk[@device='disk' and @type='file']");
    for (guint i = 0; i < disks->len; i++) {
        g_autofree char *dev = vmshift_xpath_string(ctx, disks->pdata[i], "target/@dev");
        g_autofree char *file = vmshift_xpath_string(ctx, disks->pdata[i], "source/@file");
        const char *d = dev ? lv_disk_dir(spec, dev) : NULL;
        g_autofree char *dir = d ? g_canonicalize_filename(d, "/") : NULL;
        g_autofree char *in = file ? g_path_get_dirname(file) : NULL;
        if (dir && file && !g_str_has_prefix(in, dir))
            return g_strdup_printf("disk %s is %s in the %s definition, not under %s", dev, file,
                                   which, dir);
        if (lctx && dev && file) {
            g_autofree char *expr = g_strdup_printf("/domain/devices/disk[target/@dev='%s']"
                                                    "/source/@file",
                                                    dev);
            g_autofree char *lfile = vmshift_xpath_string(lctx, NULL, expr);
            if (g_strcmp0(lfile, file) != 0)
                return g_strdup_printf("disk %s runs on %s, the saved definition says %s", dev,
                                       lfile ? lfile : "nothing", file);
        }
    }
    return NULL;
}

/* the first mapped NIC of @doc not on its network (or bridge) */
static char *
lv_verify_nics(const VmshiftMigrationSpec *spec, xmlDoc *doc)
{
    g_autoptr(xmlXPathContext) ctx = vmshift_xpath_new(doc, NULL);
    g_autoptr(GPtrArray) nics = vmshift_xpath_nodes(ctx, NULL, "/domain/devices/interface");
    for (guint k = 0; spec->networks && k < spec->networks->len; k++) {
        const VmshiftMapping *mp = spec->networks->pdata[k];
        for (guint i = 0; i < nics->len; i++) {
            if (!lv_verify_nic_is(ctx, nics->pdata[i], i, mp->key))
                continue;
            /* a running domain's interface of type network shows as type
             * bridge with both source/@network and source/@bridge */
            g_autofree char *net = vmshift_xpath_string(ctx, nics->pdata[i], "source/@network");
            gboolean bridge = net == NULL;
            if (bridge)
                net = vmshift_xpath_string(ctx, nics->pdata[i], "source/@bridge");
            if (g_strcmp0(net, mp->value) != 0)
                return g_strdup_printf("NIC %s is on %s %s, not %s", mp->key,
                                       bridge ? "bridge" : "network", net ? net : "(none)",
                                       mp->value);
        }
    }
    return NULL;
}

/* the first difference between domain @d on @h and the spec, or NULL */
static char *
lv_difference(const VmshiftMigrationSpec *spec, virDomainPtr d, LvHost *h, gboolean want_running,
              gboolean *running, GError **error)
{
    int state = 0;
    if (virDomainGetState(d, &state, NULL, 0) < 0) {
        lv_error(error, VMSHIFT_ERROR_FAILED, "VM %s: reading its state on host %s", spec->vm,
                 h->name);
        return NULL;
    }
    *running = state == VIR_DOMAIN_RUNNING || state == VIR_DOMAIN_PAUSED;
    if (*running != want_running)
        return g_strdup_printf("libvirt on %s says it is %s", h->name,
                               *running ? "running" : "shut off");
    g_autoptr(xmlDoc) doc = lv_xml(d, 0, error);
    if (!doc)
        return NULL;
    char *bad = lv_verify_disks(spec, doc, *running ? "running" : "saved", NULL);
    if (!bad && *running && virDomainIsPersistent(d) == 1) {
        g_autoptr(xmlDoc) saved = lv_xml(d, VIR_DOMAIN_XML_INACTIVE, error);
        if (!saved)
            return NULL;
        bad = lv_verify_disks(spec, saved, "saved", doc);
        if (!bad)
            bad = lv_verify_nics(spec, saved);
    }
    return bad ? bad : lv_verify_nics(spec, doc);
}

gboolean
lv_verify_move(KvmBackend *b, const VmshiftMigrationSpec *spec, VmshiftJob *job, const char *name,
               LvHost *want, gboolean want_running, GError **error)
{
    g_autoptr(virDomain) d = virDomainLookupByName(want->conn, name);
    g_autofree char *others = lv_other_hosts(b, name, want);
    if (!d) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_FAILED,
                    "VM %s was not moved as asked: libvirt on %s does not have it%s%s", name,
                    want->name, others ? "; it is on " : "", others ? others : "");
        return FALSE;
    }
    if (others) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_FAILED,
                    "VM %s was not moved as asked: it is on %s and also on %s", name, want->name,
                    others);
        return FALSE;
    }
    gboolean running = FALSE;
    g_autoptr(GError) e = NULL;
    g_autofree char *bad = lv_difference(spec, d, want, want_running, &running, &e);
    if (e) {
        g_propagate_prefixed_error(error, g_steal_pointer(&e),
                                   "VM %s: the move could not be verified: ", name);
        return FALSE;
    }
    vmshift_job_set_location(job, want->name, running ? "running" : "shut off");
    if (bad) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_FAILED, "VM %s was not moved as asked: %s",
                    name, bad);
        return FALSE;
    }
    vmshift_job_set_result(job, "verified", "host,power,disks,nics");
    vmshift_job_log(job, VMSHIFT_LOG_INFO, "VM %s verified: on %s, %s (libvirt)", name, want->name,
                    running ? "running" : "shut off");
    return TRUE;
}
