/*
 * vmshift host: what the command files (cmd-*.c) share with the command
 * line (cli.c): the parsed options and one entry point per command.
 *
 * cli.c parses the command line and calls a host_cmd_*(); the command files
 * never call into cli.c. Each command prints its result (a table, or one
 * JSON document with --json) and returns a HOST_EXIT_* code.
 */
#ifndef VMSHIFT_HOST_CMD_H
#define VMSHIFT_HOST_CMD_H

#include "host/host.h"

G_BEGIN_DECLS

/* The options of one command (which ones a command takes: cli.c's table). */
typedef struct {
    char *backend;
    char *group;
    char *host;
    char *state, *vm, *since; /* jobs filters */
    char *before;             /* journal prune */
    HostMigrateOpts m;
    gboolean reverse;
    gboolean retry, undo, dismiss, force_cleanup; /* job repair */
    char *reason;                                 /* job repair --dismiss */
    gboolean detach, cancel_on_interrupt;         /* migrate through vmshiftd */
    gboolean check;                               /* backends --check */
} CmdOpts;

/* One line on stderr with @e's message; the exit code of a failure. */
static inline int
host_cmd_fail(const GError *e)
{
    host_err("%s", e->message);
    return HOST_EXIT_FAILED;
}

/* cmd-inventory.c */
int host_cmd_backends(HostSession *s, CmdOpts *o, char **args);
int host_cmd_hosts(HostSession *s, CmdOpts *o, char **args);
int host_cmd_vms(HostSession *s, CmdOpts *o, char **args);
int host_cmd_rate(HostSession *s, CmdOpts *o, char **args);
int host_cmd_merge_status(HostSession *s, CmdOpts *o, char **args);
int host_cmd_vm_show(HostSession *s, CmdOpts *o, char **args);
int host_cmd_networks(HostSession *s, CmdOpts *o, char **args);
int host_cmd_volumes(HostSession *s, CmdOpts *o, char **args);

/* cmd-migrate.c */
int host_cmd_check(HostSession *s, CmdOpts *o, char **args);
int host_cmd_migrate(HostSession *s, CmdOpts *o, char **args);
int host_cmd_migrate_storage(HostSession *s, CmdOpts *o, char **args);
int host_cmd_acl_recreate(HostSession *s, CmdOpts *o, char **args);
/* Runs one job in the foreground to its end and reports it (also for
 * `job repair`: @vm NULL, @repair_id the job repaired). */
int host_cmd_run_job(HostSession *s, HostJobKind kind, HostBackend *b, const VmshiftVm *vm,
                     const VmshiftMigrationSpec *spec, gint64 repair_id);
/* `job repair ID` as @mode says (@reason: --dismiss's). */
int host_cmd_run_repair(HostSession *s, HostBackend *b, const VmshiftMigrationSpec *spec,
                        gint64 repair_id, HostRepairMode mode, const char *reason);

/* cmd-jobs.c */
int host_cmd_jobs(HostSession *s, CmdOpts *o, char **args);
int host_cmd_job_show(HostSession *s, CmdOpts *o, char **args);
int host_cmd_job_cancel(HostSession *s, CmdOpts *o, char **args);
int host_cmd_job_repair(HostSession *s, CmdOpts *o, char **args);
/* The `jobs` table of @list (HostJobRecord), to stdout. */
void host_jobs_table_print(GPtrArray *list);
/* Parses T of --since/--before: "2026-01-31", "2026-01-31T08:00[:00][Z|+01:00]",
 * or an age "30d", "12h", "45m", "2w" before @now. FALSE with one line in @error. */
gboolean host_cmd_parse_time(const char *opt, const char *t, gint64 now, gint64 *out,
                             GError **error);

/* cmd-journal.c */
int host_cmd_journal_check(HostSession *s, CmdOpts *o, char **args);
int host_cmd_journal_export(HostSession *s, CmdOpts *o, char **args);
int host_cmd_journal_prune(HostSession *s, CmdOpts *o, char **args);

/* cli.c: what the bash completion asks (hidden command __complete) */
int host_cmd_complete(HostSession *s, CmdOpts *o, char **args);

/* cmd-bulk.c */
int host_cmd_bulk(HostSession *s, CmdOpts *o, char **args);

G_END_DECLS

#endif /* VMSHIFT_HOST_CMD_H */
