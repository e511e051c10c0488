package redfishsim

import (
	"cmp"
	"fmt"
	"hash/fnv"
	"strconv"
	"strings"

	"github.com/google/uuid"
)

// Machine describes the server behind a generated BMC. Empty identity
// fields get defaults; empty hardware lists stay empty.
type Machine struct {
	// SystemID is the Id of the ComputerSystem; empty means the serial
	// number, as on Intel and DMTF BMCs.
	SystemID                               string
	Manufacturer, Model, SKU, SerialNumber string
	UUID, BIOSVersion, BMCFirmwareVersion  string
	Processors                             []Processor
	DIMMs                                  []DIMM
	EmptySlots                             int // DIMM slots listed with State Absent, as HPE does
	Drives                                 []Drive
	NICs                                   []NIC
	Firmware                               []Firmware
	VirtualMediaUnder                      string // "System" (default), "Manager" or "None"
	// BIOSAttributes are the BIOS's attributes (Bios.Attributes) over a
	// few defaults (Dell's names: BootMode Uefi, LogicalProc,
	// ProcVirtualization and ProcTurboMode Enabled, SriovGlobalEnable
	// Disabled, ...).
	BIOSAttributes map[string]any
}

// Processor is Count sockets of one kind of processor.
type Processor struct {
	Model, Manufacturer      string
	ProcessorType            string // "CPU" or "GPU"
	TotalCores, TotalThreads int
	MaxSpeedMHz, Count       int
}

// DIMM is one populated memory slot.
type DIMM struct {
	CapacityMiB              int
	Type                     string // MemoryDeviceType, e.g. "DDR5"
	SpeedMHz                 int
	Manufacturer, PartNumber string
}

// Drive is one disk.
type Drive struct {
	CapacityBytes       int64
	MediaType           string // "SSD" or "HDD"
	Protocol            string // "NVMe", "SAS" or "SATA"
	Model, SerialNumber string
}

// NIC is one host Ethernet interface.
type NIC struct {
	MACAddress string
	SpeedMbps  int
}

// Firmware is one entry of UpdateService/FirmwareInventory.
type Firmware struct {
	ID, Name, Version, SoftwareID string
}

// SampleMachine is a typical two-socket server with the given serial
// number, for tests and fleets that need no particular hardware.
func SampleMachine(serial string) Machine {
	m := Machine{
		Manufacturer: "Contoso", Model: "R2000", SKU: "R2000-G5", SerialNumber: serial,
		BIOSVersion: "2.4.1", BMCFirmwareVersion: "1.9.0",
		Processors: []Processor{{Model: "Contoso Xeon 6430", Manufacturer: "Intel(R) Corporation", ProcessorType: "CPU", TotalCores: 32, TotalThreads: 64, MaxSpeedMHz: 3400, Count: 2}},
		EmptySlots: 4,
		Firmware:   []Firmware{{ID: "NIC1", Name: "Ethernet Adapter", Version: "22.31.6", SoftwareID: "nic-fw"}},
	}
	for i := range 12 {
		m.DIMMs = append(m.DIMMs, DIMM{CapacityMiB: 32768, Type: "DDR5", SpeedMHz: 4800, Manufacturer: "Hynix", PartNumber: fmt.Sprintf("HMCG88AGBRA19%dN", i%2)})
	}
	h := fnv.New32a()
	h.Write([]byte(serial))
	for i := range 2 {
		h := h.Sum32()
		m.Drives = append(m.Drives, Drive{CapacityBytes: 3_840_755_982_336, MediaType: "SSD", Protocol: "NVMe", Model: "Contoso NVMe 3.84TB", SerialNumber: fmt.Sprintf("%s-D%d", serial, i)})
		m.NICs = append(m.NICs, NIC{MACAddress: fmt.Sprintf("02:%02x:%02x:%02x:%02x:%02x", byte(h>>24), byte(h>>16), byte(h>>8), byte(h), i), SpeedMbps: 25000})
	}
	return m
}

// noQueries is the ProtocolFeaturesSupported of a service that implements
// no query parameters.
var noQueries = map[string]any{
	"ExpandQuery":     map[string]any{"ExpandAll": false, "Levels": false, "Links": false, "NoLinks": false},
	"SelectQuery":     false,
	"FilterQuery":     false,
	"OnlyMemberQuery": false,
	"ExcerptQuery":    false,
}

// New generates the tree of a BMC for m: a service root, one system with its
// processors, memory, storage, Ethernet interfaces and virtual media, one
// chassis, one manager, the session, event, update and task services, and
// the BIOS with its settings object.
func New(m Machine, opts Options) *BMC {
	m.SerialNumber = cmp.Or(m.SerialNumber, "SIM0000000")
	m.SystemID = cmp.Or(m.SystemID, m.SerialNumber)
	m.Manufacturer = cmp.Or(m.Manufacturer, "Contoso")
	m.Model = cmp.Or(m.Model, "Simulated Server")
	m.UUID = cmp.Or(m.UUID, uuid.NewSHA1(uuid.NameSpaceOID, []byte(m.SerialNumber)).String())
	m.BIOSVersion = cmp.Or(m.BIOSVersion, "1.0.0")
	m.BMCFirmwareVersion = cmp.Or(m.BMCFirmwareVersion, "1.0.0")
	if opts.InitialPower != "On" {
		opts.InitialPower = "Off"
	}

	g := generator{res: map[string][]byte{}}
	sys := rootPath + "/Systems/" + m.SystemID
	const chassis, manager = rootPath + "/Chassis/1", rootPath + "/Managers/BMC"
	mediaOwner := map[string]string{"": sys, "System": sys, "Manager": manager}[m.VirtualMediaUnder]

	g.put(rootPath, obj{
		"@odata.type": "#ServiceRoot.v1_16_0.ServiceRoot", "Id": "RootService", "Name": "Root Service",
		"RedfishVersion": "1.17.0", "UUID": m.UUID, "Vendor": m.Manufacturer, "Product": m.Model,
		"ProtocolFeaturesSupported": noQueries,
		"Systems":                   link(rootPath + "/Systems"), "Chassis": link(rootPath + "/Chassis"),
		"Managers": link(rootPath + "/Managers"), "SessionService": link(rootPath + "/SessionService"),
		"EventService": link(rootPath + "/EventService"), "UpdateService": link(rootPath + "/UpdateService"),
		"Links": obj{"Sessions": link(rootPath + "/SessionService/Sessions")},
	})

	g.collection(rootPath+"/Systems", "ComputerSystemCollection", "Computer System Collection", []string{sys})
	cpus, cores, threads, cpuModel := 0, 0, 0, ""
	var processors []string
	perKind := map[string]int{}
	for _, p := range m.Processors {
		kind := cmp.Or(p.ProcessorType, "CPU")
		for range max(p.Count, 1) {
			perKind[kind]++
			n := perKind[kind]
			id := kind + strconv.Itoa(n)
			path := sys + "/Processors/" + id
			processors = append(processors, path)
			g.put(path, obj{
				"@odata.type": "#Processor.v1_20_0.Processor", "Id": id, "Name": kind + " " + strconv.Itoa(n),
				"Socket": kind + " " + strconv.Itoa(n), "ProcessorType": kind, "Manufacturer": p.Manufacturer,
				"Model": p.Model, "TotalCores": p.TotalCores, "TotalThreads": p.TotalThreads,
				"MaxSpeedMHz": p.MaxSpeedMHz, "Status": enabled(),
			})
			if kind == "CPU" {
				cpus, cores, threads, cpuModel = cpus+1, cores+p.TotalCores, threads+p.TotalThreads, cmp.Or(cpuModel, p.Model)
			}
		}
	}
	g.collection(sys+"/Processors", "ProcessorCollection", "Processors Collection", processors)

	var dimms []string
	totalMiB := 0
	for i := range len(m.DIMMs) + m.EmptySlots {
		id := "DIMM" + strconv.Itoa(i+1)
		path := sys + "/Memory/" + id
		dimms = append(dimms, path)
		o := obj{"@odata.type": "#Memory.v1_20_0.Memory", "Id": id, "Name": "DIMM Slot " + strconv.Itoa(i+1),
			"CapacityMiB": 0, "Status": obj{"State": "Absent"}}
		if i < len(m.DIMMs) {
			d := m.DIMMs[i]
			totalMiB += d.CapacityMiB
			o["CapacityMiB"], o["MemoryDeviceType"], o["OperatingSpeedMhz"] = d.CapacityMiB, d.Type, d.SpeedMHz
			o["Manufacturer"], o["PartNumber"], o["SerialNumber"] = d.Manufacturer, d.PartNumber, fmt.Sprintf("%s%04d", m.SerialNumber, i)
			o["Status"] = enabled()
		}
		g.put(path, o)
	}
	g.collection(sys+"/Memory", "MemoryCollection", "Memory Module Collection", dimms)

	var nics []string
	for i, n := range m.NICs {
		id := "NIC" + strconv.Itoa(i+1)
		path := sys + "/EthernetInterfaces/" + id
		nics = append(nics, path)
		g.put(path, obj{"@odata.type": "#EthernetInterface.v1_12_0.EthernetInterface", "Id": id, "Name": "Ethernet Interface " + strconv.Itoa(i+1),
			"MACAddress": n.MACAddress, "PermanentMACAddress": n.MACAddress, "SpeedMbps": n.SpeedMbps, "LinkStatus": "LinkUp", "Status": enabled()})
	}
	g.collection(sys+"/EthernetInterfaces", "EthernetInterfaceCollection", "Ethernet Interface Collection", nics)

	storage := sys + "/Storage/1"
	drives := []any{}
	for i, d := range m.Drives {
		id := "Disk" + strconv.Itoa(i+1)
		path := storage + "/Drives/" + id
		drives = append(drives, link(path))
		g.put(path, obj{"@odata.type": "#Drive.v1_19_0.Drive", "Id": id, "Name": "Drive " + strconv.Itoa(i+1),
			"CapacityBytes": d.CapacityBytes, "MediaType": d.MediaType, "Protocol": d.Protocol, "Model": d.Model,
			"SerialNumber": d.SerialNumber, "Revision": "1.0", "Status": enabled()})
	}
	g.collection(sys+"/Storage", "StorageCollection", "Storage Collection", []string{storage})
	g.put(storage, obj{"@odata.type": "#Storage.v1_16_0.Storage", "Id": "1", "Name": "Storage Controller",
		"Drives": drives, "Drives@odata.count": len(drives), "Status": enabled()})

	if mediaOwner != "" {
		cd := mediaOwner + "/VirtualMedia/CD1"
		g.collection(mediaOwner+"/VirtualMedia", "VirtualMediaCollection", "Virtual Media Services", []string{cd})
		g.put(cd, obj{"@odata.type": "#VirtualMedia.v1_6_0.VirtualMedia", "Id": "CD1", "Name": "Virtual CD",
			"MediaTypes": []string{"CD", "DVD"}, "Image": nil, "ImageName": nil, "Inserted": false,
			"WriteProtected": true, "ConnectedVia": "NotConnected", "TransferMethod": "Stream",
			"Actions": obj{
				"#VirtualMedia.InsertMedia": obj{"target": cd + "/Actions/VirtualMedia.InsertMedia",
					"TransferProtocolType@Redfish.AllowableValues": []string{"HTTP", "HTTPS"}},
				"#VirtualMedia.EjectMedia": obj{"target": cd + "/Actions/VirtualMedia.EjectMedia"},
			}})
	}

	system := obj{
		"@odata.type": "#ComputerSystem.v1_22_0.ComputerSystem", "Id": m.SystemID, "Name": "System",
		"SystemType": "Physical", "AssetTag": "", "Manufacturer": m.Manufacturer, "Model": m.Model,
		"SKU": m.SKU, "SerialNumber": m.SerialNumber, "UUID": m.UUID, "BiosVersion": m.BIOSVersion,
		"PowerState": opts.InitialPower,
		"Status":     obj{"State": "Enabled", "Health": "OK", "HealthRollup": "OK"},
		"Boot": obj{
			"BootSourceOverrideEnabled": "Disabled", "BootSourceOverrideTarget": "None",
			"BootSourceOverrideTarget@Redfish.AllowableValues": []string{"None", "Pxe", "Cd", "Usb", "Hdd", "BiosSetup", "Utilities", "Diags", "UefiShell", "UefiTarget", "UefiHttp"},
			"BootSourceOverrideMode":                           "UEFI", "UefiTargetBootSourceOverride": nil, "HttpBootUri": nil,
		},
		"ProcessorSummary": obj{"Count": cpus, "Model": cpuModel, "CoreCount": cores, "LogicalProcessorCount": threads,
			"Status": obj{"State": "Enabled", "Health": "OK", "HealthRollup": "OK"}},
		"MemorySummary": obj{"TotalSystemMemoryGiB": float64(totalMiB) / 1024,
			"Status": obj{"State": "Enabled", "Health": "OK", "HealthRollup": "OK"}},
		"Processors": link(sys + "/Processors"), "Memory": link(sys + "/Memory"),
		"EthernetInterfaces": link(sys + "/EthernetInterfaces"), "Storage": link(sys + "/Storage"),
		"Bios":  link(sys + "/Bios"),
		"Links": obj{"Chassis": []any{link(chassis)}, "ManagedBy": []any{link(manager)}},
		"Actions": obj{"#ComputerSystem.Reset": obj{
			"target":                            sys + "/Actions/ComputerSystem.Reset",
			"ResetType@Redfish.AllowableValues": []string{"On", "ForceOff", "GracefulShutdown", "GracefulRestart", "ForceRestart", "PushPowerButton", "Nmi"},
		}},
	}
	if mediaOwner == sys {
		system["VirtualMedia"] = link(sys + "/VirtualMedia")
	}
	g.put(sys, system)
	g.biosResources(sys, m.BIOSAttributes)

	g.collection(rootPath+"/Chassis", "ChassisCollection", "Chassis Collection", []string{chassis})
	g.put(chassis, obj{"@odata.type": "#Chassis.v1_25_0.Chassis", "Id": "1", "Name": "Computer System Chassis",
		"ChassisType": "RackMount", "Manufacturer": m.Manufacturer, "Model": m.Model, "SKU": m.SKU,
		"SerialNumber": m.SerialNumber, "PartNumber": m.SKU, "Status": enabled(),
		"Links": obj{"ComputerSystems": []any{link(sys)}, "ManagedBy": []any{link(manager)}}})

	g.collection(rootPath+"/Managers", "ManagerCollection", "Manager Collection", []string{manager})
	mgr := obj{"@odata.type": "#Manager.v1_19_0.Manager", "Id": "BMC", "Name": "Manager", "ManagerType": "BMC",
		"FirmwareVersion": m.BMCFirmwareVersion, "UUID": uuid.NewSHA1(uuid.NameSpaceOID, []byte(m.SerialNumber+"/bmc")).String(),
		"Status": enabled(), "NetworkProtocol": link(manager + "/NetworkProtocol"),
		"Links": obj{"ManagerForServers": []any{link(sys)}, "ManagerForChassis": []any{link(chassis)}}}
	if mediaOwner == manager {
		mgr["VirtualMedia"] = link(manager + "/VirtualMedia")
	}
	g.put(manager, mgr)
	g.put(manager+"/NetworkProtocol", obj{"@odata.type": "#ManagerNetworkProtocol.v1_10_0.ManagerNetworkProtocol",
		"Id": "NetworkProtocol", "Name": "Manager Network Protocol", "HostName": "bmc-" + strings.ToLower(m.SerialNumber),
		"HTTPS": obj{"ProtocolEnabled": true, "Port": 443}})

	g.put(rootPath+"/SessionService", obj{"@odata.type": "#SessionService.v1_1_9.SessionService", "Id": "SessionService",
		"Name": "Session Service", "ServiceEnabled": true, "SessionTimeout": 1800, "Status": enabled(),
		"Sessions": link(rootPath + "/SessionService/Sessions")})
	g.collection(rootPath+"/SessionService/Sessions", "SessionCollection", "Session Collection", nil)

	g.put(rootPath+"/EventService", obj{"@odata.type": "#EventService.v1_10_0.EventService", "Id": "EventService",
		"Name": "Event Service", "ServiceEnabled": true, "Status": enabled(),
		"DeliveryRetryAttempts": 0, "DeliveryRetryIntervalSeconds": 0,
		"EventTypesForSubscription": []string{"StatusChange", "ResourceUpdated", "ResourceAdded", "ResourceRemoved", "Alert"},
		"RegistryPrefixes":          []string{"Base", "ResourceEvent"},
		"Subscriptions":             link(rootPath + "/EventService/Subscriptions"),
		"Actions": obj{"#EventService.SubmitTestEvent": obj{
			"target": rootPath + "/EventService/Actions/EventService.SubmitTestEvent"}}})
	g.collection(rootPath+"/EventService/Subscriptions", "EventDestinationCollection", "Event Subscriptions Collection", nil)

	firmware := append([]Firmware{
		{ID: "BIOS", Name: "BIOS", Version: m.BIOSVersion, SoftwareID: "bios"},
		{ID: "BMC", Name: "BMC Firmware", Version: m.BMCFirmwareVersion, SoftwareID: "bmc"},
	}, m.Firmware...)
	inventory := map[string]Firmware{}
	var ids []string
	for _, f := range firmware { // a later entry with the same Id replaces an earlier one
		if _, ok := inventory[f.ID]; !ok {
			ids = append(ids, f.ID)
		}
		inventory[f.ID] = f
	}
	var items []string
	for _, id := range ids {
		f := inventory[id]
		path := rootPath + "/UpdateService/FirmwareInventory/" + id
		items = append(items, path)
		g.put(path, obj{"@odata.type": "#SoftwareInventory.v1_10_0.SoftwareInventory", "Id": id,
			"Name": cmp.Or(f.Name, id), "Version": f.Version, "SoftwareId": f.SoftwareID, "Updateable": true, "Status": enabled()})
	}
	g.put(rootPath+"/UpdateService", obj{"@odata.type": "#UpdateService.v1_11_0.UpdateService", "Id": "UpdateService",
		"Name": "Update Service", "ServiceEnabled": true, "Status": enabled(),
		"FirmwareInventory": link(rootPath + "/UpdateService/FirmwareInventory"),
		"Actions": obj{"#UpdateService.SimpleUpdate": obj{
			"target": rootPath + "/UpdateService/Actions/UpdateService.SimpleUpdate",
			"TransferProtocol@Redfish.AllowableValues": []string{"HTTP", "HTTPS"},
		}}})
	g.collection(rootPath+"/UpdateService/FirmwareInventory", "SoftwareInventoryCollection", "Firmware Inventory Collection", items)

	b, err := newBMC(g.res, nil, opts)
	if err != nil {
		panic(fmt.Sprintf("redfishsim: generated tree is inconsistent: %v", err)) // a bug here, not bad input
	}
	return b
}

// obj is a JSON object under construction.
type obj = map[string]any

// generator collects the encoded resources of a generated tree.
type generator struct{ res map[string][]byte }

func (g *generator) put(p string, o obj) {
	o["@odata.id"] = p
	g.res[p] = encode(o)
}

func (g *generator) collection(p, schema, name string, members []string) {
	list := make([]any, len(members))
	for i, m := range members {
		list[i] = link(m)
	}
	g.put(p, obj{"@odata.type": "#" + schema + "." + schema, "Name": name, "Members": list, "Members@odata.count": len(list)})
}

func enabled() obj { return obj{"State": "Enabled", "Health": "OK"} }
