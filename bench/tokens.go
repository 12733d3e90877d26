package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"runtime"
	"sync"
	"syscall"
	"time"
)

// issuer signs ES256 access tokens and publishes its key as a JWKS.
type issuer struct {
	url string // the iss claim
	kid string
	key *ecdsa.PrivateKey
}

func newIssuer() (*issuer, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	return &issuer{url: "https://issuer.bench.test", kid: "bench-1", key: key}, nil
}

// jwks returns the JWKS document publishing the issuer's key.
func (is *issuer) jwks() []byte {
	pub := is.key.PublicKey
	raw, _ := pub.Bytes() // 0x04 || X || Y
	b, _ := json.Marshal(map[string]any{"keys": []any{map[string]string{
		"kty": "EC", "crv": "P-256", "alg": "ES256", "use": "sig", "kid": is.kid,
		"x": b64(raw[1:33]), "y": b64(raw[33:]),
	}}})
	return b
}

// mint signs one access token for sub. The claims give an allow the full set
// of identity headers (roles, amr, verified), like a real IdP's token. It is
// built by hand, not with jwx: hundreds of thousands are needed per run.
func (is *issuer) mint(sub, jti string, now time.Time) string {
	header := `{"alg":"ES256","kid":"` + is.kid + `","typ":"JWT"}`
	payload := fmt.Sprintf(`{"iss":%q,"sub":%q,"iat":%d,"exp":%d,"jti":%q,"email_verified":true,"roles":["reader","writer"],"amr":["pwd","otp"],"scope":"openid profile"}`,
		is.url, sub, now.Unix(), now.Add(2*time.Hour).Unix(), jti)
	input := b64([]byte(header)) + "." + b64([]byte(payload))
	digest := sha256.Sum256([]byte(input))
	r, s, err := ecdsa.Sign(rand.Reader, is.key, digest[:])
	if err != nil {
		panic(err) // only a broken rand.Reader fails here
	}
	sig := make([]byte, 64)
	r.FillBytes(sig[:32])
	s.FillBytes(sig[32:])
	return input + "." + b64(sig)
}

// mintMany returns n distinct tokens (distinct sub and jti), signed on every
// core.
func (is *issuer) mintMany(n int, prefix string) []string {
	toks := make([]string, n)
	now := time.Now()
	workers := runtime.GOMAXPROCS(0)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := w; i < n; i += workers {
				id := fmt.Sprintf("%s-%d", prefix, i)
				toks[i] = is.mint("user-"+id, "jti-"+id, now)
			}
		})
	}
	wg.Wait()
	return toks
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// rawVerify measures one P-256 ECDSA verification of a precomputed SHA-256
// digest (ecdsa.VerifyASN1), the floor under any ES256 verifier, for about d.
// It returns thread CPU time per verification, which other processes on the
// machine disturb far less than wall time, and wall time per verification.
func rawVerify(d time.Duration) (cpuPerOp, wallPerOp time.Duration, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return 0, 0, err
	}
	digest := sha256.Sum256([]byte("bench.raw.verify"))
	sig, err := ecdsa.SignASN1(rand.Reader, key, digest[:])
	if err != nil {
		return 0, 0, err
	}
	runtime.LockOSThread() // RUSAGE_THREAD must see one thread
	defer runtime.UnlockOSThread()
	cpu0 := threadCPU()
	start := time.Now()
	n := 0
	for time.Since(start) < d {
		for range 100 {
			if !ecdsa.VerifyASN1(&key.PublicKey, digest[:], sig) {
				return 0, 0, fmt.Errorf("raw verify: signature did not verify")
			}
		}
		n += 100
	}
	wall := time.Since(start)
	cpu := threadCPU() - cpu0
	return cpu / time.Duration(n), wall / time.Duration(n), nil
}

func threadCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(1 /* RUSAGE_THREAD */, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
