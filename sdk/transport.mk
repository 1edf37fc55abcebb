## SDK transport helpers: HTTP (libcurl) and hardened XML (libxml2).
## Owned by the transport work; see HACKING.md.
vmshiftinclude_HEADERS += sdk/include/vmshift/http.h sdk/include/vmshift/xml.h
sdk_libvmshift_sdk_la_SOURCES += sdk/http.c sdk/xml.c
sdk_libvmshift_sdk_la_CFLAGS += $(CURL_CFLAGS) $(XML_CFLAGS)
sdk_libvmshift_sdk_la_LIBADD += $(CURL_LIBS) $(XML_LIBS)

## Unit tests of the transport helpers (a local Python peer for HTTP).
check_PROGRAMS += tests/unit/test-http tests/unit/test-xml
TESTS += tests/unit/test-http tests/unit/test-xml

tests_unit_test_http_SOURCES = tests/unit/test-http.c
tests_unit_test_http_CFLAGS = $(AM_CFLAGS) $(GLIB_CFLAGS) $(XML_CFLAGS) \
	-DHTTP_PEER='"$(abs_top_srcdir)/tests/unit/http-peer.py"' -DPYTHON3='"$(PYTHON3)"'
tests_unit_test_http_LDADD = sdk/libvmshift-sdk.la $(GLIB_LIBS) $(XML_LIBS)

tests_unit_test_xml_SOURCES = tests/unit/test-xml.c
tests_unit_test_xml_CFLAGS = $(AM_CFLAGS) $(GLIB_CFLAGS) $(XML_CFLAGS) \
	-DTEST_DATA_DIR='"$(abs_top_srcdir)/tests/unit/data"'
tests_unit_test_xml_LDADD = sdk/libvmshift-sdk.la $(GLIB_LIBS) $(XML_LIBS)

EXTRA_DIST += tests/unit/http-peer.py \
	tests/unit/data/vsphere-login.xml \
	tests/unit/data/vsphere-login-fault.xml \
	tests/unit/data/vsphere-notauthenticated-fault.xml \
	tests/unit/data/vsphere-retrieve-properties.xml \
	tests/unit/data/wsman-fault.xml \
	tests/unit/data/wsman-access-denied.xml
