package liveness

import (
	"fmt"
	"time"
)

// Tick applies the rules at now; the caller calls it every second or so.
// It returns the transitions of racks and machines, each rack's before its
// machines', and askBMC: the machines whose BMC the caller should ask about
// their power, without blocking Tick, and report on with ReportBMC. A
// machine is asked about when it becomes NotReady and again every AskEvery
// while it stays NotReady without corroborating evidence. When nothing
// changes Tick does not allocate.
func (t *Tracker) Tick(now time.Time) (changes []Transition, askBMC []string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	us := micros(now)
	for _, r := range t.order {
		changes, askBMC = t.tickRack(r, now, us, changes, askBMC)
	}
	t.transitions += uint64(len(changes))
	return changes, askBMC
}

// tickRack decides whether the rack is partitioned, then moves its
// machines. A rack is partitioned when at least PartitionMin and at least
// half of its machines that are not Failed fell silent recently: within
// the last PartitionWindow, or since the window in which the partition
// began while it lasts.
func (t *Tracker) tickRack(r *rack, now time.Time, us int64, changes []Transition, ask []string) ([]Transition, []string) {
	cutoff := us - t.notReady - t.window
	if r.partitioned {
		cutoff = r.cutoff
	}
	live, silent, busy := 0, 0, false
	for _, m := range r.machines {
		last, s := t.watch(m, us)
		if s == Failed {
			continue
		}
		live++
		if us-last >= t.notReady {
			busy = true
			if last >= cutoff {
				silent++
			}
		}
	}
	if partitioned := r.name != "" && silent >= t.cfg.PartitionMin && 2*silent >= live; partitioned != r.partitioned {
		tr := Transition{Rack: r.name, From: Ready, To: Unreachable, At: now,
			Reason: fmt.Sprintf("rack %s: %d of %d machines silent: partition", r.name, silent, live)}
		if partitioned {
			r.cutoff = cutoff
		} else {
			tr.From, tr.To = Unreachable, Ready
			tr.Reason += " over"
			r.healed = us
		}
		r.partitioned = partitioned
		changes = append(changes, tr)
	}
	if !busy {
		return changes, ask
	}
	for _, m := range r.machines {
		tr, changed, asking := t.tickMachine(m, r, now, us)
		if changed {
			changes = append(changes, tr)
		}
		if asking {
			ask = append(ask, m.name)
		}
	}
	return changes, ask
}

// watch returns the machine's time and state, first stamping an Unknown
// machine that Tick has not seen yet with now, the start of its watch.
func (t *Tracker) watch(m *machine, us int64) (int64, State) {
	for {
		w := m.word.Load()
		last, s, heard := unpack(w)
		if heard || last != 0 {
			return last, s
		}
		if m.word.CompareAndSwap(w, pack(us, Unknown, false)) {
			return us, Unknown
		}
	}
}

// tickMachine moves a silent machine to NotReady, Unreachable or Failed.
// Only a heartbeat moves a machine out of Failed.
func (t *Tracker) tickMachine(m *machine, r *rack, now time.Time, us int64) (tr Transition, changed, ask bool) {
	for {
		w := m.word.Load()
		last, from, heard := unpack(w)
		quiet := us - last
		if from == Failed || quiet < t.notReady {
			return Transition{}, false, false
		}
		to := NotReady
		if r.partitioned {
			to = Unreachable
		} else {
			// The grace and the evidence count from the last heartbeat or
			// from the end of the rack's partition, whichever is later:
			// what a BMC said during the partition proves nothing.
			since := max(last, r.healed)
			corroborated := m.evAt > since && m.ev != 0
			switch {
			case corroborated && us-since >= t.failed:
				to = Failed
			case !corroborated && (m.asked <= since || us-m.asked >= t.askEvery):
				ask = true
			}
		}
		if to == from {
			break
		}
		if !m.word.CompareAndSwap(w, pack(last, to, heard)) {
			ask = false
			continue // a heartbeat came in: look again
		}
		why := silence(heard, quiet)
		switch {
		case to == Unreachable:
			why = "rack " + r.name + " unreachable: " + why
		case from == Unreachable:
			why = "rack " + r.name + " reachable again: " + why
		case to == NotReady:
		case m.ev&evPowerOff != 0:
			why += "; BMC reports power Off"
		default:
			why += "; BMC unreachable"
		}
		tr, changed = Transition{Machine: m.name, Rack: r.name, From: from, To: to, At: now, Reason: why}, true
		break
	}
	if ask {
		m.asked = us
	}
	return tr, changed, ask
}

// silence says how long a machine has been silent, in whole seconds.
func silence(heard bool, us int64) string {
	d := time.Duration(us) * time.Microsecond
	if d >= time.Second {
		d = d.Round(time.Second)
	}
	if !heard {
		return fmt.Sprintf("no heartbeat in %v since tracking began", d)
	}
	return "no heartbeat for " + d.String()
}
