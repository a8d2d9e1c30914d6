package web_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// TestIntelPageInBrowser uploads an intel set through the Intel page's form
// in headless Chromium, sees it listed, and removes it.
func TestIntelPageInBrowser(t *testing.T) {
	ctx := browser(t)
	f := newFleet(t)
	base := f.srv.URL
	file := filepath.Join(t.TempDir(), "c2-week.txt")
	if err := os.WriteFile(file, []byte("# this week's C2\n198.51.100.7\nhxxp://evil[.]example/a.txt\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	step(t, ctx, "sign in",
		chromedp.Navigate(base+"/intel"),
		chromedp.WaitVisible(chromedp.CSS("#token")),
		chromedp.SendKeys(chromedp.CSS("#token"), f.token),
		chromedp.Click(chromedp.CSS("#signin")),
		chromedp.WaitVisible(chromedp.CSS("#intel-upload")),
	)
	step(t, ctx, "upload",
		chromedp.SetUploadFiles(chromedp.CSS(`#intel-upload input[name="file"]`), []string{file}),
		chromedp.SendKeys(chromedp.CSS(`#intel-upload input[name="confidence"]`), "70"),
		chromedp.Click(chromedp.CSS(`#intel-upload button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.CSS("#intel-uploaded")),
	)
	msg := eval[string](t, ctx, `document.getElementById('intel-uploaded').textContent`)
	if !strings.HasPrefix(msg, "c2-week: 2 indicator(s) (plain)") {
		t.Errorf("upload message %q", msg)
	}
	rows := eval[[]string](t, ctx, `Array.from(document.querySelectorAll('#intel-sets tbody tr td:first-child')).map(td => td.textContent)`)
	if strings.Join(rows, ",") != "c2-week" {
		t.Errorf("listed sets %q", rows)
	}
	noHorizontalScroll(t, ctx, "intel")
	screenshot(t, ctx, filepath.Join(artifacts(t), "intel.png"), "")
	step(t, ctx, "remove",
		chromedp.Click(chromedp.CSS(`#intel-sets button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.CSS("#intel-removed")), // not p.ok: the upload message is one too
	)
	if sets, err := f.st.IntelSets(context.Background()); err != nil || len(sets) != 0 {
		t.Errorf("after Remove: %+v, %v", sets, err)
	}
}
