## tests/hyperv: integration tests of the Hyper-V plugin against the
## Hyper-V simulator (tests/hyperv-sim).  hv-drive runs one plugin
## operation through the SDK ABI; test-hyperv.py starts the simulator,
## drives the plugin and checks the simulator's state; test-cli.py does the
## same through the vmshift command (journal, cancel, kill -9 + repair);
## test-cli-moves.py: issue 12/13 moves through vmshift (fault text, cold +
## --start, --network, optional classes, a lost migrate reply);
## test-cli-kerberos.py: auth=negotiate against a real MIT KDC (issue 12).
dist_noinst_SCRIPTS += tests/hyperv/test-hyperv.py tests/hyperv/test-cli.py \
	tests/hyperv/test-cli-moves.py tests/hyperv/test-cli-acl.py \
	tests/hyperv/test-cli-kerberos.py

if PLUGIN_HYPERV
check_PROGRAMS += tests/hyperv/hv-drive
tests_hyperv_hv_drive_SOURCES = tests/hyperv/hv-drive.c
tests_hyperv_hv_drive_CFLAGS = $(AM_CFLAGS) $(GLIB_CFLAGS)
tests_hyperv_hv_drive_LDADD = tests/lib/libdrive.la sdk/libvmshift-sdk.la $(GLIB_LIBS)

if ENABLE_INTEGRATION
TESTS += tests/hyperv/test-hyperv.py tests/hyperv/test-cli.py \
	tests/hyperv/test-cli-moves.py tests/hyperv/test-cli-acl.py \
	tests/hyperv/test-cli-kerberos.py
endif
endif
