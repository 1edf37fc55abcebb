/* Unit tests of the host's spec building (host/spec.c): options to a
 * VmshiftMigrationSpec, and the spec back to its command line. The VMs and
 * hosts come from the loader's test plugin "good" (tests/plugins/). */
#include "config.h"

#include <glib/gstdio.h>
#include <string.h>
#include <sys/stat.h>

#include "host/host.h"

typedef struct {
    char *dir;
    HostConfig *config;
    HostLoader *loader;
    HostRegistry *reg;
} Fixture;

static void
setup(Fixture *f, gconstpointer data)
{
    const char *b = g_getenv("VMSHIFT_BUILDDIR");
    g_autofree char *src = g_build_filename(b ? b : ".", "tests", "plugins", ".libs", "good.so",
                                            NULL);
    g_autofree char *dst = NULL, *conf = NULL, *so = NULL;
    const char *dirs[2] = { NULL, NULL };
    g_autoptr(GError) err = NULL;
    gsize len;

    f->dir = g_dir_make_tmp("vmshift-spec-XXXXXX", &err);
    g_assert_no_error(err);
    g_assert_cmpint(chmod(f->dir, 0755), ==, 0);
    /* the loader wants a plugin file only root or its owner can change */
    g_assert_true(g_file_get_contents(src, &so, &len, &err));
    dst = g_build_filename(f->dir, "good.so", NULL);
    g_assert_true(g_file_set_contents(dst, so, (gssize)len, &err));
    g_assert_cmpint(chmod(dst, 0755), ==, 0);
    conf = g_build_filename(f->dir, "vmshift.conf", NULL);
    g_assert_true(g_file_set_contents(conf,
                                      "[vmshift]\nstate-dir=/nonexistent\n"
                                      "[backend a]\nplugin=good\nvms=v1@h1;off@h1\n"
                                      "[backend b]\nplugin=good\nvms=w1@h1\n"
                                      "[group g]\nhosts=a:h1;a:h2\n",
                                      -1, &err));
    f->config = host_config_load(conf, TRUE, NULL, &err);
    g_assert_no_error(err);
    dirs[0] = f->dir;
    f->loader = host_loader_new(dirs, FALSE);
    f->reg = host_registry_new(f->config, f->loader, FALSE);
}

static void
teardown(Fixture *f, gconstpointer data)
{
    const char *files[] = { "good.so", "vmshift.conf" };

    host_registry_free(f->reg);
    host_loader_free(f->loader);
    host_config_free(f->config);
    for (guint i = 0; i < G_N_ELEMENTS(files); i++) {
        g_autofree char *p = g_build_filename(f->dir, files[i], NULL);
        g_unlink(p);
    }
    g_rmdir(f->dir);
    g_free(f->dir);
}

static void
test_mappings(void)
{
    g_autoptr(GPtrArray) m = vmshift_list_new((GDestroyNotify)vmshift_mapping_free);
    char *good[] = { (char *)"vda=/srv/a", (char *)"net0=br=1", NULL };
    char *bad[][2] = { { (char *)"=x", NULL }, { (char *)"vda=", NULL }, { (char *)"vda", NULL } };
    VmshiftMapping *x;

    g_assert_true(host_spec_add_mappings(m, good, "--disk-path", NULL));
    g_assert_true(host_spec_add_mappings(m, NULL, "--disk-path", NULL));
    g_assert_cmpuint(m->len, ==, 2);
    x = g_ptr_array_index(m, 1);
    g_assert_cmpstr(x->key, ==, "net0");
    g_assert_cmpstr(x->value, ==, "br=1");
    for (guint i = 0; i < G_N_ELEMENTS(bad); i++) {
        g_autoptr(GError) err = NULL;
        g_assert_false(host_spec_add_mappings(m, bad[i], "--network", &err));
        g_assert_error(err, VMSHIFT_ERROR, VMSHIFT_ERROR_INVALID_ARGUMENT);
        g_assert_true(g_str_has_prefix(err->message, "--network "));
        g_assert_true(g_str_has_suffix(err->message, ": expected KEY=VALUE"));
    }
}

static void
test_transfer(void)
{
    guint32 t = 99;

    g_assert_true(host_spec_parse_transfer(NULL, &t) && t == VMSHIFT_TRANSFER_AUTO);
    g_assert_true(host_spec_parse_transfer("auto", &t) && t == VMSHIFT_TRANSFER_AUTO);
    g_assert_true(host_spec_parse_transfer("san", &t) && t == VMSHIFT_TRANSFER_SAN);
    g_assert_true(host_spec_parse_transfer("network", &t) && t == VMSHIFT_TRANSFER_NETWORK);
    g_assert_false(host_spec_parse_transfer("nfs", &t));
}

/* --to: type from the power state or --live/--cold, every option carried */
static void
test_build_to(Fixture *f, gconstpointer data)
{
    char *disks[] = { (char *)"vda=/srv/fast", NULL };
    char *nets[] = { (char *)"net0=br1", NULL };
    HostMigrateOpts o = { .to = (char *)"h2",
                          .path = (char *)"/srv/vms",
                          .disk_paths = disks,
                          .networks = nets,
                          .transfer = (char *)"network",
                          .start = TRUE,
                          .force = TRUE };
    g_autoptr(GError) err = NULL;
    g_autoptr(VmshiftVm) vm = NULL;
    g_autoptr(VmshiftMigrationSpec) spec = NULL;
    g_autoptr(VmshiftMigrationSpec) cold = NULL;
    HostBackend *b = NULL;

    spec = host_build_spec(f->reg, "v1", &o, FALSE, &b, &vm, &err);
    g_assert_no_error(err);
    g_assert_nonnull(spec);
    g_assert_cmpstr(host_backend_name(b), ==, "a");
    g_assert_cmpstr(vm->name, ==, "v1");
    g_assert_cmpstr(spec->vm, ==, "v1");
    g_assert_cmpuint(spec->type, ==, VMSHIFT_MIGRATION_LIVE); /* v1 runs */
    g_assert_cmpstr(spec->dest_host, ==, "h2");
    g_assert_cmpstr(spec->dest_path, ==, "/srv/vms");
    g_assert_cmpstr(vmshift_migration_spec_disk_dir(spec, "vda"), ==, "/srv/fast");
    g_assert_cmpstr(vmshift_migration_spec_network_for(spec, "net0"), ==, "br1");
    g_assert_cmpuint(spec->transfer, ==, VMSHIFT_TRANSFER_NETWORK);
    g_assert_true(spec->start && spec->force);
    g_assert_null(spec->options);

    o.cold = TRUE;
    o.to = (char *)"a:h2";
    cold = host_build_spec(f->reg, "a:v1", &o, FALSE, NULL, NULL, &err);
    g_assert_no_error(err);
    g_assert_cmpuint(cold->type, ==, VMSHIFT_MIGRATION_COLD);
    g_assert_cmpstr(cold->dest_host, ==, "h2");
}

static void
test_build_storage(Fixture *f, gconstpointer data)
{
    HostMigrateOpts o = { .path = (char *)"/srv/other" };
    g_autoptr(GError) err = NULL;
    g_autoptr(VmshiftMigrationSpec)
        spec = host_build_spec(f->reg, "b:w1", &o, TRUE, NULL, NULL, &err);
    g_assert_no_error(err);
    g_assert_cmpuint(spec->type, ==, VMSHIFT_MIGRATION_STORAGE);
    g_assert_null(spec->dest_host);
    g_assert_cmpstr(spec->dest_path, ==, "/srv/other");
    g_assert_cmpuint(spec->transfer, ==, VMSHIFT_TRANSFER_AUTO);
}

/* --to-group: the best-rated host of the group */
static void
test_build_group(Fixture *f, gconstpointer data)
{
    HostMigrateOpts o = { .to_group = (char *)"g" };
    g_autoptr(GError) err = NULL;
    g_autoptr(VmshiftMigrationSpec)
        spec = host_build_spec(f->reg, "v1", &o, FALSE, NULL, NULL, &err);
    g_assert_no_error(err);
    g_assert_cmpstr(spec->dest_host, ==, "h2"); /* v1 is on h1 already */
    g_assert_cmpuint(spec->type, ==, VMSHIFT_MIGRATION_LIVE);
}

static void
test_build_errors(Fixture *f, gconstpointer data)
{
    struct {
        const char *vm, *to, *transfer;
        char *disk;
        gint code;
        const char *in_message;
    } cases[] = {
        { "nope", "h2", NULL, NULL, VMSHIFT_ERROR_NOT_FOUND, "nope" },
        { "v1", "b:h2", NULL, NULL, VMSHIFT_ERROR_NOT_SUPPORTED,
          "does not support moves to/from other backends" },
        { "v1", "h2", "nfs", NULL, VMSHIFT_ERROR_INVALID_ARGUMENT,
          "--transfer must be auto, san or network, not 'nfs'" },
        { "v1", "h2", NULL, (char *)"vda", VMSHIFT_ERROR_INVALID_ARGUMENT,
          "--disk-path vda: expected KEY=VALUE" },
    };

    for (guint i = 0; i < G_N_ELEMENTS(cases); i++) {
        char *disks[] = { cases[i].disk, NULL };
        HostMigrateOpts o = { .to = (char *)cases[i].to,
                              .transfer = (char *)cases[i].transfer,
                              .disk_paths = disks };
        g_autoptr(GError) err = NULL;
        HostBackend *b = (HostBackend *)&o; /* untouched on failure */
        VmshiftVm *vm = (VmshiftVm *)&o;
        g_autoptr(VmshiftMigrationSpec)
            spec = host_build_spec(f->reg, cases[i].vm, &o, FALSE, &b, &vm, &err);
        g_assert_null(spec);
        g_assert_error(err, VMSHIFT_ERROR, cases[i].code);
        g_assert_nonnull(strstr(err->message, cases[i].in_message));
        g_assert_true(b == (HostBackend *)&o && vm == (VmshiftVm *)&o);
    }
}

static void
test_command_line(void)
{
    g_autoptr(VmshiftMigrationSpec) s = vmshift_migration_spec_new();
    g_autofree char *live = NULL, *storage = NULL;

    s->vm = g_strdup("web 1");
    s->dest_host = g_strdup("h2");
    s->type = VMSHIFT_MIGRATION_LIVE;
    s->dest_path = g_strdup("/srv/vms");
    g_ptr_array_add(s->disk_paths, vmshift_mapping_new("vda", "/srv/my disks"));
    g_ptr_array_add(s->networks, vmshift_mapping_new("net0", "br1"));
    s->transfer = VMSHIFT_TRANSFER_SAN;
    s->force = TRUE;
    live = host_spec_command_line("kvm", s);
    g_assert_cmpstr(live, ==,
                    "vmshift migrate 'kvm:web 1' --to kvm:h2 --live --path /srv/vms "
                    "--disk-path 'vda=/srv/my disks' --network net0=br1 --transfer san "
                    "--force");

    s->type = VMSHIFT_MIGRATION_STORAGE;
    g_clear_pointer(&s->dest_host, g_free);
    g_ptr_array_set_size(s->disk_paths, 0);
    g_ptr_array_set_size(s->networks, 0);
    s->transfer = VMSHIFT_TRANSFER_AUTO;
    s->force = FALSE;
    s->start = TRUE;
    storage = host_spec_command_line("kvm", s);
    g_assert_cmpstr(storage, ==, "vmshift migrate-storage 'kvm:web 1' --path /srv/vms --start");
}

int
main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/host/spec/mappings", test_mappings);
    g_test_add_func("/host/spec/transfer", test_transfer);
    g_test_add("/host/spec/build-to", Fixture, NULL, setup, test_build_to, teardown);
    g_test_add("/host/spec/build-storage", Fixture, NULL, setup, test_build_storage, teardown);
    g_test_add("/host/spec/build-group", Fixture, NULL, setup, test_build_group, teardown);
    g_test_add("/host/spec/build-errors", Fixture, NULL, setup, test_build_errors, teardown);
    g_test_add_func("/host/spec/command-line", test_command_line);
    return g_test_run();
}
