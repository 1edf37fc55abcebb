/*
 * vmshift Hyper-V plugin: re-creating the VM account's file ACLs
 * (docs/design/hyperv.md §3).
 * Facts and sources: docs/design/hyperv.md.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include <vmshift/vmshift.h>

#include "hyperv.h"

/* The VM worker process capability SID Hyper-V grants beside the VM account
 * (docs/design/hyperv.md §3.1). */
#define HV_WORKER_CAP_SID \
    "S-1-15-3-1024-2268835264-3721307629-241982045-173645152-1490879176-104643441-2915960892-1612460704"

char *
hv_vm_sid(const char *guid)
{
    guint8 b[16];
    guint32 r[4];
    unsigned int x[11];

    if (sscanf(guid, "%8x-%4x-%4x-%2x%2x-%2x%2x%2x%2x%2x%2x", &x[0], &x[1], &x[2], &x[3], &x[4],
               &x[5], &x[6], &x[7], &x[8], &x[9], &x[10])
        != 11)
        return NULL;
    /* GUID bytes in Windows (little-endian) order, read as 4 LE uint32 */
    b[0] = x[0] & 0xff;
    b[1] = (x[0] >> 8) & 0xff;
    b[2] = (x[0] >> 16) & 0xff;
    b[3] = (x[0] >> 24) & 0xff;
    b[4] = x[1] & 0xff;
    b[5] = (x[1] >> 8) & 0xff;
    b[6] = x[2] & 0xff;
    b[7] = (x[2] >> 8) & 0xff;
    for (int i = 0; i < 8; i++)
        b[8 + i] = (guint8)x[3 + i];
    for (int i = 0; i < 4; i++)
        r[i] = (guint32)b[4 * i] | (guint32)b[4 * i + 1] << 8 | (guint32)b[4 * i + 2] << 16
               | (guint32)b[4 * i + 3] << 24;
    return g_strdup_printf("S-1-5-83-1-%u-%u-%u-%u", r[0], r[1], r[2], r[3]);
}

gboolean
hv_sid_bytes(const char *sid, GByteArray *out)
{
    g_auto(GStrv) p = g_strsplit(sid, "-", -1);
    guint n = g_strv_length(p);
    guint64 auth, v;
    guint8 hdr[8];

    if (n < 3 || n > 18 || g_ascii_strcasecmp(p[0], "S") != 0
        || !g_ascii_string_to_unsigned(p[1], 10, 0, 255, &v, NULL)
        || !g_ascii_string_to_unsigned(p[2], 10, 0, G_GUINT64_CONSTANT(0xffffffffffff), &auth,
                                       NULL))
        return FALSE;
    hdr[0] = (guint8)v;
    hdr[1] = (guint8)(n - 3);
    for (int i = 0; i < 6; i++)
        hdr[2 + i] = (guint8)(auth >> (8 * (5 - i)));
    g_byte_array_append(out, hdr, 8);
    for (guint i = 3; i < n; i++) {
        guint8 le[4];
        if (!g_ascii_string_to_unsigned(p[i], 10, 0, G_MAXUINT32, &v, NULL))
            return FALSE;
        for (int k = 0; k < 4; k++)
            le[k] = (guint8)(v >> (8 * k));
        g_byte_array_append(out, le, 4);
    }
    return TRUE;
}

typedef struct {
    char *sid;
    guint32 mask, flags, type;
} HvAce;

static void
hv_ace_free(HvAce *a)
{
    g_free(a->sid);
    g_free(a);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC(HvAce, hv_ace_free)

static char *
ace_sid(const HvInstance *ace)
{
    const GPtrArray *tr = hv_inst_get_objs(ace, "Trustee");
    const HvInstance *t = tr->len ? tr->pdata[0] : NULL;
    const char *s = hv_inst_get(t, "SIDString");

    if (s != NULL && s[0])
        return g_strdup(s);
    return NULL;
}

static void
append_ace_xml(GString *s, const char *sid, guint32 mask, guint32 flags, guint32 type)
{
    g_autoptr(GByteArray) b = g_byte_array_new();

    hv_sid_bytes(sid, b);
    g_string_append_printf(
        s,
        "<sd:DACL xmlns:ace=\"" HV_CIMV2 "Win32_ACE\" xsi:type=\"ace:Win32_ACE_Type\">"
        "<ace:AccessMask>%u</ace:AccessMask><ace:AceFlags>%u</ace:AceFlags>"
        "<ace:AceType>%u</ace:AceType><ace:Trustee xmlns:t=\"" HV_CIMV2 "Win32_Trustee\" "
        "xsi:type=\"t:Win32_Trustee_Type\">",
        mask, flags, type);
    for (guint i = 0; i < b->len; i++)
        g_string_append_printf(s, "<t:SID>%u</t:SID>", b->data[i]);
    g_string_append_printf(s,
                           "<t:SIDLength>%u</t:SIDLength><t:SIDString>%s</t:SIDString>"
                           "</ace:Trustee></sd:DACL>",
                           b->len, sid);
}

/* Re-applies the VM's grant on one file or folder.  Returns 1 if changed,
 * 0 if already right, -1 on error. */
static int
fix_acl(HvHost *h, const char *path, gboolean is_dir, const char *sid, VmshiftJob *job,
        GError **error)
{
    const char *sel[] = { "Path", path, NULL };
    const char *uri = HV_CIMV2 "Win32_LogicalFileSecuritySetting";
    g_autoptr(HvInstance) out = NULL;
    g_autoptr(GPtrArray) keep = g_ptr_array_new_with_free_func((GDestroyNotify)hv_ace_free);
    g_autoptr(GString) sd = g_string_new(NULL);
    const GPtrArray *descs, *dacl;
    guint32 want_flags = is_dir ? HV_ACE_FLAGS_INHERIT_ALL : 0;
    gboolean has_vm = FALSE, has_cap = FALSE, extra_vm = FALSE;
    gint64 rv;

    out = hv_invoke(h, uri, "GetSecurityDescriptor", sel, "", NULL, error);
    if (out == NULL)
        return -1;
    rv = hv_inst_get_int(out, "ReturnValue", -1);
    descs = hv_inst_get_objs(out, "Descriptor");
    if (rv != HV_FILE_SD_OK || descs->len != 1) {
        g_set_error(error, VMSHIFT_ERROR, hv_file_sd_error_code(rv),
                    "Hyper-V host %s: GetSecurityDescriptor on %s returned %" G_GINT64_FORMAT,
                    h->name, path, rv);
        return -1;
    }
    dacl = hv_inst_get_objs(descs->pdata[0], "DACL");
    for (guint i = 0; i < dacl->len; i++) {
        HvInstance *a = dacl->pdata[i];
        g_autoptr(HvAce) ace = g_new0(HvAce, 1);
        ace->sid = ace_sid(a);
        ace->mask = (guint32)hv_inst_get_int(a, "AccessMask", 0);
        ace->flags = (guint32)hv_inst_get_int(a, "AceFlags", 0);
        ace->type = (guint32)hv_inst_get_int(a, "AceType", 0);
        /* inherited: not ours to write */
        if (ace->sid == NULL || (ace->flags & HV_ACE_FLAG_INHERITED))
            continue;
        if (g_ascii_strcasecmp(ace->sid, sid) == 0) {
            if (ace->type == HV_ACE_TYPE_ALLOW && ace->mask == HV_ACE_MASK_VM
                && ace->flags == want_flags && !has_vm)
                has_vm = TRUE;
            else
                extra_vm = TRUE;
            continue;
        }
        if (strcmp(ace->sid, HV_WORKER_CAP_SID) == 0 && ace->type == HV_ACE_TYPE_ALLOW
            && (ace->mask & HV_ACE_MASK_VM) == HV_ACE_MASK_VM)
            has_cap = TRUE;
        g_ptr_array_add(keep, g_steal_pointer(&ace));
    }
    if (has_vm && has_cap && !extra_vm)
        return 0;
    g_string_append(sd, "<p:Descriptor xmlns:sd=\"" HV_CIMV2 "Win32_SecurityDescriptor\" "
                        "xmlns:xsi=\"" HV_NS_XSI "\" xsi:type=\"sd:Win32_SecurityDescriptor_Type\">"
                        "<sd:ControlFlags>" G_STRINGIFY(HV_SD_DACL_PRESENT) "</sd:ControlFlags>");
    append_ace_xml(sd, sid, HV_ACE_MASK_VM, want_flags, HV_ACE_TYPE_ALLOW);
    if (!has_cap)
        append_ace_xml(sd, HV_WORKER_CAP_SID, HV_ACE_MASK_VM, want_flags, HV_ACE_TYPE_ALLOW);
    for (guint i = 0; i < keep->len; i++) {
        HvAce *a = keep->pdata[i];
        append_ace_xml(sd, a->sid, a->mask, a->flags, a->type);
    }
    g_string_append(sd, "</p:Descriptor>");
    g_clear_pointer(&out, hv_instance_free);
    out = hv_invoke(h, uri, "SetSecurityDescriptor", sel, sd->str, NULL, error);
    if (out == NULL)
        return -1;
    rv = hv_inst_get_int(out, "ReturnValue", -1);
    if (rv != HV_FILE_SD_OK) {
        g_set_error(error, VMSHIFT_ERROR, hv_file_sd_error_code(rv),
                    "Hyper-V host %s: SetSecurityDescriptor on %s returned %" G_GINT64_FORMAT,
                    h->name, path, rv);
        return -1;
    }
    vmshift_job_log(job, VMSHIFT_LOG_INFO, "%s: granted NT VIRTUAL MACHINE\\%s read/write%s%s",
                    path, sid, is_dir ? " (inherited by contents)" : "",
                    extra_vm ? "; replaced other entries for the VM account" : "");
    return 1;
}

gboolean
hyperv_recreate_acl(VmshiftBackend *b, const char *vm, VmshiftJob *job, guint32 flags,
                    GError **error)
{
    g_autoptr(HvVm) v = NULL;
    g_autofree char *sid = NULL;
    g_autofree char *summary = NULL;
    g_autoptr(GPtrArray) files = g_ptr_array_new_with_free_func(g_free);
    g_autoptr(GArray) dirs = g_array_new(FALSE, FALSE, sizeof(gboolean));
    guint changed = 0, absent = 0;
    const char *guid, *root, *cfg;
    g_autofree char *vmrs = NULL;

    if (!vmshift_check_flags(flags, 0, "recreate_acl", error))
        return FALSE;
    v = hv_find_vm(b, vm, FALSE, error);
    if (v == NULL)
        return FALSE;
    guid = hv_inst_get(v->cs, "Name");
    sid = hv_vm_sid(guid);
    if (sid == NULL) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_PROTOCOL,
                    "Hyper-V host %s: VM id %s is not a GUID", v->host->name, guid);
        return FALSE;
    }
    root = hv_inst_get(v->vssd, "ConfigurationDataRoot");
    cfg = hv_inst_get(v->vssd, "ConfigurationFile");
#define ADD(p, d)                            \
    do {                                     \
        gboolean d_ = (d);                   \
        g_ptr_array_add(files, g_strdup(p)); \
        g_array_append_val(dirs, d_);        \
    } while (0)
    if (root != NULL)
        ADD(root, TRUE);
    /* the folder of the .vmcx ("ROOT\\Virtual Machines"): Hyper-V grants the
     * VM there too (docs/design/hyperv.md §3.2) */
    if (cfg != NULL && strrchr(cfg, '\\') != NULL) {
        g_autofree char *folder = g_strndup(cfg, (gsize)(strrchr(cfg, '\\') - cfg));
        if (root == NULL || g_ascii_strcasecmp(folder, root) != 0)
            ADD(folder, TRUE);
    }
    if (cfg != NULL)
        ADD(cfg, FALSE);
    /* The runtime state file beside a .vmcx (configuration version 6.2+):
     * the worker process opens it at start (issue 13). */
    if (cfg != NULL && g_str_has_suffix(cfg, ".vmcx")) {
        vmrs = g_strdup(cfg);
        memcpy(vmrs + strlen(vmrs) - 4, "vmrs", 4);
        ADD(vmrs, FALSE);
    }
    for (guint i = 0; i < v->sasds->len; i++) {
        const char *p = hv_inst_get(v->sasds->pdata[i], "HostResource");
        g_autofree char *parent = NULL;
        if (p == NULL)
            continue;
        ADD(p, FALSE);
        /* every parent of a differencing chain (issue 13) */
        parent = hv_vhd_parent(v->host, p);
        for (guint depth = 0; parent != NULL && depth < HV_MAX_VHD_CHAIN; depth++) {
            char *next = hv_vhd_parent(v->host, parent);
            ADD(parent, FALSE);
            g_free(parent);
            parent = next;
        }
    }
#undef ADD
    for (guint i = 0; i < files->len; i++) {
        g_autoptr(GError) e = NULL;
        int r;
        if (g_cancellable_set_error_if_cancelled(vmshift_job_get_cancellable(job), error))
            return FALSE;
        r = fix_acl(v->host, files->pdata[i], g_array_index(dirs, gboolean, i), sid, job, &e);
        if (r < 0 && vmrs != NULL && strcmp(files->pdata[i], vmrs) == 0
            && g_error_matches(e, VMSHIFT_ERROR, VMSHIFT_ERROR_NOT_FOUND)) {
            /* no runtime state file (yet): nothing to grant */
            vmshift_job_log(job, VMSHIFT_LOG_DEBUG, "%s: not there", vmrs);
            absent++;
            continue;
        }
        if (r < 0) {
            g_propagate_error(error, g_steal_pointer(&e));
            g_prefix_error(error, "recreating ACLs of %s: ", hv_inst_get(v->cs, "ElementName"));
            return FALSE;
        }
        changed += (guint)r;
        vmshift_job_set_progress(job, 100.0 * (i + 1) / files->len);
    }
    summary = g_strdup_printf("NT VIRTUAL MACHINE\\%s (%s): %u of %u files and folders "
                              "updated on %s",
                              guid, sid, changed, files->len - absent, v->host->name);
    vmshift_job_set_result(job, "acl", summary);
    vmshift_job_log(job, VMSHIFT_LOG_INFO, "%s", summary);
    return TRUE;
}
