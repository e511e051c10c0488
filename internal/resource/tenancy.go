package resource

import (
	"context"
	"errors"
	"slices"
	"strings"

	"github.com/citadel-cloud/citadel/internal/arm"
	"github.com/citadel-cloud/citadel/internal/store"
)

// CreateTenancy stores a tenant and a subscription in it, unless the
// tenant exists already: it is safe on every start of every replica.
func (s *Service) CreateTenancy(ctx context.Context, t Tenant, sub Subscription) error {
	_, err := s.store.Txn(ctx,
		tenants.Create(strings.ToLower(t.ID), t),
		subscriptions.Create(strings.ToLower(sub.ID), sub),
	)
	if errors.Is(err, store.ErrConflict) {
		return nil
	}
	return err
}

// Tenants lists the tenants.
func (s *Service) Tenants(ctx context.Context) ([]Tenant, error) {
	items, _, err := tenants.List(ctx, s.store, "", "", 0)
	if err != nil {
		return nil, err
	}
	out := make([]Tenant, len(items))
	for i, it := range items {
		out[i] = it.Value
	}
	return out, nil
}

// Subscriptions lists the subscriptions, sorted by id.
func (s *Service) Subscriptions(ctx context.Context) ([]Subscription, error) {
	items, _ := s.subs.All()
	out := make([]Subscription, len(items))
	for i, it := range items {
		out[i] = it.Value
	}
	slices.SortFunc(out, func(a, b Subscription) int { return strings.Compare(a.ID, b.ID) })
	return out, nil
}

// Subscription returns one subscription from memory: every request asks.
func (s *Service) Subscription(_ context.Context, id string) (Subscription, error) {
	it, ok := s.subs.Get(strings.ToLower(id))
	if !ok {
		return Subscription{}, arm.SubscriptionNotFound(id)
	}
	return it.Value, nil
}
