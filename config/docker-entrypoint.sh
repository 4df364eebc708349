#!/bin/sh
# The user's ~/.claude is mounted read-only at /claude-login; the CLI needs a writable home for its own state, so
# only the login is copied in.
set -e
mkdir -p "$HOME/.claude"
if [ -f /claude-login/.credentials.json ]; then
    cp /claude-login/.credentials.json "$HOME/.claude/.credentials.json"
    chmod 600 "$HOME/.claude/.credentials.json"
fi
exec dotnet /app/ClaudeProxy.Gateway.dll "$@"
