"""What a corpus says about itself: a stable identity, a display name, and its judge.

A corpus may carry a ``corpus.json`` beside its manifest (or inside a folder manifest):

    {"name": "my-footage", "judge": ""}

``name`` gives the corpus its identity; without one, the identity is the manifest's resolved
path, so a nightly run over a grown manifest is still the same corpus. ``judge`` names the
image-analysis judge that reads the corpus's attribute columns (``shapes`` for Moving
Shapes); empty means none, and evaluation then reports only the generic metrics. The
built-in corpora write their own ``corpus.json``.

Promotion keeps one model pointer per corpus identity (t2v_core.promote).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from t2v_core.store import digest_json

INFO_FILE = "corpus.json"
JUDGES = ("", "shapes", "digits", "shapes2")  # judges the evaluate stage knows (assess, assess_objects)
_SAFE = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True)
class CorpusInfo:
    id: str  # stable across nights: pointers and promotion history are kept per id
    name: str
    judge: str  # "" = no judge: generic metrics only


def info_path(manifest: Path) -> Path:
    manifest = Path(manifest)
    return (manifest if manifest.is_dir() else manifest.parent) / INFO_FILE


def read_info(manifest: Path) -> CorpusInfo:
    """The corpus's declared name and judge (``corpus.json``), with a clear error for a
    file that says something this version cannot use."""
    manifest = Path(manifest).resolve()
    path = info_path(manifest)
    declared: dict[str, object] = {}
    if path.is_file():
        try:
            declared = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from exc
        if not isinstance(declared, dict):
            raise ValueError(f"{path}: must hold a JSON object with 'name' and/or 'judge'")
    judge = str(declared.get("judge") or "")
    if judge not in JUDGES:
        raise ValueError(f"{path}: unknown judge {judge!r}; this version has {[j for j in JUDGES if j]}")
    name = str(declared.get("name") or "")
    if name:
        ident = _SAFE.sub("-", name).strip("-")[:64] or "corpus"
    else:
        ident = f"{_SAFE.sub('-', manifest.parent.name if manifest.is_file() else manifest.name)[:32]}-" \
                f"{digest_json(str(manifest))[:10]}"
        name = manifest.parent.name if manifest.is_file() else manifest.name
    return CorpusInfo(id=ident, name=name, judge=judge)


def write_info(out_dir: Path, name: str, judge: str) -> Path:
    """Write a built-in corpus's ``corpus.json`` (before its manifest, which is last)."""
    from t2v_core.store import atomic_write_text

    path = Path(out_dir) / INFO_FILE
    atomic_write_text(path, json.dumps({"name": name, "judge": judge}, indent=2) + "\n")
    return path
