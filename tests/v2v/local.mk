## Moves between backends (issue 16): `vmshift migrate VM --to BACKEND:HOST`,
## checked on each side from the peer's own view. One script per backend
## pair or backend; each appends its own lines below.
TESTS += tests/v2v/skeleton.sh
EXTRA_DIST += tests/v2v/skeleton.sh
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
