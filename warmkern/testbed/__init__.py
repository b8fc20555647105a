"""Testbed: a tiny trained dLLM + weaker causal drafter on templated arithmetic word problems.

Kernels prove speed; only a real (if small) trained pair proves the warm-start method. Everything
here is generated, trained and evaluated locally so `warmkern demo` works without any model hub.
"""
