"""`api_url_may_be_set`: no Prefect import where no setting can name a server, and
Prefect asked wherever one may (a wrong "none" would hide the monitor's buttons)."""

from __future__ import annotations

import pytest

from flows.cli._prefect_check import api_url_may_be_set


@pytest.fixture
def bare(tmp_path, monkeypatch):
    """A folder with no settings files, a fresh Prefect home, no API URL anywhere."""
    for name in ("PREFECT_API_URL", "PREFECT_PROFILES_PATH"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PREFECT_HOME", str(tmp_path / "prefect-home"))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_no_setting_anywhere(bare):
    assert api_url_may_be_set() is False


def test_the_environment_in_any_case(bare, monkeypatch):
    monkeypatch.setenv("prefect_api_url", "http://127.0.0.1:4200/api")
    assert api_url_may_be_set() is True


@pytest.mark.parametrize("name", [".env", "prefect.toml"])
def test_a_settings_file_in_the_folder(bare, name):
    (bare / name).write_text("")
    assert api_url_may_be_set() is True


def test_pyproject_with_and_without_a_prefect_table(bare):
    pyproject = bare / "pyproject.toml"
    pyproject.write_text('[project]\nname = "x"\ndependencies = ["prefect>=3.8"]\n')
    assert api_url_may_be_set() is False
    pyproject.write_text('[tool.prefect.api]\nurl = "http://127.0.0.1:4200/api"\n')
    assert api_url_may_be_set() is True
    pyproject.write_text("[tool.prefect\n")  # Prefect's to refuse
    assert api_url_may_be_set() is True


def test_a_profile_naming_a_url(bare, monkeypatch):
    home = bare / "prefect-home"
    home.mkdir()
    (home / "profiles.toml").write_text(
        'active = "x"\n[profiles.x]\nPREFECT_SERVER_EPHEMERAL_ENABLED = "true"\n'
    )
    assert api_url_may_be_set() is False
    (home / "profiles.toml").write_text('[profiles.y]\nprefect_api_url = "http://h:4200/api"\n')
    assert api_url_may_be_set() is True
    elsewhere = bare / "profiles-elsewhere.toml"
    elsewhere.write_text('[profiles.z]\nPREFECT_API_URL = "http://h:4200/api"\n')
    (home / "profiles.toml").unlink()
    monkeypatch.setenv("PREFECT_PROFILES_PATH", str(elsewhere))
    assert api_url_may_be_set() is True
