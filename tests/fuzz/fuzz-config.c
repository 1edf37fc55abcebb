/*
 * libFuzzer target: the configuration loader (host/config.c) on a hostile
 * vmshift.conf and backends.d/ drop-ins. The input is split at lines "%%":
 * the first part is vmshift.conf, the second backends.d/a.conf, the third
 * backends.d/kvm.conf (a part not given: no such file). The loader must
 * return a configuration or one error, and every backend and group it
 * keeps must be well-formed. With tests/fuzz/replay.c it replays
 * tests/fuzz/corpus-config/ (TAP) in `make check`.
 */
#include "config.h"

#include "tests/fuzz/check.h"

#include "tests/fuzz/files.h"
#include "host/host.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *dir = fuzz_dir_get();
    g_autofree char *main_file = g_build_filename(dir, "vmshift.conf", NULL);
    g_autofree char *dropins = g_build_filename(dir, "backends.d", NULL);
    g_autofree char *a = g_build_filename(dropins, "a.conf", NULL);
    g_autofree char *kvm = g_build_filename(dropins, "kvm.conf", NULL);
    g_autoptr(GError) error = NULL;
    g_autoptr(HostConfig) c = NULL;
    const uint8_t *parts[3];
    size_t sizes[3];
    GHashTableIter it;
    gpointer key, value;

    fuzz_split(data, size, parts, sizes, 3);
    g_mkdir(dropins, 0700);
    fuzz_write(main_file, parts[0], sizes[0]);
    fuzz_write(a, parts[1], sizes[1]);
    fuzz_write(kvm, parts[2], sizes[2]);

    c = host_config_load(main_file, TRUE, NULL, &error);
    if (!c) {
        /* one line saying what and where */
        if (!error || !error->message[0] || strchr(error->message, '\n'))
            FUZZ_FAIL("no error, or not one line: '%s'", error ? error->message : "(none)");
        return 0;
    }
    if (!c->state_dir)
        FUZZ_FAIL("a config without a state directory");
    for (guint i = 0; i < c->backends->len; i++) {
        HostBackendConf *b = g_ptr_array_index(c->backends, i);
        if (!b->name || !b->source || host_config_find_backend(c, b->name) == NULL)
            FUZZ_FAIL("backend %u: no name or source, or not found by its name", i);
    }
    g_hash_table_iter_init(&it, c->groups);
    while (g_hash_table_iter_next(&it, &key, &value))
        if (!g_utf8_validate(key, -1, NULL) || value == NULL)
            FUZZ_FAIL("a group that is not UTF-8 or has no value");
    for (guint i = 0; i < c->warnings->len; i++)
        if (!g_utf8_validate(g_ptr_array_index(c->warnings, i), -1, NULL))
            FUZZ_FAIL("warning %u is not UTF-8", i);
    return 0;
}
