package extauthz_test

import (
	"os"
	"slices"
	"testing"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	extauthzv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_authz/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/lua/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/anypb"
	"sigs.k8s.io/yaml"
)

// loadBootstrap decodes an Envoy YAML config into the v3 Bootstrap with
// Envoy's own schema: unknown fields are errors, every typed_config Any must
// name a registered type (the extension packages imported above) and
// decode, and every message, the Anys' contents included, must pass the
// proto's validation rules.
func loadBootstrap(t *testing.T, path string) *bootstrapv3.Bootstrap {
	t.Helper()
	y, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	j, err := yaml.YAMLToJSON(y)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	var b bootstrapv3.Bootstrap
	if err := (protojson.UnmarshalOptions{DiscardUnknown: false}).Unmarshal(j, &b); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	validate(t, path, &b)
	return &b
}

type validator interface{ ValidateAll() error }

// validate runs the generated validation of m and of every message below
// it, unpacking Anys (whose contents the generated code does not check).
func validate(t *testing.T, path string, m proto.Message) {
	t.Helper()
	if v, ok := m.(validator); ok {
		if err := v.ValidateAll(); err != nil {
			t.Errorf("%s: %T: %v", path, m, err)
		}
	}
	var walk func(protoreflect.Message)
	walk = func(pm protoreflect.Message) {
		if a, ok := pm.Interface().(*anypb.Any); ok {
			inner, err := a.UnmarshalNew()
			if err != nil {
				t.Errorf("%s: %s: %v", path, a.GetTypeUrl(), err)
				return
			}
			validate(t, path, inner)
			return
		}
		pm.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
			switch {
			case fd.IsList() && fd.Message() != nil:
				for i := 0; i < v.List().Len(); i++ {
					walk(v.List().Get(i).Message())
				}
			case fd.IsMap() && fd.MapValue().Message() != nil:
				v.Map().Range(func(_ protoreflect.MapKey, mv protoreflect.Value) bool {
					walk(mv.Message())
					return true
				})
			case !fd.IsList() && !fd.IsMap() && fd.Message() != nil:
				walk(v.Message())
			}
			return true
		})
	}
	walk(m.ProtoReflect())
}

// connectionManagers returns the HTTP connection managers of b's listeners.
func connectionManagers(t *testing.T, b *bootstrapv3.Bootstrap) []*hcmv3.HttpConnectionManager {
	t.Helper()
	var out []*hcmv3.HttpConnectionManager
	for _, l := range b.GetStaticResources().GetListeners() {
		for _, fc := range l.GetFilterChains() {
			for _, f := range fc.GetFilters() {
				var hcm hcmv3.HttpConnectionManager
				if f.GetTypedConfig().MessageIs(&hcm) {
					if err := f.GetTypedConfig().UnmarshalTo(&hcm); err != nil {
						t.Fatal(err)
					}
					out = append(out, &hcm)
				}
			}
		}
	}
	return out
}

// TestEnvoyConfigs: the shipped Envoy configs are valid v3 bootstraps, and
// every per-route filter config names a filter of its connection manager.
func TestEnvoyConfigs(t *testing.T) {
	for _, path := range []string{"../envoy/envoy.yaml", "../envoy/envoy-grpc.yaml"} {
		t.Run(path, func(t *testing.T) {
			b := loadBootstrap(t, path)
			hcms := connectionManagers(t, b)
			if len(hcms) == 0 {
				t.Fatal("no HTTP connection manager")
			}
			for _, hcm := range hcms {
				filters := map[string]bool{}
				for _, f := range hcm.GetHttpFilters() {
					filters[f.GetName()] = true
				}
				for _, vh := range hcm.GetRouteConfig().GetVirtualHosts() {
					for _, r := range vh.GetRoutes() {
						for name := range r.GetTypedPerFilterConfig() {
							if !filters[name] {
								t.Errorf("route %s: per-filter config for %q, which is not a filter", r.GetMatch().GetPrefix(), name)
							}
						}
					}
				}
			}
		})
	}
}

// TestEnvoyGRPCConfig checks what envoy/envoy-grpc.yaml promises: a gRPC v3
// ext_authz that fails closed, header names with underscores refused, a
// role=admin route and a route with ext_authz disabled that strips every
// identity header itself, and a health-checked authresolver cluster.
func TestEnvoyGRPCConfig(t *testing.T) {
	b := loadBootstrap(t, "../envoy/envoy-grpc.yaml")
	hcm := connectionManagers(t, b)[0]
	if got := hcm.GetCommonHttpProtocolOptions().GetHeadersWithUnderscoresAction(); got != corev3.HttpProtocolOptions_REJECT_REQUEST {
		t.Errorf("headers_with_underscores_action = %v, want REJECT_REQUEST", got)
	}
	var authz extauthzv3.ExtAuthz
	for _, f := range hcm.GetHttpFilters() {
		if f.GetTypedConfig().MessageIs(&authz) {
			if err := f.GetTypedConfig().UnmarshalTo(&authz); err != nil {
				t.Fatal(err)
			}
		}
	}
	if authz.GetGrpcService().GetEnvoyGrpc().GetClusterName() != "authresolver" || authz.GetTransportApiVersion() != corev3.ApiVersion_V3 || authz.GetFailureModeAllow() {
		t.Errorf("ext_authz = %v, want grpc_service to cluster authresolver, V3, failure_mode_allow false", &authz)
	}
	routes := map[string]*extauthzv3.ExtAuthzPerRoute{}
	var static *routev3.Route
	for _, r := range hcm.GetRouteConfig().GetVirtualHosts()[0].GetRoutes() {
		if a := r.GetTypedPerFilterConfig()["envoy.filters.http.ext_authz"]; a != nil {
			var per extauthzv3.ExtAuthzPerRoute
			if err := a.UnmarshalTo(&per); err != nil {
				t.Fatal(err)
			}
			routes[r.GetMatch().GetPrefix()] = &per
			if per.GetDisabled() {
				static = r
			}
		}
	}
	if got := routes["/admin"].GetCheckSettings().GetContextExtensions()["role"]; got != "admin" {
		t.Errorf("/admin context_extensions role = %q, want admin", got)
	}
	if static == nil {
		t.Fatal("no route with ext_authz disabled")
	}
	h := start(t, nil)
	for _, name := range lower(h.resolver.IdentityHeaders()) {
		if name != "x-auth-email" && !slices.Contains(static.GetRequestHeadersToRemove(), name) {
			t.Errorf("disabled route keeps client-sent %s", name)
		}
	}
	for _, c := range b.GetStaticResources().GetClusters() {
		if c.GetName() == "authresolver" {
			hc := c.GetHealthChecks()
			if len(hc) == 0 || hc[0].GetGrpcHealthCheck().GetServiceName() != "envoy.service.auth.v3.Authorization" {
				t.Errorf("authresolver cluster health checks = %v, want gRPC health of the Authorization service", hc)
			}
		}
	}
}
