package bench

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/quarry-sec/quarry/telemetry/importers"
)

// The corpus: deterministic Sysmon EventID 1 events in the flat JSON-lines
// shape of the OTRF Security-Datasets (EventData fields at the top level
// beside EventID, Channel, Hostname), mostly benign process creations with
// long command lines, with SigmaHQ's process_creation regression events
// spread evenly through it.

// program is one benign executable and the arguments it is seen with.
type program struct {
	image, desc, product, company string
	args                          []string
}

var programs = []program{
	{`C:\Program Files\Google\Chrome\Application\chrome.exe`, "Google Chrome", "Google Chrome", "Google LLC", []string{
		`--type=renderer`, `--type=utility --utility-sub-type=network.mojom.NetworkService`, `--lang=en-US`,
		`--field-trial-handle=1736,i,16342386553339155383,1484530386411577286,262144`, `--service-sandbox-type=none`,
		`--mojo-platform-channel-handle=2388 /prefetch:8`, `--enable-features=NetworkService,NetworkServiceInProcess`,
		`--user-data-dir="C:\Users\%USER%\AppData\Local\Google\Chrome\User Data"`, `--extension-process --renderer-client-id=47`,
		`--disable-features=CalculateNativeWinOcclusion,SpareRendererForSitePerProcess`, `--time-ticks-at-unix-epoch=-1719238746512345`,
		`--launch-time-ticks=2345678901 --metrics-shmem-handle=2512,i,8093423974563012345,1286543210987654321,2097152`,
	}},
	{`C:\Program Files (x86)\Microsoft\Edge\Application\msedge.exe`, "Microsoft Edge", "Microsoft Edge", "Microsoft Corporation", []string{
		`--type=gpu-process`, `--gpu-preferences=UAAAAAAAAADgAAAEAAAAAAAAAAAAAAAAAABgAAEAAAAAAAAAAAAAAAAAAAACAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA`,
		`--noerrdialogs --webview-exe-name=Teams.exe`, `--field-trial-handle=2044,i,1739817352717216373,9438571302174613570,262144`,
		`--variations-seed-version=20250101-180036.585000`, `--mojo-platform-channel-handle=2160 /prefetch:3`,
	}},
	{`C:\Windows\System32\svchost.exe`, "Host Process for Windows Services", "Microsoft® Windows® Operating System", "Microsoft Corporation", []string{
		`-k netsvcs -p -s Schedule`, `-k LocalServiceNetworkRestricted -p -s lmhosts`, `-k UnistackSvcGroup -s CDPUserSvc`,
		`-k wsappx -p -s AppXSvc`, `-k DcomLaunch -p -s LSM`, `-k LocalSystemNetworkRestricted -p -s SysMain`,
	}},
	{`C:\Windows\System32\WindowsPowerShell\v1.0\powershell.exe`, "Windows PowerShell", "Microsoft® Windows® Operating System", "Microsoft Corporation", []string{
		`-NoLogo -NonInteractive -File C:\ProgramData\Agent\scripts\inventory-collect.ps1 -OutputDirectory C:\ProgramData\Agent\out`,
		`-NoProfile -Command "Get-ChildItem -Path C:\Users\%USER%\Documents\Projects -Recurse -Filter *.csproj | Select-Object -ExpandProperty FullName"`,
		`-File "C:\Program Files\WindowsApps\Microsoft.DesktopAppInstaller\winget-update.ps1" -Scope machine`,
		`-NoProfile -Command "Import-Module C:\Tools\Build\Build.psm1; Invoke-Build -Configuration Release -Verbose"`,
	}},
	{`C:\Windows\System32\cmd.exe`, "Windows Command Processor", "Microsoft® Windows® Operating System", "Microsoft Corporation", []string{
		`/d /s /c "C:\Program Files\nodejs\npm.cmd run build --if-present"`, `/c "C:\Users\%USER%\source\repos\webapp\scripts\prebuild.cmd" --target production`,
		`/c dir /b "C:\Users\%USER%\AppData\Local\Temp\vscode-typescript*"`, `/c git rev-parse --abbrev-ref HEAD`,
		`/c "C:\Program Files\Microsoft Visual Studio\2022\Professional\VC\Auxiliary\Build\vcvarsall.bat" x64`,
	}},
	{`C:\Program Files\Git\cmd\git.exe`, "Git for Windows", "Git", "The Git Development Community", []string{
		`status --porcelain=v2 --branch --untracked-files=all`, `fetch --all --prune --tags --recurse-submodules=on-demand`,
		`-c core.quotepath=false -c color.ui=false log --format=%H%n%aN%n%aE%n%at%n%P%n%D%n%B -n 50 --skip=0`,
		`for-each-ref --format=%(refname)%00%(upstream:short)%00%(objectname)%00%(upstream:track) refs/heads refs/remotes`,
	}},
	{`C:\Program Files\dotnet\dotnet.exe`, ".NET Host", "Microsoft® .NET", "Microsoft Corporation", []string{
		`build C:\Users\%USER%\source\repos\Contoso.Services\Contoso.Services.sln -c Release -p:ContinuousIntegrationBuild=true`,
		`test C:\Users\%USER%\source\repos\Contoso.Services\tests\Contoso.Services.Tests.csproj --no-build --logger trx`,
		`exec "C:\Program Files\dotnet\sdk\8.0.404\MSBuild.dll" -maxcpucount -verbosity:m -restore -consoleloggerparameters:Summary`,
	}},
	{`C:\Program Files\Java\jdk-21\bin\java.exe`, "Java(TM) Platform SE binary", "Java(TM) Platform SE 21", "Oracle Corporation", []string{
		`-Xmx2048m -Dfile.encoding=UTF-8 -Djava.awt.headless=true`,
		`-cp C:\Users\%USER%\.m2\repository\org\springframework\spring-core\6.1.3\spring-core-6.1.3.jar;C:\Users\%USER%\.m2\repository\com\fasterxml\jackson\core\jackson-databind\2.16.1\jackson-databind-2.16.1.jar`,
		`-jar C:\Tools\gradle\lib\gradle-launcher-8.5.jar --daemon --foreground --idle-timeout=10800000`,
	}},
	{`C:\Users\%USER%\AppData\Local\Programs\Microsoft VS Code\Code.exe`, "Visual Studio Code", "Visual Studio Code", "Microsoft Corporation", []string{
		`--type=utility --utility-sub-type=node.mojom.NodeService --lang=en-US --service-sandbox-type=none`,
		`"c:\Users\%USER%\AppData\Local\Programs\Microsoft VS Code\resources\app\extensions\json-language-features\server\dist\node\jsonServerMain" --node-ipc --clientProcessId=10824`,
		`--ms-enable-electron-run-as-node --inspect-port=0 --max-old-space-size=3072`,
	}},
	{`C:\Windows\System32\msiexec.exe`, "Windows® installer", "Windows Installer - Unicode", "Microsoft Corporation", []string{
		`/i "C:\Users\%USER%\Downloads\PowerToysUserSetup-0.87.1-x64.msi" /qn /norestart /l*v C:\Windows\Temp\powertoys-install.log`,
		`/V`, `-Embedding 8D2F1C0A1E3B4F5D6A7B8C9D0E1F2A3B E Global\MSI0000`,
	}},
	{`C:\Windows\System32\conhost.exe`, "Console Window Host", "Microsoft® Windows® Operating System", "Microsoft Corporation", []string{
		`0xffffffff -ForceV1`,
	}},
	{`C:\Windows\System32\taskhostw.exe`, "Host Process for Windows Tasks", "Microsoft® Windows® Operating System", "Microsoft Corporation", []string{
		`{222A245B-E637-4AE9-A93F-A59CA119A75E}`, `Install $(Arg0)`, `KEYROAMING`,
	}},
	{`C:\Program Files\Microsoft Office\root\Office16\OUTLOOK.EXE`, "Microsoft Outlook", "Microsoft Office", "Microsoft Corporation", []string{
		`/recycle`, `-Embedding`, `/select outlook:inbox`,
	}},
	{`C:\Users\%USER%\AppData\Local\Programs\Python\Python312\python.exe`, "Python", "Python", "Python Software Foundation", []string{
		`-m pytest tests\unit -q --maxfail=1 --disable-warnings --junitxml=reports\unit.xml`,
		`C:\Users\%USER%\source\repos\etl\pipelines\nightly_aggregate.py --date 2025-10-24 --output \\fileserver01\reports\daily`,
		`-m pip install --upgrade --requirement requirements-dev.txt --index-url https://pypi.corp.example/simple`,
	}},
}

var (
	parents = []string{
		`C:\Windows\System32\services.exe`, `C:\Windows\explorer.exe`, `C:\Windows\System32\svchost.exe`,
		`C:\Program Files\Google\Chrome\Application\chrome.exe`, `C:\Windows\System32\cmd.exe`,
		`C:\Users\%USER%\AppData\Local\Programs\Microsoft VS Code\Code.exe`, `C:\Program Files\Git\cmd\git.exe`,
	}
	users = []string{"alice", "bob", "carol", "dmitri", "svc_backup"}
	hosts = []string{"WS-0142.corp.example", "WS-0387.corp.example", "LT-1021.corp.example", "SRV-APP-07.corp.example"}
)

// benignEvent returns the fields of one generated benign process creation.
func benignEvent(r *rand.Rand, i int) map[string]any {
	p := programs[r.IntN(len(programs))]
	user := users[r.IntN(len(users))]
	host := hosts[r.IntN(len(hosts))]
	sub := func(s string) string { return strings.ReplaceAll(s, "%USER%", user) }
	image := sub(p.image)
	var cl strings.Builder
	fmt.Fprintf(&cl, `"%s"`, image)
	for n := 2 + r.IntN(8); n > 0; n-- {
		cl.WriteByte(' ')
		cl.WriteString(sub(p.args[r.IntN(len(p.args))]))
	}
	parent := sub(parents[r.IntN(len(parents))])
	if strings.HasSuffix(image, `\svchost.exe`) {
		parent = `C:\Windows\System32\services.exe` // as on a real host
	}
	base := image[strings.LastIndexByte(image, '\\')+1:]
	pid := 1000 + r.IntN(60000)
	ppid := 400 + r.IntN(60000)
	sec := i % 86400
	ts := fmt.Sprintf("2025-10-24 %02d:%02d:%02d.%03d", sec/3600, sec/60%60, sec%60, r.IntN(1000))
	domain := strings.ToUpper(strings.SplitN(host, ".", 2)[0])
	return map[string]any{
		"SourceName": "Microsoft-Windows-Sysmon", "Channel": "Microsoft-Windows-Sysmon/Operational",
		"Hostname": host, "EventID": 1, "Task": "1", "TimeCreated": ts, "UtcTime": ts, "RuleName": "-",
		"ProcessGuid": fmt.Sprintf("{39e4a257-%04x-5f8c-%04x-%012x}", r.IntN(1<<16), r.IntN(1<<16), i),
		"ProcessId":   strconv.Itoa(pid), "Image": image, "FileVersion": "10.0.22621.1 (WinBuild.160101.0800)",
		"Description": p.desc, "Product": p.product, "Company": p.company, "OriginalFileName": strings.ToUpper(base),
		"CommandLine": cl.String(), "CurrentDirectory": `C:\Users\` + user + `\`, "User": domain + `\` + user,
		"LogonGuid": "{39e4a257-f1ac-5f8b-d961-0c0000000000}", "LogonId": fmt.Sprintf("0x%x", 0x3e7+r.IntN(1<<20)),
		"TerminalSessionId": "1", "IntegrityLevel": []string{"Medium", "Medium", "High", "System"}[r.IntN(4)],
		"Hashes": fmt.Sprintf("SHA1=%016X%016X%08X,MD5=%016X%016X,SHA256=%016X%016X%016X%016X,IMPHASH=%016X%016X",
			r.Uint64(), r.Uint64(), r.Uint32(), r.Uint64(), r.Uint64(), r.Uint64(), r.Uint64(), r.Uint64(), r.Uint64(), r.Uint64(), r.Uint64()),
		"ParentProcessGuid": fmt.Sprintf("{39e4a257-d445-5f8c-%04x-000000000700}", r.IntN(1<<16)),
		"ParentProcessId":   strconv.Itoa(ppid), "ParentImage": parent, "ParentCommandLine": `"` + parent + `" `,
		"ParentUser": domain + `\` + user,
	}
}

// RegressionEvents returns the fields of SigmaHQ's Windows process_creation
// regression events (regression_data/rules/windows/process_creation under
// sigmaDir), read through Quarry's importer, in path order.
func RegressionEvents(sigmaDir string) ([]map[string]any, error) {
	files, err := filepath.Glob(filepath.Join(sigmaDir, "regression_data", "rules", "windows", "process_creation", "*", "*.json"))
	if err != nil {
		return nil, fmt.Errorf("regression events: %w", err)
	}
	var out []map[string]any
	for _, f := range files {
		r, _, err := importers.Open(f)
		if err != nil {
			return nil, fmt.Errorf("regression events: %w", err)
		}
		for {
			ev, err := r.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				r.Close()
				return nil, fmt.Errorf("regression events: %w", err)
			}
			if ev.Category != "process_creation" {
				continue
			}
			m := map[string]any{}
			for k, v := range ev.Fields.All() {
				m[k] = v
			}
			m["EventID"] = ev.EventID
			if _, ok := m["Hostname"]; !ok {
				m["Hostname"] = ev.Host
			}
			out = append(out, m)
		}
		r.Close()
	}
	return out, nil
}

// Corpus describes a written corpus.
type Corpus struct {
	Path       string
	Events     int
	Regression int // regression events among them
	Bytes      int64
}

// WriteCorpus writes n events as JSON lines to path: generated benign events
// (seeded, so every run writes the same bytes) with the regression events
// inserted at evenly spaced positions.
func WriteCorpus(path string, n int, regression []map[string]any) (Corpus, error) {
	f, err := os.Create(path)
	if err != nil {
		return Corpus{}, fmt.Errorf("write corpus: %w", err)
	}
	defer f.Close()
	w := bufio.NewWriterSize(f, 1<<20)
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	r := rand.New(rand.NewPCG(2026, 1183))
	c := Corpus{Path: path, Events: n}
	every := n + 1
	if len(regression) > 0 {
		every = max(1, n/len(regression))
	}
	for i := range n {
		var ev map[string]any
		if i%every == every/2 && c.Regression < len(regression) {
			ev = regression[c.Regression]
			c.Regression++
		} else {
			ev = benignEvent(r, i)
		}
		buf.Reset()
		if err := enc.Encode(ev); err != nil {
			return Corpus{}, fmt.Errorf("write corpus: event %d: %w", i, err)
		}
		c.Bytes += int64(buf.Len())
		if _, err := w.Write(buf.Bytes()); err != nil {
			return Corpus{}, fmt.Errorf("write corpus: %w", err)
		}
	}
	if err := w.Flush(); err != nil {
		return Corpus{}, fmt.Errorf("write corpus: %w", err)
	}
	if err := f.Close(); err != nil {
		return Corpus{}, fmt.Errorf("write corpus: %w", err)
	}
	return c, nil
}
