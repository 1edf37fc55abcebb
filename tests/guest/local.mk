## tests/guest: the tiny Linux test guest (built on demand by the KVM tests
## and bench through make-guest.sh; cached under the build tree).
dist_noinst_SCRIPTS += tests/guest/make-guest.sh tests/guest/init.sh
EXTRA_DIST += tests/guest/dirty.c
dist_noinst_SCRIPTS += tests/guest/make-boot-disk.sh
dist_noinst_SCRIPTS += tests/guest/make-debian-image.sh
