"""A seeded, labelled stream of checkout events for training and evaluating the matcher.

Real customer data cannot ship with an open-source project, and accuracy claims need a
ground truth, so this module simulates one: a population of people (names from several
cultures, 1-3 emails, 1-2 phones in several countries) who check out a heavy-tailed
number of times, typing their details with the noise tills see (typos, plus-aliases,
Gmail dots, case, phone formats, missing fields, nicknames, swapped or unaccented
names) and sharing identifiers that chain different people (placeholders, family
phones, role mailboxes, recycled numbers). Every event carries its true ``person``.

Generation is pure Python, deterministic for a seed, and streams: people exist only
while they are active, so the 1M-event stream never sits in memory.
"""
from __future__ import annotations

import gzip
import heapq
import json
import random
import unicodedata
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import IO

import phonenumbers
from phonenumbers import PhoneNumberFormat, PhoneNumberType

from ..config import PROJECT_ROOT
from ..normalize import mailbox_key

#: ``sample`` is the small committed stream tests and docs use (data/sample_stream.jsonl).
SIZES: dict[str, int] = {"sample": 500, "small": 5_000, "medium": 50_000, "large": 1_000_000}
SYNTH_DIR = PROJECT_ROOT / "data" / "synth"
SAMPLE_PATH = PROJECT_ROOT / "data" / "sample_stream.jsonl"

START = datetime(2024, 1, 1, tzinfo=timezone.utc)
HORIZON_DAYS = 365.0
#: A person's purchases spread over about this many days, whatever their count.
ACTIVE_SPAN_DAYS = 120.0
#: Tail exponent of events per person: P(n >= k) = k ** -ALPHA (62% make one event).
ALPHA = 1.4
MAX_EVENTS_PER_PERSON = 300
MEAN_EVENTS_PER_PERSON = 2.85  # of the distribution above; sets the arrival rate


@dataclass(frozen=True)
class Rates:
    """Per-event (or per-person where noted) probabilities of each kind of noise."""

    missing_email: float = 0.10
    missing_phone: float = 0.12
    missing_name: float = 0.15
    email_typo: float = 0.03
    plus_alias: float = 0.03
    gmail_dots: float = 0.12  # of events using a Gmail address
    email_case: float = 0.08
    whitespace: float = 0.04
    nickname: float = 0.15  # of events whose first name has nicknames
    name_swap: float = 0.04
    drop_diacritics: float = 0.40  # of events whose name has diacritics
    name_case: float = 0.04
    phone_int: float = 0.05
    placeholder_person: float = 0.05  # per person: often refuses to give details at the till
    placeholder_use: float = 0.25  # of such a person's events: a placeholder email or phone
    placeholder_background: float = 0.002  # of anyone's events: the clerk types a placeholder
    phone_change: float = 0.01  # per event: the person switches to a new number
    family: float = 0.12  # per person: lives in a family sharing a phone
    employee: float = 0.06  # per person: also uses a shared role mailbox
    role_mailbox_use: float = 0.35  # of an employee's events
    recycled_phone: float = 0.03  # per person: gets a number someone used before
    #: of events: an identifier written as real systems write it (a ``tel:`` URI, a
    #: no-break space, a spreadsheet's apostrophe, an extension, ``mailto:``, angle
    #: brackets, a space at the ``@``, a trailing dot, decomposed accents). Drawn from a
    #: second random stream, so changing it leaves every other choice of a seed as it was.
    real_world_format: float = 0.02


#: How real systems write a phone (issue 8: RFC 3966 URIs, Unicode spaces, a
#: spreadsheet's leading apostrophe, pauses and extensions): each turns a rendering into
#: another string that means the same number.
PHONE_WRITINGS = (
    ("tel_uri", lambda p, r: "tel:" + p.intl.replace(" ", "-")),
    ("nbsp", lambda p, r: p.intl.replace(" ", r.choice(("\u00a0", "\u202f", "\u2009")))),
    ("apostrophe", lambda p, r: "'" + p.national),
    ("extension", lambda p, r: p.national + r.choice((",,", " ext. ", " x", ";", "#")) + str(r.randint(1, 999))),
)
#: The same for emails: a mail link, a display form, a space at the @, a trailing dot.
EMAIL_WRITINGS = (
    ("mailto", lambda e, r: r.choice(("mailto:", "MAILTO:")) + e),
    ("angle_brackets", lambda e, r: f"<{e}>"),
    ("space_at", lambda e, r: e.replace("@", r.choice((" @", "@ ", " @ ")))),
    ("trailing_dot", lambda e, r: e + "."),
)

#: Phone renderings and their weights: E.164, international spaced, national,
#: international with a 00 prefix, national digits only.
PHONE_FORMATS = (("e164", 0.30), ("intl", 0.15), ("national", 0.37), ("00", 0.05), ("digits", 0.13))

PLACEHOLDER_EMAILS = ("noemail@noemail.com", "none@none.com", "na@na.com", "test@test.com", "no@email.com")
PLACEHOLDER_PHONES = ("000-000-0000", "1234567890", "0000000000", "9999999999", 1234567890)

# --- names ------------------------------------------------------------------------------

#: First names by culture; the values are nicknames people also go by.
FIRST_NAMES: dict[str, dict[str, tuple[str, ...]]] = {
    "anglo": {
        "William": ("Bill", "Will", "Billy", "Liam"), "Robert": ("Bob", "Rob", "Bobby"),
        "Elizabeth": ("Liz", "Beth", "Lizzie", "Betty"), "Katherine": ("Kate", "Kathy", "Katie"),
        "James": ("Jim", "Jimmy", "Jamie"), "John": ("Johnny", "Jack"), "Michael": ("Mike", "Mikey"),
        "Richard": ("Rick", "Dick", "Rich"), "Thomas": ("Tom", "Tommy"), "Charles": ("Charlie", "Chuck"),
        "Christopher": ("Chris",), "Daniel": ("Dan", "Danny"), "Matthew": ("Matt",),
        "Anthony": ("Tony",), "Joseph": ("Joe", "Joey"), "Edward": ("Ed", "Eddie", "Ted"),
        "Margaret": ("Maggie", "Peggy", "Meg"), "Jennifer": ("Jen", "Jenny"), "Patricia": ("Pat", "Trish"),
        "Susan": ("Sue", "Susie"), "Deborah": ("Debbie", "Deb"), "Jessica": ("Jess",),
        "Rebecca": ("Becky", "Becca"), "Alexander": ("Alex", "Al"), "Samantha": ("Sam",),
        "Benjamin": ("Ben",), "Nicholas": ("Nick",), "Victoria": ("Vicky", "Tori"),
        "Emily": (), "Sarah": (), "Laura": (), "Emma": (), "Olivia": (), "Grace": (),
        "David": ("Dave",), "Andrew": ("Andy", "Drew"), "Steven": ("Steve",), "Timothy": ("Tim",),
        "Jonathan": ("Jon",), "Kimberly": ("Kim",), "Amanda": ("Mandy",), "Zoë": ("Zoe",),
    },
    "hispanic": {
        "José": ("Pepe",), "Francisco": ("Paco", "Pancho"), "Alejandro": ("Alex", "Alejo"),
        "Guadalupe": ("Lupe",), "Jesús": ("Chuy",), "Manuel": ("Manolo",), "Ignacio": ("Nacho",),
        "Roberto": ("Beto",), "Eduardo": ("Lalo",), "Dolores": ("Lola",), "Mercedes": ("Meche",),
        "María": (), "Lucía": (), "Sofía": (), "Carmen": (), "Isabel": ("Chabela",), "Ana": (),
        "Javier": (), "Carlos": (), "Andrés": (), "Raúl": (), "Ramón": (), "Mónica": (), "Inés": (),
    },
    "german": {
        "Johannes": ("Hannes", "Jo"), "Wolfgang": ("Wolf",), "Katharina": ("Kathi",),
        "Friedrich": ("Fritz",), "Stefanie": ("Steffi",), "Alexander": ("Alex",),
        "Jürgen": (), "Jörg": (), "Björn": (), "Günther": (), "Uwe": (), "Lukas": (), "Maximilian": ("Max",),
        "Sabine": (), "Ursula": ("Uschi",), "Anke": (), "Jürgen-Peter": (), "Dörte": (), "Heike": (),
        "Sebastian": ("Basti",), "Tobias": ("Tobi",), "Felix": (), "Lena": (),
    },
    "french": {
        "François": (), "Frédéric": ("Fred",), "Hélène": (), "Céline": (), "Jérôme": (), "Amélie": (),
        "Stéphane": ("Steph",), "Benoît": (), "Geneviève": ("Ginette",), "Élodie": (), "Noël": (),
        "Jean-Luc": (), "Marie-Claire": (), "Thérèse": (), "Chloé": (), "Léa": (), "Mathéo": (),
        "Nathalie": ("Nath",), "Guillaume": ("Guigui",), "Camille": (), "Antoine": (), "Julien": (),
    },
    "indian": {
        "Venkatesh": ("Venky",), "Subramanian": ("Subbu", "Mani"), "Srinivas": ("Srini", "Seenu"),
        "Rajesh": ("Raj",), "Priyanka": ("Priya",), "Lakshmi": (), "Aishwarya": ("Aish",),
        "Rahul": (), "Amit": (), "Sanjay": (), "Deepak": (), "Vikram": ("Vicky",), "Arjun": (),
        "Ananya": (), "Kavya": (), "Pooja": (), "Sunita": (), "Neha": (), "Harpreet": (),
        "Mohammed": ("Mohd",), "Anil": (), "Suresh": (),
    },
    "brazilian": {
        "João": (), "Antônio": ("Toninho",), "Luiz": (), "Gonçalo": (), "Sebastião": ("Tião",),
        "Conceição": (), "Fátima": (), "Luíza": (), "Júlia": ("Ju",), "Letícia": ("Lê",),
        "Rodrigo": ("Digo",), "Gabriel": ("Biel",), "Rafael": ("Rafa",), "Eduarda": ("Duda",),
        "Fernanda": ("Nanda",), "Thiago": (), "Vinícius": ("Vini",), "Beatriz": ("Bia",),
    },
    "chinese": {
        "Wei": (), "Jing": (), "Li Na": (), "Xiaoming": (), "Yan": (), "Hui": (), "Jun": (),
        "Lei": (), "Fang": (), "Min": (), "Hao": (), "Mei": (), "Yu": (), "Chen": (),
    },
    "arabic": {
        "Muhammad": ("Mo",), "Abdullah": ("Abdul",), "Fatima": (), "Aisha": (), "Omar": (),
        "Yusuf": (), "Ibrahim": (), "Khalid": (), "Layla": (), "Zainab": (), "Hassan": (), "Mariam": (),
    },
    "polish": {
        "Łukasz": (), "Paweł": (), "Michał": (), "Grzegorz": ("Grzesiek",), "Małgorzata": ("Gosia",),
        "Katarzyna": ("Kasia",), "Agnieszka": ("Aga",), "Wojciech": ("Wojtek",), "Krzysztof": ("Krzysiek",),
        "Aleksandra": ("Ola",), "Zofia": ("Zosia",), "Tomasz": ("Tomek",),
    },
}

SURNAMES: dict[str, tuple[str, ...]] = {
    "anglo": (
        "Smith", "Johnson", "Williams", "Brown", "Jones", "Miller", "Davis", "Wilson", "Anderson", "Taylor",
        "Thomas", "Moore", "Jackson", "Martin", "Thompson", "White", "Harris", "Clark", "Lewis", "Robinson",
        "Walker", "Young", "Allen", "King", "Wright", "Scott", "Green", "Baker", "Adams", "Nelson", "Hill",
        "Campbell", "Mitchell", "Roberts", "Carter", "Phillips", "Evans", "Turner", "Parker", "Collins",
        "Edwards", "Stewart", "Morris", "Murphy", "Cook", "Rogers", "O'Brien", "O'Connor", "McDonald",
        "MacLeod", "Fitzgerald", "Hughes", "Price", "Bennett", "Wood", "Barnes", "Ross", "Henderson",
    ),
    "hispanic": (
        "García", "Rodríguez", "Martínez", "Hernández", "López", "González", "Pérez", "Sánchez", "Ramírez",
        "Torres", "Flores", "Rivera", "Gómez", "Díaz", "Cruz", "Morales", "Reyes", "Gutiérrez", "Ortiz",
        "Jiménez", "Ruiz", "Álvarez", "Castillo", "Romero", "Vargas", "Mendoza", "Núñez", "Ibáñez",
        "de la Cruz", "Castro", "Ortega", "Delgado", "Peña", "Muñoz", "Guzmán",
    ),
    "german": (
        "Müller", "Schmidt", "Schneider", "Fischer", "Weber", "Meyer", "Wagner", "Becker", "Schulz",
        "Hoffmann", "Schäfer", "Koch", "Bauer", "Richter", "Klein", "Wolf", "Schröder", "Neumann",
        "Schwarz", "Zimmermann", "Braun", "Krüger", "Hofmann", "Hartmann", "Lange", "Schmitt", "Werner",
        "Krause", "Meier", "Lehmann", "Köhler", "Jäger", "Groß", "von Bergen",
    ),
    "french": (
        "Martin", "Bernard", "Dubois", "Thomas", "Robert", "Richard", "Petit", "Durand", "Leroy", "Moreau",
        "Simon", "Laurent", "Lefèbvre", "Michel", "Garcia", "David", "Bertrand", "Roux", "Vincent",
        "Fournier", "Morel", "Girard", "André", "Lefèvre", "Mercier", "Dupont", "Lambert", "Bonnet",
        "François", "Martinez", "Gauthier", "Chevalier", "Bérénger", "Lemaître",
    ),
    "indian": (
        "Sharma", "Verma", "Gupta", "Patel", "Singh", "Kumar", "Reddy", "Rao", "Iyer", "Iyengar", "Nair",
        "Menon", "Pillai", "Mukherjee", "Chatterjee", "Banerjee", "Das", "Bose", "Joshi", "Desai", "Mehta",
        "Shah", "Kapoor", "Malhotra", "Agarwal", "Chopra", "Khan", "Krishnan", "Subramanian", "Venkataraman",
        "Bhattacharya", "Naidu", "Gill", "Sandhu",
    ),
    "brazilian": (
        "Silva", "Santos", "Oliveira", "Souza", "Rodrigues", "Ferreira", "Alves", "Pereira", "Lima",
        "Gomes", "Costa", "Ribeiro", "Martins", "Carvalho", "Almeida", "Lopes", "Soares", "Fernandes",
        "Vieira", "Barbosa", "Rocha", "Dias", "Nascimento", "Araújo", "Conceição", "Magalhães", "Gonçalves",
        "Brandão", "Simões", "Assunção",
    ),
    "chinese": (
        "Wang", "Li", "Zhang", "Liu", "Chen", "Yang", "Huang", "Zhao", "Wu", "Zhou", "Xu", "Sun", "Ma",
        "Zhu", "Hu", "Guo", "He", "Lin", "Gao", "Luo", "Zheng", "Liang", "Xie", "Tang", "Han", "Feng",
    ),
    "arabic": (
        "Al-Sayed", "Haddad", "Hassan", "Hussein", "Abdullah", "Mansour", "Khalil", "Nasser", "Saleh",
        "Aziz", "Rahman", "Farouk", "Ibrahim", "Mahmoud", "Qureshi", "El-Amin", "Bakr", "Hamdan",
    ),
    "polish": (
        "Nowak", "Kowalski", "Wiśniewski", "Wójcik", "Kowalczyk", "Kamiński", "Lewandowski", "Zieliński",
        "Szymański", "Woźniak", "Dąbrowski", "Kozłowski", "Jankowski", "Mazur", "Krawczyk", "Piotrowski",
        "Grabowski", "Pawłowski", "Michalski", "Król",
    ),
}

#: (culture, weight, countries with weights) - where people of each culture live here.
CULTURES: tuple[tuple[str, float, tuple[tuple[str, float], ...]], ...] = (
    ("anglo", 0.34, (("US", 0.55), ("GB", 0.25), ("AU", 0.10), ("CA", 0.10))),
    ("hispanic", 0.14, (("US", 0.45), ("ES", 0.30), ("MX", 0.25))),
    ("german", 0.09, (("DE", 0.85), ("US", 0.10), ("GB", 0.05))),
    ("french", 0.08, (("FR", 0.85), ("CA", 0.10), ("GB", 0.05))),
    ("indian", 0.13, (("IN", 0.65), ("GB", 0.15), ("US", 0.15), ("AU", 0.05))),
    ("brazilian", 0.08, (("BR", 0.85), ("US", 0.10), ("FR", 0.05))),
    ("chinese", 0.07, (("US", 0.40), ("GB", 0.20), ("AU", 0.25), ("CA", 0.15))),
    ("arabic", 0.04, (("GB", 0.35), ("FR", 0.25), ("DE", 0.25), ("US", 0.15))),
    ("polish", 0.03, (("DE", 0.30), ("GB", 0.40), ("US", 0.30))),
)

# --- emails -----------------------------------------------------------------------------

PROVIDERS = (
    ("gmail.com", 0.40), ("yahoo.com", 0.12), ("outlook.com", 0.10), ("hotmail.com", 0.10),
    ("icloud.com", 0.08), ("aol.com", 0.02), ("protonmail.com", 0.02), ("live.com", 0.02),
)
COUNTRY_PROVIDERS: dict[str, tuple[str, ...]] = {
    "GB": ("btinternet.com", "yahoo.co.uk", "sky.com"), "DE": ("web.de", "gmx.de", "t-online.de"),
    "FR": ("orange.fr", "free.fr", "laposte.net"), "IN": ("rediffmail.com", "yahoo.co.in"),
    "BR": ("uol.com.br", "bol.com.br", "terra.com.br"), "AU": ("bigpond.com", "optusnet.com.au"),
    "ES": ("telefonica.es", "yahoo.es"), "MX": ("prodigy.net.mx",), "CA": ("rogers.com", "shaw.ca"),
    "US": ("comcast.net", "verizon.net", "att.net"),
}
COMPANY_WORDS = (
    "acme", "globex", "initech", "umbrella", "stark", "wayne", "northwind", "contoso", "fabrikam",
    "tailspin", "litware", "adatum", "wingtip", "woodgrove", "proseware", "hooli", "vandelay", "soylent",
    "cyberdyne", "tyrell", "wonka", "gringotts", "oceanic", "monarch", "pinnacle", "bluth", "dunder",
)
COMPANY_SUFFIXES = ("", "corp", "group", "ltd", "-logistics", "tech", "-consulting", "labs", "-retail")
COMPANY_TLDS = ("com", "com", "co.uk", "de", "fr", "com.br", "in", "com.au", "io")
ROLE_BOXES = ("info", "sales", "orders", "accounts", "office", "admin", "purchasing", "contact")
PLUS_TAGS = ("shop", "orders", "amazon", "news", "promo", "store", "deals", "2024", "checkout", "spam")

_QWERTY = ("1234567890", "qwertyuiop", "asdfghjkl", "zxcvbnm")
ADJACENT: dict[str, str] = {}
for _r, _row in enumerate(_QWERTY):
    for _c, _ch in enumerate(_row):
        _near = []
        for _dr in (-1, 0, 1):
            _rr = _r + _dr
            if 0 <= _rr < len(_QWERTY):
                for _dc in (-1, 0, 1):
                    _cc = _c + _dc
                    if (_dr, _dc) != (0, 0) and 0 <= _cc < len(_QWERTY[_rr]):
                        _near.append(_QWERTY[_rr][_cc])
        ADJACENT[_ch] = "".join(_near)

# --- phones -----------------------------------------------------------------------------

PHONE_REGIONS = ("US", "GB", "DE", "FR", "IN", "BR", "AU", "CA", "ES", "MX")


def ascii_fold(text: str) -> str:
    """Drop diacritics (``José`` -> ``Jose``); letters without a decomposition stay."""
    folded = unicodedata.normalize("NFKD", text)
    folded = "".join(ch for ch in folded if not unicodedata.combining(ch))
    return folded.replace("ł", "l").replace("Ł", "L").replace("ß", "ss")


def _slug(text: str) -> str:
    """Letters and digits of a name, lower-cased and unaccented, for email local parts."""
    return "".join(ch for ch in ascii_fold(text).lower() if ch.isalnum())


@dataclass(frozen=True, slots=True)
class Phone:
    """One valid number, pre-rendered in the formats people type it in."""

    e164: str
    intl: str
    national: str
    region: str


def _make_phone(number: phonenumbers.PhoneNumber, region: str) -> Phone:
    return Phone(
        e164=phonenumbers.format_number(number, PhoneNumberFormat.E164),
        intl=phonenumbers.format_number(number, PhoneNumberFormat.INTERNATIONAL),
        national=phonenumbers.format_number(number, PhoneNumberFormat.NATIONAL),
        region=region,
    )


def random_valid_phone(rng: random.Random, region: str, mobile: bool = True) -> Phone:
    """A random number ``phonenumbers`` accepts as valid: the region's example number with
    its trailing digits randomised until it validates (fewer digits after many failures)."""
    kind = PhoneNumberType.MOBILE if mobile else PhoneNumberType.FIXED_LINE
    example = phonenumbers.example_number_for_type(region, kind)
    nsn = phonenumbers.national_significant_number(example)
    for attempt in range(60):
        k = min(7 if attempt < 30 else 4, len(nsn) - 2)
        digits = nsn[:-k] + "".join(rng.choice("0123456789") for _ in range(k))
        number = phonenumbers.PhoneNumber(country_code=example.country_code, national_number=int(digits))
        if phonenumbers.is_valid_number(number):
            return _make_phone(number, region)
    return _make_phone(example, region)


@dataclass(slots=True)
class Person:
    """A true identity while it is active: what it types at the till."""

    pid: int
    culture: str
    first: str
    last: str
    emails: list[str]
    phones: list[Phone]
    events_left: int
    gap_days: float
    role_mailbox: str | None = None
    placeholders: bool = False
    email_weights: list[float] = field(default_factory=list)


@dataclass
class Stats:
    """Counts of what the generator did, for the report and docs."""

    events: int = 0
    persons: int = 0
    counts: dict[str, int] = field(default_factory=dict)

    def bump(self, kind: str) -> None:
        self.counts[kind] = self.counts.get(kind, 0) + 1

    def rates(self) -> dict[str, float]:
        """Each count as a share: of persons for ``persons_*`` kinds, of events otherwise."""
        return {
            k: v / max(1, self.persons if k.startswith("persons_") else self.events)
            for k, v in sorted(self.counts.items())
        }


class _Generator:
    """The simulation; one instance per stream."""

    def __init__(self, n_events: int, seed: int, rates: Rates):
        self.n_events = n_events
        self.rng = random.Random(seed)
        #: draws for ``real_world_format`` only (see :class:`Rates`)
        self.format_rng = random.Random(f"formats-{seed}")
        self.rates = rates
        self.stats = Stats()
        #: mailboxes handed out: ``jo.hn@gmail.com`` is ``john@gmail.com``, so two people never share one
        self.used_mailboxes: set[str] = set()
        self.used_phones: set[str] = set()
        self.recycle_pool: list[Phone] = []
        expected_persons = max(1, int(n_events / MEAN_EVENTS_PER_PERSON))
        self.arrival_gap_s = HORIZON_DAYS * 86400.0 / expected_persons
        self.companies = self._make_companies(max(4, expected_persons // 250))
        self.next_pid = 1
        self._culture_names = [c for c, _, _ in CULTURES]
        self._culture_weights = [w for _, w, _ in CULTURES]
        self._culture_regions = {c: ([r for r, _ in rs], [w for _, w in rs]) for c, _, rs in CULTURES}
        self._first_lists = {c: list(names) for c, names in FIRST_NAMES.items()}
        self._providers = [d for d, _ in PROVIDERS]
        self._provider_weights = [w for _, w in PROVIDERS]
        self._fmt_names = [f for f, _ in PHONE_FORMATS]
        self._fmt_weights = [w for _, w in PHONE_FORMATS]

    # --- population --------------------------------------------------------------------

    def _make_companies(self, count: int) -> list[tuple[str, list[str]]]:
        """Companies with a domain and the role mailboxes their staff share."""
        rng = self.rng
        out, seen = [], set()
        while len(out) < count:
            domain = f"{rng.choice(COMPANY_WORDS)}{rng.choice(COMPANY_SUFFIXES)}.{rng.choice(COMPANY_TLDS)}"
            if domain in seen and len(seen) < len(COMPANY_WORDS) * len(COMPANY_SUFFIXES):
                continue
            seen.add(domain)
            boxes = [f"{box}@{domain}" for box in rng.sample(ROLE_BOXES, 2)]
            out.append((domain, boxes))
        return out

    def _events_count(self) -> int:
        return min(MAX_EVENTS_PER_PERSON, int(self.rng.random() ** (-1.0 / ALPHA)))

    def _new_phone(self, region: str) -> Phone:
        rng = self.rng
        for _ in range(20):
            phone = random_valid_phone(rng, region, mobile=rng.random() < 0.75)
            if phone.e164 not in self.used_phones:
                break
        self.used_phones.add(phone.e164)
        return phone

    def _email_local(self, culture: str, first: str, last: str) -> str:
        rng = self.rng
        f, l = _slug(first), _slug(last)
        nicks = FIRST_NAMES[culture][first]
        pattern = rng.random()
        if pattern < 0.30:
            local = f"{f}.{l}"
        elif pattern < 0.42:
            local = f"{f[0]}{l}"
        elif pattern < 0.52:
            local = f"{f}{l}"
        elif pattern < 0.58:
            local = f"{f}_{l}"
        elif pattern < 0.63:
            local = f"{l}.{f}"
        elif pattern < 0.80:
            nick = _slug(rng.choice(nicks)) if nicks and rng.random() < 0.7 else f
            sep = rng.choice(("", "_", "."))
            number = rng.randint(1, 99) if rng.random() < 0.5 else rng.randint(1950, 2008)  # or a birth year
            local = f"{nick}{sep}{number}"
        else:
            local = f"{f}{l[:1]}{rng.randint(1, 999)}"
        if rng.random() < 0.25:
            local += str(rng.randint(1, 99))
        return local

    def _new_email(self, culture: str, first: str, last: str, region: str, domain: str | None = None) -> str:
        rng = self.rng
        for _ in range(20):
            if domain is None:
                if rng.random() < 0.2 and region in COUNTRY_PROVIDERS:
                    dom = rng.choice(COUNTRY_PROVIDERS[region])
                else:
                    dom = rng.choices(self._providers, self._provider_weights)[0]
            else:
                dom = domain
            email = f"{self._email_local(culture, first, last)}@{dom}"
            if mailbox_key(email) not in self.used_mailboxes:
                break
        self.used_mailboxes.add(mailbox_key(email))
        return email

    def _new_person(self, culture: str, last: str, region: str) -> Person:
        rng = self.rng
        first = rng.choice(self._first_lists[culture])
        n_emails = rng.choices((1, 2, 3), (0.6, 0.3, 0.1))[0]
        emails = [self._new_email(culture, first, last, region) for _ in range(n_emails)]
        phones = [self._new_phone(region)]
        if rng.random() < 0.3:
            phones.append(self._new_phone(region if rng.random() < 0.8 else rng.choice(PHONE_REGIONS)))
        if self.recycle_pool and rng.random() < self.rates.recycled_phone:
            phones[0] = self.recycle_pool.pop(rng.randrange(len(self.recycle_pool)))
            self.stats.bump("persons_with_recycled_phone")
        n = self._events_count()
        person = Person(
            pid=self.next_pid, culture=culture, first=first, last=last, emails=emails, phones=phones,
            events_left=n, gap_days=ACTIVE_SPAN_DAYS / n,
            email_weights=[0.75, 0.2, 0.05][:n_emails],
        )
        self.next_pid += 1
        self.stats.persons += 1
        if rng.random() < self.rates.placeholder_person:
            person.placeholders = True
            self.stats.bump("persons_using_placeholders")
        if rng.random() < self.rates.employee:
            domain, boxes = rng.choice(self.companies)
            person.role_mailbox = rng.choice(boxes)
            if rng.random() < 0.5:
                person.emails.append(self._new_email(culture, first, last, region, domain))
                person.email_weights.append(0.3)
            self.stats.bump("persons_using_role_mailbox")
        return person

    def arrivals(self) -> list[Person]:
        """One person, or a family of 2-5 sharing a surname and a phone."""
        rng = self.rng
        culture = rng.choices(self._culture_names, self._culture_weights)[0]
        regions, weights = self._culture_regions[culture]
        region = rng.choices(regions, weights)[0]
        last = rng.choice(SURNAMES[culture])
        if rng.random() >= self.rates.family / 3:  # families average 3 people
            return [self._new_person(culture, last, region)]
        size = rng.randint(2, 5)
        shared = self._new_phone(region)
        family = [self._new_person(culture, last, region) for _ in range(size)]
        for member in family:
            if rng.random() < 0.5:
                member.phones[0] = shared
            else:
                member.phones.append(shared)
            self.stats.bump("persons_in_family")
        return family

    # --- one event ---------------------------------------------------------------------

    def _name(self, person: Person) -> str | None:
        rng, rates = self.rng, self.rates
        if rng.random() < rates.missing_name:
            self.stats.bump("missing_name")
            return None
        first = person.first
        nicks = FIRST_NAMES[person.culture][first]
        if nicks and rng.random() < rates.nickname:
            first = rng.choice(nicks)
            self.stats.bump("nickname")
        if rng.random() < rates.name_swap:
            name = f"{person.last} {first}"
            self.stats.bump("name_swap")
        else:
            name = f"{first} {person.last}"
        if not name.isascii() and rng.random() < rates.drop_diacritics:
            name = ascii_fold(name)
            self.stats.bump("diacritics_dropped")
        if rng.random() < rates.name_case:
            name = name.upper() if rng.random() < 0.5 else name.lower()
            self.stats.bump("name_case")
        return name

    def _typo(self, local: str) -> str:
        """One keyboard slip in the local part: transposition, deletion, substitution, duplication."""
        rng = self.rng
        if len(local) < 3:
            return local + rng.choice("abcdefghijklmnopqrstuvwxyz")
        i = rng.randrange(len(local) - 1)
        kind = rng.randrange(4)
        if kind == 0:
            return local[:i] + local[i + 1] + local[i] + local[i + 2:]
        if kind == 1:
            return local[:i] + local[i + 1:]
        if kind == 2:
            near = ADJACENT.get(local[i])
            return local[:i] + rng.choice(near) + local[i + 1:] if near else local[:i] + local[i + 1:]
        return local[:i] + local[i] + local[i:]

    def _gmail_dots(self, local: str) -> str:
        """Another dot pattern for the same Gmail mailbox."""
        bare = local.replace(".", "")
        if len(bare) < 2:
            return local
        for _ in range(5):
            cuts = sorted(self.rng.sample(range(1, len(bare)), min(len(bare) - 1, self.rng.randint(0, 2))))
            variant, prev = [], 0
            for cut in cuts:
                variant.append(bare[prev:cut])
                prev = cut
            variant.append(bare[prev:])
            out = ".".join(variant)
            if out != local:
                return out
        return bare if bare != local else local

    def _email(self, person: Person) -> str:
        rng, rates = self.rng, self.rates
        if person.role_mailbox and rng.random() < rates.role_mailbox_use:
            self.stats.bump("role_mailbox")
            return person.role_mailbox
        email = rng.choices(person.emails, person.email_weights)[0]
        local, _, domain = email.partition("@")
        if domain == "gmail.com" and rng.random() < rates.gmail_dots:
            local = self._gmail_dots(local)
            self.stats.bump("gmail_dots")
        if rng.random() < rates.plus_alias:
            local = f"{local}+{rng.choice(PLUS_TAGS)}"
            self.stats.bump("plus_alias")
        if rng.random() < rates.email_typo:
            local = self._typo(local)
            self.stats.bump("email_typo")
        email = f"{local}@{domain}"
        if rng.random() < rates.email_case:
            email = email.upper() if rng.random() < 0.3 else email[0].upper() + email[1:].replace("@g", "@G")
            self.stats.bump("email_case")
        return email

    def _phone(self, person: Person) -> str | int:
        rng = self.rng
        phone = person.phones[0] if len(person.phones) == 1 or rng.random() < 0.75 else rng.choice(person.phones[1:])
        fmt = rng.choices(self._fmt_names, self._fmt_weights)[0]
        if rng.random() < self.rates.phone_int:
            self.stats.bump("phone_integer")
            digits = phone.e164[1:] if rng.random() < 0.5 else "".join(ch for ch in phone.national if ch.isdigit())
            return int(digits)
        self.stats.bump(f"phone_{fmt}")
        if fmt == "e164":
            return phone.e164
        if fmt == "intl":
            return phone.intl
        if fmt == "national":
            return phone.national
        if fmt == "00":
            return "00" + phone.intl[1:]
        return "".join(ch for ch in phone.national if ch.isdigit())

    def _real_world_format(self, person: Person, email: str | None, phone: str | int | None) -> tuple:
        """Rewrite one of the event's identifiers the way real systems write it."""
        rng = self.format_rng
        if rng.random() >= self.rates.real_world_format:
            return email, phone
        on_phone = phone is not None and phone not in PLACEHOLDER_PHONES and (email is None or rng.random() < 0.5)
        if on_phone:
            own = [p for p in person.phones if phone in (p.e164, p.intl, p.national) or str(phone) in p.e164]
            kind, write = rng.choice(PHONE_WRITINGS)
            self.stats.bump(f"format_{kind}")
            return email, write(own[0] if own else person.phones[0], rng)
        if isinstance(email, str):
            kind, write = rng.choice(EMAIL_WRITINGS)
            self.stats.bump(f"format_{kind}")
            return write(email.strip(), rng), phone
        return email, phone

    def event(self, person: Person) -> dict:
        rng, rates = self.rng, self.rates
        roll = rng.random()
        email: str | None
        phone: str | int | None
        if roll < rates.missing_email:
            email, phone = None, self._phone(person)
            self.stats.bump("missing_email")
        elif roll < rates.missing_email + rates.missing_phone:
            email, phone = self._email(person), None
            self.stats.bump("missing_phone")
        else:
            email, phone = self._email(person), self._phone(person)
        placeholder = rates.placeholder_use if person.placeholders else rates.placeholder_background
        if rng.random() < placeholder:
            if phone is not None and (email is None or rng.random() < 0.55):
                email = rng.choice(PLACEHOLDER_EMAILS)
                self.stats.bump("placeholder_email")
            else:
                phone = rng.choice(PLACEHOLDER_PHONES)
                self.stats.bump("placeholder_phone")
        if isinstance(email, str) and rng.random() < rates.whitespace:
            email = rng.choice((" ", "  ", "\t", "")) + email + rng.choice((" ", "", "\n"))
            self.stats.bump("whitespace")
        email, phone = self._real_world_format(person, email, phone)
        return {"email": email, "phoneNumber": phone, "name": self._name(person), "person": person.pid}

    # --- the clock -----------------------------------------------------------------------

    def run(self) -> Iterator[dict]:
        """Events in time order: a heap of active people keyed by their next purchase."""
        rng = self.rng
        heap: list[tuple[float, int, Person]] = []
        next_arrival = 0.0
        seq = 0
        last_ms = -1
        while self.stats.events < self.n_events:
            if not heap or next_arrival <= heap[0][0]:
                for person in self.arrivals():
                    seq += 1
                    heapq.heappush(heap, (next_arrival + rng.random() * 3600.0, seq, person))
                next_arrival += rng.expovariate(1.0) * self.arrival_gap_s
                continue
            when, _, person = heapq.heappop(heap)
            ms = max(int(when * 1000), last_ms + 1)  # strictly increasing timestamps
            last_ms = ms
            record = self.event(person)
            self.stats.events += 1
            ts = (START + timedelta(milliseconds=ms)).isoformat(timespec="milliseconds").replace("+00:00", "Z")
            yield {"ts": ts, **record}
            person.events_left -= 1
            if person.events_left > 0 and rng.random() < self.rates.phone_change:
                self.recycle_pool.append(person.phones[0])  # the old number goes back to the carrier
                person.phones[0] = self._new_phone(person.phones[0].region)
                self.stats.bump("phone_change")
            if person.events_left > 0:
                seq += 1
                gap = rng.expovariate(1.0) * person.gap_days * 86400.0
                heapq.heappush(heap, (when + gap, seq, person))
            elif rng.random() < 0.3:
                self.recycle_pool.append(person.phones[0])


def generate(n_events: int, seed: int = 0, rates: Rates | None = None) -> tuple[Iterator[dict], Stats]:
    """A lazy stream of ``n_events`` labelled events and the statistics it fills as it goes."""
    gen = _Generator(n_events, seed, rates or Rates())
    return gen.run(), gen.stats


def default_path(size: str, seed: int) -> Path:
    if size == "sample":
        return SAMPLE_PATH
    suffix = ".jsonl.gz" if size == "large" else ".jsonl"
    return SYNTH_DIR / f"stream-{size}-seed{seed}{suffix}"


def _open_text(path: Path, mode: str) -> IO[str]:
    if path.suffix == ".gz":
        return gzip.open(path, mode + "t", encoding="utf-8", compresslevel=5)
    return open(path, mode, encoding="utf-8")


def write_stream(
    path: Path, n_events: int, seed: int = 0, rates: Rates | None = None, progress: Callable[[int], None] | None = None
) -> Stats:
    """Stream the events to ``path`` as JSON Lines (gzip when it ends in ``.gz``);
    ``progress(n)`` after each event."""
    path.parent.mkdir(parents=True, exist_ok=True)
    events, stats = generate(n_events, seed, rates)
    with _open_text(path, "w") as out:
        for n, record in enumerate(events, 1):
            out.write(json.dumps(record, ensure_ascii=False, separators=(",", ":")))
            out.write("\n")
            if progress is not None:
                progress(n)
    return stats


def read_stream(path: str | Path, limit: int | None = None) -> Iterator[dict]:
    """The events of a stream file, in order (plain or gzip JSON Lines)."""
    with _open_text(Path(path), "r") as src:
        for i, line in enumerate(src):
            if limit is not None and i >= limit:
                return
            if line.strip():
                yield json.loads(line)
