/*
 * libFuzzer target: the bulk plan parser (host/bulk.c,
 * host_bulk_load_plan) on a hostile plan file. It must return the waves,
 * sorted by number, each with at least one VM, or one error line. With
 * tests/fuzz/replay.c it replays tests/fuzz/corpus-plan/ (TAP) in
 * `make check`.
 */
#include "config.h"

#include "tests/fuzz/check.h"

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
            FUZZ_FAIL("no error, or not one line: '%s'", error ? error->message : "(none)");
        host_bulk_clear(&bk);
        return 0;
    }
    if (bk.max_backend < 1 || bk.max_host < 1 || (bk.win_start < 0) != (bk.win_end < 0)
        || (bk.win_start >= 0 && bk.win_start == bk.win_end))
        FUZZ_FAIL("limits out of range: max-backend %lld, max-host %lld, window %d-%d",
                  (long long)bk.max_backend, (long long)bk.max_host, bk.win_start, bk.win_end);
    for (guint i = 0; i < waves->len; i++) {
        HostBulkWave *w = g_ptr_array_index(waves, i);
        if (w->items->len == 0
            || (i > 0 && ((HostBulkWave *)g_ptr_array_index(waves, i - 1))->number >= w->number))
            FUZZ_FAIL("wave %u is empty or out of order", i);
        for (guint k = 0; k < w->items->len; k++) {
            HostBulkItem *it = g_ptr_array_index(w->items, k);
            if (!it->vm || !it->vm[0] || !g_utf8_validate(it->vm, -1, NULL))
                FUZZ_FAIL("wave %u, item %u: no VM name, or not UTF-8", i, k);
        }
    }
    g_ptr_array_unref(waves);
    host_bulk_clear(&bk);
    return 0;
}
