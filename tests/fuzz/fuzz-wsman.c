/*
 * libFuzzer target: the Hyper-V plugin's WS-Management reply parser
 * (plugins/hyperv/wsman.c) on arbitrary bytes, as a hostile or broken
 * WinRM endpoint could send them.  Built with -DVMSHIFT_FUZZ_REPLAY it
 * replays tests/fuzz/corpus-wsman/ once per file (TAP) in `make check`.
 */
#include "config.h"

#include <stdint.h>
#include <stdio.h>

#include <glib.h>

#include "plugins/hyperv/wsman.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
walk(const HvInstance *inst, int depth)
{
    GHashTableIter it;
    gpointer k, v;

    if (inst == NULL || depth > 20)
        return;
    (void)hv_inst_get(inst, "ReturnValue");
    (void)hv_inst_get_int(inst, "JobState", 0);
    (void)hv_epr_selector(hv_inst_get_epr(inst, "Job"), "InstanceID");
    g_hash_table_iter_init(&it, inst->objs);
    while (g_hash_table_iter_next(&it, &k, &v)) {
        GPtrArray *a = v;
        for (guint i = 0; i < a->len; i++)
            walk(a->pdata[i], depth + 1);
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    GError *error = NULL;
    HvResponse *r = hv_response_parse((const char *)data, size, "fuzz input", &error);

    if (r == NULL) {
        g_error_free(error);
        return 0;
    }
    if (r->is_fault)
        g_free(hv_fault_describe(r));
    walk(r->body, 0);
    for (guint i = 0; i < r->items->len; i++)
        walk(r->items->pdata[i], 0);
    hv_response_free(r);
    return 0;
}

#ifdef VMSHIFT_FUZZ_REPLAY
int
main(int argc, char **argv)
{
    const char *src = g_getenv("VMSHIFT_SRCDIR");
    g_autofree char *def = g_build_filename(src ? src : ".", "tests", "fuzz", "corpus-wsman",
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
#endif
