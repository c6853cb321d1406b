"""Fake external commands (launchctl, systemctl, lsof, ...) and test machines that use them."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from proxy.machine.machine import Machine

__all__ = ["FAKE_NAMES", "Fakes"]

FAKE_NAMES = ("launchctl", "systemctl", "open", "osascript", "brew", "pgrep", "lsof", "lanes")

# Each fake appends its argv to $FAKE_LOG as one JSON line, then answers from the first rule
# in $FAKE_DIR/rules.json whose argv is a prefix of its own (stdout, exit status, and how many
# times the rule may answer); with no rule it prints nothing and exits 0.
_FAKE = """\
#!{python}
import json, os, sys
argv = [os.path.basename(sys.argv[0]), *sys.argv[1:]]
with open(os.environ["FAKE_LOG"], "a") as log:
    log.write(json.dumps(argv) + "\\n")
folder = os.environ["FAKE_DIR"]
rules = json.load(open(os.path.join(folder, "rules.json")))
used_path = os.path.join(folder, "used.json")
used = json.load(open(used_path)) if os.path.exists(used_path) else {{}}
for i, rule in enumerate(rules):
    if argv[: len(rule["argv"])] != rule["argv"]:
        continue
    times = rule.get("times")
    if times is not None and used.get(str(i), 0) >= times:
        continue
    used[str(i)] = used.get(str(i), 0) + 1
    json.dump(used, open(used_path, "w"))
    sys.stdout.write(rule.get("stdout", ""))
    sys.exit(rule.get("rc", 0))
"""


class Fakes:
    """A folder of fake executables, their rules, and the log of their calls."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.bin = root / "bin"
        self.bin.mkdir()
        self.log = root / "calls.jsonl"
        self.log.touch()
        self.rules: list[dict[str, object]] = []
        self._save()
        script = _FAKE.format(python=sys.executable)
        for name in FAKE_NAMES:
            path = self.bin / name
            path.write_text(script)
            path.chmod(0o755)

    def _save(self) -> None:
        (self.root / "rules.json").write_text(json.dumps(self.rules))

    def answer(self, *argv: str, stdout: str = "", rc: int = 0, times: int | None = None) -> None:
        """Make the fake whose argv starts with `argv` print `stdout` and exit `rc`."""
        self.rules.append({"argv": list(argv), "stdout": stdout, "rc": rc, "times": times})
        self._save()

    def calls(self) -> list[list[str]]:
        """Every call so far, in order; then forget them."""
        lines = self.log.read_text().splitlines()
        self.log.write_text("")
        return [json.loads(line) for line in lines]

    def machine(self, platform: str, *, is_root: bool = True) -> Machine:
        """A machine for `platform` with home and /etc in the tmp folder, only fakes on PATH."""
        home = self.root / "home"
        config = (
            home / "Library" / "Application Support" / "ollama-lanes" / "config.toml"
            if platform == "darwin"
            else home / ".config" / "ollama-lanes" / "config.toml"
        )
        return Machine(
            platform=platform,
            home=home,
            uid=501,
            is_root=is_root,
            config_path=config,
            env={"PATH": str(self.bin), "FAKE_LOG": str(self.log), "FAKE_DIR": str(self.root)},
            etc_root=self.root / "etc",
            proc_root=self.root / "no-proc",
        )
