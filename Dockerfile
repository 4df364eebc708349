# ClaudeProxy with the Claude Code CLI. Build: docker build -t claudeproxy .
FROM mcr.microsoft.com/dotnet/sdk:10.0 AS build
WORKDIR /src
COPY . .
RUN dotnet publish src/Gateway -c Release -o /app

FROM mcr.microsoft.com/dotnet/aspnet:10.0
# util-linux's setpriv makes the CLI processes die with the gateway (README, "Safe by default").
RUN apt-get update \
    && apt-get install -y --no-install-recommends nodejs npm git ca-certificates util-linux \
    && rm -rf /var/lib/apt/lists/* \
    && npm install -g @anthropic-ai/claude-code
WORKDIR /app
COPY --from=build /app .
COPY config/docker-entrypoint.sh /usr/local/bin/claudeproxy-entrypoint
USER app
ENV HOME=/home/app
EXPOSE 22434
ENTRYPOINT ["/usr/local/bin/claudeproxy-entrypoint"]
