package fleet

import (
	"fmt"
	"testing"

	"github.com/citadel-cloud/citadel/internal/store"
)

// TestRendezvous: every replica computes the same owner for a cell, the
// cells are spread over the replicas, and when one leaves only its cells
// move, spread over the rest.
func TestRendezvous(t *testing.T) {
	three := []store.Attendee{{ID: "a", Value: "https://a"}, {ID: "b", Value: "https://b"}, {ID: "c", Value: "https://c"}}
	const cells = 3000
	owners := map[string]string{}
	count := map[string]int{}
	for i := range cells {
		cell := fmt.Sprintf("/subscriptions/s/resourcegroups/g/providers/microsoft.networkcloud/clusters/cell%d", i)
		o := rendezvous(cell, three)
		if again := rendezvous(cell, []store.Attendee{three[2], three[0], three[1]}); again != o {
			t.Fatalf("%s: %v, and %v with the members in another order", cell, o, again)
		}
		owners[cell] = o.ID
		count[o.ID]++
	}
	for _, m := range three {
		if n := count[m.ID]; n < cells/4 || n > cells/2 {
			t.Errorf("replica %s owns %d of %d cells", m.ID, n, cells)
		}
	}
	two := []store.Attendee{three[0], three[2]} // b left
	moved := map[string]int{}
	for cell, was := range owners {
		now := rendezvous(cell, two).ID
		switch {
		case was != "b" && now != was:
			t.Fatalf("%s moved from %s to %s though %s is still present", cell, was, now, was)
		case was == "b":
			moved[now]++
		}
	}
	if moved["a"] < count["b"]/3 || moved["c"] < count["b"]/3 {
		t.Errorf("b's %d cells went %v", count["b"], moved)
	}
	if got := rendezvous("cell", nil); got != (store.Attendee{}) {
		t.Errorf("with no replica present the owner is %v", got)
	}
}
