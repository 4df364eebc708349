#!/usr/bin/env python3
# Usage: python3 ../shared/claude-cli/fake_anthropic.py --port 0 --port-file port --reply agent --log requests.jsonl &
#        python3 tests/Fixtures/turn_settings/record.py "$(cat port)" requests.jsonl
# Records the real CLI as the gateway drives it for a request's fields (issue 15): control requests on stdin ahead of the
# prompt (effort, output limit, thinking), a structured answer (the schema in `initialize`), and what reached the API.
import json, subprocess, sys, os, tempfile
HERE = os.path.dirname(os.path.abspath(__file__))
CLI = os.path.join(HERE, "..", "..", "..", ".tools", "claude-cli", "node_modules", ".bin", "claude")
port, log = int(sys.argv[1]), sys.argv[2]
env = dict(os.environ, ANTHROPIC_BASE_URL=f"http://127.0.0.1:{port}", ANTHROPIC_API_KEY="sk-ant-fake", CLAUDE_CONFIG_DIR=tempfile.mkdtemp(),
           HOME=tempfile.mkdtemp(), DISABLE_AUTOUPDATER="1", CLAUDE_CODE_MAX_RETRIES="0", DISABLE_TELEMETRY="1", CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC="1")
CMD = [CLI, "-p", "--input-format", "stream-json", "--output-format", "stream-json", "--verbose", "--include-partial-messages",
       "--tools", "", "--strict-mcp-config", "--setting-sources", "", "--disable-slash-commands", "--model", "sonnet", "--no-session-persistence"]
def user(text): return {"type": "user", "message": {"role": "user", "content": [{"type": "text", "text": text}]}}
def control(rid, request): return {"type": "control_request", "request_id": rid, "request": request}
def run(name, turns):
    """Each turn: lines written at once (no waiting for control responses), then stdout read up to the result line."""
    p = subprocess.Popen(CMD, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env, cwd=tempfile.mkdtemp())
    out = open(os.path.join(HERE, name + ".stdout.txt"), "w")
    for lines in turns:
        p.stdin.write("".join(json.dumps(l) + "\n" for l in lines)); p.stdin.flush()
        for line in p.stdout:
            out.write(line)
            if json.loads(line).get("type") == "result": break
    p.stdin.close(); p.wait(timeout=20)
def sent():
    """What each API request asked for, in order."""
    rows = [json.loads(l) for l in open(log)]
    return [{k: r["body"].get(k) for k in ("max_tokens", "thinking", "output_config")} | {"tools": [t["name"] for t in r["body"].get("tools", [])]}
            for r in rows if r.get("method") == "POST" and r.get("path") == "/v1/messages"]
schema = {"type": "object", "properties": {"city": {"type": "string"}, "temp": {"type": "number"}}, "required": ["city", "temp"]}
open(log, "w").close()
# One process, three turns: settings applied, kept by the next turn, then put back to the defaults.
run("settings", [
    [control("a", {"subtype": "apply_flag_settings", "settings": {"effortLevel": "low", "env": {"CLAUDE_CODE_MAX_OUTPUT_TOKENS": "100"}}}),
     control("b", {"subtype": "set_max_thinking_tokens", "max_thinking_tokens": 0}), user("one")],
    [user("two")],
    [control("c", {"subtype": "apply_flag_settings", "settings": {"effortLevel": None, "env": {"CLAUDE_CODE_MAX_OUTPUT_TOKENS": ""}}}),
     control("d", {"subtype": "set_max_thinking_tokens", "max_thinking_tokens": None}), user("three")],
])
settings = sent()
open(log, "w").close()
run("structured_ok", [[control("i", {"subtype": "initialize", "jsonSchema": schema}), user('weather\ncall:StructuredOutput:{"city":"Paris","temp":21}')]])
run("structured_refused", [[control("i", {"subtype": "initialize", "jsonSchema": schema}), user('weather\ncall:StructuredOutput:{"city":"Paris","temp":"hot"}')]])
structured = sent()
json.dump({"settings_turns": settings, "structured_requests": structured}, open(os.path.join(HERE, "requests.json"), "w"), indent=1)
