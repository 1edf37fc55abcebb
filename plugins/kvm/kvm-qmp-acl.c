/* vmshift KVM plugin: access rules on image files (owner, mode, POSIX ACL
 * via libacl, SELinux): the qmp transport's recreate_acl, and the model
 * capture/apply both transports use (kvm_acl_*, kvm.h). */
#include "config.h"

#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <sys/acl.h>
#include <acl/libacl.h>
#ifdef HAVE_SELINUX
#include <selinux/selinux.h>
#endif

#include "kvm-qmp.h"

/* ---- ACLs ----------------------------------------------------------------- */

/*
 * The ACL model is computed here with libacl whatever the host; reading and
 * writing a file's owner, mode, ACL and label goes through the file system
 * on a local host, and through stat/getfacl/setfacl/chown/chmod/chcon run
 * over ssh on a remote one (same semantics: getfacl's text form is what
 * acl_from_text reads, and setfacl --set-file takes acl_to_text's).
 */
typedef struct {
    guint32 uid, gid;
    guint mode; /* 07777 bits */
} FileOwner;

static gboolean
fs_stat(KvmHost *h, const char *path, FileOwner *o, GError **error)
{
    if (!h || kvm_host_is_local(h)) {
        struct stat st;
        if (stat(path, &st) != 0) {
            g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_NOT_FOUND, "%s: %s", path,
                        g_strerror(errno));
            return FALSE;
        }
        o->uid = st.st_uid;
        o->gid = st.st_gid;
        o->mode = st.st_mode & 07777;
        return TRUE;
    }
    const char *argv[] = { "stat", "-c", "%u %g %a", "--", path, NULL };
    char *out = NULL;
    if (!kvm_host_run(h, argv, NULL, &out, 30, error))
        return FALSE;
    unsigned long u, g;
    unsigned int m;
    gboolean ok = sscanf(out, "%lu %lu %o", &u, &g, &m) == 3;
    g_free(out);
    if (!ok) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_PROTOCOL,
                    "host %s: cannot read the owner and mode of %s", h->name, path);
        return FALSE;
    }
    o->uid = (guint32)u;
    o->gid = (guint32)g;
    o->mode = m & 07777;
    return TRUE;
}

static acl_t
fs_get_acl(KvmHost *h, const char *path, GError **error)
{
    if (!h || kvm_host_is_local(h)) {
        acl_t a = acl_get_file(path, ACL_TYPE_ACCESS);
        if (!a)
            g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_FAILED, "reading the ACL of %s: %s",
                        path, g_strerror(errno));
        return a;
    }
    /* -c: no header, -E: no effective-rights comments, -n: numeric ids,
     * -p: keep the leading '/' */
    const char *argv[] = { "getfacl", "-cEnp", "--", path, NULL };
    char *out = NULL;
    if (!kvm_host_run(h, argv, NULL, &out, 30, error))
        return NULL;
    acl_t a = acl_from_text(out);
    g_free(out);
    if (!a)
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_PROTOCOL,
                    "host %s: getfacl of %s gave an ACL that cannot be read", h->name, path);
    return a;
}

static gboolean
fs_set_acl(KvmHost *h, const char *path, acl_t acl, GError **error)
{
    if (!h || kvm_host_is_local(h)) {
        if (acl_set_file(path, ACL_TYPE_ACCESS, acl) != 0) {
            g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_PERMISSION, "setting the ACL of %s: %s",
                        path, g_strerror(errno));
            return FALSE;
        }
        return TRUE;
    }
    /* numeric ids: names may map to other ids over there */
    char *t = acl_to_any_text(acl, NULL, '\n', TEXT_NUMERIC_IDS);
    const char *argv[] = { "setfacl", "--set-file=-", "--", path, NULL };
    gboolean ok = kvm_host_run(h, argv, t ? t : "", NULL, 30, error);
    acl_free(t);
    return ok;
}

static gboolean
fs_chown(KvmHost *h, const char *path, guint32 uid, guint32 gid, GError **error)
{
    if (!h || kvm_host_is_local(h)) {
        if (chown(path, (uid_t)uid, (gid_t)gid) != 0) {
            g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_PERMISSION, "chown %s: %s", path,
                        g_strerror(errno));
            return FALSE;
        }
        return TRUE;
    }
    char *ids = g_strdup_printf("%u:%u", uid, gid);
    const char *argv[] = { "chown", ids, "--", path, NULL };
    gboolean ok = kvm_host_run(h, argv, NULL, NULL, 30, error);
    g_free(ids);
    return ok;
}

static gboolean
fs_chmod(KvmHost *h, const char *path, guint mode, GError **error)
{
    if (!h || kvm_host_is_local(h)) {
        if (chmod(path, (mode_t)mode) != 0) {
            g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_PERMISSION, "chmod %s: %s", path,
                        g_strerror(errno));
            return FALSE;
        }
        return TRUE;
    }
    char *m = g_strdup_printf("%04o", mode);
    const char *argv[] = { "chmod", m, "--", path, NULL };
    gboolean ok = kvm_host_run(h, argv, NULL, NULL, 30, error);
    g_free(m);
    return ok;
}

/* The uid of @user on the host. */
static gboolean
fs_user_uid(KvmHost *h, const char *user, guint32 *uid, GError **error)
{
    if (!h || kvm_host_is_local(h)) {
        struct passwd *pw = getpwnam(user);
        if (!pw) {
            g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_CONFIG, "QEMU user '%s' does not exist",
                        user);
            return FALSE;
        }
        *uid = pw->pw_uid;
        return TRUE;
    }
    const char *argv[] = { "id", "-u", "--", user, NULL };
    char *out = NULL;
    GError *local = NULL;
    if (!kvm_host_run(h, argv, NULL, &out, 30, &local)) {
        if (local->code == VMSHIFT_ERROR_CONNECTION)
            g_propagate_error(error, local);
        else {
            g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_CONFIG,
                        "QEMU user '%s' does not exist on host %s", user, h->name);
            g_error_free(local);
        }
        return FALSE;
    }
    char *end = NULL;
    guint64 v = g_ascii_strtoull(out, &end, 10);
    gboolean ok = end != out;
    g_free(out);
    if (!ok) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_PROTOCOL,
                    "host %s: cannot read the uid of '%s'", h->name, user);
        return FALSE;
    }
    *uid = (guint32)v;
    return TRUE;
}

/* The file's SELinux label where SELinux is enabled on the host, else NULL. */
static char *
fs_get_label(KvmHost *h, const char *path)
{
    if (!h || kvm_host_is_local(h)) {
#ifdef HAVE_SELINUX
        char *con = NULL;
        if (is_selinux_enabled() > 0 && getfilecon(path, &con) >= 0) {
            char *r = g_strdup(con);
            freecon(con);
            return r;
        }
#endif
        return NULL;
    }
    const char *probe[] = { "selinuxenabled", NULL };
    if (!kvm_host_run(h, probe, NULL, NULL, 30, NULL))
        return NULL; /* disabled, or no SELinux tools there */
    const char *argv[] = { "stat", "-c", "%C", "--", path, NULL };
    char *out = NULL;
    if (!kvm_host_run(h, argv, NULL, &out, 30, NULL))
        return NULL;
    g_strstrip(out);
    if (!*out || !strcmp(out, "?")) {
        g_free(out);
        return NULL;
    }
    return out;
}

static gboolean
fs_set_label(KvmHost *h, const char *path, const char *label, GError **error)
{
    if (!h || kvm_host_is_local(h)) {
#ifdef HAVE_SELINUX
        if (setfilecon(path, label) != 0) {
            g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_PERMISSION,
                        "setting the SELinux label of %s: %s", path, g_strerror(errno));
            return FALSE;
        }
        return TRUE;
#else
        (void)path;
        (void)label;
        (void)error;
        return TRUE;
#endif
    }
    const char *argv[] = { "chcon", "--", label, path, NULL };
    return kvm_host_run(h, argv, NULL, NULL, 30, error);
}

static char *
acl_text_of(acl_t acl)
{
    char *t = acl_to_any_text(acl, NULL, ',', TEXT_ABBREVIATE | TEXT_NUMERIC_IDS);
    char *r = g_strdup(t ? t : "");
    acl_free(t);
    return r;
}

/* Sets @uid's entry in @acl to @perms (adding it) and recomputes the mask. */
static gboolean
acl_grant(acl_t *acl, uid_t uid, gboolean write)
{
    acl_entry_t e;
    int r = acl_get_entry(*acl, ACL_FIRST_ENTRY, &e);
    acl_entry_t found = NULL;
    while (r == 1) {
        acl_tag_t tag;
        acl_get_tag_type(e, &tag);
        if (tag == ACL_USER) {
            uid_t *q = acl_get_qualifier(e);
            if (q && *q == uid)
                found = e;
            acl_free(q);
        }
        r = acl_get_entry(*acl, ACL_NEXT_ENTRY, &e);
    }
    if (!found) {
        if (acl_create_entry(acl, &found) != 0)
            return FALSE;
        acl_set_tag_type(found, ACL_USER);
        acl_set_qualifier(found, &uid);
    }
    acl_permset_t ps;
    acl_get_permset(found, &ps);
    acl_clear_perms(ps);
    acl_add_perm(ps, ACL_READ);
    if (write)
        acl_add_perm(ps, ACL_WRITE);
    acl_set_permset(found, ps);
    /* a later chmod may have narrowed the mask: recompute it */
    return acl_calc_mask(acl) == 0;
}

/*
 * Makes @path on @h (NULL: this machine) match @dk's model (owner, mode,
 * ACL, label) plus rw (r for backing files) for @user. Changes are appended
 * to @changes.
 */
static void
acl_release(acl_t a)
{
    acl_free(a);
}

typedef acl_t KvmAcl;
G_DEFINE_AUTO_CLEANUP_FREE_FUNC(KvmAcl, acl_release, NULL)

/* @want, the model's ACL plus @user's access (rw, r without @write) */
static gboolean
grant_user(KvmHost *h, const char *path, const KvmDiskDef *dk, const FileOwner *st,
           const char *user, gboolean write, acl_t *want, GError **error)
{
    guint32 uid;
    if (!fs_user_uid(h, user, &uid, error))
        return FALSE;
    if (uid != (guint32)(dk->acl_uid >= 0 ? dk->acl_uid : (gint64)st->uid)
        && !acl_grant(want, (uid_t)uid, write)) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_FAILED, "%s: cannot build the ACL", path);
        return FALSE;
    }
    return TRUE;
}

/* The ACL of @path made @dk's model plus @user's access. */
static gboolean
apply_acl(KvmHost *h, const char *path, const KvmDiskDef *dk, const FileOwner *st, const char *user,
          gboolean write, GPtrArray *changes, GError **error)
{
    g_auto(KvmAcl) cur = fs_get_acl(h, path, error);
    if (!cur)
        return FALSE;
    g_autofree char *before = acl_text_of(cur);
    g_auto(KvmAcl) want = dk->acl_text ? acl_from_text(dk->acl_text) : acl_dup(cur);
    if (!want) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_CONFIG, "%s: bad ACL model '%s'", path,
                    dk->acl_text ? dk->acl_text : "");
        return FALSE;
    }
    if (user && !grant_user(h, path, dk, st, user, write, &want, error))
        return FALSE;
    if (acl_valid(want) != 0) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_CONFIG, "%s: ACL model is not valid", path);
        return FALSE;
    }
    g_autofree char *after = acl_text_of(want);
    if (strcmp(before, after) == 0)
        return TRUE;
    /* the ACL carries the mode bits (owner, group/mask, other) */
    if (!fs_set_acl(h, path, want, error))
        return FALSE;
    g_ptr_array_add(changes, g_strdup_printf("%s: ACL %s -> %s", path, before, after));
    return TRUE;
}

static gboolean
apply_model(KvmHost *h, const char *path, KvmDiskDef *dk, const char *user, gboolean write,
            GPtrArray *changes, GError **error)
{
    FileOwner st;
    if (!fs_stat(h, path, &st, error))
        return FALSE;
    if (dk->acl_uid >= 0 && (st.uid != (guint32)dk->acl_uid || st.gid != (guint32)dk->acl_gid)) {
        if (!fs_chown(h, path, (guint32)dk->acl_uid, (guint32)dk->acl_gid, error))
            return FALSE;
        g_ptr_array_add(changes,
                        g_strdup_printf("%s: owner %u:%u -> %" G_GINT64_FORMAT ":%" G_GINT64_FORMAT,
                                        path, st.uid, st.gid, dk->acl_uid, dk->acl_gid));
    }
    if (!apply_acl(h, path, dk, &st, user, write, changes, error))
        return FALSE;
    /* special bits are not part of the ACL */
    if (dk->acl_text && fs_stat(h, path, &st, NULL)
        && (st.mode & 07000) != (dk->acl_mode & 07000)) {
        guint nm = (st.mode & 0777) | (dk->acl_mode & 07000);
        if (fs_chmod(h, path, nm, NULL))
            g_ptr_array_add(changes, g_strdup_printf("%s: mode %04o -> %04o", path, st.mode, nm));
    }
    if (dk->acl_label) {
        g_autofree char *con = fs_get_label(h, path);
        if (con && g_strcmp0(con, dk->acl_label) != 0) {
            if (!fs_set_label(h, path, dk->acl_label, error))
                return FALSE;
            g_ptr_array_add(changes,
                            g_strdup_printf("%s: label %s -> %s", path, con, dk->acl_label));
        }
    }
    return TRUE;
}

/* Records @path's current owner, mode, ACL and label (on @h, NULL: this
 * machine) as @dk's model. */
static gboolean
capture_model(KvmHost *h, const char *path, KvmDiskDef *dk, GError **error)
{
    FileOwner st;
    if (!fs_stat(h, path, &st, error))
        return FALSE;
    acl_t a = fs_get_acl(h, path, error);
    if (!a)
        return FALSE;
    g_free(dk->acl_text);
    dk->acl_text = acl_text_of(a);
    acl_free(a);
    dk->acl_uid = st.uid;
    dk->acl_gid = st.gid;
    dk->acl_mode = st.mode;
    char *con = fs_get_label(h, path);
    if (con) {
        g_free(dk->acl_label);
        dk->acl_label = con;
    }
    return TRUE;
}

/* Records the access model of every disk that has none yet: called before
 * a migration so that the model travels with the definition. */
void
kvm_acl_capture_def(KvmHost *h, KvmVmDef *def)
{
    for (guint i = 0; i < def->disks->len; i++) {
        KvmDiskDef *dk = def->disks->pdata[i];
        if (!dk->acl_text)
            capture_model(h, dk->path, dk, NULL);
    }
}

gboolean
kvm_acl_capture(const char *path, KvmDiskDef *dk, GError **error)
{
    return capture_model(NULL, path, dk, error);
}

gboolean
kvm_acl_apply_def(const char *path, KvmDiskDef *dk, const char *user, gboolean write,
                  GPtrArray *changes, GError **error)
{
    return apply_model(NULL, path, dk, user, write, changes, error);
}

gboolean
kvm_acl_apply(const char *path, const char *model, const char *user, GPtrArray *changes,
              GError **error)
{
    KvmDiskDef dk = { .acl_uid = -1, .acl_gid = -1 };
    if (model && !capture_model(NULL, model, &dk, error))
        return FALSE;
    gboolean ok = apply_model(NULL, path, &dk, user, TRUE, changes, error);
    g_free(dk.acl_text);
    g_free(dk.acl_label);
    return ok;
}

gboolean
kvm_qmp_recreate_acl(KvmBackend *b, const char *vmname, VmshiftJob *job, GError **error)
{
    g_autoptr(KvmVmDef) def = NULL;
    KvmHost *h = kvm_backend_locate_vm(b, vmname, &def, error);
    if (!h)
        return FALSE;
    if (job && !vmshift_job_set_phase(job, VMSHIFT_PHASE_ACL, error))
        return FALSE;
    g_autoptr(GPtrArray) changes = g_ptr_array_new_with_free_func(g_free);
    gboolean ok = TRUE, captured = FALSE;
    guint files = 0;
    for (guint i = 0; i < def->disks->len && ok; i++) {
        KvmDiskDef *dk = def->disks->pdata[i];
        if (!dk->acl_text) {
            /* first time: the file as it is now is the model */
            ok = capture_model(h, dk->path, dk, error);
            captured = TRUE;
            if (!ok)
                break;
        }
        ok = apply_model(h, dk->path, dk, h->qemu_user, TRUE, changes, error);
        files++;
        /* backing files: the QEMU user needs to read them */
        if (ok && h->qemu_user) {
            g_autoptr(VmshiftVm) info = kvm_vm_describe(h, def);
            VmshiftDisk *d = vmshift_vm_find_disk(info, dk->id);
            for (guint k = 0; d && d->backing_chain && k < d->backing_chain->len && ok; k++) {
                KvmDiskDef bk = { .acl_uid = -1, .acl_gid = -1 };
                ok = apply_model(h, d->backing_chain->pdata[k], &bk, h->qemu_user, FALSE, changes,
                                 error);
                files++;
            }
        }
    }
    if (ok && captured)
        ok = kvm_vm_def_save(h, def, error);
    if (job) {
        for (guint i = 0; i < changes->len; i++)
            vmshift_job_log(job, VMSHIFT_LOG_INFO, "acl: %s", (char *)changes->pdata[i]);
        g_autofree char *sum = g_strdup_printf("%u file(s) checked, %u change(s)%s", files,
                                               changes->len,
                                               h->qemu_user ? "" : " (no qemu-user on this host)");
        vmshift_job_set_result(job, "acl", sum);
    }
    return ok;
}
