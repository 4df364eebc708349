using System.Diagnostics;
using ClaudeProxy.TestSupport;

namespace ClaudeProxy.Gateway.Tests.Deployment;

/// <summary>
/// deploy/kubernetes cannot be applied here (no cluster), so each manifest is validated against the Kubernetes API's own
/// schemas (the npm package kubernetes-models, which the test build installs) and its wiring is checked.
/// </summary>
public sealed class KubernetesManifestTests
{
    private static readonly string Manifests = Path.Combine(RepoPaths.Root, "deploy", "kubernetes");
    private static readonly string Validator = Path.Combine(RepoPaths.Root, "tests", "Gateway.Tests", "Deployment", "validate-kubernetes.cjs");
    private static readonly string Modules = Path.Combine(RepoPaths.Root, ".tools", "kubernetes-validate", "node_modules");

    private static async Task<(int ExitCode, string Output)> ValidateAsync(string folder)
    {
        if (!Directory.Exists(Path.Combine(Modules, "kubernetes-models")))
        {
            var message = $"Needs {Modules} (the test build installs it with npm).";
            Assert.Skip(RepoPaths.IsCi ? throw new InvalidOperationException(message) : message);
        }

        var start = new ProcessStartInfo("node") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var argument in (string[])[Validator, Modules, folder])
        {
            start.ArgumentList.Add(argument);
        }

        using var process = Process.Start(start)!;
        var output = await process.StandardOutput.ReadToEndAsync(TestContext.Current.CancellationToken)
            + await process.StandardError.ReadToEndAsync(TestContext.Current.CancellationToken);
        await process.WaitForExitAsync(TestContext.Current.CancellationToken);
        return (process.ExitCode, output);
    }

    [Fact]
    public async Task Every_manifest_passes_the_kubernetes_schemas_and_the_kustomization_names_them_all()
    {
        var (exitCode, output) = await ValidateAsync(Manifests);

        Assert.True(exitCode == 0, output);
        Assert.Equal(
            ["PodDisruptionBudget claude-worker", "PodDisruptionBudget claudeproxy", "Deployment claudeproxy", "Service claudeproxy", "Deployment redis", "Service redis", "StatefulSet claude-worker", "Service claude-worker"],
            output.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(line => line[(line.IndexOf(": ", StringComparison.Ordinal) + 2)..].Replace(" valid", "", StringComparison.Ordinal)));
        var kustomization = await File.ReadAllTextAsync(Path.Combine(Manifests, "kustomization.yaml"), TestContext.Current.CancellationToken);
        Assert.All(Directory.GetFiles(Manifests, "*.yaml").Select(Path.GetFileName).Where(f => f != "kustomization.yaml"),
            file => Assert.Contains($"- {file}", kustomization, StringComparison.Ordinal));
    }

    [Fact]
    public async Task The_validator_refuses_a_manifest_that_breaks_the_schema()
    {
        var folder = Directory.CreateTempSubdirectory("k8s-bad-").FullName;
        await File.WriteAllTextAsync(Path.Combine(folder, "bad.yaml"), """
            apiVersion: apps/v1
            kind: Deployment
            metadata:
              name: x
            spec:
              replicas: two
              selector:
                matchLabels: {a: b}
              template:
                metadata: {labels: {a: b}}
                spec:
                  containers: [{name: c, image: i}]
            """, TestContext.Current.CancellationToken);

        var (exitCode, output) = await ValidateAsync(folder);

        Assert.Equal(1, exitCode);
        Assert.Contains("spec/replicas must be integer", output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Workers_have_their_own_logins_the_worker_key_and_redis_and_the_fronts_list_them_and_share_redis()
    {
        var workers = await File.ReadAllTextAsync(Path.Combine(Manifests, "workers.yaml"), TestContext.Current.CancellationToken);
        var front = await File.ReadAllTextAsync(Path.Combine(Manifests, "front.yaml"), TestContext.Current.CancellationToken);

        Assert.Contains("value: worker", workers, StringComparison.Ordinal);
        Assert.Contains("/logins/$HOSTNAME", workers, StringComparison.Ordinal);
        Assert.All((string[])[workers, front], manifest => Assert.Contains("value: redis:6379", manifest, StringComparison.Ordinal));
        Assert.Contains("path: /readyz", workers, StringComparison.Ordinal);
        Assert.Contains("http://claude-worker-0.claude-worker:22434,http://claude-worker-1.claude-worker:22434", front, StringComparison.Ordinal);
        Assert.All((string[])[workers, front], manifest => Assert.Contains("key: worker-key", manifest, StringComparison.Ordinal));
        Assert.Contains("key: api-keys", front, StringComparison.Ordinal);
    }
}
