## tests/hyperv-sim: the Hyper-V simulator (Python 3, standard library only)
## and its own TAP self-test.  See tests/hyperv-sim/README.md.
EXTRA_DIST += tests/hyperv-sim/README.md
dist_noinst_SCRIPTS += tests/hyperv-sim/hyperv_sim.py tests/hyperv-sim/test-sim.py
EXTRA_DIST += tests/hyperv-sim/sim_vsms.py

if ENABLE_INTEGRATION
TESTS += tests/hyperv-sim/test-sim.py
endif
