"""`factory api-key create` prints a key once and stores only its salted hash; the API accepts it."""

from __future__ import annotations

import shutil

from fastapi.testclient import TestClient

from factory_assets import cli
from factory_assets.core.paths import REPO_ROOT
from factory_assets.deployment import Deployment
from serving.api import KEY_HEADER, app_for


def test_a_created_key_is_printed_once_stored_hashed_and_opens_only_its_market(tmp_path, monkeypatch, capsys):
    project = tmp_path / "deployment"
    shutil.copytree(REPO_ROOT / "config", project / "config")
    shutil.copytree(REPO_ROOT / "model_specs", project / "model_specs")
    monkeypatch.setenv("FACTORY_PROJECT_DIR", str(project))

    cli.main(["api-key", "list"])
    assert "No API key yet" in capsys.readouterr().out
    cli.main(["api-key", "create", "--name", "crm", "--market", "uk"])
    printed = capsys.readouterr().out
    key = printed.strip().splitlines()[-1]

    stored = (project / "config" / "api_keys.yaml").read_text(encoding="utf-8")
    assert key.startswith("mf_")
    assert key not in stored
    assert key.split("_", 2)[2] not in stored
    cli.main(["api-key", "list"])
    assert "crm  reads uk" in capsys.readouterr().out
    client = TestClient(app_for(Deployment(project, tmp_path / "data")))
    assert client.get("/cells").status_code == 401
    assert client.get("/cells", headers={KEY_HEADER: key}).status_code == 200
    assert client.get("/scores/de/churn/top", headers={KEY_HEADER: key}).status_code == 403
    assert client.get("/scores/uk/churn/top", headers={KEY_HEADER: key}).status_code == 404, "no release yet"
