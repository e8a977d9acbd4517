"""A seeded generator of annual-report-like documents with planted facts.

``annual_report(seed, doc_id, words)`` writes a fictional company's annual report of
about ``words`` whitespace tokens: a title, then sections (chair's letter, highlights,
operating review, financial review, risks, sustainability, governance, outlook) of
templated sentences full of plausible distractors (segment revenues, other years,
other people). Into it go planted facts (figures, names, dates), each one sentence
whose character span and first token are recorded with a question and its answer.

Where facts go: some straddle a chunk boundary, their sentence cut in two by token
``b`` for each boundary ``b`` in ``STRADDLE_AT`` that the document reaches (2,048 cuts
chunks of 512, 1,024 and 2,048 tokens; 2,000 / 2,500 / 3,000 the first chunk of the
map-reduce settings), so that without overlap no chunk holds the fact whole and an
overlap at least as long as the sentence (about 20 tokens) rescues it; the others sit
at fixed shares of the document (5%, 35%, 60%, 90%). Tokens are runs of non-space
characters, as ``evaluation.pipelines`` counts them. Same seed and arguments, same
document, always (``random.Random`` seeded with a string, stable across processes).
"""

from __future__ import annotations

import random
import re
import string
from dataclasses import dataclass

STRADDLE_AT = (512, 1024, 2000, 2048, 2500, 3000)
COMMON_CHUNK_SIZES = (512, 1024, 2000, 2048, 2500, 3000)
SHARES = (0.05, 0.35, 0.6, 0.9)
_TOKEN = re.compile(r"\S+")


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


FIRST_NAMES = _words(
    "Maria Jonas Aiko Rahul Elena Tomasz Ingrid Kwame Lucia Pieter Sofia Omar Hanna Diego "
    "Freya Mateo Yara Lars Amara Viktor Chiara Nils Leila Anton Greta Samir Nadia Felix"
)
LAST_NAMES = _words(
    "Lind Okafor Varga Tanaka Moreau Brandt Kowalski Haugen Rossi Dubois Novak Silva "
    "Eriksen Costa Meyer Jansen Petrov Keller Nakamura Fischer Laine Bauer Duarte Holm"
)
PREFIXES = _words(
    "Norvik Altamar Brightwell Calder Dunmore Eskerby Fjordan Galloway Harlow Istria "
    "Jarrow Kestrel Larchmont Meridale Northcote Oakhurst Pellham Quarrington Ravenna "
    "Selwyn Thornbury Ulverston Valmont Westerly Yarrow Zennor Ashgrove Birchley"
)
SUFFIXES = ("Industries", "Group", "Holdings", "Systems", "Foods", "Logistics", "Energy")
CITIES = _words(
    "Leeds Rotterdam Porto Gdansk Lyon Tampere Bilbao Graz Aarhus Turin Brno Ghent "
    "Malmo Cork Bremen Split Tartu Krakow"
)
SEGMENTS = ("Consumer", "Industrial", "Services", "Digital", "Infrastructure", "Healthcare")
AUDITORS = ("Harwood & Pike", "Lindqvist Audit", "Morrow Baines", "Castell Partners")
MONTHS = _words(
    "January February March April May June July August September October November December"
)
NOUNS = _words(
    "budgets suppliers contracts processes controls forecasts inventories tariffs "
    "warranties schedules routes licences systems audits tenders pilots"
)
DEPARTMENTS = ("finance", "procurement", "engineering", "sales", "compliance", "logistics")

SECTIONS = (
    "Letter from the Chair",
    "Highlights of the Year",
    "Operating Review",
    "Financial Review",
    "Risk Management",
    "Sustainability",
    "Corporate Governance",
    "Outlook",
)
FILLERS = (
    "Revenue in the {segment} segment was {m1} million euros, compared with {m2} million "
    "euros a year earlier.",
    "In {prev} the {segment} segment reported an operating margin of {p1}%.",
    "Our teams in {city} handled {n1} customer orders during the second half.",
    "{person} led the review of the {segment} portfolio, which concluded in {month}.",
    "Energy use per unit of output fell by {p1}% against the {prev} baseline.",
    "The group invested {m1} million euros in maintenance and upgrades of existing sites.",
    "Customer satisfaction in the {segment} segment rose to {p2} out of 100.",
    "Working capital improved as inventories fell by {m2} million euros.",
    "The {segment} business signed {n2} new framework agreements with public buyers.",
    "Safety performance improved, with {p3} recordable incidents per million hours worked.",
    "We refinanced a revolving credit facility of {m1} million euros maturing in {later}.",
    "The board met {n3} times during the year and its committees met {n4} times.",
    "Freight costs rose by {p1}% in the first quarter before easing in the autumn.",
    "Exports from {city} accounted for {p2}% of volumes in the {segment} segment.",
    "Employee engagement scored {p2} in the annual survey, {p3} points above {prev}.",
    "Currency movements reduced reported revenue by {m3} million euros.",
    "The pension scheme showed a surplus of {m3} million euros at the valuation date.",
    "A programme to renew the {segment} product range will run until {later}.",
    "{person} retired from the executive committee after {n3} years with the group.",
    "Capital expenditure in {prev} was {m2} million euros, mostly on automation.",
    "Water withdrawal at the {city} site fell by {p1}% after the new cooling system.",
    "Cyber security remains a principal risk, and a further {n3} audits were completed.",
    "The {segment} order book stood at {m2} million euros at the end of the third quarter.",
    "Scope 1 and 2 emissions were {n1} tonnes of CO2 equivalent, {p1}% lower than in {prev}.",
    "Research partnerships with universities in {city} produced {n3} joint patents.",
    "Price increases averaged {p3}% and were accepted by most long-term customers.",
    "Management estimates that supply disruptions cost about {m3} million euros.",
    "The remuneration committee approved a long-term incentive plan for {n2} managers.",
    "Training hours per employee reached {n3}, the highest level since {prev}.",
    "Litigation in {city} concerning a supplier contract was settled during the year.",
)


@dataclass(frozen=True)
class Fact:
    """A planted fact: the sentence stating it at characters ``[start, end)``, from
    token ``token`` on (``tokens`` long); the question it answers and the answer
    (``references``: the answer first, then other acceptable forms); ``statement`` is
    the fact as a summary's key point; ``cut_without_overlap`` lists the common chunk
    sizes (tokens) whose boundaries cut the sentence when chunks do not overlap."""

    key: str
    kind: str  # figure | name | date
    question: str
    references: tuple[str, ...]
    statement: str
    start: int
    end: int
    token: int
    tokens: int
    cut_without_overlap: tuple[int, ...]


@dataclass(frozen=True)
class Report:
    id: str
    company: str
    year: int
    title: str
    text: str
    facts: tuple[Fact, ...]

    @property
    def tokens(self) -> int:
        return len(_TOKEN.findall(self.text))


@dataclass(frozen=True)
class _Planned:
    key: str
    kind: str
    sentence: str
    question: str
    references: tuple[str, ...]
    statement: str


def _date(rng: random.Random, year: int) -> str:
    return f"{rng.randint(1, 28)} {rng.choice(MONTHS)} {year}"


def _person(rng: random.Random) -> str:
    return f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}"


def _plans(rng: random.Random, company: str, year: int) -> list[_Planned]:
    """Every fact this company could state, in a seeded order."""
    revenue = f"{rng.randint(120, 980)}.{rng.randint(1, 9)}"
    growth = f"{rng.randint(2, 14)}.{rng.randint(1, 9)}"
    margin = f"{rng.randint(6, 21)}.{rng.randint(1, 9)}"
    staff = f"{rng.randint(1200, 18000):,}"
    countries = rng.randint(5, 30)
    dividend = f"{rng.randint(0, 3)}.{rng.randint(10, 95)}"
    cfo, chair, old_chair = _person(rng), _person(rng), _person(rng)
    cfo_date, agm_date, deal_date = _date(rng, year), _date(rng, year + 1), _date(rng, year)
    target = f"{rng.choice(PREFIXES)} {rng.choice(('Tools', 'Labs', 'Components', 'Data'))}"
    price = rng.randint(20, 400)
    plant_city, agm_city = rng.sample(CITIES, 2)
    capacity = f"{rng.randint(20, 400) * 1000:,}"
    plant_date = _date(rng, year)
    auditor, term = rng.choice(AUDITORS), rng.randint(3, 5)
    net_debt = f"{rng.randint(40, 700)}.{rng.randint(1, 9)}"
    rnd, rnd_share = f"{rng.randint(8, 90)}.{rng.randint(1, 9)}", rng.randint(2, 9)
    plans = [
        _Planned(
            "revenue",
            "figure",
            f"Group revenue for {year} reached {revenue} million euros, up {growth}% on the "
            "previous year.",
            f"What was {company}'s group revenue for {year}?",
            (f"{revenue} million euros", f"€{revenue} million", f"EUR {revenue} million"),
            f"Group revenue reached {revenue} million euros in {year}, up {growth}%.",
        ),
        _Planned(
            "margin",
            "figure",
            f"The group operating margin for {year} came to {margin}% after restructuring costs.",
            f"What group operating margin did {company} report for {year}?",
            (f"{margin}%", f"{margin} percent"),
            f"The group operating margin was {margin}% in {year}.",
        ),
        _Planned(
            "headcount",
            "figure",
            f"At the end of {year} the group employed {staff} people in {countries} countries.",
            f"How many people did {company} employ at the end of {year}?",
            (staff, staff.replace(",", "")),
            f"The group employed {staff} people in {countries} countries at year end.",
        ),
        _Planned(
            "dividend",
            "figure",
            f"The board proposes a dividend of {dividend} euros per share for {year}.",
            f"What dividend per share does the board of {company} propose for {year}?",
            (f"{dividend} euros", f"€{dividend}", f"{dividend} euros per share"),
            f"The board proposes a dividend of {dividend} euros per share.",
        ),
        _Planned(
            "cfo",
            "name",
            f"{cfo} was appointed Chief Financial Officer with effect from {cfo_date}.",
            f"Who was appointed Chief Financial Officer of {company}?",
            (cfo,),
            f"{cfo} became Chief Financial Officer on {cfo_date}.",
        ),
        _Planned(
            "chair",
            "name",
            f"{chair} succeeded {old_chair} as Chair of the Board of {company}.",
            f"Who succeeded {old_chair} as Chair of the Board of {company}?",
            (chair,),
            f"{chair} succeeded {old_chair} as Chair of the Board.",
        ),
        _Planned(
            "acquisition",
            "date",
            f"{company} completed the acquisition of {target} on {deal_date} for {price} "
            "million euros.",
            f"On which date did {company} complete the acquisition of {target}?",
            (deal_date,),
            f"The acquisition of {target} for {price} million euros closed on {deal_date}.",
        ),
        _Planned(
            "agm",
            "date",
            f"The annual general meeting of {company} will be held in {agm_city} on {agm_date}.",
            f"When will {company}'s annual general meeting be held?",
            (agm_date,),
            f"The annual general meeting will be held in {agm_city} on {agm_date}.",
        ),
        _Planned(
            "plant",
            "name",
            f"A new plant in {plant_city} with capacity for {capacity} units a year opened "
            f"on {plant_date}.",
            f"In which city did {company} open a new plant in {year}?",
            (plant_city,),
            f"A new plant in {plant_city} for {capacity} units a year opened on {plant_date}.",
        ),
        _Planned(
            "auditor",
            "name",
            f"{auditor} was reappointed as external auditor of {company} for a {term}-year term.",
            f"Which firm was reappointed as {company}'s external auditor?",
            (auditor,),
            f"{auditor} was reappointed as external auditor for {term} years.",
        ),
        _Planned(
            "net_debt",
            "figure",
            f"Net debt of the group fell to {net_debt} million euros at the end of {year}.",
            f"What was {company}'s net debt at the end of {year}?",
            (f"{net_debt} million euros", f"€{net_debt} million"),
            f"Net debt fell to {net_debt} million euros at the end of {year}.",
        ),
        _Planned(
            "research",
            "figure",
            f"Spending on research and development was {rnd} million euros in {year}, or "
            f"{rnd_share}% of revenue.",
            f"How much did {company} spend on research and development in {year}?",
            (f"{rnd} million euros", f"€{rnd} million"),
            f"Research and development spending was {rnd} million euros ({rnd_share}% of revenue).",
        ),
    ]
    rng.shuffle(plans)
    return plans


class _Writer:
    """Appends sentences and headings, keeping the character length and token count."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.length = 0
        self.tokens = 0
        self._after_heading = False

    def heading(self, text: str) -> None:
        """A heading: a paragraph of its own."""
        self.add(text, "\n\n")
        self._after_heading = True

    def add(self, text: str, separator: str = " ") -> tuple[int, int]:
        """Append ``text`` (after ``separator`` unless first); its character span."""
        if self._after_heading:
            separator, self._after_heading = "\n\n", False
        if self.parts:
            self.parts.append(separator)
            self.length += len(separator)
        start = self.length
        self.parts.append(text)
        self.length += len(text)
        self.tokens += len(_TOKEN.findall(text))
        return start, self.length

    @property
    def text(self) -> str:
        return "".join(self.parts)


_DRAWS = {
    "segment": lambda rng, year: rng.choice(SEGMENTS),
    "city": lambda rng, year: rng.choice(CITIES),
    "person": lambda rng, year: _person(rng),
    "month": lambda rng, year: rng.choice(MONTHS),
    "prev": lambda rng, year: year - rng.randint(1, 4),
    "later": lambda rng, year: year + rng.randint(2, 6),
    "m1": lambda rng, year: f"{rng.randint(10, 500)}.{rng.randint(1, 9)}",
    "m2": lambda rng, year: f"{rng.randint(10, 500)}.{rng.randint(1, 9)}",
    "m3": lambda rng, year: f"{rng.randint(1, 60)}.{rng.randint(1, 9)}",
    "p1": lambda rng, year: f"{rng.randint(1, 25)}.{rng.randint(1, 9)}",
    "p2": lambda rng, year: rng.randint(55, 95),
    "p3": lambda rng, year: rng.randint(1, 9),
    "n1": lambda rng, year: f"{rng.randint(1000, 90000):,}",
    "n2": lambda rng, year: rng.randint(3, 40),
    "n3": lambda rng, year: rng.randint(4, 30),
    "n4": lambda rng, year: rng.randint(10, 40),
}
_FIELDS = {
    template: [name for _, name, _, _ in string.Formatter().parse(template) if name]
    for template in FILLERS
}


def _filler(rng: random.Random, year: int) -> str:
    """A distractor sentence: a template with its fields drawn."""
    template = rng.choice(FILLERS)
    return template.format(**{name: _DRAWS[name](rng, year) for name in _FIELDS[template]})


def _padding(rng: random.Random, count: int) -> str:
    """Sentences of exactly ``count`` (>= 1) tokens in all, none longer than 14."""
    if count < 9:
        return (", ".join(rng.sample(NOUNS, count)) + ".").capitalize()
    if count > 14:
        return f"{_padding(rng, count // 2)} {_padding(rng, count - count // 2)}"
    head = f"During the year the {rng.choice(DEPARTMENTS)} team also reviewed"  # 8 tokens
    return f"{head} {', '.join(rng.sample(NOUNS, count - 8))}."


def _fill_to(writer: _Writer, rng: random.Random, year: int, target: int) -> None:
    """Filler sentences (a new paragraph every few) until the document has exactly
    ``target`` tokens; nothing when it already has."""
    sentences = 0
    while writer.tokens < target:
        remaining = target - writer.tokens
        if remaining <= 24:
            writer.add(_padding(rng, remaining))
            return
        sentence = _filler(rng, year)
        if len(_TOKEN.findall(sentence)) > remaining:
            continue
        sentences += 1
        writer.add(sentence, "\n\n" if sentences % 5 == 0 else " ")


def annual_report(seed: int, doc_id: str, words: int) -> Report:
    """The report ``doc_id`` of ``words`` tokens (module docstring)."""
    rng = random.Random(f"annual-report/{seed}/{doc_id}")
    company = f"{rng.choice(PREFIXES)} {rng.choice(SUFFIXES)}"
    year = rng.randint(2019, 2025)
    title = f"{company} Annual Report {year}"
    plans = _plans(rng, company, year)
    straddles = [b for b in STRADDLE_AT if b + 40 < words]
    fixed = [round(words * share) for share in SHARES]
    slots = _spaced(sorted([(b, True) for b in straddles] + [(t, False) for t in fixed if t > 40]))
    placed = []  # (first token, plan)
    for (target, straddle), plan in zip(slots, plans, strict=False):
        length = len(_TOKEN.findall(plan.sentence))
        placed.append((target - length // 2 if straddle else target, plan))
    writer = _Writer()
    writer.heading(title)
    events = sorted(
        [(begin, 1, plan) for begin, plan in placed]
        + [(at, 0, heading) for at, heading in _headings(words, placed)],
        key=lambda event: (event[0], event[1]),
    )
    facts: list[Fact] = []
    for at, is_fact, payload in events:
        _fill_to(writer, rng, year, at)
        if not is_fact:
            writer.heading(payload)
            continue
        token = writer.tokens
        length = len(_TOKEN.findall(payload.sentence))
        start, end = writer.add(payload.sentence)
        facts.append(
            Fact(
                key=payload.key,
                kind=payload.kind,
                question=payload.question,
                references=payload.references,
                statement=payload.statement,
                start=start,
                end=end,
                token=token,
                tokens=length,
                cut_without_overlap=_cut_by(token, length),
            )
        )
    _fill_to(writer, rng, year, words)
    return Report(doc_id, company, year, title, writer.text, tuple(facts))


def _headings(words: int, placed: list[tuple[int, _Planned]]) -> list[tuple[int, str]]:
    """Where each section heading goes: evenly spread, moved past any planted fact
    it would land in or just before (a fact's first token is exact)."""
    every = max(words // len(SECTIONS), 60)
    headings = []
    for k, heading in enumerate(SECTIONS):
        at = 4 + k * every
        for begin, plan in sorted(placed, key=lambda p: p[0]):
            end = begin + len(_TOKEN.findall(plan.sentence))
            if begin - 20 <= at <= end:
                at = end + 20
        headings.append((at, heading))
    return headings


def _spaced(slots: list[tuple[int, bool]]) -> list[tuple[int, bool]]:
    """Drop a fixed slot that falls within 60 tokens of an earlier slot (straddling
    slots are kept: they are the point)."""
    kept: list[tuple[int, bool]] = []
    for target, straddle in slots:
        if kept and target - kept[-1][0] < 60:
            if not straddle:
                continue
            if not kept[-1][1]:
                kept.pop()
        kept.append((target, straddle))
    return kept


def _cut_by(token: int, length: int) -> tuple[int, ...]:
    """The common chunk sizes whose boundaries (multiples of the size) fall inside
    tokens ``[token, token + length)``, cutting the sentence when chunks do not overlap."""
    return tuple(
        size for size in COMMON_CHUNK_SIZES if (token + length - 1) // size != token // size
    )
