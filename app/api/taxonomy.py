"""/taxonomy: the deployment's incident categories (the version in use, or an older one)."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from app.api.deps import ConnDep
from app.services.taxonomy import taxonomy_version

router = APIRouter(tags=["incidents"])


class TaxonomyItemOut(BaseModel):
    major_code: str
    major_name_zh: str
    major_name_en: str
    code: str = Field(description="Item code; incidents store it as `category`.")
    name_zh: str
    name_en: str
    deadline_hours: int = Field(description="Hours allowed from report to closing.")


class TaxonomyOut(BaseModel):
    version: int = Field(description="Stored version; incidents keep the one they were filed in.")
    source: str = Field(description="File the version was imported from.")
    created_at: datetime
    items: list[TaxonomyItemOut]


@router.get("/taxonomy", response_model=TaxonomyOut, summary="Incident categories")
def get_taxonomy(
    conn: ConnDep,
    version: int | None = Query(
        None, ge=1, description="A stored version; default the one in use (the newest)."
    ),
) -> dict:
    """The category taxonomy 事件分类 the deployment uses (``gridmap taxonomy import``)."""
    return taxonomy_version(conn, version)
