/*
 * vmshift host: placement rating, SCVMM-style.
 *
 * A host starts at 5 stars. The rule engine (rules.c) judges the move the
 * placement would make there (type by the VM's power state; the storage
 * stays when the VM's disks are on storage the host reaches, else it goes
 * to the host's roomiest volume), then the plugin's own check: an error
 * rules the host out (0 stars, the refusing finding as the reason), each
 * warning takes its code's rate effect off. Soft factors (memory and CPU
 * headroom, space left on the chosen volume, a storage copy) take a little
 * more. Every factor is kept with its text so `rate` explains each star.
 */
#include "config.h"

#include <math.h>
#include <string.h>

#include "host/rules.h"

static void
factor_free(HostFactor *f)
{
    g_free(f->name);
    g_free(f->code);
    g_free(f->result);
    g_free(f->detail);
    g_free(f);
}

void
host_rating_free(HostRating *r)
{
    if (!r)
        return;
    if (!r->host_borrowed)
        vmshift_host_free(r->host);
    g_clear_pointer(&r->factors, g_ptr_array_unref);
    g_free(r->best_volume);
    g_free(r->reason);
    g_free(r->reason_code);
    g_free(r->dest_path);
    g_free(r);
}

static void factor(HostRating *r, const char *name, const char *code, double effect,
                   const char *format, ...) G_GNUC_PRINTF(5, 6);

/* Records a factor; @effect: stars off (negative), 0, or -INFINITY. */
static void
factor(HostRating *r, const char *name, const char *code, double effect, const char *format, ...)
{
    HostFactor *f;
    va_list ap;

    if (isinf(effect))
        r->eligible = FALSE;
    else
        r->score += effect;
    if (!r->factors)
        return;
    f = g_new0(HostFactor, 1);
    f->name = g_strdup(name);
    f->code = g_strdup(code);
    f->effect = effect;
    f->result = g_strdup(isinf(effect) ? "fail" : effect < 0 ? "warn" : "ok");
    va_start(ap, format);
    f->detail = g_strdup_vprintf(format, ap);
    va_end(ap);
    g_ptr_array_add(r->factors, f);
}

char *
host_stars(double score)
{
    int n = (int)lround(CLAMP(score, 0, 5));
    GString *s = g_string_new(NULL);
    for (int i = 0; i < 5; i++)
        g_string_append(s, i < n ? "\u2605" : "\u2606");
    return g_string_free(s, FALSE);
}

/* host_format_bytes() (GLib's IEC units, a plain space) without GLib's
 * gettext lookups, which cost more than the rest of a rating. */
static char *
fmt_bytes(guint64 n)
{
    static const char *const units[] = { "KiB", "MiB", "GiB", "TiB", "PiB", "EiB" };
    guint64 factor = 1024;
    guint i = 0;

    if (n < 1024)
        return n == 1 ? g_strdup("1 byte") : g_strdup_printf("%u bytes", (guint)n);
    while (i + 1 < G_N_ELEMENTS(units) && n >= factor * 1024) {
        factor *= 1024;
        i++;
    }
    return g_strdup_printf("%.1f %s", (double)n / (double)factor, units[i]);
}

/* What every rating of one VM shares. */
typedef struct {
    HostRegistry *reg;
    HostFacts *facts;
    HostVmFacts *v;
    HostPlaceRun *run;
    VmshiftMigrationSpec *spec; /* reused: dest_host/dest_path borrowed per host */
    gboolean explain;
    gboolean borrow; /* quick ratings of host_rate_quick(): strings borrowed */
} RateCtx;

/* Where the storage goes on @h: nowhere when the disks are on storage @h
 * reaches, else the roomiest volume. */
static void
choose_storage(RateCtx *c, HostRating *r, gboolean *known)
{
    guint64 fr = 0;
    VmshiftVolume *best = host_place_best_volume(c->facts, r->host, c->run, &fr);

    r->storage_shared = host_vm_storage_shared(c->facts, c->v, r->host, known);
    if (best) {
        r->best_volume = c->borrow ? best->path : g_strdup(best->path);
        r->best_volume_free = fr;
    }
    if (!r->storage_shared && best)
        r->dest_path = c->borrow ? best->path : g_strdup(best->path);
}

/* The findings of the move to @r's host, as factors. */
static void
finding_factors(HostRating *r, GPtrArray *f)
{
    for (guint i = 0; i < f->len; i++) {
        VmshiftFinding *x = g_ptr_array_index(f, i);
        const VmshiftFindingInfo *info = vmshift_finding_info(x->code);
        const char *name = info ? info->factor : "check";
        if (x->severity == VMSHIFT_SEVERITY_ERROR) {
            factor(r, name, x->code, -INFINITY, "%s", x->message);
            if (!r->reason) {
                r->reason = g_strdup(x->message);
                r->reason_code = g_strdup(x->code);
            }
        } else if (x->severity == VMSHIFT_SEVERITY_WARNING) {
            factor(r, name, x->code, info ? -info->rate_effect : 0, "%s", x->message);
        }
    }
}

static gboolean
has_factor(HostRating *r, const char *name)
{
    for (guint i = 0; r->factors && i < r->factors->len; i++)
        if (!strcmp(((HostFactor *)g_ptr_array_index(r->factors, i))->name, name))
            return TRUE;
    return FALSE;
}

/* The soft factors: headroom, CPU, space left, storage copy, and what
 * passed (so each star names what it stands for). */
static void
soft_factors(RateCtx *c, HostRating *r, gboolean storage_known)
{
    const VmshiftHost *h = r->host;
    const VmshiftVm *vm = c->v->vm;
    guint64 placed = host_place_run_memory(c->run, h->name);
    guint64 fr = h->memory_free > placed ? h->memory_free - placed : 0;
    gboolean ex = c->explain;

    r->memory_after = fr > vm->memory ? fr - vm->memory : 0;
    if (!has_factor(r, "status"))
        factor(r, "status", NULL, 0, "host is %s", vmshift_host_status_name(h->status));
    if ((h->memory_free || h->memory_total) && !has_factor(r, "memory")) {
        g_autofree char *a = ex ? fmt_bytes(r->memory_after) : NULL;
        g_autofree char *n = ex ? fmt_bytes(vm->memory) : NULL;
        factor(r, "memory", NULL, fr < 2 * vm->memory ? -1 : 0,
               "%s free after placing the VM (%s)%s", a, n,
               fr < 2 * vm->memory ? ": little headroom" : "");
    }
    if (h->cpu_usage_percent < 0)
        factor(r, "cpu", NULL, -0.25, "CPU use unknown");
    else
        factor(r, "cpu", NULL,
               h->cpu_usage_percent >= 90   ? -1.5
               : h->cpu_usage_percent >= 70 ? -0.75
                                            : 0,
               "CPU %d%% busy, %d%% headroom", h->cpu_usage_percent, 100 - h->cpu_usage_percent);
    if (r->storage_shared) {
        factor(r, "storage", NULL, 0,
               "disks are on storage host '%s' shares with '%s': nothing "
               "to copy",
               h->name, vm->host ? vm->host : "-");
    } else {
        factor(r, "storage", NULL, -0.5, "%s: disks are copied%s%s",
               storage_known ? "no storage shared with the VM's disks"
                             : "where the VM's disks live is not known",
               r->dest_path ? " to " : "", r->dest_path ? r->dest_path : "");
        if (r->dest_path && !has_factor(r, "space")) {
            guint64 need = c->v->disk_bytes;
            g_autofree char *a = ex ? fmt_bytes(r->best_volume_free) : NULL;
            g_autofree char *n = ex ? fmt_bytes(need) : NULL;
            factor(r, "space", NULL, need * 2 > r->best_volume_free ? -0.5 : 0,
                   "volume %s has %s free, the disks need %s", r->dest_path, a, n);
        }
    }
    if (!has_factor(r, "network") && vm->nics->len)
        factor(r, "network", NULL, 0, "every NIC's network exists on host '%s'", h->name);
    if (r->placed)
        factor(r, "spread", NULL, 0, "%u VM(s) placed here earlier in this run", r->placed);
}

/* The plugin's own check of the move (explained ratings only). */
static void
backend_check(RateCtx *c, HostRuleSink *s)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(GPtrArray) pf = NULL;

    gint64 t0 = g_get_monotonic_time();

    if (!host_backend_has_op(c->facts->b, "check_migration"))
        return;
    pf = host_backend_check_migration(c->facts->b, c->spec, &err);
    host_rules_plugin_time(t0);
    if (!pf)
        host_rule_add(s, VMSHIFT_FINDING_CHECK_FAILED, NULL, "backend check failed: %s",
                      err->message);
    else
        host_rules_merge_backend(s, pf, host_backend_name(c->facts->b));
}

static void
rate_one(RateCtx *c, HostRating *r)
{
    g_autoptr(GPtrArray) f = c->explain ? vmshift_list_new((GDestroyNotify)vmshift_finding_free)
                                        : NULL;
    HostRuleSink s = { .findings = f };
    gboolean known = TRUE;

    r->score = 5;
    r->eligible = TRUE;
    r->placed = host_place_run_count(c->run, r->host->name);
    choose_storage(c, r, &known);
    c->spec->dest_host = r->host->name;
    c->spec->dest_path = r->dest_path;
    host_rules_check_to(c->facts, c->v, c->spec, r->host, c->run, &s);
    if (!s.errors && c->explain)
        backend_check(c, &s);
    c->spec->dest_host = c->spec->dest_path = NULL;
    if (c->explain) {
        finding_factors(r, f);
        if (!r->eligible) {
            r->score = 0; /* the refusing finding is the whole story */
            return;
        }
    } else {
        r->score -= s.penalty;
        r->eligible = s.errors == 0;
        if (!r->eligible)
            r->reason_code = c->borrow ? (char *)s.first_error : g_strdup(s.first_error);
    }
    soft_factors(c, r, known);
    r->score = r->eligible ? CLAMP(r->score, 0, 5) : 0;
}

gint
host_rating_compare(const HostRating *x, const HostRating *y)
{
    double sx = x->eligible ? x->score : -1, sy = y->eligible ? y->score : -1;
    if (sx != sy)
        return sx > sy ? -1 : 1;
    if (x->placed != y->placed)
        return x->placed < y->placed ? -1 : 1;
    if (x->memory_after != y->memory_after)
        return x->memory_after > y->memory_after ? -1 : 1;
    if (x->best_volume_free != y->best_volume_free)
        return x->best_volume_free > y->best_volume_free ? -1 : 1;
    return g_strcmp0(x->host->name, y->host->name);
}

static gint
compare_ratings(gconstpointer a, gconstpointer b)
{
    return host_rating_compare(*(HostRating *const *)a, *(HostRating *const *)b);
}

static HostRating *
rating_new(HostBackend *b, VmshiftHost *h, gboolean explain)
{
    HostRating *r = g_new0(HostRating, 1);
    r->backend = b;
    r->host = h;
    if (explain)
        r->factors = g_ptr_array_new_with_free_func((GDestroyNotify)factor_free);
    return r;
}

/* A group member that is not a host of the VM's backend: ruled out with
 * the finding check would give. */
static HostRating *
rate_foreign(RateCtx *c, const char *member, gboolean explain)
{
    g_autofree char *bn = NULL, *hn = NULL;
    HostBackend *hb = NULL;
    VmshiftHost *h;
    HostRating *r;

    host_split_name(c->reg, member, &bn, &hn);
    h = bn ? host_find_host(c->reg, member, NULL, &hb, NULL) : NULL;
    if (!h) {
        h = vmshift_host_new();
        h->name = g_strdup(hn);
    }
    r = rating_new(hb ? hb : c->facts->b, h, explain);
    r->eligible = FALSE;
    if (hb && hb != c->facts->b) {
        r->reason_code = g_strdup(VMSHIFT_FINDING_OTHER_BACKEND);
        r->reason = g_strdup_printf("host '%s' is in backend '%s', VM '%s' in '%s': placement "
                                    "does not choose between backends (a move between them: "
                                    "--to %s:%s)",
                                    hn, host_backend_name(hb), c->v->vm->name,
                                    host_backend_name(c->facts->b), host_backend_name(hb), hn);
    } else {
        r->reason_code = g_strdup(VMSHIFT_FINDING_HOST_NOT_FOUND);
        r->reason = g_strdup_printf("destination host '%s' is not known to backend '%s'", hn,
                                    host_backend_name(c->facts->b));
    }
    factor(r, vmshift_finding_info(r->reason_code)->factor, r->reason_code, -INFINITY, "%s",
           r->reason);
    return r;
}

/* A copy of the facts' host with what a rating shows (not its lists). */
static VmshiftHost *
host_view(const VmshiftHost *h)
{
    VmshiftHost *x = vmshift_host_new();

    x->status = h->status;
    x->id = g_strdup(h->id);
    x->name = g_strdup(h->name);
    x->status_detail = g_strdup(h->status_detail);
    x->hypervisor = g_strdup(h->hypervisor);
    x->cpu_count = h->cpu_count;
    x->cpu_usage_percent = h->cpu_usage_percent;
    x->memory_total = h->memory_total;
    x->memory_free = h->memory_free;
    return x;
}

GPtrArray *
host_rate_members(HostRegistry *reg, HostBackend *b, const VmshiftVm *vm,
                  const char *const *members, HostPlaceRun *run, gboolean explain, GError **error)
{
    g_autoptr(GPtrArray) out = g_ptr_array_new_with_free_func((GDestroyNotify)host_rating_free);
    g_autoptr(HostVmFacts) v = NULL;
    g_autoptr(VmshiftMigrationSpec) spec = vmshift_migration_spec_new();
    RateCtx c = { .reg = reg, .run = run, .spec = spec, .explain = explain };

    if (!(c.facts = host_place_run_facts(run, b, error)))
        return NULL;
    v = host_vm_facts_new(c.facts, vm);
    c.v = v;
    spec->vm = g_strdup(vm->name);
    spec->type = vm->power_state == VMSHIFT_POWER_RUNNING ? VMSHIFT_MIGRATION_LIVE
                                                          : VMSHIFT_MIGRATION_COLD;
    for (guint i = 0; members ? members[i] != NULL : i < c.facts->hosts->len; i++) {
        g_autofree char *bn = NULL, *hn = NULL;
        VmshiftHost *h;
        HostRating *r;
        if (members)
            host_split_name(reg, members[i], &bn, &hn);
        h = members
                ? ((bn && strcmp(bn, host_backend_name(b))) ? NULL : host_facts_host(c.facts, hn))
                : g_ptr_array_index(c.facts->hosts, i);
        if (!h) {
            g_ptr_array_add(out, rate_foreign(&c, members[i], explain));
            continue;
        }
        /* quick ratings (placement) borrow the facts' host */
        r = rating_new(b, explain ? host_view(h) : h, explain);
        r->host_borrowed = !explain;
        rate_one(&c, r);
        g_ptr_array_add(out, r);
    }
    if (explain) /* placement picks the best itself: no sort of every host per VM */
        g_ptr_array_sort(out, compare_ratings);
    return g_steal_pointer(&out);
}

/* The hosts of @group (NULL: every host of @f) among @f's, NULL for a
 * member that is not a host of @f's backend; resolved once per facts. */
static GPtrArray *
members_of(HostRegistry *reg, HostFacts *f, const char *group, GError **error)
{
    GPtrArray *a = g_hash_table_lookup(f->members, group ? group : "");
    const char *const *members;

    if (a)
        return a;
    if (group && !(members = host_group_members(reg, group, error)))
        return NULL;
    a = g_ptr_array_new();
    for (guint i = 0; group ? members[i] != NULL : i < f->hosts->len; i++) {
        g_autofree char *bn = NULL, *hn = NULL;
        if (!group) {
            g_ptr_array_add(a, g_ptr_array_index(f->hosts, i));
            continue;
        }
        host_split_name(reg, members[i], &bn, &hn);
        g_ptr_array_add(a, (bn && strcmp(bn, host_backend_name(f->b))) ? NULL
                                                                       : host_facts_host(f, hn));
    }
    g_hash_table_insert(f->members, g_strdup(group ? group : ""), a);
    return a;
}

/* What a quick rating reads of the VM (not its name): VMs of one profile
 * rate alike. */
static char *
vm_profile(HostBackend *b, const char *group, const HostVmFacts *v)
{
    const VmshiftVm *vm = v->vm;
    const VmshiftCheckpointState *cp = v->cp;
    GString *k = g_string_new(NULL);

    g_string_append_printf(k, "%p\x1f%s\x1f%s\x1f%d\x1f%" G_GUINT64_FORMAT "\x1f%d%d%d", (void *)b,
                           group ? group : "", vm->host ? vm->host : "", vm->power_state,
                           vm->memory, !cp, cp && cp->merging, cp && cp->needs_consolidation);
    for (guint i = 0; i < vm->disks->len; i++) {
        guint64 n = 0;
        gboolean known = host_disk_bytes(g_ptr_array_index(vm->disks, i), &n);
        g_string_append_printf(k, "\x1f%p:%d:%" G_GUINT64_FORMAT,
                               g_ptr_array_index(v->disk_volumes, i), known, n);
    }
    for (guint i = 0; i < vm->nics->len; i++) {
        const VmshiftNic *n = g_ptr_array_index(vm->nics, i);
        g_string_append_printf(k, "\x1f%s", n->network ? n->network : "\x1e");
    }
    return g_string_free(k, FALSE);
}

const HostRating *
host_rate_quick(HostRegistry *reg, HostBackend *b, const VmshiftVm *vm, const char *group,
                HostPlaceRun *run, guint *n, GError **error)
{
    g_autoptr(HostVmFacts) v = NULL;
    g_autoptr(VmshiftMigrationSpec) spec = vmshift_migration_spec_new();
    RateCtx c = { .reg = reg, .run = run, .spec = spec, .borrow = TRUE };
    g_autofree char *key = NULL;
    gboolean again;
    GPtrArray *hosts;

    if (!(c.facts = host_place_run_facts(run, b, error))
        || !(hosts = members_of(reg, c.facts, group, error)))
        return NULL;
    v = host_vm_facts_new(c.facts, vm);
    c.v = v;
    spec->type = vm->power_state == VMSHIFT_POWER_RUNNING ? VMSHIFT_MIGRATION_LIVE
                                                          : VMSHIFT_MIGRATION_COLD;
    key = vm_profile(b, group, v);
    again = run->quick && run->quick_n == hosts->len && !g_strcmp0(key, run->quick_key);
    if (!again) {
        g_free(run->quick);
        run->quick = g_new0(HostRating, MAX(hosts->len, 1));
        run->quick_n = hosts->len;
        g_free(run->quick_key);
        run->quick_key = g_steal_pointer(&key);
    }
    for (guint i = 0; i < hosts->len; i++) {
        HostRating *r = &run->quick[i];
        VmshiftHost *h = g_ptr_array_index(hosts, i);
        if (again && (!h || !g_hash_table_contains(run->dirty, h->name)))
            continue;
        memset(r, 0, sizeof *r);
        r->backend = b;
        r->host = h;
        r->host_borrowed = TRUE;
        if (h)
            rate_one(&c, r);
        else
            r->reason_code = (char *)VMSHIFT_FINDING_HOST_NOT_FOUND;
    }
    g_hash_table_remove_all(run->dirty);
    *n = run->quick_n;
    return run->quick;
}

const char *const *
host_group_members(HostRegistry *reg, const char *group, GError **error)
{
    char **members = g_hash_table_lookup(reg->config->groups, group);

    if (!members)
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_NOT_FOUND,
                    "no group '%s' in %s or its backends.d/", group, reg->config->path);
    return (const char *const *)members;
}

GPtrArray *
host_rate_run(HostRegistry *reg, HostBackend *b, const VmshiftVm *vm, const char *group,
              HostPlaceRun *run, gboolean explain, GError **error)
{
    const char *const *members = NULL;

    if (group && !(members = host_group_members(reg, group, error)))
        return NULL;
    return host_rate_members(reg, b, vm, members, run, explain, error);
}

GPtrArray *
host_rate(HostRegistry *reg, HostBackend *vm_backend, const VmshiftVm *vm, const char *group,
          GError **error)
{
    g_autoptr(HostPlaceRun) run = host_place_run_new();
    gint64 t0 = g_get_monotonic_time(), t1, p0;
    GPtrArray *out;

    if (!host_place_run_facts(run, vm_backend, error))
        return NULL;
    t1 = g_get_monotonic_time();
    p0 = host_rules_plugin_us();
    out = host_rate_run(reg, vm_backend, vm, group, run, TRUE, error);
    g_debug("rate: %u host(s) in %.3f s (%.3f s in plugin calls), after %.3f s reading the "
            "backend's facts",
            out ? out->len : 0, (g_get_monotonic_time() - t1) / 1e6,
            (host_rules_plugin_us() - p0) / 1e6, (t1 - t0) / 1e6);
    return out;
}
