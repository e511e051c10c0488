package armexpr

import "maps"

// builtins is the table Builtins returns, built once.
var builtins = func() *Functions {
	all := map[string]Func{}
	for _, family := range []map[string]Func{
		stringFunctions, arrayFunctions, lambdaFunctions, logicFunctions,
		numericFunctions, dateFunctions, hashFunctions, uriFunctions, cidrFunctions,
	} {
		maps.Copy(all, family)
	}
	return (*Functions)(nil).With(all)
}()

// Builtins is the table of every function that needs no context: the
// string, array, object, lambda, comparison, logical, numeric, date, hash,
// URI and CIDR functions. Two of them are not deterministic: utcNow()
// reads the clock and newGuid() the random source (a template allows them
// only in parameter default values). The functions of a deployment or a
// policy evaluation (parameters, resourceId, reference, field...) are the
// caller's to add with With.
func Builtins() *Functions { return builtins }
