/*
 * libFuzzer target: the credentials reader (sdk/conf.c,
 * vmshift_credentials_read_file) on a hostile credentials file, written
 * mode 0600 into a private directory as an administrator would. It must
 * return the credentials (a user and a password) or one error line that
 * never holds the file's password. With tests/fuzz/replay.c it replays
 * tests/fuzz/corpus-credentials/ (TAP) in `make check`.
 */
#include "config.h"

#include "tests/fuzz/check.h"

#include "tests/fuzz/files.h"
#include <vmshift/vmshift.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    g_autofree char *path = g_build_filename(fuzz_dir_get(), "cred", NULL);
    g_autoptr(GError) error = NULL;
    VmshiftCredentials *cr;

    fuzz_write(path, data, size);
    cr = vmshift_credentials_read_file(path, &error);
    if (!cr) {
        if (!error || !error->message[0] || strchr(error->message, '\n'))
            FUZZ_FAIL("no error, or not one line: '%s'", error ? error->message : "(none)");
        /* the error never quotes a password= value: checked for the values
         * with a '!' (the seeds' passwords have one), which no message of
         * the reader's own holds, and that appear only once in the file (not
         * also in a key the error may quote), so that a match is a leak */
        g_autofree char *text = g_strndup((const char *)data, size);
        g_auto(GStrv) lines = g_strsplit(text, "\n", -1);
        for (guint i = 0; lines[i]; i++) {
            char *eq = strchr(lines[i], '=');
            if (!eq)
                continue;
            *eq = '\0';
            g_strstrip(lines[i]);
            g_strstrip(eq + 1);
            if (!strcmp(lines[i], "password") && strchr(eq + 1, '!')
                && strstr(text, eq + 1) == g_strrstr(text, eq + 1)
                && strstr(error->message, eq + 1))
                FUZZ_FAIL("the error '%s' holds the password '%s' (line %u)", error->message,
                          eq + 1, i + 1);
        }
        return 0;
    }
    if (!cr->user || !cr->user[0] || !cr->password || !g_utf8_validate(cr->user, -1, NULL)
        || !g_utf8_validate(cr->password, -1, NULL))
        FUZZ_FAIL("credentials without a user or password, or not UTF-8");
    vmshift_credentials_free(cr);
    return 0;
}
