"""The conditional video GAN: text encoder, attention, generator, discriminator, losses.

Only ``nn.Module``s and loss functions live here; the training loop is t2v_core/train.py and
sampling is t2v_core/generate.py. Every module is built from a ModelConfig alone, so a
checkpoint (state_dicts + the config as a dict) rebuilds them with nothing from outside.
"""

from t2v_core.model.attention import TokenAttention
from t2v_core.model.convlstm import ConvLSTMDecoder
from t2v_core.model.discriminator import Discriminator
from t2v_core.model.generator import Generator
from t2v_core.model.losses import bag_of_words, d_loss, g_loss, mode_seeking, word_loss
from t2v_core.model.text_encoder import TextEncoder

__all__ = [
    "TextEncoder",
    "TokenAttention",
    "Generator",
    "ConvLSTMDecoder",
    "Discriminator",
    "d_loss",
    "g_loss",
    "mode_seeking",
    "bag_of_words",
    "word_loss",
]
