"""Every setting is documented where users look for it."""

from pathlib import Path

from stream_server.config import Settings

README = (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")


def test_every_setting_is_in_the_readme():
    for name in Settings.model_fields:
        assert f"`STREAM_SERVER_{name.upper()}`" in README, name


def test_readme_opens_with_the_two_commands():
    block = README.split("```")[1]
    assert "make run" in block and "make test" in block


def test_settings_come_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("STREAM_SERVER_PORT", "9999")
    monkeypatch.setenv("STREAM_SERVER_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("STREAM_SERVER_LANGUAGES", "ja, en ,")
    settings = Settings()
    assert settings.port == 9999
    assert settings.resolved_database_url == f"sqlite:///{tmp_path / 'stream_server.db'}"
    assert settings.language_list == ("ja", "en")
