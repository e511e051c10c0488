// Package compliance holds Azure Policy compliance states and answers the
// Microsoft.PolicyInsights queries over them: policyStates/{latest|default}/
// queryResults with $filter, $apply, $select, $orderby, $top, $from, $to,
// $expand and $skiptoken, and policyStates/latest/summarize.
//
// The server evaluates every resource against every assignment in scope and
// keeps the latest State of each (resource, assignment, definition
// reference). A request's query parameters go to ParseQuery, which checks
// them all before any state is read: a QueryError names the parameter and
// the position, and its Code is the ARM error code to answer 400 with. The
// server then sets Query.Endpoint and Query.Resource from the request path
// and writes what Results or Summarize return as the response body.
//
// Names of properties, operators and keywords are case-insensitive, as
// Azure accepts them, and so are string comparisons: ARM IDs are.
//
// compliance is pure (standard library only, no I/O); the server's
// Microsoft.PolicyInsights provider imports it.
package compliance
