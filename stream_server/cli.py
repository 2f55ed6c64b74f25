"""`stream-server` command line: serve | simulate | analyze | classify-text | models | db | verify."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
import tempfile
from dataclasses import asdict
from pathlib import Path

from pydantic import ValidationError
from pydantic_settings import SettingsError

from .config import Settings
from .simulator import PROTOCOLS


def _parse_params(pairs: list[str]) -> dict[str, str]:
    params = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise SystemExit(f"--param expects key=value, got {pair!r}")
        params[key] = value
    return params


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from .app import create_app

    overrides = {k: v for k, v in (("host", args.host), ("port", args.port), ("data_dir", args.data_dir),
                                   ("role", args.role)) if v}
    try:
        settings = Settings(**overrides)
    except (ValidationError, SettingsError) as exc:  # SettingsError: a JSON setting that isn't JSON
        raise SystemExit(f"stream-server serve: {exc}") from None
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        ws_max_size=settings.max_message_bytes,
        log_level=settings.log_level.lower(),
    )
    return 0


def cmd_simulate(args: argparse.Namespace) -> int:
    from .media.audio_files import AudioFileError, read_telephone_ulaw
    from .simulator import SimulatedCall, default_url, stream_call

    if args.agent and len(args.agent) != len(args.files):
        raise SystemExit("give one --agent per FILE (or none)")
    params = _parse_params(args.param)
    try:
        calls = [
            SimulatedCall(
                caller=read_telephone_ulaw(Path(f)),
                agent=read_telephone_ulaw(Path(args.agent[i])) if args.agent else None,
                parameters=params,
            )
            for i, f in enumerate(args.files)
        ]
    except AudioFileError as exc:
        raise SystemExit(str(exc)) from None

    url = args.url or default_url(args.protocol)

    async def run() -> list:
        return await asyncio.gather(
            *(stream_call(url, c, args.speed, args.drop_after, args.auth_token, args.protocol) for c in calls),
            return_exceptions=True,
        )

    failed = 0
    for path, result in zip(args.files, asyncio.run(run())):
        if isinstance(result, BaseException):
            failed += 1
            print(json.dumps({"file": path, "error": f"{type(result).__name__}: {result}"}), flush=True)
        else:
            print(json.dumps({"file": path, **asdict(result)}), flush=True)
    return 1 if failed else 0


def cmd_analyze(args: argparse.Namespace) -> int:
    from .analysis import analyze_file
    from .media.audio_files import AudioFileError

    settings = Settings(**({"language": args.language} if args.language else {}))
    logging.basicConfig(level=logging.WARNING)
    with tempfile.TemporaryDirectory() as tmp:
        settings = settings.model_copy(update={"data_dir": Path(tmp), "database_url": None})
        try:
            events = asyncio.run(analyze_file(Path(args.file), settings, Path(args.agent) if args.agent else None))
        except AudioFileError as exc:
            raise SystemExit(str(exc)) from None
    for event in events:
        if args.json:
            print(json.dumps(event, ensure_ascii=False))
        elif event["type"] == "transcript.final":
            top = max(event["scores"].items(), key=lambda kv: kv[1], default=("-", 0.0))
            flag = " ABUSIVE" if event.get("abusive") else ""
            print(f"[{event['start']:7.2f}-{event['end']:7.2f}] {event['track']:<6} {event['text']}"
                  f"  ({top[0]} {top[1]:.2f}){flag}")
        elif event["type"] == "alert":
            print(f"  ALERT {event['severity']} {event['category']} {event['score']:.2f}"
                  f" at {event['start']:.2f}-{event['end']:.2f}s")
    return 0


def cmd_classify_text(args: argparse.Namespace) -> int:
    from .app import load_classifier, session_options

    settings = Settings()
    classifier = load_classifier(settings)
    policy = session_options(settings, classifier).policy  # the thresholds the server alerts at
    for line in sys.stdin:
        text = line.rstrip("\n")
        if not text.strip():
            continue
        scores = classifier.score(text, args.lang)
        abusive = policy.is_abusive(scores)
        record = {
            "text": text,
            "abusive": abusive,
            "score": round(max(scores.values(), default=0.0), 4),
            "scores": {c: round(s, 4) for c, s in scores.items()},
        }
        print(json.dumps(record, ensure_ascii=False), flush=True)
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    from .asr.models import describe_models, resolve_model

    settings = Settings(**({"data_dir": args.data_dir} if args.data_dir else {}))
    if args.prepare:
        print(resolve_model(args.prepare, settings.resolved_model_cache_dir))
        return 0
    for info in describe_models(settings.resolved_model_cache_dir):
        print(json.dumps(asdict(info)))
    return 0


def cmd_db(args: argparse.Namespace) -> int:
    from sqlalchemy.exc import SQLAlchemyError

    from .store.migrate import SchemaNotCurrent, history, schema_state, upgrade
    from .store.repository import make_engine

    if args.action == "history":
        print("\n".join(history()))
        return 0
    settings = Settings(**({"data_dir": args.data_dir} if getattr(args, "data_dir", None) else {}))
    if settings.database_url is None:  # the default SQLite file lives in the data dir
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    engine = make_engine(settings.resolved_database_url)
    shown = engine.url.render_as_string(hide_password=True)
    try:
        state = schema_state(engine)
        if args.action == "upgrade":
            before, state = state, upgrade(engine, args.revision)
            print(f"{shown}: was {before.describe()}")
    except (SchemaNotCurrent, SQLAlchemyError) as exc:
        raise SystemExit(f"{shown}: {exc}") from None
    finally:
        engine.dispose()
    print(f"{shown}: {state.describe()}")
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    import os

    from .evidence.integrity import EvidenceKeyError, read_key_file
    from .evidence.verify import verify_package

    try:  # the environment directly, not Settings: checking a file needs no server configuration
        key = read_key_file(args.key_file) if args.key_file else os.environ.get("STREAM_SERVER_EVIDENCE_KEY") or None
    except EvidenceKeyError as exc:
        raise SystemExit(f"stream-server verify: {exc}") from None
    result = verify_package(args.export, key)
    for problem in result.problems:
        print(problem)
    print(result.summary())
    return 0 if result.ok else 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="stream-server", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("serve", help="run the server")
    p.add_argument("--host", help="default 127.0.0.1 (STREAM_SERVER_HOST)")
    p.add_argument("--port", type=int, help="default 8080 (STREAM_SERVER_PORT)")
    p.add_argument("--data-dir", type=Path, help="default ./data (STREAM_SERVER_DATA_DIR)")
    p.add_argument("--role", choices=["all", "ingest", "asr", "gateway"],
                   help="default all: one process does everything; the others split it over nodes that share "
                        "Redis (STREAM_SERVER_BUS) and the database (STREAM_SERVER_ROLE, docs/deployment.md)")
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("simulate", help="stream audio files into a server as a carrier would")
    p.add_argument("files", nargs="+", metavar="FILE", help="caller audio; several files = concurrent calls")
    p.add_argument("--protocol", choices=list(PROTOCOLS), default="twilio", help="carrier wire format")
    p.add_argument("--url", help="media endpoint (default: the protocol's path on 127.0.0.1:8080; "
                   "audiosocket: tcp://127.0.0.1:9092)")
    p.add_argument("--agent", action="append", default=[], metavar="FILE", help="agent audio, one per FILE")
    p.add_argument("--param", action="append", default=[], metavar="K=V",
                   help="call metadata as the carrier carries it (Twilio customParameters, ...)")
    p.add_argument("--speed", type=float, default=1.0, help="1.0 = real time")
    p.add_argument("--drop-after", type=float, metavar="SECONDS", help="cut the connection without a goodbye")
    p.add_argument("--auth-token", help="the carrier's credential (Twilio: auth token to sign with; "
                   "see docs/carriers.md for the others)")
    p.set_defaults(func=cmd_simulate)

    p = sub.add_parser("analyze", help="print the scored transcript of a recording")
    p.add_argument("file", metavar="FILE", help="stereo = caller/agent; .ulaw = 8 kHz μ-law caller")
    p.add_argument("--agent", metavar="FILE", help="separate agent track")
    p.add_argument("--language", help="force a language (default: auto among STREAM_SERVER_LANGUAGES)")
    p.add_argument("--json", action="store_true", help="one JSON event per line")
    p.set_defaults(func=cmd_analyze)

    p = sub.add_parser("classify-text", help="score lines from stdin, one JSON object per line")
    p.add_argument("--lang", choices=["ja", "en"], help="language hint")
    p.set_defaults(func=cmd_classify_text)

    p = sub.add_parser("models", help="list offline ASR models; --prepare NAME assembles one")
    p.add_argument("--prepare", metavar="NAME")
    p.add_argument("--data-dir", type=Path)
    p.set_defaults(func=cmd_models)

    p = sub.add_parser("verify", help="check an evidence or training export (ZIP) against its manifest, "
                       "the seal taken at call end and its signature; exit 1 if anything differs")
    p.add_argument("export", type=Path, metavar="EXPORT.zip")
    p.add_argument("--key-file", type=Path, metavar="PATH",
                   help="the server's evidence key (<data_dir>/evidence.key); default STREAM_SERVER_EVIDENCE_KEY, "
                        "else the signature is not checked")
    p.set_defaults(func=cmd_verify)

    p = sub.add_parser("db", help="database schema: upgrade | current | history (STREAM_SERVER_DATABASE_URL)")
    p.set_defaults(func=cmd_db)
    database = argparse.ArgumentParser(add_help=False)
    database.add_argument("--data-dir", type=Path, help="for the default SQLite database (STREAM_SERVER_DATA_DIR)")
    actions = p.add_subparsers(dest="action", required=True)
    upgrade = actions.add_parser("upgrade", parents=[database],
                                 help="migrate the schema (a pre-migration database is stamped first)")
    upgrade.add_argument("revision", nargs="?", default="head", help="default: head")
    actions.add_parser("current", parents=[database], help="the database's revision")
    actions.add_parser("history", help="the migrations this version ships, newest first")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
