## Moves between backends (issue 16): `vmshift migrate VM --to BACKEND:HOST`,
## checked on each side from the peer's own view. One script per backend
## pair or backend; each appends its own lines below.
TESTS += tests/v2v/skeleton.sh
EXTRA_DIST += tests/v2v/skeleton.sh

## Hyper-V (helper v2vhv): hv-v2v-drive plays the host's part between two
## Hyper-V backends; hyperv.py runs it and `vmshift migrate` against the
## simulator (tests/hyperv-sim) with a real Samba server in a namespace
## serving the simulated host's drive.
dist_noinst_SCRIPTS += tests/v2v/hyperv.py tests/v2v/hyperv-cross.sh
if PLUGIN_HYPERV
check_PROGRAMS += tests/v2v/hv-v2v-drive
tests_v2v_hv_v2v_drive_SOURCES = tests/v2v/hv-v2v-drive.c
tests_v2v_hv_v2v_drive_CFLAGS = $(AM_CFLAGS) $(GLIB_CFLAGS)
tests_v2v_hv_v2v_drive_LDADD = sdk/libvmshift-sdk.la $(GLIB_LIBS)
if ENABLE_INTEGRATION
TESTS += tests/v2v/hyperv.py tests/v2v/hyperv-cross.sh
endif
endif
