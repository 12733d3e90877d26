package redistest_test

import (
	"strings"
	"testing"

	"github.com/authresolver/authresolver/internal/redistest"
)

func TestStartStopRestart(t *testing.T) {
	s := redistest.Start(t)
	if _, err := redistest.Do(s.Addr(), "SET", "k", "v"); err != nil {
		t.Fatalf("SET: %v", err)
	}
	if got, want := s.URL(), "redis://"+s.Addr()+"/0"; got != want {
		t.Errorf("URL() = %q, want %q", got, want)
	}
	s.Stop()
	if _, err := redistest.Do(s.Addr(), "PING"); err == nil {
		t.Fatal("PING after Stop succeeded, want error")
	}
	s.Restart()
	got, err := redistest.Do(s.Addr(), "PING")
	if err != nil || got != "PONG" {
		t.Fatalf("PING after Restart = %q, %v; want PONG", got, err)
	}
	// Nothing is persisted: a restarted server starts empty.
	if got, err := redistest.Do(s.Addr(), "EXISTS", "k"); err != nil || got != "0" {
		t.Errorf("EXISTS k after Restart = %q, %v; want 0", got, err)
	}
}

func TestStartCluster(t *testing.T) {
	addrs := redistest.StartCluster(t)
	if len(addrs) != 3 {
		t.Fatalf("StartCluster returned %d addrs, want 3", len(addrs))
	}
	for _, a := range addrs {
		info, err := redistest.Do(a, "CLUSTER", "INFO")
		if err != nil {
			t.Fatalf("CLUSTER INFO %s: %v", a, err)
		}
		if !strings.Contains(info, "cluster_state:ok") || !strings.Contains(info, "cluster_known_nodes:3") {
			t.Errorf("CLUSTER INFO %s = %q, want state ok with 3 nodes", a, info)
		}
	}
}

func TestStartSentinel(t *testing.T) {
	master := redistest.Start(t)
	addr := redistest.StartSentinel(t, "mymaster", master)
	// SENTINEL MASTER answers an array; Do reads simple replies only, so ask
	// for something scalar that needs the master to be known.
	got, err := redistest.Do(addr, "SENTINEL", "CKQUORUM", "mymaster")
	if err != nil || !strings.HasPrefix(got, "OK") {
		t.Fatalf("SENTINEL CKQUORUM = %q, %v; want OK", got, err)
	}
}
