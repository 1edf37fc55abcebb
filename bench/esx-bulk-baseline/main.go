// esx-bulk-baseline: the baseline of bench/esx-bulk. It does with govmomi
// (the same library the simulator is built from) what vmshift does in the
// bench: relocate every VM named on stdin ("VM HOST" lines) to that host
// (its compute resource's root pool) and one datastore, at most
// -concurrency at a time,
// waiting for each vSphere task (govmomi's Task.Wait: property collector
// WaitForUpdates). Prints "relocated N failed M".
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"net/url"
	"os"
	"strings"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vmware/govmomi"
	"github.com/vmware/govmomi/find"
	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/session"
	"github.com/vmware/govmomi/vim25"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"
)

// counter counts the HTTP requests (SOAP round trips) the client sends.
type counter struct {
	rt http.RoundTripper
	n  int64
}

func (c *counter) RoundTrip(r *http.Request) (*http.Response, error) {
	atomic.AddInt64(&c.n, 1)
	return c.rt.RoundTrip(r)
}

func die(f string, a ...interface{}) {
	fmt.Fprintf(os.Stderr, "esx-bulk-baseline: "+f+"\n", a...)
	os.Exit(1)
}

func main() {
	rawURL := flag.String("url", "", "SDK URL")
	caFile := flag.String("ca-file", "", "CA PEM")
	creds := flag.String("credentials", "", "user=/password= file")
	ds := flag.String("datastore", "", "destination datastore")
	conc := flag.Int("concurrency", 4, "relocations at once")
	flag.Parse()

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	var user, pass string
	data, err := os.ReadFile(*creds)
	if err != nil {
		die("%v", err)
	}
	for _, l := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(l, "user=") {
			user = strings.TrimPrefix(l, "user=")
		} else if strings.HasPrefix(l, "password=") {
			pass = strings.TrimPrefix(l, "password=")
		}
	}
	u, err := url.Parse(*rawURL)
	if err != nil {
		die("%v", err)
	}
	sc := soap.NewClient(u, false)
	if err := sc.SetRootCAs(*caFile); err != nil {
		die("%v", err)
	}
	rt := &counter{rt: sc.Client.Transport}
	sc.Client.Transport = rt
	vc, err := vim25.NewClient(ctx, sc)
	if err != nil {
		die("%v", err)
	}
	c := &govmomi.Client{Client: vc, SessionManager: session.NewManager(vc)}
	if err := c.Login(ctx, url.UserPassword(user, pass)); err != nil {
		die("login: %v", err)
	}

	finder := find.NewFinder(vc, false)
	dc, err := finder.DefaultDatacenter(ctx)
	if err != nil {
		die("%v", err)
	}
	finder.SetDatacenter(dc)
	d, err := finder.Datastore(ctx, *ds)
	if err != nil {
		die("%v", err)
	}
	dr := d.Reference()
	type dest struct{ host, pool types.ManagedObjectReference }
	dests := map[string]dest{}

	type item struct{ vm, host string }
	var items []item
	s := bufio.NewScanner(os.Stdin)
	for s.Scan() {
		f := strings.Fields(s.Text())
		if len(f) != 2 {
			continue
		}
		items = append(items, item{f[0], f[1]})
		if _, ok := dests[f[1]]; !ok {
			h, err := finder.HostSystem(ctx, f[1])
			if err != nil {
				die("%v", err)
			}
			pool, err := h.ResourcePool(ctx)
			if err != nil {
				die("%v", err)
			}
			dests[f[1]] = dest{h.Reference(), pool.Reference()}
		}
	}
	work := make(chan item)
	var mu sync.Mutex
	okN, failN := 0, 0
	var wg sync.WaitGroup
	for i := 0; i < *conc; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for it := range work {
				name := it.vm
				hr, pr := dests[it.host].host, dests[it.host].pool
				err := func() error {
					vm, err := finder.VirtualMachine(ctx, name)
					if err != nil {
						return err
					}
					t, err := vm.Relocate(ctx, types.VirtualMachineRelocateSpec{
						Host: &hr, Pool: &pr, Datastore: &dr,
					}, types.VirtualMachineMovePriorityDefaultPriority)
					if err != nil {
						return err
					}
					return t.Wait(ctx)
				}()
				mu.Lock()
				if err != nil {
					failN++
					fmt.Fprintf(os.Stderr, "%s: %v\n", name, err)
				} else {
					okN++
				}
				mu.Unlock()
			}
		}()
	}
	for _, it := range items {
		work <- it
	}
	close(work)
	wg.Wait()
	_ = object.NewCommon
	c.Logout(context.Background())
	fmt.Printf("relocated %d failed %d round-trips %d\n", okN, failN, atomic.LoadInt64(&rt.n))
	if failN > 0 {
		os.Exit(1)
	}
}
