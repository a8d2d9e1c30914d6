package importers

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"

	"www.velocidex.com/golang/evtx"
)

// checkChunk verifies a chunk's header and records checksums before the
// parser sees it. The parser trusts counts inside damaged records (a
// template's argument count can make it allocate gigabytes), so a chunk whose
// checksums fail is reported and skipped, as evtx_dump does by default.
func checkChunk(rs io.ReadSeeker, c *evtx.Chunk, buf []byte) error {
	if _, err := rs.Seek(c.Offset, io.SeekStart); err != nil {
		return err
	}
	if _, err := io.ReadFull(rs, buf[:evtx.EVTX_CHUNK_SIZE]); err != nil {
		return fmt.Errorf("truncated chunk: %w", err)
	}
	b := buf[:evtx.EVTX_CHUNK_SIZE]
	h := crc32.NewIEEE()
	h.Write(b[:0x78])
	h.Write(b[0x80:evtx.EVTX_CHUNK_HEADER_SIZE])
	if got, want := h.Sum32(), binary.LittleEndian.Uint32(b[0x7c:]); got != want {
		return fmt.Errorf("header checksum %08x, want %08x", got, want)
	}
	free := binary.LittleEndian.Uint32(b[0x30:])
	if free < evtx.EVTX_CHUNK_HEADER_SIZE || free > evtx.EVTX_CHUNK_SIZE {
		return fmt.Errorf("free space offset %d out of the chunk", free)
	}
	if got, want := crc32.ChecksumIEEE(b[evtx.EVTX_CHUNK_HEADER_SIZE:free]), binary.LittleEndian.Uint32(b[0x34:]); got != want {
		return fmt.Errorf("records checksum %08x, want %08x", got, want)
	}
	return nil
}

// maxChunkWork bounds the work the parser may do on one chunk, in tokens,
// template arguments and template nodes expanded (see binXMLWalker). A full
// chunk of real events needs a few tens of thousands.
const maxChunkWork = 1 << 21

// checkRecords walks a chunk's records the way www.velocidex.com/golang/evtx
// v0.2.0 parses them (Chunk.Parse, ParseBinXML, ParseTemplateInstance),
// reading the same offsets, before the parser sees the chunk. The parser
// trusts what it reads even where the checksums hold: a template instance's
// argument count makes it append that many descriptors (up to 2^32, tens
// of gigabytes), and nested templates and BinXml arguments can make it
// work without end. A chunk that would do either is reported and skipped.
func checkRecords(b []byte, h *evtx.ChunkHeader) error {
	w := binXMLWalker{b: b, known: make(map[int]int)}
	off := evtx.EVTX_CHUNK_HEADER_SIZE
	for i := h.FirstEventRecNumber; i <= h.LastEventRecNumber; i++ {
		start := off
		if off+evtx.EVTX_EVENT_RECORD_SIZE > len(b) || string(b[off:off+4]) != evtx.EVTX_EVENT_RECORD_MAGIC {
			break // the parser stops here
		}
		size := int(binary.LittleEndian.Uint32(b[off+4:]))
		off += evtx.EVTX_EVENT_RECORD_SIZE
		before := w.work
		w.binXML(&off)
		w.work += w.work - before + 1 // expanding the record's tree
		if w.err != nil {
			return fmt.Errorf("record %d at offset %d: %w", binary.LittleEndian.Uint64(b[start+8:]), start, w.err)
		}
		if w.work > maxChunkWork {
			return fmt.Errorf("record %d at offset %d: parsing the chunk would take over %d steps", binary.LittleEndian.Uint64(b[start+8:]), start, maxChunkWork)
		}
		off = start + size // the parser's loop wraps past MaxUint64 too; the work bound ends it
	}
	return nil
}

// binXMLWalker follows the parser's offsets through binary XML without
// building anything, counting the work and stopping at the first count the
// chunk cannot hold.
type binXMLWalker struct {
	b     []byte
	known map[int]int // template id → work of parsing its body, ~ its nodes
	work  int
	err   error
}

// The parser's reads: past the end they give zero and leave the offset.
func (w *binXMLWalker) u8(off *int) uint8 {
	if len(w.b) < *off+1 {
		return 0
	}
	*off++
	return w.b[*off-1]
}

func (w *binXMLWalker) u16(off *int) uint16 {
	if len(w.b) < *off+2 {
		return 0
	}
	*off += 2
	return binary.LittleEndian.Uint16(w.b[*off-2:])
}

func (w *binXMLWalker) u32(off *int) uint32 {
	if len(w.b) < *off+4 {
		return 0
	}
	*off += 4
	return binary.LittleEndian.Uint32(w.b[*off-4:])
}

func (w *binXMLWalker) bytes(off *int, n int) {
	if *off+n <= len(w.b) {
		*off += n
	}
}

// binXML mirrors ParseBinXML.
func (w *binXMLWalker) binXML(off *int) {
	for w.err == nil && w.work <= maxChunkWork {
		w.work++
		switch tag := w.u8(off); tag {
		case 0x01, 0x41: // open start element
			*off += 6
			w.name(off)
			if tag == 0x41 {
				w.u32(off)
			}
		case 0x02, 0x03, 0x04, 0x07, 0x47, 0x08, 0x48, 0x09, 0x49, 0x0a, 0x0b:
		case 0x05, 0x45: // value text
			w.u8(off)
			w.bytes(off, 2*int(w.u16(off)))
		case 0x06, 0x46: // attribute
			w.name(off)
		case 0x0c:
			if !w.templateInstance(off) {
				return
			}
		case 0x0d, 0x0e: // substitution
			w.u16(off)
			if w.u8(off) == 0 {
				w.u8(off)
			}
		case 0x0f: // fragment header
			*off += 3
		default: // 0x00 (end) and unknown tokens
			return
		}
	}
}

// name mirrors ReadName.
func (w *binXMLWalker) name(off *int) {
	at := int(w.u32(off))
	p := off
	if at != *off {
		p = &at
	}
	*p += 6
	w.bytes(p, 2*(int(w.u16(p))+1))
}

// templateInstance mirrors ParseTemplateInstance.
func (w *binXMLWalker) templateInstance(off *int) bool {
	if w.u8(off) != 1 {
		return false
	}
	id := int(w.u32(off))
	if id == 0 {
		return false
	}
	*off += 4
	n := w.u32(off)
	if _, ok := w.known[id]; !ok {
		*off += 16
		bodyLen := int(w.u32(off))
		w.known[id] = 0
		body, before := *off, w.work
		w.binXML(&body)
		w.known[id] = w.work - before
		*off += bodyLen
		n = w.u32(off)
	}
	if left := max(len(w.b)-*off, 0); int(n) > left/4 {
		w.err = fmt.Errorf("template %d has %d arguments, more than the chunk holds", id, n)
		return false
	}
	type arg struct {
		len int
		typ uint16
	}
	args := make([]arg, n)
	for i := range args {
		args[i].len = int(w.u16(off))
		args[i].typ = w.u16(off)
	}
	w.work += len(args)
	for _, a := range args {
		switch a.typ {
		case 0x00:
			*off += a.len
		case 0x04:
			w.u8(off)
		case 0x06:
			w.u16(off)
		case 0x08, 0x14:
			w.u32(off)
		case 0x0a, 0x11, 0x15:
			w.bytes(off, 8) // ConsumeUint64 reads like bytes(8)
		case 0x0d:
			switch a.len {
			case 1, 2, 4, 8:
				w.bytes(off, a.len)
			}
		case 0x13: // SID: the parser builds the string by concatenation
			w.u8(off)
			w.u8(off)
			w.bytes(off, 6)
			for i := 0; i < a.len-8; i += 4 {
				w.u32(off)
				w.work += 1 + i/64
			}
		case 0x21: // BinXml
			nested := *off
			w.binXML(&nested)
			*off += a.len
		default: // strings, binary, GUIDs and the rest: ConsumeBytes
			w.bytes(off, a.len)
		}
		if w.err != nil || w.work > maxChunkWork {
			return false
		}
	}
	w.work += w.known[id] + 1 // expanding the template
	return true
}
