/* vmshift host: the vmshift command. Everything lives in libvmshift-host so
 * the unit tests can link it; see cli.c. Here only what the process as a
 * whole needs before the command runs: no core dumps (the process holds
 * backend passwords) and GLib's log messages on stderr only (stdout carries
 * the --json document). */
#include "config.h"

#include <locale.h>
#include <signal.h>
#include <stdio.h>
#include <sys/prctl.h>
#include <sys/resource.h>

#include "host/host.h"

/* Every GLib log message to stderr, whatever its level: with
 * G_MESSAGES_DEBUG set, GLib's default writer prints debug and info lines
 * on stdout, which breaks --json. */
static GLogWriterOutput
log_to_stderr(GLogLevelFlags level, const GLogField *fields, gsize n_fields, gpointer data)
{
    g_autofree char *line = NULL;
    const char *domain = NULL;

    (void)data;
    for (gsize i = 0; i < n_fields; i++)
        if (!g_strcmp0(fields[i].key, "GLIB_DOMAIN") && fields[i].length < 0)
            domain = fields[i].value;
    /* debug and info only with G_MESSAGES_DEBUG, as GLib's default writer */
    if (g_log_writer_default_would_drop(level, domain))
        return G_LOG_WRITER_HANDLED;
    line = g_log_writer_format_fields(level, fields, n_fields, FALSE);
    fprintf(stderr, "%s\n", line);
    fflush(stderr);
    return G_LOG_WRITER_HANDLED;
}

int
main(int argc, char **argv)
{
    struct rlimit no_core = { 0, 0 };

    /* no core file, no ptrace or /proc/PID/mem by other users (#14) */
    if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0 || setrlimit(RLIMIT_CORE, &no_core) != 0)
        perror("vmshift: warning: could not turn core dumps off");
    /* A migration survives its terminal (#13): an ssh session that drops
     * sends SIGHUP, and writing to the gone terminal or a closed pipe must
     * fail (EIO, EPIPE) rather than kill the process; jobs go on and
     * record their progress in the journal (host_jobs_wait_full() notes
     * the hangup there). */
    signal(SIGHUP, SIG_IGN);
    signal(SIGPIPE, SIG_IGN);
    g_log_set_writer_func(log_to_stderr, NULL, NULL);
    setlocale(LC_ALL, "");
    return host_main(argc, argv);
}
