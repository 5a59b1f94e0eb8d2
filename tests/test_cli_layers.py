"""``gridmap layers`` run the way a user runs it: on a pseudo-terminal, in a subprocess.

The real case of issue 13: the Chicago police districts as a theme over the 277
beats loaded as grids (generation ``chicago``).
"""

from __future__ import annotations

import re
from pathlib import Path

import geopandas as gpd
import pytest

from gis.tables import read_table
from tests.terminal import Cli

BEATS = "chicago_police_beats_277.geojson"

pytestmark = [pytest.mark.db, pytest.mark.slow, pytest.mark.in_file_order]

DISTRICTS = "chicago_police_districts.geojson"


@pytest.fixture(scope="module")
def beats(cli: Cli, chicago_dir: Path) -> Path:
    run = cli(
        "areas", "import", chicago_dir / BEATS, "--level", "grid",
        "--generation", "chicago", "--parent-code", "999999001001",
    ).ok()  # fmt: skip
    assert "stored 277 grid areas" in run.flat
    return chicago_dir / DISTRICTS


def test_layers_help_lists_every_command(cli: Cli):
    shown = cli("layers", "--help").ok().flat
    for name in ("import", "list", "export", "delete", "align", "suggest"):
        assert re.search(rf"│ {name}\s", shown), name
        assert "Usage: gridmap layers" in cli("layers", name, "--help").ok().flat


def test_import_refuses_repeated_district_numbers_listing_each(cli: Cli, beats: Path):
    run = cli(
        "layers", "import", beats, "--theme", "police", "--generation", "chicago",
        "--code-field", "dist_num", "--name-field", "dist_label",
    )  # fmt: skip
    assert run.code == 1
    assert "refused, nothing stored" in run.flat
    assert "duplicate dist_num '16'" in run.flat and "duplicate dist_num '31'" in run.flat
    assert "duplicated codes: 16, 31" in run.flat
    assert cli.scalar("SELECT count(*) FROM thematic_unit") == 0
    assert cli.scalar("SELECT count(*) FROM import_batch WHERE kind = 'layers'") == 1


def test_import_merges_the_parts_of_a_district(cli: Cli, beats: Path):
    run = cli(
        "layers", "import", beats, "--theme", "police", "--generation", "chicago",
        "--code-field", "dist_num", "--name-field", "dist_label", "--merge-parts",
    ).ok()  # fmt: skip
    assert "stored 24 units of theme 'police'" in run.flat
    listed = cli("layers", "list", "--generation", "chicago").ok().flat
    assert re.search(r"police\s+│\s+chicago\s+│\s+24\s", listed), listed


def test_align_reports_aligned_and_split_beats_and_writes_the_table(
    cli: Cli, beats: Path, tmp_path: Path
):
    out = tmp_path / "police.xlsx"
    run = cli("layers", "align", "--theme", "police", "-g", "chicago", "-o", out).ok()
    text = run.flat
    assert re.search(r"aligned \(≥ 99% in one unit\)\s+│\s+273\b", text), text
    assert re.search(r"split\s+│\s+4\b", text), text
    assert "分割网格 split grids (4, largest first)" in text
    # The four split beats are named with their areas and the districts they fall in.
    assert len(re.findall(r"│ 999999001001\d{3} │ [\d,]+ │", text)) == 4
    assert "13: " in text and "12: " in text
    table, _ = read_table(out)
    assert "网格编码 grid_code" in table.columns
    assert set(table["网格状态 grid_status"]) == {"aligned", "split"}
    assert table["网格编码 grid_code"].nunique() == 277
    # The same table as CSV (bilingual headers), and the grids with their class as GeoJSON.
    as_csv = tmp_path / "police.csv"
    cli("layers", "align", "--theme", "police", "-g", "chicago", "-o", as_csv).ok()
    rows, _ = read_table(as_csv)
    assert len(rows) == len(table) and "网格状态 grid_status" in rows.columns
    as_geojson = tmp_path / "police.geojson"
    cli("layers", "align", "--theme", "police", "-g", "chicago", "-o", as_geojson).ok()
    classed = gpd.read_file(as_geojson)
    assert len(classed) == 277 and (classed["status"] == "split").sum() == 4
    assert classed.loc[classed["status"] == "split", "split_into"].str.contains("; ").all()


def test_suggest_writes_a_layer_for_review(cli: Cli, beats: Path, tmp_path: Path):
    out = tmp_path / "suggest.geojson"
    run = cli("layers", "suggest", "--theme", "police", "-g", "chicago", "-o", out).ok()
    assert "wrote 24 suggested units" in run.flat
    suggestion = gpd.read_file(out)
    assert len(suggestion) == 24 and suggestion["grids"].sum() == 277


def test_export_and_delete(cli: Cli, beats: Path, tmp_path: Path):
    out = tmp_path / "police.gpkg"
    assert (
        "wrote 24 units"
        in cli("layers", "export", "--theme", "police", "-g", "chicago", "-o", out).ok().flat
    )
    assert len(gpd.read_file(out)) == 24
    run = cli("layers", "delete", "--theme", "police", "-g", "chicago", "--yes").ok()
    assert "deleted theme 'police' (24 units)" in run.flat
    assert cli.scalar("SELECT count(*) FROM thematic_layer") == 0
    gone = cli("layers", "align", "--theme", "police", "-g", "chicago")
    assert gone.code == 2 and "no theme 'police'" in gone.flat
