package host

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestUsersName: names come from the passwd file, malformed lines are
// skipped, the first name of a uid wins, unknown and negative uids give "",
// and a user added to the file is found once the file changes.
func TestUsersName(t *testing.T) {
	path := filepath.Join(t.TempDir(), "passwd")
	write := func(s string, mod time.Time) {
		t.Helper()
		if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(path, mod, mod); err != nil {
			t.Fatal(err)
		}
	}
	t0 := time.Date(2026, 12, 6, 9, 0, 0, 0, time.UTC)
	write("root:x:0:0:root:/root:/bin/bash\n# comment\nbroken line\nwww-data:x:33:33::/var/www:/usr/sbin/nologin\ntoor:x:0:0::/root:/bin/sh\nbad:x:notanumber:0::/:/bin/sh\n", t0)
	u := NewUsers(path)
	for uid, want := range map[int64]string{0: "root", 33: "www-data", 1000: "", -1: ""} {
		if got := u.Name(uid); got != want {
			t.Errorf("Name(%d) = %q, want %q", uid, got, want)
		}
	}
	write("root:x:0:0:root:/root:/bin/bash\nwww-data:x:33:33::/var/www:/usr/sbin/nologin\nmallory:x:1000:1000::/home/mallory:/bin/bash\n", t0.Add(time.Minute))
	u.checked = time.Time{} // past the recheck interval
	if got := u.Name(1000); got != "mallory" {
		t.Errorf("Name(1000) after the user was added = %q, want mallory", got)
	}
}
