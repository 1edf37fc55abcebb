## docs: the documentation (docs/README.md is the index). Man pages are
## generated from sections of README.md by docs/readme2man.py (Python 3
## standard library only). The README is the one source of the
## text; a README section that is missing or still a placeholder gives a
## warning and a page that points to the README, never a failed build.
##
##   vmshift.1               written as a man page: docs/vmshift.1.in
##   vmshift.conf.5          Configuration
##   vmshift-plugin-NAME.7   Backends / NAME  (only for the plugins built)
##   vmshift-sdk.7           Writing a plugin

README2MAN = $(PYTHON3) $(top_srcdir)/docs/readme2man.py
README2MAN_COMMON = --version '$(PACKAGE_VERSION)'
## Every page depends on the README and the generator only.
doc_man_deps = $(top_srcdir)/README.md $(top_srcdir)/docs/readme2man.py

doc_man_pages = docs/vmshift.1 docs/vmshift.conf.5 docs/vmshift-sdk.7
if PLUGIN_KVM
doc_man_pages += docs/vmshift-plugin-kvm.7
endif
if PLUGIN_HYPERV
doc_man_pages += docs/vmshift-plugin-hyperv.7
endif
if PLUGIN_ESX
doc_man_pages += docs/vmshift-plugin-esx.7
endif
man_MANS += $(doc_man_pages)
CLEANFILES += docs/vmshift.1 docs/vmshift.conf.5 docs/vmshift-sdk.7 \
	docs/vmshift-plugin-kvm.7 docs/vmshift-plugin-hyperv.7 docs/vmshift-plugin-esx.7
EXTRA_DIST += docs/readme2man.py docs/local.mk docs/vmshift.1.in

## The rest of the documentation.
EXTRA_DIST += docs/README.md docs/hyperv.md \
	docs/design/hyperv.md docs/design/kvm.md docs/design/vsphere.md \
	docs/design/TESTBED.md
## The C formatting rules and their check (HACKING.md, "Code style").
EXTRA_DIST += .clang-format .ci/check-format

doc_see_plugins = --see-also 'vmshift-plugin-kvm(7)' \
	--see-also 'vmshift-plugin-hyperv(7)' --see-also 'vmshift-plugin-esx(7)'

## vmshift(1) is written as a man page (docs/vmshift.1.in); only the
## version and the installation paths are filled in.
docs/vmshift.1: $(top_srcdir)/docs/vmshift.1.in Makefile
	$(AM_V_GEN)$(MKDIR_P) docs && sed -e 's|%VERSION%|$(PACKAGE_VERSION)|g' \
	  -e 's|%PKGSYSCONFDIR%|$(pkgsysconfdir)|g' -e 's|%STATEDIR%|$(statedir)|g' \
	  -e 's|%PLUGINDIR%|$(plugindir)|g' $(top_srcdir)/docs/vmshift.1.in >$@.tmp && mv $@.tmp $@

docs/vmshift.conf.5: $(doc_man_deps)
	$(AM_V_GEN)$(MKDIR_P) docs && $(README2MAN) $(top_srcdir)/README.md -o $@ \
	  $(README2MAN_COMMON) --name vmshift.conf --section 5 \
	  --summary 'vmshift configuration and backends.d drop-ins' \
	  --take 'Configuration=DESCRIPTION' \
	  --see-also 'vmshift(1)' $(doc_see_plugins)

docs/vmshift-sdk.7: $(doc_man_deps)
	$(AM_V_GEN)$(MKDIR_P) docs && $(README2MAN) $(top_srcdir)/README.md -o $@ \
	  $(README2MAN_COMMON) --name vmshift-sdk --section 7 \
	  --summary 'writing a vmshift hypervisor plugin with libvmshift-sdk' \
	  --take 'Writing a plugin=DESCRIPTION' \
	  --see-also 'vmshift(1)' --see-also 'pkg-config(1)'

## One rule per plugin page; NAME comes from the file name.
docs/vmshift-plugin-kvm.7 docs/vmshift-plugin-hyperv.7 docs/vmshift-plugin-esx.7: $(doc_man_deps)
	$(AM_V_GEN)$(MKDIR_P) docs && name=`echo '$@' | sed 's|.*vmshift-plugin-||; s|\.7$$||'` && \
	$(README2MAN) $(top_srcdir)/README.md -o $@ \
	  $(README2MAN_COMMON) --name vmshift-plugin-$$name --section 7 \
	  --summary "the vmshift $$name backend plugin" \
	  --take "Backends/$$name=DESCRIPTION" \
	  --see-also 'vmshift(1)' --see-also 'vmshift.conf(5)'
