/* Unit tests of the SDK core: errors, objects, jobs, configuration views,
 * credentials files. */
#include "config.h"

#include <glib/gstdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <vmshift/vmshift.h>

/* ---- errors ---- */

static void
test_error_names(void)
{
    g_assert_cmpstr(vmshift_error_code_name(VMSHIFT_ERROR_NOT_SUPPORTED), ==, "not-supported");
    g_assert_cmpstr(vmshift_error_code_name(VMSHIFT_ERROR_BUSY), ==, "busy");
    g_assert_cmpstr(vmshift_error_code_name(VMSHIFT_ERROR_INTERRUPTED), ==, "interrupted");
    g_assert_cmpstr(vmshift_error_code_name(0), ==, "unknown");
    g_assert_cmpstr(vmshift_error_code_name(9999), ==, "unknown");
    /* The codes are a stable ABI: programs store them. */
    g_assert_cmpint(VMSHIFT_ERROR_FAILED, ==, 1);
    g_assert_cmpint(VMSHIFT_ERROR_NOT_SUPPORTED, ==, 2);
    g_assert_cmpint(VMSHIFT_ERROR_ABI, ==, 13);
}

static void
test_check_flags(void)
{
    GError *error = NULL;

    g_assert_true(vmshift_check_flags(0, 0, "op", &error));
    g_assert_no_error(error);
    g_assert_true(vmshift_check_flags(1, 3, "op", &error));
    g_assert_false(vmshift_check_flags(4, 3, "migrate", &error));
    g_assert_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_INVALID_ARGUMENT);
    g_assert_nonnull(strstr(error->message, "migrate"));
    g_assert_nonnull(strstr(error->message, "0x4"));
    g_clear_error(&error);
}

/* ---- objects ---- */

static void
test_objects(void)
{
    g_autoptr(VmshiftVm) vm = vmshift_vm_new();
    VmshiftDisk *d = vmshift_disk_new();
    VmshiftNic *n = vmshift_nic_new();
    g_autoptr(VmshiftHost) h = vmshift_host_new();
    g_autoptr(VmshiftFinding) f = vmshift_finding_new(VMSHIFT_SEVERITY_WARNING, "nic-unmapped",
                                                      "net0", "NIC %s has %d", "net0", 2);
    g_autoptr(VmshiftCheckpointState) cs = vmshift_checkpoint_state_new();

    g_assert_cmpuint(vm->struct_size, ==, sizeof(VmshiftVm));
    g_assert_nonnull(vm->disks);
    g_assert_nonnull(vm->nics);
    d->id = g_strdup("vda");
    n->id = g_strdup("net0");
    g_ptr_array_add(vm->disks, d);
    g_ptr_array_add(vm->nics, n);
    g_assert_true(vmshift_vm_find_disk(vm, "vda") == d);
    g_assert_null(vmshift_vm_find_disk(vm, "vdb"));
    g_assert_true(vmshift_vm_find_nic(vm, "net0") == n);
    g_assert_true(VMSHIFT_HAS_FIELD(vm, status_detail));
    g_assert_true(VMSHIFT_HAS_FIELD(h, san_ids));
    g_assert_cmpint(h->cpu_usage_percent, ==, -1);
    g_assert_cmpstr(f->message, ==, "NIC net0 has 2");
    g_assert_cmpstr(f->code, ==, "nic-unmapped");
    g_assert_cmpint(cs->percent, ==, -1);
    g_assert_cmpstr(vmshift_power_state_name(VMSHIFT_POWER_RUNNING), ==, "running");
    g_assert_cmpstr(vmshift_power_state_name(77), ==, "unknown");
    g_assert_cmpstr(vmshift_host_status_name(VMSHIFT_HOST_MAINTENANCE), ==, "maintenance");
    g_assert_cmpstr(vmshift_severity_name(VMSHIFT_SEVERITY_ERROR), ==, "error");
    g_assert_cmpstr(vmshift_migration_type_name(VMSHIFT_MIGRATION_STORAGE), ==, "storage");
    g_assert_cmpstr(vmshift_change_kind_name(VMSHIFT_CHANGE_SNAPSHOT_TAKEN), ==, "snapshot-taken");
    /* NULL is accepted by every free function */
    vmshift_vm_free(NULL);
    vmshift_host_free(NULL);
    vmshift_migration_spec_free(NULL);
}

/* An object allocated by an older, smaller library must not be read past
 * its struct_size. */
static void
test_has_field_old_size(void)
{
    VmshiftVm old = { 0 };

    old.struct_size = G_STRUCT_OFFSET(VmshiftVm, nics);
    g_assert_true(VMSHIFT_HAS_FIELD(&old, disks));
    g_assert_false(VMSHIFT_HAS_FIELD(&old, nics));
    g_assert_false(VMSHIFT_HAS_FIELD(&old, status_detail));
}

/* ---- deep copies (vmshift_vm_copy and its parts) ----
 * Each check below names every member; the assertions on the last member
 * make this test stop compiling when a member is appended, so that the new
 * member gets a check here (and, for a pointer, a copy in sdk/types.c). */
G_STATIC_ASSERT(sizeof(VmshiftVm) == offsetof(VmshiftVm, guest_os) + sizeof(char *));
G_STATIC_ASSERT(sizeof(VmshiftDisk) == offsetof(VmshiftDisk, reserved2) + sizeof(guint32));
G_STATIC_ASSERT(sizeof(VmshiftNic) == offsetof(VmshiftNic, model) + sizeof(char *));

/* @b is a deep copy of the string @a: equal, and not the same memory. */
#define assert_str_copy(a, b)                                                 \
    G_STMT_START                                                              \
    {                                                                         \
        g_assert_cmpstr((a), ==, (b));                                        \
        g_assert_true((a) == NULL || (const void *)(a) != (const void *)(b)); \
    }                                                                         \
    G_STMT_END

static void
check_disk_copy(const VmshiftDisk *a, const VmshiftDisk *b)
{
    g_assert_true(a != b);
    g_assert_cmpuint(b->struct_size, ==, sizeof(VmshiftDisk));
    g_assert_cmpuint(b->reserved0, ==, a->reserved0);
    assert_str_copy(a->id, b->id);
    assert_str_copy(a->path, b->path);
    assert_str_copy(a->format, b->format);
    g_assert_cmpuint(b->capacity, ==, a->capacity);
    g_assert_cmpuint(b->allocation, ==, a->allocation);
    g_assert_cmpuint(b->size_known, ==, a->size_known);
    g_assert_cmpuint(b->reserved1, ==, a->reserved1);
    assert_str_copy(a->volume, b->volume);
    assert_str_copy(a->bus, b->bus);
    g_assert_cmpuint(b->boot_order, ==, a->boot_order);
    g_assert_cmpuint(b->reserved2, ==, a->reserved2);
    if (!a->backing_chain) {
        g_assert_null(b->backing_chain);
        return;
    }
    g_assert_true(b->backing_chain != a->backing_chain);
    g_assert_cmpuint(b->backing_chain->len, ==, a->backing_chain->len);
    for (guint i = 0; i < a->backing_chain->len; i++)
        assert_str_copy((char *)g_ptr_array_index(a->backing_chain, i),
                        (char *)g_ptr_array_index(b->backing_chain, i));
}

static void
check_nic_copy(const VmshiftNic *a, const VmshiftNic *b)
{
    g_assert_true(a != b);
    g_assert_cmpuint(b->struct_size, ==, sizeof(VmshiftNic));
    g_assert_cmpuint(b->reserved0, ==, a->reserved0);
    assert_str_copy(a->id, b->id);
    assert_str_copy(a->mac, b->mac);
    assert_str_copy(a->network, b->network);
    assert_str_copy(a->model, b->model);
}

static VmshiftVm *
full_vm(void)
{
    VmshiftVm *vm = vmshift_vm_new();
    VmshiftDisk *d = vmshift_disk_new();
    VmshiftDisk *d2 = vmshift_disk_new();
    VmshiftNic *n = vmshift_nic_new();

    vm->power_state = VMSHIFT_POWER_PAUSED;
    vm->id = g_strdup("uuid-1");
    vm->name = g_strdup("web1");
    vm->host = g_strdup("hostA");
    vm->vcpus = 3;
    vm->snapshot_count = 2;
    vm->memory = G_GUINT64_CONSTANT(5) << 30;
    vm->config_path = g_strdup("/srv/vms/web1");
    vm->status_detail = g_strdup("consolidation needed");
    vm->firmware = VMSHIFT_FIRMWARE_UEFI;
    vm->reserved1 = 5;
    vm->guest_os = g_strdup("linux");
    d->reserved0 = 7;
    d->id = g_strdup("vda");
    d->path = g_strdup("/srv/vms/web1/vda.qcow2");
    d->format = g_strdup("qcow2");
    d->capacity = 10 << 20;
    d->allocation = 3 << 20;
    d->size_known = VMSHIFT_DISK_CAPACITY_KNOWN | VMSHIFT_DISK_ALLOCATION_KNOWN;
    d->volume = g_strdup("pool1");
    d->bus = g_strdup("scsi");
    d->boot_order = 1;
    d->reserved2 = 4;
    d->backing_chain = vmshift_string_list_new();
    g_ptr_array_add(d->backing_chain, g_strdup("/srv/base.qcow2"));
    g_ptr_array_add(d->backing_chain, g_strdup("/srv/base0.qcow2"));
    d2->id = g_strdup("vdb"); /* everything else NULL or 0 */
    n->reserved0 = 9;
    n->id = g_strdup("net0");
    n->mac = g_strdup("52:54:00:12:34:56");
    n->network = g_strdup("br0");
    n->model = g_strdup("virtio-net-pci");
    g_ptr_array_add(vm->disks, d);
    g_ptr_array_add(vm->disks, d2);
    g_ptr_array_add(vm->nics, n);
    return vm;
}

static void
test_vm_copy(void)
{
    g_autoptr(VmshiftVm) vm = full_vm();
    g_autoptr(VmshiftVm) c = vmshift_vm_copy(vm);
    g_autoptr(VmshiftVm) empty = vmshift_vm_new();
    g_autoptr(VmshiftVm) ec = NULL;

    g_assert_nonnull(c);
    g_assert_true(c != vm);
    g_assert_cmpuint(c->struct_size, ==, sizeof(VmshiftVm));
    g_assert_cmpuint(c->power_state, ==, vm->power_state);
    assert_str_copy(vm->id, c->id);
    assert_str_copy(vm->name, c->name);
    assert_str_copy(vm->host, c->host);
    g_assert_cmpuint(c->vcpus, ==, vm->vcpus);
    g_assert_cmpuint(c->snapshot_count, ==, vm->snapshot_count);
    g_assert_cmpuint(c->memory, ==, vm->memory);
    assert_str_copy(vm->config_path, c->config_path);
    g_assert_true(c->disks != vm->disks && c->nics != vm->nics);
    g_assert_cmpuint(c->disks->len, ==, 2);
    g_assert_cmpuint(c->nics->len, ==, 1);
    for (guint i = 0; i < vm->disks->len; i++)
        check_disk_copy(g_ptr_array_index(vm->disks, i), g_ptr_array_index(c->disks, i));
    check_nic_copy(g_ptr_array_index(vm->nics, 0), g_ptr_array_index(c->nics, 0));
    assert_str_copy(vm->status_detail, c->status_detail);
    g_assert_cmpuint(c->firmware, ==, vm->firmware);
    g_assert_cmpuint(c->reserved1, ==, vm->reserved1);
    assert_str_copy(vm->guest_os, c->guest_os);
    /* the copy's lists own their elements: freeing the original first
     * leaves the copy whole (ASan and G_DEBUG=gc-friendly would see) */
    g_clear_pointer(&vm, vmshift_vm_free);
    g_assert_cmpstr(((VmshiftDisk *)g_ptr_array_index(c->disks, 0))->path, ==,
                    "/srv/vms/web1/vda.qcow2");
    g_assert_cmpstr(
        g_ptr_array_index(((VmshiftDisk *)g_ptr_array_index(c->disks, 0))->backing_chain, 1), ==,
        "/srv/base0.qcow2");

    /* NULL lists (a plugin's own) become empty ones; NULL copies to NULL */
    g_clear_pointer(&empty->disks, g_ptr_array_unref);
    g_clear_pointer(&empty->nics, g_ptr_array_unref);
    ec = vmshift_vm_copy(empty);
    g_assert_nonnull(ec->disks);
    g_assert_nonnull(ec->nics);
    g_assert_cmpuint(ec->disks->len + ec->nics->len, ==, 0);
    g_assert_null(ec->name);
    g_assert_null(vmshift_vm_copy(NULL));
    g_assert_null(vmshift_disk_copy(NULL));
    g_assert_null(vmshift_nic_copy(NULL));
}

static void
test_spec(void)
{
    g_autoptr(VmshiftMigrationSpec) s = vmshift_migration_spec_new();
    g_autoptr(VmshiftMigrationSpec) c = NULL;

    s->vm = g_strdup("web1");
    s->dest_host = g_strdup("b");
    g_assert_false(vmshift_migration_spec_moves_storage(s));
    g_assert_null(vmshift_migration_spec_disk_dir(s, "vda"));
    g_ptr_array_add(s->disk_paths, vmshift_mapping_new("vdb", "/fast"));
    g_ptr_array_add(s->networks, vmshift_mapping_new("net0", "prod"));
    g_assert_true(vmshift_migration_spec_moves_storage(s));
    s->dest_path = g_strdup("/slow");
    s->options = g_variant_ref_sink(g_variant_new_parsed("{'postcopy': <true>}"));
    g_assert_cmpstr(vmshift_migration_spec_disk_dir(s, "vdb"), ==, "/fast");
    g_assert_cmpstr(vmshift_migration_spec_disk_dir(s, "vda"), ==, "/slow");
    g_assert_cmpstr(vmshift_migration_spec_network_for(s, "net0"), ==, "prod");
    g_assert_null(vmshift_migration_spec_network_for(s, "net1"));

    c = vmshift_migration_spec_copy(s);
    g_assert_true(c != s);
    g_assert_cmpstr(c->vm, ==, "web1");
    g_assert_cmpstr(c->dest_path, ==, "/slow");
    g_assert_cmpuint(c->disk_paths->len, ==, 1);
    g_assert_true(c->disk_paths->pdata[0] != s->disk_paths->pdata[0]);
    g_assert_cmpstr(vmshift_migration_spec_network_for(c, "net0"), ==, "prod");
    g_assert_true(g_variant_equal(c->options, s->options));
    g_assert_null(c->dest_backend);
    g_assert_null(c->source_vm);

    /* ABI 1.4: a move between backends carries the source's description */
    g_clear_pointer(&c, vmshift_migration_spec_free);
    s->dest_backend = g_strdup("kvm1");
    s->source_vm = full_vm();
    c = vmshift_migration_spec_copy(s);
    g_assert_cmpstr(c->dest_backend, ==, "kvm1");
    g_assert_true(c->source_vm != s->source_vm);
    g_assert_cmpstr(c->source_vm->guest_os, ==, "linux");
    g_assert_cmpuint(c->source_vm->disks->len, ==, 2);
}

/* ---- jobs ---- */

typedef struct {
    GString *trace;
    gboolean fail_phase;
    gboolean fail_save;
    guint changed;
} HookState;

static gboolean
hook_phase(VmshiftJob *job, VmshiftPhase phase, gpointer data, GError **error)
{
    HookState *hs = data;

    /* The hook runs before the phase counts as entered. */
    g_string_append_printf(hs->trace, "phase:%s(was %s);", vmshift_phase_name(phase),
                           vmshift_phase_name(vmshift_job_get_phase(job)));
    if (hs->fail_phase) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_FAILED, "journal is full");
        return FALSE;
    }
    return TRUE;
}

static void
hook_changed(VmshiftJob *job, gpointer data)
{
    ((HookState *)data)->changed++;
}

static void
hook_log(VmshiftJob *job, VmshiftLogLevel level, const char *line, gpointer data)
{
    g_string_append_printf(((HookState *)data)->trace, "log%d:%s;", level, line);
}

static gboolean
hook_save(VmshiftJob *job, const char *key, const char *value, gpointer data, GError **error)
{
    HookState *hs = data;

    g_string_append_printf(hs->trace, "save:%s=%s;", key, value ? value : "(null)");
    if (hs->fail_save) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_FAILED, "disk full");
        return FALSE;
    }
    return TRUE;
}

static const VmshiftJobHooks test_hooks = {
    .struct_size = sizeof(VmshiftJobHooks),
    .phase = hook_phase,
    .changed = hook_changed,
    .log = hook_log,
    .save = hook_save,
};

static void
test_job_hooks(void)
{
    HookState hs = { g_string_new(NULL), FALSE, FALSE, 0 };
    g_autoptr(VmshiftMigrationSpec) spec = vmshift_migration_spec_new();
    VmshiftJob *job;
    VmshiftJobProgress p;
    GError *error = NULL;
    g_autofree char *saved = NULL;
    GHashTable *results;

    spec->vm = g_strdup("web1");
    job = vmshift_job_new("j1", spec, &test_hooks, &hs);
    g_assert_cmpstr(vmshift_job_get_id(job), ==, "j1");
    g_assert_cmpstr(vmshift_job_get_spec(job)->vm, ==, "web1");
    g_assert_true(vmshift_job_get_spec(job) != spec); /* copied */

    g_assert_true(vmshift_job_set_phase(job, VMSHIFT_PHASE_PREPARE, &error));
    g_assert_no_error(error);
    g_assert_cmpint(vmshift_job_get_phase(job), ==, VMSHIFT_PHASE_PREPARE);
    vmshift_job_log(job, VMSHIFT_LOG_INFO, "hello %d", 42);
    g_assert_true(vmshift_job_save(job, "pid", "123", &error));
    saved = vmshift_job_get_saved(job, "pid");
    g_assert_cmpstr(saved, ==, "123");
    g_assert_cmpstr(hs.trace->str, ==, "phase:prepare(was none);log1:hello 42;save:pid=123;");

    /* A failing journal write fails the phase, which is not entered. */
    hs.fail_phase = TRUE;
    g_assert_false(vmshift_job_set_phase(job, VMSHIFT_PHASE_TRANSFER, &error));
    g_assert_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_FAILED);
    g_clear_error(&error);
    g_assert_cmpint(vmshift_job_get_phase(job), ==, VMSHIFT_PHASE_PREPARE);
    hs.fail_save = TRUE;
    g_assert_false(vmshift_job_save(job, "tmp", "x", &error));
    g_clear_error(&error);
    g_assert_null(vmshift_job_get_saved(job, "tmp"));

    vmshift_job_set_bytes(job, 50, 200);
    vmshift_job_get_progress(job, &p);
    g_assert_cmpfloat(p.percent, ==, 25.0); /* derived from bytes */
    g_assert_cmpuint(p.bytes_done, ==, 50);
    vmshift_job_progress_clear(&p);
    vmshift_job_set_progress(job, 140);
    vmshift_job_set_location(job, "hostB", "running");
    vmshift_job_set_result(job, "downtime-ms", "12");
    vmshift_job_get_progress(job, &p);
    g_assert_cmpfloat(p.percent, ==, 100.0); /* clamped */
    g_assert_cmpstr(p.location_host, ==, "hostB");
    g_assert_cmpstr(p.location_detail, ==, "running");
    vmshift_job_progress_clear(&p);
    g_assert_cmpuint(hs.changed, >=, 5);
    results = vmshift_job_get_results(job);
    g_assert_cmpstr(g_hash_table_lookup(results, "downtime-ms"), ==, "12");
    g_hash_table_unref(results);

    g_assert_false(vmshift_job_is_cancelled(job));
    vmshift_job_cancel(job);
    g_assert_true(vmshift_job_is_cancelled(job));
    g_assert_true(g_cancellable_is_cancelled(vmshift_job_get_cancellable(job)));

    vmshift_job_unref(job);
    g_string_free(hs.trace, TRUE);
}

static void
test_job_restore(void)
{
    g_autoptr(GHashTable) saved = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    HookState hs = { g_string_new(NULL), FALSE, FALSE, 0 };
    g_autoptr(VmshiftJob) job = vmshift_job_new("j2", NULL, &test_hooks, &hs);
    g_autofree char *v = NULL;

    g_hash_table_insert(saved, g_strdup("dest-pid"), g_strdup("4242"));
    vmshift_job_restore(job, VMSHIFT_PHASE_SWITCHOVER, saved);
    g_assert_cmpint(vmshift_job_get_phase(job), ==, VMSHIFT_PHASE_SWITCHOVER);
    v = vmshift_job_get_saved(job, "dest-pid");
    g_assert_cmpstr(v, ==, "4242");
    g_assert_null(vmshift_job_get_spec(job));
    g_assert_cmpstr(hs.trace->str, ==, ""); /* restoring does not journal again */
    g_string_free(hs.trace, TRUE);
}

static gpointer
job_hammer(gpointer data)
{
    VmshiftJob *job = data;

    for (guint i = 0; i < 2000; i++) {
        vmshift_job_set_bytes(job, i, 2000);
        vmshift_job_set_result(job, "k", "v");
        if (i % 100 == 0)
            vmshift_job_set_location(job, "h", NULL);
    }
    return NULL;
}

static void
test_job_threads(void)
{
    g_autoptr(VmshiftJob) job = vmshift_job_new("j3", NULL, NULL, NULL);
    GThread *t[4];
    VmshiftJobProgress p;

    for (guint i = 0; i < G_N_ELEMENTS(t); i++)
        t[i] = g_thread_new("hammer", job_hammer, job);
    for (guint i = 0; i < G_N_ELEMENTS(t); i++)
        g_thread_join(t[i]);
    vmshift_job_get_progress(job, &p);
    g_assert_cmpuint(p.bytes_done, ==, 1999);
    g_assert_cmpstr(p.location_host, ==, "h");
    vmshift_job_progress_clear(&p);
}

static void
test_phase_names(void)
{
    for (guint p = VMSHIFT_PHASE_NONE; p <= VMSHIFT_PHASE_DONE; p++)
        g_assert_cmpint(vmshift_phase_from_name(vmshift_phase_name(p)), ==, p);
    g_assert_cmpint(vmshift_phase_from_name("bogus"), ==, VMSHIFT_PHASE_NONE);
}

/* ---- configuration views ---- */

static VmshiftConfig *
make_config(const char *text)
{
    g_autoptr(GKeyFile) kf = g_key_file_new();

    g_assert_true(g_key_file_load_from_data(kf, text, -1, G_KEY_FILE_NONE, NULL));
    return vmshift_config_new("b1", kf, "backend b1", "/etc/vmshift/backends.d/b1.conf",
                              "/var/lib/vmshift/b1");
}

static void
test_config(void)
{
    g_autoptr(VmshiftConfig) c = make_config("[backend b1]\nplugin=esx\nurl= https://vc \n"
                                             "insecure=yes\nbad=maybe\ntimeout=30\n"
                                             "hosts=a; b ,,c\nbig=99999\n");
    g_autofree char *url = vmshift_config_get_string(c, "url", NULL);
    g_autofree char *def = vmshift_config_get_string(c, "nope", "dflt");
    g_autofree char *missing = NULL;
    g_auto(GStrv) hosts = vmshift_config_get_string_list(c, "hosts");
    g_auto(GStrv) keys = vmshift_config_get_keys(c);
    GError *error = NULL;
    gboolean b;
    gint64 n;

    g_assert_cmpstr(vmshift_config_get_backend(c), ==, "b1");
    g_assert_cmpstr(vmshift_config_get_state_dir(c), ==, "/var/lib/vmshift/b1");
    g_assert_cmpstr(url, ==, "https://vc");
    g_assert_cmpstr(def, ==, "dflt");
    g_assert_true(vmshift_config_has_key(c, "url"));
    g_assert_false(vmshift_config_has_key(c, "nope"));
    g_assert_true(vmshift_config_get_boolean(c, "insecure", FALSE, &b, &error));
    g_assert_true(b);
    g_assert_true(vmshift_config_get_boolean(c, "absent", TRUE, &b, &error));
    g_assert_true(b);
    g_assert_false(vmshift_config_get_boolean(c, "bad", FALSE, &b, &error));
    g_assert_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_CONFIG);
    g_assert_cmpstr(error->message, ==,
                    "/etc/vmshift/backends.d/b1.conf: backend 'b1': key 'bad' must be true or "
                    "false, not 'maybe'");
    g_clear_error(&error);
    g_assert_true(vmshift_config_get_int(c, "timeout", 5, 1, 3600, &n, &error));
    g_assert_cmpint(n, ==, 30);
    g_assert_false(vmshift_config_get_int(c, "big", 5, 1, 3600, &n, &error));
    g_assert_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_CONFIG);
    g_assert_nonnull(strstr(error->message, "'big'"));
    g_clear_error(&error);
    missing = vmshift_config_require_string(c, "datacenter", &error);
    g_assert_null(missing);
    g_assert_cmpstr(error->message, ==,
                    "/etc/vmshift/backends.d/b1.conf: backend 'b1': missing key 'datacenter'");
    g_clear_error(&error);
    g_assert_cmpuint(g_strv_length(hosts), ==, 3);
    g_assert_cmpstr(hosts[1], ==, "b");
    g_assert_cmpstr(hosts[2], ==, "c");
    g_assert_true(g_strv_contains((const char *const *)keys, "plugin"));
}

/* ---- credentials ---- */

static char *
write_file(const char *dir, const char *name, const char *text, mode_t mode)
{
    char *path = g_build_filename(dir, name, NULL);

    g_assert_true(g_file_set_contents(path, text, -1, NULL));
    g_assert_cmpint(g_chmod(path, mode), ==, 0);
    return path;
}

static void
test_credentials(void)
{
    g_autofree char *dir = g_dir_make_tmp("vmshift-cred-XXXXXX", NULL);
    g_autofree char *good = write_file(dir, "good",
                                       "# comment\nuser = admin\npassword=s3cret pw\n"
                                       "domain=CORP\n",
                                       0600);
    g_autofree char *open = write_file(dir, "open", "user=a\npassword=hunter2\n", 0644);
    g_autofree char *grp = write_file(dir, "grp", "user=a\npassword=hunter2\n", 0640);
    g_autofree char *nopw = write_file(dir, "nopw", "user=a\n", 0600);
    g_autofree char *junk = write_file(dir, "junk", "user=a\npassword=hunter2\ntoken=x\n", 0600);
    g_autofree char *link = g_build_filename(dir, "link", NULL);
    g_autofree char *cfgtext = NULL;
    g_autoptr(VmshiftConfig) c = NULL;
    VmshiftCredentials *cr;
    GError *error = NULL;

    cr = vmshift_credentials_read_file(good, &error);
    g_assert_no_error(error);
    g_assert_cmpstr(cr->user, ==, "admin");
    g_assert_cmpstr(cr->password, ==, "s3cret pw");
    g_assert_cmpstr(cr->domain, ==, "CORP");
    vmshift_credentials_free(cr);
    g_assert_true(vmshift_credentials_check_file(good, &error));

    /* group- or world-readable: refused, naming the file, never the secret */
    for (const char *const *p = (const char *const[]){ open, grp, NULL }; *p; p++) {
        g_assert_null(vmshift_credentials_read_file(*p, &error));
        g_assert_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_PERMISSION);
        g_assert_nonnull(strstr(error->message, *p));
        g_assert_null(strstr(error->message, "hunter2"));
        g_clear_error(&error);
        g_assert_false(vmshift_credentials_check_file(*p, &error));
        g_assert_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_PERMISSION);
        g_clear_error(&error);
    }
    g_assert_null(vmshift_credentials_read_file(nopw, &error));
    g_assert_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_CONFIG);
    g_clear_error(&error);
    g_assert_null(vmshift_credentials_read_file(junk, &error));
    g_assert_nonnull(strstr(error->message, "token"));
    g_assert_null(strstr(error->message, "hunter2"));
    g_clear_error(&error);
    /* a symlink is not followed */
    g_assert_cmpint(symlink(good, link), ==, 0);
    g_assert_null(vmshift_credentials_read_file(link, &error));
    g_assert_nonnull(error);
    g_clear_error(&error);

    /* relative paths are relative to the config file */
    cfgtext = g_strdup("[backend b1]\ncredentials=good\n");
    {
        g_autoptr(GKeyFile) kf = g_key_file_new();
        g_autofree char *src = g_build_filename(dir, "b1.conf", NULL);
        g_assert_true(g_key_file_load_from_data(kf, cfgtext, -1, G_KEY_FILE_NONE, NULL));
        c = vmshift_config_new("b1", kf, "backend b1", src, NULL);
    }
    cr = vmshift_config_read_credentials(c, "credentials", &error);
    g_assert_no_error(error);
    g_assert_cmpstr(cr->user, ==, "admin");
    vmshift_credentials_free(cr);

    for (const char *const *p = (const char *const[]){ good, open, grp, nopw, junk, link, NULL };
         *p; p++)
        g_unlink(*p);
    g_rmdir(dir);
}

int
main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/sdk/error/names", test_error_names);
    g_test_add_func("/sdk/error/check-flags", test_check_flags);
    g_test_add_func("/sdk/types/objects", test_objects);
    g_test_add_func("/sdk/types/has-field-old-size", test_has_field_old_size);
    g_test_add_func("/sdk/types/spec", test_spec);
    g_test_add_func("/sdk/types/vm-copy", test_vm_copy);
    g_test_add_func("/sdk/job/hooks", test_job_hooks);
    g_test_add_func("/sdk/job/restore", test_job_restore);
    g_test_add_func("/sdk/job/threads", test_job_threads);
    g_test_add_func("/sdk/job/phase-names", test_phase_names);
    g_test_add_func("/sdk/config/values", test_config);
    g_test_add_func("/sdk/config/credentials", test_credentials);
    return g_test_run();
}
