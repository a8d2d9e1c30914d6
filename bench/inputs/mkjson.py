#!/usr/bin/env python3
"""Builds the JSON import-throughput inputs from ../shared/datasets (OTRF
Windows recordings, one flattened event per line): p.json holds only the
process events (Sysmon 1 and 5, Security 4688 and 4689), m.json every event,
each repeated with the host name suffixed by the copy's number (so that no
copy is a record already stored), up to `target` lines.

usage: mkjson.py DATASETS_DIR OUT_DIR TARGET"""
import glob, json, os, sys

def main():
    src, out, target = sys.argv[1], sys.argv[2], int(sys.argv[3])
    every, proc = [], []
    for f in sorted(glob.glob(os.path.join(src, "sd-T*", "*.json"))):
        for line in open(f):
            if not line.strip():
                continue
            o = json.loads(line)
            every.append(o)
            ch = o.get("Channel", "")
            if (o.get("EventID") in (1, 5) and "Sysmon" in ch) or (o.get("EventID") in (4688, 4689) and ch == "Security"):
                proc.append(o)
    for name, evs in (("p.json", proc), ("m.json", every)):
        n, k = 0, 0
        with open(os.path.join(out, name), "w") as w:
            while n < target:
                for o in evs:
                    if n >= target:
                        break
                    o = dict(o)
                    o["Hostname"] = "%s-%d" % (o.get("Hostname", "h"), k)
                    w.write(json.dumps(o) + "\n")
                    n += 1
                k += 1
        print(name, n, "lines from", len(evs), "events")

main()
