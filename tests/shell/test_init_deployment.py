"""`factory init`: a starting deployment folder from an export it inspects, never overwriting."""

import pandas as pd
import pytest

from factory_assets.demo.insurer import InsurerConfig, write_insurer_export
from factory_assets.deployment import Deployment
from factory_assets.init_deployment import InitError, init_deployment, inspect_car


@pytest.fixture
def export(tmp_path):
    return write_insurer_export(tmp_path / "export", InsurerConfig(markets={"NL": 300}, months=4))


def test_the_export_is_profiled_keys_market_and_late_labels_found(export):
    profile = inspect_car(export)
    assert (profile.customer, profile.date, profile.date_format, profile.market) == (
        "policy_no",
        "month",
        "%Y%m",
        "country",
    )
    assert profile.delimiter == ";"
    assert profile.labels == ["lapsed"]
    assert profile.types["pays_monthly"] == "flag"
    assert profile.types["premium_eur"] == "float"
    assert {"telematics_score", "lapsed"} <= profile.nullable


def test_the_written_folder_is_a_loadable_deployment_and_a_second_init_keeps_it(tmp_path, export):
    folder = tmp_path / "mine"
    report = init_deployment(folder, export)
    assert all(line.startswith(("wrote", "found")) for line in report)
    deployment = Deployment(folder)
    assert deployment.label_columns == {"lapsed"}
    assert deployment.specs["lapsed"].target.column == "lapsed"
    (mapping,) = deployment.external_mappings
    assert mapping.name == "policies_mapping.yaml"
    contract = (folder / "config" / "car_contract.yaml").read_text(encoding="utf-8")
    assert "# from 'policy_no'" in contract
    again = init_deployment(folder, export)
    assert sum(line.startswith("kept") for line in again) == 4


def test_an_export_without_labels_gets_a_movement_template_not_a_broken_spec(tmp_path):
    frame = pd.DataFrame(
        {
            "client_id": ["a", "b", "a", "b"],
            "snapshot_date": ["2025-01-01"] * 2 + ["2025-02-01"] * 2,
            "tier": ["x", "y", "y", "y"],
            "spend": [1.5, 2.0, 3.0, 0.5],
        }
    )
    path = tmp_path / "car.csv"
    frame.to_csv(path, index=False)
    init_deployment(tmp_path / "d", path)
    specs = tmp_path / "d" / "model_specs"
    assert [p.name for p in specs.iterdir()] == ["movement.yaml.template"]


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (pd.DataFrame({"id": ["a", "b"], "value": [1, 2]}), "no column looks like a snapshot date"),
        (
            pd.DataFrame({"id": ["a", "a"], "snapshot_date": ["2025-01-01"] * 2, "v": [1, 1]}),
            "no column identifies a customer",
        ),
    ],
)
def test_an_export_without_usable_keys_says_why(tmp_path, frame, message):
    path = tmp_path / "car.csv"
    frame.to_csv(path, index=False)
    with pytest.raises(InitError, match=message):
        inspect_car(path)
