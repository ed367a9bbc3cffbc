"""The typer application. Each command group lives in its own module and registers itself here.

Errors: every :class:`~agentwaves.errors.AgentwavesError` becomes one line on stderr and its exit code;
nothing else a user can cause should ever reach them as a traceback.
"""

from __future__ import annotations

import sys

import typer

try:  # typer >= 0.24 vendors click
    from typer._click import exceptions as click_exc
except ImportError:  # pragma: no cover
    from click import exceptions as click_exc  # type: ignore[no-redef]

from agentwaves.errors import AgentwavesError

app = typer.Typer(
    name="agentwaves",
    help="Run several AI coding agents on one git repository at once, in conflict-free waves.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        from agentwaves import __version__

        print(f"agentwaves {__version__}")
        raise typer.Exit(0)


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", "-V", help="Print the version and exit.", is_eager=True, callback=_version
    ),
) -> None:
    """Run several AI coding agents on one git repository at once, in conflict-free waves."""


def _register() -> None:
    from agentwaves.cli import analyze, demo, doctor, execute, plan, revise, runs, stats

    for module in (analyze, plan, execute, runs, revise, demo, stats, doctor):
        module.register(app)


_registered = False


def main(argv: list[str] | None = None) -> None:
    """Console entry point: run the CLI and turn user errors into one line and an exit code."""
    global _registered
    if not _registered:
        _register()
        _registered = True
    try:
        code = app(args=argv, prog_name="agentwaves", standalone_mode=False)
    except click_exc.NoArgsIsHelpError as exc:
        print(exc.ctx.get_help() if exc.ctx else str(exc))
        sys.exit(0)
    except click_exc.UsageError as exc:
        hint = f" (see agentwaves {exc.ctx.info_name} --help)" if exc.ctx and exc.ctx.parent else ""
        print(f"agentwaves: error: {exc.format_message()}{hint}", file=sys.stderr)
        sys.exit(2)
    except click_exc.ClickException as exc:
        print(f"agentwaves: error: {exc.format_message()}", file=sys.stderr)
        sys.exit(exc.exit_code)
    except typer.Abort:
        print("agentwaves: interrupted", file=sys.stderr)
        sys.exit(130)
    except AgentwavesError as exc:
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        print(f"agentwaves: error: {message}", file=sys.stderr)
        sys.exit(exc.exit_code)
    except BrokenPipeError:  # `agentwaves ... | head`: the reader left; that is not an error
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(0)
    except KeyboardInterrupt:
        print("agentwaves: interrupted", file=sys.stderr)
        sys.exit(130)
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":  # pragma: no cover
    main()
