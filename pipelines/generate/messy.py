"""Pure functions that dirty identity fields the way real exports do (typos, case, accents, formats).

Every function is deterministic given its arguments; randomness comes in as pre-drawn numbers so
callers can vectorize the draws with numpy and keep results reproducible.
"""

from __future__ import annotations

import re
import unicodedata

import numpy as np

_GERMAN = str.maketrans({"ä": "ae", "ö": "oe", "ü": "ue", "Ä": "Ae", "Ö": "Oe", "Ü": "Ue", "ß": "ss"})
_NOT_EMAIL_LOCAL = re.compile(r"[^a-z0-9]")


def ascii_fold(text: str) -> str:
    """Drop accents: ``José`` -> ``Jose``, ``Müller`` -> ``Muller``, ``Straße`` -> ``Strasse``."""
    text = text.replace("ß", "ss").replace("ı", "i").replace("ł", "l")
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")


def german_translit(text: str) -> str:
    """German transliteration: ``Müller`` -> ``Mueller``, ``Straße`` -> ``Strasse``, then fold the rest."""
    return ascii_fold(text.translate(_GERMAN))


def email_token(name: str) -> str:
    """Lower-case ASCII letters and digits only, for building e-mail local parts."""
    return _NOT_EMAIL_LOCAL.sub("", german_translit(name).lower())


def typo(text: str, kind: int, pos: float) -> str:
    """Keyboard slip: ``kind`` 0 swaps two adjacent letters, 1 drops a letter; ``pos`` in [0, 1)."""
    if len(text) < 4:
        return text
    i = 1 + int(pos * (len(text) - 2))  # never the first letter
    if kind == 0:
        i = min(i, len(text) - 2)
        if text[i] == text[i + 1]:
            return text[:i] + text[i + 1 :]
        return text[:i] + text[i + 1] + text[i] + text[i + 2 :]
    return text[:i] + text[i + 1 :]


def recase(text: str, mode: int) -> str:
    """0 unchanged, 1 UPPER, 2 lower, 3 Title."""
    if mode == 1:
        return text.upper()
    if mode == 2:
        return text.lower()
    if mode == 3:
        return text.title()
    return text


def stray_spaces(text: str, mode: int) -> str:
    """0 unchanged, 1 leading space, 2 trailing space, 3 both, 4 doubled inner space or trailing."""
    if mode == 1:
        return " " + text
    if mode == 2:
        return text + " "
    if mode == 3:
        return f" {text}  "
    if mode == 4:
        return text.replace(" ", "  ", 1) if " " in text else text + "  "
    return text


def accent_variant(text: str, mode: int) -> str:
    """0 unchanged, 1 accents dropped (``Müller`` -> ``Muller``), 2 German style (``Mueller``)."""
    if mode == 1:
        return ascii_fold(text)
    if mode == 2:
        return german_translit(text)
    return text


def messy_name(text: str, accent: int, case: int, spaces: int, typo_kind: int, typo_pos: float) -> str:
    """Apply accent, typo (``typo_kind`` < 0 = none), case and stray-space noise to one name."""
    out = accent_variant(text, accent)
    if typo_kind >= 0:
        out = typo(out, typo_kind, typo_pos)
    return stray_spaces(recase(out, case), spaces)


def gmail_variant(email: str, mode: int, tag: str) -> str:
    """Same gmail mailbox written differently: 1 dots removed/added, 2 ``+tag``, 3 both."""
    local, _, domain = email.partition("@")
    if mode in (1, 3):
        if "." in local:
            local = local.replace(".", "")
        elif len(local) > 3:
            local = local[:3] + "." + local[3:]
    if mode in (2, 3):
        local = f"{local}+{tag}"
    return f"{local}@{domain}"


def messy_email(email: str, case: int, spaces: int) -> str:
    """Case (0 none, 1 UPPER, 2 Capitalised local and domain) and surrounding-space noise."""
    if case == 1:
        email = email.upper()
    elif case == 2:
        local, _, domain = email.partition("@")
        email = f"{local[:1].upper()}{local[1:]}@{domain[:1].upper()}{domain[1:]}"
    if spaces == 1:
        return f" {email}"
    if spaces == 2:
        return f"{email} "
    if spaces == 3:
        return f"  {email} "
    return email


def malformed_email(email: str, kind: int) -> str:
    """Break an address: 0 doubled ``@``, 1 ``@`` replaced by ``.``, 2 every domain dot dropped
    (``yahoo.co.uk`` → ``yahoo``: dropping only the last label could leave a valid ``yahoo.co``)."""
    local, _, domain = email.partition("@")
    if kind == 0:
        return f"{local}@@{domain}"
    if kind == 1:
        return f"{local}.{domain}"
    return f"{local}@{domain.split('.', 1)[0]}"


_BIRTH_FORMATS = {"US": "{m:02d}/{d:02d}/{y}", "CA": "{m:02d}/{d:02d}/{y}", "GB": "{d:02d}/{m:02d}/{y}"}
_BIRTH_FORMATS.update({"FR": "{d:02d}/{m:02d}/{y}", "DE": "{d:02d}.{m:02d}.{y}"})


def format_birth_date(country: str, y: int, m: int, d: int, iso: bool) -> str:
    """ISO ``YYYY-MM-DD`` or the country's own order (MM/DD/YYYY, DD/MM/YYYY, DD.MM.YYYY)."""
    if iso:
        return f"{y:04d}-{m:02d}-{d:02d}"
    return _BIRTH_FORMATS[country].format(y=y, m=m, d=d)


def format_street(country: str, number: int, name: str, stype: tuple[str, str], abbrev: bool) -> str:
    """Street line in the country's order, long (``Street``/``straße``) or abbreviated (``St.``/``str.``)."""
    kind = stype[1] if abbrev else stype[0]
    if country == "DE":
        if kind == "straße" and abbrev is False and number % 3 == 0:
            kind = "strasse"
        return f"{name}{kind} {number}"
    if country == "FR":
        return f"{number} {kind} {name}"
    return f"{number} {name} {kind}"


def messy_postcode(country: str, postcode: str, mode: int) -> str:
    """0 unchanged; 1 leading zero lost (US/DE/FR) or no inner space (GB/CA); 2 lower-case (GB/CA)."""
    if mode == 0:
        return postcode
    if country in ("GB", "CA"):
        return postcode.replace(" ", "") if mode == 1 else postcode.lower()
    return postcode.lstrip("0") if mode == 1 and postcode.startswith("0") else postcode


_TRUE = ("true", "yes", "1", "Y", "TRUE", "Yes")
_FALSE = ("false", "no", "0", "N", "FALSE", "No")
#: [0 = true / 1 = false, style] -> spelling
BOOL_SPELLINGS = np.array([_TRUE, _FALSE], dtype=object)
