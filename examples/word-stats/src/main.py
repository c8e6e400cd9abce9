"""Word statistics for the "text" field (standard library only)."""

import re
from collections import Counter

_WORD = re.compile(r"[\w']+", re.UNICODE)


def handler(ctx):
    text = str(ctx.get("text", ""))
    top_n = int(ctx.get("top", 3))
    words = [w.lower() for w in _WORD.findall(text)]
    counts = Counter(words)
    return {
        "words": len(words),
        "unique_words": len(counts),
        "characters": len(text),
        "lines": len(text.splitlines()) if text else 0,
        "top": [[word, n] for word, n in counts.most_common(top_n)],
    }
