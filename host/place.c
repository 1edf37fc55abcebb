/*
 * vmshift host: placement for --to-group and bulk plans.
 *
 * The best-rated host of the group (rate.c, without the text, over every
 * member) given what the run has already placed, so a wave spreads its VMs:
 * equal hosts take turns, and each placement's memory and disk bytes count
 * against the host and volume it went to. The VM's storage stays where it
 * is when the host reaches it; otherwise it goes to the host's roomiest
 * volume. The winner is then rated with its explanation and the plugin's
 * own check; if that rules it out, the next host is tried. Cost: hosts ×
 * (disks + NICs) per VM, plus one plugin check.
 */
#include "config.h"

#include <string.h>

#include "host/rules.h"

/* One line for --dry-run: the choice and why. */
static char *
reason_line(const HostRating *r, guint candidates, guint eligible)
{
    g_autoptr(GString) s = g_string_new(NULL);
    g_autofree char *mem = host_format_bytes(r->memory_after);

    g_string_append_printf(s, "host '%s': %.1f stars, the best of %u eligible of %u host(s)",
                           r->host->name, r->score, eligible, candidates);
    if (r->placed)
        g_string_append_printf(s, ", %u VM(s) placed there earlier in this run", r->placed);
    g_string_append_printf(s, ", %s memory free afterwards; ", mem);
    if (r->storage_shared) {
        g_string_append(s, "storage stays: the VM's disks are on storage the host shares");
    } else if (r->dest_path) {
        g_autofree char *fr = host_format_bytes(r->best_volume_free);
        g_string_append_printf(s,
                               "storage moves to %s, the host's volume with the most free "
                               "space (%s)",
                               r->dest_path, fr);
    } else {
        g_string_append(s, "storage stays where it is (no volume known on that host)");
    }
    return g_string_free(g_steal_pointer(&s), FALSE);
}

static guint64
vm_disk_bytes(const VmshiftVm *vm)
{
    guint64 sum = 0, n;
    for (guint i = 0; i < vm->disks->len; i++)
        if (host_disk_bytes(g_ptr_array_index(vm->disks, i), &n))
            sum += n;
    return sum;
}

/* The best quick rating not tried yet, or NULL. */
static const HostRating *
best_untried(const HostRating *q, guint n, GHashTable *tried)
{
    const HostRating *best = NULL;

    for (guint i = 0; i < n; i++)
        if (q[i].eligible && (!best || host_rating_compare(&q[i], best) < 0)
            && !(tried && g_hash_table_contains(tried, &q[i])))
            best = &q[i];
    return best;
}

static HostRating *place(HostRegistry *reg, HostBackend *b, const VmshiftVm *vm, const char *group,
                         HostPlaceRun *run, GError **error);

HostRating *
host_place(HostRegistry *reg, HostBackend *b, const VmshiftVm *vm, const char *group,
           HostPlaceRun *run, GError **error)
{
    gint64 t0 = g_get_monotonic_time(), p0 = host_rules_plugin_us();
    HostRating *r = place(reg, b, vm, group, run, error);

    run->place_calls++;
    run->place_hosts = MAX(run->place_hosts, run->quick_n);
    run->place_us += g_get_monotonic_time() - t0;
    run->plugin_us += host_rules_plugin_us() - p0;
    return r;
}

static HostRating *
place(HostRegistry *reg, HostBackend *b, const VmshiftVm *vm, const char *group, HostPlaceRun *run,
      GError **error)
{
    guint n = 0, eligible = 0;
    const HostRating *quick = host_rate_quick(reg, b, vm, group, run, &n, error);
    g_autoptr(GHashTable) tried = NULL; /* quick ratings whose host ruled itself out */
    g_autofree char *why = NULL;
    const HostRating *q;

    if (!quick)
        return NULL;
    for (guint i = 0; i < n; i++)
        eligible += quick[i].eligible;
    while ((q = best_untried(quick, n, tried))) {
        g_autofree char *member = g_strdup_printf("%s:%s", host_backend_name(b), q->host->name);
        const char *const members[] = { member, NULL };
        g_autoptr(GPtrArray) one = host_rate_members(reg, b, vm, members, run, TRUE, error);
        HostRating *r;

        if (!tried)
            tried = g_hash_table_new(g_direct_hash, g_direct_equal);
        g_hash_table_add(tried, (gpointer)q);
        if (!one)
            return NULL;
        r = g_ptr_array_index(one, 0);
        if (!r->eligible) {
            if (!why)
                why = g_strdup_printf("%s: %s", r->host->name, r->reason);
            continue;
        }
        r = g_ptr_array_steal_index(one, 0);
        g_free(run->last_reason);
        run->last_reason = reason_line(r, n, eligible);
        host_place_run_add(run, r->host->name, vm->memory, r->dest_path,
                           r->dest_path ? vm_disk_bytes(vm) : 0);
        return r;
    }
    if (!why && n)
        why = g_strdup_printf("%s: ruled out by %s",
                              quick[0].host ? quick[0].host->name : "a member",
                              quick[0].reason_code ? quick[0].reason_code : "-");
    g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_NOT_FOUND,
                "no host of group '%s' can take VM '%s' (%s; see 'vmshift rate %s:%s --group %s')",
                group ? group : "-", vm->name, why ? why : "the group has no host",
                host_backend_name(b), vm->name, group ? group : "-");
    return NULL;
}
