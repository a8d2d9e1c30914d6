package activity

import (
	"context"
	"sort"
	"strconv"
	"strings"

	"github.com/quarry-sec/quarry/tables"
	"github.com/quarry-sec/quarry/telemetry/eventstore"
)

// scriptActions names the PowerShell events script_events reads.
var scriptActions = map[int]string{
	4104: "script_block", 4103: "module", 400: "engine_start", 403: "engine_stop", 600: "provider_start", 800: "pipeline",
}

// classicValue finds "name=value" in any field of a classic PowerShell
// event (whose details are one text of key=value lines, named Data or
// param3 depending on the exporter), or the field of that name itself.
func classicValue(a *eventstore.Activity, name string) string {
	if v := a.Field(name); v != "" {
		return v
	}
	for _, f := range a.Fields.List() {
		if strings.Contains(f.Value, name+"=") {
			if v := KeyValueText(f.Value, name, "="); v != "" {
				return v
			}
		}
	}
	return ""
}

// hostApplication is the PowerShell host's command line.
func hostApplication(a *eventstore.Activity) string {
	if a.EventID == 4103 {
		return KeyValueText(a.Field("ContextInfo"), "Host Application", " = ")
	}
	return classicValue(a, "HostApplication")
}

// scriptText is one event's script text (one part of a 4104 block).
func scriptText(a *eventstore.Activity) string {
	switch a.EventID {
	case 4104:
		return a.Field("ScriptBlockText")
	case 4103:
		return a.Field("Payload")
	case 800:
		if c := classicValue(a, "CommandLine"); c != "" {
			return c
		}
	}
	return hostApplication(a)
}

var scriptEvents = &spec{
	name: "script_events", kind: "script",
	description: "PowerShell: script blocks (4104, reassembled from their parts by ScriptBlockId into one row), module " +
		"logging (4103), and Windows PowerShell's engine, provider and pipeline events (400, 403, 600, 800) with the host's " +
		"command line.",
	selectors: []eventstore.Selector{
		{Channels: []string{powershellChannel, "PowerShellCore/Operational"}, EventIDs: []int{4103, 4104}},
		{Channels: []string{classicPSChannel}, EventIDs: []int{400, 403, 600, 800}},
	},
	columns: []column{
		text("action", "script_block, module, engine_start, engine_stop, provider_start, pipeline", byEventID(scriptActions, nil)),
		text("script_block_id", "ScriptBlockId of a 4104 block", field("ScriptBlockId")),
		text("script_text", "The script: a whole 4104 block, a 4103 payload, or a classic event's command line", func(a *eventstore.Activity) any {
			return nullable(scriptText(a))
		}),
		text("script_path", "The script's file, when run from one", field("Path")),
		text("host_application", "The PowerShell host's command line (HostApplication)", func(a *eventstore.Activity) any {
			return nullable(hostApplication(a))
		}),
		text("command_name", "The command a 4103 event logged", func(a *eventstore.Activity) any {
			return nullable(KeyValueText(a.Field("ContextInfo"), "Command Name", " = "))
		}),
		integer("message_total", "How many parts the 4104 block was logged in", intField("MessageTotal")),
		integer("complete", "1 when every part of the 4104 block is stored, 0 when some are missing; NULL for other events", func(a *eventstore.Activity) any {
			if a.EventID == 4104 {
				return int64(1)
			}
			return nil
		}),
	},
	summary: func(get func(string) string) string {
		s := get("action") + " " + get("script_text")
		if len(s) > 200 {
			s = s[:200] + "…"
		}
		return s
	},
	generate: generateScripts,
}

// maxPendingBlocks bounds the script blocks held while waiting for their
// other parts; beyond it the oldest is emitted incomplete.
const maxPendingBlocks = 4096

// generateScripts reads script_events: a 4104 block split into parts is
// emitted once, when its last part is read (or, incomplete, at the end).
func generateScripts(ctx context.Context, st *eventstore.Store, b *built, f eventstore.ActivityFilter, q tables.QueryContext, emit tables.EmitFunc) error {
	iText, iTotal, iComplete := b.index("script_text"), b.index("message_total"), b.index("complete")
	asm := newScriptAssembler()
	rows := map[string]tables.Row{} // a block's row, from its first part read
	row := make(tables.Row, len(b.cols))
	stopped := false
	var stop error
	send := func(r tables.Row) bool {
		if !emit(r) {
			stopped = true
			return false
		}
		return true
	}
	flush := func(id string, text string, total int, complete bool) bool {
		r := rows[id]
		delete(rows, id)
		r[iText] = nullable(text)
		r[iTotal] = int64(total)
		r[iComplete] = boolInt(complete)
		return send(r)
	}
	err := st.ScanActivity(ctx, f, func(a *eventstore.Activity) bool {
		if err := ctx.Err(); err != nil {
			stop = err
			return false
		}
		id := a.Field("ScriptBlockId")
		num, _ := strconv.Atoi(a.Field("MessageNumber"))
		total, _ := strconv.Atoi(a.Field("MessageTotal"))
		if a.EventID != 4104 || id == "" || total <= 1 {
			b.fill(row, a, q)
			return send(row)
		}
		if _, ok := rows[id]; !ok {
			r := make(tables.Row, len(b.cols))
			b.fill(r, a, q)
			rows[id] = r
		}
		if text, done := asm.add(id, num, total, a.Field("ScriptBlockText")); done {
			return flush(id, text, total, true)
		}
		for asm.pending() > maxPendingBlocks {
			oid, text, tot := asm.evictOldest()
			if !flush(oid, text, tot, false) {
				return false
			}
		}
		return true
	})
	if err != nil || stop != nil || stopped {
		if err != nil {
			return err
		}
		return stop
	}
	for _, blk := range asm.rest() {
		if !flush(blk.id, blk.text, blk.total, false) {
			return nil
		}
	}
	return nil
}

func boolInt(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

// index is the position of the named column.
func (b *built) index(name string) int {
	for i, c := range b.cols {
		if c.Name == name {
			return i
		}
	}
	panic("activity: no column " + name + " in " + b.name)
}

// scriptAssembler joins the parts of PowerShell script blocks (4104 events
// with MessageNumber n of MessageTotal m, one ScriptBlockId) into whole
// scripts, whatever order the parts come in.
type scriptAssembler struct {
	blocks map[string]*scriptBlock
	seq    int
}

type scriptBlock struct {
	total int
	parts map[int]string
	order int // when first seen, for eviction
}

func newScriptAssembler() *scriptAssembler {
	return &scriptAssembler{blocks: map[string]*scriptBlock{}}
}

// maxScriptParts bounds MessageTotal: a larger one (a malformed record) is
// treated as this many.
const maxScriptParts = 1 << 16

// add records part num of total of block id; when that completes the block
// it returns the whole text and true, and forgets the block. A part number
// out of 1..total, or a repeated one, is ignored.
func (s *scriptAssembler) add(id string, num, total int, text string) (string, bool) {
	total = min(max(total, 1), maxScriptParts)
	blk := s.blocks[id]
	if blk == nil {
		s.seq++
		blk = &scriptBlock{total: total, parts: map[int]string{}, order: s.seq}
		s.blocks[id] = blk
	}
	if num < 1 || num > blk.total {
		return "", false
	}
	if _, dup := blk.parts[num]; dup {
		return "", false
	}
	blk.parts[num] = text
	if len(blk.parts) < blk.total {
		return "", false
	}
	delete(s.blocks, id)
	return blk.join(), true
}

// join concatenates the parts in order, skipping missing ones.
func (b *scriptBlock) join() string {
	nums := make([]int, 0, len(b.parts))
	for n := range b.parts {
		nums = append(nums, n)
	}
	sort.Ints(nums)
	var sb strings.Builder
	for _, n := range nums {
		sb.WriteString(b.parts[n])
	}
	return sb.String()
}

func (s *scriptAssembler) pending() int { return len(s.blocks) }

// evictOldest removes the block first seen earliest and returns what it has.
func (s *scriptAssembler) evictOldest() (id, text string, total int) {
	best := -1
	for k, b := range s.blocks {
		if best < 0 || b.order < best {
			best, id = b.order, k
		}
	}
	b := s.blocks[id]
	delete(s.blocks, id)
	return id, b.join(), b.total
}

// partial is a block some of whose parts never came.
type partial struct {
	id, text string
	total    int
}

// rest returns the incomplete blocks, in the order first seen, and forgets them.
func (s *scriptAssembler) rest() []partial {
	out := make([]partial, 0, len(s.blocks))
	type kv struct {
		id string
		b  *scriptBlock
	}
	var all []kv
	for k, b := range s.blocks {
		all = append(all, kv{k, b})
	}
	sort.Slice(all, func(i, j int) bool { return all[i].b.order < all[j].b.order })
	for _, x := range all {
		out = append(out, partial{x.id, x.b.join(), x.b.total})
	}
	s.blocks = map[string]*scriptBlock{}
	return out
}
