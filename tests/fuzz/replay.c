/*
 * The replay half of a libFuzzer target: main() runs the target's
 * LLVMFuzzerTestOneInput once on every file of its corpus
 * (tests/fuzz/VMSHIFT_FUZZ_CORPUS/, or the directory given) and prints TAP,
 * so that `make check` replays the corpus in every build. Linked into the
 * fuzz-NAME-replay programs of the qmp, wsman and ntlm targets.
 */
#include "config.h"

#include <stdint.h>
#include <stdio.h>

#include <glib.h>

#ifndef VMSHIFT_FUZZ_CORPUS
#error "VMSHIFT_FUZZ_CORPUS (the corpus directory's name) must be defined"
#endif

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
main(int argc, char **argv)
{
    const char *src = g_getenv("VMSHIFT_SRCDIR");
    g_autofree char *def = g_build_filename(src ? src : ".", "tests", "fuzz", VMSHIFT_FUZZ_CORPUS,
                                            NULL);
    const char *dir = argc > 1 ? argv[1] : def;
    g_autoptr(GPtrArray) files = g_ptr_array_new_with_free_func(g_free);
    GDir *d = g_dir_open(dir, 0, NULL);
    const char *name;

    if (d == NULL) {
        printf("1..0 # SKIP no corpus at %s\n", dir);
        return 0;
    }
    while ((name = g_dir_read_name(d)) != NULL)
        g_ptr_array_add(files, g_build_filename(dir, name, NULL));
    g_dir_close(d);
    g_ptr_array_sort(files, (GCompareFunc)g_strcmp0);
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
    return 0;
}
