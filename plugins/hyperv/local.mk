## plugins/hyperv: the Hyper-V plugin (WMI over WS-Management).
## The logic is in a convenience library so tests and the fuzz target can
## link it.
if PLUGIN_HYPERV
noinst_LTLIBRARIES += plugins/hyperv/libhyperv-impl.la
plugins_hyperv_libhyperv_impl_la_SOURCES = \
	plugins/hyperv/hyperv.c plugins/hyperv/hyperv.h \
	plugins/hyperv/wsman.c plugins/hyperv/wsman.h \
	plugins/hyperv/ntlm.c plugins/hyperv/ntlm.h
plugins_hyperv_libhyperv_impl_la_CPPFLAGS = $(AM_CPPFLAGS) -DG_LOG_DOMAIN=\"vmshift-hyperv\"
plugins_hyperv_libhyperv_impl_la_CFLAGS = $(AM_CFLAGS) $(GLIB_CFLAGS) $(XML_CFLAGS) $(CURL_CFLAGS) -fvisibility=hidden
plugins_hyperv_libhyperv_impl_la_LIBADD = sdk/libvmshift-sdk.la $(GLIB_LIBS) $(XML_LIBS)

plugin_LTLIBRARIES += plugins/hyperv/hyperv.la
plugins_hyperv_hyperv_la_SOURCES = plugins/hyperv/plugin.c
plugins_hyperv_hyperv_la_CPPFLAGS = $(AM_CPPFLAGS) -DG_LOG_DOMAIN=\"vmshift-hyperv\"
plugins_hyperv_hyperv_la_CFLAGS = $(AM_CFLAGS) $(GLIB_CFLAGS) $(XML_CFLAGS) -fvisibility=hidden
plugins_hyperv_hyperv_la_LDFLAGS = -module $(PLUGIN_LINK_FLAGS)
plugins_hyperv_hyperv_la_LIBADD = plugins/hyperv/libhyperv-impl.la sdk/libvmshift-sdk.la \
	$(GLIB_LIBS) $(XML_LIBS)
endif
EXTRA_DIST += docs/hyperv.md
