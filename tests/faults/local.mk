## The fault-injection matrix's quick sample (issue 13; the full run is
## bench/faults): skeleton and the Hyper-V simulator, through vmshift.
TESTS += tests/faults/faults.sh
dist_noinst_SCRIPTS += tests/faults/faults.sh
EXTRA_DIST += tests/faults/qmp-lose-reply.py
