"""The category taxonomy as the API uses it: names, major classes and deadlines by code."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from gis.taxonomy import load_taxonomy


@dataclass(frozen=True)
class Category:
    code: str
    name_zh: str
    name_en: str
    major_code: str
    major_name_zh: str
    major_name_en: str
    deadline_hours: int


class Taxonomy:
    """Categories by code, loaded once (``data/taxonomy.csv`` by default)."""

    def __init__(self, frame: pd.DataFrame | None = None):
        self.frame = load_taxonomy() if frame is None else frame
        self.by_code = {
            row["code"]: Category(**{k: row[k] for k in Category.__dataclass_fields__})
            for row in self.frame.to_dict("records")
        }

    def name(self, code: str | None, lang: str = "zh") -> str | None:
        category = self.by_code.get(code or "")
        if category is None:
            return None
        return category.name_en if lang == "en" else category.name_zh

    def deadlines(self) -> tuple[list[str], list[int]]:
        """(codes, hours): bound as two arrays and unnested in SQL."""
        return list(self.by_code), [c.deadline_hours for c in self.by_code.values()]
