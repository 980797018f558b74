"""Losses: negative log-likelihood, cross entropy and the elementwise losses."""
