## plugins/esx: the ESXi / vCenter plugin (vSphere Web Services API, SOAP
## /sdk) on the SDK's HTTP and XML helpers.  The logic is in a convenience
## library so that the integration driver and the fuzz target can link it.
if PLUGIN_ESX
noinst_LTLIBRARIES += plugins/esx/libesx-impl.la
plugins_esx_libesx_impl_la_SOURCES = \
	plugins/esx/esx.c plugins/esx/esx.h plugins/esx/esx-ops.h \
	plugins/esx/esx-soap.c
plugins_esx_libesx_impl_la_CPPFLAGS = $(AM_CPPFLAGS) -DG_LOG_DOMAIN=\"vmshift-esx\"
plugins_esx_libesx_impl_la_CFLAGS = $(AM_CFLAGS) $(GLIB_CFLAGS) $(XML_CFLAGS) $(CURL_CFLAGS) $(JSONC_CFLAGS) -fvisibility=hidden
plugins_esx_libesx_impl_la_LIBADD = sdk/libvmshift-sdk.la $(GLIB_LIBS) $(XML_LIBS) $(JSONC_LIBS)

plugin_LTLIBRARIES += plugins/esx/esx.la
plugins_esx_esx_la_SOURCES = plugins/esx/plugin.c
plugins_esx_esx_la_CPPFLAGS = $(AM_CPPFLAGS) -DG_LOG_DOMAIN=\"vmshift-esx\"
plugins_esx_esx_la_CFLAGS = $(AM_CFLAGS) $(GLIB_CFLAGS) $(XML_CFLAGS) -fvisibility=hidden
plugins_esx_esx_la_LDFLAGS = -module $(PLUGIN_LINK_FLAGS)
plugins_esx_esx_la_LIBADD = plugins/esx/libesx-impl.la sdk/libvmshift-sdk.la \
	$(GLIB_LIBS) $(XML_LIBS) $(JSONC_LIBS)
endif
