/*
 * vmshift Hyper-V plugin: inventory of hosts, VMs, networks and volumes.
 * Facts and sources: docs/design/hyperv.md.
 */
#include "config.h"

#include <string.h>

#include <vmshift/vmshift.h>

#include "hyperv.h"

/* CPU, memory and product of a host, from root/cimv2 (what Get-VMHost reads
 * too): Win32_ComputerSystem (NumberOfLogicalProcessors, TotalPhysicalMemory
 * in bytes), Win32_OperatingSystem (FreePhysicalMemory in KiB, Caption,
 * Version) and Win32_Processor (one per socket: Name, LoadPercentage). A
 * class that does not answer leaves its facts unknown. */
static void
host_facts(HvHost *h, VmshiftHost *vh)
{
    g_autoptr(GError) e = NULL;
    g_autoptr(HvInstance) cs = NULL;
    g_autoptr(HvInstance) os = NULL;
    g_autoptr(GPtrArray) cpus = NULL;

    cs = hv_first_of(h, HV_NS_CIMV2, "SELECT * FROM Win32_ComputerSystem", NULL, &e);
    if (cs != NULL) {
        vh->cpu_count = (guint32)CLAMP(hv_inst_get_int(cs, "NumberOfLogicalProcessors", 0), 0,
                                       G_MAXUINT32);
        vh->memory_total = (guint64)MAX(hv_inst_get_int(cs, "TotalPhysicalMemory", 0), 0);
    } else {
        g_debug("Hyper-V host %s: %s", hv_host_label(h), e->message);
        g_clear_error(&e);
    }
    os = hv_first_of(h, HV_NS_CIMV2, "SELECT * FROM Win32_OperatingSystem", NULL, &e);
    if (os != NULL) {
        const char *cap = hv_inst_get(os, "Caption");
        const char *ver = hv_inst_get(os, "Version");
        gint64 free_kib = hv_inst_get_int(os, "FreePhysicalMemory", 0);
        if (free_kib > 0 && free_kib <= (gint64)(G_MAXUINT64 >> 10))
            vh->memory_free = (guint64)free_kib << 10;
        if (vh->memory_total == 0) {
            gint64 tot_kib = hv_inst_get_int(os, "TotalVisibleMemorySize", 0);
            if (tot_kib > 0 && tot_kib <= (gint64)(G_MAXUINT64 >> 10))
                vh->memory_total = (guint64)tot_kib << 10;
        }
        if (cap != NULL || ver != NULL) {
            g_free(vh->hypervisor);
            vh->hypervisor = g_strdup_printf("Microsoft Hyper-V (%s%s%s)", cap ? cap : "",
                                             cap && ver ? " " : "", ver ? ver : "");
        }
    } else {
        g_debug("Hyper-V host %s: %s", hv_host_label(h), e->message);
        g_clear_error(&e);
    }
    cpus = hv_wql(h, HV_NS_CIMV2, "SELECT * FROM Win32_Processor", NULL, &e);
    if (cpus != NULL) {
        gint64 load = 0;
        guint with_load = 0;
        for (guint i = 0; i < cpus->len; i++) {
            const char *n = hv_inst_get(cpus->pdata[i], "Name");
            gint64 l = hv_inst_get_int(cpus->pdata[i], "LoadPercentage", -1);
            if (vh->cpu_model == NULL && n != NULL && n[0] != '\0')
                vh->cpu_model = g_strstrip(g_strdup(n));
            if (l >= 0 && l <= 100) {
                load += l;
                with_load++;
            }
        }
        if (with_load > 0)
            vh->cpu_usage_percent = (gint32)(load / with_load);
    } else {
        g_debug("Hyper-V host %s: %s", hv_host_label(h), e->message);
    }
}

/* The virtual switches of @h (the networks its VMs' NICs can use), or NULL
 * when the host does not say (the host then reads list_networks). */
static GPtrArray *
host_switches(HvHost *h)
{
    g_autoptr(GPtrArray)
        sws = hv_wql(h, HV_NS_V2, "SELECT * FROM Msvm_VirtualEthernetSwitch", NULL, NULL);
    GPtrArray *names;

    if (sws == NULL)
        return NULL;
    names = vmshift_string_list_new();
    for (guint j = 0; j < sws->len; j++)
        if (hv_inst_get(sws->pdata[j], "ElementName") != NULL)
            g_ptr_array_add(names, g_strdup(hv_inst_get(sws->pdata[j], "ElementName")));
    return names;
}

GPtrArray *
hyperv_list_hosts(VmshiftBackend *b, guint32 flags, GError **error)
{
    GPtrArray *out;

    if (!vmshift_check_flags(flags, 0, "list_hosts", error))
        return NULL;
    out = vmshift_list_new((GDestroyNotify)vmshift_host_free);
    for (guint i = 0; i < b->hosts->len; i++) {
        HvHost *h = b->hosts->pdata[i];
        VmshiftHost *vh = vmshift_host_new();
        g_autoptr(GError) e = NULL;
        g_autoptr(HvInstance) svc = NULL;
        g_autoptr(HvInstance) msd = NULL;
        g_autoptr(HvInstance) vsms = NULL;
        g_autoptr(GPtrArray) vols = NULL;

        vh->id = g_strdup(h->name != NULL ? h->name : h->url);
        vh->name = g_strdup(hv_host_label(h));
        vh->hypervisor = g_strdup("Microsoft Hyper-V");
        vh->cpu_usage_percent = -1;
        g_ptr_array_add(out, vh);
        if (!hv_host_usable(h)) {
            vh->status = VMSHIFT_HOST_DISCONNECTED;
            vh->status_detail = g_strdup(h->open_error->message);
            continue;
        }
        svc = hv_first_of(h, HV_NS_V2, "SELECT * FROM Msvm_VirtualSystemMigrationService", NULL,
                          &e);
        if (svc != NULL)
            msd = hv_first_of(h, HV_NS_V2,
                              "SELECT * FROM Msvm_VirtualSystemMigrationServiceSettingData", NULL,
                              &e);
        /* Defaults and volumes are optional facts (the host is usable
         * without them); the migration service is not. */
        if (msd != NULL) {
            vsms = hv_first_of(h, HV_NS_V2,
                               "SELECT * FROM Msvm_VirtualSystemManagementServiceSettingData", NULL,
                               &e);
            if (vsms == NULL)
                hv_degrade_class(h, "Msvm_VirtualSystemManagementServiceSettingData",
                                 "the default VM path", &e);
        }
        if (msd != NULL && e == NULL) {
            vols = hv_host_volumes(h, &e);
            if (vols == NULL && hv_degrade_class(h, "Win32_Volume", "shared volumes", &e))
                vols = g_ptr_array_new();
        }
        if (e != NULL) {
            vh->status = VMSHIFT_HOST_DISCONNECTED;
            vh->status_detail = g_strdup(e->message);
            continue;
        }
        vh->status = VMSHIFT_HOST_OK;
        host_facts(h, vh);
        vh->networks = host_switches(h);
        if (g_strcmp0(hv_inst_get(msd, "EnableVirtualSystemMigration"), "false") == 0) {
            vh->status = VMSHIFT_HOST_LIMITED;
            vh->status_detail = g_strdup("live migration is not enabled "
                                         "(Enable-VMMigration)");
        } else if (hv_inst_get_all(svc, "MigrationServiceListenerIPAddressList")->len == 0) {
            vh->status = VMSHIFT_HOST_LIMITED;
            vh->status_detail = g_strdup("no live migration networks are configured "
                                         "(Set-VMMigrationNetwork)");
        }
        vh->migration_address = g_strdup(hv_inst_get(svc, "MigrationServiceListenerIPAddressList"));
        vh->default_vm_path = g_strdup(hv_inst_get(vsms, "DefaultExternalDataRoot"));
        vh->san_ids = vmshift_string_list_new();
        for (guint j = 0; j < vols->len; j++)
            if (hv_volume_is_shared(vols->pdata[j]))
                g_ptr_array_add(vh->san_ids, g_strdup(hv_inst_get(vols->pdata[j], "DeviceID")));
    }
    return out;
}

GPtrArray *
hyperv_list_vms(VmshiftBackend *b, const char *host, guint32 flags, GError **error)
{
    g_autoptr(GPtrArray) out = NULL;

    if (!vmshift_check_flags(flags, 0, "list_vms", error))
        return NULL;
    if (!hv_check_host_arg(b, host, error))
        return NULL;
    out = vmshift_list_new((GDestroyNotify)vmshift_vm_free);
    for (guint i = 0; i < b->hosts->len; i++) {
        HvHost *h = b->hosts->pdata[i];
        g_autoptr(GPtrArray) css = NULL;
        if ((host != NULL && h != hv_find_host(b, host)) || !hv_usable_or_warn(b, h, "VMs"))
            continue;
        css = hv_host_vm_cs(h, NULL, error);
        if (css == NULL)
            return NULL;
        while (css->len > 0) {
            g_autoptr(HvVm) v = hv_load_vm(h, g_ptr_array_steal_index(css, 0), TRUE, error);
            if (v == NULL)
                return NULL;
            g_ptr_array_add(out, hv_to_vm(v));
        }
    }
    return g_steal_pointer(&out);
}

GPtrArray *
hyperv_list_networks(VmshiftBackend *b, const char *host, guint32 flags, GError **error)
{
    g_autoptr(GPtrArray) out = NULL;

    if (!vmshift_check_flags(flags, 0, "list_networks", error)
        || !hv_check_host_arg(b, host, error))
        return NULL;
    out = vmshift_list_new((GDestroyNotify)vmshift_network_free);
    for (guint i = 0; i < b->hosts->len; i++) {
        HvHost *h = b->hosts->pdata[i];
        g_autoptr(GPtrArray) sws = NULL;
        if (!hv_host_usable(h) || (host != NULL && h != hv_find_host(b, host)))
            continue;
        sws = hv_wql(h, HV_NS_V2, "SELECT * FROM Msvm_VirtualEthernetSwitch", NULL, error);
        if (sws == NULL)
            return NULL;
        for (guint j = 0; j < sws->len; j++) {
            const char *name = hv_inst_get(sws->pdata[j], "ElementName");
            VmshiftNetwork *n = NULL;
            for (guint k = 0; k < out->len; k++)
                if (g_strcmp0(((VmshiftNetwork *)out->pdata[k])->name, name) == 0)
                    n = out->pdata[k];
            if (n == NULL) {
                n = vmshift_network_new();
                n->id = g_strdup(name);
                n->name = g_strdup(name);
                n->kind = g_strdup("vswitch");
                n->hosts = vmshift_string_list_new();
                g_ptr_array_add(out, n);
            }
            g_ptr_array_add(n->hosts, g_strdup(h->name));
        }
    }
    return g_steal_pointer(&out);
}

GPtrArray *
hyperv_list_volumes(VmshiftBackend *b, const char *host, guint32 flags, GError **error)
{
    g_autoptr(GPtrArray) out = NULL;

    if (!vmshift_check_flags(flags, 0, "list_volumes", error) || !hv_check_host_arg(b, host, error))
        return NULL;
    out = vmshift_list_new((GDestroyNotify)vmshift_volume_free);
    for (guint i = 0; i < b->hosts->len; i++) {
        HvHost *h = b->hosts->pdata[i];
        g_autoptr(GPtrArray) vols = NULL;
        g_autoptr(HvInstance) vsms = NULL;
        HvInstance *def;
        if (!hv_host_usable(h) || (host != NULL && h != hv_find_host(b, host)))
            continue;
        vsms = hv_first_of(h, HV_NS_V2,
                           "SELECT * FROM Msvm_VirtualSystemManagementServiceSettingData", NULL,
                           error);
        if (vsms == NULL)
            return NULL;
        vols = hv_host_volumes(h, error);
        if (vols == NULL)
            return NULL;
        def = hv_volume_of(vols, hv_inst_get(vsms, "DefaultExternalDataRoot"));
        for (guint j = 0; j < vols->len; j++) {
            HvInstance *v = vols->pdata[j];
            const char *dev = hv_inst_get(v, "DeviceID");
            VmshiftVolume *vol = NULL;
            gboolean shared = hv_volume_is_shared(v);
            for (guint k = 0; shared && k < out->len; k++)
                if (g_strcmp0(((VmshiftVolume *)out->pdata[k])->id, dev) == 0)
                    vol = out->pdata[k];
            if (vol != NULL) {
                g_ptr_array_add(vol->hosts, g_strdup(h->name));
                continue;
            }
            vol = vmshift_volume_new();
            vol->id = g_strdup(dev);
            vol->name = g_strdup(hv_inst_get(v, "Label") != NULL && hv_inst_get(v, "Label")[0]
                                     ? hv_inst_get(v, "Label")
                                     : hv_inst_get(v, "Name"));
            vol->path = hv_volume_root(hv_inst_get(v, "Name"));
            vol->shared = shared;
            vol->host = shared ? NULL : g_strdup(h->name);
            vol->kind = g_strdup(shared ? "csv" : "volume");
            vol->capacity = (guint64)hv_inst_get_int(v, "Capacity", 0);
            vol->free = (guint64)hv_inst_get_int(v, "FreeSpace", 0);
            /* a volume WMI gives no FreeSpace for (offline, no file
             * system) has no known free space, not 0 */
            vol->free_unknown = hv_inst_get(v, "FreeSpace") == NULL;
            vol->is_default = v == def;
            if (shared) {
                vol->hosts = vmshift_string_list_new();
                g_ptr_array_add(vol->hosts, g_strdup(h->name));
            }
            g_ptr_array_add(out, vol);
        }
    }
    return g_steal_pointer(&out);
}
