package importers

import "golang.org/x/sys/cpu"

// useQuoteScanAVX2: indexQuoteOrBackslash looks through long runs of a JSON
// string 32 bytes at a time with AVX2.
var useQuoteScanAVX2 = cpu.X86.HasAVX2

// quoteScanAVX2 tests p[0:32*blocks], block by block, for '"' and '\\': at
// the first block holding one it returns the number of blocks before it and
// the block's mask (bit k set when byte k is one), else blocks and 0.
//
//go:noescape
func quoteScanAVX2(p *byte, blocks int) (scanned int, mask uint32)
