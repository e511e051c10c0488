package main

import (
	"bytes"
	"encoding/json"
	"testing"

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

// TestBenchActivityLogCost runs one short round of each configuration of
// the synchronous PUT and checks the report holds both runs and their
// ratios.
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
