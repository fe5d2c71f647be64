"""Shared paths: the golden fixtures the Rust tests use, read from the repository."""

import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
EVAL_FIXTURES = ROOT / "crates" / "eval" / "fixtures"
ENGINE_FIXTURES = ROOT / "crates" / "engine" / "fixtures"
INTEGRITY_FIXTURES = ROOT / "crates" / "integrity" / "fixtures"
SN37_FIXTURES = ROOT / "crates" / "sn37" / "tests" / "fixtures"
PRISM_FIXTURES = ROOT / "crates" / "prism" / "fixtures"
BON_FIXTURES = ROOT / "crates" / "bon" / "fixtures"
FT_SNAPSHOTS = ROOT / "crates" / "ftchallenge" / "tests" / "snapshots"
EXAMPLES = ROOT / "examples"


def insta_snapshot(path: Path) -> str:
    """The body of an insta snapshot file (what follows its `---` header)."""
    text = path.read_text(encoding="utf-8")
    _, _, body = text.split("---\n", 2)
    return body.rstrip("\n")


def jsonl(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


@pytest.fixture(scope="session")
def tiny_llama():
    """The tiny random Llama of the engine's golden tests, loaded once."""
    import assay

    return assay.Model.load(str(ENGINE_FIXTURES / "tiny-llama"))


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "slow: loads the embedded default model (SmolLM2-135M, fetched once)"
    )
