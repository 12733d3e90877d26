package jwks

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"fmt"
	"log/slog"
	"slices"

	"github.com/lestrrat-go/jwx/v3/jwa"
	"github.com/lestrrat-go/jwx/v3/jwk"
)

// algorithm is a JWS signature algorithm this package can verify.
type algorithm uint8

const (
	algUnknown algorithm = iota
	algRS256
	algRS384
	algRS512
	algPS256
	algPS384
	algPS512
	algES256
	algES384
	algES512
	algEdDSA
)

func (a algorithm) String() string {
	switch a {
	case algRS256:
		return "RS256"
	case algRS384:
		return "RS384"
	case algRS512:
		return "RS512"
	case algPS256:
		return "PS256"
	case algPS384:
		return "PS384"
	case algPS512:
		return "PS512"
	case algES256:
		return "ES256"
	case algES384:
		return "ES384"
	case algES512:
		return "ES512"
	case algEdDSA:
		return "EdDSA"
	}
	return "unknown"
}

// parseAlgorithm maps a JWS "alg" value to an algorithm. Names are
// case-sensitive (RFC 7515 §4.1.1); "none", HMAC and everything else is
// algUnknown.
func parseAlgorithm(s string) algorithm {
	switch s {
	case "RS256":
		return algRS256
	case "RS384":
		return algRS384
	case "RS512":
		return algRS512
	case "PS256":
		return algPS256
	case "PS384":
		return algPS384
	case "PS512":
		return algPS512
	case "ES256":
		return algES256
	case "ES384":
		return algES384
	case "ES512":
		return algES512
	case "EdDSA":
		return algEdDSA
	}
	return algUnknown
}

// algorithmSet is a set of algorithms as a bit mask.
type algorithmSet uint16

func (s algorithmSet) has(a algorithm) bool { return a != algUnknown && s&(1<<a) != 0 }

func (s *algorithmSet) add(a algorithm) { *s |= 1 << a }

// keyKind is the type of a public key, with the curve for EC keys: the
// part of a key that decides which algorithms it can verify.
type keyKind uint8

const (
	kindRSA keyKind = iota + 1
	kindP256
	kindP384
	kindP521
	kindEd25519
)

// fits reports whether keys of kind k can verify signatures made with a.
func (k keyKind) fits(a algorithm) bool {
	switch a {
	case algRS256, algRS384, algRS512, algPS256, algPS384, algPS512:
		return k == kindRSA
	case algES256:
		return k == kindP256
	case algES384:
		return k == kindP384
	case algES512:
		return k == kindP521
	case algEdDSA:
		return k == kindEd25519
	}
	return false
}

// minRSABits is the smallest RSA modulus accepted for verification.
const minRSABits = 2048

// publicKey is one verification key of a key set, converted from its JWK
// once per fetch so that verifying a token needs no conversion.
type publicKey struct {
	kid  string
	kind keyKind
	// alg is the key's own "alg"; algUnknown when the JWK states none. A
	// stated alg this package cannot verify is kept as stated=true,
	// alg=algUnknown, so that the key fits no token.
	alg    algorithm
	stated bool
	rsa    *rsa.PublicKey
	ec     *ecdsa.PublicKey
	ed     ed25519.PublicKey
}

// accepts reports whether the key may verify a token signed with a: the key
// type (and curve) must fit, and a key that states its alg must state a.
func (k *publicKey) accepts(a algorithm) bool {
	if !k.kind.fits(a) {
		return false
	}
	return !k.stated || k.alg == a
}

// verify checks sig over signingInput with a, which the caller has checked
// with accepts.
func (k *publicKey) verify(a algorithm, signingInput, sig []byte) bool {
	switch a {
	case algES256:
		d := sha256.Sum256(signingInput)
		return verifyECDSA(k.ec, d[:], sig, 32)
	case algES384:
		d := sha512.Sum384(signingInput)
		return verifyECDSA(k.ec, d[:], sig, 48)
	case algES512:
		d := sha512.Sum512(signingInput)
		return verifyECDSA(k.ec, d[:], sig, 66)
	case algEdDSA:
		return len(sig) == ed25519.SignatureSize && ed25519.Verify(k.ed, signingInput, sig)
	case algRS256, algPS256:
		d := sha256.Sum256(signingInput)
		return verifyRSA(k.rsa, a, crypto.SHA256, d[:], sig)
	case algRS384, algPS384:
		d := sha512.Sum384(signingInput)
		return verifyRSA(k.rsa, a, crypto.SHA384, d[:], sig)
	case algRS512, algPS512:
		d := sha512.Sum512(signingInput)
		return verifyRSA(k.rsa, a, crypto.SHA512, d[:], sig)
	}
	return false
}

func verifyRSA(pub *rsa.PublicKey, a algorithm, h crypto.Hash, digest, sig []byte) bool {
	switch a {
	case algPS256, algPS384, algPS512:
		// RFC 7518 §3.5 has signers use a salt as long as the hash; Auto
		// also accepts the maximum salt some older signers use, which is
		// no weaker.
		return rsa.VerifyPSS(pub, h, digest, sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthAuto}) == nil
	}
	return rsa.VerifyPKCS1v15(pub, h, digest, sig) == nil
}

// verifyECDSA checks a JWS ECDSA signature, which is r||s with each half of
// exactly size bytes (RFC 7518 §3.4), by re-encoding it as the ASN.1 DER
// that crypto/ecdsa verifies, in a stack buffer and without big.Int.
func verifyECDSA(pub *ecdsa.PublicKey, digest, sig []byte, size int) bool {
	if len(sig) != 2*size {
		return false
	}
	var buf [2*(2+67) + 3]byte // SEQUENCE of two INTEGERs of at most 66+1 bytes
	der := appendSignatureDER(buf[:0], sig[:size], sig[size:])
	return ecdsa.VerifyASN1(pub, digest, der)
}

// appendSignatureDER appends SEQUENCE { INTEGER r, INTEGER s } to dst, with
// r and s given as unsigned big-endian bytes. verifyECDSA passes halves of
// at most 66 bytes, so every length fits one byte (the byte conversions
// below cannot overflow).
func appendSignatureDER(dst, r, s []byte) []byte {
	r, s = trimZeros(r), trimZeros(s)
	n := intLen(r) + intLen(s)
	dst = append(dst, 0x30)
	if n >= 0x80 {
		dst = append(dst, 0x81)
	}
	dst = append(dst, byte(n)) //nolint:gosec // G115: n ≤ 2*(3+66), see above
	dst = appendInt(dst, r)
	return appendInt(dst, s)
}

func trimZeros(b []byte) []byte {
	for len(b) > 1 && b[0] == 0 {
		b = b[1:]
	}
	return b
}

// intLen is the encoded length of the DER INTEGER for the unsigned b.
func intLen(b []byte) int {
	if b[0]&0x80 != 0 {
		return 3 + len(b)
	}
	return 2 + len(b)
}

func appendInt(dst, b []byte) []byte {
	if b[0]&0x80 != 0 {
		return append(append(dst, 0x02, byte(len(b)+1), 0), b...) //nolint:gosec // G115: len(b) ≤ 66
	}
	return append(append(dst, 0x02, byte(len(b))), b...) //nolint:gosec // G115: len(b) ≤ 66
}

// keySet is the converted form of one fetched JWKS.
type keySet struct {
	byID   map[string][]*publicKey
	all    []*publicKey
	digest [sha256.Size]byte // of the JWKS document
}

// lookup returns the keys with id kid.
func (s *keySet) lookup(kid string) []*publicKey { return s.byID[kid] }

// Bounds on a key set, so that a hostile or broken JWKS cannot make each
// token cost many signature checks. A kid names one key, or a few during a
// rotation that republishes it under the same id (or one per algorithm
// for a key without alg): past maxKeysPerID, keys sharing an id are
// skipped. Real issuers publish a handful of keys (Entra ID about ten): a
// set with more than maxKeys usable ones is refused as a whole, and the
// last good set stays in use.
const (
	maxKeysPerID = 4
	maxKeys      = 100
)

// errTooManyKeys is returned by convertSet for a set over maxKeys.
var errTooManyKeys = fmt.Errorf("jwks: more than %d usable signature keys", maxKeys)

// convertSet converts the signature keys of set. Keys for encryption,
// symmetric keys, keys of unsupported types or curves, RSA keys under
// minRSABits and entries jwx could not parse are skipped, each with a
// debug log line, since a JWKS often carries keys that are not ours to use.
// Keys past maxKeysPerID with one kid are skipped with a warning; more than
// maxKeys usable keys are errTooManyKeys.
func convertSet(ctx context.Context, set jwk.Set, log *slog.Logger) (*keySet, error) {
	ks := &keySet{byID: make(map[string][]*publicKey, set.Len())}
	for i := range set.Len() {
		key, ok := set.Key(i)
		if !ok {
			continue
		}
		kid, _ := key.KeyID()
		pk, err := convertKey(key)
		if err != nil {
			log.DebugContext(ctx, "jwks: skipping key", slog.String("kid", kid), slog.Any("error", err))
			continue
		}
		if len(ks.byID[kid]) == maxKeysPerID {
			log.WarnContext(ctx, "jwks: skipping key: too many keys share its kid", slog.String("kid", kid), slog.Int("max", maxKeysPerID))
			continue
		}
		if len(ks.all) == maxKeys {
			return nil, errTooManyKeys
		}
		pk.kid = kid
		ks.all = append(ks.all, pk)
		ks.byID[kid] = append(ks.byID[kid], pk)
	}
	return ks, nil
}

func convertKey(key jwk.Key) (*publicKey, error) {
	if _, ok := key.(jwk.UnsupportedKey); ok {
		return nil, fmt.Errorf("unparsable key of type %q", key.KeyType().String())
	}
	if use, ok := key.KeyUsage(); ok && use != string(jwk.ForSignature) {
		return nil, fmt.Errorf("key use %q", use)
	}
	if ops, ok := key.KeyOps(); ok && !slices.Contains(ops, jwk.KeyOpVerify) {
		return nil, fmt.Errorf("key_ops without verify")
	}
	switch key.KeyType() {
	case jwa.RSA(), jwa.EC(), jwa.OKP():
	default:
		// Symmetric keys above all: a JWKS is public, and HMAC with a
		// public secret proves nothing.
		return nil, fmt.Errorf("key type %q", key.KeyType().String())
	}
	pub, err := key.PublicKey()
	if err != nil {
		return nil, err
	}
	var raw any
	if err := jwk.Export(pub, &raw); err != nil {
		return nil, err
	}
	pk := &publicKey{}
	if a, ok := key.Algorithm(); ok {
		pk.stated = true
		pk.alg = parseAlgorithm(a.String())
	}
	switch raw := raw.(type) {
	case *rsa.PublicKey:
		if raw.N.BitLen() < minRSABits {
			return nil, fmt.Errorf("RSA key of %d bits", raw.N.BitLen())
		}
		pk.kind, pk.rsa = kindRSA, raw
	case *ecdsa.PublicKey:
		switch raw.Curve {
		case elliptic.P256():
			pk.kind = kindP256
		case elliptic.P384():
			pk.kind = kindP384
		case elliptic.P521():
			pk.kind = kindP521
		default:
			return nil, fmt.Errorf("curve %s", raw.Curve.Params().Name)
		}
		pk.ec = raw
	case ed25519.PublicKey:
		pk.kind, pk.ed = kindEd25519, raw
	default:
		return nil, fmt.Errorf("key of type %T", raw)
	}
	return pk, nil
}
