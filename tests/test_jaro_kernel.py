"""The scorer's Jaro kernel (rapidfuzz's C++ on UTF-8 bytes) computes exactly DuckDB's
greedy Jaro, written out below in Python as the oracle: every pair of byte strings, of
any length (rapidfuzz changes algorithm past 64 bytes) and with many repeated bytes (where
the greedy matching and the transposition count are easiest to get wrong), gives the
same float, bit for bit. ``test_scorer.py`` checks the whole Jaro-Winkler against DuckDB
itself; this test covers far more pairs than a DuckDB round trip can.
"""
from __future__ import annotations

from hypothesis import example, given, settings
from hypothesis import strategies as st

from reconcile.scoring.similarity import _jaro_bytes


def greedy_jaro(p: bytes, t: bytes) -> float:
    """DuckDB's ``jaro_similarity`` on bytes: each byte of ``t`` takes the first unmatched
    equal byte of ``p`` within ``max(len)/2 - 1``, transpositions halved by integer division."""
    p_len, t_len = len(p), len(t)
    if not p_len or not t_len:
        return 0.0
    if p_len == 1 and t_len == 1:
        return 1.0 if p == t else 0.0
    bound = (max(p_len, t_len) // 2) - 1
    p_flag = [False] * p_len
    t_matched: list[int] = []
    for j in range(t_len):
        for i in range(max(0, j - bound), min(p_len, j + bound + 1)):
            if not p_flag[i] and p[i] == t[j]:
                p_flag[i] = True
                t_matched.append(j)
                break
    common = len(t_matched)
    if not common:
        return 0.0
    p_positions = [i for i in range(p_len) if p_flag[i]]
    transpositions = sum(1 for j, i in zip(t_matched, p_positions) if t[j] != p[i]) // 2
    sim = 0.0
    sim += common / p_len
    sim += common / t_len
    sim += (common - transpositions) / common
    return sim / 3.0


few_bytes = st.binary(max_size=90).map(lambda b: bytes(x % 4 + 97 for x in b))
text = st.text(alphabet="abcdeéø .-", max_size=30).map(lambda s: s.encode("utf-8"))


@settings(max_examples=3000, deadline=None)
@given(p=st.one_of(few_bytes, text, st.binary(max_size=140)), t=st.one_of(few_bytes, text, st.binary(max_size=140)))
@example(p=b"", t=b"")
@example(p=b"a", t=b"a")
@example(p=b"a", t=b"b")
@example(p=b"ababdcdafccc", t=b"aabdcafccc")
def test_the_jaro_kernel_is_the_greedy_jaro_bit_for_bit(p: bytes, t: bytes) -> None:
    assert _jaro_bytes(p, t) == greedy_jaro(p, t)

