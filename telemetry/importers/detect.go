package importers

import (
	"bytes"
	"errors"
	"fmt"
)

// sniffSize is how much of a file detection looks at.
const sniffSize = 8 << 10

var (
	evtxMagic = []byte("ElfFile\x00")
	utf8BOM   = []byte("\xef\xbb\xbf")
)

// errUnknownFormat is wrapped by detection failures.
var errUnknownFormat = errors.New("unknown telemetry format")

// detect names the format of a file from its first bytes.
func detect(head []byte) (Format, error) {
	if bytes.HasPrefix(head, evtxMagic) {
		return FormatSysmonEVTX, nil
	}
	body := bytes.TrimLeft(bytes.TrimPrefix(head, utf8BOM), " \t\r\n")
	if len(body) == 0 {
		return "", fmt.Errorf("%w: the file is empty", errUnknownFormat)
	}
	first := firstLine(body)
	switch {
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
