## tests/rules: the finding codes per backend (#11). codes.tsv is the table
## (code x backend: the scenario script, "cannot: why" or "untested");
## table.sh checks it against <vmshift/findings.h> and the scripts; each
## script runs its scenarios through the vmshift command against one peer
## started once (tests/host/rules.sh covers the skeleton plugin).
TESTS += tests/rules/table.sh
if ENABLE_INTEGRATION
TESTS += tests/rules/esx.sh tests/rules/hyperv.py
if PLUGIN_KVM
TESTS += tests/rules/kvm-qmp.sh tests/rules/libvirt.sh
endif
endif
EXTRA_DIST += tests/rules/codes.tsv tests/rules/table.sh tests/rules/esx.sh tests/rules/kvm-qmp.sh \
	tests/rules/hyperv.py tests/rules/libvirt.sh
