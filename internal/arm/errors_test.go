package arm

import (
	"encoding/json"
	"testing"
)

func TestErrorJSON(t *testing.T) {
	tests := []struct {
		name string
		err  *Error
		want string
	}{
		{"minimal", &Error{Status: 404, Code: "ResourceNotFound", Message: "gone"},
			`{"error":{"code":"ResourceNotFound","message":"gone"}}`},
		{"target", FieldError("properties.ipPrefixRules[1].networkPrefix", "bad prefix %q", "10.0.0.0/33"),
			`{"error":{"code":"InvalidRequestContent","message":"bad prefix \"10.0.0.0/33\"","target":"properties.ipPrefixRules[1].networkPrefix"}}`},
		{"details", &Error{Status: 400, Code: "BadRequest", Message: "m",
			Details: []*Error{{Status: 400, Code: "InvalidRequestContent", Message: "d", Target: "x"}}},
			`{"error":{"code":"BadRequest","message":"m","details":[{"code":"InvalidRequestContent","message":"d","target":"x"}]}}`},
		{"additionalInfo", &Error{Status: 403, Code: CodeRequestDisallowedByPolicy, Message: "denied",
			AdditionalInfo: []AdditionalInfo{{Type: "PolicyViolation", Info: map[string]string{"policyDefinitionName": "p"}}, {Type: "Empty"}}},
			`{"error":{"code":"RequestDisallowedByPolicy","message":"denied","additionalInfo":[{"type":"PolicyViolation","info":{"policyDefinitionName":"p"}},{"type":"Empty"}]}}`},
		{"html is escaped as JSON", Errorf(400, CodeBadRequest, "<a & b>"),
			`{"error":{"code":"BadRequest","message":"\u003ca \u0026 b\u003e"}}`},
		{"unserialisable info", &Error{Code: "X", Message: "y", AdditionalInfo: []AdditionalInfo{{Type: "t", Info: func() {}}}},
			`{"error":{"code":"InternalServerError","message":"An internal error occurred."}}`},
		{"nil", nil, `{"error":{"code":"InternalServerError","message":"An internal error occurred."}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := string(Envelope(tt.err))
			if got != tt.want {
				t.Errorf("Envelope(%v) = %s, want %s", tt.err, got, tt.want)
			}
			if !json.Valid([]byte(got)) {
				t.Errorf("Envelope(%v) = %s, not valid JSON", tt.err, got)
			}
		})
	}
}

func TestErrorString(t *testing.T) {
	tests := []struct {
		err  *Error
		want string
	}{
		{Errorf(409, CodeConflict, "busy %d", 1), "Conflict: busy 1"},
		{FieldError("properties.x", "bad"), "InvalidRequestContent: bad (properties.x)"},
	}
	for _, tt := range tests {
		if got := tt.err.Error(); got != tt.want {
			t.Errorf("Error() = %q, want %q", got, tt.want)
		}
	}
}

func TestConstructors(t *testing.T) {
	ipPrefix := ID{Subscription: "s", ResourceGroup: "rg1", Namespace: "Microsoft.ManagedNetworkFabric",
		Types: []string{"ipPrefixes"}, Names: []string{"p1"}}
	tests := []struct {
		name   string
		err    *Error
		status int
		code   string
		msg    string
		target string
	}{
		{"MissingAPIVersion", MissingAPIVersion(), 400, "MissingApiVersionParameter",
			"The api-version query parameter (?api-version=) is required for all requests.", ""},
		{"InvalidAPIVersion", InvalidAPIVersion("2025-07-01", []string{"2026-06-01", "2025-04-01"}), 400, "InvalidApiVersionParameter",
			"The api-version '2025-07-01' is invalid. The supported versions are '2026-06-01,2025-04-01'.", ""},
		{"NoRegisteredProvider", NoRegisteredProvider("local", "2017-11-01", "virtualNetworks",
			[]string{"2026-07-01", "2025-09-01"}, []string{"local", "east"}), 400, "NoRegisteredProviderFound",
			"No registered resource provider found for location 'local' and API version '2017-11-01' for type 'virtualNetworks'. " +
				"The supported api-versions are '2026-07-01, 2025-09-01'. The supported locations are 'local, east'.", ""},
		{"ResourceNotFound", ResourceNotFound(ipPrefix), 404, "ResourceNotFound",
			"The Resource 'Microsoft.ManagedNetworkFabric/ipPrefixes/p1' under resource group 'rg1' was not found.", ""},
		{"ResourceNotFound child", ResourceNotFound(ipPrefix.Child("rules", "r1")), 404, "ResourceNotFound",
			"The Resource 'Microsoft.ManagedNetworkFabric/ipPrefixes/p1/rules/r1' under resource group 'rg1' was not found.", ""},
		{"ResourceNotFound subscription level", ResourceNotFound(ID{Subscription: "s", Namespace: "NS", Types: []string{"t"}, Names: []string{"n"}}),
			404, "ResourceNotFound", "The Resource 'NS/t/n' was not found.", ""},
		{"ResourceNotFound group", ResourceNotFound(ipPrefix.ResourceGroupID()), 404, "ResourceGroupNotFound",
			"Resource group 'rg1' could not be found.", ""},
		{"ResourceNotFound subscription", ResourceNotFound(ID{Subscription: "s"}), 404, "SubscriptionNotFound",
			"The subscription 's' could not be found.", ""},
		{"ResourceGroupNotFound", ResourceGroupNotFound("rg1"), 404, "ResourceGroupNotFound", "Resource group 'rg1' could not be found.", ""},
		{"SubscriptionNotFound", SubscriptionNotFound("s1"), 404, "SubscriptionNotFound", "The subscription 's1' could not be found.", ""},
		{"Errorf", Errorf(412, CodePreconditionFailed, "etag %s", `"x"`), 412, "PreconditionFailed", `etag "x"`, ""},
		{"FieldError", FieldError("properties.a[0]", "must be %d", 1), 400, "InvalidRequestContent", "must be 1", "properties.a[0]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := tt.err
			if e.Status != tt.status || e.Code != tt.code || e.Message != tt.msg || e.Target != tt.target {
				t.Errorf("%s = %d %q %q %q, want %d %q %q %q", tt.name, e.Status, e.Code, e.Message, e.Target,
					tt.status, tt.code, tt.msg, tt.target)
			}
		})
	}
}
