/*
 * Hyper-V plugin: WS-Management envelopes and response parsing.
 *
 * Builds the SOAP 1.2 requests of DSP0226 / MS-WSMV (Get, Enumerate with
 * WQL, Pull, Release, Invoke with EPR and embedded-instance parameters) and
 * turns replies into plain instances.  See docs/design/hyperv.md §1.
 * Parsing goes through the SDK's hardened XML parser only.
 */
#ifndef HYPERV_WSMAN_H
#define HYPERV_WSMAN_H

#include <glib.h>

G_BEGIN_DECLS

#define HV_NS_S "http://www.w3.org/2003/05/soap-envelope"
#define HV_NS_A "http://schemas.xmlsoap.org/ws/2004/08/addressing"
#define HV_NS_W "http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd"
#define HV_NS_N "http://schemas.xmlsoap.org/ws/2004/09/enumeration"
#define HV_NS_F "http://schemas.microsoft.com/wbem/wsman/1/wsmanfault"
#define HV_NS_CIM "http://schemas.dmtf.org/wbem/wscim/1/common"
#define HV_NS_XSI "http://www.w3.org/2001/XMLSchema-instance"
#define HV_ANON "http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous"
#define HV_URI_BASE "http://schemas.microsoft.com/wbem/wsman/1/wmi/"
#define HV_V2 HV_URI_BASE "root/virtualization/v2/"
#define HV_CIMV2 HV_URI_BASE "root/cimv2/"
#define HV_WQL "http://schemas.microsoft.com/wbem/wsman/1/WQL"

#define HV_A_GET "http://schemas.xmlsoap.org/ws/2004/09/transfer/Get"
#define HV_A_ENUM "http://schemas.xmlsoap.org/ws/2004/09/enumeration/Enumerate"
#define HV_A_PULL "http://schemas.xmlsoap.org/ws/2004/09/enumeration/Pull"
#define HV_A_RELEASE "http://schemas.xmlsoap.org/ws/2004/09/enumeration/Release"

/* An endpoint reference: resource URI and selectors (name, value pairs). */
typedef struct {
    char *uri;
    GPtrArray *names;
    GPtrArray *values;
} HvEpr;

/*
 * One instance (or method output, or nested object): the element's local
 * name and its properties.  A property maps to a GPtrArray of strings:
 * empty for NULL (xsi:nil), several for arrays.  REF properties are kept as
 * EPRs and nested objects (WS-CIM element form) as instances.
 */
typedef struct {
    char *cls;
    GHashTable *props; /* char * -> GPtrArray of char * */
    GHashTable *eprs;  /* char * -> HvEpr * */
    GHashTable *objs;  /* char * -> GPtrArray of HvInstance * */
} HvInstance;

typedef struct {
    /* Header */
    char *action;
    char *relates_to;
    /* Fault */
    gboolean is_fault;
    char *fault_code;       /* s:Code/s:Value */
    char *fault_subcode;    /* s:Code/s:Subcode/s:Value */
    char *fault_reason;     /* s:Reason/s:Text */
    char *fault_message;    /* innermost f:Message text, if any */
    char *fault_wsman_code; /* f:WSManFault@Code (innermost) */
    /* Enumerate / Pull */
    char *enum_context;
    gboolean end_of_sequence;
    GPtrArray *items; /* HvInstance * (or EPR-only items: cls NULL) */
    /* Get / Invoke */
    HvInstance *body; /* first child of s:Body for Get/Invoke */
    /* Identify */
    char *product_version;
} HvResponse;

void hv_epr_free(HvEpr *epr);
void hv_instance_free(HvInstance *inst);
void hv_response_free(HvResponse *resp);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(HvInstance, hv_instance_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(HvResponse, hv_response_free)

/* First value of @prop, or NULL (absent or nil). */
const char *hv_inst_get(const HvInstance *inst, const char *prop);
/* All values (never NULL: an empty static array when absent). */
const GPtrArray *hv_inst_get_all(const HvInstance *inst, const char *prop);
/* Integer value of @prop, or @def. */
gint64 hv_inst_get_int(const HvInstance *inst, const char *prop, gint64 def);
/* The EPR of REF property @prop, or NULL. */
const HvEpr *hv_inst_get_epr(const HvInstance *inst, const char *prop);
/* Nested objects under @prop (never NULL). */
const GPtrArray *hv_inst_get_objs(const HvInstance *inst, const char *prop);
const char *hv_epr_selector(const HvEpr *epr, const char *name);

/*
 * Parses a WS-Man reply body.  Returns NULL with VMSHIFT_ERROR_PROTOCOL for
 * anything that is not a SOAP 1.2 envelope with a body.  A SOAP fault is
 * returned as a response with is_fault set.  Bounded: at most a few
 * thousand items and a fixed nesting depth are accepted.
 */
HvResponse *hv_response_parse(const char *buf, gsize len, const char *what, GError **error);

/* One-line description of a fault response, for error messages. */
char *hv_fault_describe(const HvResponse *resp);

/* ---- building requests -------------------------------------------------- */

/* A fresh "uuid:XXXXXXXX-…" message id. */
char *hv_message_id(void);

/*
 * A request envelope.  @selectors: NULL or NULL-terminated name, value,
 * name, value … list.  @body: XML of the body's content (may be "").
 */
char *hv_envelope(const char *to, const char *action, const char *resource_uri,
                  const char *const *selectors, const char *message_id, const char *body);

/* Bare EPR children (a:Address + a:ReferenceParameters) for a REF param. */
char *hv_epr_xml(const char *resource_uri, const char *const *selectors);

/*
 * CIM-XML (DSP0201) embedded instance builder, for string parameters
 * declared with EmbeddedInstance (docs/design/hyperv.md §1.8).
 */
typedef struct _HvCimXml HvCimXml;
HvCimXml *hv_cimxml_new(const char *class_name);
void hv_cimxml_prop(HvCimXml *x, const char *name, const char *type, const char *value);
void hv_cimxml_prop_array(HvCimXml *x, const char *name, const char *type,
                          const char *const *values, guint n);
/* Returns the INSTANCE text (not escaped) and frees @x. */
char *hv_cimxml_finish(HvCimXml *x);

/* XML-escapes text for element content. */
char *hv_xml_escape(const char *text);

G_END_DECLS

#endif /* HYPERV_WSMAN_H */
