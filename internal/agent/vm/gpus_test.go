package vm

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestGPUArgs(t *testing.T) {
	devices := t.TempDir()
	device := func(addr, driver string) {
		dir := filepath.Join(devices, addr)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if driver != "" {
			if err := os.Symlink("../../../../bus/pci/drivers/"+driver, filepath.Join(dir, "driver")); err != nil {
				t.Fatal(err)
			}
		}
	}
	device("0000:41:00.0", "vfio-pci")
	device("0000:42:00.0", "vfio-pci")
	device("0000:43:00.0", "nvidia")
	device("0000:44:00.0", "")
	tests := []struct {
		gpus    []string
		want    []string
		wantErr string
	}{
		{nil, nil, ""},
		{[]string{"0000:41:00.0", "0000:42:00.0"}, []string{"-device", "vfio-pci,host=0000:41:00.0", "-device", "vfio-pci,host=0000:42:00.0"}, ""},
		{[]string{"0000:43:00.0"}, nil, "bound to nvidia"},
		{[]string{"0000:44:00.0"}, nil, "bound to no driver"},
		{[]string{"0000:45:00.0"}, nil, "no such PCI device"},
		{[]string{"41:00.0"}, nil, "want a PCI address"},
		{[]string{"0000:41:00.0,x=y"}, nil, "want a PCI address"},
	}
	for _, tt := range tests {
		got, err := gpuArgs(tt.gpus, devices)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("gpuArgs(%v) error = %v, want one saying %q", tt.gpus, err, tt.wantErr)
			}
			continue
		}
		if err != nil || !slices.Equal(got, tt.want) {
			t.Errorf("gpuArgs(%v) = %v, %v; want %v", tt.gpus, got, err, tt.want)
		}
	}
}
