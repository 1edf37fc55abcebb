/*
 * libFuzzer target: the journal's spec JSON (host/jobs.c,
 * host_spec_from_json), as a job row read back from a damaged or edited
 * journal.db holds it. A spec it accepts must survive a round trip:
 * host_spec_to_json() of it parses again to the same JSON. With
 * tests/fuzz/replay.c it replays tests/fuzz/corpus-spec/ (TAP) in
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
    g_autofree char *text = g_strndup((const char *)data, size);
    g_autoptr(GError) error = NULL;
    g_autoptr(VmshiftMigrationSpec) spec = host_spec_from_json(text, &error);
    g_autoptr(VmshiftMigrationSpec) again = NULL;
    g_autofree char *json = NULL, *json2 = NULL;

    if (!spec) {
        /* NULL without an error: a row that is not a migration's */
        if (error && !error->message[0])
            FUZZ_FAIL("an empty error");
        return 0;
    }
    json = host_spec_to_json(spec, HOST_JOB_MIGRATE);
    if (!json || !g_utf8_validate(json, -1, NULL))
        FUZZ_FAIL("the spec's JSON is missing or not UTF-8");
    again = host_spec_from_json(json, NULL);
    if (!again)
        FUZZ_FAIL("the spec's own JSON did not read back: %s", json);
    json2 = host_spec_to_json(again, HOST_JOB_MIGRATE);
    if (strcmp(json, json2) != 0)
        FUZZ_FAIL("the JSON changed on a round trip: %s -> %s", json, json2);
    return 0;
}
