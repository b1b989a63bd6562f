"""Canonical product categories and the raw spellings sources use for them (declared once)."""

from __future__ import annotations

import re

CATEGORIES: tuple[str, ...] = (
    "electronics",
    "fashion",
    "home",
    "beauty",
    "sports",
    "grocery",
    "toys",
    "books",
)

#: Raw spellings seen in exports, keyed by canonical category. Matching is case- and
#: punctuation-insensitive (see :func:`category_key`).
RAW_SPELLINGS: dict[str, tuple[str, ...]] = {
    "electronics": ("Electronics", "ELECTRONICS", "electronic", "Consumer Electronics", "tech"),
    "fashion": ("Fashion", "Apparel", "Clothing & Shoes", "fashion_apparel", "CLOTHING"),
    "home": ("Home", "Home & Garden", "home_garden", "HOME AND GARDEN", "Furniture"),
    "beauty": ("Beauty", "Health & Beauty", "beauty_care", "Cosmetics", "BEAUTY"),
    "sports": ("Sports", "Sporting Goods", "sports_outdoors", "Outdoor", "SPORT"),
    "grocery": ("Grocery", "Food & Drink", "groceries", "FOOD", "Gourmet"),
    "toys": ("Toys", "Toys & Games", "toys_games", "Kids", "GAMES"),
    "books": ("Books", "Books & Media", "books_media", "Media", "BOOK"),
}

UNKNOWN_CATEGORY = "unknown"


def category_key(raw: str) -> str:
    """Lower-case a raw spelling and drop everything but letters, so spellings compare loosely."""
    return re.sub(r"[^a-z]", "", raw.lower())


CATEGORY_MAP: dict[str, str] = {
    category_key(spelling): canonical
    for canonical, spellings in RAW_SPELLINGS.items()
    for spelling in (canonical, *spellings)
}


def canonical_category(raw: str | None) -> str:
    """Map one raw category spelling to its canonical category, or ``"unknown"``."""
    if raw is None:
        return UNKNOWN_CATEGORY
    return CATEGORY_MAP.get(category_key(str(raw)), UNKNOWN_CATEGORY)
