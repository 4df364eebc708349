#!/usr/bin/env python3
"""Time to first token through ClaudeProxy's warm pool vs a cold `claude -p` run directly.

Same fake Anthropic API (shared/claude-cli/fake_anthropic.py), same machine, same run. Reports medians of 9 new chats
one at a time (warm spares), the median of 8 at once, the median of 9 first turns of new kept conversations (a
conversation spare each) and of 9 further turns of one kept conversation (its own process, kept up between turns),
each with its ratio to the cold CLI.

    python3 bench/warm_ttft.py        (after: dotnet build src/Gateway -c Release; the CLI from the test build)
"""
import http.client, json, os, socket, statistics, subprocess, sys, tempfile, threading, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CLI = os.path.join(ROOT, ".tools", "claude-cli", "node_modules", ".bin", "claude")
GATEWAY = os.path.join(ROOT, "src", "Gateway", "bin", "Release", "net10.0", "ClaudeProxy.Gateway.dll")
FAKE = os.path.join(ROOT, "..", "shared", "claude-cli", "fake_anthropic.py")
RUNS, CONCURRENT = 9, 8


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_fake_api(work):
    port_file = os.path.join(work, "port")
    proc = subprocess.Popen([sys.executable, FAKE, "--port", "0", "--port-file", port_file, "--reply", "echo"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while not (os.path.exists(port_file) and open(port_file).read().strip()):
        time.sleep(0.05)
    return proc, f"http://127.0.0.1:{open(port_file).read().strip()}"


def cold_ttft(env, cwd):
    """Spawn to first text delta of `claude -p` with the gateway's own flags, the prompt on stdin."""
    args = [CLI, "-p", "--input-format", "stream-json", "--output-format", "stream-json", "--verbose",
            "--include-partial-messages", "--tools", "", "--strict-mcp-config", "--setting-sources", "",
            "--disable-slash-commands", "--model", "sonnet", "--no-session-persistence"]
    user = json.dumps({"type": "user", "message": {"role": "user", "content": [{"type": "text", "text": "hello"}]}})
    start = time.monotonic()
    proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env, cwd=cwd)
    proc.stdin.write(user + "\n")
    proc.stdin.close()
    first = None
    for line in proc.stdout:
        if first is None and '"text_delta"' in line:
            first = time.monotonic() - start
    proc.wait()
    return first


def gateway_ttft(port, conversation=None):
    """Request sent to the first NDJSON chunk of the answer."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    request = {"model": "claude-sonnet:latest", "messages": [{"role": "user", "content": "hello"}]}
    if conversation:
        request["id"] = conversation
    body = json.dumps(request)
    start = time.monotonic()
    conn.request("POST", "/api/chat", body, {"Content-Type": "application/json"})
    response = conn.getresponse()
    response.readline()
    first = time.monotonic() - start
    response.read()
    conn.close()
    return first


def concurrently(fn, n):
    results = [None] * n
    threads = [threading.Thread(target=lambda i=i: results.__setitem__(i, fn())) for i in range(n)]
    for t in threads: t.start()
    for t in threads: t.join()
    return results


def main():
    work = tempfile.mkdtemp(prefix="warm-ttft-")
    api, base_url = start_fake_api(work)
    env = dict(os.environ, ANTHROPIC_BASE_URL=base_url, ANTHROPIC_API_KEY="sk-ant-fake", HOME=os.path.join(work, "home"),
               CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC="1", DISABLE_AUTOUPDATER="1", DISABLE_TELEMETRY="1", DISABLE_ERROR_REPORTING="1")
    os.makedirs(env["HOME"])
    port = free_port()
    gateway_env = dict(env, PORT=str(port), OLLAMA_URL="none", CLAUDE_CLI=CLI, ClaudeBackend__DataDirectory=os.path.join(work, "data"),
                       ClaudeBackend__Models__0__WarmSpares=str(CONCURRENT), ClaudeBackend__Models__0__WarmConversationSpares="1",
                       ClaudeBackend__Environment__ANTHROPIC_BASE_URL=base_url, ClaudeBackend__Environment__ANTHROPIC_API_KEY="sk-ant-fake",
                       ClaudeBackend__Environment__HOME=env["HOME"])
    gateway = subprocess.Popen(["dotnet", GATEWAY], env=gateway_env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        def spares_ready():
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", "/metrics")
            text = conn.getresponse().read().decode()
            conn.close()
            return next((float(l.split()[-1]) for l in text.splitlines() if l.startswith("claudeproxy_cli_spares")), 0.0)

        def wait_for_spares():
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                try:
                    if spares_ready() >= CONCURRENT + 1:
                        # The gauge counts spares started; each needs about 0.6 s more to load before it waits on stdin.
                        time.sleep(1.0)
                        return
                except OSError:
                    pass
                time.sleep(0.2)
            raise SystemExit("the warm spares did not come up")

        wait_for_spares()
        warm_one, cold_one = [], []
        for _ in range(RUNS):
            warm_one.append(gateway_ttft(port))
            cold_one.append(cold_ttft(env, work))
            wait_for_spares()
        warm_many = concurrently(lambda: gateway_ttft(port), CONCURRENT)
        cold_many = concurrently(lambda: cold_ttft(env, work), CONCURRENT)
        wait_for_spares()
        first_kept = []
        for i in range(RUNS):
            first_kept.append(gateway_ttft(port, f"new-{i}"))
            wait_for_spares()
        kept = [gateway_ttft(port, "new-0") for _ in range(RUNS)]

        rows = [("one new chat (median of 9)", statistics.median(warm_one), statistics.median(cold_one), 0.15),
                (f"{CONCURRENT} new chats at once (median)", statistics.median(warm_many), statistics.median(cold_many), 0.3),
                ("first turn of a new kept conversation (median of 9)", statistics.median(first_kept), statistics.median(cold_one), 0.15),
                ("next turn of a kept conversation (median of 9)", statistics.median(kept), statistics.median(cold_one), None)]
        print("| case | ClaudeProxy, warm (ms) | cold `claude -p` (ms) | ratio | target |")
        print("| --- | --- | --- | --- | --- |")
        for name, warm, cold, target in rows:
            print(f"| {name} | {warm * 1000:.0f} | {cold * 1000:.0f} | {warm / cold:.2f} | {'<= ' + str(target) if target else '-'} |")
    finally:
        gateway.kill()
        api.kill()


if __name__ == "__main__":
    main()
