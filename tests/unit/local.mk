## tests/unit: build rules (see HACKING.md)

## SDK core
check_PROGRAMS += tests/unit/test-sdk
TESTS += tests/unit/test-sdk
tests_unit_test_sdk_SOURCES = tests/unit/test-sdk.c
tests_unit_test_sdk_CFLAGS = $(AM_CFLAGS) $(GLIB_CFLAGS)
tests_unit_test_sdk_LDADD = sdk/libvmshift-sdk.la $(GLIB_LIBS)

## SDK disk streams (qemu-img, qemu-nbd, nbdcopy; skips without them)
check_PROGRAMS += tests/unit/test-sdk-disk
TESTS += tests/unit/test-sdk-disk
tests_unit_test_sdk_disk_SOURCES = tests/unit/test-sdk-disk.c
tests_unit_test_sdk_disk_CFLAGS = $(AM_CFLAGS) $(GLIB_CFLAGS)
tests_unit_test_sdk_disk_LDADD = sdk/libvmshift-sdk.la $(GLIB_LIBS)

## QMP client (KVM work)
check_PROGRAMS += tests/unit/test-qmp
TESTS += tests/unit/test-qmp
tests_unit_test_qmp_SOURCES = tests/unit/test-qmp.c
tests_unit_test_qmp_CFLAGS = $(AM_CFLAGS) $(GLIB_CFLAGS) $(JSONC_CFLAGS)
tests_unit_test_qmp_LDADD = sdk/libvmshift-sdk.la $(GLIB_LIBS) $(JSONC_LIBS)

## Host (host/libvmshift-host.la); the loader test needs the test plugins
## built from tests/plugins/ (rules in host/local.mk).
HOST_TEST_CFLAGS = $(AM_CFLAGS) $(GLIB_CFLAGS) $(SQLITE_CFLAGS) $(JSONC_CFLAGS)
HOST_TEST_LDADD = host/libvmshift-host.la sdk/libvmshift-sdk.la $(GLIB_LIBS) $(SQLITE_LIBS) $(JSONC_LIBS)
check_PROGRAMS += tests/unit/test-host-config tests/unit/test-host-loader tests/unit/test-host-journal
TESTS += tests/unit/test-host-config tests/unit/test-host-loader tests/unit/test-host-journal
tests_unit_test_host_config_SOURCES = tests/unit/test-host-config.c
tests_unit_test_host_config_CFLAGS = $(HOST_TEST_CFLAGS)
tests_unit_test_host_config_LDADD = $(HOST_TEST_LDADD)
tests_unit_test_host_loader_SOURCES = tests/unit/test-host-loader.c
tests_unit_test_host_loader_CFLAGS = $(HOST_TEST_CFLAGS)
tests_unit_test_host_loader_LDADD = $(HOST_TEST_LDADD)
EXTRA_tests_unit_test_host_loader_DEPENDENCIES = $(TEST_PLUGINS)
tests_unit_test_host_journal_SOURCES = tests/unit/test-host-journal.c
tests_unit_test_host_journal_CFLAGS = $(HOST_TEST_CFLAGS)
tests_unit_test_host_journal_LDADD = $(HOST_TEST_LDADD)
## scheduled switchover: times, the schedules table from every schema version (#17)
check_PROGRAMS += tests/unit/test-host-schedule
TESTS += tests/unit/test-host-schedule
tests_unit_test_host_schedule_SOURCES = tests/unit/test-host-schedule.c
tests_unit_test_host_schedule_CFLAGS = $(HOST_TEST_CFLAGS)
tests_unit_test_host_schedule_LDADD = $(HOST_TEST_LDADD)
check_PROGRAMS += tests/unit/test-host-validate
TESTS += tests/unit/test-host-validate
tests_unit_test_host_validate_SOURCES = tests/unit/test-host-validate.c
tests_unit_test_host_validate_CFLAGS = $(HOST_TEST_CFLAGS)
tests_unit_test_host_validate_LDADD = $(HOST_TEST_LDADD)
