"""Install and uninstall plans: the config file is edited through its one writer, reversibly."""

from __future__ import annotations

import tomllib
from pathlib import Path

from proxy.install.service import InstallOptions, RemoveFile, Target, WriteConfig
from proxy.install.service_plan import Situation, plan_install, plan_uninstall

LINUX = Target(
    platform="linux",
    home=Path("/home/alice"),
    uid=1000,
    lanes_exe=Path("/home/alice/.local/bin/lanes"),
    config_path=Path("/home/alice/.config/ollama-lanes/config.toml"),
)


def config_actions(actions: tuple[object, ...]) -> list[object]:
    """The actions of a plan that touch the config file."""
    return [a for a in actions if getattr(a, "path", None) == LINUX.config_path]


class TestConfigFile:
    def test_install_writes_it_with_the_config_writer(self) -> None:
        """The install plan's one config action is a WriteConfig with the managed [serve] lines;
        the proxy's lanes are "auto": it follows the NUM_PARALLEL the plan gives Ollama."""
        plan = plan_install(LINUX, InstallOptions(lanes=4), Situation(launch="systemd"))
        [action] = config_actions(plan.actions)
        assert isinstance(action, WriteConfig)
        assert b'[serve]  # lanes install\nlanes = "auto"  # lanes install\n' in action.content

    def test_a_hand_set_lanes_is_set_aside_and_restored(self) -> None:
        """A hand-set `lanes = 3` (which would cap every model) becomes "auto" while installed,
        kept as a comment, and is back after uninstall."""
        before = "[serve]\nlanes = 3\nmax_queue = 9\n"
        installed = plan_install(LINUX, InstallOptions(lanes=4), Situation(config_text=before))
        [written] = config_actions(installed.actions)
        assert isinstance(written, WriteConfig)
        assert tomllib.loads(written.content.decode())["serve"]["lanes"] == "auto"
        assert b"# lanes install saved: lanes = 3\n" in written.content
        situation = Situation(config_text=written.content.decode())
        [restored] = config_actions(plan_uninstall(LINUX, situation).actions)
        assert restored == WriteConfig(LINUX.config_path, before.encode())

    def test_uninstall_restores_what_was_there(self) -> None:
        """The user's own file comes back as it was before the install."""
        installed = plan_install(
            LINUX, InstallOptions(lanes=4), Situation(config_text="[serve]\nlanes = 2\n")
        )
        [written] = config_actions(installed.actions)
        assert isinstance(written, WriteConfig)
        situation = Situation(config_text=written.content.decode())
        [restored] = config_actions(plan_uninstall(LINUX, situation).actions)
        assert restored == WriteConfig(LINUX.config_path, b"[serve]\nlanes = 2\n")

    def test_uninstall_removes_a_file_the_install_created(self) -> None:
        """A config file that held only the installer's lines is removed."""
        [written] = config_actions(
            plan_install(LINUX, InstallOptions(lanes=4), Situation()).actions
        )
        assert isinstance(written, WriteConfig)
        situation = Situation(config_text=written.content.decode())
        [removed] = config_actions(plan_uninstall(LINUX, situation).actions)
        assert removed == RemoveFile(LINUX.config_path)
