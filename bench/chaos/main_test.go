package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestReplaceSection(t *testing.T) {
	f := filepath.Join(t.TempDir(), "RELIABILITY.md")
	start := "# Reliability\n\n<!-- chaos:scenario-1:begin -->\nold 1\n<!-- chaos:scenario-1:end -->\n\nhand-written\n"
	if err := os.WriteFile(f, []byte(start), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := replaceSection(f, 1, "new 1\n"); err != nil {
		t.Fatal(err)
	}
	if err := replaceSection(f, 2, "new 2 $1\n"); err != nil { // appended; no regexp expansion
		t.Fatal(err)
	}
	b, _ := os.ReadFile(f)
	want := "# Reliability\n\n<!-- chaos:scenario-1:begin -->\nnew 1\n<!-- chaos:scenario-1:end -->\n\nhand-written\n\n" +
		"<!-- chaos:scenario-2:begin -->\nnew 2 $1\n<!-- chaos:scenario-2:end -->\n"
	if diff := cmp.Diff(want, string(b)); diff != "" {
		t.Errorf("RELIABILITY.md (-want +got):\n%s", diff)
	}
}

func TestParseScenarios(t *testing.T) {
	got, err := parseScenarios("1, 3,5")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]int{1, 3, 5}, got); diff != "" {
		t.Errorf("parseScenarios (-want +got):\n%s", diff)
	}
	for _, bad := range []string{"0", "7", "x", "1,,2", ""} {
		if _, err := parseScenarios(bad); err == nil {
			t.Errorf("parseScenarios(%q) = nil error", bad)
		}
	}
}
