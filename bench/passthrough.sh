#!/usr/bin/env bash
# Pass-through overhead of ClaudeProxy in front of Ollama, measured the only honest way on a noisy 2-core machine:
# the same load against a fast fake Ollama (nginx answering fixed bodies) directly, through the proxies that say what a
# proxy can do here (nginx's own proxy_pass, a bare YARP app: one route, one cluster), and through the gateway, in one
# run. Reports p50/p99 latency, requests/s and CPU per request for GET /api/tags and a streamed POST /api/chat at
# concurrency 1 and 64.
#
#   bash bench/passthrough.sh [seconds per run, default 10] [rounds per cell, default 3]
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION="${1:-10}"
ROUNDS="${2:-3}"
WORK="$(mktemp -d)"
trap 'kill $(jobs -p) 2>/dev/null || true; [[ -f "$WORK/nginx.pid" ]] && kill "$(cat "$WORK/nginx.pid")" 2>/dev/null; rm -rf "$WORK"' EXIT

for tool in wrk nginx; do
    command -v "$tool" >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk nginx-light >/dev/null; break; }
done

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
OLLAMA_PORT=$(free_port)
NGINX_PROXY_PORT=$(free_port)
YARP_PORT=$(free_port)
GATEWAY_PORT=$(free_port)

# A fast fake Ollama: /api/tags with five models, /api/chat with a 20-chunk NDJSON answer.
python3 - "$WORK" "$OLLAMA_PORT" "$NGINX_PROXY_PORT" <<'PY'
import json, sys
work, port, proxy_port = sys.argv[1], sys.argv[2], sys.argv[3]
model = lambda n: {"name": n, "model": n, "modified_at": "2025-05-04T17:37:44.706015396-07:00", "size": 2019393189,
                   "digest": "a80c4f17acd55265feec403c7aef86be0c25983ab279d83f3bcd3abbcb5b8b72",
                   "details": {"parent_model": "", "format": "gguf", "family": "llama", "families": ["llama"],
                               "parameter_size": "3.2B", "quantization_level": "Q4_K_M"}}
tags = json.dumps({"models": [model(n) for n in ["llama3.2:latest", "qwen3:8b", "gemma3:4b", "mistral:7b", "phi4:latest"]]})
chunk = lambda t: json.dumps({"model": "llama3.2", "created_at": "2025-07-07T20:22:19.19314Z", "message": {"role": "assistant", "content": t}, "done": False})
final = json.dumps({"model": "llama3.2", "created_at": "2025-07-07T20:22:19.19314Z", "message": {"role": "assistant", "content": ""}, "done": True, "done_reason": "stop", "total_duration": 182242375, "eval_count": 20})
chat = "\n".join([chunk(f"token{i} ") for i in range(20)] + [final]) + "\n"
open(f"{work}/nginx.conf", "w").write(f"""
worker_processes 1;
pid {work}/nginx.pid;
error_log {work}/error.log;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {work}; proxy_temp_path {work}; fastcgi_temp_path {work}; uwsgi_temp_path {work}; scgi_temp_path {work};
    server {{
        listen 127.0.0.1:{port};
        location = /api/tags {{ default_type "application/json; charset=utf-8"; return 200 '{tags}'; }}
        location = /api/version {{ default_type "application/json; charset=utf-8"; return 200 '{{"version":"0.13.5"}}'; }}
        location = /api/chat {{ default_type application/x-ndjson; return 200 '{chat}'; }}
    }}
    # nginx's own reverse proxy in front of the same, with kept-alive upstream connections as YARP keeps them.
    upstream ollama {{ server 127.0.0.1:{port}; keepalive 64; }}
    server {{
        listen 127.0.0.1:{proxy_port};
        location / {{ proxy_pass http://ollama; proxy_http_version 1.1; proxy_set_header Connection ""; proxy_buffering off; }}
    }}
}}
""")
PY
nginx -c "$WORK/nginx.conf"

dotnet build src/Gateway -c Release -v quiet -nologo >/dev/null
dotnet build bench/BareYarp -c Release -v quiet -nologo >/dev/null
dotnet bench/BareYarp/bin/Release/net10.0/bare-yarp.dll "http://127.0.0.1:$OLLAMA_PORT" "$YARP_PORT" >"$WORK/yarp.log" 2>&1 &
YARP_PID=$!
# No warm spares: with /bin/false as the CLI each would fail and be started again (every 60 s at most), CPU that a real
# CLI's idle spare does not take and that would fall into some runs and not others.
OLLAMA_URL="http://127.0.0.1:$OLLAMA_PORT" PORT="$GATEWAY_PORT" CLAUDE_CLI=/bin/false \
    dotnet src/Gateway/bin/Release/net10.0/ClaudeProxy.Gateway.dll --Logging:LogLevel:Default=Warning \
    --ClaudeBackend:Models:0:WarmSpares=0 --ClaudeBackend:Models:0:WarmConversationSpares=0 >"$WORK/gateway.log" 2>&1 &
GATEWAY_PID=$!
for port in "$GATEWAY_PORT" "$YARP_PORT"; do
    for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$port/api/version" >/dev/null && break; sleep 0.1; done
done

cat >"$WORK/chat.lua" <<'LUA'
wrk.method = "POST"
wrk.body = '{"model":"llama3.2:latest","messages":[{"role":"user","content":"why is the sky blue?"}]}'
wrk.headers["Content-Type"] = "application/json"
LUA

# Prints "p50_ms p99_ms requests_per_s requests" for one wrk run.
measure() { # url concurrency [script]
    local threads=1; (( $2 > 1 )) && threads=2
    local out; out=$(wrk -t"$threads" -c"$2" -d"${DURATION}s" --latency ${3:+-s "$3"} "$1")
    awk '
        function ms(v) { if (v ~ /us$/) return v/1000; if (v ~ /ms$/) return v+0; if (v ~ /s$/) return v*1000; return v }
        $1=="50%" {p50=ms($2)} $1=="99%" {p99=ms($2)} $1=="Requests/sec:" {rps=$2} $2=="requests" && $3=="in" {n=$1}
        END {printf "%.3f %.3f %.0f %d\n", p50, p99, rps, n}' <<<"$out"
}

# The gateway's own count of the bytes it has allocated (the runtime's meter on /metrics): per request, a figure that
# the machine's noise does not move.
allocated() {
    local bytes
    bytes=$(curl -sf "http://127.0.0.1:$GATEWAY_PORT/metrics" | awk '/^dotnet_gc_heap_total_allocated_bytes(_total)?[ {]/ {print $2; exit}')
    [[ $bytes =~ ^[0-9]+$ ]] || { echo "no dotnet_gc_heap_total_allocated_bytes on the gateway's /metrics" >&2; return 1; }
    echo "$bytes"
}

# The CPU a process has used so far, in clock ticks (user and system, from /proc): per request, the proxies' own cost,
# which moves less with the machine's noise than throughput does (a proxy that takes more CPU per request leaves less of
# the two cores to wrk and nginx).
cpu_ticks() { # pid
    local fields
    read -ra fields < <(sed 's/.*) //' "/proc/$1/stat")
    echo $(( fields[11] + fields[12] ))
}

# Warm every path (JIT, connection pools) before measuring. Under load the gateway's JIT goes on for about 20 s (it
# has more code to compile at tier 1 than a bare proxy: its own, OpenTelemetry's, the dialects'), so each proxy gets 20 s
# of each path; 3 s left the first cells measuring the gateway's compiler.
for port in "$GATEWAY_PORT" "$YARP_PORT" "$NGINX_PROXY_PORT"; do
    wrk -t2 -c64 -d"${WARMUP:-20}s" "http://127.0.0.1:$port/api/tags" >/dev/null
    wrk -t2 -c64 -d"${WARMUP:-20}s" -s "$WORK/chat.lua" "http://127.0.0.1:$port/api/chat" >/dev/null
done

# Per cell, ROUNDS times: direct, nginx proxy_pass, bare YARP, ClaudeProxy, one after the other, so that each round's
# figures share the machine's state of the moment. Each figure is the median over the rounds; the ratios are medians of
# each round's own ratio (requests/s over the bare YARP proxy's and over direct; added p50 over the bare YARP proxy's;
# CPU per request over the bare YARP proxy's).
printf "| endpoint | concurrency | req/s direct | req/s nginx proxy | req/s bare YARP | req/s ClaudeProxy | ClaudeProxy / bare YARP | ClaudeProxy / direct | p50 ms direct / nginx / YARP / ClaudeProxy | added p50 ms over YARP | p99 ms YARP / ClaudeProxy | ClaudeProxy bytes allocated / request | ClaudeProxy CPU per request / bare YARP |\n"
printf "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n"
for endpoint in tags chat; do
    for concurrency in 1 64; do
        script=""; path="/api/tags"
        [[ $endpoint == chat ]] && { script="$WORK/chat.lua"; path="/api/chat"; }
        for _ in $(seq 1 "$ROUNDS"); do
            read -r d50 d99 drps _ < <(measure "http://127.0.0.1:$OLLAMA_PORT$path" "$concurrency" "$script")
            read -r n50 n99 nrps _ < <(measure "http://127.0.0.1:$NGINX_PROXY_PORT$path" "$concurrency" "$script")
            yticks=$(cpu_ticks "$YARP_PID")
            read -r y50 y99 yrps yrequests < <(measure "http://127.0.0.1:$YARP_PORT$path" "$concurrency" "$script")
            yticks=$(( $(cpu_ticks "$YARP_PID") - yticks ))
            before=$(allocated) || exit 1
            pticks=$(cpu_ticks "$GATEWAY_PID")
            read -r p50 p99 prps prequests < <(measure "http://127.0.0.1:$GATEWAY_PORT$path" "$concurrency" "$script")
            pticks=$(( $(cpu_ticks "$GATEWAY_PID") - pticks ))
            after=$(allocated) || exit 1
            (( prequests > 0 && yrequests > 0 && yticks > 0 )) || { echo "wrk reported no requests, or bare YARP no CPU" >&2; exit 1; }
            echo "$d50 $n50 $y50 $p50 $y99 $p99 $drps $nrps $yrps $prps $(( (after - before) / prequests )) $pticks $prequests $yticks $yrequests"
        done | python3 -c '
import sys, statistics as st
rows = [list(map(float, line.split())) for line in sys.stdin]
m = lambda i: st.median(r[i] for r in rows)
ratio = lambda f: st.median(f(r) for r in rows)
print("| %s | %s | %d | %d | %d | %d | %.2f | %.2f | %.3f / %.3f / %.3f / %.3f | %.3f | %.3f / %.3f | %d | %.2f |" % (
    sys.argv[1], sys.argv[2], m(6), m(7), m(8), m(9), ratio(lambda r: r[9] / r[8]), ratio(lambda r: r[9] / r[6]),
    m(0), m(1), m(2), m(3), ratio(lambda r: r[3] - r[2]), m(4), m(5), m(10), ratio(lambda r: (r[11] / r[12]) / (r[13] / r[14]))))' "$path" "$concurrency"
    done
done
