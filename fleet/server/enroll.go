package server

import (
	"crypto/subtle"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/quarry-sec/quarry/fleet/osqwire"
	"github.com/quarry-sec/quarry/fleet/store"
)

func (s *Server) handleEnroll(w http.ResponseWriter, r *http.Request) {
	var req osqwire.EnrollRequest
	data, release, err := readBodyIn(w, r, s.cfg.MaxEnrollBodyBytes, s.bodies)
	defer release()
	if err == nil {
		err = unmarshalBody(data, &req)
	}
	if err != nil {
		s.fail(w, r, err, map[string]any{"node_invalid": true})
		return
	}
	if subtle.ConstantTimeCompare([]byte(req.EnrollSecret), []byte(s.cfg.EnrollSecret)) != 1 {
		s.fail(w, r, errorf(http.StatusUnauthorized, "invalid enroll secret"), map[string]any{"node_invalid": true})
		return
	}
	ident := strings.TrimSpace(req.HostIdentifier)
	if ident == "" {
		s.fail(w, r, errorf(http.StatusBadRequest, "missing host_identifier"), map[string]any{"node_invalid": true})
		return
	}
	if !validText(ident) {
		s.fail(w, r, errorf(http.StatusBadRequest, "host_identifier holds a NUL byte or invalid UTF-8"), map[string]any{"node_invalid": true})
		return
	}
	key, err := newNodeKey()
	if err != nil {
		s.fail(w, r, err, nil)
		return
	}
	d := req.HostDetails
	h := &store.Host{
		NodeKey:        key,
		HostIdentifier: limitString(ident, 255),
		Hostname:       limitString(d["system_info"]["hostname"], 255),
		Platform:       limitString(d["os_version"]["platform"], 64),
		OSVersion:      limitString(osVersion(d["os_version"]), 128),
		OsqueryVersion: limitString(d["osquery_info"]["version"], 64),
		QuarryVersion:  limitString(firstNonEmpty(d["quarry_info"]["version"], req.QuarryVersion), 64),
		EnrolledAt:     s.cfg.Now(),
	}
	if h.Hostname == "" {
		h.Hostname = h.HostIdentifier
	}
	h.Family = family(h.Platform, d["os_version"]["platform_like"], req.PlatformType)
	cleanStrings(h)
	watch := s.watching()
	enrolledAt := h.EnrolledAt
	if err := s.cfg.Store.EnrollHost(r.Context(), h); err != nil {
		s.fail(w, r, err, nil)
		return
	}
	s.storeOK()
	s.nodes.forgetHost(h.ID) // its previous key, if any, stops working here now
	s.seenAt(h.ID, enrolledAt)
	// The host's next request (its config) finds its new key cached, as
	// the store holds it (NodeKey hashed).
	cached := *h
	cached.NodeKey = store.HashNodeKey(key)
	s.nodes.putFor(key, &cached, s.cfg.Now(), s.nodeTTL(watch))
	// A host enrolled anew keeps the enrollment time given (enrolling
	// again keeps the first): it has no schema report in the store.
	if h.EnrolledAt.Equal(enrolledAt.Truncate(time.Millisecond)) {
		s.setSchemaState(h.ID, schemaState{version: schemaVersion(h), fresh: true})
	}
	writeJSON(w, http.StatusOK, osqwire.EnrollResponse{NodeKey: key})
}

// osVersion is "name version" of osquery's os_version row.
func osVersion(v osqwire.Details) string {
	name, ver := v["name"], v["version"]
	return strings.TrimSpace(name + " " + ver)
}

// Platform families, as pack platform filters and hunt targets name them.
const (
	FamilyLinux   = "linux"
	FamilyDarwin  = "darwin"
	FamilyWindows = "windows"
	FamilyFreeBSD = "freebsd"
)

// osquery's platform_type bits (osquery/core/system.h PlatformType).
const (
	ptWindows = 0x02
	ptLinux   = 0x08
	ptDarwin  = 0x10
	ptFreeBSD = 0x20
)

// family is the platform family of a host from os_version.platform,
// platform_like and osquery's platform_type bitmask, "" when unknown.
func family(platform, like, platformType string) string {
	for _, p := range []string{platform, like} {
		switch p = strings.ToLower(p); {
		case p == "":
		case p == "darwin" || p == "macos":
			return FamilyDarwin
		case p == "windows":
			return FamilyWindows
		case p == "freebsd":
			return FamilyFreeBSD
		default:
			return FamilyLinux // ubuntu, debian, rhel, centos, amzn, arch…
		}
	}
	bits, err := strconv.ParseUint(strings.TrimSpace(platformType), 0, 32)
	if err != nil {
		return ""
	}
	switch {
	case bits&ptDarwin != 0:
		return FamilyDarwin
	case bits&ptWindows != 0:
		return FamilyWindows
	case bits&ptFreeBSD != 0:
		return FamilyFreeBSD
	case bits&ptLinux != 0:
		return FamilyLinux
	}
	return ""
}

func firstNonEmpty(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}

func limitString(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}
