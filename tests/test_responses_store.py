"""The `previous_response_id` store: a real SQLite file, chains, store:false, OpenAI's not-found error,
bounds (oldest evicted), and two processes' worth of connections on one file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from iron_tui.core.dialects.base import TranslationError
from iron_tui.core.responses_store import FILE_NAME, ResponsesStore


def user(text: str) -> dict[str, Any]:
    return {"type": "message", "role": "user", "content": [{"type": "input_text", "text": text}]}


def reply(rid: str, text: str) -> dict[str, Any]:
    return {"id": rid, "status": "completed", "output": [
        {"id": "msg_" + rid, "type": "message", "role": "assistant", "status": "completed",
         "content": [{"type": "output_text", "text": text, "annotations": []}]}]}


def test_chain_is_loaded_oldest_first(tmp_path: Path) -> None:
    store = ResponsesStore(tmp_path / FILE_NAME)
    assert store.save({"input": "My name is Ada."}, reply("resp_1", "Hi Ada."))
    assert store.save({"input": [user("And yours?")], "previous_response_id": "resp_1",
                       "instructions": "not carried"}, reply("resp_2", "I am Claude."))
    items = store.load("resp_2")
    texts = [item["content"][0]["text"] for item in items]
    assert texts == ["My name is Ada.", "Hi Ada.", "And yours?", "I am Claude."]
    assert all("instructions" not in item for item in items)
    store.close()
    reopened = ResponsesStore(tmp_path / FILE_NAME)  # state survives a restart
    assert reopened.load("resp_1")[1]["content"][0]["text"] == "Hi Ada."


def test_store_false_and_unfinished_are_not_kept(tmp_path: Path) -> None:
    store = ResponsesStore(tmp_path / FILE_NAME)
    assert not store.save({"input": "x", "store": False}, reply("resp_a", "y"))
    assert not store.save({"input": "x"}, {**reply("resp_b", "y"), "status": "failed"})
    for rid in ("resp_a", "resp_b"):
        with pytest.raises(TranslationError) as err:
            store.load(rid)
        assert err.value.message == f"Previous response with id '{rid}' not found."
        assert err.value.param == "previous_response_id" and err.value.code == "previous_response_not_found"


def test_bad_id_type(tmp_path: Path) -> None:
    with pytest.raises(TranslationError) as err:
        ResponsesStore(tmp_path / FILE_NAME).load(42)
    assert err.value.param == "previous_response_id"


def test_oldest_are_evicted_by_count_and_size(tmp_path: Path) -> None:
    store = ResponsesStore(tmp_path / FILE_NAME, max_responses=3)
    for n in range(5):
        store.save({"input": f"q{n}"}, reply(f"resp_{n}", f"a{n}"))
    assert store.evicted == 2
    with pytest.raises(TranslationError):
        store.load("resp_1")
    assert store.load("resp_4")[0]["content"][0]["text"] == "q4"

    sized = ResponsesStore(tmp_path / "sized.sqlite3", max_bytes=2_000)
    big = "x" * 700
    for n in range(4):
        sized.save({"input": big}, reply(f"r{n}", "a"))
    assert sized.evicted >= 1
    sized.load("r3")
    assert not sized.save({"input": "y" * 5_000}, reply("huge", "a"))  # larger than the whole bound


def test_a_chain_through_an_evicted_response_names_it(tmp_path: Path) -> None:
    store = ResponsesStore(tmp_path / FILE_NAME, max_responses=2)
    store.save({"input": "a"}, reply("resp_a", "1"))
    store.save({"input": "b", "previous_response_id": "resp_a"}, reply("resp_b", "2"))
    store.save({"input": "c", "previous_response_id": "resp_b"}, reply("resp_c", "3"))  # evicts resp_a
    with pytest.raises(TranslationError) as err:
        store.load("resp_c")
    assert "resp_a" in err.value.message and err.value.code == "previous_response_not_found"


def test_two_connections_share_one_file(tmp_path: Path) -> None:
    one, two = ResponsesStore(tmp_path / FILE_NAME), ResponsesStore(tmp_path / FILE_NAME)
    one.save({"input": "from one"}, reply("resp_x", "ok"))
    assert two.load("resp_x")[0]["content"][0]["text"] == "from one"
