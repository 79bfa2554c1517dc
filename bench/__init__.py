"""The coremis benchmark suite (``make bench``) and its deterministic data generator.

``bench.generate`` has no Django import, so demo data and tests may use it; the harness and
the stages set Django up themselves.
"""
