package storage

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
)

// Candidate is an appliance a volume could be placed on.
type Candidate struct {
	ID string // the storageAppliance's resource ID
	// CapacityMiB is its usable capacity, ProvisionedMiB the sizes of the
	// volumes on it.
	CapacityMiB, ProvisionedMiB int64
	// Unavailable, when set, is why it takes no new volume now
	// ("it does not answer").
	Unavailable string
}

// Limit is how much a capacity may provision with thin provisioning at
// ratio (1 = no overcommit).
func Limit(capacityMiB int64, ratio float64) int64 { return int64(float64(capacityMiB) * ratio) }

// Free is what c can still provision at ratio.
func (c Candidate) Free(ratio float64) int64 { return Limit(c.CapacityMiB, ratio) - c.ProvisionedMiB }

// Place picks the available candidate with the most free capacity that
// takes sizeMiB at ratio (ties: the first by ID). When none does, the
// error says, in one line, why each was passed over.
func Place(cands []Candidate, sizeMiB int64, ratio float64) (string, error) {
	if len(cands) == 0 {
		return "", fmt.Errorf("no storage appliance is in reach")
	}
	sorted := slices.Clone(cands)
	slices.SortFunc(sorted, func(a, b Candidate) int {
		return cmp.Or(cmp.Compare(b.Free(ratio), a.Free(ratio)), strings.Compare(a.ID, b.ID))
	})
	var why []string
	for _, c := range sorted {
		switch {
		case c.Unavailable != "":
			why = append(why, fmt.Sprintf("%s: %s", name(c.ID), c.Unavailable))
		case c.Free(ratio) < sizeMiB:
			why = append(why, fmt.Sprintf("%s: %d MiB free of %d MiB at overcommit ratio %g", name(c.ID), max(c.Free(ratio), 0), Limit(c.CapacityMiB, ratio), ratio))
		default:
			return c.ID, nil
		}
	}
	slices.Sort(why)
	return "", fmt.Errorf("no storage appliance in reach can take %d MiB (%s)", sizeMiB, strings.Join(why, "; "))
}

// name is the last segment of a resource ID.
func name(id string) string { return id[strings.LastIndex(id, "/")+1:] }
