## plugins/kvm: the QEMU/KVM backend (QMP transport, and the libvirt
## transport when libvirt is found; see kvm-plugin.c).
if PLUGIN_KVM
plugin_LTLIBRARIES += plugins/kvm/kvm.la
plugins_kvm_kvm_la_SOURCES = \
	plugins/kvm/kvm.h \
	plugins/kvm/kvm-plugin.c \
	plugins/kvm/kvm-tuning.c \
	plugins/kvm/kvm-tuning.h \
	plugins/kvm/kvm-host.c \
	plugins/kvm/kvm-vm.c \
	plugins/kvm/kvm-migrate.c \
	plugins/kvm/kvm-storage.c
plugins_kvm_kvm_la_CPPFLAGS = $(AM_CPPFLAGS) -DG_LOG_DOMAIN=\"vmshift-kvm\"
plugins_kvm_kvm_la_CFLAGS = $(AM_CFLAGS) $(GLIB_CFLAGS) $(JSONC_CFLAGS) $(SELINUX_CFLAGS) \
	-fvisibility=hidden
plugins_kvm_kvm_la_LDFLAGS = -module $(PLUGIN_LINK_FLAGS)
plugins_kvm_kvm_la_LIBADD = sdk/libvmshift-sdk.la $(GLIB_LIBS) $(JSONC_LIBS) $(ACL_LIBS) \
	$(SELINUX_LIBS)
if HAVE_LIBVIRT
plugins_kvm_kvm_la_SOURCES += plugins/kvm/kvm-libvirt.h plugins/kvm/kvm-lv.h \
	plugins/kvm/kvm-lv-conn.c plugins/kvm/kvm-lv-inventory.c plugins/kvm/kvm-lv-check.c \
	plugins/kvm/kvm-lv-xml.c plugins/kvm/kvm-lv-pool.c plugins/kvm/kvm-lv-storage.c \
	plugins/kvm/kvm-lv-cold.c plugins/kvm/kvm-lv-live.c plugins/kvm/kvm-lv-acl.c \
	plugins/kvm/kvm-lv-repair.c
plugins_kvm_kvm_la_CFLAGS += $(LIBVIRT_CFLAGS) $(XML_CFLAGS)
plugins_kvm_kvm_la_LIBADD += $(LIBVIRT_LIBS) $(XML_LIBS)
endif
endif
## a commented example backend (packaging installs it from here)
EXTRA_DIST += plugins/kvm/kvm.conf.example
