## tests/claims: the README's claims (README.md "Claims and their tests"),
## one row each in claims.tsv. check-readme.sh ties rows to the README
## (always run); run.sh runs each row through `vmshift` on the backends it
## names, checked in the peer's own state (skeleton here, Hyper-V in
## hyperv.py against tests/hyperv-sim).
dist_noinst_SCRIPTS += tests/claims/check-readme.sh tests/claims/run.sh tests/claims/hyperv.py
EXTRA_DIST += tests/claims/claims.tsv
TESTS += tests/claims/check-readme.sh
if ENABLE_INTEGRATION
TESTS += tests/claims/run.sh
endif
