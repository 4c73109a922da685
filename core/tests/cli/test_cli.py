"""The CLI end to end: listings with --json, one-line errors with exit codes, broken plugins."""

from __future__ import annotations

import json


def test_help_lists_core_commands(cli):
    result = cli("--help")
    assert result.returncode == 0
    for command in ("init", "build", "train", "deploy", "predict", "runs", "plugins", "config",
                    "doctor"):
        assert command in result.stdout


def test_version_shows_core(cli):
    result = cli("--version")
    assert result.returncode == 0
    assert result.stdout.splitlines()[0].startswith("mldock-core ")


def test_plugins_list_json_shape(cli):
    result = cli("plugins", "list", "--all", "--json")
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    by_name = {row["name"]: row for row in rows}
    for row in rows:
        assert {"name", "distribution", "version", "status", "provides", "error"} <= set(row)
    assert by_name["local-storage"]["provides"] == {"storage": ["local"]}
    assert by_name["sqlite-tracking"]["status"] == "active"


def test_plugins_list_without_all_hides_builtins(cli):
    rows = json.loads(cli("plugins", "list", "--json").stdout)
    assert all(not row["builtin"] for row in rows)


def test_broken_plugin_never_breaks_a_command(cli, broken_plugin_path):
    env = {"PYTHONPATH": broken_plugin_path}
    result = cli("plugins", "list", "--json", env=env)
    assert result.returncode == 0
    row = next(r for r in json.loads(result.stdout) if r["name"] == "broken")
    assert row["status"] == "failed" and row["distribution"] == "mldock-broken"
    assert "no_such_module_anywhere" in row["error"]
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and "mldock plugins doctor" in warnings[0]
    assert cli("--help", env=env).returncode == 0


def test_plugins_doctor_shows_traceback_and_fails(cli, broken_plugin_path):
    result = cli("plugins", "doctor", env={"PYTHONPATH": broken_plugin_path})
    assert result.returncode == 1
    assert "Traceback" in result.stdout and "FAILED plugin 'broken'" in result.stdout


def test_plugins_doctor_clean(cli):
    result = cli("plugins", "doctor")
    assert result.returncode == 0 and "0 problem(s)" in result.stdout


def test_disabled_plugin_status(cli, broken_plugin_path):
    result = cli("plugins", "list", "--json",
                 env={"PYTHONPATH": broken_plugin_path, "MLDOCK_DISABLE_PLUGINS": "broken"})
    row = next(r for r in json.loads(result.stdout) if r["name"] == "broken")
    assert row["status"] == "disabled" and result.stderr == ""


def test_strict_plugins_reraise(cli, broken_plugin_path):
    result = cli("plugins", "list",
                 env={"PYTHONPATH": broken_plugin_path, "MLDOCK_STRICT_PLUGINS": "1"})
    assert result.returncode != 0 and "no_such_module_anywhere" in result.stderr


def test_config_show_json_with_env(cli, project):
    result = cli("--env", "big", "config", "show", "--json", cwd=project)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["env"] == "big" and data["environments"] == ["big"]
    assert data["config"]["hyperparameters"] == {"n_estimators": 500}
    assert data["config"]["deploy"]["deployer"] == "local"


def test_config_show_toml(cli, project):
    result = cli("config", "show", "--env", "big", cwd=project)
    assert result.returncode == 0 and "n_estimators = 500" in result.stdout


def test_config_validate_ok(cli, project):
    result = cli("config", "validate", cwd=project)
    assert result.returncode == 0 and "valid" in result.stdout and "big" in result.stdout


def test_bad_config_is_one_line_exit_2(cli, project):
    """A deployer whose package is not installed (mldock-azure is blocked: the workspace has it)."""
    (project / "mldock.toml").write_text(
        (project / "mldock.toml").read_text() + "\n[env.az.deploy]\ndeployer = 'azureml'\n")
    result = cli("config", "validate", cwd=project, env={"MLDOCK_DISABLE_PLUGINS": "azure"})
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0
    assert result.stderr.startswith("error: mldock.toml: env.az.deploy.deployer: unknown deployer")
    assert "pip install mldock-azure" in result.stderr and "Traceback" not in result.stderr


def test_unknown_env_exit_2(cli, project):
    result = cli("--env", "nope", "config", "show", cwd=project)
    assert result.returncode == 2 and "no environment 'nope'" in result.stderr


def test_no_project_config_is_clear(cli, tmp_path):
    result = cli("config", "show", cwd=tmp_path)
    assert result.returncode == 2 and "mldock init" in result.stderr
    assert "Traceback" not in result.stderr


def test_doctor_reports_each_check_json(cli, project):
    result = cli("doctor", "--json", cwd=project)
    checks = {c["name"]: c for c in json.loads(result.stdout)}
    assert checks["config"]["ok"] is True
    assert "docker engine" in checks and "plugins" in checks
    assert any(name.startswith("storage local") for name in checks)
    assert result.returncode == (0 if all(c["ok"] for c in checks.values()) else 1)


def test_unknown_command_suggests(cli):
    result = cli("plugin")
    assert result.returncode == 2 and "plugins" in result.stderr
