// Command gengrams writes detections/commongrams.txt: typical process
// creation text, from which the literal prefilter learns which 4-byte grams
// are common (and so poor anchors). It reads the recorded lab telemetry of
// ../shared/datasets (OTRF Security-Datasets, MIT): their Sysmon EventID 1 and
// Security 4688 records, background activity included. The benchmark corpus
// of bench/ is not used, so the engine is not tuned on what measures it.
//
//	go generate ./detections/
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
)

// fields are the process creation fields whose values the text samples.
var fields = []string{"Image", "CommandLine", "ParentImage", "ParentCommandLine", "User", "CurrentDirectory",
	"IntegrityLevel", "Company", "Description", "Product", "NewProcessName", "ParentProcessName", "Hashes"}

// hexRun is a run of hex digits long enough to be a hash or an id: random
// text that would only add rare grams.
var hexRun = regexp.MustCompile(`[0-9a-f]{8,}`)

func main() {
	dir := flag.String("datasets", "../../shared/datasets", "folder of the recordings")
	out := flag.String("out", "commongrams.txt", "file to write")
	size := flag.Int("bytes", 4096, "size of the text")
	flag.Parse()
	if err := run(*dir, *out, *size); err != nil {
		fmt.Fprintln(os.Stderr, "gengrams:", err)
		os.Exit(1)
	}
}

func run(dir, out string, size int) error {
	files, err := filepath.Glob(filepath.Join(dir, "*", "*.json"))
	if err != nil || len(files) == 0 {
		return fmt.Errorf("no recordings under %s (%v)", dir, err)
	}
	count := map[string]int{}
	for _, name := range files {
		if err := sample(name, count); err != nil {
			return err
		}
	}
	values := make([]string, 0, len(count))
	for v := range count {
		values = append(values, v)
	}
	sort.Slice(values, func(i, j int) bool {
		if count[values[i]] != count[values[j]] {
			return count[values[i]] > count[values[j]]
		}
		return values[i] < values[j]
	})
	var b strings.Builder
	for _, v := range values {
		if b.Len()+len(v)+1 > size {
			continue
		}
		b.WriteString(v)
		b.WriteByte(' ')
	}
	return os.WriteFile(out, []byte(strings.TrimSpace(b.String())+"\n"), 0o644)
}

// sample adds the lower-cased, hash-stripped field values of the process
// creation records of one JSON-lines file to count.
func sample(name string, count map[string]int) error {
	f, err := os.Open(name)
	if err != nil {
		return err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		var rec map[string]any
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			continue // a damaged record (the recordings have a few): not text to learn from
		}
		id, _ := rec["EventID"].(float64)
		if id != 1 && id != 4688 {
			continue
		}
		for _, k := range fields {
			s, _ := rec[k].(string)
			s = strings.ToLower(strings.TrimSpace(s))
			s = hexRun.ReplaceAllString(s, "")
			if len(s) >= 4 && len(s) <= 300 {
				count[s]++
			}
		}
	}
	return sc.Err()
}
