package networkcloud

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/citadel-cloud/citadel/internal/arm"
	"github.com/citadel-cloud/citadel/internal/controller"
	"github.com/citadel-cloud/citadel/internal/machine"
	"github.com/citadel-cloud/citadel/internal/resource"
)

type deployInput struct {
	SkipValidationsForMachines []string `json:"skipValidationsForMachines"`
}

const deployAction = clusterType + "/deploy/action"

// deployOwned are the machine properties a deploy writes; it leaves the
// others (a user's machineDetails) as they are.
var deployOwned = []string{"actionStates", "detailedStatus", "detailedStatusMessage", "hardwareInventory",
	"hardwareValidationStatus", "serviceTag", "powerState", "osImage", "machineClusterVersion", "readyState"}

func (p *Provider) validateDeploy(ctx context.Context, r *resource.Resource, input json.RawMessage) error {
	var in deployInput
	if err := arm.DecodeStrict(input, &in); err != nil {
		return err
	}
	machines, err := p.clusterMachines(ctx, r)
	if err != nil {
		return err
	}
	for i, name := range in.SkipValidationsForMachines {
		if !slices.ContainsFunc(machines, func(m *resource.Resource) bool { return strings.EqualFold(m.Name, name) }) {
			return arm.FieldError(fmt.Sprintf("skipValidationsForMachines[%d]", i), "The cluster has no machine named '%s'.", name)
		}
	}
	return nil
}

// deploy brings every machine of the cluster up: reach its BMC, validate
// its hardware against its SKU, and install the cluster version's OS. The
// cluster is Running when the compute deployment threshold is met and
// every control-plane machine is up. Machines already provisioned with the
// cluster's version are left alone, so a deploy resumed after a crash, or
// asked again, finishes what is missing.
func (p *Provider) deploy(ctx context.Context, t *resource.Task) (any, error) {
	var in deployInput
	if err := t.Input(&in); err != nil {
		return nil, controller.Terminal(err)
	}
	id, err := arm.ParseID(t.Resource.ID)
	if err != nil {
		return nil, err
	}
	var c clusterProperties
	if err := decode(t.Resource.Properties, &c); err != nil {
		return nil, err
	}
	machines, err := p.inCluster(ctx, id, machineType)
	if err != nil {
		return nil, err
	}
	tr := startTracking(ctx, t.Resource, t.Save, deployAction, t.CorrelationID())
	set(t.Resource.Properties, map[string]any{"detailedStatus": "Deploying",
		"detailedStatusMessage": fmt.Sprintf("Deploying %d machines.", len(machines))})
	tr.step(ctx, "Validate hardware and provision the machines")

	outcomes := make([]machine.Outcome, len(machines))
	// One goroutine records progress, so that the workers never wait for
	// it; machines that end while it writes are counted in its next write.
	var done atomic.Int64
	ended := make(chan struct{}, 1)
	reported := make(chan struct{})
	go func() {
		defer close(reported)
		for range ended {
			t.Progress(ctx, float64(done.Load())*95/float64(len(machines)))
		}
	}()
	work := make(chan int)
	var wg sync.WaitGroup
	for range min(p.cfg.Parallelism, len(machines)) {
		wg.Go(func() {
			for i := range work {
				m := machines[i]
				skip := containsFold(in.SkipValidationsForMachines, m.Name)
				outcomes[i] = p.deployMachine(ctx, m, c.ClusterVersion, skip, t.CorrelationID())
				done.Add(1)
				select {
				case ended <- struct{}{}:
				default: // a write is pending; it will count this machine
				}
			}
		})
	}
	for i := range machines {
		work <- i
	}
	close(work)
	wg.Wait()
	close(ended)
	<-reported
	if ctx.Err() != nil {
		return nil, ctx.Err() // interrupted: the next leader resumes
	}

	tr.step(ctx, "Evaluate the deployment threshold")
	ok, summary := p.evaluate(&c, machines, outcomes)
	if !ok {
		set(t.Resource.Properties, map[string]any{"detailedStatus": "Failed", "detailedStatusMessage": summary})
		err := arm.Errorf(http.StatusBadRequest, "DeploymentThresholdNotMet", "%s", summary)
		tr.end(err)
		return nil, controller.Terminal(err)
	}
	set(t.Resource.Properties, map[string]any{"detailedStatus": "Running", "detailedStatusMessage": summary})
	tr.message = summary
	tr.end(nil)
	return nil, nil
}

// evaluate applies the compute deployment threshold to the compute
// machines; every control-plane machine must succeed.
func (p *Provider) evaluate(c *clusterProperties, machines []*resource.Resource, outcomes []machine.Outcome) (bool, string) {
	th := machine.Threshold{Type: "PercentSuccess", Grouping: "PerCluster", Value: 100}
	if t := c.ComputeDeploymentThreshold; t != nil {
		th = machine.Threshold{Type: t.Type, Grouping: t.Grouping, Value: t.Value}
	}
	var compute []machine.Outcome
	var failed []string
	for i, o := range outcomes {
		var roles []string
		decode(machines[i].Properties["machineRoles"], &roles)
		if !o.OK {
			failed = append(failed, fmt.Sprintf("%s: %s", o.Machine, o.Reason))
			if slices.Contains(roles, "control-plane") {
				return false, fmt.Sprintf("The control-plane machine %s failed: %s", o.Machine, o.Reason)
			}
		}
		if !slices.Contains(roles, "control-plane") {
			compute = append(compute, o)
		}
	}
	met, summary := th.Evaluate(compute)
	if len(failed) > 0 {
		slices.Sort(failed)
		summary += " Failed machines: " + strings.Join(failed, "; ")
	}
	return met, summary
}

// deployMachine brings one machine up and says how it went.
func (p *Provider) deployMachine(ctx context.Context, m *resource.Resource, version string, skipValidation bool, correlationID string) machine.Outcome {
	out := machine.Outcome{Machine: m.Name, Rack: str(m.Properties, "rackId")}
	id, err := arm.ParseID(m.ID)
	if err != nil {
		out.Reason = err.Error()
		return out
	}
	if str(m.Properties, "detailedStatus") == "Provisioned" && str(m.Properties, "machineClusterVersion") == version {
		out.OK = true
		return out
	}
	r := *m
	r.Properties = maps.Clone(m.Properties)
	persist := func(ctx context.Context) error {
		_, err := p.svc.Upsert(ctx, id, func(cur *resource.Resource, created bool) error {
			if created {
				return resource.ErrUnchanged // removed meanwhile
			}
			for _, k := range deployOwned {
				if v, ok := r.Properties[k]; ok {
					cur.Properties[k] = v
				}
			}
			return nil
		})
		return err
	}
	tr := startTracking(ctx, &r, persist, deployAction, correlationID)
	set(r.Properties, map[string]any{"detailedStatus": "Preparing", "detailedStatusMessage": "Validating the hardware."})
	err = p.deployOne(ctx, &r, version, skipValidation, tr)
	if ctx.Err() != nil {
		out.Reason = ctx.Err().Error()
		return out
	}
	tr.end(err)
	setReadyState(r.Properties)
	if perr := persist(context.WithoutCancel(ctx)); perr != nil && err == nil {
		err = perr
	}
	if err != nil {
		out.Reason = err.Error()
		return out
	}
	out.OK = true
	return out
}

func (p *Provider) deployOne(ctx context.Context, r *resource.Resource, version string, skipValidation bool, tr *tracker) error {
	bmc, err := p.connect(ctx, tr)
	if err != nil {
		return p.machineFailed(r, err)
	}
	defer bmc.close(ctx)
	tr.step(ctx, "Validate the hardware")
	if skipValidation {
		r.Properties["hardwareValidationStatus"] = map[string]any{"lastValidationTime": now(), "result": "Pass"}
	} else {
		ok, err := p.validateMachine(ctx, bmc, r)
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("%s", str(r.Properties, "detailedStatusMessage"))
		}
	}
	return p.provisionOS(ctx, bmc, version, tr)
}
