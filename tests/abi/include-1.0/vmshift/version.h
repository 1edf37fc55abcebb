/*
 * vmshift SDK: versions.
 *
 * Include <vmshift/vmshift.h>, not this file.
 */
#if !defined(VMSHIFT_INSIDE) && !defined(VMSHIFT_COMPILATION)
#error "Only <vmshift/vmshift.h> can be included directly."
#endif

#ifndef VMSHIFT_VERSION_H
#define VMSHIFT_VERSION_H

/**
 * VMSHIFT_ABI_MAJOR:
 *
 * Major version of the plugin ABI this header describes. A plugin whose
 * descriptor carries another major version is refused by the host. It is
 * bumped only by a change that breaks plugins built against an older header
 * (a removed, moved or retyped member of a structure that crosses the
 * boundary, or a changed function signature).
 */
#define VMSHIFT_ABI_MAJOR 1

/**
 * VMSHIFT_ABI_MINOR:
 *
 * Minor version of the plugin ABI. Bumped when members are appended to a
 * structure or functions are added. A host accepts plugins whose minor is
 * less than or equal to its own; it refuses a plugin built for a newer minor,
 * because such a plugin may rely on host behaviour this host lacks.
 */
#define VMSHIFT_ABI_MINOR 0

/**
 * VMSHIFT_SDK_VERSION:
 *
 * Release of the SDK (and of vmshift) this header belongs to, as a string.
 */
#define VMSHIFT_SDK_VERSION "0.1.0"

#endif /* VMSHIFT_VERSION_H */
