// Package e2e holds end-to-end tests that drive a whole control plane
// (servertest) with clients nobody here wrote: the Debian az CLI 2.45 and
// the Azure SDK for Go. It has no non-test code.
package e2e
