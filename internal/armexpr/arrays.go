package armexpr

import (
	"errors"
	"fmt"
	"maps"
	"slices"
)

// arrayFunctions are the array and object functions of Part B.4, except
// the lambda ones (lambdas.go) and those shared with strings (strings.go).
var arrayFunctions = map[string]Func{
	"array":           Eager(1, 1, array),
	"createArray":     Eager(0, -1, func(args []any) (any, error) { return slices.Clone(args), nil }),
	"createObject":    Eager(0, -1, createObject),
	"coalesce":        Eager(1, -1, coalesce),
	"flatten":         Eager(1, 1, flatten),
	"distinct":        Eager(1, 1, distinct),
	"intersection":    Eager(2, -1, intersection),
	"union":           Eager(1, -1, union),
	"items":           Eager(1, 1, items),
	"objectKeys":      Eager(1, 1, objectKeys),
	"shallowMerge":    Eager(1, 1, shallowMerge),
	"range":           Eager(2, 2, rangeFunc),
	"tryGet":          Eager(2, -1, tryGet),
	"indexFromEnd":    Eager(2, 2, func(args []any) (any, error) { return indexFromEnd(args, false) }),
	"tryIndexFromEnd": Eager(2, 2, func(args []any) (any, error) { return indexFromEnd(args, true) }),
}

// array wraps a value in an array; an array is returned unchanged.
func array(args []any) (any, error) {
	if a, ok := args[0].([]any); ok {
		return a, nil
	}
	return []any{args[0]}, nil
}

func createObject(args []any) (any, error) {
	if len(args)%2 != 0 {
		return nil, fmt.Errorf("function requires an even number of arguments (key, value pairs) while %d were provided", len(args))
	}
	obj := make(map[string]any, len(args)/2)
	for i := 0; i < len(args); i += 2 {
		k, err := stringArg(args, i)
		if err != nil {
			return nil, err
		}
		obj[k] = args[i+1]
	}
	return obj, nil
}

func coalesce(args []any) (any, error) {
	for _, a := range args {
		if a != nil {
			return a, nil
		}
	}
	return nil, nil
}

func flatten(args []any) (any, error) {
	arr, err := arrayArg(args, 0)
	if err != nil {
		return nil, err
	}
	out := []any{}
	for i, e := range arr {
		inner, ok := e.([]any)
		if !ok {
			return nil, fmt.Errorf("the element %d of the array is of type '%s', not an array", i, typeName(e))
		}
		out = append(out, inner...)
	}
	return out, nil
}

// distinct removes repeated elements (deep equality), keeping the first.
func distinct(args []any) (any, error) {
	arr, err := arrayArg(args, 0)
	if err != nil {
		return nil, err
	}
	return union([]any{arr})
}

// sameKinds checks that every argument is an array, or every one an
// object, and reports which.
func sameKinds(args []any) (arrays bool, err error) {
	_, arrays = args[0].([]any)
	for i, a := range args {
		switch a.(type) {
		case []any:
			if !arrays {
				return false, argError(args, i, "Object")
			}
		case map[string]any:
			if arrays {
				return false, argError(args, i, "Array")
			}
		default:
			return false, argError(args, i, "Array or Object")
		}
	}
	return arrays, nil
}

// intersection keeps what every argument has: array elements in the order
// of the first array, without repeats, or object keys whose values are
// equal everywhere.
func intersection(args []any) (any, error) {
	arrays, err := sameKinds(args)
	if err != nil {
		return nil, err
	}
	if arrays {
		out := []any{}
		for _, e := range args[0].([]any) {
			inAll := !slices.ContainsFunc(out, func(o any) bool { return Equal(o, e) })
			for _, other := range args[1:] {
				inAll = inAll && slices.ContainsFunc(other.([]any), func(o any) bool { return Equal(o, e) })
			}
			if inAll {
				out = append(out, e)
			}
		}
		return out, nil
	}
	out := map[string]any{}
	for k, v := range args[0].(map[string]any) {
		inAll := true
		for _, other := range args[1:] {
			ov, ok := other.(map[string]any)[k]
			inAll = inAll && ok && Equal(v, ov)
		}
		if inAll {
			out[k] = v
		}
	}
	return out, nil
}

// union merges its arguments: arrays without repeats (first occurrence
// wins), objects with later values winning, nested objects merged
// recursively and nested arrays replaced.
func union(args []any) (any, error) {
	arrays, err := sameKinds(args)
	if err != nil {
		return nil, err
	}
	if arrays {
		out := []any{}
		for _, a := range args {
			for _, e := range a.([]any) {
				if !slices.ContainsFunc(out, func(o any) bool { return Equal(o, e) }) {
					out = append(out, e)
				}
			}
		}
		return out, nil
	}
	out := map[string]any{}
	for _, a := range args {
		out = mergeObjects(out, a.(map[string]any))
	}
	return out, nil
}

// mergeObjects returns a new object: a with b merged in.
func mergeObjects(a, b map[string]any) map[string]any {
	out := maps.Clone(a)
	for k, bv := range b {
		ao, aIsObj := out[k].(map[string]any)
		bo, bIsObj := bv.(map[string]any)
		if aIsObj && bIsObj {
			out[k] = mergeObjects(ao, bo)
		} else {
			out[k] = bv
		}
	}
	return out
}

// items lists an object's entries as {key, value}, in the culture-aware
// order of the keys.
func items(args []any) (any, error) {
	obj, err := objectArg(args, 0)
	if err != nil {
		return nil, err
	}
	out := make([]any, 0, len(obj))
	for _, k := range sortedKeys(obj) {
		out = append(out, map[string]any{"key": k, "value": obj[k]})
	}
	return out, nil
}

// objectKeys lists an object's keys in the order of items(): objects do
// not keep the order their keys were written in.
func objectKeys(args []any) (any, error) {
	obj, err := objectArg(args, 0)
	if err != nil {
		return nil, err
	}
	out := make([]any, 0, len(obj))
	for _, k := range sortedKeys(obj) {
		out = append(out, k)
	}
	return out, nil
}

func shallowMerge(args []any) (any, error) {
	arr, err := arrayArg(args, 0)
	if err != nil {
		return nil, err
	}
	out := map[string]any{}
	for i := range arr {
		obj, err := objectArg(arr, i)
		if err != nil {
			return nil, fmt.Errorf("the array must hold objects: %w", err)
		}
		maps.Copy(out, obj)
	}
	return out, nil
}

// rangeFunc is range(start, count): count is at most 10000 and
// start+count at most 2^31-1.
func rangeFunc(args []any) (any, error) {
	start, err := intArg(args, 0)
	if err != nil {
		return nil, err
	}
	count, err := intArg(args, 1)
	if err != nil {
		return nil, err
	}
	switch {
	case count < 0 || count > 10000:
		return nil, fmt.Errorf("the count %d must be between 0 and 10000", count)
	case start < -(1<<31) || start+count > 1<<31-1:
		return nil, fmt.Errorf("the start %d plus the count %d must not exceed 2147483647", start, count)
	}
	out := make([]any, count)
	for i := range out {
		out[i] = start + int64(i)
	}
	return out, nil
}

// tryGet walks object keys and array indexes; a missing one gives null.
func tryGet(args []any) (any, error) {
	v := args[0]
	for _, key := range args[1:] {
		switch x := v.(type) {
		case map[string]any:
			k, ok := key.(string)
			if !ok {
				return nil, fmt.Errorf("an object key must be a string, not of type '%s'", typeName(key))
			}
			v, _ = lookupKey(x, k)
		case []any:
			i, ok := toInt(key)
			if !ok {
				return nil, fmt.Errorf("an array index must be an integer, not of type '%s'", typeName(key))
			}
			if i < 0 || i >= int64(len(x)) {
				return nil, nil
			}
			v = x[i]
		case nil:
			return nil, nil
		default:
			return nil, fmt.Errorf("can't get a property of a value of type '%s'", typeName(v))
		}
	}
	return v, nil
}

// indexFromEnd is arr[len-i] for a 1-based i; the try form gives null
// instead of an error when i is out of range.
func indexFromEnd(args []any, try bool) (any, error) {
	arr, err := arrayArg(args, 0)
	if err != nil {
		return nil, err
	}
	i, err := intArg(args, 1)
	if err != nil {
		return nil, err
	}
	if i < 1 || i > int64(len(arr)) {
		if try {
			return nil, nil
		}
		return nil, errors.New("the index from the end is out of the array's bounds")
	}
	return arr[int64(len(arr))-i], nil
}
