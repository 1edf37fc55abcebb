## Man pages, generated from sections of README.md by doc/readme2man.py
## (Python 3 standard library only). The README is the one source of the
## text; a README section that is missing or still a placeholder gives a
## warning and a page that points to the README, never a failed build.
##
##   vmshift.1               Commands; Jobs, the journal and repair; Security
##   vmshift.conf.5          Configuration
##   vmshift-plugin-NAME.7   Backends / NAME  (only for the plugins built)
##   vmshift-sdk.7           Writing a plugin

README2MAN = $(PYTHON3) $(top_srcdir)/doc/readme2man.py
README2MAN_COMMON = --version '$(PACKAGE_VERSION)'
## Every page depends on the README and the generator only.
doc_man_deps = $(top_srcdir)/README.md $(top_srcdir)/doc/readme2man.py

doc_man_pages = doc/vmshift.1 doc/vmshift.conf.5 doc/vmshift-sdk.7
if PLUGIN_KVM
doc_man_pages += doc/vmshift-plugin-kvm.7
endif
if PLUGIN_HYPERV
doc_man_pages += doc/vmshift-plugin-hyperv.7
endif
if PLUGIN_ESX
doc_man_pages += doc/vmshift-plugin-esx.7
endif
man_MANS += $(doc_man_pages)
CLEANFILES += doc/vmshift.1 doc/vmshift.conf.5 doc/vmshift-sdk.7 \
	doc/vmshift-plugin-kvm.7 doc/vmshift-plugin-hyperv.7 doc/vmshift-plugin-esx.7
EXTRA_DIST += doc/readme2man.py doc/local.mk

doc_see_plugins = --see-also 'vmshift-plugin-kvm(7)' \
	--see-also 'vmshift-plugin-hyperv(7)' --see-also 'vmshift-plugin-esx(7)'

doc/vmshift.1: $(doc_man_deps)
	$(AM_V_GEN)$(MKDIR_P) doc && $(README2MAN) $(top_srcdir)/README.md -o $@ \
	  $(README2MAN_COMMON) --name vmshift --section 1 \
	  --summary 'move virtual machines between hosts, storage and hypervisors' \
	  --synopsis '**vmshift** [*GLOBAL OPTIONS*] *COMMAND* [*ARGS*]' \
	  --take 'Commands' --take 'Jobs, the journal and repair=JOBS' \
	  --take 'Security' \
	  --see-also 'vmshift.conf(5)' $(doc_see_plugins) --see-also 'vmshift-sdk(7)'

doc/vmshift.conf.5: $(doc_man_deps)
	$(AM_V_GEN)$(MKDIR_P) doc && $(README2MAN) $(top_srcdir)/README.md -o $@ \
	  $(README2MAN_COMMON) --name vmshift.conf --section 5 \
	  --summary 'vmshift configuration and backends.d drop-ins' \
	  --take 'Configuration=DESCRIPTION' \
	  --see-also 'vmshift(1)' $(doc_see_plugins)

doc/vmshift-sdk.7: $(doc_man_deps)
	$(AM_V_GEN)$(MKDIR_P) doc && $(README2MAN) $(top_srcdir)/README.md -o $@ \
	  $(README2MAN_COMMON) --name vmshift-sdk --section 7 \
	  --summary 'writing a vmshift hypervisor plugin with libvmshift-sdk' \
	  --take 'Writing a plugin=DESCRIPTION' \
	  --see-also 'vmshift(1)' --see-also 'pkg-config(1)'

## One rule per plugin page; NAME comes from the file name.
doc/vmshift-plugin-kvm.7 doc/vmshift-plugin-hyperv.7 doc/vmshift-plugin-esx.7: $(doc_man_deps)
	$(AM_V_GEN)$(MKDIR_P) doc && name=`echo '$@' | sed 's|.*vmshift-plugin-||; s|\.7$$||'` && \
	$(README2MAN) $(top_srcdir)/README.md -o $@ \
	  $(README2MAN_COMMON) --name vmshift-plugin-$$name --section 7 \
	  --summary "the vmshift $$name backend plugin" \
	  --take "Backends/$$name=DESCRIPTION" \
	  --see-also 'vmshift(1)' --see-also 'vmshift.conf(5)'
