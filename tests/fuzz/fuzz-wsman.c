/*
 * libFuzzer target: the Hyper-V plugin's WS-Management reply parser
 * (plugins/hyperv/wsman.c) on arbitrary bytes, as a hostile or broken
 * WinRM endpoint could send them.  With tests/fuzz/replay.c it replays
 * tests/fuzz/corpus-wsman/ once per file (TAP) in `make check`.
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
