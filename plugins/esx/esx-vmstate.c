/*
 * ESX plugin: the state of a VM that a move or a watch compares over time
 * (its disks, snapshot count, host and power state), and where a job says
 * the VM is.
 */
#include "config.h"

#include "esx-impl.h"

void
esx_vm_state_clear(EsxVmState *s)
{
    g_clear_pointer(&s->disks, g_hash_table_unref);
    g_clear_pointer(&s->host, g_free);
}

const char *const esx_vm_state_paths[] = { "config.hardware.device", "snapshot", "runtime.host",
                                           "runtime.powerState", NULL };

gboolean
esx_vm_state(VmshiftBackend *be, const char *vm, EsxVmState *out, char **power, GError **error)
{
    g_autoptr(EsxResult) keep = NULL;
    EsxObject *o = esx_retrieve_one(be, "VirtualMachine", vm, esx_vm_state_paths, &keep, NULL,
                                    error);
    if (o == NULL)
        return FALSE;
    esx_vm_state_parse(o, out, power);
    return TRUE;
}

void
esx_vm_state_parse(const EsxObject *o, EsxVmState *out, char **power)
{
    esx_vm_state_clear(out);
    out->disks = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    for (xmlNode *d = vmshift_xml_first_element(esx_prop(o, "config.hardware.device")); d != NULL;
         d = vmshift_xml_next_element(d)) {
        g_autofree char *t = vmshift_xml_xsi_type(d);
        if (g_strcmp0(t, "VirtualDisk") != 0)
            continue;
        xmlNode *b = vmshift_xml_child(d, VMSHIFT_NS_VIM25, "backing");
        g_hash_table_insert(out->disks, vmshift_xml_child_text(d, VMSHIFT_NS_VIM25, "key"),
                            vmshift_xml_child_text(b, VMSHIFT_NS_VIM25, "fileName"));
    }
    out->snapshots = 0;
    esx_count_snapshots(esx_prop(o, "snapshot"), &out->snapshots);
    out->host = esx_prop_text(o, "runtime.host");
    if (power != NULL)
        *power = esx_prop_text(o, "runtime.powerState");
}

/* Disks in @now not in @before (added) or the reverse (removed). */
char *
esx_disk_diff(const EsxVmState *before, const EsxVmState *now, gboolean *added_out)
{
    GHashTableIter it;
    gpointer k, v;
    g_hash_table_iter_init(&it, now->disks);
    while (g_hash_table_iter_next(&it, &k, &v))
        if (!g_hash_table_contains(before->disks, k)) {
            *added_out = TRUE;
            return g_strdup_printf("disk %s (%s) was added", (char *)k,
                                   v != NULL ? (char *)v : "?");
        }
    g_hash_table_iter_init(&it, before->disks);
    while (g_hash_table_iter_next(&it, &k, &v))
        if (!g_hash_table_contains(now->disks, k)) {
            *added_out = FALSE;
            return g_strdup_printf("disk %s (%s) was removed", (char *)k,
                                   v != NULL ? (char *)v : "?");
        }
    return NULL;
}

/* Where the VM is now, for the job (by asking the server). */
void
esx_report_location(VmshiftBackend *be, EsxInventory *inv, VmshiftJob *job, const char *vm,
                    const char *fallback)
{
    g_auto(EsxVmState) st = { 0 };
    g_autofree char *power = NULL;
    g_autoptr(GError) err = NULL;
    if (esx_vm_state(be, vm, &st, &power, &err)) {
        g_autofree char *h = esx_name_of(inv->hosts, st.host);
        vmshift_job_set_location(job, h, power);
    } else {
        vmshift_job_set_location(job, fallback, "unknown: could not ask the server");
        vmshift_job_log(job, VMSHIFT_LOG_WARNING, "could not read where VM %s is: %s", vm,
                        err->message);
    }
}
