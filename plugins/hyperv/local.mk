## plugins/hyperv: the Hyper-V plugin (WMI over WS-Management).
## The logic is in a convenience library, built once, that the plugin, its
## unit test (tests/unit/test-hyperv-wmi) and the fuzz targets link.
if PLUGIN_HYPERV
noinst_LTLIBRARIES += plugins/hyperv/libhyperv-impl.la
plugins_hyperv_libhyperv_impl_la_SOURCES = \
	plugins/hyperv/hyperv.h plugins/hyperv/hyperv-wmi.h \
	plugins/hyperv/hyperv-conn.c \
	plugins/hyperv/hyperv-path.c \
	plugins/hyperv/hyperv-wmi.c \
	plugins/hyperv/hyperv-vm.c \
	plugins/hyperv/hyperv-inventory.c \
	plugins/hyperv/hyperv-checkpoint.c \
	plugins/hyperv/hyperv-check.c \
	plugins/hyperv/hyperv-job.c \
	plugins/hyperv/hyperv-migrate.c \
	plugins/hyperv/hyperv-repair.c \
	plugins/hyperv/hyperv-acl.c \
	plugins/hyperv/hyperv-krb.c \
	plugins/hyperv/hyperv-v2v.c plugins/hyperv/hyperv-import.c plugins/hyperv/hyperv-smb.c \
	plugins/hyperv/wsman.c plugins/hyperv/wsman.h \
	plugins/hyperv/ntlm.c plugins/hyperv/ntlm.h
plugins_hyperv_libhyperv_impl_la_CPPFLAGS = $(AM_CPPFLAGS) -DG_LOG_DOMAIN=\"vmshift-hyperv\"
plugins_hyperv_libhyperv_impl_la_CFLAGS = $(AM_CFLAGS) $(GLIB_CFLAGS) $(XML_CFLAGS) $(CURL_CFLAGS) \
	$(SMBCLIENT_CFLAGS) -fvisibility=hidden
## libsmbclient is not linked: hyperv-smb.c loads it at the first SMB use
plugins_hyperv_libhyperv_impl_la_LIBADD = sdk/libvmshift-sdk.la $(GLIB_LIBS) $(XML_LIBS)

plugin_LTLIBRARIES += plugins/hyperv/hyperv.la
plugins_hyperv_hyperv_la_SOURCES = plugins/hyperv/plugin.c
plugins_hyperv_hyperv_la_CPPFLAGS = $(AM_CPPFLAGS) -DG_LOG_DOMAIN=\"vmshift-hyperv\"
plugins_hyperv_hyperv_la_CFLAGS = $(AM_CFLAGS) $(GLIB_CFLAGS) $(XML_CFLAGS) -fvisibility=hidden
plugins_hyperv_hyperv_la_LDFLAGS = -module $(PLUGIN_LINK_FLAGS)
plugins_hyperv_hyperv_la_LIBADD = plugins/hyperv/libhyperv-impl.la sdk/libvmshift-sdk.la \
	$(GLIB_LIBS) $(XML_LIBS)

## Unit test of the plugin's pure logic (WMI values, texts, SIDs, faults):
## no simulator, no network.  Links the convenience library.
check_PROGRAMS += tests/unit/test-hyperv-wmi
TESTS += tests/unit/test-hyperv-wmi
tests_unit_test_hyperv_wmi_SOURCES = tests/unit/test-hyperv-wmi.c
tests_unit_test_hyperv_wmi_CFLAGS = $(AM_CFLAGS) $(GLIB_CFLAGS) $(XML_CFLAGS)
tests_unit_test_hyperv_wmi_LDADD = plugins/hyperv/libhyperv-impl.la sdk/libvmshift-sdk.la \
	$(GLIB_LIBS) $(XML_LIBS)
endif
