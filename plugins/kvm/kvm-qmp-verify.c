/* vmshift KVM plugin, qmp transport: the result of a move, read back.
 * After a live, cold or storage migration the plugin finds the VM again on
 * the hosts, asks QEMU (the pid file's process; QMP query-status and
 * query-block of a running VM) and compares with the spec: the host, the
 * power state, each disk's image file, each mapped NIC's network. A
 * difference fails the job, naming it; what matched is the "verified"
 * result. */
#include "config.h"

#include <string.h>

#include "kvm-qmp.h"

char *
kvm_qemu_disk_file(json_object *blocks, const char *id)
{
    g_autofree char *want = g_strdup_printf("/machine/peripheral/%s-dev/", id);
    gsize n = json_object_is_type(blocks, json_type_array) ? json_object_array_length(blocks) : 0;
    for (gsize i = 0; i < n; i++) {
        json_object *e = json_object_array_get_idx(blocks, i);
        const char *qdev = vmshift_json_get_string(e, "qdev");
        const char *file = vmshift_json_get_string(e, "inserted/file");
        if (qdev && (g_str_has_prefix(qdev, want) || !strncmp(qdev, want, strlen(want) - 1)))
            return g_strdup(file);
    }
    return NULL;
}

/* The first difference between the VM @def on @h and the spec, or NULL. */
static char *
difference(KvmMig *m, KvmHost *h, const KvmVmDef *def, gboolean *running)
{
    KvmHost *want = m->spec->type == VMSHIFT_MIGRATION_STORAGE ? m->src : m->dst;
    /* a storage move keeps the power state; a cold move starts with --start */
    gboolean want_run = m->spec->type == VMSHIFT_MIGRATION_STORAGE ? m->src_running
                        : m->spec->type == VMSHIFT_MIGRATION_COLD  ? (gboolean)(m->spec->start != 0)
                                                                   : TRUE;
    *running = kvm_vm_is_running(h, def->name);
    if (h != want)
        return g_strdup_printf("it is on %s, not %s", h->name, want->name);
    if (*running != want_run)
        return g_strdup_printf("QEMU %s on %s", *running ? "runs it" : "does not run it", h->name);
    json_object *blocks = NULL;
    if (*running) {
        g_autoptr(GError) e = NULL;
        /* QEMU's monitor takes one client: the job's own connection to
         * that QEMU, when it has one */
        VmshiftQmp *own = h == m->dst && m->dq ? m->dq : h == m->src && m->sq ? m->sq : NULL;
        VmshiftQmp *q = own ? own : kvm_vm_qmp(h, def->name, m->b->qmp_timeout_ms, m->cancel, &e);
        blocks = q ? vmshift_qmp_execute(q, "query-block", NULL, QMP_CMD_TIMEOUT, &e) : NULL;
        if (q && !own)
            vmshift_qmp_free(q);
        if (!blocks)
            return g_strdup_printf("QEMU on %s could not be asked: %s", h->name,
                                   e ? e->message : "no answer");
    }
    char *bad = NULL;
    for (guint i = 0; !bad && i < def->disks->len; i++) {
        const KvmDiskDef *dk = def->disks->pdata[i];
        const char *dir = vmshift_migration_spec_disk_dir(m->spec, dk->id);
        g_autofree char *open_file = blocks ? kvm_qemu_disk_file(blocks, dk->id) : NULL;
        const char *file = blocks ? open_file : dk->path;
        g_autofree char *in = file ? g_path_get_dirname(file) : NULL;
        if (blocks && g_strcmp0(open_file, dk->path) != 0)
            bad = g_strdup_printf("QEMU has %s open for disk %s, the definition says %s",
                                  open_file ? open_file : "nothing", dk->id, dk->path);
        else if (dir && (!in || !g_str_has_prefix(in, dir)))
            bad = g_strdup_printf("disk %s is %s, not under %s", dk->id, file ? file : "missing",
                                  dir);
    }
    if (blocks)
        json_object_put(blocks);
    for (guint i = 0; !bad && m->spec->networks && i < m->spec->networks->len; i++) {
        const VmshiftMapping *map = m->spec->networks->pdata[i];
        for (guint j = 0; j < def->nics->len; j++) {
            const KvmNicDef *n = def->nics->pdata[j];
            if ((!g_strcmp0(n->id, map->key) || (n->mac && !g_ascii_strcasecmp(n->mac, map->key)))
                && g_strcmp0(n->network, map->value) != 0)
                bad = g_strdup_printf("NIC %s is on network %s, not %s", n->id,
                                      n->network ? n->network : "(none)", map->value);
        }
    }
    return bad;
}

gboolean
kvm_mig_verify(KvmMig *m, GError **error)
{
    g_autoptr(KvmVmDef) def = NULL;
    const char *name = m->sdef->name;
    KvmHost *h = kvm_backend_locate_vm(m->b, name, &def, error);
    if (!h) {
        g_prefix_error(error, "VM %s: the move could not be verified: ", name);
        return FALSE;
    }
    gboolean running = FALSE;
    g_autofree char *bad = difference(m, h, def, &running);
    vmshift_job_set_location(m->job, h->name, running ? "running" : "stopped");
    if (bad) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_FAILED, "VM %s was not moved as asked: %s",
                    name, bad);
        return FALSE;
    }
    vmshift_job_set_result(m->job, "verified", "host,power,disks,nics");
    vmshift_job_log(m->job, VMSHIFT_LOG_INFO, "VM %s verified: on %s, %s, %u disk(s), %u NIC(s)",
                    name, h->name, running ? "running" : "stopped", def->disks->len,
                    def->nics->len);
    return TRUE;
}
