#!/usr/bin/env python3
# Usage: python3 fake_anthropic_with_headers.py FAKE_ANTHROPIC_PY HEADERS_JSON [fake_anthropic.py options...]
# Runs the shared fake Anthropic API with the headers of HEADERS_JSON (an object) added to every /v1/messages answer,
# e.g. the anthropic-ratelimit-unified-* headers from which the CLI reports a subscription's rate limits, which the
# shared fake does not send.
import json, runpy, sys
from http.server import BaseHTTPRequestHandler

fake, headers = sys.argv[1], json.loads(sys.argv[2])
end_headers = BaseHTTPRequestHandler.end_headers


def with_headers(self):
    if self.path.startswith("/v1/messages"):
        for name, value in headers.items():
            self.send_header(name, value)
    end_headers(self)


BaseHTTPRequestHandler.end_headers = with_headers
sys.argv = [fake] + sys.argv[3:]
runpy.run_path(fake, run_name="__main__")
