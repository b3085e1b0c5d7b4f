package deploy

import (
	"bufio"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/kycgate/kycgate/internal/config"
	"go.yaml.in/yaml/v3"
)

// service is the part of a Compose service these tests read.
type service struct {
	Image string `yaml:"image"`
	Build *struct {
		Context    string `yaml:"context"`
		Dockerfile string `yaml:"dockerfile"`
	} `yaml:"build"`
	Command     []string          `yaml:"command"`
	Environment map[string]string `yaml:"environment"`
	EnvFile     any               `yaml:"env_file"`
	Profiles    []string          `yaml:"profiles"`
	DependsOn   map[string]struct {
		Condition string `yaml:"condition"`
	} `yaml:"depends_on"`
	Healthcheck *struct {
		Test []string `yaml:"test"`
	} `yaml:"healthcheck"`
	Volumes []string `yaml:"volumes"`
	User    string   `yaml:"user"`
}

func loadCompose(t *testing.T) map[string]service {
	t.Helper()
	b, err := os.ReadFile("compose.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Services map[string]service `yaml:"services"`
	}
	if err := yaml.Unmarshal(b, &f); err != nil {
		t.Fatalf("compose.yaml: %v", err)
	}
	return f.Services
}

// replicas are the services that run kycgate serve.
var replicas = []string{"kycgate-1", "kycgate-2"}

// TestCompose: the stack the README promises — PostgreSQL with a
// healthcheck, a one-shot migrate that waits for it, two replicas of one
// image that wait for the migration and report their readiness, a proxy
// that balances both on /readyz, and the trial stand-ins under a profile.
func TestCompose(t *testing.T) {
	t.Parallel()
	svcs := loadCompose(t)
	for _, name := range append([]string{"postgres", "migrate", "proxy", "didit-sim", "mailpit"}, replicas...) {
		if _, ok := svcs[name]; !ok {
			t.Errorf("compose.yaml has no service %q", name)
		}
	}
	if t.Failed() {
		t.FailNow()
	}
	pg := svcs["postgres"]
	if !strings.Contains(pg.Image, "postgres:") || pg.Healthcheck == nil {
		t.Errorf("postgres: want the official image with a healthcheck, got %q", pg.Image)
	}
	mig := svcs["migrate"]
	if !slices.Equal(mig.Command, []string{"migrate"}) || mig.DependsOn["postgres"].Condition != "service_healthy" {
		t.Errorf("migrate: want command [migrate] after postgres is healthy, got %v %v", mig.Command, mig.DependsOn)
	}

	image := mig.Image
	for _, name := range append([]string{"migrate", "didit-sim"}, replicas...) {
		s := svcs[name]
		if s.Image != image || s.Build == nil || s.Build.Context != ".." {
			t.Errorf("%s: want image %q built from the repository's root, got %q %+v", name, image, s.Image, s.Build)
		}
	}
	if _, err := os.Stat("../Dockerfile"); err != nil {
		t.Errorf("the build context .. has no Dockerfile: %v", err)
	}
	for _, name := range replicas {
		s := svcs[name]
		if !slices.Equal(s.Command, []string{"serve"}) {
			t.Errorf("%s: command %v, want [serve]", name, s.Command)
		}
		if s.DependsOn["migrate"].Condition != "service_completed_successfully" {
			t.Errorf("%s: must start after migrate succeeded, got %v", name, s.DependsOn)
		}
		if s.Healthcheck == nil || !slices.Contains(s.Healthcheck.Test, "healthcheck") {
			t.Errorf("%s: want a healthcheck running kycgate healthcheck (/readyz), got %+v", name, s.Healthcheck)
		}
		if s.User == "root" || s.User == "0" || strings.HasPrefix(s.User, "0:") {
			t.Errorf("%s runs as root", name)
		}
		if !strings.HasPrefix(s.Environment["KYCGATE_DATABASE_URL"], "postgres://") {
			t.Errorf("%s: replicas must share PostgreSQL, got KYCGATE_DATABASE_URL=%q", name, s.Environment["KYCGATE_DATABASE_URL"])
		}
	}
	for _, name := range []string{"didit-sim", "mailpit"} {
		if !slices.Contains(svcs[name].Profiles, "trial") {
			t.Errorf("%s: a stand-in must only run under the trial profile", name)
		}
	}
	for name, s := range svcs {
		if s.Build == nil && (!strings.Contains(s.Image, ":") || strings.HasSuffix(s.Image, ":latest")) {
			t.Errorf("%s: image %q is not pinned by tag", name, s.Image)
		}
	}
	checkProxy(t, svcs["proxy"])
}

// checkProxy: the proxy mounts the Caddyfile, which balances every
// replica and checks /readyz.
func checkProxy(t *testing.T, proxy service) {
	t.Helper()
	if !slices.ContainsFunc(proxy.Volumes, func(v string) bool { return strings.HasPrefix(v, "./Caddyfile:") }) {
		t.Errorf("proxy: does not mount ./Caddyfile: %v", proxy.Volumes)
	}
	for _, r := range replicas {
		if proxy.DependsOn[r].Condition == "" {
			t.Errorf("proxy: does not depend on %s", r)
		}
	}
	b, err := os.ReadFile("Caddyfile")
	if err != nil {
		t.Fatal(err)
	}
	var upstreams []string
	healthURI := ""
	for line := range strings.Lines(string(b)) {
		f := strings.Fields(line)
		switch {
		case len(f) > 1 && f[0] == "reverse_proxy":
			upstreams = append(upstreams, f[1:]...)
		case len(f) == 2 && f[0] == "health_uri":
			healthURI = f[1]
		}
	}
	for _, r := range replicas {
		if !slices.Contains(upstreams, r+":8080") {
			t.Errorf("Caddyfile: reverse_proxy %v does not balance %s:8080", upstreams, r)
		}
	}
	if healthURI != "/readyz" {
		t.Errorf("Caddyfile: health_uri %q, want /readyz", healthURI)
	}
}

// secretName is a variable whose value must never be committed.
var secretName = regexp.MustCompile(`(?i)(PASSWORD|SECRET|API_KEY|TOKEN)`)

// interpolation is a Compose ${VARIABLE…} reference, possibly inside a
// URL.
var interpolation = regexp.MustCompile(`\$\{[A-Z_][A-Z0-9_]*(:?[?-][^}]*)?\}`)

// TestNoCommittedSecrets: compose.yaml takes every secret from the env file
// (by ${…}), and the example env file holds only placeholders.
func TestNoCommittedSecrets(t *testing.T) {
	t.Parallel()
	for name, s := range loadCompose(t) {
		for k, v := range s.Environment {
			if secretName.MatchString(k) && !interpolation.MatchString(v) {
				t.Errorf("compose.yaml: %s: %s has a literal value; take it from kycgate.env with ${…}", name, k)
			}
			if u := interpolation.ReplaceAllString(v, ""); strings.Contains(v, "://") && regexp.MustCompile(`://[^/@]*:[^/@]+@`).MatchString(u) {
				t.Errorf("compose.yaml: %s: %s has a password in its URL", name, k)
			}
		}
	}
	env := readEnvFile(t, "kycgate.env.example")
	for k, v := range env {
		if secretName.MatchString(k) && !strings.Contains(v, "CHANGE-ME") {
			t.Errorf("kycgate.env.example: %s must be a CHANGE-ME placeholder, not a value", k)
		}
	}
	b, err := os.ReadFile("../.gitignore")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), "/deploy/kycgate.env\n") {
		t.Error(".gitignore does not ignore deploy/kycgate.env, where the real secrets go")
	}
}

// TestEnvExample: the example env file, as compose hands it to a replica,
// is a configuration kycgate accepts in production mode (real Didit and
// SMTP settings, here the trial's stand-ins), and it defines every
// variable compose.yaml interpolates.
func TestEnvExample(t *testing.T) {
	t.Parallel()
	env := readEnvFile(t, "kycgate.env.example")
	b, err := os.ReadFile("compose.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range regexp.MustCompile(`\$\{([A-Z_][A-Z0-9_]*)`).FindAllStringSubmatch(string(b), -1) {
		if _, ok := env[m[1]]; !ok {
			t.Errorf("compose.yaml interpolates %s, which kycgate.env.example does not set", m[1])
		}
	}
	svc := loadCompose(t)[replicas[0]]
	full := map[string]string{"KYCGATE_ADDR": "0.0.0.0:8080"} // the image's ENV
	for k, v := range env {
		full[k] = v
	}
	for k, v := range svc.Environment {
		full[k] = interpolation.ReplaceAllStringFunc(v, func(s string) string {
			name, _, _ := strings.Cut(strings.Trim(s, "${}"), ":")
			return env[name]
		})
	}
	cfg, err := config.Load(func(k string) string { return full[k] })
	if err != nil {
		t.Fatalf("a replica with kycgate.env.example would not start: %v", err)
	}
	if cfg.Dev || cfg.Embedded() {
		t.Errorf("the example runs in development mode (%s): replicas would each have their own simulator and mailbox", cfg.DevReason)
	}
	if !strings.HasPrefix(cfg.DatabaseURL, "postgres://kycgate:"+env["POSTGRES_PASSWORD"]+"@postgres:5432/") {
		t.Errorf("KYCGATE_DATABASE_URL %q does not use POSTGRES_PASSWORD on the postgres service", cfg.DatabaseURL)
	}
}

// readEnvFile reads KEY=VALUE lines as Compose's env_file does (no quotes
// are used in ours).
func readEnvFile(t *testing.T, name string) map[string]string {
	t.Helper()
	f, err := os.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	env := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok || strings.ContainsAny(v, `"'`) {
			t.Fatalf("%s: %q: want KEY=VALUE without quotes", name, line)
		}
		env[k] = v
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return env
}
