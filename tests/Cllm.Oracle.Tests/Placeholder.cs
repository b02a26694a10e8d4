namespace Cllm.Oracle.Tests;
