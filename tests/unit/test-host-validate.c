/* Unit tests of host validation helpers. */
#include "config.h"

#include "host/host.h"

static VmshiftVolume *
vol(GPtrArray *vols, const char *name, const char *path)
{
    VmshiftVolume *v = vmshift_volume_new();

    v->id = g_strdup_printf("id-%s", name);
    v->name = g_strdup(name);
    v->path = g_strdup(path);
    g_ptr_array_add(vols, v);
    return v;
}

static void
test_volume_for_path_posix(void)
{
    g_autoptr(GPtrArray) vols = vmshift_list_new((GDestroyNotify)vmshift_volume_free);
    VmshiftVolume *root = vol(vols, "root", "/");
    VmshiftVolume *srv = vol(vols, "srv", "/srv");
    VmshiftVolume *fast = vol(vols, "fast", "/srv/fast/");

    g_assert_true(host_volume_for_path(vols, "/srv/vms/a") == srv);
    g_assert_true(host_volume_for_path(vols, "/srv") == srv);
    g_assert_true(host_volume_for_path(vols, "/srv/fast/x") == fast);
    g_assert_true(host_volume_for_path(vols, "/srvx/y") == root);  /* not below /srv */
    g_assert_true(host_volume_for_path(vols, "/SRV/vms") == root); /* POSIX is case-sensitive */
    g_assert_true(host_volume_for_path(vols, "fast") == fast);     /* by name */
    g_assert_true(host_volume_for_path(vols, "id-srv") == srv);    /* by id */
    g_assert_null(host_volume_for_path(vols, "relative/path"));
    g_assert_null(host_volume_for_path(NULL, "/srv"));
}

static void
test_volume_for_path_windows(void)
{
    g_autoptr(GPtrArray) vols = vmshift_list_new((GDestroyNotify)vmshift_volume_free);
    VmshiftVolume *c = vol(vols, "C", "C:");
    VmshiftVolume *cback = vol(vols, "D", "D:\\");
    VmshiftVolume *csv = vol(vols, "csv1", "C:\\ClusterStorage\\Volume1");
    VmshiftVolume *unc = vol(vols, "share", "\\\\fs01\\vms");

    g_assert_true(host_volume_for_path(vols, "C:\\VMs\\dmz01") == c);
    g_assert_true(host_volume_for_path(vols, "c:\\vms\\dmz01") == c);   /* any case */
    g_assert_true(host_volume_for_path(vols, "C:\\VMs\\dmz01\\") == c); /* trailing '\' */
    g_assert_true(host_volume_for_path(vols, "d:\\Hyper-V") == cback);  /* root ends in '\' */
    g_assert_true(host_volume_for_path(vols, "C:\\clusterstorage\\volume1\\web") == csv);
    g_assert_true(host_volume_for_path(vols, "C:\\ClusterStorage\\Volume10") == c);
    g_assert_true(host_volume_for_path(vols, "\\\\FS01\\VMS\\web") == unc);
    g_assert_null(host_volume_for_path(vols, "E:\\VMs"));
}

int
main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/host/validate/volume-for-path/posix", test_volume_for_path_posix);
    g_test_add_func("/host/validate/volume-for-path/windows", test_volume_for_path_windows);
    return g_test_run();
}
