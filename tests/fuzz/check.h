/*
 * The fuzz targets' own checks: a failed one names itself (file, line,
 * what it found) on stderr before it aborts, so that a crash that does not
 * reproduce still says which check fired (__builtin_trap()s are merged by
 * the compiler and say nothing).
 */
#ifndef VMSHIFT_FUZZ_CHECK_H
#define VMSHIFT_FUZZ_CHECK_H

#include <stdio.h>
#include <stdlib.h>

#define FUZZ_FAIL(...)                                                     \
    do {                                                                   \
        fprintf(stderr, "%s:%d: fuzz check failed: ", __FILE__, __LINE__); \
        fprintf(stderr, __VA_ARGS__);                                      \
        fputc('\n', stderr);                                               \
        abort();                                                           \
    } while (0)

#endif
