package tables

import (
	"bytes"
	"context"
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

func counter(n int) GenerateFunc {
	return func(ctx context.Context, q QueryContext, emit EmitFunc) error {
		for i := 0; i < n; i++ {
			if !emit(Row{int64(i)}) {
				return nil
			}
		}
		return nil
	}
}

func TestRegistry(t *testing.T) {
	r := NewRegistry()
	a := Table{Name: "alpha_events", Columns: []Column{{Name: "x", Type: Integer}}, Generate: counter(1)}
	b := Table{Name: "alpha_rules", Columns: []Column{{Name: "x", Type: Integer}}, Generate: counter(1)}
	if err := r.Register(a, b); err != nil {
		t.Fatal(err)
	}
	if err := r.Register(a); err == nil {
		t.Fatal("registering a name twice should fail")
	}
	bad := []Table{
		{Name: "", Columns: a.Columns, Generate: counter(1)},
		{Name: "nocols", Generate: counter(1)},
		{Name: "nogen", Columns: a.Columns},
		{Name: "dup", Columns: []Column{{Name: "x"}, {Name: "x"}}, Generate: counter(1)},
		{Name: "badtype", Columns: []Column{{Name: "x", Type: ColumnType(9)}}, Generate: counter(1)},
	}
	for _, tb := range bad {
		if err := r.Register(tb); err == nil {
			t.Errorf("table %q should be refused", tb.Name)
		}
	}
	if got := r.Names(); len(got) != 2 || got[0] != "alpha_events" {
		t.Fatalf("names %v", got)
	}
	if got := r.Closest("alpha_event", 2); len(got) == 0 || got[0] != "alpha_events" {
		t.Fatalf("closest to alpha_event: %v", got)
	}
	if got := r.Closest("zzzzzzzz", 2); len(got) != 0 {
		t.Fatalf("nothing is close to zzzzzzzz, got %v", got)
	}
}

func TestWrapperRecoversPanicAndLogs(t *testing.T) {
	var logs bytes.Buffer
	tb := Wrap(Table{Name: "boom", Columns: []Column{{Name: "x"}}, Generate: func(ctx context.Context, q QueryContext, emit EmitFunc) error {
		panic("bad row")
	}}, WithLogger(zerolog.New(&logs)))
	err := tb.Generate(context.Background(), QueryContext{}, func(Row) bool { return true })
	if err == nil || !strings.Contains(err.Error(), "panic in generate: bad row") {
		t.Fatalf("err = %v", err)
	}
	if !strings.Contains(logs.String(), `"table":"boom"`) || !strings.Contains(logs.String(), "panicked") {
		t.Fatalf("no log line: %s", logs.String())
	}
}

func TestWrapperTimeout(t *testing.T) {
	var logs bytes.Buffer
	tb := Wrap(Table{Name: "slow", Columns: []Column{{Name: "x"}}, Generate: func(ctx context.Context, q QueryContext, emit EmitFunc) error {
		// A table that keeps emitting and never looks at ctx is still stopped.
		for i := 0; ; i++ {
			if !emit(Row{int64(i)}) {
				return nil
			}
			if i%1000 == 0 {
				time.Sleep(time.Millisecond)
			}
		}
	}}, WithTimeout(30*time.Millisecond), WithLogger(zerolog.New(&logs)))
	err := tb.Generate(context.Background(), QueryContext{}, func(Row) bool { return true })
	if !errors.Is(err, ErrTimeout) {
		t.Fatalf("want ErrTimeout, got %v", err)
	}
	if !strings.Contains(logs.String(), "table generate failed") {
		t.Fatalf("no failure log line: %s", logs.String())
	}
}

func TestWrapperStopsWhenConsumerStops(t *testing.T) {
	tb := Wrap(Table{Name: "n", Columns: []Column{{Name: "x"}}, Generate: counter(100)})
	got := 0
	err := tb.Generate(context.Background(), QueryContext{}, func(Row) bool { got++; return got < 5 })
	if err != nil || got != 5 {
		t.Fatalf("err %v, rows %d", err, got)
	}
}

func TestIntRange(t *testing.T) {
	c := func(op Operator, v any) Constraint { return Constraint{Column: "t", Op: op, Value: v} }
	cases := []struct {
		cs     []Constraint
		lo, hi int64
		ok     bool
	}{
		{nil, math.MinInt64, math.MaxInt64, false},
		{[]Constraint{c(OpGT, int64(10)), c(OpLE, int64(20))}, 11, 20, true},
		{[]Constraint{c(OpGE, 10.5), c(OpLT, 20.5)}, 11, 20, true},
		{[]Constraint{c(OpEQ, "15")}, 15, 15, true},
		{[]Constraint{c(OpLT, int64(5)), c(OpGT, int64(7))}, 8, 4, true},
		{[]Constraint{c(OpLIKE, "x")}, math.MinInt64, math.MaxInt64, false},
	}
	for i, tc := range cases {
		lo, hi, ok := QueryContext{Constraints: tc.cs}.IntRange("t")
		if lo != tc.lo || hi != tc.hi || ok != tc.ok {
			t.Errorf("case %d: got %d..%d %v, want %d..%d %v", i, lo, hi, ok, tc.lo, tc.hi, tc.ok)
		}
	}
}

func TestEquals(t *testing.T) {
	q := QueryContext{Constraints: []Constraint{
		{Column: "a", Op: OpIN, Values: []any{"x", int64(3), nil}},
		{Column: "b", Op: OpGT, Value: int64(1)},
	}}
	got, ok := q.EqualStrings("a")
	if !ok || strings.Join(got, ",") != "x,3" {
		t.Fatalf("EqualStrings(a) = %v %v", got, ok)
	}
	if _, ok := q.Equals("b"); ok {
		t.Fatal("a range is not an equality")
	}
}

func TestTimeRange(t *testing.T) {
	c := func(op Operator, v int64) Constraint { return Constraint{Column: "t", Op: op, Value: v} }
	u := func(s int64) time.Time { return time.Unix(s, 0) }
	for _, tc := range []struct {
		cs           []Constraint
		since, until time.Time
		none         bool
	}{
		{nil, time.Time{}, time.Time{}, false},
		{[]Constraint{c(OpGE, 100), c(OpLT, 200)}, u(100), u(200), false},
		{[]Constraint{c(OpGT, 100)}, u(101), time.Time{}, false},
		{[]Constraint{c(OpLE, 200)}, time.Time{}, u(201), false},
		{[]Constraint{c(OpLT, 5), c(OpGT, 7)}, time.Time{}, time.Time{}, true},
	} {
		since, until, none := QueryContext{Constraints: tc.cs}.TimeRange("t")
		if !since.Equal(tc.since) || !until.Equal(tc.until) || none != tc.none {
			t.Errorf("%v: %v %v %v, want %v %v %v", tc.cs, since, until, none, tc.since, tc.until, tc.none)
		}
	}
}
