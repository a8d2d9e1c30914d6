// Package attack holds Quarry's MITRE ATT&CK knowledge base: the model
// (techniques, tactics, mitigations, groups, software, their relations and ID
// redirects), a loader for MITRE's STIX 2.1 bundle, the ATT&CK v19 overlay
// laid over v18.1, and a compact embedded copy that loads in milliseconds.
//
// A KB is read-only once built and safe for concurrent use. Get one with
// Embedded (the copy compiled into the binary), Load (a data directory's
// copy, written by Update, else the embedded one) or ParseSTIX.
//
// Versions: every object carries the ATT&CK version it comes from
// (AttackVersion, "18.1" for the bundle, "19.0" for overlay facts). The
// v18.1 tactics keep their matrix order 1..14; the v19 tactics stealth
// (TA0005 renamed) and defense-impairment (TA0112) are extra Tactic values
// with AttackVersion "19.0". Every tactic also carries its position in the
// v19 matrix (MatrixOrderV19, 0 when absent from v19), and every technique
// present in v19 carries its v19 tactics (TacticsV19).
//
// ATT&CK is © The MITRE Corporation, reproduced under the ATT&CK terms of
// use; see data/NOTICE.md.
package attack
