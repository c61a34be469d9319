#!/usr/bin/env python3
"""Build-time patch of Debian's llhttp 8.1 (node-llhttp): accept a quoted-pair (backslash +
HTAB / SP / VCHAR / obs-text) inside a quoted chunk-extension value, as RFC 9112 7.1.1 allows
(chunk-ext-val = token / quoted-string; quoted-string may hold quoted-pair). llhttp 8.1 refuses
the backslash ("Invalid character in chunk extensions quoted value"), so a valid request such as
`3;a="b\\"r"` got 400; later llhttp releases accept it. The patch adds one parser state after the
backslash and changes nothing else; it fails the build if the generated code is not the shape it
expects (e.g. another llhttp version), rather than patching blindly.

usage: llhttp_quoted_pair.py IN.c OUT.c
"""

import re
import sys

STATE = "s_n_llhttp__internal__n_chunk_extension_quoted_value"
PAIR = "s_n_llhttp__internal__n_chunk_extension_quoted_pair"


def patch(src):
    # 1. The new state in each state enum (strict and lenient builds each have one).
    enum_entry = "  %s,\n" % STATE
    n_enum = src.count(enum_entry)
    if n_enum == 0:
        raise SystemExit("llhttp patch: state enum entry not found")
    src = src.replace(enum_entry, enum_entry + "  %s,\n" % PAIR)

    # 2. In each quoted-value state: backslash -> the quoted-pair state.
    head = "    case %s:\n    %s: {\n" % (STATE, STATE)
    out = []
    pos = 0
    n_blocks = 0
    while True:
        i = src.find(head, pos)
        if i < 0:
            break
        end = src.find("\n    }\n", i)
        if end < 0:
            raise SystemExit("llhttp patch: end of the quoted-value state not found")
        end += len("\n    }\n")
        block = src[i:end]
        table = re.search(r"static uint8_t lookup_table\[\] = \{(.*?)\};", block, re.S)
        if not table:
            raise SystemExit("llhttp patch: lookup table not found")
        values = [int(v) for v in re.findall(r"\d+", table.group(1))]
        if len(values) != 256 or values[0x5C] != 0 or values[ord('"')] != 2 or 3 in values:
            raise SystemExit("llhttp patch: unexpected lookup table")
        values[0x5C] = 3
        rows = []
        for r in range(16):
            rows.append("        " + ", ".join(str(v) for v in values[r * 16:(r + 1) * 16]))
        new_table = "static uint8_t lookup_table[] = {\n" + ",\n".join(rows) + "\n      };"
        block = block[:table.start()] + new_table + block[table.end():]
        error = re.search(r"default: \{\n\s*goto (\w+);", block)
        if not error:
            raise SystemExit("llhttp patch: error state of the quoted value not found")
        block = block.replace("        default: {\n", """        case 3: {
          p++;
          goto %s;
        }
        default: {
""" % PAIR, 1)
        pair_state = """    case %(pair)s:
    %(pair)s: {
      if (p == endp) {
        return %(pair)s;
      }
      if (*p == 9 || ((uint8_t) *p >= 32 && *p != 127)) {
        p++;
        goto %(state)s;
      }
      goto %(error)s;
      /* UNREACHABLE */;
      abort();
    }
""" % {"pair": PAIR, "state": STATE, "error": error.group(1)}
        out.append(src[pos:i])
        out.append(block)
        out.append(pair_state)
        pos = end
        n_blocks += 1
    out.append(src[pos:])
    if n_blocks != n_enum:
        raise SystemExit("llhttp patch: %d enums but %d quoted-value states" % (n_enum, n_blocks))
    return "".join(out)


if __name__ == "__main__":
    with open(sys.argv[1]) as f:
        text = f.read()
    with open(sys.argv[2], "w") as f:
        f.write(patch(text))
