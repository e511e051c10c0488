package vm

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
)

// A VM's GPUs (agentapi.VM.GPUs) are host PCI devices passed through to
// it whole with VFIO: each must be bound to the vfio-pci driver, which the
// machine's image does for the GPUs it sets aside for VMs.

// pciAddress is a PCI device's address as sysfs and QEMU name it.
var pciAddress = regexp.MustCompile(`^[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]$`)

// defaultPCIDevices is where sysfs lists the host's PCI devices.
const defaultPCIDevices = "/sys/bus/pci/devices"

// gpuArgs checks the VM's GPUs against the host's PCI devices under
// devices and returns their QEMU arguments.
func gpuArgs(gpus []string, devices string) ([]string, error) {
	var args []string
	for _, addr := range gpus {
		if !pciAddress.MatchString(addr) {
			return nil, fmt.Errorf("gpu %q: want a PCI address, as 0000:41:00.0", addr)
		}
		driver, err := os.Readlink(filepath.Join(devices, addr, "driver"))
		switch {
		case os.IsNotExist(err) && !exists(filepath.Join(devices, addr)):
			return nil, fmt.Errorf("gpu %s: this host has no such PCI device", addr)
		case err != nil:
			return nil, fmt.Errorf("gpu %s is bound to no driver: bind it to vfio-pci to pass it through", addr)
		case filepath.Base(driver) != "vfio-pci":
			return nil, fmt.Errorf("gpu %s is bound to %s: bind it to vfio-pci to pass it through", addr, filepath.Base(driver))
		}
		args = append(args, "-device", "vfio-pci,host="+addr)
	}
	return args, nil
}
