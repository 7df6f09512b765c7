"""The API answer cache (judges, API generation) survives a restart, keeps calls of other prompts apart, makes an
identical call in flight once, waits for another process's write, and names a corrupt file with how to recover."""

import asyncio
import os
import subprocess
import sys

import pytest

from lightning_review.answer_cache import AnswerCache, call_key
from lightning_review.errors import UserError


def test_cache_round_trip_across_connections_and_usage(tmp_path):
    key = call_key("gpt-4-1106-preview", "match-v1", {"a": ["x"], "b": ["y"]})
    cache = AnswerCache(tmp_path / "judge.sqlite")
    assert cache.get(key) is None
    cache.put(key, "gpt-4-1106-preview", "match-v1", {"pairs": [[0, 0, 8]]}, prompt_tokens=100, completion_tokens=20)
    cache.close()
    reopened = AnswerCache(tmp_path / "judge.sqlite")
    assert reopened.get(key) == {"pairs": [[0, 0, 8]]}
    assert reopened.usage() == {"gpt-4-1106-preview": {"calls": 1, "prompt_tokens": 100, "completion_tokens": 20}}
    assert call_key("gpt-4-1106-preview", "match-v2", {"a": ["x"], "b": ["y"]}) != key  # new prompt, new entry


def test_identical_keys_in_flight_share_one_call_and_a_later_ask_reads_the_cache(tmp_path):
    cache, made = AnswerCache(tmp_path / "judge.sqlite"), []

    async def make(key):
        made.append(key)
        await asyncio.sleep(0.05)  # the other callers arrive while this call is in flight
        cache.put(key, "m", "v1", {"answer": key})
        return {"answer": key}

    async def ask(keys):
        return await asyncio.gather(*(cache.fetch(k, lambda k=k: make(k)) for k in keys))

    assert asyncio.run(ask(["a", "a", "b", "a", "b"])) == [{"answer": k} for k in "aabab"]
    assert made == ["a", "b"]
    assert asyncio.run(ask(["a"])) == [{"answer": "a"}] and made == ["a", "b"]


def test_a_write_held_by_another_process_is_waited_for(tmp_path):
    path = tmp_path / "judge.sqlite"
    cache = AnswerCache(path)
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sqlite3, sys, time\n"
        f"db = sqlite3.connect({str(path)!r}, isolation_level=None)\n"
        "db.execute('BEGIN IMMEDIATE')\n"
        "db.execute(\"INSERT INTO calls (key, model, prompt_version, answer) VALUES ('other', 'm', 'v1', '{}')\")\n"
        "print('holding', flush=True)\n"
        "time.sleep(1.0)\n"
        "db.execute('COMMIT')\n")], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "holding"
        cache.put("mine", "m", "v1", {"answer": 1})  # waits for the other process's write instead of failing
    finally:
        holder.wait(timeout=30)
    assert holder.returncode == 0
    assert cache.get("mine") == {"answer": 1} and cache.get("other") == {}


@pytest.mark.parametrize("damage", ["random bytes", "a torn page"])
def test_a_corrupt_cache_is_named_with_how_to_recover(tmp_path, damage):
    path = tmp_path / "judge.sqlite"
    if damage == "random bytes":
        path.write_bytes(os.urandom(8192))
    else:  # a real cache whose pages were overwritten after it was opened: found on the first read
        cache = AnswerCache(path)
        for i in range(200):
            cache.put(f"k{i}", "m", "v1", {"answer": "x" * 500})
        cache.close()
        data = bytearray(path.read_bytes())
        data[4096:len(data)] = os.urandom(len(data) - 4096)
        path.write_bytes(bytes(data))
    with pytest.raises(UserError) as error:
        AnswerCache(path).get("k1")
    message = str(error.value)
    assert message.startswith(f"{path}: the answer cache is unreadable")
    assert f"move it aside (mv {path} {path}.corrupt)" in message
    assert "only the cached answers in it are lost" in message
