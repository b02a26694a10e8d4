global using Xunit;
global using Cllm.Cli.Bench;
