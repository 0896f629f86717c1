"""One configuration object for ELECTRA pretraining (model sizes, objective options, optimizer),
and the encoder sizes the layers are built from.

Presets live as JSON files in the package's ``configs/`` folder (electra_small, electra_base,
electra_large, bert_small, electra_mini, electra_tiny), package data that a wheel installs with
the code; the repository's top-level ``configs`` is a link to it. ``load_config`` reads a preset or a JSON
file and applies overrides ("hparams") on top, rejecting unknown keys and wrong types with a
one-line :class:`~electra_tf.errors.UserError`.

Plain Python only (no TensorFlow), so every tool can import it cheaply.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import os
import pathlib
from typing import Any, Mapping, Sequence

from electra_tf import fileio
from electra_tf.errors import UserError

CONFIGS_DIR = pathlib.Path(__file__).resolve().parent / "configs"

# Config key -> the vocabulary token whose id it holds.
SPECIAL_TOKENS = {"pad_token_id": "[PAD]", "cls_token_id": "[CLS]", "sep_token_id": "[SEP]", "mask_token_id": "[MASK]"}


# discriminator_task values: ELECTRA's replaced-token detection and the paper's two MLM ablations.
DISCRIMINATOR_TASKS = ("detection", "replace_mlm", "all_tokens_mlm")
# The config keys holding the vocabulary ids the objective treats specially.
SPECIAL_TOKEN_ID_KEYS = ("pad_token_id", "cls_token_id", "sep_token_id", "mask_token_id")


@dataclasses.dataclass(frozen=True)
class EncoderConfig:
    """One Transformer encoder's sizes and its layers' fixed settings: what the layers are built
    from (KerasHub's backbones take the same explicit sizes).

    ElectraConfig derives one for the discriminator (:attr:`ElectraConfig.encoder`) and one for
    the generator (:attr:`ElectraConfig.generator_encoder`); the run's other settings (objective,
    optimizer, schedule, bookkeeping) never reach the layers.

    Example:

        encoder = EncoderConfig(vocab_size=30522, embedding_size=128, hidden_size=256,
                                num_hidden_layers=12, num_attention_heads=4,
                                intermediate_size=1024)
        backbone = electra_tf.modeling.ElectraBackbone(encoder)
    """

    vocab_size: int
    embedding_size: int
    hidden_size: int
    num_hidden_layers: int
    num_attention_heads: int
    intermediate_size: int
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    hidden_dropout_prob: float = 0.1
    attention_probs_dropout_prob: float = 0.1
    paired_dropout_draws: bool = True
    initializer_range: float = 0.02
    layer_norm_eps: float = 1e-12

    def to_dict(self) -> dict[str, Any]:
        """Every field as a plain dict (JSON-serialisable)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any], source: str = "encoder config") -> "EncoderConfig":
        """An EncoderConfig from ``values``.

        Args:
          values: field name -> value; the six sizes (vocab_size ... intermediate_size) are required,
            the other fields default.
          source: names the origin in error messages (a file path, "head.json", ...).

        Returns:
          The EncoderConfig.

        Raises:
          UserError: ``values`` has a key that is not an EncoderConfig field.
        """
        names = {field.name for field in dataclasses.fields(cls)}
        unknown = sorted(set(values) - names)
        if unknown:
            raise UserError(
                f"{source}: unknown encoder config key '{unknown[0]}'; valid keys: {', '.join(sorted(names))}"
            )
        return cls(**values)


# The ElectraConfig keys that fix the shapes of the saved weights: a checkpoint's values win, and
# fine-tuning refuses --hparams that change them. The other EncoderConfig keys (dropout, ...) may
# differ between pretraining and fine-tuning.
SIZE_KEYS = (
    "vocab_size",
    "embedding_size",
    "hidden_size",
    "num_hidden_layers",
    "num_attention_heads",
    "intermediate_size",
    "max_position_embeddings",
    "type_vocab_size",
)
# The ElectraConfig keys that belong to one run and not to the model it produces (optimizer,
# schedule, batch sizes, bookkeeping): saved model folders (pretrained/, finetuned/) leave them
# out, and the run's own model_dir/config.json keeps them for resuming.
RUN_SETTING_KEYS = (
    "learning_rate",
    "lr_decay_power",
    "weight_decay_rate",
    "num_warmup_steps",
    "num_train_steps",
    "train_batch_size",
    "eval_batch_size",
    "adam_beta1",
    "adam_beta2",
    "adam_epsilon",
    "clip_norm",
    "save_checkpoints_steps",
    "keep_checkpoint_max",
    "num_eval_steps",
    "seed",
)


@dataclasses.dataclass
class ElectraConfig:
    """Everything that defines an ELECTRA pretraining run (the reference's PretrainingConfig).

    Sizes follow BERT naming: ``hidden_size`` is H, ``embedding_size`` is E (E != H adds a dense
    E->H projection in each of generator and discriminator). Generator sizes are derived from the
    discriminator's with ``generator_hidden_size`` (a fraction of H) and ``generator_layers`` (a
    fraction of the depth).

    Example:

        config = ElectraConfig.from_json_file("electra_tf/configs/electra_small.json")
        config = config.replace({"learning_rate": 1e-3})  # checked like a config file
        config.generator_hidden                            # 64: a quarter of hidden_size 256
        config.encoder                                     # the discriminator's EncoderConfig
    """

    # Model (discriminator) sizes.
    vocab_size: int = 30522
    embedding_size: int = 128
    hidden_size: int = 256
    num_hidden_layers: int = 12
    num_attention_heads: int = 4
    intermediate_size: int = 1024
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    hidden_dropout_prob: float = 0.1
    attention_probs_dropout_prob: float = 0.1
    # Dropout decides two elements with one random draw (modeling.ElectraDropout: realised rate
    # within 2^-16 of the configured one, measured faster on CPU); false draws one uniform per
    # element as Keras's (and the reference's) dropout does.
    paired_dropout_draws: bool = True
    initializer_range: float = 0.02
    layer_norm_eps: float = 1e-12

    # Generator, as fractions of the discriminator's hidden size and depth.
    generator_hidden_size: float = 0.25
    generator_layers: float = 1.0
    # The generator gets its own word/position/type embeddings (of its hidden size) instead of
    # sharing the discriminator's.
    untied_generator_embeddings: bool = False
    # Replace the generator by a uniform distribution over the vocabulary (an ablation).
    uniform_generator: bool = False
    # Never sample the original token at a masked position.
    disallow_correct: bool = False
    temperature: float = 1.0

    # Objective.
    # False: plain BERT-style masked LM with a full-size model, no discriminator (the baseline).
    electra_objective: bool = True
    mask_prob: float = 0.15
    # Draw the masked positions independently, so one can be drawn twice, as the reference does
    # (its issue #41); false draws them without replacement. A twice-drawn position counts twice
    # in the generator's loss and, in the corrupted input, gets the integer mean of its two
    # samples' ids, as the reference's scatter_update computes it.
    mask_with_replacement: bool = False
    gen_weight: float = 1.0
    disc_weight: float = 50.0
    # The paper's "ELECTRA 15%" ablation: the discriminator loss counts only the masked
    # positions instead of every real token.
    disc_loss_masked_only: bool = False
    # What the main (discriminator-sized) network learns from the generator-corrupted input:
    # "detection" is ELECTRA's replaced-token detection. The paper's other two ablations
    # (section 3.2) predict the original token ids instead, with a masked-LM head tied to the
    # embeddings: "replace_mlm" at the masked positions only (BERT with generator samples in
    # place of [MASK]), "all_tokens_mlm" at every real token, with a copy mechanism: a sigmoid
    # output D per token and P(token) = D * [token is the input] + (1 - D) * softmax. Both are
    # trained with the masked-LM loss at weight 1 (disc_weight applies to detection only).
    discriminator_task: str = "detection"
    # The discriminator's output bias starts at log(p / (1 - p)) for this p. 0.5 is the
    # reference's zero bias. Zero means P(replaced) = 0.5 for every token while only about
    # mask_prob of them are replaced, so the first updates push every token's state the same
    # way; a small discriminator's states then collapse onto one vector within tens of steps.
    # Starting at the replaced rate (about mask_prob) removes that push; a second collapse, once
    # the generator is good, still comes at CPU budgets (README: "ELECTRA vs masked-LM
    # pretraining"). With disc_loss_masked_only the counted tokens are mostly replaced, so the
    # matching value there is about 1 - mask_prob.
    disc_bias_prior: float = 0.5

    # Data and vocabulary. The special-token ids are those of the BERT uncased vocabulary; the
    # trainer overrides them (and vocab_size) from the vocabulary the data was built with.
    max_seq_length: int = 128
    do_lower_case: bool = True
    pad_token_id: int = 0
    cls_token_id: int = 101
    sep_token_id: int = 102
    mask_token_id: int = 103

    # Optimization.
    learning_rate: float = 5e-4
    lr_decay_power: float = 1.0
    weight_decay_rate: float = 0.01
    num_warmup_steps: int = 10000
    num_train_steps: int = 1000000
    train_batch_size: int = 128
    eval_batch_size: int = 128
    adam_beta1: float = 0.9
    adam_beta2: float = 0.999
    adam_epsilon: float = 1e-6
    clip_norm: float = 1.0

    # Bookkeeping.
    save_checkpoints_steps: int = 1000
    keep_checkpoint_max: int = 5
    num_eval_steps: int = 100
    seed: int = 12345

    def __post_init__(self) -> None:
        self.validate()

    # ----------------------------------------------------------------------------------------
    # Derived sizes.
    @property
    def max_predictions_per_seq(self) -> int:
        """P, the number of masked-position slots per sequence (19 at 128, 79 at 512 for 15%)."""
        return int((self.mask_prob + 0.005) * self.max_seq_length)

    @property
    def generator_hidden(self) -> int:
        """The generator's hidden size: round(H * generator_hidden_size) (64 for Small)."""
        if not self.electra_objective:
            return self.hidden_size
        return int(round(self.hidden_size * self.generator_hidden_size))

    @property
    def generator_num_attention_heads(self) -> int:
        """The generator's head count: one per 64 of its hidden size (at least 1); the discriminator's without
        electra_objective."""
        if not self.electra_objective:
            return self.num_attention_heads
        return max(1, self.generator_hidden // 64)

    @property
    def generator_intermediate_size(self) -> int:
        """The generator's feed-forward size: 4 * generator_hidden (intermediate_size without electra_objective)."""
        if not self.electra_objective:
            return self.intermediate_size
        return 4 * self.generator_hidden

    @property
    def generator_num_hidden_layers(self) -> int:
        """The generator's depth: round(num_hidden_layers * generator_layers) (num_hidden_layers without
        electra_objective)."""
        if not self.electra_objective:
            return self.num_hidden_layers
        return int(round(self.num_hidden_layers * self.generator_layers))

    @property
    def generator_embedding_size(self) -> int:
        """E of the generator: shared embeddings have E; untied ones have the generator's H."""
        if self.electra_objective and self.untied_generator_embeddings:
            return self.generator_hidden
        return self.embedding_size

    @property
    def encoder(self) -> EncoderConfig:
        """The discriminator's encoder (the masked LM's with electra_objective=false): the
        network fine-tuning and export start from."""
        return self._encoder(
            self.embedding_size,
            self.hidden_size,
            self.num_hidden_layers,
            self.num_attention_heads,
            self.intermediate_size,
        )

    @property
    def generator_encoder(self) -> EncoderConfig:
        """The generator's encoder (the full-size masked LM with electra_objective=false)."""
        return self._encoder(
            self.generator_embedding_size,
            self.generator_hidden,
            self.generator_num_hidden_layers,
            self.generator_num_attention_heads,
            self.generator_intermediate_size,
        )

    def _encoder(self, embedding_size, hidden_size, layers, heads, intermediate) -> EncoderConfig:
        return EncoderConfig(
            vocab_size=self.vocab_size,
            embedding_size=embedding_size,
            hidden_size=hidden_size,
            num_hidden_layers=layers,
            num_attention_heads=heads,
            intermediate_size=intermediate,
            max_position_embeddings=self.max_position_embeddings,
            type_vocab_size=self.type_vocab_size,
            hidden_dropout_prob=self.hidden_dropout_prob,
            attention_probs_dropout_prob=self.attention_probs_dropout_prob,
            paired_dropout_draws=self.paired_dropout_draws,
            initializer_range=self.initializer_range,
            layer_norm_eps=self.layer_norm_eps,
        )

    # ----------------------------------------------------------------------------------------
    def validate(self, source: str = "config") -> None:
        """Raises UserError (one line, naming ``source``) if the sizes or options cannot work."""

        def fail(message: str) -> None:
            raise UserError(f"{source}: {message}")

        for name in (*SIZE_KEYS, "max_seq_length", "train_batch_size", "eval_batch_size", "num_train_steps"):
            if getattr(self, name) < 1:
                fail(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.hidden_size % self.num_attention_heads:
            fail(f"hidden_size {self.hidden_size} is not divisible by num_attention_heads {self.num_attention_heads}")
        if self.max_seq_length > self.max_position_embeddings:
            fail(f"max_seq_length {self.max_seq_length} exceeds max_position_embeddings {self.max_position_embeddings}")
        if not 0.0 < self.mask_prob < 1.0:
            fail(f"mask_prob must be in (0, 1), got {self.mask_prob}")
        if self.max_predictions_per_seq < 1:
            fail(
                f"mask_prob {self.mask_prob} * max_seq_length {self.max_seq_length} leaves no "
                "masked positions; raise one of them"
            )
        if self.electra_objective and not self.uniform_generator:
            if self.generator_hidden < 1 or self.generator_num_hidden_layers < 1:
                fail(
                    f"generator_hidden_size {self.generator_hidden_size} and generator_layers "
                    f"{self.generator_layers} give an empty generator; raise them"
                )
            if self.generator_hidden % self.generator_num_attention_heads:
                fail(
                    f"generator hidden size {self.generator_hidden} is not divisible by its "
                    f"{self.generator_num_attention_heads} heads; pick another "
                    "generator_hidden_size"
                )
        if self.discriminator_task not in DISCRIMINATOR_TASKS:
            fail(
                f"discriminator_task must be one of {', '.join(DISCRIMINATOR_TASKS)}, got "
                f"{json.dumps(self.discriminator_task)}"
            )
        if self.discriminator_task != "detection" and self.disc_loss_masked_only:
            fail(
                'disc_loss_masked_only is an option of discriminator_task "detection"; '
                f'"{self.discriminator_task}" already sets which positions count'
            )
        if not 0.0 < self.disc_bias_prior < 1.0:
            fail(f"disc_bias_prior must be in (0, 1), got {self.disc_bias_prior} (0.5 gives the reference's zero bias)")
        if self.temperature <= 0:
            fail(f"temperature must be positive, got {self.temperature}")
        if self.num_warmup_steps < 0:
            fail(f"num_warmup_steps must be >= 0, got {self.num_warmup_steps}")
        for name in SPECIAL_TOKEN_ID_KEYS:
            if not 0 <= getattr(self, name) < self.vocab_size:
                fail(f"{name} {getattr(self, name)} is outside the vocabulary (vocab_size {self.vocab_size})")
        for name in ("hidden_dropout_prob", "attention_probs_dropout_prob"):
            if not 0.0 <= getattr(self, name) < 1.0:
                fail(f"{name} must be in [0, 1), got {getattr(self, name)}")

    # ----------------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Every key, run settings included, as a plain dict (JSON-serialisable)."""
        return dataclasses.asdict(self)

    def to_json_file(self, path: str | os.PathLike) -> None:
        """The whole config: a run's model_dir/config.json, from which the run resumes."""
        fileio.write_json_atomic(path, self.to_dict(), sort_keys=True)

    def model_dict(self) -> dict[str, Any]:
        """What a saved model folder records: every key but the run's settings (RUN_SETTING_KEYS).

        Reading such a file back (from_dict) gives those keys their defaults, which nothing that
        loads a saved model uses.
        """
        return {key: value for key, value in self.to_dict().items() if key not in RUN_SETTING_KEYS}

    def to_model_json_file(self, path: str | os.PathLike) -> None:
        """Writes model_dict() (pretrained/ and finetuned/ folders' config.json)."""
        fileio.write_json_atomic(path, self.model_dict(), sort_keys=True)

    @classmethod
    def from_json_file(cls, path: str | os.PathLike) -> "ElectraConfig":
        """Reads a config JSON file (local or remote): its keys over the defaults, checked.

        Args:
          path: a JSON object of config keys, e.g. a run's model_dir/config.json.

        Returns:
          The validated ElectraConfig.

        Raises:
          UserError: the file cannot be read, is not a JSON object, or has an unknown key, a value of
            the wrong type or an invalid value (the message names the file, and the line for bad JSON).
        """
        return cls.from_dict(_read_json_object(os.fspath(path)), source=os.fspath(path))

    @classmethod
    def from_dict(cls, values: Mapping[str, Any], source: str = "config") -> "ElectraConfig":
        """An ElectraConfig from the defaults with ``values`` applied and checked.

        Args:
          values: config key -> value (ints are accepted for float keys).
          source: names the origin in error messages.

        Returns:
          The validated ElectraConfig.

        Raises:
          UserError: ``values`` is not a mapping, or has an unknown key (with close matches
            suggested), a value of the wrong type or an invalid combination.
        """
        config = cls.__new__(cls)
        for field in dataclasses.fields(cls):
            setattr(config, field.name, field.default)
        config._apply(values, source)
        return config

    def replace(self, values: Mapping[str, Any], source: str = "hparams") -> "ElectraConfig":
        """A copy with ``values`` applied (checked like a config file)."""
        config = dataclasses.replace(self)
        config._apply(values, source)
        return config

    def with_vocab(self, tokens: Sequence[str], source: str = "vocabulary") -> "ElectraConfig":
        """A copy whose vocab_size and [PAD]/[CLS]/[SEP]/[MASK] ids are those of ``tokens``.

        ``tokens`` is the vocabulary in id order (one line of vocab.txt each). The BERT file has
        them at 0/101/102/103, the project's learned vocabularies at 0/2/3/4.
        """
        index = {token: position for position, token in enumerate(tokens)}
        values: dict[str, Any] = {"vocab_size": len(tokens)}
        for key, token in SPECIAL_TOKENS.items():
            if token not in index:
                raise UserError(
                    f"{source}: the vocabulary has no {token} token, which "
                    "pretraining needs; rebuild it with the special tokens"
                )
            values[key] = index[token]
        return self.replace(values, source=source)

    def _apply(self, values: Mapping[str, Any], source: str) -> None:
        if not isinstance(values, Mapping):
            raise UserError(f"{source}: expected a JSON object of config keys, got {type(values).__name__}")
        fields = {field.name: field for field in dataclasses.fields(self)}
        for key, value in values.items():
            if key not in fields:
                close = difflib.get_close_matches(key, list(fields), n=3, cutoff=0.6)
                hint = f"did you mean {', '.join(close)}?" if close else f"valid keys: {', '.join(sorted(fields))}"
                raise UserError(f"{source}: unknown config key '{key}'; {hint}")
            setattr(self, key, _checked_value(key, value, fields[key].type, source))
        self.validate(source)


_TYPES = {"int": int, "float": float, "bool": bool, "str": str}


def _checked_value(key: str, value: Any, type_name: Any, source: str) -> Any:
    expected = _TYPES[type_name if isinstance(type_name, str) else type_name.__name__]
    ok = isinstance(value, expected) and not (expected is not bool and isinstance(value, bool))
    if expected is float and isinstance(value, int) and not isinstance(value, bool):
        value, ok = float(value), True
    if expected is int and isinstance(value, float) and value.is_integer():
        value, ok = int(value), True
    if not ok:
        raise UserError(
            f"{source}: config key '{key}' must be {expected.__name__}, got "
            f"{json.dumps(value)} ({type(value).__name__})"
        )
    return value


def _read_json_object(path: str) -> dict[str, Any]:
    try:
        text = fileio.read_text(path)
    except fileio.errors() as error:
        reason = getattr(error, "strerror", None) or getattr(error, "message", None) or error
        raise UserError(f"{path}: cannot read config file ({reason})") from None
    try:
        values = json.loads(text)
    except json.JSONDecodeError as error:
        raise UserError(f"{path}:{error.lineno}: invalid JSON ({error.msg})") from None
    if not isinstance(values, dict):
        raise UserError(f"{path}: expected a JSON object of config keys")
    return values


def preset_names() -> list[str]:
    """The names of the bundled presets (electra_tf/configs/*.json without the suffix), sorted."""
    return sorted(path.stem for path in CONFIGS_DIR.glob("*.json"))


def load_config(
    config: str | os.PathLike, hparams: str | os.PathLike | Mapping[str, Any] | None = None
) -> ElectraConfig:
    """Reads a preset name ("electra_small") or a JSON file, then applies ``hparams`` on top.

    ``hparams`` is a dict, a JSON object string ('{"learning_rate": 1e-3}') or a path to a JSON
    file. Unknown keys and wrong types raise a one-line UserError naming where they came from.

    Args:
      config: a preset name (electra_tf/configs/<name>.json) or a path to a JSON config.
      hparams: overrides applied on top, or None.

    Returns:
      The ElectraConfig.

    Example:

        config = load_config("electra_small", {"learning_rate": 1e-3})
        config.hidden_size, config.learning_rate  # (256, 0.001)
        config = load_config("my_config.json", "overrides.json")
    """
    config_text = os.fspath(config)
    path = config_text
    if config_text.endswith(".json") or fileio.exists(path):
        if not fileio.isfile(path):
            raise UserError(
                f"config file {config_text} not found; give a JSON file or one of "
                f"the presets: {', '.join(preset_names())}"
            )
        result = ElectraConfig.from_json_file(path)
    else:
        preset = CONFIGS_DIR / f"{config_text}.json"
        if not preset.is_file():
            close = difflib.get_close_matches(config_text, preset_names(), n=3, cutoff=0.5)
            hint = f"did you mean {', '.join(close)}? " if close else ""
            raise UserError(
                f"unknown config '{config_text}': {hint}give a JSON file or one of "
                f"the presets: {', '.join(preset_names())}"
            )
        result = ElectraConfig.from_json_file(str(preset))

    values, source = parse_hparams(hparams)
    return result.replace(values, source=source) if values else result


def parse_hparams(hparams: str | os.PathLike | Mapping[str, Any] | None) -> tuple[dict[str, Any], str]:
    """--hparams as (a dict of config keys, where it came from for error messages).

    ``hparams`` is a dict, a JSON object string ('{"learning_rate": 1e-3}'), a path to a JSON
    file, or None/"" for none. Keys are not checked here; ElectraConfig.replace checks them.
    """
    if hparams is None or (isinstance(hparams, str) and not hparams.strip()):
        return {}, "hparams"
    if isinstance(hparams, Mapping):
        return dict(hparams), "hparams"
    hparams_text = str(hparams)
    if hparams_text.lstrip().startswith("{"):
        try:
            values = json.loads(hparams_text)
        except json.JSONDecodeError as error:
            raise UserError(
                f"hparams: invalid JSON at column {error.colno} ({error.msg}); "
                "quote keys and strings with double quotes"
            ) from None
        if not isinstance(values, dict):
            raise UserError("hparams: expected a JSON object of config keys")
        return values, "hparams"
    if not fileio.isfile(hparams_text):
        raise UserError(f"hparams '{hparams_text}' is neither a JSON object nor an existing JSON file")
    return _read_json_object(hparams_text), hparams_text
