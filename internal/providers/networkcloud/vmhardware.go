package networkcloud

import (
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/citadel-cloud/citadel/internal/agentapi"
	"github.com/citadel-cloud/citadel/internal/arm"
	"github.com/citadel-cloud/citadel/internal/resource"
)

// A VM asks for hardware beyond cores and memory with tags, which ARM
// clients send unchanged: the CPU features it needs (a machine's agent
// reports its CPU's flags: amx_tile for AMX, avx512f, ...) and how many
// GPUs it is given, passed through to it whole.
const (
	tagCPUFeatures = "citadel-cpu-features" // comma-separated CPU flags, "amx_tile,amx_bf16"
	tagGPUs        = "citadel-gpus"         // a count, "1"
	maxVMGPUs      = 8
)

var cpuFeaturePattern = regexp.MustCompile(`^[a-z0-9_]{1,32}$`)

// hardwareNeeds reads the VM's tags: the CPU features and the number of
// GPUs it needs.
func hardwareNeeds(tags map[string]string) (features []string, gpus int, err error) {
	for tag, v := range tags {
		switch {
		case strings.EqualFold(tag, tagCPUFeatures):
			for f := range strings.SplitSeq(v, ",") {
				f = strings.ToLower(strings.TrimSpace(f))
				if !cpuFeaturePattern.MatchString(f) {
					return nil, 0, arm.FieldError("tags."+tag, "%s lists CPU flags as the host reports them (amx_tile, avx512f), separated by commas; '%s' is not one.", tagCPUFeatures, f)
				}
				if !slices.Contains(features, f) {
					features = append(features, f)
				}
			}
		case strings.EqualFold(tag, tagGPUs):
			n, err := strconv.Atoi(strings.TrimSpace(v))
			if err != nil || n < 0 || n > maxVMGPUs {
				return nil, 0, arm.FieldError("tags."+tag, "%s is how many GPUs the VM is given, 0 to %d, not '%s'.", tagGPUs, maxVMGPUs, v)
			}
			gpus = n
		}
	}
	slices.Sort(features)
	return features, gpus, nil
}

// freeGPUs are the PCI addresses of machine m's GPUs that none of the
// VMs of its list has, but vm.
func freeGPUs(m *resource.Resource, list []bookedVM, vm string) []string {
	var inv struct {
		GPUs []agentapi.GPU `json:"gpus"`
	}
	decode(m.Properties["agentInventory"], &inv)
	used := map[string]bool{}
	for _, x := range list {
		if !strings.EqualFold(x.ID, vm) {
			for _, g := range x.GPUs {
				used[g] = true
			}
		}
	}
	var free []string
	for _, g := range inv.GPUs {
		if !used[g.PCIAddress] {
			free = append(free, g.PCIAddress)
		}
	}
	return free
}

// giveGPUs gives spec n of machine m's free GPUs, m running the VMs of
// list; false when m has fewer.
func giveGPUs(m *resource.Resource, list []bookedVM, spec *agentapi.VM, n int) bool {
	spec.GPUs = nil
	if n == 0 {
		return true
	}
	free := freeGPUs(m, list, spec.ID)
	if len(free) < n {
		return false
	}
	spec.GPUs = free[:n]
	return true
}
