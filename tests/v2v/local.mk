## Moves between backends (issue 16): `vmshift migrate VM --to BACKEND:HOST`,
## checked on each side from the peer's own view. One script per backend
## pair or backend; each appends its own lines below.
TESTS += tests/v2v/skeleton.sh
EXTRA_DIST += tests/v2v/skeleton.sh
TESTS += tests/v2v/skeleton-repair.sh
EXTRA_DIST += tests/v2v/skeleton-repair.sh
## v2v-drive: a move between two backends through the plugins' operations,
## as the host runs them (tests/v2v/v2v-drive.c)
noinst_PROGRAMS += tests/v2v/v2v-drive
tests_v2v_v2v_drive_SOURCES = tests/v2v/v2v-drive.c
tests_v2v_v2v_drive_CFLAGS = $(AM_CFLAGS) $(GLIB_CFLAGS)
tests_v2v_v2v_drive_LDADD = sdk/libvmshift-sdk.la $(GLIB_LIBS)
## the kvm plugin's qmp transport as source and destination (tests/v2v/kvm.sh)
if ENABLE_INTEGRATION
if PLUGIN_KVM
TESTS += tests/v2v/kvm.sh tests/v2v/kvm-ssh.sh
endif
endif
EXTRA_DIST += tests/v2v/kvm.sh tests/v2v/kvm-ssh.sh
EXTRA_DIST += tests/v2v/kvm-cli.sh
## the kvm plugin's libvirt transport at either end (two real libvirtd)
EXTRA_DIST += tests/v2v/libvirt.sh
if ENABLE_INTEGRATION
TESTS += tests/v2v/libvirt.sh
endif
dist_noinst_SCRIPTS += tests/v2v/esx.sh
if PLUGIN_ESX
if ENABLE_INTEGRATION
TESTS += tests/v2v/esx.sh
endif
endif

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
## --convert-guest on a real Debian image (tests/v2v/convert.sh): the
## refusals always run; the conversion (minutes) only with VMSHIFT_SLOW_TESTS=1
if ENABLE_INTEGRATION
TESTS += tests/v2v/convert.sh
endif
EXTRA_DIST += tests/v2v/convert.sh
## ESX <-> KVM (qmp): KVM -> ESX checked by vcsim, ESX -> KVM -> ESX round trip
dist_noinst_SCRIPTS += tests/v2v/esx-kvm-roundtrip.sh
if PLUGIN_ESX
if PLUGIN_KVM
if ENABLE_INTEGRATION
TESTS += tests/v2v/esx-kvm-roundtrip.sh
endif
endif
endif
## ESX -> KVM of the bootable guest disk, started on KVM (tests/v2v/esx-kvm.sh;
## skips itself until the esx plugin has moves between backends)
if ENABLE_INTEGRATION
if PLUGIN_KVM
if PLUGIN_ESX
TESTS += tests/v2v/esx-kvm.sh
endif
endif
endif
EXTRA_DIST += tests/v2v/esx-kvm.sh
## bulk and bulk --reverse of a wave ESX -> KVM (qmp) and back (tests/v2v/bulk-cross.sh)
dist_noinst_SCRIPTS += tests/v2v/bulk-cross.sh
if ENABLE_INTEGRATION
if PLUGIN_KVM
if PLUGIN_ESX
TESTS += tests/v2v/bulk-cross.sh
endif
endif
endif
