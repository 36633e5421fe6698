"""HTTP API over the released scores: reads only release files and manifests, never the warehouse.

`create_app(releases_root)` builds the app; `app` is the one `make serve` runs, over
the deployment's releases (`factory_assets.deployment.current()`), resolved once at import. A new
release is picked up without a restart: every request stats the cell's manifest, and a new release
id is loaded once and then served from memory. Errors: 404 for an unknown market, model or
customer, 422 for a malformed customer id or a bad parameter, 503 (for that cell only) when its
release file is corrupt, missing or no longer matches its manifest. OpenAPI docs at `/docs`.

Every data endpoint needs an API key in the `X-API-Key` header (`serving.keys`: stored hashed in the
deployment's keys file, optionally scoped to markets): 401 without a valid key, 403 for a market
outside its scope (and `/cells` lists only the key's markets). `/health` and the docs need none. The
static reports (status page, model cards, drift reports) are served under `/reports/` from the
deployment's reports folder, with a key unless the deployment sets `api.reports_public`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Literal

from fastapi import Depends, FastAPI, HTTPException, Query, Request, Response, Security
from fastapi import Path as PathParam
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse
from fastapi.security import APIKeyHeader
from pydantic import BaseModel, Field

from factory_assets.core.release.reader import (
    LoadedRelease,
    ReleaseReader,
    ReleaseUnavailableError,
    UnknownCellError,
    row_json,
)
from factory_assets.deployment import Deployment, current
from serving.keys import ApiKey, KeyFile

MAX_TOP = 10_000
KEY_HEADER = "X-API-Key"
CREATE_KEY = "python -m factory_assets.cli api-key create --name <who> [--market <market> ...]"
SCOPED_REPORT_KINDS = ("cards", "drift")
"""Report folders laid out `<kind>/<market>/...`: a market-scoped key may open its markets' pages."""
_DEPLOYMENT = current()
_CONTRACT = _DEPLOYMENT.contract
CUSTOMER_ID_PATTERN = _CONTRACT.columns[_CONTRACT.customer_key].pattern or r"^[A-Za-z0-9_-]{1,64}$"
ScoreField = Literal["probability", "percentile"]
TopN = Annotated[int, Query(ge=1, le=MAX_TOP, description="How many customers.")]
RankBy = Annotated[ScoreField | None, Query(description="Rank by this score; default: the release's first.")]
CustomerId = Annotated[str, PathParam(pattern=CUSTOMER_ID_PATTERN, description="Per the CAR contract.")]


class Reason(BaseModel):
    """One feature that moved the customer's score: a reason code."""

    feature: str = Field(description="The model feature.")
    value: str | None = Field(
        None, description="The customer's value as the model saw it, as text; absent when missing."
    )
    contribution: float = Field(
        description="Signed contribution to the raw model's log-odds, before the down-sampling correction "
        "and calibration (CatBoost: SHAP value; logistic: coefficient x standardised value). Positive "
        "raises the score."
    )


class Score(BaseModel):
    """One customer's released score (probability and/or percentile, as the model's spec asks)."""

    market: str
    model: str
    customer_id: str
    snapshot_date: str
    probability: float | None = None
    percentile: float | None = None
    decile: int
    model_version: str
    release_id: str
    reasons: list[Reason] | None = Field(
        None,
        description="The customer's top contributing features, largest absolute contribution first, when "
        "the model's spec opts in (`output.reason_codes`); absent when the release carries none.",
    )


class TopScores(BaseModel):
    """The best n customers of a cell's release in force."""

    market: str
    model: str
    release_id: str
    by: ScoreField
    n: int
    scores: list[Score]


class CellRelease(BaseModel):
    """A cell with its release in force, or why that release cannot be served."""

    market: str
    model: str
    available: bool
    release_id: str | None = None
    released_at: str | None = None
    snapshot_date: str | None = None
    model_version: str | None = None
    rows: int | None = None
    output_format: str | None = None
    error: str | None = None


class Health(BaseModel):
    """Liveness, with the releases root being served."""

    status: Literal["ok"]
    releases_root: str
    releases_root_exists: bool


def default_releases_root() -> Path:
    """The releases of the deployment the environment names (`FACTORY_DATA_DIR` moves them)."""
    return current().paths.releases


def _json(text: str) -> Response:
    """A JSON body rendered by the endpoint itself.

    The score endpoints keep their `response_model` for the OpenAPI schema but render the body
    themselves (pre-rendered rows for top-N): validating each row through pydantic cost more
    server CPU than the lookup itself. tests/test_api.py checks the bodies against the models.
    """
    return Response(content=text, media_type="application/json")


def _with_raw(fields: dict[str, object], key: str, raw: str) -> str:
    """`fields` as a JSON object plus one last member `key` whose value `raw` is JSON text already."""
    return f"{json.dumps(fields, separators=(',', ':'))[:-1]},{json.dumps(key)}:{raw}}}"


def _release(reader: ReleaseReader, market: str, model: str) -> LoadedRelease:
    try:
        return reader.get(market, model)
    except UnknownCellError as exc:
        raise HTTPException(status_code=404, detail=str(exc)) from exc
    except ReleaseUnavailableError as exc:
        raise HTTPException(status_code=503, detail=str(exc)) from exc


async def _release_async(reader: ReleaseReader, market: str, model: str) -> LoadedRelease:
    """From memory on the event loop; a new release is loaded in a worker thread, not on the loop."""
    try:
        release = reader.cached(market, model)
    except UnknownCellError as exc:
        raise HTTPException(status_code=404, detail=str(exc)) from exc
    except ReleaseUnavailableError as exc:
        raise HTTPException(status_code=503, detail=str(exc)) from exc
    if release is None:
        release = await run_in_threadpool(_release, reader, market, model)
    return release


def _cell(reader: ReleaseReader, market: str, model: str) -> CellRelease:
    try:
        m = reader.get(market, model).manifest
    except ReleaseUnavailableError as exc:
        return CellRelease(market=market, model=model, available=False, error=str(exc))
    return CellRelease(
        market=market,
        model=model,
        available=True,
        release_id=m.release_id,
        released_at=m.released_at,
        snapshot_date=m.snapshot_date,
        model_version=m.model_version,
        rows=m.rows,
        output_format=m.output_format,
    )


_KEY_SCHEME = APIKeyHeader(
    name=KEY_HEADER,
    auto_error=False,
    scheme_name="ApiKey",
    description=f"An API key of this deployment, optionally scoped to markets (create: `{CREATE_KEY}`).",
)


def _unauthorised(reason: str) -> HTTPException:
    detail = f"{reason}: send a valid key in the {KEY_HEADER} header (create one with `{CREATE_KEY}`)"
    return HTTPException(status_code=401, detail=detail, headers={"WWW-Authenticate": "ApiKey"})


def _outside_scope(key: ApiKey, market: str) -> HTTPException:
    detail = f"key {key.key_id} ({key.name}) reads {key.scope}, not '{market}'"
    return HTTPException(status_code=403, detail=detail)


def _caller(request: Request, presented: Annotated[str | None, Security(_KEY_SCHEME)]) -> ApiKey:
    """The stored key the request presents; 401 when there is none or it is not valid."""
    if not presented:
        raise _unauthorised("no API key")
    key = request.app.state.keys.verify(presented)
    if key is None:
        raise _unauthorised("unknown or invalid API key")
    return key


def _market_reader(market: str, key: Annotated[ApiKey, Depends(_caller)]) -> ApiKey:
    """The request's key if it covers the path's `market`; 403 otherwise."""
    if not key.allows(market):
        raise _outside_scope(key, market)
    return key


Caller = Annotated[ApiKey, Depends(_caller)]
MarketReader = Annotated[ApiKey, Depends(_market_reader)]


def _report_file(root: Path, path: str) -> Path:
    """The file under `root` that `path` names; 404 for anything else (no way out of the root)."""
    if "\x00" in path or any(part in ("", ".", "..") for part in path.split("/")):
        raise HTTPException(status_code=404, detail=f"no report {path!r}")
    try:
        found = (root / path).resolve()
        inside = found.is_relative_to(root.resolve()) and found.is_file()
    except (OSError, ValueError) as exc:
        raise HTTPException(status_code=404, detail=f"no report {path!r}") from exc
    if not inside:
        raise HTTPException(status_code=404, detail=f"no report {path!r}")
    return found


def _report_market(path: str) -> str | None:
    """The market a report belongs to (`cards/<market>/...`, `drift/<market>/...`), else None."""
    parts = path.split("/")
    return parts[1] if len(parts) > 2 and parts[0] in SCOPED_REPORT_KINDS else None


def create_app(
    releases_root: Path,
    keys_file: Path,
    reports_root: Path | None = None,
    reports_public: bool = False,
) -> FastAPI:
    """The scoring API over the release files under `releases_root`, guarded by the keys in `keys_file`.

    `reports_root` (the deployment's reports folder) is served under `/reports/`; without a key only
    when `reports_public`.
    """
    reader = ReleaseReader(Path(releases_root))
    keys = KeyFile(Path(keys_file))
    app = FastAPI(
        title="Model factory: released scores",
        description="Propensity scores per market x model, as released after Data Checker 2. Every data "
        f"endpoint needs an API key in the `{KEY_HEADER}` header: 401 without a valid key, 403 for a "
        "market outside the key's scope.",
        version="1",
    )
    app.state.reader = reader
    app.state.keys = keys

    guarded = {401: {"description": "No valid API key."}}
    scoped = {**guarded, 403: {"description": "The key does not cover this market."}}

    @app.get("/health", response_model=Health)
    def health() -> Health:
        """The service is up; says which releases root it serves. Needs no key."""
        root = reader.store.root
        return Health(status="ok", releases_root=str(root), releases_root_exists=root.is_dir())

    @app.get("/cells", response_model=list[CellRelease], response_model_exclude_none=True, responses=guarded)
    def cells(key: Caller) -> list[CellRelease]:
        """Every cell of the key's markets with a release: what is in force, or why it cannot be served."""
        found = []
        for market, model in reader.cells():
            if not key.allows(market):
                continue
            try:
                found.append(_cell(reader, market, model))
            except UnknownCellError:
                continue  # its manifest disappeared between the listing and the read
        return found

    @app.get(
        "/scores/{market}/{model}/top",
        response_model=TopScores,
        response_model_exclude_none=True,
        responses=scoped,
    )
    async def top(
        market: str,
        model: str,
        key: MarketReader,
        n: TopN = 100,
        by: RankBy = None,
    ) -> Response:
        """The top n customers of the cell's release in force, highest score first."""
        release = await _release_async(reader, market, model)
        field = by or release.score_fields[0]
        if field not in release.score_fields:
            detail = f"release {release.manifest.release_id} publishes {release.score_fields}, not '{field}'"
            raise HTTPException(status_code=422, detail=detail)
        head = {"market": market, "model": model, "release_id": release.manifest.release_id, "by": field}
        head["n"] = min(n, len(release.customer_ids))
        rows = release.top_json(n, field, {"market": market, "model": model})
        return _json(_with_raw(head, "scores", rows))

    @app.get(
        "/scores/{market}/{model}/{customer_id}",
        response_model=Score,
        response_model_exclude_none=True,
        responses=scoped,
    )
    async def score(
        market: str,
        model: str,
        customer_id: CustomerId,
        key: MarketReader,
    ) -> Response:
        """One customer's released score in the cell's release in force (with reason codes if it has them)."""
        release = await _release_async(reader, market, model)
        row = release.lookup(customer_id)
        if row is None:
            release_id = release.manifest.release_id
            detail = f"customer {customer_id} not in release {release_id} of {market}/{model}"
            raise HTTPException(status_code=404, detail=detail)
        return _json(row_json({"market": market, "model": model}, row))

    if reports_root is not None:
        _add_reports(app, Path(reports_root), keys, reports_public)
    return app


def _add_reports(app: FastAPI, root: Path, keys: KeyFile, public: bool) -> None:
    """`GET /reports/{path}`: the static report pages, behind a key unless `public`."""

    @app.get(
        "/reports/{path:path}",
        response_class=FileResponse,
        responses={401: {"description": "No valid API key (reports are not public)."}, 404: {}},
    )
    def report(path: str, presented: Annotated[str | None, Security(_KEY_SCHEME)] = None) -> FileResponse:
        """A report page (status page, model card, drift report) of the deployment's reports folder.

        `/reports/` itself is the status page.
        """
        path = path or "status.html"
        if not public:
            key = keys.verify(presented)
            if key is None:
                raise _unauthorised("the report pages need an API key here (api.reports_public is off)")
            market = _report_market(path)
            if key.markets and (market is None or not key.allows(market)):
                raise _outside_scope(key, market or "all markets")
        return FileResponse(_report_file(root, path))


def app_for(deployment: Deployment) -> FastAPI:
    """The scoring API of a deployment: its releases, its keys file and its reports folder."""
    settings = deployment.settings.api
    return create_app(
        deployment.paths.releases, deployment.api_keys_file, deployment.paths.reports, settings.reports_public
    )


app = app_for(_DEPLOYMENT)
