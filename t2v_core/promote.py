"""Model promotion: which trained model `render-catalog` uses by default.

The store's ``model`` pointer names the promoted training run. A newly trained model replaces
it only if its evaluation accuracy is not lower than the promoted model's; otherwise the
previous model stays the default. Every decision is appended to ``promotions.json`` in the
workspace (rewritten atomically), which is also where the promoted model's accuracy is
remembered, so a decision needs no re-evaluation of the old model.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from typing import Any

from t2v_core.store import ArtifactRef, ArtifactStore, atomic_write_text

POINTER = "model"
LOG = "promotions.json"
# Held-out prompts whose colour, shape, size and direction are all judged right: the
# headline accuracy of the evaluate stage (t2v_core.evaluate), and the one that measures
# whether the model composes words it never saw together.
DEFAULT_METRIC = "held_out.all_correct"


@dataclass(frozen=True)
class Decision:
    candidate: str  # train key of the new model
    candidate_accuracy: float
    previous: str  # train key of the model promoted before ("" if none)
    previous_accuracy: float  # nan if none
    promoted: bool  # True: the candidate is now the default model
    metric: str
    reason: str


def accuracy(metrics: dict[str, Any], metric: str = DEFAULT_METRIC) -> float:
    """Read a dotted path (``held_out.all_correct``) out of an evaluate metrics.json."""
    cur: Any = metrics
    for part in metric.split("."):
        if not isinstance(cur, dict) or part not in cur:
            raise KeyError(f"evaluation metrics have no {metric!r} (missing {part!r}); "
                           f"top-level keys: {sorted(metrics)}")
        cur = cur[part]
    if not isinstance(cur, (int, float)) or isinstance(cur, bool):
        raise TypeError(f"metric {metric!r} is {cur!r}, not a number")
    return float(cur)


def history(store: ArtifactStore) -> list[dict[str, Any]]:
    path = store.root / LOG
    return json.loads(path.read_text()) if path.is_file() else []


def promote(store: ArtifactStore, train_ref: ArtifactRef, evaluate_ref: ArtifactRef,
            metric: str = DEFAULT_METRIC) -> Decision:
    """Point ``model`` at ``train_ref`` unless its accuracy is below the promoted model's.

    Equal accuracy promotes the newer model: it has seen more data. Re-promoting the model
    that is already the default is a no-op decision (promoted=True, previous=itself)."""
    if evaluate_ref.manifest().get("inputs", {}).get("train") != train_ref.key:
        raise ValueError(f"evaluation {evaluate_ref.key} is not of training run {train_ref.key}")
    new_acc = accuracy(json.loads(evaluate_ref.file("metrics.json").read_text()), metric)
    current = store.pointer(POINTER)
    log = history(store)
    prev_acc = _promoted_accuracy(log, current.key, metric) if current is not None else math.nan
    if current is None:
        promoted, reason = True, "no model was promoted before"
    elif current.key == train_ref.key:
        promoted, reason = True, "already the default model"
    elif math.isnan(prev_acc):
        promoted, reason = True, "the default model has no recorded accuracy"
    elif new_acc < prev_acc:
        promoted, reason = False, f"{metric} {new_acc:.4f} < {prev_acc:.4f} of the default model"
    else:
        promoted, reason = True, f"{metric} {new_acc:.4f} >= {prev_acc:.4f} of the default model"
    decision = Decision(train_ref.key, new_acc, current.key if current else "", prev_acc,
                        promoted, metric, reason)
    # Log first, then move the pointer: a crash in between leaves the old default in place
    # with a logged (but unapplied) decision, never a default with no recorded accuracy.
    atomic_write_text(store.root / LOG, json.dumps([*log, _jsonable(asdict(decision))], indent=2))
    if promoted:
        store.set_pointer(POINTER, train_ref)
    return decision


def default_model(store: ArtifactStore) -> ArtifactRef | None:
    """The promoted model, else the newest training run (what render-catalog uses)."""
    return store.pointer(POINTER) or store.latest("train")


def _promoted_accuracy(log: list[dict[str, Any]], key: str, metric: str) -> float:
    for entry in reversed(log):
        if entry["candidate"] == key and entry["metric"] == metric and entry["promoted"]:
            return float(entry["candidate_accuracy"])
    return math.nan


def _jsonable(d: dict[str, Any]) -> dict[str, Any]:
    # JSON has no NaN; null says "unknown".
    return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in d.items()}
