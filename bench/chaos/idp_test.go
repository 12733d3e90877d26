package main

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestIDPModes(t *testing.T) {
	i, err := startIDP([]byte(`{"keys":[]}`))
	if err != nil {
		t.Fatal(err)
	}
	defer i.close()
	c := &http.Client{Timeout: 300 * time.Millisecond}
	get := func() (int, string, error) {
		resp, err := c.Get(i.URL())
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), nil
	}
	if status, body, err := get(); err != nil || status != 200 || body != `{"keys":[]}` {
		t.Fatalf("up: %d %q %v", status, body, err)
	}
	if err := i.setMode(idpDown); err != nil {
		t.Fatal(err)
	}
	if _, _, err := get(); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("down: err = %v, want connection refused", err)
	}
	if err := i.setMode(idp500); err != nil {
		t.Fatal(err)
	}
	if status, _, err := get(); err != nil || status != 500 {
		t.Errorf("500: %d %v", status, err)
	}
	if err := i.setMode(idpHang); err != nil {
		t.Fatal(err)
	}
	if _, _, err := get(); err == nil || !errors.Is(err, context.DeadlineExceeded) && !isTimeout(err) {
		t.Errorf("hanging: err = %v, want a client timeout", err)
	}
	i.setJWKS([]byte(`{"keys":[{"kid":"new"}]}`))
	if err := i.setMode(idpUp); err != nil {
		t.Fatal(err)
	}
	if status, body, err := get(); err != nil || status != 200 || body != `{"keys":[{"kid":"new"}]}` {
		t.Errorf("up again: %d %q %v", status, body, err)
	}
	got := i.requests()
	want := [numIDPModes]int64{idpUp: 2, idpDown: 0, idp500: 1, idpHang: 1}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("requests by mode (-want +got):\n%s", diff)
	}
}

func isTimeout(err error) bool {
	var te interface{ Timeout() bool }
	return errors.As(err, &te) && te.Timeout()
}

func TestMergeJWKS(t *testing.T) {
	got := string(mergeJWKS([]byte(`{"keys":[{"kid":"a"}]}`), []byte(`{"keys":[{"kid":"b"}]}`)))
	if want := `{"keys":[{"kid":"a"},{"kid":"b"}]}`; got != want {
		t.Errorf("mergeJWKS = %s, want %s", got, want)
	}
}

func TestIDPIntrospection(t *testing.T) {
	i, err := startIDP([]byte(`{"keys":[]}`))
	if err != nil {
		t.Fatal(err)
	}
	defer i.close()
	i.addOpaque("tok-1", "alice")
	post := func(token, id, secret string) (int, map[string]any) {
		req, _ := http.NewRequest("POST", i.IntrospectionURL(), strings.NewReader(url.Values{"token": {token}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth(id, secret)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&out)
		return resp.StatusCode, out
	}
	status, got := post("tok-1", introspectionClient, introspectionSecret)
	if status != 200 || got["active"] != true || got["sub"] != "alice" || got["exp"] == nil {
		t.Errorf("active token: %d %v", status, got)
	}
	if status, got := post("tok-2", introspectionClient, introspectionSecret); status != 200 || got["active"] != false || len(got) != 1 {
		t.Errorf("unknown token: %d %v, want exactly {\"active\":false}", status, got)
	}
	if status, _ := post("tok-1", introspectionClient, "wrong"); status != 401 {
		t.Errorf("wrong client secret: %d, want 401", status)
	}
}
