## Shared test plumbing: the TAP wrapper and helpers every suite uses.
EXTRA_DIST += tests/tap-test.in tests/lib.sh
DISTCLEANFILES += tests/tap-test
