package armexpr

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// format implements format(formatString, args...): .NET composite
// formatting ("{0}", "{1,-8}", "{2:N0}", "{{" for a brace) in the
// invariant culture.
func format(args []any) (any, error) {
	f, err := stringArg(args, 0)
	if err != nil {
		return nil, err
	}
	vals := args[1:]
	var b strings.Builder
	for i := 0; i < len(f); i++ {
		c := f[i]
		switch {
		case c == '{' && i+1 < len(f) && f[i+1] == '{', c == '}' && i+1 < len(f) && f[i+1] == '}':
			b.WriteByte(c)
			i++
		case c == '}':
			return nil, errors.New("the format string has a '}' without its '{'")
		case c == '{':
			end := strings.IndexByte(f[i:], '}')
			if end < 0 {
				return nil, errors.New("the format string has a '{' without its '}'")
			}
			s, err := formatItem(f[i+1:i+end], vals)
			if err != nil {
				return nil, err
			}
			b.WriteString(s)
			i += end
		default:
			b.WriteByte(c)
		}
	}
	return b.String(), nil
}

// formatItem formats one "index[,alignment][:format]" item.
func formatItem(item string, vals []any) (string, error) {
	spec := ""
	if k := strings.IndexByte(item, ':'); k >= 0 {
		item, spec = item[:k], item[k+1:]
	}
	align := int64(0)
	if k := strings.IndexByte(item, ','); k >= 0 {
		a, err := strconv.ParseInt(strings.TrimSpace(item[k+1:]), 10, 32)
		if err != nil {
			return "", fmt.Errorf("the format item alignment %q is not an integer", item[k+1:])
		}
		item, align = item[:k], a
	}
	n, err := strconv.Atoi(strings.TrimSpace(item))
	if err != nil || n < 0 {
		return "", fmt.Errorf("the format item index %q is not a non-negative integer", item)
	}
	if n >= len(vals) {
		return "", fmt.Errorf("the format item index %d is not less than the number of arguments (%d)", n, len(vals))
	}
	s, err := formatValue(vals[n], spec)
	if err != nil {
		return "", err
	}
	if pad := int(math.Abs(float64(align))) - strLen(s); pad > 0 && pad <= 1<<16 {
		if align > 0 {
			s = strings.Repeat(" ", pad) + s
		} else {
			s += strings.Repeat(" ", pad)
		}
	}
	return s, nil
}

// formatValue applies a .NET numeric format string to a number; other
// values ignore the format string.
func formatValue(v any, spec string) (string, error) {
	var f float64
	isInt := false
	var n int64
	switch v := v.(type) {
	case int64:
		n, f, isInt = v, float64(v), true
	case float64:
		f = v
	default:
		return text(v), nil
	}
	if spec == "" {
		return text(v), nil
	}
	letter := spec[0] | 0x20 // lower case
	prec := -1
	if len(spec) > 1 {
		p, err := strconv.Atoi(spec[1:])
		if err != nil || p > 99 {
			return formatCustom(f, spec), nil
		}
		prec = p
	}
	def := func(d int) int {
		if prec < 0 {
			return d
		}
		return prec
	}
	switch letter {
	case 'n':
		return formatFixed(v, def(2), true), nil
	case 'f':
		return formatFixed(v, def(2), false), nil
	case 'p':
		return formatFixed(f*100, def(2), true) + " %", nil
	case 'c':
		return "¤" + formatFixed(v, def(2), true), nil
	case 'e':
		s := strconv.FormatFloat(f, 'e', def(6), 64)
		mant, exp, _ := strings.Cut(s, "e")
		sign, digits := exp[:1], strings.TrimLeft(exp[1:], "0")
		s = mant + "e" + sign + fmt.Sprintf("%03s", digits)
		if spec[0] == 'E' {
			s = strings.ToUpper(s)
		}
		return s, nil
	case 'g', 'r':
		return text(v), nil
	case 'd':
		if !isInt {
			return "", fmt.Errorf("the format '%s' applies to integers only", spec)
		}
		digits := strconv.FormatUint(absInt(n), 10)
		if pad := def(0) - len(digits); pad > 0 {
			digits = strings.Repeat("0", pad) + digits
		}
		if n < 0 {
			digits = "-" + digits
		}
		return digits, nil
	case 'x':
		if !isInt {
			return "", fmt.Errorf("the format '%s' applies to integers only", spec)
		}
		s := strconv.FormatUint(uint64(n), 16)
		if pad := def(0) - len(s); pad > 0 {
			s = strings.Repeat("0", pad) + s
		}
		if spec[0] == 'X' {
			s = strings.ToUpper(s)
		}
		return s, nil
	}
	return formatCustom(f, spec), nil
}

func absInt(n int64) uint64 {
	if n < 0 {
		return uint64(-(n + 1)) + 1
	}
	return uint64(n)
}

// formatFixed prints a number with a fixed number of decimals, rounding
// half away from zero as .NET does, optionally with thousands separators.
func formatFixed(v any, decimals int, group bool) string {
	var neg bool
	var intPart, frac string
	switch v := v.(type) {
	case int64:
		neg = v < 0
		intPart, frac = strconv.FormatUint(absInt(v), 10), strings.Repeat("0", decimals)
	case float64:
		neg = v < 0
		intPart, frac = roundDecimal(math.Abs(v), decimals)
	}
	if group {
		intPart = groupThousands(intPart)
	}
	s := intPart
	if decimals > 0 {
		s += "." + frac
	}
	if neg && strings.ContainsAny(s, "123456789") {
		s = "-" + s
	}
	return s
}

// roundDecimal returns the integer and fraction digits of f (>= 0) rounded
// half away from zero to the given number of decimals.
func roundDecimal(f float64, decimals int) (string, string) {
	s := strconv.FormatFloat(f, 'f', -1, 64)
	intPart, frac, _ := strings.Cut(s, ".")
	if len(frac) <= decimals {
		return intPart, frac + strings.Repeat("0", decimals-len(frac))
	}
	roundUp := frac[decimals] >= '5'
	digits := []byte(intPart + frac[:decimals])
	if roundUp {
		i := len(digits) - 1
		for ; i >= 0 && digits[i] == '9'; i-- {
			digits[i] = '0'
		}
		if i < 0 {
			digits = append([]byte{'1'}, digits...)
		} else {
			digits[i]++
		}
	}
	cut := len(digits) - decimals
	return string(digits[:cut]), string(digits[cut:])
}

func groupThousands(digits string) string {
	var b strings.Builder
	for i, c := range digits {
		if i > 0 && (len(digits)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// formatCustom applies a custom numeric format such as "000", "#,##0.00"
// or "0.#": '0' is a required digit, '#' an optional one, ',' between
// digit placeholders groups thousands, '.' is the decimal point; other
// characters are copied before or after the number.
func formatCustom(f float64, spec string) string {
	first := strings.IndexAny(spec, "0#")
	if first < 0 {
		return spec
	}
	lastPos := strings.LastIndexAny(spec, "0#")
	prefix, pattern, suffix := spec[:first], spec[first:lastPos+1], spec[lastPos+1:]
	intPat, fracPat, _ := strings.Cut(pattern, ".")
	minInt := strings.Count(intPat, "0")
	minFrac, maxFrac := strings.Count(fracPat, "0"), strings.Count(fracPat, "0")+strings.Count(fracPat, "#")
	intPart, frac := roundDecimal(math.Abs(f), maxFrac)
	frac = strings.TrimRight(frac, "0")
	if len(frac) < minFrac {
		frac += strings.Repeat("0", minFrac-len(frac))
	}
	intPart = strings.TrimLeft(intPart, "0")
	if len(intPart) < minInt {
		intPart = strings.Repeat("0", minInt-len(intPart)) + intPart
	}
	if strings.Contains(intPat, ",") {
		intPart = groupThousands(intPart)
	}
	s := intPart
	if frac != "" {
		s += "." + frac
	}
	if f < 0 && strings.ContainsAny(s, "123456789") {
		s = "-" + s
	}
	return prefix + s + suffix
}
