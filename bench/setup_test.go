package bench

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"testing"
)

// corpusEvents is the corpus size the issue asks for.
const corpusEvents = 100_000

// fixture is what every benchmark and test shares: the rule files, the
// corpus and a strided sample of it for the slow peers.
type fixture struct {
	sigmaDir  string
	rules     []string
	stagedDir string // the rules copied flat, for directory loaders
	corpus    Corpus
	sample    Corpus // every stride-th line of the corpus
	stride    int
}

var (
	fixOnce sync.Once
	fix     *fixture
	fixErr  error
	tmpDir  string
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "quarry-bench-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	tmpDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// sigmaDir is $QUARRY_SIGMA_DIR, else ../../shared/sigma.
func sigmaDir() string {
	if d := os.Getenv("QUARRY_SIGMA_DIR"); d != "" {
		return d
	}
	return filepath.Join("..", "..", "shared", "sigma")
}

// peerEvents is how many corpus events the peers match:
// $BENCH_PEER_EVENTS, default 2,000 (sigma-go needs ~20 ms an event).
func peerEvents() int {
	if n, err := strconv.Atoi(os.Getenv("BENCH_PEER_EVENTS")); err == nil && n > 0 {
		return min(n, corpusEvents)
	}
	return 2000
}

func getFixture(tb testing.TB) *fixture {
	tb.Helper()
	if _, err := os.Stat(sigmaDir()); err != nil {
		tb.Skipf("SigmaHQ material not found at %s: %v", sigmaDir(), err)
	}
	fixOnce.Do(func() { fix, fixErr = buildFixture() })
	if fixErr != nil {
		tb.Fatal(fixErr)
	}
	return fix
}

func buildFixture() (*fixture, error) {
	f := &fixture{sigmaDir: sigmaDir()}
	var err error
	if f.rules, err = ProcessCreationRules(f.sigmaDir); err != nil {
		return nil, err
	}
	f.stagedDir = filepath.Join(tmpDir, "rules")
	if err := os.Mkdir(f.stagedDir, 0o755); err != nil {
		return nil, err
	}
	if err := StageRules(f.rules, f.stagedDir); err != nil {
		return nil, err
	}
	reg, err := RegressionEvents(f.sigmaDir)
	if err != nil {
		return nil, err
	}
	if f.corpus, err = WriteCorpus(filepath.Join(tmpDir, "corpus.jsonl"), corpusEvents, reg); err != nil {
		return nil, err
	}
	f.corpus.Regression = min(f.corpus.Regression, len(reg))
	f.stride = max(1, corpusEvents/peerEvents())
	if f.sample, err = sampleLines(f.corpus, filepath.Join(tmpDir, "sample.jsonl"), f.stride); err != nil {
		return nil, err
	}
	return f, nil
}

// sampleLines writes every stride-th line of c to path.
func sampleLines(c Corpus, path string, stride int) (Corpus, error) {
	in, err := os.Open(c.Path)
	if err != nil {
		return Corpus{}, fmt.Errorf("sample: %w", err)
	}
	defer in.Close()
	out, err := os.Create(path)
	if err != nil {
		return Corpus{}, fmt.Errorf("sample: %w", err)
	}
	defer out.Close()
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	w := bufio.NewWriter(out)
	s := Corpus{Path: path}
	for i := 0; sc.Scan(); i++ {
		if i%stride != 0 {
			continue
		}
		w.Write(sc.Bytes())
		w.WriteByte('\n')
		s.Events++
		s.Bytes += int64(len(sc.Bytes()) + 1)
	}
	if err := sc.Err(); err != nil {
		return Corpus{}, fmt.Errorf("sample: %w", err)
	}
	if err := w.Flush(); err != nil {
		return Corpus{}, fmt.Errorf("sample: %w", err)
	}
	return s, nil
}

// heapAfter runs load and returns its result and the live heap it added.
func heapAfter[T any](load func() (T, error)) (T, uint64, error) {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	v, err := load()
	runtime.GC()
	runtime.ReadMemStats(&after)
	var d uint64
	if after.HeapAlloc > before.HeapAlloc {
		d = after.HeapAlloc - before.HeapAlloc
	}
	return v, d, err
}
