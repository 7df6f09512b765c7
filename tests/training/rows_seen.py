"""A callback for the distributed tests: which training rows each rank trained on, step by step, as JSON lines."""

import json
from pathlib import Path

import lightning as L


class RecordRowsSeen(L.Callback):
    """Appends ``{"step", "rows"}`` per trained batch to ``directory/rank<r>.jsonl``; a row is the list of example
    ids packed into it (the batch's ``ids``)."""

    def __init__(self, directory: str):
        self.directory = Path(directory)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        with (self.directory / f"rank{trainer.global_rank}.jsonl").open("a", encoding="utf-8") as f:
            f.write(json.dumps({"step": trainer.global_step, "rows": batch["ids"]}) + "\n")


def rows_seen(directory: Path, rank: int) -> list[tuple[str, ...]]:
    """The rows one rank trained on, in order."""
    lines = (directory / f"rank{rank}.jsonl").read_text(encoding="utf-8").splitlines()
    return [tuple(row) for line in lines for row in json.loads(line)["rows"]]
