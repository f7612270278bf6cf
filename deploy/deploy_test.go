package deploy

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile"
	_ "github.com/caddyserver/caddy/v2/modules/standard"
	"gopkg.in/yaml.v3"

	_ "github.com/creditgate/creditgate/caddymodule"
)

// yamlDocs parses every document of a YAML file.
func yamlDocs(t *testing.T, path string) []map[string]any {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	var docs []map[string]any
	for {
		var d map[string]any
		err := dec.Decode(&d)
		if errors.Is(err, io.EOF) {
			return docs
		}
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		docs = append(docs, d)
	}
}

func adapt(t *testing.T, name, src string) {
	t.Helper()
	_, _, err := caddyfile.Adapter{ServerType: httpcaddyfile.ServerType{}}.Adapt([]byte(src), map[string]any{"filename": name})
	if err != nil {
		t.Fatalf("%s does not adapt: %v", name, err)
	}
}

func TestKubernetesManifests(t *testing.T) {
	files, _ := filepath.Glob("kubernetes/*.yaml")
	if len(files) < 4 {
		t.Fatalf("expected the kubernetes manifests, found %v", files)
	}
	kinds := map[string]bool{}
	var configMapCaddyfile string
	for _, f := range files {
		for _, d := range yamlDocs(t, f) {
			meta, _ := d["metadata"].(map[string]any)
			if d["apiVersion"] == nil || d["kind"] == nil || meta["name"] == nil {
				t.Errorf("%s: a document without apiVersion, kind or metadata.name", f)
			}
			kind, _ := d["kind"].(string)
			kinds[kind] = true
			if kind == "ConfigMap" {
				data, _ := d["data"].(map[string]any)
				configMapCaddyfile, _ = data["Caddyfile"].(string)
			}
		}
	}
	for _, k := range []string{"ConfigMap", "Deployment", "Service", "StatefulSet", "Secret"} {
		if !kinds[k] {
			t.Errorf("no %s manifest", k)
		}
	}
	adapt(t, "configmap Caddyfile", configMapCaddyfile)
	deployCaddyfile, err := os.ReadFile("Caddyfile")
	if err != nil {
		t.Fatal(err)
	}
	// The ConfigMap carries the same configuration as the image, less the
	// 404 fallback route and comments.
	if !strings.Contains(string(deployCaddyfile), strings.TrimSpace(strings.SplitN(configMapCaddyfile, ":8080", 2)[0])) {
		t.Error("the ConfigMap's global options differ from deploy/Caddyfile")
	}
}

func TestCaddyfilesAdapt(t *testing.T) {
	for _, f := range []string{"Caddyfile", "../Caddyfile"} {
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		adapt(t, f, string(src))
	}
}

func TestComposeFile(t *testing.T) {
	docs := yamlDocs(t, "compose.yaml")
	if len(docs) != 1 {
		t.Fatalf("%d documents", len(docs))
	}
	services, _ := docs[0]["services"].(map[string]any)
	for _, name := range []string{"redis", "upstream", "gateway-1", "gateway-2"} {
		if services[name] == nil {
			t.Errorf("no service %s", name)
		}
	}
	redis, _ := services["redis"].(map[string]any)
	if cmd, _ := redis["command"].([]any); !strings.Contains(strings.Trim(strings.Join(toStrings(cmd), " "), " "), "--appendonly yes") {
		t.Errorf("redis runs without AOF: %v", cmd)
	}
	gw, _ := services["gateway-2"].(map[string]any)
	build, _ := gw["build"].(map[string]any)
	if build["dockerfile"] != "deploy/Dockerfile" {
		t.Errorf("gateway-2 does not build deploy/Dockerfile: %v", gw)
	}
}

func toStrings(v []any) []string {
	out := make([]string, len(v))
	for i, x := range v {
		out[i], _ = x.(string)
	}
	return out
}

// The image is built with the Makefile's build target, so it is the binary
// that CI tests.
func TestDockerfileBuildsWithMakefile(t *testing.T) {
	dockerfile, err := os.ReadFile("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`(?m)^RUN make build BIN=\S+$`).Match(dockerfile) {
		t.Error("the Dockerfile does not build with `make build`")
	}
	makefile, err := os.ReadFile("../Makefile")
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`(?m)^build:\n\t.*\$\(GO\) build .*-o \$\(BIN\) \./cmd/creditgate$`).Match(makefile) {
		t.Error("the Makefile's build target does not build ./cmd/creditgate into $(BIN)")
	}
	for _, f := range []string{"Caddyfile"} {
		if !bytes.Contains(dockerfile, []byte("COPY deploy/"+f)) {
			t.Errorf("the image does not ship deploy/%s", f)
		}
	}
}
