/* esx-drive's operations of moves between backends (esx-drive-v2v.c). */
#ifndef VMSHIFT_ESX_DRIVE_V2V_H
#define VMSHIFT_ESX_DRIVE_V2V_H

#include <vmshift/vmshift.h>

gboolean esx_drive_v2v(const VmshiftBackendOps *ops, VmshiftBackend *b, const char *op, int argc,
                       char **argv, GError **error);

#endif
