/* vmshift SDK: constructors, destructors and helpers of the plain objects. */
#include "config.h"

#include <string.h>
#include <vmshift/vmshift.h>

#include "sdk-private.h"

#define NEW(type)                       \
    ({                                  \
        type *o_ = g_new0(type, 1);     \
        o_->struct_size = sizeof(type); \
        o_;                             \
    })

static void
ptr_array_unref0(GPtrArray *a)
{
    if (a)
        g_ptr_array_unref(a);
}

VMSHIFT_API GPtrArray *
vmshift_list_new(GDestroyNotify free_func)
{
    return g_ptr_array_new_with_free_func(free_func);
}

VMSHIFT_API GPtrArray *
vmshift_string_list_new(void)
{
    return g_ptr_array_new_with_free_func(g_free);
}

/* ---- host ---- */
VMSHIFT_API VmshiftHost *
vmshift_host_new(void)
{
    VmshiftHost *h = NEW(VmshiftHost);
    h->cpu_usage_percent = -1;
    h->status = VMSHIFT_HOST_UNKNOWN;
    return h;
}

VMSHIFT_API void
vmshift_host_free(VmshiftHost *h)
{
    if (!h)
        return;
    g_free(h->id);
    g_free(h->name);
    g_free(h->status_detail);
    g_free(h->hypervisor);
    g_free(h->cpu_model);
    g_free(h->migration_address);
    g_free(h->default_vm_path);
    ptr_array_unref0(h->san_ids);
    ptr_array_unref0(h->networks);
    g_free(h->compat_id);
    g_free(h);
}

/* ---- disk ---- */
VMSHIFT_API VmshiftDisk *
vmshift_disk_new(void)
{
    return NEW(VmshiftDisk);
}

VMSHIFT_API void
vmshift_disk_free(VmshiftDisk *d)
{
    if (!d)
        return;
    g_free(d->id);
    g_free(d->path);
    g_free(d->format);
    g_free(d->volume);
    ptr_array_unref0(d->backing_chain);
    if (VMSHIFT_HAS_FIELD(d, bus))
        g_free(d->bus);
    g_free(d);
}

/* ---- nic ---- */
VMSHIFT_API VmshiftNic *
vmshift_nic_new(void)
{
    return NEW(VmshiftNic);
}

VMSHIFT_API void
vmshift_nic_free(VmshiftNic *n)
{
    if (!n)
        return;
    g_free(n->id);
    g_free(n->mac);
    g_free(n->network);
    g_free(n->model);
    g_free(n);
}

/* ---- copies ----
 * A copy starts as a byte copy of the source, so that every scalar member,
 * also one appended after ABI 1.0, is copied without this code knowing it;
 * then each pointer member is replaced by a copy of its own. A pointer
 * member appended later must be added here, read only when
 * VMSHIFT_HAS_FIELD() says the source has it (tests/unit/test-sdk.c stops
 * compiling until its check of every member covers the new one). */
#define COPY(type, src)                                                  \
    ({                                                                   \
        type *c_ = g_new0(type, 1);                                      \
        memcpy(c_, (src), MIN((gsize)(src)->struct_size, sizeof(type))); \
        c_->struct_size = sizeof(type);                                  \
        c_;                                                              \
    })

static GPtrArray *
string_list_copy(const GPtrArray *src)
{
    GPtrArray *dst;

    if (!src)
        return NULL;
    dst = vmshift_string_list_new();
    for (guint i = 0; i < src->len; i++)
        g_ptr_array_add(dst, g_strdup(g_ptr_array_index((GPtrArray *)src, i)));
    return dst;
}

static GPtrArray *
list_copy(const GPtrArray *src, GCopyFunc copy, GDestroyNotify free_func)
{
    GPtrArray *dst = vmshift_list_new(free_func);
    for (guint i = 0; src && i < src->len; i++)
        g_ptr_array_add(dst, copy(g_ptr_array_index((GPtrArray *)src, i), NULL));
    return dst;
}

VMSHIFT_API VmshiftDisk *
vmshift_disk_copy(const VmshiftDisk *src)
{
    VmshiftDisk *d;

    if (!src)
        return NULL;
    d = COPY(VmshiftDisk, src);
    d->id = g_strdup(src->id);
    d->path = g_strdup(src->path);
    d->format = g_strdup(src->format);
    d->volume = g_strdup(src->volume);
    d->backing_chain = string_list_copy(src->backing_chain);
    d->bus = VMSHIFT_HAS_FIELD(src, bus) ? g_strdup(src->bus) : NULL;
    return d;
}

VMSHIFT_API VmshiftNic *
vmshift_nic_copy(const VmshiftNic *src)
{
    VmshiftNic *n;

    if (!src)
        return NULL;
    n = COPY(VmshiftNic, src);
    n->id = g_strdup(src->id);
    n->mac = g_strdup(src->mac);
    n->network = g_strdup(src->network);
    n->model = g_strdup(src->model);
    return n;
}

static gpointer
disk_copy_func(gconstpointer src, gpointer unused)
{
    return vmshift_disk_copy(src);
}

static gpointer
nic_copy_func(gconstpointer src, gpointer unused)
{
    return vmshift_nic_copy(src);
}

VMSHIFT_API VmshiftVm *
vmshift_vm_copy(const VmshiftVm *src)
{
    VmshiftVm *vm;

    if (!src)
        return NULL;
    vm = COPY(VmshiftVm, src);
    vm->id = g_strdup(src->id);
    vm->name = g_strdup(src->name);
    vm->host = g_strdup(src->host);
    vm->config_path = g_strdup(src->config_path);
    vm->disks = list_copy(src->disks, disk_copy_func, (GDestroyNotify)vmshift_disk_free);
    vm->nics = list_copy(src->nics, nic_copy_func, (GDestroyNotify)vmshift_nic_free);
    vm->status_detail = g_strdup(src->status_detail);
    vm->guest_os = VMSHIFT_HAS_FIELD(src, guest_os) ? g_strdup(src->guest_os) : NULL;
    return vm;
}

/* ---- vm ---- */
VMSHIFT_API VmshiftVm *
vmshift_vm_new(void)
{
    VmshiftVm *vm = NEW(VmshiftVm);
    vm->disks = vmshift_list_new((GDestroyNotify)vmshift_disk_free);
    vm->nics = vmshift_list_new((GDestroyNotify)vmshift_nic_free);
    return vm;
}

VMSHIFT_API void
vmshift_vm_free(VmshiftVm *vm)
{
    if (!vm)
        return;
    g_free(vm->id);
    g_free(vm->name);
    g_free(vm->host);
    g_free(vm->config_path);
    g_free(vm->status_detail);
    ptr_array_unref0(vm->disks);
    ptr_array_unref0(vm->nics);
    if (VMSHIFT_HAS_FIELD(vm, guest_os))
        g_free(vm->guest_os);
    g_free(vm);
}

VMSHIFT_API VmshiftDisk *
vmshift_vm_find_disk(const VmshiftVm *vm, const char *id)
{
    if (!vm || !vm->disks || !id)
        return NULL;
    for (guint i = 0; i < vm->disks->len; i++) {
        VmshiftDisk *d = g_ptr_array_index(vm->disks, i);
        if (g_strcmp0(d->id, id) == 0)
            return d;
    }
    return NULL;
}

VMSHIFT_API VmshiftNic *
vmshift_vm_find_nic(const VmshiftVm *vm, const char *id)
{
    if (!vm || !vm->nics || !id)
        return NULL;
    for (guint i = 0; i < vm->nics->len; i++) {
        VmshiftNic *n = g_ptr_array_index(vm->nics, i);
        if (g_strcmp0(n->id, id) == 0)
            return n;
    }
    return NULL;
}

/* ---- volume ---- */
VMSHIFT_API VmshiftVolume *
vmshift_volume_new(void)
{
    return NEW(VmshiftVolume);
}

VMSHIFT_API void
vmshift_volume_free(VmshiftVolume *v)
{
    if (!v)
        return;
    g_free(v->id);
    g_free(v->name);
    g_free(v->path);
    g_free(v->host);
    g_free(v->kind);
    ptr_array_unref0(v->hosts);
    g_free(v);
}

/* ---- network ---- */
VMSHIFT_API VmshiftNetwork *
vmshift_network_new(void)
{
    return NEW(VmshiftNetwork);
}

VMSHIFT_API void
vmshift_network_free(VmshiftNetwork *n)
{
    if (!n)
        return;
    g_free(n->id);
    g_free(n->name);
    g_free(n->kind);
    ptr_array_unref0(n->hosts);
    g_free(n);
}

/* ---- finding ---- */
VMSHIFT_API VmshiftFinding *
vmshift_finding_new(VmshiftSeverity severity, const char *code, const char *subject,
                    const char *format, ...)
{
    VmshiftFinding *f = NEW(VmshiftFinding);
    va_list ap;

    f->severity = severity;
    f->code = g_strdup(code);
    f->subject = g_strdup(subject);
    va_start(ap, format);
    f->message = g_strdup_vprintf(format, ap);
    va_end(ap);
    return f;
}

VMSHIFT_API void
vmshift_finding_free(VmshiftFinding *f)
{
    if (!f)
        return;
    g_free(f->code);
    g_free(f->message);
    g_free(f->subject);
    g_free(f);
}

/* ---- checkpoint state ---- */
VMSHIFT_API VmshiftCheckpointState *
vmshift_checkpoint_state_new(void)
{
    VmshiftCheckpointState *s = NEW(VmshiftCheckpointState);
    s->percent = -1;
    return s;
}

VMSHIFT_API void
vmshift_checkpoint_state_free(VmshiftCheckpointState *s)
{
    if (!s)
        return;
    g_free(s->detail);
    g_free(s);
}

/* ---- snapshot ---- */
VMSHIFT_API VmshiftSnapshot *
vmshift_snapshot_new(void)
{
    return NEW(VmshiftSnapshot);
}

VMSHIFT_API void
vmshift_snapshot_free(VmshiftSnapshot *s)
{
    if (!s)
        return;
    g_free(s->id);
    g_free(s->name);
    g_free(s->parent);
    g_free(s);
}

/* ---- mapping ---- */
VMSHIFT_API VmshiftMapping *
vmshift_mapping_new(const char *key, const char *value)
{
    VmshiftMapping *m = NEW(VmshiftMapping);
    m->key = g_strdup(key);
    m->value = g_strdup(value);
    return m;
}

VMSHIFT_API void
vmshift_mapping_free(VmshiftMapping *m)
{
    if (!m)
        return;
    g_free(m->key);
    g_free(m->value);
    g_free(m);
}

/* ---- migration spec ---- */
VMSHIFT_API VmshiftMigrationSpec *
vmshift_migration_spec_new(void)
{
    VmshiftMigrationSpec *s = NEW(VmshiftMigrationSpec);
    s->disk_paths = vmshift_list_new((GDestroyNotify)vmshift_mapping_free);
    s->networks = vmshift_list_new((GDestroyNotify)vmshift_mapping_free);
    return s;
}

VMSHIFT_API void
vmshift_migration_spec_free(VmshiftMigrationSpec *s)
{
    if (!s)
        return;
    g_free(s->vm);
    g_free(s->dest_host);
    g_free(s->dest_path);
    ptr_array_unref0(s->disk_paths);
    ptr_array_unref0(s->networks);
    if (s->options)
        g_variant_unref(s->options);
    g_free(s->dest_backend);
    vmshift_vm_free(s->source_vm);
    g_free(s);
}

static GPtrArray *
copy_mappings(const GPtrArray *src)
{
    GPtrArray *dst = vmshift_list_new((GDestroyNotify)vmshift_mapping_free);
    for (guint i = 0; src && i < src->len; i++) {
        const VmshiftMapping *m = g_ptr_array_index((GPtrArray *)src, i);
        g_ptr_array_add(dst, vmshift_mapping_new(m->key, m->value));
    }
    return dst;
}

VMSHIFT_API VmshiftMigrationSpec *
vmshift_migration_spec_copy(const VmshiftMigrationSpec *src)
{
    VmshiftMigrationSpec *s;

    if (!src)
        return NULL;
    s = NEW(VmshiftMigrationSpec);
    s->type = src->type;
    s->vm = g_strdup(src->vm);
    s->dest_host = g_strdup(src->dest_host);
    s->dest_path = g_strdup(src->dest_path);
    s->disk_paths = copy_mappings(src->disk_paths);
    s->networks = copy_mappings(src->networks);
    s->transfer = src->transfer;
    s->start = src->start;
    s->force = src->force;
    s->options = src->options ? g_variant_ref(src->options) : NULL;
    if (VMSHIFT_HAS_FIELD(src, switchover_at))
        s->switchover_at = src->switchover_at;
    if (VMSHIFT_HAS_FIELD(src, source_vm)) {
        s->dest_backend = g_strdup(src->dest_backend);
        s->source_vm = vmshift_vm_copy(src->source_vm);
    }
    return s;
}

VMSHIFT_API gboolean
vmshift_migration_spec_moves_storage(const VmshiftMigrationSpec *s)
{
    if (!s)
        return FALSE;
    return s->type == VMSHIFT_MIGRATION_STORAGE || s->dest_path != NULL
           || (s->disk_paths && s->disk_paths->len > 0);
}

static const char *
mapping_lookup(const GPtrArray *list, const char *key)
{
    for (guint i = 0; list && key && i < list->len; i++) {
        const VmshiftMapping *m = g_ptr_array_index((GPtrArray *)list, i);
        if (g_strcmp0(m->key, key) == 0)
            return m->value;
    }
    return NULL;
}

VMSHIFT_API const char *
vmshift_migration_spec_disk_dir(const VmshiftMigrationSpec *s, const char *disk_id)
{
    const char *dir;

    if (!s)
        return NULL;
    dir = mapping_lookup(s->disk_paths, disk_id);
    return dir ? dir : s->dest_path;
}

VMSHIFT_API const char *
vmshift_migration_spec_network_for(const VmshiftMigrationSpec *s, const char *nic_id)
{
    return s ? mapping_lookup(s->networks, nic_id) : NULL;
}

/* ---- change ---- */
VMSHIFT_API VmshiftChange *
vmshift_change_new(VmshiftChangeKind kind, const char *vm, const char *subject, const char *detail)
{
    VmshiftChange *c = NEW(VmshiftChange);
    c->kind = kind;
    c->vm = g_strdup(vm);
    c->subject = g_strdup(subject);
    c->detail = g_strdup(detail);
    return c;
}

VMSHIFT_API void
vmshift_change_free(VmshiftChange *c)
{
    if (!c)
        return;
    g_free(c->vm);
    g_free(c->subject);
    g_free(c->detail);
    g_free(c);
}

/* ---- guest nic ---- */
VMSHIFT_API VmshiftGuestNic *
vmshift_guest_nic_new(void)
{
    return NEW(VmshiftGuestNic);
}

VMSHIFT_API void
vmshift_guest_nic_free(VmshiftGuestNic *n)
{
    if (!n)
        return;
    g_free(n->nic);
    g_free(n->address);
    g_free(n->gateway);
    ptr_array_unref0(n->dns);
    g_free(n);
}

/* ---- names ---- */
#define NAME_TABLE(fn, table, fallback)                                     \
    VMSHIFT_API const char *fn(guint32 v)                                   \
    {                                                                       \
        return v < G_N_ELEMENTS(table) && table[v] ? table[v] : (fallback); \
    }

static const char *const power_names[] = { "unknown", "running", "stopped", "paused", "suspended" };
static const char *const host_status_names[] = { "ok", "limited", "maintenance", "disconnected",
                                                 "unknown" };
static const char *const severity_names[] = { "info", "warning", "error" };
static const char *const migration_type_names[] = { "live", "cold", "storage" };
static const char *const change_kind_names[] = {
    "disk-added", "disk-removed", "snapshot-taken", "snapshot-removed", "power", "host", "other"
};

NAME_TABLE(vmshift_power_state_name, power_names, "unknown")
NAME_TABLE(vmshift_host_status_name, host_status_names, "unknown")
NAME_TABLE(vmshift_severity_name, severity_names, "unknown")
NAME_TABLE(vmshift_migration_type_name, migration_type_names, "unknown")
NAME_TABLE(vmshift_change_kind_name, change_kind_names, "other")
