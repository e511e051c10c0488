package armexpr_test

import (
	"errors"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/citadel-cloud/citadel/internal/armexpr"
)

// evalCase is an expression and its value.
type evalCase struct {
	expr string
	want any
}

// runCases evaluates each expression with the built-in functions.
func runCases(t *testing.T, cases []evalCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.expr, func(t *testing.T) {
			got, err := eval(armexpr.Builtins(), tc.expr)
			if err != nil {
				t.Fatalf("%s error = %v, want %v", tc.expr, err, tc.want)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("%s mismatch (-want +got):\n%s", tc.expr, diff)
			}
		})
	}
}

func eval(fns *armexpr.Functions, s string) (any, error) {
	e, err := armexpr.Parse(s)
	if err != nil {
		return nil, err
	}
	return e.Eval(fns)
}

type obj = map[string]any
type arr = []any

func TestStringFunctions(t *testing.T) {
	runCases(t, []evalCase{
		{"[base64('abc')]", "YWJj"},
		{"[base64ToString(concat(base64('abc'), ''))]", "abc"},
		{"[base64ToJson(base64('{\"a\": [1, 2]}')).a[1]]", int64(2)},
		{"[concat('vm', 3, '-', true())]", "vm3-True"},
		{"[concat(createArray(1), createArray(2, 3))]", arr{int64(1), int64(2), int64(3)}},
		{"[contains('abc', 'B')]", false},
		{"[contains(createObject('Key', 1), 'KEY')]", true},
		{"[contains(createArray(1, 2), 2)]", true},
		{"[empty(createObject())]", true},
		{"[endsWith('abcDEF', 'def')]", true},
		{"[startsWith('abc', '')]", true},
		{"[first('')]", ""},
		{"[last('héllo')]", "o"},
		{"[format('{0,5}|{1,-4}|{2:N2}|{3:D4}|{4:X}', 'ab', 'c', json('1234.5'), 7, 255)]", "   ab|c   |1,234.50|0007|FF"},
		{"[format('{0:000}-{0:#,##0.0}-{{x}}', 2)]", "002-2.0-{x}"},
		{"[format('{0}', createObject('a', 'b'))]", "{'a':'b'}"},
		{"[indexOf('abcABC', 'C')]", int64(2)},
		{"[lastIndexOf('abcABC', 'c')]", int64(5)},
		{"[lastIndexOf(createArray('a', 'b', 'a'), 'a')]", int64(2)},
		{"[join(createArray('a', 1, false()), '/')]", "a/1/False"},
		{"[json('[1, {\"b\": null}]')]", arr{int64(1), obj{"b": nil}}},
		{"[json('1.5')]", 1.5},
		{"[length('héllo')]", int64(5)},
		{"[length(createObject('a', 1, 'b', 2))]", int64(2)},
		{"[padLeft(13, 5)]", "   13"},
		{"[padLeft('7', 3, '0')]", "007"},
		{"[replace('a-b-c', '-', '')]", "abc"},
		{"[skip(createArray(1, 2, 3), 1)]", arr{int64(2), int64(3)}},
		{"[take('héllo', 2)]", "hé"},
		{"[split('a,b;;c', createArray(',', ';'))]", arr{"a", "b", "", "c"}},
		{"[string(createArray(1, 'a'))]", `[1,"a"]`},
		{"[string(true())]", "True"},
		{"[string(json('1.0'))]", "1.0"},
		{"[substring('hello', 1, 3)]", "ell"},
		{"[toUpper('straße')]", "STRAßE"}, // character by character, like .NET's invariant culture
		{"[trim(' \t x \n')]", "x"},
		{"[like('aXbYa', 'a*b*a')]", true},
		{"[like('abcabc', '*ABC')]", true},
		{"[like('', '***')]", true},
		{"[like('a', 'b')]", false},
		{"[like('abc**def', '*def')]", true},
	})
}

func TestArrayFunctions(t *testing.T) {
	runCases(t, []evalCase{
		{"[array('a')]", arr{"a"}},
		{"[array(createArray())]", arr{}},
		{"[createArray()]", arr{}},
		{"[createObject()]", obj{}},
		{"[coalesce(null(), null())]", nil},
		{"[distinct(createArray(1, 2, 1, createObject('a', 1), createObject('a', 1)))]", arr{int64(1), int64(2), obj{"a": int64(1)}}},
		{"[flatten(createArray(createArray(1), createArray(), createArray(2, 3)))]", arr{int64(1), int64(2), int64(3)}},
		{"[intersection(createArray(1, 2, 3, 2), createArray(2, 3, 4))]", arr{int64(2), int64(3)}},
		{"[intersection(createObject('a', 1, 'b', 2), createObject('a', 1, 'b', 3))]", obj{"a": int64(1)}},
		{"[union(createArray(1, 2), createArray(2, 3))]", arr{int64(1), int64(2), int64(3)}},
		{"[union(createObject('a', createObject('x', 1, 'l', createArray(1))), createObject('a', createObject('y', 2, 'l', createArray(2))))]",
			obj{"a": obj{"x": int64(1), "y": int64(2), "l": arr{int64(2)}}}},
		{"[items(createObject('b', 1, 'B', 2, 'a', 3, '1', 4))]", arr{
			obj{"key": "1", "value": int64(4)}, obj{"key": "a", "value": int64(3)},
			obj{"key": "b", "value": int64(1)}, obj{"key": "B", "value": int64(2)},
		}},
		{"[objectKeys(createObject('b', 1, 'a', 2))]", arr{"a", "b"}},
		{"[shallowMerge(createArray(createObject('a', createObject('x', 1)), createObject('a', createObject('y', 2))))]", obj{"a": obj{"y": int64(2)}}},
		{"[range(5, 3)]", arr{int64(5), int64(6), int64(7)}},
		{"[range(0, 0)]", arr{}},
		{"[tryGet(createObject('a', createArray(10, 20)), 'a', 1)]", int64(20)},
		{"[tryGet(createObject('a', 1), 'b', 'c')]", nil},
		{"[indexFromEnd(createArray(1, 2, 3), 1)]", int64(3)},
		{"[tryIndexFromEnd(createArray(1, 2, 3), 4)]", nil},
		{"[createArray(1, 2, 3)[1]]", int64(2)},
		{"[createObject('Name', 'x').name]", "x"},
		{"[createObject('a', 'x')['a']]", "x"},
	})
}

func TestLambdaFunctions(t *testing.T) {
	runCases(t, []evalCase{
		{"[filter(createArray(1, 2, 3, 4), lambda('x', equals(mod(lambdaVariables('x'), 2), 0)))]", arr{int64(2), int64(4)}},
		{"[map(createArray('a', 'b'), lambda('x', 'i', concat(lambdaVariables('x'), string(lambdaVariables('i')))))]", arr{"a0", "b1"}},
		{"[reduce(createArray(1, 2, 3), 10, lambda('acc', 'x', add(lambdaVariables('acc'), lambdaVariables('x'))))]", int64(16)},
		{"[reduce(createArray('a', 'b'), '', lambda('acc', 'x', 'i', concat(lambdaVariables('acc'), string(lambdaVariables('i')))))]", "01"},
		{"[sort(createArray(8, 3, 10, -13, 5), lambda('x', 'y', less(lambdaVariables('x'), lambdaVariables('y'))))]", arr{int64(-13), int64(3), int64(5), int64(8), int64(10)}},
		{"[sort(createArray('ghi', 'abc', 'def'), lambda('x', 'y', greater(lambdaVariables('x'), lambdaVariables('y'))))]", arr{"ghi", "def", "abc"}},
		{"[toObject(createArray(1, 2), lambda('x', string(lambdaVariables('x'))))]", obj{"1": int64(1), "2": int64(2)}},
		{"[groupBy(createArray('ab', 'ac', 'b'), lambda('s', first(lambdaVariables('s'))), lambda('s', length(lambdaVariables('s'))))]", obj{"a": arr{int64(2), int64(2)}, "b": arr{int64(1)}}},
		{"[mapValues(createObject('a', 1), lambda('v', mul(lambdaVariables('v'), 3)))]", obj{"a": int64(3)}},
		// Nested lambdas see the outer lambda's variables.
		{"[map(createArray(1, 2), lambda('x', map(createArray(10), lambda('y', add(lambdaVariables('x'), lambdaVariables('y'))))))]", arr{arr{int64(11)}, arr{int64(12)}}},
	})
}

func TestLogicFunctions(t *testing.T) {
	runCases(t, []evalCase{
		{"[equals(createArray(1, createObject('a', 'b')), createArray(1, createObject('a', 'b')))]", true},
		{"[equals('a', 'A')]", false},
		{"[equals(1, json('1.0'))]", true},
		{"[less('a', 'B')]", true},
		{"[less('B', 'b')]", false},
		{"[greater('A', 'a')]", true},
		{"[less('10', '9')]", true},
		{"[less('a-b', 'a_b')]", false},
		{"[lessOrEquals(2, 2)]", true},
		{"[greaterOrEquals(json('2.5'), 2)]", true},
		{"[and(true(), true(), false())]", false},
		{"[or(false(), false(), true())]", true},
		{"[not(false())]", true},
		{"[bool('TRUE')]", true},
		{"[bool(1)]", true},
		{"[if(true(), 'yes', div(1, 0))]", "yes"}, // the branch not taken is not evaluated
		{"[null()]", nil},
	})
}

func TestNumericFunctions(t *testing.T) {
	runCases(t, []evalCase{
		{"[add(-1, 9223372036854775807)]", int64(9223372036854775806)},
		{"[sub(3, 5)]", int64(-2)},
		{"[mul(-4, 5)]", int64(-20)},
		{"[div(-7, 2)]", int64(-3)},
		{"[mod(-7, 3)]", int64(-1)},
		{"[int('42')]", int64(42)},
		{"[int(json('2.5'))]", int64(2)},
		{"[float('1.25')]", 1.25},
		{"[float(3)]", 3.0},
		{"[min(createArray(3, -1, 2))]", int64(-1)},
		{"[max(3, 7, 5)]", int64(7)},
	})
}

func TestDateFunctions(t *testing.T) {
	runCases(t, []evalCase{
		{"[dateTimeAdd('2020-01-31T00:00:00Z', 'P1M')]", "2020-03-02T00:00:00Z"},
		{"[dateTimeAdd('2020-04-07T14:53:14Z', '-PT1H30M')]", "2020-04-07T13:23:14Z"},
		{"[dateTimeAdd('2020-04-07T14:53:14.5Z', 'P1W')]", "2020-04-14T14:53:14.5Z"},
		{"[dateTimeAdd('20200407T145314Z', 'P1D')]", "20200408T145314Z"},
		{"[dateTimeAdd('2020-04-07T14:53:14Z', 'P1D', 'yyyy-MM-dd HH:mm:ss tt ddd MMM')]", "2020-04-08 14:53:14 PM Wed Apr"},
		{"[dateTimeAdd('2020-04-07T14:53:14Z', 'PT0S', 'u')]", "2020-04-07 14:53:14Z"},
		{"[dateTimeAdd('2020-04-07T04:05:06Z', 'PT0S', 'd')]", "04/07/2020"},
		{"[dateTimeAdd('2020-04-07T04:05:06Z', 'PT0S', '''T''hh.fff')]", "T04.000"},
		{"[dateTimeFromEpoch(0)]", "1970-01-01T00:00:00Z"},
		{"[dateTimeToEpoch('2023-03-31T01:00:38Z')]", int64(1680224438)},
	})
	got, err := eval(armexpr.Builtins(), "[utcNow()]")
	if s, _ := got.(string); err != nil || !regexp.MustCompile(`^\d{8}T\d{6}Z$`).MatchString(s) {
		t.Errorf("utcNow() = %v, %v; want yyyyMMddTHHmmssZ", got, err)
	}
	got, err = eval(armexpr.Builtins(), "[utcNow('yyyy-MM-ddTHH:mm:ss.fffffffZ')]")
	if s, _ := got.(string); err != nil || !regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{7}Z$`).MatchString(s) {
		t.Errorf("utcNow(policy format) = %v, %v", got, err)
	}
}

func TestHashFunctions(t *testing.T) {
	runCases(t, []evalCase{
		// Engine vectors (Bicep's FunctionResolverTests and parameters baseline).
		{"[uniqueString('asd', 'asdf', 'asdf')]", "iizpqit7ih3cc"},
		{"[guid('asdf')]", "228d27cc-6fdb-5934-b7ac-1efccebade04"},
		// Both join their arguments with '-'.
		{"[equals(uniqueString('a', 'b'), uniqueString('a-b'))]", true},
		{"[equals(guid('a', 'b'), guid('a-b'))]", true},
	})
	for _, s := range []string{"", "a", "abcd", "abcdefg", "abcdefgh", "abcdefghijklmnopq"} {
		if u := armexpr.UniqueString(s); !regexp.MustCompile(`^[a-z2-7]{13}$`).MatchString(u) {
			t.Errorf("UniqueString(%q) = %q, want 13 characters of a-z2-7", s, u)
		}
	}
	got, err := eval(armexpr.Builtins(), "[newGuid()]")
	if s, _ := got.(string); err != nil || !regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`).MatchString(s) {
		t.Errorf("newGuid() = %v, %v; want a version 4 UUID", got, err)
	}
}

func TestURIFunctions(t *testing.T) {
	runCases(t, []evalCase{
		{"[uri('http://contoso.org/a/b/', '../c?x=1')]", "http://contoso.org/a/c?x=1"},
		{"[uriComponent('UB*8h 0+=_)9h9n')]", "UB%2A8h%200%2B%3D_%299h9n"},
		{"[uriComponentToString('a%2Fb%zz')]", "a/b%zz"},
		{"[dataUri(createObject('a', 1))]", "data:application/json;charset=utf-8;base64,eyJhIjoxfQ=="},
		{"[dataUriToString(dataUri('abc'))]", "abc"},
		{"[dataUriToString('data:text/plain;charset=utf8;base64,SGk=')]", "Hi"},
		{"[parseUri('https://example.com:8443/a%20b?q=1')]", obj{
			"absoluteUri": "https://example.com:8443/a%20b?q=1", "scheme": "https", "host": "example.com",
			"port": int64(8443), "path": "/a%20b", "query": "?q=1",
		}},
		{"[buildUri(createObject('scheme', 'https', 'host', 'example.com', 'port', 8443, 'path', '/x', 'query', '?a=b'))]", "https://example.com:8443/x?a=b"},
	})
}

func TestCIDRFunctions(t *testing.T) {
	runCases(t, []evalCase{
		{"[parseCidr('10.144.0.0/20')]", obj{
			"network": "10.144.0.0", "netmask": "255.255.240.0", "broadcast": "10.144.15.255",
			"firstUsable": "10.144.0.1", "lastUsable": "10.144.15.254", "cidr": int64(20),
		}},
		{"[parseCidr('fdad:3236:5555::/48')]", obj{
			"network": "fdad:3236:5555::", "netmask": "ffff:ffff:ffff::",
			"firstUsable": "fdad:3236:5555::", "lastUsable": "fdad:3236:5555:ffff:ffff:ffff:ffff:ffff", "cidr": int64(48),
		}},
		{"[cidrSubnet('10.144.0.0/20', 24, 3)]", "10.144.3.0/24"},
		{"[cidrHost('10.144.3.0/24', 3)]", "10.144.3.4"},
	})
}

func TestResourceIDFunctions(t *testing.T) {
	const sub = "87d64d6d-6d17-4ad7-b507-16d9bc498781"
	for _, tc := range []struct {
		name    string
		sub, rg string
		expr    string
		want    string
	}{
		{"resource group", sub, "rg", "[resourceId('Microsoft.Network/virtualNetworks/subnets', 'vnet', 'sub')]",
			"/subscriptions/" + sub + "/resourceGroups/rg/providers/Microsoft.Network/virtualNetworks/vnet/subnets/sub"},
		{"names with slashes", sub, "rg", "[resourceId('Microsoft.Network/virtualNetworks/subnets', 'vnet/sub')]",
			"/subscriptions/" + sub + "/resourceGroups/rg/providers/Microsoft.Network/virtualNetworks/vnet/subnets/sub"},
		{"other group", sub, "rg", "[resourceId('other', 'My.Rp/t', 'n')]", "/subscriptions/" + sub + "/resourceGroups/other/providers/My.Rp/t/n"},
		{"subscription scope", sub, "", "[resourceId('My.Rp/t', 'n')]", "/subscriptions/" + sub + "/providers/My.Rp/t/n"},
		{"tenant scope", "", "", "[resourceId('My.Rp/t', 'n')]", "/providers/My.Rp/t/n"},
		{"resource group ID", sub, "rg", "[subscriptionResourceId('Microsoft.Resources/resourceGroups', 'x')]", "/subscriptions/" + sub + "/resourceGroups/x"},
		{"management group", "", "", "[managementGroupResourceId('mg1', 'Microsoft.Authorization/policyDefinitions', 'p')]",
			"/providers/Microsoft.Management/managementGroups/mg1/providers/Microsoft.Authorization/policyDefinitions/p"},
		{"extension", sub, "rg", "[extensionResourceId(resourceId('My.Rp/t', 'n'), 'Microsoft.Authorization/locks', 'l')]",
			"/subscriptions/" + sub + "/resourceGroups/rg/providers/My.Rp/t/n/providers/Microsoft.Authorization/locks/l"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := eval(armexpr.Builtins().With(armexpr.ResourceIDFunctions(tc.sub, tc.rg, "")), tc.expr)
			if err != nil || got != tc.want {
				t.Errorf("%s = %v, %v; want %s", tc.expr, got, err, tc.want)
			}
		})
	}
}

// TestErrors checks that failures name the function and the reason.
func TestErrors(t *testing.T) {
	for _, tc := range []struct {
		expr     string
		function string
		reason   string
	}{
		{"[substring('hello', 3, 5)]", "substring", "the index parameter: '3', the length parameter: '5', the length of the string parameter: '5'"},
		{"[div(1, 0)]", "div", "divide by zero"},
		{"[add(9223372036854775807, 1)]", "add", "64-bit"},
		{"[createObject('a')]", "createObject", "even number"},
		{"[range(0, 10001)]", "range", "between 0 and 10000"},
		{"[concat(createArray(1), 'a')]", "concat", "all arrays or all strings"},
		{"[less(1, 'a')]", "less", "both must be numbers or both strings"},
		{"[filter(createArray(1), 'x')]", "filter", "must be a lambda"},
		{"[map(createArray(1), lambda('x', lambdaVariables('y')))]", "lambdaVariables", "'y' is not defined"},
		{"[lambda('x', 1)]", "lambda", "only be an argument"},
		{"[noSuchFunction()]", "noSuchFunction", "unknown or not allowed"},
		{"[json('{')]", "json", "invalid JSON"},
		{"[toObject(createArray(1), lambda('x', lambdaVariables('x')))]", "toObject", "must return a string"},
		{"[uniqueString(1)]", "uniqueString", "type 'String'"},
		{"[cidrSubnet('10.0.0.0/24', 16, 0)]", "cidrSubnet", "between 24 and 32"},
	} {
		t.Run(tc.expr, func(t *testing.T) {
			_, err := eval(armexpr.Builtins(), tc.expr)
			e, ok := errors.AsType[*armexpr.Error](err)
			if !ok || e.Function != tc.function || !strings.Contains(strings.ToLower(err.Error()), strings.ToLower(tc.reason)) {
				t.Errorf("%s error = %v, want function %s failing with %q", tc.expr, err, tc.function, tc.reason)
			}
		})
	}
	for _, tc := range []struct{ expr, reason string }{
		{"[createObject('a', 1).b]", "'b' doesn't exist, available properties are 'a'"},
		{"[createArray(1)[1]]", "index '1' is out of bounds"},
		{"['a'.b]", "not an object"},
	} {
		if _, err := eval(armexpr.Builtins(), tc.expr); err == nil || !strings.Contains(err.Error(), tc.reason) {
			t.Errorf("%s error = %v, want %q", tc.expr, err, tc.reason)
		}
	}
}

// TestFunctionTables checks how a caller shapes the function set: adding
// context functions, overriding, a prefix family, and restricting a
// dialect.
func TestFunctionTables(t *testing.T) {
	field := armexpr.Eager(1, 1, func(args []any) (any, error) { return "field:" + args[0].(string), nil })
	policy := armexpr.Builtins().Without("copyIndex", "reference", "lambda", "utcNow").With(map[string]armexpr.Func{"field": field})
	if got, err := eval(policy, "[concat(field('location'), '!')]"); err != nil || got != "field:location!" {
		t.Errorf("policy field() = %v, %v", got, err)
	}
	if _, err := eval(policy, "[filter(createArray(1), lambda('x', true()))]"); err == nil || !strings.Contains(err.Error(), "'lambda'") {
		t.Errorf("a lambda under a table without lambda() gave %v, want an error naming lambda", err)
	}
	if _, err := eval(policy, "[UTCNOW()]"); !errors.Is(err, armexpr.ErrUnknownFunction) {
		t.Errorf("utcNow() in the restricted table gave %v, want ErrUnknownFunction", err)
	}
	list := armexpr.Builtins().WithPrefix("list", func(c *armexpr.Call) (any, error) { return c.Name(), nil })
	if got, err := eval(list, "[listKeys('x', '2020-01-01')]"); err != nil || got != "listKeys" {
		t.Errorf("listKeys() through the list prefix = %v, %v", got, err)
	}
	override := armexpr.Builtins().With(map[string]armexpr.Func{"TOLOWER": armexpr.Eager(1, 1, func([]any) (any, error) { return "overridden", nil })})
	if got, _ := eval(override, "[toLower('A')]"); got != "overridden" {
		t.Errorf("an overridden toLower() gave %v", got)
	}
	if got, _ := eval(armexpr.Builtins(), "[toLower('A')]"); got != "a" {
		t.Errorf("With changed the built-in table: toLower('A') = %v", got)
	}
}

func TestParse(t *testing.T) {
	for _, tc := range []struct{ in, canonical string }{
		{"[concat( 'a' ,'b''c' )]", "[concat('a', 'b''c')]"},
		{"[parameters('x').a[0]['b c'].d]", "[parameters('x').a[0]['b c'].d]"},
		{"[ns.fn(-1, createArray())]", "[ns.fn(-1, createArray())]"},
		{"['[literal]']", "['[literal]']"},
	} {
		e, err := armexpr.Parse(tc.in)
		if err != nil {
			t.Errorf("Parse(%q) error = %v", tc.in, err)
			continue
		}
		if got := e.String(); got != tc.canonical {
			t.Errorf("Parse(%q).String() = %q, want %q", tc.in, got, tc.canonical)
		}
	}
	for _, bad := range []string{"[]", "[concat('a']", "[concat('a',)]", "['unterminated]", "[a]", "[1.5]", "[f() g()]", "[x.()]", "[f(]", "[[escaped]", "plain", "[99999999999999999999]"} {
		if _, err := armexpr.Parse(bad); err == nil {
			t.Errorf("Parse(%q) succeeded, want a syntax error", bad)
		} else if _, ok := errors.AsType[*armexpr.SyntaxError](err); !ok {
			t.Errorf("Parse(%q) error %T, want *SyntaxError", bad, err)
		}
	}
	deep := "[" + strings.Repeat("a(", 300) + strings.Repeat(")", 300) + "]"
	if _, err := armexpr.Parse(deep); err == nil {
		t.Errorf("Parse of a 300-deep expression succeeded, want an error")
	}
}

func TestEscapes(t *testing.T) {
	for _, tc := range []struct {
		in     string
		isExpr bool
		lit    string
	}{
		{"[concat('a')]", true, ""},
		{"[[concat('a')]", false, "[concat('a')]"},
		{"[[1,2,3 ]", false, "[1,2,3 ]"},
		{"[[unclosed", false, "[[unclosed"},
		{"plain", false, "plain"},
	} {
		if got := armexpr.IsExpression(tc.in); got != tc.isExpr {
			t.Errorf("IsExpression(%q) = %v, want %v", tc.in, got, tc.isExpr)
		}
		if !tc.isExpr {
			if got := armexpr.Unescape(tc.in); got != tc.lit {
				t.Errorf("Unescape(%q) = %q, want %q", tc.in, got, tc.lit)
			}
		}
	}
}

func TestUsesAndCalls(t *testing.T) {
	e, err := armexpr.Parse("[concat(reference(resourceId('My.Rp/t', 'n')).x, listKeys('a', '1').k)]")
	if err != nil {
		t.Fatal(err)
	}
	if !e.Uses("REFERENCE") || !e.Uses("listkeys") || e.Uses("variables") {
		t.Errorf("Uses() does not see the calls of %s", e)
	}
	var names []string
	for _, c := range e.Calls() {
		names = append(names, c.Name)
	}
	if diff := cmp.Diff([]string{"concat", "reference", "resourceId", "listKeys"}, names); diff != "" {
		t.Errorf("Calls() mismatch (-want +got):\n%s", diff)
	}
	ref := e.Calls()[1]
	id, err := ref.EvalArg(0, armexpr.Builtins().With(armexpr.ResourceIDFunctions("s", "g", "")))
	if err != nil || id != "/subscriptions/s/resourceGroups/g/providers/My.Rp/t/n" {
		t.Errorf("reference()'s first argument = %v, %v", id, err)
	}
}

func TestParseJSON(t *testing.T) {
	got, err := armexpr.ParseJSON([]byte("\ufeff{\n // a comment\n \"a\": [1, 2.5, -3e2, 9223372036854775808, /* inline */ \"\\u00e9\\ud83d\\ude00\",],\n \"b\": {\"c\": null, \"c\": true,},\n}"))
	if err != nil {
		t.Fatalf("ParseJSON error = %v", err)
	}
	want := obj{"a": arr{int64(1), 2.5, -300.0, 9223372036854775808.0, "é😀"}, "b": obj{"c": true}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ParseJSON mismatch (-want +got):\n%s", diff)
	}
	for _, bad := range []string{"", "{", "[1 2]", "{\"a\" 1}", "/* open", "tru", "{\"a\":1} x", "\"\\x\""} {
		if _, err := armexpr.ParseJSON([]byte(bad)); err == nil {
			t.Errorf("ParseJSON(%q) succeeded, want an error", bad)
		}
	}
}
