"""Table-driven tests of every standardization rule, edge cases included."""

from __future__ import annotations

from datetime import date

import duckdb
import pandas as pd
import pytest

from cip.categories import canonical_category
from pipelines.ingest import rules
from pipelines.ingest import standardize as std


def one(fn, *values):
    series = [pd.Series([v], dtype="string") if isinstance(v, str) or v is None else v for v in values]
    out = fn(*series)
    value = out.iloc[0]
    return None if value is None or (not isinstance(value, str | date) and pd.isna(value)) else value


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("  John.Smith@Example.COM ", "john.smith@example.com"),
        ("JOHN.SMITH+promo@GMAIL.com", "john.smith+promo@gmail.com"),  # plus tag kept
        ("johnsmith@gmail.com", "johnsmith@gmail.com"),  # dots not merged blindly
        ("", None),
        ("   ", None),
        (None, None),
        ("ｊｏｈｎ@example.com", "john@example.com"),  # full-width → NFKC
    ],
)
def test_normalize_email(raw, expected):
    assert one(std.normalize_email, raw) == expected


@pytest.mark.parametrize(
    ("email", "valid"),
    [
        ("john.smith@example.com", True),
        ("a_b-c+d@sub.domain.co.uk", True),
        ("anna.smith@@mail.com", False),
        ("john.gmail.com", False),
        ("john@", False),
        ("@example.com", False),
        ("john@example", False),
        ("john smith@example.com", False),
    ],
)
def test_email_validity(email, valid):
    assert bool(std.is_valid_email(pd.Series([email], dtype="string")).iloc[0]) is valid


@pytest.mark.parametrize(
    ("raw", "country", "expected"),
    [
        ("(212) 555-2368", "US", "+12125552368"),
        ("212.555.2368", "US", "+12125552368"),
        ("+1 212 555 2368", "DE", "+12125552368"),  # international prefix wins over region
        ("030 12345678", "DE", "+493012345678"),  # national DE number uses the customer's country
        ("0049 30 12345678", "US", "+493012345678"),  # 00 international prefix
        ("+44 20 7946 0958", "GB", "+442079460958"),
        ("020 7946 0958", "GB", "+442079460958"),
        ("01 42 68 53 00", "FR", "+33142685300"),
        ("(416) 555-2368", "CA", "+14165552368"),
        ("1 (212) 555-2368", "US", "+12125552368"),  # trunk prefix 1
        ("06 81 19 38 45", "FR", "+33681193845"),
        ("030/12345678", "DE", "+493012345678"),
        ("+44 (0)20 7946 0958", "GB", "+442079460958"),  # (0) in an international number
        ("011 44 20 7946 0958", "US", "+442079460958"),  # US international dialling prefix
        ("0113 527 2049", "US", "+35272049"),  # a GB number read in the US: 011 is dialled out
        ("020 7946 0958", "US", None),  # no US number starts with 0
        ("(0)20 7946 0958", "CA", None),
        ("2125552368", "IT", None),  # region without a plain reading: the general parser decides
        ("0000000000", "US", None),
        ("not a phone", "US", None),
        ("", "US", None),
    ],
)
def test_normalize_phone(raw, country, expected):
    assert one(std.normalize_phone, raw, country) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("  jOSÉ  ", "José"),
        ("mary   ann", "Mary Ann"),
        ("MÜLLER", "Müller"),
        ("o'brien", "O'Brien"),
        ("Jose\u0301", "José"),  # decomposed accent → NFC
        ("", None),
    ],
)
def test_normalize_name(raw, expected):
    assert one(std.normalize_name, raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"), [("José", "jose"), ("Müller", "muller"), ("O'Brien", "obrien"), ("  ", None)]
)
def test_ascii_key(raw, expected):
    assert one(std.ascii_key, raw) == expected


@pytest.mark.parametrize(
    ("raw", "country", "expected"),
    [
        ("1985-03-12", "US", date(1985, 3, 12)),
        ("03/12/1985", "US", date(1985, 3, 12)),  # month first in the US
        ("03/12/1985", "CA", date(1985, 3, 12)),
        ("03/12/1985", "GB", date(1985, 12, 3)),  # day first in GB
        ("12/03/1985", "FR", date(1985, 3, 12)),
        ("12.03.1985", "DE", date(1985, 3, 12)),
        ("31/02/1985", "GB", None),  # impossible date
        ("13/25/1985", "US", None),
        ("yesterday", "US", None),
        ("", "US", None),
    ],
)
def test_parse_birth_date(raw, country, expected):
    assert one(std.parse_birth_date, raw, country) == expected


def sql_value(expr: str, **columns):
    con = duckdb.connect()
    rules.prepare(con)
    con.register("t", pd.DataFrame({k: [v] for k, v in columns.items()}))
    return con.execute(f"SELECT {expr} AS x FROM t").fetchall()[0][0]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2024-03-02T10:11:12+01:00", "2024-03-02T09:11:12Z"),
        ("2024-03-02T10:11:12Z", "2024-03-02T10:11:12Z"),
        ("2024-03-02T10:11:12.250-05:00", "2024-03-02T15:11:12.250Z"),
        ("2024-03-02 10:11:12", "2024-03-02T10:11:12Z"),  # no offset → UTC
        ("garbage", None),
    ],
)
def test_utc_timestamp(raw, expected):
    got = sql_value(rules.utc_timestamp("a"), a=raw)
    assert (got is None and expected is None) or pd.Timestamp(got) == pd.Timestamp(expected)


@pytest.mark.parametrize(
    ("local", "tz", "expected"),
    [
        ("2024-07-01 12:00:00", "Europe/Berlin", "2024-07-01T10:00:00Z"),  # CEST, UTC+2
        ("2024-01-15 12:00:00", "Europe/Berlin", "2024-01-15T11:00:00Z"),  # CET, UTC+1
        ("2024-01-15 12:00:00", "America/Los_Angeles", "2024-01-15T20:00:00Z"),
        (
            "2024-10-27 02:30:00",
            "Europe/Berlin",
            "2024-10-27T01:30:00Z",
        ),  # ambiguous: standard-time occurrence
        ("2024-03-31 02:30:00", "Europe/Berlin", "2024-03-31T01:30:00Z"),  # non-existent: pre-jump offset
        ("2024-01-15 12:00:00", "Mars/Olympus", None),  # unknown zone
        ("15/01/2024 12:00", "Europe/Berlin", None),
    ],
)
def test_local_to_utc(local, tz, expected):
    got = sql_value(rules.local_to_utc("a", "tz"), a=local, tz=tz)
    assert (got is None and expected is None) or pd.Timestamp(got) == pd.Timestamp(expected)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("true", True),
        ("YES", True),
        ("1", True),
        ("Y", True),
        ("false", False),
        ("no", False),
        ("0", False),
        ("", None),
        ("maybe", None),
    ],
)
def test_parse_flag(raw, expected):
    got = std.parse_flag(pd.Series([raw], dtype="string")).iloc[0]
    assert (pd.isna(got) and expected is None) or bool(got) is expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Home & Garden", "home"),
        ("HOME AND GARDEN", "home"),
        ("home_garden", "home"),
        ("Sporting Goods", "sports"),
        ("tech", "electronics"),
        ("Spaceships", "unknown"),
        (None, "unknown"),
    ],
)
def test_category_mapping(raw, expected):
    assert canonical_category(raw) == expected
    assert std.map_category(pd.Series([raw], dtype="string")).iloc[0] == expected


@pytest.mark.parametrize(("raw", "expected"), [("sw1a  1aa", "SW1A 1AA"), (" 10115 ", "10115"), ("", None)])
def test_normalize_postcode(raw, expected):
    assert one(std.normalize_postcode, raw) == expected


def test_to_base_currency_uses_latest_rate_on_or_before_date():
    fx = pd.DataFrame(
        {
            "date": [date(2024, 1, 1), date(2024, 1, 3), date(2024, 1, 1)],
            "currency": ["EUR", "EUR", "GBP"],
            "rate_to_base": [1.10, 1.20, 1.25],
        }
    )
    con = duckdb.connect()
    rules.prepare(con)
    rules.register_fx(con, fx, "USD")
    rows = pd.DataFrame(
        {
            "amount": [10.0] * 7,
            "currency": ["EUR", "EUR", "EUR", "USD", "GBP", "JPY", "EUR"],
            "d": pd.to_datetime(
                [
                    "2024-01-02",
                    "2024-01-03",
                    "2023-12-01",
                    "2024-01-05",
                    "2024-01-02",
                    "2024-01-02",
                    "2025-06-30",
                ]
            ).date,
            "i": range(7),
        }
    )
    con.register("t", rows)
    expr, joins = rules.to_base("t.amount", "t.currency", "t.d", "r")
    got = [
        None if v is None else round(v, 6)
        for (v,) in con.execute(f"SELECT {expr} FROM t {joins} ORDER BY t.i").fetchall()
    ]
    # before the first rate → earliest known rate; after the last → the last; USD → 1; no rate → NULL
    assert got == [11.0, 12.0, 11.0, 10.0, 12.5, None, 12.0]


def test_plain_phone_reading_agrees_with_the_general_parser():
    """The quick reading of plainly written numbers gives what phonenumbers' parser gives, for
    every way the generator writes numbers, read with the right region and with wrong ones."""
    import numpy as np

    from pipelines.generate.phones import COUNTRIES, format_phone, valid_pool

    rng = np.random.default_rng(3)
    cases = []
    for country in COUNTRIES:
        nsn, area = valid_pool(country, rng, 40)
        for number, area_len in zip(nsn.tolist(), area.tolist(), strict=True):
            for style in range(6):
                text = format_phone(country, number, area_len, style)
                cases += [(text, region) for region in (country, "US", "GB", "IT")]
                cases.append((text.replace(" ", "")[:-1], country))  # a digit short
    # no US/CA number starts with 0 except through the 011 international prefix
    digits = rng.integers(0, 10, size=(3_000, 11)).astype(str)
    for row, length in zip(digits, rng.integers(4, 12, size=len(digits)), strict=True):
        text = "0" + "".join(row[: length - 1])
        cases += [(text, "US"), ("0" + text[1:4] + " " + text[4:], "CA")]
    assert len(cases) > 10_000
    texts, regions = zip(*cases, strict=True)
    got = std.normalize_phone(pd.Series(texts, dtype=std.STR), pd.Series(regions, dtype=std.STR))
    for (text, region), e164 in zip(cases, got.tolist(), strict=True):
        normalized = "+" + text[2:] if text.startswith("00") else text
        assert (None if pd.isna(e164) else e164) == std._parsed_e164(normalized.strip(), region), (
            text,
            region,
        )


def test_vectorized_validity_is_what_phonenumbers_says():
    """``valid_numbers`` against ``phonenumbers.is_valid_number``: random numbers of every calling
    code, and every region's example numbers of every type with their neighbours (so region
    lookup by leading digits, shared calling codes and per-type lengths are all exercised)."""
    import numpy as np
    import phonenumbers
    from phonenumbers.phonemetadata import PhoneMetadata

    from pipelines.ingest.phone_validity import _TYPES, valid_numbers

    rng = np.random.default_rng(11)
    all_codes = np.array(sorted(phonenumbers.COUNTRY_CODE_TO_REGION_CODE))
    codes = list(rng.choice(all_codes, 20_000))
    nationals = [int(rng.integers(10 ** (k - 1), 10**k)) for k in rng.integers(2, 16, 20_000)]
    for code in all_codes.tolist():
        for region in phonenumbers.COUNTRY_CODE_TO_REGION_CODE[code]:
            metadata = PhoneMetadata.metadata_for_region_or_calling_code(code, region)
            for name in _TYPES if metadata else ():
                desc = getattr(metadata, name)
                if desc is not None and desc.example_number and not desc.example_number.startswith("0"):
                    example = int(desc.example_number)
                    for number in (example - 1, example, example + 1, example * 10 + 1, example // 10):
                        codes.append(code)
                        nationals.append(number)
    expected = [
        phonenumbers.is_valid_number(phonenumbers.PhoneNumber(country_code=c, national_number=n))
        for c, n in zip(codes, nationals, strict=True)
    ]
    assert sum(expected) > 3_000  # plenty of valid numbers, not only rejections
    assert valid_numbers(np.array(codes), np.array(nationals)).tolist() == expected


def test_text_rules_give_the_same_through_arrow_kernels_as_per_value():
    """Name, address, postcode, e-mail and matching-key rules run Arrow kernels on all-ASCII
    values and Python per value on the rest: both must give what the Python rule gives."""
    import random
    import string

    import pyarrow as pa

    rng = random.Random(5)
    alphabet = string.printable + "\x1c\x1d\x1e\x1f\x00\x7f"
    exotic = "éÉßİﬁK\u00a0\u2009\u3000ñ'-"
    values = [
        "".join(rng.choice(alphabet if k % 4 else alphabet + exotic) for _ in range(rng.randint(0, 14)))
        for k in range(40_000)
    ]
    values += ["o'neil", "3rd  st.", "  MAIN\tstreet ", "sw1a  1aa", "José  Müller", "", " ", None]
    rules_ = {
        "e-mail": (std._EMAIL, std._email_text),
        "name/address": (std._TITLED, std._titled),
        "postcode": (std._POSTCODE, std._postcode_text),
        "matching key": (std._KEY, std._key_text),
    }
    for name, (rule, per_value) in rules_.items():
        got = rule(pa.array(values, pa.string())).to_pylist()
        expected = [None if v is None else per_value(v) for v in values]
        assert got == expected, name
