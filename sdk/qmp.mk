## SDK QMP client (json-c). Owned by the KVM work; see HACKING.md.
vmshiftinclude_HEADERS += sdk/include/vmshift/qmp.h
sdk_libvmshift_sdk_la_SOURCES += sdk/qmp.c
sdk_libvmshift_sdk_la_CFLAGS += $(JSONC_CFLAGS)
sdk_libvmshift_sdk_la_LIBADD += $(JSONC_LIBS)
