"""The REST service's commands: ``serve`` (registered on the root command in :mod:`faceprint.cli`)
and the ``keys`` group (API keys: create, list, revoke)."""

from __future__ import annotations

import secrets
from pathlib import Path

import typer
from rich.markup import escape
from rich.table import Table

from faceprint.cli._common import DbOpt, VectorsOpt, cli_errors, err, out, print_json
from faceprint.errors import InputError

keys_app = typer.Typer(no_args_is_help=True, help="API keys of the REST service: create, list, revoke.")


def _store(db: str | Path | None):
    from faceprint.gallery.gallery import default_db_path
    from faceprint.gallery.store import open_store

    return open_store(db or default_db_path())


def serve(
    db: str | None = DbOpt,
    vectors: str | None = VectorsOpt,
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on (0.0.0.0 for every interface)."),
    port: int = typer.Option(8000, "--port", help="TCP port."),
    max_upload_mb: float = typer.Option(10.0, "--max-upload-mb", help="Largest accepted upload per file, in MiB."),
    no_auth: bool = typer.Option(False, "--no-auth", help="Serve without API keys (only allowed on a loopback address)."),
    log_level: str = typer.Option("info", "--log-level", help="debug, info, warning or error."),
    library: str | None = typer.Option(
        None,
        "--library",
        help="Photo library whose web UI to serve at / (default: $FACEPRINT_LIBRARY or library.db in your data directory, when it exists; loopback only).",
    ),
    no_ui: bool = typer.Option(False, "--no-ui", help="Do not serve the library's web UI."),
    allowed_host: list[str] = typer.Option(
        [],
        "--allowed-host",
        help="Another Host name the server may be reached under (on loopback only 127.0.0.1, localhost and [::1] are answered); repeat for several.",
    ),
) -> None:
    """Run the REST service (OpenAPI at /openapi.json, endpoints under /v1/) and the photo library's web UI at /."""
    from faceprint.gallery.gallery import default_db_path
    from faceprint.library.store import default_library_path
    from faceprint.postgres import is_postgres_url, redact_url
    from faceprint.service.auth import has_active_keys
    from faceprint.service.server import is_loopback, ui_login_url, ui_token_from_env
    from faceprint.service.server import serve as run_server

    with cli_errors(False):
        if no_auth and not is_loopback(host):
            raise InputError(f"--no-auth is only allowed on a loopback address (127.0.0.1, ::1, localhost), not {host!r}")
        if max_upload_mb <= 0:
            raise InputError(f"--max-upload-mb must be positive, got {max_upload_mb:g}")
        if not 0 <= port <= 65535:
            raise InputError(f"--port must be between 0 and 65535, got {port}")
        path = db or default_db_path()
        shown_db = redact_url(str(path)) if is_postgres_url(path) else str(path)
        shown = f"[{host}]" if ":" in host else host
        lib_path = None
        if not no_ui:
            default_lib = default_library_path()
            lib_path = library or (default_lib if is_postgres_url(default_lib) or Path(default_lib).is_file() else None)
            if library is not None and not is_postgres_url(library) and not Path(library).is_file():
                raise InputError("no photo library here; create it with `faceprint index FOLDER --db PATH`", source=str(library))
            if lib_path is not None and not is_loopback(host):
                err.print(f"[yellow]the web UI is not served on {escape(host)}[/]: it is plain HTTP; bind to 127.0.0.1 to use it")
                lib_path = None
        out.print(
            f"faceprint REST service on [bold]http://{escape(shown)}:{port}[/]  (gallery {escape(shown_db)}; OpenAPI: /openapi.json, endpoints under /v1/)"
        )
        ui_token = None
        if lib_path is not None:
            ui_token = ui_token_from_env() or secrets.token_urlsafe(24)
            out.print(
                f"photo library web UI (open this address; it logs you in): [bold]{escape(ui_login_url(host, port, ui_token))}[/]  (library {escape(redact_url(str(lib_path)) if is_postgres_url(lib_path) else str(lib_path))})",
                soft_wrap=True,
            )
        if no_auth:
            err.print("[yellow]warning:[/] API keys are off: every local process may read and change the gallery")
        else:
            with _store(path) as store:
                missing = not has_active_keys(store)
            if missing:
                err.print(
                    f"[yellow]no API key exists yet[/]: create one with  faceprint keys create NAME --scope enroll --db {escape(shown_db)}",
                    soft_wrap=True,
                )
        run_server(
            path,
            host,
            port,
            max_upload_bytes=int(max_upload_mb * 1024 * 1024),
            require_keys=not no_auth,
            log_level=log_level,
            library=lib_path,
            ui_token=ui_token,
            allowed_hosts=allowed_host,
            vectors=vectors,
        )


@keys_app.command("create")
def keys_create(
    name: str = typer.Argument(..., help="What the key is for (e.g. the client's name)."),
    scope: list[str] = typer.Option(["read"], "--scope", help="read, enroll (implies read) or admin (implies all); repeat for several."),
    db: str | None = DbOpt,
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of text."),
) -> None:
    """Create a key and print it.  It is shown only this once: store it now."""
    from faceprint.service.auth import check_key, create_key

    with cli_errors(as_json):
        with _store(db) as store:
            secret = create_key(store, name, scope, actor="cli")
            info = check_key(store, secret)
        assert info is not None
        if as_json:
            print_json({**info.to_dict(), "key": secret})
            return
        out.print(f"created key [bold]{escape(info.name)}[/]  prefix {info.prefix}  scopes {', '.join(info.scopes)}")
        print(secret)
        err.print("store this key now: it is not shown again (send it as `Authorization: Bearer <key>` or `X-API-Key: <key>`)")


@keys_app.command("list")
def keys_list(
    db: str | None = DbOpt,
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """Every key: name, prefix, scopes, created, revoked (never the secret)."""
    from faceprint.service.auth import list_keys

    with cli_errors(as_json):
        with _store(db) as store:
            rows = list_keys(store)
        if as_json:
            print_json([k.to_dict() for k in rows])
            return
        t = Table(title=f"{len(rows)} key(s)")
        for col in ("name", "prefix", "scopes", "created", "revoked"):
            t.add_column(col)
        for k in rows:
            t.add_row(escape(k.name), k.prefix, ", ".join(k.scopes), k.created, k.revoked or "—")
        out.print(t)


@keys_app.command("revoke")
def keys_revoke(
    prefix_or_name: str = typer.Argument(..., help="The key's prefix (from `faceprint keys list`) or its name."),
    db: str | None = DbOpt,
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of text."),
) -> None:
    """Revoke a key: refused from the next request on, by every server on this database."""
    from faceprint.service.auth import revoke_key

    with cli_errors(as_json):
        with _store(db) as store:
            revoked = revoke_key(store, prefix_or_name, actor="cli")
        if as_json:
            print_json([k.to_dict() for k in revoked])
            return
        for k in revoked:
            out.print(f"revoked key [bold]{escape(k.name)}[/]  prefix {k.prefix}  at {k.revoked}")
