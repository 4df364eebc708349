using System.Diagnostics;
using System.Globalization;
using ClaudeProxy.ClaudeBackend.Cli;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace ClaudeProxy.ClaudeBackend.Tests.Cli;

public sealed class ClaudeCliLedgerTests : IDisposable
{
    private readonly string _data = Directory.CreateTempSubdirectory("ledger-test-").FullName;
    private readonly Process _sleeper = Process.Start("sleep", "300");

    private ClaudeCliLedger NewLedger() =>
        new(Options.Create(new ClaudeBackendOptions { DataDirectory = _data }), NullLogger<ClaudeCliLedger>.Instance);

    private void WriteRecord(int pid, long startTicks, ProcessIdentity owner)
    {
        Directory.CreateDirectory(Path.Combine(_data, "processes"));
        File.WriteAllText(Path.Combine(_data, "processes", pid.ToString(CultureInfo.InvariantCulture)), $"{startTicks} {owner.Pid} {owner.StartTicks}");
    }

    [Fact]
    public void A_recorded_process_is_erased_when_it_has_exited()
    {
        var ledger = NewLedger();

        ledger.Record(_sleeper.Id);
        var recorded = Directory.GetFiles(Path.Combine(_data, "processes"));
        ledger.Erase(_sleeper.Id);

        Assert.Equal([_sleeper.Id.ToString(CultureInfo.InvariantCulture)], recorded.Select(Path.GetFileName));
        Assert.Empty(Directory.GetFiles(Path.Combine(_data, "processes")));
    }

    [Fact]
    public void The_processes_of_a_gateway_that_still_runs_are_left_alone()
    {
        // This test process plays another gateway on the same data folder, alive and well.
        WriteRecord(_sleeper.Id, ProcessIdentity.Of(_sleeper.Id)!.Value.StartTicks, ProcessIdentity.Of(Environment.ProcessId)!.Value);

        Assert.Equal(0, NewLedger().ReapLeftovers());
        Assert.False(_sleeper.HasExited);
        Assert.Single(Directory.GetFiles(Path.Combine(_data, "processes")));
    }

    [Fact]
    public void A_reused_pid_is_not_taken_for_a_leftover()
    {
        var deadGateway = new ProcessIdentity(int.MaxValue, 1);
        WriteRecord(_sleeper.Id, ProcessIdentity.Of(_sleeper.Id)!.Value.StartTicks + 1, deadGateway);

        Assert.Equal(0, NewLedger().ReapLeftovers());
        Assert.False(_sleeper.HasExited);
        Assert.Empty(Directory.GetFiles(Path.Combine(_data, "processes")));
    }

    [Fact]
    public void The_processes_of_a_gateway_that_is_gone_are_ended()
    {
        var deadGateway = new ProcessIdentity(int.MaxValue, 1);
        WriteRecord(_sleeper.Id, ProcessIdentity.Of(_sleeper.Id)!.Value.StartTicks, deadGateway);

        Assert.Equal(1, NewLedger().ReapLeftovers());
        Assert.True(_sleeper.WaitForExit(TimeSpan.FromSeconds(5)));
        Assert.Empty(Directory.GetFiles(Path.Combine(_data, "processes")));
    }

    [Fact]
    public void A_ledger_entry_it_cannot_read_does_not_stop_the_gateway_from_starting()
    {
        var deadGateway = new ProcessIdentity(int.MaxValue, 1);
        WriteRecord(_sleeper.Id, ProcessIdentity.Of(_sleeper.Id)!.Value.StartTicks, deadGateway);
        // Listed, but gone by the time it is read: as a file another gateway on the folder erases meanwhile.
        File.CreateSymbolicLink(Path.Combine(_data, "processes", "12345"), Path.Combine(_data, "erased"));

        Assert.Equal(1, NewLedger().ReapLeftovers());
        Assert.True(_sleeper.WaitForExit(TimeSpan.FromSeconds(5)));
    }

    public void Dispose()
    {
        if (!_sleeper.HasExited)
        {
            _sleeper.Kill();
        }

        _sleeper.Dispose();
        Directory.Delete(_data, recursive: true);
    }
}
