"""Integrations of warmkern's ops into serving engines.

Each integration imports its engine lazily: `import warmkern.integrations.<engine>` works without the
engine installed, and warmkern never depends on one.
"""
