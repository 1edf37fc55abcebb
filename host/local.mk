## host: the vmshift command (see HACKING.md); daemon/vmshiftd links the same library.
##
## The logic is a noinst convenience library so that the unit tests
## (tests/unit/test-host-*.c) link exactly the code the command runs.

bin_PROGRAMS += host/vmshift
noinst_LTLIBRARIES += host/libvmshift-host.la

## Every host source but main.c, in one list that both programs (vmshift,
## daemon/vmshiftd) and the unit tests link through the library: append a
## new host/*.c here (HOST_LIB_SOURCES += host/NEW.c).
HOST_LIB_SOURCES = \
	host/host.h \
	host/config.c \
	host/loader.c \
	host/registry.c \
	host/output.c \
	host/journal.c \
	host/procid.c \
	host/testhook.c \
	host/jobs.c \
	host/progress.c \
	host/validate.c \
	host/rate.c \
	host/rules.h \
	host/rules.c \
	host/place.c \
	host/session.c \
	host/spec.c \
	host/bulk.c \
	host/recovery.c \
	host/cmd.h \
	host/cmd-inventory.c \
	host/cmd-migrate.c \
	host/cmd-jobs.c \
	host/cmd-journal.c \
	host/cmd-bulk.c \
	host/cli.c
HOST_LIB_SOURCES += host/client.c
HOST_LIB_SOURCES += host/plan.c host/schedule.c
HOST_LIB_SOURCES += host/convert.h host/convert.c
## moves between backends (issue 16): the job runner, the spec and checks
HOST_LIB_SOURCES += host/crossmove.h host/crossmove.c host/crossvm.c
host_libvmshift_host_la_SOURCES = $(HOST_LIB_SOURCES)
host_libvmshift_host_la_CPPFLAGS = $(AM_CPPFLAGS) -DG_LOG_DOMAIN=\"vmshift\" \
	-DHOST_SYSCONFDIR=\"$(pkgsysconfdir)\" \
	-DHOST_STATEDIR=\"$(statedir)\" \
	-DHOST_PLUGINDIR=\"$(plugindir)\"
host_libvmshift_host_la_CFLAGS = $(AM_CFLAGS) $(GLIB_CFLAGS) $(GIO_UNIX_CFLAGS) \
	$(SQLITE_CFLAGS) $(JSONC_CFLAGS) $(SMARTCOLS_CFLAGS) $(CRYPTO_CFLAGS)
host_libvmshift_host_la_LIBADD = sdk/libvmshift-sdk.la $(GLIB_LIBS) $(GIO_UNIX_LIBS) \
	$(SQLITE_LIBS) $(JSONC_LIBS) $(SMARTCOLS_LIBS) $(CRYPTO_LIBS) -lm

host_vmshift_SOURCES = host/main.c
host_vmshift_CPPFLAGS = $(host_libvmshift_host_la_CPPFLAGS)
host_vmshift_CFLAGS = $(host_libvmshift_host_la_CFLAGS)
host_vmshift_LDADD = host/libvmshift-host.la

## Loader test plugins (tests/plugins/testplugin.c built once per variant).
## check_LTLIBRARIES become shared objects only with an rpath.
TEST_PLUGINS = tests/plugins/good.la tests/plugins/abimajor.la tests/plugins/abiminor.la tests/plugins/nosym.la tests/plugins/short.la tests/plugins/shortops.la tests/plugins/badname.la tests/plugins/noopen.la
check_LTLIBRARIES += $(TEST_PLUGINS)
TEST_PLUGIN_CFLAGS = $(AM_CFLAGS) $(GLIB_CFLAGS) -fvisibility=hidden
TEST_PLUGIN_LIBADD = sdk/libvmshift-sdk.la $(GLIB_LIBS)
## -export-symbols-regex would hide nosym's symbol; the entry point is the
## only default-visibility symbol in the others anyway.
TEST_PLUGIN_LDFLAGS = $(AM_LDFLAGS) -module -avoid-version -shared -no-undefined -rpath /nowhere
tests_plugins_good_la_SOURCES = tests/plugins/testplugin.c
tests_plugins_good_la_CPPFLAGS = $(AM_CPPFLAGS) -DTP_NAME='"good"' -DTP_VARIANT_GOOD
tests_plugins_good_la_CFLAGS = $(TEST_PLUGIN_CFLAGS)
tests_plugins_good_la_LIBADD = $(TEST_PLUGIN_LIBADD)
tests_plugins_good_la_LDFLAGS = $(TEST_PLUGIN_LDFLAGS)
tests_plugins_abimajor_la_SOURCES = tests/plugins/testplugin.c
tests_plugins_abimajor_la_CPPFLAGS = $(AM_CPPFLAGS) -DTP_NAME='"abimajor"' -DTP_VARIANT_ABIMAJOR
tests_plugins_abimajor_la_CFLAGS = $(TEST_PLUGIN_CFLAGS)
tests_plugins_abimajor_la_LIBADD = $(TEST_PLUGIN_LIBADD)
tests_plugins_abimajor_la_LDFLAGS = $(TEST_PLUGIN_LDFLAGS)
tests_plugins_abiminor_la_SOURCES = tests/plugins/testplugin.c
tests_plugins_abiminor_la_CPPFLAGS = $(AM_CPPFLAGS) -DTP_NAME='"abiminor"' -DTP_VARIANT_ABIMINOR
tests_plugins_abiminor_la_CFLAGS = $(TEST_PLUGIN_CFLAGS)
tests_plugins_abiminor_la_LIBADD = $(TEST_PLUGIN_LIBADD)
tests_plugins_abiminor_la_LDFLAGS = $(TEST_PLUGIN_LDFLAGS)
tests_plugins_nosym_la_SOURCES = tests/plugins/testplugin.c
tests_plugins_nosym_la_CPPFLAGS = $(AM_CPPFLAGS) -DTP_NAME='"nosym"' -DTP_VARIANT_NOSYM
tests_plugins_nosym_la_CFLAGS = $(TEST_PLUGIN_CFLAGS)
tests_plugins_nosym_la_LIBADD = $(TEST_PLUGIN_LIBADD)
tests_plugins_nosym_la_LDFLAGS = $(TEST_PLUGIN_LDFLAGS)
tests_plugins_short_la_SOURCES = tests/plugins/testplugin.c
tests_plugins_short_la_CPPFLAGS = $(AM_CPPFLAGS) -DTP_NAME='"short"' -DTP_VARIANT_SHORT
tests_plugins_short_la_CFLAGS = $(TEST_PLUGIN_CFLAGS)
tests_plugins_short_la_LIBADD = $(TEST_PLUGIN_LIBADD)
tests_plugins_short_la_LDFLAGS = $(TEST_PLUGIN_LDFLAGS)
tests_plugins_shortops_la_SOURCES = tests/plugins/testplugin.c
tests_plugins_shortops_la_CPPFLAGS = $(AM_CPPFLAGS) -DTP_NAME='"shortops"' -DTP_VARIANT_SHORTOPS
tests_plugins_shortops_la_CFLAGS = $(TEST_PLUGIN_CFLAGS)
tests_plugins_shortops_la_LIBADD = $(TEST_PLUGIN_LIBADD)
tests_plugins_shortops_la_LDFLAGS = $(TEST_PLUGIN_LDFLAGS)
tests_plugins_badname_la_SOURCES = tests/plugins/testplugin.c
tests_plugins_badname_la_CPPFLAGS = $(AM_CPPFLAGS) -DTP_NAME='"badname"' -DTP_VARIANT_BADNAME
tests_plugins_badname_la_CFLAGS = $(TEST_PLUGIN_CFLAGS)
tests_plugins_badname_la_LIBADD = $(TEST_PLUGIN_LIBADD)
tests_plugins_badname_la_LDFLAGS = $(TEST_PLUGIN_LDFLAGS)
tests_plugins_noopen_la_SOURCES = tests/plugins/testplugin.c
tests_plugins_noopen_la_CPPFLAGS = $(AM_CPPFLAGS) -DTP_NAME='"noopen"' -DTP_VARIANT_NOOPEN
tests_plugins_noopen_la_CFLAGS = $(TEST_PLUGIN_CFLAGS)
tests_plugins_noopen_la_LIBADD = $(TEST_PLUGIN_LIBADD)
tests_plugins_noopen_la_LDFLAGS = $(TEST_PLUGIN_LDFLAGS)

## CLI and end-to-end tests (tests/host/); they use the loader test plugins
## and the in-tree skeleton plugin (tests/skeleton/local.mk).
check_PROGRAMS += tests/host/json-check
tests_host_json_check_SOURCES = tests/host/json-check.c
tests_host_json_check_CFLAGS = $(AM_CFLAGS) $(JSONC_CFLAGS)
tests_host_json_check_LDADD = $(JSONC_LIBS)
TESTS += tests/host/cli.sh
dist_noinst_SCRIPTS += tests/host/cli.sh
## The administrator's view: --version, help, vm show, networks, volumes,
## jobs filters, journal prune, ASCII output, bash completion (#18).
TESTS += tests/host/cli-admin.sh
dist_noinst_SCRIPTS += tests/host/cli-admin.sh
## Tables (-o, --noheadings, --raw, ASCII under LC_ALL=C) and the progress
## of concurrent jobs on a pseudo-terminal (#18).
TESTS += tests/host/tables.sh tests/host/progress-tty.py
dist_noinst_SCRIPTS += tests/host/tables.sh tests/host/progress-tty.py
## The journal: location truth, refusals, read-only, SIGHUP (#13).
TESTS += tests/host/journal.sh
dist_noinst_SCRIPTS += tests/host/journal.sh
## Recovery: job repair's choices, interrupted jobs holding their VM, bulk
## accounting and --reverse, on the skeleton's own state (#13).
TESTS += tests/host/repair.sh
dist_noinst_SCRIPTS += tests/host/repair.sh
## The rule engine: every finding code, rate = check, placement (#11).
TESTS += tests/host/rules.sh
dist_noinst_SCRIPTS += tests/host/rules.sh
## Scheduled switchover on the skeleton (starts at the time), bad times (#17).
TESTS += tests/host/switchover.sh
dist_noinst_SCRIPTS += tests/host/switchover.sh
## A wave of many VMs at low concurrency: each accounted once (report,
## --json, the skeleton's state), --reverse of exactly the moved (#15).
TESTS += tests/host/bulk-many.sh
dist_noinst_SCRIPTS += tests/host/bulk-many.sh
## Start-up: no plugin's open waits on the network; the first operation
## contacts the host and fails in one line; backends --check (#15).
TESTS += tests/host/startup.sh
dist_noinst_SCRIPTS += tests/host/startup.sh

## Bash completion (asks `vmshift __complete`; no network call).
bashcompletiondir = $(datadir)/bash-completion/completions
dist_bashcompletion_DATA = data/bash-completion/vmshift

## The administrator's main configuration file, all commented.
dist_pkgsysconf_DATA = host/vmshift.conf

## Unit test of host/spec.c (spec building, with the "good" test plugin).
check_PROGRAMS += tests/unit/test-spec
TESTS += tests/unit/test-spec
tests_unit_test_spec_SOURCES = tests/unit/test-spec.c
tests_unit_test_spec_CFLAGS = $(AM_CFLAGS) $(GLIB_CFLAGS) $(SQLITE_CFLAGS) $(JSONC_CFLAGS)
tests_unit_test_spec_LDADD = host/libvmshift-host.la sdk/libvmshift-sdk.la $(GLIB_LIBS) \
	$(SQLITE_LIBS) $(JSONC_LIBS)
EXTRA_tests_unit_test_spec_DEPENDENCIES = $(TEST_PLUGINS)
