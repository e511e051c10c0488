package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestMedian(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		in   []float64
		want float64
	}{
		{[]float64{1.3}, 1.3},
		{[]float64{1.4, 1.0}, 1.2},
		{[]float64{1.5, 0.9, 1.2}, 1.2},
		{[]float64{2, 1, 4, 3}, 2.5},
	} {
		if got := median(c.in); got != c.want {
			t.Errorf("median(%v) = %v, want %v", c.in, got, c.want)
		}
	}
}

// TestSamplesPooled: slices pooled with add are summarised as one run:
// percentiles over all their latencies, throughput over their summed
// time, and more than 1% of errors in all fails the phase.
func TestSamplesPooled(t *testing.T) {
	t.Parallel()
	ms := func(xs ...int) []time.Duration {
		var out []time.Duration
		for _, x := range xs {
			out = append(out, time.Duration(x)*time.Millisecond)
		}
		return out
	}
	var pooled samples
	pooled = pooled.add(samples{latencies: ms(9, 1, 5), elapsed: time.Second})
	pooled = pooled.add(samples{latencies: ms(2, 8, 3, 7), elapsed: time.Second})
	got, err := pooled.summary()
	if err != nil {
		t.Fatal(err)
	}
	if want := (phaseResult{Requests: 7, Throughput: 3.5, P50Ms: 5, P99Ms: 9, MaxMs: 9}); got != want {
		t.Errorf("summary = %+v, want %+v", got, want)
	}
	failing := pooled.add(samples{errs: 1, firstErr: errors.New("refused"), elapsed: time.Second})
	if _, err := failing.summary(); err == nil || !strings.Contains(err.Error(), "refused") {
		t.Errorf("summary with 1 error in 8 = %v, want the phase failed with the first error", err)
	}
}

// TestLogCostOf: each round's ratios are taken within the round, phases
// that did not run are left out, and the medians are of the rounds.
func TestLogCostOf(t *testing.T) {
	t.Parallel()
	round := func(without, with phaseResult) costRound {
		return costRound{Without: benchReport{Put: without}, With: benchReport{Put: with}}
	}
	got := logCostOf([]costRound{
		round(phaseResult{P50Ms: 10, Throughput: 2000}, phaseResult{P50Ms: 12, Throughput: 1600}),
		round(phaseResult{P50Ms: 20, Throughput: 1000}, phaseResult{P50Ms: 22, Throughput: 1000}),
		round(phaseResult{P50Ms: 10, Throughput: 2000}, phaseResult{P50Ms: 15, Throughput: 1000}),
	}).Phases
	want := map[string]phaseCost{"armPut": {
		P50Ratios: []float64{1.2, 1.1, 1.5}, MedianP50Ratio: 1.2,
		ThroughputRatios: []float64{1.25, 1, 2}, MedianThroughputRatio: 1.25,
	}}
	if diff := cmp.Diff(want, got, cmp.Comparer(func(a, b float64) bool { return a-b < 1e-9 && b-a < 1e-9 })); diff != "" {
		t.Errorf("logCostOf (-want +got):\n%s", diff)
	}
}

// TestBenchActivityLogCost runs one short round of the synchronous PUT,
// both servers in alternating slices, and checks the report holds both
// servers' results and their ratios.
func TestBenchActivityLogCost(t *testing.T) {
	var out bytes.Buffer
	err := runBench(t.Context(), []string{"api", "--activity-log-cost", "1", "--phases", "put-sync", "--duration", "300ms", "--clients", "2", "--resources", "1"}, &out)
	if err != nil {
		t.Fatal(err)
	}
	var report activityLogCostReport
	if err := json.Unmarshal(out.Bytes(), &report); err != nil {
		t.Fatalf("%v in %s", err, out.String())
	}
	c, ok := report.Phases["armPutSync"]
	if !ok || len(c.P50Ratios) != 1 || c.MedianP50Ratio <= 0 || c.MedianThroughputRatio <= 0 || len(report.Phases) != 1 {
		t.Errorf("phases = %+v, want armPutSync alone with one round's ratios", report.Phases)
	}
	if len(report.Rounds) != 1 || report.Rounds[0].Without.PutSync.Requests == 0 || report.Rounds[0].With.PutSync.Requests == 0 {
		t.Errorf("rounds = %+v, want one with both runs of the synchronous PUT", report.Rounds)
	}
}
