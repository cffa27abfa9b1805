"""Whether two personal names could belong to the same person.

Used by the shared-identifier guard: an email or phone that already carries a name
*clearly different* from the request's is probably shared (a family phone, a role
mailbox, a till placeholder), so linking on it alone is not safe. "Clearly different"
is deliberately conservative: order swaps, initials, clipped forms ("Al", "Alex"),
nicknames, dropped diacritics and small typos all count as compatible. The size and
known-shared holds ask the converse (:func:`one_person`): do all the names of the groups
a join would make one belong to one person?
"""
from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from functools import lru_cache

import jellyfish

from .normalize import name_key

TOKEN_SIMILARITY = 0.88

# Common English given-name diminutives; each row is one family of equivalent forms.
_ENGLISH_FAMILIES = [
    "william bill will billy liam willy",
    "robert bob rob bobby robbie bert",
    "richard rick dick rich ricky richie",
    "elizabeth liz beth betty lizzie eliza libby betsy",
    "katherine catherine kate katie kathy cathy kat kit",
    "margaret maggie meg peggy marge madge greta",
    "james jim jimmy jamie",
    "john jack johnny jon",
    "jonathan jon jonny nathan",
    "michael mike mick mikey",
    "christopher chris kit topher",
    "christine chris chrissy tina kristine",
    "thomas tom tommy",
    "joseph joe joey",
    "charles charlie chuck chas",
    "daniel dan danny",
    "matthew matt matty",
    "anthony tony ant",
    "andrew andy drew",
    "edward ed eddie ted ned",
    "benjamin ben benny",
    "samuel sam sammy",
    "samantha sam sammy",
    "alexander alex alec sandy xander",
    "alexandra alex sandra sandy lexi",
    "nicholas nick nicky",
    "patrick pat paddy",
    "patricia pat patty trish tricia",
    "stephen steven steve stevie",
    "timothy tim timmy",
    "jennifer jen jenny",
    "jessica jess jessie",
    "rebecca becky becca",
    "susan sue susie suzanne",
    "deborah debbie deb debra",
    "barbara barb babs",
    "victoria vicky tori",
    "theodore ted teddy theo",
    "gregory greg",
    "peter pete",
    "david dave davey",
    "donald don donnie",
    "ronald ron ronnie",
    "kenneth ken kenny",
    "lawrence larry",
    "frederick fred freddie",
    "henry harry hank",
    "francis frank frankie fran",
    "gerald gerry jerry",
    "raymond ray",
    "abigail abby gail",
    "amanda mandy",
    "dorothy dot dottie",
    "eleanor ellie nell nora",
    "josephine jo josie",
    "judith judy",
    "kimberly kim",
    "pamela pam",
    "sandra sandy",
    "valerie val",
    "zachary zach zack",
    "mohammed muhammad mohamed mohammad",
    "aleksandr alexander sasha",
    "ivan vanya",
    "giuseppe joseph pino",
    "jose pepe",
    "francisco paco pancho",
    "guillermo memo",
]


#: Given-name hypocorisms of the other cultures the service sees: without them
#: "Chuy" / "Jesus Garcia" looks like two relatives sharing a surname, the very
#: pattern the model must learn to distrust. Each row: the full name first, then the
#: forms it goes by; tokens folded as :func:`reconcile.normalize.name_key` folds them
#: (``ł`` stays).
_OTHER_FAMILIES: tuple[str, ...] = (
    # anglo
    "alexander al", "zoe zoey", "emily em emmy", "sarah sally sadie", "olivia liv livvy",
    # hispanic
    "jose pepe chepe", "francisco paco pancho curro", "alejandro alex alejo ale",
    "guadalupe lupe lupita", "jesus chuy chucho", "manuel manolo manu", "ignacio nacho",
    "roberto beto", "eduardo lalo", "dolores lola lolita", "mercedes meche merche",
    "isabel chabela isa", "concepcion concha conchita", "rosario charo", "enrique quique",
    "rafael rafa", "fernando nando", "javier javi", "antonio tono toni",
    # german
    "johannes hannes jo hans", "wolfgang wolf", "katharina kathi kati", "friedrich fritz",
    "stefanie steffi", "maximilian max", "ursula uschi", "sebastian basti", "tobias tobi",
    "andreas andi", "susanne susi",
    # french
    "frederic fred", "stephane steph", "genevieve ginette", "nathalie nath", "guillaume guigui",
    "nicolas nico", "emmanuel manu",
    # indian
    "venkatesh venky", "subramanian subbu mani", "srinivas srini seenu", "rajesh raj",
    "priyanka priya", "aishwarya aish", "vikram vicky", "mohammed mohd mo",
    # brazilian / portuguese
    "antonio toninho tonho", "sebastiao tiao", "julia ju", "leticia le", "rodrigo digo",
    "gabriel biel gabi", "eduarda duda", "fernanda nanda", "vinicius vini", "beatriz bia",
    # arabic
    "muhammad mo", "abdullah abdul",
    # polish
    "grzegorz grzesiek", "małgorzata gosia", "katarzyna kasia", "agnieszka aga", "wojciech wojtek",
    "krzysztof krzysiek", "aleksandra ola", "zofia zosia", "tomasz tomek",
)

#: Every nickname family, one row each, the full name first. The model's first-name keys
#: (:mod:`reconcile.scoring.features`) depend on this order: append, never reorder.
NICKNAME_FAMILIES: tuple[str, ...] = (*_ENGLISH_FAMILIES, *_OTHER_FAMILIES)


#: Letters that Unicode does not decompose, so :func:`reconcile.normalize.name_key` keeps
#: them, with how they are written without them: "Groß" typed as "Gross", "Łukasz" as
#: "Lukasz" is the same name with its diacritics dropped (the module's own rule), not a
#: typo; Jaro-Winkler alone scores "groß" / "gross" at 0.85.
_ASCII_SPELLING = str.maketrans({"ß": "ss", "ł": "l", "ø": "o", "đ": "d", "æ": "ae", "œ": "oe", "þ": "th", "ı": "i"})

#: a short form at least this long that starts the other token is compatible with it
#: ("Al" / "Alex", "Sam" / "Samuel"); one letter is an initial, handled on its own
MIN_SHORT_FORM = 2


@lru_cache(maxsize=1)
def _full_names() -> dict[str, frozenset[str]]:
    """Each token's full names: the first word of every family it appears in.

    Two forms are the same name when they share a full name, whichever rows list them:
    "al" (row "alexander al") and "alex" (row "alexander alex alec ...") both go back to
    "alexander". Only one step: "kit" (Katherine, Christopher) does not make Katherine
    and Christopher one name.
    """
    heads: dict[str, set[str]] = {}
    for family in NICKNAME_FAMILIES:
        tokens = family.split()
        for token in tokens:
            heads.setdefault(token, set()).add(tokens[0])
    return {token: frozenset(found) for token, found in heads.items()}


@lru_cache(maxsize=1)
def _family_tokens() -> dict[str, frozenset[str]]:
    """Each token's nicknames: every token of every family it appears in."""
    found: dict[str, set[str]] = {}
    for family in NICKNAME_FAMILIES:
        tokens = family.split()
        for token in tokens:
            found.setdefault(token, set()).update(tokens)
    return {token: frozenset(tokens) for token, tokens in found.items()}


@lru_cache(maxsize=1 << 16)
def _tokens_compatible(a: str, b: str) -> bool:
    if a == b:
        return True
    heads = _full_names()  # before the ASCII spelling: the families keep "ł"
    if heads.get(a, frozenset()) & heads.get(b, frozenset()):
        return True
    a, b = a.translate(_ASCII_SPELLING), b.translate(_ASCII_SPELLING)
    if a == b:
        return True
    if len(a) == 1 or len(b) == 1:  # an initial
        return a[0] == b[0]
    short, long = sorted((a, b), key=len)
    if len(short) >= MIN_SHORT_FORM and long.startswith(short):  # a clipped form: "al" / "alex"
        return True
    if heads.get(a, frozenset()) & heads.get(b, frozenset()):
        return True
    return jellyfish.jaro_winkler_similarity(a, b) >= TOKEN_SIMILARITY


def names_compatible(a: str | None, b: str | None) -> bool:
    """True unless both names are present and clearly belong to different people.

    Every token of the shorter name must find a compatible token in the longer one
    (equal, equal once written in ASCII (``ß`` as ``ss``), initial, a clipped form of
    it, a nickname of the same full name, or Jaro-Winkler >= 0.88), in any order.
    """
    return keys_compatible(name_key(a), name_key(b))


@lru_cache(maxsize=1 << 16)
def keys_compatible(ka: str | None, kb: str | None) -> bool:
    """:func:`names_compatible` on :func:`reconcile.normalize.name_key` values, the form
    contacts store (``nameKey``): the guards compare stored keys, never re-normalising."""
    if not ka or not kb:
        return True
    ta, tb = ka.split(), kb.split()
    if len(ta) > len(tb):
        ta, tb = tb, ta
    return all(any(_tokens_compatible(x, y) for y in tb) for x in ta)


#: A name as the guards compare it: the name as given (for messages) and its key; a
#: present name with an empty key (only punctuation) is compatible with every name.
NamedKey = tuple[str, str | None]


def distinct_names(names: Iterable[NamedKey], limit: int | None = None) -> list[NamedKey]:
    """Greedy clusters of mutually compatible names: one representative per person, in
    the order given; with ``limit``, stop once more than ``limit`` are found."""
    representatives: list[NamedKey] = []
    for name, key in names:
        if name and not any(keys_compatible(key, rep) for _, rep in representatives):
            representatives.append((name, key))
            if limit is not None and len(representatives) > limit:
                break
    return representatives


#: a local part with fewer letters than this says nothing about whose it is
MIN_LOCAL_LETTERS = 3


def _letters(local: str) -> str:
    folded = unicodedata.normalize("NFKD", local.split("+", 1)[0])
    return "".join(ch for ch in folded if ch.isascii() and ch.isalpha()).lower()


def local_part_names_nobody(local: str, name_keys: Iterable[str], other_locals: Iterable[str]) -> bool:
    """True when an email's local part clearly belongs to none of these people: it has
    letters enough to say, and contains none of their name tokens (2+ letters) or those
    tokens' nicknames, and looks like none of their own local parts (Jaro-Winkler of the
    letters >= 0.88). ``chenhe12`` names "Chen He"; ``oliviam65553`` names neither
    "Katherine Moore" nor ``katherine.moore``. Surnames count, so a relative's address
    (``fang.he`` beside "Chen He") is NOT told apart: only evidence that the address is
    a stranger's (a recycled number, a borrowed phone) says True."""
    letters = _letters(local)
    if len(letters) < MIN_LOCAL_LETTERS:
        return False
    nicknames = _family_tokens()
    for key in name_keys:
        for token in key.split():
            if len(token) < 2:
                continue
            variants = {token} | {nick for nick in nicknames.get(token, ()) if len(nick) >= 2}
            if any(v in letters for v in variants):
                return False
    for other in other_locals:
        theirs = _letters(other)
        if theirs and jellyfish.jaro_winkler_similarity(letters, theirs) >= TOKEN_SIMILARITY:
            return False
    return True


def one_person(*sides: Iterable[str | None]) -> bool:
    """True when every side carries a name and all the names on all sides are pairwise
    compatible: by the names alone, one person. The evidence a size guard asks before it
    holds a join (:meth:`reconcile.engine.guards.Guards.merge_block`): a chain of false
    joins through a family phone or a borrowed email brings in other names, one person's
    many contacts do not. Pairwise, not greedy clusters: "J Smith" is compatible with
    both "John Smith" and "Jane Smith", who are not one person. A side without names
    (nameless contacts, a nameless request) is no evidence, so the answer is False."""
    keys: set[str] = set()
    for side in sides:
        named = {key for key in side if key}
        if not named:
            return False
        keys |= named
    ordered = sorted(keys)
    return all(keys_compatible(a, b) for i, a in enumerate(ordered) for b in ordered[i + 1:])
