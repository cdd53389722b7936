"""Great Expectations suites as a validator, run through an ephemeral GX context.

``[validators.expectations] suite = "suite.json"`` names an expectation suite in GX's own
JSON format (``{"name": ..., "expectations": [{"type": ..., "kwargs": {...}}]}``; a relative
path is resolved against the spec file's folder). Every batch is validated as a pandas
DataFrame of the record columns (``text``, ``text_norm``, ``contributor``, the spec's extra
fields …) with ``result_format=COMPLETE``: rows failing a row-level expectation get a reject
vote ``expectation:<type>:<column>`` (the first failing one in suite order; all of them in
the details); batch-level results (row counts, means …) go to :meth:`report`, for the batch
manifest. No suite configured: ``abstain`` votes, and GX (a ~5-10 s import) is never
imported.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import pyarrow as pa

from datanet.errors import ValidatorError
from datanet.validators.base import ValidationResult, Validator, make_votes

__all__ = ["ExpectationsConfig", "ExpectationsValidator", "load_suite"]


@dataclass(frozen=True)
class ExpectationsConfig:
    """``[validators.expectations]``: ``suite`` is a GX suite JSON file; empty = none."""

    suite: str = ""


def load_suite(path: str | Path) -> dict[str, Any]:
    """Read a GX suite JSON file, checking the shape GX 1.x expects."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ValidatorError(f"validators.expectations.suite={str(path)!r} does not exist; "
                             "give a GX suite JSON file (relative to the spec)") from None
    except json.JSONDecodeError as exc:
        raise ValidatorError(f"validators.expectations.suite={str(path)!r} is not valid "
                             f"JSON: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("expectations"), list):
        raise ValidatorError(f"validators.expectations.suite={str(path)!r} must be a GX suite: "
                             '{"name": ..., "expectations": [{"type": ..., "kwargs": {...}}]}')
    data.setdefault("name", path.stem)
    return data


class ExpectationsValidator(Validator):
    """Runs the datanet's GX expectation suite on every batch."""

    name: ClassVar[str] = "expectations"
    config_cls = ExpectationsConfig
    summary = "A Great Expectations suite over each batch (abstains without a suite)."
    reason_codes = ("expectation:<type>:<column>",)

    def __init__(self, config: ExpectationsConfig, spec: Any = None):
        self.config = config
        self.suite_json: dict[str, Any] | None = None
        if config.suite:
            path = Path(config.suite)
            if not path.is_absolute() and spec is not None and getattr(spec, "source", None):
                path = Path(spec.source).parent / path
            self.suite_json = load_suite(path)
        self._batch_results: list[dict[str, Any]] = []
        self._gx: Any = None

    def setup(self) -> None:
        if self.suite_json is None or self._gx is not None:
            return
        os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
        import great_expectations as gx

        context = gx.get_context(mode="ephemeral")
        try:
            from great_expectations.data_context.types.base import ProgressBarsConfig

            context.variables.progress_bars = ProgressBarsConfig(globally=False)
        except (ImportError, AttributeError):  # pragma: no cover - GX internals moved
            pass
        source = context.data_sources.add_pandas("datanet")
        definition = source.add_dataframe_asset("records").add_batch_definition_whole_dataframe(
            "batch")
        try:
            suite = gx.ExpectationSuite(**self.suite_json)
        except Exception as exc:
            raise ValidatorError(f"validators.expectations.suite is not a valid GX suite: "
                                 f"{exc}") from None
        self._gx = (definition, suite)

    def validate(self, batch: pa.RecordBatch) -> ValidationResult:
        ids = batch.column("contribution_id")
        if self.suite_json is None:
            return ValidationResult(make_votes(ids, self.name, "abstain"))
        if self._gx is None:
            raise self._not_set_up()
        definition, suite = self._gx
        self._batch_results = []  # this batch's only: the driver merges the chunks' reports
        frame = batch.to_pandas()
        result = definition.get_batch(batch_parameters={"dataframe": frame}).validate(
            suite, result_format={"result_format": "COMPLETE"})
        failures: list[list[str]] = [[] for _ in range(batch.num_rows)]
        for r in result.results:
            kind = r.expectation_config.type
            column = r.expectation_config.kwargs.get("column", "")
            rows = r.result.get("unexpected_index_list")
            if rows is None:
                self._batch_results.append({
                    "type": kind, "column": column or None, "success": bool(r.success),
                    "observed_value": _plain(r.result.get("observed_value")),
                })
                continue
            for row in rows:
                failures[int(row)].append(f"expectation:{kind}:{column}")
        return ValidationResult(make_votes(
            ids, self.name, ["reject" if f else "accept" for f in failures],
            reasons=[f[0] if f else None for f in failures],
            details=[{"failed": f} if f else None for f in failures],
        ))

    def report(self) -> dict[str, Any]:
        """Batch-level expectation results of the last batch validated (the run's driver
        lists every chunk's, in chunk order: :func:`datanet.pipelines.run.merge_reports`)."""
        if self.suite_json is None:
            return {}
        return {"suite": self.suite_json["name"], "batch_expectations": list(self._batch_results)}


def _plain(value: Any) -> Any:
    """JSON-safe observed value."""
    try:
        json.dumps(value)
        return value
    except TypeError:
        return str(value)
