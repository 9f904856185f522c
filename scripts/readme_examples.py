"""Copy a render run's GIFs into docs/examples and print the README's table of them.

    t2v render data/catalogs/heldout.csv --model TRAIN_KEY -w WORKSPACE
    .venv/bin/python scripts/readme_examples.py WORKSPACE/artifacts/render/RENDER_KEY

    t2v render data/catalogs/heldout-digits.csv -p digits-demo --model TRAIN_KEY -w WORKSPACE
    .venv/bin/python scripts/readme_examples.py WORKSPACE/artifacts/render/RENDER_KEY \
        --judge digits --manifest WORKSPACE/artifacts/synth/SYNTH_KEY/manifest.csv

The judge column is the judge's reading of the decoded WebM (what a browser plays), not
of the model's tensors. A reading is right when each attribute it names is a word of the
prompt; the script says how many of the rows it read right.
"""
from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import pandas as pd

from t2v_core.assess_objects import classifier_for, judge_clips
from t2v_core.corpus.digits import WORDS
from t2v_core.judge import judge_clip
from t2v_core.judge_objects import ATTRIBUTES
from t2v_core.video import read_video

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("render_dir", type=Path, help="a render stage's artifact folder")
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "examples")
    ap.add_argument("--judge", choices=("shapes", *ATTRIBUTES), default="shapes")
    ap.add_argument("--manifest", type=Path, help="the corpus's manifest.csv (the digits judge reads "
                    "with the classifier written beside it)")
    args = ap.parse_args()
    if args.judge == "digits" and args.manifest is None:
        ap.error("--judge digits needs --manifest: the digit classifier lies beside the corpus's manifest.csv")
    classifier = classifier_for(args.judge, args.manifest) if args.judge == "digits" else None
    args.out = args.out.resolve()
    renders = pd.read_parquet(args.render_dir / "renders.parquet")
    ok = renders[renders["status"] == "ok"]
    if len(ok) < len(renders):
        print(f"skipping {len(renders) - len(ok)} rows that did not render: "
              f"{renders.loc[renders['status'] != 'ok', ['id', 'reason']].to_dict('records')}")
    args.out.mkdir(parents=True, exist_ok=True)
    right = 0
    print("| prompt | video | judge |\n| --- | --- | --- |")
    for rec in ok.itertuples():
        if not rec.gif or not rec.webm:
            raise ValueError(f"row {rec.id} has no GIF and WebM; render with both formats")
        shutil.copyfile(args.render_dir / rec.gif, args.out / f"{rec.id}.gif")
        clip = read_video(args.render_dir / rec.webm)
        words = set(rec.prompt.replace(",", " ").split())
        if args.judge == "shapes":
            readings = [judge_clip(clip).attributes()]
        else:  # one reading per object the tracking judge found
            readings = [o.attributes for o in judge_clips(args.judge, [clip], classifier)[0].objects]
        # A digit is named by its numeral or its word ("3", "three").
        right += bool(readings) and all(
            v is not None and (v in words or (k == "digit" and WORDS[int(v)] in words))
            for r in readings for k, v in r.items())
        shown = "; ".join(" ".join(str(v) for v in r.values()) for r in readings) or "nothing"
        gif = args.out / f"{rec.id}.gif"
        rel = gif.relative_to(ROOT) if gif.is_relative_to(ROOT) else gif
        print(f'| {rec.prompt} | <img src="{rel}" width="96"> | {shown} |')
    print(f"\nthe judge reads {right} of {len(ok)} right")


if __name__ == "__main__":
    main()
