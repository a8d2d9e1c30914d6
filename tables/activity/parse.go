package activity

import (
	"html"
	"strings"
)

// registryValueEvents are the Sysmon EventTypes that name a value, whose
// TargetObject ends with the value's name.
var registryValueEvents = map[string]bool{"SetValue": true, "DeleteValue": true, "CreateValue": true, "RenameValue": true}

// SplitTargetObject splits a registry event's target into its key and value
// name: for an event on a value (SetValue, DeleteValue…) the value name is
// what follows the last backslash; for an event on a key (CreateKey,
// DeleteKey, RenameKey) the whole target is the key. Security's kernel
// names (\REGISTRY\MACHINE\…, \REGISTRY\USER\…) are given Sysmon's short
// hive names (HKLM\…, HKU\…).
func SplitTargetObject(target, eventType string) (key, value string) {
	target = ShortHive(target)
	if !registryValueEvents[eventType] {
		return target, ""
	}
	i := strings.LastIndexByte(target, '\\')
	if i < 0 {
		return "", target
	}
	return target[:i], target[i+1:]
}

// kernelHives are the registry's kernel names and Sysmon's names for them.
var kernelHives = []struct{ kernel, short string }{
	{`\REGISTRY\MACHINE`, "HKLM"},
	{`\REGISTRY\USER`, "HKU"},
	{`\REGISTRY\A`, "HKA"},
}

// ShortHive turns a kernel registry path (\REGISTRY\MACHINE\SOFTWARE…) into
// Sysmon's form (HKLM\SOFTWARE…); other paths are returned as they are.
func ShortHive(p string) string {
	for _, h := range kernelHives {
		if len(p) >= len(h.kernel) && strings.EqualFold(p[:len(h.kernel)], h.kernel) &&
			(len(p) == len(h.kernel) || p[len(h.kernel)] == '\\') {
			return h.short + p[len(h.kernel):]
		}
	}
	return p
}

// registryActions names Sysmon's registry EventTypes as actions.
var registryActions = map[string]string{
	"CreateKey":   "create_key",
	"DeleteKey":   "delete_key",
	"CreateValue": "create_value",
	"DeleteValue": "delete_value",
	"SetValue":    "set_value",
	"RenameKey":   "rename_key",
	"RenameValue": "rename_value",
}

// TaskCommand returns the first <Exec> action's command and arguments of a
// scheduled task's XML definition (4698's TaskContent), with XML entities
// decoded; empty when the task runs no program.
func TaskCommand(content string) (command, arguments string) {
	exec := between(content, "<Exec>", "</Exec>")
	if exec == "" {
		return "", ""
	}
	return strings.TrimSpace(html.UnescapeString(between(exec, "<Command>", "</Command>"))),
		strings.TrimSpace(html.UnescapeString(between(exec, "<Arguments>", "</Arguments>")))
}

// between returns what lies between the first open and the next close.
func between(s, open, close string) string {
	i := strings.Index(s, open)
	if i < 0 {
		return ""
	}
	s = s[i+len(open):]
	j := strings.Index(s, close)
	if j < 0 {
		return ""
	}
	return s[:j]
}

// KeyValueText returns the value of "name=value" in the text of a classic
// PowerShell event (400, 600, 800: "HostApplication=powershell.exe -c …"
// one pair a line), or, with sep " = ", of a 4103's ContextInfo ("Host
// Application = …"); "" when absent.
func KeyValueText(text, name, sep string) string {
	key := name + sep
	for len(text) > 0 {
		line := text
		if i := strings.IndexAny(text, "\r\n"); i >= 0 {
			line, text = text[:i], text[i+1:]
		} else {
			text = ""
		}
		line = strings.TrimLeft(line, " \t")
		if strings.HasPrefix(line, key) {
			return strings.TrimSpace(line[len(key):])
		}
	}
	return ""
}
