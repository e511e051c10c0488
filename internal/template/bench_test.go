package template_test

import (
	"testing"

	"github.com/citadel-cloud/citadel/internal/template"
)

// benchDoc deploys 1,000 resources from copy loops: 500 network
// interfaces and 500 virtual machines, each VM depending on its NIC, with
// a property loop of data disks. (A single copy loop stops at 800, ARM's
// limit.)
const benchDoc = `{
  "$schema": "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#",
  "parameters": {
    "prefix": {"type": "string", "defaultValue": "web"},
    "count": {"type": "int", "defaultValue": 500},
    "location": {"type": "string", "defaultValue": "[resourceGroup().location]"}
  },
  "variables": {"subnetId": "[resourceId('Microsoft.Network/virtualNetworks/subnets', 'vnet', 'default')]"},
  "resources": [
    {"type": "Microsoft.Network/networkInterfaces", "apiVersion": "2020-06-01",
     "name": "[concat(parameters('prefix'), '-nic-', padLeft(copyIndex(), 3, '0'))]",
     "location": "[parameters('location')]",
     "copy": {"name": "nics", "count": "[parameters('count')]"},
     "properties": {"ipConfigurations": [{"name": "ipconfig1", "properties": {
       "privateIPAllocationMethod": "Dynamic", "subnet": {"id": "[variables('subnetId')]"}}}]}},
    {"type": "Microsoft.Compute/virtualMachines", "apiVersion": "2020-06-01",
     "name": "[concat(parameters('prefix'), '-vm-', padLeft(copyIndex(), 3, '0'))]",
     "location": "[parameters('location')]",
     "copy": {"name": "vms", "count": "[parameters('count')]"},
     "dependsOn": ["[resourceId('Microsoft.Network/networkInterfaces', concat(parameters('prefix'), '-nic-', padLeft(copyIndex(), 3, '0')))]"],
     "tags": {"stamp": "[uniqueString(resourceGroup().id, string(copyIndex()))]"},
     "properties": {
       "hardwareProfile": {"vmSize": "[if(equals(mod(copyIndex(), 2), 0), 'Standard_D2s_v3', 'Standard_D4s_v3')]"},
       "storageProfile": {"copy": [{"name": "dataDisks", "count": 2, "input": {
         "lun": "[copyIndex('dataDisks')]", "createOption": "Empty", "diskSizeGB": 128}}]},
       "networkProfile": {"networkInterfaces": [{"id": "[resourceId('Microsoft.Network/networkInterfaces', concat(parameters('prefix'), '-nic-', padLeft(copyIndex(), 3, '0')))]"}]}
     }}
  ]
}`

func BenchmarkExpand1000(b *testing.B) {
	tmpl, err := template.Parse([]byte(benchDoc))
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		d, err := template.Expand(tmpl, template.Options{Context: testContext})
		if err != nil {
			b.Fatal(err)
		}
		if len(d.Resources) != 1000 {
			b.Fatalf("%d resources, want 1000", len(d.Resources))
		}
	}
}
