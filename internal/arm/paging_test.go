package arm

import (
	"errors"
	"net/url"
	"testing"
)

func TestSkipToken(t *testing.T) {
	for _, key := range []string{"", "/subscriptions/s/resourcegroups/rg", "ünïcode/?&=+ key", "\x00\xff"} {
		t.Run(key, func(t *testing.T) {
			tok := EncodeSkipToken(key)
			if url.QueryEscape(tok) != tok {
				t.Errorf("EncodeSkipToken(%q) = %q, not URL-safe", key, tok)
			}
			got, err := DecodeSkipToken(tok)
			if err != nil || got != key {
				t.Errorf("DecodeSkipToken(%q) = %q, %v; want %q", tok, got, err, key)
			}
		})
	}
}

func TestDecodeSkipTokenErrors(t *testing.T) {
	for _, tok := range []string{"!!!", "a", "abc=", "a b", "ab+/"} {
		t.Run(tok, func(t *testing.T) {
			got, err := DecodeSkipToken(tok)
			if e, ok := errors.AsType[*Error](err); !ok || e.Status != 400 || e.Code != CodeBadRequest {
				t.Errorf("DecodeSkipToken(%q) = %q, %v; want 400 BadRequest", tok, got, err)
			}
		})
	}
}

func TestParseTop(t *testing.T) {
	tests := []struct {
		in      string
		want    int
		wantErr bool
	}{
		{"", 0, false},
		{"1", 1, false},
		{"50", 50, false},
		{"1000", 1000, false},
		{"0", 0, true},
		{"-1", 0, true},
		{"1001", 0, true},
		{"ten", 0, true},
		{"1.5", 0, true},
		{" 5", 0, true},
		{"99999999999999999999", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseTop(tt.in)
			if tt.wantErr {
				e, ok := errors.AsType[*Error](err)
				if !ok || e.Status != 400 || e.Message != "The $top '"+tt.in+"' is invalid: it must be an integer from 1 to 1000." {
					t.Errorf("ParseTop(%q) = %d, %v; want 400 naming $top", tt.in, got, err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("ParseTop(%q) = %d, %v; want %d", tt.in, got, err, tt.want)
			}
		})
	}
}
