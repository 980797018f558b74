"""Attention: flash attention forward and backward, split-KV decoding, variable-length sequences."""
