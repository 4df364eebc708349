using ClaudeProxy.Gateway;

var builder = WebApplication.CreateBuilder(GatewayCommandLine.WithoutPort(args, out var port));
builder.AddGateway(port);

var app = builder.Build();
app.MapGateway();
app.Run();
