package authz

import (
	"strings"
	"testing"

	"github.com/citadel-cloud/citadel/internal/arm"
	"github.com/google/go-cmp/cmp"
)

func TestLockFor(t *testing.T) {
	var (
		subRO  = Lock{ID: sub + "/providers/Microsoft.Authorization/locks/ro", Scope: sub, Level: LockReadOnly}
		rg1CND = Lock{ID: rg1 + "/providers/Microsoft.Authorization/locks/keep", Scope: rg1, Level: LockCanNotDelete}
		rg1RO  = Lock{ID: rg1 + "/providers/Microsoft.Authorization/locks/ro", Scope: rg1, Level: LockReadOnly}
		vmCND  = Lock{ID: vm1 + "/providers/Microsoft.Authorization/locks/keep", Scope: strings.ToUpper(vm1), Level: LockCanNotDelete}
		vmRO   = Lock{ID: vm1 + "/providers/Microsoft.Authorization/locks/ro", Scope: vm1, Level: LockReadOnly}
	)
	const (
		rgDelete  = "Microsoft.Resources/subscriptions/resourceGroups/delete"
		conWrite  = "Microsoft.NetworkCloud/virtualMachines/consoles/write"
		conDelete = "Microsoft.NetworkCloud/virtualMachines/consoles/delete"
		vmStart   = "Microsoft.NetworkCloud/virtualMachines/start/action"
		lockWrite = "Microsoft.Authorization/locks/write"
		lockDel   = "Microsoft.Authorization/locks/delete"
		query     = "Microsoft.PolicyInsights/policyStates/queryResults/action"
	)
	tests := []struct {
		name   string
		locks  []Lock
		action string
		scope  string
		want   *Lock
	}{
		{"no locks", nil, vmDelete, vm1, nil},

		// CanNotDelete at each level, inherited downwards.
		{"group CanNotDelete deletes group", []Lock{rg1CND}, rgDelete, rg1, &rg1CND},
		{"group CanNotDelete deletes resource", []Lock{rg1CND}, vmDelete, vm1, &rg1CND},
		{"group CanNotDelete deletes child", []Lock{rg1CND}, conDelete, con1, &rg1CND},
		{"group CanNotDelete writes", []Lock{rg1CND}, vmWrite, vm1, nil},
		{"group CanNotDelete acts", []Lock{rg1CND}, vmStart, vm1, nil},
		{"group CanNotDelete reads", []Lock{rg1CND}, vmRead, vm1, nil},
		{"group CanNotDelete not sibling rg10", []Lock{rg1CND}, vmDelete, vm10, nil},
		{"group CanNotDelete not subscription", []Lock{rg1CND}, vmDelete, sub, nil},
		{"resource CanNotDelete", []Lock{vmCND}, vmDelete, vm1, &vmCND},
		{"resource CanNotDelete child", []Lock{vmCND}, conDelete, con1, &vmCND},
		{"resource CanNotDelete not group", []Lock{vmCND}, rgDelete, rg1, nil},

		// ReadOnly at each level, inherited downwards.
		{"subscription ReadOnly writes", []Lock{subRO}, vmWrite, vm1, &subRO},
		{"subscription ReadOnly deletes", []Lock{subRO}, rgDelete, rg2, &subRO},
		{"subscription ReadOnly acts", []Lock{subRO}, powerOff, bmm1, &subRO},
		{"subscription ReadOnly reads", []Lock{subRO}, vmRead, vm1, nil},
		{"subscription ReadOnly queries", []Lock{subRO}, query, sub, nil},
		{"subscription ReadOnly lock write", []Lock{subRO}, lockWrite, rg1, nil},
		{"subscription ReadOnly lock delete", []Lock{subRO}, lockDel, sub, nil},
		{"subscription ReadOnly other subscription", []Lock{subRO}, vmWrite, sub2, nil},
		{"group ReadOnly child", []Lock{rg1RO}, conWrite, con1, &rg1RO},
		{"group ReadOnly not sibling", []Lock{rg1RO}, vmWrite, vm10, nil},
		{"resource ReadOnly", []Lock{vmRO}, vmStart, vm1, &vmRO},
		{"resource ReadOnly child", []Lock{vmRO}, conWrite, con1, &vmRO},
		{"resource ReadOnly not group", []Lock{vmRO}, "Microsoft.Resources/subscriptions/resourceGroups/write", rg1, nil},

		// Several: the outermost lock that blocks.
		{"outermost", []Lock{vmCND, rg1CND}, vmDelete, vm1, &rg1CND},
		{"outermost that blocks", []Lock{vmRO, rg1CND}, vmWrite, vm1, &vmRO},
		{"case", []Lock{rg1CND}, strings.ToUpper(vmDelete), strings.ToUpper(vm1), &rg1CND},
		{"empty action", []Lock{subRO}, "", vm1, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newPolicy(t, nil, nil, tt.locks)
			got, ok := p.LockFor(tt.action, tt.scope)
			var gotp *Lock
			if ok {
				gotp = &got
			}
			if diff := cmp.Diff(tt.want, gotp); diff != "" {
				t.Errorf("LockFor(%q, %q) mismatch (-want +got):\n%s", tt.action, tt.scope, diff)
			}
		})
	}
}

func TestLockError(t *testing.T) {
	l := Lock{ID: rg1 + "/providers/Microsoft.Authorization/locks/keep", Scope: rg1, Level: LockCanNotDelete}
	tests := []struct {
		action string
		want   string
	}{
		{vmDelete, "The scope '" + vm1 + "' cannot perform delete operation because following scope(s) are locked: '" + rg1 + "'. Please remove the lock and try again."},
		{vmWrite, "The scope '" + vm1 + "' cannot perform write operation because following scope(s) are locked: '" + rg1 + "'. Please remove the lock and try again."},
		{"Microsoft.NetworkCloud/virtualMachines/start/action", "The scope '" + vm1 + "' cannot perform write operation because following scope(s) are locked: '" + rg1 + "'. Please remove the lock and try again."},
	}
	for _, tt := range tests {
		got := LockError(l, tt.action, vm1)
		want := &arm.Error{Status: 409, Code: "ScopeLocked", Message: tt.want}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("LockError(%q) mismatch (-want +got):\n%s", tt.action, diff)
		}
	}
}
