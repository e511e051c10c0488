package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// specsDir is shared/specs, beside the repository.
const specsDir = "../../../../../shared/specs"

// TestGeneratedFileUpToDate checks that citadel_aliases.csv is what the
// generator makes of the bicep types now: run go generate in
// internal/policy when it is not.
func TestGeneratedFileUpToDate(t *testing.T) {
	if _, err := os.Stat(specsDir); err != nil {
		msg := "the shared specs are missing (shared/specs): " + err.Error()
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	want, err := generate(specsDir)
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join("..", "..", "citadel_aliases.csv"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("internal/policy/citadel_aliases.csv is stale (%d bytes, the generator makes %d): run go generate ./internal/policy", len(got), len(want))
	}
	for _, alias := range []string{
		"Microsoft.NetworkCloud/virtualMachines/cpuCores,properties.cpuCores,true",
		"Microsoft.NetworkCloud/virtualMachines/networkAttachments[*].ipv4Address,properties.networkAttachments[*].ipv4Address,true",
		"Microsoft.NetworkCloud/virtualMachines/provisioningState,properties.provisioningState,false",
		"Microsoft.NetworkCloud/virtualMachines/extendedLocation.name,extendedLocation.name,true",
	} {
		if !strings.Contains(string(want), alias+"\n") {
			t.Errorf("the generated aliases lack %s", alias)
		}
	}
}
