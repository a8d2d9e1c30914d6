package activity_test

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/quarry-sec/quarry/extension/sqlengine"
	"github.com/quarry-sec/quarry/tables"
	"github.com/quarry-sec/quarry/tables/activity"
	"github.com/quarry-sec/quarry/telemetry"
)

// benchEvents is a 100k-event store's mix, like the recordings': image
// loads, process accesses, registry sets, handle closes and connections
// (10% of the events).
func benchEvents(n int) []telemetry.Event {
	t0 := time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC)
	evs := make([]telemetry.Event, 0, n)
	for i := 0; i < n; i++ {
		e := telemetry.NewEvent(telemetry.KindOther, telemetry.SourceSysmon)
		e.Time = t0.Add(time.Duration(i) * time.Second)
		e.Host = "wks" + strconv.Itoa(i%4)
		e.Channel = "Microsoft-Windows-Sysmon/Operational"
		e.PID = int64(1000 + i%50)
		e.Path = `C:\Windows\System32\svchost.exe`
		e.Fields.Set("Image", e.Path)
		e.Fields.Set("ProcessId", strconv.FormatInt(e.PID, 10))
		e.Fields.Set("UtcTime", e.Time.Format("2006-01-02 15:04:05.000"))
		switch i % 10 {
		case 0, 1, 2:
			e.EventID, e.Category = 7, "image_load"
			e.Fields.Set("ImageLoaded", fmt.Sprintf(`C:\Windows\System32\lib%d.dll`, i%300))
			e.Fields.Set("Hashes", "SHA1=AA,MD5=BB,SHA256=CC")
			e.Fields.Set("Signed", "true")
		case 3, 4, 5:
			e.EventID, e.Category = 10, "process_access"
			e.Fields.Set("SourceImage", e.Path)
			e.Fields.Set("TargetImage", `C:\Windows\System32\lsass.exe`)
			e.Fields.Set("GrantedAccess", "0x1010")
			e.Fields.Set("CallTrace", `C:\Windows\SYSTEM32\ntdll.dll+9d234|C:\Windows\System32\KERNELBASE.dll+2c13e`)
		case 6, 7:
			e.EventID, e.Category = 13, "registry_set"
			e.Fields.Set("EventType", "SetValue")
			e.Fields.Set("TargetObject", fmt.Sprintf(`HKLM\SOFTWARE\Vendor\Key%d\Value`, i%100))
			e.Fields.Set("Details", "DWORD (0x00000001)")
		case 8:
			e.Source, e.Channel, e.EventID = telemetry.SourceWindows, "Security", 4658
			e.PID, e.Path = telemetry.Unknown, ""
			e.Fields.Set("HandleId", "0x160")
		case 9:
			e.EventID, e.Category = 3, "network_connection"
			e.Fields.Set("Protocol", "tcp")
			e.Fields.Set("Initiated", "true")
			e.Fields.Set("SourceIp", "10.0.0.5")
			e.Fields.Set("SourcePort", strconv.Itoa(40000+i%20000))
			e.Fields.Set("DestinationIp", "203.0.113.7")
			e.Fields.Set("DestinationPort", "443")
		}
		evs = append(evs, e)
	}
	return evs
}

// BenchmarkTableScan100k reads tables of a 100k-event store through the
// embedded engine: a whole table (fields decoded), a count (no fields
// decoded), and a pushed-down pid and time window.
func BenchmarkTableScan100k(b *testing.B) {
	st := newStore(b)
	evs := benchEvents(100_000)
	for i := 0; i < len(evs); i += 5000 {
		if _, err := st.Append(context.Background(), evs[i:min(i+5000, len(evs))]); err != nil {
			b.Fatal(err)
		}
	}
	reg := tables.NewRegistry()
	if err := reg.Register(activity.Tables(st)...); err != nil {
		b.Fatal(err)
	}
	e, err := sqlengine.Open(reg)
	if err != nil {
		b.Fatal(err)
	}
	defer e.Close()
	t0 := time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC).Unix()
	for _, c := range []struct{ name, query string }{
		{"socket_events_all_10k", "SELECT count(*), max(remote_port) FROM socket_events"},
		{"registry_events_all_20k", "SELECT count(*), max(value_name) FROM registry_events"},
		{"image_load_count_30k", "SELECT count(*) FROM image_load_events"},
		{"process_access_pid_600", "SELECT count(*), max(target_path) FROM process_access_events WHERE pid = 1003"},
		{"socket_events_hour_360", fmt.Sprintf("SELECT count(*), max(remote_port) FROM socket_events WHERE time >= %d AND time < %d", t0+3600, t0+7200)},
		{"events_all_100k", "SELECT count(*), max(length(fields)) FROM events"},
	} {
		b.Run(c.name, func(b *testing.B) {
			var rows int64
			for i := 0; i < b.N; i++ {
				rs, err := e.Query(context.Background(), c.query)
				if err != nil {
					b.Fatal(err)
				}
				rs.Next()
				var x any
				if err := rs.Scan(&rows, &x); err != nil {
					if err := rs.Scan(&rows); err != nil {
						b.Fatal(err)
					}
				}
				rs.Close()
			}
			b.ReportMetric(float64(rows)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
		})
	}
}
