package main

// The test control channel: plain HTTP on loopback, one query-string call per
// injection. Every handler answers "ok\n" (200) or a one-line error (400/404).
// See ../README.md for the list.

import (
	"fmt"
	"log"
	"net/http"
	"strconv"
	"strings"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"
)

func intParam(r *http.Request, name string, def int) (int, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return 0, fmt.Errorf("bad %s=%q", name, v)
	}
	return n, nil
}

// findEntity looks an object up by moref value or by name.
func findEntity(kind, key string) mo.Entity {
	for _, e := range simulator.Map.All(kind) {
		if e.Reference().Value == key || e.Entity().Name == key {
			return e
		}
	}
	return nil
}

func ok(w http.ResponseWriter) {
	_, _ = fmt.Fprintln(w, "ok")
}

func bad(w http.ResponseWriter, code int, format string, args ...interface{}) {
	http.Error(w, fmt.Sprintf(format, args...), code)
}

// savedHardware: each host's summary.hardware while /ctl/host?hardware=unset
// has it dropped (control calls come one at a time).
var savedHardware = map[string]*types.HostHardwareSummary{}

func controlMux() *http.ServeMux {
	mux := http.NewServeMux()

	// /ctl/http?method=M&mode=close|malformed|truncate|500|401|503|notauth|delay[&ms=N][&count=N]
	//          [&match=TEXT]: only requests whose body holds TEXT
	mux.HandleFunc("/ctl/http", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		method, mode := q.Get("method"), q.Get("mode")
		switch mode {
		case "close", "malformed", "truncate", "500", "401", "503", "notauth", "delay":
		default:
			bad(w, 400, "unknown mode %q", mode)
			return
		}
		if method == "" {
			method = "*"
		}
		count, err := intParam(r, "count", 1)
		if err != nil {
			bad(w, 400, "%v", err)
			return
		}
		ms, err := intParam(r, "ms", 0)
		if err != nil {
			bad(w, 400, "%v", err)
			return
		}
		addHTTPFault(method, &httpFault{mode: mode, count: count, ms: ms, match: q.Get("match")})
		ok(w)
	})

	// /ctl/delay?method=M&ms=N[&count=N]  (count defaults to forever)
	mux.HandleFunc("/ctl/delay", func(w http.ResponseWriter, r *http.Request) {
		method := r.URL.Query().Get("method")
		if method == "" {
			method = "*"
		}
		ms, err := intParam(r, "ms", 0)
		if err != nil {
			bad(w, 400, "%v", err)
			return
		}
		count, err := intParam(r, "count", -1)
		if err != nil {
			bad(w, 400, "%v", err)
			return
		}
		addHTTPFault(method, &httpFault{mode: "delay", ms: ms, count: count})
		ok(w)
	})

	// /ctl/task?method=RelocateVM_Task[&fail-at=P&fault=T&message=S][&hang-at=P]
	//          [&at=P&action=A[,A...]][&delete-tag=NAME][&step-ms=N][&count=N]
	//          A: snapshot|add-disk|remove-disk|clear-perms|clear-tags|drop-rest-sessions
	mux.HandleFunc("/ctl/task", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		p := &taskPlan{fault: q.Get("fault"), message: q.Get("message"), action: q.Get("action"),
			delTag: q.Get("delete-tag")}
		var err error
		for _, x := range []struct {
			name string
			dst  *int
			def  int
		}{{"fail-at", &p.failAt, -1}, {"hang-at", &p.hangAt, -1}, {"at", &p.at, -1},
			{"step-ms", &p.stepMs, -1}, {"count", &p.count, 1}} {
			if *x.dst, err = intParam(r, x.name, x.def); err != nil {
				bad(w, 400, "%v", err)
				return
			}
		}
		if p.fault == "" {
			p.fault = "MigrationFault"
		}
		for _, v := range []int{p.failAt, p.hangAt, p.at} {
			if v >= 100 || (v >= 0 && v%10 != 0) {
				bad(w, 400, "percent must be one of 0,10,...,90")
				return
			}
		}
		if p.action != "" {
			for _, a := range strings.Split(p.action, ",") {
				switch a {
				case "snapshot", "add-disk", "remove-disk", "clear-perms", "clear-tags", "drop-rest-sessions":
				default:
					bad(w, 400, "unknown action %q", a)
					return
				}
			}
		}
		if p.delTag != "" && !strings.Contains(","+p.action+",", ",clear-tags,") {
			bad(w, 400, "delete-tag needs action clear-tags")
			return
		}
		method := q.Get("method")
		if method == "" {
			method = "*"
		}
		addTaskPlan(method, p)
		ok(w)
	})

	// /ctl/host?name=H[&connection=connected|disconnected|notResponding][&maintenance=true|false]
	//          [&memory-used-mb=N][&hardware=unset|set]
	// memory-used-mb is the host's summary.quickStats.overallMemoryUsage;
	// hardware=unset drops summary.hardware, as vCenter reports a host it
	// has not read since it was added (set puts the host's own back).
	mux.HandleFunc("/ctl/host", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		e := findEntity("HostSystem", q.Get("name"))
		if e == nil {
			bad(w, 404, "no host %q", q.Get("name"))
			return
		}
		var changes []types.PropertyChange
		if c := q.Get("connection"); c != "" {
			switch c {
			case "connected", "disconnected", "notResponding":
			default:
				bad(w, 400, "bad connection %q", c)
				return
			}
			changes = append(changes,
				types.PropertyChange{Name: "runtime.connectionState", Val: types.HostSystemConnectionState(c)},
				types.PropertyChange{Name: "summary.runtime.connectionState", Val: types.HostSystemConnectionState(c)})
		}
		if m := q.Get("maintenance"); m != "" {
			b := m == "true"
			changes = append(changes,
				types.PropertyChange{Name: "runtime.inMaintenanceMode", Val: b},
				types.PropertyChange{Name: "summary.runtime.inMaintenanceMode", Val: b})
		}
		if m := q.Get("memory-used-mb"); m != "" {
			n, err := strconv.ParseInt(m, 10, 32)
			if err != nil {
				bad(w, 400, "bad memory-used-mb=%q", m)
				return
			}
			changes = append(changes,
				types.PropertyChange{Name: "summary.quickStats.overallMemoryUsage", Val: int32(n)})
		}
		hw := q.Get("hardware")
		if hw != "" && hw != "unset" && hw != "set" {
			bad(w, 400, "bad hardware=%q", hw)
			return
		}
		update(e, changes...)
		// a nil summary.hardware cannot go through Map.Update: set it under
		// the host's lock (the property collector reads it from there)
		h := e.(*simulator.HostSystem)
		simulator.Map.WithLock(h, func() {
			if hw == "unset" && h.Summary.Hardware != nil {
				savedHardware[h.Self.Value] = h.Summary.Hardware
				h.Summary.Hardware = nil
			} else if hw == "set" && savedHardware[h.Self.Value] != nil {
				h.Summary.Hardware = savedHardware[h.Self.Value]
			}
		})
		ok(w)
	})

	// /ctl/datastore?name=D[&accessible=false][&maintenance=inMaintenance|normal]
	//               [&free=BYTES][&unmount=HOST][&mount=HOST]
	mux.HandleFunc("/ctl/datastore", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		e := findEntity("Datastore", q.Get("name"))
		if e == nil {
			bad(w, 404, "no datastore %q", q.Get("name"))
			return
		}
		var changes []types.PropertyChange
		if a := q.Get("accessible"); a != "" {
			changes = append(changes, types.PropertyChange{Name: "summary.accessible", Val: a == "true"})
		}
		if m := q.Get("maintenance"); m != "" {
			changes = append(changes, types.PropertyChange{Name: "summary.maintenanceMode", Val: m})
		}
		if f := q.Get("free"); f != "" {
			n, err := strconv.ParseInt(f, 10, 64)
			if err != nil {
				bad(w, 400, "bad free=%q", f)
				return
			}
			changes = append(changes, types.PropertyChange{Name: "summary.freeSpace", Val: n})
		}
		for _, x := range []struct {
			param string
			mount bool
		}{{"unmount", false}, {"mount", true}} {
			if hn := q.Get(x.param); hn != "" {
				h, _ := findEntity("HostSystem", hn).(*simulator.HostSystem)
				if h == nil {
					bad(w, 404, "no host %q", hn)
					return
				}
				setMount(e.(*simulator.Datastore), h, x.mount)
			}
		}
		update(e, changes...)
		ok(w)
	})

	// /ctl/vm?name=V[&consolidation-needed=true|false][&power=on|off]
	mux.HandleFunc("/ctl/vm", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		e := findEntity("VirtualMachine", q.Get("name"))
		if e == nil {
			bad(w, 404, "no VM %q", q.Get("name"))
			return
		}
		vm := e.(*simulator.VirtualMachine)
		if c := q.Get("consolidation-needed"); c != "" {
			b := c == "true"
			update(vm,
				types.PropertyChange{Name: "runtime.consolidationNeeded", Val: b},
				types.PropertyChange{Name: "summary.runtime.consolidationNeeded", Val: b})
		}
		if p := q.Get("power"); p != "" {
			state := types.VirtualMachinePowerStatePoweredOff
			if p == "on" {
				state = types.VirtualMachinePowerStatePoweredOn
			}
			update(vm,
				types.PropertyChange{Name: "runtime.powerState", Val: state},
				types.PropertyChange{Name: "summary.runtime.powerState", Val: state})
		}
		ok(w)
	})

	// /ctl/rest-sessions[?drop=all]: "logins=N live=M" (REST sessions
	// clients created, and how many the simulator still knows); with
	// drop=all end them all first (clients then get 401, as after an idle
	// timeout) and answer "ok".
	mux.HandleFunc("/ctl/rest-sessions", func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Query().Get("drop") {
		case "":
			logins, live := restSessionCounts()
			_, _ = fmt.Fprintf(w, "logins=%d live=%d\n", logins, live)
		case "all":
			log.Printf("control: %d REST session(s) ended", dropRESTSessions())
			ok(w)
		default:
			bad(w, 400, "drop must be all")
		}
	})

	// /ctl/ignore?what=disk-locators|device-change[,...][&count=N]: the next N
	// (default 1, -1 forever) RelocateVM_Task calls drop those parts of
	// their spec after the synchronous checks and still succeed, as a
	// server bug that accepts a request and does not apply all of it.
	mux.HandleFunc("/ctl/ignore", func(w http.ResponseWriter, r *http.Request) {
		ig := &relocIgnore{}
		for _, x := range strings.Split(r.URL.Query().Get("what"), ",") {
			switch x {
			case "disk-locators":
				ig.disks = true
			case "device-change":
				ig.devices = true
			default:
				bad(w, 400, "what must list disk-locators and/or device-change, not %q", x)
				return
			}
		}
		var err error
		if ig.count, err = intParam(r, "count", 1); err != nil {
			bad(w, 400, "%v", err)
			return
		}
		injMu.Lock()
		relocIgnores = append(relocIgnores, ig)
		injMu.Unlock()
		ok(w)
	})

	// /ctl/reset: drop every pending injection.
	mux.HandleFunc("/ctl/reset", func(w http.ResponseWriter, r *http.Request) {
		injMu.Lock()
		httpFaults = map[string][]*httpFault{}
		taskPlans = map[string][]*taskPlan{}
		relocIgnores = nil
		injMu.Unlock()
		ok(w)
	})

	// /ctl/tasks: state of the overridden tasks (for debugging tests).
	mux.HandleFunc("/ctl/tasks", func(w http.ResponseWriter, r *http.Request) {
		tasksMu.Lock()
		defer tasksMu.Unlock()
		var b strings.Builder
		for id, t := range tasks {
			info := t.task.Info
			fmt.Fprintf(&b, "%s %s %s %s %d\n", id, info.Name, info.EntityName, info.State, info.Progress)
		}
		_, _ = w.Write([]byte(b.String()))
	})
	return mux
}

// setMount mounts or unmounts datastore ds on host h: Datastore.host and
// HostSystem.datastore, as a storage administrator's (un)mount does.
func setMount(ds *simulator.Datastore, h *simulator.HostSystem, mount bool) {
	var hosts []types.DatastoreHostMount
	for _, m := range ds.Host {
		if m.Key != h.Self {
			hosts = append(hosts, m)
		}
	}
	var dss []types.ManagedObjectReference
	for _, r := range h.Datastore {
		if r != ds.Self {
			dss = append(dss, r)
		}
	}
	if mount {
		hosts = append(hosts, types.DatastoreHostMount{Key: h.Self, MountInfo: types.HostMountInfo{
			AccessMode: string(types.HostMountModeReadWrite),
			Mounted:    types.NewBool(true), Accessible: types.NewBool(true)}})
		dss = append(dss, ds.Self)
	}
	update(ds, types.PropertyChange{Name: "host", Val: hosts})
	update(h, types.PropertyChange{Name: "datastore", Val: dss})
}
