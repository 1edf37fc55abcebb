/*
 * vmshift host: validation of a planned migration.
 *
 * The rule engine's findings from the backend's facts (rules.c), then the
 * plugin's own check_migration, merged (one finding per condition, the
 * canonical severity), then the mappings. Errors stop a migration;
 * warnings need --force.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "host/crossmove.h"
#include "host/rules.h"

/* Windows paths (a drive letter or a UNC share) name files case-insensitively
 * and separate with '\\'; POSIX paths are compared as they are. */
static gboolean
is_windows_path(const char *p)
{
    return (g_ascii_isalpha(p[0]) && p[1] == ':') || (p[0] == '\\' && p[1] == '\\');
}

/* How much of @path the volume root @root covers: strlen(@root) when @path
 * is @root or lies below it (a separator follows, or @root ends in one),
 * else 0. */
static gsize
path_prefix_len(const char *root, const char *path)
{
    gsize l = strlen(root);
    gboolean win = is_windows_path(root) && is_windows_path(path);
    char last;

    if (l == 0 || strlen(path) < l)
        return 0;
    if (win ? g_ascii_strncasecmp(root, path, l) != 0 : strncmp(root, path, l) != 0)
        return 0;
    last = root[l - 1];
    if (path[l] == '\0' || path[l] == '/' || last == '/'
        || (win && (path[l] == '\\' || last == '\\')))
        return l;
    return 0;
}

/* The volume holding @path: one named or identified by @path, else the
 * longest path prefix among @vols. */
VmshiftVolume *
host_volume_for_path(GPtrArray *vols, const char *path)
{
    VmshiftVolume *best = NULL;
    gsize best_len = 0;

    for (guint i = 0; vols && path && i < vols->len; i++) {
        VmshiftVolume *v = g_ptr_array_index(vols, i);
        gsize l;
        if (!v->path)
            continue;
        if (!g_strcmp0(v->name, path) || !g_strcmp0(v->id, path))
            return v;
        l = path_prefix_len(v->path, path);
        if (l && l >= best_len) {
            best = v;
            best_len = l;
        }
    }
    return best;
}

/* The plugin's own findings (check_migration), merged into @s. */
static void
add_backend_findings(HostRuleSink *s, HostBackend *b, const VmshiftMigrationSpec *spec)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(GPtrArray) pf = host_backend_check_migration(b, spec, &err);

    if (!pf) {
        if (g_error_matches(err, VMSHIFT_ERROR, VMSHIFT_ERROR_NOT_SUPPORTED))
            host_rule_add(s, VMSHIFT_FINDING_BACKEND_CHECKS_SKIPPED, NULL,
                          "%s; only the host's checks ran", err->message);
        else
            host_rule_add(s, VMSHIFT_FINDING_CHECK_FAILED, NULL, "backend check failed: %s",
                          err->message);
        return;
    }
    host_rules_merge_backend(s, pf, host_backend_name(b));
}

GPtrArray *
host_validate_with(HostFacts *facts, const VmshiftMigrationSpec *spec, const VmshiftVm *vm,
                   const HostPlaceRun *run)
{
    g_autoptr(GPtrArray) f = vmshift_list_new((GDestroyNotify)vmshift_finding_free);
    g_autoptr(HostVmFacts) v = NULL;
    HostRuleSink s = { .findings = f };

    if (host_spec_is_cross(spec)) {
        /* a move between backends: its own rules and the destination's check */
        g_autoptr(GError) err = NULL;
        GPtrArray *cf = host_cross_validate(facts->b, spec, vm, &err);
        if (cf)
            return cf;
        host_rule_add(&s, VMSHIFT_FINDING_CHECK_FAILED, NULL, "%s", err->message);
        return g_steal_pointer(&f);
    }
    v = host_vm_facts_new(facts, vm);
    host_rules_check(facts, v, spec, run, &s);
    add_backend_findings(&s, facts->b, spec);
    host_rules_mappings(spec, vm, &s);
    return g_steal_pointer(&f);
}

GPtrArray *
host_validate(HostBackend *b, const VmshiftMigrationSpec *spec, const VmshiftVm *vm, GError **error)
{
    g_autoptr(HostFacts) facts = NULL;

    if (host_spec_is_cross(spec))
        return host_cross_validate(b, spec, vm, error);
    if (!(facts = host_facts_load(b, error)))
        return NULL;
    return host_validate_with(facts, spec, vm, NULL);
}

void
host_findings_count(GPtrArray *f, guint *errors, guint *warnings)
{
    *errors = *warnings = 0;
    for (guint i = 0; f && i < f->len; i++) {
        VmshiftFinding *x = g_ptr_array_index(f, i);
        if (x->severity == VMSHIFT_SEVERITY_ERROR)
            (*errors)++;
        else if (x->severity == VMSHIFT_SEVERITY_WARNING)
            (*warnings)++;
    }
}

void
host_findings_print(GPtrArray *f, FILE *out)
{
    g_autoptr(HostTable) t = host_table_new("SEVERITY", "CODE", "SUBJECT", "MESSAGE", NULL);

    for (guint i = 0; f && i < f->len; i++) {
        VmshiftFinding *x = g_ptr_array_index(f, i);
        host_table_add(t, vmshift_severity_name(x->severity), x->code, x->subject, x->message);
    }
    if (!f || f->len == 0)
        fprintf(out, "no findings\n");
    else
        host_table_print(t, out);
}
