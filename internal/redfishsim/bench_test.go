package redfishsim_test

import (
	"io"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/citadel-cloud/citadel/internal/redfishsim"
)

// BenchmarkGetSystem is one GET of the system over loopback HTTP with Basic
// auth, the most frequent request of a polling controller.
func BenchmarkGetSystem(b *testing.B) {
	s := serve(b, redfishsim.New(redfishsim.SampleMachine("SN1234"), redfishsim.Options{Username: user, Password: password}))
	hc := &http.Client{}
	b.ReportAllocs()
	for b.Loop() {
		req, _ := http.NewRequest(http.MethodGet, s.URL+system, nil)
		req.SetBasicAuth(user, password)
		roundTrip(b, hc, req, http.StatusOK)
	}
}

// BenchmarkReset is one ComputerSystem.Reset (ForceRestart) over loopback
// HTTP with a session token.
func BenchmarkReset(b *testing.B) {
	bmc := redfishsim.New(redfishsim.SampleMachine("SN1234"), redfishsim.Options{Username: user, Password: password, InitialPower: "On"})
	s := serve(b, bmc)
	hc := &http.Client{}
	login, _ := http.NewRequest(http.MethodPost, s.URL+"/redfish/v1/SessionService/Sessions", strings.NewReader(`{"UserName":"admin","Password":"s3cret"}`))
	token := roundTrip(b, hc, login, http.StatusCreated).Get("X-Auth-Token")
	b.ReportAllocs()
	for b.Loop() {
		req, _ := http.NewRequest(http.MethodPost, s.URL+resetAt, strings.NewReader(`{"ResetType":"ForceRestart"}`))
		req.Header.Set("X-Auth-Token", token)
		req.Header.Set("Content-Type", "application/json")
		roundTrip(b, hc, req, http.StatusNoContent)
	}
	if bmc.ResetCount() < b.N {
		b.Errorf("ResetCount() = %d after %d resets", bmc.ResetCount(), b.N)
	}
}

func roundTrip(b *testing.B, hc *http.Client, req *http.Request, want int) http.Header {
	resp, err := hc.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != want {
		b.Fatalf("%s %s = %d, want %d", req.Method, req.URL.Path, resp.StatusCode, want)
	}
	return resp.Header
}

// BenchmarkMemoryPerBMC generates 1000 sample BMCs and reports the heap
// each one holds.
func BenchmarkMemoryPerBMC(b *testing.B) {
	const n = 1000
	var perBMC float64
	for b.Loop() {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		fleet := make([]*redfishsim.BMC, n)
		for i := range fleet {
			fleet[i] = redfishsim.New(redfishsim.SampleMachine("SN"+strconv.Itoa(i)), redfishsim.Options{})
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		perBMC = float64(after.HeapAlloc-before.HeapAlloc) / n
		runtime.KeepAlive(fleet)
	}
	b.ReportMetric(perBMC, "bytes/BMC")
}
