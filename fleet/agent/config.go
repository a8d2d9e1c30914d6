package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"github.com/quarry-sec/quarry/fleet/osqwire"
	"time"
)

const configSetting = "config"

// refreshConfig pulls the config and, when it parses, replaces the schedule
// and saves it for a restart without the server.
func (a *Agent) refreshConfig(ctx context.Context) error {
	var raw json.RawMessage
	if err := a.call(ctx, osqwire.PathConfig, func(k string) any { return osqwire.NodeRequest{NodeKey: k} }, &raw); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	if err := a.applyConfig(ctx, raw); err != nil {
		return err
	}
	if err := a.queue.setSetting(ctx, configSetting, string(raw)); err != nil {
		return fmt.Errorf("config: save: %w", err)
	}
	return nil
}

// restoreConfig applies the last config saved, so the schedule runs (and
// queues its results) even when the server is down at start.
func (a *Agent) restoreConfig(ctx context.Context) error {
	raw, err := a.queue.setting(ctx, configSetting)
	if err != nil || raw == "" {
		return err
	}
	return a.applyConfig(ctx, json.RawMessage(raw))
}

func (a *Agent) applyConfig(ctx context.Context, raw json.RawMessage) error {
	var cfg osqwire.ConfigResponse
	if err := json.Unmarshal(raw, &cfg); err != nil {
		return fmt.Errorf("config: decode: %w", err)
	}
	a.mu.Lock()
	a.applyOptions(cfg.Options)
	js := jobs(cfg, a.cfg.Platform, a.delimiter)
	a.jobs = js
	a.mu.Unlock()
	keep := make(map[string]bool, len(js))
	for _, j := range js {
		keep[j.Name] = true
	}
	return a.queue.forgetStates(ctx, keep)
}

func (a *Agent) configLoop(ctx context.Context) {
	every(ctx, a.period(func(p periods) time.Duration { return p.config }), func(ctx context.Context) {
		if err := a.refreshConfig(ctx); err != nil && ctx.Err() == nil {
			a.report(err)
		}
		a.refreshIntel(ctx)
	})
}

// refreshIntel fetches the fleet's intel sets that changed.
func (a *Agent) refreshIntel(ctx context.Context) {
	n, err := a.syncIntel(ctx)
	a.intelChanges.Add(int64(n))
	if err != nil && ctx.Err() == nil {
		a.report(err)
	}
}

// applyOptions takes the osquery options the agent honours from the
// config: pack_delimiter, and the periods its own Config leaves unset
// (config_refresh, distributed_interval, logger_tls_period, in seconds).
// The caller holds a.mu.
func (a *Agent) applyOptions(opts map[string]any) {
	if d, ok := opts["pack_delimiter"].(string); ok && d != "" {
		a.delimiter = d
	} else {
		a.delimiter = PackDelimiter
	}
	set := func(dst *time.Duration, fixed time.Duration, name string) {
		if fixed > 0 {
			return
		}
		if sec, ok := opts[name].(float64); ok && sec >= 1 && sec <= 86400 {
			*dst = time.Duration(sec) * time.Second
		}
	}
	set(&a.periods.config, a.fixed.config, "config_refresh")
	set(&a.periods.distributed, a.fixed.distributed, "distributed_interval")
	set(&a.periods.log, a.fixed.log, "logger_tls_period")
}
