## The fault-injection matrix's quick sample (issue 13; the full run is
## bench/faults): skeleton, the Hyper-V simulator, ESX (vcsim) and KVM over
## libvirt, through vmshift.
TESTS += tests/faults/faults.sh
dist_noinst_SCRIPTS += tests/faults/faults.sh
EXTRA_DIST += tests/faults/qmp-lose-reply.py bench/faults-esx.py bench/faults-libvirt.py
