//go:build !amd64

package importers

// Other architectures have no AVX2: indexQuoteOrBackslash takes its
// portable path only.
var useQuoteScanAVX2 = false

func quoteScanAVX2(p *byte, blocks int) (int, uint32) {
	panic("quoteScanAVX2 without AVX2")
}
