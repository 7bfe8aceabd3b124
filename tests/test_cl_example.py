"""The examples of docs/continual.md run as written, on the embedded digits; README.md shows the first one."""

from __future__ import annotations

import re
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
BLOCK = re.compile(r"```python\n(.*?)```", re.DOTALL)


def python_blocks(doc: Path) -> list[str]:
    """The doc's Python blocks that use the continual-learning library."""
    return [code for code in BLOCK.findall(doc.read_text()) if "from cl_nas.cl import" in code]


def test_the_avalanche_examples_run_and_fill_their_memories():
    first, second = python_blocks(REPO / "docs" / "continual.md")
    assert python_blocks(REPO / "README.md") == [first]  # the README's quick start is the same example
    namespace: dict = {}
    exec(compile(first, "docs/continual.md, first example", "exec"), namespace)
    assert namespace["memory"].seen_classes == set(range(10)) and len(namespace["memory"].buffer) == 200
    exec(compile(second, "docs/continual.md, second example", "exec"), namespace)  # continues the first
    memory = namespace["memory"]
    assert memory.stored.dtype == torch.uint8 and len(memory.buffer) == 790 // 10 * 10
    assert memory.stored_bytes <= namespace["budget"]
