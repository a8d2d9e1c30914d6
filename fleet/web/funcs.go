package web

import (
	"context"
	"fmt"
	"html/template"
	"net/url"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/quarry-sec/quarry/fleet/store"
)

// severities in increasing order.
var severities = []string{"informational", "low", "medium", "high", "critical"}

func severityRank(s string) int {
	for i, v := range severities {
		if v == s {
			return i
		}
	}
	return -1
}

func funcs(ui *UI) template.FuncMap {
	return template.FuncMap{
		"sevClass": func(s string) string {
			if severityRank(s) < 0 {
				return "sev-unknown"
			}
			return "sev-" + s
		},
		// verdictClass colours a sandbox verdict as a severity.
		"verdictClass": func(v string) string {
			switch v {
			case "malicious":
				return "sev-high"
			case "suspicious":
				return "sev-medium"
			case "clean":
				return "sev-low"
			}
			return "sev-unknown"
		},
		"ts": func(t time.Time) string {
			if t.IsZero() {
				return "—"
			}
			return t.UTC().Format("2006-01-02 15:04:05")
		},
		"ago": func(t time.Time) string { return ago(ui.cfg.Now(), t) },
		"base": func(p string) string {
			if i := strings.LastIndexAny(p, `/\`); i >= 0 && i < len(p)-1 {
				return p[i+1:]
			}
			return p
		},
		"trunc": func(n int, s string) string {
			r := []rune(s)
			if len(r) <= n {
				return s
			}
			return string(r[:n-1]) + "…"
		},
		"tactics": func(s string) []string {
			var out []string
			for _, t := range strings.Split(s, ",") {
				if t = strings.TrimSpace(t); t != "" {
					out = append(out, t)
				}
			}
			return out
		},
		"tacticName": func(short string) string {
			if t, ok := ui.cfg.KB.Tactic(short); ok {
				return t.Name
			}
			return short
		},
		"paras": func(s string) []string {
			var out []string
			for _, p := range strings.Split(strings.ReplaceAll(s, "\r\n", "\n"), "\n\n") {
				if p = strings.TrimSpace(stripCitations(p)); p != "" {
					out = append(out, p)
				}
			}
			return out
		},
		// query builds a query string; its values are encoded here, so it
		// is a safe URL part.
		"query": func(kv ...string) template.URL {
			v := url.Values{}
			for i := 0; i+1 < len(kv); i += 2 {
				if kv[i+1] != "" {
					v.Set(kv[i], kv[i+1])
				}
			}
			return template.URL(v.Encode())
		},
		// chain orders tactic shortnames as the ATT&CK matrix does.
		"chain": ui.chain,
		"join":  strings.Join,
		"num":   func(n any) string { return groupDigits(fmt.Sprint(n)) },
		"add":   func(a, b int) int { return a + b },
		"upper": strings.ToUpper,
		"pathDir": func(p string) string {
			return path.Dir(strings.ReplaceAll(p, `\`, "/"))
		},
	}
}

// stripCitations drops ATT&CK's "(Citation: …)" markers.
func stripCitations(s string) string {
	for {
		i := strings.Index(s, "(Citation:")
		if i < 0 {
			return s
		}
		j := strings.Index(s[i:], ")")
		if j < 0 {
			return s[:i]
		}
		s = strings.TrimRight(s[:i], " ") + s[i+j+1:]
	}
}

func groupDigits(s string) string {
	if len(s) <= 3 || strings.ContainsAny(s, ".e") {
		return s
	}
	neg := strings.HasPrefix(s, "-")
	if neg {
		s = s[1:]
	}
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

func ago(now, t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	d := now.Sub(t)
	switch {
	case d < 0:
		return "just now"
	case d < time.Minute:
		return fmt.Sprintf("%ds ago", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm ago", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh ago", int(d.Hours()))
	default:
		return fmt.Sprintf("%dd ago", int(d.Hours()/24))
	}
}

// windows are the time windows the filters offer.
var windows = []struct{ Key, Label string }{
	{"1h", "last hour"}, {"24h", "last 24 h"}, {"7d", "last 7 days"}, {"30d", "last 30 days"}, {"all", "all time"},
}

// parseWindow turns a window key, a Go duration or a date into the start
// of the window (zero: no bound).
func parseWindow(v string, now time.Time) (time.Time, error) {
	v = strings.TrimSpace(v)
	switch v {
	case "", "all":
		return time.Time{}, nil
	}
	if strings.HasSuffix(v, "d") {
		if n, err := strconv.Atoi(strings.TrimSuffix(v, "d")); err == nil && n > 0 {
			return now.Add(-time.Duration(n) * 24 * time.Hour), nil
		}
	}
	if d, err := time.ParseDuration(v); err == nil && d > 0 {
		return now.Add(-d), nil
	}
	for _, layout := range []string{time.RFC3339, "2006-01-02T15:04", "2006-01-02 15:04", "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, v, time.UTC); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("bad time %q: use 24h, 7d, a date (2006-01-02) or RFC 3339", v)
}

// splitList splits a comma- or space-separated filter value.
func splitList(v string) []string {
	var out []string
	for _, f := range strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == ' ' || r == '\n' }) {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// hostIDs resolves a filter's host names (host IDs or the identifiers
// hosts enrolled with, any case; not the hostnames they claim) to host IDs, and returns the names no host has
// apart. When names are given the IDs hold noHost too, so that a list of
// unknown names matches nothing rather than every host; no names: nil.
func (ui *UI) hostIDs(ctx context.Context, names []string) (ids, unknown []string, err error) {
	if len(names) == 0 {
		return nil, nil, nil
	}
	hosts, err := ui.cfg.Store.Hosts(ctx)
	if err != nil {
		return nil, nil, err
	}
	ids, unknown = store.MatchHosts(hosts, names)
	return append(ids, noHost), unknown, nil
}
