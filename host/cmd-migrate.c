/*
 * vmshift host: the commands that change where a VM is (check, migrate,
 * migrate-storage, acl recreate), and the single-job runner they and
 * `job repair` share.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "host/host.h"
#include "host/cmd.h"
#include "host/crossmove.h"

static json_object *
spec_json_obj(const VmshiftMigrationSpec *spec, HostJobKind kind)
{
    g_autofree char *txt = host_spec_to_json(spec, kind);
    return json_tokener_parse(txt);
}

/* check: findings and a verdict; exit 0 when migrate would proceed */
int
host_cmd_check(HostSession *s, CmdOpts *o, char **args)
{
    g_autoptr(GError) err = NULL;
    HostBackend *b = NULL;
    g_autoptr(VmshiftVm) vm = NULL;
    g_autofree char *placement = NULL;
    g_autoptr(VmshiftMigrationSpec)
        spec = host_build_spec_run(s->reg, args[0], &o->m, FALSE, NULL, &b, &vm, &placement, &err);
    g_autoptr(GPtrArray) f = NULL;
    guint errors, warnings;
    gboolean ok;

    if (!spec)
        return host_cmd_fail(err);
    f = host_validate(b, spec, vm, &err);
    if (!f)
        return host_cmd_fail(err);
    host_findings_count(f, &errors, &warnings);
    ok = errors == 0 && (warnings == 0 || spec->force);
    if (s->g->json) {
        json_object *root = json_object_new_object();
        json_object *arr = json_object_new_array();
        for (guint i = 0; i < f->len; i++)
            json_object_array_add(arr, host_json_finding(g_ptr_array_index(f, i)));
        json_object_object_add(root, "backend", host_json_string(host_backend_name(b)));
        json_object_object_add(root, "spec", spec_json_obj(spec, HOST_JOB_MIGRATE));
        json_object_object_add(root, "findings", arr);
        json_object_object_add(root, "placement", host_json_string(placement));
        json_object_object_add(root, "errors", json_object_new_int((int)errors));
        json_object_object_add(root, "warnings", json_object_new_int((int)warnings));
        json_object_object_add(root, "ok", json_object_new_boolean(ok));
        host_json_print(root);
    } else {
        g_autofree char *cmd = host_spec_command_line(host_backend_name(b), spec);
        printf("Checking: %s\n", cmd);
        if (placement)
            printf("Placement: %s\n", placement);
        printf("\n");
        host_findings_print(f, stdout);
        printf("\n%s: %u error%s, %u warning%s%s\n", ok ? "OK" : "NOT OK", errors,
               errors == 1 ? "" : "s", warnings, warnings == 1 ? "" : "s",
               !errors && warnings && !spec->force ? " (--force accepts warnings)" : "");
    }
    return ok ? HOST_EXIT_OK : HOST_EXIT_FAILED;
}

/* ---- running jobs from the command line ------------------------------------------------- */

static int
report_job(HostSession *s, HostJournal *j, HostJobRun *run)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(HostJobRecord) rec = host_journal_get(j, host_job_run_id(run), &err);
    const GError *jerr = host_job_run_error(run);
    gboolean ok = !jerr;

    if (s->g->json && rec) {
        host_json_print(host_json_job(rec));
    } else if (rec && ok) {
        printf("job %" G_GINT64_FORMAT " %s: %s '%s' is on %s (%s)\n", rec->id, rec->state,
               rec->kind, rec->vm, rec->location_host ? rec->location_host : "-",
               rec->location_detail ? rec->location_detail : "-");
    }
    if (!ok) {
        if (rec && rec->location_host)
            host_err("job %" G_GINT64_FORMAT " %s: %s; VM '%s' is on %s (%s)", rec->id, rec->state,
                     jerr->message, rec->vm, rec->location_host,
                     rec->location_detail ? rec->location_detail : "-");
        else
            host_err("job %" G_GINT64_FORMAT " %s: %s", host_job_run_id(run),
                     host_job_run_state(run), jerr->message);
    }
    return ok ? HOST_EXIT_OK : HOST_EXIT_FAILED;
}

static int
run_job_full(HostSession *s, HostJobKind kind, HostBackend *b, const VmshiftVm *vm,
             const VmshiftMigrationSpec *spec, gint64 repair_id, HostRepairMode mode,
             const char *reason)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(HostJournal) j = host_session_journal(s, &err);
    HostJobContext ctx = { 0 };
    HostJobRun *run;
    g_autoptr(GPtrArray) runs = g_ptr_array_new();
    int rc;

    if (!j)
        return host_cmd_fail(err);
    if (!host_backend_ensure_open(b, &err))
        return host_cmd_fail(err);
    ctx.reg = s->reg;
    ctx.journal = j;
    ctx.json = s->g->json;
    ctx.verbose = s->g->verbose;
    ctx.progress = host_progress_new(isatty(STDERR_FILENO), s->g->json);
    run = host_job_run_new(&ctx, kind, b, vm, spec, repair_id, &err);
    if (!run) {
        host_progress_free(ctx.progress);
        return host_cmd_fail(err);
    }
    if (kind == HOST_JOB_REPAIR)
        host_job_run_set_repair(run, mode, reason);
    if (!s->g->json)
        host_progress_line(ctx.progress, "job %" G_GINT64_FORMAT ": %s %s", host_job_run_id(run),
                           host_job_kind_name(kind),
                           vm     ? vm->name
                           : spec ? spec->vm
                                  : "");
    host_job_run_start(run);
    g_ptr_array_add(runs, run);
    host_jobs_wait(&ctx, runs);
    rc = report_job(s, j, run);
    host_job_run_free(run);
    host_progress_free(ctx.progress);
    return rc;
}

int
host_cmd_run_job(HostSession *s, HostJobKind kind, HostBackend *b, const VmshiftVm *vm,
                 const VmshiftMigrationSpec *spec, gint64 repair_id)
{
    return run_job_full(s, kind, b, vm, spec, repair_id, HOST_REPAIR_AUTO, NULL);
}

int
host_cmd_run_repair(HostSession *s, HostBackend *b, const VmshiftMigrationSpec *spec,
                    gint64 repair_id, HostRepairMode mode, const char *reason)
{
    return run_job_full(s, HOST_JOB_REPAIR, b, NULL, spec, repair_id, mode, reason);
}

static int
print_dry_run(HostSession *s, HostBackend *b, const VmshiftVm *vm, const VmshiftMigrationSpec *spec,
              const char *placement)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(GPtrArray) f = host_validate(b, spec, vm, &err);
    g_autofree char *cmd = host_spec_command_line(host_backend_name(b), spec);
    g_autoptr(VmshiftMigrationSpec) ps = host_spec_for_plugin(spec); /* without --ip */
    g_autoptr(GPtrArray) guest = NULL;
    guint errors = 0, warnings = 0;
    gboolean would_run;

    if (!f || !host_spec_guest(spec, &guest, &err))
        return host_cmd_fail(err);
    host_findings_count(f, &errors, &warnings);
    would_run = !errors && (!warnings || spec->force);
    if (s->g->json) {
        json_object *root = json_object_new_object();
        json_object *arr = json_object_new_array();
        json_object *cmds = json_object_new_array();
        for (guint i = 0; i < f->len; i++)
            json_object_array_add(arr, host_json_finding(g_ptr_array_index(f, i)));
        json_object_array_add(cmds, json_object_new_string(cmd));
        json_object_object_add(root, "dry_run", json_object_new_boolean(TRUE));
        json_object_object_add(root, "backend", host_json_string(host_backend_name(b)));
        json_object_object_add(root, "source_host", host_json_string(vm->host));
        json_object_object_add(root, "spec", spec_json_obj(spec, HOST_JOB_MIGRATE));
        json_object_object_add(root, "findings", arr);
        json_object_object_add(root, "commands", cmds);
        json_object_object_add(root, "placement", host_json_string(placement));
        json_object_object_add(root, "would_run", json_object_new_boolean(would_run));
        host_json_print(root);
    } else {
        printf("Plan (dry run, nothing changes):\n");
        printf("  VM:        %s:%s (%s on %s)\n", host_backend_name(b), vm->name,
               vmshift_power_state_name(vm->power_state), vm->host ? vm->host : "-");
        printf("  type:      %s\n", vmshift_migration_type_name(spec->type));
        if (spec->dest_host)
            printf("  to host:   %s\n", spec->dest_host);
        if (placement)
            printf("  placement: %s\n", placement);
        printf("  storage:   %s\n", spec->dest_path         ? spec->dest_path
                                    : spec->disk_paths->len ? "per disk (see --disk-path)"
                                                            : "stays where it is");
        if (ps->options) {
            g_autofree char *opts = g_variant_print(ps->options, FALSE);
            printf("  options:   %s\n", opts);
        }
        for (guint i = 0; guest && i < guest->len; i++) {
            const VmshiftGuestNic *g = guest->pdata[i];
            printf("  guest:     NIC %s -> %s/%u%s%s (--ip, after the move)\n", g->nic, g->address,
                   g->prefix_len, g->gateway ? " gateway " : "", g->gateway ? g->gateway : "");
        }
        if (host_spec_is_cross(spec))
            printf("  to:        backend %s, host %s (a copy: export, import, verify)\n"
                   "  phases:    validate, export,%s import, verify, acl, finish\n"
                   "  source:    %s after the copy is verified\n",
                   spec->dest_backend, spec->dest_host,
                   host_spec_flag(spec, HOST_SPEC_CONVERT_KEY) ? " convert," : "",
                   host_spec_flag(spec, HOST_SPEC_DELETE_SOURCE_KEY) ? "removed" : "kept, off");
        else
            printf("  phases:    validate, prepare, transfer, switchover%s, cleanup\n",
                   (vmshift_migration_spec_moves_storage(spec)
                    && host_backend_has_op(b, "recreate_acl"))
                           || guest
                       ? ", acl"
                       : "");
        printf("\nChecks:\n");
        host_findings_print(f, stdout);
        printf("\nEquivalent command:\n  %s\n", cmd);
        if (!would_run)
            printf("\nThis migration would not run: %u error(s), %u warning(s)%s\n", errors,
                   warnings, warnings && !spec->force ? " (--force accepts warnings)" : "");
    }
    /* the exit status is the verdict, as for check */
    return would_run ? HOST_EXIT_OK : HOST_EXIT_FAILED;
}

static int
migrate_common(HostSession *s, CmdOpts *o, char **args, gboolean storage)
{
    g_autoptr(GError) err = NULL;
    HostBackend *b = NULL;
    g_autoptr(VmshiftVm) vm = NULL;
    g_autofree char *placement = NULL;
    g_autoptr(VmshiftMigrationSpec) spec = NULL;
    int rc;

    /* a running vmshiftd takes the job (client.c) */
    if (!o->m.dry_run
        && host_client_migrate(s, args[0], &o->m, storage, o->detach, o->cancel_on_interrupt, &rc))
        return rc;
    spec = host_build_spec_run(s->reg, args[0], &o->m, storage, NULL, &b, &vm, &placement, &err);
    if (!spec)
        return host_cmd_fail(err);
    if (o->m.dry_run)
        return print_dry_run(s, b, vm, spec, placement);
    if (!host_spec_is_cross(spec) && !host_backend_has_op(b, "migrate")) {
        host_backend_unsupported(b, "migrate", &err);
        return host_cmd_fail(err);
    }
    return run_job_full(s, storage ? HOST_JOB_STORAGE : HOST_JOB_MIGRATE, b, vm, spec, 0,
                        HOST_REPAIR_AUTO, NULL);
}

int
host_cmd_migrate(HostSession *s, CmdOpts *o, char **args)
{
    return migrate_common(s, o, args, FALSE);
}

int
host_cmd_migrate_storage(HostSession *s, CmdOpts *o, char **args)
{
    return migrate_common(s, o, args, TRUE);
}

int
host_cmd_acl_recreate(HostSession *s, CmdOpts *o, char **args)
{
    g_autoptr(GError) err = NULL;
    HostBackend *b = NULL;
    g_autoptr(VmshiftVm) vm = host_find_vm(s->reg, args[0], &b, &err);

    if (!vm)
        return host_cmd_fail(err);
    if (!host_backend_has_op(b, "recreate_acl")) {
        host_backend_unsupported(b, "recreate_acl", &err);
        return host_cmd_fail(err);
    }
    return host_cmd_run_job(s, HOST_JOB_ACL, b, vm, NULL, 0);
}
