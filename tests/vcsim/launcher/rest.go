package main

// The front handler of /rest (vSphere Automation REST, served by the
// simulator's vapi handlers): it passes every request through unchanged and
// remembers the ids of the sessions that clients create, so that the
// control channel can end them the way an idle timeout or a vCenter restart
// does (/ctl/rest-sessions?drop=all, or the task action drop-rest-sessions).
// Session ids are secrets: they are never printed.

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
)

const restSessionPath = "/rest/com/vmware/cis/session"

var (
	restMu       sync.Mutex
	restSessions = map[string]bool{} // ids created by clients (guarded by restMu)
	restLogins   int                 // successful session creations by clients
)

// serveREST hands the request to the simulator; a successful session
// creation (POST of the session path without ~action) is recorded.
func serveREST(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Path != restSessionPath || r.URL.Query().Get("~action") != "" {
		svc.ServeMux.ServeHTTP(w, r)
		return
	}
	rec := httptest.NewRecorder()
	svc.ServeMux.ServeHTTP(rec, r)
	if rec.Code == http.StatusOK {
		var reply struct {
			Value string `json:"value"`
		}
		if json.Unmarshal(rec.Body.Bytes(), &reply) == nil && reply.Value != "" {
			restMu.Lock()
			restSessions[reply.Value] = true
			restLogins++
			restMu.Unlock()
		}
	}
	for k, v := range rec.Header() {
		w.Header()[k] = v
	}
	w.WriteHeader(rec.Code)
	_, _ = w.Write(rec.Body.Bytes())
}

// restSessionAlive asks the simulator whether session id still exists.
func restSessionAlive(id string) bool {
	req := httptest.NewRequest(http.MethodGet, restSessionPath, nil)
	req.Header.Set("vmware-api-session-id", id)
	rec := httptest.NewRecorder()
	svc.ServeMux.ServeHTTP(rec, req)
	return rec.Code == http.StatusOK
}

// dropRESTSessions ends every client session the simulator still knows,
// through its own DELETE of the session; the next call of such a client
// gets 401, as after an idle timeout. Returns how many were ended.
func dropRESTSessions() int {
	restMu.Lock()
	ids := make([]string, 0, len(restSessions))
	for id := range restSessions {
		ids = append(ids, id)
	}
	restSessions = map[string]bool{}
	restMu.Unlock()
	n := 0
	for _, id := range ids {
		if restSessionAlive(id) {
			if _, err := restCall(http.MethodDelete, restSessionPath, id, nil, nil); err == nil {
				n++
			}
		}
	}
	return n
}

// restSessionCounts: client logins so far, and how many of those sessions
// the simulator still knows.
func restSessionCounts() (int, int) {
	restMu.Lock()
	logins := restLogins
	ids := make([]string, 0, len(restSessions))
	for id := range restSessions {
		ids = append(ids, id)
	}
	restMu.Unlock()
	live := 0
	for _, id := range ids {
		if restSessionAlive(id) {
			live++
		}
	}
	return logins, live
}

// deleteTag deletes the tag called name (in any category) through the
// simulator's REST handlers, as when the destination of a move does not
// have it.
func deleteTag(name string) error {
	var session string
	if _, err := restCall(http.MethodPost, restSessionPath, "", nil, &session); err != nil {
		return err
	}
	defer restCall(http.MethodDelete, restSessionPath, session, nil, nil)
	var ids []string
	if _, err := restCall(http.MethodGet, "/rest/com/vmware/cis/tagging/tag", session, nil, &ids); err != nil {
		return err
	}
	for _, id := range ids {
		var t struct {
			Name string `json:"name"`
		}
		if _, err := restCall(http.MethodGet, "/rest/com/vmware/cis/tagging/tag/id:"+id, session, nil, &t); err != nil {
			return err
		}
		if t.Name == name {
			_, err := restCall(http.MethodDelete, "/rest/com/vmware/cis/tagging/tag/id:"+id, session, nil, nil)
			return err
		}
	}
	return fmt.Errorf("no tag %q", strings.TrimSpace(name))
}
