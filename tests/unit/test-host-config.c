/* Unit tests of the host's configuration loading: good files, drop-ins in
 * sorted order, groups, and one clear line for each bad file or key. */
#include "config.h"

#include <glib/gstdio.h>
#include <string.h>
#include <sys/stat.h>

#include "host/host.h"

typedef struct {
    char *dir;
    char *conf;
} Fixture;

static void
put(Fixture *f, const char *rel, const char *text, int mode)
{
    g_autofree char *p = g_build_filename(f->dir, rel, NULL);
    g_autofree char *d = g_path_get_dirname(p);
    g_assert_cmpint(g_mkdir_with_parents(d, 0755), ==, 0);
    g_assert_true(g_file_set_contents(p, text, -1, NULL));
    g_assert_cmpint(chmod(p, mode), ==, 0);
}

static void
setup(Fixture *f, gconstpointer data)
{
    f->dir = g_dir_make_tmp("vmshift-config-XXXXXX", NULL);
    f->conf = g_build_filename(f->dir, "vmshift.conf", NULL);
}

static void
rm_rf(const char *path)
{
    GDir *d = g_dir_open(path, 0, NULL);
    const char *n;
    while (d && (n = g_dir_read_name(d))) {
        g_autofree char *p = g_build_filename(path, n, NULL);
        if (g_file_test(p, G_FILE_TEST_IS_DIR))
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
    rm_rf(f->dir);
    g_free(f->dir);
    g_free(f->conf);
}

static gboolean
has_warning(HostConfig *c, const char *needle)
{
    for (guint i = 0; i < c->warnings->len; i++)
        if (strstr(g_ptr_array_index(c->warnings, i), needle))
            return TRUE;
    return FALSE;
}

static void
test_good(Fixture *f, gconstpointer data)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(HostConfig) c = NULL;
    HostBackendConf *b;
    char **hosts;

    put(f, "vmshift.conf",
        "[vmshift]\nstate-dir=/var/tmp/x\n\n[backend main]\nplugin=kvm\n"
        "[group web]\nhosts=kvm1:alpha; beta ,gamma\n",
        0644);
    put(f, "backends.d/20-b.conf", "[backend second]\nplugin=esx\nenabled=no\n", 0644);
    put(f, "backends.d/10-a.conf", "[backend first]\nplugin=hyperv\nenabled=true\n", 0644);
    put(f, "backends.d/ignored.txt", "[backend nope]\nplugin=x\n", 0644);
    c = host_config_load(f->conf, TRUE, NULL, &err);
    g_assert_no_error(err);
    g_assert_cmpstr(c->state_dir, ==, "/var/tmp/x");
    g_assert_cmpuint(c->backends->len, ==, 3);
    /* main file first, then drop-ins in sorted order */
    g_assert_cmpstr(((HostBackendConf *)g_ptr_array_index(c->backends, 0))->name, ==, "main");
    g_assert_cmpstr(((HostBackendConf *)g_ptr_array_index(c->backends, 1))->name, ==, "first");
    g_assert_cmpstr(((HostBackendConf *)g_ptr_array_index(c->backends, 2))->name, ==, "second");
    b = host_config_find_backend(c, "second");
    g_assert_false(b->enabled);
    g_assert_null(b->error);
    g_assert_cmpstr(b->plugin, ==, "esx");
    g_assert_true(g_str_has_suffix(b->source, "backends.d/20-b.conf"));
    hosts = g_hash_table_lookup(c->groups, "web");
    g_assert_nonnull(hosts);
    g_assert_cmpuint(g_strv_length(hosts), ==, 3);
    g_assert_cmpstr(hosts[0], ==, "kvm1:alpha");
    g_assert_cmpstr(hosts[1], ==, "beta");
    g_assert_cmpstr(hosts[2], ==, "gamma");
    g_assert_cmpuint(c->warnings->len, ==, 0);
}

static void
test_state_dir_override(Fixture *f, gconstpointer data)
{
    g_autoptr(HostConfig) c = NULL;
    put(f, "vmshift.conf", "[vmshift]\nstate-dir=/var/tmp/x\n", 0644);
    c = host_config_load(f->conf, TRUE, "/override", NULL);
    g_assert_cmpstr(c->state_dir, ==, "/override");
}

static void
test_missing_default_ok(Fixture *f, gconstpointer data)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(HostConfig) c = host_config_load(f->conf, FALSE, NULL, &err);
    g_assert_no_error(err);
    g_assert_cmpuint(c->backends->len, ==, 0);
}

static void
test_missing_explicit(Fixture *f, gconstpointer data)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(HostConfig) c = host_config_load(f->conf, TRUE, NULL, &err);
    g_autofree char *want = g_strdup_printf("%s: No such file or directory", f->conf);
    g_assert_null(c);
    g_assert_error(err, VMSHIFT_ERROR, VMSHIFT_ERROR_CONFIG);
    g_assert_cmpstr(err->message, ==, want);
}

static void
test_bad_dropin(Fixture *f, gconstpointer data)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(HostConfig) c = NULL;
    HostBackendConf *b;

    put(f, "vmshift.conf", "[backend good]\nplugin=kvm\n", 0644);
    put(f, "backends.d/hv.conf", "[backend hv]\nplugin=hyperv\nthis line is bad\n", 0644);
    c = host_config_load(f->conf, TRUE, NULL, &err);
    g_assert_no_error(err);
    /* the good backend keeps working, the broken file is a placeholder */
    b = host_config_find_backend(c, "good");
    g_assert_null(b->error);
    b = host_config_find_backend(c, "hv");
    g_assert_nonnull(b);
    g_assert_true(b->parse_failed);
    g_assert_true(g_str_has_prefix(b->error, b->source));
    g_assert_nonnull(strstr(b->error, "line 3"));
    g_assert_null(strchr(b->error, '\n'));
}

static void
test_bad_main_file(Fixture *f, gconstpointer data)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(HostConfig) c = NULL;
    g_autofree char *prefix = g_strdup_printf("%s: ", f->conf);

    /* an error, never a silent switch to the default state dir (#13, #14) */
    put(f, "vmshift.conf", "[vmshift\nstate-dir=/x\n", 0644);
    put(f, "backends.d/a.conf", "[backend a]\nplugin=kvm\n", 0644);
    c = host_config_load(f->conf, TRUE, NULL, &err);
    g_assert_null(c);
    g_assert_error(err, VMSHIFT_ERROR, VMSHIFT_ERROR_CONFIG);
    g_assert_true(g_str_has_prefix(err->message, prefix));
    g_assert_null(strchr(err->message, '\n'));
    g_clear_error(&err);
    put(f, "vmshift.conf", "[vmshift]\nstate-dir=relative\n", 0644);
    c = host_config_load(f->conf, TRUE, NULL, &err);
    g_assert_null(c);
    g_assert_nonnull(strstr(err->message, "state-dir must be an absolute path, not 'relative'"));
}

/* what GKeyFile merges silently is an error with file:line */
static void
test_duplicates(Fixture *f, gconstpointer data)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(HostConfig) c = NULL;
    g_autofree char *want = g_strdup_printf(
        "%s:3: [backend a]: key 'plugin' given twice (first at line 2)", f->conf);
    g_autofree char *dropin = g_build_filename(f->dir, "backends.d", "b.conf", NULL);
    g_autofree char *want2 = g_strdup_printf("%s:3: [backend b] appears twice (first at line 1)",
                                             dropin);

    put(f, "vmshift.conf", "[backend a]\nplugin=kvm\nplugin=esx\n", 0644);
    c = host_config_load(f->conf, TRUE, NULL, &err);
    g_assert_null(c);
    g_assert_cmpstr(err->message, ==, want);
    g_clear_error(&err);
    put(f, "vmshift.conf", "[backend a]\nplugin=kvm\nhost=caf\xe9\n", 0644);
    c = host_config_load(f->conf, TRUE, NULL, &err);
    g_assert_null(c);
    g_assert_true(g_str_has_suffix(err->message, ":3: not UTF-8"));
    g_clear_error(&err);
    put(f, "vmshift.conf", "[backend a]\nplugin=kvm\n", 0644);
    put(f, "backends.d/b.conf", "[backend b]\nplugin=kvm\n[backend b]\nplugin=esx\n", 0644);
    c = host_config_load(f->conf, TRUE, NULL, &err);
    g_assert_no_error(err);
    g_assert_cmpstr(host_config_find_backend(c, "b")->error, ==, want2);
    g_assert_null(host_config_find_backend(c, "a")->error);
}

/* a FIFO, a directory or an oversized file is refused without reading (or
 * blocking on) it, naming the file */
static void
test_not_regular(Fixture *f, gconstpointer data)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(HostConfig) c = NULL;
    g_autofree char *fifo = g_build_filename(f->dir, "backends.d", "fifo.conf", NULL);
    g_autofree char *big = g_strnfill(HOST_CONFIG_MAX + 1, '#');
    g_autofree char *want = NULL;
    HostBackendConf *b;

    put(f, "backends.d/a.conf", "[backend a]\nplugin=kvm\n", 0644);
    g_assert_cmpint(mkfifo(fifo, 0644), ==, 0);
    put(f, "backends.d/big.conf", big, 0644);
    c = host_config_load(f->conf, TRUE, NULL, &err);
    g_assert_error(err, VMSHIFT_ERROR, VMSHIFT_ERROR_CONFIG); /* no vmshift.conf */
    g_clear_error(&err);
    c = host_config_load(f->conf, FALSE, NULL, &err);
    g_assert_no_error(err);
    b = host_config_find_backend(c, "fifo");
    g_assert_nonnull(b);
    want = g_strdup_printf("%s: refusing configuration file: not a regular file (a FIFO)", fifo);
    g_assert_cmpstr(b->error, ==, want);
    b = host_config_find_backend(c, "big");
    g_assert_nonnull(strstr(b->error, "refusing configuration file: larger than 1024 KiB"));
    g_assert_null(host_config_find_backend(c, "a")->error);
    g_clear_pointer(&c, host_config_free);
    c = host_config_load(fifo, TRUE, NULL, &err);
    g_assert_null(c);
    g_assert_nonnull(strstr(err->message, "not a regular file (a FIFO)"));
    g_unlink(fifo);
}

static void
test_bad_keys(Fixture *f, gconstpointer data)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(HostConfig) c = NULL;
    HostBackendConf *b;
    g_autofree char *want = NULL;

    put(f, "vmshift.conf",
        "[vmshift]\ncolour=red\n"
        "[backend noplugin]\nenabled=true\n"
        "[backend badbool]\nplugin=kvm\nenabled=perhaps\n"
        "[backend bad:name]\nplugin=kvm\n"
        "[group g]\nhost=typo\n"
        "[frobnicate]\nx=1\n",
        0644);
    put(f, "backends.d/dup.conf", "[backend badbool]\nplugin=esx\n", 0644);
    c = host_config_load(f->conf, TRUE, NULL, &err);
    g_assert_no_error(err);
    b = host_config_find_backend(c, "noplugin");
    want = g_strdup_printf("%s: backend 'noplugin': missing key 'plugin'", f->conf);
    g_assert_cmpstr(b->error, ==, want);
    b = host_config_find_backend(c, "badbool");
    g_assert_nonnull(strstr(b->error, "key 'enabled' must be true or false, not 'perhaps'"));
    g_assert_cmpstr(b->plugin, ==, "kvm"); /* the first definition wins */
    b = host_config_find_backend(c, "bad:name");
    g_assert_nonnull(b->error);
    g_assert_true(has_warning(c, "[vmshift]: unknown key 'colour'"));
    g_assert_true(has_warning(c, "[group g]: unknown key 'host'"));
    g_assert_true(has_warning(c, "[group g]: missing key 'hosts'"));
    g_assert_true(has_warning(c, "unknown group [frobnicate]"));
    g_assert_true(has_warning(c, "backend 'badbool' is already defined in"));
}

static void
test_credentials(Fixture *f, gconstpointer data)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(HostConfig) c = NULL;
    HostBackendConf *b;
    g_autofree char *cred = g_build_filename(f->dir, "open.cred", NULL);

    put(f, "open.cred", "user=u\npassword=secret\n", 0644);
    put(f, "closed.cred", "user=u\npassword=secret\n", 0600);
    put(f, "vmshift.conf",
        "[backend open]\nplugin=esx\ncredentials=open.cred\n"
        "[backend closed]\nplugin=esx\ncredentials=closed.cred\n",
        0644);
    c = host_config_load(f->conf, TRUE, NULL, &err);
    g_assert_no_error(err);
    b = host_config_find_backend(c, "open");
    g_assert_nonnull(b->error);
    g_assert_nonnull(strstr(b->error, cred));
    g_assert_nonnull(strstr(b->error, "0644"));
    g_assert_null(strstr(b->error, "secret"));
    b = host_config_find_backend(c, "closed");
    g_assert_null(b->error);
}

int
main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
#define T(name, fn) g_test_add("/host/config/" name, Fixture, NULL, setup, fn, teardown)
    T("good", test_good);
    T("state-dir-override", test_state_dir_override);
    T("missing-default-is-empty", test_missing_default_ok);
    T("missing-explicit", test_missing_explicit);
    T("bad-dropin", test_bad_dropin);
    T("not-regular", test_not_regular);
    T("duplicates", test_duplicates);
    T("bad-main-file", test_bad_main_file);
    T("bad-keys", test_bad_keys);
    T("credentials", test_credentials);
#undef T
    return g_test_run();
}
