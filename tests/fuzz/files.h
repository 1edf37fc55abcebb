/*
 * Shared by the libFuzzer targets that feed vmshift's file readers (config,
 * credentials, plan): a private directory (mode 0700, made once, removed at
 * exit) to write the input into, as the readers open real files.
 */
#ifndef VMSHIFT_FUZZ_FILES_H
#define VMSHIFT_FUZZ_FILES_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <glib.h>
#include <glib/gstdio.h>

static char *fuzz_dir;

static inline void
fuzz_dir_remove(void)
{
    GDir *d;
    const char *n;

    if (!fuzz_dir)
        return;
    /* two levels at most: the files and backends.d/ */
    d = g_dir_open(fuzz_dir, 0, NULL);
    while (d && (n = g_dir_read_name(d))) {
        g_autofree char *p = g_build_filename(fuzz_dir, n, NULL);
        GDir *sub = g_dir_open(p, 0, NULL);
        const char *m;
        while (sub && (m = g_dir_read_name(sub))) {
            g_autofree char *q = g_build_filename(p, m, NULL);
            g_unlink(q);
        }
        if (sub)
            g_dir_close(sub);
        if (g_rmdir(p) != 0)
            g_unlink(p);
    }
    if (d)
        g_dir_close(d);
    g_rmdir(fuzz_dir);
    g_clear_pointer(&fuzz_dir, g_free);
}

/* The private directory (made on the first call). */
static inline const char *
fuzz_dir_get(void)
{
    if (!fuzz_dir) {
        fuzz_dir = g_dir_make_tmp("vmshift-fuzz-XXXXXX", NULL);
        if (!fuzz_dir)
            abort();
        atexit(fuzz_dir_remove);
    }
    return fuzz_dir;
}

/* Writes @size bytes of @data to @path (mode 0600), or removes it when
 * @data is NULL. */
static inline void
fuzz_write(const char *path, const uint8_t *data, size_t size)
{
    if (!data) {
        g_unlink(path);
        return;
    }
    if (!g_file_set_contents_full(path, (const char *)data, (gssize)size, G_FILE_SET_CONTENTS_NONE,
                                  0600, NULL))
        abort();
}

/* Splits @data at the lines "%%" into at most @max parts: @parts[i] and
 * @sizes[i]; the parts not present are NULL. */
static inline void
fuzz_split(const uint8_t *data, size_t size, const uint8_t **parts, size_t *sizes, guint max)
{
    const uint8_t *p = data, *end = data + size;
    guint n = 0;

    for (guint i = 0; i < max; i++) {
        parts[i] = NULL;
        sizes[i] = 0;
    }
    while (n < max) {
        const uint8_t *sep = NULL;
        for (const uint8_t *q = p; n + 1 < max && q + 4 <= end; q++)
            if (!memcmp(q, "\n%%\n", 4)) {
                sep = q;
                break;
            }
        parts[n] = p;
        sizes[n] = sep ? (size_t)(sep + 1 - p) : (size_t)(end - p);
        n++;
        if (!sep)
            break;
        p = sep + 4;
    }
}

#endif /* VMSHIFT_FUZZ_FILES_H */
