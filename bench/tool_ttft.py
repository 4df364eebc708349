#!/usr/bin/env python3
"""Time from posting a function's result to the first token of the answer that goes on from it, through ClaudeProxy.

Same fake Anthropic API (in its `agent` mode, which calls the client's function once, then answers), same machine, same
run. Two paths: the paused process (the CLI that made the call still waits for its result), and the rebuilt one (a
gateway whose ToolResultTimeout of 1 s has ended that process: the conversation is rebuilt up to the question and the
call answered again). Each against a cold `claude -p` run directly: medians of 9, and the ratio.

    python3 bench/tool_ttft.py        (after: dotnet build src/Gateway -c Release; the CLI from the test build)
"""
import http.client, json, os, statistics, subprocess, sys, tempfile, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from warm_ttft import CLI, GATEWAY, cold_ttft, free_port, start_fake_api  # noqa: E402

RUNS, COLD_RUNS = 9, 5
TOOLS = [{"type": "function", "function": {"name": "get_weather", "description": "weather for a city",
                                            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}]


def post(port, messages):
    """Streams one /v1/chat/completions turn: (seconds to the first delta, the text, the tool calls)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    body = json.dumps({"model": "claude-sonnet:latest", "stream": True, "messages": messages, "tools": TOOLS})
    start = time.monotonic()
    conn.request("POST", "/v1/chat/completions", body, {"Content-Type": "application/json"})
    response = conn.getresponse()
    first, text, calls = None, [], {}
    for raw in response:
        line = raw.decode().strip()
        if not line.startswith("data: {"):
            continue
        choices = json.loads(line[6:])["choices"]
        delta = choices[0]["delta"] if choices else {}
        if delta.get("content") or delta.get("tool_calls"):
            first = first or time.monotonic() - start
        text.append(delta.get("content") or "")
        for call in delta.get("tool_calls") or []:
            known = calls.setdefault(call["index"], {"id": None, "type": "function", "function": {"name": "", "arguments": ""}})
            known["id"] = call.get("id") or known["id"]
            known["function"]["name"] += call.get("function", {}).get("name") or ""
            known["function"]["arguments"] += call.get("function", {}).get("arguments") or ""
    conn.close()
    return first, "".join(text), [calls[i] for i in sorted(calls)]


def start_gateway(work, env, base_url, name, *settings):
    port = free_port()
    gateway_env = dict(env, PORT=str(port), OLLAMA_URL="none", CLAUDE_CLI=CLI, ClaudeBackend__DataDirectory=os.path.join(work, name),
                       ClaudeBackend__Environment__ANTHROPIC_BASE_URL=base_url, ClaudeBackend__Environment__ANTHROPIC_API_KEY="sk-ant-fake",
                       ClaudeBackend__Environment__HOME=env["HOME"], **dict(settings))
    gateway = subprocess.Popen(["dotnet", GATEWAY], env=gateway_env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(200):
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            conn.request("GET", "/api/version")
            if conn.getresponse().status == 200:
                return gateway, port
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("the gateway did not start")


def result_to_answer(port, run, wait=0.0):
    """One call of the function, then its result posted: seconds from the post to the answer's first token."""
    messages = [{"role": "user", "content": f"Run {run}: the weather?\ncall:get_weather:{{\"city\":\"Oslo\"}}"}]
    _, text, calls = post(port, messages)
    assert calls, f"no call: {text}"
    time.sleep(wait)
    messages.append({"role": "assistant", "content": None, "tool_calls": calls})
    messages.append({"role": "tool", "tool_call_id": calls[0]["id"], "content": "sunny in Oslo"})
    first, text, _ = post(port, messages)
    assert "sunny in Oslo" in text, text
    return first


def main():
    work = tempfile.mkdtemp(prefix="tool-ttft-")
    api, base_url = start_fake_api(work, "--reply", "agent")
    env = dict(os.environ, ANTHROPIC_BASE_URL=base_url, ANTHROPIC_API_KEY="sk-ant-fake", HOME=os.path.join(work, "home"),
               CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC="1", DISABLE_AUTOUPDATER="1", DISABLE_TELEMETRY="1", DISABLE_ERROR_REPORTING="1")
    os.makedirs(env["HOME"])
    paused_gateway, paused_port = start_gateway(work, env, base_url, "paused")
    rebuilt_gateway, rebuilt_port = start_gateway(work, env, base_url, "rebuilt", ("ClaudeBackend__ToolResultTimeout", "00:00:01"))
    try:
        paused = statistics.median(result_to_answer(paused_port, run) for run in range(RUNS))
        rebuilt = statistics.median(result_to_answer(rebuilt_port, run, wait=3) for run in range(RUNS))
        cold = statistics.median(cold_ttft(env, work) for _ in range(COLD_RUNS))
    finally:
        for process in (paused_gateway, rebuilt_gateway, api):
            process.kill()
            process.wait()

    print("| path from the posted result to the first token | median s | ratio to cold claude -p |")
    print("| --- | --- | --- |")
    print(f"| paused process (the CLI that made the call) | {paused:.3f} | {paused / cold:.2f} |")
    print(f"| rebuilt (that process gone; the question asked again, the call answered at once) | {rebuilt:.3f} | {rebuilt / cold:.2f} |")
    print(f"| cold claude -p, no tools (baseline) | {cold:.3f} | 1.00 |")


if __name__ == "__main__":
    main()
