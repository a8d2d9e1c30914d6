package osqueryext

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/quarry-sec/quarry/extension/osqueryext/osquerytest"
	"github.com/quarry-sec/quarry/tables"
)

// numbersContext is what osqueryd sends for SELECT * FROM quarry_test_numbers.
func numbersContext(tbl *tables.Table) string {
	var cons, used []string
	for _, c := range tbl.Columns {
		cons = append(cons, fmt.Sprintf(`{"name":%q,"list":[],"affinity":%q}`, c.Name, c.Type))
		used = append(used, fmt.Sprintf("%q", c.Name))
	}
	return `{"constraints":[` + strings.Join(cons, ",") + `],"colsUsed":[` + strings.Join(used, ",") +
		fmt.Sprintf(`],"colsUsedBitset":%d}`, 1<<len(tbl.Columns)-1)
}

// BenchmarkGenerate is a fake osqueryd calling generate over the real unix
// socket for 10k and 100k rows of 8 columns (about 130 bytes a row), with
// the buffered transport Quarry uses and with osquery-go's unbuffered
// default for comparison.
func BenchmarkGenerate(b *testing.B) {
	for _, transport := range []string{"buffered", "unbuffered"} {
		for _, n := range []int{10_000, 100_000} {
			b.Run(fmt.Sprintf("%s/%dk", transport, n/1000), func(b *testing.B) {
				reg := tables.NewRegistry()
				if err := reg.Register(numbersTable(n)); err != nil {
					b.Fatal(err)
				}
				h := startExtension(b, reg, Config{Unbuffered: transport == "unbuffered"})
				tbl, _ := reg.Table("quarry_test_numbers")
				q := numbersContext(tbl)
				ctx := context.Background()
				b.ResetTimer()
				for b.Loop() {
					rows, err := h.client.Generate(ctx, "quarry_test_numbers", q)
					if err != nil {
						b.Fatal(err)
					}
					if len(rows) != n || rows[n-1]["pid"] != fmt.Sprint(1000+n-1) {
						b.Fatalf("got %d rows", len(rows))
					}
				}
				b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
			})
		}
	}
}

// BenchmarkStartToRegistered is the extension's start, in process, until
// osqueryd has accepted it: dial the manager socket, register the real
// catalog's tables. (The quarry-extension binary adds process start, the
// ATT&CK load and opening the event store; see cmd/quarry-extension.)
func BenchmarkStartToRegistered(b *testing.B) {
	reg := testRegistry(b, &recorder{})
	fake, err := osquerytest.Start()
	if err != nil {
		b.Fatal(err)
	}
	defer fake.Close()
	b.ResetTimer()
	for b.Loop() {
		registered := make(chan struct{})
		ext, err := New(reg, Config{Socket: fake.Socket, OnRegistered: func(int64) { close(registered) }})
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- ext.Run(ctx) }()
		select {
		case <-registered:
		case err := <-done:
			b.Fatal(err)
		case <-time.After(waitLong):
			b.Fatal("not registered")
		}
		b.StopTimer()
		cancel()
		if err := <-done; err != nil {
			b.Fatal(err)
		}
		if _, err := fake.WaitRegistered(context.Background()); err != nil {
			b.Fatal(err)
		}
		if _, err := fake.WaitDeregistered(context.Background()); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
}

// BenchmarkCollect is the extension's own share of a generate, without the
// socket: the table's rows collected into osquery's text maps.
func BenchmarkCollect(b *testing.B) {
	reg := tables.NewRegistry()
	if err := reg.Register(numbersTable(100_000)); err != nil {
		b.Fatal(err)
	}
	tbl, _ := reg.Table("quarry_test_numbers")
	q, err := ParseContext(tbl, numbersContext(tbl))
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		rows, err := Collect(context.Background(), tbl, q, 0)
		if err != nil || len(rows) != 100_000 {
			b.Fatal(len(rows), err)
		}
	}
}
