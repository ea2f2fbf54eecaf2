"""Hooking SDK clients: families of hook targets, the per-call pipeline, stream and raw proxies.

Internal: the public entry points (`patch`, `route`, `unpatch`, `patch_all`, `unpatch_all`,
`is_patched`, `unhooked`, `forget_logprob_refusals`) are exported by :mod:`tlm_hooks`."""
