// Package evjson reads Windows events rendered as JSON in the nested
// {"Event": {"System": {…}, "EventData": {…}}} form (the form of SigmaHQ's
// regression data), one or more concatenated objects per file, into
// telemetry.Events: Fields hold EventData plus the System fields EventID,
// Channel, Computer, Provider_Name and EventRecordID.
//
// It is a stop-gap for the regression runner until telemetry/importers reads
// this form.
package evjson

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/quarry-sec/quarry/telemetry"
)

// ReadFile reads every event of a file.
func ReadFile(path string) ([]telemetry.Event, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read events: %w", err)
	}
	defer f.Close()
	return Read(path, f)
}

// Read reads every event from r; name is used in errors.
func Read(name string, r io.Reader) ([]telemetry.Event, error) {
	dec := json.NewDecoder(r)
	dec.UseNumber()
	var out []telemetry.Event
	for i := 1; ; i++ {
		var doc map[string]any
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return out, fmt.Errorf("%s: event %d (byte %d): %w", name, i, dec.InputOffset(), err)
		}
		ev, err := convert(doc)
		if err != nil {
			return out, fmt.Errorf("%s: event %d: %w", name, i, err)
		}
		out = append(out, ev)
	}
}

func convert(doc map[string]any) (telemetry.Event, error) {
	evm, ok := doc["Event"].(map[string]any)
	if !ok {
		return telemetry.Event{}, fmt.Errorf("field Event: missing or not an object")
	}
	ev := telemetry.NewEvent(telemetry.KindOther, "")
	fields := map[string]string{}
	if data, ok := evm["EventData"].(map[string]any); ok {
		for k, v := range data {
			if s, ok := scalar(v); ok {
				fields[k] = s
			}
		}
	}
	sys, _ := evm["System"].(map[string]any)
	for k, v := range sys {
		switch k {
		case "Provider":
			if m, ok := v.(map[string]any); ok {
				if a, ok := m["#attributes"].(map[string]any); ok {
					if s, ok := scalar(a["Name"]); ok {
						fields["Provider_Name"] = s
					}
				}
			}
		case "TimeCreated":
			if m, ok := v.(map[string]any); ok {
				if a, ok := m["#attributes"].(map[string]any); ok {
					if s, ok := scalar(a["SystemTime"]); ok {
						if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
							ev.Time = t.UTC()
						}
					}
				}
			}
		default:
			if s, ok := scalar(v); ok {
				fields[k] = s
			}
		}
	}
	ev.Fields = telemetry.FieldsFromMap(fields)
	ev.Channel = ev.Fields.Value("Channel")
	ev.Host = ev.Fields.Value("Computer")
	if id, err := strconv.Atoi(ev.Fields.Value("EventID")); err == nil {
		ev.EventID = id
	}
	if n, err := strconv.ParseInt(ev.Fields.Value("EventRecordID"), 10, 64); err == nil {
		ev.RecordID = n
	}
	switch {
	case strings.EqualFold(ev.Channel, "Microsoft-Windows-Sysmon/Operational"):
		ev.Source = telemetry.SourceSysmon
	case strings.EqualFold(ev.Channel, "Linux-Sysmon/Operational"):
		ev.Source = telemetry.SourceSysmonLinux
	case strings.EqualFold(ev.Channel, "Security") && ev.EventID == 4688:
		ev.Source = telemetry.SourceSecurity
	}
	if (ev.Source == telemetry.SourceSysmon || ev.Source == telemetry.SourceSysmonLinux) && ev.EventID == 1 ||
		ev.Source == telemetry.SourceSecurity {
		ev.Kind = telemetry.KindExec
	}
	return ev, nil
}

func scalar(v any) (string, bool) {
	switch x := v.(type) {
	case string:
		return x, true
	case json.Number:
		return x.String(), true
	case bool:
		return strconv.FormatBool(x), true
	case nil:
		return "", true
	}
	return "", false
}
