"""The import-linter contracts (pyproject.toml [tool.importlinter]) fail on a wrong-way import.

Each case copies the package and the handlers to a temporary tree, adds one import that points
the wrong way and runs lint-imports there with the project's own configuration.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = ROOT / "pyproject.toml"
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def contract_name(contract_id: str) -> str:
    contracts = tomllib.loads(PYPROJECT.read_text())["tool"]["importlinter"]["contracts"]
    return next(c["name"] for c in contracts if c["id"] == contract_id)


def lint(tree: Path) -> subprocess.CompletedProcess[str]:
    # The copy comes first on the path, before the editable install of the real package;
    # a wide terminal keeps each reported line whole.
    env = {**os.environ, "PYTHONPATH": str(tree), "COLUMNS": "300"}
    return subprocess.run(
        [str(LINT_IMPORTS), "--config", str(PYPROJECT), "--no-cache", "--no-logo"],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    ignore = shutil.ignore_patterns("__pycache__")
    shutil.copytree(ROOT / "layers" / "cohortcast" / "cohortcast", tmp_path / "cohortcast", ignore=ignore)
    shutil.copytree(ROOT / "functions", tmp_path / "functions", ignore=ignore)
    return tmp_path


def add_import(tree: Path, module: str, statement: str) -> None:
    path = tree.joinpath(*module.split("."))
    path = path / "__init__.py" if path.is_dir() else path.with_suffix(".py")
    path.write_text(path.read_text() + f"\n{statement}\n")


@pytest.mark.parametrize(
    ("importer", "statement", "violation"),
    [
        (
            "cohortcast.storage",
            "import cohortcast.http",
            "cohortcast.storage is not allowed to import cohortcast.http",
        ),
        (
            "cohortcast.segments",
            "import cohortcast.http",
            "cohortcast.segments is not allowed to import cohortcast.http",
        ),
        (
            "cohortcast.segments",
            "import cohortcast.announcements",
            "cohortcast.segments is not allowed to import cohortcast.announcements",
        ),
        (
            "cohortcast.clock",
            "import cohortcast.storage",
            "cohortcast.clock is not allowed to import cohortcast.storage",
        ),
    ],
    ids=[
        "storage-imports-http",
        "domain-imports-http",
        "lower-domain-imports-higher",
        "foundation-imports-storage",
    ],
)
def test_a_wrong_way_import_breaks_the_layers_contract(
    tree: Path, importer: str, statement: str, violation: str
) -> None:
    assert violation not in lint(tree).stdout

    add_import(tree, importer, statement)
    result = lint(tree)

    assert result.returncode != 0, result.stdout
    assert f"{contract_name('layers')} BROKEN" in result.stdout
    assert violation in result.stdout


def test_an_import_that_closes_a_cycle_breaks_the_no_cycles_contract(tree: Path) -> None:
    # storage.profiles gets its table from the client factory storage.aws; the factory
    # importing it back closes a cycle inside one layer, which the layers contract allows.
    cycle = "No cycles are allowed in cohortcast.storage."
    assert cycle not in lint(tree).stdout

    add_import(tree, "cohortcast.storage.aws", "import cohortcast.storage.profiles")
    result = lint(tree)

    assert result.returncode != 0, result.stdout
    assert f"{contract_name('no-cycles')} BROKEN" in result.stdout
    assert cycle in result.stdout


@pytest.mark.parametrize(
    ("contract", "importer", "statement", "violation"),
    [
        (
            "only-storage-speaks-dynamodb",
            "cohortcast.ingest",
            "from boto3.dynamodb.conditions import Key",
            "cohortcast.ingest -> boto3",
        ),
        (
            "no-powertools-below-http",
            "cohortcast.segments",
            "from aws_lambda_powertools.event_handler.api_gateway import Router",
            "cohortcast.segments -> aws_lambda_powertools",
        ),
    ],
    ids=["dynamodb-outside-storage", "http-router-in-a-domain"],
)
def test_an_import_of_a_forbidden_library_breaks_its_contract(
    tree: Path, contract: str, importer: str, statement: str, violation: str
) -> None:
    assert violation not in lint(tree).stdout

    add_import(tree, importer, statement)
    result = lint(tree)

    assert result.returncode != 0, result.stdout
    assert f"{contract_name(contract)} BROKEN" in result.stdout
    assert violation in result.stdout
