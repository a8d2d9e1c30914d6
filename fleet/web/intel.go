package web

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/quarry-sec/quarry/detections/intel"
	"github.com/quarry-sec/quarry/fleet/server"
	"github.com/quarry-sec/quarry/fleet/store"
)

// intelView is the intel page: the sets the fleet distributes, the upload
// form (kept as filled after a refused upload) and what the last action did.
type intelView struct {
	Sets     []store.IntelSet
	F        intelForm
	Error    string
	Uploaded *server.IntelUploaded
	Removed  string
}

type intelForm struct {
	Source, Format, Confidence, TTL string
}

// maxIntelUpload bounds an uploaded file read by the page (the API applies
// its own body limit after).
const maxIntelUpload = 256 << 20

func (ui *UI) handleIntelPage(w http.ResponseWriter, r *http.Request) {
	ui.renderIntel(w, r, intelView{Removed: r.URL.Query().Get("removed")})
}

func (ui *UI) renderIntel(w http.ResponseWriter, r *http.Request, v intelView) {
	sets, err := ui.cfg.Store.IntelSets(r.Context())
	if err != nil {
		ui.fail(w, r, err)
		return
	}
	v.Sets = sets
	ui.render(w, r, "intel", "Threat intelligence", v)
}

// handleIntelUpload stores an uploaded set through the analyst API
// (POST /api/v1/intel), as the API would: the same checks, the same errors.
func (ui *UI) handleIntelUpload(w http.ResponseWriter, r *http.Request) {
	f := intelForm{Source: strings.TrimSpace(r.PostFormValue("source")), Format: r.PostFormValue("format"),
		Confidence: strings.TrimSpace(r.PostFormValue("confidence")), TTL: strings.TrimSpace(r.PostFormValue("ttl"))}
	refuse := func(msg string) {
		w.WriteHeader(http.StatusBadRequest)
		ui.renderIntel(w, r, intelView{F: f, Error: msg})
	}
	file, hdr, err := r.FormFile("file")
	if err != nil {
		refuse("choose a file: a STIX 2.1 bundle, a MISP event export or a list of indicators")
		return
	}
	defer file.Close()
	data, err := io.ReadAll(io.LimitReader(file, maxIntelUpload+1))
	if err != nil {
		ui.fail(w, r, fmt.Errorf("web: read upload: %w", err))
		return
	}
	if len(data) > maxIntelUpload {
		refuse(fmt.Sprintf("%s is larger than %d MiB", hdr.Filename, maxIntelUpload>>20))
		return
	}
	if f.Source == "" {
		// The file's name without its extension, as quarry intel add does.
		f.Source = intel.SourceOf(hdr.Filename)
	}
	q := url.Values{"source": {f.Source}}
	if f.Format != "" {
		q.Set("format", f.Format)
	}
	if f.Confidence != "" {
		if _, err := strconv.Atoi(f.Confidence); err != nil {
			refuse(fmt.Sprintf("confidence %q: want 0-100", f.Confidence))
			return
		}
		q.Set("confidence", f.Confidence)
	}
	if f.TTL != "" {
		q.Set("ttl", f.TTL)
	}
	var up server.IntelUploaded
	_, err = ui.callAPI(r.Context(), http.MethodPost, "/api/v1/intel?"+q.Encode(), data, &up)
	var ae *apiError
	if errors.As(err, &ae) && ae.status < 500 {
		refuse(ae.msg)
		return
	}
	if err != nil {
		ui.fail(w, r, err)
		return
	}
	ui.renderIntel(w, r, intelView{Uploaded: &up})
}

func (ui *UI) handleIntelDelete(w http.ResponseWriter, r *http.Request) {
	source := r.PathValue("source")
	_, err := ui.callAPI(r.Context(), http.MethodDelete, "/api/v1/intel/"+url.PathEscape(source), nil, nil)
	var ae *apiError
	if errors.As(err, &ae) && ae.status < 500 {
		w.WriteHeader(ae.status)
		ui.renderIntel(w, r, intelView{Error: ae.msg})
		return
	}
	if err != nil {
		ui.fail(w, r, err)
		return
	}
	http.Redirect(w, r, "/intel?removed="+url.QueryEscape(source), http.StatusSeeOther)
}
