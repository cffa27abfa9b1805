"""String similarities with DuckDB's exact arithmetic.

Splink runs the model's levels in DuckDB, so the online scorer must pick the same
level at every threshold boundary. jellyfish computes Jaro-Winkler with different
floating-point steps (0.9199999999999999 where DuckDB says 0.92) and on code points,
whereas DuckDB works on UTF-8 bytes. This module follows DuckDB's bundled
``jaro_winkler`` (a port of rapidfuzz): greedy matching of the second string's
bytes against the first's within the window ``max(len)/2 - 1``, transpositions
halved by integer division, ``(c/len1 + c/len2 + (c - t)/c) / 3`` and the Winkler
boost ``sim + prefix * 0.1 * (1 - sim)`` when ``sim > 0.7``. The Jaro part is
rapidfuzz's own C++ on the UTF-8 bytes (a pure-Python kernel cost about 6 µs a pair,
the scorer's largest cost; rapidfuzz about 0.4 µs). The Winkler boost is not taken
from rapidfuzz: the DuckDB 2.0 build evaluates it as one fused multiply-add (a single
rounding), measured over 200k random pairs, and :func:`_fma` reproduces that on
Python 3.11, which has no ``math.fma``.

That arithmetic belongs to one DuckDB build: DuckDB 2.0.1 already puts "łukasz" and
"lukasz" on another side of a threshold. :data:`REPRODUCED_DUCKDB` names the build
these functions were checked against (``tests/test_scorer_conformance.py``), and
:func:`check_duckdb_build` refuses to score beside any other, since training (in
DuckDB) and online scoring (here) would then disagree without a word.
"""
from __future__ import annotations

from importlib import metadata

from rapidfuzz.distance.Jaro import similarity as _jaro

REPRODUCED_DUCKDB = "2.0.0"
PREFIX_WEIGHT = 0.1
MAX_PREFIX = 4


class DuckDBBuildMismatch(RuntimeError):
    """The installed DuckDB is not the build whose arithmetic this module reproduces."""


def check_duckdb_build(installed: str | None = None) -> None:
    """Fail unless the installed DuckDB is the reproduced build (see the module doc).

    Upgrading DuckDB is a deliberate act: re-lock, run the conformance tests, and if
    they pass unchanged, move :data:`REPRODUCED_DUCKDB` along with the lock."""
    if installed is None:
        try:
            installed = metadata.version("duckdb")
        except metadata.PackageNotFoundError:
            installed = "none"
    if installed != REPRODUCED_DUCKDB:
        raise DuckDBBuildMismatch(
            f"DuckDB {installed} is installed, but the online scorer reproduces the string "
            f"similarities of DuckDB {REPRODUCED_DUCKDB} bit for bit; install from the lock "
            "(requirements/*.txt) or re-check the scorer against the new build"
        )


def _jaro_bytes(p: bytes, t: bytes) -> float:
    """DuckDB's Jaro similarity of two byte strings (0.0 when either is empty), computed
    by rapidfuzz: DuckDB's kernel is a port of it, and the two agree bit for bit on every
    non-empty pair (``tests/test_jaro_kernel.py`` checks it against the greedy algorithm
    written out in Python)."""
    if not p or not t:
        return 0.0
    return _jaro(p, t)


def _fma(x: float, y: float, z: float) -> float:
    """``x * y + z`` rounded once, like the hardware FMA instruction."""
    xn, xd = x.as_integer_ratio()
    yn, yd = y.as_integer_ratio()
    zn, zd = z.as_integer_ratio()
    # all denominators are powers of two: bring everything over the larger one
    pd = xd * yd
    pn = xn * yn
    if pd >= zd:
        return (pn + zn * (pd // zd)) / pd
    return (pn * (zd // pd) + zn) / zd


def jaro_similarity(a: str, b: str) -> float:
    """DuckDB's ``jaro_similarity(a, b)``."""
    return _jaro_bytes(a.encode("utf-8"), b.encode("utf-8"))


def jaro_winkler_similarity(a: str, b: str) -> float:
    """DuckDB's ``jaro_winkler_similarity(a, b)``, bit for bit."""
    p = a.encode("utf-8")
    t = b.encode("utf-8")
    if p == t:
        return 1.0 if p else 0.0
    max_prefix = min(len(p), len(t), MAX_PREFIX)
    prefix = 0
    while prefix < max_prefix and p[prefix] == t[prefix]:
        prefix += 1
    sim = _jaro_bytes(p, t)
    if sim > 0.7 and prefix:  # no common prefix: the boost adds an exact 0
        sim = _fma(prefix * PREFIX_WEIGHT, 1.0 - sim, sim)
    return sim


def levenshtein(a: str, b: str) -> int:
    """DuckDB's ``levenshtein(a, b)``: edit distance over UTF-8 bytes."""
    p = a.encode("utf-8")
    t = b.encode("utf-8")
    if len(p) < len(t):
        p, t = t, p
    previous = list(range(len(t) + 1))
    for i, pc in enumerate(p, 1):
        current = [i]
        for j, tc in enumerate(t, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (pc != tc)))
        previous = current
    return previous[-1]
