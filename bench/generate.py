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

    @property
    def communes(self) -> int:
        return self.provinces * self.communes_per_province

    @property
    def locations(self) -> int:
        return self.provinces + self.communes + self.collines


SCALES = {
    # Burundi since its 2025 reform: 5 provinces, 42 communes, about 2,900 collines.
    "national": Scale("national", provinces=5, communes_per_province=8, collines=2_900),
    "small": Scale("small", provinces=2, communes_per_province=4, collines=240),
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
