/*
 * vmshift host: the job of a move between backends — its phases, the
 * counting and hashing of every byte the source gives, the verification at
 * the destination, the rollback, and its repair. See crossmove.h.
 */
#include "config.h"

#include <errno.h>
#include <string.h>

#include <glib/gstdio.h>
#include <openssl/evp.h>

#include "host/convert.h"
#include "host/crossmove.h"
#include "host/rules.h"

/* ---- SHA-256 (OpenSSL's: the CPU's SHA instructions where it has them) ---- */

static EVP_MD_CTX *
sha256_new(void)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();

    if (!ctx || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1)
        g_error("OpenSSL: cannot start a SHA-256 digest");
    return ctx;
}

/* the digest in hex; @ctx is freed */
static char *
sha256_end(EVP_MD_CTX *ctx)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    GString *hex = g_string_sized_new(2 * 32);

    if (EVP_DigestFinal_ex(ctx, md, &len) != 1)
        g_error("OpenSSL: cannot finish a SHA-256 digest");
    EVP_MD_CTX_free(ctx);
    for (unsigned int i = 0; i < len; i++)
        g_string_append_printf(hex, "%02x", md[i]);
    return g_string_free(hex, FALSE);
}

/* What the source gave for one disk: bytes and their SHA-256, once its
 * stream was read to the end. */
typedef struct {
    guint64 bytes;
    char *sha256;
} CrossRead;

static void
cross_read_free(gpointer p)
{
    CrossRead *r = p;
    g_free(r->sha256);
    g_free(r);
}

struct HostCross {
    HostBackend *src;
    HostBackend *dst; /* opened by the first phase that needs it */
    HostJournal *journal;
    gint64 id;
    const char *pending; /* the host phase being entered (worker thread) */
    GMutex lock;
    GHashTable *read;  /* disk id -> CrossRead (under lock) */
    guint64 bytes;     /* read from the source so far (under lock) */
    gint verified;     /* the disks were verified: past the point of no return (atomic) */
    GPtrArray *staged; /* --convert-guest: local raw files, in source_vm's disk order */
    char *stage_dir;
};

HostCross *
host_cross_new(HostBackend *src, HostJournal *journal, gint64 id)
{
    HostCross *c = g_new0(HostCross, 1);

    c->src = src;
    c->journal = journal;
    c->id = id;
    g_mutex_init(&c->lock);
    c->read = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, cross_read_free);
    return c;
}

void
host_cross_free(HostCross *c)
{
    if (!c)
        return;
    g_hash_table_unref(c->read);
    if (c->staged)
        g_ptr_array_unref(c->staged);
    g_free(c->stage_dir);
    g_mutex_clear(&c->lock);
    g_free(c);
}

/* ---- the hashing stream --------------------------------------------------------------------- */

/* A source disk's stream as import_vm reads it: counted, hashed, checked
 * against the capacity the source declared; at its end, recorded. */
typedef struct {
    GFilterInputStream parent;
    HostCross *cross;
    char *disk;
    guint64 capacity, n;
    EVP_MD_CTX *sum;
    gboolean ended;
} HostHashStream;

typedef struct {
    GFilterInputStreamClass parent_class;
} HostHashStreamClass;

GType host_hash_stream_get_type(void);
G_DEFINE_TYPE(HostHashStream, host_hash_stream, G_TYPE_FILTER_INPUT_STREAM)

static void
hash_stream_finalize(GObject *obj)
{
    HostHashStream *h = (HostHashStream *)obj;

    g_free(h->disk);
    if (h->sum)
        EVP_MD_CTX_free(h->sum);
    G_OBJECT_CLASS(host_hash_stream_parent_class)->finalize(obj);
}

static void
hash_stream_ended(HostHashStream *h)
{
    CrossRead *r = g_new0(CrossRead, 1);

    r->bytes = h->n;
    r->sha256 = sha256_end(g_steal_pointer(&h->sum));
    g_mutex_lock(&h->cross->lock);
    g_hash_table_replace(h->cross->read, g_strdup(h->disk), r);
    g_mutex_unlock(&h->cross->lock);
}

static gssize
hash_stream_read(GInputStream *in, void *buf, gsize count, GCancellable *cancellable,
                 GError **error)
{
    HostHashStream *h = (HostHashStream *)in;
    GInputStream *base = g_filter_input_stream_get_base_stream(G_FILTER_INPUT_STREAM(in));
    gssize n = g_input_stream_read(base, buf, count, cancellable, error);

    if (n < 0)
        return -1;
    if (n > 0) {
        if (h->n + (guint64)n > h->capacity) {
            g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_PROTOCOL,
                        "disk %s: the source gives more than its %" G_GUINT64_FORMAT " bytes",
                        h->disk, h->capacity);
            return -1;
        }
        EVP_DigestUpdate(h->sum, buf, (size_t)n);
        h->n += (guint64)n;
        g_mutex_lock(&h->cross->lock);
        h->cross->bytes += (guint64)n;
        g_mutex_unlock(&h->cross->lock);
    } else if (count > 0 && !h->ended) {
        h->ended = TRUE;
        if (h->n != h->capacity) {
            g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_PROTOCOL,
                        "disk %s: the source gave %" G_GUINT64_FORMAT
                        " bytes, not %" G_GUINT64_FORMAT,
                        h->disk, h->n, h->capacity);
            return -1;
        }
        hash_stream_ended(h);
    }
    return n;
}

/* skipping reads (and hashes) what it skips */
static gssize
hash_stream_skip(GInputStream *in, gsize count, GCancellable *cancellable, GError **error)
{
    g_autofree char *buf = g_malloc(MIN(count, (gsize)1 << 20));
    gsize done = 0;

    while (done < count) {
        gssize n = hash_stream_read(in, buf, MIN(count - done, (gsize)1 << 20), cancellable, error);
        if (n < 0)
            return -1;
        if (n == 0)
            break;
        done += (gsize)n;
    }
    return (gssize)done;
}

static void
host_hash_stream_class_init(HostHashStreamClass *klass)
{
    G_OBJECT_CLASS(klass)->finalize = hash_stream_finalize;
    G_INPUT_STREAM_CLASS(klass)->read_fn = hash_stream_read;
    G_INPUT_STREAM_CLASS(klass)->skip = hash_stream_skip;
}

static void
host_hash_stream_init(HostHashStream *h)
{
    h->sum = sha256_new();
}

static GInputStream *
hash_stream_new(HostCross *c, GInputStream *base, const char *disk, guint64 capacity)
{
    HostHashStream *h = g_object_new(host_hash_stream_get_type(), "base-stream", base,
                                     "close-base-stream", TRUE, NULL);
    h->cross = c;
    h->disk = g_strdup(disk);
    h->capacity = capacity;
    return G_INPUT_STREAM(h);
}

/* ---- hooks -------------------------------------------------------------------------------- */

gboolean
host_cross_hook_phase(HostCross *c, VmshiftJob *job, VmshiftPhase phase, const char **entered,
                      GError **error)
{
    const char *name = c->pending ? c->pending : phase == VMSHIFT_PHASE_DONE ? "done" : NULL;
    VmshiftJobProgress pr = { .struct_size = sizeof pr };
    gboolean ok;

    if (!name)
        return TRUE; /* a plugin's own phase inside import_vm: not the job's */
    vmshift_job_get_progress(job, &pr);
    ok = host_journal_set_phase_at(c->journal, c->id, name, pr.location_host, pr.location_detail,
                                   FALSE, error);
    vmshift_job_progress_clear(&pr);
    if (!ok)
        return FALSE;
    *entered = name;
    host_test_kill_at_name(name);
    return TRUE;
}

static const VmshiftDisk *
source_disk(const VmshiftMigrationSpec *spec, const char *disk_id, guint *index)
{
    for (guint i = 0; spec && spec->source_vm && i < spec->source_vm->disks->len; i++) {
        const VmshiftDisk *d = g_ptr_array_index(spec->source_vm->disks, i);
        if (!g_strcmp0(d->id, disk_id)) {
            *index = i;
            return d;
        }
    }
    return NULL;
}

GInputStream *
host_cross_open_source(HostCross *c, VmshiftJob *job, const char *disk_id, guint64 *capacity,
                       GError **error)
{
    const VmshiftMigrationSpec *spec = vmshift_job_get_spec(job);
    g_autoptr(GInputStream) base = NULL;
    guint index = 0;
    const VmshiftDisk *d = source_disk(spec, disk_id, &index);
    guint64 cap;

    if (!d) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_NOT_FOUND,
                    "the VM moved has no disk '%s' at the source", disk_id);
        return NULL;
    }
    cap = d->capacity;
    if (c->staged) {
        /* --convert-guest: the converted local copy is what moves */
        const char *path = g_ptr_array_index(c->staged, index);
        g_autoptr(GFile) f = g_file_new_for_path(path);
        g_autoptr(GFileInfo) info = g_file_query_info(f, G_FILE_ATTRIBUTE_STANDARD_SIZE,
                                                      G_FILE_QUERY_INFO_NONE, NULL, error);
        if (!info || !(base = G_INPUT_STREAM(g_file_read(f, NULL, error))))
            return NULL;
        cap = (guint64)g_file_info_get_size(info);
    } else {
        if (!(d->size_known & VMSHIFT_DISK_CAPACITY_KNOWN) && !cap) {
            g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_FAILED,
                        "the size of disk %s is not known: it cannot be copied", disk_id);
            return NULL;
        }
        base = host_backend_open_disk(c->src, spec->vm, disk_id, vmshift_job_get_cancellable(job),
                                      error);
        if (!base) {
            g_prefix_error(error, "source disk %s: ", disk_id);
            return NULL;
        }
    }
    *capacity = cap;
    return hash_stream_new(c, base, disk_id, cap);
}

/* ---- phases ------------------------------------------------------------------------------- */

/* Enters the host phase @name (journaled before anything of it runs). */
static gboolean
enter(HostCross *c, VmshiftJob *job, const char *name, VmshiftPhase as, GError **error)
{
    gboolean ok;

    c->pending = name;
    ok = vmshift_job_set_phase(job, as, error);
    c->pending = NULL;
    return ok;
}

static void
set_location(VmshiftJob *job, HostBackend *b, const char *host, const char *detail)
{
    g_autofree char *where = g_strdup_printf("%s:%s", host_backend_name(b), host ? host : "-");
    vmshift_job_set_location(job, where, detail);
}

static gboolean
run_checks(HostCross *c, VmshiftJob *job, const VmshiftVm *vm, GError **error)
{
    const VmshiftMigrationSpec *spec = vmshift_job_get_spec(job);
    g_autoptr(GPtrArray) f = NULL;
    guint errors = 0, warnings = 0;
    const VmshiftFinding *first = NULL;

    if (!enter(c, job, "validate", VMSHIFT_PHASE_VALIDATE, error))
        return FALSE;
    if (!(f = host_cross_validate(c->src, spec, vm, error)))
        return FALSE;
    for (guint i = 0; i < f->len; i++) {
        const VmshiftFinding *x = g_ptr_array_index(f, i);
        vmshift_job_log(job,
                        x->severity == VMSHIFT_SEVERITY_ERROR     ? VMSHIFT_LOG_ERROR
                        : x->severity == VMSHIFT_SEVERITY_WARNING ? VMSHIFT_LOG_WARNING
                                                                  : VMSHIFT_LOG_INFO,
                        "check %s: %s", x->code, x->message);
        if (x->severity == VMSHIFT_SEVERITY_ERROR && !first)
            first = x;
    }
    host_findings_count(f, &errors, &warnings);
    if (errors) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_CONFLICT,
                    "validation failed with %u error%s (first: %s)", errors, errors == 1 ? "" : "s",
                    first->message);
        return FALSE;
    }
    if (warnings && !spec->force) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_CONFLICT,
                    "validation found %u warning%s; rerun with --force to accept %s", warnings,
                    warnings == 1 ? "" : "s", warnings == 1 ? "it" : "them");
        return FALSE;
    }
    return TRUE;
}

/* export: the source still has the VM off; no VM of its name waits at the
 * destination (remove_vm of a rollback must only ever meet our own). */
static gboolean
run_export(HostCross *c, VmshiftJob *job, GError **error)
{
    const VmshiftMigrationSpec *spec = vmshift_job_get_spec(job);
    g_autoptr(VmshiftVm) now = NULL, there = NULL;
    g_autoptr(GError) err = NULL;

    if (!enter(c, job, "export", VMSHIFT_PHASE_PREPARE, error))
        return FALSE;
    if (!(now = host_backend_export_vm(c->src, spec->vm, error))) {
        g_prefix_error(error, "export of VM '%s' from backend %s: ", spec->vm,
                       host_backend_name(c->src));
        return FALSE;
    }
    set_location(job, c->src, now->host ? now->host : spec->source_vm->host, "stopped");
    if (now->disks->len != spec->source_vm->disks->len) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_CONFLICT,
                    "VM '%s' changed since it was checked: %u disk(s), not %u", spec->vm,
                    now->disks->len, spec->source_vm->disks->len);
        return FALSE;
    }
    there = host_backend_get_vm(c->dst, spec->vm, &err);
    if (there || !g_error_matches(err, VMSHIFT_ERROR, VMSHIFT_ERROR_NOT_FOUND)) {
        if (there)
            g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_CONFLICT,
                        "backend %s has a VM named '%s' already (on '%s')", spec->dest_backend,
                        spec->vm, there->host ? there->host : "-");
        else
            g_propagate_prefixed_error(error, g_steal_pointer(&err),
                                       "backend %s: ", spec->dest_backend);
        return FALSE;
    }
    return TRUE;
}

/* A copy of the spec for the destination: without the host's own keys. */
static VmshiftMigrationSpec *
plugin_spec(const VmshiftMigrationSpec *spec)
{
    VmshiftMigrationSpec *s = vmshift_migration_spec_copy(spec);
    g_auto(GVariantBuilder) b = G_VARIANT_BUILDER_INIT(G_VARIANT_TYPE_VARDICT);
    GVariantIter it;
    const char *k;
    GVariant *v;
    guint n = 0;

    if (!s->options)
        return s;
    g_variant_iter_init(&it, s->options);
    while (g_variant_iter_next(&it, "{&sv}", &k, &v)) {
        if (!g_str_has_prefix(k, "vmshift.")) {
            g_variant_builder_add(&b, "{sv}", k, v);
            n++;
        }
        g_variant_unref(v);
    }
    g_variant_unref(s->options);
    s->options = n ? g_variant_ref_sink(g_variant_builder_end(&b)) : NULL;
    return s;
}

/* --convert-guest: each disk staged as a local raw file under the state
 * directory (free space checked first), converted by virt-v2v in place;
 * the import then reads the staged files. */
static gboolean
run_convert(HostCross *c, VmshiftJob *job, GError **error)
{
    const VmshiftMigrationSpec *spec = vmshift_job_get_spec(job);
    const VmshiftVm *vm = spec->source_vm;
    GCancellable *cancel = vmshift_job_get_cancellable(job);
    g_autoptr(GFile) dir = NULL;
    g_autoptr(GFileInfo) fs = NULL;
    guint64 need = 0, avail;

    if (!enter(c, job, "convert", VMSHIFT_PHASE_TRANSFER, error))
        return FALSE;
    c->stage_dir = g_strdup_printf("%s/convert/job-%" G_GINT64_FORMAT,
                                   c->src->reg->config->state_dir, c->id);
    if (!vmshift_job_save(job, "vmshift.cross.stage-dir", c->stage_dir, error))
        return FALSE;
    if (g_mkdir_with_parents(c->stage_dir, 0700) != 0) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_FAILED, "cannot create %s: %s",
                    c->stage_dir, g_strerror(errno));
        return FALSE;
    }
    for (guint i = 0; i < vm->disks->len; i++)
        need += ((const VmshiftDisk *)g_ptr_array_index(vm->disks, i))->capacity;
    dir = g_file_new_for_path(c->stage_dir);
    fs = g_file_query_filesystem_info(dir, G_FILE_ATTRIBUTE_FILESYSTEM_FREE, cancel, error);
    if (!fs)
        return FALSE;
    avail = g_file_info_get_attribute_uint64(fs, G_FILE_ATTRIBUTE_FILESYSTEM_FREE);
    if (avail < need) {
        g_autofree char *a = host_format_bytes(avail), *n = host_format_bytes(need);
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_NO_SPACE,
                    "--convert-guest stages the disks in %s: %s free, %s needed", c->stage_dir, a,
                    n);
        return FALSE;
    }
    c->staged = g_ptr_array_new_with_free_func(g_free);
    for (guint i = 0; i < vm->disks->len; i++) {
        const VmshiftDisk *d = g_ptr_array_index(vm->disks, i);
        g_autofree char *base = g_strdup_printf("disk%u.raw", i);
        char *path = g_build_filename(c->stage_dir, base, NULL);
        g_autoptr(GInputStream) in = NULL;
        g_ptr_array_add(c->staged, path);
        if (!(in = host_backend_open_disk(c->src, spec->vm, d->id, cancel, error))
            || !vmshift_disk_write_raw(in, d->capacity, path, "raw", job, cancel, error)) {
            g_prefix_error(error, "staging disk %s: ", d->id);
            return FALSE;
        }
    }
    return host_convert_guest(vm, c->staged, job, cancel, error);
}

static void
remove_staged(HostCross *c)
{
    for (guint i = 0; c->staged && i < c->staged->len; i++)
        g_unlink(g_ptr_array_index(c->staged, i));
    if (c->stage_dir)
        g_rmdir(c->stage_dir);
}

static gboolean
run_import(HostCross *c, VmshiftJob *job, GError **error)
{
    g_autoptr(VmshiftMigrationSpec) ps = plugin_spec(vmshift_job_get_spec(job));

    if (!enter(c, job, "import", VMSHIFT_PHASE_TRANSFER, error))
        return FALSE;
    if (host_backend_import_vm(c->dst, ps, job, error))
        return TRUE;
    g_prefix_error(error, "import into backend %s: ", host_backend_name(c->dst));
    return FALSE;
}

/* Reads @in to its end: its length and SHA-256. */
static gboolean
hash_all(GInputStream *in, GCancellable *cancel, guint64 *len, char **sha, GError **error)
{
    EVP_MD_CTX *sum = sha256_new();
    g_autofree guchar *buf = g_malloc(1 << 20);
    gssize n;

    *len = 0;
    while ((n = g_input_stream_read(in, buf, 1 << 20, cancel, error)) > 0) {
        EVP_DigestUpdate(sum, buf, (size_t)n);
        *len += (guint64)n;
    }
    if (n < 0) {
        EVP_MD_CTX_free(sum);
        return FALSE;
    }
    *sha = sha256_end(sum);
    return TRUE;
}

/* One destination disk @dd against what the source gave for @sd. */
static gboolean
verify_disk(HostCross *c, VmshiftJob *job, const VmshiftDisk *sd, const VmshiftDisk *dd,
            GError **error)
{
    const VmshiftMigrationSpec *spec = vmshift_job_get_spec(job);
    g_autoptr(GInputStream) in = NULL;
    g_autofree char *sha = NULL, *want = NULL;
    guint64 len = 0, want_len = 0;
    CrossRead *r;

    g_mutex_lock(&c->lock);
    if ((r = g_hash_table_lookup(c->read, sd->id))) {
        want = g_strdup(r->sha256);
        want_len = r->bytes;
    }
    g_mutex_unlock(&c->lock);
    if (!want) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_FAILED,
                    "disk %s: the import did not read it from the source to its end", sd->id);
        return FALSE;
    }
    in = host_backend_open_disk(c->dst, spec->vm, dd->id, vmshift_job_get_cancellable(job), error);
    if (!in || !hash_all(in, vmshift_job_get_cancellable(job), &len, &sha, error)) {
        g_prefix_error(error, "reading disk %s back from backend %s: ", dd->id,
                       host_backend_name(c->dst));
        return FALSE;
    }
    if (len != want_len || strcmp(sha, want) != 0) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_FAILED,
                    "disk %s differs at the destination (disk %s): %" G_GUINT64_FORMAT
                    " bytes with SHA-256 %.16s..., the source gave %" G_GUINT64_FORMAT
                    " bytes with SHA-256 %.16s...",
                    sd->id, dd->id, len, sha, want_len, want);
        return FALSE;
    }
    vmshift_job_log(job, VMSHIFT_LOG_INFO,
                    "disk %s verified at the destination as %s: %" G_GUINT64_FORMAT
                    " bytes, SHA-256 %s",
                    sd->id, dd->id, len, sha);
    return TRUE;
}

static gboolean
run_verify(HostCross *c, VmshiftJob *job, GError **error)
{
    const VmshiftMigrationSpec *spec = vmshift_job_get_spec(job);
    const VmshiftVm *sv = spec->source_vm;
    g_autoptr(VmshiftVm) dv = NULL;
    g_autofree char *what = NULL;

    if (!enter(c, job, "verify", VMSHIFT_PHASE_SWITCHOVER, error))
        return FALSE;
    if (!(dv = host_backend_export_vm(c->dst, spec->vm, error))) {
        g_prefix_error(error,
                       "describing the imported VM at backend %s: ", host_backend_name(c->dst));
        return FALSE;
    }
    if (dv->disks->len != sv->disks->len) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_FAILED,
                    "the imported VM has %u disk(s), the source %u", dv->disks->len,
                    sv->disks->len);
        return FALSE;
    }
    for (guint i = 0; i < sv->disks->len; i++)
        if (!verify_disk(c, job, g_ptr_array_index(sv->disks, i), g_ptr_array_index(dv->disks, i),
                         error))
            return FALSE;
    /* the point of no return: from here the VM is at the destination */
    if (!vmshift_job_save(job, "vmshift.cross.verified", "true", error))
        return FALSE;
    g_atomic_int_set(&c->verified, 1);
    set_location(job, c->dst, spec->dest_host, "stopped");
    what = g_strdup_printf("%u disk(s), SHA-256", sv->disks->len);
    vmshift_job_set_result(job, "verified", what);
    return TRUE;
}

/* acl: the destination's access rules, when it has any. */
static gboolean
run_acl(HostCross *c, VmshiftJob *job, GError **error)
{
    const VmshiftMigrationSpec *spec = vmshift_job_get_spec(job);
    g_autoptr(GError) acl = NULL;

    if (!enter(c, job, "acl", VMSHIFT_PHASE_ACL, error))
        return FALSE;
    if (!host_backend_has_op(c->dst, "recreate_acl")
        || host_backend_recreate_acl(c->dst, spec->vm, job, &acl))
        return TRUE;
    if (g_error_matches(acl, VMSHIFT_ERROR, VMSHIFT_ERROR_NOT_SUPPORTED)) {
        vmshift_job_log(job, VMSHIFT_LOG_WARNING, "access rules not recreated: %s", acl->message);
        return TRUE;
    }
    g_set_error(error, acl->domain, acl->code,
                "the VM moved, but recreating its access rules failed: %s "
                "(retry with 'vmshift acl recreate %s:%s')",
                acl->message, spec->dest_backend, spec->vm);
    return FALSE;
}

/* finish: the source removed (--delete-source), the copy started (--start). */
static gboolean
run_finish(HostCross *c, VmshiftJob *job, GError **error)
{
    const VmshiftMigrationSpec *spec = vmshift_job_get_spec(job);
    g_autoptr(VmshiftVm) still = NULL;
    g_autoptr(GError) err = NULL;

    if (!enter(c, job, "finish", VMSHIFT_PHASE_CLEANUP, error))
        return FALSE;
    if (host_spec_flag(spec, HOST_SPEC_DELETE_SOURCE_KEY)) {
        still = host_backend_get_vm(c->src, spec->vm, &err);
        if (still && !host_backend_remove_vm(c->src, spec->vm, NULL, error)) {
            g_prefix_error(error, "the VM moved, but removing it from backend %s failed: ",
                           host_backend_name(c->src));
            return FALSE;
        }
        vmshift_job_log(job, VMSHIFT_LOG_INFO, "source VM '%s' removed from backend %s", spec->vm,
                        host_backend_name(c->src));
        vmshift_job_set_result(job, "source", "removed");
    } else {
        vmshift_job_set_result(job, "source", "kept, off");
    }
    if (spec->start) {
        if (!host_backend_start_vm(c->dst, spec->vm, job, error)) {
            g_prefix_error(error, "the VM moved, but starting it at backend %s failed: ",
                           host_backend_name(c->dst));
            return FALSE;
        }
        set_location(job, c->dst, spec->dest_host, "running");
    }
    return TRUE;
}

/* Any failure before verify passed: the partial destination goes (what
 * import_vm saved with the job too), the source was never changed. */
static void
roll_back(HostCross *c, VmshiftJob *job, const GError *why)
{
    const VmshiftMigrationSpec *spec = vmshift_job_get_spec(job);
    g_autoptr(GError) err = NULL;

    if (!c->dst)
        return;
    vmshift_job_log(job, VMSHIFT_LOG_WARNING,
                    "%s; removing the partial VM '%s' from backend %s; the source is unchanged",
                    why ? why->message : "failed", spec->vm, host_backend_name(c->dst));
    if (!host_backend_remove_vm(c->dst, spec->vm, job, &err))
        vmshift_job_log(job, VMSHIFT_LOG_ERROR,
                        "removing the partial VM from backend %s failed: %s "
                        "(repair: vmshift job repair %" G_GINT64_FORMAT ")",
                        host_backend_name(c->dst), err->message, c->id);
}

static gboolean
open_dest(HostCross *c, const VmshiftMigrationSpec *spec, GError **error)
{
    if (!c->dst)
        c->dst = host_registry_get_open(c->src->reg, spec->dest_backend, error);
    return c->dst != NULL;
}

gboolean
host_cross_run(HostCross *c, VmshiftJob *job, const VmshiftVm *vm, GError **error)
{
    const VmshiftMigrationSpec *spec = vmshift_job_get_spec(job);
    GCancellable *cancel = vmshift_job_get_cancellable(job);
    gboolean ok, convert = host_spec_flag(spec, HOST_SPEC_CONVERT_KEY);
    g_autofree char *bytes = NULL;

    set_location(job, c->src, vm ? vm->host : spec->source_vm->host,
                 vm ? vmshift_power_state_name(vm->power_state) : "stopped");
    if (!open_dest(c, spec, error) || !run_checks(c, job, vm, error))
        return FALSE;
    vmshift_job_set_result(job, "dest-backend", spec->dest_backend);
    if (!run_export(c, job, error))
        return FALSE;
    ok = (!convert || run_convert(c, job, error)) && run_import(c, job, error)
         && !g_cancellable_set_error_if_cancelled(cancel, error) && run_verify(c, job, error);
    remove_staged(c);
    if (!ok) {
        roll_back(c, job, error ? *error : NULL);
        set_location(job, c->src, spec->source_vm->host, "stopped");
        return FALSE;
    }
    /* verified: a cancel can no longer undo the move */
    g_cancellable_reset(cancel);
    g_mutex_lock(&c->lock);
    bytes = g_strdup_printf("%" G_GUINT64_FORMAT, c->bytes);
    g_mutex_unlock(&c->lock);
    vmshift_job_set_result(job, "transferred-bytes", bytes);
    return run_acl(c, job, error) && run_finish(c, job, error);
}

gboolean
host_cross_verified(HostCross *c)
{
    return g_atomic_int_get(&c->verified) != 0;
}

/* ---- repair ------------------------------------------------------------------------------- */

static void
remove_stage_dir(VmshiftJob *job)
{
    g_autofree char *stage = vmshift_job_get_saved(job, "vmshift.cross.stage-dir");
    g_autoptr(GDir) d = stage ? g_dir_open(stage, 0, NULL) : NULL;
    const char *f;

    while (d && (f = g_dir_read_name(d))) {
        g_autofree char *p = g_build_filename(stage, f, NULL);
        g_unlink(p);
    }
    if (stage)
        g_rmdir(stage);
}

/* Whether the job had entered import (or later): before it, the
 * destination was never asked to make anything. */
static gboolean
reached_import(const char *reached)
{
    static const char *const before[] = { "none", "validate", "export", "convert", NULL };

    return reached && !g_strv_contains(before, reached);
}

/* Before verify passed: the partial destination goes; the VM is at the
 * source as it was. --retry then runs the move again. */
static gboolean
repair_unverified(HostCross *c, VmshiftJob *job, const char *reached, HostRepairMode mode,
                  GError **error)
{
    const VmshiftMigrationSpec *spec = vmshift_job_get_spec(job);
    g_autoptr(VmshiftVm) vm = NULL;
    gboolean made = reached_import(reached);

    vmshift_job_log(job, VMSHIFT_LOG_INFO,
                    "job %" G_GINT64_FORMAT " stopped in phase %s, before its disks were verified: "
                    "%s",
                    c->id, reached ? reached : "none",
                    made ? "removing what it made at the destination" : "nothing was made there");
    if (made && !host_backend_remove_vm(c->dst, spec->vm, job, error)) {
        g_prefix_error(error,
                       "removing the partial VM from backend %s: ", host_backend_name(c->dst));
        return FALSE;
    }
    set_location(job, c->src, spec->source_vm->host, "stopped");
    vmshift_job_set_result(job, "moved", "false");
    if (mode == HOST_REPAIR_CLEANUP) {
        vmshift_job_set_result(job, "cleanup",
                               made ? "partial destination removed" : "nothing left");
        return TRUE;
    }
    if (mode != HOST_REPAIR_RETRY) {
        vmshift_job_set_result(job, "repair", made ? "rolled-back" : "nothing-to-do");
        return TRUE;
    }
    vmshift_job_log(job, VMSHIFT_LOG_INFO, "retrying the move between backends");
    if (!(vm = host_backend_get_vm(c->src, spec->vm, error)) || !host_cross_run(c, job, vm, error))
        return FALSE;
    vmshift_job_set_result(job, "repair", "retried");
    vmshift_job_set_result(job, "moved", "true");
    return TRUE;
}

gboolean
host_cross_repair(HostCross *c, VmshiftJob *job, const char *reached, HostRepairMode mode,
                  GError **error)
{
    const VmshiftMigrationSpec *spec = vmshift_job_get_spec(job);
    g_autofree char *verified = vmshift_job_get_saved(job, "vmshift.cross.verified");

    if (!spec || !spec->source_vm || !open_dest(c, spec, error))
        return FALSE;
    remove_stage_dir(job);
    if (!verified)
        return repair_unverified(c, job, reached, mode, error);
    g_atomic_int_set(&c->verified, 1);
    set_location(job, c->dst, spec->dest_host, "stopped");
    if (mode == HOST_REPAIR_UNDO) {
        g_set_error(error, VMSHIFT_ERROR, VMSHIFT_ERROR_NOT_SUPPORTED,
                    "job %" G_GINT64_FORMAT " had verified VM '%s' at backend %s: to undo it, move "
                    "it back (vmshift migrate %s:%s --to %s:%s)",
                    c->id, spec->vm, spec->dest_backend, spec->dest_backend, spec->vm,
                    host_backend_name(c->src),
                    spec->source_vm->host ? spec->source_vm->host : "HOST");
        return FALSE;
    }
    if (mode == HOST_REPAIR_CLEANUP) {
        vmshift_job_set_result(job, "cleanup", "nothing left");
        return TRUE;
    }
    vmshift_job_log(job, VMSHIFT_LOG_INFO,
                    "job %" G_GINT64_FORMAT " stopped in phase %s, after its disks were verified: "
                    "finishing it",
                    c->id, reached ? reached : "none");
    if ((g_strcmp0(reached, "finish") != 0 && g_strcmp0(reached, "done") != 0
         && !run_acl(c, job, error))
        || (g_strcmp0(reached, "done") != 0 && !run_finish(c, job, error)))
        return FALSE;
    vmshift_job_set_result(job, "repair", mode == HOST_REPAIR_RETRY ? "retried" : "resumed");
    vmshift_job_set_result(job, "moved", "true");
    return TRUE;
}
