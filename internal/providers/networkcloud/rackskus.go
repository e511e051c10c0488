package networkcloud

import (
	"context"
	"net/http"

	"github.com/citadel-cloud/citadel/internal/arm"
	"github.com/citadel-cloud/citadel/internal/machine"
	"github.com/citadel-cloud/citadel/internal/resource"
)

// Rack SKUs are the catalog's: they exist in every subscription and are
// not stored.

func (p *Provider) rackSKU(_ context.Context, id arm.ID) (*resource.Resource, bool) {
	sku, ok := p.cfg.Catalog.Rack(id.Name())
	if !ok {
		return nil, false
	}
	return p.rackSKUResource(id.Subscription, sku), true
}

func (p *Provider) listRackSKUs(_ context.Context, req *resource.Request, scope arm.ID) (*resource.Response, error) {
	if scope.Subscription == "" || scope.ResourceGroup != "" {
		return nil, arm.Errorf(http.StatusBadRequest, "InvalidScope", "Rack SKUs are listed at subscription scope.")
	}
	page := resource.Page[*resource.Resource]{Value: []*resource.Resource{}}
	for _, sku := range p.cfg.Catalog.Racks() {
		page.Value = append(page.Value, p.rackSKUResource(scope.Subscription, sku))
	}
	return &resource.Response{Status: http.StatusOK, Body: page}, nil
}

func (p *Provider) rackSKUResource(subscription string, sku *machine.RackSKU) *resource.Resource {
	id := arm.ID{Subscription: subscription, Namespace: Namespace, Types: []string{"rackSkus"}, Names: []string{sku.ID}}
	supported := make([]string, 0, len(sku.SupportedRackSKUs))
	for _, s := range sku.SupportedRackSKUs {
		supported = append(supported, rackSKUID(subscription, s))
	}
	return &resource.Resource{
		ID:   id.String(),
		Name: sku.ID,
		Type: Namespace + "/rackSkus",
		Properties: map[string]any{
			"description":         sku.Description,
			"rackType":            sku.Type,
			"deploymentType":      "Nexus",
			"maxClusterSlots":     sku.MaxClusterSlots,
			"supportedRackSkuIds": supported,
			"controllerMachines":  p.machineSlots(sku.ControllerMachines),
			"computeMachines":     p.machineSlots(sku.ComputeMachines),
			"storageAppliances":   applianceSlots(sku.StorageAppliances),
			"provisioningState":   resource.StateSucceeded,
			"citadelTopology":     sku.Topology,
		},
	}
}

// machineSlots describes the machine SKU in each slot: the spec's
// MachineSkuProperties plus Citadel's machineSkuId, CPU model and features,
// GPUs, firmware baseline and BIOS settings.
func (p *Provider) machineSlots(slots []machine.MachineSlot) []any {
	out := []any{}
	for _, s := range slots {
		m, ok := p.cfg.Catalog.Machine(s.MachineSKU)
		if !ok {
			continue
		}
		disks := []any{}
		for _, d := range m.Disks {
			disks = append(disks, map[string]any{"capacityGB": d.CapacityGB, "type": d.Type, "connection": d.Connection})
		}
		nics := []any{}
		for _, n := range m.NetworkInterfaces {
			nics = append(nics, map[string]any{"vendor": n.Vendor, "model": n.Model, "portCount": n.PortCount,
				"portSpeed": n.PortSpeedGbps, "physicalSlot": n.PhysicalSlot, "address": n.Address, "deviceConnectionType": "PCI"})
		}
		out = append(out, map[string]any{
			"rackSlot": s.RackSlot,
			"properties": map[string]any{
				"machineSkuId": m.ID, "vendor": m.Vendor, "model": m.Model, "generation": m.Generation,
				"hardwareVersion": m.HardwareVersion, "bootstrapProtocol": m.BootstrapProtocol,
				"cpuSockets": m.CPUSockets, "cpuCores": m.CPUCores, "totalThreads": m.TotalThreads,
				"memoryCapacityGB": m.MemoryGiB, "disks": disks, "networkInterfaces": nics,
				"cpuModel": m.CPUModel, "cpuFeatures": m.CPUFeatures, "gpus": jsonValue(m.GPUs),
				"firmwareBaseline": jsonValue(m.Firmware),
				"biosSettings":     biosSettings(m),
			},
		})
	}
	return out
}

// biosSettings is a machine SKU's BIOS settings as a property: {} when
// it has none.
func biosSettings(m *machine.MachineSKU) any {
	if len(m.BIOSSettings) == 0 {
		return map[string]any{}
	}
	return jsonValue(m.BIOSSettings)
}

func applianceSlots(slots []machine.ApplianceSlot) []any {
	out := []any{}
	for _, s := range slots {
		out = append(out, map[string]any{"rackSlot": s.RackSlot,
			"properties": map[string]any{"model": s.Model, "capacityGB": s.CapacityGB}})
	}
	return out
}

// rackSKUID is the resource ID of rack SKU name in subscription.
func rackSKUID(subscription, name string) string {
	return "/subscriptions/" + subscription + "/providers/" + Namespace + "/rackSkus/" + name
}
