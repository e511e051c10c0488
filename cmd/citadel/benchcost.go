package main

import (
	"context"
	"fmt"
	"slices"
)

// activityLogCostReport is what bench api --activity-log-cost prints:
// rounds of a server without the activity log beside one with it, and
// for each ARM phase that ran the ratios of each round and their medians.
// On a shared machine whose speed drifts from one minute to the next, one
// pair of runs says little: in a round both servers are up and each
// phase runs in short slices, one server then the other, so that both
// see the same machine; and the median of the rounds' ratios says more
// than any one.
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

// costSlices is how many slices each phase of a round is driven in on
// each server.
const costSlices = 10

// activityLogCost runs o's ARM phases in rounds, each on two fresh
// servers, one without the activity log and one with it, in alternating
// slices of o.duration/costSlices; after each slice the server finishes
// the work the slice left (operations, chaining) before the other runs.
// It summarises the rounds.
func activityLogCost(ctx context.Context, o apiOptions, rounds int) (activityLogCostReport, error) {
	var all []costRound
	for r := range rounds {
		progress("round %d of %d", r+1, rounds)
		round, err := costRoundOf(ctx, o)
		if err != nil {
			return activityLogCostReport{}, fmt.Errorf("round %d: %w", r+1, err)
		}
		all = append(all, round)
	}
	return logCostOf(all), nil
}

// costRoundOf runs one round of activityLogCost.
func costRoundOf(ctx context.Context, o apiOptions) (costRound, error) {
	var envs [2]*apiEnv // without the log, with it
	for i := range envs {
		o.withoutLog = i == 0
		env, err := startAPIEnv(ctx, o)
		if err != nil {
			return costRound{}, err
		}
		defer env.stop()
		envs[i] = env
	}
	round := costRound{
		Without: benchReport{Clients: o.clients, PhaseSeconds: o.duration.Seconds()},
		With:    benchReport{Clients: o.clients, PhaseSeconds: o.duration.Seconds()},
	}
	reports := [2]*benchReport{&round.Without, &round.With}
	slice := o.duration / costSlices
	for _, ph := range benchPhases {
		if ph.costName == "" || !slices.Contains(o.phases, ph.flag) {
			continue
		}
		ops := [2]func(ctx context.Context, client, i int) error{envs[0].op(ph.flag, o), envs[1].op(ph.flag, o)}
		progress("%s: %d clients, %d slices of %s on each server", ph.name, o.clients, costSlices, slice)
		var pooled [2]samples
		for n := range costSlices {
			for k := range 2 {
				i := (n + k) % 2 // each server goes first in every other pair
				pooled[i] = pooled[i].add(drive(ctx, o.clients, slice, ops[i]))
				if err := settle(ctx, envs[i].srv); err != nil {
					return costRound{}, err
				}
			}
		}
		for i, s := range pooled {
			res, err := s.summary()
			if err != nil {
				return costRound{}, fmt.Errorf("%s: %w", ph.name, err)
			}
			*ph.of(reports[i]) = res
		}
		progress("%s: p50 %.2f ms without the activity log, %.2f ms with it", ph.name, ph.of(reports[0]).P50Ms, ph.of(reports[1]).P50Ms)
	}
	return round, nil
}

// logCostOf summarises rounds: for each ARM phase that ran in both
// configurations of a round, that round's ratios, and their medians.
func logCostOf(rounds []costRound) activityLogCostReport {
	report := activityLogCostReport{Phases: map[string]phaseCost{}, Rounds: rounds}
	for _, ph := range benchPhases {
		if ph.costName == "" {
			continue
		}
		var c phaseCost
		for i := range rounds {
			without, with := *ph.of(&rounds[i].Without), *ph.of(&rounds[i].With)
			if without.P50Ms <= 0 || with.Throughput <= 0 {
				continue // the phase did not run
			}
			c.P50Ratios = append(c.P50Ratios, with.P50Ms/without.P50Ms)
			c.ThroughputRatios = append(c.ThroughputRatios, without.Throughput/with.Throughput)
		}
		if len(c.P50Ratios) > 0 {
			c.MedianP50Ratio, c.MedianThroughputRatio = median(c.P50Ratios), median(c.ThroughputRatios)
			report.Phases[ph.costName] = c
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
