"""Download scripts for the public datasets and checkpoints (see data/README.md).

A package so that the scripts share data/download.py and the tests can import them.
"""
