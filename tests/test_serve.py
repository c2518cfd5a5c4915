"""`perslm-voice serve` for real: the CLI in a subprocess on loopback, the real models, and a real
`websockets` client that streams real speech at real time and checks what comes back."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
import time
import urllib.error
import urllib.request

import numpy as np
import pytest
import websockets
import yaml
from serve_client import Client, Server, speech_pcm

from perslm_voice.events import AudioChunk
from perslm_voice.server import protocol
from perslm_voice.server.player import WebSocketPlayer

pytestmark = pytest.mark.slow
TOKEN = "serve-test-token-1234"
ALICE, BOB = "alice-token-5678", "bob-token-9012"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    home = tmp_path_factory.mktemp("serve-home")
    config = home / "serve.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "serve": {
                    "tokens": {ALICE: "alice", BOB: "bob"},
                    "max_message_bytes": 8192,
                    "max_messages_per_s": 100,
                },
                "llm": {"max_tokens": 60},
            }
        )
    )
    env = {"PERSLM_VOICE_HOME": str(home), "SDL_AUDIODRIVER": "dummy"}
    # A debug log (prompts and all) in a file: a failing test quotes it, and it is checked too.
    srv = Server(
        "--token", TOKEN, "--config", str(config), "--log-level", "debug",
        "--log-file", str(home / "serve.log"), env=env,
    )  # fmt: skip
    srv.home = home
    yield srv
    err = srv.stop()
    log = (home / "serve.log").read_text()
    assert "prompt for" in log  # the debug log was written
    for secret in (TOKEN, ALICE, BOB):  # tokens never reach the logs
        assert secret not in err and secret not in log


def log_tail(server, lines: int = 40) -> str:
    """The end of the server's debug log, for a failing test to say what the server did."""
    return "\n".join((server.home / "serve.log").read_text().splitlines()[-lines:])


def get(
    url: str, headers: dict[str, str] | None = None, post: dict | None = None
) -> tuple[int, dict | str]:
    data = json.dumps(post).encode() if post is not None else None
    request = urllib.request.Request(url, data=data, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            body = response.read().decode()
            status = response.status
    except urllib.error.HTTPError as exc:
        body, status = exc.read().decode(), exc.code
    try:
        return status, json.loads(body)
    except ValueError:
        return status, body


def run(coro):
    return asyncio.run(coro)


@pytest.fixture(scope="module")
def question_wav(tmp_path_factory, speak):
    return speak("What is the capital of France?", tmp_path_factory.mktemp("q") / "question.wav")


# -- pure parts ----------------------------------------------------------------------------------


def test_protocol_says_what_is_wrong_with_a_message():
    for raw, says in [
        ("{not json", "not JSON"),
        ("[1, 2]", "JSON object"),
        ('{"type": "dance"}', "unknown message type 'dance'"),
        ('{"type": "text", "text": "  "}', "non-empty"),
        ('{"type": "playback", "played_ms": -1}', ">= 0"),
        ('{"type": "hello", "protocol": 2}', "protocol 1"),
        ('{"type": "memory", "command": "drop"}', "history, export, forget"),
    ]:
        with pytest.raises(protocol.ProtocolError, match=says):
            protocol.parse(raw)
    assert protocol.parse('{"type": "playback", "played_ms": 250, "turn": 3}') == protocol.Playback(
        250.0, 3
    )


def test_player_counts_as_heard_what_the_client_reports_played():
    sent: list = []
    player = WebSocketPlayer(sent.append)
    player.start()
    try:
        second = np.zeros(22050, np.int16)
        player.enqueue(AudioChunk(second, 22050, "one two three four"))
        deadline = time.monotonic() + 10
        while not any(isinstance(m, bytes) for m in sent) and time.monotonic() < deadline:
            time.sleep(0.01)
        player.report_played(0)  # the client has not played anything yet
        assert player.stop() == ""
        assert sent[-1]()["type"] == "interrupted"
        header = next(m for m in sent if callable(m))
        player.tag(AudioChunk(second, 22050, "x"), 1)
        assert header()["type"] == "reply_audio" and header()["samples"] == 22050
    finally:
        player.close()


def test_no_auth_refuses_anything_but_loopback(run_cli):
    result = run_cli("serve", "--no-auth", "--host", "0.0.0.0", "--port", "0")
    assert result.returncode == 2
    assert b"give a token" in result.stderr


def test_config_show_masks_the_tokens(run_cli, tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text(
        yaml.safe_dump({"serve": {"token": "sekrit-1", "tokens": {"sekrit-2": "amy"}}})
    )
    out = run_cli("config", "show", "--config", str(config)).stdout.decode()
    assert "sekrit" not in out and "serve.tokens" in out and "amy" in out


# -- the server ----------------------------------------------------------------------------------


def test_page_healthz_and_a_wrong_token(server):
    status, health = get(f"{server.base}/healthz")
    assert status == 200 and health["status"] == "ok" and health["protocol"] == 1
    status, page = get(f"{server.base}/?token={TOKEN}")
    assert status == 200 and "<script" in page
    assert get(f"{server.base}/static/worklets.js")[0] == 200
    assert f"?token={TOKEN}" in server.url_line

    async def refused(url: str, **kwargs) -> int:
        with pytest.raises(websockets.InvalidStatus) as info:
            await websockets.connect(url, **kwargs)
        return info.value.response.status_code

    assert run(refused(f"{server.ws_url}?token=wrong")) == 403
    assert run(refused(server.ws_url)) == 403
    assert run(refused(server.ws_url, additional_headers={"Authorization": "Bearer nope"})) == 403
    # another site's page may not use the token (cross-site WebSocket hijacking)
    evil = {"Origin": "http://evil.example"}
    assert run(refused(f"{server.ws_url}?token={TOKEN}", additional_headers=evil)) == 403
    assert get(f"{server.base}/api/memory/history?token=wrong&user=x")[0] == 401
    assert get(f"{server.base}/healthz")[1]["refused"]["unauthorized"] >= 4


def test_voice_turn_partial_transcript_reply_and_audio(server, question_wav):
    async def talk():
        client = await Client.connect(f"{server.ws_url}?token={TOKEN}", "carol")
        assert client.ready["input_sample_rate"] == 16000
        rate_out = client.ready["output_sample_rate"]
        sender = asyncio.create_task(client.stream(speech_pcm(question_wav, tail_s=3)))
        done = await client.wait_for("reply_done", timeout=180)
        await sender
        await client.wait_for("timings", turn=done["turn"])
        await client.close()
        return client, rate_out, done

    client, rate_out, done = run(talk())
    kinds = client.kinds()
    transcript = client.got.of("transcript")[0]
    assert "capital" in transcript["text"].lower() and "france" in transcript["text"].lower()
    assert transcript["source"] == "voice"
    # a partial transcript came while the user spoke, before the final one
    assert "partial_transcript" in kinds
    assert kinds.index("partial_transcript") < kinds.index("transcript")
    assert kinds.index("speech_started") < kinds.index("speech_ended") < kinds.index("transcript")
    text = "".join(m["text"] for m in client.got.of("reply_delta") if m["turn"] == done["turn"])
    assert text.strip() and done["text"] == text.strip() and not done["interrupted"]
    # the reply's voice: announced chunks, then at least half a second of PCM at the output rate
    announced = [m for m in client.got.of("reply_audio") if m["turn"] == done["turn"]]
    assert announced and all(m["sample_rate"] == rate_out for m in announced)
    audio_s = client.got.audio_bytes[done["turn"]] / 2 / rate_out
    assert audio_s >= 0.5
    assert audio_s == pytest.approx(sum(m["samples"] for m in announced) / rate_out)
    timings = client.got.of("timings")[-1]["ms"]
    assert timings["speech_end"] == 0 and timings["first_audio_played"] > 0


def test_typed_input_and_bad_messages_keep_the_connection(server):
    async def chat():
        client = await Client.connect(f"{server.ws_url}?token={TOKEN}", "dave")
        await client.send("{not json")
        await client.send({"type": "dance"})
        await client.send(b"\x00" * 20000)  # over max_message_bytes (8192)
        await client.send(b"\x00\x01\x02")  # not 16-bit samples
        for _ in range(300):  # a flood: past max_messages_per_s (100)
            await client.send({"type": "playback", "played_ms": 0})
        await client.wait_for("error", code="flood")
        await asyncio.sleep(1.5)  # the bucket refills: the client may talk again
        await client.send({"type": "text", "text": "Say hello."})
        done = await client.wait_for("reply_done", timeout=180)
        await client.close()
        return client, done

    client, done = run(chat())
    errors = client.got.of("error")
    codes = [e["code"] for e in errors]
    assert codes.count("bad_message") >= 3 and "too_large" in codes and "flood" in codes
    assert any("not JSON" in e["message"] for e in errors)
    assert any("serve.max_message_bytes" in e["message"] for e in errors)
    assert all("\n" not in e["message"] for e in errors)
    started = client.got.of("reply_started")[0]
    assert started["source"] == "keyboard" and started["user_text"] == "Say hello."
    assert done["text"] and not done["interrupted"]
    refused = get(f"{server.base}/healthz")[1]["refused"]
    assert refused["too_large"] >= 1 and refused["flood"] >= 1


def test_barge_in_stops_the_voice(server, speak, tmp_path):
    talk_over = speak("Stop, stop. Tell me about the weather instead.", tmp_path / "over.wav")

    async def barge():
        client = await Client.connect(f"{server.ws_url}?token={TOKEN}", "erin")
        await client.send(
            {"type": "text", "text": "Tell me a long story about a dragon and a knight."}
        )
        first = await client.wait_for("reply_audio", timeout=180)
        turn = first["turn"]
        while client.got.audio_bytes.get(turn, 0) < 22050:  # half a second of voice has come
            await client.wait_for("reply_delta", after=len(client.got.messages))
        sender = asyncio.create_task(client.stream(speech_pcm(talk_over, lead_s=0.0)))
        interrupted = await client.wait_for("interrupted", timeout=60, turn=turn)
        done = await client.wait_for("reply_done", turn=turn)
        await sender
        started = await client.wait_for("reply_started", timeout=180, after=0, turn=turn + 1)
        if "weather" not in started["user_text"].lower():  # "Stop, stop." heard as a turn alone
            await client.wait_for("reply_started", timeout=180, after=0, turn=turn + 2)
        await client.close()
        return client, turn, interrupted, done

    client, turn, interrupted, done = run(barge())
    assert done["interrupted"] is True
    assert done["heard"] is not None and len(done["heard"]) < len(done["text"]) + 1
    # after "interrupted" no more voice of that turn arrived
    assert client.got.audio_after_interrupt == 0
    assert client.got.time_of("interrupted", turn=turn) <= client.got.time_of(
        "reply_done", turn=turn
    )
    user_texts = [m["user_text"] for m in client.got.of("reply_started")]
    assert any("weather" in t.lower() for t in user_texts[1:]), user_texts


def test_a_client_that_vanishes_mid_reply_keeps_the_turn(server):
    async def vanish():
        client = await Client.connect(f"{server.ws_url}?token={TOKEN}", "frank")
        await client.send({"type": "text", "text": "Tell me a long story about the sea."})
        await client.wait_for("reply_audio", timeout=180)
        client.ws.transport.abort()  # gone, without a closing handshake
        await asyncio.gather(client._reader, return_exceptions=True)

    run(vanish())
    db = server.home / "data" / "perslm-voice.db"
    deadline = time.monotonic() + 60
    while True:
        con = sqlite3.connect(db)
        rows = con.execute(
            "SELECT role, text, interrupted FROM turns WHERE user_id = 'frank' ORDER BY id"
        ).fetchall()
        con.close()
        if len(rows) >= 2 or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert len(rows) == 2, f"{rows}; the server's log ends:\n{log_tail(server)}"
    assert rows[0][:2] == ("user", "Tell me a long story about the sea.")
    assert rows[1][0] == "assistant" and rows[1][1] and rows[1][2] == 1


def test_two_users_at_once_never_see_each_others_memory(server):
    async def both():
        alice = await Client.connect(f"{server.ws_url}?token={ALICE}", None)
        bob = await Client.connect(f"{server.ws_url}?token={BOB}", "bob")
        assert alice.ready["user"] == "alice" and bob.ready["user"] == "bob"
        # both talk at once; the embedded model answers one reply at a time, both are answered
        await asyncio.gather(
            alice.send({"type": "text", "text": "Remember that my cat is called Whiskerton."}),
            bob.send({"type": "text", "text": "What is two plus two?"}),
        )
        await asyncio.gather(alice.wait_for("reply_done", 240), bob.wait_for("reply_done", 240))
        await bob.send({"type": "memory", "command": "export"})
        await alice.send({"type": "memory", "command": "history"})
        exported = await bob.wait_for("memory", command="export")
        history = await alice.wait_for("memory", command="history")
        # Bob's token cannot open Alice's session
        intruder = await websockets.connect(f"{server.ws_url}?token={BOB}")
        await intruder.send(json.dumps({"type": "hello", "user": "alice", "protocol": 1}))
        answer = []
        with contextlib.suppress(websockets.ConnectionClosed):  # closed with 1008
            async for message in intruder:
                answer.append(json.loads(message))
        await alice.close()
        await bob.close()
        return exported, history, answer, intruder.close_code

    exported, history, answer, close_code = run(both())
    assert "Whiskerton" not in json.dumps(exported) and exported["user"] == "bob"
    assert any("Whiskerton" in t["text"] for t in history["turns"]) and history["user"] == "alice"
    assert answer[-1]["code"] == "forbidden_user" and close_code == 1008
    assert "Whiskerton" not in json.dumps(answer)
    # the REST endpoints are bound the same way
    status, body = get(
        f"{server.base}/api/memory/history?user=alice", {"Authorization": f"Bearer {BOB}"}
    )
    assert status == 403 and "Whiskerton" not in json.dumps(body)
    status, body = get(f"{server.base}/api/memory/export?token={ALICE}")
    assert status == 200 and "Whiskerton" in json.dumps(body)
    status, body = get(f"{server.base}/api/memory/export?token={BOB}")
    assert status == 200 and "Whiskerton" not in json.dumps(body)
    # Bob forgets everything he said: his turns go, Alice's stay
    status, body = get(f"{server.base}/api/memory/forget?token={BOB}", post={"everything": True})
    assert status == 200 and body["user"] == "bob" and body["removed"]["turns"] >= 2
    assert get(f"{server.base}/api/memory/history?token={BOB}")[1]["turns"] == []
    status, body = get(f"{server.base}/api/memory/history?token={ALICE}")
    assert "Whiskerton" in json.dumps(body)
