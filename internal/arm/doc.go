// Package arm is the Azure Resource Manager wire contract: resource IDs,
// api-versions, the error envelope, OData filters, paging tokens and lenient
// JSON. It is pure (standard library only) and any package may import it.
package arm
