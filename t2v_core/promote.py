"""Model promotion, per corpus: which trained model is the default for a corpus.

Every corpus identity (``t2v_core.corpus.info.read_info(manifest).id``) has its own store
pointer ``model--<corpus_id>`` and its own decision log ``promotions/<corpus_id>.json`` in
the workspace (a JSON list, rewritten atomically). A model trained on one user's footage
never replaces the default of another corpus.

Promotion is like for like: the nightly job scores the candidate AND the current default
with the same evaluation and passes both metrics dicts; the decision compares those two
numbers, never a number remembered from an earlier night (the evaluation, the corpus and the
code may all have changed since). Equal values promote the newer model. A pinned corpus
keeps its pinned model whatever the scores; ``rollback`` returns to the default before the
current one. Every change is logged before the pointer moves, so a crash in between leaves
the old default in place.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from filelock import FileLock

from t2v_core.config import Profile
from t2v_core.store import ArtifactRef, ArtifactStore, atomic_write_text

POINTER_PREFIX = "model--"
LOG_DIR = "promotions"
# A generic text-video retrieval score that the evaluate stage writes for any corpus (the
# Moving-Shapes-only ``held_out.all_correct`` needs a judge). Higher is better.
DEFAULT_METRIC = "text_video.r_precision"
_ID = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9._-]*$")  # what read_info produces; no path tricks


@dataclass(frozen=True)
class Decision:
    corpus: str
    candidate: str  # train key of the new model
    candidate_value: float
    current: str  # train key of the default model when deciding ("" if none)
    current_value: float  # the current model's score in the same evaluation; nan if not scored
    promoted: bool  # True: the candidate is now the default model of the corpus
    metric: str
    reason: str
    decided_at: str  # UTC, ISO 8601
    candidate_created: str  # when each training run was committed (its manifest's "created")
    current_created: str


def pointer_name(corpus_id: str) -> str:
    _check_id(corpus_id)
    return f"{POINTER_PREFIX}{corpus_id}"


def accuracy(metrics: dict[str, Any], metric: str = DEFAULT_METRIC) -> float:
    """Read a dotted path (``text_video.r_precision``) out of an evaluate metrics.json."""
    cur: Any = metrics
    for part in metric.split("."):
        if not isinstance(cur, dict) or part not in cur:
            raise KeyError(f"evaluation metrics have no {metric!r} (missing {part!r}); "
                           f"top-level keys: {sorted(metrics)}")
        cur = cur[part]
    if not isinstance(cur, (int, float)) or isinstance(cur, bool):
        raise TypeError(f"metric {metric!r} is {cur!r}, not a number")
    return float(cur)


# ------------------------------------------------------------------------------ reading


def history(store: ArtifactStore, corpus_id: str) -> list[dict[str, Any]]:
    """Every logged decision, pin, unpin and rollback of the corpus, oldest first."""
    path = _log_path(store, corpus_id)
    return json.loads(path.read_text()) if path.is_file() else []


def default_model(store: ArtifactStore, corpus_id: str) -> ArtifactRef | None:
    """The corpus's default model, or None. Deliberately no fallback to the newest training
    run: that run may belong to another corpus."""
    return store.pointer(pointer_name(corpus_id))


def pinned(store: ArtifactStore, corpus_id: str) -> str | None:
    """The train key the corpus is pinned to, or None."""
    for entry in reversed(history(store, corpus_id)):
        if entry["action"] == "pin":
            return str(entry["default"])
        if entry["action"] == "unpin":
            return None
    return None


def corpora(store: ArtifactStore) -> list[str]:
    """The corpus ids that have a decision log (what ``t2v gc`` consults)."""
    folder = store.root / LOG_DIR
    return sorted(p.stem for p in folder.glob("*.json")) if folder.is_dir() else []


def rollback_target(store: ArtifactStore, corpus_id: str) -> str | None:
    """The train key that ``rollback`` would make the default, or None."""
    current = default_model(store, corpus_id)
    stack = _defaults(history(store, corpus_id))
    if current is None or current.key not in stack:
        return None
    i = len(stack) - 1 - stack[::-1].index(current.key)
    return stack[i - 1] if i > 0 else None


def corpus_id_for(profile: Profile, store: ArtifactStore, ingest: ArtifactRef | None = None) -> str:
    """The corpus identity of a profile.

    With ``[ingest] manifest`` set: ``read_info(manifest).id``. For the built-in corpus (no
    manifest) the identity is recorded by the ingest stage in its ``_manifest.json`` as
    ``"corpus": {"id", "name", "judge"}``; it is read from ``ingest`` when given (the run at
    hand), else from the newest committed ingest artifact built from a synthetic corpus.
    Ingests that predate that field fall back to ``read_info`` of their synth artifact's
    ``manifest.csv``. Recomputing the synth key here would duplicate t2v_core.pipeline's key
    machinery, hence reading what the ingest stage wrote."""
    from t2v_core.corpus.info import read_info

    if profile.ingest.manifest:
        return read_info(Path(profile.ingest.manifest)).id
    candidates = [ingest] if ingest is not None else store.list("ingest")[::-1]
    for ref in candidates:
        manifest = ref.manifest()
        synth_key = manifest.get("inputs", {}).get("synth")
        if not synth_key:
            continue  # an ingest of a user manifest: another corpus
        recorded = manifest.get("corpus")
        if isinstance(recorded, dict) and recorded.get("id"):
            return str(recorded["id"])
        synth = store.get("synth", synth_key)
        if synth is not None:
            return read_info(synth.file("manifest.csv")).id
    raise ValueError(f"the built-in corpus of profile {profile.name!r} has not been ingested in "
                     f"{store.root} yet, so its corpus id is unknown: run `t2v run ingest` first, "
                     "or name the corpus with --corpus")


# ------------------------------------------------------------------------------ changing


def promote(store: ArtifactStore, corpus_id: str, candidate: ArtifactRef,
            candidate_metrics: dict[str, Any], current_metrics: dict[str, Any] | None,
            metric: str = DEFAULT_METRIC) -> Decision:
    """Make ``candidate`` (a training run) the corpus's default unless it scores below the
    current default in the same evaluation (``current_metrics``). Equal promotes the newer
    model, which has seen more data. ``current_metrics=None`` means the current model could
    not be scored: there is nothing like for like to compare, and the candidate replaces it
    (the reason says so). A pinned corpus keeps its pinned model."""
    _committed_train(store, candidate.key)
    cand_value = accuracy(candidate_metrics, metric)
    with _locked(store, corpus_id):
        current = default_model(store, corpus_id)
        pin = pinned(store, corpus_id)
        cur_value = math.nan
        if current is not None and current_metrics is not None:
            cur_value = accuracy(current_metrics, metric)
        if current is not None and current.key == candidate.key:
            promoted, reason = True, "already the default model"
        elif pin is not None:
            promoted, reason = False, f"corpus {corpus_id} is pinned to {pin}: unpin it to let promotion move the default"
        elif current is None:
            promoted, reason = True, f"corpus {corpus_id} had no default model"
        elif current_metrics is None:
            promoted, reason = True, (f"the default model {current.key} was not scored by the same "
                                      "evaluation: nothing like for like to compare, the newer model replaces it")
        elif cand_value < cur_value:
            promoted, reason = False, f"{metric} {cand_value:.4f} < {cur_value:.4f} of the default model"
        else:
            promoted, reason = True, f"{metric} {cand_value:.4f} >= {cur_value:.4f} of the default model"
        decision = Decision(
            corpus_id, candidate.key, cand_value, current.key if current else "", cur_value, promoted,
            metric, reason, _now(), _created(candidate), _created(current) if current else "")
        after = candidate.key if promoted else (current.key if current else "")
        _log(store, corpus_id, "promote", current, after, **asdict(decision))
        if promoted and (current is None or current.key != candidate.key):
            store.set_pointer(pointer_name(corpus_id), _committed_train(store, candidate.key))
    return decision


def pin(store: ArtifactStore, corpus_id: str, train: ArtifactRef | str) -> ArtifactRef:
    """Make a training run the corpus's default and keep it there: promotion will not move
    the pointer until ``unpin``."""
    ref = _committed_train(store, train if isinstance(train, str) else train.key)
    with _locked(store, corpus_id):
        current = default_model(store, corpus_id)
        _log(store, corpus_id, "pin", current, ref.key)
        store.set_pointer(pointer_name(corpus_id), ref)
    return ref


def unpin(store: ArtifactStore, corpus_id: str) -> bool:
    """Let promotion move the default again. False (and nothing logged) if not pinned."""
    with _locked(store, corpus_id):
        if pinned(store, corpus_id) is None:
            return False
        current = default_model(store, corpus_id)
        _log(store, corpus_id, "unpin", current, current.key if current else "")
    return True


def rollback(store: ArtifactStore, corpus_id: str) -> ArtifactRef:
    """Make the model that was the default before the current one the default again."""
    with _locked(store, corpus_id):
        current = default_model(store, corpus_id)
        if current is None:
            raise ValueError(f"corpus {corpus_id} has no default model to roll back from")
        pin = pinned(store, corpus_id)
        if pin is not None:
            raise ValueError(f"corpus {corpus_id} is pinned to {pin}: unpin it before rolling back")
        target = rollback_target(store, corpus_id)
        if target is None:
            raise ValueError(f"corpus {corpus_id} has no default model before {current.key} "
                             f"in {_log_path(store, corpus_id)}: nothing to roll back to")
        ref = store.get("train", target)
        if ref is None:
            raise ValueError(f"the model before {current.key}, {target}, is no longer in the store "
                             "(deleted by `t2v gc`?): pin another one with `t2v model pin KEY`")
        _log(store, corpus_id, "rollback", current, ref.key)
        store.set_pointer(pointer_name(corpus_id), ref)
    return ref


# ------------------------------------------------------------------------------ internals


def _defaults(log: list[dict[str, Any]]) -> list[str]:
    """Replay the log into the stack of successive defaults (oldest first). Each entry
    records the pointer before it (``previous``) and after it (``default``). The stack is
    first cut back to ``previous``, so a logged change whose pointer move never happened (a
    crash in between) drops out; a rollback then cuts it back to its target, any other
    change pushes its model (re-pinning an older model pushes it again, so a rollback from
    there returns to the model it replaced)."""
    stack: list[str] = []
    for entry in log:
        before, after = entry.get("previous") or "", entry.get("default") or ""
        _cut_to(stack, before)
        if entry.get("action") == "rollback" and after in stack:
            _cut_to(stack, after)
        elif after and (not stack or stack[-1] != after):
            stack.append(after)
    return stack


def _cut_to(stack: list[str], key: str) -> None:
    """Drop everything above the last occurrence of ``key`` (nothing if absent)."""
    if key in stack:
        del stack[len(stack) - stack[::-1].index(key):]


def _log(store: ArtifactStore, corpus_id: str, action: str, before: ArtifactRef | None,
         after: str, **details: Any) -> None:
    entry = {"action": action, "at": _now(), "previous": before.key if before else "",
             "default": after, **details}
    entries = [*history(store, corpus_id), _jsonable(entry)]
    atomic_write_text(_log_path(store, corpus_id), json.dumps(entries, indent=2))


@contextmanager
def _locked(store: ArtifactStore, corpus_id: str) -> Iterator[None]:
    # Two runs deciding for the same corpus at once (a nightly and a manual pin) would each
    # rewrite the log from what they read, losing the other's entry.
    lock = store.root / "locks" / LOG_DIR / f"{pointer_name(corpus_id)}.lock"
    lock.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(lock):
        yield


def _log_path(store: ArtifactStore, corpus_id: str) -> Path:
    _check_id(corpus_id)
    return store.root / LOG_DIR / f"{corpus_id}.json"


def _check_id(corpus_id: str) -> None:
    if not _ID.match(corpus_id or ""):
        raise ValueError(f"{corpus_id!r} is not a corpus id (letters, digits, '.', '_' and '-'; "
                         "see t2v_core.corpus.info.read_info)")


def _committed_train(store: ArtifactStore, key: str) -> ArtifactRef:
    ref = store.get("train", key)
    if ref is None:
        raise ValueError(f"there is no committed training run {key!r} in {store.root}")
    return ref


def _created(ref: ArtifactRef) -> str:
    return str(ref.manifest().get("created", ""))


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _jsonable(d: dict[str, Any]) -> dict[str, Any]:
    # JSON has no NaN; null says "not scored".
    return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in d.items()}
