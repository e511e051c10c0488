package update

import "testing"

func TestSemver(t *testing.T) {
	ordered := []string{
		"1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta", "1.0.0-beta.2",
		"1.0.0-beta.11", "1.0.0-rc.1", "1.0.0", "1.0.1", "1.2.0", "1.10.0", "4.2.0-rc.1", "4.2.0", "10.0.0",
	}
	for i, a := range ordered {
		for j, b := range ordered {
			x, err := parseSemver(a)
			if err != nil {
				t.Fatalf("parseSemver(%q) = %v", a, err)
			}
			y, err := parseSemver(b)
			if err != nil {
				t.Fatalf("parseSemver(%q) = %v", b, err)
			}
			if got, want := x.compare(y), cmpInt(i, j); got != want {
				t.Errorf("compare(%q, %q) = %d, want %d", a, b, got, want)
			}
		}
	}
	if x, y := mustSemver(t, "4.2.0+build.7"), mustSemver(t, "4.2.0"); x.compare(y) != 0 {
		t.Errorf("build metadata takes part in the order")
	}
	for _, bad := range []string{"", "4", "4.2", "v4.2.0", "4.2.0.1", "04.2.0", "4.2.x", "4.2.0-", "4.2.0-rc..1", "4.2.0-01", "4.2.0+", "4.2.0+a_b", "-4.2.0", "4.2.0 "} {
		if _, err := parseSemver(bad); err == nil {
			t.Errorf("parseSemver(%q) succeeded, want an error", bad)
		}
	}
}

func mustSemver(t *testing.T, s string) semver {
	t.Helper()
	v, err := parseSemver(s)
	if err != nil {
		t.Fatalf("parseSemver(%q) = %v", s, err)
	}
	return v
}

func cmpInt(i, j int) int {
	switch {
	case i < j:
		return -1
	case i > j:
		return 1
	}
	return 0
}

// FuzzSemver checks that parsing never panics and that the order is
// antisymmetric and reflexive.
func FuzzSemver(f *testing.F) {
	f.Add("4.2.0", "4.2.0-rc.1")
	f.Add("1.0.0-alpha.1", "1.0.0-alpha.beta")
	f.Add("1.0.0+x", "1.0.0")
	f.Fuzz(func(t *testing.T, a, b string) {
		x, errx := parseSemver(a)
		y, erry := parseSemver(b)
		if errx != nil || erry != nil {
			return
		}
		if x.compare(x) != 0 || x.compare(y) != -y.compare(x) {
			t.Errorf("compare(%q, %q) = %d, compare(%q, %q) = %d", a, b, x.compare(y), b, a, y.compare(x))
		}
	})
}

func TestCompareVersions(t *testing.T) {
	for _, c := range []struct {
		a, b string
		want int
	}{
		{"4.2.0", "4.10.0", -1},
		{"4.10.0", "4.2.0", 1},
		{"4.2.0-rc.1", "4.2.0", -1},
		{"4.2.0+build.7", "4.2.0", 0},
		{"not a version", "0.0.1", -1},
		{"0.0.1", "not a version", 1},
		{"a", "b", -1},
	} {
		if got := CompareVersions(c.a, c.b); got != c.want {
			t.Errorf("CompareVersions(%q, %q) = %d, want %d", c.a, c.b, got, c.want)
		}
	}
}
