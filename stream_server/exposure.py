"""What this server leaves open, and whether it may start like that.

Production mode (`STREAM_SERVER_MODE=production`) closes every door that has no credential: a
carrier endpoint without its secret refuses every stream, the API without a token or user
refuses every request. Dev mode leaves them open, says so loudly at start, and refuses to
listen on anything but loopback while one is open: a laptop demo must not become a public,
unauthenticated archive of call recordings by a changed `--host`.
"""

from __future__ import annotations

import ipaddress
import logging
from dataclasses import dataclass

from .config import Settings

log = logging.getLogger("stream_server")

# Carrier -> (the setting holding its credential, the endpoint it guards).
CARRIER_CREDENTIALS = {
    "twilio": ("twilio_auth_token", "/v1/media/twilio"),
    "telnyx": ("telnyx_stream_token", "/v1/media/telnyx"),
    "vonage": ("vonage_token", "/v1/media/vonage"),
    "audiohook": ("audiohook_api_key", "/v1/media/audiohook"),
    "stream": ("stream_token", "/v1/media/stream"),
}
UNCONFIGURED = "carrier authentication is not configured on this server (production mode)"


class UnsafeStartup(RuntimeError):
    """The configuration would expose calls to anyone who can reach the server."""


@dataclass(frozen=True)
class OpenDoor:
    what: str  # the endpoint or listener
    fix: str  # the setting that closes it


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to anything


def carrier_unconfigured(settings: Settings, carrier: str) -> bool:
    """Production mode and no credential for this carrier: its streams are refused."""
    name, _ = CARRIER_CREDENTIALS[carrier]
    return settings.mode == "production" and not getattr(settings, name)


def open_doors(settings: Settings, has_users: bool) -> list[OpenDoor]:
    """Everything that answers without a credential under this configuration."""
    doors = []
    if not settings.api_token and not has_users:
        doors.append(OpenDoor("REST API, console and supervisor feed",
                              "STREAM_SERVER_API_TOKEN, or `stream-server users add` + `tokens create`"))
    for setting, endpoint in CARRIER_CREDENTIALS.values():
        if not getattr(settings, setting):
            doors.append(OpenDoor(endpoint, f"STREAM_SERVER_{setting.upper()}"))
    if not (settings.webrtc_token or settings.api_token):
        doors.append(OpenDoor("/v1/webrtc/offer", "STREAM_SERVER_WEBRTC_TOKEN"))
    if settings.audiosocket_port and settings.audiosocket_allow.strip() == "*":
        doors.append(OpenDoor(f"AudioSocket port {settings.audiosocket_port} (any peer)", "STREAM_SERVER_AUDIOSOCKET_ALLOW"))
    return doors


def listen_addresses(settings: Settings) -> list[str]:
    hosts = [settings.host]
    if settings.audiosocket_port:
        hosts.append(settings.audiosocket_host)
    return hosts


def refusal(settings: Settings, has_users: bool) -> str | None:
    """Why this configuration must not start (None: it may): an exposed dev server, or a
    production AudioSocket open to any peer."""
    if settings.mode == "production":
        if settings.audiosocket_port and settings.audiosocket_allow.strip() == "*":
            return ("production mode: STREAM_SERVER_AUDIOSOCKET_ALLOW=* lets any peer stream calls; "
                    "list the Asterisk hosts (AudioSocket has no credentials)")
        return None
    doors = open_doors(settings, has_users)
    exposed = [host for host in listen_addresses(settings) if not is_loopback(host)]
    if exposed and doors:
        listed = "; ".join(f"{d.what} (set {d.fix})" for d in doors)
        return (f"dev mode refuses to listen on {', '.join(exposed)} while these are open to anyone: {listed}. "
                "Configure them, or set STREAM_SERVER_MODE=production, or listen on 127.0.0.1.")
    return None


def check_startup(settings: Settings, has_users: bool) -> list[OpenDoor]:
    """Raise UnsafeStartup (see `refusal`), else log what is open (dev) or refusing everyone
    (production). Returns the open doors (for the console's dev-mode banner and tests)."""
    reason = refusal(settings, has_users)
    if reason:
        raise UnsafeStartup(reason)
    doors = open_doors(settings, has_users)
    if settings.mode == "production":
        for door in doors:
            log.warning("production mode: %s refuses everyone until %s is set", door.what, door.fix)
    elif doors:
        log.warning("*** DEV MODE: no authentication on %s. Loopback only; never use this for real calls "
                    "(docs/security.md). ***", ", ".join(d.what for d in doors))
    return doors
