using System.Globalization;

namespace ClaudeProxy.Gateway;

/// <summary>The original server took its port as the first argument (<c>claudeproxy 8080</c>); so does this one.</summary>
internal static class GatewayCommandLine
{
    public static string[] WithoutPort(string[] args, out int? port)
    {
        port = null;
        if (args.Length > 0 && int.TryParse(args[0], NumberStyles.None, CultureInfo.InvariantCulture, out var value) && value is > 0 and <= 65535)
        {
            port = value;
            return args[1..];
        }

        return args;
    }
}
