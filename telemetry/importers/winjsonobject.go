package importers

import (
	"fmt"
)

// skippedFlatFields are top-level fields of flat JSON events not kept in
// Event.Fields: Message repeats the EventData as rendered text and is by far
// the largest field.
func skippedFlatField(key string) bool {
	return key == "Message"
}

// decodeWinJSON decodes one Windows event object, flat or nested
// ({"Event": {"System": …, "EventData": …}}), into fs.
func decodeWinJSON(s *jscanner, fs *fieldSet) error {
	if err := s.beginObject(); err != nil {
		return err
	}
	for n := 0; ; n++ {
		var k string
		if want := fs.predicted(n); want != "" && s.predictedMember(n, want) {
			k = want
		} else {
			key, more, err := s.member(n, fs.keyBuf)
			if err != nil {
				return err
			}
			if !more {
				break
			}
			k = fs.internAt(n, key)
		}
		if k == "Event" && s.peek() == '{' {
			if err := decodeNestedEvent(s, fs); err != nil {
				return err
			}
			continue
		}
		if skippedFlatField(k) {
			if err := s.skip(); err != nil {
				return err
			}
			continue
		}
		start := len(fs.arena)
		var null bool
		var err error
		if fs.arena, null, err = s.appendText(fs.arena); err != nil {
			return err
		}
		if !null {
			fs.add(k, start)
		}
	}
	return s.end()
}

// decodeNestedEvent reads the value of "Event": System fields under Sigma's
// names (EventID, Channel, Computer, Provider_Name, SystemTime…), EventData
// and UserData fields under their own names.
func decodeNestedEvent(s *jscanner, fs *fieldSet) error {
	if err := s.beginObject(); err != nil {
		return err
	}
	for n := 0; ; n++ {
		key, more, err := s.member(n, fs.keyBuf)
		if err != nil {
			return err
		}
		if !more {
			return nil
		}
		switch string(key) {
		case "System":
			err = flattenJSON(s, fs, nil, 1, true)
		case "EventData", "UserData":
			err = flattenJSON(s, fs, nil, 1, false)
		default:
			err = s.skip()
		}
		if err != nil {
			return err
		}
	}
}

// flattenJSON stores the members of the object at s under their names
// joined by "_" below prefix ("Provider" → {"Name"} becomes Provider_Name).
// XML renderings' "#attributes" and "#text" levels add nothing to a name;
// in System, neither does "Value" (EventID {"Value": 1}). Under EventData and
// UserData only the leaf name is kept. A value that is not an object is
// stored as text.
func flattenJSON(s *jscanner, fs *fieldSet, prefix []byte, depth int, system bool) error {
	if s.peek() != '{' || depth > maxJSONDepth {
		if len(prefix) == 0 {
			return s.skip()
		}
		k := fs.intern(prefix)
		start := len(fs.arena)
		var null bool
		var err error
		if fs.arena, null, err = s.appendText(fs.arena); err != nil {
			return err
		}
		if !null {
			fs.add(k, start)
		}
		return nil
	}
	if err := s.beginObject(); err != nil {
		return err
	}
	for n := 0; ; n++ {
		key, more, err := s.member(n, nil)
		if err != nil {
			return err
		}
		if !more {
			return nil
		}
		name := prefix
		switch {
		case string(key) == "#attributes" || string(key) == "#text" || (system && string(key) == "Value"):
		case system && len(prefix) > 0:
			name = append(append(append(make([]byte, 0, len(prefix)+1+len(key)), prefix...), '_'), key...)
		default:
			name = key
		}
		if err := flattenJSON(s, fs, name, depth+1, system); err != nil {
			return fmt.Errorf("%s: %w", key, err)
		}
	}
}
