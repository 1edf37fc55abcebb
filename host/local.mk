## host: the vmshift command (see HACKING.md).
##
## The logic is a noinst convenience library so that the unit tests
## (tests/unit/test-host-*.c) link exactly the code the command runs.

bin_PROGRAMS += host/vmshift
noinst_LTLIBRARIES += host/libvmshift-host.la

host_libvmshift_host_la_SOURCES = \
	host/host.h \
	host/config.c \
	host/loader.c \
	host/registry.c \
	host/output.c \
	host/journal.c \
	host/jobs.c \
	host/progress.c \
	host/validate.c \
	host/rate.c \
	host/bulk.c \
	host/cli.c
host_libvmshift_host_la_CPPFLAGS = $(AM_CPPFLAGS) -DG_LOG_DOMAIN=\"vmshift\" \
	-DHOST_SYSCONFDIR=\"$(pkgsysconfdir)\" \
	-DHOST_STATEDIR=\"$(statedir)\" \
	-DHOST_PLUGINDIR=\"$(plugindir)\"
host_libvmshift_host_la_CFLAGS = $(AM_CFLAGS) $(GLIB_CFLAGS) $(GIO_UNIX_CFLAGS) \
	$(SQLITE_CFLAGS) $(JSONC_CFLAGS)
host_libvmshift_host_la_LIBADD = sdk/libvmshift-sdk.la $(GLIB_LIBS) $(GIO_UNIX_LIBS) \
	$(SQLITE_LIBS) $(JSONC_LIBS) -lm

host_vmshift_SOURCES = host/main.c
host_vmshift_CPPFLAGS = $(host_libvmshift_host_la_CPPFLAGS)
host_vmshift_CFLAGS = $(host_libvmshift_host_la_CFLAGS)
host_vmshift_LDADD = host/libvmshift-host.la
