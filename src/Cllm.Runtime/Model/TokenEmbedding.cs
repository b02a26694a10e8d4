using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Cllm.Model;

/// <summary>The token embedding table [vocab, hidden], created empty (weights come from a checkpoint or
/// <see cref="Transformer.InitializeRandom"/>: nn.Embedding's random fill would cost seconds on a 150k vocabulary).</summary>
sealed class TokenEmbedding : nn.Module<Tensor, Tensor>
{
    readonly Parameter weight;

    public TokenEmbedding(long vocabSize, long hiddenSize, ScalarType dtype, Device device) : base(nameof(TokenEmbedding))
    {
        weight = new Parameter(empty(vocabSize, hiddenSize, dtype, device));
        RegisterComponents();
    }

    public Tensor Weight => weight;

    /// <summary>tokens [b, t] (int64) to [b, t, hidden].</summary>
    public override Tensor forward(Tensor tokens)
    {
        var rows = weight.index_select(0, tokens.reshape(-1));
        return rows.view(tokens.shape[0], tokens.shape[1], weight.shape[1]);
    }
}
