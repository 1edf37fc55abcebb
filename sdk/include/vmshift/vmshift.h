/*
 * vmshift SDK: the one header plugins and hosts include.
 *
 * The transport helpers are separate headers, included on their own:
 *   <vmshift/http.h>  HTTP(S) with the TLS policy, authentication, redaction
 *   <vmshift/xml.h>   hardened XML parsing (no entities, no network), XPath
 *   <vmshift/qmp.h>   a QEMU Machine Protocol client
 */
#ifndef VMSHIFT_H
#define VMSHIFT_H

#define VMSHIFT_INSIDE
#include <vmshift/version.h>
#include <vmshift/error.h>
#include <vmshift/types.h>
#include <vmshift/findings.h>
#include <vmshift/job.h>
#include <vmshift/conf.h>
#include <vmshift/plugin.h>
#include <vmshift/disk.h>
#undef VMSHIFT_INSIDE

#endif /* VMSHIFT_H */
