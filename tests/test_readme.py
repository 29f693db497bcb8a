"""The README's Python example runs as printed (with fewer epochs)."""
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_readme_python_example_runs(capsys):
    text = (ROOT / "README.md").read_text().split("\n## Python\n", 1)[1]
    code = re.search(r"```python\n(.*?)```", text, re.S).group(1)
    assert "StopRule(epochs=200" in code
    exec(compile(code.replace("epochs=200", "epochs=5"), "README.md", "exec"), {})
    out = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in out] == ["fixed", "float"]


import pytest  # noqa: E402

# the README sections the UX lane handed over (issue 12); until they are pasted these tests skip, saying so
SECTIONS = ("## Install", "## Your own data", "## scikit-learn", "## Use the core in your firmware")


def section(name: str) -> str:
    text = (ROOT / "README.md").read_text()
    if name not in text:
        pytest.skip(f"README section {name!r} not pasted yet")
    body = text.split(name, 1)[1]
    return body.split("\n## ", 1)[0]


@pytest.mark.parametrize("name", ["## Your own data", "## scikit-learn"])
def test_readme_section_python_runs(name, capsys):
    for code in re.findall(r"```python\n(.*?)```", section(name), re.S):
        exec(compile(code, f"README.md {name}", "exec"), {})
    out = capsys.readouterr().out
    assert out.strip()
    if name == "## scikit-learn":
        got = dict(line.split() for line in out.splitlines())
        assert set(got) == {"fixed", "float"} and all(0.6 < float(v) <= 1 for v in got.values())


def test_readme_commands_name_real_flags_and_files():
    from edgebp.cli import build_parser
    train = build_parser()._subparsers._group_actions[0].choices["train"]
    flags = {s for a in train._actions for s in a.option_strings}
    for line in re.findall(r"^edgebp train .*$", section("## Your own data"), re.M):
        for f in re.findall(r"(--[a-z][a-z-]*)", line.split("#")[0]):
            assert f in flags, (f, line)
    fw = section("## Use the core in your firmware")
    assert "edgebp::core" in fw and "cmake/arm-none-eabi.cmake" in fw and "make arduino" in fw
    for f in ("CMakeLists.txt", "cmake/arm-none-eabi.cmake", "library.json", "library.properties", "examples/c/xor.c"):
        assert (ROOT / f).is_file(), f
    assert "edgebp --version" in section("## Install")
