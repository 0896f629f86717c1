"""electra_tf: ELECTRA pretraining, fine-tuning and serving on TensorFlow 2 / Keras 3.

What users import, from the modules that own it (see the README's "Code map"):

    from electra_tf import Tokenizer, ElectraConfig, EncoderConfig, load_config
    from electra_tf import ElectraBackbone, ElectraPretrainer
    from electra_tf import save_pretrained, load_pretrained_backbone, load_pretrained_discriminator

The names are resolved on first use (module __getattr__): most of them need TensorFlow, and
`import electra_tf` (which every `python -m electra_tf.<tool>` does) must stay fast.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

# Public name -> the module that defines it.
_EXPORTS = {
    "Tokenizer": "electra_tf.tokenization",
    "ElectraConfig": "electra_tf.config",
    "EncoderConfig": "electra_tf.config",
    "load_config": "electra_tf.config",
    "ElectraBackbone": "electra_tf.modeling",
    "load_pretrained_backbone": "electra_tf.modeling",
    "load_pretrained_discriminator": "electra_tf.modeling",
    "ElectraPretrainer": "electra_tf.pretraining_objective",
    "save_pretrained": "electra_tf.artifacts",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'electra_tf' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later look-ups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
