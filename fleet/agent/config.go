package agent

import (
	"context"
	"encoding/json"
	"fmt"
)

const configSetting = "config"

// refreshConfig pulls the config and, when it parses, replaces the schedule
// and saves it for a restart without the server.
func (a *Agent) refreshConfig(ctx context.Context) error {
	var raw json.RawMessage
	if err := a.call(ctx, PathConfig, func(k string) any { return NodeRequest{NodeKey: k} }, &raw); err != nil {
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
	var cfg ConfigResponse
	if err := json.Unmarshal(raw, &cfg); err != nil {
		return fmt.Errorf("config: decode: %w", err)
	}
	js := jobs(cfg, a.cfg.Platform)
	keep := make(map[string]bool, len(js))
	for _, j := range js {
		keep[j.Name] = true
	}
	a.mu.Lock()
	a.jobs = js
	a.mu.Unlock()
	return a.queue.forgetStates(ctx, keep)
}

func (a *Agent) configLoop(ctx context.Context) {
	every(ctx, a.cfg.ConfigInterval, func(ctx context.Context) {
		if err := a.refreshConfig(ctx); err != nil && ctx.Err() == nil {
			a.report(err)
		}
	})
}
