"""Developer and operator tooling run by make (benchmarks, the abuse suite, ghz configs,
code generation). The server never imports it.
"""
