/* vmshift KVM plugin, libvirt transport: the domain XML (reading it,
 * rewiring NICs, the disks that move and their new paths). */
#include "config.h"

#include <string.h>

#include "kvm-lv.h"

xmlDoc *
lv_xml(virDomainPtr d, unsigned int flags, GError **error)
{
    g_autofree char *xml = virDomainGetXMLDesc(d, flags);
    if (!xml) {
        lv_error(error, VMSHIFT_ERROR_FAILED, "VM %s: reading its XML", virDomainGetName(d));
        return NULL;
    }
    return vmshift_xml_parse(xml, strlen(xml), "libvirt domain XML", error);
}

char *
lv_xml_dump(xmlDoc *doc)
{
    xmlChar *buf = NULL;
    int len = 0;
    xmlDocDumpMemory(doc, &buf, &len);
    char *r = g_strndup((const char *)buf, (gsize)MAX(len, 0));
    xmlFree(buf);
    return r;
}

/* whether interface @n (the @i-th) is the NIC @key: its alias, "netN" by
 * position, or its MAC */
static gboolean
lv_nic_is(xmlXPathContext *ctx, xmlNode *n, guint i, const char *key)
{
    g_autofree char *alias = vmshift_xpath_string(ctx, n, "alias/@name");
    g_autofree char *mac = vmshift_xpath_string(ctx, n, "mac/@address");
    g_autofree char *pos = g_strdup_printf("net%u", i);
    return !g_strcmp0(alias, key) || !g_strcmp0(pos, key) || (mac && !g_ascii_strcasecmp(mac, key));
}

/* interface @n to network (or bridge) @mp->value */
static gboolean
lv_nic_rewire(xmlNode *n, const VmshiftMapping *mp, GError **error)
{
    g_autofree char *type = vmshift_xml_get_attr(n, NULL, "type");
    xmlNode *src = vmshift_xml_child(n, NULL, "source");
    if (!src)
        src = xmlNewChild(n, NULL, BAD_CAST "source", NULL);
    if (!g_strcmp0(type, "bridge")) {
        xmlSetProp(src, BAD_CAST "bridge", BAD_CAST mp->value);
        return TRUE;
    }
    if (!g_strcmp0(type, "network")) {
        xmlSetProp(src, BAD_CAST "network", BAD_CAST mp->value);
        /* the source host's bridge and port are not the destination's */
        xmlUnsetProp(src, BAD_CAST "bridge");
        xmlUnsetProp(src, BAD_CAST "portid");
        return TRUE;
    }
    g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_NOT_SUPPORTED,
                "NIC %s is of type '%s': --network maps network and bridge "
                "interfaces only",
                mp->key, type ? type : "?");
    return FALSE;
}

/*
 * Rewires the <interface> elements of @doc for --network NIC=NET (NIC: the
 * alias, "netN" by position, or the MAC): an interface of type network gets
 * source/@network=NET, of type bridge source/@bridge=NET.
 */
gboolean
lv_map_networks(xmlDoc *doc, const VmshiftMigrationSpec *spec, GError **error)
{
    g_autoptr(xmlXPathContext) ctx = vmshift_xpath_new(doc, NULL);
    g_autoptr(GPtrArray) nics = vmshift_xpath_nodes(ctx, NULL, "/domain/devices/interface");
    for (guint k = 0; k < spec->networks->len; k++) {
        VmshiftMapping *mp = spec->networks->pdata[k];
        gboolean found = FALSE;
        for (guint i = 0; i < nics->len; i++) {
            if (!lv_nic_is(ctx, nics->pdata[i], i, mp->key))
                continue;
            found = TRUE;
            if (!lv_nic_rewire(nics->pdata[i], mp, error))
                return FALSE;
        }
        if (!found) {
            g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_NOT_FOUND,
                        "VM %s has no NIC '%s' (--network %s=%s)", spec->vm, mp->key, mp->key,
                        mp->value);
            return FALSE;
        }
    }
    return TRUE;
}

const char *
lv_disk_dir(const VmshiftMigrationSpec *spec, const char *dev)
{
    for (guint i = 0; i < spec->disk_paths->len; i++) {
        VmshiftMapping *mp = spec->disk_paths->pdata[i];
        if (!strcmp(mp->key, dev))
            return mp->value;
    }
    return spec->dest_path;
}

char *
lv_disk_source(virDomainPtr d, const char *dev, gboolean inactive)
{
    g_autoptr(xmlDoc) doc = lv_xml(d, inactive ? VIR_DOMAIN_XML_INACTIVE : 0, NULL);
    if (!doc)
        return NULL;
    g_autoptr(xmlXPathContext) ctx = vmshift_xpath_new(doc, NULL);
    g_autofree char *expr = g_strdup_printf("/domain/devices/disk[target/@dev='%s']"
                                            "/source/@file",
                                            dev);
    return vmshift_xpath_string(ctx, NULL, expr);
}

xmlNode *
lv_xml_disk(xmlXPathContext *ctx, const char *dev)
{
    g_autofree char *expr = g_strdup_printf("/domain/devices/disk[target/@dev='%s']", dev);
    return vmshift_xpath_node(ctx, NULL, expr);
}

gboolean
lv_xml_set_source(xmlNode *disk, const char *path)
{
    xmlNode *src = disk ? vmshift_xml_child(disk, NULL, "source") : NULL;
    if (!src)
        return FALSE;
    g_autofree char *cur = vmshift_xml_get_attr(src, NULL, "file");
    xmlSetProp(src, BAD_CAST "file", BAD_CAST path);
    /* the copy is a whole image: no backing chain */
    xmlNode *bs;
    while ((bs = vmshift_xml_child(disk, NULL, "backingStore"))) {
        xmlUnlinkNode(bs);
        xmlFreeNode(bs);
    }
    return g_strcmp0(cur, path) != 0;
}

/* ---- the disks that move ------------------------------------------------- */

void
lv_move_free(LvMove *m)
{
    g_free(m->dev);
    g_free(m->src_path);
    g_free(m->dst_path);
    g_free(m->format);
    g_free(m);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC(LvMove, lv_move_free)

/* the move of file disk @n, or NULL when it stays */
static LvMove *
lv_disk_move(xmlXPathContext *ctx, xmlNode *n, const VmshiftMigrationSpec *spec, gboolean same_path)
{
    g_autoptr(LvMove) m = g_new0(LvMove, 1);
    m->dev = vmshift_xpath_string(ctx, n, "target/@dev");
    m->src_path = vmshift_xpath_string(ctx, n, "source/@file");
    const char *dir = m->dev ? lv_disk_dir(spec, m->dev) : NULL;
    if (!m->dev || !m->src_path || (!dir && !same_path))
        return NULL;
    if (dir) {
        g_autofree char *base = g_path_get_basename(m->src_path);
        m->dst_path = g_build_filename(dir, base, NULL);
    } else {
        m->dst_path = g_strdup(m->src_path);
    }
    m->format = vmshift_xpath_string(ctx, n, "driver/@type");
    return g_steal_pointer(&m);
}

void
lv_collect_moves(xmlDoc *doc, const VmshiftMigrationSpec *spec, gboolean same_path,
                 GPtrArray *moves)
{
    g_autoptr(xmlXPathContext) ctx = vmshift_xpath_new(doc, NULL);
    g_autoptr(GPtrArray) disks = vmshift_xpath_nodes(
        ctx, NULL, "/domain/devices/disk[@device='disk' and @type='file']");
    for (guint i = 0; i < disks->len; i++) {
        LvMove *m = lv_disk_move(ctx, disks->pdata[i], spec, same_path);
        if (m)
            g_ptr_array_add(moves, m);
    }
}

gboolean
lv_moves_have(GPtrArray *moves, const char *dev)
{
    for (guint k = 0; k < moves->len; k++)
        if (!strcmp(((LvMove *)moves->pdata[k])->dev, dev))
            return TRUE;
    return FALSE;
}

gboolean
lv_no_file_disk(const VmshiftMigrationSpec *spec, const VmshiftMapping *mp, GError **error)
{
    g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_NOT_FOUND,
                "VM %s has no file disk '%s' (--disk-path %s=%s)", spec->vm, mp->key, mp->key,
                mp->value);
    return FALSE;
}

gboolean
lv_plan_moves(xmlDoc *doc, const VmshiftMigrationSpec *spec, gboolean same_path, GPtrArray *moves,
              GError **error)
{
    lv_collect_moves(doc, spec, same_path, moves);
    for (guint i = 0; i < spec->disk_paths->len; i++) {
        VmshiftMapping *mp = spec->disk_paths->pdata[i];
        if (!lv_moves_have(moves, mp->key))
            return lv_no_file_disk(spec, mp, error);
    }
    return TRUE;
}

void
lv_rewrite_disks(xmlDoc *doc, GPtrArray *moves)
{
    g_autoptr(xmlXPathContext) ctx = vmshift_xpath_new(doc, NULL);
    for (guint i = 0; i < moves->len; i++) {
        LvMove *m = moves->pdata[i];
        lv_xml_set_source(lv_xml_disk(ctx, m->dev), m->dst_path);
    }
}

char *
lv_paths(GPtrArray *moves, gboolean dst)
{
    GString *s = g_string_new(NULL);
    for (guint i = 0; i < moves->len; i++) {
        LvMove *m = moves->pdata[i];
        g_string_append_printf(s, "%s%s", s->len ? ";" : "", dst ? m->dst_path : m->src_path);
    }
    return g_string_free(s, FALSE);
}

gboolean
lv_save_moves(VmshiftJob *job, GPtrArray *moves, GError **error)
{
    g_autofree char *np = lv_paths(moves, TRUE);
    g_autofree char *op = lv_paths(moves, FALSE);
    return vmshift_job_save(job, "new-vols", np, error)
           && vmshift_job_save(job, "old-vols", op, error);
}
