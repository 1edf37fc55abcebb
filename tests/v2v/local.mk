## Moves between backends (issue 16): `vmshift migrate VM --to BACKEND:HOST`,
## checked on each side from the peer's own view. One script per backend
## pair or backend; each appends its own lines below.
TESTS += tests/v2v/skeleton.sh
EXTRA_DIST += tests/v2v/skeleton.sh
## --convert-guest on a real Debian image (tests/v2v/convert.sh): the
## refusals always run; the conversion (minutes) only with VMSHIFT_SLOW_TESTS=1
if ENABLE_INTEGRATION
TESTS += tests/v2v/convert.sh
endif
EXTRA_DIST += tests/v2v/convert.sh
