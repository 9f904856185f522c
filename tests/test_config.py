from pathlib import Path

import pytest

from t2v_core.config import Profile, load_profile, profile_from_dict


def test_shipped_profiles_load_and_differ_from_defaults():
    demo, full, tiny = load_profile("demo"), load_profile("full"), load_profile("tiny")
    assert demo.name == "demo" and full.name == "full" and tiny.name == "tiny"
    assert tiny.synth.n_videos < demo.synth.n_videos
    # the generator's native clip size is the full profile's
    assert (full.frames.height, full.frames.width, full.frames.frames) == (64, 64, 16)


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
