/*
 * libFuzzer target: the command-line parser (host/cli.c, host_cli_parse:
 * everything host_main() does short of running the command) on a hostile
 * argv. The input is the arguments, separated by NUL bytes. It must end in
 * an exit code (0 after --help/--version, 2 for a usage error) or -1 (the
 * command would run). With tests/fuzz/replay.c it
 * replays tests/fuzz/corpus-cli/ (TAP) in `make check`.
 */
#include "config.h"

#include "tests/fuzz/check.h"

#include <fcntl.h>
#include <stdio.h>

#include "tests/fuzz/files.h"
#include "host/host.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* libFuzzer: the usage text and the usage errors are not what is tested
 * here; -close_fd_mask=3 sends them to /dev/null (libFuzzer's and the
 * sanitizers' reports still reach stderr). VMSHIFT_FUZZ_VERBOSE=1 keeps
 * them. */
int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    char **av;

    if (g_getenv("VMSHIFT_FUZZ_VERBOSE"))
        return 0;
    av = g_new0(char *, *argc + 2);
    memcpy(av, *argv, sizeof(char *) * (size_t)*argc);
    av[*argc] = (char *)"-close_fd_mask=3";
    *argc += 1;
    *argv = av;
    return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    g_autoptr(GPtrArray) argv = g_ptr_array_new_with_free_func(g_free);
    g_autoptr(GPtrArray) copy = g_ptr_array_new();
    size_t start = 0;
    int rc;
#ifdef VMSHIFT_FUZZ_CORPUS
    /* the replay prints TAP on stdout: the usage text goes to /dev/null */
    int saved = dup(STDOUT_FILENO), null = open("/dev/null", O_WRONLY | O_CLOEXEC);
    fflush(stdout);
    dup2(null, STDOUT_FILENO);
#endif

    g_ptr_array_add(argv, g_strdup("vmshift"));
    for (size_t i = 0; i <= size && argv->len < 64; i++) {
        if (i == size || data[i] == '\0') {
            if (i > start || i < size)
                g_ptr_array_add(argv, g_strndup((const char *)data + start, i - start));
            start = i + 1;
        }
    }
    /* the parser may permute its argv (GOption does): a copy of the pointers */
    for (guint i = 0; i < argv->len; i++)
        g_ptr_array_add(copy, argv->pdata[i]);
    g_ptr_array_add(copy, NULL);
    rc = host_cli_parse((int)argv->len, (char **)copy->pdata);
#ifdef VMSHIFT_FUZZ_CORPUS
    fflush(stdout);
    dup2(saved, STDOUT_FILENO);
    close(saved);
    close(null);
#endif
    if (rc != -1 && rc != HOST_EXIT_OK && rc != HOST_EXIT_USAGE)
        FUZZ_FAIL("exit status %d", rc);
    return 0;
}
