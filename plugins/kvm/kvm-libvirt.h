/* vmshift KVM plugin: the libvirt transport, for kvm-plugin.c while it
 * still calls the kvm_libvirt_* operations by name (built only with
 * libvirt: HAVE_LIBVIRT). The transport is kvm_transport_libvirt (kvm.h);
 * its files are kvm-lv-*.c, their declarations kvm-lv.h. */
#ifndef VMSHIFT_KVM_LIBVIRT_H
#define VMSHIFT_KVM_LIBVIRT_H

#include "kvm-lv.h"

#endif
