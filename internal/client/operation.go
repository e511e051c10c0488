package client

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"time"
)

// Operation is an ARM operation status (arm-contract §2.7, §2.8).
type Operation struct {
	ID              string  `json:"id"`
	Name            string  `json:"name"`
	ResourceID      string  `json:"resourceId"`
	Status          string  `json:"status"`
	PercentComplete float64 `json:"percentComplete"`
	StartTime       string  `json:"startTime"`
	EndTime         string  `json:"endTime"`
	// Properties is what an action returned, if anything.
	Properties json.RawMessage `json:"properties,omitempty"`
	Error      *struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// Wait follows the long-running operation a response started, if any,
// until it ends, calling progress (if not nil) each time its
// percentComplete changes. It returns the ended operation, with an error
// when it did not succeed.
func (c *Client) Wait(ctx context.Context, resp *Response, progress func(percent float64)) (*Operation, error) {
	link := resp.Header.Get("Azure-AsyncOperation")
	if link == "" {
		link = resp.Header.Get("Location")
	}
	if link == "" {
		return &Operation{Status: "Succeeded", PercentComplete: 100}, nil
	}
	u, err := url.Parse(link)
	if err != nil {
		return nil, fmt.Errorf("operation link %q: %w", link, err)
	}
	last := -1.0
	for {
		r, err := c.Do(ctx, "GET", u.RequestURI(), nil)
		if err != nil {
			return nil, err
		}
		var op Operation
		if r.Status == 200 {
			if err := json.Unmarshal(r.Body, &op); err != nil {
				return nil, fmt.Errorf("operation %s: %w", u.Path, err)
			}
		} else if r.Status != 202 {
			return nil, r.Expect(200, 202)
		}
		if progress != nil && op.PercentComplete != last {
			last = op.PercentComplete
			progress(last)
		}
		switch op.Status {
		case "Succeeded":
			return &op, nil
		case "Failed", "Canceled":
			msg := op.Status
			if op.Error != nil {
				msg = fmt.Sprintf("%s: %s: %s", op.Status, op.Error.Code, op.Error.Message)
			}
			return &op, fmt.Errorf("operation %s %s", op.Name, msg)
		}
		select {
		case <-ctx.Done():
			return &op, ctx.Err()
		case <-time.After(cmp.Or(c.PollInterval, 250*time.Millisecond)):
		}
	}
}
