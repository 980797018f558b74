"""Normalizations: layer and RMS norm, group, batch, instance and weight norm."""
