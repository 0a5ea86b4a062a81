// Console methods vcsim 0.24.2 lacks (MethodNotFound), implemented as the vSphere API documents
// them so the pyvmomi driver's console code runs unchanged against the simulator:
//   VirtualMachine.AcquireTicket(ticketType) -> VirtualMachineTicket {ticket, cfgFile, host, port, sslThumbprint}
//   VirtualMachine.CreateScreenshot_Task()   -> a task whose result is the datastore path of a PNG
//                                               written into the VM's folder ("[LocalDS_0] vm/vm-1.png")
// vcsim dispatches a call to the Go object registered under `_this`; simulator.VirtualMachine cannot
// be given new methods, and wrapping it breaks vcsim's own type assertions. So the /sdk handler
// re-addresses just these two calls to a companion object (type VmConsole, same moid); session
// checks, method delays, task handling and SOAP encoding stay vcsim's own.
package main

import (
	"bytes"
	"crypto/rand"
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io/ioutil"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"sync"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/methods"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"
)

var consoleCall = regexp.MustCompile(`<(AcquireTicket|CreateScreenshot_Task)\b`)
var vmThis = regexp.MustCompile(`<_this([^>]*) type="VirtualMachine">([^<]+)</_this>`)

type vmConsole struct {
	Self types.ManagedObjectReference
	mu   sync.Mutex
	shot int
}

func (c *vmConsole) Reference() types.ManagedObjectReference { return c.Self }

// thumbprint is the SHA-1 of the certificate a console client would pin: the server's own when
// it serves TLS; vcsim's hosts have none over plain http, so a per-process random one stands in.
var thumbprint string

func formatThumbprint(sum []byte) string {
	parts := make([]string, len(sum))
	for i, b := range sum {
		parts[i] = fmt.Sprintf("%02X", b)
	}
	return strings.Join(parts, ":")
}

func setThumbprint(cert []byte) {
	if len(cert) == 0 {
		cert = make([]byte, 32)
		_, _ = rand.Read(cert)
	}
	sum := sha1.Sum(cert)
	thumbprint = formatThumbprint(sum[:])
}

// consoleHandler wraps vcsim's handler: AcquireTicket and CreateScreenshot_Task on an existing VM
// go to its VmConsole companion; every other request is untouched.
func consoleHandler(inner http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || !strings.HasSuffix(r.URL.Path, "/sdk") {
			inner.ServeHTTP(w, r)
			return
		}
		body, err := ioutil.ReadAll(r.Body)
		_ = r.Body.Close()
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if consoleCall.Match(body) {
			if m := vmThis.FindSubmatch(body); m != nil {
				vmRef := types.ManagedObjectReference{Type: "VirtualMachine", Value: string(m[2])}
				// An unknown VM is left to vcsim, which answers ManagedObjectNotFound.
				if simulator.Map.Get(vmRef) != nil {
					ref := types.ManagedObjectReference{Type: "VmConsole", Value: vmRef.Value}
					if simulator.Map.Get(ref) == nil {
						simulator.Map.Put(&vmConsole{Self: ref})
					}
					body = vmThis.ReplaceAll(body, []byte(`<_this${1} type="VmConsole">${2}</_this>`))
				}
			}
		}
		r.Body = ioutil.NopCloser(bytes.NewReader(body))
		r.ContentLength = int64(len(body))
		inner.ServeHTTP(w, r)
	})
}

func (c *vmConsole) vm() *simulator.VirtualMachine {
	vm, _ := simulator.Map.Get(types.ManagedObjectReference{Type: "VirtualMachine", Value: c.Self.Value}).(*simulator.VirtualMachine)
	return vm
}

func notOn(vm *simulator.VirtualMachine) types.BaseMethodFault {
	if vm.Runtime.PowerState == types.VirtualMachinePowerStatePoweredOn {
		return nil
	}
	return &types.InvalidPowerState{
		RequestedState: types.VirtualMachinePowerStatePoweredOn,
		ExistingState:  vm.Runtime.PowerState,
	}
}

func (c *vmConsole) AcquireTicket(ctx *simulator.Context, req *types.AcquireTicket) soap.HasFault {
	body := &methods.AcquireTicketBody{}
	vm := c.vm()
	if vm == nil {
		body.Fault_ = simulator.Fault("", &types.ManagedObjectNotFound{Obj: c.Self})
		return body
	}
	switch req.TicketType {
	case "mks", "webmks", "device", "guestControl", "guestIntegrity", "webRemoteDevice":
	default:
		body.Fault_ = simulator.Fault("", &types.InvalidArgument{InvalidProperty: "ticketType"})
		return body
	}
	var fault types.BaseMethodFault
	ticket := types.VirtualMachineTicket{}
	simulator.Map.WithLock(vm, func() {
		if fault = notOn(vm); fault != nil {
			return
		}
		secret := make([]byte, 16)
		_, _ = rand.Read(secret)
		host := ""
		if vm.Runtime.Host != nil {
			if h, ok := simulator.Map.Get(*vm.Runtime.Host).(*simulator.HostSystem); ok {
				host = h.Name
			}
		}
		ticket = types.VirtualMachineTicket{
			Ticket:        hex.EncodeToString(secret),
			CfgFile:       vm.Config.Files.VmPathName,
			Host:          host,
			Port:          443,
			SslThumbprint: thumbprint,
		}
	})
	if fault != nil {
		body.Fault_ = simulator.Fault("", fault)
		return body
	}
	body.Res = &types.AcquireTicketResponse{Returnval: ticket}
	return body
}

func (c *vmConsole) CreateScreenshotTask(ctx *simulator.Context, req *types.CreateScreenshot_Task) soap.HasFault {
	body := &methods.CreateScreenshot_TaskBody{}
	vm := c.vm()
	if vm == nil {
		body.Fault_ = simulator.Fault("", &types.ManagedObjectNotFound{Obj: c.Self})
		return body
	}
	task := simulator.CreateTask(vm, "createScreenshot", func(*simulator.Task) (types.AnyType, types.BaseMethodFault) {
		var result string
		var fault types.BaseMethodFault
		simulator.Map.WithLock(vm, func() {
			if fault = notOn(vm); fault != nil {
				return
			}
			c.mu.Lock()
			c.shot++
			n := c.shot
			c.mu.Unlock()
			result, fault = writeScreenshot(vm, n)
		})
		if fault != nil {
			return nil, fault
		}
		return result, nil
	})
	body.Res = &types.CreateScreenshot_TaskResponse{Returnval: task.Run()}
	return body
}

// writeScreenshot draws a PNG of the VM and stores it beside its .vmx, as vCenter does.
func writeScreenshot(vm *simulator.VirtualMachine, n int) (string, types.BaseMethodFault) {
	var p object
	if !p.parse(vm.Config.Files.VmPathName) {
		return "", &types.FileFault{File: vm.Config.Files.VmPathName}
	}
	var dir string
	for _, ref := range vm.Datastore {
		if ds, ok := simulator.Map.Get(ref).(*simulator.Datastore); ok && ds.Name == p.datastore {
			dir = ds.Info.GetDatastoreInfo().Url
		}
	}
	if dir == "" {
		return "", &types.FileNotFound{FileFault: types.FileFault{File: p.datastore}}
	}
	name := path.Join(path.Dir(p.path), fmt.Sprintf("%s-%d.png", vm.Name, n))
	local := filepath.Join(dir, filepath.FromSlash(name))
	if err := os.MkdirAll(filepath.Dir(local), 0o755); err != nil {
		return "", &types.CannotCreateFile{FileFault: types.FileFault{File: name}}
	}
	f, err := os.Create(local)
	if err != nil {
		return "", &types.CannotCreateFile{FileFault: types.FileFault{File: name}}
	}
	defer f.Close()
	if err := png.Encode(f, screen(vm.Name)); err != nil {
		return "", &types.CannotCreateFile{FileFault: types.FileFault{File: name}}
	}
	return fmt.Sprintf("[%s] %s", p.datastore, name), nil
}

type object struct{ datastore, path string }

func (o *object) parse(s string) bool {
	if !strings.HasPrefix(s, "[") || !strings.Contains(s, "] ") {
		return false
	}
	i := strings.Index(s, "] ")
	o.datastore, o.path = s[1:i], s[i+2:]
	return true
}

// screen: a console-like picture (a title bar, text-like rows seeded by the VM's name).
func screen(name string) image.Image {
	const w, h = 640, 400
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	seed := sha1.Sum([]byte(name))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			c := color.RGBA{16, 20, 28, 255}
			if y < 24 {
				c = color.RGBA{40, 90, 160, 255}
			} else if row := (y - 32) / 14; y >= 32 && (y-32)%14 < 9 && row < 24 {
				if x >= 12 && x < 12+int(seed[row%len(seed)])*2 {
					c = color.RGBA{200, 210, 220, 255}
				}
			}
			img.Set(x, y, c)
		}
	}
	return img
}
