/* vmshift KVM plugin, libvirt transport: recreate_acl. */
#include "config.h"

#include <pwd.h>
#include <string.h>

#include "kvm-lv.h"

#define LV_META_URI "https://vmshift.example/kvm/acl/1"

/* the model recorded for @path in the domain's metadata (or FALSE) */
static gboolean
lv_acl_model(xmlXPathContext *mctx, const char *path, KvmDiskDef *dk)
{
    if (!mctx)
        return FALSE;
    g_autoptr(GPtrArray) files = vmshift_xpath_nodes(mctx, NULL, "//*[local-name()='file']");
    for (guint i = 0; i < files->len; i++) {
        xmlNode *n = files->pdata[i];
        g_autofree char *p = vmshift_xml_get_attr(n, NULL, "path");
        if (g_strcmp0(p, path))
            continue;
        g_autofree char *uid = vmshift_xml_get_attr(n, NULL, "uid");
        g_autofree char *gid = vmshift_xml_get_attr(n, NULL, "gid");
        g_autofree char *mode = vmshift_xml_get_attr(n, NULL, "mode");
        dk->acl_uid = uid ? g_ascii_strtoll(uid, NULL, 10) : -1;
        dk->acl_gid = gid ? g_ascii_strtoll(gid, NULL, 10) : -1;
        dk->acl_mode = mode ? (guint)g_ascii_strtoull(mode, NULL, 8) : 0;
        g_free(dk->acl_text);
        g_free(dk->acl_label);
        dk->acl_text = vmshift_xml_get_attr(n, NULL, "acl");
        dk->acl_label = vmshift_xml_get_attr(n, NULL, "label");
        if (dk->acl_text)
            return TRUE;
    }
    return FALSE;
}

/* the image files are changed with libacl on this machine: only a
 * libvirtd here (a URI without a host part) has them at their paths */
static gboolean
lv_host_is_here(LvHost *h)
{
    g_autoptr(GUri) u = g_uri_parse(h->uri, G_URI_FLAGS_NONE, NULL);
    return u
           && (!g_uri_get_host(u) || !*g_uri_get_host(u)
               || !g_strcmp0(g_uri_get_host(u), "localhost"));
}

/* the user QEMU runs as, from the DAC label ("+uid:+gid" or
 * "user:group"); NULL: root, who needs no grant */
static char *
lv_qemu_user(xmlXPathContext *ctx)
{
    g_autofree char *label = vmshift_xpath_string(ctx, NULL,
                                                  "/domain/seclabel[@model='dac']/label");
    if (!label)
        return NULL;
    char *colon = strchr(label, ':');
    if (colon)
        *colon = '\0';
    if (label[0] == '+') {
        struct passwd *pw = getpwuid((uid_t)g_ascii_strtoull(label + 1, NULL, 10));
        return pw && pw->pw_uid != 0 ? g_strdup(pw->pw_name) : NULL;
    }
    return strcmp(label, "root") != 0 ? g_strdup(label) : NULL;
}

/* what one recreate_acl run knows and finds */
typedef struct {
    xmlXPathContext *ctx;  /* the domain's live XML */
    xmlXPathContext *mctx; /* the recorded metadata, or NULL */
    char *user;            /* the QEMU user, or NULL */
    GPtrArray *changes;    /* strings */
    GString *meta;         /* the metadata to record */
    guint files;
    gboolean captured; /* a model was captured for the first time */
} LvAcl;

/* the top image @path: its model (recorded, or captured now) applied
 * with rw for the QEMU user */
static gboolean
lv_acl_top(LvAcl *a, const char *path, GError **error)
{
    KvmDiskDef dk = { .acl_uid = -1, .acl_gid = -1 };
    gboolean good = TRUE;
    if (!lv_acl_model(a->mctx, path, &dk)) {
        /* first time: the file as it is now is the model */
        good = kvm_acl_capture(path, &dk, error);
        a->captured = TRUE;
    }
    if (good) {
        g_autofree char *ep = vmshift_xml_escape(path);
        g_autofree char *ea = vmshift_xml_escape(dk.acl_text);
        g_autofree char *el = dk.acl_label ? vmshift_xml_escape(dk.acl_label) : NULL;
        g_string_append_printf(a->meta,
                               "<file path='%s' uid='%" G_GINT64_FORMAT "' gid='%" G_GINT64_FORMAT
                               "' mode='%04o' acl='%s'%s%s%s/>",
                               ep, dk.acl_uid, dk.acl_gid, dk.acl_mode, ea, el ? " label='" : "",
                               el ? el : "", el ? "'" : "");
        good = kvm_acl_apply_def(path, &dk, a->user, TRUE, a->changes, error);
        a->files++;
    }
    g_free(dk.acl_text);
    g_free(dk.acl_label);
    return good;
}

/* disk @n: its top image, and its backing files (read by the QEMU user) */
static gboolean
lv_acl_disk(LvAcl *a, xmlNode *n, GError **error)
{
    g_autofree char *path = vmshift_xpath_string(a->ctx, n, "source/@file");
    if (!path)
        return TRUE;
    if (!lv_acl_top(a, path, error))
        return FALSE;
    g_autoptr(GPtrArray) chain = vmshift_xpath_nodes(a->ctx, n, ".//backingStore/source/@file");
    for (guint k = 0; k < chain->len; k++) {
        g_autofree char *bp = vmshift_xml_text(chain->pdata[k]);
        KvmDiskDef bk = { .acl_uid = -1, .acl_gid = -1 };
        a->files++;
        if (bp && !kvm_acl_apply_def(bp, &bk, a->user, FALSE, a->changes, error))
            return FALSE;
    }
    return TRUE;
}

/* records the access model in the domain's metadata (live and config) */
static gboolean
lv_acl_record(virDomainPtr d, const char *vm, const char *meta, GError **error)
{
    unsigned int aff = VIR_DOMAIN_AFFECT_LIVE;
    if (virDomainIsPersistent(d) == 1)
        aff |= VIR_DOMAIN_AFFECT_CONFIG;
    int st = 0;
    virDomainGetState(d, &st, NULL, 0);
    if (st == VIR_DOMAIN_SHUTOFF)
        aff = VIR_DOMAIN_AFFECT_CONFIG;
    if (virDomainSetMetadata(d, VIR_DOMAIN_METADATA_ELEMENT, meta, "vmshift", LV_META_URI, aff)
        < 0) {
        lv_error(error, VMSHIFT_ERROR_FAILED,
                 "VM %s: recording the access model in its "
                 "metadata",
                 vm);
        return FALSE;
    }
    return TRUE;
}

static void
lv_acl_report(VmshiftJob *job, const LvAcl *a)
{
    for (guint i = 0; i < a->changes->len; i++)
        vmshift_job_log(job, VMSHIFT_LOG_INFO, "acl: %s", (char *)a->changes->pdata[i]);
    g_autofree char *sum = g_strdup_printf("%u file(s) checked, %u change(s)%s", a->files,
                                           a->changes->len,
                                           a->captured ? " (access model recorded in the "
                                                         "domain's metadata)"
                                                       : "");
    vmshift_job_set_result(job, "acl", sum);
}

/*
 * recreate_acl for the libvirt transport: the same libacl model as the qmp
 * transport, on the files of the domain's disks (top images rw, backing
 * files r for the QEMU user). The model of each top image (owner, group,
 * mode, ACL, SELinux label) is recorded the first time in the domain's own
 * metadata (virDomainSetMetadata, namespace LV_META_URI), so it travels with
 * the domain when it migrates; later calls replace changes made outside
 * vmshift. The QEMU user is the domain's DAC label (<seclabel model='dac'>);
 * root needs no grant.
 */
gboolean
kvm_libvirt_recreate_acl(KvmBackend *b, const char *vm, VmshiftJob *job, GError **error)
{
    LvHost *h = NULL;
    g_autoptr(virDomain) d = lv_locate(b, vm, &h, error);
    if (!d)
        return FALSE;
    if (!lv_host_is_here(h)) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_NOT_SUPPORTED,
                    "recreate_acl of VM %s: libvirt host %s (%s) is remote and its image files "
                    "are not reachable from here; run vmshift on that host, or let libvirt's "
                    "DAC/SELinux drivers label them (dynamic_ownership)",
                    vm, h->name, h->uri);
        return FALSE;
    }
    if (job && !vmshift_job_set_phase(job, VMSHIFT_PHASE_ACL, error))
        return FALSE;
    g_autoptr(xmlDoc) doc = lv_xml(d, 0, error);
    if (!doc)
        return FALSE;
    g_autoptr(xmlXPathContext) ctx = vmshift_xpath_new(doc, NULL);
    g_autofree char *mx = virDomainGetMetadata(d, VIR_DOMAIN_METADATA_ELEMENT, LV_META_URI, 0);
    g_autoptr(xmlDoc) mdoc = mx ? vmshift_xml_parse(mx, strlen(mx), "vmshift ACL metadata", NULL)
                                : NULL;
    g_autoptr(xmlXPathContext) mctx = mdoc ? vmshift_xpath_new(mdoc, NULL) : NULL;
    g_autofree char *user = lv_qemu_user(ctx);
    g_autoptr(GPtrArray) changes = g_ptr_array_new_with_free_func(g_free);
    g_autoptr(GString) meta = g_string_new("<acl>");
    LvAcl a = { ctx, mctx, user, changes, meta, 0, FALSE };
    g_autoptr(GPtrArray) disks = vmshift_xpath_nodes(
        ctx, NULL, "/domain/devices/disk[@device='disk' and @type='file']");
    for (guint i = 0; i < disks->len; i++)
        if (!lv_acl_disk(&a, disks->pdata[i], error))
            return FALSE;
    g_string_append(meta, "</acl>");
    if (a.captured && !lv_acl_record(d, vm, meta->str, error))
        return FALSE;
    if (job)
        lv_acl_report(job, &a);
    return TRUE;
}
