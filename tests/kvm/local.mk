## tests/kvm: integration tests of the KVM plugin against real QEMU (TCG)
## booting the tiny guest of tests/guest/. kvm-drive loads the plugin
## through the SDK like the host does; bench/kvm-live uses it too. It links
## the plugin's sources from plugins/kvm/libkvm-impl.la.
if PLUGIN_KVM
noinst_PROGRAMS += tests/kvm/kvm-drive
tests_kvm_kvm_drive_SOURCES = tests/kvm/kvm-drive.c
tests_kvm_kvm_drive_CFLAGS = $(AM_CFLAGS) $(GLIB_CFLAGS) $(JSONC_CFLAGS)
tests_kvm_kvm_drive_LDADD = plugins/kvm/libkvm-impl.la sdk/libvmshift-sdk.la $(GLIB_LIBS) \
	$(JSONC_LIBS)

if ENABLE_INTEGRATION
TESTS += tests/kvm/test-kvm-live.sh tests/kvm/test-kvm-storage.sh tests/kvm/test-kvm-faults.sh tests/kvm/test-kvm-merge-acl.sh tests/kvm/test-kvm-cli.sh tests/kvm/test-kvm-libvirt.sh \
	tests/kvm/test-kvm-ssh.sh tests/kvm/test-kvm-bulk.sh
## scheduled switchover (#17 item 6)
TESTS += tests/kvm/test-kvm-switchover.sh
endif
endif
EXTRA_DIST += tests/kvm/kvm-lib.sh tests/kvm/lvhosts.sh tests/kvm/demo-kvm.sh $(wildcard $(srcdir)/tests/kvm/test-kvm-*.sh)
