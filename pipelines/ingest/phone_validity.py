"""Phone number validity for many numbers at once: what ``phonenumbers.is_valid_number`` says,
with the library's own metadata patterns run by Arrow (RE2) over arrays.

``is_valid_number`` costs about 15–19 µs a number in Python: it finds the number's region by
trying each region of its calling code, then types the number, and each step runs up to ten
regular expressions. Here the same steps run over whole arrays, in the library's order:

1. the region: for a calling code with one region, that region; otherwise the first region
   whose leading digits prefix the number or, for a region without leading digits, whose
   patterns give the number a type (so a region matched by leading digits is final even if
   the number then has no type there, as in the library);
2. valid when the number has a type in that region: it matches the general description and
   one of the type descriptions (premium rate, toll free, ..., fixed line, mobile), each with
   its possible lengths.

``tests/test_standardize.py`` compares this with ``is_valid_number`` on random numbers of every
calling code.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from phonenumbers import COUNTRY_CODE_TO_REGION_CODE
from phonenumbers.phonemetadata import PhoneMetadata, PhoneNumberDesc

#: Type descriptions in the order ``phonenumbers`` tests them; any match gives a type.
_TYPES = (
    "premium_rate",
    "toll_free",
    "shared_cost",
    "voip",
    "personal_number",
    "pager",
    "uan",
    "voicemail",
    "fixed_line",
    "mobile",
)
_NON_GEO = "001"


def valid_numbers(codes: np.ndarray, nationals: np.ndarray) -> np.ndarray:
    """Whether each (calling code, national number) is a valid number. National numbers are
    integers, so they carry no leading zero (numbers written with one are not for this)."""
    codes = np.asarray(codes, dtype=np.int64)
    nationals = np.asarray(nationals, dtype=np.int64)
    out = np.zeros(len(codes), dtype=bool)
    for code in np.unique(codes).tolist():
        at = np.flatnonzero(codes == code)
        digits = pc.cast(pa.array(nationals[at]), pa.string())
        out[at] = _valid_for_code(code, digits)
    return out


def _valid_for_code(code: int, digits: pa.Array) -> np.ndarray:
    regions = COUNTRY_CODE_TO_REGION_CODE.get(code)
    valid = np.zeros(len(digits), dtype=bool)
    if not regions:
        return valid
    if len(regions) == 1:
        metadata = PhoneMetadata.metadata_for_region_or_calling_code(code, regions[0])
        if metadata is not None and (regions[0] == _NON_GEO or metadata.country_code == code):
            valid[:] = _typed(digits, metadata)
        return valid
    pending = np.arange(len(digits))  # numbers whose region is not found yet
    for region in regions:
        if not len(pending):
            break
        metadata = PhoneMetadata.metadata_for_region(region.upper(), None)
        if metadata is None:
            continue
        candidates = digits.take(pending)
        if metadata.leading_digits is not None:
            found = true_mask(pc.match_substring_regex(candidates, f"^(?:{metadata.leading_digits})"))
            typed = _typed(candidates.filter(found), metadata) if found.any() else np.zeros(0, bool)
            valid[pending[found]] = typed & (metadata.country_code == code)
        else:
            found = _typed(candidates, metadata)
            valid[pending[found]] = metadata.country_code == code
        pending = pending[~found]
    return valid  # numbers no region claims are invalid


def _typed(digits: pa.Array, metadata: PhoneMetadata) -> np.ndarray:
    """Whether each number has a type under ``metadata`` (``_number_type_helper`` != UNKNOWN)."""
    typed = np.zeros(len(digits), dtype=bool)
    open_ = np.flatnonzero(_matches(digits, metadata.general_desc))
    for name in _TYPES:
        if not len(open_):
            break
        if name == "mobile" and metadata.same_mobile_and_fixed_line_pattern:
            break  # the library does not test mobile then
        hit = _matches(digits.take(open_), getattr(metadata, name))
        typed[open_[hit]] = True
        open_ = open_[~hit]
    return typed


def _matches(digits: pa.Array, desc: PhoneNumberDesc | None) -> np.ndarray:
    """``_is_number_matching_desc``: a possible length (if any are listed) and a full match of
    the national number pattern (an empty pattern matches nothing)."""
    if desc is None or not desc.national_number_pattern or not len(digits):
        return np.zeros(len(digits), dtype=bool)
    ok = true_mask(pc.match_substring_regex(digits, f"^(?:{desc.national_number_pattern})$"))
    if desc.possible_length:
        lengths = pa.array(list(desc.possible_length), pa.int32())
        ok &= true_mask(pc.is_in(pc.utf8_length(digits), value_set=lengths))
    return ok


def true_mask(mask: pa.Array) -> np.ndarray:
    """A boolean Arrow array as numpy, nulls as False."""
    return pc.fill_null(mask, False).to_numpy(zero_copy_only=False)
