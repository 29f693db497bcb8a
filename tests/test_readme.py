"""The README's Python example runs as printed (with fewer epochs)."""
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_readme_python_example_runs(capsys):
    text = (ROOT / "README.md").read_text()
    code = re.search(r"```python\n(.*?)```", text, re.S).group(1)
    assert "StopRule(epochs=200" in code
    exec(compile(code.replace("epochs=200", "epochs=5"), "README.md", "exec"), {})
    out = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in out] == ["fixed", "float"]
