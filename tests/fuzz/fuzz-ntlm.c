/*
 * libFuzzer target: the Hyper-V plugin's NTLM client
 * (plugins/hyperv/ntlm.c) on an arbitrary CHALLENGE_MESSAGE, as a hostile
 * or broken WinRM endpoint could send it in its 401 "Negotiate" header.
 * The input is the raw message; the target base64-encodes it as the header
 * would carry it.  With tests/fuzz/replay.c it replays
 * tests/fuzz/corpus-ntlm/ once per file (TAP) in `make check`.
 */
#include "config.h"

#include "tests/fuzz/check.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <glib.h>

#include "plugins/hyperv/ntlm.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    GError *error = NULL;
    char *b64 = g_base64_encode(data, size);
    char *auth = hv_ntlm_authenticate_b64(b64, "HV01\\Administrator", NULL, "fuzz-secret", &error);
    if (auth == NULL) {
        /* an error never carries the password */
        if (error == NULL || strstr(error->message, "fuzz-secret"))
            FUZZ_FAIL("no error, or one holding the password: '%s'",
                      error ? error->message : "(none)");
        g_clear_error(&error);
    }
    g_free(auth);
    g_free(b64);
    /* the header value itself may be anything, not only valid base64 */
    char *raw = g_strndup((const char *)data, size);
    auth = hv_ntlm_authenticate_b64(raw, "admin@hv01.example.com", "HV01", "fuzz-secret", &error);
    if (auth == NULL)
        g_clear_error(&error);
    g_free(auth);
    g_free(raw);
    return 0;
}
