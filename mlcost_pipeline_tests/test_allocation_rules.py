from pathlib import Path

import pytest

from mlcost_pipeline.allocation.rules import DEFAULT_RULES_PATH, RulesError, load_rules, normalize_value


def test_rules_default_file_loads_with_a_stable_hash():
    first, second = load_rules(DEFAULT_RULES_PATH), load_rules(DEFAULT_RULES_PATH)
    assert first.rules.dimensions["project"].tag_keys == ["project", "proj"]
    assert first.sha256 == second.sha256 and len(first.sha256) == 64


def test_rules_hash_changes_with_the_file(tmp_path: Path):
    changed = tmp_path / "rules.yaml"
    changed.write_text(DEFAULT_RULES_PATH.read_text() + "\n# a comment is still a change\n")
    assert load_rules(changed).sha256 != load_rules(DEFAULT_RULES_PATH).sha256


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("version: 1\ndimensions:\n  project:\n    tag_keys: [project]\n    colour: red\n",
         "dimensions.project.colour: Extra inputs are not permitted"),
        ("version: 1\ndimensions:\n  model:\n    tag_keys: [model]\n", "the 'project' dimension is required"),
        ("version: 1\ndimensions:\n  project:\n    tag_keys: []\n", "dimensions.project.tag_keys"),
        ("version: 1\ndimensions: [\n", "not valid YAML"),
    ],
)  # fmt: skip
def test_rules_invalid_file_gives_one_line_naming_file_and_field(tmp_path: Path, text: str, expected: str):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(RulesError) as err:
        load_rules(path)
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith(str(path))
    assert expected in message


def test_rules_yaml_tags_that_run_code_are_refused(tmp_path: Path):
    path = tmp_path / "evil.yaml"
    path.write_text("version: !!python/object/apply:os.system ['echo hacked']\ndimensions: {}\n")
    with pytest.raises(RulesError, match="not valid YAML"):
        load_rules(path)


def test_rules_value_normalization():
    assert normalize_value(" Churn_Pred ") == "churn-pred"
    assert normalize_value("Fraud Detection") == "fraud-detection"
