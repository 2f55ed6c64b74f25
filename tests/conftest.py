import pytest
from live_server import start_server, stop_server


@pytest.fixture(scope="session")
def live_server(tmp_path_factory):
    """One real server for the session: loading Whisper costs seconds, so it is shared."""
    server = start_server(tmp_path_factory.mktemp("server"))
    yield server
    stop_server(server)
