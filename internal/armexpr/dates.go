package armexpr

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// dateFunctions are the date functions of Part B.4. utcNow reads the
// clock; a template engine allows it only in parameter default values.
var dateFunctions = map[string]Func{
	"utcNow":            Eager(0, 1, utcNow),
	"dateTimeAdd":       Eager(2, 3, dateTimeAdd),
	"dateTimeFromEpoch": Eager(1, 1, dateTimeFromEpoch),
	"dateTimeToEpoch":   Eager(1, 1, dateTimeToEpoch),
}

// utcNow formats the current UTC time; the default format is
// yyyyMMddTHHmmssZ.
func utcNow(args []any) (any, error) {
	f := "yyyyMMddTHHmmssZ"
	if len(args) == 1 {
		var err error
		if f, err = stringArg(args, 0); err != nil {
			return nil, err
		}
	}
	return formatTime(time.Now().UTC(), f)
}

// isoLayouts are the ISO 8601 forms a dateTimeAdd() result keeps; any
// other base value is printed in the .NET general format ("G", en-US) as
// the engine does.
var isoLayouts = []string{
	"2006-01-02T15:04:05Z07:00",
	"2006-01-02T15:04:05",
	"20060102T150405Z07:00",
}

// otherLayouts are further date forms accepted as a base value.
var otherLayouts = []string{
	"2006-01-02 15:04:05Z07:00",
	"2006-01-02 15:04:05",
	"2006-01-02",
	"1/2/2006 3:04:05 PM",
	"1/2/2006 15:04:05",
	"1/2/2006",
}

// parseTime reads a date-time value; layout is the ISO layout it matched
// with its fraction digits, or "" for other forms.
func parseTime(s string) (time.Time, string, error) {
	fraction := "" // the layout of the fraction digits written, if any
	if i := strings.IndexByte(s, '.'); i >= 0 {
		j := i + 1
		for j < len(s) && s[j] >= '0' && s[j] <= '9' {
			j++
		}
		fraction = "." + strings.Repeat("0", j-i-1)
	}
	for _, l := range isoLayouts {
		if t, err := time.Parse(l, s); err == nil {
			return t.UTC(), strings.Replace(l, "05", "05"+fraction, 1), nil
		}
	}
	for _, l := range otherLayouts {
		if t, err := time.Parse(l, s); err == nil {
			return t.UTC(), "", nil
		}
	}
	return time.Time{}, "", fmt.Errorf("the value '%s' is not a valid date-time", s)
}

func dateTimeAdd(args []any) (any, error) {
	s, err := stringArg(args, 0)
	if err != nil {
		return nil, err
	}
	dur, err := stringArg(args, 1)
	if err != nil {
		return nil, err
	}
	t, layout, err := parseTime(s)
	if err != nil {
		return nil, err
	}
	t, err = addDuration(t, dur)
	if err != nil {
		return nil, err
	}
	if len(args) == 3 {
		f, err := stringArg(args, 2)
		if err != nil {
			return nil, err
		}
		return formatTime(t, f)
	}
	if layout != "" {
		return t.Format(layout), nil
	}
	return formatTime(t, "M/d/yyyy h:mm:ss tt")
}

// addDuration adds an ISO 8601 duration such as P1Y2M3DT4H5M6.5S or -P1D.
func addDuration(t time.Time, d string) (time.Time, error) {
	bad := fmt.Errorf("the duration '%s' is not a valid ISO 8601 duration", d)
	sign := 1
	s := d
	if strings.HasPrefix(s, "-") {
		sign, s = -1, s[1:]
	}
	if !strings.HasPrefix(s, "P") || len(s) < 2 {
		return t, bad
	}
	s = s[1:]
	var years, months, days int
	var clock time.Duration
	inTime := false
	for s != "" {
		if s[0] == 'T' {
			inTime, s = true, s[1:]
			continue
		}
		i := 0
		for i < len(s) && (s[i] >= '0' && s[i] <= '9' || s[i] == '.') {
			i++
		}
		if i == 0 || i == len(s) {
			return t, bad
		}
		n, err := strconv.ParseFloat(s[:i], 64)
		if err != nil {
			return t, bad
		}
		unit := s[i]
		s = s[i+1:]
		switch {
		case !inTime && unit == 'Y':
			years += int(n)
		case !inTime && unit == 'M':
			months += int(n)
		case !inTime && unit == 'W':
			days += 7 * int(n)
		case !inTime && unit == 'D':
			days += int(n)
		case inTime && unit == 'H':
			clock += time.Duration(n * float64(time.Hour))
		case inTime && unit == 'M':
			clock += time.Duration(n * float64(time.Minute))
		case inTime && unit == 'S':
			clock += time.Duration(n * float64(time.Second))
		default:
			return t, bad
		}
	}
	return t.AddDate(sign*years, sign*months, sign*days).Add(time.Duration(sign) * clock), nil
}

func dateTimeFromEpoch(args []any) (any, error) {
	n, err := intArg(args, 0)
	if err != nil {
		return nil, err
	}
	return time.Unix(n, 0).UTC().Format("2006-01-02T15:04:05Z"), nil
}

func dateTimeToEpoch(args []any) (any, error) {
	s, err := stringArg(args, 0)
	if err != nil {
		return nil, err
	}
	t, _, err := parseTime(s)
	if err != nil {
		return nil, err
	}
	return t.Unix(), nil
}

// standardFormats are the .NET standard date-time formats of the
// invariant culture.
var standardFormats = map[byte]string{
	'd': "MM/dd/yyyy",
	'D': "dddd, dd MMMM yyyy",
	'f': "dddd, dd MMMM yyyy HH:mm",
	'F': "dddd, dd MMMM yyyy HH:mm:ss",
	'g': "MM/dd/yyyy HH:mm",
	'G': "MM/dd/yyyy HH:mm:ss",
	'm': "MMMM dd",
	'M': "MMMM dd",
	'o': "yyyy'-'MM'-'dd'T'HH':'mm':'ss'.'fffffffK",
	'O': "yyyy'-'MM'-'dd'T'HH':'mm':'ss'.'fffffffK",
	'r': "ddd, dd MMM yyyy HH':'mm':'ss 'GMT'",
	'R': "ddd, dd MMM yyyy HH':'mm':'ss 'GMT'",
	's': "yyyy'-'MM'-'dd'T'HH':'mm':'ss",
	't': "HH:mm",
	'T': "HH:mm:ss",
	'u': "yyyy'-'MM'-'dd HH':'mm':'ss'Z'",
	'U': "dddd, dd MMMM yyyy HH:mm:ss",
	'y': "yyyy MMMM",
	'Y': "yyyy MMMM",
}

// formatTime formats a UTC time with a .NET date-time format string,
// standard ("u", "d"...) or custom ("yyyy-MM-dd HH:mm").
func formatTime(t time.Time, f string) (string, error) {
	if len(f) == 1 {
		std, ok := standardFormats[f[0]]
		if !ok {
			return "", fmt.Errorf("'%s' is not a valid date-time format", f)
		}
		f = std
	}
	var b strings.Builder
	for i := 0; i < len(f); {
		c := f[i]
		n := 1
		for i+n < len(f) && f[i+n] == c {
			n++
		}
		switch c {
		case 'y':
			y := t.Year()
			switch {
			case n <= 2:
				b.WriteString(pad(y%100, n))
			default:
				b.WriteString(pad(y, n))
			}
		case 'M':
			switch {
			case n <= 2:
				b.WriteString(pad(int(t.Month()), n))
			case n == 3:
				b.WriteString(t.Month().String()[:3])
			default:
				b.WriteString(t.Month().String())
			}
		case 'd':
			switch {
			case n <= 2:
				b.WriteString(pad(t.Day(), n))
			case n == 3:
				b.WriteString(t.Weekday().String()[:3])
			default:
				b.WriteString(t.Weekday().String())
			}
		case 'H':
			b.WriteString(pad(t.Hour(), min(n, 2)))
		case 'h':
			b.WriteString(pad((t.Hour()+11)%12+1, min(n, 2)))
		case 'm':
			b.WriteString(pad(t.Minute(), min(n, 2)))
		case 's':
			b.WriteString(pad(t.Second(), min(n, 2)))
		case 'f', 'F':
			if n > 7 {
				return "", errors.New("a date-time format has at most 7 fraction digits")
			}
			digits := fmt.Sprintf("%09d", t.Nanosecond())[:n]
			if c == 'F' {
				digits = strings.TrimRight(digits, "0")
			}
			b.WriteString(digits)
		case 't':
			ampm := "AM"
			if t.Hour() >= 12 {
				ampm = "PM"
			}
			b.WriteString(ampm[:min(n, 2)])
		case 'K':
			b.WriteString("Z")
		case 'z':
			b.WriteString([]string{"+0", "+00", "+00:00"}[min(n, 3)-1])
		case '\'', '"':
			end := strings.IndexByte(f[i+1:], c)
			if end < 0 {
				return "", fmt.Errorf("the date-time format '%s' has an unterminated quote", f)
			}
			b.WriteString(f[i+1 : i+1+end])
			n = end + 2
		case '\\', '%':
			if i+1 < len(f) {
				if c == '\\' {
					b.WriteByte(f[i+1])
					n = 2
				} else {
					n = 1 // % only marks a one-letter custom format
				}
			}
		default:
			b.WriteString(f[i : i+n])
		}
		i += n
	}
	return b.String(), nil
}

func pad(v, width int) string {
	s := strconv.Itoa(v)
	if len(s) < width {
		s = strings.Repeat("0", width-len(s)) + s
	}
	return s
}
