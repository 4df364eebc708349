#!/usr/bin/env python3
# Usage: python3 tests/Fixtures/rate_limits/record.py   (after `dotnet build`, which installs the pinned CLI into .tools/)
# Records the CLI's rate_limit_event lines (issue 17): what a subscription login (CLAUDE_CODE_OAUTH_TOKEN) prints for
# the API's anthropic-ratelimit-unified-* response headers, and that an API-key login prints none. The shared fake sends
# no such headers: each case runs it through tests/TestSupport/fake_anthropic_with_headers.py with the case's headers.
import json, os, subprocess, sys, tempfile, time
HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.join(HERE, "..", "..", "..")
FAKE = os.path.join(os.environ.get("CLAUDEPROXY_SHARED") or os.path.join(ROOT, "..", "shared"), "claude-cli", "fake_anthropic.py")
WITH_HEADERS = os.path.join(ROOT, "tests", "TestSupport", "fake_anthropic_with_headers.py")
CLI = os.path.join(ROOT, ".tools", "claude-cli", "node_modules", ".bin", "claude")
RESET = 1796180400  # 2026-12-02T07:00:00Z: a fixed reset time, so the files do not change from one recording to the next

CMD = [CLI, "-p", "--input-format", "stream-json", "--output-format", "stream-json", "--verbose", "--include-partial-messages",
       "--tools", "", "--strict-mcp-config", "--setting-sources", "", "--disable-slash-commands", "--model", "sonnet", "--no-session-persistence"]
USER = json.dumps({"type": "user", "message": {"role": "user", "content": [{"type": "text", "text": "hi"}]}}) + "\n"

def record(name, headers, login, fail="none"):
    work = tempfile.mkdtemp()
    fake = subprocess.Popen([sys.executable, WITH_HEADERS, FAKE, json.dumps(headers), "--port", "0", "--port-file", f"{work}/port",
                             "--reply", "echo", "--fail", fail, "--retry-after", "1"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while not os.path.exists(f"{work}/port") or not open(f"{work}/port").read().strip():
            time.sleep(0.1)
        env = {k: v for k, v in os.environ.items() if k not in ("ANTHROPIC_API_KEY", "CLAUDE_CODE_OAUTH_TOKEN")}
        env.update(login, ANTHROPIC_BASE_URL=f"http://127.0.0.1:{open(f'{work}/port').read().strip()}", CLAUDE_CONFIG_DIR=f"{work}/config",
                   HOME=work, DISABLE_AUTOUPDATER="1", CLAUDE_CODE_MAX_RETRIES="0", DISABLE_TELEMETRY="1", CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC="1")
        done = subprocess.run(CMD, input=USER, capture_output=True, text=True, env=env, cwd=work, timeout=60)
        with open(os.path.join(HERE, name + ".stdout.txt"), "w") as out:
            out.write(done.stdout)
        with open(os.path.join(HERE, name + ".headers.json"), "w") as out:
            json.dump({"login": sorted(login), "fail": fail, "headers": headers}, out, indent=1)
    finally:
        fake.kill()

subscription = {"CLAUDE_CODE_OAUTH_TOKEN": "fake-oauth-token"}
record("subscription_allowed", {}, subscription)
record("subscription_warning", {
    "anthropic-ratelimit-unified-status": "allowed", "anthropic-ratelimit-unified-reset": str(RESET),
    "anthropic-ratelimit-unified-representative-claim": "five_hour", "anthropic-ratelimit-unified-5h-utilization": "0.93",
    "anthropic-ratelimit-unified-5h-reset": str(RESET), "anthropic-ratelimit-unified-5h-surpassed-threshold": "0.9"}, subscription)
record("subscription_rejected", {
    "anthropic-ratelimit-unified-status": "rejected", "anthropic-ratelimit-unified-reset": str(RESET),
    "anthropic-ratelimit-unified-representative-claim": "seven_day", "anthropic-ratelimit-unified-overage-status": "rejected",
    "anthropic-ratelimit-unified-overage-disabled-reason": "org_level_disabled"}, subscription, fail="429")
record("api_key", {"anthropic-ratelimit-unified-status": "allowed", "anthropic-ratelimit-unified-reset": str(RESET)},
       {"ANTHROPIC_API_KEY": "sk-ant-fake"})
