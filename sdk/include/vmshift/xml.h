/*
 * vmshift SDK: hardened XML parsing, XPath and SOAP helpers, on libxml2.
 *
 * Include this header on its own: #include <vmshift/xml.h>
 * (it includes <vmshift/http.h>, <libxml/tree.h> and <libxml/xpath.h>).
 *
 * Every XML document a plugin reads comes from a peer and goes through
 * vmshift_xml_parse(), never through libxml2's own entry points:
 *  - no network access (XML_PARSE_NONET), no DTD loading, no entity
 *    substitution, no XInclude;
 *  - a DOCTYPE that declares an entity (internal or external, general or
 *    parameter: billion laughs, XXE) or that names an external DTD is
 *    refused before anything is expanded; SOAP messages have no DOCTYPE;
 *  - libxml2's default size limits stay on (XML_PARSE_HUGE is never set:
 *    at most 10 MB in one text node, 256 levels of nesting), and the input
 *    may not exceed VMSHIFT_XML_MAX_INPUT;
 *  - a failure is VMSHIFT_ERROR_PROTOCOL "WHAT: malformed XML at line N:
 *    libxml2's message".
 *
 * Strings: the helpers return plain char * (UTF-8, freed with g_free()),
 * not xmlChar *. Nodes (xmlNode *) are borrowed from their document.
 *
 * SOAP: vmshift_soap_envelope() builds a SOAP 1.1 (vSphere) or 1.2
 * (WS-Management) envelope around fragments the caller built with
 * vmshift_xml_escape(); vmshift_soap_call() posts it and returns the parsed
 * reply or an error; vmshift_soap_fault_get() extracts a Fault of either
 * version with the detail type a plugin maps to its error codes
 * (vSphere: detail element / xsi:type "InvalidLogin", "NotAuthenticated",
 * "ManagedObjectNotFound"…; WS-Man: Subcode "w:AccessDenied",
 * detail "WSManFault" with its Code and Message).
 *
 * Threads: the functions are thread-safe (libxml2 is initialised once by
 * the library); a document and the XPath contexts on it are used by one
 * thread at a time.
 */
#ifndef VMSHIFT_XML_H
#define VMSHIFT_XML_H

#include <vmshift/vmshift.h>
#include <vmshift/http.h>
#include <libxml/tree.h>
#include <libxml/xpath.h>

G_BEGIN_DECLS

/**
 * VMSHIFT_XML_MAX_INPUT:
 *
 * The largest document vmshift_xml_parse() accepts (256 MiB, the HTTP
 * helpers' default response limit).
 */
#define VMSHIFT_XML_MAX_INPUT ((gsize)256 * 1024 * 1024)

/* Namespace URIs used by the backends (prefixes are conventions only). */
/** VMSHIFT_NS_SOAP11: SOAP 1.1 envelope; XPath prefix "soap11". */
#define VMSHIFT_NS_SOAP11 "http://schemas.xmlsoap.org/soap/envelope/"
/** VMSHIFT_NS_SOAP12: SOAP 1.2 envelope; XPath prefix "soap12". */
#define VMSHIFT_NS_SOAP12 "http://www.w3.org/2003/05/soap-envelope"
/** VMSHIFT_NS_XSI: XML Schema instance (xsi:type); XPath prefix "xsi". */
#define VMSHIFT_NS_XSI "http://www.w3.org/2001/XMLSchema-instance"
/** VMSHIFT_NS_XSD: XML Schema; XPath prefix "xsd". */
#define VMSHIFT_NS_XSD "http://www.w3.org/2001/XMLSchema"
/** VMSHIFT_NS_VIM25: vSphere API; XPath prefix "vim". */
#define VMSHIFT_NS_VIM25 "urn:vim25"
/** VMSHIFT_NS_WSA: WS-Addressing (2004/08); XPath prefix "wsa". */
#define VMSHIFT_NS_WSA "http://schemas.xmlsoap.org/ws/2004/08/addressing"
/** VMSHIFT_NS_WSMAN: DMTF WS-Management; XPath prefix "wsman". */
#define VMSHIFT_NS_WSMAN "http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd"
/** VMSHIFT_NS_WSMAN_MS: Microsoft WS-Man extensions; XPath prefix "wsmanms". */
#define VMSHIFT_NS_WSMAN_MS "http://schemas.microsoft.com/wbem/wsman/1/wsman.xsd"
/** VMSHIFT_NS_WSEN: WS-Enumeration; XPath prefix "wsen". */
#define VMSHIFT_NS_WSEN "http://schemas.xmlsoap.org/ws/2004/09/enumeration"
/** VMSHIFT_NS_WST: WS-Transfer; XPath prefix "wst". */
#define VMSHIFT_NS_WST "http://schemas.xmlsoap.org/ws/2004/09/transfer"
/** VMSHIFT_NS_WSMANFAULT: WinRM fault detail; XPath prefix "wsmanfault". */
#define VMSHIFT_NS_WSMANFAULT "http://schemas.microsoft.com/wbem/wsman/1/wsmanfault"
/** VMSHIFT_NS_CIM: WS-CIM common (cim:Datetime); XPath prefix "cim". */
#define VMSHIFT_NS_CIM "http://schemas.dmtf.org/wbem/wscim/1/common"

/* ---- parsing ---------------------------------------------------------- */

/**
 * vmshift_xml_parse:
 * @buf: the document (need not be NUL-terminated)
 * @len: its length in bytes
 * @what: what the document is, for messages ("https://vc/sdk
 *   RetrievePropertiesEx reply", "/etc/…/x.xml")
 * @error: return location for an error
 *
 * Parses a document with the hardening described at the top of this
 * header. Whitespace-only text nodes are kept (the node helpers skip them).
 *
 * Returns: (transfer full): the document, free with xmlFreeDoc() (or
 *   g_autoptr(xmlDoc)), or NULL with VMSHIFT_ERROR_PROTOCOL naming @what
 *   (and the line for malformed XML).
 */
xmlDoc *vmshift_xml_parse(const char *buf, gsize len, const char *what, GError **error);

/* ---- nodes ------------------------------------------------------------ */

/**
 * vmshift_xml_root:
 *
 * Returns: (transfer none) (nullable): the document element of @doc.
 */
xmlNode *vmshift_xml_root(xmlDoc *doc);

/**
 * vmshift_xml_node_is:
 * @node: (nullable): a node
 * @ns_uri: (nullable): the namespace URI, or NULL for any namespace
 * @name: the local name
 *
 * Returns: TRUE when @node is an element named @name in @ns_uri.
 */
gboolean vmshift_xml_node_is(const xmlNode *node, const char *ns_uri, const char *name);

/**
 * vmshift_xml_first_element:
 * @node: (nullable): a parent node
 *
 * Returns: (transfer none) (nullable): the first element child of @node,
 *   skipping text, comments and processing instructions.
 */
xmlNode *vmshift_xml_first_element(const xmlNode *node);

/**
 * vmshift_xml_next_element:
 * @node: (nullable): an element
 *
 * Returns: (transfer none) (nullable): the next element sibling.
 */
xmlNode *vmshift_xml_next_element(const xmlNode *node);

/**
 * vmshift_xml_child:
 * @parent: (nullable): a parent element
 * @ns_uri: (nullable): the namespace URI, or NULL for any namespace
 * @name: the local name
 *
 * Returns: (transfer none) (nullable): the first element child of @parent
 *   named @name.
 */
xmlNode *vmshift_xml_child(const xmlNode *parent, const char *ns_uri, const char *name);

/**
 * vmshift_xml_text:
 * @node: (nullable): a node
 *
 * Returns: (transfer full) (nullable): the text content of @node and its
 *   descendants (g_free()), NULL for a NULL @node.
 */
char *vmshift_xml_text(const xmlNode *node);

/**
 * vmshift_xml_child_text:
 *
 * Returns: (transfer full) (nullable): vmshift_xml_text() of
 *   vmshift_xml_child(@parent, @ns_uri, @name), NULL when there is none.
 */
char *vmshift_xml_child_text(const xmlNode *parent, const char *ns_uri, const char *name);

/**
 * vmshift_xml_get_attr:
 * @node: (nullable): an element
 * @ns_uri: (nullable): the attribute's namespace URI, NULL for an
 *   unqualified attribute
 * @name: the attribute's local name
 *
 * Returns: (transfer full) (nullable): the attribute's value, or NULL.
 */
char *vmshift_xml_get_attr(const xmlNode *node, const char *ns_uri, const char *name);

/**
 * vmshift_xml_xsi_type:
 * @node: (nullable): an element
 *
 * Reads xsi:type whatever prefix the document bound the XML Schema
 * instance namespace to (vcsim writes `XMLSchema-instance:type=`).
 *
 * Returns: (transfer full) (nullable): the type's local name without its
 *   prefix ("VirtualMachine", "ArrayOfString"), or NULL.
 */
char *vmshift_xml_xsi_type(const xmlNode *node);

/* ---- XPath ------------------------------------------------------------ */

/**
 * VmshiftXmlNs:
 * @prefix: the prefix used in XPath expressions
 * @uri: the namespace URI
 *
 * One namespace binding for vmshift_xpath_new(); arrays end with
 * { NULL, NULL }.
 */
typedef struct {
    const char *prefix;
    const char *uri;
} VmshiftXmlNs;

/**
 * vmshift_xpath_new:
 * @doc: a document
 * @extra_ns: (nullable): more bindings, ending with { NULL, NULL }; they
 *   override the standard ones of the same prefix
 *
 * Makes an XPath context on @doc with these prefixes bound: soap11,
 * soap12, xsi, xsd, vim, wsa, wsman, wsmanms, wsen, wst, wsmanfault, cim
 * (see the VMSHIFT_NS_* URIs), plus @extra_ns (e.g. a WMI class's
 * ResourceURI). Elements in a default namespace need a prefix in XPath:
 * "//vim:returnval", not "//returnval".
 *
 * Returns: (transfer full): the context, free with xmlXPathFreeContext()
 *   (or g_autoptr(xmlXPathContext)) before the document.
 */
xmlXPathContext *vmshift_xpath_new(xmlDoc *doc, const VmshiftXmlNs *extra_ns);

/**
 * vmshift_xpath_nodes:
 * @ctx: an XPath context
 * @node: (nullable): the context node for a relative @expr ("vim:propSet");
 *   NULL for the document
 * @expr: an XPath expression selecting nodes
 *
 * An invalid expression is a programming error: it is reported with
 * g_critical() and gives an empty array.
 *
 * Returns: (transfer container): the matching nodes in document order
 *   (xmlNode *, borrowed from the document), possibly empty. Free with
 *   g_ptr_array_unref().
 */
GPtrArray *vmshift_xpath_nodes(xmlXPathContext *ctx, xmlNode *node, const char *expr);

/**
 * vmshift_xpath_node:
 *
 * Returns: (transfer none) (nullable): the first node vmshift_xpath_nodes()
 *   would return, or NULL.
 */
xmlNode *vmshift_xpath_node(xmlXPathContext *ctx, xmlNode *node, const char *expr);

/**
 * vmshift_xpath_string:
 * @ctx: an XPath context
 * @node: (nullable): the context node, NULL for the document
 * @expr: an XPath expression; for a node-set, the first node's text
 *   content is taken; string, number and boolean results are converted
 *
 * Returns: (transfer full) (nullable): the string, or NULL when a node-set
 *   is empty. Free with g_free().
 */
char *vmshift_xpath_string(xmlXPathContext *ctx, xmlNode *node, const char *expr);

/**
 * vmshift_xpath_uint64:
 * @ctx: an XPath context
 * @node: (nullable): the context node, NULL for the document
 * @expr: an XPath expression, as for vmshift_xpath_string()
 * @out: the value
 * @error: return location for an error
 *
 * Reads a decimal unsigned integer (surrounding whitespace allowed).
 *
 * Returns: FALSE with VMSHIFT_ERROR_PROTOCOL naming @expr when nothing
 *   matches or the text is not an unsigned 64-bit integer.
 */
gboolean vmshift_xpath_uint64(xmlXPathContext *ctx, xmlNode *node, const char *expr, guint64 *out,
                              GError **error);

/* ---- building documents ---------------------------------------------- */

/**
 * vmshift_xml_escape:
 * @text: (nullable): UTF-8 text
 *
 * Escapes text for element content and attribute values: & < > " ' become
 * entity references, tab/LF/CR become character references, other
 * characters XML 1.0 forbids (control characters) and invalid UTF-8 become
 * U+FFFD.
 *
 * Returns: (transfer full): the escaped text ("" for NULL). Free with
 *   g_free().
 */
char *vmshift_xml_escape(const char *text);

/* ---- SOAP ------------------------------------------------------------- */

/**
 * VmshiftSoapVersion:
 * @VMSHIFT_SOAP_1_1: SOAP 1.1 (vSphere): Content-Type text/xml, SOAPAction
 *   header.
 * @VMSHIFT_SOAP_1_2: SOAP 1.2 (WS-Management): Content-Type
 *   application/soap+xml.
 */
typedef enum {
    VMSHIFT_SOAP_1_1 = 11,
    VMSHIFT_SOAP_1_2 = 12,
} VmshiftSoapVersion;

/**
 * vmshift_soap_envelope:
 * @version: the SOAP version
 * @ns_decls: (nullable): extra namespace declarations for the Envelope
 *   element, e.g. "xmlns:a=\"…\" xmlns:w=\"…\""
 * @header: (nullable): the Header's content (an XML fragment); no Header
 *   element when NULL
 * @body: the Body's content (an XML fragment)
 *
 * Builds `<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope …>` (SOAP
 * 1.1, prefix "soapenv") or `<s:Envelope …>` (SOAP 1.2, prefix "s"), with
 * xsi and xsd declared. The fragments are inserted as they are: escape
 * every value in them with vmshift_xml_escape().
 *
 * Returns: (transfer full): the envelope. Free with g_free().
 */
char *vmshift_soap_envelope(VmshiftSoapVersion version, const char *ns_decls, const char *header,
                            const char *body);

/**
 * VmshiftSoapFault:
 * @version: the envelope's SOAP version
 * @code: SOAP 1.1 faultcode or SOAP 1.2 Code/Value, as written
 *   ("ServerFaultCode", "s:Sender")
 * @subcode: (nullable): SOAP 1.2 innermost Subcode/Value as written
 *   ("w:AccessDenied", "a:DestinationUnreachable"), NULL for SOAP 1.1
 * @subcode_name: (nullable): @subcode without its prefix ("AccessDenied")
 * @reason: faultstring or the first Reason/Text, whitespace collapsed to
 *   one line (possibly empty, never NULL)
 * @detail_type: (nullable): what the detail says the fault is: for
 *   vSphere the xsi:type of the detail's first element, else its local
 *   name with a trailing "Fault" removed ("InvalidLogin",
 *   "NotAuthenticated", "ManagedObjectNotFound"); for WinRM "WSManFault"
 *   or "MSFT_WmiError"; NULL without detail
 * @detail_ns: (nullable): the namespace URI of the detail's first element
 * @detail_code: (nullable): the WSManFault Code attribute (innermost one)
 *   or MSFT_WmiError error_Code, e.g. "2150858778"; NULL otherwise
 * @detail_message: (nullable): the innermost WSManFault Message text,
 *   whitespace collapsed; NULL otherwise
 * @detail: (nullable): the detail's first element, for plugin-specific
 *   fields such as vSphere's ManagedObjectNotFound/obj: borrowed from the
 *   document given to vmshift_soap_fault_get(); a fault from
 *   vmshift_soap_call() keeps its reply document alive until it is freed
 *
 * A SOAP Fault. Free with vmshift_soap_fault_free().
 */
typedef struct {
    VmshiftSoapVersion version;
    char *code;
    char *subcode;
    char *subcode_name;
    char *reason;
    char *detail_type;
    char *detail_ns;
    char *detail_code;
    char *detail_message;
    xmlNode *detail;
    /*< private >*/
    xmlDoc *doc_;
} VmshiftSoapFault;

/** vmshift_soap_fault_free: frees @fault (NULL is ignored). */
void vmshift_soap_fault_free(VmshiftSoapFault *fault);

/**
 * vmshift_soap_fault_get:
 * @doc: a parsed reply
 *
 * Returns: (transfer full) (nullable): the Fault of a SOAP 1.1 or 1.2
 *   envelope whose Body holds one, or NULL when @doc is not a fault.
 */
VmshiftSoapFault *vmshift_soap_fault_get(xmlDoc *doc);

/**
 * vmshift_soap_fault_default_code:
 * @fault: a fault
 *
 * A first guess at the VMSHIFT_ERROR code for @fault from the names both
 * backends use; plugins check @fault's fields for their own cases first.
 *  - AUTH_FAILED: InvalidLogin, NotAuthenticated, NoPermission,
 *    AccessDenied, InvalidCredentials
 *  - NOT_FOUND: ManagedObjectNotFound, NotFound, FileNotFound,
 *    DestinationUnreachable, InvalidSelectors
 *  - NOT_SUPPORTED: MethodNotFound, MethodDisabled, NotSupported,
 *    NotImplemented, ActionNotSupported
 *  - TIMEOUT: TimedOut
 *  - CONFLICT: InvalidPowerState, InvalidState, ConcurrentAccess
 *  - BUSY: TaskInProgress, ResourceInUse, Busy
 *  - NO_SPACE: InsufficientResourcesFault, OutOfDiskSpace,
 *    FileTooLarge, QuotaLimit
 *  - INVALID_ARGUMENT: InvalidArgument, InvalidRequest, InvalidType,
 *    InvalidName, InvalidProperty
 *  - FAILED: anything else
 *
 * Returns: a #VmshiftError value.
 */
int vmshift_soap_fault_default_code(const VmshiftSoapFault *fault);

/**
 * vmshift_soap_fault_set_error:
 * @fault: a fault
 * @code: the VMSHIFT_ERROR code to use
 * @what: the call, for the message ("https://vc/sdk Login")
 * @error: return location for an error
 *
 * Sets a one-line error "WHAT: SOAP fault TYPE: MESSAGE", where TYPE is the
 * detail type, else the subcode, else the code, and MESSAGE the WinRM
 * detail message, else the reason. The text passes through vmshift_redact().
 */
void vmshift_soap_fault_set_error(const VmshiftSoapFault *fault, int code, const char *what,
                                  GError **error);

/**
 * vmshift_soap_call:
 * @http: a handle
 * @path_or_url: (nullable): as for vmshift_http_request()
 * @version: the SOAP version of @envelope
 * @action: (nullable): SOAP 1.1: the SOAPAction value (sent quoted, e.g.
 *   "urn:vim25/6.5"); SOAP 1.2: the action parameter of the Content-Type,
 *   or NULL for none (WS-Man carries the action in its header)
 * @envelope: a whole envelope (vmshift_soap_envelope())
 * @what: the operation, for messages ("RetrievePropertiesEx")
 * @cancellable: (nullable): as for vmshift_http_request()
 * @fault: (out) (optional) (transfer full): the fault, when the call fails
 *   with one; NULL otherwise
 * @error: return location for an error
 *
 * Posts @envelope and parses the reply:
 *  - 2xx with an envelope: the document; a Fault inside one is an error
 *    too;
 *  - 500 or 400 with a SOAP Fault: an error with
 *    vmshift_soap_fault_default_code() and the fault in @fault;
 *  - 401 / 403: VMSHIFT_ERROR_AUTH_FAILED;
 *  - an empty or non-XML reply, or another status:
 *    VMSHIFT_ERROR_PROTOCOL (or the code of vmshift_http_response_check());
 *  - transport errors as for vmshift_http_request().
 * Messages start with "METHOD URL OPERATION:" (no credentials).
 *
 * Returns: (transfer full): the reply document (free with xmlFreeDoc()),
 *   or NULL with @error set.
 */
xmlDoc *vmshift_soap_call(VmshiftHttp *http, const char *path_or_url, VmshiftSoapVersion version,
                          const char *action, const char *envelope, const char *what,
                          GCancellable *cancellable, VmshiftSoapFault **fault, GError **error);

/**
 * vmshift_soap_body:
 * @doc: a SOAP 1.1 or 1.2 envelope
 *
 * Returns: (transfer none) (nullable): the first element inside Body (the
 *   operation's response element or the Fault), or NULL.
 */
xmlNode *vmshift_soap_body(xmlDoc *doc);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(VmshiftSoapFault, vmshift_soap_fault_free)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(xmlDoc, xmlFreeDoc)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(xmlXPathContext, xmlXPathFreeContext)

G_END_DECLS

#endif /* VMSHIFT_XML_H */
