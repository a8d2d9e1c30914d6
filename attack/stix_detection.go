package attack

import (
	"sort"
	"strings"
)

// applyDetection fills each technique's Detection, DataComponents and
// LogSources from the analytics of the detection strategies that detect it
// (ATT&CK v18: detection strategy -detects-> technique; the strategy's
// x_mitre_analytic_refs name analytics, whose log source references name
// data components).
func (s *stixSet) applyDetection(techs []Technique) {
	techIdx := make(map[string]int, len(techs))
	for i, t := range techs {
		techIdx[t.ID] = i
	}
	type acc struct {
		texts     []string
		analytics map[string]bool
		dcs       map[string]bool
		logs      map[string]bool
	}
	accs := make(map[int]*acc)
	for _, x := range s.relationships {
		o := x.o
		if o.RelType != "detects" || o.Revoked || o.Deprecated {
			continue
		}
		strat, ok := s.byRef[o.SourceRef]
		if !ok || strat.o.Type != "x-mitre-detection-strategy" || strat.o.Revoked || strat.o.Deprecated {
			continue
		}
		ti, ok := techIdx[s.attackID(o.TargetRef)]
		if !ok {
			continue
		}
		a := accs[ti]
		if a == nil {
			a = &acc{analytics: map[string]bool{}, dcs: map[string]bool{}, logs: map[string]bool{}}
			accs[ti] = a
		}
		for _, ref := range strat.o.AnalyticRefs {
			an, ok := s.byRef[ref]
			if !ok || an.o.Type != "x-mitre-analytic" || an.o.Revoked || an.o.Deprecated || a.analytics[ref] {
				continue
			}
			a.analytics[ref] = true
			if text := analyticText(an.o); text != "" {
				a.texts = append(a.texts, text)
			}
			for _, ls := range an.o.LogSourceRefs {
				if dc, ok := s.byRef[ls.DataComponentRef]; ok && dc.o.Name != "" {
					a.dcs[dc.o.Name] = true
				}
				if ls.Name != "" {
					a.logs[ls.Name] = true
				}
			}
		}
	}
	for ti, a := range accs {
		t := &techs[ti]
		parts := a.texts
		if t.Detection != "" {
			parts = append([]string{t.Detection}, parts...)
		}
		t.Detection = strings.Join(parts, "\n\n")
		t.DataComponents = sortedKeys(a.dcs)
		t.LogSources = sortedKeys(a.logs)
	}
}

// analyticText renders one analytic as "AN0110 (Linux): description".
func analyticText(o *stixObject) string {
	desc := strings.TrimSpace(o.Description)
	if desc == "" {
		return ""
	}
	id, _ := o.attackRef()
	if id == "" {
		id = o.Name
	}
	if len(o.Platforms) > 0 {
		id += " (" + strings.Join(o.Platforms, ", ") + ")"
	}
	if id == "" {
		return desc
	}
	return id + ": " + desc
}

func sortedKeys(m map[string]bool) []string {
	if len(m) == 0 {
		return nil
	}
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
