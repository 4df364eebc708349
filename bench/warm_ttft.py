#!/usr/bin/env python3
"""Time to first token through ClaudeProxy's warm pool vs a cold `claude -p` run directly.

Same fake Anthropic API (shared/claude-cli/fake_anthropic.py), same machine, same run. Reports medians of 9 new chats
one at a time (warm spares), the median of 8 at once, the median of 9 first turns of new kept conversations (a
conversation spare each) and of 9 further turns of one kept conversation (its own process, kept up between turns),
each with its ratio to the cold CLI. Then, on a gateway with the shipped spare settings, two new chats back to back
(a chat, then at once its title request): the first such pair after start, and 9 more once the pool has seen one.

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


def start_fake_api(work, *extra):
    port_file = os.path.join(work, "port")
    proc = subprocess.Popen([sys.executable, FAKE, "--port", "0", "--port-file", port_file, "--reply", "echo", *extra],
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
        def wait_for_spares():
            wait_for_spares_of(port, CONCURRENT + 1)

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

    finally:
        gateway.kill()
        gateway.wait()

    # The shipped spare settings (config/gateway.json): one spare for new chats, up to three when chats come in bursts.
    port = free_port()
    defaults_env = {k: v for k, v in gateway_env.items() if not k.startswith("ClaudeBackend__Models__")}
    defaults_env.update(PORT=str(port), ClaudeBackend__DataDirectory=os.path.join(work, "data-defaults"))
    gateway = subprocess.Popen(["dotnet", GATEWAY], env=defaults_env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_spares_of(port, 2)  # one for new chats, one for new conversations
        first_pair = (gateway_ttft(port), gateway_ttft(port))
        pair_first, pair_second = [], []
        for _ in range(RUNS):
            wait_for_spares_of(port, 3)  # the burst taught the pool to keep two for new chats
            # Both were started just now (the last pair took the previous two): give them the ≈2 s a cold start takes on a
            # busy machine, as the seconds between one chat and the next give them in use.
            time.sleep(2.0)
            pair_first.append(gateway_ttft(port))
            pair_second.append(gateway_ttft(port))
    finally:
        gateway.kill()
        api.kill()

    cold = statistics.median(cold_one)
    rows = [("one new chat (median of 9)", statistics.median(warm_one), cold, 0.15),
            (f"{CONCURRENT} new chats at once (median)", statistics.median(warm_many), statistics.median(cold_many), 0.3),
            ("first turn of a new kept conversation (median of 9)", statistics.median(first_kept), cold, 0.15),
            ("next turn of a kept conversation (median of 9)", statistics.median(kept), cold, None),
            ("shipped defaults, first pair after start: first chat", first_pair[0], cold, None),
            ("shipped defaults, first pair after start: second chat", first_pair[1], cold, None),
            ("shipped defaults, two new chats back to back: first (median of 9)", statistics.median(pair_first), cold, 0.15),
            ("shipped defaults, two new chats back to back: second (median of 9)", statistics.median(pair_second), cold, 0.15)]
    print("| case | ClaudeProxy, warm (ms) | cold `claude -p` (ms) | ratio | target |")
    print("| --- | --- | --- | --- | --- |")
    for name, warm, cold_ms, target in rows:
        print(f"| {name} | {warm * 1000:.0f} | {cold_ms * 1000:.0f} | {warm / cold_ms:.2f} | {'<= ' + str(target) if target else '-'} |")


def spares_ready(port):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    conn.request("GET", "/metrics")
    text = conn.getresponse().read().decode()
    conn.close()
    return sum(float(l.split()[-1]) for l in text.splitlines() if l.startswith("claudeproxy_cli_spares"))


def wait_for_spares_of(port, count):
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if spares_ready(port) >= count:
                # The gauge counts spares started; each needs about 0.6 s more to load before it waits on stdin.
                time.sleep(1.0)
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise SystemExit("the warm spares did not come up")


if __name__ == "__main__":
    main()
