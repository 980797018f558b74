"""Normalizations: layer and RMS norm (layer_norm); group, batch, instance and weight norm
(group_norm, batch_norm, instance_norm, weight_norm) over the partial-sum kernels they share
(moments)."""
