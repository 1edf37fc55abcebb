## The vendor skeleton plugin: built in-tree for the host's end-to-end tests
## (tests/skeleton/.libs/skeleton.so) and, by tests/skeleton/out-of-tree.sh,
## out of tree against the installed SDK exactly as a vendor would.

check_LTLIBRARIES += tests/skeleton/skeleton.la
tests_skeleton_skeleton_la_SOURCES = sdk/examples/skeleton/skeleton.c \
	sdk/examples/skeleton/skeleton-v2v.c sdk/examples/skeleton/skeleton.h
tests_skeleton_skeleton_la_CFLAGS = $(AM_CFLAGS) $(GLIB_CFLAGS) -fvisibility=hidden
tests_skeleton_skeleton_la_LIBADD = sdk/libvmshift-sdk.la $(GLIB_LIBS)
## check_LTLIBRARIES are not built as shared objects unless given an rpath.
tests_skeleton_skeleton_la_LDFLAGS = $(AM_LDFLAGS) $(PLUGIN_LINK_FLAGS) -rpath /nowhere

TESTS += tests/skeleton/out-of-tree.sh
EXTRA_DIST += tests/skeleton/out-of-tree.sh

## Vendors get the skeleton with the SDK.
skeletondir = $(docdir)/examples/skeleton
dist_skeleton_DATA = sdk/examples/skeleton/skeleton.c \
	sdk/examples/skeleton/skeleton-v2v.c sdk/examples/skeleton/skeleton.h \
	sdk/examples/skeleton/Makefile \
	sdk/examples/skeleton/README.md \
	sdk/examples/skeleton/skeleton.conf.example
