"""Hooking SDK clients: patching, per-call pipeline, stream proxies."""
