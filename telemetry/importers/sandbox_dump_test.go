package importers

import (
	"fmt"
	"testing"
)

func TestSandboxDump(t *testing.T) {
	for _, f := range []string{"cape_report.json", "cuckoo_report.json"} {
		r, format, err := Open("testdata/sandbox/" + f)
		if err != nil {
			t.Fatal(err)
		}
		evs, errs := readAll(t, r)
		fmt.Println(f, format, len(evs), errs)
		for _, e := range evs {
			fmt.Println(e.Time.Format("15:04:05.000"), e.Kind, e.Category, e.PID, e.Path, e.ProcessGUID, e.ParentGUID, e.Fields.List())
		}
		rep := SandboxReportOf(r)
		fmt.Printf("%+v\n", rep.Run)
		for _, s := range rep.Signatures {
			fmt.Printf("%+v\n", s)
		}
		run := rep.Finish(nil, nil, nil, nil)
		fmt.Println(string(run.Report))
		r.Close()
	}
}
