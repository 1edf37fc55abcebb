/* Unit tests of the SDK's hardened XML, XPath and SOAP helpers
 * (<vmshift/xml.h>), on captured vSphere replies and WinRM faults. */
#include "config.h"

#include <string.h>
#include <glib/gstdio.h>

#include <vmshift/xml.h>

static char *
read_data(const char *name, gsize *len)
{
    g_autofree char *path = g_build_filename(TEST_DATA_DIR, name, NULL);
    char *data = NULL;
    GError *error = NULL;

    g_file_get_contents(path, &data, len, &error);
    g_assert_no_error(error);
    return data;
}

static xmlDoc *
parse_data(const char *name)
{
    gsize len;
    g_autofree char *data = read_data(name, &len);
    GError *error = NULL;
    xmlDoc *doc = vmshift_xml_parse(data, len, name, &error);

    g_assert_no_error(error);
    g_assert_nonnull(doc);
    return doc;
}

static xmlDoc *
parse_str(const char *text, GError **error)
{
    return vmshift_xml_parse(text, strlen(text), "test document", error);
}

/* ---- parsing ---------------------------------------------------------- */

static void
test_parse_good(void)
{
    g_autoptr(xmlDoc) doc = parse_data("vsphere-retrieve-properties.xml");
    xmlNode *body = vmshift_soap_body(doc);

    g_assert_true(vmshift_xml_node_is(vmshift_xml_root(doc), VMSHIFT_NS_SOAP11, "Envelope"));
    g_assert_true(vmshift_xml_node_is(body, VMSHIFT_NS_VIM25, "RetrievePropertiesExResponse"));
    g_assert_true(vmshift_xml_node_is(body, NULL, "RetrievePropertiesExResponse"));
    g_assert_false(vmshift_xml_node_is(body, VMSHIFT_NS_SOAP11, "RetrievePropertiesExResponse"));
    g_assert_null(vmshift_soap_fault_get(doc));
}

static void
test_parse_malformed(void)
{
    GError *error = NULL;
    xmlDoc *doc = parse_str("<a>\n<b>\n</a>", &error);

    g_assert_null(doc);
    g_assert_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_PROTOCOL);
    g_assert_nonnull(strstr(error->message, "test document: malformed XML at line 3"));
    g_assert_null(strchr(error->message, '\n'));
    g_clear_error(&error);

    doc = parse_str("not xml at all", &error);
    g_assert_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_PROTOCOL);
    g_clear_error(&error);

    doc = vmshift_xml_parse("", 0, "empty reply", &error);
    g_assert_null(doc);
    g_assert_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_PROTOCOL);
    g_assert_cmpstr(error->message, ==, "empty reply: empty document");
    g_clear_error(&error);

    /* An undeclared entity is a well-formedness error, not an empty text. */
    doc = parse_str("<a>&undeclared;</a>", &error);
    g_assert_null(doc);
    g_assert_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_PROTOCOL);
    g_clear_error(&error);

    /* Too large is refused before reading a byte (the buffer is small). */
    doc = vmshift_xml_parse("<a/>", VMSHIFT_XML_MAX_INPUT + 1, "big", &error);
    g_assert_null(doc);
    g_assert_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_PROTOCOL);
    g_assert_nonnull(strstr(error->message, "too large"));
    g_clear_error(&error);
}

static void
test_parse_truncated(void)
{
    gsize len;
    g_autofree char *data = read_data("vsphere-login.xml", &len);
    GError *error = NULL;

    for (gsize cut = 1; cut < len - 2; cut += 37) {
        xmlDoc *doc = vmshift_xml_parse(data, cut, "Login reply", &error);
        g_assert_null(doc);
        g_assert_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_PROTOCOL);
        g_assert_true(g_str_has_prefix(error->message, "Login reply: "));
        g_clear_error(&error);
    }
}

static void
test_parse_deep(void)
{
    GString *s = g_string_new(NULL);
    GError *error = NULL;
    xmlDoc *doc;

    for (int i = 0; i < 5000; i++)
        g_string_append(s, "<a>");
    for (int i = 0; i < 5000; i++)
        g_string_append(s, "</a>");
    doc = vmshift_xml_parse(s->str, s->len, "deep", &error);
    g_assert_null(doc);
    g_assert_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_PROTOCOL);
    g_clear_error(&error);
    g_string_free(s, TRUE);
}

static void
test_xxe(void)
{
    g_autofree char *dir = g_dir_make_tmp("vmshift-xxe-XXXXXX", NULL);
    g_autofree char *secret = g_build_filename(dir, "secret", NULL);
    /* { before the file name, after it } */
    static const char *const forms[][2] = {
        /* external general entity */
        { "<?xml version=\"1.0\"?>\n<!DOCTYPE r [<!ENTITY x SYSTEM \"file://",
          "\">]>\n<r>&x;</r>" },
        /* external parameter entity */
        { "<!DOCTYPE r [<!ENTITY % p SYSTEM \"file://", "\"> %p;]><r/>" },
        /* external DTD */
        { "<!DOCTYPE r SYSTEM \"file://", "\"><r/>" },
        /* entity in an attribute */
        { "<!DOCTYPE r [<!ENTITY x SYSTEM \"file://", "\">]><r a=\"&x;\"/>" },
    };

    g_assert_nonnull(dir);
    g_assert_true(g_file_set_contents(secret, "TOPSECRET-42", -1, NULL));
    for (gsize i = 0; i < G_N_ELEMENTS(forms); i++) {
        g_autofree char *doc_text = g_strconcat(forms[i][0], secret, forms[i][1], NULL);
        GError *error = NULL;
        xmlDoc *doc = parse_str(doc_text, &error);

        if (doc) {
            xmlChar *dump = NULL;
            int n = 0;
            xmlDocDumpMemory(doc, &dump, &n);
            g_assert_null(strstr((const char *)dump, "TOPSECRET"));
            xmlFree(dump);
            xmlFreeDoc(doc);
            g_assert_not_reached();
        }
        g_assert_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_PROTOCOL);
        g_assert_null(strstr(error->message, "TOPSECRET"));
        g_assert_nonnull(strstr(error->message, "refused"));
        g_clear_error(&error);
    }
    g_unlink(secret);
    g_rmdir(dir);
}

static void
test_billion_laughs(void)
{
    static const char lol[] =
        "<?xml version=\"1.0\"?>\n"
        "<!DOCTYPE lolz [\n"
        " <!ENTITY lol \"lol\">\n"
        " <!ENTITY lol1 \"&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;\">\n"
        " <!ENTITY lol2 \"&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;\">\n"
        " <!ENTITY lol3 \"&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;\">\n"
        " <!ENTITY lol4 \"&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;\">\n"
        " <!ENTITY lol5 \"&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;\">\n"
        " <!ENTITY lol6 \"&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;\">\n"
        " <!ENTITY lol7 \"&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;\">\n"
        " <!ENTITY lol8 \"&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;\">\n"
        " <!ENTITY lol9 \"&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;\">\n"
        "]>\n"
        "<lolz a=\"&lol9;\">&lol9;</lolz>\n";
    GError *error = NULL;
    xmlDoc *doc = parse_str(lol, &error);

    g_assert_null(doc);
    g_assert_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_PROTOCOL);
    g_assert_nonnull(strstr(error->message, "entities"));
    g_clear_error(&error);
}

static void
test_doctype_without_entities(void)
{
    GError *error = NULL;
    g_autoptr(xmlDoc) doc = parse_str("<!DOCTYPE r [<!ELEMENT r ANY>]><r>x &amp; y</r>", &error);
    g_autofree char *text = NULL;

    g_assert_no_error(error);
    text = vmshift_xml_text(vmshift_xml_root(doc));
    g_assert_cmpstr(text, ==, "x & y");
}

/* ---- nodes and XPath ------------------------------------------------- */

static void
test_xpath_vsphere(void)
{
    g_autoptr(xmlDoc) doc = parse_data("vsphere-retrieve-properties.xml");
    g_autoptr(xmlXPathContext) ctx = vmshift_xpath_new(doc, NULL);
    g_autoptr(GPtrArray) objects = NULL;
    g_autofree char *first = NULL;
    g_autofree char *missing = NULL;
    g_autofree char *none = NULL;
    g_autofree char *count = NULL;

    objects = vmshift_xpath_nodes(ctx, NULL,
                                  "/soap11:Envelope/soap11:Body/vim:RetrievePropertiesExResponse"
                                  "/vim:returnval/vim:objects");
    g_assert_cmpuint(objects->len, >=, 2);

    for (guint i = 0; i < objects->len; i++) {
        xmlNode *obj = g_ptr_array_index(objects, i);
        g_autofree char *moref = vmshift_xpath_string(ctx, obj, "vim:obj");
        g_autofree char *type = vmshift_xml_get_attr(
            vmshift_xml_child(obj, VMSHIFT_NS_VIM25, "obj"), NULL, "type");
        xmlNode *val = vmshift_xpath_node(ctx, obj, "vim:propSet[vim:name='name']/vim:val");
        g_autofree char *xsi = vmshift_xml_xsi_type(val);
        g_autofree char *name = vmshift_xml_text(val);

        g_assert_true(g_str_has_prefix(moref, "vm-"));
        g_assert_cmpstr(type, ==, "VirtualMachine");
        /* vcsim binds the XSI namespace to the prefix "XMLSchema-instance" */
        g_assert_cmpstr(xsi, ==, "string");
        g_assert_true(g_str_has_prefix(name, "DC0_"));
    }

    first = vmshift_xpath_string(ctx, NULL,
                                 "//vim:objects[1]/vim:propSet[vim:name='name']/vim:val");
    g_assert_cmpstr(first, ==, "DC0_H0_VM0");
    missing = vmshift_xpath_string(ctx, NULL, "//vim:missingSet/vim:path");
    g_assert_cmpstr(missing, ==, "no.such.property");
    {
        xmlNode *f = vmshift_xpath_node(ctx, NULL, "//vim:missingSet/vim:fault/vim:fault");
        g_autofree char *t = vmshift_xml_xsi_type(f);
        g_assert_cmpstr(t, ==, "InvalidProperty");
    }
    none = vmshift_xpath_string(ctx, NULL, "//vim:nothing");
    g_assert_null(none);
    count = vmshift_xpath_string(ctx, NULL, "count(//vim:objects)");
    g_assert_cmpuint(g_ascii_strtoull(count, NULL, 10), ==, objects->len);
    /* Without the prefix, default-namespace elements do not match. */
    g_assert_null(vmshift_xpath_node(ctx, NULL, "//objects"));
}

static void
test_xpath_uint64_and_ns(void)
{
    static const char text[] =
        "<r xmlns=\"urn:x\" xmlns:c=\"urn:c\"><c:n> 18446744073709551615 </c:n>"
        "<c:m>-1</c:m><c:k>12abc</c:k><c:e/></r>";
    static const VmshiftXmlNs ns[] = { { "x", "urn:x" }, { "c", "urn:c" }, { NULL, NULL } };
    GError *error = NULL;
    g_autoptr(xmlDoc) doc = parse_str(text, &error);
    g_autoptr(xmlXPathContext) ctx = NULL;
    guint64 v = 0;

    g_assert_no_error(error);
    ctx = vmshift_xpath_new(doc, ns);
    g_assert_true(vmshift_xpath_uint64(ctx, NULL, "/x:r/c:n", &v, &error));
    g_assert_no_error(error);
    g_assert_cmpuint(v, ==, G_MAXUINT64);
    g_assert_true(vmshift_xpath_uint64(ctx, NULL, "count(/x:r/c:*)", &v, &error));
    g_assert_cmpuint(v, ==, 4);

    g_assert_false(vmshift_xpath_uint64(ctx, NULL, "/x:r/c:m", &v, &error));
    g_assert_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_PROTOCOL);
    g_clear_error(&error);
    g_assert_false(vmshift_xpath_uint64(ctx, NULL, "/x:r/c:k", &v, &error));
    g_assert_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_PROTOCOL);
    g_clear_error(&error);
    g_assert_false(vmshift_xpath_uint64(ctx, NULL, "/x:r/c:e", &v, &error));
    g_assert_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_PROTOCOL);
    g_clear_error(&error);
    g_assert_false(vmshift_xpath_uint64(ctx, NULL, "/x:r/c:absent", &v, &error));
    g_assert_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_PROTOCOL);
    g_assert_nonnull(strstr(error->message, "c:absent"));
    g_clear_error(&error);

    /* node helpers */
    {
        xmlNode *root = vmshift_xml_root(doc);
        xmlNode *n = vmshift_xml_child(root, "urn:c", "n");
        g_autofree char *t = vmshift_xml_child_text(root, "urn:c", "k");
        g_assert_nonnull(n);
        g_assert_null(vmshift_xml_child(root, "urn:x", "n"));
        g_assert_true(vmshift_xml_first_element(root) == n);
        g_assert_true(vmshift_xml_node_is(vmshift_xml_next_element(n), "urn:c", "m"));
        g_assert_cmpstr(t, ==, "12abc");
        g_assert_null(vmshift_xml_child_text(root, NULL, "absent"));
    }
}

static void
test_xpath_invalid(void)
{
    GError *error = NULL;
    g_autoptr(xmlDoc) doc = parse_str("<r/>", &error);
    g_autoptr(xmlXPathContext) ctx = vmshift_xpath_new(doc, NULL);

    if (g_test_subprocess()) {
        g_autoptr(GPtrArray) a = vmshift_xpath_nodes(ctx, NULL, "//[");
        g_assert_cmpuint(a->len, ==, 0);
        return;
    }
    g_test_trap_subprocess(NULL, 0, G_TEST_SUBPROCESS_DEFAULT);
    g_test_trap_assert_failed();
    g_test_trap_assert_stderr("*invalid XPath expression*");
}

/* ---- building --------------------------------------------------------- */

static void
test_escape(void)
{
    static const char nasty[] = "a<b>&\"c'\td\ne\rf\x01g\xff h \xe2\x82\xac";
    g_autofree char *esc = vmshift_xml_escape(nasty);
    g_autofree char *doc_text = g_strdup_printf("<r a=\"%s\">%s</r>", esc, esc);
    GError *error = NULL;
    g_autoptr(xmlDoc) doc = parse_str(doc_text, &error);
    g_autofree char *text = NULL;
    g_autofree char *attr = NULL;
    g_autofree char *empty = vmshift_xml_escape(NULL);

    g_assert_no_error(error);
    g_assert_null(strchr(esc, '<'));
    g_assert_null(strchr(esc, '\n'));
    text = vmshift_xml_text(vmshift_xml_root(doc));
    attr = vmshift_xml_get_attr(vmshift_xml_root(doc), NULL, "a");
    /* \x01 and the invalid byte become U+FFFD; the rest survives. */
    g_assert_cmpstr(text, ==, "a<b>&\"c'\td\ne\rf\xef\xbf\xbdg\xef\xbf\xbd h \xe2\x82\xac");
    g_assert_cmpstr(attr, ==, text);
    g_assert_cmpstr(empty, ==, "");
}

static void
test_envelope(void)
{
    g_autofree char *user = vmshift_xml_escape("admin&<co>");
    g_autofree char *body = g_strdup_printf(
        "<Login xmlns=\"urn:vim25\"><_this type=\"SessionManager\">"
        "SessionManager</_this><userName>%s</userName></Login>",
        user);
    g_autofree char *e11 = vmshift_soap_envelope(VMSHIFT_SOAP_1_1, NULL, NULL, body);
    g_autofree char *e12 = vmshift_soap_envelope(
        VMSHIFT_SOAP_1_2, "xmlns:a=\"" VMSHIFT_NS_WSA "\"",
        "<a:Action s:mustUnderstand=\"true\">urn:x</a:Action>", "<x:Get xmlns:x=\"urn:x\"/>");
    GError *error = NULL;
    g_autoptr(xmlDoc) d11 = parse_str(e11, &error);
    g_autoptr(xmlDoc) d12 = NULL;
    g_autoptr(xmlXPathContext) ctx = NULL;
    g_autofree char *name = NULL;
    g_autofree char *action = NULL;

    g_assert_no_error(error);
    g_assert_true(vmshift_xml_node_is(vmshift_soap_body(d11), VMSHIFT_NS_VIM25, "Login"));
    ctx = vmshift_xpath_new(d11, NULL);
    name = vmshift_xpath_string(ctx, NULL, "//vim:userName");
    g_assert_cmpstr(name, ==, "admin&<co>");
    g_clear_pointer(&ctx, xmlXPathFreeContext);

    d12 = parse_str(e12, &error);
    g_assert_no_error(error);
    g_assert_true(vmshift_xml_node_is(vmshift_xml_root(d12), VMSHIFT_NS_SOAP12, "Envelope"));
    g_assert_true(vmshift_xml_node_is(vmshift_soap_body(d12), "urn:x", "Get"));
    ctx = vmshift_xpath_new(d12, NULL);
    action = vmshift_xpath_string(ctx, NULL, "/soap12:Envelope/soap12:Header/wsa:Action");
    g_assert_cmpstr(action, ==, "urn:x");
}

/* ---- SOAP faults ------------------------------------------------------ */

static void
test_fault_soap11_invalid_login(void)
{
    g_autoptr(xmlDoc) doc = parse_data("vsphere-login-fault.xml");
    g_autoptr(VmshiftSoapFault) f = vmshift_soap_fault_get(doc);
    GError *error = NULL;

    g_assert_nonnull(f);
    g_assert_cmpint(f->version, ==, VMSHIFT_SOAP_1_1);
    g_assert_cmpstr(f->code, ==, "ServerFaultCode");
    g_assert_null(f->subcode);
    g_assert_cmpstr(f->reason, ==, "Login failure");
    g_assert_cmpstr(f->detail_type, ==, "InvalidLogin");
    g_assert_nonnull(f->detail);
    g_assert_cmpint(vmshift_soap_fault_default_code(f), ==, VMSHIFT_ERROR_AUTH_FAILED);

    vmshift_soap_fault_set_error(f, vmshift_soap_fault_default_code(f), "POST https://vc/sdk Login",
                                 &error);
    g_assert_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_AUTH_FAILED);
    g_assert_cmpstr(error->message, ==,
                    "POST https://vc/sdk Login: SOAP fault InvalidLogin: Login failure");
    g_clear_error(&error);
}

static void
test_fault_soap11_not_authenticated(void)
{
    g_autoptr(xmlDoc) doc = parse_data("vsphere-notauthenticated-fault.xml");
    g_autoptr(VmshiftSoapFault) f = vmshift_soap_fault_get(doc);
    g_autofree char *priv = NULL;

    g_assert_nonnull(f);
    g_assert_cmpstr(f->reason, ==, "The session is not authenticated.");
    g_assert_cmpstr(f->detail_type, ==, "NotAuthenticated");
    g_assert_cmpstr(f->detail_ns, ==, VMSHIFT_NS_VIM25);
    priv = vmshift_xml_child_text(f->detail, VMSHIFT_NS_VIM25, "privilegeId");
    g_assert_cmpstr(priv, ==, "System.View");
    g_assert_cmpint(vmshift_soap_fault_default_code(f), ==, VMSHIFT_ERROR_AUTH_FAILED);
}

static void
test_fault_soap11_no_xsi_type(void)
{
    static const char text[] =
        "<soapenv:Envelope xmlns:soapenv=\"" VMSHIFT_NS_SOAP11 "\"><soapenv:Body>"
        "<soapenv:Fault><faultcode>soapenv:Server</faultcode><faultstring>gone</faultstring>"
        "<detail><ManagedObjectNotFoundFault xmlns=\"urn:vim25\"><obj type=\"VirtualMachine\">"
        "vm-9</obj></ManagedObjectNotFoundFault></detail></soapenv:Fault></soapenv:Body>"
        "</soapenv:Envelope>";
    GError *error = NULL;
    g_autoptr(xmlDoc) doc = parse_str(text, &error);
    g_autoptr(VmshiftSoapFault) f = vmshift_soap_fault_get(doc);

    g_assert_no_error(error);
    g_assert_cmpstr(f->detail_type, ==, "ManagedObjectNotFound");
    g_assert_cmpint(vmshift_soap_fault_default_code(f), ==, VMSHIFT_ERROR_NOT_FOUND);
}

static void
test_fault_soap12_wsman(void)
{
    g_autoptr(xmlDoc) doc = parse_data("wsman-fault.xml");
    g_autoptr(VmshiftSoapFault) f = vmshift_soap_fault_get(doc);
    GError *error = NULL;

    g_assert_nonnull(f);
    g_assert_cmpint(f->version, ==, VMSHIFT_SOAP_1_2);
    g_assert_cmpstr(f->code, ==, "s:Sender");
    g_assert_cmpstr(f->subcode, ==, "n:CannotProcessFilter");
    g_assert_cmpstr(f->subcode_name, ==, "CannotProcessFilter");
    g_assert_true(g_str_has_prefix(f->reason, "The data source could not process the filter."));
    g_assert_null(strchr(f->reason, '\n'));
    g_assert_cmpstr(f->detail_type, ==, "WSManFault");
    g_assert_cmpstr(f->detail_ns, ==, VMSHIFT_NS_WSMANFAULT);
    g_assert_cmpstr(f->detail_code, ==, "2150858778");
    g_assert_cmpstr(f->detail_message, ==,
                    "The specified class does not exist in the given namespace.");
    g_assert_cmpint(vmshift_soap_fault_default_code(f), ==, VMSHIFT_ERROR_FAILED);

    vmshift_soap_fault_set_error(f, VMSHIFT_ERROR_NOT_FOUND, "Enumerate Msvm_Nothing", &error);
    g_assert_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_NOT_FOUND);
    g_assert_cmpstr(error->message, ==,
                    "Enumerate Msvm_Nothing: SOAP fault WSManFault: The specified class does "
                    "not exist in the given namespace.");
    g_clear_error(&error);
}

static void
test_fault_soap12_access_denied(void)
{
    g_autoptr(xmlDoc) doc = parse_data("wsman-access-denied.xml");
    g_autoptr(VmshiftSoapFault) f = vmshift_soap_fault_get(doc);

    g_assert_nonnull(f);
    g_assert_cmpstr(f->subcode_name, ==, "AccessDenied");
    g_assert_cmpstr(f->detail_code, ==, "5");
    g_assert_cmpint(vmshift_soap_fault_default_code(f), ==, VMSHIFT_ERROR_AUTH_FAILED);
}

static void
test_fault_not_a_fault(void)
{
    GError *error = NULL;
    g_autoptr(xmlDoc) login = parse_data("vsphere-login.xml");
    g_autoptr(xmlDoc) other = parse_str("<Fault/>", &error);
    g_autoptr(xmlDoc)
        mixed = parse_str("<s:Envelope xmlns:s=\"" VMSHIFT_NS_SOAP12 "\"><s:Body>"
                          "<Fault xmlns=\"" VMSHIFT_NS_SOAP11 "\"/></s:Body></s:Envelope>",
                          &error);

    g_assert_no_error(error);
    g_assert_null(vmshift_soap_fault_get(login));
    g_assert_true(vmshift_xml_node_is(vmshift_soap_body(login), VMSHIFT_NS_VIM25, "LoginResponse"));
    g_assert_null(vmshift_soap_fault_get(other));
    g_assert_null(vmshift_soap_body(other));
    g_assert_null(vmshift_soap_fault_get(mixed));
}

static void
test_fault_minimal(void)
{
    GError *error = NULL;
    g_autoptr(xmlDoc) doc = parse_str("<s:Envelope xmlns:s=\"" VMSHIFT_NS_SOAP12
                                      "\"><s:Body><s:Fault/></s:Body></s:Envelope>",
                                      &error);
    g_autoptr(VmshiftSoapFault) f = vmshift_soap_fault_get(doc);

    g_assert_no_error(error);
    g_assert_nonnull(f);
    g_assert_cmpstr(f->code, ==, "");
    g_assert_cmpstr(f->reason, ==, "");
    g_assert_null(f->detail_type);
    vmshift_soap_fault_set_error(f, VMSHIFT_ERROR_PROTOCOL, "x", &error);
    g_assert_cmpstr(error->message, ==, "x: SOAP fault (no code)");
    g_clear_error(&error);
}

int
main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/xml/parse/good", test_parse_good);
    g_test_add_func("/xml/parse/malformed", test_parse_malformed);
    g_test_add_func("/xml/parse/truncated", test_parse_truncated);
    g_test_add_func("/xml/parse/deep", test_parse_deep);
    g_test_add_func("/xml/parse/xxe", test_xxe);
    g_test_add_func("/xml/parse/billion-laughs", test_billion_laughs);
    g_test_add_func("/xml/parse/doctype-without-entities", test_doctype_without_entities);
    g_test_add_func("/xml/xpath/vsphere", test_xpath_vsphere);
    g_test_add_func("/xml/xpath/uint64-ns", test_xpath_uint64_and_ns);
    g_test_add_func("/xml/xpath/invalid", test_xpath_invalid);
    g_test_add_func("/xml/escape", test_escape);
    g_test_add_func("/xml/soap/envelope", test_envelope);
    g_test_add_func("/xml/soap/fault11-invalid-login", test_fault_soap11_invalid_login);
    g_test_add_func("/xml/soap/fault11-not-authenticated", test_fault_soap11_not_authenticated);
    g_test_add_func("/xml/soap/fault11-no-xsi-type", test_fault_soap11_no_xsi_type);
    g_test_add_func("/xml/soap/fault12-wsman", test_fault_soap12_wsman);
    g_test_add_func("/xml/soap/fault12-access-denied", test_fault_soap12_access_denied);
    g_test_add_func("/xml/soap/not-a-fault", test_fault_not_a_fault);
    g_test_add_func("/xml/soap/fault-minimal", test_fault_minimal);
    return g_test_run();
}
