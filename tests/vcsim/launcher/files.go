package main

// Datastore files as a real ESXi host or vCenter keeps and serves them,
// where the simulator is more lenient or does less:
//
//   - /folder (the datastore HTTP file access): the simulator serves and
//     stores files without a session, takes a missing dsName for "the
//     default datastore" and joins ".." into the path. A real server
//     answers 401 without a valid session cookie, 404 for a datastore it
//     does not know, and never leaves the datastore.
//   - virtual disks: the simulator creates a disk (fileOperation create,
//     and the model's own VMs) as two empty files; a real host writes a
//     descriptor and a flat extent of the disk's capacity. fixDiskFiles
//     writes both for every disk whose descriptor is empty (the bytes of
//     the extent are zero, a sparse file).
//   - CreateVM_Task attaching an existing disk (no fileOperation): the
//     simulator only checks that a file exists; a real host opens the
//     descriptor and its extent: a missing descriptor is FileNotFound, a
//     descriptor that is not one, or whose extent is missing or shorter
//     than it says, is InvalidDeviceSpec.

import (
	"bufio"
	"fmt"
	"log"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/types"
)

func serveFolder(w http.ResponseWriter, r *http.Request) {
	if !authenticated(r) {
		w.Header().Set("WWW-Authenticate", `Basic realm="VMware HTTP server"`)
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	q := r.URL.Query()
	if q.Get("dsName") == "" || findDatastoreByName(nil, q.Get("dsName")) == nil {
		w.WriteHeader(http.StatusNotFound)
		return
	}
	rel := strings.TrimPrefix(r.URL.Path, "/folder/")
	for _, part := range strings.Split(rel, "/") {
		if part == ".." {
			w.WriteHeader(http.StatusNotFound)
			return
		}
	}
	svc.ServeDatastore(w, r)
}

type vmdkExtent struct {
	sectors int64
	file    string
}

// parseDescriptor reads a text VMDK descriptor: its createType and extents.
func parseDescriptor(p string) (string, []vmdkExtent, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", nil, err
	}
	defer f.Close()
	var kind string
	var ext []vmdkExtent
	s := bufio.NewScanner(f)
	for s.Scan() {
		l := strings.TrimSpace(s.Text())
		if strings.HasPrefix(l, "createType=") {
			kind = strings.Trim(strings.TrimPrefix(l, "createType="), `"`)
		}
		if strings.HasPrefix(l, "RW ") || strings.HasPrefix(l, "RDONLY ") {
			var mode, typ, name string
			var n int64
			if c, _ := fmt.Sscanf(l, "%s %d %s %q", &mode, &n, &typ, &name); c != 4 {
				return kind, nil, fmt.Errorf("bad extent line %q", l)
			}
			ext = append(ext, vmdkExtent{n, name})
		}
	}
	if kind == "" || len(ext) == 0 {
		return kind, nil, fmt.Errorf("not a disk descriptor")
	}
	return kind, ext, nil
}

// checkAttachedDisks: the faults a real host gives a CreateVM_Task whose
// disks name existing files it cannot open.
func checkAttachedDisks(req *types.CreateVM_Task) types.BaseMethodFault {
	for i, change := range req.Config.DeviceChange {
		spec := change.GetVirtualDeviceConfigSpec()
		disk, ok := spec.Device.(*types.VirtualDisk)
		if !ok || spec.FileOperation != "" {
			continue
		}
		b, ok := disk.Backing.(*types.VirtualDiskFlatVer2BackingInfo)
		if !ok {
			continue
		}
		name, rel := dsName(b.FileName)
		ds := findDatastoreByName(nil, name)
		if ds == nil {
			return &types.InvalidDatastore{Name: name}
		}
		desc := filepath.Join(dsURL(ds), rel)
		if _, err := os.Stat(desc); err != nil {
			return &types.FileNotFound{FileFault: types.FileFault{File: b.FileName}}
		}
		_, ext, err := parseDescriptor(desc)
		if err != nil {
			log.Printf("CreateVM_Task: disk %s: %v", b.FileName, err)
			return &types.InvalidDeviceSpec{InvalidVmConfig: types.InvalidVmConfig{Property: "deviceChange"}, DeviceIndex: int32(i)}
		}
		for _, e := range ext {
			st, err := os.Stat(filepath.Join(path.Dir(desc), e.file))
			if err != nil || st.Size() < e.sectors*512 {
				log.Printf("CreateVM_Task: disk %s: extent %s missing or short", b.FileName, e.file)
				return &types.InvalidDeviceSpec{InvalidVmConfig: types.InvalidVmConfig{Property: "deviceChange"}, DeviceIndex: int32(i)}
			}
		}
	}
	return nil
}

// fixDiskFiles gives every flat disk whose descriptor is empty (made by
// the simulator) a descriptor and an extent of its capacity.
func fixDiskFiles() {
	for _, e := range simulator.Map.All("VirtualMachine") {
		vm := e.(*simulator.VirtualMachine)
		var disks []*types.VirtualDisk
		simulator.Map.WithLock(vm, func() {
			if vm.Config == nil {
				return
			}
			for _, d := range vm.Config.Hardware.Device {
				if x, ok := d.(*types.VirtualDisk); ok {
					disks = append(disks, x)
				}
			}
		})
		for _, d := range disks {
			b, ok := d.Backing.(*types.VirtualDiskFlatVer2BackingInfo)
			if !ok {
				continue
			}
			name, rel := dsName(b.FileName)
			ds := findDatastoreByName(nil, name)
			if ds == nil {
				continue
			}
			desc := filepath.Join(dsURL(ds), rel)
			st, err := os.Stat(desc)
			if err != nil || st.Size() != 0 {
				continue
			}
			capacity := d.CapacityInBytes
			if capacity == 0 {
				capacity = d.CapacityInKB * 1024
			}
			flat := strings.TrimSuffix(path.Base(rel), ".vmdk") + "-flat.vmdk"
			text := fmt.Sprintf("# Disk DescriptorFile\nversion=1\nencoding=\"UTF-8\"\nCID=fffffffe\n"+
				"parentCID=ffffffff\ncreateType=\"vmfs\"\n\n# Extent description\nRW %d VMFS \"%s\"\n\n"+
				"# The Disk Data Base\n#DDB\n\nddb.adapterType = \"lsilogic\"\n", capacity/512, flat)
			if err := os.WriteFile(desc, []byte(text), 0600); err != nil {
				log.Printf("disk files: %v", err)
				continue
			}
			if err := os.Truncate(filepath.Join(path.Dir(desc), flat), capacity); err != nil {
				log.Printf("disk files: %v", err)
			}
		}
	}
}

// checkCreateVM: checkAttachedDisks for a CreateVM_Task (nil otherwise).
func checkCreateVM(name string, m *simulator.Method, r *http.Request) types.BaseMethodFault {
	if name != "CreateVM_Task" || m == nil || !authenticated(r) {
		return nil
	}
	if req, ok := m.Body.(*types.CreateVM_Task); ok {
		return checkAttachedDisks(req)
	}
	return nil
}
