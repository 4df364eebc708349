#!/usr/bin/env python3
"""Claude workers behind a front: new chats per second at saturation with one worker vs two, and the front's added time
to first token over a worker reached directly, beside what a bare YARP proxy's hop adds.

One machine, one run: the fake Anthropic API (echo), redis-server (as the compose profile has it: the fronts keep their
placements there, the workers their conversations), two workers (the gateway's binary, CLAUDEPROXY_ROLE=worker, the
real CLI, no warm spares, so each new chat starts a CLI), a front before the first worker and a front before both.
Saturation: CLIENTS clients sending new chats (stream:false) for SECONDS through each front in turn. Added TTFT: over
TURNS rounds, one turn of each of four kept conversations (each on its own warm process), in a new random order every
round, PAUSE apart: through the one-worker front (/api/chat), straight to that worker's POST /v1/turns, through a bare
YARP proxy (bench/BareYarp: one route, one cluster, nothing else) to the same, which says what any proxy hop costs on
this machine, and through an all-in-one gateway (/api/chat, no workers) for reference. The order is shuffled because a
turn right after another on the same machine is faster (a fixed order made the front look 5-10 ms slower than it is).
Then the same over FAKE_TURNS rounds with tests/FakeClaude as the CLI of a worker, a front, a bare proxy and an all-in-one
gateway of their own: it answers at once, so what is left is what the gateway adds.

    python3 bench/workers.py        (after: dotnet build src/Gateway -c Release; dotnet build bench/BareYarp -c Release;
                                     the test build, for the CLI and tests/FakeClaude; redis-server)
    python3 bench/workers.py --fake-only    (the FakeClaude round alone: what the front adds, in about a minute)
"""
import http.client, json, os, random, statistics, subprocess, sys, tempfile, threading, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from warm_ttft import CLI, GATEWAY, ROOT, free_port, start_fake_api  # noqa: E402

FAKE_CLI = os.path.join(ROOT, "tests", "FakeClaude", "bin", "Debug", "net10.0", "fake-claude")
BARE_YARP = os.path.join(ROOT, "bench", "BareYarp", "bin", "Release", "net10.0", "bare-yarp.dll")
KEY = "bench-worker-key"
CLIENTS, SECONDS, TURNS, FAKE_TURNS = 8, 20, 100, 500
# Seconds between two measured turns. Back to back, a turn either found the cores still awake from the one before or
# raced that turn's tail (the worker saving the conversation to Redis, the CLI its session file, on the same two cores),
# so its time was bimodal and the medians of two paths could fall in different modes; a user's next turn comes seconds
# later, on a machine that has settled.
PAUSE = 0.02


def wait_until_up(port, process):
    while True:
        if process.poll() is not None:
            sys.exit(f"{process.args[1]} exited with {process.returncode} before it answered /healthz on port {port}; is it built?")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.1)


def start(env, work, name, cli=CLI, **settings):
    port = free_port()
    data = os.path.join(work, name)
    process_env = dict(env, PORT=str(port), OLLAMA_URL="none", CLAUDE_CLI=cli, CLAUDEPROXY_WORKER_KEY=KEY,
                       ClaudeBackend__DataDirectory=data, ClaudeBackend__Models__0__WarmSpares="0",
                       ClaudeBackend__Models__0__WarmConversationSpares="0", ClaudeBackend__Models__0__MaxWarmSpares="0",
                       ClaudeBackend__Environment__ANTHROPIC_BASE_URL=env["ANTHROPIC_BASE_URL"],
                       ClaudeBackend__Environment__ANTHROPIC_API_KEY="sk-ant-fake", ClaudeBackend__Environment__HOME=env["HOME"], **settings)
    process = subprocess.Popen(["dotnet", GATEWAY], env=process_env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_until_up(port, process)
    return process, port


def start_bare_yarp(worker):
    """A bare YARP proxy before a worker: what a proxy hop costs, with nothing of the front's own work."""
    port = free_port()
    process = subprocess.Popen(["dotnet", BARE_YARP, f"http://127.0.0.1:{worker}", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_until_up(port, process)
    return process, port


def post(port, path, body, headers=None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    started = time.monotonic()
    conn.request("POST", path, json.dumps(body), {"Content-Type": "application/json", **(headers or {})})
    response = conn.getresponse()
    response.readline()
    first = time.monotonic() - started
    response.read()
    conn.close()
    return response.status, first


def saturate(port):
    """New chats per second with CLIENTS clients, each sending the next as soon as the last is answered."""
    done, failed, stop = [0], [0], time.monotonic() + SECONDS

    def client(i):
        n = 0
        while time.monotonic() < stop:
            status, _ = post(port, "/api/chat", {"model": "claude-sonnet:latest", "stream": False,
                                                 "messages": [{"role": "user", "content": f"client {i} chat {n}"}]})
            n += 1
            if status == 200:
                done[0] += 1
            else:
                failed[0] += 1

    started = time.monotonic()
    threads = [threading.Thread(target=client, args=(i,)) for i in range(CLIENTS)]
    for t in threads: t.start()
    for t in threads: t.join()
    return done[0] / (time.monotonic() - started), failed[0]


def time_to_first_token(front, worker, bare, single, rounds, tag):
    """Milliseconds to the first line, per kind: kept conversations, the four kinds in a random order each round."""
    ttft = {"front": [], "direct": [], "bare": [], "single": []}
    for turn in range(rounds + 1):
        kinds = {
            "front": lambda: post(front, "/api/chat", {"model": "claude-sonnet:latest", "id": f"ttft-front-{tag}",
                                                      "messages": [{"role": "user", "content": f"turn {turn}"}]}),
            "direct": lambda: post(worker, "/v1/turns", {"model": "claude-sonnet:latest", "conversationId": f"ttft-direct-{tag}",
                                                         "messages": [{"role": "user", "text": f"turn {turn}"}]}, {"X-ClaudeProxy-Worker-Key": KEY}),
            "bare": lambda: post(bare, "/v1/turns", {"model": "claude-sonnet:latest", "conversationId": f"ttft-bare-{tag}",
                                                     "messages": [{"role": "user", "text": f"turn {turn}"}]}, {"X-ClaudeProxy-Worker-Key": KEY}),
            "single": lambda: post(single, "/api/chat", {"model": "claude-sonnet:latest", "id": f"ttft-single-{tag}",
                                                         "messages": [{"role": "user", "content": f"turn {turn}"}]}),
        }
        order = list(kinds)
        random.shuffle(order)
        for kind in order:
            time.sleep(PAUSE)
            _, first = kinds[kind]()
            if turn > 0:  # the first turn of each starts its process
                ttft[kind].append(first * 1000)
    return ttft


def print_ttft(ttft, title):
    median = {kind: statistics.median(values) for kind, values in ttft.items()}

    def added(kind, over):
        """Added over another kind: the difference of the medians, and the median of the per-round differences."""
        paired = statistics.median(a - b for a, b in zip(ttft[kind], ttft[over]))
        return f"{median[kind] - median[over]:+.2f} ms (difference of medians), {paired:+.2f} ms (median of the per-round differences)"

    print(f"| {title} | p50 ms | p25 ms | p75 ms |")
    print("| --- | --- | --- | --- |")
    for kind, label in (("direct", "straight to the worker (`POST /v1/turns`)"), ("front", "through the front (`/api/chat`)"),
                        ("bare", "through a bare YARP proxy to the worker (`POST /v1/turns`)"),
                        ("single", "all-in-one gateway, no workers (`/api/chat`)")):
        q = statistics.quantiles(ttft[kind], n=4)
        print(f"| {label} | {median[kind]:.2f} | {q[0]:.2f} | {q[2]:.2f} |")
    print()
    print(f"Front added: {added('front', 'direct')}.")
    print(f"A bare proxy hop added: {added('bare', 'direct')}; the front over it: {added('front', 'bare')}.")
    print()


def main():
    work = tempfile.mkdtemp(prefix="workers-bench-")
    api, base_url = start_fake_api(work)
    env = dict(os.environ, ANTHROPIC_BASE_URL=base_url, HOME=os.path.join(work, "home"))
    os.makedirs(env["HOME"])
    redis_port = free_port()
    processes = [subprocess.Popen(["redis-server", "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    redis = f"127.0.0.1:{redis_port}"
    fake_only = "--fake-only" in sys.argv
    try:
        if not fake_only:
            (w1, p1), (w2, p2) = (start(env, work, "w1", CLAUDEPROXY_ROLE="worker", CLAUDEPROXY_REDIS=redis),
                                  start(env, work, "w2", CLAUDEPROXY_ROLE="worker", CLAUDEPROXY_REDIS=redis))
            processes += [w1, w2]
            f1, front1 = start(env, work, "f1", CLAUDEPROXY_REDIS=redis, Gateway__Workers__0=f"http://127.0.0.1:{p1}")
            f2, front2 = start(env, work, "f2", CLAUDEPROXY_REDIS=redis, Gateway__Workers__0=f"http://127.0.0.1:{p1}", Gateway__Workers__1=f"http://127.0.0.1:{p2}")
            processes += [f1, f2]
            time.sleep(6)  # the fronts' first active health checks
            one, one_failed = saturate(front1)
            two, two_failed = saturate(front2)

            single, single_port = start(env, work, "single")
            bare, bare_port = start_bare_yarp(p1)
            processes += [single, bare]
            ttft = time_to_first_token(front1, p1, bare_port, single_port, TURNS, "real")

        # The same with tests/FakeClaude as the CLI, which answers at once: what the front adds, without the real CLI's
        # and the fake API's spread (the quartiles of a real turn span 20-30 ms, so 100 rounds leave the medians ±2-3 ms).
        fake_worker, fake_worker_port = start(env, work, "fw", cli=FAKE_CLI, CLAUDEPROXY_ROLE="worker", CLAUDEPROXY_REDIS=redis)
        processes.append(fake_worker)
        fake_front, fake_front_port = start(env, work, "ff", cli=FAKE_CLI, CLAUDEPROXY_REDIS=redis, Gateway__Workers__0=f"http://127.0.0.1:{fake_worker_port}")
        fake_single, fake_single_port = start(env, work, "fs", cli=FAKE_CLI)
        fake_bare, fake_bare_port = start_bare_yarp(fake_worker_port)
        processes += [fake_front, fake_single, fake_bare]
        time.sleep(6)  # the front's first active health check
        fake_ttft = time_to_first_token(fake_front_port, fake_worker_port, fake_bare_port, fake_single_port, FAKE_TURNS, "fake")
    finally:
        for process in processes:
            process.kill()
        api.kill()

    if not fake_only:
        print(f"| new chats per second, {CLIENTS} clients for {SECONDS} s | one worker | two workers | two / one |")
        print("| --- | --- | --- | --- |")
        print(f"| through the front | {one:.2f} ({one_failed} failed) | {two:.2f} ({two_failed} failed) | {two / one:.2f} |")
        print()
        print_ttft(ttft, f"time to first token, real CLI, kept conversation, {TURNS} rounds")
    print_ttft(fake_ttft, f"time to first token, tests/FakeClaude as the CLI, kept conversation, {FAKE_TURNS} rounds")


if __name__ == "__main__":
    main()
