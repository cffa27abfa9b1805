"""Online scorer latency: load time, one candidate, and ``score_many`` of 20 candidates.

Records come from the medium synthetic stream (the committed sample when it is absent).
Candidates for ``score_many`` are realistic: records sharing a blocking key with the
query (mailbox, local part, national number, trailing digits, name key), padded with
random records to exactly 20. Writes ``bench/results/scoring.json``.
"""
from __future__ import annotations

import argparse
import json
import random
import statistics
import time
from collections import defaultdict
from pathlib import Path

from reconcile.config import DEFAULT_MODEL, PROJECT_ROOT
from reconcile.normalize import InvalidInput, normalize_email, normalize_name, normalize_phone
from reconcile.scoring import Scorer, features
from reconcile.scoring.model_spec import BLOCKING_KEYS
from reconcile.training.train import iter_jsonl

MEDIUM = PROJECT_ROOT / "data" / "synth" / "stream-medium-seed0.jsonl"
SAMPLE = PROJECT_ROOT / "data" / "sample_stream.jsonl"
RESULTS = PROJECT_ROOT / "bench" / "results" / "scoring.json"


def _records(path: Path, limit: int) -> list[dict]:
    out = []
    for event in iter_jsonl(path):
        try:
            rec = features(
                normalize_email(event.get("email")),
                normalize_phone(event.get("phoneNumber")),
                normalize_name(event.get("name")),
            )
        except InvalidInput:
            continue
        if rec["email"] or rec["phone"]:
            out.append(rec)
        if len(out) >= limit:
            break
    return out


def _percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "median_ms": round(statistics.median(ordered) * 1e3, 4),
        "p99_ms": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1e3, 4),
        "n": len(ordered),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench scoring", description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=str(DEFAULT_MODEL))
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--queries", type=int, default=2_000)
    args = parser.parse_args(argv)

    loads = []
    for _ in range(5):
        t0 = time.perf_counter()
        scorer = Scorer.load(args.model)
        loads.append(time.perf_counter() - t0)

    records = _records(MEDIUM if MEDIUM.exists() else SAMPLE, args.records)
    index: dict[tuple[str, str], list[int]] = defaultdict(list)
    for i, rec in enumerate(records):
        for key in BLOCKING_KEYS:
            if rec[key]:
                index[(key, rec[key])].append(i)
    rng = random.Random(0)

    single, many, per_candidate = [], [], []
    for _ in range(args.queries):
        q = rng.randrange(len(records))
        query = records[q]
        found = {i for key in BLOCKING_KEYS if query[key] for i in index[(key, query[key])] if i != q}
        candidates = [records[i] for i in sorted(found)[:20]]
        while len(candidates) < 20:
            candidates.append(records[rng.randrange(len(records))])
        t0 = time.perf_counter()
        scorer.score(query, candidates[0])
        single.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        scorer.score_many(query, candidates)
        elapsed = time.perf_counter() - t0
        many.append(elapsed)
        per_candidate.append(elapsed / len(candidates))

    report = {
        "model": scorer.version,
        "records": len(records),
        "load": _percentiles(loads),
        "score_one_pair": _percentiles(single),
        "score_many_20": _percentiles(many),
        "per_candidate_in_score_many": _percentiles(per_candidate),
    }
    print(f"model {scorer.version} over {len(records)} records, {args.queries} queries")
    for name in ("load", "score_one_pair", "score_many_20", "per_candidate_in_score_many"):
        r = report[name]
        print(f"  {name:<28} median {r['median_ms']:>9.4f} ms   p99 {r['p99_ms']:>9.4f} ms")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
