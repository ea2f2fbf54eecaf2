"""Integrations with frameworks around LLM calls (each imports its framework lazily)."""
