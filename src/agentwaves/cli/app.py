"""The typer application. Each command group lives in its own module and registers itself here.

Errors: every :class:`~agentwaves.errors.AgentwavesError` becomes one line on stderr and its exit code;
nothing else a user can cause should ever reach them as a traceback.
"""

from __future__ import annotations

import importlib
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


MODULES = ("analyze", "plan", "execute", "runs", "revise", "demo", "stats", "doctor")  # the help's order
COMMANDS = {
    "analyze": "analyze",
    "plan": "plan",
    "execute": "execute",
    "resume": "execute",
    **dict.fromkeys(("status", "runs", "review", "report", "logs", "land", "clean"), "runs"),
    "revise": "revise",
    "demo": "demo",
    "stats": "stats",
    "doctor": "doctor",
}
"""Which module registers each command: a command line naming one imports and builds only its module
(all ten took about 220 ms to import against 70 ms for one; `execute` needs most of what they import
anyway, `status`, `logs` or `--version` do not)."""

_registered: set[str] = set()


def _register(argv: list[str]) -> None:
    if argv[:1] in (["--version"], ["-V"]):
        return
    wanted = [COMMANDS[argv[0]]] if argv and argv[0] in COMMANDS else list(MODULES)
    missing = [m for m in wanted if m not in _registered]
    for name in missing:
        importlib.import_module(f"agentwaves.cli.{name}").register(app)
        _registered.add(name)
    if missing and len(_registered) > 1:  # the help lists them in one order, whichever came first
        order = {f"agentwaves.cli.{m}": i for i, m in enumerate(MODULES)}
        app.registered_commands.sort(key=lambda c: order.get(getattr(c.callback, "__module__", ""), 99))


def main(argv: list[str] | None = None) -> None:
    """Console entry point: run the CLI and turn user errors into one line and an exit code."""
    _register(sys.argv[1:] if argv is None else list(argv))
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
