## daemon: vmshiftd, the job daemon and REST API (#17). It links the host
## library (host/local.mk), so jobs run through the same code as `vmshift`.

if ENABLE_DAEMON
sbin_PROGRAMS = daemon/vmshiftd
daemon_vmshiftd_SOURCES = \
	daemon/daemon.h \
	daemon/vmshiftd.c \
	daemon/auth.c \
	daemon/api.c \
	daemon/jobs-json.c \
	daemon/inventory.c \
	daemon/djobs.c \
	daemon/events.c \
	daemon/metrics.c \
	daemon/tcp.c \
	daemon/dbulk.c \
	daemon/web.h \
	daemon/web.c \
	daemon/webpages.c
daemon_vmshiftd_CPPFLAGS = $(AM_CPPFLAGS) -DG_LOG_DOMAIN=\"vmshiftd\" \
	-DHOST_SYSCONFDIR=\"$(pkgsysconfdir)\" -DDAEMON_DATADIR=\"$(pkgdatadir)\" -D_GNU_SOURCE
daemon_vmshiftd_CFLAGS = $(host_libvmshift_host_la_CFLAGS) $(SOUP_CFLAGS)
daemon_vmshiftd_LDADD = host/libvmshift-host.la $(SOUP_LIBS) $(GLIB_LIBS) $(GIO_UNIX_LIBS) \
	$(SQLITE_LIBS) $(JSONC_LIBS)

## The API's description, served at /api/v1/openapi.json, and the web view.
dist_pkgdata_DATA = data/openapi.json
wwwdir = $(pkgdatadir)/www
dist_www_DATA = data/www/page.html data/www/style.css data/www/app.js

## systemd: the service and its socket (socket activation).
systemdsystemunit_DATA = data/systemd/vmshiftd.service data/systemd/vmshiftd.socket
endif
EXTRA_DIST += data/systemd/vmshiftd.service.in data/systemd/vmshiftd.socket data/openapi.json \
	data/www/page.html data/www/style.css data/www/app.js
CLEANFILES += data/systemd/vmshiftd.service
data/systemd/vmshiftd.service: data/systemd/vmshiftd.service.in Makefile
	$(AM_V_GEN)mkdir -p data/systemd && \
	$(SED) -e 's|@sbindir[@]|$(sbindir)|g' -e 's|@pkgsysconfdir[@]|$(pkgsysconfdir)|g' \
		$(srcdir)/data/systemd/vmshiftd.service.in >$@

## Tests: vmshiftd end to end on the skeleton backend (tests/daemon/); they
## start daemons and ask as another user, so they run with the integration
## tests (not in a package build).
if ENABLE_DAEMON
if ENABLE_INTEGRATION
TESTS += tests/daemon/api.sh tests/daemon/auth.sh tests/daemon/tls.sh tests/daemon/bulk.sh tests/daemon/web.sh \
	tests/daemon/jobs-json.sh
endif
endif
dist_noinst_SCRIPTS += tests/daemon/api.sh tests/daemon/auth.sh tests/daemon/openapi-check.py \
	tests/daemon/tls.sh tests/daemon/bulk.sh tests/daemon/web.sh tests/daemon/webdriver.py \
	tests/daemon/jobs-json.sh
EXTRA_DIST += tests/daemon/lib.sh

## bench/daemon: GET /api/v1/jobs with 10,000 journal jobs, 300 /events
## clients; prints figures against same-run baselines. Run: make bench-daemon
dist_noinst_SCRIPTS += bench/daemon
.PHONY: bench-daemon
bench-daemon: all tests/skeleton/skeleton.la
	VMSHIFT_BUILDDIR='$(abs_top_builddir)' VMSHIFT_SRCDIR='$(abs_top_srcdir)' \
	$(PYTHON3) $(srcdir)/bench/daemon
