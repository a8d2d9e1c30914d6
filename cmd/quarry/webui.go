package main

import (
	"crypto/hmac"
	"crypto/sha256"
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
// The session key is derived from the enroll secret, so replicas sharing
// the secret (and the database) read each other's session cookies.
func (a *app) withWebUI(api http.Handler, st store.Store, kb *attack.KB, tls bool, interval time.Duration, secret string) (http.Handler, error) {
	rules, _, err := a.loadRules(ruleFlags{skipBad: a.skipBadRules}, a.stderr)
	if err != nil {
		return nil, err
	}
	ui, err := web.New(web.Config{Store: st, KB: kb, Rules: rules, API: api, SecureCookies: tls,
		SessionKey:   sessionKey(secret),
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

// sessionKey derives the web UI's session-sealing key from the fleet's
// enroll secret (HMAC-SHA256 under a fixed label): the secret itself never
// seals anything.
func sessionKey(secret string) []byte {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte("quarry web session key v1"))
	return m.Sum(nil)
}
