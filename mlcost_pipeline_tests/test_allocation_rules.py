import shutil
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from mlcost_pipeline.allocation.rules import DEFAULT_RULES_PATH, RulesError, load_rules, normalize_value
from mlcost_pipeline.cli import main


def test_rules_default_file_loads_with_a_stable_hash():
    first, second = load_rules(DEFAULT_RULES_PATH), load_rules(DEFAULT_RULES_PATH)
    assert first.rules.dimensions["project"].tag_keys == ["project", "proj"]
    assert first.sha256 == second.sha256 and len(first.sha256) == 64


def test_rules_hash_changes_with_the_file(tmp_path: Path):
    shutil.copytree(DEFAULT_RULES_PATH.parent, tmp_path, dirs_exist_ok=True)  # with the files it names
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


# --- pools, drivers, currency, runs: every mistake is one line naming the file, the field and what is wrong -----

HEAD = "version: 2\ndimensions:\n  project: {tag_keys: [project]}\n"
POOL = "pools:\n  - id: p\n    select: {services: [A]}\n"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (HEAD + POOL + "    method: fixed\n    targets: [{project: a, weight: 40}, {project: b, weight: 50}]\n",
         "pools.0.targets: fixed weights sum to 90, not 100"),
        (HEAD + POOL + "    method: fixed\n    targets: [{project: a, weight: 100}, b]\n",
         "pools.0.targets.1.weight: method 'fixed' needs a weight per target"),
        (HEAD + POOL + "    method: even\n    targets: [{project: a, weight: 100}]\n",
         "pools.0.targets: weights are only for method 'fixed'"),
        (HEAD + POOL + "    method: proportional_usage\n    driver: storage_gb\n",
         "pools.0.driver: unknown driver 'storage_gb'; known: ['gpu_hours']"),
        (HEAD + POOL + "    method: even\n    targets: [a]\n  - id: p\n    select: {services: [B]}\n"
         "    method: even\n    targets: [b]\n", "pools.1.id: duplicate pool id 'p' (first used by pools.0)"),
        (HEAD + "pools:\n  - id: p\n    select: {resource_id_regex: '([a-z'}\n    method: even\n    targets: [a]\n",
         "pools.0.select.resource_id_regex: not a valid regular expression '([a-z'"),
        (HEAD + "fallbacks:\n  resource_ids:\n    - {pattern: '(?=x)', assign: a}\n",
         "fallbacks.resource_ids.0.pattern: regular expression '(?=x)' is not supported by DuckDB"),
        (HEAD + POOL + "    method: even\n    targets: [a]\n    colour: red\n",
         "pools.0.colour: Extra inputs are not permitted"),
        (HEAD + POOL + "    method: evenly\n    targets: [a]\n", "pools.0.method: Input should be 'even', 'fixed'"),
        (HEAD + "pools:\n  - id: p\n    select: {unowned_only: true}\n    method: even\n    targets: [a]\n",
         "pools.0.select: selects every charge"),
        (HEAD + POOL + "    method: proportional_usage\n    driver: gpu_hours\n    idle: keep\n",
         "pools.0.idle: 'keep' needs a capacity"),
        (HEAD + POOL + "    method: proportional_usage\n    driver: gpu_hours\n    capacity: {per_day: 1, "
         "from_consumed_quantity: {}}\n", "pools.0.capacity: give exactly one of per_day and"),
        (HEAD + POOL + "    method: proportional_usage\n    driver: gpu_hours\n    capacity: "
         "{from_consumed_quantity: {per_unit: 1/0}}\n", "capacity.from_consumed_quantity.per_unit: not a"),
        (HEAD + POOL + "    method: even\n    targets: [{project: a, team: x}]\n",
         "pools.0.targets.0.team: dimension 'team' is not defined"),
        (HEAD + POOL + "    method: proportional_cost\n    grain: run\n", "pools.0.grain: only for method"),
        (HEAD + "fallbacks:\n  accounts:\n    '111': {colour: red}\n",
         "fallbacks.accounts.111: unknown dimension(s) ['colour']"),
        (HEAD + "drivers:\n  d: {sql: 'DROP TABLE core.focus_costs'}\n",
         "drivers.d.sql: must be exactly one SELECT statement"),
        (HEAD + "drivers:\n  d: {csv: d.csv, sql: 'SELECT 1'}\n", "drivers.d: give exactly one of csv"),
        (HEAD + "runs:\n  rate_card_currency: EURO\n", "runs.rate_card_currency: unknown currency code"),
        (HEAD + "cost_basis: AmortizedCost\n", "cost_basis: Input should be 'EffectiveCost'"),
        ("- just\n- a list\n", "(top level): expected a mapping"),
    ],
)  # fmt: skip
def test_rules_pool_mistakes_give_one_line_naming_file_and_field(tmp_path: Path, text: str, expected: str):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(RulesError) as err:
        load_rules(path)
    message = str(err.value)
    assert "\n" not in message and message.startswith(f"{path}: ")
    assert expected in message


@pytest.mark.parametrize(
    ("files", "text", "expected"),
    [
        ({"fx.csv": "date,from_currency,to_currency,rate\n2026-11-01,EUR,USD,abc\n"},
         "currency: {rates_file: fx.csv}\n", "fx.csv: row 2: rate: not a decimal number: 'abc'"),
        ({"fx.csv": "date,from_currency,to_currency,rate\n2026-11-01,EUR,USX,1\n"},
         "currency: {rates_file: fx.csv}\n", "fx.csv: row 2: to_currency: unknown currency code 'USX'"),
        ({"fx.csv": "day,currency,rate\n"}, "currency: {rates_file: fx.csv}\n", "fx.csv: header: missing column(s)"),
        ({}, "currency: {rates_file: missing.csv}\n", "currency.rates_file: cannot read"),
        ({"d.csv": "date,project,quantity\n2026-11-01,a,-1\n"}, "drivers:\n  d: {csv: d.csv}\n",
         "d.csv: row 2: quantity: must not be negative"),
        ({}, "drivers:\n  d: {csv: nowhere.csv}\n", "drivers.d.csv: cannot read"),
    ],
)  # fmt: skip
def test_rules_named_files_are_checked_on_load(tmp_path: Path, files: dict, text: str, expected: str):
    for name, content in files.items():
        (tmp_path / name).write_text(content)
    path = tmp_path / "rules.yaml"
    path.write_text(HEAD + text)
    with pytest.raises(RulesError) as err:
        load_rules(path)
    assert "\n" not in str(err.value) and expected in str(err.value)


def test_rules_fingerprint_follows_named_files_and_hash_follows_the_rules_file(tmp_path: Path):
    (tmp_path / "fx.csv").write_text("date,from_currency,to_currency,rate\n2026-11-01,EUR,USD,1.1\n")
    path = tmp_path / "rules.yaml"
    path.write_text(HEAD + "currency: {rates_file: fx.csv}\n")
    before = load_rules(path)
    (tmp_path / "fx.csv").write_text("date,from_currency,to_currency,rate\n2026-11-01,EUR,USD,1.2\n")
    after = load_rules(path)
    assert before.sha256 == after.sha256 and before.fingerprint != after.fingerprint
    assert after.fx_rates == [(date(2026, 11, 1), "EUR", "USD", Decimal("1.2"))]


def test_rules_example_file_documents_every_pool_method_and_loads():
    loaded = load_rules(DEFAULT_RULES_PATH)
    methods = {p.method for p in loaded.rules.pools}
    assert methods == {"even", "fixed", "proportional_cost", "proportional_usage"}
    assert {p.idle for p in loaded.rules.pools} >= {"keep", "share"}
    assert loaded.fx_rates and loaded.driver_rows["scratch_storage_gb"]


def test_cli_validate_rules_exit_codes(tmp_path: Path, capsys):
    assert main(["validate-rules", str(DEFAULT_RULES_PATH)]) == 0
    assert capsys.readouterr().out.startswith(f"ok: {DEFAULT_RULES_PATH}: 5 dimension(s), 9 pool(s)")
    bad = tmp_path / "bad.yaml"
    bad.write_text(HEAD + POOL + "    method: fixed\n    targets: [{project: a, weight: 99.5}]\n")
    assert main(["validate-rules", str(bad)]) == 1
    err = capsys.readouterr().err
    assert err == f"mlcost: invalid rules: {bad}: pools.0.targets: fixed weights sum to 99.5, not 100\n"
