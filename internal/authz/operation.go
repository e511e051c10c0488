package authz

import "strings"

// Operation returns the ARM operation name that a request needs: typ is the
// resource type as arm.ID.Type gives it ("Microsoft.NetworkCloud/bareMetalMachines"),
// method the HTTP method, and action the name of a POST action ("powerOff").
//
//	GET, HEAD    {typ}/read
//	PUT, PATCH   {typ}/write
//	DELETE       {typ}/delete
//	POST         {typ}/{action}/action
//
// Resource groups are Microsoft.Resources/subscriptions/resourceGroups, as in
// Azure's operation names. It returns "" for an empty type, another method or
// a POST without an action; Check refuses "".
func Operation(typ, method, action string) string {
	const groups = "Microsoft.Resources/resourceGroups"
	if len(typ) >= len(groups) && strings.EqualFold(typ[:len(groups)], groups) &&
		(len(typ) == len(groups) || typ[len(groups)] == '/') {
		typ = "Microsoft.Resources/subscriptions/resourceGroups" + typ[len(groups):]
	}
	if typ == "" {
		return ""
	}
	switch strings.ToUpper(method) {
	case "GET", "HEAD":
		return typ + "/read"
	case "PUT", "PATCH":
		return typ + "/write"
	case "DELETE":
		return typ + "/delete"
	case "POST":
		if action != "" {
			return typ + "/" + action + "/action"
		}
	}
	return ""
}
