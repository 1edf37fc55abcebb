## docs: the documentation (docs/README.md is the index).
##
## The man pages are written as man pages, in scdoc(5): docs/NAME.N.scd.
## scdoc turns each into docs/NAME.N.in, roff with %PLACEHOLDER%s for the
## version and the installation paths; those are built in the source tree
## and distributed, so that a build from the tarball needs no scdoc. At
## build time sed fills in the placeholders: docs/NAME.N.
##
##   vmshift.1          the command: every command, option, FILES, ...
##   vmshift.conf.5     the configuration: every key of the host and plugins
##   vmshift-bulk.5     plan files of `vmshift bulk`
##   vmshift-plugin.7   for vendors: the SDK, its ABI, the skeleton plugin
##
## tests/host/man.sh renders each page and checks it against the code.

doc_man_pages = docs/vmshift.1 docs/vmshift.conf.5 docs/vmshift-bulk.5 docs/vmshift-plugin.7
doc_man_sources = $(doc_man_pages:=.scd)
## in the source tree: the dist rules and the page rules name the same files
doc_man_roff = $(doc_man_pages:%=$(srcdir)/%.in)
man_MANS += $(doc_man_pages)
if ENABLE_DAEMON
man_MANS += docs/vmshiftd.8
endif
CLEANFILES += $(doc_man_pages) docs/vmshiftd.8
MAINTAINERCLEANFILES = $(doc_man_roff)
EXTRA_DIST += docs/local.mk $(doc_man_sources) $(doc_man_roff) \
	docs/vmshiftd.8.scd $(srcdir)/docs/vmshiftd.8.in
MAINTAINERCLEANFILES += $(srcdir)/docs/vmshiftd.8.in

## Where vendors find the skeleton plugin and THREADS.md once installed
## (the SDK's documentation; packages that put it elsewhere, as Debian's
## libvmshift-sdk-dev does, pass sdkdocdir=DIR to make and make install).
sdkdocdir = $(docdir)
sdkdoc_DATA = sdk/THREADS.md

## scdoc: source -> roff in the source tree (as automake does for info files).
doc_scdoc = if test -z '$(SCDOC)'; then \
	  echo "$@: scdoc is needed to build it from $<; install scdoc and run configure again" >&2; \
	  exit 1; fi; \
	$(SCDOC) <$< >$@.tmp && mv $@.tmp $@

$(srcdir)/docs/vmshift.1.in: $(srcdir)/docs/vmshift.1.scd
	$(AM_V_GEN)$(doc_scdoc)
$(srcdir)/docs/vmshift.conf.5.in: $(srcdir)/docs/vmshift.conf.5.scd
	$(AM_V_GEN)$(doc_scdoc)
$(srcdir)/docs/vmshift-bulk.5.in: $(srcdir)/docs/vmshift-bulk.5.scd
	$(AM_V_GEN)$(doc_scdoc)
$(srcdir)/docs/vmshift-plugin.7.in: $(srcdir)/docs/vmshift-plugin.7.scd
	$(AM_V_GEN)$(doc_scdoc)
$(srcdir)/docs/vmshiftd.8.in: $(srcdir)/docs/vmshiftd.8.scd
	$(AM_V_GEN)$(doc_scdoc)

## roff -> the page, with this build's version and paths.
doc_subst = $(MKDIR_P) docs && sed \
	-e 's|%VERSION%|$(PACKAGE_VERSION)|g' \
	-e 's|%ABIVERSION%|$(VMSHIFT_ABI_MAJOR).$(VMSHIFT_ABI_MINOR)|g' \
	-e 's|%PKGSYSCONFDIR%|$(pkgsysconfdir)|g' \
	-e 's|%STATEDIR%|$(statedir)|g' \
	-e 's|%PLUGINDIR%|$(plugindir)|g' \
	-e 's|%PKGDATADIR%|$(pkgdatadir)|g' \
	-e 's|%DATADIR%|$(datadir)|g' \
	-e 's|%INCLUDEDIR%|$(includedir)|g' \
	-e 's|%LIBDIR%|$(libdir)|g' \
	-e 's|%SDKDOCDIR%|$(sdkdocdir)|g' \
	$(srcdir)/$@.in >$@.tmp && mv $@.tmp $@

docs/vmshift.1: $(srcdir)/docs/vmshift.1.in Makefile
	$(AM_V_GEN)$(doc_subst)
docs/vmshift.conf.5: $(srcdir)/docs/vmshift.conf.5.in Makefile
	$(AM_V_GEN)$(doc_subst)
docs/vmshift-bulk.5: $(srcdir)/docs/vmshift-bulk.5.in Makefile
	$(AM_V_GEN)$(doc_subst)
docs/vmshift-plugin.7: $(srcdir)/docs/vmshift-plugin.7.in Makefile
	$(AM_V_GEN)$(doc_subst)
docs/vmshiftd.8: $(srcdir)/docs/vmshiftd.8.in Makefile
	$(AM_V_GEN)$(doc_subst)

## The rest of the documentation.
EXTRA_DIST += docs/README.md docs/hyperv.md \
	docs/design/hyperv.md docs/design/kvm.md docs/design/vsphere.md \
	docs/design/TESTBED.md
## The C formatting rules and their check (HACKING.md, "Code style").
EXTRA_DIST += .clang-format .ci/check-format

## The pages against the code: every command, option and configuration or
## plan key the sources read (#18). Needs host/vmshift, built by `all`.
TESTS += tests/host/man.sh
dist_noinst_SCRIPTS += tests/host/man.sh
