"""What the fake backend writes when no script says otherwise: a plan, appended code, merged conflicts.

Pure functions of their inputs (no clock, no randomness), so a fake run is reproducible byte for byte.
"""

from __future__ import annotations

import json
import re
import sys
from collections import Counter
from pathlib import PurePosixPath
from typing import Any

_STOP = frozenset(
    re.findall(
        r"\w+",
        "a an the add adds adding implement implements support supports create build make new some basic "
        "simple feature features for with to of in on into please our my",
    )
)
_CODE_EXTS = (".py", ".js", ".ts", ".go", ".rs", ".rb", ".java", ".kt", ".php", ".cs")
_COMMENT = {
    **dict.fromkeys((".js", ".jsx", ".ts", ".tsx", ".go", ".rs", ".java", ".kt", ".c", ".h"), "// {}"),
    **dict.fromkeys((".cpp", ".cs", ".swift", ".scala", ".php"), "// {}"),
    **dict.fromkeys((".sql", ".lua", ".hs"), "-- {}"),
    **dict.fromkeys((".html", ".xml", ".svg", ".vue"), "<!-- {} -->"),
    ".css": "/* {} */",
    ".txt": "{}",
}


def _words(text: str, keep_case: bool = False) -> list[str]:
    words = [w for w in re.findall(r"[A-Za-z0-9]+", text) if w.lower() not in _STOP]
    return words if keep_case else [w.lower() for w in words]


def _ident(words: list[str], default: str = "feature") -> str:
    s = "_".join(words).lower()[:40].strip("_") or default
    return f"f_{s}" if s[0].isdigit() else s


def split_feature(feature: str) -> list[list[str]]:
    """The feature's parts as word lists: split on commas, ';', '&', ' and ', ' plus '; at most three
    (further parts join the third).

    A plural head noun of the last part is shared: "email and SMS notifications" gives
    [email, notifications] and [sms, notifications].
    """
    raw = re.split(r",|;|&|\band\b|\bplus\b", feature, flags=re.IGNORECASE)
    parts: list[list[str]] = []
    for r in raw:
        w = _words(r, keep_case=True)
        if w and [x.lower() for x in w] not in [[x.lower() for x in p] for p in parts]:
            parts.append(w)
    if len(parts) > 1 and len(parts[-1]) > 1 and parts[-1][-1].lower().endswith("s"):
        head = parts[-1][-1]
        parts = [p if len(p) > 1 or p[0].lower() == head.lower() else [*p, head] for p in parts]
    if len(parts) > 3:
        parts = [*parts[:2], list(dict.fromkeys(w for p in parts[2:] for w in p))]
    return parts


def _module(words: list[str]) -> str:
    """A module name for ``words`` that does not shadow a standard-library module."""
    name = _ident(words)
    return f"{name}_impl" if name in sys.stdlib_module_names else name


def repo_layout(files: list[str]) -> tuple[str, str, str, str]:
    """(directory for new modules, code extension, tests directory, README path) suggested by the repo."""
    exts = Counter(PurePosixPath(f).suffix for f in files if PurePosixPath(f).suffix in _CODE_EXTS)
    ext = ".py" if not exts or exts[".py"] else exts.most_common(1)[0][0]
    fileset = set(files)
    code_dir = ""
    if ext == ".py":
        pkgs = sorted(
            str(PurePosixPath(f).parent)
            for f in files
            if f.endswith("/__init__.py") and f.count("/") in (1, 2) and not f.startswith(("test", "doc"))
        )
        src = [p for p in pkgs if p.startswith("src/") and p.count("/") == 1]
        top = [p for p in pkgs if "/" not in p]
        code_dir = (src or top or [""])[0]
    else:
        dirs = Counter(str(PurePosixPath(f).parent) for f in files if f.endswith(ext))
        code_dir = dirs.most_common(1)[0][0] if dirs else ""
    code_dir = "" if code_dir in ("", ".") else code_dir + "/"
    tests = next((d for d in ("tests/", "test/") if any(f.startswith(d) for f in files)), "tests/")
    readmes = [f for f in sorted(fileset) if "/" not in f and f.lower().startswith("readme")]
    readme = readmes[0] if readmes else "README.md"
    return code_dir, ext, tests, readme


def _task_id(slug: str, index: int) -> str:
    tid = re.sub(r"[^a-z0-9]+", "-", slug.lower()).strip("-") or f"part{index + 1}"
    return f"part-{tid}" if tid in ("foundation", "docs") or tid.startswith("test-") else tid


def draft_plan(feature: str, files: list[str]) -> dict[str, Any]:
    """A plan for ``feature`` in the plan-file format: a foundation, then parallel parts, their tests
    and the docs."""
    feature = " ".join(feature.split()) or "the feature"
    code_dir, ext, tests, readme = repo_layout(files)
    parts = split_feature(feature) or [["feature"]]
    slugs = [_module(p) for p in parts]
    if len(parts) == 1:
        topic = slugs[0]
    else:
        topic = _module(parts[-1][-1:]) if len(parts[-1]) > 1 else _module(_words(feature)[:2])
    base = topic if topic not in slugs else f"{topic}_base"
    # ids made of the parts' names; "foundation", "docs" and "test-*" never collide with a part's slug
    ids = [_task_id(slug, i) for i, slug in enumerate(slugs)]
    tasks: list[dict[str, Any]] = [
        {
            "id": "foundation",
            "title": f"Add the shared {topic.replace('_', ' ')} foundation",
            "prompt": f"Create {code_dir}{base}{ext} with the types, configuration and helpers that "
            f"'{feature}' needs, so that its parts can be built in parallel.",
            "files": [f"{code_dir}{base}{ext}"],
            "estimate": 3,
        }
    ]
    for k, (words, slug) in enumerate(zip(parts, slugs, strict=True)):
        text = " ".join(words)
        tasks.append(
            {
                "id": ids[k],
                "title": f"Implement {text}",
                "prompt": f"Implement {text} for '{feature}' in {code_dir}{slug}{ext}, "
                f"building on {code_dir}{base}{ext}.",
                "depends_on": ["foundation"],
                "files": [f"{code_dir}{slug}{ext}"],
                # uneven durations, as real work has: the first part is the biggest
                "estimate": 5 if k == 0 else 3,
            }
        )
    # one test task per part, each needing only its own part
    for k, slug in enumerate(slugs):
        test_path = f"{tests}test_{slug}{ext}"
        tasks.append(
            {
                "id": f"test-{ids[k]}",
                "title": f"Test {' '.join(parts[k])}",
                "prompt": f"Write tests for {' '.join(parts[k])} ('{feature}') in {test_path}.",
                "depends_on": [ids[k]],
                "files": [test_path],
                "estimate": 2,
            }
        )
    tasks.append(
        {
            "id": "docs",
            "title": "Document the feature in the README",
            "prompt": f"Describe '{feature}' and how to use it in {readme}, "
            f"using the API of {code_dir}{base}{ext}.",
            "depends_on": ["foundation"],
            "files": [readme],
            "estimate": 2,
        }
    )
    return {"feature": feature, "tasks": tasks}


def append_block(path: str, existing: str, task: dict[str, Any]) -> str:
    """``existing`` plus a deterministic block for ``task`` that keeps the file valid for its type."""
    tid = str(task.get("id") or "task")
    title = " ".join(str(task.get("title") or tid).split())
    prompt = " ".join(str(task.get("prompt") or title).split())
    name = PurePosixPath(path).name
    suffix = PurePosixPath(path).suffix.lower()
    head = existing if not existing or existing.endswith("\n") else existing + "\n"
    if suffix == ".py":
        fn = _ident(_words(title), "task")
        if name.startswith("test_") and not fn.startswith("test"):
            fn = f"test_{fn}"
        taken = set(re.findall(r"^def (\w+)", existing, re.MULTILINE))
        unique, n = fn, 2
        while unique in taken:
            unique, n = f"{fn}_{n}", n + 1
        doc = title.replace("\\", "\\\\").replace('"', '\\"')
        test = unique.startswith("test")
        body = f"    assert {json.dumps(tid)}\n" if test else f"    return {json.dumps(tid)}\n"
        block = f'def {unique}() -> {"None" if test else "str"}:\n    """{doc}."""\n{body}'
        return head + ("\n\n" if head.strip() else "") + block
    if suffix in (".md", ".markdown"):
        return head + ("\n" if head.strip() else "") + f"## {title}\n\n{prompt} (task {tid})\n"
    if suffix == ".rst":
        return head + ("\n" if head.strip() else "") + f"{title}\n{'-' * len(title)}\n\n{prompt}\n"
    if suffix == ".json":
        return existing if existing.strip() else json.dumps({"task": tid, "title": title}, indent=2) + "\n"
    return head + _COMMENT.get(suffix, "# {}").format(f"{title} (task {tid})") + "\n"


def merge_conflicts(text: str) -> str:
    """``text`` with each conflict replaced by ours then theirs (a diff3 base dropped); lines the two sides
    share at the start or the end of a conflict are kept once."""
    out: list[str] = []
    sides: dict[str, list[str]] = {"ours": [], "theirs": [], "base": []}
    state: str | None = None
    for line in text.splitlines(keepends=True):
        bare = line.rstrip("\r\n")
        if bare.startswith("<<<<<<<"):
            state, sides = "ours", {"ours": [], "theirs": [], "base": []}
        elif state and bare.startswith("|||||||"):
            state = "base"
        elif state and bare == "=======":
            state = "theirs"
        elif state == "theirs" and bare.startswith(">>>>>>>"):
            out.extend(_union(sides["ours"], sides["theirs"]))
            state = None
        elif state:
            sides[state].append(line)
        else:
            out.append(line)
    if state:  # an unterminated conflict: keep what there is
        out.extend(_union(sides["ours"], sides["theirs"]))
    return "".join(out)


def _union(ours: list[str], theirs: list[str]) -> list[str]:
    ours = [x if x.endswith("\n") else x + "\n" for x in ours]
    theirs = [x if x.endswith("\n") else x + "\n" for x in theirs]
    p = 0
    while p < min(len(ours), len(theirs)) and ours[p] == theirs[p]:
        p += 1
    s = 0
    while s < min(len(ours), len(theirs)) - p and ours[-1 - s] == theirs[-1 - s]:
        s += 1
    return ours[: len(ours) - s] + theirs[p : len(theirs) - s] + ours[len(ours) - s :]
