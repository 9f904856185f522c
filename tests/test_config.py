from pathlib import Path

import pytest

from t2v_core.config import Profile, load_profile, profile_from_dict


def test_shipped_profiles_load_and_differ_from_defaults():
    demo, full, tiny = load_profile("demo"), load_profile("full"), load_profile("tiny")
    assert demo.name == "demo" and full.name == "full" and tiny.name == "tiny"
    assert tiny.synth.n_videos < demo.synth.n_videos
    # the generator's native clip size is the full profile's
    assert (full.frames.height, full.frames.width, full.frames.frames) == (64, 64, 16)
    assert (full.model.height, full.model.width, full.model.frames) == (64, 64, 16)


def test_full_profile_is_the_demo_recipe_at_full_size():
    demo, full = load_profile("demo"), load_profile("full")
    changed = {s: {k for k, v in full.section(s).items() if demo.section(s)[k] != v}
               for s in ("model", "train", "embed", "evaluate")}
    # one recipe: beyond the size, only the time budget
    assert changed == {"model": {"height", "width", "frames"}, "train": {"max_minutes"},
                       "embed": set(), "evaluate": set()}


def test_settings_that_only_work_together_are_checked_when_a_profile_is_built():
    with pytest.raises(ValueError, match=r"\[model\] word_twin needs D's word classifier"):
        load_profile("demo").override(train={"word_weight": 0.0})
    with pytest.raises(ValueError, match="held-out"):
        load_profile("tiny").override(train={"select_by": "held_out_all_correct"})
    with pytest.raises(ValueError, match=r"unknown setting\(s\) in \[train\]: word_twin_after"):
        load_profile("demo").override(train={"word_twin_after": 0.6})  # a removed setting
    with pytest.raises(ValueError, match=r"augment_shift = 0.5 must be in \[0, 0.5\)"):
        load_profile("demo").override(train={"augment_shift": 0.5})


def test_a_profile_extends_another_section_by_section(tmp_path: Path):
    (tmp_path / "base.toml").write_text('name = "base"\n[train]\nsteps = 7\nlr_g = 0.01\n')
    (tmp_path / "child.toml").write_text('extends = "base.toml"\n[train]\nsteps = 9\n')
    child = load_profile(tmp_path / "child.toml")
    assert child.name == "child" and child.train.steps == 9 and child.train.lr_g == 0.01
    (tmp_path / "mine.toml").write_text('extends = "demo"\n[train]\nseed = 3\n')
    mine = load_profile(tmp_path / "mine.toml")
    assert mine.train.seed == 3 and mine.model == load_profile("demo").model
    (tmp_path / "a.toml").write_text('extends = "b.toml"\n')
    (tmp_path / "b.toml").write_text('extends = "a.toml"\n')
    with pytest.raises(ValueError, match="loop: a.toml -> b.toml -> a.toml"):
        load_profile(tmp_path / "a.toml")
    (tmp_path / "lost.toml").write_text('extends = "gone.toml"\n')
    with pytest.raises(FileNotFoundError, match="gone.toml"):
        load_profile(tmp_path / "lost.toml")


def test_override_changes_only_the_named_section():
    p = load_profile("tiny")
    q = p.override(train={"steps": 99})
    assert q.train.steps == 99 and p.train.steps != 99
    assert q.section("embed") == p.section("embed")


def test_unknown_or_mistyped_settings_are_clear_errors(tmp_path: Path):
    with pytest.raises(ValueError, match="unknown setting"):
        Profile().override(train={"stepz": 1})
    with pytest.raises(ValueError, match="must be int"):
        Profile().override(train={"steps": "ten"})
    with pytest.raises(ValueError, match="unknown profile section"):
        profile_from_dict({"trian": {}})
    with pytest.raises(FileNotFoundError, match="shipped profiles"):
        load_profile("no-such-profile")
    bad = tmp_path / "bad.toml"
    bad.write_text("[train]\nsteps = 1.5\n")
    with pytest.raises(ValueError):
        load_profile(bad)
