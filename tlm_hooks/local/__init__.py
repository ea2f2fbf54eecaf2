"""The embedded local model (extra ``[local]``): SmolLM2-135M-Instruct run in-process.

Importing this package is cheap; llama-cpp-python is imported when a model is created.
"""

from .model import DEFAULT_MODEL_NAME, INSTALL_HINT, LocalModel, default_model_path, get_default_model

__all__ = ["DEFAULT_MODEL_NAME", "INSTALL_HINT", "LocalModel", "default_model_path", "get_default_model"]
