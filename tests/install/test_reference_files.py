"""launchd/ holds reference renderings: byte for byte what the installer writes for an example.

The example is user alice (uid 501) with `lanes` installed at ~/.local/bin/lanes, running
`lanes install --lanes 4` with Ollama.app on macOS and ollama.service on Linux. To refresh
the files after changing a renderer: `.venv/bin/python -m tests.install.test_reference_files`.
"""

from __future__ import annotations

import plistlib
from pathlib import Path

from proxy.install.service import InstallOptions, Target, WriteFile, shell_line
from proxy.install.service_plan import Launch, Situation, plan_install

REPO = Path(__file__).resolve().parents[2]
OPTIONS = InstallOptions(lanes=4)
MAC = Target(
    platform="darwin",
    home=Path("/Users/alice"),
    uid=501,
    lanes_exe=Path("/Users/alice/.local/bin/lanes"),
    config_path=Path("/Users/alice/Library/Application Support/ollama-lanes/config.toml"),
)
LINUX = Target(
    platform="linux",
    home=Path("/home/alice"),
    uid=1000,
    lanes_exe=Path("/home/alice/.local/bin/lanes"),
    config_path=Path("/home/alice/.config/ollama-lanes/config.toml"),
)
# reference file name -> the path the installer writes it to for the example
FILES = {
    "com.ollama-lanes.proxy.plist": (MAC, MAC.proxy_plist),
    "com.ollama-lanes.ollama-env.plist": (MAC, MAC.env_plist),
    "ollama-lanes.service": (LINUX, LINUX.unit_path),
    "ollama-override.conf": (LINUX, LINUX.dropin_path),
}


def example_writes(target: Target) -> dict[Path, WriteFile]:
    """The files the example install plan writes, by path."""
    launch: Launch = "app" if target.platform == "darwin" else "systemd"
    plan = plan_install(target, OPTIONS, Situation(launch=launch))
    return {a.path: a for a in plan.actions if isinstance(a, WriteFile)}


def rendered() -> dict[str, bytes]:
    """The reference files as the installer renders them now."""
    return {name: example_writes(t)[path].content for name, (t, path) in FILES.items()}


class TestReferenceFiles:
    def test_files_equal_the_installers_rendering(self) -> None:
        """Each file in launchd/ is exactly what the example install writes."""
        for name, content in rendered().items():
            assert (REPO / "launchd" / name).read_bytes() == content, f"refresh launchd/{name}"

    def test_dry_run_prints_each_file_verbatim(self) -> None:
        """--dry-run prints every file it would write inside a here-document, unchanged."""
        for name, (target, path) in FILES.items():
            printed = shell_line(example_writes(target)[path])
            assert (REPO / "launchd" / name).read_text() in printed

    def test_plists_parse_with_absolute_programs(self) -> None:
        """Both reference plists load with plistlib and name their programs by absolute path."""
        for name in ("com.ollama-lanes.proxy.plist", "com.ollama-lanes.ollama-env.plist"):
            agent = plistlib.loads((REPO / "launchd" / name).read_bytes())
            assert agent["Label"] == name.removesuffix(".plist")
            assert Path(agent["ProgramArguments"][0]).is_absolute()


if __name__ == "__main__":  # pragma: no cover
    for file_name, data in rendered().items():
        (REPO / "launchd" / file_name).write_bytes(data)
        print(f"wrote launchd/{file_name}")
