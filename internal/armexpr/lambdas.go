package armexpr

import (
	"errors"
	"fmt"
	"slices"
)

// lambdaFunctions are the functions that apply lambda('x', ['i'], body)
// arguments, with lambda() and lambdaVariables() themselves. A lambda is
// only valid as a direct argument of one of them.
var lambdaFunctions = map[string]Func{
	"filter":    withLambda(2, 2, 1, filter),
	"map":       withLambda(2, 2, 1, mapFunc),
	"reduce":    withLambda(3, 3, 2, reduce),
	"sort":      withLambda(2, 2, 1, sortFunc),
	"toObject":  keyed(toObject),
	"groupBy":   keyed(groupBy),
	"mapValues": withLambda(2, 2, 1, mapValues),
	"lambda": func(*Call) (any, error) {
		return nil, errors.New("a lambda can only be an argument of filter, map, reduce, sort, toObject, groupBy or mapValues")
	},
	"lambdaVariables": func(c *Call) (any, error) {
		if err := c.CheckArity(1, 1); err != nil {
			return nil, err
		}
		v, err := c.Arg(0)
		if err != nil {
			return nil, err
		}
		name, ok := v.(string)
		if !ok {
			return nil, fmt.Errorf("expects its parameter to be of type 'String'; the provided value is of type '%s'", typeName(v))
		}
		return c.lambdaVariable(name)
	},
}

// withLambda makes a Func whose argument at lambdaArg is a lambda and the
// others are evaluated values.
func withLambda(minArgs, maxArgs, lambdaArg int, f func(args []any, l *Lambda) (any, error)) Func {
	return func(c *Call) (any, error) {
		if err := c.CheckArity(minArgs, maxArgs); err != nil {
			return nil, err
		}
		args := make([]any, c.NumArgs())
		for i := range args {
			if i == lambdaArg {
				continue
			}
			v, err := c.Arg(i)
			if err != nil {
				return nil, err
			}
			args[i] = v
		}
		l, err := c.Lambda(lambdaArg)
		if err != nil {
			return nil, err
		}
		return f(args, l)
	}
}

func filter(args []any, l *Lambda) (any, error) {
	arr, err := arrayArg(args, 0)
	if err != nil {
		return nil, err
	}
	out := []any{}
	for i, e := range arr {
		keep, err := applyBool(l, e, int64(i))
		if err != nil {
			return nil, err
		}
		if keep {
			out = append(out, e)
		}
	}
	return out, nil
}

// applyBool applies a lambda that must return a boolean.
func applyBool(l *Lambda, args ...any) (bool, error) {
	v, err := l.Apply(args...)
	if err != nil {
		return false, err
	}
	b, ok := v.(bool)
	if !ok {
		return false, fmt.Errorf("the lambda must return a boolean, not a value of type '%s'", typeName(v))
	}
	return b, nil
}

func mapFunc(args []any, l *Lambda) (any, error) {
	arr, err := arrayArg(args, 0)
	if err != nil {
		return nil, err
	}
	out := make([]any, len(arr))
	for i, e := range arr {
		if out[i], err = l.Apply(e, int64(i)); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// reduce folds an array: the lambda takes the accumulator, the element and
// optionally its index.
func reduce(args []any, l *Lambda) (any, error) {
	arr, err := arrayArg(args, 0)
	if err != nil {
		return nil, err
	}
	acc := args[1]
	for i, e := range arr {
		if acc, err = l.Apply(acc, e, int64(i)); err != nil {
			return nil, err
		}
	}
	return acc, nil
}

// sortFunc sorts stably with a lambda that says whether a sorts before b.
func sortFunc(args []any, l *Lambda) (any, error) {
	arr, err := arrayArg(args, 0)
	if err != nil {
		return nil, err
	}
	out := slices.Clone(arr)
	var failed error
	slices.SortStableFunc(out, func(a, b any) int {
		if failed != nil {
			return 0
		}
		less, err := applyBool(l, a, b)
		if err != nil {
			failed = err
			return 0
		}
		if less {
			return -1
		}
		if more, err := applyBool(l, b, a); err != nil {
			failed = err
		} else if more {
			return 1
		}
		return 0
	})
	return out, failed
}

// keyed makes a Func of toObject() and groupBy(): an array, a key lambda
// and an optional value lambda (the element itself by default).
func keyed(f func(arr []any, keyOf func(any) (string, error), valueOf func(any) (any, error)) (any, error)) Func {
	return func(c *Call) (any, error) {
		if err := c.CheckArity(2, 3); err != nil {
			return nil, err
		}
		v, err := c.Arg(0)
		if err != nil {
			return nil, err
		}
		arr, ok := v.([]any)
		if !ok {
			return nil, fmt.Errorf("expects its first parameter to be of type 'Array'; the provided value is of type '%s'", typeName(v))
		}
		keyLambda, err := c.Lambda(1)
		if err != nil {
			return nil, err
		}
		keyOf := func(e any) (string, error) {
			k, err := keyLambda.Apply(e)
			if err != nil {
				return "", err
			}
			s, ok := k.(string)
			if !ok {
				return "", fmt.Errorf("the key lambda must return a string, not a value of type '%s'", typeName(k))
			}
			return s, nil
		}
		valueOf := func(e any) (any, error) { return e, nil }
		if c.NumArgs() == 3 {
			valueLambda, err := c.Lambda(2)
			if err != nil {
				return nil, err
			}
			valueOf = func(e any) (any, error) { return valueLambda.Apply(e) }
		}
		return f(arr, keyOf, valueOf)
	}
}

// toObject builds an object from an array's keys and values; a later
// element wins over an earlier one with the same key.
func toObject(arr []any, keyOf func(any) (string, error), valueOf func(any) (any, error)) (any, error) {
	out := map[string]any{}
	for _, e := range arr {
		k, err := keyOf(e)
		if err != nil {
			return nil, err
		}
		if out[k], err = valueOf(e); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// groupBy groups an array's values by key, in array order.
func groupBy(arr []any, keyOf func(any) (string, error), valueOf func(any) (any, error)) (any, error) {
	out := map[string]any{}
	for _, e := range arr {
		k, err := keyOf(e)
		if err != nil {
			return nil, err
		}
		v, err := valueOf(e)
		if err != nil {
			return nil, err
		}
		group, _ := out[k].([]any)
		out[k] = append(group, v)
	}
	return out, nil
}

func mapValues(args []any, l *Lambda) (any, error) {
	obj, err := objectArg(args, 0)
	if err != nil {
		return nil, err
	}
	out := make(map[string]any, len(obj))
	for k, v := range obj {
		if out[k], err = l.Apply(v); err != nil {
			return nil, err
		}
	}
	return out, nil
}
