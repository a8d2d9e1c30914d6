package detections

import (
	"fmt"
	"io/fs"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"

	"github.com/quarry-sec/quarry/detections/internal/evjson"
	"github.com/quarry-sec/quarry/telemetry"
)

// A deterministic corpus of realistic Sysmon EventID 1 events: mostly benign
// Windows process creations with long command lines.

var (
	corpusImages = []string{
		`C:\Windows\System32\svchost.exe`, `C:\Program Files\Google\Chrome\Application\chrome.exe`,
		`C:\Windows\System32\conhost.exe`, `C:\Windows\System32\WindowsPowerShell\v1.0\powershell.exe`,
		`C:\Windows\System32\cmd.exe`, `C:\Program Files\Microsoft Office\root\Office16\OUTLOOK.EXE`,
		`C:\Windows\System32\rundll32.exe`, `C:\Windows\System32\msiexec.exe`, `C:\Windows\explorer.exe`,
		`C:\Program Files (x86)\Microsoft\Edge\Application\msedge.exe`, `C:\Windows\System32\taskhostw.exe`,
		`C:\Program Files\Git\cmd\git.exe`, `C:\Users\alice\AppData\Local\Programs\Microsoft VS Code\Code.exe`,
		`C:\Windows\System32\wbem\WmiPrvSE.exe`, `C:\Windows\System32\SearchProtocolHost.exe`,
		`C:\Program Files\dotnet\dotnet.exe`, `C:\Windows\System32\backgroundTaskHost.exe`,
	}
	corpusParents = []string{
		`C:\Windows\System32\services.exe`, `C:\Windows\explorer.exe`, `C:\Windows\System32\svchost.exe`,
		`C:\Program Files\Google\Chrome\Application\chrome.exe`, `C:\Windows\System32\cmd.exe`,
		`C:\Program Files\Microsoft VS Code\Code.exe`, `C:\Windows\System32\userinit.exe`,
	}
	corpusArgs = []string{
		`--type=renderer`, `--field-trial-handle=1736,i,16342386553339155383,1484530386411577286,262144`,
		`--lang=en-US`, `--service-sandbox-type=none`, `--mojo-platform-channel-handle=2388`,
		`/prefetch:8`, `-k netsvcs -p -s Schedule`, `-NoProfile -ExecutionPolicy Bypass -File C:\ProgramData\agent\inventory.ps1`,
		`/c "C:\Program Files\nodejs\npm.cmd" run build --if-present`, `status --porcelain=v2 --branch`,
		`--enable-features=NetworkService,NetworkServiceInProcess`, `C:\Windows\System32\shell32.dll,SHCreateLocalServerRunDll {9aa46009-3ce0-458a-a354-715610a075e6}`,
		`/i "C:\Users\alice\Downloads\setup-x64.msi" /qn /norestart`, `-Embedding`, `--disable-gpu-sandbox --no-sandbox`,
		`--user-data-dir="C:\Users\alice\AppData\Local\Google\Chrome\User Data"`, `--extension-process --renderer-client-id=47`,
		`build src\Quarry.sln -c Release -p:ContinuousIntegrationBuild=true`, `0xffffffff -ForceV1`,
	}
	corpusUsers = []string{`CORP\alice`, `CORP\bob`, `NT AUTHORITY\SYSTEM`, `NT AUTHORITY\LOCAL SERVICE`}
)

func corpusEvent(r *rand.Rand, i int) *telemetry.Event {
	img := corpusImages[r.IntN(len(corpusImages))]
	par := corpusParents[r.IntN(len(corpusParents))]
	var cl strings.Builder
	fmt.Fprintf(&cl, `"%s"`, img)
	for n := 4 + r.IntN(14); n > 0; n-- {
		cl.WriteByte(' ')
		cl.WriteString(corpusArgs[r.IntN(len(corpusArgs))])
	}
	base := img[strings.LastIndexByte(img, '\\')+1:]
	f := map[string]string{
		"RuleName": "-", "UtcTime": "2025-10-24 23:43:34.136", "ProcessGuid": fmt.Sprintf("{0197231E-C424-69E1-C922-%012X}", i),
		"ProcessId": fmt.Sprint(1000 + r.IntN(60000)), "Image": img, "FileVersion": "10.0.22621.1 (WinBuild.160101.0800)",
		"Description": strings.TrimSuffix(base, ".exe") + " host", "Product": "Microsoft® Windows® Operating System",
		"Company": "Microsoft Corporation", "OriginalFileName": base, "CommandLine": cl.String(),
		"CurrentDirectory": `C:\Users\alice\`, "User": corpusUsers[r.IntN(len(corpusUsers))],
		"LogonGuid": "{0197231E-BA0F-69E1-E703-050000000000}", "LogonId": "0x503e7", "TerminalSessionId": "1",
		"IntegrityLevel": "Medium", "Hashes": fmt.Sprintf("SHA1=%040X,MD5=%032X,SHA256=%064X,IMPHASH=%032X", r.Uint64(), r.Uint64(), r.Uint64(), r.Uint64()),
		"ParentProcessGuid": "{0197231E-BA10-69E1-1000-000000000800}", "ParentProcessId": fmt.Sprint(r.IntN(60000)),
		"ParentImage": par, "ParentCommandLine": `"` + par + `" --parent`, "ParentUser": `CORP\alice`,
		"EventID": "1", "Channel": "Microsoft-Windows-Sysmon/Operational", "Computer": "ws-042.corp.example",
		"Provider_Name": "Microsoft-Windows-Sysmon",
	}
	ev := telemetry.NewEvent(telemetry.KindExec, telemetry.SourceSysmon)
	ev.EventID, ev.Channel, ev.Host, ev.Fields = 1, f["Channel"], f["Computer"], telemetry.FieldsFromMap(f)
	return &ev
}

// regressionEvents returns every event of the SigmaHQ regression data,
// optionally only Sysmon process creations.
func regressionEvents(tb testing.TB, onlyEID1 bool) []*telemetry.Event {
	dir := filepath.Join(sigmaDir(tb), "regression_data")
	var out []*telemetry.Event
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".json") {
			return err
		}
		evs, err := evjson.ReadFile(p)
		if err != nil {
			tb.Fatal(err)
		}
		for i := range evs {
			if !onlyEID1 || evs[i].EventID == 1 {
				out = append(out, &evs[i])
			}
		}
		return nil
	})
	return out
}

// corpus returns n generated events followed by the regression events.
func corpus(tb testing.TB, n int, onlyEID1 bool) []*telemetry.Event {
	r := rand.New(rand.NewPCG(1, 2))
	var out []*telemetry.Event
	for i := 0; i < n; i++ {
		out = append(out, corpusEvent(r, i))
	}
	return append(out, regressionEvents(tb, onlyEID1)...)
}
