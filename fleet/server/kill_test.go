package server

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/quarry-sec/quarry/fleet/store/sqlitestore"
)

const helperEnv = "QUARRY_FLEET_TEST_SERVER"

// TestHelperServer is the server process TestKillMidIngest kills: it
// serves the store named by the environment on a loopback port and prints
// the address.
func TestHelperServer(t *testing.T) {
	path := os.Getenv(helperEnv)
	if path == "" {
		t.Skip("helper process for TestKillMidIngest")
	}
	st, err := sqlitestore.Open(context.Background(), path)
	if err != nil {
		fmt.Println("ERROR", err)
		os.Exit(1)
	}
	srv, err := New(Config{Store: st, KB: kb(t), EnrollSecret: testSecret})
	if err != nil {
		fmt.Println("ERROR", err)
		os.Exit(1)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Println("ERROR", err)
		os.Exit(1)
	}
	fmt.Println("ADDR", ln.Addr().String())
	http.Serve(ln, srv.Handler())
}

func startHelper(t *testing.T, path string) (*exec.Cmd, string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperServer$", "-test.v")
	cmd.Env = append(os.Environ(), helperEnv+"="+path)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if addr, ok := strings.CutPrefix(sc.Text(), "ADDR "); ok {
			go func() {
				for sc.Scan() {
				}
			}()
			return cmd, "http://" + addr
		}
	}
	cmd.Process.Kill()
	cmd.Wait()
	t.Fatal("helper server did not start")
	return nil, ""
}

func postJSON(url string, v any) (int, map[string]any, error) {
	b, _ := json.Marshal(v)
	resp, err := http.Post(url, "application/json", bytes.NewReader(b))
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	var out map[string]any
	json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out, nil
}

// TestKillMidIngest kills the server (SIGKILL) while hosts send logs, then
// restarts it: every log the server acknowledged is stored.
func TestKillMidIngest(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns server processes")
	}
	path := filepath.Join(t.TempDir(), sqlitestore.FileName)
	cmd, url := startHelper(t, path)
	const hosts = 4
	keys := make([]string, hosts)
	for i := range keys {
		code, out, err := postJSON(url+"/api/v1/osquery/enroll", enrollBody(fmt.Sprintf("host-%d", i), "h", "ubuntu", testSecret))
		if err != nil || code != 200 {
			t.Fatalf("enroll: %d %v", code, err)
		}
		keys[i] = out["node_key"].(string)
	}
	var mu sync.Mutex
	acked := map[string]bool{}
	var wg sync.WaitGroup
	for i := range hosts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; ; n++ {
				hit := fmt.Sprintf("h%d-%d", i, n)
				body := map[string]any{"node_key": keys[i], "log_type": "result", "data": []any{
					map[string]any{"name": "pack_quarry-detections_quarry_ioa_hits", "unixTime": time.Now().Unix(), "action": "added",
						"columns": hitRow(hit, "T1059.004", "execution", "high", time.Now())}}}
				code, _, err := postJSON(url+"/api/v1/osquery/log", body)
				if err != nil {
					return // the server is gone
				}
				if code == 200 {
					mu.Lock()
					acked[hit] = true
					mu.Unlock()
				}
			}
		}()
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		mu.Lock()
		n := len(acked)
		mu.Unlock()
		if n >= 200 || time.Now().After(deadline) {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	if len(acked) == 0 {
		t.Fatal("no log acknowledged before the kill")
	}
	// Restart on the same file: the store opens (WAL recovery) and holds
	// every acknowledged hit.
	cmd2, url2 := startHelper(t, path)
	defer func() { cmd2.Process.Kill(); cmd2.Wait() }()
	if code, _, err := postJSON(url2+"/api/v1/osquery/config", map[string]any{"node_key": keys[0]}); err != nil || code != 200 {
		t.Fatalf("config after restart: %d %v", code, err)
	}
	st, err := sqlitestore.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ds, total, err := st.Detections(context.Background(), storeAll())
	if err != nil {
		t.Fatal(err)
	}
	stored := map[string]bool{}
	for _, d := range ds {
		stored[d.HitID] = true
	}
	for hit := range acked {
		if !stored[hit] {
			t.Errorf("acknowledged hit %s lost", hit)
		}
	}
	t.Logf("%d acknowledged, %d stored (unacknowledged in-flight writes may be stored too)", len(acked), total)
}
