"""`stream-server` command line: serve | simulate | analyze | classify-text | models | db | verify | users | tokens |
purge | delete-caller | legal-hold."""

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


def _startup_refusal(settings: Settings) -> str | None:
    """Checked before uvicorn binds (the app checks again at start): an exposed dev server never listens."""
    from . import exposure

    if settings.mode == "dev" and all(exposure.is_loopback(h) for h in exposure.listen_addresses(settings)):
        return None  # loopback dev: nothing to refuse, no need to open the database here
    return exposure.refusal(settings, _access_store(settings).has_users())


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from .app import create_app

    overrides = {k: v for k, v in (("host", args.host), ("port", args.port), ("data_dir", args.data_dir),
                                   ("role", args.role)) if v}
    try:
        settings = Settings(**overrides)
    except (ValidationError, SettingsError) as exc:  # SettingsError: a JSON setting that isn't JSON
        raise SystemExit(f"stream-server serve: {exc}") from None
    from .http_timeouts import with_header_timeout

    if settings.log_mask:  # before any handler exists: uvicorn's access log is masked too
        from .log_masking import install

        install()
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    refused = _startup_refusal(settings)
    if refused:
        raise SystemExit(f"stream-server serve: {refused}")
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        ws_max_size=settings.max_message_bytes,
        log_level=settings.log_level.lower(),
        # Idle keep-alive connections, headers that never end (slow loris: uvicorn alone has no
        # deadline for them) and connections piling up: docs/operations.md, "Hostile input".
        timeout_keep_alive=settings.http_keep_alive_timeout_s,
        http=with_header_timeout(settings.http_header_timeout_s) if settings.http_header_timeout_s else "auto",
        limit_concurrency=settings.http_limit_concurrency or None,
        timeout_graceful_shutdown=settings.http_graceful_shutdown_s or None,
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


def _access_store(settings: Settings):
    """The users/tokens store of STREAM_SERVER_DATABASE_URL (or the data dir's SQLite file)."""
    from .store.access import AccessStore
    from .store.repository import CallStore

    if settings.database_url is None:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    return AccessStore(CallStore(settings.resolved_database_url, settings.database_auto_migrate))


def _operator() -> str:
    """Who ran a CLI change, for the audit log: the local account (the CLI needs database access)."""
    import getpass

    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


def _print_rows(rows: list[dict], columns: list[str], as_json: bool) -> None:
    if as_json:
        for row in rows:
            print(json.dumps(row, ensure_ascii=False))
        return
    print("\t".join(columns))
    for row in rows:
        print("\t".join("-" if row.get(c) is None else str(row.get(c)) for c in columns))


def cmd_users(args: argparse.Namespace) -> int:
    from .store.access import AccessError

    store = _access_store(Settings(**({"data_dir": args.data_dir} if args.data_dir else {})))
    try:
        if args.action == "add":
            user = store.add_user(args.name, args.role, args.tenant, args.team)
            store.record(_operator(), "admin", "user.add", detail={"user": user["name"], "role": user["role"],
                                                                   "tenant": user["tenant"], "team": user["team"]})
            print(f"added {user['name']} ({user['role']}, tenant {user['tenant'] or '*'}, team {user['team'] or '*'}); "
                  f"give them a token: stream-server tokens create {user['name']}")
        elif args.action == "disable":
            store.disable_user(args.name)
            store.record(_operator(), "admin", "user.disable", detail={"user": args.name})
            print(f"disabled {args.name}: their tokens no longer work")
        else:
            _print_rows(store.list_users(), ["name", "role", "tenant", "team", "created_at", "disabled_at"], args.json)
    except AccessError as exc:
        raise SystemExit(f"stream-server users: {exc}") from None
    return 0


def cmd_tokens(args: argparse.Namespace) -> int:
    from .store.access import AccessError

    store = _access_store(Settings(**({"data_dir": args.data_dir} if args.data_dir else {})))
    try:
        if args.action == "create":
            token, row = store.create_token(args.user, args.label, args.expires_days)
            store.record(_operator(), "admin", "token.create",
                         detail={"user": args.user, "token_id": row["id"], "prefix": row["prefix"]})
            print(f"token {row['id']} for {args.user} (shown once; only its hash is stored):", file=sys.stderr)
            print(token)
        elif args.action == "revoke":
            row = store.revoke_token(args.id)
            store.record(_operator(), "admin", "token.revoke", detail={"user": row["user"], "token_id": args.id})
            print(f"revoked token {args.id} ({row['prefix']}…) of {row['user']}")
        else:
            columns = ["id", "user", "label", "prefix", "created_at", "expires_at", "last_used_at", "revoked_at"]
            _print_rows(store.list_tokens(args.user), columns, args.json)
    except AccessError as exc:
        raise SystemExit(f"stream-server tokens: {exc}") from None
    return 0


def _retention_stores(args: argparse.Namespace, command: str):
    """(settings, CallStore, RecordingStore) of STREAM_SERVER_DATABASE_URL and the data dir, as the server has them."""
    from .store.recordings import RecordingStore
    from .store.repository import CallStore

    try:
        settings = Settings(**({"data_dir": args.data_dir} if args.data_dir else {}))
    except (ValidationError, SettingsError) as exc:
        raise SystemExit(f"stream-server {command}: {exc}") from None
    if settings.database_url is None:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    store = CallStore(settings.resolved_database_url, settings.database_auto_migrate)
    return settings, store, RecordingStore(settings.data_dir / "recordings")


def cmd_purge(args: argparse.Namespace) -> int:
    from .store.access import AccessStore
    from .store.retention import RetentionPolicy, purge_expired

    settings, store, recordings = _retention_stores(args, "purge")
    policy = RetentionPolicy.from_settings(settings)
    if policy.keeps_everything:
        print("every retention period is 0 (STREAM_SERVER_RETENTION_*_DAYS): everything is kept, nothing to purge")
        return 0
    report = purge_expired(store, recordings, policy, dry_run=args.dry_run)
    AccessStore(store).record(_operator(), "admin", "retention.purge", detail=report.audit_detail())
    print(json.dumps(report.as_dict(), ensure_ascii=False))
    print(report.summary(), file=sys.stderr)
    return 1 if report.failed else 0


def _confirmed(question: str) -> bool:
    if not sys.stdin.isatty():
        return False
    return input(f"{question} [y/N] ").strip().lower() in ("y", "yes")


def cmd_delete_caller(args: argparse.Namespace) -> int:
    from .store.access import AccessStore
    from .store.retention import delete_caller

    _, store, recordings = _retention_stores(args, "delete-caller")
    by = _operator()
    try:
        plan = delete_caller(store, recordings, args.number, by, dry_run=True)
    except ValueError as exc:
        raise SystemExit(f"stream-server delete-caller: {exc}") from None
    held = [h["call_id"] for h in plan.held]
    print(f"{len(plan.deleted)} calls of {args.number} to delete ({plan.removed['recordings']} recordings); "
          f"kept: {len(held)} on legal hold {held or ''}, {len(plan.active)} in progress {plan.active or ''}",
          file=sys.stderr)
    if not plan.deleted:
        return 0
    if not args.yes and not _confirmed("delete them?"):
        print("nothing deleted (pass --yes to delete without asking)", file=sys.stderr)
        return 1
    report = delete_caller(store, recordings, args.number, by)
    AccessStore(store).record(by, "admin", "caller.delete", detail=report.audit_detail())
    print(json.dumps(report.as_dict(), ensure_ascii=False))
    return 1 if report.failed else 0


def cmd_legal_hold(args: argparse.Namespace) -> int:
    from .store.access import AccessStore
    from .store.retention import UnknownCall, release_legal_hold, set_legal_hold

    _, store, _ = _retention_stores(args, "legal-hold")
    by = args.by or _operator()
    try:
        if args.release:
            result = release_legal_hold(store, args.call_id, by)
            action, detail = "legal_hold.release", {"released": result["released"]}
            print(f"released the legal hold on {args.call_id}" if result["released"]
                  else f"{args.call_id} was not on legal hold", file=sys.stderr)
        else:
            hold = set_legal_hold(store, args.call_id, by, args.reason)
            action, detail = "legal_hold.set", {"by": by, "reason": hold["reason"]}
            print(f"{args.call_id} is on legal hold: retention and deletion requests leave it alone", file=sys.stderr)
    except UnknownCall:
        raise SystemExit(f"stream-server legal-hold: no call {args.call_id!r}") from None
    except ValueError as exc:
        raise SystemExit(f"stream-server legal-hold: {exc}") from None
    AccessStore(store).record(_operator(), "admin", action, args.call_id, detail)
    return 0


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

    p = sub.add_parser("users", help="API users and their roles: add | list | disable (docs/security.md)")
    p.set_defaults(func=cmd_users)
    actions = p.add_subparsers(dest="action", required=True)
    add = actions.add_parser("add", parents=[database], help="a new user")
    add.add_argument("name")
    add.add_argument("--role", required=True, choices=["supervisor", "qa", "admin"])
    add.add_argument("--tenant", help="only this tenant's calls (metadata tenant); default every tenant")
    add.add_argument("--team", help="only this team's calls within the tenant (metadata team)")
    actions.add_parser("disable", parents=[database], help="stop a user's tokens").add_argument("name")
    actions.add_parser("list", parents=[database]).add_argument("--json", action="store_true")

    p = sub.add_parser("tokens", help="API tokens: create | list | revoke (stored hashed; shown once)")
    p.set_defaults(func=cmd_tokens)
    actions = p.add_subparsers(dest="action", required=True)
    create = actions.add_parser("create", parents=[database], help="print a new token for USER on stdout")
    create.add_argument("user")
    create.add_argument("--label", default="", help="what the token is for (console, a script...)")
    create.add_argument("--expires-days", type=float, help="default: never expires")
    listing = actions.add_parser("list", parents=[database])
    listing.add_argument("--user")
    listing.add_argument("--json", action="store_true")
    actions.add_parser("revoke", parents=[database]).add_argument("id", type=int)

    p = sub.add_parser("purge", help="remove what is past its retention period now (STREAM_SERVER_RETENTION_*; "
                       "docs/operations.md, \"Retention and deletion\")")
    p.add_argument("--dry-run", action="store_true", help="only report what would be removed")
    p.add_argument("--data-dir", type=Path, help="recordings and the default SQLite database (STREAM_SERVER_DATA_DIR)")
    p.set_defaults(func=cmd_purge)

    p = sub.add_parser("delete-caller", help="a caller's deletion request: remove every call of NUMBER, rows and "
                       "recordings, except calls on legal hold or in progress")
    p.add_argument("number", metavar="NUMBER", help="as stored, or with/without +, spaces, hyphens")
    p.add_argument("--yes", action="store_true", help="delete without asking")
    p.add_argument("--data-dir", type=Path, help="recordings and the default SQLite database (STREAM_SERVER_DATA_DIR)")
    p.set_defaults(func=cmd_delete_caller)

    p = sub.add_parser("legal-hold", help="keep a call past every retention period (--reason) or release it")
    p.add_argument("call_id", metavar="CALL_ID")
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--reason", help="why it is held (a case number, a complaint)")
    what.add_argument("--release", action="store_true", help="lift the hold")
    p.add_argument("--by", help="who asks for it (default: the local account)")
    p.add_argument("--data-dir", type=Path, help="recordings and the default SQLite database (STREAM_SERVER_DATA_DIR)")
    p.set_defaults(func=cmd_legal_hold)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
