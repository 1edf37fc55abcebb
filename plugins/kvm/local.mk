## plugins/kvm: the QEMU/KVM backend (QMP transport; see kvm-plugin.c).
if PLUGIN_KVM
plugin_LTLIBRARIES += plugins/kvm/kvm.la
plugins_kvm_kvm_la_SOURCES = \
	plugins/kvm/kvm.h \
	plugins/kvm/kvm-plugin.c \
	plugins/kvm/kvm-host.c \
	plugins/kvm/kvm-vm.c \
	plugins/kvm/kvm-migrate.c \
	plugins/kvm/kvm-storage.c
plugins_kvm_kvm_la_CFLAGS = $(AM_CFLAGS) $(GLIB_CFLAGS) $(JSONC_CFLAGS) $(SELINUX_CFLAGS) \
	-fvisibility=hidden
plugins_kvm_kvm_la_LDFLAGS = -module $(PLUGIN_LINK_FLAGS)
plugins_kvm_kvm_la_LIBADD = sdk/libvmshift-sdk.la $(GLIB_LIBS) $(JSONC_LIBS) $(ACL_LIBS) \
	$(SELINUX_LIBS)
endif
