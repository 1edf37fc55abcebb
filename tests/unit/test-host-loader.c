/* Unit tests of the host's plugin loader and registry: every refusal and
 * its one-line message, "not supported" for NULL and too-new operations. */
#include "config.h"

#include <errno.h>
#include <glib/gstdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "host/host.h"

typedef struct {
    char *dir;
} Fixture;

static char *
plugin_build_path(const char *name)
{
    const char *b = g_getenv("VMSHIFT_BUILDDIR");
    g_autofree char *file = g_strdup_printf("%s.so", name);
    return g_build_filename(b ? b : ".", "tests", "plugins", ".libs", file, NULL);
}

static void
install(Fixture *f, const char *name)
{
    g_autofree char *src = plugin_build_path(name);
    g_autofree char *dst = NULL;
    g_autofree char *file = g_strdup_printf("%s.so", name);
    g_autofree char *data = NULL;
    gsize len;
    g_autoptr(GError) err = NULL;

    dst = g_build_filename(f->dir, file, NULL);
    g_assert_true(g_file_get_contents(src, &data, &len, &err));
    g_assert_no_error(err);
    g_assert_true(g_file_set_contents(dst, data, (gssize)len, &err));
    g_assert_cmpint(chmod(dst, 0755), ==, 0);
}

static void
setup(Fixture *f, gconstpointer data)
{
    g_autoptr(GError) err = NULL;
    f->dir = g_dir_make_tmp("vmshift-loader-XXXXXX", &err);
    g_assert_no_error(err);
    g_assert_cmpint(chmod(f->dir, 0755), ==, 0);
}

static void
rm_rf(const char *path)
{
    GDir *d = g_dir_open(path, 0, NULL);
    const char *n;
    while (d && (n = g_dir_read_name(d))) {
        g_autofree char *p = g_build_filename(path, n, NULL);
        if (g_file_test(p, G_FILE_TEST_IS_DIR) && !g_file_test(p, G_FILE_TEST_IS_SYMLINK))
            rm_rf(p);
        else
            g_unlink(p);
    }
    if (d)
        g_dir_close(d);
    g_rmdir(path);
}

static void
teardown(Fixture *f, gconstpointer data)
{
    chmod(f->dir, 0755);
    rm_rf(f->dir);
    g_free(f->dir);
}

static HostPlugin *
load(Fixture *f, HostLoader **lo, const char *name)
{
    const char *dirs[] = { f->dir, NULL };
    *lo = host_loader_new(dirs, FALSE);
    return host_loader_load(*lo, name);
}

static void
assert_refused(Fixture *f, const char *name, const char *expected_suffix)
{
    HostLoader *lo;
    HostPlugin *p = load(f, &lo, name);
    g_autofree char *file = g_strdup_printf("%s/%s.so: ", f->dir, name);

    g_assert_cmpint(p->status, ==, HOST_LOAD_REFUSED);
    g_assert_nonnull(p->error);
    g_assert_null(p->desc);
    /* one line, naming the file first */
    g_assert_null(strchr(p->error->message, '\n'));
    g_assert_true(g_str_has_prefix(p->error->message, file));
    if (!g_str_has_suffix(p->error->message, expected_suffix))
        g_error("message '%s' does not end with '%s'", p->error->message, expected_suffix);
    host_loader_free(lo);
}

static void
test_good(Fixture *f, gconstpointer data)
{
    HostLoader *lo;
    HostPlugin *p;

    install(f, "good");
    p = load(f, &lo, "good");
    g_assert_no_error(p->error);
    g_assert_cmpint(p->status, ==, HOST_LOAD_OK);
    g_assert_cmpstr(p->desc->name, ==, "good");
    g_assert_cmpstr(p->desc->version, ==, "1.0");
    g_assert_true(p == host_loader_load(lo, "good")); /* loaded once */
    host_loader_free(lo);
}

static void
test_missing(Fixture *f, gconstpointer data)
{
    HostLoader *lo;
    HostPlugin *p = load(f, &lo, "hyperv");
    g_autofree char *want = g_strdup_printf(
        "plugin 'hyperv' not found in %s (install vmshift-plugin-hyperv)", f->dir);

    g_assert_cmpint(p->status, ==, HOST_LOAD_MISSING);
    g_assert_cmpstr(p->error->message, ==, want);
    host_loader_free(lo);
}

static void
test_abi_major(Fixture *f, gconstpointer data)
{
    g_autofree char *want = g_strdup_printf("built for vmshift plugin ABI %d.%d, this vmshift "
                                            "provides %d.%d",
                                            VMSHIFT_ABI_MAJOR + 1, VMSHIFT_ABI_MINOR,
                                            VMSHIFT_ABI_MAJOR, VMSHIFT_ABI_MINOR);
    install(f, "abimajor");
    assert_refused(f, "abimajor", want);
}

static void
test_abi_minor(Fixture *f, gconstpointer data)
{
    g_autofree char *want = g_strdup_printf("built for vmshift plugin ABI %d.%d, this vmshift "
                                            "provides %d.%d",
                                            VMSHIFT_ABI_MAJOR, VMSHIFT_ABI_MINOR + 1,
                                            VMSHIFT_ABI_MAJOR, VMSHIFT_ABI_MINOR);
    install(f, "abiminor");
    assert_refused(f, "abiminor", want);
}

static void
test_no_symbol(Fixture *f, gconstpointer data)
{
    install(f, "nosym");
    assert_refused(f, "nosym",
                   "refusing plugin: no symbol vmshift_plugin_entry (not a vmshift plugin)");
}

static void
test_short_struct(Fixture *f, gconstpointer data)
{
    g_autofree char *want = g_strdup_printf(
        "refusing plugin: descriptor is too small (struct_size 16, ABI %d.0 needs at least %u)",
        VMSHIFT_ABI_MAJOR,
        (unsigned)(G_STRUCT_OFFSET(VmshiftPluginDescriptor, ops) + sizeof(void *)));
    install(f, "short");
    assert_refused(f, "short", want);
}

static void
test_bad_name(Fixture *f, gconstpointer data)
{
    install(f, "badname");
    assert_refused(f, "badname",
                   "refusing plugin: it calls itself 'somethingelse', but the "
                   "file name says 'badname'");
}

static void
test_no_open(Fixture *f, gconstpointer data)
{
    install(f, "noopen");
    assert_refused(f, "noopen", "refusing plugin: mandatory operation 'open' is missing");
}

static void
test_world_writable_dir(Fixture *f, gconstpointer data)
{
    install(f, "good");
    g_assert_cmpint(chmod(f->dir, 0777), ==, 0);
    assert_refused(f, "good", "refusing plugin: its directory is world-writable (mode 0777)");
}

static void
test_group_writable_file(Fixture *f, gconstpointer data)
{
    g_autofree char *p = g_build_filename(f->dir, "good.so", NULL);
    install(f, "good");
    g_assert_cmpint(chmod(p, 0775), ==, 0);
    assert_refused(f, "good", "refusing plugin: the file is group-writable (mode 0775)");
}

static void
test_symlink(Fixture *f, gconstpointer data)
{
    g_autofree char *real = plugin_build_path("good");
    g_autofree char *link = g_build_filename(f->dir, "good.so", NULL);
    g_assert_cmpint(symlink(real, link), ==, 0);
    assert_refused(f, "good", "refusing plugin: it is a symbolic link");
}

static void
test_not_regular(Fixture *f, gconstpointer data)
{
    g_autofree char *d = g_build_filename(f->dir, "good.so", NULL);
    g_assert_cmpint(g_mkdir(d, 0755), ==, 0);
    assert_refused(f, "good", "refusing plugin: not a regular file");
}

/* ---- registry: placeholders, dispatch, not supported --------------------------------- */

static void
test_registry(Fixture *f, gconstpointer data)
{
    g_autofree char *conf = g_build_filename(f->dir, "vmshift.conf", NULL);
    g_autofree char *state = g_build_filename(f->dir, "state", NULL);
    const char *dirs[] = { f->dir, NULL };
    g_autoptr(GError) err = NULL;
    HostConfig *c;
    HostLoader *lo;
    HostRegistry *reg;
    HostBackend *b;
    GPtrArray *hosts;
    g_autofree char *want = NULL;
    gboolean warned = FALSE;

    install(f, "good");
    install(f, "shortops");
    g_assert_true(g_file_set_contents(conf,
                                      "[backend a]\nplugin=good\nvms=v1@h1\ncolour=blue\n"
                                      "[backend b]\nplugin=nope\n"
                                      "[backend c]\nplugin=shortops\n"
                                      "[backend d]\nplugin=good\ndecline=yes\n"
                                      "[backend e]\nplugin=good\nenabled=false\n",
                                      -1, NULL));
    c = host_config_load(conf, TRUE, state, &err);
    g_assert_no_error(err);
    lo = host_loader_new(dirs, FALSE);
    reg = host_registry_new(c, lo, FALSE);
    g_assert_cmpuint(reg->backends->len, ==, 5);

    for (guint i = 0; i < c->warnings->len; i++)
        if (strstr(g_ptr_array_index(c->warnings, i), "[backend a]: unknown key 'colour'"))
            warned = TRUE;
    g_assert_true(warned);

    /* a works, and does not support recreate_acl */
    b = host_registry_find(reg, "a");
    hosts = host_backend_list_hosts(b, &err);
    g_assert_no_error(err);
    g_assert_cmpuint(hosts->len, ==, 2);
    g_ptr_array_unref(hosts);
    g_assert_false(host_backend_recreate_acl(b, "v1", NULL, &err));
    g_assert_error(err, VMSHIFT_ERROR, VMSHIFT_ERROR_NOT_SUPPORTED);
    g_assert_cmpstr(err->message, ==,
                    "backend 'a' (plugin good 1.0) does not support 'recreate_acl'");
    g_clear_error(&err);

    /* b is a placeholder that fails closed */
    b = host_registry_find(reg, "b");
    g_assert_cmpint(b->status, ==, HOST_BACKEND_MISSING);
    g_assert_null(host_backend_list_hosts(b, &err));
    want = g_strdup_printf("%s: backend 'b': plugin 'nope' not found in %s (install "
                           "vmshift-plugin-nope)",
                           conf, f->dir);
    g_assert_cmpstr(err->message, ==, want);
    g_clear_error(&err);

    /* c: list_hosts lies beyond the table's struct_size */
    b = host_registry_find(reg, "c");
    g_assert_null(host_backend_list_hosts(b, &err));
    g_assert_error(err, VMSHIFT_ERROR, VMSHIFT_ERROR_NOT_SUPPORTED);
    g_assert_cmpstr(err->message, ==,
                    "backend 'c' (plugin shortops 1.0) does not support 'list_hosts'");
    g_clear_error(&err);

    /* d declines: not applicable, not failed */
    b = host_registry_find(reg, "d");
    g_assert_false(host_backend_ensure_open(b, &err));
    g_assert_error(err, VMSHIFT_ERROR, VMSHIFT_ERROR_NOT_APPLICABLE);
    g_assert_cmpint(b->status, ==, HOST_BACKEND_NOT_APPLICABLE);
    g_clear_error(&err);

    /* e: disabled, listed, not loaded */
    b = host_registry_find(reg, "e");
    g_assert_cmpint(b->status, ==, HOST_BACKEND_DISABLED);
    g_assert_cmpstr(host_backend_status_name(b->status), ==, "disabled");

    host_registry_free(reg);
    host_loader_free(lo);
    host_config_free(c);
}

int
main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
#define T(name, fn) g_test_add("/host/loader/" name, Fixture, NULL, setup, fn, teardown)
    T("good", test_good);
    T("missing-file", test_missing);
    T("abi-major", test_abi_major);
    T("abi-newer-minor", test_abi_minor);
    T("missing-symbol", test_no_symbol);
    T("short-struct", test_short_struct);
    T("name-mismatch", test_bad_name);
    T("no-open", test_no_open);
    T("world-writable-dir", test_world_writable_dir);
    T("group-writable-file", test_group_writable_file);
    T("symlink", test_symlink);
    T("not-regular", test_not_regular);
    T("registry-null-op-and-placeholders", test_registry);
#undef T
    return g_test_run();
}
