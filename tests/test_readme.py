"""The README's test command and .ci/run must stay identical (CI runs the latter)."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _block(text: str) -> list[str]:
    match = re.search(r"# BEGIN README TEST COMMAND\n(.*?)# END README TEST COMMAND", text, re.S)
    assert match, "test-command markers missing"
    return [line.strip() for line in match.group(1).strip().splitlines()]


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    assert _block(readme) == _block(ci)


def test_readme_python_examples_run():
    readme = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", readme, re.S)
    assert blocks
    for block in blocks:
        exec(compile(block, "README.md", "exec"), {})
