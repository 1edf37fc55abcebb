## Moves between backends (issue 16): `vmshift migrate VM --to BACKEND:HOST`,
## checked on each side from the peer's own view. One script per backend
## pair or backend; each appends its own lines below.
TESTS += tests/v2v/skeleton.sh
EXTRA_DIST += tests/v2v/skeleton.sh
dist_noinst_SCRIPTS += tests/v2v/esx.sh
if PLUGIN_ESX
if ENABLE_INTEGRATION
TESTS += tests/v2v/esx.sh
endif
endif
## ESX <-> KVM (qmp): KVM -> ESX checked by vcsim, ESX -> KVM -> ESX round trip
dist_noinst_SCRIPTS += tests/v2v/esx-kvm-roundtrip.sh
if PLUGIN_ESX
if PLUGIN_KVM
if ENABLE_INTEGRATION
TESTS += tests/v2v/esx-kvm-roundtrip.sh
endif
endif
endif
