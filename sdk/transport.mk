## SDK transport helpers: HTTP (libcurl) and hardened XML (libxml2).
## Owned by the transport work; see HACKING.md.
vmshiftinclude_HEADERS += sdk/include/vmshift/http.h sdk/include/vmshift/xml.h
