package loadgen

import (
	"bufio"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestReadResponse(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		capture string
		want    Response
		wantErr bool
	}{
		{"allow with identity", "HTTP/1.1 200 OK\r\nX-Auth-User-Id: alice\r\nContent-Length: 3\r\n\r\nok\n", "x-auth-user-id:",
			Response{Status: 200, Captured: "alice"}, false},
		{"header case does not matter", "HTTP/1.1 200 OK\r\nx-seen-user:  bob \r\ncontent-length: 0\r\n\r\n", "x-seen-user:",
			Response{Status: 200, Captured: "bob"}, false},
		{"no capture asked", "HTTP/1.1 200 OK\r\nX-Auth-User-Id: alice\r\nContent-Length: 0\r\n\r\n", "",
			Response{Status: 200}, false},
		{"denial closing the connection", "HTTP/1.1 401 Unauthorized\r\nConnection: close\r\nContent-Length: 0\r\n\r\n", "x-auth-user-id:",
			Response{Status: 401, Closing: true}, false},
		{"chunked is refused", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", "", Response{Status: 200}, true},
		{"not HTTP", "SSH-2.0-OpenSSH\r\n", "", Response{}, true},
		{"body cut short", "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nok", "", Response{Status: 200}, true},
	}
	for _, tt := range tests {
		var capture []byte
		if tt.capture != "" {
			capture = []byte(tt.capture)
		}
		got, err := ReadResponse(bufio.NewReader(strings.NewReader(tt.in)), capture)
		if (err != nil) != tt.wantErr {
			t.Errorf("%s: err = %v, want error %t", tt.name, err, tt.wantErr)
		}
		if diff := cmp.Diff(tt.want, got); diff != "" && !tt.wantErr {
			t.Errorf("%s: (-want +got):\n%s", tt.name, diff)
		}
	}
}

func TestPace(t *testing.T) {
	var dues []time.Time
	start := time.Now()
	lag := Pace(context.Background(), 100, 200*time.Millisecond, func(_ int, due time.Time) { dues = append(dues, due) })
	if len(dues) != 20 || len(lag) != 20 {
		t.Fatalf("%d calls, %d lags at 100/s for 200 ms, want 20", len(dues), len(lag))
	}
	for i := 1; i < len(dues); i++ {
		if d := dues[i].Sub(dues[i-1]); d != 10*time.Millisecond {
			t.Errorf("call %d due %v after the previous, want 10ms", i, d)
		}
	}
	if took := time.Since(start); took < 190*time.Millisecond {
		t.Errorf("20 calls at 100/s took %v, want about 200ms", took)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	n := 0
	Pace(ctx, 1000, time.Hour, func(int, time.Time) { n++ })
	if n > 256 {
		t.Errorf("%d calls after the context was done, want at most one check interval (256)", n)
	}
}
