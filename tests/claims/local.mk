## tests/claims: the README's claims (README.md "Claims and their tests"),
## one row each in claims.tsv. check-readme.sh ties rows to the README
## (always run); run.sh runs each row through `vmshift` on the backends it
## names, checked in the peer's own state (skeleton here, Hyper-V in
## hyperv.py against tests/hyperv-sim); kvm.sh (kvm over QMP, real QEMU),
## libvirt.sh (two real libvirtd) and esx.sh (the vSphere simulator) run
## the rows of their backend, sharing lib.sh.
dist_noinst_SCRIPTS += tests/claims/check-readme.sh tests/claims/run.sh tests/claims/hyperv.py
dist_noinst_SCRIPTS += tests/claims/kvm.sh tests/claims/libvirt.sh tests/claims/esx.sh \
	tests/claims/qmp.py
EXTRA_DIST += tests/claims/lib.sh
EXTRA_DIST += tests/claims/claims.tsv
TESTS += tests/claims/check-readme.sh
if ENABLE_INTEGRATION
TESTS += tests/claims/run.sh
TESTS += tests/claims/esx.sh tests/claims/kvm.sh tests/claims/libvirt.sh
endif
