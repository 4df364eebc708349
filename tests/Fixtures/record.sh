#!/usr/bin/env bash
# Records the real CLI's behaviour that ClaudeProxy relies on beyond ../shared/claude-cli/fixtures, into this folder.
# Run from the repository root after `dotnet build` (which installs the pinned CLI into .tools/):
#   bash tests/Fixtures/record.sh
set -euo pipefail
cd "$(dirname "$0")"
cli="$(cd ../.. && pwd)/.tools/claude-cli/node_modules/.bin/claude"
work=/tmp/claudeproxy-fixture
rm -rf "$work" && mkdir -p "$work/config" "$work/home" "$work/work.dir_1" "$work/ephemeral"
python3 ../../../shared/claude-cli/fake_anthropic.py --host 127.0.0.1 --port 0 --port-file "$work/port" --reply history >/dev/null 2>&1 &
fake=$!
trap 'kill $fake' EXIT
while [[ ! -s "$work/port" ]]; do sleep 0.1; done
export ANTHROPIC_BASE_URL="http://127.0.0.1:$(cat "$work/port")" ANTHROPIC_API_KEY=sk-ant-fake HOME="$work/home" CLAUDE_CONFIG_DIR="$work/config"
export CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1 DISABLE_AUTOUPDATER=1 DISABLE_TELEMETRY=1 DISABLE_ERROR_REPORTING=1
flags=(-p --input-format stream-json --output-format stream-json --verbose --include-partial-messages --tools "" --strict-mcp-config --setting-sources "" --disable-slash-commands --model sonnet)
user='{"type":"user","message":{"role":"user","content":[{"type":"text","text":"hi"}]}}'
session=11111111-2222-4333-8444-555555555555

# 1. --resume of a session the config folder does not hold, in the gateway's stream-json profile.
case=resume_unknown_session_stream_json
mkdir -p "$case"
{ printf "claude"; printf " %q" "${flags[@]}" --resume 99999999-2222-4333-8444-555555555555; echo "   # stdin: one user line, then closed"; } >"$case/command.txt"
set +e
(cd "$work/work.dir_1" && echo "$user" | "$cli" "${flags[@]}" --resume 99999999-2222-4333-8444-555555555555 >"$OLDPWD/$case/stdout.txt" 2>"$OLDPWD/$case/stderr.txt")
echo $? >"$case/exit_code.txt"
set -e

# 2. What the config folder holds after a turn without a session, then a session created and resumed in another folder.
case=session_files_per_working_directory
mkdir -p "$case"
(cd "$work/ephemeral" && echo "$user" | "$cli" "${flags[@]}" --no-session-persistence >/dev/null)
(cd "$work/work.dir_1" && echo "$user" | "$cli" "${flags[@]}" --session-id $session >/dev/null)
(cd "$work/work.dir_1" && echo "$user" | "$cli" "${flags[@]}" --resume $session >/dev/null)
{
    echo "# CLAUDE_CONFIG_DIR after: a --no-session-persistence turn in $work/ephemeral, then --session-id $session"
    echo "# and --resume $session in $work/work.dir_1 (the gateway's flags; backups/ and .claude.json left out)"
    (cd "$work/config" && find . -mindepth 1 -not -path './backups*' -not -name .claude.json | sort)
} >"$case/tree.txt"

# 3. A session file written by the gateway (ClaudeSessionFile's shape: one entry per message, each naming its parent),
#    then resumed with a new question: the model gets the written turns as real user and assistant messages.
case=resume_written_session
mkdir -p "$case" "$work/written"
written=33333333-2222-4333-8444-555555555555
project="$work/config/projects/$(echo "$work/written" | sed 's/[^A-Za-z0-9]/-/g')"
mkdir -p "$project"
python3 - "$written" "$work/written" >"$project/$written.jsonl" <<'PY'
import json, sys, uuid
session, cwd = sys.argv[1], sys.argv[2]
parent = None
for role, text in [("user", "remember the word PINEAPPLE"), ("assistant", "I will remember PINEAPPLE."), ("user", "what is 2+2?"), ("assistant", "4")]:
    entry_id = str(uuid.uuid4())
    message = {"role": role, "content": [{"type": "text", "text": text}]}
    if role == "assistant":
        message.update(id="msg_" + entry_id.replace("-", ""), type="message", stop_reason="end_turn")
    print(json.dumps({"parentUuid": parent, "isSidechain": False, "type": role, "message": message, "uuid": entry_id,
                      "timestamp": "2026-12-01T17:00:00.000Z", "userType": "external", "cwd": cwd, "sessionId": session}))
    parent = entry_id
PY
cp "$project/$written.jsonl" "$case/session.jsonl"
question='{"type":"user","message":{"role":"user","content":[{"type":"text","text":"what word did I ask you to remember?"}]}}'
{ printf "claude"; printf " %q" "${flags[@]}" --resume $written; echo "   # stdin: one user line, then closed; session.jsonl written first"; } >"$case/command.txt"
(cd "$work/written" && echo "$question" | "$cli" "${flags[@]}" --resume $written >"$OLDPWD/$case/stdout.txt" 2>"$OLDPWD/$case/stderr.txt")
echo $? >"$case/exit_code.txt"
