//go:build linux

package detections

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// trustStamps moves the stat index's clock an hour ahead for the test, so
// that the stamps of the files the test just wrote are old enough.
func trustStamps(t *testing.T) {
	t.Helper()
	cacheNow = func() time.Time { return time.Now().Add(time.Hour) }
	t.Cleanup(func() { cacheNow = time.Now })
}

// TestRuleCacheStatIndex: a warm load whose files are unchanged reads none
// of them and gives the same rules; a file rewritten in place with content
// of the same size and its old modification time restored is still seen
// (its change time moved), and so is one replaced by a rename.
func TestRuleCacheStatIndex(t *testing.T) {
	trustStamps(t)
	_, paths := cacheTestRules(t)
	cache := t.TempDir()
	plain, err := LoadFiles(paths, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := LoadFiles(paths, Options{CacheDir: cache}); err != nil {
		t.Fatal(err)
	}
	if idx, _ := filepath.Glob(filepath.Join(cache, "rules-*.idx")); len(idx) != 1 {
		t.Fatalf("stat indexes after a cold load: %v", idx)
	}
	before := ruleFilesRead.Load()
	warm, err := LoadFiles(paths, Options{CacheDir: cache})
	if err != nil {
		t.Fatal(err)
	}
	sameLoad(t, "warm through the index", plain, warm)
	if n := ruleFilesRead.Load() - before; n != 0 {
		t.Fatalf("warm load through the stat index read %d rule files, want 0", n)
	}

	// Same size, same modification time, other content.
	target := ""
	for _, p := range paths {
		if strings.Contains(p, "proc_creation") {
			target = p
			break
		}
	}
	fi, err := os.Stat(target)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(target)
	if err != nil {
		t.Fatal(err)
	}
	changed := strings.Replace(strings.TrimSuffix(string(b), "\n"), "title: ", "title: X", 1) // same size: the last newline goes
	if len(changed) != len(b) {
		t.Fatal("test edit changed the size")
	}
	if err := os.WriteFile(target, []byte(changed), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(target, fi.ModTime(), fi.ModTime()); err != nil {
		t.Fatal(err)
	}
	checkTitle := func(what, prefix string) {
		t.Helper()
		got, err := LoadFiles(paths, Options{CacheDir: cache})
		if err != nil {
			t.Fatal(err)
		}
		plain, err := LoadFiles(paths, Options{})
		if err != nil {
			t.Fatal(err)
		}
		sameLoad(t, what, plain, got)
		for _, r := range got.Rules {
			if r.Path == target && strings.HasPrefix(r.Title, prefix) {
				return
			}
		}
		t.Fatalf("%s: the new title of %s was not loaded", what, target)
	}
	checkTitle("rewritten in place, size and mtime kept", "X")

	// Replaced by a rename (another inode).
	tmp := target + ".new"
	if err := os.WriteFile(tmp, []byte(strings.Replace(string(b), "title: ", "title: Y", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, target); err != nil {
		t.Fatal(err)
	}
	checkTitle("replaced by a rename", "Y")
}

// TestRuleCacheStatIndexRacy: stamps of files written just before the
// index was taken are not trusted (file times are coarse): the files are
// read and checked.
func TestRuleCacheStatIndexRacy(t *testing.T) {
	_, paths := cacheTestRules(t)
	cache := t.TempDir()
	if _, err := LoadFiles(paths, Options{CacheDir: cache}); err != nil {
		t.Fatal(err)
	}
	before := ruleFilesRead.Load()
	if _, err := LoadFiles(paths, Options{CacheDir: cache}); err != nil {
		t.Fatal(err)
	}
	if n := ruleFilesRead.Load() - before; n != int64(len(paths)) {
		t.Fatalf("warm load of files written just now read %d files, want all %d", n, len(paths))
	}
}

// TestDecodeIndexRejectsDamage: a stat index that is cut, altered or for
// another number of files is not used.
func TestDecodeIndexRejectsDamage(t *testing.T) {
	ix := statIndex{taken: 1e18, stamps: []fileStamp{{1, 2, 3, 4, 5}, {6, 7, 8, 9, 10}}, cache: "rules-00.bin"}
	b := encodeIndex(ix)
	got, err := decodeIndex(b, 2)
	if err != nil || got.cache != ix.cache || got.taken != ix.taken || got.stamps[1] != ix.stamps[1] {
		t.Fatalf("round trip: %+v, %v", got, err)
	}
	if _, err := decodeIndex(b, 3); err == nil {
		t.Fatal("index of 2 files accepted for 3")
	}
	if _, err := decodeIndex(b[:len(b)-1], 2); err == nil {
		t.Fatal("cut index accepted")
	}
	bad := append([]byte(nil), b...)
	bad[len(indexMagic)+3] ^= 1
	if _, err := decodeIndex(bad, 2); err == nil {
		t.Fatal("altered index accepted")
	}
	if _, err := decodeIndex(encodeIndex(statIndex{cache: "../x.bin"}), 0); err == nil {
		t.Fatal("index naming a file outside the cache directory accepted")
	}
}

// FuzzDecodeIndex: any bytes decode or fail, never panic.
func FuzzDecodeIndex(f *testing.F) {
	f.Add(encodeIndex(statIndex{taken: 7, stamps: []fileStamp{{1, 2, 3, 4, 5}}, cache: "rules-ab.bin"}), 1)
	f.Fuzz(func(t *testing.T, b []byte, n int) {
		if n < 0 || n > 1<<16 {
			return
		}
		decodeIndex(b, n)
	})
}
