package redfishsim

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
)

// baseRegistry is the prefix of the Base message registry this simulator
// answers with; clients match on the part after the last dot.
const baseRegistry = "Base.1.8."

// baseMessages are the Base registry messages the simulator sends: text with
// %1..%n placeholders, severity and resolution.
var baseMessages = map[string]struct{ text, severity, resolution string }{
	"GeneralError":                     {"A general error has occurred. See Resolution for information on how to resolve the error.", "Critical", "None."},
	"InternalError":                    {"The request failed due to an internal service error.  The service is still operational.", "Critical", "Resubmit the request.  If the problem persists, consider resetting the service."},
	"ResourceNotFound":                 {"The requested resource of type %1 named %2 was not found.", "Critical", "Provide a valid resource identifier and resubmit the request."},
	"MalformedJSON":                    {"The request body submitted was malformed JSON and could not be parsed by the receiving service.", "Critical", "Ensure that the request body is valid JSON and resubmit the request."},
	"EmptyJSON":                        {"The request body submitted contained an empty JSON object and the service is unable to process it.", "Warning", "Add properties in the JSON object and resubmit the request."},
	"PropertyUnknown":                  {"The property %1 is not in the list of valid properties for the resource.", "Warning", "Remove the unknown property from the request body and resubmit the request if the operation failed."},
	"PropertyNotWritable":              {"The property %1 is a read only property and cannot be assigned a value.", "Warning", "Remove the property from the request body and resubmit the request if the operation failed."},
	"PropertyValueTypeError":           {"The value %1 for the property %2 is of a different type than the property can accept.", "Warning", "Correct the value for the property in the request body and resubmit the request if the operation failed."},
	"PropertyValueFormatError":         {"The value %1 for the property %2 is of a different format than the property can accept.", "Warning", "Correct the value for the property in the request body and resubmit the request if the operation failed."},
	"PropertyValueNotInList":           {"The value %1 for the property %2 is not in the list of acceptable values.", "Warning", "Choose a value from the enumeration list that the implementation can support and resubmit the request if the operation failed."},
	"CreateFailedMissingReqProperties": {"The create operation failed because the required property %1 was missing from the request.", "Critical", "Correct the body to include the required property with a valid value and resubmit the request if the operation failed."},
	"ActionParameterMissing":           {"The action %1 requires the parameter %2 to be present in the request body.", "Critical", "Supply the action with the required parameter in the request body when the request is resubmitted."},
	"ActionParameterUnknown":           {"The action %1 was submitted with the invalid parameter %2.", "Warning", "Correct the invalid parameter and resubmit the request if the operation failed."},
	"ActionParameterValueTypeError":    {"The value %1 for the parameter %2 in the action %3 is of a different type than the parameter can accept.", "Warning", "Correct the value for the parameter in the request body and resubmit the request if the operation failed."},
	"ActionParameterValueFormatError":  {"The value %1 for the parameter %2 in the action %3 is of a different format than the parameter can accept.", "Warning", "Correct the value for the parameter in the request body and resubmit the request if the operation failed."},
	"ActionParameterNotSupported":      {"The parameter %1 for the action %2 is not supported on the target resource.", "Warning", "Remove the parameter supplied and resubmit the request if the operation failed."},
	"InvalidOperationForSystemState":   {"The operation %1 is not allowed while the system is in the power state %2.", "Warning", "Read the PowerState of the system and choose an operation valid in that state."},
	"ResourceInUse":                    {"The change to the requested resource failed because the resource is in use or in transition.", "Warning", "Remove the condition and resubmit the request if the operation failed."},
	"NoOperation":                      {"The request body submitted contain no data to act upon and no changes to the resource took place.", "Warning", "Add properties in the JSON object and resubmit the request."},
	"NoValidSession":                   {"There is no valid session established with the implementation.", "Critical", "Establish a session before attempting any operations."},
	"SessionLimitExceeded":             {"The session establishment failed due to the number of simultaneous sessions exceeding the limit of the implementation.", "Critical", "Reduce the number of other sessions before trying to establish the session or increase the limit of simultaneous sessions (if supported)."},
	"PreconditionFailed":               {"The ETag supplied did not match the ETag required to change this resource.", "Critical", "Try the operation again using the appropriate ETag."},
	"QueryNotSupported":                {"Querying is not supported by the implementation.", "Warning", "Remove the query parameters and resubmit the request if the operation failed."},
	"CouldNotEstablishConnection":      {"The service failed to establish a connection with the URI %1.", "Critical", "Ensure that the URI contains a valid and reachable node name, protocol information and other URI components."},
	"ResourceMissingAtURI":             {"The resource at the URI %1 was not found.", "Critical", "Place a valid resource at the URI or correct the URI and resubmit the request."},
}

// message is one entry of @Message.ExtendedInfo: a Base registry message
// name and its arguments.
type message struct {
	name string
	args []string
}

func msg(name string, args ...string) message { return message{name: name, args: args} }

// info renders the message as a Redfish Message object.
func (m message) info() map[string]any {
	def, ok := baseMessages[m.name]
	if !ok {
		panic("redfishsim: unknown Base message " + m.name)
	}
	text := def.text
	for i := len(m.args); i >= 1; i-- { // from the highest so that %1 does not eat %10
		text = strings.ReplaceAll(text, "%"+strconv.Itoa(i), m.args[i-1])
	}
	args := m.args
	if args == nil {
		args = []string{}
	}
	return map[string]any{
		"@odata.type":     "#Message.v1_1_2.Message",
		"MessageId":       baseRegistry + m.name,
		"Message":         text,
		"MessageArgs":     args,
		"MessageSeverity": def.severity,
		"Severity":        def.severity,
		"Resolution":      def.resolution,
	}
}

// apiError is a request the simulator refuses: an HTTP status and the
// messages that explain it.
type apiError struct {
	status int
	msgs   []message
}

func (e *apiError) Error() string {
	names := make([]string, len(e.msgs))
	for i, m := range e.msgs {
		names[i] = m.name
	}
	return fmt.Sprintf("redfish %d: %s", e.status, strings.Join(names, ", "))
}

func refuse(status int, msgs ...message) error { return &apiError{status: status, msgs: msgs} }

// body renders the Redfish error envelope; code and message come from the
// first entry, as most BMCs do.
func (e *apiError) body() []byte {
	infos := make([]map[string]any, len(e.msgs))
	for i, m := range e.msgs {
		infos[i] = m.info()
	}
	code, text := baseRegistry+"GeneralError", baseMessages["GeneralError"].text
	if len(infos) > 0 {
		code, text = infos[0]["MessageId"].(string), infos[0]["Message"].(string)
	}
	return encode(map[string]any{"error": map[string]any{
		"code":                  code,
		"message":               text,
		"@Message.ExtendedInfo": infos,
	}})
}

// jsonText renders a decoded JSON value the way a message argument quotes
// it.
func jsonText(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

// notFound is the 404 of a path the tree does not hold.
func notFound(p string) error {
	return refuse(http.StatusNotFound, msg("ResourceNotFound", "Resource", p))
}
