"""HTTP API over the released scores: reads only release files and manifests, never the warehouse.

`create_app(releases_root)` builds the app; `app` is the one `make serve` runs, over
the deployment's releases (`factory_assets.deployment.current()`), resolved once at import. A new
release is picked up without a restart: every request stats the cell's manifest, and a new release
id is loaded once and then served from memory. Errors: 404 for an unknown market, model or
customer, 422 for a malformed customer id or a bad parameter, 503 (for that cell only) when its
release file is corrupt or missing. OpenAPI docs at `/docs`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Literal

from fastapi import FastAPI, HTTPException, Query, Response
from fastapi import Path as PathParam
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel

from factory_assets.core.release.reader import (
    LoadedRelease,
    ReleaseReader,
    ReleaseUnavailableError,
    UnknownCellError,
    row_json,
)
from factory_assets.deployment import current

MAX_TOP = 10_000
_DEPLOYMENT = current()
_CONTRACT = _DEPLOYMENT.contract
CUSTOMER_ID_PATTERN = _CONTRACT.columns[_CONTRACT.customer_key].pattern or r"^[A-Za-z0-9_-]{1,64}$"
ScoreField = Literal["probability", "percentile"]
TopN = Annotated[int, Query(ge=1, le=MAX_TOP, description="How many customers.")]
RankBy = Annotated[ScoreField | None, Query(description="Rank by this score; default: the release's first.")]
CustomerId = Annotated[str, PathParam(pattern=CUSTOMER_ID_PATTERN, description="Per the CAR contract.")]


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


def create_app(releases_root: Path) -> FastAPI:
    """The scoring API over the release files and manifests under `releases_root`."""
    reader = ReleaseReader(Path(releases_root))
    app = FastAPI(
        title="Model factory: released scores",
        description="Propensity scores per market x model, as released after Data Checker 2.",
        version="1",
    )
    app.state.reader = reader

    @app.get("/health", response_model=Health)
    def health() -> Health:
        """The service is up; says which releases root it serves."""
        root = reader.store.root
        return Health(status="ok", releases_root=str(root), releases_root_exists=root.is_dir())

    @app.get("/cells", response_model=list[CellRelease], response_model_exclude_none=True)
    def cells() -> list[CellRelease]:
        """Every market x model with a release, and what is in force (or why it cannot be served)."""
        found = []
        for market, model in reader.cells():
            try:
                found.append(_cell(reader, market, model))
            except UnknownCellError:
                continue  # its manifest disappeared between the listing and the read
        return found

    @app.get("/scores/{market}/{model}/top", response_model=TopScores, response_model_exclude_none=True)
    async def top(
        market: str,
        model: str,
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

    @app.get("/scores/{market}/{model}/{customer_id}", response_model=Score, response_model_exclude_none=True)
    async def score(
        market: str,
        model: str,
        customer_id: CustomerId,
    ) -> Response:
        """One customer's released score in the cell's release in force."""
        release = await _release_async(reader, market, model)
        row = release.lookup(customer_id)
        if row is None:
            release_id = release.manifest.release_id
            detail = f"customer {customer_id} not in release {release_id} of {market}/{model}"
            raise HTTPException(status_code=404, detail=detail)
        return _json(row_json({"market": market, "model": model}, row))

    return app


app = create_app(default_releases_root())
