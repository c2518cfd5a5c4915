"""Benchmark the memory store: recall and one turn's insert as the store grows.

Fills a store with N turns (default 1,000,000) across U users (default 100), then measures
p50/p95 of ``Store.recall`` and of ``Store.add_turn`` (each one committed transaction), for
one or more configurations in the same run:

    .venv/bin/python scripts/bench_memory.py                    # full size
    .venv/bin/python scripts/bench_memory.py --turns 100000     # smaller
    .venv/bin/python scripts/bench_memory.py --keep /tmp/big.db # reuse the filled store next time

Configurations compared (``--compare``): ``synchronous`` (the default: synchronous=NORMAL, as
the store runs, against FULL, which also survives a power cut) or ``recall-limit`` (5 recalled
memories, memory.recall_limit's default, against 20).
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from perslm_voice.memory import Store  # noqa: E402
from perslm_voice.memory.terms import STOP_WORDS  # noqa: E402

SYLLABLES = [c + v for c in "bcdfghjklmnprstvwz" for v in ("a", "e", "i", "o", "u", "ai", "ou")]
FILLERS = sorted(STOP_WORDS)[:60]


def make_vocabulary(size: int, rng: random.Random) -> list[str]:
    """Pseudo-words; the benchmark needs a realistic word-frequency curve, not real words."""
    words: set[str] = set()
    while len(words) < size:
        words.add("".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 4))))
    return sorted(words)


class TextMaker:
    """Sentences whose content words follow Zipf's law, mixed with stop words like speech."""

    def __init__(self, vocabulary: list[str], rng: random.Random):
        self.vocabulary = vocabulary
        self.rng = rng
        total, self.cum_weights = 0.0, []
        for rank in range(len(vocabulary)):
            total += 1.0 / (rank + 1)
            self.cum_weights.append(total)

    def sentence(self, low: int = 6, high: int = 24) -> str:
        n = self.rng.randint(low, high)
        content = self.rng.choices(self.vocabulary, cum_weights=self.cum_weights, k=max(1, n // 2))
        fill = self.rng.choices(FILLERS, k=n - len(content))
        words = content + fill
        self.rng.shuffle(words)
        return " ".join(words).capitalize() + "."


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def fill(store: Store, turns: int, users: int, maker: TextMaker, batch: int = 20000) -> list[str]:
    """Write ``turns`` turns spread over ``users`` users, sessions of 20 turns each."""
    user_ids = [f"user{i:03d}" for i in range(users)]
    per_user = turns // users
    sessions_per_user = max(1, per_user // 20)
    rows: list[tuple[int, str, str, str, float]] = []
    written = 0
    started = time.monotonic()
    for user in user_ids:
        session_ids = [store.start_session(user) for _ in range(sessions_per_user)]
        for k in range(per_user):
            session = session_ids[min(k // 20, len(session_ids) - 1)]
            rows.append(
                (session, user, "user" if k % 2 == 0 else "assistant", maker.sentence(), 0.0)
            )
            if len(rows) >= batch:
                store.add_turns_bulk(rows)
                written += len(rows)
                rows.clear()
                rate = written / (time.monotonic() - started)
                print(f"\r  filled {written:,} turns ({rate:,.0f}/s)", end="", file=sys.stderr)
    if rows:
        store.add_turns_bulk(rows)
        written += len(rows)
    print(f"\r  filled {written:,} turns in {time.monotonic() - started:.0f} s", file=sys.stderr)
    return user_ids


def measure(
    store: Store, user_ids: list[str], maker: TextMaker, samples: int, limit: int
) -> dict[str, float]:
    rng = maker.rng
    recall_ms, insert_ms, hits = [], [], []
    for _ in range(samples):
        user = rng.choice(user_ids)
        query = maker.sentence(4, 14)
        t0 = time.perf_counter()
        found = store.recall(user, query, limit)
        recall_ms.append((time.perf_counter() - t0) * 1000)
        hits.append(len(found))
    session = store.start_session(user_ids[0])
    for _ in range(samples):
        text = maker.sentence()
        t0 = time.perf_counter()
        store.add_turn(session, user_ids[0], "user", text, source="keyboard")
        insert_ms.append((time.perf_counter() - t0) * 1000)
    return {
        "recall_p50": statistics.median(recall_ms),
        "recall_p95": percentile(recall_ms, 0.95),
        "insert_p50": statistics.median(insert_ms),
        "insert_p95": percentile(insert_ms, 0.95),
        "hits": statistics.mean(hits),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=1_000_000, help="turns to store (default 1M)")
    parser.add_argument("--users", type=int, default=100, help="users to spread them over")
    parser.add_argument("--samples", type=int, default=300, help="recalls and inserts measured")
    parser.add_argument("--vocabulary", type=int, default=30000, help="distinct content words")
    parser.add_argument("--keep", type=Path, help="store file to fill once and reuse")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--compare", choices=["synchronous", "recall-limit"], default="synchronous")
    args = parser.parse_args()

    rng = random.Random(args.seed)
    maker = TextMaker(make_vocabulary(args.vocabulary, rng), rng)
    tmp = None
    if args.keep:
        path = args.keep
    else:
        tmp = tempfile.TemporaryDirectory(prefix="bench-memory-")
        path = Path(tmp.name) / "bench.db"
    reuse = path.exists()
    store = Store(path)
    if reuse and store.query("SELECT count(*) FROM turns")[0][0] >= args.turns:
        user_ids = store.users()[: args.users]
        print(f"  reusing {path}", file=sys.stderr)
    else:
        user_ids = fill(store, args.turns, args.users, maker)
    size_mb = path.stat().st_size / 1e6

    table = Table(
        title=f"memory store: {args.turns:,} turns, {len(user_ids)} users, {size_mb:,.0f} MB,"
        f" {args.samples} samples"
    )
    for column in (
        "configuration",
        "recall p50 ms",
        "recall p95 ms",
        "insert p50 ms",
        "insert p95 ms",
        "hits/recall",
    ):
        table.add_column(column, justify="right" if "ms" in column or "hits" in column else "left")
    store.close()
    configurations = {
        "synchronous": [
            ("synchronous=NORMAL (default)", "NORMAL", 5),
            ("synchronous=FULL", "FULL", 5),
        ],
        "recall-limit": [
            ("recall limit 5 (default)", "NORMAL", 5),
            ("recall limit 20", "NORMAL", 20),
        ],
    }[args.compare]
    for name, synchronous, limit in configurations:
        store = Store(path, synchronous=synchronous)
        measure(store, user_ids, maker, 20, limit)  # warm the page cache
        r = measure(store, user_ids, maker, args.samples, limit)
        store.close()
        table.add_row(
            name,
            f"{r['recall_p50']:.2f}",
            f"{r['recall_p95']:.2f}",
            f"{r['insert_p50']:.2f}",
            f"{r['insert_p95']:.2f}",
            f"{r['hits']:.1f}",
        )
    Console(width=120).print(table)
    print("targets: recall p95 <= 20 ms, insert p95 <= 5 ms")
    if tmp:
        tmp.cleanup()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
