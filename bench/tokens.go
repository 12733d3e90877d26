package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"runtime"
	"syscall"
	"time"
)

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
