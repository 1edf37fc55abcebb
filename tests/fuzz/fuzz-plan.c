/*
 * libFuzzer target: the bulk plan parser (host/bulk.c,
 * host_bulk_load_plan) on a hostile plan file. It must return the waves,
 * sorted by number, each with at least one VM, or one error line. With
 * tests/fuzz/replay.c it replays tests/fuzz/corpus-plan/ (TAP) in
 * `make check`.
 */
#include "config.h"

#include "tests/fuzz/files.h"
#include "host/host.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    g_autofree char *path = g_build_filename(fuzz_dir_get(), "plan", NULL);
    g_autoptr(GError) error = NULL;
    HostBulk bk = { 0 };
    GPtrArray *waves;

    fuzz_write(path, data, size);
    waves = host_bulk_load_plan(path, &bk, &error);
    if (!waves) {
        if (!error || !error->message[0] || strchr(error->message, '\n'))
            __builtin_trap();
        host_bulk_clear(&bk);
        return 0;
    }
    if (bk.max_backend < 1 || bk.max_host < 1 || (bk.win_start < 0) != (bk.win_end < 0)
        || (bk.win_start >= 0 && bk.win_start == bk.win_end))
        __builtin_trap();
    for (guint i = 0; i < waves->len; i++) {
        HostBulkWave *w = g_ptr_array_index(waves, i);
        if (w->items->len == 0
            || (i > 0 && ((HostBulkWave *)g_ptr_array_index(waves, i - 1))->number >= w->number))
            __builtin_trap();
        for (guint k = 0; k < w->items->len; k++) {
            HostBulkItem *it = g_ptr_array_index(w->items, k);
            if (!it->vm || !it->vm[0] || !g_utf8_validate(it->vm, -1, NULL))
                __builtin_trap();
        }
    }
    g_ptr_array_unref(waves);
    host_bulk_clear(&bk);
    return 0;
}
