package importers

import (
	"bytes"
	"errors"
	"fmt"
	"unicode/utf8"
)

// sniffSize is how much of a file detection looks at.
const sniffSize = 8 << 10

var (
	evtxMagic = []byte("ElfFile\x00")
	utf8BOM   = []byte("\xef\xbb\xbf")
)

// errUnknownFormat is wrapped by detection failures.
var errUnknownFormat = errors.New("unknown telemetry format")

// errBinary is a detection failure on bytes that are not text: Open
// describes the file instead of quoting them.
var errBinary = fmt.Errorf("%w: binary data", errUnknownFormat)

// detect names the format of a file from its first bytes.
func detect(head []byte) (Format, error) {
	if bytes.HasPrefix(head, evtxMagic) {
		return FormatSysmonEVTX, nil
	}
	if bytes.HasPrefix(head, zipMagic) {
		return "", fmt.Errorf("%w: a zip archive (import and scan read its files)", errUnknownFormat)
	}
	body := bytes.TrimLeft(bytes.TrimPrefix(head, utf8BOM), " \t\r\n")
	if len(body) == 0 {
		return "", fmt.Errorf("%w: the file is empty", errUnknownFormat)
	}
	if isBinary(body) {
		return "", errBinary
	}
	first := firstLine(body)
	switch {
	case body[0] == '{' && isSandboxReport(body):
		return FormatSandboxReport, nil
	case body[0] == '{' || body[0] == '[':
		if bytes.Contains(first, []byte(`"audit_serial"`)) || bytes.Contains(first, []byte(`"SYSCALL"`)) {
			return FormatAuditdJSON, nil
		}
		return FormatSysmonJSON, nil
	case isAuditLine(first):
		return FormatAuditd, nil
	case bytes.Contains(body, []byte("<Event")) && bytes.Contains(body, []byte("<System>")):
		// syslog lines; other programs' lines may come first
		return FormatSysmonLinuxSyslog, nil
	}
	return "", fmt.Errorf("%w: first bytes %q", errUnknownFormat, preview(body))
}

// isAuditLine reports whether a line looks like a raw audit record.
func isAuditLine(line []byte) bool {
	if bytes.HasPrefix(line, []byte("node=")) {
		i := bytes.IndexByte(line, ' ')
		if i < 0 {
			return false
		}
		line = line[i+1:]
	}
	return bytes.HasPrefix(line, []byte("type=")) && bytes.Contains(line, []byte(" msg=audit("))
}

func firstLine(b []byte) []byte {
	if i := bytes.IndexByte(b, '\n'); i >= 0 {
		return b[:i]
	}
	return b
}

// preview is the start of a file for an error message.
func preview(b []byte) []byte {
	const n = 64
	if len(b) > n {
		return b[:n]
	}
	return b
}

// isBinary reports whether b does not look like text: it holds a NUL, or
// more than one byte in eight is a control character or not UTF-8.
func isBinary(b []byte) bool {
	if bytes.IndexByte(b, 0) >= 0 {
		return true
	}
	odd, total := 0, len(b)
	for len(b) > 0 {
		r, n := utf8.DecodeRune(b)
		if (r == utf8.RuneError && n == 1 && len(b) >= utf8.UTFMax) || (r < 0x20 && r != '\t' && r != '\n' && r != '\r') || r == 0x7f {
			odd++
		}
		b = b[n:]
	}
	return odd*8 > total
}
