/*
 * Hyper-V plugin: the client side of NTLM (NTLMv2 only), as WinRM takes it
 * inside the HTTP "Negotiate" scheme (MS-WSMV 2.2.9.1.1.1: credentials =
 * "Negotiate" gssapi-data; Windows' Negotiate package accepts a raw
 * NTLMSSP token).  Messages per [MS-NLMP] 2.2.1.1 (NEGOTIATE), 2.2.1.2
 * (CHALLENGE), 2.2.1.3 (AUTHENTICATE); responses per [MS-NLMP] 3.3.2.
 * No signing or sealing is negotiated: use https:// (WinRM's HTTPS
 * listener does not require message encryption).
 */
#ifndef HYPERV_NTLM_H
#define HYPERV_NTLM_H

#include <glib.h>

G_BEGIN_DECLS

/* The NEGOTIATE_MESSAGE, base64-encoded. */
char *hv_ntlm_negotiate_b64(void);

/*
 * From a base64 CHALLENGE_MESSAGE, the base64 AUTHENTICATE_MESSAGE for
 * @user (a bare name, "DOMAIN\\name" or "name@dns.domain") and @domain
 * (may be NULL).  Fails with VMSHIFT_ERROR_PROTOCOL on a malformed
 * challenge; never puts a secret in the error.
 */
char *hv_ntlm_authenticate_b64(const char *challenge_b64, const char *user, const char *domain,
                               const char *password, GError **error);

G_END_DECLS

#endif /* HYPERV_NTLM_H */
