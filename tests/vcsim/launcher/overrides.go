package main

// Method overrides that make govmomi 0.24.2's simulator behave like a real
// vCenter where vmshift depends on it. Each one is listed, with the real
// behaviour it reproduces, in ../README.md.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"time"

	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/methods"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"
)

var taskStep = 100 * time.Millisecond

var overrides = map[string]func(*simulator.Method) soap.HasFault{
	"RelocateVM_Task":         relocateVM,
	"MigrateVM_Task":          migrateVM,
	"CancelTask":              cancelTask,
	"RemoveSnapshot_Task":     removeSnapshot,
	"RemoveAllSnapshots_Task": removeAllSnapshots,
	"ConsolidateVMDisks_Task": consolidateVMDisks,
}

// ---- task fault injection (control channel /ctl/task) ----

type taskPlan struct {
	failAt  int // percent, -1 = never
	fault   string
	message string
	hangAt  int    // percent, -1 = never
	at      int    // percent for action, -1 = none
	action  string // one or more actions, comma-separated, run in order
	delTag  string // clear-tags: also delete the tag of this name
	stepMs  int    // -1 = default
	count   int    // remaining uses, < 0 forever
}

var taskPlans = map[string][]*taskPlan{} // method name → plans (guarded by injMu)

func addTaskPlan(method string, p *taskPlan) {
	injMu.Lock()
	defer injMu.Unlock()
	taskPlans[method] = append(taskPlans[method], p)
}

func takeTaskPlan(method string) taskPlan {
	injMu.Lock()
	defer injMu.Unlock()
	for _, key := range []string{method, "*"} {
		list := taskPlans[key]
		if len(list) == 0 {
			continue
		}
		p := list[0]
		plan := *p
		if p.count > 0 {
			p.count--
		}
		if p.count == 0 {
			taskPlans[key] = list[1:]
		}
		return plan
	}
	return taskPlan{failAt: -1, hangAt: -1, at: -1, stepMs: -1}
}

// newFault builds a vim25 fault by type name (e.g. "MigrationFault").
func newFault(name string) types.BaseMethodFault {
	if typ, ok := typeFunc(name); ok {
		if f, ok := reflect.New(typ).Interface().(types.BaseMethodFault); ok {
			return f
		}
	}
	return &types.SystemError{}
}

// ---- asynchronous tasks ----

type asyncTask struct {
	task   *simulator.Task
	cancel chan struct{}
	once   sync.Once
	mu     sync.Mutex
	done   bool
}

var (
	tasksMu sync.Mutex
	tasks   = map[string]*asyncTask{}
)

func update(obj mo.Reference, changes ...types.PropertyChange) {
	simulator.Map.WithLock(obj, func() { simulator.Map.Update(obj, changes) })
}

func entityName(ref types.ManagedObjectReference) string {
	if e, ok := simulator.Map.Get(ref).(mo.Entity); ok {
		return e.Entity().Name
	}
	return ref.Value
}

// startTask creates a Task the way vCenter does (queued, then running with
// progress, cancelable) and runs it in the background: validate (at 0%),
// the plan's injected faults/hangs/actions, then apply under the entity's
// lock. Returns the Task moref at once, like vCenter.
func startTask(entity types.ManagedObjectReference, lock mo.Reference, name, descID, method string, cancelable bool,
	validate func() (types.BaseMethodFault, string),
	apply func() (types.AnyType, types.BaseMethodFault)) types.ManagedObjectReference {

	plan := takeTaskPlan(method)
	t := simulator.CreateTask(entity, name, nil)
	simulator.Map.WithLock(t, func() {
		t.Info.Name = name
		t.Info.DescriptionId = descID
		t.Info.EntityName = entityName(entity)
		t.Info.Cancelable = cancelable
		t.Info.Reason = &types.TaskReasonUser{UserName: user}
	})
	at := &asyncTask{task: t, cancel: make(chan struct{})}
	tasksMu.Lock()
	tasks[t.Self.Value] = at
	tasksMu.Unlock()

	step := taskStep
	if plan.stepMs >= 0 {
		step = time.Duration(plan.stepMs) * time.Millisecond
	}

	finish := func(res types.AnyType, f types.BaseMethodFault, msg string, cancelled bool) {
		at.mu.Lock()
		at.done = true
		at.mu.Unlock()
		state := types.TaskInfoStateSuccess
		var lf interface{}
		if f != nil {
			state = types.TaskInfoStateError
			if msg == "" {
				msg = strings.TrimPrefix(reflect.TypeOf(f).Elem().Name(), "")
			}
			lf = types.LocalizedMethodFault{Fault: f, LocalizedMessage: msg}
			res = nil
		}
		changes := []types.PropertyChange{
			{Name: "info.completeTime", Val: time.Now()},
			{Name: "info.state", Val: state},
			{Name: "info.result", Val: res},
			{Name: "info.error", Val: lf},
			{Name: "info.cancelable", Val: false},
		}
		if cancelled {
			changes = append(changes, types.PropertyChange{Name: "info.cancelled", Val: true})
		}
		update(t, changes...)
	}
	cancelled := func() {
		finish(nil, &types.RequestCanceled{}, "The task was canceled by a user.", true)
	}

	go func() {
		defer func() {
			if p := recover(); p != nil {
				log.Printf("task %s (%s) panicked: %v", t.Self.Value, name, p)
				finish(nil, &types.SystemError{Reason: fmt.Sprint(p)}, "A general system error occurred: vcsim-launcher", false)
			}
		}()
		// queued → running
		select {
		case <-time.After(step / 2):
		case <-at.cancel:
			cancelled()
			return
		}
		update(t,
			types.PropertyChange{Name: "info.startTime", Val: time.Now()},
			types.PropertyChange{Name: "info.state", Val: types.TaskInfoStateRunning},
			types.PropertyChange{Name: "info.progress", Val: int32(0)})
		if validate != nil {
			if f, msg := validate(); f != nil {
				finish(nil, f, msg, false)
				return
			}
		}
		for p := 0; p < 100; p += 10 {
			if plan.hangAt == p {
				<-at.cancel
				cancelled()
				return
			}
			if plan.failAt == p {
				msg := plan.message
				if msg == "" {
					msg = fmt.Sprintf("%s failed at %d%% (injected)", name, p)
				}
				finish(nil, newFault(plan.fault), msg, false)
				return
			}
			if plan.at == p && plan.action != "" {
				for _, a := range strings.Split(plan.action, ",") {
					if err := runAction(entity, a, &plan); err != nil {
						log.Printf("action %s on %s: %v", a, entity.Value, err)
					}
				}
			}
			select {
			case <-time.After(step):
			case <-at.cancel:
				cancelled()
				return
			}
			if p+10 < 100 {
				update(t, types.PropertyChange{Name: "info.progress", Val: int32(p + 10)})
			}
		}
		// Past the point of no return: vCenter stops honouring cancel.
		update(t, types.PropertyChange{Name: "info.cancelable", Val: false})
		at.mu.Lock()
		at.done = true
		at.mu.Unlock()
		var res types.AnyType
		var f types.BaseMethodFault
		if lock != nil {
			simulator.Map.WithLock(lock, func() { res, f = apply() })
		} else {
			res, f = apply()
		}
		finish(res, f, "", false)
	}()
	return t.Self
}

// CancelTask: vCenter cancels a running cancelable task (it ends in error
// with RequestCanceled), refuses with InvalidState once it has finished and
// with NotSupported when it is not cancelable.
func cancelTask(m *simulator.Method) soap.HasFault {
	tasksMu.Lock()
	at := tasks[m.This.Value]
	tasksMu.Unlock()
	if at == nil {
		if t, ok := simulator.Map.Get(m.This).(*simulator.Task); ok {
			if t.Info.State == types.TaskInfoStateSuccess || t.Info.State == types.TaskInfoStateError {
				return fault("The operation is not allowed in the current state.", &types.InvalidState{})
			}
			return fault("The operation is not supported on the object.", &types.NotSupported{})
		}
		return fault(fmt.Sprintf("managed object not found: %s", m.This), &types.ManagedObjectNotFound{Obj: m.This})
	}
	at.mu.Lock()
	done := at.done
	at.mu.Unlock()
	if done {
		return fault("The operation is not allowed in the current state.", &types.InvalidState{})
	}
	if !at.task.Info.Cancelable {
		return fault("The operation is not supported on the object.", &types.NotSupported{})
	}
	at.once.Do(func() { close(at.cancel) })
	return &methods.CancelTaskBody{Res: &types.CancelTaskResponse{}}
}

// ---- lookups ----

func getVM(ref types.ManagedObjectReference) *simulator.VirtualMachine {
	vm, _ := simulator.Map.Get(ref).(*simulator.VirtualMachine)
	return vm
}

func notFound(ref types.ManagedObjectReference) soap.HasFault {
	return fault(fmt.Sprintf("The object '%s:%s' has already been deleted or has not been completely created", ref.Type, ref.Value),
		&types.ManagedObjectNotFound{Obj: ref})
}

// computeResourceOf returns the (Cluster)ComputeResource owning a host.
func computeResourceOf(h *simulator.HostSystem) mo.Entity {
	if h.Parent == nil {
		return nil
	}
	e, _ := simulator.Map.Get(*h.Parent).(mo.Entity)
	return e
}

func rootPoolOf(cr mo.Entity) *types.ManagedObjectReference {
	switch c := cr.(type) {
	case *simulator.ClusterComputeResource:
		return c.ResourcePool
	case *mo.ComputeResource:
		return c.ResourcePool
	}
	v := reflect.ValueOf(cr).Elem()
	if f := v.FieldByName("ResourcePool"); f.IsValid() {
		if p, ok := f.Interface().(*types.ManagedObjectReference); ok {
			return p
		}
	}
	return nil
}

// poolOwner walks up from a resource pool to its compute resource.
func poolOwner(ref types.ManagedObjectReference) *types.ManagedObjectReference {
	if p, ok := simulator.Map.Get(ref).(*simulator.ResourcePool); ok {
		return &p.Owner
	}
	return nil
}

func hasRef(list []types.ManagedObjectReference, ref types.ManagedObjectReference) bool {
	for _, r := range list {
		if r == ref {
			return true
		}
	}
	return false
}

// ---- relocation ----

type relocation struct {
	vm      *simulator.VirtualMachine
	host    *simulator.HostSystem
	pool    *types.ManagedObjectReference
	ds      *simulator.Datastore
	disks   map[int32]*simulator.Datastore
	devices []types.BaseVirtualDeviceConfigSpec
	storage bool
}

// checkSpec does what vCenter checks synchronously: every moref must exist
// (ManagedObjectNotFound as a SOAP fault), the pool must belong to the
// destination host's compute resource, deviceChange may only edit existing
// NICs onto networks that exist.
func checkSpec(vm *simulator.VirtualMachine, hostRef, poolRef, dsRef *types.ManagedObjectReference,
	locators []types.VirtualMachineRelocateSpecDiskLocator, devs []types.BaseVirtualDeviceConfigSpec) (*relocation, soap.HasFault) {

	r := &relocation{vm: vm, disks: map[int32]*simulator.Datastore{}, devices: devs}
	if hostRef != nil {
		h, ok := simulator.Map.Get(*hostRef).(*simulator.HostSystem)
		if !ok {
			return nil, notFound(*hostRef)
		}
		r.host = h
	}
	if poolRef != nil {
		if _, ok := simulator.Map.Get(*poolRef).(*simulator.ResourcePool); !ok {
			return nil, notFound(*poolRef)
		}
		r.pool = poolRef
	}
	if dsRef != nil {
		ds, ok := simulator.Map.Get(*dsRef).(*simulator.Datastore)
		if !ok {
			return nil, notFound(*dsRef)
		}
		r.ds = ds
		r.storage = true
	}
	devices := object.VirtualDeviceList(vm.Config.Hardware.Device)
	for _, l := range locators {
		ds, ok := simulator.Map.Get(l.Datastore).(*simulator.Datastore)
		if !ok {
			return nil, notFound(l.Datastore)
		}
		if d, ok := devices.FindByKey(l.DiskId).(*types.VirtualDisk); !ok || d == nil {
			return nil, fault(fmt.Sprintf("A specified parameter was not correct: spec.disk.diskId (%d)", l.DiskId),
				&types.InvalidArgument{InvalidProperty: "spec.disk.diskId"})
		}
		r.disks[l.DiskId] = ds
		r.storage = true
	}

	// Destination compute resource and pool.
	curHost := simulator.Map.Get(*vm.Runtime.Host).(*simulator.HostSystem)
	dest := curHost
	if r.host != nil {
		dest = r.host
	}
	destCR := computeResourceOf(dest)
	if r.pool != nil {
		if owner := poolOwner(*r.pool); owner == nil || destCR == nil || *owner != destCR.Reference() {
			return nil, fault("A specified parameter was not correct: spec.pool",
				&types.InvalidArgument{InvalidProperty: "spec.pool"})
		}
	} else if r.host != nil && destCR != nil && computeResourceOf(curHost) != nil &&
		computeResourceOf(curHost).Reference() != destCR.Reference() {
		// Moving to another compute resource needs an explicit pool.
		return nil, fault("A specified parameter was not correct: spec.pool",
			&types.InvalidArgument{InvalidProperty: "spec.pool"})
	}

	// deviceChange: edits of existing NICs only.
	dc := datacenterOf(vm)
	for i, c := range devs {
		spec := c.GetVirtualDeviceConfigSpec()
		invalid := fault(fmt.Sprintf("Invalid configuration for device '%d'.", i),
			&types.InvalidDeviceSpec{DeviceIndex: int32(i)})
		if spec.Operation != types.VirtualDeviceConfigSpecOperationEdit {
			return nil, invalid
		}
		nic, ok := spec.Device.(types.BaseVirtualEthernetCard)
		if !ok {
			return nil, invalid
		}
		key := nic.GetVirtualEthernetCard().Key
		if _, ok := devices.FindByKey(key).(types.BaseVirtualEthernetCard); !ok {
			return nil, invalid
		}
		if _, f := resolveBacking(dc, nic.GetVirtualEthernetCard().Backing); f != nil {
			return nil, f
		}
	}
	return r, nil
}

func datacenterOf(vm *simulator.VirtualMachine) *simulator.Datacenter {
	var ref *types.ManagedObjectReference = vm.Parent
	for ref != nil {
		obj := simulator.Map.Get(*ref)
		if dc, ok := obj.(*simulator.Datacenter); ok {
			return dc
		}
		e, ok := obj.(mo.Entity)
		if !ok {
			return nil
		}
		ref = e.Entity().Parent
	}
	return nil
}

// resolveBacking finds the network a NIC backing names.
func resolveBacking(dc *simulator.Datacenter, b types.BaseVirtualDeviceBackingInfo) (types.ManagedObjectReference, soap.HasFault) {
	bad := func(what string) soap.HasFault {
		return fault(fmt.Sprintf("A specified parameter was not correct: %s", what),
			&types.InvalidArgument{InvalidProperty: what})
	}
	switch x := b.(type) {
	case *types.VirtualEthernetCardNetworkBackingInfo:
		if dc == nil {
			return types.ManagedObjectReference{}, bad("deviceChange.device.backing")
		}
		if x.Network != nil {
			if _, ok := simulator.Map.Get(*x.Network).(mo.Entity); !ok {
				return types.ManagedObjectReference{}, notFound(*x.Network)
			}
			return *x.Network, nil
		}
		e := simulator.Map.FindByName(x.DeviceName, dc.Network)
		if e == nil {
			return types.ManagedObjectReference{}, bad("deviceChange.device.backing.deviceName")
		}
		return e.Reference(), nil
	case *types.VirtualEthernetCardDistributedVirtualPortBackingInfo:
		ref := types.ManagedObjectReference{Type: "DistributedVirtualPortgroup", Value: x.Port.PortgroupKey}
		pg, ok := simulator.Map.Get(ref).(*simulator.DistributedVirtualPortgroup)
		if !ok {
			return ref, bad("deviceChange.device.backing.port.portgroupKey")
		}
		if pg.Config.DistributedVirtualSwitch != nil {
			if dvs, ok := simulator.Map.Get(*pg.Config.DistributedVirtualSwitch).(*simulator.DistributedVirtualSwitch); ok &&
				x.Port.SwitchUuid != "" && dvs.Uuid != x.Port.SwitchUuid {
				return ref, bad("deviceChange.device.backing.port.switchUuid")
			}
		}
		return ref, nil
	}
	return types.ManagedObjectReference{}, bad("deviceChange.device.backing")
}

// validate is what vCenter finds when the task starts: the destination host
// must be connected and not in maintenance mode, the datastores accessible,
// writable from that host and not in maintenance mode.
func (r *relocation) validate() (types.BaseMethodFault, string) {
	vm := r.vm
	dest := simulator.Map.Get(*vm.Runtime.Host).(*simulator.HostSystem)
	if r.host != nil {
		dest = r.host
	}
	if r.host != nil {
		switch dest.Runtime.ConnectionState {
		case types.HostSystemConnectionStateConnected:
		default:
			return &types.HostNotConnected{}, fmt.Sprintf("Cannot complete operation because host '%s' is not connected (%s).",
				dest.Name, dest.Runtime.ConnectionState)
		}
		if dest.Runtime.InMaintenanceMode {
			return &types.InvalidState{}, fmt.Sprintf("The operation is not allowed in the current state of the host: host '%s' is in maintenance mode.", dest.Name)
		}
	}
	check := func(ds *simulator.Datastore) (types.BaseMethodFault, string) {
		if !ds.Summary.Accessible || ds.Summary.MaintenanceMode == string(types.DatastoreSummaryMaintenanceModeStateInMaintenance) {
			return &types.InvalidDatastore{Datastore: &ds.Self, Name: ds.Name},
				fmt.Sprintf("The datastore '%s' is not accessible or in maintenance mode.", ds.Name)
		}
		if !hasRef(dest.Datastore, ds.Self) {
			return &types.DatastoreNotWritableOnHost{InvalidDatastore: types.InvalidDatastore{Datastore: &ds.Self, Name: ds.Name}, Host: dest.Self},
				fmt.Sprintf("The datastore '%s' is not accessible from host '%s'.", ds.Name, dest.Name)
		}
		return nil, ""
	}
	if r.ds != nil {
		if f, msg := check(r.ds); f != nil {
			return f, msg
		}
	}
	for _, ds := range r.disks {
		if f, msg := check(ds); f != nil {
			return f, msg
		}
	}
	if r.host != nil && !r.storage {
		// A compute-only move needs the VM's datastores on the new host.
		for _, ref := range vm.Datastore {
			if !hasRef(dest.Datastore, ref) {
				return &types.DatastoreNotWritableOnHost{InvalidDatastore: types.InvalidDatastore{Datastore: &ref}, Host: dest.Self},
					fmt.Sprintf("The VM's datastore %s is not accessible from host '%s'.", ref.Value, dest.Name)
			}
		}
	}
	return nil, ""
}

func dsName(p string) (string, string) {
	var dp object.DatastorePath
	if dp.FromString(p) {
		return dp.Datastore, dp.Path
	}
	return "", p
}

func dsURL(ds *simulator.Datastore) string {
	return ds.Info.GetDatastoreInfo().Url
}

func findDatastoreByName(vm *simulator.VirtualMachine, name string) *simulator.Datastore {
	for _, e := range simulator.Map.All("Datastore") {
		if e.Entity().Name == name {
			return e.(*simulator.Datastore)
		}
	}
	return nil
}

// moveFile renames a datastore file (and creates the directory) so that the
// simulator's datastore browsing and space accounting see the move.
func moveFile(from string, fromDS *simulator.Datastore, to string, toDS *simulator.Datastore) {
	if fromDS == nil || toDS == nil {
		return
	}
	_, fp := dsName(from)
	_, tp := dsName(to)
	src := filepath.Join(dsURL(fromDS), fp)
	dst := filepath.Join(dsURL(toDS), tp)
	if src == dst {
		return
	}
	_ = os.MkdirAll(filepath.Dir(dst), 0700)
	if err := os.Rename(src, dst); err != nil && !os.IsNotExist(err) {
		log.Printf("moving %s to %s: %v", src, dst, err)
	}
}

// apply performs the move: host, pool, home datastore and per-disk
// datastores (files are really moved; paths in config, layoutEx and disk
// backings are rewritten), NIC backings from deviceChange, and the
// back-references (HostSystem.vm, Datastore.vm, ResourcePool.vm,
// Network.vm) a real vCenter keeps consistent.
func (r *relocation) apply() (types.AnyType, types.BaseMethodFault) {
	vm := r.vm
	var changes []types.PropertyChange
	oldHost := *vm.Runtime.Host

	if r.host != nil && r.host.Self != oldHost {
		if h, ok := simulator.Map.Get(oldHost).(*simulator.HostSystem); ok {
			simulator.Map.RemoveReference(h, &h.Vm, vm.Self)
		}
		simulator.Map.AddReference(r.host, &r.host.Vm, vm.Self)
		ref := r.host.Self
		changes = append(changes,
			types.PropertyChange{Name: "runtime.host", Val: &ref},
			types.PropertyChange{Name: "summary.runtime.host", Val: &ref})
	}
	pool := r.pool
	if pool == nil && r.host != nil && r.host.Self != oldHost {
		pool = rootPoolOf(computeResourceOf(r.host)) // same compute resource: stays in its pool
		if vm.ResourcePool != nil {
			if owner := poolOwner(*vm.ResourcePool); owner != nil && computeResourceOf(r.host) != nil &&
				*owner == computeResourceOf(r.host).Reference() {
				pool = nil
			}
		}
	}
	if pool != nil && (vm.ResourcePool == nil || *vm.ResourcePool != *pool) {
		if vm.ResourcePool != nil {
			if p, ok := simulator.Map.Get(*vm.ResourcePool).(*simulator.ResourcePool); ok {
				simulator.Map.RemoveReference(p, &p.Vm, vm.Self)
			}
		}
		if p, ok := simulator.Map.Get(*pool).(*simulator.ResourcePool); ok {
			simulator.Map.AddReference(p, &p.Vm, vm.Self)
		}
		ref := *pool
		changes = append(changes, types.PropertyChange{Name: "resourcePool", Val: &ref})
	}

	if r.storage {
		homeName, _ := dsName(vm.Config.Files.VmPathName)
		oldHome := findDatastoreByName(vm, homeName)
		newHome := oldHome
		if r.ds != nil {
			newHome = r.ds
		}
		rewrite := func(p string, to *simulator.Datastore) string {
			_, rel := dsName(p)
			return fmt.Sprintf("[%s] %s", to.Name, rel)
		}
		used := map[types.ManagedObjectReference]bool{}
		if newHome != nil {
			used[newHome.Self] = true
		}
		// Disks: a locator decides, otherwise the disk follows the home.
		for _, d := range vm.Config.Hardware.Device {
			disk, ok := d.(*types.VirtualDisk)
			if !ok {
				continue
			}
			b, ok := disk.Backing.(types.BaseVirtualDeviceFileBackingInfo)
			if !ok {
				continue
			}
			fb := b.GetVirtualDeviceFileBackingInfo()
			curName, _ := dsName(fb.FileName)
			cur := findDatastoreByName(vm, curName)
			to := r.disks[disk.Key]
			if to == nil {
				if r.ds != nil && cur != nil && oldHome != nil && cur.Self == oldHome.Self {
					to = newHome
				} else {
					to = cur
				}
			}
			if to == nil {
				continue
			}
			used[to.Self] = true
			if cur == nil || to.Self != cur.Self {
				np := rewrite(fb.FileName, to)
				moveFile(fb.FileName, cur, np, to)
				fb.FileName = np
				fb.Datastore = &types.ManagedObjectReference{Type: "Datastore", Value: to.Self.Value}
			}
		}
		if newHome != nil && oldHome != nil && newHome.Self != oldHome.Self {
			// Move what remains of the home directory.
			_, rel := dsName(vm.Config.Files.VmPathName)
			dir := path.Dir(rel)
			src := filepath.Join(dsURL(oldHome), dir)
			dst := filepath.Join(dsURL(newHome), dir)
			if entries, err := os.ReadDir(src); err == nil {
				_ = os.MkdirAll(dst, 0700)
				for _, e := range entries {
					_ = os.Rename(filepath.Join(src, e.Name()), filepath.Join(dst, e.Name()))
				}
				_ = os.Remove(src)
			}
			files := vm.Config.Files
			files.VmPathName = rewrite(files.VmPathName, newHome)
			for _, p := range []*string{&files.LogDirectory, &files.SnapshotDirectory, &files.SuspendDirectory} {
				if *p != "" {
					if n, _ := dsName(*p); n == oldHome.Name {
						*p = rewrite(*p, newHome)
					}
				}
			}
			changes = append(changes,
				types.PropertyChange{Name: "config.files", Val: files},
				types.PropertyChange{Name: "summary.config.vmPathName", Val: files.VmPathName})
			if vm.LayoutEx != nil {
				for i := range vm.LayoutEx.File {
					if n, _ := dsName(vm.LayoutEx.File[i].Name); n == oldHome.Name {
						vm.LayoutEx.File[i].Name = rewrite(vm.LayoutEx.File[i].Name, newHome)
					}
				}
				changes = append(changes, types.PropertyChange{Name: "layoutEx", Val: vm.LayoutEx})
			}
		}
		var list []types.ManagedObjectReference
		for ref := range used {
			list = append(list, ref)
		}
		for _, ref := range vm.Datastore {
			if !used[ref] {
				if ds, ok := simulator.Map.Get(ref).(*simulator.Datastore); ok {
					simulator.Map.RemoveReference(ds, &ds.Vm, vm.Self)
				}
			}
		}
		for ref := range used {
			if !hasRef(vm.Datastore, ref) {
				if ds, ok := simulator.Map.Get(ref).(*simulator.Datastore); ok {
					simulator.Map.AddReference(ds, &ds.Vm, vm.Self)
				}
			}
		}
		changes = append(changes,
			types.PropertyChange{Name: "datastore", Val: list},
			types.PropertyChange{Name: "config.hardware.device", Val: vm.Config.Hardware.Device})
	}

	if len(r.devices) > 0 {
		dc := datacenterOf(vm)
		devices := object.VirtualDeviceList(vm.Config.Hardware.Device)
		for _, c := range r.devices {
			spec := c.GetVirtualDeviceConfigSpec()
			want := spec.Device.(types.BaseVirtualEthernetCard).GetVirtualEthernetCard()
			have := devices.FindByKey(want.Key).(types.BaseVirtualEthernetCard).GetVirtualEthernetCard()
			net, f := resolveBacking(dc, want.Backing)
			if f != nil {
				return nil, &types.InvalidDeviceSpec{}
			}
			if b, ok := want.Backing.(*types.VirtualEthernetCardNetworkBackingInfo); ok {
				n := net
				b.Network = &n
				if e, ok := simulator.Map.Get(net).(mo.Entity); ok {
					b.DeviceName = e.Entity().Name
				}
			}
			have.Backing = want.Backing
			summary := entityName(net)
			have.DeviceInfo = &types.Description{Label: have.DeviceInfo.GetDescription().Label, Summary: summary}
		}
		// vm.network = the networks its NICs are on now.
		var nets []types.ManagedObjectReference
		for _, d := range vm.Config.Hardware.Device {
			nic, ok := d.(types.BaseVirtualEthernetCard)
			if !ok {
				continue
			}
			var ref types.ManagedObjectReference
			switch b := nic.GetVirtualEthernetCard().Backing.(type) {
			case *types.VirtualEthernetCardNetworkBackingInfo:
				if b.Network != nil {
					ref = *b.Network
				}
			case *types.VirtualEthernetCardDistributedVirtualPortBackingInfo:
				ref = types.ManagedObjectReference{Type: "DistributedVirtualPortgroup", Value: b.Port.PortgroupKey}
			}
			if ref.Value != "" && !hasRef(nets, ref) {
				nets = append(nets, ref)
			}
		}
		for _, ref := range vm.Network {
			if !hasRef(nets, ref) {
				detachNet(ref, vm.Self)
			}
		}
		for _, ref := range nets {
			if !hasRef(vm.Network, ref) {
				attachNet(ref, vm.Self)
			}
		}
		changes = append(changes,
			types.PropertyChange{Name: "config.hardware.device", Val: vm.Config.Hardware.Device},
			types.PropertyChange{Name: "network", Val: nets})
	}

	simulator.Map.Update(vm, changes)
	return nil, nil
}

func netVMField(ref types.ManagedObjectReference) (mo.Reference, *[]types.ManagedObjectReference) {
	switch n := simulator.Map.Get(ref).(type) {
	case *simulator.DistributedVirtualPortgroup:
		return n, &n.Vm
	case *mo.Network:
		return n, &n.Vm
	}
	return nil, nil
}

func detachNet(ref, vm types.ManagedObjectReference) {
	if obj, field := netVMField(ref); obj != nil {
		simulator.Map.RemoveReference(obj, field, vm)
	}
}

func attachNet(ref, vm types.ManagedObjectReference) {
	if obj, field := netVMField(ref); obj != nil {
		simulator.Map.AddReference(obj, field, vm)
	}
}

// relocIgnore (control channel /ctl/ignore): parts of the next RelocateVM_Task
// specs that are accepted and then not applied.
type relocIgnore struct {
	disks, devices bool
	count          int // remaining uses, < 0 forever
}

var relocIgnores []*relocIgnore // guarded by injMu

func takeRelocIgnore() relocIgnore {
	injMu.Lock()
	defer injMu.Unlock()
	if len(relocIgnores) == 0 {
		return relocIgnore{}
	}
	ig := relocIgnores[0]
	out := *ig
	if ig.count > 0 {
		ig.count--
	}
	if ig.count == 0 {
		relocIgnores = relocIgnores[1:]
	}
	return out
}

// RelocateVM_Task: see README.md.
func relocateVM(m *simulator.Method) soap.HasFault {
	req := m.Body.(*types.RelocateVM_Task)
	vm := getVM(req.This)
	if vm == nil {
		return notFound(req.This)
	}
	var r *relocation
	var f soap.HasFault
	simulator.Map.WithLock(vm, func() {
		r, f = checkSpec(vm, req.Spec.Host, req.Spec.Pool, req.Spec.Datastore, req.Spec.Disk, req.Spec.DeviceChange)
	})
	if f != nil {
		return f
	}
	if ig := takeRelocIgnore(); ig.disks || ig.devices {
		log.Printf("ignore: RelocateVM_Task of %s: dropping disk locators=%v device changes=%v",
			vm.Name, ig.disks && len(r.disks) > 0, ig.devices && len(r.devices) > 0)
		if ig.disks {
			r.disks = map[int32]*simulator.Datastore{}
			r.storage = r.ds != nil
		}
		if ig.devices {
			r.devices = nil
		}
	}
	ref := startTask(vm.Self, vm, "RelocateVM_Task", "VirtualMachine.relocate", "RelocateVM_Task", true,
		r.validate, r.apply)
	return &methods.RelocateVM_TaskBody{Res: &types.RelocateVM_TaskResponse{Returnval: ref}}
}

// MigrateVM_Task: see README.md.
func migrateVM(m *simulator.Method) soap.HasFault {
	req := m.Body.(*types.MigrateVM_Task)
	vm := getVM(req.This)
	if vm == nil {
		return notFound(req.This)
	}
	if req.State != "" && req.State != vm.Runtime.PowerState {
		return fault("The attempted operation cannot be performed in the current state.",
			&types.InvalidPowerState{RequestedState: req.State, ExistingState: vm.Runtime.PowerState})
	}
	var r *relocation
	var f soap.HasFault
	simulator.Map.WithLock(vm, func() {
		r, f = checkSpec(vm, req.Host, req.Pool, nil, nil, nil)
	})
	if f != nil {
		return f
	}
	ref := startTask(vm.Self, vm, "MigrateVM_Task", "VirtualMachine.migrate", "MigrateVM_Task", true,
		r.validate, r.apply)
	return &methods.MigrateVM_TaskBody{Res: &types.MigrateVM_TaskResponse{Returnval: ref}}
}

// ---- snapshot removal and consolidation ----

func removeSnapshot(m *simulator.Method) soap.HasFault {
	req := m.Body.(*types.RemoveSnapshot_Task)
	snap, ok := simulator.Map.Get(req.This).(*simulator.VirtualMachineSnapshot)
	if !ok {
		return notFound(req.This)
	}
	vmRef := snap.Vm
	ref := startTask(vmRef, snap, "RemoveSnapshot_Task", "VirtualMachineSnapshot.remove", "RemoveSnapshot_Task", false,
		func() (types.BaseMethodFault, string) {
			if _, ok := simulator.Map.Get(req.This).(*simulator.VirtualMachineSnapshot); !ok {
				return &types.ManagedObjectNotFound{Obj: req.This}, "The snapshot has already been deleted."
			}
			return nil, ""
		},
		func() (types.AnyType, types.BaseMethodFault) {
			// The simulator's own removal (it runs as a finished inner task).
			var res soap.HasFault
			s := simulator.Map.Get(req.This).(*simulator.VirtualMachineSnapshot)
			ctx := internalContext()
			ctx.Caller = &req.This // we hold the snapshot's lock; it takes the VM's
			res = s.RemoveSnapshotTask(ctx, req)
			if f := res.Fault(); f != nil {
				return nil, f.Detail.Fault.(types.BaseMethodFault)
			}
			return nil, nil
		})
	return &methods.RemoveSnapshot_TaskBody{Res: &types.RemoveSnapshot_TaskResponse{Returnval: ref}}
}

func removeAllSnapshots(m *simulator.Method) soap.HasFault {
	req := m.Body.(*types.RemoveAllSnapshots_Task)
	vm := getVM(req.This)
	if vm == nil {
		return notFound(req.This)
	}
	ref := startTask(vm.Self, vm, "RemoveAllSnapshots_Task", "VirtualMachine.removeAllSnapshots", "RemoveAllSnapshots_Task", false,
		nil,
		func() (types.AnyType, types.BaseMethodFault) {
			ctx := internalContext()
			ctx.Caller = &vm.Self
			res := vm.RemoveAllSnapshotsTask(ctx, req)
			if f := res.Fault(); f != nil {
				return nil, f.Detail.Fault.(types.BaseMethodFault)
			}
			simulator.Map.Update(vm, []types.PropertyChange{{Name: "runtime.consolidationNeeded", Val: false}})
			return nil, nil
		})
	return &methods.RemoveAllSnapshots_TaskBody{Res: &types.RemoveAllSnapshots_TaskResponse{Returnval: ref}}
}

func consolidateVMDisks(m *simulator.Method) soap.HasFault {
	req := m.Body.(*types.ConsolidateVMDisks_Task)
	vm := getVM(req.This)
	if vm == nil {
		return notFound(req.This)
	}
	ref := startTask(vm.Self, vm, "ConsolidateVMDisks_Task", "VirtualMachine.consolidateDisks", "ConsolidateVMDisks_Task", false,
		nil,
		func() (types.AnyType, types.BaseMethodFault) {
			simulator.Map.Update(vm, []types.PropertyChange{
				{Name: "runtime.consolidationNeeded", Val: false},
				{Name: "summary.runtime.consolidationNeeded", Val: false},
			})
			return nil, nil
		})
	return &methods.ConsolidateVMDisks_TaskBody{Res: &types.ConsolidateVMDisks_TaskResponse{Returnval: ref}}
}

// ---- mid-task actions (control channel: at=N&action=...) ----

// restCall sends one request to the simulator's own REST handlers (in
// process, no network) and decodes the reply's "value".
func restCall(method, path, session string, body interface{}, out interface{}) (string, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return "", err
		}
		rd = bytes.NewReader(b)
	}
	req := httptest.NewRequest(method, path, rd)
	if session == "" {
		pw, _ := svc.Listen.User.Password()
		req.SetBasicAuth(user, pw)
	} else {
		req.Header.Set("vmware-api-session-id", session)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	rec := httptest.NewRecorder()
	svc.ServeMux.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		return "", fmt.Errorf("%s %s: HTTP %d", method, path, rec.Code)
	}
	var reply struct {
		Value json.RawMessage `json:"value"`
	}
	if rec.Body.Len() > 0 {
		if err := json.Unmarshal(rec.Body.Bytes(), &reply); err != nil {
			return "", err
		}
		if out != nil && len(reply.Value) > 0 {
			return "", json.Unmarshal(reply.Value, out)
		}
	}
	return "", nil
}

// clearTags detaches every tag from VM moref through the REST API.
func clearTags(moref string) error {
	var session string
	if _, err := restCall("POST", "/rest/com/vmware/cis/session", "", nil, &session); err != nil {
		return err
	}
	defer restCall("DELETE", "/rest/com/vmware/cis/session", session, nil, nil)
	obj := map[string]interface{}{"object_id": map[string]string{"id": moref, "type": "VirtualMachine"}}
	var tags []string
	if _, err := restCall("POST", "/rest/com/vmware/cis/tagging/tag-association?~action=list-attached-tags",
		session, obj, &tags); err != nil {
		return err
	}
	for _, t := range tags {
		if _, err := restCall("POST", "/rest/com/vmware/cis/tagging/tag-association/id:"+t+"?~action=detach",
			session, obj, nil); err != nil {
			return err
		}
	}
	return nil
}

func runAction(entity types.ManagedObjectReference, action string, plan *taskPlan) error {
	vm := getVM(entity)
	if vm == nil {
		return fmt.Errorf("%s is not a VM", entity.Value)
	}
	switch action {
	case "clear-tags":
		// What a move to another vCenter does to the VM's tags; with
		// delete-tag=NAME that vCenter does not have tag NAME either.
		if err := clearTags(vm.Self.Value); err != nil {
			return err
		}
		if plan.delTag != "" {
			return deleteTag(plan.delTag)
		}
		return nil
	case "drop-rest-sessions":
		// What an idle timeout or a restart of vCenter's REST service
		// does to the sessions of REST clients.
		log.Printf("action drop-rest-sessions: %d REST session(s) ended", dropRESTSessions())
		return nil
	}
	ctx := internalContext()
	ctx.Caller = &vm.Self
	var res soap.HasFault
	simulator.Map.WithLock(vm, func() {
		switch action {
		case "snapshot":
			res = vm.CreateSnapshotTask(&types.CreateSnapshot_Task{This: vm.Self, Name: "taken-mid-migration",
				Description: "vcsim-launcher injected"})
		case "clear-perms":
			// What a move to another vCenter or folder does to the VM's
			// own permissions.
			res = clearPerms(ctx, vm)
		case "add-disk":
			res = vm.ReconfigVMTask(ctx, &types.ReconfigVM_Task{This: vm.Self, Spec: addDiskSpec(vm)})
		case "remove-disk":
			devices := object.VirtualDeviceList(vm.Config.Hardware.Device)
			disks := devices.SelectByType((*types.VirtualDisk)(nil))
			if len(disks) == 0 {
				return
			}
			res = vm.ReconfigVMTask(ctx, &types.ReconfigVM_Task{This: vm.Self, Spec: types.VirtualMachineConfigSpec{
				DeviceChange: []types.BaseVirtualDeviceConfigSpec{&types.VirtualDeviceConfigSpec{
					Operation: types.VirtualDeviceConfigSpecOperationRemove,
					Device:    disks[len(disks)-1],
				}}}})
		}
	})
	if res == nil {
		return fmt.Errorf("unknown or impossible action %q", action)
	}
	if f := res.Fault(); f != nil {
		return fmt.Errorf("%s", f.String)
	}
	return nil
}

func addDiskSpec(vm *simulator.VirtualMachine) types.VirtualMachineConfigSpec {
	devices := object.VirtualDeviceList(vm.Config.Hardware.Device)
	var ctlKey int32
	used := map[int32]bool{}
	for _, d := range devices {
		if disk, ok := d.(*types.VirtualDisk); ok {
			ctlKey = disk.ControllerKey
			if disk.UnitNumber != nil {
				used[*disk.UnitNumber] = true
			}
		}
	}
	if ctlKey == 0 {
		if c, err := devices.FindSCSIController(""); err == nil {
			ctlKey = c.GetVirtualController().Key
		}
	}
	unit := int32(0)
	for used[unit] || unit == 7 {
		unit++
	}
	home, _ := dsName(vm.Config.Files.VmPathName)
	disk := &types.VirtualDisk{
		VirtualDevice: types.VirtualDevice{
			Key:           -100,
			ControllerKey: ctlKey,
			UnitNumber:    &unit,
			Backing: &types.VirtualDiskFlatVer2BackingInfo{
				VirtualDeviceFileBackingInfo: types.VirtualDeviceFileBackingInfo{FileName: "[" + home + "]"},
				DiskMode:                     string(types.VirtualDiskModePersistent),
				ThinProvisioned:              types.NewBool(true),
			},
		},
		CapacityInKB: 1024,
	}
	return types.VirtualMachineConfigSpec{DeviceChange: []types.BaseVirtualDeviceConfigSpec{
		&types.VirtualDeviceConfigSpec{
			Operation:     types.VirtualDeviceConfigSpecOperationAdd,
			FileOperation: types.VirtualDeviceConfigSpecFileOperationCreate,
			Device:        disk,
		}}}
}

func clearPerms(ctx *simulator.Context, vm *simulator.VirtualMachine) soap.HasFault {
	ref := types.ManagedObjectReference{Type: "AuthorizationManager", Value: "AuthorizationManager"}
	am, ok := simulator.Map.Get(ref).(*simulator.AuthorizationManager)
	if !ok {
		return fault("no authorization manager", &types.NotFound{})
	}
	var res soap.HasFault
	simulator.Map.WithLock(am, func() {
		res = am.SetEntityPermissions(&types.SetEntityPermissions{This: ref, Entity: vm.Self})
	})
	return res
}
