package resource_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/citadel-cloud/citadel/internal/arm"
	"github.com/citadel-cloud/citadel/internal/network"
	"github.com/citadel-cloud/citadel/internal/resource"
)

// hosts is the behaviour of Test.Widgets/hosts, hosts/nics and
// slowHosts: each holds one address of the pool named by its prefix
// property, Dynamic (picked, kept across updates) or Static (asked for).
type hosts struct {
	svc      *resource.Service
	validate atomic.Int64 // Validate calls, retries included
	mu       sync.Mutex
	calls    map[string]int // Validate calls by lower-cased ID
}

type hostProps struct {
	Prefix     string `json:"prefix"`
	Allocation string `json:"allocation"`
	Address    string `json:"address"`
}

func (h *hosts) claim(ctx context.Context, w *resource.Write) error {
	h.validate.Add(1)
	h.mu.Lock()
	h.calls[strings.ToLower(w.ID.String())]++
	h.mu.Unlock()
	var p hostProps
	if err := resource.DecodeProperties(w.New, &p); err != nil {
		return err
	}
	pool, err := network.ParsePool(p.Prefix)
	if err != nil {
		return arm.FieldError("properties.prefix", "%s.", errors.Unwrap(err))
	}
	claimed, err := h.svc.Claimed(ctx, p.Prefix)
	if err != nil {
		return err
	}
	var addr netip.Addr
	switch p.Allocation {
	case "Static":
		if addr, err = pool.CheckStatic(p.Address); err != nil {
			return arm.FieldError("properties.address", "%s.", reasonOf(err))
		}
		if owner, ok := claimed[addr.String()]; ok && !strings.EqualFold(owner, w.ID.String()) {
			return arm.Errorf(http.StatusConflict, "AddressInUse", "The address %s is held by '%s'.", addr, owner)
		}
	case "Dynamic":
		if held := w.Held(p.Prefix); len(held) == 1 {
			addr = netip.MustParseAddr(held[0])
			break
		}
		taken := func(a netip.Addr) bool { _, ok := claimed[a.String()]; return ok }
		if addr, err = pool.Pick(taken, rand.Uint64N(pool.Size())); errors.Is(err, network.ErrExhausted) {
			return arm.Errorf(http.StatusConflict, "IPAddressExhausted", "The pool %s has no free address.", p.Prefix)
		} else if err != nil {
			return err
		}
	default:
		return arm.FieldError("properties.allocation", "allocation must be Dynamic or Static, not '%s'.", p.Allocation)
	}
	w.Claims = append(w.Claims, resource.Claim{Pool: p.Prefix, Item: addr.String()})
	w.New.Properties["address"] = addr.String()
	return nil
}

func reasonOf(err error) string {
	if re, ok := errors.AsType[*network.RuleError](err); ok {
		return re.Reason
	}
	return err.Error()
}

// newClaimsEnv is newEnv with the host types registered.
func newClaimsEnv(t testing.TB) (*env, *hosts) {
	t.Helper()
	e := newEnv(t)
	h := &hosts{svc: e.svc, calls: map[string]int{}}
	e.svc.Register(
		&resource.Type{Namespace: ns, Name: "hosts", APIVersions: widgetVersions, Tracked: true, Validate: h.claim},
		&resource.Type{Namespace: ns, Name: "hosts/nics", APIVersions: widgetVersions, Validate: h.claim},
		&resource.Type{Namespace: ns, Name: "slowHosts", APIVersions: widgetVersions, Tracked: true, Validate: h.claim,
			Provision: func(context.Context, *resource.Task) error { return nil },
			// A gate on its name (e.p.gate) holds its deletion.
			Deprovision: func(ctx context.Context, t *resource.Task) error { return e.p.wait(ctx, t.Resource.Name) }},
	)
	e.putGroup(t, "rg")
	return e, h
}

func hostID(name string) string { return groupID("rg") + "/providers/" + ns + "/hosts/" + name }

func hostBody(prefix, allocation, address string) string {
	return fmt.Sprintf(`{"location":"local","properties":{"prefix":%q,"allocation":%q,"address":%q}}`, prefix, allocation, address)
}

// claimed is Claimed(pool), failing the test on an error.
func (e *env) claimed(t testing.TB, pool string) map[string]string {
	t.Helper()
	m, err := e.svc.Claimed(t.Context(), pool)
	if err != nil {
		t.Fatalf("Claimed(%s): %v", pool, err)
	}
	return m
}

// TestClaimsConcurrent is the property test of claims: many writers
// claiming from one pool at once never share an item, each claim is held
// by exactly the resource that shows it, and a full pool says so.
func TestClaimsConcurrent(t *testing.T) {
	t.Parallel()
	e, h := newClaimsEnv(t)
	const (
		pool    = "10.20.0.0/22" // 1021 assignable addresses
		n       = 1000
		workers = 16
	)
	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for w := range workers {
		wg.Go(func() {
			for i := w; i < n; i += workers {
				id := hostID(fmt.Sprintf("h%04d", i))
				resp, err := e.svc.Put(t.Context(), req(t, id, hostBody(pool, "Dynamic", "")))
				if err == nil && resp.Status != http.StatusCreated {
					err = fmt.Errorf("status %d", resp.Status)
				}
				if err != nil {
					errs <- fmt.Errorf("Put(%s): %w", id, err)
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	took := time.Since(start)
	most := 0
	for _, c := range h.calls {
		most = max(most, c)
	}
	t.Logf("%d concurrent allocations by %d workers took %v: %d Validate calls (%d retries, at most %d for one PUT)",
		n, workers, took, h.validate.Load(), h.validate.Load()-n, most-1)

	claims := e.claimed(t, pool)
	if len(claims) != n {
		t.Errorf("Claimed(%s) has %d items, want %d", pool, len(claims), n)
	}
	hs, err := e.svc.Resources(t.Context(), mustID(t, groupID("rg")), ns+"/hosts")
	if err != nil {
		t.Fatal(err)
	}
	if len(hs) != n {
		t.Fatalf("%d hosts stored, want %d", len(hs), n)
	}
	seen := map[string]string{}
	for _, r := range hs {
		a, _ := r.Properties["address"].(string)
		if other, dup := seen[a]; dup {
			t.Errorf("address %s shown by both %s and %s", a, other, r.ID)
		}
		seen[a] = r.ID
		if owner := claims[a]; !strings.EqualFold(owner, r.ID) {
			t.Errorf("%s shows %s, which Claimed says %q holds", r.ID, a, owner)
		}
	}
	for a, owner := range claims {
		if !strings.EqualFold(seen[a], owner) {
			t.Errorf("claim of %s is held by %s, which shows %q", a, owner, e.mustGet(t, owner).Properties["address"])
		}
	}

	// A /29 has 5 addresses: of 20 writers at once, 5 get one and the
	// others are told the pool is full, not that they conflicted.
	const small = "10.30.0.0/29"
	var got, full atomic.Int64
	var wg2 sync.WaitGroup
	for i := range 20 {
		wg2.Go(func() {
			_, err := e.svc.Put(t.Context(), req(t, hostID(fmt.Sprintf("s%02d", i)), hostBody(small, "Dynamic", "")))
			switch ae, _ := errors.AsType[*arm.Error](err); {
			case err == nil:
				got.Add(1)
			case ae != nil && ae.Code == "IPAddressExhausted" && ae.Status == http.StatusConflict:
				full.Add(1)
			default:
				t.Errorf("Put(s%02d) on a full pool = %v, want 409 IPAddressExhausted", i, err)
			}
		})
	}
	wg2.Wait()
	if got.Load() != 5 || full.Load() != 15 || len(e.claimed(t, small)) != 5 {
		t.Errorf("20 writers on %s: %d got an address, %d were refused, %d claimed; want 5, 15, 5",
			small, got.Load(), full.Load(), len(e.claimed(t, small)))
	}
	// And one more, alone, on the full /29.
	_, err = e.svc.Put(t.Context(), req(t, hostID("one-more"), hostBody(small, "Dynamic", "")))
	checkError(t, "Put(one-more) on a full /29", err, http.StatusConflict, "IPAddressExhausted", "")
}

func TestClaimsLifecycle(t *testing.T) {
	t.Parallel()
	e, _ := newClaimsEnv(t)
	runOperations(t, e.svc, "replica-1")
	ctx := t.Context()
	const pool = "192.168.0.0/24"
	a, b := hostID("a"), hostID("b")
	holder := func(item string) string { return e.claimed(t, pool)[item] }

	// Static: the address is claimed for a; b cannot have it.
	e.put(t, a, hostBody(pool, "Static", "192.168.0.10"))
	if got := holder("192.168.0.10"); got != a {
		t.Fatalf("192.168.0.10 held by %q, want %s", got, a)
	}
	_, err := e.svc.Put(ctx, req(t, b, hostBody(pool, "Static", "192.168.0.10")))
	if ae := checkError(t, "Put(b) of a's address", err, http.StatusConflict, "AddressInUse", ""); ae != nil && !strings.Contains(ae.Message, a) {
		t.Errorf("Put(b) of a's address: %q does not name %s", ae.Message, a)
	}
	_, err = e.svc.Put(ctx, req(t, b, hostBody(pool, "Static", "192.168.0.1")))
	checkError(t, "Put(b) of the gateway", err, http.StatusBadRequest, arm.CodeInvalidRequestContent, "properties.address")

	// a may PUT its own address again (another casing of its ID too), and
	// claims it no twice; a tags-only PATCH keeps it.
	e.put(t, hostID("A"), hostBody(pool, "Static", "192.168.0.10"))
	resp, err := e.svc.Patch(ctx, req(t, a, `{"tags":{"env":"test"}}`))
	wantStatus(t, "Patch(a, tags)", resp, err, http.StatusOK)
	if got := e.claimed(t, pool); len(got) != 1 || !strings.EqualFold(got["192.168.0.10"], a) {
		t.Errorf("after re-PUT and PATCH of a: Claimed = %v, want only 192.168.0.10 held by a", got)
	}

	// Changing the static address releases the old one in the same write.
	e.put(t, a, hostBody(pool, "Static", "192.168.0.11"))
	if got := e.claimed(t, pool); len(got) != 1 || got["192.168.0.11"] == "" {
		t.Errorf("after a moved to .11: Claimed = %v, want only 192.168.0.11", got)
	}
	e.put(t, b, hostBody(pool, "Static", "192.168.0.10")) // free again

	// Dynamic keeps its address across updates; a PATCH to Static moves it.
	c := hostID("c")
	addr := e.put(t, c, hostBody(pool, "Dynamic", "")).Body.(*resource.Resource).Properties["address"]
	again := e.put(t, c, hostBody(pool, "Dynamic", "")).Body.(*resource.Resource).Properties["address"]
	if addr != again || holder(addr.(string)) == "" {
		t.Errorf("Dynamic c got %v, then %v on update; want the same, claimed", addr, again)
	}
	static := "192.168.0.99"
	if addr == static { // the dynamic address is random
		static = "192.168.0.98"
	}
	resp, err = e.svc.Patch(ctx, req(t, c, `{"properties":{"allocation":"Static","address":"`+static+`"}}`))
	wantStatus(t, "Patch(c, static)", resp, err, http.StatusOK)
	if holder(addr.(string)) != "" || holder(static) != c {
		t.Errorf("after PATCH of c to %s: Claimed = %v, want %v released", static, e.claimed(t, pool), addr)
	}

	// DELETE releases.
	resp, err = e.svc.Delete(ctx, req(t, c, ""))
	wantStatus(t, "Delete(c)", resp, err, http.StatusOK)
	if got := holder(static); got != "" {
		t.Errorf("after Delete(c): %s held by %q", static, got)
	}

	// A parent's DELETE releases its children's claims; so does Remove.
	nic := a + "/nics/n1"
	e.put(t, nic, `{"properties":{"prefix":"192.168.0.0/24","allocation":"Static","address":"192.168.0.50"}}`)
	if got := holder("192.168.0.50"); got != nic {
		t.Fatalf("192.168.0.50 held by %q, want %s", got, nic)
	}
	resp, err = e.svc.Delete(ctx, req(t, a, ""))
	wantStatus(t, "Delete(a)", resp, err, http.StatusOK)
	if got := e.claimed(t, pool); len(got) != 1 || got["192.168.0.10"] != b {
		t.Errorf("after Delete(a) with its nic: Claimed = %v, want only b's .10", got)
	}
	e.put(t, a, hostBody(pool, "Static", "192.168.0.11"))
	e.put(t, nic, `{"properties":{"prefix":"192.168.0.0/24","allocation":"Static","address":"192.168.0.50"}}`)
	if err := e.svc.Remove(ctx, mustID(t, a)); err != nil {
		t.Fatalf("Remove(a): %v", err)
	}
	if got := e.claimed(t, pool); len(got) != 1 {
		t.Errorf("after Remove(a) with its nic: Claimed = %v, want only b's .10", got)
	}

	// Long-running DELETE releases when the resource goes.
	slow := groupID("rg") + "/providers/" + ns + "/slowHosts/s1"
	resp = e.put(t, slow, hostBody(pool, "Static", "192.168.0.60"))
	e.waitOp(t, opID(t, resp.Header.Get("Azure-AsyncOperation")))
	open := e.p.gate("s1") // the delete waits here until the check below
	defer open()
	resp, err = e.svc.Delete(ctx, req(t, slow, ""))
	resp = wantStatus(t, "Delete(slow)", resp, err, http.StatusAccepted)
	if holder("192.168.0.60") != slow {
		t.Errorf("192.168.0.60 released before the long-running delete ended")
	}
	open()
	if st := e.waitOp(t, opID(t, resp.Header.Get("Azure-AsyncOperation"))); st.Status != resource.OpSucceeded {
		t.Fatalf("Delete(slow) ended %s: %+v", st.Status, st.Error)
	}
	if got := holder("192.168.0.60"); got != "" {
		t.Errorf("after the long-running delete: 192.168.0.60 held by %q", got)
	}

	// Deleting the group releases everything in it.
	resp, err = e.svc.Delete(ctx, req(t, groupID("rg"), ""))
	resp = wantStatus(t, "Delete(rg)", resp, err, http.StatusAccepted)
	if st := e.waitOp(t, opID(t, resp.Header.Get("Azure-AsyncOperation"))); st.Status != resource.OpSucceeded {
		t.Fatalf("Delete(rg) ended %s: %+v", st.Status, st.Error)
	}
	if got := e.claimed(t, pool); len(got) != 0 {
		t.Errorf("after deleting the group: Claimed = %v, want nothing", got)
	}
}

// TestClaimsHidden checks that clients never see the claims record.
func TestClaimsHidden(t *testing.T) {
	t.Parallel()
	e, _ := newClaimsEnv(t)
	id := hostID("h")
	e.put(t, id, hostBody("10.0.0.0/24", "Static", "10.0.0.5"))
	resp, err := e.svc.Get(t.Context(), req(t, id, ""))
	resp = must(t, "Get(h)", resp, err)
	if body := string(resp.Body.([]byte)); strings.Contains(body, "claims") {
		t.Errorf("Get(h) = %s, shows its claims", body)
	}
}

// TestClaimsInOwnedPools: a claim in the pool of a resource (ClaimIn)
// and that resource's deletion (its type OwnsPool) exclude each other,
// whichever comes between the other's reads and its commit: a claim in
// a pool whose owner is deleted meanwhile is refused, and an owner
// whose pool gains a claim meanwhile is not deleted.
func TestClaimsInOwnedPools(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	var afterRead, beforeDelete atomic.Pointer[func()] // each run once, by the next Validate or ValidateDelete
	once := func(p *atomic.Pointer[func()]) {
		if f := p.Swap(nil); f != nil {
			(*f)()
		}
	}
	e.svc.Register(
		&resource.Type{Namespace: ns, Name: "nets", APIVersions: widgetVersions, Tracked: true, OwnsPool: true,
			ValidateDelete: func(ctx context.Context, r *resource.Resource) error {
				claimed, err := e.svc.Claimed(ctx, resource.PoolOf(r.ID))
				if err != nil {
					return err
				}
				once(&beforeDelete)
				if len(claimed) > 0 {
					return arm.Errorf(http.StatusConflict, "InUse", "%d items are held", len(claimed))
				}
				return nil
			}},
		&resource.Type{Namespace: ns, Name: "users", APIVersions: widgetVersions, Tracked: true,
			Validate: func(ctx context.Context, w *resource.Write) error {
				netID, _ := w.New.Properties["net"].(string)
				id, err := arm.ParseID(netID)
				if err != nil {
					return arm.FieldError("properties.net", "not an ID")
				}
				n, err := e.svc.Lookup(ctx, id)
				if err != nil {
					return arm.FieldError("properties.net", "The net was not found.")
				}
				once(&afterRead)
				w.ClaimIn(n, w.ID.Name())
				return nil
			}},
	)
	e.putGroup(t, "rg")
	netID := groupID("rg") + "/providers/" + ns + "/nets/n1"
	userID := func(name string) string { return groupID("rg") + "/providers/" + ns + "/users/" + name }
	put := func(id, body string) error { _, err := e.svc.Put(ctx, req(t, id, body)); return err }
	del := func(id string) error { _, err := e.svc.Delete(ctx, req(t, id, "")); return err }
	user := fmt.Sprintf(`{"location":"local","properties":{"net":%q}}`, netID)

	// The net goes between the user's read of it and its commit.
	if err := put(netID, `{"location":"local","properties":{}}`); err != nil {
		t.Fatal(err)
	}
	f := func() {
		if err := del(netID); err != nil {
			t.Errorf("deleting the net: %v", err)
		}
	}
	afterRead.Store(&f)
	checkError(t, "PUT of a user while its net goes", put(userID("u1"), user), http.StatusBadRequest, arm.CodeInvalidRequestContent, "properties.net")
	if got := e.claimed(t, resource.PoolOf(netID)); len(got) != 0 {
		t.Errorf("claims in the deleted net: %v", got)
	}

	// A user claims between the net's ValidateDelete and its commit.
	if err := put(netID, `{"location":"local","properties":{}}`); err != nil {
		t.Fatal(err)
	}
	g := func() {
		if err := put(userID("u2"), user); err != nil {
			t.Errorf("PUT of a user while its net is deleted: %v", err)
		}
	}
	beforeDelete.Store(&g)
	checkError(t, "DELETE of the net while a user claims in it", del(netID), http.StatusConflict, "InUse", "")
	if got := e.claimed(t, resource.PoolOf(netID)); len(got) != 1 {
		t.Errorf("claims in the net: %v, want u2's", got)
	}
	id, _ := arm.ParseID(netID)
	if _, err := e.svc.Lookup(ctx, id); err != nil {
		t.Errorf("the net after its refused deletion: %v", err)
	}
}
