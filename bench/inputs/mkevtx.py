#!/usr/bin/env python3
# usage: mkevtx.py OUT.evtx COPIES SOURCE.evtx... (SigmaHQ regression_data files: the .json beside each .evtx gives its EventRecordIDs)
"""Builds a large EVTX from the chunks of small ones: each source chunk is
copied `copies` times, its records renumbered so that every record id in
the output is distinct (the store would otherwise skip repeats as already
stored), and the chunk's header and records checksums recomputed."""
import json, re, struct, sys, zlib

def xml_ids(path):
    """The EventRecordIDs the rendered events carry (from the .json beside
    the .evtx in SigmaHQ's regression data)."""
    try:
        text = open(path[:-5] + ".json").read()
    except OSError:
        return []
    return [int(x) for x in re.findall(r'"EventRecordID"\s*:\s*"?(\d+)', text)]

def chunks(path):
    b = open(path, "rb").read()
    assert b[:8] == b"ElfFile\x00", path
    for off in range(4096, len(b) - 65535, 65536):
        c = b[off:off + 65536]
        if c[:8] == b"ElfChnk\x00":
            yield bytearray(c), xml_ids(path)

def renumber(c, base, ids):
    free = struct.unpack_from("<I", c, 0x30)[0]
    off, n, first = 0x200, 0, None
    while off + 24 <= free and c[off:off + 4] == b"\x2a\x2a\x00\x00":
        size = struct.unpack_from("<I", c, off + 4)[0]
        rid = base + n + 1
        # The rendered EventRecordID is a template substitution value in
        # the record's body (not the header's id).
        body = bytes(c[off + 24:off + size])
        new = struct.pack("<Q", rid)
        found = [x for x in ids if struct.pack("<Q", x) in body]
        assert len(found) == 1, (off, found)
        c[off + 24:off + size] = body.replace(struct.pack("<Q", found[0]), new)
        struct.pack_into("<Q", c, off + 8, rid)
        first = rid if first is None else first
        n += 1
        off += size
    if n == 0:
        return 0
    last = base + n
    struct.pack_into("<QQQQ", c, 0x08, first, last, first, last)
    struct.pack_into("<I", c, 0x34, zlib.crc32(bytes(c[0x200:free])) & 0xffffffff)
    struct.pack_into("<I", c, 0x7c, zlib.crc32(bytes(c[:0x78]) + bytes(c[0x80:0x200])) & 0xffffffff)
    return n

def main():
    out, copies, srcs = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
    src_chunks = [c for p in srcs for c in chunks(p)]
    header = bytearray(open(srcs[0], "rb").read()[:4096])
    base, nchunks = 0, 0
    with open(out, "wb") as f:
        f.write(header)  # the chunk count in it is not used by the reader; fixed below
        for i in range(copies):
            for c, ids in src_chunks:
                c = bytearray(c)
                n = renumber(c, base, ids)
                if n:
                    base += n
                    nchunks += 1
                    f.write(c)
        # header: next record id (0x18), chunk count (0x2a), checksum (0x7c over 0..0x78)
        struct.pack_into("<Q", header, 0x18, base + 1)
        struct.pack_into("<H", header, 0x2a, nchunks & 0xffff)
        struct.pack_into("<I", header, 0x7c, zlib.crc32(bytes(header[:0x78])) & 0xffffffff)
        f.seek(0)
        f.write(header)
    print(out, "chunks", nchunks, "records", base)

main()
