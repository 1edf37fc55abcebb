## ABI stability: a plugin built against the frozen 1.0 headers must load.
check_LTLIBRARIES += tests/abi/oldabi.la
tests_abi_oldabi_la_SOURCES = tests/abi/oldabi.c
## Only the frozen headers: not sdk/include.
tests_abi_oldabi_la_CPPFLAGS = -I$(srcdir)/tests/abi/include-1.0
tests_abi_oldabi_la_CFLAGS = $(AM_CFLAGS) $(GLIB_CFLAGS) -fvisibility=hidden
tests_abi_oldabi_la_LIBADD = sdk/libvmshift-sdk.la $(GLIB_LIBS)
tests_abi_oldabi_la_LDFLAGS = $(AM_LDFLAGS) $(PLUGIN_LINK_FLAGS) -rpath /nowhere
TESTS += tests/abi/old-abi.sh
EXTRA_DIST += tests/abi/old-abi.sh tests/abi/include-1.0/README \
	$(wildcard $(srcdir)/tests/abi/include-1.0/vmshift/*.h)

## The exported symbols and their version nodes (sdk/libvmshift-sdk.syms)
## against the list of tests/abi/sdk-symbols.txt and the Debian symbols file.
TESTS += tests/abi/symbols.sh
EXTRA_DIST += tests/abi/symbols.sh tests/abi/sdk-symbols.txt
