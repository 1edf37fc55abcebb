/*
 * vmshift host: test-only hooks (tests/faults, bench/faults). They do nothing
 * unless their environment variable is set.
 */
#include "config.h"

#include <signal.h>
#include <string.h>

#include "host/host.h"

/* TEST-ONLY hook for tests/faults and bench/faults: with
 * VMSHIFT_TEST_KILL_AT=PHASE[+MS] in the environment, this process kills
 * itself (SIGKILL, as kill -9 would) MS milliseconds (default 0) after the
 * journal records PHASE. Unset, it does nothing. */
static gpointer
test_kill_later(gpointer ms)
{
    g_usleep((gulong)GPOINTER_TO_UINT(ms) * 1000);
    raise(SIGKILL);
    return NULL;
}

void
host_test_kill_at(VmshiftPhase phase)
{
    host_test_kill_at_name(vmshift_phase_name(phase));
}

/* TEST-ONLY, the same way: with VMSHIFT_TEST_STOP_AT=PHASE, this process
 * stops itself (SIGSTOP, every thread) once, right after the journal
 * records PHASE, so that a test can change the world (fill the
 * destination's disk) before the phase does its work, then SIGCONT it. */
static void
test_stop_at(const char *name)
{
    static gsize done = 0;
    const char *at = g_getenv("VMSHIFT_TEST_STOP_AT");
    if (!at || strcmp(at, name) != 0 || !g_once_init_enter(&done))
        return;
    raise(SIGSTOP);
    g_once_init_leave(&done, 1);
}

void
host_test_kill_at_name(const char *name)
{
    const char *at = g_getenv("VMSHIFT_TEST_KILL_AT");
    size_t len = strlen(name);
    guint ms;

    test_stop_at(name);
    if (!at || strncmp(at, name, len) != 0 || (at[len] && at[len] != '+'))
        return;
    ms = at[len] ? (guint)g_ascii_strtoull(at + len + 1, NULL, 10) : 0;
    if (!ms)
        raise(SIGKILL);
    g_thread_unref(g_thread_new("test-kill", test_kill_later, GUINT_TO_POINTER(ms)));
}
