"""Model specs: one YAML file per model, validated data with documented defaults.

A spec says what the model predicts (the target), for whom (the population), from what (features),
how its data is sampled, how it is trained, when it is retrained, when a challenger replaces the
champion, how its scores are checked and in what form they are released.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

KEY_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
CHURNED = "churned"
"""Reserved `to` value of a movement target: the customer is absent from the later snapshot."""


class SpecError(ValueError):
    """A model spec that cannot be used; the message names the file, the field and the reason."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class MovementTarget(_Strict):
    """A product movement: holdings of `product` in `from_` at t and in `to` at t + horizon."""

    kind: Literal["movement"]
    product: str = Field(description="CAR column holding the product (a holdings column).")
    from_: list[str] = Field(
        alias="from", min_length=1, description="Values at t that make a customer eligible."
    )
    to: list[str] = Field(
        min_length=1,
        description=f"Values at t + horizon that count as the movement; '{CHURNED}' = absent.",
    )
    horizon: int = Field(1, ge=1, le=24, description="Months between t and the outcome.")

    @field_validator("from_", "to", mode="before")
    @classmethod
    def _as_strings(cls, value: object) -> object:
        if isinstance(value, list):
            return [str(v).lower() if isinstance(v, bool) else str(v) for v in value]
        return value

    @model_validator(mode="after")
    def _disjoint(self) -> MovementTarget:
        overlap = set(self.from_) & set(self.to)
        if overlap:
            raise ValueError(f"'from' and 'to' share {sorted(overlap)}: that is no movement")
        return self


class LabelTarget(_Strict):
    """An existing 0/1 label column, read `horizon` snapshots later (0 = the same snapshot)."""

    kind: Literal["label"]
    column: str
    horizon: int = Field(0, ge=0, le=24)


Target = Annotated[MovementTarget | LabelTarget, Field(discriminator="kind")]


class PopulationFilter(_Strict):
    """One condition on a CAR column at the snapshot t (for example tenure_months >= 3)."""

    column: str
    op: Literal["==", "!=", ">", ">=", "<", "<=", "in", "not in"]
    value: float | int | str | list[float | int | str]


class HistorySpec(_Strict):
    """Per-customer history aggregated over earlier snapshots (computed in DuckDB SQL)."""

    columns: list[str] = Field(default_factory=list, description="Numeric CAR columns to aggregate.")
    lags: list[Annotated[int, Field(ge=1, le=24)]] = Field(default_factory=lambda: [1, 3])
    windows: list[Annotated[int, Field(ge=2, le=24)]] = Field(default_factory=lambda: [3, 6, 12])
    aggregations: list[Literal["mean", "max", "min", "std"]] = Field(default_factory=lambda: ["mean", "max"])
    deltas: bool = Field(True, description="Value minus the value one lag earlier, per lag.")
    trends: bool = Field(True, description="Least-squares slope over each window.")
    recency: list[str] = Field(
        default_factory=list, description="Columns for 'months since the value was last > 0'."
    )


class FeatureSpec(_Strict):
    """Which CAR columns become features; empty include = every non-key contract column."""

    include: list[str] = Field(default_factory=list)
    exclude: list[str] = Field(default_factory=list)
    history: HistorySpec = Field(default_factory=HistorySpec)


class CleaningSpec(_Strict):
    """Thresholds for dropping variables unsuitable for modelling; each drop is recorded."""

    max_missing_share: float = Field(0.6, gt=0, le=1)
    max_dominant_share: float = Field(0.995, gt=0, le=1, description="Near-constant above this.")
    id_like_ratio: float = Field(0.9, gt=0, le=1, description="Distinct / rows above this = ID.")
    leakage_auc: float = Field(0.9, gt=0.5, le=1, description="Single-variable AUC above this.")
    max_categories: int = Field(30, ge=2, description="More levels are grouped into 'other'.")
    min_category_share: float = Field(0.005, ge=0, lt=1, description="Rarer levels become 'other'.")


class SamplingSpec(_Strict):
    """Training window, de-trending, balancing and the train / validation / test marks."""

    training_window_months: int = Field(12, ge=1, le=60)
    detrend: Literal["stratify", "weight", "none"] = "stratify"
    negatives_per_positive: float | None = Field(
        4.0,
        gt=0,
        description="Above the row budget, keep at least this many negatives per positive (null: no "
        "floor); with a null budget, down-sample negatives to this ratio (null: keep them all).",
    )
    balance_above_rows: int | None = Field(
        50_000,
        ge=1,
        description="Row budget of the training pool (train + validation). Within it every row is kept "
        "(beta = 1; de-trended by weights); above it negatives are down-sampled to fit it, never below "
        "negatives_per_positive. Null: always down-sample to negatives_per_positive.",
    )
    test_snapshots: int = Field(1, ge=1, le=6, description="Latest labelled snapshots kept as test.")
    validation_share: float = Field(0.2, gt=0, lt=0.5)
    min_positives_per_split: int = Field(20, ge=1)
    max_rows: int | None = Field(400_000, ge=1000, description="Cap on sampled rows (seeded).")
    seed: int = 42


Family = Literal["catboost", "logistic"]
"""A model family a challenger can be fitted from."""


class LogisticParams(_Strict):
    """The regularised logistic regression family: scikit-learn pipeline, C chosen by seeded CV."""

    c_grid: list[Annotated[float, Field(gt=0)]] = Field(
        default_factory=lambda: [0.001, 0.01, 0.1, 1.0, 10.0, 100.0],
        min_length=1,
        description="Inverse regularisation strengths tried; the best by cross-validated log-loss wins.",
    )
    cv_folds: int = Field(5, ge=2, le=20, description="Stratified folds (shuffled, seeded) that choose C.")
    max_iter: int = Field(2000, ge=100, description="lbfgs iterations per fit.")
    min_category_share: float = Field(
        0.01,
        gt=0,
        lt=1,
        description="Levels rarer than this share of training rows are one 'infrequent' level.",
    )


class CalibrationParams(_Strict):
    """Calibration of the natural (beta-corrected) probability on held-out validation rows."""

    method: Literal["auto", "platt", "isotonic", "none"] = Field(
        "auto", description="'auto': isotonic with enough held-out positives, else Platt."
    )
    isotonic_min_positives: int = Field(
        1000, ge=10, description="Held-out positives from which 'auto' picks isotonic over Platt."
    )
    bins: int = Field(10, ge=2, le=100, description="Equal-count bins of the ECE and the calibration table.")


class ModelParams(_Strict):
    """The model families tried per retrain and their parameters (CatBoost's at the top level).

    CatBoost defaults trade little AUC for several-fold faster fits.
    """

    families: list[Family] = Field(
        default_factory=lambda: ["catboost", "logistic"],
        min_length=1,
        description="Families fitted per retrain; the best on the validation split becomes the challenger.",
    )
    logistic: LogisticParams = Field(default_factory=LogisticParams)
    calibration: CalibrationParams = Field(default_factory=CalibrationParams)
    refit: bool = Field(
        True,
        description="Refit the winning family on train + validation with what its first fit found "
        "(CatBoost's tree count, the logistic C); its calibrator stays the one fitted on validation.",
    )

    iterations: int = Field(400, ge=10, le=5000)
    learning_rate: float = Field(0.08, gt=0, le=1)
    depth: int = Field(6, ge=2, le=10)
    early_stopping_rounds: int = Field(40, ge=5)
    l2_leaf_reg: float = Field(3.0, ge=0)
    one_hot_max_size: int = Field(8, ge=1)
    max_ctr_complexity: int = Field(1, ge=1, le=4)
    thread_count: int = Field(2, ge=1)
    seed: int = 42

    @field_validator("families")
    @classmethod
    def _distinct_families(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError(f"families {value} name a family twice")
        return value


class RetrainRules(_Strict):
    """When a challenger is trained; any trigger that fires is enough."""

    drift_share: float = Field(0.3, gt=0, le=1, description="Share of drifted features.")
    feature_psi: float = Field(0.2, gt=0, description="A feature drifts at or above this PSI.")
    max_champion_age_days: int = Field(90, ge=1)
    performance_decay: float = Field(0.05, ge=0, lt=1, description="Realised AUC drop vs test AUC.")
    min_new_label_snapshots: int = Field(3, ge=1, description="New labelled months since training.")


class ReplacementRules(_Strict):
    """When a challenger replaces the champion (both scored on the same out-of-time test)."""

    min_auc_uplift: float = Field(0.005, ge=0)
    delong_alpha: float = Field(0.05, gt=0, lt=1)
    min_auc: float = Field(0.6, ge=0.5, le=1)
    min_test_positives: int = Field(20, ge=1)
    max_lift_drop: float = Field(
        0.1, ge=0, description="Veto if the challenger's top-decile lift is lower by more than this."
    )
    rule_version: str = "2026.11-1"


class ScoreChecks(_Strict):
    """Data Checker 2 thresholds on a cell's scores."""

    max_psi: float = Field(
        0.25,
        gt=0,
        description="PSI of the probabilities vs the reference: the same model's last release, or a new "
        "champion's own scores on the snapshot before its decision.",
    )
    max_mean_ratio: float = Field(
        2.0, gt=1, description="Mean prob vs expected rate (recent realised, else test), either way."
    )
    min_rank_spearman: float = Field(
        0.5, ge=-1, le=1, description="Rank correlation with the last release (unchanged champion only)."
    )
    max_snapshots_behind: int = Field(
        0,
        ge=0,
        description="Ingested snapshots of the market newer than the scored one that a release may trail "
        "(0: only the latest snapshot may be released).",
    )
    max_release_age_days: int = Field(
        62,
        ge=1,
        description="The status grid calls a cell 'stale' when its live release is older than this "
        "(two monthly scoring cycles).",
    )


class ReasonCodesSpec(_Strict):
    """Per-customer reason codes: the features that moved this customer's score most, either way.

    A contribution is on the raw model's log-odds scale (before the beta correction and calibration):
    CatBoost's SHAP value, or a linear model's coefficient x standardised value summed back to the
    source feature (`core.model.reasons`).
    """

    enabled: bool = Field(
        False,
        description="Compute reason codes when scoring and release them (batch file and API). Off by "
        "default: CatBoost's SHAP values cost time on every scored customer.",
    )
    top_n: int = Field(
        3, ge=1, le=10, description="Features per customer, largest absolute contribution first."
    )


class OutputSpec(_Strict):
    """How released scores are presented."""

    format: Literal["probability", "percentile", "both"] = "both"
    csv: bool = False
    reason_codes: ReasonCodesSpec = Field(
        default_factory=ReasonCodesSpec,
        description="Opt-in top contributing features per customer (reason_<k>_feature, _value, "
        "_contribution columns of the release).",
    )


class ModelSpec(_Strict):
    """One propensity model, run in every market."""

    name: str
    description: str = ""
    target: Target
    population: list[PopulationFilter] = Field(default_factory=list)
    features: FeatureSpec = Field(default_factory=FeatureSpec)
    cleaning: CleaningSpec = Field(default_factory=CleaningSpec)
    sampling: SamplingSpec = Field(default_factory=SamplingSpec)
    model: ModelParams = Field(default_factory=ModelParams)
    retrain: RetrainRules = Field(default_factory=RetrainRules)
    replacement: ReplacementRules = Field(default_factory=ReplacementRules)
    score_checks: ScoreChecks = Field(default_factory=ScoreChecks)
    output: OutputSpec = Field(default_factory=OutputSpec)

    @field_validator("name")
    @classmethod
    def _valid_key(cls, value: str) -> str:
        if not KEY_PATTERN.match(value):
            raise ValueError(f"'{value}' must match {KEY_PATTERN.pattern} (it is a partition key)")
        return value

    @property
    def spec_hash(self) -> str:
        """Content hash of the validated spec: a changed spec is a different model definition."""
        payload = json.dumps(self.model_dump(mode="json", by_alias=True), sort_keys=True)
        return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:16]


def _format_errors(path: Path, error: ValidationError) -> str:
    lines = [f"invalid model spec {path}:"]
    for item in error.errors():
        field = ".".join(str(p) for p in item["loc"]) or "(top level)"
        lines.append(f"  - field '{field}': {item['msg']}")
    return "\n".join(lines)


def load_spec(path: Path) -> ModelSpec:
    """Read and validate one spec; `name` defaults to the file stem and must equal it if given."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise SpecError(f"invalid model spec {path}: not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise SpecError(f"invalid model spec {path}: expected a mapping at the top level")
    raw.setdefault("name", path.stem)
    if raw["name"] != path.stem:
        raise SpecError(
            f"invalid model spec {path}: field 'name': '{raw['name']}' differs from the file "
            f"name '{path.stem}'"
        )
    try:
        return ModelSpec.model_validate(raw)
    except ValidationError as exc:
        raise SpecError(_format_errors(path, exc)) from exc


def load_specs(directory: Path) -> dict[str, ModelSpec]:
    """Every `*.yaml` spec in `directory`, by model name (sorted); errors name the file."""
    paths = sorted(directory.glob("*.yaml"))
    if not paths:
        raise SpecError(f"no model specs (*.yaml) found in {directory}")
    return {path.stem: load_spec(path) for path in paths}
