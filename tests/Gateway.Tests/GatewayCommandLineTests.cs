namespace ClaudeProxy.Gateway.Tests;

public sealed class GatewayCommandLineTests
{
    [Fact]
    public void A_port_as_first_argument_is_taken_and_removed()
    {
        var rest = GatewayCommandLine.WithoutPort(["8080", "--Logging:LogLevel:Default=Debug"], out var port);

        Assert.Equal(8080, port);
        Assert.Equal(["--Logging:LogLevel:Default=Debug"], rest);
    }

    [Theory]
    [InlineData("--urls=http://127.0.0.1:1")]
    [InlineData("0")]
    [InlineData("70000")]
    public void Anything_else_is_left_to_the_configuration(string first)
    {
        var rest = GatewayCommandLine.WithoutPort([first], out var port);

        Assert.Null(port);
        Assert.Equal([first], rest);
    }
}
