/*
 * vmshift host: the migration spec, built in one place from the options of
 * `check`, `migrate`, `migrate-storage` and a bulk plan's waves, and written
 * back as the equivalent command line (dry runs, `check`).
 */
#include "config.h"

#include <string.h>

#include "host/crossmove.h"
#include "host/rules.h"

gboolean
host_spec_add_mappings(GPtrArray *out, char **items, const char *opt, GError **error)
{
    for (guint i = 0; items && items[i]; i++) {
        const char *eq = strchr(items[i], '=');
        if (!eq || eq == items[i] || !eq[1]) {
            g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_INVALID_ARGUMENT,
                        "%s %s: expected KEY=VALUE", opt, items[i]);
            return FALSE;
        }
        g_autofree char *k = g_strndup(items[i], eq - items[i]);
        g_ptr_array_add(out, vmshift_mapping_new(k, eq + 1));
    }
    return TRUE;
}

gboolean
host_spec_parse_options(char **items, GVariant **out, GError **error)
{
    g_autoptr(GHashTable) seen = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    g_auto(GVariantBuilder) b = G_VARIANT_BUILDER_INIT(G_VARIANT_TYPE_VARDICT);

    for (guint i = 0; items && items[i]; i++) {
        const char *eq = strchr(items[i], '=');
        g_autofree char *k = NULL;
        if (!g_utf8_validate(items[i], -1, NULL)) {
            g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_INVALID_ARGUMENT,
                        "--option: item %u is not UTF-8", i + 1);
            return FALSE;
        }
        if (!eq || eq == items[i]) {
            g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_INVALID_ARGUMENT,
                        "--option %s: expected KEY=VALUE", items[i]);
            return FALSE;
        }
        k = g_strndup(items[i], eq - items[i]);
        if (g_str_has_prefix(k, "vmshift.")) {
            g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_INVALID_ARGUMENT,
                        "--option %s: keys 'vmshift.*' are the host's own (--ip is '%s')", items[i],
                        HOST_SPEC_IP_KEY);
            return FALSE;
        }
        if (g_hash_table_contains(seen, k)) {
            g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_INVALID_ARGUMENT,
                        "--option %s: key '%s' given twice", items[i], k);
            return FALSE;
        }
        g_variant_builder_add(&b, "{sv}", k, g_variant_new_string(eq + 1));
        g_hash_table_add(seen, g_steal_pointer(&k));
    }
    if (out)
        *out = items && items[0] ? g_variant_ref_sink(g_variant_builder_end(&b)) : NULL;
    return TRUE;
}

/* @s as an IP address (IPv4 or IPv6), or NULL */
static GInetAddress *
parse_address(const char *s)
{
    return s && *s ? g_inet_address_new_from_string(s) : NULL;
}

/* one "NIC=ADDR/PREFIX[,GATEWAY]" of --ip */
static VmshiftGuestNic *
parse_ip(const char *item, GError **error)
{
    const char *eq = strchr(item, '=');
    const char *slash = eq ? strchr(eq, '/') : NULL;
    g_autoptr(VmshiftGuestNic) g = vmshift_guest_nic_new();
    if (!eq || eq == item || !slash) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_INVALID_ARGUMENT,
                    "--ip %s: expected NIC=ADDRESS/PREFIX[,GATEWAY]", item);
        return NULL;
    }
    g->nic = g_strndup(item, eq - item);
    g->address = g_strndup(eq + 1, slash - eq - 1);
    const char *comma = strchr(slash, ',');
    g_autofree char *prefix = comma ? g_strndup(slash + 1, comma - slash - 1) : g_strdup(slash + 1);
    g_autoptr(GInetAddress) a = parse_address(g->address);
    if (!a) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_INVALID_ARGUMENT,
                    "--ip %s: '%s' is not an IPv4 or IPv6 address", item, g->address);
        return NULL;
    }
    guint max = g_inet_address_get_family(a) == G_SOCKET_FAMILY_IPV6 ? 128 : 32;
    guint64 p = 0;
    if (!g_ascii_string_to_unsigned(prefix, 10, 0, max, &p, NULL)) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_INVALID_ARGUMENT,
                    "--ip %s: the prefix length '%s' is not a number from 0 to %u", item, prefix,
                    max);
        return NULL;
    }
    g->prefix_len = (guint32)p;
    if (comma) {
        g_autoptr(GInetAddress) gw = parse_address(comma + 1);
        if (!gw || g_inet_address_get_family(gw) != g_inet_address_get_family(a)) {
            g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_INVALID_ARGUMENT,
                        "--ip %s: the gateway '%s' is not an address of the same family as %s",
                        item, comma + 1, g->address);
            return NULL;
        }
        g->gateway = g_strdup(comma + 1);
    }
    return g_steal_pointer(&g);
}

gboolean
host_spec_parse_ips(char **items, GPtrArray **out, GError **error)
{
    g_autoptr(GPtrArray) l = vmshift_list_new((GDestroyNotify)vmshift_guest_nic_free);
    for (guint i = 0; items && items[i]; i++) {
        if (!g_utf8_validate(items[i], -1, NULL)) {
            g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_INVALID_ARGUMENT,
                        "--ip: item %u is not UTF-8", i + 1);
            return FALSE;
        }
        VmshiftGuestNic *g = parse_ip(items[i], error);
        if (!g)
            return FALSE;
        for (guint k = 0; k < l->len; k++) {
            if (!strcmp(((VmshiftGuestNic *)l->pdata[k])->nic, g->nic)) {
                g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_INVALID_ARGUMENT,
                            "--ip %s: NIC '%s' given twice", items[i], g->nic);
                vmshift_guest_nic_free(g);
                return FALSE;
            }
        }
        g_ptr_array_add(l, g);
    }
    if (out)
        *out = l->len ? g_steal_pointer(&l) : NULL;
    return TRUE;
}

/* --ip in the spec: @items (as written) under HOST_SPEC_IP_KEY in the
 * options, so that the journal's spec, check, the daemon and repair carry
 * them as they carry every other part of the spec */
static void
spec_add_ips(VmshiftMigrationSpec *spec, char **items)
{
    g_auto(GVariantBuilder) b = G_VARIANT_BUILDER_INIT(G_VARIANT_TYPE_VARDICT);
    GVariantIter it;
    const char *k;
    GVariant *v;

    if (!items || !items[0])
        return;
    if (spec->options) {
        g_variant_iter_init(&it, spec->options);
        while (g_variant_iter_next(&it, "{&sv}", &k, &v)) {
            if (strcmp(k, HOST_SPEC_IP_KEY) != 0)
                g_variant_builder_add(&b, "{sv}", k, v);
            g_variant_unref(v);
        }
        g_variant_unref(spec->options);
    }
    g_variant_builder_add(&b, "{sv}", HOST_SPEC_IP_KEY,
                          g_variant_new_strv((const char *const *)items, -1));
    spec->options = g_variant_ref_sink(g_variant_builder_end(&b));
}

/* the --ip items of @spec (NULL: none) */
static char **
spec_ip_items(const VmshiftMigrationSpec *spec)
{
    g_autoptr(GVariant) v = NULL;

    if (!spec || !spec->options)
        return NULL;
    v = g_variant_lookup_value(spec->options, HOST_SPEC_IP_KEY, G_VARIANT_TYPE_STRING_ARRAY);
    return v ? g_variant_dup_strv(v, NULL) : NULL;
}

gboolean
host_spec_guest(const VmshiftMigrationSpec *spec, GPtrArray **out, GError **error)
{
    g_auto(GStrv) items = spec_ip_items(spec);

    *out = NULL;
    return host_spec_parse_ips(items, out, error);
}

VmshiftMigrationSpec *
host_spec_for_plugin(const VmshiftMigrationSpec *spec)
{
    VmshiftMigrationSpec *s = vmshift_migration_spec_copy(spec);
    g_auto(GVariantBuilder) b = G_VARIANT_BUILDER_INIT(G_VARIANT_TYPE_VARDICT);
    g_auto(GStrv) ips = spec_ip_items(s);
    GVariantIter it;
    const char *k;
    GVariant *v;
    guint n = 0;

    if (!ips)
        return s;
    s->start = 0; /* the guest phase starts the VM, after customizing it */
    g_variant_iter_init(&it, s->options);
    while (g_variant_iter_next(&it, "{&sv}", &k, &v)) {
        if (strcmp(k, HOST_SPEC_IP_KEY) != 0) {
            g_variant_builder_add(&b, "{sv}", k, v);
            n++;
        }
        g_variant_unref(v);
    }
    g_variant_unref(s->options);
    s->options = n ? g_variant_ref_sink(g_variant_builder_end(&b)) : NULL;
    return s;
}

/* VmshiftTransfer -> its option value, in the enum's order */
static const char *const transfer_names[] = { "auto", "san", "network" };

const char *
host_spec_transfer_name(guint32 transfer)
{
    return transfer_names[transfer % G_N_ELEMENTS(transfer_names)];
}

gboolean
host_spec_parse_transfer(const char *s, guint32 *out)
{
    for (guint32 i = 0; i < G_N_ELEMENTS(transfer_names); i++) {
        if (!g_strcmp0(s ? s : "auto", transfer_names[i])) {
            *out = i;
            return TRUE;
        }
    }
    return FALSE;
}

void
host_migrate_opts_clear(HostMigrateOpts *o)
{
    g_free(o->to);
    g_free(o->to_group);
    g_free(o->path);
    g_free(o->transfer);
    g_strfreev(o->disk_paths);
    g_strfreev(o->networks);
    g_strfreev(o->options);
    g_free(o->switchover_at);
    g_strfreev(o->ips);
    g_strfreev(o->network_map);
    memset(o, 0, sizeof *o);
}

/* the destination network @map ("BACKEND:SOURCE=DEST" entries) gives
 * @network for backend @backend, or NULL */
static const char *
network_map_lookup(char **map, const char *backend, const char *network)
{
    gsize blen = strlen(backend), nlen = strlen(network);
    for (guint k = 0; map && map[k]; k++) {
        const char *e = map[k];
        if (strncmp(e, backend, blen) != 0 || e[blen] != ':')
            continue;
        e += blen + 1;
        if (strncmp(e, network, nlen) == 0 && e[nlen] == '=')
            return e + nlen + 1;
    }
    return NULL;
}

void
host_spec_map_networks(VmshiftMigrationSpec *spec, const HostMigrateOpts *o,
                       const char *dest_backend, GPtrArray *nics)
{
    for (guint i = 0; o->network_map && nics && i < nics->len; i++) {
        const VmshiftNic *n = g_ptr_array_index(nics, i);
        const char *to = n->id && n->network
                             ? network_map_lookup(o->network_map, dest_backend, n->network)
                             : NULL;
        gboolean mapped = FALSE;
        for (guint k = 0; to && k < spec->networks->len && !mapped; k++) {
            const VmshiftMapping *m = g_ptr_array_index(spec->networks, k);
            mapped = !g_strcmp0(m->key, n->id) || (n->mac && !g_ascii_strcasecmp(m->key, n->mac));
        }
        if (to && !mapped)
            g_ptr_array_add(spec->networks, vmshift_mapping_new(n->id, to));
    }
}

VmshiftMigrationSpec *
host_build_spec(HostRegistry *reg, const char *vm_spec, const HostMigrateOpts *o,
                gboolean storage_only, HostBackend **backend_out, VmshiftVm **vm_out,
                GError **error)
{
    return host_build_spec_run(reg, vm_spec, o, storage_only, NULL, backend_out, vm_out, NULL,
                               error);
}

VmshiftMigrationSpec *
host_build_spec_run(HostRegistry *reg, const char *vm_spec, const HostMigrateOpts *o,
                    gboolean storage_only, HostPlaceRun *run, HostBackend **backend_out,
                    VmshiftVm **vm_out, char **placement, GError **error)
{
    g_autoptr(VmshiftMigrationSpec) spec = vmshift_migration_spec_new();
    g_autoptr(VmshiftVm) vm = NULL;
    g_autoptr(HostPlaceRun) own_run = NULL;
    HostBackend *b = NULL;

    if (!host_spec_add_mappings(spec->disk_paths, o->disk_paths, "--disk-path", error)
        || !host_spec_add_mappings(spec->networks, o->networks, "--network", error)
        || !host_spec_parse_options(o->options, &spec->options, error)
        || !host_spec_parse_ips(o->ips, NULL, error))
        return NULL;
    spec_add_ips(spec, o->ips);
    if (o->switchover_at && !host_parse_switchover(o->switchover_at, &spec->switchover_at, error))
        return NULL;
    if (!host_spec_parse_transfer(o->transfer, &spec->transfer)) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_INVALID_ARGUMENT,
                    "--transfer must be auto, san or network, not '%s'", o->transfer);
        return NULL;
    }
    vm = host_find_vm(reg, vm_spec, &b, error);
    if (!vm)
        return NULL;
    /* --ip: the plugin's guest customization runs after the move */
    if (o->ips && o->ips[0] && !host_backend_has_op(b, "customize_guest")) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_NOT_SUPPORTED,
                    "backend %s does not support --ip", host_backend_name(b));
        return NULL;
    }
    spec->vm = g_strdup(vm->name);
    spec->dest_path = g_strdup(o->path);
    spec->start = o->start;
    spec->force = o->force;

    if (storage_only) {
        spec->type = VMSHIFT_MIGRATION_STORAGE;
    } else {
        HostBackend *hb = NULL;
        if (o->to_group) {
            g_autoptr(HostRating) best = NULL;
            if (!run)
                run = own_run = host_place_run_new();
            best = host_place(reg, b, vm, o->to_group, run, error);
            if (!best)
                return NULL;
            spec->dest_host = g_strdup(best->host->name);
            hb = best->backend;
            /* the storage moves only when it must (or --path/--transfer ask) */
            if (!spec->dest_path && spec->transfer != VMSHIFT_TRANSFER_SAN && best->dest_path)
                spec->dest_path = g_strdup(best->dest_path);
            if (placement)
                *placement = g_strdup(run->last_reason);
        } else {
            g_autoptr(VmshiftHost) h = host_find_host(reg, o->to, b, &hb, error);
            if (!h)
                return NULL;
            spec->dest_host = g_strdup(h->name);
        }
        if (hb == b)
            host_spec_map_networks(spec, o, host_backend_name(b), vm->nics);
        if (hb != b) {
            /* a move between backends (crossmove.c) */
            if (!host_cross_fill_spec(b, hb, vm, o, spec, error))
                return NULL;
        } else if (o->delete_source || o->convert_guest) {
            g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_INVALID_ARGUMENT,
                        "%s is for moves between backends (--to BACKEND:HOST of another backend)",
                        o->delete_source ? "--delete-source" : "--convert-guest");
            return NULL;
        } else if (o->live)
            spec->type = VMSHIFT_MIGRATION_LIVE;
        else if (o->cold)
            spec->type = VMSHIFT_MIGRATION_COLD;
        else
            spec->type = vm->power_state == VMSHIFT_POWER_RUNNING ? VMSHIFT_MIGRATION_LIVE
                                                                  : VMSHIFT_MIGRATION_COLD;
        /* a guest is re-addressed at its next boot (vSphere: a powered-off
         * VM's customization, applied at power-on), as HCX's bulk migration */
        if (o->ips && o->ips[0] && spec->type != VMSHIFT_MIGRATION_COLD) {
            g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_INVALID_ARGUMENT,
                        "--ip needs a cold move of a stopped VM (the guest takes its new "
                        "address at its next boot): VM '%s' would move live",
                        vm->name);
            return NULL;
        }
    }
    if (backend_out)
        *backend_out = b;
    if (vm_out)
        *vm_out = g_steal_pointer(&vm);
    return g_steal_pointer(&spec);
}

static void
append_arg(GString *s, const char *a)
{
    g_autofree char *q = NULL;
    gboolean plain = *a != 0;
    for (const char *p = a; *p; p++)
        if (!g_ascii_isalnum(*p) && !strchr("-_.,/:=@+%", *p))
            plain = FALSE;
    q = plain ? g_strdup(a) : g_shell_quote(a);
    g_string_append_c(s, ' ');
    g_string_append(s, q);
}

char *
host_spec_command_line(const char *backend, const VmshiftMigrationSpec *spec)
{
    GString *s = g_string_new("vmshift");
    g_autofree char *vm = g_strdup_printf("%s:%s", backend, spec->vm);

    if (spec->type == VMSHIFT_MIGRATION_STORAGE) {
        g_string_append(s, " migrate-storage");
        append_arg(s, vm);
    } else {
        gboolean cross = host_spec_is_cross(spec);
        g_autofree char *to = g_strdup_printf("%s:%s", cross ? spec->dest_backend : backend,
                                              spec->dest_host);
        g_string_append(s, " migrate");
        append_arg(s, vm);
        g_string_append(s, " --to");
        append_arg(s, to);
        if (!cross)
            g_string_append(s, spec->type == VMSHIFT_MIGRATION_LIVE ? " --live" : " --cold");
    }
    if (spec->dest_path) {
        g_string_append(s, " --path");
        append_arg(s, spec->dest_path);
    }
    for (guint i = 0; i < spec->disk_paths->len; i++) {
        VmshiftMapping *m = g_ptr_array_index(spec->disk_paths, i);
        g_autofree char *kv = g_strdup_printf("%s=%s", m->key, m->value);
        g_string_append(s, " --disk-path");
        append_arg(s, kv);
    }
    for (guint i = 0; i < spec->networks->len; i++) {
        VmshiftMapping *m = g_ptr_array_index(spec->networks, i);
        g_autofree char *kv = g_strdup_printf("%s=%s", m->key, m->value);
        g_string_append(s, " --network");
        append_arg(s, kv);
    }
    if (spec->options) {
        GVariantIter it;
        const char *k;
        GVariant *v;
        g_variant_iter_init(&it, spec->options);
        while (g_variant_iter_next(&it, "{&sv}", &k, &v)) {
            g_autoptr(GVariant) val = v;
            if (g_str_has_prefix(k, "vmshift."))
                continue; /* the host's own: --ip, --delete-source, --convert-guest below */
            g_autofree char *vs = g_variant_is_of_type(val, G_VARIANT_TYPE_STRING)
                                      ? g_variant_dup_string(val, NULL)
                                      : g_variant_print(val, FALSE);
            g_autofree char *kv = g_strdup_printf("%s=%s", k, vs);
            g_string_append(s, " --option");
            append_arg(s, kv);
        }
    }
    {
        g_auto(GStrv) ips = spec_ip_items(spec);
        for (guint i = 0; ips && ips[i]; i++) {
            g_string_append(s, " --ip");
            append_arg(s, ips[i]);
        }
    }
    if (spec->transfer != VMSHIFT_TRANSFER_AUTO)
        g_string_append_printf(s, " --transfer %s", host_spec_transfer_name(spec->transfer));
    if (spec->switchover_at) {
        g_autofree char *when = host_format_switchover(spec->switchover_at);
        g_string_append(s, " --switchover-at");
        append_arg(s, when);
    }
    if (host_spec_flag(spec, HOST_SPEC_DELETE_SOURCE_KEY))
        g_string_append(s, " --delete-source");
    if (host_spec_flag(spec, HOST_SPEC_CONVERT_KEY))
        g_string_append(s, " --convert-guest");
    if (spec->start)
        g_string_append(s, " --start");
    if (spec->force)
        g_string_append(s, " --force");
    return g_string_free(s, FALSE);
}

/* ---- spec <-> JSON (the journal's record of what a job does) ------------------- */

static json_object *
mappings_json(GPtrArray *m)
{
    json_object *o = json_object_new_object();
    for (guint i = 0; m && i < m->len; i++) {
        VmshiftMapping *p = g_ptr_array_index(m, i);
        /* a key that is not UTF-8 (a damaged journal row) never reaches --json raw */
        g_autofree char *key = g_utf8_make_valid(p->key ? p->key : "", -1);
        json_object_object_add(o, key, host_json_string(p->value));
    }
    return o;
}

char *
host_spec_to_json(const VmshiftMigrationSpec *s, HostJobKind kind)
{
    json_object *o = json_object_new_object();
    char *out;

    json_object_object_add(o, "kind", json_object_new_string(host_job_kind_name(kind)));
    if (s) {
        json_object_object_add(o, "type",
                               json_object_new_string(vmshift_migration_type_name(s->type)));
        json_object_object_add(o, "vm", host_json_string(s->vm));
        json_object_object_add(o, "dest_host", host_json_string(s->dest_host));
        json_object_object_add(o, "dest_path", host_json_string(s->dest_path));
        json_object_object_add(o, "disk_paths", mappings_json(s->disk_paths));
        json_object_object_add(o, "networks", mappings_json(s->networks));
        json_object_object_add(o, "transfer",
                               json_object_new_string(host_spec_transfer_name(s->transfer)));
        json_object_object_add(o, "start", json_object_new_boolean(s->start));
        json_object_object_add(o, "force", json_object_new_boolean(s->force));
        if (s->options) {
            g_autofree char *v = g_variant_print(s->options, TRUE);
            json_object_object_add(o, "options", json_object_new_string(v));
        }
        if (s->switchover_at)
            json_object_object_add(o, "switchover_at", json_object_new_int64(s->switchover_at));
        if (host_spec_is_cross(s)) {
            json_object_object_add(o, "dest_backend", host_json_string(s->dest_backend));
            if (s->source_vm)
                json_object_object_add(o, "source_vm", host_cross_vm_to_json(s->source_vm));
        }
    }
    out = g_strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
    json_object_put(o);
    return out;
}

static const char *
jstr(json_object *o, const char *key)
{
    json_object *v;
    if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
        return NULL;
    return json_object_get_string(v);
}

static void
mappings_from(json_object *o, const char *key, GPtrArray *out)
{
    json_object *m;
    if (!json_object_object_get_ex(o, key, &m) || !json_object_is_type(m, json_type_object))
        return;
    json_object_object_foreach(m, k, v) {
        if (json_object_is_type(v, json_type_string))
            g_ptr_array_add(out, vmshift_mapping_new(k, json_object_get_string(v)));
    }
}

VmshiftMigrationSpec *
host_spec_from_json(const char *text, GError **error)
{
    json_object *o = text ? json_tokener_parse(text) : NULL;
    VmshiftMigrationSpec *s;
    const char *t;
    json_object *v;

    if (!o || !json_object_is_type(o, json_type_object)) {
        if (o)
            json_object_put(o);
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_PROTOCOL,
                    "the journal's record of the job's spec is unreadable");
        return NULL;
    }
    if (!jstr(o, "vm")) {
        json_object_put(o);
        return NULL; /* not a migration */
    }
    s = vmshift_migration_spec_new();
    t = jstr(o, "type");
    s->type = !g_strcmp0(t, "cold")      ? VMSHIFT_MIGRATION_COLD
              : !g_strcmp0(t, "storage") ? VMSHIFT_MIGRATION_STORAGE
                                         : VMSHIFT_MIGRATION_LIVE;
    s->vm = g_strdup(jstr(o, "vm"));
    s->dest_host = g_strdup(jstr(o, "dest_host"));
    s->dest_path = g_strdup(jstr(o, "dest_path"));
    mappings_from(o, "disk_paths", s->disk_paths);
    mappings_from(o, "networks", s->networks);
    t = jstr(o, "transfer");
    if (!host_spec_parse_transfer(t, &s->transfer))
        s->transfer = VMSHIFT_TRANSFER_AUTO;
    if (json_object_object_get_ex(o, "start", &v))
        s->start = json_object_get_boolean(v);
    if (json_object_object_get_ex(o, "force", &v))
        s->force = json_object_get_boolean(v);
    if (json_object_object_get_ex(o, "switchover_at", &v) && json_object_is_type(v, json_type_int))
        s->switchover_at = json_object_get_int64(v);
    s->dest_backend = g_strdup(jstr(o, "dest_backend"));
    if (json_object_object_get_ex(o, "source_vm", &v))
        s->source_vm = host_cross_vm_from_json(v);
    if ((t = jstr(o, "options"))) {
        GVariant *var = g_variant_parse(G_VARIANT_TYPE("a{sv}"), t, NULL, NULL, NULL);
        if (var)
            s->options = g_variant_ref_sink(var);
    }
    json_object_put(o);
    return s;
}
