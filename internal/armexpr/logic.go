package armexpr

import (
	"cmp"
	"errors"
	"fmt"
	"strings"
)

// logicFunctions are the comparison and logical functions of Part B.4.
var logicFunctions = map[string]Func{
	"equals":          Eager(2, 2, func(args []any) (any, error) { return Equal(args[0], args[1]), nil }),
	"less":            Eager(2, 2, comparison(func(c int) bool { return c < 0 })),
	"lessOrEquals":    Eager(2, 2, comparison(func(c int) bool { return c <= 0 })),
	"greater":         Eager(2, 2, comparison(func(c int) bool { return c > 0 })),
	"greaterOrEquals": Eager(2, 2, comparison(func(c int) bool { return c >= 0 })),
	"and":             Eager(2, -1, logical(true)),
	"or":              Eager(2, -1, logical(false)),
	"not": Eager(1, 1, func(args []any) (any, error) {
		b, err := boolArg(args, 0)
		return !b, err
	}),
	"bool":  Eager(1, 1, boolFunc),
	"if":    ifFunc,
	"true":  Eager(0, 0, func([]any) (any, error) { return true, nil }),
	"false": Eager(0, 0, func([]any) (any, error) { return false, nil }),
	"null":  Eager(0, 0, func([]any) (any, error) { return nil, nil }),
}

// comparison orders two numbers, or two strings culture-aware (so
// greater('A', 'a') is true).
func comparison(ok func(int) bool) func(args []any) (any, error) {
	return func(args []any) (any, error) {
		c, err := compareValues(args[0], args[1])
		if err != nil {
			return nil, err
		}
		return ok(c), nil
	}
}

func compareValues(a, b any) (int, error) {
	switch a := a.(type) {
	case string:
		if b, ok := b.(string); ok {
			return compareStrings(a, b), nil
		}
	case int64, float64:
		switch b.(type) {
		case int64, float64:
			if ai, ok := a.(int64); ok {
				if bi, ok := b.(int64); ok {
					return cmp.Compare(ai, bi), nil
				}
			}
			fa, fb := toFloat(a), toFloat(b)
			switch {
			case fa < fb:
				return -1, nil
			case fa > fb:
				return 1, nil
			}
			return 0, nil
		}
	}
	return 0, fmt.Errorf("can't compare a value of type '%s' with a value of type '%s': both must be numbers or both strings", typeName(a), typeName(b))
}

// logical is and() (all true) or or() (any true); every argument is
// evaluated and must be a boolean.
func logical(isAnd bool) func(args []any) (any, error) {
	return func(args []any) (any, error) {
		result := isAnd
		for i := range args {
			b, err := boolArg(args, i)
			if err != nil {
				return nil, err
			}
			if b != isAnd {
				result = !isAnd
			}
		}
		return result, nil
	}
}

func boolFunc(args []any) (any, error) {
	switch v := args[0].(type) {
	case bool:
		return v, nil
	case int64:
		return v != 0, nil
	case string:
		switch strings.ToLower(v) {
		case "true":
			return true, nil
		case "false":
			return false, nil
		}
		return nil, fmt.Errorf("the string '%s' is not 'true' or 'false'", v)
	}
	return nil, argError(args, 0, "Boolean, Integer or String")
}

// ifFunc evaluates only the branch the condition picks.
func ifFunc(c *Call) (any, error) {
	if err := c.CheckArity(3, 3); err != nil {
		return nil, err
	}
	cond, err := c.Arg(0)
	if err != nil {
		return nil, err
	}
	b, ok := cond.(bool)
	if !ok {
		return nil, errors.New("expects its first parameter to be of type 'Boolean'; the provided value is of type '" + typeName(cond) + "'")
	}
	if b {
		return c.Arg(1)
	}
	return c.Arg(2)
}
