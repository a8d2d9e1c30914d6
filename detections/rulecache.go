package detections

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// The rule cache: LoadFiles with Options.CacheDir keeps the parsed rules of
// a set of files in CacheDir/rules-<key>.bin, where key hashes this build
// of Quarry (its build information and executable) and every file's path
// and bytes. A changed rule file, a rule file added or removed, or another
// Quarry build gives another key, so a stale cache is never read. The file
// ends with the SHA-256 of its content; a cache file that does not check or
// decode is ignored and written anew. Only what depends on the rule files
// alone is cached (parsed rules and the warnings of compiling them); the
// ATT&CK facts are resolved again with the knowledge base of each load, and
// a cached rule's detection is compiled when an engine first needs it. Files
// with errors or skipped documents are not cached: they are parsed again.
//
// So that a warm load need not read and hash every rule file, a stat index
// CacheDir/rules-<hash of the build and the paths>.idx records the files'
// stat stamps (device, inode, size, modification and change time) taken
// before their content was hashed, and the cache file that content named.
// It is trusted only when every stamp is unchanged and older than the index
// by racyWindow (file times are coarse); otherwise the content decides, as
// above. Writing a file changes its change time even when its size and
// modification time are put back, and replacing it by a rename changes its
// inode.

// cacheMagic starts every cache file; bump its version whenever the
// encoding or what a parsed rule holds changes.
const cacheMagic = "QUARRY-RULES-4\n"

// maxCacheFiles is how many rule caches a cache directory keeps (the
// oldest others are removed when a new one is written).
const maxCacheFiles = 8

var buildKey = sync.OnceValue(func() []byte {
	h := sha256.New()
	h.Write([]byte(cacheMagic))
	if bi, ok := debug.ReadBuildInfo(); ok {
		fmt.Fprintf(h, "%s\x00%s\x00%s\x00%s\x00", bi.GoVersion, bi.Main.Path, bi.Main.Version, bi.Main.Sum)
		for _, s := range bi.Settings {
			fmt.Fprintf(h, "%s=%s\x00", s.Key, s.Value)
		}
	}
	// A rebuilt binary of a modified tree keeps its build information:
	// the executable's size and time tell it apart.
	if exe, err := os.Executable(); err == nil {
		if fi, err := os.Stat(exe); err == nil {
			fmt.Fprintf(h, "%s\x00%d\x00%d\x00", exe, fi.Size(), fi.ModTime().UnixNano())
		}
	}
	return h.Sum(nil)
})

// CachePath returns the cache file for the given rule files and contents.
func cachePath(dir string, paths []string, data [][]byte) string {
	h := sha256.New()
	h.Write(buildKey())
	var n [8]byte
	for i, p := range paths {
		binary.LittleEndian.PutUint64(n[:], uint64(len(p)))
		h.Write(n[:])
		h.Write([]byte(p))
		binary.LittleEndian.PutUint64(n[:], uint64(len(data[i])))
		h.Write(n[:])
		h.Write(data[i])
	}
	return filepath.Join(dir, "rules-"+hex.EncodeToString(h.Sum(nil)[:16])+".bin")
}

// loadFilesCached is LoadFiles through the cache. It reports false when
// the cache cannot be used at all (a file unreadable): LoadFiles then loads
// the plain way, which reports the problem.
//
// A warm load does not read the rule files: a stat index
// (rules-<hash of build and paths>.idx) records what stat said of every
// file when the cache was last checked against their content, and which
// cache file that content gave. When every file's stamp is unchanged and
// older than the index by racyWindow, that cache file is used; otherwise
// the files are read and hashed as above, and the index written anew.
func loadFilesCached(paths []string, opts Options) (*LoadResult, bool) {
	idx := indexPath(opts.CacheDir, paths)
	if path, ok := fastCachePath(idx, paths); ok {
		if res, ok := loadCacheFile(path, paths, nil, opts); ok {
			return res, true
		}
	}
	// The stamps are taken before the content is read: a file written
	// after its stamp was taken has another stamp the next time.
	taken := cacheNow().UnixNano()
	stamps := make([]fileStamp, len(paths))
	stamped := true
	for i, p := range paths {
		st, ok := statRuleFile(p)
		stamped = stamped && ok
		stamps[i] = st
	}
	data := make([][]byte, len(paths))
	ruleFilesRead.Add(int64(len(paths)))
	for i, p := range paths {
		b, err := readRuleFile(p)
		if err != nil {
			return nil, false
		}
		data[i] = b
	}
	path := cachePath(opts.CacheDir, paths, data)
	writeIndex := func() {
		if stamped {
			_ = writeCache(idx, encodeIndex(statIndex{taken: taken, stamps: stamps, cache: filepath.Base(path)}))
		}
	}
	if res, ok := loadCacheFile(path, paths, data, opts); ok {
		writeIndex()
		return res, true
	}
	res := &LoadResult{}
	files := make([][]parsedRule, len(paths))
	for i, p := range paths {
		r, parsed := loadBytesParsed(p, data[i], opts)
		if len(r.Errors) == 0 && len(r.Skipped) == 0 {
			if parsed == nil {
				parsed = []parsedRule{}
			}
			files[i] = parsed
		}
		res.add(r)
	}
	// A cache that cannot be written only costs the next load its speed.
	if writeCache(path, encodeCache(paths, files)) == nil {
		writeIndex()
	}
	return res, true
}

// loadCacheFile loads the rules of paths from the cache file path; data
// holds the files' content, or is nil when it was not read (the files the
// cache does not hold are then read here). False when the cache file is
// missing, corrupt or not for paths, or a file cannot be read.
func loadCacheFile(path string, paths []string, data [][]byte, opts Options) (*LoadResult, bool) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, false
	}
	files, err := decodeCache(b, paths)
	if err != nil {
		return nil, false
	}
	res := &LoadResult{}
	for i, f := range files {
		if f == nil {
			var d []byte
			if data != nil {
				d = data[i]
			} else {
				ruleFilesRead.Add(1)
				if d, err = readRuleFile(paths[i]); err != nil {
					return nil, false
				}
			}
			res.add(loadBytes(paths[i], d, opts))
			continue
		}
		res.Files++
		for _, pr := range f {
			res.addRule(paths[i], finishRule(pr.sr, nil, pr.compWarn, opts))
		}
	}
	return res, true
}

// indexMagic starts every stat index; bump it when its encoding changes.
const indexMagic = "QUARRY-RULEIDX-1\n"

// racyWindow: file times are coarse, so a file written shortly before its
// stamp was taken could be written again without its stamp changing. Only
// stamps older than the index by this much are trusted.
const racyWindow = 2 * time.Second

// cacheNow is the clock of the stat index (tests move it forward, so that
// the stamps of files they just wrote are trusted).
var cacheNow = time.Now

// ruleFilesRead counts the rule files loadFilesCached reads (for tests: a
// warm load through the stat index reads none).
var ruleFilesRead atomic.Int64

// statIndex is the content of a stat index.
type statIndex struct {
	taken  int64       // when the stamps were taken, ns since the epoch
	stamps []fileStamp // one per path, in order
	cache  string      // the cache file's name in the same directory
}

// indexPath returns the stat index of the given rule files (their paths and
// this build of Quarry).
func indexPath(dir string, paths []string) string {
	h := sha256.New()
	h.Write(buildKey())
	h.Write([]byte(indexMagic))
	var n [8]byte
	for _, p := range paths {
		binary.LittleEndian.PutUint64(n[:], uint64(len(p)))
		h.Write(n[:])
		h.Write([]byte(p))
	}
	return filepath.Join(dir, "rules-"+hex.EncodeToString(h.Sum(nil)[:16])+".idx")
}

// fastCachePath returns the cache file the index at idx names when every
// file's stamp is as recorded there and old enough to be trusted.
func fastCachePath(idx string, paths []string) (string, bool) {
	b, err := os.ReadFile(idx)
	if err != nil {
		return "", false
	}
	ix, err := decodeIndex(b, len(paths))
	if err != nil {
		return "", false
	}
	limit := ix.taken - int64(racyWindow)
	for i, p := range paths {
		st, ok := statRuleFile(p)
		if !ok || st != ix.stamps[i] || st.mtime >= limit || st.ctime >= limit {
			return "", false
		}
	}
	return filepath.Join(filepath.Dir(idx), ix.cache), true
}

// encodeIndex encodes a stat index, with a SHA-256 trailer.
func encodeIndex(ix statIndex) []byte {
	e := &ruleEncoder{b: []byte(indexMagic)}
	e.str(ix.cache)
	e.uint(uint64(ix.taken))
	e.uint(uint64(len(ix.stamps)))
	for _, st := range ix.stamps {
		e.uint(st.dev)
		e.uint(st.ino)
		e.uint(uint64(st.size))
		e.uint(uint64(st.mtime))
		e.uint(uint64(st.ctime))
	}
	sum := sha256.Sum256(e.b)
	return append(e.b, sum[:]...)
}

// decodeIndex checks and decodes a stat index of n files.
func decodeIndex(b []byte, n int) (statIndex, error) {
	if len(b) < len(indexMagic)+sha256.Size || !bytes.HasPrefix(b, []byte(indexMagic)) {
		return statIndex{}, errCorrupt
	}
	body, sum := b[:len(b)-sha256.Size], b[len(b)-sha256.Size:]
	if want := sha256.Sum256(body); !bytes.Equal(want[:], sum) {
		return statIndex{}, errCorrupt
	}
	d := &ruleDecoder{s: string(body), off: len(indexMagic)}
	ix := statIndex{cache: d.str(), taken: int64(d.uint())}
	if !strings.HasPrefix(ix.cache, "rules-") || !strings.HasSuffix(ix.cache, ".bin") || filepath.Base(ix.cache) != ix.cache {
		return statIndex{}, errCorrupt
	}
	if d.uint() != uint64(n) || d.err != nil {
		return statIndex{}, errCorrupt
	}
	ix.stamps = make([]fileStamp, n)
	for i := range ix.stamps {
		ix.stamps[i] = fileStamp{dev: d.uint(), ino: d.uint(), size: int64(d.uint()), mtime: int64(d.uint()), ctime: int64(d.uint())}
	}
	if d.err != nil || d.off != len(d.s) {
		return statIndex{}, errCorrupt
	}
	return ix, nil
}

// encodeCache encodes the parsed rules of each file; nil for a file not
// cached.
func encodeCache(paths []string, files [][]parsedRule) []byte {
	e := &ruleEncoder{b: []byte(cacheMagic)}
	e.uint(uint64(len(files)))
	for i, f := range files {
		e.str(paths[i])
		e.bool(f != nil)
		if f == nil {
			continue
		}
		e.uint(uint64(len(f)))
		for _, pr := range f {
			e.rule(pr.sr)
			e.strs(pr.compWarn)
		}
	}
	sum := sha256.Sum256(e.b)
	return append(e.b, sum[:]...)
}

// decodeCache checks and decodes a cache file written for paths.
func decodeCache(b []byte, paths []string) ([][]parsedRule, error) {
	if len(b) < len(cacheMagic)+sha256.Size || !bytes.HasPrefix(b, []byte(cacheMagic)) {
		return nil, errCorrupt
	}
	body, sum := b[:len(b)-sha256.Size], b[len(b)-sha256.Size:]
	if want := sha256.Sum256(body); !bytes.Equal(want[:], sum) {
		return nil, errCorrupt
	}
	return decodeBody(body, paths)
}

// decodeBody decodes a cache file without its checksum.
func decodeBody(body []byte, paths []string) ([][]parsedRule, error) {
	if !bytes.HasPrefix(body, []byte(cacheMagic)) {
		return nil, errCorrupt
	}
	d := &ruleDecoder{s: string(body), off: len(cacheMagic)}
	if d.uint() != uint64(len(paths)) {
		return nil, errCorrupt
	}
	files := make([][]parsedRule, len(paths))
	for i := range files {
		if d.str() != paths[i] {
			return nil, errCorrupt
		}
		if !d.bool() {
			continue
		}
		n := d.uint()
		if n > uint64(len(d.s)-d.off) {
			return nil, errCorrupt
		}
		f := make([]parsedRule, 0, n)
		for j := uint64(0); j < n && d.err == nil; j++ {
			sr := d.rule()
			f = append(f, parsedRule{sr: sr, compWarn: d.strs()})
		}
		files[i] = f
		if d.err != nil {
			return nil, d.err
		}
	}
	if d.err != nil || d.off != len(d.s) {
		return nil, errCorrupt
	}
	return files, nil
}

// writeCache writes a cache file atomically and removes the oldest caches
// beyond maxCacheFiles.
func writeCache(path string, b []byte) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, ".rules-*.tmp")
	if err != nil {
		return err
	}
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return err
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	pruneCache(dir, path, filepath.Ext(path))
	return nil
}

// pruneCache removes the oldest rule caches (or stat indexes: files ending
// in ext) of dir beyond maxCacheFiles, never keep.
func pruneCache(dir, keep, ext string) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	type cf struct {
		path string
		mod  int64
	}
	var cs []cf
	for _, e := range ents {
		if !strings.HasPrefix(e.Name(), "rules-") || !strings.HasSuffix(e.Name(), ext) {
			continue
		}
		if fi, err := e.Info(); err == nil {
			cs = append(cs, cf{filepath.Join(dir, e.Name()), fi.ModTime().UnixNano()})
		}
	}
	if len(cs) <= maxCacheFiles {
		return
	}
	sort.Slice(cs, func(i, j int) bool { return cs[i].mod < cs[j].mod })
	for _, c := range cs[:len(cs)-maxCacheFiles] {
		if c.path != keep {
			os.Remove(c.path)
		}
	}
}
