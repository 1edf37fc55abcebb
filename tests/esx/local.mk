## tests/esx: integration tests of the ESX plugin against the vSphere
## simulator (tests/vcsim).  esx-drive runs plugin operations through the
## SDK ABI; test-esx.sh starts the simulator, drives the plugin and checks
## the simulator's own state with tests/vcsim/vcsim-check.
dist_noinst_SCRIPTS += tests/esx/test-esx.sh tests/esx/test-esx-recovery.sh

if PLUGIN_ESX
check_PROGRAMS += tests/esx/esx-drive
tests_esx_esx_drive_SOURCES = tests/esx/esx-drive.c
tests_esx_esx_drive_CFLAGS = $(AM_CFLAGS) $(GLIB_CFLAGS)
tests_esx_esx_drive_LDADD = tests/lib/libdrive.la sdk/libvmshift-sdk.la $(GLIB_LIBS)

if ENABLE_INTEGRATION
TESTS += tests/esx/test-esx.sh tests/esx/test-esx-recovery.sh
endif
endif
