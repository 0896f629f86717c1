"""ELECTRA networks in Keras 3: shared embeddings, a BERT encoder, generator and discriminator.

Only keras.layers / keras.ops / keras.random are used, so the same code runs on the TensorFlow
and JAX backends. Every layer creates its variables at construction time (sizes come from the
config), so a freshly built model can be restored from a checkpoint before its first step.

Weight layout. Keras variable paths (``variable_paths(model)``) mirror the reference checkpoint
names; ``{i}`` is the 0-based layer index and kernels are [in, out] like the reference's:

    electra/embeddings/word_embeddings [V, E]      electra/embeddings/word_embeddings
    electra/embeddings/position_embeddings [512, E], .../token_type_embeddings [2, E]
    electra/embeddings/LayerNorm/{gamma,beta}      electra/embeddings/LayerNorm/{gamma,beta}
    electra/embeddings_project/{kernel,bias}       same (only where E != H)
    electra/layer_{i}/{query,key,value}/...        electra/encoder/layer_{i}/attention/self/...
    electra/layer_{i}/attention_output/...         .../attention/output/dense/{kernel,bias}
    electra/layer_{i}/attention_LayerNorm/...      .../attention/output/LayerNorm/{gamma,beta}
    electra/layer_{i}/intermediate/...             .../intermediate/dense/{kernel,bias}
    electra/layer_{i}/output/...                   .../output/dense/{kernel,bias}
    electra/layer_{i}/output_LayerNorm/...         .../output/LayerNorm/{gamma,beta}
    discriminator_predictions/dense, dense_1       discriminator_predictions/dense, dense_1
    generator/embeddings_project, generator/layer_{i}/...   generator/... (same structure)
    generator_predictions/{dense, LayerNorm, output_bias}   same

The shared embeddings are one set of variables under ``electra/embeddings`` (an untied generator
has its own under ``generator/embeddings``). ``.weights.h5`` files written by Keras are keyed by
the object structure (``embeddings``, ``embeddings_project``, ``encoder_layers``, ...), so a
backbone's file loads into any ``ElectraBackbone`` built from the same config.
"""

from __future__ import annotations

import math
import os

import keras
from keras import ops

from electra_tf import artifacts, fileio
from electra_tf.config import ElectraConfig, EncoderConfig
from electra_tf.errors import UserError

# Added to attention scores of padding keys before the softmax (float32), as BERT does.
_MASKED_SCORE = -10000.0


def gelu_erf(x):
    """The exact GELU, x * Phi(x) with the error function (BERT's, not the tanh approximation)."""
    return keras.activations.gelu(x, approximate=False)


def _initializer(config: EncoderConfig) -> keras.initializers.Initializer:
    # A fresh instance per variable: one unseeded instance reused would repeat its values.
    return keras.initializers.TruncatedNormal(stddev=config.initializer_range)


def glorot_uniform() -> keras.initializers.Initializer:
    """The kernel initializer of layers the reference creates without one: TF1's tf.layers.dense
    default, glorot-uniform (the discriminator's dense(1), embeddings_project, the fine-tuning
    heads). For a [256, 1] kernel its range is +-0.153, std 0.088: about 4x the truncated-normal
    0.02 of every other layer."""
    return keras.initializers.GlorotUniform()


def matmul_dtype(layer: keras.layers.Layer) -> str:
    """The dtype of ``layer``'s matmul operands: its compute dtype (bfloat16 or float16 under a
    mixed policy, else float32)."""
    return layer.dtype_policy.compute_dtype


@keras.saving.register_keras_serializable(package="electra_tf")
class ElectraDense(keras.layers.Dense):
    """keras.layers.Dense whose output is float32 under every dtype policy: under a mixed
    policy only the matmul runs in the compute dtype, the bias and the activation in float32.

    Why: on CPU, TensorFlow's bfloat16 element-wise kernels are several times slower than their
    float32 ones (erf GELU 10x, dropout's random numbers 3x, the embedding gradient's segment
    sum 4x, measured in the README's speed section), while the matmuls gain. inputs [..., in]
    -> [..., units] float32; with a float32 policy this is exactly keras.layers.Dense.
    """

    def __init__(self, units, **kwargs):
        kwargs.setdefault("autocast", False)  # the matmul casts its own operands
        super().__init__(units, **kwargs)

    def call(self, inputs, training=None):
        dtype = matmul_dtype(self)
        outputs = ops.matmul(ops.cast(inputs, dtype), ops.cast(self.kernel, dtype))
        outputs = ops.cast(outputs, "float32")
        if self.use_bias:
            outputs = ops.add(outputs, ops.cast(self.bias, "float32"))
        if self.activation is not None:
            outputs = self.activation(outputs)
        return outputs

    def compute_output_spec(self, inputs, training=None):
        """Symbolic output: inputs' shape with the last axis replaced by ``units`` ([..., units]), float32."""
        shape = tuple(inputs.shape[:-1]) + (self.units,)
        return keras.KerasTensor(shape, dtype="float32")


def _dense(
    units: int, config: EncoderConfig, name: str, activation=None, bias_initializer="zeros", kernel_initializer=None
) -> ElectraDense:
    return ElectraDense(
        units,
        activation=activation,
        kernel_initializer=kernel_initializer or _initializer(config),
        bias_initializer=bias_initializer,
        name=name,
    )


def _layer_norm(config: EncoderConfig, name: str) -> keras.layers.LayerNormalization:
    # float32 under every policy (Keras computes a mixed-policy LayerNorm in float32 anyway, but
    # casts its output back): the activations between layers stay float32, see ElectraDense.
    return keras.layers.LayerNormalization(epsilon=config.layer_norm_eps, name=name, dtype="float32")


@keras.saving.register_keras_serializable(package="electra_tf")
class ElectraDropout(keras.layers.Dropout):
    """keras.layers.Dropout that draws one random 30-bit integer for every two inputs.

    Why: the random numbers are most of dropout's cost, and on CPU they were the largest
    non-matmul cost of the pretraining step (12% of it in bfloat16; attention probabilities alone
    are batch x heads x length^2 draws per layer). Each draw's low and high 15 bits decide two
    elements, so the keep test is `bits >= round(rate * 2^15)`: the realised rate differs from
    `rate` by at most 2^-16 (0.1 becomes 0.100006). Kept elements are scaled by 1/(1-rate) as
    Keras does. Inputs whose last dimension is odd, and a noise_shape, use Keras's dropout.
    The layer and its seed generator have keras.layers.Dropout's structure, so checkpoints and
    saved models are unchanged.
    inputs [..., d] -> same shape and dtype.
    """

    _HALF_BITS = 15

    def call(self, inputs, training=False):
        last = inputs.shape[-1]
        if not training or self.rate <= 0 or self.noise_shape is not None or last is None or last % 2:
            return super().call(inputs, training=training)
        shape = ops.shape(inputs)
        draw_shape = tuple(shape[:-1]) + (last // 2,)
        bits = keras.random.randint(draw_shape, 0, 1 << (2 * self._HALF_BITS), dtype="int32", seed=self.seed_generator)
        mask = (1 << self._HALF_BITS) - 1
        halves = ops.concatenate([ops.bitwise_and(bits, mask), ops.right_shift(bits, self._HALF_BITS)], axis=-1)
        keep = halves >= int(round(self.rate * (1 << self._HALF_BITS)))
        scaled = inputs / ops.cast(1.0 - self.rate, inputs.dtype)
        return ops.where(keep, scaled, ops.zeros_like(inputs))


def _dropout(rate: float, config: EncoderConfig) -> keras.layers.Dropout:
    # float32 masks: drawing bfloat16 uniforms is 3x slower on CPU (see ElectraDense).
    layer = ElectraDropout if config.paired_dropout_draws else keras.layers.Dropout
    return layer(rate, dtype="float32")


def as_encoder(config: EncoderConfig | ElectraConfig) -> EncoderConfig:
    """``config`` itself, or an ElectraConfig's discriminator encoder (ElectraConfig.encoder)."""
    if isinstance(config, ElectraConfig):
        return config.encoder
    if not isinstance(config, EncoderConfig):
        raise TypeError(f"expected an EncoderConfig or ElectraConfig, got {type(config).__name__}")
    return config


def _encoder_only(config: EncoderConfig, model: str) -> EncoderConfig:
    # An ElectraConfig is refused here: it holds two encoders, and taking the discriminator's for
    # a generator would silently build a full-size one.
    if isinstance(config, ElectraConfig):
        raise TypeError(
            f"{model} takes an EncoderConfig; build one from an ElectraConfig with "
            f"build_{model.lower().replace('electra', '')}(config)"
        )
    return as_encoder(config)


class BuiltFromEncoderConfig:
    """Mixin for layers and models whose get_config() stores their EncoderConfig as a dict under
    "encoder" beside their own arguments: rebuilds them from that."""

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        return cls(EncoderConfig.from_dict(config.pop("encoder")), **config)


@keras.saving.register_keras_serializable(package="electra_tf")
class ElectraEmbeddings(BuiltFromEncoderConfig, keras.layers.Layer):
    """Word + position + token-type embeddings -> LayerNorm -> dropout.

    ``config``: an EncoderConfig (or an ElectraConfig: its discriminator's encoder).
    ``embedding_size`` defaults to its ``embedding_size``. Input ids and segment ids
    [batch, seq] -> embeddings [batch, seq, E].
    """

    def __init__(self, config: EncoderConfig | ElectraConfig, embedding_size: int | None = None, **kwargs):
        kwargs.setdefault("name", "embeddings")
        # Looked up in float32 under every policy: casting the whole [V, E] table to bfloat16
        # for a gather costs more than it saves, and the output is float32 like ElectraDense's.
        kwargs.setdefault("autocast", False)
        super().__init__(**kwargs)
        self.encoder = config = as_encoder(config)
        self.embedding_size = embedding_size or config.embedding_size
        self.layer_norm = _layer_norm(config, "LayerNorm")
        self.dropout = _dropout(config.hidden_dropout_prob, config)
        self.build(None)

    def build(self, input_shape=None):
        config, width = self.encoder, self.embedding_size
        self.word_embeddings = self.add_weight(
            shape=(config.vocab_size, width), initializer=_initializer(config), name="word_embeddings"
        )
        self.position_embeddings = self.add_weight(
            shape=(config.max_position_embeddings, width), initializer=_initializer(config), name="position_embeddings"
        )
        self.token_type_embeddings = self.add_weight(
            shape=(config.type_vocab_size, width), initializer=_initializer(config), name="token_type_embeddings"
        )
        self.layer_norm.build((None, None, width))
        self.built = True

    def call(self, input_ids, segment_ids, training=None):
        seq_length = ops.shape(input_ids)[1]
        words = ops.take(self.word_embeddings, input_ids, axis=0)
        types = ops.take(self.token_type_embeddings, segment_ids, axis=0)
        positions = ops.expand_dims(self.position_embeddings[:seq_length], 0)
        embeddings = self.layer_norm(words + types + positions)
        return self.dropout(embeddings, training=training)

    def get_config(self):
        return {**super().get_config(), "encoder": self.encoder.to_dict(), "embedding_size": self.embedding_size}


@keras.saving.register_keras_serializable(package="electra_tf")
class TransformerLayer(BuiltFromEncoderConfig, keras.layers.Layer):
    """One BERT (post-LayerNorm) encoder layer: self-attention and a GELU(erf) feed-forward.

    hidden [batch, seq, H] float32, attention_bias [batch, 1, 1, seq] (float32, 0 or -10000)
    -> [batch, seq, H] float32. Under a mixed policy only the matmul operands are in the compute
    dtype (see ElectraDense); softmax, LayerNorm, GELU and dropout run in float32. The sizes
    are explicit; ``config`` (an EncoderConfig) gives the dropout rates, initializer and
    LayerNorm epsilon.
    """

    def __init__(
        self, config: EncoderConfig, hidden_size: int, num_attention_heads: int, intermediate_size: int, **kwargs
    ):
        kwargs.setdefault("autocast", False)
        super().__init__(**kwargs)
        self.encoder = config = as_encoder(config)
        self.hidden_size = hidden_size
        self.num_attention_heads = num_attention_heads
        self.intermediate_size = intermediate_size
        self.head_size = hidden_size // num_attention_heads
        self.query = _dense(hidden_size, config, "query")
        self.key = _dense(hidden_size, config, "key")
        self.value = _dense(hidden_size, config, "value")
        self.attention_output = _dense(hidden_size, config, "attention_output")
        self.attention_layer_norm = _layer_norm(config, "attention_LayerNorm")
        self.intermediate = _dense(intermediate_size, config, "intermediate", activation=gelu_erf)
        self.output_dense = _dense(hidden_size, config, "output")
        self.output_layer_norm = _layer_norm(config, "output_LayerNorm")
        self.attention_dropout = _dropout(config.attention_probs_dropout_prob, config)
        self.hidden_dropout = _dropout(config.hidden_dropout_prob, config)
        self.build(None)

    def build(self, input_shape=None):
        hidden = (None, None, self.hidden_size)
        for dense in (self.query, self.key, self.value, self.attention_output, self.intermediate):
            dense.build(hidden)
        self.output_dense.build((None, None, self.intermediate_size))
        self.attention_layer_norm.build(hidden)
        self.output_layer_norm.build(hidden)
        self.built = True

    def _split_heads(self, x, batch, seq_length):
        return ops.reshape(x, (batch, seq_length, self.num_attention_heads, self.head_size))

    def call(self, hidden, attention_bias, training=None, first_position_only=False):
        """``first_position_only``: return [batch, 1, H], the output at position 0 ([CLS]) only.

        Keys and values still come from every position, so that row equals row 0 of the full
        output; a classifier's last layer needs nothing else, and skipping the other queries'
        attention and feed-forward work saves most of that layer.
        """
        shape = ops.shape(hidden)
        batch, seq_length = shape[0], shape[1]
        dtype = matmul_dtype(self)
        projections = (self.query, self.key, self.value)
        if first_position_only:
            residual = hidden[:, :1]
            query = ops.cast(self.query(residual), dtype)
            projections = projections[1:]
        else:
            residual = hidden
        # One [H, 3H] (or [H, 2H]) matmul instead of separate [H, H] ones (~30% faster on CPU);
        # the variables stay separate so they keep the reference's names.
        kernel = ops.concatenate([ops.cast(d.kernel, dtype) for d in projections], -1)
        bias = ops.concatenate([d.bias for d in projections], -1)
        projected = ops.cast(ops.matmul(ops.cast(hidden, dtype), kernel), "float32") + bias
        projected = ops.split(ops.cast(projected, dtype), len(projections), axis=-1)
        if first_position_only:
            key, value = projected
        else:
            query, key, value = projected
        query_length = 1 if first_position_only else seq_length
        # Scaling the queries (seq x d) is cheaper than scaling the scores (seq x seq).
        query = self._split_heads(query, batch, query_length) * ops.cast(1.0 / math.sqrt(self.head_size), dtype)
        key = self._split_heads(key, batch, seq_length)
        value = self._split_heads(value, batch, seq_length)
        scores = ops.einsum("bqnd,bknd->bnqk", query, key)
        probs = ops.softmax(ops.cast(scores, "float32") + attention_bias, axis=-1)
        probs = self.attention_dropout(probs, training=training)
        context = ops.einsum("bnqk,bknd->bqnd", ops.cast(probs, dtype), value)
        context = ops.reshape(context, (batch, query_length, self.hidden_size))
        attended = self.attention_layer_norm(
            residual + self.hidden_dropout(self.attention_output(context), training=training)
        )
        transformed = self.output_dense(self.intermediate(attended))
        return self.output_layer_norm(attended + self.hidden_dropout(transformed, training=training))

    def get_config(self):
        return {
            **super().get_config(),
            "encoder": self.encoder.to_dict(),
            "hidden_size": self.hidden_size,
            "num_attention_heads": self.num_attention_heads,
            "intermediate_size": self.intermediate_size,
        }


def attention_bias_from_mask(input_mask):
    """input_mask [batch, seq] (1 real, 0 pad) -> additive float32 bias [batch, 1, 1, seq]."""
    mask = ops.cast(input_mask, "float32")
    return ops.expand_dims(ops.expand_dims((1.0 - mask) * _MASKED_SCORE, 1), 1)


@keras.saving.register_keras_serializable(package="electra_tf")
class ElectraBackbone(BuiltFromEncoderConfig, keras.Model):
    """Embeddings (possibly shared) + E->H projection when E != H + the Transformer encoder.

    ``call({"input_ids", "input_mask", "segment_ids"})`` (int [batch, seq]) returns the sequence
    output [batch, seq, H]; [CLS] is position 0. This is the model fine-tuning and export load
    (see the module docstring for the weight layout).

    Args:
      config: the encoder's sizes, an EncoderConfig; an ElectraConfig stands for its
        discriminator's encoder (``config.encoder``; the generator's is
        ``config.generator_encoder``).
      embeddings: embeddings to share (the generator shares the discriminator's); None builds
        the encoder's own.

    Example:

        config = electra_tf.load_config("electra_small")
        backbone = ElectraBackbone(config)            # config.encoder's sizes
        hidden = backbone({"input_ids": ids, "input_mask": mask, "segment_ids": types})
        # hidden: [batch, seq, 256]
    """

    def __init__(self, config: EncoderConfig | ElectraConfig, embeddings: ElectraEmbeddings | None = None, **kwargs):
        kwargs.setdefault("name", "electra")
        super().__init__(**kwargs)
        self.encoder = config = as_encoder(config)
        self.hidden_size = config.hidden_size
        # Variables are created under the model's name ("electra/layer_0/query/kernel",
        # "generator/...") so their paths mirror the reference checkpoint's scopes.
        with keras.name_scope(self.name):
            if embeddings is None:
                embeddings = ElectraEmbeddings(config)
            self.embeddings = embeddings
            width = embeddings.embedding_size
            self.embeddings_project = (
                _dense(self.hidden_size, config, "embeddings_project", kernel_initializer=glorot_uniform())
                if width != self.hidden_size
                else None
            )
            if self.embeddings_project is not None:
                self.embeddings_project.build((None, None, width))
            self.encoder_layers = [
                TransformerLayer(
                    config,
                    self.hidden_size,
                    config.num_attention_heads,
                    config.intermediate_size,
                    name=f"layer_{index}",
                )
                for index in range(config.num_hidden_layers)
            ]
        self.built = True

    def call(self, inputs, training=None, cls_only=False):
        """``cls_only=True`` returns [batch, 1, H]: the [CLS] output alone (equal to position 0 of
        the full output), computed without the last layer's work for the other positions."""
        input_ids = ops.cast(inputs["input_ids"], "int32")
        hidden = self.embeddings(input_ids, ops.cast(inputs["segment_ids"], "int32"), training=training)
        if self.embeddings_project is not None:
            hidden = self.embeddings_project(hidden)
        attention_bias = attention_bias_from_mask(inputs["input_mask"])
        last = len(self.encoder_layers) - 1
        for index, layer in enumerate(self.encoder_layers):
            hidden = layer(hidden, attention_bias, training=training, first_position_only=cls_only and index == last)
        if cls_only and not self.encoder_layers:
            hidden = hidden[:, :1]
        return hidden

    def get_config(self):
        return {"encoder": self.encoder.to_dict(), "name": self.name}


@keras.saving.register_keras_serializable(package="electra_tf")
class ElectraDiscriminator(BuiltFromEncoderConfig, keras.Model):
    """Backbone + replaced-token head dense(H, gelu) -> dense(1).

    Features dict -> logits [batch, seq] (float32); sigmoid(logit) = P(token was replaced).

    With ``task`` "replace_mlm" or "all_tokens_mlm" (the paper's ablations; ElectraConfig's
    ``discriminator_task``) it also has ``lm_head``, a masked-LM head tied to the word
    embeddings (``mlm_logits``); for "all_tokens_mlm" the dense(1) head gives the copy logit,
    and "replace_mlm" has no dense(1) head. ``bias_prior`` p starts the dense(1) bias at
    log(p / (1 - p)) (ElectraConfig's ``disc_bias_prior``). ``build_discriminator(config)``
    builds one from an ElectraConfig.
    """

    def __init__(
        self,
        config: EncoderConfig,
        embeddings: ElectraEmbeddings | None = None,
        task: str = "detection",
        bias_prior: float = 0.5,
        **kwargs,
    ):
        kwargs.setdefault("name", "discriminator")
        super().__init__(**kwargs)
        self.encoder = config = _encoder_only(config, "ElectraDiscriminator")
        self.task, self.bias_prior = task, bias_prior
        self.backbone = ElectraBackbone(config, embeddings=embeddings, name="electra")
        self.head_dense = self.head_logit = self.lm_head = None
        if task != "replace_mlm":
            with keras.name_scope("discriminator_predictions"):
                self.head_dense = _dense(config.hidden_size, config, "dense", activation=gelu_erf)
                self.head_logit = _dense(
                    1,
                    config,
                    "dense_1",
                    bias_initializer=(keras.initializers.Constant(math.log(bias_prior / (1.0 - bias_prior)))),
                    kernel_initializer=glorot_uniform(),
                )
                self.head_dense.build((None, None, config.hidden_size))
                self.head_logit.build((None, None, config.hidden_size))
        if task != "detection":
            self.lm_head = MaskedLMHead(
                config, self.backbone.embeddings, config.hidden_size, name="discriminator_lm_predictions"
            )
        self.built = True

    def call(self, inputs, training=None):
        return self.detection_logits(self.backbone(inputs, training=training))

    def detection_logits(self, hidden):
        """hidden [batch, seq, H] -> [batch, seq] float32: the replaced-token (or copy) logit."""
        if self.head_logit is None:
            raise UserError('a discriminator_task "replace_mlm" model has no per-token binary head; use its encoder')
        return ops.cast(ops.squeeze(self.head_logit(self.head_dense(hidden)), -1), "float32")

    def mlm_logits(self, hidden, positions=None):
        """hidden [batch, seq, H] (and positions [batch, P]) -> [batch, P or seq, V] float32."""
        if positions is not None:
            hidden = ops.take_along_axis(hidden, ops.expand_dims(ops.cast(positions, "int32"), -1), axis=1)
        return self.lm_head(hidden)

    def get_config(self):
        return {"encoder": self.encoder.to_dict(), "task": self.task, "bias_prior": self.bias_prior, "name": self.name}


class MaskedLMHead(keras.layers.Layer):
    """dense(E, gelu) -> LayerNorm -> h @ word_embeddings^T + output_bias.

    The output projection IS the embedding variable (tied); only the bias is the head's own.
    hidden [batch, P, H_gen] -> logits [batch, P, V] in float32.
    """

    def __init__(self, config: EncoderConfig, embeddings: ElectraEmbeddings, input_size: int, **kwargs):
        kwargs.setdefault("name", "generator_predictions")
        kwargs.setdefault("autocast", False)  # as ElectraDense: matmul operands only
        super().__init__(**kwargs)
        self.encoder = config = as_encoder(config)
        self.embeddings = embeddings
        self.input_size = input_size
        width = embeddings.embedding_size
        self.dense = _dense(width, config, "dense", activation=gelu_erf)
        self.layer_norm = _layer_norm(config, "LayerNorm")
        self.build(None)

    def build(self, input_shape=None):
        width = self.embeddings.embedding_size
        self.dense.build((None, None, self.input_size))
        self.layer_norm.build((None, None, width))
        self.output_bias = self.add_weight(shape=(self.encoder.vocab_size,), initializer="zeros", name="output_bias")
        self.built = True

    def call(self, hidden):
        dtype = matmul_dtype(self)
        hidden = self.layer_norm(self.dense(hidden))
        table = ops.cast(self.embeddings.word_embeddings, dtype)
        # One [rows, E] x [E, V] matmul: an einsum over the batch makes TensorFlow compute the
        # table's gradient as a batch of matmuls and then sum them (9% of an ELECTRA-Small
        # step on CPU, against ~3% for this).
        shape = ops.shape(hidden)
        rows = ops.reshape(ops.cast(hidden, dtype), (-1, shape[-1]))
        logits = ops.matmul(rows, ops.transpose(table))
        logits = ops.reshape(logits, (shape[0], shape[1], self.encoder.vocab_size))
        return ops.cast(logits, "float32") + self.output_bias


@keras.saving.register_keras_serializable(package="electra_tf")
class ElectraGenerator(BuiltFromEncoderConfig, keras.Model):
    """The generator (a small masked LM): backbone + tied MLM head.

    ``call(inputs, masked_positions)``: features dict and positions [batch, P] -> logits
    [batch, P, V] (float32), computed only at those positions. Without positions, logits for
    every position [batch, seq, V]. ``config`` is the generator's EncoderConfig
    (ElectraConfig.generator_encoder); ``backbone_name`` scopes its variables ("generator", or
    "electra" for the full-size masked LM of electra_objective=false). ``build_generator(config)``
    builds one from an ElectraConfig.
    """

    def __init__(
        self,
        config: EncoderConfig,
        embeddings: ElectraEmbeddings | None = None,
        backbone_name: str = "generator",
        **kwargs,
    ):
        kwargs.setdefault("name", "generator")
        super().__init__(**kwargs)
        self.encoder = config = _encoder_only(config, "ElectraGenerator")
        self.backbone_name = backbone_name
        self.backbone = ElectraBackbone(config, embeddings=embeddings, name=backbone_name)
        self.lm_head = MaskedLMHead(config, self.backbone.embeddings, self.backbone.hidden_size)
        self.built = True

    def call(self, inputs, masked_positions=None, training=None):
        hidden = self.backbone(inputs, training=training)
        if masked_positions is not None:
            hidden = ops.take_along_axis(hidden, ops.expand_dims(ops.cast(masked_positions, "int32"), -1), axis=1)
        return self.lm_head(hidden)

    def get_config(self):
        return {"encoder": self.encoder.to_dict(), "backbone_name": self.backbone_name, "name": self.name}


def build_discriminator(config: ElectraConfig, embeddings: ElectraEmbeddings | None = None) -> ElectraDiscriminator:
    """The discriminator of ``config``: its encoder, discriminator_task and disc_bias_prior."""
    return ElectraDiscriminator(
        config.encoder, embeddings=embeddings, task=config.discriminator_task, bias_prior=config.disc_bias_prior
    )


def build_generator(config: ElectraConfig, embeddings: ElectraEmbeddings | None = None) -> ElectraGenerator:
    """The generator of ``config``; it shares ``embeddings`` unless the config unties them.

    Without the ELECTRA objective this is the full-size BERT-style model that is kept.
    """
    if not config.electra_objective:
        return ElectraGenerator(config.encoder, embeddings=embeddings, backbone_name="electra")
    if config.untied_generator_embeddings:
        embeddings = None
    return ElectraGenerator(config.generator_encoder, embeddings=embeddings)


def variable_paths(model: keras.layers.Layer) -> dict[str, tuple[int, ...]]:
    """Keras variable path -> shape for every (deduplicated) variable of ``model``."""
    return {variable.path: tuple(variable.shape) for variable in model.weights}


# The pretrained/ folder's names, owned by electra_tf.artifacts (kept here for older imports).
CONFIG_FILE = artifacts.CONFIG_FILE
BACKBONE_WEIGHTS_FILE = artifacts.BACKBONE_WEIGHTS_FILE
DISCRIMINATOR_WEIGHTS_FILE = artifacts.DISCRIMINATOR_WEIGHTS_FILE
GENERATOR_WEIGHTS_FILE = artifacts.GENERATOR_WEIGHTS_FILE


def load_pretrained_backbone(directory: str | os.PathLike) -> tuple[ElectraConfig, ElectraBackbone]:
    """Reads what ``save_pretrained`` wrote: the config and the encoder fine-tuning starts from.

    That encoder is the discriminator's (or, for electra_objective=false, the masked LM's).

    Args:
      directory: a folder written by save_pretrained (local or gs://), holding config.json and
        backbone.weights.h5.

    Returns:
      (config, backbone): the ElectraConfig and the ElectraBackbone with its weights loaded.

    Raises:
      UserError: a file is missing.

    Example:

        config, backbone = load_pretrained_backbone("runs/small/pretrained")
        hidden = backbone({"input_ids": ids, "input_mask": mask, "segment_ids": types})
        # ids, mask, types: int32 [batch, seq]; hidden: float32 [batch, seq, config.hidden_size]
    """
    directory = os.fspath(directory)  # not pathlib, which breaks gs:// paths
    config_path, weights_path = artifacts.check_pretrained(
        directory, "point to a directory written by save_pretrained (run_pretraining's export)"
    )
    config = ElectraConfig.from_json_file(config_path)
    backbone = ElectraBackbone(config.encoder)
    backbone.load_weights(str(weights_path))
    return config, backbone


def load_pretrained_discriminator(directory: str | os.PathLike) -> tuple[ElectraConfig, ElectraDiscriminator]:
    """The config and the full discriminator (backbone + replaced-token head).

    Args:
      directory: a folder written by save_pretrained for a model trained with
        electra_objective=true (config.json, discriminator.weights.h5).

    Returns:
      (config, discriminator): the ElectraConfig and the ElectraDiscriminator with its weights
      loaded; it maps a batch to replaced-token logits, float32 [batch, seq_len].

    Raises:
      UserError: discriminator.weights.h5 is missing.

    Example:

        config, discriminator = load_pretrained_discriminator("runs/small/pretrained")
        logits = discriminator({"input_ids": ids, "input_mask": mask, "segment_ids": types})
        replaced = keras.ops.sigmoid(logits)  # [batch, seq]: P(token was replaced)
    """
    directory = os.fspath(directory)
    weights_path = fileio.join(directory, DISCRIMINATOR_WEIGHTS_FILE)
    if not fileio.isfile(weights_path):
        raise UserError(
            f"{weights_path} not found; it is written by save_pretrained for models trained with electra_objective=true"
        )
    config = artifacts.read_config(directory)
    discriminator = build_discriminator(config)
    discriminator.load_weights(str(weights_path))
    return config, discriminator
