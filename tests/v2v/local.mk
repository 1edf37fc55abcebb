## Moves between backends (issue 16): `vmshift migrate VM --to BACKEND:HOST`,
## checked on each side from the peer's own view. One script per backend
## pair or backend; each appends its own lines below.
TESTS += tests/v2v/skeleton.sh
EXTRA_DIST += tests/v2v/skeleton.sh
TESTS += tests/v2v/skeleton-repair.sh
EXTRA_DIST += tests/v2v/skeleton-repair.sh
