## tests/fuzz: build rules (see HACKING.md)

## QMP client (KVM work): the libFuzzer target, and a replay of its corpus
## that every build runs.
EXTRA_DIST += $(wildcard $(srcdir)/tests/fuzz/corpus-qmp/*)
check_PROGRAMS += tests/fuzz/fuzz-qmp-replay
TESTS += tests/fuzz/fuzz-qmp-replay
tests_fuzz_fuzz_qmp_replay_SOURCES = tests/fuzz/fuzz-qmp.c tests/fuzz/replay.c
tests_fuzz_fuzz_qmp_replay_CPPFLAGS = $(AM_CPPFLAGS) -DVMSHIFT_FUZZ_CORPUS='"corpus-qmp"'
tests_fuzz_fuzz_qmp_replay_CFLAGS = $(AM_CFLAGS) $(GLIB_CFLAGS) $(JSONC_CFLAGS)
tests_fuzz_fuzz_qmp_replay_LDADD = sdk/libvmshift-sdk.la $(GLIB_LIBS) $(JSONC_LIBS)
if ENABLE_FUZZING
noinst_PROGRAMS += tests/fuzz/fuzz-qmp
## sdk/qmp.c is compiled in so that libFuzzer sees its coverage.
tests_fuzz_fuzz_qmp_SOURCES = tests/fuzz/fuzz-qmp.c sdk/qmp.c
tests_fuzz_fuzz_qmp_CPPFLAGS = $(AM_CPPFLAGS) -DVMSHIFT_COMPILATION
tests_fuzz_fuzz_qmp_CFLAGS = $(AM_CFLAGS) $(GLIB_CFLAGS) $(JSONC_CFLAGS) -fsanitize=fuzzer,address,undefined
tests_fuzz_fuzz_qmp_LDFLAGS = -fsanitize=fuzzer,address,undefined
tests_fuzz_fuzz_qmp_LDADD = sdk/libvmshift-sdk.la $(GLIB_LIBS) $(JSONC_LIBS)
endif

## Hyper-V WS-Management reply parser: libFuzzer target and corpus replay.
if PLUGIN_HYPERV
EXTRA_DIST += $(wildcard $(srcdir)/tests/fuzz/corpus-wsman/*)
check_PROGRAMS += tests/fuzz/fuzz-wsman-replay
TESTS += tests/fuzz/fuzz-wsman-replay
## the replay links the plugin's convenience library (its sources are built
## once); the libFuzzer target below compiles wsman.c in for its coverage
tests_fuzz_fuzz_wsman_replay_SOURCES = tests/fuzz/fuzz-wsman.c tests/fuzz/replay.c
tests_fuzz_fuzz_wsman_replay_CPPFLAGS = $(AM_CPPFLAGS) -DVMSHIFT_FUZZ_CORPUS='"corpus-wsman"'
tests_fuzz_fuzz_wsman_replay_CFLAGS = $(AM_CFLAGS) $(GLIB_CFLAGS) $(XML_CFLAGS)
tests_fuzz_fuzz_wsman_replay_LDADD = plugins/hyperv/libhyperv-impl.la sdk/libvmshift-sdk.la \
	$(GLIB_LIBS) $(XML_LIBS)
if ENABLE_FUZZING
noinst_PROGRAMS += tests/fuzz/fuzz-wsman
tests_fuzz_fuzz_wsman_SOURCES = tests/fuzz/fuzz-wsman.c plugins/hyperv/wsman.c
tests_fuzz_fuzz_wsman_CFLAGS = $(AM_CFLAGS) $(GLIB_CFLAGS) $(XML_CFLAGS) -fsanitize=fuzzer,address,undefined
tests_fuzz_fuzz_wsman_LDFLAGS = -fsanitize=fuzzer,address,undefined
tests_fuzz_fuzz_wsman_LDADD = sdk/libvmshift-sdk.la $(GLIB_LIBS) $(XML_LIBS)
endif
endif

## SDK transport: hardened XML parser and SOAP fault extraction.
if ENABLE_FUZZING
noinst_PROGRAMS += tests/fuzz/fuzz-xml
## sdk/xml.c and sdk/http.c are compiled in so that libFuzzer sees their coverage.
tests_fuzz_fuzz_xml_SOURCES = tests/fuzz/fuzz-xml.c sdk/xml.c sdk/http.c
tests_fuzz_fuzz_xml_CPPFLAGS = $(AM_CPPFLAGS) -DVMSHIFT_COMPILATION
tests_fuzz_fuzz_xml_CFLAGS = $(AM_CFLAGS) $(GLIB_CFLAGS) $(XML_CFLAGS) $(CURL_CFLAGS) -fsanitize=fuzzer,address,undefined
tests_fuzz_fuzz_xml_LDFLAGS = -fsanitize=fuzzer,address,undefined
tests_fuzz_fuzz_xml_LDADD = sdk/libvmshift-sdk.la $(GLIB_LIBS) $(XML_LIBS) $(CURL_LIBS)
endif

## ESX plugin: SOAP reply parsing (RetrievePropertiesEx objects, faults);
## libFuzzer target and a replay of its built-in seeds.
if PLUGIN_ESX
check_PROGRAMS += tests/fuzz/fuzz-soap-replay
TESTS += tests/fuzz/fuzz-soap-replay
tests_fuzz_fuzz_soap_replay_SOURCES = tests/fuzz/fuzz-soap.c
tests_fuzz_fuzz_soap_replay_CPPFLAGS = $(AM_CPPFLAGS) -DVMSHIFT_FUZZ_REPLAY
tests_fuzz_fuzz_soap_replay_CFLAGS = $(AM_CFLAGS) $(GLIB_CFLAGS) $(XML_CFLAGS)
tests_fuzz_fuzz_soap_replay_LDADD = plugins/esx/libesx-impl.la sdk/libvmshift-sdk.la $(GLIB_LIBS) $(XML_LIBS)
if ENABLE_FUZZING
noinst_PROGRAMS += tests/fuzz/fuzz-soap
tests_fuzz_fuzz_soap_SOURCES = tests/fuzz/fuzz-soap.c plugins/esx/esx-soap.c plugins/esx/esx.c
tests_fuzz_fuzz_soap_CFLAGS = $(AM_CFLAGS) $(GLIB_CFLAGS) $(XML_CFLAGS) $(JSONC_CFLAGS) -fsanitize=fuzzer,address,undefined
tests_fuzz_fuzz_soap_LDFLAGS = -fsanitize=fuzzer,address,undefined
tests_fuzz_fuzz_soap_LDADD = sdk/libvmshift-sdk.la $(GLIB_LIBS) $(XML_LIBS) $(JSONC_LIBS)
endif
endif

## Hyper-V NTLM client (CHALLENGE_MESSAGE parsing): libFuzzer target and
## corpus replay.
if PLUGIN_HYPERV
EXTRA_DIST += $(wildcard $(srcdir)/tests/fuzz/corpus-ntlm/*)
check_PROGRAMS += tests/fuzz/fuzz-ntlm-replay
TESTS += tests/fuzz/fuzz-ntlm-replay
tests_fuzz_fuzz_ntlm_replay_SOURCES = tests/fuzz/fuzz-ntlm.c tests/fuzz/replay.c
tests_fuzz_fuzz_ntlm_replay_CPPFLAGS = $(AM_CPPFLAGS) -DVMSHIFT_FUZZ_CORPUS='"corpus-ntlm"'
tests_fuzz_fuzz_ntlm_replay_CFLAGS = $(AM_CFLAGS) $(GLIB_CFLAGS)
tests_fuzz_fuzz_ntlm_replay_LDADD = plugins/hyperv/libhyperv-impl.la sdk/libvmshift-sdk.la \
	$(GLIB_LIBS) $(XML_LIBS)
if ENABLE_FUZZING
noinst_PROGRAMS += tests/fuzz/fuzz-ntlm
tests_fuzz_fuzz_ntlm_SOURCES = tests/fuzz/fuzz-ntlm.c plugins/hyperv/ntlm.c
tests_fuzz_fuzz_ntlm_CFLAGS = $(AM_CFLAGS) $(GLIB_CFLAGS) -fsanitize=fuzzer,address,undefined
tests_fuzz_fuzz_ntlm_LDFLAGS = -fsanitize=fuzzer,address,undefined
tests_fuzz_fuzz_ntlm_LDADD = sdk/libvmshift-sdk.la $(GLIB_LIBS)
endif
endif

## vmshift's own input parsers: the configuration and drop-in loader, the
## credentials reader, the bulk plan parser, the journal's spec JSON and the
## command line. Each has a libFuzzer target and a replay of its corpus that
## every build runs. The libFuzzer targets link the host library built again
## with libFuzzer's coverage instrumentation (tests/fuzz/libhost-fuzz.la).
EXTRA_DIST += tests/fuzz/files.h tests/fuzz/check.h \
	$(wildcard $(srcdir)/tests/fuzz/corpus-config/*) \
	$(wildcard $(srcdir)/tests/fuzz/corpus-credentials/*) \
	$(wildcard $(srcdir)/tests/fuzz/corpus-plan/*) \
	$(wildcard $(srcdir)/tests/fuzz/corpus-spec/*) \
	$(wildcard $(srcdir)/tests/fuzz/corpus-cli/*)
FUZZ_HOST_REPLAY_CFLAGS = $(AM_CFLAGS) $(GLIB_CFLAGS) $(JSONC_CFLAGS)
FUZZ_HOST_REPLAY_LDADD = host/libvmshift-host.la sdk/libvmshift-sdk.la $(GLIB_LIBS) $(JSONC_LIBS)
check_PROGRAMS += tests/fuzz/fuzz-config-replay tests/fuzz/fuzz-plan-replay \
	tests/fuzz/fuzz-spec-replay tests/fuzz/fuzz-cli-replay tests/fuzz/fuzz-credentials-replay
TESTS += tests/fuzz/fuzz-config-replay tests/fuzz/fuzz-plan-replay \
	tests/fuzz/fuzz-spec-replay tests/fuzz/fuzz-cli-replay tests/fuzz/fuzz-credentials-replay
tests_fuzz_fuzz_config_replay_SOURCES = tests/fuzz/fuzz-config.c tests/fuzz/replay.c
tests_fuzz_fuzz_config_replay_CPPFLAGS = $(AM_CPPFLAGS) -DVMSHIFT_FUZZ_CORPUS='"corpus-config"'
tests_fuzz_fuzz_config_replay_CFLAGS = $(FUZZ_HOST_REPLAY_CFLAGS)
tests_fuzz_fuzz_config_replay_LDADD = $(FUZZ_HOST_REPLAY_LDADD)
tests_fuzz_fuzz_plan_replay_SOURCES = tests/fuzz/fuzz-plan.c tests/fuzz/replay.c
tests_fuzz_fuzz_plan_replay_CPPFLAGS = $(AM_CPPFLAGS) -DVMSHIFT_FUZZ_CORPUS='"corpus-plan"'
tests_fuzz_fuzz_plan_replay_CFLAGS = $(FUZZ_HOST_REPLAY_CFLAGS)
tests_fuzz_fuzz_plan_replay_LDADD = $(FUZZ_HOST_REPLAY_LDADD)
tests_fuzz_fuzz_spec_replay_SOURCES = tests/fuzz/fuzz-spec.c tests/fuzz/replay.c
tests_fuzz_fuzz_spec_replay_CPPFLAGS = $(AM_CPPFLAGS) -DVMSHIFT_FUZZ_CORPUS='"corpus-spec"'
tests_fuzz_fuzz_spec_replay_CFLAGS = $(FUZZ_HOST_REPLAY_CFLAGS)
tests_fuzz_fuzz_spec_replay_LDADD = $(FUZZ_HOST_REPLAY_LDADD)
tests_fuzz_fuzz_cli_replay_SOURCES = tests/fuzz/fuzz-cli.c tests/fuzz/replay.c
tests_fuzz_fuzz_cli_replay_CPPFLAGS = $(AM_CPPFLAGS) -DVMSHIFT_FUZZ_CORPUS='"corpus-cli"'
tests_fuzz_fuzz_cli_replay_CFLAGS = $(FUZZ_HOST_REPLAY_CFLAGS)
tests_fuzz_fuzz_cli_replay_LDADD = $(FUZZ_HOST_REPLAY_LDADD)
tests_fuzz_fuzz_credentials_replay_SOURCES = tests/fuzz/fuzz-credentials.c tests/fuzz/replay.c
tests_fuzz_fuzz_credentials_replay_CPPFLAGS = $(AM_CPPFLAGS) \
	-DVMSHIFT_FUZZ_CORPUS='"corpus-credentials"'
tests_fuzz_fuzz_credentials_replay_CFLAGS = $(AM_CFLAGS) $(GLIB_CFLAGS)
tests_fuzz_fuzz_credentials_replay_LDADD = sdk/libvmshift-sdk.la $(GLIB_LIBS)
if ENABLE_FUZZING
FUZZ_FLAGS = -fsanitize=fuzzer,address,undefined
noinst_LTLIBRARIES += tests/fuzz/libhost-fuzz.la
tests_fuzz_libhost_fuzz_la_SOURCES = $(host_libvmshift_host_la_SOURCES)
tests_fuzz_libhost_fuzz_la_CPPFLAGS = $(host_libvmshift_host_la_CPPFLAGS)
tests_fuzz_libhost_fuzz_la_CFLAGS = $(host_libvmshift_host_la_CFLAGS) \
	-fsanitize=fuzzer-no-link,address,undefined
tests_fuzz_libhost_fuzz_la_LIBADD = $(host_libvmshift_host_la_LIBADD)
noinst_PROGRAMS += tests/fuzz/fuzz-config tests/fuzz/fuzz-plan tests/fuzz/fuzz-spec \
	tests/fuzz/fuzz-cli tests/fuzz/fuzz-credentials
FUZZ_HOST_CFLAGS = $(AM_CFLAGS) $(GLIB_CFLAGS) $(JSONC_CFLAGS) $(FUZZ_FLAGS)
FUZZ_HOST_LDADD = tests/fuzz/libhost-fuzz.la sdk/libvmshift-sdk.la $(GLIB_LIBS) $(JSONC_LIBS)
tests_fuzz_fuzz_config_SOURCES = tests/fuzz/fuzz-config.c
tests_fuzz_fuzz_config_CFLAGS = $(FUZZ_HOST_CFLAGS)
tests_fuzz_fuzz_config_LDFLAGS = $(FUZZ_FLAGS)
tests_fuzz_fuzz_config_LDADD = $(FUZZ_HOST_LDADD)
tests_fuzz_fuzz_plan_SOURCES = tests/fuzz/fuzz-plan.c
tests_fuzz_fuzz_plan_CFLAGS = $(FUZZ_HOST_CFLAGS)
tests_fuzz_fuzz_plan_LDFLAGS = $(FUZZ_FLAGS)
tests_fuzz_fuzz_plan_LDADD = $(FUZZ_HOST_LDADD)
tests_fuzz_fuzz_spec_SOURCES = tests/fuzz/fuzz-spec.c
tests_fuzz_fuzz_spec_CFLAGS = $(FUZZ_HOST_CFLAGS)
tests_fuzz_fuzz_spec_LDFLAGS = $(FUZZ_FLAGS)
tests_fuzz_fuzz_spec_LDADD = $(FUZZ_HOST_LDADD)
tests_fuzz_fuzz_cli_SOURCES = tests/fuzz/fuzz-cli.c
tests_fuzz_fuzz_cli_CFLAGS = $(FUZZ_HOST_CFLAGS)
tests_fuzz_fuzz_cli_LDFLAGS = $(FUZZ_FLAGS)
tests_fuzz_fuzz_cli_LDADD = $(FUZZ_HOST_LDADD)
## sdk/conf.c is compiled in so that libFuzzer sees its coverage.
tests_fuzz_fuzz_credentials_SOURCES = tests/fuzz/fuzz-credentials.c sdk/conf.c
tests_fuzz_fuzz_credentials_CPPFLAGS = $(AM_CPPFLAGS) -DVMSHIFT_COMPILATION
tests_fuzz_fuzz_credentials_CFLAGS = $(AM_CFLAGS) $(GLIB_CFLAGS) $(FUZZ_FLAGS)
tests_fuzz_fuzz_credentials_LDFLAGS = $(FUZZ_FLAGS)
tests_fuzz_fuzz_credentials_LDADD = sdk/libvmshift-sdk.la $(GLIB_LIBS)
endif

## bench/fuzz: every target for N executions (default 10 million)
dist_noinst_SCRIPTS += bench/fuzz
EXTRA_DIST += bench/README.md
