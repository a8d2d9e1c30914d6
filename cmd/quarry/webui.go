package main

import (
	"net/http"
	"time"

	"github.com/quarry-sec/quarry/attack"
	"github.com/quarry-sec/quarry/fleet/server"
	"github.com/quarry-sec/quarry/fleet/store"
	"github.com/quarry-sec/quarry/fleet/web"
)

// withProcessPack adds the web UI's process-context pack (process trees)
// to the packs the fleet serves from files.
func withProcessPack(packs map[string]server.Pack) map[string]server.Pack {
	out := map[string]server.Pack{web.ProcessPackName: web.ProcessPack()}
	for k, v := range packs {
		out[k] = v
	}
	return out
}

// withWebUI serves the web UI beside the fleet server's APIs: /api/,
// /version and /healthz go to the server, every other path to the UI.
// The UI's coverage layer uses the rules this installation runs (builtin
// and the data directory's custom rules).
func (a *app) withWebUI(api http.Handler, st store.Store, kb *attack.KB, tls bool, interval time.Duration) (http.Handler, error) {
	rules, _, err := a.loadRules(ruleFlags{skipBad: a.skipBadRules}, a.stderr)
	if err != nil {
		return nil, err
	}
	ui, err := web.New(web.Config{Store: st, KB: kb, Rules: rules, API: api, SecureCookies: tls,
		OnlineWindow: max(3*interval, time.Minute),
		OnError: func(r *http.Request, err error) {
			a.log.Error().Err(err).Str("path", r.URL.Path).Msg("web UI")
		}})
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("/api/", api)
	mux.Handle("/version", api)
	mux.Handle("/healthz", api)
	mux.Handle("/", ui)
	return mux, nil
}
