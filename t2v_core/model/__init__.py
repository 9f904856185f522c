"""The conditional video GAN: text encoder, attention, generator, discriminator, losses.

Only ``nn.Module``s and loss functions live here; the training loop is t2v_core/train.py and
sampling is t2v_core/generate.py. Every module is built from a ModelConfig alone, so a
checkpoint (state_dicts + the config as a dict) rebuilds them with nothing from outside.
"""

from t2v_core.model.attention import TokenAttention
from t2v_core.model.convlstm import ConvLSTMDecoder
from t2v_core.model.discriminator import Discriminator
from t2v_core.model.generator import Generator
from t2v_core.model.losses import (
    across_motion,
    bag_of_words,
    box_fill,
    box_reach,
    d_loss,
    diversity_sensitivity,
    g_loss,
    mode_seeking,
    path_bound,
    r1_penalty,
    word_loss,
)
from t2v_core.model.text_encoder import TextEncoder

__all__ = [
    "TextEncoder",
    "TokenAttention",
    "Generator",
    "ConvLSTMDecoder",
    "Discriminator",
    "d_loss",
    "g_loss",
    "r1_penalty",
    "across_motion",
    "diversity_sensitivity",
    "mode_seeking",
    "bag_of_words",
    "word_loss",
    "box_fill",
    "box_reach",
    "path_bound",
]
