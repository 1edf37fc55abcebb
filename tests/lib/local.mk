## tests/lib: code the SDK test drivers (tests/esx/esx-drive,
## tests/hyperv/hv-drive) share: loading a plugin through the SDK ABI, the
## key=value printers, the job hooks and the migration-spec parser.
check_LTLIBRARIES += tests/lib/libdrive.la
tests_lib_libdrive_la_SOURCES = tests/lib/drive.c tests/lib/drive.h
tests_lib_libdrive_la_CFLAGS = $(AM_CFLAGS) $(GLIB_CFLAGS)
tests_lib_libdrive_la_LIBADD = sdk/libvmshift-sdk.la $(GLIB_LIBS)
