/* vmshift host: guest conversion through virt-v2v-in-place (see convert.h). */
#include "config.h"

#include <glib/gstdio.h>
#include <string.h>
#include <unistd.h>

#include "convert.h"

/* virt-v2v-in-place reads the staged disks (-i libvirtxml) through nbdkit,
 * which Debian's virt-v2v package does not depend on: both are checked
 * before anything is exported, so that a missing one is refused up front
 * rather than after the disks were staged. */
gboolean
host_convert_available(GError **error)
{
    static const char *const need[][2] = {
        { "virt-v2v-in-place", "virt-v2v" },
        { "nbdkit", "nbdkit" },
    };

    for (gsize i = 0; i < G_N_ELEMENTS(need); i++) {
        g_autofree char *p = g_find_program_in_path(need[i][0]);

        if (!p) {
            g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_NOT_SUPPORTED,
                        "--convert-guest needs %s: install the Debian package %s", need[i][0],
                        need[i][1]);
            return FALSE;
        }
    }
    return TRUE;
}

/* a libvirt domain description of the staged disks, virt-v2v's -i libvirtxml */
static char *
domain_xml(const VmshiftVm *vm, GPtrArray *paths)
{
    GString *x = g_string_new(NULL);
    g_autofree char *name = g_markup_escape_text(vm->name ? vm->name : "guest", -1);

    g_string_append_printf(x, "<domain type='kvm'>\n  <name>%s</name>\n", name);
    g_string_append_printf(x, "  <memory unit='KiB'>%" G_GUINT64_FORMAT "</memory>\n",
                           MAX(vm->memory / 1024, 262144));
    g_string_append_printf(x, "  <vcpu>%u</vcpu>\n", MAX(vm->vcpus, 1));
    g_string_append(x, "  <os>\n    <type>hvm</type>\n  </os>\n  <devices>\n");
    for (guint i = 0; i < paths->len; i++) {
        g_autofree char *p = g_markup_escape_text(g_ptr_array_index(paths, i), -1);
        g_string_append_printf(x,
                               "    <disk type='file' device='disk'>\n"
                               "      <driver name='qemu' type='raw'/>\n"
                               "      <source file='%s'/>\n"
                               "      <target dev='sd%c' bus='scsi'/>\n"
                               "    </disk>\n",
                               p, 'a' + (char)MIN(i, 25));
    }
    g_string_append(x, "  </devices>\n</domain>\n");
    return g_string_free(x, FALSE);
}

/* One line of virt-v2v's output into the job's log: its progress lines
 * ("[  70.7] Converting ... to run on KVM") and its warnings for the
 * person, the rest (hints, wrapped text) at debug level. Keeps the last
 * error line in @err. */
static void
log_line(VmshiftJob *job, const char *line, char **err)
{
    const char *tool = "virt-v2v-in-place: ";

    if (!*line)
        return;
    if (g_str_has_prefix(line, tool) && strstr(line, "error:")) {
        g_free(*err);
        *err = g_strdup(line + strlen(tool));
        vmshift_job_log(job, VMSHIFT_LOG_ERROR, "%s", line);
    } else if (g_str_has_prefix(line, tool) && strstr(line, "warning:"))
        vmshift_job_log(job, VMSHIFT_LOG_WARNING, "%s", line);
    else if (line[0] == '[')
        vmshift_job_log(job, VMSHIFT_LOG_INFO, "virt-v2v-in-place %s", line);
    else
        vmshift_job_log(job, VMSHIFT_LOG_DEBUG, "virt-v2v-in-place: %s", line);
}

/* Reads virt-v2v's merged output line by line while it runs (its phases
 * take minutes: the job's log shows them as they come); FALSE when
 * cancelled or the pipe failed, the process then killed and reaped. */
static gboolean
follow(GSubprocess *p, VmshiftJob *job, GCancellable *cancellable, char **err, GError **error)
{
    g_autoptr(GDataInputStream) in = g_data_input_stream_new(g_subprocess_get_stdout_pipe(p));
    GError *local = NULL;

    for (;;) {
        gsize len = 0;
        g_autofree char *raw = g_data_input_stream_read_line(in, &len, cancellable, &local);
        if (!raw)
            break;
        g_autofree char *line = g_utf8_make_valid(raw, (gssize)len);
        log_line(job, g_strchomp(line), err);
    }
    if (local) {
        g_subprocess_force_exit(p);
        g_subprocess_wait(p, NULL, NULL);
        g_propagate_prefixed_error(error, local, "virt-v2v-in-place: ");
        return FALSE;
    }
    if (g_subprocess_wait(p, cancellable, error))
        return TRUE;
    g_subprocess_force_exit(p);
    g_subprocess_wait(p, NULL, NULL);
    return FALSE;
}

gboolean
host_convert_guest(const VmshiftVm *vm, GPtrArray *paths, VmshiftJob *job,
                   GCancellable *cancellable, GError **error)
{
    g_autoptr(GSubprocessLauncher) l = NULL;
    g_autoptr(GSubprocess) p = NULL;
    g_autofree char *xml = NULL, *xml_path = NULL, *err = NULL;
    gboolean ok;
    int fd;

    if (!host_convert_available(error))
        return FALSE;
    if (!paths || !paths->len) {
        g_set_error_literal(error, VMSHIFT_ERROR, VMSHIFT_ERROR_INVALID_ARGUMENT,
                            "--convert-guest: the VM has no disk to convert");
        return FALSE;
    }
    xml = domain_xml(vm, paths);
    fd = g_file_open_tmp("vmshift-v2v-XXXXXX.xml", &xml_path, error);
    if (fd < 0)
        return FALSE;
    close(fd);
    if (!g_file_set_contents(xml_path, xml, -1, error)) {
        g_unlink(xml_path);
        return FALSE;
    }
    l = g_subprocess_launcher_new(G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_MERGE);
    /* the appliance runs under QEMU directly, not through a libvirt daemon;
     * the rest of libguestfs's environment passes through (e.g.
     * LIBGUESTFS_BACKEND_SETTINGS=force_tcg where KVM cannot run it) */
    g_subprocess_launcher_setenv(l, "LIBGUESTFS_BACKEND", "direct", TRUE);
    vmshift_job_log(job, VMSHIFT_LOG_INFO,
                    "converting the guest for KVM with virt-v2v-in-place (%u disk%s)", paths->len,
                    paths->len == 1 ? "" : "s");
    /* --root single: a disk set with several operating systems is refused
     * (virt-v2v would otherwise ask on the terminal which one to convert) */
    p = g_subprocess_launcher_spawn(l, error, "virt-v2v-in-place", "--root", "single", "-i",
                                    "libvirtxml", xml_path, NULL);
    ok = p && follow(p, job, cancellable, &err, error);
    g_unlink(xml_path);
    if (!ok)
        return FALSE;
    if (!g_subprocess_get_successful(p)) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_FAILED, "virt-v2v-in-place: %s",
                    err ? err : "failed (see the job's log)");
        return FALSE;
    }
    vmshift_job_log(job, VMSHIFT_LOG_INFO, "virt-v2v-in-place converted the guest");
    return TRUE;
}
