/*
 * vmshift host: moves between backends, before the job runs: the spec (the
 * source's description of the VM with the mapping applied), the checks
 * (host rules and the destination's check_import) and the description's
 * JSON in the journal. See crossmove.h.
 */
#include "config.h"

#include <string.h>

#include "host/convert.h"
#include "host/crossmove.h"
#include "host/rules.h"

gboolean
host_spec_is_cross(const VmshiftMigrationSpec *spec)
{
    return spec && VMSHIFT_HAS_FIELD(spec, dest_backend) && spec->dest_backend;
}

gboolean
host_spec_flag(const VmshiftMigrationSpec *spec, const char *key)
{
    g_autoptr(GVariant) v = NULL;

    if (!spec || !spec->options)
        return FALSE;
    v = g_variant_lookup_value(spec->options, key, G_VARIANT_TYPE_BOOLEAN);
    return v && g_variant_get_boolean(v);
}

/* Sets @key of @spec's options to @value (floating). */
static void
spec_set_value(VmshiftMigrationSpec *spec, const char *key, GVariant *value)
{
    g_auto(GVariantBuilder) b = G_VARIANT_BUILDER_INIT(G_VARIANT_TYPE_VARDICT);
    GVariantIter it;
    const char *k;
    GVariant *v;

    if (spec->options) {
        g_variant_iter_init(&it, spec->options);
        while (g_variant_iter_next(&it, "{&sv}", &k, &v)) {
            if (strcmp(k, key) != 0)
                g_variant_builder_add(&b, "{sv}", k, v);
            g_variant_unref(v);
        }
        g_variant_unref(spec->options);
    }
    g_variant_builder_add(&b, "{sv}", key, value);
    spec->options = g_variant_ref_sink(g_variant_builder_end(&b));
}

/* The NIC of @vm whose id, or else MAC, is @key */
static VmshiftNic *
find_nic(const VmshiftVm *vm, const char *key)
{
    VmshiftNic *n = vmshift_vm_find_nic(vm, key);
    for (guint i = 0; !n && vm && vm->nics && i < vm->nics->len; i++) {
        VmshiftNic *x = g_ptr_array_index(vm->nics, i);
        if (x->mac && !g_ascii_strcasecmp(x->mac, key))
            n = x;
    }
    return n;
}

/* Adds the boolean host flag @key to @spec's options. */
static void
spec_set_flag(VmshiftMigrationSpec *spec, const char *key)
{
    spec_set_value(spec, key, g_variant_new_boolean(TRUE));
}

/* "backend X does not support moves to/from other backends (no 'OP')" */
static gboolean
need_ops(HostBackend *b, const char *const *ops, GError **error)
{
    for (guint i = 0; ops[i]; i++) {
        if (host_backend_has_op(b, ops[i]))
            continue;
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_NOT_SUPPORTED,
                    "backend %s does not support moves to/from other backends (no '%s')",
                    host_backend_name(b), ops[i]);
        return FALSE;
    }
    return TRUE;
}

/* The options of a host move that a move between backends has no use for. */
static gboolean
refuse_options(const HostMigrateOpts *o, GError **error)
{
    const char *bad = o->live                                         ? "--live"
                      : o->transfer && g_strcmp0(o->transfer, "auto") ? "--transfer"
                      : o->switchover_at                              ? "--switchover-at"
                      : o->ips && o->ips[0]                           ? "--ip"
                                                                      : NULL;

    if (!bad)
        return TRUE;
    g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_INVALID_ARGUMENT,
                "%s does not apply to a move between backends (a cold copy of a stopped VM)", bad);
    return FALSE;
}

/* --convert-guest: virt-v2v installed, and a KVM destination. */
static gboolean
convert_possible(HostBackend *dst, GError **error)
{
    if (!host_convert_available(error))
        return FALSE;
    if (dst->plugin && dst->plugin->desc && !g_strcmp0(dst->plugin->desc->name, "kvm"))
        return TRUE;
    g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_NOT_SUPPORTED,
                "--convert-guest: virt-v2v converts guests for KVM only, and backend %s "
                "(plugin %s) is not KVM",
                host_backend_name(dst),
                dst->plugin && dst->plugin->desc ? dst->plugin->desc->name : "?");
    return FALSE;
}

gboolean
host_cross_fill_spec(HostBackend *src, HostBackend *dst, const VmshiftVm *vm,
                     const HostMigrateOpts *o, VmshiftMigrationSpec *spec, GError **error)
{
    static const char *const src_ops[] = { "export_vm", "open_disk", NULL };
    static const char *const dst_ops[] = { "import_vm", "open_disk", "remove_vm", "export_vm",
                                           NULL };
    g_autoptr(GError) local = NULL;
    g_autoptr(GPtrArray) nets = NULL;
    VmshiftVm *desc;

    if (!need_ops(src, src_ops, error) || !need_ops(dst, dst_ops, error)
        || !refuse_options(o, error))
        return FALSE;
    if (o->start && !host_backend_has_op(dst, "start_vm"))
        return need_ops(dst, (const char *const[]){ "start_vm", NULL }, error);
    if (o->convert_guest && !convert_possible(dst, error))
        return FALSE;
    desc = host_backend_export_vm(src, vm->name, &local);
    if (!desc && !g_error_matches(local, VMSHIFT_ERROR, VMSHIFT_ERROR_CONFLICT)) {
        g_propagate_prefixed_error(error, g_steal_pointer(&local), "export of VM '%s': ", vm->name);
        return FALSE;
    }
    /* a VM that is not off: described as listed, refused by the checks */
    spec->source_vm = desc ? desc : vmshift_vm_copy(vm);
    host_spec_map_networks(spec, o, host_backend_name(dst), spec->source_vm->nics);
    nets = g_ptr_array_new_null_terminated(4, g_free, TRUE);
    for (guint i = 0; i < spec->networks->len; i++) {
        VmshiftMapping *m = g_ptr_array_index(spec->networks, i);
        VmshiftNic *n = find_nic(spec->source_vm, m->key);
        if (n && g_strcmp0(n->id, m->key) != 0) {
            /* named by its MAC (as --reverse names it): by its id from here */
            g_free(m->key);
            m->key = g_strdup(n->id);
        }
        if (n) {
            /* what it was, for bulk --reverse: by its MAC, which the move
             * keeps while the destination gives the NIC an id of its own */
            if (n->network)
                g_ptr_array_add(nets,
                                g_strdup_printf("%s=%s", n->mac ? n->mac : n->id, n->network));
            g_free(n->network);
            n->network = g_strdup(m->value);
        }
    }
    if (nets->len)
        spec_set_value(spec, HOST_SPEC_SOURCE_NETS_KEY,
                       g_variant_new_strv((const char *const *)nets->pdata, nets->len));
    spec->type = VMSHIFT_MIGRATION_COLD;
    spec->dest_backend = g_strdup(host_backend_name(dst));
    if (o->delete_source)
        spec_set_flag(spec, HOST_SPEC_DELETE_SOURCE_KEY);
    if (o->convert_guest)
        spec_set_flag(spec, HOST_SPEC_CONVERT_KEY);
    return TRUE;
}

/* ---- checks ------------------------------------------------------------------------------ */

/* Space where the destination puts the disks: the volume of --path, else
 * the host's default, against the disks' capacities. */
static void
check_space(HostBackend *dst, const VmshiftMigrationSpec *spec, guint64 bytes, HostRuleSink *s)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(GPtrArray) vols = host_backend_list_volumes(dst, spec->dest_host, &err);
    VmshiftVolume *v = NULL;
    g_autofree char *need = host_format_bytes(bytes);

    for (guint i = 0; vols && !spec->dest_path && i < vols->len; i++) {
        VmshiftVolume *x = g_ptr_array_index(vols, i);
        if (x->is_default && (!x->host || !g_strcmp0(x->host, spec->dest_host)))
            v = x;
    }
    if (vols && spec->dest_path)
        v = host_volume_for_path(vols, spec->dest_path);
    if (!v) {
        host_rule_add(s, VMSHIFT_FINDING_SPACE_UNKNOWN, spec->dest_host,
                      "backend %s: no volume of host '%s' holds %s%s%s; %s must fit",
                      spec->dest_backend, spec->dest_host,
                      spec->dest_path ? spec->dest_path : "the default VM path", err ? ": " : "",
                      err ? err->message : "", need);
    } else if (VMSHIFT_HAS_FIELD(v, free_unknown) && v->free_unknown) {
        host_rule_add(s, VMSHIFT_FINDING_SPACE_UNKNOWN, v->name,
                      "backend %s: the free space of %s is not known; %s must fit",
                      spec->dest_backend, v->path ? v->path : v->name, need);
    } else if (v->free < bytes) {
        g_autofree char *free = host_format_bytes(v->free);
        host_rule_add(s, VMSHIFT_FINDING_NO_SPACE, v->name,
                      "backend %s: %s on host '%s' has %s free, the disks need %s",
                      spec->dest_backend, v->path ? v->path : v->name, spec->dest_host, free, need);
    }
}

/* The destination's own check of the import. */
static void
check_import(HostBackend *dst, const VmshiftMigrationSpec *spec, HostRuleSink *s)
{
    g_autoptr(GError) err = NULL;
    g_autoptr(GPtrArray) pf = NULL;

    if (!host_backend_has_op(dst, "check_import")) {
        host_rule_add(s, VMSHIFT_FINDING_BACKEND_CHECKS_SKIPPED, NULL,
                      "backend %s has no check_import; only the host's checks ran",
                      host_backend_name(dst));
        return;
    }
    if (!(pf = host_backend_check_import(dst, spec, &err))) {
        host_rule_add(s, VMSHIFT_FINDING_CHECK_FAILED, NULL, "backend %s's import check failed: %s",
                      host_backend_name(dst), err->message);
        return;
    }
    host_rules_merge_backend(s, pf, host_backend_name(dst));
}

GPtrArray *
host_cross_validate(HostBackend *src, const VmshiftMigrationSpec *spec, const VmshiftVm *vm,
                    GError **error)
{
    g_autoptr(GPtrArray) f = vmshift_list_new((GDestroyNotify)vmshift_finding_free);
    HostRuleSink s = { .findings = f };
    HostBackend *dst = host_registry_get_open(src->reg, spec->dest_backend, error);
    const VmshiftVm *desc = spec->source_vm ? spec->source_vm : vm;
    guint64 bytes = 0;

    if (!dst)
        return NULL;
    if (vm && vm->power_state != VMSHIFT_POWER_STOPPED)
        host_rule_add(&s, VMSHIFT_FINDING_RUNNING, vm->name,
                      "VM '%s' is %s: a move between backends needs it off", vm->name,
                      vmshift_power_state_name(vm->power_state));
    for (guint i = 0; desc && i < desc->disks->len; i++) {
        const VmshiftDisk *d = g_ptr_array_index(desc->disks, i);
        if (d->size_known & VMSHIFT_DISK_CAPACITY_KNOWN || (!d->size_known && d->capacity))
            bytes += d->capacity;
        else
            host_rule_add(&s, VMSHIFT_FINDING_DISK_SIZE_UNKNOWN, d->id,
                          "the size of disk %s of '%s' is not known", d->id, desc->name);
    }
    check_space(dst, spec, bytes, &s);
    host_rules_mappings(spec, desc, &s);
    check_import(dst, spec, &s);
    return g_steal_pointer(&f);
}

/* ---- the description in the journal ------------------------------------------------------ */

static json_object *
str(const char *s)
{
    return host_json_string(s);
}

json_object *
host_cross_vm_to_json(const VmshiftVm *vm)
{
    json_object *o = json_object_new_object();
    json_object *disks = json_object_new_array(), *nics = json_object_new_array();

    json_object_object_add(o, "name", str(vm->name));
    json_object_object_add(o, "id", str(vm->id));
    json_object_object_add(o, "host", str(vm->host));
    json_object_object_add(o, "vcpus", json_object_new_int64(vm->vcpus));
    json_object_object_add(o, "memory", json_object_new_int64((gint64)vm->memory));
    json_object_object_add(o, "config_path", str(vm->config_path));
    json_object_object_add(o, "firmware", json_object_new_int64(vm->firmware));
    json_object_object_add(o, "guest_os", str(vm->guest_os));
    for (guint i = 0; i < vm->disks->len; i++) {
        const VmshiftDisk *d = g_ptr_array_index(vm->disks, i);
        json_object *x = json_object_new_object();
        json_object_object_add(x, "id", str(d->id));
        json_object_object_add(x, "path", str(d->path));
        json_object_object_add(x, "volume", str(d->volume)); /* for bulk --reverse */
        json_object_object_add(x, "format", str(d->format));
        json_object_object_add(x, "capacity", json_object_new_int64((gint64)d->capacity));
        json_object_object_add(x, "size_known", json_object_new_int64(d->size_known));
        json_object_object_add(x, "bus", str(d->bus));
        json_object_object_add(x, "boot_order", json_object_new_int64(d->boot_order));
        json_object_array_add(disks, x);
    }
    for (guint i = 0; i < vm->nics->len; i++) {
        const VmshiftNic *n = g_ptr_array_index(vm->nics, i);
        json_object *x = json_object_new_object();
        json_object_object_add(x, "id", str(n->id));
        json_object_object_add(x, "mac", str(n->mac));
        json_object_object_add(x, "network", str(n->network));
        json_object_object_add(x, "model", str(n->model));
        json_object_array_add(nics, x);
    }
    json_object_object_add(o, "disks", disks);
    json_object_object_add(o, "nics", nics);
    return o;
}

static char *
jdup(json_object *o, const char *key)
{
    json_object *v;
    if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
        return NULL;
    return g_strdup(json_object_get_string(v));
}

static gint64
jint(json_object *o, const char *key)
{
    json_object *v;
    return json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_int)
               ? json_object_get_int64(v)
               : 0;
}

/* json's array @key of @o (NULL when it is not one) */
static json_object *
jarray(json_object *o, const char *key)
{
    json_object *v;
    return json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_array) ? v
                                                                                            : NULL;
}

VmshiftVm *
host_cross_vm_from_json(json_object *o)
{
    VmshiftVm *vm;
    json_object *a;

    if (!o || !json_object_is_type(o, json_type_object))
        return NULL;
    vm = vmshift_vm_new();
    vm->name = jdup(o, "name");
    vm->id = jdup(o, "id");
    vm->host = jdup(o, "host");
    vm->vcpus = (guint32)jint(o, "vcpus");
    vm->memory = (guint64)jint(o, "memory");
    vm->config_path = jdup(o, "config_path");
    vm->firmware = (guint32)jint(o, "firmware");
    vm->guest_os = jdup(o, "guest_os");
    vm->power_state = VMSHIFT_POWER_STOPPED;
    for (size_t i = 0; (a = jarray(o, "disks")) && i < json_object_array_length(a); i++) {
        json_object *x = json_object_array_get_idx(a, i);
        VmshiftDisk *d = vmshift_disk_new();
        d->id = jdup(x, "id");
        d->path = jdup(x, "path");
        d->volume = jdup(x, "volume");
        d->format = jdup(x, "format");
        d->capacity = (guint64)jint(x, "capacity");
        d->size_known = (guint32)jint(x, "size_known");
        d->bus = jdup(x, "bus");
        d->boot_order = (guint32)jint(x, "boot_order");
        g_ptr_array_add(vm->disks, d);
    }
    for (size_t i = 0; (a = jarray(o, "nics")) && i < json_object_array_length(a); i++) {
        json_object *x = json_object_array_get_idx(a, i);
        VmshiftNic *n = vmshift_nic_new();
        n->id = jdup(x, "id");
        n->mac = jdup(x, "mac");
        n->network = jdup(x, "network");
        n->model = jdup(x, "model");
        g_ptr_array_add(vm->nics, n);
    }
    return vm;
}

/* ---- the journal's jobs --------------------------------------------------------------------- */

static VmshiftMigrationSpec *
record_cross_spec(const HostJobRecord *r)
{
    g_autoptr(VmshiftMigrationSpec) spec = NULL;

    /* cheap refusal first: most jobs do not move between backends */
    if (!r->spec || !strstr(r->spec, "\"dest_backend\""))
        return NULL;
    spec = host_spec_from_json(r->spec, NULL);
    return host_spec_is_cross(spec) ? g_steal_pointer(&spec) : NULL;
}

char *
host_cross_backends_text(const HostJobRecord *r)
{
    g_autoptr(VmshiftMigrationSpec) spec = record_cross_spec(r);

    return spec ? g_strdup_printf("%s->%s", r->backend, spec->dest_backend) : NULL;
}

char *
host_cross_dest_text(const HostJobRecord *r)
{
    g_autoptr(VmshiftMigrationSpec) spec = record_cross_spec(r);

    if (!spec)
        return NULL;
    return g_strdup_printf(
        "backend %s, host %s (a move between backends%s%s)", spec->dest_backend,
        spec->dest_host ? spec->dest_host : "-",
        host_spec_flag(spec, HOST_SPEC_DELETE_SOURCE_KEY) ? "; the source is removed" : "",
        host_spec_flag(spec, HOST_SPEC_CONVERT_KEY) ? "; guest converted" : "");
}

/* Where the VM of the move between backends @r is, asked of the backend
 * that has it by the job's journal: the destination once the job had
 * verified the disks there (its point of no return), else the source, which
 * a move never changes before that. *@host is "BACKEND:HOST", as the job
 * itself writes it. FALSE with *@host NULL: @r is not such a move. */
gboolean
host_cross_ask_location(HostRegistry *reg, HostJournal *j, const HostJobRecord *r, char **host,
                        char **detail, GError **error)
{
    g_autoptr(VmshiftMigrationSpec) spec = record_cross_spec(r);
    g_autoptr(GHashTable) saved = NULL;
    g_autoptr(VmshiftVm) vm = NULL;
    const char *name;
    HostBackend *b;

    *host = NULL;
    if (!spec)
        return FALSE;
    if (!(saved = host_journal_saved(j, r->id, error)))
        return TRUE;
    name = g_hash_table_contains(saved, "vmshift.cross.verified") ? spec->dest_backend : r->backend;
    if (!(b = host_registry_get_open(reg, name, error))
        || !(vm = host_backend_get_vm(b, r->vm, error)))
        return TRUE;
    *host = g_strdup_printf("%s:%s", name, vm->host ? vm->host : "-");
    *detail = g_strdup(vmshift_power_state_name(vm->power_state));
    return TRUE;
}

/* Where the first disk of @vm was, as --path of a move back to @src: the
 * disk's volume when @src lists it by name (a datastore), or a directory
 * inside a volume @src lists; NULL (its default) otherwise. */
static char *
source_volume(HostBackend *src, const VmshiftVm *vm)
{
    const VmshiftDisk *d = vm && vm->disks && vm->disks->len ? g_ptr_array_index(vm->disks, 0)
                                                             : NULL;
    g_autoptr(GPtrArray) vols = NULL;

    if (!src || !d || !d->volume || !*d->volume
        || !(vols = host_backend_list_volumes(src, vm->host, NULL)))
        return NULL;
    for (guint i = 0; i < vols->len; i++) {
        const VmshiftVolume *v = g_ptr_array_index(vols, i);
        if (!g_strcmp0(v->name, d->volume))
            return g_strdup(d->volume);
    }
    if (d->volume[0] == '/' && host_volume_for_path(vols, d->volume))
        return g_strdup(d->volume);
    return NULL;
}

gboolean
host_cross_reverse(const HostJobRecord *rec, HostBackend *src, char **vm_spec, HostMigrateOpts *o)
{
    g_autoptr(VmshiftMigrationSpec) spec = record_cross_spec(rec);

    if (!spec)
        return FALSE;
    g_free(*vm_spec);
    *vm_spec = g_strdup_printf("%s:%s", spec->dest_backend, rec->vm);
    g_free(o->to);
    o->to = g_strdup_printf("%s:%s", rec->backend,
                            rec->source_host                           ? rec->source_host
                            : spec->source_vm && spec->source_vm->host ? spec->source_vm->host
                                                                       : "");
    /* its storage too, as a move back within a backend does */
    g_free(o->path);
    o->path = source_volume(src, spec->source_vm);
    o->delete_source = TRUE; /* the VM ends in one place: back where it was */
    o->convert_guest = FALSE;
    /* each NIC mapped by the move goes back to the network it had */
    g_clear_pointer(&o->networks, g_strfreev);
    if (spec->options) {
        g_autoptr(GVariant) v = g_variant_lookup_value(spec->options, HOST_SPEC_SOURCE_NETS_KEY,
                                                       G_VARIANT_TYPE_STRING_ARRAY);
        if (v)
            o->networks = g_variant_dup_strv(v, NULL);
    }
    return TRUE;
}
