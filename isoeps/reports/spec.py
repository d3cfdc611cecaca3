"""``--spec paper.yaml``: which rows and columns a paper table shows, in what order, with what
decimals, display names and colours. Every field is optional."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError


class ReportSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    methods: list[str] | None = Field(default=None, description="method labels, in row order")
    budgets: list[str] | None = Field(default=None, description="budget labels to keep, in order")
    metrics: list[str] | None = Field(default=None, description="metric names, in column order")
    decimals: int | dict[str, int] = 3
    names: dict[str, str] = Field(default_factory=dict, description="label -> display name")
    colours: dict[str, str] = Field(default_factory=dict, description="method label -> colour")

    def decimals_for(self, metric: str) -> int:
        if isinstance(self.decimals, int):
            return self.decimals
        return self.decimals.get(metric, 3)

    def name(self, label: str) -> str:
        return self.names.get(label, label)


def load_report_spec(path: str | Path | None) -> ReportSpec:
    if path is None:
        return ReportSpec()
    import yaml

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"--spec: no such file {path}")
    data = yaml.safe_load(path.read_text()) or {}
    try:
        return ReportSpec.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise ValueError(f"{path}: {problems}") from None
