package remote

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

// TestHangingProviderIsBounded: while a provider hangs, at most
// MaxInFlight calls wait on it; the others fail at once with ErrBusy
// (never queue), and the slots are free again once the calls end.
func TestHangingProviderIsBounded(t *testing.T) {
	release := make(chan struct{})
	arrived := make(chan struct{}, MaxInFlight+1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		select {
		case <-release:
		case <-r.Context().Done():
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{}`))
	}))
	defer srv.Close()
	client := NewHTTPClient(10 * time.Second)
	call := func() error {
		req, _ := http.NewRequestWithContext(context.Background(), http.MethodGet, srv.URL, nil)
		_, err := Do(client, req, 10*time.Second, 1024)
		return err
	}

	var wg sync.WaitGroup
	errs := make(chan error, MaxInFlight)
	for range MaxInFlight {
		wg.Go(func() { errs <- call() })
	}
	for range MaxInFlight {
		<-arrived // every slot is taken by a hanging call
	}
	for range 10 {
		start := time.Now()
		if err := call(); !errors.Is(err, ErrBusy) || Outcome(err) != OutcomeBusy {
			t.Fatalf("call beyond MaxInFlight = %v, want ErrBusy", err)
		}
		if took := time.Since(start); took > time.Second {
			t.Errorf("refusal took %v, want at once", took)
		}
	}
	close(release)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("admitted call: %v", err)
		}
	}
	if err := call(); err != nil {
		t.Errorf("after the hang: %v, want the slots free", err)
	}
}
