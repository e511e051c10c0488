package resource

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/citadel-cloud/citadel/internal/arm"
	"github.com/citadel-cloud/citadel/internal/audit"
	"github.com/citadel-cloud/citadel/internal/controller"
	"github.com/citadel-cloud/citadel/internal/store"
)

// maxAttempts bounds the retries of a failing operation: after that it
// ends Failed rather than staying InProgress for ever.
const maxAttempts = 8

// Task is the work of one operation, handed to Provision, Deprovision and
// action runners.
type Task struct {
	Op *Operation
	// Resource is the stored resource; changes a provider makes to its
	// properties (status fields, say) are saved when the task succeeds.
	Resource *Resource
	svc      *Service
	opRev    int64
	rec      *record // the stored record of Resource, and its revision
	recRev   int64
	// parent is set for the part of a larger task (one resource of a group
	// being deleted), whose progress maps into [lo, hi] of the parent's.
	parent *Task
	lo, hi float64
	// progressMu serialises Progress, which a provider may call from the
	// goroutines that share the work.
	progressMu sync.Mutex
}

// Input decodes the action's request body into v.
func (t *Task) Input(v any) error { return arm.DecodeStrict(t.Op.Input, v) }

// Note adds key=value to the properties of the activity-log record of the
// operation's end: what the work decided that an auditor must see (a
// safeguard overridden, say).
func (t *Task) Note(key, value string) {
	if t.Op.Audit == nil {
		return
	}
	if t.Op.Audit.Properties == nil {
		t.Op.Audit.Properties = map[string]string{}
	}
	t.Op.Audit.Properties[key] = value
}

// CorrelationID is the correlation id of the request that started the
// operation, or the operation's id when there is none.
func (t *Task) CorrelationID() string {
	if t.Op.Audit != nil && t.Op.Audit.CorrelationID != "" {
		return t.Op.Audit.CorrelationID
	}
	return t.Op.ID
}

// Save writes the task's resource as it is now, so that clients see the
// work's progress (a machine's detailedStatus, say) before it ends. A
// change somebody else made meanwhile (new tags) is kept; the task's
// properties win.
func (t *Task) Save(ctx context.Context) error {
	if t.rec == nil {
		return nil // part of a larger task: its resource is going away
	}
	rev, err := t.svc.saveRecord(ctx, t.Op, t.rec, t.recRev, nil)
	if errors.Is(err, errSuperseded) {
		return controller.Terminal(err)
	}
	if err != nil {
		return err
	}
	t.recRev = rev
	return nil
}

// saveRecord writes rec (at rev) with ops, for the operation op that owns
// it. When the record changed since rev it reads it again and writes the
// current envelope with rec's properties, as long as op still owns it:
// all but the type's Reported ones, whose stored values it keeps.
func (s *Service) saveRecord(ctx context.Context, op *Operation, rec *record, rev int64, ops []store.Op) (int64, error) {
	key := storeKey(mustParseID(rec.Resource.ID))
	for {
		newRev, err := s.store.Txn(ctx, append([]store.Op{resources.Update(key, *rec, rev)}, ops...)...)
		if !errors.Is(err, store.ErrConflict) {
			return newRev, err
		}
		it, err := resources.Get(ctx, s.store, key)
		if err != nil {
			return 0, err
		}
		if it.Value.OperationID != op.ID {
			return 0, errSuperseded
		}
		if it.Revision == rev {
			return 0, store.ErrConflict // the conflict was elsewhere: the caller reads again
		}
		s.rebase(rec, it.Value) // rec keeps its operation, cleared when op is ending
		rev = it.Revision
	}
}

// rebase makes rec the stored record with rec's properties, but for the
// type's Reported ones, which it takes as stored. rec keeps its
// operation.
func (s *Service) rebase(rec *record, stored record) {
	props, owner := rec.Resource.Properties, rec.OperationID
	if t, ok := s.types.lookup(stored.Resource.Type); ok {
		for _, k := range t.Reported {
			if v, ok := stored.Resource.Properties[k]; ok {
				props[k] = v
			} else {
				delete(props, k)
			}
		}
	}
	*rec = stored
	rec.Resource.Properties, rec.OperationID = props, owner
}

// Refresh reads the task's resource again, as Save does after a
// conflict: the type's Reported properties as stored, the task's own
// changes to the others kept. A provider that waited for what a host
// reports calls it, so that the task ends at the revision the report
// wrote instead of conflicting with it and writing again.
func (t *Task) Refresh(ctx context.Context) error {
	if t.rec == nil {
		return nil // part of a larger task: its resource is going away
	}
	it, err := resources.Get(ctx, t.svc.store, storeKey(mustParseID(t.rec.Resource.ID)))
	if errors.Is(err, store.ErrNotFound) {
		return Canceled(canceled("The resource was deleted before the operation completed.").err)
	}
	if err != nil {
		return err
	}
	if it.Value.OperationID != t.Op.ID {
		return controller.Terminal(errSuperseded)
	}
	t.svc.rebase(t.rec, it.Value)
	t.recRev = it.Revision
	return nil
}

var errSuperseded = errors.New("a later request on the resource superseded this operation")

func mustParseID(s string) arm.ID {
	id, _ := arm.ParseID(s)
	return id
}

// Progress records how far the operation has come, 0-100; it never goes
// back. It is best effort: a failure to record progress does not fail the
// work. It is safe to call from several goroutines.
func (t *Task) Progress(ctx context.Context, percent float64) {
	percent = min(max(percent, 0), 100)
	if t.parent != nil {
		t.parent.Progress(ctx, t.lo+percent*(t.hi-t.lo)/100)
		return
	}
	t.progressMu.Lock()
	defer t.progressMu.Unlock()
	if percent <= t.Op.PercentComplete {
		return
	}
	op := *t.Op
	op.PercentComplete = min(max(percent, 0), 100)
	rev, err := t.svc.store.Txn(ctx, operations.Update(op.ID, op, t.opRev))
	if err != nil {
		t.svc.log.DebugContext(ctx, "progress not recorded", "operation", op.ID, "err", err)
		return
	}
	*t.Op, t.opRev = op, rev
}

// RunOperations runs the operations controller until ctx ends: on the
// replica that wins the election it finishes every operation in flight,
// including those a crashed replica left behind. The leader of another
// election sweeps operations that ended more than OperationRetention ago.
func (s *Service) RunOperations(ctx context.Context, replicaID string) error {
	go s.store.Lead(ctx, "operations-sweeper", replicaID, func(ctx context.Context) { s.sweepEvery(ctx, time.Hour) })
	return controller.Run(ctx, controller.Config{
		Name:      "operations",
		ReplicaID: replicaID,
		Store:     s.store,
		Prefix:    activeOps.Prefix(),
		// An operation's marker goes when it ends.
		IgnoreDeletions: true,
		Workers:         s.workers,
		Reconcile:       s.reconcileOperation,
		Logger:          s.log,
	})
}

func (s *Service) reconcileOperation(ctx context.Context, id string) error {
	opIt, err := operations.Get(ctx, s.store, id)
	if errors.Is(err, store.ErrNotFound) {
		return s.forgetActive(ctx, id)
	}
	if err != nil {
		return err
	}
	op := opIt.Value
	if op.Done() {
		return s.forgetActive(ctx, id)
	}
	rid, err := arm.ParseID(op.ResourceID)
	if err != nil {
		return s.finish(ctx, &op, opIt.Revision, nil, 0, failure(err))
	}
	key := storeKey(rid)
	recIt, err := resources.Get(ctx, s.store, key)
	switch {
	case errors.Is(err, store.ErrNotFound) && op.Kind == "delete":
		return s.finish(ctx, &op, opIt.Revision, nil, 0, nil)
	case errors.Is(err, store.ErrNotFound):
		return s.finish(ctx, &op, opIt.Revision, nil, 0, canceled("The resource was deleted before the operation completed."))
	case err != nil:
		return err
	}
	rec := recIt.Value
	if rec.OperationID != op.ID {
		return s.finish(ctx, &op, opIt.Revision, nil, 0, canceled("A later request on the resource superseded this operation."))
	}
	t, ok := s.types.lookup(rec.Resource.Type)
	if !ok {
		return s.finish(ctx, &op, opIt.Revision, &rec, recIt.Revision, failure(fmt.Errorf("type %s is no longer served", rec.Resource.Type)))
	}
	task := &Task{Op: &op, Resource: &rec.Resource, svc: s, opRev: opIt.Revision, rec: &rec, recRev: recIt.Revision}
	rec.Resource.Properties = maps.Clone(rec.Resource.Properties)
	result, workErr := s.runTask(ctx, t, task)
	if workErr != nil && ctx.Err() != nil {
		// This replica is stopping or lost the leadership: the work was
		// interrupted, not failed. The next leader runs it again.
		return ctx.Err()
	}
	if workErr != nil {
		s.log.WarnContext(ctx, "operation work failed", "operation", op.ID, "kind", op.Kind,
			"resource", op.ResourceID, "attempt", op.Attempts+1, "err", workErr)
		if !controller.IsTerminal(workErr) && op.Attempts+1 < maxAttempts {
			op.Attempts++
			if _, err := s.store.Txn(ctx, operations.Update(op.ID, op, task.opRev)); err != nil {
				return err
			}
			return workErr
		}
		return s.finish(ctx, &op, task.opRev, &rec, task.recRev, failure(workErr))
	}
	if result != nil {
		b, err := json.Marshal(result)
		if err != nil {
			return s.finish(ctx, &op, task.opRev, &rec, task.recRev, failure(err))
		}
		op.Result = b
	}
	return s.finish(ctx, &op, task.opRev, &rec, task.recRev, nil)
}

func (s *Service) runTask(ctx context.Context, t *Type, task *Task) (any, error) {
	switch task.Op.Kind {
	case "put", "patch":
		if t.Provision != nil {
			return nil, t.Provision(ctx, task)
		}
	case "delete":
		if t.Deprovision != nil {
			return nil, t.Deprovision(ctx, task)
		}
	case "action":
		for name, a := range t.Actions {
			if strings.EqualFold(name, task.Op.Action) {
				return a.Run(ctx, task)
			}
		}
		return nil, controller.Terminal(fmt.Errorf("action %q is no longer served", task.Op.Action))
	}
	return nil, nil
}

// forgetActive removes the active marker of operation id, which is gone
// or has ended, if the marker is still there. The end of an operation
// removes its marker itself, and that removal is what wakes the
// controller for it once more: reading the marker costs less than a
// transaction that deletes nothing.
func (s *Service) forgetActive(ctx context.Context, id string) error {
	_, err := s.store.Get(ctx, activeOps.Key(id))
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	_, err = s.store.Txn(ctx, activeOps.Delete(id))
	return err
}

// opEnd is how an operation ended when it did not succeed.
type opEnd struct {
	status string
	err    *arm.Error
}

func canceled(msg string) *opEnd {
	return &opEnd{status: OpCanceled, err: arm.Errorf(http.StatusConflict, "OperationCanceled", "%s", msg)}
}

// cancellation is the error of work that stopped because a user canceled it.
type cancellation struct{ err *arm.Error }

func (c cancellation) Error() string { return c.err.Error() }
func (c cancellation) Unwrap() error { return c.err }

// Canceled is what a provider's work returns when a user canceled it (a
// deployment's cancel): the operation ends Canceled, not Failed, with err,
// and is not retried.
func Canceled(err *arm.Error) error { return controller.Terminal(cancellation{err}) }

// failure turns a provider's error into the operation's: an *arm.Error is
// passed on as it is; anything else is reported without internal details,
// which reconcileOperation has logged.
func failure(err error) *opEnd {
	var c cancellation
	if errors.As(err, &c) {
		return &opEnd{status: OpCanceled, err: c.err}
	}
	var ae *arm.Error
	if errors.As(err, &ae) {
		return &opEnd{status: OpFailed, err: ae}
	}
	return &opEnd{status: OpFailed, err: arm.Errorf(http.StatusInternalServerError, "InternalOperationError",
		"The operation failed because of an internal error. The operator can find the cause in the server log under this operation's id.")}
}

// finish ends an operation and applies its outcome to the resource in one
// transaction. rec is nil when the resource is gone.
func (s *Service) finish(ctx context.Context, op *Operation, opRev int64, rec *record, recRev int64, end *opEnd) error {
	op.EndTime = s.now().UTC()
	ops := []store.Op{activeOps.Delete(op.ID)}
	if end == nil {
		op.Status, op.PercentComplete = OpSucceeded, 100
	} else {
		op.Status, op.Error, op.ErrorStatus = end.status, end.err, end.err.Status
	}
	keep := false // whether rec is saved with the operation's end
	if rec != nil && rec.OperationID == op.ID {
		rid, _ := arm.ParseID(rec.Resource.ID)
		key := storeKey(rid)
		switch {
		case op.Kind == "delete" && end == nil:
			t, _ := s.types.lookup(rec.Resource.Type)
			del, err := s.deleteOps(ctx, t, rid, rec.Claims)
			if err != nil {
				return err
			}
			ops = append(ops, resources.DeleteAt(key, recRev))
			ops = append(ops, del...)
		default:
			keep = true
			rec.OperationID = ""
			if op.Kind != "action" {
				state := StateSucceeded
				switch {
				case end != nil && end.status == OpCanceled:
					state = StateCanceled
				case end != nil:
					state = StateFailed
				}
				rec.Resource.Properties["provisioningState"] = state
			}
		}
	}
	ops = append(ops, operations.Update(op.ID, *op, opRev))
	outcome := audit.StatusSucceeded
	if end != nil {
		outcome = audit.StatusFailed
	}
	ops = append(ops, s.auditOps(progress(op.Audit), op.ResourceID, outcome, 0)...)
	var err error
	if keep {
		// A change somebody made to the resource meanwhile (new tags) is
		// merged rather than failing the operation's end.
		_, err = s.saveRecord(ctx, op, rec, recRev, ops)
		if errors.Is(err, errSuperseded) {
			return s.finish(ctx, op, opRev, nil, 0, canceled("A later request on the resource superseded this operation."))
		}
	} else {
		_, err = s.store.Txn(ctx, ops...)
	}
	if err != nil {
		return err // a conflict is retried with fresh reads
	}
	s.log.InfoContext(ctx, "operation ended", "operation", op.ID, "kind", op.Kind, "resource", op.ResourceID,
		"status", op.Status, "took", op.EndTime.Sub(op.StartTime))
	return nil
}

// operationStatus is the body of the Azure-AsyncOperation URL and, for
// actions, of the final Location answer (OperationStatusResult).
type operationStatus struct {
	ID              string          `json:"id"`
	Name            string          `json:"name"`
	ResourceID      string          `json:"resourceId,omitempty"`
	Status          string          `json:"status"`
	StartTime       time.Time       `json:"startTime"`
	EndTime         *time.Time      `json:"endTime,omitempty"`
	PercentComplete float64         `json:"percentComplete"`
	Error           *arm.Error      `json:"error,omitempty"`
	Properties      json.RawMessage `json:"properties,omitempty"`
}

// loadOperation reads an operation for the caller of req, who must have
// started it or be allowed to read its resource.
func (s *Service) loadOperation(ctx context.Context, req *Request, subscription, id string) (*Operation, error) {
	notFound := arm.Errorf(http.StatusNotFound, "OperationNotFound", "The operation '%s' could not be found.", id)
	it, err := operations.Get(ctx, s.store, id)
	if errors.Is(err, store.ErrNotFound) || err == nil && !strings.EqualFold(it.Value.Subscription, subscription) {
		return nil, notFound
	}
	if err != nil {
		return nil, err
	}
	op := it.Value
	if req.CanRead != nil && op.Caller.ObjectID != req.Caller.ObjectID {
		rid, err := arm.ParseID(op.ResourceID)
		if err != nil || !req.CanRead(rid.Type(), op.ResourceID) {
			return nil, notFound
		}
	}
	if op.Error != nil {
		op.Error.Status = op.ErrorStatus
	}
	return &op, nil
}

func statusBody(op *Operation) *operationStatus {
	st := &operationStatus{
		ID:              fmt.Sprintf("/subscriptions/%s/providers/%s/locations/%s/operationStatuses/%s", op.Subscription, op.Namespace, op.Location, op.ID),
		Name:            op.ID,
		ResourceID:      op.ResourceID,
		Status:          op.Status,
		StartTime:       op.StartTime,
		PercentComplete: op.PercentComplete,
		Error:           op.Error,
	}
	if op.Done() {
		end := op.EndTime
		st.EndTime = &end
	}
	if op.Status == OpSucceeded {
		st.Properties = op.Result
	}
	return st
}

// OperationStatus answers the Azure-AsyncOperation URL: always 200 with
// the status.
func (s *Service) OperationStatus(ctx context.Context, req *Request, subscription, id string) (*Response, error) {
	op, err := s.loadOperation(ctx, req, subscription, id)
	if err != nil {
		return nil, err
	}
	resp := &Response{Status: http.StatusOK, Body: statusBody(op), Header: http.Header{}}
	if !op.Done() {
		// Without it az waits 30 s before polling again.
		resp.Header.Set("Retry-After", "1")
	}
	return resp, nil
}

// OperationResult answers the Location URL: 202 while running, then what
// the synchronous call would have returned, or the error.
func (s *Service) OperationResult(ctx context.Context, req *Request, subscription, id string) (*Response, error) {
	op, err := s.loadOperation(ctx, req, subscription, id)
	if err != nil {
		return nil, err
	}
	switch op.Status {
	case OpInProgress:
		h := http.Header{}
		h.Set("Location", s.resultURL(req, op))
		h.Set("Retry-After", "1")
		return &Response{Status: http.StatusAccepted, Header: h}, nil
	case OpSucceeded:
	default:
		return nil, op.Error
	}
	switch op.Kind {
	case "delete":
		return &Response{Status: http.StatusNoContent}, nil
	case "action":
		return &Response{Status: http.StatusOK, Body: statusBody(op)}, nil
	}
	rid, err := arm.ParseID(op.ResourceID)
	if err != nil {
		return nil, err
	}
	get := *req
	get.ID, get.APIVersion = rid, op.APIVersion
	return s.Get(ctx, &get)
}

// DeleteContents deletes every resource inside the resource that t is
// deleting (a resource group, typically), running each one's Deprovision
// first. It reports progress and can run again after a crash.
func (s *Service) DeleteContents(ctx context.Context, t *Task) error {
	scope, err := arm.ParseID(t.Resource.ID)
	if err != nil {
		return err
	}
	var top []store.Item[record]
	for _, typ := range s.types.inKeyOrder() {
		if strings.Contains(typ.Name, "/") || strings.EqualFold(typ.FullName(), t.Resource.Type) {
			continue
		}
		items, _, err := resources.List(ctx, s.store, strings.ToLower(typ.FullName())+"|"+scope.Key()+"/", "", 0)
		if err != nil {
			return err
		}
		top = append(top, items...)
	}
	for i, it := range top {
		rid, err := arm.ParseID(it.Value.Resource.ID)
		if err != nil {
			return err
		}
		typ, ok := s.types.lookup(it.Value.Resource.Type)
		if !ok {
			continue
		}
		if typ.Deprovision != nil {
			n := float64(len(top) + 1)
			sub := &Task{Op: t.Op, Resource: &it.Value.Resource, svc: s, parent: t,
				lo: float64(i) * 100 / n, hi: float64(i+1) * 100 / n}
			if err := typ.Deprovision(ctx, sub); err != nil {
				return fmt.Errorf("delete %s: %w", it.Value.Resource.ID, err)
			}
		}
		var record []store.Op
		if info := progress(t.Op.Audit); info != nil {
			info.OperationName = typ.FullName() + "/delete"
			record = s.auditOps(info, it.Value.Resource.ID, audit.StatusSucceeded, 0)
		}
		if err := s.remove(ctx, typ, rid, record...); err != nil {
			return err
		}
		t.Progress(ctx, float64(i+1)*100/float64(len(top)+1))
	}
	return nil
}

// progress is the record template for the progress of an operation
// started by the request info describes: no HTTP method, same
// correlation.
func progress(info *audit.EventInfo) *audit.EventInfo {
	if info == nil {
		return nil
	}
	p := *info
	p.Method, p.ClientRequestID = "", ""
	return &p
}

// OperationRetention is how long an ended operation's status stays
// readable; ARM clients poll within minutes.
const OperationRetention = 7 * 24 * time.Hour

// SweepOperations deletes the operations that ended before cutoff, so that
// the store does not grow with every request ever made. It returns how
// many it deleted.
func (s *Service) SweepOperations(ctx context.Context, cutoff time.Time) (int, error) {
	deleted, after := 0, ""
	for {
		items, more, err := operations.List(ctx, s.store, "", after, 500)
		if err != nil {
			return deleted, err
		}
		var ops []store.Op
		for _, it := range items {
			after = it.Name
			if it.Value.Done() && it.Value.EndTime.Before(cutoff) {
				ops = append(ops, operations.DeleteAt(it.Name, it.Revision))
			}
		}
		for len(ops) > 0 {
			n := min(len(ops), 100)
			if _, err := s.store.Txn(ctx, ops[:n]...); err != nil && !errors.Is(err, store.ErrConflict) {
				return deleted, err
			} else if err == nil {
				deleted += n
			}
			ops = ops[n:]
		}
		if !more {
			return deleted, nil
		}
	}
}

// sweepEvery sweeps ended operations every period until ctx ends.
func (s *Service) sweepEvery(ctx context.Context, period time.Duration) {
	for {
		if n, err := s.SweepOperations(ctx, s.now().Add(-OperationRetention)); err != nil && ctx.Err() == nil {
			s.log.WarnContext(ctx, "sweeping ended operations failed", "err", err)
		} else if n > 0 {
			s.log.InfoContext(ctx, "ended operations swept", "count", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(period):
		}
	}
}

// ActiveOperations counts the operations in flight.
func (s *Service) ActiveOperations(ctx context.Context) (int, error) {
	items, _, err := activeOps.List(ctx, s.store, "", "", 0)
	return len(items), err
}
