package main

// The front handler of /sdk: HTTP-level fault injection, then either one of
// our method overrides (overrides.go) or the simulator's own dispatcher.

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"time"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"
	"github.com/vmware/govmomi/vim25/xml"
)

var (
	svc  *simulator.Service
	user string
)

var vimTypes = types.TypeFunc()

func typeFunc(name string) (reflect.Type, bool) {
	typ, ok := vimTypes(name)
	if !ok {
		if kind := strings.SplitN(name, ":", 2); len(kind) == 2 {
			typ, ok = vimTypes(kind[1])
		}
	}
	return typ, ok
}

// ---- injection tables (set through the control channel) ----

type httpFault struct {
	mode  string // close, malformed, truncate, 500, 401, notauth, delay
	count int    // remaining; < 0 = forever
	ms    int
	match string // only requests whose body holds this ("" = any)
}

var (
	injMu      sync.Mutex
	httpFaults = map[string][]*httpFault{} // SOAP method name or "*"
)

func addHTTPFault(method string, f *httpFault) {
	injMu.Lock()
	defer injMu.Unlock()
	httpFaults[method] = append(httpFaults[method], f)
}

// takeHTTPFaults returns the faults that apply to this call (and uses them up).
func takeHTTPFaults(method string, body []byte) []httpFault {
	injMu.Lock()
	defer injMu.Unlock()
	var out []httpFault
	for _, key := range []string{method, "*"} {
		list := httpFaults[key]
		kept := list[:0]
		for _, f := range list {
			if f.match != "" && !bytes.Contains(body, []byte(f.match)) {
				kept = append(kept, f)
				continue
			}
			out = append(out, *f)
			if f.count > 0 {
				f.count--
			}
			if f.count != 0 {
				kept = append(kept, f)
			}
		}
		httpFaults[key] = kept
	}
	return out
}

// ---- response encoding (same envelope as simulator.ServeSDK) ----

type soapEnvelope struct {
	XMLName xml.Name    `xml:"soapenv:Envelope"`
	Enc     string      `xml:"xmlns:soapenc,attr"`
	Env     string      `xml:"xmlns:soapenv,attr"`
	XSD     string      `xml:"xmlns:xsd,attr"`
	XSI     string      `xml:"xmlns:xsi,attr"`
	Body    interface{} `xml:"soapenv:Body"`
}

type faultDetail struct {
	Fault types.AnyType
}

type soapFault struct {
	XMLName xml.Name `xml:"soapenv:Fault"`
	Code    string   `xml:"faultcode"`
	String  string   `xml:"faultstring"`
	Detail  struct {
		Fault *faultDetail
	} `xml:"detail"`
}

func (d *faultDetail) MarshalXML(e *xml.Encoder, start xml.StartElement) error {
	kind := reflect.TypeOf(d.Fault).Elem().Name()
	start.Name.Local = kind + "Fault"
	start.Attr = append(start.Attr,
		xml.Attr{Name: xml.Name{Local: "xmlns"}, Value: "urn:" + vim25.Namespace},
		xml.Attr{Name: xml.Name{Local: "xsi:type"}, Value: kind})
	return e.EncodeElement(d.Fault, start)
}

type response struct {
	Body soap.HasFault
}

func (r *response) MarshalXML(e *xml.Encoder, start xml.StartElement) error {
	val := reflect.ValueOf(r.Body).Elem().FieldByName("Res")
	res := xml.StartElement{Name: xml.Name{Space: "urn:" + vim25.Namespace, Local: val.Elem().Type().Name()}}
	if err := e.EncodeToken(start); err != nil {
		return err
	}
	if err := e.EncodeElement(val.Interface(), res); err != nil {
		return err
	}
	return e.EncodeToken(start.End())
}

func encode(res soap.HasFault) (int, []byte) {
	var body interface{}
	status := http.StatusOK
	if f := res.Fault(); f != nil {
		status = http.StatusInternalServerError
		sf := &soapFault{Code: f.Code, String: f.String}
		sf.Detail.Fault = &faultDetail{f.Detail.Fault}
		body = struct{ Fault *soapFault }{sf}
	} else {
		body = &response{res}
	}
	var out bytes.Buffer
	fmt.Fprint(&out, xml.Header)
	e := xml.NewEncoder(&out)
	err := e.Encode(&soapEnvelope{
		Enc:  "http://schemas.xmlsoap.org/soap/encoding/",
		Env:  "http://schemas.xmlsoap.org/soap/envelope/",
		XSD:  "http://www.w3.org/2001/XMLSchema",
		XSI:  "http://www.w3.org/2001/XMLSchema-instance",
		Body: body,
	})
	if err == nil {
		err = e.Flush()
	}
	if err != nil {
		log.Printf("encoding response: %v", err)
		return http.StatusInternalServerError, nil
	}
	return status, out.Bytes()
}

// faultBody is a soap.HasFault carrying only a fault.
type faultBody struct {
	Fault_ *soap.Fault
}

func (b *faultBody) Fault() *soap.Fault { return b.Fault_ }

func fault(msg string, f types.BaseMethodFault) soap.HasFault {
	return &faultBody{simulator.Fault(msg, f)}
}

// ---- session check for overridden methods ----

const currentTimeReq = `<?xml version="1.0" encoding="UTF-8"?>
<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body>` +
	`<CurrentTime xmlns="urn:vim25"><_this type="ServiceInstance">ServiceInstance</_this></CurrentTime>` +
	`</soapenv:Body></soapenv:Envelope>`

// authenticated asks the simulator's own session manager whether the
// request's session cookie is valid (it also refreshes the session's
// last-active time, as any call does).
func authenticated(r *http.Request) bool {
	sub := httptest.NewRequest(http.MethodPost, "/sdk", strings.NewReader(currentTimeReq))
	for _, c := range r.Cookies() {
		sub.AddCookie(c)
	}
	rec := httptest.NewRecorder()
	svc.ServeSDK(rec, sub)
	return rec.Code == http.StatusOK
}

// internalContext builds a simulator.Context for calling the simulator's
// own methods from an override (events need a session user name).
func internalContext() *simulator.Context {
	return &simulator.Context{
		Context: context.Background(),
		Map:     simulator.Map,
		Session: &simulator.Session{
			UserSession: types.UserSession{Key: "vcsim-launcher", UserName: user},
			Registry:    simulator.NewRegistry(),
		},
	}
}

// ---- the handler ----

func serveSDK(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		svc.ServeSDK(w, r)
		return
	}
	body, err := io.ReadAll(r.Body)
	_ = r.Body.Close()
	if err != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}

	var method *simulator.Method
	name := ""
	if m, err := simulator.UnmarshalBody(typeFunc, body); err == nil {
		method = m
		name = m.Name
	}

	truncate := false
	for _, f := range takeHTTPFaults(name, body) {
		switch f.mode {
		case "delay":
			time.Sleep(time.Duration(f.ms) * time.Millisecond)
		case "close":
			if hj, ok := w.(http.Hijacker); ok {
				if conn, _, err := hj.Hijack(); err == nil {
					_ = conn.Close()
					return
				}
			}
			panic(http.ErrAbortHandler)
		case "malformed":
			w.Header().Set("Content-Type", "text/xml; charset=utf-8")
			w.WriteHeader(http.StatusOK)
			_, _ = io.WriteString(w, `<?xml version="1.0" encoding="UTF-8"?>
<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body><`+
				name+`Response xmlns="urn:vim25"><returnval><broken attr="x></returnval></soapenv:Body>`)
			return
		case "500":
			w.Header().Set("Content-Type", "text/html")
			w.WriteHeader(http.StatusInternalServerError)
			_, _ = io.WriteString(w, "<html><body>500 Internal Server Error (vcsim-launcher injected)</body></html>\n")
			return
		case "401":
			w.Header().Set("WWW-Authenticate", `Basic realm="VMware HTTP server"`)
			w.WriteHeader(http.StatusUnauthorized)
			return
		case "503":
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		case "notauth":
			// What a real vCenter answers once the session has expired.
			status, out := encode(fault("The session is not authenticated.", &types.NotAuthenticated{
				NoPermission: types.NoPermission{PrivilegeId: "System.View"},
			}))
			w.Header().Set("Content-Type", "text/xml; charset=utf-8")
			w.WriteHeader(status)
			_, _ = w.Write(out)
			return
		case "truncate":
			truncate = true
		}
	}

	var status int
	var out []byte
	if method != nil && overrides[name] != nil {
		var res soap.HasFault
		if !authenticated(r) {
			res = fault("", &types.NotAuthenticated{NoPermission: types.NoPermission{
				Object: method.This, PrivilegeId: "System.View"}})
		} else {
			res = runOverride(name, method)
		}
		status, out = encode(res)
		w.Header().Set("Content-Type", "text/xml; charset=utf-8")
	} else if f := checkCreateVM(name, method, r); f != nil {
		status, out = encode(fault("", f))
		w.Header().Set("Content-Type", "text/xml; charset=utf-8")
	} else {
		sub := r.Clone(r.Context())
		sub.Body = io.NopCloser(bytes.NewReader(body))
		sub.URL.Path = "/sdk"
		rec := httptest.NewRecorder()
		svc.ServeSDK(rec, sub)
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		status, out = rec.Code, rec.Body.Bytes()
		if name == "CreateVM_Task" || name == "ReconfigVM_Task" {
			fixDiskFiles() // disks the simulator created (files.go)
		}
	}
	if truncate && len(out) > 0 {
		out = out[:len(out)/2]
	}
	w.WriteHeader(status)
	_, _ = w.Write(out)
}

// runOverride calls an override with the panic safety net that net/http
// gives the simulator's own handlers: a bug in an override becomes a
// SystemError fault instead of a dropped connection.
func runOverride(name string, m *simulator.Method) (res soap.HasFault) {
	defer func() {
		if p := recover(); p != nil {
			log.Printf("override %s panicked: %v", name, p)
			res = fault(fmt.Sprintf("vcsim-launcher: %s failed: %v", name, p),
				&types.SystemError{Reason: "internal error"})
		}
	}()
	return overrides[name](m)
}
