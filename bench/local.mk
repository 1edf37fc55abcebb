## bench: build rules (see HACKING.md)

## KVM live-migration bench (see bench/kvm-live): vmshift vs a raw QMP client
dist_noinst_SCRIPTS += bench/kvm-live
if PLUGIN_KVM
noinst_PROGRAMS += bench/kvm-live-raw
bench_kvm_live_raw_SOURCES = bench/kvm-live-raw.c
bench_kvm_live_raw_CFLAGS = $(AM_CFLAGS) $(JSONC_CFLAGS)
bench_kvm_live_raw_LDADD = $(JSONC_LIBS)
endif
