// Package asmcheck checks Go assembly for instructions that are slow next
// to AVX code.
//
// A legacy (non-VEX) SSE instruction executed while the upper halves of the
// YMM registers hold data makes the processor save or merge them: on some
// processors a state transition of a few hundred cycles, paid on every
// call of a function that mixes the two. The assembly of this repository
// therefore writes XMM registers with VEX-encoded instructions only (VMOVD,
// VMOVQ, … rather than MOVD, MOVQ), and its tests check that with
// LegacySSE.
package asmcheck

import (
	"fmt"
	"regexp"
	"strings"
)

// xmm matches an XMM register operand.
var xmm = regexp.MustCompile(`^X([0-9]|[12][0-9]|3[01])$`)

// LegacySSE returns, as "name:line: instruction", the instructions of the Go
// assembly src (named name in the result) that name an XMM register and
// are not VEX-encoded (their mnemonic does not start with V).
func LegacySSE(name, src string) []string {
	var bad []string
	for i, line := range strings.Split(src, "\n") {
		if c := strings.Index(line, "//"); c >= 0 {
			line = line[:c]
		}
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") || strings.HasSuffix(line, ":") {
			continue
		}
		op, args, _ := strings.Cut(line, " ")
		switch op {
		case "TEXT", "DATA", "GLOBL":
			continue
		}
		if strings.HasPrefix(op, "V") {
			continue
		}
		for _, a := range strings.Split(args, ",") {
			if xmm.MatchString(strings.TrimSpace(a)) {
				bad = append(bad, fmt.Sprintf("%s:%d: %s", name, i+1, line))
				break
			}
		}
	}
	return bad
}
