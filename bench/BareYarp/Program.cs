using Yarp.ReverseProxy.Configuration;

// A bare YARP proxy: every path to the one destination given as the first argument, on the port given as the second.
var builder = WebApplication.CreateSlimBuilder(args.Skip(2).ToArray());
builder.WebHost.UseUrls($"http://127.0.0.1:{args[1]}");
builder.Logging.ClearProviders();
builder.Services.AddReverseProxy().LoadFromMemory(
    [new RouteConfig { RouteId = "all", ClusterId = "upstream", Match = new RouteMatch { Path = "{**rest}" } }],
    [new ClusterConfig { ClusterId = "upstream", Destinations = new Dictionary<string, DestinationConfig> { ["one"] = new() { Address = args[0] } } }]);
var app = builder.Build();
app.MapReverseProxy();
app.Run();
