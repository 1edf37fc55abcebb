/*
 * vmshift host: the bulk command, `vmshift bulk PLAN [--reverse] [--dry-run]
 * [--force]`: runs a plan file (bulk.c) wave by wave, or prints the
 * equivalent commands of each wave with --dry-run.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "host/rules.h"
#include "host/cmd.h"

/* --dry-run, one planned VM: its command, placement and findings; TRUE when
 * it would run. */
static gboolean
dry_item(HostSession *s, HostBulk *bk, HostBulkItem *it, json_object *cmds)
{
    g_autofree char *cmd = host_spec_command_line(host_backend_name(it->b), it->spec);
    g_autoptr(GError) err = NULL;
    HostFacts *facts = host_place_run_facts(bk->placed, it->b, &err);
    g_autoptr(GPtrArray) f = facts ? host_validate_with(facts, it->spec, it->vmrec, NULL) : NULL;
    guint errors = 0, warnings = 0;
    gboolean ok;
    json_object *e = json_object_new_object();
    json_object *arr = json_object_new_array();

    if (f)
        host_findings_count(f, &errors, &warnings);
    ok = f && !errors && (!warnings || it->spec->force);
    if (!s->g->json) {
        printf("  %s%s\n", ok ? "" : "# would not run: ", cmd);
        if (it->placement)
            printf("    placement: %s\n", it->placement);
        if (!f)
            printf("    cannot validate: %s\n", err->message);
        for (guint i = 0; f && i < f->len; i++) {
            VmshiftFinding *x = g_ptr_array_index(f, i);
            if (x->severity != VMSHIFT_SEVERITY_INFO)
                printf("    %s %s: %s\n", vmshift_severity_name(x->severity), x->code, x->message);
        }
    }
    for (guint i = 0; f && i < f->len; i++)
        json_object_array_add(arr, host_json_finding(g_ptr_array_index(f, i)));
    json_object_object_add(e, "vm", host_json_string(it->vm));
    json_object_object_add(e, "command", json_object_new_string(cmd));
    json_object_object_add(e, "placement", host_json_string(it->placement));
    json_object_object_add(e, "findings", arr);
    json_object_object_add(e, "error", err ? host_json_string(err->message) : NULL);
    json_object_object_add(e, "would_run", json_object_new_boolean(ok));
    json_object_array_add(cmds, e);
    return ok;
}

/* --dry-run: the commands of one planned wave, each VM validated; counts
 * the VMs that cannot be planned or would not run in @failed. */
static json_object *
print_dry_wave(HostSession *s, HostBulk *bk, HostBulkWave *wave, gboolean reverse, guint *failed)
{
    json_object *wj = json_object_new_object();
    json_object *cmds = json_object_new_array();

    if (!s->g->json)
        printf("%s%s:\n", reverse ? "reverse of " : "", wave->group);
    for (guint i = 0; i < wave->items->len; i++) {
        HostBulkItem *it = g_ptr_array_index(wave->items, i);
        if (it->error) {
            if (!s->g->json)
                printf("  # %s: cannot plan: %s\n", it->vm, it->error);
            json_object *e = json_object_new_object();
            json_object_object_add(e, "vm", host_json_string(it->vm));
            json_object_object_add(e, "error", host_json_string(it->error));
            json_object_object_add(e, "would_run", json_object_new_boolean(FALSE));
            json_object_array_add(cmds, e);
            (*failed)++;
            continue;
        }
        if (!dry_item(s, bk, it, cmds))
            (*failed)++;
    }
    json_object_object_add(wj, "wave", host_json_string(wave->group));
    json_object_object_add(wj, "commands", cmds);
    return wj;
}

/* How the VMs of a run ended: every VM of the plan is moved, failed or
 * skipped, with a reason for the last two. */
typedef struct {
    guint moved, failed, skipped;
    json_object *jobs; /* the journal records of the jobs run */
    json_object *vms;  /* {vm, outcome, reason, job} each */
} BulkTally;

static void
tally(BulkTally *t, const char *vm, const char *outcome, const char *reason, gint64 job)
{
    if (t->vms) {
        json_object *v = json_object_new_object();
        json_object_object_add(v, "vm", host_json_string(vm));
        json_object_object_add(v, "outcome", json_object_new_string(outcome));
        json_object_object_add(v, "reason", host_json_string(reason));
        json_object_object_add(v, "job", job ? json_object_new_int64(job) : NULL);
        json_object_array_add(t->vms, v);
    }
    if (!strcmp(outcome, "moved"))
        t->moved++;
    else if (!strcmp(outcome, "failed"))
        t->failed++;
    else
        t->skipped++;
    if (reason)
        host_err("%s: %s: %s", vm, outcome, reason);
}

/* One VM of a wave that has run: its outcome (host_bulk_retire kept it). */
static void
account_item(HostBulk *bk, HostBulkItem *it, BulkTally *t)
{
    if (it->error) {
        tally(t, it->vm, "skipped", it->error, 0);
        return;
    }
    if (!it->job_id) {
        tally(t, it->vm, "skipped",
              it->skipped ? it->skipped : "not started (vmshift was interrupted)", 0);
        return;
    }
    if (t->jobs) {
        g_autoptr(HostJobRecord) rec = host_journal_get(bk->ctx->journal, it->job_id, NULL);
        if (rec)
            json_object_array_add(t->jobs, host_json_job(rec));
    }
    if (it->failure) {
        tally(t, it->vm, "failed", it->failure, it->job_id);
        return;
    }
    tally(t, it->vm, "moved", NULL, it->job_id);
}

/* Runs one planned wave to its end and accounts for each of its VMs. */
static void
run_wave(HostBulk *bk, HostBulkWave *wave, gboolean reverse, BulkTally *t)
{
    g_autoptr(GPtrArray) runs = g_ptr_array_new();

    host_progress_line(bk->ctx->progress,
                       "%s%s: %u VM(s), at most %" G_GINT64_FORMAT
                       " per backend and %" G_GINT64_FORMAT " per host%s%s",
                       reverse ? "reverse of " : "", wave->group, wave->items->len, bk->max_backend,
                       bk->max_host, bk->window ? ", window " : "", bk->window ? bk->window : "");
    host_jobs_wait_full(bk->ctx, runs, host_bulk_schedule, bk);
    host_bulk_retire(bk, runs); /* the jobs that ended after the last pass */
    for (guint i = 0; i < wave->items->len; i++)
        account_item(bk, g_ptr_array_index(wave->items, i), t);
}

/* The VMs of the waves a signal kept from running. */
static void
account_unrun(HostBulkWave *wave, BulkTally *t)
{
    for (guint i = 0; i < wave->items->len; i++) {
        HostBulkItem *it = g_ptr_array_index(wave->items, i);
        tally(t, it->vm, "skipped", "not started (vmshift was interrupted)", 0);
    }
}

int
host_cmd_bulk(HostSession *s, CmdOpts *o, char **args)
{
    g_autoptr(GError) err = NULL;
    gboolean reverse = o->reverse, dry_run = o->m.dry_run;
    HostBulk bk = { .reg = s->reg };
    g_autoptr(GPtrArray) waves = NULL;
    g_autoptr(HostJournal) j = NULL;
    HostJobContext ctx = { 0 };
    BulkTally t = { 0 };
    json_object *out;
    guint failed = 0;

    waves = host_bulk_load_plan(args[0], &bk, &err);
    if (!waves || !(j = host_session_journal(s, &err))) {
        host_bulk_clear(&bk);
        return host_cmd_fail(err);
    }
    if (reverse)
        host_bulk_reverse(&bk, waves, j);
    ctx.reg = s->reg;
    ctx.journal = j;
    ctx.json = s->g->json;
    ctx.verbose = s->g->verbose;
    ctx.progress = host_progress_new(isatty(STDERR_FILENO), s->g->json);
    bk.ctx = &ctx;
    out = json_object_new_array();
    /* the records of the jobs and of the VMs are --json's; the report
     * without it needs only the counts (and prints the reasons as it goes) */
    t.jobs = s->g->json ? out : NULL;
    t.vms = s->g->json ? json_object_new_array() : NULL;

    for (guint w = 0; w < waves->len; w++) {
        HostBulkWave *wave = g_ptr_array_index(waves, w);
        if (ctx.stopping && !dry_run) {
            account_unrun(wave, &t);
            continue;
        }
        bk.wave = wave;
        host_bulk_plan_wave(&bk, wave, o->m.force);
        if (dry_run)
            json_object_array_add(out, print_dry_wave(s, &bk, wave, reverse, &failed));
        else
            run_wave(&bk, wave, reverse, &t);
    }
    if (!dry_run)
        failed = t.failed + t.skipped;
    if (s->g->json) {
        json_object *root = json_object_new_object();
        json_object_object_add(root, dry_run ? "waves" : "jobs", out);
        if (!dry_run) {
            json_object_object_add(root, "vms", t.vms);
            json_object_object_add(root, "moved", json_object_new_int((int)t.moved));
            json_object_object_add(root, "failed", json_object_new_int((int)t.failed));
            json_object_object_add(root, "skipped", json_object_new_int((int)t.skipped));
        } else {
            json_object_put(t.vms);
            json_object_object_add(root, "failed", json_object_new_int((int)failed));
        }
        host_json_print(root);
    } else {
        json_object_put(out);
        json_object_put(t.vms);
        if (!dry_run)
            printf("bulk: %u VM(s) moved, %u failed, %u skipped\n", t.moved, t.failed, t.skipped);
    }
    host_bulk_clear(&bk);
    host_progress_free(ctx.progress);
    return failed ? HOST_EXIT_FAILED : HOST_EXIT_OK;
}
