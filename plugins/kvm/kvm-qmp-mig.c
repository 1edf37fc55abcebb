/* vmshift KVM plugin, qmp transport: what live, cold and storage migration
 * share (the journal, the destination's rollback, images, networks), and
 * the migrate entry point.
 *
 * Journal (vmshift_job_save) keys, written before the step they describe:
 *   vm, src-host, dst-host     what moves where
 *   stage                      prepare | dst-started | transfer | completed |
 *                              cleanup | mirror | pivoted | copied | postcopy |
 *                              done | rolled-back
 *   source-paused              1: the job paused the source for the transfer
 *   dst-pid                    the destination QEMU
 *   new-files                  ';'-separated files created at the destination
 *                              (cleared once they are the VM's)
 *   moves                      ';'-separated ID|OLD|NEW: each disk given a new
 *                              file (kept: a repair finishes or undoes them)
 * repair() reads them to roll back (VM still runs at the source) or to
 * finish (the source QEMU already handed over).
 */
#include "config.h"

#include <signal.h>
#include <string.h>

#include "kvm-qmp.h"

static void
mig_clear(KvmMig *m)
{
    g_clear_pointer(&m->sq, vmshift_qmp_free);
    g_clear_pointer(&m->dq, vmshift_qmp_free);
    g_clear_pointer(&m->sdef, kvm_vm_def_free);
    g_clear_pointer(&m->ddef, kvm_vm_def_free);
    g_clear_pointer(&m->new_files, g_ptr_array_unref);
    g_clear_pointer(&m->moves, g_ptr_array_unref);
    kvm_tuning_clear(&m->t);
}

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(KvmMig, mig_clear)

gboolean
kvm_mig_save(KvmMig *m, const char *key, const char *value, GError **error)
{
    return vmshift_job_save(m->job, key, value, error);
}

gboolean
kvm_mig_save_new_files(KvmMig *m, GError **error)
{
    g_autoptr(GString) s = g_string_new(NULL);
    for (guint i = 0; i < m->new_files->len; i++) {
        if (i)
            g_string_append_c(s, ';');
        g_string_append(s, m->new_files->pdata[i]);
    }
    return kvm_mig_save(m, "new-files", s->str, error);
}

gboolean
kvm_mig_save_move(KvmMig *m, const char *id, const char *from, const char *to, GError **error)
{
    if (!m->moves)
        m->moves = g_ptr_array_new_with_free_func(g_free);
    g_ptr_array_add(m->moves, g_strdup_printf("%s|%s|%s", id, from, to));
    g_autoptr(GString) s = g_string_new(NULL);
    for (guint i = 0; i < m->moves->len; i++)
        g_string_append_printf(s, "%s%s", i ? ";" : "", (char *)m->moves->pdata[i]);
    return kvm_mig_save(m, "moves", s->str, error);
}

gboolean
kvm_mig_phase(KvmMig *m, VmshiftPhase p, GError **error)
{
    return vmshift_job_set_phase(m->job, p, error);
}

/* Past the point of no return there is nothing to roll back: a failed
 * journal or phase write is logged, and the move goes on (repair reads
 * the VM's state from the hosts, not only from the journal). */
void
kvm_mig_save_late(KvmMig *m, const char *key, const char *value)
{
    GError *local = NULL;
    if (!kvm_mig_save(m, key, value, &local)) {
        vmshift_job_log(m->job, VMSHIFT_LOG_WARNING, "journal (%s=%s): %s", key, value ? value : "",
                        local->message);
        g_clear_error(&local);
    }
}

void
kvm_mig_phase_late(KvmMig *m, VmshiftPhase p)
{
    GError *local = NULL;
    if (!kvm_mig_phase(m, p, &local)) {
        vmshift_job_log(m->job, VMSHIFT_LOG_WARNING, "%s", local->message);
        g_clear_error(&local);
    }
}

/* ---- helpers ----------------------------------------------------------- */

gboolean
kvm_mig_check_cancel(KvmMig *m, GError **error)
{
    return g_cancellable_set_error_if_cancelled(m->cancel, error);
}

/* Removes everything made at the destination; the VM runs at the source. */
void
kvm_mig_rollback_destination(KvmMig *m)
{
    if (g_getenv("VMSHIFT_KVM_DEBUG_KEEP_DEST"))
        return; /* debugging: leave the destination for inspection */
    g_clear_pointer(&m->dq, vmshift_qmp_free);
    if (m->dst && m->ddef) {
        if (m->dst_pid > 0) {
            GError *e = NULL;
            if (!kvm_vm_stop(m->dst, m->ddef->name, 5, &e)) {
                vmshift_job_log(m->job, VMSHIFT_LOG_WARNING, "%s", e->message);
                g_clear_error(&e);
            }
        }
        if (m->dst_def_written) {
            g_autofree char *dir = kvm_host_vm_dir(m->dst, m->ddef->name);
            kvm_host_remove_tree(m->dst, dir, NULL);
        }
    }
    if (m->new_files) {
        for (guint i = 0; i < m->new_files->len; i++) {
            KvmHost *h = m->dst ? m->dst : m->src;
            const char *argv[] = { "rm", "-f", "--", m->new_files->pdata[i], NULL };
            kvm_host_run(h, argv, NULL, NULL, 30, NULL);
        }
        g_ptr_array_set_size(m->new_files, 0);
    }
    kvm_mig_save_late(m, "stage", "rolled-back");
}

char *
kvm_qmp_status(VmshiftQmp *q, const char *cmd)
{
    json_object *r = vmshift_qmp_execute(q, cmd, NULL, QMP_CMD_TIMEOUT, NULL);
    char *s = g_strdup(vmshift_json_get_string(r, "status"));
    if (r)
        json_object_put(r);
    return s;
}

KvmDestState
kvm_dest_state(VmshiftQmp *dq, char **why)
{
    json_object *st = dq ? vmshift_qmp_execute(dq, "query-status", NULL, QMP_CMD_TIMEOUT, NULL)
                         : NULL;
    json_object *mq = st ? vmshift_qmp_execute(dq, "query-migrate", NULL, QMP_CMD_TIMEOUT, NULL)
                         : NULL;
    KvmDestState out = KVM_DEST_UNKNOWN;
    if (st && mq) {
        const char *run = vmshift_json_get_string(st, "status");
        const char *mig = vmshift_json_get_string(mq, "status");
        gboolean took = !g_strcmp0(run, "running") || !g_strcmp0(mig, "completed")
                        || (mig && g_str_has_prefix(mig, "postcopy-"));
        out = took ? KVM_DEST_TOOK_OVER : KVM_DEST_NOT_YET;
        if (why)
            *why = g_strdup_printf("the destination QEMU is '%s', its incoming migration '%s'",
                                   run ? run : "?", mig ? mig : "none");
    } else if (why) {
        *why = g_strdup("the destination QEMU did not answer");
    }
    if (st)
        json_object_put(st);
    if (mq)
        json_object_put(mq);
    return out;
}

/* FALSE when the destination already has a VM of that name. */
gboolean
kvm_mig_check_no_dst_vm(KvmMig *m, GError **error)
{
    g_autofree char *ddir = kvm_host_vm_dir(m->dst, m->ddef->name);
    g_autofree char *dconf = g_build_filename(ddir, "vm.conf", NULL);
    if (!kvm_host_exists(m->dst, dconf))
        return TRUE;
    g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_CONFLICT, "host %s already has a VM called %s",
                m->dst->name, m->ddef->name);
    return FALSE;
}

char *
kvm_mig_target_path(const char *dir, const char *old_path, const char *vm, const char *disk)
{
    g_autofree char *base = g_path_get_basename(old_path);
    char *p = g_build_filename(dir, base, NULL);
    if (strcmp(p, old_path) == 0) {
        g_free(p);
        g_autofree char *n = g_strdup_printf("%s-%s.img", vm, disk);
        p = g_build_filename(dir, n, NULL);
    }
    return p;
}

static gboolean
disk_virtual_size(KvmHost *h, const char *path, guint64 *size, GError **error)
{
    const char *argv[] = { "qemu-img", "info", "-U", "--output=json", path, NULL };
    g_autofree char *out = NULL;
    if (!kvm_host_run(h, argv, NULL, &out, 30, error))
        return FALSE;
    json_object *o = json_tokener_parse(out);
    *size = (guint64)vmshift_json_get_int(o, "virtual-size", 0);
    if (o)
        json_object_put(o);
    if (*size == 0) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_PROTOCOL,
                    "host %s: cannot read the size of %s", h->name, path);
        return FALSE;
    }
    return TRUE;
}

/* @path's directory exists on @h, and @path does not. */
static gboolean
new_file_place(KvmHost *h, const char *path, GError **error)
{
    g_autofree char *dir = g_path_get_dirname(path);
    if (!kvm_host_mkdir(h, dir, error))
        return FALSE;
    if (kvm_host_exists(h, path)) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_CONFLICT, "host %s: %s already exists",
                    h->name, path);
        return FALSE;
    }
    return TRUE;
}

gboolean
kvm_mig_new_image(KvmMig *m, KvmHost *h, const KvmDiskDef *sk, const KvmDiskDef *dk, GError **error)
{
    guint64 size = 0;
    if (!disk_virtual_size(m->src, sk->path, &size, error))
        return FALSE;
    g_ptr_array_add(m->new_files, g_strdup(dk->path));
    if (!kvm_mig_save_move(m, dk->id, sk->path, dk->path, error)
        || !kvm_mig_save_new_files(m, error) || !new_file_place(h, dk->path, error))
        return FALSE;
    g_autofree char *sz = g_strdup_printf("%" G_GUINT64_FORMAT, size);
    const char *argv[] = { "qemu-img", "create", "-q", "-f", dk->format, dk->path, sz, NULL };
    return kvm_host_run(h, argv, NULL, NULL, 60, error);
}

/* Applies --network NIC=NET; checks every NIC's network on the destination. */
gboolean
kvm_mig_map_networks(KvmMig *m, GError **error)
{
    for (guint i = 0; i < m->spec->networks->len; i++) {
        VmshiftMapping *mp = m->spec->networks->pdata[i];
        gboolean found = FALSE;
        for (guint j = 0; j < m->ddef->nics->len; j++) {
            KvmNicDef *n = m->ddef->nics->pdata[j];
            if (!strcmp(n->id, mp->key) || !g_ascii_strcasecmp(n->mac, mp->key)) {
                g_free(n->network);
                n->network = g_strdup(mp->value);
                found = TRUE;
            }
        }
        if (!found) {
            g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_NOT_FOUND,
                        "VM %s has no NIC '%s' (--network %s=%s)", m->sdef->name, mp->key, mp->key,
                        mp->value);
            return FALSE;
        }
    }
    KvmHost *h = m->dst ? m->dst : m->src;
    for (guint j = 0; j < m->ddef->nics->len; j++) {
        KvmNicDef *n = m->ddef->nics->pdata[j];
        char *nd = kvm_host_netdev(h, n->network);
        if (!nd) {
            g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_NOT_FOUND,
                        "host %s has no network '%s' for NIC %s of VM %s (use --network "
                        "%s=NET)",
                        h->name, n->network, n->id, m->sdef->name, n->id);
            return FALSE;
        }
        g_free(nd);
        KvmNicDef *sn = m->sdef->nics->pdata[j];
        if (g_strcmp0(sn->network, n->network))
            vmshift_job_log(m->job, VMSHIFT_LOG_INFO, "NIC %s: network %s -> %s", n->id,
                            sn->network, n->network);
    }
    return TRUE;
}

/* ---- image copies (cold and storage migration of a stopped VM) -------- */

/*
 * A stopped VM's image between two machines: the source serves it
 * read-only with qemu-nbd on its migration address (one client, gone when
 * that client disconnects), and the destination pulls it with qemu-img
 * convert, which keeps it sparse and flattens any backing chain, as the
 * local copy does. Like QEMU's own migration and NBD streams, the transfer
 * is plain TCP on the migration network.
 */
static gboolean
copy_image_nbd(KvmMig *m, const char *from, const char *to, const char *format, GError **error)
{
    KvmHost *s = m->src;
    int port = kvm_host_pick_port(s);
    g_autofree char *ps = g_strdup_printf("%d", port);
    g_autofree char *pidf = g_strdup_printf("%s/vmshift-nbd-%d.pid", s->run_dir, port);
    g_autofree char *fmt = g_strdup_printf("--format=%s", format);
    const char *serve[] = {
        "qemu-nbd", "--read-only",        "--fork", "--shared=1", fmt,
        "--bind",   s->migration_address, "--port", ps,           "--export-name",
        "vmshift",  "--pid-file",         pidf,     from,         NULL
    };
    vmshift_job_log(m->job, VMSHIFT_LOG_INFO, "copying %s:%s to %s:%s over NBD", s->name, from,
                    m->dst->name, to);
    if (!kvm_host_run(s, serve, NULL, NULL, 60, error))
        return FALSE;
    gboolean v6 = strchr(s->migration_address, ':') != NULL;
    g_autofree char *uri = g_strdup_printf("nbd://%s%s%s:%d/vmshift", v6 ? "[" : "",
                                           s->migration_address, v6 ? "]" : "", port);
    const char *pull[] = { "qemu-img", "convert", "-f", "raw", "-O", format, uri, to, NULL };
    gboolean ok = kvm_host_run(m->dst, pull, NULL, NULL, 3600, error);
    /* normally gone with its client; not when the pull never connected */
    g_autofree char *pid = NULL;
    if (kvm_host_read_file(s, pidf, &pid, NULL)) {
        gint64 p = g_ascii_strtoll(pid, NULL, 10);
        if (kvm_host_pid_alive(s, p))
            kvm_host_kill(s, p, SIGTERM);
    }
    const char *rm[] = { "rm", "-f", "--", pidf, NULL };
    kvm_host_run(s, rm, NULL, NULL, 30, NULL);
    return ok;
}

gboolean
kvm_mig_copy_image(KvmMig *m, KvmHost *h, const char *id, const char *from, const char *to,
                   const char *format, GError **error)
{
    if (!new_file_place(h, to, error))
        return FALSE;
    g_ptr_array_add(m->new_files, g_strdup(to));
    if (!kvm_mig_save_move(m, id, from, to, error) || !kvm_mig_save_new_files(m, error))
        return FALSE;
    if (h == m->dst && m->src != m->dst
        && !(kvm_host_is_local(m->src) && kvm_host_is_local(m->dst)))
        return copy_image_nbd(m, from, to, format, error);
    /* convert flattens any backing chain into one image */
    const char *argv[] = { "qemu-img", "convert", "-O", format, from, to, NULL };
    vmshift_job_log(m->job, VMSHIFT_LOG_INFO, "copying %s to %s", from, to);
    return kvm_host_run(h, argv, NULL, NULL, 3600, error);
}

/* ---- the entry point ---------------------------------------------------- */

/* The destination of a host migration: known, another host, another run
 * directory; journaled. */
static gboolean
pick_destination(KvmMig *m, GError **error)
{
    const VmshiftMigrationSpec *spec = m->spec;
    if (!spec->dest_host) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_INVALID_ARGUMENT,
                    "migration of VM %s: no destination host", spec->vm);
        return FALSE;
    }
    m->dst = kvm_backend_find_host(m->b, spec->dest_host, error);
    if (!m->dst)
        return FALSE;
    if (m->dst == m->src) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_INVALID_ARGUMENT,
                    "VM %s already is on host %s (use migrate-storage to move its disks)", spec->vm,
                    m->src->name);
        return FALSE;
    }
    if (kvm_host_is_local(m->src) && kvm_host_is_local(m->dst)
        && !strcmp(m->src->run_dir, m->dst->run_dir)) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_CONFIG,
                    "hosts %s and %s share the run directory %s", m->src->name, m->dst->name,
                    m->src->run_dir);
        return FALSE;
    }
    return kvm_mig_save(m, "dst-host", m->dst->name, error);
}

gboolean
kvm_qmp_migrate(KvmBackend *b, const VmshiftMigrationSpec *spec, VmshiftJob *job, GError **error)
{
    g_auto(KvmMig) m = { .b = b, .job = job, .spec = spec };
    m.cancel = vmshift_job_get_cancellable(job);
    m.new_files = g_ptr_array_new_with_free_func(g_free);

    if (!vmshift_job_set_phase(job, VMSHIFT_PHASE_VALIDATE, error))
        return FALSE;
    m.src = kvm_backend_locate_vm(b, spec->vm, &m.sdef, error);
    if (!m.src)
        return FALSE;
    vmshift_job_set_location(job, m.src->name, NULL);
    /* the files' access rules as they are now are the model for
     * recreate_acl at the new place */
    kvm_acl_capture_def(m.src, m.sdef);
    if (!kvm_mig_save(&m, "vm", m.sdef->name, error)
        || !kvm_mig_save(&m, "src-host", m.src->name, error))
        return FALSE;
    if (spec->type == VMSHIFT_MIGRATION_STORAGE)
        return kvm_mig_storage(&m, error) && kvm_mig_verify(&m, error);
    if (!pick_destination(&m, error))
        return FALSE;
    if (spec->type == VMSHIFT_MIGRATION_COLD)
        return kvm_mig_cold(&m, error) && kvm_mig_verify(&m, error);
    return kvm_mig_live(&m, error) && kvm_mig_verify(&m, error);
}
