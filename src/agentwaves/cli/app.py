"""The typer application. Each command group lives in its own module and registers itself here.

Errors: every :class:`~agentwaves.errors.AgentwavesError` becomes one line on stderr and its exit code;
nothing else a user can cause should ever reach them as a traceback.
"""

from __future__ import annotations

import sys

import typer

from agentwaves.errors import AgentwavesError

app = typer.Typer(
    name="agentwaves",
    help="Run several AI coding agents on one git repository at once, in conflict-free waves.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


def _register() -> None:
    from agentwaves.cli import analyze, demo, execute, plan, runs

    for module in (analyze, plan, execute, runs, demo):
        module.register(app)


_registered = False


def main(argv: list[str] | None = None) -> None:
    """Console entry point: run the CLI and turn user errors into one line and an exit code."""
    global _registered
    if not _registered:
        _register()
        _registered = True
    try:
        app(args=argv, prog_name="agentwaves")
    except AgentwavesError as exc:
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        print(f"agentwaves: error: {message}", file=sys.stderr)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        print("agentwaves: interrupted", file=sys.stderr)
        sys.exit(130)


if __name__ == "__main__":  # pragma: no cover
    main()
