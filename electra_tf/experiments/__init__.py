"""Experiments built from the library: pretraining objectives compared at equal compute."""
