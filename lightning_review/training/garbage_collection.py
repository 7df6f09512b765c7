"""Python's garbage collector kept out of the training steps: the objects alive at train start frozen.

With torch, transformers, peft and Lightning imported and the model built, the process tracks about 583,000-596,000
Python objects, and a full (generation 2) collection walks all of them. On one H200's host, full collections of 384,
497 and 564 ms landed inside 3 of the 22 timed steps of a 13B length-mix run (benchmarks/train_step.py's
gc_full_collections, benchmarks/RESULTS.md session 14); the rows that held one ran 0.2-0.3 s slower than the same
rows without. ``gc.freeze()`` moves every object that exists then into a permanent generation that the collector no
longer scans: on a CPU with the model built, a full collection took 380 ms before and 1 ms after (vLLM freezes after
its start-up the same way). In a 13B mix run it measured 6,601 against 6,233 tokens/s without (+5.9%, session 15):
a 575 ms collection had landed in one timed row unfrozen; frozen ones took 14-17 ms.
"""

from __future__ import annotations

import gc

import lightning as L


class FrozenGarbageCollection(L.Callback):
    """At train start, one full collection and then ``gc.freeze()``; at train end, or when the run raises,
    ``gc.unfreeze()`` (only if this callback froze), so that a process running several Trainers one after another
    (benchmarks/train_step.py) does not freeze more and more; unfreeze moves the objects back to the oldest
    generation.

    Objects alive at train start (modules, weights, the optimizer, the data) live for the whole run anyway, so
    nothing the collector would have freed is kept by skipping them. What is no longer collected while frozen:
    reference cycles among objects made before train start that become garbage during training; they are freed
    after unfreeze, at the next full collection. Objects made during training are collected as before.
    ``gc.unfreeze()`` thaws every frozen object, also any that the process froze itself before fit.
    """

    def __init__(self) -> None:
        self.froze = False

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        gc.collect()  # what is garbage already is freed, not frozen
        gc.freeze()
        self.froze = True

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._unfreeze()

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException) -> None:
        self._unfreeze()

    def _unfreeze(self) -> None:
        if self.froze:
            gc.unfreeze()
            self.froze = False
