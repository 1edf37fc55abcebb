/* vmshift host: guest conversion through virt-v2v-in-place (see convert.h). */
#include "config.h"

#include <glib/gstdio.h>
#include <string.h>
#include <unistd.h>

#include "convert.h"

gboolean
host_convert_available(GError **error)
{
    g_autofree char *p = g_find_program_in_path("virt-v2v-in-place");

    if (p)
        return TRUE;
    g_set_error_literal(error, VMSHIFT_ERROR, VMSHIFT_ERROR_NOT_SUPPORTED,
                        "--convert-guest needs virt-v2v-in-place: install the Debian package "
                        "virt-v2v");
    return FALSE;
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

gboolean
host_convert_guest(const VmshiftVm *vm, GPtrArray *paths, VmshiftJob *job,
                   GCancellable *cancellable, GError **error)
{
    g_autoptr(GSubprocessLauncher) l = NULL;
    g_autoptr(GSubprocess) p = NULL;
    g_autofree char *xml = NULL, *xml_path = NULL, *out = NULL;
    int fd;

    if (!host_convert_available(error))
        return FALSE;
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
    /* the appliance runs under QEMU directly, not through a libvirt daemon */
    g_subprocess_launcher_setenv(l, "LIBGUESTFS_BACKEND", "direct", TRUE);
    vmshift_job_log(job, VMSHIFT_LOG_INFO, "converting the guest for KVM with virt-v2v-in-place");
    p = g_subprocess_launcher_spawn(l, error, "virt-v2v-in-place", "-i", "libvirtxml", xml_path,
                                    NULL);
    if (p && !g_subprocess_communicate_utf8(p, NULL, cancellable, &out, NULL, error)) {
        g_subprocess_force_exit(p);
        g_clear_object(&p);
    }
    g_unlink(xml_path);
    if (!p)
        return FALSE;
    if (!g_subprocess_get_successful(p)) {
        char **lines = g_strsplit(out ? out : "", "\n", -1);
        const char *last = "failed";
        for (guint i = 0; lines[i]; i++)
            if (strstr(lines[i], "virt-v2v") && strstr(lines[i], "error"))
                last = lines[i];
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_FAILED, "virt-v2v-in-place: %s", last);
        g_strfreev(lines);
        return FALSE;
    }
    vmshift_job_log(job, VMSHIFT_LOG_INFO, "virt-v2v-in-place converted the guest");
    return TRUE;
}
