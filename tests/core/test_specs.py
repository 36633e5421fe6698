"""Model spec validation: the shipped specs load; bad specs name the file, field and reason."""

from __future__ import annotations

from pathlib import Path

import pytest

from factory_assets.core.paths import DEFAULT_SPECS_DIR
from factory_assets.core.specs import SpecError, load_spec, load_specs

VALID = """
target: {kind: movement, product: base_tier, from: [basic], to: [premium], horizon: 1}
"""


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_shipped_specs_cover_the_four_movement_families():
    specs = load_specs(DEFAULT_SPECS_DIR)
    assert len(specs) >= 6
    targets = {name: spec.target for name, spec in specs.items()}
    assert "churned" in targets["churn"].to
    assert targets["upgrade_premium"].to == ["premium"]
    assert targets["downgrade_tier"].from_ == ["premium"]
    assert {t.product for t in targets.values()} >= {"base_tier", "addon_sports"}


def test_defaults_are_filled_and_documented(tmp_path):
    spec = load_spec(write(tmp_path, "m1", VALID))
    assert spec.name == "m1"
    assert spec.sampling.test_snapshots == 1
    assert spec.output.format == "both"
    assert not spec.output.reason_codes.enabled, "reason codes are opt-in"
    assert spec.output.reason_codes.top_n == 3
    assert spec.replacement.delong_alpha == 0.05
    for block in (spec.sampling, spec.retrain, spec.replacement, spec.cleaning):
        for name, field in type(block).model_fields.items():
            if field.default is None and not field.default_factory:
                assert name in {"negatives_per_positive", "balance_above_rows"}, f"{name} has no default"
                assert field.description, f"{name}: what None means must be documented"


def test_flag_values_are_compared_as_strings(tmp_path):
    text = "target: {kind: movement, product: addon_kids, from: [0], to: [1]}"
    spec = load_spec(write(tmp_path, "kids", text))
    assert spec.target.from_ == ["0"]
    assert spec.target.to == ["1"]


@pytest.mark.parametrize(
    ("text", "field", "reason"),
    [
        (
            "target: {kind: movement, product: base_tier, from: [basic], to: [premium], horizn: 1}",
            "target.movement.horizn",
            "Extra inputs are not permitted",
        ),
        (
            "target: {kind: movement, product: base_tier, from: [basic], to: [premium], horizon: 0}",
            "target.movement.horizon",
            "greater than or equal to 1",
        ),
        ("target: {kind: guess, column: x}", "target", "tag 'guess'"),
        (
            "target: {kind: movement, product: base_tier, from: [basic], to: [basic]}",
            "target.movement",
            "no movement",
        ),
        (VALID + "sampling: {validation_share: 0.9}", "sampling.validation_share", "less than 0.5"),
        (VALID + "model: {depth: deep}", "model.depth", "valid integer"),
        (VALID + "output: {format: pdf}", "output.format", "'probability', 'percentile' or 'both'"),
        (
            VALID + "output: {reason_codes: {top_n: 0}}",
            "output.reason_codes.top_n",
            "greater than or equal to 1",
        ),
        (
            VALID + "output: {reason_codes: {enable: true}}",
            "output.reason_codes.enable",
            "Extra inputs are not permitted",
        ),
        ("description: no target", "target", "Field required"),
    ],
)
def test_bad_spec_names_file_field_and_reason(tmp_path, text, field, reason):
    path = write(tmp_path, "bad_model", text)
    with pytest.raises(SpecError) as info:
        load_spec(path)
    message = str(info.value)
    assert str(path) in message
    assert f"field '{field}'" in message
    assert reason in message


def test_name_must_match_file_and_be_a_partition_key(tmp_path):
    with pytest.raises(SpecError, match="differs from the file name"):
        load_spec(write(tmp_path, "one", "name: two\n" + VALID))
    with pytest.raises(SpecError, match="field 'name'"):
        load_spec(write(tmp_path, "Bad-Name", VALID))


def test_broken_yaml_and_empty_directory(tmp_path):
    with pytest.raises(SpecError, match="not valid YAML"):
        load_spec(write(tmp_path, "broken", "target: [unclosed"))
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(SpecError, match="no model specs"):
        load_specs(empty)


def test_spec_hash_changes_with_content(tmp_path):
    a = load_spec(write(tmp_path, "a", VALID))
    b = load_spec(write(tmp_path, "a", VALID + "model: {depth: 4}"))
    assert a.spec_hash != b.spec_hash
    assert a.spec_hash == load_spec(write(tmp_path, "a", VALID)).spec_hash
