#!/usr/bin/env python3
# Usage: python3 ../shared/claude-cli/fake_anthropic.py --port 0 --port-file port --reply agent &
#        python3 tests/Fixtures/client_tools/record.py "$(cat port)"
# Records the real CLI as the gateway drives it when the model calls the client's functions: the functions served in the
# pipe (an sdk MCP server), a round's calls answered only once all of them wait. Writes every stdout line to stdout.txt here.
import json, subprocess, sys, os, tempfile
ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", ".."))
CLI = os.path.join(ROOT, ".tools", "claude-cli", "node_modules", ".bin", "claude")
port = int(sys.argv[1])
env = dict(os.environ, ANTHROPIC_BASE_URL=f"http://127.0.0.1:{port}", ANTHROPIC_API_KEY="sk-ant-fake", CLAUDE_CONFIG_DIR=tempfile.mkdtemp(),
           HOME=tempfile.mkdtemp(), DISABLE_AUTOUPDATER="1", CLAUDE_CODE_MAX_RETRIES="0", DISABLE_TELEMETRY="1", CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC="1")
cmd = [CLI, "-p", "--input-format", "stream-json", "--output-format", "stream-json", "--verbose", "--include-partial-messages",
       "--tools", "", "--strict-mcp-config", "--setting-sources", "", "--disable-slash-commands", "--model", "sonnet", "--no-session-persistence",
       "--mcp-config", json.dumps({"mcpServers": {"client": {"type": "sdk", "name": "client"}}}), "--allowedTools", "mcp__client__get_weather"]
p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env, cwd=tempfile.mkdtemp())
def send(o): p.stdin.write(json.dumps(o) + "\n"); p.stdin.flush()
# The fake API's agent mode: a round of two parallel calls, then one more call, then an answer listing the results.
prompt = "weather please\ncall:get_weather:{\"city\":\"Paris\"} ; call:get_weather:{\"city\":\"Oslo\"}\ncall:get_weather:{\"city\":\"Rome\"}"
send({"type": "user", "message": {"role": "user", "content": [{"type": "text", "text": prompt}]}})
tools = [{"name": "get_weather", "description": "weather for a city", "inputSchema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}, "annotations": {"readOnlyHint": True}}]
out = open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "stdout.txt"), "w")
round_ids, ended, waiting = [], False, {}
for line in p.stdout:
    out.write(line)
    o = json.loads(line); t = o.get("type")
    if t == "stream_event":
        e = o["event"]
        if e["type"] == "message_start": round_ids, ended = [], False
        if e["type"] == "content_block_start" and e["content_block"]["type"] == "tool_use": round_ids.append(e["content_block"]["id"])
        if e["type"] == "message_delta": ended = e["delta"].get("stop_reason") == "tool_use"
    if t == "control_request" and o["request"].get("subtype") == "mcp_message":
        m = o["request"]["message"]; meth = m.get("method")
        if meth == "tools/call":
            waiting[m["params"]["_meta"]["claudecode/toolUseId"]] = (o, m)
        else:
            res = {"protocolVersion": m["params"]["protocolVersion"], "capabilities": {"tools": {}}, "serverInfo": {"name": "client", "version": "1"}} if meth == "initialize" else {"tools": tools} if meth == "tools/list" else {}
            send({"type": "control_response", "response": {"subtype": "success", "request_id": o["request_id"], "response": {"mcp_response": {"jsonrpc": "2.0", "id": m.get("id"), "result": res}}}})
    if ended and round_ids and all(i in waiting for i in round_ids):
        for i in round_ids:
            o2, m2 = waiting.pop(i)
            send({"type": "control_response", "response": {"subtype": "success", "request_id": o2["request_id"], "response": {"mcp_response": {"jsonrpc": "2.0", "id": m2["id"], "result": {"content": [{"type": "text", "text": "sunny in " + m2["params"]["arguments"]["city"]}], "isError": False}}}}})
        round_ids = []
    if t == "result":
        p.stdin.close(); break
p.wait(timeout=10)
