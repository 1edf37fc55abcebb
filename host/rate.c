/*
 * vmshift host: placement rating.
 *
 * Every candidate host starts at 5 stars; each factor (host status, free
 * memory against the VM's, CPU use, free space on the best volume, networks
 * for each NIC, SAN reach, a merge in progress, backend compatibility) either
 * passes, takes something off with a warning, or rules the host out. The
 * factors are kept so `rate` can explain the score.
 */
#include "config.h"

#include <math.h>
#include <string.h>

#include "host/host.h"

static void
factor_free(HostFactor *f)
{
    g_free(f->name);
    g_free(f->result);
    g_free(f->detail);
    g_free(f);
}

void
host_rating_free(HostRating *r)
{
    if (!r)
        return;
    vmshift_host_free(r->host);
    g_ptr_array_unref(r->factors);
    g_free(r->best_volume);
    g_free(r);
}

static void factor(HostRating *r, const char *name, double effect, const char *format, ...)
    G_GNUC_PRINTF(4, 5);

static void
factor(HostRating *r, const char *name, double effect, const char *format, ...)
{
    HostFactor *f = g_new0(HostFactor, 1);
    va_list ap;

    f->name = g_strdup(name);
    f->effect = effect;
    if (isinf(effect) && effect < 0) {
        f->result = g_strdup("fail");
        r->eligible = FALSE;
    } else {
        f->result = g_strdup(effect < 0 ? "warn" : "ok");
        r->score += effect;
    }
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

static gboolean
shares_san(const VmshiftHost *a, const VmshiftHost *b)
{
    for (guint i = 0; a && a->san_ids && i < a->san_ids->len; i++)
        for (guint k = 0; b->san_ids && k < b->san_ids->len; k++)
            if (!g_strcmp0(g_ptr_array_index(a->san_ids, i), g_ptr_array_index(b->san_ids, k)))
                return TRUE;
    return FALSE;
}

static gboolean
net_exists(GPtrArray *nets, const char *name, const char *host)
{
    for (guint i = 0; nets && i < nets->len; i++) {
        VmshiftNetwork *n = g_ptr_array_index(nets, i);
        if (g_strcmp0(n->name, name) && g_strcmp0(n->id, name))
            continue;
        if (!n->hosts || !n->hosts->len)
            return TRUE;
        for (guint k = 0; k < n->hosts->len; k++)
            if (!g_strcmp0(g_ptr_array_index(n->hosts, k), host))
                return TRUE;
    }
    return FALSE;
}

static void
rate_one(HostRating *r, HostBackend *vm_backend, const VmshiftVm *vm, const VmshiftHost *src,
         const VmshiftCheckpointState *cp)
{
    VmshiftHost *h = r->host;
    guint64 need_disk = 0;
    g_autoptr(GError) err = NULL;

    r->score = 5;
    r->eligible = TRUE;

    if (r->backend != vm_backend) {
        factor(r, "backend", -INFINITY,
               "host is in backend '%s', the VM in '%s': moving "
               "between backends is not supported",
               host_backend_name(r->backend), host_backend_name(vm_backend));
        return;
    }
    factor(r, "backend", 0, "same backend '%s'", host_backend_name(r->backend));
    if (!g_strcmp0(h->name, vm->host)) {
        factor(r, "current", -INFINITY, "the VM already runs here");
        return;
    }

    switch (h->status) {
    case VMSHIFT_HOST_OK: factor(r, "status", 0, "ok"); break;
    case VMSHIFT_HOST_LIMITED:
    case VMSHIFT_HOST_UNKNOWN:
        factor(r, "status", -1, "%s%s%s", vmshift_host_status_name(h->status),
               h->status_detail ? ": " : "", h->status_detail ? h->status_detail : "");
        break;
    default:
        factor(r, "status", -INFINITY, "%s%s%s", vmshift_host_status_name(h->status),
               h->status_detail ? ": " : "", h->status_detail ? h->status_detail : "");
    }

    if (h->memory_free == 0 && h->memory_total == 0) {
        factor(r, "memory", -0.5, "free memory unknown");
    } else {
        g_autofree char *fr = host_format_bytes(h->memory_free);
        g_autofree char *need = host_format_bytes(vm->memory);
        if (vm->memory > h->memory_free)
            factor(r, "memory", -INFINITY, "%s free, VM needs %s", fr, need);
        else if (vm->memory * 2 > h->memory_free)
            factor(r, "memory", -1, "%s free, VM needs %s (little headroom)", fr, need);
        else
            factor(r, "memory", 0, "%s free, VM needs %s", fr, need);
    }

    if (h->cpu_usage_percent < 0)
        factor(r, "cpu", -0.25, "CPU use unknown");
    else if (h->cpu_usage_percent >= 90)
        factor(r, "cpu", -1.5, "CPU %d%% busy", h->cpu_usage_percent);
    else if (h->cpu_usage_percent >= 70)
        factor(r, "cpu", -0.75, "CPU %d%% busy", h->cpu_usage_percent);
    else
        factor(r, "cpu", 0, "CPU %d%% busy", h->cpu_usage_percent);

    for (guint i = 0; i < vm->disks->len; i++) {
        VmshiftDisk *d = g_ptr_array_index(vm->disks, i);
        need_disk += d->allocation ? d->allocation : d->capacity;
    }
    {
        g_autoptr(GPtrArray) vols = host_backend_list_volumes(r->backend, h->name, &err);
        VmshiftVolume *best = NULL;
        for (guint i = 0; vols && i < vols->len; i++) {
            VmshiftVolume *v = g_ptr_array_index(vols, i);
            if (v->host && g_strcmp0(v->host, h->name))
                continue;
            if (v->shared && v->hosts && v->hosts->len) {
                gboolean reach = FALSE;
                for (guint k = 0; k < v->hosts->len; k++)
                    reach |= !g_strcmp0(g_ptr_array_index(v->hosts, k), h->name);
                if (!reach)
                    continue;
            }
            if (!best || v->free > best->free)
                best = v;
        }
        if (!vols) {
            factor(r, "space", -0.5, "volumes unknown: %s", err->message);
            g_clear_error(&err);
        } else if (!best) {
            factor(r, "space", -1, "no volume reported for this host");
        } else {
            g_autofree char *fr = host_format_bytes(best->free);
            g_autofree char *need = host_format_bytes(need_disk);
            r->best_volume = g_strdup(best->path);
            r->best_volume_free = best->free;
            if (need_disk > best->free)
                factor(r, "space", -1.5,
                       "best volume %s has %s free, disks need %s (only a "
                       "host move without storage fits)",
                       best->path, fr, need);
            else if (need_disk * 2 > best->free)
                factor(r, "space", -0.5, "best volume %s has %s free, disks need %s", best->path,
                       fr, need);
            else
                factor(r, "space", 0, "best volume %s has %s free, disks need %s", best->path, fr,
                       need);
        }
    }

    {
        g_autoptr(GPtrArray) nets = host_backend_list_networks(r->backend, h->name, &err);
        if (!nets) {
            factor(r, "network", -0.5, "networks unknown: %s", err->message);
            g_clear_error(&err);
        } else {
            g_autoptr(GString) missing = g_string_new(NULL);
            for (guint i = 0; i < vm->nics->len; i++) {
                VmshiftNic *n = g_ptr_array_index(vm->nics, i);
                if (n->network && !net_exists(nets, n->network, h->name))
                    g_string_append_printf(missing, "%s%s→%s", missing->len ? ", " : "", n->id,
                                           n->network);
            }
            if (missing->len)
                factor(r, "network", -2, "missing for NIC %s (needs --network)", missing->str);
            else
                factor(r, "network", 0, "every NIC's network exists here");
        }
    }

    if (src && src->san_ids && src->san_ids->len) {
        if (shares_san(src, h))
            factor(r, "san", 0, "shares SAN storage with %s: disks need not be copied", src->name);
        else
            factor(r, "san", -0.5, "no SAN shared with %s: disks are copied over the network",
                   src->name);
    } else {
        factor(r, "san", 0, "no SAN in use");
    }

    if (cp && cp->merging)
        factor(r, "merge", -INFINITY, "a checkpoint merge runs on the VM: %s",
               cp->detail ? cp->detail : "no detail");
    else if (cp && cp->needs_consolidation)
        factor(r, "merge", -0.5, "the VM needs disk consolidation");
    else if (cp)
        factor(r, "merge", 0, "no merge in progress");
}

static gint
compare_ratings(gconstpointer a, gconstpointer b)
{
    const HostRating *x = *(HostRating *const *)a, *y = *(HostRating *const *)b;
    double sx = x->eligible ? x->score : -1, sy = y->eligible ? y->score : -1;
    if (sx != sy)
        return sx > sy ? -1 : 1;
    if (x->best_volume_free != y->best_volume_free)
        return x->best_volume_free > y->best_volume_free ? -1 : 1;
    return g_strcmp0(x->host->name, y->host->name);
}

GPtrArray *
host_rate(HostRegistry *reg, HostBackend *vm_backend, const VmshiftVm *vm, const char *group,
          GError **error)
{
    g_autoptr(GPtrArray) out = g_ptr_array_new_with_free_func((GDestroyNotify)host_rating_free);
    g_autoptr(VmshiftCheckpointState) cp = NULL;
    g_autoptr(VmshiftHost) src = NULL;

    cp = host_backend_checkpoint_state(vm_backend, vm->name, NULL);
    if (vm->host)
        src = host_find_host(reg, vm->host, vm_backend, NULL, NULL);

    if (group) {
        char **members = g_hash_table_lookup(reg->config->groups, group);
        if (!members) {
            g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_NOT_FOUND,
                        "no group '%s' in %s or its backends.d/", group, reg->config->path);
            return NULL;
        }
        for (guint i = 0; members[i]; i++) {
            HostBackend *hb = NULL;
            g_autoptr(GError) err = NULL;
            VmshiftHost *h = host_find_host(reg, members[i], vm_backend, &hb, &err);
            HostRating *r;
            if (!h) {
                host_warn("group '%s': %s", group, err->message);
                continue;
            }
            r = g_new0(HostRating, 1);
            r->backend = hb;
            r->host = h;
            r->factors = g_ptr_array_new_with_free_func((GDestroyNotify)factor_free);
            rate_one(r, vm_backend, vm, src, cp);
            g_ptr_array_add(out, r);
        }
    } else {
        g_autoptr(GPtrArray) hosts = host_backend_list_hosts(vm_backend, error);
        if (!hosts)
            return NULL;
        while (hosts->len) {
            HostRating *r = g_new0(HostRating, 1);
            r->backend = vm_backend;
            r->host = g_ptr_array_steal_index(hosts, 0);
            r->factors = g_ptr_array_new_with_free_func((GDestroyNotify)factor_free);
            rate_one(r, vm_backend, vm, src, cp);
            g_ptr_array_add(out, r);
        }
    }
    for (guint i = 0; i < out->len; i++) {
        HostRating *r = g_ptr_array_index(out, i);
        r->score = r->eligible ? CLAMP(r->score, 0, 5) : 0;
    }
    g_ptr_array_sort(out, compare_ratings);
    return g_steal_pointer(&out);
}
