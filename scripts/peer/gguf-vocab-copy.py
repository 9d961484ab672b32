#!/usr/bin/env python3
"""Vocabulary-only copy of a GGUF file with a few metadata keys changed, for the peer.

The tokenizer tests derive the same copies at test time through formats/ (every key of
the source, the changed ones replaced, no tensors); this writes them for the peer's
llama-tokenize without numpy or gguf-py. Standard library only.

  gguf-vocab-copy.py IN OUT [--set KEY=STRING]... [--token ID=TEXT:TYPE]... [--pair-merges]
  gguf-vocab-copy.py IN --dump [KEY]...
"""
import argparse
import struct
import sys

# GGUF value types
U8, I8, U16, I16, U32, I32, F32, BOOL, STRING, ARRAY, U64, I64, F64 = range(13)
SCALAR = {U8: "<B", I8: "<b", U16: "<H", I16: "<h", U32: "<I", I32: "<i", F32: "<f",
          BOOL: "<?", U64: "<Q", I64: "<q", F64: "<d"}


# Printable ASCII and GPT-2's byte-level stand-ins for tab, newline, carriage return and
# space. Every pair of them is merged before the vocabulary's own merges, pairs of two kinds
# (upper, lower, digit, space, other) first: a boundary where the kind changes (a case
# change, digits after letters, a space before a word) shows in the ids.
PAIR_CHARS = [chr(c) for c in range(0x21, 0x7F)] + ["\u0109", "\u010A", "\u010D", "\u0120"]


def pair_kind(c):
    if "A" <= c <= "Z":
        return 0
    if "a" <= c <= "z":
        return 1
    if "0" <= c <= "9":
        return 2
    return 3 if c in PAIR_CHARS[-4:] else 4


PAIRS = sorted(((x, y) for x in PAIR_CHARS for y in PAIR_CHARS), key=lambda p: pair_kind(p[0]) == pair_kind(p[1]))


class Cursor:
    def __init__(self, data):
        self.data, self.pos = data, 0

    def take(self, fmt):
        v = struct.unpack_from(fmt, self.data, self.pos)[0]
        self.pos += struct.calcsize(fmt)
        return v

    def string(self):
        n = self.take("<Q")
        s = self.data[self.pos:self.pos + n]
        self.pos += n
        return s


def read_value(c, t):
    if t == STRING:
        return c.string()
    if t == ARRAY:
        et, n = c.take("<I"), c.take("<Q")
        return (et, [read_value(c, et) for _ in range(n)])
    return c.take(SCALAR[t])


def write_value(out, t, v):
    if t == STRING:
        out += struct.pack("<Q", len(v)) + v
    elif t == ARRAY:
        et, items = v
        out += struct.pack("<IQ", et, len(items))
        for x in items:
            write_value(out, et, x)
    else:
        out += struct.pack(SCALAR[t], v)


def read_kvs(path):
    with open(path, "rb") as f:
        c = Cursor(f.read())
    if c.take("<4s") != b"GGUF":
        sys.exit(f"{path}: not a GGUF file")
    version, _n_tensors, n_kv = c.take("<I"), c.take("<Q"), c.take("<Q")
    kvs = []
    for _ in range(n_kv):
        key = c.string().decode()
        t = c.take("<I")
        kvs.append([key, t, read_value(c, t)])
    return version, kvs


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("input")
    ap.add_argument("output", nargs="?")
    ap.add_argument("--set", action="append", default=[], help="KEY=STRING: set a string key")
    ap.add_argument("--token", action="append", default=[],
                    help="ID=TEXT:TYPE: replace token ID's text and token_type")
    ap.add_argument("--pair-merges", action="store_true",
                    help="byte-level BPE: a token and a first-ranked merge for every pair of PAIR_CHARS")
    ap.add_argument("--dump", nargs="*", help="print these keys (all scalars when none)")
    a = ap.parse_args()

    version, kvs = read_kvs(a.input)
    if a.dump is not None:
        for key, t, v in kvs:
            if (a.dump and key not in a.dump) or (not a.dump and t == ARRAY):
                continue
            if t == ARRAY:
                et, items = v
                print(key, [x.decode("utf-8", "replace") if et == STRING else x for x in items])
            else:
                print(key, v.decode("utf-8", "replace") if t == STRING else v)
        return

    by_key = {kv[0]: kv for kv in kvs}
    for s in a.set:
        key, value = s.split("=", 1)
        if key in by_key:
            by_key[key][1:] = [STRING, value.encode()]
        else:
            kvs.append([key, STRING, value.encode()])
    for s in a.token:
        idx, rest = s.split("=", 1)
        text, ttype = rest.rsplit(":", 1)
        by_key["tokenizer.ggml.tokens"][2][1][int(idx)] = text.encode()
        by_key["tokenizer.ggml.token_type"][2][1][int(idx)] = int(ttype)

    if a.pair_merges:
        tokens = by_key["tokenizer.ggml.tokens"][2][1]
        types = by_key["tokenizer.ggml.token_type"][2][1]
        merges = by_key["tokenizer.ggml.merges"][2][1]
        known = set(tokens)
        for x, y in PAIRS:
            if (x + y).encode() not in known:
                tokens.append((x + y).encode())
                types.append(1)
        merges[:0] = [(x + " " + y).encode() for x, y in PAIRS]

    out = bytearray(b"GGUF" + struct.pack("<IQQ", version, 0, len(kvs)))
    for key, t, v in kvs:
        write_value(out, STRING, key.encode())
        out += struct.pack("<I", t)
        write_value(out, t, v)
    with open(a.output, "wb") as f:
        f.write(out)


if __name__ == "__main__":
    main()
