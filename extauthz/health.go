package extauthz

import (
	"context"
	"sync"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/status"
)

// Health implements grpc.health.v1.Health for the server ("") and the
// Authorization service. Both are SERVING exactly when Ready says so (the
// condition of /readyz), and NOT_SERVING for good once Close is called.
type Health struct {
	healthpb.UnimplementedHealthServer
	ready    func(context.Context) bool
	interval time.Duration
	done     chan struct{}
	once     sync.Once
}

var _ healthpb.HealthServer = (*Health)(nil)

// AuthorizationService is the service name a gateway health-checks.
const AuthorizationService = "envoy.service.auth.v3.Authorization"

// NewHealth returns a Health that asks ready on every Check, and every
// interval (default 5s) for each Watch stream.
func NewHealth(ready func(context.Context) bool, interval time.Duration) *Health {
	if interval <= 0 {
		interval = 5 * time.Second
	}
	return &Health{ready: ready, interval: interval, done: make(chan struct{})}
}

// Close makes every answer NOT_SERVING and ends Watch streams (after sending
// NOT_SERVING), so that a graceful stop does not wait for them.
func (h *Health) Close() { h.once.Do(func() { close(h.done) }) }

func (h *Health) closed() bool {
	select {
	case <-h.done:
		return true
	default:
		return false
	}
}

func (h *Health) status(ctx context.Context) healthpb.HealthCheckResponse_ServingStatus {
	if h.closed() || !h.ready(ctx) {
		return healthpb.HealthCheckResponse_NOT_SERVING
	}
	return healthpb.HealthCheckResponse_SERVING
}

func known(service string) bool {
	return service == "" || service == AuthorizationService
}

// Check returns the status of the server or the Authorization service, and
// the NOT_FOUND error for any other service, as the protocol says.
func (h *Health) Check(ctx context.Context, in *healthpb.HealthCheckRequest) (*healthpb.HealthCheckResponse, error) {
	if !known(in.GetService()) {
		return nil, status.Error(codes.NotFound, "unknown service")
	}
	return &healthpb.HealthCheckResponse{Status: h.status(ctx)}, nil
}

// List returns the status of both services.
func (h *Health) List(ctx context.Context, _ *healthpb.HealthListRequest) (*healthpb.HealthListResponse, error) {
	st := &healthpb.HealthCheckResponse{Status: h.status(ctx)}
	return &healthpb.HealthListResponse{Statuses: map[string]*healthpb.HealthCheckResponse{
		"": st, AuthorizationService: st,
	}}, nil
}

// Watch sends the status now and whenever it changes, checked every
// interval. An unknown service is SERVICE_UNKNOWN, as the protocol says.
func (h *Health) Watch(in *healthpb.HealthCheckRequest, stream grpc.ServerStreamingServer[healthpb.HealthCheckResponse]) error {
	ctx := stream.Context()
	last := healthpb.HealthCheckResponse_ServingStatus(-1)
	tick := time.NewTicker(h.interval)
	defer tick.Stop()
	for {
		st := healthpb.HealthCheckResponse_SERVICE_UNKNOWN
		if known(in.GetService()) {
			st = h.status(ctx)
		}
		if st != last {
			if err := stream.Send(&healthpb.HealthCheckResponse{Status: st}); err != nil {
				return err
			}
			last = st
		}
		if h.closed() {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-h.done:
		case <-tick.C:
		}
	}
}

// Register registers the Authorization service s and the health service h
// on g.
func Register(g *grpc.Server, s *Server, h *Health) {
	authv3.RegisterAuthorizationServer(g, s)
	healthpb.RegisterHealthServer(g, h)
}

// MaxRecvMsgSize bounds a CheckRequest. Envoy sends headers only (this
// service never asks for the body); its header limit is 60 KiB by default.
const MaxRecvMsgSize = 1 << 20

// ServerOptions are the gRPC server settings for a gateway-facing
// listener: a bounded message size; keepalive pings so that a dead gateway
// connection is noticed; a maximum connection age so that gateways
// reconnect, and so spread over replicas added later; and an enforcement
// policy that tolerates Envoy's and Istio's keepalive pings (every 5s or
// more) on idle connections instead of answering them with GOAWAY.
func ServerOptions() []grpc.ServerOption {
	return []grpc.ServerOption{
		grpc.MaxRecvMsgSize(MaxRecvMsgSize),
		grpc.KeepaliveParams(keepalive.ServerParameters{
			MaxConnectionIdle:     5 * time.Minute,
			MaxConnectionAge:      10 * time.Minute,
			MaxConnectionAgeGrace: 30 * time.Second,
			Time:                  30 * time.Second,
			Timeout:               10 * time.Second,
		}),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{
			MinTime:             5 * time.Second,
			PermitWithoutStream: true,
		}),
	}
}
