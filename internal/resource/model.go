package resource

import (
	"encoding/json"
	"strconv"
	"strings"
	"time"

	"github.com/citadel-cloud/citadel/internal/arm"
	"github.com/citadel-cloud/citadel/internal/audit"
)

// Resource is an ARM resource as clients see it. One struct serves every
// type: properties are the provider's business.
type Resource struct {
	ID               string            `json:"id"`
	Name             string            `json:"name"`
	Type             string            `json:"type"`
	Location         string            `json:"location,omitempty"`
	ExtendedLocation json.RawMessage   `json:"extendedLocation,omitempty"`
	Tags             map[string]string `json:"tags,omitempty"`
	Kind             string            `json:"kind,omitempty"`
	ManagedBy        string            `json:"managedBy,omitempty"`
	SKU              json.RawMessage   `json:"sku,omitempty"`
	Identity         json.RawMessage   `json:"identity,omitempty"`
	ETag             string            `json:"etag,omitempty"`
	SystemData       *SystemData       `json:"systemData,omitempty"`
	Properties       map[string]any    `json:"properties"`
	// Busy says that an operation is in flight on the resource. It is
	// filled in for providers (Lookup, Resources) and never stored.
	Busy bool `json:"-"`
}

// SystemData records who created and last changed a resource (RPC
// common-api-contracts).
type SystemData struct {
	CreatedBy          string    `json:"createdBy,omitempty"`
	CreatedByType      string    `json:"createdByType,omitempty"`
	CreatedAt          time.Time `json:"createdAt"`
	LastModifiedBy     string    `json:"lastModifiedBy,omitempty"`
	LastModifiedByType string    `json:"lastModifiedByType,omitempty"`
	LastModifiedAt     time.Time `json:"lastModifiedAt"`
}

// ProvisioningState returns properties.provisioningState, "Succeeded" when absent.
func (r *Resource) ProvisioningState() string {
	if s, ok := r.Properties["provisioningState"].(string); ok {
		return s
	}
	return StateSucceeded
}

// Revision is the store revision the resource was read or written at,
// from its ETag; false when it carries none.
func (r *Resource) Revision() (int64, bool) { return etagRevision(r.ETag) }

// The provisioning states the framework itself sets.
const (
	StateAccepted  = "Accepted"
	StateSucceeded = "Succeeded"
	StateFailed    = "Failed"
	StateCanceled  = "Canceled"
	StateDeleting  = "Deleting"
)

// record is what the store holds for a resource: the resource as clients
// see it (without its ETag, which is the store revision), and the
// framework's own fields beside it.
type record struct {
	Resource Resource `json:"resource"`
	// OperationID names the operation in flight on the resource, if any.
	OperationID string    `json:"operationId,omitempty"`
	CreatedTime time.Time `json:"createdTime"`
	ChangedTime time.Time `json:"changedTime"`
	// Claims are the items the resource holds (Write.Claims); clients do
	// not see them.
	Claims []Claim `json:"claims,omitempty"`
}

// rawRecord is a record with the resource left undecoded: a GET passes
// it through to the client without decoding and encoding it again.
type rawRecord struct {
	Resource json.RawMessage `json:"resource"`
}

// withETag returns the JSON object of a resource with its etag added.
func withETag(resource json.RawMessage, tag string) json.RawMessage {
	field, _ := json.Marshal(tag)
	out := make([]byte, 0, len(resource)+len(field)+10)
	out = append(out, `{"etag":`...)
	out = append(out, field...)
	if len(resource) > 2 {
		out = append(out, ',')
	}
	return append(out, resource[1:]...)
}

// etag is the resource's ETag at store revision rev.
func etag(rev int64) string { return `"` + strconv.FormatInt(rev, 16) + `"` }

// etagRevision parses an If-Match/If-None-Match value made by etag.
func etagRevision(tag string) (int64, bool) {
	tag = strings.TrimPrefix(strings.TrimSpace(tag), "W/")
	rev, err := strconv.ParseInt(strings.Trim(tag, `"`), 16, 64)
	return rev, err == nil
}

// Caller is who sent a request, for systemData and operations.
type Caller struct {
	ObjectID string
	Name     string // user principal name or application id
	Type     string // "User" or "Application"
}

// Operation is a long-running operation (arm-contract §2.7), persisted so
// that it survives a crash.
type Operation struct {
	ID              string          `json:"id"`
	Kind            string          `json:"kind"` // put, patch, delete or action
	Action          string          `json:"action,omitempty"`
	ResourceID      string          `json:"resourceId"`
	Namespace       string          `json:"namespace"`
	Location        string          `json:"location"`
	Subscription    string          `json:"subscription"`
	APIVersion      string          `json:"apiVersion"`
	Status          string          `json:"status"`
	StartTime       time.Time       `json:"startTime"`
	EndTime         time.Time       `json:"endTime,omitzero"`
	PercentComplete float64         `json:"percentComplete"`
	Error           *arm.Error      `json:"error,omitempty"`
	ErrorStatus     int             `json:"errorStatus,omitempty"` // the HTTP status of Error, which its JSON leaves out
	Input           json.RawMessage `json:"input,omitempty"`
	Result          json.RawMessage `json:"result,omitempty"`
	Attempts        int             `json:"attempts,omitempty"`
	Caller          Caller          `json:"caller"`
	// Audit describes the request that started the operation, for the
	// records of its end.
	Audit *audit.EventInfo `json:"audit,omitempty"`
}

// Operation statuses (arm-contract §2.7).
const (
	OpInProgress = "InProgress"
	OpSucceeded  = "Succeeded"
	OpFailed     = "Failed"
	OpCanceled   = "Canceled"
)

// Done reports whether the operation has ended.
func (o *Operation) Done() bool { return o.Status != OpInProgress }

// Subscription is a tenant's subscription.
type Subscription struct {
	ID          string            `json:"subscriptionId"`
	TenantID    string            `json:"tenantId"`
	DisplayName string            `json:"displayName"`
	State       string            `json:"state"`
	Tags        map[string]string `json:"tags,omitempty"`
}

// Tenant is the directory that owns subscriptions and identities.
type Tenant struct {
	ID            string `json:"tenantId"`
	DisplayName   string `json:"displayName"`
	DefaultDomain string `json:"defaultDomain"`
}
