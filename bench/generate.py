"""A deterministic national-scale dataset shaped like Burundi, generated as streams of rows.

Every value is a pure function of the seed and the entity's key (its code), never of how many
values were drawn before it. So the same arguments give the same rows on every run and every
machine, a generator can be restarted or split into chunks anywhere, and datasets added
later (people, households, plans, payments) can hang off a location by its code without
shifting anything already generated.

Pure Python and no Django: the benchmark and the location module's demo data both use it.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterator
from dataclasses import dataclass
from typing import NamedTuple

DEFAULT_SEED = 20_240_601
LOCATION_TYPES = ("Province", "Commune", "Colline")


@dataclass(frozen=True)
class Scale:
    """How big a dataset is. Later datasets add their own sizes here."""

    name: str
    provinces: int
    communes_per_province: int
    collines: int  # in total, spread as evenly as possible over the communes
    individuals: int = 0  # people, in individuals / 4 households

    @property
    def communes(self) -> int:
        return self.provinces * self.communes_per_province

    @property
    def locations(self) -> int:
        return self.provinces + self.communes + self.collines


SCALES = {
    # Burundi since its 2025 reform: 5 provinces, 42 communes, about 2,900 collines.
    "national": Scale("national", provinces=5, communes_per_province=8, collines=2_900, individuals=1_000_000),
    "small": Scale("small", provinces=2, communes_per_province=4, collines=240, individuals=50_000),
}


class LocationRow(NamedTuple):
    code: str
    name: str
    type: str
    parent_code: str | None


def rng(seed: int, *key: object) -> random.Random:
    """A generator for one entity, independent of every other entity's draws."""
    digest = hashlib.blake2b(repr((seed, *key)).encode(), digest_size=8).digest()
    return random.Random(int.from_bytes(digest, "big"))


# Kirundi-sounding syllables: place names such as Gitega, Muyinga, Rumonge, Nyanza.
_PREFIXES = ("Bu", "Ki", "Mu", "Ru", "Gi", "Ka", "Ma", "Nya", "Bi", "Ga")
_SYLLABLES = (
    "ba", "bi", "bu", "ga", "ge", "go", "ha", "ka", "ke", "ki", "ko", "ma", "mi", "mo", "na",
    "nda", "ndi", "nga", "nge", "ngo", "nya", "nza", "nzi", "mba", "mbo", "ra", "re", "ri",
    "ro", "rwa", "sha", "shi", "ta", "te", "to", "ya", "ye", "yi", "za", "zi", "gwa", "bwa",
)


def place_name(random_: random.Random) -> str:
    parts = [random_.choice(_PREFIXES)]
    parts.extend(random_.choice(_SYLLABLES) for _ in range(random_.choice((1, 2, 2, 3))))
    return "".join(parts)


def _unique_name(seed: int, code: str, taken: set[str]) -> str:
    """A name not yet used among its siblings (real collines repeat names across communes)."""
    attempt = 0
    while True:
        name = place_name(rng(seed, "location-name", code, attempt))
        if name not in taken:
            taken.add(name)
            return name
        attempt += 1


def iter_locations(
    scale: Scale = SCALES["national"],
    seed: int = DEFAULT_SEED,
    types: tuple[str, str, str] = LOCATION_TYPES,
) -> Iterator[LocationRow]:
    """The hierarchy, top-down (every parent before its children): ``(code, name, type,
    parent_code)``, with ``parent_code`` ``None`` for a province.

    Codes carry the path (``P03``, ``P03C05``, ``P03C05H041``), so a code says where a
    location is.
    """
    province_type, commune_type, colline_type = types
    per_commune, extra = divmod(scale.collines, scale.communes)
    province_names: set[str] = set()
    for p in range(1, scale.provinces + 1):
        province = f"P{p:02d}"
        yield LocationRow(province, _unique_name(seed, province, province_names), province_type, None)
    commune_names: set[str] = set()  # commune names are unique nationally, as in Burundi
    for p in range(1, scale.provinces + 1):
        for c in range(1, scale.communes_per_province + 1):
            commune = f"P{p:02d}C{c:02d}"
            yield LocationRow(commune, _unique_name(seed, commune, commune_names), commune_type, f"P{p:02d}")
    commune_index = 0
    for p in range(1, scale.provinces + 1):
        for c in range(1, scale.communes_per_province + 1):
            commune = f"P{p:02d}C{c:02d}"
            count = per_commune + (1 if commune_index < extra else 0)
            commune_index += 1
            sibling_names: set[str] = set()
            for h in range(1, count + 1):
                colline = f"{commune}H{h:03d}"
                yield LocationRow(colline, _unique_name(seed, colline, sibling_names), colline_type, commune)


# --- people and households -------------------------------------------------------------------

HOUSEHOLD_SIZE = 4  # on average; sizes pair up (s, 8 - s) so the mean is exact
INDIVIDUAL_COLUMNS = (
    "first_name", "last_name", "dob", "sex", "location_code", "household_code", "role",
    "recipient_type", "national_id", "phone", "disability", "vulnerability_score", "education_level",
)

_MALE_NAMES = (
    "Jean", "Pierre", "Emmanuel", "Eric", "Claude", "Pascal", "Innocent", "Dieudonne", "Gervais",
    "Leonidas", "Melchior", "Salvator", "Evariste", "Thierry", "Patrick", "Alexis", "Bosco",
    "Cyprien", "Deo", "Fabrice", "Gilbert", "Hassan", "Ildephonse", "Joseph", "Lambert", "Ndayizeye",
    "Niyonzima", "Nkurunziza", "Olivier", "Prosper", "Remy", "Samuel", "Tharcisse", "Venant",
)
_FEMALE_NAMES = (
    "Marie", "Claudine", "Esperance", "Goreth", "Jeanine", "Beatrice", "Consolata", "Dorothee",
    "Fidelite", "Gloriose", "Immaculee", "Josiane", "Liliane", "Nadine", "Odette", "Pelagie",
    "Renilde", "Spes", "Triphonie", "Vestine", "Annonciata", "Bernadette", "Chantal", "Divine",
    "Euphrasie", "Francine", "Generose", "Irakoze", "Kaneza", "Leocadie", "Ndayishimiye", "Ornella",
)
_EDUCATION = ("none", "primary", "primary", "secondary", "higher")
_CHILD_ROLES = ("SON", "DAUGHTER")


# The commonest Burundian surnames first: Kirundi names built from a few morphemes (Nda-,
# Niyo-, Ntaki-, -imana, -kiza), so a handful of substrings are in a large share of the
# registry, as officers' searches find. The generated Kirundi-sounding names come after them.
_COMMON_SURNAMES = (
    "Ndayishimiye", "Niyonzima", "Nkurunziza", "Hakizimana", "Ndikumana", "Bizimana", "Niyonkuru",
    "Nshimirimana", "Havyarimana", "Ntakirutimana", "Manirakiza", "Nduwimana", "Niyongabo",
    "Habonimana", "Kwizera", "Iradukunda", "Ndayisenga", "Nijimbere", "Bigirimana", "Irakoze",
    "Ndayizeye", "Niyokwizera", "Nzeyimana", "Hatungimana", "Nahimana", "Sindayigaya",
    "Ngendakumana", "Ndabaneze", "Nsengiyumva", "Barutwanayo", "Ciza", "Nimbona", "Uwimana",
    "Ndagijimana", "Nizigiyimana", "Bukuru", "Ndacayisaba", "Ngabirano", "Mpawenimana", "Butoyi",
)
SURNAME_VOCABULARY = 5_000
SURNAME_ZIPF = 0.8  # the k-th commonest surname is k^-0.8 as common as the commonest (about 4 %)
# Five provinces of unequal size, as Burundi's are; fewer provinces share out the first ones.
PROVINCE_SHARES = (0.35, 0.25, 0.20, 0.12, 0.08)
ADULT_BIRTH_YEARS = (1936, 2006)
CHILD_BIRTH_YEARS = (2006, 2025)  # together: 90 years of dates of birth
_surname_tables: dict[int, tuple[tuple[str, ...], list[float]]] = {}


def _surnames(seed: int) -> tuple[tuple[str, ...], list[float]]:
    """The surname vocabulary of a seed and its cumulative Zipf weights."""
    if seed not in _surname_tables:
        names = list(_COMMON_SURNAMES)
        seen = set(names)
        index = 0
        while len(names) < SURNAME_VOCABULARY:
            name = place_name(rng(seed, "surname", index))
            index += 1
            if name not in seen:
                seen.add(name)
                names.append(name)
        cumulative, total = [], 0.0
        for rank in range(len(names)):
            total += 1 / (rank + 1) ** SURNAME_ZIPF
            cumulative.append(total)
        _surname_tables[seed] = (tuple(names), [c / total for c in cumulative])
    return _surname_tables[seed]


def surname(random_: random.Random, seed: int = DEFAULT_SEED) -> str:
    import bisect

    names, cumulative = _surnames(seed)
    return names[min(bisect.bisect_left(cumulative, random_.random()), len(names) - 1)]


def household_size(index: int, seed: int = DEFAULT_SEED) -> int:
    """Between 2 and 6; households ``2k`` and ``2k + 1`` together have 8 people."""
    base = rng(seed, "household-size", index // 2).randint(2, 6)
    return base if index % 2 == 0 else 8 - base


def colline_codes(scale: Scale, seed: int = DEFAULT_SEED) -> list[str]:
    return [row.code for row in iter_locations(scale, seed) if row.type == LOCATION_TYPES[2]]


def _province_collines(scale: Scale, seed: int) -> tuple[list[list[str]], list[float]]:
    """The collines of each province and the provinces' cumulative shares of the people."""
    by_province: dict[str, list[str]] = {}
    for code in colline_codes(scale, seed):
        by_province.setdefault(code[:3], []).append(code)
    groups = [by_province[key] for key in sorted(by_province)]
    shares = [PROVINCE_SHARES[i % len(PROVINCE_SHARES)] for i in range(len(groups))]
    cumulative, total = [], 0.0
    for share in shares:
        total += share
        cumulative.append(total)
    return groups, [c / total for c in cumulative]


def _date(random_: random.Random, first_year: int, last_year: int) -> str:
    return f"{random_.randint(first_year, last_year):04d}-{random_.randint(1, 12):02d}-{random_.randint(1, 28):02d}"


def iter_individuals(scale: Scale = SCALES["national"], seed: int = DEFAULT_SEED,
                     count: int | None = None) -> Iterator[tuple[str, ...]]:
    """``count`` people (default: the scale's) in ``count / 4`` households spread over the
    collines, as rows of ``INDIVIDUAL_COLUMNS`` (text, as a CSV holds them).

    A household's first member is its head and primary recipient, the second (if any) the
    spouse, the others children; adults have a national id and a phone, children neither.
    Household ``h`` is ``HH<h>`` and its people's values depend only on the seed and ``h``.
    """
    import bisect

    total = scale.individuals if count is None else count
    provinces, shares = _province_collines(scale, seed)
    made = 0
    household = 0
    while made < total:
        size = min(household_size(household, seed), total - made)
        r = rng(seed, "household", household)
        code = f"HH{household:07d}"
        collines = provinces[min(bisect.bisect_left(shares, r.random()), len(provinces) - 1)]
        location = collines[r.randrange(len(collines))]
        last_name = surname(r, seed)
        head_is_male = r.random() < 0.7
        for member in range(size):
            if member == 0:
                male, role, recipient = head_is_male, "HEAD", "PRIMARY"
            elif member == 1:
                male, role, recipient = not head_is_male, "SPOUSE", ""
            else:
                male = r.random() < 0.5
                role, recipient = _CHILD_ROLES[0 if male else 1], ""
            adult = member < 2
            first = r.choice(_MALE_NAMES if male else _FEMALE_NAMES)
            dob = _date(r, *ADULT_BIRTH_YEARS) if adult else _date(r, *CHILD_BIRTH_YEARS)
            national_id = f"BI-{household:07d}-{member}" if adult else ""
            phone = f"+257 7{r.randrange(10)} {r.randrange(1000):03d} {r.randrange(1000):03d}" if adult else ""
            yield (first, last_name, dob, "M" if male else "F", location, code, role, recipient,
                   national_id, phone, "true" if r.random() < 0.05 else "false",
                   str(r.randrange(101)), r.choice(_EDUCATION))
        made += size
        household += 1


def write_individuals_csv(path: str, scale: Scale = SCALES["national"], seed: int = DEFAULT_SEED,
                          count: int | None = None) -> int:
    """Write :func:`iter_individuals` to ``path`` as CSV, streamed; return the row count."""
    import csv

    rows = 0
    with open(path, "w", encoding="utf-8", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(INDIVIDUAL_COLUMNS)
        for row in iter_individuals(scale, seed, count):
            writer.writerow(row)
            rows += 1
    return rows
