package deploy

import (
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

const k8sBase = "k8s/base"

type kustomization struct {
	dir       string
	doc       map[string]any
	resources []string // paths relative to dir
	files     map[string]string
}

func readKustomization(t *testing.T, dir string) kustomization {
	t.Helper()
	k := kustomization{dir: dir, doc: yamlDocs(t, filepath.Join(dir, "kustomization.yaml"))[0], files: map[string]string{}}
	k.resources = strs(k.doc["resources"])
	for i := range len(strs(k.doc["configMapGenerator"])) {
		for _, f := range strs(get(k.doc, "configMapGenerator", i, "files")) {
			key, file, ok := strings.Cut(f, "=")
			if !ok {
				file, key = f, filepath.Base(f)
			}
			k.files[key] = file
		}
	}
	return k
}

// manifests returns every object of the kustomization's resources.
func (k kustomization) manifests(t *testing.T) []map[string]any {
	t.Helper()
	var objs []map[string]any
	for _, r := range k.resources {
		objs = append(objs, yamlDocs(t, filepath.Join(k.dir, r))...)
	}
	return objs
}

func find(objs []map[string]any, kind, name string) map[string]any {
	for _, o := range objs {
		if o["kind"] == kind && str(get(o, "metadata", "name")) == name {
			return o
		}
	}
	return nil
}

// Every file a kustomization names exists, and every file beside it is named:
// a manifest left out of resources would silently not be applied.
func TestKustomizationsListEveryFile(t *testing.T) {
	for _, dir := range []string{k8sBase, "k8s/components/worker-hpa"} {
		k := readKustomization(t, dir)
		named := map[string]bool{"kustomization.yaml": true}
		for _, r := range k.resources {
			named[r] = true
		}
		for _, f := range k.files {
			named[f] = true
		}
		for f := range named {
			if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
				t.Errorf("%s names %s, which does not exist", dir, f)
			}
		}
		entries, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			if !named[e.Name()] {
				t.Errorf("%s/%s is not named by its kustomization.yaml", dir, e.Name())
			}
		}
		for _, o := range k.manifests(t) {
			if o["apiVersion"] == nil || o["kind"] == nil || str(get(o, "metadata", "name")) == "" {
				t.Errorf("%s: an object without apiVersion, kind or name: %v", dir, o)
			}
		}
	}
}

// The workloads: images, commands, flags, probes on admin.listen, security,
// resources, the configuration and its secrets.
func TestKustomizeWorkloads(t *testing.T) {
	k := readKustomization(t, k8sBase)
	objs := k.manifests(t)

	images := map[string]string{} // name → newTag
	for i := range len(strs(k.doc["images"])) {
		name, tag := str(get(k.doc, "images", i, "name")), str(get(k.doc, "images", i, "newTag"))
		if newName := str(get(k.doc, "images", i, "newName")); newName != "" && parseImage(newName).host != "" {
			t.Errorf("kustomization images: %s names a registry host; set it in an overlay", newName)
		}
		if tag == "" || tag == "latest" {
			t.Errorf("kustomization images: %s has tag %q; pin one", name, tag)
		}
		images[name] = tag
	}

	secret := find(objs, "Secret", "rollcall-secrets")
	if secret == nil {
		t.Fatal("no Secret rollcall-secrets")
	}
	secretEnv := map[string]string{}
	for key, v := range get(secret, "stringData").(map[string]any) {
		secretEnv[key] = str(v)
		if !strings.Contains(str(v), "CHANGE-ME") {
			t.Errorf("Secret %s: %s is not an obvious placeholder (want CHANGE-ME in it)", "rollcall-secrets", key)
		}
	}

	cmName := str(get(k.doc, "configMapGenerator", 0, "name"))
	cfgFile, ok := k.files["config.yaml"]
	if cmName == "" || !ok {
		t.Fatal("the kustomization generates no ConfigMap with config.yaml")
	}
	cfg := loadConfig(t, filepath.Join(k8sBase, cfgFile), secretEnv)
	port := adminPort(t, cfg)
	if cfg.NATS.StreamReplicas != 3 {
		t.Errorf("nats.stream_replicas %d: want 3 on the three-node cluster", cfg.NATS.StreamReplicas)
	}

	wantReplicas := map[string]func(int) bool{
		"poller": func(n int) bool { return n == 2 },
		"worker": func(n int) bool { return n >= 2 },
	}
	for _, name := range []string{"poller", "worker"} {
		d := find(objs, "Deployment", name)
		if d == nil {
			t.Errorf("no Deployment %s", name)
			continue
		}
		where := "Deployment " + name
		if n, _ := get(d, "spec", "replicas").(int); !wantReplicas[name](n) {
			t.Errorf("%s: %d replicas", where, n)
		}
		pod := get(d, "spec", "template", "spec")
		if get(pod, "securityContext", "runAsNonRoot") != true {
			t.Errorf("%s: the pod's securityContext lacks runAsNonRoot: true", where)
		}
		volumes := map[string]string{} // volume → configMap
		for i := range len(strs(get(pod, "volumes"))) {
			v := get(pod, "volumes", i)
			volumes[str(get(v, "name"))] = str(get(v, "configMap", "name"))
		}
		containers := get(pod, "containers").([]any)
		for i := range containers {
			c := get(pod, "containers", i)
			where := where + " container " + str(get(c, "name"))
			img := parseImage(str(get(c, "image")))
			if img.host != "" || img.tag != "" {
				t.Errorf("%s: image %q: want a bare name that the kustomization's images: sets", where, get(c, "image"))
			}
			if _, ok := images[img.path]; !ok {
				t.Errorf("%s: image %q has no images: entry in the kustomization", where, img.path)
			}
			cmd, args := strs(get(c, "command")), strs(get(c, "args"))
			if len(cmd) != 1 {
				t.Errorf("%s: command %q: want the binary alone", where, cmd)
				continue
			}
			checkCommand(t, where, cmd[0], args)

			// -config names config.yaml where the ConfigMap is mounted.
			path, _ := flagValue(args, "config")
			mounted := false
			for j := range len(strs(get(c, "volumeMounts"))) {
				vm := get(c, "volumeMounts", j)
				if volumes[str(get(vm, "name"))] == cmName && filepath.Join(str(get(vm, "mountPath")), "config.yaml") == path {
					mounted = true
				}
			}
			if !mounted {
				t.Errorf("%s: -config %q is not config.yaml of the ConfigMap %s as mounted", where, path, cmName)
			}

			if str(get(c, "envFrom", 0, "secretRef", "name")) != "rollcall-secrets" {
				t.Errorf("%s: the Secret's variables are not in the environment (envFrom secretRef rollcall-secrets)", where)
			}

			// Probes and the admin port are admin.listen's port.
			named := map[string]string{}
			for j := range len(strs(get(c, "ports"))) {
				p := get(c, "ports", j)
				named[str(get(p, "name"))] = str(get(p, "containerPort"))
			}
			if named["admin"] != port {
				t.Errorf("%s: containerPort admin %q; admin.listen is on %s", where, named["admin"], port)
			}
			for probe, wantPath := range map[string]string{"livenessProbe": "/healthz", "readinessProbe": "/readyz"} {
				p := str(get(c, probe, "httpGet", "port"))
				if n, ok := named[p]; ok {
					p = n
				}
				if str(get(c, probe, "httpGet", "path")) != wantPath || p != port {
					t.Errorf("%s: %s is %v %v; want GET %s on %s (admin.listen)", where, probe,
						get(c, probe, "httpGet", "path"), get(c, probe, "httpGet", "port"), wantPath, port)
				}
			}

			sc := get(c, "securityContext")
			if get(sc, "readOnlyRootFilesystem") != true || get(sc, "allowPrivilegeEscalation") != false {
				t.Errorf("%s: securityContext %v: want readOnlyRootFilesystem true, allowPrivilegeEscalation false", where, sc)
			}
			if !slices.Contains(strs(get(sc, "capabilities", "drop")), "ALL") {
				t.Errorf("%s: capabilities are not all dropped", where)
			}
			for _, r := range []string{"requests", "limits"} {
				if get(c, "resources", r, "memory") == nil {
					t.Errorf("%s: no memory %s", where, r)
				}
			}
			if get(c, "resources", "requests", "cpu") == nil {
				t.Errorf("%s: no cpu request (the autoscaler needs one)", where)
			}
		}

		// A PodDisruptionBudget selects the Deployment's pods.
		pdb := find(objs, "PodDisruptionBudget", name)
		labels, _ := get(d, "spec", "template", "metadata", "labels").(map[string]any)
		sel, _ := get(pdb, "spec", "selector", "matchLabels").(map[string]any)
		if pdb == nil || len(sel) == 0 {
			t.Errorf("no PodDisruptionBudget %s with a selector", name)
		}
		for k, v := range sel {
			if labels[k] != v {
				t.Errorf("PodDisruptionBudget %s selects %s=%v, which the pods of Deployment %s do not carry", name, k, v, name)
			}
		}
	}

	hpa := find(readKustomization(t, "k8s/components/worker-hpa").manifests(t), "HorizontalPodAutoscaler", "worker")
	if hpa == nil || str(get(hpa, "spec", "scaleTargetRef", "kind")) != "Deployment" || find(objs, "Deployment", str(get(hpa, "spec", "scaleTargetRef", "name"))) == nil {
		t.Errorf("the worker autoscaler does not target a Deployment of the base: %v", get(hpa, "spec", "scaleTargetRef"))
	}
	if ns := find(objs, "Namespace", str(k.doc["namespace"])); ns == nil {
		t.Errorf("the base's namespace %q is not among its resources", k.doc["namespace"])
	}
}

func TestNATSHelmValues(t *testing.T) {
	v := yamlDocs(t, "k8s/nats/values.yaml")[0]
	checks := []struct {
		path []any
		want string
	}{
		{[]any{"config", "cluster", "enabled"}, "true"},
		{[]any{"config", "cluster", "replicas"}, "3"},
		{[]any{"config", "jetstream", "enabled"}, "true"},
		{[]any{"config", "jetstream", "fileStore", "enabled"}, "true"},
		{[]any{"config", "jetstream", "fileStore", "pvc", "enabled"}, "true"},
		{[]any{"container", "image", "repository"}, "nats"},
	}
	for _, c := range checks {
		if got := str(get(v, c.path...)); got != c.want {
			t.Errorf("values.yaml %v = %q, want %s", c.path, got, c.want)
		}
	}
	if size := str(get(v, "config", "jetstream", "fileStore", "pvc", "size")); !strings.HasSuffix(size, "Gi") {
		t.Errorf("values.yaml: PVC size %q", size)
	}
	if get(v, "container", "image", "registry") != nil {
		t.Error("values.yaml names a registry")
	}
	checkPinnedOfficial(t, "nats values.yaml", "nats:"+str(get(v, "container", "image", "tag")))

	// The compose file and the cluster run one server version.
	compose := readCompose(t)["nats"].Image
	if want := "nats:" + str(get(v, "container", "image", "tag")); compose != want {
		t.Errorf("docker-compose runs %s, the cluster %s: keep one version", compose, want)
	}
	if n, err := strconv.Atoi(str(get(v, "config", "cluster", "replicas"))); err != nil || n < 3 {
		t.Errorf("a cluster of %v servers cannot hold streams of 3 replicas", n)
	}
}

// With kubectl at hand (it embeds kustomize), the base must build, and what it
// builds must carry the namespace and the pinned image everywhere.
func TestKustomizeBuilds(t *testing.T) {
	kubectl, err := exec.LookPath("kubectl")
	if err != nil {
		t.Skip("kubectl not installed: kustomize build not checked")
	}
	out, err := exec.Command(kubectl, "kustomize", k8sBase).CombinedOutput()
	if err != nil {
		t.Fatalf("kubectl kustomize %s: %v\n%s", k8sBase, err, out)
	}
	k := readKustomization(t, k8sBase)
	dec := yaml.NewDecoder(bytes.NewReader(out))
	for {
		var o map[string]any
		if err := dec.Decode(&o); err != nil {
			if !errors.Is(err, io.EOF) {
				t.Fatal(err)
			}
			break
		}
		kind, name := str(o["kind"]), str(get(o, "metadata", "name"))
		if kind != "Namespace" && str(get(o, "metadata", "namespace")) != str(k.doc["namespace"]) {
			t.Errorf("built %s %s is in namespace %q", kind, name, get(o, "metadata", "namespace"))
		}
		for i := range len(strs(get(o, "spec", "template", "spec", "containers"))) {
			img := str(get(o, "spec", "template", "spec", "containers", i, "image"))
			if r := parseImage(img); r.tag == "" || r.tag == "latest" || r.host != "" {
				t.Errorf("built %s %s runs image %q", kind, name, img)
			}
		}
	}
}
