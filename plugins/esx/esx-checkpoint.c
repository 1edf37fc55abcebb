/*
 * ESX plugin: a VM's snapshots and the merges (snapshot removal, disk
 * consolidation) running on it, which a move must not overlap.
 */
#include "config.h"

#include "esx-impl.h"
#include "esx-ops.h"

static void
collect_snapshots(const xmlNode *parent, const char *parent_name, const char *current,
                  GPtrArray *out)
{
    for (xmlNode *c = vmshift_xml_first_element(parent); c != NULL;
         c = vmshift_xml_next_element(c)) {
        if (!vmshift_xml_node_is(c, VMSHIFT_NS_VIM25, "rootSnapshotList")
            && !vmshift_xml_node_is(c, VMSHIFT_NS_VIM25, "childSnapshotList"))
            continue;
        VmshiftSnapshot *s = vmshift_snapshot_new();
        s->id = vmshift_xml_child_text(c, VMSHIFT_NS_VIM25, "snapshot");
        s->name = vmshift_xml_child_text(c, VMSHIFT_NS_VIM25, "name");
        s->parent = g_strdup(parent_name);
        s->current = g_strcmp0(s->id, current) == 0;
        g_autofree char *ct = vmshift_xml_child_text(c, VMSHIFT_NS_VIM25, "createTime");
        g_autoptr(GDateTime) dt = ct != NULL ? g_date_time_new_from_iso8601(ct, NULL) : NULL;
        s->created = dt != NULL ? g_date_time_to_unix(dt) : 0;
        g_ptr_array_add(out, s);
        collect_snapshots(c, s->name, current, out);
    }
}

GPtrArray *
esx_snapshots_of(const EsxObject *vm)
{
    GPtrArray *out = vmshift_list_new((GDestroyNotify)vmshift_snapshot_free);
    xmlNode *info = esx_prop(vm, "snapshot");
    g_autofree char *cur = vmshift_xml_child_text(info, VMSHIFT_NS_VIM25, "currentSnapshot");
    collect_snapshots(info, NULL, cur, out);
    return out;
}

GPtrArray *
esx_list_snapshots(VmshiftBackend *be, const char *name, guint32 flags, GError **error)
{
    if (!vmshift_check_flags(flags, 0, "list_snapshots", error))
        return NULL;
    g_auto(EsxInventory) inv = { 0 };
    EsxObject *o = esx_find_vm(be, &inv, name, error);
    return o != NULL ? esx_snapshots_of(o) : NULL;
}

typedef struct {
    char *task;
    char *description_id;
    char *state;
    gint32 progress;
    gint64 started;
} MergeTask;

static gboolean
is_merge_description(const char *id)
{
    return id != NULL
           && (g_ascii_strcasecmp(id, "VirtualMachine.consolidateDisks") == 0
               || g_ascii_strcasecmp(id, "VirtualMachine.removeAllSnapshots") == 0
               || g_ascii_strncasecmp(id, "VirtualMachineSnapshot.remove", 29) == 0);
}

/* Running snapshot-removal / consolidation tasks on the VM (or one of its
 * snapshots), from TaskManager.recentTask. */
static gboolean
merge_tasks(VmshiftBackend *be, const EsxObject *vm, const EsxInventory *inv, GArray *out,
            GError **error)
{
    /* connected: the caller read @vm (esx_find_vm) on this handle */
    if (be->task_manager == NULL)
        return TRUE;
    g_autoptr(EsxResult) fetched = NULL;
    g_autoptr(GPtrArray) snaps = esx_snapshots_of(vm);
    EsxResult *tasks = inv != NULL && inv->have_tasks ? inv->vms : NULL;
    if (tasks != NULL) {
        /* inv has the entity of each recent task: the merge properties of
         * the tasks on this VM or its snapshots, when there are any */
        g_autoptr(GPtrArray) mine = g_ptr_array_new();
        for (guint i = 0; i < tasks->objects->len; i++) {
            EsxObject *t = tasks->objects->pdata[i];
            g_autofree char *entity = g_strcmp0(t->type, "Task") == 0
                                          ? esx_prop_text(t, "info.entity")
                                          : NULL;
            gboolean ours = entity != NULL && g_strcmp0(entity, vm->value) == 0;
            for (guint j = 0; entity != NULL && !ours && j < snaps->len; j++)
                ours = g_strcmp0(((VmshiftSnapshot *)snaps->pdata[j])->id, entity) == 0;
            if (ours)
                g_ptr_array_add(mine, t->value);
        }
        if (mine->len == 0)
            return TRUE;
        /* NULL (a task gone meanwhile, say): all recent tasks, below */
        fetched = esx_retrieve_objects(be, "Task", mine, esx_merge_task_paths, NULL, NULL);
        tasks = fetched;
    }
    if (tasks == NULL) {
        /* TaskManager.recentTask → the tasks, in one call. */
        g_autofree char *tps = esx_propset_xml("Task", esx_merge_task_paths);
        g_autofree char *tm = esx_moref_xml("obj", "TaskManager", be->task_manager);
        g_autofree char *spec = g_strdup_printf(
            "<specSet>%s<objectSet>%s<skip>true</skip><selectSet xsi:type=\"TraversalSpec\">"
            "<type>TaskManager</type><path>recentTask</path><skip>false</skip></selectSet>"
            "</objectSet></specSet>",
            tps, tm);
        fetched = esx_retrieve_spec(be, spec, NULL, error);
        if (fetched == NULL)
            return FALSE;
        tasks = fetched;
    }
    for (guint i = 0; i < tasks->objects->len; i++) {
        EsxObject *t = tasks->objects->pdata[i];
        if (g_strcmp0(t->type, "Task") != 0)
            continue;
        g_autofree char *entity = esx_prop_text(t, "info.entity");
        g_autofree char *state = esx_prop_text(t, "info.state");
        g_autofree char *desc = esx_prop_text(t, "info.descriptionId");
        if (g_strcmp0(state, "running") != 0 && g_strcmp0(state, "queued") != 0)
            continue;
        if (!is_merge_description(desc))
            continue;
        gboolean ours = g_strcmp0(entity, vm->value) == 0;
        for (guint j = 0; !ours && j < snaps->len; j++)
            ours = g_strcmp0(((VmshiftSnapshot *)snaps->pdata[j])->id, entity) == 0;
        if (!ours)
            continue;
        MergeTask m = { 0 };
        m.task = g_strdup(t->value);
        m.description_id = g_steal_pointer(&desc);
        m.state = g_steal_pointer(&state);
        m.progress = esx_prop(t, "info.progress") != NULL ? (gint32)esx_prop_int(t, "info.progress")
                                                          : -1;
        g_autofree char *st = esx_prop_text(t, "info.startTime");
        if (st == NULL)
            st = esx_prop_text(t, "info.queueTime");
        g_autoptr(GDateTime) dt = st != NULL ? g_date_time_new_from_iso8601(st, NULL) : NULL;
        m.started = dt != NULL ? g_date_time_to_unix(dt) : 0;
        g_array_append_val(out, m);
    }
    return TRUE;
}

static void
merge_task_clear(gpointer p)
{
    MergeTask *m = p;
    g_free(m->task);
    g_free(m->description_id);
    g_free(m->state);
}

static char *
merge_detail(const EsxObject *vm, const MergeTask *m)
{
    g_autofree char *vmname = esx_prop_text(vm, "name");
    g_autoptr(GDateTime) dt = m->started ? g_date_time_new_from_unix_local(m->started) : NULL;
    g_autofree char *when = dt != NULL ? g_date_time_format(dt, "%H:%M") : g_strdup("?");
    g_autofree char *pct = m->progress >= 0 ? g_strdup_printf(", %d%%", m->progress) : g_strdup("");
    if (g_ascii_strcasecmp(m->description_id, "VirtualMachine.consolidateDisks") == 0)
        return g_strdup_printf("disks of VM '%s' are being consolidated (%s%s), started %s", vmname,
                               m->task, pct, when);
    if (g_ascii_strcasecmp(m->description_id, "VirtualMachine.removeAllSnapshots") == 0)
        return g_strdup_printf("all snapshots of VM '%s' are being removed (%s%s), started %s",
                               vmname, m->task, pct, when);
    /* TaskInfo does not say which snapshot; name it when there is only one
     * candidate. */
    g_autoptr(GPtrArray) snaps = esx_snapshots_of(vm);
    if (snaps->len == 1)
        return g_strdup_printf("snapshot '%s' of VM '%s' is being removed (%s%s), started %s",
                               ((VmshiftSnapshot *)snaps->pdata[0])->name, vmname, m->task, pct,
                               when);
    return g_strdup_printf("a snapshot of VM '%s' is being removed (%s%s), started %s", vmname,
                           m->task, pct, when);
}

VmshiftCheckpointState *
esx_checkpoint_state_of(VmshiftBackend *be, const EsxObject *vm, const EsxInventory *inv,
                        GError **error)
{
    g_autoptr(GArray) tasks = g_array_new(FALSE, TRUE, sizeof(MergeTask));
    g_array_set_clear_func(tasks, merge_task_clear);
    if (!merge_tasks(be, vm, inv, tasks, error))
        return NULL;
    VmshiftCheckpointState *st = vmshift_checkpoint_state_new();
    st->needs_consolidation = esx_prop_bool(vm, "runtime.consolidationNeeded");
    st->percent = -1;
    if (tasks->len > 0) {
        MergeTask *m = &g_array_index(tasks, MergeTask, 0);
        st->merging = 1;
        st->detail = merge_detail(vm, m);
        st->percent = m->progress;
        st->started = m->started;
    } else if (st->needs_consolidation) {
        g_autofree char *n = esx_prop_text(vm, "name");
        st->detail = g_strdup_printf(
            "VM '%s' needs disk consolidation (runtime.consolidationNeeded); "
            "run Consolidate before moving it",
            n);
    }
    return st;
}

VmshiftCheckpointState *
esx_checkpoint_state(VmshiftBackend *be, const char *name, guint32 flags, GError **error)
{
    if (!vmshift_check_flags(flags, 0, "checkpoint_state", error))
        return NULL;
    g_auto(EsxInventory) inv = { .want_tasks = TRUE };
    EsxObject *vm = esx_find_vm(be, &inv, name, error);
    return vm != NULL ? esx_checkpoint_state_of(be, vm, &inv, error) : NULL;
}
