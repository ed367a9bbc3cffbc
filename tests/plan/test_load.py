"""Loading plans: YAML, the pipeline table, submitted data; every bad input is one clear line."""

from __future__ import annotations

from pathlib import Path

import pytest

from agentwaves.plan import PlanError, dump_plan_yaml, load_plan, parse_pipeline, parse_plan_yaml
from agentwaves.plan.load import looks_like_pipeline, plan_from_data

from .helpers import EXAMPLES

GOOD = """\
feature: Billing export
tasks:
  - id: schema
    title: Schema
    files: [src/models.py]
    estimate: 20
  - id: csv
    title: CSV exporter
    prompt: |
      Write the exporter.
      Use the schema.
    depends_on: [schema]
    files: [src/export.py, "src/csv/**"]
    resources: [db:invoices]
    group: exporters
    estimate: 30
  - id: check
    title: Tests
    kind: gate
    command: pytest -q
    depends_on: [csv]
"""


def error_of(text: str, parse=parse_plan_yaml, source: str = "plan.yaml") -> str:
    with pytest.raises(PlanError) as info:
        parse(text, source)
    message = str(info.value)
    assert len(message.splitlines()) == 1, message
    assert info.value.exit_code == 2
    return message


def test_parses_every_field() -> None:
    plan = parse_plan_yaml(GOOD, "plan.yaml")
    assert plan.feature == "Billing export"
    schema, csv, check = plan.tasks
    assert schema.estimate == 20 and schema.depends_on == [] and schema.kind == "task"
    assert csv.files == ["src/export.py", "src/csv/**"] and csv.resources == ["db:invoices"]
    assert csv.group == "exporters" and csv.effective_prompt.startswith("Write the exporter.")
    assert check.kind == "gate" and check.command == "pytest -q" and check.estimate == 1
    assert schema.effective_prompt == "Schema"


def test_friendly_coercions() -> None:
    plan = parse_plan_yaml("tasks:\n  - {id: 1, title: One}\n  - {id: 2, title: 2024, depends_on: 1}\n")
    assert [t.id for t in plan.tasks] == ["1", "2"]
    assert plan.tasks[1].depends_on == ["1"] and plan.tasks[1].title == "2024"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("feature: x\ntasks: [\n", "plan.yaml:3: invalid YAML"),
        ("tasks:\n  - id: a\n    title: A\n    colour: red\n", "tasks[0] (task 'a'): unknown field 'colour'"),
        ("tasks:\n  - {id: a, title: A}\n  - {id: a, title: B}\n", "duplicate task id 'a'"),
        (
            "tasks:\n  - {id: csv, title: A, depends_on: [nope]}\n",
            "task 'csv' depends on unknown task 'nope'",
        ),
        (
            "tasks:\n  - {id: a, title: A, depends_on: [c]}\n  - {id: b, title: B, depends_on: [a]}\n"
            "  - {id: c, title: C, depends_on: [b]}\n",
            "dependency cycle: a -> c -> b -> a",
        ),
        ("tasks:\n  - {id: t, title: T, kind: gate}\n", "gate 't' has no command"),
        (
            "tasks:\n  - {id: t, title: T, estimate: -5}\n",
            "tasks[0].estimate (task 't'): estimate must not be negative",
        ),
        ("tasks:\n  - {id: t, title: T, estimate: .nan}\n", "must be a finite number"),
        ("tasks:\n  - {id: t}\n", "missing required field 'title'"),
        ("tasks: []\n", "the plan has no tasks"),
        ("", "empty plan"),
        ("- a\n- b\n", "expected a mapping with 'feature' and 'tasks', got a list"),
        ("tasks:\n  - {id: 'a b', title: T}\n", "invalid task id 'a b'"),
        ("tasks:\n  - {id: a, title: T, files: [/etc/passwd]}\n", "must be relative to the repository"),
        ("tasks:\n  - {id: a, title: T, files: [../x]}\n", "points outside the repository"),
        ("tasks:\n  - {id: a, title: T, group: 'bad group'}\n", "invalid group name 'bad group'"),
        ("tasks:\n  - {id: g, title: T, kind: gate, command: x, files: [a.py]}\n", "cannot have files"),
        ("tasks:\n  - {id: g, title: T, kind: gate, command: x, group: web}\n", "cannot join group 'web'"),
        ("tasks:\n  - {id: a, title: T}\nextra: 1\n", "unknown field 'extra'"),
        ("when: 2001-13-01\n", "invalid YAML"),
    ],
)
def test_bad_yaml_is_one_line(text: str, expected: str) -> None:
    message = error_of(text)
    assert message.startswith("plan.yaml"), message
    assert expected in message, message


def test_group_cycle_names_the_groups() -> None:
    text = (
        "tasks:\n  - {id: a, title: A, group: web}\n  - {id: b, title: B, depends_on: [a]}\n"
        "  - {id: c, title: C, depends_on: [b], group: web}\n"
    )
    message = error_of(text)
    assert "groups depend on each other in a cycle" in message and "web" in message and "b" in message


def test_plan_from_data_for_the_planner() -> None:
    plan = plan_from_data({"feature": "f", "tasks": [{"id": "a", "title": "A"}]}, "submitted plan")
    assert plan.tasks[0].id == "a"
    with pytest.raises(PlanError, match=r"^submitted plan: task 'a' depends on unknown task 'zz'$"):
        plan_from_data({"tasks": [{"id": "a", "title": "A", "depends_on": ["zz"]}]}, "submitted plan")
    with pytest.raises(PlanError, match="expected a mapping"):
        plan_from_data(["nope"], "submitted plan")  # type: ignore[arg-type]


def test_dump_round_trips_and_omits_defaults() -> None:
    plan = parse_plan_yaml(GOOD)
    text = dump_plan_yaml(plan)
    assert parse_plan_yaml(text) == plan
    assert "estimate: 1\n" not in text and "kind: task" not in text and "prompt: |" in text
    assert "estimate: 30\n" in text and "meta" not in text


# ------------------------------------------------------------------------------------------- pipeline

SEED_1 = (EXAMPLES / "example1.pipeline").read_text()


def test_pipeline_import_derives_dependencies() -> None:
    plan = parse_pipeline(SEED_1, "example1.pipeline")
    deps = {t.id: t.depends_on for t in plan.tasks}
    assert deps == {
        "1": [],
        "2": ["1"],
        "3": ["1"],
        "4": ["1", "2", "3"],
        "5": ["4"],
        "6": ["4"],
        "7": ["4"],
        "8": ["4"],
        "9": ["4", "5", "6", "7", "8"],
    }
    groups = {t.id: t.group for t in plan.tasks}
    assert groups["2"] == "backend" and groups["7"] == "mobile-features" and groups["9"] is None
    second = plan.tasks[1]
    assert second.title == "Auth service" and second.estimate == 30
    assert second.meta == {"profile": "base", "column3": "-", "mode": "auto"}


def test_pipeline_skips_comments_and_blank_lines() -> None:
    text = (
        "# header | a | b | c | d | e | f\n\n1 | p | - | auto | - | 5 | One\n"
        "   \n# x\n2 | p | - | auto | g | 5 | Two\n"
    )
    plan = parse_pipeline(text)
    assert [t.id for t in plan.tasks] == ["1", "2"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "1 | p | - | auto | - | 10 | A\n\n# c\n2 | p | - | auto | - | 10\n",
            "jobs.pipeline:4: expected 7 '|'-separated columns, got 6",
        ),
        (
            "x | p | - | auto | - | 10 | A\n",
            "jobs.pipeline:1: step number must be a positive integer, got 'x'",
        ),
        (
            "1 | p | - | auto | - | ten | A\n",
            "jobs.pipeline:1: minutes (column 6) must be a number, got 'ten'",
        ),
        (
            "1 | p | - | auto | - | -3 | A\n",
            "jobs.pipeline:1: minutes (column 6) must be a non-negative number",
        ),
        ("1 | p | - | auto | - | 3 | \n", "jobs.pipeline:1: the title (column 7) is empty"),
        (
            "1 | p | - | auto | - | 3 | A\n1 | p | - | auto | - | 3 | B\n",
            "jobs.pipeline:2: duplicate step 1 (first on line 1)",
        ),
        ("1 | p | - | auto | a b | 3 | A\n", "jobs.pipeline:1: invalid group name 'a b'"),
        (
            "1 | p | - | auto | g | 3 | A\n2 | p | - | auto | - | 3 | B\n3 | p | - | auto | g | 3 | C\n",
            "jobs.pipeline:3: group 'g' was ended by the serial step on line 2",
        ),
        ("# nothing\n\n", "jobs.pipeline: no steps"),
    ],
)
def test_bad_pipeline_rows_name_their_line(text: str, expected: str) -> None:
    message = error_of(text, parse_pipeline, "jobs.pipeline")
    assert message.startswith(expected), message


def test_load_plan_detects_the_format(tmp_path: Path) -> None:
    assert len(load_plan(EXAMPLES / "example3.pipeline").tasks) == 12
    table = tmp_path / "steps.md"
    table.write_text("# steps\n" + SEED_1)
    assert len(load_plan(table).tasks) == 9  # content sniffing: six '|' on the first row
    yaml_file = tmp_path / "plan.yaml"
    yaml_file.write_text(GOOD)
    assert load_plan(yaml_file).feature == "Billing export"
    assert looks_like_pipeline(SEED_1) and not looks_like_pipeline(GOOD)


def test_load_plan_file_errors(tmp_path: Path) -> None:
    with pytest.raises(PlanError, match=r"nope\.yaml: no such file$"):
        load_plan(tmp_path / "nope.yaml")
    with pytest.raises(PlanError, match="is a directory"):
        load_plan(tmp_path)
    binary = tmp_path / "bin.yaml"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(PlanError, match="not UTF-8"):
        load_plan(binary)


def test_examples_all_load() -> None:
    for path in sorted(EXAMPLES.iterdir()):
        plan = load_plan(path)
        assert plan.tasks, path
