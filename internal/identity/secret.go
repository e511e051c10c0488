package identity

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/crypto/argon2"
)

// Argon2id parameters for new hashes: OWASP's minimum recommendation
// (19 MiB, two passes, one lane). Stored hashes carry their own parameters,
// so these can be raised later without invalidating existing secrets.
const (
	argonMemory  = 19456 // KiB
	argonTime    = 2
	argonThreads = 1
	argonSaltLen = 16
	argonKeyLen  = 32
)

// Upper bounds on the parameters accepted from a stored hash, so that a
// corrupted or hostile record cannot make verification allocate without
// limit.
const (
	maxArgonMemory  = 1 << 20 // KiB: 1 GiB
	maxArgonTime    = 16
	maxArgonThreads = 16
)

var errBadHash = errors.New("identity: malformed argon2id hash")

// hashSlots bounds the number of argon2id computations running at once: each
// takes about 19 MiB, and a burst of token requests must not exhaust memory.
var hashSlots = make(chan struct{}, max(runtime.GOMAXPROCS(0), 2))

func argonKey(ctx context.Context, secret, salt []byte, t, m uint32, p uint8, n uint32) ([]byte, error) {
	select {
	case hashSlots <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	defer func() { <-hashSlots }()
	return argon2.IDKey(secret, salt, t, m, p, n), nil
}

// hashSecret returns secret's argon2id hash as a PHC string:
// $argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>, salt and hash in unpadded
// standard base64.
func hashSecret(ctx context.Context, secret string) (string, error) {
	salt := make([]byte, argonSaltLen)
	rand.Read(salt)
	key, err := argonKey(ctx, []byte(secret), salt, argonTime, argonMemory, argonThreads, argonKeyLen)
	if err != nil {
		return "", err
	}
	return formatPHC(phc{memory: argonMemory, time: argonTime, threads: argonThreads, salt: salt, key: key}), nil
}

// phc is a parsed argon2id PHC string.
type phc struct {
	memory, time uint32
	threads      uint8
	salt, key    []byte
}

func formatPHC(h phc) string {
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, h.memory, h.time, h.threads, b64.EncodeToString(h.salt), b64.EncodeToString(h.key))
}

// parsePHC parses an argon2id PHC string as written by hashSecret.
func parsePHC(s string) (phc, error) {
	parts := strings.Split(s, "$")
	// "", "argon2id", "v=19", "m=..,t=..,p=..", salt, hash
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" {
		return phc{}, errBadHash
	}
	if parts[2] != "v="+strconv.Itoa(argon2.Version) {
		return phc{}, errBadHash
	}
	var h phc
	params := strings.Split(parts[3], ",")
	if len(params) != 3 {
		return phc{}, errBadHash
	}
	for i, name := range []string{"m=", "t=", "p="} {
		v, ok := strings.CutPrefix(params[i], name)
		if !ok {
			return phc{}, errBadHash
		}
		n, err := strconv.ParseUint(v, 10, 32)
		if err != nil || n == 0 {
			return phc{}, errBadHash
		}
		switch i {
		case 0:
			h.memory = uint32(n)
		case 1:
			h.time = uint32(n)
		case 2:
			if n > maxArgonThreads {
				return phc{}, errBadHash
			}
			h.threads = uint8(n)
		}
	}
	if h.memory > maxArgonMemory || h.time > maxArgonTime || h.memory < 8*uint32(h.threads) {
		return phc{}, errBadHash
	}
	var err error
	if h.salt, err = base64.RawStdEncoding.Strict().DecodeString(parts[4]); err != nil || len(h.salt) < 8 || len(h.salt) > 64 {
		return phc{}, errBadHash
	}
	if h.key, err = base64.RawStdEncoding.Strict().DecodeString(parts[5]); err != nil || len(h.key) < 16 || len(h.key) > 64 {
		return phc{}, errBadHash
	}
	return h, nil
}

// verifySecret reports whether secret matches the PHC hash, comparing in
// constant time.
func verifySecret(ctx context.Context, hash, secret string) (bool, error) {
	h, err := parsePHC(hash)
	if err != nil {
		return false, err
	}
	key, err := argonKey(ctx, []byte(secret), h.salt, h.time, h.memory, h.threads, uint32(len(h.key)))
	if err != nil {
		return false, err
	}
	return subtle.ConstantTimeCompare(key, h.key) == 1, nil
}

// dummyHash is verified against when the client or user does not exist, so
// that a wrong name costs the same time as a wrong secret.
var dummyHash = sync.OnceValue(func() string {
	h, err := hashSecret(context.Background(), rand.Text())
	if err != nil {
		panic(err) // only a cancelled context fails, and this one is not
	}
	return h
})

// burnHash spends the time of one verification without a result.
func burnHash(ctx context.Context, secret string) {
	_, _ = verifySecret(ctx, dummyHash(), secret)
}

const (
	secretLen      = 40
	secretAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
)

// newSecret returns secretLen random URL-safe characters. The first one is
// alphanumeric: a secret starting with "-" would be taken for an option by
// az's argument parser (az login -p -abc...).
func newSecret() string {
	b := make([]byte, secretLen)
	rand.Read(b)
	out := make([]byte, secretLen)
	for i, c := range b {
		out[i] = secretAlphabet[c&63] // 256 is a multiple of 64: uniform
	}
	for out[0] == '-' || out[0] == '_' {
		var c [1]byte
		rand.Read(c[:])
		out[0] = secretAlphabet[c[0]&63]
	}
	return string(out)
}
