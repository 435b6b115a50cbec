//go:build cluster

package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sifkernel/sifkernel/testcluster/testkit"
)

// Stand-ins for the helpers Open OnDemand's "basic" batch-connect wrapper
// defines before it sources before.sh (OOD itself is not installed here):
// a free loopback port, a random token, and a wait for the port; and for
// Lmod's module function, whose `module load sifkernel` (the form's
// modules) puts the sifkernel under test on PATH, as a site's module
// would in a job submitted with --export=NONE.
func oodHelpers() string {
	return fmt.Sprintf("module() { [ \"$1\" = load ] && export PATH=%s:$PATH; return 0; }\nexport -f module\n", filepath.Dir(sifkernelBin)) + oodHelpersText
}

const oodHelpersText = `host=127.0.0.1
find_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
create_passwd() { tr -dc 'A-Za-z0-9' </dev/urandom | head -c "$1"; }
wait_until_port_used() { for _ in $(seq $(( $2 * 5 ))); do (exec 3<>"/dev/tcp/${1%:*}/${1#*:}") 2>/dev/null && return 0; sleep 0.2; done; return 1; }
`

// TestOpenOnDemand renders the Open OnDemand app (templates/ood) with Ruby's
// ERB as OOD does, for a GPU session, submits the rendered job with the
// sbatch arguments of its submit.yml, and asks the Jupyter server it starts
// which kernels it offers: the user's container kernel, as the job's copy
// (the staged image, --nv for the job's GPU). Jupyter is Debian's Notebook 6
// (Debian 12 has no JupyterLab); the form's "lab" choice starts
// `jupyter lab` the same way.
func TestOpenOnDemand(t *testing.T) {
	requireCluster(t)
	setupUser(t, "sktest1", "bert")
	t.Run("with the hooks", func(t *testing.T) {
		argv, log := oodSession(t)
		if !strings.Contains(argv, nodeCache+"/users/") || !strings.Contains(argv, "--nv") {
			t.Errorf("bert's argv is not the job's copy (staged image, --nv): %s", argv)
		}
		if !strings.Contains(log, "prepared by the Slurm hooks") {
			t.Errorf("script.sh did not take the hooks' kernels:\n%s", log)
		}
	})
	t.Run("without the hooks", func(t *testing.T) {
		// Restored however this ends, even if turning them off failed half-way:
		// the scenarios after this one need the hooks.
		defer setHooks(t, true)
		setHooks(t, false)
		argv, log := oodSession(t)
		u := uid(t, "sktest1")
		staged := strings.Contains(argv, fmt.Sprintf("%s/users/%d/", nodeCache, u)) || strings.Contains(argv, fmt.Sprintf("/tmp/sifkernel-%d/users/%d/", u, u))
		if !staged || !strings.Contains(argv, "--nv") {
			t.Errorf("bert's argv is not the job's copy (staged image, --nv): %s", argv)
		}
		if !strings.Contains(log, "prepared by sifkernel run") {
			t.Errorf("script.sh did not use sifkernel run:\n%s", log)
		}
	})
}

// oodSession runs one rendered OOD Jupyter session for sktest1 on a GPU
// node and returns bert's argv as its Jupyter server offers it, and the
// session's log.
func oodSession(t *testing.T) (string, string) {
	t.Helper()
	top := filepath.Dir(filepath.Dir(mustWd(t)))
	rendered := filepath.Join(home(t, "sktest1"), "ood-session")
	if out, err := as(t, "sktest1", "rm -rf ~/ood-session"); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	render := exec.Command("ruby", filepath.Join(top, "testcluster/ood/render"), filepath.Join(top, "templates/ood/sifkernel_jupyter"),
		// Tests bind loopback only: the form's hidden bind (all addresses, as
		// OSC's app) is set to 127.0.0.1 here.
		rendered, "partition=rtx-dev", "gpus=1", "jupyter_app=notebook", "bind=127.0.0.1", "bc_account=skproject", "modules=sifkernel")
	if out, err := render.CombinedOutput(); err != nil {
		t.Fatalf("rendering the OOD app: %v\n%s", err, out)
	}
	if out, err := root("chown", "-R", "sktest1:sktest1", rendered); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	args, err := os.ReadFile(filepath.Join(rendered, "sbatch.args"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(args), "--gres=gpu:1") || !strings.Contains(string(args), "--partition=rtx-dev") || !strings.Contains(string(args), "--account=skproject") {
		t.Errorf("submit.yml for one GPU on rtx-dev gave sbatch %q", args)
	}
	// What OOD's wrapper does: before.sh, script.sh in the background,
	// after.sh, then wait for Jupyter.
	script := oodHelpers() + `cd ~/ood-session
source ./before.sh
echo "$port $password" >connection.txt
./script.sh >jupyter.log 2>&1 &
source ./after.sh
wait`
	// Submitted as ood_core submits: --export=NONE, the script on stdin.
	out, err := as(t, "sktest1", "cd ~/ood-session && sbatch --parsable --export=NONE -o output.txt "+strings.Join(strings.Fields(string(args)), " ")+
		" <<'SCRIPT'\n#!/bin/bash\n"+script+"\nSCRIPT")
	if err != nil {
		t.Fatalf("sbatch: %v\n%s", err, out)
	}
	id := strings.TrimSpace(out)
	if job, _ := root("scontrol", "show", "job", "-o", id); !strings.Contains(job, "Account=skproject") {
		t.Errorf("the form's account did not reach the job: %s", job)
	}
	defer func() {
		scancel(id)
		waitDone(t, id)
	}()
	var port, token string
	waitFor(t, func() bool {
		b, err := os.ReadFile(filepath.Join(rendered, "connection.txt"))
		if f := strings.Fields(string(b)); err == nil && len(f) == 2 {
			port, token = f[0], f[1]
			return true
		}
		return false
	})
	url := fmt.Sprintf("http://127.0.0.1:%s/node/127.0.0.1/%s/api/kernelspecs", port, port)
	argv := kernelArgv(t, id, url, token, "bert", filepath.Join(rendered, "jupyter.log"))
	log := testkit.ReadOptional(t, filepath.Join(rendered, "jupyter.log"))
	return argv, string(log)
}

// kernelArgv asks the Jupyter server of job id at url (with token) for its
// kernelspecs, for up to two minutes, and returns kernel's argv, joined.
func kernelArgv(t *testing.T, id, url, token, kernel, logPath string) string {
	t.Helper()
	var specs struct {
		Kernelspecs map[string]struct {
			Spec struct {
				Argv []string `json:"argv"`
			} `json:"spec"`
		} `json:"kernelspecs"`
	}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		var err error
		if vms {
			// The session's Jupyter listens on its node's loopback, as OOD's
			// does: ask from the node.
			err = askOnNode(t, id, url, token, &specs)
			if err == nil {
				break
			}
		} else {
			req, _ := http.NewRequest("GET", url, nil)
			req.Header.Set("Authorization", "token "+token)
			resp, herr := http.DefaultClient.Do(req)
			err = herr
			if err == nil {
				err = json.NewDecoder(resp.Body).Decode(&specs)
				resp.Body.Close()
				if err == nil && resp.StatusCode == http.StatusOK {
					break
				}
				err = fmt.Errorf("%s: %v", resp.Status, err)
			}
		}
		if time.Now().After(deadline) {
			log := testkit.ReadOptional(t, logPath)
			t.Fatalf("Jupyter of job %s does not answer at %s: %v\n%s", id, url, err, log)
		}
		time.Sleep(300 * time.Millisecond)
	}
	k, ok := specs.Kernelspecs[kernel]
	if !ok {
		log := testkit.ReadOptional(t, logPath)
		t.Fatalf("Jupyter offers %v, not the container kernel %s\n%s", keys(specs.Kernelspecs), kernel, log)
	}
	return strings.Join(k.Spec.Argv, " ")
}

// oscScript does what the job script of OSC's Open OnDemand Jupyter app
// (bc_osc_jupyter's template/script.sh.erb) does to the environment: it
// sets JUPYTER_PATH outright, dropping what the TaskProlog exported, then
// starts Jupyter (Debian's Notebook 6 here; OSC's starts lab or notebook
// with a config file of its own).
const oscScript = `#!/bin/bash
cd "$HOME"
export JUPYTER_PATH="${PWD}/share/jupyter:/opt/osc/jupyter"
port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
token=$(tr -dc 'A-Za-z0-9' </dev/urandom | head -c 24)
echo "JUPYTER_PATH=$JUPYTER_PATH SIFKERNEL_JOB_DIR=${SIFKERNEL_JOB_DIR:-}"
echo "$port $token" >osc-connection.txt
exec jupyter notebook --no-browser --ip=127.0.0.1 --port="$port" --NotebookApp.token="$token" \
	--NotebookApp.base_url="/node/127.0.0.1/$port/" --NotebookApp.notebook_dir="$HOME"
`

// Scenario 18: a launcher that sets JUPYTER_PATH outright, as OSC's Open
// OnDemand Jupyter app does, submitted as ood_core submits (sbatch
// --export=NONE, the script on stdin) to a GPU node: Jupyter still offers
// the job's copy of bert (the staged image, --nv), through the base config
// sifkernel installs for every Jupyter (slurm/jupyter/jupyter_config.py),
// not the user's own kernel.json (the image in place, no --nv).
func TestLauncherOverwritesJupyterPath(t *testing.T) {
	requireCluster(t)
	setupUser(t, "sktest1", "bert")
	out, err := as(t, "sktest1", "rm -f ~/osc-connection.txt; sbatch --parsable --export=NONE -p rtx-dev --gres=gpu:1 -o osc-%j.txt <<'SCRIPT'\n"+oscScript+"SCRIPT")
	if err != nil {
		t.Fatalf("sbatch: %v\n%s", err, out)
	}
	id := strings.TrimSpace(out)
	defer func() {
		scancel(id)
		waitDone(t, id)
	}()
	conn := filepath.Join(home(t, "sktest1"), "osc-connection.txt")
	var port, token string
	waitFor(t, func() bool {
		b, err := os.ReadFile(conn)
		if f := strings.Fields(string(b)); err == nil && len(f) == 2 {
			port, token = f[0], f[1]
			return true
		}
		return false
	})
	logPath := filepath.Join(home(t, "sktest1"), "osc-"+id+".txt")
	argv := kernelArgv(t, id, fmt.Sprintf("http://127.0.0.1:%s/node/127.0.0.1/%s/api/kernelspecs", port, port), token, "bert", logPath)
	log := testkit.ReadOptional(t, logPath)
	if !strings.Contains(string(log), "JUPYTER_PATH="+home(t, "sktest1")+"/share/jupyter:/opt/osc/jupyter ") {
		t.Errorf("the script did not overwrite JUPYTER_PATH as OSC's does:\n%s", log)
	}
	if !strings.Contains(argv, nodeCache+"/users/") || !strings.Contains(argv, "--nv") {
		t.Errorf("with JUPYTER_PATH overwritten, bert's argv is not the job's copy (staged image, --nv): %s\n%s", argv, log)
	}
}

// askOnNode fetches url with Python on the node job id runs on and
// decodes the JSON answer into v.
func askOnNode(t *testing.T, id, url, token string, v any) error {
	node, err := root("squeue", "-h", "-j", id, "-o", "%N")
	if err != nil || strings.TrimSpace(node) == "" {
		return fmt.Errorf("the job's node: %v %s", err, node)
	}
	py := "import sys, urllib.request; r = urllib.request.Request(sys.argv[1], headers={'Authorization': 'token ' + sys.argv[2]}); sys.stdout.write(urllib.request.urlopen(r, timeout=10).read().decode())"
	out, err := onNode(t, strings.TrimSpace(node), "python3", "-c", py, url, token)
	if err != nil {
		return fmt.Errorf("%v: %s", err, out)
	}
	return json.Unmarshal([]byte(out), v)
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
