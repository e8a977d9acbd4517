"""llama-cpp-python's OpenAI-compatible server (``python -m llama_cpp.server``, same
arguments) keeping every model it has loaded: its own holds one at a time and loads a
model again from its file on every request for another. A sweep of two models on one
host alternates them, so the real-model tests' session server reloaded a model on 96 of
its 114 requests (each load ~0.2-0.7 s of CPU, seconds under load, and the prompt's
cached prefix lost). The models here are small (the server's RSS 0.66 GB with the three,
0.5 GB with one); what is served is unchanged but for that (no load: no reset of a
model's seed chain, no load in a first request's time). The real demo keeps the stock
server (``serving(keep_loaded=False)``), as docs/running-for-real.md describes it. Run
as a file: ``python tests/support/llama_server.py --config_file FILE``."""

from __future__ import annotations

import llama_cpp
from llama_cpp.server.__main__ import main
from llama_cpp.server.model import LlamaProxy


def _kept(self: LlamaProxy, model: str | None = None) -> llama_cpp.Llama:
    """``LlamaProxy.__call__`` (the model named, else the default one) from the models
    loaded so far, loading it only the first time it is asked for."""
    if model is None or model not in self._model_settings_dict:
        model = self._default_model_alias
    loaded = self.__dict__.setdefault("_loaded", {})
    if self._current_model is not None:  # the default model, loaded as the server starts
        loaded.setdefault(self._current_model_alias, self._current_model)
    if model not in loaded:
        loaded[model] = self.load_llama_from_model_settings(self._model_settings_dict[model])
    self._current_model, self._current_model_alias = loaded[model], model
    return loaded[model]


LlamaProxy.__call__ = _kept

if __name__ == "__main__":
    main()
