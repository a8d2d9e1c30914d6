package web

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"

	"github.com/quarry-sec/quarry/fleet/server"
	"github.com/quarry-sec/quarry/fleet/store"
	"github.com/quarry-sec/quarry/tables"
	"github.com/quarry-sec/quarry/tables/catalog"

	"github.com/quarry-sec/quarry/attack"
)

// DefaultTables are the tables the schema browser lists when
// Config.Tables is nil: every table of Quarry's catalog (ATT&CK, process
// events under both names, IoA hits and rules, incidents and process
// trees), the tables Quarry's agent serves. Only their schemas are used.
func DefaultTables(kb *attack.KB) []tables.Table {
	all := catalog.Schemas(kb)
	sort.Slice(all, func(i, j int) bool { return all[i].Name < all[j].Name })
	return all
}

type huntForm struct {
	SQL, Targets, Hosts, Platform, Deadline string
	Error                                   string
}

type huntPageView struct {
	F      huntForm
	Tables []tables.Table
	// HostTables are the tables hosts reported (osquery's) that are not
	// among Tables.
	HostTables []store.FleetTable
	Platforms  []string
	Recent     []recentHunt
	Types      map[tables.ColumnType]string
}

var typeNames = map[tables.ColumnType]string{tables.Text: "TEXT", tables.Integer: "INTEGER", tables.BigInt: "BIGINT", tables.Double: "DOUBLE"}

const defaultHuntSQL = `SELECT h.time, h.rule_title, h.severity, h.technique_id, h.pid, h.cmdline
FROM ioa_hits h
WHERE h.time >= CAST(strftime('%s', 'now') AS INTEGER) - 3600
ORDER BY h.time DESC
LIMIT 100;`

func (ui *UI) handleHuntPage(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f := huntForm{SQL: q.Get("sql"), Hosts: q.Get("hosts"), Platform: q.Get("platform"), Deadline: q.Get("deadline")}
	ui.renderHuntPage(w, r, f)
}

func (ui *UI) renderHuntPage(w http.ResponseWriter, r *http.Request, f huntForm) {
	if f.SQL == "" {
		f.SQL = defaultHuntSQL
	}
	switch {
	case f.Hosts != "":
		f.Targets = "hosts"
	case f.Platform != "":
		f.Targets = "platform"
	default:
		f.Targets = "all"
	}
	if f.Deadline == "" {
		f.Deadline = "2m"
	}
	v := huntPageView{F: f, Tables: ui.tables, Types: typeNames,
		Platforms: []string{"linux", "windows", "darwin", "freebsd", "posix"}}
	reported, err := ui.cfg.Store.FleetTables(r.Context())
	if err != nil {
		ui.fail(w, r, err)
		return
	}
	v.HostTables = server.HostOnlyTables(ui.tables, reported)
	hunts, err := ui.wq.RecentHunts(r.Context(), 15)
	if err != nil {
		ui.fail(w, r, err)
		return
	}
	for _, h := range hunts {
		rh := recentHunt{Hunt: h, Targets: "all hosts", Live: ui.cfg.Now().Before(h.Deadline)}
		switch {
		case len(h.Targets.Hosts) > 0:
			rh.Targets = strings.Join(h.Targets.Hosts, ", ")
		case h.Targets.Platform != "":
			rh.Targets = "platform " + h.Targets.Platform
		}
		// The first line that is not a comment names the hunt.
		for _, l := range strings.Split(h.SQL, "\n") {
			if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "--") {
				rh.Line = l
				break
			}
		}
		if c := strings.TrimSpace(strings.SplitN(h.SQL, "\n", 2)[0]); strings.HasPrefix(c, "--") {
			rh.Line = strings.TrimSpace(strings.TrimPrefix(c, "--"))
		}
		v.Recent = append(v.Recent, rh)
	}
	ui.render(w, r, "hunt", "Hunt", v)
}

// recentHunt is a line of the hunt page's list of recent hunts.
type recentHunt struct {
	store.Hunt
	Line, Targets string
	Live          bool
}

// callAPI calls the fleet server's analyst API in-process with the
// session's token.
func (ui *UI) callAPI(ctx context.Context, method, path string, body any, out any) (int, error) {
	if ui.cfg.API == nil {
		return 0, errors.New("web: no fleet API configured for hunts")
	}
	var rd *bytes.Reader
	ctype := "application/json"
	if raw, ok := body.([]byte); ok { // a file as it is (an intel set)
		rd, ctype = bytes.NewReader(raw), "application/octet-stream"
	} else if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, fmt.Errorf("web: %w", err)
		}
		rd = bytes.NewReader(b)
	} else {
		rd = bytes.NewReader(nil)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://fleet.internal"+path, rd)
	if err != nil {
		return 0, fmt.Errorf("web: fleet API %s: %w", path, err)
	}
	req.RemoteAddr = "web-ui"
	req.Header.Set("Content-Type", ctype)
	if s := sessionFrom(ctx); s != nil {
		req.Header.Set("Authorization", "Bearer "+s.token)
	}
	rec := &memResponse{header: http.Header{}}
	ui.cfg.API.ServeHTTP(rec, req)
	rec.WriteHeader(http.StatusOK) // a handler that wrote nothing answered 200
	if rec.code >= 300 {
		var e struct {
			Error string `json:"error"`
		}
		_ = json.Unmarshal(rec.body.Bytes(), &e)
		if e.Error == "" {
			e.Error = strings.TrimSpace(rec.body.String())
		}
		return rec.code, &apiError{status: rec.code, msg: e.Error}
	}
	if out != nil {
		if err := json.Unmarshal(rec.body.Bytes(), out); err != nil {
			return rec.code, fmt.Errorf("web: fleet API %s: %w", path, err)
		}
	}
	return rec.code, nil
}

// memResponse is an in-memory http.ResponseWriter for in-process API calls.
type memResponse struct {
	header http.Header
	code   int
	body   bytes.Buffer
}

func (m *memResponse) Header() http.Header { return m.header }

func (m *memResponse) WriteHeader(code int) {
	if m.code == 0 {
		m.code = code
	}
}

func (m *memResponse) Write(b []byte) (int, error) {
	m.WriteHeader(http.StatusOK)
	return m.body.Write(b)
}

type apiError struct {
	status int
	msg    string
}

func (e *apiError) Error() string { return fmt.Sprintf("%d: %s", e.status, e.msg) }

func (ui *UI) handleHuntCreate(w http.ResponseWriter, r *http.Request) {
	f := huntForm{SQL: strings.TrimSpace(r.PostFormValue("sql")), Targets: r.PostFormValue("targets"),
		Hosts: strings.TrimSpace(r.PostFormValue("hosts")), Platform: strings.TrimSpace(r.PostFormValue("platform")),
		Deadline: strings.TrimSpace(r.PostFormValue("deadline"))}
	body := map[string]any{"sql": f.SQL}
	if f.Deadline != "" {
		body["deadline"] = f.Deadline
	}
	switch f.Targets {
	case "hosts":
		body["targets"] = map[string]any{"hosts": splitList(f.Hosts)}
	case "platform":
		body["targets"] = map[string]any{"platform": f.Platform}
	default:
		body["targets"] = "all"
		f.Hosts, f.Platform = "", ""
	}
	if f.Targets != "hosts" {
		f.Hosts = ""
	}
	if f.Targets != "platform" {
		f.Platform = ""
	}
	var view server.HuntView
	_, err := ui.callAPI(r.Context(), http.MethodPost, "/api/v1/hunts", body, &view)
	var ae *apiError
	if errors.As(err, &ae) && ae.status < 500 {
		f.Error = ae.msg
		w.WriteHeader(http.StatusBadRequest)
		ui.renderHuntPage(w, r, f)
		return
	}
	if err != nil {
		ui.fail(w, r, err)
		return
	}
	http.Redirect(w, r, "/hunts/"+url.PathEscape(view.ID), http.StatusSeeOther)
}

// maxShownRows is how many rows the hunt page shows; exports have all.
const maxShownRows = 1000

// huntData is a hunt's state for the page: the server's view with the
// rows as a table.
type huntData struct {
	*server.HuntView
	Columns []string   `json:"columns"`
	Table   [][]string `json:"table"`
	Hostcol []string   `json:"hostcol"`
	Shown   int        `json:"shown"`
	// HostsMore counts the target hosts left out of Hosts: the page lists
	// errors, then pending, expired and answered hosts, up to
	// maxShownHosts.
	HostsMore int `json:"hosts_more"`
}

// maxShownHosts is how many target hosts the hunt page lists.
const maxShownHosts = 200

var huntStatusOrder = map[string]int{"error": 0, "pending": 1, "expired": 2, "answered": 3}

func (ui *UI) hunt(ctx context.Context, id string, limit, offset int) (*server.HuntView, error) {
	var view server.HuntView
	_, err := ui.callAPI(ctx, http.MethodGet, fmt.Sprintf("/api/v1/hunts/%s?limit=%d&offset=%d", url.PathEscape(id), limit, offset), nil, &view)
	return &view, err
}

func tabulate(v *server.HuntView) *huntData {
	d := &huntData{HuntView: v, Columns: []string{}, Table: [][]string{}}
	sort.SliceStable(v.Hosts, func(i, j int) bool {
		return huntStatusOrder[v.Hosts[i].Status] < huntStatusOrder[v.Hosts[j].Status]
	})
	if len(v.Hosts) > maxShownHosts {
		d.HostsMore = len(v.Hosts) - maxShownHosts
		v.Hosts = v.Hosts[:maxShownHosts]
	}
	idx := map[string]int{}
	var rows []map[string]any
	for _, r := range v.Rows {
		var m map[string]any
		if json.Unmarshal(r.Columns, &m) != nil {
			m = map[string]any{}
		}
		rows = append(rows, m)
		// Keep the column order of the first row as sent.
		for _, k := range orderedKeys(r.Columns) {
			if _, ok := idx[k]; !ok {
				idx[k] = len(d.Columns)
				d.Columns = append(d.Columns, k)
			}
		}
	}
	for i, m := range rows {
		row := make([]string, len(d.Columns))
		for k, val := range m {
			row[idx[k]] = str(val)
		}
		d.Table = append(d.Table, row)
		d.Hostcol = append(d.Hostcol, v.Rows[i].HostIdentifier)
	}
	d.Shown = len(d.Table)
	return d
}

// orderedKeys returns a JSON object's keys in their order.
func orderedKeys(raw json.RawMessage) []string {
	dec := json.NewDecoder(bytes.NewReader(raw))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil
	}
	var keys []string
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return keys
		}
		k, _ := t.(string)
		keys = append(keys, k)
		var skip json.RawMessage
		if dec.Decode(&skip) != nil {
			return keys
		}
	}
	return keys
}

func (ui *UI) huntOrFail(w http.ResponseWriter, r *http.Request, limit, offset int) *server.HuntView {
	v, err := ui.hunt(r.Context(), r.PathValue("id"), limit, offset)
	var ae *apiError
	if errors.As(err, &ae) && ae.status == http.StatusNotFound {
		ui.notFound(w, r, "hunt "+r.PathValue("id"))
		return nil
	}
	if err != nil {
		ui.fail(w, r, err)
		return nil
	}
	return v
}

func (ui *UI) handleHuntView(w http.ResponseWriter, r *http.Request) {
	v := ui.huntOrFail(w, r, maxShownRows, 0)
	if v == nil {
		return
	}
	ui.render(w, r, "huntview", "Hunt "+v.ID, tabulate(v))
}

func (ui *UI) handleHuntData(w http.ResponseWriter, r *http.Request) {
	v, err := ui.hunt(r.Context(), r.PathValue("id"), maxShownRows, 0)
	if err != nil {
		var ae *apiError
		if errors.As(err, &ae) {
			http.Error(w, ae.msg, ae.status)
			return
		}
		ui.fail(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(tabulate(v))
}

// allRows pages through every row of a hunt.
func (ui *UI) allRows(w http.ResponseWriter, r *http.Request) *server.HuntView {
	const page = 10000
	v := ui.huntOrFail(w, r, page, 0)
	if v == nil {
		return nil
	}
	for len(v.Rows) < v.RowsTotal {
		more, err := ui.hunt(r.Context(), v.ID, page, len(v.Rows))
		if err != nil {
			ui.fail(w, r, err)
			return nil
		}
		if len(more.Rows) == 0 {
			break
		}
		v.Rows = append(v.Rows, more.Rows...)
	}
	return v
}

func (ui *UI) handleHuntExportCSV(w http.ResponseWriter, r *http.Request) {
	v := ui.allRows(w, r)
	if v == nil {
		return
	}
	d := tabulate(v)
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="hunt-%s.csv"`, safeFile(v.ID)))
	cw := csv.NewWriter(w)
	_ = cw.Write(csvSafe(append([]string{"host_identifier"}, d.Columns...)))
	for i, row := range d.Table {
		_ = cw.Write(csvSafe(append([]string{d.Hostcol[i]}, row...)))
	}
	cw.Flush()
}

// csvSafe defuses cells a spreadsheet would run as a formula (OWASP's CSV
// injection advice): a cell whose first character — after any leading
// spaces and quotes — is = + - @ tab or CR gets a leading ' unless it is a
// plain number such as -1 or +2.5 (the whole cell; "+1+cmd|..." is not).
func csvSafe(row []string) []string {
	out := make([]string, len(row))
	for i, c := range row {
		out[i] = csvCell(c)
	}
	return out
}

// csvCell defuses one cell (see csvSafe).
func csvCell(c string) string {
	t := strings.TrimLeft(c, " \"'")
	if t == "" || !strings.ContainsRune("=+-@\t\r", rune(t[0])) {
		return c
	}
	if t == c {
		if _, err := strconv.ParseFloat(c, 64); err == nil {
			return c
		}
	}
	return "'" + c
}

func (ui *UI) handleHuntExportJSON(w http.ResponseWriter, r *http.Request) {
	v := ui.allRows(w, r)
	if v == nil {
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="hunt-%s.json"`, safeFile(v.ID)))
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

func safeFile(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '-' || r == '_' || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') || (r >= '0' && r <= '9') {
			return r
		}
		return '_'
	}, s)
}
