package scheduler

import (
	"fmt"
	"testing"
)

// fleet10k is 10,000 idle machines in 500 racks of 20. Each has 128 cores
// and 1 TiB; machine k of rack r has 8 GPUs and AMX when gpu(r, k); every
// rack has the networks "prod" and "db" and reaches the appliance "sa1".
func fleet10k(gpu func(r, k int) bool) []Machine {
	const racks, perRack = 500, 20
	ms := make([]Machine, 0, racks*perRack)
	for r := range racks {
		for k := range perRack {
			m := Machine{
				ID: machineID(fmt.Sprintf("bm-%03d-%02d", r, k)), Rack: rackID(fmt.Sprintf("rack-%03d", r)), Ready: true,
				Cores: 128, MemoryMiB: 1 << 20,
				Features:   []string{"avx512f", "sha_ni"},
				Networks:   []string{netID("prod"), netID("db")},
				Appliances: []string{applID("sa1")},
			}
			if gpu(r, k) {
				m.Features, m.GPUs = append(m.Features, "amx_tile", "gpu"), 8
			}
			ms = append(ms, m)
		}
	}
	return ms
}

// BenchmarkPlace measures one Place and its Commit on fleet10k, with rack
// spreading. The snapshot is rebuilt, off the clock, when the VM names run
// out or the fleet is full.
//
//   - spread: a 4-core 16 GiB VM, no hints;
//   - hints: the same on two networks and an appliance, with Hard
//     anti-affinity to the previous VM's machine and Soft anti-affinity to
//     the rack of the one before;
//   - gpu: a VM that needs a GPU and AMX, which the first machine of each
//     rack has: the worst case, where most machines of every rack must be
//     looked at;
//   - gpu-racks: the same VM, when every machine of one rack in 20 has them.
func BenchmarkPlace(b *testing.B) {
	firstOfRack := fleet10k(func(_, k int) bool { return k == 0 })
	gpuRacks := fleet10k(func(r, _ int) bool { return r%20 == 0 })
	vms := make([]string, 100_000)
	for k := range vms {
		vms[k] = vmID(fmt.Sprintf("vm-%06d", k))
	}
	nets, appl := []string{netID("prod"), netID("db")}, applID("sa1")
	gpu := func(n int) Request {
		return Request{VM: vms[n], Cores: 8, MemoryMiB: 64 << 10, GPUs: 1, Features: []string{"gpu", "amx_tile"}}
	}
	tests := []struct {
		name  string
		fleet []Machine
		req   func(n int) Request
	}{
		{"spread", firstOfRack, func(n int) Request { return Request{VM: vms[n], Cores: 4, MemoryMiB: 16 << 10} }},
		{"hints", firstOfRack, func(n int) Request {
			req := Request{VM: vms[n], Cores: 4, MemoryMiB: 16 << 10, Networks: nets, Appliance: appl}
			if n >= 2 {
				req.Hints = []Hint{
					{Type: AntiAffinity, Execution: Hard, Scope: MachineScope, Target: vms[n-1]},
					{Type: AntiAffinity, Execution: Soft, Scope: RackScope, Target: vms[n-2]},
				}
			}
			return req
		}},
		{"gpu", firstOfRack, gpu},
		{"gpu-racks", gpuRacks, gpu},
	}
	for _, tc := range tests {
		b.Run(tc.name, func(b *testing.B) {
			s := snapshot(b, tc.fleet)
			n, placed := 0, 0
			for b.Loop() {
				if n == len(vms) {
					b.StopTimer()
					s, n = snapshot(b, tc.fleet), 0
					b.StartTimer()
				}
				req := tc.req(n)
				id, err := s.Place(req)
				if err != nil {
					b.StopTimer()
					s, n = snapshot(b, tc.fleet), 0
					b.StartTimer()
					continue
				}
				if err := s.Commit(id, req); err != nil {
					b.Fatal(err)
				}
				n++
				placed++
			}
			b.ReportMetric(float64(placed)/b.Elapsed().Seconds(), "placements/s")
		})
	}
}

// BenchmarkNewSnapshot indexes fleet10k (idle), and a site of 3 racks of
// 16 machines running 1,000 VMs (the VM create benchmark's, which the
// Microsoft.NetworkCloud provider indexes for every placement).
func BenchmarkNewSnapshot(b *testing.B) {
	site := make([]Machine, 0, 48)
	for k := range 48 {
		m := Machine{ID: machineID(fmt.Sprintf("bvr%dm%d", k/16+1, k%16+1)), Rack: rackID(fmt.Sprintf("bvr%d", k/16+1)), Ready: true,
			Cores: 60, MemoryMiB: 250 << 10}
		for j := k; j < 1000; j += 48 {
			m.VMs = append(m.VMs, vmID(fmt.Sprintf("b1vm%04d", j)))
			m.UsedCores, m.UsedMemoryMiB = m.UsedCores+2, m.UsedMemoryMiB+2048
		}
		site = append(site, m)
	}
	for name, ms := range map[string][]Machine{
		"fleet10k": fleet10k(func(_, k int) bool { return k == 0 }),
		"1000vms":  site,
	} {
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				if _, err := NewSnapshot(ms); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
