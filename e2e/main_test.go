package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// testVersion is stamped into the binary so TestVersion can see -X work.
const testVersion = "e2e-test"

// binary is the authresolver executable built once by TestMain; buildErr is
// set instead when the build failed, and every test that needs the binary
// fails with it.
var (
	binary   string
	buildErr error
	repoRoot string
)

func TestMain(m *testing.M) {
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	wd, err := os.Getwd()
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	repoRoot = filepath.Dir(wd)
	dir, err := os.MkdirTemp("", "authresolver-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	binary = filepath.Join(dir, "authresolver")
	build := exec.Command("go", "build", "-trimpath",
		"-ldflags", "-X main.version="+testVersion,
		"-o", binary, "./cmd/authresolver")
	build.Dir = repoRoot
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		buildErr = fmt.Errorf("go build ./cmd/authresolver: %v\n%s", err, out)
	}
	defer stopChromium()
	return m.Run()
}

// needBinary fails the test when TestMain could not build the binary.
func needBinary(tb testing.TB) {
	tb.Helper()
	if buildErr != nil {
		tb.Fatal(buildErr)
	}
}
