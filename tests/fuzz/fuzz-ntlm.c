/*
 * libFuzzer target: the Hyper-V plugin's NTLM client
 * (plugins/hyperv/ntlm.c) on an arbitrary CHALLENGE_MESSAGE, as a hostile
 * or broken WinRM endpoint could send it in its 401 "Negotiate" header.
 * The input is the raw message; the target base64-encodes it as the header
 * would carry it.  Built with -DVMSHIFT_FUZZ_REPLAY it replays
 * tests/fuzz/corpus-ntlm/ once per file (TAP) in `make check`.
 */
#include "config.h"

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
    char *auth = hv_ntlm_authenticate_b64(b64, "HV01\\Administrator", NULL, "fuzz-secret",
                                          &error);
    if (auth == NULL) {
        /* an error never carries the password */
        if (error == NULL || strstr(error->message, "fuzz-secret"))
            __builtin_trap();
        g_clear_error(&error);
    }
    g_free(auth);
    g_free(b64);
    /* the header value itself may be anything, not only valid base64 */
    char *raw = g_strndup((const char *)data, size);
    auth = hv_ntlm_authenticate_b64(raw, "admin@hv01.example.com", "HV01", "fuzz-secret",
                                    &error);
    if (auth == NULL)
        g_clear_error(&error);
    g_free(auth);
    g_free(raw);
    return 0;
}

#ifdef VMSHIFT_FUZZ_REPLAY
int
main(int argc, char **argv)
{
    const char *src = g_getenv("VMSHIFT_SRCDIR");
    g_autofree char *def = g_build_filename(src ? src : ".", "tests", "fuzz", "corpus-ntlm",
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
