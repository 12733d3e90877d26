package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestDockerfile checks what can be checked without a Docker engine: the
// builder's go build line, run as written, yields a static, version-stamped
// binary; the final stage is distroless nonroot with the healthcheck
// subcommand (TestHealthcheck runs it); .dockerignore keeps the sources.
func TestDockerfile(t *testing.T) {
	t.Parallel()
	needBinary(t)
	raw, err := os.ReadFile(filepath.Join(repoRoot, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	df := strings.ReplaceAll(string(raw), "\\\n", " ")

	for _, want := range []string{
		"FROM golang:1.26 AS build",
		"ARG VERSION",
		"FROM gcr.io/distroless/static-debian12:nonroot",
		"USER nonroot",
		"EXPOSE 8080 9090",
		`CMD ["/authresolver", "healthcheck"]`,
		`ENTRYPOINT ["/authresolver"]`,
		`CMD ["serve"]`,
	} {
		if !strings.Contains(df, want) {
			t.Errorf("Dockerfile: no %q", want)
		}
	}

	run := regexp.MustCompile(`(?m)^RUN (CGO_ENABLED=0 go build .*)$`).FindStringSubmatch(df)
	if run == nil {
		t.Fatal("Dockerfile: no RUN CGO_ENABLED=0 go build line")
	}
	out := filepath.Join(t.TempDir(), "authresolver")
	line := strings.ReplaceAll(run[1], "${VERSION}", "docker-e2e")
	line = strings.ReplaceAll(line, "/out/authresolver", out)
	for _, flag := range []string{"-trimpath", "-s -w", "-X main.version="} {
		if !strings.Contains(line, flag) {
			t.Errorf("Dockerfile go build: no %s", flag)
		}
	}
	build := exec.Command("sh", "-c", line)
	build.Dir = repoRoot
	if b, err := build.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", line, err, b)
	}
	version, err := exec.Command(out, "version").Output()
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(string(version)); got != "authresolver docker-e2e" {
		t.Errorf("version of the Dockerfile's build: %q, want %q", got, "authresolver docker-e2e")
	}
	if file, err := exec.LookPath("file"); err == nil {
		if b, _ := exec.Command(file, out).Output(); !strings.Contains(string(b), "statically linked") {
			t.Errorf("Dockerfile's build is not static: %s", b)
		}
	}

	ignore, err := os.ReadFile(filepath.Join(repoRoot, ".dockerignore"))
	if err != nil {
		t.Fatal(err)
	}
	for _, pattern := range strings.Split(string(ignore), "\n") {
		pattern = strings.TrimSuffix(strings.TrimSpace(pattern), "/")
		if pattern == "" || strings.HasPrefix(pattern, "#") {
			continue
		}
		for _, needed := range []string{"go.mod", "go.sum", "cmd", "cmd/authresolver/main.go", "resolver", "jwks", "session"} {
			if ok, _ := filepath.Match(pattern, needed); ok {
				t.Errorf(".dockerignore %q excludes %s, which the build needs", pattern, needed)
			}
		}
	}
}
