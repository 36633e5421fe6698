"""A deployment: one folder that holds everything a user decides, named by one setting.

```
<deployment>/
  config/factory.yaml        settings (this module): data location, sources, checker thresholds
                             (defaults, overridable per market), schedules. Optional.
  config/car_contract.yaml   the CAR column contract
  model_specs/*.yaml         one spec per model
```

The repository root is the default deployment (the media demo). `FACTORY_PROJECT_DIR` (or the
CLI's `--project`) names another folder with the same layout, e.g. `examples/insurer/`;
`FACTORY_DATA_DIR` overrides where its data is kept and `FACTORY_PROFILE` the profile (`embedded`
or `distributed`, see `factory_assets.profiles`). `current()` is the one place the factory reads
these settings from the environment. A bad folder fails with the file, the field and the reason.
No Dagster import: the CLI, the API and the code location share it.
"""

from __future__ import annotations

import os
from functools import cached_property
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from factory_assets.core.car.check_types import CHECKS, CarCheckThresholds
from factory_assets.core.contract import CarContract, load_contract
from factory_assets.core.paths import REPO_ROOT, FactoryPaths
from factory_assets.core.specs import KEY_PATTERN, ModelSpec, ScoreChecks, load_specs

PROJECT_ENV = "FACTORY_PROJECT_DIR"
DATA_ENV = "FACTORY_DATA_DIR"
PROFILE_ENV = "FACTORY_PROFILE"
SETTINGS_FILE = Path("config") / "factory.yaml"
Severity = Literal["blocking", "warning", "off"]
Profile = Literal["embedded", "distributed"]
PROFILES: tuple[Profile, ...] = ("embedded", "distributed")


class DeploymentError(ValueError):
    """A deployment folder that cannot be used; the message names the file, the field and the reason."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SourceSettings(_Strict):
    """Where CAR snapshots come from."""

    landing_dir: str | None = Field(
        None,
        description="Folder of landed CAR files `<market>/car_<YYYY-MM-DD>.parquet|csv`, relative to the "
        "deployment folder; default `<data_dir>/landing`.",
    )
    settle_seconds: float = Field(2.0, ge=0, description="Files younger than this are still being copied.")
    external: list[str] = Field(
        default_factory=list,
        description="External CAR mappings (YAML, see config/external_car_example.yaml), relative to the "
        "deployment folder; every (market, snapshot) they hold is ingested like a landed file.",
    )


class CheckerOneMarket(_Strict):
    """Data Checker 1 overrides for one market (on top of the deployment's defaults)."""

    thresholds: dict[str, float] = Field(default_factory=dict, description="CarCheckThresholds fields.")
    severities: dict[str, Severity] = Field(
        default_factory=dict, description="check name: blocking, warning or off (not run)."
    )
    accept_restatements: bool | None = Field(
        None,
        description="Accept a re-delivered month that differs much from the version it replaces (the "
        "`restatement` check passes and the verdict records it); unset: the default's, which is to block.",
    )


class CheckerOneSettings(CheckerOneMarket):
    """Data Checker 1: default thresholds and severities, and per-market overrides."""

    markets: dict[str, CheckerOneMarket] = Field(default_factory=dict)


class CheckerTwoSettings(_Strict):
    """Data Checker 2: per-market overrides of the specs' `score_checks`."""

    markets: dict[str, dict[str, float | bool | int]] = Field(
        default_factory=dict, description="market: {ScoreChecks field: value}, for every model of the market."
    )


class ScheduleSettings(_Strict):
    """Cron expressions of the factory's schedules (UTC)."""

    daily_scoring: str = Field("0 6 * * *", description="Score every market with its champions and release.")
    weekly_retrain: str = Field("0 3 * * 1", description="Re-evaluate retrain triggers for every cell.")


class ApiSettings(_Strict):
    """The scoring service: where its keys are kept, whether reports need a key, its public address."""

    keys_file: str = Field(
        "config/api_keys.yaml",
        description="API keys (salted hashes only), relative to the deployment folder; written by "
        "`python -m factory_assets.cli api-key create`.",
    )
    reports_public: bool = Field(
        False, description="True: the report pages under /reports/ open without a key (scores never do)."
    )
    base_url: str = Field(
        "http://127.0.0.1:8000",
        description="Where users reach the scoring service; Dagster metadata links reports under it.",
    )


class PostgresSettings(_Strict):
    """The PostgreSQL server of the distributed profile's Dagster instance storage."""

    host: str = Field("127.0.0.1", description="Where it listens (the loopback cluster: 127.0.0.1 only).")
    port: int = Field(15432, ge=1, le=65535, description="Not 5432: a system cluster may hold that one.")
    user: str = Field("factory", description="The role Dagster connects as.")
    database: str = Field("dagster", description="The database of Dagster's runs, events and schedules.")
    password_env: str | None = Field(
        None,
        description="Environment variable holding the password on every machine (a server managed "
        "elsewhere); the loopback cluster generates its own and keeps it in its folder.",
    )
    local: bool = Field(
        True,
        description="`factory distributed up` initialises and starts a cluster on this machine under "
        "`services_dir`; false: the server is managed elsewhere and only checked.",
    )


class RedisSettings(_Strict):
    """The Redis server that carries runs to the Celery workers (the broker and result backend)."""

    host: str = Field("127.0.0.1", description="Where it listens.")
    port: int = Field(16379, ge=1, le=65535, description="Not 6379: a system Redis may hold that one.")
    db: int = Field(0, ge=0, le=15, description="The Redis database number.")
    local: bool = Field(
        True, description="`factory distributed up` starts it on this machine; false: it is only checked."
    )


class DistributedSettings(_Strict):
    """The distributed profile: PostgreSQL instance storage, runs on Celery workers, limits and retries."""

    postgres: PostgresSettings = Field(default_factory=PostgresSettings)
    redis: RedisSettings = Field(default_factory=RedisSettings)
    services_dir: str | None = Field(
        None,
        description="Folder of the loopback PostgreSQL cluster and Redis files, relative to the deployment "
        "folder; default `<data_dir>/distributed/services`. The `postgres` user must reach it.",
    )
    workers: int = Field(
        2, ge=0, le=64, description="Celery worker processes `factory distributed up` starts on this machine."
    )
    max_concurrent_runs: int = Field(
        2, ge=1, description="Runs in flight at once; match the workers' total slots so none waits in Redis."
    )
    run_retries: int = Field(
        2, ge=0, description="Retries of a run whose worker died (never of a run whose asset failed)."
    )
    monitor_interval_seconds: int = Field(
        15, ge=1, description="How often the daemon checks that the worker of each started run still answers."
    )
    start_timeout_seconds: int = Field(
        300, ge=10, description="A run no worker started within this time is failed (and retried)."
    )
    webserver_port: int = Field(3000, ge=1, le=65535, description="The Dagster UI, on 127.0.0.1.")


class DeploymentSettings(_Strict):
    """`config/factory.yaml`: every field optional, the defaults are the media demo's."""

    name: str = Field("default", description="Shown in logs and the status page.")
    data_dir: str = Field("data", description="Where data is kept, relative to the deployment folder.")
    sources: SourceSettings = Field(default_factory=SourceSettings)
    data_checker_1: CheckerOneSettings = Field(default_factory=CheckerOneSettings)
    data_checker_2: CheckerTwoSettings = Field(default_factory=CheckerTwoSettings)
    schedules: ScheduleSettings = Field(default_factory=ScheduleSettings)
    api: ApiSettings = Field(default_factory=ApiSettings)
    profile: Profile = Field(
        "embedded",
        description="embedded: one machine, SQLite instance, runs as local processes; distributed: "
        "PostgreSQL instance, runs on Celery workers (the `distributed` settings).",
    )
    distributed: DistributedSettings = Field(default_factory=DistributedSettings)

    @field_validator("data_checker_1")
    @classmethod
    def _known_checks(cls, value: CheckerOneSettings) -> CheckerOneSettings:
        for scope in [value, *value.markets.values()]:
            CarCheckThresholds.model_validate(scope.thresholds)
            unknown = sorted(set(scope.severities) - set(CHECKS))
            if unknown:
                raise ValueError(f"unknown Data Checker 1 check(s) {unknown}; known: {sorted(CHECKS)}")
        _check_market_names(value.markets)
        return value

    @field_validator("data_checker_2")
    @classmethod
    def _known_rules(cls, value: CheckerTwoSettings) -> CheckerTwoSettings:
        for overrides in value.markets.values():
            ScoreChecks.model_validate(overrides)
        _check_market_names(value.markets)
        return value


def _check_market_names(markets: dict[str, object]) -> None:
    bad = sorted(m for m in markets if not KEY_PATTERN.match(m))
    if bad:
        raise ValueError(f"market name(s) {bad} do not match {KEY_PATTERN.pattern}")


class Deployment:
    """A deployment folder, its settings validated; paths resolved against the folder."""

    def __init__(self, root: Path, data_dir: Path | None = None, profile: str | None = None) -> None:
        self.root = Path(root).resolve()
        if not self.root.is_dir():
            raise DeploymentError(f"deployment folder {self.root} does not exist")
        self.settings = load_settings(self.root / SETTINGS_FILE)
        self.paths = FactoryPaths((data_dir or self.root / self.settings.data_dir).resolve())
        if profile is not None and profile not in PROFILES:
            raise DeploymentError(f"{PROFILE_ENV}={profile!r}: the profile must be one of {list(PROFILES)}")
        self.profile: Profile = profile or self.settings.profile  # type: ignore[assignment]

    @property
    def contract_path(self) -> Path:
        """The CAR contract file."""
        return self.root / "config" / "car_contract.yaml"

    @property
    def specs_dir(self) -> Path:
        """The folder of model specs."""
        return self.root / "model_specs"

    @property
    def landing_dir(self) -> Path:
        """Where landed CAR files are picked up."""
        configured = self.settings.sources.landing_dir
        return (self.root / configured).resolve() if configured else self.paths.landing

    @property
    def external_mappings(self) -> list[Path]:
        """The external CAR mapping files, resolved; a missing one raises naming it."""
        paths = [(self.root / name).resolve() for name in self.settings.sources.external]
        missing = [str(p) for p in paths if not p.is_file()]
        if missing:
            raise DeploymentError(f"{self.root / SETTINGS_FILE}: sources.external: no such file {missing}")
        return paths

    @property
    def api_keys_file(self) -> Path:
        """The scoring service's keys file (it may not exist yet: then no key is valid)."""
        return (self.root / self.settings.api.keys_file).resolve()

    def report_url(self, path: Path, reports_dir: Path | None = None) -> str | None:
        """The URL under which the scoring service serves `path` (None if not in the reports folder)."""
        return report_url(self.settings.api.base_url, reports_dir or self.paths.reports, path)

    @cached_property
    def contract(self) -> CarContract:
        """The CAR contract, validated."""
        if not self.contract_path.is_file():
            raise DeploymentError(f"deployment {self.root} has no CAR contract at {self.contract_path}")
        return load_contract(self.contract_path)

    @cached_property
    def specs(self) -> dict[str, ModelSpec]:
        """The model specs by name, validated (a bad one raises naming the file and field)."""
        if not self.specs_dir.is_dir():
            raise DeploymentError(f"deployment {self.root} has no model_specs/ folder")
        return load_specs(self.specs_dir)

    @property
    def label_columns(self) -> frozenset[str]:
        """CAR columns that are labels, never features (role 'label' in the contract)."""
        return frozenset(self.contract.label_columns)

    def checker_one(self, market: str) -> tuple[CarCheckThresholds, dict[str, Severity]]:
        """Data Checker 1's thresholds and severity overrides for `market` (defaults, then the market's)."""
        settings = self.settings.data_checker_1
        scoped = settings.markets.get(market, CheckerOneMarket())
        thresholds = CarCheckThresholds.model_validate({**settings.thresholds, **scoped.thresholds})
        return thresholds, {**settings.severities, **scoped.severities}

    def accepts_restatements(self, market: str) -> bool:
        """Whether a large restatement of `market`'s CAR is accepted (the market's setting, else default)."""
        settings = self.settings.data_checker_1
        scoped = settings.markets.get(market, CheckerOneMarket()).accept_restatements
        return bool(settings.accept_restatements if scoped is None else scoped)

    def spec_for(self, spec: ModelSpec, market: str) -> ModelSpec:
        """`spec` with the market's Data Checker 2 overrides applied to its `score_checks`."""
        overrides = self.settings.data_checker_2.markets.get(market)
        if not overrides:
            return spec
        checks = ScoreChecks.model_validate({**spec.score_checks.model_dump(), **overrides})
        return spec.model_copy(update={"score_checks": checks})


def report_url(base_url: str, reports_dir: Path, path: Path) -> str | None:
    """`<base_url>/reports/<path relative to reports_dir>`, or None when `path` is not under it."""
    resolved, root = Path(path).resolve(), Path(reports_dir).resolve()
    if not resolved.is_relative_to(root):
        return None
    return f"{base_url.rstrip('/')}/reports/{resolved.relative_to(root).as_posix()}"


def load_settings(path: Path) -> DeploymentSettings:
    """The settings file, validated; absent means every default."""
    if not path.is_file():
        return DeploymentSettings()
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise DeploymentError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise DeploymentError(f"{path}: expected a mapping of settings, got {type(raw).__name__}")
    try:
        return DeploymentSettings.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in error['loc']) or '(top)'}: {error['msg']}" for error in exc.errors()
        )
        raise DeploymentError(f"{path}: {problems}") from exc


def current() -> Deployment:
    """The deployment the environment names: `FACTORY_PROJECT_DIR`, else the repository root.

    Its data is kept in `FACTORY_DATA_DIR` when that is set; `FACTORY_PROFILE` overrides its profile.
    """
    root = Path(os.environ.get(PROJECT_ENV) or REPO_ROOT)
    data = os.environ.get(DATA_ENV)
    return Deployment(root, Path(data) if data else None, os.environ.get(PROFILE_ENV) or None)
