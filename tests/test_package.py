"""Package-level promises: light import, typed, CLI."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import tlm_hooks
from tlm_hooks.cli import main

HEAVY = (
    "openai", "httpx", "httpx2", "litellm", "azure", "llama_index", "llama_cpp", "starlette", "uvicorn", "pydantic",
    "mlflow", "phoenix", "opentelemetry", "pandas", "numpy", "matplotlib",
)  # fmt: skip


def test_import_pulls_in_no_sdk() -> None:
    code = "import sys, tlm_hooks; print(sorted({m.split('.')[0] for m in sys.modules}))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    loaded = set(ast.literal_eval(out))  # a list literal printed by the child
    assert not loaded & set(HEAVY), loaded & set(HEAVY)


def test_package_is_typed() -> None:
    assert (Path(tlm_hooks.__file__).parent / "py.typed").is_file()


def test_public_names_exist() -> None:
    for name in tlm_hooks.__all__:
        assert hasattr(tlm_hooks, name), name


def test_cli_rejects_unknown_command(capsys) -> None:
    assert main(["frobnicate"]) == 2
    err = capsys.readouterr().err
    assert "frobnicate" in err and "demo" in err


def test_cli_help(capsys) -> None:
    assert main(["--help"]) == 0
    assert "demo" in capsys.readouterr().out


def test_rag_and_dataset_entry_points_load_on_first_use() -> None:
    code = (
        "import sys, tlm_hooks; before = {'tlm_hooks.rag', 'tlm_hooks.datasets'} & set(sys.modules); "
        "tlm_hooks.TrustworthyRAG, tlm_hooks.score_file; "
        "print(sorted(before), sorted({'tlm_hooks.rag', 'tlm_hooks.datasets'} & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split("] [")
    assert out[0] == "[" and out[1].strip() == "'tlm_hooks.datasets', 'tlm_hooks.rag']"
    try:
        tlm_hooks.no_such_name  # noqa: B018
    except AttributeError as exc:
        assert "no_such_name" in str(exc)
    else:
        raise AssertionError("unknown attribute did not raise")
