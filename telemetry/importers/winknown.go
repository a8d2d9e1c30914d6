package importers

import (
	"unsafe"

	"github.com/quarry-sec/quarry/telemetry"
)

// The fields winEvent reads, by index into winFields.
const (
	kEventID = iota
	kChannel
	kProviderName
	kSourceName
	kComputer
	kHostname
	kEventRecordID
	kUtcTime
	kSystemTime
	kTimeCreatedSystemTime
	kAtTimestamp
	kTimeCreated
	kImage
	kProcessID
	kProcessGUID
	kUser
	kCommandLine
	kCurrentDirectory
	kParentProcessID
	kParentImage
	kParentCommandLine
	kParentProcessGUID
	kLogonID
	kIntegrityLevel
	kOriginalFileName
	kHashes
	kNewProcessName
	kNewProcessID
	kParentProcessName
	kSubjectDomainName
	kSubjectUserName
	kSubjectLogonID
	kTargetUserName
	kTargetDomainName
	kTargetLogonID
	kMandatoryLabel
	kProcessName
	kStatus
	numWinFields
)

// winFieldNames are the names of the fields winEvent reads.
var winFieldNames = [numWinFields]string{
	kEventID: "EventID", kChannel: "Channel", kProviderName: "Provider_Name", kSourceName: "SourceName",
	kComputer: "Computer", kHostname: "Hostname", kEventRecordID: "EventRecordID", kUtcTime: "UtcTime",
	kSystemTime: "SystemTime", kTimeCreatedSystemTime: "TimeCreated_SystemTime", kAtTimestamp: "@timestamp",
	kTimeCreated: "TimeCreated", kImage: "Image", kProcessID: "ProcessId", kProcessGUID: "ProcessGuid", kUser: "User",
	kCommandLine: "CommandLine", kCurrentDirectory: "CurrentDirectory", kParentProcessID: "ParentProcessId",
	kParentImage: "ParentImage", kParentCommandLine: "ParentCommandLine", kParentProcessGUID: "ParentProcessGuid",
	kLogonID: "LogonId", kIntegrityLevel: "IntegrityLevel", kOriginalFileName: "OriginalFileName", kHashes: "Hashes",
	kNewProcessName: "NewProcessName", kNewProcessID: "NewProcessId", kParentProcessName: "ParentProcessName",
	kSubjectDomainName: "SubjectDomainName", kSubjectUserName: "SubjectUserName", kSubjectLogonID: "SubjectLogonId",
	kTargetUserName: "TargetUserName", kTargetDomainName: "TargetDomainName", kTargetLogonID: "TargetLogonId",
	kMandatoryLabel: "MandatoryLabel", kProcessName: "ProcessName", kStatus: "Status",
}

var winFieldIndex = func() map[string]int {
	m := make(map[string]int, numWinFields)
	for i, n := range winFieldNames {
		m[n] = i
	}
	return m
}()

// winFields are the values of the fields winEvent reads ("" when absent).
type winFields [numWinFields]string

// nameCacheSize is the number of entries of a nameCache (a power of two).
const nameCacheSize = 128

// nameCache maps a field name to its winFields index (-1: not read) by the
// name's address: importers intern names, so a record's names are found at
// their first probe instead of hashing each. An entry keeps its name alive,
// so its address cannot be reused for another name.
type nameCache struct {
	ents [nameCacheSize]struct {
		name string
		idx  int8
		used bool
	}
	n int
}

func (c *nameCache) index(name string) int {
	h := uint64(uintptr(unsafe.Pointer(unsafe.StringData(name)))+uintptr(len(name))) * 0x9E3779B97F4A7C15 >> 57
	for probes := 0; probes < nameCacheSize; probes++ {
		e := &c.ents[h%nameCacheSize]
		if !e.used {
			if c.n >= nameCacheSize*3/4 {
				break // full: names are not interned here
			}
			i, ok := winFieldIndex[name]
			if !ok {
				i = -1
			}
			e.name, e.idx, e.used = name, int8(i), true
			c.n++
			return i
		}
		if e.name == name {
			return int(e.idx)
		}
		h++
	}
	if i, ok := winFieldIndex[name]; ok {
		return i
	}
	return -1
}

// gather reads the fields winEvent needs from f in one pass.
func (w *winFields) gather(f telemetry.Fields, c *nameCache) {
	*w = winFields{}
	for _, x := range f.List() {
		var i int
		if c != nil {
			i = c.index(x.Name)
		} else if j, ok := winFieldIndex[x.Name]; ok {
			i = j
		} else {
			continue
		}
		if i >= 0 {
			w[i] = x.Value
		}
	}
}
