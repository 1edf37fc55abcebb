/*
 * ESX plugin: the result of a move, read back. After the relocation the
 * plugin reads the VM again (runtime.host, runtime.powerState,
 * config.files.vmPathName, config.hardware.device) and compares each field
 * with the plan: a server that accepted the RelocateVM_Task and did not
 * apply all of it fails the job, naming the field. That happens: govmomi's
 * simulator completes the task while ignoring the NIC deviceChange and
 * leaving the files where they were (docs/design/vsphere.md §0.3);
 * tests/vcsim's /ctl/ignore reproduces it on the launcher.
 */
#include "config.h"

#include "esx-impl.h"
#include "esx-ops.h"

static const char *const verify_paths[] = { "runtime.host", "runtime.powerState",
                                            "config.files.vmPathName", "config.hardware.device",
                                            NULL };

/* The datastore name of the file backing of disk @key in @vm, or NULL. */
static char *
disk_ds(const EsxObject *vm, const char *key)
{
    const xmlNode *d = esx_find_device(vm, key, FALSE);
    xmlNode *b = vmshift_xml_child(d, VMSHIFT_NS_VIM25, "backing");
    g_autofree char *file = vmshift_xml_child_text(b, VMSHIFT_NS_VIM25, "fileName");
    return esx_ds_name_of_path(file);
}

/* Where disk @key is expected: its --disk-path target, else --path, else
 * where it was (NULL: a disk added during the move without --path). */
static char *
expected_disk_ds(const EsxPlan *p, const char *key)
{
    for (guint i = 0; i < p->disks->len; i++) {
        const EsxDiskTarget *t = &g_array_index(p->disks, EsxDiskTarget, i);
        if (g_strcmp0(t->key, key) == 0)
            return g_strdup(t->ds_name);
    }
    if (p->dest_ds != NULL)
        return esx_prop_text(p->dest_ds, "name");
    return disk_ds(p->vm, key);
}

/* The network name of NIC @key of @vm, or NULL. */
static char *
nic_net(const EsxObject *vm, EsxInventory *inv, const char *key)
{
    const xmlNode *d = esx_find_device(vm, key, TRUE);
    if (d == NULL)
        return NULL;
    g_autofree char *moref = NULL;
    char *name = NULL;
    esx_nic_network(d, inv->networks, &moref, &name);
    return name != NULL ? name : g_steal_pointer(&moref);
}

static const char *
expected_nic_net(const EsxPlan *p, const char *key)
{
    for (guint i = 0; i < p->nics->len; i++) {
        const EsxNicTarget *t = &g_array_index(p->nics, EsxNicTarget, i);
        if (g_strcmp0(t->key, key) == 0)
            return t->net_name;
    }
    return NULL;
}

static gboolean
mismatch(const EsxPlan *p, const char *field, const char *want, const char *found, GError **error)
{
    if (g_strcmp0(want, found) == 0)
        return FALSE;
    g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_FAILED,
                "VM %s: the server reports the move done but %s is '%s', expected '%s'", p->vm_name,
                field, found != NULL ? found : "(none)", want != NULL ? want : "(none)");
    return TRUE;
}

/* Each disk and NIC of @after against the plan; @nics/@disks count them. */
static gboolean
verify_devices(EsxInventory *inv, const EsxPlan *p, const EsxObject *after, guint *disks,
               guint *nics, GError **error)
{
    for (xmlNode *d = vmshift_xml_first_element(esx_prop(after, "config.hardware.device"));
         d != NULL; d = vmshift_xml_next_element(d)) {
        g_autofree char *t = vmshift_xml_xsi_type(d);
        g_autofree char *key = vmshift_xml_child_text(d, VMSHIFT_NS_VIM25, "key");
        if (g_strcmp0(t, "VirtualDisk") == 0) {
            g_autofree char *want = expected_disk_ds(p, key);
            g_autofree char *found = disk_ds(after, key);
            g_autofree char *field = g_strdup_printf("the datastore of disk %s", key);
            if (want != NULL && mismatch(p, field, want, found, error))
                return FALSE;
            (*disks)++;
        } else if (esx_is_nic_type(t)) {
            const char *mapped = expected_nic_net(p, key);
            g_autofree char *before = mapped == NULL ? nic_net(p->vm, inv, key) : NULL;
            g_autofree char *found = nic_net(after, inv, key);
            g_autofree char *field = g_strdup_printf("the network of adapter %s", key);
            if (mismatch(p, field, mapped != NULL ? mapped : before, found, error))
                return FALSE;
            (*nics)++;
        }
    }
    return TRUE;
}

/* What the check after the switchover and the verification both read, in
 * one call. */
static const char *const after_paths[] = {
    "runtime.host",           "runtime.powerState", "config.files.vmPathName",
    "config.hardware.device", "snapshot",           NULL
};

EsxObject *
esx_read_after_move(VmshiftBackend *be, const char *vm, EsxResult **keep, GError **error)
{
    return esx_retrieve_one(be, "VirtualMachine", vm, after_paths, keep, NULL, error);
}

gboolean
esx_verify_move(VmshiftBackend *be, const VmshiftMigrationSpec *spec, EsxInventory *inv,
                const EsxPlan *p, VmshiftJob *job, GError **error)
{
    return esx_verify_move_read(be, spec, inv, p, job, NULL, error);
}

gboolean
esx_verify_move_read(VmshiftBackend *be, const VmshiftMigrationSpec *spec, EsxInventory *inv,
                     const EsxPlan *p, VmshiftJob *job, const EsxObject *read, GError **error)
{
    g_autoptr(EsxResult) keep = NULL;
    g_autoptr(GError) rerr = NULL;
    const EsxObject *after = read != NULL ? read
                                          : esx_retrieve_one(be, "VirtualMachine", p->vm->value,
                                                             verify_paths, &keep, NULL, &rerr);
    if (after == NULL) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_FAILED,
                    "VM %s: the move could not be verified: %s", p->vm_name, rerr->message);
        return FALSE;
    }
    g_autofree char *host = esx_prop_text(after, "runtime.host");
    g_autofree char *host_name = esx_name_of(inv->hosts, host);
    const char *want_host = p->dest_host != NULL ? p->dest_host_name : p->src_host_name;
    if (mismatch(p, "the host", want_host, host_name, error))
        return FALSE;
    g_autofree char *power = esx_prop_text(after, "runtime.powerState");
    const char *want_power = spec->start && spec->type == VMSHIFT_MIGRATION_COLD ? "poweredOn"
                                                                                 : p->power;
    if (mismatch(p, "the power state", want_power, power, error))
        return FALSE;
    g_autofree char *home_path = esx_prop_text(after, "config.files.vmPathName");
    g_autofree char *home = esx_ds_name_of_path(home_path);
    g_autofree char *before_path = esx_prop_text(p->vm, "config.files.vmPathName");
    g_autofree char *want_home = p->dest_ds != NULL ? esx_prop_text(p->dest_ds, "name")
                                                    : esx_ds_name_of_path(before_path);
    if (want_home != NULL && mismatch(p, "the home datastore", want_home, home, error))
        return FALSE;
    guint disks = 0, nics = 0;
    if (!verify_devices(inv, p, after, &disks, &nics, error))
        return FALSE;
    g_autofree char *what = g_strdup_printf("host,power%s%s%s", want_home != NULL ? ",home" : "",
                                            disks > 0 ? ",disks" : "", nics > 0 ? ",nics" : "");
    vmshift_job_set_result(job, "verified", what);
    vmshift_job_log(job, VMSHIFT_LOG_INFO,
                    "VM %s verified on the server: host %s, %s, %u disk(s), %u NIC(s)", p->vm_name,
                    host_name, power, disks, nics);
    return TRUE;
}
