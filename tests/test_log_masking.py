"""Tokens and phone numbers are masked in every log line, uvicorn's access log included."""

from __future__ import annotations

import asyncio
import logging

import httpx
import pytest
import websockets
from live_server import API_TOKEN

from stream_server.log_masking import install, mask


@pytest.mark.parametrize("line, secret", [
    ('"GET /v1/supervisor/ws?token=s3cret-value&call_id=c1 HTTP/1.1" 101', "s3cret-value"),
    ("GET /v1/media/vonage?api_key=k3y HTTP/1.1", "k3y"),
    ("Authorization: Bearer sst_abcdefghijklmnop", "abcdefghijklmnop"),
    ("presented sst_abcdefghijklmnop", "abcdefghijklmnop"),
    ("Authorization: Basic dXNlcjpwYXNz", "dXNlcjpwYXNz"),
])
def test_credentials_are_replaced(line, secret):
    masked = mask(line)
    assert secret not in masked and "***" in masked


@pytest.mark.parametrize("line, number, shown", [
    ("caller +81312345678 again", "+81312345678", "*******5678"),
    ("GET /v1/calls?phone=%2B819012345678 HTTP/1.1", "819012345678", "%2B********5678"),
    ("折り返し 090-1234-5678 まで", "090-1234-5678", "***-****-5678"),
    ("national 0312345678", "0312345678", "******5678"),
])
def test_phone_numbers_keep_only_their_last_four_digits(line, number, shown):
    masked = mask(line)
    assert number not in masked and shown in masked


def test_ids_times_and_addresses_are_left_alone():
    line = "call c3ffbfa61a634c1f896c18635d1ba367 ended after 1796427326.1346579 s from 127.0.0.1:8080"
    assert mask(line) == line


def test_installed_factory_masks_records_of_any_logger(caplog):
    original = logging.getLogRecordFactory()
    try:
        install()
        install()  # idempotent: one layer of masking
        with caplog.at_level(logging.INFO):
            logging.getLogger("uvicorn.access").info('%s - "GET %s" %d', "127.0.0.1", "/x?token=abc&phone=1", 200)
            logging.getLogger("stream_server.x").warning("caller %s", "+81312345678")
    finally:
        logging.setLogRecordFactory(original)
    assert [r.getMessage() for r in caplog.records[-2:]] == [
        '127.0.0.1 - "GET /x?token=***&phone=1" 200', "caller +*******5678"]


def test_uvicorns_access_formatter_still_reads_the_masked_arguments():
    """uvicorn's AccessFormatter unpacks record.args itself: masking must leave them a tuple."""
    from uvicorn.logging import AccessFormatter

    original = logging.getLogRecordFactory()
    try:
        install()
        record = logging.getLogger("uvicorn.access").makeRecord(
            "uvicorn.access", logging.INFO, __file__, 1, '%s - "%s %s HTTP/%s" %d',
            ("127.0.0.1:5000", "GET", "/v1/calls?phone=%2B81312345678&token=abc", "1.1", 200), None)
    finally:
        logging.setLogRecordFactory(original)
    line = AccessFormatter('%(client_addr)s - "%(request_line)s" %(status_code)s', use_colors=False).format(record)
    assert line == '127.0.0.1:5000 - "GET /v1/calls?phone=%2B*******5678&token=*** HTTP/1.1" 200 OK'


def test_a_real_server_logs_neither_the_feed_token_nor_a_searched_number(live_server):
    number = "+81355550123"
    httpx.get(f"{live_server.http}/v1/calls", params={"phone": number},
              headers={"Authorization": f"Bearer {API_TOKEN}"}).raise_for_status()

    async def open_feed() -> None:
        async with websockets.connect(live_server.supervisor_url) as ws:
            await ws.recv()

    asyncio.run(open_feed())
    log = live_server.log()
    assert "/v1/supervisor/ws?token=***" in log  # the access log line is there, masked
    assert "Logging error" not in log  # ... and formatted: masking left uvicorn's arguments usable
    assert API_TOKEN not in log
    assert number[1:] not in log and "5550123" not in log
