## plugins/esx: the ESXi / vCenter plugin (vSphere Web Services API, SOAP
## /sdk) on the SDK's HTTP and XML helpers.  The logic is in a convenience
## library so that the integration driver and the fuzz target can link it.
if PLUGIN_ESX
noinst_LTLIBRARIES += plugins/esx/libesx-impl.la
plugins_esx_libesx_impl_la_SOURCES = \
	plugins/esx/esx.h plugins/esx/esx-ops.h plugins/esx/esx-impl.h \
	plugins/esx/esx-soap.c plugins/esx/esx.c \
	plugins/esx/esx-inventory.c plugins/esx/esx-checkpoint.c \
	plugins/esx/esx-plan.c plugins/esx/esx-task.c plugins/esx/esx-vmstate.c \
	plugins/esx/esx-migrate.c plugins/esx/esx-repair.c plugins/esx/esx-rest.c \
	plugins/esx/esx-acl.c plugins/esx/esx-watch.c plugins/esx/esx-guest.c \
	plugins/esx/esx-verify.c plugins/esx/esx-dsfile.c plugins/esx/esx-v2v.c \
	plugins/esx/esx-v2v-import.c
plugins_esx_libesx_impl_la_CPPFLAGS = $(AM_CPPFLAGS) -DG_LOG_DOMAIN=\"vmshift-esx\"
plugins_esx_libesx_impl_la_CFLAGS = $(AM_CFLAGS) $(GLIB_CFLAGS) $(XML_CFLAGS) $(CURL_CFLAGS) $(JSONC_CFLAGS) -fvisibility=hidden
plugins_esx_libesx_impl_la_LIBADD = sdk/libvmshift-sdk.la $(GLIB_LIBS) $(XML_LIBS) $(JSONC_LIBS) $(CURL_LIBS)

plugin_LTLIBRARIES += plugins/esx/esx.la
plugins_esx_esx_la_SOURCES = plugins/esx/plugin.c
plugins_esx_esx_la_CPPFLAGS = $(AM_CPPFLAGS) -DG_LOG_DOMAIN=\"vmshift-esx\"
plugins_esx_esx_la_CFLAGS = $(AM_CFLAGS) $(GLIB_CFLAGS) $(XML_CFLAGS) -fvisibility=hidden
plugins_esx_esx_la_LDFLAGS = -module $(PLUGIN_LINK_FLAGS)
plugins_esx_esx_la_LIBADD = plugins/esx/libesx-impl.la sdk/libvmshift-sdk.la \
	$(GLIB_LIBS) $(XML_LIBS) $(JSONC_LIBS)
endif

## Unit test of the plugin's pure logic (plan building, RelocateSpec, task
## results and their error codes), linked against the same convenience
## library; no simulator.
if PLUGIN_ESX
check_PROGRAMS += tests/unit/test-esx-plan
TESTS += tests/unit/test-esx-plan
tests_unit_test_esx_plan_SOURCES = tests/unit/test-esx-plan.c
tests_unit_test_esx_plan_CFLAGS = $(AM_CFLAGS) $(GLIB_CFLAGS) $(XML_CFLAGS)
tests_unit_test_esx_plan_LDADD = plugins/esx/libesx-impl.la sdk/libvmshift-sdk.la \
	$(GLIB_LIBS) $(XML_LIBS) $(JSONC_LIBS)
endif
