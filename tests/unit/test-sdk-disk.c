/* SDK disk streams (sdk/disk.c): raw bytes in, any format out, and back. */
#include "config.h"

#include <glib/gstdio.h>
#include <string.h>
#include <vmshift/vmshift.h>

#define SIZE (8u << 20)

static char *tmpdir;

/* 8 MiB: a pattern at 1 MiB, zeros elsewhere, one byte at the very end */
static GBytes *
pattern(void)
{
    guint8 *p = g_malloc0(SIZE);

    for (guint i = 0; i < (1u << 20); i++)
        p[(1u << 20) + i] = (guint8)(i * 7 + 3);
    p[SIZE - 1] = 0x5a;
    return g_bytes_new_take(p, SIZE);
}

static gboolean
have_tools(void)
{
    const char *tools[] = { "qemu-img", "qemu-nbd", "nbdcopy" };
    for (guint i = 0; i < G_N_ELEMENTS(tools); i++) {
        g_autofree char *p = g_find_program_in_path(tools[i]);
        if (!p) {
            g_test_skip_printf("%s is not installed", tools[i]);
            return FALSE;
        }
    }
    return TRUE;
}

static GBytes *
slurp(GInputStream *in)
{
    g_autoptr(GOutputStream) out = g_memory_output_stream_new_resizable();
    g_autoptr(GError) error = NULL;

    g_output_stream_splice(out, in, G_OUTPUT_STREAM_SPLICE_CLOSE_TARGET, NULL, &error);
    g_assert_no_error(error);
    return g_memory_output_stream_steal_as_bytes(G_MEMORY_OUTPUT_STREAM(out));
}

static void
round_trip(gconstpointer data)
{
    const char *format = data;
    g_autoptr(GBytes) src = pattern();
    g_autoptr(GInputStream) in = g_memory_input_stream_new_from_bytes(src);
    g_autofree char *path = g_strdup_printf("%s/disk.%s", tmpdir, format);
    g_autoptr(GError) error = NULL;
    g_autoptr(GInputStream) back = NULL;
    g_autoptr(GBytes) got = NULL;
    g_autofree char *fmt = NULL;
    guint64 cap = 0;

    if (!have_tools())
        return;
    g_unlink(path);
    g_assert_true(vmshift_disk_write_raw(in, SIZE, path, format, NULL, NULL, &error));
    g_assert_no_error(error);
    /* qemu-img itself says what was written */
    g_assert_true(vmshift_disk_image_info(path, &fmt, &cap, &error));
    g_assert_cmpstr(fmt, ==, format);
    g_assert_cmpuint(cap, ==, SIZE);
    back = vmshift_disk_read_raw(path, format, &cap, NULL, &error);
    g_assert_no_error(error);
    g_assert_cmpuint(cap, ==, SIZE);
    got = slurp(back);
    g_assert_true(g_bytes_equal(got, src));
    /* an existing image is never overwritten */
    g_clear_object(&in);
    in = g_memory_input_stream_new_from_bytes(src);
    g_assert_false(vmshift_disk_write_raw(in, SIZE, path, format, NULL, NULL, &error));
    g_assert_error(error, G_IO_ERROR, G_IO_ERROR_EXISTS);
    g_assert_true(g_file_test(path, G_FILE_TEST_EXISTS));
    g_unlink(path);
}

/* a stream shorter than the disk fails and leaves no partial image */
static void
short_stream(gconstpointer data)
{
    const char *format = data;
    g_autoptr(GBytes) src = pattern();
    g_autoptr(GBytes) part = g_bytes_new_from_bytes(src, 0, SIZE / 2);
    g_autoptr(GInputStream) in = g_memory_input_stream_new_from_bytes(part);
    g_autofree char *path = g_strdup_printf("%s/short.%s", tmpdir, format);
    g_autoptr(GError) error = NULL;

    if (!have_tools())
        return;
    g_assert_false(vmshift_disk_write_raw(in, SIZE, path, format, NULL, NULL, &error));
    g_assert_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_PROTOCOL);
    g_assert_nonnull(strstr(error->message, "4194304 bytes"));
    g_assert_false(g_file_test(path, G_FILE_TEST_EXISTS));
}

/* a converter that fails mid-way fails the read instead of ending it early */
static void
broken_image(void)
{
    g_autofree char *path = g_strdup_printf("%s/broken.qcow2", tmpdir);
    g_autoptr(GError) error = NULL;
    g_autoptr(GInputStream) in = NULL;
    guint64 cap = 0;

    if (!have_tools())
        return;
    g_assert_true(g_file_set_contents(path, "QFI\xfb not really", -1, NULL));
    in = vmshift_disk_read_raw(path, "qcow2", &cap, NULL, &error);
    if (in) {
        g_autoptr(GOutputStream) out = g_memory_output_stream_new_resizable();
        g_output_stream_splice(out, in, G_OUTPUT_STREAM_SPLICE_CLOSE_TARGET, NULL, &error);
    }
    g_assert_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_FAILED);
    g_unlink(path);
}

/* a command's stdout: all of it when it succeeds; its failure, with its
 * stderr's first line, at the end of the data when it does not */
static void
command_stream(void)
{
    const char *good[] = { "sh", "-c", "printf abc", NULL };
    const char *bad[] = { "sh", "-c", "printf abc; echo 'boom: gone' >&2; exit 3", NULL };
    g_autoptr(GError) error = NULL;
    char buf[16];
    gsize n = 0;

    g_autoptr(GInputStream) in = vmshift_disk_read_command(good, "reading good", &error);
    g_assert_no_error(error);
    g_assert_true(g_input_stream_read_all(in, buf, sizeof buf, &n, NULL, &error));
    g_assert_no_error(error);
    g_assert_cmpmem(buf, n, "abc", 3);

    g_autoptr(GInputStream) in2 = vmshift_disk_read_command(bad, "reading bad", &error);
    g_assert_no_error(error);
    g_assert_false(g_input_stream_read_all(in2, buf, sizeof buf, &n, NULL, &error));
    g_assert_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_FAILED);
    g_assert_cmpstr(error->message, ==, "reading bad failed: boom: gone");
}

int
main(int argc, char **argv)
{
    int rc;

    g_test_init(&argc, &argv, NULL);
    tmpdir = g_dir_make_tmp("vmshift-disk-XXXXXX", NULL);
    g_test_add_data_func("/disk/round-trip/raw", "raw", round_trip);
    g_test_add_data_func("/disk/round-trip/qcow2", "qcow2", round_trip);
    g_test_add_data_func("/disk/round-trip/vhdx", "vhdx", round_trip);
    g_test_add_data_func("/disk/round-trip/vmdk", "vmdk", round_trip);
    g_test_add_data_func("/disk/short/raw", "raw", short_stream);
    g_test_add_data_func("/disk/short/qcow2", "qcow2", short_stream);
    g_test_add_func("/disk/broken", broken_image);
    g_test_add_func("/disk/command", command_stream);
    rc = g_test_run();
    g_rmdir(tmpdir);
    g_free(tmpdir);
    return rc;
}
