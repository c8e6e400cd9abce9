#!/usr/bin/env python3
"""Turn `perf script` output into folded stacks, a flame graph and a cost summary.

    perf script -i perf.data | python3 bench/fold.py OUT_PREFIX [GROUP=regex ...]
    python3 bench/fold.py --refold OUT_PREFIX [GROUP=regex ...]   (summary of OUT_PREFIX.folded)

Writes OUT_PREFIX.folded (one `frame;frame;... count` line per distinct stack, the input
format of common flame graph tools), OUT_PREFIX.svg (a small self-contained flame graph)
and prints, for each GROUP, the share of samples whose stack contains a frame matching
its regex (inclusive cost), then the top frames by self cost. Standard library only.
"""

from __future__ import annotations

import collections
import html
import re
import sys

# Frame names get long with generics; keep the readable head.
MAX_FRAME = 160


def clean(symbol: str) -> str:
    symbol = re.sub(r"\+0x[0-9a-f]+$", "", symbol.strip())
    return symbol[:MAX_FRAME]


def read_stacks(lines) -> collections.Counter:
    stacks: collections.Counter = collections.Counter()
    frames: list[str] = []
    comm = None
    for line in lines:
        line = line.rstrip("\n")
        if not line:
            if comm is not None:
                stacks[";".join([comm] + frames[::-1])] += 1
            frames, comm = [], None
        elif not line[0].isspace():
            comm = line.split()[0]
        else:
            parts = line.strip().split(" ", 1)
            if len(parts) == 2:
                frames.append(clean(parts[1].rsplit(" (", 1)[0]))
    if comm is not None:
        stacks[";".join([comm] + frames[::-1])] += 1
    return stacks


def read_folded(path: str) -> collections.Counter:
    stacks: collections.Counter = collections.Counter()
    with open(path) as f:
        for line in f:
            stack, _, count = line.rstrip("\n").rpartition(" ")
            stacks[stack] += int(count)
    return stacks


def summary(stacks: collections.Counter, groups: dict[str, re.Pattern]) -> str:
    total = sum(stacks.values()) or 1
    out = [f"samples: {total}"]
    for name, pattern in groups.items():
        hit = sum(n for s, n in stacks.items() if any(pattern.search(f) for f in s.split(";")))
        out.append(f"  {100 * hit / total:5.1f}%  {name}  (/{pattern.pattern}/)")
    selfs: collections.Counter = collections.Counter()
    for s, n in stacks.items():
        selfs[s.rsplit(";", 1)[-1]] += n
    out.append("top frames by self cost:")
    out += [f"  {100 * n / total:5.1f}%  {f}" for f, n in selfs.most_common(15)]
    return "\n".join(out)


def flame_svg(stacks: collections.Counter, title: str, width=1200, row=16) -> str:
    tree: dict = {}
    for s, n in stacks.items():
        node = tree
        for frame in s.split(";"):
            child = node.setdefault(frame, [0, {}])
            child[0] += n
            node = child[1]
    total = sum(stacks.values()) or 1
    rects: list[str] = []
    depth_max = [0]

    def walk(node: dict, x: float, depth: int) -> None:
        for frame, (count, kids) in sorted(node.items()):
            w = width * count / total
            if w >= 0.5:
                depth_max[0] = max(depth_max[0], depth)
                hue = 20 + (hash(frame) % 40)
                label = html.escape(frame)
                text = html.escape(frame[: int(w / 7)]) if w > 21 else ""
                rects.append(
                    f'<g><title>{label} ({100 * count / total:.1f}%)</title>'
                    f'<rect x="{x:.1f}" y="{{Y{depth}}}" width="{w:.1f}" height="{row - 1}" '
                    f'fill="hsl({hue},80%,60%)"/><text x="{x + 2:.1f}" y="{{T{depth}}}" '
                    f'font-size="11">{text}</text></g>')
                walk(kids, x, depth + 1)
            x += w

    walk(tree, 0.0, 0)
    height = (depth_max[0] + 3) * row
    body = "\n".join(rects)
    for d in range(depth_max[0] + 1):  # root at the bottom
        y = height - (d + 2) * row
        body = body.replace(f"{{Y{d}}}", str(y)).replace(f"{{T{d}}}", str(y + row - 4))
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
            f'font-family="monospace"><text x="4" y="14" font-size="13">'
            f'{html.escape(title)}</text>\n{body}\n</svg>\n')


def main() -> int:
    if len(sys.argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    args = sys.argv[1:]
    refold = args[0] == "--refold"
    if refold:
        args = args[1:]
    prefix = args[0]
    groups = {}
    for arg in args[1:]:
        name, _, pattern = arg.partition("=")
        groups[name] = re.compile(pattern)
    if refold:
        stacks = read_folded(prefix + ".folded")
        print(summary(stacks, groups))
        return 0
    stacks = read_stacks(sys.stdin)
    with open(prefix + ".folded", "w") as f:
        for s, n in stacks.most_common():
            f.write(f"{s} {n}\n")
    with open(prefix + ".svg", "w") as f:
        f.write(flame_svg(stacks, prefix.rsplit("/", 1)[-1]))
    print(summary(stacks, groups))
    return 0


if __name__ == "__main__":
    sys.exit(main())
