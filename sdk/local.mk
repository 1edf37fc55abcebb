## libvmshift-sdk: the plugin SDK (public headers, shared library, .pc).

lib_LTLIBRARIES += sdk/libvmshift-sdk.la

vmshiftincludedir = $(includedir)/vmshift
vmshiftinclude_HEADERS = \
	sdk/include/vmshift/vmshift.h \
	sdk/include/vmshift/error.h \
	sdk/include/vmshift/types.h \
	sdk/include/vmshift/findings.h \
	sdk/include/vmshift/job.h \
	sdk/include/vmshift/conf.h \
	sdk/include/vmshift/plugin.h \
	sdk/include/vmshift/disk.h
nodist_vmshiftinclude_HEADERS = sdk/include/vmshift/version.h

sdk_libvmshift_sdk_la_SOURCES = \
	sdk/sdk-private.h \
	sdk/path-check.h \
	sdk/error.c \
	sdk/types.c \
	sdk/findings.c \
	sdk/job.c \
	sdk/disk.c \
	sdk/conf.c
sdk_libvmshift_sdk_la_CPPFLAGS = $(AM_CPPFLAGS) -DVMSHIFT_COMPILATION -DG_LOG_DOMAIN=\"vmshift-sdk\"
sdk_libvmshift_sdk_la_CFLAGS = $(AM_CFLAGS) $(GLIB_CFLAGS) -fvisibility=hidden
sdk_libvmshift_sdk_la_LIBADD = $(GLIB_LIBS)
sdk_libvmshift_sdk_la_LDFLAGS = $(AM_LDFLAGS) -version-info $(SDK_LT_VERSION) -no-undefined \
	-Wl,--version-script=$(srcdir)/sdk/libvmshift-sdk.syms
EXTRA_sdk_libvmshift_sdk_la_DEPENDENCIES = $(srcdir)/sdk/libvmshift-sdk.syms

pkgconfig_DATA += sdk/vmshift-sdk.pc

EXTRA_DIST += sdk/libvmshift-sdk.syms sdk/vmshift-sdk.pc.in \
	sdk/include/vmshift/version.h.in sdk/THREADS.md

## Transport helpers (HTTP, XML) and the QMP client have fragments of their own.
include sdk/transport.mk
include sdk/qmp.mk
