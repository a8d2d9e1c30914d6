package osqueryext

import (
	"context"
	"errors"
	"reflect"
	"testing"

	"github.com/quarry-sec/quarry/tables"
)

// recorderWant is recorderRows as osquery text: ints in decimal, doubles in
// the shortest exact form, NULL left out (osquery reads it as NULL), an
// empty string kept.
var recorderWant = []map[string]string{
	{"id": "a", "n": "1", "i": "-2", "d": "1.5", "name": "alpha", "req": "r"},
	{"id": "b", "n": "9007199254740993", "i": "0", "secret": "s", "req": "r"},
	{"id": "c", "n": "-9223372036854775808", "i": "2147483647", "d": "1000000000000000000000",
		"name": "gamma, with \"quotes\"\n", "secret": "", "req": "r"},
}

func TestCollectRendersEveryType(t *testing.T) {
	reg := tables.NewRegistry()
	if err := reg.Register(recorderTable(&recorder{})); err != nil {
		t.Fatal(err)
	}
	tbl, _ := reg.Table("quarry_test_recorder")
	rows, err := Collect(context.Background(), tbl, tables.QueryContext{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(rows, recorderWant) {
		t.Errorf("rows\n got %v\nwant %v", rows, recorderWant)
	}
}

func TestCollectOnlyUsedColumns(t *testing.T) {
	tbl := recorderTable(&recorder{})
	rows, err := Collect(context.Background(), &tbl, tables.QueryContext{UsedColumns: map[string]bool{"id": true, "n": true}}, 0)
	if err != nil {
		t.Fatal(err)
	}
	want := []map[string]string{{"id": "a", "n": "1"}, {"id": "b", "n": "9007199254740993"}, {"id": "c", "n": "-9223372036854775808"}}
	if !reflect.DeepEqual(rows, want) {
		t.Errorf("got %v, want %v", rows, want)
	}
	rows, err = Collect(context.Background(), &tbl, tables.QueryContext{UsedColumns: map[string]bool{}}, 0)
	if err != nil || len(rows) != 3 || len(rows[0]) != 0 {
		t.Errorf("count(*): got %v, %v; want 3 empty rows", rows, err)
	}
}

func TestCollectLimitsAndErrors(t *testing.T) {
	tbl := recorderTable(&recorder{})
	if _, err := Collect(context.Background(), &tbl, tables.QueryContext{}, 2); !errors.Is(err, ErrTooManyRows) {
		t.Errorf("limit 2: err = %v, want ErrTooManyRows", err)
	}
	if rows, err := Collect(context.Background(), &tbl, tables.QueryContext{}, 3); err != nil || len(rows) != 3 {
		t.Errorf("limit 3: %d rows, %v", len(rows), err)
	}
	failing := recorderTable(&recorder{fail: errBoom})
	if _, err := Collect(context.Background(), &failing, tables.QueryContext{}, 0); !errors.Is(err, errBoom) {
		t.Errorf("failing table: err = %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	big := numbersTable(1 << 20)
	if _, err := Collect(ctx, &big, tables.QueryContext{}, 0); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: err = %v", err)
	}
}
