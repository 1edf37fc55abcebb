/* libFuzzer target: the SDK's hardened XML parser and SOAP fault extraction
 * (vmshift_xml_parse, vmshift_soap_fault_get and friends), plus
 * vmshift_redact on the same bytes. Seeds: the XML files in tests/unit/data.
 *
 *   ./configure CC=clang --enable-fuzzing && make tests/fuzz/fuzz-xml
 *   tests/fuzz/fuzz-xml -max_len=65536 tests/unit/data
 */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <vmshift/xml.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
walk(xmlNode *node, int depth)
{
    for (xmlNode *c = vmshift_xml_first_element(node); c && depth < 32;
         c = vmshift_xml_next_element(c)) {
        char *t = vmshift_xml_xsi_type(c);
        char *a = vmshift_xml_get_attr(c, NULL, "type");
        g_free(t);
        g_free(a);
        walk(c, depth + 1);
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    GError *error = NULL;
    xmlDoc *doc = vmshift_xml_parse((const char *)data, size, "fuzz", &error);

    if (!doc) {
        g_assert(error && error->domain == VMSHIFT_ERROR);
        g_assert(strchr(error->message, '\n') == NULL);
        g_clear_error(&error);
    } else {
        VmshiftSoapFault *f = vmshift_soap_fault_get(doc);
        xmlXPathContext *ctx = vmshift_xpath_new(doc, NULL);
        GPtrArray *nodes;
        char *s;
        guint64 v;

        if (f) {
            int code = vmshift_soap_fault_default_code(f);
            g_assert(code > 0);
            vmshift_soap_fault_set_error(f, code, "fuzz", &error);
            g_assert(error && strchr(error->message, '\n') == NULL);
            g_clear_error(&error);
            vmshift_soap_fault_free(f);
        }
        walk(vmshift_xml_root(doc), 0);
        s = vmshift_xml_text(vmshift_soap_body(doc));
        if (s) {
            char *e = vmshift_xml_escape(s);
            g_free(e);
        }
        g_free(s);
        nodes = vmshift_xpath_nodes(ctx, NULL, "//vim:propSet/vim:val");
        g_ptr_array_unref(nodes);
        s = vmshift_xpath_string(ctx, NULL, "//wsmanfault:Message");
        g_free(s);
        if (!vmshift_xpath_uint64(ctx, NULL, "//vim:key", &v, &error))
            g_clear_error(&error);
        xmlXPathFreeContext(ctx);
        xmlFreeDoc(doc);
    }
    if (size <= 16384) {
        char *text = g_strndup((const char *)data, size);
        char *r = vmshift_redact(text);
        g_free(r);
        g_free(text);
    }
    return 0;
}

#ifdef VMSHIFT_FUZZ_REPLAY
/* Without libFuzzer: run every file of a directory once (TAP). */
int
main(int argc, char **argv)
{
    const char *dir = argc > 1 ? argv[1] : NULL;
    g_autofree char *def = NULL;
    GPtrArray *files;
    GDir *d;
    const char *name;

    if (!dir) {
        const char *src = g_getenv("VMSHIFT_SRCDIR");
        def = g_build_filename(src ? src : ".", "tests", "unit", "data", NULL);
        dir = def;
    }
    d = g_dir_open(dir, 0, NULL);
    if (!d) {
        printf("1..0 # SKIP no corpus at %s\n", dir);
        return 0;
    }
    files = g_ptr_array_new_with_free_func(g_free);
    while ((name = g_dir_read_name(d)))
        g_ptr_array_add(files, g_build_filename(dir, name, NULL));
    g_dir_close(d);
    printf("1..%u\n", files->len);
    for (guint i = 0; i < files->len; i++) {
        char *buf = NULL;
        gsize len = 0;
        gboolean ok = g_file_get_contents(files->pdata[i], &buf, &len, NULL);
        if (ok)
            LLVMFuzzerTestOneInput((const uint8_t *)buf, len);
        printf("%s %u - %s\n", ok ? "ok" : "not ok", i + 1, (char *)files->pdata[i]);
        g_free(buf);
    }
    g_ptr_array_unref(files);
    return 0;
}
#endif
