// Clone placement: vcsim 0.24.2's CloneVM_Task creates the clone on the source's host whatever
// the spec's location.host says (simulator/virtual_machine.go passes vm.Runtime.Host to
// CreateVM); a real vCenter puts it on the host named. The /sdk handler notes the host each
// CloneVM_Task request names (by the clone's name), and the clone task, once the VM exists, moves
// it there as RelocateVM_Task does (runtime.host, summary.runtime.host, the hosts' vm lists).
// `/_control/clone-host?honor=0` turns this off (vcsim's own behaviour), so the product's path for
// a clone that lands elsewhere (it relocates, then reads runtime.host back) stays testable.
package main

import (
	"bytes"
	"encoding/xml"
	"sync"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/types"
)

type cloneRequest struct {
	Name string `xml:"Body>CloneVM_Task>name"`
	Host *struct {
		Type  string `xml:"type,attr"`
		Value string `xml:",chardata"`
	} `xml:"Body>CloneVM_Task>spec>location>host"`
}

type clonePlacement struct {
	mu      sync.Mutex
	honored bool
	hosts   map[string]types.ManagedObjectReference // clone name -> host the request named
}

var clonePlacements = &clonePlacement{honored: true, hosts: map[string]types.ManagedObjectReference{}}

// noteRequest records (or forgets) the host a CloneVM_Task request body names for its clone.
func (c *clonePlacement) noteRequest(body []byte) {
	if !bytes.Contains(body, []byte("<CloneVM_Task")) {
		return
	}
	var req cloneRequest
	if err := xml.Unmarshal(body, &req); err != nil || req.Name == "" {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if req.Host == nil || req.Host.Value == "" {
		delete(c.hosts, req.Name)
		return
	}
	c.hosts[req.Name] = types.ManagedObjectReference{Type: "HostSystem", Value: req.Host.Value}
}

func (c *clonePlacement) setHonored(on bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.honored = on
}

// take: the host named for the clone called `name`, if any and if honoured.
func (c *clonePlacement) take(name string) (types.ManagedObjectReference, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	ref, ok := c.hosts[name]
	delete(c.hosts, name)
	return ref, ok && c.honored
}

// placeClone wraps a clone task: after vcsim's clone, the new VM goes to the host its request named.
func placeClone(t *simulator.Task) {
	orig := t.Execute
	t.Execute = func(task *simulator.Task) (types.AnyType, types.BaseMethodFault) {
		res, fault := orig(task)
		if fault != nil {
			return res, fault
		}
		ref, ok := res.(types.ManagedObjectReference)
		if !ok {
			return res, fault
		}
		vm, ok := simulator.Map.Get(ref).(*simulator.VirtualMachine)
		if !ok {
			return res, fault
		}
		want, ok := clonePlacements.take(vm.Name)
		if !ok || vm.Runtime.Host == nil || *vm.Runtime.Host == want {
			return res, fault
		}
		host, ok := simulator.Map.Get(want).(*simulator.HostSystem)
		if !ok {
			return res, fault
		}
		if old, ok := simulator.Map.Get(*vm.Runtime.Host).(*simulator.HostSystem); ok {
			simulator.Map.RemoveReference(old, &old.Vm, vm.Self)
		}
		simulator.Map.AppendReference(host, &host.Vm, vm.Self)
		simulator.Map.Update(vm, []types.PropertyChange{
			{Name: "runtime.host", Val: want},
			{Name: "summary.runtime.host", Val: want},
		})
		return res, fault
	}
}
