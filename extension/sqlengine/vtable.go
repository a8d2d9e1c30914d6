package sqlengine

import (
	"context"
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"io"
	"iter"
	"math"
	"slices"
	"strconv"
	"strings"

	"modernc.org/sqlite/vtab"

	"github.com/quarry-sec/quarry/tables"
)

// module serves every table of a registry as a SQLite virtual table. A table
// is created on each connection with
// "CREATE VIRTUAL TABLE name USING quarry(name, connection id)"; the id finds
// the context of the statement the connection runs.
type module struct {
	reg   *tables.Registry
	conns *connStates
}

func (m *module) Create(ctx vtab.Context, args []string) (vtab.Table, error) {
	return m.Connect(ctx, args)
}

func (m *module) Connect(ctx vtab.Context, args []string) (vtab.Table, error) {
	// args: module name, database name, table name, module arguments.
	if len(args) < 3 {
		return nil, fmt.Errorf("quarry module: expected a table name")
	}
	name := args[2]
	if len(args) > 3 {
		name = strings.Trim(strings.TrimSpace(args[3]), `"'`)
	}
	var state *connState
	if len(args) > 4 {
		id, err := strconv.ParseUint(strings.TrimSpace(args[4]), 10, 64)
		if err != nil {
			return nil, fmt.Errorf("quarry module: bad connection id %q", args[4])
		}
		state = m.conns.get(id)
	}
	t, ok := m.reg.Table(name)
	if !ok {
		return nil, fmt.Errorf("quarry module: no table %q in the registry", name)
	}
	if err := ctx.Declare(declareSQL(t)); err != nil {
		return nil, fmt.Errorf("declare table %s: %w", t.Name, err)
	}
	return &vtable{t: t, conn: state}, nil
}

// declareSQL is the CREATE TABLE statement SQLite learns the schema from.
func declareSQL(t *tables.Table) string {
	var b strings.Builder
	b.WriteString("CREATE TABLE x(")
	for i, c := range t.Columns {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(quoteIdent(c.Name))
		b.WriteByte(' ')
		b.WriteString(c.Type.String())
		if c.Hidden {
			b.WriteString(" HIDDEN")
		}
	}
	b.WriteString(")")
	return b.String()
}

func quoteIdent(s string) string {
	return `"` + strings.ReplaceAll(s, `"`, `""`) + `"`
}

// vtable is one table on one connection.
type vtable struct {
	t    *tables.Table
	conn *connState // the connection's statement context; nil: none
}

// Cost model. SQLite compares plans by EstimatedCost; a table has no row
// count, so the model only has to rank plans: a constraint on an index column
// (which Generate uses to look up instead of scanning) makes the plan far
// cheaper, a range on an indexed or additional column somewhat cheaper, and
// a plan without a required column's equality is priced out.
const (
	costFullScan  = 1e6
	costNoPlan    = 1e18
	rowsFullScan  = 1e6
	opUnsupported = tables.Operator(0)
)

func mapOp(op vtab.ConstraintOp) tables.Operator {
	switch op {
	case vtab.OpEQ, vtab.OpIS:
		return tables.OpEQ
	case vtab.OpLT:
		return tables.OpLT
	case vtab.OpLE:
		return tables.OpLE
	case vtab.OpGT:
		return tables.OpGT
	case vtab.OpGE:
		return tables.OpGE
	case vtab.OpLIKE:
		return tables.OpLIKE
	}
	return opUnsupported
}

func (v *vtable) BestIndex(info *vtab.IndexInfo) error {
	cost := costFullScan
	rows := float64(rowsFullScan)
	var plan strings.Builder
	arg := 0
	hasEq := make(map[int]bool)
	for i := range info.Constraints {
		c := &info.Constraints[i]
		if !c.Usable || c.Column < 0 || c.Column >= len(v.t.Columns) {
			continue
		}
		op := mapOp(c.Op)
		if op == opUnsupported {
			continue
		}
		col := v.t.Columns[c.Column]
		c.ArgIndex = arg
		arg++
		// SQLite re-checks every row (Omit stays false), so a table may treat
		// constraints as hints.
		if plan.Len() > 0 {
			plan.WriteByte(';')
		}
		plan.WriteString(strconv.Itoa(c.Column))
		plan.WriteByte(',')
		plan.WriteString(strconv.Itoa(int(op)))
		switch {
		case op == tables.OpEQ && col.Index:
			cost /= 1000
			rows /= 1000
			hasEq[c.Column] = true
		case op == tables.OpEQ:
			cost *= 0.9
			rows /= 10
			hasEq[c.Column] = true
		case col.Index || col.Additional:
			cost /= 10
			rows /= 4
		default:
			cost *= 0.95
			rows /= 2
		}
	}
	for i, col := range v.t.Columns {
		if col.Required && !hasEq[i] {
			cost = costNoPlan
		}
	}
	if len(v.t.RequiresOneOf) > 0 {
		any := false
		for i, col := range v.t.Columns {
			any = any || hasEq[i] && slices.Contains(v.t.RequiresOneOf, col.Name)
		}
		if !any {
			cost = costNoPlan
		}
	}
	// The plan starts with the columns the query reads (SQLite's colUsed
	// bitmask, in hex), so a table can skip work for the others.
	info.IdxStr = "u" + strconv.FormatUint(info.ColUsed, 16) + "|" + plan.String()
	info.EstimatedCost = cost
	info.EstimatedRows = max(int64(rows), 1)
	info.IdxNum = int64(arg)
	return nil
}

func (v *vtable) Open() (vtab.Cursor, error) { return &cursor{vt: v}, nil }
func (v *vtable) Disconnect() error          { return nil }
func (v *vtable) Destroy() error             { return nil }

// cursor pulls rows from the table's Generate, one at a time, on a coroutine
// (iter.Pull2): the table streams, nothing is buffered.
type cursor struct {
	vt     *vtable
	next   func() (tables.Row, error, bool)
	stop   func()
	cancel context.CancelFunc
	row    tables.Row
	err    error // a Generate failure not yet reported
	eof    bool
}

func (c *cursor) Filter(idxNum int, idxStr string, vals []vtab.Value) error {
	c.release()
	t := c.vt.t
	q, err := parsePlan(t, idxStr, vals)
	if err != nil {
		return err
	}
	for _, col := range t.Columns {
		if col.Required {
			if _, ok := q.Equals(col.Name); !ok {
				return fmt.Errorf("table %s requires a WHERE constraint %s = value (or IN)", t.Name, col.Name)
			}
		}
	}
	ctx, cancel := context.WithCancel(c.vt.conn.context())
	c.cancel = cancel
	c.next, c.stop = iter.Pull2(func(yield func(tables.Row, error) bool) {
		err := t.Generate(ctx, q, func(r tables.Row) bool { return yield(r, nil) })
		if err != nil {
			yield(nil, err)
		}
	})
	return c.advance()
}

func parsePlan(t *tables.Table, idxStr string, vals []vtab.Value) (tables.QueryContext, error) {
	var q tables.QueryContext
	if rest, ok := strings.CutPrefix(idxStr, "u"); ok {
		used, plan, found := strings.Cut(rest, "|")
		mask, err := strconv.ParseUint(used, 16, 64)
		if !found || err != nil {
			return q, fmt.Errorf("table %s: bad plan %q", t.Name, idxStr)
		}
		q.UsedColumns = usedColumns(t, mask)
		idxStr = plan
	}
	if idxStr == "" {
		return q, nil
	}
	terms := strings.Split(idxStr, ";")
	if len(terms) != len(vals) {
		return q, fmt.Errorf("table %s: plan has %d terms for %d values", t.Name, len(terms), len(vals))
	}
	q.Constraints = make([]tables.Constraint, 0, len(terms))
	for i, term := range terms {
		colStr, opStr, ok := strings.Cut(term, ",")
		col, err1 := strconv.Atoi(colStr)
		op, err2 := strconv.Atoi(opStr)
		if !ok || err1 != nil || err2 != nil || col < 0 || col >= len(t.Columns) {
			return q, fmt.Errorf("table %s: bad plan term %q", t.Name, term)
		}
		q.Constraints = append(q.Constraints, tables.Constraint{
			Column: t.Columns[col].Name,
			Op:     tables.Operator(op),
			Value:  normalizeArg(vals[i]),
		})
	}
	return q, nil
}

// usedColumns turns SQLite's colUsed mask into column names: bit N is
// column N, and bit 63 stands for every column from the 64th on.
func usedColumns(t *tables.Table, mask uint64) map[string]bool {
	used := make(map[string]bool)
	for i, c := range t.Columns {
		bit := min(i, 63)
		if mask&(1<<uint(bit)) != 0 {
			used[c.Name] = true
		}
	}
	return used
}

func normalizeArg(v vtab.Value) any {
	switch x := v.(type) {
	case []byte:
		return string(x)
	case bool:
		if x {
			return int64(1)
		}
		return int64(0)
	}
	return v
}

// Next moves to the next row. SQLite drops the message of an error returned
// from xNext, so a failed Generate becomes a pending error instead: Column
// reports it with its message, and the following Next returns it.
func (c *cursor) Next() error {
	if c.err != nil {
		return c.err
	}
	if err := c.advance(); err != nil {
		c.err = err
		c.eof = false
	}
	return nil
}

// advance pulls the next row from Generate.
func (c *cursor) advance() error {
	row, err, ok := c.next()
	if !ok {
		c.eof = true
		c.row = nil
		return nil
	}
	if err != nil {
		c.eof = true
		c.row = nil
		return err
	}
	c.row = row
	return nil
}

func (c *cursor) Eof() bool { return c.eof }

func (c *cursor) Column(col int) (vtab.Value, error) {
	if c.err != nil {
		return nil, c.err
	}
	if col < 0 || col >= len(c.row) {
		return nil, nil // a short row reads as NULLs
	}
	switch x := c.row[col].(type) {
	case int64, float64, string, nil:
		return x, nil
	case int:
		return int64(x), nil
	case int32:
		return int64(x), nil
	case uint32:
		return int64(x), nil
	case uint64:
		return int64(x), nil
	case bool:
		if x {
			return int64(1), nil
		}
		return int64(0), nil
	case []byte:
		return x, nil
	default:
		return fmt.Sprint(x), nil
	}
}

// Rowid identifies the current row by its content (FNV-1a over the typed
// values). SQLite's OR optimization runs Filter once per OR term and drops
// rows whose rowid it has already returned, so a rowid must name the same row
// in every Filter call; a position counter would drop distinct rows. Rows
// identical in every column are one row to an OR query.
func (c *cursor) Rowid() (int64, error) {
	h := fnv.New64a()
	var buf [9]byte
	for _, v := range c.row {
		switch x := v.(type) {
		case nil:
			h.Write([]byte{0})
		case int64:
			buf[0] = 1
			binary.LittleEndian.PutUint64(buf[1:], uint64(x))
			h.Write(buf[:])
		case float64:
			buf[0] = 2
			binary.LittleEndian.PutUint64(buf[1:], math.Float64bits(x))
			h.Write(buf[:])
		case string:
			buf[0] = 3
			binary.LittleEndian.PutUint64(buf[1:], uint64(len(x)))
			h.Write(buf[:])
			io.WriteString(h, x)
		default:
			s := fmt.Sprint(x)
			buf[0] = 4
			binary.LittleEndian.PutUint64(buf[1:], uint64(len(s)))
			h.Write(buf[:])
			io.WriteString(h, s)
		}
	}
	return int64(h.Sum64() & math.MaxInt64), nil
}

func (c *cursor) Close() error {
	c.release()
	return nil
}

func (c *cursor) release() {
	if c.stop != nil {
		c.stop()
		c.stop, c.next = nil, nil
	}
	if c.cancel != nil {
		c.cancel()
		c.cancel = nil
	}
	c.eof = false
	c.row = nil
	c.err = nil
}
