"""Everyday queries: does a retriever understand what listeners type?

Each query below is written the way people search (activities, scenes, moods, instruments, eras, places,
misspellings, whole sentences) and carries the demo-corpus tags that make a hit relevant. For every query the
script prints the share of the top 10 that carry at least one relevant tag, then the mean over all queries and the
queries that raised an error (an error counts as 0). A retriever that ignores the query scores the base rate of
its relevant tags, which the ``chance`` column shows (the share of the catalogue that is relevant).

    PYTHONPATH=. .venv/bin/python benchmarks/everyday_queries.py                  # the `make demo` retriever
    PYTHONPATH=. .venv/bin/python benchmarks/everyday_queries.py INDEX_A INDEX_B   # side by side
    PYTHONPATH=. .venv/bin/python benchmarks/everyday_queries.py --smoke           # 6 queries (make test)
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

CALM = ("calm", "peaceful", "relaxing", "sleep", "dreamy")
SACRED = ("sacred", "worship", "hymn", "mass", "chorale", "choral", "choir", "organ")
LIVELY = ("energetic", "intense", "dance", "party", "jig", "reel", "hornpipe", "happy")

#: (query, kind, relevant tags). A hit is relevant when it carries any of the tags.
QUERIES: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("music for falling asleep", "activity", CALM),
    ("something to study to", "activity", ("study", "calm", "peaceful", "relaxing")),
    ("songs for a party", "activity", ("party", "dance", "energetic", "happy")),
    ("music to dance to", "activity", ("dance", "jig", "reel", "hornpipe", "party")),
    ("church service", "activity", SACRED),
    ("lullaby", "activity", CALM),
    ("background music for reading", "activity", ("study", "calm", "peaceful", "relaxing")),
    ("workout music", "activity", LIVELY),
    ("meditation", "activity", CALM),
    ("rainy afternoon", "scene", CALM + ("melancholic", "sad")),
    ("sunday morning in a cathedral", "scene", SACRED),
    ("pub session with fiddles", "scene", ("fiddle tune", "irish folk", "celtic", "violin", "reel", "jig")),
    ("a quiet night by the fire", "scene", CALM),
    ("medieval banquet", "scene", ("medieval", "1300s", "early music")),
    ("slow", "mood", CALM + ("sad", "solemn", "melancholic")),
    ("fast", "mood", LIVELY),
    ("soft", "mood", CALM),
    ("loud", "mood", ("energetic", "intense", "brass", "bagpipes")),
    ("soothing", "mood", CALM),
    ("cheerful", "mood", ("happy", "bright", "playful", "energetic")),
    ("gloomy", "mood", ("dark", "sad", "melancholic", "solemn")),
    ("uplifting", "mood", ("happy", "bright", "energetic")),
    ("heartbroken", "mood", ("sad", "melancholic", "love song")),
    ("spooky", "mood", ("dark", "intense", "solemn")),
    ("cello", "instrument", ("strings", "chamber music")),
    ("loud brass", "instrument", ("brass",)),
    ("bagpipe music", "instrument", ("bagpipes",)),
    ("solo piano", "instrument", ("piano",)),
    ("pipe organ", "instrument", ("organ",)),
    ("acoustic guitar", "instrument", ("guitar",)),
    ("singing voices", "instrument", ("choir", "choral", "chorale", "madrigal", "mass")),
    ("renaissance music", "era", ("renaissance", "1500s", "1600s", "polyphony", "madrigal")),
    ("baroque harpsichord", "era", ("harpsichord", "baroque")),
    ("music from the middle ages", "era", ("medieval", "1300s", "early music")),
    ("eighteenth century string quartet", "era", ("chamber music", "classical", "strings", "1700s")),
    ("traditional irish music", "place", ("irish folk", "ireland", "celtic")),
    ("songs from china", "place", ("china", "chinese", "chinese folk", "xiaodiao")),
    ("italian madrigals", "place", ("madrigal", "italy", "italian")),
    ("scottish highlands", "place", ("scotland", "scottish folk", "bagpipes")),
    ("appalachian songs", "place", ("american folk", "usa", "mountain song", "banjo")),
    ("german folk songs", "place", ("german folk", "germany", "german")),
    ("draemy", "misspelling", ("dreamy",)),
    ("melancolic", "misspelling", ("melancholic", "sad")),
    ("violn", "misspelling", ("violin", "strings")),
    ("peacefull", "misspelling", ("peaceful", "calm")),
    ("celtik", "misspelling", ("celtic", "irish folk", "scottish folk")),
    ("I want something calm and gentle to help me relax after a long day", "sentence",
     ("calm", "relaxing", "peaceful")),
    ("play me some happy upbeat folk tunes for dancing", "sentence", ("happy", "dance", "jig", "reel", "energetic")),
    ("sad songs about lost love", "sentence", ("sad", "melancholic", "love song")),
    ("solemn choral music for a funeral", "sentence", ("solemn", "sacred", "choral", "choir", "mass")),
)
SMOKE = ("music for falling asleep", "lullaby", "draemy", "loud brass", "slow", "sad songs about lost love")
K = 10


def score_queries(retriever, queries, k: int = K) -> tuple[list[float | None], list[str]]:
    """Each query's share of relevant hits in the top ``k`` (None where it raised), and the error lines."""
    from retrieval.errors import RetrievalError

    shares, errors = [], []
    for query, _, relevant in queries:
        try:
            hits = retriever.search(query, k=k)
        except RetrievalError as error:
            shares.append(None)
            errors.append(f"{query!r}: {error}")
            continue
        shares.append(float(np.mean([bool(set(hit.tags) & set(relevant)) for hit in hits])))
    return shares, errors


def chance(retriever, relevant: tuple[str, ...]) -> float:
    """Share of the catalogue carrying any of ``relevant`` (the expected top-k share of a random ranking)."""
    from retrieval.index.catalogue import tag_tuple

    tags = retriever.index.catalogue["tags"]
    return float(np.mean([bool(set(tag_tuple(row)) & set(relevant)) for row in tags]))


def main(argv: list[str] | None = None) -> int:
    import retrieval

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("indexes", nargs="*", help="index or run folders (default: the `make demo` retriever)")
    parser.add_argument("--labels", nargs="*", help="column names (default: the folders' names)")
    parser.add_argument("--smoke", action="store_true", help="6 queries, for make test")
    args = parser.parse_args(argv)
    queries = [q for q in QUERIES if not args.smoke or q[0] in SMOKE]
    names = args.indexes or [None]
    retrievers = [retrieval.load(name) for name in names]
    results = [score_queries(r, queries) for r in retrievers]
    labels = args.labels or [_label(name) for name in names]
    print(f"| query | kind | chance | {' | '.join(labels)} |")
    print(f"|---|---|---:|{'---:|' * len(labels)}")
    for i, (query, kind, relevant) in enumerate(queries):
        cells = ["error" if shares[i] is None else f"{shares[i]:.1f}" for shares, _ in results]
        print(f"| {query} | {kind} | {chance(retrievers[0], relevant):.2f} | {' | '.join(cells)} |")
    means = [np.mean([s or 0.0 for s in shares]) for shares, _ in results]
    print(f"| **mean** | | | {' | '.join(f'**{m:.3f}**' for m in means)} |")
    print(f"| errors | | | {' | '.join(str(len(errors)) for _, errors in results)} |")
    for label, (_, errors) in zip(labels, results, strict=True):
        for line in errors:
            print(f"{label}: {line}", file=sys.stderr)
    return 0


def _label(name: str | None) -> str:
    """A column name: the run folder's name for ``RUN/index``, else the folder's own."""
    if name is None:
        return "demo"
    path = Path(name).resolve()
    return path.parent.name if path.name == "index" else path.name


if __name__ == "__main__":
    raise SystemExit(main())
