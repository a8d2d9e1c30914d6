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
