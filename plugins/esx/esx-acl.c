/*
 * ESX plugin: what a VM keeps across a move besides its disks: the
 * permissions set on the VM itself (AuthorizationManager) and its tags
 * (REST, esx-rest.c), recorded before the move and re-applied by
 * recreate_acl.
 */
#include "config.h"

#include <string.h>

#include "esx-impl.h"
#include "esx-ops.h"

/* The name of tag @id ("id\tname" lines saved by migrate as "tag-names"),
 * for messages; the id itself when it was not recorded. */
char *
esx_tag_label(const char *names, const char *id)
{
    g_auto(GStrv) lines = g_strsplit(names != NULL ? names : "", "\n", -1);
    for (guint i = 0; lines[i] != NULL; i++) {
        const char *tab = strchr(lines[i], '\t');
        if (tab != NULL && strncmp(lines[i], id, tab - lines[i]) == 0 && id[tab - lines[i]] == '\0')
            return g_strdup_printf("%s (%s)", tab + 1, id);
    }
    return g_strdup(id);
}

/* Re-attach the tags saved before the move that VM @vm lost. Tags come
 * second to the permissions: a tag that cannot be re-attached (deleted in
 * the meantime, REST session refused, …) is a warning in the job log and
 * a "NAME (ID): reason" entry in *failed ("; "-separated, NULL when none),
 * never an error. *summary gets "N tag(s) re-attached[; M tag(s) not
 * re-attached]", or "" when there is nothing to say (no tags recorded, or
 * no REST API). */
static void
recreate_tags(VmshiftBackend *be, VmshiftJob *job, const char *vm, const char *vmname,
              char **summary, char **failed)
{
    *summary = NULL;
    *failed = NULL;
    g_autofree char *saved = vmshift_job_get_saved(job, "tags");
    g_autofree char *names = vmshift_job_get_saved(job, "tag-names");
    if (saved == NULL || saved[0] == '\0') {
        *summary = g_strdup("");
        return;
    }
    g_auto(GStrv) want = g_strsplit(saved, ",", -1);
    g_autoptr(GError) err = NULL;
    g_autoptr(GPtrArray) now = esx_read_tags(be, vm, &err);
    if (now == NULL && esx_rest_unavailable(err)) {
        *summary = g_strdup("");
        return;
    }
    GString *bad = g_string_new(NULL);
    guint n = 0, n_bad = 0;
    for (guint i = 0; want[i] != NULL; i++) {
        if (want[i][0] == '\0')
            continue;
        gboolean have = FALSE;
        for (guint j = 0; now != NULL && j < now->len && !have; j++)
            have = g_strcmp0(now->pdata[j], want[i]) == 0;
        if (have)
            continue;
        g_autofree char *label = esx_tag_label(names, want[i]);
        g_autoptr(GError) aerr = NULL;
        if (now == NULL) {
            /* Which ones are missing is unknown: none is attached blindly. */
            aerr = g_error_new(VMSHIFT_ERROR, VMSHIFT_ERROR_FAILED, "cannot read the VM's tags: %s",
                               err->message);
        } else if (esx_attach_tag(be, want[i], vm, &aerr)) {
            vmshift_job_log(job, VMSHIFT_LOG_INFO, "VM %s: tag %s re-attached", vmname, label);
            n++;
            continue;
        }
        vmshift_job_log(job, VMSHIFT_LOG_WARNING, "VM %s: tag %s not re-attached: %s", vmname,
                        label, aerr->message);
        g_string_append_printf(bad, "%s%s: %s", n_bad ? "; " : "", label, aerr->message);
        n_bad++;
    }
    *summary = n_bad == 0
                   ? g_strdup_printf("%u tag(s) re-attached", n)
                   : g_strdup_printf("%u tag(s) re-attached; %u tag(s) not re-attached", n, n_bad);
    *failed = g_string_free(bad, n_bad == 0);
}

static EsxResult *
role_list(VmshiftBackend *be, GError **error)
{
    static const char *const paths[] = { "roleList", NULL };
    EsxResult *keep = NULL;
    if (!esx_connect(be, error))
        return NULL;
    if (be->auth_manager == NULL) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_NOT_SUPPORTED,
                    "%s has no authorization manager", be->url);
        return NULL;
    }
    gint64 now = g_get_monotonic_time();
    g_mutex_lock(&be->lock);
    if (be->roles != NULL && now - be->roles_at < ESX_ROLES_TTL_US)
        keep = esx_result_ref(be->roles);
    g_mutex_unlock(&be->lock);
    if (keep != NULL)
        return keep;
    if (esx_retrieve_one(be, "AuthorizationManager", be->auth_manager, paths, &keep, NULL, error)
        == NULL)
        return NULL;
    g_mutex_lock(&be->lock);
    esx_result_free(be->roles);
    be->roles = esx_result_ref(keep);
    be->roles_at = now;
    g_mutex_unlock(&be->lock);
    return keep;
}

/* The @want child of the role in AuthorizationManager.roleList whose @key
 * child is @value (NULL when there is none). */
static char *
role_lookup(EsxResult *roles, const char *key, const char *value, const char *want)
{
    EsxObject *am = roles->objects->len > 0 ? roles->objects->pdata[0] : NULL;
    for (xmlNode *r = vmshift_xml_first_element(esx_prop(am, "roleList")); r != NULL;
         r = vmshift_xml_next_element(r)) {
        g_autofree char *v = vmshift_xml_child_text(r, VMSHIFT_NS_VIM25, key);
        if (g_strcmp0(v, value) == 0)
            return vmshift_xml_child_text(r, VMSHIFT_NS_VIM25, want);
    }
    return NULL;
}

static char *
role_name(EsxResult *roles, const char *id)
{
    return role_lookup(roles, "roleId", id, "name");
}

static char *
role_id(EsxResult *roles, const char *name)
{
    return role_lookup(roles, "name", name, "roleId");
}

/* The VM's own permissions as "principal\tgroup\trole-name\tpropagate" lines. */
static gboolean
read_acl(VmshiftBackend *be, const char *vm, char **out, guint *count, GError **error)
{
    g_autoptr(EsxResult) roles = role_list(be, error);
    if (roles == NULL)
        return FALSE;
    g_autofree char *am = esx_moref_xml("_this", "AuthorizationManager", be->auth_manager);
    g_autofree char *ent = esx_moref_xml("entity", "VirtualMachine", vm);
    g_autofree char *body = g_strdup_printf(
        "<RetrieveEntityPermissions xmlns=\"urn:vim25\">%s%s<inherited>false</inherited>"
        "</RetrieveEntityPermissions>",
        am, ent);
    g_autoptr(xmlDoc) doc = esx_call(be, "RetrieveEntityPermissions", body, NULL, NULL, error);
    if (doc == NULL)
        return FALSE;
    GString *s = g_string_new(NULL);
    *count = 0;
    for (xmlNode *rv = vmshift_xml_first_element(vmshift_soap_body(doc)); rv != NULL;
         rv = vmshift_xml_next_element(rv)) {
        if (!vmshift_xml_node_is(rv, VMSHIFT_NS_VIM25, "returnval"))
            continue;
        g_autofree char *principal = vmshift_xml_child_text(rv, VMSHIFT_NS_VIM25, "principal");
        g_autofree char *group = vmshift_xml_child_text(rv, VMSHIFT_NS_VIM25, "group");
        g_autofree char *rid = vmshift_xml_child_text(rv, VMSHIFT_NS_VIM25, "roleId");
        g_autofree char *prop = vmshift_xml_child_text(rv, VMSHIFT_NS_VIM25, "propagate");
        g_autofree char *entity = vmshift_xml_child_text(rv, VMSHIFT_NS_VIM25, "entity");
        if (principal == NULL || rid == NULL)
            continue;
        if (entity != NULL && g_strcmp0(entity, vm) != 0)
            continue; /* inherited */
        g_autofree char *rn = role_name(roles, rid);
        if (rn == NULL)
            rn = g_strdup_printf("#%s", rid);
        if (strpbrk(principal, "\t\n") != NULL || strpbrk(rn, "\t\n") != NULL)
            continue;
        g_string_append_printf(s, "%s\t%s\t%s\t%s\n", principal,
                               g_strcmp0(group, "true") == 0 ? "group" : "user", rn,
                               g_strcmp0(prop, "true") == 0 ? "propagate" : "no-propagate");
        (*count)++;
    }
    *out = g_string_free(s, FALSE);
    return TRUE;
}

/* Saves VM @vm's permissions ("acl", for esx_recreate_acl) and tags
 * ("tags", "tag-names"; REST, nothing to do on a server without it) in the
 * job before a move. What cannot be read is a warning; FALSE only when a
 * journal write failed. */
gboolean
esx_acl_record(VmshiftBackend *be, VmshiftJob *job, const char *vm, const char *vmname,
               GError **error)
{
    g_autofree char *acl = NULL;
    guint n = 0;
    g_autoptr(GError) aerr = NULL;
    if (read_acl(be, vm, &acl, &n, &aerr)) {
        if (!vmshift_job_save(job, "acl", acl, error))
            return FALSE;
    } else {
        vmshift_job_log(job, VMSHIFT_LOG_WARNING, "could not read the permissions of VM %s: %s",
                        vmname, aerr->message);
    }
    g_autoptr(GError) terr = NULL;
    g_autoptr(GPtrArray) tags = esx_read_tags(be, vm, &terr);
    if (tags != NULL) {
        g_ptr_array_add(tags, NULL);
        g_autofree char *joined = g_strjoinv(",", (char **)tags->pdata);
        g_ptr_array_remove_index(tags, tags->len - 1);
        g_autofree char *names = esx_read_tag_names(be, tags);
        if (!vmshift_job_save(job, "tags", joined, error)
            || !vmshift_job_save(job, "tag-names", names, error))
            return FALSE;
    } else if (!esx_rest_unavailable(terr)) {
        vmshift_job_log(job, VMSHIFT_LOG_WARNING, "could not read the tags of VM %s: %s", vmname,
                        terr->message);
    }
    return TRUE;
}

gboolean
esx_recreate_acl(VmshiftBackend *be, const char *name, VmshiftJob *job, guint32 flags,
                 GError **error)
{
    if (!vmshift_check_flags(flags, 0, "recreate_acl", error))
        return FALSE;
    g_auto(EsxInventory) inv = { 0 };
    EsxObject *vm = esx_find_vm(be, &inv, name, error);
    if (vm == NULL)
        return FALSE;
    g_autofree char *vmname = esx_prop_text(vm, "name");
    g_autofree char *saved = vmshift_job_get_saved(job, "acl");
    g_autofree char *current = NULL;
    guint n_current = 0;
    if (!read_acl(be, vm->value, &current, &n_current, error))
        return FALSE;
    const char *want = saved != NULL ? saved : current;
    if (saved == NULL)
        vmshift_job_log(job, VMSHIFT_LOG_INFO,
                        "no permissions recorded before a move; re-applying VM %s's current ones",
                        vmname);
    g_autoptr(EsxResult) roles = role_list(be, error);
    if (roles == NULL)
        return FALSE;
    g_auto(GStrv) lines = g_strsplit(want, "\n", -1);
    g_autoptr(GString) perms = g_string_new(NULL);
    g_autoptr(GString) summary = g_string_new(NULL);
    guint n = 0;
    for (guint i = 0; lines[i] != NULL; i++) {
        if (lines[i][0] == '\0')
            continue;
        g_auto(GStrv) f = g_strsplit(lines[i], "\t", 4);
        if (g_strv_length(f) != 4)
            continue;
        g_autofree char *rid = role_id(roles, f[2]);
        if (rid == NULL) {
            g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_NOT_FOUND,
                        "cannot re-apply permission of %s on VM %s: role '%s' does not exist at %s",
                        f[0], vmname, f[2], be->url);
            return FALSE;
        }
        g_autofree char *ent = esx_moref_xml("entity", "VirtualMachine", vm->value);
        g_autofree char *ep = vmshift_xml_escape(f[0]);
        g_string_append_printf(perms,
                               "<permission>%s<principal>%s</principal><group>%s</group>"
                               "<roleId>%s</roleId><propagate>%s</propagate></permission>",
                               ent, ep, g_strcmp0(f[1], "group") == 0 ? "true" : "false", rid,
                               g_strcmp0(f[3], "propagate") == 0 ? "true" : "false");
        vmshift_job_log(job, VMSHIFT_LOG_INFO, "VM %s: %s %s → role %s (%s)", vmname, f[1], f[0],
                        f[2], f[3]);
        g_string_append_printf(summary, "%s%s=%s%s", n ? ", " : "", f[0], f[2],
                               g_strcmp0(f[3], "propagate") == 0 ? " (propagate)" : "");
        n++;
    }
    if (n > 0) {
        /* The complete list in one call: vCenter upserts per principal, the
         * simulator replaces the list; both end in the same state. */
        g_autofree char *am = esx_moref_xml("_this", "AuthorizationManager", be->auth_manager);
        g_autofree char *ent = esx_moref_xml("entity", "VirtualMachine", vm->value);
        g_autofree char *body = g_strdup_printf("<SetEntityPermissions xmlns=\"urn:vim25\">%s%s%s"
                                                "</SetEntityPermissions>",
                                                am, ent, perms->str);
        g_autoptr(xmlDoc) doc = esx_call(be, "SetEntityPermissions", body, NULL, NULL, error);
        if (doc == NULL)
            return FALSE;
    }
    /* The permissions are in place: from here on nothing fails the call. */
    g_autofree char *tags = NULL;
    g_autofree char *tags_failed = NULL;
    recreate_tags(be, job, vm->value, vmname, &tags, &tags_failed);
    g_autofree char *res = n > 0
                               ? g_strdup_printf("%u permission(s) re-applied: %s", n, summary->str)
                               : g_strdup("no permissions set on the VM itself");
    if (tags[0] != '\0') {
        g_autofree char *both = g_strdup_printf("%s; %s", res, tags);
        g_free(res);
        res = g_steal_pointer(&both);
    }
    vmshift_job_set_result(job, "acl", res);
    if (tags_failed != NULL)
        vmshift_job_set_result(job, "acl-tags", tags_failed);
    return TRUE;
}
