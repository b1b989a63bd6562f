"""Pools of valid phone numbers per country (validated once with ``phonenumbers``) and their formats."""

from __future__ import annotations

import re
from functools import cache

import numpy as np
import phonenumbers

from pipelines.generate.config import COUNTRIES, COUNTRY_CALLING_CODE, STORES

_US_AREAS = [
    "201",
    "202",
    "203",
    "205",
    "206",
    "207",
    "208",
    "210",
    "212",
    "213",
    "214",
    "215",
    "216",
    "217",
    "218",
    "219",
    "224",
    "225",
    "228",
    "229",
    "231",
    "234",
    "239",
    "240",
    "248",
    "251",
    "252",
    "253",
    "254",
    "256",
    "260",
    "262",
    "267",
    "269",
    "270",
    "276",
    "281",
    "301",
    "302",
    "303",
    "304",
    "305",
    "307",
    "308",
    "309",
    "310",
    "312",
    "313",
    "314",
    "315",
    "316",
    "317",
    "318",
    "319",
    "320",
    "321",
    "323",
    "325",
    "330",
    "331",
    "334",
    "336",
    "337",
    "339",
    "347",
    "352",
    "360",
    "361",
    "386",
    "401",
    "402",
    "404",
    "405",
    "406",
    "407",
    "408",
    "409",
    "410",
    "412",
    "413",
    "414",
    "415",
    "417",
    "419",
    "423",
    "424",
    "425",
    "432",
    "434",
    "435",
    "440",
    "443",
    "469",
    "470",
    "475",
    "478",
    "479",
    "480",
    "484",
    "501",
    "502",
    "503",
    "504",
    "505",
    "507",
    "508",
    "509",
    "510",
    "512",
    "513",
    "515",
    "516",
    "517",
    "518",
    "520",
    "530",
    "540",
    "541",
    "551",
    "559",
    "561",
    "562",
    "563",
    "567",
    "570",
    "571",
    "573",
    "574",
    "575",
    "580",
    "585",
    "586",
    "601",
    "602",
    "603",
    "605",
    "606",
    "607",
    "608",
    "609",
    "610",
    "612",
    "614",
    "615",
    "616",
    "617",
    "618",
    "619",
    "620",
    "623",
    "626",
    "630",
    "631",
    "636",
    "641",
    "646",
    "650",
    "651",
    "660",
    "661",
    "662",
    "678",
    "682",
    "701",
    "702",
    "703",
    "704",
    "706",
    "707",
    "708",
    "712",
    "713",
    "714",
    "715",
    "716",
    "717",
    "718",
    "719",
    "720",
    "724",
    "727",
    "731",
    "732",
    "734",
    "740",
    "754",
    "757",
    "760",
    "763",
    "765",
    "770",
    "772",
    "773",
    "774",
    "775",
    "781",
    "785",
    "786",
    "801",
    "802",
    "803",
    "804",
    "805",
    "806",
    "808",
    "810",
    "812",
    "813",
    "814",
    "815",
    "816",
    "817",
    "818",
    "828",
    "830",
    "831",
    "832",
    "843",
    "845",
    "847",
    "848",
    "850",
    "856",
    "857",
    "858",
    "859",
    "860",
    "862",
    "863",
    "864",
    "865",
    "870",
    "878",
    "901",
    "903",
    "904",
    "906",
    "907",
    "908",
    "909",
    "910",
    "912",
    "913",
    "914",
    "915",
    "916",
    "917",
    "918",
    "919",
    "920",
    "925",
    "928",
    "931",
    "936",
    "937",
    "940",
    "941",
    "949",
    "951",
    "952",
    "954",
    "956",
    "970",
    "971",
    "972",
    "973",
    "978",
    "979",
    "980",
    "985",
    "989",
]
_CA_AREAS = [
    "416",
    "647",
    "437",
    "905",
    "289",
    "613",
    "343",
    "514",
    "438",
    "450",
    "418",
    "581",
    "519",
    "226",
    "705",
    "249",
    "604",
    "778",
    "403",
    "587",
    "780",
    "902",
    "506",
    "709",
    "306",
    "204",
]
_GB_AREAS3 = ["161", "121", "113", "141", "117", "151", "131", "114", "115", "116", "118"]
_DE_AREAS2 = ["30", "40", "89", "69"]
_DE_AREAS3 = ["221", "211", "711", "511", "911", "421", "351", "341", "201", "231", "203", "228"]
_DE_MOBILE = [
    "151",
    "152",
    "157",
    "159",
    "160",
    "162",
    "163",
    "170",
    "171",
    "172",
    "173",
    "174",
    "175",
    "176",
    "177",
    "178",
    "179",
]


def _digits(rng: np.random.Generator, n: int, k: int) -> np.ndarray:
    """``n`` random integers with exactly ``k`` digits (leading zeros allowed)."""
    return rng.integers(0, 10**k, size=n, dtype=np.int64)


def _pick(rng: np.random.Generator, values: list[str], n: int) -> tuple[np.ndarray, np.ndarray]:
    """Random prefixes from ``values``: (integer value, digit count)."""
    arr = np.array([int(v) for v in values], dtype=np.int64)
    lens = np.array([len(v) for v in values], dtype=np.int8)
    idx = rng.integers(0, len(values), size=n)
    return arr[idx], lens[idx]


def candidates(country: str, rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Candidate national significant numbers for ``country``: (number, area-code length)."""
    if country in ("US", "CA"):
        area, alen = _pick(rng, _US_AREAS if country == "US" else _CA_AREAS, n)
        exch = rng.integers(200, 1000, size=n)
        exch = np.where((exch % 100 == 11) | (exch == 555), exch + 1, exch)
        return area * 10_000_000 + exch * 10_000 + _digits(rng, n, 4), alen
    if country == "GB":
        kind = rng.choice(3, size=n, p=[0.3, 0.3, 0.4])
        london = 20 * 10**8 + rng.choice([3, 7, 8], size=n) * 10**7 + _digits(rng, n, 7)
        area3, _ = _pick(rng, _GB_AREAS3, n)
        geo = area3 * 10**7 + rng.integers(2, 9, size=n) * 10**6 + _digits(rng, n, 6)
        mobile = 7 * 10**9 + rng.integers(4, 10, size=n) * 10**8 + _digits(rng, n, 8)
        nsn = np.select([kind == 0, kind == 1], [london, geo], mobile)
        alen = np.select([kind == 0, kind == 1], [2, 3], 4).astype(np.int8)
        return nsn, alen
    if country == "DE":
        kind = rng.choice(3, size=n, p=[0.3, 0.3, 0.4])
        a2, _ = _pick(rng, _DE_AREAS2, n)
        a3, _ = _pick(rng, _DE_AREAS3, n)
        am, _ = _pick(rng, _DE_MOBILE, n)
        big = 10**7 * a2 + rng.integers(1, 10, size=n) * 10**6 + _digits(rng, n, 6)
        mid = 10**7 * a3 + rng.integers(2, 10, size=n) * 10**6 + _digits(rng, n, 6)
        mob = 10**8 * am + rng.integers(1, 10, size=n) * 10**7 + _digits(rng, n, 7)
        nsn = np.select([kind == 0, kind == 1], [big, mid], mob)
        alen = np.select([kind == 0, kind == 1], [2, 3], 3).astype(np.int8)
        return nsn, alen
    if country == "FR":
        first = np.where(rng.random(n) < 0.55, rng.integers(1, 6, size=n), rng.integers(6, 8, size=n))
        return first * 10**8 + _digits(rng, n, 8), np.ones(n, dtype=np.int8)
    raise ValueError(f"unknown country {country}")


@cache
def _validity_regex(country: str) -> re.Pattern[str]:
    """Fixed-line or mobile national-number pattern of ``country`` from phonenumbers' metadata."""
    md = phonenumbers.PhoneMetadata.metadata_for_region(country)
    parts = [
        d.national_number_pattern
        for d in (md.fixed_line, md.mobile)
        if d is not None and d.national_number_pattern
    ]
    return re.compile("|".join(f"(?:{x})" for x in parts))


def valid_pool(
    country: str, rng: np.random.Generator, size: int, exclude: set[int] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """``size`` distinct numbers valid for ``country`` (none of ``exclude``), in random order.

    Candidates are screened with the region's fixed-line/mobile patterns (fast), and a sample of the
    result is confirmed with ``phonenumbers.is_valid_number_for_region``.
    """
    cc = COUNTRY_CALLING_CODE[COUNTRIES.index(country)]
    pattern = _validity_regex(country)
    got_nsn: list[np.ndarray] = []
    got_len: list[np.ndarray] = []
    seen: set[int] = set(exclude or ())
    have = 0
    while have < size:
        want = int((size - have) * 1.25) + 16
        nsn, alen = candidates(country, rng, want)
        keep = np.zeros(want, dtype=bool)
        for i, v in enumerate(nsn.tolist()):
            if v not in seen and pattern.fullmatch(str(v)):
                keep[i] = True
                seen.add(v)
        got_nsn.append(nsn[keep])
        got_len.append(alen[keep])
        have += int(keep.sum())
    nsn_all = np.concatenate(got_nsn)[:size]
    len_all = np.concatenate(got_len)[:size]
    for v in nsn_all[:500].tolist():
        if not phonenumbers.is_valid_number_for_region(
            phonenumbers.PhoneNumber(country_code=cc, national_number=v), country
        ):
            raise AssertionError(f"generated invalid {country} number {v}")
    order = rng.permutation(len(nsn_all))
    return nsn_all[order], len_all[order]


def e164(cc: int, nsn: int) -> str:
    """E.164 form: ``+`` calling code and national number."""
    return f"+{cc}{nsn}"


def format_phone(country: str, nsn: int, area_len: int, style: int) -> str:
    """Write one number the way people type it. ``style`` 0-2 national, 3-5 international."""
    s = str(nsn)
    cc = COUNTRY_CALLING_CODE[COUNTRIES.index(country)]
    if country in ("US", "CA"):
        a, b, c = s[:3], s[3:6], s[6:]
        return (
            f"({a}) {b}-{c}",
            f"{a}-{b}-{c}",
            f"{a}.{b}.{c}",
            f"+1 {a}-{b}-{c}",
            f"+1 ({a}) {b}-{c}",
            f"+1{s}",
        )[style]
    if country == "FR":
        g = " ".join([s[0], s[1:3], s[3:5], s[5:7], s[7:9]])
        return (f"0{g}", f"0{s}", "0" + g.replace(" ", "."), f"+33 {g}", f"0033 {g}", f"+33{s}")[style]
    area, rest = s[:area_len], s[area_len:]
    if country == "GB":
        if area_len == 2:
            rest = f"{rest[:4]} {rest[4:]}"
        elif area_len == 3:
            rest = f"{rest[:3]} {rest[3:]}"
        return (
            f"0{area} {rest}",
            f"0{area}{rest.replace(' ', '')}",
            f"0{area} {rest}",
            f"+44 {area} {rest}",
            f"0044 {area} {rest}",
            f"+44{s}",
        )[style]
    # DE
    return (
        f"0{area} {rest}",
        f"0{area}/{rest}",
        f"0{area}-{rest}",
        f"+49 {area} {rest}",
        f"00{cc} {area} {rest}",
        f"+49{s}",
    )[style]


def store_phones() -> tuple[np.ndarray, np.ndarray]:
    """One valid phone number per store (drawn from a separate stream so it never changes)."""
    srng = np.random.default_rng([7, 1234])
    nsn = np.zeros(len(STORES), dtype=np.int64)
    alen = np.zeros(len(STORES), dtype=np.int8)
    for ci, c in enumerate(COUNTRIES):
        idx = [i for i, s in enumerate(STORES) if s[1] == ci]
        a, b = valid_pool(c, srng, len(idx))
        nsn[idx], alen[idx] = a, b
    return nsn, alen
