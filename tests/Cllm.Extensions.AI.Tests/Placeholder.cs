namespace Cllm.Extensions.AI.Tests;
