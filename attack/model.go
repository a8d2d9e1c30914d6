package attack

// The ATT&CK versions this package knows by name.
const (
	// VersionV19 marks facts taken from the v19 overlay.
	VersionV19 = "19.0"
)

// Technique is an ATT&CK technique or sub-technique.
type Technique struct {
	ID             string   `json:"id"`      // T1059.001
	Name           string   `json:"name"`    // PowerShell
	Tactics        []string `json:"tactics"` // tactic shortnames, in matrix order
	Platforms      []string `json:"platforms"`
	IsSubtechnique bool     `json:"is_subtechnique"`
	ParentID       string   `json:"parent_id"` // "" for a technique that is not a sub-technique
	Description    string   `json:"description"`
	// Detection is the technique's detection guidance: its legacy
	// x_mitre_detection text, then the descriptions of the analytics of the
	// detection strategies that detect it (ATT&CK v18 and later).
	Detection      string   `json:"detection"`
	DataComponents []string `json:"data_components"` // names of the data components the analytics read
	LogSources     []string `json:"log_sources"`     // log source names the analytics read, e.g. auditd:SYSCALL
	URL            string   `json:"url"`
	Version        string   `json:"version"` // the object's own x_mitre_version
	Deprecated     bool     `json:"deprecated"`
	Revoked        bool     `json:"revoked"`
	ReplacedBy     string   `json:"replaced_by"`    // the technique that revoked this one, if any
	AttackVersion  string   `json:"attack_version"` // the ATT&CK release the row comes from: "18.1", "19.0"

	// v19 facts for a technique present in the v19 overlay; empty otherwise.
	NameV19       string   `json:"name_v19"`
	TacticsV19    []string `json:"tactics_v19"`
	ReplacedByV19 string   `json:"replaced_by_v19"` // the v19 successor of a technique revoked in v19
}

// Live reports whether the technique is neither revoked nor deprecated.
func (t *Technique) Live() bool { return !t.Revoked && !t.Deprecated }

// Tactic is an ATT&CK tactic, a column of the matrix.
type Tactic struct {
	ID          string // TA0002
	ShortName   string // execution
	Name        string // Execution
	Description string
	URL         string
	// MatrixOrder is the 1-based column in the matrix of the tactic's own
	// ATT&CK version.
	MatrixOrder int
	// MatrixOrderV19 is the 1-based column in the v19 matrix, 0 when the
	// tactic is not in v19 (defense-evasion).
	MatrixOrderV19 int
	Deprecated     bool
	AttackVersion  string
}

// Mitigation is an ATT&CK mitigation (a STIX course-of-action).
type Mitigation struct {
	ID            string // M1036
	Name          string
	Description   string
	URL           string
	Version       string
	Deprecated    bool
	Revoked       bool
	AttackVersion string
}

// Live reports whether the mitigation is neither revoked nor deprecated.
func (m *Mitigation) Live() bool { return !m.Revoked && !m.Deprecated }

// Group is an ATT&CK group (a STIX intrusion-set).
type Group struct {
	ID            string // G0007
	Name          string
	Aliases       []string // other names, the group's own name left out
	Description   string
	URL           string
	Version       string
	Deprecated    bool
	Revoked       bool
	ReplacedBy    string
	AttackVersion string
}

// Live reports whether the group is neither revoked nor deprecated.
func (g *Group) Live() bool { return !g.Revoked && !g.Deprecated }

// Software is an ATT&CK software entry: a STIX malware or tool.
type Software struct {
	ID            string // S0002
	Name          string
	Type          string // malware or tool
	Aliases       []string
	Platforms     []string
	Description   string
	URL           string
	Version       string
	Deprecated    bool
	Revoked       bool
	ReplacedBy    string
	AttackVersion string
}

// Live reports whether the software is neither revoked nor deprecated.
func (s *Software) Live() bool { return !s.Revoked && !s.Deprecated }

// Relation links an ATT&CK object to a technique: a mitigation that
// mitigates it, or a group or software that uses it.
type Relation struct {
	SourceID    string `json:"source_id"` // M1036, G0007 or S0002
	TechniqueID string `json:"technique_id"`
	Description string `json:"description"`
}

// TechniqueTactic is one technique/tactic pair. AttackVersion is the first
// version holding the pair; InV19 says whether v19 still holds it.
type TechniqueTactic struct {
	TechniqueID   string
	TacticID      string
	Tactic        string // shortname
	AttackVersion string
	InV19         bool
}

// Redirect kinds.
const (
	RedirectRevoked    = "revoked"    // the object was revoked by NewID
	RedirectDeprecated = "deprecated" // the object was deprecated; NewID may be ""
	RedirectRenumbered = "renumbered" // the object kept its meaning under NewID
)

// IDRedirect says that an old ATT&CK ID now lives on as another, or nowhere.
type IDRedirect struct {
	OldID         string
	NewID         string // "" when nothing replaces the old ID
	Kind          string // RedirectRevoked, RedirectDeprecated or RedirectRenumbered
	ObjectType    string // technique, group, software or mitigation
	AttackVersion string // the version in which the redirect took effect
}
