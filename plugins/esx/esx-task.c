/*
 * ESX plugin: vSphere tasks: starting one, polling its TaskInfo (alone or
 * together with the VM it works on), cancelling it, and the error a failed
 * task's fault type maps to.
 */
#include "config.h"

#include <string.h>

#include "esx-impl.h"

/* Task polling: quick first looks (short tasks), then back off to 1 s. */
#define POLL_FIRST_MS 40
#define POLL_MAX_MS 1000

guint
esx_next_poll(guint *ms)
{
    guint cur = *ms == 0 ? POLL_FIRST_MS : *ms;
    *ms = MIN(cur * 2, POLL_MAX_MS);
    return cur;
}

void
esx_task_info_clear(EsxTaskInfo *t)
{
    g_free(t->state);
    g_free(t->fault_type);
    g_free(t->message);
    g_free(t->result);
}

const char *const esx_task_entity_paths[] = { "info.entity", NULL };

static const char *const task_paths[] = { "info.state", "info.progress", "info.error",
                                          "info.result", NULL };

gboolean
esx_task_poll(VmshiftBackend *be, const char *task, EsxTaskInfo *ti, GError **error)
{
    g_autoptr(EsxResult) keep = NULL;
    EsxObject *t = esx_retrieve_one(be, "Task", task, task_paths, &keep, NULL, error);
    if (t == NULL)
        return FALSE;
    return esx_task_parse(be, task, t, ti, error);
}

gboolean
esx_task_parse(VmshiftBackend *be, const char *task, const EsxObject *t, EsxTaskInfo *ti,
               GError **error)
{
    esx_task_info_clear(ti);
    memset(ti, 0, sizeof *ti);
    ti->state = esx_prop_text(t, "info.state");
    ti->progress = esx_prop(t, "info.progress") != NULL ? (gint32)esx_prop_int(t, "info.progress")
                                                        : -1;
    xmlNode *err = esx_prop(t, "info.error");
    if (err != NULL) {
        xmlNode *f = vmshift_xml_child(err, VMSHIFT_NS_VIM25, "fault");
        ti->fault_type = vmshift_xml_xsi_type(f);
        ti->message = vmshift_xml_child_text(err, VMSHIFT_NS_VIM25, "localizedMessage");
        if (ti->message != NULL)
            g_strstrip(ti->message);
    }
    ti->result = esx_prop_text(t, "info.result");
    if (ti->state == NULL) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_PROTOCOL, "%s: task %s has no info.state",
                    be->url, task);
        return FALSE;
    }
    /* A finished task changed placement, free space or usage: the cached
     * hosts and datastores are stale now. */
    if (g_strcmp0(ti->state, "success") == 0 || g_strcmp0(ti->state, "error") == 0)
        esx_cache_invalidate(be, (1u << ESX_CACHE_HOSTS) | (1u << ESX_CACHE_DATASTORES));
    return TRUE;
}

int
esx_task_fault_code(const char *type)
{
    static const struct {
        const char *t;
        int code;
    } map[] = {
        { "InvalidState", VMSHIFT_ERROR_CONFLICT },
        { "InvalidPowerState", VMSHIFT_ERROR_CONFLICT },
        { "HostNotConnected", VMSHIFT_ERROR_CONNECTION },
        { "NotAuthenticated", VMSHIFT_ERROR_AUTH_FAILED },
        { "NoPermission", VMSHIFT_ERROR_PERMISSION },
        { "InsufficientResourcesFault", VMSHIFT_ERROR_NO_SPACE },
        { "OutOfDiskSpace", VMSHIFT_ERROR_NO_SPACE },
        { "ManagedObjectNotFound", VMSHIFT_ERROR_NOT_FOUND },
        { "TaskInProgress", VMSHIFT_ERROR_BUSY },
        { "Timedout", VMSHIFT_ERROR_TIMEOUT },
        { "InvalidArgument", VMSHIFT_ERROR_INVALID_ARGUMENT },
    };
    for (guint i = 0; type != NULL && i < G_N_ELEMENTS(map); i++)
        if (g_strcmp0(map[i].t, type) == 0)
            return map[i].code;
    return VMSHIFT_ERROR_FAILED;
}

char *
esx_start_task(VmshiftBackend *be, const char *what, const char *body, GError **error)
{
    g_autoptr(xmlDoc) doc = esx_call_once(be, what, body, NULL, NULL, error);
    if (doc == NULL)
        return NULL;
    char *task = vmshift_xml_child_text(vmshift_soap_body(doc), VMSHIFT_NS_VIM25, "returnval");
    if (task == NULL || task[0] == '\0') {
        g_free(task);
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_PROTOCOL, "%s %s: no task in the reply",
                    be->url, what);
        return NULL;
    }
    return task;
}

/* The tasks of @tasks (a retrieval holding Task objects with info.entity)
 * whose entity is @vm (morefs). */
static GPtrArray *
tasks_of(const EsxResult *tasks, const char *vm)
{
    GPtrArray *out = g_ptr_array_new_with_free_func(g_free);
    for (guint i = 0; i < tasks->objects->len; i++) {
        const EsxObject *t = tasks->objects->pdata[i];
        if (g_strcmp0(t->type, "Task") != 0)
            continue;
        g_autofree char *ent = esx_prop_text(t, "info.entity");
        if (g_strcmp0(ent, vm) == 0)
            g_ptr_array_add(out, g_strdup(t->value));
    }
    return out;
}

/* The tasks TaskManager.recentTask lists for entity @vm (morefs), or NULL:
 * one RetrievePropertiesEx through the recentTask traversal. */
static GPtrArray *
recent_tasks_of(VmshiftBackend *be, const char *vm, GError **error)
{
    static const char *const entity_paths[] = { "info.entity", NULL };

    if (!esx_connect(be, error))
        return NULL;
    if (be->task_manager == NULL) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_NOT_SUPPORTED, "%s has no task manager",
                    be->url);
        return NULL;
    }
    g_autofree char *tps = esx_propset_xml("Task", entity_paths);
    g_autofree char *tm = esx_moref_xml("obj", "TaskManager", be->task_manager);
    g_autofree char *spec = g_strdup_printf(
        "<specSet>%s<objectSet>%s<skip>true</skip><selectSet xsi:type=\"TraversalSpec\">"
        "<type>TaskManager</type><path>recentTask</path><skip>false</skip></selectSet>"
        "</objectSet></specSet>",
        tps, tm);
    g_autoptr(EsxResult) r = esx_retrieve_spec(be, spec, NULL, error);
    return r != NULL ? tasks_of(r, vm) : NULL;
}

static gboolean
listed(GPtrArray *a, const char *s)
{
    for (guint i = 0; a != NULL && i < a->len; i++)
        if (g_strcmp0(a->pdata[i], s) == 0)
            return TRUE;
    return FALSE;
}

/* A *_Task call on VM @vm is never sent twice: when its reply is lost (the
 * connection closed, a reply cut short or unreadable: no SOAP fault came
 * back), the server may have started the task, so the VM's tasks in
 * TaskManager.recentTask are read before anything is said. A task that
 * was not there before the call is the one it started; none means the
 * call did not start anything. */
char *
esx_start_vm_task(VmshiftBackend *be, const char *what, const char *body, const char *vm,
                  VmshiftJob *job, GError **error)
{
    return esx_start_vm_task_known(be, what, body, vm, NULL, job, error);
}

char *
esx_start_vm_task_known(VmshiftBackend *be, const char *what, const char *body, const char *vm,
                        const EsxResult *known, VmshiftJob *job, GError **error)
{
    g_autoptr(GError) gerr = NULL;
    g_autoptr(GError) lerr = NULL;
    g_autoptr(VmshiftSoapFault) fault = NULL;
    g_autoptr(GPtrArray) before = known != NULL ? tasks_of(known, vm)
                                                : recent_tasks_of(be, vm, NULL);
    g_autoptr(xmlDoc) doc = esx_call_once(be, what, body, NULL, &fault, &lerr);
    if (doc != NULL) {
        char *task = vmshift_xml_child_text(vmshift_soap_body(doc), VMSHIFT_NS_VIM25, "returnval");
        if (task != NULL && task[0] != '\0')
            return task;
        g_free(task);
        g_set_error(&lerr, VMSHIFT_ERROR, VMSHIFT_ERROR_PROTOCOL, "%s %s: no task in the reply",
                    be->url, what);
    }
    if (fault != NULL || g_error_matches(lerr, VMSHIFT_ERROR, VMSHIFT_ERROR_AUTH_FAILED)
        || g_error_matches(lerr, G_IO_ERROR, G_IO_ERROR_CANCELLED) || before == NULL) {
        /* a definite answer (or nothing to compare with) */
        g_propagate_error(error, g_steal_pointer(&lerr));
        return NULL;
    }
    g_autoptr(GPtrArray) after = recent_tasks_of(be, vm, &gerr);
    if (after == NULL) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_CONNECTION,
                    "%s: the reply was lost (%s) and the server's tasks cannot be read (%s): "
                    "whether it started is unknown; check the VM's tasks before trying again",
                    what, lerr->message, gerr->message);
        return NULL;
    }
    for (guint i = 0; i < after->len; i++) {
        if (listed(before, after->pdata[i]))
            continue;
        if (job != NULL)
            vmshift_job_log(job, VMSHIFT_LOG_WARNING,
                            "%s: the reply was lost (%s); the server had started task %s, "
                            "followed instead of calling again",
                            what, lerr->message, (char *)after->pdata[i]);
        return g_strdup(after->pdata[i]);
    }
    g_set_error(error, lerr->domain, lerr->code,
                "%s (the server shows no new task for the VM: nothing was started)", lerr->message);
    return NULL;
}

gboolean
esx_cancel_task(VmshiftBackend *be, const char *task, GError **error)
{
    g_autofree char *t = esx_moref_xml("_this", "Task", task);
    g_autofree char *body = g_strdup_printf("<CancelTask xmlns=\"urn:vim25\">%s</CancelTask>", t);
    g_autoptr(xmlDoc) doc = esx_call(be, "CancelTask", body, NULL, NULL, error);
    return doc != NULL;
}

/* Wait for a task that needs no progress reporting. */
gboolean
esx_wait_task(VmshiftBackend *be, const char *task, const char *what, GError **error)
{
    g_auto(EsxTaskInfo) ti = { 0 };
    guint poll = 0;
    for (;;) {
        if (!esx_task_poll(be, task, &ti, error))
            return FALSE;
        if (g_strcmp0(ti.state, "success") == 0)
            return TRUE;
        if (g_strcmp0(ti.state, "error") == 0) {
            g_set_error(error, VMSHIFT_ERROR, esx_task_fault_code(ti.fault_type),
                        "%s %s failed: %s: %s", be->url, what,
                        ti.fault_type != NULL ? ti.fault_type : "error",
                        ti.message != NULL ? ti.message : "(no message)");
            return FALSE;
        }
        g_usleep(esx_next_poll(&poll) * 1000);
    }
}

/* The task's info and the VM's state in one RetrievePropertiesEx. */
gboolean
esx_task_poll_vm(VmshiftBackend *be, const char *task, const char *vm, EsxTaskInfo *ti,
                 EsxVmState *now, GError **error)
{
    g_autofree char *tps = esx_propset_xml("Task", task_paths);
    g_autofree char *vps = esx_propset_xml("VirtualMachine", esx_vm_state_paths);
    g_autofree char *to = esx_moref_xml("obj", "Task", task);
    g_autofree char *vo = esx_moref_xml("obj", "VirtualMachine", vm);
    g_autofree char *spec = g_strdup_printf("<specSet>%s%s<objectSet>%s</objectSet>"
                                            "<objectSet>%s</objectSet></specSet>",
                                            tps, vps, to, vo);
    g_autoptr(EsxResult) r = esx_retrieve_spec(be, spec, NULL, error);
    if (r == NULL)
        return FALSE;
    EsxObject *t = esx_result_find(r, task);
    EsxObject *o = esx_result_find(r, vm);
    if (t == NULL || o == NULL) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_NOT_FOUND, "%s: %s %s not found", be->url,
                    t == NULL ? "Task" : "VirtualMachine", t == NULL ? task : vm);
        return FALSE;
    }
    if (!esx_task_parse(be, task, t, ti, error))
        return FALSE;
    esx_vm_state_parse(o, now, NULL);
    return TRUE;
}
