package bench

import (
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/quarry-sec/quarry/detections/intel"
	"github.com/quarry-sec/quarry/internal/benchload"
	"github.com/quarry-sec/quarry/telemetry"
)

// benchSet is a generated set of 1,000,000 indicators: 400k SHA-256, 100k
// SHA-1, 100k MD5, 200k IPv4, 50k networks (/16–/30), 100k domains, 50k
// URLs.
var benchSet struct {
	once    sync.Once
	m       *intel.Matcher
	build   time.Duration
	heap    uint64
	samples []intel.Indicator // a few of each type, for events that hit
}

func randHex(r *rand.Rand, n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return hex.EncodeToString(b)
}

func randIPv4(r *rand.Rand) netip.Addr {
	v := r.Uint32()
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

func randDomain(r *rand.Rand) string {
	tlds := []string{"com", "net", "org", "ru", "info", "xyz", "top"}
	return fmt.Sprintf("%s-%d.%s", randHex(r, 4), r.IntN(1000), tlds[r.IntN(len(tlds))])
}

func buildBenchSet() {
	r := rand.New(rand.NewPCG(1, 2))
	var ins []intel.Indicator
	add := func(t intel.Type, v string, n int) {
		for i := 0; i < n; i++ {
			ins = append(ins, intel.Indicator{Type: t, Value: v, Source: []string{"vendor-a", "vendor-b", "misp"}[len(ins)%3],
				Confidence: 50 + len(ins)%50})
		}
	}
	for i := 0; i < 400_000; i++ {
		add(intel.SHA256, randHex(r, 32), 1)
	}
	for i := 0; i < 100_000; i++ {
		add(intel.SHA1, randHex(r, 20), 1)
		add(intel.MD5, randHex(r, 16), 1)
	}
	for i := 0; i < 200_000; i++ {
		add(intel.IPv4, randIPv4(r).String(), 1)
	}
	for i := 0; i < 50_000; i++ {
		p, _ := randIPv4(r).Prefix(16 + r.IntN(15))
		add(intel.CIDR, p.String(), 1)
	}
	for i := 0; i < 100_000; i++ {
		add(intel.Domain, randDomain(r), 1)
	}
	for i := 0; i < 50_000; i++ {
		add(intel.URL, "http://"+randDomain(r)+"/"+randHex(r, 6)+".php", 1)
	}
	for i := range ins {
		if ins[i].Type == intel.Domain && i%10 == 0 {
			ins[i].Groups = []string{"G0016"}
			ins[i].Techniques = []string{"T1071.001"}
		}
	}
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	start := time.Now()
	counts := map[intel.Type]int{}
	for _, in := range ins {
		counts[in.Type]++
	}
	b := intel.NewBuilderSized(counts)
	for _, in := range ins {
		b.Add(in)
	}
	m := b.Build()
	benchSet.build = time.Since(start)
	runtime.GC()
	runtime.ReadMemStats(&after)
	benchSet.heap = after.HeapAlloc - before.HeapAlloc
	runtime.KeepAlive(ins)
	// Keep a few of each type to plant in events.
	for _, i := range []int{0, 1, 400_000, 400_001, 600_000, 600_001, 760_000, 800_001, 900_002, 950_003} {
		benchSet.samples = append(benchSet.samples, ins[i])
	}
	benchSet.m = m
}

// benchEvents returns a realistic mix: process starts with hashes and
// command lines, network connections, DNS queries, file creations; one in
// 100 holds an indicator of the set.
func benchEvents(n int) []telemetry.Event {
	r := rand.New(rand.NewPCG(3, 4))
	out := make([]telemetry.Event, 0, n)
	for i := 0; i < n; i++ {
		var e telemetry.Event
		hit := i%100 == 0
		sample := benchSet.samples[(i/100)%len(benchSet.samples)]
		switch i % 4 {
		case 0:
			e = telemetry.NewEvent(telemetry.KindExec, telemetry.SourceSysmon)
			e.Category = "process_creation"
			e.Path = `C:\Program Files\Google\Chrome\Application\chrome.exe`
			e.Cmdline = fmt.Sprintf(`"C:\Program Files\Google\Chrome\Application\chrome.exe" --type=renderer --field-trial-handle=%d --lang=en-US --renderer-client-id=%d --mojo-platform-channel-handle=%d /prefetch:1 https://www.example.com/search?q=%s`,
				r.IntN(9999), r.IntN(99), r.IntN(9999), randHex(r, 4))
			e.Hashes = "SHA1=" + randHex(r, 20) + ",MD5=" + randHex(r, 16) + ",SHA256=" + randHex(r, 32) + ",IMPHASH=" + randHex(r, 16)
			if hit {
				switch sample.Type {
				case intel.SHA256, intel.SHA1, intel.MD5:
					e.Hashes = string(sample.Type) + "=" + sample.Value
				default:
					e.Cmdline += " " + sample.Value
				}
			}
		case 1:
			e = telemetry.NewEvent(telemetry.KindOther, telemetry.SourceSysmon)
			e.Category, e.EventID = "network_connection", 3
			e.Path = `C:\Windows\System32\svchost.exe`
			dst := randIPv4(r).String()
			if hit && sample.Type == intel.IPv4 {
				dst = sample.Value
			}
			e.Fields = telemetry.FieldsFromMap(map[string]string{
				"Image": e.Path, "Protocol": "tcp", "Initiated": "true", "SourceIp": "10.0.3.15", "SourceHostname": "ws1.corp.example",
				"SourcePort": "49733", "DestinationIp": dst, "DestinationHostname": randDomain(r), "DestinationPort": "443",
			})
		case 2:
			e = telemetry.NewEvent(telemetry.KindOther, telemetry.SourceSysmon)
			e.Category, e.EventID = "dns_query", 22
			q := "www." + randDomain(r)
			if hit && sample.Type == intel.Domain {
				q = "cdn." + sample.Value
			}
			e.Fields = telemetry.FieldsFromMap(map[string]string{
				"QueryName": q, "QueryStatus": "0", "QueryResults": "type:  5 edge." + randDomain(r) + ";::ffff:" + randIPv4(r).String() + ";",
				"Image": `C:\Program Files\Mozilla Firefox\firefox.exe`,
			})
		case 3:
			e = telemetry.NewEvent(telemetry.KindOther, telemetry.SourceSysmon)
			e.Category, e.EventID = "file_event", 11
			e.Fields = telemetry.FieldsFromMap(map[string]string{
				"Image": `C:\Windows\explorer.exe`, "TargetFilename": `C:\Users\alice\Downloads\report-` + randHex(r, 4) + ".pdf",
				"Hashes": "SHA256=" + randHex(r, 32),
			})
		}
		out = append(out, e)
	}
	return out
}

// BenchmarkMatch1M matches realistic events against 1,000,000 indicators
// on one goroutine. It reports events/s, the set's heap (MB, MemStats after
// build), its build time and the hits per event.
func BenchmarkMatch1M(b *testing.B) {
	benchSet.once.Do(buildBenchSet)
	m := benchSet.m
	if m.Len() != 1_000_000 {
		b.Fatalf("set holds %d indicators", m.Len())
	}
	events := benchEvents(4096)
	var ms []intel.Match
	hits := 0
	b.ReportAllocs()
	cpu0 := benchload.CPUTime()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		ms = m.Match(&events[i%len(events)], ms[:0])
		hits += len(ms)
	}
	b.StopTimer()
	cpu := benchload.CPUTime() - cpu0
	if hits == 0 && b.N > 400 {
		b.Fatal("no planted indicator matched")
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
	// The machine is shared: CPU time says what the matcher costs when
	// wall time also counts other processes' turns.
	b.ReportMetric(float64(b.N)/cpu.Seconds(), "events/cpu-s")
	b.ReportMetric(float64(benchSet.heap)/(1<<20), "set-MB")
	b.ReportMetric(benchSet.build.Seconds(), "build-s")
	b.ReportMetric(float64(hits)/float64(b.N), "hits/event")
}
