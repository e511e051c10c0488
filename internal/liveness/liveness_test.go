package liveness

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// t0 is when every scenario starts; step times are offsets from it.
var t0 = time.Date(2026, 7, 1, 12, 0, 0, 0, time.UTC)

const sec = time.Second

// step is what happens at one instant of a scenario, in this order: the
// machines in beat heartbeat, the BMCs of the machines in off, noBMC and on
// report (with Evidence.At the step's time), then Tick runs if tick is set.
// want is every transition of the step, heartbeats' first, as
// Transition.String; ask is what Tick asks about.
type step struct {
	at               time.Duration
	beat             string
	off, noBMC, on   string
	tick             bool
	want             []string
	ask              string
	wantUnregistered bool
}

func TestRules(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		// racks is "rack:machine,machine rack:machine"; ":a" has no rack.
		racks string
		// Every machine heartbeats at 0 unless fresh (a restarted tracker).
		fresh bool
		// steady machines heartbeat at every step.
		steady     string
		steps      []step
		states     map[string]State
		rackStates map[string]State
	}{
		{
			name:   "NotReady after 30s, not before",
			racks:  "r1:a,b,c,d",
			steady: "b c d",
			steps: []step{
				{at: 29 * sec, tick: true},
				{at: 30 * sec, tick: true, want: []string{"machine a: Ready → NotReady: no heartbeat for 30s"}, ask: "a"},
			},
			states: map[string]State{"a": NotReady, "b": Ready},
		},
		{
			name:   "a heartbeat makes a NotReady machine Ready",
			racks:  "r1:a,b,c,d",
			steady: "b c d",
			steps: []step{
				{at: 30 * sec, tick: true, want: []string{"machine a: Ready → NotReady: no heartbeat for 30s"}, ask: "a"},
				{at: 35 * sec, beat: "a", want: []string{"machine a: NotReady → Ready: heartbeat received"}},
				{at: 40 * sec, tick: true},
			},
			states: map[string]State{"a": Ready},
		},
		{
			name:   "NotReadyAfter is configurable",
			cfg:    Config{NotReadyAfter: 5 * sec},
			racks:  "r1:a,b,c,d",
			steady: "b c d",
			steps: []step{
				{at: 4 * sec, tick: true},
				{at: 6 * sec, tick: true, want: []string{"machine a: Ready → NotReady: no heartbeat for 6s"}, ask: "a"},
			},
			states: map[string]State{"a": NotReady},
		},
		{
			name:   "silent without BMC evidence: NotReady for ever, asked again every 30s",
			racks:  "r1:a,b,c,d",
			steady: "b c d",
			steps: []step{
				{at: 30 * sec, tick: true, want: []string{"machine a: Ready → NotReady: no heartbeat for 30s"}, ask: "a"},
				{at: 45 * sec, tick: true},
				{at: 60 * sec, tick: true, ask: "a"},
				{at: 10 * time.Minute, tick: true, ask: "a"},
			},
			states: map[string]State{"a": NotReady},
		},
		{
			name:   "BMC reports power Off: Failed once 2m have passed since the last heartbeat",
			racks:  "r1:a,b,c,d",
			steady: "b c d",
			steps: []step{
				{at: 30 * sec, tick: true, want: []string{"machine a: Ready → NotReady: no heartbeat for 30s"}, ask: "a"},
				{at: 31 * sec, off: "a"},
				{at: 60 * sec, tick: true},
				{at: 119 * sec, tick: true},
				{at: 120 * sec, tick: true, want: []string{"machine a: NotReady → Failed: no heartbeat for 2m0s; BMC reports power Off"}},
				{at: 10 * time.Minute, tick: true},
			},
			states: map[string]State{"a": Failed, "b": Ready},
		},
		{
			name:   "BMC unreachable: Failed after the grace",
			racks:  "r1:a,b,c,d",
			steady: "b c d",
			steps: []step{
				{at: 30 * sec, tick: true, want: []string{"machine a: Ready → NotReady: no heartbeat for 30s"}, ask: "a"},
				{at: 32 * sec, noBMC: "a"},
				{at: 121 * sec, tick: true, want: []string{"machine a: NotReady → Failed: no heartbeat for 2m1s; BMC unreachable"}},
			},
			states: map[string]State{"a": Failed},
		},
		{
			name:   "BMC reports power On: no evidence, until it reports Off",
			racks:  "r1:a,b,c,d",
			steady: "b c d",
			steps: []step{
				{at: 30 * sec, tick: true, want: []string{"machine a: Ready → NotReady: no heartbeat for 30s"}, ask: "a"},
				{at: 31 * sec, on: "a"},
				{at: 120 * sec, tick: true, ask: "a"},
				{at: 121 * sec, off: "a", tick: true, want: []string{"machine a: NotReady → Failed: no heartbeat for 2m1s; BMC reports power Off"}},
			},
			states: map[string]State{"a": Failed},
		},
		{
			name:   "the newest evidence counts: Off, then On",
			racks:  "r1:a,b,c,d",
			steady: "b c d",
			steps: []step{
				{at: 30 * sec, tick: true, want: []string{"machine a: Ready → NotReady: no heartbeat for 30s"}, ask: "a"},
				{at: 31 * sec, off: "a"},
				{at: 40 * sec, on: "a"},
				{at: 130 * sec, tick: true, ask: "a"},
			},
			states: map[string]State{"a": NotReady},
		},
		{
			name:   "evidence older than the last heartbeat is ignored",
			racks:  "r1:a,b,c,d",
			steady: "b c d",
			steps: []step{
				{at: 5 * sec, off: "a"},
				{at: 10 * sec, beat: "a"},
				{at: 40 * sec, tick: true, want: []string{"machine a: Ready → NotReady: no heartbeat for 30s"}, ask: "a"},
				{at: 200 * sec, tick: true, ask: "a"},
			},
			states: map[string]State{"a": NotReady},
		},
		{
			name:   "no Tick for minutes: from Ready straight to Failed",
			racks:  "r1:a,b,c,d",
			steady: "b c d",
			steps: []step{
				{at: 60 * sec, off: "a"},
				{at: 130 * sec, tick: true, want: []string{"machine a: Ready → Failed: no heartbeat for 2m10s; BMC reports power Off"}},
			},
			states: map[string]State{"a": Failed},
		},
		{
			name:   "a Failed machine is Ready again on a heartbeat",
			racks:  "r1:a,b,c,d",
			steady: "b c d",
			steps: []step{
				{at: 30 * sec, tick: true, want: []string{"machine a: Ready → NotReady: no heartbeat for 30s"}, ask: "a"},
				{at: 31 * sec, off: "a"},
				{at: 120 * sec, tick: true, want: []string{"machine a: NotReady → Failed: no heartbeat for 2m0s; BMC reports power Off"}},
				{at: 200 * sec, beat: "a", want: []string{"machine a: Failed → Ready: heartbeat received"}},
				{at: 201 * sec, tick: true},
			},
			states: map[string]State{"a": Ready},
		},
		{
			name:   "half of a rack silent at once: partition, Unreachable, never Failed whatever the BMCs say",
			racks:  "r1:a,b,c,d r2:e",
			steady: "c d e",
			steps: []step{
				{at: 29 * sec, tick: true},
				{at: 30 * sec, tick: true, want: []string{
					"rack r1: Ready → Unreachable: rack r1: 2 of 4 machines silent: partition",
					"machine a: Ready → Unreachable: rack r1 unreachable: no heartbeat for 30s",
					"machine b: Ready → Unreachable: rack r1 unreachable: no heartbeat for 30s",
				}},
				{at: 31 * sec, off: "a", noBMC: "b"},
				{at: 10 * time.Minute, tick: true},
				{at: 11 * time.Minute, off: "a", noBMC: "b", tick: true},
			},
			states:     map[string]State{"a": Unreachable, "b": Unreachable, "c": Ready, "e": Ready},
			rackStates: map[string]State{"r1": Unreachable, "r2": Ready},
		},
		{
			name:   "a partition ends when the heartbeats come back",
			racks:  "r1:a,b,c,d r2:e",
			steady: "c d e",
			steps: []step{
				{at: 30 * sec, tick: true, want: []string{
					"rack r1: Ready → Unreachable: rack r1: 2 of 4 machines silent: partition",
					"machine a: Ready → Unreachable: rack r1 unreachable: no heartbeat for 30s",
					"machine b: Ready → Unreachable: rack r1 unreachable: no heartbeat for 30s",
				}},
				{at: 5 * time.Minute, beat: "a b", want: []string{
					"machine a: Unreachable → Ready: heartbeat received",
					"machine b: Unreachable → Ready: heartbeat received",
				}},
				{at: 5*time.Minute + sec, tick: true, want: []string{"rack r1: Unreachable → Ready: rack r1: 0 of 4 machines silent: partition over"}},
			},
			states:     map[string]State{"a": Ready, "b": Ready},
			rackStates: map[string]State{"r1": Ready},
		},
		{
			name:   "jittered heartbeats falling silent one after another are still a partition",
			racks:  "r1:a,b,c,d",
			steady: "d",
			steps: []step{
				{at: 5 * sec, beat: "b"},
				{at: 8 * sec, beat: "c"},
				{at: 30 * sec, tick: true, want: []string{"machine a: Ready → NotReady: no heartbeat for 30s"}, ask: "a"},
				{at: 35 * sec, tick: true, want: []string{
					"rack r1: Ready → Unreachable: rack r1: 2 of 4 machines silent: partition",
					"machine a: NotReady → Unreachable: rack r1 unreachable: no heartbeat for 35s",
					"machine b: Ready → Unreachable: rack r1 unreachable: no heartbeat for 30s",
				}},
				{at: 38 * sec, tick: true, want: []string{"machine c: Ready → Unreachable: rack r1 unreachable: no heartbeat for 30s"}},
			},
			states:     map[string]State{"a": Unreachable, "b": Unreachable, "c": Unreachable, "d": Ready},
			rackStates: map[string]State{"r1": Unreachable},
		},
		{
			name:   "fewer than half of a rack silent: no partition, and a machine may fail",
			racks:  "r1:a,b,c,d,e",
			steady: "c d e",
			steps: []step{
				{at: 30 * sec, tick: true, want: []string{
					"machine a: Ready → NotReady: no heartbeat for 30s",
					"machine b: Ready → NotReady: no heartbeat for 30s",
				}, ask: "a b"},
				{at: 31 * sec, off: "a"},
				{at: 120 * sec, tick: true, want: []string{"machine a: NotReady → Failed: no heartbeat for 2m0s; BMC reports power Off"}, ask: "b"},
			},
			states:     map[string]State{"a": Failed, "b": NotReady},
			rackStates: map[string]State{"r1": Ready},
		},
		{
			name:   "a machine silent for long does not make a partition with a new silence",
			racks:  "r1:a,b,c,d",
			steady: "c d",
			steps: []step{
				{at: 30 * sec, beat: "b", tick: true, want: []string{"machine a: Ready → NotReady: no heartbeat for 30s"}, ask: "a"},
				{at: 31 * sec, on: "a"},
				{at: 60 * sec, beat: "b"},
				{at: 100 * sec, beat: "b"},
				{at: 130 * sec, tick: true, want: []string{"machine b: Ready → NotReady: no heartbeat for 30s"}, ask: "a b"},
			},
			states:     map[string]State{"a": NotReady, "b": NotReady},
			rackStates: map[string]State{"r1": Ready},
		},
		{
			name:   "a partition that heals in part: the still silent get a fresh grace and fresh evidence",
			racks:  "r1:a,b,c,d r2:e",
			steady: "e",
			steps: []step{
				{at: 30 * sec, tick: true, want: []string{
					"rack r1: Ready → Unreachable: rack r1: 4 of 4 machines silent: partition",
					"machine a: Ready → Unreachable: rack r1 unreachable: no heartbeat for 30s",
					"machine b: Ready → Unreachable: rack r1 unreachable: no heartbeat for 30s",
					"machine c: Ready → Unreachable: rack r1 unreachable: no heartbeat for 30s",
					"machine d: Ready → Unreachable: rack r1 unreachable: no heartbeat for 30s",
				}},
				{at: 40 * sec, off: "d"},
				{at: 60 * sec, beat: "a b c", want: []string{
					"machine a: Unreachable → Ready: heartbeat received",
					"machine b: Unreachable → Ready: heartbeat received",
					"machine c: Unreachable → Ready: heartbeat received",
				}},
				{at: 61 * sec, tick: true, want: []string{
					"rack r1: Unreachable → Ready: rack r1: 1 of 4 machines silent: partition over",
					"machine d: Unreachable → NotReady: rack r1 reachable again: no heartbeat for 1m1s",
				}, ask: "d"},
				{at: 62 * sec, off: "d"},
				{at: 150 * sec, beat: "a b c", tick: true},
				{at: 181 * sec, beat: "a b c", tick: true, want: []string{"machine d: NotReady → Failed: no heartbeat for 3m1s; BMC reports power Off"}},
			},
			states:     map[string]State{"a": Ready, "d": Failed},
			rackStates: map[string]State{"r1": Ready},
		},
		{
			name:  "evidence from during a partition does not count after it",
			racks: "r1:a,b,c,d r2:e",
			steps: []step{
				{at: 20 * sec, beat: "e"},
				{at: 30 * sec, tick: true, want: []string{
					"rack r1: Ready → Unreachable: rack r1: 4 of 4 machines silent: partition",
					"machine a: Ready → Unreachable: rack r1 unreachable: no heartbeat for 30s",
					"machine b: Ready → Unreachable: rack r1 unreachable: no heartbeat for 30s",
					"machine c: Ready → Unreachable: rack r1 unreachable: no heartbeat for 30s",
					"machine d: Ready → Unreachable: rack r1 unreachable: no heartbeat for 30s",
				}},
				{at: 40 * sec, off: "d"},
				{at: 45 * sec, beat: "a b c e", want: []string{
					"machine a: Unreachable → Ready: heartbeat received",
					"machine b: Unreachable → Ready: heartbeat received",
					"machine c: Unreachable → Ready: heartbeat received",
				}},
				{at: 46 * sec, tick: true, want: []string{
					"rack r1: Unreachable → Ready: rack r1: 1 of 4 machines silent: partition over",
					"machine d: Unreachable → NotReady: rack r1 reachable again: no heartbeat for 46s",
				}, ask: "d"},
				{at: 170 * sec, beat: "a b c e", tick: true, ask: "d"},
			},
			states: map[string]State{"d": NotReady},
		},
		{
			name:  "Failed machines do not count: the rest of the rack going silent is a partition",
			racks: "r1:a,b,c,d",
			steps: []step{
				{at: 30 * sec, beat: "b c d", tick: true, want: []string{"machine a: Ready → NotReady: no heartbeat for 30s"}, ask: "a"},
				{at: 31 * sec, off: "a"},
				{at: 120 * sec, beat: "b c d", tick: true, want: []string{"machine a: NotReady → Failed: no heartbeat for 2m0s; BMC reports power Off"}},
				{at: 125 * sec, beat: "b c d"},
				{at: 150 * sec, beat: "d"},
				{at: 155 * sec, tick: true, want: []string{
					"rack r1: Ready → Unreachable: rack r1: 2 of 3 machines silent: partition",
					"machine b: Ready → Unreachable: rack r1 unreachable: no heartbeat for 30s",
					"machine c: Ready → Unreachable: rack r1 unreachable: no heartbeat for 30s",
				}},
				{at: 156 * sec, off: "b c"},
				{at: 10 * time.Minute, beat: "d", tick: true},
			},
			states:     map[string]State{"a": Failed, "b": Unreachable, "c": Unreachable, "d": Ready},
			rackStates: map[string]State{"r1": Unreachable},
		},
		{
			name:  "a rack of one machine: it can fail (PartitionMin)",
			racks: "r1:a",
			steps: []step{
				{at: 30 * sec, tick: true, want: []string{"machine a: Ready → NotReady: no heartbeat for 30s"}, ask: "a"},
				{at: 31 * sec, off: "a"},
				{at: 120 * sec, tick: true, want: []string{"machine a: NotReady → Failed: no heartbeat for 2m0s; BMC reports power Off"}},
			},
			states:     map[string]State{"a": Failed},
			rackStates: map[string]State{"r1": Ready},
		},
		{
			name:  "machines with no rack are never a partition",
			racks: ":a,b",
			steps: []step{
				{at: 30 * sec, tick: true, want: []string{
					"machine a: Ready → NotReady: no heartbeat for 30s",
					"machine b: Ready → NotReady: no heartbeat for 30s",
				}, ask: "a b"},
			},
			states: map[string]State{"a": NotReady, "b": NotReady},
		},
		{
			name:   "after a restart, a machine never heard from is NotReady 30s after the first Tick",
			racks:  "r1:a r2:b",
			fresh:  true,
			steady: "b",
			steps: []step{
				{at: 0, tick: true, want: []string{"machine b: Unknown → Ready: heartbeat received"}},
				{at: 29 * sec, tick: true},
				{at: 30 * sec, tick: true, want: []string{"machine a: Unknown → NotReady: no heartbeat in 30s since tracking began"}, ask: "a"},
			},
			states: map[string]State{"a": NotReady, "b": Ready},
		},
		{
			name:   "after a restart, a whole silent rack is a partition",
			racks:  "r1:a,b r2:c",
			fresh:  true,
			steady: "c",
			steps: []step{
				{at: 0, tick: true, want: []string{"machine c: Unknown → Ready: heartbeat received"}},
				{at: 30 * sec, tick: true, want: []string{
					"rack r1: Ready → Unreachable: rack r1: 2 of 2 machines silent: partition",
					"machine a: Unknown → Unreachable: rack r1 unreachable: no heartbeat in 30s since tracking began",
					"machine b: Unknown → Unreachable: rack r1 unreachable: no heartbeat in 30s since tracking began",
				}},
			},
			states:     map[string]State{"a": Unreachable, "b": Unreachable},
			rackStates: map[string]State{"r1": Unreachable},
		},
		{
			name:   "a flapping machine: every change is a transition, and it never fails",
			racks:  "r1:a,b,c,d",
			steady: "b c d",
			steps: []step{
				{at: 30 * sec, tick: true, want: []string{"machine a: Ready → NotReady: no heartbeat for 30s"}, ask: "a"},
				{at: 31 * sec, off: "a"},
				{at: 35 * sec, beat: "a", want: []string{"machine a: NotReady → Ready: heartbeat received"}},
				{at: 65 * sec, tick: true, want: []string{"machine a: Ready → NotReady: no heartbeat for 30s"}, ask: "a"},
				{at: 70 * sec, beat: "a", want: []string{"machine a: NotReady → Ready: heartbeat received"}},
				{at: 100 * sec, tick: true, want: []string{"machine a: Ready → NotReady: no heartbeat for 30s"}, ask: "a"},
				{at: 105 * sec, beat: "a", want: []string{"machine a: NotReady → Ready: heartbeat received"}},
				{at: 225 * sec, tick: true, want: []string{"machine a: Ready → NotReady: no heartbeat for 2m0s"}, ask: "a"},
			},
			states: map[string]State{"a": NotReady},
		},
		{
			name:  "a heartbeat from a machine not registered is ignored",
			racks: "r1:a",
			steps: []step{
				{at: sec, beat: "ghost", wantUnregistered: true},
				{at: 30 * sec, tick: true, want: []string{"machine a: Ready → NotReady: no heartbeat for 30s"}, ask: "a"},
			},
			states: map[string]State{"ghost": Unknown},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := tt.cfg
			if cfg.FailedAfter == 0 {
				cfg.FailedAfter = 2 * time.Minute // the timelines below count on it
			}
			tr := New(cfg)
			var all []string
			for _, group := range strings.Fields(tt.racks) {
				rack, machines, _ := strings.Cut(group, ":")
				for _, m := range strings.Split(machines, ",") {
					tr.Register(m, rack)
					all = append(all, m)
				}
			}
			if !tt.fresh {
				for _, m := range all {
					tr.Heartbeat(m, t0)
				}
			}
			for _, s := range tt.steps {
				now := t0.Add(s.at)
				var got []string
				for _, m := range append(strings.Fields(tt.steady), strings.Fields(s.beat)...) {
					before := tr.Stats().Unregistered
					change, ok := tr.Heartbeat(m, now)
					if ok {
						got = append(got, change.String())
						if !change.At.Equal(now) {
							t.Errorf("at %v: Heartbeat(%s).At = %v, want %v", s.at, m, change.At, now)
						}
					}
					if unregistered := tr.Stats().Unregistered > before; unregistered != s.wantUnregistered {
						t.Errorf("at %v: Heartbeat(%s) counted as unregistered: %v, want %v", s.at, m, unregistered, s.wantUnregistered)
					}
				}
				for _, r := range []struct {
					machines string
					ev       Evidence
				}{
					{s.off, Evidence{At: now, PowerOff: true}},
					{s.noBMC, Evidence{At: now, BMCUnreachable: true}},
					{s.on, Evidence{At: now}},
				} {
					for _, m := range strings.Fields(r.machines) {
						if !tr.ReportBMC(m, r.ev) {
							t.Fatalf("at %v: ReportBMC(%s) = false, want true", s.at, m)
						}
					}
				}
				var ask []string
				if s.tick {
					changes, asked := tr.Tick(now)
					for _, c := range changes {
						got = append(got, c.String())
						if !c.At.Equal(now) {
							t.Errorf("at %v: Tick transition %v at %v, want %v", s.at, c, c.At, now)
						}
					}
					ask = asked
				}
				if diff := cmp.Diff(s.want, got); diff != "" {
					t.Errorf("at %v: transitions (-want +got):\n%s", s.at, diff)
				}
				if diff := cmp.Diff(strings.Fields(s.ask), ask, cmpopts.EquateEmpty()); diff != "" {
					t.Errorf("at %v: Tick asked about BMCs (-want +got):\n%s", s.at, diff)
				}
			}
			for m, want := range tt.states {
				if got, _ := tr.State(m); got != want {
					t.Errorf("State(%s) = %v, want %v", m, got, want)
				}
			}
			for r, want := range tt.rackStates {
				if got := tr.RackState(r); got != want {
					t.Errorf("RackState(%s) = %v, want %v", r, got, want)
				}
			}
		})
	}
}

func TestState(t *testing.T) {
	tr := New(Config{})
	tr.Register("a", "r1")
	if s, last := tr.State("a"); s != Unknown || !last.IsZero() {
		t.Errorf("State(a) before any heartbeat = %v, %v; want Unknown, zero", s, last)
	}
	tr.Heartbeat("a", t0.Add(10*sec))
	tr.Heartbeat("a", t0.Add(5*sec)) // late, out of order
	if s, last := tr.State("a"); s != Ready || !last.Equal(t0.Add(10*sec)) {
		t.Errorf("State(a) = %v, %v; want Ready, %v", s, last, t0.Add(10*sec))
	}
	tr.Tick(t0.Add(time.Minute))
	if s, last := tr.State("a"); s != NotReady || !last.Equal(t0.Add(10*sec)) {
		t.Errorf("State(a) after a silent minute = %v, %v; want NotReady, %v", s, last, t0.Add(10*sec))
	}

	tr.Register("never", "r2")
	tr.Tick(t0)
	tr.Tick(t0.Add(time.Minute))
	if s, last := tr.State("never"); s != NotReady || !last.IsZero() {
		t.Errorf("State(never) = %v, %v; want NotReady, zero: it never sent a heartbeat", s, last)
	}
	if s, last := tr.State("ghost"); s != Unknown || !last.IsZero() {
		t.Errorf("State(ghost) = %v, %v; want Unknown, zero", s, last)
	}
}

func TestRegisterForget(t *testing.T) {
	tr := New(Config{PartitionMin: 10}) // no partitions: only machines here
	tr.Register("a", "r1")
	tr.Register("b", "r1")
	tr.Register("c", "r2")
	tr.Register("a", "r1") // again: no change
	if got, want := tr.Stats(), (Stats{Machines: 3, Racks: 2, ByState: [numStates]int{Unknown: 3}}); got != want {
		t.Errorf("Stats() = %+v, want %+v", got, want)
	}
	if _, ok := tr.Heartbeat("a", t0); !ok {
		t.Errorf("Heartbeat(a) reported no transition from Unknown")
	}

	// Moving a machine keeps its state; a rack goes with its last machine.
	tr.Register("c", "r1")
	if got := tr.RackState("r2"); got != Unknown {
		t.Errorf("RackState(r2) after its last machine moved = %v, want Unknown", got)
	}
	tr.Register("a", "r3")
	if s, _ := tr.State("a"); s != Ready {
		t.Errorf("State(a) after moving to r3 = %v, want Ready", s)
	}
	if change, ok := tr.Heartbeat("c", t0); !ok || change.Rack != "r1" {
		t.Errorf("Heartbeat(c) = %v, %v; want a transition in rack r1", change, ok)
	}

	if !tr.Forget("a") {
		t.Errorf("Forget(a) = false, want true")
	}
	if tr.Forget("a") {
		t.Errorf("Forget(a) again = true, want false")
	}
	if tr.Known("a") {
		t.Errorf("Known(a) after Forget = true")
	}
	if _, ok := tr.Heartbeat("a", t0.Add(sec)); ok {
		t.Errorf("Heartbeat(a) after Forget reported a transition")
	}
	if tr.ReportBMC("a", Evidence{At: t0, PowerOff: true}) {
		t.Errorf("ReportBMC(a) after Forget = true, want false")
	}
	if got, want := tr.Stats(), (Stats{Machines: 2, Racks: 1, ByState: [numStates]int{Unknown: 1, Ready: 1}, Unregistered: 1, Transitions: 2}); got != want {
		t.Errorf("Stats() = %+v, want %+v", got, want)
	}
	if got := tr.RackState("r3"); got != Unknown {
		t.Errorf("RackState(r3) after Forget(a) = %v, want Unknown", got)
	}

	// Registered again, a machine starts over.
	tr.Register("a", "r1")
	if s, _ := tr.State("a"); s != Unknown {
		t.Errorf("State(a) registered again = %v, want Unknown", s)
	}
	// Forgotten machines are not in Tick, and swapping in a rack keeps the
	// others.
	tr.Forget("b")
	tr.Tick(t0)
	changes, _ := tr.Tick(t0.Add(time.Minute))
	var got []string
	for _, c := range changes {
		got = append(got, c.Machine)
	}
	if diff := cmp.Diff([]string{"c", "a"}, got); diff != "" {
		t.Errorf("Tick transitions by machine (-want +got):\n%s", diff)
	}
}

func TestConfig(t *testing.T) {
	tests := []struct {
		cfg  Config
		want string // in the error; "" for none
	}{
		{Config{}, ""},
		{DefaultConfig(), ""},
		{Config{NotReadyAfter: 5 * sec, FailedAfter: 5 * sec}, ""},
		{Config{NotReadyAfter: 3 * time.Minute}, "FailedAfter 40s is shorter than NotReadyAfter 3m0s"},
		{Config{NotReadyAfter: -sec}, "NotReadyAfter -1s is less than 1µs"},
		{Config{AskEvery: time.Nanosecond}, "AskEvery 1ns is less than 1µs"},
		{Config{PartitionMin: -1}, "PartitionMin -1 is less than 1"},
	}
	for _, tt := range tests {
		got := ""
		if err := tt.cfg.Validate(); err != nil {
			got = err.Error()
		}
		if tt.want == "" && got != "" || !strings.Contains(got, tt.want) {
			t.Errorf("%+v.Validate() = %q, want %q", tt.cfg, got, tt.want)
		}
	}
	if got, want := New(Config{PartitionMin: 3}).Config(), (Config{NotReadyAfter: 30 * sec, FailedAfter: 40 * sec, PartitionWindow: 30 * sec, PartitionMin: 3, AskEvery: 30 * sec}); got != want {
		t.Errorf("New(PartitionMin 3).Config() = %+v, want %+v", got, want)
	}
	defer func() {
		if recover() == nil {
			t.Errorf("New with FailedAfter < NotReadyAfter did not panic")
		}
	}()
	New(Config{NotReadyAfter: time.Hour})
}

func TestStateString(t *testing.T) {
	for s, want := range map[State]string{Unknown: "Unknown", Ready: "Ready", NotReady: "NotReady", Unreachable: "Unreachable", Failed: "Failed", 9: "State(9)"} {
		if got := s.String(); got != want {
			t.Errorf("State(%d).String() = %q, want %q", s, got, want)
		}
	}
}

// TestIndexChurn registers and forgets machines over and over: the index
// finds exactly the registered ones and does not grow with the churn.
func TestIndexChurn(t *testing.T) {
	tr := New(Config{})
	name := func(i int) string { return fmt.Sprintf("m%d", i) }
	const live = 1000
	for i := range live {
		tr.Register(name(i), "r1")
	}
	for i := live; i < 100*live; i++ {
		tr.Forget(name(i - live))
		tr.Register(name(i), "r1")
	}
	for i := range 100 * live {
		if got, want := tr.Known(name(i)), i >= 99*live; got != want {
			t.Fatalf("Known(%s) = %v, want %v", name(i), got, want)
		}
	}
	if got := len(tr.index.Load().slots); got > 8*live {
		t.Errorf("index of %d slots for %d machines after churn", got, live)
	}
	if got := tr.Stats().Machines; got != live {
		t.Errorf("Stats().Machines = %d, want %d", got, live)
	}
}
