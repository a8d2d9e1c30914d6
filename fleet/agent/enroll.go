package agent

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/quarry-sec/quarry/fleet/osqwire"
)

// ErrEnrollRefused is returned when the server refuses the enroll secret.
var ErrEnrollRefused = errors.New("enrollment refused")

// nodeKeySetting names the saved node key of a fleet URL.
func (a *Agent) nodeKeySetting() string { return "node_key " + a.cfg.FleetURL }

// enrollUntil takes the saved node key, or enrolls, retrying with backoff
// (up to a minute between tries) until the server accepts or ctx ends.
func (a *Agent) enrollUntil(ctx context.Context) error {
	if key, err := a.queue.setting(ctx, a.nodeKeySetting()); err != nil {
		a.report(err)
	} else if key != "" {
		a.setNodeKey(key)
		return nil
	}
	backoff := time.Second
	for {
		err := a.enroll(ctx, "")
		if err == nil {
			return nil
		}
		a.report(err)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, time.Minute)
	}
}

// enroll asks the server for a node key. stale is the key the caller found
// invalid: if another goroutine has enrolled since, its key is kept.
func (a *Agent) enroll(ctx context.Context, stale string) error {
	a.enrollMu.Lock()
	defer a.enrollMu.Unlock()
	if cur := a.key(); cur != "" && cur != stale {
		return nil
	}
	req := osqwire.EnrollRequest{
		EnrollSecret:   a.cfg.EnrollSecret,
		HostIdentifier: a.cfg.HostIdentifier,
		PlatformType:   platformType(a.cfg.Platform),
		HostDetails:    hostDetails(&a.cfg, a.instanceID, a.started),
	}
	var resp osqwire.EnrollResponse
	if err := post(ctx, a.client, a.cfg.FleetURL, osqwire.PathEnroll, req, &resp); err != nil {
		if errors.Is(err, ErrNodeInvalid) {
			return fmt.Errorf("enroll: %w (check the enroll secret)", ErrEnrollRefused)
		}
		return fmt.Errorf("enroll: %w", err)
	}
	if resp.NodeKey == "" {
		return fmt.Errorf("enroll: %w: no node key in the answer", ErrEnrollRefused)
	}
	a.setNodeKey(resp.NodeKey)
	a.enrollments.Add(1)
	if err := a.queue.setSetting(ctx, a.nodeKeySetting(), resp.NodeKey); err != nil {
		a.report(err)
	}
	return nil
}

func (a *Agent) key() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.nodeKey
}

func (a *Agent) setNodeKey(k string) {
	a.mu.Lock()
	a.nodeKey = k
	a.mu.Unlock()
}

// call posts a node-keyed request built by body(nodeKey); on node_invalid it
// enrolls again and retries once.
func (a *Agent) call(ctx context.Context, path string, body func(nodeKey string) any, out any) error {
	key := a.key()
	err := post(ctx, a.client, a.cfg.FleetURL, path, body(key), out)
	if !errors.Is(err, ErrNodeInvalid) {
		return err
	}
	if err := a.enroll(ctx, key); err != nil {
		return fmt.Errorf("%s: node invalid, re-enroll: %w", path, err)
	}
	return post(ctx, a.client, a.cfg.FleetURL, path, body(a.key()), out)
}

// ReadEnrollSecret reads an enroll secret file (osquery's
// --enroll_secret_path), trimmed of surrounding space; an empty file is an
// error naming it.
func ReadEnrollSecret(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("enroll secret: %w", err)
	}
	s := strings.TrimSpace(string(b))
	if s == "" {
		return "", fmt.Errorf("enroll secret: %s is empty", path)
	}
	return s, nil
}
