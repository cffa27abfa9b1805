"""The model's shape: comparisons, levels and blocking rules, built with Splink's creators.

Parameters (m, u, prior) are not set here; :mod:`reconcile.training.train` estimates
them. Every level is written in SQL that :mod:`reconcile.scoring.scorer` can compile,
so a model built here always loads in the online scorer.
"""
from __future__ import annotations

from typing import Any

import splink.comparison_level_library as cll
import splink.comparison_library as cl
from splink import SettingsCreator, block_on

#: Columns with term-frequency adjustments on their exact level: values many people
#: share (placeholders, family phones, common names) then weigh less.
TF_COLUMNS: tuple[str, ...] = ("email", "phone", "name_key")

#: TF columns that are identifiers (one owner by construction), not names drawn from a
#: population: see reconcile.training.train.value_frequencies. Phones are not: a
#: household shares its landline or a parent's mobile, and a carrier reissues numbers,
#: so a phone value the training data never saw shared is NOT evidence of a unique
#: owner. The exact-phone level's u is therefore the average over values (about 5e-5
#: on the medium stream: +12.6 bits instead of +23.7), and the TF table still lowers
#: the values seen shared; an unseen family phone then no longer outweighs a clash of
#: first names.
IDENTIFIER_COLUMNS: tuple[str, ...] = ("email",)

#: Comparisons whose looser levels are the same identifier written or read differently
#: (a phone's national number or trailing digits): such a level is never stronger
#: evidence than the exact one. A number a household shares is shared however it is
#: written, but random sampling (one record per person) almost never sees two people's
#: numbers agree only on the national part or the last digits, so it gave those levels
#: u near the rule-of-three floor and +15.8 / +17.1 bits, above exact's +12.6 (whose u
#: is the average over values, see IDENTIFIER_COLUMNS). Training caps their weight at
#: the exact level's (``reconcile.training.train.cap_looser_levels``).
MONOTONE_COMPARISONS: tuple[str, ...] = ("phone",)

#: Keys candidate retrieval and Splink's prediction block on (indexed in the store).
BLOCKING_KEYS: tuple[str, ...] = ("email_mailbox", "email_local", "phone_national", "phone_tail", "name_key")

#: EM sessions: each trains m for the comparisons its key does not touch.
EM_BLOCKING_KEYS: tuple[str, ...] = ("phone_national", "email_local", "name_key")


_JW_LOCAL = 'jaro_winkler_similarity("email_local_l", "email_local_r")'


def _email() -> cl.CustomComparison:
    return cl.CustomComparison(
        output_column_name="email",
        comparison_levels=[
            cll.NullLevel("email"),
            cll.ExactMatchLevel("email", term_frequency_adjustments=True),
            cll.ExactMatchLevel("email_mailbox").configure(
                label_for_charts="Same mailbox (plus-tag, Gmail dots folded)"
            ),
            # a typo keeps the provider; a similar local part elsewhere is often just a
            # namesake's (john.smith@gmail.com / john.smith84@yahoo.com)
            cll.CustomLevel(
                f'{_JW_LOCAL} >= 0.95 AND "email_domain_l" = "email_domain_r"',
                label_for_charts="Local part similar (JW >= 0.95), same domain",
            ),
            cll.CustomLevel(
                f'{_JW_LOCAL} >= 0.88 AND "email_domain_l" = "email_domain_r"',
                label_for_charts="Local part similar (JW >= 0.88), same domain",
            ),
            cll.JaroWinklerLevel("email_local", 0.88).configure(
                label_for_charts="Local part similar (JW >= 0.88), other domain"
            ),
            cll.ExactMatchLevel("email_domain").configure(label_for_charts="Same domain only"),
            cll.ElseLevel(),
        ],
        comparison_description="email: exact, mailbox, local-part similarity, domain",
    )


def _phone() -> cl.CustomComparison:
    return cl.CustomComparison(
        output_column_name="phone",
        comparison_levels=[
            cll.NullLevel("phone"),
            cll.ExactMatchLevel("phone", term_frequency_adjustments=True),
            cll.ExactMatchLevel("phone_national").configure(label_for_charts="Same national number"),
            cll.ExactMatchLevel("phone_tail").configure(label_for_charts="Same trailing digits"),
            cll.ElseLevel(),
        ],
        comparison_description="phone: exact E.164, national number, trailing digits",
    )


#: Two first names are the same person's when any of their nickname keys agree
#: (features.first_name_keys: equal, or nicknames of each other).
_SAME_FIRST = "(" + " OR ".join(
    f'"{a}_l" = "{b}_r"'
    for a, b in (
        ("name_first_nick", "name_first_nick"),
        ("name_first_nick", "name_first_nick2"),
        ("name_first_nick2", "name_first_nick"),
        ("name_first_nick2", "name_first_nick2"),
    )
) + ")"
_SIMILAR_FIRST = f'({_SAME_FIRST} OR jaro_winkler_similarity("name_first_l", "name_first_r") >= 0.88)'
_SAME_LAST = '"name_last_l" = "name_last_r"'


def _name() -> cl.CustomComparison:
    return cl.CustomComparison(
        output_column_name="name",
        comparison_levels=[
            # a missing name neither helps nor hurts: the null level weighs 0
            cll.NullLevel("name_key"),
            # name_key sorts tokens, so "Smith John" = "John Smith" lands here
            cll.ExactMatchLevel("name_key", term_frequency_adjustments=True),
            cll.JaroWinklerLevel("name_key", 0.92),
            cll.CustomLevel(
                f"{_SAME_LAST} AND {_SIMILAR_FIRST}",
                label_for_charts="Same last name, first name a nickname or similar",
            ),
            # the family level: relatives share a surname (and often a phone), not a first name
            cll.CustomLevel(_SAME_LAST, label_for_charts="Same last name, different first name"),
            cll.CustomLevel(_SAME_FIRST, label_for_charts="Same first name or nickname, different last name"),
            cll.JaroWinklerLevel("name_key", 0.80),
            cll.ElseLevel(),
        ],
        comparison_description=(
            "name: exact (any token order), similarity, same surname with the same/similar first name "
            "vs a different one (relatives), same first name only"
        ),
    )


def settings_creator(probability_two_random_records_match: float = 1e-4) -> SettingsCreator:
    """Untrained settings for a dedupe over feature rows keyed by ``unique_id``."""
    return SettingsCreator(
        link_type="dedupe_only",
        unique_id_column_name="unique_id",
        probability_two_random_records_match=probability_two_random_records_match,
        comparisons=[_email(), _phone(), _name()],
        blocking_rules_to_generate_predictions=[block_on(key) for key in BLOCKING_KEYS],
        retain_matching_columns=True,
        retain_intermediate_calculation_columns=False,
    )


def em_blocking_rules() -> list[Any]:
    """Blocking rules for the EM sessions that estimate m."""
    return [block_on(key) for key in EM_BLOCKING_KEYS]
