## plugins/kvm: the QEMU/KVM backend (QMP transport, and the libvirt
## transport when libvirt is found; see kvm-plugin.c). Its sources are built
## once, into libkvm-impl.la, which the plugin, tests/kvm/kvm-drive and
## tests/unit/test-kvm-tuning link.
if PLUGIN_KVM
noinst_LTLIBRARIES += plugins/kvm/libkvm-impl.la
plugins_kvm_libkvm_impl_la_SOURCES = \
	plugins/kvm/kvm.h \
	plugins/kvm/kvm-plugin.c \
	plugins/kvm/kvm-tuning.c \
	plugins/kvm/kvm-tuning.h \
	plugins/kvm/kvm-tuning-job.c \
	plugins/kvm/kvm-host.c \
	plugins/kvm/kvm-vm.c \
	plugins/kvm/kvm-qmp.h \
	plugins/kvm/kvm-qmp-inventory.c \
	plugins/kvm/kvm-qmp-check.c \
	plugins/kvm/kvm-qmp-mig.c \
	plugins/kvm/kvm-qmp-mirror.c \
	plugins/kvm/kvm-qmp-verify.c \
	plugins/kvm/kvm-qmp-live.c \
	plugins/kvm/kvm-qmp-cold.c \
	plugins/kvm/kvm-qmp-storage.c \
	plugins/kvm/kvm-qmp-repair.c \
	plugins/kvm/kvm-qmp-acl.c \
	plugins/kvm/kvm-qmp-v2v.c
plugins_kvm_libkvm_impl_la_CPPFLAGS = $(AM_CPPFLAGS) -DG_LOG_DOMAIN=\"vmshift-kvm\"
plugins_kvm_libkvm_impl_la_CFLAGS = $(AM_CFLAGS) $(GLIB_CFLAGS) $(JSONC_CFLAGS) \
	$(SELINUX_CFLAGS) -fvisibility=hidden
plugins_kvm_libkvm_impl_la_LIBADD = sdk/libvmshift-sdk.la $(GLIB_LIBS) $(JSONC_LIBS) \
	$(ACL_LIBS) $(SELINUX_LIBS)
if HAVE_LIBVIRT
plugins_kvm_libkvm_impl_la_SOURCES += plugins/kvm/kvm-lv.h \
	plugins/kvm/kvm-lv-conn.c plugins/kvm/kvm-lv-inventory.c plugins/kvm/kvm-lv-check.c \
	plugins/kvm/kvm-lv-xml.c plugins/kvm/kvm-lv-pool.c plugins/kvm/kvm-lv-storage.c \
	plugins/kvm/kvm-lv-cold.c plugins/kvm/kvm-lv-live.c plugins/kvm/kvm-lv-acl.c \
	plugins/kvm/kvm-lv-repair.c plugins/kvm/kvm-lv-verify.c
plugins_kvm_libkvm_impl_la_SOURCES += plugins/kvm/kvm-lv-v2v.c plugins/kvm/kvm-lv-v2v-import.c
plugins_kvm_libkvm_impl_la_CFLAGS += $(LIBVIRT_CFLAGS) $(XML_CFLAGS)
plugins_kvm_libkvm_impl_la_LIBADD += $(LIBVIRT_LIBS) $(XML_LIBS)
endif

plugin_LTLIBRARIES += plugins/kvm/kvm.la
plugins_kvm_kvm_la_SOURCES =
plugins_kvm_kvm_la_LDFLAGS = -module $(PLUGIN_LINK_FLAGS)
plugins_kvm_kvm_la_LIBADD = plugins/kvm/libkvm-impl.la

## the tuning table's rules, without QEMU
check_PROGRAMS += tests/unit/test-kvm-tuning
TESTS += tests/unit/test-kvm-tuning
tests_unit_test_kvm_tuning_SOURCES = tests/unit/test-kvm-tuning.c
tests_unit_test_kvm_tuning_CFLAGS = $(AM_CFLAGS) $(GLIB_CFLAGS)
tests_unit_test_kvm_tuning_LDADD = plugins/kvm/libkvm-impl.la sdk/libvmshift-sdk.la $(GLIB_LIBS)
endif
## a commented example backend (packaging installs it from here)
EXTRA_DIST += plugins/kvm/kvm.conf.example
