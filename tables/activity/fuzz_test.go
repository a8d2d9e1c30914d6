package activity

import (
	"strings"
	"testing"
)

func FuzzRenderCodes(f *testing.F) {
	for _, s := range []string{"%%4417\n\t\t\t\t%%4418\n\t\t\t\t", "%%1936", "%%", "%%%%1537", "-", "%%99999999999999999999", "a %%4484 b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out := RenderCodes(s)
		if !strings.Contains(s, "%%") && out != strings.TrimSpace(s) {
			t.Fatalf("text without codes changed: %q -> %q", s, out)
		}
		for _, part := range strings.Split(out, ", ") {
			if part == "%%4417" {
				t.Fatalf("a known code left unrendered: %q -> %q", s, out)
			}
		}
	})
}

func TestRenderCodes(t *testing.T) {
	for in, want := range map[string]string{
		"%%4417\n\t\t\t\t%%4418\n\t\t\t\t": "WriteData (or AddFile), AppendData (or AddSubdirectory or CreatePipeInstance)",
		"%%1936":                           "TokenElevationTypeDefault (1)",
		"%%1537%%1538":                     "DELETE, READ_CONTROL",
		"%%1":                              "%%1",
		"-":                                "-",
	} {
		if got := RenderCodes(in); got != want {
			t.Errorf("RenderCodes(%q) = %q, want %q", in, got, want)
		}
	}
}

func FuzzSplitTargetObject(f *testing.F) {
	f.Add(`HKLM\SOFTWARE\Run\x`, "SetValue")
	f.Add(`\REGISTRY\MACHINE\SYSTEM`, "CreateKey")
	f.Add(`\REGISTRY\USER`, "DeleteValue")
	f.Add(``, "SetValue")
	f.Fuzz(func(t *testing.T, target, typ string) {
		key, value := SplitTargetObject(target, typ)
		short := ShortHive(target)
		switch {
		case !registryValueEvents[typ]:
			if key != short || value != "" {
				t.Fatalf("key event %q: %q %q", target, key, value)
			}
		case strings.Contains(short, `\`):
			if key+`\`+value != short {
				t.Fatalf("value event %q: key %q value %q do not rejoin to %q", target, key, value, short)
			}
		default:
			if key != "" || value != short {
				t.Fatalf("value event %q without a key: %q %q", target, key, value)
			}
		}
	})
}

func TestSplitTargetObject(t *testing.T) {
	k, v := SplitTargetObject(`\REGISTRY\MACHINE\SOFTWARE\Microsoft\Windows\CurrentVersion\Run\evil`, "SetValue")
	if k != `HKLM\SOFTWARE\Microsoft\Windows\CurrentVersion\Run` || v != "evil" {
		t.Errorf("got %q %q", k, v)
	}
	if k, v := SplitTargetObject(`\REGISTRY\MACHINEX\a`, "CreateKey"); k != `\REGISTRY\MACHINEX\a` || v != "" {
		t.Errorf("a longer hive name is not a hive: %q %q", k, v)
	}
}

func FuzzTaskCommand(f *testing.F) {
	f.Add("<Task><Actions><Exec><Command>cmd.exe</Command><Arguments>/c &amp; x</Arguments></Exec></Actions></Task>")
	f.Add("<Exec><Command>")
	f.Add("<Exec></Exec>")
	f.Fuzz(func(t *testing.T, content string) {
		c, a := TaskCommand(content)
		if !strings.Contains(content, "<Exec>") && (c != "" || a != "") {
			t.Fatalf("a task without Exec gave %q %q", c, a)
		}
	})
}

func FuzzKeyValueText(f *testing.F) {
	f.Add("\tNewEngineState=Available\r\n\tHostApplication=powershell.exe -c x\r\n", "HostApplication", "=")
	f.Add("Host Application = pwsh\n", "Host Application", " = ")
	f.Fuzz(func(t *testing.T, text, name, sep string) {
		v := KeyValueText(text, name, sep)
		if v != "" && !strings.Contains(text, v) {
			t.Fatalf("value %q not in the text", v)
		}
	})
}

// FuzzScriptAssembler feeds parts in the order the bytes give: a block
// completes exactly when every part 1..total has come, with the parts
// joined in number order whatever order they came in.
func FuzzScriptAssembler(f *testing.F) {
	f.Add([]byte{3, 2, 1, 3}, uint8(3))
	f.Add([]byte{1, 1, 0, 9}, uint8(2))
	f.Add([]byte{}, uint8(0))
	f.Fuzz(func(t *testing.T, order []byte, total uint8) {
		asm := newScriptAssembler()
		tot := int(total%8) + 1
		seen := map[int]bool{}
		done := false
		for _, b := range order {
			n := int(b % 10)
			text, complete := asm.add("id", n, tot, strings.Repeat(string(rune('a'+n)), n))
			if n >= 1 && n <= tot {
				seen[n] = true
			}
			if complete {
				if len(seen) != tot {
					t.Fatalf("complete with %d of %d parts", len(seen), tot)
				}
				var want strings.Builder
				for i := 1; i <= tot; i++ {
					want.WriteString(strings.Repeat(string(rune('a'+i)), i))
				}
				if text != want.String() {
					t.Fatalf("joined %q, want %q", text, want.String())
				}
				done = true
				seen = map[int]bool{}
			}
		}
		if !done && len(seen) > 0 && asm.pending() != 1 {
			t.Fatalf("%d pending blocks, want 1", asm.pending())
		}
		_ = asm.rest()
		if asm.pending() != 0 {
			t.Fatal("rest left blocks")
		}
	})
}
