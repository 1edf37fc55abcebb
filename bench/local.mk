## bench: build rules (see HACKING.md)

## KVM live-migration bench (see bench/kvm-live): vmshift vs a raw QMP client
dist_noinst_SCRIPTS += bench/kvm-live
if PLUGIN_KVM
noinst_PROGRAMS += bench/kvm-live-raw
bench_kvm_live_raw_SOURCES = bench/kvm-live-raw.c
bench_kvm_live_raw_CFLAGS = $(AM_CFLAGS) $(JSONC_CFLAGS)
bench_kvm_live_raw_LDADD = $(JSONC_LIBS)
endif

## ESX bulk bench (see bench/esx-bulk): 200 relocations on the vSphere
## simulator, vmshift bulk vs a govmomi baseline. Run: make bench-esx-bulk
dist_noinst_SCRIPTS += bench/esx-bulk
EXTRA_DIST += bench/esx-bulk-baseline/main.go
.PHONY: bench-esx-bulk
bench-esx-bulk: all tests/vcsim/vcsim-launcher tests/vcsim/vcsim-check
	VMSHIFT_BUILDDIR='$(abs_top_builddir)' VMSHIFT_SRCDIR='$(abs_top_srcdir)' \
	$(SHELL) $(srcdir)/bench/esx-bulk $(ESX_BULK_FLAGS)

## Rating and placement at scale (see bench/rate): 10,000 hosts, 1,000 VMs
## through the skeleton plugin. Run: make bench-rate
dist_noinst_SCRIPTS += bench/rate
.PHONY: bench-rate
bench-rate: all tests/skeleton/skeleton.la
	VMSHIFT_BUILDDIR='$(abs_top_builddir)' $(SHELL) $(srcdir)/bench/rate $(RATE_FLAGS)

## The fault-injection matrix (see bench/faults, issue 13): 500 faults per
## backend, repaired and checked from the peer's view. Run: make bench-faults
## (FAULTS_FLAGS='-b skeleton -n 100' for a part).
dist_noinst_SCRIPTS += bench/faults
.PHONY: bench-faults
bench-faults: all tests/skeleton/skeleton.la
	VMSHIFT_BUILDDIR='$(abs_top_builddir)' VMSHIFT_SRCDIR='$(abs_top_srcdir)' \
	python3 $(srcdir)/bench/faults $(FAULTS_FLAGS)

## Start-up (see bench/startup): vmshift backends with three plugins and
## hanging hosts vs vmshift --help. Run: make bench-startup
dist_noinst_SCRIPTS += bench/startup
.PHONY: bench-startup
bench-startup: all
	VMSHIFT_BUILDDIR='$(abs_top_builddir)' $(SHELL) $(srcdir)/bench/startup $(STARTUP_FLAGS)

## Bulk on one backend (see bench/bulk): jobs/s and peak RSS at concurrency
## 1, 8, 64, 300. Run: make bench-bulk BULK_FLAGS='-b skeleton'
dist_noinst_SCRIPTS += bench/bulk
.PHONY: bench-bulk
bench-bulk: all tests/skeleton/skeleton.la
	VMSHIFT_BUILDDIR='$(abs_top_builddir)' VMSHIFT_SRCDIR='$(abs_top_srcdir)' \
	$(SHELL) $(srcdir)/bench/bulk $(BULK_FLAGS)

## Moves between backends (see bench/v2v, issue 16): a 4 GiB disk ESX -> KVM
## (or skeleton -> skeleton) against qemu-img convert of the same file.
## Run: make bench-v2v V2V_FLAGS='-b skeleton'
dist_noinst_SCRIPTS += bench/v2v
.PHONY: bench-v2v
bench-v2v: all tests/skeleton/skeleton.la
	VMSHIFT_BUILDDIR='$(abs_top_builddir)' VMSHIFT_SRCDIR='$(abs_top_srcdir)' \
	bash $(srcdir)/bench/v2v $(V2V_FLAGS)
