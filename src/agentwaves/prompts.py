"""Prompt templates: files in ``prompts/`` (shipped in the wheel), rendered strictly.

Placeholders are ``{{name}}``. A placeholder without a value is an error, and so is a value no
placeholder uses: both mean the template and the code drifted apart.
"""

from __future__ import annotations

import re
from functools import cache
from importlib import resources

from agentwaves.errors import AgentwavesError

_PLACEHOLDER = re.compile(r"\{\{\s*([a-z_][a-z0-9_]*)\s*\}\}")


class PromptError(AgentwavesError):
    """A template that does not match the values given to it."""


@cache
def load_template(name: str) -> str:
    try:
        return resources.files("agentwaves").joinpath("prompts", f"{name}.md").read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PromptError(f"prompt template {name!r} not found") from None


def placeholders(template: str) -> set[str]:
    return set(_PLACEHOLDER.findall(template))


def render_text(template: str, values: dict[str, str], *, name: str = "template") -> str:
    needed = placeholders(template)
    missing = needed - values.keys()
    if missing:
        raise PromptError(f"prompt {name!r}: no value for {', '.join(sorted(missing))}")
    unused = values.keys() - needed
    if unused:
        raise PromptError(f"prompt {name!r}: has no placeholder for {', '.join(sorted(unused))}")
    return _PLACEHOLDER.sub(lambda m: values[m.group(1)], template)


def render(name: str, **values: str) -> str:
    """Render ``prompts/<name>.md`` with exactly these values."""
    return render_text(load_template(name), values, name=name)
