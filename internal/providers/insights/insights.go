// Package insights is the Microsoft.Insights activity-log query
// (…/providers/Microsoft.Insights/eventtypes/management/values) and
// Citadel's export of the tamper-evident log, as facades over package
// audit.
package insights

import (
	"bytes"
	"context"
	"fmt"
	"iter"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/citadel-cloud/citadel/internal/arm"
	"github.com/citadel-cloud/citadel/internal/audit"
	"github.com/citadel-cloud/citadel/internal/resource"
)

// APIVersions of the activity-log query (armmonitor and az use 2015-04-01).
var APIVersions = []string{"2015-04-01", "2017-03-01-preview"}

// ExportAPIVersion is the version of Citadel.Audit/export.
const ExportAPIVersion = "2026-01-01"

// Provider answers activity-log queries and exports.
type Provider struct {
	log *audit.Log
}

// New returns the provider over the activity log.
func New(log *audit.Log) *Provider { return &Provider{log: log} }

// pageSize bounds one page of events.
const pageSize = 200

// ListEvents answers GET [/subscriptions/{s}]/providers/Microsoft.Insights/
// eventtypes/management/values?$filter=…[&$select=…]: the subscription's
// records that match (with no subscription, the tenant root's), oldest
// first, in pages.
func (p *Provider) ListEvents(ctx context.Context, req *resource.Request, subscription, filter, sel string) (*resource.Response, error) {
	if !containsFold(APIVersions, req.APIVersion) {
		return nil, arm.InvalidAPIVersion(req.APIVersion, APIVersions)
	}
	f, err := audit.ParseFilter(filter)
	if err != nil {
		return nil, arm.Errorf(http.StatusBadRequest, arm.CodeBadRequest, "%v", err)
	}
	fields, err := audit.ParseSelect(sel)
	if err != nil {
		return nil, arm.Errorf(http.StatusBadRequest, arm.CodeBadRequest, "%v", err)
	}
	next := uint64(1) // the first record to read
	if req.SkipToken != "" {
		if next, err = strconv.ParseUint(req.SkipToken, 10, 64); err != nil {
			return nil, arm.Errorf(http.StatusBadRequest, arm.CodeBadRequest, "The $skipToken is invalid.")
		}
	} else {
		// Every record up to a checkpoint signed before From is older.
		cp, err := p.log.CheckpointBefore(ctx, f.From)
		if err != nil {
			return nil, err
		}
		if cp != nil {
			next = cp.Seq + 1
		}
	}
	limit := pageSize
	if req.Top > 0 && req.Top < limit {
		limit = req.Top
	}
	out := []any{}
	for {
		recs, more, err := p.log.Records(ctx, next, 1000)
		if err != nil {
			return nil, err
		}
		for _, r := range recs {
			next = r.Seq + 1
			if !strings.EqualFold(r.Event.SubscriptionID, subscription) || !f.Match(r.Event) {
				continue
			}
			if len(fields) > 0 {
				out = append(out, audit.Project(r.Event, fields))
			} else {
				out = append(out, r.Event)
			}
			if len(out) == limit {
				return page(req, out, next), nil
			}
		}
		if !more {
			return page(req, out, 0), nil
		}
	}
}

func page(req *resource.Request, items []any, next uint64) *resource.Response {
	body := resource.Page[any]{Value: items}
	if next > 0 {
		q := url.Values{}
		q.Set("api-version", req.APIVersion)
		q.Set("$skipToken", arm.EncodeSkipToken(strconv.FormatUint(next, 10)))
		if req.Filter != "" {
			q.Set("$filter", req.Filter)
		}
		if req.Select != "" {
			q.Set("$select", req.Select)
		}
		if req.Top > 0 {
			q.Set("$top", strconv.Itoa(req.Top))
		}
		body.NextLink = req.BaseURL + req.Path + "?" + q.Encode()
	}
	return &resource.Response{Status: http.StatusOK, Body: body}
}

func containsFold(list []string, s string) bool {
	for _, v := range list {
		if strings.EqualFold(v, s) {
			return true
		}
	}
	return false
}

// Export answers GET /providers/Citadel.Audit/export?from=…&to=…: the
// chain from its start (or the record after the checkpoint before from)
// to its head, as an export file that `citadel audit verify` checks
// offline. Records outside [from, to] are left out only at the ends, so
// that the file stays one unbroken, anchored piece of the chain.
func (p *Provider) Export(ctx context.Context, req *resource.Request, from, to string) (*resource.Response, error) {
	if req.APIVersion != ExportAPIVersion {
		return nil, arm.InvalidAPIVersion(req.APIVersion, []string{ExportAPIVersion})
	}
	var fromT, toT time.Time
	var err error
	if from != "" {
		if fromT, err = time.Parse(time.RFC3339, from); err != nil {
			return nil, arm.Errorf(http.StatusBadRequest, arm.CodeBadRequest, "from must be an RFC 3339 time: %v", err)
		}
	}
	if to != "" {
		if toT, err = time.Parse(time.RFC3339, to); err != nil {
			return nil, arm.Errorf(http.StatusBadRequest, arm.CodeBadRequest, "to must be an RFC 3339 time: %v", err)
		}
	}
	if err := p.log.Flush(ctx); err != nil {
		return nil, fmt.Errorf("flush the activity log before export: %w", err)
	}
	// What is archived is no longer in the store: the export starts after
	// it, anchored on the checkpoint that ends the archive, or later: after
	// the last checkpoint signed before from, up to which every record is
	// older (so the records before it are not read at all).
	anchor, err := p.log.Archived(ctx)
	if err != nil {
		return nil, err
	}
	if !fromT.IsZero() {
		cp, err := p.log.CheckpointBefore(ctx, fromT)
		if err != nil {
			return nil, err
		}
		if cp != nil && (anchor == nil || cp.Seq > anchor.Seq) {
			anchor = cp
		}
	}
	after := uint64(0)
	if anchor != nil {
		after = anchor.Seq
	}
	cps, err := p.log.Checkpoints(ctx, after, math.MaxUint64)
	if err != nil {
		return nil, err
	}
	recs, _, err := p.log.Records(ctx, after+1, 0)
	if err != nil {
		return nil, err
	}
	// Start after the last checkpoint whose record is older than from, so
	// that the export is anchored; end at the first checkpoint whose record
	// is as new as to. Positions and sequence numbers are kept apart: a
	// damaged store may have gaps, and the export must show them.
	timeOf := map[uint64]time.Time{}
	for _, r := range recs {
		timeOf[r.Seq] = r.Event.EventTimestamp
	}
	if !fromT.IsZero() {
		for i := range cps {
			if t, ok := timeOf[cps[i].Seq]; ok && t.Before(fromT) {
				anchor = &cps[i]
			}
		}
	}
	endSeq := uint64(0) // 0: to the end, with every checkpoint
	if !toT.IsZero() {
		for _, cp := range cps {
			if t, ok := timeOf[cp.Seq]; ok && (anchor == nil || cp.Seq > anchor.Seq) && !t.Before(toT) {
				endSeq = cp.Seq
				break
			}
		}
	}
	var exported []audit.Record
	for _, r := range recs {
		if (anchor == nil || r.Seq > anchor.Seq) && (endSeq == 0 || r.Seq <= endSeq) {
			exported = append(exported, r)
		}
	}
	var covering []audit.Checkpoint
	for _, cp := range cps {
		if (endSeq == 0 || cp.Seq <= endSeq) && (anchor == nil || cp.Seq > anchor.Seq) {
			covering = append(covering, cp)
		}
	}
	var buf bytes.Buffer
	h := audit.Header{PublicKey: p.log.PublicKey(), From: fromT, To: toT, ExportedAt: time.Now().UTC()}
	seq := func(yield func(audit.Record, error) bool) {
		for _, r := range exported {
			if !yield(r, nil) {
				return
			}
		}
	}
	if err := audit.WriteExport(&buf, h, anchor, audit.Items(iter.Seq2[audit.Record, error](seq), covering)); err != nil {
		return nil, err
	}
	h2 := http.Header{}
	h2.Set("Content-Type", "application/x-ndjson")
	return &resource.Response{Status: http.StatusOK, Body: buf.Bytes(), Header: h2}, nil
}
