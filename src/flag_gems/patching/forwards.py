"""The forwards patch_model puts on a Hugging Face model's modules: each computes what the
module's own forward computes, through our fused functions. Where an input is one the
fused function does not take the same way (a norm weight of another dtype than its input),
the module's own forward runs instead."""

import dataclasses
import functools
import inspect
import threading

import torch

from .. import ops


class _Inside(threading.local):
    attention = 0  # patched attention modules running on this thread


_inside = _Inside()


# ---- RMS norm


def _norm_weight(norm, offset, dtype):
    return norm.weight if not offset else (offset + norm.weight.float()).to(dtype)


def _norm_eps(norm):
    return norm.variance_epsilon if hasattr(norm, "variance_epsilon") else norm.eps


def _norm_takes(norm, offset, x):
    # Llama's norm multiplies in the weight's dtype (a float32 weight makes a float32 output);
    # Gemma's always returns x's dtype.
    return bool(offset) or norm.weight.dtype == x.dtype


def rms_norm_forward(offset):
    def forward(self, hidden_states):
        if not _norm_takes(self, offset, hidden_states):
            return type(self).forward(self, hidden_states)
        return ops.rms_norm(hidden_states, self.weight.shape, _norm_weight(self, offset, hidden_states.dtype),
                            _norm_eps(self))

    return forward


# ---- gated MLP

_GATES = {
    "silu": ops.silu_and_mul,
    "swish": ops.silu_and_mul,
    "gelu": functools.partial(ops.gelu_and_mul, approximate="none"),
    "gelu_pytorch_tanh": functools.partial(ops.gelu_and_mul, approximate="tanh"),
    "gelu_new": functools.partial(ops.gelu_and_mul, approximate="tanh"),
}


def gated_mlp_forward(activation):
    """down(act(gate(x)) * up(x)) with act and the product in one kernel; None for an
    activation we have no fused function for."""
    gate = _GATES.get(activation)
    if gate is None:
        return None

    def forward(self, x):
        return self.down_proj(gate(self.gate_proj(x), self.up_proj(x)))

    return forward


# ---- rotary embedding


def gate_rotary(modeling):
    """Replace ``modeling.apply_rotary_pos_emb`` by one that runs ours inside patched
    attention modules and the family's own elsewhere (once per modeling module)."""
    original = modeling.apply_rotary_pos_emb
    if getattr(original, "flag_gems_original", None) is not None:
        return

    @functools.wraps(original)
    def apply_rotary_pos_emb(q, k, cos, sin, *args, **kwargs):
        if _inside.attention:
            return ops.hf_apply_rotary_pos_emb(q, k, cos, sin, *args, **kwargs)
        return original(q, k, cos, sin, *args, **kwargs)

    apply_rotary_pos_emb.flag_gems_original = original
    modeling.apply_rotary_pos_emb = apply_rotary_pos_emb


def attention_forward(self, *args, **kwargs):
    _inside.attention += 1
    try:
        return type(self).forward(self, *args, **kwargs)
    finally:
        _inside.attention -= 1


# ---- decoder layer: the residual add inside the post-attention norm


def is_standard_layer(layer, norm_class):
    """Whether ``layer`` is norm, attention, residual add, norm, MLP, residual add (the layer
    decoder_layer_forward computes), judged by its submodules."""
    children = dict(layer.named_children())
    return (set(children) == {"self_attn", "mlp", "input_layernorm", "post_attention_layernorm"}
            and isinstance(children["input_layernorm"], norm_class)
            and isinstance(children["post_attention_layernorm"], norm_class))


@functools.lru_cache(maxsize=None)
def _signature(forward):
    return inspect.signature(forward)


def _keywords(forward, args, kwargs):
    """``kwargs`` with the positional ``args`` (those after hidden_states) named as ``forward``'s."""
    names = list(_signature(forward).parameters)[2:]  # after self, hidden_states
    return {**dict(zip(names, args)), **kwargs}


def decoder_layer_forward(offset):
    def forward(self, hidden_states, *args, **kwargs):
        if args:
            kwargs = _keywords(type(self).forward, args, kwargs)
        residual = hidden_states
        hidden_states = self.input_layernorm(hidden_states)
        hidden_states, _ = self.self_attn(hidden_states=hidden_states, **kwargs)
        norm = self.post_attention_layernorm
        if _norm_takes(norm, offset, hidden_states):
            hidden_states, residual = ops.add_rms_norm(hidden_states, residual, norm.weight.shape,
                                                       _norm_weight(norm, offset, hidden_states.dtype),
                                                       _norm_eps(norm))
        else:
            residual = residual + hidden_states
            hidden_states = norm(residual)
        return residual + self.mlp(hidden_states)

    return forward


# ---- causal LM loss


def has_causal_lm_loss(model):
    """Whether ``model`` is a causal LM with the default loss over an lm_head."""
    return (hasattr(model, "lm_head") and hasattr(model, "model") and type(model).__name__.endswith("ForCausalLM")
            and getattr(model, "loss_type", None) in (None, "ForCausalLM") and "_loss_function" not in vars(model))


def _kept(hidden, logits_to_keep):
    return hidden[:, -logits_to_keep:, :] if isinstance(logits_to_keep, int) else hidden[:, logits_to_keep, :]


def causal_lm_forward(self, *args, **kwargs):
    """Training with labels: the loss of transformers' ForCausalLMLoss (labels shifted left,
    ``ignore_index``, a mean or a sum over ``num_items_in_batch``) from the hidden states and
    the lm_head weight, chunk by chunk; logits are not returned. Anything else: as before."""
    cls = type(self)
    if not self.training:  # generation and evaluation: no argument binding on their path
        return cls.forward(self, *args, **kwargs)
    arguments = _signature(cls.forward).bind(self, *args, **kwargs).arguments
    if arguments.get("labels") is None:
        return cls.forward(self, *args, **kwargs)
    arguments.pop("self")
    extra = arguments.pop("kwargs", {})
    labels = arguments.pop("labels")
    logits_to_keep = arguments.pop("logits_to_keep", 0)
    outputs = self.model(**arguments, **extra)
    hidden = _kept(outputs.last_hidden_state, logits_to_keep)
    ignore_index = extra.get("ignore_index", -100)
    shifted = extra.get("shift_labels")
    if shifted is None:
        shifted = torch.nn.functional.pad(labels, (0, 1), value=ignore_index)[..., 1:]
    count = extra.get("num_items_in_batch")
    loss = ops.fused_linear_cross_entropy(hidden.reshape(-1, hidden.shape[-1]), self.lm_head.weight,
                                          shifted.reshape(-1).to(hidden.device), bias=self.lm_head.bias,
                                          ignore_index=ignore_index, reduction="mean" if count is None else "sum",
                                          softcap=getattr(self.config, "final_logit_softcapping", None))
    if count is not None:
        loss = loss / (count.to(loss.device) if torch.is_tensor(count) else count)
    return _causal_lm_output(loss, outputs)


def _causal_lm_output(loss, outputs):
    from transformers.modeling_outputs import CausalLMOutputWithPast

    names = {field.name for field in dataclasses.fields(CausalLMOutputWithPast)} - {"loss", "logits"}
    return CausalLMOutputWithPast(loss=loss, logits=None, **{k: v for k, v in outputs.items() if k in names})
