/* kvm-drive: drives the kvm plugin through the SDK, as the host does (dlopen
 * the .so, vmshift_config_new, a VmshiftJob with hooks that journal every
 * phase and saved key to a file), for the integration tests and the bench.
 *
 *   kvm-drive --config FILE [--plugin SO] [--journal FILE] COMMAND ARGS
 *     hosts | vms [HOST] | networks | volumes | vm VM
 *     check VM --to HOST [migrate options]
 *     migrate VM --to HOST [--live|--cold] [--path DIR] [--disk-path D=DIR]...
 *             [--network NIC=NET]... [--start] [--force] [--option KEY=VALUE]...
 *             [--cancel-in PHASE [--cancel-delay-ms N]] [--die-in PHASE]
 *     migrate-storage VM --path DIR [--disk-path D=DIR]...
 *     merge-status VM | acl VM | repair
 *     start RUN-DIR VM       (start a defined VM; not a plugin operation)
 *     start-incoming RUN-DIR VM  (the same with -incoming defer, for baselines)
 *     qmp RUN-DIR VM CMD [JSON]  (one QMP command through the SDK client)
 *     fake-qmp SOCKET MODE   (a misbehaving QMP peer; see below)
 *
 * Results go to stdout as KEY=VALUE lines; progress and log lines to stderr.
 * Exit status 0 on success, 1 on failure (an "error: CODE: MESSAGE" line),
 * 2 on bad usage, 3 when cancelled.
 */
#include "config.h"

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <gmodule.h>
#include <vmshift/vmshift.h>

#include "plugins/kvm/kvm.h"

typedef struct {
    char *journal;
    GKeyFile *jk;
    VmshiftPhase cancel_in;
    VmshiftPhase die_in;
    guint cancel_delay_ms;
    VmshiftJob *job;
} Drive;

static void
journal_write(Drive *d)
{
    if (!d->journal)
        return;
    gsize len = 0;
    char *data = g_key_file_to_data(d->jk, &len, NULL);
    char *tmp = g_strconcat(d->journal, ".tmp", NULL);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd >= 0) {
        if (write(fd, data, len) != (ssize_t)len)
            g_printerr("kvm-drive: short journal write\n");
        fsync(fd);
        close(fd);
        rename(tmp, d->journal);
    }
    g_free(tmp);
    g_free(data);
}

static gpointer
cancel_later(gpointer data)
{
    Drive *d = data;
    g_usleep((gulong)d->cancel_delay_ms * 1000);
    g_printerr("kvm-drive: cancelling\n");
    vmshift_job_cancel(d->job);
    return NULL;
}

static gboolean
hook_phase(VmshiftJob *job, VmshiftPhase phase, gpointer user_data, GError **error)
{
    (void)job;
    (void)error;
    Drive *d = user_data;
    g_printerr("PHASE %s\n", vmshift_phase_name(phase));
    g_key_file_set_string(d->jk, "job", "phase", vmshift_phase_name(phase));
    journal_write(d);
    if (d->die_in && phase == d->die_in) {
        /* simulate `kill -9` of the host process right at this point */
        g_printerr("kvm-drive: dying in phase %s\n", vmshift_phase_name(phase));
        raise(SIGKILL);
    }
    if (d->cancel_in && phase == d->cancel_in) {
        if (d->cancel_delay_ms == 0)
            vmshift_job_cancel(d->job);
        else
            g_thread_unref(g_thread_new("cancel", cancel_later, d));
    }
    return TRUE;
}

static void
hook_log(VmshiftJob *job, VmshiftLogLevel level, const char *line, gpointer user_data)
{
    (void)job;
    (void)user_data;
    static const char *lv[] = { "debug", "info", "warning", "error" };
    g_printerr("LOG %s %s\n", lv[level <= 3 ? level : 0], line);
}

static gboolean
hook_save(VmshiftJob *job, const char *key, const char *value, gpointer user_data, GError **error)
{
    (void)job;
    (void)error;
    Drive *d = user_data;
    if (value)
        g_key_file_set_string(d->jk, "saved", key, value);
    else
        g_key_file_remove_key(d->jk, "saved", key, NULL);
    journal_write(d);
    return TRUE;
}

static const VmshiftJobHooks hooks = {
    .struct_size = sizeof(VmshiftJobHooks),
    .phase = hook_phase,
    .log = hook_log,
    .save = hook_save,
};

static int
fail(GError *e)
{
    if (g_error_matches(e, G_IO_ERROR, G_IO_ERROR_CANCELLED)) {
        printf("error=cancelled\n");
        g_printerr("error: cancelled: %s\n", e->message);
        g_error_free(e);
        return 3;
    }
    printf("error=%s\n", e->domain == VMSHIFT_ERROR ? vmshift_error_code_name(e->code) : "other");
    g_printerr("error: %s: %s\n",
               e->domain == VMSHIFT_ERROR ? vmshift_error_code_name(e->code) : "other", e->message);
    g_error_free(e);
    return 1;
}

static void
print_results(VmshiftJob *job)
{
    GHashTable *r = vmshift_job_get_results(job);
    GHashTableIter it;
    gpointer k, v;
    g_hash_table_iter_init(&it, r);
    while (g_hash_table_iter_next(&it, &k, &v))
        printf("%s=%s\n", (char *)k, (char *)v);
    g_hash_table_unref(r);
    VmshiftJobProgress p;
    vmshift_job_get_progress(job, &p);
    printf("location=%s\n", p.location_host ? p.location_host : "");
    printf("location-detail=%s\n", p.location_detail ? p.location_detail : "");
    vmshift_job_progress_clear(&p);
}

static void
print_vm(VmshiftVm *vm)
{
    printf("vm %s host=%s state=%s vcpus=%u memory=%" G_GUINT64_FORMAT "\n", vm->name, vm->host,
           vmshift_power_state_name(vm->power_state), vm->vcpus, vm->memory >> 20);
    for (guint i = 0; i < vm->disks->len; i++) {
        VmshiftDisk *d = vm->disks->pdata[i];
        printf("  disk %s path=%s format=%s capacity=%" G_GUINT64_FORMAT " backing=%u\n", d->id,
               d->path, d->format, d->capacity, d->backing_chain ? d->backing_chain->len : 0);
    }
    for (guint i = 0; i < vm->nics->len; i++) {
        VmshiftNic *n = vm->nics->pdata[i];
        printf("  nic %s mac=%s network=%s\n", n->id, n->mac, n->network);
    }
}

int
main(int argc, char **argv)
{
    g_autofree char *config = NULL, *plugin = NULL, *journal = NULL, *to = NULL, *path = NULL;
    g_autofree char *cancel_in = NULL, *die_in = NULL;
    g_auto(GStrv) disk_paths = NULL, networks = NULL, options = NULL;
    gboolean live = FALSE, cold = FALSE, start = FALSE, force = FALSE;
    int cancel_delay = 0;
    GOptionEntry entries[] = {
        { "config", 0, 0, G_OPTION_ARG_FILENAME, &config, "backend config file", "FILE" },
        { "plugin", 0, 0, G_OPTION_ARG_FILENAME, &plugin, "plugin .so", "SO" },
        { "journal", 0, 0, G_OPTION_ARG_FILENAME, &journal, "journal file", "FILE" },
        { "to", 0, 0, G_OPTION_ARG_STRING, &to, "destination host", "HOST" },
        { "path", 0, 0, G_OPTION_ARG_FILENAME, &path, "destination directory", "DIR" },
        { "disk-path", 0, 0, G_OPTION_ARG_STRING_ARRAY, &disk_paths, "disk directory", "D=DIR" },
        { "network", 0, 0, G_OPTION_ARG_STRING_ARRAY, &networks, "NIC mapping", "NIC=NET" },
        { "option", 0, 0, G_OPTION_ARG_STRING_ARRAY, &options, "tuning option", "K=V" },
        { "live", 0, 0, G_OPTION_ARG_NONE, &live, "live migration", NULL },
        { "cold", 0, 0, G_OPTION_ARG_NONE, &cold, "cold migration", NULL },
        { "start", 0, 0, G_OPTION_ARG_NONE, &start, "start after cold migration", NULL },
        { "force", 0, 0, G_OPTION_ARG_NONE, &force, "accept warnings", NULL },
        { "cancel-in", 0, 0, G_OPTION_ARG_STRING, &cancel_in, "cancel in this phase", "PHASE" },
        { "cancel-delay-ms", 0, 0, G_OPTION_ARG_INT, &cancel_delay, "after this delay", "MS" },
        { "die-in", 0, 0, G_OPTION_ARG_STRING, &die_in, "SIGKILL itself entering PHASE", "PHASE" },
        { NULL, 0, 0, 0, NULL, NULL, NULL },
    };
    GError *error = NULL;
    GOptionContext *ctx = g_option_context_new("COMMAND [ARGS]");
    g_option_context_add_main_entries(ctx, entries, NULL);
    if (!g_option_context_parse(ctx, &argc, &argv, &error) || argc < 2) {
        g_printerr("usage: kvm-drive --config FILE COMMAND ... (%s)\n",
                   error ? error->message : "no command");
        return 2;
    }
    g_option_context_free(ctx);
    setvbuf(stdout, NULL, _IOLBF, 0);
    const char *cmd = argv[1];

    if (!strcmp(cmd, "start") || !strcmp(cmd, "start-incoming")) {
        if (argc < 4)
            return 2;
        KvmHost *h = kvm_host_parse("local", argv[2], &error);
        KvmVmDef *def = NULL;
        if (!h || !kvm_host_load(h, &error) || !(def = kvm_vm_def_load(h, argv[3], &error))
            || !kvm_vm_start(h, def, strcmp(cmd, "start") ? KVM_START_INCOMING : KVM_START_NORMAL,
                             NULL, &error))
            return fail(error);
        printf("started=%s\n", def->name);
        kvm_vm_def_free(def);
        kvm_host_free(h);
        return 0;
    }

    if (!strcmp(cmd, "fake-qmp")) {
        /* fake-qmp SOCKET MODE: a bad QMP peer for the tests, serving each
         * connection the same way until killed. MODE: garbage (malformed
         * JSON after the greeting), drop (closes in the middle of a reply),
         * refuse (error reply to qmp_capabilities), silent (no greeting). */
        if (argc < 4)
            return 2;
        const char *mode = argv[3];
        int l = socket(AF_UNIX, SOCK_STREAM, 0);
        struct sockaddr_un sun = { .sun_family = AF_UNIX };
        g_strlcpy(sun.sun_path, argv[2], sizeof sun.sun_path);
        unlink(argv[2]);
        if (l < 0 || bind(l, (struct sockaddr *)&sun, sizeof sun) || listen(l, 4)) {
            perror("fake-qmp");
            return 1;
        }
        static const char greet[] = "{\"QMP\": {\"version\": {\"qemu\": {\"micro\": 0, "
                                    "\"minor\": 2, \"major\": 7}}, \"capabilities\": []}}\r\n";
        for (;;) {
            int c = accept(l, NULL, NULL);
            if (c < 0)
                continue;
            char buf[4096];
            if (strcmp(mode, "silent")) {
                if (write(c, greet, sizeof greet - 1) < 0)
                    goto next;
                if (read(c, buf, sizeof buf) <= 0) /* qmp_capabilities */
                    goto next;
                const char *ans = "{\"return\": {}, \"id\": \"vmshift-1\"}\r\n";
                if (!strcmp(mode, "refuse"))
                    ans = "{\"error\": {\"class\": \"GenericError\", \"desc\": "
                          "\"capabilities refused\"}, \"id\": \"vmshift-1\"}\r\n";
                if (write(c, ans, strlen(ans)) < 0 || read(c, buf, sizeof buf) <= 0)
                    goto next;
                if (!strcmp(mode, "garbage"))
                    ans = "{\"return\": {\"status\": runn}}\r\n";
                else
                    ans = "{\"return\": {\"status\": \"running\", \"ru";
                if (write(c, ans, strlen(ans)) < 0)
                    goto next;
            } else {
                g_usleep(3 * G_USEC_PER_SEC);
            }
next:
            close(c);
        }
    }

    if (!strcmp(cmd, "qmp")) {
        /* qmp RUN-DIR VM COMMAND [JSON-ARGS]: one QMP command, reply on stdout */
        if (argc < 5)
            return 2;
        KvmHost *h = kvm_host_parse("local", argv[2], &error);
        if (!h || !kvm_host_load(h, &error))
            return fail(error);
        VmshiftQmp *q = kvm_vm_qmp(h, argv[3], 5000, NULL, &error);
        if (!q)
            return fail(error);
        json_object *args = NULL;
        if (argc > 5 && !(args = json_tokener_parse(argv[5]))) {
            g_printerr("kvm-drive: bad JSON arguments\n");
            return 2;
        }
        json_object *r = vmshift_qmp_execute(q, argv[4], args, 30000, &error);
        if (!r)
            return fail(error);
        printf("%s\n", json_object_to_json_string_ext(r, JSON_C_TO_STRING_PLAIN));
        json_object_put(r);
        vmshift_qmp_free(q);
        kvm_host_free(h);
        return 0;
    }

    if (!config) {
        g_printerr("kvm-drive: --config is required\n");
        return 2;
    }
    if (!plugin) {
        const char *dir = g_getenv("VMSHIFT_BUILDDIR");
        plugin = g_build_filename(dir ? dir : ".", "plugins", "kvm", ".libs", "kvm.so", NULL);
    }
    GModule *mod = g_module_open(plugin, G_MODULE_BIND_LOCAL);
    if (!mod) {
        g_printerr("kvm-drive: cannot load %s: %s\n", plugin, g_module_error());
        return 1;
    }
    VmshiftPluginEntryFunc entry = NULL;
    if (!g_module_symbol(mod, VMSHIFT_PLUGIN_ENTRY_SYMBOL, (gpointer *)&entry) || !entry) {
        g_printerr("kvm-drive: %s has no entry point\n", plugin);
        return 1;
    }
    const VmshiftPluginDescriptor *desc = entry();
    const VmshiftBackendOps *ops = desc->ops;

    GKeyFile *kf = g_key_file_new();
    if (!g_key_file_load_from_file(kf, config, G_KEY_FILE_NONE, &error))
        return fail(error);
    char **groups = g_key_file_get_groups(kf, NULL);
    const char *group = NULL;
    for (char **g = groups; g && *g; g++)
        if (g_str_has_prefix(*g, "backend "))
            group = *g;
    if (!group) {
        g_printerr("kvm-drive: %s has no [backend NAME] group\n", config);
        return 2;
    }
    char *state_dir = g_build_filename(g_get_tmp_dir(), "kvm-drive-state", NULL);
    g_mkdir_with_parents(state_dir, 0700);
    VmshiftConfig *cfg = vmshift_config_new(group + 8, kf, group, config, state_dir);
    VmshiftBackend *be = ops->open(cfg, 0, &error);
    if (!be)
        return fail(error);
    int rc = 0;

    Drive d = { .journal = journal, .jk = g_key_file_new() };
    if (journal && !strcmp(cmd, "repair"))
        g_key_file_load_from_file(d.jk, journal, G_KEY_FILE_NONE, NULL);

    VmshiftMigrationSpec *spec = vmshift_migration_spec_new();
    spec->vm = g_strdup(argc > 2 ? argv[2] : "");
    spec->dest_host = g_strdup(to);
    spec->dest_path = g_strdup(path);
    spec->type = cold ? VMSHIFT_MIGRATION_COLD : VMSHIFT_MIGRATION_LIVE;
    if (!strcmp(cmd, "migrate-storage"))
        spec->type = VMSHIFT_MIGRATION_STORAGE;
    spec->start = start;
    spec->force = force;
    for (char **p = disk_paths; p && *p; p++) {
        char *eq = strchr(*p, '=');
        if (eq) {
            *eq = '\0';
            g_ptr_array_add(spec->disk_paths, vmshift_mapping_new(*p, eq + 1));
        }
    }
    for (char **p = networks; p && *p; p++) {
        char *eq = strchr(*p, '=');
        if (eq) {
            *eq = '\0';
            g_ptr_array_add(spec->networks, vmshift_mapping_new(*p, eq + 1));
        }
    }
    if (options) {
        GVariantBuilder b;
        g_variant_builder_init(&b, G_VARIANT_TYPE("a{sv}"));
        for (char **p = options; *p; p++) {
            char *eq = strchr(*p, '=');
            if (!eq)
                continue;
            *eq = '\0';
            const char *v = eq + 1;
            if (!strcmp(v, "true") || !strcmp(v, "false"))
                g_variant_builder_add(&b, "{sv}", *p, g_variant_new_boolean(!strcmp(v, "true")));
            else if (g_ascii_isdigit(v[0]))
                g_variant_builder_add(&b, "{sv}", *p,
                                      g_variant_new_uint64(g_ascii_strtoull(v, NULL, 10)));
            else
                g_variant_builder_add(&b, "{sv}", *p, g_variant_new_string(v));
        }
        spec->options = g_variant_ref_sink(g_variant_builder_end(&b));
    }

    if (!strcmp(cmd, "hosts")) {
        GPtrArray *l = ops->list_hosts(be, 0, &error);
        if (!l) {
            rc = fail(error);
            goto done;
        }
        for (guint i = 0; i < l->len; i++) {
            VmshiftHost *h = l->pdata[i];
            printf("host %s status=%s hypervisor=%s memory=%" G_GUINT64_FORMAT " cpus=%u "
                   "cpu-use=%d%s%s\n",
                   h->name, vmshift_host_status_name(h->status),
                   h->hypervisor ? h->hypervisor : "-", h->memory_total >> 20, h->cpu_count,
                   h->cpu_usage_percent, h->status_detail ? " detail=" : "",
                   h->status_detail ? h->status_detail : "");
        }
        g_ptr_array_unref(l);
    } else if (!strcmp(cmd, "vms")) {
        GPtrArray *l = ops->list_vms(be, argc > 2 ? argv[2] : NULL, 0, &error);
        if (!l) {
            rc = fail(error);
            goto done;
        }
        for (guint i = 0; i < l->len; i++)
            print_vm(l->pdata[i]);
        g_ptr_array_unref(l);
    } else if (!strcmp(cmd, "vm")) {
        VmshiftVm *vm = ops->get_vm(be, spec->vm, 0, &error);
        if (!vm) {
            rc = fail(error);
            goto done;
        }
        print_vm(vm);
        vmshift_vm_free(vm);
    } else if (!strcmp(cmd, "networks")) {
        GPtrArray *l = ops->list_networks(be, NULL, 0, &error);
        if (!l) {
            rc = fail(error);
            goto done;
        }
        for (guint i = 0; i < l->len; i++) {
            VmshiftNetwork *n = l->pdata[i];
            printf("network %s kind=%s hosts=", n->name, n->kind);
            for (guint k = 0; n->hosts && k < n->hosts->len; k++)
                printf("%s%s", k ? "," : "", (char *)n->hosts->pdata[k]);
            printf("\n");
        }
        g_ptr_array_unref(l);
    } else if (!strcmp(cmd, "volumes")) {
        GPtrArray *l = ops->list_volumes(be, NULL, 0, &error);
        if (!l) {
            rc = fail(error);
            goto done;
        }
        for (guint i = 0; i < l->len; i++) {
            VmshiftVolume *v = l->pdata[i];
            printf("volume %s path=%s free=%" G_GUINT64_FORMAT " default=%u\n", v->name, v->path,
                   v->free >> 20, v->is_default);
        }
        g_ptr_array_unref(l);
    } else if (!strcmp(cmd, "merge-status")) {
        VmshiftCheckpointState *cs = ops->checkpoint_state(be, spec->vm, 0, &error);
        if (!cs) {
            rc = fail(error);
            goto done;
        }
        printf("merging=%u\npercent=%d\ndetail=%s\n", cs->merging, cs->percent,
               cs->detail ? cs->detail : "");
        vmshift_checkpoint_state_free(cs);
    } else if (!strcmp(cmd, "check")) {
        GPtrArray *l = ops->check_migration(be, spec, 0, &error);
        if (!l) {
            rc = fail(error);
            goto done;
        }
        for (guint i = 0; i < l->len; i++) {
            VmshiftFinding *f = l->pdata[i];
            printf("finding %s %s: %s\n", vmshift_severity_name(f->severity), f->code, f->message);
        }
        printf("findings=%u\n", l->len);
        g_ptr_array_unref(l);
    } else if (!strcmp(cmd, "migrate") || !strcmp(cmd, "migrate-storage") || !strcmp(cmd, "acl")
               || !strcmp(cmd, "repair")) {
        d.job = vmshift_job_new(journal ? journal : "job", spec, &hooks, &d);
        if (die_in)
            d.die_in = vmshift_phase_from_name(die_in);
        if (cancel_in) {
            d.cancel_in = vmshift_phase_from_name(cancel_in);
            d.cancel_delay_ms = (guint)cancel_delay;
        }
        gboolean ok;
        if (!strcmp(cmd, "acl")) {
            ok = ops->recreate_acl(be, spec->vm, d.job, 0, &error);
        } else if (!strcmp(cmd, "repair")) {
            GHashTable *saved = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
            char **keys = g_key_file_get_keys(d.jk, "saved", NULL, NULL);
            for (char **k = keys; k && *k; k++)
                g_hash_table_insert(saved, g_strdup(*k),
                                    g_key_file_get_string(d.jk, "saved", *k, NULL));
            g_strfreev(keys);
            char *ph = g_key_file_get_string(d.jk, "job", "phase", NULL);
            vmshift_job_restore(d.job, vmshift_phase_from_name(ph ? ph : "none"), saved);
            g_free(ph);
            g_hash_table_unref(saved);
            ok = ops->repair(be, d.job, 0, &error);
        } else {
            ok = ops->migrate(be, spec, d.job, 0, &error);
        }
        print_results(d.job);
        if (!ok)
            rc = fail(error);
        else
            printf("ok=1\n");
        vmshift_job_unref(d.job);
    } else {
        g_printerr("kvm-drive: unknown command '%s'\n", cmd);
        rc = 2;
    }
done:
    vmshift_migration_spec_free(spec);
    ops->close(be);
    vmshift_config_free(cfg);
    g_key_file_unref(kf);
    g_key_file_unref(d.jk);
    g_strfreev(groups);
    g_free(state_dir);
    return rc;
}
