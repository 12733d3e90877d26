// Package deploy holds the Kubernetes manifests (kubernetes/ is the base the
// gateway examples point at). Its test checks them structurally: every
// document parses and is of a known kind, kustomizations list files that
// exist, the Deployment is hardened and drains in time, and every Service
// name and port a gateway example refers to exists with a matching
// container port.
package deploy

import (
	"bytes"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/authresolver/authresolver/resolver"
)

// knownKinds maps each apiVersion the manifests may use to its kinds.
var knownKinds = map[string][]string{
	"v1":                                {"Namespace", "ConfigMap", "Service"},
	"apps/v1":                           {"Deployment"},
	"policy/v1":                         {"PodDisruptionBudget"},
	"networking.k8s.io/v1":              {"NetworkPolicy", "Ingress"},
	"kustomize.config.k8s.io/v1beta1":   {"Kustomization"},
	"install.istio.io/v1alpha1":         {"IstioOperator"},
	"security.istio.io/v1":              {"AuthorizationPolicy"},
	"gateway.envoyproxy.io/v1alpha1":    {"SecurityPolicy"},
	"gateway.networking.k8s.io/v1beta1": {"ReferenceGrant"},
	"projectcontour.io/v1alpha1":        {"ExtensionService"},
	"projectcontour.io/v1":              {"HTTPProxy"},
	"traefik.io/v1alpha1":               {"Middleware"},
}

// doc is one YAML document: its kind and the raw object.
type doc struct {
	path       string
	APIVersion string                           `json:"apiVersion"`
	Kind       string                           `json:"kind"`
	Metadata   struct{ Name, Namespace string } `json:"metadata"`
	raw        []byte
}

func loadDocs(t *testing.T) []doc {
	t.Helper()
	paths, err := filepath.Glob("*/*.yaml")
	if err != nil || len(paths) == 0 {
		t.Fatalf("no manifests: %v", err)
	}
	var docs []doc
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		for _, part := range regexp.MustCompile(`(?m)^---\s*$`).Split(string(b), -1) {
			if strings.TrimSpace(stripComments(part)) == "" {
				continue
			}
			d := doc{path: p, raw: []byte(part)}
			if err := yaml.UnmarshalStrict([]byte(part), &map[string]any{}); err != nil {
				t.Errorf("%s: %v", p, err)
				continue
			}
			if err := yaml.Unmarshal([]byte(part), &d); err != nil {
				t.Errorf("%s: %v", p, err)
				continue
			}
			docs = append(docs, d)
		}
	}
	return docs
}

func stripComments(s string) string {
	var b strings.Builder
	for _, line := range strings.Split(s, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(line), "#") {
			b.WriteString(line + "\n")
		}
	}
	return b.String()
}

func decode(t *testing.T, d doc, v any) {
	t.Helper()
	if err := yaml.Unmarshal(d.raw, v); err != nil {
		t.Fatalf("%s %s: %v", d.Kind, d.Metadata.Name, err)
	}
}

func TestManifestsKnown(t *testing.T) {
	for _, d := range loadDocs(t) {
		kinds, ok := knownKinds[d.APIVersion]
		if !ok || !slices.Contains(kinds, d.Kind) {
			t.Errorf("%s: %s %s is not a known apiVersion and kind", d.path, d.APIVersion, d.Kind)
		}
		if d.Kind != "Kustomization" && d.Metadata.Name == "" {
			t.Errorf("%s: %s without a name", d.path, d.Kind)
		}
		if d.Kind == "Kustomization" {
			var k struct{ Resources []string }
			decode(t, d, &k)
			for _, r := range k.Resources {
				if _, err := os.Stat(filepath.Join(filepath.Dir(d.path), r)); err != nil {
					t.Errorf("%s: resource %s: %v", d.path, r, err)
				}
			}
		}
	}
}

// Types of the parts of the base the test reads.
type (
	probe struct {
		HTTPGet struct {
			Path string
			Port string
		} `json:"httpGet"`
	}
	container struct {
		Name  string
		Ports []struct {
			Name          string
			ContainerPort int `json:"containerPort"`
		}
		Env          []struct{ Name, Value string }
		VolumeMounts []struct {
			Name      string
			MountPath string `json:"mountPath"`
		} `json:"volumeMounts"`
		LivenessProbe  *probe `json:"livenessProbe"`
		ReadinessProbe *probe `json:"readinessProbe"`
		Resources      struct {
			Requests map[string]string
		}
		SecurityContext struct {
			AllowPrivilegeEscalation *bool `json:"allowPrivilegeEscalation"`
			ReadOnlyRootFilesystem   bool  `json:"readOnlyRootFilesystem"`
			Capabilities             struct{ Drop []string }
		} `json:"securityContext"`
		Lifecycle any
	}
	deployment struct {
		Spec struct {
			Replicas int
			Selector struct {
				MatchLabels map[string]string `json:"matchLabels"`
			}
			Template struct {
				Metadata struct{ Labels map[string]string }
				Spec     struct {
					TerminationGracePeriodSeconds int `json:"terminationGracePeriodSeconds"`
					SecurityContext               struct {
						RunAsNonRoot   bool                  `json:"runAsNonRoot"`
						SeccompProfile struct{ Type string } `json:"seccompProfile"`
					} `json:"securityContext"`
					Containers []container
					Volumes    []struct {
						Name   string
						Secret *struct {
							SecretName string `json:"secretName"`
						}
					}
				}
			}
		}
	}
	service struct {
		Metadata struct{ Name string }
		Spec     struct {
			Type     string
			Selector map[string]string
			Ports    []struct {
				Name        string
				Port        int
				TargetPort  string `json:"targetPort"`
				AppProtocol string `json:"appProtocol"`
			}
		}
	}
)

// base is what deploy/kubernetes defines: its namespace, the Deployment's
// one container, and Services by name.
type base struct {
	namespace string
	deploy    deployment
	container container
	services  map[string]service
}

func loadBase(t *testing.T, docs []doc) base {
	t.Helper()
	b := base{services: map[string]service{}}
	for _, d := range docs {
		if filepath.Dir(d.path) != "kubernetes" {
			continue
		}
		switch d.Kind {
		case "Namespace":
			b.namespace = d.Metadata.Name
		case "Deployment":
			decode(t, d, &b.deploy)
		case "Service":
			var s service
			decode(t, d, &s)
			b.services[s.Metadata.Name] = s
		}
	}
	cs := b.deploy.Spec.Template.Spec.Containers
	if len(cs) != 1 {
		t.Fatalf("Deployment has %d containers, want 1", len(cs))
	}
	b.container = cs[0]
	return b
}

func (c *container) env(name string) string {
	for _, e := range c.Env {
		if e.Name == name {
			return e.Value
		}
	}
	return ""
}

func (c *container) port(name string) int {
	for _, p := range c.Ports {
		if p.Name == name {
			return p.ContainerPort
		}
	}
	return 0
}

func TestDeployment(t *testing.T) {
	b := loadBase(t, loadDocs(t))
	spec := b.deploy.Spec.Template.Spec
	c := b.container
	if b.deploy.Spec.Replicas != 2 {
		t.Errorf("replicas = %d, want 2", b.deploy.Spec.Replicas)
	}
	for k, v := range b.deploy.Spec.Selector.MatchLabels {
		if b.deploy.Spec.Template.Metadata.Labels[k] != v {
			t.Errorf("selector %s=%s does not match the pod labels", k, v)
		}
	}
	// The listeners the variables open are the ports the container declares.
	for _, l := range []struct{ env, port string }{
		{"AUTHRESOLVER_LISTEN_ADDR", "http"}, {"AUTHRESOLVER_GRPC_ADDR", "grpc"}, {"AUTHRESOLVER_ADMIN_ADDR", "admin"},
	} {
		_, p, err := net.SplitHostPort(c.env(l.env))
		if err != nil || p != strconv.Itoa(c.port(l.port)) || p == "0" {
			t.Errorf("%s = %q, want the %s container port %d", l.env, c.env(l.env), l.port, c.port(l.port))
		}
	}
	if c.env("AUTHRESOLVER_ADMIN_TOKEN") != "" {
		t.Error("admin token given as a plain value")
	}
	tokenFile := c.env("AUTHRESOLVER_ADMIN_TOKEN_FILE")
	mounted := false
	for _, m := range c.VolumeMounts {
		for _, v := range spec.Volumes {
			if v.Name == m.Name && v.Secret != nil && strings.HasPrefix(tokenFile, m.MountPath+"/") {
				mounted = true
			}
		}
	}
	if !mounted {
		t.Errorf("AUTHRESOLVER_ADMIN_TOKEN_FILE %q is not in a mounted Secret", tokenFile)
	}
	delay, err1 := time.ParseDuration(c.env("AUTHRESOLVER_SHUTDOWN_DELAY"))
	timeout, err2 := time.ParseDuration(c.env("AUTHRESOLVER_SHUTDOWN_TIMEOUT"))
	grace := time.Duration(spec.TerminationGracePeriodSeconds) * time.Second
	if err1 != nil || err2 != nil || delay <= 0 || grace <= delay+timeout {
		t.Errorf("terminationGracePeriodSeconds %s, SHUTDOWN_DELAY %s, SHUTDOWN_TIMEOUT %s: want a delay and a grace period above their sum", grace, delay, timeout)
	}
	if c.Lifecycle != nil {
		t.Error("a lifecycle hook: the drain is AUTHRESOLVER_SHUTDOWN_DELAY, without preStop")
	}
	if c.LivenessProbe == nil || c.LivenessProbe.HTTPGet.Path != "/healthz" || c.LivenessProbe.HTTPGet.Port != "http" {
		t.Errorf("livenessProbe = %+v, want GET /healthz on http", c.LivenessProbe)
	}
	if c.ReadinessProbe == nil || c.ReadinessProbe.HTTPGet.Path != "/readyz" || c.ReadinessProbe.HTTPGet.Port != "http" {
		t.Errorf("readinessProbe = %+v, want GET /readyz on http", c.ReadinessProbe)
	}
	sc := c.SecurityContext
	if !spec.SecurityContext.RunAsNonRoot || spec.SecurityContext.SeccompProfile.Type != "RuntimeDefault" ||
		!sc.ReadOnlyRootFilesystem || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
		!slices.Equal(sc.Capabilities.Drop, []string{"ALL"}) {
		t.Errorf("security context: pod %+v, container %+v; want non-root, RuntimeDefault seccomp, read-only root, no privilege escalation, all capabilities dropped", spec.SecurityContext, sc)
	}
	if c.Resources.Requests["cpu"] == "" || c.Resources.Requests["memory"] == "" {
		t.Errorf("resource requests = %v, want cpu and memory", c.Resources.Requests)
	}
	// Every Service selects the pods and targets a declared container port.
	for name, s := range b.services {
		for k, v := range s.Spec.Selector {
			if b.deploy.Spec.Template.Metadata.Labels[k] != v {
				t.Errorf("Service %s selector %s=%s selects no pod", name, k, v)
			}
		}
		for _, p := range s.Spec.Ports {
			if c.port(p.TargetPort) == 0 {
				t.Errorf("Service %s targets port %q, which the container does not declare", name, p.TargetPort)
			}
		}
	}
	if s := b.services["authresolver-grpc"]; len(s.Spec.Ports) != 1 || s.Spec.Ports[0].AppProtocol == "" {
		t.Errorf("Service authresolver-grpc = %+v, want one port with appProtocol", s.Spec)
	}
	if s := b.services["authresolver-admin"]; len(s.Spec.Ports) != 1 || s.Spec.Type != "ClusterIP" {
		t.Errorf("Service authresolver-admin = %+v, want one ClusterIP port", s.Spec)
	}
}

// TestNetworkPolicyKeepsAdminInside: the admin port admits only pods of
// the namespace; the resolve and gRPC ports are open to gateways.
func TestNetworkPolicyKeepsAdminInside(t *testing.T) {
	docs := loadDocs(t)
	b := loadBase(t, docs)
	var np struct {
		Spec struct {
			PodSelector struct {
				MatchLabels map[string]string `json:"matchLabels"`
			} `json:"podSelector"`
			Ingress []struct {
				From  []map[string]any
				Ports []struct{ Port int }
			}
		}
	}
	for _, d := range docs {
		if d.Kind == "NetworkPolicy" {
			decode(t, d, &np)
		}
	}
	for k, v := range np.Spec.PodSelector.MatchLabels {
		if b.deploy.Spec.Template.Metadata.Labels[k] != v {
			t.Errorf("NetworkPolicy selects %s=%s, not the pods", k, v)
		}
	}
	admin := b.container.port("admin")
	open := map[int]bool{}
	for _, rule := range np.Spec.Ingress {
		for _, p := range rule.Ports {
			if len(rule.From) == 0 {
				open[p.Port] = true
				continue
			}
			if p.Port == admin {
				for _, f := range rule.From {
					if _, ok := f["namespaceSelector"]; ok || f["ipBlock"] != nil || len(f) != 1 {
						t.Errorf("admin port admits %v, want only pods of the namespace", f)
					}
				}
			}
		}
	}
	if open[admin] || !open[b.container.port("http")] || !open[b.container.port("grpc")] {
		t.Errorf("ports open to all: %v; want http and grpc, not admin %d", open, admin)
	}
}

// TestGatewayReferences: every gateway example points at a Service of the
// base, in its namespace, on a port that Service has.
func TestGatewayReferences(t *testing.T) {
	docs := loadDocs(t)
	b := loadBase(t, docs)
	// refer checks a reference to Service name:port in namespace ns.
	refer := func(d doc, name, ns string, port int) {
		t.Helper()
		s, ok := b.services[name]
		if !ok || ns != b.namespace {
			t.Errorf("%s %s: refers to Service %s/%s, which deploy/kubernetes does not define", d.path, d.Kind, ns, name)
			return
		}
		for _, p := range s.Spec.Ports {
			if p.Port == port {
				return
			}
		}
		t.Errorf("%s %s: refers to port %d of Service %s, which has %+v", d.path, d.Kind, port, name, s.Spec.Ports)
	}
	// referURL checks an http:// URL to a Service's cluster DNS name.
	referURL := func(d doc, raw string) {
		t.Helper()
		u, err := url.Parse(raw)
		if err != nil || u.Scheme != "http" {
			t.Errorf("%s: URL %q", d.path, raw)
			return
		}
		host := strings.Split(u.Hostname(), ".")
		port, _ := strconv.Atoi(u.Port())
		if len(host) < 2 || u.Path != "/resolve" {
			t.Errorf("%s: URL %q, want http://<service>.<namespace>.svc…/resolve", d.path, raw)
			return
		}
		refer(d, host[0], host[1], port)
	}
	seen := map[string]bool{}
	for _, d := range docs {
		switch d.Kind {
		case "IstioOperator":
			var v struct {
				Spec struct {
					MeshConfig struct {
						ExtensionProviders []struct {
							Name              string
							EnvoyExtAuthzGrpc struct {
								Service  string
								Port     int
								FailOpen bool `json:"failOpen"`
							} `json:"envoyExtAuthzGrpc"`
						} `json:"extensionProviders"`
					} `json:"meshConfig"`
				}
			}
			decode(t, d, &v)
			for _, p := range v.Spec.MeshConfig.ExtensionProviders {
				host := strings.Split(p.EnvoyExtAuthzGrpc.Service, ".")
				refer(d, host[0], host[min(1, len(host)-1)], p.EnvoyExtAuthzGrpc.Port)
				if p.EnvoyExtAuthzGrpc.FailOpen {
					t.Errorf("%s: failOpen true", d.path)
				}
				seen["istio provider "+p.Name] = true
			}
		case "SecurityPolicy":
			var v struct {
				Metadata struct{ Namespace string }
				Spec     struct {
					ExtAuth struct {
						FailOpen *bool `json:"failOpen"`
						GRPC     struct {
							BackendRefs []struct {
								Name, Namespace string
								Port            int
							} `json:"backendRefs"`
						} `json:"grpc"`
					} `json:"extAuth"`
				}
			}
			decode(t, d, &v)
			if len(v.Spec.ExtAuth.GRPC.BackendRefs) == 0 || v.Spec.ExtAuth.FailOpen == nil || *v.Spec.ExtAuth.FailOpen {
				t.Errorf("%s: want extAuth.grpc backendRefs and failOpen false", d.path)
			}
			for _, r := range v.Spec.ExtAuth.GRPC.BackendRefs {
				refer(d, r.Name, r.Namespace, r.Port)
				seen["grant "+v.Metadata.Namespace+" "+r.Name] = true
			}
		case "ExtensionService":
			var v struct {
				Spec struct {
					Protocol string
					Services []struct {
						Name string
						Port int
					}
				}
			}
			decode(t, d, &v)
			if v.Spec.Protocol != "h2c" || len(v.Spec.Services) == 0 {
				t.Errorf("%s: protocol %q, want h2c and services", d.path, v.Spec.Protocol)
			}
			for _, s := range v.Spec.Services {
				refer(d, s.Name, d.Metadata.Namespace, s.Port)
			}
			seen["contour "+d.Metadata.Namespace+"/"+d.Metadata.Name] = true
		case "Ingress":
			var v struct {
				Metadata struct{ Annotations map[string]string }
			}
			decode(t, d, &v)
			referURL(d, v.Metadata.Annotations["nginx.ingress.kubernetes.io/auth-url"])
			// A name left out would pass a client-sent copy through.
			headers := strings.Split(v.Metadata.Annotations["nginx.ingress.kubernetes.io/auth-response-headers"], ",")
			for _, h := range identityHeaders() {
				if !slices.Contains(headers, h) {
					t.Errorf("%s: auth-response-headers lacks %s", d.path, h)
				}
			}
		case "Middleware":
			var v struct {
				Spec struct {
					ForwardAuth struct {
						Address                  string
						TrustForwardHeader       bool   `json:"trustForwardHeader"`
						AuthResponseHeadersRegex string `json:"authResponseHeadersRegex"`
					} `json:"forwardAuth"`
				}
			}
			decode(t, d, &v)
			referURL(d, v.Spec.ForwardAuth.Address)
			if v.Spec.ForwardAuth.TrustForwardHeader || v.Spec.ForwardAuth.AuthResponseHeadersRegex != "^X-Auth-" {
				t.Errorf("%s: want trustForwardHeader false and authResponseHeadersRegex ^X-Auth-", d.path)
			}
		}
	}
	for _, d := range docs {
		switch d.Kind {
		case "AuthorizationPolicy":
			var v struct {
				Spec struct {
					Action   string
					Provider struct{ Name string }
				}
			}
			decode(t, d, &v)
			if v.Spec.Action != "CUSTOM" || !seen["istio provider "+v.Spec.Provider.Name] {
				t.Errorf("%s: action %s provider %q, want CUSTOM with a provider of mesh-config.yaml", d.path, v.Spec.Action, v.Spec.Provider.Name)
			}
		case "HTTPProxy":
			var v struct {
				Spec struct {
					Virtualhost struct {
						TLS           *struct{} `json:"tls"`
						Authorization struct {
							ExtensionRef struct{ Name, Namespace string } `json:"extensionRef"`
							FailOpen     bool                             `json:"failOpen"`
						}
					}
				}
			}
			decode(t, d, &v)
			ref := v.Spec.Virtualhost.Authorization.ExtensionRef
			if !seen["contour "+ref.Namespace+"/"+ref.Name] || v.Spec.Virtualhost.TLS == nil || v.Spec.Virtualhost.Authorization.FailOpen {
				t.Errorf("%s: extensionRef %s/%s, want an ExtensionService of contour/, TLS and failOpen false", d.path, ref.Namespace, ref.Name)
			}
			if !bytes.Contains(d.raw, []byte("role: admin")) {
				t.Errorf("%s: no route with authPolicy.context role: admin", d.path)
			}
			var routes struct {
				Spec struct {
					Routes []struct {
						AuthPolicy struct {
							Disabled bool
						} `json:"authPolicy"`
						RequestHeadersPolicy struct {
							Remove []string
						} `json:"requestHeadersPolicy"`
					}
				}
			}
			decode(t, d, &routes)
			for _, r := range routes.Spec.Routes {
				if !r.AuthPolicy.Disabled {
					continue
				}
				// Nothing else removes client-sent identity headers there.
				for _, h := range identityHeaders() {
					if !slices.Contains(r.RequestHeadersPolicy.Remove, h) {
						t.Errorf("%s: a route without authorization keeps client-sent %s", d.path, h)
					}
				}
			}
		case "ReferenceGrant":
			var v struct {
				Spec struct {
					From []struct{ Kind, Namespace string }
					To   []struct{ Kind, Name string }
				}
			}
			decode(t, d, &v)
			for _, f := range v.Spec.From {
				for _, to := range v.Spec.To {
					delete(seen, "grant "+f.Namespace+" "+to.Name)
				}
			}
		}
	}
	for k := range seen {
		if strings.HasPrefix(k, "grant ") {
			t.Errorf("no ReferenceGrant for the SecurityPolicy backendRef %s", k)
		}
	}
}

// identityHeaders are the identity headers of the default configuration
// (prefix X-Auth-, no claim headers).
func identityHeaders() []string {
	return resolver.New(resolver.Options{}).IdentityHeaders()
}
