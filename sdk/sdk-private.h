/* vmshift SDK: definitions private to the library's own sources. */
#ifndef VMSHIFT_SDK_PRIVATE_H
#define VMSHIFT_SDK_PRIVATE_H

/* Marks a function as part of the library's public ABI (the library is
 * compiled with -fvisibility=hidden; the version script names the node). */
#define VMSHIFT_API __attribute__((visibility("default")))

#endif
