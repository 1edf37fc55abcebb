// vcsim-launcher: the vSphere simulator (govmomi 0.24.2, Debian's
// golang-github-vmware-govmomi-dev) wrapped for vmshift's tests.
//
// It serves simulator.VPX() over HTTPS on loopback with a freshly generated
// private CA, puts a front handler before /sdk that implements the method
// overrides listed in README.md (asynchronous, cancellable tasks; relocation
// that validates its destination and applies deviceChange; visible snapshot
// removal and consolidation tasks) and the fault injection driven through a
// second, plain-HTTP loopback control port.
//
// stdout, once ready (nothing else is ever printed there):
//
//	https://127.0.0.1:PORT/sdk
//	http://127.0.0.1:CPORT
//
// The CA certificate goes to -ca-file, the user name and password to
// -credentials (mode 0600); they are never printed.
package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"flag"
	"fmt"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/vmware/govmomi/simulator"
	_ "github.com/vmware/govmomi/vapi/simulator"
	"github.com/vmware/govmomi/vim25/types"
)

var (
	flagListen      = flag.String("listen", "127.0.0.1:0", "SDK listen address (loopback)")
	flagControl     = flag.String("control", "127.0.0.1:0", "control channel listen address (loopback)")
	flagCAFile      = flag.String("ca-file", "", "write the CA certificate (PEM) here (required)")
	flagCredentials = flag.String("credentials", "", "write the credentials here, mode 0600 (required)")
	flagUser        = flag.String("user", "vmshift-test", "user name to accept")
	flagDatastores  = flag.Int("datastores", 3, "datastores (LocalDS_N), mounted on every host")
	flagVMs         = flag.Int("vms-per-pool", 2, "VMs per resource pool (2 pools: standalone host and cluster)")
	flagClusterHost = flag.Int("cluster-hosts", 3, "hosts in the cluster DC0_C0")
	flagStandalone  = flag.Int("standalone-hosts", 1, "standalone hosts")
	flagPortgroups  = flag.Int("portgroups", 2, "distributed port groups DC0_DVPGn")
	flagNSX         = flag.Int("nsx", 0, "NSX opaque networks DC0_NSXn (vCenter's OpaqueNetwork)")
	flagStepMs      = flag.Int("task-step-ms", 100, "duration of each 10% progress step of an overridden task")
	flagNoRest      = flag.Bool("no-rest", false, "do not serve the vSphere Automation REST API (/rest answers 404, as an ESXi host does)")
	flagTrace       = flag.Bool("trace", false, "dump SOAP traffic to stderr (contains the password of Login)")
	flagSourceHash  = flag.Bool("source-hash", false, "print the hash of the sources this binary was built from and exit")
)

// sourceHash is set at build time (-ldflags -X main.sourceHash=...) to the
// output of tests/vcsim/source-hash for this directory; the build and the
// tests compare it with the current sources.
var sourceHash = "unknown"

func writeFile(path string, data []byte, mode os.FileMode) {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, mode); err != nil {
		log.Fatalf("vcsim-launcher: %v", err)
	}
	if err := os.Chmod(tmp, mode); err != nil {
		log.Fatalf("vcsim-launcher: %v", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		log.Fatalf("vcsim-launcher: %v", err)
	}
}

// makeTLS creates a private CA and a server certificate for 127.0.0.1,
// ::1 and localhost signed by it; the CA goes to caPath.
func makeTLS(caPath string) *tls.Config {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		log.Fatal(err)
	}
	serial := func() *big.Int {
		n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
		return n
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "vmshift test CA (vcsim-launcher)"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(7 * 24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		log.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)

	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		log.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: "127.0.0.1"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(7 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("::1")},
		DNSNames:     []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
	if err != nil {
		log.Fatal(err)
	}
	writeFile(caPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), 0644)
	return &tls.Config{
		Certificates: []tls.Certificate{{
			Certificate: [][]byte{der, caDER},
			PrivateKey:  key,
		}},
		MinVersion: tls.VersionTLS12,
	}
}

func randomPassword() string {
	b := make([]byte, 18)
	if _, err := rand.Read(b); err != nil {
		log.Fatal(err)
	}
	return hex.EncodeToString(b)
}

func loopbackOnly(addr string) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		log.Fatalf("vcsim-launcher: bad address %q: %v", addr, err)
	}
	ip := net.ParseIP(host)
	if host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		log.Fatalf("vcsim-launcher: refusing to listen on non-loopback %q", addr)
	}
}

func main() {
	log.SetFlags(0)
	log.SetPrefix("vcsim-launcher: ")
	flag.Parse()
	if *flagSourceHash {
		fmt.Println(sourceHash)
		return
	}
	if *flagCAFile == "" || *flagCredentials == "" {
		log.Fatal("-ca-file and -credentials are required")
	}
	loopbackOnly(*flagListen)
	loopbackOnly(*flagControl)

	simulator.Trace = *flagTrace
	taskStep = time.Duration(*flagStepMs) * time.Millisecond

	model := simulator.VPX()
	model.Datastore = *flagDatastores
	model.Machine = *flagVMs
	model.ClusterHost = *flagClusterHost
	model.Host = *flagStandalone
	model.Portgroup = *flagPortgroups
	model.OpaqueNetwork = *flagNSX
	if err := model.Create(); err != nil {
		log.Fatalf("creating the model: %v", err)
	}
	defer model.Remove()
	fixDatastoreMounts()
	fixDiskFiles()

	password := randomPassword()
	user = *flagUser
	// The REST API (/rest: sessions, tagging) unless -no-rest.
	model.Service.RegisterEndpoints = !*flagNoRest
	// The simulator's own listener (kept on an ephemeral loopback port) is
	// not used by clients: our server below fronts its handlers.
	model.Service.Listen = &url.URL{Host: "127.0.0.1:0", User: url.UserPassword(user, password)}
	inner := model.Service.NewServer()
	svc = model.Service

	tlsConfig := makeTLS(*flagCAFile)
	ln, err := net.Listen("tcp", *flagListen)
	if err != nil {
		log.Fatalf("listen %s: %v", *flagListen, err)
	}
	cln, err := net.Listen("tcp", *flagControl)
	if err != nil {
		log.Fatalf("listen %s: %v", *flagControl, err)
	}
	inner.Close() // its handlers stay usable through svc.ServeMux

	writeFile(*flagCredentials,
		[]byte(fmt.Sprintf("# vcsim-launcher test credentials\nuser=%s\npassword=%s\n", user, password)),
		0600)

	mux := http.NewServeMux()
	mux.HandleFunc("/sdk", serveSDK)
	mux.HandleFunc("/rest/", serveREST)     // passes through; records client sessions (rest.go)
	mux.HandleFunc("/folder/", serveFolder) // session, datastore and path checks (files.go)
	mux.Handle("/", svc.ServeMux)
	server := &http.Server{
		Handler:   mux,
		TLSConfig: tlsConfig,
		ErrorLog:  log.New(os.Stderr, "vcsim-launcher: http: ", 0),
	}
	control := &http.Server{Handler: controlMux()}

	go func() {
		err := server.Serve(tls.NewListener(ln, tlsConfig))
		log.Fatalf("sdk server: %v", err)
	}()
	go func() {
		err := control.Serve(cln)
		log.Fatalf("control server: %v", err)
	}()

	fmt.Printf("https://%s/sdk\nhttp://%s\n", ln.Addr().String(), cln.Addr().String())
	os.Stdout.Sync()

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	<-sig
	// Exit from here: closing the listeners would make the Serve
	// goroutines exit first, skipping the clean-up.
	model.Remove()
	os.Exit(0)
}

// fixDatastoreMounts: the simulator records only the last host in each
// Datastore.host; a real vCenter lists every host that mounts it.
func fixDatastoreMounts() {
	for _, e := range simulator.Map.All("Datastore") {
		ds := e.(*simulator.Datastore)
		var mounts []types.DatastoreHostMount
		for _, h := range simulator.Map.All("HostSystem") {
			host := h.(*simulator.HostSystem)
			if hasRef(host.Datastore, ds.Self) {
				mounts = append(mounts, types.DatastoreHostMount{
					Key: host.Self,
					MountInfo: types.HostMountInfo{
						AccessMode: string(types.HostMountModeReadWrite),
						Mounted:    types.NewBool(true),
						Accessible: types.NewBool(true),
					},
				})
			}
		}
		ds.Host = mounts
	}
}
