## tests/unit: build rules (see HACKING.md)

## SDK core
check_PROGRAMS += tests/unit/test-sdk
TESTS += tests/unit/test-sdk
tests_unit_test_sdk_SOURCES = tests/unit/test-sdk.c
tests_unit_test_sdk_CFLAGS = $(AM_CFLAGS) $(GLIB_CFLAGS)
tests_unit_test_sdk_LDADD = sdk/libvmshift-sdk.la $(GLIB_LIBS)

## QMP client (KVM work)
check_PROGRAMS += tests/unit/test-qmp
TESTS += tests/unit/test-qmp
tests_unit_test_qmp_SOURCES = tests/unit/test-qmp.c
tests_unit_test_qmp_CFLAGS = $(AM_CFLAGS) $(GLIB_CFLAGS) $(JSONC_CFLAGS)
tests_unit_test_qmp_LDADD = sdk/libvmshift-sdk.la $(GLIB_LIBS) $(JSONC_LIBS)
