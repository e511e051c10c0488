package armexpr

import (
	"errors"
	"fmt"
	"math"
	"math/bits"
	"strconv"
	"strings"
)

// numericFunctions are the numeric functions of Part B.4: 64-bit signed
// integer arithmetic, plus float() for values passed on to Logic Apps.
var numericFunctions = map[string]Func{
	"add":   Eager(2, 2, arithmetic(add)),
	"sub":   Eager(2, 2, arithmetic(func(a, b int64) (int64, error) { return add(a, -b) })),
	"mul":   Eager(2, 2, arithmetic(mul)),
	"div":   Eager(2, 2, arithmetic(div)),
	"mod":   Eager(2, 2, arithmetic(mod)),
	"int":   Eager(1, 1, intFunc),
	"float": Eager(1, 1, floatFunc),
	"min":   Eager(1, -1, extreme(-1)),
	"max":   Eager(1, -1, extreme(1)),
}

var errOverflow = errors.New("the result does not fit in a 64-bit integer")

func arithmetic(op func(a, b int64) (int64, error)) func(args []any) (any, error) {
	return func(args []any) (any, error) {
		a, err := intArg(args, 0)
		if err != nil {
			return nil, err
		}
		b, err := intArg(args, 1)
		if err != nil {
			return nil, err
		}
		return op(a, b)
	}
}

func add(a, b int64) (int64, error) {
	s := a + b
	if (a >= 0) == (b >= 0) && (s >= 0) != (a >= 0) {
		return 0, errOverflow
	}
	return s, nil
}

func mul(a, b int64) (int64, error) {
	hi, lo := bits.Mul64(absInt(a), absInt(b))
	neg := (a < 0) != (b < 0)
	if hi != 0 || lo > math.MaxInt64 && !(neg && lo == 1<<63) {
		return 0, errOverflow
	}
	return a * b, nil
}

func div(a, b int64) (int64, error) {
	if b == 0 {
		return 0, errors.New("attempted to divide by zero")
	}
	if a == math.MinInt64 && b == -1 {
		return 0, errOverflow
	}
	return a / b, nil
}

func mod(a, b int64) (int64, error) {
	if b == 0 {
		return 0, errors.New("attempted to divide by zero")
	}
	if b == -1 {
		return 0, nil
	}
	return a % b, nil
}

// intFunc converts a string, a float (rounded half to even, like .NET) or
// an integer to an integer.
func intFunc(args []any) (any, error) {
	switch v := args[0].(type) {
	case int64:
		return v, nil
	case float64:
		r := math.RoundToEven(v)
		if math.IsNaN(r) || math.Abs(r) >= 1<<63 {
			return nil, errOverflow
		}
		return int64(r), nil
	case string:
		n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		if err != nil {
			return nil, fmt.Errorf("the string '%s' is not an integer", v)
		}
		return n, nil
	}
	return nil, argError(args, 0, "String, Integer or Float")
}

func floatFunc(args []any) (any, error) {
	switch v := args[0].(type) {
	case int64:
		return float64(v), nil
	case float64:
		return v, nil
	case string:
		f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		if err != nil {
			return nil, fmt.Errorf("the string '%s' is not a number", v)
		}
		return f, nil
	}
	return nil, argError(args, 0, "String, Integer or Float")
}

// extreme is min() (sign -1) or max() (sign 1) over integers given as
// arguments or as one array.
func extreme(sign int) func(args []any) (any, error) {
	return func(args []any) (any, error) {
		if arr, ok := args[0].([]any); ok && len(args) == 1 {
			args = arr
		}
		if len(args) == 0 {
			return nil, errors.New("the array is empty")
		}
		best := args[0]
		for i, v := range args {
			if _, ok := toInt(v); !ok {
				if _, isFloat := v.(float64); !isFloat {
					return nil, argError(args, i, "Integer")
				}
			}
			if c, _ := compareValues(v, best); c == sign {
				best = v
			}
		}
		return best, nil
	}
}
