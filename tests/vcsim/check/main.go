// vcsim-check: independent queries and setup against the simulator for
// vmshift's ESX tests, written with govmomi (not with vmshift's code), so a
// test can check what the plugin did from the simulator's own state.
//
//	vcsim-check -url URL -ca-file CA -credentials FILE CMD ARGS...
//
//	vm NAME                 key=value lines: moref, host, pool, power, datastores,
//	                        path, nic.KEY=network, disk.KEY=datastore,
//	                        snapshots, consolidation
//	nics NAME               one line per NIC: key TAB label TAB MAC TAB network
//	disks NAME              one line per disk: key TAB backing file name
//	perms NAME              one line per permission: principal role propagate group
//	set-perms NAME PRINCIPAL ROLE PROPAGATE   add/replace one permission (role by name)
//	clear-perms NAME        remove every permission set on the VM itself
//	snapshot NAME SNAP      take a snapshot (waits)
//	remove-snapshot NAME SNAP   start removing a snapshot, print the task id (no wait)
//	power NAME on|off       power on/off (waits)
//	host NAME               key=value: connection, maintenance
//	datastore NAME          key=value: hosts (mounting hosts, sorted), free,
//	                        capacity, accessible, url (summary.url: for the
//	                        simulator, the directory holding the files)
//	tasks NAME              one line per recent task on the VM: descriptionId state
//	hw NAME                 the VM's hardware, one line each: "vm firmware= guest=
//	                        cpus= memory=MB boot=KEY,...", "disk KEY file= ctl=TYPE
//	                        unit= capacity=BYTES", "nic KEY type= mac= addressType=
//	                        network="
package main

import (
	"bufio"
	"context"
	"fmt"
	"net/url"
	"os"
	"sort"
	"strings"
	"time"

	"flag"

	"github.com/vmware/govmomi"
	"github.com/vmware/govmomi/find"
	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/property"
	"github.com/vmware/govmomi/session"
	"github.com/vmware/govmomi/vim25"
	"github.com/vmware/govmomi/vim25/methods"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"
)

func die(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "vcsim-check: "+format+"\n", args...)
	os.Exit(1)
}

func readCreds(path string) (string, string) {
	f, err := os.Open(path)
	if err != nil {
		die("%v", err)
	}
	defer f.Close()
	var u, p string
	s := bufio.NewScanner(f)
	for s.Scan() {
		line := strings.TrimSpace(s.Text())
		if strings.HasPrefix(line, "user=") {
			u = strings.TrimPrefix(line, "user=")
		} else if strings.HasPrefix(line, "password=") {
			p = strings.TrimPrefix(line, "password=")
		}
	}
	return u, p
}

// sourceHash is set at build time (-ldflags -X main.sourceHash=...), see
// tests/vcsim/source-hash.
var sourceHash = "unknown"

func main() {
	printHash := flag.Bool("source-hash", false, "print the hash of the sources this binary was built from and exit")
	rawURL := flag.String("url", "", "SDK URL")
	caFile := flag.String("ca-file", "", "CA PEM")
	creds := flag.String("credentials", "", "credentials file")
	flag.Parse()
	if *printHash {
		fmt.Println(sourceHash)
		return
	}
	args := flag.Args()
	if *rawURL == "" || len(args) < 1 {
		die("usage: vcsim-check -url URL -ca-file CA -credentials FILE CMD ARGS...")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	u, err := url.Parse(*rawURL)
	if err != nil {
		die("%v", err)
	}
	sc := soap.NewClient(u, false)
	if *caFile != "" {
		if err := sc.SetRootCAs(*caFile); err != nil {
			die("%v", err)
		}
	}
	vc, err := newClient(ctx, sc)
	if err != nil {
		die("connect: %v", err)
	}
	user, pass := readCreds(*creds)
	if err := vc.Login(ctx, url.UserPassword(user, pass)); err != nil {
		die("login: %v", err)
	}
	defer vc.Logout(context.Background())

	finder := find.NewFinder(vc.Client, false)
	dc, err := finder.DefaultDatacenter(ctx)
	if err != nil {
		die("%v", err)
	}
	finder.SetDatacenter(dc)
	pc := property.DefaultCollector(vc.Client)

	name := func(ref types.ManagedObjectReference) string {
		req := types.RetrieveProperties{SpecSet: []types.PropertyFilterSpec{{
			ObjectSet: []types.ObjectSpec{{Obj: ref}},
			PropSet:   []types.PropertySpec{{Type: ref.Type, PathSet: []string{"name"}}},
		}}}
		res, err := pc.RetrieveProperties(ctx, req)
		if err != nil || len(res.Returnval) == 0 || len(res.Returnval[0].PropSet) == 0 {
			return ref.Value
		}
		if n, ok := res.Returnval[0].PropSet[0].Val.(string); ok {
			return n
		}
		return ref.Value
	}
	vmByName := func(n string) *object.VirtualMachine {
		vm, err := finder.VirtualMachine(ctx, n)
		if err != nil {
			die("%v", err)
		}
		return vm
	}
	devices := func(n string) []types.BaseVirtualDevice {
		var m mo.VirtualMachine
		if err := pc.RetrieveOne(ctx, vmByName(n).Reference(), []string{"config.hardware.device"}, &m); err != nil {
			die("%v", err)
		}
		return m.Config.Hardware.Device
	}
	// The network a NIC's backing names ("" for other backings).
	nicNet := func(n *types.VirtualEthernetCard) string {
		switch b := n.Backing.(type) {
		case *types.VirtualEthernetCardNetworkBackingInfo:
			return b.DeviceName
		case *types.VirtualEthernetCardDistributedVirtualPortBackingInfo:
			return name(types.ManagedObjectReference{Type: "DistributedVirtualPortgroup", Value: b.Port.PortgroupKey})
		}
		return ""
	}
	wait := func(t *object.Task, err error) {
		if err != nil {
			die("%v", err)
		}
		if err := t.Wait(ctx); err != nil {
			die("%v", err)
		}
	}

	switch args[0] {
	case "vm":
		need(args, 2)
		vm := vmByName(args[1])
		var m mo.VirtualMachine
		if err := pc.RetrieveOne(ctx, vm.Reference(), []string{"name", "runtime", "resourcePool",
			"datastore", "config.hardware.device", "config.files", "snapshot"}, &m); err != nil {
			die("%v", err)
		}
		fmt.Printf("moref=%s\n", vm.Reference().Value)
		fmt.Printf("host=%s\n", name(*m.Runtime.Host))
		if m.ResourcePool != nil {
			fmt.Printf("pool=%s\n", m.ResourcePool.Value)
		}
		fmt.Printf("power=%s\n", m.Runtime.PowerState)
		var ds []string
		for _, r := range m.Datastore {
			ds = append(ds, name(r))
		}
		sort.Strings(ds)
		fmt.Printf("datastores=%s\n", strings.Join(ds, ","))
		fmt.Printf("path=%s\n", m.Config.Files.VmPathName)
		for _, d := range m.Config.Hardware.Device {
			switch x := d.(type) {
			case types.BaseVirtualEthernetCard:
				n := x.GetVirtualEthernetCard()
				if net := nicNet(n); net != "" {
					fmt.Printf("nic.%d=%s\n", n.Key, net)
				}
			case *types.VirtualDisk:
				if b, ok := x.Backing.(types.BaseVirtualDeviceFileBackingInfo); ok {
					var p object.DatastorePath
					p.FromString(b.GetVirtualDeviceFileBackingInfo().FileName)
					fmt.Printf("disk.%d=%s\n", x.Key, p.Datastore)
				}
			}
		}
		n := 0
		if m.Snapshot != nil {
			var count func([]types.VirtualMachineSnapshotTree)
			count = func(l []types.VirtualMachineSnapshotTree) {
				for _, s := range l {
					n++
					count(s.ChildSnapshotList)
				}
			}
			count(m.Snapshot.RootSnapshotList)
		}
		fmt.Printf("snapshots=%d\n", n)
		cn := m.Runtime.ConsolidationNeeded != nil && *m.Runtime.ConsolidationNeeded
		fmt.Printf("consolidation=%v\n", cn)
	case "nics":
		need(args, 2)
		for _, d := range devices(args[1]) {
			if x, ok := d.(types.BaseVirtualEthernetCard); ok {
				n := x.GetVirtualEthernetCard()
				label := ""
				if n.DeviceInfo != nil {
					label = n.DeviceInfo.GetDescription().Label
				}
				fmt.Printf("%d\t%s\t%s\t%s\n", n.Key, label, n.MacAddress, nicNet(n))
			}
		}
	case "add-nic":
		// add-nic VM NETWORK: a second (third...) vmxnet3 adapter on NETWORK
		need(args, 3)
		vm := vmByName(args[1])
		net, err := finder.Network(ctx, args[2])
		if err != nil {
			die("%v", err)
		}
		backing, err := net.EthernetCardBackingInfo(ctx)
		if err != nil {
			die("%v", err)
		}
		dev, err := object.EthernetCardTypes().CreateEthernetCard("vmxnet3", backing)
		if err != nil {
			die("%v", err)
		}
		if err := vm.AddDevice(ctx, dev); err != nil {
			die("%v", err)
		}
	case "disks":
		need(args, 2)
		for _, d := range devices(args[1]) {
			if x, ok := d.(*types.VirtualDisk); ok {
				if b, ok := x.Backing.(types.BaseVirtualDeviceFileBackingInfo); ok {
					fmt.Printf("%d\t%s\n", x.Key, b.GetVirtualDeviceFileBackingInfo().FileName)
				}
			}
		}
	case "hw":
		need(args, 2)
		var m mo.VirtualMachine
		if err := pc.RetrieveOne(ctx, vmByName(args[1]).Reference(), []string{"config"}, &m); err != nil {
			die("%v", err)
		}
		var boot []string
		if m.Config.BootOptions != nil {
			for _, b := range m.Config.BootOptions.BootOrder {
				if d, ok := b.(*types.VirtualMachineBootOptionsBootableDiskDevice); ok {
					boot = append(boot, fmt.Sprint(d.DeviceKey))
				}
			}
		}
		fmt.Printf("vm firmware=%s guest=%s cpus=%d memory=%d boot=%s\n", m.Config.Firmware,
			m.Config.GuestId, m.Config.Hardware.NumCPU, m.Config.Hardware.MemoryMB, strings.Join(boot, ","))
		devs := object.VirtualDeviceList(m.Config.Hardware.Device)
		for _, d := range devs {
			switch x := d.(type) {
			case *types.VirtualDisk:
				file := ""
				if b, ok := x.Backing.(types.BaseVirtualDeviceFileBackingInfo); ok {
					file = b.GetVirtualDeviceFileBackingInfo().FileName
				}
				ctl := "none"
				if c := devs.FindByKey(x.ControllerKey); c != nil {
					ctl = fmt.Sprintf("%T", c)[len("*types."):]
				}
				unit := int32(-1)
				if x.UnitNumber != nil {
					unit = *x.UnitNumber
				}
				capacity := x.CapacityInBytes
				if capacity == 0 {
					capacity = x.CapacityInKB * 1024
				}
				fmt.Printf("disk %d file=%s ctl=%s unit=%d capacity=%d\n", x.Key, file, ctl, unit, capacity)
			case types.BaseVirtualEthernetCard:
				n := x.GetVirtualEthernetCard()
				fmt.Printf("nic %d type=%s mac=%s addressType=%s network=%s\n", n.Key,
					fmt.Sprintf("%T", d)[len("*types."):], n.MacAddress, n.AddressType, nicNet(n))
			}
		}
	case "perms":
		need(args, 2)
		vm := vmByName(args[1])
		am := object.NewAuthorizationManager(vc.Client)
		perms, err := am.RetrieveEntityPermissions(ctx, vm.Reference(), false)
		if err != nil {
			die("%v", err)
		}
		roles, err := am.RoleList(ctx)
		if err != nil {
			die("%v", err)
		}
		for _, p := range perms {
			r := roles.ById(p.RoleId)
			rn := fmt.Sprint(p.RoleId)
			if r != nil {
				rn = r.Name
			}
			fmt.Printf("%s %s %v %v\n", p.Principal, rn, p.Propagate, p.Group)
		}
	case "set-perms":
		need(args, 5)
		vm := vmByName(args[1])
		am := object.NewAuthorizationManager(vc.Client)
		roles, err := am.RoleList(ctx)
		if err != nil {
			die("%v", err)
		}
		r := roles.ByName(args[3])
		if r == nil {
			die("no role %s", args[3])
		}
		perms, _ := am.RetrieveEntityPermissions(ctx, vm.Reference(), false)
		var out []types.Permission
		for _, p := range perms {
			if p.Principal != args[2] {
				out = append(out, p)
			}
		}
		out = append(out, types.Permission{Principal: args[2], RoleId: r.RoleId, Propagate: args[4] == "true"})
		if err := am.SetEntityPermissions(ctx, vm.Reference(), out); err != nil {
			die("%v", err)
		}
	case "clear-perms":
		need(args, 2)
		vm := vmByName(args[1])
		am := object.NewAuthorizationManager(vc.Client)
		perms, _ := am.RetrieveEntityPermissions(ctx, vm.Reference(), false)
		for _, p := range perms {
			if err := am.RemoveEntityPermission(ctx, vm.Reference(), p.Principal, p.Group); err != nil {
				die("%v", err)
			}
		}
	case "snapshot":
		need(args, 3)
		wait(vmByName(args[1]).CreateSnapshot(ctx, args[2], "vcsim-check", false, false))
	case "remove-snapshot":
		need(args, 3)
		vm := vmByName(args[1])
		ref, err := vm.FindSnapshot(ctx, args[2])
		if err != nil {
			die("%v", err)
		}
		consolidate := true
		req := types.RemoveSnapshot_Task{This: *ref, RemoveChildren: false, Consolidate: &consolidate}
		t, err := removeSnapshot(ctx, vc, &req)
		if err != nil {
			die("%v", err)
		}
		fmt.Println(t.Value)
	case "power":
		need(args, 3)
		vm := vmByName(args[1])
		if args[2] == "on" {
			wait(vm.PowerOn(ctx))
		} else {
			wait(vm.PowerOff(ctx))
		}
	case "guest":
		need(args, 2)
		vm := vmByName(args[1])
		var m mo.VirtualMachine
		if err := pc.RetrieveOne(ctx, vm.Reference(), []string{"guest"}, &m); err != nil {
			die("%v", err)
		}
		if m.Guest != nil {
			fmt.Printf("ip=%s\nhostname=%s\n", m.Guest.IpAddress, m.Guest.HostName)
		}
	case "host":
		need(args, 2)
		h, err := finder.HostSystem(ctx, args[1])
		if err != nil {
			die("%v", err)
		}
		var m mo.HostSystem
		if err := pc.RetrieveOne(ctx, h.Reference(), []string{"runtime"}, &m); err != nil {
			die("%v", err)
		}
		fmt.Printf("connection=%s\nmaintenance=%v\n", m.Runtime.ConnectionState, m.Runtime.InMaintenanceMode)
	case "datastore":
		need(args, 2)
		d, err := finder.Datastore(ctx, args[1])
		if err != nil {
			die("%v", err)
		}
		var m mo.Datastore
		if err := pc.RetrieveOne(ctx, d.Reference(), []string{"host", "summary"}, &m); err != nil {
			die("%v", err)
		}
		var hosts []string
		for _, h := range m.Host {
			hosts = append(hosts, name(h.Key))
		}
		sort.Strings(hosts)
		fmt.Printf("hosts=%s\nfree=%d\ncapacity=%d\naccessible=%v\nurl=%s\n",
			strings.Join(hosts, ","), m.Summary.FreeSpace, m.Summary.Capacity, m.Summary.Accessible,
			m.Summary.Url)
	case "tasks":
		need(args, 2)
		vm := vmByName(args[1])
		var tm mo.TaskManager
		if err := pc.RetrieveOne(ctx, *vc.ServiceContent.TaskManager, []string{"recentTask"}, &tm); err != nil {
			die("%v", err)
		}
		for _, ref := range tm.RecentTask {
			var t mo.Task
			if err := pc.RetrieveOne(ctx, ref, []string{"info"}, &t); err != nil {
				continue
			}
			if t.Info.Entity != nil && *t.Info.Entity == vm.Reference() {
				fmt.Printf("%s %s\n", t.Info.DescriptionId, t.Info.State)
			}
		}
	default:
		die("unknown command %s", args[0])
	}
}

func newClient(ctx context.Context, sc *soap.Client) (*govmomi.Client, error) {
	vc, err := vim25.NewClient(ctx, sc)
	if err != nil {
		return nil, err
	}
	return &govmomi.Client{Client: vc, SessionManager: session.NewManager(vc)}, nil
}

func removeSnapshot(ctx context.Context, c *govmomi.Client, req *types.RemoveSnapshot_Task) (types.ManagedObjectReference, error) {
	res, err := methods.RemoveSnapshot_Task(ctx, c.Client, req)
	if err != nil {
		return types.ManagedObjectReference{}, err
	}
	return res.Returnval, nil
}

func need(args []string, n int) {
	if len(args) < n {
		die("%s: missing arguments", args[0])
	}
}
