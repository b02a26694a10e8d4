using System.CommandLine;
using Cllm.Cli;
using Cllm.Cli.Bench;

var root = new RootCommand("cllm: Consistency LLMs in .NET. Load Hugging Face Llama-family models, decode with Jacobi, benchmark.");
root.Subcommands.Add(InitCommand.Create());
root.Subcommands.Add(GenerateCommand.Create());
root.Subcommands.Add(BenchCommand.Create());
root.Subcommands.Add(DataCommand.Create());
root.Subcommands.Add(TrainCommand.Create());
root.Subcommands.Add(TrainSpeedCommand.Create());
root.Subcommands.Add(CollectCommand.Create());
root.Subcommands.Add(EvalCommand.Create());
root.Subcommands.Add(ExportGgufCommand.Create());
root.Subcommands.Add(TokenizeCommand.Create());
root.Subcommands.Add(RenderCommand.Create());
return await root.Parse(args).InvokeAsync();
