"""Every user command that takes a `reason` checks it with the one text rule (domain/text.py),
so a command added later cannot store a NUL, a bidi override or a 10 MB reason by forgetting it."""

from __future__ import annotations

import ast
from pathlib import Path

COMMANDS = Path(__file__).resolve().parents[2] / "domain" / "commands"


def commands_taking_a_reason() -> dict[str, bool]:
    found: dict[str, bool] = {}
    for path in sorted(COMMANDS.glob("*.py")):
        tree = ast.parse(path.read_text())
        for cls in (n for n in tree.body if isinstance(n, ast.ClassDef)):
            for fn in (n for n in cls.body if isinstance(n, ast.FunctionDef)):
                names = [a.arg for a in [*fn.args.args, *fn.args.kwonlyargs]]
                if "reason" not in names or fn.name.startswith("_"):
                    continue
                called = {
                    node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", "")
                    for node in ast.walk(fn)
                    if isinstance(node, ast.Call)
                }
                found[f"{path.stem}.{fn.name}"] = "check_reason" in called
    return found


def test_every_command_taking_a_reason_checks_it() -> None:
    commands = commands_taking_a_reason()
    assert len(commands) >= 20  # the scan finds the commands at all
    assert [name for name, checked in commands.items() if not checked] == []
