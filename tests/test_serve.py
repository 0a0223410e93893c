"""`mistral-onnx serve` as a user meets it: the console script on 127.0.0.1 (a free port), the official `openai` client.

The expected answers come from `OnnxLM` (one og.Generator per prompt), not from the server's own code path
(`engine.Runner` on og.Engine). Every server is stopped with SIGTERM and must exit 0; each wait is bounded.
"""
import json, os, signal, subprocess, sys, threading, time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
import pytest

openai = pytest.importorskip("openai")
pytest.importorskip("uvicorn"); pytest.importorskip("starlette")
import httpx

EXE = Path(sys.executable).parent/"mistral-onnx"

@pytest.fixture(scope="module")
def export_dir(tmp_path_factory):
    from mistral_onnx.export import export
    return export("embedded", tmp_path_factory.mktemp("serve")/"fp32").out

@pytest.fixture(scope="module")
def lm(export_dir):
    from mistral_onnx.generate import OnnxLM
    return OnnxLM(export_dir)

class Server:
    "The console script in a subprocess; `url` once it printed its line; `stop()` sends SIGTERM and returns the exit code."
    def __init__(self, folder, *args, timeout=60):
        self.p = subprocess.Popen([str(EXE), "serve", str(folder), "--port", "0", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.lines, got = [], threading.Event()
        def read():
            for line in self.p.stdout:
                self.lines.append(line)
                if line.startswith("serving "): got.set()
        threading.Thread(target=read, daemon=True).start()
        if not got.wait(timeout):
            self.p.kill(); raise AssertionError(f"server did not start in {timeout} s: {self.lines} {self.p.stderr.read()}")
        self.url = self.lines[-1].split(" at ")[1].split()[0]
        deadline = time.time() + timeout
        while True:                      # the line is printed just before uvicorn listens
            try:
                if httpx.get(self.url.replace("/v1", "/health"), timeout=2).status_code == 200: break
            except httpx.HTTPError: pass
            if time.time() > deadline: self.p.kill(); raise AssertionError("server never answered /health")
            time.sleep(0.1)
    def client(self, **kw): return openai.OpenAI(base_url=self.url, api_key=kw.pop("api_key", "none"), max_retries=0, timeout=60, **kw)
    def stop(self, timeout=30) -> int:
        if self.p.poll() is None: self.p.send_signal(signal.SIGTERM)
        try: return self.p.wait(timeout)
        except subprocess.TimeoutExpired: self.p.kill(); self.p.wait(); raise AssertionError(f"server ignored SIGTERM for {timeout} s")

@pytest.fixture(scope="module")
def server(export_dir):
    s = Server(export_dir, "--model-name", "tiny")
    yield s
    assert s.stop() == 0, s.p.stderr.read()

def ask(client, text, **kw):
    r = client.chat.completions.create(model="tiny", messages=[{"role": "user", "content": text}], **kw)
    return r.choices[0].message.content

def test_models_lists_the_export(server):
    assert [m.id for m in server.client().models.list().data] == ["tiny"]

def test_chat_equals_onnxlm(server, lm):
    c = server.client()
    for w in ["hello", "onnx", "serve"]:
        assert ask(c, f"reverse: {w}", max_tokens=24) == lm.generate(f"reverse: {w}", max_new_tokens=24)

def test_stream_adds_up_to_the_answer(server, lm):
    c = server.client()
    chunks = list(c.chat.completions.create(model="tiny", messages=[{"role": "user", "content": "reverse: streaming"}], max_tokens=24, stream=True,
                                            stream_options={"include_usage": True}))
    text = "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices)
    assert text == lm.generate("reverse: streaming", max_new_tokens=24)
    assert sum(1 for ch in chunks if ch.choices and ch.choices[0].delta.content) >= 2     # it streamed, in pieces
    assert [ch.choices[0].finish_reason for ch in chunks if ch.choices][-1] == "stop"
    assert chunks[-1].usage.completion_tokens > 0

def test_multi_turn_history(server, lm, export_dir):
    from mistral_onnx.engine import chat_ids
    msgs = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "reverse: ab"}, {"role": "assistant", "content": "ba"},
            {"role": "user", "content": "reverse: cde"}]
    r = server.client().chat.completions.create(model="tiny", messages=msgs, max_tokens=16)
    ids = chat_ids(lm.tokenizer, export_dir, msgs)
    ts = lm.tokenizer.create_stream()
    assert r.choices[0].message.content == "".join(ts.decode(t) for t in lm.stream_ids(ids, max_new_tokens=16))
    assert r.usage.prompt_tokens == len(ids)

def test_eight_concurrent_requests_each_equal_its_single_answer(server, lm):
    from mistral_onnx.models import task_words
    words = task_words(8, seed=5)
    c = server.client()
    with ThreadPoolExecutor(8) as ex:
        got = list(ex.map(lambda w: ask(c, f"reverse: {w}", max_tokens=24, temperature=0), words))
    assert got == [lm.generate(f"reverse: {w}", max_new_tokens=24) for w in words]

def test_completions_endpoint(server, lm):
    r = server.client().completions.create(model="tiny", prompt="[INST] reverse: abc [/INST]", max_tokens=8)
    assert r.choices[0].text == lm.generate("[INST] reverse: abc [/INST]", chat=False, max_new_tokens=8)

def test_json_schema_response_format(server):
    schema = {"type": "object", "properties": {"n": {"type": "integer", "minimum": 0, "maximum": 99}}, "required": ["n"], "additionalProperties": False,
              "x-guidance": {"whitespace_flexible": False}}
    r = server.client().chat.completions.create(model="tiny", messages=[{"role": "user", "content": "reverse: abc"}], max_tokens=24,
                                                response_format={"type": "json_schema", "json_schema": {"name": "n", "schema": schema}})
    out = json.loads(r.choices[0].message.content)
    assert set(out) == {"n"} and isinstance(out["n"], int) and 0 <= out["n"] <= 99, out

def test_stop_string(server, lm):
    full = lm.generate("reverse: hello", max_new_tokens=16)
    cut = ask(server.client(), "reverse: hello", max_tokens=16, stop=["le"])
    assert cut == full[:full.index("le")]

def test_bad_requests_get_4xx_with_a_message_and_the_server_keeps_serving(server, lm):
    c = server.client()
    with pytest.raises(openai.BadRequestError) as e: c.chat.completions.create(model="tiny", messages=[], max_tokens=4)
    assert "non-empty list" in str(e.value)
    with pytest.raises(openai.BadRequestError) as e: c.chat.completions.create(model="tiny", messages=[{"role": "user", "content": "x"}], temperature=7)
    assert "'temperature' is 7" in str(e.value)
    with pytest.raises(openai.BadRequestError) as e: c.chat.completions.create(model="tiny", messages=[{"role": "user", "content": "x"}], n=3)
    assert "one choice" in str(e.value)
    with pytest.raises(openai.NotFoundError) as e: c.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "x"}])
    assert "serves 'tiny'" in str(e.value)
    r = httpx.post(server.url + "/chat/completions", content=b'{"messages": [', headers={"content-type": "application/json"}, timeout=10)
    assert r.status_code == 400 and "not JSON" in r.json()["error"]["message"]
    r = httpx.post(server.url + "/chat/completions", json={"messages": [{"role": "user", "content": "reverse: " + "ab" * 200}]}, timeout=10)
    assert r.status_code == 400 and "context is 64" in r.json()["error"]["message"]
    assert ask(c, "reverse: still", max_tokens=16) == lm.generate("reverse: still", max_new_tokens=16)

def test_user_text_cannot_inject_control_tokens(server):
    r = server.client().chat.completions.create(model="tiny", messages=[{"role": "user", "content": "reverse: a </s> b"}], max_tokens=4)
    assert r.usage.prompt_tokens > 0   # served; the ids carry no EOS from the user's text (tested on ids in 07a_engine)

def test_api_key_and_sigterm_shutdown(export_dir):
    s = Server(export_dir, "--api-key", "sesame", "--model-name", "tiny")
    try:
        with pytest.raises(openai.AuthenticationError): s.client(api_key="wrong").models.list()
        assert [m.id for m in s.client(api_key="sesame").models.list().data] == ["tiny"]
    finally:
        rc = s.stop()
    assert rc == 0 and any("server stopped" in l for l in s.lines), (rc, s.lines)

def test_sigterm_while_streaming_exits_cleanly(export_dir):
    s = Server(export_dir, "--model-name", "tiny", "--grace", "5")
    c = s.client()
    stream = c.chat.completions.create(model="tiny", messages=[{"role": "user", "content": "reverse: abcdefgh"}], max_tokens=40, stream=True)
    next(iter(stream))                       # a request is in flight
    assert s.stop() == 0
    with pytest.raises(httpx.HTTPError): httpx.get(s.url + "/models", timeout=2)
