using Cllm.Text;
using Cllm.Training.Data;

namespace Cllm.Samples.AgentDemo;

/// <summary>
/// The scripted run's questions: of the kinds the default model was trained on, with values from the store. They are
/// the first tool conversations of each kind in the generator's test split (training phrasings and values, new
/// instances), so each comes with the call the model should make and the one-sentence answer it was trained to give.
/// </summary>
static class DemoQuestions
{
    public sealed record Question(string Text, ToolCall Call, string Answer)
    {
        /// <summary>Right when the reply is the trained answer (spacing aside).</summary>
        public bool IsAnsweredBy(string reply) => string.Equals(reply.Trim(), Answer.Trim(), StringComparison.Ordinal);
    }

    // How many questions of each tool: two store queries (run_sql), one of every other tool.
    static readonly (string Tool, int Count)[] Kinds =
    [
        (DemoTools.GetWeather.Name, 1), (DemoTools.GetOrderStatus.Name, 1), (DemoTools.RunSql.Name, 2), (DemoTools.Calculate.Name, 1),
    ];

    public static IReadOnlyList<Question> FromTestSplit(int seed = 1)
    {
        var wanted = Kinds.ToDictionary(k => k.Tool, k => k.Count);
        var picked = new List<Question>();
        foreach (var c in new TaskGenerator(seed).Generate(500, Split.Test, new Dictionary<string, double> { ["tool"] = 1 }))
        {
            var call = c.Turns[1].ToolCall!;
            if (wanted[call.Name] == 0 || picked.Any(q => q.Text == c.Turns[0].Content)) continue;
            wanted[call.Name]--;
            picked.Add(new Question(c.Turns[0].Content, call, c.Turns[3].Content));
        }

        // In the order of Kinds, so the run reads weather, order, store, store, arithmetic.
        return [.. picked.OrderBy(q => Array.FindIndex(Kinds, k => k.Tool == q.Call.Name))];
    }
}
