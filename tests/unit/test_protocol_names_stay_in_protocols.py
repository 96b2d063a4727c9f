"""No module outside addons/llmitm/protocols/ names a wire protocol: each asks the registry, so a new
protocol is one package and one registry line. Docstrings and comments may mention them."""

import ast
from pathlib import Path

from llmitm.protocols import REGISTRY

ADDONS = Path(__file__).resolve().parents[2] / "addons"
PROTOCOLS_DIR = ADDONS / "llmitm" / "protocols"
NAMES = {"openai-chat", "openai-responses", "anthropic", "gemini", *REGISTRY.names}


def _docstrings(tree: ast.AST) -> set[int]:
    ids = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                ids.add(id(first.value))
    return ids


def protocol_literals(source: str) -> list[tuple[int, str]]:
    tree = ast.parse(source)
    docs = _docstrings(tree)
    return [(node.lineno, node.value) for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in NAMES
            and id(node) not in docs]


def test_the_scan_sees_a_protocol_literal_and_skips_docstrings():
    assert protocol_literals('"""About gemini."""\nx = "gemini"\n') == [(2, "gemini")]


def test_no_module_outside_protocols_names_a_protocol():
    found = []
    for path in sorted(ADDONS.rglob("*.py")):
        if PROTOCOLS_DIR in path.parents:
            continue
        found += [f"{path.relative_to(ADDONS)}:{line}: {value!r}" for line, value in protocol_literals(path.read_text())]
    assert found == []
