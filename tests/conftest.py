import pytest
from live_server import start_server, stop_server


@pytest.fixture(scope="session")
def live_server(tmp_path_factory):
    """One real server for the session: loading Whisper costs seconds, so it is shared."""
    server = start_server(tmp_path_factory.mktemp("server"))
    yield server
    stop_server(server)


@pytest.fixture
def redis_prefix():
    """A Redis key prefix of this test's own (bus events, ASR queue), deleted afterwards."""
    import uuid

    import redis

    prefix = f"test-{uuid.uuid4().hex[:8]}"
    yield prefix
    client = redis.Redis(host="127.0.0.1", port=6379)
    for key in client.scan_iter(f"{prefix}:*"):
        client.delete(key)
