"""The bottom layer: where things live on disk (the cache) and where models come from (built-in, GGUF, the Hub)."""
