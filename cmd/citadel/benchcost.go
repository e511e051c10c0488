package main

import (
	"context"
	"fmt"
	"os"
	"slices"
)

// activityLogCostReport is what bench api --activity-log-cost prints:
// rounds of a server without the activity log then one with it, and for
// each ARM phase that ran the ratios of each round and their medians. On
// a shared machine one pair of runs says little; the median of the
// rounds' ratios, each taken within one round, says more.
type activityLogCostReport struct {
	Phases map[string]phaseCost `json:"phases"` // by the phase's name in the report: armGet, armPut, armPutSync
	Rounds []costRound          `json:"rounds"`
}

type costRound struct {
	Without benchReport `json:"withoutActivityLog"`
	With    benchReport `json:"withActivityLog"`
}

// phaseCost is what the activity log costs one phase: p50 latency with
// it over without it, and throughput without it over with it, per round.
type phaseCost struct {
	P50Ratios             []float64 `json:"p50Ratios"`
	MedianP50Ratio        float64   `json:"medianP50Ratio"`
	ThroughputRatios      []float64 `json:"throughputRatios"`
	MedianThroughputRatio float64   `json:"medianThroughputRatio"`
}

// armPhases are the phases the activity log is on the path of.
var armPhases = []struct {
	name string
	of   func(r *benchReport) phaseResult
}{
	{"armGet", func(r *benchReport) phaseResult { return r.Get }},
	{"armPut", func(r *benchReport) phaseResult { return r.Put }},
	{"armPutSync", func(r *benchReport) phaseResult { return r.PutSync }},
}

// activityLogCost runs o's phases in rounds fresh servers, without the
// activity log then with it, and summarises them.
func activityLogCost(ctx context.Context, o apiOptions, rounds int) (activityLogCostReport, error) {
	var all []costRound
	for r := range rounds {
		var round costRound
		for _, without := range []bool{true, false} {
			o.withoutLog = without
			which := map[bool]string{true: "without the activity log", false: "with the activity log"}[without]
			fmt.Fprintf(os.Stderr, "bench: round %d of %d, %s\n", r+1, rounds, which)
			report, err := benchAPI(ctx, o)
			if err != nil {
				return activityLogCostReport{}, fmt.Errorf("round %d, %s: %w", r+1, which, err)
			}
			if without {
				round.Without = report
			} else {
				round.With = report
			}
		}
		all = append(all, round)
	}
	return logCostOf(all), nil
}

// logCostOf summarises rounds: for each ARM phase that ran in both
// configurations of a round, that round's ratios, and their medians.
func logCostOf(rounds []costRound) activityLogCostReport {
	report := activityLogCostReport{Phases: map[string]phaseCost{}, Rounds: rounds}
	for _, ph := range armPhases {
		var c phaseCost
		for i := range rounds {
			without, with := ph.of(&rounds[i].Without), ph.of(&rounds[i].With)
			if without.P50Ms <= 0 || with.Throughput <= 0 {
				continue // the phase did not run
			}
			c.P50Ratios = append(c.P50Ratios, with.P50Ms/without.P50Ms)
			c.ThroughputRatios = append(c.ThroughputRatios, without.Throughput/with.Throughput)
		}
		if len(c.P50Ratios) > 0 {
			c.MedianP50Ratio, c.MedianThroughputRatio = median(c.P50Ratios), median(c.ThroughputRatios)
			report.Phases[ph.name] = c
		}
	}
	return report
}

// median of xs, which is not empty: the mean of the middle two of an even
// number.
func median(xs []float64) float64 {
	s := slices.Sorted(slices.Values(xs))
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}
