"""Tables of an evaluation run: rich (screen), CSV, JSON and Markdown in the papers' column order.

The Markdown table follows the seeds' columns ``CD-S | F-Score-S | CD-O | F-Score-O | IoU-B``;
its header names the Chamfer convention used (``l2_sum``: MIDI-3D / SceneGen / I-Scene, or
``l1_mean``: Gen3DSR) and the F-score threshold. F-scores are printed in percent as in the papers;
CSV and JSON keep fractions in [0, 1].
"""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path
from typing import Literal

from sceneforge.eval.runner import EvaluationRun
from sceneforge.io.atomic import write_text_atomic

ChamferConvention = Literal["l2_sum", "l1_mean"]
CHAMFER_CONVENTIONS = ("l2_sum", "l1_mean")


def paper_columns(chamfer: ChamferConvention, tau: float) -> list[tuple[str, str, bool]]:
    """(header, summary key, is_percent) of the five paper columns, in the seeds' order."""
    if chamfer not in CHAMFER_CONVENTIONS:
        raise ValueError(f"chamfer convention must be one of {', '.join(CHAMFER_CONVENTIONS)}, got {chamfer!r}")
    return [
        (f"CD-S ({chamfer})", f"cd_s_{chamfer}", False),
        (f"F-Score-S (τ={tau:g})", f"fscore_s@{tau:g}", True),
        (f"CD-O ({chamfer})", f"cd_o_{chamfer}", False),
        (f"F-Score-O (τ={tau:g})", f"fscore_o@{tau:g}", True),
        ("IoU-B", "iou_b", False),
    ]


def format_value(value: object, percent: bool = False) -> str:
    """Numbers as in the papers: 4 decimals, F-scores in percent with 2; inf and NaN spelled out."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, int):
        return str(value)
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    if math.isnan(value):
        return "nan"
    return f"{100.0 * value:.2f}" if percent else f"{value:.4f}"


def markdown_table(run: EvaluationRun, chamfer: ChamferConvention = "l2_sum") -> str:
    """One row per scene and a mean row, paper columns plus matched/missed/extra counts."""
    tau = run.config.taus[0]
    cols = paper_columns(chamfer, tau)
    header = ["scene"] + [c[0] for c in cols] + ["missed", "extra"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for result in run.results:
        row = result.summary()
        cells = [str(row["scene"])] + [format_value(row[k], p) for _, k, p in cols]
        lines.append("| " + " | ".join(cells + [str(row["n_missed"]), str(row["n_extra"])]) + " |")
    if len(run.results) > 1:
        cells = ["**mean**"] + [format_value(run.mean.get(k, float("nan")), p) for _, k, p in cols]
        counts = [format_value(run.mean["n_missed"]), format_value(run.mean["n_extra"])]
        lines.append("| " + " | ".join(cells + counts) + " |")
    return "\n".join(lines) + "\n"


def csv_text(run: EvaluationRun) -> str:
    """Every summary column, one row per scene, then the mean row (scene = "mean")."""
    rows = [r.summary() for r in run.results]
    if not rows:
        return ""
    fields = list(rows[0].keys())
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=fields, extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow(row)
    writer.writerow({"scene": "mean", **{k: v for k, v in run.mean.items() if k in fields}})
    return buffer.getvalue()


def json_text(run: EvaluationRun) -> str:
    """Full details (per object, alignment, warnings); infinities written as the strings "inf"."""
    return json.dumps(_json_safe(run.to_dict()), indent=2) + "\n"


def _json_safe(value: object) -> object:
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value


def write_reports(run: EvaluationRun, out_dir: str | Path, chamfer: ChamferConvention = "l2_sum") -> dict[str, Path]:
    """Write evaluation.csv, evaluation.json and evaluation.md into ``out_dir`` (atomically)."""
    out_dir = Path(out_dir)
    paths = {"csv": out_dir / "evaluation.csv", "json": out_dir / "evaluation.json", "md": out_dir / "evaluation.md"}
    write_text_atomic(paths["csv"], csv_text(run))
    write_text_atomic(paths["json"], json_text(run))
    write_text_atomic(paths["md"], markdown_table(run, chamfer))
    return paths


def _table(run: EvaluationRun, title: str, cols: list[tuple[str, str, bool]], counts: bool):
    from rich.table import Table

    table = Table(title=title)
    table.add_column("scene", style="bold")
    for header, _, _ in cols:
        table.add_column(header, justify="right")
    if counts:
        table.add_column("gt/pred/miss/extra", justify="right")
    for result in run.results:
        row = result.summary()
        cells = [format_value(row.get(k, float("nan")), p) for _, k, p in cols]
        if counts:
            cells.append(f"{row['n_gt']}/{row['n_pred']}/{row['n_missed']}/{row['n_extra']}")
        table.add_row(str(row["scene"]), *cells)
    if len(run.results) > 1:
        cells = [format_value(run.mean.get(k, float("nan")), p) for _, k, p in cols]
        table.add_row("mean", *cells, *([""] if counts else []), style="bold")
    return table


def rich_table(run: EvaluationRun, chamfer: ChamferConvention = "l2_sum"):
    """A rich Table of the paper columns with object counts, one row per scene and the mean."""
    cols = paper_columns(chamfer, run.config.taus[0])
    return _table(run, f"sceneforge evaluation (Chamfer {chamfer}, F-score in %)", cols, counts=True)


def rich_details_table(run: EvaluationRun):
    """A rich Table of the other numbers: stricter F-scores, Hausdorff, oriented IoU, pose errors,
    interpenetration and floating objects of the prediction."""
    cols = [(f"F-S@{t:g}", f"fscore_s@{t:g}", True) for t in run.config.taus[1:]]
    cols += [("Haus-S", "hausdorff_s", False), ("IoU-3D", "iou_oriented", False),
             ("rot °", "rotation_error_deg", False), ("trans", "translation_error", False),
             ("scale", "scale_error", False), ("penetr.", "interpenetration_volume", False),
             ("floating", "floating_objects", False)]
    return _table(run, "details (translation in GT units, penetration in GT units³)", cols, counts=False)
