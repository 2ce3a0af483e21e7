"""Lookup kernel: an embedding table in block RAM, one id in, one row out (RTL backend of FINN's
Lookup)."""
