package armexpr

import (
	"crypto/rand"
	"crypto/sha1"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math/bits"
	"strings"
)

// hashFunctions are the deterministic name functions uniqueString() and
// guid(), and newGuid(), which a template engine allows only in parameter
// default values.
var hashFunctions = map[string]Func{
	"uniqueString": Eager(1, -1, func(args []any) (any, error) {
		s, err := joinStrings(args)
		if err != nil {
			return nil, err
		}
		return UniqueString(s), nil
	}),
	"guid": Eager(1, -1, func(args []any) (any, error) {
		s, err := joinStrings(args)
		if err != nil {
			return nil, err
		}
		return GUID(s), nil
	}),
	"newGuid": Eager(0, 0, func([]any) (any, error) {
		var b [16]byte
		rand.Read(b[:])
		return formatUUID(b, 4), nil
	}),
}

// joinStrings joins string arguments with '-', as both hash functions do.
func joinStrings(args []any) (string, error) {
	parts := make([]string, len(args))
	for i := range args {
		s, err := stringArg(args, i)
		if err != nil {
			return "", err
		}
		parts[i] = s
	}
	s := strings.Join(parts, "-")
	if len(s) > 131072 {
		return "", fmt.Errorf("the input is %d characters long; at most 131072 are allowed", len(s))
	}
	return s, nil
}

// UniqueString is uniqueString(s): ARM's 64-bit MurmurHash variant of the
// UTF-8 bytes of s (two 32-bit Murmur3 lanes over 8-byte blocks, seed 0),
// written as 13 characters of the alphabet a-z2-7, five bits at a time
// from the top.
func UniqueString(s string) string {
	const (
		c1 = 0x239b961b
		c2 = 0xab0e9789
	)
	data := []byte(s)
	var h1, h2 uint32
	n := len(data) / 8 * 8
	for i := 0; i < n; i += 8 {
		k1 := binary.LittleEndian.Uint32(data[i:])
		k2 := binary.LittleEndian.Uint32(data[i+4:])
		h1 ^= bits.RotateLeft32(k1*c1, 15) * c2
		h1 = (bits.RotateLeft32(h1, 19)+h2)*5 + 0x561ccd1b
		h2 ^= bits.RotateLeft32(k2*c2, 17) * c1
		h2 = (bits.RotateLeft32(h2, 13)+h1)*5 + 0x0bcaa747
	}
	if tail := data[n:]; len(tail) > 0 {
		var k1, k2 uint32
		for i, b := range tail {
			if i < 4 {
				k1 |= uint32(b) << (8 * i)
			} else {
				k2 |= uint32(b) << (8 * (i - 4))
			}
		}
		h1 ^= bits.RotateLeft32(k1*c1, 15) * c2
		if len(tail) > 4 {
			h2 ^= bits.RotateLeft32(k2*c2, 17) * c1
		}
	}
	h1 ^= uint32(len(data))
	h2 ^= uint32(len(data))
	h1 += h2
	h2 += h1
	h1, h2 = fmix32(h1), fmix32(h2)
	h1 += h2
	h2 += h1
	u := uint64(h2)<<32 | uint64(h1)
	const alphabet = "abcdefghijklmnopqrstuvwxyz234567"
	out := make([]byte, 13)
	for i := range out {
		out[i] = alphabet[u>>59]
		u <<= 5
	}
	return string(out)
}

func fmix32(h uint32) uint32 {
	h ^= h >> 16
	h *= 0x85ebca6b
	h ^= h >> 13
	h *= 0xc2b2ae35
	h ^= h >> 16
	return h
}

// guidNamespace is the namespace of ARM's name-based GUIDs.
var guidNamespace = [16]byte{0x11, 0xfb, 0x06, 0xfb, 0x71, 0x2d, 0x4d, 0xdd, 0x98, 0xc7, 0xe7, 0x1b, 0xbd, 0x58, 0x88, 0x30}

// GUID is guid(s): the RFC 4122 version-5 (SHA-1) UUID of the UTF-8 bytes
// of s in the namespace 11fb06fb-712d-4ddd-98c7-e71bbd588830.
func GUID(s string) string {
	h := sha1.New()
	h.Write(guidNamespace[:])
	h.Write([]byte(s))
	var b [16]byte
	copy(b[:], h.Sum(nil))
	return formatUUID(b, 5)
}

// formatUUID sets the version and RFC 4122 variant bits and prints the
// lower-case 8-4-4-4-12 form.
func formatUUID(b [16]byte, version byte) string {
	b[6] = b[6]&0x0f | version<<4
	b[8] = b[8]&0x3f | 0x80
	x := hex.EncodeToString(b[:])
	return x[:8] + "-" + x[8:12] + "-" + x[12:16] + "-" + x[16:20] + "-" + x[20:]
}
