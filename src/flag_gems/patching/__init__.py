"""``flag_gems.patch_model(model)``: a Hugging Face model's layers on our fused functions, in place.

For the Llama, Mistral, Qwen2, Qwen3 and Gemma families of transformers 5.x:

- every RMSNorm runs ``rms_norm`` (Gemma's, which scales by 1 + weight, too);
- the gated MLP runs ``silu_and_mul`` / ``gelu_and_mul`` between its projections;
- attention applies the rotary embedding to q and k in one launch (``hf_apply_rotary_pos_emb``);
- the decoder layer adds the attention output to the residual stream inside the
  post-attention norm (``add_rms_norm``);
- a causal LM training with labels computes its loss with ``fused_linear_cross_entropy``
  from the hidden states, never holding the logits (it returns no logits then).

Modules keep their classes, parameters and buffers, so state dicts load and save as before:
only their ``forward`` is replaced, on the instance. Rotary embedding is a function of the
family's modeling module, not a module: it is replaced by one that runs ours inside patched
attention modules only, so unpatched models of the family in the same process are unchanged.
A model of any other architecture is returned unchanged, with one logged line. Patching
twice is patching once. Works with and without ``enable()``.
"""

import importlib
import logging
import types

from . import forwards

__all__ = ["patch_model", "FAMILIES"]

_log = logging.getLogger("flag_gems")

# config.model_type -> class-name prefix in transformers.models.<type>.modeling_<type>
FAMILIES = {"llama": "Llama", "mistral": "Mistral", "qwen2": "Qwen2", "qwen3": "Qwen3", "gemma": "Gemma"}
# Gemma's RMSNorm scales by (1 + weight): its weight is an offset from 1
_WEIGHT_OFFSET = {"gemma": 1.0}


def _replace_forward(module, forward):
    if "forward" not in vars(module):  # patched before: keep that
        module.forward = types.MethodType(forward, module)


def patch_model(model):
    """Swap ``model``'s layers for our fused ones, in place (see the module's docstring);
    returns ``model``."""
    config = getattr(model, "config", None)
    model_type = getattr(config, "model_type", None)
    prefix = FAMILIES.get(model_type)
    if prefix is None:
        _log.warning("flag_gems.patch_model: %s (model_type %r) is not a supported architecture (%s); "
                     "left unchanged", type(model).__name__, model_type, ", ".join(FAMILIES))
        return model
    modeling = importlib.import_module(f"transformers.models.{model_type}.modeling_{model_type}")
    forwards.gate_rotary(modeling)
    norm_class, mlp_class = getattr(modeling, f"{prefix}RMSNorm"), getattr(modeling, f"{prefix}MLP")
    attention_class, layer_class = getattr(modeling, f"{prefix}Attention"), getattr(modeling, f"{prefix}DecoderLayer")
    norm = forwards.rms_norm_forward(_WEIGHT_OFFSET.get(model_type, 0.0))
    mlp = forwards.gated_mlp_forward(getattr(config, "hidden_act", None))
    layer = forwards.decoder_layer_forward(_WEIGHT_OFFSET.get(model_type, 0.0))
    for module in model.modules():
        if isinstance(module, norm_class):
            _replace_forward(module, norm)
        elif isinstance(module, mlp_class) and mlp is not None:
            _replace_forward(module, mlp)
        elif isinstance(module, attention_class):
            _replace_forward(module, forwards.attention_forward)
        elif isinstance(module, layer_class) and forwards.is_standard_layer(module, norm_class):
            _replace_forward(module, layer)
    if forwards.has_causal_lm_loss(model):
        _replace_forward(model, forwards.causal_lm_forward)
    return model
