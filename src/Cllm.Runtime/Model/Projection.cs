using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Cllm.Model;

/// <summary>
/// A linear layer (weight [out, in], optional bias) whose inference passes run <see cref="LinearKernel"/> (through
/// <see cref="Kernels"/>):
/// the one seam between the model and its matmul kernels. Parameters are created empty: a model's weights
/// always come from a checkpoint or <see cref="Transformer.InitializeRandom"/>, so initialising them here
/// would only cost load time.
/// </summary>
sealed class Projection : nn.Module<Tensor, Tensor>
{
    readonly Parameter weight;
    readonly Parameter? bias;

    public Projection(long inFeatures, long outFeatures, bool hasBias, ScalarType dtype, Device device) : base(nameof(Projection))
    {
        weight = new Parameter(empty(outFeatures, inFeatures, dtype, device));
        if (hasBias) bias = new Parameter(zeros(outFeatures, dtype, device));
        RegisterComponents();
    }

    public override Tensor forward(Tensor x) => Kernels.Linear(x, weight, bias);
}
