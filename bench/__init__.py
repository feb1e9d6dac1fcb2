"""Benchmarks (not tests): each module prints one JSON object per line.

  python -m bench.render --batch=64 --size=64 --repeats=5
  python -m bench.model --what=decompose,train --xla=on,off
"""
