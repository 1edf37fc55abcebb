/*
 * Hyper-V plugin: NTLMv2 client messages ([MS-NLMP]); see ntlm.h.
 */
#include "config.h"

#include <string.h>
#include <unistd.h>

#include <vmshift/vmshift.h>

#include "ntlm.h"

#define NTLMSSP_NEGOTIATE_UNICODE 0x00000001u
#define NTLM_NEGOTIATE_OEM 0x00000002u
#define NTLMSSP_REQUEST_TARGET 0x00000004u
#define NTLMSSP_NEGOTIATE_NTLM 0x00000200u
#define NTLMSSP_NEGOTIATE_ALWAYS_SIGN 0x00008000u
#define NTLMSSP_NEGOTIATE_EXTENDED_SESSIONSECURITY 0x00080000u
#define NTLMSSP_NEGOTIATE_128 0x20000000u
#define NTLMSSP_NEGOTIATE_56 0x80000000u
#define MSV_AV_EOL 0
#define MSV_AV_TIMESTAMP 7

static const guint8 ntlm_sig[8] = { 'N', 'T', 'L', 'M', 'S', 'S', 'P', 0 };

/* ---- MD4 (RFC 1320) ------------------------------------------------------ */

#define MD4_F(x, y, z) (((x) & (y)) | (~(x) & (z)))
#define MD4_G(x, y, z) (((x) & (y)) | ((x) & (z)) | ((y) & (z)))
#define MD4_H(x, y, z) ((x) ^ (y) ^ (z))
#define ROL32(v, s) (((v) << (s)) | ((v) >> (32 - (s))))

static void
md4_block(guint32 st[4], const guint8 *p)
{
    static const int r1[4] = { 3, 7, 11, 19 }, r2[4] = { 3, 5, 9, 13 }, r3[4] = { 3, 9, 11, 15 };
    static const int o3[16] = { 0, 8, 4, 12, 2, 10, 6, 14, 1, 9, 5, 13, 3, 11, 7, 15 };
    guint32 x[16], v[4];

    for (int i = 0; i < 16; i++)
        x[i] = (guint32)p[4 * i] | (guint32)p[4 * i + 1] << 8 | (guint32)p[4 * i + 2] << 16
               | (guint32)p[4 * i + 3] << 24;
    memcpy(v, st, sizeof v);
    /* v[(4 - i % 4) % 4] is a, d, c, b in turn: the rotation of RFC 1320. */
    for (int i = 0; i < 16; i++) {
        guint32 *a = &v[(4 - i % 4) % 4], b = v[(5 - i % 4) % 4], c = v[(6 - i % 4) % 4],
                d = v[(7 - i % 4) % 4];
        *a = ROL32(*a + MD4_F(b, c, d) + x[i], r1[i % 4]);
    }
    for (int i = 0; i < 16; i++) {
        guint32 *a = &v[(4 - i % 4) % 4], b = v[(5 - i % 4) % 4], c = v[(6 - i % 4) % 4],
                d = v[(7 - i % 4) % 4];
        *a = ROL32(*a + MD4_G(b, c, d) + x[(i % 4) * 4 + i / 4] + 0x5A827999u, r2[i % 4]);
    }
    for (int i = 0; i < 16; i++) {
        guint32 *a = &v[(4 - i % 4) % 4], b = v[(5 - i % 4) % 4], c = v[(6 - i % 4) % 4],
                d = v[(7 - i % 4) % 4];
        *a = ROL32(*a + MD4_H(b, c, d) + x[o3[i]] + 0x6ED9EBA1u, r3[i % 4]);
    }
    for (int i = 0; i < 4; i++)
        st[i] += v[i];
    explicit_bzero(x, sizeof x);
}

static void
md4(const guint8 *data, gsize len, guint8 out[16])
{
    guint32 st[4] = { 0x67452301u, 0xEFCDAB89u, 0x98BADCFEu, 0x10325476u };
    guint8 tail[128] = { 0 };
    gsize full = len & ~(gsize)63, rest = len - full, tlen;
    guint64 bits = (guint64)len * 8;

    for (gsize off = 0; off < full; off += 64)
        md4_block(st, data + off);
    memcpy(tail, data + full, rest);
    tail[rest] = 0x80;
    tlen = rest + 1 + 8 <= 64 ? 64 : 128;
    for (int i = 0; i < 8; i++)
        tail[tlen - 8 + i] = (guint8)(bits >> (8 * i));
    md4_block(st, tail);
    if (tlen == 128)
        md4_block(st, tail + 64);
    for (int i = 0; i < 16; i++)
        out[i] = (guint8)(st[i / 4] >> (8 * (i % 4)));
    explicit_bzero(tail, sizeof tail);
    explicit_bzero(st, sizeof st);
}

/* ---- helpers -------------------------------------------------------------- */

/* UTF-16LE of @s (no terminator); NULL text gives an empty array. */
static GByteArray *
utf16le(const char *s)
{
    GByteArray *out = g_byte_array_new();
    glong n = 0;
    gunichar2 *w = s ? g_utf8_to_utf16(s, -1, NULL, &n, NULL) : NULL;

    for (glong i = 0; i < n; i++) {
        guint8 b[2] = { (guint8)(w[i] & 0xff), (guint8)(w[i] >> 8) };
        g_byte_array_append(out, b, 2);
    }
    if (w)
        explicit_bzero(w, (gsize)n * sizeof *w);
    g_free(w);
    return out;
}

static void
secure_free(GByteArray *a)
{
    if (a) {
        if (a->len) /* an empty array's data may be NULL (UBSan: nonnull) */
            explicit_bzero(a->data, a->len);
        g_byte_array_unref(a);
    }
}

static void
hmac_md5(const guint8 *key, gsize klen, const guint8 *d1, gsize l1, const guint8 *d2, gsize l2,
         guint8 out[16])
{
    GHmac *h = g_hmac_new(G_CHECKSUM_MD5, key, klen);
    gsize n = 16;

    g_hmac_update(h, d1, (gssize)l1);
    if (d2)
        g_hmac_update(h, d2, (gssize)l2);
    g_hmac_get_digest(h, out, &n);
    g_hmac_unref(h);
}

static void
put16(GByteArray *a, guint v)
{
    guint8 b[2] = { (guint8)v, (guint8)(v >> 8) };
    g_byte_array_append(a, b, 2);
}

static void
put32(GByteArray *a, guint32 v)
{
    guint8 b[4] = { (guint8)v, (guint8)(v >> 8), (guint8)(v >> 16), (guint8)(v >> 24) };
    g_byte_array_append(a, b, 4);
}

static guint32
get32(const guint8 *p)
{
    return (guint32)p[0] | (guint32)p[1] << 8 | (guint32)p[2] << 16 | (guint32)p[3] << 24;
}

/* NTOWFv2 ([MS-NLMP] 3.3.2) */
static void
hv_ntowfv2(const char *password, const char *user, const char *domain, guint8 out[16])
{
    GByteArray *pw = utf16le(password);
    g_autofree char *up = g_utf8_strup(user ? user : "", -1);
    g_autofree char *ud = g_strconcat(up, domain ? domain : "", NULL);
    GByteArray *id = utf16le(ud);
    guint8 nt[16];

    md4(pw->data, pw->len, nt);
    hmac_md5(nt, sizeof nt, id->data, id->len, NULL, 0, out);
    explicit_bzero(nt, sizeof nt);
    secure_free(pw);
    secure_free(id);
}

/* ---- messages ----------------------------------------------------------- */

char *
hv_ntlm_negotiate_b64(void)
{
    g_autoptr(GByteArray) m = g_byte_array_new();

    g_byte_array_append(m, ntlm_sig, sizeof ntlm_sig);
    put32(m, 1);
    put32(m, NTLMSSP_NEGOTIATE_UNICODE | NTLM_NEGOTIATE_OEM | NTLMSSP_REQUEST_TARGET
                 | NTLMSSP_NEGOTIATE_NTLM | NTLMSSP_NEGOTIATE_ALWAYS_SIGN
                 | NTLMSSP_NEGOTIATE_EXTENDED_SESSIONSECURITY | NTLMSSP_NEGOTIATE_128
                 | NTLMSSP_NEGOTIATE_56);
    /* DomainNameFields, WorkstationFields: empty */
    for (int i = 0; i < 2; i++) {
        put16(m, 0);
        put16(m, 0);
        put32(m, 32);
    }
    return g_base64_encode(m->data, m->len);
}

/* Appends a payload field header (Len, MaxLen, Offset) at @hdr. */
static void
set_field(GByteArray *m, guint hdr, const guint8 *data, gsize len)
{
    guint off = m->len;

    m->data[hdr] = (guint8)len;
    m->data[hdr + 1] = (guint8)(len >> 8);
    m->data[hdr + 2] = (guint8)len;
    m->data[hdr + 3] = (guint8)(len >> 8);
    for (int i = 0; i < 4; i++)
        m->data[hdr + 4 + i] = (guint8)(off >> (8 * i));
    if (len)
        g_byte_array_append(m, data, (guint)len);
}

char *
hv_ntlm_authenticate_b64(const char *challenge_b64, const char *user, const char *domain,
                         const char *password, GError **error)
{
    g_autofree guint8 *raw = NULL;
    gsize rlen = 0;
    const guint8 *c = NULL;
    gsize clen = 0;
    guint32 flags, tilen, tioff;
    const guint8 *info = NULL;
    guint64 ts = 0;
    gboolean have_ts = FALSE;
    guint8 server_chal[8], client_chal[8], key[16], proof[16], lm[24];
    g_autofree char *name = NULL;
    g_autofree char *dom = NULL;
    g_autoptr(GByteArray) temp = g_byte_array_new();
    g_autoptr(GByteArray) m = g_byte_array_new();
    GByteArray *wuser, *wdom;
    const char *bs;
    char *out;

    raw = g_base64_decode(challenge_b64 ? challenge_b64 : "", &rlen);
    /* Tolerate a SPNEGO-wrapped reply: find the NTLMSSP message inside. */
    for (gsize i = 0; raw && i + 32 <= rlen; i++)
        if (!memcmp(raw + i, ntlm_sig, sizeof ntlm_sig)) {
            c = raw + i;
            clen = rlen - i;
            break;
        }
    if (!c || clen < 48 || get32(c + 8) != 2) {
        g_set_error_literal(error, VMSHIFT_ERROR, VMSHIFT_ERROR_PROTOCOL,
                            "the NTLM challenge from the server is malformed");
        return NULL;
    }
    flags = get32(c + 20);
    memcpy(server_chal, c + 24, 8);
    tilen = (guint32)c[40] | (guint32)c[41] << 8;
    tioff = get32(c + 44);
    if (!(flags & NTLMSSP_NEGOTIATE_UNICODE) || tilen == 0 || tioff > clen
        || tilen > clen - tioff) {
        g_set_error_literal(error, VMSHIFT_ERROR, VMSHIFT_ERROR_PROTOCOL,
                            "the NTLM challenge from the server has no Unicode target "
                            "information (NTLMv2 needs it)");
        return NULL;
    }
    info = c + tioff;
    for (guint32 p = 0; p + 4 <= tilen;) {
        guint id = info[p] | info[p + 1] << 8, l = info[p + 2] | info[p + 3] << 8;
        if (id == MSV_AV_EOL || p + 4 + l > tilen)
            break;
        if (id == MSV_AV_TIMESTAMP && l == 8) {
            for (int i = 0; i < 8; i++)
                ts |= (guint64)info[p + 4 + i] << (8 * i);
            have_ts = TRUE;
        }
        p += 4 + l;
    }
    if (!have_ts) /* FILETIME: 100 ns since 1601 */
        ts = (guint64)(g_get_real_time() + G_GINT64_CONSTANT(11644473600000000)) * 10;
    if (getentropy(client_chal, sizeof client_chal) != 0) {
        g_set_error_literal(error, VMSHIFT_ERROR, VMSHIFT_ERROR_FAILED,
                            "NTLM: no random bytes for the client challenge");
        return NULL;
    }

    /* "DOMAIN\name" in the user name wins over domain=. */
    bs = strchr(user, '\\');
    if (bs) {
        dom = g_strndup(user, (gsize)(bs - user));
        name = g_strdup(bs + 1);
    } else {
        dom = g_strdup(domain ? domain : "");
        name = g_strdup(user);
    }

    hv_ntowfv2(password, name, dom, key);
    /* temp = 1 1 Z(6) Time ClientChallenge Z(4) ServerName Z(4) */
    g_byte_array_append(temp, (const guint8 *)"\x01\x01\0\0\0\0\0\0", 8);
    for (int i = 0; i < 8; i++) {
        guint8 b = (guint8)(ts >> (8 * i));
        g_byte_array_append(temp, &b, 1);
    }
    g_byte_array_append(temp, client_chal, 8);
    put32(temp, 0);
    g_byte_array_append(temp, info, tilen);
    put32(temp, 0);
    hmac_md5(key, 16, server_chal, 8, temp->data, temp->len, proof);
    /* With MsvAvTimestamp the LM response is Z(24) ([MS-NLMP] 3.1.5.1.2). */
    memset(lm, 0, sizeof lm);
    if (!have_ts) {
        hmac_md5(key, 16, server_chal, 8, client_chal, 8, lm);
        memcpy(lm + 16, client_chal, 8);
    }
    explicit_bzero(key, sizeof key);

    wuser = utf16le(name);
    wdom = utf16le(dom);
    g_byte_array_append(m, ntlm_sig, sizeof ntlm_sig);
    put32(m, 3);
    for (int i = 0; i < 6; i++) { /* Lm, Nt, Domain, User, Workstation, SessionKey */
        put16(m, 0);
        put16(m, 0);
        put32(m, 0);
    }
    put32(m, NTLMSSP_NEGOTIATE_UNICODE | NTLMSSP_REQUEST_TARGET | NTLMSSP_NEGOTIATE_NTLM
                 | NTLMSSP_NEGOTIATE_ALWAYS_SIGN
                 | (flags
                    & (NTLMSSP_NEGOTIATE_EXTENDED_SESSIONSECURITY | NTLMSSP_NEGOTIATE_128
                       | NTLMSSP_NEGOTIATE_56)));
    set_field(m, 12, lm, sizeof lm);
    {
        guint hdr = 20, off = m->len, len = 16 + temp->len;
        g_byte_array_append(m, proof, 16);
        g_byte_array_append(m, temp->data, temp->len);
        m->data[hdr] = (guint8)len;
        m->data[hdr + 1] = (guint8)(len >> 8);
        m->data[hdr + 2] = (guint8)len;
        m->data[hdr + 3] = (guint8)(len >> 8);
        for (int i = 0; i < 4; i++)
            m->data[hdr + 4 + i] = (guint8)(off >> (8 * i));
    }
    set_field(m, 28, wdom->data, wdom->len);
    set_field(m, 36, wuser->data, wuser->len);
    set_field(m, 44, NULL, 0);
    set_field(m, 52, NULL, 0);
    secure_free(wuser);
    secure_free(wdom);
    out = g_base64_encode(m->data, m->len);
    explicit_bzero(m->data, m->len);
    return out;
}
