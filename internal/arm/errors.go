package arm

import (
	"encoding/json"
	"fmt"
	"strings"
)

// ARM error codes. The identifiers follow Go initialisms; the values are the
// exact strings clients match on (azcore's ResponseError.ErrorCode, az's
// "(Code) Message").
const (
	CodeMissingAPIVersionParameter      = "MissingApiVersionParameter"
	CodeInvalidAPIVersionParameter      = "InvalidApiVersionParameter"
	CodeNoRegisteredProviderFound       = "NoRegisteredProviderFound"
	CodeResourceNotFound                = "ResourceNotFound"
	CodeResourceGroupNotFound           = "ResourceGroupNotFound"
	CodeSubscriptionNotFound            = "SubscriptionNotFound"
	CodeParentResourceNotFound          = "ParentResourceNotFound"
	CodeInvalidRequestContent           = "InvalidRequestContent"
	CodeBadRequest                      = "BadRequest"
	CodeInvalidResourceType             = "InvalidResourceType"
	CodeInvalidResourceNamespace        = "InvalidResourceNamespace"
	CodeInvalidResourceName             = "InvalidResourceName"
	CodeInvalidResourceGroupName        = "InvalidResourceGroupName"
	CodeInvalidResourceID               = "InvalidResourceId"
	CodeConflict                        = "Conflict"
	CodeAnotherOperationInProgress      = "AnotherOperationInProgress"
	CodePreconditionFailed              = "PreconditionFailed"
	CodeAuthenticationFailed            = "AuthenticationFailed"
	CodeInvalidAuthenticationToken      = "InvalidAuthenticationToken"
	CodeAuthorizationFailed             = "AuthorizationFailed"
	CodeRequestDisallowedByPolicy       = "RequestDisallowedByPolicy"
	CodeMissingSubscriptionRegistration = "MissingSubscriptionRegistration"
	CodeInternalServerError             = "InternalServerError"
	CodeMethodNotAllowed                = "MethodNotAllowed"
)

// HTTP statuses used here; net/http is not imported so the package stays free
// of I/O.
const (
	statusBadRequest = 400
	statusNotFound   = 404
)

// Error is an ARM error: the HTTP status and the body of the error envelope
// {"error":{...}}. Handlers return it; the front door writes it with
// [Envelope].
type Error struct {
	Status         int              // HTTP status; not serialised
	Code           string           // PascalCase ARM code, one of the Code constants
	Message        string           // text the user reads
	Target         string           // the offending field, e.g. "properties.ipPrefixRules[1].networkPrefix"
	Details        []*Error         // nested errors; their Status is ignored
	AdditionalInfo []AdditionalInfo // e.g. a PolicyViolation
}

// AdditionalInfo is one entry of error.additionalInfo, for example
// {"type":"PolicyViolation","info":{...}}.
type AdditionalInfo struct {
	Type string `json:"type"`
	Info any    `json:"info,omitempty"`
}

// Error returns "Code: Message", followed by " (target)" when Target is set.
func (e *Error) Error() string {
	s := e.Code + ": " + e.Message
	if e.Target != "" {
		s += " (" + e.Target + ")"
	}
	return s
}

// wireError is the JSON shape of an Error; Status stays out of the body.
type wireError struct {
	Code           string           `json:"code"`
	Message        string           `json:"message"`
	Target         string           `json:"target,omitempty"`
	Details        []*Error         `json:"details,omitempty"`
	AdditionalInfo []AdditionalInfo `json:"additionalInfo,omitempty"`
}

// MarshalJSON writes the inner object of the envelope:
// {"code","message"[,"target"][,"details"][,"additionalInfo"]}.
func (e *Error) MarshalJSON() ([]byte, error) {
	return json.Marshal(wireError{
		Code:           e.Code,
		Message:        e.Message,
		Target:         e.Target,
		Details:        e.Details,
		AdditionalInfo: e.AdditionalInfo,
	})
}

// Envelope returns the response body for e: {"error":{...}}. If e cannot be
// serialised (an AdditionalInfo.Info that is not JSON), the body is a generic
// InternalServerError so that the client always gets a well-formed envelope.
func Envelope(e *Error) []byte {
	const internal = `{"error":{"code":"InternalServerError","message":"An internal error occurred."}}`
	if e == nil {
		return []byte(internal)
	}
	b, err := json.Marshal(struct {
		Error *Error `json:"error"`
	}{e})
	if err != nil {
		return []byte(internal)
	}
	return b
}

// Errorf returns an Error with the given status and code and a formatted
// message.
func Errorf(status int, code, format string, args ...any) *Error {
	return &Error{Status: status, Code: code, Message: fmt.Sprintf(format, args...)}
}

// FieldError returns a 400 InvalidRequestContent error about the request body
// field target (a JSON path such as "properties.ipPrefixRules[1].networkPrefix").
func FieldError(target, format string, args ...any) *Error {
	e := Errorf(statusBadRequest, CodeInvalidRequestContent, format, args...)
	e.Target = target
	return e
}

// MissingAPIVersion is the error for a request without ?api-version=.
func MissingAPIVersion() *Error {
	return Errorf(statusBadRequest, CodeMissingAPIVersionParameter,
		"The api-version query parameter (?api-version=) is required for all requests.")
}

// InvalidAPIVersion is the error for an api-version a core endpoint does not
// serve. supported is listed as given, comma-separated without spaces.
func InvalidAPIVersion(v string, supported []string) *Error {
	return Errorf(statusBadRequest, CodeInvalidAPIVersionParameter,
		"The api-version '%s' is invalid. The supported versions are '%s'.", v, strings.Join(supported, ","))
}

// NoRegisteredProvider is the error for an api-version or location a
// provider's resource type does not serve.
func NoRegisteredProvider(location, v, typ string, supported, locations []string) *Error {
	return Errorf(statusBadRequest, CodeNoRegisteredProviderFound,
		"No registered resource provider found for location '%s' and API version '%s' for type '%s'. The supported api-versions are '%s'. The supported locations are '%s'.",
		location, v, typ, strings.Join(supported, ", "), strings.Join(locations, ", "))
}

// ResourceNotFound is the 404 for a missing resource, worded as Azure does:
// "The Resource 'Microsoft.X/things/t1' under resource group 'rg1' was not
// found." For a group or subscription ID it returns [ResourceGroupNotFound]
// or [SubscriptionNotFound].
func ResourceNotFound(id ID) *Error {
	switch {
	case id.Namespace == "" && id.ResourceGroup != "":
		return ResourceGroupNotFound(id.ResourceGroup)
	case id.Namespace == "" && id.Subscription != "":
		return SubscriptionNotFound(id.Subscription)
	}
	var b strings.Builder
	b.WriteString(id.Namespace)
	for i, t := range id.Types {
		b.WriteString("/" + t + "/" + id.Names[i])
	}
	if id.ResourceGroup == "" {
		return Errorf(statusNotFound, CodeResourceNotFound, "The Resource '%s' was not found.", b.String())
	}
	return Errorf(statusNotFound, CodeResourceNotFound,
		"The Resource '%s' under resource group '%s' was not found.", b.String(), id.ResourceGroup)
}

// ResourceGroupNotFound is the 404 for a missing resource group.
func ResourceGroupNotFound(rg string) *Error {
	return Errorf(statusNotFound, CodeResourceGroupNotFound, "Resource group '%s' could not be found.", rg)
}

// SubscriptionNotFound is the 404 for a missing subscription.
func SubscriptionNotFound(s string) *Error {
	return Errorf(statusNotFound, CodeSubscriptionNotFound, "The subscription '%s' could not be found.", s)
}
