#!/usr/bin/env python3
"""A 20-turn chat without an id, as Open WebUI and the SDKs send it (the whole history every turn), through ClaudeProxy.

From the fake Anthropic API's own log: for each turn's API request, the share of its input (system prompt and messages,
as JSON bytes) that repeats the previous request's unchanged, i.e. what Anthropic's prompt cache could reuse. And the
time to first token of turn 20 against a cold `claude -p` run directly, in the same run.

    python3 bench/lineage_cache.py        (after: dotnet build src/Gateway -c Release; the CLI from the test build)
"""
import http.client, json, os, statistics, subprocess, sys, tempfile, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from warm_ttft import CLI, GATEWAY, cold_ttft, free_port, start_fake_api  # noqa: E402

TURNS, COLD_RUNS = 20, 5


def chat(port, messages):
    """Streams one /v1/chat/completions turn: (seconds to the first content delta, the answer's text)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    body = json.dumps({"model": "claude-sonnet:latest", "stream": True, "messages": messages})
    start = time.monotonic()
    conn.request("POST", "/v1/chat/completions", body, {"Content-Type": "application/json"})
    response = conn.getresponse()
    first, text = None, []
    for raw in response:
        line = raw.decode().strip()
        if not line.startswith("data: {"):
            continue
        choices = json.loads(line[6:])["choices"]
        delta = choices[0]["delta"] if choices else {}
        if delta.get("content"):
            first = first or time.monotonic() - start
            text.append(delta["content"])
    conn.close()
    return first, "".join(text)


def without_cache_marks(value):
    """The CLI marks the newest blocks with cache_control; the marks move each turn and are not content."""
    if isinstance(value, dict):
        return {k: without_cache_marks(v) for k, v in value.items() if k != "cache_control"}
    if isinstance(value, list):
        return [without_cache_marks(v) for v in value]
    return value


def repeated_shares(previous, current):
    """(share of this request's input that repeats the previous one's, share of the previous one's input found again)."""
    parts = lambda body: [body.get("system")] + body["messages"]
    size = lambda part: len(json.dumps(without_cache_marks(part)))
    before, now = parts(previous), parts(current)
    repeated = 0
    for old, new in zip(before, now):
        if without_cache_marks(old) != without_cache_marks(new):
            break
        repeated += size(new)
    return repeated / sum(size(p) for p in now), repeated / sum(size(p) for p in before)


def main():
    work = tempfile.mkdtemp(prefix="lineage-cache-")
    log = os.path.join(work, "requests.jsonl")
    api, base_url = start_fake_api(work, "--log", log)
    env = dict(os.environ, ANTHROPIC_BASE_URL=base_url, ANTHROPIC_API_KEY="sk-ant-fake", HOME=os.path.join(work, "home"),
               CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC="1", DISABLE_AUTOUPDATER="1", DISABLE_TELEMETRY="1", DISABLE_ERROR_REPORTING="1")
    os.makedirs(env["HOME"])
    port = free_port()
    gateway_env = dict(env, PORT=str(port), OLLAMA_URL="none", CLAUDE_CLI=CLI, ClaudeBackend__DataDirectory=os.path.join(work, "data"),
                       ClaudeBackend__Environment__ANTHROPIC_BASE_URL=base_url, ClaudeBackend__Environment__ANTHROPIC_API_KEY="sk-ant-fake",
                       ClaudeBackend__Environment__HOME=env["HOME"])
    gateway = subprocess.Popen(["dotnet", GATEWAY], env=gateway_env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(200):
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
                conn.request("GET", "/api/version")
                if conn.getresponse().status == 200:
                    break
            except OSError:
                time.sleep(0.1)
        time.sleep(3)  # the first warm spare
        messages, ttfts = [], []
        for turn in range(1, TURNS + 1):
            messages.append({"role": "user", "content": f"Question {turn}: " + "tell me more about the sky and the sea. " * 8})
            first, answer = chat(port, messages)
            messages.append({"role": "assistant", "content": answer})
            ttfts.append(first)
        cold = statistics.median(cold_ttft(env, work) for _ in range(COLD_RUNS))
    finally:
        gateway.kill()
        gateway.wait()
        api.kill()

    requests = [json.loads(line)["body"] for line in open(log)
                if line.strip() and json.loads(line).get("path") == "/v1/messages" and isinstance(json.loads(line).get("body"), dict)]
    turns = [body for body in requests if any(m["role"] == "user" for m in body.get("messages", []))][:TURNS]
    print("| turn | messages sent | input repeated from the previous request | previous request found again | time to first token s |")
    print("| --- | --- | --- | --- | --- |")
    shares = []
    for i, body in enumerate(turns):
        share, kept = repeated_shares(turns[i - 1], body) if i else (0.0, 0.0)
        if i >= 2:
            shares.append(share)
        print(f"| {i + 1} | {len(body['messages'])} | {share:.1%} | {kept:.1%} | {ttfts[i]:.3f} |")
    print(f"\nturns 3-{TURNS}: minimum {min(shares):.1%}, median {statistics.median(shares):.1%} of each request's input repeats the previous one")
    print(f"time to first token, turn {TURNS}: {ttfts[-1]:.3f} s; cold claude -p: {cold:.3f} s (median of {COLD_RUNS}); ratio {ttfts[-1] / cold:.2f}")


if __name__ == "__main__":
    main()
