"""The manifest: where a cube came from and what happened to every input row."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from forecast._names import SENSITIVITY_LEVELS
from forecast.errors import UnusableFileError
from forecast.io._secure import write_output


class FileRecord(BaseModel):
    """One input file: its identity, the columns kept and dropped, and the row accounting."""

    model_config = ConfigDict(extra="forbid")

    path: str
    sha256: str
    format: str
    admin_level: int
    rows_in: int
    rows_kept: int
    rows_quarantined: int
    quarantine_reasons: dict[str, int] = Field(default_factory=dict)
    values_withheld: int = Field(default=0, description="values withheld from kept rows by value rules")
    withheld_reasons: dict[str, int] = Field(default_factory=dict)
    columns_kept: dict[str, str] = Field(description="canonical field -> the file's column")
    columns_dropped: list[str] = Field(description="columns not on the format's allow-list")
    dropped_on_request: dict[str, str] = Field(default_factory=dict)
    duplicates_policy: str
    sensitivity: str
    sensitivity_reasons: list[str]
    notes: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _rows_add_up(self) -> FileRecord:
        if self.rows_in != self.rows_kept + self.rows_quarantined:
            raise ValueError(f"{self.path}: rows_in {self.rows_in} != rows_kept {self.rows_kept} "
                             f"+ rows_quarantined {self.rows_quarantined}")
        return self


class Sensitivity(BaseModel):
    model_config = ConfigDict(extra="forbid")

    level: str
    assessed: str
    reasons: list[str]
    override_reason: str | None = None
    #: A level below the assessed one: the audit-log entry (its hash) of the ethics reviewer who
    #: signed the lowering, and their name (forecast.ethics.check_lowering).
    approval: str | None = None
    approved_by: str | None = None

    @model_validator(mode="after")
    def _known(self) -> Sensitivity:
        for lvl in (self.level, self.assessed):
            if lvl not in SENSITIVITY_LEVELS:
                raise ValueError(f"sensitivity must be one of {SENSITIVITY_LEVELS}, got '{lvl}'")
        return self


class Manifest(BaseModel):
    """Lineage of a cube. ``cube_hash`` is what MLflow runs record."""

    model_config = ConfigDict(extra="forbid")

    toolkit_version: str
    created: str = Field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds"))
    cube_hash: str
    area_key: str
    gazetteer: dict[str, str | int] | None
    admin_level: int
    dims: dict[str, int]
    variables: list[str]
    time_range: tuple[str, str]
    sensitivity: Sensitivity
    files: list[FileRecord]
    limits: dict[str, str | int | float] = Field(
        default_factory=dict, description="plausibility limits changed from their defaults for this ingest "
        "(forecast.io.Limits; e.g. --limit max_count=1e9)")
    licence: str = "as stated by each source; see the inputs' own terms"
    encrypted: bool = Field(default=False, description="cube.nc, quarantine.csv and withheld.csv beside it are "
                            "encrypted at rest (severe data with FORECAST_DATA_KEY set); this file never is")

    @property
    def rows_in(self) -> int:
        return sum(f.rows_in for f in self.files)

    def write(self, path: str | Path) -> None:
        """Write the manifest as JSON, owner-only when its level is ``high`` or ``severe``; never encrypted."""
        write_output(path, json.dumps(self.model_dump(mode="json"), indent=2) + "\n", self.sensitivity.level)

    @classmethod
    def read(cls, path: str | Path) -> Manifest:
        """Read a manifest written by :meth:`write`; raise UnusableFileError if it is not one."""
        try:
            return cls.model_validate_json(Path(path).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValidationError) as err:
            first = str(err).splitlines()[0] if str(err) else type(err).__name__
            raise UnusableFileError(path, f"not a readable manifest ({first})") from None
